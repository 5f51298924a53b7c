//! Logging setup: `RUST_LOG` filters, defaulting to `info` for this crate.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("vibing2=info,tower_http=info,sqlx=warn,warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
