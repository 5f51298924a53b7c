//! The `Project` aggregate: CRUD, the member's project list, access facts, views.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgExecutor;

use crate::domain::access::{Access, ProjectFacts, Role};
use crate::domain::time::{end_of_time, start_position, Position};
use crate::domain::{UtcTime, Visibility};
use crate::telemetry::queries::timed;

/// A project with its owner's public face (never an e-mail).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub project_type: String,
    pub visibility: Visibility,
    pub active_agents: serde_json::Value,
    pub preview_url: Option<String>,
    pub like_count: i32,
    pub fork_count: i32,
    pub view_count: i32,
    pub is_featured: bool,
    pub owner_id: String,
    pub owner_name: Option<String>,
    pub owner_image: Option<String>,
    pub created_at: UtcTime,
    pub updated_at: UtcTime,
}

/// One entry of a member's project list: metadata, the member's access and exact counts,
/// never file contents or message bodies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectSummaryRow {
    /// Flattened, so the cached value keeps the one-level shape it had before the list read
    /// two statements: instances of either version read each other's entries.
    #[serde(flatten)]
    pub project: ListedProject,
    pub access: Access,
    /// As the member's page was read (the project's, mirrored in `UserProject`): the page's
    /// order and cursor.
    pub updated_at: UtcTime,
}

/// A listed project's own columns and its counts, read by id for a page of the list.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ListedProject {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub project_type: String,
    pub visibility: Visibility,
    pub preview_url: Option<String>,
    pub like_count: i32,
    pub fork_count: i32,
    pub view_count: i32,
    pub message_count: i64,
    pub file_count: i64,
    pub created_at: UtcTime,
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

/// Inserts the project; read it back with [`get`].
pub async fn create(db: impl PgExecutor<'_>, id: &str, owner_id: &str, new: &NewProject<'_>) -> sqlx::Result<()> {
    timed("projects.create", async move {
        sqlx::query!(
            r#"INSERT INTO "Project" ("id", "name", "description", "projectType", "visibility", "activeAgents", "userId")
               VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
            id,
            new.name,
            new.description,
            new.project_type,
            new.visibility as Visibility,
            Json(new.active_agents) as _,
            owner_id,
        )
        .execute(db)
        .await?;
        Ok(())
    })
    .await
}

/// A project with its owner's public face (`UserFace`, a reference table on Citus, so the
/// read stays on the project's shard): `$1` project.
pub const GET_SQL: &str = include_str!("../../queries/projects_get.sql");

