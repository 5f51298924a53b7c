//! Maintenance statements for the background jobs: view refreshes, cleanups, statistics,
//! and the jobs' own bookkeeping.

use std::time::Instant;

use sqlx::{PgConnection, PgExecutor};

use crate::domain::UtcTime;
use crate::telemetry::queries::{timed, Rows};

/// The materialized views, refreshed concurrently so readers never block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaterializedView {
    ProjectStats,
    UserTokenSummary,
}

impl MaterializedView {
    pub const ALL: [MaterializedView; 2] = [MaterializedView::ProjectStats, MaterializedView::UserTokenSummary];

    pub fn name(self) -> &'static str {
        match self {
            MaterializedView::ProjectStats => "project_stats",
            MaterializedView::UserTokenSummary => "user_token_summary",
        }
    }
}

/// Refreshes one view and records when, in the same transaction: `user_token_summary`
/// covers the days before the refresh transaction's `now()`, and readers take the live rows
/// from that day on, so the two must agree.
pub async fn refresh_view(tx: &mut PgConnection, view: MaterializedView) -> sqlx::Result<f64> {
    timed("maintenance.refresh_view", async move {
        let started = Instant::now();
        match view {
            MaterializedView::ProjectStats => {
                sqlx::query!("REFRESH MATERIALIZED VIEW CONCURRENTLY project_stats").execute(&mut *tx).await?
            }
            MaterializedView::UserTokenSummary => {
                sqlx::query!("REFRESH MATERIALIZED VIEW CONCURRENTLY user_token_summary").execute(&mut *tx).await?
            }
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        sqlx::query!(
            r#"INSERT INTO "ViewRefresh" ("viewName", "refreshedAt", "durationMs")
               VALUES ($1, now() AT TIME ZONE 'UTC', $2)
               ON CONFLICT ("viewName") DO UPDATE SET "refreshedAt" = EXCLUDED."refreshedAt",
                                                      "durationMs" = EXCLUDED."durationMs""#,
            view.name(),
            elapsed_ms
        )
        .execute(&mut *tx)
        .await?;
        Ok(elapsed_ms)
    })
    .await
}

/// What one cleanup removed.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub sessions: u64,
    pub verification_tokens: u64,
    pub login_failures: u64,
}

impl Rows for Cleanup {
    fn rows(&self) -> u64 {
        self.sessions + self.verification_tokens + self.login_failures
    }
}

