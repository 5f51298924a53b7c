//! The embedded migrations and their runner.
//!
//! Migration 1 is the Phase-2 schema that Prisma's `init_postgresql` created. On an empty
//! database it is applied; on a database Prisma already built it is *adopted* (recorded as
//! applied without running), and the later migrations upgrade it in place. A migration whose
//! first line is `-- vibing2:no-transaction` runs statement by statement outside a transaction
//! (for `CREATE INDEX CONCURRENTLY`); its statements must be idempotent. A transactional
//! migration with a `-- vibing2:backfill` line runs in two transactions with the batches of
//! [`backfill`](super::backfill) between them; `_vibing2_migration_progress` records that its
//! first part is done, so an interrupted run resumes at the batches.

use std::time::Instant;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};

use super::adopt;
use super::backfill::{self, Filled};
use super::index_switch;

/// Serialises concurrent `migrate` runs (two instances starting at once).
const MIGRATION_LOCK_KEY: i64 = 0x7669_6269_6e67_0001;
const NO_TRANSACTION_MARKER: &str = "-- vibing2:no-transaction";
const BACKFILL_MARKER: &str = "\n-- vibing2:backfill\n";

/// Migrations whose text was rewritten after databases applied it, with the checksums of the
/// earlier texts. Each rewrite reaches the same schema, so those databases are current.
/// Migration 2 ran in one transaction before its backfill was split out.
const REWRITTEN: &[(i64, &str)] = &[(2, "75d19fb120ce5b0ca51e5a15c6cfd84fbb4652835caff57cb0eb0ac785b17fc3")];

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    /// How `migrate --revert-to` takes it back (src/db/revert.rs).
    pub reverse: Reverse,
}

/// The way back from a migration.
pub enum Reverse {
    /// It changed or moved data the older schema cannot hold: the backup is the way back.
    OneWay(&'static str),
    /// A down step (`migrations/down/`), with the no-transaction marker if it needs one. A
    /// `check` query lists what the step would lose, one line of text per problem; the step
    /// runs only when it lists nothing.
    Down { sql: &'static str, check: Option<&'static str> },
}

/// One migration from its file's number and name: `migrations/NNNN_name.sql`, and its down step
/// `migrations/down/NNNN_name.sql` (with `.check.sql` when checked), or why it is one-way.
macro_rules! migration {
    ($number:literal, $name:literal, $($reverse:tt)+) => {
        Migration {
            version: parse_version($number),
            name: $name,
            sql: include_str!(concat!("../../migrations/", $number, "_", $name, ".sql")),
            reverse: migration!(@reverse $number, $name, $($reverse)+),
        }
    };
    (@reverse $number:literal, $name:literal, one_way: $why:expr) => {
        Reverse::OneWay($why)
    };
    (@reverse $number:literal, $name:literal, down) => {
        Reverse::Down { sql: include_str!(concat!("../../migrations/down/", $number, "_", $name, ".sql")), check: None }
    };
    (@reverse $number:literal, $name:literal, down, checked) => {
        Reverse::Down {
            sql: include_str!(concat!("../../migrations/down/", $number, "_", $name, ".sql")),
            check: Some(include_str!(concat!("../../migrations/down/", $number, "_", $name, ".check.sql"))),
        }
    };
}

/// A migration's version from its file's number ("0003" is 3), at compile time.
const fn parse_version(number: &str) -> i64 {
    let digits = number.as_bytes();
    let mut version = 0;
    let mut at = 0;
    while at < digits.len() {
        version = version * 10 + (digits[at] - b'0') as i64;
        at += 1;
    }
    version
}

pub static MIGRATIONS: &[Migration] = &[
    migration!("0001", "phase2_baseline", one_way: "it creates every table the data lives in"),
    migration!(
        "0002",
        "optimized_schema",
        one_way: "it converts data: activeAgents to jsonb, likes and forks folded into the counters, session \
                  tokens hashed, e-mails lower-cased, currentCode moved into files"
    ),
    migration!("0003", "indexes", down),
    migration!("0004", "login_failures", down),
    migration!("0005", "job_runs", down),
    migration!("0006", "trigram_fastupdate_off", down),
    migration!("0007", "login_attempts", down),
    migration!("0008", "invite_expiry", down, checked),
    migration!("0009", "query_performance", down),
    migration!("0010", "phase1_import", down, checked),
    migration!("0011", "import_batches", down, checked),
    migration!("0012", "index_switches", down, checked),
    migration!("0013", "ids_collate_c", down),
    migration!("0014", "token_usage_partitions", down, checked),
    migration!("0015", "user_face", down),
    migration!("0016", "user_projects", down),
];

impl Migration {
    fn transactional(&self) -> bool {
        transactional(self.sql)
    }

    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }

