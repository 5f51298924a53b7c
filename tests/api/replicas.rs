//! Read replicas against a real streaming standby: a private primary and a standby made with
//! `pg_basebackup -R`, each on a free port. Routing (a read answered by the standby whose
//! replay is paused, so it can only come from there), read-your-writes across two instances,
//! the lag limit taking a replica out of rotation and back, and a replica killed mid-service.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::Router;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use vibing2::config::Settings;
use vibing2::db::embedded::EmbeddedCluster;
use vibing2::state::AppState;

use crate::support::{call, namespace, shared_redis_url, ADMIN_TOKEN};

/// A primary and its standby, in a directory of their own; both are stopped (and the
/// directory removed) when it goes, however the test ends.
struct Pair {
    primary: Option<EmbeddedCluster>,
    standby: Option<EmbeddedCluster>,
    _dir: tempfile::TempDir,
}

impl Pair {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let primary = EmbeddedCluster::start(&dir.path().join("primary"), &[("fsync", "off")]).await.unwrap();
        let mut conn = PgConnection::connect(primary.url().expose_secret()).await.unwrap();
        vibing2::db::migrate::run(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let standby = primary.standby(&dir.path().join("standby"), &[("fsync", "off")]).await.unwrap();
        Pair { primary: Some(primary), standby: Some(standby), _dir: dir }
    }

    fn primary_url(&self) -> String {
        self.primary.as_ref().unwrap().url().expose_secret().to_owned()
    }

    fn standby_url(&self) -> String {
        self.standby.as_ref().unwrap().url().expose_secret().to_owned()
    }

    async fn standby_connection(&self) -> PgConnection {
        PgConnection::connect(&self.standby_url()).await.unwrap()
    }

    /// Pauses the standby's replay and waits until it has stopped.
    async fn pause_replay(&self) {
        let mut standby = self.standby_connection().await;
        sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut standby).await.unwrap();
        let started = Instant::now();
        loop {
            let state: String =
                sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()").fetch_one(&mut standby).await.unwrap();
            if state == "paused" {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the replay never paused ({state})");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn resume_replay(&self) {
        let mut standby = self.standby_connection().await;
        sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut standby).await.unwrap();
    }

    /// One instance of the service over the pair, sharing Redis under `namespace`.
    async fn instance(&self, namespace: &str, overrides: &[(&str, &str)]) -> (AppState, Router) {
        let mut pairs = vec![
            ("database.url", self.primary_url()),
            // Trust authentication ignores the password; the health must never show it.
            ("database.replica_urls", self.standby_url().replace("postgres@", "postgres:replica-secret@")),
            ("database.replica_probe_ms", "50".to_owned()),
            ("redis.url", shared_redis_url()),
            ("cache.namespace", namespace.to_owned()),
            ("admin_token", ADMIN_TOKEN.to_owned()),
            ("rate_limits.enabled", "false".to_owned()),
        ];
        pairs.extend(overrides.iter().map(|(key, value)| (*key, (*value).to_owned())));
        let settings = Settings::from_pairs(pairs).unwrap();
        let pool = vibing2::db::connect(&settings.database, settings.database.url.as_ref().unwrap()).await.unwrap();
        let state = AppState::new(pool, settings).unwrap();
        let router = vibing2::app::router(state.clone());
        (state, router)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let clusters = [self.standby.take(), self.primary.take()];
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let stopping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                for cluster in clusters.into_iter().flatten() {
                    let _ = cluster.crash().await;
                }
            });
        });
        let _ = stopping.join();
    }
}

/// The first replica in the instance's detailed health.
/// The instance's `/metrics` samples of `family` for its replica: (value) by the replica label.
async fn replica_metric(router: &Router, family: &str, replica: &str) -> Option<f64> {
    let request = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let exposition = openmetrics_parser::prometheus::parse_prometheus(&text).expect("valid exposition");
    let samples = exposition.families.get(family)?;
    let value = samples.iter_samples().find_map(|sample| {
        let labels = sample.get_labelset().unwrap();
        (labels.get_label_value("replica") == Some(replica)).then(|| match sample.value {
            openmetrics_parser::PrometheusValue::Gauge(ref gauge) => gauge.as_f64(),
            openmetrics_parser::PrometheusValue::Counter(ref counter) => counter.value.as_f64(),
            _ => f64::NAN,
        })
    });
    value
}

async fn replica_health(router: &Router) -> Value {
    let health = call(router, Method::GET, "/api/health/database?detailed=true", Some(ADMIN_TOKEN), None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.json);
    health.json["replicas"][0].clone()
}

