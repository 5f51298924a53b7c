//! Likes (exact counts under concurrency, idempotent) and forks (files copied, messages not).

use axum::http::{Method, StatusCode};
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

#[tokio::test]
async fn a_fork_copies_metadata_and_files_but_not_messages() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let forker = app.user("Forker").await;
    let source = app.project(&owner, "PUBLIC").await;
    let files = json!({"operations": [
        {"op": "upsert", "path": "index.html", "content": "<p>one</p>"},
        {"op": "upsert", "path": "src/app.js", "content": "two"},
    ]});
    app.call(Method::PUT, &format!("/api/projects/{source}/files"), Some(&owner.token), Some(files))
        .await
        .expect(StatusCode::OK);
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
