//! The synthetic data generator: deterministic, identical across flavors, internally
//! consistent and skewed the way the benchmark needs.

use sqlx::{Executor, PgConnection};
use vibing2::bench::seed::{self, Flavor, SeedOptions, SeedReport, DEFAULT_ANCHOR, MODELS};
use vibing2::db::migrate;

use crate::support::TestDb;

/// Small enough for CI: 10 users, 100 projects, 2000 messages.
const SCALE: f64 = 0.001;

fn options(flavor: Flavor, seed: u64) -> SeedOptions {
    SeedOptions { scale: SCALE, seed, flavor, progress: false }
}

/// A database at the Phase-2 schema only, as Prisma left it.
async fn phase2_db() -> TestDb {
    let db = TestDb::empty().await;
    db.connect().await.execute(sqlx::raw_sql(migrate::MIGRATIONS[0].sql)).await.expect("the Phase-2 baseline");
    db
}

async fn seeded(flavor: Flavor, seed: u64) -> (TestDb, SeedReport) {
    let db = match flavor {
        Flavor::Phase2 => phase2_db().await,
        Flavor::Current => TestDb::migrated().await,
    };
    let report = seed::seed(&mut db.connect().await, &options(flavor, seed)).await.expect("seeding");
    (db, report)
}

/// An md5 over `row` (an expression over `t`, a row of `table`) for every row, in `order`.
async fn digest(conn: &mut PgConnection, table: &str, row: &str, order: &str) -> String {
    let query = format!(
        r#"SELECT coalesce(md5(string_agg(({row})::text, E'\n' ORDER BY {order})), 'empty')
           FROM "{table}" t"#
    );
    sqlx::query_scalar(&query).fetch_one(conn).await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

async fn scalar<T>(conn: &mut PgConnection, query: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(query).fetch_one(conn).await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// Every table the current flavor fills, with its key.
const CURRENT_TABLES: [(&str, &str); 7] = [
    ("User", "t.id"),
    ("Project", "t.id"),
    ("ProjectFile", "t.id"),
    ("Message", "t.id"),
    ("TokenUsage", "t.id"),
    ("ProjectCollaborator", "t.id"),
    ("ProjectLike", r#"t."projectId", t."userId""#),
];

async fn whole_table_digests(conn: &mut PgConnection) -> Vec<String> {
    let mut digests = Vec::new();
    for (table, key) in CURRENT_TABLES {
        digests.push(format!("{table} {}", digest(conn, table, "t", key).await));
    }
    digests
}

#[tokio::test]
async fn one_seed_gives_identical_databases_and_another_seed_does_not() {
    let ((first_db, report), (second, _), (other, _)) =
        tokio::join!(seeded(Flavor::Current, 7), seeded(Flavor::Current, 7), seeded(Flavor::Current, 8));
    let first = whole_table_digests(&mut first_db.connect().await).await;
    assert_eq!(first, whole_table_digests(&mut second.connect().await).await);
    let other = whole_table_digests(&mut other.connect().await).await;
    for (a, b) in first.iter().zip(&other) {
        assert_ne!(a, b, "every table should change with the seed");
    }

    let rows = |table: &str| {
        report.tables.iter().find(|t| t.table == table).unwrap_or_else(|| panic!("no figure for {table}")).rows
    };
    assert_eq!(rows("User"), 10);
    // The public faces, which the triggers set aside for the load would have written.
    let unlike: i64 = scalar(
        &mut first_db.connect().await,
        r#"SELECT count(*) FROM "User" u FULL JOIN "UserFace" f USING ("id")
           WHERE u."id" IS NULL OR f."id" IS NULL OR (u."name", u."image") IS DISTINCT FROM (f."name", f."image")"#,
    )
    .await;
    assert_eq!(unlike, 0);
    assert_eq!(rows("Project"), 100);
    assert_eq!(rows("Message"), 2000);
    assert_eq!(rows("TokenUsage"), 2000);
    assert!((300..800).contains(&rows("ProjectFile")));
    assert!(rows("ProjectLike") > 0 && rows("ProjectCollaborator") > 0);
    assert_eq!(report.anchor, DEFAULT_ANCHOR);
}

/// The columns both schemas have, as (table, row expression over `t`, key). The Phase-2
/// `likes`/`forks` are compared with the counters that replaced them.
fn common_columns(flavor: Flavor) -> [(&'static str, String, &'static str); 6] {
    let (likes, forks) = match flavor {
        Flavor::Phase2 => ("likes", "forks"),
        Flavor::Current => ("likeCount", "forkCount"),
    };
    [
        (
            "User",
            r#"ROW(t.id, t.name, t.email, t."emailVerified", t.password, t.image, t.plan,
                   t."tokenBalance", t."contextUsed", t."createdAt", t."updatedAt")"#
                .to_owned(),
            "t.id",
        ),
        (
            "Project",
            format!(
                r#"ROW(t.id, t.name, t.description, t."projectType", t."activeAgents"::jsonb,
                       t."currentCode", t.visibility, t."{likes}", t."{forks}", t."userId",
                       t."createdAt", t."updatedAt")"#
            ),
            "t.id",
        ),
        (
            "ProjectFile",
            r#"ROW(t.id, t."projectId", t.path, t.content, t.language, t."createdAt",
                   t."updatedAt")"#
                .to_owned(),
            "t.id",
        ),
        ("Message", r#"ROW(t.id, t.role, t.content, t."projectId", t."createdAt")"#.to_owned(), "t.id"),
        (
            "TokenUsage",
            r#"ROW(t.id, t."tokensUsed", t."contextUsed", t."savedTokens", t."userId",
                   t.endpoint, t.timestamp)"#
                .to_owned(),
            "t.id",
        ),
        ("ProjectCollaborator", r#"ROW(t.id, t."projectId", t."userId", t.role, t."createdAt")"#.to_owned(), "t.id"),
    ]
}

#[tokio::test]
async fn both_flavors_hold_the_same_data_in_their_common_columns() {
    let ((phase2, _), (current, _)) = tokio::join!(seeded(Flavor::Phase2, 11), seeded(Flavor::Current, 11));
    let (mut phase2, mut current) = (phase2.connect().await, current.connect().await);
    let pairs = common_columns(Flavor::Phase2).into_iter().zip(common_columns(Flavor::Current));
    for ((table, old_row, key), (_, new_row, _)) in pairs {
        assert_eq!(
            digest(&mut phase2, table, &old_row, key).await,
            digest(&mut current, table, &new_row, key).await,
            "{table} differs between the flavors"
        );
    }
}

#[tokio::test]
async fn upgrading_the_phase2_seed_derives_what_the_current_seed_holds() {
    let ((phase2, _), (current, _)) = tokio::join!(seeded(Flavor::Phase2, 13), seeded(Flavor::Current, 13));
    let (mut upgraded, mut current) = (phase2.connect().await, current.connect().await);
    migrate::run(&mut upgraded).await.expect("upgrading the Phase-2 seed");
    // The upgrade numbers messages by (createdAt, id), and computes sizes, checksums and
    // counters: the current seed must already hold exactly those.
    let derived = [
        ("Message", r#"ROW(t.id, t."cursor")"#),
        ("ProjectFile", "ROW(t.id, t.size, t.checksum)"),
        ("Project", r#"ROW(t.id, t."likeCount", t."forkCount", t."activeAgents")"#),
    ];
    for (table, row) in derived {
        assert_eq!(
            digest(&mut upgraded, table, row, "t.id").await,
            digest(&mut current, table, row, "t.id").await,
            "{table} differs after the upgrade"
        );
    }
}

/// Indexes, constraints and triggers, as their definitions.
/// The indexes, constraints and triggers, partitions (TokenUsage's months, which the seed
/// creates for its data) aside.
async fn schema_objects(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
           AND tablename::text NOT IN (SELECT relname::text FROM pg_class WHERE relispartition)
         UNION ALL
         SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace
           AND conrelid NOT IN (SELECT oid FROM pg_class WHERE relispartition)
         UNION ALL
         SELECT tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text FROM pg_trigger
         WHERE NOT tgisinternal
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn seeding_leaves_the_schema_as_it_found_it() {
    let fresh = TestDb::migrated().await;
    let (current, _) = seeded(Flavor::Current, 17).await;
    let before = schema_objects(&mut fresh.connect().await).await;
    assert!(before.len() > 50, "{before:?}");
    assert_eq!(before, schema_objects(&mut current.connect().await).await);

    let fresh = phase2_db().await;
    let (phase2, _) = seeded(Flavor::Phase2, 17).await;
    assert_eq!(schema_objects(&mut fresh.connect().await).await, schema_objects(&mut phase2.connect().await).await);
}

#[tokio::test]
async fn the_current_flavor_is_internally_consistent() {
    let (db, _) = seeded(Flavor::Current, 5).await;
    let conn = &mut db.connect().await;
    let zero = [
        // Counters are the ProjectLike rows, and likes go to public projects only.
        r#"SELECT count(*) FROM "Project" p WHERE p."likeCount" <>
             (SELECT count(*) FROM "ProjectLike" l WHERE l."projectId" = p.id)"#,
        r#"SELECT count(*) FROM "ProjectLike" l JOIN "Project" p ON p.id = l."projectId"
           WHERE p.visibility <> 'PUBLIC' OR p."userId" = l."userId""#,
        // Sizes and checksums are those the server would compute.
        r#"SELECT count(*) FROM "ProjectFile"
           WHERE size <> octet_length(content)
              OR checksum <> encode(sha256(convert_to(content, 'UTF8')), 'hex')"#,
        // The language follows the extension.
        r#"SELECT count(*) FROM "ProjectFile" WHERE language <> CASE substring(path FROM '\.(\w+)$')
             WHEN 'tsx' THEN 'typescript' WHEN 'ts' THEN 'typescript' WHEN 'html' THEN 'html'
             WHEN 'css' THEN 'css' WHEN 'json' THEN 'json' WHEN 'md' THEN 'markdown'
             WHEN 'svg' THEN 'xml' END"#,
        // Within a project, the cursor orders messages as their times do.
        r#"SELECT count(*) FROM (
             SELECT "createdAt" <= lag("createdAt") OVER w AS out_of_order FROM "Message"
             WINDOW w AS (PARTITION BY "projectId" ORDER BY "cursor")) m
           WHERE out_of_order"#,
        // Messages and files fall inside their project's life.
        r#"SELECT count(*) FROM "Message" m JOIN "Project" p ON p.id = m."projectId"
           WHERE m."createdAt" < p."createdAt""#,
        r#"SELECT count(*) FROM "ProjectFile" f JOIN "Project" p ON p.id = f."projectId"
           WHERE f."createdAt" < p."createdAt" OR f."updatedAt" > p."updatedAt"
              OR f."updatedAt" < f."createdAt""#,
        // Collaborators are never the owner.
        r#"SELECT count(*) FROM "ProjectCollaborator" c JOIN "Project" p ON p.id = c."projectId"
           WHERE p."userId" = c."userId""#,
        // Usage is charged to the caller's own projects, which existed by then.
        r#"SELECT count(*) FROM "TokenUsage" u JOIN "Project" p ON p.id = u."projectId"
           WHERE p."userId" <> u."userId" OR p."createdAt" > u.timestamp"#,
        r#"SELECT count(*) FROM "TokenUsage" u JOIN "User" s ON s.id = u."userId"
           WHERE s."createdAt" > u.timestamp"#,
        // activeAgents is the JSON array the checks want, and no password is a real hash.
        r#"SELECT count(*) FROM "Project" WHERE jsonb_array_length("activeAgents") = 0"#,
        r#"SELECT count(*) FROM "User" WHERE password NOT LIKE '$argon2id$%'"#,
    ];
    for query in zero {
        assert_eq!(scalar::<i64>(conn, query).await, 0, "{query}");
    }

    let next_cursor_is_fresh: bool =
        scalar(conn, r#"SELECT nextval('"Message_cursor_seq"') > (SELECT max("cursor") FROM "Message")"#).await;
    assert!(next_cursor_is_fresh);

    // Costs round-trip through the binary numeric encoding: tokens × the model's price.
    let prices: Vec<String> = MODELS.iter().map(|(model, _, price)| format!("('{model}', {price})")).collect();
    let wrong_costs: i64 = scalar(
        conn,
        &format!(
            r#"SELECT count(*) FROM "TokenUsage" u JOIN (VALUES {}) m(model, price) USING (model)
               WHERE u.cost <> trunc(u."tokensUsed"::numeric * m.price / 1000) / 1000000"#,
            prices.join(", ")
        ),
    )
    .await;
    assert_eq!(wrong_costs, 0);
    let unknown_models: i64 = scalar(
        conn,
        &format!(
            r#"SELECT count(*) FROM "TokenUsage" WHERE model NOT IN ({})"#,
            MODELS.map(|(model, _, _)| format!("'{model}'")).join(", ")
        ),
    )
    .await;
    assert_eq!(unknown_models, 0);

    // Usage spans the 180 days before the anchor.
    let (oldest, newest): (chrono::NaiveDateTime, chrono::NaiveDateTime) =
        sqlx::query_as(r#"SELECT min(timestamp), max(timestamp) FROM "TokenUsage""#)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert!(newest < DEFAULT_ANCHOR && newest > DEFAULT_ANCHOR - chrono::Days::new(2));
    assert!(oldest >= DEFAULT_ANCHOR - chrono::Days::new(180));
    assert!(oldest < DEFAULT_ANCHOR - chrono::Days::new(178));
}

#[tokio::test]
async fn messages_and_usage_are_zipf_skewed() {
    let (db, _) = seeded(Flavor::Current, 3).await;
    let conn = &mut db.connect().await;
    // The busiest project holds many times the median project's messages, and likewise for
    // the heaviest user's usage.
    let (busiest, median): (i64, f64) = sqlx::query_as(
        r#"SELECT max(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM (
             SELECT count(m.id) AS n FROM "Project" p LEFT JOIN "Message" m ON m."projectId" = p.id
             GROUP BY p.id) c"#,
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert!(busiest as f64 >= 8.0 * median.max(1.0), "busiest project {busiest}, median {median}");
    let (heaviest, median): (i64, f64) = sqlx::query_as(
        r#"SELECT max(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM (
             SELECT count(*) AS n FROM "TokenUsage" GROUP BY "userId") c"#,
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert!(heaviest as f64 >= 3.0 * median, "heaviest user {heaviest}, median {median}");
    let public_share: f64 = scalar(conn, r#"SELECT avg((visibility = 'PUBLIC')::int)::float8 FROM "Project""#).await;
    assert!((0.15..0.45).contains(&public_share), "{public_share}");
}

#[tokio::test]
async fn seeding_refuses_a_filled_database_or_the_wrong_schema() {
    let (db, _) = seeded(Flavor::Current, 1).await;
    let error = seed::seed(&mut db.connect().await, &options(Flavor::Current, 2)).await.unwrap_err();
    assert!(error.to_string().contains("already has rows"), "{error:#}");
    let users: i64 = scalar(&mut db.connect().await, r#"SELECT count(*) FROM "User""#).await;
    assert_eq!(users, 10, "the failed seed must change nothing");

    let error = seed::seed(&mut db.connect().await, &options(Flavor::Phase2, 2)).await.unwrap_err();
    assert!(error.to_string().contains("current schema"), "{error:#}");
    let phase2 = phase2_db().await;
    let error = seed::seed(&mut phase2.connect().await, &options(Flavor::Current, 2)).await.unwrap_err();
    assert!(error.to_string().contains("Phase-2 schema"), "{error:#}");
}
