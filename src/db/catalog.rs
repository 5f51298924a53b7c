//! Read-only queries over PostgreSQL's catalog and our own bookkeeping tables, for health
//! and monitoring.

use chrono::NaiveDateTime;
use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableStats {
    pub name: String,
    /// `table` or `materialized_view`.
    pub kind: &'static str,
    /// The planner's estimate (`pg_class.reltuples`); null before the first ANALYZE.
    pub row_estimate: Option<i64>,
    /// Heap, indexes and TOAST together.
    pub total_bytes: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewRefresh {
    pub name: String,
    pub populated: bool,
    #[serde(with = "crate::db::timestamp::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_refresh_at: Option<NaiveDateTime>,
    pub last_refresh_ms: Option<f64>,
}

/// The tables and materialized views of the current schema, largest first.
pub async fn table_stats(pool: &PgPool) -> sqlx::Result<Vec<TableStats>> {
    let rows: Vec<(String, String, f32, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text, c.reltuples, pg_total_relation_size(c.oid)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')
         ORDER BY pg_total_relation_size(c.oid) DESC, c.relname",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, kind, reltuples, total_bytes)| TableStats {
            name,
            kind: if kind == "m" { "materialized_view" } else { "table" },
            row_estimate: (reltuples >= 0.0).then_some(reltuples as i64),
            total_bytes,
        })
        .collect())
}

/// Each materialized view with its last recorded refresh.
pub async fn view_refreshes(pool: &PgPool) -> sqlx::Result<Vec<ViewRefresh>> {
    let rows: Vec<(String, bool, Option<NaiveDateTime>, Option<f64>)> = sqlx::query_as(
        r#"SELECT v.matviewname::text, v.ispopulated, r."refreshedAt", r."durationMs"
           FROM pg_matviews v LEFT JOIN "ViewRefresh" r ON r."viewName" = v.matviewname
           WHERE v.schemaname = current_schema()
           ORDER BY v.matviewname"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, populated, last_refresh_at, last_refresh_ms)| ViewRefresh {
            name,
            populated,
            last_refresh_at,
            last_refresh_ms,
        })
        .collect())
}
