//! Project views, counted in memory and written in batches.
//!
//! A view is a hot, anonymous write: counted one row lock at a time, a flood of views queues
//! on one project's row and bumps the discovery generation per request. Instead each
//! instance adds views to a map and writes the map every `views.flush_ms` in one set-based
//! UPDATE, then invalidates once for the whole batch. A flush that fails puts its counts
//! back, so no counted view is lost while the process lives; on shutdown `serve` flushes last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::RwLock;

use crate::cache::Cache;
use crate::db::projects;
use crate::service::invalidation::{self, Subjects, Write};

#[derive(Clone)]
pub struct ViewCounter(Arc<Inner>);

struct Inner {
    pool: PgPool,
    cache: Cache,
    pending: Mutex<HashMap<String, i32>>,
    /// Readers of (stored + pending) hold it shared; a flush holds it alone while it moves
    /// counts from memory to the table, so no reader sees a view twice or not at all.
    flushing: RwLock<()>,
}

impl ViewCounter {
    /// Starts the counter and its flusher, which stops when the last clone is dropped.
    pub fn start(pool: PgPool, cache: Cache, interval: Duration) -> Self {
        let inner = Arc::new(Inner { pool, cache, pending: Mutex::default(), flushing: RwLock::new(()) });
        tokio::spawn(flush_every(Arc::downgrade(&inner), interval));
        ViewCounter(inner)
    }

    /// Counts one view of `project_id` and returns its view count including it:
    /// `stored` reads the count in the table.
    pub async fn count<F, Fut>(&self, project_id: &str, stored: F) -> sqlx::Result<Option<i32>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = sqlx::Result<Option<i32>>>,
    {
        let _reading = self.0.flushing.read().await;
        let Some(stored) = stored().await? else { return Ok(None) };
        let mut pending = self.0.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let views = pending.entry(project_id.to_owned()).or_insert(0);
        *views += 1;
        Ok(Some(stored + *views))
    }

    /// Writes every counted view now; returns how many projects were written.
    pub async fn flush(&self) -> sqlx::Result<usize> {
        self.0.flush().await
    }
}

impl Inner {
    async fn flush(&self) -> sqlx::Result<usize> {
        let _alone = self.flushing.write().await;
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let (ids, views): (Vec<String>, Vec<i32>) = batch.iter().map(|(id, views)| (id.clone(), *views)).unzip();
        let written = match projects::add_views(&self.pool, &ids, &views).await {
            Ok(written) => written,
            Err(error) => {
                let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (id, views) in batch {
                    *pending.entry(id).or_insert(0) += views;
                }
                return Err(error);
            }
        };
        let project_ids: Vec<&str> = written.iter().map(|(id, _)| id.as_str()).collect();
        let mut members: Vec<String> = written.iter().flat_map(|(_, members)| members.iter().cloned()).collect();
        members.sort_unstable();
        members.dedup();
        let subjects = Subjects { projects: &project_ids, members: &members, ..Subjects::default() };
        invalidation::after(&self.cache, Write::FlushViews, subjects).await;
        Ok(written.len())
    }
}

async fn flush_every(counter: Weak<Inner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = counter.upgrade() else { return };
        if let Err(error) = inner.flush().await {
            tracing::warn!(%error, "counted views could not be written; kept for the next flush");
        }
    }
}
