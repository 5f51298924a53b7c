//! Competitions: a PUBLIC project is entered at most once (`Competition_projectId_key`),
//! competitions are listed newest first by status, and move from ACTIVE to CLOSED.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use crate::db::CREATOR_COLUMNS;
use crate::domain::time::{end_of_time, start_position, Position};
use crate::domain::{CompetitionStatus, UtcTime};
use crate::telemetry::queries::timed;

/// The unique index that allows one competition per project.
pub const PROJECT_KEY: &str = "Competition_projectId_key";

/// A competition with its project's name and creator (never an e-mail).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct CompetitionRow {
    pub id: String,
    pub project_id: String,
    pub title: String,
    pub status: CompetitionStatus,
    pub created_at: UtcTime,
    pub updated_at: UtcTime,
    pub project_name: String,
    pub owner_id: String,
    pub owner_name: Option<String>,
    pub owner_image: Option<String>,
}

/// The competition columns from a competition relation `c`, joined with its project and the
/// project's creator, for the assembled page statement.
fn competition_select() -> String {
    format!(
        r#"c."id", c."projectId", c."title", c."status", c."createdAt", c."updatedAt", p."name" AS "projectName",
           {CREATOR_COLUMNS}
           FROM c JOIN "Project" p ON p."id" = c."projectId" JOIN "User" u ON u."id" = p."userId""#
    )
}

/// Enters a project, if it is PUBLIC (false otherwise: the check and the insert are one
/// statement, so a project made private meanwhile is not entered). A second entry of the same
/// project is a unique violation on [`PROJECT_KEY`], for the caller to map.
pub async fn create(db: impl PgExecutor<'_>, id: &str, project_id: &str, title: &str) -> sqlx::Result<bool> {
    timed("competitions.create", async move {
        let result = sqlx::query!(
            r#"INSERT INTO "Competition" ("id", "projectId", "title")
               SELECT $1, p."id", $3 FROM "Project" p WHERE p."id" = $2 AND p."visibility" = 'PUBLIC'"#,
            id,
            project_id,
            title
        )
        .execute(db)
        .await?;
        Ok(result.rows_affected() > 0)
    })
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<CompetitionRow>> {
    timed("competitions.get", async move {
        sqlx::query_as!(
            CompetitionRow,
            r#"SELECT c."id", c."projectId" AS "project_id", c."title", c."status" AS "status: CompetitionStatus",
                      c."createdAt" AS "created_at: UtcTime", c."updatedAt" AS "updated_at: UtcTime",
                      p."name" AS "project_name", u."id" AS "owner_id", u."name" AS "owner_name",
                      u."image" AS "owner_image"
               FROM "Competition" c JOIN "Project" p ON p."id" = c."projectId" JOIN "User" u ON u."id" = p."userId"
               WHERE c."id" = $1"#,
            id
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// The project a competition belongs to.
pub async fn project_of(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<String>> {
    timed("competitions.project_of", async move {
        sqlx::query_scalar!(r#"SELECT "projectId" FROM "Competition" WHERE "id" = $1"#, id).fetch_optional(db).await
    })
    .await
}

/// ACTIVE → CLOSED; false when the competition is not ACTIVE (any more).
pub async fn close(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    timed("competitions.close", async move {
        let result = sqlx::query!(
            r#"UPDATE "Competition" SET "status" = 'CLOSED', "updatedAt" = now() AT TIME ZONE 'UTC'
               WHERE "id" = $1 AND "status" = 'ACTIVE'"#,
            id
        )
        .execute(db)
        .await?;
        Ok(result.rows_affected() > 0)
    })
    .await
}

/// One status's newest-first keyset scan of `Competition_status_createdAt_idx`, keeping only
/// PUBLIC projects: `$1`/`$2` the last (createdAt, id) seen, `$3` limit.
fn status_scan(status: &str) -> String {
    format!(
        r#"SELECT c.* FROM "Competition" c JOIN "Project" p ON p."id" = c."projectId"
           WHERE c."status" = {status} AND p."visibility" = 'PUBLIC'
             AND (c."createdAt", c."id") < ($1, $2)
           ORDER BY c."createdAt" DESC, c."id" DESC LIMIT $3"#
    )
}

/// The statement of one page; with a status filter, `$4` is the status. Each variant is its
/// own static statement: filtered, one ordered index range; unfiltered, one per status, each
/// cut at the limit and merged, since the index leads with the status.
pub fn page_sql(filtered: bool) -> String {
    let scans = if filtered {
        status_scan("$4")
    } else {
        format!("({}) UNION ALL ({})", status_scan("'ACTIVE'"), status_scan("'CLOSED'"))
    };
    format!(
        r#"WITH c AS ({scans})
           SELECT {select}
           ORDER BY c."createdAt" DESC, c."id" DESC LIMIT $3"#,
        select = competition_select()
    )
}

/// One page of competitions of PUBLIC projects, newest first, after `after` (exclusive).
pub async fn page(
    db: impl PgExecutor<'_>,
    status: Option<CompetitionStatus>,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<CompetitionRow>> {
    timed("competitions.page", async move {
        let (created_at, id) = start_position(after, end_of_time());
        let sql = page_sql(status.is_some());
        let query = sqlx::query_as(&sql).bind(created_at).bind(id).bind(limit);
        match status {
            Some(status) => query.bind(status).fetch_all(db).await,
            None => query.fetch_all(db).await,
        }
    })
    .await
}
