//! `vibing2 migrate --status` and `vibing2 migrate --revert-to VERSION`.
//!
//! Each migration says how it is taken back ([`Reverse`]): a down step under
//! `migrations/down/`, or one-way when it converted data the older schema cannot hold (the
//! backup taken before `migrate` is the way back from those). A down step with a check runs
//! only when its check query finds nothing the step would lose. A revert takes the migrate
//! lock, refuses the whole range before touching anything if one step in it is one-way or
//! would lose data, then runs the steps newest first, each in its own transaction (or, with
//! the no-transaction marker, statement by statement, for `DROP INDEX CONCURRENTLY`), removing
//! the ledger row with it.

use std::fmt;
use std::time::Instant;

use anyhow::{bail, Context};
use sqlx::{Connection, Executor, PgConnection};

use super::migrate::{self, Migration, Reverse, MIGRATIONS};

/// One migration as `migrate --status` lists it.
#[derive(Debug)]
pub struct Step {
    pub version: i64,
    pub name: &'static str,
    /// When and how it was applied (`applied` or `adopted`); `None` while pending.
    pub applied: Option<(String, String)>,
    pub reversible: Reversible,
}

/// Whether a migration can be reverted.
#[derive(Debug, PartialEq, Eq)]
pub enum Reversible {
    Yes,
    /// It has a down step guarded by a check, which runs once it is applied.
    IfNothingIsLost,
    /// Applied, and its check finds what the down step would lose.
    NotNow(Vec<String>),
    OneWay(&'static str),
}

impl Reversible {
    pub fn allows_revert(&self) -> bool {
        matches!(self, Reversible::Yes | Reversible::IfNothingIsLost)
    }
}

impl fmt::Display for Reversible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reversible::Yes => write!(f, "yes"),
            Reversible::IfNothingIsLost => write!(f, "yes, if nothing would be lost"),
            Reversible::NotNow(findings) => write!(f, "not now: {}", findings.join("; ")),
            Reversible::OneWay(reason) => write!(f, "one-way: {reason}"),
        }
    }
}

/// Every migration this binary knows, applied or pending, and every version the ledger holds
/// that it does not know.
pub async fn status(conn: &mut PgConnection) -> anyhow::Result<Vec<Step>> {
    let applied = ledger_rows(conn).await?;
    let mut steps = Vec::new();
    for migration in MIGRATIONS {
        let row = applied.iter().find(|row| row.0 == migration.version);
        let reversible = match (&migration.reverse, row) {
            (Reverse::OneWay(reason), _) => Reversible::OneWay(reason),
            (Reverse::Down { check: None, .. }, _) => Reversible::Yes,
            (Reverse::Down { check: Some(_), .. }, None) => Reversible::IfNothingIsLost,
            (Reverse::Down { check: Some(check), .. }, Some(_)) => match findings(conn, check).await? {
                found if found.is_empty() => Reversible::IfNothingIsLost,
                found => Reversible::NotNow(found),
            },
        };
        steps.push(Step {
            version: migration.version,
            name: migration.name,
            applied: row.map(|(_, at, mode)| (at.clone(), mode.clone())),
            reversible,
        });
    }
    if let Some((version, ..)) = applied.iter().find(|row| MIGRATIONS.iter().all(|m| m.version != row.0)) {
        bail!("the database has migration {version}, which this binary does not know: is it older?");
    }
    Ok(steps)
}

/// What one revert did: the migrations taken back, newest first, with their durations.
#[derive(Debug, Default)]
pub struct Reverted {
    pub steps: Vec<(i64, &'static str, f64)>,
}

/// Takes back every applied migration newer than `target`, newest first.
pub async fn revert_to(conn: &mut PgConnection, target: i64) -> anyhow::Result<Reverted> {
    if target != 0 && MIGRATIONS.iter().all(|m| m.version != target) {
        bail!("there is no migration {target}: the versions are 1 to {}", migrate::latest_version());
    }
    migrate::lock(conn).await?;
    let result = revert_locked(conn, target).await;
    migrate::unlock(conn).await?;
    result
}

async fn revert_locked(conn: &mut PgConnection, target: i64) -> anyhow::Result<Reverted> {
    let applied = ledger_rows(conn).await?;
    let mut range = Vec::new();
    for (version, ..) in applied.iter().rev().filter(|row| row.0 > target) {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            Some(migration) => range.push(migration),
            None => bail!("the database has migration {version}, which this binary does not know: is it older?"),
        }
    }
    let unfinished: i64 = sqlx::query_scalar(
        r#"SELECT CASE WHEN to_regclass('"_vibing2_migration_progress"') IS NULL THEN 0
                  ELSE (SELECT count(*) FROM "_vibing2_migration_progress") END"#,
    )
    .fetch_one(&mut *conn)
    .await?;
    anyhow::ensure!(unfinished == 0, "a migration was interrupted part-way: run `vibing2 migrate` to finish it first");
    refuse_one_way(&range, &applied, target)?;
    refuse_losses(conn, &range).await?;

