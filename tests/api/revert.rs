//! `vibing2 migrate --revert-to` and `--status`: a populated database goes down to the lowest
//! version it can reach and up again with every table's data unchanged and the same schema;
//! one-way steps and steps that would lose data are refused before anything changes.

use std::collections::BTreeMap;

use sqlx::{Executor, PgConnection};
use vibing2::bench::seed::{self, Flavor, SeedOptions};
use vibing2::db::migrate::{self, Reverse, MIGRATIONS};
use vibing2::db::revert::{self, Reversible};

use crate::migrations::catalog_snapshot;
use crate::support::TestDb;

/// The versions of this binary's migrations above `version`, oldest first (the numbers may
/// have gaps).
fn versions_above(version: i64) -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.version).filter(|v| *v > version).collect()
}

/// The lowest version this binary's migrations can be reverted to: the newest one-way one.
fn lowest_reversible() -> i64 {
    MIGRATIONS.iter().filter(|m| matches!(m.reverse, Reverse::OneWay(_))).map(|m| m.version).max().unwrap()
}

/// An md5 of every row of every table (the ledger aside), rows in text order.
async fn table_checksums(conn: &mut PgConnection) -> BTreeMap<String, String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables
         WHERE schemaname = 'public' AND tablename <> '_vibing2_migrations' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut sums = BTreeMap::new();
    for table in tables {
        let sum: String = sqlx::query_scalar(&format!(
            r#"SELECT coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), 'empty') FROM "{table}" t"#
        ))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        sums.insert(table, sum);
    }
    sums
}

async fn index_names(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
        .fetch_all(conn)
        .await
        .unwrap()
}

/// A migrated database with the bench seeder's data (10 users, 100 projects, 2000 messages),
/// plus invites, which the seeder does not write: one PENDING, one ACCEPTED, as the service
/// sends them with the default 7-day expiry.
async fn populated() -> TestDb {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    let options = SeedOptions { scale: 0.001, seed: 7, flavor: Flavor::Current, progress: false };
    seed::seed(&mut conn, &options).await.expect("seeding");
    conn.execute(
        r#"INSERT INTO "CollaborationInvite" ("id", "projectId", "fromUserId", "toUserId", "status", "createdAt", "expiresAt")
           SELECT 'inv_' || s, p."id", p."userId", u."id", s, c, c + interval '7 days'
           FROM (VALUES ('PENDING'), ('ACCEPTED')) v(s)
           CROSS JOIN LATERAL (SELECT "id", "userId" FROM "Project" ORDER BY "id" LIMIT 1) p
           CROSS JOIN LATERAL (SELECT "id" FROM "User" WHERE "id" <> p."userId" ORDER BY "id" LIMIT 1) u
           CROSS JOIN LATERAL (SELECT TIMESTAMP '2026-11-01 10:00:00.123' AS c) t"#,
    )
    .await
    .unwrap();
    db
}

