//! Connection timeouts and the drain on SIGTERM, against a spawned `vibing2 serve` spoken to
//! over raw TCP, so the test controls every byte and its timing.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::support::{file_batch_request, SpawnedServer, StalledBody, TestApp, TestDb, TestUser};

/// Far past every timeout the tests configure: reaching it means something hung.
const HANG: Duration = Duration::from_secs(15);

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut received)).await.expect("the server closed the connection").ok();
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends the head of a file batch of `body_len` bytes and returns once the handler reads its
/// body: with `Expect: 100-continue`, hyper answers `100 Continue` only then. From that point
/// the request is surely in flight.
async fn start_file_batch(stream: &mut TcpStream, port: u16, token: &str, project: &str, body_len: usize) {
    let head = format!(
        "PUT /api/projects/{project}/files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {body_len}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(HANG, stream.read(&mut byte)).await.expect("100 Continue").unwrap();
        assert_eq!(read, 1, "the connection closed before 100 Continue");
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&interim));
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed_by_the_header_read_timeout() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(&db, &[("VIBING2_SERVER__HEADER_READ_TIMEOUT_MS", "300")]).await;

    // Headers that never end: the connection is closed, with nothing served.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let answered = read_to_close(&mut slow).await;
    assert!(!answered.contains("200 OK"), "{answered}");

    // A keep-alive connection that goes quiet after its answer is closed too.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answered = read_to_close(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200 OK"), "{answered}");
}

#[tokio::test]
async fn sigterm_drains_the_request_in_flight_and_refuses_new_connections() {
    let db = TestDb::migrated().await;
    let mut server = SpawnedServer::start(&db, &[("VIBING2_SERVER__DRAIN_TIMEOUT_SECS", "10")]).await;
    let (token, project) = server.owner_with_project().await;

    // A request whose body is half sent when SIGTERM arrives.
    let body = r#"{"operations":[{"op":"upsert","path":"drained.txt","content":"finished after SIGTERM"}]}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut in_flight = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    start_file_batch(&mut in_flight, server.port, &token, &project, body.len()).await;
    in_flight.write_all(first_half.as_bytes()).await.unwrap();
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGTERM).unwrap();

    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + HANG;
    while TcpStream::connect(("127.0.0.1", server.port)).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The request in flight is finished, not cut.
    in_flight.write_all(second_half.as_bytes()).await.unwrap();
    let answered = read_to_close(&mut in_flight).await;
    assert!(answered.starts_with("HTTP/1.1 200 OK"), "{answered}");
    let status = tokio::time::timeout(HANG, server.child.wait()).await.expect("the server exits").unwrap();
    assert!(status.success(), "{status}");
    let mut conn = db.connect().await;
    let kept: String = sqlx::query_scalar(r#"SELECT "content" FROM "ProjectFile" WHERE "path" = 'drained.txt'"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, "finished after SIGTERM");
}

#[tokio::test]
async fn a_request_still_in_flight_at_the_drain_deadline_is_cut_and_the_server_exits() {
    let db = TestDb::migrated().await;
    let mut server = SpawnedServer::start(&db, &[("VIBING2_SERVER__DRAIN_TIMEOUT_SECS", "1")]).await;
    let (token, project) = server.owner_with_project().await;
    let mut stuck = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    start_file_batch(&mut stuck, server.port, &token, &project, 100).await;
    stuck.write_all(b"{").await.unwrap();
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGTERM).unwrap();

    let status = tokio::time::timeout(HANG, server.child.wait()).await.expect("the server exits").unwrap();
    assert!(status.success(), "{status}");
    let answered = read_to_close(&mut stuck).await;
    assert!(!answered.contains("200 OK"), "the stuck request was cut: {answered}");
}

/// An app whose request deadline is 1 s (and statements 1 s) and whose upload deadline is
/// `upload_secs`, with an owner and their project.
async fn app_with_deadlines(upload_secs: &str) -> (TestApp, TestUser, String) {
    let app = TestApp::with_settings(&[
        ("server.request_timeout_secs", "1"),
        ("database.statement_timeout_ms", "1000"),
        ("server.upload_timeout_secs", upload_secs),
    ])
    .await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    (app, owner, project)
}

#[tokio::test]
async fn a_request_not_complete_within_its_deadline_is_408() {
    let (app, owner, project) = app_with_deadlines("1").await;
    // A small body (the request deadline) and one of undeclared length (the upload deadline).
    for length in [Some(100), None] {
        let request = file_batch_request(&project, &owner.token, StalledBody(length).into());
        let response =
            tokio::time::timeout(HANG, app.router.clone().oneshot(request)).await.expect("answered").unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "declared length {length:?}");
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "request_timeout");
    }
}

#[tokio::test]
async fn a_large_body_has_the_upload_deadline_and_a_small_one_the_request_deadline() {
    // The request deadline is short and the upload deadline far off: a stalled large body is
    // still waited for when the small one has been answered.
    let (app, owner, project) = app_with_deadlines("600").await;
    let mut large =
        tokio::spawn(app.router.clone().oneshot(file_batch_request(&project, &owner.token, StalledBody::undeclared())));
    let small = app.router.clone().oneshot(file_batch_request(&project, &owner.token, StalledBody::declaring(100)));
    let small = tokio::time::timeout(HANG, small).await.expect("answered").unwrap();
    assert_eq!(small.status(), StatusCode::REQUEST_TIMEOUT);
    // Two more request deadlines pass, and the large body is still being waited for.
    let still_waiting = tokio::time::timeout(Duration::from_secs(2), &mut large).await.is_err();
    assert!(still_waiting, "the large body's deadline is the upload deadline");
    large.abort();
}
