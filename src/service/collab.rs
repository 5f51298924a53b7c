//! Collaboration: invites, sent by the owner or an ADMIN and answered by the invitee, and a
//! project's members. Nobody grants a role above their own, and nobody removes or demotes
//! the owner.

use crate::auth::token;
use crate::db::collab::{self, Answer, InviteRow, MemberRow, Revoked, PENDING_INVITE_KEY};
use crate::db::{projects, users};
use crate::domain::access::{Access, ProjectFacts, Role};
use crate::domain::page::{Keyset, Page};
use crate::domain::time::Position;
use crate::error::{Error, Result, ResultExt};
use crate::service::invalidation::{self, Subjects, Write};
use crate::service::rate_limit;
use crate::service::reads;
use crate::state::AppState;

/// Who an invite is for, as the request names them.
pub enum Invitee {
    Email(String),
    Id(String),
}

/// Nobody grants more than they hold: the owner any role, anyone else up to their own.
pub fn check_grant(access: Access, role: Role) -> Result<()> {
    if Access::from(role) > access {
        return Err(Error::Forbidden("you cannot grant a role higher than your own".into()));
    }
    Ok(())
}

/// Invites a user to a project the caller manages (checked before). The owner and members
/// cannot be invited (409), nor can a user with a PENDING invite to the project (409, decided
/// by the partial unique index, so concurrent invites yield one).
pub async fn invite(
    state: &AppState,
    project_id: &str,
    from_user_id: &str,
    invitee: Invitee,
    role: Role,
) -> Result<InviteRow> {
    // Inviting by e-mail tells whether an address has an account: bounded per sender.
    let limit = Some(state.settings.collab.invites_per_window);
    rate_limit::reserve(&state.pool, &[rate_limit::Key { name: format!("invite:{from_user_id}"), limit }]).await?;
    let found = match invitee {
        Invitee::Email(email) => users::id_by_email(&state.pool, &email).await?,
        Invitee::Id(id) => users::exists(&state.pool, &id).await?.then_some(id),
    };
    let invitee = found.ok_or(Error::NotFound("user"))?;
    collab::expire_pending(&state.pool, project_id, &invitee).await?;
    // The project's facts, seen from the invitee: are they the owner or a member already?
    let standing = projects::facts(&state.pool, project_id, Some(&invitee)).await?.ok_or(Error::NotFound("project"))?;
    if standing.owner_id == invitee || standing.caller_role.is_some() {
        return Err(Error::Conflict("this user is already a member of the project".into()));
    }
    let id = token::new_id();
    let ttl_days = i32::try_from(state.settings.collab.invite_ttl_days).unwrap_or(i32::MAX);
    collab::create_invite(&state.pool, &id, project_id, from_user_id, &invitee, role, ttl_days)
        .await
        .on_unique_violation(PENDING_INVITE_KEY, || {
            Error::Conflict("this user already has a pending invite to the project".into())
        })?;
    invalidation::after(&state.cache, Write::Invite, Subjects::default()).await;
    collab::invite(&state.pool, &id).await?.ok_or(Error::NotFound("invite"))
}

pub async fn pending_for(state: &AppState, user_id: &str, keyset: Keyset<Position>) -> Result<Page<InviteRow>> {
    let read = |db| collab::pending_for(db, user_id, keyset.after.as_ref(), keyset.fetch());
    let rows = reads::run(state, Some(user_id), read).await?;
    Ok(keyset.page(rows, |invite| (invite.created_at.0, invite.id.clone())))
}

/// The answered invite, or why it could not be answered. Only its invitee sees an invite:
/// for anyone else it does not exist.
fn answered(answer: Answer) -> Result<(String, Role, String)> {
    match answer {
        Answer::Answered { project_id, role, from_user_id } => Ok((project_id, role, from_user_id)),
        Answer::NotPending => Err(Error::Conflict("this invite was already answered".into())),
        Answer::Expired => Err(Error::Conflict("this invite has expired".into())),
        Answer::Unknown => Err(Error::NotFound("invite")),
    }
}

