//! The subcommands: each one wires settings, database and server together.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{ConnectOptions, Connection};
use tokio::net::TcpListener;

use crate::app;
use crate::cli::{
    BackupCommand, BenchCommand, BenchPart, EmailConflictChoice, ImportCommand, IndexCommand, MigrateCommand, PgTools,
    RestoreCommand, SeedFlavor,
};
use crate::config::Settings;
use crate::db::{self, backup, embedded::EmbeddedCluster, index_switch, migrate, revert};
use crate::jobs::{self, Scheduler};
use crate::state::AppState;
use crate::switches::Switches;

/// The database a command runs against: `DATABASE_URL`, or the embedded cluster.
struct Database {
    url: SecretString,
    embedded: Option<EmbeddedCluster>,
}

impl Database {
    async fn open(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.database.url {
            Some(url) => Ok(Self { url: url.clone(), embedded: None }),
            None => {
                tracing::warn!(
                    dir = %settings.database.embedded_dir.display(),
                    "DATABASE_URL is unset: running on the embedded development database (set DATABASE_URL, and \
                     database.require_url=true, for a deployment)"
                );
                let cluster = EmbeddedCluster::start(&settings.database.embedded_dir, &[]).await?;
                Ok(Self { url: cluster.url(), embedded: Some(cluster) })
            }
        }
    }

    async fn close(self) {
        if let Some(cluster) = self.embedded {
            if let Err(error) = cluster.stop().await {
                tracing::error!(error = %format!("{error:#}"), "the embedded PostgreSQL did not stop cleanly");
            }
        }
    }
}

/// `vibing2 serve`: migrate (unless MIGRATE_ON_START=false), then serve until SIGINT/SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // First: from here on a SIGHUP re-reads the configuration instead of ending the process.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let database = Database::open(&settings).await?;
    configure_cursor_key(&settings, database.embedded.is_some())?;
    let outcome = run_server(settings, &database.url, hangups).await;
    database.close().await;
    outcome
}

async fn run_server(
    settings: Settings,
    url: &SecretString,
    hangups: tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    let pool = db::connect(&settings.database, url).await?;
    if settings.database.migrate_on_start {
        apply_migrations(&settings, url, migrate::Options::default()).await?;
    }
    if settings.redis.url.is_none() {
        tracing::info!("REDIS_URL is unset: no shared cache tier");
    }
    let address = (settings.server.host, settings.server.port);
    let listener =
        TcpListener::bind(address).await.with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
    tracing::info!(address = %listener.local_addr()?, "vibing2 listening");
    let state = AppState::new(pool.clone(), settings)?;
    crate::auth::password::warm_up();
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let views_stopped = jobs_stopped.clone();
    let history_stopped = jobs_stopped.clone();
    let jobs = state.settings.jobs.enabled.then(|| {
        let scheduler = Scheduler::new(pool.clone(), state.settings.jobs.clone()).with_schedule(state.switches.jobs());
        tokio::spawn(scheduler.run(jobs_stopped))
    });
    tokio::spawn(reload_on_hangup(hangups, state.switches.clone(), (*state.settings).clone()));
    // Views counted since the last flush are written before the pool closes.
    let views = tokio::spawn(crate::service::views::flush_periodically(state.clone(), views_stopped));
    tokio::spawn(crate::service::monitor::keep_slow_history(
        pool.clone(),
        state.settings.monitor.clone(),
        history_stopped,
    ));
    let server_settings = state.settings.server.clone();
    crate::server::run(listener, app::router(state), &server_settings, shutdown_signal()).await?;
    let _ = stop_jobs.send(true);
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    let _ = views.await;
    pool.close().await;
    Ok(())
}

/// On each SIGHUP, re-reads the configuration as at startup and applies its switches
/// (`switches::Switches::reload`); other changed settings are reported, not applied.
async fn reload_on_hangup(mut hangups: tokio::signal::unix::Signal, switches: Switches, started: Settings) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: re-reading the configuration");
        switches.reload(&started, Settings::load());
    }
}

/// Signs cursors with the configured key; else, on the embedded cluster, with a key generated
/// once and kept beside it; else with a random key for this process (with a warning: cursors
/// then fail on other instances and after a restart).
fn configure_cursor_key(settings: &Settings, embedded: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(secret) = &settings.cursor_secret {
        crate::domain::page::set_cursor_key(secret.expose_secret().as_bytes());
        return Ok(());
    }
    if !embedded {
        tracing::warn!("cursor_secret is unset: list cursors are signed with a key of this process only");
        return Ok(());
    }
    let path = settings.database.embedded_dir.join("cursor.key");
    let key = match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => key,
        _ => {
            let key: [u8; 32] = rand::random();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot write the cursor key {}", path.display()))?;
            std::io::Write::write_all(&mut file, &key)?;
            key.to_vec()
        }
    };
    crate::domain::page::set_cursor_key(&key);
    Ok(())
}

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

