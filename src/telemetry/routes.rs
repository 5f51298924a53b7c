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

static ROUTES: LazyLock<Mutex<BTreeMap<String, Route>>> = LazyLock::new(Mutex::default);
/// Every request of every route in one distribution: the p95 the seed's KPI speaks of.
static ALL_ROUTES: LazyLock<Mutex<Latency>> = LazyLock::new(Mutex::default);

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
pub fn record(route: &str, status: u16, elapsed: Duration) {
    let mut routes = ROUTES.lock().expect("routes lock");
    if !routes.contains_key(route) {
        routes.insert(route.to_owned(), Route::default());
    }
    let entry = routes.get_mut(route).expect("inserted above");
    entry.latency.record(elapsed, status >= 500, Instant::now());
    *entry.statuses.entry(status).or_default() += 1;
    drop(routes);
    ALL_ROUTES.lock().expect("all-routes lock").record(elapsed, status >= 500, Instant::now());
    let route = route.to_owned();
    metrics::histogram!("vibing2_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!("vibing2_http_requests_total", "route" => route, "status" => status.to_string()).increment(1);
}

pub fn summaries() -> Vec<RouteSummary> {
    let now = Instant::now();
    let routes = ROUTES.lock().expect("routes lock");
    routes
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
    ALL_ROUTES.lock().expect("all-routes lock").summary(Instant::now())
}
