//! TokenUsage partitioned by month (migration 14): existing data moves in without loss, the
//! partition job keeps months ready and drops old ones only when retention is configured, a
//! time filter prunes partitions, and the view and the usage summary stay exact.

use std::time::Instant;

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use vibing2::bench::seed::{self, Flavor, SeedOptions};
use vibing2::config::JobSettings;
use vibing2::db::migrate::{self, MIGRATIONS};
use vibing2::db::usage::summary_sql;
use vibing2::db::{index_switch, partitions};
use vibing2::domain::GroupBy;
use vibing2::jobs::{Attempt, Job, Scheduler};

use crate::support::{TestApp, TestDb};
use crate::usage::{api_summary, direct_summary, seed_usage_over};

const PARTITIONING: i64 = 14;
const MOVE: &str = "token usage into monthly partitions";

/// The schema version just before TokenUsage is partitioned.
fn before_partitioning() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).filter(|v| *v < PARTITIONING).max().unwrap()
}

/// What TokenUsage holds: rows, the sums of its amounts (exact: numeric), and an md5 of every
/// row in key order.
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct UsageFigures {
    rows: i64,
    tokens: i64,
    context: String,
    saved: i64,
    cost: String,
    digest: String,
}

async fn usage_figures(conn: &mut PgConnection) -> UsageFigures {
    sqlx::query_as(
        r#"SELECT count(*) AS rows, sum("tokensUsed")::int8 AS tokens, sum("contextUsed"::numeric)::text AS context,
                  sum("savedTokens")::int8 AS saved, sum("cost")::text AS cost,
                  md5(string_agg(t::text, E'\n' ORDER BY "id", "timestamp")) AS digest
           FROM "TokenUsage" t"#,
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Rows per month, with the partition each month's rows belong in.
async fn rows_per_month(conn: &mut PgConnection) -> Vec<(String, i64)> {
    sqlx::query_as(
        r#"SELECT 'TokenUsage_' || to_char(date_trunc('month', "timestamp"), '"y"YYYY"m"MM'), count(*)
           FROM "TokenUsage" GROUP BY 1 ORDER BY 1"#,
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn partition_names(conn: &mut PgConnection) -> Vec<String> {
    partitions::list(conn).await.unwrap().into_iter().map(|p| p.name).collect()
}

async fn count(conn: &mut PgConnection, query: &str) -> i64 {
    sqlx::query_scalar(query).fetch_one(conn).await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The partition names of this month (UTC, as the database sees it) and the `ahead` after it.
async fn months_from_now(conn: &mut PgConnection, ahead: i32) -> Vec<String> {
    sqlx::query_scalar(
        r#"SELECT 'TokenUsage_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n),
                                           '"y"YYYY"m"MM')
           FROM generate_series(0, $1) n ORDER BY 1"#,
    )
    .bind(ahead)
    .fetch_all(conn)
    .await
    .unwrap()
}

fn jobs(partition_months_ahead: u32, usage_retention_months: Option<u32>) -> JobSettings {
    JobSettings {
        tick_secs: 1,
        partitions_secs: 3600,
        partition_months_ahead,
        usage_retention_months,
        ..JobSettings::default()
    }
}

/// Runs the partition job once (forgetting its last run, so it is due) and returns the
/// attempt and the summary it recorded.
async fn run_partition_job(app: &TestApp, settings: JobSettings) -> (Attempt, String) {
    sqlx::query(r#"DELETE FROM "JobRun" WHERE "job" = 'maintain_partitions'"#).execute(&app.pool).await.unwrap();
    let attempts = Scheduler::new(app.pool.clone(), settings).tick().await;
    let attempt = attempts.into_iter().find(|(job, _)| *job == Job::MaintainPartitions).unwrap().1;
    let detail: Option<String> =
        sqlx::query_scalar(r#"SELECT "detail" FROM "JobRun" WHERE "job" = 'maintain_partitions'"#)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    (attempt, detail.unwrap_or_default())
}

/// A database at the schema before partitioning, seeded by the bench seeder.
async fn seeded_before_partitioning(scale: f64, seed: u64) -> (TestDb, PgConnection) {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    migrate::run_up_to(&mut conn, migrate::Options::default(), before_partitioning()).await.unwrap();
    let options = SeedOptions { scale, seed, flavor: Flavor::Current, progress: false };
    seed::seed(&mut conn, &options).await.unwrap();
    (db, conn)
}

#[tokio::test]
async fn a_scale_tenth_database_moves_into_monthly_partitions_without_loss() {
    let (_db, mut conn) = seeded_before_partitioning(0.1, 11).await;
    assert!(!partitions::usage_is_partitioned(&mut conn).await.unwrap());
    let before = usage_figures(&mut conn).await;
    let months = rows_per_month(&mut conn).await;
    assert_eq!(before.rows, 200_000);
    assert!(months.len() >= 6, "{months:?}");

    // Batches that do not divide the rows evenly: the last one is short.
    let started = Instant::now();
    let report = migrate::run_with(&mut conn, migrate::Options { batch_rows: 7_000 }).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("migration {PARTITIONING} at scale 0.1 ({} rows, batches of 7000): {seconds:.1} s", before.rows);
    let from_partitioning: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).filter(|v| *v >= PARTITIONING).collect();
    assert_eq!(report.applied.iter().map(|(v, _, _)| *v).collect::<Vec<_>>(), from_partitioning);
    let moved = report.backfilled.iter().find(|filled| filled.name == MOVE).expect("the move's figures");
    assert_eq!((moved.walked, moved.changed), (200_000, 200_000));

    assert!(partitions::usage_is_partitioned(&mut conn).await.unwrap());
    assert_eq!(usage_figures(&mut conn).await, before, "the rows changed in the move");
    assert_eq!(rows_per_month(&mut conn).await, months);
    let names = partition_names(&mut conn).await;
    for (partition, rows) in &months {
        assert!(names.contains(partition), "{partition} missing from {names:?}");
        let held = count(&mut conn, &format!(r#"SELECT count(*) FROM ONLY "{partition}""#)).await;
        assert_eq!(held, *rows, "{partition}");
    }
    for ahead in months_from_now(&mut conn, 3).await {
        assert!(names.contains(&ahead), "{ahead} missing from {names:?}");
    }
    // Nothing of the move is left behind, and the view is built over the partitioned table.
    let leftovers = count(
        &mut conn,
        r#"SELECT (to_regclass('"_vibing2_token_usage_partitioned"') IS NOT NULL)::int
                  + (SELECT count(*) FROM pg_proc WHERE proname = '_vibing2_token_usage_mirror')
                  + (SELECT count(*) FROM "_vibing2_migration_progress")"#,
    )
    .await;
    assert_eq!(leftovers, 0);
    let viewed = count(&mut conn, r#"SELECT sum("requests")::int8 FROM user_token_summary"#).await;
    let before_today = count(
        &mut conn,
        r#"SELECT count(*) FROM "TokenUsage" WHERE "timestamp" < date_trunc('day', now() AT TIME ZONE 'UTC')"#,
    )
    .await;
    assert_eq!(viewed, before_today);
}

/// An interrupted move resumes at its batches, and rows written meanwhile (mirrored into the
/// partitioned table by the trigger) arrive once.
#[tokio::test]
async fn an_interrupted_move_resumes_and_keeps_the_rows_written_meanwhile() {
    let (_db, mut conn) = seeded_before_partitioning(0.001, 5).await;

    // What a run interrupted in its batches leaves: the first part committed, some rows moved.
    let migration = MIGRATIONS.iter().find(|m| m.version == PARTITIONING).unwrap();
    let (first_part, _) = migration.sql.split_once("\n-- vibing2:backfill\n").unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.execute(sqlx::raw_sql(first_part)).await.unwrap();
    tx.execute(r#"INSERT INTO "_vibing2_migration_progress" ("version", "detail") VALUES (14, '{"adoption": null}')"#)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    conn.execute(
        r#"INSERT INTO "_vibing2_token_usage_partitioned"
           SELECT * FROM "TokenUsage" ORDER BY "id" LIMIT 500"#,
    )
    .await
    .unwrap();
    // The service keeps writing to the old table meanwhile.
    conn.execute(
        r#"INSERT INTO "TokenUsage" ("id", "userId", "endpoint", "model", "tokensUsed", "contextUsed", "cost")
           SELECT 'live-' || n, (SELECT min("id") FROM "User"), '/chat', 'gpt-4o', 10, 0.5, 0.001
           FROM generate_series(1, 3) n"#,
    )
    .await
    .unwrap();
    let before = usage_figures(&mut conn).await;

    let report = migrate::run(&mut conn).await.unwrap();
    assert_eq!(report.resumed, Some(PARTITIONING));
    let moved = report.backfilled.iter().find(|filled| filled.name == MOVE).unwrap();
    assert_eq!(moved.walked as i64, before.rows);
    assert_eq!(moved.changed as i64, before.rows - 500 - 3, "moved and mirrored rows are not copied again");
    assert!(partitions::usage_is_partitioned(&mut conn).await.unwrap());
    assert_eq!(usage_figures(&mut conn).await, before);
}

#[tokio::test]
async fn the_job_creates_partitions_ahead_and_running_it_again_changes_nothing() {
    let app = TestApp::new().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let expected = months_from_now(&mut conn, 6).await;
    // The migration made this month and the next three.
    for name in &expected[4..] {
        assert!(!partition_names(&mut conn).await.contains(name), "{name} exists before the job");
    }

    let (attempt, detail) = run_partition_job(&app, jobs(6, None)).await;
    assert_eq!(attempt, Attempt::Ran);
    assert!(detail.starts_with("created 3 partition(s)"), "{detail}");
    let names = partition_names(&mut conn).await;
    for name in &expected {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    // The new partitions have the parent's indexes, so the ledger's index serves every month.
    let indexed = count(
        &mut conn,
        &format!(r#"SELECT count(*) FROM pg_indexes WHERE tablename = '{}'"#, expected.last().unwrap()),
    )
    .await;
    assert_eq!(indexed, 3, "the key, the user-time index and the project index");

    let (attempt, detail) = run_partition_job(&app, jobs(6, None)).await;
    assert_eq!(attempt, Attempt::Ran);
    assert!(detail.starts_with("created 0 partition(s) [], dropped 0"), "{detail}");
    assert_eq!(partition_names(&mut conn).await, names);
    assert!(partitions::ensure_ahead(&mut conn, 6).await.unwrap().is_empty());

    // Within its interval it is not run again, on this instance or another.
    let attempts = Scheduler::new(app.pool.clone(), jobs(6, None)).tick().await;
    assert_eq!(attempts.iter().find(|(job, _)| *job == Job::MaintainPartitions).unwrap().1, Attempt::Skipped);

    // A write of this month lands in its partition.
    conn.execute(
        r#"INSERT INTO "User" ("id", "email", "password") VALUES ('u-now', 'now@example.com', 'x');
           INSERT INTO "TokenUsage" ("id", "userId", "endpoint", "tokensUsed", "contextUsed")
           VALUES ('t-now', 'u-now', '/chat', 1, 1)"#,
    )
    .await
    .unwrap();
    let held = count(&mut conn, &format!(r#"SELECT count(*) FROM ONLY "{}""#, expected[0])).await;
    assert_eq!(held, 1);
}

#[tokio::test]
async fn retention_drops_old_partitions_only_when_configured() {
    let app = TestApp::new().await;
    let mut conn = app.db.connect().await;
    let options = SeedOptions { scale: 0.001, seed: 3, flavor: Flavor::Current, progress: false };
    seed::seed(&mut conn, &options).await.unwrap();
    let all = partition_names(&mut conn).await;

    let (attempt, detail) = run_partition_job(&app, jobs(3, None)).await;
    assert_eq!(attempt, Attempt::Ran);
    assert!(detail.ends_with("dropped 0 []"), "{detail}");
    assert_eq!(partition_names(&mut conn).await, all, "no retention configured: nothing dropped");

    let cutoff = r#"date_trunc('month', now() AT TIME ZONE 'UTC') - interval '13 months'"#;
    let kept_rows =
        count(&mut conn, &format!(r#"SELECT count(*) FROM "TokenUsage" WHERE "timestamp" >= {cutoff}"#)).await;
    let cutoff: chrono::NaiveDateTime =
        sqlx::query_scalar(&format!("SELECT {cutoff}")).fetch_one(&mut conn).await.unwrap();
    let expected_dropped: Vec<String> =
        partitions::list(&mut conn).await.unwrap().into_iter().filter(|p| p.to <= cutoff).map(|p| p.name).collect();
    assert!(!expected_dropped.is_empty(), "the seed's months (2025) are past 13 months: {all:?}");

    let (attempt, detail) = run_partition_job(&app, jobs(3, Some(13))).await;
    assert_eq!(attempt, Attempt::Ran);
    assert!(detail.contains(&format!("dropped {}", expected_dropped.len())), "{detail}");
    let left = partition_names(&mut conn).await;
    let mut expected_left = all.clone();
    expected_left.retain(|name| !expected_dropped.contains(name));
    assert_eq!(left, expected_left);
    assert_eq!(count(&mut conn, r#"SELECT count(*) FROM "TokenUsage""#).await, kept_rows);
}

/// Every scanned relation of a JSON plan, with whether it ran (EXPLAIN ANALYZE's loops).
fn scans(plan: &Value, found: &mut Vec<(String, bool)>) {
    match plan {
        Value::Object(fields) => {
            if let Some(Value::String(relation)) = fields.get("Relation Name") {
                let ran = fields.get("Actual Loops").and_then(Value::as_u64).map_or(true, |loops| loops > 0);
                found.push((relation.clone(), ran));
            }
            fields.values().for_each(|value| scans(value, found));
        }
        Value::Array(items) => items.iter().for_each(|item| scans(item, found)),
        _ => {}
    }
}

async fn plan(conn: &mut PgConnection, options: &str, sql: &str) -> (Vec<(String, bool)>, String) {
    let json: Value =
        sqlx::query_scalar(&format!("EXPLAIN ({options}, FORMAT JSON) {sql}")).fetch_one(&mut *conn).await.unwrap();
    let text: Vec<String> =
        sqlx::query_scalar(&format!("EXPLAIN ({options}) {sql}")).fetch_all(&mut *conn).await.unwrap();
    let mut found = Vec::new();
    scans(&json, &mut found);
    (found, text.join("\n"))
}

#[tokio::test]
async fn a_time_filtered_query_scans_only_its_months() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    let options = SeedOptions { scale: 0.01, seed: 9, flavor: Flavor::Current, progress: false };
    seed::seed(&mut conn, &options).await.unwrap();
    let partitions_total = partition_names(&mut conn).await.len();
    assert!(partitions_total >= 10);

    // A literal range: pruned when planning.
    let (scanned, text) = plan(
        &mut conn,
        "COSTS OFF",
        r#"SELECT count(*), sum("tokensUsed") FROM "TokenUsage"
           WHERE "timestamp" >= '2025-10-01' AND "timestamp" < '2025-11-01'"#,
    )
    .await;
    eprintln!("{text}");
    assert_eq!(scanned, [("TokenUsage_y2025m10".to_owned(), true)], "{text}");

    // A parameter, in a generic plan as a prepared statement runs it: pruned at startup.
    conn.execute("SET plan_cache_mode = force_generic_plan").await.unwrap();
    conn.execute(
        r#"PREPARE since(text, timestamp) AS
           SELECT count(*) FROM "TokenUsage" WHERE "userId" = $1 AND "timestamp" >= $2"#,
    )
    .await
    .unwrap();
    let (scanned, text) = plan(&mut conn, "COSTS OFF", "EXECUTE since('u', '2025-12-15')").await;
    eprintln!("{text}");
    assert!(text.contains("Subplans Removed"), "{text}");
    let names: Vec<&str> = scanned.iter().map(|(name, _)| name.as_str()).collect();
    assert!(!names.contains(&"TokenUsage_y2025m11") && names.contains(&"TokenUsage_y2025m12"), "{text}");

    // The usage summary's live part (rows since the view's refresh) runs only on the
    // partitions from this month on.
    conn.execute("RESET plan_cache_mode; REFRESH MATERIALIZED VIEW user_token_summary").await.unwrap();
    let user: String =
        sqlx::query_scalar(r#"SELECT "userId" FROM "TokenUsage" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let summary = summary_sql(GroupBy::Day).replace("$1", &format!("'{user}'")).replace("$2", "366");
    let (scanned, text) = plan(&mut conn, "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF", &summary).await;
    eprintln!("{text}");
    let now = chrono::Utc::now().naive_utc();
    let current: Vec<String> =
        partitions::list(&mut conn).await.unwrap().into_iter().filter(|p| p.to > now).map(|p| p.name).collect();
    assert_eq!(current.len(), 4, "this month and three ahead: {current:?}");
    let ran: Vec<String> = scanned
        .into_iter()
        .filter(|(name, ran)| *ran && name.starts_with("TokenUsage_"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(ran, current, "{text}");
}

#[tokio::test]
async fn the_view_the_summary_and_the_analytics_stay_exact_after_partitioning() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    migrate::run_up_to(&mut conn, migrate::Options::default(), before_partitioning()).await.unwrap();
    // Usage up to now (the last 180 days), so the summaries' windows hold it.
    let now = chrono::Utc::now().naive_utc();
    let options = SeedOptions { scale: 0.01, seed: 4, flavor: Flavor::Current, progress: false };
    seed::seed_at(&mut conn, &options, now).await.unwrap();
    let app = TestApp::on(db, &[]).await;
    let heavy = app.user("Heavy").await;
    // The user's own usage over the 400 days before now: over a year of months.
    seed_usage_over(&app, &heavy, 400, 1200).await;
    vibing2::jobs::refresh_views_now(&app.pool).await.unwrap();
    let keys =
        [("day", r#"to_char("timestamp", 'YYYY-MM-DD')"#), ("endpoint", r#""endpoint""#), ("model", r#""model""#)];
    let mut before = Vec::new();
    for (_, key) in keys {
        for days in [30, 366] {
            before.push(direct_summary(&app, &heavy, days, key).await);
        }
    }
    let figures = usage_figures(&mut conn).await;

    migrate::run(&mut conn).await.unwrap();
    assert!(partitions::usage_is_partitioned(&mut conn).await.unwrap());
    assert_eq!(usage_figures(&mut conn).await, figures);

    // The view rebuilt by the migration, and again by the job's refresh, equals a direct
    // aggregate of the days it covers.
    let view_differs = r#"SELECT count(*) FROM (
            (SELECT "userId", "day", "endpoint", "model", "requests", "tokensUsed", "contextUsed"::numeric,
                    "savedTokens", "cost" FROM user_token_summary
             EXCEPT
             SELECT "userId", "timestamp"::date, "endpoint", "model", count(*), sum("tokensUsed"),
                    sum("contextUsed")::numeric, sum("savedTokens"), sum("cost")
             FROM "TokenUsage" WHERE "timestamp" < date_trunc('day', now() AT TIME ZONE 'UTC') GROUP BY 1, 2, 3, 4)
            UNION ALL
            (SELECT "userId", "timestamp"::date, "endpoint", "model", count(*), sum("tokensUsed"),
                    sum("contextUsed")::numeric, sum("savedTokens"), sum("cost")
             FROM "TokenUsage" WHERE "timestamp" < date_trunc('day', now() AT TIME ZONE 'UTC') GROUP BY 1, 2, 3, 4
             EXCEPT
             SELECT "userId", "day", "endpoint", "model", "requests", "tokensUsed", "contextUsed"::numeric,
                    "savedTokens", "cost" FROM user_token_summary)) differing"#;
    for refreshed in [false, true] {
        if refreshed {
            vibing2::jobs::refresh_views_now(&app.pool).await.unwrap();
        }
        assert_eq!(count(&mut conn, view_differs).await, 0, "the view differs (refreshed again: {refreshed})");
        let mut after = Vec::new();
        for (group_by, key) in keys {
            for days in [30, 366] {
                let direct = direct_summary(&app, &heavy, days, key).await;
                let round = |rows: Vec<(String, i64, i64, f64)>| -> Vec<(String, i64, i64, f64)> {
                    rows.into_iter().map(|(k, r, t, c)| (k, r, t, (c * 1e6).round() / 1e6)).collect()
                };
                assert_eq!(api_summary(&app, &heavy, days, group_by).await, round(direct.clone()), "{group_by} {days}");
                after.push(direct);
            }
        }
        assert_eq!(after, before, "a direct aggregate changed over the move");
    }

    // The benchmark's token analytics: the 30-day daily summary of the heaviest seeded user.
    let seeded: String = sqlx::query_scalar(
        r#"SELECT "userId" FROM "TokenUsage" WHERE "userId" <> $1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#,
    )
    .bind(&heavy.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let summary = vibing2::db::usage::summary(&app.pool, &seeded, 30, GroupBy::Day).await.unwrap();
    let direct: Vec<(String, i64, i64)> = sqlx::query_as(
        r#"SELECT to_char("timestamp", 'YYYY-MM-DD'), count(*), sum("tokensUsed")::int8 FROM "TokenUsage"
           WHERE "userId" = $1 AND "timestamp" >= date_trunc('day', now() AT TIME ZONE 'UTC') - interval '29 days'
           GROUP BY 1 ORDER BY 1"#,
    )
    .bind(&seeded)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!direct.is_empty());
    let served: Vec<(String, i64, i64)> = summary.into_iter().map(|g| (g.key, g.requests, g.tokens_used)).collect();
    assert_eq!(served, direct);
}

/// The partitioned table's index goes off and on like any other ledger index: dropped (not
/// concurrently, which PostgreSQL refuses there) with its partitions' copies, and built back
/// on every partition concurrently and attached, valid.
#[tokio::test]
async fn an_index_of_the_partitioned_table_is_switched_off_and_on() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    let index = "TokenUsage_projectId_idx";
    let copies = r#"SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'TokenUsage\_y%\_projectId\_idx'"#;
    let partitions_total = partition_names(&mut conn).await.len() as i64;
    assert_eq!(count(&mut conn, copies).await, partitions_total);

    index_switch::disable(&mut conn, index, "ops").await.unwrap();
    assert_eq!(count(&mut conn, copies).await, 0);
    let listed = index_switch::list(&mut conn).await.unwrap();
    assert_eq!(listed.iter().find(|s| s.index.name == index).unwrap().state, "disabled");

    index_switch::enable(&mut conn, index, "ops").await.unwrap();
    assert_eq!(count(&mut conn, copies).await, partitions_total);
    let attached_and_valid = count(
        &mut conn,
        r#"SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
           WHERE i.inhparent = '"TokenUsage_projectId_idx"'::regclass AND x.indisvalid"#,
    )
    .await;
    assert_eq!(attached_and_valid, partitions_total);
    let listed = index_switch::list(&mut conn).await.unwrap();
    assert_eq!(listed.iter().find(|s| s.index.name == index).unwrap().state, "present");
    // Migration 3, run again, finds the index in place on the partitioned table.
    conn.execute(r#"DELETE FROM "_vibing2_migrations" WHERE "version" = 3"#).await.unwrap();
    migrate::run(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, copies).await, partitions_total);
}

/// `serve` prepares the months ahead at startup even when this instance runs no jobs.
#[tokio::test]
async fn startup_prepares_the_months_ahead_without_the_scheduler() {
    let app = TestApp::with_settings(&[("jobs.enabled", "false")]).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let expected = months_from_now(&mut conn, 5).await;
    let created = vibing2::jobs::prepare_partitions(&app.pool, &jobs(5, None)).await.unwrap();
    assert_eq!(created, expected[4..], "the migration made this month and three ahead");
    assert!(vibing2::jobs::prepare_partitions(&app.pool, &jobs(5, None)).await.unwrap().is_empty());
    let names = partition_names(&mut conn).await;
    assert!(expected.iter().all(|name| names.contains(name)), "{names:?}");
}

/// An index disabled before the move stays disabled after it: the migration builds the
/// partitioned table's copy, and `migrate` drops it again at the end of the run.
#[tokio::test]
async fn an_index_disabled_before_the_move_stays_disabled() {
    let (_db, mut conn) = seeded_before_partitioning(0.001, 2).await;
    let index = "TokenUsage_projectId_idx";
    index_switch::disable(&mut conn, index, "ops").await.unwrap();
    migrate::run(&mut conn).await.unwrap();
    assert!(partitions::usage_is_partitioned(&mut conn).await.unwrap());
    let present =
        count(&mut conn, r#"SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'TokenUsage%projectId%'"#).await;
    assert_eq!(present, 0);
    let listed = index_switch::list(&mut conn).await.unwrap();
    assert_eq!(listed.iter().find(|s| s.index.name == index).unwrap().state, "disabled");
}
