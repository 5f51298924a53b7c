//! `vibing2 bench import`: generates a clean Phase-1 SQLite database (text timestamps only,
//! so that pgloader can load it at all), then times `vibing2 import` and, where it is
//! installed, `pgloader` on it, each into a fresh database beside `DATABASE_URL`, one after
//! the other, for a few rounds in one run. Peak RSS is the process's `VmHWM`, sampled every 10 ms. The source is
//! synced to disk first; each target is dropped once counted, and each run starts on a
//! settled server (no autovacuum worker, a fresh checkpoint).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::params;
use serde::Serialize;
use sqlx::{Connection, Executor, PgConnection};

/// Rows of the generated source besides the messages.
const USERS: usize = 1_000;
const PROJECTS: usize = 10_000;
const FILES: usize = 20_000;
const USAGE: usize = 100_000;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolRun {
    pub tool: String,
    pub seconds: f64,
    /// Rows in the target afterwards, over every table the tool wrote.
    pub rows: i64,
    pub rows_per_second: f64,
    pub peak_rss_mb: f64,
    pub exit_ok: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportBench {
    pub messages: usize,
    pub source_rows: usize,
    pub source_mb: f64,
    pub generated_seconds: f64,
    pub runs: Vec<ToolRun>,
    /// vibing2's median rows/s over pgloader's, when pgloader ran.
    pub speedup: Option<f64>,
    pub pgloader_absent: bool,
}

impl ImportBench {
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Phase-1 import: {} rows ({} messages), SQLite source of {:.0} MB, generated in {:.1} s\n\n\
             | tool | seconds | rows in target | rows/s | peak RSS |\n|---|---|---|---|---|\n",
            self.source_rows, self.messages, self.source_mb, self.generated_seconds
        );
        for run in &self.runs {
            out.push_str(&format!(
                "| {} | {:.1} | {} | {:.0} | {:.0} MB |{}\n",
                run.tool,
                run.seconds,
                run.rows,
                run.rows_per_second,
                run.peak_rss_mb,
                if run.exit_ok { "" } else { " (exited with an error)" }
            ));
        }
        match self.speedup {
            Some(speedup) => out.push_str(&format!("\nvibing2 import / pgloader, median rows/s: {speedup:.2}x\n")),
            None if self.pgloader_absent => out.push_str("\npgloader is not installed: no comparison\n"),
            None => {}
        }
        out
    }
}

/// Runs the benchmark; `admin_url` names a database on the server the targets are made on.
pub async fn run(
    admin_url: &str,
    messages: usize,
    seed: u64,
    rounds: usize,
    out: &Path,
) -> anyhow::Result<ImportBench> {
    std::fs::create_dir_all(out)?;
    let source = out.join("phase1-bench.db");
    let started = Instant::now();
    let source_rows = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || generate(&source, messages, seed)).await??
    };
    let generated_seconds = started.elapsed().as_secs_f64();
    // On disk before either tool runs, so that neither pays for the generator's writeback.
    std::fs::File::open(&source)?.sync_all()?;
    let source_mb = std::fs::metadata(&source)?.len() as f64 / 1e6;
    tracing::info!(rows = source_rows, seconds = generated_seconds, "generated the Phase-1 source");

    let pgloader_absent = which("pgloader").is_none();
    let mut runs = Vec::new();
    for _ in 0..rounds {
        runs.push(run_ours(admin_url, &source, out).await?);
        if !pgloader_absent {
            runs.push(run_pgloader(admin_url, &source).await?);
        }
    }
    let median = |tool: &str| {
        let mut rates: Vec<f64> =
            runs.iter().filter(|run| run.tool == tool && run.exit_ok).map(|run| run.rows_per_second).collect();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied()
    };
    let speedup = match (median(OURS), median(PGLOADER)) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
        _ => None,
    };
    let report = ImportBench { messages, source_rows, source_mb, generated_seconds, runs, speedup, pgloader_absent };
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(out.join("report.md"), report.markdown())?;
    Ok(report)
}

