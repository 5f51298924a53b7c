//! Projects: create, read, update, delete, the view counter, and the member's project list.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{TestApp, TestUser};

#[tokio::test]
async fn create_read_update_and_delete_a_project() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let body = json!({"name": "Todo app", "description": "tasks", "projectType": "website",
                      "activeAgents": ["frontend-developer"]});
    let created = app.call(Method::POST, "/api/projects", Some(&owner.token), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap();
    assert_eq!(created.json["visibility"], "PRIVATE", "private by default");
    assert_eq!(created.json["activeAgents"], json!(["frontend-developer"]));
    assert_eq!(created.json["owner"], json!({"id": owner.id, "name": "Owner", "image": null}));
    assert_eq!((created.json["likeCount"].as_i64(), created.json["viewCount"].as_i64()), (Some(0), Some(0)));

    let uri = format!("/api/projects/{id}");
    let read = app.call(Method::GET, &uri, Some(&owner.token), None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json["access"], "owner");
    assert_eq!(read.json["files"], json!([]));
    assert!(read.json["owner"].get("email").is_none(), "never an e-mail");

    let patch = json!({"name": "Todo app 2", "description": null, "visibility": "PUBLIC",
                       "previewUrl": "https://preview.example.com/x"});
    let updated = app.call(Method::PATCH, &uri, Some(&owner.token), Some(patch)).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.json);
    assert_eq!(updated.json["name"], "Todo app 2");
    assert_eq!(updated.json["description"], Value::Null, "null clears");
    assert_eq!(updated.json["projectType"], "website", "absent fields are kept");
    assert_eq!(updated.json["visibility"], "PUBLIC");

    let not_allowed = app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"likeCount": 99}))).await;
    assert_eq!(not_allowed.status, StatusCode::UNPROCESSABLE_ENTITY);

    let deleted = app.call(Method::DELETE, &uri, Some(&owner.token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, &uri, Some(&owner.token), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_project_cascades_to_its_files_and_messages() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let id = app.project(&owner, "PRIVATE").await;
    let files = json!({"operations": [{"op": "upsert", "path": "index.html", "content": "<p>x</p>"}]});
    let uri = format!("/api/projects/{id}");
    app.call(Method::PUT, &format!("{uri}/files"), Some(&owner.token), Some(files)).await.expect(StatusCode::OK);
    let message = json!({"role": "user", "content": "hi"});
    app.call(Method::POST, &format!("{uri}/messages"), Some(&owner.token), Some(message))
        .await
        .expect(StatusCode::CREATED);

    assert_eq!(app.call(Method::DELETE, &uri, Some(&owner.token), None).await.status, StatusCode::NO_CONTENT);
    let (files, messages): (i64, i64) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "ProjectFile" WHERE "projectId" = $1),
                  (SELECT count(*) FROM "Message" WHERE "projectId" = $1)"#,
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((files, messages), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn views_are_counted_atomically() {
    // Forty viewers, each at an address of its own: one viewer counts once per window.
    let app = TestApp::with_settings(&[("auth.trust_forwarded_for", "true")]).await;
    let owner = app.user("Owner").await;
    let id = app.project(&owner, "PUBLIC").await;
    let mut views = tokio::task::JoinSet::new();
    for n in 0..40 {
        let (router, uri) = (app.router.clone(), format!("/api/projects/{id}/view"));
        views.spawn(async move { view_from(&router, &uri, &format!("192.0.2.{n}")).await });
    }
    while let Some(status) = views.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    app.flush_views().await;
    let count: i32 = sqlx::query_scalar(r#"SELECT "viewCount" FROM "Project" WHERE "id" = $1"#)
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 40);
}

/// `count` projects for `owner`, each with `n` messages and one file, updated in order.
async fn seed_projects(app: &TestApp, owner: &TestUser, count: i64, messages_each: i64) {
    sqlx::query(
        r#"WITH p AS (
               INSERT INTO "Project" ("id", "name", "projectType", "userId", "updatedAt")
               SELECT 'p' || n, 'Project ' || n, 'website', $1, TIMESTAMP '2026-01-01' + n * interval '1 minute'
               FROM generate_series(1, $2) n RETURNING "id"
           ), m AS (
               INSERT INTO "Message" ("id", "projectId", "role", "content")
               SELECT p."id" || '-m' || k, p."id", 'user', 'message ' || k FROM p, generate_series(1, $3) k
           )
           INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "size", "checksum")
           SELECT p."id" || '-f', p."id", 'index.html', '<p>', 'html', 3, repeat('0', 64) FROM p"#,
    )
    .bind(&owner.id)
    .bind(count)
    .bind(messages_each)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_project_list_merges_own_and_shared_projects_with_exact_counts_and_keyset_pages() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let friend = app.user("Friend").await;
    seed_projects(&app, &owner, 45, 2).await;
    let shared = app.project(&friend, "PRIVATE").await;
    app.add_collaborator(&shared, &owner, "EDITOR").await;
    let _not_mine = app.project(&friend, "PUBLIC").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(cursor) => format!("/api/projects?limit=10&cursor={cursor}"),
            None => "/api/projects?limit=10".to_owned(),
        };
        let page = app.call(Method::GET, &uri, Some(&owner.token), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        for item in page.json["items"].as_array().unwrap() {
            assert!(item.get("content").is_none() && item.get("files").is_none(), "no contents in lists");
            seen.push(item.clone());
        }
        match page.json["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 46, "45 own + 1 shared, each once");
    assert_eq!(seen[0]["id"], shared.as_str(), "the newest first");
    assert_eq!(seen[0]["access"], "editor");
    assert_eq!(seen[1]["access"], "owner");
    let times: Vec<&str> = seen.iter().map(|p| p["updatedAt"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "ordered by updatedAt DESC");
    let p7 = seen.iter().find(|p| p["id"] == "p7").unwrap();
    assert_eq!((p7["messageCount"].as_i64(), p7["fileCount"].as_i64()), (Some(2), Some(1)));
}

/// Counts the statements sqlx sends (its `sqlx::query` events) while `work` runs on this
/// thread; `#[tokio::test]` runs everything on the test's thread.
pub async fn count_statements<F: std::future::Future>(work: F) -> (usize, F::Output) {
    struct Counter(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counter {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if event.metadata().target() == "sqlx::query" {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(Counter(count.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    let output = work.await;
    drop(guard);
    (count.load(Ordering::SeqCst), output)
}

#[tokio::test]
async fn the_project_list_costs_the_same_round_trips_for_1_and_100_entries() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    seed_projects(&app, &owner, 120, 3).await;

    // The session lookup is cached after the first request; the list pages (keyed by size)
    // are not, so each measured request runs exactly its list statements.
    app.call(Method::GET, "/api/auth/session", Some(&owner.token), None).await.expect(StatusCode::OK);
    let (one, small) = count_statements(app.call(Method::GET, "/api/projects?limit=1", Some(&owner.token), None)).await;
    let (hundred, large) =
        count_statements(app.call(Method::GET, "/api/projects?limit=100", Some(&owner.token), None)).await;
    assert_eq!(small.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(large.json["items"].as_array().unwrap().len(), 100);
    assert!(one > 0, "the counter sees sqlx's statements");
    assert_eq!(one, hundred, "no N+1: {one} statements for 1 entry, {hundred} for 100");
    assert_eq!(one, 2, "the page of memberships, then its projects with their counts");
}

/// A `POST .../view` from the client at `address` (behind a trusted proxy).
pub async fn view_from(router: &axum::Router, uri: &str, address: &str) -> StatusCode {
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("x-forwarded-for", address)
        .body(axum::body::Body::empty())
        .unwrap();
    tower::ServiceExt::oneshot(router.clone(), request).await.unwrap().status()
}

#[tokio::test]
async fn a_viewer_counts_once_per_project_per_window() {
    let app = TestApp::with_settings(&[("auth.trust_forwarded_for", "true")]).await;
    let owner = app.user("Owner").await;
    let fan = app.user("Fan").await;
    let id = app.project(&owner, "PUBLIC").await;
    let uri = format!("/api/projects/{id}/view");
    for _ in 0..5 {
        assert_eq!(view_from(&app.router, &uri, "198.51.100.7").await, StatusCode::OK);
        let signed_in = app.call(Method::POST, &uri, Some(&fan.token), None).await;
        assert_eq!(signed_in.status, StatusCode::OK);
    }
    let again = app.call(Method::POST, &uri, Some(&fan.token), None).await;
    assert_eq!(again.json["viewCount"], 2, "one anonymous address and one user: {}", again.json);
    app.flush_views().await;
    assert_eq!(crate::views::stored_views(&app, &id).await, 2);
}
