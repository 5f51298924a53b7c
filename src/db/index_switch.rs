//! Index switches: `vibing2 index disable NAME` drops an index of the ledger with
//! `DROP INDEX CONCURRENTLY`, and `enable NAME` builds it again with `CREATE INDEX
//! CONCURRENTLY` from its definition, for the gradual rollback of a problem index without a
//! deploy. Each change is a row of `_vibing2_index_switches` (migration 12); the newest row per
//! index is its state, which `migrate` respects: it does not rebuild a disabled index, and
//! [`missing`] does not count one.
//!
//! The ledger is read from the embedded migrations: every index a migration creates that no
//! later migration drops or renames, with its definition. Unique indexes enforce a rule of the
//! data and cannot be switched off.

use anyhow::{bail, Context};
use sqlx::{Executor, PgConnection};

use super::migrate::{self, Migration, MIGRATIONS};
use super::partitions;

/// An index of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerIndex {
    pub name: String,
    pub unique: bool,
    /// Everything after the name: `ON "Table" (...)`, with any `USING` and `WHERE`.
    pub target: String,
}

impl LedgerIndex {
    /// Its table and what follows it (`USING ...`, the columns), from `ON <table> <rest>`.
    fn table_and_rest(&self) -> Option<(&str, &str)> {
        self.target.strip_prefix("ON ")?.split_once(' ')
    }

    /// The statement that builds it without blocking writers.
    pub fn create_concurrently(&self) -> String {
        let unique = if self.unique { "UNIQUE " } else { "" };
        format!("CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {} {}", quoted(&self.name), self.target)
    }
}

/// The indexes the migrations leave in the schema, in the order they are created.
pub fn ledger() -> Vec<LedgerIndex> {
    ledger_of(MIGRATIONS)
}

