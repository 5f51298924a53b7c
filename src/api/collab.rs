//! Collaboration: invites, sent by the owner or an ADMIN and answered by the invitee, and a
//! project's members. Nobody grants a role above their own, and nobody removes or demotes
//! the owner.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{project_access, AuthUser, Json, MaybeUser, Query};
use crate::api::pagination::{decode_cursor, page_from, Page, PageQuery, PageSize};
use crate::app::AppState;
use crate::auth::access::{Access, Action, Role};
use crate::auth::token;
use crate::cache::Scope;
use crate::db::collab::{self, Answer, Invite, Member, Position, PENDING_INVITE_KEY};
use crate::db::projects;
use crate::error::{Error, ErrorResponse, Result, ResultExt};
use crate::validate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite))
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

/// Nobody grants more than they hold: the owner any role, anyone else up to their own.
fn check_grant(access: Access, role: Role) -> Result<()> {
    if Access::from(role) > access {
        return Err(Error::Forbidden("you cannot grant a role higher than your own".into()));
    }
    Ok(())
}

/// Who an invite is for, as the request names them.
enum Invitee {
    Email(String),
    Id(String),
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

/// The invitee's user id; 404 for an unknown user.
async fn resolve(state: &AppState, invitee: Invitee) -> Result<String> {
    let found = match invitee {
        Invitee::Email(email) => collab::user_id_by_email(&state.pool, &email).await?,
        Invitee::Id(id) => collab::user_exists(&state.pool, &id).await?.then_some(id),
    };
    found.ok_or(Error::NotFound("user"))
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
    Json(request): Json<NewInvite>,
) -> Result<(StatusCode, Json<Invite>)> {
    let invitee = request.invitee()?;
    let (access, _) = project_access(&state, &id, caller.id(), Action::Manage).await?;
    let user = caller.require()?;
    check_grant(access, request.role)?;
    let invitee = resolve(&state, invitee).await?;
    // The same facts, seen from the invitee: are they the owner or a member already?
    let standing = projects::facts(&state.pool, &id, Some(&invitee)).await?.ok_or(Error::NotFound("project"))?;
    if standing.owner_id == invitee || standing.caller_role.is_some() {
        return Err(Error::Conflict("this user is already a member of the project".into()));
    }
    let invite = collab::create_invite(&state.pool, &token::new_id(), &id, &user.id, &invitee, request.role)
        .await
        .on_unique_violation(PENDING_INVITE_KEY, || {
            Error::Conflict("this user already has a pending invite to the project".into())
        })?;
    Ok((StatusCode::CREATED, Json(invite)))
}

/// The caller's PENDING invites, newest first.
#[utoipa::path(get, path = "/api/invites", tag = "collaboration", params(PageQuery), security(("session" = [])),
    responses((status = 200, body = Page<Invite>), (status = 401, body = ErrorResponse)))]
async fn list_invites(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<Invite>>> {
    let limit = PageSize::STANDARD.resolve(query.limit)?;
    let after: Option<Position> = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = collab::pending_for(&state.pool, &user.id, after.as_ref(), limit + 1).await?;
    Ok(Json(page_from(rows, limit, |invite| (invite.created_at, invite.id.clone()))))
}

/// The answered invite, or why it could not be answered. Only its invitee sees an invite:
/// for anyone else it does not exist.
fn answered(answer: Answer) -> Result<Invite> {
    match answer {
        Answer::Answered(invite) => Ok(invite),
        Answer::NotPending => Err(Error::Conflict("this invite was already answered".into())),
        Answer::Unknown => Err(Error::NotFound("invite")),
    }
}

/// Accepts an invite: the caller becomes a collaborator with the invite's role (a member
/// already keeps the higher of the two roles), and the invite is closed, in one transaction.
/// Of concurrent accepts exactly one succeeds; the others are 409.
#[utoipa::path(post, path = "/api/invites/{id}/accept", tag = "collaboration", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = Invite), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse)))]
async fn accept_invite(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Invite>> {
    let mut tx = state.pool.begin().await?;
    let invite = answered(collab::accept(&mut tx, &id, &user.id, &token::new_id()).await?)?;
    tx.commit().await?;
    state.cache.invalidate(&[Scope::MemberProjects(user.id.clone())]).await;
    Ok(Json(invite))
}

/// Declines an invite. Only its invitee, only while it is PENDING.
#[utoipa::path(post, path = "/api/invites/{id}/decline", tag = "collaboration", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = Invite), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse)))]
async fn decline_invite(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Invite>> {
    let mut tx = state.pool.begin().await?;
    let invite = answered(collab::decline(&mut tx, &id, &user.id).await?)?;
    tx.commit().await?;
    Ok(Json(invite))
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
    let limit = PageSize::STANDARD.resolve(query.limit)?;
    let after: Option<Position> = query.cursor.as_deref().map(decode_cursor).transpose()?;
    project_access(&state, &id, caller.id(), Action::Read).await?;
    let rows = collab::members(&state.pool, &id, after.as_ref(), limit + 1).await?;
    Ok(Json(page_from(rows, limit, Member::position)))
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
    Json(request): Json<RoleChange>,
) -> Result<Json<Member>> {
    let (access, facts) = project_access(&state, &id, caller.id(), Action::Manage).await?;
    if facts.owner_id == member {
        return Err(Error::Forbidden("the owner's role cannot change".into()));
    }
    check_grant(access, request.role)?;
    let changed = collab::set_role(&state.pool, &id, &member, request.role).await?.ok_or(Error::NotFound("member"))?;
    state.cache.invalidate(&[Scope::MemberProjects(member)]).await;
    Ok(Json(changed))
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
    let (_, facts) = project_access(&state, &id, caller.id(), action).await?;
    if facts.owner_id == member {
        return Err(Error::Forbidden("the owner cannot be removed".into()));
    }
    if !collab::remove(&state.pool, &id, &member).await? {
        return Err(Error::NotFound("member"));
    }
    state.cache.invalidate(&[Scope::MemberProjects(member)]).await;
    Ok(StatusCode::NO_CONTENT)
}
