//! Fixed-window counters over both tiers, for rate limits: each request is counted here at
//! once and added to Redis in batches, so that every instance decides on (nearly) the same
//! total. A counter close to its limit is added on every request, so a strict limit holds
//! exactly across instances; a generous one is added every tenth of its limit, or every
//! second. With Redis down, each instance counts alone. Counters are kept for a bounded
//! number of keys, whatever the number of distinct clients.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A counter's state in this process, for one window.
#[derive(Debug)]
pub(super) struct Window {
    /// Which window (seconds since the epoch over the window's length).
    index: u64,
    /// Counted here and not yet added to Redis.
    unsynced: u64,
    /// The total Redis last reported, this process's added part included.
    global: u64,
    synced_at: Instant,
}

pub(super) type Windows = moka::sync::Cache<String, Arc<Mutex<Window>>>;

pub(super) fn windows(capacity: u64, longest: Duration) -> Windows {
    moka::sync::Cache::builder().max_capacity(capacity).time_to_idle(longest * 2).build()
}

/// What a counter says about one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit until the window ends, this many seconds from now.
    Limited {
        retry_after_secs: u64,
    },
}

/// The window a moment falls in, and the seconds left in it.
fn current(length: Duration) -> (u64, u64) {
    let length = length.as_secs().max(1);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    (now / length, length - now % length)
}

/// Counts one request under `key`, and whether the batch should go to Redis now: the
/// unsynced count to add, if so.
pub(super) fn count(window: &Mutex<Window>, length: Duration, limit: u64, shared: bool) -> (u64, Option<u64>) {
    let (index, _) = current(length);
    let mut state = window.lock().expect("a window counter");
    if state.index != index {
        *state = Window { index, unsynced: 0, global: 0, synced_at: Instant::now() };
    }
    state.unsynced += 1;
    let batch = (limit / 10).max(1);
    let due = state.unsynced >= batch
        || state.synced_at.elapsed() >= Duration::from_secs(1)
        || state.global + state.unsynced + batch > limit;
    (index, (shared && due).then_some(state.unsynced))
}

/// Takes on what Redis counted after `added` of this process's requests went to it.
pub(super) fn synced(window: &Mutex<Window>, index: u64, added: u64, total: u64) {
    let mut state = window.lock().expect("a window counter");
    if state.index == index {
        state.unsynced = state.unsynced.saturating_sub(added);
        state.global = state.global.max(total);
        state.synced_at = Instant::now();
    }
}

pub(super) fn decide(window: &Mutex<Window>, length: Duration, limit: u64) -> Admission {
    let (index, retry_after_secs) = current(length);
    let state = window.lock().expect("a window counter");
    let total = if state.index == index { state.global + state.unsynced } else { 0 };
    if total > limit {
        Admission::Limited { retry_after_secs }
    } else {
        Admission::Allowed
    }
}

/// A counter that has counted nothing yet (its first count starts its window).
pub(super) fn fresh() -> Arc<Mutex<Window>> {
    Arc::new(Mutex::new(Window { index: 0, unsynced: 0, global: 0, synced_at: Instant::now() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_and_refuses_the_next_until_it_ends() {
        let length = Duration::from_secs(3600);
        let window = fresh();
        for _ in 0..5 {
            count(&window, length, 5, false);
            assert_eq!(decide(&window, length, 5), Admission::Allowed);
        }
        count(&window, length, 5, false);
        let Admission::Limited { retry_after_secs } = decide(&window, length, 5) else { panic!("the sixth is over") };
        assert!((1..=3600).contains(&retry_after_secs));
    }

    #[test]
    fn a_strict_limit_goes_to_redis_on_every_request_and_a_generous_one_in_batches() {
        let length = Duration::from_secs(3600);
        let strict = fresh();
        assert_eq!(count(&strict, length, 5, true).1, Some(1));
        let generous = fresh();
        let batches: Vec<Option<u64>> = (0..10).map(|_| count(&generous, length, 100, true).1).collect();
        assert_eq!(batches.iter().filter(|batch| batch.is_some()).count(), 1, "{batches:?}");
        assert_eq!(batches[9], Some(10));
        assert_eq!(count(&fresh(), length, 5, false).1, None, "without Redis nothing is sent");
    }

    #[test]
    fn what_other_instances_counted_counts_here() {
        let length = Duration::from_secs(3600);
        let window = fresh();
        let (index, batch) = count(&window, length, 5, true);
        // Redis holds 5: four from elsewhere, and this one.
        synced(&window, index, batch.unwrap(), 5);
        assert_eq!(decide(&window, length, 5), Admission::Allowed);
        count(&window, length, 5, true);
        assert!(matches!(decide(&window, length, 5), Admission::Limited { .. }));
    }

    #[test]
    fn the_counters_are_bounded_whatever_the_number_of_clients() {
        let windows = windows(100, Duration::from_secs(60));
        for client in 0..10_000 {
            windows.insert(format!("client-{client}"), fresh());
        }
        windows.run_pending_tasks();
        assert!(windows.entry_count() <= 100, "{}", windows.entry_count());
    }
}
