//! Discovery: only PUBLIC projects, five sorts, type and search filters, keyset pages that
//! neither repeat nor skip under heavy ties, and no e-mails.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sqlx::Executor;

use crate::support::TestApp;

/// 300 projects by 3 users: every third PRIVATE, like counts 0–4 (heavy ties), types
/// cycling, a few featured, names and descriptions with searchable words.
async fn seeded_app() -> TestApp {
    let app = TestApp::new().await;
    app.pool
        .execute(sqlx::raw_sql(
            r#"
            INSERT INTO "User" ("id", "name", "email", "password", "image")
            SELECT 'u' || n, 'Maker ' || n, 'maker' || n || '@example.com', 'x', 'https://img/' || n
            FROM generate_series(0, 2) n;
            INSERT INTO "Project" ("id", "name", "description", "projectType", "visibility", "userId",
                                   "likeCount", "forkCount", "viewCount", "isFeatured", "createdAt", "updatedAt")
            SELECT 'p' || lpad(n::text, 3, '0'),
                   CASE WHEN n % 7 = 0 THEN 'Weather Dashboard ' || n ELSE 'Project ' || n END,
                   CASE WHEN n % 11 = 0 THEN 'a neat 100%_dashboard widget' ELSE 'plain description ' || n END,
                   (ARRAY['website', 'game', 'tool'])[1 + n % 3],
                   CASE WHEN n % 3 = 0 THEN 'PRIVATE' ELSE 'PUBLIC' END,
                   'u' || (n % 3), n % 5, n % 4, n % 6, n % 50 = 1,
                   TIMESTAMP '2026-01-01' + (n % 40) * interval '1 hour',
                   TIMESTAMP '2026-02-01' + (n % 30) * interval '1 hour'
            FROM generate_series(1, 300) n;
            "#,
        ))
        .await
        .unwrap();
    app
}

/// Every page of a discovery query, concatenated.
async fn all_pages(app: &TestApp, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let response = app.call(Method::GET, &format!("/api/discover?{query}{cursor}"), None, None).await;
        assert_eq!(response.status, StatusCode::OK, "{query}: {}", response.json);
        items.extend(response.json["items"].as_array().unwrap().iter().cloned());
        match response.json["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return items,
        }
    }
    panic!("more than 100 pages for {query}");
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(|item| item["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn each_sort_pages_through_every_public_project_once_in_order() {
    let app = seeded_app().await;
    let public = 200;
    for (sort, key) in [
        ("popular", "likeCount"),
        ("forks", "forkCount"),
        ("trending", "viewCount"),
        ("recent", "createdAt"),
        ("featured", "isFeatured"),
    ] {
        let items = all_pages(&app, &format!("sort={sort}&limit=7")).await;
        let unique: HashSet<&str> = ids(&items).into_iter().collect();
        assert_eq!((items.len(), unique.len()), (public, public), "{sort}: every public project exactly once");
        let keys: Vec<String> = items.iter().map(|item| item[key].to_string()).collect();
        let sorted_desc = items.windows(2).all(|w| {
            let (a, b) = (&w[0], &w[1]);
            match key {
                "createdAt" => a[key].as_str() >= b[key].as_str(),
                "isFeatured" => {
                    a[key].as_bool() > b[key].as_bool()
                        || (a[key] == b[key] && a["updatedAt"].as_str() >= b["updatedAt"].as_str())
                }
                _ => a[key].as_i64() >= b[key].as_i64(),
            }
        });
        assert!(sorted_desc, "{sort} not ordered by {key}: {keys:?}");
    }
}

#[tokio::test]
async fn only_public_projects_and_creators_without_emails() {
    let app = seeded_app().await;
    let items = all_pages(&app, "limit=100").await;
    assert!(items.iter().all(|item| item["id"].as_str().unwrap()[1..].parse::<i32>().unwrap() % 3 != 0));
    let first = &items[0];
    assert_eq!(first["creator"].as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "image", "name"]);
    let text = serde_json::to_string(&items).unwrap();
    assert!(!text.contains("@example.com"), "no e-mail anywhere");
    assert!(first["preview"].as_str().unwrap().chars().count() <= 200);
}

