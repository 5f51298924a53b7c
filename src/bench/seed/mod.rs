//! `vibing2 bench seed`: a deterministic synthetic data set at any scale.
//!
//! Scale 1 is about 10k users, 100k projects, 2M messages, 500k files, 2M token-usage rows,
//! 20k collaborators and 300k likes; every count is multiplied by the scale. The same seed
//! gives the same rows, and the two flavors (the Phase-2 schema and the current one) get
//! identical values in every column they share, so "before" and "after" measure the same data.
//!
//! How it stays fast (scale 1 loads in under a minute on two cores):
//! - rows are encoded in PostgreSQL's binary COPY format on a blocking thread while the
//!   connection streams the previous ~1 MB chunk, so generation and loading overlap;
//! - the load is one transaction that truncates the (empty) tables first, which lets
//!   `COPY ... FREEZE` write rows already frozen and all-visible (index-only scans work at
//!   once, and the first reads do not rewrite every page to set hint bits). PostgreSQL
//!   refuses FREEZE on a partitioned table (TokenUsage, by month): that one is loaded plainly,
//!   its months' partitions created first, and frozen by a `VACUUM (FREEZE, ANALYZE)` after
//!   the commit, to the same end state;
//! - foreign keys, user triggers and secondary indexes are set aside for the load and put back
//!   after it: one validating join per foreign key, one sorted build per index, instead of
//!   millions of per-row checks and random index insertions. The schema ends up exactly as it
//!   was, and a failure rolls everything back. What a trigger would have written, the users'
//!   public faces (`UserFace`), is filled from `User` by one statement after the load.
//!
//! Memory is O(users + projects), a few MB at scale 1: the big tables' rows are generated one
//! at a time and never held.
//!
//! Time: every timestamp lies before an anchor "now" passed in by the caller ([`seed_at`]), or
//! [`DEFAULT_ANCHOR`] for [`seed`]. A fixed anchor makes runs byte-for-byte reproducible; a
//! caller measuring "the last 30 days" against the wall clock passes its own anchor (the same
//! one to both databases).

mod binary;
mod plan;
mod rows;
mod vocab;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use chrono::{NaiveDate, NaiveDateTime};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{Connection, Executor, PgConnection, Row};

use crate::db::partitions;
use binary::CopyWriter;
pub use rows::{FAKE_PASSWORD_HASH, MODELS};

use plan::Plan;
use rows::RowSource;

/// Which schema the target database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Migration 0001 only: the Prisma-era schema (`likes`/`forks`, `activeAgents` as text, no
    /// `ProjectLike`, no message cursor, no usage cost).
    Phase2,
    /// Fully migrated: the schema `vibing2 migrate` produces.
    Current,
}

#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Multiplies every row count; 1.0 is the scale the design's figures were measured at.
    pub scale: f64,
    pub seed: u64,
    pub flavor: Flavor,
    /// Draw a progress bar per table on stderr.
    pub progress: bool,
}

/// One table's load.
#[derive(Debug, Clone)]
pub struct TableFigure {
    pub table: &'static str,
    pub rows: u64,
    /// Generating and copying the rows (which overlap), then building the table's indexes.
    pub seconds: f64,
}

impl TableFigure {
    pub fn rows_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rows as f64 / self.seconds
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone)]
pub struct SeedReport {
    /// In load order.
    pub tables: Vec<TableFigure>,
    /// Everything, from planning to the final ANALYZE.
    pub total_seconds: f64,
    /// Re-adding (and so validating) the foreign keys after the load.
    pub constraints_seconds: f64,
    pub analyze_seconds: f64,
    /// The "now" the data was generated against.
    pub anchor: NaiveDateTime,
}

impl SeedReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// The anchor [`seed`] uses: 2026-01-01 00:00:00 UTC. Usage spans the 180 days before it.
pub const DEFAULT_ANCHOR: NaiveDateTime = match NaiveDate::from_ymd_opt(2026, 1, 1) {
    Some(day) => match day.and_hms_opt(0, 0, 0) {
        Some(midnight) => midnight,
        None => panic!("a valid time"),
    },
    None => panic!("a valid date"),
};

/// Bytes encoded before a chunk is handed to the connection.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks in flight between the generator thread and the connection: bounds memory.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Seeds an empty database of the given flavor, with timestamps before [`DEFAULT_ANCHOR`].
pub async fn seed(conn: &mut PgConnection, options: &SeedOptions) -> anyhow::Result<SeedReport> {
    seed_at(conn, options, DEFAULT_ANCHOR).await
}

