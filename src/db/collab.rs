//! Collaboration: invites and their answers, and a project's members. One PENDING invite per
//! (project, invitee) is enforced by the partial unique index `CollaborationInvite_pending_key`;
//! accepting decides races with a conditional UPDATE inside the caller's transaction.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::access::Role;
use crate::domain::time::{end_of_time, start_of_time, start_position, Position};
use crate::domain::{InviteStatus, MemberRole, UtcTime};
use crate::telemetry::queries::timed;

/// The unique index that allows one PENDING invite per (project, invitee).
pub const PENDING_INVITE_KEY: &str = "CollaborationInvite_pending_key";

/// An invite with its project's name and its sender's public face (never an e-mail).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteRow {
    pub id: String,
    pub project_id: String,
    pub project_name: String,
    pub from_user_id: String,
    pub from_user_name: Option<String>,
    pub from_user_image: Option<String>,
    pub role: Role,
    pub status: InviteStatus,
    pub created_at: UtcTime,
}

/// A project member as anyone who may read the project sees them: never an e-mail.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct MemberRow {
    pub user_id: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub role: MemberRole,
    /// When the collaborator joined; for the owner, when the project was created.
    pub joined_at: UtcTime,
    /// The collaborator row's id, the tie-breaker of the member list's keyset; empty for the
    /// owner.
    pub key: String,
}

impl MemberRow {
    /// Where the member list continues after this member. The owner comes before every
    /// collaborator, whatever the times say.
    pub fn position(&self) -> Position {
        if self.role == MemberRole::Owner {
            (start_of_time(), String::new())
        } else {
            (self.joined_at.0, self.key.clone())
        }
    }
}

/// Creates a PENDING invite that expires `ttl_days` after now. A second PENDING invite for the
/// same (project, invitee) is a unique violation on [`PENDING_INVITE_KEY`], for the caller to
/// map.
pub async fn create_invite(
    db: impl PgExecutor<'_>,
    id: &str,
    project_id: &str,
    from_user_id: &str,
    to_user_id: &str,
    role: Role,
    ttl_days: i32,
) -> sqlx::Result<()> {
    timed("collab.create_invite", async move {
        sqlx::query!(
            r#"INSERT INTO "CollaborationInvite" ("id", "projectId", "fromUserId", "toUserId", "role", "expiresAt")
               VALUES ($1, $2, $3, $4, $5, (now() AT TIME ZONE 'UTC') + make_interval(days => $6))"#,
            id,
            project_id,
            from_user_id,
            to_user_id,
            role as Role,
            ttl_days
        )
        .execute(db)
        .await?;
        Ok(())
    })
    .await
}

/// Closes the invitee's PENDING invite to the project if it has expired, so a new one can be
/// sent (the partial unique index allows one PENDING invite per pair).
pub async fn expire_pending(db: impl PgExecutor<'_>, project_id: &str, to_user_id: &str) -> sqlx::Result<()> {
    timed("collab.expire_pending", async move {
        sqlx::query!(
            r#"UPDATE "CollaborationInvite" SET "status" = 'EXPIRED', "updatedAt" = now() AT TIME ZONE 'UTC'
               WHERE "projectId" = $1 AND "toUserId" = $2 AND "status" = 'PENDING'
                 AND "expiresAt" <= now() AT TIME ZONE 'UTC'"#,
            project_id,
            to_user_id
        )
        .execute(db)
        .await?;
        Ok(())
    })
    .await
}

