//! `vibing2 bench`: synthetic data at scale, and the seed report's before/after table
//! measured side by side in one run.

pub mod http;
pub mod import;
pub mod measure;
pub mod replay;
pub mod report;
pub mod scenarios;
pub mod seed;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

use self::report::{Environment, Report, SeedFigure};
use self::scenarios::ScenarioContext;
use self::seed::{Flavor, SeedOptions, SeedReport};
use crate::config::Settings;
use crate::db::{self, migrate};

pub struct BenchOptions {
    pub scale: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub keep: bool,
    pub iterations: usize,
    pub warmup: usize,
    pub cache_reads: usize,
    pub pool_clients: usize,
    pub pool_seconds: f64,
    pub command: String,
}

/// The two databases of a run, created beside the target database.
struct BenchDatabases {
    admin_url: String,
    before: String,
    after: String,
}

impl BenchDatabases {
    fn url(&self, database: &str) -> anyhow::Result<String> {
        let mut url = url::Url::parse(&self.admin_url)?;
        url.set_path(&format!("/{database}"));
        Ok(url.to_string())
    }

    async fn drop_all(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        for name in [&self.before, &self.after] {
            admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
        }
        Ok(())
    }
}

/// Seeds both databases, measures every scenario, writes the report into `options.out`.
pub async fn run(settings: &Settings, target: &SecretString, options: &BenchOptions) -> anyhow::Result<Report> {
    let started_at = Utc::now();
    let mut admin = PgConnection::connect(target.expose_secret()).await.context("cannot connect to DATABASE_URL")?;
    let base: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut admin).await?;
    let postgres_version: String = sqlx::query_scalar("SELECT version()").fetch_one(&mut admin).await?;
    let databases = BenchDatabases {
        admin_url: target.expose_secret().to_owned(),
        before: format!("{base}_bench_before"),
        after: format!("{base}_bench_after"),
    };
    databases.drop_all().await?;
    for name in [&databases.before, &databases.after] {
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    }
    admin.close().await?;

    let outcome = measure_all(settings, &databases, options, postgres_version, started_at).await;
    if !options.keep {
        databases.drop_all().await?;
    }
    let report = outcome?;
    report.write(&options.out)?;
    Ok(report)
}

async fn measure_all(
    settings: &Settings,
    databases: &BenchDatabases,
    options: &BenchOptions,
    postgres_version: String,
    started_at: chrono::DateTime<Utc>,
) -> anyhow::Result<Report> {
    // Both databases hold the same rows, dated up to today, so "the last 30 days" has data.
    let anchor = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight exists");
    let mut seeding = Vec::new();
    let before_url = databases.url(&databases.before)?;
    let after_url = databases.url(&databases.after)?;

    eprintln!("seeding the before database (Phase-2 schema, scale {})", options.scale);
    let mut before_conn = PgConnection::connect(&before_url).await?;
    before_conn.execute(sqlx::raw_sql(migrate::MIGRATIONS[0].sql)).await?;
    let figures = seed::seed_at(&mut before_conn, &seed_options(options, Flavor::Phase2), anchor).await?;
    seeding.extend(seed_figures("before", &figures));

    eprintln!("seeding the after database (migrated schema)");
    let mut after_conn = PgConnection::connect(&after_url).await?;
    migrate::run(&mut after_conn).await?;
    let figures = seed::seed_at(&mut after_conn, &seed_options(options, Flavor::Current), anchor).await?;
    seeding.extend(seed_figures("after", &figures));

    for conn in [&mut before_conn, &mut after_conn] {
        conn.execute("SET statement_timeout = 0").await?;
        conn.execute("VACUUM ANALYZE").await?;
    }
    let before = pool(settings, &before_url).await?;
    let after = pool(settings, &after_url).await?;
    crate::jobs::refresh_views_now(&after).await?;

    let cx = ScenarioContext {
        before: &before,
        after: &after,
        after_url: &after_url,
        settings,
        warmup: options.warmup,
        iterations: options.iterations,
    };
    let fixtures = scenarios::fixtures(&after).await?;
    let mut results = Vec::new();
    eprintln!("measuring: project list");
    results.push(scenarios::project_list(&cx, &fixtures).await?);
    eprintln!("measuring: file operations");
    results.push(scenarios::file_save(&cx, &fixtures).await?);
    eprintln!("measuring: message pagination");
    results.push(scenarios::message_page(&cx, &fixtures).await?);
    eprintln!("measuring: discovery");
    results.extend(scenarios::discovery(&cx, &fixtures).await?);
    eprintln!("measuring: token analytics");
    results.push(scenarios::token_analytics(&cx, &fixtures).await?);
    eprintln!("measuring: cache");
    let cache = scenarios::cache_hit_rate(&cx, options.cache_reads).await?;
    eprintln!("measuring: connection pool");
    let pool_result = scenarios::pool_throughput(&cx, options.pool_clients, options.pool_seconds).await?;
    before.close().await;
    after.close().await;

    let kpis = Report::kpis(&results, &cache);
    Ok(Report {
        environment: Environment {
            scale: options.scale,
            seed: options.seed,
            iterations: options.iterations,
            warmup: options.warmup,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            postgres_version,
            redis: settings.redis.url.is_some(),
            command: options.command.clone(),
            started_at: started_at.to_rfc3339(),
        },
        seeding,
        scenarios: results,
        cache,
        pool: pool_result,
        kpis,
    })
}

