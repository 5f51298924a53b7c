//! `vibing2 migrate` on its two starting points: an empty database, and a Phase-2 database
//! that Prisma's `init_postgresql` built and the platform filled.

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Executor, PgConnection, Row};
use vibing2::db::migrate::{self, MIGRATIONS, PHASE2_TABLES};

use crate::support::TestDb;

const LEGACY_ROWS: &str = include_str!("../fixtures/phase2_legacy_rows.sql");

/// Columns, constraints and indexes of the public schema, for before/after comparisons.
/// Partitions (TokenUsage's months) follow the data, not the schema, and are left out.
pub async fn catalog_snapshot(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        r#"WITH partitions AS (SELECT oid, relname::text AS name FROM pg_class WHERE relispartition)
           SELECT format('column %s.%s %s %s %s %s', table_name, column_name, data_type, is_nullable,
                         coalesce(column_default, ''), coalesce(collation_name, ''))
           FROM information_schema.columns WHERE table_schema = 'public'
             AND table_name::text NOT IN (SELECT name FROM partitions)
           UNION ALL
           SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid))
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             AND conrelid NOT IN (SELECT oid FROM partitions)
           UNION ALL
           SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
             AND tablename::text NOT IN (SELECT name FROM partitions)
           UNION ALL
           SELECT format('view %s', matviewname) FROM pg_matviews WHERE schemaname = 'public'
           UNION ALL
           SELECT format('trigger %s', pg_get_triggerdef(t.oid)) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
           WHERE NOT t.tgisinternal AND r.relnamespace = 'public'::regnamespace
             AND t.tgrelid NOT IN (SELECT oid FROM partitions)
           UNION ALL
           SELECT format('function %s', p.oid::regprocedure) FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
           ORDER BY 1"#,
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn row_counts(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for table in PHASE2_TABLES {
        let count: i64 =
            sqlx::query_scalar(&format!(r#"SELECT count(*) FROM "{table}""#)).fetch_one(&mut *conn).await.unwrap();
        counts.insert((*table).to_owned(), count);
    }
    counts
}

fn applied_versions(report: &migrate::Report) -> Vec<i64> {
    report.applied.iter().map(|(version, _, _)| *version).collect()
}

fn all_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|migration| migration.version).collect()
}

async fn load_phase2_database(conn: &mut PgConnection) {
    conn.execute(sqlx::raw_sql(MIGRATIONS[0].sql)).await.expect("Prisma-era DDL");
    conn.execute(sqlx::raw_sql(LEGACY_ROWS)).await.expect("legacy rows");
}

#[tokio::test]
async fn a_fresh_database_gets_the_full_schema_and_a_rerun_is_a_noop() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    let report = migrate::run(&mut conn).await.unwrap();
    assert!(!report.adopted_phase2);
    assert_eq!(applied_versions(&report), all_versions());
    assert!(report.issues.is_empty());

    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for table in
        PHASE2_TABLES.iter().chain(&["Competition", "ProjectLike", "ViewRefresh", "MigrationIssue", "UserFace"])
    {
        assert!(tables.iter().any(|t| t == table), "table {table} missing from {tables:?}");
    }
    for view in ["user_token_summary", "project_stats"] {
        let unique: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                            WHERE c.relname = $1 AND c.relkind = 'm' AND i.indisunique)",
        )
        .bind(view)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(unique, "{view} needs a unique index for REFRESH CONCURRENTLY");
        conn.execute(format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {view}").as_str()).await.unwrap();
    }

    let before = catalog_snapshot(&mut conn).await;
    let again = migrate::run(&mut conn).await.unwrap();
    assert!(again.is_noop(), "{again:?}");
    assert_eq!(catalog_snapshot(&mut conn).await, before);
    assert_eq!(migrate::current_version(&mut conn).await.unwrap(), Some(migrate::latest_version()));
}

#[tokio::test]
async fn check_constraints_keep_data_sane() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    conn.execute(
        r#"INSERT INTO "User" ("id", "email", "password") VALUES ('u1', 'a@example.com', 'x');
           INSERT INTO "Project" ("id", "name", "projectType", "userId") VALUES ('p1', 'p', 'website', 'u1')"#,
    )
    .await
    .unwrap();
    let violations = [
        r#"UPDATE "User" SET "tokenBalance" = -1"#,
        r#"UPDATE "User" SET "email" = 'A@example.com'"#,
        r#"UPDATE "User" SET "plan" = 'GOLD'"#,
        r#"UPDATE "Project" SET "likeCount" = -1"#,
        r#"UPDATE "Project" SET "visibility" = 'SECRET'"#,
        r#"UPDATE "Project" SET "activeAgents" = '{"not":"an array"}'"#,
        r#"INSERT INTO "Message" ("id", "role", "content", "projectId") VALUES ('m', 'robot', 'x', 'p1')"#,
        r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role") VALUES ('c', 'p1', 'u1', 'OWNER')"#,
    ];
    for statement in violations {
        let error = conn.execute(statement).await.expect_err(statement);
        let code = error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{statement}: {error}");
    }
}

