//! The two-tier cache against a real Redis: single-flight, freshness after own writes,
//! invalidation across two instances, clear, fail-open with Redis down or slow and its
//! recovery, and what must never reach Redis. Each test has its own key namespace; tests
//! that stop Redis run a private redis-server of their own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::Router;
use redis::AsyncCommands;
use serde_json::json;
use vibing2::cache::{Cache, Kind, Scope};

use crate::support::{
    cache_settings, instance, namespace, send, shared_redis_url, two_tier_app, within, PrivateRedis, TestApp, TestUser,
    ADMIN_TOKEN,
};

async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn project_name(router: &Router, user: &TestUser, project: &str) -> String {
    let request = axum::http::Request::builder()
        .uri(format!("/api/projects/{project}"))
        .header("authorization", format!("Bearer {}", user.token))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["name"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_misses_on_a_cold_key_cost_one_database_load() {
    let app = TestApp::new().await;
    let settings = cache_settings(&app, &shared_redis_url(), &namespace());
    // A generous Redis timeout: a generation read timing out on a busy machine would send its
    // request to a key of its own (and a load of its own), which is not what this test is about.
    let cache = Cache::new(
        settings.cache.clone(),
        Some((redis::Client::open(shared_redis_url()).unwrap(), Duration::from_secs(5))),
    );
    let loads = Arc::new(AtomicUsize::new(0));
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (cache, loads, pool) = (cache.clone(), loads.clone(), app.pool.clone());
        requests.spawn(async move {
            let scope = Scope::Project("cold".into());
            cache
                .get_or_load(Kind::Project, &scope, "", || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let value: i64 = sqlx::query_scalar("SELECT 42::int8 FROM pg_sleep(0.05)").fetch_one(&pool).await?;
                    Ok::<_, vibing2::Error>(value)
                })
                .await
                .unwrap()
        });
    }
    while let Some(value) = requests.join_next().await {
        assert_eq!(value.unwrap(), 42);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "single-flight: one load for 200 concurrent misses");
    let kinds = cache.status().await.kinds;
    let project = kinds.iter().find(|k| k.kind == "project").unwrap();
    assert_eq!((project.requests, project.loads), (200, 1));
}

#[tokio::test]
async fn after_a_write_returns_the_same_instance_never_serves_the_old_value() {
    let (app, settings) = two_tier_app(&shared_redis_url()).await;
    let namespace = settings.cache.namespace.clone();
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    let uri = format!("/api/projects/{project}");
    assert_eq!(project_name(&app.router, &owner, &project).await, "A project");
    for n in 0..5 {
        let name = format!("Renamed {n}");
        app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"name": name}))).await.expect(StatusCode::OK);
        assert_eq!(project_name(&app.router, &owner, &project).await, name, "fresh right after the write");
    }

    // Derived pages too: the owner's list and discovery.
    let list = app.call(Method::GET, "/api/projects", Some(&owner.token), None).await;
    assert_eq!(list.json["items"][0]["name"], "Renamed 4");
    let discover = app.call(Method::GET, "/api/discover", None, None).await;
    assert_eq!(discover.json["items"][0]["name"], "Renamed 4");
    app.call(Method::POST, &format!("{uri}/view"), None, None).await.expect(StatusCode::OK);
    app.flush_views().await;
    let discover = app.call(Method::GET, "/api/discover", None, None).await;
    assert_eq!(discover.json["items"][0]["viewCount"], 1, "a view invalidates discovery");
    let files = json!({"operations": [{"op": "upsert", "path": "a.js", "content": "x"}]});
    app.call(Method::PUT, &format!("{uri}/files"), Some(&owner.token), Some(files)).await.expect(StatusCode::OK);
    let list = app.call(Method::GET, "/api/projects", Some(&owner.token), None).await;
    assert_eq!(list.json["items"][0]["fileCount"], 1, "a file write invalidates the member list");

    // Generation counters expire after twice the longest entry TTL (a day for sessions).
    let mut redis = redis_connection(&shared_redis_url()).await;
    let ttl: i64 = redis.ttl(format!("{namespace}:v1:gen:project:{project}")).await.unwrap();
    assert!((86_400..=2 * 86_400).contains(&ttl), "generation TTL {ttl}");
}

