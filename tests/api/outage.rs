//! PostgreSQL unreachable: a fast 503 with `Retry-After`, kept apart from a busy pool's wait,
//! and recovery without a restart. The outage is real at the network level: the service
//! reaches PostgreSQL through a TCP relay of the test's own, which the test cuts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, Method, StatusCode};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use vibing2::app;
use vibing2::state::AppState;

use crate::support::{call, TestDb, TestResponse};

/// Forwards a local port to PostgreSQL until cut; cutting closes every relayed connection.
struct Relay {
    port: u16,
    upstream: (String, u16),
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: (String, u16)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay { port, upstream, tasks: Arc::default() };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relayed = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(relayed);
            }
        });
        self.tasks.lock().unwrap().push(accepting);
    }

    /// PostgreSQL "goes down": the port refuses connections and open ones are closed.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// PostgreSQL is back, on the same port.
    async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(error) => assert!(Instant::now() < deadline, "cannot listen again: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.serve(listener);
    }
}

/// A request that must answer well within the pool's 30 s acquire timeout.
async fn promptly(response: impl std::future::Future<Output = TestResponse>) -> TestResponse {
    tokio::time::timeout(Duration::from_secs(10), response).await.expect("answered, not left waiting on the pool")
}

#[tokio::test]
async fn an_unreachable_database_is_a_fast_503_apart_from_a_busy_pool_and_recovers() {
    let db = TestDb::migrated().await;
    let upstream: PgConnectOptions = db.url.parse().unwrap();
    let (host, port) = (upstream.get_host().to_owned(), upstream.get_port());
    let relay = Relay::start((host.clone(), port)).await;
    let relayed_url = db.url.replacen(&format!("{host}:{port}"), &format!("127.0.0.1:{}", relay.port), 1);
    assert_ne!(relayed_url, db.url, "the test database URL names its host and port");

    // One connection, the default 30 s acquire timeout.
    let settings = db.settings(&[("database.url", &relayed_url), ("database.probe_interval_ms", "100")]);
    let options: PgConnectOptions = relayed_url.parse().unwrap();
    let pool = vibing2::db::Pool::new(
        PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(30)).connect_lazy_with(options),
    );
    let state = AppState::new(pool.clone(), settings).unwrap();
    let router = app::router(state);
    // Each read asks for a page size of its own, so none is answered from the cache.
    let discover = |limit: u32| {
        let router = router.clone();
        async move { call(&router, Method::GET, &format!("/api/discover?limit={limit}"), None, None).await }
    };
    assert_eq!(promptly(discover(1)).await.status, StatusCode::OK);

    // The pool is busy (its one connection is held), and a request waits for it: a busy pool
    // is waited on, as the seed's 30 s pool timeout says.
    let held = pool.acquire().await.unwrap();
    let waiting = tokio::spawn({
        let router = router.clone();
        async move { call(&router, Method::GET, "/api/discover?limit=2", None, None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a busy pool is waited on, not refused");

    // Then PostgreSQL goes away: the waiting request is answered at once, and so is the next.
    relay.cut();
    let answered = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("not left waiting").unwrap();
    assert_eq!(answered.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answered.json);
    assert_eq!(answered.error_code(), "database_unavailable");
    assert_eq!(answered.headers[header::RETRY_AFTER], "1");
    let next = promptly(discover(3)).await;
    assert_eq!((next.status, next.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"));
    let liveness = promptly(call(&router, Method::GET, "/api/health", None, None)).await;
    assert_eq!(liveness.status, StatusCode::OK, "liveness does not need the database");
    drop(held);

    // PostgreSQL is back: the service recovers by itself.
    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    for limit in 4.. {
        let response = promptly(discover(limit)).await;
        if response.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {}", response.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
