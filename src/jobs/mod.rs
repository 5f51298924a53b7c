//! The background jobs that run inside `serve`: view refreshes, cleanups, ANALYZE and
//! TokenUsage's partitions.
//!
//! Safe with several instances: a job runs inside a transaction that first takes a
//! PostgreSQL advisory lock (`pg_try_advisory_xact_lock`) and then checks `JobRun` for a
//! success within the job's interval. Whoever holds the lock runs it; everyone else skips.

use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::sync::watch;

use crate::config::JobSettings;
use crate::db::maintenance::{self, MaterializedView};
use crate::db::{partitions, Pool};
use crate::service::rate_limit;
use crate::switches::JobSchedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    RefreshProjectStats,
    RefreshUserTokenSummary,
    CleanupExpired,
    Analyze,
    /// Creates TokenUsage's partitions ahead of time, and drops those past retention.
    MaintainPartitions,
}

/// How long the partition job waits for TokenUsage's lock (creating or dropping a partition
/// locks the parent briefly): a long query holding it makes the job fail and retry at the next
/// tick, instead of queueing every usage write behind it.
const PARTITION_LOCK_TIMEOUT: &str = "5s";

impl Job {
    pub const ALL: [Job; 5] = [
        Job::RefreshProjectStats,
        Job::RefreshUserTokenSummary,
        Job::CleanupExpired,
        Job::Analyze,
        Job::MaintainPartitions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::RefreshProjectStats => "refresh_project_stats",
            Job::RefreshUserTokenSummary => "refresh_user_token_summary",
            Job::CleanupExpired => "cleanup_expired",
            Job::Analyze => "analyze",
            Job::MaintainPartitions => "maintain_partitions",
        }
    }

    /// The advisory lock key: a fixed prefix and the job's index.
    fn lock_key(self) -> i64 {
        0x7669_6269_6e67_0100 + Job::ALL.iter().position(|job| *job == self).unwrap_or(0) as i64
    }

    /// Does the work inside the job's transaction; returns a one-line summary.
    async fn execute(self, tx: &mut sqlx::PgConnection, settings: &JobSettings) -> sqlx::Result<String> {
        match self {
            Job::RefreshProjectStats | Job::RefreshUserTokenSummary => {
                let view = if self == Job::RefreshProjectStats {
                    MaterializedView::ProjectStats
                } else {
                    MaterializedView::UserTokenSummary
                };
                let elapsed = maintenance::refresh_view(tx, view).await?;
                Ok(format!("refreshed {} in {elapsed:.0} ms", view.name()))
            }
            Job::CleanupExpired => {
                let removed = maintenance::cleanup_expired(tx, rate_limit::LONGEST_WINDOW.as_secs_f64()).await?;
                Ok(format!(
                    "deleted {} sessions, {} verification tokens, {} login failures",
                    removed.sessions, removed.verification_tokens, removed.login_failures
                ))
            }
            Job::Analyze => maintenance::analyze(tx).await.map(|()| "analyzed".to_owned()),
            Job::MaintainPartitions => {
                if !partitions::usage_is_partitioned(tx).await? {
                    return Ok("TokenUsage is not partitioned: nothing to do".to_owned());
                }
                let created = make_months_ahead(tx, settings).await?;
                let dropped = match settings.usage_retention_months {
                    Some(months_kept) => partitions::drop_older_than(tx, months_kept).await?,
                    None => Vec::new(),
                };
                Ok(format!("created {} partition(s) {created:?}, dropped {} {dropped:?}", created.len(), dropped.len()))
            }
        }
    }
}

/// What one attempt at a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Ran,
    Failed,
    /// Another instance holds the job, or it ran within its interval.
    Skipped,
    /// The job is paused (`switches`).
    Paused,
}

#[derive(Clone)]
pub struct Scheduler {
    pool: Pool,
    settings: JobSettings,
    /// The intervals and pauses, read at every attempt: they are runtime switches.
    schedule: JobSchedule,
}

impl Scheduler {
    /// A scheduler on the settings' intervals and pauses.
    pub fn new(pool: Pool, settings: JobSettings) -> Self {
        let schedule = JobSchedule::new(&settings);
        Self { pool, settings, schedule }
    }

