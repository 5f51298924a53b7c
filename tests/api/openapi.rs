//! The OpenAPI document is served, generated from the handlers, and covers every route.

use axum::http::{Method, StatusCode};

use crate::support::TestApp;

/// Every route the service serves. A route added without documentation fails here.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/health"),
    ("get", "/api/health/database"),
    ("post", "/api/auth/signup"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("put", "/api/auth/password"),
    ("get", "/api/auth/session"),
    ("get", "/api/projects"),
    ("post", "/api/projects"),
    ("get", "/api/projects/{id}"),
    ("patch", "/api/projects/{id}"),
    ("delete", "/api/projects/{id}"),
    ("post", "/api/projects/{id}/view"),
    ("get", "/api/projects/{id}/files"),
    ("put", "/api/projects/{id}/files"),
    ("get", "/api/projects/{id}/files/{path}"),
    ("get", "/api/projects/{id}/messages"),
    ("post", "/api/projects/{id}/messages"),
    ("get", "/api/projects/{id}/messages/{messageId}"),
    ("post", "/api/projects/{id}/fork"),
    ("put", "/api/projects/{id}/like"),
    ("delete", "/api/projects/{id}/like"),
    ("get", "/api/discover"),
    ("post", "/api/usage"),
    ("get", "/api/usage/summary"),
    ("get", "/api/usage/recent"),
    ("post", "/api/projects/{id}/invites"),
    ("get", "/api/projects/{id}/invites"),
    ("delete", "/api/projects/{id}/invites/{inviteId}"),
    ("get", "/api/invites"),
    ("post", "/api/invites/{id}/accept"),
    ("post", "/api/invites/{id}/decline"),
    ("get", "/api/projects/{id}/members"),
    ("patch", "/api/projects/{id}/members/{userId}"),
    ("delete", "/api/projects/{id}/members/{userId}"),
    ("post", "/api/projects/{id}/competition"),
    ("get", "/api/competitions"),
    ("post", "/api/competitions/{id}/close"),
    ("post", "/api/cache/clear"),
    ("get", "/api/monitor/queries"),
    ("post", "/api/monitor/queries/explain"),
    ("get", "/metrics"),
    ("get", "/api/admin/switches"),
    ("patch", "/api/admin/switches"),
];

#[tokio::test]
async fn the_document_covers_every_route_and_nothing_else() {
    let app = TestApp::new().await;
    let response = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = response.json["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| key.as_str() != "parameters")
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    expected.sort();
    assert_eq!(documented, expected);

    let schemes = &response.json["components"]["securitySchemes"];
    assert!(schemes.get("session").is_some() && schemes.get("session_cookie").is_some());
}

#[tokio::test]
async fn every_documented_route_is_served() {
    // With an admin token configured, so the operational routes are on.
    let app = TestApp::with_settings(&[("admin_token", "0123456789abcdef-admin")]).await;
    for (method, path) in ROUTES {
        let uri = path.replace("{id}", "no-such-project").replace("{path}", "index.html").replace("{userId}", "nobody");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app.call(method.clone(), &uri, None, None).await;
        assert_ne!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        if response.status == StatusCode::NOT_FOUND {
            assert_eq!(response.error_code(), "not_found", "{method} {uri}");
            assert!(
                !response.json["error"]["message"].as_str().unwrap().contains("route"),
                "{method} {uri} is not routed"
            );
        }
    }
}

/// The answers of the layers every request passes are on every operation, with the JSON
/// error; a body adds its own, and a path with an id its 404. (`.ci/schemathesis` checks the
/// document against what the service answers to generated requests.)
#[tokio::test]
async fn every_operation_documents_the_errors_any_request_can_get() {
    let app = TestApp::new().await;
    let document = app.call(Method::GET, "/api/openapi.json", None, None).await.json;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap().iter().filter(|(key, _)| key.as_str() != "parameters") {
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["408", "414", "431", "500"];
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            if path.contains('{') {
                expected.push("404");
            }
            for status in expected {
                let response = responses.get(status).unwrap_or_else(|| panic!("{method} {path} lacks {status}"));
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    schema.as_str().is_some_and(|name| name.ends_with("ErrorResponse")),
                    "{method} {path} {status}"
                );
            }
        }
    }
}
