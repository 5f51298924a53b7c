//! The database layer: the connection pool, the embedded cluster, migrations and catalog
//! queries. Nothing here knows about HTTP.

pub mod adopt;
pub mod assembled;
pub mod backfill;
pub mod backup;
pub mod catalog;
pub mod collab;
pub mod competitions;
pub mod discovery;
pub mod distribution;
pub mod embedded;
pub mod files;
pub mod import;
pub mod index_switch;
pub mod likes;
pub mod login_failures;
pub mod maintenance;
pub mod messages;
pub mod migrate;
pub mod monitor;
pub mod partitions;
pub mod pool;
pub mod projects;
pub mod reachability;
pub mod replicas;
pub mod revert;
pub mod sessions;
pub mod usage;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::config::{redact_url, DatabaseSettings};
pub use pool::Pool;

/// An SQL identifier, quoted (`"a""b"` for `a"b`), for statements that name a catalog object.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether the relation `name` (as SQL spells it, quoted where it must be) exists.
pub async fn relation_exists(conn: &mut sqlx::PgConnection, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(name).fetch_one(conn).await
}

/// A project creator's public columns (never an e-mail), from the owner joined as `u`, for
/// the assembled statements. The checked literals spell the same three columns.
pub const CREATOR_COLUMNS: &str = r#"u."id" AS "ownerId", u."name" AS "ownerName", u."image" AS "ownerImage""#;

/// Builds the pool from the settings. Every connection gets `statement_timeout`,
/// `idle_in_transaction_session_timeout` and UTC as its time zone at startup, so no request
/// can hold a connection (or a lock) forever.
///
/// A connection given back while its query still runs (the request that ran it was dropped:
/// its client went away, or its deadline passed) is closed rather than kept waiting for the
/// query, and PostgreSQL, which checks every `cancel_check_ms` whether its client is still
/// there, then cancels the query and rolls back its transaction. So nobody's query outlives
/// its request, and it frees its pool slot at once.
pub async fn connect(settings: &DatabaseSettings, url: &SecretString) -> anyhow::Result<Pool> {
    let pool = lazy_pool(settings, url, settings.pool_timeout())?;
    let redacted = redact_url(url.expose_secret());
    tokio::time::timeout(settings.connect_timeout(), pool.acquire())
        .await
        .with_context(|| {
            format!("no connection to {redacted} within DB_CONNECT_TIMEOUT ({} s)", settings.connect_timeout_secs)
        })?
        .with_context(|| format!("cannot connect to {redacted}"))?;
    tracing::info!(database = %redacted, max_connections = settings.connection_limit, "database pool ready");
    Ok(pool)
}

/// A pool built as [`connect`] builds it, that opens its first connection when it is first
/// used, so a server that is down now does not stop the caller (a replica's pool).
pub fn lazy_pool(settings: &DatabaseSettings, url: &SecretString, acquire_timeout: Duration) -> anyhow::Result<Pool> {
    let options = connect_options(settings, url)?;
    let cancel_check = settings.cancel_check();
    let pool = PgPoolOptions::new()
        .max_connections(settings.connection_limit)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Some(settings.idle_timeout()))
        // Every release already waits for a round trip (the hook below, then sqlx's own
        // check), so a connection in the pool answered a moment ago; a ping on each acquire
        // too would make each statement four round trips. One the server dropped meanwhile
        // fails its query, as any connection lost mid-request does, and the pool replaces it.
        .test_before_acquire(false)
        .after_release(move |connection, _| {
            Box::pin(async move {
                // sqlx's own check on release waits for whatever the connection still owes;
                // `Ok(false)` closes it instead once that takes longer than a round trip should.
                match tokio::time::timeout(cancel_check, connection.ping()).await {
                    Ok(answered) => answered.map(|()| true),
                    Err(_) => {
                        tracing::debug!("a connection came back with its query still running: closed to cancel it");
                        Ok(false)
                    }
                }
            })
        })
        .connect_lazy_with(options);
    Ok(Pool::new(pool))
}

/// The options each pooled connection is opened with.
pub fn connect_options(settings: &DatabaseSettings, url: &SecretString) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .with_context(|| format!("not a valid PostgreSQL URL: {}", redact_url(url.expose_secret())))?
        .application_name("vibing2")
        .options([
            ("statement_timeout", settings.statement_timeout_ms.to_string()),
            ("idle_in_transaction_session_timeout", settings.idle_in_transaction_timeout_ms.to_string()),
            ("client_connection_check_interval", settings.cancel_check_ms.to_string()),
            ("TimeZone", "UTC".to_owned()),
        ])
        .log_slow_statements(tracing::log::LevelFilter::Warn, std::time::Duration::from_secs(1));
    Ok(options)
}
