//! Bad input (issue 3): each class gets a 4xx in the JSON error shape, never a 500, and
//! leaves the database exactly as it was: every refused request below is checked against a
//! fingerprint of every table a request could write.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::{TestApp, TestResponse, TestUser};

/// The tables any endpoint under test writes.
const TABLES: [&str; 7] =
    ["User", "Session", "Project", "ProjectFile", "Message", "ProjectCollaborator", "LoginFailure"];

/// Each table's row count and a digest of its full contents.
async fn fingerprint(app: &TestApp) -> Vec<(&'static str, i64, String)> {
    let mut tables = Vec::new();
    for table in TABLES {
        let (count, digest): (i64, String) = sqlx::query_as(&format!(
            r#"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))
               FROM "{table}" t"#
        ))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        tables.push((table, count, digest));
    }
    tables
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!(r#"SELECT count(*) FROM "{table}""#)).fetch_one(&app.pool).await.unwrap()
}

/// One request with a raw body, optionally authenticated: `TestApp::call` only sends
/// well-formed JSON and `TestApp::request` no token.
struct Req<'a> {
    method: Method,
    uri: String,
    token: Option<&'a str>,
    content_type: &'static str,
    body: Vec<u8>,
}

fn raw<'a>(method: Method, uri: impl Into<String>, token: Option<&'a str>, body: impl Into<Vec<u8>>) -> Req<'a> {
    Req { method, uri: uri.into(), token, content_type: "application/json", body: body.into() }
}

fn json_req<'a>(method: Method, uri: impl Into<String>, token: Option<&'a str>, body: Value) -> Req<'a> {
    raw(method, uri, token, serde_json::to_vec(&body).unwrap())
}

fn get<'a>(uri: impl Into<String>, token: Option<&'a str>) -> Req<'a> {
    raw(Method::GET, uri, token, Vec::new())
}

async fn send(app: &TestApp, req: Req<'_>) -> TestResponse {
    let mut request = Request::builder().method(req.method).uri(req.uri);
    if let Some(token) = req.token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if !req.body.is_empty() {
        request = request.header(header::CONTENT_TYPE, req.content_type);
    }
    let response = app.router.clone().oneshot(request.body(Body::from(req.body)).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    TestResponse { status, headers, json }
}

/// Sends `req` and asserts it is refused with `status` and `code` in the JSON error shape,
/// and that no table changed.
async fn refused(app: &TestApp, what: &str, req: Req<'_>, status: StatusCode, code: &str) -> TestResponse {
    let before = fingerprint(app).await;
    let response = send(app, req).await;
    assert_eq!(response.status, status, "{what}: {}", response.json);
    assert_eq!(response.error_code(), code, "{what}");
    assert_eq!(fingerprint(app).await, before, "{what}: the database changed");
    response
}

/// Sends `req` and asserts it succeeds with `status`.
async fn accepted(app: &TestApp, what: &str, req: Req<'_>, status: StatusCode) -> TestResponse {
    let response = send(app, req).await;
    assert_eq!(response.status, status, "{what}: {}", response.json);
    response
}

/// An owner with a private project holding one file and one message, so that "unchanged"
/// means something.
struct World {
    app: TestApp,
    owner: TestUser,
    project: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::new().await;
        let owner = app.user("Owner").await;
        let project = app.project(&owner, "PRIVATE").await;
        let world = Self { app, owner, project };
        let file = json!({"operations": [{"op": "upsert", "path": "index.html", "content": "<p>hi</p>"}]});
        accepted(&world.app, "fixture file", json_req(Method::PUT, world.files(), world.token(), file), StatusCode::OK)
            .await;
        let message = json!({"role": "user", "content": "hello"});
        accepted(
            &world.app,
            "fixture message",
            json_req(Method::POST, world.messages(), world.token(), message),
            StatusCode::CREATED,
        )
        .await;
        world
    }

    fn token(&self) -> Option<&str> {
        Some(&self.owner.token)
    }

    fn project_uri(&self) -> String {
        format!("/api/projects/{}", self.project)
    }

    fn files(&self) -> String {
        format!("/api/projects/{}/files", self.project)
    }

    fn messages(&self) -> String {
        format!("/api/projects/{}/messages", self.project)
    }

    /// A batch of `operations` against the project.
    fn batch(&self, operations: Vec<Value>) -> Req<'_> {
        json_req(Method::PUT, self.files(), self.token(), json!({ "operations": operations }))
    }

    async fn project_name(&self) -> String {
        sqlx::query_scalar(r#"SELECT "name" FROM "Project" WHERE "id" = $1"#)
            .bind(&self.project)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }
}

