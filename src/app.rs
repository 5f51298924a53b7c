//! The shared application state and the assembled router with its tower layers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::Router;
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::cache::Cache;
use crate::config::Settings;
use crate::error::Error;

/// Everything a handler may need, cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub cache: Cache,
    pub started_at: Instant,
}

impl AppState {
    pub fn new(pool: PgPool, settings: Settings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let redis = match &settings.redis.url {
            Some(url) => {
                Some((redis::Client::open(url.expose_secret())?, Duration::from_millis(settings.redis.timeout_ms)))
            }
            None => None,
        };
        let cache = Cache::new(settings.cache.clone(), redis);
        Ok(Self { pool, settings: Arc::new(settings), cache, started_at: Instant::now() })
    }
}

/// The whole HTTP surface: the API routes, JSON fallbacks for unknown routes and wrong
/// methods, a body limit, request tracing, and a panic guard that answers with the JSON shape.
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
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_panic| -> Response {
            Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .with_state(state)
}
