//! The monitor's own table, `QueryPerformance` (the slow-query history).

use sqlx::PgExecutor;

use crate::domain::UtcTime;

/// One slow call, as the history keeps it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowCallRow {
    pub query: String,
    pub duration_ms: f64,
    pub rows: i64,
    pub failed: bool,
    pub recorded_at: UtcTime,
}

/// Appends slow calls and drops all but the newest `keep` rows, in one statement.
pub async fn append_slow_calls(
    db: impl PgExecutor<'_>,
    queries: &[String],
    durations_ms: &[f64],
    rows: &[i64],
    failed: &[bool],
    keep: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"WITH appended AS (
               INSERT INTO "QueryPerformance" ("query", "durationMs", "rows", "failed")
               SELECT * FROM unnest($1::text[], $2::float8[], $3::int8[], $4::bool[])
               RETURNING "id"
           )
           DELETE FROM "QueryPerformance" WHERE "id" <= (SELECT max("id") FROM appended) - $5"#,
        queries,
        durations_ms,
        rows,
        failed,
        keep
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The newest slow calls, newest first.
pub async fn recent_slow_calls(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<SlowCallRow>> {
    sqlx::query_as!(
        SlowCallRow,
        r#"SELECT "query", "durationMs" AS "duration_ms", "rows", "failed", "recordedAt" AS "recorded_at: UtcTime"
           FROM "QueryPerformance" ORDER BY "id" DESC LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await
}

// The catalog views below read `pg_catalog` and the `pg_stat_*` views, whose shape is
// PostgreSQL's, not this schema's: they are checked when they run (and by the tests), not at
// compile time, since `pg_stat_statements` need not exist where the code is compiled.

/// A statement from `pg_stat_statements`, this database's only.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct StatementRow {
    pub query_id: String,
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
    /// Shared-buffer hits over all shared-buffer reads; None when it read none.
    pub hit_ratio: Option<f64>,
}

/// Which way [`top_statements`] ranks.
#[derive(Debug, Clone, Copy)]
pub enum StatementOrder {
    TotalTime,
    MeanTime,
}

/// The top statements by total or mean execution time. Fails when the extension is not
/// installed in this database (42P01) or not loaded by the server (55000).
pub async fn top_statements(
    db: impl PgExecutor<'_>,
    order: StatementOrder,
    limit: i64,
    own_role_only: bool,
) -> sqlx::Result<Vec<StatementRow>> {
    let order_by = match order {
        StatementOrder::TotalTime => "total_exec_time",
        StatementOrder::MeanTime => "mean_exec_time",
    };
    let sql = format!(
        "SELECT queryid::text AS query_id, left(query, 2000) AS query, calls, total_exec_time AS total_ms,
                mean_exec_time AS mean_ms, rows,
                CASE WHEN shared_blks_hit + shared_blks_read = 0 THEN NULL
                     ELSE shared_blks_hit::float8 / (shared_blks_hit + shared_blks_read) END AS hit_ratio
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND (NOT $2 OR userid = (SELECT oid FROM pg_roles WHERE rolname = current_user))
         ORDER BY {order_by} DESC LIMIT $1"
    );
    sqlx::query_as(&sql).bind(limit).bind(own_role_only).fetch_all(db).await
}

/// One index's use since the statistics were last reset.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct IndexUseRow {
    pub index: String,
    pub table: String,
    pub scans: i64,
    pub tuples_read: i64,
    pub tuples_fetched: i64,
    pub bytes: i64,
    pub unique: bool,
    pub primary: bool,
}

const INDEX_USE: &str = "SELECT s.indexrelname::text AS index, s.relname::text AS table, s.idx_scan AS scans,
            s.idx_tup_read AS tuples_read, s.idx_tup_fetch AS tuples_fetched,
            pg_relation_size(s.indexrelid) AS bytes, i.indisunique AS unique, i.indisprimary AS primary
     FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
     WHERE s.schemaname = 'public'";

