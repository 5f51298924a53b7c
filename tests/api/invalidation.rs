//! Every write of the API, seen from a second instance. For each write operation a scenario
//! warms instance B's cache with the reads a user would see stale, writes through instance A
//! (same database, same Redis namespace), and then requires B to answer with the new state:
//! the write's invalidation must reach other instances, not just the one that wrote. A last
//! test keeps the table complete against the OpenAPI document.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::Router;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use vibing2::api::WRITE_ROUTES;
use vibing2::service::invalidation::Write;

use crate::support::{self, TestApp, TestResponse, TestUser, ADMIN_TOKEN};

/// How soon an invalidation must reach another instance: one pub/sub message on loopback.
const PUBSUB: Duration = Duration::from_secs(1);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Setup, not the property under test: a generous bound for B's subscription to come up.
const SUBSCRIPTION_UP: Duration = Duration::from_secs(10);

/// A step through instance A; its result is the response body.
type Step = for<'w> fn(&'w World) -> BoxFuture<'w, Value>;

/// One write operation: what it needs, the write itself, and what must be fresh after it.
struct Scenario {
    /// The test that runs it (see `scenario_tests!`).
    name: &'static str,
    /// The operation as the OpenAPI document names it.
    method: &'static str,
    path: &'static str,
    /// Makes what the write needs, through A, before B is warmed.
    setup: Option<Step>,
    /// The write, through A, its status asserted.
    write: Step,
    /// What a user would see stale through B if the write's invalidation did not reach it.
    reads: fn(&World) -> Vec<Read>,
    /// How long B may take to answer every read with the new state.
    fresh_within: Duration,
}