fn ledger_of(migrations: &[Migration]) -> Vec<LedgerIndex> {
    let mut indexes: Vec<LedgerIndex> = Vec::new();
    for statement in migrations.iter().flat_map(|m| migrate::statements(m.sql)) {
        let words = statement.split_whitespace().collect::<Vec<_>>();
        if let Some(index) = parse_create(&words) {
            indexes.retain(|known| known.name != index.name);
            indexes.push(index);
        } else if let Some(gone) = parse_drop_or_rename(&words) {
            indexes.retain(|known| known.name != gone);
        }
    }
    indexes
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON ...`.
fn parse_create(words: &[&str]) -> Option<LedgerIndex> {
    let mut rest = words.strip_prefix(&["CREATE"])?;
    let unique = rest.first() == Some(&"UNIQUE");
    rest = if unique { &rest[1..] } else { rest };
    rest = rest.strip_prefix(&["INDEX"])?;
    rest = rest.strip_prefix(&["CONCURRENTLY"]).unwrap_or(rest);
    rest = rest.strip_prefix(&["IF", "NOT", "EXISTS"]).unwrap_or(rest);
    let (name, target) = rest.split_first()?;
    (target.first() == Some(&"ON")).then(|| LedgerIndex {
        name: unquoted(name),
        unique,
        target: target.join(" ").trim_end_matches(';').to_owned(),
    })
}

/// The index a `DROP INDEX` removes or an `ALTER INDEX ... RENAME TO` renames away.
fn parse_drop_or_rename(words: &[&str]) -> Option<String> {
    if let Some(rest) = words.strip_prefix(&["DROP", "INDEX"]) {
        let rest = rest.strip_prefix(&["CONCURRENTLY"]).unwrap_or(rest);
        let rest = rest.strip_prefix(&["IF", "EXISTS"]).unwrap_or(rest);
        return rest.first().map(|name| unquoted(name));
    }
    match words {
        ["ALTER", "INDEX", name, "RENAME", ..] => Some(unquoted(name)),
        _ => None,
    }
}

fn unquoted(name: &str) -> String {
    name.trim_end_matches(';').trim_matches('"').to_owned()
}

fn quoted(name: &str) -> String {
    super::quote_identifier(name)
}

/// The statement that drops the index `name`. An index of a partitioned table cannot be
/// dropped concurrently: its drop is a catalog change that waits for the queries on the table.
pub(super) fn drop_statement(name: &str, partitioned: bool) -> String {
    let concurrently = if partitioned { "" } else { "CONCURRENTLY " };
    format!("DROP INDEX {concurrently}IF EXISTS {}", quoted(name))
}

/// The ledger index an operator may switch, or a refusal that says why not.
pub fn switchable(name: &str) -> anyhow::Result<LedgerIndex> {
    let Some(index) = ledger().into_iter().find(|index| index.name == name) else {
        bail!(
            "{name:?} is not an index of the ledger (docs/indexes.md); `vibing2 index list` shows the ones there are"
        );
    };
    if index.unique {
        bail!("{name} is a unique index: it enforces a rule of the data, so it cannot be disabled");
    }
    Ok(index)
}

/// Whether `statement` builds one of the `disabled` indexes.
pub fn creates_one_of(statement: &str, disabled: &[String]) -> bool {
    let words = statement.split_whitespace().collect::<Vec<_>>();
    parse_create(&words).is_some_and(|index| disabled.contains(&index.name))
}

/// The indexes whose newest switch is `disabled`; none before migration 12.
pub async fn disabled(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    Ok(switches(conn).await?.into_iter().filter(|s| s.state == "disabled").map(|s| s.name).collect())
}

/// The newest switch of an index.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Switch {
    pub name: String,
    pub state: String,
    pub changed_at: String,
    pub by: String,
}

/// The newest switch of every index ever switched; none before migration 12.
pub async fn switches(conn: &mut PgConnection) -> sqlx::Result<Vec<Switch>> {
    let exists: bool = sqlx::query_scalar(r#"SELECT to_regclass('"_vibing2_index_switches"') IS NOT NULL"#)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        r#"SELECT DISTINCT ON ("name") "name", "state",
                  to_char("changedAt", 'YYYY-MM-DD HH24:MI:SS') AS "changed_at", "by"
           FROM "_vibing2_index_switches" ORDER BY "name", "id" DESC"#,
    )
    .fetch_all(conn)
    .await
}

/// Drops whichever of the `disabled` indexes exist (a migration built one again).
pub async fn drop_present(conn: &mut PgConnection, disabled: &[String]) -> anyhow::Result<()> {
    for name in disabled {
        if let Some(state) = state_of(conn, name).await? {
            tracing::warn!(index = %name, "dropping a disabled index that a migration built");
            conn.execute(sqlx::raw_sql(&drop_statement(name, state.partitioned))).await?;
        }
    }
    Ok(())
}

/// An index that exists: whether it is valid, and whether it is a partitioned table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
struct Present {
    valid: bool,
    partitioned: bool,
}

/// Whether the index exists, and if so what it is.
async fn state_of(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<Present>> {
    sqlx::query_as(
        r#"SELECT i.indisvalid AS valid, c.relkind = 'I' AS partitioned FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relname = $1 AND n.nspname = current_schema()"#,
    )
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// What a switch did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    /// The index was already in that state; nothing was recorded.
    Already,
}

/// Records the index as disabled, then drops it; `migrate` leaves it dropped from then on.
pub async fn disable(conn: &mut PgConnection, name: &str, by: &str) -> anyhow::Result<Outcome> {
    let index = switchable(name)?;
    // Switches take the migrate lock: a migration run reads the switches once, at its start.
    migrate::lock(conn).await?;
    let outcome = disable_locked(conn, index, by).await;
    migrate::unlock(conn).await?;
    outcome
}

async fn disable_locked(conn: &mut PgConnection, index: LedgerIndex, by: &str) -> anyhow::Result<Outcome> {
    require_switch_table(conn).await?;
    let state = state_of(conn, &index.name).await?;
    if disabled(conn).await?.contains(&index.name) && state.is_none() {
        return Ok(Outcome::Already);
    }
    // Recorded first: if the drop is interrupted, the next `disable` or `migrate` finishes it.
    record(conn, &index.name, "disabled", by).await?;
    let partitioned = state.is_some_and(|state| state.partitioned);
    conn.execute(sqlx::raw_sql(&drop_statement(&index.name, partitioned))).await?;
    tracing::info!(index = %index.name, by, "index disabled");
    Ok(Outcome::Changed)
}

/// Builds the index again from the ledger (dropping an invalid one an interrupted build left),
/// checks that it is valid, then records it as enabled.
pub async fn enable(conn: &mut PgConnection, name: &str, by: &str) -> anyhow::Result<Outcome> {
    let index = switchable(name)?;
    // Switches take the migrate lock: a migration run reads the switches once, at its start.
    migrate::lock(conn).await?;
    let outcome = enable_locked(conn, index, by).await;
    migrate::unlock(conn).await?;
    outcome
}

async fn enable_locked(conn: &mut PgConnection, index: LedgerIndex, by: &str) -> anyhow::Result<Outcome> {
    require_switch_table(conn).await?;
    let was_disabled = disabled(conn).await?.contains(&index.name);
    let state = state_of(conn, &index.name).await?;
    if !was_disabled && state.is_some_and(|state| state.valid) {
        return Ok(Outcome::Already);
    }
    if let Some(invalid) = state.filter(|state| !state.valid) {
        tracing::warn!(index = %index.name, "dropping an invalid index left by an interrupted build");
        conn.execute(sqlx::raw_sql(&drop_statement(&index.name, invalid.partitioned))).await?;
    }
    build(conn, &index)
        .await
        .with_context(|| format!("building {} failed; run `vibing2 index enable {}` again", index.name, index.name))?;
    let valid = state_of(conn, &index.name).await?.is_some_and(|state| state.valid);
    anyhow::ensure!(valid, "{} was built but is not valid", index.name);
    record(conn, &index.name, "enabled", by).await?;
    tracing::info!(index = %index.name, by, "index enabled");
    Ok(Outcome::Changed)
}

/// Runs a migration's `CREATE INDEX CONCURRENTLY` on a partitioned table (which PostgreSQL
/// refuses, even when the index exists) the way [`enable`] builds one; false, doing nothing,
/// for any other statement.
pub async fn build_if_partitioned(conn: &mut PgConnection, statement: &str) -> anyhow::Result<bool> {
    let words = statement.split_whitespace().collect::<Vec<_>>();
    let Some(index) = parse_create(&words).filter(|_| words.contains(&"CONCURRENTLY")) else { return Ok(false) };
    let Some((table, rest)) = index.table_and_rest() else { return Ok(false) };
    if !partitions::is_partitioned(conn, table).await? {
        return Ok(false);
    }
    if !state_of(conn, &index.name).await?.is_some_and(|state| state.valid) {
        build_partitioned(conn, &index, table, rest).await?;
    }
    Ok(true)
}

/// Builds a ledger index without blocking writers. On a partitioned table, where `CREATE
/// INDEX CONCURRENTLY` is refused, the parent's index is created on the parent alone (`ON
/// ONLY`, invalid while a partition lacks its index), each partition's concurrently, and each
/// is attached, which makes the parent's valid once all are.
async fn build(conn: &mut PgConnection, index: &LedgerIndex) -> anyhow::Result<()> {
    let Some((table, rest)) = index.table_and_rest() else {
        bail!("cannot read the table of {}: {}", index.name, index.target);
    };
    if partitions::is_partitioned(conn, table).await? {
        return build_partitioned(conn, index, table, rest).await;
    }
    conn.execute(sqlx::raw_sql(&index.create_concurrently())).await?;
    Ok(())
}

async fn build_partitioned(
    conn: &mut PgConnection,
    index: &LedgerIndex,
    table: &str,
    rest: &str,
) -> anyhow::Result<()> {
    let unique = if index.unique { "UNIQUE " } else { "" };
    let parent = quoted(&index.name);
    conn.execute(sqlx::raw_sql(&format!("CREATE {unique}INDEX IF NOT EXISTS {parent} ON ONLY {table} {rest}"))).await?;
    let table_name = unquoted(table);
    for partition in partitions::partitions_of(conn, table).await? {
        // The name PostgreSQL gives a partition's copy of the index: the partition's name in
        // place of the table's.
        let child = match index.name.strip_prefix(&table_name) {
            Some(suffix) => quoted(&format!("{partition}{suffix}")),
            None => quoted(&format!("{partition}_{}", index.name)),
        };
        let on = quoted(&partition);
        conn.execute(sqlx::raw_sql(&format!("CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {child} ON {on} {rest}")))
            .await?;
        conn.execute(sqlx::raw_sql(&format!("ALTER INDEX {parent} ATTACH PARTITION {child}"))).await?;
    }
    Ok(())
}

async fn require_switch_table(conn: &mut PgConnection) -> anyhow::Result<()> {
    let exists: bool = sqlx::query_scalar(r#"SELECT to_regclass('"_vibing2_index_switches"') IS NOT NULL"#)
        .fetch_one(&mut *conn)
        .await?;
    anyhow::ensure!(exists, "the database has no index switches yet (migration 12): run `vibing2 migrate` first");
    Ok(())
}

async fn record(conn: &mut PgConnection, name: &str, state: &str, by: &str) -> sqlx::Result<()> {
    sqlx::query(r#"INSERT INTO "_vibing2_index_switches" ("name", "state", "by") VALUES ($1, $2, $3)"#)
        .bind(name)
        .bind(state)
        .bind(by)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every ledger index and where it stands in the database.
#[derive(Debug)]
pub struct IndexState {
    pub index: LedgerIndex,
    /// `present`, `disabled`, `missing` or `invalid`.
    pub state: &'static str,
    pub switch: Option<Switch>,
}

pub async fn list(conn: &mut PgConnection) -> anyhow::Result<Vec<IndexState>> {
    let switches = switches(conn).await?;
    let mut states = Vec::new();
    for index in ledger() {
        let switch = switches.iter().find(|s| s.name == index.name).cloned();
        let disabled = switch.as_ref().is_some_and(|s| s.state == "disabled");
        let state = match (state_of(conn, &index.name).await?.map(|state| state.valid), disabled) {
            (Some(true), _) => "present",
            (Some(false), _) => "invalid",
            (None, true) => "disabled",
            (None, false) => "missing",
        };
        states.push(IndexState { index, state, switch });
    }
    Ok(states)
}

/// Ledger indexes the database lacks, disabled ones aside.
pub async fn missing(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    Ok(list(conn).await?.into_iter().filter(|s| s.state == "missing").map(|s| s.index.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_follows_creates_drops_and_renames() {
        let names: Vec<String> = ledger().into_iter().map(|index| index.name).collect();
        for kept in
            ["Project_public_likeCount_idx", "LoginFailure_key_at_idx", "User_email_key", "user_token_summary_key"]
        {
            assert!(names.contains(&kept.to_owned()), "{kept} missing from {names:?}");
        }
        for gone in ["Project_userId_idx", "Session_sessionToken_key", "TokenUsage_endpoint_idx"] {
            assert!(!names.contains(&gone.to_owned()), "{gone} should have left the ledger");
        }
        let trigram = ledger().into_iter().find(|index| index.name == "Project_public_name_trgm_idx").unwrap();
        assert_eq!(
            trigram.create_concurrently(),
            r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "Project_public_name_trgm_idx" ON "Project" USING gin ("name" gin_trgm_ops) WHERE "visibility" = 'PUBLIC'"#
        );
    }

    #[test]
    fn only_non_unique_ledger_indexes_can_be_switched() {
        assert!(switchable("Project_public_likeCount_idx").is_ok());
        assert!(switchable("User_email_key").unwrap_err().to_string().contains("unique"));
        assert!(switchable("no_such_idx").unwrap_err().to_string().contains("not an index of the ledger"));
    }
}
