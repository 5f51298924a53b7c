//! The error model: every failure answers `{"error":{"code","message"}}` with a 4xx/5xx status.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use vibing2::api::extract::JsonBody;
use vibing2::app;
use vibing2::state::AppState;

use crate::support::{send, TestApp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Probe {
    name: String,
    count: u32,
}

async fn probe(State(state): State<AppState>, body: JsonBody<Probe>) -> Result<StatusCode, vibing2::error::Error> {
    body.read(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The real router's layers around one JSON route, with a 1 KiB body limit.
async fn probe_router(app: &TestApp) -> Router {
    let settings = app.db.settings(&[("server.body_limit_bytes", "1024")]);
    let state = AppState::new(app.pool.clone(), settings).unwrap();
    app::with_layers(Router::new().route("/probe", post(probe)), state)
}

async fn post_probe(router: &Router, content_type: &str, body: impl Into<Vec<u8>>) -> crate::support::TestResponse {
    send(router, Method::POST, "/probe", Some((content_type, body.into()))).await
}

#[tokio::test]
async fn unknown_route_and_wrong_method_use_the_json_shape() {
    let app = TestApp::new().await;
    let missing = app.get("/api/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");

    let wrong_method = app.request(Method::DELETE, "/api/health", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.error_code(), "method_not_allowed");
}

#[tokio::test]
async fn bad_json_bodies_get_4xx_in_the_json_shape() {
    let app = TestApp::new().await;
    let router = probe_router(&app).await;
    let json = "application/json";

    let ok = post_probe(&router, json, r#"{"name":"a","count":1}"#).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);

    let cases: [(&str, &[u8], StatusCode, &str); 6] = [
        (json, br#"{"name":"a","#, StatusCode::BAD_REQUEST, "bad_request"),
        (json, br#"{"name":"a","count":"one"}"#, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
        (json, br#"{"name":"a","count":1,"admin":true}"#, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
        (json, b"{\"name\":\"\xff\xfe\",\"count\":1}", StatusCode::BAD_REQUEST, "bad_request"),
        ("text/plain", br#"{"name":"a","count":1}"#, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (json, &[b' '; 4096], StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
    ];
    for (content_type, body, status, code) in cases {
        let response = post_probe(&router, content_type, body.to_vec()).await;
        assert_eq!(response.status, status, "body {:?}", String::from_utf8_lossy(body));
        assert_eq!(response.error_code(), code);
    }
}

#[tokio::test]
async fn error_messages_never_echo_long_input() {
    let app = TestApp::new().await;
    let router = probe_router(&app).await;
    let long_field = format!(r#"{{"name":"a","count":1,"{}":1}}"#, "x".repeat(900));
    let response = post_probe(&router, "application/json", long_field).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.json["error"]["message"].as_str().unwrap().len() <= 200);
}
