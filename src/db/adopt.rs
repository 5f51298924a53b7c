//! Adopting a Phase-2 database in the state the platform's own optimization left it.
//!
//! The platform pushed the report's optimized Prisma schema on top of `init_postgresql`
//! (counters, file size and checksum, the message cursor, usage project, model and cost) and
//! ran the report's index script, of which any subset of statements may have succeeded. Such a
//! database is recognised from its catalog, column by column, against the baseline itself:
//! migration 1 is built in a scratch schema and compared. A state that is neither the
//! baseline nor the baseline plus known optimized columns (of the types the report gave them)
//! is refused before anything changes.
//!
//! Adoption runs in migration 2's transaction. Before it, the optimized columns' values are
//! kept aside in temporary tables and the columns, with the report's indexes, are dropped, so
//! migration 2 meets the baseline it was written for. After it, the kept values are put back:
//! the counters (the larger of the report's counter and the legacy one), views, featured
//! flags, preview URLs, the usage's project, model and cost, and the message sequence carried
//! on past the last SERIAL value. Sizes and checksums are recomputed from the content by
//! migration 2 itself; message cursors are renumbered in `createdAt` order, the keyset order.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use sqlx::{Executor, PgConnection, Row};

use super::migrate::{MIGRATIONS, PHASE2_TABLES};

/// The columns the report's optimized schema adds, and the types it may have given them.
const OPTIMIZED_COLUMNS: &[(&str, &str, &[&str])] = &[
    ("Project", "likeCount", &["integer"]),
    ("Project", "forkCount", &["integer"]),
    ("Project", "viewCount", &["integer"]),
    ("Project", "isFeatured", &["boolean"]),
    ("Project", "previewUrl", &["text"]),
    ("ProjectFile", "size", &["integer"]),
    ("ProjectFile", "checksum", &["text"]),
    ("Message", "cursor", &["integer", "bigint"]),
    ("Message", "tokens", &["integer"]),
    ("TokenUsage", "projectId", &["text"]),
    ("TokenUsage", "model", &["text"]),
    ("TokenUsage", "cost", &["double precision", "numeric(14,6)", "numeric"]),
];

/// The index names of the report's index script (docs/indexes.md lists each one's fate).
/// Whichever of them exists is dropped: migration 3 builds the ledger's set.
pub const REPORT_INDEXES: &[&str] = &[
    "idx_user_email_password",
    "idx_user_created_at",
    "idx_user_plan",
    "idx_project_user_updated",
    "idx_project_visibility_likes",
    "idx_project_visibility_forks",
    "idx_project_visibility_views",
    "idx_project_visibility_created",
    "idx_project_visibility_type_updated",
    "idx_project_featured_visibility_updated",
    "idx_project_name_gin",
    "idx_project_user_created",
    "idx_project_file_project_path",
    "idx_project_file_project_updated",
    "idx_project_file_language",
    "idx_project_file_project_language",
    "idx_message_project_cursor",
    "idx_message_project_created_desc",
    "idx_message_project_role_created",
    "idx_token_usage_user_timestamp_desc",
    "idx_token_usage_user_endpoint_timestamp",
    "idx_token_usage_project",
    "idx_token_usage_timestamp",
    "idx_token_usage_model",
];

/// What the catalog showed: the optimized columns present and the indexes to drop.
#[derive(Debug, Default, Clone)]
pub struct Phase2State {
    pub optimized_columns: BTreeSet<(String, String)>,
    pub indexes_to_drop: Vec<String>,
    /// Prisma columns whose default or nullability the optimized schema changed, with the
    /// baseline's: they are set back, so migration 2 meets the baseline.
    pub drifted_columns: Vec<(String, String, Column)>,
}

/// A column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub data_type: String,
    pub default: Option<String>,
    pub not_null: bool,
}

