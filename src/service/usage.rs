//! Token usage: recording AI calls against the balance, the exact summary (cached), and the
//! recent calls.

use crate::cache::{Kind, Scope};
use crate::db::usage::{self, NewUsage, UsageGroupRow, UsageRow};
use crate::domain::page::{Keyset, Page};
use crate::domain::time::Position;
use crate::domain::GroupBy;
use crate::error::{Error, Result};
use crate::service::invalidation::{self, Subjects, Write};
use crate::service::reads;
use crate::state::AppState;

/// Records one call and charges it; returns the record and the balance after. A call the
/// balance does not cover is refused with 402 and records nothing.
pub async fn record(state: &AppState, new: &NewUsage<'_>) -> Result<(UsageRow, i32)> {
    let recorded = usage::record(&state.pool, new)
        .await?
        .ok_or_else(|| Error::PaymentRequired("the token balance does not cover this call".into()))?;
    invalidation::after(&state.cache, Write::RecordUsage, Subjects { user: Some(new.user_id), ..Subjects::default() })
        .await;
    Ok(recorded)
}

pub async fn summary(state: &AppState, user_id: &str, days: i32, group_by: GroupBy) -> Result<Vec<UsageGroupRow>> {
    let scope = Scope::Usage(user_id.to_owned());
    let suffix = format!("{days}:{group_by:?}");
    let load = || async { Ok(usage::summary(&state.pool, user_id, days, group_by).await?) };
    state.cache.get_or_load(Kind::UsageSummary, &scope, &suffix, load).await
}

/// The caller's recent calls, newest first.
pub async fn recent(state: &AppState, user_id: &str, keyset: Keyset<Position>) -> Result<Page<UsageRow>> {
    let read = |db| usage::recent(db, user_id, keyset.after.as_ref(), keyset.fetch());
    let rows = reads::run(state, Some(user_id), read).await?;
    Ok(keyset.page(rows, |record| (record.timestamp.0, record.id.clone())))
}
