//! Backups with `pg_dump` and restores with `pg_restore`, both verified by row counts.
//!
//! A backup is `pg_dump --format=custom` of the whole database, taken in a snapshot this
//! module exports, so the exact `count(*)` of every table in the `public` schema, written
//! beside the dump as `FILE.counts.json`, describes the very rows the dump holds. It is
//! written as `FILE.partial` and renamed only once `pg_restore --list` has read it back. A
//! restore compares the restored tables with that file; any difference is an error.
//!
//! The tools must have the server's major version: Debian's `/usr/lib/postgresql/<major>/bin`
//! for the server's major is searched first, then PATH, unless one directory is given. The password
//! reaches them through `PGPASSWORD`, never on a command line or in a message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use tokio::process::Command;

use super::{migrate, quote_identifier};
use crate::config::redact_url;

/// The variable (and flag) naming the directory of `pg_dump` and `pg_restore`.
pub const BIN_DIR_VARIABLE: &str = "VIBING2_PG_BIN_DIR";
const COUNTS_SUFFIX: &str = ".counts.json";
const PARTIAL_SUFFIX: &str = ".partial";

/// Where the tools come from, and the connection the steps use.
pub struct Target {
    /// The database URL; its password is passed to the tools through the environment.
    pub url: SecretString,
    /// Options for this module's own connection (no statement or idle timeouts: a dump of a
    /// large database holds its snapshot's transaction open for minutes).
    pub connect: PgConnectOptions,
    /// A directory holding `pg_dump` and `pg_restore`, instead of the search.
    pub bin_dir: Option<PathBuf>,
}

/// What `FILE.counts.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    pub database: String,
    /// The newest migration applied when the backup was taken (none: not a database of ours yet).
    pub schema_version: Option<i64>,
    pub taken_at: String,
    pub server_version: String,
    pub pg_dump_version: String,
    /// Exact `count(*)` of each table in the `public` schema.
    pub tables: BTreeMap<String, i64>,
}

impl Counts {
    pub fn rows(&self) -> i64 {
        self.tables.values().sum()
    }
}

/// A verified backup.
#[derive(Debug)]
pub struct Backup {
    pub file: PathBuf,
    pub counts_file: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
    pub counts: Counts,
}

/// A verified restore.
#[derive(Debug)]
pub struct Restored {
    pub counts: Counts,
    pub replaced: bool,
    pub elapsed: Duration,
}

/// The counts file that belongs to a backup file.
pub fn counts_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(COUNTS_SUFFIX);
    PathBuf::from(name)
}

/// Opens this module's connection to the target.
pub async fn connect(target: &Target) -> anyhow::Result<PgConnection> {
    target
        .connect
        .clone()
        .options([("statement_timeout", "0"), ("idle_in_transaction_session_timeout", "0")])
        .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(1))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", redact_url(target.url.expose_secret())))
}

/// Tables: ordinary and partitioned ones.
const TABLES: &[&str] = &["r", "p"];
/// Every relation that makes a restore target non-empty: tables, views, materialized views
/// and foreign tables.
const RELATIONS: &[&str] = &["r", "p", "v", "m", "f"];

/// The relations of the `public` schema of these kinds (`pg_class.relkind`) that are ours,
/// not an extension's (pg_stat_statements may live there), by name.
async fn public_relations(conn: &mut PgConnection, kinds: &[&str]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"SELECT c.relname::text FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind::text = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
           ORDER BY 1"#,
    )
    .bind(kinds)
    .fetch_all(conn)
    .await
}