fn seed_options(options: &BenchOptions, flavor: Flavor) -> SeedOptions {
    SeedOptions { scale: options.scale, seed: options.seed, flavor, progress: true }
}

fn seed_figures(database: &'static str, report: &SeedReport) -> Vec<SeedFigure> {
    report
        .tables
        .iter()
        .map(|t| SeedFigure {
            database,
            table: t.table,
            rows: t.rows,
            seconds: t.seconds,
            rows_per_second: t.rows_per_second(),
        })
        .collect()
}

/// A pool built as the service builds its own.
async fn pool(settings: &Settings, url: &str) -> anyhow::Result<db::Pool> {
    db::connect(&settings.database, &SecretString::from(url.to_owned())).await
}

/// `vibing2 bench seed`: fills the target database. An empty one is first given the schema of
/// the flavor; one that already has it must have empty tables.
/// Takes a seeded Phase-2 database to the shape the platform's own optimization left it
/// (`seed/phase2_optimized.sql`).
pub async fn optimize_like_the_report(target: &SecretString) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut conn = PgConnectOptions::from_str(target.expose_secret())?.connect().await?;
    conn.execute("SET statement_timeout = 0").await?;
    conn.execute(sqlx::raw_sql(include_str!("seed/phase2_optimized.sql"))).await?;
    println!("applied the report's optimized schema and indexes in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Seeds `target` (giving an empty database the flavor's schema first), every generated time
/// before `anchor`.
pub async fn seed_target(
    target: &SecretString,
    scale: f64,
    seed_value: u64,
    flavor: Flavor,
    anchor: chrono::NaiveDateTime,
) -> anyhow::Result<SeedReport> {
    let options = PgConnectOptions::from_str(target.expose_secret())?;
    let mut conn = options.connect().await?;
    let has_schema: bool =
        sqlx::query_scalar(r#"SELECT to_regclass('"User"') IS NOT NULL"#).fetch_one(&mut conn).await?;
    if !has_schema {
        match flavor {
            Flavor::Phase2 => {
                conn.execute(sqlx::raw_sql(migrate::MIGRATIONS[0].sql)).await?;
            }
            Flavor::Current => {
                migrate::run(&mut conn).await?;
            }
        }
    }
    let started = Instant::now();
    let seeding = SeedOptions { scale, seed: seed_value, flavor, progress: true };
    let report = seed::seed_at(&mut conn, &seeding, anchor).await?;
    if flavor == Flavor::Current {
        let pool = db::Pool::new(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await?);
        crate::jobs::refresh_views_now(&pool).await?;
    }
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "seeded");
    Ok(report)
}
