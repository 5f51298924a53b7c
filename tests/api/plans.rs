//! The headline queries use the indexes docs/indexes.md names for them, on a seeded
//! database, under both custom and generic (prepared-statement) plans.

use serde_json::Value;
use sqlx::{Executor, PgConnection};
use vibing2::db::discovery::discovery_sql;
use vibing2::db::messages::page_sql;
use vibing2::db::usage::{summary_sql, RECENT_SQL};
use vibing2::db::{files, projects};
use vibing2::domain::discovery::Sort;
use vibing2::domain::Direction;
use vibing2::domain::GroupBy;

use crate::support::TestDb;

/// 2,000 users, 40,000 projects (a rare type among four common ones), 200,000 messages (20,000 in project p1), 80,000 files,
/// 5,000 collaborators: enough that a sequential scan is never the cheap choice.
async fn seeded() -> (TestDb, PgConnection) {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    conn.execute(sqlx::raw_sql(
        r#"
        INSERT INTO "User" ("id", "email", "password")
        SELECT 'u' || n, 'user' || n || '@example.com', 'x' FROM generate_series(0, 1999) n;

        INSERT INTO "Project" ("id", "name", "description", "projectType", "visibility", "userId",
                               "likeCount", "forkCount", "viewCount", "createdAt", "updatedAt")
        SELECT 'p' || n, 'Project ' || n, 'A generated project number ' || n,
               CASE WHEN n % 100 = 1 THEN 'extension' ELSE (ARRAY['website', 'game', 'dashboard', 'tool'])[1 + n % 4] END,
               CASE WHEN n % 10 < 3 THEN 'PUBLIC' ELSE 'PRIVATE' END,
               'u' || (n % 2000), n % 17, n % 5, n % 101,
               TIMESTAMP '2026-01-01' + n * interval '1 minute', TIMESTAMP '2026-01-01' + n * interval '1 minute'
        FROM generate_series(0, 39999) n;

        INSERT INTO "Message" ("id", "projectId", "role", "content")
        SELECT 'm' || n,
               CASE WHEN n < 20000 THEN 'p1' ELSE 'p' || (n % 40000) END,
               CASE WHEN n % 10 = 0 THEN 'system' WHEN n % 2 = 0 THEN 'user' ELSE 'assistant' END,
               'message body ' || n
        FROM generate_series(0, 199999) n;

        INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "size", "checksum")
        SELECT 'f' || n, 'p' || (n / 2), 'src/file' || (n % 2) || '.js', 'x', 'javascript', 1, repeat('0', 64)
        FROM generate_series(0, 79999) n;

        INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role")
        SELECT 'c' || n, 'p' || (n * 7 % 40000), 'u' || ((n * 13 + 1) % 2000), 'EDITOR'
        FROM generate_series(0, 4999) n
        WHERE 'u' || ((n * 13 + 1) % 2000) <> 'u' || ((n * 7 % 40000) % 2000);

        SELECT "_vibing2_token_usage_partition"('"TokenUsage"', m::date)
        FROM generate_series(DATE '2026-06-01', DATE '2026-11-01', interval '1 month') m;
        INSERT INTO "TokenUsage" ("id", "userId", "endpoint", "model", "tokensUsed", "contextUsed", "timestamp")
        SELECT 't' || n, 'u' || (n % 2000), (ARRAY['/chat', '/edit'])[1 + n % 2], 'gpt-4o', 100, 1,
               TIMESTAMP '2026-06-01' + (n % 180) * interval '1 day' + (n % 997) * interval '1 second'
        FROM generate_series(0, 199999) n;

        ANALYZE;
        "#,
    ))
    .await
    .unwrap();
    (db, conn)
}

fn index_names(plan: &Value, names: &mut Vec<String>) {
    match plan {
        Value::Object(fields) => {
            if let Some(Value::String(name)) = fields.get("Index Name") {
                names.push(name.clone());
            }
            fields.values().for_each(|value| index_names(value, names));
        }
        Value::Array(items) => items.iter().for_each(|item| index_names(item, names)),
        _ => {}
    }
}

