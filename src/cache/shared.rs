//! The shared tier: Redis, every call bounded by the Redis timeout and guarded by the
//! circuit breaker. Failures are counted and reported as misses; they never fail a request.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::Mutex;

use super::breaker::{Attempt, Breaker, BreakerState};

pub struct SharedTier {
    client: Client,
    timeout: Duration,
    connection: Mutex<Option<MultiplexedConnection>>,
    pub breaker: Breaker,
}

impl SharedTier {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout, connection: Mutex::new(None), breaker: Breaker::new(3, Duration::from_secs(2)) }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Runs one command. Err means the tier is unusable right now (skipped by the breaker,
    /// unreachable, slow or failing); callers treat that as a miss.
    pub async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, ()> {
        self.guarded(|mut conn| async move { command.query_async::<T>(&mut conn).await }).await
    }

    /// Runs a pipeline (e.g. an atomic INCR + EXPIRE) under the same guards.
    pub async fn run_pipeline<T: redis::FromRedisValue>(&self, pipeline: &redis::Pipeline) -> Result<T, ()> {
        self.guarded(|mut conn| async move { pipeline.query_async::<T>(&mut conn).await }).await
    }

    /// The breaker, the timeout and the error accounting around one round trip.
    async fn guarded<T, F, Fut>(&self, call: F) -> Result<T, ()>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let Some(attempt) = Attempt::start(&self.breaker) else {
            return Err(());
        };
        let outcome = tokio::time::timeout(self.timeout, async {
            let conn = self.connection().await?;
            let result = call(conn).await;
            if result.is_err() {
                // The next call opens a fresh connection.
                *self.connection.lock().await = None;
            }
            result
        })
        .await;
        match outcome {
            Ok(Ok(value)) => {
                attempt.succeeded();
                Ok(value)
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "shared cache tier error");
                attempt.failed();
                Err(())
            }
            Err(_) => {
                tracing::debug!("shared cache tier timed out");
                attempt.failed();
                *self.connection.lock().await = None;
                Err(())
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(self.timeout).set_response_timeout(self.timeout);
        let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}