/// Deletes expired sessions and verification tokens, and login failures older than the
/// rate limit's window.
pub async fn cleanup_expired(tx: &mut PgConnection, login_window_secs: f64) -> sqlx::Result<Cleanup> {
    timed("maintenance.cleanup_expired", async move {
        let sessions = sqlx::query!(r#"DELETE FROM "Session" WHERE "expires" <= (now() AT TIME ZONE 'UTC')"#)
            .execute(&mut *tx)
            .await?;
        let tokens = sqlx::query!(r#"DELETE FROM "VerificationToken" WHERE "expires" <= (now() AT TIME ZONE 'UTC')"#)
            .execute(&mut *tx)
            .await?;
        let failures = sqlx::query!(
            r#"DELETE FROM "LoginFailure" WHERE "at" <= (now() AT TIME ZONE 'UTC') - make_interval(secs => $1)"#,
            login_window_secs
        )
        .execute(&mut *tx)
        .await?;
        Ok(Cleanup {
            sessions: sessions.rows_affected(),
            verification_tokens: tokens.rows_affected(),
            login_failures: failures.rows_affected(),
        })
    })
    .await
}

pub async fn analyze(tx: &mut PgConnection) -> sqlx::Result<()> {
    timed("maintenance.analyze", async move {
        sqlx::query!("ANALYZE").execute(tx).await?;
        Ok(())
    })
    .await
}

/// Lifts the request-sized `statement_timeout` for the transaction of an operator's command
/// (`vibing2 refresh-views`): a refresh on a large database may outlast any request's.
pub async fn lift_statement_timeout(tx: &mut PgConnection) -> sqlx::Result<()> {
    timed("maintenance.lift_statement_timeout", async move {
        sqlx::query!("SET LOCAL statement_timeout = 0").execute(tx).await?;
        Ok(())
    })
    .await
}

/// Sets the `statement_timeout` of a scheduled job's transaction: longer than a request's,
/// still bounded, so a job stuck on a lock gives its connection back.
pub async fn set_job_statement_timeout(tx: &mut PgConnection, timeout_ms: u64) -> sqlx::Result<()> {
    timed("maintenance.set_job_statement_timeout", async move {
        sqlx::query!(r#"SELECT set_config('statement_timeout', $1, true) AS "set!""#, format!("{timeout_ms}ms"))
            .fetch_one(tx)
            .await?;
        Ok(())
    })
    .await
}

/// Takes the job's advisory lock for the rest of the transaction; false if another session
/// holds it.
pub async fn try_job_lock(tx: &mut PgConnection, key: i64) -> sqlx::Result<bool> {
    timed("maintenance.try_job_lock", async move {
        sqlx::query_scalar!(r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#, key).fetch_one(tx).await
    })
    .await
}

/// The last run of a job, as the detailed health output shows it.
#[derive(Debug, Clone)]
pub struct JobRunRow {
    pub job: String,
    pub last_started_at: UtcTime,
    pub last_succeeded_at: Option<UtcTime>,
    pub duration_ms: f64,
    pub outcome: String,
    pub detail: Option<String>,
    pub runs: i64,
}

pub async fn job_runs(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<JobRunRow>> {
    timed("maintenance.job_runs", async move {
        sqlx::query_as!(
            JobRunRow,
            r#"SELECT "job", "lastStartedAt" AS "last_started_at: UtcTime",
                      "lastSucceededAt" AS "last_succeeded_at: UtcTime", "durationMs" AS "duration_ms", "outcome",
                      "detail", "runs"
               FROM "JobRun" ORDER BY "job""#
        )
        .fetch_all(db)
        .await
    })
    .await
}

/// True when no run of `job` succeeded within the last `interval_secs`.
pub async fn is_due(db: impl PgExecutor<'_>, job: &str, interval_secs: f64) -> sqlx::Result<bool> {
    timed("maintenance.is_due", async move {
        sqlx::query_scalar!(
            r#"SELECT NOT EXISTS (
                   SELECT 1 FROM "JobRun" WHERE "job" = $1
                   AND "lastSucceededAt" > (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
               ) AS "due!""#,
            job,
            interval_secs
        )
        .fetch_one(db)
        .await
    })
    .await
}

/// Records a run's end. A failure keeps the last success time.
pub async fn record_run(
    db: impl PgExecutor<'_>,
    job: &str,
    duration_ms: f64,
    outcome: Result<String, String>,
) -> sqlx::Result<()> {
    timed("maintenance.record_run", async move {
        let succeeded = outcome.is_ok();
        let (label, detail) = match outcome {
            Ok(detail) => ("ok", detail),
            Err(detail) => ("error", detail),
        };
        sqlx::query!(
            r#"INSERT INTO "JobRun" ("job", "lastStartedAt", "lastFinishedAt", "lastSucceededAt", "durationMs",
                                     "outcome", "detail", "runs")
               VALUES ($1, (now() AT TIME ZONE 'UTC') - make_interval(secs => $2::float8 / 1000),
                       clock_timestamp() AT TIME ZONE 'UTC',
                       CASE WHEN $3 THEN now() AT TIME ZONE 'UTC' END, $2::float8, $4, $5, 1)
               ON CONFLICT ("job") DO UPDATE SET
                   "lastStartedAt" = EXCLUDED."lastStartedAt",
                   "lastFinishedAt" = EXCLUDED."lastFinishedAt",
                   "lastSucceededAt" = COALESCE(EXCLUDED."lastSucceededAt", "JobRun"."lastSucceededAt"),
                   "durationMs" = EXCLUDED."durationMs",
                   "outcome" = EXCLUDED."outcome",
                   "detail" = EXCLUDED."detail",
                   "runs" = "JobRun"."runs" + 1"#,
            job,
            duration_ms,
            succeeded,
            label,
            detail
        )
        .execute(db)
        .await?;
        Ok(())
    })
    .await
}