    pub(super) fn accepts(&self, checksum: &str) -> bool {
        self.checksum() == checksum || REWRITTEN.contains(&(self.version, checksum))
    }

    /// The SQL before the backfill marker, and after it if there is one.
    fn parts(&self) -> (&'static str, Option<&'static str>) {
        match self.sql.split_once(BACKFILL_MARKER) {
            Some((before, after)) => (before, Some(after)),
            None => (self.sql, None),
        }
    }
}

/// Whether a migration or down step runs in a transaction (it has no no-transaction marker).
pub(super) fn transactional(sql: &str) -> bool {
    !sql.starts_with(NO_TRANSACTION_MARKER)
}

/// The statements of a no-transaction migration: split at `;` line ends, comments dropped.
pub(super) fn statements(sql: &str) -> impl Iterator<Item = String> + '_ {
    sql.split(";\n")
        .map(|chunk| chunk.lines().filter(|line| !line.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n"))
        .filter(|statement| !statement.trim().is_empty())
}

/// What one `migrate` run did.
#[derive(Debug, Default)]
pub struct Report {
    pub adopted_phase2: bool,
    /// What adopting an optimized Phase-2 database carried over, if one was adopted.
    pub adoption: Option<adopt::Adoption>,
    pub applied: Vec<(i64, &'static str, f64)>,
    /// What the backfills filled, in order; a resumed migration's counts are this run's.
    pub backfilled: Vec<Filled>,
    /// The migration whose backfill an earlier, interrupted run had started, if any.
    pub resumed: Option<i64>,
    /// Legacy values the upgrade could not carry over as they were (table `MigrationIssue`).
    pub issues: Vec<MigrationIssue>,
}

#[derive(Debug)]
pub struct MigrationIssue {
    pub table: String,
    pub row_id: String,
    pub column: String,
    pub original_value: Option<String>,
    pub problem: String,
}

impl Report {
    pub fn is_noop(&self) -> bool {
        !self.adopted_phase2 && self.applied.is_empty()
    }
}

/// How `migrate` runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Rows per backfill batch: smaller batches hold their row locks for less.
    pub batch_rows: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options { batch_rows: backfill::DEFAULT_BATCH_ROWS }
    }
}

/// What an interrupted migration left for the next run, in `_vibing2_migration_progress`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// The Phase-2 state being adopted, and the summary read before its values were restored.
    adoption: Option<(adopt::Phase2State, adopt::Adoption)>,
}

/// Brings the database to the latest schema. Safe to run again: a database that is current is
/// left untouched, and an interrupted run is resumed.
pub async fn run(conn: &mut PgConnection) -> anyhow::Result<Report> {
    run_with(conn, Options::default()).await
}

pub async fn run_with(conn: &mut PgConnection, options: Options) -> anyhow::Result<Report> {
    run_up_to(conn, options, latest_version()).await
}

/// Applies the pending migrations up to `version` only (a revert's way back up, step by step).
pub async fn run_up_to(conn: &mut PgConnection, options: Options, version: i64) -> anyhow::Result<Report> {
    anyhow::ensure!(options.batch_rows > 0, "the batch size must be at least one row");
    lock(conn).await?;
    let result = run_locked(conn, options, version).await;
    unlock(conn).await?;
    result
}