#[tokio::test]
async fn a_write_through_one_instance_reaches_the_other_within_a_second() {
    let (app, settings) = two_tier_app(&shared_redis_url()).await;
    let other = instance(&app, &settings);
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    // Both instances hold the project in their local tiers.
    assert_eq!(project_name(&app.router, &owner, &project).await, "A project");
    assert_eq!(project_name(&other, &owner, &project).await, "A project");

    let uri = format!("/api/projects/{project}");
    app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"name": "Seen everywhere"})))
        .await
        .expect(StatusCode::OK);
    within(Duration::from_secs(1), || async { project_name(&other, &owner, &project).await == "Seen everywhere" })
        .await;

    // Logout through A ends the session on B at once too.
    let session = send(&other, Method::GET, "/api/auth/session", None).await;
    assert_eq!(session.status, StatusCode::UNAUTHORIZED, "no token, no session");
    assert_eq!(session_status(&other, &owner.token).await, StatusCode::OK, "B has the session cached");
    app.call(Method::POST, "/api/auth/logout", Some(&owner.token), None).await.expect(StatusCode::NO_CONTENT);
    within(Duration::from_secs(1), || async { session_status(&other, &owner.token).await == StatusCode::UNAUTHORIZED })
        .await;
}

/// What `GET /api/auth/session` with `token` answers through `router`.
async fn session_status(router: &Router, token: &str) -> StatusCode {
    crate::support::call(router, Method::GET, "/api/auth/session", Some(token), None).await.status
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_on_every_instance_within_a_second() {
    let (app, settings) = two_tier_app(&shared_redis_url()).await;
    let other = instance(&app, &settings);
    let owner = app.user("Owner").await;
    let stolen = app.login(&owner.email, &owner.password).await.json["token"].as_str().unwrap().to_owned();
    assert_eq!(session_status(&other, &stolen).await, StatusCode::OK, "B has the other session cached");

    let change = json!({"currentPassword": owner.password, "newPassword": "a-new-password"});
    app.call(Method::PUT, "/api/auth/password", Some(&owner.token), Some(change)).await.expect(StatusCode::NO_CONTENT);
    within(Duration::from_secs(1), || async { session_status(&other, &stolen).await == StatusCode::UNAUTHORIZED })
        .await;
    assert_eq!(session_status(&other, &owner.token).await, StatusCode::OK, "the session that asked stays");
}

/// With Redis stopped, no instance hears of a logout, yet none serves the session past its
/// local TTL: sessions live in the local tier only, and are read again from PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_while_redis_is_stopped_ends_the_session_everywhere_within_the_local_ttl() {
    let mut redis = PrivateRedis::start().await;
    let namespace = namespace();
    let overrides =
        [("redis.url", redis.url()), ("cache.namespace", namespace), ("cache.local_ttl_secs", "1".to_owned())];
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let app = TestApp::with_settings(&overrides).await;
    let other = instance(&app, &app.db.settings(&overrides));
    let owner = app.user("Owner").await;
    assert_eq!(session_status(&other, &owner.token).await, StatusCode::OK, "B has the session cached");

    redis.stop().await;
    app.call(Method::POST, "/api/auth/logout", Some(&owner.token), None).await.expect(StatusCode::NO_CONTENT);
    within(Duration::from_secs(10), || async {
        session_status(&other, &owner.token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    for _ in 0..5 {
        assert_eq!(session_status(&other, &owner.token).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn clear_reaches_every_instance_and_leaves_foreign_keys_alone() {
    let (app, settings) = two_tier_app(&shared_redis_url()).await;
    let other = instance(&app, &settings);
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    assert_eq!(project_name(&app.router, &owner, &project).await, "A project");
    assert_eq!(project_name(&other, &owner, &project).await, "A project");

    let mut redis = redis_connection(&shared_redis_url()).await;
    let foreign = [format!("{}-other:v1:project:x", settings.cache.namespace), format!("unrelated:{}", namespace())];
    for key in &foreign {
        let _: () = redis.set_ex(key, "keep me", 60).await.unwrap();
    }
    // A change behind the service's back: only a clear makes it visible before the TTL.
    sqlx::query(r#"UPDATE "Project" SET "name" = 'Changed in SQL' WHERE "id" = $1"#)
        .bind(&project)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(project_name(&other, &owner, &project).await, "A project", "still cached");

    let unauthorized = app.call(Method::POST, "/api/cache/clear", Some("wrong-token"), None).await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    let cleared = app.call(Method::POST, "/api/cache/clear", Some(ADMIN_TOKEN), None).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.json);
    assert!(cleared.json["removedKeys"].as_u64().unwrap() > 0);
    within(Duration::from_secs(1), || async { project_name(&other, &owner, &project).await == "Changed in SQL" }).await;
    assert_eq!(project_name(&app.router, &owner, &project).await, "Changed in SQL");

    for key in &foreign {
        let value: Option<String> = redis.get(key).await.unwrap();
        assert_eq!(value.as_deref(), Some("keep me"), "{key} is outside the namespace");
        let _: () = redis.del(key).await.unwrap();
    }
}

#[tokio::test]
async fn clear_is_off_without_an_admin_token() {
    let app = TestApp::new().await;
    let response = app.call(Method::POST, "/api/cache/clear", Some(ADMIN_TOKEN), None).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_password_hash_or_plaintext_token_is_ever_written_to_redis() {
    let (app, settings) = two_tier_app(&shared_redis_url()).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    for uri in [
        "/api/auth/session",
        "/api/projects",
        &format!("/api/projects/{project}"),
        "/api/discover",
        "/api/usage/summary",
    ] {
        assert_eq!(app.call(Method::GET, uri, Some(&owner.token), None).await.status, StatusCode::OK, "{uri}");
    }
    let hash: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "id" = $1"#)
        .bind(&owner.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let mut redis = redis_connection(&shared_redis_url()).await;
    let keys: Vec<String> = redis.keys(format!("{}:*", settings.cache.namespace)).await.unwrap();
    assert!(keys.len() >= 5, "the reads were cached: {keys:?}");
    for key in &keys {
        assert!(!key.contains(&owner.token), "a key holds the token: {key}");
        let value: Vec<u8> = redis.get(key).await.unwrap();
        let text = String::from_utf8_lossy(&value);
        for secret in [hash.as_str(), owner.token.as_str(), owner.password.as_str(), "$argon2id$"] {
            assert!(!text.contains(secret), "{key} holds a secret");
        }
    }
}

#[tokio::test]
async fn with_redis_down_from_the_start_requests_succeed_on_the_local_tier() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (app, _) = two_tier_app(&format!("redis://127.0.0.1:{closed_port}")).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    for _ in 0..10 {
        assert_eq!(project_name(&app.router, &owner, &project).await, "A project");
    }
    let health = app.get("/api/health/database").await;
    assert_eq!(health.status, StatusCode::OK, "a down Redis does not fail the health check");
    assert_eq!(health.json["cache"]["mode"], "two-tier");
    assert_eq!(health.json["cache"]["breaker"], "open");
    let errors: u64 =
        health.json["cache"]["kinds"].as_array().unwrap().iter().map(|k| k["sharedErrors"].as_u64().unwrap()).sum();
    assert!(errors >= 3, "errors are counted: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_slow_and_recovering() {
    let mut redis = PrivateRedis::start().await;
    let (app, _) = two_tier_app(&redis.url()).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    let shared_hits = |app: &TestApp| {
        let router = app.router.clone();
        async move {
            let health = send(&router, Method::GET, "/api/health/database", None).await;
            let kinds = health.json["cache"]["kinds"].as_array().unwrap().clone();
            (kinds.iter().map(|k| k["sharedHits"].as_u64().unwrap()).sum::<u64>(), health.json["cache"].clone())
        }
    };
    assert_eq!(project_name(&app.router, &owner, &project).await, "A project");
    let (_, status) = shared_hits(&app).await;
    assert_eq!(status["breaker"], "closed");

    // Slow: Redis sleeps for 5 s; requests still answer, bounded by the 50 ms Redis timeout
    // rather than by the sleep: they finish while the sleep is still running.
    let mut control = redis_connection(&redis.url()).await;
    let probe = redis_connection(&redis.url()).await;
    let slow = tokio::spawn(async move {
        let slept: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(5).query_async(&mut control).await;
        slept.expect("DEBUG SLEEP runs");
    });
    sleep_started(probe, &slow).await;
    let uri = format!("/api/projects/{project}");
    app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"name": "While slow"}))).await.expect(StatusCode::OK);
    assert_eq!(project_name(&app.router, &owner, &project).await, "While slow");
    assert!(!slow.is_finished(), "a request waited for the slow Redis to wake up");
    slow.await.unwrap();

    // Stopped mid-run: requests keep succeeding from the database.
    redis.stop().await;
    for n in 0..5 {
        let name = format!("While down {n}");
        let response = app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"name": name}))).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(project_name(&app.router, &owner, &project).await, name);
    }
    let (_, status) = shared_hits(&app).await;
    assert_eq!(status["breaker"], "open");

    // Back: the subscription reconnects (flushing the local tier) and, after the breaker's
    // probe, the shared tier serves hits again.
    let reconnects_before = status["reconnects"].as_u64().unwrap();
    redis.restart().await;
    within(Duration::from_secs(15), || async {
        let _ = project_name(&app.router, &owner, &project).await;
        let (_, status) = shared_hits(&app).await;
        status["breaker"] == "closed" && status["reconnects"].as_u64().unwrap() > reconnects_before
    })
    .await;
    // The invalidations Redis missed while down are sent again.
    within(Duration::from_secs(15), || async { shared_hits(&app).await.1["pendingInvalidations"] == 0 }).await;
    // With the shared tier back, a write through A and a read through A put the fresh value
    // in the restarted Redis; a new instance B, with an empty local tier, must get it from
    // there: a shared hit, not a load.
    let response = app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"name": "After recovery"}))).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(project_name(&app.router, &owner, &project).await, "After recovery");
    let settings = cache_settings(&app, &redis.url(), &app_namespace(&app).await);
    let other = instance(&app, &settings);
    assert_eq!(project_name(&other, &owner, &project).await, "After recovery");
    let other_health = send(&other, Method::GET, "/api/health/database", None).await;
    let project_stats =
        other_health.json["cache"]["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == "project").cloned();
    let project_stats = project_stats.unwrap();
    assert_eq!(
        (project_stats["sharedHits"].as_u64(), project_stats["loads"].as_u64()),
        (Some(1), Some(0)),
        "{project_stats}"
    );
}

