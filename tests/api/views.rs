//! Views are counted in memory and written in batches: a flood of views costs one row write
//! per project per flush and one discovery invalidation per flush, not one per view, and no
//! counted view is lost.

use axum::http::{Method, StatusCode};
use redis::AsyncCommands;
use serde_json::json;

use crate::support::{shared_redis_url, TestApp};

pub async fn stored_views(app: &TestApp, project: &str) -> i32 {
    sqlx::query_scalar(r#"SELECT "viewCount" FROM "Project" WHERE "id" = $1"#)
        .bind(project)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_views_is_written_once_and_bumps_discovery_once() {
    let namespace = crate::support::namespace();
    // No periodic flush during the test: only the explicit one below writes.
    let app = TestApp::with_settings(&[
        ("redis.url", &shared_redis_url()),
        ("cache.namespace", &namespace),
        ("views.flush_ms", "3600000"),
        ("auth.trust_forwarded_for", "true"),
    ])
    .await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    let discovery_generation = format!("{namespace}:v1:gen:discovery");
    let mut redis = redis::Client::open(shared_redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let generation_before: Option<u64> = redis.get(&discovery_generation).await.unwrap();

    let mut views = tokio::task::JoinSet::new();
    // A hundred viewers, each at an address of its own.
    for n in 0..100 {
        let (router, uri) = (app.router.clone(), format!("/api/projects/{project}/view"));
        views.spawn(async move {
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("x-forwarded-for", format!("203.0.113.{n}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        });
    }
    let mut counts = Vec::new();
    while let Some(response) = views.join_next().await {
        let (status, json) = response.unwrap();
        assert_eq!(status, StatusCode::OK);
        counts.push(json["viewCount"].as_i64().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=100).collect::<Vec<_>>(), "each view saw the count including itself");
    assert_eq!(stored_views(&app, &project).await, 0, "no view wrote its row");
    let generation_during: Option<u64> = redis.get(&discovery_generation).await.unwrap();
    assert_eq!(generation_during, generation_before, "no view bumped discovery");

    // Every bump is announced on the invalidation channel: count discovery's, up to a marker
    // published after the flush (one channel delivers in the order Redis took them).
    let channel = format!("{namespace}:v1:invalidations");
    let mut announcements = redis::Client::open(shared_redis_url()).unwrap().get_async_pubsub().await.unwrap();
    announcements.subscribe(&channel).await.unwrap();
    app.flush_views().await;
    assert_eq!(stored_views(&app, &project).await, 100, "one flush wrote every view");
    let generation_after: Option<u64> = redis.get(&discovery_generation).await.unwrap();
    assert!(generation_after > generation_before, "the flush bumped discovery");
    let () = redis.publish(&channel, "end of the flush").await.unwrap();
    let mut messages = announcements.on_message();
    let mut discovery_bumps = 0;
    loop {
        let message =
            tokio::time::timeout(std::time::Duration::from_secs(10), futures_util::StreamExt::next(&mut messages))
                .await
                .expect("the marker arrives")
                .unwrap();
        let text: String = message.get_payload().unwrap();
        if text == "end of the flush" {
            break;
        }
        if text.starts_with("gen ") && text.ends_with(" discovery") {
            discovery_bumps += 1;
        }
    }
    assert_eq!(discovery_bumps, 1, "one flush, one bump");
    let detail = app.call(Method::GET, &format!("/api/projects/{project}"), None, None).await;
    assert_eq!(detail.json["viewCount"], json!(100));
}

#[tokio::test]
async fn views_of_a_project_deleted_before_the_flush_are_dropped_with_it() {
    let app = TestApp::with_settings(&[("views.flush_ms", "3600000")]).await;
    let owner = app.user("Owner").await;
    let kept = app.project(&owner, "PUBLIC").await;
    let deleted = app.project(&owner, "PUBLIC").await;
    for project in [&kept, &deleted] {
        let view = app.call(Method::POST, &format!("/api/projects/{project}/view"), None, None).await;
        assert_eq!(view.status, StatusCode::OK);
    }
    let delete = app.call(Method::DELETE, &format!("/api/projects/{deleted}"), Some(&owner.token), None).await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
    app.flush_views().await;
    assert_eq!(stored_views(&app, &kept).await, 1);
}

#[tokio::test]
async fn a_failed_flush_keeps_its_views_for_the_next() {
    let app = TestApp::with_settings(&[("views.flush_ms", "3600000")]).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    let view = app.call(Method::POST, &format!("/api/projects/{project}/view"), None, None).await;
    assert_eq!(view.status, StatusCode::OK);
    // The flush's UPDATE fails while the column refuses writes.
    sqlx::query(r#"ALTER TABLE "Project" ADD CONSTRAINT "no_views" CHECK ("viewCount" = 0) NOT VALID"#)
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(vibing2::service::views::flush(&app.state).await.is_err());
    sqlx::query(r#"ALTER TABLE "Project" DROP CONSTRAINT "no_views""#).execute(&app.pool).await.unwrap();
    app.flush_views().await;
    assert_eq!(stored_views(&app, &project).await, 1, "the view survived the failed flush");
}
