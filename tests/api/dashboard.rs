//! The operators' dashboard: its login, its cookie, and the page itself in a real headless
//! Chromium (Debian's `chromium`), driven over the DevTools protocol: it loads with no console
//! error, its charts draw data after some traffic, and a screenshot goes to
//! `target/dashboard.png`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{SpawnedServer, TestDb, ADMIN_TOKEN};

/// Far past anything the page needs: reaching it means something hung.
const HANG: Duration = Duration::from_secs(30);
/// Chromium's first start on a fresh machine builds its caches, and under the whole suite on
/// two cores it has taken longer than `HANG`.
const BROWSER_START: Duration = Duration::from_secs(120);

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `POST /admin/login` with `token` in the form.
async fn log_in(base: &str, token: &str) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish();
    client()
        .post(format!("{base}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn dashboard_server() -> (TestDb, SpawnedServer) {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(&db, &[("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    (db, server)
}

#[tokio::test]
async fn the_dashboard_signs_operators_in_with_a_strict_http_only_cookie() {
    let (_db, server) = dashboard_server().await;
    let base = &server.base;
    let form = client().get(format!("{base}/admin")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csp = form.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(form.text().await.unwrap().contains("name=\"token\""), "the login form");

    let wrong = log_in(base, "not-the-token-at-all").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let right = log_in(base, ADMIN_TOKEN).await;
    assert_eq!(right.status(), 303);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains(ADMIN_TOKEN), "the cookie holds a digest, not the token");
    let pair = cookie.split(';').next().unwrap().to_owned();

    let page = client().get(format!("{base}/admin")).header("cookie", &pair).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("/admin/dashboard.js"), "the dashboard itself");
    let stats =
        client().get(format!("{base}/api/monitor/queries?type=stats")).header("cookie", &pair).send().await.unwrap();
    assert_eq!(stats.status(), 200, "the cookie authorizes the monitor");
    let script = client().get(format!("{base}/admin/dashboard.js")).send().await.unwrap();
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let forged =
        client().get(format!("{base}/api/monitor/queries?type=stats")).header("cookie", "vibing2_admin=00").send();
    assert_eq!(forged.await.unwrap().status(), 401);
    // A session older than 12 hours has ended, whatever the browser kept.
    let stale_at = chrono::Utc::now().timestamp() - 13 * 3600;
    let stale = format!("vibing2_admin={}", vibing2::api::extract::admin_session_value(ADMIN_TOKEN, stale_at));
    let refused = client().get(format!("{base}/api/monitor/queries?type=stats")).header("cookie", stale).send();
    assert_eq!(refused.await.unwrap().status(), 401);
    // A write the cookie carries must come from this site: no Origin, no write.
    let explain = |origin: Option<String>| {
        let mut request = client()
            .post(format!("{base}/api/monitor/queries/explain"))
            .header("cookie", &pair)
            .header("content-type", "application/json")
            .body(r#"{"query": "SELECT 1"}"#);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(explain(None).await.unwrap().status(), 401, "a cross-site form could send this");
    assert_eq!(explain(Some(base.clone())).await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_an_admin_token_there_is_no_dashboard() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(&db, &[]).await;
    let page = client().get(format!("{}/admin", server.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND.as_u16());
}

/// A DevTools session on one page of a headless Chromium of the test's own.
struct Browser {
    process: tokio::process::Child,
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    session: String,
    next_id: u64,
    /// Every event received so far.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let process = tokio::process::Command::new("chromium")
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .args(["--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium (Debian: apt-get install chromium) must be installed; .ci/run installs it");
        // Chromium writes its port and browser endpoint here once it listens.
        let active_port = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&active_port) {
                if let Some((port, path)) = text.split_once('\n') {
                    if !path.trim().is_empty() {
                        break format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
                    }
                }
            }
            assert!(started.elapsed() < BROWSER_START, "chromium never opened its DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(endpoint).await.unwrap();
        let mut browser =
            Browser { process, socket, session: String::new(), next_id: 0, events: Vec::new(), _profile: profile };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached =
            browser.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({})).await;
        }
        let viewport = json!({"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false});
        browser.call("Emulation.setDeviceMetricsOverride", viewport).await;
        browser
    }

    /// Sends a command (to the page, once attached) and waits for its answer, keeping the
    /// events that arrive meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::Text(message.to_string().into())).await.unwrap();
        loop {
            let received = tokio::time::timeout(HANG, self.socket.next()).await.expect("a DevTools answer");
            let Some(Ok(Message::Text(text))) = received else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
        }
    }

    async fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        result["result"]["value"].clone()
    }

    async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.until("document.readyState === 'complete' && location.href !== 'about:blank'").await;
    }

    /// Polls `condition` in the page until it holds.
    async fn until(&mut self, condition: &str) {
        let started = Instant::now();
        while self.evaluate(condition).await != json!(true) {
            assert!(started.elapsed() < HANG, "never: {condition}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The console errors, uncaught exceptions and failed loads the page reported.
    fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| {
                let method = event["method"].as_str().unwrap_or_default();
                method == "Runtime.exceptionThrown"
                    || (method == "Runtime.consoleAPICalled" && event["params"]["type"] == "error")
                    || (method == "Log.entryAdded" && event["params"]["entry"]["level"] == "error")
            })
            .map(|event| event.to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_live_figures_in_headless_chromium() {
    let (_db, server) = dashboard_server().await;
    let (token, project) = server.owner_with_project().await;
    // Traffic while the page watches: project reads, bounded, stopping by themselves.
    let traffic = {
        let url = format!("{}/api/projects/{project}", server.base);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..400 {
                let _ = client.get(&url).bearer_auth(&token).send().await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let mut browser = Browser::start().await;
    browser.navigate(&format!("{}/admin", server.base)).await;
    let filled =
        format!("document.getElementById('token').value = {}; document.forms[0].submit(); true", json!(ADMIN_TOKEN));
    browser.evaluate(&filled).await;
    browser.until("document.getElementById('kpis') !== null").await;
    browser.navigate(&format!("{}/admin?refresh=300", server.base)).await;
    browser.until("Number(document.body.dataset.refreshes || 0) >= 3").await;

    let drawn = browser
        .evaluate(
            "({kpis: document.querySelectorAll('#kpis .kpi').length,
              throughput: document.querySelectorAll('#chart-throughput path.series').length,
              pool: document.querySelectorAll('#chart-pool line.limit').length,
              bars: document.querySelectorAll('#chart-routes rect.bar').length,
              routes: Array.from(document.querySelectorAll('#table-routes td')).map(td => td.textContent),
              queries: document.querySelectorAll('#table-queries tr').length,
              tables: document.querySelectorAll('#table-tables tr').length,
              kpiText: Array.from(document.querySelectorAll('#kpis .kpi')).map(k => k.textContent)})",
        )
        .await;
    // The seed's four KPIs, and the pool's waits.
    assert_eq!(drawn["kpis"], 5, "{drawn}");
    let tiles: Vec<String> = serde_json::from_value(drawn["kpiText"].clone()).unwrap();
    assert!(tiles.iter().any(|tile| tile.contains("pool waits") && tile.contains("waiting, p95")), "{tiles:?}");
    assert_eq!(drawn["throughput"], 1, "the throughput line: {drawn}");
    assert_eq!(drawn["pool"], 1, "the pool's limit line: {drawn}");
    assert!(drawn["bars"].as_u64().unwrap() >= 2, "route bars: {drawn}");
    let routes: Vec<String> = serde_json::from_value(drawn["routes"].clone()).unwrap();
    assert!(routes.iter().any(|cell| cell == "GET /api/projects/{id}"), "{routes:?}");
    assert!(drawn["queries"].as_u64().unwrap() > 2 && drawn["tables"].as_u64().unwrap() > 2, "{drawn}");

    let shot = browser.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
    let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    std::fs::write(&path, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of {} bytes", png.len());
    eprintln!("dashboard screenshot: {} ({} bytes); KPIs: {}", path.display(), png.len(), drawn["kpiText"]);

    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    traffic.abort();
}