/// Accepts an invite: the caller becomes a collaborator with the invite's role (a member
/// already keeps the higher of the two roles), and the invite is closed, in one transaction.
/// Of concurrent accepts exactly one succeeds; the others are 409.
pub async fn accept(state: &AppState, id: &str, user_id: &str) -> Result<InviteRow> {
    let mut tx = state.pool.begin().await?;
    let (project_id, role, from_user_id) = answered(collab::accept(&mut tx, id, user_id, &token::new_id()).await?)?;
    // The sender must still be able to grant the role: an ADMIN removed since cannot let
    // anyone in, nor return through an invite to an account of their own.
    let sender = projects::facts(&mut *tx, &project_id, Some(&from_user_id)).await?;
    let sender_access = sender.as_ref().and_then(|facts| facts.access(Some(&from_user_id)));
    if !sender_access.is_some_and(|access| access >= Access::Admin && access >= Access::from(role)) {
        return Err(Error::Conflict("this invite's sender can no longer grant its role".into()));
    }
    let invite = collab::invite(&mut *tx, id).await?.ok_or(Error::NotFound("invite"))?;
    tx.commit().await?;
    let members = [user_id.to_owned()];
    let subjects = Subjects { projects: &[&project_id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::AcceptInvite, subjects).await;
    Ok(invite)
}

/// Declines an invite. Only its invitee, only while it is PENDING.
pub async fn decline(state: &AppState, id: &str, user_id: &str) -> Result<InviteRow> {
    let mut tx = state.pool.begin().await?;
    answered(collab::decline(&mut tx, id, user_id).await?)?;
    let invite = collab::invite(&mut *tx, id).await?.ok_or(Error::NotFound("invite"))?;
    tx.commit().await?;
    invalidation::after(&state.cache, Write::DeclineInvite, Subjects::default()).await;
    Ok(invite)
}

/// The project's PENDING invites, for its managers (checked before).
pub async fn pending_of_project(
    state: &AppState,
    project_id: &str,
    keyset: Keyset<Position>,
) -> Result<Page<InviteRow>> {
    let rows = collab::pending_of_project(&state.pool, project_id, keyset.after.as_ref(), keyset.fetch()).await?;
    Ok(keyset.page(rows, |invite| (invite.created_at.0, invite.id.clone())))
}

/// Revokes one of the project's PENDING invites (the caller manages the project).
pub async fn revoke(state: &AppState, project_id: &str, id: &str) -> Result<()> {
    let mut conn = state.pool.acquire().await?;
    match collab::revoke(&mut conn, project_id, id).await? {
        Revoked::Revoked => {
            invalidation::after(&state.cache, Write::RevokeInvite, Subjects::default()).await;
            Ok(())
        }
        Revoked::NotPending => Err(Error::Conflict("this invite is no longer pending".into())),
        Revoked::Unknown => Err(Error::NotFound("invite")),
    }
}

/// The project's members, read for `caller`: the owner first, then the collaborators in the
/// order they joined.
pub async fn members(
    state: &AppState,
    caller: Option<&str>,
    project_id: &str,
    keyset: Keyset<Position>,
) -> Result<Page<MemberRow>> {
    let read = |db| collab::members(db, project_id, keyset.after.as_ref(), keyset.fetch());
    let rows = reads::run(state, caller, read).await?;
    Ok(keyset.page(rows, MemberRow::position))
}

/// Changes a collaborator's role, granting at most the caller's own; the owner's role never
/// changes (403).
pub async fn change_role(
    state: &AppState,
    project: &ProjectFacts,
    access: Access,
    project_id: &str,
    member: &str,
    role: Role,
) -> Result<MemberRow> {
    if project.owner_id == member {
        return Err(Error::Forbidden("the owner's role cannot change".into()));
    }
    check_grant(access, role)?;
    let changed = collab::set_role(&state.pool, project_id, member, role).await?.ok_or(Error::NotFound("member"))?;
    let members = [member.to_owned()];
    let subjects = Subjects { projects: &[project_id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::ChangeRole, subjects).await;
    Ok(changed)
}

/// Removes a collaborator; the owner cannot be removed (403).
pub async fn remove(state: &AppState, project: &ProjectFacts, project_id: &str, member: &str) -> Result<()> {
    if project.owner_id == member {
        return Err(Error::Forbidden("the owner cannot be removed".into()));
    }
    if !collab::remove(&state.pool, project_id, member).await? {
        return Err(Error::NotFound("member"));
    }
    let members = [member.to_owned()];
    let subjects = Subjects { projects: &[project_id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::RemoveMember, subjects).await;
    Ok(())
}