#[tokio::test]
async fn a_phase2_database_is_upgraded_in_place_keeping_every_row() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    load_phase2_database(&mut conn).await;
    let before = row_counts(&mut conn).await;

    let report = migrate::run(&mut conn).await.unwrap();
    assert!(report.adopted_phase2);
    assert_eq!(applied_versions(&report), all_versions()[1..]);

    let mut after = row_counts(&mut conn).await;
    // The one project with currentCode and no files gained an index.html; nothing was lost.
    assert_eq!(after.remove("ProjectFile"), Some(before["ProjectFile"] + 1));
    let mut expected = before.clone();
    expected.remove("ProjectFile");
    assert_eq!(after, expected);

    // Users: e-mail lower-cased, password kept as it was (login decides what it is worth).
    let owner = sqlx::query(
        r#"SELECT "email", "password", "plan", "tokenBalance" FROM "User" WHERE "id" = 'cmgkpc5w000042g48cmr3rs93'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owner.get::<String, _>("email"), "owner@example.com");
    assert!(owner.get::<String, _>("password").starts_with("$2b$10$"));
    assert_eq!((owner.get::<String, _>("plan"), owner.get::<i32, _>("tokenBalance")), ("PRO".into(), 4200));

    // Projects: counters folded, activeAgents decoded (including the double encoding), the
    // non-JSON value kept aside in MigrationIssue rather than dropped.
    let projects: BTreeMap<String, (serde_json::Value, i32, i32, Option<String>)> =
        sqlx::query_as(r#"SELECT "id", "activeAgents", "likeCount", "forkCount", "currentCode" FROM "Project""#)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, agents, likes, forks, code): (String, serde_json::Value, i32, i32, Option<String>)| {
                (id, (agents, likes, forks, code))
            })
            .collect();
    let agents = json!(["frontend-developer", "ui-ux-designer", "code-reviewer"]);
    assert_eq!(projects["cmgkos3rk00012g48kdd8q4o1"], (agents.clone(), 0, 0, None));
    assert_eq!(projects["cmgnf9dib001h2gcd5bha33ob"], (agents, 7, 2, Some("<p>has files already</p>".into())));
    assert_eq!(projects["cmlegacynotjson0000000001"], (json!([]), 3, 0, None));
    assert_eq!(report.issues.len(), 1);
    let issue = &report.issues[0];
    assert_eq!(
        (issue.table.as_str(), issue.row_id.as_str(), issue.column.as_str()),
        ("Project", "cmlegacynotjson0000000001", "activeAgents")
    );
    assert_eq!(issue.original_value.as_deref(), Some("frontend-developer, code-reviewer"));

    // currentCode of the file-less project became index.html.
    let (content, size, checksum): (String, i32, String) = sqlx::query_as(
        r#"SELECT "content", "size", "checksum" FROM "ProjectFile"
           WHERE "projectId" = 'cmgkos3rk00012g48kdd8q4o1' AND "path" = 'index.html'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(content, "<html><body>hello</body></html>");
    assert_eq!(size as usize, content.len());
    assert_eq!(checksum, hex::encode(Sha256::digest(content.as_bytes())));

    // Existing files got their byte size and SHA-256.
    let (size, checksum): (i32, String) =
        sqlx::query_as(r#"SELECT "size", "checksum" FROM "ProjectFile" WHERE "id" = 'file-2'"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let content = r#"console.log("héllo")"#;
    assert_eq!(size as usize, content.len(), "size counts bytes, not characters");
    assert_eq!(checksum, hex::encode(Sha256::digest(content.as_bytes())));

    // Sessions: only a hash of the token remains, and it is the hash of the old token.
    let hash: String = sqlx::query_scalar(r#"SELECT "tokenHash" FROM "Session""#).fetch_one(&mut conn).await.unwrap();
    assert_eq!(hash, hex::encode(Sha256::digest(b"plain-session-token-from-nextauth")));

    // Every user has their public face, the same name and image (migration 15).
    let unlike: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM "User" u FULL JOIN "UserFace" f USING ("id")
           WHERE u."id" IS NULL OR f."id" IS NULL OR (u."name", u."image") IS DISTINCT FROM (f."name", f."image")"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let faces: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "UserFace""#).fetch_one(&mut conn).await.unwrap();
    assert_eq!((unlike, faces), (0, before["User"]));

    // Messages: cursors follow creation order, ties broken by id; new ones continue after.
    let order: Vec<String> =
        sqlx::query_scalar(r#"SELECT "id" FROM "Message" ORDER BY "cursor""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!(
        order,
        [
            "cmgearliest00000000000001",
            "cmgkos3ru00022g48yedi1ln3",
            "cmgkos3ru00032g48xuqokokx",
            "cmgnf9dif001i2gcdynd8zdd9"
        ]
    );
    let next: i64 = sqlx::query_scalar(
        r#"INSERT INTO "Message" ("id", "role", "content", "projectId")
           VALUES ('new', 'user', 'hi', 'cmgkos3rk00012g48kdd8q4o1') RETURNING "cursor""#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(next, 5);

    // Usage kept its figures and got the new columns' defaults.
    let usage: (i32, f64, String, String) = sqlx::query_as(
        r#"SELECT "tokensUsed", "contextUsed", "model", "cost"::text FROM "TokenUsage" WHERE "id" = 'usage-2'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(usage, (800, 1.25, "unknown".into(), "0.000000".into()));

    // The views are populated from the legacy rows.
    let stats: (i64, i64) = sqlx::query_as(
        r#"SELECT "messageCount", "fileCount" FROM project_stats WHERE "projectId" = 'cmgnf9dib001h2gcd5bha33ob'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(stats, (2, 2));

    // Prisma's bookkeeping is left alone, and a second run changes nothing.
    let prisma: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "_prisma_migrations""#).fetch_one(&mut conn).await.unwrap();
    assert_eq!(prisma, 1);
    let snapshot = catalog_snapshot(&mut conn).await;
    assert!(migrate::run(&mut conn).await.unwrap().is_noop());
    assert_eq!(catalog_snapshot(&mut conn).await, snapshot);
}

#[tokio::test]
async fn an_upgraded_phase2_database_has_the_same_schema_as_a_fresh_one() {
    let fresh = TestDb::empty().await;
    let mut fresh_conn = fresh.connect().await;
    migrate::run(&mut fresh_conn).await.unwrap();

    let upgraded = TestDb::empty().await;
    let mut upgraded_conn = upgraded.connect().await;
    load_phase2_database(&mut upgraded_conn).await;
    migrate::run(&mut upgraded_conn).await.unwrap();
    upgraded_conn.execute(r#"DROP TABLE "_prisma_migrations""#).await.unwrap();

    assert_eq!(catalog_snapshot(&mut upgraded_conn).await, catalog_snapshot(&mut fresh_conn).await);
}

#[tokio::test]
async fn a_database_with_only_some_phase2_tables_is_refused() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    conn.execute(r#"CREATE TABLE "User" ("id" TEXT PRIMARY KEY)"#).await.unwrap();
    let error = migrate::run(&mut conn).await.unwrap_err();
    assert!(error.to_string().contains("only some of the Phase-2 tables"), "{error}");
}

#[tokio::test]
async fn an_edited_migration_is_detected() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    conn.execute(r#"UPDATE "_vibing2_migrations" SET "checksum" = 'tampered' WHERE "version" = 2"#).await.unwrap();
    let error = migrate::run(&mut conn).await.unwrap_err();
    assert!(error.to_string().contains("was edited after it was applied"), "{error}");
}

#[tokio::test]
async fn a_database_that_applied_the_one_transaction_migration_2_is_current() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    // Migration 2's text before its backfill was split out reached the same schema.
    conn.execute(
        r#"UPDATE "_vibing2_migrations"
           SET "checksum" = '75d19fb120ce5b0ca51e5a15c6cfd84fbb4652835caff57cb0eb0ac785b17fc3' WHERE "version" = 2"#,
    )
    .await
    .unwrap();
    assert!(migrate::run(&mut conn).await.unwrap().is_noop());
}

#[tokio::test]
async fn an_interrupted_index_build_is_repaired_by_the_next_run() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    // Simulate a CREATE INDEX CONCURRENTLY that died half-way: the index exists but is invalid.
    conn.execute(
        r#"DELETE FROM "_vibing2_migrations" WHERE "version" = 3;
           UPDATE pg_index SET indisvalid = false
           WHERE indexrelid = '"Project_public_likeCount_idx"'::regclass"#,
    )
    .await
    .unwrap();
    let report = migrate::run(&mut conn).await.unwrap();
    assert_eq!(report.applied.iter().map(|(v, _, _)| *v).collect::<Vec<_>>(), [3]);
    let valid: bool = sqlx::query_scalar(
        r#"SELECT indisvalid FROM pg_index WHERE indexrelid = '"Project_public_likeCount_idx"'::regclass"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(valid);
}
