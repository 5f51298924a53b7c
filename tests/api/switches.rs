//! The runtime switches take effect without a restart: through `PATCH /api/admin/switches`
//! (cache off and local, pool size, slow-query threshold, job pauses and intervals) and by
//! SIGHUP on a running `vibing2 serve`; each change shows in the detailed health.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use vibing2::jobs::{Attempt, Job, Scheduler};

use crate::support::{self, SpawnedServer, TestApp, TestDb, TestUser, ADMIN_TOKEN};

const SWITCHES: &str = "/api/admin/switches";

async fn switch(app: &TestApp, change: Value) -> Value {
    app.call(Method::PATCH, SWITCHES, Some(ADMIN_TOKEN), Some(change)).await.expect(StatusCode::OK).json
}

async fn project_name(app: &TestApp, user: &TestUser, project: &str) -> String {
    let uri = format!("/api/projects/{project}");
    let response = app.call(Method::GET, &uri, Some(&user.token), None).await.expect(StatusCode::OK);
    response.json["name"].as_str().unwrap().to_owned()
}

async fn rename_in_sql(app: &TestApp, project: &str, name: &str) {
    sqlx::query(r#"UPDATE "Project" SET "name" = $2 WHERE "id" = $1"#)
        .bind(project)
        .bind(name)
        .execute(&app.pool)
        .await
        .unwrap();
}

/// The detailed health's `cache.kinds` entry for project metadata.
async fn project_cache_figures(app: &TestApp) -> Value {
    let health = app.admin_get("/api/health/database?detailed=true").await.expect(StatusCode::OK);
    health.json["cache"]["kinds"].as_array().unwrap().iter().find(|kind| kind["kind"] == "project").unwrap().clone()
}

fn figure(figures: &Value, name: &str) -> u64 {
    figures[name].as_u64().unwrap_or_else(|| panic!("no {name} in {figures}"))
}

#[tokio::test]
async fn the_switches_need_the_admin_token_and_refuse_bad_values_whole() {
    let off = TestApp::new().await;
    assert_eq!(off.get(SWITCHES).await.status, StatusCode::NOT_FOUND, "no ADMIN_TOKEN: the endpoint is off");

    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    let anonymous = app.get(SWITCHES).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.error_code(), "unauthorized");
    let change = json!({"cache": "off"});
    let wrong_token = app.call(Method::PATCH, SWITCHES, Some("not-the-admin-token"), Some(change.clone())).await;
    assert_eq!(wrong_token.status, StatusCode::UNAUTHORIZED);
    let anonymous_change = app.call(Method::PATCH, SWITCHES, None, Some(change)).await;
    assert_eq!(anonymous_change.status, StatusCode::UNAUTHORIZED);

    let before = app.admin_get(SWITCHES).await.expect(StatusCode::OK).json;
    assert_eq!(before["cache"], "on");
    assert_eq!(before["poolSize"], 25);
    assert_eq!(before["lastChange"], Value::Null);
    let bad = [
        json!({"cache": "sometimes"}),
        json!({"poolSize": 0}),
        json!({"poolSize": 26}),
        json!({"poolSize": -1}),
        json!({"slowQueryMs": -5}),
        json!({"slowQueryMs": 86_400_001u64}),
        json!({"jobsPaused": "yes"}),
        json!({"jobs": {"no_such_job": {"paused": true}}}),
        json!({"jobs": {"analyze": {"intervalSecs": 0}}}),
        json!({"jobs": {"analyze": {"often": true}}}),
        json!({"unknownSwitch": 1}),
        // A good value beside a bad one: nothing is applied.
        json!({"cache": "off", "poolSize": 0}),
    ];
    for body in bad {
        let response = app.call(Method::PATCH, SWITCHES, Some(ADMIN_TOKEN), Some(body.clone())).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", response.json);
        assert_eq!(response.error_code(), "unprocessable", "{body}");
    }
    let malformed = axum::http::Request::patch(SWITCHES)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{\"cache\": "))
        .unwrap();
    let malformed = app.send_request(malformed).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{}", malformed.json);
    assert_eq!(malformed.error_code(), "bad_request");
    let after = app.admin_get(SWITCHES).await.expect(StatusCode::OK).json;
    assert_eq!(after, before, "no refused change left a trace");
}

