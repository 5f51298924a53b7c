//! Three `vibing2 serve` processes on one database and one Redis namespace, with load spread
//! across them round-robin: each scheduled job runs once per interval whoever ticks, an edit
//! on one instance reaches the others' caches within the documented second, and a session, a
//! logout and the rate limits hold on whichever instance a request lands.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{namespace, shared_redis_url, within, SpawnedServer, TestDb, ADMIN_TOKEN};

const INSTANCES: [&str; 3] = ["A", "B", "C"];

/// The jobs' schedule: every job due each second, looked for every second by each instance,
/// so the three compete for every run.
const SCHEDULE: [(&str, &str); 5] = [
    ("jobs.tick_secs", "1"),
    ("jobs.refresh_project_stats_secs", "1"),
    ("jobs.refresh_user_token_summary_secs", "1"),
    ("jobs.cleanup_secs", "1"),
    ("jobs.analyze_secs", "1"),
];

/// Runs of each one-second job to wait for: enough to see the instances take turns.
const RUNS_PER_JOB: i64 = 3;

/// The fork class's limit, shared by the three through Redis.
const FORKS: u64 = 4;

/// How soon another instance sees a write or a logout (docs/cache.md: "the test allows 1 s").
const PROPAGATION: Duration = Duration::from_secs(1);

/// Every update of `JobRun` (one per run of a job), with the transaction's start (the `now()`
/// that `maintenance::is_due` compares and `lastSucceededAt` records), the time it was
/// recorded, and the instance whose connection recorded it. Test-only: it watches the
/// service, and the service never reads it.
const RUN_LOG: &str = r#"
    CREATE TABLE test_job_run_log (
        "job" TEXT NOT NULL, "startedAt" TIMESTAMPTZ NOT NULL, "recordedAt" TIMESTAMPTZ NOT NULL,
        "outcome" TEXT NOT NULL, "instance" TEXT
    );
    CREATE FUNCTION test_log_job_run() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO test_job_run_log
        VALUES (NEW."job", now(), clock_timestamp(), NEW."outcome", current_setting('vibing2.instance', true));
        RETURN NEW;
    END $$;
    CREATE TRIGGER test_log_job_run AFTER INSERT OR UPDATE ON "JobRun"
        FOR EACH ROW EXECUTE FUNCTION test_log_job_run();
"#;

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    json: Value,
}

/// The three instances and one HTTP client for all of them.
struct Trio {
    servers: Vec<SpawnedServer>,
    http: reqwest::Client,
}

