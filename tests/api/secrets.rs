//! Secrets never leak: a whole scenario (sign-up, login, writes, a password change, admin
//! calls, logout) against a server logging at debug level, then every log line, every
//! response and every Redis value is searched for the session tokens, the password hashes,
//! the passwords, the admin token and the database password.

use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::support::{namespace, shared_redis_url, SpawnedServer, TestDb, ADMIN_TOKEN};

const DATABASE_PASSWORD: &str = "db-password-never-logged-7f3a";

#[tokio::test]
async fn no_log_line_response_or_redis_value_holds_a_secret() {
    let db = TestDb::migrated().await;
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // The test cluster trusts local connections, so the password is carried, never checked.
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some(DATABASE_PASSWORD)).unwrap();
    let namespace = namespace();
    let redis = shared_redis_url();
    let server = SpawnedServer::start_logging_to(
        &db,
        &[
            ("DATABASE_URL", url.as_str()),
            ("REDIS_URL", &redis),
            ("CACHE_NAMESPACE", &namespace),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("RUST_LOG", "debug"),
        ],
        log,
    )
    .await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let mut bodies: Vec<(String, String)> = Vec::new();
    let send = |request: reqwest::RequestBuilder, label: &str| {
        let label = label.to_owned();
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let headers = format!("{:?}", response.headers());
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{label}: {status} {text}");
            (label, headers, text)
        }
    };

    let (first_password, second_password) = ("first-password-9c1e", "second-password-44d0");
    let account = json!({"name": "Secretive", "email": "secretive@example.com", "password": first_password});
    let mut record = |(label, headers, text): (String, String, String)| {
        bodies.push((label.clone(), format!("{headers}\n{text}")));
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };
    record(send(client.post(format!("{base}/api/auth/signup")).json(&account), "signup").await);
    let login = json!({"email": "secretive@example.com", "password": first_password});
    let session = record(send(client.post(format!("{base}/api/auth/login")).json(&login), "login").await);
    let first_token = session["token"].as_str().unwrap().to_owned();
    let bearer = |token: &str| format!("Bearer {token}");
    let project = record(
        send(
            client
                .post(format!("{base}/api/projects"))
                .header("authorization", bearer(&first_token))
                .json(&json!({"name": "Hidden", "projectType": "website"})),
            "create",
        )
        .await,
    );
    let id = project["id"].as_str().unwrap().to_owned();
    for (label, request) in [
        ("session", client.get(format!("{base}/api/auth/session"))),
        ("rename", client.patch(format!("{base}/api/projects/{id}")).json(&json!({"name": "Still hidden"}))),
        (
            "files",
            client
                .put(format!("{base}/api/projects/{id}/files"))
                .json(&json!({"operations": [{"op": "upsert", "path": "index.html", "content": "<p>hi</p>"}]})),
        ),
        (
            "message",
            client
                .post(format!("{base}/api/projects/{id}/messages"))
                .json(&json!({"role": "user", "content": "hello"})),
        ),
        ("read", client.get(format!("{base}/api/projects/{id}"))),
        ("list", client.get(format!("{base}/api/projects"))),
        (
            "password change",
            client
                .put(format!("{base}/api/auth/password"))
                .json(&json!({"currentPassword": first_password, "newPassword": second_password})),
        ),
    ] {
        record(send(request.header("authorization", bearer(&first_token)), label).await);
    }
    let again = json!({"email": "secretive@example.com", "password": second_password});
    let second_session = record(send(client.post(format!("{base}/api/auth/login")).json(&again), "login again").await);
    let second_token = second_session["token"].as_str().unwrap().to_owned();
    for (label, uri) in [
        ("detailed health", "/api/health/database?detailed=true"),
        ("queries", "/api/monitor/queries?type=slow"),
        ("metrics", "/metrics"),
    ] {
        record(send(client.get(format!("{base}{uri}")).header("authorization", bearer(ADMIN_TOKEN)), label).await);
    }
    record(
        send(client.post(format!("{base}/api/auth/logout")).header("authorization", bearer(&second_token)), "logout")
            .await,
    );

    let mut conn = db.connect().await;
    let hash: String = sqlx::query_scalar(r#"SELECT "password" FROM "User" WHERE "email" = 'secretive@example.com'"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let secrets = [
        ("a session token", first_token.as_str()),
        ("a session token", second_token.as_str()),
        ("the password hash", hash.as_str()),
        ("the first password", first_password),
        ("the second password", second_password),
        ("the admin token", ADMIN_TOKEN),
        ("the database password", DATABASE_PASSWORD),
    ];

    // Responses: a login hands its own session's token over, and nothing else does.
    for (label, body) in &bodies {
        for (what, secret) in secrets {
            let own_token =
                (label == "login" && secret == first_token) || (label == "login again" && secret == second_token);
            assert!(own_token || !body.contains(secret), "the {label} response holds {what}");
        }
    }
    // Redis: every key and value under the service's namespace.
    let mut redis_conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis_conn.keys(format!("{namespace}:*")).await.unwrap();
    assert!(!keys.is_empty(), "the scenario used the shared tier");
    for key in &keys {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(&mut redis_conn).await.unwrap();
        let value = if kind == "string" {
            String::from_utf8_lossy(&redis_conn.get::<_, Vec<u8>>(key).await.unwrap()).into_owned()
        } else {
            String::new()
        };
        for (what, secret) in secrets {
            assert!(!key.contains(secret) && !value.contains(secret), "Redis key {key} holds {what}");
        }
    }
    // The log, at debug level.
    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 20, "the server logged at debug level:\n{log}");
    for (number, line) in log.lines().enumerate() {
        for (what, secret) in secrets {
            assert!(!line.contains(secret), "log line {} holds {what}: {line}", number + 1);
        }
    }
}
