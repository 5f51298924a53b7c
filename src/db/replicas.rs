//! Streaming replicas of the primary: one read pool each, and a watch that keeps each one in
//! rotation only while it answers, is a standby, and replays the primary's WAL within the lag
//! limit (`database.replica_max_lag_ms`).
//!
//! **How lag is measured.** `now() - pg_last_xact_replay_timestamp()` grows while the primary
//! is idle, so it would take an up-to-date replica out of rotation. Instead the watch reads
//! the primary's WAL position (`pg_current_wal_lsn()`) every `database.replica_probe_ms` and
//! remembers when it first saw each new position; a replica's lag is how long ago the primary
//! first stood at a position the replica has not replayed yet (`pg_last_wal_replay_lsn()`),
//! zero when it has replayed everything. An idle primary makes no new positions, so an idle
//! replica has no lag; a replica whose replay stops lags more with every probe. The
//! measure is as fine as the probe interval. The lag in bytes is reported beside it.
//!
//! Which reads go to a replica, and read-your-writes, are `service::reads`'s business.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

use super::{lazy_pool, Pool};
use crate::config::{redact_url, DatabaseSettings};

/// Where a replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Reads may go to it.
    InRotation,
    /// Reachable, but further behind than the lag limit.
    Lagging,
    /// Unreachable, not a standby, or not probed yet.
    Down,
}

/// A replica's state as last measured, and the reads it took.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// Its URL, password replaced.
    pub url: String,
    pub state: ReplicaState,
    /// How far its replay is behind the primary, in time and in WAL bytes; None while it
    /// cannot be measured (down, or the primary unreachable).
    pub lag: Option<Duration>,
    pub lag_bytes: Option<i64>,
    /// Why it is down.
    pub error: Option<String>,
    /// When it was last probed.
    pub checked: Option<Instant>,
    /// Reads routed to it since the process started.
    pub reads: u64,
    /// Of those, the ones that failed on it and ran again on the primary.
    pub fallbacks: u64,
}

pub struct Replica {
    pub pool: Pool,
    url: String,
    in_rotation: AtomicBool,
    measured: Mutex<Measured>,
    reads: AtomicU64,
    fallbacks: AtomicU64,
}

#[derive(Debug, Clone)]
struct Measured {
    state: ReplicaState,
    lag: Option<Duration>,
    lag_bytes: Option<i64>,
    error: Option<String>,
    checked: Option<Instant>,
}

impl Measured {
    /// Out of rotation for `error`: nothing about its lag is known.
    fn down(error: String, checked: Option<Instant>) -> Self {
        Measured { state: ReplicaState::Down, lag: None, lag_bytes: None, error: Some(error), checked }
    }
}

impl Replica {
    /// Counts a read routed here.
    pub fn routed(&self) {
        self.reads.fetch_add(1, Relaxed);
    }

    /// A read failed here and runs on the primary instead. With `down`, the failure says the
    /// server is gone: out of rotation at once, until the watch finds it back.
    pub fn fell_back(&self, down: Option<&sqlx::Error>) {
        self.fallbacks.fetch_add(1, Relaxed);
        if let Some(error) = down {
            self.set(Measured::down(format!("a read failed: {error}"), Some(Instant::now())));
        }
    }

    pub fn status(&self) -> ReplicaStatus {
        let measured = self.measured.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        ReplicaStatus {
            url: self.url.clone(),
            state: measured.state,
            lag: measured.lag,
            lag_bytes: measured.lag_bytes,
            error: measured.error,
            checked: measured.checked,
            reads: self.reads.load(Relaxed),
            fallbacks: self.fallbacks.load(Relaxed),
        }
    }

    fn set(&self, measured: Measured) {
        let mut current = self.measured.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.state != measured.state {
            match (measured.state, &measured.error) {
                (ReplicaState::InRotation, _) => tracing::info!(replica = %self.url, "replica in rotation"),
                (ReplicaState::Lagging, _) => {
                    tracing::warn!(replica = %self.url, lag = ?measured.lag, "replica lags: out of rotation")
                }
                (ReplicaState::Down, error) => {
                    tracing::warn!(replica = %self.url, ?error, "replica down: out of rotation")
                }
            }
        }
        self.in_rotation.store(measured.state == ReplicaState::InRotation, Relaxed);
        *current = measured;
    }
}

