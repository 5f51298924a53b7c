//! Collaboration: invites and their answers, and a project's members. One PENDING invite per
//! (project, invitee) is enforced by the partial unique index `CollaborationInvite_pending_key`;
//! accepting decides races with a conditional UPDATE inside the caller's transaction.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;

use crate::auth::access::Role;

/// The unique index that allows one PENDING invite per (project, invitee).
pub const PENDING_INVITE_KEY: &str = "CollaborationInvite_pending_key";

pub use crate::db::timestamp::{end_of_time, start_of_time, start_position, Position};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "text", rename_all = "UPPERCASE")]
pub enum InviteStatus {
    Pending,
    Accepted,
    Declined,
}

/// Who sent an invite, as anyone may see them: never an e-mail.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Inviter {
    #[sqlx(rename = "fromUserId")]
    pub id: String,
    #[sqlx(rename = "fromUserName")]
    pub name: Option<String>,
    #[sqlx(rename = "fromUserImage")]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Invite {
    pub id: String,
    pub project_id: String,
    pub project_name: String,
    #[sqlx(flatten)]
    pub from_user: Inviter,
    pub role: Role,
    pub status: InviteStatus,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
}

/// A member's standing in a project: the owner, or a collaborator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "text", rename_all = "UPPERCASE")]
pub enum MemberRole {
    Owner,
    Admin,
    Editor,
    Viewer,
}

/// A project member as anyone who may read the project sees them: never an e-mail.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub role: MemberRole,
    /// When the collaborator joined; for the owner, when the project was created.
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: NaiveDateTime,
    /// The collaborator row's id, the tie-breaker of the member list's keyset; empty for the
    /// owner.
    #[serde(skip)]
    pub key: String,
}

impl Member {
    /// Where the member list continues after this member. The owner comes before every
    /// collaborator, whatever the times say.
    pub fn position(&self) -> Position {
        if self.role == MemberRole::Owner {
            (start_of_time(), String::new())
        } else {
            (self.joined_at, self.key.clone())
        }
    }
}

/// The invite columns, from an invite relation aliased `i`, joined with its project `p` and
/// its sender `u`.
const INVITE_SELECT: &str = r#"
    i."id", i."projectId", p."name" AS "projectName", u."id" AS "fromUserId",
    u."name" AS "fromUserName", u."image" AS "fromUserImage", i."role", i."status", i."createdAt"
    FROM i JOIN "Project" p ON p."id" = i."projectId" JOIN "User" u ON u."id" = i."fromUserId""#;

/// A user's id by (lower-case) e-mail, served by `User_email_key`.
pub async fn user_id_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(r#"SELECT "id" FROM "User" WHERE "email" = $1"#).bind(email).fetch_optional(db).await
}

pub async fn user_exists(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(r#"SELECT EXISTS (SELECT 1 FROM "User" WHERE "id" = $1)"#).bind(id).fetch_one(db).await
}

/// Creates a PENDING invite. A second PENDING invite for the same (project, invitee) is a
/// unique violation on [`PENDING_INVITE_KEY`], for the caller to map.
pub async fn create_invite(
    db: impl PgExecutor<'_>,
    id: &str,
    project_id: &str,
    from_user_id: &str,
    to_user_id: &str,
    role: Role,
) -> sqlx::Result<Invite> {
    sqlx::query_as(&format!(
        r#"WITH i AS (
               INSERT INTO "CollaborationInvite" ("id", "projectId", "fromUserId", "toUserId", "role")
               VALUES ($1, $2, $3, $4, $5) RETURNING *
           )
           SELECT {INVITE_SELECT}"#
    ))
    .bind(id)
    .bind(project_id)
    .bind(from_user_id)
    .bind(to_user_id)
    .bind(role)
    .fetch_one(db)
    .await
}

/// The invitee's page of PENDING invites: `$1` user, `$2`/`$3` the last (createdAt, id)
/// seen, `$4` limit. A range scan of `CollaborationInvite_toUserId_status_createdAt_idx`; the
/// sender and project are joined for the page's rows only.
pub fn pending_sql() -> String {
    format!(
        r#"WITH i AS (
               SELECT * FROM "CollaborationInvite"
               WHERE "toUserId" = $1 AND "status" = 'PENDING' AND ("createdAt", "id") < ($2, $3)
               ORDER BY "createdAt" DESC, "id" DESC LIMIT $4
           )
           SELECT {INVITE_SELECT} ORDER BY i."createdAt" DESC, i."id" DESC"#
    )
}

/// One page of a user's PENDING invites, newest first, after `after` (exclusive).
pub async fn pending_for(
    db: impl PgExecutor<'_>,
    user_id: &str,
    after: Option<&Position>,
    limit: i64,
) -> sqlx::Result<Vec<Invite>> {
    let (created_at, id) = start_position(after, end_of_time());
    sqlx::query_as(&pending_sql()).bind(user_id).bind(created_at).bind(id).bind(limit).fetch_all(db).await
}

/// How answering an invite went.
pub enum Answer {
    Answered(Invite),
    /// The invite exists for this user but is no longer PENDING.
    NotPending,
    /// No such invite for this user.
    Unknown,
}

