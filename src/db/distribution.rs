//! How the schema would be spread over a Citus cluster, and how each request-path query
//! would be routed there: the one table `docs/scaling.md` quotes, and that
//! `tests/api/distribution.rs` checks against the statements' plans (each keyed query has
//! an equality on its key's column, every table it touches is in its key's co-location
//! group, and the names the monitor shows under load are all listed here).

/// The two distribution keys, each naming a co-location group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A user and what is theirs alone: sessions, accounts, usage.
    User,
    /// A project and what belongs to it: files, messages, members, invites, likes.
    Project,
}

/// Where a table lives on Citus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Hash-distributed on `column`, co-located with the key's group.
    Distributed(Key, &'static str),
    /// Small and rarely written: a copy on every node, joinable from any shard.
    Reference,
    /// The platform's own bookkeeping, on the coordinator only (a Citus local table).
    Coordinator,
}

/// Every table and materialized view a request-path query touches, with its placement.
pub const TABLES: &[(&str, Placement)] = &[
    ("User", Placement::Distributed(Key::User, "id")),
    ("Account", Placement::Distributed(Key::User, "userId")),
    ("Session", Placement::Distributed(Key::User, "userId")),
    ("TokenUsage", Placement::Distributed(Key::User, "userId")),
    ("user_token_summary", Placement::Distributed(Key::User, "userId")),
    ("UserProject", Placement::Distributed(Key::User, "userId")),
    ("Project", Placement::Distributed(Key::Project, "id")),
    ("ProjectFile", Placement::Distributed(Key::Project, "projectId")),
    ("Message", Placement::Distributed(Key::Project, "projectId")),
    ("ProjectCollaborator", Placement::Distributed(Key::Project, "projectId")),
    ("CollaborationInvite", Placement::Distributed(Key::Project, "projectId")),
    ("ProjectLike", Placement::Distributed(Key::Project, "projectId")),
    ("Competition", Placement::Distributed(Key::Project, "projectId")),
    ("project_stats", Placement::Distributed(Key::Project, "projectId")),
    ("ViewRefresh", Placement::Reference),
    ("UserFace", Placement::Reference),
    ("LoginFailure", Placement::Coordinator),
    ("VerificationToken", Placement::Coordinator),
    ("JobRun", Placement::Coordinator),
    ("QueryPerformance", Placement::Coordinator),
];

