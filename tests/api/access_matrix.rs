//! The access-control matrix (issue 3): every endpoint of the core API against every actor,
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
    /// Any signed-in user; no project involved.
    Session,
    /// At least this access to the project.
    Project(Level),
}

/// The rule the whole matrix follows: Ok(()) when the call must succeed, else the status
/// and error code it must be refused with.
fn expected(needs: Needs, actor: Actor, public: bool) -> Result<(), (StatusCode, &'static str)> {
    const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "not_found");
    const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "unauthorized");
    const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "forbidden");
    match needs {
        Needs::Session if actor == Actor::Anonymous => Err(UNAUTHORIZED),
        Needs::Session => Ok(()),
        Needs::Project(needed) => match actor.level(public) {
            // A private project does not exist for non-members, signed in or not.
            None => Err(NOT_FOUND),
            Some(level) if level >= needed => Ok(()),
            // Signing in could help an anonymous caller on a public project.
            Some(_) if actor == Actor::Anonymous => Err(UNAUTHORIZED),
            // A member, or a signed-in reader of a public project, lacking the right.
            Some(_) => Err(FORBIDDEN),
        },
    }
}

/// The signed-in actors.
struct Cast {
    owner: TestUser,
    admin: TestUser,
    editor: TestUser,
    viewer: TestUser,
    stranger: TestUser,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        Self {
            owner: app.user("Owner").await,
            admin: app.user("Admin").await,
            editor: app.user("Editor").await,
            viewer: app.user("Viewer").await,
            stranger: app.user("Stranger").await,
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

/// A project with one ADMIN, one EDITOR and one VIEWER, one file and one message.
async fn fixture_project(app: &TestApp, cast: &Cast, public: bool) -> String {
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
    id
}

/// The rows a call could touch: global counts, and the fixture project in full.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    projects: i64,
    users: i64,
    sessions: i64,
    project: Option<ProjectRow>,
    /// (path, checksum), sorted by path.
    files: Vec<(String, String)>,
    messages: Vec<(String, String)>,
    collaborators: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct ProjectRow {
    name: String,
    description: Option<String>,
    visibility: String,
    user_id: String,
    view_count: i32,
    like_count: i32,
    updated_at: String,
}

async fn snapshot(app: &TestApp, project: &str) -> Snapshot {
    let (projects, users, sessions): (i64, i64, i64) = sqlx::query_as(
        r#"SELECT (SELECT count(*) FROM "Project"), (SELECT count(*) FROM "User"),
                  (SELECT count(*) FROM "Session")"#,
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let project_row: Option<ProjectRow> = sqlx::query_as(
        r#"SELECT "name", "description", "visibility", "userId" AS user_id,
                  "viewCount" AS view_count, "likeCount" AS like_count,
                  "updatedAt"::text AS updated_at
           FROM "Project" WHERE "id" = $1"#,
    )
    .bind(project)
    .fetch_optional(&app.pool)
    .await
    .unwrap();
    let rows = |sql: &'static str| sqlx::query_as::<_, (String, String)>(sql).bind(project).fetch_all(&app.pool);
    let mut files = rows(r#"SELECT "path", "checksum" FROM "ProjectFile" WHERE "projectId" = $1"#).await.unwrap();
    files.sort();
    let mut messages = rows(r#"SELECT "role", "content" FROM "Message" WHERE "projectId" = $1"#).await.unwrap();
    messages.sort();
    let mut collaborators =
        rows(r#"SELECT "userId", "role" FROM "ProjectCollaborator" WHERE "projectId" = $1"#).await.unwrap();
    collaborators.sort();
    Snapshot { projects, users, sessions, project: project_row, files, messages, collaborators }
}

fn checksum(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// One call of the matrix, as an endpoint's `check` sees it.
struct Case<'a> {
    actor: Actor,
    level: Option<Level>,
    project: &'a str,
    user: Option<&'a TestUser>,
}

/// One row of the matrix.
struct Endpoint {
    method: Method,
    /// `{id}` stands for the project's id.
    path: &'static str,
    needs: Needs,
    /// The status of a successful call.
    ok: StatusCode,
    /// The request body, given the actor's label (so each actor writes something of its own).
    body: fn(&str) -> Option<Value>,
    /// What a successful call does to the snapshot, given the actor's label.
    effect: fn(&mut Snapshot, &str),
    /// A successful call may move the project's `updatedAt`.
    touches: bool,
    /// Each case gets a project of its own: for calls that destroy it.
    own_project: bool,
    /// Each case uses a session of its own, which a successful call revokes.
    revokes_session: bool,
    /// Further checks of a successful answer.
    check: fn(&Case, &TestResponse),
}

fn endpoint(method: Method, path: &'static str, needs: Needs, ok: StatusCode) -> Endpoint {
    Endpoint {
        method,
        path,
        needs,
        ok,
        body: |_| None,
        effect: |_, _| {},
        touches: false,
        own_project: false,
        revokes_session: false,
        check: |_, _| {},
    }
}

/// Every endpoint of the core API.
///
/// To extend the matrix with issue 4's endpoints (likes, forks, invites, members,
/// competition, usage), add one row each: the method, the path, what it `Needs`, its success
/// status, and — for writes — its body and its `effect` on the snapshot (extend `Snapshot`
/// with the rows it touches, e.g. likes or invites). The rule and the loop need no change.
fn endpoints() -> Vec<Endpoint> {
    use Level::{Admin, Editor, Owner, Public};
    vec![
        Endpoint {
            check: |case, response| {
                assert_eq!(response.json["id"], case.project);
                assert_eq!(response.json["access"], case.level.unwrap().name());
                assert_eq!(response.json["files"][0]["path"], FILE_PATH);
                assert!(response.json["files"][0].get("content").is_none());
            },
            ..endpoint(Method::GET, "/api/projects/{id}", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            body: |actor| Some(json!({"description": format!("set by {actor}")})),
            effect: |snapshot, actor| {
                snapshot.project.as_mut().unwrap().description = Some(format!("set by {actor}"));
            },
            touches: true,
            check: |_, response| {
                assert!(response.json["description"].is_string());
            },
            ..endpoint(Method::PATCH, "/api/projects/{id}", Needs::Project(Admin), StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, _| {
                snapshot.projects -= 1;
                snapshot.project = None;
                snapshot.files.clear();
                snapshot.messages.clear();
                snapshot.collaborators.clear();
            },
            own_project: true,
            ..endpoint(Method::DELETE, "/api/projects/{id}", Needs::Project(Owner), StatusCode::NO_CONTENT)
        },
        Endpoint {
            effect: |snapshot, _| snapshot.project.as_mut().unwrap().view_count += 1,
            check: |_, response| assert!(response.json["viewCount"].as_i64().unwrap() >= 1),
            ..endpoint(Method::POST, "/api/projects/{id}/view", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            check: |_, response| {
                let items = response.json["items"].as_array().unwrap();
                assert!(items.iter().any(|file| file["path"] == FILE_PATH));
                assert!(items.iter().all(|file| file.get("content").is_none()));
            },
            ..endpoint(Method::GET, "/api/projects/{id}/files", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            check: |_, response| {
                assert_eq!(response.json["path"], FILE_PATH);
                assert_eq!(response.json["content"], FILE_CONTENT);
            },
            ..endpoint(Method::GET, "/api/projects/{id}/files/src/index.html", Needs::Project(Public), StatusCode::OK)
        },
        Endpoint {
            body: |actor| {
                Some(json!({"operations": [
                    {"op": "upsert", "path": format!("by/{actor}.txt"), "content": format!("written by {actor}")}
                ]}))
            },
            effect: |snapshot, actor| {
                let file = (format!("by/{actor}.txt"), checksum(&format!("written by {actor}")));
                snapshot.files.push(file);
                snapshot.files.sort();
            },
            touches: true,
            check: |case, response| {
                let path = format!("by/{}.txt", case.actor.label());
                assert_eq!(response.json["created"], json!([path]));
            },
            ..endpoint(Method::PUT, "/api/projects/{id}/files", Needs::Project(Editor), StatusCode::OK)
        },
        Endpoint {
            body: |actor| Some(json!({"role": "user", "content": format!("from {actor}")})),
            effect: |snapshot, actor| {
                snapshot.messages.push(("user".into(), format!("from {actor}")));
                snapshot.messages.sort();
            },
            touches: true,
            ..endpoint(Method::POST, "/api/projects/{id}/messages", Needs::Project(Editor), StatusCode::CREATED)
        },
        Endpoint {
            check: |_, response| {
                let items = response.json["items"].as_array().unwrap();
                assert!(items.iter().any(|m| m["content"] == MESSAGE_CONTENT));
            },
            ..endpoint(Method::GET, "/api/projects/{id}/messages", Needs::Project(Public), StatusCode::OK)
        },
        // The endpoints without a project: signed-in users only.
        Endpoint {
            check: |case, response| {
                // Own and shared projects are listed; a public project one is not a member
                // of is not.
                let listed = response.json["items"].as_array().unwrap().iter().any(|p| p["id"] == case.project);
                let member = case.level.is_some_and(|level| level >= Level::Viewer);
                assert_eq!(listed, member, "{:?} sees the project listed", case.actor);
            },
            ..endpoint(Method::GET, "/api/projects?limit=100", Needs::Session, StatusCode::OK)
        },
        Endpoint {
            body: |actor| Some(json!({"name": format!("made by {actor}"), "projectType": "website"})),
            effect: |snapshot, _| snapshot.projects += 1,
            check: |case, response| {
                assert_eq!(response.json["owner"]["id"], case.user.unwrap().id.as_str());
            },
            ..endpoint(Method::POST, "/api/projects", Needs::Session, StatusCode::CREATED)
        },
        Endpoint {
            check: |case, response| {
                assert_eq!(response.json["id"], case.user.unwrap().id.as_str());
                assert!(response.json.get("password").is_none());
            },
            ..endpoint(Method::GET, "/api/auth/session", Needs::Session, StatusCode::OK)
        },
        Endpoint {
            effect: |snapshot, _| snapshot.sessions -= 1,
            revokes_session: true,
            ..endpoint(Method::POST, "/api/auth/logout", Needs::Session, StatusCode::NO_CONTENT)
        },
    ]
}

/// Runs every endpoint against every actor on one project; returns the failed cases.
async fn run_matrix(app: &TestApp, cast: &Cast, public: bool) -> Vec<String> {
    let visibility = if public { "PUBLIC" } else { "PRIVATE" };
    let shared_project = fixture_project(app, cast, public).await;
    let mut failures = Vec::new();
    for endpoint in endpoints() {
        for actor in ACTORS {
            let project =
                if endpoint.own_project { fixture_project(app, cast, public).await } else { shared_project.clone() };
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
            let uri = endpoint.path.replace("{id}", &project);
            let what = format!("{} {} as {} on a {visibility} project", endpoint.method, endpoint.path, actor.label());

            let before = snapshot(app, &project).await;
            let response =
                app.call(endpoint.method.clone(), &uri, token.as_deref(), (endpoint.body)(actor.label())).await;
            let after = snapshot(app, &project).await;

            match expected(endpoint.needs, actor, public) {
                Ok(()) => {
                    if response.status != endpoint.ok {
                        failures.push(format!(
                            "{what}: expected {}, got {} {}",
                            endpoint.ok, response.status, response.json
                        ));
                        continue;
                    }
                    let case = Case { actor, level: actor.level(public), project: &project, user };
                    (endpoint.check)(&case, &response);
                    let mut wanted = before.clone();
                    (endpoint.effect)(&mut wanted, actor.label());
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
    let app = TestApp::new().await;
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
    let forbidden = Err((StatusCode::FORBIDDEN, "forbidden"));
    let not_found = Err((StatusCode::NOT_FOUND, "not_found"));
    let unauthorized = Err((StatusCode::UNAUTHORIZED, "unauthorized"));
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
