//! Logging setup, and the latency figures the monitor shows: per query name
//! ([`queries`]), per HTTP route ([`routes`]) and for pooled connections ([`pool`]), kept in
//! HDR histograms ([`latency`]).

pub mod exposition;
pub mod latency;
pub mod pool;
pub mod queries;
pub mod routes;

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` filters, defaulting to `info` for this crate.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("vibing2=info,tower_http=info,sqlx=warn,warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
