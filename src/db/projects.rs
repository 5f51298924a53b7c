//! The `Project` aggregate: CRUD, the member's project list, access facts, views.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgExecutor;
use utoipa::ToSchema;

use crate::auth::access::{Access, ProjectFacts, Role};
use crate::db::timestamp::{end_of_time, start_position};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "text", rename_all = "UPPERCASE")]
pub enum Visibility {
    Private,
    Public,
}

/// A project's creator as anyone may see them: never an e-mail.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Creator {
    #[sqlx(rename = "ownerId")]
    pub id: String,
    #[sqlx(rename = "ownerName")]
    pub name: Option<String>,
    #[sqlx(rename = "ownerImage")]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub project_type: String,
    pub visibility: Visibility,
    #[schema(value_type = Vec<String>)]
    pub active_agents: Json<serde_json::Value>,
    pub preview_url: Option<String>,
    pub like_count: i32,
    pub fork_count: i32,
    pub view_count: i32,
    pub is_featured: bool,
    #[sqlx(flatten)]
    pub owner: Creator,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

/// One entry of the caller's project list: metadata, the caller's access and exact counts,
/// never file contents or message bodies.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub project_type: String,
    pub visibility: Visibility,
    pub preview_url: Option<String>,
    pub like_count: i32,
    pub fork_count: i32,
    pub view_count: i32,
    pub access: Access,
    pub message_count: i64,
    pub file_count: i64,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

pub struct NewProject<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub project_type: &'a str,
    pub visibility: Visibility,
    pub active_agents: &'a [String],
}

/// A partial update; `Some(None)` clears a nullable field.
#[derive(Debug, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub project_type: Option<String>,
    pub active_agents: Option<Vec<String>>,
    pub visibility: Option<Visibility>,
    pub preview_url: Option<Option<String>>,
}

/// The keyset position of a project list page: the last entry's (updatedAt, id).
pub type ListPosition = (NaiveDateTime, String);

/// Project columns joined with the owner, selected from a relation aliased `p`.
const PROJECT_SELECT: &str = r#"
    p."id", p."name", p."description", p."projectType", p."visibility", p."activeAgents",
    p."previewUrl", p."likeCount", p."forkCount", p."viewCount", p."isFeatured",
    p."createdAt", p."updatedAt", u."id" AS "ownerId", u."name" AS "ownerName", u."image" AS "ownerImage""#;

pub async fn create(db: impl PgExecutor<'_>, id: &str, owner_id: &str, new: &NewProject<'_>) -> sqlx::Result<Project> {
    sqlx::query_as(&format!(
        r#"WITH p AS (
               INSERT INTO "Project" ("id", "name", "description", "projectType", "visibility", "activeAgents", "userId")
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
           )
           SELECT {PROJECT_SELECT} FROM p JOIN "User" u ON u."id" = p."userId""#
    ))
    .bind(id)
    .bind(new.name)
    .bind(new.description)
    .bind(new.project_type)
    .bind(new.visibility)
    .bind(Json(new.active_agents))
    .bind(owner_id)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Project>> {
    sqlx::query_as(&format!(
        r#"SELECT {PROJECT_SELECT} FROM "Project" p JOIN "User" u ON u."id" = p."userId" WHERE p."id" = $1"#
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What access depends on, read fresh for every request (never cached).
pub async fn facts(db: impl PgExecutor<'_>, id: &str, caller: Option<&str>) -> sqlx::Result<Option<ProjectFacts>> {
    let row: Option<(String, String, bool, Option<Role>)> = sqlx::query_as(
        r#"SELECT p."userId", u."plan", p."visibility" = 'PUBLIC', c."role"
           FROM "Project" p
           JOIN "User" u ON u."id" = p."userId"
           LEFT JOIN "ProjectCollaborator" c ON c."projectId" = p."id" AND c."userId" = $2
           WHERE p."id" = $1"#,
    )
    .bind(id)
    .bind(caller)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(owner_id, owner_plan, is_public, caller_role)| ProjectFacts {
        owner_id,
        owner_plan,
        is_public,
        caller_role,
    }))
}

pub async fn update(db: impl PgExecutor<'_>, id: &str, patch: &ProjectPatch) -> sqlx::Result<Option<Project>> {
    sqlx::query_as(&format!(
        r#"WITH p AS (
               UPDATE "Project" SET
                   "name" = COALESCE($2, "name"),
                   "description" = CASE WHEN $3 THEN $4 ELSE "description" END,
                   "projectType" = COALESCE($5, "projectType"),
                   "activeAgents" = COALESCE($6, "activeAgents"),
                   "visibility" = COALESCE($7, "visibility"),
                   "previewUrl" = CASE WHEN $8 THEN $9 ELSE "previewUrl" END,
                   "updatedAt" = now() AT TIME ZONE 'UTC'
               WHERE "id" = $1 RETURNING *
           )
           SELECT {PROJECT_SELECT} FROM p JOIN "User" u ON u."id" = p."userId""#
    ))
    .bind(id)
    .bind(patch.name.as_deref())
    .bind(patch.description.is_some())
    .bind(patch.description.clone().flatten())
    .bind(patch.project_type.as_deref())
    .bind(patch.active_agents.as_ref().map(Json))
    .bind(patch.visibility)
    .bind(patch.preview_url.is_some())
    .bind(patch.preview_url.clone().flatten())
    .fetch_optional(db)
    .await
}