/// The indexes the plan of `sql` (with `binds`) uses, custom and generic.
async fn plan_indexes(conn: &mut PgConnection, sql: &str, binds: &[&str]) -> [Vec<String>; 2] {
    let mut result = [Vec::new(), Vec::new()];
    for (slot, mode) in ["force_custom_plan", "force_generic_plan"].iter().enumerate() {
        conn.execute(format!("SET plan_cache_mode = {mode}").as_str()).await.unwrap();
        // Binds go in as text; the casts in the statement give each parameter its type.
        let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
        let mut query = sqlx::query_scalar::<_, Value>(&explain);
        for bind in binds {
            query = query.bind(*bind);
        }
        let plan = query.fetch_one(&mut *conn).await.unwrap_or_else(|e| panic!("EXPLAIN failed: {e}\n{sql}"));
        let mut names = Vec::new();
        index_names(&plan, &mut names);
        // A partition's index (TokenUsage's months) stands for its parent's, the ledger's.
        result[slot] = sqlx::query_scalar(
            "SELECT coalesce(p.relname, c.relname)::text FROM UNNEST($1::text[]) WITH ORDINALITY n(name, at)
             JOIN pg_class c ON c.relname = n.name
             LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
             ORDER BY n.at",
        )
        .bind(&names)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    }
    result
}

fn assert_uses(plans: &[Vec<String>; 2], index: &str, query: &str) {
    assert_uses_one_of(plans, &[index], query);
}

fn assert_uses_one_of(plans: &[Vec<String>; 2], indexes: &[&str], query: &str) {
    for (plan, mode) in plans.iter().zip(["custom", "generic"]) {
        assert!(
            plan.iter().any(|name| indexes.contains(&name.as_str())),
            "{query} ({mode} plan) should use one of {indexes:?}, used {plan:?}"
        );
    }
}

#[tokio::test]
async fn headline_queries_use_their_ledger_indexes() {
    let (_db, mut conn) = seeded().await;

    // The member's project list: a page of its memberships, then the page's projects and
    // their counts by id.
    let page = plan_indexes(
        &mut conn,
        &projects::LIST_FOR_MEMBER_SQL.replace("$2", "$2::timestamp").replace("$4", "$4::int8"),
        &["u1", "9999-12-31 00:00:00", "", "21"],
    )
    .await;
    assert_uses(&page, "UserProject_userId_updatedAt_projectId_idx", "project list page");
    let list = plan_indexes(&mut conn, projects::SUMMARIES_SQL, &["{p1,p2001,p4001,p6001}"]).await;
    assert_uses(&list, "Project_pkey", "project list projects");
    // Counting one project's messages is an index-only scan on either (projectId, ...) index.
    assert_uses_one_of(
        &list,
        &["Message_projectId_cursor_key", "Message_projectId_role_cursor_idx"],
        "project list message counts",
    );
    assert_uses(&list, "ProjectFile_projectId_path_key", "project list file counts");

    // The file listing.
    let listing = plan_indexes(&mut conn, &files::LIST_SQL.replace("$3", "$3::int8"), &["p1", "", "101"]).await;
    assert_uses(&listing, "ProjectFile_projectId_path_key", "file listing");

    // A deep message page of the heavy project, and the same with a role filter.
    let page = page_sql(false, Direction::Older).replace("$2", "$2::int8").replace("$3", "$3::int8");
    let plans = plan_indexes(&mut conn, &page, &["p1", "15000", "51"]).await;
    assert_uses(&plans, "Message_projectId_cursor_key", "message page");
    let newer = page_sql(false, Direction::Newer).replace("$2", "$2::int8").replace("$3", "$3::int8");
    let plans = plan_indexes(&mut conn, &newer, &["p1", "15000", "51"]).await;
    assert_uses(&plans, "Message_projectId_cursor_key", "message page, newer");
    let by_role = page_sql(true, Direction::Older).replace("$2", "$2::int8").replace("$3", "$3::int8");
    let plans = plan_indexes(&mut conn, &by_role, &["p1", "15000", "51", "system"]).await;
    assert_uses(&plans, "Message_projectId_role_cursor_idx", "message page by role");
}

