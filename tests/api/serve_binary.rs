//! The README's first command: `vibing2 serve` on the embedded default, stopped by SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[tokio::test]
async fn serve_on_the_embedded_default_answers_health_and_stops_the_cluster_on_sigterm() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vibing2"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("VIBING2_DATABASE__EMBEDDED_DIR", dir.path())
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The log goes to standard output.
    let mut stdout = child.stdout.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await.unwrap();
        text
    });

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/health/database");
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        match client.get(&url).send().await {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(error) => panic!("the service never answered: {error}"),
        }
    };
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(dir.path().join("data/postmaster.pid").exists(), "the cluster is running");
    let key = std::fs::metadata(dir.path().join("cursor.key")).expect("the cursor key is kept beside the cluster");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777, 0o600);

    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!dir.path().join("data/postmaster.pid").exists(), "the cluster was stopped");
    let log = log.await.unwrap();
    let warnings: Vec<&str> = log.lines().filter(|line| line.contains("embedded development database")).collect();
    assert_eq!(warnings.len(), 1, "one clear warning line: {log}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
}
