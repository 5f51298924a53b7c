use axum::http::{header, Method, StatusCode};
use sqlx::postgres::PgPoolOptions;
use vibing2::app;
use vibing2::config::Settings;
use vibing2::state::AppState;

use crate::support::{send, timed, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn liveness_reports_version_and_uptime_without_touching_the_database() {
    let app = TestApp::new().await;
    app.pool.close().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json["status"], "ok");
    assert_eq!(response.json["version"], env!("CARGO_PKG_VERSION"));
    assert!(response.json["uptimeSeconds"].is_u64());
}

#[tokio::test]
async fn database_health_reports_pool_and_cache_and_is_never_cached() {
    let app = TestApp::with_settings(&[("database.connection_limit", "7")]).await;
    let (response, call_ms) = timed(app.get("/api/health/database")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    let body = &response.json;
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["database"]["status"], "up");
    let ping_ms = body["database"]["responseTimeMs"].as_f64().expect("responseTimeMs is a number");
    assert!((0.0..=call_ms).contains(&ping_ms), "the ping took {ping_ms} ms of a {call_ms} ms call");
    assert_eq!(body["pool"]["max"], 7);
    let size = body["pool"]["size"].as_u64().unwrap();
    let idle = body["pool"]["idle"].as_u64().unwrap();
    assert_eq!(body["pool"]["inUse"].as_u64().unwrap(), size - idle);
    assert_eq!(body["cache"]["mode"], "local-only", "no REDIS_URL in this test");
    assert!(body["cache"]["breaker"].is_null());
    assert!(body["cache"]["kinds"].as_array().unwrap().iter().any(|kind| kind["kind"] == "project"));
    assert!(body.get("details").is_none(), "details only when asked for");
}

#[tokio::test]
async fn detailed_health_adds_schema_version_tables_and_view_refreshes() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    sqlx::query("ANALYZE").execute(&app.pool).await.unwrap();
    let response = app.admin_get("/api/health/database?detailed=true").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json);
    let details = &response.json["details"];
    assert_eq!(details["schemaVersion"], vibing2::db::migrate::latest_version());
    assert_eq!(details["latestSchemaVersion"], vibing2::db::migrate::latest_version());
    let tables = details["tables"].as_array().unwrap();
    let user = tables.iter().find(|t| t["name"] == "User").expect("User table listed");
    assert_eq!(user["kind"], "table");
    assert!(user["totalBytes"].as_i64().unwrap() > 0);
    let views: Vec<&str> =
        details["materializedViews"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(views, ["project_stats", "user_token_summary"]);
    for view in details["materializedViews"].as_array().unwrap() {
        assert_eq!(view["populated"], true);
        assert!(view["lastRefreshAt"].is_string());
    }
}

#[tokio::test]
async fn database_down_answers_503_with_the_reason() {
    // A port nothing listens on: every acquire fails quickly.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{closed_port}/nothing");
    let settings =
        Settings::from_pairs([("database.url", url.clone()), ("database.pool_timeout_secs", "1".into())]).unwrap();
    let pool = vibing2::db::Pool::new(
        PgPoolOptions::new().acquire_timeout(std::time::Duration::from_secs(1)).connect_lazy(&url).unwrap(),
    );
    let router = app::router(AppState::new(pool, settings).unwrap());
    let response = send(&router, axum::http::Method::GET, "/api/health/database", None).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.json["status"], "unhealthy");
    assert_eq!(response.json["database"]["status"], "down");
    let reason = response.json["reason"].as_str().unwrap();
    assert!(reason.contains("database"), "{reason}");
    assert!(!reason.contains("Connection refused"), "no internal error text: {reason}");
}

#[tokio::test]
async fn a_bad_detailed_flag_is_a_400_in_the_json_shape() {
    let app = TestApp::new().await;
    let response = app.get("/api/health/database?detailed=maybe").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), "bad_request");
}

