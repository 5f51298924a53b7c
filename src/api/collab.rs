//! Collaboration: invites, sent by the owner or an ADMIN and answered by the invitee, and a
//! project's members. Nobody grants a role above their own, and nobody removes or demotes
//! the owner.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{AuthUser, Json, JsonBody, MaybeUser, PageQuery, Query};
use crate::db::collab::{InviteRow, MemberRow};
use crate::domain::access::{Action, Role};
use crate::domain::page::{Page, PageSize};
use crate::domain::{InviteStatus, MemberRole, UtcTime};
use crate::error::{Error, ErrorResponse, Result};
use crate::service::access;
use crate::service::collab::{self, Invitee};
use crate::state::AppState;
use crate::validate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite, project_invites))
        .routes(routes!(revoke_invite))
        .routes(routes!(list_invites))
        .routes(routes!(accept_invite))
        .routes(routes!(decline_invite))
        .routes(routes!(list_members))
        .routes(routes!(change_role, remove_member))
}

/// Exactly one of `email` and `userId` names the invitee.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewInvite {
    email: Option<String>,
    user_id: Option<String>,
    role: Role,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: Role,
}

/// Who sent an invite, as anyone may see them: never an e-mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inviter {
    id: String,
    name: Option<String>,
    image: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    id: String,
    project_id: String,
    project_name: String,
    from_user: Inviter,
    role: Role,
    status: InviteStatus,
    created_at: UtcTime,
}

impl From<InviteRow> for Invite {
    fn from(row: InviteRow) -> Self {
        Invite {
            id: row.id,
            project_id: row.project_id,
            project_name: row.project_name,
            from_user: Inviter { id: row.from_user_id, name: row.from_user_name, image: row.from_user_image },
            role: row.role,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

/// A project member as anyone who may read the project sees them: never an e-mail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    user_id: String,
    name: Option<String>,
    image: Option<String>,
    role: MemberRole,
    /// When the collaborator joined; for the owner, when the project was created.
    joined_at: UtcTime,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Member { user_id: row.user_id, name: row.name, image: row.image, role: row.role, joined_at: row.joined_at }
    }
}

impl NewInvite {
    /// Checks the request's shape before anything is read or written.
    fn invitee(&self) -> Result<Invitee> {
        match (&self.email, &self.user_id) {
            (Some(email), None) => Ok(Invitee::Email(validate::email(email)?)),
            (None, Some(id)) => {
                validate::text("userId", id, 1, 255)?;
                Ok(Invitee::Id(id.clone()))
            }
            _ => Err(Error::Unprocessable("give exactly one of email and userId".into())),
        }
    }
}

/// Invites a user by e-mail or id. The owner or an ADMIN collaborator; the owner and members
/// cannot be invited (409), nor can a user with a PENDING invite to the project (409, decided
/// by the partial unique index, so concurrent invites yield one).
#[utoipa::path(post, path = "/api/projects/{id}/invites", tag = "collaboration", params(("id" = String, Path)),
    request_body = NewInvite, security(("session" = [])),
    responses((status = 201, body = Invite), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn invite(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    body: JsonBody<NewInvite>,
) -> Result<(StatusCode, Json<Invite>)> {
    let (access, _) = access::project(&state, &id, caller.id(), Action::Manage).await?;
    let user = caller.require()?;
    let request = body.read(&state).await?;
    let invitee = request.invitee()?;
    collab::check_grant(access, request.role)?;
    let invite = collab::invite(&state, &id, &user.id, invitee, request.role).await?;
    Ok((StatusCode::CREATED, Json(invite.into())))
}

/// The project's PENDING invites that have not expired, newest first. The owner or an ADMIN
/// collaborator.
#[utoipa::path(get, path = "/api/projects/{id}/invites", tag = "collaboration", params(("id" = String, Path), PageQuery),
    security(("session" = [])),
    responses((status = 200, body = Page<Invite>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)))]