/// How a query would be routed on Citus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Pinned to one value of the key, and every distributed table it touches is in the
    /// key's group (the others it touches are reference tables, such as `UserFace`, the
    /// owner's or a member's public face): a router query on one shard, as written today.
    Router(Key),
    /// Pinned to a set of the key's values (`= ANY($n)` on the distribution column), every
    /// other table it touches in the key's group joined on that column: Citus prunes it to
    /// those values' shards and runs it on each as a router query (the page of a list, read by
    /// the ids a router query found).
    RouterEach(Key),
    /// Found by a column that is neither key (a user by e-mail, an invite or a competition by
    /// its id, a session from before tokens carried the user id): the change that makes it
    /// routable, or why it is left as it is.
    Lookup(&'static str),
    /// Over many shards by nature: how it is served at that scale.
    CrossShard(&'static str),
    /// Only the coordinator's own tables.
    Coordinator,
}

const BY_EMAIL: &str = "a user by e-mail: an e-mail → user id table distributed by e-mail (which also keeps \
                        e-mails unique, as a unique index on User no longer can), then a router query by user id";
const UNKEYED_SESSION: &str = "transitional: a session whose token carries no user id (Phase-1 sessions \
                               `vibing2 import` hashed, Phase-2 ones `migrate` hashed, this service's own from \
                               before `<userId>.<secret>`), found by its hash alone; no new session is one, so \
                               the lookup is gone when the last of them expires";
const BY_INVITE: &str = "an invite by its id: invite ids carry the project id, as tokens carry the user id";
const BY_COMPETITION: &str = "a competition by its id: competitions are few, so an id → projectId reference \
                              table routes them";
const INVITEE_LIST: &str = "an invitee's pending invites, not a hot read (the invites page, not every visit; \
                            the load of `vibing2 bench http` never runs it): a multi-shard query over each \
                            shard's (toUserId, status, createdAt) index, merged by the coordinator; if it \
                            grows hot, UserProject can hold pending invites as it holds memberships";
const DISCOVERY: &str = "discovery: from project_stats extended into a read model of public projects (counts, \
                         name, description, type), a reference table refreshed by the view job, or a \
                         multi-shard query whose LIMIT Citus pushes to each shard";
const COMPETITION_PAGE: &str = "the competitions page: few rows, from the same read model as discovery";
const FORK: &str = "a fork writes a second project: two router statements (create the fork, copy the files \
                    into its shard through the coordinator) instead of one";
const VIEW_FLUSH: &str = "the view flush updates many projects at once: one multi-shard statement per flush \
                          (Citus runs it shard by shard), off the request path";

/// Every request-path query by its name in the monitor (`telemetry::queries::timed`).
pub const QUERIES: &[(&str, Route)] = &[
    ("users.create", Route::Router(Key::User)),
    ("users.by_id", Route::Router(Key::User)),
    ("users.exists", Route::Router(Key::User)),
    ("users.password_hash", Route::Router(Key::User)),
    ("users.set_password_hash", Route::Router(Key::User)),
    ("users.replace_password_hash", Route::Router(Key::User)),
    ("users.email_taken", Route::Lookup(BY_EMAIL)),
    ("users.credentials_by_email", Route::Lookup(BY_EMAIL)),
    ("users.id_by_email", Route::Lookup(BY_EMAIL)),
    ("sessions.create", Route::Router(Key::User)),
    ("sessions.delete_others", Route::Router(Key::User)),
    ("sessions.live", Route::Router(Key::User)),
    ("sessions.live_unkeyed", Route::Lookup(UNKEYED_SESSION)),
    ("sessions.delete", Route::Router(Key::User)),
    ("usage.record", Route::Router(Key::User)),
    ("usage.summary", Route::Router(Key::User)),
    ("usage.recent", Route::Router(Key::User)),
    ("projects.create", Route::Router(Key::Project)),
    ("projects.get", Route::Router(Key::Project)),
    ("projects.facts", Route::Router(Key::Project)),
    ("projects.update", Route::Router(Key::Project)),
    ("projects.delete", Route::Router(Key::Project)),
    ("projects.lock_for_copy", Route::Router(Key::Project)),
    ("projects.member_ids", Route::Router(Key::Project)),
    ("projects.touch", Route::Router(Key::Project)),
    ("projects.view_count", Route::Router(Key::Project)),
    ("projects.fork", Route::CrossShard(FORK)),
    ("projects.add_views", Route::CrossShard(VIEW_FLUSH)),
    ("projects.list_for_member", Route::Router(Key::User)),
    ("projects.summaries", Route::RouterEach(Key::Project)),
    ("files.list", Route::Router(Key::Project)),
    ("files.get", Route::Router(Key::Project)),
    ("files.usage", Route::Router(Key::Project)),
    ("files.apply_batch", Route::Router(Key::Project)),
    ("messages.append", Route::Router(Key::Project)),
    ("messages.by_id", Route::Router(Key::Project)),
    ("messages.page", Route::Router(Key::Project)),
    ("likes.set", Route::Router(Key::Project)),
    ("collab.create_invite", Route::Router(Key::Project)),
    ("collab.expire_pending", Route::Router(Key::Project)),
    ("collab.revoke", Route::Router(Key::Project)),
    ("collab.remove", Route::Router(Key::Project)),
    ("collab.pending_of_project", Route::Router(Key::Project)),
    ("collab.members", Route::Router(Key::Project)),
    ("collab.set_role", Route::Router(Key::Project)),
    ("collab.invite", Route::Lookup(BY_INVITE)),
    ("collab.accept", Route::Lookup(BY_INVITE)),
    ("collab.decline", Route::Lookup(BY_INVITE)),
    ("collab.pending_for", Route::CrossShard(INVITEE_LIST)),
    ("competitions.create", Route::Router(Key::Project)),
    ("competitions.get", Route::Lookup(BY_COMPETITION)),
    ("competitions.project_of", Route::Lookup(BY_COMPETITION)),
    ("competitions.close", Route::Lookup(BY_COMPETITION)),
    ("competitions.page", Route::CrossShard(COMPETITION_PAGE)),
    ("discovery.discover", Route::CrossShard(DISCOVERY)),
    ("login_failures.recent", Route::Coordinator),
    ("login_failures.lock", Route::Coordinator),
    ("login_failures.record", Route::Coordinator),
    ("login_failures.forget", Route::Coordinator),
];

/// The request-path queries that are not hot, and why: each runs once per sign-in or
/// sign-up, per step of an invitation or a competition, per fork (rate-limited), or in a
/// batch off the request path, where every other query in [`QUERIES`] runs on the pages a
/// user opens and the writes they make while working. `tests/api/distribution.rs` checks that
/// every hot query is routable (a router query by one key, on each of a set of one key's
/// values, or on the coordinator's own tables), and that none of these carries as much as
/// [`HOT_SHARE`] of the calls under `vibing2 bench http`.
pub const COLD: &[(&str, &str)] = &[
    ("users.email_taken", "once per sign-up"),
    ("users.credentials_by_email", "once per sign-in"),
    ("users.id_by_email", "once per invitation sent by e-mail"),
    ("sessions.live_unkeyed", "transitional: only sessions from before tokens carried the user id"),
    ("collab.invite", "once per invitation sent"),
    ("collab.accept", "once per invitation answered"),
    ("collab.decline", "once per invitation answered"),
    ("collab.pending_for", "an invitee's invites page, not every visit"),
    ("competitions.get", "a competition's page; competitions are few"),
    ("competitions.project_of", "once per competition closed"),
    ("competitions.close", "once per competition closed"),
    ("projects.fork", "once per fork, rate-limited (4 a window by default)"),
    ("projects.add_views", "the view flush: one statement per flush, off the request path"),
];

/// The hot queries that are cross-shard by nature: the public listings, one page for every
/// visitor, served at scale from a read model (the reasons in [`QUERIES`]).
pub const PUBLIC_LISTINGS: &[&str] = &["discovery.discover", "competitions.page"];

/// The share of the calls under load at which a query counts as hot, whatever [`COLD`] says.
pub const HOT_SHARE: f64 = 0.05;

/// Whether the request-path query `name` is hot: not in [`COLD`].
pub fn is_hot(name: &str) -> bool {
    !COLD.iter().any(|(cold, _)| *cold == name)
}

/// Names that are not the request path's: the jobs' statements (refreshes, cleanups,
/// ANALYZE, TokenUsage's monthly partitions, their bookkeeping) and the health probe's catalog
/// reads, which run on the coordinator, whatever the cluster.
pub const PLATFORM_PREFIXES: &[&str] = &["maintenance.", "catalog.", "partitions."];

/// The placement of `table`, if it is listed.
pub fn placement(table: &str) -> Option<Placement> {
    TABLES.iter().find(|(name, _)| *name == table).map(|(_, placement)| *placement)
}

/// The route of the query `name`, if it is listed.
pub fn route(name: &str) -> Option<Route> {
    QUERIES.iter().find(|(query, _)| *query == name).map(|(_, route)| *route)
}
