//! A latency distribution: an HDR histogram since start and one over a sliding window of the
//! last [`WINDOW`], so percentiles are true percentiles of the calls, never averages of
//! averages.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use utoipa::ToSchema;

/// The sliding window: [`SLOTS`] slots of one minute each, the oldest dropped as time moves.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
const SLOTS: usize = 5;
const SLOT: Duration = Duration::from_secs(60);
/// Longer calls are recorded as this long (no statement may run longer than a request).
const HIGHEST_MICROS: u64 = 120_000_000;
/// 1% resolution: a histogram is then about 14 KB, and there are six per name.
const SIGNIFICANT_FIGURES: u8 = 2;

#[derive(Clone)]
struct Tally {
    histogram: Histogram<u32>,
    errors: u64,
}

impl Tally {
    fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_FIGURES).expect("valid bounds");
        Tally { histogram, errors: 0 }
    }

    fn record(&mut self, micros: u64, failed: bool) {
        self.histogram.saturating_record(micros.max(1));
        self.errors += u64::from(failed);
    }

    fn reset(&mut self) {
        self.histogram.reset();
        self.errors = 0;
    }

    fn figures(&self) -> Figures {
        let histogram = &self.histogram;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let count = histogram.len();
        let at = |quantile: f64| if count == 0 { 0.0 } else { ms(histogram.value_at_quantile(quantile)) };
        Figures {
            count,
            errors: self.errors,
            mean_ms: if count == 0 { 0.0 } else { histogram.mean() / 1000.0 },
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: if count == 0 { 0.0 } else { ms(histogram.max()) },
        }
    }
}

/// Counts and percentiles of one distribution, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub count: u64,
    pub errors: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The figures over the last [`WINDOW`] and since the process started.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub window: Figures,
    pub since_start: Figures,
}

/// One distribution, since start and windowed.
pub struct Latency {
    since_start: Tally,
    /// Each slot with the index (minutes since `epoch`) of the minute it holds.
    slots: Vec<(u64, Tally)>,
    epoch: Instant,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Latency {
    pub fn new(epoch: Instant) -> Self {
        Latency { since_start: Tally::new(), slots: vec![(0, Tally::new()); SLOTS], epoch }
    }

    fn minute(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / SLOT.as_secs()
    }

    pub fn record(&mut self, elapsed: Duration, failed: bool, now: Instant) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.since_start.record(micros, failed);
        let minute = self.minute(now);
        let (held, tally) = &mut self.slots[(minute % SLOTS as u64) as usize];
        if *held != minute {
            tally.reset();
            *held = minute;
        }
        tally.record(micros, failed);
    }

    pub fn summary(&self, now: Instant) -> Summary {
        let minute = self.minute(now);
        let mut window = Tally::new();
        for (held, tally) in &self.slots {
            if *held + SLOTS as u64 > minute && *held <= minute && !tally.histogram.is_empty() {
                window.histogram.add(&tally.histogram).expect("histograms of the same bounds");
                window.errors += tally.errors;
            }
        }
        Summary { window: window.figures(), since_start: self.since_start.figures() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_of_the_calls_themselves() {
        let epoch = Instant::now();
        let mut latency = Latency::new(epoch);
        // 99 fast calls and one slow one: the p99 is fast, the max is slow.
        for _ in 0..99 {
            latency.record(Duration::from_millis(2), false, epoch);
        }
        latency.record(Duration::from_millis(900), true, epoch);
        let figures = latency.summary(epoch).since_start;
        assert_eq!((figures.count, figures.errors), (100, 1));
        assert!((1.9..=2.1).contains(&figures.p50_ms), "{figures:?}");
        assert!((1.9..=2.1).contains(&figures.p99_ms), "{figures:?}");
        assert!((890.0..=910.0).contains(&figures.max_ms), "{figures:?}");
    }

    #[test]
    fn the_window_forgets_calls_older_than_five_minutes() {
        let epoch = Instant::now();
        let mut latency = Latency::new(epoch);
        latency.record(Duration::from_millis(500), false, epoch);
        let later = epoch + Duration::from_secs(4 * 60);
        latency.record(Duration::from_millis(5), false, later);
        assert_eq!(latency.summary(later).window.count, 2);

        let past_window = epoch + Duration::from_secs(5 * 60 + 1);
        let summary = latency.summary(past_window);
        assert_eq!(summary.window.count, 1, "the first call left the window");
        assert!(summary.window.max_ms < 10.0);
        assert_eq!(summary.since_start.count, 2, "but not the totals");

        // A slot reused a window later starts empty.
        latency.record(Duration::from_millis(7), false, epoch + Duration::from_secs(10 * 60));
        assert_eq!(latency.summary(epoch + Duration::from_secs(10 * 60)).window.count, 1);
    }
}
