//! The application state every handler and service function receives, cloned cheaply into
//! each request, and the in-memory view buffer it carries.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{RwLock, Semaphore};

use crate::auth::password::HashQueue;
use crate::cache::Cache;
use crate::config::Settings;
use crate::db::reachability::Reachability;
use crate::db::replicas::Replicas;
use crate::db::Pool;
use crate::switches::Switches;

#[derive(Clone)]
pub struct AppState {
    /// The primary: every write and transaction, and the reads that must be current.
    pub pool: Pool,
    /// The read replicas (`DATABASE_REPLICA_URLS`); `service::reads` decides which reads
    /// go to them.
    pub replicas: Arc<Replicas>,
    /// The users who wrote through this instance within `database.read_your_writes_ms`:
    /// read-your-writes when Redis cannot say.
    pub recent_writers: moka::sync::Cache<String, ()>,
    pub settings: Arc<Settings>,
    pub cache: Cache,
    /// Views counted since the last flush (`service::views` writes them in batches).
    pub views: ViewBuffer,
    /// Where password hashes wait for a core.
    pub hashes: Arc<HashQueue>,
    /// Slots for reading large request bodies (`api::extract::JsonBody`).
    pub large_bodies: Arc<Semaphore>,
    /// Whether PostgreSQL answers, so an outage is a fast 503 rather than a pool timeout.
    pub database: Arc<Reachability>,
    /// The settings that change without a restart (`switches`).
    pub switches: Switches,
    pub started_at: Instant,
}

impl AppState {
    /// Builds the state; needs a Tokio runtime (the cache's subscription runs as a task).
    pub fn new(pool: Pool, settings: Settings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let redis = match &settings.redis.url {
            Some(url) => {
                Some((redis::Client::open(url.expose_secret())?, Duration::from_millis(settings.redis.timeout_ms)))
            }
            None => None,
        };
        let cache = Cache::new(settings.cache.clone(), redis);
        let views =
            ViewBuffer::new(Duration::from_secs(settings.views.viewer_window_secs), settings.views.viewers_remembered);
        let hashes = Arc::new(HashQueue::per_core(settings.auth.hash_queue));
        let large_bodies = Arc::new(Semaphore::new(settings.server.large_bodies_in_flight.max(1)));
        let probe_interval = Duration::from_millis(settings.database.probe_interval_ms.max(10));
        let database = Reachability::watch((*pool.connect_options()).clone(), probe_interval);
        let replicas = Replicas::start(&settings.database, (*pool.connect_options()).clone())?;
        let recent_writers = moka::sync::Cache::builder()
            .max_capacity(RECENT_WRITERS_REMEMBERED)
            .time_to_live(settings.database.read_your_writes())
            .build();
        crate::telemetry::exposition::install();
        let switches = Switches::new(cache.clone(), pool.clone(), &settings);
        let settings = Arc::new(settings);
        Ok(Self {
            pool,
            replicas,
            recent_writers,
            settings,
            cache,
            views,
            hashes,
            large_bodies,
            database,
            switches,
            started_at: Instant::now(),
        })
    }
}

/// Users remembered as recent writers at most; past it the oldest go first (their reads may
/// then go to a replica before their window ends, unless Redis remembers them).
const RECENT_WRITERS_REMEMBERED: u64 = 100_000;

/// Views per project, counted in memory until a flush writes them, and the viewers already
/// counted.
#[derive(Clone)]
pub struct ViewBuffer(Arc<ViewBufferInner>);

struct ViewBufferInner {
    pending: Mutex<HashMap<String, i32>>,
    /// (project, viewer) pairs counted within the viewer window.
    seen: moka::sync::Cache<(String, String), ()>,
    /// Counting holds it shared; a flush holds it alone while it moves counts from memory to
    /// the table, so no count ever sees a view twice or not at all.
    flushing: RwLock<()>,
}

impl ViewBuffer {
    pub fn new(viewer_window: Duration, viewers_remembered: u64) -> Self {
        let seen = moka::sync::Cache::builder().max_capacity(viewers_remembered).time_to_live(viewer_window).build();
        ViewBuffer(Arc::new(ViewBufferInner { pending: Mutex::default(), seen, flushing: RwLock::new(()) }))
    }

    /// Counts one view of `project_id` by `viewer`, unless that viewer was counted for it within
    /// the window, and returns the project's count, given `stored`, the count the table holds
    /// (None: no such project, nothing counted).
    pub async fn count<E, Fut>(&self, project_id: &str, viewer: &str, stored: Fut) -> Result<Option<i32>, E>
    where
        Fut: Future<Output = Result<Option<i32>, E>>,
    {
        let _counting = self.0.flushing.read().await;
        let Some(stored) = stored.await? else { return Ok(None) };
        let first_view = self.0.seen.entry((project_id.to_owned(), viewer.to_owned())).or_insert(()).is_fresh();
        let mut pending = self.0.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let views = pending.entry(project_id.to_owned()).or_insert(0);
        if first_view {
            *views += 1;
        }
        Ok(Some(stored + *views))
    }

    /// Hands every counted view to `write`; if it fails, the views are counted again, so none
    /// is lost. Returns what `write` returned, or None when nothing was counted.
    pub async fn flush<T, E, F, Fut>(&self, write: F) -> Result<Option<T>, E>
    where
        F: FnOnce(Vec<String>, Vec<i32>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _alone = self.0.flushing.write().await;
        let batch = std::mem::take(&mut *self.0.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if batch.is_empty() {
            return Ok(None);
        }
        let (ids, views): (Vec<String>, Vec<i32>) = batch.iter().map(|(id, views)| (id.clone(), *views)).unzip();
        match write(ids, views).await {
            Ok(written) => Ok(Some(written)),
            Err(error) => {
                let mut pending = self.0.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (id, views) in batch {
                    *pending.entry(id).or_insert(0) += views;
                }
                Err(error)
            }
        }
    }
}
