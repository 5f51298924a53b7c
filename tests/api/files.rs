//! The batch file write: set-based, atomic, checksummed, and honest about what changed.

use axum::http::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::TestApp;

#[tokio::test]
async fn a_batch_reports_created_updated_unchanged_and_deleted() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let id = app.project(&owner, "PRIVATE").await;
    let uri = format!("/api/projects/{id}/files");

    let first = json!({"operations": [
        {"op": "upsert", "path": "index.html", "content": "<h1>héllo</h1>"},
        {"op": "upsert", "path": "src/app.ts", "content": "export {}"},
        {"op": "upsert", "path": "notes/readme", "content": "x", "language": "markdown"},
    ]});
    let response = app.call(Method::PUT, &uri, Some(&owner.token), Some(first)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json);
    let mut created: Vec<&str> =
        response.json["created"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    created.sort();
    assert_eq!(created, ["index.html", "notes/readme", "src/app.ts"]);

    let listing = app.call(Method::GET, &uri, Some(&owner.token), None).await;
    let items = listing.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|file| file.get("content").is_none()), "listings carry no content");
    let index = items.iter().find(|f| f["path"] == "index.html").unwrap();
    assert_eq!(index["language"], "html", "inferred from the extension");
    assert_eq!(index["size"], "<h1>héllo</h1>".len(), "bytes, not characters");
    assert_eq!(index["checksum"], hex::encode(Sha256::digest("<h1>héllo</h1>".as_bytes())));
    assert_eq!(items.iter().find(|f| f["path"] == "src/app.ts").unwrap()["language"], "typescript");
    assert_eq!(items.iter().find(|f| f["path"] == "notes/readme").unwrap()["language"], "markdown");

    let stamp = |path: &'static str| {
        let pool = app.pool.clone();
        let id = id.clone();
        async move {
            sqlx::query_scalar::<_, chrono::NaiveDateTime>(
                r#"SELECT "updatedAt" FROM "ProjectFile" WHERE "projectId" = $1 AND "path" = $2"#,
            )
            .bind(&id)
            .bind(path)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let before = stamp("src/app.ts").await;

    let second = json!({"operations": [
        {"op": "upsert", "path": "index.html", "content": "<h1>changed</h1>"},
        {"op": "upsert", "path": "src/app.ts", "content": "export {}"},
        {"op": "delete", "path": "notes/readme"},
        {"op": "delete", "path": "never/existed.txt"},
        {"op": "upsert", "path": "new.css", "content": "body{}"},
    ]});
    let response = app.call(Method::PUT, &uri, Some(&owner.token), Some(second)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.json);
    assert_eq!(response.json["created"], json!(["new.css"]));
    assert_eq!(response.json["updated"], json!(["index.html"]));
    assert_eq!(response.json["unchanged"], json!(["src/app.ts"]));
    assert_eq!(response.json["deleted"], json!(["notes/readme"]), "only files that existed");
    assert_eq!(stamp("src/app.ts").await, before, "an unchanged file is not rewritten");

    let file = app.call(Method::GET, &format!("{uri}/index.html"), Some(&owner.token), None).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.json["content"], "<h1>changed</h1>");
    let nested = app.call(Method::GET, &format!("{uri}/src/app.ts"), Some(&owner.token), None).await;
    assert_eq!(nested.json["content"], "export {}", "paths with slashes");
    let missing = app.call(Method::GET, &format!("{uri}/nope.js"), Some(&owner.token), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");
}

