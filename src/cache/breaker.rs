//! A circuit breaker for the shared tier: after a run of failures the tier is skipped for a
//! while, then a single probe decides whether to use it again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// Where the breaker reads the time: the system's clock, or one a test steps.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    clock: Clock,
    inner: Mutex<Inner>,
}

struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    open_until: Instant,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self::with_clock(threshold, cool_down, Arc::new(Instant::now))
    }

    pub fn with_clock(threshold: u32, cool_down: Duration, clock: Clock) -> Self {
        let inner = Inner { state: BreakerState::Closed, consecutive_failures: 0, open_until: clock() };
        Self { threshold, cool_down, clock, inner: Mutex::new(inner) }
    }

    /// Whether a call may go to the shared tier now. When the cool-down is over, exactly one
    /// caller is let through as the probe.
    pub fn allow(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open if (self.clock)() >= inner.open_until => {
                inner.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open => false,
        }
    }

    /// A call that was let through and then dropped before it finished (its request was
    /// cancelled). If it was the probe, the breaker opens again, so the next cool-down lets
    /// another probe through; left half-open, the tier would never be tried again.
    pub fn abandoned(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if inner.state == BreakerState::HalfOpen {
            inner.state = BreakerState::Open;
            inner.open_until = (self.clock)() + self.cool_down;
        }
    }

    pub fn success(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.state = BreakerState::Closed;
        inner.consecutive_failures = 0;
    }

    pub fn failure(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.consecutive_failures += 1;
        if inner.state == BreakerState::HalfOpen || inner.consecutive_failures >= self.threshold {
            inner.state = BreakerState::Open;
            inner.open_until = (self.clock)() + self.cool_down;
        }
    }

    pub fn state(&self) -> BreakerState {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).state
    }
}

/// Records the outcome of one call let through the breaker, even if the call's future is
/// dropped half-way: whatever is not recorded as a success or failure counts as abandoned.
pub struct Attempt<'a> {
    breaker: &'a Breaker,
    settled: bool,
}

impl<'a> Attempt<'a> {
    /// None when the breaker does not let the call through.
    pub fn start(breaker: &'a Breaker) -> Option<Self> {
        breaker.allow().then_some(Attempt { breaker, settled: false })
    }

    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.success();
    }

    pub fn failed(mut self) {
        self.settled = true;
        self.breaker.failure();
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.abandoned();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(2);

    /// A clock that moves only when the test steps it.
    struct SteppedClock(Arc<Mutex<Instant>>);

    impl SteppedClock {
        fn new() -> Self {
            SteppedClock(Arc::new(Mutex::new(Instant::now())))
        }

        fn breaker(&self, threshold: u32) -> Breaker {
            let now = self.0.clone();
            Breaker::with_clock(threshold, COOL_DOWN, Arc::new(move || *now.lock().unwrap()))
        }

        fn step(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    #[test]
    fn a_cancelled_probe_lets_the_next_cool_down_probe_again() {
        let clock = SteppedClock::new();
        let breaker = clock.breaker(1);
        breaker.failure();
        clock.step(COOL_DOWN);
        // The probe's request is cancelled while it waits on Redis: polled once, then dropped.
        {
            let mut probe = pin!(async {
                let _attempt = Attempt::start(&breaker).expect("the probe is let through");
                std::future::pending::<()>().await;
            });
            assert!(probe.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        }
        assert_eq!(breaker.state(), BreakerState::Open, "not stuck half-open");
        assert!(!breaker.allow(), "a new cool-down began when the probe was dropped");
        clock.step(COOL_DOWN);
        let next = Attempt::start(&breaker).expect("another probe after the cool-down");
        next.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn opens_after_the_threshold_and_probes_once_after_the_cool_down() {
        let clock = SteppedClock::new();
        let breaker = clock.breaker(3);
        for _ in 0..2 {
            breaker.failure();
        }
        assert!(breaker.allow(), "still closed below the threshold");
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        clock.step(COOL_DOWN - Duration::from_millis(1));
        assert!(!breaker.allow(), "open until the cool-down is over");
        clock.step(Duration::from_millis(1));
        assert!(breaker.allow(), "the probe");
        assert!(!breaker.allow(), "only one probe at a time");
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open, "a failed probe opens again");
        clock.step(COOL_DOWN);
        assert!(breaker.allow());
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow() && breaker.allow());
    }
}
