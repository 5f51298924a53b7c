//! The Prometheus exposition of `GET /metrics`: one recorder per process (the `metrics`
//! facade is global), histograms with fixed buckets in seconds, and upkeep every few seconds
//! so that samples never pile up between scrapes.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// From 0.5 ms to 10 s: a cached read is near the bottom, a request deadline past the top.
const SECONDS_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first use (from within the runtime, which runs its upkeep), and
/// returns its handle; None if another recorder was installed in this process first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(SECONDS_BUCKETS).expect("buckets are not empty");
            let handle =
                builder.install_recorder().map_err(|error| tracing::warn!(%error, "no metrics recorder")).ok()?;
            let upkeep = handle.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(UPKEEP).await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .as_ref()
}