/// Every index of the schema with its scans, tuples and size, most scanned first.
pub async fn index_use(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<IndexUseRow>> {
    sqlx::query_as(&format!("{INDEX_USE} ORDER BY s.idx_scan DESC, 1")).fetch_all(db).await
}

/// Non-unique indexes scanned at most `max_scans` times that take at least `min_bytes`:
/// candidates to drop. Unique indexes and primary keys enforce something, and never appear.
pub async fn unused_indexes(db: impl PgExecutor<'_>, max_scans: i64, min_bytes: i64) -> sqlx::Result<Vec<IndexUseRow>> {
    let sql = format!(
        "{INDEX_USE} AND NOT i.indisunique AND NOT i.indisprimary
           AND s.idx_scan <= $1 AND pg_relation_size(s.indexrelid) >= $2
         ORDER BY pg_relation_size(s.indexrelid) DESC, 1"
    );
    sqlx::query_as(&sql).bind(max_scans).bind(min_bytes).fetch_all(db).await
}

/// When this database's statistics were last reset (None: never since the cluster started).
pub async fn stats_reset(db: impl PgExecutor<'_>) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
    sqlx::query_scalar("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(db)
        .await
}

/// An index whose work another index of the same table already does.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateIndexRow {
    pub index: String,
    pub covered_by: String,
    pub table: String,
    pub bytes: i64,
    pub definition: String,
    pub covering_definition: String,
}

/// Indexes covered by another one: same table, method, expressions and predicate, key columns
/// a prefix of the other's. A unique index is never reported (it enforces something); of two
/// identical non-unique ones, the younger is.
pub async fn duplicate_indexes(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<DuplicateIndexRow>> {
    sqlx::query_as(
        "WITH idx AS (
             SELECT i.indexrelid, i.indrelid, ic.relname::text AS name, tc.relname::text AS table_name,
                    ic.relam, (i.indkey::int2[])[0:i.indnkeyatts - 1] AS cols,
                    coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
                    coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred,
                    i.indisunique AS is_unique
             FROM pg_index i
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_class tc ON tc.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = tc.relnamespace
             WHERE n.nspname = 'public' AND i.indisvalid
         )
         SELECT a.name AS index, b.name AS covered_by, a.table_name AS table,
                pg_relation_size(a.indexrelid) AS bytes, pg_get_indexdef(a.indexrelid) AS definition,
                pg_get_indexdef(b.indexrelid) AS covering_definition
         FROM idx a
         JOIN idx b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
                   AND b.exprs = a.exprs AND b.pred = a.pred
         WHERE NOT a.is_unique
           AND cardinality(a.cols) <= cardinality(b.cols)
           AND b.cols[1:cardinality(a.cols)] = a.cols
           AND (cardinality(a.cols) < cardinality(b.cols) OR b.is_unique OR a.indexrelid > b.indexrelid)
         ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
}

/// An index a failed `CREATE INDEX CONCURRENTLY` left invalid: maintained on every write,
/// used by no query.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct InvalidIndexRow {
    pub index: String,
    pub table: String,
    pub definition: String,
}

pub async fn invalid_indexes(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<InvalidIndexRow>> {
    sqlx::query_as(
        "SELECT ic.relname::text AS index, tc.relname::text AS table, pg_get_indexdef(i.indexrelid) AS definition
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_class tc ON tc.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = tc.relnamespace
         WHERE n.nspname = 'public' AND NOT i.indisvalid
         ORDER BY 1",
    )
    .fetch_all(db)
    .await
}

/// A table's size, rows, upkeep and scans.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TableRow {
    pub table: String,
    pub live_rows: i64,
    pub dead_rows: i64,
    pub table_bytes: i64,
    pub index_bytes: i64,
    pub toast_bytes: i64,
    pub last_vacuum: Option<chrono::DateTime<chrono::Utc>>,
    pub last_autovacuum: Option<chrono::DateTime<chrono::Utc>>,
    pub last_analyze: Option<chrono::DateTime<chrono::Utc>>,
    pub last_autoanalyze: Option<chrono::DateTime<chrono::Utc>>,
    pub seq_scans: i64,
    pub index_scans: i64,
    /// Sequential scans over all scans; None before the first scan.
    pub seq_scan_ratio: Option<f64>,
}

pub async fn tables(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<TableRow>> {
    sqlx::query_as(
        "SELECT s.relname::text AS table, s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
                pg_relation_size(s.relid) AS table_bytes, pg_indexes_size(s.relid) AS index_bytes,
                coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes,
                s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
                s.seq_scan AS seq_scans, coalesce(s.idx_scan, 0) AS index_scans,
                CASE WHEN s.seq_scan + coalesce(s.idx_scan, 0) = 0 THEN NULL
                     ELSE s.seq_scan::float8 / (s.seq_scan + coalesce(s.idx_scan, 0)) END AS seq_scan_ratio
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
         WHERE s.schemaname = 'public'
         ORDER BY pg_total_relation_size(s.relid) DESC, 1",
    )
    .fetch_all(db)
    .await
}

/// How far a sequence has come towards its maximum.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SequenceRow {
    pub sequence: String,
    pub last_value: i64,
    pub max_value: i64,
    pub used_fraction: f64,
}

pub async fn sequences(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<SequenceRow>> {
    sqlx::query_as(
        "SELECT schemaname || '.' || sequencename AS sequence, last_value, max_value,
                last_value::float8 / max_value AS used_fraction
         FROM pg_sequences WHERE last_value IS NOT NULL
         ORDER BY used_fraction DESC, 1",
    )
    .fetch_all(db)
    .await
}

/// The oldest unfrozen transaction id's age in this database, against the point where
/// PostgreSQL forces an anti-wraparound vacuum and the hard limit of about 2^31.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct WraparoundRow {
    pub xid_age: i64,
    pub freeze_max_age: i64,
    pub wraparound_limit: i64,
}

pub async fn wraparound(db: impl PgExecutor<'_>) -> sqlx::Result<WraparoundRow> {
    sqlx::query_as(
        "SELECT age(datfrozenxid)::int8 AS xid_age,
                current_setting('autovacuum_freeze_max_age')::int8 AS freeze_max_age,
                2147483647::int8 AS wraparound_limit
         FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(db)
    .await
}

/// Connections to this database by state.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStateRow {
    pub state: String,
    pub connections: i64,
}

pub async fn connections(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<ConnectionStateRow>> {
    sqlx::query_as(
        "SELECT coalesce(state, 'unknown') AS state, count(*) AS connections
         FROM pg_stat_activity WHERE datname = current_database()
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(db)
    .await
}

/// A statement running longer than asked, or waiting on another session's lock.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRow {
    pub pid: i32,
    pub state: Option<String>,
    pub running_ms: f64,
    pub wait_event_type: Option<String>,
    /// The sessions holding what it waits for; empty when it is not blocked.
    pub blocked_by: Vec<i32>,
    pub query: String,
}

const ACTIVITY: &str = "SELECT pid, state,
            coalesce(extract(epoch FROM clock_timestamp() - query_start) * 1000, 0)::float8 AS running_ms,
            wait_event_type, pg_blocking_pids(pid) AS blocked_by, left(query, 2000) AS query
     FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()";

/// Statements that have run at least `min_ms`, longest first.
pub async fn long_running(db: impl PgExecutor<'_>, min_ms: f64) -> sqlx::Result<Vec<ActivityRow>> {
    let sql = format!(
        "{ACTIVITY} AND state <> 'idle' AND query_start <= clock_timestamp() - make_interval(secs => $1 / 1000)
         ORDER BY query_start"
    );
    sqlx::query_as(&sql).bind(min_ms).fetch_all(db).await
}

/// Sessions waiting on another's lock.
pub async fn blocked(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<ActivityRow>> {
    sqlx::query_as(&format!("{ACTIVITY} AND cardinality(pg_blocking_pids(pid)) > 0 ORDER BY query_start"))
        .fetch_all(db)
        .await
}

/// `EXPLAIN (FORMAT JSON)` of one statement, with `ANALYZE` and `BUFFERS` when asked, inside a
/// `READ ONLY` transaction under its own statement timeout, which is always rolled back. It
/// runs on a connection taken out of the pool and closed afterwards (or when the request is
/// dropped), so whatever the statement leaves on its session (an advisory lock, a setting)
/// ends with it and never reaches another request.
pub async fn explain(
    pool: &super::Pool,
    statement: &str,
    analyze: bool,
    timeout_ms: u64,
) -> sqlx::Result<serde_json::Value> {
    let mut conn = pool.acquire().await?.detach();
    let plan = explain_on(&mut conn, statement, analyze, timeout_ms).await;
    let _ = sqlx::Connection::close(conn).await;
    plan
}

async fn explain_on(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    analyze: bool,
    timeout_ms: u64,
) -> sqlx::Result<serde_json::Value> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(timeout_ms.to_string())
        .execute(&mut *tx)
        .await?;
    let options = if analyze { "FORMAT JSON, ANALYZE, BUFFERS" } else { "FORMAT JSON" };
    // Sent as one prepared statement: PostgreSQL itself refuses a second command in it.
    let plan: serde_json::Value =
        sqlx::query_scalar(&format!("EXPLAIN ({options}) {statement}")).persistent(false).fetch_one(&mut *tx).await?;
    tx.rollback().await?;
    Ok(plan)
}

/// The generic plan of a statement with `$n` placeholders (as `pg_stat_statements` keeps
/// them): prepared with its parameter types inferred, and explained under
/// `force_generic_plan`, so the values given (NULLs) play no part. On `conn`'s session, which
/// the caller keeps for the hypothetical indexes it creates, and closes afterwards: the
/// setting, the prepared statement and the indexes are all the session's.
pub async fn generic_plan(conn: &mut sqlx::PgConnection, statement: &str) -> sqlx::Result<serde_json::Value> {
    sqlx::query(&format!("PREPARE vibing2_advised AS {statement}")).persistent(false).execute(&mut *conn).await?;
    let explained = async {
        sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
        let parameters: i32 = sqlx::query_scalar(
            "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'vibing2_advised'",
        )
        .fetch_one(&mut *conn)
        .await?;
        let nulls = vec!["NULL"; usize::try_from(parameters).unwrap_or(0)].join(", ");
        let arguments = if nulls.is_empty() { String::new() } else { format!("({nulls})") };
        sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) EXECUTE vibing2_advised{arguments}"))
            .persistent(false)
            .fetch_one(&mut *conn)
            .await
    }
    .await;
    sqlx::query("RESET plan_cache_mode").execute(&mut *conn).await?;
    sqlx::query("DEALLOCATE vibing2_advised").execute(&mut *conn).await?;
    explained
}

/// The columns of a table of the schema, by name.
pub async fn column_names(db: impl PgExecutor<'_>, table: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(table)
    .fetch_all(db)
    .await
}

/// Creates a hypothetical index (hypopg: in this session's memory only, seen by the planner,
/// never built).
pub async fn create_hypothetical_index(conn: &mut sqlx::PgConnection, definition: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT indexrelid FROM hypopg_create_index($1)").bind(definition).execute(conn).await?;
    Ok(())
}

/// Drops every hypothetical index of this session.
pub async fn reset_hypothetical_indexes(conn: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT hypopg_reset()").execute(conn).await?;
    Ok(())
}