/// Off: every read goes to the database, so a change made behind the service's back shows
/// at once; on again: nothing cached before the switch is served.
#[tokio::test]
async fn cache_off_reads_the_database_and_on_again_serves_nothing_from_before() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN), ("cache.local_ttl_secs", "300")]).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    assert_eq!(project_name(&app, &owner, &project).await, "A project");
    rename_in_sql(&app, &project, "Renamed in SQL").await;
    assert_eq!(project_name(&app, &owner, &project).await, "A project", "cached while the cache is on");

    let report = switch(&app, json!({"cache": "off"})).await;
    assert_eq!(report["cache"], "off");
    let loads_before = figure(&project_cache_figures(&app).await, "loads");
    assert_eq!(project_name(&app, &owner, &project).await, "Renamed in SQL");
    rename_in_sql(&app, &project, "Renamed again").await;
    assert_eq!(project_name(&app, &owner, &project).await, "Renamed again");
    let loads_after = figure(&project_cache_figures(&app).await, "loads");
    assert_eq!(loads_after - loads_before, 2, "each read loaded from the database");

    switch(&app, json!({"cache": "on"})).await;
    assert_eq!(project_name(&app, &owner, &project).await, "Renamed again", "not the entry from before the switch");
    rename_in_sql(&app, &project, "Third name").await;
    assert_eq!(project_name(&app, &owner, &project).await, "Renamed again", "cached again");
    // A write through the service still invalidates.
    let uri = format!("/api/projects/{project}");
    let patch = json!({"name": "Through the API"});
    app.call(Method::PATCH, &uri, Some(&owner.token), Some(patch)).await.expect(StatusCode::OK);
    assert_eq!(project_name(&app, &owner, &project).await, "Through the API");

    let health = app.admin_get("/api/health/database?detailed=true").await.expect(StatusCode::OK);
    let switches = &health.json["switches"];
    assert_eq!(switches["cache"], "on");
    assert_eq!(health.json["cache"]["switch"], "on");
    assert_eq!(switches["lastChange"]["source"], "api");
    assert_eq!(switches["lastChange"]["changed"], json!(["cache"]));
    assert!(switches["lastChange"]["at"].is_string());
}

/// Local: the process's tier serves alone and Redis sees no read or store, as the cache's
/// shared-tier counters show; a write is still read back; switched on, Redis is used again.
#[tokio::test]
async fn cache_local_leaves_redis_untouched() {
    let (app, _) = support::two_tier_app(&support::shared_redis_url()).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    let shared = |figures: &Value| {
        figure(figures, "sharedHits") + figure(figures, "sharedMisses") + figure(figures, "sharedErrors")
    };

    switch(&app, json!({"cache": "local"})).await;
    let before = project_cache_figures(&app).await;
    for _ in 0..3 {
        assert_eq!(project_name(&app, &owner, &project).await, "A project");
    }
    let uri = format!("/api/projects/{project}");
    app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"name": "Local"}))).await.expect(StatusCode::OK);
    assert_eq!(project_name(&app, &owner, &project).await, "Local", "a write is read back in local mode");
    let after = project_cache_figures(&app).await;
    assert!(figure(&after, "requests") >= figure(&before, "requests") + 4, "{before} -> {after}");
    assert!(figure(&after, "loads") > figure(&before, "loads"), "{before} -> {after}");
    assert_eq!(shared(&after), shared(&before), "Redis untouched in local mode: {before} -> {after}");

    switch(&app, json!({"cache": "on"})).await;
    assert_eq!(project_name(&app, &owner, &project).await, "Local");
    let on = project_cache_figures(&app).await;
    assert!(shared(&on) > shared(&after), "Redis is asked again once on: {after} -> {on}");
}

