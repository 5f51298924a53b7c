//! Who may do what with a project. The owner may do everything; a collaborator's role grants
//! read (VIEWER), write (EDITOR) or member management (ADMIN); anyone may read a PUBLIC
//! project; for everyone else a private project does not exist (404, not 403).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;

/// A collaborator's role, stored as `VIEWER` / `EDITOR` / `ADMIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "text", rename_all = "UPPERCASE")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

/// What the caller is to a project, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Access {
    /// Not a member, reading a PUBLIC project.
    Public,
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl From<Role> for Access {
    fn from(role: Role) -> Self {
        match role {
            Role::Viewer => Access::Viewer,
            Role::Editor => Access::Editor,
            Role::Admin => Access::Admin,
        }
    }
}

/// What a request wants to do, each needing at least some access.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Metadata, files, messages; counting a view.
    Read,
    /// Files and messages.
    Write,
    /// Project settings and members.
    Manage,
    /// Who may read the project: publishing it, or taking it private. Owner only: it decides
    /// what the owner shows the world, which member management does not cover.
    SetVisibility,
    /// Deleting the project.
    Delete,
}

impl Action {
    /// Whether the action changes the project (everything but reading it).
    pub fn writes(self) -> bool {
        !matches!(self, Action::Read)
    }

    fn needs(self) -> Access {
        match self {
            Action::Read => Access::Public,
            Action::Write => Access::Editor,
            Action::Manage => Access::Admin,
            Action::SetVisibility | Action::Delete => Access::Owner,
        }
    }
}

/// The facts about one project that access depends on: read fresh for every write, and from
/// the cache for reads (`service::access`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectFacts {
    pub owner_id: String,
    pub is_public: bool,
    /// The caller's collaborator role, if they have one.
    pub caller_role: Option<Role>,
}

impl ProjectFacts {
    /// The caller's access, or None when the project must look nonexistent to them.
    pub fn access(&self, caller: Option<&str>) -> Option<Access> {
        if caller == Some(self.owner_id.as_str()) {
            return Some(Access::Owner);
        }
        match (self.caller_role, self.is_public) {
            (Some(role), _) => Some(role.into()),
            (None, true) => Some(Access::Public),
            (None, false) => None,
        }
    }
}

/// Checks `action` against the caller's access: 404 for a project the caller cannot see,
/// 401 for an anonymous caller who could do more by signing in, 403 otherwise.
pub fn authorize(facts: Option<&ProjectFacts>, caller: Option<&str>, action: Action) -> Result<Access, Error> {
    let Some(access) = facts.and_then(|facts| facts.access(caller)) else {
        return Err(Error::NotFound("project"));
    };
    if access >= action.needs() {
        Ok(access)
    } else if caller.is_none() {
        Err(Error::Unauthorized)
    } else {
        Err(Error::Forbidden(format!("this needs {:?} access to the project", action.needs()).to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(is_public: bool, caller_role: Option<Role>) -> ProjectFacts {
        ProjectFacts { owner_id: "owner".into(), is_public, caller_role }
    }

    #[test]
    fn roles_grant_cumulative_rights() {
        let cases = [
            (Some(Role::Viewer), Action::Read, true),
            (Some(Role::Viewer), Action::Write, false),
            (Some(Role::Editor), Action::Write, true),
            (Some(Role::Editor), Action::Manage, false),
            (Some(Role::Admin), Action::Manage, true),
            (Some(Role::Admin), Action::Delete, false),
        ];
        for (role, action, allowed) in cases {
            let result = authorize(Some(&facts(false, role)), Some("member"), action);
            assert_eq!(result.is_ok(), allowed, "{role:?} {action:?}");
        }
        assert!(authorize(Some(&facts(false, None)), Some("owner"), Action::Delete).is_ok());
    }

    #[test]
    fn private_projects_do_not_exist_for_strangers() {
        let private = facts(false, None);
        assert!(matches!(authorize(Some(&private), Some("stranger"), Action::Read), Err(Error::NotFound(_))));
        assert!(matches!(authorize(Some(&private), None, Action::Read), Err(Error::NotFound(_))));
        assert!(matches!(authorize(None, Some("owner"), Action::Read), Err(Error::NotFound(_))));
    }

    #[test]
    fn public_projects_are_read_only_for_everyone_else() {
        let public = facts(true, None);
        assert_eq!(authorize(Some(&public), None, Action::Read).unwrap(), Access::Public);
        assert!(matches!(authorize(Some(&public), None, Action::Write), Err(Error::Unauthorized)));
        assert!(matches!(authorize(Some(&public), Some("stranger"), Action::Write), Err(Error::Forbidden(_))));
    }
}
