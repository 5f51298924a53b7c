//! `vibing2 bench http` against a real server: its load runs clean, its reads reach other
//! users' public projects by the Zipf choice, and the HTTP floor is measured beside it, and
//! each scenario alone with the cache on and off, and each scenario's own SQL replayed by
//! pgbench.

use std::collections::BTreeMap;

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
        data: http::Data::Own,
        users: 2,
        projects_per_user: 3,
        seconds: 1.0,
        server_pid: Some(server.pid()),
        // The replays run on the server's database; the scale-10 `pgbench -S` is left out.
        pgbench_database: Some(&db.url),
        select_only_reference: false,
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
    assert!(report.pgbench.is_none());

    // After each scenario's cache-off run but the mix's, its own SQL replayed by pgbench.
    for pair in report.scenarios.chunks(2) {
        let (on, off) = (&pair[0], &pair[1]);
        assert!(on.own_sql.is_none() && on.own_sql_ratio.is_none(), "{on:?}");
        if off.scenario == "mixed rotation" {
            assert!(off.own_sql.is_none() && off.own_sql_ratio.is_none(), "{off:?}");
            continue;
        }
        let own = off.own_sql.as_ref().unwrap_or_else(|| panic!("no replay of {}", off.scenario));
        assert!(own.tps > 0.0 && own.latency_ms > 0.0, "{own:?}");
        let ratio = off.own_sql_ratio.expect("a ratio to the replay");
        assert!((ratio - off.requests_per_second / own.tps).abs() < 1e-9, "{off:?}");
        // Each statement finds rows with the values the scenario's requests send.
        assert_eq!(own.rows.len(), own.statements.len(), "{own:?}");
        assert!(own.rows.iter().all(|&rows| rows > 0), "{}: {:?}", off.scenario, own.rows);
        // One pgbench statement per replayed statement, each with its parameters as variables.
        assert_eq!(own.script.matches(";\n").count(), own.statements.len(), "{}", own.script);
        assert!(!own.script.contains('$') && !own.script.contains("--"), "{}", own.script);
        // The replay is what the service ran: by the query monitor's names, each uncached
        // request called each replayed statement as often as the replay runs it, and nothing
        // else once a request.
        let mut replayed: BTreeMap<&str, u64> = BTreeMap::new();
        for statement in &own.statements {
            *replayed.entry(statement.name).or_default() += off.requests;
        }
        let calls = off.database_calls.as_ref().expect("the monitor's counts, given the admin token");
        let ran: BTreeMap<&str, u64> = calls
            .iter()
            .filter(|(_, &count)| count >= off.requests)
            .map(|(name, &count)| (name.as_str(), count))
            .collect();
        assert_eq!(ran, replayed, "{}: the service's calls {calls:?} in {} requests", off.scenario, off.requests);
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

/// `--data seeded`: on a database `vibing2 bench seed` filled, the scenarios read what the
/// seed report's do, as users the bench signed in by setting their password, and nobody else's
/// password changes.
#[tokio::test]
async fn seeded_data_is_read_as_the_seed_reports_scenarios_read_it() {
    use vibing2::bench::seed::{self, Flavor, SeedOptions, FAKE_PASSWORD_HASH};

    let db = TestDb::migrated().await;
    // 100 users, 1,000 projects, 20,000 messages: deep enough for a message page past the first.
    let options = SeedOptions { scale: 0.01, seed: 1, flavor: Flavor::Current, progress: false };
    seed::seed(&mut db.connect().await, &options).await.expect("seeding");
    let server =
        SpawnedServer::start(&db, &[("VIBING2_RATE_LIMITS__ENABLED", "false"), ("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let report = http::run(HttpOptions {
        url: &server.base,
        concurrency: 4,
        data: http::Data::Seeded,
        users: 4,
        projects_per_user: 1,
        seconds: 0.5,
        server_pid: None,
        pgbench_database: Some(&db.url),
        select_only_reference: false,
        scenario_seconds: 0.2,
        admin_token: Some(ADMIN_TOKEN),
    })
    .await
    .expect("the load runs on the seeded data");
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert_eq!(report.users, 4);
    assert!(report.read_projects > 100, "{}", report.read_projects);

    let mut conn = db.connect().await;
    let scalar = |query: &'static str| sqlx::query_scalar::<_, String>(query);
    let heavy_owner = scalar(r#"SELECT "userId" FROM "Project" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let heavy_project = scalar(r#"SELECT "projectId" FROM "Message" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let heavy_usage = scalar(r#"SELECT "userId" FROM "TokenUsage" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let targets = &report.targets;
    assert_eq!((&targets.list_user, &targets.usage_user), (&heavy_owner, &heavy_usage), "{targets:?}");
    assert_eq!(targets.project, heavy_project, "{targets:?}");
    assert!(targets.message_page > 1, "{targets:?}");

    // Every scenario ran clean; every replay ran, and the deep page's found its messages.
    for run in &report.scenarios {
        assert!(run.requests > 0 && run.errors.is_empty(), "{run:?}");
    }
    let replays: Vec<_> =
        report.scenarios.iter().filter_map(|run| run.own_sql.as_ref().map(|own| (run, own))).collect();
    assert_eq!(replays.len(), 6, "{:?}", report.scenarios);
    assert!(replays.iter().all(|(_, own)| own.tps > 0.0));
    let (_, deep) = replays.iter().find(|(run, _)| run.scenario == "deep message page").expect("a deep page");
    assert!(deep.rows.last().is_some_and(|&rows| rows > 0), "{deep:?}");

    // The users it signed in as have a password of the run's; every other keeps the seed's.
    let changed: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "User" WHERE "password" <> $1"#)
        .bind(FAKE_PASSWORD_HASH)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(changed, 4);
}