pub async fn get(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<ProjectRow>> {
    timed("projects.get", async move {
        sqlx::query_file_as!(ProjectRow, "queries/projects_get.sql", id).fetch_optional(db).await
    })
    .await
}

/// What access depends on: `$1` project, `$2` the caller.
pub const FACTS_SQL: &str = include_str!("../../queries/projects_facts.sql");

/// What access depends on, from the database (`service::access::project_read` caches it).
pub async fn facts(db: impl PgExecutor<'_>, id: &str, caller: Option<&str>) -> sqlx::Result<Option<ProjectFacts>> {
    timed("projects.facts", async move {
        let row = sqlx::query_file!("queries/projects_facts.sql", id, caller).fetch_optional(db).await?;
        Ok(row.map(|row| ProjectFacts {
            owner_id: row.owner_id,
            is_public: row.is_public,
            caller_role: row.caller_role,
        }))
    })
    .await
}

/// Applies the patch; false when there is no such project.
pub async fn update(db: impl PgExecutor<'_>, id: &str, patch: &ProjectPatch) -> sqlx::Result<bool> {
    timed("projects.update", async move {
        let result = sqlx::query!(
            r#"UPDATE "Project" SET
                   "name" = COALESCE($2, "name"),
                   "description" = CASE WHEN $3 THEN $4 ELSE "description" END,
                   "projectType" = COALESCE($5, "projectType"),
                   "activeAgents" = COALESCE($6, "activeAgents"),
                   "visibility" = COALESCE($7, "visibility"),
                   "previewUrl" = CASE WHEN $8 THEN $9 ELSE "previewUrl" END,
                   "updatedAt" = now() AT TIME ZONE 'UTC'
               WHERE "id" = $1"#,
            id,
            patch.name.as_deref(),
            patch.description.is_some(),
            patch.description.clone().flatten(),
            patch.project_type.as_deref(),
            patch.active_agents.as_ref().map(Json) as _,
            patch.visibility as Option<Visibility>,
            patch.preview_url.is_some(),
            patch.preview_url.clone().flatten(),
        )
        .execute(db)
        .await?;
        Ok(result.rows_affected() > 0)
    })
    .await
}

/// Deletes the project; files, messages, members, invites and likes go with it. Returns who
/// had it in their project lists.
pub async fn delete(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<Vec<String>>> {
    timed("projects.delete", async move {
        sqlx::query_scalar!(
            r#"WITH members AS (
                   SELECT "userId" FROM "ProjectCollaborator" WHERE "projectId" = $1
               ), deleted AS (
                   DELETE FROM "Project" WHERE "id" = $1 RETURNING "userId"
               )
               SELECT array_cat(ARRAY(SELECT "userId" FROM deleted), ARRAY(SELECT "userId" FROM members)) AS "members!"
               FROM deleted"#,
            id
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// Copies a project into a new PRIVATE project of `owner_id`: metadata and every file, not
/// messages, and counts the fork on the source. One statement, so all of it or nothing.
/// Returns the source's members (whose lists show its fork count), or None without a source.
pub async fn fork(
    db: impl PgExecutor<'_>,
    source_id: &str,
    new_id: &str,
    owner_id: &str,
    name: Option<&str>,
) -> sqlx::Result<Option<Vec<String>>> {
    timed("projects.fork", async move {
        sqlx::query_scalar!(
            r#"WITH p AS (
                   INSERT INTO "Project" ("id", "name", "description", "projectType", "activeAgents", "visibility", "userId")
                   SELECT $2, COALESCE($4, left("name", 193) || ' (fork)'), "description", "projectType",
                          "activeAgents", 'PRIVATE', $3
                   FROM "Project" WHERE "id" = $1
                   RETURNING "id"
               ), copied AS (
                   INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "size", "checksum")
                   SELECT gen_random_uuid()::text, p."id", f."path", f."content", f."language", f."size", f."checksum"
                   FROM "ProjectFile" f, p WHERE f."projectId" = $1
               ), counted AS (
                   UPDATE "Project" SET "forkCount" = "forkCount" + 1
                   WHERE "id" = $1 AND EXISTS (SELECT 1 FROM p)
                   RETURNING "userId"
               )
               SELECT array_cat(ARRAY(SELECT "userId" FROM counted),
                                ARRAY(SELECT "userId" FROM "ProjectCollaborator" WHERE "projectId" = $1)) AS "members!"
               FROM counted"#,
            source_id,
            new_id,
            owner_id,
            name
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// Locks the project's row against writes of its files (a batch updates it first) until the
/// transaction ends; None if it does not exist.
pub async fn lock_for_copy(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<()>> {
    timed("projects.lock_for_copy", async move {
        let locked =
            sqlx::query_scalar!(r#"SELECT 1 AS "locked!" FROM "Project" WHERE "id" = $1 FOR NO KEY UPDATE"#, id)
                .fetch_optional(db)
                .await?;
        Ok(locked.map(|_| ()))
    })
    .await
}

/// The owner and every collaborator: whose project lists show this project.
pub async fn member_ids(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Vec<String>> {
    timed("projects.member_ids", async move {
        sqlx::query_scalar!(
            r#"SELECT "userId" AS "user_id!" FROM "Project" WHERE "id" = $1
               UNION SELECT "userId" FROM "ProjectCollaborator" WHERE "projectId" = $1"#,
            id
        )
        .fetch_all(db)
        .await
    })
    .await
}

/// Marks the project as changed now (files or messages were written).
pub async fn touch(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<()> {
    timed("projects.touch", async move {
        sqlx::query!(r#"UPDATE "Project" SET "updatedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = $1"#, id)
            .execute(db)
            .await?;
        Ok(())
    })
    .await
}

/// The stored view count, without the views counted in memory and not yet written.
pub async fn view_count(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<i32>> {
    timed("projects.view_count", async move {
        sqlx::query_scalar!(r#"SELECT "viewCount" FROM "Project" WHERE "id" = $1"#, id).fetch_optional(db).await
    })
    .await
}

/// Adds counted views to many projects in one statement; returns each changed project with
/// its members (whose lists show the count). Projects deleted meanwhile are skipped.
pub async fn add_views(
    db: impl PgExecutor<'_>,
    ids: &[String],
    views: &[i32],
) -> sqlx::Result<Vec<(String, Vec<String>)>> {
    timed("projects.add_views", async move {
        let rows = sqlx::query!(
            r#"WITH counted AS (
                   UPDATE "Project" p SET "viewCount" = p."viewCount" + v.views
                   FROM UNNEST($1::text[], $2::int4[]) AS v(id, views)
                   WHERE p."id" = v.id
                   RETURNING p."id", p."userId"
               )
               SELECT counted."id" AS "id!",
                      array_prepend(counted."userId",
                                    ARRAY(SELECT c."userId" FROM "ProjectCollaborator" c
                                          WHERE c."projectId" = counted."id")) AS "members!"
               FROM counted"#,
            ids,
            views
        )
        .fetch_all(db)
        .await?;
        Ok(rows.into_iter().map(|row| (row.id, row.members)).collect())
    })
    .await
}

/// One page of the member's project list: `$1` user, `$2`/`$3` the last (updatedAt, id) seen,
/// `$4` limit; the project ids with the member's access, from `UserProject`.
pub const LIST_FOR_MEMBER_SQL: &str = include_str!("../../queries/projects_list_for_member.sql");

/// The projects of a list page, with their counts: `$1` their ids.
pub const SUMMARIES_SQL: &str = include_str!("../../queries/projects_summaries.sql");

/// One row of a member's page, as `UserProject` holds it.
#[derive(Debug, sqlx::FromRow)]
struct MemberRow {
    project_id: String,
    access: Access,
    updated_at: UtcTime,
}

/// One entry of a member's page: its place in the list and the member's access, as
/// `UserProject` holds them, and its project, or none when there is no such project.
#[derive(Debug)]
pub struct MemberEntry {
    pub project_id: String,
    pub access: Access,
    pub updated_at: UtcTime,
    pub project: Option<ListedProject>,
}

impl MemberEntry {
    /// Where the entry stands in the list (a page's cursor), whether its project is there or not.
    pub fn position(&self) -> Position {
        (self.updated_at.0, self.project_id.clone())
    }

    /// What the list shows of the entry: nothing when its project is not there.
    pub fn into_summary(self) -> Option<ProjectSummaryRow> {
        let project = self.project?;
        Some(ProjectSummaryRow { project, access: self.access, updated_at: self.updated_at })
    }
}

/// How many times a page is read again when one of its projects went away between the two
/// statements (a delete in between), so that a page is never short of rows it could hold.
const LIST_ATTEMPTS: usize = 3;

/// The projects a user owns or collaborates on, most recently updated first, one keyset page
/// of `limit` entries: the page from `UserProject` by the user's id, then its projects and
/// their counts by their ids, in the page's order. Each entry shows the `updatedAt` its page
/// position was read at.
///
/// Every entry of the `UserProject` page is returned, so that the caller takes has-more and
/// the cursor from them ([`MemberEntry::position`]): an entry whose project is still missing
/// after the last attempt (a `UserProject` row with no project) has no project, is logged, and
/// leaves the page short without ending the list.
pub async fn list_for_member(
    db: impl PgExecutor<'_> + Copy,
    user_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<MemberEntry>> {
    let mut attempt = 1;
    loop {
        let page = member_page(db, user_id, after, limit).await?;
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = page.iter().map(|row| row.project_id.clone()).collect();
        let mut projects: std::collections::HashMap<String, ListedProject> =
            summaries(db, &ids).await?.into_iter().map(|project| (project.id.clone(), project)).collect();
        if projects.len() == page.len() || attempt == LIST_ATTEMPTS {
            return Ok(page
                .into_iter()
                .map(|row| {
                    let project = projects.remove(&row.project_id);
                    if project.is_none() {
                        tracing::warn!(
                            user_id,
                            project_id = %row.project_id,
                            "a UserProject entry has no project; left out of the page"
                        );
                    }
                    MemberEntry { project_id: row.project_id, access: row.access, updated_at: row.updated_at, project }
                })
                .collect());
        }
        attempt += 1;
    }
}

/// One page of the member's entries, by `"userId"` alone (see `queries/projects_list_for_member.sql`).
async fn member_page(
    db: impl PgExecutor<'_>,
    user_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<MemberRow>> {
    timed("projects.list_for_member", async move {
        let (updated_at, id) = start_position(after, end_of_time());
        sqlx::query_as(LIST_FOR_MEMBER_SQL).bind(user_id).bind(updated_at).bind(id).bind(limit).fetch_all(db).await
    })
    .await
}

/// The listed projects with their counts, by their ids (see `queries/projects_summaries.sql`).
async fn summaries(db: impl PgExecutor<'_>, ids: &[String]) -> sqlx::Result<Vec<ListedProject>> {
    timed("projects.summaries", async move { sqlx::query_as(SUMMARIES_SQL).bind(ids).fetch_all(db).await }).await
}

/// Switches `UserProject`'s triggers on `Project` and `ProjectCollaborator` off or on, for a
/// bulk load that builds the table afterwards ([`rebuild_memberships`]) instead.
pub async fn set_membership_triggers(conn: &mut sqlx::PgConnection, enabled: bool) -> sqlx::Result<()> {
    let switch = if enabled { "ENABLE" } else { "DISABLE" };
    let triggers: Vec<(String, String)> = sqlx::query_as(
        r#"SELECT tgrelid::regclass::text, quote_ident(tgname) FROM pg_trigger
           WHERE NOT tgisinternal AND tgname LIKE '\_vibing2\_user\_projects\_%'
             AND tgrelid IN ('"Project"'::regclass, '"ProjectCollaborator"'::regclass)"#,
    )
    .fetch_all(&mut *conn)
    .await?;
    for (table, trigger) in triggers {
        // Names from the catalog, quoted by regclass and quote_ident.
        sqlx::raw_sql(&format!("ALTER TABLE {table} {switch} TRIGGER {trigger}")).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Builds `UserProject` again from `Project` and `ProjectCollaborator`, for the bulk loads that
/// bypass its triggers (`bench seed`) or race them (the import's two writers); returns its rows.
pub async fn rebuild_memberships(conn: &mut sqlx::PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar(r#"SELECT "_vibing2_user_projects_rebuild"()"#).fetch_one(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_list_entry_is_one_flat_map_as_before() {
        let at = UtcTime(chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap().and_hms_opt(3, 4, 5).unwrap());
        let project = ListedProject {
            id: "p1".into(),
            name: "A project".into(),
            description: None,
            project_type: "website".into(),
            visibility: Visibility::Private,
            preview_url: None,
            like_count: 1,
            fork_count: 2,
            view_count: 3,
            message_count: 4,
            file_count: 5,
            created_at: at,
        };
        let row = ProjectSummaryRow { project, access: Access::Editor, updated_at: at };
        // The cache's codec: MessagePack with field names.
        let bytes = rmp_serde::to_vec_named(&row).unwrap();
        let map: std::collections::BTreeMap<String, serde_json::Value> = rmp_serde::from_slice(&bytes).unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "access",
                "created_at",
                "description",
                "file_count",
                "fork_count",
                "id",
                "like_count",
                "message_count",
                "name",
                "preview_url",
                "project_type",
                "updated_at",
                "view_count",
                "visibility"
            ]
        );
        let back: ProjectSummaryRow = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((back.project.id.as_str(), back.access, back.updated_at), ("p1", Access::Editor, at));
    }
}
