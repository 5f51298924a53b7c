//! Collaboration: invites and their answers, members, roles, and the races that decide them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::{TestApp, TestResponse, TestUser};

async fn invite(app: &TestApp, from: &TestUser, project: &str, body: Value) -> TestResponse {
    let uri = format!("/api/projects/{project}/invites");
    app.call(Method::POST, &uri, Some(&from.token), Some(body)).await
}

async fn answer(app: &TestApp, user: &TestUser, invite: &str, verb: &str) -> TestResponse {
    let uri = format!("/api/invites/{invite}/{verb}");
    app.call(Method::POST, &uri, Some(&user.token), None).await
}

async fn invite_count(app: &TestApp) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM "CollaborationInvite""#).fetch_one(&app.pool).await.unwrap()
}

async fn invite_status(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar(r#"SELECT "status" FROM "CollaborationInvite" WHERE "id" = $1"#)
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The member's collaborator role, if any.
async fn role_of(app: &TestApp, project: &str, user: &TestUser) -> Option<String> {
    sqlx::query_scalar(r#"SELECT "role" FROM "ProjectCollaborator" WHERE "projectId" = $1 AND "userId" = $2"#)
        .bind(project)
        .bind(&user.id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

fn assert_no_emails(json: &Value) {
    let text = json.to_string();
    assert!(!text.contains("@example.com"), "an e-mail leaked: {text}");
    assert!(!text.contains("\"email\""), "an e-mail field leaked: {text}");
}

#[tokio::test]
async fn invites_by_email_and_by_id_are_listed_accepted_and_declined() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let project = app.project(&owner, "PRIVATE").await;

    let by_email = invite(&app, &owner, &project, json!({"email": " Alice@Example.COM ", "role": "EDITOR"})).await;
    assert_eq!(by_email.status, StatusCode::CREATED, "{}", by_email.json);
    assert_eq!(by_email.json["projectId"], project.as_str());
    assert_eq!(by_email.json["projectName"], "A project");
    assert_eq!(by_email.json["fromUser"], json!({"id": owner.id, "name": "Owner", "image": null}));
    assert_eq!(by_email.json["role"], "EDITOR");
    assert_eq!(by_email.json["status"], "PENDING");
    assert!(by_email.json["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_no_emails(&by_email.json);

    let by_id = invite(&app, &owner, &project, json!({"userId": bob.id, "role": "VIEWER"})).await;
    assert_eq!(by_id.status, StatusCode::CREATED, "{}", by_id.json);

    let listed = app.call(Method::GET, "/api/invites", Some(&alice.token), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.json["items"][0]["id"], by_email.json["id"]);
    assert_eq!(listed.json["nextCursor"], Value::Null);
    assert_no_emails(&listed.json);

    let alice_invite = by_email.json["id"].as_str().unwrap();
    let accepted = answer(&app, &alice, alice_invite, "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.json);
    assert_eq!(accepted.json["status"], "ACCEPTED");
    assert_eq!(role_of(&app, &project, &alice).await.as_deref(), Some("EDITOR"));
    assert_eq!(invite_status(&app, alice_invite).await, "ACCEPTED");
    let read = app.call(Method::GET, &format!("/api/projects/{project}"), Some(&alice.token), None).await;
    assert_eq!(read.json["access"], "editor", "the new member can read");
    let listed = app.call(Method::GET, "/api/invites", Some(&alice.token), None).await;
    assert_eq!(listed.json["items"], json!([]), "only PENDING invites");

    let bob_invite = by_id.json["id"].as_str().unwrap();
    let declined = answer(&app, &bob, bob_invite, "decline").await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.json);
    assert_eq!(declined.json["status"], "DECLINED");
    assert_eq!(role_of(&app, &project, &bob).await, None);
    assert_eq!(invite_status(&app, bob_invite).await, "DECLINED");

    // A declined invite is no longer pending: the invitee may be asked again.
    let again = invite(&app, &owner, &project, json!({"userId": bob.id, "role": "VIEWER"})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.json);
}

#[tokio::test]
async fn the_invite_list_is_keyset_paginated_newest_first() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let alice = app.user("Alice").await;
    let mut sent = Vec::new();
    for _ in 0..5 {
        let project = app.project(&owner, "PRIVATE").await;
        let created = invite(&app, &owner, &project, json!({"userId": alice.id, "role": "VIEWER"})).await;
        sent.push(created.json["id"].as_str().unwrap().to_owned());
    }
    let mut read = Vec::new();
    let mut uri = "/api/invites?limit=2".to_owned();
    loop {
        let page = app.call(Method::GET, &uri, Some(&alice.token), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        read.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page.json["nextCursor"].as_str() {
            Some(next) => uri = format!("/api/invites?limit=2&cursor={next}"),
            None => break,
        }
    }
    sent.reverse();
    assert_eq!(read, sent, "every invite once, newest first");

    let forged = app.call(Method::GET, "/api/invites?cursor=forged", Some(&alice.token), None).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert_eq!(forged.error_code(), "bad_request");
    let anonymous = app.call(Method::GET, "/api/invites", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn who_may_invite_whom() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let admin = app.user("Admin").await;
    let editor = app.user("Editor").await;
    let viewer = app.user("Viewer").await;
    let stranger = app.user("Stranger").await;
    let alice = app.user("Alice").await;
    let private = app.project(&owner, "PRIVATE").await;
    let public = app.project(&owner, "PUBLIC").await;
    for project in [&private, &public] {
        app.add_collaborator(project, &admin, "ADMIN").await;
        app.add_collaborator(project, &editor, "EDITOR").await;
        app.add_collaborator(project, &viewer, "VIEWER").await;
    }
    let to_alice = |role: &str| json!({"userId": alice.id, "role": role});

    // Members without Manage, and strangers, as authorize answers them.
    let cases = [
        (&editor, &private, StatusCode::FORBIDDEN),
        (&viewer, &private, StatusCode::FORBIDDEN),
        (&stranger, &private, StatusCode::NOT_FOUND),
        (&stranger, &public, StatusCode::FORBIDDEN),
    ];
    for (caller, project, expected) in cases {
        let response = invite(&app, caller, project, to_alice("VIEWER")).await;
        assert_eq!(response.status, expected, "{}", response.json);
        response.error_code();
    }
    // An EDITOR cannot hand out ADMIN (nor anything else).
    let escalation = invite(&app, &editor, &private, to_alice("ADMIN")).await;
    assert_eq!(escalation.status, StatusCode::FORBIDDEN);
    // Anonymous callers: signing in could help on a public project; a private one does not exist.
    for (project, expected) in [(&public, StatusCode::UNAUTHORIZED), (&private, StatusCode::NOT_FOUND)] {
        let uri = format!("/api/projects/{project}/invites");
        let anonymous = app.call(Method::POST, &uri, None, Some(to_alice("VIEWER"))).await;
        assert_eq!(anonymous.status, expected);
        anonymous.error_code();
    }
    assert_eq!(invite_count(&app).await, 0, "nothing was written");

    // An ADMIN may grant up to ADMIN, their own role.
    let by_admin = invite(&app, &admin, &private, to_alice("ADMIN")).await;
    assert_eq!(by_admin.status, StatusCode::CREATED, "{}", by_admin.json);
    assert_eq!(by_admin.json["fromUser"]["id"], admin.id.as_str());

    // A second PENDING invite for the same invitee and project, from anyone, is 409.
    let second = invite(&app, &owner, &private, to_alice("EDITOR")).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.json);
    assert_eq!(second.error_code(), "conflict");
    // The same invitee may be invited to another project.
    let other = invite(&app, &owner, &public, to_alice("EDITOR")).await;
    assert_eq!(other.status, StatusCode::CREATED);

    // Unknown invitees are 404; the owner and existing members are 409.
    let unknown_email = invite(&app, &owner, &private, json!({"email": "nobody@example.com", "role": "VIEWER"})).await;
    assert_eq!(unknown_email.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_email.error_code(), "not_found");
    let unknown_id = invite(&app, &owner, &private, json!({"userId": "no-such-user", "role": "VIEWER"})).await;
    assert_eq!(unknown_id.status, StatusCode::NOT_FOUND);
    for (caller, invitee) in [(&admin, &owner), (&owner, &owner), (&owner, &editor)] {
        let body = json!({"email": invitee.email, "role": "VIEWER"});
        let response = invite(&app, caller, &private, body).await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{}", response.json);
    }
    assert_eq!(invite_count(&app).await, 2);
}

#[tokio::test]
async fn only_the_invitee_answers_and_only_once() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let alice = app.user("Alice").await;
    let stranger = app.user("Stranger").await;
    let project = app.project(&owner, "PUBLIC").await;
    let created = invite(&app, &owner, &project, json!({"userId": alice.id, "role": "EDITOR"})).await;
    let id = created.json["id"].as_str().unwrap();

    for caller in [&owner, &stranger] {
        for verb in ["accept", "decline"] {
            let response = answer(&app, caller, id, verb).await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{verb}");
            assert_eq!(response.error_code(), "not_found");
        }
    }
    let anonymous = app.call(Method::POST, &format!("/api/invites/{id}/accept"), None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let unknown = answer(&app, &alice, "no-such-invite", "accept").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(invite_status(&app, id).await, "PENDING");
    assert_eq!(role_of(&app, &project, &stranger).await, None);

    let declined = answer(&app, &alice, id, "decline").await;
    assert_eq!(declined.status, StatusCode::OK);
    for verb in ["accept", "decline"] {
        let response = answer(&app, &alice, id, verb).await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{verb}");
        assert_eq!(response.error_code(), "conflict");
    }
    assert_eq!(role_of(&app, &project, &alice).await, None);
}

#[tokio::test]
async fn accepting_keeps_the_higher_of_two_roles() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let project = app.project(&owner, "PRIVATE").await;
    let viewer_invite = invite(&app, &owner, &project, json!({"userId": alice.id, "role": "VIEWER"})).await;
    let editor_invite = invite(&app, &owner, &project, json!({"userId": bob.id, "role": "EDITOR"})).await;
    // Both became members another way while their invites were pending.
    app.add_collaborator(&project, &alice, "ADMIN").await;
    app.add_collaborator(&project, &bob, "VIEWER").await;

    let id = viewer_invite.json["id"].as_str().unwrap();
    assert_eq!(answer(&app, &alice, id, "accept").await.status, StatusCode::OK);
    assert_eq!(role_of(&app, &project, &alice).await.as_deref(), Some("ADMIN"));
    let id = editor_invite.json["id"].as_str().unwrap();
    assert_eq!(answer(&app, &bob, id, "accept").await.status, StatusCode::OK);
    assert_eq!(role_of(&app, &project, &bob).await.as_deref(), Some("EDITOR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_accepts_make_one_member() {
    let app = Arc::new(TestApp::new().await);
    let owner = app.user("Owner").await;
    let alice = Arc::new(app.user("Alice").await);
    let project = app.project(&owner, "PRIVATE").await;
    let created = invite(&app, &owner, &project, json!({"userId": alice.id, "role": "EDITOR"})).await;
    let id = created.json["id"].as_str().unwrap().to_owned();

    let mut accepts = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, alice, id) = (app.clone(), alice.clone(), id.clone());
        accepts.spawn(async move { answer(&app, &alice, &id, "accept").await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = accepts.join_next().await {
        statuses.push(status.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((ok, conflicts), (1, 9), "{statuses:?}");
    let rows: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "ProjectCollaborator" WHERE "projectId" = $1 AND "userId" = $2"#)
            .bind(&project)
            .bind(&alice.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(invite_status(&app, &id).await, "ACCEPTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invites_make_one_pending_invite() {
    let app = Arc::new(TestApp::new().await);
    let owner = Arc::new(app.user("Owner").await);
    let alice = app.user("Alice").await;
    let project = app.project(&owner, "PRIVATE").await;

    let mut invites = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, owner, project) = (app.clone(), owner.clone(), project.clone());
        let body = json!({"userId": alice.id, "role": "VIEWER"});
        invites.spawn(async move { invite(&app, &owner, &project, body).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = invites.join_next().await {
        statuses.push(status.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 9), "{statuses:?}");
    let pending: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM "CollaborationInvite"
           WHERE "projectId" = $1 AND "toUserId" = $2 AND "status" = 'PENDING'"#,
    )
    .bind(&project)
    .bind(&alice.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 1);
}

#[tokio::test]
async fn members_list_the_owner_first_without_emails() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let first = app.user("First").await;
    let second = app.user("Second").await;
    let stranger = app.user("Stranger").await;
    let public = app.project(&owner, "PUBLIC").await;
    let private = app.project(&owner, "PRIVATE").await;
    for project in [&public, &private] {
        app.add_collaborator(project, &first, "EDITOR").await;
        app.add_collaborator(project, &second, "VIEWER").await;
    }

    let uri = format!("/api/projects/{public}/members");
    let all = app.call(Method::GET, &uri, None, None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.json);
    assert_no_emails(&all.json);
    let items = all.json["items"].as_array().unwrap();
    let members: Vec<(&str, &str)> =
        items.iter().map(|m| (m["userId"].as_str().unwrap(), m["role"].as_str().unwrap())).collect();
    assert_eq!(members, [(owner.id.as_str(), "OWNER"), (first.id.as_str(), "EDITOR"), (second.id.as_str(), "VIEWER")]);
    assert_eq!(items[0]["name"], "Owner");
    assert!(items[1]["joinedAt"].as_str().unwrap().ends_with('Z'));
    let mut keys: Vec<&str> = items[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["image", "joinedAt", "name", "role", "userId"]);

    // One member per page: the same order, each member once.
    let mut paged = Vec::new();
    let mut next = format!("{uri}?limit=1");
    loop {
        let page = app.call(Method::GET, &next, None, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        paged.extend(page.json["items"].as_array().unwrap().iter().map(|m| m["userId"].as_str().unwrap().to_owned()));
        match page.json["nextCursor"].as_str() {
            Some(cursor) => next = format!("{uri}?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, [&*owner.id, &*first.id, &*second.id]);

    let private_uri = format!("/api/projects/{private}/members");
    let hidden = app.call(Method::GET, &private_uri, Some(&stranger.token), None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.error_code(), "not_found");
    let anonymous = app.call(Method::GET, &private_uri, None, None).await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    let member = app.call(Method::GET, &private_uri, Some(&second.token), None).await;
    assert_eq!(member.status, StatusCode::OK);
    assert_eq!(member.json["items"].as_array().unwrap().len(), 3);
}

/// A project with an owner, an ADMIN, an EDITOR and a VIEWER, and a stranger.
struct Cast {
    owner: TestUser,
    admin: TestUser,
    editor: TestUser,
    viewer: TestUser,
    stranger: TestUser,
    project: String,
}

async fn cast(app: &TestApp, visibility: &str) -> Cast {
    let owner = app.user("Owner").await;
    let (admin, editor, viewer) = (app.user("Admin").await, app.user("Editor").await, app.user("Viewer").await);
    let stranger = app.user("Stranger").await;
    let project = app.project(&owner, visibility).await;
    for (member, role) in [(&admin, "ADMIN"), (&editor, "EDITOR"), (&viewer, "VIEWER")] {
        app.add_collaborator(&project, member, role).await;
    }
    Cast { owner, admin, editor, viewer, stranger, project }
}

async fn set_role(app: &TestApp, caller: &TestUser, project: &str, member: &TestUser, role: &str) -> StatusCode {
    let uri = format!("/api/projects/{project}/members/{}", member.id);
    let response = app.call(Method::PATCH, &uri, Some(&caller.token), Some(json!({"role": role}))).await;
    if response.status != StatusCode::OK {
        response.error_code();
    }
    response.status
}

#[tokio::test]
async fn roles_change_without_escalation_and_the_owner_is_untouchable() {
    let app = TestApp::new().await;
    let Cast { owner, admin, editor, viewer, stranger, project } = cast(&app, "PRIVATE").await;

    let uri = format!("/api/projects/{project}/members/{}", viewer.id);
    let promoted = app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"role": "EDITOR"}))).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.json);
    assert_eq!(promoted.json["role"], "EDITOR");
    assert_eq!(promoted.json["userId"], viewer.id.as_str());
    assert_no_emails(&promoted.json);

    // Nobody changes the owner's role.
    for caller in [&owner, &admin] {
        assert_eq!(set_role(&app, caller, &project, &owner, "VIEWER").await, StatusCode::FORBIDDEN);
    }
    // Without Manage: 403 for members, 404 for strangers of a private project.
    assert_eq!(set_role(&app, &editor, &project, &viewer, "VIEWER").await, StatusCode::FORBIDDEN);
    assert_eq!(set_role(&app, &editor, &project, &editor, "ADMIN").await, StatusCode::FORBIDDEN, "no self-promotion");
    assert_eq!(set_role(&app, &stranger, &project, &viewer, "ADMIN").await, StatusCode::NOT_FOUND);
    // An ADMIN grants up to ADMIN; the owner anything.
    assert_eq!(set_role(&app, &admin, &project, &editor, "ADMIN").await, StatusCode::OK);
    assert_eq!(set_role(&app, &admin, &project, &editor, "VIEWER").await, StatusCode::OK);
    assert_eq!(set_role(&app, &owner, &project, &admin, "VIEWER").await, StatusCode::OK);
    assert_eq!(
        set_role(&app, &admin, &project, &editor, "ADMIN").await,
        StatusCode::FORBIDDEN,
        "a demoted ADMIN has lost Manage"
    );
    let anonymous = app
        .call(
            Method::PATCH,
            &format!("/api/projects/{project}/members/{}", viewer.id),
            None,
            Some(json!({"role": "ADMIN"})),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND, "a private project does not exist for anonymous callers");
    // Not a member: 404.
    assert_eq!(set_role(&app, &owner, &project, &stranger, "VIEWER").await, StatusCode::NOT_FOUND);
    assert_eq!(role_of(&app, &project, &stranger).await, None);
    assert_eq!(role_of(&app, &project, &editor).await.as_deref(), Some("VIEWER"));
}

async fn remove(app: &TestApp, caller: &TestUser, project: &str, member: &TestUser) -> StatusCode {
    let uri = format!("/api/projects/{project}/members/{}", member.id);
    let response = app.call(Method::DELETE, &uri, Some(&caller.token), None).await;
    if response.status != StatusCode::NO_CONTENT {
        response.error_code();
    }
    response.status
}

#[tokio::test]
async fn members_leave_or_are_removed_but_the_owner_stays() {
    let app = TestApp::new().await;
    let Cast { owner, admin, editor, viewer, stranger, project } = cast(&app, "PUBLIC").await;

    for caller in [&owner, &admin] {
        assert_eq!(remove(&app, caller, &project, &owner).await, StatusCode::FORBIDDEN);
    }
    assert_eq!(remove(&app, &editor, &project, &viewer).await, StatusCode::FORBIDDEN);
    assert_eq!(remove(&app, &stranger, &project, &viewer).await, StatusCode::FORBIDDEN);
    assert_eq!(remove(&app, &stranger, &project, &stranger).await, StatusCode::NOT_FOUND, "a non-member cannot leave");
    let anonymous =
        app.call(Method::DELETE, &format!("/api/projects/{project}/members/{}", viewer.id), None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    assert_eq!(remove(&app, &viewer, &project, &viewer).await, StatusCode::NO_CONTENT, "a member may leave");
    assert_eq!(role_of(&app, &project, &viewer).await, None);
    assert_eq!(remove(&app, &admin, &project, &editor).await, StatusCode::NO_CONTENT);
    assert_eq!(remove(&app, &admin, &project, &editor).await, StatusCode::NOT_FOUND);
    assert_eq!(remove(&app, &owner, &project, &admin).await, StatusCode::NO_CONTENT);
    let left: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "ProjectCollaborator" WHERE "projectId" = $1"#)
        .bind(&project)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn bad_input_is_refused_in_the_json_shape_and_writes_nothing() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let alice = app.user("Alice").await;
    let project = app.project(&owner, "PRIVATE").await;
    app.add_collaborator(&project, &alice, "VIEWER").await;

    let bodies = [
        json!({"userId": alice.id, "role": "VIEWER", "admin": true}),
        json!({"userId": alice.id, "role": "viewer"}),
        json!({"userId": alice.id, "role": "OWNER"}),
        json!({"userId": alice.id}),
        json!({"userId": 42, "role": "VIEWER"}),
        json!({"email": ["a@example.com"], "role": "VIEWER"}),
        json!({"role": "VIEWER"}),
        json!({"email": alice.email, "userId": alice.id, "role": "VIEWER"}),
        json!({"email": "not an e-mail", "role": "VIEWER"}),
        json!({"userId": "", "role": "VIEWER"}),
        json!({"userId": "a\u{0}b", "role": "VIEWER"}),
        json!(["VIEWER"]),
    ];
    for body in bodies {
        let response = invite(&app, &owner, &project, body.clone()).await;
        assert!(response.status.is_client_error(), "{body}: {}", response.status);
        assert_eq!(response.error_code(), "unprocessable", "{body}");
    }
    // Malformed JSON, from a caller who may invite: 400.
    let request = Request::post(format!("/api/projects/{project}/invites"))
        .header(header::AUTHORIZATION, format!("Bearer {}", owner.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"role\":"))
        .unwrap();
    let malformed = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(invite_count(&app).await, 0, "nothing was written");

    let member_uri = format!("/api/projects/{project}/members/{}", alice.id);
    for body in [json!({"role": "SUPERUSER"}), json!({"role": "ADMIN", "extra": 1}), json!({}), json!({"role": 3})] {
        let response = app.call(Method::PATCH, &member_uri, Some(&owner.token), Some(body.clone())).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", response.json);
        assert_eq!(response.error_code(), "unprocessable");
    }
    assert_eq!(role_of(&app, &project, &alice).await.as_deref(), Some("VIEWER"));

    for query in ["limit=0", "cursor=%%%", "limit=-1", "extra=1"] {
        let uri = format!("/api/projects/{project}/members?{query}");
        let response = app.call(Method::GET, &uri, Some(&owner.token), None).await;
        assert!(response.status.is_client_error(), "{query}");
        response.error_code();
    }
}

/// The invitee's list is a range scan of its index, whatever the table holds.
#[tokio::test]
async fn the_invite_list_uses_its_index() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    sqlx::query(
        r#"WITH u AS (
               INSERT INTO "User" ("id", "email", "password", "updatedAt")
               SELECT 'u' || n, 'u' || n || '@example.org', 'x', now() FROM generate_series(1, 300) n
               RETURNING "id"
           ), p AS (
               INSERT INTO "Project" ("id", "name", "projectType", "userId", "updatedAt")
               SELECT 'p' || n, 'P' || n, 'website', $1, now() FROM generate_series(1, 30) n
               RETURNING "id"
           )
           INSERT INTO "CollaborationInvite" ("id", "projectId", "fromUserId", "toUserId", "status")
           SELECT p."id" || u."id", p."id", $1, u."id",
                  CASE WHEN random() < 0.5 THEN 'PENDING' ELSE 'DECLINED' END
           FROM p, u"#,
    )
    .bind(&owner.id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(r#"ANALYZE "CollaborationInvite""#).execute(&app.pool).await.unwrap();
    let far = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", vibing2::db::collab::pending_sql()))
        .bind("u7")
        .bind(far)
        .bind("")
        .bind(21_i64)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(plan.to_string().contains("CollaborationInvite_toUserId_status_createdAt_idx"), "{plan}");
}

/// An ADMIN removed from a project cannot come back through an invite they sent, before the
/// removal, to an account of their own: at accept, the sender must still grant the role.
#[tokio::test]
async fn an_invite_from_a_removed_admin_cannot_be_accepted() {
    let app = TestApp::new().await;
    let cast = cast(&app, "PRIVATE").await;
    let alt = app.user("AdminsOtherAccount").await;
    let sent = invite(&app, &cast.admin, &cast.project, json!({"email": alt.email, "role": "ADMIN"})).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.json);
    assert_eq!(remove(&app, &cast.owner, &cast.project, &cast.admin).await, StatusCode::NO_CONTENT);
    let accepted = answer(&app, &alt, sent.json["id"].as_str().unwrap(), "accept").await;
    assert_eq!((accepted.status, accepted.error_code()), (StatusCode::CONFLICT, "conflict"), "{}", accepted.json);
    assert_eq!(role_of(&app, &cast.project, &alt).await, None, "not a member");
    assert_eq!(invite_status(&app, sent.json["id"].as_str().unwrap()).await, "PENDING", "nothing changed");

    // A demoted sender cannot grant more than their role now is either.
    let second = app.user("Second").await;
    let sent = invite(&app, &cast.owner, &cast.project, json!({"email": second.email, "role": "EDITOR"})).await;
    assert_eq!(sent.status, StatusCode::CREATED);
    let accepted = answer(&app, &second, sent.json["id"].as_str().unwrap(), "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "the owner's invite stands: {}", accepted.json);
}

#[tokio::test]
async fn invites_expire_and_an_expired_one_gives_way_to_a_new_one() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let guest = app.user("Guest").await;
    let project = app.project(&owner, "PRIVATE").await;
    let sent = invite(&app, &owner, &project, json!({"email": guest.email, "role": "VIEWER"})).await;
    let id = sent.json["id"].as_str().unwrap().to_owned();
    let expires: chrono::NaiveDateTime =
        sqlx::query_scalar(r#"SELECT "expiresAt" - "createdAt" + TIMESTAMP '2000-01-01' FROM "CollaborationInvite""#)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(expires.and_utc().timestamp() - 946_684_800, 7 * 24 * 3600, "seven days by default");
    sqlx::query(r#"UPDATE "CollaborationInvite" SET "expiresAt" = now() AT TIME ZONE 'UTC' - interval '1 second'"#)
        .execute(&app.pool)
        .await
        .unwrap();
    let listed = app.call(Method::GET, "/api/invites", Some(&guest.token), None).await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 0, "an expired invite is not listed");
    let accepted = answer(&app, &guest, &id, "accept").await;
    assert_eq!(
        (accepted.status, accepted.json["error"]["message"].as_str()),
        (StatusCode::CONFLICT, Some("this invite has expired"))
    );
    assert_eq!(role_of(&app, &project, &guest).await, None);
    let again = invite(&app, &owner, &project, json!({"email": guest.email, "role": "VIEWER"})).await;
    assert_eq!(again.status, StatusCode::CREATED, "the expired invite no longer blocks: {}", again.json);
    assert_eq!(invite_status(&app, &id).await, "EXPIRED");
}

#[tokio::test]
async fn managers_list_and_revoke_a_projects_pending_invites() {
    let app = TestApp::new().await;
    let cast = cast(&app, "PUBLIC").await;
    let sent = invite(&app, &cast.admin, &cast.project, json!({"email": cast.stranger.email, "role": "VIEWER"})).await;
    let id = sent.json["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/projects/{}/invites", cast.project);
    for manager in [&cast.owner, &cast.admin] {
        let listed = app.call(Method::GET, &uri, Some(&manager.token), None).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.json);
        assert_eq!(listed.json["items"][0]["id"], id.as_str());
        assert_no_emails(&listed.json);
    }
    for (who, status) in [(&cast.editor, StatusCode::FORBIDDEN), (&cast.stranger, StatusCode::FORBIDDEN)] {
        assert_eq!(app.call(Method::GET, &uri, Some(&who.token), None).await.status, status);
        let revoke = app.call(Method::DELETE, &format!("{uri}/{id}"), Some(&who.token), None).await;
        assert_eq!(revoke.status, status);
    }
    assert_eq!(app.call(Method::GET, &uri, None, None).await.status, StatusCode::UNAUTHORIZED);

    let revoked = app.call(Method::DELETE, &format!("{uri}/{id}"), Some(&cast.owner.token), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(invite_status(&app, &id).await, "REVOKED");
    let accepted = answer(&app, &cast.stranger, &id, "accept").await;
    assert_eq!(accepted.status, StatusCode::CONFLICT);
    let twice = app.call(Method::DELETE, &format!("{uri}/{id}"), Some(&cast.owner.token), None).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let unknown = app.call(Method::DELETE, &format!("{uri}/nope"), Some(&cast.owner.token), None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn inviting_is_rate_limited_per_sender() {
    let app = TestApp::with_settings(&[("collab.invites_per_window", "2")]).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    for n in 0..2 {
        let probe =
            invite(&app, &owner, &project, json!({"email": format!("nobody{n}@example.com"), "role": "VIEWER"})).await;
        assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.json);
    }
    let third = invite(&app, &owner, &project, json!({"email": "nobody2@example.com", "role": "VIEWER"})).await;
    assert_eq!((third.status, third.error_code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
}

/// Names and images cannot be changed through the API; a rename is a write to "User" (an
/// operator's, or the Phase-2 platform's while it still runs). The project's reads join the
/// public face `UserFace` (a reference table on Citus), which the trigger of migration 15
/// keeps in step: the first read after the rename shows it in every place a name shows.
#[tokio::test]
async fn a_renamed_user_shows_renamed_in_the_project_its_members_and_its_invites() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let project = app.project(&owner, "PRIVATE").await;
    app.add_collaborator(&project, &alice, "VIEWER").await;
    invite(&app, &owner, &project, json!({"userId": bob.id, "role": "VIEWER"})).await.expect(StatusCode::CREATED);

    let rename = |id: String, name: &'static str, image: Option<&'static str>| {
        let pool = app.pool.clone();
        async move {
            sqlx::query(r#"UPDATE "User" SET "name" = $2, "image" = $3 WHERE "id" = $1"#)
                .bind(id)
                .bind(name)
                .bind(image)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    rename(owner.id.clone(), "Ada", Some("https://img.example/ada.png")).await;
    rename(alice.id.clone(), "Alicia", None).await;
    let face = json!({"id": owner.id, "name": "Ada", "image": "https://img.example/ada.png"});

    let read = app.call(Method::GET, &format!("/api/projects/{project}"), Some(&owner.token), None).await;
    assert_eq!(read.expect(StatusCode::OK).json["owner"], face);
    let members = app.call(Method::GET, &format!("/api/projects/{project}/members"), Some(&owner.token), None).await;
    let names: Vec<(&str, &str)> = members.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| (member["userId"].as_str().unwrap(), member["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [(owner.id.as_str(), "Ada"), (alice.id.as_str(), "Alicia")]);
    let uri = format!("/api/projects/{project}/members/{}", alice.id);
    let changed = app.call(Method::PATCH, &uri, Some(&owner.token), Some(json!({"role": "EDITOR"}))).await;
    assert_eq!(changed.expect(StatusCode::OK).json["name"], "Alicia");
    let invites = app.call(Method::GET, &format!("/api/projects/{project}/invites"), Some(&owner.token), None).await;
    assert_eq!(invites.expect(StatusCode::OK).json["items"][0]["fromUser"], face);

    // The face follows only the public columns: a balance change leaves it as it is, and a
    // deleted user takes it along.
    let faces = |id: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<String>)>(
                r#"SELECT "name", "image" FROM "UserFace" WHERE "id" = $1"#,
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };
    // An update that changes neither name nor image leaves the face alone: a face written
    // behind the trigger's back survives a balance change.
    sqlx::query(r#"UPDATE "UserFace" SET "name" = 'Set aside' WHERE "id" = $1"#)
        .bind(&bob.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE "User" SET "tokenBalance" = 1 WHERE "id" = $1"#)
        .bind(&bob.id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(faces(bob.id.clone()).await, Some((Some("Set aside".to_owned()), None)));
    sqlx::query(r#"UPDATE "User" SET "name" = 'Bob' WHERE "id" = $1"#).bind(&bob.id).execute(&app.pool).await.unwrap();
    assert_eq!(
        faces(bob.id.clone()).await,
        Some((Some("Set aside".to_owned()), None)),
        "setting the name it already has changes nothing"
    );
    sqlx::query(r#"UPDATE "User" SET "name" = 'Robert' WHERE "id" = $1"#)
        .bind(&bob.id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(faces(bob.id.clone()).await, Some((Some("Robert".to_owned()), None)));
    sqlx::query(r#"DELETE FROM "User" WHERE "id" = $1"#).bind(&bob.id).execute(&app.pool).await.unwrap();
    assert_eq!(faces(bob.id.clone()).await, None);
}
