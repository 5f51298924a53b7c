//! Request bodies cost nothing until the caller may write, and large ones are bounded: a
//! few in flight, each within its route's limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::{file_batch_request, SpawnedServer, StalledBody, TestApp, TestDb};

const CHUNK: usize = 64 * 1024;

/// `[0,0,…,0]` of about `bytes` bytes: valid JSON of the wrong shape for every route.
fn zeros(bytes: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes + 2);
    body.push(b'[');
    while body.len() + 2 < bytes {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]");
    body
}

/// A body streamed in 64 KiB chunks that counts how many bytes the server pulled.
fn counted(bytes: Vec<u8>, pulled: Arc<AtomicUsize>) -> Body {
    let chunks: Vec<Bytes> = bytes.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    Body::from_stream(futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        pulled.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk)
    })))
}

async fn send(app: &TestApp, method: Method, uri: &str, token: Option<&str>, body: Body) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let text = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, text)
}

#[tokio::test]
async fn a_body_is_not_read_before_the_caller_may_write() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let stranger = app.user("Stranger").await;
    let private = app.project(&owner, "PRIVATE").await;
    let public = app.project(&owner, "PUBLIC").await;
    let body = zeros(4 * 1024 * 1024);

    let refused = [
        (Method::PUT, "/api/projects/no-such-project/files".to_owned(), None, StatusCode::NOT_FOUND),
        (Method::PUT, format!("/api/projects/{private}/files"), None, StatusCode::NOT_FOUND),
        (Method::PUT, format!("/api/projects/{private}/files"), Some(&stranger.token), StatusCode::NOT_FOUND),
        (Method::PUT, format!("/api/projects/{public}/files"), Some(&stranger.token), StatusCode::FORBIDDEN),
        (Method::POST, format!("/api/projects/{private}/messages"), None, StatusCode::NOT_FOUND),
        (Method::PATCH, format!("/api/projects/{public}"), Some(&stranger.token), StatusCode::FORBIDDEN),
        (Method::POST, format!("/api/projects/{public}/invites"), None, StatusCode::UNAUTHORIZED),
        (Method::POST, format!("/api/projects/{public}/fork"), None, StatusCode::UNAUTHORIZED),
        (Method::POST, "/api/usage".to_owned(), None, StatusCode::UNAUTHORIZED),
    ];
    for (method, uri, token, expected) in refused {
        let pulled = Arc::new(AtomicUsize::new(0));
        let token = token.map(String::as_str);
        let (status, text) = send(&app, method.clone(), &uri, token, counted(body.clone(), pulled.clone())).await;
        assert_eq!(status, expected, "{method} {uri}: {text}");
        assert_eq!(pulled.load(Ordering::SeqCst), 0, "{method} {uri}: the body was read before the refusal");
    }

    // The owner may write: the same body is read whole and refused for its shape.
    let pulled = Arc::new(AtomicUsize::new(0));
    let uri = format!("/api/projects/{private}/files");
    let (status, text) = send(&app, Method::PUT, &uri, Some(&owner.token), counted(body.clone(), pulled.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!(pulled.load(Ordering::SeqCst), body.len());

    // Past the route's limit: 413, and the account routes' limit is small.
    let (status, _) = send(&app, Method::PUT, &uri, Some(&owner.token), Body::from(zeros(9 * 1024 * 1024))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(&app, Method::POST, "/api/auth/login", None, Body::from(zeros(32 * 1024))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn large_bodies_wait_for_a_slot_and_a_full_house_answers_503() {
    let app =
        TestApp::with_settings(&[("server.large_bodies_in_flight", "1"), ("server.large_body_wait_ms", "200")]).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    let uri = format!("/api/projects/{project}/files");

    // A body of unknown length that never ends holds the one slot.
    let holder =
        tokio::spawn(app.router.clone().oneshot(file_batch_request(&project, &owner.token, StalledBody::undeclared())));
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.large_bodies.available_permits() > 0 {
        assert!(Instant::now() < deadline, "the stalled body never took its slot");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let response = app
        .router
        .clone()
        .oneshot(file_batch_request(&project, &owner.token, Body::from(zeros(1024 * 1024))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "overloaded");

    // A small body needs no slot.
    let message = serde_json::json!({"role": "user", "content": "small"});
    let messages = format!("/api/projects/{project}/messages");
    let small = app.call(Method::POST, &messages, Some(&owner.token), Some(message)).await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.json);

    // The stalled client goes away: its slot is free again.
    holder.abort();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.large_bodies.available_permits() == 0 {
        assert!(Instant::now() < deadline, "the slot was never given back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Two files within the free plan's 50 KiB each: a body over 64 KiB, so it needs the slot.
    let content = "x".repeat(40_000);
    let batch = serde_json::json!({"operations": [
        {"op": "upsert", "path": "a.txt", "content": content},
        {"op": "upsert", "path": "b.txt", "content": content},
    ]});
    assert_eq!(app.call(Method::PUT, &uri, Some(&owner.token), Some(batch)).await.status, StatusCode::OK);
}

/// The peak resident set of a process, from /proc (Linux).
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("VmHWM in /proc/PID/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_maximum_bodies_keep_the_server_under_150_mb() {
    let db = TestDb::migrated().await;
    let mut server = SpawnedServer::start(&db, &[]).await;
    let (pid, base, client) = (server.pid(), server.base.clone(), reqwest::Client::new());
    let (token, project) = server.owner_with_project().await;
    let before = peak_rss_bytes(pid);

    // The file batch route's limit, 8 MiB, less a little.
    let body = Bytes::from(zeros(8 * 1024 * 1024 - 1024));
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..64 {
        let (client, body, token) = (client.clone(), body.clone(), token.clone());
        let uri = if n % 2 == 0 {
            format!("{base}/api/projects/x/files")
        } else {
            format!("{base}/api/projects/{project}/files")
        };
        let authenticated = n % 2 == 1;
        requests.spawn(async move {
            let mut request = client.put(uri).header(header::CONTENT_TYPE, "application/json").body(body);
            if authenticated {
                request = request.bearer_auth(token);
            }
            (authenticated, request.send().await.map(|response| response.status().as_u16()))
        });
    }
    while let Some(outcome) = requests.join_next().await {
        match outcome.unwrap() {
            // Authenticated: read whole and refused for its shape, or no slot free in time.
            (true, status) => assert!(matches!(status, Ok(422) | Ok(503)), "authenticated: {status:?}"),
            // Anonymous, to a project that does not exist: refused unread (the server may
            // close the connection before the client has sent it all).
            (false, Ok(status)) => assert_eq!(status, 404),
            (false, Err(_)) => {}
        }
    }
    let peak = peak_rss_bytes(pid);
    eprintln!("peak RSS: {} MB before the bodies, {} MB after 64 of 8 MiB", before >> 20, peak >> 20);
    assert!(peak < 150 * 1024 * 1024, "peak RSS {} MB", peak >> 20);
    server.child.kill().await.unwrap();
}
