//! Dependencies failing under load: bounded request loops of mixed reads and writes, over
//! two instances, run while the fault happens, and every request is checked.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::json;

use crate::support::{call, instance, send, two_tier_app, within, PrivateRedis, TestUser};

/// What the load loops saw.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    failed: AtomicU64,
    stale: AtomicU64,
}

/// The two instances a writer talks to: its own, where it writes and reads its writes back,
/// and the other, where it reads everyone's projects.
struct Instances {
    own: Router,
    other: Router,
}

/// One writer: renames its own project and reads it straight back on the same instance (it
/// must see its own write, whatever the cache is doing), and reads the others' public
/// projects and discovery on the other instance, until `stop`.
async fn writer(
    instances: Instances,
    me: Arc<TestUser>,
    mine: String,
    others: Vec<String>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let Instances { own, other: elsewhere } = instances;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let name = format!("{} {round}", me.email);
        let uri = format!("/api/projects/{mine}");
        let written = call(&own, Method::PATCH, &uri, Some(&me.token), Some(json!({ "name": name }))).await;
        let read = call(&own, Method::GET, &uri, Some(&me.token), None).await;
        let other = &others[round as usize % others.len()];
        let theirs = call(&elsewhere, Method::GET, &format!("/api/projects/{other}"), Some(&me.token), None).await;
        let discovered = call(&elsewhere, Method::GET, "/api/discover?limit=5", None, None).await;
        tally.requests.fetch_add(4, Ordering::Relaxed);
        for response in [&written, &read, &theirs, &discovered] {
            if response.status != StatusCode::OK {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("failed: {} {}", response.status, response.json);
            }
        }
        if read.status == StatusCode::OK && read.json["name"] != name.as_str() {
            tally.stale.fetch_add(1, Ordering::Relaxed);
            eprintln!("stale: wrote {name:?}, read {}", read.json["name"]);
        }
    }
}

