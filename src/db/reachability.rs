//! Whether PostgreSQL can be reached, watched on a connection of its own.
//!
//! When the server is down, the pool does not say so: an acquire retries a refused connect
//! until the pool timeout (30 s), which is right for a busy pool and wrong for an outage. A
//! probe pings every `database.probe_interval_ms` on its own connection, reconnecting when the
//! ping fails; a failed reconnect marks the database down, and the next success marks it up.
//! The HTTP layer answers 503 at once while it is down (`app::database_gate`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;

pub struct Reachability {
    down: watch::Sender<bool>,
}

impl Reachability {
    /// Starts the probe (on the current Tokio runtime); it stops when the last handle drops.
    pub fn watch(options: PgConnectOptions, interval: Duration) -> Arc<Self> {
        let reachability = Arc::new(Reachability { down: watch::Sender::new(false) });
        tokio::spawn(probe(Arc::downgrade(&reachability), options, interval));
        reachability
    }

    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// Resolves once the database is marked down (at once if it is).
    pub async fn went_down(&self) {
        let mut down = self.down.subscribe();
        // The sender lives as long as `self`, so the wait ends only by the value.
        let _ = down.wait_for(|down| *down).await;
    }
}

async fn probe(reachability: Weak<Reachability>, options: PgConnectOptions, interval: Duration) {
    let mut connection: Option<PgConnection> = None;
    loop {
        let pinged = match connection.as_mut() {
            Some(connection) => matches!(tokio::time::timeout(interval, connection.ping()).await, Ok(Ok(()))),
            None => false,
        };
        if !pinged {
            connection = match tokio::time::timeout(interval, options.connect()).await {
                Ok(Ok(connection)) => Some(connection),
                _ => None,
            };
        }
        let Some(reachability) = reachability.upgrade() else { return };
        let down = connection.is_none();
        let changed = reachability.down.send_if_modified(|was_down| std::mem::replace(was_down, down) != down);
        match (changed, down) {
            (true, true) => tracing::error!("PostgreSQL is unreachable: requests answer 503 until it is back"),
            (true, false) => tracing::info!("PostgreSQL is reachable again"),
            _ => {}
        }
        drop(reachability);
        tokio::time::sleep(interval).await;
    }
}
