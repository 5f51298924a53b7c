//! The two-tier cache: a per-process tier (moka, bounded in bytes, short TTLs) over Redis as
//! the shared tier. Handlers use only this facade.
//!
//! Invalidation is by generation: every entry belongs to a [`Scope`] (a project, a user's
//! project list, discovery, ...) whose generation is part of the entry's key. A write bumps
//! the generation (in Redis, and at once in this process), so no reader can reach the old
//! entries again; other instances learn the new generation over Redis pub/sub. Nothing is
//! found by scanning keys. After the subscription (re)connects, the local tier and the
//! generations it remembers are flushed, since messages may have been missed.
//!
//! A generation never goes back, whatever Redis forgets: a bump is at least the clock in
//! microseconds ([`generation_floor`]), in Redis and in a process bumping alone while Redis
//! is down. A Redis restarted empty, or one that missed bumps, therefore counts on from past
//! every generation an instance may still remember; and a write always moves its own
//! instance's generation, so its writer reads it back.

mod breaker;
mod bus;
mod codec;
mod kinds;
mod marks;
mod settings;
mod shared;
mod stats;
mod window;

use std::future::Future;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::future::Cache as MokaCache;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

pub use self::breaker::BreakerState;
pub use self::kinds::{CacheTtls, Kind};
pub use self::settings::{CacheMode, CacheSettings};
use self::shared::SharedTier;
use self::stats::Counters;
pub use self::stats::KindStats;
pub use self::window::Admission;

/// What the cache itself can fail with. A loader's own errors pass through untouched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The shared tier could not be reached for an operation that needs it (a clear).
    #[error("the shared cache tier is unavailable")]
    Unavailable,
    #[error("a {0} entry could not be encoded or decoded")]
    Codec(&'static str),
}

/// What a write invalidates. Every cached entry belongs to exactly one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A project's metadata, file listing and first message page.
    Project(String),
    /// A user's list of own and shared projects.
    MemberProjects(String),
    /// A user's profile.
    User(String),
    /// One session, by token hash.
    Session(String),
    /// All discovery pages.
    Discovery,
    /// A user's usage summaries.
    Usage(String),
}

impl Scope {
    fn label(&self) -> String {
        match self {
            Scope::Project(id) => format!("project:{id}"),
            Scope::MemberProjects(user) => format!("member-projects:{user}"),
            Scope::User(user) => format!("user:{user}"),
            Scope::Session(hash) => format!("session:{hash}"),
            Scope::Discovery => "discovery".into(),
            Scope::Usage(user) => format!("usage:{user}"),
        }
    }
}

/// A local entry: the encoded value and how long this tier may keep it.
#[derive(Clone)]
struct LocalEntry {
    bytes: Arc<Vec<u8>>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, LocalEntry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &LocalEntry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// A scope's generation as this process knows it.
#[derive(Clone, Copy)]
struct Generation {
    value: u64,
    checked: Instant,
}

/// Shared-tier stores waiting or running at once, after their responses.
const SHARED_STORES_IN_FLIGHT: usize = 256;

/// The cache's state, for health and metrics.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStatus {
    /// `two-tier` with Redis, `local-only` without.
    pub mode: &'static str,
    /// The cache switch (`cache.mode`): `on`, `local` (no value read from or stored in
    /// Redis) or `off` (every read from the database).
    pub switch: CacheMode,
    pub namespace: String,
    pub local_entries: u64,
    pub local_bytes: u64,
    pub local_max_bytes: u64,
    /// The shared tier's circuit breaker; absent in local-only mode.
    pub breaker: Option<BreakerState>,
    /// Times the invalidation subscription (re)connected, each flushing the local tier.
    pub reconnects: u64,
    /// Invalidations Redis refused, waiting to be sent again (other instances may read
    /// entries they made stale from the shared tier until then; sessions are never there).
    pub pending_invalidations: u64,
    pub kinds: Vec<KindStats>,
}

