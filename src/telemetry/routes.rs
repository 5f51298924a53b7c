//! Latency and status counts per HTTP route template (`/api/projects/{id}`, never the raw
//! path, so ids do not make a new series each).

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::latency::{Latency, Summary};

#[derive(Default)]
struct Route {
    latency: Latency,
    /// Answers by status code.
    statuses: BTreeMap<u16, u64>,
}

#[derive(Default)]
struct Routes {
    by_route: BTreeMap<String, Route>,
    /// Every request of every route in one distribution: the p95 the seed's KPI speaks of.
    all: Latency,
}

/// One lock per request for both.
static ROUTES: LazyLock<Mutex<Routes>> = LazyLock::new(Mutex::default);

/// The figures of one route.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSummary {
    pub route: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
}

/// Records one answered request of `route` (`METHOD template`).
pub fn record(route: String, status: u16, elapsed: Duration) {
    let now = Instant::now();
    let failed = status >= 500;
    {
        let mut routes = ROUTES.lock().expect("routes lock");
        routes.all.record(elapsed, failed, now);
        let entry = routes.by_route.entry(route.clone()).or_default();
        entry.latency.record(elapsed, failed, now);
        *entry.statuses.entry(status).or_default() += 1;
    }
    metrics::histogram!("vibing2_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!("vibing2_http_requests_total", "route" => route, "status" => status.to_string()).increment(1);
}

pub fn summaries() -> Vec<RouteSummary> {
    let now = Instant::now();
    let routes = ROUTES.lock().expect("routes lock");
    routes
        .by_route
        .iter()
        .map(|(route, entry)| RouteSummary {
            route: route.clone(),
            summary: entry.latency.summary(now),
            statuses: entry.statuses.clone(),
        })
        .collect()
}

/// The figures of all requests together.
pub fn overall() -> Summary {
    ROUTES.lock().expect("routes lock").all.summary(Instant::now())
}
