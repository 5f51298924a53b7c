//! Likes (exact counts under concurrency, idempotent) and forks (files copied, messages not;
//! bounded by the forker's plan).

use axum::http::{header, Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, TestUser};

#[tokio::test]
async fn like_and_unlike_are_idempotent() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let fan = app.user("Fan").await;
    let project = app.project(&owner, "PUBLIC").await;
    let uri = format!("/api/projects/{project}/like");
    for _ in 0..2 {
        let liked = app.call(Method::PUT, &uri, Some(&fan.token), None).await;
        assert_eq!(liked.status, StatusCode::OK);
        assert_eq!(liked.json, json!({"liked": true, "likeCount": 1}));
    }
    for _ in 0..2 {
        let unliked = app.call(Method::DELETE, &uri, Some(&fan.token), None).await;
        assert_eq!(unliked.json, json!({"liked": false, "likeCount": 0}));
    }
    assert_eq!(app.call(Method::PUT, &uri, None, None).await.status, StatusCode::UNAUTHORIZED);
    let private = app.project(&owner, "PRIVATE").await;
    let hidden = app.call(Method::PUT, &format!("/api/projects/{private}/like"), Some(&fan.token), None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

/// Many tasks like and unlike one project at once; afterwards likeCount equals the number of
/// like rows, and each user's last word decides whether they like it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn like_count_stays_exact_under_concurrent_likes_and_unlikes() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    let mut fans: Vec<TestUser> = Vec::new();
    for n in 0..12 {
        fans.push(app.user(&format!("Fan{n}")).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (n, fan) in fans.iter().enumerate() {
        for round in 0..6 {
            // Fans with an even index end on a like, odd ones on an unlike.
            let method = if (round + n) % 2 == 0 { Method::PUT } else { Method::DELETE };
            let request = axum::http::Request::builder()
                .method(method)
                .uri(format!("/api/projects/{project}/like"))
                .header("authorization", format!("Bearer {}", fan.token))
                .body(axum::body::Body::empty())
                .unwrap();
            let router = app.router.clone();
            tasks.spawn(async move { tower::ServiceExt::oneshot(router, request).await.unwrap().status() });
        }
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let (count, rows): (i32, i64) = sqlx::query_as(
        r#"SELECT "likeCount", (SELECT count(*) FROM "ProjectLike" WHERE "projectId" = $1) FROM "Project" WHERE "id" = $1"#,
    )
    .bind(&project)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(i64::from(count), rows, "likeCount equals the number of likes");

    // A settled round: every fan likes, then half unlike; the count follows exactly.
    for fan in &fans {
        app.call(Method::PUT, &format!("/api/projects/{project}/like"), Some(&fan.token), None)
            .await
            .expect(StatusCode::OK);
    }
    for fan in fans.iter().step_by(2) {
        app.call(Method::DELETE, &format!("/api/projects/{project}/like"), Some(&fan.token), None)
            .await
            .expect(StatusCode::OK);
    }
    let count: i32 = sqlx::query_scalar(r#"SELECT "likeCount" FROM "Project" WHERE "id" = $1"#)
        .bind(&project)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 6);
}

/// Gives `project` two files, written by its owner.
async fn write_two_files(app: &TestApp, owner: &TestUser, project: &str) {
    let files = json!({"operations": [
        {"op": "upsert", "path": "index.html", "content": "<p>one</p>"},
        {"op": "upsert", "path": "src/app.js", "content": "two"},
    ]});
    app.call(Method::PUT, &format!("/api/projects/{project}/files"), Some(&owner.token), Some(files))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_fork_copies_metadata_and_files_but_not_messages() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let forker = app.user("Forker").await;
    let source = app.project(&owner, "PUBLIC").await;
    write_two_files(&app, &owner, &source).await;
    let message = json!({"role": "user", "content": "secret chat"});
    app.call(Method::POST, &format!("/api/projects/{source}/messages"), Some(&owner.token), Some(message))
        .await
        .expect(StatusCode::CREATED);

    let fork =
        app.call(Method::POST, &format!("/api/projects/{source}/fork"), Some(&forker.token), Some(json!({}))).await;
    assert_eq!(fork.status, StatusCode::CREATED, "{}", fork.json);
    assert_eq!(fork.json["name"], "A project (fork)");
    assert_eq!(fork.json["visibility"], "PRIVATE");
    assert_eq!(fork.json["owner"]["id"], forker.id.as_str());
    let fork_id = fork.json["id"].as_str().unwrap();

    let (files, messages, checksums_match, forks): (i64, i64, bool, i32) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "ProjectFile" WHERE "projectId" = $2),
                  (SELECT count(*) FROM "Message" WHERE "projectId" = $2),
                  (SELECT array_agg("path" || "checksum" ORDER BY "path") FROM "ProjectFile" WHERE "projectId" = $1)
                    = (SELECT array_agg("path" || "checksum" ORDER BY "path") FROM "ProjectFile" WHERE "projectId" = $2),
                  (SELECT "forkCount" FROM "Project" WHERE "id" = $1)"#,
    )
    .bind(&source)
    .bind(fork_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((files, messages, checksums_match, forks), (2, 0, true, 1));

    let named = json!({"name": "My copy"});
    let renamed =
        app.call(Method::POST, &format!("/api/projects/{source}/fork"), Some(&forker.token), Some(named)).await;
    assert_eq!(renamed.json["name"], "My copy");

    let private = app.project(&owner, "PRIVATE").await;
    let hidden =
        app.call(Method::POST, &format!("/api/projects/{private}/fork"), Some(&forker.token), Some(json!({}))).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "a private project the caller cannot read");
    let anonymous = app.call(Method::POST, &format!("/api/projects/{source}/fork"), None, Some(json!({}))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forks_are_limited_per_hour_by_the_forkers_plan() {
    let app = TestApp::with_settings(&[("limits.forks_per_hour_free", "2"), ("limits.forks_per_hour_pro", "3")]).await;
    let owner = app.user("Owner").await;
    let free = app.user("Free").await;
    let pro = app.user("Pro").await;
    app.set_plan(&pro, "PRO").await;
    let source = app.project(&owner, "PUBLIC").await;
    let fork = format!("/api/projects/{source}/fork");

    for (forker, allowed) in [(&free, 2), (&pro, 3)] {
        for _ in 0..allowed {
            app.call(Method::POST, &fork, Some(&forker.token), Some(json!({}))).await.expect(StatusCode::CREATED);
        }
        let refused = app.call(Method::POST, &fork, Some(&forker.token), Some(json!({}))).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.json);
        let retry_after: u64 = refused.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");
    }
    let forks: i32 = sqlx::query_scalar(r#"SELECT "forkCount" FROM "Project" WHERE "id" = $1"#)
        .bind(&source)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(forks, 5, "refused forks copy and count nothing");
}

#[tokio::test]
async fn a_fork_must_fit_the_forkers_plan() {
    let app = TestApp::with_settings(&[("limits.project_files_free", "1")]).await;
    let owner = app.user("Owner").await;
    let forker = app.user("Forker").await;
    app.set_plan(&owner, "PRO").await;
    let source = app.project(&owner, "PUBLIC").await;
    write_two_files(&app, &owner, &source).await;

    let refused =
        app.call(Method::POST, &format!("/api/projects/{source}/fork"), Some(&forker.token), Some(json!({}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.json);
    assert_eq!(refused.error_code(), "quota_exceeded");
    let (owned, forks): (i64, i32) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "Project" WHERE "userId" = $1), (SELECT "forkCount" FROM "Project" WHERE "id" = $2)"#,
    )
    .bind(&forker.id)
    .bind(&source)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((owned, forks), (0, 0), "nothing was copied or counted");
}
