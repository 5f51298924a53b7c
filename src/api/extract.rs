//! Extractors that answer malformed input with the project's JSON error shape instead of
//! axum's plain-text rejections.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use utoipa::IntoParams;

use crate::auth::token;
use crate::config::ServerSettings;
use crate::domain::page::{Keyset, PageSize};
use crate::error::Error;
use crate::service::{accounts, reads};
use crate::state::AppState;

/// A JSON response body. Request bodies come in through [`JsonBody`].
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON request body, read only when the handler asks ([`JsonBody::read`]): after it has
/// authenticated and authorized the caller, so a request that may not write costs nothing
/// for its body. Only the content type is checked on arrival (415).
///
/// Reading takes one of `server.large_bodies_in_flight` slots when the body may be larger
/// than `server.large_body_bytes` (or its length is unknown), waiting at most
/// `server.large_body_wait_ms` before answering 503 with `Retry-After`; it is buffered up to
/// the route's limit (413 past it), then decoded straight into `T`: 400 for syntax, 422 for
/// wrong types, unknown fields or a NUL character, which PostgreSQL text cannot hold.
pub struct JsonBody<T> {
    request: Request,
    target: PhantomData<fn() -> T>,
}

impl<S: Send + Sync, T> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(Error::UnsupportedMediaType("expected Content-Type: application/json".into()));
        }
        Ok(JsonBody { request, target: PhantomData })
    }
}

impl<T: DeserializeOwned + Send + 'static> JsonBody<T> {
    pub async fn read(self, state: &AppState) -> Result<T, Error> {
        let server = &state.settings.server;
        let _slot = if may_be_large(self.request.body(), server) {
            let wait = Duration::from_millis(server.large_body_wait_ms);
            match tokio::time::timeout(wait, state.large_bodies.clone().acquire_owned()).await {
                Ok(Ok(slot)) => Some(slot),
                _ => return Err(Error::Overloaded { retry_after_secs: 1 }),
            }
        } else {
            None
        };
        let bytes = axum::body::Bytes::from_request(self.request, &()).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::BadRequest("the body could not be read".into())
            }
        })?;
        if bytes.len() > server.large_body_bytes {
            // Decoding megabytes is CPU work: off the async workers.
            let depth = server.max_json_depth;
            return tokio::task::spawn_blocking(move || decode(&bytes, depth))
                .await
                .map_err(|error| Error::Internal(std::sync::Arc::new(error.into())))?;
        }
        decode(&bytes, server.max_json_depth)
    }
}

/// Whether a body may be longer than `server.large_body_bytes`: by the length it declares
/// (Content-Length, as hyper reports it), or because it declares none (a chunked stream).
pub fn may_be_large(body: &Body, server: &ServerSettings) -> bool {
    !matches!(axum::body::HttpBody::size_hint(body).upper(), Some(length) if length <= server.large_body_bytes as u64)
}

/// Decodes a JSON body straight into `T`, never through an untyped value: malformed JSON, or
/// JSON nested deeper than `max_depth`, is 400 whatever the target type, and a well-formed
/// body of the wrong shape is 422.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, Error> {
    let malformed = || Error::BadRequest("the body is not valid JSON".into());
    if nesting_depth(bytes) > max_depth {
        return Err(Error::BadRequest(format!("the body nests arrays and objects deeper than {max_depth} levels")));
    }
    // Syntax first, allocating nothing. The skimming pass decodes no string escapes, so those
    // are checked apart.
    if std::str::from_utf8(bytes).is_err() || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(malformed());
    }
    match unicode_escapes(bytes) {
        Escapes::Fine => {}
        Escapes::LoneSurrogate => return Err(malformed()),
        Escapes::Nul => return Err(Error::Unprocessable("strings must not contain NUL characters".into())),
    }
    serde_json::from_slice(bytes).map_err(|error| Error::Unprocessable(serde_message(&error.to_string())))
}