async fn project_invites(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<Invite>>> {
    let keyset = query.keyset(PageSize::STANDARD)?;
    access::project(&state, &id, caller.id(), Action::Manage).await?;
    Ok(Json(collab::pending_of_project(&state, &id, keyset).await?.map(Invite::from)))
}

/// Revokes one of the project's PENDING invites. The owner or an ADMIN collaborator; an
/// invite that is no longer PENDING is 409.
#[utoipa::path(delete, path = "/api/projects/{id}/invites/{inviteId}", tag = "collaboration",
    params(("id" = String, Path), ("inviteId" = String, Path)), security(("session" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn revoke_invite(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path((id, invite)): Path<(String, String)>,
) -> Result<StatusCode> {
    access::project(&state, &id, caller.id(), Action::Manage).await?;
    collab::revoke(&state, &id, &invite).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's PENDING invites, newest first.
#[utoipa::path(get, path = "/api/invites", tag = "collaboration", params(PageQuery), security(("session" = [])),
    responses((status = 200, body = Page<Invite>), (status = 401, body = ErrorResponse)))]
async fn list_invites(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<Invite>>> {
    let keyset = query.keyset(PageSize::STANDARD)?;
    Ok(Json(collab::pending_for(&state, &user.id, keyset).await?.map(Invite::from)))
}

/// Accepts an invite: the caller becomes a collaborator with the invite's role (a member
/// already keeps the higher of the two roles), and the invite is closed, in one transaction.
/// Of concurrent accepts exactly one succeeds; the others are 409.
#[utoipa::path(post, path = "/api/invites/{id}/accept", tag = "collaboration", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = Invite), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse)))]
async fn accept_invite(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Invite>> {
    Ok(Json(collab::accept(&state, &id, &user.id).await?.into()))
}

/// Declines an invite. Only its invitee, only while it is PENDING.
#[utoipa::path(post, path = "/api/invites/{id}/decline", tag = "collaboration", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = Invite), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse)))]
async fn decline_invite(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Invite>> {
    Ok(Json(collab::decline(&state, &id, &user.id).await?.into()))
}

/// The project's members: the owner first (role OWNER), then the collaborators in the order
/// they joined. Anyone who may read the project; names and images only, never e-mails.
#[utoipa::path(get, path = "/api/projects/{id}/members", tag = "collaboration", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Member>), (status = 404, body = ErrorResponse)))]
async fn list_members(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<Member>>> {
    let keyset = query.keyset(PageSize::STANDARD)?;
    access::project_read(&state, &id, caller.id()).await?;
    Ok(Json(collab::members(&state, caller.id(), &id, keyset).await?.map(Member::from)))
}

/// Changes a collaborator's role. The owner or an ADMIN, granting at most their own role; the
/// owner's role never changes (403).
#[utoipa::path(patch, path = "/api/projects/{id}/members/{userId}", tag = "collaboration",
    params(("id" = String, Path), ("userId" = String, Path)), request_body = RoleChange, security(("session" = [])),
    responses((status = 200, body = Member), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
async fn change_role(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path((id, member)): Path<(String, String)>,
    body: JsonBody<RoleChange>,
) -> Result<Json<Member>> {
    let (access, facts) = access::project(&state, &id, caller.id(), Action::Manage).await?;
    let request = body.read(&state).await?;
    Ok(Json(collab::change_role(&state, &facts, access, &id, &member, request.role).await?.into()))
}

/// Removes a collaborator: the owner or an ADMIN, or the member themselves (leaving). The
/// owner cannot be removed (403).
#[utoipa::path(delete, path = "/api/projects/{id}/members/{userId}", tag = "collaboration",
    params(("id" = String, Path), ("userId" = String, Path)), security(("session" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode> {
    let leaving = caller.id() == Some(member.as_str());
    let action = if leaving { Action::Read } else { Action::Manage };
    let (_, facts) = access::project(&state, &id, caller.id(), action).await?;
    collab::remove(&state, &facts, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}
