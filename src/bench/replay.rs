//! A scenario's own SQL replayed by `pgbench -f`: the statements the service runs for one
//! uncached request, in its order, with the parameters it binds, so the scenario's cache-off
//! req/s can be read against the bare cost of its statements.
//!
//! The statements are the service's own text: the constants its `query_file!` calls and
//! assembled statements use (`queries/*.sql`, `db::assembled`), never a copy. The script
//! strips their comments (pgbench would count a `$n` in a comment as a parameter) and turns
//! `$n` into the variable `:sI_n`, given by `-D sI_n=value` (an empty text, which pgbench
//! cannot define, into the literal `''`). In `-M prepared` pgbench prepares
//! each statement once per connection and binds the variables as parameters, as sqlx does,
//! with two differences: each occurrence of a variable is a parameter of its own (`$1` used
//! twice is bound twice), and its type is the one PostgreSQL infers, where sqlx declares the
//! type of the value it binds.

use std::path::Path;
use std::process::Stdio;

use anyhow::{ensure, Context};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::db::{discovery, files, messages, projects, sessions, usage};
use crate::domain::discovery::Sort;
use crate::domain::time::end_of_time;
use crate::domain::{Direction, GroupBy};

/// One statement of a replay: the monitor's name of the call that runs it, its text with
/// `$1..$n`, and the text of the values the service binds to them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    pub name: &'static str,
    pub sql: String,
    pub params: Vec<String>,
}

impl Statement {
    fn new(name: &'static str, sql: impl Into<String>, params: &[&str]) -> Self {
        Statement { name, sql: sql.into(), params: params.iter().map(|&value| value.to_owned()).collect() }
    }

    /// `sessions::live`: the session behind a token's hash, found by the user the token carries.
    pub fn session(token_hash: &str, user: &str) -> Self {
        Statement::new("sessions.live", sessions::LIVE_SQL, &[token_hash, user])
    }

    /// `projects::facts`: the access facts of `project` for a signed-in `caller`.
    pub fn facts(project: &str, caller: &str) -> Self {
        Statement::new("projects.facts", projects::FACTS_SQL, &[project, caller])
    }

    /// `projects::get`.
    pub fn project(project: &str) -> Self {
        Statement::new("projects.get", projects::GET_SQL, &[project])
    }

    /// `files::list`: the first page of `limit` entries (`limit + 1` fetched, as a keyset does).
    pub fn first_files(project: &str, limit: i64) -> Self {
        Statement::new("files.list", files::LIST_SQL, &[project, "", &(limit + 1).to_string()])
    }

    /// `projects::list_for_member`: the first page of `limit`.
    pub fn member_projects(user: &str, limit: i64) -> Self {
        let end = end_of_time().format("%Y-%m-%d %H:%M:%S").to_string();
        Statement::new(
            "projects.list_for_member",
            projects::LIST_FOR_MEMBER_SQL,
            &[user, &end, "", &(limit + 1).to_string()],
        )
    }

    /// `projects::summaries`: the listed projects of a page, by their ids.
    pub fn summaries(ids: &[String]) -> Self {
        let array = format!("{{{}}}", ids.join(","));
        Statement::new("projects.summaries", projects::SUMMARIES_SQL, &[&array])
    }

    /// `messages::page`, older than `cursor` (the newest page when None), unfiltered.
    pub fn message_page(project: &str, cursor: Option<i64>, limit: i64) -> Self {
        let cursor = cursor.unwrap_or(i64::MAX).to_string();
        let sql = messages::page_sql(false, Direction::Older);
        Statement::new("messages.page", sql, &[project, &cursor, &(limit + 1).to_string()])
    }

    /// `discovery::discover`'s first page of `limit` by `sort`, with no type filter.
    pub fn discovery(sort: Sort, search: Option<&str>, limit: i64) -> Self {
        let sql = discovery::discovery_sql(sort, false, search.is_some(), false);
        let pattern = search.map(discovery::like_pattern).unwrap_or_default();
        // The filters it leaves out are bound as NULL and appear nowhere in its text.
        Statement::new("discovery.discover", sql, &[&(limit + 1).to_string(), &pattern, search.unwrap_or_default()])
    }

    /// `usage::summary` by day.
    pub fn usage_summary(user: &str, days: i32) -> Self {
        Statement::new("usage.summary", usage::summary_sql(GroupBy::Day), &[user, &days.to_string()])
    }
}

/// A pgbench script and the `-D` definitions of its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    pub definitions: Vec<(String, String)>,
}

/// The script of `statements`, one transaction of pgbench running them in order.
pub fn script(statements: &[Statement]) -> anyhow::Result<Script> {
    let mut text = String::new();
    let mut definitions = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let body = without_comments(&statement.sql);
        let mut used = Vec::new();
        let mut missing = None;
        let replaced = placeholders(&body, |n| match statement.params.get(n - 1) {
            None => {
                missing = Some(n);
                String::new()
            }
            // pgbench refuses an empty variable (`-D name=`): the empty text goes in as a literal.
            Some(value) if value.is_empty() => "''".to_owned(),
            Some(_) => {
                used.push(n);
                format!(":s{}_{n}", i + 1)
            }
        });
        if let Some(n) = missing {
            anyhow::bail!("{}: no value for ${n}", statement.name);
        }
        used.sort_unstable();
        used.dedup();
        for n in used {
            let value = &statement.params[n - 1];
            ensure!(!value.contains(['\n', '\r']), "{}: ${n} spans lines", statement.name);
            definitions.push((format!("s{}_{n}", i + 1), value.clone()));
        }
        ensure!(!replaced.contains(';'), "{}: a statement of its own must hold no semicolon", statement.name);
        text.push_str(replaced.trim());
        text.push_str(";\n");
    }
    Ok(Script { text, definitions })
}

