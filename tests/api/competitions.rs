//! Competitions: entering a PUBLIC project once, listing by status, closing.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{TestApp, TestResponse, TestUser};

async fn enter(app: &TestApp, caller: Option<&TestUser>, project: &str, body: Value) -> TestResponse {
    let uri = format!("/api/projects/{project}/competition");
    let token = caller.map(|user| user.token.as_str());
    app.call(Method::POST, &uri, token, Some(body)).await
}

async fn close(app: &TestApp, caller: &TestUser, id: &str) -> TestResponse {
    let uri = format!("/api/competitions/{id}/close");
    app.call(Method::POST, &uri, Some(&caller.token), None).await
}

async fn competition_count(app: &TestApp) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM "Competition""#).fetch_one(&app.pool).await.unwrap()
}

/// The ids of a list, following every cursor.
async fn list_all(app: &TestApp, query: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut uri = format!("/api/competitions?limit={limit}{query}");
    loop {
        let page = app.call(Method::GET, &uri, None, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        ids.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page.json["nextCursor"].as_str() {
            Some(next) => uri = format!("/api/competitions?limit={limit}{query}&cursor={next}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn the_owner_enters_a_public_project_once() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let admin = app.user("Admin").await;
    let stranger = app.user("Stranger").await;
    let public = app.project(&owner, "PUBLIC").await;
    let private = app.project(&owner, "PRIVATE").await;
    app.add_collaborator(&public, &admin, "ADMIN").await;
    app.add_collaborator(&private, &admin, "ADMIN").await;

    // Others, as authorize answers them; nothing is written.
    let title = json!({"title": "Best app"});
    let cases = [
        (Some(&admin), &public, StatusCode::FORBIDDEN),
        (Some(&admin), &private, StatusCode::FORBIDDEN),
        (Some(&stranger), &public, StatusCode::FORBIDDEN),
        (Some(&stranger), &private, StatusCode::NOT_FOUND),
        (None, &public, StatusCode::UNAUTHORIZED),
        (None, &private, StatusCode::NOT_FOUND),
        (Some(&owner), &"no-such-project".to_owned(), StatusCode::NOT_FOUND),
    ];
    for (caller, project, expected) in cases {
        let response = enter(&app, caller, project, title.clone()).await;
        assert_eq!(response.status, expected, "{}", response.json);
        response.error_code();
    }
    let private_entry = enter(&app, Some(&owner), &private, title.clone()).await;
    assert_eq!(private_entry.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(private_entry.error_code(), "unprocessable");
    assert_eq!(competition_count(&app).await, 0);

    let entered = enter(&app, Some(&owner), &public, json!({"title": "  Best app "})).await;
    assert_eq!(entered.status, StatusCode::CREATED, "{}", entered.json);
    let competition = &entered.json;
    assert_eq!(competition["projectId"], public.as_str());
    assert_eq!(competition["title"], "Best app");
    assert_eq!(competition["status"], "ACTIVE");
    assert!(competition["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(competition["updatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        competition["project"],
        json!({"id": public, "name": "A project",
               "creator": {"id": owner.id, "name": "Owner", "image": null}})
    );
    assert!(!competition.to_string().contains("@example.com"));

    let again = enter(&app, Some(&owner), &public, json!({"title": "Again"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.json);
    assert_eq!(again.error_code(), "conflict");
    assert_eq!(competition_count(&app).await, 1);
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PUBLIC").await;
    for body in [
        json!({}),
        json!({"title": ""}),
        json!({"title": "   "}),
        json!({"title": "x".repeat(201)}),
        json!({"title": 7}),
        json!({"title": "ok", "status": "CLOSED"}),
        json!({"title": "bell\u{7}"}),
        json!("title"),
    ] {
        let response = enter(&app, Some(&owner), &project, body.clone()).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", response.json);
        assert_eq!(response.error_code(), "unprocessable");
    }
    assert_eq!(competition_count(&app).await, 0);
    let longest = enter(&app, Some(&owner), &project, json!({"title": "é".repeat(200)})).await;
    assert_eq!(longest.status, StatusCode::CREATED, "200 characters fit");

    for query in ["status=OPEN", "status=active", "limit=0", "cursor=forged", "sort=new"] {
        let response = app.call(Method::GET, &format!("/api/competitions?{query}"), None, None).await;
        assert!(response.status.is_client_error(), "{query}");
        response.error_code();
    }
    let stale = app.call(Method::GET, "/api/competitions", Some("not-a-session"), None).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn competitions_are_listed_by_status_newest_first_and_closed_once() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let other = app.user("Other").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let project = app.project(&owner, "PUBLIC").await;
        let entered = enter(&app, Some(&owner), &project, json!({"title": format!("c{n}")})).await;
        assert_eq!(entered.status, StatusCode::CREATED);
        ids.push(entered.json["id"].as_str().unwrap().to_owned());
    }
    // A competition whose project went private is no longer listed.
    let hidden_project = app.project(&owner, "PUBLIC").await;
    let hidden = enter(&app, Some(&owner), &hidden_project, json!({"title": "hidden"})).await;
    let hidden_id = hidden.json["id"].as_str().unwrap().to_owned();
    let patch = app
        .call(
            Method::PATCH,
            &format!("/api/projects/{hidden_project}"),
            Some(&owner.token),
            Some(json!({"visibility": "PRIVATE"})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);

    // Closing: owner only, once.
    let by_other = close(&app, &other, &ids[1]).await;
    assert_eq!(by_other.status, StatusCode::FORBIDDEN, "{}", by_other.json);
    let of_hidden = close(&app, &other, &hidden_id).await;
    assert_eq!(of_hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(of_hidden.error_code(), "not_found");
    let anonymous = app.call(Method::POST, &format!("/api/competitions/{}/close", ids[1]), None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let unknown = close(&app, &owner, "no-such-competition").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    for id in [&ids[1], &ids[3]] {
        let closed = close(&app, &owner, id).await;
        assert_eq!(closed.status, StatusCode::OK, "{}", closed.json);
        assert_eq!(closed.json["status"], "CLOSED");
        assert_eq!(closed.json["id"], id.as_str());
    }
    let twice = close(&app, &owner, &ids[1]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.error_code(), "conflict");

    let newest_first = |picked: &[usize]| -> Vec<String> { picked.iter().rev().map(|&n| ids[n].clone()).collect() };
    for limit in [1, 2, 100] {
        assert_eq!(list_all(&app, "", limit).await, newest_first(&[0, 1, 2, 3, 4]));
        assert_eq!(list_all(&app, "&status=ACTIVE", limit).await, newest_first(&[0, 2, 4]));
        assert_eq!(list_all(&app, "&status=CLOSED", limit).await, newest_first(&[1, 3]));
    }
    let page = app.call(Method::GET, "/api/competitions", None, None).await;
    assert_eq!(page.json["items"][0]["project"]["creator"]["name"], "Owner");
    assert!(!page.json.to_string().contains("@example.com"));
}

/// Each list variant is an ordered range scan of `Competition_status_createdAt_idx`.
#[tokio::test]
async fn the_competition_list_uses_its_index() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    sqlx::query(
        r#"WITH p AS (
               INSERT INTO "Project" ("id", "name", "projectType", "userId", "visibility", "updatedAt")
               SELECT 'p' || n, 'P' || n, 'website', $1,
                      CASE WHEN n % 10 = 0 THEN 'PRIVATE' ELSE 'PUBLIC' END, now()
               FROM generate_series(1, 5000) n RETURNING "id"
           )
           INSERT INTO "Competition" ("id", "projectId", "title", "status", "createdAt")
           SELECT 'c' || p."id", p."id", 'T', CASE WHEN random() < 0.3 THEN 'ACTIVE' ELSE 'CLOSED' END,
                  TIMESTAMP '2026-01-01' + random() * interval '300 days'
           FROM p"#,
    )
    .bind(&owner.id)
    .execute(&app.pool)
    .await
    .unwrap();
    for table in ["Project", "Competition"] {
        sqlx::query(&format!(r#"ANALYZE "{table}""#)).execute(&app.pool).await.unwrap();
    }
    let far = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap().and_hms_opt(0, 0, 0).unwrap();
    for filtered in [true, false] {
        let sql = format!("EXPLAIN (FORMAT JSON) {}", vibing2::db::competitions::page_sql(filtered));
        let query = sqlx::query_scalar(&sql).bind(far).bind("").bind(21_i64);
        let query = if filtered { query.bind("ACTIVE") } else { query };
        let plan: Value = query.fetch_one(&app.pool).await.unwrap();
        let plan = plan.to_string();
        assert!(plan.contains("Competition_status_createdAt_idx"), "{plan}");
        assert!(!plan.contains("\"Sort\""), "no sort of the whole table: {plan}");
    }
}