/// Waits for the migration lock: one `migrate` or revert at a time.
pub(super) async fn lock(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!(r#"SELECT pg_advisory_lock($1)::text AS "locked""#, MIGRATION_LOCK_KEY).fetch_one(&mut *conn).await?;
    Ok(())
}

pub(super) async fn unlock(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!(r#"SELECT pg_advisory_unlock($1) AS "unlocked""#, MIGRATION_LOCK_KEY).fetch_one(&mut *conn).await?;
    Ok(())
}

async fn run_locked(conn: &mut PgConnection, options: Options, up_to: i64) -> anyhow::Result<Report> {
    let in_progress = read_progress(conn).await?;
    // A Phase-2 database that migration 2 has not upgraded yet is read first: a state that
    // cannot be adopted stops here, before anything (even the ledger) is written. A resumed
    // upgrade reads the state it started from.
    let phase2 = match in_progress.get(&2) {
        Some(progress) => progress.adoption.as_ref().map(|(state, _)| state.clone()),
        None if baseline_upgrade_pending(conn).await? && phase2_schema_present(conn).await? => {
            Some(adopt::inspect(conn).await?)
        }
        None => None,
    };
    conn.execute(sqlx::raw_sql(
        r#"CREATE TABLE IF NOT EXISTS "_vibing2_migrations" (
               "version" BIGINT PRIMARY KEY,
               "name" TEXT NOT NULL,
               "checksum" TEXT NOT NULL,
               "mode" TEXT NOT NULL CHECK ("mode" IN ('applied', 'adopted')),
               "appliedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
               "durationMs" DOUBLE PRECISION NOT NULL
           );
           CREATE TABLE IF NOT EXISTS "_vibing2_migration_progress" (
               "version" BIGINT PRIMARY KEY,
               "detail" JSONB NOT NULL,
               "startedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
           )"#,
    ))
    .await?;

    let applied: Vec<(i64, String)> =
        sqlx::query!(r#"SELECT "version", "checksum" FROM "_vibing2_migrations" ORDER BY "version""#)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|row| (row.version, row.checksum))
            .collect();
    for (version, checksum) in &applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            Some(migration) if migration.accepts(checksum) => {}
            Some(migration) => bail!("migration {version} ({}) was edited after it was applied", migration.name),
            None => bail!("the database has migration {version}, which this binary does not know: is it older?"),
        }
    }

    let mut report = Report::default();
    if applied.is_empty() && phase2.is_some() {
        let baseline = &MIGRATIONS[0];
        record(conn, baseline, "adopted", 0.0).await?;
        report.adopted_phase2 = true;
        tracing::info!("adopted an existing Phase-2 (Prisma) schema as migration 1");
    }

    let done: Vec<i64> =
        sqlx::query_scalar!(r#"SELECT "version" FROM "_vibing2_migrations""#).fetch_all(&mut *conn).await?;
    // An index an operator disabled stays dropped: its build is skipped, and any migration
    // that made it again has it dropped after the run.
    let disabled = index_switch::disabled(conn).await?;
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version) && m.version <= up_to) {
        let started = Instant::now();
        if migration.transactional() {
            let adopting = phase2.as_ref().filter(|state| migration.version == 2 && state.is_optimized());
            let resumed = in_progress.get(&migration.version);
            report.resumed = report.resumed.or(resumed.map(|_| migration.version));
            apply_transactional(conn, migration, adopting, resumed, options, &mut report).await?;
        } else {
            drop_invalid_indexes(conn).await?;
            for statement in statements(migration.sql) {
                if index_switch::creates_one_of(&statement, &disabled) {
                    tracing::info!(statement = statement.trim(), "skipped: the index is disabled");
                    continue;
                }
                let failed =
                    || format!("migration {} ({}) failed at: {}", migration.version, migration.name, statement.trim());
                if !index_switch::build_if_partitioned(conn, &statement).await.with_context(failed)? {
                    conn.execute(sqlx::raw_sql(&statement)).await.with_context(failed)?;
                }
            }
            record(conn, migration, "applied", started.elapsed().as_secs_f64() * 1000.0).await?;
        }
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(version = migration.version, name = migration.name, elapsed_ms = elapsed, "migration applied");
        report.applied.push((migration.version, migration.name, elapsed));
        // A migration may change a result type (a column's collation is part of it), which a
        // statement this connection prepared before would fail on.
        conn.clear_cached_statements().await?;
    }
    index_switch::drop_present(conn, &disabled).await?;

    report.issues = sqlx::query_as!(
        MigrationIssue,
        r#"SELECT "tableName" AS "table", "rowId" AS "row_id", "columnName" AS "column",
                  "originalValue" AS "original_value", "problem"
           FROM "MigrationIssue" ORDER BY "id""#
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(report)
}

