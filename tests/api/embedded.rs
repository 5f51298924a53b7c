//! The embedded default cluster, on a data directory of the test's own.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use secrecy::ExposeSecret;
use sqlx::{Connection, Executor, PgConnection};
use vibing2::db::embedded::{find_server_binaries, EmbeddedCluster};

#[tokio::test]
async fn the_cluster_starts_runs_unprivileged_stops_and_keeps_its_data() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cluster = EmbeddedCluster::start(dir.path(), &[]).await.unwrap();
    let mut conn = PgConnection::connect(cluster.url().expose_secret()).await.unwrap();
    conn.execute("CREATE TABLE kept (value TEXT); INSERT INTO kept VALUES ('across restarts')").await.unwrap();
    let server_user: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut conn)
        .await
        .map(|data_dir: String| {
            let owner = std::fs::metadata(&data_dir).unwrap().uid();
            nix::unistd::User::from_uid(owner.into()).unwrap().unwrap().name
        })
        .unwrap();
    if nix::unistd::Uid::effective().is_root() {
        assert_ne!(server_user, "root", "PostgreSQL must not run as root");
    }
    conn.close().await.unwrap();
    cluster.stop().await.unwrap();
    assert!(!dir.path().join("data/postmaster.pid").exists(), "stopped cleanly");

    let again = EmbeddedCluster::start(dir.path(), &[]).await.unwrap();
    let mut conn = PgConnection::connect(again.url().expose_secret()).await.unwrap();
    let value: String = sqlx::query_scalar("SELECT value FROM kept").fetch_one(&mut conn).await.unwrap();
    assert_eq!(value, "across restarts");
    conn.close().await.unwrap();
    again.stop().await.unwrap();
}

#[test]
fn without_server_binaries_the_error_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let error = find_server_binaries(&[empty.path().to_path_buf()], &empty.path().join("postgresql")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("apt-get install postgresql") && message.contains("DATABASE_URL"), "{message}");
}

#[test]
fn server_binaries_are_found_in_the_newest_versioned_directory() {
    let root = tempfile::tempdir().unwrap();
    for version in ["13", "15", "9"] {
        let bin = root.path().join(version).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("initdb"), "").unwrap();
        std::fs::write(bin.join("pg_ctl"), "").unwrap();
    }
    let found = find_server_binaries(&[PathBuf::from("/nonexistent")], root.path()).unwrap();
    assert_eq!(found, root.path().join("15/bin"));
}