#[tokio::test]
async fn detailed_health_is_for_operators_and_plain_health_stays_public() {
    let off = TestApp::new().await;
    let response = off.get("/api/health/database?detailed=true").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND, "no ADMIN_TOKEN configured: details are off");
    assert_eq!(off.get("/api/health/database").await.status, StatusCode::OK);

    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    let anonymous = app.get("/api/health/database?detailed=true").await;
    assert_eq!((anonymous.status, anonymous.error_code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert!(anonymous.json.get("details").is_none());
    let plain = app.get("/api/health/database").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.json.get("details").is_none());
    assert_eq!(app.admin_get("/api/health/database?detailed=true").await.status, StatusCode::OK);
}

/// Each of the details' queries takes a connection only while it runs, so parallel detailed
/// checks cannot starve one another of the pool: with one pooled connection, all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_detailed_checks_never_deadlock_the_pool() {
    let app = TestApp::with_settings(&[
        ("admin_token", ADMIN_TOKEN),
        ("database.connection_limit", "1"),
        ("database.pool_timeout_secs", "2"),
    ])
    .await;
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let router = app.router.clone();
        checks.spawn(async move {
            let uri = "/api/health/database?detailed=true";
            crate::support::call(&router, Method::GET, uri, Some(ADMIN_TOKEN), None).await.status
        });
    }
    while let Some(status) = checks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
}

/// A request that finds no free connection within the pool timeout answers 503, and the
/// detailed health counts it.
#[tokio::test]
async fn pool_acquire_timeouts_are_counted() {
    let app = TestApp::with_settings(&[
        ("admin_token", ADMIN_TOKEN),
        ("database.connection_limit", "1"),
        ("database.pool_timeout_secs", "1"),
    ])
    .await;
    let timeouts = || async {
        let health = app.admin_get("/api/health/database?detailed=true").await;
        health.json["pool"]["acquireTimeouts"].as_u64().unwrap()
    };
    let before = timeouts().await;
    let held = app.state.pool.acquire().await.unwrap();
    let starved = app.get("/api/discover").await;
    assert_eq!(starved.status, StatusCode::SERVICE_UNAVAILABLE, "{}", starved.json);
    drop(held);
    // Other tests of this process may time out too: the count only grows.
    assert!(timeouts().await > before);
}

/// A caller that waits for the one pooled connection shows as a waiter, its wait lands in the
/// acquire-wait distribution once it gets the connection, and a transaction that finds none
/// within the pool timeout counts as a timeout too (not only statements run on the pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_waiters_and_acquire_waits_are_measured() {
    use std::time::{Duration, Instant};
    use vibing2::telemetry::pool;

    let app = TestApp::with_settings(&[
        ("admin_token", ADMIN_TOKEN),
        ("database.connection_limit", "1"),
        ("database.pool_timeout_secs", "1"),
    ])
    .await;
    let waits_before = pool::figures().acquire_wait.since_start.count;
    let held = app.state.pool.begin().await.unwrap();
    let router = app.router.clone();
    let waiting =
        tokio::spawn(async move { crate::support::call(&router, Method::GET, "/api/discover", None, None).await });
    let started = Instant::now();
    while pool::figures().waiters == 0 {
        assert!(started.elapsed() < Duration::from_secs(1), "the request never queued for the connection");
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.rollback().await.unwrap();
    let served = waiting.await.unwrap();
    assert_eq!(served.status, StatusCode::OK, "served once the connection came back: {}", served.json);

    let figures = pool::figures();
    assert!(figures.acquire_wait.since_start.count > waits_before);
    assert!(figures.acquire_wait.since_start.max_ms >= 300.0, "{figures:?}");

    let timeouts_before = pool::figures().acquire_timeouts;
    let held = app.state.pool.acquire().await.unwrap();
    let starved = app.state.pool.begin().await;
    assert!(matches!(starved, Err(sqlx::Error::PoolTimedOut)), "{starved:?}");
    drop(held);
    assert!(pool::figures().acquire_timeouts > timeouts_before);

    let health = app.admin_get("/api/health/database?detailed=true").await;
    let reported = &health.json["pool"];
    assert!(reported["acquireTimeouts"].as_u64().unwrap() > timeouts_before, "{reported}");
    assert!(reported["acquireWait"]["sinceStart"]["maxMs"].as_f64().unwrap() >= 300.0, "{reported}");
    assert!(reported["waiters"].is_u64(), "{reported}");
}
