//! Accounts and sessions: sign-up, login, logout, expiry, Phase-1 hashes, the rate limit.

use axum::http::{header, Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use vibing2::auth::password::Verifications;

use crate::support::TestApp;

#[tokio::test]
async fn signup_normalises_the_email_and_starts_on_the_free_plan() {
    let app = TestApp::new().await;
    let body = json!({"name": "Ada", "email": "  Ada@Example.COM ", "password": "lovelace-1815"});
    let response = app.call(Method::POST, "/api/auth/signup", None, Some(body)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.json);
    assert_eq!(response.json["email"], "ada@example.com");
    assert_eq!(response.json["plan"], "FREE");
    assert_eq!(response.json["tokenBalance"], 10000);
    assert!(response.json.get("password").is_none(), "never the hash");

    let stored: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "email" = 'ada@example.com'"#)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    let again = json!({"name": "Ada", "email": "ADA@example.com", "password": "another-password"});
    let duplicate = app.call(Method::POST, "/api/auth/signup", None, Some(again)).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.error_code(), "conflict");
}

#[tokio::test]
async fn login_returns_a_bearer_token_and_an_httponly_cookie_stored_only_as_a_hash() {
    let app = TestApp::new().await;
    let user = app.user("Grace").await;
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.json["token"].as_str().unwrap();
    let (user_part, secret) = token.split_once('.').expect("<userId>.<secret>");
    assert_eq!(user_part, user.id, "the token carries the user id: {token}");
    assert_eq!(secret.len(), 43, "256 bits, base64url: {token}");
    assert!(login.json["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(login.json["user"]["id"], user.id.as_str());
    assert!(login.json["user"].get("password").is_none());

    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with(&format!("vibing2_session={token};")), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }

    let hashes: Vec<String> = sqlx::query_scalar(r#"SELECT "tokenHash" FROM "Session" WHERE "userId" = $1"#)
        .bind(&user.id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(hashes.contains(&hex::encode(Sha256::digest(token.as_bytes()))));
    assert!(!hashes.iter().any(|hash| hash == token), "the token itself is never stored");

    // The cookie works as well as the header.
    let request = axum::http::Request::builder()
        .uri("/api/auth/session")
        .header(header::COOKIE, format!("theme=dark; vibing2_session={token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn session_logout_and_expiry() {
    let app = TestApp::new().await;
    let user = app.user("Linus").await;

    let session = app.call(Method::GET, "/api/auth/session", Some(&user.token), None).await;
    assert_eq!(session.status, StatusCode::OK);
    assert_eq!(session.json["email"], "linus@example.com");
    assert!(session.json.get("password").is_none());

    let anonymous = app.call(Method::GET, "/api/auth/session", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.error_code(), "unauthorized");

    let logout = app.call(Method::POST, "/api/auth/logout", Some(&user.token), None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert!(logout.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let revoked = app.call(Method::GET, "/api/auth/session", Some(&user.token), None).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);

    // An expired session is refused even though its row still exists.
    let second = app.login(&user.email, &user.password).await.json["token"].as_str().unwrap().to_owned();
    sqlx::query(
        r#"UPDATE "Session" SET "expires" = now() AT TIME ZONE 'UTC' - interval '1 second' WHERE "userId" = $1"#,
    )
    .bind(&user.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let expired = app.call(Method::GET, "/api/auth/session", Some(&second), None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);

    let forged = app.call(Method::GET, "/api/auth/session", Some("not-a-session"), None).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_phase1_bcrypt_hash_logs_in_once_and_is_rehashed_to_argon2id() {
    let app = TestApp::new().await;
    let bcrypt_hash = bcrypt::hash("phase1-owner-pass", 10).unwrap();
    sqlx::query(
        r#"INSERT INTO "User" ("id", "name", "email", "password") VALUES ('phase1', 'Owner', 'owner@example.com', $1)"#,
    )
    .bind(&bcrypt_hash)
    .execute(&app.pool)
    .await
    .unwrap();

    let wrong = app.login("owner@example.com", "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let stored = || async {
        sqlx::query_scalar::<_, String>(r#"SELECT "password" FROM "User" WHERE "id" = 'phase1'"#)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(stored().await, bcrypt_hash, "a failed login changes nothing");

    let login = app.login("owner@example.com", "phase1-owner-pass").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let rehashed = stored().await;
    assert!(rehashed.starts_with("$argon2id$"), "{rehashed}");

    let again = app.login("owner@example.com", "phase1-owner-pass").await;
    assert_eq!(again.status, StatusCode::OK, "the new argon2id hash verifies");
}

#[tokio::test]
async fn a_stored_value_that_is_no_hash_can_never_log_in() {
    let app = TestApp::new().await;
    sqlx::query(
        r#"INSERT INTO "User" ("id", "email", "password") VALUES ('placeholder', 'user@example.com', 'password_hash')"#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    for attempt in ["password_hash", "", "password"] {
        let response = app.login("user@example.com", attempt).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{attempt:?}");
    }
}

#[tokio::test]
async fn five_failures_from_one_client_lock_its_logins_for_fifteen_minutes() {
    let app = TestApp::new().await;
    let user = app.user("Target").await;
    for _ in 0..5 {
        assert_eq!(app.login(&user.email, "wrong-password").await.status, StatusCode::UNAUTHORIZED);
    }
    let blocked = app.login(&user.email, &user.password).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert_eq!(blocked.error_code(), "rate_limited");
    let retry_after: u64 = blocked.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");

    // Once the failures are older than the window, login works again.
    sqlx::query(r#"UPDATE "LoginFailure" SET "at" = "at" - interval '16 minutes'"#).execute(&app.pool).await.unwrap();
    assert_eq!(app.login(&user.email, &user.password).await.status, StatusCode::OK);
}

/// The failures recorded under one rate-limit key.
async fn failures_under(app: &TestApp, key: &str) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM "LoginFailure" WHERE "key" = $1"#)
        .bind(key)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A login from `address` (the app trusts X-Forwarded-For).
async fn login_from(app: &TestApp, address: &str, email: &str, password: &str) -> StatusCode {
    let body = json!({"email": email, "password": password}).to_string();
    let request = axum::http::Request::post("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", address)
        .body(axum::body::Body::from(body))
        .unwrap();
    tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap().status()
}

#[tokio::test]
async fn nobody_can_lock_the_owner_out_and_a_success_forgives_only_its_own_client() {
    let app = TestApp::with_settings(&[("auth.trust_forwarded_for", "true")]).await;
    let owner = app.user("Owner").await;
    let attacker = "203.0.113.7";
    for _ in 0..5 {
        assert_eq!(login_from(&app, attacker, &owner.email, "guess-guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, attacker, &owner.email, "guess-guess").await, StatusCode::TOO_MANY_REQUESTS);

    // The owner, elsewhere, is not locked out by someone else's failures on their e-mail.
    assert_eq!(login_from(&app, "198.51.100.2", &owner.email, &owner.password).await, StatusCode::OK);
    // Their success forgave their own failures only: the attacker is still refused.
    assert_eq!(login_from(&app, attacker, &owner.email, "guess-guess").await, StatusCode::TOO_MANY_REQUESTS);
    let account_failures: i64 = failures_under(&app, &format!("email:{}", owner.email)).await;
    assert_eq!(account_failures, 5, "the account keeps counting the attacker's failures");

    // The owner's own failures are forgiven by the owner's success from the same client.
    let laptop = "198.51.100.3";
    for _ in 0..4 {
        assert_eq!(login_from(&app, laptop, &owner.email, "typo-typo").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, laptop, &owner.email, &owner.password).await, StatusCode::OK);
    let pair_failures: i64 = failures_under(&app, &format!("pair:{}|{laptop}", owner.email)).await;
    assert_eq!(pair_failures, 0);
}

#[tokio::test]
async fn failures_from_one_address_across_emails_are_limited_too() {
    let app = TestApp::new().await;
    let user = app.user("Victim").await;
    // All in-process requests share one client address ("unknown" without a socket).
    for n in 0..5 {
        let response = app.login(&format!("nobody{n}@example.com"), "guess-guess").await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let blocked = app.login(&user.email, &user.password).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Unknown e-mails must not be told apart by timing: both paths pay for one argon2
/// verification, counted.
#[tokio::test]
async fn an_unknown_email_costs_one_verification_as_a_wrong_password_does() {
    let app = TestApp::new().await;
    let user = app.user("Counted").await;
    let phase1 = app.user("Phase1").await;
    sqlx::query(r#"UPDATE "User" SET "password" = 'password_hash' WHERE "id" = $1"#)
        .bind(&phase1.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let verifications = || app.state.hashes.verifications();

    let before = verifications();
    assert_eq!(app.login(&user.email, "wrong-password").await.status, StatusCode::UNAUTHORIZED);
    let after_wrong_password = verifications();
    assert_eq!(app.login("missing@example.com", "wrong-password").await.status, StatusCode::UNAUTHORIZED);
    let after_unknown_email = verifications();
    assert_eq!(app.login(&phase1.email, "password_hash").await.status, StatusCode::UNAUTHORIZED);
    let after_no_hash = verifications();

    let wrong_password = Verifications { argon2: before.argon2 + 1, ..before };
    assert_eq!(after_wrong_password, wrong_password, "a wrong password is one argon2 verification");
    let unknown_email = Verifications { dummy: wrong_password.dummy + 1, ..wrong_password };
    assert_eq!(after_unknown_email, unknown_email, "an unknown e-mail is one verification, of the dummy hash");
    let no_hash = Verifications { dummy: unknown_email.dummy + 1, ..unknown_email };
    assert_eq!(after_no_hash, no_hash, "a stored value that is no hash is one verification, of the dummy hash");
}

#[tokio::test]
async fn responses_with_tokens_or_private_data_are_never_stored() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let login = app.login(&owner.email, &owner.password).await;
    let project = app.project(&owner, "PRIVATE").await;
    let file = serde_json::json!({"operations": [{"op": "upsert", "path": "a.js", "content": "x"}]});
    let written =
        app.call(Method::PUT, &format!("/api/projects/{project}/files"), Some(&owner.token), Some(file)).await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.json);
    let responses = [
        ("login", login),
        ("session", app.call(Method::GET, "/api/auth/session", Some(&owner.token), None).await),
        ("private project", app.call(Method::GET, &format!("/api/projects/{project}"), Some(&owner.token), None).await),
        ("file", app.call(Method::GET, &format!("/api/projects/{project}/files/a.js"), Some(&owner.token), None).await),
        ("an error", app.call(Method::GET, "/api/auth/session", None, None).await),
    ];
    for (what, response) in responses {
        assert_eq!(response.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{what}");
    }
}

/// Every attempt reserves its place under the limit before the password is hashed, so a burst
/// of parallel guesses cannot all pass the check before the first failure is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_passwords_get_at_most_five_hashes() {
    let app = TestApp::new().await;
    let user = app.user("Raced").await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let router = app.router.clone();
        let body = json!({"email": user.email, "password": "wrong-password"});
        attempts.spawn(async move {
            crate::support::call(&router, Method::POST, "/api/auth/login", None, Some(body)).await.status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = attempts.join_next().await {
        statuses.push(status.unwrap());
    }
    let verified = statuses.iter().filter(|status| **status == StatusCode::UNAUTHORIZED).count();
    let limited = statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((verified, limited), (5, 45), "{statuses:?}");
    let recorded: i64 = failures_under(&app, &format!("email:{}", user.email)).await;
    assert_eq!(recorded, 5, "one reservation per attempt that was hashed");
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited() {
    let app = TestApp::with_settings(&[("auth.signups_per_window", "3")]).await;
    let signup = |n: u32| json!({"name": "New", "email": format!("new{n}@example.com"), "password": "password1"});
    for n in 0..3 {
        let created = app.call(Method::POST, "/api/auth/signup", None, Some(signup(n))).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    }
    let refused = app.call(Method::POST, "/api/auth/signup", None, Some(signup(3))).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
    let users: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "User""#).fetch_one(&app.pool).await.unwrap();
    assert_eq!(users, 3, "the refused sign-up wrote nothing");
}

/// A taken e-mail is refused before any hashing: the duplicate costs a lookup, not an argon2id.
#[tokio::test]
async fn a_duplicate_sign_up_is_refused_without_hashing() {
    let app = TestApp::with_settings(&[("auth.hash_queue", "0")]).await;
    let owner = app.user("Owner").await;
    // Every core busy: any hash now would have to queue, and the queue holds nothing.
    let slots: Vec<_> =
        (0..std::thread::available_parallelism().unwrap().get()).map(|_| app.state.hashes.clone()).collect();
    let held = futures_util::future::join_all(slots.iter().map(|queue| queue.hold())).await;
    let again = json!({"name": "Again", "email": owner.email.to_uppercase(), "password": "password1"});
    let duplicate = app.call(Method::POST, "/api/auth/signup", None, Some(again)).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.json);
    let fresh = json!({"name": "Fresh", "email": "fresh@example.com", "password": "password1"});
    let busy = app.call(Method::POST, "/api/auth/signup", None, Some(fresh)).await;
    assert_eq!((busy.status, busy.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "overloaded"));
    assert_eq!(busy.headers[header::RETRY_AFTER], "1");
    drop(held);
}

#[tokio::test]
async fn cookie_writes_need_this_sites_origin_and_bearer_writes_do_not() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    let cookie = format!("vibing2_session={}", owner.token);
    let like = |extra: &[(&str, &str)]| {
        let mut request = axum::http::Request::builder()
            .method(Method::PUT)
            .uri(format!("/api/projects/{project}/like"))
            .header(header::HOST, "vibing2.example.com")
            .header(header::COOKIE, &cookie);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        let router = app.router.clone();
        async move { tower::ServiceExt::oneshot(router, request).await.unwrap().status() }
    };
    assert_eq!(like(&[]).await, StatusCode::FORBIDDEN, "a cross-site form carries the cookie and no Origin");
    assert_eq!(like(&[("origin", "https://evil.example.net")]).await, StatusCode::FORBIDDEN);
    assert_eq!(like(&[("origin", "https://vibing2.example.com")]).await, StatusCode::OK);
    assert_eq!(like(&[("x-requested-with", "fetch")]).await, StatusCode::OK);
    let likes: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "ProjectLike""#).fetch_one(&app.pool).await.unwrap();
    assert_eq!(likes, 1, "the refused writes changed nothing");

    // Bodyless writes are covered too; reads by cookie and writes by bearer token are not.
    let logout = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/auth/logout")
        .header(header::COOKIE, &cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    let refused = tower::ServiceExt::oneshot(app.router.clone(), logout).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let unlike = app.call(Method::DELETE, &format!("/api/projects/{project}/like"), Some(&owner.token), None).await;
    assert_eq!(unlike.status, StatusCode::OK, "a bearer token is no ambient credential");
}

#[tokio::test]
async fn the_session_cookie_is_secure_unless_the_service_listens_on_loopback() {
    for (host, secure) in [("127.0.0.1", false), ("0.0.0.0", true), ("::1", false)] {
        let app = TestApp::with_settings(&[("server.host", host)]).await;
        let user = app.user("Owner").await;
        let login = app.login(&user.email, &user.password).await;
        let cookie = login.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert_eq!(cookie.contains("; Secure"), secure, "{host}: {cookie}");
    }
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_every_other_session() {
    let app = TestApp::new().await;
    let user = app.user("Ada").await;
    let other = app.login(&user.email, &user.password).await.json["token"].as_str().unwrap().to_owned();
    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
    let app = &app;
    let put = |token: String, body| async move {
        app.call(Method::PUT, "/api/auth/password", Some(&token), Some(body)).await
    };

    put(user.token.clone(), change("wrong-password", "a-new-password")).await.expect(StatusCode::FORBIDDEN);
    put(user.token.clone(), change(&user.password, "short")).await.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let long = "x".repeat(2000);
    put(user.token.clone(), change(&long, "a-new-password")).await.expect(StatusCode::UNPROCESSABLE_ENTITY);
    app.call(Method::PUT, "/api/auth/password", None, Some(change(&user.password, "a-new-password")))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // Nothing changed so far: the other session and the old password still work.
    app.call(Method::GET, "/api/auth/session", Some(&other), None).await.expect(StatusCode::OK);

    put(user.token.clone(), change(&user.password, "a-new-password")).await.expect(StatusCode::NO_CONTENT);
    app.call(Method::GET, "/api/auth/session", Some(&other), None).await.expect(StatusCode::UNAUTHORIZED);
    app.call(Method::GET, "/api/auth/session", Some(&user.token), None).await.expect(StatusCode::OK);
    app.login(&user.email, &user.password).await.expect(StatusCode::UNAUTHORIZED);
    app.login(&user.email, "a-new-password").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn wrong_current_passwords_are_limited_like_logins() {
    let app = TestApp::new().await;
    let user = app.user("Grace").await;
    let wrong = json!({"currentPassword": "wrong-password", "newPassword": "a-new-password"});
    for _ in 0..5 {
        app.call(Method::PUT, "/api/auth/password", Some(&user.token), Some(wrong.clone()))
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    let right = json!({"currentPassword": user.password, "newPassword": "a-new-password"});
    let limited = app.call(Method::PUT, "/api/auth/password", Some(&user.token), Some(right)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.json);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

/// A login that verified the password just before it was changed opens no session, and a
/// rehash of the old password cannot undo the change.
#[tokio::test]
async fn a_login_verified_against_a_replaced_password_opens_no_session() {
    let app = TestApp::new().await;
    let user = app.user("Race").await;
    let old: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "id" = $1"#)
        .bind(&user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let change = json!({"currentPassword": user.password, "newPassword": "a-new-password"});
    app.call(Method::PUT, "/api/auth/password", Some(&user.token), Some(change)).await.expect(StatusCode::NO_CONTENT);

    let expires = vibing2::domain::UtcTime((chrono::Utc::now() + chrono::Duration::days(1)).naive_utc());
    let opened = vibing2::db::sessions::create(&app.pool, "raced-login", &user.id, expires, &old).await.unwrap();
    assert!(!opened, "the session of a login verified against the old password");
    let undone = vibing2::db::users::replace_password_hash(&app.pool, &user.id, &old, "stale-rehash").await.unwrap();
    assert!(!undone, "a rehash of the old password");
    app.login(&user.email, "a-new-password").await.expect(StatusCode::OK);
}

/// The secret part of a token: 256 bits, base64url, as `auth::token` makes them.
fn secret() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[tokio::test]
async fn a_token_whose_user_part_names_another_user_is_refused() {
    let app = TestApp::new().await;
    let (ada, eve) = (app.user("Ada").await, app.user("Eve").await);
    let (_, ada_secret) = ada.token.split_once('.').unwrap();
    app.call(Method::GET, "/api/auth/session", Some(&ada.token), None).await.expect(StatusCode::OK);

    // Ada's secret under Eve's id hashes to no session; and a row holding that token's hash, but
    // Ada's, is not found for the Eve the token names.
    let forged = format!("{}.{ada_secret}", eve.id);
    let refused = app.call(Method::GET, "/api/auth/session", Some(&forged), None).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let hash = vibing2::auth::token::hash_token(&forged);
    sqlx::query(r#"INSERT INTO "Session" ("tokenHash", "userId", "expires") VALUES ($1, $2, '2999-01-01')"#)
        .bind(&hash)
        .bind(&ada.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let refused = app.call(Method::GET, "/api/auth/session", Some(&forged), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "the lookup filters on the token's user id");
    let logout = app.call(Method::POST, "/api/auth/logout", Some(&forged), None).await;
    assert_eq!(logout.status, StatusCode::UNAUTHORIZED);
    // Ada's own token still works, and reads as Ada.
    let session = app.call(Method::GET, "/api/auth/session", Some(&ada.token), None).await.expect(StatusCode::OK);
    assert_eq!(session.json["id"], ada.id.as_str());
}

#[tokio::test]
async fn a_session_whose_token_carries_no_user_id_still_authenticates_and_logs_out() {
    let app = TestApp::new().await;
    let user = app.user("Phase").await;
    // As `vibing2 import` stores a Phase-1 session: the SHA-256 of its plaintext token (a uuid).
    let phase1 = "8caaaae3-6c19-4e17-83a3-986955218d79";
    sqlx::query(r#"INSERT INTO "Session" ("tokenHash", "userId", "expires") VALUES ($1, $2, '2999-01-01')"#)
        .bind(vibing2::auth::token::hash_token(phase1))
        .bind(&user.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let session = app.call(Method::GET, "/api/auth/session", Some(phase1), None).await.expect(StatusCode::OK);
    assert_eq!(session.json["id"], user.id.as_str());
    app.call(Method::POST, "/api/auth/logout", Some(phase1), None).await.expect(StatusCode::NO_CONTENT);
    app.call(Method::GET, "/api/auth/session", Some(phase1), None).await.expect(StatusCode::UNAUTHORIZED);
    let left: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Session" WHERE "userId" = $1"#)
        .bind(&user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "only the Phase-1 session ended; the login's own is still there");
}

/// How often the cache was asked for a session: every lookup of a token goes through it.
async fn session_requests(app: &TestApp) -> u64 {
    let kinds = app.state.cache.status().await.kinds;
    kinds.iter().find(|stats| stats.kind == "session").map(|stats| stats.requests).expect("the session kind")
}

#[tokio::test]
async fn a_malformed_token_is_a_401_in_the_json_shape() {
    let app = TestApp::new().await;
    let user = app.user("Mal").await;
    let secret = secret();
    for token in [
        format!(".{secret}"),
        format!("{}.", user.id),
        format!("{}.short", user.id),
        format!("{}.{secret}.{secret}", user.id),
        format!("{}%zz.{secret}", user.id),
        format!("{}.{secret}", "u".repeat(600)),
        "x".repeat(600),
        format!("{} x.{secret}", user.id),
        format!("{}\"x.{secret}", user.id),
        // PostgreSQL text holds no NUL: refused before it could reach a query.
        format!("%00.{secret}"),
        format!("a%0Ab.{secret}"),
    ] {
        for (method, uri) in [(Method::GET, "/api/auth/session"), (Method::GET, "/api/projects?limit=1")] {
            let asked_before = session_requests(&app).await;
            let response = app.call(method, uri, Some(&token), None).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{uri} with {token:?}: {}", response.json);
            assert_eq!(response.error_code(), "unauthorized", "{token:?}");
            assert_eq!(session_requests(&app).await, asked_before, "{token:?} was refused before any lookup");
        }
    }
    // A well-formed token of nobody is looked up, so the count above can move.
    let asked_before = session_requests(&app).await;
    let unknown = app.call(Method::GET, "/api/auth/session", Some(&format!("{}.{secret}", user.id)), None).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(session_requests(&app).await, asked_before + 1);
    // As a cookie too.
    let request = axum::http::Request::builder()
        .uri("/api/auth/session")
        .header(header::COOKIE, format!("vibing2_session=.{secret}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = crate::support::send_to(&app.router, request).await;
    assert_eq!((response.status, response.error_code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
}