/// Runs a transactional migration: its SQL in one transaction, or, with a backfill marker, its
/// first part in one, the batches, and its second part in another. `resumed` is what an
/// interrupted run recorded after committing the first part.
async fn apply_transactional(
    conn: &mut PgConnection,
    migration: &Migration,
    adopting: Option<&adopt::Phase2State>,
    resumed: Option<&Progress>,
    options: Options,
    report: &mut Report,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let failed = || format!("migration {} ({}) failed", migration.version, migration.name);
    let (before, after) = migration.parts();
    let adoption = match resumed {
        Some(progress) => progress.adoption.as_ref().map(|(_, adoption)| adoption.clone()),
        None => {
            let mut tx = conn.begin().await?;
            if let Some(state) = adopting {
                tracing::info!(state = %state.describe(), "adopting an optimized Phase-2 database");
                adopt::before_baseline_upgrade(&mut tx, state).await?;
            }
            tx.execute(sqlx::raw_sql(before)).await.with_context(failed)?;
            let adoption = match adopting {
                Some(state) => Some(adopt::summarize(&mut tx, state).await?),
                None => None,
            };
            if after.is_some() {
                let progress = Progress { adoption: adopting.cloned().zip(adoption.clone()) };
                sqlx::query!(
                    r#"INSERT INTO "_vibing2_migration_progress" ("version", "detail") VALUES ($1, $2)"#,
                    migration.version,
                    serde_json::to_value(&progress)?
                )
                .execute(&mut *tx)
                .await?;
            } else {
                record(&mut tx, migration, "applied", started.elapsed().as_secs_f64() * 1000.0).await?;
            }
            tx.commit().await?;
            adoption
        }
    };
    let Some(after) = after else { return Ok(()) };

    let mut backfills = backfill::of_migration(migration.version);
    backfills.extend(adopting.map(adopt::restores).unwrap_or_default());
    for each in &backfills {
        report.backfilled.push(backfill::run(conn, each, options.batch_rows).await.with_context(failed)?);
    }
    let mut tx = conn.begin().await?;
    tx.execute(sqlx::raw_sql(after)).await.with_context(failed)?;
    for cleanup in backfills.iter().filter_map(|each| each.cleanup.as_deref()) {
        tx.execute(sqlx::raw_sql(cleanup)).await?;
    }
    if let Some(state) = adopting {
        adopt::finish(&mut tx, state).await?;
    }
    sqlx::query!(r#"DELETE FROM "_vibing2_migration_progress" WHERE "version" = $1"#, migration.version)
        .execute(&mut *tx)
        .await?;
    record(&mut tx, migration, "applied", started.elapsed().as_secs_f64() * 1000.0).await?;
    tx.commit().await?;
    if adoption.is_some() {
        report.adoption = adoption;
    }
    Ok(())
}

/// What interrupted migrations recorded, by version; nothing on a database that never ran one.
async fn read_progress(conn: &mut PgConnection) -> anyhow::Result<std::collections::BTreeMap<i64, Progress>> {
    let exists: bool =
        sqlx::query_scalar!(r#"SELECT to_regclass('"_vibing2_migration_progress"') IS NOT NULL AS "exists!""#)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Ok(Default::default());
    }
    let rows =
        sqlx::query!(r#"SELECT "version", "detail" FROM "_vibing2_migration_progress""#).fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|row| {
            Ok((row.version, serde_json::from_value::<Progress>(row.detail).context("reading the migrate progress")?))
        })
        .collect()
}

