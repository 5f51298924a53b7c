//! Where a read runs: the one place that chooses between the primary and the replicas.
//!
//! - Writes and transactions use the primary (`state.pool`), always.
//! - A read that fills the shared cache uses the primary too: an entry loaded from a replica
//!   that has not replayed a write yet would be stored under the generation that write's
//!   invalidation made current, and served stale until its TTL. Cache loaders therefore keep
//!   `state.pool`; only reads whose result goes to the caller alone come through [`run`].
//! - Such a read goes to the next replica in rotation, round-robin (`db::replicas`), unless
//!   the caller wrote within `database.read_your_writes_ms` ([`wrote`]), or no replica is in
//!   rotation: then to the primary.
//! - A read that fails on a replica because the replica is gone, cannot serve it in time or
//!   cancelled it for a recovery conflict, runs again on the primary; nobody's request fails
//!   for a replica.
//!
//! Read-your-writes across instances: after a request by a signed-in user that may write
//! (any method but GET, HEAD, OPTIONS), the service marks that user in Redis for the window
//! before the response leaves ([`wrote`], called by `api::extract::read_your_writes`), so a
//! read that follows the response on any instance finds the mark. Each instance also
//! remembers its own writers; while Redis is unreachable only that memory counts, so a read on
//! another instance may then miss the user's write until the replica replays it (within the
//! lag limit).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use crate::db::replicas::Replica;
use crate::db::Pool;
use crate::state::AppState;

/// Runs `read` on the pool chosen for `caller` (None: anonymous), and once more on the
/// primary if a replica failed it.
pub async fn run<'a, T, Fut>(
    state: &'a AppState,
    caller: Option<&str>,
    read: impl Fn(&'a Pool) -> Fut,
) -> sqlx::Result<T>
where
    Fut: Future<Output = sqlx::Result<T>>,
{
    let Some(replica) = replica_for(state, caller).await else {
        return read(&state.pool).await;
    };
    replica.routed();
    match read(&replica.pool).await {
        Err(error) if replica_cannot_serve(&error) => {
            tracing::debug!(%error, "a read failed on a replica: running it on the primary");
            replica.fell_back(is_gone(&error).then_some(&error));
            read(&state.pool).await
        }
        outcome => outcome,
    }
}

/// The replica a read of `caller` goes to, if any.
async fn replica_for<'a>(state: &'a AppState, caller: Option<&str>) -> Option<&'a Replica> {
    let replica = state.replicas.pick()?;
    if let Some(user) = caller {
        if wrote_recently(state, user).await {
            return None;
        }
    }
    Some(replica)
}

/// Marks `user` as having just written, here and (when Redis takes it) on every instance, for
/// `database.read_your_writes_ms`. Called only with replicas configured
/// (`api::extract::read_your_writes`): without them nothing needs marking.
pub async fn wrote(state: &AppState, user: &str) {
    state.recent_writers.insert(user.to_owned(), ());
    if !state.cache.set_mark(&mark(user), state.settings.database.read_your_writes()).await {
        tracing::debug!("read-your-writes mark not shared (Redis absent or unreachable): this instance only");
    }
}

async fn wrote_recently(state: &AppState, user: &str) -> bool {
    state.recent_writers.contains_key(user) || state.cache.is_marked(&mark(user)).await == Some(true)
}

fn mark(user: &str) -> String {
    format!("wrote:{user}")
}

/// A connection-level failure, an overloaded or restarting server, or a query cancelled for
/// a recovery conflict: the read may succeed on the primary.
fn replica_cannot_serve(error: &sqlx::Error) -> bool {
    let conflict = matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"));
    conflict || matches!(error, sqlx::Error::PoolTimedOut) || is_gone(error)
}

/// The replica is unreachable or shutting down (SQLSTATE 57P01-57P03).
fn is_gone(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("57P")),
        _ => false,
    }
}

/// Who a request that may write was made by, filled in by the authentication extractor and
/// read by `api::extract::read_your_writes` once the response is ready.
#[derive(Debug, Clone, Default)]
pub struct Writer(Arc<OnceLock<String>>);

impl Writer {
    pub fn record(&self, user: &str) {
        let _ = self.0.set(user.to_owned());
    }

    pub fn user(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}
