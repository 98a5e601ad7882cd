//! Logging. `RUST_LOG` filters (default: info for us, warn for libraries).
//! Nothing here records request headers or bodies, so cookies, tokens and
//! passwords never reach the log.

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,portcullis=info,sqlx=warn,tower_http=warn"));
    let _ = fmt().with_env_filter(filter).with_target(true).try_init();
}