/// Whether any table that holds users' data has a row: what makes a backup worth taking.
pub async fn holds_data(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let present = public_relations(conn, TABLES).await?;
    for table in migrate::platform_tables().into_iter().filter(|table| present.iter().any(|name| name == table)) {
        let query = format!("SELECT EXISTS (SELECT 1 FROM {})", quote_identifier(table));
        if sqlx::query_scalar::<_, bool>(&query).fetch_one(&mut *conn).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The exact row count of every table in the `public` schema.
pub async fn row_counts(conn: &mut PgConnection) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    for table in public_relations(conn, TABLES).await? {
        let query = format!("SELECT count(*) FROM {}", quote_identifier(&table));
        let rows: i64 = sqlx::query_scalar(&query).fetch_one(&mut *conn).await?;
        counts.insert(table, rows);
    }
    Ok(counts)
}

/// The server's version, as `(major, "15.20")`.
async fn server_version(conn: &mut PgConnection) -> anyhow::Result<(u32, String)> {
    let number: String = sqlx::query_scalar("SHOW server_version_num").fetch_one(&mut *conn).await?;
    let number: u32 = number.trim().parse().context("reading server_version_num")?;
    // From version 10 on the major is the number divided by 10,000 (150020 is 15.20).
    let major = number / 10_000;
    Ok((major, format!("{major}.{}", number % 10_000)))
}

/// The directories searched for `program`, in order: the given one alone, else the server's
/// own version under `/usr/lib/postgresql`, then PATH (the embedded cluster's search).
fn candidates(bin_dir: Option<&Path>, server_major: u32) -> Vec<PathBuf> {
    if let Some(dir) = bin_dir {
        return vec![dir.to_owned()];
    }
    let mut dirs = vec![PathBuf::from(format!("/usr/lib/postgresql/{server_major}/bin"))];
    dirs.extend(super::embedded::search_path());
    dirs
}

/// A tool checked to be the server's major version: its path and version string.
struct Tool {
    path: PathBuf,
    version: String,
}

async fn find_tool(program: &str, bin_dir: Option<&Path>, server: &(u32, String)) -> anyhow::Result<Tool> {
    let dirs = candidates(bin_dir, server.0);
    let Some(path) = dirs.iter().map(|dir| dir.join(program)).find(|path| path.is_file()) else {
        bail!(
            "no {program} found in {}: install the PostgreSQL {} client tools (Debian: apt-get install \
             postgresql-client-{}) or set {BIN_DIR_VARIABLE}",
            dirs.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(", "),
            server.0,
            server.0
        );
    };
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("cannot run {}", path.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_tool_version(&text)
        .with_context(|| format!("{} --version printed no PostgreSQL version: {:?}", path.display(), text.trim()))?;
    let major = version.split('.').next().and_then(|major| major.parse::<u32>().ok());
    if major != Some(server.0) {
        bail!(
            "{} is version {version}, but the server is PostgreSQL {}: use the tools of major version {} \
             (set {BIN_DIR_VARIABLE} to their directory, e.g. /usr/lib/postgresql/{}/bin)",
            path.display(),
            server.1,
            server.0,
            server.0
        );
    }
    Ok(Tool { path, version })
}

/// `pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` → `15.20`.
fn parse_tool_version(text: &str) -> Option<String> {
    let rest = text.split("(PostgreSQL)").nth(1)?;
    let version = rest.split_whitespace().next()?;
    version.chars().next()?.is_ascii_digit().then(|| version.to_owned())
}

/// A tool's command; with `url`, connected to it by `--dbname` with the password taken out
/// of the URL and put in `PGPASSWORD`, so it shows neither in `ps` nor in a message.
fn tool_command(tool: &Tool, url: Option<&SecretString>) -> anyhow::Result<Command> {
    let mut command = Command::new(&tool.path);
    command.kill_on_drop(true).env_remove("PGPASSWORD");
    if let Some(url) = url {
        let mut parsed = url::Url::parse(url.expose_secret()).context("DATABASE_URL is not a valid URL")?;
        if let Some(password) = password_of(&parsed) {
            command.env("PGPASSWORD", password);
        }
        let _ = parsed.set_password(None);
        command.arg("--dbname").arg(parsed.as_str());
    }
    Ok(command)
}

/// A URL's password as libpq wants it: `%XX` escapes decoded (a `+` stays a `+`).
fn password_of(url: &url::Url) -> Option<String> {
    url.password().map(|password| percent_decode_str(password).decode_utf8_lossy().into_owned())
}

async fn run_tool(what: &str, mut command: Command) -> anyhow::Result<String> {
    let output = command.output().await.with_context(|| format!("cannot run {what}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() {
        bail!("{what} failed ({}): {stderr}", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn timestamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// `<database>_<UTC time>_v<schema version>.dump`, with anything but letters, digits, `-`
/// and `_` in the database name replaced.
fn backup_name(database: &str, taken_at: &str, version: Option<i64>) -> String {
    let database: String =
        database.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{database}_{taken_at}_v{:04}.dump", version.unwrap_or(0))
}

/// Dumps the target into `dir` and verifies the file; `step` is told each step as it starts.
/// On any failure nothing is left in `dir` but what was there.
pub async fn take(target: &Target, dir: &Path, step: &mut dyn FnMut(&str)) -> anyhow::Result<Backup> {
    let started = Instant::now();
    let mut conn = connect(target).await?;
    let server = server_version(&mut conn).await?;
    let pg_dump = find_tool("pg_dump", target.bin_dir.as_deref(), &server).await?;
    let pg_restore = find_tool("pg_restore", target.bin_dir.as_deref(), &server).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the backup directory {}", dir.display()))?;

    let database: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&mut conn).await?;
    let schema_version = migrate::current_version(&mut conn).await?;
    let taken_at = timestamp();
    let file = dir.join(backup_name(&database, &taken_at, schema_version));
    let partial = PathBuf::from(format!("{}{PARTIAL_SUFFIX}", file.display()));
    anyhow::ensure!(!file.exists(), "{} exists already", file.display());

    // The counts and the dump read one snapshot, exported by this transaction and held until
    // pg_dump is done.
    let mut tx = conn.begin().await?;
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut *tx).await?;
    step(&format!("counting the rows of {database}'s tables"));
    let tables = row_counts(&mut tx).await?;
    step(&format!("dumping {database} with pg_dump {} to {}", pg_dump.version, file.display()));
    let mut dump = tool_command(&pg_dump, Some(&target.url))?;
    dump.arg("--format=custom").arg(format!("--snapshot={snapshot}")).arg("--file").arg(&partial);
    let dumped = run_tool("pg_dump", dump).await;
    // pg_dump holds the snapshot itself once it has started: an error ending ours changes
    // nothing about the file.
    let _ = tx.rollback().await;
    let verified = match dumped {
        Ok(_) => {
            step("verifying the dump with pg_restore --list");
            let mut list = tool_command(&pg_restore, None)?;
            list.arg("--list").arg(&partial);
            run_tool("pg_restore --list", list).await.map(|_| ())
        }
        Err(error) => Err(error),
    };
    if let Err(error) = verified {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }

    let counts = Counts {
        database,
        schema_version,
        taken_at,
        server_version: server.1,
        pg_dump_version: pg_dump.version,
        tables,
    };
    let counts_file = counts_path(&file);
    let written = std::fs::write(&counts_file, serde_json::to_vec_pretty(&counts)?)
        .and_then(|()| std::fs::rename(&partial, &file))
        .with_context(|| format!("cannot write {}", counts_file.display()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_file(&counts_file);
        return Err(error);
    }
    let bytes = std::fs::metadata(&file)?.len();
    Ok(Backup { file, counts_file, bytes, elapsed: started.elapsed(), counts })
}

/// Restores `file` into the target and checks every table's row count against the counts
/// file. A target with any table or view in `public` is refused unless `replace`, which
/// drops and recreates the `public` schema first.
pub async fn restore(
    target: &Target,
    file: &Path,
    replace: bool,
    step: &mut dyn FnMut(&str),
) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let counts_file = counts_path(file);
    anyhow::ensure!(file.is_file(), "no backup file {}", file.display());
    let counts: Counts = serde_json::from_slice(
        &std::fs::read(&counts_file)
            .with_context(|| format!("cannot read the counts file {} beside the backup", counts_file.display()))?,
    )
    .with_context(|| format!("{} is not a counts file", counts_file.display()))?;
    let mut conn = connect(target).await?;
    let server = server_version(&mut conn).await?;
    let pg_restore = find_tool("pg_restore", target.bin_dir.as_deref(), &server).await?;

    let present = public_relations(&mut conn, RELATIONS).await?;
    if !present.is_empty() && !replace {
        bail!(
            "the target database is not empty ({} tables or views in its public schema, e.g. {}): restore into an \
             empty database, or pass --replace to drop its public schema first",
            present.len(),
            present.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    step(&format!("checking {} with pg_restore --list", file.display()));
    let mut list = tool_command(&pg_restore, None)?;
    list.arg("--list").arg(file);
    run_tool("pg_restore --list", list).await?;
    if replace {
        step("dropping and recreating the public schema (--replace)");
        conn.execute(sqlx::raw_sql(
            "BEGIN; DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; \
             GRANT USAGE ON SCHEMA public TO PUBLIC; COMMIT;",
        ))
        .await
        .context("cannot drop and recreate the public schema")?;
    }
    step(&format!("restoring with pg_restore {} in one transaction", pg_restore.version));
    let mut run = tool_command(&pg_restore, Some(&target.url))?;
    run.args(["--single-transaction", "--exit-on-error", "--no-owner"]);
    run.arg(file);
    run_tool("pg_restore", run).await?;

    step("counting the restored rows");
    let restored = row_counts(&mut conn).await?;
    let mismatches = compare_counts(&counts.tables, &restored);
    anyhow::ensure!(
        mismatches.is_empty(),
        "the restored row counts differ from the backup's: {}",
        mismatches.join("; ")
    );
    Ok(Restored { counts, replaced: replace, elapsed: started.elapsed() })
}

/// The tables whose counts differ, or that only one side has.
fn compare_counts(expected: &BTreeMap<String, i64>, found: &BTreeMap<String, i64>) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (table, rows) in expected {
        match found.get(table) {
            Some(found) if found == rows => {}
            Some(found) => mismatches.push(format!("{table}: {found} rows, the backup has {rows}")),
            None => mismatches.push(format!("{table}: missing (the backup has {rows} rows)")),
        }
    }
    for (table, rows) in found.iter().filter(|(table, _)| !expected.contains_key(*table)) {
        mismatches.push(format!("{table}: {rows} rows, not in the backup"));
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_versions_are_read_from_debian_and_plain_builds() {
        assert_eq!(parse_tool_version("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n").unwrap(), "15.20");
        assert_eq!(parse_tool_version("pg_restore (PostgreSQL) 14.0\n").unwrap(), "14.0");
        assert!(parse_tool_version("bash: pg_dump: not found").is_none());
    }

    #[test]
    fn backup_names_carry_database_time_and_version() {
        assert_eq!(backup_name("vibing2", "20261207T215000.123Z", Some(11)), "vibing2_20261207T215000.123Z_v0011.dump");
        assert_eq!(backup_name("a/b c", "T", None), "a_b_c_T_v0000.dump");
    }

    #[test]
    fn passwords_are_percent_decoded() {
        let password = |url: &str| password_of(&url::Url::parse(url).unwrap());
        assert_eq!(password("postgres://u:p%40ss%2Fw+rd@host/db").as_deref(), Some("p@ss/w+rd"));
        assert_eq!(password("postgres://u:100%@host/db").as_deref(), Some("100%"));
    }

    #[test]
    fn counts_that_differ_are_named() {
        let expected = BTreeMap::from([("User".to_owned(), 3), ("Project".to_owned(), 2)]);
        let found = BTreeMap::from([("User".to_owned(), 3), ("Extra".to_owned(), 1)]);
        let mismatches = compare_counts(&expected, &found);
        assert_eq!(mismatches.len(), 2, "{mismatches:?}");
        assert!(compare_counts(&expected, &expected).is_empty());
    }
}