    let mut reverted = Reverted::default();
    for migration in range {
        let started = Instant::now();
        take_back(conn, migration)
            .await
            .with_context(|| format!("the down step of migration {} ({}) failed", migration.version, migration.name))?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(version = migration.version, name = migration.name, elapsed_ms = elapsed, "migration reverted");
        reverted.steps.push((migration.version, migration.name, elapsed));
    }
    Ok(reverted)
}

/// A one-way step anywhere in the range refuses the whole revert, naming the lowest version
/// the database can go back to.
fn refuse_one_way(range: &[&Migration], applied: &[(i64, String, String)], target: i64) -> anyhow::Result<()> {
    let Some((migration, reason)) = range.iter().find_map(|m| match m.reverse {
        Reverse::OneWay(reason) => Some((m, reason)),
        Reverse::Down { .. } => None,
    }) else {
        return Ok(());
    };
    let lowest = applied
        .iter()
        .rev()
        .map(|row| row.0)
        .find(|version| MIGRATIONS.iter().any(|m| m.version == *version && matches!(m.reverse, Reverse::OneWay(_))))
        .unwrap_or(0);
    bail!(
        "cannot revert to {target}: migration {} ({}) is one-way ({reason}). The way back past it is the backup \
         taken before it was applied; this database can be reverted down to version {lowest} at most",
        migration.version,
        migration.name
    )
}

/// Runs every check of the range before anything changes, so a refusal leaves the schema as
/// it was.
async fn refuse_losses(conn: &mut PgConnection, range: &[&Migration]) -> anyhow::Result<()> {
    let mut lost = Vec::new();
    for migration in range {
        if let Reverse::Down { check: Some(check), .. } = migration.reverse {
            let found = findings(conn, check)
                .await
                .with_context(|| format!("the check of migration {} ({}) failed", migration.version, migration.name))?;
            lost.extend(
                found
                    .into_iter()
                    .map(|finding| format!("migration {} ({}): {finding}", migration.version, migration.name)),
            );
        }
    }
    if !lost.is_empty() {
        bail!(
            "reverting would lose data, so nothing was changed: {}. The backup taken before these migrations is the \
             way back",
            lost.join("; ")
        );
    }
    Ok(())
}

/// Runs one down step and removes the migration's ledger row.
async fn take_back(conn: &mut PgConnection, migration: &Migration) -> anyhow::Result<()> {
    let Reverse::Down { sql, check } = migration.reverse else {
        bail!("migration {} is one-way", migration.version);
    };
    if migrate::transactional(sql) {
        let mut tx = conn.begin().await?;
        // Checked again inside the transaction: a write may have come in since the first check.
        if let Some(check) = check {
            let found = findings(&mut tx, check).await?;
            anyhow::ensure!(found.is_empty(), "it would lose data: {}", found.join("; "));
        }
        tx.execute(sqlx::raw_sql(sql)).await?;
        forget(&mut tx, migration.version).await?;
        tx.commit().await?;
    } else {
        migrate::drop_invalid_indexes(conn).await?;
        for statement in migrate::statements(sql) {
            conn.execute(sqlx::raw_sql(&statement)).await.with_context(|| format!("at: {}", statement.trim()))?;
        }
        forget(conn, migration.version).await?;
    }
    Ok(())
}

async fn forget(conn: &mut PgConnection, version: i64) -> sqlx::Result<()> {
    sqlx::query(r#"DELETE FROM "_vibing2_migrations" WHERE "version" = $1"#).bind(version).execute(conn).await?;
    Ok(())
}

/// What a check query lists: one line per thing the down step would lose.
async fn findings(conn: &mut PgConnection, check: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(check).fetch_all(conn).await
}

/// The ledger, oldest first: (version, applied at, mode); empty before the first migrate.
async fn ledger_rows(conn: &mut PgConnection) -> sqlx::Result<Vec<(i64, String, String)>> {
    let exists: bool =
        sqlx::query_scalar(r#"SELECT to_regclass('"_vibing2_migrations"') IS NOT NULL"#).fetch_one(&mut *conn).await?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        r#"SELECT "version", to_char("appliedAt", 'YYYY-MM-DD HH24:MI:SS.MS'), "mode"
           FROM "_vibing2_migrations" ORDER BY "version""#,
    )
    .fetch_all(conn)
    .await
}