/// At pool size 1, of two requests that each need a connection while one holds it (waiting
/// on a lock), the second waits its pool timeout and answers 503; at 4 both hold one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_size_bounds_the_connections_checked_out_at_once() {
    let app = TestApp::with_settings(&[
        ("admin_token", ADMIN_TOKEN),
        ("database.connection_limit", "4"),
        ("database.pool_timeout_secs", "1"),
        ("database.statement_timeout_ms", "20000"),
        // A probe slowed by a busy machine must not mark the database down mid-test.
        ("database.probe_interval_ms", "5000"),
    ])
    .await;
    let owner = app.user("Crowd").await;
    let projects = [app.project(&owner, "PUBLIC").await, app.project(&owner, "PUBLIC").await];
    // Cache off: every read needs the pool (for the session, then the project).
    switch(&app, json!({"cache": "off", "poolSize": 1})).await;

    let mut blocker = app.db.connect().await;
    let mut lock = blocker.begin().await.unwrap();
    lock.execute(r#"LOCK TABLE "Project" IN ACCESS EXCLUSIVE MODE"#).await.unwrap();
    let started = Instant::now();
    let reads = read_concurrently(&app, &owner, &projects, started);
    while reads.iter().filter(|read| read.is_finished()).count() < 1 {
        assert!(started.elapsed() < Duration::from_secs(15), "neither request was answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = lock_waiters(&mut lock).await;
    assert_eq!(waiting, 1, "one request holds the one connection, waiting on the lock");
    lock.rollback().await.unwrap();
    let mut answers = Vec::new();
    for read in reads {
        answers.push(read.await.unwrap());
    }
    answers.sort_by_key(|(status, _, _)| *status);
    let (ok, timed_out) = (&answers[0], &answers[1]);
    assert_eq!(ok.0, StatusCode::OK);
    assert_eq!((timed_out.0, timed_out.1.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "database_timeout"));
    assert!(timed_out.2 >= Duration::from_millis(900), "it waited its pool timeout: {:?}", timed_out.2);

    // Grown back, both hold a connection at once.
    let report = switch(&app, json!({"poolSize": 4})).await;
    assert_eq!(report["poolSize"], 4);
    let mut lock = blocker.begin().await.unwrap();
    lock.execute(r#"LOCK TABLE "Project" IN ACCESS EXCLUSIVE MODE"#).await.unwrap();
    let started = Instant::now();
    let reads = read_concurrently(&app, &owner, &projects, started);
    // Both hold a connection at once while the lock is held, which size 1 never allowed.
    while app.pool.checked_out() < 2 {
        assert!(reads.iter().all(|read| !read.is_finished()), "a read was answered while the lock was held");
        assert!(started.elapsed() < Duration::from_secs(15), "the two requests never held a connection each");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lock.rollback().await.unwrap();
    for read in reads {
        assert_eq!(read.await.unwrap().0, StatusCode::OK);
    }
    let health = app.admin_get("/api/health/database?detailed=true").await.expect(StatusCode::OK);
    assert_eq!(health.json["pool"]["limit"], 4);
    assert_eq!(health.json["switches"]["poolSize"], 4);
}

type Answer = (StatusCode, String, Duration);

fn read_concurrently(
    app: &TestApp,
    owner: &TestUser,
    projects: &[String],
    started: Instant,
) -> Vec<tokio::task::JoinHandle<Answer>> {
    projects
        .iter()
        .map(|project| {
            let router = app.router.clone();
            let (uri, token) = (format!("/api/projects/{project}"), owner.token.clone());
            tokio::spawn(async move {
                let response = support::call(&router, Method::GET, &uri, Some(&token), None).await;
                let code = response.json["error"]["code"].as_str().unwrap_or_default().to_owned();
                (response.status, code, started.elapsed())
            })
        })
        .collect()
}

async fn lock_waiters(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn job_runs(app: &TestApp) -> Vec<(String, i64)> {
    sqlx::query_as(r#"SELECT "job", "runs" FROM "JobRun" ORDER BY "job""#).fetch_all(&app.pool).await.unwrap()
}

fn attempt(attempts: &[(Job, Attempt)], job: Job) -> Attempt {
    attempts.iter().find(|(j, _)| *j == job).unwrap().1.clone()
}

/// Paused, no job runs (none is recorded in `JobRun`); resumed, they run again; a shorter
/// interval makes a job due again sooner. The scheduler is the one the switches steer.
#[tokio::test]
async fn paused_jobs_do_not_run_and_intervals_change_on_the_running_scheduler() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    let scheduler =
        Scheduler::new(app.pool.clone(), app.state.settings.jobs.clone()).with_schedule(app.state.switches.jobs());

    switch(&app, json!({"jobsPaused": true})).await;
    let attempts = scheduler.tick().await;
    assert!(attempts.iter().all(|(_, attempt)| *attempt == Attempt::Paused), "{attempts:?}");
    assert!(job_runs(&app).await.is_empty(), "no run while paused");

    let report = switch(&app, json!({"jobsPaused": false, "jobs": {"analyze": {"paused": true}}})).await;
    assert_eq!(report["jobsPaused"], false);
    let attempts = scheduler.tick().await;
    assert_eq!(attempt(&attempts, Job::Analyze), Attempt::Paused);
    assert_eq!(attempt(&attempts, Job::CleanupExpired), Attempt::Ran);
    let runs = job_runs(&app).await;
    assert_eq!(runs.len(), Job::ALL.len() - 1, "every job but the paused one ran: {runs:?}");
    assert!(!runs.iter().any(|(job, _)| job == "analyze"));

    switch(&app, json!({"jobs": {"analyze": {"paused": false}, "cleanup_expired": {"intervalSecs": 1}}})).await;
    let attempts = scheduler.tick().await;
    assert_eq!(attempt(&attempts, Job::Analyze), Attempt::Ran, "resumed");
    // cleanup_expired ran within its old interval (a day); at 1 s it is due again soon.
    let started = Instant::now();
    loop {
        let attempts = scheduler.tick().await;
        if attempt(&attempts, Job::CleanupExpired) == Attempt::Ran {
            assert_eq!(attempt(&attempts, Job::RefreshProjectStats), Attempt::Skipped, "the others keep theirs");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the new interval never made the job due");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runs = job_runs(&app).await;
    assert!(runs.contains(&("cleanup_expired".to_owned(), 2)), "{runs:?}");

    let health = app.admin_get("/api/health/database?detailed=true").await.expect(StatusCode::OK);
    let jobs = health.json["switches"]["jobs"].as_array().unwrap();
    let cleanup = jobs.iter().find(|job| job["job"] == "cleanup_expired").unwrap();
    assert_eq!((cleanup["intervalSecs"].as_u64(), cleanup["paused"].as_bool()), (Some(1), Some(false)));
    let changed = &health.json["switches"]["lastChange"]["changed"];
    assert_eq!(changed, &json!(["jobs.cleanup_expired.intervalSecs", "jobs.analyze.paused"]));
}

/// The slow-query threshold is per process, so this runs on a server of its own: below the
/// threshold nothing is slow, at 0 ms every call is.
#[tokio::test]
async fn the_slow_query_threshold_changes_on_a_running_server() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(&db, &[("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let client = reqwest::Client::new();
    let slow = || async {
        let stats = client
            .get(format!("{}/api/monitor/queries?type=stats", server.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(stats.status(), 200);
        stats.json::<Value>().await.unwrap()["slow"].clone()
    };
    let patch = |change: Value| {
        let request = client.patch(format!("{}{SWITCHES}", server.base)).bearer_auth(ADMIN_TOKEN).json(&change);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };

    let report = patch(json!({"slowQueryMs": 60_000})).await;
    assert_eq!(report["slowQueryMs"], 60_000);
    let before = slow().await;
    assert_eq!(before["thresholdMs"], 60_000.0);
    server.owner_with_project().await;
    let unchanged = slow().await;
    assert_eq!(unchanged["slowCalls"], before["slowCalls"], "no call takes a minute");

    patch(json!({"slowQueryMs": 0})).await;
    let signup = json!({"name": "Second", "email": "second@example.com", "password": "second-password"});
    let created = client.post(format!("{}/api/auth/signup", server.base)).json(&signup).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let after = slow().await;
    assert_eq!(after["thresholdMs"], 0.0);
    assert!(
        after["slowCalls"].as_u64().unwrap() > unchanged["slowCalls"].as_u64().unwrap(),
        "every call is slow at 0 ms: {unchanged} -> {after}"
    );
}

/// SIGHUP re-reads the configuration file: the switches in it apply at once and show in the
/// detailed health; another changed setting is reported as needing a restart; an unreadable
/// file changes nothing, and the server goes on.
#[tokio::test]
async fn sighup_applies_the_switches_of_the_configuration_file() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vibing2.toml");
    std::fs::write(&config, "[cache]\nmode = \"on\"\n\n[monitor]\nslow_query_ms = 1000\n").unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let config_path = config.to_str().unwrap().to_owned();
    let server = SpawnedServer::start_logging_to(
        &db,
        &[("VIBING2_CONFIG", config_path.as_str()), ("ADMIN_TOKEN", ADMIN_TOKEN), ("RUST_LOG", "vibing2=info")],
        log,
    )
    .await;
    let client = reqwest::Client::new();
    let health = || async {
        let response = client
            .get(format!("{}/api/health/database?detailed=true", server.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let before = health().await;
    assert_eq!(before["switches"]["cache"], "on");
    assert_eq!(before["switches"]["lastChange"], Value::Null);

    std::fs::write(
        &config,
        "[cache]\nmode = \"off\"\n\n[database]\npool_size = 3\n\n[monitor]\nslow_query_ms = 250\n\n\
         [jobs]\nanalyze_secs = 60\npaused = [\"cleanup_expired\"]\n\n[server]\nbody_limit_bytes = 4096\n",
    )
    .unwrap();
    hang_up(&server);
    let started = Instant::now();
    let switches = loop {
        let now = health().await;
        if now["switches"]["lastChange"]["source"] == "sighup" {
            break now["switches"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the SIGHUP never showed: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(switches["cache"], "off");
    assert_eq!(switches["poolSize"], 3);
    assert_eq!(switches["slowQueryMs"], 250);
    let jobs = switches["jobs"].as_array().unwrap();
    let job = |name: &str| jobs.iter().find(|job| job["job"] == name).unwrap().clone();
    assert_eq!(job("analyze")["intervalSecs"], 60);
    assert_eq!(job("cleanup_expired")["paused"], true);
    let mut changed: Vec<&str> =
        switches["lastChange"]["changed"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
    changed.sort();
    assert_eq!(
        changed,
        ["cache", "jobs.analyze.intervalSecs", "jobs.cleanup_expired.paused", "poolSize", "slowQueryMs"]
    );
    let logged = wait_for_log(&log_path, "only after a restart").await;
    assert!(logged.contains("server"), "the section needing a restart is named:\n{logged}");
    assert!(logged.contains("switch changed") && logged.contains("sighup"), "{logged}");

    // A file that does not parse: nothing changes, and the server answers on.
    std::fs::write(&config, "[cache\nmode = ").unwrap();
    hang_up(&server);
    wait_for_log(&log_path, "could not be read").await;
    let after = health().await;
    assert_eq!(after["switches"], switches, "an unreadable configuration changed nothing");
}

fn hang_up(server: &SpawnedServer) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGHUP).unwrap();
}

/// The server's log once it holds `needle` (polled, with a deadline).
async fn wait_for_log(path: &std::path::Path, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the log never said {needle:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
