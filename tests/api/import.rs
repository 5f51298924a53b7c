//! `vibing2 import`: the real Phase-1 fixture, each normalisation rule, the quarantine, the
//! e-mail conflict modes, a kill -9 and resume, an idempotent rerun, and the refusals.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use rusqlite::params;
use sqlx::{Connection, Row};
use vibing2::import::report::{ImportReport, Outcome};
use vibing2::import::tables::ApiLimits;
use vibing2::import::{self, EmailConflict, ImportOptions};

use crate::support::{TestApp, TestDb};

/// The real Phase-1 database (a copy of `../shared/fixtures/phase1-dev.db`; its README
/// describes its quirks).
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/phase1-dev.db");

/// A copy of the real fixture, in a directory of the test's own.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phase1.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&path, permissions).unwrap();
    (dir, path)
}

/// Opens a test source for writing. SQLite (as Prisma ran it) enforces no foreign key, so
/// the tests can write the orphans Phase-1 databases hold.
fn writable(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    connection
}

/// The fixture's schema with no rows, for a test to fill.
fn empty_phase1() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = fixture_copy();
    let source = writable(&path);
    for table in ["Message", "ProjectFile", "Project", "Session", "User"] {
        source.execute(&format!("DELETE FROM \"{table}\""), []).unwrap();
    }
    (dir, path)
}

fn options(source: &Path, rejects: &Path) -> ImportOptions {
    ImportOptions {
        source: source.to_owned(),
        on_email_conflict: EmailConflict::Fail,
        batch_rows: 10_000,
        quiet: true,
        rejects_path: rejects.to_owned(),
        limits: ApiLimits { message_chars: 200_000, file_bytes: 50 * 1024 },
    }
}

async fn import_into(db: &TestDb, options: &ImportOptions) -> anyhow::Result<ImportReport> {
    import::run(&db.url.parse().unwrap(), options).await
}

