//! `vibing2 refresh-views`, `import` and `bench`.

use anyhow::Context;
use secrecy::ExposeSecret;

use super::Database;
use crate::cli::{BenchCommand, BenchPart, EmailConflictChoice, HttpData, ImportCommand, SeedFlavor};
use crate::config::Settings;
use crate::db;
use crate::jobs;

/// `vibing2 refresh-views`: refresh the materialized views once.
pub async fn refresh_views(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let outcome = async {
        let pool = db::connect(&settings.database, &database.url).await?;
        jobs::refresh_views_now(&pool).await
    }
    .await;
    database.close().await;
    for (view, elapsed_ms) in outcome? {
        println!("refreshed {view} in {elapsed_ms:.0} ms");
    }
    Ok(())
}

/// `vibing2 import sqlite:PATH`: fails (non-zero exit) on any refusal or mismatch, after
/// printing the report.
pub async fn import(settings: Settings, command: ImportCommand) -> anyhow::Result<()> {
    use crate::import::{self, tables::ApiLimits, EmailConflict, ImportOptions};
    let options = ImportOptions {
        source: import::source_path(&command.source)?,
        on_email_conflict: match command.on_email_conflict {
            EmailConflictChoice::Fail => EmailConflict::Fail,
            EmailConflictChoice::KeepFirst => EmailConflict::KeepFirst,
        },
        batch_rows: command.batch_rows as usize,
        quiet: command.quiet,
        rejects_path: command.rejects,
        limits: ApiLimits {
            message_chars: crate::validate::MESSAGE_CONTENT_CHARS,
            file_bytes: settings.limits.file_bytes_free,
        },
    };
    let database = Database::open(&settings).await?;
    let outcome = async {
        let target = db::connect_options(&settings.database, &database.url)?;
        import::run(&target, &options).await
    }
    .await;
    database.close().await;
    let report = outcome?;
    print!("{}", report.text());
    if let Some(path) = &command.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    anyhow::ensure!(report.ok, "the import's verification failed: see the report");
    Ok(())
}

/// `vibing2 bench [seed|http]`.
pub async fn bench(settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    use crate::bench::{self, seed::Flavor, BenchOptions};
    if let Some(BenchPart::Http {
        url,
        concurrency,
        data,
        users,
        projects_per_user,
        duration,
        server_pid,
        scenario_seconds,
        out,
    }) = command.part
    {
        let database = settings.database.url.as_ref().map(|url| url.expose_secret().to_owned());
        let report = bench::http::run(bench::http::HttpOptions {
            url: &url,
            concurrency,
            data: match data {
                HttpData::Own => bench::http::Data::Own,
                HttpData::Seeded => bench::http::Data::Seeded,
            },
            users: users.unwrap_or(concurrency.min(32)),
            projects_per_user: projects_per_user.into(),
            seconds: duration,
            server_pid,
            pgbench_database: database.as_deref(),
            select_only_reference: true,
            scenario_seconds,
            admin_token: settings.admin_token.as_ref().map(|token| token.expose_secret()),
        })
        .await?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
        std::fs::write(out.join("report.md"), report.markdown())?;
        println!("{}", report.markdown());
        return Ok(());
    }
    let database = Database::open(&settings).await?;
    let outcome = match command.part {
        Some(BenchPart::Import { messages, seed, rounds, out }) => {
            bench::import::run(database.url.expose_secret(), messages, seed, rounds as usize, &out).await.map(
                |report| {
                    println!("{}", report.markdown());
                    println!("report written to {}", out.display());
                },
            )
        }
        Some(BenchPart::Seed { scale, seed, flavor, anchor }) => {
            let (flavor, optimized) = match flavor {
                SeedFlavor::Current => (Flavor::Current, false),
                SeedFlavor::Phase2 => (Flavor::Phase2, false),
                SeedFlavor::Phase2Optimized => (Flavor::Phase2, true),
            };
            let anchor = match anchor {
                Some(day) => day.and_hms_opt(0, 0, 0).context("midnight exists")?,
                None => bench::seed::DEFAULT_ANCHOR,
            };
            let seeded = bench::seed_target(&database.url, scale, seed, flavor, anchor).await;
            let seeded = match seeded {
                Ok(report) if optimized => bench::optimize_like_the_report(&database.url).await.map(|()| report),
                other => other,
            };
            seeded.map(|report| {
                for table in &report.tables {
                    println!(
                        "{:<20} {:>10} rows {:>7.1} s {:>10.0} rows/s",
                        table.table,
                        table.rows,
                        table.seconds,
                        table.rows_per_second()
                    );
                }
                println!("{:<20} {:>10} rows {:>7.1} s", "total", report.rows(), report.total_seconds);
            })
        }
        _ => {
            let run = command.run;
            let options = BenchOptions {
                scale: run.scale,
                seed: run.seed,
                out: run.out.clone(),
                keep: run.keep,
                iterations: run.iterations,
                warmup: run.warmup,
                cache_reads: run.cache_reads,
                pool_clients: run.pool_clients,
                pool_seconds: run.pool_seconds,
                command: std::env::args().collect::<Vec<_>>().join(" "),
            };
            bench::run(&settings, &database.url, &options).await.map(|report| {
                println!("{}", report.markdown());
                println!("report written to {}", run.out.display());
            })
        }
    };
    database.close().await;
    outcome
}
