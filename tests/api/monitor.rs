//! The query monitor: every view against a seeded database, each figure checked against a
//! direct catalog query; the hardened explain; the in-process figures and the slow-query
//! history.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

use crate::support::{SpawnedServer, TestApp, TestDb, ADMIN_TOKEN};

async fn monitored_app() -> TestApp {
    TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await
}

async fn view(app: &TestApp, query: &str) -> Value {
    let response = app.admin_get(&format!("/api/monitor/queries?{query}")).await;
    assert_eq!(response.status, StatusCode::OK, "{query}: {}", response.json);
    response.json
}

async fn explain(app: &TestApp, body: Value) -> crate::support::TestResponse {
    app.call(Method::POST, "/api/monitor/queries/explain", Some(ADMIN_TOKEN), Some(body)).await
}

/// The names of `items` under `key`, sorted.
fn names(items: &Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> =
        items.as_array().unwrap().iter().map(|item| item[key].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_monitor_is_for_operators_and_names_its_views() {
    let off = TestApp::new().await;
    assert_eq!(off.get("/api/monitor/queries?type=slow").await.status, StatusCode::NOT_FOUND, "no admin token");

    let app = monitored_app().await;
    let anonymous = app.get("/api/monitor/queries?type=slow").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let user = app.user("Someone").await;
    let signed_in = app.call(Method::GET, "/api/monitor/queries?type=slow", Some(&user.token), None).await;
    assert_eq!(signed_in.status, StatusCode::UNAUTHORIZED, "a session is not the admin token");
    let as_user = app
        .call(Method::POST, "/api/monitor/queries/explain", Some(&user.token), Some(json!({"query": "SELECT 1"})))
        .await;
    assert_eq!(as_user.status, StatusCode::UNAUTHORIZED);

    for query in ["", "type=everything", "type=SLOW"] {
        let response = app.admin_get(&format!("/api/monitor/queries?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("slow, usage, unused, duplicate, invalid, tables, health, stats"), "{message}");
    }
    let negative = app.admin_get("/api/monitor/queries?type=unused&minBytes=-1").await;
    assert_eq!(negative.status, StatusCode::BAD_REQUEST);
    for limit in ["0", "201"] {
        let response = app.admin_get(&format!("/api/monitor/queries?type=slow&limit={limit}")).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "limit={limit}: refused, not capped");
        assert_eq!(response.json["error"]["code"], "unprocessable", "{}", response.json);
    }
}

#[tokio::test]
async fn index_views_agree_with_the_catalog() {
    let app = monitored_app().await;
    let owner = app.user("Owner").await;
    for _ in 0..2 {
        app.project(&owner, "PUBLIC").await;
    }
    let mut conn = app.db.connect().await;
    // A duplicate of the owner's-projects index's leading column, and an index a failed
    // CREATE INDEX CONCURRENTLY left invalid (two projects share a type).
    conn.execute(r#"CREATE INDEX "dup_project_user" ON "Project" ("userId")"#).await.unwrap();
    let failed =
        conn.execute(r#"CREATE UNIQUE INDEX CONCURRENTLY "bad_project_type" ON "Project" ("projectType")"#).await;
    assert!(failed.is_err(), "the unique build fails on duplicate types");
    app.get(&format!("/api/projects/{}", "no-such-project")).await;

    let usage = view(&app, "type=usage").await;
    let direct: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT indexrelname::text, idx_scan, pg_relation_size(indexrelid) FROM pg_stat_user_indexes
         WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut reported: Vec<(String, i64, i64)> = usage["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|index| {
            (
                index["index"].as_str().unwrap().to_owned(),
                index["scans"].as_i64().unwrap(),
                index["bytes"].as_i64().unwrap(),
            )
        })
        .collect();
    reported.sort();
    assert_eq!(reported, direct);

    // Unused: every non-unique index at most 50 scans and at least 0 bytes; no unique key.
    let unused = view(&app, "type=unused&minBytes=0&maxScans=50").await;
    assert!(unused.get("statsReset").is_some(), "{unused}");
    let direct: Vec<String> = sqlx::query_scalar(
        "SELECT s.indexrelname::text FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
         WHERE s.schemaname = 'public' AND NOT i.indisunique AND NOT i.indisprimary AND s.idx_scan <= 50 ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let indexes: Vec<Value> =
        unused["indexes"].as_array().unwrap().iter().map(|entry| entry["index"].clone()).collect();
    assert_eq!(names(&Value::Array(indexes.clone()), "index"), direct);
    assert!(direct.contains(&"dup_project_user".to_owned()));
    assert!(indexes.iter().all(|index| index["unique"] == false && index["primary"] == false));
    let suggestion = unused["indexes"][0]["suggestion"].as_str().unwrap();
    assert!(suggestion.starts_with("DROP INDEX CONCURRENTLY \""), "{suggestion}");
    // The default size floor (1 MiB) leaves this small database's indexes out.
    assert_eq!(view(&app, "type=unused").await["indexes"], json!([]));

    let duplicate = view(&app, "type=duplicate").await;
    let found = duplicate["indexes"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{duplicate}");
    assert_eq!(found[0]["index"], "dup_project_user");
    assert_eq!(found[0]["coveredBy"], "Project_userId_updatedAt_idx");

    let invalid = view(&app, "type=invalid").await;
    assert_eq!(names(&invalid["indexes"], "index"), ["bad_project_type"]);
}

#[tokio::test]
async fn table_and_health_views_agree_with_the_catalog() {
    let app = monitored_app().await;
    let owner = app.user("Owner").await;
    app.project(&owner, "PRIVATE").await;
    let mut conn = app.db.connect().await;
    conn.execute(r#"ANALYZE "Project""#).await.unwrap();

    let tables = view(&app, "type=tables").await;
    let project =
        tables["tables"].as_array().unwrap().iter().find(|entry| entry["table"]["table"] == "Project").unwrap();
    let (live, bytes): (i64, i64) = sqlx::query_as(
        r#"SELECT n_live_tup, pg_relation_size(relid) FROM pg_stat_user_tables WHERE relname = 'Project'"#,
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(project["table"]["liveRows"], live);
    assert_eq!(project["table"]["tableBytes"], bytes);
    assert!(project["table"]["lastAnalyze"].is_string(), "{project}");
    assert!(project["missingIndexHint"].is_null(), "a one-row table gets no hint");

    // A session holds a lock another waits on: the wait shows as blocked, by that session.
    let mut holder = app.db.connect().await;
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.unwrap();
    let mut tx = holder.begin().await.unwrap();
    tx.execute(r#"LOCK TABLE "Competition" IN ACCESS EXCLUSIVE MODE"#).await.unwrap();
    let waiter_url = app.db.url.clone();
    let waiter = tokio::spawn(async move {
        let mut waiter = sqlx::PgConnection::connect(&waiter_url).await.unwrap();
        sqlx::query(r#"SELECT count(*) FROM "Competition""#).execute(&mut waiter).await.map(|_| ())
    });
    let started = Instant::now();
    let health = loop {
        let health = view(&app, "type=health").await;
        if !health["blocked"].as_array().unwrap().is_empty() {
            break health;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the waiter never showed as blocked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(health["blocked"][0]["blockedBy"], json!([holder_pid]));
    assert!(health["blocked"][0]["query"].as_str().unwrap().contains("Competition"));
    tx.rollback().await.unwrap();
    waiter.await.unwrap().unwrap();

    let xid_age: i64 =
        sqlx::query_scalar("SELECT age(datfrozenxid)::int8 FROM pg_database WHERE datname = current_database()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let reported = health["wraparound"]["xidAge"].as_i64().unwrap();
    // Other tests' transactions age it meanwhile; it never shrinks.
    assert!(reported <= xid_age, "{reported} > {xid_age}");
    assert_eq!(health["wraparound"]["wraparoundLimit"], 2_147_483_647_i64);
    let sequence = health["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sequence"].as_str().unwrap().contains("QueryPerformance"));
    assert!(sequence.is_none(), "a sequence never used has no last value");
    assert!(!health["connections"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn slow_shows_pg_stat_statements_when_installed_and_says_so_when_not() {
    let app = monitored_app().await;
    let absent = view(&app, "type=slow").await;
    assert_eq!(absent["pgStatStatements"]["available"], false, "{absent}");
    assert!(absent["pgStatStatements"]["reason"].as_str().unwrap().contains("CREATE EXTENSION"));
    assert!(absent["inProcess"]["queries"].is_array());

    let mut conn = app.db.connect().await;
    conn.execute("CREATE EXTENSION pg_stat_statements").await.unwrap();
    for _ in 0..3 {
        sqlx::query("SELECT 42 AS monitor_probe").execute(&app.pool).await.unwrap();
    }
    let slow = view(&app, "type=slow&limit=200").await;
    let statements = &slow["pgStatStatements"];
    assert_eq!(statements["available"], true, "{slow}");
    let probe = statements["byTotalTime"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["query"].as_str().unwrap().contains("monitor_probe"));
    let probe = probe.expect("the probe statement is listed");
    let (calls, rows): (i64, i64) = sqlx::query_as(
        "SELECT calls, rows FROM pg_stat_statements WHERE query LIKE '%monitor_probe%'
         AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((probe["calls"].as_i64().unwrap(), probe["rows"].as_i64().unwrap()), (calls, rows));
    assert_eq!(calls, 3);
    assert!(!statements["byMeanTime"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn stats_give_percentiles_per_query_name_and_per_route_template() {
    let app = monitored_app().await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    for _ in 0..3 {
        app.call(Method::GET, &format!("/api/projects/{project}"), Some(&owner.token), None)
            .await
            .expect(StatusCode::OK);
    }
    let stats = view(&app, "type=stats").await;
    let query = stats["queries"].as_array().unwrap().iter().find(|q| q["name"] == "users.create").unwrap();
    assert!(query["sinceStart"]["count"].as_u64().unwrap() >= 1, "{query}");
    assert!(query["window"]["p99Ms"].as_f64().unwrap() >= query["window"]["p50Ms"].as_f64().unwrap());
    let route = stats["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "GET /api/projects/{id}")
        .expect("by template");
    assert!(route["sinceStart"]["count"].as_u64().unwrap() >= 3, "{route}");
    assert!(route["statuses"]["200"].as_u64().unwrap() >= 3);
    assert!(stats["slow"]["thresholdMs"].as_f64().is_some());
    let routes: Vec<&str> = stats["routes"].as_array().unwrap().iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert!(!routes.iter().any(|r| r.contains(&project)), "no raw ids in route names: {routes:?}");
}

#[tokio::test]
async fn explain_answers_a_plan_and_its_summary() {
    let app = monitored_app().await;
    let owner = app.user("Owner").await;
    app.project(&owner, "PUBLIC").await;
    let plain = explain(&app, json!({"query": r#"SELECT * FROM "Project" WHERE "id" = $1"#, "params": ["x"]})).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.json);
    assert_eq!(plain.json["analyzed"], false);
    assert!(plain.json["plan"][0]["Plan"].is_object());
    assert_eq!(plain.json["summary"]["indexesUsed"], json!(["Project_pkey"]), "{}", plain.json["summary"]);

    let analyzed = explain(&app, json!({"query": r#"SELECT count(*) FROM "Project""#, "analyze": true}))
        .await
        .expect(StatusCode::OK);
    let estimates = analyzed.json["summary"]["rowEstimates"].as_array().unwrap();
    assert!(!estimates.is_empty());
    assert!(analyzed.json["summary"]["sequentialScans"].as_array().unwrap().iter().any(|t| t == "Project"));
}

#[tokio::test]
async fn explain_refuses_or_rolls_back_every_write() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN), ("monitor.explain_timeout_ms", "300")]).await;
    let owner = app.user("Owner").await;
    app.project(&owner, "PUBLIC").await;
    let mut conn = app.db.connect().await;
    conn.execute(
        r#"CREATE TABLE "sneaky_log" ("at" int);
           CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO "sneaky_log" VALUES (1) RETURNING 1'"#,
    )
    .await
    .unwrap();
    let counts = || async {
        let mut conn = app.db.connect().await;
        sqlx::query_as::<_, (i64, i64, i64)>(
            r#"SELECT (SELECT count(*) FROM "Project"), (SELECT count(*) FROM "User"), (SELECT count(*) FROM "sneaky_log")"#,
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    let before = counts().await;
    let refused = [
        (r#"WITH gone AS (DELETE FROM "Project" RETURNING 1) SELECT count(*) FROM gone"#, true),
        ("SELECT sneaky()", true),
        (r#"SELECT 1; DROP TABLE "User""#, false),
        (r#"SELECT 1; DROP TABLE "User""#, true),
        ("SET statement_timeout = 0", false),
        (r#"COPY "User" TO STDOUT"#, false),
        (r#"SELECT * INTO "stolen" FROM "User""#, false),
        ("SELECT pg_sleep(10)", true),
    ];
    for (query, analyze) in refused {
        let started = Instant::now();
        let response = explain(&app, json!({"query": query, "analyze": analyze})).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {}", response.json);
        assert_eq!(response.error_code(), "unprocessable");
        assert!(started.elapsed() < Duration::from_secs(5), "{query} was cut by the explain timeout");
    }
    assert_eq!(counts().await, before, "nothing changed");
    // Explained without running it, the writing function is planned, not called.
    explain(&app, json!({"query": "SELECT sneaky()"})).await.expect(StatusCode::OK);
    assert_eq!(counts().await, before);
    // The pool's connections keep their settings: nothing the explain set survives it.
    let timeout: String =
        sqlx::query_scalar("SELECT current_setting('statement_timeout')").fetch_one(&app.pool).await.unwrap();
    assert_eq!(timeout, "30s");
}

#[tokio::test]
async fn slow_calls_are_kept_in_query_performance_off_the_request_path() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(
        &db,
        &[("VIBING2_MONITOR__SLOW_QUERY_MS", "0"), ("VIBING2_MONITOR__SLOW_HISTORY_ROWS", "5")],
    )
    .await;
    // Every call is slow at a 0 ms threshold.
    server.owner_with_project().await;
    let mut conn = db.connect().await;
    let started = Instant::now();
    let names: Vec<String> = loop {
        let names: Vec<String> = sqlx::query_scalar(r#"SELECT "query" FROM "QueryPerformance" ORDER BY "id""#)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        if names.iter().any(|name| name == "projects.create") {
            break names;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "never written: {names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(names.len() <= 5, "kept to the newest 5: {names:?}");
}

#[tokio::test]
async fn metrics_parse_as_prometheus_exposition_with_every_family() {
    let app = monitored_app().await;
    assert_eq!(app.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    app.call(Method::GET, &format!("/api/projects/{project}"), Some(&owner.token), None).await.expect(StatusCode::OK);
    vibing2::service::health::ping(&app.state).await;

    let request = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let exposition = openmetrics_parser::prometheus::parse_prometheus(&text).expect("valid exposition");
    let family = |name: &str| exposition.families.get(name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    let labelled = |name: &str, label: &str, value: &str| {
        family(name).iter_samples().any(|sample| sample.get_labelset().unwrap().get_label_value(label) == Some(value))
    };
    assert!(labelled("vibing2_http_requests_total", "route", "GET /api/projects/{id}"), "{text}");
    let latency = family("vibing2_http_request_duration_seconds");
    assert_eq!(latency.family_type, openmetrics_parser::PrometheusType::Histogram);
    assert!(labelled("vibing2_http_request_duration_seconds", "route", "GET /api/projects/{id}"));
    assert_eq!(family("vibing2_db_query_duration_seconds").family_type, openmetrics_parser::PrometheusType::Histogram);
    assert!(labelled("vibing2_db_query_duration_seconds", "query", "projects.get"), "{text}");
    assert!(labelled("vibing2_pool_connections", "state", "idle"));
    assert_eq!(family("vibing2_pool_acquire_wait_seconds").family_type, openmetrics_parser::PrometheusType::Histogram);
    family("vibing2_pool_waiters");
    assert!(labelled("vibing2_cache_hits_total", "tier", "local"));
    assert!(!text.contains(&project), "no raw ids in labels");
}

#[tokio::test]
async fn the_advisor_proves_exactly_the_missing_index_with_a_hypothetical_one() {
    let app = monitored_app().await;
    let mut conn = app.db.connect().await;
    conn.execute("CREATE EXTENSION pg_stat_statements").await.unwrap();
    let absent = view(&app, "type=advise").await;
    assert_eq!(absent["available"], false, "{absent}");
    assert!(absent["reason"].as_str().unwrap().contains("hypopg"), "{absent}");

    conn.execute("CREATE EXTENSION hypopg").await.unwrap();
    conn.execute(
        "CREATE TABLE advisor_probe (id int PRIMARY KEY, tag int NOT NULL, payload text NOT NULL);
         INSERT INTO advisor_probe SELECT n, n % 5000, repeat('x', 40) FROM generate_series(1, 50000) n;
         ANALYZE advisor_probe",
    )
    .await
    .unwrap();
    for tag in 0..5 {
        sqlx::query("SELECT * FROM advisor_probe WHERE tag = $1").bind(tag).fetch_all(&app.pool).await.unwrap();
    }

    let advice = view(&app, "type=advise&limit=200").await;
    assert_eq!(advice["available"], true, "{advice}");
    let suggestions = advice["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1, "{advice}");
    let suggestion = &suggestions[0];
    assert_eq!(suggestion["table"], "advisor_probe");
    assert_eq!(suggestion["columns"], json!(["tag"]));
    assert_eq!(suggestion["create"], r#"CREATE INDEX CONCURRENTLY ON "public"."advisor_probe" ("tag")"#);
    let (before, after) = (suggestion["costBefore"].as_f64().unwrap(), suggestion["costAfter"].as_f64().unwrap());
    eprintln!("advised: cost {before} → {after} with the hypothetical index");
    assert!(before >= 2.0 * after, "{before} → {after}");
    assert!(suggestion["statement"].as_str().unwrap().contains("advisor_probe"));

    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'advisor_probe'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(created, 1, "only the primary key: the advisor creates nothing");
}
