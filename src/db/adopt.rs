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
//! Adoption wraps migration 2. In its first transaction, before the migration's own DDL, the
//! report's indexes are dropped and each optimized column whose value is kept is renamed
//! `_adopted_<name>` (a catalog change: no row is copied); the report's file sizes and
//! checksums are dropped, since the backfill recomputes them all. Migration 2 then meets the
//! baseline it was written for. Its backfill phase puts the kept values back in batches
//! ([`restores`]): the counters (the larger of the report's counter and the legacy one),
//! views, featured flags, preview URLs, the usage's project, model and cost, and the message
//! tokens. In its second transaction the message sequence is carried on past the last SERIAL
//! value and the `_adopted_` columns are dropped. Message cursors are renumbered in
//! `createdAt` order, the keyset order, by migration 2's own backfill.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sqlx::{Executor, PgConnection, Row};

use super::backfill::Backfill;
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
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Phase2State {
    pub optimized_columns: BTreeSet<(String, String)>,
    pub indexes_to_drop: Vec<String>,
    /// Prisma columns whose default or nullability the optimized schema changed, with the
    /// baseline's: they are set back, so migration 2 meets the baseline.
    pub drifted_columns: Vec<(String, String, Column)>,
}

/// A column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
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

/// How each kept column is put back, on the migrated row `t` from its `_adopted_` column.
/// Migration 2 folded the legacy likes/forks into the counters; of the two, the larger
/// stands. A usage row whose project is gone keeps its usage unattributed, as ON DELETE SET
/// NULL would.
const RESTORED: &[(&str, &str, &str)] = &[
    ("Project", "likeCount", r#"GREATEST(t."likeCount", t."_adopted_likeCount", 0)"#),
    ("Project", "forkCount", r#"GREATEST(t."forkCount", t."_adopted_forkCount", 0)"#),
    ("Project", "viewCount", r#"GREATEST(t."_adopted_viewCount", 0)"#),
    ("Project", "isFeatured", r#"COALESCE(t."_adopted_isFeatured", false)"#),
    ("Project", "previewUrl", r#"t."_adopted_previewUrl""#),
    ("TokenUsage", "projectId", r#"(SELECT p."id" FROM "Project" p WHERE p."id" = t."_adopted_projectId")"#),
    ("TokenUsage", "model", r#"COALESCE(NULLIF(t."_adopted_model", ''), 'unknown')"#),
    ("TokenUsage", "cost", r#"GREATEST(round(t."_adopted_cost"::numeric, 6), 0)"#),
    ("Message", "tokens", r#"GREATEST(t."_adopted_tokens", 0)"#),
];

/// Kept for the sequence, not restored: the cursors are renumbered.
const KEPT_FOR_SEQUENCE: (&str, &str) = ("Message", "cursor");

/// The tables whose optimized values are kept, all keyed by "id".
const KEPT_TABLES: [&str; 3] = ["Project", "TokenUsage", "Message"];

fn kept(table: &str, column: &str) -> bool {
    (table, column) == KEPT_FOR_SEQUENCE || RESTORED.iter().any(|(t, c, _)| *t == table && *c == column)
}

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

/// Before migration 2's DDL, in its first transaction: drops the report's indexes, renames
/// the kept columns out of the way and drops the recomputed ones, so the database has the
/// baseline's shape.
pub async fn before_baseline_upgrade(tx: &mut PgConnection, state: &Phase2State) -> anyhow::Result<()> {
    for index in &state.indexes_to_drop {
        tx.execute(sqlx::raw_sql(&format!(r#"DROP INDEX IF EXISTS "{index}""#))).await?;
        tracing::info!(%index, "dropped an index of the report's script");
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
        if !kept(table, column) {
            // CASCADE takes the column's other indexes and constraints with it.
            tx.execute(sqlx::raw_sql(&format!(r#"ALTER TABLE "{table}" DROP COLUMN "{column}" CASCADE"#))).await?;
            continue;
        }
        let sequence: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
            .bind(format!(r#""{table}""#))
            .bind(column)
            .fetch_one(&mut *tx)
            .await?;
        let constraints: Vec<String> = sqlx::query_scalar(
            r#"SELECT c.conname::text FROM pg_constraint c JOIN pg_attribute a
                 ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
               WHERE c.conrelid = to_regclass($1) AND a.attname = $2"#,
        )
        .bind(format!(r#""{table}""#))
        .bind(column)
        .fetch_all(&mut *tx)
        .await?;
        for constraint in constraints {
            tx.execute(sqlx::raw_sql(&format!(r#"ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}""#))).await?;
        }
        tx.execute(sqlx::raw_sql(&format!(
            r#"ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP DEFAULT, ALTER COLUMN "{column}" DROP NOT NULL;
               ALTER TABLE "{table}" RENAME COLUMN "{column}" TO "_adopted_{column}""#
        )))
        .await?;
        if let Some(sequence) = sequence {
            // The SERIAL's own sequence; migration 2 creates the service's, carried on later.
            tx.execute(sqlx::raw_sql(&format!("DROP SEQUENCE {sequence}"))).await?;
        }
    }
    Ok(())
}

/// After migration 2's DDL, in the same transaction: what the adoption will carry over, read
/// before any value is restored.
pub async fn summarize(tx: &mut PgConnection, state: &Phase2State) -> anyhow::Result<Adoption> {
    let counters: Vec<&str> =
        ["likeCount", "forkCount"].into_iter().filter(|column| state.has("Project", column)).collect();
    let counter_disagreements = if counters.is_empty() {
        0
    } else {
        let differs: Vec<String> =
            counters.iter().map(|column| format!(r#"t."{column}" <> GREATEST(t."_adopted_{column}", 0)"#)).collect();
        sqlx::query_scalar::<_, i64>(&format!(r#"SELECT count(*) FROM "Project" t WHERE {}"#, differs.join(" OR ")))
            .fetch_one(&mut *tx)
            .await? as u64
    };
    let mut rows = BTreeMap::new();
    for table in KEPT_TABLES {
        if state.optimized_columns.iter().any(|(t, c)| t == table && kept(t, c)) {
            let count: i64 =
                sqlx::query_scalar(&format!(r#"SELECT count(*) FROM "{table}""#)).fetch_one(&mut *tx).await?;
            rows.insert(table, count as u64);
        }
    }
    let rows_of = |table: &str| rows.get(table).copied().unwrap_or(0);
    Ok(Adoption {
        state: state.describe(),
        indexes_dropped: state.indexes_to_drop.clone(),
        projects: rows_of("Project"),
        counter_disagreements,
        usage_rows: rows_of("TokenUsage"),
        messages: rows_of("Message"),
    })
}

/// Migration 2's backfill phase puts the kept values back with these, one per table, touching
/// only the rows whose values differ.
pub fn restores(state: &Phase2State) -> Vec<Backfill> {
    KEPT_TABLES
        .into_iter()
        .filter_map(|table| {
            let restored: Vec<(&str, &str)> = RESTORED
                .iter()
                .filter(|(t, c, _)| *t == table && state.has(t, c))
                .map(|(_, column, expression)| (*column, *expression))
                .collect();
            if restored.is_empty() {
                return None;
            }
            let sets: Vec<String> = restored.iter().map(|(column, value)| format!(r#""{column}" = {value}"#)).collect();
            let current: Vec<String> = restored.iter().map(|(column, _)| format!(r#"t."{column}""#)).collect();
            let values: Vec<&str> = restored.iter().map(|(_, value)| *value).collect();
            let columns: Vec<&str> = restored.iter().map(|(column, _)| *column).collect();
            Some(Backfill {
                name: format!("the report's {table} values ({})", columns.join(", ")),
                prepare: None,
                source: format!(r#""{table}""#),
                update: format!(
                    r#"UPDATE "{table}" t SET {} WHERE t."id" = ANY($1) AND ({}) IS DISTINCT FROM ({})"#,
                    sets.join(", "),
                    current.join(", "),
                    values.join(", ")
                ),
                cleanup: None,
            })
        })
        .collect()
}

/// In migration 2's second transaction, after its DDL: the message sequence goes on past
/// both numberings, and the kept columns go.
pub async fn finish(tx: &mut PgConnection, state: &Phase2State) -> anyhow::Result<()> {
    let (table, column) = KEPT_FOR_SEQUENCE;
    if state.has(table, column) {
        tx.execute(sqlx::raw_sql(
            r#"SELECT setval('"Message_cursor_seq"',
                             GREATEST((SELECT max("_adopted_cursor") FROM "Message"),
                                      (SELECT max("cursor") FROM "Message"), 0) + 1, false)"#,
        ))
        .await?;
    }
    for (table, column) in state.optimized_columns.iter().filter(|(t, c)| kept(t, c)) {
        tx.execute(sqlx::raw_sql(&format!(r#"ALTER TABLE "{table}" DROP COLUMN "_adopted_{column}""#))).await?;
    }
    Ok(())
}