/// Seeds an empty database of the given flavor, with every timestamp before `anchor` (UTC).
/// Fails, changing nothing, if a table it fills (or one referencing them) holds rows.
pub async fn seed_at(
    conn: &mut PgConnection,
    options: &SeedOptions,
    anchor: NaiveDateTime,
) -> anyhow::Result<SeedReport> {
    ensure!(
        options.scale.is_finite() && options.scale > 0.0 && options.scale <= 1000.0,
        "the scale must be above 0 and at most 1000, not {}",
        options.scale
    );
    let started = Instant::now();
    check_flavor(conn, options.flavor).await?;

    let (scale, seed, anchor_ms) = (options.scale, options.seed, anchor.and_utc().timestamp_millis());
    let plan = Arc::new(
        tokio::task::spawn_blocking(move || Plan::build(scale, seed, anchor_ms))
            .await
            .context("planning the data set")?,
    );
    let tables = tables(&plan, options.flavor);
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();

    // Migration 15's users' public faces, in a database that has them (a current one may be
    // at an older version, as the partitioning tests seed one).
    let has_faces = crate::db::relation_exists(conn, r#""UserFace""#).await?;
    let mut tx = conn.begin().await?;
    // Index builds sort in memory rather than in temporary files (the default is 64 MB), and
    // a session's statement timeout is meant for queries, not for a bulk load.
    tx.execute("SET LOCAL maintenance_work_mem = '256MB'").await?;
    tx.execute("SET LOCAL statement_timeout = 0").await?;
    let saved = prepare(&mut tx, &names).await?;
    if options.flavor == Flavor::Current {
        partitions::ensure_months(&mut tx, &usage_months(anchor)).await?;
    }
    let mut figures = Vec::with_capacity(tables.len());
    for table in tables {
        let started = Instant::now();
        let bar = progress_bar(table.name, table.expected_rows, options.progress);
        let (name, rows) = (table.name, copy_table(&mut tx, table, &bar).await?);
        bar.set_message("building indexes");
        saved.rebuild_indexes(&mut tx, name).await?;
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_with_message(format!("{:.0} rows/s", rows as f64 / seconds.max(1e-9)));
        figures.push(TableFigure { table: name, rows, seconds });
    }
    if has_faces {
        // The users' public faces, which the triggers set aside for the load would have written.
        tx.execute(r#"INSERT INTO "UserFace" ("id", "name", "image") SELECT "id", "name", "image" FROM "User""#)
            .await?;
    }
    let constraints_started = Instant::now();
    saved.restore_keys_and_triggers(&mut tx).await?;
    let constraints_seconds = constraints_started.elapsed().as_secs_f64();
    let has_memberships =
        options.flavor == Flavor::Current && crate::db::relation_exists(&mut tx, r#""UserProject""#).await?;
    if has_memberships {
        // The load ran with the triggers off: the user-keyed memberships are derived at once.
        crate::db::projects::rebuild_memberships(&mut tx).await?;
    }
    if options.flavor == Flavor::Current {
        // Cursors are 1..=n; the service's next message continues after them.
        let next = i64::try_from(plan.message_rows())? + 1;
        sqlx::query(r#"SELECT setval('"Message_cursor_seq"', $1, false)"#).bind(next).execute(&mut *tx).await?;
    }
    tx.commit().await?;

    let analyze_started = Instant::now();
    // The derived tables, filled above, are planned from statistics like the rest.
    let mut plain = Vec::new();
    if has_faces {
        plain.push(r#""UserFace""#.to_owned());
    }
    if has_memberships {
        plain.push(r#""UserProject""#.to_owned());
    }
    for name in names.iter().map(|name| crate::db::quote_identifier(name)) {
        if partitions::is_partitioned(conn, &name).await? {
            conn.execute(format!("VACUUM (FREEZE, ANALYZE) {name}").as_str()).await?;
        } else {
            plain.push(name);
        }
    }
    conn.execute(format!("ANALYZE {}", plain.join(", ")).as_str()).await?;
    Ok(SeedReport {
        tables: figures,
        total_seconds: started.elapsed().as_secs_f64(),
        constraints_seconds,
        analyze_seconds: analyze_started.elapsed().as_secs_f64(),
        anchor,
    })
}

/// The first day of every month the usage rows fall in: the [`rows::USAGE_DAYS`] before the
/// anchor.
fn usage_months(anchor: NaiveDateTime) -> Vec<NaiveDate> {
    let first = anchor - chrono::Duration::days(rows::USAGE_DAYS);
    let last = anchor - chrono::Duration::milliseconds(1);
    partitions::months_between(first.date(), last.date())
}

/// One table to load: its name, column list, a row estimate for the progress bar and rows.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    expected_rows: u64,
    source: Box<dyn RowSource>,
}

/// The tables in foreign-key order (it does not matter for the load itself, but reads well).
fn tables(plan: &Arc<Plan>, flavor: Flavor) -> Vec<Table> {
    use rows::{Collaborators, Files, Likes, Messages, Projects, Usage, Users};
    let mut tables = vec![
        Table {
            name: "User",
            columns: Users::COLUMNS,
            expected_rows: plan.users.len() as u64,
            source: Box::new(Users::new(plan.clone())),
        },
        Table {
            name: "Project",
            columns: Projects::columns(flavor),
            expected_rows: plan.projects.len() as u64,
            source: Box::new(Projects::new(plan.clone(), flavor)),
        },
        Table {
            name: "ProjectFile",
            columns: Files::columns(flavor),
            expected_rows: Files::expected_rows(plan),
            source: Box::new(Files::new(plan.clone(), flavor)),
        },
        Table {
            name: "Message",
            columns: Messages::columns(flavor),
            expected_rows: plan.message_rows(),
            source: Box::new(Messages::new(plan.clone(), flavor)),
        },
        Table {
            name: "TokenUsage",
            columns: Usage::columns(flavor),
            expected_rows: plan.usage_rows,
            source: Box::new(Usage::new(plan.clone(), flavor)),
        },
        Table {
            name: "ProjectCollaborator",
            columns: Collaborators::COLUMNS,
            expected_rows: Collaborators::expected_rows(plan),
            source: Box::new(Collaborators::new(plan.clone())),
        },
    ];
    if flavor == Flavor::Current {
        tables.push(Table {
            name: "ProjectLike",
            columns: Likes::COLUMNS,
            expected_rows: plan.like_rows(),
            source: Box::new(Likes::new(plan.clone())),
        });
    }
    tables
}

/// Refuses a database whose schema is not the flavor's, before anything is written.
async fn check_flavor(conn: &mut PgConnection, flavor: Flavor) -> anyhow::Result<()> {
    let row = sqlx::query(r#"SELECT to_regclass('"User"') IS NOT NULL, to_regclass('"ProjectLike"') IS NOT NULL"#)
        .fetch_one(&mut *conn)
        .await?;
    let (has_schema, is_current): (bool, bool) = (row.get(0), row.get(1));
    match (has_schema, is_current, flavor) {
        (false, _, _) => bail!("the database has no vibing2 schema: migrate it first"),
        (true, true, Flavor::Phase2) => {
            bail!("the database has the current schema, not the Phase-2 one the flavor expects")
        }
        (true, false, Flavor::Current) => {
            bail!("the database has the Phase-2 schema: run `vibing2 migrate` first")
        }
        _ => Ok(()),
    }
}

/// What [`prepare`] took away for the load, and puts back after it.
struct SavedSchema {
    /// (table, constraint name, definition) of every foreign key touching the loaded tables.
    foreign_keys: Vec<(String, String, String)>,
    /// (table name, `CREATE INDEX` statement) of the loaded tables' indexes that back no
    /// constraint. Building an index once from sorted data is several times faster than
    /// inserting millions of rows into it one by one, and leaves it as compact as a
    /// `REINDEX` would.
    indexes: Vec<(String, String)>,
    /// (table, trigger name, `pg_trigger.tgenabled`) of the enabled user triggers on them.
    triggers: Vec<(String, String, String)>,
}

/// Locks the tables to load (and those referencing them), checks they are empty, sets aside
/// their foreign keys, user triggers (the generated rows are consistent by construction) and
/// secondary indexes, and truncates them, which is what allows `COPY ... FREEZE`. Primary
/// keys stay: their ids arrive in nearly ascending order, so they cost little.
async fn prepare(conn: &mut PgConnection, tables: &[&str]) -> anyhow::Result<SavedSchema> {
    let quoted: Vec<String> = tables.iter().map(|name| crate::db::quote_identifier(name)).collect();
    let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid)
         FROM pg_constraint c
         WHERE c.contype = 'f' AND c.conparentid = 0 -- a partition's copy goes with its parent's
           AND (c.conrelid = ANY($1::text[]::regclass[]) OR c.confrelid = ANY($1::text[]::regclass[]))
         ORDER BY 1, 2",
    )
    .bind(&quoted)
    .fetch_all(&mut *conn)
    .await?;
    let mut locked = quoted.clone();
    for (table, _, _) in &foreign_keys {
        if !locked.contains(table) {
            locked.push(table.clone());
        }
    }
    conn.execute(format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", locked.join(", ")).as_str()).await?;
    for table in &locked {
        let filled: bool =
            sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {table})")).fetch_one(&mut *conn).await?;
        ensure!(!filled, "bench seed fills an empty database, but {table} already has rows");
    }

    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.tgrelid::regclass::text, t.tgname::text, t.tgenabled::text
         FROM pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'
           AND t.tgrelid = ANY($1::text[]::regclass[])
         ORDER BY 1, 2",
    )
    .bind(&quoted)
    .fetch_all(&mut *conn)
    .await?;
    for (table, trigger, _) in &triggers {
        let statement = format!("ALTER TABLE {table} DISABLE TRIGGER {}", crate::db::quote_identifier(trigger));
        conn.execute(statement.as_str()).await?;
    }
    for (table, name, _) in &foreign_keys {
        let statement = format!("ALTER TABLE {table} DROP CONSTRAINT {}", crate::db::quote_identifier(name));
        conn.execute(statement.as_str()).await?;
    }

    let indexes: Vec<(String, String, String)> = sqlx::query_as(
        // A partitioned table's index reads `ON ONLY`, which would build it on the parent alone.
        "SELECT t.relname::text, i.indexrelid::regclass::text, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')
         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
         WHERE i.indrelid = ANY($1::text[]::regclass[])
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
         ORDER BY 1, 2",
    )
    .bind(&quoted)
    .fetch_all(&mut *conn)
    .await?;
    for (_, index, _) in &indexes {
        conn.execute(format!("DROP INDEX {index}").as_str()).await?;
    }
    conn.execute(format!("TRUNCATE {}", quoted.join(", ")).as_str()).await?;
    let indexes = indexes.into_iter().map(|(table, _, definition)| (table, definition)).collect();
    Ok(SavedSchema { foreign_keys, indexes, triggers })
}

impl SavedSchema {
    async fn rebuild_indexes(&self, conn: &mut PgConnection, table: &str) -> anyhow::Result<()> {
        for (_, definition) in self.indexes.iter().filter(|(owner, _)| *owner == table) {
            conn.execute(definition.as_str()).await.with_context(|| format!("rebuilding: {definition}"))?;
        }
        Ok(())
    }

    async fn restore_keys_and_triggers(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        for (table, name, definition) in &self.foreign_keys {
            let statement =
                format!("ALTER TABLE {table} ADD CONSTRAINT {} {definition}", crate::db::quote_identifier(name));
            conn.execute(statement.as_str())
                .await
                .with_context(|| format!("restoring the foreign key {name} on {table}"))?;
        }
        for (table, trigger, mode) in &self.triggers {
            let how = match mode.as_str() {
                "A" => "ENABLE ALWAYS",
                "R" => "ENABLE REPLICA",
                _ => "ENABLE",
            };
            let statement = format!("ALTER TABLE {table} {how} TRIGGER {}", crate::db::quote_identifier(trigger));
            conn.execute(statement.as_str()).await?;
        }
        Ok(())
    }
}

/// Streams one table and returns its row count: a blocking thread encodes rows into chunks,
/// this task sends them.
async fn copy_table(conn: &mut PgConnection, table: Table, bar: &ProgressBar) -> anyhow::Result<u64> {
    let columns: Vec<String> = table.columns.iter().map(|c| crate::db::quote_identifier(c)).collect();
    let target = crate::db::quote_identifier(table.name);
    let freeze = if partitions::is_partitioned(conn, &target).await? { "" } else { ", FREEZE" };
    let statement = format!("COPY {target} ({}) FROM STDIN (FORMAT binary{freeze})", columns.join(", "));

    let (sender, mut chunks) = tokio::sync::mpsc::channel::<(Vec<u8>, u64)>(CHUNKS_IN_FLIGHT);
    let mut source = table.source;
    let producer = tokio::task::spawn_blocking(move || {
        let mut writer = CopyWriter::with_capacity(CHUNK_BYTES + (256 << 10));
        writer.header();
        let mut rows = 0;
        loop {
            let more = source.next_row(&mut writer);
            if more {
                rows += 1;
            } else {
                writer.trailer();
            }
            if !more || writer.len() >= CHUNK_BYTES {
                // The receiver is gone only when the COPY failed; its error is reported there.
                if sender.blocking_send((writer.take(), rows)).is_err() || !more {
                    return;
                }
                rows = 0;
            }
        }
    });

    let mut copy =
        conn.copy_in_raw(&statement).await.with_context(|| format!("starting the COPY into {}", table.name))?;
    let mut sent = 0;
    while let Some((chunk, rows)) = chunks.recv().await {
        copy.send(chunk).await?;
        sent += rows;
        bar.inc(rows);
    }
    producer.await.context("the row generator failed")?;
    let copied = copy.finish().await.with_context(|| format!("loading {}", table.name))?;
    ensure!(copied == sent, "{}: sent {sent} rows, PostgreSQL stored {copied}", table.name);
    bar.set_length(copied);
    Ok(copied)
}

fn progress_bar(table: &'static str, expected_rows: u64, shown: bool) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>19} [{bar:30}] {human_pos:>9}/{human_len:9} {per_sec:>12} {elapsed:>4} {msg}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    ProgressBar::new(expected_rows).with_style(style).with_prefix(table)
}
