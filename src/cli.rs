//! The command line: one binary, one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "vibing2", version, about = "The vibing2 data service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API. Without DATABASE_URL it starts the embedded PostgreSQL cluster.
    Serve,
    /// Bring the database to the current schema: a fresh one, or a Phase-2 (Prisma) one.
    Migrate(MigrateCommand),
    /// Dump DATABASE_URL's database with pg_dump (custom format) into a file, verified, with
    /// the row counts beside it.
    Backup(BackupCommand),
    /// Restore a backup file into DATABASE_URL's (empty) database and check its row counts.
    Restore(RestoreCommand),
    /// Refresh the materialized views once (project_stats, user_token_summary).
    RefreshViews,
    /// Copy a Phase-1 SQLite database into DATABASE_URL's (empty) database, verified; a rerun
    /// resumes an unfinished import.
    Import(ImportCommand),
    /// Seed two databases beside DATABASE_URL and measure the before/after table; or seed
    /// one database; or load a running service over HTTP.
    Bench(BenchCommand),
    /// Switch an index of the ledger off or on, for a gradual rollback without a deploy.
    #[command(subcommand)]
    Index(IndexCommand),
}

#[derive(Debug, Args)]
pub struct MigrateCommand {
    /// Rows per batch when a migration fills computed columns; each batch commits on its own
    /// [default: the migrator's, 10,000].
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub batch_rows: Option<i64>,
    /// Where the backup taken before migrating a database that holds data goes.
    #[arg(long, default_value = "backups")]
    pub backup_dir: PathBuf,
    /// Migrate without taking that backup.
    #[arg(long)]
    pub no_backup: bool,
    #[command(flatten)]
    pub tools: PgTools,
    /// List the applied and pending migrations and whether each can be reverted; change nothing.
    #[arg(long, conflicts_with_all = ["revert_to", "batch_rows"])]
    pub status: bool,
    /// Run the down steps of every applied migration newer than VERSION, newest first. Refused,
    /// before anything changes, when one of them is one-way or would lose data.
    #[arg(long, value_name = "VERSION", conflicts_with = "batch_rows", value_parser = clap::value_parser!(i64).range(0..))]
    pub revert_to: Option<i64>,
}

