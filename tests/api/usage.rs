//! Token usage: recording against the balance (never negative, even racing), the exact
//! summary across the view and live rows, and recent usage.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Executor;
use vibing2::db::partitions;

use crate::support::{TestApp, TestUser};

fn call_body(tokens: i32, model: &str) -> Value {
    json!({"tokensUsed": tokens, "contextUsed": 1.5, "savedTokens": 10, "endpoint": "/api/agents/chat", "model": model})
}

#[tokio::test]
async fn recording_charges_the_balance_and_prices_by_model() {
    let app = TestApp::new().await;
    let user = app.user("Builder").await;
    let recorded = app.call(Method::POST, "/api/usage", Some(&user.token), Some(call_body(2000, "gpt-4o"))).await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.json);
    assert_eq!(recorded.json["tokenBalance"], 8000);
    assert_eq!(recorded.json["usage"]["cost"], 0.01, "2000 tokens at $0.005 per 1K");
    let unknown = app.call(Method::POST, "/api/usage", Some(&user.token), Some(call_body(1000, "mystery"))).await;
    assert_eq!(unknown.json["usage"]["cost"], 0.002, "the default rate");

    let (balance, context): (i32, f64) =
        sqlx::query_as(r#"SELECT "tokenBalance", "contextUsed" FROM "User" WHERE "id" = $1"#)
            .bind(&user.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((balance, context), (7000, 3.0));

    let too_much = app.call(Method::POST, "/api/usage", Some(&user.token), Some(call_body(7001, "gpt-4o"))).await;
    assert_eq!(too_much.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(too_much.error_code(), "insufficient_tokens");
    let rows: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "TokenUsage""#).fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 2, "a refused call records nothing");
}

#[tokio::test]
async fn usage_for_a_project_needs_read_access_to_it() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let other = app.user("Other").await;
    let project = app.project(&owner, "PRIVATE").await;
    let mut body = call_body(10, "gpt-4o");
    body["projectId"] = json!(project);
    let own = app.call(Method::POST, "/api/usage", Some(&owner.token), Some(body.clone())).await;
    assert_eq!(own.status, StatusCode::CREATED);
    assert_eq!(own.json["usage"]["projectId"], project.as_str());
    let foreign = app.call(Method::POST, "/api/usage", Some(&other.token), Some(body)).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

/// Many concurrent calls race for a balance that covers only some of them: the balance never
/// goes negative, and what was recorded equals what was charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_overdraw_the_balance() {
    let app = TestApp::new().await;
    let user = app.user("Racer").await;
    sqlx::query(r#"UPDATE "User" SET "tokenBalance" = 1000 WHERE "id" = $1"#)
        .bind(&user.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/usage")
            .header("authorization", format!("Bearer {}", user.token))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(call_body(70, "gpt-4o").to_string()))
            .unwrap();
        let router = app.router.clone();
        calls.spawn(async move { tower::ServiceExt::oneshot(router, request).await.unwrap().status() });
    }
    let mut created = 0;
    while let Some(status) = calls.join_next().await {
        match status.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => {}
            other => panic!("unexpected {other}"),
        }
    }
    let (balance, recorded, rows): (i32, i64, i64) = sqlx::query_as(
        r#"SELECT "tokenBalance", (SELECT sum("tokensUsed") FROM "TokenUsage" WHERE "userId" = $1),
                  (SELECT count(*) FROM "TokenUsage" WHERE "userId" = $1)
           FROM "User" WHERE "id" = $1"#,
    )
    .bind(&user.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(created, 14, "1000 / 70 = 14 calls fit");
    assert_eq!((balance, recorded, rows), (1000 - 14 * 70, 14 * 70, 14));
}

/// Usage rows spread over 40 days, some before the view's last refresh and some after.
async fn seed_usage(app: &TestApp, user: &TestUser) {
    seed_usage_over(app, user, 40, 400).await;
}

/// `rows` usage rows of `user` spread over the `days` before now, with the months'
/// partitions they need.
pub(crate) async fn seed_usage_over(app: &TestApp, user: &TestUser, days: i32, rows: i32) {
    let mut conn = app.pool.acquire().await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let months = partitions::months_between(today - chrono::Duration::days(i64::from(days) + 1), today);
    partitions::ensure_months(&mut conn, &months).await.unwrap();
    app.pool
        .execute(
            sqlx::query(
                r#"INSERT INTO "TokenUsage" ("id", "userId", "endpoint", "model", "tokensUsed", "contextUsed",
                                            "savedTokens", "cost", "timestamp")
                   SELECT $1 || '-seed' || n, $1, (ARRAY['/chat', '/edit', '/fix'])[1 + n % 3],
                          (ARRAY['gpt-4o', 'claude-3-haiku'])[1 + n % 2], 10 + n % 17, (n % 5) * 0.5, n % 3,
                          (n % 7) * 0.001, (now() AT TIME ZONE 'UTC') - (n % $2) * interval '1 day' - (n % 24) * interval '1 hour'
                   FROM generate_series(1, $3) n"#,
            )
            .bind(&user.id)
            .bind(days)
            .bind(rows),
        )
        .await
        .unwrap();
}

