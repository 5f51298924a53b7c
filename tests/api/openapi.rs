//! The OpenAPI document is served, generated from the handlers, and covers every route.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::TestApp;

/// Routes outside the document, each for a reason: the document itself, and the operators'
/// dashboard (an HTML page, its assets and its browser login, docs/monitoring.md).
const UNDOCUMENTED: &[(Method, &str)] = &[
    (Method::GET, "/api/openapi.json"),
    (Method::GET, "/admin"),
    (Method::POST, "/admin/login"),
    (Method::POST, "/admin/logout"),
    (Method::GET, "/admin/dashboard.js"),
    (Method::GET, "/admin/dashboard.css"),
];

/// The methods a route can be registered for.
const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// The document's operations, as (method, path template).
async fn documented_operations(app: &TestApp) -> Vec<(Method, String)> {
    let response = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.json["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations: Vec<(Method, String)> = response.json["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| key.as_str() != "parameters")
                .map(move |method| (Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), path.clone()))
        })
        .collect();
    operations.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    operations
}

/// A concrete URI for a path template: every parameter an id that does not exist.
fn concrete(template: &str) -> String {
    let mut uri = String::new();
    for segment in template.split('/').skip(1) {
        uri.push('/');
        uri.push_str(if segment.starts_with('{') { "no-such-id" } else { segment });
    }
    uri
}

/// Whether the router has a route for this method and URI: neither 405 nor the fallback's
/// "no such route" 404 (an unknown id is a 404 too, but names what was not found). The answer
/// is read raw, as the dashboard's routes answer HTML.
async fn routed(app: &TestApp, method: &Method, uri: &str) -> bool {
    let request = Request::builder().method(method.clone()).uri(uri).body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let unrouted_404 = status == StatusCode::NOT_FOUND
        && serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|json| json["error"]["message"].as_str().is_some_and(|message| message.contains("route")));
    status != StatusCode::METHOD_NOT_ALLOWED && !unrouted_404
}

/// The router and the document list the same operations: each documented operation is routed,
/// and on each documented path the router answers exactly the documented methods, probed one
/// by one; what is routed but undocumented is the short list above, and nothing of it is
/// documented. (axum cannot list its routes, so the router is walked by asking it.)
#[tokio::test]
async fn the_router_and_the_document_list_the_same_operations() {
    // With an admin token configured, so the operational routes are on.
    let app = TestApp::with_settings(&[("admin_token", "0123456789abcdef-admin")]).await;
    let documented = documented_operations(&app).await;
    assert!(documented.len() >= 40, "{} operations", documented.len());
    let mut paths: Vec<&str> = documented.iter().map(|(_, path)| path.as_str()).collect();
    paths.dedup();
    for path in paths {
        let uri = concrete(path);
        for method in METHODS {
            let is_documented = documented.iter().any(|(m, p)| *m == method && p == path);
            assert_eq!(routed(&app, &method, &uri).await, is_documented, "{method} {path}: routed vs documented");
        }
    }
    for (method, path) in UNDOCUMENTED {
        assert!(routed(&app, method, path).await, "{method} {path} is served");
        assert!(!documented.iter().any(|(m, p)| m == method && p == path), "{method} {path} is documented after all");
    }
    assert!(!routed(&app, &Method::GET, "/api/no-such-resource").await, "the probe tells an unrouted path");
}

#[tokio::test]
async fn the_document_names_its_security_schemes() {
    let app = TestApp::new().await;
    let document = app.call(Method::GET, "/api/openapi.json", None, None).await.json;
    let schemes = &document["components"]["securitySchemes"];
    assert!(
        schemes.get("session").is_some() && schemes.get("session_cookie").is_some() && schemes.get("admin").is_some()
    );
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
