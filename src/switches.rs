//! Runtime switches for a gradual rollback: the cache mode, the pool size, the slow-query
//! threshold, and the jobs' intervals and pauses. Each takes effect at once, without a
//! restart, whether changed through `PATCH /api/admin/switches` or by SIGHUP (which re-reads
//! the configuration as `Settings::load` does, applies the switchable settings, and warns
//! about any other change, which needs a restart).
//!
//! Every change is logged with its old and new value and its source, and the last one shows
//! in the detailed health. The values live where they act (the cache, the pool's gate, the
//! query registry, the job schedule); this module is the one place that changes them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cache::{Cache, CacheMode};
use crate::config::{ConfigError, JobSettings, Settings};
use crate::db::Pool;
use crate::domain::UtcTime;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Sighup,
    Api,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Sighup => "sighup",
            Source::Api => "api",
        }
    }
}

/// A change of some switches; what is absent stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Change {
    pub cache: Option<CacheMode>,
    /// Connections checked out at once: 1 to the pool's maximum (`poolMax`).
    pub pool_size: Option<u32>,
    /// A database call at least this long is slow: 0 to 86400000.
    pub slow_query_ms: Option<u64>,
    /// Pauses (true) or resumes (false) every job; a job paused by name stays paused.
    pub jobs_paused: Option<bool>,
    /// Per job, by name.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobChange>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobChange {
    /// 1 second to 366 days.
    pub interval_secs: Option<u64>,
    pub paused: Option<bool>,
}