/// Returns once Redis has begun `DEBUG SLEEP`: a PING on `probe`, connected before the sleep,
/// goes unanswered while the sleeping command is still outstanding. (A Redis busy for any other
/// reason only makes this return early, which the caller's check tolerates.)
async fn sleep_started(mut probe: redis::aio::MultiplexedConnection, sleeper: &tokio::task::JoinHandle<()>) {
    loop {
        assert!(!sleeper.is_finished(), "DEBUG SLEEP ended before it was seen");
        let ping = redis::cmd("PING");
        if tokio::time::timeout(Duration::from_millis(100), ping.query_async::<String>(&mut probe)).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

async fn app_namespace(app: &TestApp) -> String {
    let health = app.get("/api/health/database").await;
    health.json["cache"]["namespace"].as_str().unwrap().split(':').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_clear_that_cannot_reach_redis_says_the_cache_is_unavailable() {
    // Nothing listens on port 1: every Redis call fails at once.
    let app = TestApp::with_settings(&[("redis.url", "redis://127.0.0.1:1"), ("admin_token", ADMIN_TOKEN)]).await;
    let cleared = app.call(Method::POST, "/api/cache/clear", Some(ADMIN_TOKEN), None).await;
    assert_eq!(cleared.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(cleared.error_code(), "cache_unavailable");
}

/// A logout whose invalidation Redis refuses (it answers errors: out of memory) still ends
/// the session on every instance within the local TTL, never served from the shared tier; and
/// the refused invalidation is sent again once Redis takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_redis_refuses_ends_the_session_everywhere_within_the_local_ttl() {
    let redis = PrivateRedis::start().await;
    let namespace = namespace();
    let overrides =
        [("redis.url", redis.url()), ("cache.namespace", namespace.clone()), ("cache.local_ttl_secs", "1".to_owned())];
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let app = TestApp::with_settings(&overrides).await;
    let other = instance(&app, &app.db.settings(&overrides));
    let owner = app.user("Owner").await;
    assert_eq!(session_status(&other, &owner.token).await, StatusCode::OK, "B has the session cached");

    let mut control = redis_connection(&redis.url()).await;
    let refuse_writes = |limit: &'static str| redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).clone();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async(&mut control)
        .await
        .unwrap();
    let _: () = refuse_writes("1").query_async(&mut control).await.unwrap();
    let refused: redis::RedisResult<i64> = redis::cmd("INCR").arg("probe").query_async(&mut control).await;
    assert!(refused.is_err(), "Redis refuses writes");

    app.call(Method::POST, "/api/auth/logout", Some(&owner.token), None).await.expect(StatusCode::NO_CONTENT);
    within(Duration::from_secs(10), || async {
        session_status(&other, &owner.token).await == StatusCode::UNAUTHORIZED
    })
    .await;

    let pending = || async {
        let health = send(&app.router, Method::GET, "/api/health/database", None).await;
        health.json["cache"]["pendingInvalidations"].as_u64().unwrap()
    };
    assert!(pending().await >= 1, "the logout's invalidation waits to be sent again");

    // Redis takes writes again: the invalidation is re-sent, and B still refuses the token.
    let _: () = refuse_writes("0").query_async(&mut control).await.unwrap();
    within(Duration::from_secs(10), || async { pending().await == 0 }).await;
    let generation = format!("{namespace}:v1:gen:session:*");
    let keys: Vec<String> = redis::cmd("KEYS").arg(&generation).query_async(&mut control).await.unwrap();
    assert!(!keys.is_empty(), "the session's generation was bumped in Redis");
    for _ in 0..5 {
        assert_eq!(session_status(&other, &owner.token).await, StatusCode::UNAUTHORIZED);
    }
}

/// What `GET /api/projects/{project}` answers `token` (or an anonymous caller) through `router`.
async fn project_status(router: &Router, project: &str, token: Option<&str>) -> StatusCode {
    crate::support::call(router, Method::GET, &format!("/api/projects/{project}"), token, None).await.status
}

/// Reads are checked on cached access facts; every change of who may read moves the project's
/// generation, so another instance that cached the facts refuses within a second.
#[tokio::test]
async fn a_removed_member_and_a_project_made_private_are_refused_on_every_instance_within_a_second() {
    let (app, settings) = two_tier_app(&shared_redis_url()).await;
    let other = instance(&app, &settings);
    let owner = app.user("Owner").await;
    let member = app.user("Member").await;
    let project = app.project(&owner, "PUBLIC").await;
    app.add_collaborator(&project, &member, "EDITOR").await;
    let private = app.project(&owner, "PRIVATE").await;
    app.add_collaborator(&private, &member, "VIEWER").await;
    assert_eq!(project_status(&other, &private, Some(&member.token)).await, StatusCode::OK, "B caches the facts");
    assert_eq!(project_status(&other, &project, None).await, StatusCode::OK, "B caches the anonymous facts");

    let uri = format!("/api/projects/{private}/members/{}", member.id);
    app.call(Method::DELETE, &uri, Some(&owner.token), None).await.expect(StatusCode::NO_CONTENT);
    within(Duration::from_secs(1), || async {
        project_status(&other, &private, Some(&member.token)).await == StatusCode::NOT_FOUND
    })
    .await;

    let uri = format!("/api/projects/{project}");
    app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"visibility": "PRIVATE"})))
        .await
        .expect(StatusCode::OK);
    within(Duration::from_secs(1), || async { project_status(&other, &project, None).await == StatusCode::NOT_FOUND })
        .await;
    assert_eq!(project_status(&other, &project, Some(&member.token)).await, StatusCode::OK, "members still read it");
}