impl Trio {
    /// Starts the three on `db`, sharing Redis and a namespace, with the jobs on.
    async fn start(db: &TestDb) -> Self {
        let redis = shared_redis_url();
        let namespace = namespace();
        let schedule: Vec<(String, &str)> = SCHEDULE
            .iter()
            .map(|(key, value)| (format!("VIBING2_{}", key.to_uppercase().replace('.', "__")), *value))
            .collect();
        let launch = |instance: &'static str| {
            // Each instance's connections carry its name, so the run log says who ran a job.
            let url = format!("{}?options[vibing2.instance]={instance}", db.url);
            let (redis, namespace, schedule) = (redis.clone(), namespace.clone(), schedule.clone());
            async move {
                let mut env: Vec<(&str, &str)> = vec![
                    ("DATABASE_URL", &url),
                    ("REDIS_URL", &redis),
                    ("CACHE_NAMESPACE", &namespace),
                    ("ADMIN_TOKEN", ADMIN_TOKEN),
                    ("VIBING2_JOBS__ENABLED", "true"),
                    // The load's reads and writes come from one address: only forks are limited.
                    ("VIBING2_RATE_LIMITS__READS", "1000000"),
                    ("VIBING2_RATE_LIMITS__WRITES", "1000000"),
                    ("VIBING2_RATE_LIMITS__FORKS", "4"),
                    // A window no test outlasts, so the forks are never split by its turn.
                    ("VIBING2_RATE_LIMITS__WINDOW_SECS", "3600"),
                    ("VIBING2_AUTH__TRUST_FORWARDED_FOR", "true"),
                ];
                env.extend(schedule.iter().map(|(key, value)| (key.as_str(), *value)));
                SpawnedServer::start(db, &env).await
            }
        };
        let (a, b, c) = tokio::join!(launch("A"), launch("B"), launch("C"));
        Trio { servers: vec![a, b, c], http: reqwest::Client::new() }
    }

    /// A request to instance `at` as `token`'s holder (or anonymous).
    async fn call(&self, at: usize, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        self.call_from(at, None, method, path, token, body).await
    }

    /// As [`Trio::call`], from the client address `client` when given (the instances trust
    /// `X-Forwarded-For`).
    async fn call_from(
        &self,
        at: usize,
        client: Option<&str>,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.servers[at].base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(client) = client {
            request = request.header("x-forwarded-for", client);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the instance answers");
        let status = response.status();
        let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, retry_after, json }
    }

    /// Signs `name` up on instance `at` and logs in there: (user id, token).
    async fn user(&self, at: usize, name: &str) -> (String, String) {
        let email = format!("{}@example.com", name.to_lowercase());
        let account = json!({"name": name, "email": email, "password": "instances-password"});
        let signup = self.call(at, Method::POST, "/api/auth/signup", None, Some(account)).await;
        assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.json);
        let token = self.login(at, &email).await;
        (signup.json["id"].as_str().unwrap().to_owned(), token)
    }

    async fn login(&self, at: usize, email: &str) -> String {
        let credentials = json!({"email": email, "password": "instances-password"});
        let login = self.call(at, Method::POST, "/api/auth/login", None, Some(credentials)).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.json);
        login.json["token"].as_str().unwrap().to_owned()
    }

    /// A PUBLIC project of `token`'s holder, created on instance `at`.
    async fn project(&self, at: usize, token: &str, name: &str) -> String {
        let body = json!({"name": name, "projectType": "website", "visibility": "PUBLIC"});
        let created = self.call(at, Method::POST, "/api/projects", Some(token), Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
        created.json["id"].as_str().unwrap().to_owned()
    }

    /// How many times each instance's invalidation subscription came up (0: deaf to the
    /// others' writes), for failure messages.
    async fn subscriptions(&self) -> Vec<Value> {
        let mut made = Vec::new();
        for at in 0..self.servers.len() {
            made.push(
                self.call(at, Method::GET, "/api/health/database", None, None).await.json["cache"]["reconnects"].take(),
            );
        }
        made
    }

    async fn session_status(&self, at: usize, token: &str) -> StatusCode {
        self.call(at, Method::GET, "/api/auth/session", Some(token), None).await.status
    }

    async fn project_name(&self, at: usize, token: &str, project: &str) -> Value {
        let read = self.call(at, Method::GET, &format!("/api/projects/{project}"), Some(token), None).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.json);
        read.json["name"].clone()
    }
}

/// What the load saw, per instance.
#[derive(Default)]
struct Tally {
    served: [AtomicU64; 3],
    failed: AtomicU64,
}

/// A cap on each load client's requests, whatever happens to the stop signal.
const MAX_LOAD_ROUNDS: u64 = 3_000;

