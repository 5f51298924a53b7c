//! `UserProject`, the user-keyed memberships the project list reads (migration 16,
//! docs/scaling.md): through every write that changes a membership or a project's
//! `updatedAt`, each user's list, page by page, stays what the single cross-shard statement it
//! replaced returns on the same database; the table stays what it is derived to be; and the
//! migration derives it from the data already there.

use axum::http::{Method, StatusCode};
use chrono::NaiveDateTime;
use serde_json::json;
use sqlx::{Executor, PgConnection};
use vibing2::db::migrate::{self, MIGRATIONS};
use vibing2::db::projects;
use vibing2::domain::time::{end_of_time, Position};

use crate::support::{TestApp, TestDb, TestUser};

/// The project list before `UserProject`: own and shared projects merged in one statement
/// from `Project` and `ProjectCollaborator` (queries/projects_list_for_member.sql as it was).
const OLD_LIST: &str = r#"
WITH candidates AS (
    (SELECT p.*, 'owner' AS "access" FROM "Project" p
     WHERE p."userId" = $1 AND (p."updatedAt", p."id") < ($2, $3)
     ORDER BY p."updatedAt" DESC, p."id" DESC LIMIT $4)
    UNION ALL
    (SELECT p.*, lower(c."role") FROM "ProjectCollaborator" c
     JOIN "Project" p ON p."id" = c."projectId"
     WHERE c."userId" = $1 AND p."userId" <> $1 AND (p."updatedAt", p."id") < ($2, $3)
     ORDER BY p."updatedAt" DESC, p."id" DESC LIMIT $4)
), page AS (
    SELECT * FROM candidates ORDER BY "updatedAt" DESC, "id" DESC LIMIT $4
)
SELECT page."id", page."name", page."access", page."visibility", page."likeCount", page."forkCount",
       page."viewCount",
       (SELECT count(*) FROM "Message" m WHERE m."projectId" = page."id"),
       (SELECT count(*) FROM "ProjectFile" f WHERE f."projectId" = page."id"),
       page."updatedAt"
FROM page ORDER BY page."updatedAt" DESC, page."id" DESC"#;

/// What a list entry shows: id, name, access, visibility, likes, forks, views, messages,
/// files, updatedAt.
type Entry = (String, String, String, String, i32, i32, i32, i64, i64, NaiveDateTime);

/// One page of the old statement.
async fn old_page(conn: &mut PgConnection, user: &str, after: &Position, limit: i64) -> Vec<Entry> {
    sqlx::query_as(OLD_LIST).bind(user).bind(after.0).bind(&after.1).bind(limit).fetch_all(conn).await.unwrap()
}

/// One page as the service reads it now.
async fn new_page(app: &TestApp, user: &str, after: &Position, limit: i64) -> Vec<Entry> {
    let rows = projects::list_for_member(&app.pool, user, Some(after), limit).await.unwrap();
    rows.into_iter()
        .filter_map(projects::MemberEntry::into_summary)
        .map(|row| {
            let (project, updated_at) = (row.project, row.updated_at.0);
            let access = serde_json::to_value(row.access).unwrap().as_str().unwrap().to_owned();
            let visibility = serde_json::to_value(project.visibility).unwrap().as_str().unwrap().to_owned();
            let counts = (project.like_count, project.fork_count, project.view_count);
            let (messages, files) = (project.message_count, project.file_count);
            (project.id, project.name, access, visibility, counts.0, counts.1, counts.2, messages, files, updated_at)
        })
        .collect()
}

/// Every user's whole list, walked in pages of 2 (and in one page of 100), is the old
/// statement's; returns the lists.
async fn assert_lists_match(app: &TestApp, users: &[&str], step: &str) -> Vec<Vec<Entry>> {
    let mut conn = app.pool.acquire().await.unwrap();
    let mut lists = Vec::new();
    for user in users {
        let start: Position = (end_of_time(), String::new());
        let whole = new_page(app, user, &start, 100).await;
        assert_eq!(whole, old_page(&mut conn, user, &start, 100).await, "{step}: {user}'s list");
        let mut after = start;
        let mut walked = Vec::new();
        loop {
            let page = new_page(app, user, &after, 2).await;
            assert_eq!(page, old_page(&mut conn, user, &after, 2).await, "{step}: {user}'s page after {after:?}");
            let Some(last) = page.last() else { break };
            after = (last.9, last.0.clone());
            walked.extend(page);
        }
        assert_eq!(walked, whole, "{step}: the pages of {user} make the whole list");
        lists.push(whole);
    }
    lists
}

