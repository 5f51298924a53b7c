//! The service's connection pool: sqlx's pool, with every acquisition counted and timed
//! (`telemetry::pool`), whether a caller acquires a connection, begins a transaction or runs
//! a statement on the pool directly. It is an executor like `&PgPool`, so `db` functions take
//! it as `impl PgExecutor`.
//!
//! A gate in front of sqlx's pool bounds the connections checked out at once: sqlx's own
//! maximum is fixed when the pool is built, the gate's size is a runtime switch
//! (`switches`). Shrinking it takes effect as checked-out connections come back; nobody's
//! connection is taken away.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::pool::acquisition;

#[derive(Debug, Clone)]
pub struct Pool {
    pool: PgPool,
    gate: Arc<Gate>,
}

impl Pool {
    /// The gate starts at sqlx's maximum, which it can never exceed.
    pub fn new(pool: PgPool) -> Self {
        let max = pool.options().get_max_connections();
        Pool { pool, gate: Arc::new(Gate::new(max)) }
    }

    /// A connection of its own, for several statements in a row. Waiting at the gate and
    /// in sqlx's pool together take at most the pool's acquire timeout.
    pub async fn acquire(&self) -> sqlx::Result<Checkout> {
        let timeout = self.pool.options().get_acquire_timeout();
        acquisition(async {
            let checkout = async {
                let permit = self.gate.enter().await;
                Ok(Checkout { connection: self.pool.acquire().await?, _permit: permit })
            };
            tokio::time::timeout(timeout, checkout).await.unwrap_or(Err(sqlx::Error::PoolTimedOut))
        })
        .await
    }

    /// A transaction on a connection of its own.
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        let Checkout { connection, _permit } = self.acquire().await?;
        // What `PgPool::begin` does, after the counted acquisition.
        Ok(Tx { transaction: Transaction::begin(connection, None).await?, _permit })
    }

    /// Open connections, busy or idle.
    pub fn size(&self) -> u32 {
        self.pool.size()
    }

    pub fn num_idle(&self) -> usize {
        self.pool.num_idle()
    }

    /// sqlx's maximum, fixed when the pool was built.
    pub fn max_connections(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// How many connections may be checked out at once now (the pool-size switch).
    pub fn checkout_limit(&self) -> u32 {
        self.gate.limit.load(Ordering::Relaxed)
    }

    /// Connections checked out through the gate now.
    pub fn checked_out(&self) -> u32 {
        self.checkout_limit().saturating_sub(self.gate.open_permits())
    }

    /// Lets at most `limit` connections (1 to [`Pool::max_connections`]) be checked out at
    /// once from now on; connections checked out past a smaller limit are not taken back,
    /// the limit holds as they return. Idle connections past it close at the idle timeout.
    pub fn set_checkout_limit(&self, limit: u32) {
        self.gate.resize(limit.clamp(1, self.max_connections()));
    }

    pub fn connect_options(&self) -> Arc<PgConnectOptions> {
        self.pool.connect_options()
    }

    /// Waits for the connections in use to come back, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A counting gate whose size can change: a semaphore, and the permits it still owes after
/// a shrink that found them checked out (each is forgotten when it comes back).
#[derive(Debug)]
struct Gate {
    permits: Arc<Semaphore>,
    limit: AtomicU32,
    owed: Arc<AtomicU32>,
    resizing: Mutex<()>,
}

impl Gate {
    fn new(limit: u32) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(limit as usize)),
            limit: AtomicU32::new(limit),
            owed: Arc::default(),
            resizing: Mutex::new(()),
        }
    }

    async fn enter(&self) -> Permit {
        // The semaphore is never closed.
        let permit = self.permits.clone().acquire_owned().await.expect("the gate is never closed");
        Permit { permit: Some(permit), owed: self.owed.clone() }
    }

    fn open_permits(&self) -> u32 {
        (self.permits.available_permits() as u32).saturating_sub(self.owed.load(Ordering::Relaxed))
    }

    fn resize(&self, limit: u32) {
        let _alone = self.resizing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let old = self.limit.swap(limit, Ordering::Relaxed);
        if limit > old {
            let grow = limit - old;
            // What a shrink still owes is cancelled first: those connections will come back.
            let mut cancelled = 0;
            let _ = self.owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
                cancelled = owed.min(grow);
                Some(owed - cancelled)
            });
            self.permits.add_permits((grow - cancelled) as usize);
        } else if limit < old {
            let shrink = old - limit;
            let forgotten = self.permits.forget_permits(shrink as usize) as u32;
            self.owed.fetch_add(shrink - forgotten, Ordering::Relaxed);
        }
    }
}

/// A gate permit: given back when its connection goes back, or forgotten if a shrink still
/// owes permits.
#[derive(Debug)]
struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    owed: Arc<AtomicU32>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let pay = self.owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| owed.checked_sub(1)).is_ok();
        if let (true, Some(permit)) = (pay, self.permit.take()) {
            permit.forget();
        }
    }
}

/// A pooled connection checked out through the gate; it derefs to the connection.
pub struct Checkout {
    connection: PoolConnection<Postgres>,
    _permit: Permit,
}

impl Checkout {
    /// Takes the connection out of the pool (and out of the gate's count): the caller closes it.
    pub fn detach(self) -> PgConnection {
        self.connection.detach()
    }
}

impl Deref for Checkout {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.connection
    }
}

impl DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.connection
    }
}

/// A transaction on a connection checked out through the gate; it derefs to its connection.
pub struct Tx {
    transaction: Transaction<'static, Postgres>,
    _permit: Permit,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout").field("connection", &self.connection).finish_non_exhaustive()
    }
}

impl Tx {
    pub async fn commit(self) -> sqlx::Result<()> {
        self.transaction.commit().await
    }

    pub async fn rollback(self) -> sqlx::Result<()> {
        self.transaction.rollback().await
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.transaction
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.transaction
    }
}

impl<'p> Executor<'p> for &'_ Pool {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Either<PgQueryResult, PgRow>>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let pool = self.clone();
        Box::pin(async_stream::try_stream! {
            let mut connection = pool.acquire().await?;
            let mut results = connection.fetch_many(query);
            while let Some(result) = results.try_next().await? {
                yield result;
            }
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<PgRow>>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.fetch_optional(query).await })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<PgStatement<'q>>> {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.prepare_with(sql, parameters).await })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<Postgres>>> {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.describe(sql).await })
    }
}
