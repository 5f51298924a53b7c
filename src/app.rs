//! The assembled router with its tower layers.

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::api::extract::may_be_large;
use crate::error::Error;
use crate::state::AppState;
use crate::telemetry;

/// The whole HTTP surface: the API routes, JSON fallbacks for unknown routes and wrong
/// methods, limits on the URL, headers and body, security headers, CORS for the configured
/// origins, request tracing, and a panic guard that answers with the JSON shape.
pub fn router(state: AppState) -> Router {
    with_layers(crate::api::routes(&state.settings), state)
}

/// Wraps routes in the service's fallbacks and layers; tests use it to mount probe routes.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.settings.server.body_limit_bytes;
    routes
        .fallback(|| async { Error::NotFound("route") })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), database_gate))
        .layer(middleware::from_fn_with_state(state.clone(), request_deadline))
        // Outside the deadline: a write cut short by it may still have committed.
        .layer(middleware::from_fn_with_state(state.clone(), crate::api::extract::read_your_writes))
        // Responses carry sessions, private projects and per-caller views: no browser or proxy
        // may keep them.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(middleware::from_fn_with_state(state.clone(), crate::api::throttle::limit))
        .layer(middleware::from_fn_with_state(state.clone(), request_limits))
        .layer(middleware::from_fn(record_route))
        // Spans named by the route template, so ids do not make a span name each.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            tracing::info_span!("request", method = %request.method(), route = route_template(request))
        }))
        .layer(CatchPanicLayer::custom(|_panic| -> Response {
            Error::from(anyhow::anyhow!("handler panicked")).into_response()
        }))
        // Outermost, so every answer (a 429, a 414, a panic's 500) carries the CORS headers.
        .layer(cors(&state))
        .with_state(state)
}

/// CORS for `server.cors_origins`; with none configured, no CORS header is ever sent, and
/// browsers keep other sites out.
fn cors(state: &AppState) -> CorsLayer {
    let server = &state.settings.server;
    if server.cors_origins.is_empty() {
        return CorsLayer::new();
    }
    let origins = if server.cors_origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        // Validated as origins at startup (`config`), so each is a valid header value.
        AllowOrigin::list(server.cors_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()))
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER])
        .allow_credentials(server.cors_credentials)
        .max_age(Duration::from_secs(600))
}

/// The request target and the headers within `server.max_uri_bytes` and
/// `server.max_header_bytes`, or 414 and 431 with the JSON error, before anything else runs.
async fn request_limits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let server = &state.settings.server;
    let target = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target > server.max_uri_bytes {
        return Error::UriTooLong(server.max_uri_bytes).into_response();
    }
    let headers: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers > server.max_header_bytes {
        return Error::HeadersTooLarge(server.max_header_bytes).into_response();
    }
    next.run(request).await
}

/// The route template a request matched (`/api/projects/{id}`), or `unmatched`.
fn route_template(request: &Request) -> &str {
    request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str)
}

/// Times every request into the figures of its route (`telemetry::routes`). The key is made
/// of a known method and a route template only, so no client can add series.
async fn record_route(request: Request, next: Next) -> Response {
    let method = match *request.method() {
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::OPTIONS => {
            request.method().as_str()
        }
        _ => "OTHER",
    };
    let route = format!("{method} {}", route_template(&request));
    let started = Instant::now();
    let response = next.run(request).await;
    telemetry::routes::record(route, response.status().as_u16(), started.elapsed());
    response
}

/// While PostgreSQL is unreachable, a request answers 503 with `Retry-After` at once rather
/// than after the pool's acquire timeout, and one in flight when it goes down is answered
/// then. The health routes report the outage themselves.
async fn database_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/api/health") {
        return next.run(request).await;
    }
    if state.database.is_down() {
        return Error::DatabaseUnavailable.into_response();
    }
    tokio::select! {
        response = next.run(request) => response,
        () = state.database.went_down() => Error::DatabaseUnavailable.into_response(),
    }
}

/// A request, its body included, is answered within its class's deadline: a trickled body or
/// a stuck handler is dropped (cancelling its queries, see `db::connect`) and answered 408.
///
/// The classes follow the body: one that may be larger than `server.large_body_bytes` (or
/// of undeclared length; a file batch) has `server.upload_timeout_secs` to arrive and be
/// written, every other request `server.request_timeout_secs`, which no statement's
/// `statement_timeout` may exceed.
async fn request_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let server = &state.settings.server;
    let deadline = Duration::from_secs(if may_be_large(request.body(), server) {
        server.upload_timeout_secs
    } else {
        server.request_timeout_secs
    });
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::RequestTimeout.into_response(),
    }
}