async fn count(conn: &mut PgConnection, query: &str) -> i64 {
    sqlx::query_scalar(query).fetch_one(conn).await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

#[tokio::test]
async fn a_populated_database_goes_down_and_up_again_with_its_data_and_schema_unchanged() {
    let db = populated().await;
    let mut conn = db.connect().await;
    assert!(count(&mut conn, r#"SELECT count(*) FROM "Message""#).await >= 1000);
    assert_eq!(count(&mut conn, r#"SELECT count(*) FROM "CollaborationInvite""#).await, 2);
    let sums_before = table_checksums(&mut conn).await;
    let catalog_before = catalog_snapshot(&mut conn).await;
    let indexes_before = index_names(&mut conn).await;

    let lowest = lowest_reversible();
    assert_eq!(lowest, 2, "the jsonb conversion and the counters' fold are the newest one-way step");
    let reverted = revert::revert_to(&mut conn, lowest).await.unwrap();
    let expected: Vec<i64> = versions_above(lowest).into_iter().rev().collect();
    assert_eq!(reverted.steps.iter().map(|(v, _, _)| *v).collect::<Vec<_>>(), expected);
    assert_eq!(migrate::current_version(&mut conn).await.unwrap(), Some(lowest));

    // Down at version 2: the Prisma-era indexes are back, the ledger's set is gone, and the
    // tables of later migrations are dropped; every table that remains holds the same rows.
    let indexes_down = index_names(&mut conn).await;
    for prisma in ["Project_userId_idx", "Message_projectId_createdAt_idx", "TokenUsage_endpoint_idx"] {
        assert!(indexes_down.contains(&prisma.to_owned()), "{prisma} missing after the revert");
    }
    for ledger in ["Project_public_likeCount_idx", "Message_projectId_cursor_key", "user_token_summary_key"] {
        assert!(!indexes_down.contains(&ledger.to_owned()), "{ledger} survived the revert");
    }
    let sums_down = table_checksums(&mut conn).await;
    for gone in ["LoginFailure", "JobRun", "QueryPerformance", "_vibing2_import", "_vibing2_index_switches"] {
        assert!(!sums_down.contains_key(gone), "{gone} survived the revert");
    }
    for (table, sum) in &sums_down {
        if ["User", "CollaborationInvite"].contains(&table.as_str()) {
            continue; // They lost a column (migrations 10 and 8); compared after the way up.
        }
        assert_eq!(Some(sum), sums_before.get(table), "{table} changed on the way down");
    }

    let report = migrate::run(&mut conn).await.unwrap();
    let applied: Vec<i64> = report.applied.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(applied, versions_above(lowest));
    assert_eq!(table_checksums(&mut conn).await, sums_before, "the data changed over down and up");
    assert_eq!(index_names(&mut conn).await, indexes_before);
    assert_eq!(catalog_snapshot(&mut conn).await, catalog_before);
}

#[tokio::test]
async fn a_revert_past_a_one_way_migration_is_refused_before_anything_changes() {
    let db = populated().await;
    let mut conn = db.connect().await;
    let catalog_before = catalog_snapshot(&mut conn).await;
    let error = revert::revert_to(&mut conn, 1).await.unwrap_err().to_string();
    assert!(error.contains("migration 2 (optimized_schema) is one-way"), "{error}");
    assert!(error.contains("backup"), "{error}");
    assert!(error.contains("down to version 2 at most"), "{error}");
    assert_eq!(migrate::current_version(&mut conn).await.unwrap(), Some(migrate::latest_version()));
    assert_eq!(catalog_snapshot(&mut conn).await, catalog_before);

    let unknown = revert::revert_to(&mut conn, 99).await.unwrap_err().to_string();
    assert!(unknown.contains("there is no migration 99"), "{unknown}");
}

#[tokio::test]
async fn a_revert_that_would_lose_data_is_refused_before_anything_changes() {
    let db = populated().await;
    let mut conn = db.connect().await;
    conn.execute(r#"UPDATE "CollaborationInvite" SET "status" = 'REVOKED' WHERE "status" = 'PENDING'"#).await.unwrap();
    conn.execute(r#"UPDATE "User" SET "passwordResetRequired" = true WHERE "id" = (SELECT min("id") FROM "User")"#)
        .await
        .unwrap();
    let catalog_before = catalog_snapshot(&mut conn).await;
    let error = revert::revert_to(&mut conn, 7).await.unwrap_err().to_string();
    assert!(error.contains("would lose data, so nothing was changed"), "{error}");
    assert!(error.contains("migration 8 (invite_expiry): 1 invite(s) are REVOKED or EXPIRED"), "{error}");
    assert!(error.contains("migration 10 (phase1_import): 1 user(s) have a passwordResetRequired"), "{error}");
    assert_eq!(migrate::current_version(&mut conn).await.unwrap(), Some(migrate::latest_version()));
    assert_eq!(catalog_snapshot(&mut conn).await, catalog_before);

    // Above them, the revert goes ahead.
    revert::revert_to(&mut conn, 10).await.unwrap();
    assert_eq!(migrate::current_version(&mut conn).await.unwrap(), Some(10));
}

#[tokio::test]
async fn status_lists_applied_and_pending_steps_with_their_reversibility() {
    let db = populated().await;
    let mut conn = db.connect().await;
    revert::revert_to(&mut conn, 9).await.unwrap();
    conn.execute(r#"UPDATE "CollaborationInvite" SET "status" = 'EXPIRED' WHERE "status" = 'PENDING'"#).await.unwrap();
    let steps = revert::status(&mut conn).await.unwrap();
    assert_eq!(steps.len(), MIGRATIONS.len());
    let applied: Vec<i64> = steps.iter().filter(|s| s.applied.is_some()).map(|s| s.version).collect();
    assert_eq!(applied, (1..=9).collect::<Vec<_>>());
    assert!(matches!(steps[1].reversible, Reversible::OneWay(_)));
    assert_eq!(steps[2].reversible, Reversible::Yes);
    match &steps[7].reversible {
        Reversible::NotNow(found) => assert!(found[0].contains("REVOKED or EXPIRED"), "{found:?}"),
        other => panic!("migration 8 should be refused now, not {other}"),
    }
    assert_eq!(steps[9].reversible, Reversible::IfNothingIsLost, "pending, with a check");
    assert!(steps[0].applied.as_ref().is_some_and(|(at, mode)| at.starts_with("20") && mode == "applied"));
}

#[tokio::test]
async fn the_commands_print_the_status_and_refuse_a_one_way_revert_with_a_failure_exit() {
    let db = TestDb::migrated().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vibing2"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("REDIS_URL")
            .output()
            .unwrap()
    };
    let status = run(&["migrate", "--status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("0002     optimized_schema"), "{out}");
    assert!(out.contains("one-way: it converts data"), "{out}");
    assert!(out.contains(&format!("{} applied, 0 pending", MIGRATIONS.len())), "{out}");

    let refused = run(&["migrate", "--revert-to", "0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is one-way"));

    let newest = MIGRATIONS.last().unwrap();
    let previous = MIGRATIONS[MIGRATIONS.len() - 2].version;
    let reverted = run(&["migrate", "--revert-to", &previous.to_string()]);
    assert!(reverted.status.success(), "{}", String::from_utf8_lossy(&reverted.stderr));
    let said = format!("reverted {:04} {}", newest.version, newest.name);
    assert!(String::from_utf8_lossy(&reverted.stdout).contains(&said));
    let status = run(&["migrate", "--status"]);
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains(&format!("{} applied, 1 pending", MIGRATIONS.len() - 1)), "{out}");
    assert!(out.contains(&format!("{:04}     {:<24} pending", newest.version, newest.name)), "{out}");
}

#[tokio::test]
async fn each_down_step_gives_back_the_schema_its_migration_found() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    let lowest = lowest_reversible();
    let mut schemas = BTreeMap::new();
    let versions: Vec<i64> = [lowest].into_iter().chain(versions_above(lowest)).collect();
    for &version in &versions {
        migrate::run_up_to(&mut conn, migrate::Options::default(), version).await.unwrap();
        assert_eq!(migrate::current_version(&mut conn).await.unwrap(), Some(version));
        schemas.insert(version, catalog_snapshot(&mut conn).await);
    }
    for &version in versions[..versions.len() - 1].iter().rev() {
        revert::revert_to(&mut conn, version).await.unwrap();
        let schema = catalog_snapshot(&mut conn).await;
        let expected = &schemas[&version];
        let extra: Vec<&String> = schema.iter().filter(|line| !expected.contains(line)).collect();
        let lacking: Vec<&String> = expected.iter().filter(|line| !schema.contains(line)).collect();
        assert!(extra.is_empty() && lacking.is_empty(), "at {version}: extra {extra:#?}, lacking {lacking:#?}");
    }
}