/// A project's PENDING, unexpired invites, newest first: `$1` project, `$2`/`$3` the last
/// (createdAt, id) seen, `$4` limit. A project has few; `CollaborationInvite_projectId_idx`
/// finds them.
pub async fn pending_of_project(
    db: impl PgExecutor<'_>,
    project_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<InviteRow>> {
    timed("collab.pending_of_project", async move {
        let (created_at, id) = start_position(after, end_of_time());
        sqlx::query_as!(
            InviteRow,
            r#"SELECT i."id", i."projectId" AS "project_id", p."name" AS "project_name", i."fromUserId" AS "from_user_id",
                      u."name" AS "from_user_name", u."image" AS "from_user_image", i."role" AS "role: Role",
                      i."status" AS "status: InviteStatus", i."createdAt" AS "created_at: UtcTime"
               FROM "CollaborationInvite" i
               JOIN "Project" p ON p."id" = i."projectId" LEFT JOIN "UserFace" u ON u."id" = i."fromUserId"
               WHERE i."projectId" = $1 AND i."status" = 'PENDING' AND i."expiresAt" > now() AT TIME ZONE 'UTC'
                 AND (i."createdAt", i."id") < ($2, $3)
               ORDER BY i."createdAt" DESC, i."id" DESC LIMIT $4"#,
            project_id,
            created_at,
            id,
            limit
        )
        .fetch_all(db)
        .await
    })
    .await
}

/// How revoking an invite went.
pub enum Revoked {
    Revoked,
    NotPending,
    Unknown,
}

crate::telemetry::queries::one_row!(Revoked);

/// Revokes one of the project's PENDING invites.
pub async fn revoke(db: &mut PgConnection, project_id: &str, id: &str) -> sqlx::Result<Revoked> {
    timed("collab.revoke", async move {
        let status = sqlx::query_scalar!(
            r#"WITH revoked AS (
                   UPDATE "CollaborationInvite" SET "status" = 'REVOKED', "updatedAt" = now() AT TIME ZONE 'UTC'
                   WHERE "id" = $1 AND "projectId" = $2 AND "status" = 'PENDING' RETURNING "id"
               )
               SELECT CASE WHEN EXISTS (SELECT 1 FROM revoked) THEN 'revoked' ELSE 'not pending' END AS "outcome!"
               FROM "CollaborationInvite" WHERE "id" = $1 AND "projectId" = $2"#,
            id,
            project_id
        )
        .fetch_optional(&mut *db)
        .await?;
        Ok(match status.as_deref() {
            Some("revoked") => Revoked::Revoked,
            Some(_) => Revoked::NotPending,
            None => Revoked::Unknown,
        })
    })
    .await
}

