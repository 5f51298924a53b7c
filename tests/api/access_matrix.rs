//! The access-control matrix (issues 3 and 4): every endpoint of the API against every actor,
//! on a PRIVATE and on a PUBLIC project.
//!
//! The expected answer of each case is not written out by hand: it comes from one small rule,
//! [`expected`], which compares what an endpoint [`Needs`] with what the actor is to the
//! project. Every case also checks the database: a refused call changes nothing at all, an
//! allowed one changes exactly what its endpoint's `effect` says.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{TestApp, TestResponse, TestUser};

/// What a caller is to a project, weakest first. Kept apart from the service's own type on
/// purpose: the matrix states the policy independently of the code it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// Not a member, on a PUBLIC project.
    Public,
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl Level {
    /// As `GET /api/projects/{id}` reports it in `access`.
    fn name(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Viewer => "viewer",
            Level::Editor => "editor",
            Level::Admin => "admin",
            Level::Owner => "owner",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Anonymous,
    Stranger,
    Viewer,
    Editor,
    Admin,
    Owner,
}

/// The owner comes last, so that their successful writes never hide another actor's refusal.
const ACTORS: [Actor; 6] =
    [Actor::Anonymous, Actor::Stranger, Actor::Viewer, Actor::Editor, Actor::Admin, Actor::Owner];

/// Whom the invite fixture invites: a signed-in user with no part in the project, so that
/// answering the invite is theirs alone.
const INVITEE: Actor = Actor::Stranger;

impl Actor {
    fn label(self) -> &'static str {
        match self {
            Actor::Anonymous => "anonymous",
            Actor::Stranger => "stranger",
            Actor::Viewer => "viewer",
            Actor::Editor => "editor",
            Actor::Admin => "admin",
            Actor::Owner => "owner",
        }
    }

    /// The actor's access to a project, or None when the project must not exist for them.
    fn level(self, public: bool) -> Option<Level> {
        match self {
            Actor::Owner => Some(Level::Owner),
            Actor::Admin => Some(Level::Admin),
            Actor::Editor => Some(Level::Editor),
            Actor::Viewer => Some(Level::Viewer),
            Actor::Stranger | Actor::Anonymous => public.then_some(Level::Public),
        }
    }
}

/// What an endpoint requires.
#[derive(Debug, Clone, Copy)]
enum Needs {
    /// Nothing: anyone, signed in or not; no project involved.
    Anyone,
    /// Any signed-in user; no project involved.
    Session,
    /// At least this access to the project.
    Project(Level),
    /// This access to the project, and a signed-in caller: an anonymous caller who can see the
    /// project is 401 (on a project they cannot see, 404 like everyone else).
    SignedIn(Level),
    /// A signed-in caller before anything else (every anonymous call is 401, whatever the
    /// project), then this access to the project.
    SessionThen(Level),
    /// This access to a PUBLIC project; on a PRIVATE one, a caller who has it is refused with
    /// 422 (the request cannot apply to a private project).
    PublicOnly(Level),
    /// The caller's own membership, as when leaving: any collaborator; not the owner, who
    /// cannot leave (403); a signed-in non-member has no membership to end (404).
    Membership,
    /// Something no one may do, such as changing the owner's role: the usual 404 and 401 for
    /// those who cannot see the project or are anonymous, 403 for everyone else.
    Nobody,
    /// Only the invitee of the invite: for anyone else it does not exist (404).
    Invitee,
}

const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "not_found");
const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "unauthorized");
const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "forbidden");
const UNPROCESSABLE: (StatusCode, &str) = (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");

/// The rule the whole matrix follows: Ok(()) when the call must succeed, else the status
/// and error code it must be refused with.
fn expected(needs: Needs, actor: Actor, public: bool) -> Result<(), (StatusCode, &'static str)> {
    let anonymous = actor == Actor::Anonymous;
    match needs {
        Needs::Anyone => Ok(()),
        Needs::Session | Needs::SessionThen(_) | Needs::Invitee if anonymous => Err(UNAUTHORIZED),
        Needs::Session => Ok(()),
        Needs::Invitee if actor == INVITEE => Ok(()),
        Needs::Invitee => Err(NOT_FOUND),
        Needs::Project(needed) | Needs::SessionThen(needed) => project_access(Some(needed), actor, public),
        Needs::SignedIn(needed) => {
            project_access(Some(needed), actor, public)?;
            if anonymous {
                Err(UNAUTHORIZED)
            } else {
                Ok(())
            }
        }
        Needs::PublicOnly(needed) => {
            project_access(Some(needed), actor, public)?;
            if public {
                Ok(())
            } else {
                Err(UNPROCESSABLE)
            }
        }
        Needs::Membership => match actor.level(public) {
            Some(Level::Owner) => Err(FORBIDDEN),
            Some(Level::Public) if !anonymous => Err(NOT_FOUND),
            _ => project_access(Some(Level::Viewer), actor, public),
        },
        Needs::Nobody => project_access(None, actor, public),
    }
}

/// The project half of the rule; `needed` None: no access is enough.
fn project_access(needed: Option<Level>, actor: Actor, public: bool) -> Result<(), (StatusCode, &'static str)> {
    match actor.level(public) {
        // A private project does not exist for non-members, signed in or not.
        None => Err(NOT_FOUND),
        Some(level) if needed.is_some_and(|needed| level >= needed) => Ok(()),
        // Signing in could help an anonymous caller on a public project.
        Some(_) if actor == Actor::Anonymous => Err(UNAUTHORIZED),
        // A member, or a signed-in reader of a public project, lacking the right.
        Some(_) => Err(FORBIDDEN),
    }
}

/// The signed-in actors, and one user with no part in anything, to be invited.
struct Cast {
    owner: TestUser,
    admin: TestUser,
    editor: TestUser,
    viewer: TestUser,
    stranger: TestUser,
    outsider: TestUser,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        Self {
            owner: app.user("Owner").await,
            admin: app.user("Admin").await,
            editor: app.user("Editor").await,
            viewer: app.user("Viewer").await,
            stranger: app.user("Stranger").await,
            outsider: app.user("Outsider").await,
        }
    }

    fn user(&self, actor: Actor) -> Option<&TestUser> {
        match actor {
            Actor::Anonymous => None,
            Actor::Stranger => Some(&self.stranger),
            Actor::Viewer => Some(&self.viewer),
            Actor::Editor => Some(&self.editor),
            Actor::Admin => Some(&self.admin),
            Actor::Owner => Some(&self.owner),
        }
    }
}

