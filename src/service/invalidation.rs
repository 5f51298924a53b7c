//! What each write makes stale, in one table. Every write of the service names its
//! [`Write`]; [`after`] turns the declaration and the write's subjects into cache scopes and
//! invalidates them all at once (one Redis pipeline), after the write committed, so no reader
//! can cache the old state under the new generation.

use crate::cache::{Cache, CacheError, Scope};

/// Every write the service makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Signup,
    Login,
    Logout,
    ChangePassword,
    CreateProject,
    UpdateProject,
    DeleteProject,
    ForkProject,
    LikeProject,
    UnlikeProject,
    /// A batch of counted views, written together (see `service::views`).
    FlushViews,
    WriteFiles,
    AppendMessage,
    Invite,
    AcceptInvite,
    DeclineInvite,
    RevokeInvite,
    ChangeRole,
    RemoveMember,
    RecordUsage,
    EnterCompetition,
    CloseCompetition,
    ClearCache,
    /// A change of the runtime switches; a cache mode change empties this instance's tier
    /// by itself (`cache::Cache::set_mode`).
    SetSwitches,
}

/// A kind of cached read a write can make stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// The projects' metadata, file listings, newest message pages, and the access facts
    /// their reads are checked on.
    Projects,
    /// The project lists of the members (and of anyone who joined or left).
    MemberLists,
    /// Every discovery page.
    Discovery,
    /// Discovery, if the project written is PUBLIC.
    DiscoveryIfPublic,
    /// The caller's profile (balance, plan).
    Profile,
    /// The caller's usage summaries.
    Usage,
    /// The sessions the write ended.
    Sessions,
}

impl Write {
    pub const ALL: &'static [Write] = &[
        Write::Signup,
        Write::Login,
        Write::Logout,
        Write::ChangePassword,
        Write::CreateProject,
        Write::UpdateProject,
        Write::DeleteProject,
        Write::ForkProject,
        Write::LikeProject,
        Write::UnlikeProject,
        Write::FlushViews,
        Write::WriteFiles,
        Write::AppendMessage,
        Write::Invite,
        Write::AcceptInvite,
        Write::DeclineInvite,
        Write::RevokeInvite,
        Write::ChangeRole,
        Write::RemoveMember,
        Write::RecordUsage,
        Write::EnterCompetition,
        Write::CloseCompetition,
        Write::ClearCache,
        Write::SetSwitches,
    ];

    /// The table: what each write makes stale. A write that no cached read shows (an invite
    /// list, a competition, a new account) declares nothing; clearing the cache drops
    /// everything by itself.
    pub fn stale(self) -> &'static [Stale] {
        use Stale::*;
        match self {
            Write::Signup | Write::Login | Write::Invite | Write::DeclineInvite | Write::RevokeInvite => &[],
            Write::EnterCompetition | Write::CloseCompetition | Write::ClearCache | Write::SetSwitches => &[],
            Write::Logout | Write::ChangePassword => &[Sessions],
            Write::CreateProject => &[MemberLists, DiscoveryIfPublic],
            // Files and messages move the project's updatedAt, which lists and discovery show.
            Write::UpdateProject | Write::DeleteProject | Write::WriteFiles | Write::AppendMessage => {
                &[Projects, MemberLists, Discovery]
            }
            // Counters show on the project, in every member's list, and in discovery.
            Write::ForkProject | Write::LikeProject | Write::UnlikeProject | Write::FlushViews => {
                &[Projects, MemberLists, Discovery]
            }
            // Who may read the project changed: its access facts.
            Write::AcceptInvite | Write::ChangeRole | Write::RemoveMember => &[Projects, MemberLists],
            Write::RecordUsage => &[Profile, Usage],
        }
    }
}

/// Who and what one write touched.
#[derive(Debug, Default)]
pub struct Subjects<'a> {
    pub projects: &'a [&'a str],
    /// Whose project lists show the change.
    pub members: &'a [String],
    pub public: bool,
    pub user: Option<&'a str>,
    /// The hashes of the sessions ended.
    pub sessions: &'a [String],
}

/// The scopes a write's declaration covers for these subjects.
pub fn scopes(write: Write, subjects: &Subjects<'_>) -> Vec<Scope> {
    let mut scopes = Vec::new();
    for stale in write.stale() {
        match stale {
            Stale::Projects => scopes.extend(subjects.projects.iter().map(|id| Scope::Project((*id).to_owned()))),
            Stale::MemberLists => scopes.extend(subjects.members.iter().map(|id| Scope::MemberProjects(id.clone()))),
            Stale::Discovery => scopes.push(Scope::Discovery),
            Stale::DiscoveryIfPublic if subjects.public => scopes.push(Scope::Discovery),
            Stale::DiscoveryIfPublic => {}
            Stale::Profile => scopes.extend(subjects.user.map(|id| Scope::User(id.to_owned()))),
            Stale::Usage => scopes.extend(subjects.user.map(|id| Scope::Usage(id.to_owned()))),
            Stale::Sessions => scopes.extend(subjects.sessions.iter().map(|hash| Scope::Session(hash.clone()))),
        }
    }
    scopes.dedup();
    scopes
}

/// Clears this service's namespace in Redis and every instance's local tier; returns the keys
/// removed.
pub async fn clear_all(cache: &Cache) -> Result<u64, CacheError> {
    let removed = cache.clear().await?;
    after(cache, Write::ClearCache, Subjects::default()).await;
    Ok(removed)
}

/// Invalidates what `write` declared stale for these subjects.
pub async fn after(cache: &Cache, write: Write, subjects: Subjects<'_>) {
    cache.invalidate(&scopes(write, &subjects)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_changes_reach_every_members_list() {
        let members = ["owner".to_owned(), "editor".to_owned()];
        for write in [Write::LikeProject, Write::UnlikeProject, Write::ForkProject, Write::FlushViews] {
            let scopes = scopes(write, &Subjects { projects: &["p"], members: &members, ..Subjects::default() });
            assert!(scopes.contains(&Scope::MemberProjects("owner".into())), "{write:?}");
            assert!(scopes.contains(&Scope::MemberProjects("editor".into())), "{write:?}");
            assert!(scopes.contains(&Scope::Project("p".into())), "{write:?}");
        }
    }

    #[test]
    fn a_private_project_leaves_discovery_alone() {
        let private = Subjects { members: &["owner".to_owned()], public: false, ..Subjects::default() };
        assert!(!scopes(Write::CreateProject, &private).contains(&Scope::Discovery));
        let public = Subjects { public: true, ..private };
        assert!(scopes(Write::CreateProject, &public).contains(&Scope::Discovery));
    }
}