/// The configured replicas, in rotation or not.
pub struct Replicas {
    members: Vec<Replica>,
    next: AtomicUsize,
}

impl Replicas {
    /// One lazily connected pool per `database.replica_urls`, and the watch over them (on the
    /// current Tokio runtime; it stops when the last handle drops). Each starts out of
    /// rotation, until its first probe.
    pub fn start(settings: &DatabaseSettings, primary: PgConnectOptions) -> anyhow::Result<Arc<Self>> {
        let members = settings
            .replica_urls
            .iter()
            .map(|url| {
                Ok(Replica {
                    pool: lazy_pool(settings, url, settings.replica_acquire_timeout())?,
                    url: redact_url(url.expose_secret()),
                    in_rotation: AtomicBool::new(false),
                    measured: Mutex::new(Measured::down("not probed yet".into(), None)),
                    reads: AtomicU64::new(0),
                    fallbacks: AtomicU64::new(0),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let replicas = Arc::new(Replicas { members, next: AtomicUsize::new(0) });
        if !replicas.members.is_empty() {
            let watch = Watch {
                primary,
                interval: settings.replica_probe_interval(),
                timeout: settings.replica_probe_interval().max(settings.health_check_timeout()),
                max_lag: settings.replica_max_lag(),
            };
            tokio::spawn(watch.run(Arc::downgrade(&replicas)));
        }
        Ok(replicas)
    }

    /// The next replica in rotation, round-robin; None when none is.
    pub fn pick(&self) -> Option<&Replica> {
        let count = self.members.len();
        let start = self.next.fetch_add(1, Relaxed);
        (0..count).map(|offset| &self.members[(start + offset) % count]).find(|r| r.in_rotation.load(Relaxed))
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn statuses(&self) -> Vec<ReplicaStatus> {
        self.members.iter().map(Replica::status).collect()
    }

    pub async fn close(&self) {
        for replica in &self.members {
            replica.pool.close().await;
        }
    }
}

struct Watch {
    primary: PgConnectOptions,
    interval: Duration,
    timeout: Duration,
    max_lag: Duration,
}

impl Watch {
    async fn run(self, replicas: Weak<Replicas>) {
        let retention = (self.max_lag * 4).max(Duration::from_secs(60));
        let mut history = WalHistory::new(retention);
        let mut primary: Option<PgConnection> = None;
        let mut probes: Vec<Option<PgConnection>> = Vec::new();
        loop {
            let Some(replicas) = replicas.upgrade() else { return };
            probes.resize_with(replicas.members.len(), || None);
            let position = self.probe(&mut primary, self.primary.clone(), PRIMARY_POSITION).await;
            let now = Instant::now();
            if let Ok((_, Some(lsn))) = position {
                history.observe(now, lsn);
            }
            let replays =
                futures_util::future::join_all(replicas.members.iter().zip(probes.iter_mut()).map(
                    |(replica, probe)| self.probe(probe, (*replica.pool.connect_options()).clone(), REPLAY_POSITION),
                ))
                .await;
            let now = Instant::now();
            for (replica, replay) in replicas.members.iter().zip(replays) {
                let down = |error: String| Measured::down(error, Some(now));
                let measured = match (replay, &position) {
                    (Err(error), _) => down(error),
                    (Ok((false, _)), _) | (Ok((true, None)), _) => {
                        down("not in recovery: it is no standby (promoted, or a primary)".into())
                    }
                    (Ok((true, Some(replayed))), Ok((_, Some(primary_lsn)))) => {
                        let primary_lsn = *primary_lsn;
                        let lag = history.lag(now, replayed);
                        Measured {
                            state: if lag > self.max_lag { ReplicaState::Lagging } else { ReplicaState::InRotation },
                            lag: Some(lag),
                            lag_bytes: Some((primary_lsn - replayed).max(0)),
                            error: None,
                            checked: Some(now),
                        }
                    }
                    // The primary cannot be read: the lag cannot be measured, the last
                    // verdict stands.
                    (Ok(_), _) => continue,
                };
                replica.set(measured);
            }
            drop(replicas);
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Runs `statement` (a flag and a WAL position) on the probe's own connection, opening
    /// it if needed; a failure drops the connection, so the next probe opens a fresh one.
    async fn probe(
        &self,
        connection: &mut Option<PgConnection>,
        options: PgConnectOptions,
        statement: &'static str,
    ) -> Result<(bool, Option<i64>), String> {
        let attempt = async {
            if connection.is_none() {
                *connection = Some(options.application_name("vibing2-replica-watch").connect().await?);
            }
            let Some(open) = connection.as_mut() else { unreachable!("opened above") };
            sqlx::query_as::<_, (bool, Option<i64>)>(statement).fetch_one(open).await
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(position)) => Ok(position),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        if outcome.is_err() {
            *connection = None;
        }
        outcome
    }
}

/// The primary's WAL position, in bytes from the start (the flag is unused).
const PRIMARY_POSITION: &str = "SELECT false, (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";
/// Whether the server is a standby, and the WAL position it has replayed.
const REPLAY_POSITION: &str = "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint";

/// The primary's WAL positions, each with the time it was first seen there: the positions
/// rise strictly. Positions older than the retention go, but the newest of them stays as the
/// anchor, so a replica behind it lags at least the retention.
struct WalHistory {
    samples: VecDeque<(Instant, i64)>,
    retention: Duration,
}

impl WalHistory {
    fn new(retention: Duration) -> Self {
        WalHistory { samples: VecDeque::new(), retention }
    }

    fn observe(&mut self, now: Instant, position: i64) {
        match self.samples.back() {
            Some(&(_, last)) if position <= last => {}
            // How long the primary has stood at its first position is unknown: as if for the
            // whole retention, so a replica behind it waits until it has replayed it.
            None => self.samples.push_back((now.checked_sub(self.retention).unwrap_or(now), position)),
            Some(_) => self.samples.push_back((now, position)),
        }
        while self.samples.get(1).is_some_and(|&(seen, _)| now.saturating_duration_since(seen) > self.retention) {
            self.samples.pop_front();
        }
    }

    /// How long ago the primary first stood past `replayed`; zero if it never did.
    fn lag(&self, now: Instant, replayed: i64) -> Duration {
        let first_ahead = self.samples.partition_point(|&(_, position)| position <= replayed);
        self.samples.get(first_ahead).map_or(Duration::ZERO, |&(seen, _)| now.saturating_duration_since(seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: Duration = Duration::from_secs(60);

    #[test]
    fn an_idle_primary_makes_no_lag_however_long_it_idles() {
        let start = Instant::now() + RETENTION;
        let mut history = WalHistory::new(RETENTION);
        history.observe(start, 100);
        history.observe(start + Duration::from_secs(3600), 100);
        assert_eq!(history.lag(start + Duration::from_secs(3600), 100), Duration::ZERO);
    }

    #[test]
    fn a_stopped_replay_lags_from_the_first_position_it_missed() {
        let start = Instant::now() + RETENTION;
        let mut history = WalHistory::new(RETENTION);
        history.observe(start, 100);
        history.observe(start + Duration::from_secs(10), 200);
        history.observe(start + Duration::from_secs(11), 300);
        let now = start + Duration::from_secs(12);
        assert_eq!(history.lag(now, 100), Duration::from_secs(2), "it missed 200, first seen at 10 s");
        assert_eq!(history.lag(now, 250), Duration::from_secs(1));
        assert_eq!(history.lag(now, 300), Duration::ZERO);
    }

    #[test]
    fn a_replica_behind_the_first_position_seen_or_the_anchor_lags_the_retention_at_least() {
        let start = Instant::now() + RETENTION;
        let mut history = WalHistory::new(RETENTION);
        history.observe(start, 100);
        assert!(history.lag(start, 50) >= RETENTION, "behind the position found at startup");
        for second in 1..=300 {
            history.observe(start + Duration::from_secs(second), 100 + second as i64);
        }
        let now = start + Duration::from_secs(300);
        assert!(history.samples.len() <= 62, "{} samples kept", history.samples.len());
        assert!(history.lag(now, 100) > RETENTION, "behind the anchor");
        assert_eq!(history.lag(now, 399), Duration::ZERO);
    }
}
