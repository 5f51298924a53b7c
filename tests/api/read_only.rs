//! A database that takes no writes (`default_transaction_read_only`, as a failover to a
//! standby or a disk-full emergency setting leaves it): writes answer 503
//! `database_read_only` with `Retry-After`, reads go on, and nothing is half-written.

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::Executor;
use vibing2::app;
use vibing2::state::AppState;

use crate::support::{call, TestApp};

#[tokio::test]
async fn writes_answer_503_and_reads_go_on_while_the_database_is_read_only() {
    let app = TestApp::new().await;
    let owner = app.user("Reader").await;
    let project = app.project(&owner, "PUBLIC").await;
    let token = Some(owner.token.as_str());
    let files = json!({"operations": [{"op": "upsert", "path": "index.html", "content": "<p>kept</p>"}]});
    call(&app.router, Method::PUT, &format!("/api/projects/{project}/files"), token, Some(files)).await;

    let mut admin = app.db.connect().await;
    admin
        .execute(format!("ALTER DATABASE {} SET default_transaction_read_only = on", app.db.name).as_str())
        .await
        .unwrap();
    // New connections start read-only: an instance whose pool is opened now.
    let pool = app.db.pool(&app.state.settings).await;
    let read_only = app::router(AppState::new(pool, (*app.state.settings).clone()).unwrap());
    let counts = || async {
        let mut conn = app.db.connect().await;
        sqlx::query_as::<_, (i64, i64, i64)>(
            r#"SELECT (SELECT count(*) FROM "Project"), (SELECT count(*) FROM "ProjectFile"), (SELECT count(*) FROM "Message")"#,
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    let before = counts().await;

    let project_uri = format!("/api/projects/{project}");
    let writes = [
        (Method::POST, "/api/projects".to_owned(), Some(json!({"name": "New", "projectType": "website"}))),
        (Method::PATCH, project_uri.clone(), Some(json!({"name": "Renamed"}))),
        (
            Method::PUT,
            format!("{project_uri}/files"),
            Some(json!({"operations": [
                {"op": "upsert", "path": "a.js", "content": "1"},
                {"op": "upsert", "path": "b.js", "content": "2"},
                {"op": "delete", "path": "index.html"}
            ]})),
        ),
        (Method::POST, format!("{project_uri}/messages"), Some(json!({"role": "user", "content": "hello"}))),
    ];
    for (method, uri, body) in writes {
        let response = call(&read_only, method.clone(), &uri, token, body).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}: {}", response.json);
        assert_eq!(response.error_code(), "database_read_only", "{method} {uri}");
        assert!(response.headers.contains_key("retry-after"), "{method} {uri}");
    }
    assert_eq!(counts().await, before, "nothing was half-written");

    for uri in
        [project_uri.clone(), format!("{project_uri}/files"), "/api/projects".to_owned(), "/api/discover".to_owned()]
    {
        let response = call(&read_only, Method::GET, &uri, token, None).await;
        assert_eq!(response.status, StatusCode::OK, "reads go on: {uri}: {}", response.json);
    }
    let renamed = call(&read_only, Method::GET, &project_uri, token, None).await;
    assert_eq!(renamed.json["name"], "A project", "the refused rename left the name as it was");

    admin
        .execute(format!("ALTER DATABASE {} RESET default_transaction_read_only", app.db.name).as_str())
        .await
        .unwrap();
}
