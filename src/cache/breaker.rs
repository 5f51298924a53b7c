//! A circuit breaker for the shared tier: after a run of failures the tier is skipped for a
//! while, then a single probe decides whether to use it again.

use std::sync::Mutex;
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

pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    open_until: Instant,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        let inner = Inner { state: BreakerState::Closed, consecutive_failures: 0, open_until: Instant::now() };
        Self { threshold, cool_down, inner: Mutex::new(inner) }
    }

    /// Whether a call may go to the shared tier now. When the cool-down is over, exactly one
    /// caller is let through as the probe.
    pub fn allow(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open if Instant::now() >= inner.open_until => {
                inner.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open => false,
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
            inner.open_until = Instant::now() + self.cool_down;
        }
    }

    pub fn state(&self) -> BreakerState {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_once_after_the_cool_down() {
        let breaker = Breaker::new(3, Duration::from_millis(20));
        for _ in 0..2 {
            breaker.failure();
        }
        assert!(breaker.allow(), "still closed below the threshold");
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(breaker.allow(), "the probe");
        assert!(!breaker.allow(), "only one probe at a time");
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open, "a failed probe opens again");
        std::thread::sleep(Duration::from_millis(25));
        assert!(breaker.allow());
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow() && breaker.allow());
    }
}