/// How deep the arrays and objects of JSON text nest, brackets inside strings aside; one
/// pass, allocating nothing.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[derive(Debug, PartialEq, Eq)]
enum Escapes {
    Fine,
    /// `\u0000`: the only way a NUL can be in JSON text (a raw one is a syntax error), and
    /// PostgreSQL text cannot hold it.
    Nul,
    /// A UTF-16 surrogate escape without its pair, which no string can hold.
    LoneSurrogate,
}

/// Reads the `\uXXXX` escapes of JSON text that is otherwise well-formed. An escaped
/// backslash followed by `u0000` is not an escape.
fn unicode_escapes(json: &[u8]) -> Escapes {
    let hex_at = |at: usize| -> Option<u16> {
        let digits = json.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let mut at = 0;
    let mut awaiting_low_surrogate = false;
    while at < json.len() {
        if json[at] != b'\\' {
            if awaiting_low_surrogate {
                return Escapes::LoneSurrogate;
            }
            at += 1;
            continue;
        }
        let escaped = json.get(at + 1).copied();
        if escaped != Some(b'u') {
            if awaiting_low_surrogate {
                return Escapes::LoneSurrogate;
            }
            at += 2;
            continue;
        }
        let Some(unit) = hex_at(at + 2) else { return Escapes::LoneSurrogate };
        match unit {
            0 => return Escapes::Nul,
            0xD800..=0xDBFF if !awaiting_low_surrogate => awaiting_low_surrogate = true,
            0xDC00..=0xDFFF if awaiting_low_surrogate => awaiting_low_surrogate = false,
            0xD800..=0xDFFF => return Escapes::LoneSurrogate,
            _ if awaiting_low_surrogate => return Escapes::LoneSurrogate,
            _ => {}
        }
        at += 6;
    }
    if awaiting_low_surrogate {
        Escapes::LoneSurrogate
    } else {
        Escapes::Fine
    }
}

/// `application/json`, or a `+json` type, as axum's own extractor accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `axum::extract::Query`, with a bad query string answered as 400 in the JSON shape.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(error)) => {
                Err(Error::BadRequest(serde_message(&error.body_text())))
            }
            Err(_) => Err(Error::BadRequest("invalid query string".into())),
        }
    }
}

/// serde's message without axum's prefix, and without echoing long input back.
fn serde_message(text: &str) -> String {
    let message = text.strip_prefix("Failed to deserialize the JSON body into the target type: ").unwrap_or(text);
    let message = message.strip_prefix("Failed to deserialize query string: ").unwrap_or(message);
    message.chars().take(200).collect()
}

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "vibing2_session";

/// The caller, authenticated by a session token sent as `Authorization: Bearer <token>` or
/// as the session cookie (`<userId>.<secret>`, or a session's from before tokens carried the
/// user id; `auth::token`). Missing, malformed, unknown or expired tokens are 401.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub token_hash: String,
}

/// The caller if a token was sent; anonymous otherwise. A token that was sent but is not
/// valid is still 401, so a stale session never silently reads as anonymous.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<AuthUser>);

impl MaybeUser {
    pub fn id(&self) -> Option<&str> {
        self.0.as_ref().map(|user| user.id.as_str())
    }

    /// The signed-in caller, or 401. Project-scoped routes call it after `authorize`, so a
    /// private project answers 404 to anonymous callers as it does to everyone else.
    pub fn require(&self) -> Result<&AuthUser, Error> {
        self.0.as_ref().ok_or(Error::Unauthorized)
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some((token, source)) = presented_token(parts) else {
            return Ok(MaybeUser(None));
        };
        if source == TokenSource::Cookie && !parts.method.is_safe() && !same_origin(parts) {
            return Err(Error::Forbidden(
                "a write authenticated by the session cookie needs an Origin of this site, or the X-Requested-With \
                 header"
                    .into(),
            ));
        }
        // A malformed token (`token::parse_session_token`) is refused before any lookup.
        let claim = token::parse_session_token(&token).ok_or(Error::Unauthorized)?;
        let token_hash = token::hash_token(&token);
        let session = accounts::session(state, &claim, &token_hash).await?;
        if let Some(writer) = parts.extensions.get::<reads::Writer>() {
            writer.record(&session.user_id);
        }
        Ok(MaybeUser(Some(AuthUser { id: session.user_id, token_hash })))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        MaybeUser::from_request_parts(parts, state).await?.0.ok_or(Error::Unauthorized)
    }
}