const FILE_PATH: &str = "src/index.html";
const FILE_CONTENT: &str = "<h1>hello</h1>";
const MESSAGE_CONTENT: &str = "make it blue";
const USAGE_TOKENS: i32 = 10;
const USAGE_CONTEXT: f64 = 1.5;
const USAGE_ENDPOINT: &str = "/matrix";
const USAGE_MODEL: &str = "gpt-4o";

/// A fixture project's id, and its one message's.
#[derive(Clone)]
struct FixtureProject {
    id: String,
    message: String,
}

/// A project with one ADMIN, one EDITOR and one VIEWER, one file and one message.
async fn fixture_project(app: &TestApp, cast: &Cast, public: bool) -> FixtureProject {
    let visibility = if public { "PUBLIC" } else { "PRIVATE" };
    let id = app.project(&cast.owner, visibility).await;
    app.add_collaborator(&id, &cast.admin, "ADMIN").await;
    app.add_collaborator(&id, &cast.editor, "EDITOR").await;
    app.add_collaborator(&id, &cast.viewer, "VIEWER").await;
    let file = json!({"operations": [{"op": "upsert", "path": FILE_PATH, "content": FILE_CONTENT}]});
    let uri = format!("/api/projects/{id}/files");
    let put = app.call(Method::PUT, &uri, Some(&cast.owner.token), Some(file)).await;
    assert_eq!(put.status, StatusCode::OK, "fixture file: {}", put.json);
    let message = json!({"role": "user", "content": MESSAGE_CONTENT});
    let uri = format!("/api/projects/{id}/messages");
    let post = app.call(Method::POST, &uri, Some(&cast.owner.token), Some(message)).await;
    assert_eq!(post.status, StatusCode::CREATED, "fixture message: {}", post.json);
    FixtureProject { id, message: post.json["id"].as_str().unwrap().to_owned() }
}

/// What a case runs against.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    /// The matrix's project, shared by every case of the endpoint.
    Shared,
    /// A fixture project of the case's own: for calls that destroy it or change who is in it.
    Fresh,
    /// A fresh fixture project with a PENDING VIEWER invite from the ADMIN to the [`INVITEE`]:
    /// `{invite}` in the path.
    Invite,
    /// A fresh fixture project entered in a competition while PUBLIC, and made PRIVATE after
    /// entering for the PRIVATE column: `{competition}` in the path.
    Competition,
}

/// A case's project and its message, and the invite or competition its fixture made.
struct Setup {
    project: String,
    message: String,
    invite: Option<String>,
    competition: Option<String>,
}

async fn set_up(app: &TestApp, cast: &Cast, fixture: Fixture, public: bool, shared: &FixtureProject) -> Setup {
    let project = match fixture {
        Fixture::Shared => shared.clone(),
        Fixture::Fresh | Fixture::Invite => fixture_project(app, cast, public).await,
        Fixture::Competition => fixture_project(app, cast, true).await,
    };
    let mut setup = Setup { project: project.id, message: project.message, invite: None, competition: None };
    match fixture {
        Fixture::Shared | Fixture::Fresh => {}
        Fixture::Invite => {
            let uri = format!("/api/projects/{}/invites", setup.project);
            let body = json!({"email": cast.user(INVITEE).unwrap().email, "role": "VIEWER"});
            let invite = app.call(Method::POST, &uri, Some(&cast.admin.token), Some(body)).await;
            assert_eq!(invite.status, StatusCode::CREATED, "fixture invite: {}", invite.json);
            setup.invite = Some(invite.json["id"].as_str().unwrap().to_owned());
        }
        Fixture::Competition => {
            let uri = format!("/api/projects/{}/competition", setup.project);
            let body = json!({"title": "fixture"});
            let entered = app.call(Method::POST, &uri, Some(&cast.owner.token), Some(body)).await;
            assert_eq!(entered.status, StatusCode::CREATED, "fixture competition: {}", entered.json);
            setup.competition = Some(entered.json["id"].as_str().unwrap().to_owned());
            if !public {
                let uri = format!("/api/projects/{}", setup.project);
                let body = json!({"visibility": "PRIVATE"});
                let patch = app.call(Method::PATCH, &uri, Some(&cast.owner.token), Some(body)).await;
                assert_eq!(patch.status, StatusCode::OK, "fixture made private: {}", patch.json);
            }
        }
    }
    setup
}