#[tokio::test]
async fn each_discovery_sort_and_filter_uses_its_index_on_first_and_deep_pages() {
    let (_db, mut conn) = seeded().await;
    let cases = [
        (Sort::Popular, "Project_public_likeCount_idx", vec!["$5::int4", "$6"], vec!["3", "p100"]),
        (Sort::Forks, "Project_public_forkCount_idx", vec!["$5::int4", "$6"], vec!["2", "p100"]),
        (Sort::Trending, "Project_public_viewCount_idx", vec!["$5::int4", "$6"], vec!["50", "p100"]),
        (
            Sort::Recent,
            "Project_public_createdAt_idx",
            vec!["$5::timestamp", "$6"],
            vec!["2026-01-10 00:00:00", "p100"],
        ),
        (
            Sort::Featured,
            "Project_public_featured_idx",
            vec!["$5::bool", "$6::timestamp", "$7"],
            vec!["false", "2026-01-10 00:00:00", "p100"],
        ),
    ];
    for (sort, index, casts, position) in cases {
        for deep in [false, true] {
            let mut sql = discovery_sql(sort, false, false, deep).replace("LIMIT $1", "LIMIT $1::int8");
            for (n, cast) in casts.iter().enumerate() {
                sql = sql
                    .replace(&format!("${})", n + 5), &format!("{cast})"))
                    .replace(&format!("${},", n + 5), &format!("{cast},"));
            }
            let mut binds = vec!["21", "", "", ""];
            if deep {
                binds.extend(position.iter().copied());
            }
            let plans = plan_indexes(&mut conn, &sql, &binds).await;
            assert_uses(&plans, index, &format!("discover sort={sort:?} deep={deep}"));
        }
    }

    let by_type = discovery_sql(Sort::Recent, true, false, false).replace("LIMIT $1", "LIMIT $1::int8");
    // A rare type is read from the type index. For a common one the planner may as well walk
    // the sort's index and filter: a quarter of the rows match, so 21 come quickly.
    let plans = plan_indexes(&mut conn, &by_type, &["21", "", "", "extension"]).await;
    assert_uses(&plans, "Project_public_projectType_createdAt_idx", "discover type=extension");
    let plans = plan_indexes(&mut conn, &by_type, &["21", "", "", "game"]).await;
    assert_uses_one_of(
        &plans,
        &["Project_public_projectType_createdAt_idx", "Project_public_createdAt_idx"],
        "discover type=game",
    );

    // Search: name OR description, each side on its own trigram index, combined.
    let search = discovery_sql(Sort::Relevance, false, true, false).replace("LIMIT $1", "LIMIT $1::int8");
    let plans = plan_indexes(&mut conn, &search, &["21", "%number 1234%", "number 1234", ""]).await;
    assert_uses(&plans, "Project_public_name_trgm_idx", "discover search (name side)");
    assert_uses(&plans, "Project_public_description_trgm_idx", "discover search (description side)");
}

#[tokio::test]
async fn usage_queries_use_the_user_time_index_and_the_view_key() {
    let (_db, mut conn) = seeded().await;
    conn.execute("REFRESH MATERIALIZED VIEW user_token_summary; ANALYZE user_token_summary").await.unwrap();
    let recent = RECENT_SQL.replace("$2", "$2::timestamp").replace("$4", "$4::int8");
    let plans = plan_indexes(&mut conn, &recent, &["u7", "9999-12-31 00:00:00", "", "21"]).await;
    assert_uses(&plans, "TokenUsage_userId_timestamp_id_idx", "recent usage");

    for group_by in [GroupBy::Day, GroupBy::Endpoint, GroupBy::Model] {
        let summary = summary_sql(group_by).replace("$2", "$2::int4");
        let plans = plan_indexes(&mut conn, &summary, &["u7", "30"]).await;
        assert_uses(&plans, "user_token_summary_key", &format!("usage summary by {group_by:?} (view part)"));
        assert_uses(
            &plans,
            "TokenUsage_userId_timestamp_id_idx",
            &format!("usage summary by {group_by:?} (live part)"),
        );
    }
}
