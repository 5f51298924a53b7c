//! Token usage: recording a call (charging the balance in the same statement), the exact
//! summary (materialized view plus live rows), and the recent-usage list.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::ToSchema;

use crate::db::timestamp::{end_of_time, start_position};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct UsageRecord {
    pub id: String,
    pub project_id: Option<String>,
    pub endpoint: String,
    pub model: String,
    pub tokens_used: i32,
    pub context_used: f64,
    pub saved_tokens: i32,
    pub cost: f64,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: NaiveDateTime,
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

const RECORD_COLUMNS: &str = r#""id", "projectId", "endpoint", "model", "tokensUsed", "contextUsed",
    "savedTokens", "cost"::float8 AS "cost", "timestamp""#;

/// Records one AI call and charges it, in one statement: the balance is decremented only if
/// it covers the call (the row lock makes concurrent calls queue and re-check), and the usage
/// row is written only if the charge happened. None: the balance was too small; nothing
/// changed.
pub async fn record(db: impl PgExecutor<'_>, usage: &NewUsage<'_>) -> sqlx::Result<Option<(UsageRecord, i32)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        record: UsageRecord,
        balance: i32,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
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
           SELECT {RECORD_COLUMNS}, (SELECT "tokenBalance" FROM charged) AS balance FROM recorded"#
    ))
    .bind(usage.id)
    .bind(usage.user_id)
    .bind(usage.project_id)
    .bind(usage.endpoint)
    .bind(usage.tokens_used)
    .bind(usage.context_used)
    .bind(usage.saved_tokens)
    .bind(usage.model)
    .bind(usage.cost)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| (row.record, row.balance)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    #[default]
    Day,
    Endpoint,
    Model,
}

/// One group of a usage summary.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct UsageGroup {
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
) -> sqlx::Result<Vec<UsageGroup>> {
    sqlx::query_as(&summary_sql(group_by)).bind(user_id).bind(days).fetch_all(db).await
}

/// The recent-usage statement: `$1` user, `$2`/`$3` the last (timestamp, id) seen, `$4` limit.
pub const RECENT_SQL: &str = r#"SELECT "id", "projectId", "endpoint", "model", "tokensUsed", "contextUsed",
    "savedTokens", "cost"::float8 AS "cost", "timestamp"
    FROM "TokenUsage" WHERE "userId" = $1 AND ("timestamp", "id") < ($2, $3)
    ORDER BY "timestamp" DESC, "id" DESC LIMIT $4"#;

/// A user's usage, newest first, one keyset page.
pub async fn recent(
    db: impl PgExecutor<'_>,
    user_id: &str,
    after: Option<&(NaiveDateTime, String)>,
    limit: i64,
) -> sqlx::Result<Vec<UsageRecord>> {
    let (timestamp, id) = start_position(after, end_of_time());
    sqlx::query_as(RECENT_SQL).bind(user_id).bind(timestamp).bind(id).bind(limit).fetch_all(db).await
}