impl Phase2State {
    pub fn is_optimized(&self) -> bool {
        !self.optimized_columns.is_empty() || !self.indexes_to_drop.is_empty() || !self.drifted_columns.is_empty()
    }

    fn has(&self, table: &str, column: &str) -> bool {
        self.optimized_columns.contains(&(table.to_owned(), column.to_owned()))
    }

    /// One line: the state found.
    pub fn describe(&self) -> String {
        if !self.is_optimized() {
            return "Prisma's init_postgresql schema".into();
        }
        let columns: Vec<String> = self.optimized_columns.iter().map(|(t, c)| format!("{t}.{c}")).collect();
        format!(
            "init_postgresql with {} of the report's {} optimized columns ({}) and {} of its indexes",
            columns.len(),
            OPTIMIZED_COLUMNS.len(),
            columns.join(", "),
            self.indexes_to_drop.len()
        )
    }
}

/// What adoption carried over, for the migrate log.
#[derive(Debug, Default, Clone)]
pub struct Adoption {
    pub state: String,
    pub indexes_dropped: Vec<String>,
    pub projects: u64,
    /// Projects whose legacy `likes`/`forks` disagreed with the report's counters; the larger
    /// value was kept.
    pub counter_disagreements: u64,
    pub usage_rows: u64,
    /// Messages whose tokens or SERIAL cursor were kept.
    pub messages: u64,
}