/// One load client: reads and writes of its own project, discovery, its list, and likes of a
/// neighbour's project, each request on the next instance in turn, until `stop`.
async fn load(
    trio: Arc<Trio>,
    me: usize,
    token: String,
    mine: String,
    theirs: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    for round in 0..MAX_LOAD_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let at = (me + round as usize) % INSTANCES.len();
        let (method, path, body) = match round % 6 {
            0 => (Method::GET, format!("/api/projects/{mine}"), None),
            1 => (Method::PATCH, format!("/api/projects/{mine}"), Some(json!({"name": format!("Load {me} {round}")}))),
            2 => (Method::GET, "/api/discover?limit=5".to_owned(), None),
            3 => (Method::GET, "/api/projects".to_owned(), None),
            4 => (Method::PUT, format!("/api/projects/{theirs}/like"), None),
            _ => (Method::DELETE, format!("/api/projects/{theirs}/like"), None),
        };
        let answer = trio.call(at, method.clone(), &path, Some(&token), body).await;
        tally.served[at].fetch_add(1, Ordering::Relaxed);
        if !answer.status.is_success() {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("{method} {path} on {}: {} {}", INSTANCES[at], answer.status, answer.json);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_under_load_share_jobs_cache_sessions_and_limits() {
    let db = TestDb::migrated().await;
    sqlx::raw_sql(RUN_LOG).execute(&mut db.connect().await).await.unwrap();
    let trio = Arc::new(Trio::start(&db).await);

    // The load: six clients, each request on the next instance.
    let mut clients = Vec::new();
    for me in 0..6 {
        let (_, token) = trio.user(me % 3, &format!("Load{me}")).await;
        let project = trio.project(me % 3, &token, &format!("Load {me}")).await;
        clients.push((token, project));
    }
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(me, (token, mine))| {
            let theirs = clients[(me + 1) % clients.len()].1.clone();
            let (trio, tally, stop) = (trio.clone(), tally.clone(), stop.clone());
            tokio::spawn(load(trio, me, token.clone(), mine.clone(), theirs, tally, stop))
        })
        .collect();

    // Cache: each instance caches the project; a write that bypasses the service shows that
    // they answer from their caches; a rename on A reaches B and C within the bound.
    let (_, owner) = trio.user(0, "Owner").await;
    let project = trio.project(0, &owner, "Before").await;
    for (at, instance) in INSTANCES.iter().enumerate() {
        assert_eq!(trio.project_name(at, &owner, &project).await, "Before", "instance {instance}");
    }
    sqlx::query(r#"UPDATE "Project" SET "name" = 'Behind the caches' WHERE "id" = $1"#)
        .bind(&project)
        .execute(&mut db.connect().await)
        .await
        .unwrap();
    for (at, instance) in INSTANCES.iter().enumerate() {
        let name = trio.project_name(at, &owner, &project).await;
        assert_eq!(name, "Before", "instance {instance} answers from its cache");
    }
    let renamed = trio
        .call(0, Method::PATCH, &format!("/api/projects/{project}"), Some(&owner), Some(json!({"name": "After"})))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.json);
    assert_eq!(trio.project_name(0, &owner, &project).await, "After", "the writer reads its write");
    let last_seen = std::sync::Mutex::new(None);
    let propagated = tokio::time::timeout(PROPAGATION, async {
        loop {
            let names = (trio.project_name(1, &owner, &project).await, trio.project_name(2, &owner, &project).await);
            let done = names.0 == "After" && names.1 == "After";
            *last_seen.lock().unwrap() = Some(names);
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    if propagated.is_err() {
        let last = last_seen.lock().unwrap().clone();
        panic!(
            "B and C still served {last:?} after {PROPAGATION:?}; subscriptions made: {:?}",
            trio.subscriptions().await
        );
    }

    // Sessions: a login on A works on B and C; a logout on C ends it on A and B too.
    let (user, token) = trio.user(0, "Roaming").await;
    for (at, instance) in INSTANCES.iter().enumerate() {
        let session = trio.call(at, Method::GET, "/api/auth/session", Some(&token), None).await;
        assert_eq!(session.status, StatusCode::OK, "on {instance}: {}", session.json);
        assert_eq!(session.json["id"], user.as_str());
    }
    let logout = trio.call(2, Method::POST, "/api/auth/logout", Some(&token), None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.json);
    assert_eq!(trio.session_status(2, &token).await, StatusCode::UNAUTHORIZED, "refused at once where it ended");
    within(PROPAGATION, || async {
        trio.session_status(0, &token).await == StatusCode::UNAUTHORIZED
            && trio.session_status(1, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // The fork class's limit is one count over the three: half on A, half on B, refused on C.
    let fork = format!("/api/projects/{project}/fork");
    for n in 0..FORKS {
        let at = usize::from(n >= FORKS / 2);
        let forked = trio.call(at, Method::POST, &fork, Some(&owner), Some(json!({}))).await;
        assert_eq!(forked.status, StatusCode::CREATED, "fork {n} on {}: {}", INSTANCES[at], forked.json);
    }
    let refused = trio.call(2, Method::POST, &fork, Some(&owner), Some(json!({}))).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.json);
    assert_eq!(refused.json["error"]["code"], "rate_limited");
    let retry_after: u64 = refused.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "until the window ends: {retry_after}");

    // The login limit (failures kept in PostgreSQL) counts the failures made on A and B, and
    // refuses even the right password on C.
    let wrong = json!({"email": "roaming@example.com", "password": "not-the-password"});
    let client = Some("203.0.113.17");
    for n in 0..5 {
        let at = usize::from(n >= 2);
        let failed = trio.call_from(at, client, Method::POST, "/api/auth/login", None, Some(wrong.clone())).await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "failure {n}: {}", failed.json);
    }
    let right = json!({"email": "roaming@example.com", "password": "instances-password"});
    let locked = trio.call_from(2, client, Method::POST, "/api/auth/login", None, Some(right)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.json);
    assert!(locked.retry_after.is_some(), "a 429 says when to retry");

    // Jobs: wait (bounded) until every one-second job has run a few times, under the load.
    let observer = sqlx::PgPool::connect(&db.url).await.unwrap();
    let intervals =
        vibing2::config::Settings::from_pairs(SCHEDULE.iter().map(|(key, value)| (*key, (*value).to_owned())))
            .unwrap()
            .jobs;
    let quick: Vec<&str> =
        vibing2::config::JobSettings::JOBS.into_iter().filter(|job| intervals.interval_secs(job) == Some(1)).collect();
    within(Duration::from_secs(30), || async {
        let runs: Vec<(String, i64)> =
            sqlx::query_as(r#"SELECT "job", "runs" FROM "JobRun""#).fetch_all(&observer).await.unwrap();
        quick.iter().all(|job| runs.iter().any(|(name, count)| name == job && *count >= RUNS_PER_JOB))
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for handle in loads {
        handle.await.unwrap();
    }

    let served: Vec<u64> = tally.served.iter().map(|count| count.load(Ordering::Relaxed)).collect();
    eprintln!("load served by A, B, C: {served:?}");
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "every load request succeeded: {served:?}");
    assert!(served.iter().all(|count| *count > 0), "{served:?}");

    let recorded: Vec<(String, i64)> =
        sqlx::query_as(r#"SELECT "job", "runs" FROM "JobRun" ORDER BY "job""#).fetch_all(&observer).await.unwrap();
    let log: Vec<(String, f64, f64, String, Option<String>)> = sqlx::query_as(
        r#"SELECT "job", extract(epoch FROM "startedAt")::float8, extract(epoch FROM "recordedAt")::float8,
                  "outcome", "instance"
           FROM test_job_run_log ORDER BY "job", "startedAt""#,
    )
    .fetch_all(&observer)
    .await
    .unwrap();
    for (job, runs) in &recorded {
        let mine: Vec<_> = log.iter().filter(|run| &run.0 == job).collect();
        assert_eq!(mine.len() as i64, *runs, "{job}: every run is logged");
        let by: Vec<&str> = mine.iter().map(|run| run.4.as_deref().unwrap_or("?")).collect();
        eprintln!("{job}: {runs} runs, by {by:?}");
        assert!(mine.iter().all(|run| run.3 == "ok"), "{job} failed a run: {mine:?}");
        // A job of a long interval (one added later, say) is due once in the test's time.
        let interval = intervals.interval_secs(job).map_or(f64::INFINITY, |secs| secs as f64);
        for pair in mine.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            // The advisory lock: a run begins only after the one before it has ended.
            assert!(later.1 >= earlier.2, "{job}: two runs overlapped: {earlier:?} and {later:?}");
            // The due check: no slot runs twice. Both times are the runs' transaction starts,
            // as `is_due` compares them; the column keeps milliseconds, hence the 1 ms.
            assert!(
                later.1 - earlier.1 >= interval - 0.001,
                "{job} ran twice within its {interval} s interval: {earlier:?} and {later:?}"
            );
        }
    }
    let jobs: Vec<&str> = recorded.iter().map(|(job, _)| job.as_str()).collect();
    for job in &quick {
        assert!(jobs.contains(job), "{job} ran: {jobs:?}");
    }
}
