//! `vibing2 serve`: the service, its signals and its shutdown.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use super::schema::apply_migrations;
use super::Database;
use crate::app;
use crate::config::Settings;
use crate::db::{self, migrate};
use crate::jobs::Scheduler;
use crate::state::AppState;
use crate::switches::Switches;

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
    // The job does it too; this start does not wait for the scheduler, nor need it to run.
    match crate::jobs::prepare_partitions(&pool, &settings.jobs).await {
        Ok(created) => tracing::info!(?created, "TokenUsage partitions ready for the months ahead"),
        Err(error) => tracing::warn!(%error, "could not prepare the TokenUsage partitions; the job retries"),
    }
    if settings.redis.url.is_none() {
        tracing::info!("REDIS_URL is unset: no shared cache tier");
    }
    if let Some(window) = settings.database.read_your_writes_gap() {
        tracing::warn!(
            window_ms = window.as_millis() as u64,
            max_lag_ms = settings.database.replica_max_lag_ms,
            probe_ms = settings.database.replica_probe_ms,
            "database.read_your_writes_ms is not longer than the replicas' lag limit plus a probe: \
             a writer may read a replica that has not replayed their own change"
        );
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
    let replicas = state.replicas.clone();
    crate::server::run(listener, app::router(state), &server_settings, shutdown_signal()).await?;
    let _ = stop_jobs.send(true);
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    let _ = views.await;
    pool.close().await;
    replicas.close().await;
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