pub async fn invite(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<Option<InviteRow>> {
    timed("collab.invite", async move {
        sqlx::query_as!(
            InviteRow,
            r#"SELECT i."id", i."projectId" AS "project_id", p."name" AS "project_name", i."fromUserId" AS "from_user_id",
                      u."name" AS "from_user_name", u."image" AS "from_user_image", i."role" AS "role: Role",
                      i."status" AS "status: InviteStatus", i."createdAt" AS "created_at: UtcTime"
               FROM "CollaborationInvite" i
               JOIN "Project" p ON p."id" = i."projectId" JOIN "User" u ON u."id" = i."fromUserId"
               WHERE i."id" = $1"#,
            id
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// The invitee's page of PENDING invites: `$1` user, `$2`/`$3` the last (createdAt, id)
/// seen, `$4` limit.
pub fn pending_sql() -> &'static str {
    include_str!("../../queries/collab_pending.sql")
}

/// One page of a user's PENDING invites, newest first, after `after` (exclusive).
pub async fn pending_for(
    db: impl PgExecutor<'_>,
    user_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<InviteRow>> {
    timed("collab.pending_for", async move {
        let (created_at, id) = start_position(after, end_of_time());
        sqlx::query_file_as!(InviteRow, "queries/collab_pending.sql", user_id, created_at, id, limit)
            .fetch_all(db)
            .await
    })
    .await
}

/// How answering an invite went.
pub enum Answer {
    /// Answered; the invite's project, role and sender.
    Answered { project_id: String, role: Role, from_user_id: String },
    /// The invite exists for this user but is no longer PENDING.
    NotPending,
    /// The invite is PENDING but past its expiry.
    Expired,
    /// No such invite for this user.
    Unknown,
}

crate::telemetry::queries::one_row!(Answer);

/// Moves one of `user_id`'s PENDING invites to `status`. The conditional UPDATE decides
/// races: of concurrent answers, exactly one finds the invite PENDING.
async fn close_invite(tx: &mut PgConnection, id: &str, user_id: &str, status: InviteStatus) -> sqlx::Result<Answer> {
    let answered = sqlx::query!(
        r#"UPDATE "CollaborationInvite" SET "status" = $3, "updatedAt" = now() AT TIME ZONE 'UTC'
           WHERE "id" = $1 AND "toUserId" = $2 AND "status" = 'PENDING' AND "expiresAt" > now() AT TIME ZONE 'UTC'
           RETURNING "projectId" AS "project_id", "role" AS "role: Role", "fromUserId" AS "from_user_id""#,
        id,
        user_id,
        status as InviteStatus
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = answered {
        return Ok(Answer::Answered { project_id: row.project_id, role: row.role, from_user_id: row.from_user_id });
    }
    let pending = sqlx::query_scalar!(
        r#"SELECT "status" = 'PENDING' AS "pending!" FROM "CollaborationInvite" WHERE "id" = $1 AND "toUserId" = $2"#,
        id,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match pending {
        Some(true) => Answer::Expired,
        Some(false) => Answer::NotPending,
        None => Answer::Unknown,
    })
}

/// Accepts the invite and makes its invitee a collaborator, inside the caller's transaction
/// so both happen or neither. A member who already has a role keeps the higher of the two.
pub async fn accept(tx: &mut PgConnection, id: &str, user_id: &str, row_id: &str) -> sqlx::Result<Answer> {
    timed("collab.accept", async move {
        let answer = close_invite(tx, id, user_id, InviteStatus::Accepted).await?;
        if let Answer::Answered { project_id, role, .. } = &answer {
            sqlx::query!(
                r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role")
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT ("projectId", "userId") DO UPDATE SET "role" =
                       CASE WHEN array_position(ARRAY['VIEWER', 'EDITOR', 'ADMIN'], EXCLUDED."role")
                               > array_position(ARRAY['VIEWER', 'EDITOR', 'ADMIN'], "ProjectCollaborator"."role")
                            THEN EXCLUDED."role" ELSE "ProjectCollaborator"."role" END"#,
                row_id,
                project_id,
                user_id,
                *role as Role
            )
            .execute(&mut *tx)
            .await?;
        }
        Ok(answer)
    })
    .await
}

pub async fn decline(tx: &mut PgConnection, id: &str, user_id: &str) -> sqlx::Result<Answer> {
    timed("collab.decline", async move { close_invite(tx, id, user_id, InviteStatus::Declined).await }).await
}

/// The collaborators of a page: `$1` project, `$2`/`$3` the last (joinedAt, row id) seen,
/// `$4` limit. A range over `ProjectCollaborator_projectId_userId_key`'s project prefix,
/// sorted: a project has few members. A legacy collaborator row of the owner is skipped, so
/// the owner is listed once, as OWNER.
const COLLABORATORS_SQL: &str = r#"
    SELECT c."userId", u."name", u."image", c."role", c."createdAt" AS "joinedAt", c."id" AS "key"
    FROM "ProjectCollaborator" c LEFT JOIN "UserFace" u ON u."id" = c."userId"
    WHERE c."projectId" = $1 AND (c."createdAt", c."id") > ($2, $3)
      AND c."userId" <> (SELECT "userId" FROM "Project" WHERE "id" = $1)
    ORDER BY c."createdAt", c."id" LIMIT $4"#;

/// One page of a project's members: the owner first (only on the first page), then the
/// collaborators in the order they joined.
pub async fn members(
    db: impl PgExecutor<'_>,
    project_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<MemberRow>> {
    timed("collab.members", async move {
        let (joined_at, key) = start_position(after, start_of_time());
        let sql = members_sql(after.is_none());
        sqlx::query_as(&sql).bind(project_id).bind(joined_at).bind(key).bind(limit).fetch_all(db).await
    })
    .await
}

/// The member page statement: the first page leads with the owner. Assembled: see
/// `db::assembled`.
pub fn members_sql(first_page: bool) -> String {
    if !first_page {
        return COLLABORATORS_SQL.to_owned();
    }
    format!(
        r#"SELECT * FROM (
               (SELECT p."userId", u."name", u."image", 'OWNER' AS "role",
                       p."createdAt" AS "joinedAt", '' AS "key", 0 AS "rank"
                FROM "Project" p LEFT JOIN "UserFace" u ON u."id" = p."userId" WHERE p."id" = $1)
               UNION ALL
               (SELECT *, 1 FROM ({COLLABORATORS_SQL}) c)
           ) m ORDER BY "rank", "joinedAt", "key""#
    )
}

/// Sets a collaborator's role; None when the user is not a collaborator of the project.
pub async fn set_role(
    db: impl PgExecutor<'_>,
    project_id: &str,
    user_id: &str,
    role: Role,
) -> sqlx::Result<Option<MemberRow>> {
    timed("collab.set_role", async move {
        sqlx::query_as!(
            MemberRow,
            r#"WITH c AS (
                   UPDATE "ProjectCollaborator" SET "role" = $3
                   WHERE "projectId" = $1 AND "userId" = $2 RETURNING *
               )
               SELECT c."userId" AS "user_id!", u."name", u."image", c."role" AS "role!: MemberRole",
                      c."createdAt" AS "joined_at!: UtcTime", c."id" AS "key!"
               FROM c LEFT JOIN "UserFace" u ON u."id" = c."userId""#,
            project_id,
            user_id,
            role as Role
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// Removes a collaborator; false when the user was not one.
pub async fn remove(db: impl PgExecutor<'_>, project_id: &str, user_id: &str) -> sqlx::Result<bool> {
    timed("collab.remove", async move {
        let result = sqlx::query!(
            r#"DELETE FROM "ProjectCollaborator" WHERE "projectId" = $1 AND "userId" = $2"#,
            project_id,
            user_id
        )
        .execute(db)
        .await?;
        Ok(result.rows_affected() > 0)
    })
    .await
}