/// One entry per write operation of the API.
fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "signup",
            method: "POST",
            path: "/api/auth/signup",
            setup: None,
            write: |w| Box::pin(w.through_a(Method::POST, "/api/auth/signup", Who::Anonymous, Some(newcomer()), 201)),
            // Nothing is cached for a new account; B must let it in. (The warm-up login fails
            // once, well under the lockout's five failures.)
            reads: |_| {
                vec![Read::post("/api/auth/login", newcomer_credentials(), Expect::at("/user/name", "Newcomer"))]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "login",
            method: "POST",
            path: "/api/auth/login",
            setup: None,
            write: |w| Box::pin(owner_logs_in_again(w)),
            // The token is new, so B has nothing to warm: it must simply accept it.
            reads: |w| {
                vec![Read::get(Who::Noted(NEW_SESSION), "/api/auth/session", Expect::at("/id", w.owner.id.as_str()))]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "logout",
            method: "POST",
            path: "/api/auth/logout",
            setup: None,
            write: |w| Box::pin(w.through_a(Method::POST, "/api/auth/logout", Who::Owner, None, 204)),
            reads: |_| {
                vec![
                    Read::get(Who::Owner, "/api/auth/session", Expect::Status(StatusCode::UNAUTHORIZED)),
                    Read::get(Who::Owner, "/api/projects", Expect::Status(StatusCode::UNAUTHORIZED)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "change_password",
            method: "PUT",
            path: "/api/auth/password",
            setup: Some(|w| Box::pin(owner_logs_in_again(w))),
            write: |w| {
                let change = json!({"currentPassword": w.owner.password, "newPassword": "a-new-password"});
                Box::pin(w.through_a(Method::PUT, "/api/auth/password", Who::Owner, Some(change), 204))
            },
            reads: |_| {
                vec![Read::get(Who::Noted(NEW_SESSION), "/api/auth/session", Expect::Status(StatusCode::UNAUTHORIZED))]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "create_project",
            method: "POST",
            path: "/api/projects",
            setup: None,
            write: |w| {
                let body = json!({"name": "Made through A", "projectType": "website", "visibility": "PUBLIC"});
                Box::pin(w.through_a(Method::POST, "/api/projects", Who::Owner, Some(body), 201))
            },
            reads: |_| {
                vec![
                    Read::get(Who::Owner, "/api/projects", Expect::listed("name", "Made through A", true)),
                    Read::get(Who::Anonymous, "/api/discover", Expect::listed("name", "Made through A", true)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "update_project",
            method: "PATCH",
            path: "/api/projects/{id}",
            setup: None,
            write: |w| {
                let body = json!({"name": "Renamed through A", "description": "New words"});
                Box::pin(w.through_a(Method::PATCH, w.at(""), Who::Owner, Some(body), 200))
            },
            reads: |w| {
                vec![
                    w.detail(Who::Owner, "name", json!("Renamed through A")),
                    w.detail(Who::Fan, "description", json!("New words")),
                    w.in_list(Who::Owner, "name", json!("Renamed through A")),
                    w.in_list(Who::Editor, "description", json!("New words")),
                    w.in_discover("name", json!("Renamed through A")),
                    w.in_discover("preview", json!("New words")),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "delete_project",
            method: "DELETE",
            path: "/api/projects/{id}",
            setup: None,
            write: |w| Box::pin(w.through_a(Method::DELETE, w.at(""), Who::Owner, None, 204)),
            reads: |w| {
                vec![
                    Read::get(Who::Owner, w.at(""), Expect::Status(StatusCode::NOT_FOUND)),
                    Read::get(Who::Owner, "/api/projects", Expect::listed("id", &w.project, false)),
                    Read::get(Who::Editor, "/api/projects", Expect::listed("id", &w.project, false)),
                    Read::get(Who::Anonymous, "/api/discover", Expect::listed("id", &w.project, false)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "view",
            method: "POST",
            path: "/api/projects/{id}/view",
            setup: None,
            // Views are written in batches: the write is the view and A's flush that follows.
            write: |w| Box::pin(view_and_flush(w)),
            reads: |w| counter_reads(w, "viewCount", 1),
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "fork",
            method: "POST",
            path: "/api/projects/{id}/fork",
            setup: None,
            write: |w| Box::pin(w.through_a(Method::POST, w.at("/fork"), Who::Fan, Some(json!({"name": FORK})), 201)),
            reads: |w| {
                let mut reads = counter_reads(w, "forkCount", 1);
                reads.push(Read::get(Who::Fan, "/api/projects", Expect::listed("name", FORK, true)));
                reads
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "write_files",
            method: "PUT",
            path: "/api/projects/{id}/files",
            setup: None,
            write: |w| {
                let batch = json!({"operations": [
                    {"op": "upsert", "path": "app.js", "content": "console.log(1)"},
                    {"op": "upsert", "path": "style.css", "content": "h1 {}"},
                    {"op": "delete", "path": "index.html"},
                ]});
                // By the EDITOR, so the owner's list is someone else's to invalidate.
                Box::pin(w.through_a(Method::PUT, w.at("/files"), Who::Editor, Some(batch), 200))
            },
            reads: |w| {
                vec![
                    Read::get(Who::Owner, w.at(""), Expect::listed_in("/files", "path", "app.js", true)),
                    Read::get(Who::Owner, w.at(""), Expect::listed_in("/files", "path", "index.html", false)),
                    Read::get(Who::Fan, w.at("/files"), Expect::listed("path", "app.js", true)),
                    Read::get(Who::Fan, w.at("/files"), Expect::listed("path", "index.html", false)),
                    w.in_list(Who::Owner, "fileCount", json!(2)),
                    w.in_list(Who::Editor, "fileCount", json!(2)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "append_message",
            method: "POST",
            path: "/api/projects/{id}/messages",
            setup: None,
            write: |w| {
                let message = json!({"role": "user", "content": "Second message"});
                Box::pin(w.through_a(Method::POST, w.at("/messages"), Who::Owner, Some(message), 201))
            },
            reads: |w| {
                vec![
                    Read::get(Who::Editor, w.at("/messages"), Expect::at("/items/0/content", "Second message")),
                    w.in_list(Who::Owner, "messageCount", json!(2)),
                    w.in_list(Who::Editor, "messageCount", json!(2)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "invite",
            method: "POST",
            path: "/api/projects/{id}/invites",
            setup: None,
            write: |w| Box::pin(owner_invites_fan(w)),
            reads: |w| vec![Read::get(Who::Fan, "/api/invites", Expect::listed("projectId", &w.project, true))],
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "accept_invite",
            method: "POST",
            path: "/api/invites/{id}/accept",
            setup: Some(|w| Box::pin(owner_invites_fan(w))),
            write: |w| {
                Box::pin(w.through_a(
                    Method::POST,
                    format!("/api/invites/{}/accept", w.noted(INVITE)),
                    Who::Fan,
                    None,
                    200,
                ))
            },
            reads: |w| {
                vec![
                    w.in_list(Who::Fan, "access", json!("editor")),
                    w.detail(Who::Fan, "access", json!("editor")),
                    Read::get(Who::Fan, w.at("/members"), Expect::listed("userId", &w.fan.id, true)),
                    Read::get(Who::Fan, "/api/invites", Expect::listed("id", &w.noted(INVITE), false)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "decline_invite",
            method: "POST",
            path: "/api/invites/{id}/decline",
            setup: Some(|w| Box::pin(owner_invites_fan(w))),
            write: |w| {
                let uri = format!("/api/invites/{}/decline", w.noted(INVITE));
                Box::pin(w.through_a(Method::POST, uri, Who::Fan, None, 200))
            },
            reads: |w| vec![Read::get(Who::Fan, "/api/invites", Expect::listed("id", &w.noted(INVITE), false))],
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "revoke_invite",
            method: "DELETE",
            path: "/api/projects/{id}/invites/{inviteId}",
            setup: Some(|w| Box::pin(owner_invites_fan(w))),
            write: |w| {
                let uri = w.at(&format!("/invites/{}", w.noted(INVITE)));
                Box::pin(w.through_a(Method::DELETE, uri, Who::Owner, None, 204))
            },
            reads: |w| {
                vec![
                    Read::get(Who::Fan, "/api/invites", Expect::listed("id", &w.noted(INVITE), false)),
                    Read::get(Who::Owner, w.at("/invites"), Expect::listed("id", &w.noted(INVITE), false)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "change_role",
            method: "PATCH",
            path: "/api/projects/{id}/members/{userId}",
            setup: None,
            write: |w| {
                let uri = w.at(&format!("/members/{}", w.editor.id));
                Box::pin(w.through_a(Method::PATCH, uri, Who::Owner, Some(json!({"role": "VIEWER"})), 200))
            },
            reads: |w| {
                vec![
                    Read::get(Who::Fan, w.at("/members"), Expect::field("userId", &w.editor.id, "role", "VIEWER")),
                    w.in_list(Who::Editor, "access", json!("viewer")),
                    w.detail(Who::Editor, "access", json!("viewer")),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "remove_member",
            method: "DELETE",
            path: "/api/projects/{id}/members/{userId}",
            setup: None,
            write: |w| {
                let uri = w.at(&format!("/members/{}", w.editor.id));
                Box::pin(w.through_a(Method::DELETE, uri, Who::Owner, None, 204))
            },
            reads: |w| {
                vec![
                    Read::get(Who::Editor, "/api/projects", Expect::listed("id", &w.project, false)),
                    Read::get(Who::Fan, w.at("/members"), Expect::listed("userId", &w.editor.id, false)),
                    w.detail(Who::Editor, "access", json!("public")),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "enter_competition",
            method: "POST",
            path: "/api/projects/{id}/competition",
            setup: None,
            write: |w| Box::pin(owner_enters_competition(w)),
            reads: |w| vec![Read::get(Who::Fan, "/api/competitions", Expect::listed("projectId", &w.project, true))],
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "close_competition",
            method: "POST",
            path: "/api/competitions/{id}/close",
            setup: Some(|w| Box::pin(owner_enters_competition(w))),
            write: |w| {
                let uri = format!("/api/competitions/{}/close", w.noted(COMPETITION));
                Box::pin(w.through_a(Method::POST, uri, Who::Owner, None, 200))
            },
            reads: |w| {
                let competition = w.noted(COMPETITION);
                vec![
                    Read::get(Who::Fan, "/api/competitions", Expect::field("id", &competition, "status", "CLOSED")),
                    Read::get(Who::Fan, "/api/competitions?status=ACTIVE", Expect::listed("id", &competition, false)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "like",
            method: "PUT",
            path: "/api/projects/{id}/like",
            setup: None,
            write: |w| Box::pin(fan_likes(w)),
            reads: |w| counter_reads(w, "likeCount", 1),
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "unlike",
            method: "DELETE",
            path: "/api/projects/{id}/like",
            setup: Some(|w| Box::pin(fan_likes(w))),
            write: |w| Box::pin(w.through_a(Method::DELETE, w.at("/like"), Who::Fan, None, 200)),
            reads: |w| counter_reads(w, "likeCount", 0),
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "record_usage",
            method: "POST",
            path: "/api/usage",
            setup: None,
            write: |w| {
                let usage = json!({"tokensUsed": 250, "contextUsed": 0.5, "endpoint": "/api/agents/chat",
                                   "projectId": w.project, "model": "test-model"});
                Box::pin(w.through_a(Method::POST, "/api/usage", Who::Owner, Some(usage), 201))
            },
            reads: |_| {
                vec![
                    // Sign-up grants 10000 tokens.
                    Read::get(Who::Owner, "/api/auth/session", Expect::at("/tokenBalance", 9750)),
                    Read::get(Who::Owner, "/api/usage/summary", Expect::at("/groups/0/tokensUsed", 250)),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "clear_cache",
            method: "POST",
            path: "/api/cache/clear",
            setup: None,
            write: |w| {
                Box::pin(async move {
                    // A change behind the service's back: only the clear can show it before the TTLs.
                    sqlx::query(r#"UPDATE "Project" SET "name" = 'Renamed in SQL' WHERE "id" = $1"#)
                        .bind(&w.project)
                        .execute(&w.app.pool)
                        .await
                        .unwrap();
                    w.through_a(Method::POST, "/api/cache/clear", Who::Admin, None, 200).await
                })
            },
            reads: |w| {
                vec![
                    w.detail(Who::Owner, "name", json!("Renamed in SQL")),
                    w.in_list(Who::Owner, "name", json!("Renamed in SQL")),
                    w.in_discover("name", json!("Renamed in SQL")),
                ]
            },
            fresh_within: PUBSUB,
        },
        Scenario {
            name: "set_switches",
            method: "PATCH",
            path: "/api/admin/switches",
            setup: None,
            write: |w| {
                Box::pin(async move {
                    let change = json!({"cache": "local", "jobsPaused": true});
                    w.through_a(Method::PATCH, "/api/admin/switches", Who::Admin, Some(change), 200).await
                })
            },
            // The switches are the answering instance's own: nothing B serves goes stale
            // (tests/api/switches.rs checks what they do on their instance).
            reads: |_| Vec::new(),
            fresh_within: PUBSUB,
        },
    ]
}

const NEW_SESSION: &str = "new session";

/// POST routes that write nothing: the explain's statement runs in a transaction that is
/// rolled back (`tests/api/monitor.rs` checks that nothing changes).
const READS_BY_POST: &[(&str, &str)] = &[("POST", "/api/monitor/queries/explain")];
const INVITE: &str = "invite";
const COMPETITION: &str = "competition";
const FORK: &str = "Fan's fork";

fn newcomer() -> Value {
    json!({"name": "Newcomer", "email": "newcomer@example.com", "password": "newcomer-password"})
}

fn newcomer_credentials() -> Value {
    json!({"email": "newcomer@example.com", "password": "newcomer-password"})
}

/// A second session of the owner's, which a password change ends.
async fn owner_logs_in_again(w: &World) -> Value {
    let credentials = json!({"email": w.owner.email, "password": w.owner.password});
    let login = w.through_a(Method::POST, "/api/auth/login", Who::Anonymous, Some(credentials), 200).await;
    w.note(NEW_SESSION, login["token"].as_str().unwrap());
    login
}

async fn owner_invites_fan(w: &World) -> Value {
    let body = json!({"email": w.fan.email, "role": "EDITOR"});
    let invite = w.through_a(Method::POST, w.at("/invites"), Who::Owner, Some(body), 201).await;
    w.note(INVITE, invite["id"].as_str().unwrap());
    invite
}

async fn owner_enters_competition(w: &World) -> Value {
    let body = json!({"title": "Spring jam"});
    let competition = w.through_a(Method::POST, w.at("/competition"), Who::Owner, Some(body), 201).await;
    w.note(COMPETITION, competition["id"].as_str().unwrap());
    competition
}

async fn fan_likes(w: &World) -> Value {
    w.through_a(Method::PUT, w.at("/like"), Who::Fan, None, 200).await
}

async fn view_and_flush(w: &World) -> Value {
    let response = w.through_a(Method::POST, w.at("/view"), Who::Anonymous, None, 200).await;
    w.app.flush_views().await;
    response
}

/// A counter (likes, forks, views) everywhere it shows: the project itself, the list of
/// every member (the owner's and the EDITOR's), and discovery.
fn counter_reads(w: &World, counter: &'static str, value: i64) -> Vec<Read> {
    vec![
        w.detail(Who::Fan, counter, json!(value)),
        w.in_list(Who::Owner, counter, json!(value)),
        w.in_list(Who::Editor, counter, json!(value)),
        w.in_discover(counter, json!(value)),
    ]
}

/// One test per scenario, so each runs, and fails, on its own, with its own database and
/// Redis namespace.
macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        const SCENARIO_TESTS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[tokio::test]
            async fn $name() {
                run(stringify!($name)).await;
            }
        )*
    };
}

scenario_tests!(
    signup,
    login,
    logout,
    change_password,
    create_project,
    update_project,
    delete_project,
    view,
    fork,
    write_files,
    append_message,
    invite,
    accept_invite,
    decline_invite,
    revoke_invite,
    change_role,
    remove_member,
    enter_competition,
    close_competition,
    like,
    unlike,
    record_usage,
    clear_cache,
    set_switches,
);

#[tokio::test]
async fn the_scenarios_cover_every_write_operation_exactly() {
    let app = TestApp::new().await;
    let document = app.get("/api/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    // Reads are GET only, so the hand-registered single-file read is not among these.
    let writes: BTreeSet<(String, String)> = document.json["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|method| ["post", "put", "patch", "delete"].contains(&method.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .filter(|(method, path)| !READS_BY_POST.contains(&(method.as_str(), path.as_str())))
        .collect();
    let table = scenarios();
    let covered: BTreeSet<(String, String)> = table.iter().map(|s| (s.method.to_owned(), s.path.to_owned())).collect();
    let missing: Vec<_> = writes.difference(&covered).collect();
    let extra: Vec<_> = covered.difference(&writes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "write operations without a scenario: {missing:?}; scenarios for no documented write: {extra:?}"
    );
    assert_eq!(table.len(), covered.len(), "one scenario per operation");

    let names: BTreeSet<&str> = table.iter().map(|s| s.name).collect();
    let tested: BTreeSet<&str> = SCENARIO_TESTS.iter().copied().collect();
    assert_eq!(names.len(), table.len(), "scenario names are unique");
    assert_eq!(names, tested, "every scenario has its test in scenario_tests!, and only those");

    // Each write route names the service write whose declaration says what it makes stale.
    let declared: BTreeSet<(String, String)> =
        WRITE_ROUTES.iter().map(|(method, path, _)| (method.to_uppercase(), (*path).to_owned())).collect();
    assert_eq!(declared, writes, "api::WRITE_ROUTES names every write route, and only those");
    for (_, _, write) in WRITE_ROUTES {
        assert!(Write::ALL.contains(write), "{write:?} is in the invalidation table");
    }
    // A write that makes a cached read stale declares it; those that declare nothing are the
    // writes whose effects no cached read shows.
    let silent: BTreeSet<String> =
        Write::ALL.iter().filter(|write| write.stale().is_empty()).map(|write| format!("{write:?}")).collect();
    let expected: BTreeSet<String> = [
        "Signup",
        "Login",
        "Invite",
        "DeclineInvite",
        "RevokeInvite",
        "EnterCompetition",
        "CloseCompetition",
        "ClearCache",
        "SetSwitches",
    ]
    .map(String::from)
    .into();
    assert_eq!(silent, expected);
}

/// Runs the scenario `name`: setup through A, warm B, write through A, poll B.
async fn run(name: &str) {
    let scenario = scenarios().into_iter().find(|s| s.name == name).expect("a scenario of this name");
    let operation = format!("{} {}", scenario.method, scenario.path);
    let world = World::new().await;
    if let Some(setup) = scenario.setup {
        setup(&world).await;
    }
    let reads = (scenario.reads)(&world);

    // Warm B: each read lands in its cache. None may show the written state yet, or the
    // scenario could not tell a fresh answer from a stale one.
    for read in reads.iter().filter(|read| world.can_send(read)) {
        let observed = read.observe(&world).await;
        assert!(
            !observed.holds,
            "{operation}: {} already shows the written state before the write",
            read.describe(&observed)
        );
    }

    (scenario.write)(&world).await;

    let started = Instant::now();
    loop {
        let mut stale = Vec::new();
        for read in &reads {
            let observed = read.observe(&world).await;
            if !observed.holds {
                stale.push(read.describe(&observed));
            }
        }
        if stale.is_empty() {
            eprintln!("{operation}: instance B fresh {:?} after the write through A", started.elapsed());
            return;
        }
        assert!(
            started.elapsed() < scenario.fresh_within,
            "{operation}: instance B still stale {:?} after the write through A (allowed: {:?}):\n  {}",
            started.elapsed(),
            scenario.fresh_within,
            stale.join("\n  ")
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Two instances over one database and one Redis namespace, and the cast every scenario
/// starts from: `owner`'s PUBLIC project with one file and one message, `editor` (its EDITOR)
/// and `fan`, signed in but no member.
struct World {
    /// Its router is instance A.
    app: TestApp,
    b: Router,
    owner: TestUser,
    editor: TestUser,
    fan: TestUser,
    project: String,
    /// What setup and write produced that reads refer to (an invite's id, a new token).
    notes: Mutex<HashMap<&'static str, String>>,
}

impl World {
    async fn new() -> World {
        let (app, settings) = support::two_tier_app(&support::shared_redis_url()).await;
        let b = support::instance(&app, &settings);
        // Until B subscribes it hears no invalidations, and subscribing flushes its cache:
        // warming before that would test nothing.
        subscribed(&b).await;
        let owner = app.user("Owner").await;
        let editor = app.user("Editor").await;
        let fan = app.user("Fan").await;
        let project = app.project(&owner, "PUBLIC").await;
        app.add_collaborator(&project, &editor, "EDITOR").await;
        let world = World { app, b, owner, editor, fan, project, notes: Mutex::default() };
        let file = json!({"operations": [{"op": "upsert", "path": "index.html", "content": "<h1>Hi</h1>"}]});
        world.through_a(Method::PUT, world.at("/files"), Who::Owner, Some(file), 200).await;
        let message = json!({"role": "user", "content": "First message"});
        world.through_a(Method::POST, world.at("/messages"), Who::Owner, Some(message), 201).await;
        world
    }

    /// A request through instance A, which must answer `status`; its body.
    async fn through_a(
        &self,
        method: Method,
        uri: impl Into<String>,
        who: Who,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let uri = uri.into();
        let response = support::call(&self.app.router, method.clone(), &uri, self.token(who).as_deref(), body).await;
        assert_eq!(response.status.as_u16(), status, "{method} {uri} as {who:?} through A: {}", response.json);
        response.json
    }

    /// A path under the project.
    fn at(&self, tail: &str) -> String {
        format!("/api/projects/{}{tail}", self.project)
    }

    fn note(&self, name: &'static str, value: &str) {
        self.notes.lock().unwrap().insert(name, value.to_owned());
    }

    fn noted(&self, name: &str) -> String {
        self.notes.lock().unwrap().get(name).cloned().unwrap_or_else(|| panic!("nothing noted as {name:?}"))
    }

    /// Whether `read` can be sent yet: a token noted by the write cannot be used to warm.
    fn can_send(&self, read: &Read) -> bool {
        match read.who {
            Who::Noted(name) => self.notes.lock().unwrap().contains_key(name),
            _ => true,
        }
    }

    fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Owner => Some(self.owner.token.clone()),
            Who::Editor => Some(self.editor.token.clone()),
            Who::Fan => Some(self.fan.token.clone()),
            Who::Admin => Some(ADMIN_TOKEN.to_owned()),
            Who::Noted(name) => Some(self.noted(name)),
        }
    }

    /// `field` of `GET /api/projects/{id}` as `who` reads it.
    fn detail(&self, who: Who, field: &'static str, value: Value) -> Read {
        Read::get(who, self.at(""), Expect::At(format!("/{field}"), value))
    }

    /// `field` of the project in `who`'s first page of `GET /api/projects`.
    fn in_list(&self, who: Who, field: &'static str, value: Value) -> Read {
        Read::get(who, "/api/projects", Expect::field("id", &self.project, field, value))
    }

    /// `field` of the project in the first page of `GET /api/discover`.
    fn in_discover(&self, field: &'static str, value: Value) -> Read {
        Read::get(Who::Anonymous, "/api/discover", Expect::field("id", &self.project, field, value))
    }
}

/// Waits until B's invalidation subscription is up (its first connect counts as one).
async fn subscribed(b: &Router) {
    let started = Instant::now();
    loop {
        let health = support::send(b, Method::GET, "/api/health/database", None).await;
        if health.json["cache"]["reconnects"].as_u64().unwrap_or(0) >= 1 {
            return;
        }
        assert!(started.elapsed() < SUBSCRIPTION_UP, "B's invalidation subscription is not up: {}", health.json);
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whose token a request carries.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Owner,
    Editor,
    Fan,
    Admin,
    /// A token the scenario noted under this name.
    Noted(&'static str),
}

/// A request through instance B and what its answer must show after the write.
struct Read {
    who: Who,
    method: Method,
    uri: String,
    body: Option<Value>,
    expect: Expect,
}

/// What a read showed: the value the expectation looks at, and whether it is the wanted one.
struct Observed {
    status: StatusCode,
    value: Value,
    holds: bool,
}

impl Read {
    fn get(who: Who, uri: impl Into<String>, expect: Expect) -> Read {
        Read { who, method: Method::GET, uri: uri.into(), body: None, expect }
    }

    /// An anonymous POST used as a read: what a user does next, with nothing to invalidate.
    fn post(uri: &str, body: Value, expect: Expect) -> Read {
        Read { who: Who::Anonymous, method: Method::POST, uri: uri.into(), body: Some(body), expect }
    }

    async fn observe(&self, world: &World) -> Observed {
        let token = world.token(self.who);
        let response =
            support::call(&world.b, self.method.clone(), &self.uri, token.as_deref(), self.body.clone()).await;
        let value = self.expect.observe(&response);
        Observed { status: response.status, holds: value == self.expect.wanted(), value }
    }

    fn describe(&self, observed: &Observed) -> String {
        let (method, uri, who, subject) = (&self.method, &self.uri, self.who, self.expect.subject());
        let (value, wanted) = (&observed.value, self.expect.wanted());
        match self.expect {
            Expect::Status(_) => format!("{method} {uri} as {who:?}: the status is {value}, want {wanted}"),
            _ => format!("{method} {uri} as {who:?}: {subject} is {value}, want {wanted} (status {})", observed.status),
        }
    }
}

/// What a response must show.
enum Expect {
    Status(StatusCode),
    /// The value at a JSON pointer.
    At(String, Value),
    /// The `field` of the entry in the array at `list` whose `key` is `id`.
    Field {
        list: &'static str,
        key: &'static str,
        id: String,
        field: &'static str,
        value: Value,
    },
    /// Whether the array at `list` holds an entry whose `key` is `id`.
    Listed {
        list: &'static str,
        key: &'static str,
        id: String,
        listed: bool,
    },
}

impl Expect {
    fn at(pointer: &str, value: impl Into<Value>) -> Expect {
        Expect::At(pointer.to_owned(), value.into())
    }

    /// `field` of the `items` entry whose `key` is `id`.
    fn field(key: &'static str, id: &str, field: &'static str, value: impl Into<Value>) -> Expect {
        Expect::Field { list: "/items", key, id: id.to_owned(), field, value: value.into() }
    }

    /// Whether `items` holds an entry whose `key` is `id`.
    fn listed(key: &'static str, id: &str, listed: bool) -> Expect {
        Expect::listed_in("/items", key, id, listed)
    }

    fn listed_in(list: &'static str, key: &'static str, id: &str, listed: bool) -> Expect {
        Expect::Listed { list, key, id: id.to_owned(), listed }
    }

    fn observe(&self, response: &TestResponse) -> Value {
        let entry = |list: &str, key: &str, id: &str| entry(&response.json, list, key, id).cloned();
        match self {
            Expect::Status(_) => json!(response.status.as_u16()),
            Expect::At(pointer, _) => response.json.pointer(pointer).cloned().unwrap_or(Value::Null),
            Expect::Field { list, key, id, field, .. } => {
                entry(list, key, id).map_or_else(|| json!("(no such entry)"), |entry| entry[*field].clone())
            }
            Expect::Listed { list, key, id, .. } => json!(entry(list, key, id).is_some()),
        }
    }

    fn wanted(&self) -> Value {
        match self {
            Expect::Status(status) => json!(status.as_u16()),
            Expect::At(_, value) | Expect::Field { value, .. } => value.clone(),
            Expect::Listed { listed, .. } => json!(listed),
        }
    }

    fn subject(&self) -> String {
        match self {
            Expect::Status(_) => "the status".into(),
            Expect::At(pointer, _) => pointer.clone(),
            Expect::Field { list, key, id, field, .. } => format!("{list}[{key}={id}].{field}"),
            Expect::Listed { list, key, id, .. } => format!("whether {list} has {key}={id}"),
        }
    }
}

/// The entry of the array at `list` whose `key` is `id`.
fn entry<'a>(json: &'a Value, list: &str, key: &str, id: &str) -> Option<&'a Value> {
    json.pointer(list)?.as_array()?.iter().find(|entry| entry[key] == id)
}