struct Inner {
    settings: CacheSettings,
    /// The [`CacheMode`] switch, as its index in `MODES`.
    mode: AtomicU8,
    /// `<namespace>:v<format>:`, the prefix of every key this service writes.
    prefix: String,
    local: MokaCache<String, LocalEntry>,
    /// The generation of each scope seen lately, and when it was last checked with Redis.
    generations: moka::sync::Cache<String, Generation>,
    /// Bounds the shared-tier stores running after their responses.
    shared_stores: Arc<tokio::sync::Semaphore>,
    shared: Option<SharedTier>,
    counters: Counters,
    windows: window::Windows,
    listener: OnceLock<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

#[derive(Clone)]
pub struct Cache(Arc<Inner>);

impl Cache {
    /// Builds the cache; with a Redis client, also the shared tier and the subscription
    /// that carries other instances' invalidations.
    pub fn new(settings: CacheSettings, redis: Option<(redis::Client, Duration)>) -> Self {
        let local = MokaCache::builder()
            .max_capacity(settings.local_max_bytes)
            .weigher(|key: &String, entry: &LocalEntry| (key.len() + entry.bytes.len()).try_into().unwrap_or(u32::MAX))
            .expire_after(PerEntryTtl)
            .build();
        let prefix = format!("{}:v{}:", settings.namespace, codec::FORMAT_VERSION);
        let windows = window::windows(settings.rate_limit_keys, Duration::from_secs(3600));
        let shared = redis.map(|(client, timeout)| SharedTier::new(client, timeout));
        let cache = Cache(Arc::new(Inner {
            mode: AtomicU8::new(mode_index(settings.mode)),
            settings,
            prefix,
            local,
            generations: moka::sync::Cache::new(100_000),
            shared_stores: Arc::new(tokio::sync::Semaphore::new(SHARED_STORES_IN_FLIGHT)),
            windows,
            shared,
            counters: Counters::default(),
            listener: OnceLock::new(),
        }));
        // Started once the cache is whole, so the listener never finds it half-built.
        if let Some(tier) = &cache.0.shared {
            let channel = bus::channel(&cache.0.prefix);
            let _ = cache.0.listener.set(bus::spawn_listener(tier.client().clone(), channel, Arc::downgrade(&cache.0)));
        }
        match &cache.0.shared {
            Some(_) => tracing::info!(namespace = %cache.0.prefix, "cache: local tier over Redis"),
            None => tracing::info!("cache: REDIS_URL is unset, running on the local tier alone"),
        }
        cache
    }

    /// The value under (`kind`, `scope`, `suffix`): from the local tier, else from Redis,
    /// else from `loader`, whose result is then kept here and stored in Redis after the
    /// caller has it. Concurrent misses for one key in this process run `loader` once; the
    /// others wait for its result.
    ///
    /// A scope's generation is remembered for `cache.local_ttl_secs`, then read again with the
    /// value in the same round trip (MGET); while it has not moved, the local entries it names
    /// stay valid for their kind's TTL and are served without a reload.
    pub async fn get_or_load<T, E, F, Fut>(&self, kind: Kind, scope: &Scope, suffix: &str, loader: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<CacheError> + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let inner = &self.0;
        let counters = inner.counters.kind(kind);
        counters.requests.fetch_add(1, Relaxed);
        let mode = self.mode();
        if mode == CacheMode::Off {
            counters.local_misses.fetch_add(1, Relaxed);
            return load(counters, loader).await;
        }
        let label = scope.label();
        // Redis's key for the value: made only when Redis is asked, never on a local hit.
        let shared_key = || format!("{}{}:{label}:{suffix}", inner.prefix, kind.name());
        let shared = inner.shared.as_ref().filter(|_| kind.shared() && mode == CacheMode::On);
        let (generation, fetched) =
            self.generation(&label, mode, shared.map(|_| &shared_key as &(dyn Fn() -> String + Sync))).await;
        let (local_key, local_ttl) = match generation {
            Some(generation) => (
                format!("{}{}:{label}@{generation}:{suffix}", inner.prefix, kind.name()),
                inner.settings.local_ttl(kind),
            ),
            // Redis could not say which generation is current: any shared entry might be
            // stale, so this process's tier serves alone, under a key no shared entry has and
            // for the short local TTL, since no invalidation can reach that key. In `local`
            // mode Redis was not asked: the same, without counting an error.
            None => {
                if mode == CacheMode::On {
                    counters.shared_errors.fetch_add(1, Relaxed);
                }
                (format!("{}{}:{label}@local:{suffix}", inner.prefix, kind.name()), inner.settings.unchecked_ttl(kind))
            }
        };

        let entry = inner
            .local
            .try_get_with(local_key, async {
                counters.local_misses.fetch_add(1, Relaxed);
                if let (Some(tier), Some(generation)) = (shared, generation) {
                    let stored = match fetched {
                        Some(fetched) => Ok(fetched),
                        None => tier.run::<Option<Vec<u8>>>(redis::cmd("GET").arg(shared_key())).await,
                    };
                    match stored.map(|bytes| bytes.and_then(|bytes| codec::current(bytes, generation))) {
                        Ok(Some(bytes)) => {
                            counters.shared_hits.fetch_add(1, Relaxed);
                            return Ok(LocalEntry { bytes: Arc::new(bytes), ttl: local_ttl });
                        }
                        Ok(None) => counters.shared_misses.fetch_add(1, Relaxed),
                        Err(()) => counters.shared_errors.fetch_add(1, Relaxed),
                    };
                }
                let value = load(counters, loader).await?;
                let bytes = codec::encode(&value).map_err(|_| E::from(CacheError::Codec(kind.name())))?;
                if let (Some(_), Some(generation)) = (shared, generation) {
                    self.store_later(kind, shared_key(), codec::stamped(generation, &bytes));
                }
                Ok::<_, E>(LocalEntry { bytes: Arc::new(bytes), ttl: local_ttl })
            })
            .await
            .map_err(|shared: Arc<E>| shared.as_ref().clone())?;
        codec::decode(&entry.bytes).ok_or_else(|| E::from(CacheError::Codec(kind.name())))
    }