/// The switches now, and their last change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cache: CacheMode,
    pub pool_size: u32,
    /// The pool's maximum (`DB_CONNECTION_LIMIT` at startup), which `poolSize` cannot exceed.
    pub pool_max: u32,
    pub slow_query_ms: u64,
    /// Every job is paused.
    pub jobs_paused: bool,
    pub jobs: Vec<JobSwitch>,
    /// Null until a switch changes after startup.
    pub last_change: Option<LastChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSwitch {
    pub job: String,
    pub interval_secs: u64,
    /// Paused by name (`jobsPaused` pauses it too).
    pub paused: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastChange {
    pub at: UtcTime,
    pub source: Source,
    /// The switches it changed (`cache`, `poolSize`, `jobs.analyze.intervalSecs`, ...).
    pub changed: Vec<String>,
}

const MAX_SLOW_QUERY_MS: u64 = 24 * 3600 * 1000;
const MAX_INTERVAL_SECS: u64 = 366 * 24 * 3600;

/// The jobs' intervals and pauses, shared by the scheduler and the switches.
#[derive(Clone)]
pub struct JobSchedule(Arc<RwLock<Schedule>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Schedule {
    paused_all: bool,
    jobs: Vec<JobSwitch>,
}

impl JobSchedule {
    pub fn new(settings: &JobSettings) -> Self {
        JobSchedule(Arc::new(RwLock::new(schedule_of(settings))))
    }

    /// The job's interval, and whether it is paused; None for a job the schedule lacks.
    pub fn job(&self, name: &str) -> Option<(Duration, bool)> {
        let schedule = self.read();
        let job = schedule.jobs.iter().find(|job| job.job == name)?;
        Some((Duration::from_secs(job.interval_secs), schedule.paused_all || job.paused))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Schedule> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Schedule> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn schedule_of(settings: &JobSettings) -> Schedule {
    let jobs = JobSettings::JOBS
        .iter()
        .map(|name| JobSwitch {
            job: (*name).to_owned(),
            interval_secs: settings.interval_secs(name).unwrap_or(u64::MAX),
            paused: settings.paused.iter().any(|paused| paused == name),
        })
        .collect();
    Schedule { paused_all: settings.pause_all, jobs }
}

/// The switches of one process; cloned cheaply into the state.
#[derive(Clone)]
pub struct Switches(Arc<Inner>);

struct Inner {
    cache: Cache,
    pool: Pool,
    jobs: JobSchedule,
    /// The last change; its lock also makes changes apply one at a time.
    last_change: Mutex<Option<LastChange>>,
}

impl Switches {
    /// The switches as the settings set them, applied to the cache (already built from
    /// them), the pool and the query registry.
    pub fn new(cache: Cache, pool: Pool, settings: &Settings) -> Self {
        let pool_size = settings.database.pool_size.unwrap_or(settings.database.connection_limit);
        pool.set_checkout_limit(pool_size);
        // Per process, as the figures it governs (`telemetry::queries`).
        crate::telemetry::queries::registry().set_slow_threshold(Duration::from_millis(settings.monitor.slow_query_ms));
        Switches(Arc::new(Inner { cache, pool, jobs: JobSchedule::new(&settings.jobs), last_change: Mutex::new(None) }))
    }

    /// The schedule the scheduler of this process follows.
    pub fn jobs(&self) -> JobSchedule {
        self.0.jobs.clone()
    }

    pub fn report(&self) -> Report {
        let last_change = self.last_change();
        self.report_with(&last_change)
    }

    fn report_with(&self, last_change: &Option<LastChange>) -> Report {
        let schedule = self.0.jobs.read().clone();
        Report {
            cache: self.0.cache.mode(),
            pool_size: self.0.pool.checkout_limit(),
            pool_max: self.0.pool.max_connections(),
            slow_query_ms: slow_query_ms(),
            jobs_paused: schedule.paused_all,
            jobs: schedule.jobs,
            last_change: last_change.clone(),
        }
    }

    fn last_change(&self) -> std::sync::MutexGuard<'_, Option<LastChange>> {
        self.0.last_change.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks the whole change, then applies it: all of it, or (Err, naming the value)
    /// nothing. Each switch that moves is logged; the report follows the change.
    pub fn apply(&self, change: &Change, source: Source) -> Result<Report, String> {
        let mut last_change = self.last_change();
        self.check(change)?;
        let mut changed = Vec::new();
        let mut note = |name: String, old: String, new: String| {
            if old != new {
                tracing::info!(switch = %name, %old, %new, source = source.name(), "switch changed");
                changed.push(name);
            }
        };
        if let Some(mode) = change.cache {
            let old = self.0.cache.set_mode(mode);
            note("cache".into(), old.name().into(), mode.name().into());
        }
        if let Some(size) = change.pool_size {
            let old = self.0.pool.checkout_limit();
            self.0.pool.set_checkout_limit(size);
            note("poolSize".into(), old.to_string(), size.to_string());
        }
        if let Some(ms) = change.slow_query_ms {
            let old = slow_query_ms();
            crate::telemetry::queries::registry().set_slow_threshold(Duration::from_millis(ms));
            note("slowQueryMs".into(), old.to_string(), ms.to_string());
        }
        {
            let mut schedule = self.0.jobs.write();
            if let Some(paused) = change.jobs_paused {
                let old = std::mem::replace(&mut schedule.paused_all, paused);
                note("jobsPaused".into(), old.to_string(), paused.to_string());
            }
            for job in schedule.jobs.iter_mut() {
                let Some(job_change) = change.jobs.get(&job.job) else { continue };
                if let Some(secs) = job_change.interval_secs {
                    let old = std::mem::replace(&mut job.interval_secs, secs);
                    note(format!("jobs.{}.intervalSecs", job.job), old.to_string(), secs.to_string());
                }
                if let Some(paused) = job_change.paused {
                    let old = std::mem::replace(&mut job.paused, paused);
                    note(format!("jobs.{}.paused", job.job), old.to_string(), paused.to_string());
                }
            }
        }
        if !changed.is_empty() {
            *last_change = Some(LastChange { at: UtcTime::now(), source, changed });
        }
        Ok(self.report_with(&last_change))
    }

    fn check(&self, change: &Change) -> Result<(), String> {
        let max = self.0.pool.max_connections();
        if change.pool_size.is_some_and(|size| size == 0 || size > max) {
            return Err(format!(
                "poolSize must be 1 to {max}, the pool's maximum (DB_CONNECTION_LIMIT at startup; raising it needs a restart)"
            ));
        }
        if change.slow_query_ms.is_some_and(|ms| ms > MAX_SLOW_QUERY_MS) {
            return Err(format!("slowQueryMs must be 0 to {MAX_SLOW_QUERY_MS}"));
        }
        for (name, job) in &change.jobs {
            if !JobSettings::JOBS.contains(&name.as_str()) {
                return Err(format!("jobs: no job is named {name:?} (the jobs: {})", JobSettings::JOBS.join(", ")));
            }
            if job.interval_secs.is_some_and(|secs| secs == 0 || secs > MAX_INTERVAL_SECS) {
                return Err(format!("jobs.{name}.intervalSecs must be 1 to {MAX_INTERVAL_SECS}"));
            }
        }
        Ok(())
    }

    /// SIGHUP: applies the switchable settings of the configuration just `loaded`, and warns
    /// about the other settings that differ from those the process `started` with, which
    /// only a restart applies. A configuration that cannot be read changes nothing.
    pub fn reload(&self, started: &Settings, loaded: Result<Settings, ConfigError>) {
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: the configuration could not be read; no switch changed");
                return;
            }
        };
        match self.apply(&change_of(&loaded), Source::Sighup) {
            Ok(report) => {
                let changed = report.last_change.filter(|last| last.source == Source::Sighup).map(|last| last.changed);
                tracing::info!(changed = ?changed.unwrap_or_default(), "SIGHUP: configuration re-read");
            }
            Err(error) => tracing::error!(%error, "SIGHUP: a switch's new value is refused; no switch changed"),
        }
        let needing_restart = restart_needed(started, &loaded);
        if !needing_restart.is_empty() {
            tracing::warn!(
                sections = ?needing_restart,
                "SIGHUP: settings other than the switches changed; they take effect only after a restart"
            );
        }
    }
}

/// The slow-query threshold now, which the query registry holds.
fn slow_query_ms() -> u64 {
    crate::telemetry::queries::registry().slow_threshold().as_millis() as u64
}

/// The switches' values as `settings` give them.
fn change_of(settings: &Settings) -> Change {
    let schedule = schedule_of(&settings.jobs);
    Change {
        cache: Some(settings.cache.mode),
        pool_size: Some(settings.database.pool_size.unwrap_or(settings.database.connection_limit)),
        slow_query_ms: Some(settings.monitor.slow_query_ms),
        jobs_paused: Some(schedule.paused_all),
        jobs: schedule
            .jobs
            .into_iter()
            .map(|job| (job.job, JobChange { interval_secs: Some(job.interval_secs), paused: Some(job.paused) }))
            .collect(),
    }
}

/// The sections (`server`, `database`, ...) in which `loaded` differs from `started` other
/// than in a switch.
fn restart_needed(started: &Settings, loaded: &Settings) -> Vec<&'static str> {
    let mut loaded = loaded.clone();
    loaded.cache.mode = started.cache.mode;
    loaded.database.pool_size = started.database.pool_size;
    loaded.monitor.slow_query_ms = started.monitor.slow_query_ms;
    let jobs = &started.jobs;
    loaded.jobs.refresh_project_stats_secs = jobs.refresh_project_stats_secs;
    loaded.jobs.refresh_user_token_summary_secs = jobs.refresh_user_token_summary_secs;
    loaded.jobs.cleanup_secs = jobs.cleanup_secs;
    loaded.jobs.analyze_secs = jobs.analyze_secs;
    loaded.jobs.pause_all = jobs.pause_all;
    loaded.jobs.paused = jobs.paused.clone();
    let before = sections(started);
    sections(&loaded).into_iter().zip(before).filter(|(now, then)| now != then).map(|(now, _)| now.0).collect()
}

/// Each section as text to compare (never to log: the secrets are in it).
fn sections(settings: &Settings) -> Vec<(&'static str, String)> {
    let secret = |value: &Option<secrecy::SecretString>| value.as_ref().map(|s| s.expose_secret().to_owned());
    vec![
        ("database", format!("{:?} {:?}", settings.database, secret(&settings.database.url))),
        ("redis", format!("{:?} {:?}", settings.redis, secret(&settings.redis.url))),
        ("server", format!("{:?}", settings.server)),
        ("auth", format!("{:?}", settings.auth)),
        ("limits", format!("{:?}", settings.limits)),
        ("usage", format!("{:?}", settings.usage)),
        ("jobs", format!("{:?}", settings.jobs)),
        ("cache", format!("{:?}", settings.cache)),
        ("views", format!("{:?}", settings.views)),
        ("collab", format!("{:?}", settings.collab)),
        ("monitor", format!("{:?}", settings.monitor)),
        ("rate_limits", format!("{:?}", settings.rate_limits)),
        ("admin_token", format!("{:?}", secret(&settings.admin_token))),
        ("cursor_secret", format!("{:?}", secret(&settings.cursor_secret))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settings_outside_the_switches_need_a_restart() {
        let started = Settings::default();
        let mut loaded = started.clone();
        loaded.cache.mode = CacheMode::Off;
        loaded.database.pool_size = Some(3);
        loaded.monitor.slow_query_ms = 5;
        loaded.jobs.analyze_secs = 60;
        loaded.jobs.paused = vec!["analyze".into()];
        assert!(restart_needed(&started, &loaded).is_empty());
        loaded.server.body_limit_bytes += 1;
        loaded.admin_token = Some("a-new-admin-token-0123".to_owned().into());
        assert_eq!(restart_needed(&started, &loaded), ["server", "admin_token"]);
    }

    #[test]
    fn the_settings_give_every_job_its_interval_and_pause() {
        let settings = JobSettings { cleanup_secs: 7, paused: vec!["cleanup_expired".into()], ..Default::default() };
        let schedule = JobSchedule::new(&settings);
        assert_eq!(schedule.job("cleanup_expired"), Some((Duration::from_secs(7), true)));
        assert_eq!(schedule.job("analyze"), Some((Duration::from_secs(settings.analyze_secs), false)));
        assert_eq!(schedule.job("nothing"), None);
    }
}