/// Polls the instance's health until its replica is in `state`, at most 20 s; returns it.
async fn wait_for_state(router: &Router, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let replica = replica_health(router).await;
        if replica["state"] == state {
            return replica;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the replica never became {state}: {replica}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Signs a user up and logs them in: their token.
async fn user(router: &Router, name: &str) -> String {
    let email = format!("{name}@example.com");
    let account = json!({"name": name, "email": email, "password": "replica-password"});
    let signup = call(router, Method::POST, "/api/auth/signup", None, Some(account)).await;
    assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.json);
    let credentials = json!({"email": email, "password": "replica-password"});
    let login = call(router, Method::POST, "/api/auth/login", None, Some(credentials)).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    login.json["token"].as_str().unwrap().to_owned()
}

/// A PUBLIC project of `token`'s holder with `index.html` holding `content`: its id.
async fn public_project(router: &Router, token: &str, content: &str) -> String {
    let body = json!({"name": "Replicated", "projectType": "website", "visibility": "PUBLIC"});
    let created = call(router, Method::POST, "/api/projects", Some(token), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    write_file(router, token, &id, content).await;
    id
}

async fn write_file(router: &Router, token: &str, project: &str, content: &str) {
    let batch = json!({"operations": [{"op": "upsert", "path": "index.html", "content": content}]});
    let uri = format!("/api/projects/{project}/files");
    let written = call(router, Method::PUT, &uri, Some(token), Some(batch)).await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.json);
}

/// `index.html` as `token`'s holder (or anonymously) reads it: one file is never cached, so
/// this is the pool's answer.
async fn read_file(router: &Router, token: Option<&str>, project: &str) -> String {
    let read = call(router, Method::GET, &format!("/api/projects/{project}/files/index.html"), token, None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.json);
    read.json["content"].as_str().unwrap().to_owned()
}

/// Polls until an anonymous read of the file through `router` says `content`, at most 20 s.
async fn wait_for_content(router: &Router, project: &str, content: &str) {
    let started = Instant::now();
    while read_file(router, None, project).await != content {
        assert!(started.elapsed() < Duration::from_secs(20), "the file never read {content:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_to_the_replica_and_a_writer_reads_their_own_writes_on_every_instance() {
    let pair = Pair::start().await;
    let namespace = namespace();
    // A lag limit far away, so the paused replica stays in rotation; a short window, so the
    // test sees it end.
    let lenient = [("database.replica_max_lag_ms", "600000"), ("database.read_your_writes_ms", "1500")];
    let (_a, first) = pair.instance(&namespace, &lenient).await;
    let (_b, second) = pair.instance(&namespace, &lenient).await;
    wait_for_state(&first, "in_rotation").await;
    wait_for_state(&second, "in_rotation").await;

    let owner = user(&first, "owner").await;
    let project = public_project(&first, &owner, "v1").await;
    wait_for_content(&second, &project, "v1").await;
    let mut standby = pair.standby_connection().await;
    let serving: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vibing2'")
        .fetch_one(&mut standby)
        .await
        .unwrap();
    assert!(serving > 0, "the service's read pool has connections on the standby");

    pair.pause_replay().await;
    write_file(&first, &owner, &project, "v2").await;
    // The writer reads the write at once, on the instance that took it and on the other one.
    assert_eq!(read_file(&first, Some(&owner), &project).await, "v2");
    assert_eq!(read_file(&second, Some(&owner), &project).await, "v2");
    // Anyone else reads the replica, which has not replayed it: the read came from there.
    assert_eq!(read_file(&second, None, &project).await, "v1");
    let reader = user(&second, "reader").await;
    // (signing up and logging in are not writes of a signed-in user: the reader is not marked)
    assert_eq!(read_file(&second, Some(&reader), &project).await, "v1");
    let replica = replica_health(&second).await;
    assert!(replica["reads"].as_u64().unwrap() > 0, "{replica}");
    assert_eq!(replica["state"], "in_rotation", "{replica}");
    assert!(replica["lagBytes"].as_i64().unwrap() > 0, "the paused replica is behind: {replica}");

    // Once the window has passed, the writer's reads go back to the replica.
    let started = Instant::now();
    while read_file(&second, Some(&owner), &project).await != "v1" {
        assert!(started.elapsed() < Duration::from_secs(20), "the writer's window never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pair.resume_replay().await;
    wait_for_content(&second, &project, "v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_replica_leaves_the_rotation_until_it_catches_up_and_a_dead_one_is_skipped() {
    let mut pair = Pair::start().await;
    let (_state, router) = pair.instance(&namespace(), &[("database.replica_max_lag_ms", "300")]).await;
    let in_rotation = wait_for_state(&router, "in_rotation").await;
    let url = in_rotation["url"].as_str().unwrap();
    assert!(url.contains("postgres:***@") && !url.contains("replica-secret"), "{url}");
    let owner = user(&router, "owner").await;
    let project = public_project(&router, &owner, "v1").await;
    wait_for_content(&router, &project, "v1").await;

    pair.pause_replay().await;
    write_file(&router, &owner, &project, "v2").await;
    assert_eq!(replica_metric(&router, "vibing2_replica_in_rotation", url).await, Some(1.0));
    let lagging = wait_for_state(&router, "lagging").await;
    assert_eq!(replica_metric(&router, "vibing2_replica_in_rotation", url).await, Some(0.0), "lagging is out");
    assert!(replica_metric(&router, "vibing2_replica_lag_seconds", url).await.is_some_and(|lag| lag > 0.3));
    assert!(lagging["lagMs"].as_f64().unwrap() > 300.0, "{lagging}");
    assert!(lagging["lagBytes"].as_i64().unwrap() > 0, "{lagging}");
    // With no replica in rotation, everyone reads the primary.
    assert_eq!(read_file(&router, None, &project).await, "v2");

    pair.resume_replay().await;
    let caught_up = wait_for_state(&router, "in_rotation").await;
    assert!(caught_up["lagMs"].as_f64().unwrap() <= 300.0, "{caught_up}");
    let reads_before = caught_up["reads"].as_u64().unwrap();
    assert_eq!(read_file(&router, None, &project).await, "v2");
    assert!(replica_health(&router).await["reads"].as_u64().unwrap() > reads_before, "back in rotation");

    // Killed: every read still answers, on the primary, from the first one on.
    pair.standby.take().unwrap().crash().await.unwrap();
    for _ in 0..20 {
        assert_eq!(read_file(&router, None, &project).await, "v2");
    }
    let down = wait_for_state(&router, "down").await;
    assert!(down["error"].is_string(), "{down}");
    assert!(down["lagMs"].is_null(), "{down}");
    assert_eq!(read_file(&router, None, &project).await, "v2");
}
