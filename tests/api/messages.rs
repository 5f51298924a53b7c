//! Message history: appends, keyset pages in both directions, the role filter, and
//! stability while other requests append.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{TestApp, TestUser};

async fn append(app: &TestApp, user: &TestUser, project: &str, role: &str, content: &str) -> Value {
    let uri = format!("/api/projects/{project}/messages");
    let body = json!({"role": role, "content": content, "tokens": 3});
    let response = app.call(Method::POST, &uri, Some(&user.token), Some(body)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.json);
    response.json
}

/// Reads every page from `query` on, returning the contents in page order.
async fn read_all(app: &TestApp, user: &TestUser, project: &str, query: &str) -> Vec<String> {
    let mut contents = Vec::new();
    let mut cursor = String::new();
    loop {
        let uri = format!("/api/projects/{project}/messages?{query}{cursor}");
        let page = app.call(Method::GET, &uri, Some(&user.token), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        contents
            .extend(page.json["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()));
        match page.json["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return contents,
        }
    }
}

#[tokio::test]
async fn pages_go_back_or_forward_and_filter_by_role() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    for n in 0..7 {
        let role = if n % 2 == 0 { "user" } else { "assistant" };
        let message = append(&app, &owner, &project, role, &format!("m{n}")).await;
        assert_eq!(message["role"], role);
        assert_eq!(message["tokens"], 3);
    }
    let older = read_all(&app, &owner, &project, "limit=3").await;
    assert_eq!(older, ["m6", "m5", "m4", "m3", "m2", "m1", "m0"], "default: newest first");
    let newer = read_all(&app, &owner, &project, "limit=2&direction=newer").await;
    assert_eq!(newer, ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    let users = read_all(&app, &owner, &project, "limit=2&role=user").await;
    assert_eq!(users, ["m6", "m4", "m2", "m0"]);

    let default_page =
        app.call(Method::GET, &format!("/api/projects/{project}/messages"), Some(&owner.token), None).await;
    assert_eq!(default_page.json["items"].as_array().unwrap().len(), 7, "default limit 50");
    let oversized =
        app.call(Method::GET, &format!("/api/projects/{project}/messages?limit=5000"), Some(&owner.token), None).await;
    assert_eq!(oversized.status, StatusCode::UNPROCESSABLE_ENTITY, "an oversized limit is refused, not capped");
    assert_eq!(oversized.error_code(), "unprocessable");
}

/// A reader pages forward while writers append: every message it reads is read once, in
/// order, and every message committed before the reader's last page is among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_are_stable_under_concurrent_appends() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let owner = std::sync::Arc::new(app.user("Owner").await);
    let project = app.project(&owner, "PRIVATE").await;
    for n in 0..30 {
        append(&app, &owner, &project, "user", &format!("seed{n:03}")).await;
    }

    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let (app, owner, project) = (app.clone(), owner.clone(), project.clone());
        writers.spawn(async move {
            for n in 0..25 {
                append(&app, &owner, &project, "assistant", &format!("w{writer}-{n:03}")).await;
            }
        });
    }
    // Page forward while the writers run. At the end of what is committed so far there is
    // no next cursor, so after the writers finish the reader asks again from the last cursor
    // it had: the stable prefix it already saw comes first, then the rest.
    let mut read: Vec<String> = Vec::new();
    let mut cursor = String::new();
    let mut writers_done = false;
    loop {
        let uri = format!("/api/projects/{project}/messages?direction=newer&limit=7{cursor}");
        let page = app.call(Method::GET, &uri, Some(&owner.token), None).await;
        let items: Vec<String> =
            page.json["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect();
        if let Some(next) = page.json["nextCursor"].as_str() {
            read.extend(items);
            cursor = format!("&cursor={next}");
            continue;
        }
        if writers_done {
            read.extend(items);
            break;
        }
        while writers.join_next().await.is_some() {}
        writers_done = true;
        let again = app.call(Method::GET, &uri, Some(&owner.token), None).await;
        let prefix: Vec<&str> =
            again.json["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(prefix[..items.len()], items, "a page re-read from its cursor starts the same");
    }
    let unique: HashSet<&String> = read.iter().collect();
    assert_eq!(unique.len(), read.len(), "no message twice");
    assert_eq!(read.len(), 130, "no gaps: 30 seeded + 100 appended");
    assert_eq!(&read[..3], ["seed000", "seed001", "seed002"]);
    for writer in 0..4 {
        let own: Vec<&String> = read.iter().filter(|m| m.starts_with(&format!("w{writer}-"))).collect();
        assert!(own.windows(2).all(|w| w[0] < w[1]), "each writer's messages in order");
    }
}

#[tokio::test]
async fn a_page_is_bounded_in_bytes_and_a_cut_message_is_read_whole_by_id() {
    let app = TestApp::with_settings(&[("limits.message_page_bytes", "1000")]).await;
    let owner = app.user("Owner").await;
    let stranger = app.user("Stranger").await;
    let project = app.project(&owner, "PRIVATE").await;
    let other = app.project(&owner, "PRIVATE").await;
    let contents: Vec<String> = ["a", "b", "c"].iter().map(|letter| letter.repeat(600)).collect();
    let mut appended = Vec::new();
    for content in &contents {
        appended.push(append(&app, &owner, &project, "user", content).await["id"].as_str().unwrap().to_owned());
    }

    // Newest first: 600 bytes whole, then the 400 left of the budget, then nothing.
    let uri = format!("/api/projects/{project}/messages");
    let page = app.call(Method::GET, &uri, Some(&owner.token), None).await.expect(StatusCode::OK);
    let items = page.json["items"].as_array().unwrap();
    let cut: Vec<(usize, bool)> =
        items.iter().map(|m| (m["content"].as_str().unwrap().len(), m["truncated"].as_bool().unwrap())).collect();
    assert_eq!(cut, [(600, false), (400, true), (0, true)]);

    let oldest = format!("/api/projects/{project}/messages/{}", appended[0]);
    let whole = app.call(Method::GET, &oldest, Some(&owner.token), None).await.expect(StatusCode::OK);
    assert_eq!(
        (whole.json["content"].as_str(), whole.json["truncated"].as_bool()),
        (Some(contents[0].as_str()), Some(false))
    );

    // Not readable by whoever cannot read the project, nor through another project.
    for (token, uri) in [
        (None, oldest.clone()),
        (Some(&stranger.token), oldest.clone()),
        (Some(&owner.token), format!("/api/projects/{other}/messages/{}", appended[0])),
        (Some(&owner.token), format!("/api/projects/{project}/messages/no-such-message")),
    ] {
        let response = app.call(Method::GET, &uri, token.map(String::as_str), None).await;
        assert_eq!((response.status, response.error_code()), (StatusCode::NOT_FOUND, "not_found"), "{uri}");
    }
}