/// The rows a call could touch: global counts and lists, and the case's project in full.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    projects: i64,
    sessions: i64,
    likes: i64,
    invites: i64,
    competitions: i64,
    /// Every user, by id.
    users: Vec<UserRow>,
    /// Every project but the case's, without ids (which new ones get at random), sorted: what
    /// a creation or a fork adds.
    others: Vec<OtherProject>,
    /// Every usage row, sorted.
    usage: Vec<UsageRow>,
    project: Option<ProjectRow>,
    /// (path, checksum), sorted by path.
    files: Vec<(String, String)>,
    messages: Vec<(String, String)>,
    /// (userId, role), sorted.
    collaborators: Vec<(String, String)>,
    /// The users who like the project, sorted.
    likers: Vec<String>,
    /// The project's invites, sorted.
    project_invites: Vec<InviteRow>,
    /// The project's competitions as (title, status), sorted.
    project_competitions: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct ProjectRow {
    name: String,
    description: Option<String>,
    visibility: String,
    user_id: String,
    view_count: i32,
    like_count: i32,
    fork_count: i32,
    updated_at: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct UserRow {
    id: String,
    token_balance: i32,
    context_used: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct OtherProject {
    owner: String,
    name: String,
    visibility: String,
    description: Option<String>,
    /// "path checksum", sorted by path.
    files: Vec<String>,
    messages: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct UsageRow {
    user_id: String,
    project_id: Option<String>,
    endpoint: String,
    model: String,
    tokens_used: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct InviteRow {
    from_user_id: String,
    to_user_id: String,
    role: String,
    status: String,
}

async fn snapshot(app: &TestApp, project: &str) -> Snapshot {
    // Counted views are part of the state; they reach the table in batches.
    app.flush_views().await;
    let pool = &app.pool;
    let (projects, sessions, likes, invites, competitions): (i64, i64, i64, i64, i64) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "Project"), (SELECT count(*) FROM "Session"),
                  (SELECT count(*) FROM "ProjectLike"), (SELECT count(*) FROM "CollaborationInvite"),
                  (SELECT count(*) FROM "Competition")"#,
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let users: Vec<UserRow> = sqlx::query_as(
        r#"SELECT "id", "tokenBalance" AS token_balance, "contextUsed" AS context_used FROM "User" ORDER BY "id""#,
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut others: Vec<OtherProject> = sqlx::query_as(
        r#"SELECT p."userId" AS owner, p."name", p."visibility", p."description",
                  ARRAY(SELECT f."path" || ' ' || f."checksum" FROM "ProjectFile" f
                        WHERE f."projectId" = p."id" ORDER BY f."path") AS files,
                  (SELECT count(*) FROM "Message" m WHERE m."projectId" = p."id") AS messages
           FROM "Project" p WHERE p."id" <> $1"#,
    )
    .bind(project)
    .fetch_all(pool)
    .await
    .unwrap();
    others.sort();
    let mut usage: Vec<UsageRow> = sqlx::query_as(
        r#"SELECT "userId" AS user_id, "projectId" AS project_id, "endpoint", "model", "tokensUsed" AS tokens_used
           FROM "TokenUsage""#,
    )
    .fetch_all(pool)
    .await
    .unwrap();
    usage.sort();
    let project_row: Option<ProjectRow> = sqlx::query_as(
        r#"SELECT "name", "description", "visibility", "userId" AS user_id,
                  "viewCount" AS view_count, "likeCount" AS like_count, "forkCount" AS fork_count,
                  "updatedAt"::text AS updated_at
           FROM "Project" WHERE "id" = $1"#,
    )
    .bind(project)
    .fetch_optional(pool)
    .await
    .unwrap();
    let rows = |sql: &'static str| sqlx::query_as::<_, (String, String)>(sql).bind(project).fetch_all(pool);
    let mut files = rows(r#"SELECT "path", "checksum" FROM "ProjectFile" WHERE "projectId" = $1"#).await.unwrap();
    files.sort();
    let mut messages = rows(r#"SELECT "role", "content" FROM "Message" WHERE "projectId" = $1"#).await.unwrap();
    messages.sort();
    let mut collaborators =
        rows(r#"SELECT "userId", "role" FROM "ProjectCollaborator" WHERE "projectId" = $1"#).await.unwrap();
    collaborators.sort();
    let mut project_competitions =
        rows(r#"SELECT "title", "status" FROM "Competition" WHERE "projectId" = $1"#).await.unwrap();
    project_competitions.sort();
    let likers: Vec<String> =
        sqlx::query_scalar(r#"SELECT "userId" FROM "ProjectLike" WHERE "projectId" = $1 ORDER BY "userId""#)
            .bind(project)
            .fetch_all(pool)
            .await
            .unwrap();
    let mut project_invites: Vec<InviteRow> = sqlx::query_as(
        r#"SELECT "fromUserId" AS from_user_id, "toUserId" AS to_user_id, "role", "status"
           FROM "CollaborationInvite" WHERE "projectId" = $1"#,
    )
    .bind(project)
    .fetch_all(pool)
    .await
    .unwrap();
    project_invites.sort();
    Snapshot {
        projects,
        sessions,
        likes,
        invites,
        competitions,
        users,
        others,
        usage,
        project: project_row,
        files,
        messages,
        collaborators,
        likers,
        project_invites,
        project_competitions,
    }
}

fn checksum(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// One call of the matrix, as an endpoint's `body`, `effect` and `check` see it.
struct Case<'a> {
    actor: Actor,
    level: Option<Level>,
    public: bool,
    project: &'a str,
    user: Option<&'a TestUser>,
    cast: &'a Cast,
}

impl Case<'_> {
    /// The signed-in caller's id (only asked of successful calls that need a session).
    fn me(&self) -> &str {
        &self.user.expect("a signed-in caller").id
    }
}

/// One row of the matrix.
struct Endpoint {
    method: Method,
    /// `{id}` stands for the project's id, `{message}` for its message's; `{owner}`, `{admin}` and `{viewer}` for those
    /// users' ids, `{self}` for the caller's own (`nobody` when anonymous); `{invite}` and
    /// `{competition}` for what the fixture made.
    path: &'static str,
    /// Tells apart rows with the same method and path.
    note: &'static str,
    needs: Needs,
    /// The status of a successful call.
    ok: StatusCode,
    /// The request body (each actor may write something of its own).
    body: fn(&Case) -> Option<Value>,
    /// What a successful call does to the snapshot.
    effect: fn(&mut Snapshot, &Case),
    /// A successful call may move the project's `updatedAt`.
    touches: bool,
    fixture: Fixture,
    /// Each case uses a session of its own, which a successful call revokes.
    revokes_session: bool,
    /// Further checks of a successful answer, given the database after it.
    check: fn(&Case, &TestResponse, &Snapshot),
}

impl Endpoint {
    fn name(&self) -> String {
        format!("{} {}{}", self.method, self.path, self.note)
    }
}

fn endpoint(method: Method, path: &'static str, needs: Needs, ok: StatusCode) -> Endpoint {
    Endpoint {
        method,
        path,
        note: "",
        needs,
        ok,
        body: |_| None,
        effect: |_, _| {},
        touches: false,
        fixture: Fixture::Shared,
        revokes_session: false,
        check: |_, _, _| {},
    }
}

/// `POST /api/usage`'s body, naming the case's project or none.
fn usage_body(case: &Case, with_project: bool) -> Option<Value> {
    let mut body = json!({
        "tokensUsed": USAGE_TOKENS, "contextUsed": USAGE_CONTEXT, "endpoint": USAGE_ENDPOINT, "model": USAGE_MODEL
    });
    if with_project {
        body["projectId"] = json!(case.project);
    }
    Some(body)
}

/// A recorded call: its usage row, and the caller's balance and context charged.
fn charge(snapshot: &mut Snapshot, case: &Case, project: Option<&str>) {
    let user = snapshot.users.iter_mut().find(|user| user.id == case.me()).unwrap();
    user.token_balance -= USAGE_TOKENS;
    user.context_used += USAGE_CONTEXT;
    snapshot.usage.push(UsageRow {
        user_id: case.me().to_owned(),
        project_id: project.map(str::to_owned),
        endpoint: USAGE_ENDPOINT.to_owned(),
        model: USAGE_MODEL.to_owned(),
        tokens_used: USAGE_TOKENS,
    });
    snapshot.usage.sort();
}

fn check_recorded(case: &Case, response: &TestResponse, after: &Snapshot) {
    let balance = after.users.iter().find(|user| user.id == case.me()).unwrap().token_balance;
    assert_eq!(response.json["tokenBalance"], balance);
    assert_eq!(response.json["usage"]["tokensUsed"], USAGE_TOKENS);
}

/// The fixture invite, answered by its invitee.
fn answer_invite(snapshot: &mut Snapshot, case: &Case, status: &str) {
    let invite = snapshot.project_invites.iter_mut().find(|invite| invite.to_user_id == case.me()).unwrap();
    invite.status = status.to_owned();
}

fn check_answered(case: &Case, response: &TestResponse, status: &str) {
    assert_eq!(response.json["status"], status);
    assert_eq!(response.json["projectId"], case.project);
    assert_eq!(response.json["fromUser"]["id"], case.cast.admin.id.as_str());
}

/// Every endpoint of the core API (issue 3) and of likes, forks, usage, discovery,
/// collaboration and competitions (issue 4).
///
/// To add an endpoint, add one row: the method, the path, what it `Needs`, its success
/// status, and — for writes — its body, the fixture it runs against and its `effect` on the
/// snapshot (extend `Snapshot` with any rows it touches). The rule and the loop need no change.
fn endpoints() -> Vec<Endpoint> {
    use Level::{Admin, Editor, Owner, Public};
    vec![
        Endpoint {
            check: |case, response, _| {
                assert_eq!(response.json["id"], case.project);
                assert_eq!(response.json["access"], case.level.unwrap().name());
                assert_eq!(response.json["files"][0]["path"], FILE_PATH);
                assert!(response.json["files"][0].get("content").is_none());
            },
            ..endpoint(Method::GET, "/api/projects/{id}", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            body: |case| Some(json!({"description": format!("set by {}", case.actor.label())})),
            effect: |snapshot, case| {
                snapshot.project.as_mut().unwrap().description = Some(format!("set by {}", case.actor.label()));
            },
            touches: true,
            check: |_, response, _| {
                assert!(response.json["description"].is_string());
            },
            ..endpoint(Method::PATCH, "/api/projects/{id}", Needs::Project(Admin), StatusCode::OK)
        },
        Endpoint {
            note: "visibility",
            body: |case| Some(json!({"visibility": if case.public { "PRIVATE" } else { "PUBLIC" }})),
            effect: |snapshot, case| {
                snapshot.project.as_mut().unwrap().visibility = (if case.public { "PRIVATE" } else { "PUBLIC" }).into();
            },
            touches: true,
            fixture: Fixture::Fresh,
            check: |case, response, _| {
                assert_eq!(response.json["visibility"], if case.public { "PRIVATE" } else { "PUBLIC" });
            },
            ..endpoint(Method::PATCH, "/api/projects/{id}", Needs::Project(Owner), StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, _| {
                snapshot.projects -= 1;
                snapshot.project = None;
                snapshot.files.clear();
                snapshot.messages.clear();
                snapshot.collaborators.clear();
            },
            fixture: Fixture::Fresh,
            ..endpoint(Method::DELETE, "/api/projects/{id}", Needs::Project(Owner), StatusCode::NO_CONTENT)
        },
        Endpoint {
            effect: |snapshot, _| snapshot.project.as_mut().unwrap().view_count += 1,
            check: |_, response, after| {
                assert_eq!(response.json["viewCount"], after.project.as_ref().unwrap().view_count);
            },
            ..endpoint(Method::POST, "/api/projects/{id}/view", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            check: |_, response, _| {
                let items = response.json["items"].as_array().unwrap();
                assert!(items.iter().any(|file| file["path"] == FILE_PATH));
                assert!(items.iter().all(|file| file.get("content").is_none()));
            },
            ..endpoint(Method::GET, "/api/projects/{id}/files", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            check: |_, response, _| {
                assert_eq!(response.json["path"], FILE_PATH);
                assert_eq!(response.json["content"], FILE_CONTENT);
            },
            ..endpoint(Method::GET, "/api/projects/{id}/files/src/index.html", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            body: |case| {
                let actor = case.actor.label();
                Some(json!({"operations": [
                    {"op": "upsert", "path": format!("by/{actor}.txt"), "content": format!("written by {actor}")}
                ]}))
            },
            effect: |snapshot, case| {
                let actor = case.actor.label();
                let file = (format!("by/{actor}.txt"), checksum(&format!("written by {actor}")));
                snapshot.files.push(file);
                snapshot.files.sort();
            },
            touches: true,
            check: |case, response, _| {
                let path = format!("by/{}.txt", case.actor.label());
                assert_eq!(response.json["created"], json!([path]));
            },
            ..endpoint(Method::PUT, "/api/projects/{id}/files", Needs::Project(Editor), StatusCode::OK)
        },
        Endpoint {
            body: |case| Some(json!({"role": "user", "content": format!("from {}", case.actor.label())})),
            effect: |snapshot, case| {
                snapshot.messages.push(("user".into(), format!("from {}", case.actor.label())));
                snapshot.messages.sort();
            },
            touches: true,
            ..endpoint(Method::POST, "/api/projects/{id}/messages", Needs::Project(Editor), StatusCode::CREATED)
        },
        Endpoint {
            check: |_, response, _| {
                let items = response.json["items"].as_array().unwrap();
                assert!(items.iter().any(|m| m["content"] == MESSAGE_CONTENT));
            },
            ..endpoint(Method::GET, "/api/projects/{id}/messages", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            check: |_, response, _| {
                assert_eq!(response.json["content"], MESSAGE_CONTENT);
                assert_eq!(response.json["truncated"], false);
            },
            ..endpoint(Method::GET, "/api/projects/{id}/messages/{message}", Needs::Project(Public), StatusCode::OK)
        },
        // The endpoints without a project: signed-in users only.
        Endpoint {
            check: |case, response, _| {
                // Own and shared projects are listed; a public project one is not a member
                // of is not.
                let listed = response.json["items"].as_array().unwrap().iter().any(|p| p["id"] == case.project);
                let member = case.level.is_some_and(|level| level >= Level::Viewer);
                assert_eq!(listed, member, "{:?} sees the project listed", case.actor);
            },
            ..endpoint(Method::GET, "/api/projects?limit=100", Needs::Session, StatusCode::OK)
        },
        Endpoint {
            body: |case| Some(json!({"name": format!("made by {}", case.actor.label()), "projectType": "website"})),
            effect: |snapshot, case| {
                snapshot.projects += 1;
                snapshot.others.push(OtherProject {
                    owner: case.me().to_owned(),
                    name: format!("made by {}", case.actor.label()),
                    visibility: "PRIVATE".into(),
                    description: None,
                    files: Vec::new(),
                    messages: 0,
                });
                snapshot.others.sort();
            },
            check: |case, response, _| {
                assert_eq!(response.json["owner"]["id"], case.me());
            },
            ..endpoint(Method::POST, "/api/projects", Needs::Session, StatusCode::CREATED)
        },
        Endpoint {
            check: |case, response, _| {
                assert_eq!(response.json["id"], case.me());
                assert!(response.json.get("password").is_none());
            },
            ..endpoint(Method::GET, "/api/auth/session", Needs::Session, StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, _| snapshot.sessions -= 1,
            revokes_session: true,
            ..endpoint(Method::POST, "/api/auth/logout", Needs::Session, StatusCode::NO_CONTENT)
        },
        // To the same password, so later rows still log in with it. Each actor holds one
        // session here (the logout row's are gone), the one that asks: none is ended.
        Endpoint {
            body: |case| {
                let password = case.user.map_or("nobody-password", |user| user.password.as_str());
                Some(json!({"currentPassword": password, "newPassword": password}))
            },
            ..endpoint(Method::PUT, "/api/auth/password", Needs::Session, StatusCode::NO_CONTENT)
        },
        // Issue 4. Likes and forks: read access, and a signed-in caller.
        Endpoint {
            effect: |snapshot, case| {
                let me = case.me().to_owned();
                if !snapshot.likers.contains(&me) {
                    snapshot.likers.push(me);
                    snapshot.likers.sort();
                    snapshot.likes += 1;
                    snapshot.project.as_mut().unwrap().like_count += 1;
                }
            },
            check: |_, response, after| {
                assert_eq!(response.json["liked"], true);
                assert_eq!(response.json["likeCount"], after.project.as_ref().unwrap().like_count);
            },
            ..endpoint(Method::PUT, "/api/projects/{id}/like", Needs::SignedIn(Public), StatusCode::OK)
        },
        // After the row above, so each actor who may unlikes a like of their own.
        Endpoint {
            effect: |snapshot, case| {
                if let Some(at) = snapshot.likers.iter().position(|liker| liker == case.me()) {
                    snapshot.likers.remove(at);
                    snapshot.likes -= 1;
                    snapshot.project.as_mut().unwrap().like_count -= 1;
                }
            },
            check: |_, response, after| {
                assert_eq!(response.json["liked"], false);
                assert_eq!(response.json["likeCount"], after.project.as_ref().unwrap().like_count);
            },
            ..endpoint(Method::DELETE, "/api/projects/{id}/like", Needs::SignedIn(Public), StatusCode::OK)
        },
        Endpoint {
            body: |_| Some(json!({})),
            effect: |snapshot, case| {
                let project = snapshot.project.as_mut().unwrap();
                project.fork_count += 1;
                // A new PRIVATE project of the caller: the metadata and every file, no messages.
                snapshot.others.push(OtherProject {
                    owner: case.me().to_owned(),
                    name: format!("{} (fork)", project.name),
                    visibility: "PRIVATE".into(),
                    description: project.description.clone(),
                    files: snapshot.files.iter().map(|(path, sum)| format!("{path} {sum}")).collect(),
                    messages: 0,
                });
                snapshot.others.sort();
                snapshot.projects += 1;
            },
            check: |case, response, _| {
                assert_ne!(response.json["id"], case.project);
                assert_eq!(response.json["owner"]["id"], case.me());
                assert_eq!(response.json["visibility"], "PRIVATE");
                assert_eq!(response.json["forkCount"], 0);
            },
            ..endpoint(Method::POST, "/api/projects/{id}/fork", Needs::SignedIn(Public), StatusCode::CREATED)
        },
        // Usage: a signed-in caller; a projectId must be a project they can read.
        Endpoint {
            note: " without a projectId",
            body: |case| usage_body(case, false),
            effect: |snapshot, case| charge(snapshot, case, None),
            check: |case, response, after| {
                check_recorded(case, response, after);
                assert!(response.json["usage"]["projectId"].is_null());
            },
            ..endpoint(Method::POST, "/api/usage", Needs::Session, StatusCode::CREATED)
        },
        Endpoint {
            note: " with the project's id",
            body: |case| usage_body(case, true),
            effect: |snapshot, case| charge(snapshot, case, Some(case.project)),
            check: |case, response, after| {
                check_recorded(case, response, after);
                assert_eq!(response.json["usage"]["projectId"], case.project);
            },
            ..endpoint(Method::POST, "/api/usage", Needs::SessionThen(Public), StatusCode::CREATED)
        },
        Endpoint {
            check: |case, response, after| {
                let groups = response.json["groups"].as_array().unwrap();
                let requests: i64 = groups.iter().map(|group| group["requests"].as_i64().unwrap()).sum();
                let recorded = after.usage.iter().filter(|usage| usage.user_id == case.me()).count();
                assert_eq!(requests, i64::try_from(recorded).unwrap(), "the summary counts every call");
            },
            ..endpoint(Method::GET, "/api/usage/summary", Needs::Session, StatusCode::OK)
        },
        Endpoint {
            check: |case, response, after| {
                let items = response.json["items"].as_array().unwrap();
                let recorded = after.usage.iter().filter(|usage| usage.user_id == case.me()).count();
                assert_eq!(items.len(), recorded.min(20));
            },
            ..endpoint(Method::GET, "/api/usage/recent", Needs::Session, StatusCode::OK)
        },
        // Discovery: anyone; PUBLIC projects only.
        Endpoint {
            check: |case, response, _| {
                assert!(response.json["nextCursor"].is_null(), "every public project fits on one page");
                let listed = response.json["items"].as_array().unwrap().iter().any(|p| p["id"] == case.project);
                assert_eq!(listed, case.public, "the project is discoverable");
            },
            ..endpoint(Method::GET, "/api/discover?limit=100", Needs::Anyone, StatusCode::OK)
        },
        // Collaboration.
        Endpoint {
            body: |case| Some(json!({"email": case.cast.outsider.email, "role": "VIEWER"})),
            effect: |snapshot, case| {
                snapshot.invites += 1;
                snapshot.project_invites.push(InviteRow {
                    from_user_id: case.me().to_owned(),
                    to_user_id: case.cast.outsider.id.clone(),
                    role: "VIEWER".into(),
                    status: "PENDING".into(),
                });
                snapshot.project_invites.sort();
            },
            // A second invite of the same user to the same project would be 409.
            fixture: Fixture::Fresh,
            check: |case, response, _| {
                assert_eq!(response.json["projectId"], case.project);
                assert_eq!(response.json["fromUser"]["id"], case.me());
                assert_eq!(response.json["status"], "PENDING");
                assert_eq!(response.json["role"], "VIEWER");
            },
            ..endpoint(Method::POST, "/api/projects/{id}/invites", Needs::Project(Admin), StatusCode::CREATED)
        },
        Endpoint {
            check: |_, response, _| assert!(response.json["items"].is_array()),
            ..endpoint(Method::GET, "/api/invites", Needs::Session, StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, case| {
                answer_invite(snapshot, case, "ACCEPTED");
                snapshot.collaborators.push((case.me().to_owned(), "VIEWER".into()));
                snapshot.collaborators.sort();
            },
            fixture: Fixture::Invite,
            check: |case, response, _| check_answered(case, response, "ACCEPTED"),
            ..endpoint(Method::POST, "/api/invites/{invite}/accept", Needs::Invitee, StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, case| answer_invite(snapshot, case, "DECLINED"),
            fixture: Fixture::Invite,
            check: |case, response, _| check_answered(case, response, "DECLINED"),
            ..endpoint(Method::POST, "/api/invites/{invite}/decline", Needs::Invitee, StatusCode::OK)
        },
        Endpoint {
            check: |case, response, after| {
                let items = response.json["items"].as_array().unwrap();
                assert_eq!(items[0]["userId"], case.cast.owner.id.as_str());
                assert_eq!(items[0]["role"], "OWNER");
                assert_eq!(items.len(), 1 + after.collaborators.len());
                assert!(items.iter().all(|member| member.get("email").is_none()));
            },
            ..endpoint(Method::GET, "/api/projects/{id}/members", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            body: |_| Some(json!({"role": "VIEWER"})),
            check: |case, response, _| {
                assert_eq!(response.json["userId"], case.cast.viewer.id.as_str());
                assert_eq!(response.json["role"], "VIEWER");
            },
            ..endpoint(Method::PATCH, "/api/projects/{id}/members/{viewer}", Needs::Project(Admin), StatusCode::OK)
        },
        Endpoint {
            body: |_| Some(json!({"role": "VIEWER"})),
            ..endpoint(Method::PATCH, "/api/projects/{id}/members/{owner}", Needs::Nobody, StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, case| snapshot.collaborators.retain(|(user, _)| *user != case.cast.admin.id),
            fixture: Fixture::Fresh,
            ..endpoint(
                Method::DELETE,
                "/api/projects/{id}/members/{admin}",
                Needs::Project(Admin),
                StatusCode::NO_CONTENT,
            )
        },
        Endpoint {
            effect: |snapshot, case| snapshot.collaborators.retain(|(user, _)| user != case.me()),
            fixture: Fixture::Fresh,
            ..endpoint(Method::DELETE, "/api/projects/{id}/members/{self}", Needs::Membership, StatusCode::NO_CONTENT)
        },
        // Competitions.
        Endpoint {
            body: |_| Some(json!({"title": "t"})),
            effect: |snapshot, _| {
                snapshot.competitions += 1;
                snapshot.project_competitions.push(("t".into(), "ACTIVE".into()));
            },
            check: |case, response, _| {
                assert_eq!(response.json["projectId"], case.project);
                assert_eq!(response.json["status"], "ACTIVE");
            },
            ..endpoint(Method::POST, "/api/projects/{id}/competition", Needs::PublicOnly(Owner), StatusCode::CREATED)
        },
        // After the row above, which entered the PUBLIC project.
        Endpoint {
            check: |case, response, after| {
                assert!(response.json["nextCursor"].is_null(), "every competition fits on one page");
                let items = response.json["items"].as_array().unwrap();
                let listed = items.iter().any(|competition| competition["projectId"] == case.project);
                let entered = !after.project_competitions.is_empty();
                assert_eq!(listed, case.public && entered, "the project's competition is listed");
            },
            ..endpoint(Method::GET, "/api/competitions?limit=100", Needs::Anyone, StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, _| snapshot.project_competitions[0].1 = "CLOSED".into(),
            fixture: Fixture::Competition,
            check: |case, response, _| {
                assert_eq!(response.json["projectId"], case.project);
                assert_eq!(response.json["status"], "CLOSED");
            },
            ..endpoint(Method::POST, "/api/competitions/{competition}/close", Needs::Project(Owner), StatusCode::OK)
        },
    ]
}

/// The path of one case, its placeholders filled in.
fn uri(endpoint: &Endpoint, setup: &Setup, case: &Case) -> String {
    let cast = case.cast;
    let mut uri = endpoint
        .path
        .replace("{id}", &setup.project)
        .replace("{message}", &setup.message)
        .replace("{owner}", &cast.owner.id)
        .replace("{admin}", &cast.admin.id)
        .replace("{viewer}", &cast.viewer.id)
        .replace("{self}", case.user.map_or("nobody", |user| user.id.as_str()));
    if let Some(invite) = &setup.invite {
        uri = uri.replace("{invite}", invite);
    }
    if let Some(competition) = &setup.competition {
        uri = uri.replace("{competition}", competition);
    }
    assert!(!uri.contains('{'), "{}: a placeholder its fixture does not fill", endpoint.name());
    uri
}

/// Runs every endpoint against every actor on one project; returns the failed cases.
async fn run_matrix(app: &TestApp, cast: &Cast, public: bool) -> Vec<String> {
    let visibility = if public { "PUBLIC" } else { "PRIVATE" };
    let shared_project = fixture_project(app, cast, public).await;
    let mut failures = Vec::new();
    for endpoint in endpoints() {
        for actor in ACTORS {
            let setup = set_up(app, cast, endpoint.fixture, public, &shared_project).await;
            let user = cast.user(actor);
            let token = match user {
                Some(user) if endpoint.revokes_session => {
                    let login = app.login(&user.email, &user.password).await;
                    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
                    Some(login.json["token"].as_str().unwrap().to_owned())
                }
                Some(user) => Some(user.token.clone()),
                None => None,
            };
            let case = Case { actor, level: actor.level(public), public, project: &setup.project, user, cast };
            let uri = uri(&endpoint, &setup, &case);
            let what = format!("{} as {} on a {visibility} project", endpoint.name(), actor.label());

            let before = snapshot(app, &setup.project).await;
            let response = app.call(endpoint.method.clone(), &uri, token.as_deref(), (endpoint.body)(&case)).await;
            let after = snapshot(app, &setup.project).await;

            match expected(endpoint.needs, actor, public) {
                Ok(()) => {
                    if response.status != endpoint.ok {
                        failures.push(format!(
                            "{what}: expected {}, got {} {}",
                            endpoint.ok, response.status, response.json
                        ));
                        continue;
                    }
                    (endpoint.check)(&case, &response, &after);
                    let mut wanted = before.clone();
                    (endpoint.effect)(&mut wanted, &case);
                    if endpoint.touches {
                        if let (Some(wanted), Some(after)) = (&mut wanted.project, &after.project) {
                            wanted.updated_at.clone_from(&after.updated_at);
                        }
                    }
                    if after != wanted {
                        failures.push(format!("{what}: database is\n  {after:?}\nexpected\n  {wanted:?}"));
                    }
                    if endpoint.revokes_session {
                        let reuse = app.call(Method::GET, "/api/auth/session", token.as_deref(), None).await;
                        assert_eq!(reuse.status, StatusCode::UNAUTHORIZED, "{what}: revoked");
                    }
                }
                Err((status, code)) => {
                    if response.status != status {
                        failures.push(format!(
                            "{what}: expected {status} {code}, got {} {}",
                            response.status, response.json
                        ));
                    } else {
                        assert_eq!(response.error_code(), code, "{what}");
                    }
                    if after != before {
                        failures.push(format!(
                            "{what}: a refused call changed the database from\n  {before:?}\nto\n  {after:?}"
                        ));
                    }
                }
            }
        }
    }
    failures
}

#[tokio::test]
async fn every_endpoint_against_every_actor() {
    // The fixtures send far more invites than one sender may in a window (that limit has tests
    // of its own in collab.rs).
    let app = TestApp::with_settings(&[("collab.invites_per_window", "100000")]).await;
    let cast = Cast::new(&app).await;
    let mut failures = run_matrix(&app, &cast, false).await;
    failures.extend(run_matrix(&app, &cast, true).await);
    assert!(failures.is_empty(), "{} access-matrix case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// The rule itself, on the cases the policy spells out, so that a slip in it cannot make the
/// matrix pass vacuously.
#[test]
fn the_rule_matches_the_written_policy() {
    use Level::{Admin, Editor, Owner, Public};
    let forbidden = Err(FORBIDDEN);
    let not_found = Err(NOT_FOUND);
    let unauthorized = Err(UNAUTHORIZED);
    for public in [false, true] {
        assert_eq!(expected(Needs::Project(Owner), Actor::Owner, public), Ok(()));
        assert_eq!(expected(Needs::Project(Owner), Actor::Admin, public), forbidden);
        assert_eq!(expected(Needs::Project(Admin), Actor::Admin, public), Ok(()));
        assert_eq!(expected(Needs::Project(Admin), Actor::Editor, public), forbidden);
        assert_eq!(expected(Needs::Project(Editor), Actor::Editor, public), Ok(()));
        assert_eq!(expected(Needs::Project(Editor), Actor::Viewer, public), forbidden);
        assert_eq!(expected(Needs::Project(Public), Actor::Viewer, public), Ok(()));
        assert_eq!(expected(Needs::Session, Actor::Stranger, public), Ok(()));
        assert_eq!(expected(Needs::Session, Actor::Anonymous, public), unauthorized);
    }
    for actor in [Actor::Stranger, Actor::Anonymous] {
        for needed in [Public, Editor, Admin, Owner] {
            assert_eq!(expected(Needs::Project(needed), actor, false), not_found);
        }
        assert_eq!(expected(Needs::Project(Public), actor, true), Ok(()));
    }
    assert_eq!(expected(Needs::Project(Editor), Actor::Stranger, true), forbidden);
    assert_eq!(expected(Needs::Project(Editor), Actor::Anonymous, true), unauthorized);
}

/// Issue 4's statuses as the issue writes them, "PRIVATE/PUBLIC" for the owner, ADMIN,
/// EDITOR, VIEWER, signed-in stranger and anonymous caller, against what the rule makes of
/// each row's `Needs`.
#[test]
fn the_rule_gives_issue_4s_table() {
    const WRITTEN: [(&str, [&str; 6]); 20] = [
        ("PUT /api/projects/{id}/like", ["200/200", "200/200", "200/200", "200/200", "404/200", "404/401"]),
        ("DELETE /api/projects/{id}/like", ["200/200", "200/200", "200/200", "200/200", "404/200", "404/401"]),
        ("POST /api/projects/{id}/fork", ["201/201", "201/201", "201/201", "201/201", "404/201", "404/401"]),
        ("POST /api/usage without a projectId", ["201/201", "201/201", "201/201", "201/201", "201/201", "401/401"]),
        ("POST /api/usage with the project's id", ["201/201", "201/201", "201/201", "201/201", "404/201", "401/401"]),
        ("GET /api/usage/summary", ["200/200", "200/200", "200/200", "200/200", "200/200", "401/401"]),
        ("GET /api/usage/recent", ["200/200", "200/200", "200/200", "200/200", "200/200", "401/401"]),
        ("GET /api/discover?limit=100", ["200/200", "200/200", "200/200", "200/200", "200/200", "200/200"]),
        ("POST /api/projects/{id}/invites", ["201/201", "201/201", "403/403", "403/403", "404/403", "404/401"]),
        ("GET /api/projects/{id}/members", ["200/200", "200/200", "200/200", "200/200", "404/200", "404/200"]),
        (
            "PATCH /api/projects/{id}/members/{viewer}",
            ["200/200", "200/200", "403/403", "403/403", "404/403", "404/401"],
        ),
        (
            "PATCH /api/projects/{id}/members/{owner}",
            ["403/403", "403/403", "403/403", "403/403", "404/403", "404/401"],
        ),
        (
            "DELETE /api/projects/{id}/members/{admin}",
            ["204/204", "204/204", "403/403", "403/403", "404/403", "404/401"],
        ),
        (
            "DELETE /api/projects/{id}/members/{self}",
            ["403/403", "204/204", "204/204", "204/204", "404/404", "404/401"],
        ),
        ("POST /api/projects/{id}/competition", ["422/201", "403/403", "403/403", "403/403", "404/403", "404/401"]),
        (
            "POST /api/competitions/{competition}/close",
            ["200/200", "403/403", "403/403", "403/403", "404/403", "404/401"],
        ),
        ("GET /api/invites", ["200/200", "200/200", "200/200", "200/200", "200/200", "401/401"]),
        ("GET /api/competitions?limit=100", ["200/200", "200/200", "200/200", "200/200", "200/200", "200/200"]),
        ("POST /api/invites/{invite}/accept", ["404/404", "404/404", "404/404", "404/404", "200/200", "401/401"]),
        ("POST /api/invites/{invite}/decline", ["404/404", "404/404", "404/404", "404/404", "200/200", "401/401"]),
    ];
    const COLUMNS: [Actor; 6] =
        [Actor::Owner, Actor::Admin, Actor::Editor, Actor::Viewer, Actor::Stranger, Actor::Anonymous];
    let endpoints = endpoints();
    for (name, row) in WRITTEN {
        let matching: Vec<&Endpoint> = endpoints.iter().filter(|endpoint| endpoint.name() == name).collect();
        assert_eq!(matching.len(), 1, "{name}: one row of the matrix");
        let endpoint = matching[0];
        for (actor, written) in COLUMNS.into_iter().zip(row) {
            let status = |public| match expected(endpoint.needs, actor, public) {
                Ok(()) => endpoint.ok.as_u16(),
                Err((status, _)) => status.as_u16(),
            };
            let ruled = format!("{}/{}", status(false), status(true));
            assert_eq!(ruled, written, "{name} as {}", actor.label());
        }
    }
}