#[tokio::test]
async fn one_bad_operation_rejects_the_whole_batch_and_writes_nothing() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let id = app.project(&owner, "PRIVATE").await;
    let uri = format!("/api/projects/{id}/files");
    let seed = json!({"operations": [{"op": "upsert", "path": "keep.txt", "content": "original"}]});
    app.call(Method::PUT, &uri, Some(&owner.token), Some(seed)).await.expect(StatusCode::OK);

    let batch = json!({"operations": [
        {"op": "upsert", "path": "keep.txt", "content": "overwritten?"},
        {"op": "upsert", "path": "fine.txt", "content": "fine"},
        {"op": "upsert", "path": "../escape.txt", "content": "bad"},
    ]});
    let response = app.call(Method::PUT, &uri, Some(&owner.token), Some(batch)).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.json["error"]["message"].as_str().unwrap().starts_with("operations[2]:"), "{}", response.json);

    let files: Vec<(String, String)> =
        sqlx::query_as(r#"SELECT "path", "content" FROM "ProjectFile" WHERE "projectId" = $1"#)
            .bind(&id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(files, [("keep.txt".to_owned(), "original".to_owned())]);
}

#[tokio::test]
async fn file_size_is_capped_by_the_owners_plan() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let id = app.project(&owner, "PRIVATE").await;
    let uri = format!("/api/projects/{id}/files");
    let big = "x".repeat(60 * 1024);
    let batch = json!({"operations": [{"op": "upsert", "path": "big.txt", "content": big}]});

    let free = app.call(Method::PUT, &uri, Some(&owner.token), Some(batch.clone())).await;
    assert_eq!(free.status, StatusCode::UNPROCESSABLE_ENTITY, "FREE allows 50 KB");

    app.set_plan(&owner, "PRO").await;
    let pro = app.call(Method::PUT, &uri, Some(&owner.token), Some(batch)).await;
    assert_eq!(pro.status, StatusCode::OK, "PRO allows 100 KB: {}", pro.json);
}

/// 100 files in one request: one transaction of set-based statements, not one per file.
#[tokio::test]
async fn a_batch_of_100_files_is_a_fixed_number_of_statements() {
    let app = TestApp::new().await;
    let owner = app.user("Owner").await;
    let id = app.project(&owner, "PRIVATE").await;
    let uri = format!("/api/projects/{id}/files");
    let operations: Vec<_> = (0..100)
        .map(|n| json!({"op": "upsert", "path": format!("src/file{n}.js"), "content": format!("// {n}")}))
        .collect();
    let (statements, response) = crate::projects::count_statements(app.call(
        Method::PUT,
        &uri,
        Some(&owner.token),
        Some(json!({"operations": operations})),
    ))
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json["created"].as_array().unwrap().len(), 100);
    // session + access facts + the owner's plan + BEGIN + upsert + touch + COMMIT
    assert!(statements <= 7, "{statements} statements for 100 files");
}

#[tokio::test]
async fn a_project_holds_at_most_its_plans_files_and_bytes_and_a_batch_past_them_writes_nothing() {
    let app = TestApp::with_settings(&[("limits.project_files_free", "2"), ("limits.project_bytes_free", "100")]).await;
    let owner = app.user("Owner").await;
    let project = app.project(&owner, "PRIVATE").await;
    let uri = format!("/api/projects/{project}/files");
    let batch = |operations: serde_json::Value| json!({ "operations": operations });
    let write = |body: serde_json::Value| app.call(Method::PUT, &uri, Some(&owner.token), Some(body));
    let held = || async {
        let (files, bytes): (i64, i64) = sqlx::query_as(
            r#"SELECT count(*), COALESCE(sum("size"), 0)::bigint FROM "ProjectFile" WHERE "projectId" = $1"#,
        )
        .bind(&project)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (files, bytes)
    };

    let two = batch(json!([
        {"op": "upsert", "path": "a.txt", "content": "x".repeat(40)},
        {"op": "upsert", "path": "b.txt", "content": "y".repeat(40)},
    ]));
    write(two).await.expect(StatusCode::OK);
    assert_eq!(held().await, (2, 80));

    // A third file, or content past 100 bytes: refused whole, nothing written.
    let third = batch(json!([{"op": "upsert", "path": "c.txt", "content": "z"}]));
    let bigger = batch(json!([{"op": "upsert", "path": "a.txt", "content": "x".repeat(61)}]));
    for refused in [third, bigger] {
        let response = write(refused).await;
        assert_eq!(
            (response.status, response.error_code()),
            (StatusCode::FORBIDDEN, "quota_exceeded"),
            "{}",
            response.json
        );
        assert_eq!(held().await, (2, 80), "nothing written");
    }

    // A batch that deletes as it adds stays within the quota.
    let swap =
        batch(json!([{"op": "delete", "path": "b.txt"}, {"op": "upsert", "path": "c.txt", "content": "z".repeat(60)}]));
    write(swap).await.expect(StatusCode::OK);
    assert_eq!(held().await, (2, 100));
}
