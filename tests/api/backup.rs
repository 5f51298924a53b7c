//! `vibing2 backup`, `vibing2 restore` and the backup `vibing2 migrate` takes first, run as the
//! binary against real databases. Fake `pg_dump`s (shell scripts) stand in only where a real
//! one cannot be made to fail or to be of another version.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sqlx::{Executor, PgConnection};
use vibing2::db::backup::{self, Counts};
use vibing2::db::migrate::{self, MIGRATIONS};

use crate::migrations::catalog_snapshot;
use crate::support::{TestApp, TestDb};

const LEGACY_ROWS: &str = include_str!("../fixtures/phase2_legacy_rows.sql");
/// Put into the URL the commands get; trust authentication never asks for it.
const PASSWORD: &str = "backup-test-s3cret";

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the binary on `url` in `dir`, with `env` on top.
async fn vibing2(dir: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vibing2"));
    command.args(args).current_dir(dir).env("DATABASE_URL", url).env_remove(backup::BIN_DIR_VARIABLE);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The database's URL with a password in it, unless it has one.
fn with_password(db: &TestDb) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    if url.password().is_none() {
        url.set_password(Some(PASSWORD)).unwrap();
    }
    url.to_string()
}

/// A Phase-2 database as Prisma built and the platform filled it: data, and every later
/// migration pending.
async fn phase2_database() -> TestDb {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    conn.execute(sqlx::raw_sql(MIGRATIONS[0].sql)).await.expect("Prisma-era DDL");
    conn.execute(sqlx::raw_sql(LEGACY_ROWS)).await.expect("legacy rows");
    db
}

async fn counts(db: &TestDb) -> BTreeMap<String, i64> {
    backup::row_counts(&mut db.connect().await).await.unwrap()
}

async fn schema_version(conn: &mut PgConnection) -> Option<i64> {
    migrate::current_version(conn).await.unwrap()
}

/// The files in `dir` (none if it does not exist), sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

/// The one backup in `dir`, with its counts.
fn the_backup(dir: &Path) -> (PathBuf, Counts) {
    let files = files_in(dir);
    assert_eq!(files.len(), 2, "a dump and its counts: {files:?}");
    let dump = files.iter().find(|file| file.extension().is_some_and(|ext| ext == "dump")).unwrap().clone();
    let counts = serde_json::from_slice(&std::fs::read(backup::counts_path(&dump)).unwrap()).unwrap();
    (dump, counts)
}

async fn server_major(db: &TestDb) -> u32 {
    let number: String =
        sqlx::query_scalar("SHOW server_version_num").fetch_one(&mut db.connect().await).await.unwrap();
    number.parse::<u32>().unwrap() / 10_000
}

/// A directory of fake `pg_dump` and `pg_restore` scripts that claim `version`. The dump
/// records its arguments and `PGPASSWORD` in `args`, then fails.
fn fake_tools(dir: &Path, version: &str) -> PathBuf {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["pg_dump", "pg_restore"] {
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{tool} (PostgreSQL) {version}'; exit 0; fi\n\
             echo \"$@\" > '{args}'\necho \"PGPASSWORD=$PGPASSWORD\" >> '{args}'\n\
             echo '{tool}: error: simulated failure' >&2\nexit 1\n",
            args = bin.join("args").display()
        );
        let path = bin.join(tool);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[tokio::test]
async fn migrate_backs_up_a_database_with_data_before_upgrading_it() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = phase2_database().await;
    let before = counts(&db).await;
    assert!(before["User"] > 0 && before["Project"] > 0, "{before:?}");

    let run = vibing2(dir.path(), &with_password(&db), &["migrate", "--backup-dir", "saved"], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("backing it up first"), "{}", run.stdout);
    assert!(!format!("{}{}", run.stdout, run.stderr).contains(PASSWORD), "the password was printed");

    let (dump, recorded) = the_backup(&dir.path().join("saved"));
    let name = dump.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&format!("{}_", db.name)) && name.ends_with("_v0000.dump"), "{name}");
    assert_eq!(recorded.tables, before, "the counts are the database's before the migration");
    assert_eq!(recorded.schema_version, None);

    // Migrated, with the data kept.
    let mut conn = db.connect().await;
    assert_eq!(schema_version(&mut conn).await, Some(migrate::latest_version()));
    assert_eq!(counts(&db).await["User"], before["User"]);
    assert_eq!(counts(&db).await["Project"], before["Project"]);

    // The backup brings the Phase-2 database back, row for row.
    let restored = TestDb::empty().await;
    let run = vibing2(dir.path(), &restored.url, &["restore", dump.to_str().unwrap()], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(counts(&restored).await, before);
    assert_eq!(schema_version(&mut restored.connect().await).await, None, "no ledger: the Phase-2 state");
}

