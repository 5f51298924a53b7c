//! `vibing2 index disable NAME` / `enable NAME`: the index leaves the catalog and stays out
//! through a migration run, comes back valid from the ledger's definition (replacing an invalid
//! leftover), and names outside the ledger or unique ones are refused.

use sqlx::{Executor, PgConnection};
use vibing2::db::index_switch::{self, Outcome};
use vibing2::db::{migrate, revert};

use crate::support::{TestApp, TestDb, ADMIN_TOKEN};

const INDEX: &str = "Project_public_likeCount_idx";

/// `None` when the index is absent, else whether it is valid.
async fn index_state(conn: &mut PgConnection, name: &str) -> Option<bool> {
    let present: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = $1)")
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    if !present {
        return None;
    }
    sqlx::query_scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = format('%I', $1::text)::regclass")
        .bind(name)
        .fetch_one(conn)
        .await
        .map(Some)
        .unwrap()
}

async fn recorded(conn: &mut PgConnection) -> Vec<(String, String, String)> {
    sqlx::query_as(r#"SELECT "name", "state", "by" FROM "_vibing2_index_switches" ORDER BY "id""#)
        .fetch_all(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_disabled_index_stays_dropped_through_migrate_and_comes_back_valid_when_enabled() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    assert_eq!(index_state(&mut conn, INDEX).await, Some(true));
    assert!(index_switch::missing(&mut conn).await.unwrap().is_empty());

    assert_eq!(index_switch::disable(&mut conn, INDEX, "ops").await.unwrap(), Outcome::Changed);
    assert_eq!(index_state(&mut conn, INDEX).await, None, "still in pg_indexes");
    assert_eq!(index_switch::disable(&mut conn, INDEX, "ops").await.unwrap(), Outcome::Already);
    assert_eq!(recorded(&mut conn).await, [(INDEX.to_owned(), "disabled".to_owned(), "ops".to_owned())]);

    // migrate, even re-running the index migration, does not build it again nor miss it.
    conn.execute(r#"DELETE FROM "_vibing2_migrations" WHERE "version" = 3"#).await.unwrap();
    let report = migrate::run(&mut conn).await.unwrap();
    assert_eq!(report.applied.iter().map(|(v, _, _)| *v).collect::<Vec<_>>(), [3]);
    assert_eq!(index_state(&mut conn, INDEX).await, None, "migrate rebuilt a disabled index");
    assert!(index_switch::missing(&mut conn).await.unwrap().is_empty(), "a disabled index counted as missing");
    let listed = index_switch::list(&mut conn).await.unwrap();
    assert_eq!(listed.iter().find(|s| s.index.name == INDEX).unwrap().state, "disabled");

    // A revert cannot drop the switches while one is off.
    let refused = revert::revert_to(&mut conn, 11).await.unwrap_err().to_string();
    assert!(refused.contains(&format!("index {INDEX} is disabled")), "{refused}");

    assert_eq!(index_switch::enable(&mut conn, INDEX, "ops").await.unwrap(), Outcome::Changed);
    assert_eq!(index_state(&mut conn, INDEX).await, Some(true));
    assert_eq!(index_switch::enable(&mut conn, INDEX, "ops").await.unwrap(), Outcome::Already);
    assert_eq!(recorded(&mut conn).await.len(), 2);
    let definition: String = sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE indexname = $1")
        .bind(INDEX)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(definition.ends_with(r#"("likeCount" DESC, id DESC) WHERE (visibility = 'PUBLIC'::text)"#), "{definition}");
    assert!(migrate::run(&mut conn).await.unwrap().is_noop());
    assert_eq!(index_state(&mut conn, INDEX).await, Some(true));
}

#[tokio::test]
async fn a_missing_index_is_reported_unless_it_is_disabled() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    conn.execute(r#"DROP INDEX "Session_expires_idx""#).await.unwrap();
    assert_eq!(index_switch::missing(&mut conn).await.unwrap(), ["Session_expires_idx"]);
    index_switch::disable(&mut conn, "Session_expires_idx", "ops").await.unwrap();
    assert!(index_switch::missing(&mut conn).await.unwrap().is_empty());
}

#[tokio::test]
async fn enable_replaces_an_invalid_index_left_by_a_failed_concurrent_build() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    index_switch::disable(&mut conn, INDEX, "ops").await.unwrap();
    // What a CREATE INDEX CONCURRENTLY that died half-way leaves: the index, marked invalid.
    conn.execute(
        format!(
            r#"CREATE INDEX "{INDEX}" ON "Project" ("likeCount");
               UPDATE pg_index SET indisvalid = false WHERE indexrelid = '"{INDEX}"'::regclass"#
        )
        .as_str(),
    )
    .await
    .unwrap();
    assert_eq!(index_state(&mut conn, INDEX).await, Some(false));
    assert_eq!(index_switch::enable(&mut conn, INDEX, "ops").await.unwrap(), Outcome::Changed);
    assert_eq!(index_state(&mut conn, INDEX).await, Some(true));
    let definition: String = sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE indexname = $1")
        .bind(INDEX)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(definition.contains("WHERE (visibility = 'PUBLIC'::text)"), "rebuilt from the ledger: {definition}");
}

#[tokio::test]
async fn the_command_refuses_names_outside_the_ledger_and_unique_indexes() {
    let db = TestDb::migrated().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vibing2"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("USER", "operator")
            .env_remove("REDIS_URL")
            .output()
            .unwrap()
    };
    let unknown = run(&["index", "disable", "idx_user_email_password"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("is not an index of the ledger"));
    let unique = run(&["index", "disable", "User_email_key"]);
    assert!(!unique.status.success());
    assert!(String::from_utf8_lossy(&unique.stderr).contains("is a unique index"));

    let disabled = run(&["index", "disable", "Session_expires_idx"]);
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    let listed = run(&["index", "list"]);
    let out = String::from_utf8_lossy(&listed.stdout);
    let line = out.lines().find(|line| line.starts_with("Session_expires_idx")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("disabled") && line.contains("by operator"), "{line}");
    let mut conn = db.connect().await;
    assert_eq!(index_state(&mut conn, "Session_expires_idx").await, None);
    let enabled = run(&["index", "enable", "Session_expires_idx"]);
    assert!(enabled.status.success(), "{}", String::from_utf8_lossy(&enabled.stderr));
    assert_eq!(index_state(&mut conn, "Session_expires_idx").await, Some(true));
}

#[tokio::test]
async fn the_detailed_health_shows_each_index_switch() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    let before = app.admin_get("/api/health/database?detailed=true").await;
    assert_eq!(before.json["details"]["indexSwitches"], serde_json::json!([]), "{}", before.json);

    let mut conn = app.db.connect().await;
    index_switch::disable(&mut conn, INDEX, "ops").await.unwrap();
    let disabled = app.admin_get("/api/health/database?detailed=true").await;
    let switches = &disabled.json["details"]["indexSwitches"];
    assert_eq!(switches.as_array().map(Vec::len), Some(1), "{switches}");
    assert_eq!(switches[0]["name"], INDEX);
    assert_eq!(switches[0]["state"], "disabled");
    assert_eq!(switches[0]["by"], "ops");
    assert!(switches[0]["changedAt"].as_str().is_some_and(|at| at.len() == 19), "{switches}");

    index_switch::enable(&mut conn, INDEX, "ops").await.unwrap();
    let enabled = app.admin_get("/api/health/database?detailed=true").await;
    assert_eq!(enabled.json["details"]["indexSwitches"][0]["state"], "enabled", "{}", enabled.json);
}