/// After a request that may write, made by a signed-in user, marks that user so their reads go
/// to the primary for a while (`service::reads`); the mark is set before the response leaves.
/// Without replicas there is nothing to mark.
pub async fn read_your_writes(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.method().is_safe() || state.replicas.is_empty() {
        return next.run(request).await;
    }
    let writer = reads::Writer::default();
    request.extensions_mut().insert(writer.clone());
    // The write runs in a task of its own, so a client that goes away mid-write cannot drop
    // the mark after the write has committed.
    let write = tokio::spawn(async move {
        let response = next.run(request).await;
        if let Some(user) = writer.user() {
            reads::wrote(&state, user).await;
        }
        response
    });
    match write.await {
        Ok(response) => response,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Cancelled: only a runtime shutting down does that.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenSource {
    Bearer,
    Cookie,
}

fn presented_token(parts: &Parts) -> Option<(String, TokenSource)> {
    if let Some(token) = bearer_token(parts) {
        return Some((token.trim().to_owned(), TokenSource::Bearer));
    }
    cookie(parts, SESSION_COOKIE).map(|token| (token.to_owned(), TokenSource::Cookie))
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
}

/// The cookie of a dashboard session (`GET /admin`): HttpOnly, SameSite=Strict, so no other
/// site's page can send it.
pub const ADMIN_COOKIE: &str = "vibing2_admin";

/// How long a dashboard session lasts, checked by the service (not only the browser).
pub const ADMIN_SESSION_SECS: i64 = 12 * 3600;

/// What the dashboard's cookie holds for an admin token, issued at `issued_at` (Unix
/// seconds): the time and a digest of both, so the token itself is never stored in the
/// browser, and the service can tell when the session ended.
pub fn admin_session_value(token: &str, issued_at: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("vibing2 admin session\0{token}\0{issued_at}").as_bytes());
    format!("{issued_at}.{}", hex::encode(digest))
}

/// Whether `value` is a dashboard session of `token` that has not ended.
fn live_admin_session(value: &str, token: &str) -> bool {
    let Some(issued_at) = value.split_once('.').and_then(|(issued, _)| issued.parse::<i64>().ok()) else {
        return false;
    };
    let age = chrono::Utc::now().timestamp() - issued_at;
    (0..=ADMIN_SESSION_SECS).contains(&age) && same_secret(value, &admin_session_value(token, issued_at))
}

/// Compares a presented secret with the expected one through their digests, so the time taken
/// does not tell where they differ.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(presented) == Sha256::digest(expected)
}