pub(crate) async fn direct_summary(
    app: &TestApp,
    user: &TestUser,
    days: i32,
    key: &str,
) -> Vec<(String, i64, i64, f64)> {
    sqlx::query_as(&format!(
        r#"SELECT {key}, count(*), sum("tokensUsed")::int8, sum("cost")::float8 FROM "TokenUsage"
           WHERE "userId" = $1
             AND "timestamp" >= date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => $2 - 1)
           GROUP BY 1 ORDER BY 1"#
    ))
    .bind(&user.id)
    .bind(days)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

pub(crate) async fn api_summary(
    app: &TestApp,
    user: &TestUser,
    days: i32,
    group_by: &str,
) -> Vec<(String, i64, i64, f64)> {
    let uri = format!("/api/usage/summary?days={days}&groupBy={group_by}");
    let response = app.call(Method::GET, &uri, Some(&user.token), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json);
    response.json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let cost = (g["cost"].as_f64().unwrap() * 1e6).round() / 1e6;
            (
                g["key"].as_str().unwrap().to_owned(),
                g["requests"].as_i64().unwrap(),
                g["tokensUsed"].as_i64().unwrap(),
                cost,
            )
        })
        .collect()
}

#[tokio::test]
async fn the_summary_equals_a_direct_aggregate_whatever_the_views_state() {
    let app = TestApp::new().await;
    let user = app.user("Heavy").await;
    let other = app.user("Other").await;
    seed_usage(&app, &user).await;
    seed_usage(&app, &other).await;
    let round = |rows: Vec<(String, i64, i64, f64)>| -> Vec<(String, i64, i64, f64)> {
        rows.into_iter().map(|(k, r, t, c)| (k, r, t, (c * 1e6).round() / 1e6)).collect()
    };
    let checks =
        [("day", r#"to_char("timestamp", 'YYYY-MM-DD')"#), ("endpoint", r#""endpoint""#), ("model", r#""model""#)];

    // Historical rows bulk-loaded outside the API need a refresh (as `vibing2 refresh-views`
    // or the scheduler does); from then on the view serves the past days, live rows the rest.
    vibing2::jobs::refresh_views_now(&app.pool).await.unwrap();
    let covered: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM user_token_summary"#).fetch_one(&app.pool).await.unwrap();
    assert!(covered > 0, "the view holds the past days");
    let assert_exact = || async {
        for (group_by, key) in checks {
            for days in [1, 7, 30] {
                let expected = round(direct_summary(&app, &user, days, key).await);
                assert_eq!(api_summary(&app, &user, days, group_by).await, expected, "{group_by} over {days} days");
            }
        }
    };
    assert_exact().await;

    // Calls recorded after the refresh are counted live.
    for tokens in [5, 6, 7] {
        app.call(Method::POST, "/api/usage", Some(&user.token), Some(call_body(tokens, "gpt-4o"))).await;
    }
    assert_exact().await;

    // A view whose last refresh is days old is still exact: everything since then is live.
    sqlx::query(r#"UPDATE "ViewRefresh" SET "refreshedAt" = "refreshedAt" - interval '10 days'"#)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_exact().await;

    let bad = app.call(Method::GET, "/api/usage/summary?days=0", Some(&user.token), None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_group = app.call(Method::GET, "/api/usage/summary?groupBy=user", Some(&user.token), None).await;
    assert_eq!(wrong_group.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn recent_usage_pages_newest_first() {
    let app = TestApp::new().await;
    let user = app.user("Pager").await;
    seed_usage(&app, &user).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let uri = format!("/api/usage/recent?limit=37{cursor}");
        let page = app.call(Method::GET, &uri, Some(&user.token), None).await;
        assert_eq!(page.status, StatusCode::OK);
        for item in page.json["items"].as_array().unwrap() {
            seen.push((item["timestamp"].as_str().unwrap().to_owned(), item["id"].as_str().unwrap().to_owned()));
        }
        match page.json["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 400);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "strictly newest first, no repeats");
}
