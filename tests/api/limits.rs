//! Every request is bounded: the URL, the headers, the body, its JSON depth, string and
//! array lengths, and page sizes each have a configured limit, and a request past one gets a
//! 4xx with the JSON error shape. Security headers and CORS are on every answer.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use crate::support::{file_batch_request, TestApp};

#[tokio::test]
async fn a_request_past_any_limit_is_a_4xx_with_the_json_error() {
    let app = TestApp::new().await;
    let owner = app.user("Limits").await;
    let project = app.project(&owner, "PRIVATE").await;
    let token = owner.token.as_str();
    let authorized = |method: Method, uri: String| {
        Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"))
    };
    let json_body = |uri: &str, body: Vec<u8>| {
        authorized(Method::POST, uri.to_owned())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let settings = &app.state.settings;
    let nested = |levels: usize| {
        format!(r#"{{"name": "n", "projectType": "website", "x": {}1{}}}"#, "[".repeat(levels), "]".repeat(levels))
    };
    let operations: Vec<_> =
        (0..=settings.limits.batch_operations).map(|n| json!({"op": "delete", "path": format!("f{n}.txt")})).collect();

    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "URL one byte past server.max_uri_bytes",
            authorized(Method::GET, format!("/api/projects?q={}", "a".repeat(settings.server.max_uri_bytes)))
                .body(Body::empty())
                .unwrap(),
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
        ),
        (
            "headers past server.max_header_bytes",
            authorized(Method::GET, "/api/projects".into())
                .header("x-filler", "f".repeat(settings.server.max_header_bytes))
                .body(Body::empty())
                .unwrap(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
        ),
        (
            "body past server.body_limit_bytes",
            json_body("/api/projects", vec![b' '; settings.server.body_limit_bytes + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "JSON one level past server.max_json_depth",
            json_body("/api/projects", nested(settings.server.max_json_depth).into_bytes()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "a project name past its 200 characters",
            json_body("/api/projects", json!({"name": "x".repeat(201), "projectType": "website"}).to_string().into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "a file batch one operation past limits.batch_operations",
            file_batch_request(&project, token, Body::from(json!({ "operations": operations }).to_string())),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "a page past its 100 rows",
            authorized(Method::GET, "/api/projects?limit=101".into()).body(Body::empty()).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
    ];
    for (case, request, status, code) in cases {
        let response = app.send_request(request).await;
        assert_eq!(response.status, status, "{case}: {}", response.json);
        assert_eq!(response.error_code(), code, "{case}");
    }

    // At the limits themselves, the same requests are served.
    let at_limit = nested(settings.server.max_json_depth - 1);
    let created = app.send_request(json_body("/api/projects", at_limit.into_bytes())).await;
    assert_ne!(created.status, StatusCode::BAD_REQUEST, "depth within the limit: {}", created.json);
    let long_url = format!("/api/projects/{}", "a".repeat(settings.server.max_uri_bytes - "/api/projects/".len()));
    let unknown = app.send_request(authorized(Method::GET, long_url).body(Body::empty()).unwrap()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "a URL of exactly the limit is served: {}", unknown.json);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::new().await;
    for uri in ["/api/health", "/api/projects", "/api/no-such-route"] {
        let response = app.get(uri).await;
        assert_eq!(response.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(response.headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
        assert_eq!(response.headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert!(response.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "no CORS unless configured");
    }
}

#[tokio::test]
async fn cors_answers_the_configured_origins_only_even_on_a_429() {
    let app = TestApp::with_settings(&[
        ("server.cors_origins", r#"["https://app.example.com"]"#),
        ("server.cors_credentials", "true"),
        ("auth.signups_per_window", "1"),
    ])
    .await;
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/projects")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app.send_request(preflight("https://app.example.com")).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    assert_eq!(allowed.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    let methods = allowed.headers[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let other = app.send_request(preflight("https://evil.example")).await;
    assert!(other.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "another origin gets no CORS grant");

    // A rate-limited sign-up still tells the browser it may read the answer.
    let signup = |n: usize| {
        Request::post("/api/auth/signup")
            .header(header::ORIGIN, "https://app.example.com")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"email": format!("cors{n}@example.com"), "password": "correct horse battery", "name": "C"})
                    .to_string(),
            ))
            .unwrap()
    };
    let first = app.send_request(signup(1)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    let limited = app.send_request(signup(2)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.json);
    assert_eq!(limited.error_code(), "rate_limited");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(limited.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    assert!(limited.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("retry-after"));
}

/// A request from `client` (the test trusts `X-Forwarded-For`), as anonymous or as `token`.
fn from_client(method: Method, uri: &str, client: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-forwarded-for", client)
        .header(header::ORIGIN, "https://app.example.com");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = if request.method_ref() == Some(&Method::PATCH) {
        request = request.header(header::CONTENT_TYPE, "application/json");
        Body::from(json!({"name": "Renamed"}).to_string())
    } else {
        Body::empty()
    };
    request.body(body).unwrap()
}

const LIMITED: &[(&str, &str)] = &[
    ("rate_limits.enabled", "true"),
    ("rate_limits.reads", "3"),
    ("rate_limits.writes", "2"),
    ("auth.trust_forwarded_for", "true"),
    ("server.cors_origins", r#"["https://app.example.com"]"#),
];

#[tokio::test]
async fn each_route_class_has_its_limit_per_client_and_a_429_says_when_to_retry() {
    let app = TestApp::with_settings(LIMITED).await;
    let owner = app.user("Throttled").await;
    let project = app.project(&owner, "PUBLIC").await;
    let token = Some(owner.token.as_str());
    let read = |client: &'static str| from_client(Method::GET, "/api/discover", client, None);
    for n in 1..=3 {
        assert_eq!(app.send_request(read("198.51.100.1")).await.status, StatusCode::OK, "read {n}");
    }
    let limited = app.send_request(read("198.51.100.1")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.json);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry_after: u64 = limited.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "until the window ends: {retry_after}");
    assert_eq!(limited.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");

    // Another client has reads of its own; writes are a class of their own.
    assert_eq!(app.send_request(read("198.51.100.2")).await.status, StatusCode::OK);
    let uri = format!("/api/projects/{project}");
    for n in 1..=2 {
        let renamed = app.send_request(from_client(Method::PATCH, &uri, "198.51.100.1", token)).await;
        assert_eq!(renamed.status, StatusCode::OK, "write {n}: {}", renamed.json);
    }
    let third = app.send_request(from_client(Method::PATCH, &uri, "198.51.100.1", token)).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    // Liveness and the auth routes are outside these limits.
    assert_eq!(
        app.send_request(from_client(Method::GET, "/api/health", "198.51.100.1", None)).await.status,
        StatusCode::OK
    );
    let login = app.login(&owner.email, &owner.password).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
}

#[tokio::test]
async fn the_limits_hold_across_instances_through_redis_and_per_instance_without_it() {
    let namespace = crate::support::namespace();
    let redis = crate::support::shared_redis_url();
    let two_tier: Vec<(&str, &str)> = LIMITED
        .iter()
        .copied()
        .chain([("redis.url", redis.as_str()), ("cache.namespace", namespace.as_str())])
        .collect();
    let app = TestApp::with_settings(&two_tier).await;
    let other = crate::support::instance(&app, &app.db.settings(&two_tier));
    let read = || from_client(Method::GET, "/api/discover", "203.0.113.7", None);
    assert_eq!(app.send_request(read()).await.status, StatusCode::OK);
    assert_eq!(crate::support::send_to(&other, read()).await.status, StatusCode::OK);
    assert_eq!(app.send_request(read()).await.status, StatusCode::OK);
    let fourth = crate::support::send_to(&other, read()).await;
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS, "3 reads in all, over two instances: {}", fourth.json);

    // Redis unreachable: each instance counts alone, and still limits.
    let alone: Vec<(&str, &str)> = LIMITED.iter().copied().chain([("redis.url", "redis://127.0.0.1:1")]).collect();
    let app = TestApp::with_settings(&alone).await;
    let other = crate::support::instance(&app, &app.db.settings(&alone));
    for _ in 0..3 {
        assert_eq!(app.send_request(read()).await.status, StatusCode::OK);
        assert_eq!(crate::support::send_to(&other, read()).await.status, StatusCode::OK);
    }
    assert_eq!(app.send_request(read()).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(crate::support::send_to(&other, read()).await.status, StatusCode::TOO_MANY_REQUESTS);
}