/// The rows kept aside before migration 2, per table.
#[derive(Debug, Default)]
pub struct Kept(BTreeMap<&'static str, u64>);

impl Kept {
    fn rows(&self, table: &str) -> u64 {
        self.0.get(table).copied().unwrap_or(0)
    }
}

/// How each kept column is put back, on the migrated row `t` from its kept value `k`. Migration
/// 2 folded the legacy likes/forks into the counters; of the two, the larger stands. A usage
/// row whose project is gone keeps its usage unattributed, as ON DELETE SET NULL would.
const RESTORED: &[(&str, &str, &str)] = &[
    ("Project", "likeCount", r#"GREATEST(t."likeCount", k."likeCount", 0)"#),
    ("Project", "forkCount", r#"GREATEST(t."forkCount", k."forkCount", 0)"#),
    ("Project", "viewCount", r#"GREATEST(k."viewCount", 0)"#),
    ("Project", "isFeatured", r#"k."isFeatured""#),
    ("Project", "previewUrl", r#"k."previewUrl""#),
    ("TokenUsage", "projectId", r#"(SELECT p."id" FROM "Project" p WHERE p."id" = k."projectId")"#),
    ("TokenUsage", "model", r#"COALESCE(NULLIF(k."model", ''), 'unknown')"#),
    ("TokenUsage", "cost", r#"GREATEST(round(k."cost"::numeric, 6), 0)"#),
    ("Message", "tokens", r#"GREATEST(k."tokens", 0)"#),
];

/// The tables whose optimized values are kept aside, all keyed by "id".
const KEPT_TABLES: [&str; 3] = ["Project", "TokenUsage", "Message"];

/// Reads the Phase-2 tables' columns and indexes and decides what state they are in, or
/// refuses one it cannot adopt. Changes nothing (its scratch schema is rolled back).
pub async fn inspect(conn: &mut PgConnection) -> anyhow::Result<Phase2State> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let baseline = baseline_columns(&mut tx).await?;
    let baseline_indexes: BTreeSet<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = '_vibing2_baseline'")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    tx.rollback().await?;

    let present = columns(conn, "current_schema()").await?;
    let mut state = Phase2State::default();
    for ((table, column), found) in &present {
        match baseline.get(&(table.clone(), column.clone())) {
            Some(expected) if expected == found => {}
            Some(expected) if expected.data_type == found.data_type => {
                state.drifted_columns.push((table.clone(), column.clone(), expected.clone()));
            }
            Some(expected) => bail!(
                "cannot adopt this database: {table}.{column} is {}, where Prisma's schema has {}",
                found.data_type,
                expected.data_type
            ),
            None => {
                let found = &found.data_type;
                let known = OPTIMIZED_COLUMNS.iter().find(|(t, c, _)| t == table && c == column);
                match known {
                    Some((_, _, types)) if types.contains(&found.as_str()) => {
                        state.optimized_columns.insert((table.clone(), column.clone()));
                    }
                    Some((_, _, types)) => bail!(
                        "cannot adopt this database: {table}.{column} is {found}, not the report's {}",
                        types.join(" or ")
                    ),
                    None => bail!(
                        "cannot adopt this database: {table}.{column} ({found}) is in neither Prisma's schema nor the \
                         report's"
                    ),
                }
            }
        }
    }
    if let Some((table, column)) = baseline.keys().find(|key| !present.contains_key(*key)) {
        bail!("cannot adopt this database: {table}.{column} of Prisma's schema is missing");
    }

    let indexes = sqlx::query(
        r#"SELECT i.indexname::text AS name, i.indexdef AS definition
           FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)"#,
    )
    .bind(&PHASE2_TABLES[..])
    .fetch_all(&mut *conn)
    .await?;
    for index in indexes {
        let name: String = index.get("name");
        let definition: String = index.get("definition");
        let on_password = definition.contains(r#""password""#) || definition.contains("(password");
        if REPORT_INDEXES.contains(&name.as_str()) || (on_password && !baseline_indexes.contains(&name)) {
            state.indexes_to_drop.push(name);
        }
    }
    Ok(state)
}

/// The columns of the Phase-2 tables in `schema` (an SQL expression), keyed by (table, column).
async fn columns(conn: &mut PgConnection, schema: &str) -> anyhow::Result<BTreeMap<(String, String), Column>> {
    let rows = sqlx::query(&format!(
        r#"SELECT c.relname::text AS "table", a.attname::text AS "column",
                  format_type(a.atttypid, a.atttypmod) AS "type", pg_get_expr(d.adbin, d.adrelid) AS "default",
                  a.attnotnull AS "not_null"
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE n.nspname = {schema} AND c.relkind = 'r' AND c.relname = ANY($1)
             AND a.attnum > 0 AND NOT a.attisdropped"#
    ))
    .bind(&PHASE2_TABLES[..])
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let column =
                Column { data_type: row.get("type"), default: row.get("default"), not_null: row.get("not_null") };
            ((row.get("table"), row.get("column")), column)
        })
        .collect())
}

/// Migration 1's columns, read from a scratch schema the caller's transaction rolls back.
async fn baseline_columns(conn: &mut PgConnection) -> anyhow::Result<BTreeMap<(String, String), Column>> {
    conn.execute("CREATE SCHEMA _vibing2_baseline").await?;
    conn.execute("SET LOCAL search_path = _vibing2_baseline").await?;
    conn.execute(sqlx::raw_sql(MIGRATIONS[0].sql)).await.context("building the baseline to compare with")?;
    columns(conn, "'_vibing2_baseline'").await
}

/// Before migration 2, in its transaction: keeps the optimized values aside (temporary tables
/// that go with the commit) and takes the database back to the baseline's shape.
pub async fn before_baseline_upgrade(tx: &mut PgConnection, state: &Phase2State) -> anyhow::Result<Kept> {
    for index in &state.indexes_to_drop {
        tx.execute(sqlx::raw_sql(&format!(r#"DROP INDEX IF EXISTS "{index}""#))).await?;
        tracing::info!(%index, "dropped an index of the report's script");
    }
    let mut kept = Kept::default();
    for table in KEPT_TABLES {
        let columns: Vec<String> = OPTIMIZED_COLUMNS
            .iter()
            .filter(|(t, c, _)| *t == table && state.has(t, c))
            .map(|(_, column, _)| format!(r#""{column}""#))
            .collect();
        if columns.is_empty() {
            continue;
        }
        let created = tx
            .execute(sqlx::raw_sql(&format!(
                r#"CREATE TEMPORARY TABLE "kept_{table}" ON COMMIT DROP AS SELECT "id", {} FROM "{table}""#,
                columns.join(", ")
            )))
            .await?;
        kept.0.insert(table, created.rows_affected());
    }
    for (table, column, baseline) in &state.drifted_columns {
        let default = match &baseline.default {
            Some(expression) => format!("SET DEFAULT {expression}"),
            None => "DROP DEFAULT".to_owned(),
        };
        let null = if baseline.not_null { "SET NOT NULL" } else { "DROP NOT NULL" };
        tx.execute(sqlx::raw_sql(&format!(
            r#"ALTER TABLE "{table}" ALTER COLUMN "{column}" {default}, ALTER COLUMN "{column}" {null}"#
        )))
        .await
        .with_context(|| format!("setting {table}.{column} back to Prisma's definition"))?;
    }
    for (table, column) in &state.optimized_columns {
        // CASCADE takes the report's indexes on the column, and the SERIAL's sequence, with it.
        tx.execute(sqlx::raw_sql(&format!(r#"ALTER TABLE "{table}" DROP COLUMN "{column}" CASCADE"#))).await?;
    }
    Ok(kept)
}

/// After migration 2, in its transaction: puts the kept values back, touching only the rows
/// whose values differ.
pub async fn after_baseline_upgrade(
    tx: &mut PgConnection,
    state: &Phase2State,
    kept: &Kept,
) -> anyhow::Result<Adoption> {
    let counters: Vec<&str> =
        ["likeCount", "forkCount"].into_iter().filter(|column| state.has("Project", column)).collect();
    let counter_disagreements = if counters.is_empty() {
        0
    } else {
        let differs: Vec<String> =
            counters.iter().map(|column| format!(r#"t."{column}" <> GREATEST(k."{column}", 0)"#)).collect();
        sqlx::query_scalar::<_, i64>(&format!(
            r#"SELECT count(*) FROM "Project" t JOIN "kept_Project" k ON k."id" = t."id" WHERE {}"#,
            differs.join(" OR ")
        ))
        .fetch_one(&mut *tx)
        .await? as u64
    };

    for table in KEPT_TABLES {
        let restored: Vec<(&str, &str)> = RESTORED
            .iter()
            .filter(|(t, c, _)| *t == table && state.has(t, c))
            .map(|(_, column, expression)| (*column, *expression))
            .collect();
        if restored.is_empty() {
            continue;
        }
        let sets: Vec<String> = restored.iter().map(|(column, value)| format!(r#""{column}" = {value}"#)).collect();
        let current: Vec<String> = restored.iter().map(|(column, _)| format!(r#"t."{column}""#)).collect();
        let values: Vec<&str> = restored.iter().map(|(_, value)| *value).collect();
        tx.execute(sqlx::raw_sql(&format!(
            r#"UPDATE "{table}" t SET {} FROM "kept_{table}" k
               WHERE k."id" = t."id" AND ({}) IS DISTINCT FROM ({})"#,
            sets.join(", "),
            current.join(", "),
            values.join(", ")
        )))
        .await?;
    }

    if state.has("Message", "cursor") {
        // Cursors were renumbered in createdAt order; the sequence goes on past both numberings.
        tx.execute(sqlx::raw_sql(
            r#"SELECT setval('"Message_cursor_seq"',
                             GREATEST((SELECT max("cursor") FROM "kept_Message"),
                                      (SELECT max("cursor") FROM "Message"), 0) + 1, false)"#,
        ))
        .await?;
    }
    Ok(Adoption {
        state: state.describe(),
        indexes_dropped: state.indexes_to_drop.clone(),
        projects: kept.rows("Project"),
        counter_disagreements,
        usage_rows: kept.rows("TokenUsage"),
        messages: kept.rows("Message"),
    })
}