/// Whether a cookie-authenticated write can only have come from this site: its `Origin` names
/// the host it was sent to, or it carries `X-Requested-With`, which a cross-site form cannot
/// send (a script needs CORS for it, and the service grants none). Browsers attach cookies to
/// cross-site form posts; they do neither of these.
fn same_origin(parts: &Parts) -> bool {
    if parts.headers.contains_key("x-requested-with") {
        return true;
    }
    let host = parts.headers.get(header::HOST).and_then(|value| value.to_str().ok());
    let origin = parts.headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    match (origin.and_then(|origin| url::Url::parse(origin).ok()), host) {
        (Some(origin), Some(host)) => {
            let origin_host = match origin.port() {
                Some(port) => format!("{}:{port}", origin.host_str().unwrap_or_default()),
                None => origin.host_str().unwrap_or_default().to_owned(),
            };
            origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// A request carrying `Authorization: Bearer <ADMIN_TOKEN>`, or the dashboard's session
/// cookie: the operational endpoints' credential. Without an `ADMIN_TOKEN` configured those
/// endpoints are off (404).
pub struct Admin;

impl Admin {
    /// Checks the request's headers for the admin token or the dashboard's cookie.
    pub fn check(parts: &Parts, state: &AppState) -> Result<Admin, Error> {
        use secrecy::ExposeSecret;
        let Some(expected) = &state.settings.admin_token else {
            return Err(Error::NotFound("route"));
        };
        let expected = expected.expose_secret();
        let by_token = bearer_token(parts).is_some_and(|presented| same_secret(presented, expected));
        // A cookie is sent by the browser on its own: a write it carries must come from this site.
        let by_cookie = cookie(parts, ADMIN_COOKIE).is_some_and(|value| live_admin_session(value, expected))
            && (parts.method.is_safe() || same_origin(parts));
        if by_token || by_cookie {
            Ok(Admin)
        } else {
            Err(Error::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Admin::check(parts, state)
    }
}

/// The admin credential if one was presented; the route decides what needs it.
pub struct MaybeAdmin(pub Result<Admin, Error>);

impl FromRequestParts<AppState> for MaybeAdmin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeAdmin(Admin::check(parts, state)))
    }
}

/// The `?cursor=&limit=` query of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size: 1 to the list's cap (100; 1000 for a file listing), 20 by default (50 for
    /// messages, 100 for files); 0 or more than the cap is 422.
    pub limit: Option<u32>,
}

impl PageQuery {
    /// The checked request: the position the cursor carries, and the page size.
    pub fn keyset<P: Serialize + DeserializeOwned>(&self, size: PageSize) -> Result<Keyset<P>, Error> {
        Keyset::parse(size, self.cursor.as_deref(), self.limit)
    }
}

/// The client's address, for the rate limits and view counting: the TCP peer, or, when the
/// peer is a trusted proxy, the right-most `X-Forwarded-For` hop that is not one (the hops to
/// its left are whatever the client chose to send). IPv6 clients are keyed by their /64, the
/// block one subscriber gets.
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress::of(&parts.extensions, &parts.headers, state))
    }
}

impl ClientAddress {
    /// The client of a request, from its peer and headers (middleware has no `Parts`).
    pub fn of(extensions: &axum::http::Extensions, headers: &axum::http::HeaderMap, state: &AppState) -> Self {
        let auth = &state.settings.auth;
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let forwarded = headers.get("x-forwarded-for").and_then(|value| value.to_str().ok());
        ClientAddress(client_address(peer, forwarded, &auth.trusted_proxies, auth.trust_forwarded_for))
    }
}

/// See [`ClientAddress`]. `trust_peer` trusts the peer whatever its address.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded: Option<&str>,
    trusted: &[ipnet::IpNet],
    trust_peer: bool,
) -> String {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let peer_is_proxy = trust_peer || peer.as_ref().is_some_and(is_trusted);
    let hops: Vec<&str> = forwarded.map(|value| value.split(',').map(str::trim).collect()).unwrap_or_default();
    if peer_is_proxy && hops.iter().any(|hop| !hop.is_empty()) {
        let client = hops
            .iter()
            .rev()
            .find(|hop| !hop.is_empty() && hop.parse::<IpAddr>().map_or(true, |address| !is_trusted(&address)))
            .or_else(|| hops.iter().find(|hop| !hop.is_empty()))
            .copied()
            .unwrap_or_default();
        return match client.parse::<IpAddr>() {
            Ok(address) => rate_limit_key(address),
            Err(_) => client.chars().take(64).collect(),
        };
    }
    peer.map_or_else(|| "unknown".into(), rate_limit_key)
}