/// `sql` without its `--` comments (none of the service's statements holds `--` in a string).
fn without_comments(sql: &str) -> String {
    sql.lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `sql` with each `$n` replaced by `replace(n)`.
fn placeholders(sql: &str, mut replace: impl FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let digits: String =
            std::iter::from_fn(|| chars.next_if(|(_, d)| d.is_ascii_digit()).map(|(_, d)| d)).collect();
        match digits.parse::<usize>() {
            Ok(n) if n > 0 => out.push_str(&replace(n)),
            _ => out.push_str(&sql[at..at + 1 + digits.len()]),
        }
    }
    out
}

/// What one replay measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayFigures {
    /// The command, the script and its definitions aside.
    pub command: String,
    pub statements: Vec<Statement>,
    pub script: String,
    /// The rows each statement returned when run once with its values written in as
    /// literals, before pgbench: a replay that finds nothing measures nothing.
    pub rows: Vec<u64>,
    pub tps: f64,
    /// pgbench's mean latency of a transaction.
    pub latency_ms: f64,
}

/// Runs `statements` with `pgbench -n -M prepared -f` against `database_url` (the service's
/// own database), `clients` clients for `seconds`.
pub async fn run(
    pgbench: &Path,
    database_url: &str,
    statements: Vec<Statement>,
    clients: usize,
    seconds: f64,
) -> anyhow::Result<ReplayFigures> {
    let script = script(&statements)?;
    let rows = rows_once(database_url, &statements).await?;
    let threads = clients.clamp(1, 2);
    let args = [
        "-n".to_owned(),
        "-M".to_owned(),
        "prepared".to_owned(),
        "-c".to_owned(),
        clients.to_string(),
        "-j".to_owned(),
        threads.to_string(),
        "-T".to_owned(),
        (seconds.ceil() as u64).max(1).to_string(),
    ];
    // The script goes in on standard input (`-f -`).
    let mut command = tokio::process::Command::new(pgbench);
    command.args(&args).args(["-f", "-"]);
    for (name, value) in &script.definitions {
        command.arg("-D").arg(format!("{name}={value}"));
    }
    command.arg(database_url).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().context("starting pgbench")?;
    let mut stdin = child.stdin.take().context("pgbench's standard input")?;
    stdin.write_all(script.text.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "pgbench -f failed on the replay of {:?}: {}{}",
        statements.iter().map(|s| s.name).collect::<Vec<_>>(),
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = figure(&stdout, "tps = ").context("pgbench printed no tps")?;
    let latency_ms = figure(&stdout, "latency average = ").context("pgbench printed no latency")?;
    Ok(ReplayFigures {
        command: format!("pgbench {} -f <script> -D <its parameters> <DATABASE_URL>", args.join(" ")),
        statements,
        script: script.text,
        rows,
        tps,
        latency_ms,
    })
}

/// The first column of the rows `statement` returns, as text, run once.
pub async fn first_column(database_url: &str, statement: &Statement) -> anyhow::Result<Vec<String>> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(database_url).await?;
    let rows = sqlx::raw_sql(&literal(statement))
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("running {} once", statement.name))?;
    rows.iter().map(|row| Ok(sqlx::Row::try_get::<String, _>(row, 0)?)).collect()
}

/// `statement` with its values written in as literals, for a run outside pgbench.
fn literal(statement: &Statement) -> String {
    placeholders(&without_comments(&statement.sql), |n| {
        statement.params.get(n - 1).map_or("NULL".to_owned(), |value| format!("'{}'", value.replace('\'', "''")))
    })
}

/// The rows each of `statements` returns, run once in order on one connection.
async fn rows_once(database_url: &str, statements: &[Statement]) -> anyhow::Result<Vec<u64>> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(database_url).await?;
    let mut rows = Vec::new();
    for statement in statements {
        let found = sqlx::raw_sql(&literal(statement))
            .fetch_all(&mut conn)
            .await
            .with_context(|| format!("running {} once", statement.name))?;
        rows.push(found.len() as u64);
    }
    Ok(rows)
}

/// The number after `prefix` on the line of pgbench's report that starts with it.
pub fn figure(report: &str, prefix: &str) -> Option<f64> {
    report
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.trim_start_matches(prefix).split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_variables_and_comments_go() {
        let statement = Statement::new(
            "x.y",
            "-- $1 the user\nSELECT $1::text, $10, $2, $3 -- $3\nFROM t",
            &["a", "b", "", "d", "e", "f", "g", "h", "i", "j"],
        );
        let script = script(&[statement]).unwrap();
        assert_eq!(script.text, "SELECT :s1_1::text, :s1_10, :s1_2, '' \nFROM t;\n");
        let names: Vec<&str> = script.definitions.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["s1_1", "s1_2", "s1_10"]);
        assert_eq!(script.definitions[2].1, "j");
    }

    #[test]
    fn a_parameter_without_a_value_is_refused() {
        assert!(script(&[Statement::new("x.y", "SELECT $2", &["a"])]).is_err());
    }
}