/// `UserProject`'s rows, and what rebuilding it from `Project` and `ProjectCollaborator`
/// gives: the triggers left it as it is derived to be.
async fn assert_derived(conn: &mut PgConnection, step: &str) {
    let kept = memberships(conn).await;
    conn.execute("BEGIN").await.unwrap();
    projects::rebuild_memberships(conn).await.unwrap();
    let derived = memberships(conn).await;
    conn.execute("ROLLBACK").await.unwrap();
    assert_eq!(kept, derived, "{step}: UserProject as the triggers kept it, and as derived");
}

async fn memberships(conn: &mut PgConnection) -> Vec<(String, String, String, NaiveDateTime)> {
    sqlx::query_as(r#"SELECT "userId", "projectId", "access", "updatedAt" FROM "UserProject" ORDER BY 1, 2"#)
        .fetch_all(conn)
        .await
        .unwrap()
}

async fn invite_and_accept(app: &TestApp, from: &TestUser, project: &str, to: &TestUser, role: &str) {
    let uri = format!("/api/projects/{project}/invites");
    let invite = app.call(Method::POST, &uri, Some(&from.token), Some(json!({"userId": to.id, "role": role}))).await;
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.json);
    let uri = format!("/api/invites/{}/accept", invite.json["id"].as_str().unwrap());
    app.call(Method::POST, &uri, Some(&to.token), None).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn every_membership_write_keeps_the_list_equal_to_the_old_statement() {
    let app = TestApp::new().await;
    let (owner, alice, bob) = (app.user("Owner").await, app.user("Alice").await, app.user("Bob").await);
    let users = [owner.id.as_str(), alice.id.as_str(), bob.id.as_str()];
    let mut conn = app.pool.acquire().await.unwrap();
    let p1 = app.project(&owner, "PRIVATE").await;
    let p2 = app.project(&owner, "PRIVATE").await;
    let p3 = app.project(&owner, "PRIVATE").await;
    let a1 = app.project(&alice, "PRIVATE").await;
    let lists = assert_lists_match(&app, &users, "created").await;
    assert_eq!(lists.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1, 0]);

    invite_and_accept(&app, &owner, &p1, &alice, "EDITOR").await;
    invite_and_accept(&app, &alice, &a1, &bob, "VIEWER").await;
    app.add_collaborator(&p2, &bob, "ADMIN").await;
    let lists = assert_lists_match(&app, &users, "members added").await;
    assert_eq!(lists[1].iter().find(|e| e.0 == p1).map(|e| e.2.as_str()), Some("editor"));
    assert_eq!(lists[2].len(), 2);

    let uri = format!("/api/projects/{p1}/members/{}", alice.id);
    app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"role": "VIEWER"}))).await.expect(StatusCode::OK);
    let lists = assert_lists_match(&app, &users, "role changed").await;
    assert_eq!(lists[1].iter().find(|e| e.0 == p1).map(|e| e.2.as_str()), Some("viewer"));

    // A message and a file batch touch their projects: they move to the top of every member's
    // list.
    let message = json!({"role": "user", "content": "hi"});
    app.call(Method::POST, &format!("/api/projects/{p2}/messages"), Some(&owner.token), Some(message))
        .await
        .expect(StatusCode::CREATED);
    let lists = assert_lists_match(&app, &users, "touched by a message").await;
    assert_eq!((lists[0][0].0.as_str(), lists[2][0].0.as_str()), (p2.as_str(), p2.as_str()));
    let files = json!({"operations": [{"op": "upsert", "path": "index.html", "content": "<p>x</p>"}]});
    app.call(Method::PUT, &format!("/api/projects/{a1}/files"), Some(&alice.token), Some(files))
        .await
        .expect(StatusCode::OK);
    let lists = assert_lists_match(&app, &users, "touched by files").await;
    assert_eq!((lists[1][0].0.as_str(), lists[1][0].8), (a1.as_str(), 1));
    assert_eq!(lists[2][0].0, a1);

    let patch = json!({"visibility": "PUBLIC", "name": "Shown"});
    app.call(Method::PATCH, &format!("/api/projects/{p3}"), Some(&owner.token), Some(patch))
        .await
        .expect(StatusCode::OK);
    let fork = app.call(Method::POST, &format!("/api/projects/{p3}/fork"), Some(&bob.token), Some(json!({}))).await;
    assert_eq!(fork.status, StatusCode::CREATED, "{}", fork.json);
    let lists = assert_lists_match(&app, &users, "updated and forked").await;
    assert_eq!(lists[2][0].2, "owner", "the fork is Bob's");

    let uri = format!("/api/projects/{p2}/members/{}", bob.id);
    app.call(Method::DELETE, &uri, Some(&owner.token), None).await.expect(StatusCode::NO_CONTENT);
    let uri = format!("/api/projects/{a1}/members/{}", bob.id);
    app.call(Method::DELETE, &uri, Some(&bob.token), None).await.expect(StatusCode::NO_CONTENT);
    let lists = assert_lists_match(&app, &users, "removed and left").await;
    assert_eq!(lists[2].len(), 1, "only the fork is left to Bob");

    app.call(Method::DELETE, &format!("/api/projects/{p1}"), Some(&owner.token), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let lists = assert_lists_match(&app, &users, "project deleted").await;
    assert!(lists[1].iter().all(|e| e.0 != p1), "gone from its members' lists");
    assert_derived(&mut conn, "after the API's writes").await;

    // Writes the API does not make, by hand: an owner who is also listed as a collaborator,
    // a transfer of ownership to a member and back, a collaborator's row moved to another user,
    // a project's id changed (cascaded to its collaborators' rows).
    for statement in [
        format!(
            r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role") VALUES ('self', '{p2}', '{}', 'ADMIN')"#,
            owner.id
        ),
        format!(
            r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role") VALUES ('al', '{p2}', '{}', 'EDITOR')"#,
            alice.id
        ),
        format!(r#"UPDATE "Project" SET "userId" = '{}' WHERE "id" = '{p2}'"#, alice.id),
        format!(r#"UPDATE "ProjectCollaborator" SET "userId" = '{}' WHERE "id" = 'self'"#, bob.id),
        format!(
            r#"UPDATE "Project" SET "userId" = '{}', "updatedAt" = TIMESTAMP '2020-01-01' WHERE "id" = '{p2}'"#,
            owner.id
        ),
        format!(r#"UPDATE "Project" SET "id" = 'moved' WHERE "id" = '{p2}'"#),
        r#"DELETE FROM "ProjectCollaborator" WHERE "id" = 'al'"#.to_owned(),
    ] {
        conn.execute(statement.as_str()).await.unwrap();
        assert_lists_match(&app, &users, &statement).await;
        assert_derived(&mut conn, &statement).await;
    }
}

/// The migrations before `UserProject`'s.
fn before_memberships() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).filter(|v| *v < 16).max().unwrap()
}

#[tokio::test]
async fn the_migration_derives_the_memberships_of_the_data_already_there() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    migrate::run_up_to(&mut conn, migrate::Options::default(), before_memberships()).await.unwrap();
    conn.execute(
        r#"INSERT INTO "User" ("id", "email", "password") SELECT 'u' || n, 'u' || n || '@example.com', 'x'
           FROM generate_series(1, 5) n;
           INSERT INTO "Project" ("id", "name", "projectType", "userId", "updatedAt")
           SELECT 'p' || n, 'Project ' || n, 'website', 'u' || (1 + n % 3), TIMESTAMP '2026-01-01' + n * interval '1 hour'
           FROM generate_series(1, 12) n;
           -- Everyone on every third project, one of them its owner.
           INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role")
           SELECT 'c' || n || '-' || u, 'p' || n, 'u' || u, (ARRAY['VIEWER', 'EDITOR', 'ADMIN'])[1 + (n + u) % 3]
           FROM generate_series(3, 12, 3) n, generate_series(1, 5) u"#,
    )
    .await
    .unwrap();

    let report = migrate::run(&mut conn).await.unwrap();
    assert!(report.applied.iter().any(|(version, name, _)| (*version, *name) == (16, "user_projects")));
    let by_access: Vec<(String, i64)> =
        sqlx::query_as(r#"SELECT "access", count(*) FROM "UserProject" GROUP BY 1 ORDER BY 1"#)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    // 12 owners; 4 shared projects × 5 users, less the 4 owners among them.
    let total: i64 = by_access.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 12 + 4 * 4, "{by_access:?}");
    assert_eq!(by_access.iter().find(|(access, _)| access == "owner").map(|(_, n)| *n), Some(12));
    assert_derived(&mut conn, "migrated").await;

    let app = TestApp::on(db, &[]).await;
    let lists = assert_lists_match(&app, &["u1", "u2", "u3", "u4", "u5"], "migrated").await;
    assert_eq!(lists.iter().map(Vec::len).sum::<usize>(), 28);
}

