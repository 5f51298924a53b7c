//! `vibing2 migrate` (with its backup, `--status` and `--revert-to`), `index`, `backup` and
//! `restore`.

use anyhow::Context;
use secrecy::SecretString;
use sqlx::Connection;

use super::{schema_connection, Database};
use crate::cli::{BackupCommand, IndexCommand, MigrateCommand, PgTools, RestoreCommand};
use crate::config::Settings;
use crate::db::{self, backup, index_switch, migrate, revert};

/// `vibing2 migrate`: back up a database that holds data first, then print what was applied,
/// adopted and reported.
pub async fn migrate(settings: Settings, command: MigrateCommand) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let defaults = migrate::Options::default();
    let options = migrate::Options { batch_rows: command.batch_rows.unwrap_or(defaults.batch_rows) };
    let outcome = async {
        back_up_before_migrating(&settings, &database.url, &command).await?;
        apply_migrations(&settings, &database.url, options).await
    }
    .await;
    database.close().await;
    let report = outcome?;
    if let Some(version) = report.resumed {
        println!("resumed migration {version:04}, which an earlier run had left part-way");
    }
    for (version, name, elapsed_ms) in &report.applied {
        println!("applied {version:04} {name} in {elapsed_ms:.0} ms");
    }
    if report.is_noop() {
        println!("the schema is current (version {}); nothing to do", migrate::latest_version());
    }
    println!("summary:");
    let state = match (&report.adoption, report.adopted_phase2) {
        (Some(adoption), _) => adoption.state.clone(),
        (None, true) => "Prisma's init_postgresql schema".to_owned(),
        (None, false) => "a database of this service (or an empty one)".to_owned(),
    };
    println!("  found: {state}");
    if report.adopted_phase2 {
        println!("  adopted: the Phase-2 (Prisma) schema as migration 1");
    }
    if let Some(adoption) = &report.adoption {
        if !adoption.indexes_dropped.is_empty() {
            println!("  dropped the report's indexes: {}", adoption.indexes_dropped.join(", "));
        }
        println!(
            "  carried over: {} projects' counters, views and flags ({} where the legacy likes/forks disagreed; the \
             larger was kept), {} usage rows' project, model and cost, {} messages' tokens",
            adoption.projects, adoption.counter_disagreements, adoption.usage_rows, adoption.messages
        );
    }
    for filled in &report.backfilled {
        println!(
            "  filled {}: {} rows walked, {} changed by this run, in {:.0} ms",
            filled.name, filled.walked, filled.changed, filled.elapsed_ms
        );
    }
    for issue in &report.issues {
        println!(
            "legacy value kept aside: {}.{} of row {} ({}): {:?}",
            issue.table, issue.column, issue.row_id, issue.problem, issue.original_value
        );
    }
    Ok(())
}

/// `vibing2 migrate --status`: every migration, applied or pending, and whether it can be
/// reverted.
pub async fn migrate_status(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome = async { revert::status(&mut schema_connection(&settings, &database.url).await?).await }.await;
    database.close().await;
    let steps = outcome?;
    println!("{:<8} {:<24} {:<24} {:<8} reversible", "version", "name", "applied at (UTC)", "mode");
    for step in &steps {
        let (at, mode) = step.applied.clone().unwrap_or_else(|| ("pending".to_owned(), String::new()));
        println!("{:<8} {:<24} {:<24} {:<8} {}", format!("{:04}", step.version), step.name, at, mode, step.reversible);
    }
    let pending = steps.iter().filter(|step| step.applied.is_none()).count();
    println!("{} applied, {pending} pending", steps.len() - pending);
    Ok(())
}

/// `vibing2 migrate --revert-to VERSION`: the down steps of every newer migration.
pub async fn migrate_revert(settings: Settings, version: i64) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome =
        async { revert::revert_to(&mut schema_connection(&settings, &database.url).await?, version).await }.await;
    database.close().await;
    let reverted = outcome?;
    for (version, name, elapsed_ms) in &reverted.steps {
        println!("reverted {version:04} {name} in {elapsed_ms:.0} ms");
    }
    if reverted.steps.is_empty() {
        println!("nothing to revert: no applied migration is newer than {version}");
    } else {
        println!("the schema is at version {version}; `vibing2 migrate` applies the rest again");
    }
    Ok(())
}

