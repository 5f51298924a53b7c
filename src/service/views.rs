//! Project views, counted in memory and written in batches.
//!
//! A view is a hot, anonymous write: counted one row lock at a time, a flood of views queues
//! on one project's row and bumps the discovery generation per request. Instead each
//! instance counts views in its `AppState::views` buffer and writes them every
//! `views.flush_ms` in one set-based UPDATE, then invalidates once for the whole batch. A
//! flush that fails keeps its counts for the next; on shutdown `serve` flushes last.

use std::time::Duration;

use tokio::sync::watch;

use crate::db::projects;
use crate::error::{Error, Result};
use crate::service::invalidation::{self, Subjects, Write};
use crate::state::AppState;

/// Who viewed: a signed-in user, or an anonymous client by address.
pub enum Viewer<'a> {
    User(&'a str),
    Client(&'a str),
}

/// Counts a view, once per viewer and project within `views.viewer_window_secs`; returns the
/// project's view count. The count reaches the table, and the cached reads, with the next
/// flush.
pub async fn record(state: &AppState, project_id: &str, viewer: Viewer<'_>) -> Result<i32> {
    let viewer = match viewer {
        Viewer::User(id) => format!("user:{id}"),
        Viewer::Client(address) => format!("addr:{address}"),
    };
    let stored = projects::view_count(&state.pool, project_id);
    state.views.count(project_id, &viewer, stored).await?.ok_or(Error::NotFound("project"))
}

/// Writes every counted view now; returns how many projects were written.
pub async fn flush(state: &AppState) -> Result<usize> {
    let written = state
        .views
        .flush(|ids, views| async move {
            let written = projects::add_views(&state.pool, &ids, &views).await?;
            let project_ids: Vec<&str> = written.iter().map(|(id, _)| id.as_str()).collect();
            let mut members: Vec<String> = written.iter().flat_map(|(_, members)| members.iter().cloned()).collect();
            members.sort_unstable();
            members.dedup();
            let subjects = Subjects { projects: &project_ids, members: &members, ..Subjects::default() };
            invalidation::after(&state.cache, Write::FlushViews, subjects).await;
            Ok::<_, Error>(written.len())
        })
        .await?;
    Ok(written.unwrap_or(0))
}

/// Flushes every `views.flush_ms` until `shutdown` changes, then once more.
pub async fn flush_periodically(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(state.settings.views.flush_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        if let Err(error) = flush(&state).await {
            tracing::warn!(%error, "counted views could not be written; kept for the next flush");
        }
    }
    if let Err(error) = flush(&state).await {
        tracing::error!(%error, "the last counted views could not be written");
    }
}
