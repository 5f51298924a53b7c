//! The scheduler: each job runs once per interval however many instances tick, and its
//! last run shows in the detailed health output.

use axum::http::StatusCode;
use vibing2::config::JobSettings;
use vibing2::jobs::{Attempt, Job, Scheduler};

use crate::support::{timed, TestApp, ADMIN_TOKEN};

fn hourly() -> JobSettings {
    JobSettings {
        enabled: true,
        tick_secs: 1,
        refresh_project_stats_secs: 3600,
        refresh_user_token_summary_secs: 3600,
        cleanup_secs: 3600,
        analyze_secs: 3600,
        statement_timeout_ms: 60_000,
        ..JobSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_on_one_database_run_each_job_once() {
    let app = TestApp::new().await;
    let first = Scheduler::new(app.pool.clone(), hourly());
    let second = Scheduler::new(app.db.pool(&app.db.settings(&[])).await, hourly());

    // Both instances tick at the same moment, three times over.
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let (a, b) = tokio::join!(first.tick(), second.tick());
        attempts.extend(a);
        attempts.extend(b);
    }
    for job in Job::ALL {
        let ran = attempts.iter().filter(|(j, attempt)| *j == job && *attempt == Attempt::Ran).count();
        assert_eq!(ran, 1, "{} ran {ran} times", job.name());
    }
    let runs: Vec<(String, i64, String)> =
        sqlx::query_as(r#"SELECT "job", "runs", "outcome" FROM "JobRun" ORDER BY "job""#)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), Job::ALL.len());
    assert!(runs.iter().all(|(_, count, outcome)| *count == 1 && outcome == "ok"), "{runs:?}");
}

#[tokio::test]
async fn job_runs_and_refreshes_show_in_detailed_health() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    let before: chrono::NaiveDateTime =
        sqlx::query_scalar(r#"SELECT "refreshedAt" FROM "ViewRefresh" WHERE "viewName" = 'project_stats'"#)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (_, tick_ms) = timed(Scheduler::new(app.pool.clone(), hourly()).tick()).await;
    let response = app.admin_get("/api/health/database?detailed=true").await;
    assert_eq!(response.status, StatusCode::OK);
    let jobs = response.json["details"]["jobs"].as_array().unwrap();
    let names: Vec<&str> = jobs.iter().map(|job| job["job"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["analyze", "cleanup_expired", "maintain_partitions", "refresh_project_stats", "refresh_user_token_summary"]
    );
    for job in jobs {
        assert_eq!(job["outcome"], "ok");
        let duration_ms = job["durationMs"].as_f64().expect("durationMs is a number");
        assert!((0.0..=tick_ms).contains(&duration_ms), "{} took {duration_ms} ms of a {tick_ms} ms tick", job["job"]);
        assert!(job["lastStartedAt"].is_string());
    }
    let after: chrono::NaiveDateTime =
        sqlx::query_scalar(r#"SELECT "refreshedAt" FROM "ViewRefresh" WHERE "viewName" = 'project_stats'"#)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(after > before, "the refresh was recorded");
}

#[tokio::test]
async fn cleanup_deletes_expired_sessions_and_tokens_only() {
    let app = TestApp::new().await;
    let user = app.user("Sessions").await;
    sqlx::raw_sql(&format!(
        r#"INSERT INTO "Session" ("tokenHash", "userId", "expires") VALUES ('old', '{id}', TIMESTAMP '2020-01-01');
           INSERT INTO "VerificationToken" ("identifier", "token", "expires")
           VALUES ('a', 'expired', TIMESTAMP '2020-01-01'), ('b', 'live', TIMESTAMP '2999-01-01')"#,
        id = user.id
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    Scheduler::new(app.pool.clone(), hourly()).tick().await;
    let (sessions, tokens): (Vec<String>, Vec<String>) = (
        sqlx::query_scalar(r#"SELECT "tokenHash" FROM "Session""#).fetch_all(&app.pool).await.unwrap(),
        sqlx::query_scalar(r#"SELECT "token" FROM "VerificationToken""#).fetch_all(&app.pool).await.unwrap(),
    );
    assert_eq!(sessions.len(), 1, "only the live login session is left");
    assert_ne!(sessions[0], "old");
    assert_eq!(tokens, ["live"]);
}

#[tokio::test]
async fn a_job_stuck_past_its_statement_timeout_fails_and_gives_its_connection_back() {
    let app = TestApp::with_settings(&[("admin_token", ADMIN_TOKEN)]).await;
    // Another session holds a lock the view refresh needs.
    let mut blocker = app.db.connect().await;
    let mut held = sqlx::Connection::begin(&mut blocker).await.unwrap();
    sqlx::query(r#"LOCK TABLE "Project" IN ACCESS EXCLUSIVE MODE"#).execute(&mut *held).await.unwrap();

    let bounded = JobSettings { statement_timeout_ms: 300, ..hourly() };
    let attempts =
        tokio::time::timeout(std::time::Duration::from_secs(30), Scheduler::new(app.pool.clone(), bounded).tick())
            .await
            .expect("the tick ends: no job waits for ever");
    let refresh = attempts.iter().find(|(job, _)| job.name() == "refresh_project_stats").expect("the refresh ran");
    assert_eq!(refresh.1, Attempt::Failed, "{attempts:?}");
    held.rollback().await.unwrap();

    let response = app.admin_get("/api/health/database?detailed=true").await;
    let jobs = response.json["details"]["jobs"].as_array().unwrap();
    let recorded = jobs.iter().find(|job| job["job"] == "refresh_project_stats").unwrap();
    assert_eq!(recorded["outcome"], "error", "{recorded}");
}

#[tokio::test]
async fn cleanup_keeps_the_attempts_the_longest_window_still_counts() {
    let app = TestApp::new().await;
    sqlx::raw_sql(
        r#"INSERT INTO "LoginFailure" ("key", "at") VALUES
             ('fork:half-an-hour', (now() AT TIME ZONE 'UTC') - interval '30 minutes'),
             ('fork:two-hours', (now() AT TIME ZONE 'UTC') - interval '2 hours')"#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    Scheduler::new(app.pool.clone(), hourly()).tick().await;
    let kept: Vec<String> =
        sqlx::query_scalar(r#"SELECT "key" FROM "LoginFailure" ORDER BY 1"#).fetch_all(&app.pool).await.unwrap();
    assert_eq!(kept, ["fork:half-an-hour"], "a fork 30 minutes ago still counts against the hourly limit");
}