#[derive(Debug, Args)]
pub struct PgTools {
    /// The directory of pg_dump and pg_restore [default: /usr/lib/postgresql/<server's major>/bin,
    /// then PATH].
    #[arg(long, env = "VIBING2_PG_BIN_DIR")]
    pub pg_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupCommand {
    /// Where the backup file and its counts go.
    #[arg(long, default_value = "backups")]
    pub backup_dir: PathBuf,
    #[command(flatten)]
    pub tools: PgTools,
}

#[derive(Debug, Args)]
pub struct RestoreCommand {
    /// A file `vibing2 backup` wrote; its `FILE.counts.json` must be beside it.
    pub file: PathBuf,
    /// Restore into a database that has tables: its public schema is dropped first.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub tools: PgTools,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Drop an index of the ledger (DROP INDEX CONCURRENTLY); `migrate` leaves it dropped.
    Disable { name: String },
    /// Build a disabled index again from the ledger's definition (CREATE INDEX CONCURRENTLY).
    Enable { name: String },
    /// Every index of the ledger: present, disabled, missing or invalid.
    List,
}

#[derive(Debug, Args)]
pub struct ImportCommand {
    /// The Phase-1 database, as sqlite:PATH. It is opened read-only.
    pub source: String,
    /// Users whose e-mails differ only by case: stop before writing anything (fail), or keep
    /// the earliest-created and quarantine the others with everything they own.
    #[arg(long, value_enum, default_value_t = EmailConflictChoice::Fail)]
    pub on_email_conflict: EmailConflictChoice,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where the quarantined rows go, as JSON lines.
    #[arg(long, default_value = "import-rejects.jsonl")]
    pub rejects: PathBuf,
    /// Rows per batch; each batch commits on its own.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_rows: u32,
    /// A line per table instead of progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EmailConflictChoice {
    Fail,
    KeepFirst,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub part: Option<BenchPart>,
    #[command(flatten)]
    pub run: BenchRun,
}

#[derive(Debug, Args)]
pub struct BenchRun {
    /// Data scale: 1 is about 10k users, 100k projects, 2M messages, 2M usage rows.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Seed of the data generator; the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the report (report.md, report.json, chart.svg) is written.
    #[arg(long, default_value = "bench-report")]
    pub out: PathBuf,
    /// Keep the two benchmark databases afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Measured iterations per scenario and side.
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Unrecorded iterations first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Reads in the cache scenario (and as many in its warm-up pass).
    #[arg(long, default_value_t = 20_000)]
    pub cache_reads: usize,
    /// Concurrent clients in the pool scenario.
    #[arg(long, default_value_t = 16)]
    pub pool_clients: usize,
    /// Seconds per side in the pool scenario.
    #[arg(long, default_value_t = 6.0)]
    pub pool_seconds: f64,
}

#[derive(Debug, Subcommand)]
pub enum BenchPart {
    /// Fill DATABASE_URL's database with synthetic data (giving an empty one its schema first).
    Seed {
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = SeedFlavor::Current)]
        flavor: SeedFlavor,
        /// The day (UTC, YYYY-MM-DD) every generated time comes before, at midnight; by
        /// default 2026-01-01, so runs are byte-for-byte the same. Give today's date for data
        /// the wall clock's "last 30 days" reads (`bench http --data seeded`'s usage summary).
        #[arg(long)]
        anchor: Option<chrono::NaiveDate>,
    },
    /// Generate a clean Phase-1 SQLite database and time `vibing2 import` and pgloader on it,
    /// each into a fresh database beside DATABASE_URL.
    Import {
        /// Messages in the generated source (besides 1k users, 10k projects, 20k files and
        /// 100k usage rows).
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rounds of both tools, one after the other; the ratio is of the medians.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
        /// Where the source, report.md and report.json go.
        #[arg(long, default_value = "bench-import")]
        out: PathBuf,
    },
    /// Closed-loop HTTP load against a running service.
    Http {
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Whose data: `own` signs up users and makes their projects over HTTP; `seeded` uses
        /// what `vibing2 bench seed` wrote to DATABASE_URL (the server's database), setting a
        /// password of this run's on the users it signs in as.
        #[arg(long, value_enum, default_value_t = HttpData::Own)]
        data: HttpData,
        /// Signed-in users the connections share (default: one per connection, at most 32).
        #[arg(long)]
        users: Option<usize>,
        /// Projects each user makes (own data): its own, which its writes go to, and public
        /// ones, which every user's reads choose from by Zipf(1.1).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
        projects_per_user: u16,
        /// Seconds of load.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// The server's pid, to report its peak RSS.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds of each scenario alone after the mix (project list, one project, message
        /// page, discovery, search, usage summary, the mix), with the cache on and, given
        /// ADMIN_TOKEN, off; 0 runs none.
        #[arg(long, default_value_t = 0.0)]
        scenario_seconds: f64,
        /// Where to write report.md and report.json.
        #[arg(long, default_value = "bench-http")]
        out: PathBuf,
    },
}

/// Where `bench http` gets its users and projects.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HttpData {
    /// Signed up and made over HTTP by the command.
    Own,
    /// Seeded by `vibing2 bench seed` into the server's database.
    Seeded,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeedFlavor {
    /// The schema `vibing2 migrate` produces.
    Current,
    /// The Phase-2 (Prisma init_postgresql) schema.
    Phase2,
    /// The Phase-2 schema as the platform's own optimization left it: the report's optimized
    /// columns and indexes on top (what `migrate` adopts).
    Phase2Optimized,
}
