//! The pool's per-connection settings: statement_timeout and friends.

use axum::http::{Method, StatusCode};
use sqlx::{Connection, Executor};

use crate::support::{TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn every_pooled_connection_carries_the_configured_timeouts() {
    let app = TestApp::with_settings(&[
        ("database.statement_timeout_ms", "1234"),
        ("database.idle_in_transaction_timeout_ms", "4321"),
    ])
    .await;
    for _ in 0..3 {
        let (statement, idle_in_tx, zone): (String, String, String) = sqlx::query_as(
            "SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'),
                    current_setting('TimeZone')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!((statement.as_str(), idle_in_tx.as_str(), zone.as_str()), ("1234ms", "4321ms", "UTC"));
    }
}

#[tokio::test]
async fn a_query_past_statement_timeout_is_cancelled() {
    let app = TestApp::with_settings(&[("database.statement_timeout_ms", "200")]).await;
    let error = sqlx::query("SELECT pg_sleep(5)").execute(&app.pool).await.unwrap_err();
    let code = error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "cancelled by statement_timeout: {error}");
    assert!(matches!(vibing2::Error::from(error), vibing2::Error::DatabaseTimeout));
}

/// A request whose query waits past statement_timeout (here: on a lock another session holds)
/// is cancelled by PostgreSQL and answered 503 in the JSON error shape.
#[tokio::test]
async fn the_api_answers_a_timed_out_query_with_503() {
    let app = TestApp::with_settings(&[("database.statement_timeout_ms", "300"), ("admin_token", ADMIN_TOKEN)]).await;
    let mut blocker = app.db.connect().await;
    let mut tx = blocker.begin().await.unwrap();
    tx.execute(r#"LOCK TABLE "_vibing2_migrations" IN ACCESS EXCLUSIVE MODE"#).await.unwrap();

    let response = app.admin_get("/api/health/database?detailed=true").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{}", response.json);
    assert_eq!(response.error_code(), "database_timeout");
    // PostgreSQL cancelled the statement itself: no backend still waits on the lock.
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(waiting, 0, "the timed-out statement's backend is no longer waiting");
    tx.rollback().await.unwrap();

    let after = app.admin_get("/api/health/database?detailed=true").await;
    assert_eq!(after.status, StatusCode::OK, "the pool recovers once the lock is gone");
}

/// More slow requests than connections: the two that hold the connections wait on a lock,
/// the rest wait at most the pool timeout for one, then answer 503 with the JSON error and
/// `Retry-After`; liveness answers throughout, and the detailed health shows the waiters
/// and the timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_answers_the_excess_503_within_its_timeout_and_health_goes_on() {
    use std::time::{Duration, Instant};
    use vibing2::telemetry::pool;

    let app = TestApp::with_settings(&[
        ("admin_token", ADMIN_TOKEN),
        ("database.connection_limit", "2"),
        ("database.pool_timeout_secs", "1"),
        ("database.statement_timeout_ms", "10000"),
    ])
    .await;
    let owner = app.user("Crowd").await;
    let mut projects = Vec::new();
    for _ in 0..6 {
        projects.push(app.project(&owner, "PUBLIC").await);
    }
    let timeouts_before = pool::figures().acquire_timeouts;
    // Every project read waits on this lock while it holds its pooled connection.
    let mut blocker = app.db.connect().await;
    let mut lock = blocker.begin().await.unwrap();
    lock.execute(r#"LOCK TABLE "Project" IN ACCESS EXCLUSIVE MODE"#).await.unwrap();

    let started = Instant::now();
    let requests: Vec<_> = projects
        .iter()
        .map(|project| {
            let router = app.router.clone();
            let (uri, token) = (format!("/api/projects/{project}"), owner.token.clone());
            tokio::spawn(async move {
                let response = crate::support::call(&router, Method::GET, &uri, Some(&token), None).await;
                (response, started.elapsed())
            })
        })
        .collect();
    // While they wait, liveness answers, and no request has been answered yet.
    while pool::figures().waiters < 4 {
        assert!(started.elapsed() < Duration::from_secs(10), "the excess never queued for a connection");
        tokio::task::yield_now().await;
    }
    let live = app.get("/api/health").await;
    assert_eq!(live.status, StatusCode::OK, "liveness needs no connection");

    // The excess is answered while the lock is still held: at the pool timeout, not when
    // the lock goes. The two holding connections still wait on it.
    while requests.iter().filter(|request| request.is_finished()).count() < 4 {
        assert!(started.elapsed() < Duration::from_secs(10), "the excess was never answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let live = app.get("/api/health").await;
    assert_eq!(live.status, StatusCode::OK, "liveness answers with the pool exhausted");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(requests.iter().filter(|request| !request.is_finished()).count(), 2);
    lock.rollback().await.unwrap();
    let mut refused = Vec::new();
    let mut served = 0;
    for request in requests {
        let (response, after) = request.await.unwrap();
        match response.status {
            StatusCode::OK => served += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.error_code(), "database_timeout", "{}", response.json);
                assert!(response.headers.contains_key("retry-after"));
                assert!(after >= Duration::from_secs(1), "it waited the pool timeout first: {after:?}");
                refused.push(after);
            }
            other => panic!("unexpected {other}: {}", response.json),
        }
    }
    assert_eq!((served, refused.len()), (2, 4), "the two with connections are served once the lock goes");
    eprintln!("refused after {refused:?} (pool timeout 1 s)");

    let health = app.admin_get("/api/health/database?detailed=true").await;
    let timeouts = health.json["pool"]["acquireTimeouts"].as_u64().unwrap();
    assert!(timeouts >= timeouts_before + 4, "{}", health.json["pool"]);
}