#[tokio::test]
async fn a_failed_dump_stops_migrate_before_the_schema_is_touched() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = phase2_database().await;
    let fake = fake_tools(dir.path(), &format!("{}.0", server_major(&db).await));
    let catalog_before = catalog_snapshot(&mut db.connect().await).await;

    let run = vibing2(
        dir.path(),
        &with_password(&db),
        &["migrate", "--backup-dir", "saved"],
        &[(backup::BIN_DIR_VARIABLE, fake.to_str().unwrap())],
    )
    .await;
    assert!(!run.ok, "migrate went on: {}", run.stdout);
    assert!(run.stderr.contains("refusing to migrate"), "{}", run.stderr);
    assert!(run.stderr.contains("simulated failure"), "the dump's own message: {}", run.stderr);
    assert!(files_in(&dir.path().join("saved")).is_empty(), "no partial file is left");

    let mut conn = db.connect().await;
    assert_eq!(catalog_snapshot(&mut conn).await, catalog_before, "the schema is untouched");
    let ledger: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('\"_vibing2_migrations\"')::text").fetch_one(&mut conn).await.unwrap();
    assert_eq!(ledger, None, "not even the ledger was created");

    // The password went to pg_dump through its environment, not its arguments.
    let recorded = std::fs::read_to_string(fake.join("args")).unwrap();
    let (arguments, environment) = recorded.split_once('\n').unwrap();
    assert!(arguments.contains("--format=custom") && !arguments.contains(PASSWORD), "{arguments}");
    if url::Url::parse(&db.url).unwrap().password().is_none() {
        assert_eq!(environment.trim(), format!("PGPASSWORD={PASSWORD}"));
    }
}

#[tokio::test]
async fn no_backup_migrates_without_one_and_says_so() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = phase2_database().await;
    let run = vibing2(dir.path(), &db.url, &["migrate", "--no-backup", "--backup-dir", "saved"], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("backup skipped (--no-backup)"), "{}", run.stdout);
    assert!(!dir.path().join("saved").exists());
    assert_eq!(schema_version(&mut db.connect().await).await, Some(migrate::latest_version()));
}

#[tokio::test]
async fn an_empty_or_current_database_takes_no_backup() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = TestDb::empty().await;
    let run = vibing2(dir.path(), &db.url, &["migrate", "--backup-dir", "saved"], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(!dir.path().join("saved").exists(), "an empty database has nothing to back up");

    // Data, but nothing pending.
    let mut conn = db.connect().await;
    conn.execute(r#"INSERT INTO "User" ("id", "email", "password", "updatedAt") VALUES ('u1', 'a@b.c', 'x', now())"#)
        .await
        .unwrap();
    assert!(backup::holds_data(&mut conn).await.unwrap());
    assert!(!migrate::has_pending(&mut conn).await.unwrap());
    let run = vibing2(dir.path(), &db.url, &["migrate", "--backup-dir", "saved"], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(!dir.path().join("saved").exists(), "nothing pending, no backup");
}

#[tokio::test]
async fn backup_restores_into_an_empty_database_and_replace_overwrites_a_used_one() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let app = TestApp::new().await;
    let owner = app.user("Backer").await;
    app.project(&owner, "PUBLIC").await;
    app.project(&owner, "PRIVATE").await;
    let source = counts(&app.db).await;

    let run = vibing2(dir.path(), &with_password(&app.db), &["backup", "--backup-dir", "saved"], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(!format!("{}{}", run.stdout, run.stderr).contains(PASSWORD), "the password was printed");
    for step in ["counting the rows", "dumping", "verifying the dump", "backup: ", "Project"] {
        assert!(run.stdout.contains(step), "{step:?} missing from:\n{}", run.stdout);
    }
    let (dump, recorded) = the_backup(&dir.path().join("saved"));
    assert_eq!(recorded.tables, source);
    assert_eq!(recorded.schema_version, Some(migrate::latest_version()));
    let dump = dump.to_str().unwrap();

    let target = TestDb::empty().await;
    let run = vibing2(dir.path(), &with_password(&target), &["restore", dump], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("row counts match"), "{}", run.stdout);
    assert_eq!(counts(&target).await, source);

    // A database with tables is refused, even with no rows in them, and left as it was.
    let run = vibing2(dir.path(), &target.url, &["restore", dump], &[]).await;
    assert!(!run.ok && run.stderr.contains("not empty") && run.stderr.contains("--replace"), "{}", run.stderr);
    let migrated = TestDb::migrated().await;
    let run = vibing2(dir.path(), &migrated.url, &["restore", dump], &[]).await;
    assert!(!run.ok && run.stderr.contains("not empty"), "{}", run.stderr);

    // --replace: the target's own changes are gone.
    let mut conn = target.connect().await;
    conn.execute(r#"DELETE FROM "Project""#).await.unwrap();
    conn.execute(r#"CREATE TABLE "Stray" ("id" int)"#).await.unwrap();
    let run = vibing2(dir.path(), &target.url, &["restore", "--replace", dump], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(counts(&target).await, source);

    // A restore whose counts differ from the file's is an error.
    let counts_file = backup::counts_path(Path::new(dump));
    let mut tampered = recorded.clone();
    *tampered.tables.get_mut("Project").unwrap() += 1;
    std::fs::write(&counts_file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let run = vibing2(dir.path(), &target.url, &["restore", "--replace", dump], &[]).await;
    assert!(!run.ok && run.stderr.contains("differ") && run.stderr.contains("Project"), "{}", run.stderr);
}

#[tokio::test]
async fn a_pg_dump_of_another_major_version_is_refused_with_both_versions() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = TestDb::migrated().await;
    let major = server_major(&db).await;
    let other = if major == 14 { "16.2" } else { "14.0" };
    let fake = fake_tools(dir.path(), other);

    let run = vibing2(
        dir.path(),
        &db.url,
        &["backup", "--backup-dir", "saved"],
        &[(backup::BIN_DIR_VARIABLE, fake.to_str().unwrap())],
    )
    .await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(run.stderr.contains(&format!("is version {other}")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("the server is PostgreSQL {major}.")), "{}", run.stderr);
    assert!(files_in(&dir.path().join("saved")).is_empty());
    assert!(!fake.join("args").exists(), "the fake was only asked its version");
}
