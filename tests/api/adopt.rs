//! `vibing2 migrate` on a Phase-2 database in the state the platform's own optimization left
//! it (`../shared/fixtures/phase2_seed_optimized.sql`, copied to `tests/fixtures/`): the
//! report's optimized columns, any subset of its indexes, legacy values. It is adopted into
//! the schema a fresh database gets, keeping every row.

use axum::http::{Method, StatusCode};
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};
use sqlx::{Executor, PgConnection, Row};
use vibing2::db::adopt::REPORT_INDEXES;
use vibing2::db::migrate;

use crate::migrations::catalog_snapshot;
use crate::support::{TestApp, TestDb};

const OPTIMIZED_FIXTURE: &str = include_str!("../fixtures/phase2_seed_optimized.sql");

async fn optimized_database() -> (TestDb, PgConnection) {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    conn.execute(sqlx::raw_sql(OPTIMIZED_FIXTURE)).await.expect("the optimized Phase-2 fixture loads");
    (db, conn)
}

async fn fresh_snapshot() -> Vec<String> {
    let fresh = TestDb::empty().await;
    let mut conn = fresh.connect().await;
    migrate::run(&mut conn).await.unwrap();
    catalog_snapshot(&mut conn).await
}

/// The schema after migrate equals a fresh database's, line for line (columns with their
/// types, defaults and nullability; constraints; indexes; views), column order aside.
async fn assert_same_schema_as_fresh(conn: &mut PgConnection) {
    let adopted = catalog_snapshot(conn).await;
    let fresh = fresh_snapshot().await;
    let missing: Vec<&String> = fresh.iter().filter(|line| !adopted.contains(line)).collect();
    let extra: Vec<&String> = adopted.iter().filter(|line| !fresh.contains(line)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing after adoption: {missing:#?}\nextra: {extra:#?}");
}

#[tokio::test]
async fn the_optimized_fixture_is_adopted_into_the_fresh_schema_keeping_every_value() {
    let (_db, mut conn) = optimized_database().await;
    let report = migrate::run(&mut conn).await.expect("the optimized state is adopted");
    assert!(report.adopted_phase2);
    let adoption = report.adoption.as_ref().expect("an adoption summary");
    assert!(adoption.state.contains("12 of the report's 12 optimized columns"), "{}", adoption.state);
    assert_eq!(adoption.indexes_dropped.len(), 10, "{:?}", adoption.indexes_dropped);
    assert_eq!((adoption.projects, adoption.counter_disagreements, adoption.usage_rows), (2, 1, 1));
    assert_same_schema_as_fresh(&mut conn).await;

    // Counters: the larger of the report's counter and the legacy column (9 > 3, 2 > 1).
    let project = sqlx::query(
        r#"SELECT "likeCount", "forkCount", "viewCount", "isFeatured", "previewUrl", "activeAgents"::text
           FROM "Project" WHERE "id" = 'p_opt_1'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(project.get::<i32, _>(0), 9);
    assert_eq!(project.get::<i32, _>(1), 2);
    assert_eq!(project.get::<i32, _>(2), 40);
    assert!(project.get::<bool, _>(3));
    assert_eq!(project.get::<Option<String>, _>(4).as_deref(), Some("https://example.com/p1"));
    let agents: String = sqlx::query_scalar(r#"SELECT "activeAgents"::text FROM "Project" WHERE "id" = 'p_opt_2'"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(agents, r#"["ui-ux-designer"]"#, "the double encoding is decoded");

    // The file whose size was 0 and checksum NULL is recomputed from its content.
    let (size, checksum): (i32, String) =
        sqlx::query_as(r#"SELECT "size", "checksum" FROM "ProjectFile" WHERE "id" = 'f_opt_1'"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(size, "<html>space</html>".len() as i32);
    assert_eq!(checksum, hex::encode(Sha256::digest("<html>space</html>")));

    // Usage keeps its project, model and cost.
    let (project_id, model, cost): (Option<String>, String, f64) =
        sqlx::query_as(r#"SELECT "projectId", "model", "cost"::float8 FROM "TokenUsage" WHERE "id" = 't_opt_1'"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((project_id.as_deref(), model.as_str(), cost), (Some("p_opt_1"), "claude-sonnet", 0.018));

    // Every row is there; e-mails are lower-case; message tokens are kept.
    let counts: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "User"), (SELECT count(*) FROM "Project"),
                  (SELECT count(*) FROM "ProjectFile"), (SELECT count(*) FROM "Message"),
                  (SELECT count(*) FROM "TokenUsage"), (SELECT count(*) FROM "ProjectCollaborator")"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    // p_opt_2 had no files: its currentCode became index.html.
    assert_eq!(counts, (2, 2, 2, 3, 1, 1));
    let email: String =
        sqlx::query_scalar(r#"SELECT "email" FROM "User" WHERE "id" = 'u_opt_1'"#).fetch_one(&mut conn).await.unwrap();
    assert_eq!(email, "ada@optimized.example.com");
    let tokens: i32 = sqlx::query_scalar(r#"SELECT "tokens" FROM "Message" WHERE "id" = 'm_opt_2'"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tokens, 120);

    // Cursors follow createdAt, and the sequence goes on past every old and new value.
    let cursors: Vec<String> =
        sqlx::query_scalar(r#"SELECT "id" FROM "Message" ORDER BY "cursor""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!(cursors, ["m_opt_1", "m_opt_2", "m_opt_3"]);
    let next: i64 = sqlx::query_scalar(r#"SELECT nextval('"Message_cursor_seq"')"#).fetch_one(&mut conn).await.unwrap();
    assert!(next > 3, "the sequence carries on: {next}");

    let again = migrate::run(&mut conn).await.unwrap();
    assert!(again.is_noop() && again.adoption.is_none(), "{again:?}");
}

#[tokio::test]
async fn the_service_serves_the_adopted_fixture() {
    let (db, mut conn) = optimized_database().await;
    migrate::run(&mut conn).await.unwrap();
    // A session for Ada, as login would store it (her fixture hash has no known password).
    let token = "adopted-fixture-session-token";
    sqlx::query(
        r#"INSERT INTO "Session" ("tokenHash", "userId", "expires")
           VALUES ($1, 'u_opt_1', (now() AT TIME ZONE 'UTC') + interval '1 day')"#,
    )
    .bind(hex::encode(Sha256::digest(token)))
    .execute(&mut conn)
    .await
    .unwrap();
    let app = TestApp::on(db, &[]).await;

    let list = app.call(Method::GET, "/api/projects", Some(token), None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.json);
    let space = &list.json["items"][0];
    assert_eq!((space["id"].as_str(), space["likeCount"].as_i64()), (Some("p_opt_1"), Some(9)));
    assert_eq!((space["messageCount"].as_i64(), space["fileCount"].as_i64()), (Some(2), Some(1)));

    // A page walk, one message a page, returns every message once, in createdAt order.
    let mut seen = Vec::new();
    let mut uri = "/api/projects/p_opt_1/messages?direction=newer&limit=1".to_owned();
    loop {
        let page = app.call(Method::GET, &uri, Some(token), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        seen.extend(page.json["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page.json["nextCursor"].as_str() {
            Some(cursor) => uri = format!("/api/projects/p_opt_1/messages?direction=newer&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["m_opt_1", "m_opt_2"]);

    let usage = app.call(Method::GET, "/api/usage/recent", Some(token), None).await;
    assert_eq!(usage.json["items"][0]["model"], "claude-sonnet");
    let discover = app.call(Method::GET, "/api/discover", None, None).await;
    assert_eq!(discover.json["items"][0]["id"], "p_opt_1");
    assert_eq!(discover.json["items"][0]["viewCount"], 40);
    let appended = app
        .call(
            Method::POST,
            "/api/projects/p_opt_1/messages",
            Some(token),
            Some(serde_json::json!({"role": "user", "content": "more"})),
        )
        .await;
    assert_eq!(appended.status, StatusCode::CREATED, "{}", appended.json);
}

#[tokio::test]
async fn any_half_of_the_reports_indexes_missing_is_adopted_the_same() {
    let (_db, mut conn) = optimized_database().await;
    let present: Vec<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE indexname LIKE 'idx_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut dropped = present.clone();
    dropped.shuffle(&mut rand::thread_rng());
    dropped.truncate(present.len() / 2);
    for index in &dropped {
        conn.execute(format!(r#"DROP INDEX "{index}""#).as_str()).await.unwrap();
    }
    let report = migrate::run(&mut conn).await.unwrap_or_else(|error| panic!("without {dropped:?}: {error:#}"));
    let adoption = report.adoption.unwrap();
    assert_eq!(adoption.indexes_dropped.len(), present.len() - dropped.len(), "without {dropped:?}");
    assert!(adoption.indexes_dropped.iter().all(|index| REPORT_INDEXES.contains(&index.as_str())));
    assert_same_schema_as_fresh(&mut conn).await;
}

#[tokio::test]
async fn a_database_with_only_some_optimized_columns_is_adopted() {
    let (_db, mut conn) = optimized_database().await;
    conn.execute(sqlx::raw_sql(
        r#"ALTER TABLE "Project" DROP COLUMN "viewCount" CASCADE, DROP COLUMN "isFeatured";
           ALTER TABLE "TokenUsage" DROP COLUMN "cost";
           ALTER TABLE "Message" DROP COLUMN "tokens";"#,
    ))
    .await
    .unwrap();
    let report = migrate::run(&mut conn).await.unwrap();
    assert!(report.adoption.unwrap().state.contains("8 of the report's 12"));
    assert_same_schema_as_fresh(&mut conn).await;
    let (likes, views): (i32, i32) =
        sqlx::query_as(r#"SELECT "likeCount", "viewCount" FROM "Project" WHERE "id" = 'p_opt_1'"#)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((likes, views), (9, 0), "what was there is kept; what was not starts at zero");
    let model: String = sqlx::query_scalar(r#"SELECT "model" FROM "TokenUsage""#).fetch_one(&mut conn).await.unwrap();
    assert_eq!(model, "claude-sonnet");
}

#[tokio::test]
async fn a_migrate_interrupted_after_adopting_migration_1_resumes() {
    let (_db, mut conn) = optimized_database().await;
    // As if a run had recorded migration 1 and died before migration 2 committed.
    let first = &migrate::MIGRATIONS[0];
    conn.execute(sqlx::raw_sql(
        r#"CREATE TABLE "_vibing2_migrations" (
               "version" BIGINT PRIMARY KEY, "name" TEXT NOT NULL, "checksum" TEXT NOT NULL,
               "mode" TEXT NOT NULL CHECK ("mode" IN ('applied', 'adopted')),
               "appliedAt" TIMESTAMP(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
               "durationMs" DOUBLE PRECISION NOT NULL)"#,
    ))
    .await
    .unwrap();
    sqlx::query(r#"INSERT INTO "_vibing2_migrations" VALUES (1, $1, $2, 'adopted', DEFAULT, 0)"#)
        .bind(first.name)
        .bind(hex::encode(Sha256::digest(first.sql.as_bytes())))
        .execute(&mut conn)
        .await
        .unwrap();
    let report = migrate::run(&mut conn).await.expect("the next run finishes the job");
    assert!(report.adoption.is_some());
    assert_same_schema_as_fresh(&mut conn).await;
}

#[tokio::test]
async fn a_migrate_interrupted_in_its_batches_resumes_where_it_stopped() {
    let (_db, mut conn) = optimized_database().await;
    // The second message's cursor cannot be written: the run dies part-way through the batches.
    conn.execute(sqlx::raw_sql(
        r#"CREATE FUNCTION refuse_second_cursor() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               IF NEW."id" = 'm_opt_2' AND NEW."cursor" IS NOT NULL THEN RAISE EXCEPTION 'power cut'; END IF;
               RETURN NEW;
           END $$;
           CREATE TRIGGER refuse_second_cursor BEFORE UPDATE ON "Message"
           FOR EACH ROW EXECUTE FUNCTION refuse_second_cursor()"#,
    ))
    .await
    .unwrap();
    let one_row_batches = migrate::Options { batch_rows: 1 };
    let error = migrate::run_with(&mut conn, one_row_batches).await.unwrap_err();
    assert!(format!("{error:#}").contains("power cut"), "{error:#}");

    // The first part and the batches before the failure are committed; migration 2 is not.
    let (in_progress, applied): (i64, i64) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "_vibing2_migration_progress" WHERE "version" = 2),
                  (SELECT count(*) FROM "_vibing2_migrations" WHERE "version" = 2)"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((in_progress, applied), (1, 0));
    let cursors: Vec<(String, Option<i64>)> =
        sqlx::query_as(r#"SELECT "id", "cursor" FROM "Message" ORDER BY "id""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!(cursors[0], ("m_opt_1".to_owned(), Some(1)), "{cursors:?}");
    assert_eq!(cursors[1], ("m_opt_2".to_owned(), None), "{cursors:?}");
    let unsummed: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "ProjectFile" WHERE "checksum" IS NULL"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(unsummed, 0, "the file backfill, which ran first, finished");

    conn.execute("DROP TRIGGER refuse_second_cursor ON \"Message\"; DROP FUNCTION refuse_second_cursor()")
        .await
        .unwrap();
    let report = migrate::run_with(&mut conn, one_row_batches).await.expect("the next run finishes the job");
    assert_eq!(report.resumed, Some(2));
    let adoption = report.adoption.as_ref().expect("the summary the first run read");
    assert_eq!((adoption.projects, adoption.counter_disagreements, adoption.usage_rows), (2, 1, 1));
    let filled = |name: &str| {
        let filled = report.backfilled.iter().find(|filled| filled.name == name).expect(name);
        (filled.walked, filled.changed)
    };
    assert_eq!(filled("file sizes and checksums"), (2, 0), "done files are not written again");
    assert_eq!(filled("message cursors"), (3, 2), "only the messages left are numbered");
    assert_same_schema_as_fresh(&mut conn).await;

    let cursors: Vec<String> =
        sqlx::query_scalar(r#"SELECT "id" FROM "Message" ORDER BY "cursor""#).fetch_all(&mut conn).await.unwrap();
    assert_eq!(cursors, ["m_opt_1", "m_opt_2", "m_opt_3"]);
    let (likes, tokens, model): (i32, i32, String) = sqlx::query_as(
        r#"SELECT (SELECT "likeCount" FROM "Project" WHERE "id" = 'p_opt_1'),
                  (SELECT "tokens" FROM "Message" WHERE "id" = 'm_opt_2'),
                  (SELECT "model" FROM "TokenUsage" WHERE "id" = 't_opt_1')"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((likes, tokens, model.as_str()), (9, 120, "claude-sonnet"));
    assert!(migrate::run(&mut conn).await.unwrap().is_noop());
}

#[tokio::test]
async fn a_state_it_cannot_adopt_stops_migrate_before_any_change() {
    let refusals = [
        (r#"ALTER TABLE "Project" ALTER COLUMN "likeCount" TYPE TEXT"#, "Project.likeCount is text"),
        (r#"ALTER TABLE "TokenUsage" ALTER COLUMN "id" TYPE VARCHAR(40)"#, "TokenUsage.id is character varying(40)"),
        (r#"ALTER TABLE "Project" ADD COLUMN "stars" INTEGER"#, "Project.stars"),
        (r#"ALTER TABLE "User" DROP COLUMN "plan""#, "User.plan of Prisma's schema is missing"),
    ];
    for (change, named) in refusals {
        let (_db, mut conn) = optimized_database().await;
        conn.execute(change).await.unwrap();
        let before = catalog_snapshot(&mut conn).await;
        let error = migrate::run(&mut conn).await.unwrap_err().to_string();
        assert!(error.contains(named), "{change}: {error}");
        assert_eq!(error.lines().count(), 1, "{error}");
        assert_eq!(catalog_snapshot(&mut conn).await, before, "{change}: nothing changed");
    }
}