/// Moves one of `user_id`'s PENDING invites to `status`. The conditional UPDATE decides
/// races: of concurrent answers, exactly one finds the invite PENDING. Returns the invite's
/// new state.
async fn close_invite(tx: &mut PgConnection, id: &str, user_id: &str, status: InviteStatus) -> sqlx::Result<Answer> {
    let answered: Option<Invite> = sqlx::query_as(&format!(
        r#"WITH i AS (
               UPDATE "CollaborationInvite" SET "status" = $3, "updatedAt" = now() AT TIME ZONE 'UTC'
               WHERE "id" = $1 AND "toUserId" = $2 AND "status" = 'PENDING' RETURNING *
           )
           SELECT {INVITE_SELECT}"#
    ))
    .bind(id)
    .bind(user_id)
    .bind(status)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(invite) = answered {
        return Ok(Answer::Answered(invite));
    }
    let exists: bool = sqlx::query_scalar(
        r#"SELECT EXISTS (SELECT 1 FROM "CollaborationInvite" WHERE "id" = $1 AND "toUserId" = $2)"#,
    )
    .bind(id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(if exists { Answer::NotPending } else { Answer::Unknown })
}

/// Accepts the invite and makes its invitee a collaborator, inside the caller's transaction
/// so both happen or neither. A member who already has a role keeps the higher of the two.
pub async fn accept(tx: &mut PgConnection, id: &str, user_id: &str, row_id: &str) -> sqlx::Result<Answer> {
    let answer = close_invite(tx, id, user_id, InviteStatus::Accepted).await?;
    if let Answer::Answered(invite) = &answer {
        sqlx::query(
            r#"INSERT INTO "ProjectCollaborator" ("id", "projectId", "userId", "role")
               VALUES ($1, $2, $3, $4)
               ON CONFLICT ("projectId", "userId") DO UPDATE SET "role" =
                   CASE WHEN array_position(ARRAY['VIEWER', 'EDITOR', 'ADMIN'], EXCLUDED."role")
                           > array_position(ARRAY['VIEWER', 'EDITOR', 'ADMIN'], "ProjectCollaborator"."role")
                        THEN EXCLUDED."role" ELSE "ProjectCollaborator"."role" END"#,
        )
        .bind(row_id)
        .bind(&invite.project_id)
        .bind(user_id)
        .bind(invite.role)
        .execute(&mut *tx)
        .await?;
    }
    Ok(answer)
}

pub async fn decline(tx: &mut PgConnection, id: &str, user_id: &str) -> sqlx::Result<Answer> {
    close_invite(tx, id, user_id, InviteStatus::Declined).await
}

/// The collaborators of a page: `$1` project, `$2`/`$3` the last (joinedAt, row id) seen,
/// `$4` limit. A range over `ProjectCollaborator_projectId_userId_key`'s project prefix,
/// sorted: a project has few members. A legacy collaborator row of the owner is skipped, so
/// the owner is listed once, as OWNER.
const COLLABORATORS_SQL: &str = r#"
    SELECT c."userId", u."name", u."image", c."role", c."createdAt" AS "joinedAt", c."id" AS "key"
    FROM "ProjectCollaborator" c JOIN "User" u ON u."id" = c."userId"
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
) -> sqlx::Result<Vec<Member>> {
    let (joined_at, key) = start_position(after, start_of_time());
    let sql = if after.is_some() {
        COLLABORATORS_SQL.to_owned()
    } else {
        format!(
            r#"SELECT * FROM (
                   (SELECT u."id" AS "userId", u."name", u."image", 'OWNER' AS "role",
                           p."createdAt" AS "joinedAt", '' AS "key", 0 AS "rank"
                    FROM "Project" p JOIN "User" u ON u."id" = p."userId" WHERE p."id" = $1)
                   UNION ALL
                   (SELECT *, 1 FROM ({COLLABORATORS_SQL}) c)
               ) m ORDER BY "rank", "joinedAt", "key""#
        )
    };
    sqlx::query_as(&sql).bind(project_id).bind(joined_at).bind(key).bind(limit).fetch_all(db).await
}

/// Sets a collaborator's role; None when the user is not a collaborator of the project.
pub async fn set_role(
    db: impl PgExecutor<'_>,
    project_id: &str,
    user_id: &str,
    role: Role,
) -> sqlx::Result<Option<Member>> {
    sqlx::query_as(
        r#"WITH c AS (
               UPDATE "ProjectCollaborator" SET "role" = $3
               WHERE "projectId" = $1 AND "userId" = $2 RETURNING *
           )
           SELECT c."userId", u."name", u."image", c."role", c."createdAt" AS "joinedAt", c."id" AS "key"
           FROM c JOIN "User" u ON u."id" = c."userId""#,
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role)
    .fetch_optional(db)
    .await
}

/// Removes a collaborator; false when the user was not one.
pub async fn remove(db: impl PgExecutor<'_>, project_id: &str, user_id: &str) -> sqlx::Result<bool> {
    let result = sqlx::query(r#"DELETE FROM "ProjectCollaborator" WHERE "projectId" = $1 AND "userId" = $2"#)
        .bind(project_id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() > 0)
}