/// A project read the cache holds costs no database call: its access facts, the project and
/// its first file page all come from this process's tier.
#[tokio::test]
async fn a_cached_project_read_loads_nothing_from_the_database() {
    let (app, _) = two_tier_app(&shared_redis_url()).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    let loads = |kinds: &[vibing2::cache::KindStats], kind: &str| {
        kinds.iter().find(|stats| stats.kind == kind).map(|stats| (stats.requests, stats.loads)).unwrap()
    };
    assert_eq!(project_status(&app.router, &project, Some(&owner.token)).await, StatusCode::OK);
    let before = app.state.cache.status().await.kinds;
    assert_eq!(project_status(&app.router, &project, Some(&owner.token)).await, StatusCode::OK);
    let after = app.state.cache.status().await.kinds;
    for kind in ["access", "project"] {
        let ((requests_before, loads_before), (requests_after, loads_after)) =
            (loads(&before, kind), loads(&after, kind));
        assert_eq!(requests_after, requests_before + 1, "{kind}: asked once more");
        assert_eq!(loads_after, loads_before, "{kind}: loaded nothing");
    }
    assert_eq!(
        loads(&after, "file_listing"),
        loads(&before, "file_listing"),
        "the first file page is in the project's entry"
    );
}

/// A loaded value is stored in Redis after the response, stamped with its generation; another
/// instance then finds it there with the generation, in one round trip, without a load. A
/// remembered generation that is checked again and has not moved keeps the local entries it
/// names: the read after the check is a local hit.
#[tokio::test]
async fn a_loaded_value_reaches_redis_after_the_response_and_survives_a_generation_check() {
    let namespace = namespace();
    let app = TestApp::with_settings(&[
        ("redis.url", &shared_redis_url()),
        ("cache.namespace", &namespace),
        ("cache.local_ttl_secs", "1"),
    ])
    .await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    assert_eq!(project_status(&app.router, &project, None).await, StatusCode::OK);
    let mut redis = redis_connection(&shared_redis_url()).await;
    let key = format!("{namespace}:v1:project:project:{project}:with-files:100");
    within(Duration::from_secs(5), || {
        let (mut redis, key) = (redis.clone(), key.clone());
        async move { redis.exists::<_, bool>(&key).await.unwrap() }
    })
    .await;
    let stored: Vec<u8> = redis.get(&key).await.unwrap();
    assert!(stored.len() > 9, "a generation stamp, then the value");
    let project_stats =
        |kinds: Vec<vibing2::cache::KindStats>| kinds.into_iter().find(|k| k.kind == "project").unwrap();
    assert_eq!(project_stats(app.state.cache.status().await.kinds).shared_stores, 1);

    // Past `local_ttl_secs` the generation is checked with Redis again; it has not moved.
    let before = project_stats(app.state.cache.status().await.kinds);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(project_status(&app.router, &project, None).await, StatusCode::OK);
    let after = project_stats(app.state.cache.status().await.kinds);
    assert_eq!(after.local_hits, before.local_hits + 1, "kept past the check");
    assert_eq!(after.loads, before.loads);

    // A second instance finds the value in Redis.
    let settings = cache_settings(&app, &shared_redis_url(), &namespace);
    let other = vibing2::state::AppState::new(app.pool.clone(), settings).unwrap();
    let router = vibing2::app::router(other.clone());
    assert_eq!(project_status(&router, &project, None).await, StatusCode::OK);
    let read = project_stats(other.cache.status().await.kinds);
    assert_eq!((read.shared_hits, read.loads), (1, 0), "from Redis, not loaded");
}