    /// Stores a loaded value in Redis off the request path: in a task of its own, at most
    /// [`SHARED_STORES_IN_FLIGHT`] at once. Past that the store is skipped and counted; the
    /// next miss of the key loads it again.
    fn store_later(&self, kind: Kind, key: String, bytes: Vec<u8>) {
        let counters = self.0.counters.kind(kind);
        let Ok(permit) = self.0.shared_stores.clone().try_acquire_owned() else {
            counters.shared_stores_skipped.fetch_add(1, Relaxed);
            return;
        };
        counters.shared_stores.fetch_add(1, Relaxed);
        let ttl = self.0.settings.shared_ttl(kind);
        let cache = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let _permit = permit;
            let Some(inner) = cache.upgrade() else { return };
            let Some(tier) = &inner.shared else { return };
            let set = redis::cmd("SET").arg(&key).arg(&bytes).arg("EX").arg(ttl.as_secs()).clone();
            if tier.run::<()>(&set).await.is_err() {
                inner.counters.kind(kind).shared_errors.fetch_add(1, Relaxed);
            }
        });
    }

    /// Makes every entry of these scopes unreachable, here at once and on other instances
    /// as soon as they hear of it. However many scopes, it costs two Redis round trips: one
    /// pipeline of INCRs, one of PUBLISHes.
    pub async fn invalidate(&self, scopes: &[Scope]) {
        if scopes.is_empty() {
            return;
        }
        let labels: Vec<String> = scopes.iter().map(Scope::label).collect();
        let shared = match &self.0.shared {
            Some(tier) => tier.run_pipeline::<Vec<u64>>(&self.bump_pipeline(&labels)).await.ok(),
            None => None,
        };
        match (&self.0.shared, shared) {
            (Some(tier), Some(values)) => self.announce(tier, &labels, values).await,
            // Without Redis, this process counts on its own.
            (None, _) => self.bump_locally(&labels),
            // With Redis failing, too; and the bump is retried until Redis takes it, so the
            // other instances hear of it and stop reading the old entries.
            (Some(_), None) => {
                self.bump_locally(&labels);
                self.0.counters.pending_invalidations.fetch_add(1, Relaxed);
                tokio::spawn(retry_invalidation(Arc::downgrade(&self.0), labels));
            }
        }
    }

    /// Takes on the generations Redis counted, and tells the other instances, in one pipeline.
    /// Here the generation moves past the one this process knows even if Redis counted less
    /// (it missed bumps made while it was unreachable): the writer must not read its old entry.
    async fn announce(&self, tier: &SharedTier, labels: &[String], values: Vec<u64>) {
        let channel = bus::channel(&self.0.prefix);
        let mut publish = redis::pipe();
        for (label, value) in labels.iter().zip(values) {
            let known = self.0.generations.get(label).map_or(0, |known| known.value);
            self.raise_generation(label, value.max(known + 1));
            publish.publish(&channel, bus::Message::Generation { scope: label.clone(), value }.encode()).ignore();
        }
        let _ = tier.run_pipeline::<()>(&publish).await;
    }

    fn bump_locally(&self, labels: &[String]) {
        let floor = generation_floor();
        for label in labels {
            let next = (self.0.generations.get(label).map_or(0, |known| known.value) + 1).max(floor);
            self.raise_generation(label, next);
        }
    }

    /// One atomic bump per scope: the counter plus one, or the clock's floor if that is more,
    /// with an expiry. Generations outlive every entry keyed by them, then go: a scope written
    /// once does not keep a key forever, and when its counter starts again it starts at the
    /// clock, past every earlier generation.
    fn bump_pipeline(&self, labels: &[String]) -> redis::Pipeline {
        const BUMP: &str = "local next = redis.call('INCR', KEYS[1]) \
            if next < tonumber(ARGV[1]) then next = tonumber(ARGV[1]) redis.call('SET', KEYS[1], next) end \
            redis.call('EXPIRE', KEYS[1], ARGV[2]) return next";
        let ttl = self.0.settings.longest_ttl().as_secs() * 2;
        let floor = generation_floor();
        let mut pipeline = redis::pipe();
        for label in labels {
            let gen_key = format!("{}gen:{label}", self.0.prefix);
            pipeline.cmd("EVAL").arg(BUMP).arg(1).arg(&gen_key).arg(floor).arg(ttl);
        }
        pipeline
    }

    /// Drops this service's namespace in Redis (values only: generations keep counting up,
    /// so an old key can never become current again) and every instance's local tier. Keys
    /// outside the namespace are never touched; FLUSHDB is never used.
    pub async fn clear(&self) -> Result<u64, CacheError> {
        self.flush_local();
        let Some(tier) = &self.0.shared else { return Ok(0) };
        let mut cursor: u64 = 0;
        let mut removed = 0;
        let pattern = format!("{}*", self.0.prefix);
        let generations = format!("{}gen:", self.0.prefix);
        loop {
            let scan = redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).clone();
            let (next, keys): (u64, Vec<String>) = tier.run(&scan).await.map_err(|()| CacheError::Unavailable)?;
            let values: Vec<&String> = keys.iter().filter(|key| !key.starts_with(&generations)).collect();
            if !values.is_empty() {
                removed += tier.run::<u64>(redis::cmd("UNLINK").arg(&values)).await.unwrap_or(0);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let message = bus::Message::Clear.encode();
        let _ = tier.run::<()>(redis::cmd("PUBLISH").arg(bus::channel(&self.0.prefix)).arg(message)).await;
        Ok(removed)
    }

    /// Counts one request under `key` in a fixed window of `length`, and says whether it is
    /// within `limit`: counted here at once, and in Redis across instances (see [`window`]);
    /// with Redis down or failing, this process counts alone.
    pub async fn admit(&self, key: &str, length: Duration, limit: u64) -> Admission {
        let inner = &self.0;
        let counter = inner.windows.get_with_by_ref(key, window::fresh);
        let (index, batch) = window::count(&counter, length, limit, inner.shared.is_some());
        if let (Some(tier), Some(added)) = (&inner.shared, batch) {
            let redis_key = format!("{}rl:{key}:{index}", inner.prefix);
            let mut pipeline = redis::pipe();
            pipeline.atomic().incr(&redis_key, added).expire(&redis_key, (length.as_secs() * 2) as i64).ignore();
            if let Ok((total,)) = tier.run_pipeline::<(u64,)>(&pipeline).await {
                window::synced(&counter, index, added, total);
            }
        }
        window::decide(&counter, length, limit)
    }

    pub async fn status(&self) -> CacheStatus {
        let inner = &self.0;
        inner.local.run_pending_tasks().await;
        CacheStatus {
            mode: if inner.shared.is_some() { "two-tier" } else { "local-only" },
            switch: self.mode(),
            namespace: inner.prefix.clone(),
            local_entries: inner.local.entry_count(),
            local_bytes: inner.local.weighted_size(),
            local_max_bytes: inner.settings.local_max_bytes,
            breaker: inner.shared.as_ref().map(SharedTier::breaker_state),
            reconnects: inner.counters.reconnects.load(Relaxed),
            pending_invalidations: inner.counters.pending_invalidations.load(Relaxed),
            kinds: inner.counters.snapshot(),
        }
    }

    /// The cache switch now.
    pub fn mode(&self) -> CacheMode {
        mode_at(self.0.mode.load(Relaxed))
    }

    /// Switches the cache to `mode` and returns the mode it was in. Any change empties this
    /// process's tier and the generations it remembers: entries kept from before (or made
    /// under generations it could not check with Redis) must not be served once the switch
    /// is back on; they are read again from Redis or the database.
    pub fn set_mode(&self, mode: CacheMode) -> CacheMode {
        let old = mode_at(self.0.mode.swap(mode_index(mode), Relaxed));
        if old != mode {
            self.flush_local();
        }
        old
    }

    /// The scope's current generation and, when `value_key` (which makes the value's key) is
    /// given and Redis was asked, what Redis holds under it (`Some(None)`: nothing), read in
    /// the same round trip.
    ///
    /// A generation is remembered here; after `cache.local_ttl_secs` it is checked with Redis
    /// again, and the greater of the two is kept (Redis may have missed a bump made here). None
    /// when Redis cannot be read: a guess would be remembered, and could later name entries
    /// that a missed invalidation made stale. In `local` mode Redis is not asked: None unless
    /// remembered.
    async fn generation(
        &self,
        label: &str,
        mode: CacheMode,
        value_key: Option<&(dyn Fn() -> String + Sync)>,
    ) -> (Option<u64>, Option<Option<Vec<u8>>>) {
        let remembered = self.0.generations.get(label);
        let Some(tier) = &self.0.shared else {
            // Alone, this process's memory is the only record: a scope it forgot (evicted) may
            // have been bumped, so it starts again past every generation made before.
            return (
                Some(remembered.map_or_else(|| self.raise_generation(label, generation_floor()), |known| known.value)),
                None,
            );
        };
        match remembered {
            Some(known) if known.checked.elapsed() < self.0.settings.recheck_after() => {
                return (Some(known.value), None)
            }
            Some(known) if mode == CacheMode::Local => return (Some(known.value), None),
            None if mode == CacheMode::Local => return (None, None),
            _ => {}
        }
        let mut read = redis::cmd("MGET");
        read.arg(format!("{}gen:{label}", self.0.prefix));
        if let Some(key) = value_key {
            read.arg(key());
        }
        let Ok(mut values) = tier.run::<Vec<Option<Vec<u8>>>>(&read).await else { return (None, None) };
        let stored = if value_key.is_some() { values.pop() } else { None };
        let counted = match values.first() {
            Some(Some(bytes)) => match std::str::from_utf8(bytes).ok().and_then(|text| text.parse().ok()) {
                Some(counted) => counted,
                None => return (None, None),
            },
            _ => 0,
        };
        (Some(self.raise_generation(label, counted)), stored)
    }

    /// Generations only move forward, whatever order messages arrive in. Returns the
    /// generation now remembered, which counts as checked.
    fn raise_generation(&self, label: &str, value: u64) -> u64 {
        let entry = self.0.generations.entry(label.to_owned()).and_upsert_with(|current| {
            let value = current.map_or(value, |current| current.value().value.max(value));
            Generation { value, checked: Instant::now() }
        });
        entry.value().value
    }

    fn flush_local(&self) {
        self.0.local.invalidate_all();
        self.0.generations.invalidate_all();
    }
}