    /// Follows `schedule` (the switches') instead.
    pub fn with_schedule(self, schedule: JobSchedule) -> Self {
        Self { schedule, ..self }
    }

    /// Runs every due job once, in order.
    pub async fn tick(&self) -> Vec<(Job, Attempt)> {
        let mut attempts = Vec::new();
        for job in Job::ALL {
            let attempt = self.run_if_due(job).await.unwrap_or_else(|error| {
                tracing::warn!(job = job.name(), %error, "could not attempt the job");
                Attempt::Failed
            });
            attempts.push((job, attempt));
        }
        attempts
    }

    /// Ticks every `jobs.tick_secs` until `shutdown` changes.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(Duration::from_secs(self.settings.tick_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => { self.tick().await; }
                _ = shutdown.changed() => return,
            }
        }
    }

    #[tracing::instrument(skip_all, fields(job = job.name()))]
    async fn run_if_due(&self, job: Job) -> sqlx::Result<Attempt> {
        let Some((interval, paused)) = self.schedule.job(job.name()) else {
            tracing::warn!("the job is not in the schedule");
            return Ok(Attempt::Skipped);
        };
        if paused {
            tracing::debug!("paused");
            return Ok(Attempt::Paused);
        }
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        maintenance::set_job_statement_timeout(&mut tx, self.settings.statement_timeout_ms).await?;
        let locked = maintenance::try_job_lock(&mut tx, job.lock_key()).await?;
        let interval = interval.as_secs_f64();
        if !locked || !maintenance::is_due(&mut *tx, job.name(), interval).await? {
            return Ok(Attempt::Skipped);
        }
        let started = Instant::now();
        match job.execute(&mut tx, &self.settings).await {
            Ok(summary) => {
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                maintenance::record_run(&mut *tx, job.name(), elapsed_ms, Ok(summary.clone())).await?;
                tx.commit().await?;
                tracing::info!(elapsed_ms, "{summary}");
                Ok(Attempt::Ran)
            }
            Err(error) => {
                tx.rollback().await?;
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::error!(%error, "job failed");
                // The health output shows the outcome; the cause stays in the service log.
                let detail = "failed; the service log has the cause".to_owned();
                maintenance::record_run(&mut *conn, job.name(), elapsed_ms, Err(detail)).await?;
                Ok(Attempt::Failed)
            }
        }
    }
}

/// Creates TokenUsage's partitions for this month and the months ahead once, now, whatever
/// the schedule: `serve` calls it at startup, so that an instance whose scheduler is off
/// (`jobs.enabled = false`) never meets a month without a partition either. Skipped, creating
/// nothing, while another session runs the partition job (which creates the same months).
pub async fn prepare_partitions(pool: &Pool, settings: &JobSettings) -> anyhow::Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    if !maintenance::try_job_lock(&mut tx, Job::MaintainPartitions.lock_key()).await? {
        return Ok(Vec::new());
    }
    // On an unpartitioned TokenUsage this creates nothing.
    let created = make_months_ahead(&mut tx, settings).await?;
    tx.commit().await?;
    Ok(created)
}

/// This month's and the months ahead's partitions, waiting for the table's lock only so long.
async fn make_months_ahead(tx: &mut sqlx::PgConnection, settings: &JobSettings) -> sqlx::Result<Vec<String>> {
    partitions::limit_lock_wait(tx, PARTITION_LOCK_TIMEOUT).await?;
    partitions::ensure_ahead(tx, settings.partition_months_ahead).await
}

/// `vibing2 refresh-views`: refreshes every materialized view once, each in its own
/// transaction, whatever the schedule says.
pub async fn refresh_views_now(pool: &Pool) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let mut refreshed = Vec::new();
    for view in MaterializedView::ALL {
        let mut tx = pool.begin().await?;
        maintenance::lift_statement_timeout(&mut tx).await?;
        let elapsed = maintenance::refresh_view(&mut tx, view).await?;
        tx.commit().await?;
        refreshed.push((view.name(), elapsed));
    }
    Ok(refreshed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_is_named_in_the_settings_in_order() {
        let names: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
        assert_eq!(names, JobSettings::JOBS);
    }
}
