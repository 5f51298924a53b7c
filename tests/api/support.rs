//! Shared test plumbing: a real PostgreSQL (the one in `TEST_DATABASE_URL`, or else an
//! embedded cluster under `target/`), a migrated template database cloned once per test, and
//! an HTTP client that drives the real router without a port.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;
use tower::ServiceExt;
use vibing2::app;
use vibing2::config::Settings;
use vibing2::db::embedded::EmbeddedCluster;
use vibing2::db::{self, migrate};
use vibing2::state::AppState;

/// Serialises template builds across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x7669_6269_6e67_7465;

static SERVER_URL: OnceCell<String> = OnceCell::const_new();

/// The server every test database lives on, as a URL without a database name.
pub async fn server_url() -> String {
    SERVER_URL
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
                return url.trim_end_matches('/').rsplit_once('/').map_or(url.clone(), |(base, _)| base.to_owned());
            }
            // The embedded default, with durability off: test data is disposable. It keeps
            // running after the tests, so the next run starts at once.
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-postgres");
            let settings = [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off")];
            let cluster = EmbeddedCluster::start(&dir, &settings).await.expect("embedded test cluster");
            let url = format!("postgres://postgres@127.0.0.1:{}", cluster.port());
            std::mem::forget(cluster);
            url
        })
        .await
        .clone()
}

pub async fn admin_connection() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", server_url().await)).await.expect("admin connection")
}

static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

/// A database of this test's own, dropped (with any connections still open) when it goes.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// An empty database.
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    /// A database at the latest schema, cloned from a template that is migrated once.
    pub async fn migrated() -> Self {
        let template = template().await;
        Self::create(Some(&template)).await
    }

    async fn create(template: Option<&str>) -> Self {
        init_logs();
        let name =
            format!("v2t_{}_{}_{}", std::process::id(), NEXT_DATABASE.fetch_add(1, Ordering::Relaxed), rand_suffix());
        let mut admin = admin_connection().await;
        let clause = template.map(|t| format!(" TEMPLATE {t}")).unwrap_or_default();
        admin.execute(format!("CREATE DATABASE {name}{clause}").as_str()).await.expect("create test database");
        let url = format!("{}/{name}", server_url().await);
        Self { name, url }
    }

    pub fn secret_url(&self) -> SecretString {
        self.url.clone().into()
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("test database connection")
    }

    /// A pool built exactly as the service builds it, from these settings.
    pub async fn pool(&self, settings: &Settings) -> db::Pool {
        db::connect(&settings.database, &self.secret_url()).await.expect("pool")
    }

    /// Settings pointing at this database, with the given overrides.
    pub fn settings(&self, overrides: &[(&str, &str)]) -> Settings {
        // The tests drive many requests from one client; `limits.rs` turns the limits on.
        let mut pairs = vec![("database.url", self.url.clone()), ("rate_limits.enabled", "false".to_owned())];
        pairs.extend(overrides.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Settings::from_pairs(pairs).expect("test settings")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut admin = admin_connection().await;
                let _ = admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
            });
        });
        let _ = handle.join();
    }
}

fn rand_suffix() -> String {
    use rand::Rng;
    let n: u32 = rand::thread_rng().gen();
    format!("{n:08x}")
}

/// The migrated template, named after the migrations' contents so an edited migration gets
/// a new one. Built under an advisory lock, then renamed into place, so a crash mid-build
/// never leaves a half-migrated template.
async fn template() -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for migration in migrate::MIGRATIONS {
        digest.update(migration.sql.as_bytes());
    }
    // Migration 14 makes TokenUsage's partitions from the month it runs in on: a template
    // kept from an earlier month would lack this month's.
    digest.update(chrono::Utc::now().format("%Y-%m").to_string().as_bytes());
    let name = format!("v2tpl_{}", &hex::encode(digest.finalize())[..16]);

    let mut admin = admin_connection().await;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(TEMPLATE_LOCK_KEY).execute(&mut admin).await.unwrap();
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    if !exists {
        let building = format!("{name}_building");
        admin.execute(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)").as_str()).await.unwrap();
        admin.execute(format!("CREATE DATABASE {building}").as_str()).await.unwrap();
        let mut conn = PgConnection::connect(&format!("{}/{building}", server_url().await)).await.unwrap();
        migrate::run(&mut conn).await.expect("migrating the template");
        conn.close().await.unwrap();
        admin.execute(format!("ALTER DATABASE {building} RENAME TO {name}").as_str()).await.unwrap();
    }
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(TEMPLATE_LOCK_KEY).execute(&mut admin).await.unwrap();
    name
}

