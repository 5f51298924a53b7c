//! The service's connection pool: sqlx's pool, with every acquisition counted and timed
//! (`telemetry::pool`), whether a caller acquires a connection, begins a transaction or runs
//! a statement on the pool directly. It is an executor like `&PgPool`, so `db` functions take
//! it as `impl PgExecutor`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgPool, Postgres, Transaction};

use crate::telemetry::pool::acquisition;

#[derive(Debug, Clone)]
pub struct Pool(PgPool);

impl Pool {
    pub fn new(pool: PgPool) -> Self {
        Pool(pool)
    }

    /// A connection of its own, for several statements in a row.
    pub async fn acquire(&self) -> sqlx::Result<PoolConnection<Postgres>> {
        acquisition(self.0.acquire()).await
    }

    /// A transaction on a connection of its own.
    pub async fn begin(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        let connection = self.acquire().await?;
        // What `PgPool::begin` does, after the counted acquisition.
        Transaction::begin(connection, None).await
    }

    /// Open connections, busy or idle.
    pub fn size(&self) -> u32 {
        self.0.size()
    }

    pub fn num_idle(&self) -> usize {
        self.0.num_idle()
    }

    pub fn connect_options(&self) -> Arc<PgConnectOptions> {
        self.0.connect_options()
    }

    /// Waits for the connections in use to come back, then closes them all.
    pub async fn close(&self) {
        self.0.close().await;
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
