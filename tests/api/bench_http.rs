//! `vibing2 bench http` against a real server: its load runs clean, its reads reach other
//! users' public projects by the Zipf choice, and the HTTP floor is measured beside it, and
//! each scenario alone with the cache on and off.

use vibing2::bench::http::{self, HttpOptions};

use crate::support::{SpawnedServer, TestDb, ADMIN_TOKEN};

#[tokio::test]
async fn the_load_reads_every_users_public_projects_without_an_error() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(
        &db,
        &[
            ("VIBING2_RATE_LIMITS__ENABLED", "false"),
            ("VIBING2_AUTH__SIGNUPS_PER_WINDOW", "100"),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await;
    let report = http::run(HttpOptions {
        url: &server.base,
        concurrency: 4,
        users: 2,
        projects_per_user: 3,
        seconds: 1.0,
        server_pid: Some(server.pid()),
        pgbench_database: None,
        scenario_seconds: 0.2,
        admin_token: Some(ADMIN_TOKEN),
    })
    .await
    .expect("the load runs");
    // User 0's three projects are public; user 1's first is private, its other two public.
    assert_eq!(report.read_projects, 5);
    assert_eq!(report.users, 2);
    assert!(report.requests > 0, "{report:?}");
    // A read of another user's private project would be a 404 here.
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert!(report.server_peak_rss_mb.is_some_and(|mb| mb > 1.0), "{:?}", report.server_peak_rss_mb);
    assert_eq!(report.mix.values().sum::<u64>(), report.requests, "{:?}", report.mix);
    // The floor ran first, from the same clients, on the liveness route alone.
    assert!(report.floor.requests > 0 && report.floor.errors.is_empty(), "{:?}", report.floor);
    let expected_ratio = report.requests_per_second / report.floor.requests_per_second;
    assert!((report.floor.mix_ratio - expected_ratio).abs() < 1e-9, "{:?}", report.floor);

    // Seven scenarios, each with the cache on, then switched off through the admin API.
    let runs: Vec<(&str, &str)> = report.scenarios.iter().map(|s| (s.scenario, s.cache)).collect();
    assert_eq!(runs.len(), 14, "{runs:?}");
    assert!(runs.chunks(2).all(|pair| pair[0].1 == "on" && pair[1].1 == "off" && pair[0].0 == pair[1].0), "{runs:?}");
    for run in &report.scenarios {
        assert!(run.requests > 0 && run.errors.is_empty(), "{run:?}");
        let expected = run.requests_per_second / report.floor.requests_per_second;
        assert!((run.floor_ratio - expected).abs() < 1e-9, "{run:?}");
    }
    let switches = reqwest::Client::new()
        .get(format!("{}/api/admin/switches", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(switches["cache"], "on", "the cache is switched back on: {switches}");
}