/// The service's router over a test database, driven in-process.
pub struct TestApp {
    pub db: TestDb,
    pub pool: db::Pool,
    pub state: AppState,
    pub router: Router,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_settings(&[]).await
    }

    pub async fn with_settings(overrides: &[(&str, &str)]) -> Self {
        Self::on(TestDb::migrated().await, overrides).await
    }

    /// The service over a database the test prepared (and migrated) itself.
    pub async fn on(db: TestDb, overrides: &[(&str, &str)]) -> Self {
        let settings = db.settings(overrides);
        let pool = db.pool(&settings).await;
        let state = AppState::new(pool.clone(), settings).unwrap();
        let router = app::router(state.clone());
        Self { db, pool, state, router }
    }

    /// Writes the views this instance counted but has not written yet (they are written in
    /// batches), so the database shows every view counted so far.
    pub async fn flush_views(&self) {
        vibing2::service::views::flush(&self.state).await.expect("flushing counted views");
    }

    /// A GET with the operational endpoints' admin token (the app must be configured with
    /// [`ADMIN_TOKEN`]).
    pub async fn admin_get(&self, uri: &str) -> TestResponse {
        self.call(Method::GET, uri, Some(ADMIN_TOKEN), None).await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(Method::GET, uri, None).await
    }

    pub async fn request(&self, method: Method, uri: &str, body: Option<(&str, Vec<u8>)>) -> TestResponse {
        send(&self.router, method, uri, body).await
    }

    /// Any request, as built.
    pub async fn send_request(&self, request: Request<Body>) -> TestResponse {
        send_to(&self.router, request).await
    }

    /// A request as `token`'s holder (or anonymous), with an optional JSON body.
    pub async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> TestResponse {
        call(&self.router, method, uri, token, body).await
    }

    /// Signs a new user up and logs them in.
    pub async fn user(&self, name: &str) -> TestUser {
        let email = format!("{}@example.com", name.to_lowercase());
        let password = format!("{name}-password");
        let body = serde_json::json!({"name": name, "email": email, "password": password});
        let signup = self.call(Method::POST, "/api/auth/signup", None, Some(body)).await;
        assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.json);
        let login = self.login(&email, &password).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.json);
        TestUser {
            id: signup.json["id"].as_str().unwrap().to_owned(),
            email,
            password,
            token: login.json["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        let body = serde_json::json!({"email": email, "password": password});
        self.call(Method::POST, "/api/auth/login", None, Some(body)).await
    }

    /// Creates a project owned by `owner` and returns its id.
    pub async fn project(&self, owner: &TestUser, visibility: &str) -> String {
        let body = serde_json::json!({"name": "A project", "projectType": "website", "visibility": visibility});
        let response = self.call(Method::POST, "/api/projects", Some(&owner.token), Some(body)).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.json);
        response.json["id"].as_str().unwrap().to_owned()
    }

    /// Makes `member` a collaborator of `project` with `role`, directly in the database.
    pub async fn add_collaborator(&self, project: &str, member: &TestUser, role: &str) {
        sqlx::query(
            r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role")
               VALUES (md5(random()::text), $1, $2, $3)"#,
        )
        .bind(project)
        .bind(&member.id)
        .bind(role)
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// Puts `user` on `plan`, directly in the database (the API has no billing).
    pub async fn set_plan(&self, user: &TestUser, plan: &str) {
        sqlx::query(r#"UPDATE "User" SET "plan" = $2 WHERE "id" = $1"#)
            .bind(&user.id)
            .bind(plan)
            .execute(&self.pool)
            .await
            .unwrap();
    }
}

pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

impl TestResponse {
    /// Asserts the status of a request that prepares a scenario, so a failed setup fails
    /// there, not somewhere later.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "{}", self.json);
        self
    }

    /// Asserts the project's error shape and returns its code.
    pub fn error_code(&self) -> &str {
        let error = &self.json["error"];
        assert!(error["message"].is_string(), "no error message in {}", self.json);
        error["code"].as_str().unwrap_or_else(|| panic!("not the JSON error shape: {}", self.json))
    }
}

