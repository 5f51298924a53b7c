//! `bench http --data seeded`: the load and the scenarios on what `vibing2 bench seed` wrote to
//! the server's database, as the seed report's scenarios read it (`bench::scenarios::fixtures`):
//! the project list of the user with the most projects, the usage summary of the user with
//! the most usage rows, and the project with the most messages, read at its 50th page of 50 (or
//! the deepest full page a small scale has).
//!
//! The seeded users have no password (their hash matches none). The bench chooses a random
//! password for this run, writes its argon2id hash to the chosen users' rows through
//! DATABASE_URL, as an operator with the database could, and logs in over HTTP like any
//! client: the service itself has no way in that a client lacks.

use anyhow::{ensure, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;

use super::{login, Client, DeepPage, PreparedUser};
use crate::auth::password;
use crate::bench::scenarios;
use crate::db::Pool;

/// The public projects the mix reads from, as many as the cache scenario's.
const READ_PROJECTS: i64 = 10_000;

/// The seeded message page read: 50 messages a page, the 50th page.
const PAGE: i64 = crate::domain::page::PageSize::MESSAGES.default as i64;
const DEEP_PAGE: i64 = 50;

/// The search term of the seed report's relevance scenario.
pub(super) const SEARCH: &str = "dashboard";

/// The signed-in seeded users and what the scenarios read.
pub(super) struct Seeded {
    /// The heaviest owner first, then the heaviest usage user and the heaviest project's
    /// owner, then the next owners by project count.
    pub users: Vec<PreparedUser>,
    pub readable: Vec<(String, String)>,
    /// Indexes into `users`.
    pub list_user: usize,
    pub usage_user: usize,
    pub project_owner: usize,
    pub project: String,
    /// The message page read: 1 is the newest.
    pub page: usize,
}

/// Picks `users` seeded users (at least the three the scenarios read as), sets their password
/// and logs them in.
pub(super) async fn prepare(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    users: usize,
) -> anyhow::Result<Seeded> {
    let pool = PgPoolOptions::new().max_connections(2).connect(database_url).await?;
    let fixtures = scenarios::fixtures(&Pool::new(pool.clone()))
        .await
        .context("finding the seeded fixtures: is DATABASE_URL's database seeded by `vibing2 bench seed`?")?;
    let project_owner: String = sqlx::query_scalar(r#"SELECT "userId" FROM "Project" WHERE "id" = $1"#)
        .bind(&fixtures.heavy_project)
        .fetch_one(&pool)
        .await?;
    let owners: Vec<String> =
        sqlx::query_scalar(r#"SELECT "userId" FROM "Project" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $1"#)
            .bind(users as i64)
            .fetch_all(&pool)
            .await?;
    let mut ids: Vec<String> = Vec::new();
    for id in [&fixtures.heavy_owner, &fixtures.heavy_usage_user, &project_owner] {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let fixed = ids.len();
    for id in owners {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.truncate(users.max(fixed));

    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        r#"SELECT u."id", u."email",
                  (SELECT p."id" FROM "Project" p WHERE p."userId" = u."id" ORDER BY p."id" LIMIT 1)
           FROM "User" u WHERE u."id" = ANY($1)"#,
    )
    .bind(&ids)
    .fetch_all(&pool)
    .await?;
    ensure!(rows.len() == ids.len(), "some seeded users are missing");
    let secret = format!("bench-{}", hex::encode(rand::random::<[u8; 12]>()));
    let hash = {
        let secret = secret.clone();
        tokio::task::spawn_blocking(move || password::hash_blocking(&secret)).await?
    };
    sqlx::query(r#"UPDATE "User" SET "password" = $1 WHERE "id" = ANY($2)"#)
        .bind(&hash)
        .bind(&ids)
        .execute(&pool)
        .await?;

    let mut prepared = Vec::new();
    for id in &ids {
        let (_, email, own) = rows.iter().find(|(row, _, _)| row == id).context("a seeded user is missing")?;
        let (token, user_id) = login(http, base, email, &secret).await?;
        // A user who owns no project (one who only records usage) gets one, for its writes.
        let project = match own {
            Some(project) => project.clone(),
            None => {
                let body = json!({"name": "Bench writes", "projectType": "website"});
                let created: Value = http
                    .post(format!("{base}/api/projects"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await?
                    .json()
                    .await?;
                created["id"].as_str().context("no project id")?.to_owned()
            }
        };
        prepared.push(PreparedUser { token, user_id, project, public_projects: Vec::new() });
    }

    let readable: Vec<(String, String)> = sqlx::query_as(
        r#"SELECT DISTINCT ON (f."projectId") f."projectId", f."path"
           FROM "ProjectFile" f JOIN "Project" p ON p."id" = f."projectId"
           WHERE p."visibility" = 'PUBLIC' ORDER BY f."projectId", f."path" LIMIT $1"#,
    )
    .bind(READ_PROJECTS)
    .fetch_all(&pool)
    .await?;
    let messages: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Message" WHERE "projectId" = $1"#)
        .bind(&fixtures.heavy_project)
        .fetch_one(&pool)
        .await?;
    let recent_usage: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM "TokenUsage"
           WHERE "userId" = $1 AND "timestamp" >= now() AT TIME ZONE 'UTC' - interval '30 days'"#,
    )
    .bind(&fixtures.heavy_usage_user)
    .fetch_one(&pool)
    .await?;
    if recent_usage == 0 {
        eprintln!(
            "the seeded usage of {} is older than 30 days: the usage summary reads none of it (seed with \
             `bench seed --anchor` today's date for it)",
            fixtures.heavy_usage_user
        );
    }
    pool.close().await;
    // As the seed report's message scenario: page 50, or the deepest full page.
    let depth = ((DEEP_PAGE - 1) * PAGE).min((messages - 1).max(0) / PAGE * PAGE);
    let index = |id: &str| ids.iter().position(|candidate| candidate == id).expect("a chosen user");
    Ok(Seeded {
        list_user: index(&fixtures.heavy_owner),
        usage_user: index(&fixtures.heavy_usage_user),
        project_owner: index(&project_owner),
        users: prepared,
        readable,
        project: fixtures.heavy_project,
        page: (depth / PAGE) as usize + 1,
    })
}

/// Walks `project`'s message pages over HTTP, 50 a page, to page `page`: the cursor the API
/// issued for it, and the position it holds (a cursor's body is its position in JSON; its tag
/// is the service's, and not checked here). None for the newest page.
pub(super) async fn deep_page(reader: &Client, project: &str, page: usize) -> anyhow::Result<Option<DeepPage>> {
    let mut cursor: Option<String> = None;
    for _ in 1..page {
        let mut url = format!("{}/api/projects/{project}/messages?limit={PAGE}", reader.base);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let answer = reader.http.get(url).bearer_auth(&reader.token).send().await?;
        ensure!(answer.status().is_success(), "reading a message page failed: {}", answer.status());
        let page: Value = answer.json().await?;
        cursor = Some(page["nextCursor"].as_str().context("a message page ended early")?.to_owned());
    }
    let Some(cursor) = cursor else { return Ok(None) };
    let body = cursor.split_once('.').context("a cursor with no tag")?.0;
    let position: i64 = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body)?)?;
    Ok(Some(DeepPage { page, cursor, position }))
}