const OURS: &str = "vibing2 import";
const PGLOADER: &str = "pgloader";

/// One timed `vibing2 import` of `source`, into a fresh database that is dropped once
/// counted: neither tool may pay for the other's aftermath (autovacuum of a freshly loaded
/// database, the checkpoint its WAL calls for).
async fn run_ours(admin_url: &str, source: &Path, out: &Path) -> anyhow::Result<ToolRun> {
    settle(admin_url).await?;
    let target = fresh_database(admin_url, "vibing2_bench_import_ours").await?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["import", &format!("sqlite:{}", source.display()), "--quiet", "--rejects"])
        .arg(out.join("rejects.jsonl"))
        .env("DATABASE_URL", &target)
        .env("RUST_LOG", "warn");
    let run = measure(OURS, command, &target).await?;
    drop_database(admin_url, &target).await?;
    Ok(run)
}

/// One timed pgloader run, as [`run_ours`].
async fn run_pgloader(admin_url: &str, source: &Path) -> anyhow::Result<ToolRun> {
    settle(admin_url).await?;
    let target = fresh_database(admin_url, "vibing2_bench_import_pgloader").await?;
    let mut command = Command::new("pgloader");
    command.arg(format!("sqlite://{}", source.canonicalize()?.display())).arg(target.replacen(
        "postgres://",
        "postgresql://",
        1,
    ));
    let run = measure(PGLOADER, command, &target).await?;
    drop_database(admin_url, &target).await?;
    Ok(run)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|path| path.is_file())
}

/// Drops and creates `name` on the server of `admin_url`; returns its URL.
async fn fresh_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(admin_url).await.context("connecting to DATABASE_URL")?;
    admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn drop_database(admin_url: &str, url: &str) -> anyhow::Result<()> {
    let name = url::Url::parse(url)?.path().trim_start_matches('/').to_owned();
    let mut admin = PgConnection::connect(admin_url).await?;
    admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    Ok(())
}

/// Waits, at most a minute, until no autovacuum worker runs, then checkpoints, so that a
/// run starts on a quiet server.
async fn settle(admin_url: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let busy: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
                .fetch_one(&mut admin)
                .await?;
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Err(error) = admin.execute("CHECKPOINT").await {
        tracing::warn!(%error, "no CHECKPOINT before the run (it needs a superuser or pg_checkpoint)");
    }
    Ok(())
}

/// Runs `command` to its end, sampling its peak RSS; then counts the rows it left in `target`.
async fn measure(tool: &str, mut command: Command, target: &str) -> anyhow::Result<ToolRun> {
    let started = Instant::now();
    let mut child =
        command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().with_context(|| format!("starting {tool}"))?;
    let pid = child.id();
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = super::measure::peak_rss_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        tracing::warn!(tool, %status, stderr = %errors.lines().rev().take(5).collect::<Vec<_>>().join(" | "), "the tool failed");
    }
    let rows = rows_in(target).await?;
    Ok(ToolRun {
        tool: tool.to_owned(),
        seconds,
        rows,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        peak_rss_mb: peak_kb as f64 / 1024.0,
        exit_ok: status.success(),
    })
}

/// Rows of every table in `public`, whatever the tool named them, a partitioned one counted
/// once (its partitions are not counted again); the import's own ledger, issue and migration
/// tables are not data, nor are the copies the schema derives from it (`UserFace`,
/// `UserProject`, kept by triggers).
async fn rows_in(target: &str) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect(target).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND c.relname NOT LIKE '\\_vibing2%' AND c.relname NOT IN ('MigrationIssue', 'JobRun', 'ViewRefresh', 'UserFace', 'UserProject')",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut rows = 0;
    for table in tables {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\"")))
            .fetch_one(&mut conn)
            .await?;
        rows += count;
    }
    Ok(rows)
}

