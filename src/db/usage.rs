//! Token usage: recording a call (charging the balance in the same statement), the exact
//! summary (materialized view plus live rows), and the recent-usage list.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use crate::domain::time::{end_of_time, start_position, Position};
use crate::domain::{GroupBy, UtcTime};
use crate::telemetry::queries::timed;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageRow {
    pub id: String,
    pub project_id: Option<String>,
    pub endpoint: String,
    pub model: String,
    pub tokens_used: i32,
    pub context_used: f64,
    pub saved_tokens: i32,
    pub cost: f64,
    pub timestamp: UtcTime,
}

pub struct NewUsage<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub project_id: Option<&'a str>,
    pub endpoint: &'a str,
    pub model: &'a str,
    pub tokens_used: i32,
    pub context_used: f64,
    pub saved_tokens: i32,
    pub cost: f64,
}

/// Records one AI call and charges it, in one statement: the balance is decremented only if
/// it covers the call (the row lock makes concurrent calls queue and re-check), and the usage
/// row is written only if the charge happened. None: the balance was too small; nothing
/// changed.
pub async fn record(db: impl PgExecutor<'_>, usage: &NewUsage<'_>) -> sqlx::Result<Option<(UsageRow, i32)>> {
    timed("usage.record", async move {
        let row = sqlx::query!(
            r#"WITH charged AS (
                   UPDATE "User" SET "tokenBalance" = "tokenBalance" - $5, "contextUsed" = "contextUsed" + $6,
                                     "updatedAt" = now() AT TIME ZONE 'UTC'
                   WHERE "id" = $2 AND "tokenBalance" >= $5
                   RETURNING "tokenBalance"
               ), recorded AS (
                   INSERT INTO "TokenUsage" ("id", "userId", "projectId", "endpoint", "model", "tokensUsed",
                                             "contextUsed", "savedTokens", "cost")
                   SELECT $1, $2, $3, $4, $8, $5, $6, $7, $9 FROM charged
                   RETURNING *
               )
               SELECT "id" AS "id!", "projectId" AS "project_id", "endpoint" AS "endpoint!", "model" AS "model!",
                      "tokensUsed" AS "tokens_used!", "contextUsed" AS "context_used!", "savedTokens" AS "saved_tokens!",
                      "cost"::float8 AS "cost!", "timestamp" AS "timestamp!: UtcTime",
                      (SELECT "tokenBalance" FROM charged) AS "balance!"
               FROM recorded"#,
            usage.id,
            usage.user_id,
            usage.project_id,
            usage.endpoint,
            usage.tokens_used,
            usage.context_used,
            usage.saved_tokens,
            usage.model,
            usage.cost as f64,
        )
        .fetch_optional(db)
        .await?;
        Ok(row.map(|row| {
            let record = UsageRow {
                id: row.id,
                project_id: row.project_id,
                endpoint: row.endpoint,
                model: row.model,
                tokens_used: row.tokens_used,
                context_used: row.context_used,
                saved_tokens: row.saved_tokens,
                cost: row.cost,
                timestamp: row.timestamp,
            };
            (record, row.balance)
        }))
    })
    .await
}

/// One group of a usage summary.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct UsageGroupRow {
    /// The day (YYYY-MM-DD), endpoint or model.
    pub key: String,
    pub requests: i64,
    pub tokens_used: i64,
    pub context_used: f64,
    pub saved_tokens: i64,
    pub cost: f64,
}

/// The summary statement for one grouping: `$1` user, `$2` days. Days the view covers
/// (before the day of its last refresh, from `ViewRefresh`) come from `user_token_summary`;
/// the rest is aggregated live from `TokenUsage`, so the answer is exact however stale the
/// view is.
pub fn summary_sql(group_by: GroupBy) -> String {
    let key = match group_by {
        GroupBy::Day => r#"to_char("day", 'YYYY-MM-DD')"#,
        GroupBy::Endpoint => r#""endpoint""#,
        GroupBy::Model => r#""model""#,
    };
    format!(
        r#"WITH bounds AS (
               SELECT date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => $2 - 1) AS since,
                      COALESCE((SELECT date_trunc('day', "refreshedAt") FROM "ViewRefresh"
                                WHERE "viewName" = 'user_token_summary'), '-infinity') AS covered_until
           ), combined AS (
               SELECT s."day", s."endpoint", s."model", s."requests", s."tokensUsed", s."contextUsed",
                      s."savedTokens", s."cost"
               FROM user_token_summary s, bounds b
               WHERE s."userId" = $1 AND s."day" >= b.since AND s."day" < b.covered_until
               UNION ALL
               SELECT t."timestamp"::date, t."endpoint", t."model", 1, t."tokensUsed", t."contextUsed",
                      t."savedTokens", t."cost"
               FROM "TokenUsage" t, bounds b
               WHERE t."userId" = $1 AND t."timestamp" >= GREATEST(b.since, b.covered_until)
           )
           SELECT {key} AS "key", sum("requests")::int8 AS "requests", sum("tokensUsed")::int8 AS "tokensUsed",
                  sum("contextUsed")::float8 AS "contextUsed", sum("savedTokens")::int8 AS "savedTokens",
                  sum("cost")::float8 AS "cost"
           FROM combined GROUP BY 1 ORDER BY 1"#
    )
}

pub async fn summary(
    db: impl PgExecutor<'_>,
    user_id: &str,
    days: i32,
    group_by: GroupBy,
) -> sqlx::Result<Vec<UsageGroupRow>> {
    timed("usage.summary", async move {
        sqlx::query_as(&summary_sql(group_by)).bind(user_id).bind(days).fetch_all(db).await
    })
    .await
}

/// The recent-usage statement: `$1` user, `$2`/`$3` the last (timestamp, id) seen, `$4` limit.
pub const RECENT_SQL: &str = include_str!("../../queries/usage_recent.sql");

/// A user's usage, newest first, one keyset page.
pub async fn recent(
    db: impl PgExecutor<'_>,
    user_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<UsageRow>> {
    timed("usage.recent", async move {
        let (timestamp, id) = start_position(after, end_of_time());
        sqlx::query_file_as!(UsageRow, "queries/usage_recent.sql", user_id, timestamp, id, limit).fetch_all(db).await
    })
    .await
}