/// Waits until `waiter`'s backend is blocked by `holder`'s (pg_blocking_pids), for at most ten
/// seconds; panics if it never is.
async fn until_blocked(observer: &mut PgConnection, waiter: i32, holder: i32, what: &str) {
    let blocked = async {
        loop {
            let blocked: bool = sqlx::query_scalar("SELECT $1 = ANY(pg_blocking_pids($2))")
                .bind(holder)
                .bind(waiter)
                .fetch_one(&mut *observer)
                .await
                .unwrap();
            if blocked {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), blocked)
        .await
        .unwrap_or_else(|_| panic!("{what}: never waited for the other transaction"));
}

async fn backend_pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await.unwrap()
}

async fn member_row(conn: &mut PgConnection, user: &str, project: &str) -> (String, NaiveDateTime) {
    sqlx::query_as(r#"SELECT "access", "updatedAt" FROM "UserProject" WHERE "userId" = $1 AND "projectId" = $2"#)
        .bind(user)
        .bind(project)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// A touch and a membership write on the same project, each in its own open transaction,
/// interleaved both ways the triggers could once lose the touch: the second writer waits for
/// the first (the collaborator triggers lock the project FOR SHARE, as a touch holds it), and
/// the member's row ends with the touch's `updatedAt` and the new access.
#[tokio::test]
async fn a_touch_racing_an_accept_or_a_role_change_is_never_lost() {
    let app = TestApp::new().await;
    let (owner, alice) = (app.user("Owner").await, app.user("Alice").await);
    let project = app.project(&owner, "PRIVATE").await;
    let mut observer = app.pool.acquire().await.unwrap();
    let (mut toucher, mut member) = (app.db.connect().await, app.db.connect().await);
    let (toucher_pid, member_pid) = (backend_pid(&mut toucher).await, backend_pid(&mut member).await);
    let touch = format!(r#"UPDATE "Project" SET "updatedAt" = $1 WHERE "id" = '{project}'"#);

    // A touch in progress, then an accept: the accept's row waits for the touch and takes its time.
    let touched = "2030-01-01T00:00:00".parse::<NaiveDateTime>().unwrap();
    toucher.execute("BEGIN").await.unwrap();
    sqlx::query(&touch).bind(touched).execute(&mut toucher).await.unwrap();
    let accept = format!(
        r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role")
           VALUES ('race', '{project}', '{}', 'VIEWER')"#,
        alice.id
    );
    let accepting = tokio::spawn(async move {
        member.execute("BEGIN").await.unwrap();
        member.execute(accept.as_str()).await.unwrap();
        member.execute("COMMIT").await.unwrap();
        member
    });
    until_blocked(&mut observer, member_pid, toucher_pid, "the accept").await;
    toucher.execute("COMMIT").await.unwrap();
    let mut member = accepting.await.unwrap();
    assert_eq!(member_row(&mut observer, &alice.id, &project).await, ("viewer".to_owned(), touched));

    // A role change in progress, then a touch: the touch waits for it, then moves the row the
    // role change kept in place.
    let touched = "2031-01-01T00:00:00".parse::<NaiveDateTime>().unwrap();
    member.execute("BEGIN").await.unwrap();
    member.execute(r#"UPDATE "ProjectCollaborator" SET "role" = 'ADMIN' WHERE "id" = 'race'"#).await.unwrap();
    let touching = tokio::spawn(async move {
        sqlx::query(&touch).bind(touched).execute(&mut toucher).await.unwrap();
    });
    until_blocked(&mut observer, toucher_pid, member_pid, "the touch").await;
    member.execute("COMMIT").await.unwrap();
    touching.await.unwrap();
    assert_eq!(member_row(&mut observer, &alice.id, &project).await, ("admin".to_owned(), touched));
    assert_derived(&mut observer, "after the races").await;
}

/// A `UserProject` entry whose project is not there (written by hand) is left out of its page,
/// and the list still goes on past it: every project is reached by following the cursors.
#[tokio::test]
async fn an_entry_with_no_project_does_not_end_the_list() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.project(&owner, "PRIVATE").await);
    }
    let mut conn = app.pool.acquire().await.unwrap();
    // Newest first: ids[4] .. ids[0], an hour apart; the entry with no project between the
    // second and the third, so that it opens the second page of two.
    for (n, id) in ids.iter().enumerate() {
        sqlx::query(
            r#"UPDATE "Project" SET "updatedAt" = TIMESTAMP '2026-01-01' + $1 * interval '1 hour' WHERE "id" = $2"#,
        )
        .bind(n as i32)
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    sqlx::query(
        r#"INSERT INTO "UserProject" ("userId", "projectId", "access", "updatedAt")
           VALUES ($1, 'gone', 'owner', TIMESTAMP '2026-01-01 02:30')"#,
    )
    .bind(&owner.id)
    .execute(&mut *conn)
    .await
    .unwrap();

    let mut listed = Vec::new();
    let mut uri = "/api/projects?limit=2".to_owned();
    for _ in 0..ids.len() + 1 {
        let page = app.call(Method::GET, &uri, Some(&owner.token), None).await.expect(StatusCode::OK);
        listed
            .extend(page.json["items"].as_array().unwrap().iter().map(|item| item["id"].as_str().unwrap().to_owned()));
        match page.json["nextCursor"].as_str() {
            Some(cursor) => uri = format!("/api/projects?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "every project, in order, past the entry with no project");
}