/// Writes the clean Phase-1 source: valid rows only, every DATETIME as text.
fn generate(path: &Path, messages: usize, seed: u64) -> anyhow::Result<usize> {
    if messages == 0 {
        bail!("--messages must be at least 1");
    }
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let mut sqlite = rusqlite::Connection::open(path)?;
    sqlite.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    sqlite.execute_batch(include_str!("phase1_schema.sql"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date").and_hms_opt(0, 0, 0).expect("midnight");
    let time = |seconds: i64| (base + chrono::Duration::seconds(seconds)).format("%Y-%m-%d %H:%M:%S").to_string();
    let tx = sqlite.transaction()?;
    {
        let mut user = tx.prepare(
            r#"INSERT INTO "User" ("id", "name", "email", "password", "plan", "tokenBalance", "contextUsed", "createdAt", "updatedAt")
               VALUES (?1, ?2, ?3, ?4, 'FREE', 10000, 0, ?5, ?5)"#,
        )?;
        // One real bcrypt hash for all: hashing a thousand would time the generator, not the import.
        let hash = bcrypt::hash("bench-password", 4)?;
        for n in 0..USERS {
            user.execute(params![
                format!("u{n}"),
                format!("User {n}"),
                format!("user{n}@example.com"),
                hash,
                time(n as i64)
            ])?;
        }
        let mut project = tx.prepare(
            r#"INSERT INTO "Project" ("id", "name", "description", "projectType", "activeAgents", "visibility", "likes", "forks", "userId", "createdAt", "updatedAt")
               VALUES (?1, ?2, ?3, 'website', '["frontend-developer","code-reviewer"]', ?4, ?5, 0, ?6, ?7, ?7)"#,
        )?;
        for n in 0..PROJECTS {
            let visibility = if n % 3 == 0 { "PUBLIC" } else { "PRIVATE" };
            let description = sentence(&mut rng, 8);
            project.execute(params![
                format!("p{n}"),
                format!("Project {n}"),
                description,
                visibility,
                rng.gen_range(0..50),
                format!("u{}", n % USERS),
                time(100_000 + n as i64)
            ])?;
        }
        let mut file = tx.prepare(
            r#"INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "createdAt", "updatedAt")
               VALUES (?1, ?2, ?3, ?4, 'html', ?5, ?5)"#,
        )?;
        for n in 0..FILES {
            let content = format!("<html><body>{}</body></html>", sentence(&mut rng, 150));
            file.execute(params![
                format!("f{n}"),
                format!("p{}", n % PROJECTS),
                format!("page{}.html", n / PROJECTS),
                content,
                time(200_000 + n as i64)
            ])?;
        }
        let mut message = tx.prepare(
            r#"INSERT INTO "Message" ("id", "role", "content", "projectId", "createdAt") VALUES (?1, ?2, ?3, ?4, ?5)"#,
        )?;
        for n in 0..messages {
            let role = if n % 2 == 0 { "user" } else { "assistant" };
            let words = rng.gen_range(10..80);
            let content = sentence(&mut rng, words);
            message.execute(params![
                format!("m{n}"),
                role,
                content,
                format!("p{}", n % PROJECTS),
                time(300_000 + n as i64)
            ])?;
        }
        let mut usage = tx.prepare(
            r#"INSERT INTO "TokenUsage" ("id", "tokensUsed", "contextUsed", "savedTokens", "userId", "endpoint", "timestamp")
               VALUES (?1, ?2, 0.5, 0, ?3, '/api/agents/chat', ?4)"#,
        )?;
        for n in 0..USAGE {
            usage.execute(params![
                format!("t{n}"),
                rng.gen_range(10..5000),
                format!("u{}", n % USERS),
                time(400_000 + n as i64)
            ])?;
        }
    }
    tx.commit()?;
    Ok(USERS + PROJECTS + FILES + messages + USAGE)
}

/// `words` words of a chat-like sentence.
fn sentence(rng: &mut ChaCha8Rng, words: usize) -> String {
    const WORDS: &[&str] =
        &["build", "a", "landing", "page", "with", "dark", "mode", "and", "a", "pricing", "table", "please"];
    (0..words).map(|_| WORDS[rng.gen_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
}
