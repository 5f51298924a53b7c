//! Maintenance statements for the background jobs: view refreshes, cleanups, statistics,
//! and the jobs' own bookkeeping.

use std::time::Instant;

use chrono::NaiveDateTime;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;

/// The materialized views, refreshed concurrently so readers never block.
pub const VIEWS: [&str; 2] = ["project_stats", "user_token_summary"];

/// Refreshes one view and records when, in the same transaction: `user_token_summary`
/// covers the days before the refresh transaction's `now()`, and readers take the live rows
/// from that day on, so the two must agree.
pub async fn refresh_view(tx: &mut PgConnection, view: &str) -> sqlx::Result<f64> {
    debug_assert!(VIEWS.contains(&view));
    let started = Instant::now();
    sqlx::query(&format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")).execute(&mut *tx).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    sqlx::query(
        r#"INSERT INTO "ViewRefresh" ("viewName", "refreshedAt", "durationMs")
           VALUES ($1, now() AT TIME ZONE 'UTC', $2)
           ON CONFLICT ("viewName") DO UPDATE SET "refreshedAt" = EXCLUDED."refreshedAt",
                                                  "durationMs" = EXCLUDED."durationMs""#,
    )
    .bind(view)
    .bind(elapsed_ms)
    .execute(&mut *tx)
    .await?;
    Ok(elapsed_ms)
}

/// What one cleanup removed.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub sessions: u64,
    pub verification_tokens: u64,
    pub login_failures: u64,
}

/// Deletes expired sessions and verification tokens, and login failures older than the
/// rate limit's window.
pub async fn cleanup_expired(tx: &mut PgConnection, login_window_secs: f64) -> sqlx::Result<Cleanup> {
    let now = r#"(now() AT TIME ZONE 'UTC')"#;
    let sessions = sqlx::query(&format!(r#"DELETE FROM "Session" WHERE "expires" <= {now}"#)).execute(&mut *tx).await?;
    let tokens =
        sqlx::query(&format!(r#"DELETE FROM "VerificationToken" WHERE "expires" <= {now}"#)).execute(&mut *tx).await?;
    let failures =
        sqlx::query(&format!(r#"DELETE FROM "LoginFailure" WHERE "at" <= {now} - make_interval(secs => $1)"#))
            .bind(login_window_secs)
            .execute(&mut *tx)
            .await?;
    Ok(Cleanup {
        sessions: sessions.rows_affected(),
        verification_tokens: tokens.rows_affected(),
        login_failures: failures.rows_affected(),
    })
}

pub async fn analyze(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("ANALYZE").execute(tx).await?;
    Ok(())
}

/// The last run of a job, as the detailed health output shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct JobRun {
    pub job: String,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub last_started_at: NaiveDateTime,
    #[serde(with = "crate::db::timestamp::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_succeeded_at: Option<NaiveDateTime>,
    pub duration_ms: f64,
    pub outcome: String,
    pub detail: Option<String>,
    pub runs: i64,
}

pub async fn job_runs(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<JobRun>> {
    sqlx::query_as(
        r#"SELECT "job", "lastStartedAt", "lastSucceededAt", "durationMs", "outcome", "detail", "runs"
           FROM "JobRun" ORDER BY "job""#,
    )
    .fetch_all(db)
    .await
}

/// True when no run of `job` succeeded within the last `interval_secs`.
pub async fn is_due(db: impl PgExecutor<'_>, job: &str, interval_secs: f64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        r#"SELECT NOT EXISTS (
               SELECT 1 FROM "JobRun" WHERE "job" = $1
               AND "lastSucceededAt" > (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
           )"#,
    )
    .bind(job)
    .bind(interval_secs)
    .fetch_one(db)
    .await
}

/// Records a run's end. A failure keeps the last success time.
pub async fn record_run(
    db: impl PgExecutor<'_>,
    job: &str,
    duration_ms: f64,
    outcome: Result<String, String>,
) -> sqlx::Result<()> {
    let succeeded = outcome.is_ok();
    let (label, detail) = match outcome {
        Ok(detail) => ("ok", detail),
        Err(detail) => ("error", detail),
    };
    sqlx::query(
        r#"INSERT INTO "JobRun" ("job", "lastStartedAt", "lastFinishedAt", "lastSucceededAt", "durationMs",
                                 "outcome", "detail", "runs")
           VALUES ($1, (now() AT TIME ZONE 'UTC') - make_interval(secs => $2 / 1000),
                   clock_timestamp() AT TIME ZONE 'UTC',
                   CASE WHEN $3 THEN now() AT TIME ZONE 'UTC' END, $2, $4, $5, 1)
           ON CONFLICT ("job") DO UPDATE SET
               "lastStartedAt" = EXCLUDED."lastStartedAt",
               "lastFinishedAt" = EXCLUDED."lastFinishedAt",
               "lastSucceededAt" = COALESCE(EXCLUDED."lastSucceededAt", "JobRun"."lastSucceededAt"),
               "durationMs" = EXCLUDED."durationMs",
               "outcome" = EXCLUDED."outcome",
               "detail" = EXCLUDED."detail",
               "runs" = "JobRun"."runs" + 1"#,
    )
    .bind(job)
    .bind(duration_ms)
    .bind(succeeded)
    .bind(label)
    .bind(detail)
    .execute(db)
    .await?;
    Ok(())
}
