//! A request that is dropped takes its query with it: its backend leaves `pg_stat_activity`
//! and its pool slot is free again. The query is held on a lock the test takes, so it would
//! otherwise wait for its full `statement_timeout` (30 s).

use std::time::{Duration, Instant};

use sqlx::{Executor, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{SpawnedServer, TestDb};

/// Far past every timeout the tests configure: reaching it means something hung.
const HANG: Duration = Duration::from_secs(15);

/// The service's backends of `db` that wait on a lock: the requests the test holds up.
async fn waiting_backends(observer: &mut PgConnection, db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = $1 AND application_name = 'vibing2' AND wait_event_type = 'Lock'",
    )
    .bind(&db.name)
    .fetch_one(observer)
    .await
    .unwrap()
}

/// Polls until the number of held-up backends is `expected`; how long that took.
async fn until_waiting(observer: &mut PgConnection, db: &TestDb, expected: i64) -> Duration {
    let started = Instant::now();
    while waiting_backends(observer, db).await != expected {
        assert!(started.elapsed() < HANG, "never {expected} held-up backends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Sends a project read over raw TCP; the connection, so the test decides when it goes away.
async fn read_project(server: &SpawnedServer, token: &str, project: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let request = format!(
        "GET /api/projects/{project} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\n\r\n",
        server.port
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Takes a lock every project read waits on, in a transaction the caller ends.
async fn lock_projects(blocker: &mut PgConnection) {
    blocker.execute(r#"BEGIN; LOCK TABLE "Project" IN ACCESS EXCLUSIVE MODE"#).await.unwrap();
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_no_query_behind() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(&db, &[("VIBING2_DATABASE__CANCEL_CHECK_MS", "100")]).await;
    let (token, project) = server.owner_with_project().await;
    let mut blocker = db.connect().await;
    let mut observer = db.connect().await;
    lock_projects(&mut blocker).await;

    let client = read_project(&server, &token, &project).await;
    until_waiting(&mut observer, &db, 1).await;
    drop(client);
    let gone_after = until_waiting(&mut observer, &db, 0).await;
    eprintln!("the backend left pg_stat_activity {gone_after:?} after its client");
    assert!(gone_after < Duration::from_secs(1), "the backend stayed {gone_after:?} after its client went away");

    // Its transaction is rolled back and its slot given back: the lock holder is alone, and
    // once it lets go the service reads as before.
    blocker.execute("ROLLBACK").await.unwrap();
    let answer = reqwest::Client::new()
        .get(format!("{}/api/projects/{project}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_request_past_its_deadline_leaves_no_query_behind() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(
        &db,
        &[
            ("VIBING2_SERVER__REQUEST_TIMEOUT_SECS", "1"),
            ("DB_STATEMENT_TIMEOUT", "1000"),
            ("VIBING2_DATABASE__CANCEL_CHECK_MS", "100"),
        ],
    )
    .await;
    let (token, project) = server.owner_with_project().await;
    let mut blocker = db.connect().await;
    let mut observer = db.connect().await;
    lock_projects(&mut blocker).await;

    let mut client = read_project(&server, &token, &project).await;
    until_waiting(&mut observer, &db, 1).await;
    let mut head = [0u8; 12];
    tokio::time::timeout(HANG, client.read_exact(&mut head)).await.expect("an answer by the deadline").unwrap();
    // The deadline (408) and the matching statement timeout (503) end it together.
    let status = String::from_utf8_lossy(&head[9..12]).into_owned();
    assert!(status == "408" || status == "503", "status {status}");
    let gone_after = until_waiting(&mut observer, &db, 0).await;
    eprintln!("answered {status}; the backend left pg_stat_activity {gone_after:?} after the answer");
    assert!(gone_after < Duration::from_secs(1), "the backend stayed {gone_after:?} after the deadline");
    blocker.execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn a_statement_timeout_longer_than_the_request_deadline_is_refused() {
    let settings = vibing2::config::Settings::from_pairs([
        ("server.request_timeout_secs", "5".to_owned()),
        ("database.statement_timeout_ms", "6000".to_owned()),
    ]);
    let error = settings.expect_err("a statement may not outlive its request").to_string();
    assert!(error.contains("DB_STATEMENT_TIMEOUT"), "{error}");
}