/// Deletes the project; files, messages, members, invites and likes go with it.
pub async fn delete(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    let result = sqlx::query(r#"DELETE FROM "Project" WHERE "id" = $1"#).bind(id).execute(db).await?;
    Ok(result.rows_affected() > 0)
}

/// Copies a project into a new PRIVATE project of `owner_id`: metadata and every file, not
/// messages, and counts the fork on the source. One statement, so all of it or nothing.
pub async fn fork(
    db: impl PgExecutor<'_>,
    source_id: &str,
    new_id: &str,
    owner_id: &str,
    name: Option<&str>,
) -> sqlx::Result<Option<Project>> {
    sqlx::query_as(&format!(
        r#"WITH p AS (
               INSERT INTO "Project" ("id", "name", "description", "projectType", "activeAgents", "visibility", "userId")
               SELECT $2, COALESCE($4, left("name", 193) || ' (fork)'), "description", "projectType",
                      "activeAgents", 'PRIVATE', $3
               FROM "Project" WHERE "id" = $1
               RETURNING *
           ), copied AS (
               INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "size", "checksum")
               SELECT gen_random_uuid()::text, p."id", f."path", f."content", f."language", f."size", f."checksum"
               FROM "ProjectFile" f, p WHERE f."projectId" = $1
           ), counted AS (
               UPDATE "Project" SET "forkCount" = "forkCount" + 1
               WHERE "id" = $1 AND EXISTS (SELECT 1 FROM p)
           )
           SELECT {PROJECT_SELECT} FROM p JOIN "User" u ON u."id" = p."userId""#
    ))
    .bind(source_id)
    .bind(new_id)
    .bind(owner_id)
    .bind(name)
    .fetch_optional(db)
    .await
}

/// The owner and every collaborator: whose project lists show this project.
pub async fn member_ids(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"SELECT "userId" FROM "Project" WHERE "id" = $1
           UNION SELECT "userId" FROM "ProjectCollaborator" WHERE "projectId" = $1"#,
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Marks the project as changed now (files or messages were written).
pub async fn touch(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<()> {
    sqlx::query(r#"UPDATE "Project" SET "updatedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = $1"#)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Counts one view atomically and returns the new count.
pub async fn record_view(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(r#"UPDATE "Project" SET "viewCount" = "viewCount" + 1 WHERE "id" = $1 RETURNING "viewCount""#)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The member's project list: `$1` user, `$2`/`$3` the last (updatedAt, id) seen, `$4` limit.
pub const LIST_FOR_MEMBER_SQL: &str = r#"WITH candidates AS (
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
           SELECT page."id", page."name", page."description", page."projectType", page."visibility",
                  page."previewUrl", page."likeCount", page."forkCount", page."viewCount", page."access",
                  (SELECT count(*) FROM "Message" m WHERE m."projectId" = page."id") AS "messageCount",
                  (SELECT count(*) FROM "ProjectFile" f WHERE f."projectId" = page."id") AS "fileCount",
                  page."createdAt", page."updatedAt"
           FROM page ORDER BY page."updatedAt" DESC, page."id" DESC"#;

/// The projects a user owns or collaborates on, most recently updated first, one keyset page
/// in a single statement: each side is an ordered index scan cut at `limit`, the two are
/// merged, and the counts are taken only for the rows of the page.
pub async fn list_for_member(
    db: impl PgExecutor<'_>,
    user_id: &str,
    after: Option<&ListPosition>,
    limit: i64,
) -> sqlx::Result<Vec<ProjectSummary>> {
    let (updated_at, id) = start_position(after, end_of_time());
    sqlx::query_as(LIST_FOR_MEMBER_SQL).bind(user_id).bind(updated_at).bind(id).bind(limit).fetch_all(db).await
}