/// `vibing2 index disable|enable|list`.
pub async fn index(settings: Settings, command: IndexCommand) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome = async {
        let mut conn = schema_connection(&settings, &database.url).await?;
        // Who switched it, for the record: the operator's login, else the database role.
        let by = match std::env::var("USER") {
            Ok(user) if !user.is_empty() => user,
            _ => sqlx::query_scalar("SELECT current_user::text").fetch_one(&mut conn).await?,
        };
        match command {
            IndexCommand::Disable { name } => match index_switch::disable(&mut conn, &name, &by).await? {
                index_switch::Outcome::Changed => println!("disabled {name}: dropped, and `migrate` leaves it so"),
                index_switch::Outcome::Already => println!("{name} was already disabled"),
            },
            IndexCommand::Enable { name } => match index_switch::enable(&mut conn, &name, &by).await? {
                index_switch::Outcome::Changed => println!("enabled {name}: built again and valid"),
                index_switch::Outcome::Already => println!("{name} is already enabled and valid"),
            },
            IndexCommand::List => {
                for state in index_switch::list(&mut conn).await? {
                    let switched = state
                        .switch
                        .map(|s| format!(" ({} at {} by {})", s.state, s.changed_at, s.by))
                        .unwrap_or_default();
                    println!("{:<52} {:<9}{switched}", state.index.name, state.state);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    database.close().await;
    outcome
}

/// A database that holds data and has migrations pending is backed up (and the backup
/// verified) before the schema is touched; a failed backup stops the migration. `serve`'s
/// migrate-on-start takes none: deployments run `vibing2 migrate` first.
async fn back_up_before_migrating(
    settings: &Settings,
    url: &SecretString,
    command: &MigrateCommand,
) -> anyhow::Result<()> {
    if command.no_backup {
        tracing::warn!("--no-backup: migrating without a backup");
        println!("backup skipped (--no-backup)");
        return Ok(());
    }
    let target = backup_target(settings, url, &command.tools)?;
    let mut conn = backup::connect(&target).await?;
    let needed = migrate::has_pending(&mut conn).await? && backup::holds_data(&mut conn).await?;
    conn.close().await?;
    if !needed {
        return Ok(());
    }
    println!("the database holds data and has migrations pending: backing it up first");
    let taken = backup::take(&target, &command.backup_dir, &mut step_printer()).await.context(
        "refusing to migrate: the backup before it failed, and the schema was not touched (--no-backup migrates \
         without one)",
    )?;
    print_backup(&taken);
    Ok(())
}

/// `vibing2 backup`: a verified dump, with a line per step and a summary.
pub async fn backup(settings: Settings, command: BackupCommand) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome = async {
        let target = backup_target(&settings, &database.url, &command.tools)?;
        backup::take(&target, &command.backup_dir, &mut step_printer()).await
    }
    .await;
    database.close().await;
    print_backup(&outcome?);
    Ok(())
}

/// `vibing2 restore FILE`: fails (non-zero exit) on a non-empty target without `--replace`,
/// and on any row count that differs from the backup's.
pub async fn restore(settings: Settings, command: RestoreCommand) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome = async {
        let target = backup_target(&settings, &database.url, &command.tools)?;
        backup::restore(&target, &command.file, command.replace, &mut step_printer()).await
    }
    .await;
    database.close().await;
    let restored = outcome?;
    println!(
        "restored {}{} in {:.1} s: row counts match the backup's",
        command.file.display(),
        if restored.replaced { " (replacing the public schema)" } else { "" },
        restored.elapsed.as_secs_f64()
    );
    print_counts(&restored.counts);
    Ok(())
}

fn backup_target(settings: &Settings, url: &SecretString, tools: &PgTools) -> anyhow::Result<backup::Target> {
    Ok(backup::Target {
        url: url.clone(),
        connect: db::connect_options(&settings.database, url)?,
        bin_dir: tools.pg_bin_dir.clone(),
    })
}

/// Prints each step as it starts, with the seconds since the first.
fn step_printer() -> impl FnMut(&str) {
    let started = std::time::Instant::now();
    move |step| println!("[{:>6.1} s] {step}", started.elapsed().as_secs_f64())
}

fn print_backup(backup: &backup::Backup) {
    println!(
        "backup: {} ({:.1} MB, {:.1} s), verified with pg_restore --list",
        backup.file.display(),
        backup.bytes as f64 / 1_000_000.0,
        backup.elapsed.as_secs_f64()
    );
    println!("counts: {}", backup.counts_file.display());
    print_counts(&backup.counts);
}

fn print_counts(counts: &backup::Counts) {
    let version = counts.schema_version.map_or("none".to_owned(), |version| version.to_string());
    println!(
        "database {}, schema version {version}, {} tables, {} rows:",
        counts.database,
        counts.tables.len(),
        counts.rows()
    );
    for (table, rows) in &counts.tables {
        println!("  {table:<32} {rows:>12}");
    }
}

/// Migrations run on a schema connection (no statement timeout).
pub(super) async fn apply_migrations(
    settings: &Settings,
    url: &SecretString,
    options: migrate::Options,
) -> anyhow::Result<migrate::Report> {
    let mut conn = schema_connection(settings, url).await?;
    migrate::run_with(&mut conn, options).await
}
