//! The headline queries use the indexes docs/indexes.md names for them, on a seeded
//! database, under both custom and generic (prepared-statement) plans.

use serde_json::Value;
use sqlx::{Executor, PgConnection};
use vibing2::db::messages::{page_sql, Direction};
use vibing2::db::{files, projects};

use crate::support::TestDb;

/// 2,000 users, 40,000 projects, 200,000 messages (20,000 in project p1), 80,000 files,
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
               (ARRAY['website', 'game', 'dashboard', 'tool'])[1 + n % 4],
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
        index_names(&plan, &mut result[slot]);
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

    // The member's project list: own projects, shared projects, counts for the page only.
    let list = plan_indexes(
        &mut conn,
        &projects::LIST_FOR_MEMBER_SQL.replace("$2", "$2::timestamp").replace("$4", "$4::int8"),
        &["u1", "9999-12-31 00:00:00", "", "21"],
    )
    .await;
    assert_uses(&list, "Project_userId_updatedAt_idx", "project list");
    assert_uses(&list, "ProjectCollaborator_userId_projectId_idx", "project list");
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