#[tokio::test]
async fn type_filter_and_search_are_case_insensitive_substrings_ranked_by_similarity() {
    let app = seeded_app().await;
    let games = all_pages(&app, "type=game&limit=9").await;
    assert!(!games.is_empty() && games.iter().all(|item| item["projectType"] == "game"));
    let public_games = (1..=300).filter(|n| n % 3 == 1 && n % 3 != 0).count();
    assert_eq!(games.len(), public_games, "PUBLIC games among 300");

    let found = all_pages(&app, "search=DASHBOARD&limit=5").await;
    let expected = (1..=300).filter(|n| n % 3 != 0 && (n % 7 == 0 || n % 11 == 0)).count();
    assert_eq!(found.len(), expected, "name OR description, any case");
    let scores: Vec<f64> = found.iter().map(|item| item["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked by similarity: {scores:?}");

    // LIKE wildcards in the term match literally.
    let literal = all_pages(&app, "search=100%25_dash").await;
    assert_eq!(literal.len(), (1..=300).filter(|n| n % 3 != 0 && n % 11 == 0).count());
    let wildcards = all_pages(&app, "search=%25_d").await;
    assert_eq!(wildcards.len(), literal.len(), "'%_d' matches only text holding '%_d', not everything");

    let popular_games = all_pages(&app, "sort=popular&type=game&search=project").await;
    assert!(popular_games.iter().all(|item| item["projectType"] == "game"));
    assert!(popular_games.windows(2).all(|w| w[0]["likeCount"].as_i64() >= w[1]["likeCount"].as_i64()));
}

#[tokio::test]
async fn bad_discovery_parameters_are_4xx() {
    let app = seeded_app().await;
    let popular = app.call(Method::GET, "/api/discover?sort=popular&limit=2", None, None).await;
    let cursor = popular.json["nextCursor"].as_str().unwrap();
    for (query, status) in [
        ("sort=loudest", StatusCode::BAD_REQUEST),
        ("sort=relevance", StatusCode::UNPROCESSABLE_ENTITY),
        ("search=x", StatusCode::UNPROCESSABLE_ENTITY),
        // Two characters have no trigram: they would scan and rank every public project.
        ("search=ab", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("cursor=garbage", StatusCode::BAD_REQUEST),
        // Well-formed but unsigned: a position of the client's choosing.
        (&format!("sort=popular&cursor={}", URL_SAFE_NO_PAD.encode(br#"[0,"p001"]"#)), StatusCode::BAD_REQUEST),
        (&format!("sort=recent&cursor={cursor}"), StatusCode::BAD_REQUEST),
        ("owner=u1", StatusCode::BAD_REQUEST),
    ] {
        let response = app.call(Method::GET, &format!("/api/discover?{query}"), None, None).await;
        assert_eq!(response.status, status, "{query}: {}", response.json);
        response.error_code();
    }
}

/// A broad term scores at most `RELEVANCE_CANDIDATES` matches, the most recently updated, so
/// one search costs a bounded amount however many projects it matches.
#[tokio::test]
async fn a_broad_search_ranks_a_bounded_number_of_matches() {
    let app = TestApp::new().await;
    let cap = vibing2::db::discovery::RELEVANCE_CANDIDATES as usize;
    app.pool
        .execute(sqlx::raw_sql(&format!(
            r#"INSERT INTO "User" ("id", "name", "email", "password") VALUES ('maker', 'Maker', 'maker@example.com', 'x');
               INSERT INTO "Project" ("id", "name", "projectType", "visibility", "userId", "updatedAt")
               SELECT 'p' || lpad(n::text, 5, '0'), 'Alpha project ' || n, 'website', 'PUBLIC', 'maker',
                      TIMESTAMP '2026-01-01' + n * interval '1 minute'
               FROM generate_series(1, {}) n;"#,
            cap + 200
        )))
        .await
        .unwrap();
    let found = all_pages(&app, "search=alpha&limit=100").await;
    assert_eq!(found.len(), cap);
    let oldest_kept = format!("p{:05}", 201);
    assert!(found.iter().all(|item| item["id"].as_str().unwrap() >= oldest_kept.as_str()), "the newest matches");
    let unique: std::collections::BTreeSet<&str> = ids(&found).into_iter().collect();
    assert_eq!(unique.len(), cap, "no match twice across pages");
}