fn table<'a>(report: &'a ImportReport, name: &str) -> &'a vibing2::import::report::TableReport {
    report.tables.iter().find(|table| table.table == name).unwrap()
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn the_real_fixture_imports_whole_and_its_bcrypt_user_logs_in() {
    let (dir, source) = fixture_copy();
    let before = sha256_of(&source);
    // Another process has the source open, mid-transaction (holding SQLite's RESERVED lock),
    // as the running Phase-1 platform would.
    let other = writable(&source);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let db = TestDb::empty().await;
    let report = import_into(&db, &options(&source, &dir.path().join("rejects.jsonl"))).await.unwrap();
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    assert!(report.ok, "{}", report.text());
    assert_eq!(sha256_of(&source), before, "the source is never written");
    for (name, rows) in [("User", 2), ("Project", 2), ("Message", 3), ("ProjectFile", 2)] {
        assert_eq!(table(&report, name).target_rows, rows, "{name}");
    }
    assert_eq!(table(&report, "ProjectFile").generated, 2, "both projects' currentCode became index.html");
    assert_eq!(report.quarantined, 0);

    let mut conn = db.connect().await;
    // Text and integer timestamps, both October 2025, both exact.
    let times: Vec<(String, String)> =
        sqlx::query_as(r#"SELECT "id", to_char("createdAt", 'YYYY-MM-DD HH24:MI:SS.MS') FROM "User" ORDER BY "id""#)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        times,
        [
            ("8caaaae3-6c19-4e17-83a3-986955218d79".to_owned(), "2025-10-10 10:07:58.000".to_owned()),
            ("cmgkpc5w000042g48cmr3rs93".to_owned(), "2025-10-10 10:26:48.912".to_owned()),
        ]
    );
    let message_time: String = sqlx::query_scalar(
        r#"SELECT to_char("createdAt", 'YYYY-MM-DD HH24:MI:SS.MS') FROM "Message" WHERE "id" = 'cmgnf9dif001i2gcdynd8zdd9'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(message_time, "2025-10-12 08:08:01.190");
    // The double-encoded activeAgents is an array now.
    let agents: serde_json::Value =
        sqlx::query_scalar(r#"SELECT "activeAgents" FROM "Project" WHERE "id" = 'cmgnf9dib001h2gcd5bha33ob'"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(agents, serde_json::json!(["frontend-developer", "ui-ux-designer", "code-reviewer"]));
    // The placeholder password is no credential: marked for a reset, reported.
    let (password, reset): (String, bool) =
        sqlx::query_as(r#"SELECT "password", "passwordResetRequired" FROM "User" WHERE "email" = 'user@example.com'"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((password.as_str(), reset), ("", true));
    let reported: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM "MigrationIssue" WHERE "tableName" = 'User' AND "columnName" = 'password'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(reported, 1);
    // The cursors follow createdAt; the sequence goes on past them.
    let cursors: Vec<i64> = sqlx::query_scalar(r#"SELECT "cursor" FROM "Message" ORDER BY "createdAt", "id""#)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(cursors, [1, 2, 3]);
    // The users' public faces came with them: the COPY into "User" fires migration 15's trigger.
    let faces: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as(r#"SELECT "id", "name", "image" FROM "UserFace" ORDER BY "id""#)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let users: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as(r#"SELECT "id", "name", "image" FROM "User" ORDER BY "id""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!((faces.len(), &faces), (2, &users));

    // The keys, indexes and foreign keys dropped for the load are all back, as migrate made them.
    let migrated = TestDb::migrated().await;
    assert_eq!(schema_objects(&db).await, schema_objects(&migrated).await);
    let deferred: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "_vibing2_import_deferred""#).fetch_one(&mut conn).await.unwrap();
    assert_eq!(deferred, 0);

    let app = TestApp::on(db, &[]).await;
    assert_eq!(app.login("user@example.com", "password_hash").await.status, StatusCode::UNAUTHORIZED);
    let login = app.login("owner@example.com", "phase1-owner-pass").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let rehashed: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "email" = 'owner@example.com'"#)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(rehashed.starts_with("$argon2id$"), "rehashed on the first login: {rehashed}");
}

#[tokio::test]
async fn an_imported_phase1_session_still_authenticates_and_a_dotted_token_is_left_out() {
    let (dir, source) = empty_phase1();
    let writer = writable(&source);
    writer
        .execute(
            r#"INSERT INTO "User" ("id", "name", "email", "password", "plan", "tokenBalance", "contextUsed", "createdAt", "updatedAt")
               VALUES ('u1', 'Ada', 'ada@example.com', ?1, 'FREE', 10, 0, 1760092008912, 1760092008912)"#,
            params![bcrypt::hash("phase1", 4).unwrap()],
        )
        .unwrap();
    let session = r#"INSERT INTO "Session" ("sessionToken", "userId", "expires", "createdAt", "updatedAt") VALUES (?1, 'u1', '2099-01-01 00:00:00', 1760092008912, 1760092008912)"#;
    let phase1 = "8caaaae3-6c19-4e17-83a3-986955218d79";
    writer.execute(session, params![phase1]).unwrap();
    writer.execute(session, params!["u1.dotted"]).unwrap();
    drop(writer);
    let db = TestDb::empty().await;
    let report = import_into(&db, &options(&source, &dir.path().join("rejects.jsonl"))).await.unwrap();
    assert!(report.ok, "{}", report.text());
    assert_eq!((table(&report, "Session").imported, table(&report, "Session").dropped), (1, 1));

    let app = TestApp::on(db, &[]).await;
    let session = app.call(Method::GET, "/api/auth/session", Some(phase1), None).await.expect(StatusCode::OK);
    assert_eq!(session.json["id"], "u1");
    let dotted = app.call(Method::GET, "/api/auth/session", Some("u1.dotted"), None).await;
    assert_eq!(dotted.status, StatusCode::UNAUTHORIZED);
}

/// Every index and constraint of the public schema, by definition.
async fn schema_objects(db: &TestDb) -> Vec<String> {
    let mut conn = db.connect().await;
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
         UNION ALL
         SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// One source with a row for each rule, and one for each reason to quarantine.
fn crafted_source() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = empty_phase1();
    let source = writable(&path);
    let user = r#"INSERT INTO "User" ("id", "name", "email", "password", "plan", "tokenBalance", "contextUsed", "createdAt", "updatedAt")
                  VALUES (?1, 'n', ?2, ?3, ?4, ?5, ?6, ?7, ?7)"#;
    let bcrypt = bcrypt::hash("phase1", 4).unwrap();
    let bcrypt = bcrypt.as_str();
    source
        .execute(user, params!["u1", "Ada@Example.COM", bcrypt, "pro", "500", 10000.0, "2025-10-10T10:00:00Z"])
        .unwrap();
    source.execute(user, params!["u2", "bob@example.com", "hunter2", "FREE", 7, 0, "1760092008912"]).unwrap();
    source.execute(user, params!["u3", "eve@example.com", bcrypt, "PLATINUM", 1, 0, 1_760_092_008_912i64]).unwrap();
    source.execute(user, params!["u4", "old@example.com", bcrypt, "FREE", 1, 0, "1969-06-01 00:00:00"]).unwrap();
    source.execute(user, params!["u5", "half@example.com", bcrypt, "FREE", 1.5, 0, 1_760_092_008_912i64]).unwrap();
    let project = r#"INSERT INTO "Project" ("id", "name", "projectType", "activeAgents", "currentCode", "visibility", "likes", "forks", "userId", "createdAt", "updatedAt")
                     VALUES (?1, ?2, 'website', ?3, NULL, ?4, ?5, 0, ?6, 1760092008912, 1760092008912)"#;
    source.execute(project, params!["p1", "Na\0me", "frontend-developer, code-reviewer", "public", 3, "u1"]).unwrap();
    source.execute(project, params!["p2", "Empty agents", "", "PRIVATE", "2", "u2"]).unwrap();
    source.execute(project, params!["p3", "Owned by the unknown plan", "[]", "PRIVATE", 0, "u3"]).unwrap();
    source.execute(project, params!["p4", "Orphan", "[]", "PRIVATE", 0, "nobody"]).unwrap();
    let message =
        r#"INSERT INTO "Message" ("id", "role", "content", "projectId", "createdAt") VALUES (?1, ?2, ?3, ?4, ?5)"#;
    source.execute(message, params!["m1", "USER", "hello", "p1", "2025-10-10 10:00:01"]).unwrap();
    source.execute(message, params!["m2", "assistant", "x".repeat(40), "p1", 1_760_090_000_000i64]).unwrap();
    source.execute(message, params!["m3", "assistant", "lost", "p4", 1_760_090_000_000i64]).unwrap();
    source.execute(message, params!["m4", "robot", "who", "p1", 1_760_090_000_000i64]).unwrap();
    source.execute(message, params!["m5", "user", "bad time", "p1", "tomorrow-ish"]).unwrap();
    let session = r#"INSERT INTO "Session" ("sessionToken", "userId", "expires", "createdAt", "updatedAt") VALUES (?1, ?2, ?3, 1760092008912, 1760092008912)"#;
    source.execute(session, params!["live-token", "u1", "2099-01-01 00:00:00"]).unwrap();
    source.execute(session, params!["old-token", "u1", "2020-01-01 00:00:00"]).unwrap();
    (dir, path)
}

#[tokio::test]
async fn every_rule_applies_per_value_and_bad_rows_are_quarantined_with_their_reason() {
    let (dir, source) = crafted_source();
    let rejects = dir.path().join("rejects.jsonl");
    let db = TestDb::empty().await;
    let mut options = options(&source, &rejects);
    options.limits.message_chars = 10;
    let report = import_into(&db, &options).await.unwrap();
    assert!(report.ok, "{}", report.text());
    let mut conn = db.connect().await;

    // Users: e-mail lower-cased, enum canonical, bcrypt kept, plaintext never kept. (SQLite's
    // column affinity already stores '500' and 10000.0 as integers; the TEXT and REAL rules
    // are covered by `import::normalize`'s unit tests.)
    let users: Vec<(String, String, String, i32, bool, bool)> = sqlx::query_as(
        r#"SELECT "id", "email", "plan", "tokenBalance", "password" LIKE '$2b$%', "passwordResetRequired"
           FROM "User" ORDER BY "id""#,
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        users,
        [
            ("u1".into(), "ada@example.com".into(), "PRO".into(), 500, true, false),
            ("u2".into(), "bob@example.com".into(), "FREE".into(), 7, false, true),
        ]
    );
    // Projects: NUL removed, comma list and empty agents, lower-case enum, counters folded.
    let projects: Vec<(String, String, serde_json::Value, String, i32)> = sqlx::query_as(
        r#"SELECT "id", "name", "activeAgents", "visibility", "likeCount" FROM "Project" ORDER BY "id""#,
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        projects,
        [
            (
                "p1".into(),
                "Name".into(),
                serde_json::json!(["frontend-developer", "code-reviewer"]),
                "PUBLIC".into(),
                3
            ),
            ("p2".into(), "Empty agents".into(), serde_json::json!([]), "PRIVATE".into(), 2),
        ]
    );
    let messages: Vec<(String, String, String)> =
        sqlx::query_as(r#"SELECT "id", "role", "content" FROM "Message" ORDER BY "id""#)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        messages,
        [("m1".into(), "user".into(), "hello".into()), ("m2".into(), "assistant".into(), "x".repeat(40))],
        "the long message is kept whole"
    );
    // Sessions: the live one stored as its hash, the expired one dropped and counted.
    let sessions: Vec<String> =
        sqlx::query_scalar(r#"SELECT "tokenHash" FROM "Session""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!(sessions, [vibing2::auth::token::hash_token("live-token")]);
    assert_eq!((table(&report, "Session").imported, table(&report, "Session").dropped), (1, 1));

    // Every change was counted; the reported ones are listed row by row.
    let change = |column: &str, what: &str| {
        report.changes.iter().find(|c| c.column == column && c.change.contains(what)).map_or(0, |c| c.count)
    };
    assert_eq!(change("email", "lower-cased"), 1);
    assert_eq!(change("plan", "canonicalised"), 1);
    assert_eq!(change("name", "NUL"), 1);
    assert_eq!(change("activeAgents", "comma-separated"), 1);
    assert_eq!(change("activeAgents", "empty"), 1);
    assert_eq!(change("content", "kept whole"), 1);
    assert_eq!(change("password", "reset"), 1);
    let issues: Vec<(String, String)> =
        sqlx::query_as(r#"SELECT "rowId", "columnName" FROM "MigrationIssue" ORDER BY 1, 2"#)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        issues,
        [
            ("p1".into(), "activeAgents".into()),
            ("p1".into(), "name".into()),
            ("p2".into(), "activeAgents".into()),
            ("u2".into(), "password".into())
        ]
    );

    // The quarantine: counted per table, each row in the reject file with its reason, nothing
    // secret in it, and none of them inserted.
    assert_eq!(table(&report, "User").quarantined, 3);
    assert_eq!(table(&report, "Project").quarantined, 2);
    assert_eq!(table(&report, "Message").quarantined, 3);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&rejects).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 8);
    let reason = |id: &str| {
        lines
            .iter()
            .find(|line| line["row"]["id"] == id)
            .map(|line| line["reason"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(reason("u3").contains("PLATINUM"), "{}", reason("u3"));
    assert!(reason("u4").contains("outside 1970"), "never clamped: {}", reason("u4"));
    assert!(reason("u5").contains("tokenBalance"), "{}", reason("u5"));
    assert!(reason("p3").contains("user u3 was quarantined"), "{}", reason("p3"));
    assert!(reason("p4").contains("no user nobody"), "{}", reason("p4"));
    assert!(reason("m3").contains("project p4 was quarantined"), "{}", reason("m3"));
    assert!(reason("m4").contains("robot"), "{}", reason("m4"));
    assert!(reason("m5").contains("createdAt"), "{}", reason("m5"));
    let user_line = lines.iter().find(|line| line["row"]["id"] == "u3").unwrap();
    assert_eq!(user_line["table"], "User");
    assert_eq!(user_line["row"]["password"], "(secret, not shown)");
}

#[tokio::test]
async fn email_conflicts_stop_everything_or_keep_the_earliest_user_with_what_they_own() {
    let (dir, source) = empty_phase1();
    {
        let sqlite = writable(&source);
        let user =
            r#"INSERT INTO "User" ("id", "email", "password", "createdAt", "updatedAt") VALUES (?1, ?2, '', ?3, ?3)"#;
        sqlite.execute(user, params!["late", "Sam@Example.com", "2025-10-11 00:00:00"]).unwrap();
        sqlite.execute(user, params!["early", "sam@example.com", "2025-10-10 00:00:00"]).unwrap();
        sqlite
            .execute(
                r#"INSERT INTO "Project" ("id", "name", "projectType", "userId", "createdAt", "updatedAt")
                   VALUES ('owned', 'by the later sam', 'website', 'late', 1760092008912, 1760092008912)"#,
                [],
            )
            .unwrap();
        sqlite
            .execute(
                r#"INSERT INTO "Message" ("id", "role", "content", "projectId", "createdAt")
                   VALUES ('said', 'user', 'hi', 'owned', 1760092008912)"#,
                [],
            )
            .unwrap();
    }
    let rejects = dir.path().join("rejects.jsonl");
    let db = TestDb::empty().await;
    let error = import_into(&db, &options(&source, &rejects)).await.unwrap_err().to_string();
    assert!(error.contains("sam@example.com: early, late") && error.contains("nothing was written"), "{error}");
    let mut conn = db.connect().await;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tables, 0, "not even the schema");

    let mut keep_first = options(&source, &rejects);
    keep_first.on_email_conflict = EmailConflict::KeepFirst;
    let report = import_into(&db, &keep_first).await.unwrap();
    assert!(report.ok, "{}", report.text());
    let users: Vec<String> = sqlx::query_scalar(r#"SELECT "id" FROM "User""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!(users, ["early"]);
    assert_eq!(
        (
            table(&report, "User").quarantined,
            table(&report, "Project").quarantined,
            table(&report, "Message").quarantined
        ),
        (1, 1, 1),
        "the later user goes with everything they own"
    );
    let lines = std::fs::read_to_string(&rejects).unwrap();
    assert!(lines.contains("created earlier and kept"), "{lines}");
}

/// A source of `messages` messages over a few projects, in createdAt order.
fn large_source(messages: usize) -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = empty_phase1();
    let mut sqlite = writable(&path);
    let tx = sqlite.transaction().unwrap();
    tx.execute(
        r#"INSERT INTO "User" ("id", "email", "password", "createdAt", "updatedAt")
           VALUES ('writer', 'writer@example.com', '', 1760092008912, 1760092008912)"#,
        [],
    )
    .unwrap();
    for project in 0..5 {
        tx.execute(
            r#"INSERT INTO "Project" ("id", "name", "projectType", "userId", "createdAt", "updatedAt")
               VALUES (?1, 'p', 'website', 'writer', 1760092008912, 1760092008912)"#,
            params![format!("p{project}")],
        )
        .unwrap();
    }
    {
        let mut insert = tx
            .prepare(r#"INSERT INTO "Message" ("id", "role", "content", "projectId", "createdAt") VALUES (?1, 'user', ?2, ?3, ?4)"#)
            .unwrap();
        for n in 0..messages {
            let at = 1_760_092_008_912i64 + n as i64;
            insert.execute(params![format!("m{n:06}"), format!("message {n}"), format!("p{}", n % 5), at]).unwrap();
        }
    }
    tx.commit().unwrap();
    (dir, path)
}

/// The messages in the target, and how many distinct ids they have.
async fn message_counts(db: &TestDb) -> (i64, i64) {
    let mut conn = db.connect().await;
    let row =
        sqlx::query(r#"SELECT count(*), count(DISTINCT "id") FROM "Message""#).fetch_one(&mut conn).await.unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn an_import_killed_mid_way_resumes_with_no_duplicate_and_no_loss() {
    let (dir, source) = large_source(50_000);
    let killed = TestDb::empty().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vibing2"))
        .args(["import", &format!("sqlite:{}", source.display()), "--batch-rows", "100", "--quiet"])
        .arg("--rejects")
        .arg(dir.path().join("rejects.jsonl"))
        .env("DATABASE_URL", &killed.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Kill -9 once some, but not all, message batches have committed.
    let mut conn = killed.connect().await;
    let started = Instant::now();
    loop {
        let imported: Option<i64> = sqlx::query_scalar(
            r#"SELECT sum("imported")::bigint FROM "_vibing2_import_batch" WHERE "stage" = 'Message'"#,
        )
        .fetch_optional(&mut conn)
        .await
        .unwrap_or(None);
        if imported.is_some_and(|rows| rows > 0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no message batch ever committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().unwrap() as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    child.wait().await.unwrap();
    conn.close().await.unwrap();
    let (partial, _) = message_counts(&killed).await;
    assert!(partial > 0 && partial < 50_000, "killed mid-way: {partial} messages");

    let resumed = import_into(&killed, &options(&source, &dir.path().join("rejects.jsonl"))).await.unwrap();
    assert_eq!(resumed.outcome, Outcome::Resumed);
    assert!(resumed.ok, "{}", resumed.text());
    let (rows, distinct) = message_counts(&killed).await;
    assert_eq!((rows, distinct), (50_000, 50_000));

    // The same checksums as an import that was never interrupted.
    let clean = TestDb::empty().await;
    let whole = import_into(&clean, &options(&source, &dir.path().join("clean.jsonl"))).await.unwrap();
    assert!(whole.ok);
    for (a, b) in resumed.tables.iter().zip(&whole.tables) {
        assert_eq!((&a.table, &a.target_checksum, a.target_rows), (&b.table, &b.target_checksum, b.target_rows));
    }
}

#[tokio::test]
async fn a_rerun_after_a_success_changes_nothing_and_says_so() {
    let (dir, source) = fixture_copy();
    let db = TestDb::empty().await;
    let options = options(&source, &dir.path().join("rejects.jsonl"));
    let first = import_into(&db, &options).await.unwrap();
    assert_eq!(first.outcome, Outcome::Imported);
    let snapshot = |db: &TestDb| {
        let url = db.url.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, String>(
                r#"SELECT concat_ws('|', (SELECT count(*) FROM "MigrationIssue"), (SELECT string_agg("id" || "password", ',' ORDER BY "id") FROM "User"),
                          (SELECT string_agg("id" || "cursor", ',' ORDER BY "id") FROM "Message"), (SELECT count(*) FROM "ProjectFile"))"#,
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()
        }
    };
    let before = snapshot(&db).await;
    let second = import_into(&db, &options).await.unwrap();
    assert_eq!(second.outcome, Outcome::AlreadyComplete);
    assert!(second.ok && second.rows_this_run == 0);
    assert!(second.text().contains("nothing changed"));
    assert_eq!(snapshot(&db).await, before);
}

#[tokio::test]
async fn messages_in_created_at_order_keep_their_rowids_as_cursors_over_both_writers() {
    let (dir, source) = large_source(2_000);
    let db = TestDb::empty().await;
    let options = ImportOptions { batch_rows: 100, ..options(&source, &dir.path().join("rejects.jsonl")) };
    let report = import_into(&db, &options).await.unwrap();
    assert!(report.ok, "{}", report.text());
    assert!(!report.cursors_renumbered, "the rows came in createdAt order");
    let mut conn = db.connect().await;
    let cursors: Vec<i64> = sqlx::query_scalar(r#"SELECT "cursor" FROM "Message" ORDER BY "createdAt", "id""#)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(cursors, (1..=2_000).collect::<Vec<i64>>(), "each message's source rowid, in createdAt order");
    let next: i64 = sqlx::query_scalar(r#"SELECT nextval('"Message_cursor_seq"')"#).fetch_one(&mut conn).await.unwrap();
    assert!(next > 2_000, "the sequence goes on past the imported cursors: {next}");
}

#[tokio::test]
async fn a_target_that_holds_other_data_is_refused_untouched() {
    let (dir, source) = fixture_copy();
    let app = TestApp::new().await;
    app.user("Someone").await;
    let error = import_into(&app.db, &options(&source, &dir.path().join("rejects.jsonl"))).await.unwrap_err();
    assert!(error.to_string().contains("holds other data (rows in User"), "{error}");
    let ledger: bool =
        sqlx::query_scalar(r#"SELECT EXISTS (SELECT 1 FROM "_vibing2_import")"#).fetch_one(&app.pool).await.unwrap();
    assert!(!ledger);
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "User""#).fetch_one(&app.pool).await.unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn a_missing_non_sqlite_or_non_phase1_source_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.db");
    std::fs::write(&text_file, "this is not a database, just some text that is long enough".repeat(100)).unwrap();
    let other_sqlite = dir.path().join("other.db");
    rusqlite::Connection::open(&other_sqlite).unwrap().execute("CREATE TABLE notes (body TEXT)", []).unwrap();
    let (_fixture_dir, extra_column) = fixture_copy();
    rusqlite::Connection::open(&extra_column)
        .unwrap()
        .execute(r#"ALTER TABLE "User" ADD COLUMN "nickname" TEXT"#, [])
        .unwrap();

    let db = TestDb::empty().await;
    for (source, expected) in [
        (dir.path().join("absent.db"), "no such file"),
        (text_file, "not an SQLite database"),
        (other_sqlite, "no table User"),
        (extra_column, "does not know: nickname"),
    ] {
        let error =
            format!("{:#}", import_into(&db, &options(&source, &dir.path().join("r.jsonl"))).await.unwrap_err());
        assert!(error.contains(expected), "{}: {error}", source.display());
    }
    assert!(import::source_path("postgres://elsewhere").is_err());
    let mut conn = db.connect().await;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tables, 0, "nothing was written");
}