/// A request through `router` as `token`'s holder (or anonymous), with an optional JSON body.
pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> TestResponse {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(&json).unwrap())
        }
        None => Body::empty(),
    };
    into_test_response(router.clone().oneshot(request.body(body).unwrap()).await.unwrap()).await
}

/// Sends a request, as built, through `router`.
pub async fn send_to(router: &Router, request: Request<Body>) -> TestResponse {
    into_test_response(router.clone().oneshot(request).await.unwrap()).await
}

/// Sends one request through a router; `body` is (content type, bytes).
pub async fn send(router: &Router, method: Method, uri: &str, body: Option<(&str, Vec<u8>)>) -> TestResponse {
    let mut request = Request::builder().method(method).uri(uri);
    let body = match body {
        Some((content_type, bytes)) => {
            request = request.header(header::CONTENT_TYPE, content_type);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    into_test_response(router.clone().oneshot(request.body(body).unwrap()).await.unwrap()).await
}

async fn into_test_response(response: axum::response::Response) -> TestResponse {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    TestResponse { status, headers, json }
}

/// The admin token of two-tier apps, so `POST /api/cache/clear` is on.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The Redis that two-tier tests share, each under a namespace of its own.
/// Test logs, on demand: `TEST_LOG=1 cargo test NAME` prints them to stderr (`TEST_LOG` may
/// also be a filter, such as `vibing2=debug,sqlx=info`). Without it nothing is logged.
fn init_logs() {
    static LOGS: std::sync::Once = std::sync::Once::new();
    LOGS.call_once(|| {
        let Ok(directives) = std::env::var("TEST_LOG") else { return };
        let directives = match directives.as_str() {
            "1" | "true" => "vibing2=debug,tower_http=debug,sqlx=warn,warn".to_owned(),
            _ => directives,
        };
        let filter = tracing_subscriber::EnvFilter::new(directives);
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    });
}

/// Runs `call` and returns its output with the milliseconds it took: an upper bound for any
/// duration the call reports about itself, on a machine of any speed.
pub async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, f64) {
    let started = std::time::Instant::now();
    let output = call.await;
    (output, started.elapsed().as_secs_f64() * 1000.0)
}

/// `vibing2 serve` as a process of its own on `db`, with jobs off and extra environment.
pub struct SpawnedServer {
    pub child: tokio::process::Child,
    pub port: u16,
    pub base: String,
}

impl SpawnedServer {
    pub async fn start(db: &TestDb, env: &[(&str, &str)]) -> Self {
        Self::launch(db, env, None).await
    }

    /// As [`SpawnedServer::start`], with the server's output (its log) going to `log`.
    pub async fn start_logging_to(db: &TestDb, env: &[(&str, &str)], log: std::fs::File) -> Self {
        Self::launch(db, env, Some(log)).await
    }

    async fn launch(db: &TestDb, env: &[(&str, &str)], log: Option<std::fs::File>) -> Self {
        let (stdout, stderr) = match log {
            Some(log) => (log.try_clone().unwrap().into(), log.into()),
            None => (std::process::Stdio::null(), std::process::Stdio::null()),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vibing2"));
        command
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env_remove("REDIS_URL")
            .env("PORT", port.to_string())
            .env("VIBING2_JOBS__ENABLED", "false")
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while client.get(format!("{base}/api/health")).send().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "the service never answered");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        SpawnedServer { child, port, base }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Signs up, logs in and creates a PRIVATE project over HTTP: (token, project id).
    pub async fn owner_with_project(&self) -> (String, String) {
        let client = reqwest::Client::new();
        let base = &self.base;
        let account =
            serde_json::json!({"name": "Spawned", "email": "spawned@example.com", "password": "spawned-password"});
        let signup = client.post(format!("{base}/api/auth/signup")).json(&account).send().await.unwrap();
        assert_eq!(signup.status(), 201);
        let credentials = serde_json::json!({"email": "spawned@example.com", "password": "spawned-password"});
        let login = client.post(format!("{base}/api/auth/login")).json(&credentials).send().await.unwrap();
        assert_eq!(login.status(), 200);
        let token = login.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
        let project = serde_json::json!({"name": "Spawned", "projectType": "website"});
        let created =
            client.post(format!("{base}/api/projects")).bearer_auth(&token).json(&project).send().await.unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        (token, id)
    }
}

static REDIS_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The Redis the cache tests share, each under a namespace of its own: `TEST_REDIS_URL`
/// (default `redis://127.0.0.1:6379`) when something answers there, else a private
/// `redis-server` this test process starts, which dies with it.
pub fn shared_redis_url() -> String {
    REDIS_URL
        .get_or_init(|| {
            let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            if redis_answers(&url) {
                url
            } else {
                start_private_redis()
            }
        })
        .clone()
}

fn redis_answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let ping = |mut connection: redis::Connection| redis::cmd("PING").query::<String>(&mut connection);
    client.get_connection_with_timeout(std::time::Duration::from_millis(500)).and_then(ping).is_ok()
}

/// Starts `redis-server` on a free port from a thread that lives as long as the process: the
/// server is told to die with that thread (`PR_SET_PDEATHSIG`), so it never outlives the tests.
fn start_private_redis() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (started, spawned) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: between fork and exec, only the async-signal-safe prctl call runs.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = command.spawn();
        let failed = child.as_ref().err().map(|error| error.to_string());
        started.send(failed).unwrap();
        if child.is_ok() {
            loop {
                std::thread::park();
            }
        }
    });
    if let Some(error) = spawned.recv().unwrap() {
        panic!("no Redis answers at TEST_REDIS_URL, and redis-server (Debian: redis-server) could not start: {error}");
    }
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !redis_answers(&url) {
        assert!(std::time::Instant::now() < deadline, "the private redis-server did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    url
}

/// A cache namespace no other test (or test run) uses.
pub fn namespace() -> String {
    format!("t{}x{:08x}", std::process::id(), rand::random::<u32>())
}

/// Settings for an instance on `app`'s database over `redis_url` and `namespace`.
pub fn cache_settings(app: &TestApp, redis_url: &str, namespace: &str) -> Settings {
    app.db.settings(&[("redis.url", redis_url), ("cache.namespace", namespace), ("admin_token", ADMIN_TOKEN)])
}

/// An app on the two-tier cache under a fresh namespace, and the settings that make another
/// instance of it (see [`instance`]).
pub async fn two_tier_app(redis_url: &str) -> (TestApp, Settings) {
    let namespace = namespace();
    let app = TestApp::with_settings(&[
        ("redis.url", redis_url),
        ("cache.namespace", &namespace),
        ("admin_token", ADMIN_TOKEN),
    ])
    .await;
    let settings = cache_settings(&app, redis_url, &namespace);
    (app, settings)
}

/// Another instance of the service on the same database and Redis namespace.
pub fn instance(app: &TestApp, settings: &Settings) -> Router {
    app::router(AppState::new(app.pool.clone(), settings.clone()).unwrap())
}

/// A request body that never sends a byte, declaring its length (or, None, not).
pub struct StalledBody(pub Option<u64>);

impl StalledBody {
    pub fn declaring(length: u64) -> Body {
        StalledBody(Some(length)).into()
    }

    pub fn undeclared() -> Body {
        StalledBody(None).into()
    }
}

impl From<StalledBody> for Body {
    fn from(stalled: StalledBody) -> Body {
        Body::new(stalled)
    }
}

impl http_body::Body for StalledBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.map_or_else(http_body::SizeHint::default, http_body::SizeHint::with_exact)
    }
}

/// `PUT /api/projects/{project}/files` by the holder of `token`, with `body`.
pub fn file_batch_request(project: &str, token: &str, body: Body) -> Request<Body> {
    Request::put(format!("/api/projects/{project}/files"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(body)
        .unwrap()
}

/// A redis-server of the test's own, on a free port, that the test may stop and restart.
pub struct PrivateRedis {
    port: u16,
    process: Option<tokio::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = PrivateRedis { port, process: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            // DEBUG SLEEP plays a slow Redis; Redis 7 refuses DEBUG unless allowed.
            .args(["--enable-debug-command", "local"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian: redis-server) must be installed");
        self.process = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while redis::Client::open(self.url()).unwrap().get_multiplexed_async_connection().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().await.unwrap();
        }
    }
}

/// Polls `check` until it holds, failing once `limit` has passed.
pub async fn within<F, Fut>(limit: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            // The delay itself, for the record (`--nocapture`).
            eprintln!("held after {:?} (allowed {limit:?})", started.elapsed());
            return;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
