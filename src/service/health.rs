//! The database health check and its details. Each query takes a pooled connection of its
//! own only while it runs: nothing holds one connection while it waits for another.

use std::time::{Duration, Instant};

use crate::cache::CacheStatus;
use crate::db::catalog::{self, TableStatsRow, ViewRefreshRow};
use crate::db::maintenance::{self, JobRunRow};
use crate::db::replicas::ReplicaStatus;
use crate::db::{index_switch, migrate};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::telemetry::pool::WaitFigures;

/// How the ping went: how long it took, and why it failed if it did.
pub struct Ping {
    pub elapsed: Duration,
    pub failure: Option<String>,
}

/// `SELECT 1` within the health-check timeout.
pub async fn ping(state: &AppState) -> Ping {
    let timeout = state.settings.database.health_check_timeout();
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, catalog::ping(&state.pool)).await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(Error::from(error).to_string()),
        Err(_) => Some(format!("the database did not answer within {} ms", timeout.as_millis())),
    };
    Ping { elapsed: started.elapsed(), failure }
}

/// The pool's occupancy now.
pub struct PoolUsage {
    pub size: u32,
    pub idle: usize,
    pub max: u32,
    /// The pool-size switch.
    pub limit: u32,
    pub waits: WaitFigures,
}

pub fn pool_usage(state: &AppState) -> PoolUsage {
    PoolUsage {
        size: state.pool.size(),
        idle: state.pool.num_idle(),
        max: state.settings.database.connection_limit,
        limit: state.pool.checkout_limit(),
        waits: crate::telemetry::pool::figures(),
    }
}

/// Each replica's state, lag and reads, in the order configured.
pub fn replicas(state: &AppState) -> Vec<ReplicaStatus> {
    state.replicas.statuses()
}

pub async fn cache_status(state: &AppState) -> CacheStatus {
    state.cache.status().await
}

pub struct Details {
    pub schema_version: Option<i64>,
    pub tables: Vec<TableStatsRow>,
    pub views: Vec<ViewRefreshRow>,
    pub jobs: Vec<JobRunRow>,
    /// The newest switch of every index ever switched (`vibing2 index disable|enable`).
    pub index_switches: Vec<index_switch::Switch>,
}

pub async fn details(state: &AppState) -> Result<Details> {
    let (schema_version, index_switches) = {
        let mut conn = state.pool.acquire().await?;
        (migrate::current_version(&mut conn).await?, index_switch::switches(&mut conn).await?)
    };
    Ok(Details {
        schema_version,
        tables: catalog::table_stats(&state.pool).await?,
        views: catalog::view_refreshes(&state.pool).await?,
        jobs: maintenance::job_runs(&state.pool).await?,
        index_switches,
    })
}