/// Shared-tier hits over both instances.
async fn shared_hits(instances: &[&Router; 2]) -> u64 {
    let mut hits = 0;
    for router in instances {
        let health = send(router, Method::GET, "/api/health/database", None).await;
        hits += health.json["cache"]["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kind| kind["sharedHits"].as_u64().unwrap())
            .sum::<u64>();
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_load_fails_no_request_and_serves_shared_hits_again_within_5_s() {
    let mut redis = PrivateRedis::start().await;
    let (app, settings) = two_tier_app(&redis.url()).await;
    let second = instance(&app, &settings);
    let both = [&app.router, &second];
    let mut users = Vec::new();
    let mut projects = Vec::new();
    for n in 0..4 {
        let user = Arc::new(app.user(&format!("Loader{n}")).await);
        projects.push(app.project(&user, "PUBLIC").await);
        users.push(user);
    }
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = users
        .iter()
        .zip(&projects)
        .enumerate()
        .map(|(n, (user, mine))| {
            let others = projects.iter().filter(|project| *project != mine).cloned().collect();
            let (own, other) = if n % 2 == 0 { (&app.router, &second) } else { (&second, &app.router) };
            let instances = Instances { own: own.clone(), other: other.clone() };
            tokio::spawn(writer(instances, user.clone(), mine.clone(), others, tally.clone(), stop.clone()))
        })
        .collect();
    let requests_by = |deadline: u64| {
        let tally = tally.clone();
        async move {
            within(Duration::from_secs(60), || async { tally.requests.load(Ordering::Relaxed) >= deadline }).await;
        }
    };

    requests_by(200).await;
    redis.stop().await;
    let killed_at = tally.requests.load(Ordering::Relaxed);
    requests_by(killed_at + 400).await;
    let down = send(&app.router, Method::GET, "/api/health/database", None).await;
    assert_eq!(down.json["cache"]["breaker"], "open", "the load ran with Redis down: {}", down.json["cache"]);

    let hits_before = shared_hits(&both).await;
    redis.restart().await;
    let back = Instant::now();
    within(Duration::from_secs(5), || async { shared_hits(&both).await > hits_before }).await;
    let recovered_after = back.elapsed();
    let restarted_at = tally.requests.load(Ordering::Relaxed);
    requests_by(restarted_at + 200).await;
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.await.unwrap();
    }

    let (requests, failed, stale) = (
        tally.requests.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.stale.load(Ordering::Relaxed),
    );
    eprintln!("{requests} requests, {failed} failed, {stale} stale; shared hits again {recovered_after:?} after Redis came back");
    assert_eq!((failed, stale), (0, 0), "{requests} requests");
}

/// One writer against a database that will go away: posts numbered messages and records
/// each one acknowledged with a 2xx, and each answer's status and time.
async fn message_writer(
    router: Router,
    token: String,
    project: String,
    log: Arc<std::sync::Mutex<WriteLog>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let content = format!("{project} message {n}");
        let started = Instant::now();
        let uri = format!("/api/projects/{project}/messages");
        let response =
            call(&router, Method::POST, &uri, Some(&token), Some(json!({"role": "user", "content": content}))).await;
        let took = started.elapsed();
        {
            let mut log = log.lock().unwrap();
            match response.status {
                status if status.is_success() => log.acknowledged.push(content),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(response.error_code(), "database_unavailable", "{}", response.json);
                    assert!(response.headers.contains_key("retry-after"), "a 503 says when to retry");
                    log.refused += 1;
                    log.slowest_refusal = log.slowest_refusal.max(took);
                }
                other => panic!("{other} during the outage: {}", response.json),
            }
        }
        if response.status == StatusCode::SERVICE_UNAVAILABLE {
            // As a client obeying Retry-After would, only sooner: the test keeps probing.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[derive(Default)]
struct WriteLog {
    acknowledged: Vec<String>,
    refused: u64,
    slowest_refusal: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_loses_no_acknowledged_write_and_recovers_by_itself() {
    use vibing2::db::embedded::EmbeddedCluster;
    use vibing2::jobs::{Attempt, Scheduler};

    let dir = tempfile::tempdir().unwrap();
    let cluster = EmbeddedCluster::start(dir.path(), &[]).await.unwrap();
    let url = secrecy::ExposeSecret::expose_secret(&cluster.url()).to_owned();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    vibing2::db::migrate::run(&mut conn).await.unwrap();
    drop(conn);
    // Short pool and connect timeouts bound how long a job waits for the missing server.
    let settings = vibing2::config::Settings::from_pairs([
        ("database.url", url.clone()),
        ("database.pool_timeout_secs", "1".to_owned()),
        ("database.connect_timeout_secs", "1".to_owned()),
        // The writers are one client, faster than its write limit.
        ("rate_limits.enabled", "false".to_owned()),
    ])
    .unwrap();
    let pool = vibing2::db::connect(&settings.database, &cluster.url()).await.unwrap();
    let state = vibing2::state::AppState::new(pool.clone(), settings.clone()).unwrap();
    let router = vibing2::app::router(state.clone());
    let signup = json!({"name": "W", "email": "w@example.com", "password": "writer-password"});
    call(&router, Method::POST, "/api/auth/signup", None, Some(signup)).await;
    let login = call(
        &router,
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"email": "w@example.com", "password": "writer-password"})),
    )
    .await;
    let token = login.json["token"].as_str().unwrap().to_owned();
    let mut projects = Vec::new();
    for n in 0..3 {
        let created = call(
            &router,
            Method::POST,
            "/api/projects",
            Some(&token),
            Some(json!({"name": format!("p{n}"), "projectType": "website"})),
        )
        .await;
        projects.push(created.json["id"].as_str().unwrap().to_owned());
    }

    let log = Arc::new(std::sync::Mutex::new(WriteLog::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = projects
        .iter()
        .map(|project| {
            tokio::spawn(message_writer(router.clone(), token.clone(), project.clone(), log.clone(), stop.clone()))
        })
        .collect();
    let acknowledged = || log.lock().unwrap().acknowledged.len();
    within(Duration::from_secs(60), || async { acknowledged() >= 100 }).await;

    cluster.halt().await.unwrap();
    within(Duration::from_secs(30), || async { log.lock().unwrap().refused >= 20 }).await;
    let scheduler = Scheduler::new(pool.clone(), settings.jobs.clone());
    let during = scheduler.tick().await;
    assert!(
        during.iter().all(|(_, attempt)| *attempt == Attempt::Failed),
        "jobs fail, bounded, while it is down: {during:?}"
    );

    cluster.resume().await.unwrap();
    let back = Instant::now();
    let before = acknowledged();
    within(Duration::from_secs(5), || async { acknowledged() > before }).await;
    let recovered_after = back.elapsed();
    within(Duration::from_secs(60), || async { acknowledged() >= before + 100 }).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let after = scheduler.tick().await;
    assert!(after.iter().all(|(_, attempt)| *attempt == Attempt::Ran), "the jobs run again: {after:?}");

    let stored: Vec<String> = sqlx::query_scalar(r#"SELECT "content" FROM "Message""#).fetch_all(&pool).await.unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let log = std::mem::take(&mut *log.lock().unwrap());
    let lost: Vec<&String> = log.acknowledged.iter().filter(|content| !stored.contains(*content)).collect();
    eprintln!(
        "{} writes acknowledged, {} refused with 503 (slowest refusal {:?}), {} lost; writes again {recovered_after:?} after PostgreSQL came back",
        log.acknowledged.len(),
        log.refused,
        log.slowest_refusal,
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // The design answers within about a second (the probe runs every 500 ms); this bound only
    // catches a hang.
    assert!(log.slowest_refusal < Duration::from_secs(5), "a refusal took {:?}", log.slowest_refusal);
    drop((state, router, pool));
    cluster.stop().await.unwrap();
}