/// Whether migration 2, which upgrades the Phase-2 baseline, has yet to run.
async fn baseline_upgrade_pending(conn: &mut PgConnection) -> sqlx::Result<bool> {
    let ledger_exists = sqlx::query_scalar!(r#"SELECT to_regclass('"_vibing2_migrations"') IS NOT NULL AS "exists!""#)
        .fetch_one(&mut *conn)
        .await?;
    if !ledger_exists {
        return Ok(true);
    }
    let done =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM "_vibing2_migrations" WHERE "version" = 2) AS "done!""#)
            .fetch_one(&mut *conn)
            .await?;
    Ok(!done)
}

/// The newest migration applied to the database, if any.
pub async fn current_version(conn: &mut PgConnection) -> sqlx::Result<Option<i64>> {
    let ledger_exists = sqlx::query_scalar!(r#"SELECT to_regclass('"_vibing2_migrations"') IS NOT NULL AS "exists!""#)
        .fetch_one(&mut *conn)
        .await?;
    if !ledger_exists {
        return Ok(None);
    }
    sqlx::query_scalar!(r#"SELECT max("version") FROM "_vibing2_migrations""#).fetch_one(conn).await
}

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

async fn record(conn: &mut PgConnection, migration: &Migration, mode: &str, duration_ms: f64) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO "_vibing2_migrations" ("version", "name", "checksum", "mode", "durationMs")
           VALUES ($1, $2, $3, $4, $5)"#,
        migration.version,
        migration.name,
        migration.checksum(),
        mode,
        duration_ms
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The tables users fill: Prisma's ten, likes and competitions. The bookkeeping tables (view
/// refreshes, job runs, the ledgers) are not among them.
pub fn platform_tables() -> Vec<&'static str> {
    PHASE2_TABLES.iter().copied().chain(["ProjectLike", "Competition"]).collect()
}

/// Whether a migrate run has anything to do: no ledger yet, or a known migration missing
/// from it.
pub async fn has_pending(conn: &mut PgConnection) -> sqlx::Result<bool> {
    if current_version(conn).await?.is_none() {
        return Ok(true);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar(r#"SELECT "version" FROM "_vibing2_migrations""#).fetch_all(&mut *conn).await?;
    Ok(MIGRATIONS.iter().any(|migration| !applied.contains(&migration.version)))
}

/// The tables of migration 1: the Phase-2 schema Prisma created.
pub const PHASE2_TABLES: [&str; 10] = [
    "User",
    "Account",
    "Session",
    "VerificationToken",
    "Project",
    "ProjectFile",
    "Message",
    "TokenUsage",
    "ProjectCollaborator",
    "CollaborationInvite",
];

/// A database Prisma built has every table of migration 1. A partial set is refused: it is
/// neither empty nor Phase-2, and guessing would risk data.
async fn phase2_schema_present(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let present = sqlx::query_scalar!(
        r#"SELECT table_name::text AS "name!" FROM information_schema.tables
           WHERE table_schema = current_schema() AND table_name = ANY($1)"#,
        &PHASE2_TABLES[..] as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    match present.len() {
        0 => Ok(false),
        n if n == PHASE2_TABLES.len() => Ok(true),
        _ => bail!(
            "the database holds only some of the Phase-2 tables ({}); refusing to guess how to upgrade it",
            present.join(", ")
        ),
    }
}

/// An interrupted `CREATE INDEX CONCURRENTLY` leaves an invalid index behind, which
/// `IF NOT EXISTS` would then keep forever. Drop those before a no-transaction migration runs.
pub(super) async fn drop_invalid_indexes(conn: &mut PgConnection) -> anyhow::Result<()> {
    let invalid: Vec<(String, bool)> = sqlx::query_as(
        r#"SELECT c.relname::text, c.relkind = 'I' FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE NOT i.indisvalid AND n.nspname = current_schema()"#,
    )
    .fetch_all(&mut *conn)
    .await?;
    for (index, partitioned) in invalid {
        tracing::warn!(%index, "dropping an invalid index left by an interrupted build");
        conn.execute(sqlx::raw_sql(&index_switch::drop_statement(&index, partitioned))).await?;
    }
    Ok(())
}