fn upsert(path: &str, content: &str) -> Value {
    json!({"op": "upsert", "path": path, "content": content})
}

fn signup(name: &str, email: &str, password: &str) -> Value {
    json!({"name": name, "email": email, "password": password})
}

#[tokio::test]
async fn malformed_json_is_400() {
    let w = World::new().await;
    let token = w.token();
    let bodies: [&[u8]; 7] = [
        br#"{"name":"#,
        b"not json",
        b"{'name': 'single quotes'}",
        br#"{"name": "a", "projectType": "website"} trailing"#,
        br#"{"name": "a",}"#,
        b"[1, 2",
        b"   ",
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(body);
        let routes = [
            (Method::POST, "/api/auth/signup".to_owned(), None),
            (Method::POST, "/api/auth/login".to_owned(), None),
            (Method::POST, "/api/projects".to_owned(), token),
            (Method::PATCH, w.project_uri(), token),
            (Method::PUT, w.files(), token),
            (Method::POST, w.messages(), token),
        ];
        for (method, uri, token) in routes {
            let what = format!("{method} {uri} with {shown:?}");
            let req = raw(method, uri, token, body);
            refused(&w.app, &what, req, StatusCode::BAD_REQUEST, "bad_request").await;
        }
    }
    // A body that is not declared as JSON is refused before it is read.
    let mut req = raw(Method::POST, "/api/projects", token, r#"{"name": "a", "projectType": "website"}"#);
    req.content_type = "text/plain";
    refused(&w.app, "text/plain body", req, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
}

#[tokio::test]
async fn wrong_types_are_422() {
    let w = World::new().await;
    let token = w.token();
    let unprocessable =
        |what: &'static str, method: Method, uri: String, body: Value| (what, json_req(method, uri, token, body));
    let cases = [
        unprocessable(
            "signup name as a number",
            Method::POST,
            "/api/auth/signup".into(),
            json!({"name": 1, "email": "new@example.com", "password": "password1"}),
        ),
        unprocessable(
            "signup password as a number",
            Method::POST,
            "/api/auth/signup".into(),
            json!({"name": "New", "email": "new@example.com", "password": 12345678}),
        ),
        unprocessable(
            "signup without a password",
            Method::POST,
            "/api/auth/signup".into(),
            json!({"name": "New", "email": "new@example.com"}),
        ),
        unprocessable(
            "login e-mail as an array",
            Method::POST,
            "/api/auth/login".into(),
            json!({"email": ["owner@example.com"], "password": "Owner-password"}),
        ),
        unprocessable(
            "project name as a number",
            Method::POST,
            "/api/projects".into(),
            json!({"name": 5, "projectType": "website"}),
        ),
        unprocessable("project without projectType", Method::POST, "/api/projects".into(), json!({"name": "a"})),
        unprocessable(
            "unknown visibility",
            Method::POST,
            "/api/projects".into(),
            json!({"name": "a", "projectType": "website", "visibility": "SECRET"}),
        ),
        unprocessable(
            "activeAgents as a string",
            Method::POST,
            "/api/projects".into(),
            json!({"name": "a", "projectType": "website", "activeAgents": "all"}),
        ),
        unprocessable(
            "a project as an array",
            Method::POST,
            "/api/projects".into(),
            json!([{"name": "a", "projectType": "website"}]),
        ),
        unprocessable("PATCH name as a number", Method::PATCH, w.project_uri(), json!({"name": 42})),
        unprocessable("PATCH lower-case visibility", Method::PATCH, w.project_uri(), json!({"visibility": "public"})),
        unprocessable("PATCH activeAgents of numbers", Method::PATCH, w.project_uri(), json!({"activeAgents": [1, 2]})),
        unprocessable("operations as a string", Method::PUT, w.files(), json!({"operations": "all"})),
        unprocessable("no operations", Method::PUT, w.files(), json!({})),
        unprocessable(
            "an unknown op",
            Method::PUT,
            w.files(),
            json!({"operations": [{"op": "rename", "path": "a.txt"}]}),
        ),
        unprocessable(
            "content as a number",
            Method::PUT,
            w.files(),
            json!({"operations": [{"op": "upsert", "path": "a.txt", "content": 5}]}),
        ),
        unprocessable(
            "an upsert without content",
            Method::PUT,
            w.files(),
            json!({"operations": [{"op": "upsert", "path": "a.txt"}]}),
        ),
        unprocessable("an unknown message role", Method::POST, w.messages(), json!({"role": "robot", "content": "x"})),
        unprocessable(
            "tokens as a string",
            Method::POST,
            w.messages(),
            json!({"role": "user", "content": "x", "tokens": "many"}),
        ),
        unprocessable(
            "fractional tokens",
            Method::POST,
            w.messages(),
            json!({"role": "user", "content": "x", "tokens": 1.5}),
        ),
        unprocessable(
            "tokens beyond int4",
            Method::POST,
            w.messages(),
            json!({"role": "user", "content": "x", "tokens": 3_000_000_000_u64}),
        ),
        unprocessable(
            "negative tokens",
            Method::POST,
            w.messages(),
            json!({"role": "user", "content": "x", "tokens": -1}),
        ),
    ];
    for (what, req) in cases {
        refused(&w.app, what, req, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
}

#[tokio::test]
async fn unknown_fields_are_422_and_patch_takes_only_its_allow_list() {
    let w = World::new().await;
    let token = w.token();
    let stranger = w.app.user("Stranger").await;
    let original_name = w.project_name().await;

    let patches = [
        json!({"userId": "x"}),
        json!({"userId": stranger.id}),
        json!({"likeCount": 5}),
        json!({"forkCount": 5}),
        json!({"viewCount": 1000}),
        json!({"isFeatured": true}),
        json!({"id": "another-id"}),
        json!({"createdAt": "2020-01-01T00:00:00Z"}),
        json!({"updatedAt": "2020-01-01T00:00:00Z"}),
        json!({"currentCode": "<script></script>"}),
        json!({"project_type": "snake case is not the API's"}),
        // One allowed field does not let an unknown one through: nothing is applied.
        json!({"name": "Renamed", "likeCount": 5}),
    ];
    for patch in patches {
        let what = format!("PATCH {patch}");
        let req = json_req(Method::PATCH, w.project_uri(), token, patch);
        refused(&w.app, &what, req, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }

    let others = [
        (
            "create with userId",
            json_req(
                Method::POST,
                "/api/projects",
                token,
                json!({"name": "a", "projectType": "website", "userId": stranger.id}),
            ),
        ),
        (
            "create with likeCount",
            json_req(
                Method::POST,
                "/api/projects",
                token,
                json!({"name": "a", "projectType": "website", "likeCount": 5}),
            ),
        ),
        (
            "signup choosing a plan",
            json_req(
                Method::POST,
                "/api/auth/signup",
                None,
                json!({"name": "New", "email": "new@example.com", "password": "password1", "plan": "ENTERPRISE"}),
            ),
        ),
        (
            "signup choosing a balance",
            json_req(
                Method::POST,
                "/api/auth/signup",
                None,
                json!({"name": "New", "email": "new@example.com", "password": "password1", "tokenBalance": 1_000_000}),
            ),
        ),
        (
            "login with a remember-me",
            json_req(
                Method::POST,
                "/api/auth/login",
                None,
                json!({"email": "owner@example.com", "password": "Owner-password", "remember": true}),
            ),
        ),
        ("an upsert with a size", w.batch(vec![json!({"op": "upsert", "path": "a.txt", "content": "x", "size": 1})])),
        ("a delete with content", w.batch(vec![json!({"op": "delete", "path": "index.html", "content": "x"})])),
        ("a batch with a flag", json_req(Method::PUT, w.files(), token, json!({"operations": [], "force": true}))),
        (
            "a message with a cursor",
            json_req(Method::POST, w.messages(), token, json!({"role": "user", "content": "x", "cursor": 1})),
        ),
    ];
    for (what, req) in others {
        refused(&w.app, what, req, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
    assert_eq!(w.project_name().await, original_name);

    // The allow-listed fields do work, with the same caller.
    let allowed = json!({
        "name": "Renamed", "description": "d", "projectType": "app", "activeAgents": ["coder"],
        "visibility": "PUBLIC", "previewUrl": "https://example.com/preview"
    });
    let response = accepted(
        &w.app,
        "PATCH with every allowed field",
        json_req(Method::PATCH, w.project_uri(), token, allowed),
        StatusCode::OK,
    )
    .await;
    assert_eq!(response.json["name"], "Renamed");
    assert_eq!(response.json["likeCount"], 0);
    assert_eq!(response.json["owner"]["id"], w.owner.id.as_str());
}

#[tokio::test]
async fn over_long_and_too_short_strings_are_422() {
    let w = World::new().await;
    let token = w.token();
    let long = |n: usize| "x".repeat(n);
    let create = |body: Value| json_req(Method::POST, "/api/projects", token, body);
    let patch = |body: Value| json_req(Method::PATCH, w.project_uri(), token, body);
    let signup_req = |body: Value| json_req(Method::POST, "/api/auth/signup", None, body);
    let cases = [
        ("project name of 201", create(json!({"name": long(201), "projectType": "website"}))),
        ("project name of 201 two-byte characters", create(json!({"name": "é".repeat(201), "projectType": "website"}))),
        ("blank project name", create(json!({"name": "   ", "projectType": "website"}))),
        ("description of 2001", create(json!({"name": "a", "projectType": "website", "description": long(2001)}))),
        ("projectType of 51", create(json!({"name": "a", "projectType": long(51)}))),
        ("21 agents", create(json!({"name": "a", "projectType": "website", "activeAgents": vec!["agent"; 21]}))),
        ("PATCH name of 201", patch(json!({"name": long(201)}))),
        ("PATCH empty name", patch(json!({"name": ""}))),
        ("PATCH previewUrl that is no http(s) URL", patch(json!({"previewUrl": "javascript:alert(1)"}))),
        ("signup name of 101", signup_req(signup(&long(101), "new@example.com", "password1"))),
        ("signup password of 129", signup_req(signup("New", "new@example.com", &long(129)))),
        ("signup password of 7", signup_req(signup("New", "new@example.com", "1234567"))),
        ("signup e-mail of 255", signup_req(signup("New", &format!("{}@example.com", long(243)), "password1"))),
        ("signup e-mail without @", signup_req(signup("New", "new.example.com", "password1"))),
        (
            "login e-mail of 3000",
            json_req(
                Method::POST,
                "/api/auth/login",
                None,
                json!({"email": format!("{}@example.com", long(2988)), "password": "password1"}),
            ),
        ),
        (
            "login password of 1025",
            json_req(Method::POST, "/api/auth/login", None, json!({"email": "a@example.com", "password": long(1025)})),
        ),
        (
            "message of 200001 characters",
            json_req(Method::POST, w.messages(), token, json!({"role": "user", "content": long(200_001)})),
        ),
        ("empty message", json_req(Method::POST, w.messages(), token, json!({"role": "user", "content": ""}))),
        (
            "language of 31",
            w.batch(vec![json!({"op": "upsert", "path": "a.txt", "content": "x", "language": long(31)})]),
        ),
    ];
    for (what, req) in cases {
        refused(&w.app, what, req, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }

    // The limits themselves are allowed.
    let project = accepted(
        &w.app,
        "project name of 200",
        create(json!({"name": long(200), "projectType": "website"})),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(project.json["name"], long(200));
    for (name, email, password) in
        [(long(100), "hundred@example.com", long(8)), ("Max".to_owned(), "max@example.com", long(128))]
    {
        let user =
            accepted(&w.app, "signup at the limits", signup_req(signup(&name, email, &password)), StatusCode::CREATED)
                .await;
        assert_eq!(user.json["name"], name.as_str());
        let login = w.app.login(email, &password).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_and_oversized_files_422() {
    let w = World::new().await;
    let token = w.token();
    let over_default = "x".repeat(2 * 1024 * 1024 + 1);
    let cases = [
        (
            "signup over 2 MiB",
            json_req(
                Method::POST,
                "/api/auth/signup",
                None,
                json!({"name": over_default, "email": "big@example.com", "password": "password1"}),
            ),
        ),
        (
            "project over 2 MiB",
            json_req(
                Method::POST,
                "/api/projects",
                token,
                json!({"name": "a", "projectType": "website", "description": over_default}),
            ),
        ),
        ("PATCH over 2 MiB", json_req(Method::PATCH, w.project_uri(), token, json!({"description": over_default}))),
        (
            "message over 2 MiB",
            json_req(Method::POST, w.messages(), token, json!({"role": "user", "content": over_default})),
        ),
        ("file batch over 8 MiB", w.batch(vec![upsert("huge.txt", &"x".repeat(8 * 1024 * 1024 + 1))])),
    ];
    for (what, req) in cases {
        refused(&w.app, what, req, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }

    // The batch route takes bodies over 2 MiB, but each file is capped by the owner's plan
    // (FREE: 50 KiB), in bytes, and the operation is named.
    let cap = 50 * 1024;
    let too_big = [
        ("a 3 MiB file", "x".repeat(3 * 1024 * 1024), 0),
        ("one byte over the cap", "x".repeat(cap + 1), 1),
        ("over the cap in bytes, not characters", "é".repeat(cap / 2 + 1), 1),
    ];
    for (what, content, index) in too_big {
        let mut operations = vec![upsert("small.txt", "fine")];
        operations.insert(index, upsert("big.txt", &content));
        let response =
            refused(&w.app, what, w.batch(operations), StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("operations[{index}]")), "{what}: {message}");
    }

    // At the cap, 60 files make a 3 MB body that the batch route accepts.
    let operations: Vec<Value> = (0..60).map(|i| upsert(&format!("full/{i:02}.txt"), &"y".repeat(cap))).collect();
    let files_before = count(&w.app, "ProjectFile").await;
    let response = accepted(&w.app, "60 files at the cap", w.batch(operations), StatusCode::OK).await;
    assert_eq!(response.json["created"].as_array().unwrap().len(), 60);
    assert_eq!(count(&w.app, "ProjectFile").await, files_before + 60);
}

#[tokio::test]
async fn unknown_ids_and_missing_files_are_404() {
    let w = World::new().await;
    let token = w.token();
    let missing_ids =
        ["no-such-project".to_owned(), "clx0000000000000000000000".to_owned(), "'%20OR%20'1'='1".to_owned()];
    for id in &missing_ids {
        let base = format!("/api/projects/{id}");
        let cases = [
            get(base.clone(), token),
            get(base.clone(), None),
            json_req(Method::PATCH, base.clone(), token, json!({"name": "x"})),
            raw(Method::DELETE, base.clone(), token, Vec::new()),
            raw(Method::POST, format!("{base}/view"), token, Vec::new()),
            raw(Method::POST, format!("{base}/view"), None, Vec::new()),
            get(format!("{base}/files"), token),
            get(format!("{base}/files/index.html"), token),
            json_req(Method::PUT, format!("{base}/files"), token, json!({"operations": [upsert("a.txt", "x")]})),
            json_req(Method::POST, format!("{base}/messages"), token, json!({"role": "user", "content": "x"})),
            get(format!("{base}/messages"), token),
        ];
        for req in cases {
            let what = format!("{} {} as {:?}", req.method, req.uri, req.token.is_some());
            refused(&w.app, &what, req, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    for path in ["nope.txt", "index.html/child", "src/deep/missing.js", "INDEX.HTML"] {
        let uri = format!("{}/files/{path}", w.project_uri());
        refused(&w.app, &uri.clone(), get(uri, token), StatusCode::NOT_FOUND, "not_found").await;
    }
    // The project and its file are still there.
    let file =
        accepted(&w.app, "the real file", get(format!("{}/files/index.html", w.project_uri()), token), StatusCode::OK)
            .await;
    assert_eq!(file.json["content"], "<p>hi</p>");
}

#[tokio::test]
async fn nul_bytes_are_422() {
    let w = World::new().await;
    let token = w.token();
    let nul = "a\u{0}b";
    let cases = [
        ("signup name", json_req(Method::POST, "/api/auth/signup", None, signup(nul, "nul@example.com", "password1"))),
        (
            "signup e-mail",
            json_req(Method::POST, "/api/auth/signup", None, signup("Nul", "nul\u{0}@example.com", "password1")),
        ),
        (
            "signup password",
            json_req(Method::POST, "/api/auth/signup", None, signup("Nul", "nul@example.com", "password\u{0}1")),
        ),
        (
            "login e-mail",
            json_req(
                Method::POST,
                "/api/auth/login",
                None,
                json!({"email": "owner@example.com\u{0}", "password": "Owner-password"}),
            ),
        ),
        (
            "project name",
            json_req(Method::POST, "/api/projects", token, json!({"name": nul, "projectType": "website"})),
        ),
        (
            "project agent",
            json_req(
                Method::POST,
                "/api/projects",
                token,
                json!({"name": "a", "projectType": "website", "activeAgents": [nul]}),
            ),
        ),
        (
            "a key",
            json_req(
                Method::POST,
                "/api/projects",
                token,
                json!({"name": "a", "projectType": "website", "na\u{0}me": "b"}),
            ),
        ),
        ("PATCH description", json_req(Method::PATCH, w.project_uri(), token, json!({"description": nul}))),
        ("file content", w.batch(vec![upsert("a.txt", nul)])),
        ("file path", w.batch(vec![upsert(nul, "x")])),
        ("file language", w.batch(vec![json!({"op": "upsert", "path": "a.txt", "content": "x", "language": nul})])),
        ("message content", json_req(Method::POST, w.messages(), token, json!({"role": "user", "content": nul}))),
    ];
    for (what, req) in cases {
        assert!(String::from_utf8_lossy(&req.body).contains("\\u0000"), "{what}: the body carries an escaped NUL");
        refused(&w.app, what, req, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
}

#[tokio::test]
async fn invalid_utf8_is_400() {
    let w = World::new().await;
    let token = w.token();
    let with_bytes = |before: &str, bytes: &[u8], after: &str| [before.as_bytes(), bytes, after.as_bytes()].concat();
    // The route that needs no session goes through the plain `TestApp::request`.
    let body = with_bytes(r#"{"name": ""#, b"\xff\xfe", r#"", "email": "bytes@example.com", "password": "password1"}"#);
    let before = fingerprint(&w.app).await;
    let response = w.app.request(Method::POST, "/api/auth/signup", Some(("application/json", body))).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{}", response.json);
    assert_eq!(response.error_code(), "bad_request");
    assert_eq!(fingerprint(&w.app).await, before);

    let cases = [
        (
            "project name with a broken two-byte sequence",
            raw(
                Method::POST,
                "/api/projects",
                token,
                with_bytes(r#"{"name": "a"#, b"\xc3\x28", r#"", "projectType": "website"}"#),
            ),
        ),
        (
            "PATCH with an overlong encoding",
            raw(Method::PATCH, w.project_uri(), token, with_bytes(r#"{"description": ""#, b"\xc0\xaf", r#""}"#)),
        ),
        (
            "file content with an encoded surrogate",
            raw(
                Method::PUT,
                w.files(),
                token,
                with_bytes(
                    r#"{"operations": [{"op": "upsert", "path": "a.txt", "content": ""#,
                    b"\xed\xa0\x80",
                    r#""}]}"#,
                ),
            ),
        ),
        (
            "file path with a stray continuation byte",
            raw(
                Method::PUT,
                w.files(),
                token,
                with_bytes(r#"{"operations": [{"op": "upsert", "path": "a"#, b"\x80", r#".txt", "content": "x"}]}"#),
            ),
        ),
        (
            "message with a truncated sequence",
            raw(
                Method::POST,
                w.messages(),
                token,
                with_bytes(r#"{"role": "user", "content": "a"#, b"\xe2\x82", r#""}"#),
            ),
        ),
        (
            "message with a lone surrogate escape",
            raw(Method::POST, w.messages(), token, r#"{"role": "user", "content": "\ud800"}"#),
        ),
        ("bytes outside any string", raw(Method::POST, "/api/projects", token, b"\xff{}".to_vec())),
        (
            "a raw NUL byte in a string",
            raw(
                Method::POST,
                "/api/projects",
                token,
                with_bytes(r#"{"name": "a"#, b"\x00", r#"b", "projectType": "website"}"#),
            ),
        ),
    ];
    for (what, req) in cases {
        refused(&w.app, what, req, StatusCode::BAD_REQUEST, "bad_request").await;
    }
}

#[tokio::test]
async fn hostile_paths_reject_the_whole_batch() {
    let w = World::new().await;
    let hostile = [
        "../x".to_owned(),
        "a/../../x".to_owned(),
        "..".to_owned(),
        "/etc/passwd".to_owned(),
        "a//b".to_owned(),
        "a\\b".to_owned(),
        "..\\..\\windows".to_owned(),
        "./a".to_owned(),
        "a/./b".to_owned(),
        "a/".to_owned(),
        String::new(),
        "a\u{1}b".to_owned(),
        "a\nb".to_owned(),
        "a\tb".to_owned(),
        "a\u{1b}[31mb".to_owned(),
        "a\u{7f}b".to_owned(),
        "a\u{85}b".to_owned(),
        "x".repeat(256),
        "é".repeat(128),
    ];
    for (n, path) in hostile.iter().enumerate() {
        // The bad operation sits among good ones, at a varying position.
        let index = n % 4;
        let mut operations = vec![
            upsert("good/a.txt", "a"),
            upsert("index.html", "<p>changed</p>"),
            json!({"op": "delete", "path": "good/never.txt"}),
        ];
        let op = if n % 3 == 0 { json!({"op": "delete", "path": path}) } else { upsert(path, "x") };
        operations.insert(index, op);
        let what = format!("path {path:?} at operations[{index}]");
        let response =
            refused(&w.app, &what, w.batch(operations), StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("operations[{index}]")), "{what}: {message}");
    }

    // Reading through a hostile path is refused as well (percent-encoded or not).
    for path in ["a/../index.html", "%2E%2E/index.html", "%2Fetc%2Fpasswd", "a//b", "a%5Cb", "a%01b"] {
        let uri = format!("{}/files/{path}", w.project_uri());
        refused(&w.app, &uri.clone(), get(uri, w.token()), StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }

    // A path of exactly 255 bytes is fine, and the batch writes all of it.
    let longest = "x".repeat(255);
    let response = accepted(
        &w.app,
        "255-byte path",
        w.batch(vec![upsert(&longest, "x"), upsert("good/a.txt", "a")]),
        StatusCode::OK,
    )
    .await;
    assert_eq!(response.json["created"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn duplicate_paths_and_oversized_batches_are_422() {
    let w = World::new().await;
    let duplicates = [
        vec![upsert("a.txt", "1"), upsert("a.txt", "2")],
        vec![upsert("a.txt", "1"), json!({"op": "delete", "path": "a.txt"})],
        vec![json!({"op": "delete", "path": "index.html"}), upsert("index.html", "<p>again</p>")],
    ];
    for operations in duplicates {
        let what = format!("{operations:?}");
        let response =
            refused(&w.app, &what, w.batch(operations), StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("operations[1]"), "{what}: {message}");
    }

    let many = |n: usize| -> Vec<Value> { (0..n).map(|i| upsert(&format!("many/{i:04}.txt"), "x")).collect() };
    refused(&w.app, "1001 operations", w.batch(many(1001)), StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    let files_before = count(&w.app, "ProjectFile").await;
    let response = accepted(&w.app, "1000 operations", w.batch(many(1000)), StatusCode::OK).await;
    assert_eq!(response.json["created"].as_array().unwrap().len(), 1000);
    assert_eq!(count(&w.app, "ProjectFile").await, files_before + 1000);
}

#[tokio::test]
async fn sql_metacharacters_round_trip_unchanged() {
    let w = World::new().await;
    let token = w.token();
    let users_before = count(&w.app, "User").await;
    let injection = r#"'); DROP TABLE "User"; --"#;
    let meta = r#"%_'"\"#;

    // A project name.
    let created = accepted(
        &w.app,
        "project named like an injection",
        json_req(
            Method::POST,
            "/api/projects",
            token,
            json!({"name": injection, "projectType": "website", "description": meta}),
        ),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created.json["name"], injection);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let read = accepted(&w.app, "read back", get(format!("/api/projects/{id}"), token), StatusCode::OK).await;
    assert_eq!(read.json["name"], injection);
    assert_eq!(read.json["description"], meta);
    let list = accepted(&w.app, "list", get("/api/projects?limit=100", token), StatusCode::OK).await;
    let listed = list.json["items"].as_array().unwrap();
    assert!(listed.iter().any(|p| p["name"] == injection), "{}", list.json);
    let patched = accepted(
        &w.app,
        "PATCH with metacharacters",
        json_req(
            Method::PATCH,
            format!("/api/projects/{id}"),
            token,
            json!({"description": format!("{meta}{injection}")}),
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched.json["description"], format!("{meta}{injection}"));

    // File paths and contents; `%` and `_` stay literal, not LIKE patterns.
    let tricky_path = r#"q/%_'".txt"#;
    accepted(
        &w.app,
        "files with metacharacters",
        json_req(
            Method::PUT,
            format!("/api/projects/{id}/files"),
            token,
            json!({"operations": [upsert(tricky_path, meta), upsert("q/a_b.txt", injection)]}),
        ),
        StatusCode::OK,
    )
    .await;
    let file = accepted(
        &w.app,
        "read the tricky path",
        get(format!("/api/projects/{id}/files/q/%25_%27%22.txt"), token),
        StatusCode::OK,
    )
    .await;
    assert_eq!(file.json["path"], tricky_path);
    assert_eq!(file.json["content"], meta);
    let listing = accepted(&w.app, "listing", get(format!("/api/projects/{id}/files"), token), StatusCode::OK).await;
    let paths: Vec<&str> =
        listing.json["items"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.contains(&tricky_path) && paths.contains(&"q/a_b.txt"));
    for pattern in ["q/%25", "q/a%25", "q/aXb.txt", "q/%25_%25"] {
        let uri = format!("/api/projects/{id}/files/{pattern}");
        refused(&w.app, &uri.clone(), get(uri, token), StatusCode::NOT_FOUND, "not_found").await;
    }

    // Messages, and a role filter that tries to widen the query.
    let messages = format!("/api/projects/{id}/messages");
    for content in [injection, meta] {
        accepted(
            &w.app,
            "message with metacharacters",
            json_req(Method::POST, messages.clone(), token, json!({"role": "user", "content": content})),
            StatusCode::CREATED,
        )
        .await;
    }
    let page = accepted(&w.app, "messages", get(messages.clone(), token), StatusCode::OK).await;
    let contents: Vec<&str> =
        page.json["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, [meta, injection]);
    refused(
        &w.app,
        "role filter injection",
        get(format!("{messages}?role=user'%20OR%20'1'='1"), token),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    // Accounts.
    let email = r#"o'brien+%_"\@example.com"#;
    let name = format!("Robert{injection}");
    let user = accepted(
        &w.app,
        "signup with metacharacters",
        json_req(Method::POST, "/api/auth/signup", None, signup(&name, email, "password1")),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(user.json["name"], name.as_str());
    assert_eq!(user.json["email"], email);
    let login = w.app.login(email, "password1").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let session = w.app.call(Method::GET, "/api/auth/session", login.json["token"].as_str(), None).await;
    assert_eq!(session.json["email"], email);
    let injected_login = w.app.login("' OR '1'='1", "' OR '1'='1").await;
    assert_eq!(injected_login.status, StatusCode::UNAUTHORIZED);
    assert_eq!(injected_login.error_code(), "unauthorized");

    // The User table is still there, with exactly the one new account.
    let exists: bool =
        sqlx::query_scalar(r#"SELECT to_regclass('"User"') IS NOT NULL"#).fetch_one(&w.app.pool).await.unwrap();
    assert!(exists);
    assert_eq!(count(&w.app, "User").await, users_before + 1);
}

#[tokio::test]
async fn duplicate_email_is_409_whatever_the_case() {
    let app = TestApp::new().await;
    let signup_req =
        |email: &str, password: &str| json_req(Method::POST, "/api/auth/signup", None, signup("Dup", email, password));
    accepted(&app, "first signup", signup_req("dup@example.com", "first-password"), StatusCode::CREATED).await;
    for email in ["dup@example.com", "DUP@EXAMPLE.COM", "Dup@Example.com", "  dup@example.com "] {
        refused(&app, email, signup_req(email, "second-password"), StatusCode::CONFLICT, "conflict").await;
    }
    // The first account keeps its password.
    let login = app.login("dup@example.com", "first-password").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let second = app.login("dup@example.com", "second-password").await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&app, "User").await, 1);
}

#[tokio::test]
async fn bad_cursors_are_400_and_limit_zero_is_422() {
    let w = World::new().await;
    let token = w.token();
    let lists = ["/api/projects".to_owned(), w.files(), w.messages()];
    // A cursor from one list is no cursor for another.
    let project_cursor = {
        accepted(
            &w.app,
            "a second project",
            json_req(Method::POST, "/api/projects", token, json!({"name": "b", "projectType": "website"})),
            StatusCode::CREATED,
        )
        .await;
        let page = accepted(&w.app, "first page", get("/api/projects?limit=1", token), StatusCode::OK).await;
        page.json["nextCursor"].as_str().unwrap().to_owned()
    };
    // Well-formed base64url, but of `{}`: no list's position.
    let forged = "e30";
    for list in &lists {
        let mut bad_queries = vec![
            "cursor=garbage!".to_owned(),
            "cursor=abc".to_owned(),
            format!("cursor={forged}"),
            "cursor='%20OR%201=1--".to_owned(),
            "limit=-1".to_owned(),
            "limit=abc".to_owned(),
            "limit=99999999999".to_owned(),
            "offset=10".to_owned(),
        ];
        if list.ends_with("/messages") {
            bad_queries.push(format!("cursor={project_cursor}"));
            bad_queries.push("direction=sideways".to_owned());
            bad_queries.push("role=robot".to_owned());
        }
        for query in bad_queries {
            let uri = format!("{list}?{query}");
            refused(&w.app, &uri.clone(), get(uri, token), StatusCode::BAD_REQUEST, "bad_request").await;
        }
        let uri = format!("{list}?limit=0");
        refused(&w.app, &uri.clone(), get(uri, token), StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
        // A well-formed request to the same list works.
        let page = accepted(&w.app, list, get(format!("{list}?limit=1"), token), StatusCode::OK).await;
        assert_eq!(page.json["items"].as_array().unwrap().len(), 1, "{list}");
    }
    // The cursor the service issued does work where it belongs.
    let next = accepted(
        &w.app,
        "second page",
        get(format!("/api/projects?limit=1&cursor={project_cursor}"), token),
        StatusCode::OK,
    )
    .await;
    assert_eq!(next.json["items"].as_array().unwrap().len(), 1);
}
