//! Extractors that answer malformed input with the project's JSON error shape instead of
//! axum's plain-text rejections.

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use utoipa::IntoParams;

use crate::auth::token;
use crate::domain::page::{Keyset, PageSize};
use crate::error::Error;
use crate::service::accounts;
use crate::state::AppState;

/// `axum::Json`, with rejections mapped: 400 for syntax, 422 for wrong types or unknown
/// fields, 413 for an oversized body, 415 for a missing JSON content type.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Parsed to a Value first: PostgreSQL text cannot hold NUL, so a `\u0000` anywhere
        // is refused here, before any handler or statement sees it.
        let value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        if contains_nul(&value) {
            return Err(Error::Unprocessable("strings must not contain NUL characters".into()));
        }
        serde_json::from_value(value).map(Json).map_err(|error| Error::Unprocessable(serde_message(&error.to_string())))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(fields) => {
            fields.iter().any(|(key, value)| key.contains('\0') || contains_nul(value))
        }
        _ => false,
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonDataError(error) => Error::Unprocessable(serde_message(&error.body_text())),
        JsonRejection::JsonSyntaxError(_) => Error::BadRequest("the body is not valid JSON".into()),
        JsonRejection::MissingJsonContentType(_) => {
            Error::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        _ => Error::BadRequest("the body could not be read".into()),
    }
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
/// as the session cookie. Missing, unknown or expired tokens are 401.
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
        let Some(token) = presented_token(parts) else {
            return Ok(MaybeUser(None));
        };
        let token_hash = token::hash_token(&token);
        let session = accounts::session(state, &token_hash).await?;
        Ok(MaybeUser(Some(AuthUser { id: session.user_id, token_hash })))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        MaybeUser::from_request_parts(parts, state).await?.0.ok_or(Error::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn presented_token(parts: &Parts) -> Option<String> {
    bearer_token(parts).map(|token| token.trim().to_owned()).or_else(|| {
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, token)| token.to_owned())
    })
}

/// A request carrying `Authorization: Bearer <ADMIN_TOKEN>`: the operational endpoints'
/// credential. Without an `ADMIN_TOKEN` configured those endpoints are off (404).
pub struct Admin;

impl Admin {
    /// Checks the request's headers for the admin token.
    pub fn check(parts: &Parts, state: &AppState) -> Result<Admin, Error> {
        use secrecy::ExposeSecret;
        use sha2::{Digest, Sha256};
        let Some(expected) = &state.settings.admin_token else {
            return Err(Error::NotFound("route"));
        };
        let presented = bearer_token(parts).unwrap_or_default();
        // Comparing digests keeps the comparison's time independent of where the strings differ.
        if Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes()) {
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
    /// Page size (default 20, at most 100; larger values are capped).
    pub limit: Option<u32>,
}

impl PageQuery {
    /// The checked request: the position the cursor carries, and the page size.
    pub fn keyset<P: Serialize + DeserializeOwned>(&self, size: PageSize) -> Result<Keyset<P>, Error> {
        Keyset::parse(size, self.cursor.as_deref(), self.limit)
    }
}

/// The client's address, for the login rate limit: the peer address, or the first
/// `X-Forwarded-For` hop when `auth.trust_forwarded_for` is on.
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.settings.auth.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .map(|hop| hop.trim().to_owned());
            if let Some(address) = forwarded.filter(|hop| !hop.is_empty()) {
                return Ok(ClientAddress(address));
            }
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string());
        Ok(ClientAddress(peer.unwrap_or_else(|| "unknown".into())))
    }
}
