//! The HTTP/1.1 server loop: every connection has a header-read deadline (which also closes
//! an idle keep-alive connection), and shutdown drains in-flight requests within a deadline.
//!
//! `axum::serve` offers neither, so a slowloris connection could hold a task for ever and a
//! shutdown could wait for ever on a stuck request.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::add_extension::AddExtension;

use crate::config::ServerSettings;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and gives the
/// requests in flight `server.drain_timeout_secs` to finish; whatever is left is cut.
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_read_timeout_ms))
        // A connection's read buffer is bounded: past twice the service's own limits hyper
        // answers 431 itself; below that the limits answer with the JSON error
        // (`app::request_limits`).
        .max_buf_size((2 * (settings.max_uri_bytes + settings.max_header_bytes)).max(8 * 1024));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(AddExtension::new(router.clone(), ConnectInfo::<SocketAddr>(peer)));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let drain = Duration::from_secs(settings.drain_timeout_secs);
    tracing::info!(deadline_secs = drain.as_secs(), "no longer accepting; draining the requests in flight");
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => tracing::info!("every request in flight finished"),
        Err(_) => tracing::warn!("the drain deadline passed: the requests still in flight are cut"),
    }
    Ok(())
}
