//! The application state every handler and service function receives, cloned cheaply into
//! each request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::cache::Cache;
use crate::config::Settings;
use crate::service::views::ViewCounter;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub cache: Cache,
    /// Views counted since the last flush, written in batches.
    pub views: ViewCounter,
    pub started_at: Instant,
}

impl AppState {
    /// Builds the state; needs a Tokio runtime (the cache's subscription and the view
    /// flusher run as tasks).
    pub fn new(pool: PgPool, settings: Settings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let redis = match &settings.redis.url {
            Some(url) => {
                Some((redis::Client::open(url.expose_secret())?, Duration::from_millis(settings.redis.timeout_ms)))
            }
            None => None,
        };
        let cache = Cache::new(settings.cache.clone(), redis);
        let views = ViewCounter::start(pool.clone(), cache.clone(), Duration::from_millis(settings.views.flush_ms));
        Ok(Self { pool, settings: Arc::new(settings), cache, views, started_at: Instant::now() })
    }
}