/// A connection for schema work, without the pool's statement timeout: a down step or an
/// index build on a large table may take longer than any request should.
async fn schema_connection(settings: &Settings, url: &SecretString) -> anyhow::Result<sqlx::PgConnection> {
    let connect = db::connect_options(&settings.database, url)?.options([("statement_timeout", "0")]);
    connect.connect().await.context("cannot connect to the database")
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
    let needed = backup::migrations_pending(&mut conn).await? && backup::holds_data(&mut conn).await?;
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

/// `vibing2 refresh-views`: refresh the materialized views once.
pub async fn refresh_views(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome = async {
        let pool = db::connect(&settings.database, &database.url).await?;
        jobs::refresh_views_now(&pool).await
    }
    .await;
    database.close().await;
    for (view, elapsed_ms) in outcome? {
        println!("refreshed {view} in {elapsed_ms:.0} ms");
    }
    Ok(())
}

/// `vibing2 import sqlite:PATH`: fails (non-zero exit) on any refusal or mismatch, after
/// printing the report.
pub async fn import(settings: Settings, command: ImportCommand) -> anyhow::Result<()> {
    use crate::import::{self, tables::ApiLimits, EmailConflict, ImportOptions};
    let options = ImportOptions {
        source: import::source_path(&command.source)?,
        on_email_conflict: match command.on_email_conflict {
            EmailConflictChoice::Fail => EmailConflict::Fail,
            EmailConflictChoice::KeepFirst => EmailConflict::KeepFirst,
        },
        batch_rows: command.batch_rows as usize,
        quiet: command.quiet,
        rejects_path: command.rejects,
        limits: ApiLimits {
            message_chars: crate::validate::MESSAGE_CONTENT_CHARS,
            file_bytes: settings.limits.file_bytes_free,
        },
    };
    let database = Database::open(&settings).await?;
    let outcome = async {
        let target = db::connect_options(&settings.database, &database.url)?;
        import::run(&target, &options).await
    }
    .await;
    database.close().await;
    let report = outcome?;
    print!("{}", report.text());
    if let Some(path) = &command.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    anyhow::ensure!(report.ok, "the import's verification failed: see the report");
    Ok(())
}

/// `vibing2 bench [seed|http]`.
pub async fn bench(settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    use crate::bench::{self, seed::Flavor, BenchOptions};
    if let Some(BenchPart::Http { url, concurrency, users, projects_per_user, duration, server_pid, out }) =
        command.part
    {
        let database = settings.database.url.as_ref().map(|url| url.expose_secret().to_owned());
        let report = bench::http::run(bench::http::HttpOptions {
            url: &url,
            concurrency,
            users: users.unwrap_or(concurrency.min(32)),
            projects_per_user: projects_per_user.into(),
            seconds: duration,
            server_pid,
            pgbench_database: database.as_deref(),
        })
        .await?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
        std::fs::write(out.join("report.md"), report.markdown())?;
        println!("{}", report.markdown());
        return Ok(());
    }
    let database = Database::open(&settings).await?;
    let outcome = match command.part {
        Some(BenchPart::Import { messages, seed, rounds, out }) => {
            bench::import::run(database.url.expose_secret(), messages, seed, rounds as usize, &out).await.map(
                |report| {
                    println!("{}", report.markdown());
                    println!("report written to {}", out.display());
                },
            )
        }
        Some(BenchPart::Seed { scale, seed, flavor }) => {
            let (flavor, optimized) = match flavor {
                SeedFlavor::Current => (Flavor::Current, false),
                SeedFlavor::Phase2 => (Flavor::Phase2, false),
                SeedFlavor::Phase2Optimized => (Flavor::Phase2, true),
            };
            let seeded = bench::seed_target(&database.url, scale, seed, flavor).await;
            let seeded = match seeded {
                Ok(report) if optimized => bench::optimize_like_the_report(&database.url).await.map(|()| report),
                other => other,
            };
            seeded.map(|report| {
                for table in &report.tables {
                    println!(
                        "{:<20} {:>10} rows {:>7.1} s {:>10.0} rows/s",
                        table.table,
                        table.rows,
                        table.seconds,
                        table.rows_per_second()
                    );
                }
                println!("{:<20} {:>10} rows {:>7.1} s", "total", report.rows(), report.total_seconds);
            })
        }
        _ => {
            let run = command.run;
            let options = BenchOptions {
                scale: run.scale,
                seed: run.seed,
                out: run.out.clone(),
                keep: run.keep,
                iterations: run.iterations,
                warmup: run.warmup,
                cache_reads: run.cache_reads,
                pool_clients: run.pool_clients,
                pool_seconds: run.pool_seconds,
                command: std::env::args().collect::<Vec<_>>().join(" "),
            };
            bench::run(&settings, &database.url, &options).await.map(|report| {
                println!("{}", report.markdown());
                println!("report written to {}", run.out.display());
            })
        }
    };
    database.close().await;
    outcome
}

/// Migrations run on their own connection, without the pool's statement timeout: an index
/// build on a large table may take longer than any request should.
async fn apply_migrations(
    settings: &Settings,
    url: &SecretString,
    options: migrate::Options,
) -> anyhow::Result<migrate::Report> {
    let connect = db::connect_options(&settings.database, url)?.options([("statement_timeout", "0")]);
    let mut conn = connect.connect().await.context("cannot connect to run migrations")?;
    migrate::run_with(&mut conn, options).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on unix");
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}
