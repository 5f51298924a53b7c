//! The pool's per-connection settings: statement_timeout and friends.

use axum::http::StatusCode;
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
