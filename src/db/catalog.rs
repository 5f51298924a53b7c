//! Read-only queries over PostgreSQL's catalog and our own bookkeeping tables, for health
//! and monitoring.

use sqlx::PgExecutor;

use crate::domain::UtcTime;
use crate::telemetry::queries::timed;

#[derive(Debug)]
pub struct TableStatsRow {
    pub name: String,
    pub is_materialized_view: bool,
    /// The planner's estimate (`pg_class.reltuples`); None before the first ANALYZE.
    pub row_estimate: Option<i64>,
    /// Heap, indexes and TOAST together.
    pub total_bytes: i64,
}

#[derive(Debug)]
pub struct ViewRefreshRow {
    pub name: String,
    pub populated: bool,
    pub last_refresh_at: Option<UtcTime>,
    pub last_refresh_ms: Option<f64>,
}

/// Answers when the database does.
pub async fn ping(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    timed("catalog.ping", async move {
        sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(db).await?;
        Ok(())
    })
    .await
}

/// The tables and materialized views of the current schema, largest first.
pub async fn table_stats(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<TableStatsRow>> {
    timed("catalog.table_stats", async move {
        let rows = sqlx::query!(
            r#"SELECT c.relname::text AS "name!", c.relkind = 'm' AS "is_materialized_view!",
                      c.reltuples AS "reltuples!", pg_total_relation_size(c.oid) AS "total_bytes!"
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')
               ORDER BY pg_total_relation_size(c.oid) DESC, c.relname"#
        )
        .fetch_all(db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| TableStatsRow {
                name: row.name,
                is_materialized_view: row.is_materialized_view,
                row_estimate: (row.reltuples >= 0.0).then_some(row.reltuples as i64),
                total_bytes: row.total_bytes,
            })
            .collect())
    })
    .await
}

/// Each materialized view with its last recorded refresh.
pub async fn view_refreshes(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<ViewRefreshRow>> {
    timed("catalog.view_refreshes", async move {
        sqlx::query_as!(
            ViewRefreshRow,
            r#"SELECT v.matviewname::text AS "name!", v.ispopulated AS "populated!",
                      r."refreshedAt" AS "last_refresh_at?: UtcTime", r."durationMs" AS "last_refresh_ms?"
               FROM pg_matviews v LEFT JOIN "ViewRefresh" r ON r."viewName" = v.matviewname
               WHERE v.schemaname = current_schema()
               ORDER BY v.matviewname"#
        )
        .fetch_all(db)
        .await
    })
    .await
}