/// An IPv4 address as it is; an IPv6 one as its /64 (an IPv4-mapped one as the IPv4 address).
fn rate_limit_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => ipnet::Ipv6Net::new(v6, 64).map_or_else(|_| v6.to_string(), |net| net.trunc().to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": []}]}"#), 4);
        assert_eq!(nesting_depth(br#"{"a": "[[[[{{{{", "b": "\"[["}"#), 1);
        assert_eq!(nesting_depth(b"3"), 0);
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(matches!(decode::<serde_json::Value>(deep.as_bytes(), 32), Err(Error::BadRequest(_))));
        let fine = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(decode::<serde_json::Value>(fine.as_bytes(), 32).is_ok());
    }

    #[test]
    fn unicode_escapes_find_nul_and_lone_surrogates_only() {
        let cases: [(&str, Escapes); 9] = [
            (r#"{"a":"plain"}"#, Escapes::Fine),
            (r#"{"a":"x\u0000y"}"#, Escapes::Nul),
            (r#"{"a\u0000":1}"#, Escapes::Nul),
            (r#"{"a":"\\u0000"}"#, Escapes::Fine),
            (r#"{"a":"\\\u0000"}"#, Escapes::Nul),
            (r#"{"a":"\ud83d\ude00"}"#, Escapes::Fine),
            (r#"{"a":"\ud83d"}"#, Escapes::LoneSurrogate),
            (r#"{"a":"\ude00"}"#, Escapes::LoneSurrogate),
            (r#"{"a":"\ud83dx"}"#, Escapes::LoneSurrogate),
        ];
        for (json, expected) in cases {
            assert_eq!(unicode_escapes(json.as_bytes()), expected, "{json}");
        }
    }

    #[test]
    fn malformed_json_is_400_and_the_wrong_shape_422_whatever_the_target() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        enum Role {
            Viewer,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Target {
            role: Role,
        }
        for malformed in [r#"{"name":"#, r#"{"role":"#, "", r#"{"role":"\ud800"}"#] {
            assert_eq!(decode::<Target>(malformed.as_bytes(), 32).unwrap_err().code(), "bad_request", "{malformed}");
        }
        for wrong in [r#"{"name":1}"#, r#"{"role":3}"#, "{}", "[0,0,0]"] {
            assert_eq!(decode::<Target>(wrong.as_bytes(), 32).unwrap_err().code(), "unprocessable", "{wrong}");
        }
    }

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_behind_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        let peer = Some("10.0.0.5".parse().unwrap());
        // The client sent a forged first hop; the proxy appended what it saw.
        let forged = Some("1.2.3.4, 203.0.113.9, 10.0.0.7");
        assert_eq!(client_address(peer, forged, &proxies, false), "203.0.113.9");
        assert_eq!(client_address(peer, Some("10.1.1.1"), &proxies, false), "10.1.1.1", "all trusted: the left-most");
        // A peer that is no proxy: its own address, whatever the header says.
        let stranger = Some("198.51.100.4".parse().unwrap());
        assert_eq!(client_address(stranger, forged, &proxies, false), "198.51.100.4");
        assert_eq!(client_address(None, None, &[], false), "unknown");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_block() {
        let a = client_address(Some("2001:db8:1:2::1".parse().unwrap()), None, &[], false);
        let b = client_address(Some("2001:db8:1:2:ffff::9".parse().unwrap()), None, &[], false);
        assert_eq!((a.as_str(), b.as_str()), ("2001:db8:1:2::/64", "2001:db8:1:2::/64"));
        let mapped = client_address(Some("::ffff:192.0.2.1".parse().unwrap()), None, &[], false);
        assert_eq!(mapped, "192.0.2.1");
        let behind = client_address(None, Some("2001:db8:9:9::5"), &[], true);
        assert_eq!(behind, "2001:db8:9:9::/64");
    }
}