const MODES: [CacheMode; 3] = [CacheMode::On, CacheMode::Local, CacheMode::Off];

fn mode_index(mode: CacheMode) -> u8 {
    MODES.iter().position(|known| *known == mode).unwrap_or(0) as u8
}

fn mode_at(index: u8) -> CacheMode {
    MODES[usize::from(index) % MODES.len()]
}

/// Runs a loader, counting the load, its time and its failure.
async fn load<T, E, Fut>(counters: &stats::KindCounters, loader: impl FnOnce() -> Fut) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let value = loader().await.inspect_err(|_| {
        counters.load_errors.fetch_add(1, Relaxed);
    })?;
    counters.loads.fetch_add(1, Relaxed);
    counters.load_micros.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
    Ok(value)
}

/// The least generation a bump makes now: the wall clock in microseconds. Bumps on every
/// instance and in Redis are floored by it, so a counter that restarts (a Redis restarted
/// empty, an expired key) starts past every generation made before, as long as the
/// instances' clocks agree to within the time between two writes of one scope.
fn generation_floor() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64)
}

/// Retries a generation bump Redis refused, with backoff, until it lands or every entry it
/// would hide has expired anyway; then publishes it like any other.
async fn retry_invalidation(cache: std::sync::Weak<Inner>, labels: Vec<String>) {
    let mut backoff = Duration::from_millis(100);
    let started = Instant::now();
    loop {
        tokio::time::sleep(backoff).await;
        let Some(inner) = cache.upgrade() else { return };
        let cache = Cache(inner);
        let Some(tier) = &cache.0.shared else { return };
        let done = if started.elapsed() > cache.0.settings.longest_ttl() * 2 {
            tracing::warn!(scopes = ?labels, "gave up re-sending an invalidation: its entries have expired");
            true
        } else if let Ok(values) = tier.run_pipeline::<Vec<u64>>(&cache.bump_pipeline(&labels)).await {
            cache.announce(tier, &labels, values).await;
            tracing::info!(scopes = ?labels, "re-sent an invalidation Redis had refused");
            true
        } else {
            false
        };
        if done {
            cache.0.counters.pending_invalidations.fetch_sub(1, Relaxed);
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
