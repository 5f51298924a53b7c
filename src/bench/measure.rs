//! Latency measurement: interleaved before/after runs into HDR histograms.

use std::time::Instant;

use futures_util::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles of one side of a scenario, in milliseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Samples over the seed's slow-query threshold (1 s).
    pub slow: u64,
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(histogram: &mut Histogram<u64>, started: Instant) {
    let micros = (started.elapsed().as_micros() as u64).max(1);
    histogram.saturating_record(micros);
}

pub fn summarize(histogram: &Histogram<u64>) -> Latency {
    let ms = |micros: u64| micros as f64 / 1000.0;
    Latency {
        samples: histogram.len(),
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p95_ms: ms(histogram.value_at_quantile(0.95)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        mean_ms: histogram.mean() / 1000.0,
        max_ms: ms(histogram.max()),
        slow: histogram.count_between(1_000_000, histogram.max().max(1_000_000)),
    }
}

pub type Step<'a> = Box<dyn FnMut(usize) -> BoxFuture<'a, anyhow::Result<()>> + 'a>;

/// Runs `before` and `after` alternately, `warmup` unrecorded rounds first, swapping which
/// goes first every round, so machine noise and caches hit both alike.
pub async fn interleaved(
    warmup: usize,
    iterations: usize,
    mut before: Step<'_>,
    mut after: Step<'_>,
) -> anyhow::Result<(Latency, Latency)> {
    let (mut before_histogram, mut after_histogram) = (new_histogram(), new_histogram());
    for round in 0..warmup + iterations {
        let recording = round >= warmup;
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let started = Instant::now();
            if side == 0 {
                before(round).await?;
                if recording {
                    record(&mut before_histogram, started);
                }
            } else {
                after(round).await?;
                if recording {
                    record(&mut after_histogram, started);
                }
            }
        }
    }
    Ok((summarize(&before_histogram), summarize(&after_histogram)))
}

/// Runs only `after` (a scenario the Phase-2 schema cannot express).
pub async fn alone(warmup: usize, iterations: usize, mut after: Step<'_>) -> anyhow::Result<Latency> {
    let mut histogram = new_histogram();
    for round in 0..warmup + iterations {
        let started = Instant::now();
        after(round).await?;
        if round >= warmup {
            record(&mut histogram, started);
        }
    }
    Ok(summarize(&histogram))
}

/// A process's peak RSS in KiB (`VmHWM`), None once it is gone.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples [`peak_rss_kb`] every 100 ms until `deadline`; the highest seen.
pub async fn peak_rss_until(pid: u32, deadline: std::time::Instant) -> Option<u64> {
    let mut peak = None;
    while std::time::Instant::now() < deadline {
        peak = peak.max(peak_rss_kb(pid));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    peak.max(peak_rss_kb(pid))
}
