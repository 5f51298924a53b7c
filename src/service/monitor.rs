//! The query monitor: the views of `GET /api/monitor/queries`, the hardened explain, and the
//! task that keeps the slow-query history.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

use crate::config::MonitorSettings;
use crate::db::monitor::{self, StatementOrder};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::telemetry::{exposition, queries, routes};

/// The views of `GET /api/monitor/queries?type=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Slow,
    Usage,
    Unused,
    Duplicate,
    Invalid,
    Tables,
    Health,
    Stats,
    Advise,
}

impl View {
    pub const ALL: [(&'static str, View); 9] = [
        ("slow", View::Slow),
        ("usage", View::Usage),
        ("unused", View::Unused),
        ("duplicate", View::Duplicate),
        ("invalid", View::Invalid),
        ("tables", View::Tables),
        ("health", View::Health),
        ("stats", View::Stats),
        ("advise", View::Advise),
    ];

    /// The view a `type` names; 400 with the valid types otherwise.
    pub fn parse(name: Option<&str>) -> Result<View> {
        let found = name.and_then(|name| View::ALL.iter().find(|(known, _)| *known == name));
        found.map(|(_, view)| *view).ok_or_else(|| {
            let valid: Vec<&str> = View::ALL.iter().map(|(name, _)| *name).collect();
            Error::BadRequest(format!("type must be one of: {}", valid.join(", ")))
        })
    }
}

/// The knobs of the views, with the defaults the docs give.
#[derive(Debug, Clone, Copy)]
pub struct ViewOptions {
    /// Rows of each ranked list.
    pub limit: i64,
    /// `unused`: at most this many scans since the statistics were reset.
    pub max_scans: i64,
    /// `unused`: at least this large.
    pub min_bytes: i64,
    /// `tables`: a table with at least this many live rows whose scans are mostly sequential
    /// gets a missing-index hint.
    pub large_table_rows: i64,
    /// `health`: statements running at least this long are listed.
    pub long_running_ms: f64,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            limit: 20,
            max_scans: 50,
            min_bytes: 1024 * 1024,
            large_table_rows: 10_000,
            long_running_ms: 5000.0,
        }
    }
}

/// A missing-index hint: past this share of sequential scans, a large table is read whole too often.
const SEQ_SCAN_HINT_RATIO: f64 = 0.5;

pub async fn view(state: &AppState, view: View, options: ViewOptions) -> Result<Value> {
    let pool = &state.pool;
    let answer = match view {
        View::Slow => slow(state, options.limit).await?,
        View::Usage => json!({ "indexes": monitor::index_use(pool).await? }),
        View::Unused => {
            let unused = monitor::unused_indexes(pool, options.max_scans, options.min_bytes).await?;
            let indexes: Vec<Value> = unused
                .into_iter()
                .map(|index| {
                    let suggestion = format!("DROP INDEX CONCURRENTLY \"{}\";", index.index);
                    json!({ "index": index, "suggestion": suggestion })
                })
                .collect();
            json!({
                "statsReset": monitor::stats_reset(pool).await?,
                "maxScans": options.max_scans,
                "minBytes": options.min_bytes,
                "indexes": indexes,
            })
        }
        View::Duplicate => json!({ "indexes": monitor::duplicate_indexes(pool).await? }),
        View::Invalid => json!({ "indexes": monitor::invalid_indexes(pool).await? }),
        View::Tables => {
            let tables: Vec<Value> = monitor::tables(pool)
                .await?
                .into_iter()
                .map(|table| {
                    let hint = (table.live_rows >= options.large_table_rows
                        && table.seq_scan_ratio.is_some_and(|ratio| ratio > SEQ_SCAN_HINT_RATIO))
                    .then(|| {
                        format!(
                            "{} rows, {:.0}% of scans sequential: a query may be missing an index",
                            table.live_rows,
                            table.seq_scan_ratio.unwrap_or(0.0) * 100.0
                        )
                    });
                    json!({ "table": table, "missingIndexHint": hint })
                })
                .collect();
            json!({ "tables": tables })
        }
        View::Health => json!({
            "sequences": monitor::sequences(pool).await?,
            "wraparound": monitor::wraparound(pool).await?,
            "connections": monitor::connections(pool).await?,
            "longRunning": monitor::long_running(pool, options.long_running_ms).await?,
            "blocked": monitor::blocked(pool).await?,
        }),
        View::Advise => advise(state, options.limit).await?,
        View::Stats => json!({
            "queries": queries::registry().summaries(),
            "routes": routes::summaries(),
            "allRoutes": routes::overall(),
            "slow": queries::registry().slow_figures(),
            "recentSlowCalls": monitor::recent_slow_calls(pool, options.limit).await?,
        }),
    };
    Ok(answer)
}

/// The Prometheus exposition: what the recorder holds (requests and queries, recorded as
/// they happen) and the gauges read now: the pool, the cache per kind and tier, the jobs.
pub async fn metrics_text(state: &AppState) -> Result<String> {
    let handle = exposition::install().ok_or_else(|| anyhow::anyhow!("another metrics recorder is installed"))?;
    let pool = &state.pool;
    let idle = pool.num_idle() as f64;
    metrics::gauge!("vibing2_pool_connections", "state" => "open").set(f64::from(pool.size()));
    metrics::gauge!("vibing2_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("vibing2_pool_connections", "state" => "in_use").set(f64::from(pool.size()) - idle);
    metrics::gauge!("vibing2_pool_max_connections").set(f64::from(state.settings.database.connection_limit));
    for kind in state.cache.status().await.kinds {
        let tiers = [("local", kind.local_hits, kind.local_misses), ("shared", kind.shared_hits, kind.shared_misses)];
        for (tier, hits, misses) in tiers {
            metrics::counter!("vibing2_cache_hits_total", "kind" => kind.kind, "tier" => tier).absolute(hits);
            metrics::counter!("vibing2_cache_misses_total", "kind" => kind.kind, "tier" => tier).absolute(misses);
        }
        metrics::counter!("vibing2_cache_shared_errors_total", "kind" => kind.kind).absolute(kind.shared_errors);
        metrics::counter!("vibing2_cache_loads_total", "kind" => kind.kind).absolute(kind.loads);
    }
    let now = crate::domain::UtcTime::now();
    for job in crate::db::maintenance::job_runs(pool).await? {
        let age = (now.0 - job.last_started_at.0).num_milliseconds() as f64 / 1000.0;
        let succeeded = if job.outcome == "ok" { 1.0 } else { 0.0 };
        metrics::gauge!("vibing2_job_last_run_age_seconds", "job" => job.job.clone()).set(age);
        metrics::gauge!("vibing2_job_last_run_duration_seconds", "job" => job.job.clone())
            .set(job.duration_ms / 1000.0);
        metrics::gauge!("vibing2_job_last_run_succeeded", "job" => job.job).set(succeeded);
    }
    Ok(handle.render())
}

/// `pg_stat_statements` by total and by mean time, beside this process's own figures; when
/// the extension cannot be read, why, and the process's figures alone.
async fn slow(state: &AppState, limit: i64) -> Result<Value> {
    let in_process = json!({
        "queries": queries::registry().summaries(),
        "slow": queries::registry().slow_figures(),
    });
    let by_total = monitor::top_statements(&state.pool, StatementOrder::TotalTime, limit, false).await;
    let by_mean = monitor::top_statements(&state.pool, StatementOrder::MeanTime, limit, false).await;
    let statements = match (by_total, by_mean) {
        (Ok(by_total), Ok(by_mean)) => json!({ "available": true, "byTotalTime": by_total, "byMeanTime": by_mean }),
        (Err(error), _) | (_, Err(error)) => match statements_unavailable(&error) {
            Some(reason) => json!({ "available": false, "reason": reason }),
            None => return Err(error.into()),
        },
    };
    Ok(json!({ "pgStatStatements": statements, "inProcess": in_process }))
}

/// The index advisor suggests an index only when the planner's cost of a statement falls by
/// at least this factor with it.
pub const ADVISE_MIN_FACTOR: f64 = 2.0;

/// One suggested index, proven on a hypothetical index.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub statement: String,
    pub calls: i64,
    pub mean_ms: f64,
    pub table: String,
    pub columns: Vec<String>,
    /// To run by hand: nothing is ever created by the advisor.
    pub create: String,
    pub cost_before: f64,
    pub cost_after: f64,
    pub factor: f64,
}

/// The index advisor: for the slowest statements (by mean time), candidate indexes on the
/// columns their sequential scans filter on, each tried as a hypothetical index (hypopg)
/// against the statement's generic plan. The best candidate that cuts the cost by
/// [`ADVISE_MIN_FACTOR`] is suggested. Nothing is created: the hypothetical indexes live in
/// one session's memory and are reset before it goes back to the pool.
async fn advise(state: &AppState, limit: i64) -> Result<Value> {
    // Only this role's statements: planning folds immutable function calls, so another
    // role's text must never be planned with this role's rights.
    let statements = match monitor::top_statements(&state.pool, StatementOrder::MeanTime, limit, true).await {
        Ok(statements) => statements,
        Err(error) => match statements_unavailable(&error) {
            Some(reason) => return Ok(json!({ "available": false, "reason": reason })),
            None => return Err(error.into()),
        },
    };
    // Out of the pool, and closed at the end (or when the request is dropped): the session's
    // setting, prepared statement and hypothetical indexes end with it.
    let mut conn = state.pool.acquire().await?.detach();
    let advice = advise_on(&mut conn, &statements).await;
    let _ = sqlx::Connection::close(conn).await;
    advice
}

async fn advise_on(conn: &mut sqlx::PgConnection, statements: &[monitor::StatementRow]) -> Result<Value> {
    if let Err(error) = monitor::reset_hypothetical_indexes(conn).await {
        if error.as_database_error().and_then(|db| db.code()).as_deref() == Some("42883") {
            let reason = "hypopg is not installed in this database: CREATE EXTENSION hypopg";
            return Ok(json!({ "available": false, "reason": reason }));
        }
        return Err(error.into());
    }
    let mut suggestions = Vec::new();
    let mut examined = 0;
    for statement in statements.iter().filter(|statement| is_select(&statement.query)) {
        let Ok(plan) = monitor::generic_plan(conn, &statement.query).await else { continue };
        examined += 1;
        let before = total_cost(&plan);
        let mut best: Option<Suggestion> = None;
        for (table, filter) in filtered_scans(&plan) {
            let known = monitor::column_names(&mut *conn, &table).await?;
            let table_name = quote_identifier(&table);
            for columns in candidates(&filter, &known) {
                let quoted: Vec<String> = columns.iter().map(|column| quote_identifier(column)).collect();
                let definition = format!("CREATE INDEX ON \"public\".{table_name} ({})", quoted.join(", "));
                // A column no B-tree can index (json, say) is no candidate.
                if monitor::create_hypothetical_index(conn, &definition).await.is_err() {
                    continue;
                }
                let after = monitor::generic_plan(conn, &statement.query).await.map(|plan| total_cost(&plan));
                monitor::reset_hypothetical_indexes(conn).await?;
                let Ok(after) = after else { continue };
                let factor = if after > 0.0 { before / after } else { f64::INFINITY };
                if factor >= ADVISE_MIN_FACTOR && !best.as_ref().is_some_and(|best| best.cost_after <= after) {
                    best = Some(Suggestion {
                        statement: statement.query.clone(),
                        calls: statement.calls,
                        mean_ms: statement.mean_ms,
                        table: table.clone(),
                        create: definition.replacen("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1),
                        columns,
                        cost_before: before,
                        cost_after: after,
                        factor,
                    });
                }
            }
        }
        suggestions.extend(best);
    }
    Ok(json!({
        "available": true,
        "minFactor": ADVISE_MIN_FACTOR,
        "statementsExamined": examined,
        "suggestions": suggestions,
    }))
}

/// An SQL identifier, quoted.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a statement is one SELECT (or WITH … SELECT), placeholders allowed.
fn is_select(statement: &str) -> bool {
    let Ok(tokens) = scan(statement) else { return false };
    let first = tokens.iter().find_map(|token| match token {
        Token::Word(word) => Some(word.to_ascii_lowercase()),
        Token::Comment(_) | Token::Space(_) => None,
        _ => Some(String::new()),
    });
    let single = !tokens.iter().any(|token| matches!(token, Token::Semicolon));
    single && matches!(first.as_deref(), Some("select" | "with"))
}

fn total_cost(plan: &Value) -> f64 {
    plan.get(0)
        .and_then(|top| top.get("Plan"))
        .and_then(|root| root.get("Total Cost"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// Every sequential scan with a filter: (table, filter text).
fn filtered_scans(plan: &Value) -> Vec<(String, String)> {
    fn walk(node: &Value, found: &mut Vec<(String, String)>) {
        let text = |key: &str| node.get(key).and_then(Value::as_str).map(str::to_owned);
        if text("Node Type").as_deref() == Some("Seq Scan") {
            if let (Some(table), Some(filter)) = (text("Relation Name"), text("Filter")) {
                found.push((table, filter));
            }
        }
        for child in node.get("Plans").and_then(Value::as_array).into_iter().flatten() {
            walk(child, found);
        }
    }
    let mut found = Vec::new();
    if let Some(root) = plan.get(0).and_then(|top| top.get("Plan")) {
        walk(root, &mut found);
    }
    found
}

/// The candidate indexes for a filter: each column of the table it names, alone, and all of
/// them together in the order they appear.
fn candidates(filter: &str, columns: &[String]) -> Vec<Vec<String>> {
    let mut named: Vec<String> = Vec::new();
    for token in scan(filter).unwrap_or_default() {
        let name = match token {
            Token::Word(word) => word.to_owned(),
            Token::Quoted(quoted) if quoted.starts_with('"') => quoted.trim_matches('"').replace("\"\"", "\""),
            _ => continue,
        };
        if columns.contains(&name) && !named.contains(&name) {
            named.push(name);
        }
    }
    let mut candidates: Vec<Vec<String>> = named.iter().map(|column| vec![column.clone()]).collect();
    if named.len() > 1 {
        candidates.push(named);
    }
    candidates
}

/// Why `pg_stat_statements` cannot be read, when that is what the error says.
fn statements_unavailable(error: &sqlx::Error) -> Option<&'static str> {
    let code = error.as_database_error()?.code()?;
    match code.as_ref() {
        "42P01" => Some("pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements"),
        "55000" => Some("pg_stat_statements is installed but not loaded: add it to shared_preload_libraries"),
        _ => None,
    }
}

/// What an explained plan shows at a glance.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub nodes: usize,
    pub indexes_used: Vec<String>,
    /// The relations read by sequential scans.
    pub sequential_scans: Vec<String>,
    /// Per node, where the plan was analyzed: its type, the rows estimated and those seen.
    pub row_estimates: Vec<RowEstimate>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RowEstimate {
    pub node: String,
    pub estimated: f64,
    /// Rows per loop times loops.
    pub actual: f64,
}

/// Explains one read-only statement (see [`check_statement`]) with its parameters inlined.
pub async fn explain(state: &AppState, statement: &str, params: &[Value], analyze: bool) -> Result<Value> {
    let statement = check_statement(statement, params)?;
    let timeout_ms = state.settings.monitor.explain_timeout_ms;
    let plan = monitor::explain(&state.pool, &statement, analyze, timeout_ms).await.map_err(|error| {
        match error.as_database_error() {
            // The statement's own failure: it writes (25006), does not parse, names nothing
            // that exists, or ran past the explain timeout.
            Some(db) => Error::Unprocessable(format!("the statement was refused: {}", db.message())),
            None => Error::from(error),
        }
    })?;
    let summary = summarize(&plan);
    Ok(json!({ "plan": plan, "summary": summary, "analyzed": analyze }))
}

/// Accepts exactly one `SELECT` or `WITH … SELECT`, and inlines `$1`, `$2`… as literals.
/// Only the first rule is this check's to keep: the read-only transaction refuses writes
/// whatever the text, and PostgreSQL refuses a second command in one prepared statement.
pub fn check_statement(statement: &str, params: &[Value]) -> Result<String> {
    let refuse = |why: &str| Err(Error::Unprocessable(why.to_owned()));
    let tokens = scan(statement).map_err(|why| Error::Unprocessable(why.to_owned()))?;
    let mut code = tokens.iter().filter(|token| !matches!(token, Token::Comment(_) | Token::Space(_)));
    let first = code.clone().find_map(|token| match token {
        Token::Word(word) => Some(word.to_ascii_lowercase()),
        _ => None,
    });
    if !matches!(first.as_deref(), Some("select" | "with")) {
        return refuse("only a SELECT or a WITH … SELECT can be explained");
    }
    // One statement: nothing but comments and space after a semicolon.
    if let Some(at) = tokens.iter().position(|token| matches!(token, Token::Semicolon)) {
        if tokens[at + 1..].iter().any(|token| !matches!(token, Token::Comment(_) | Token::Space(_) | Token::Semicolon))
        {
            return refuse("exactly one statement can be explained");
        }
    }
    if code.any(|token| matches!(token, Token::Word(word) if word.eq_ignore_ascii_case("into"))) {
        return refuse("SELECT … INTO creates a table: it cannot be explained here");
    }
    let mut inlined = String::with_capacity(statement.len());
    for token in &tokens {
        match token {
            Token::Semicolon => {}
            Token::Parameter(number) => {
                let value = number.checked_sub(1).and_then(|index| params.get(index));
                let Some(value) = value else {
                    return refuse(&format!("${number} has no value in params"));
                };
                inlined.push_str(&literal(value)?);
            }
            other => inlined.push_str(other.text()),
        }
    }
    Ok(inlined)
}

/// A JSON value as an SQL literal. Strings are quoted untyped, so the planner infers their
/// type from where they stand, as it would for a parameter.
fn literal(value: &Value) -> Result<String> {
    Ok(match value {
        Value::Null => "NULL".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        // In parentheses: `1-$1` with -5 must not become the comment `1--5`.
        Value::Number(number) => format!("({number})"),
        // standard_conforming_strings is on (the default since 9.1): only quotes need doubling.
        Value::String(text) if text.contains('\0') => {
            return Err(Error::Unprocessable("a parameter holds a NUL character".into()));
        }
        Value::String(text) => format!("'{}'", text.replace('\'', "''")),
        Value::Array(_) | Value::Object(_) => {
            format!("'{}'", value.to_string().replace('\'', "''"))
        }
    })
}

/// A piece of SQL text, as far as this check needs to tell them apart.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Word(&'a str),
    /// A quoted string, quoted identifier or dollar-quoted string, whole.
    Quoted(&'a str),
    Comment(&'a str),
    Space(&'a str),
    Parameter(usize),
    Semicolon,
    Other(&'a str),
}

impl<'a> Token<'a> {
    fn text(&self) -> &'a str {
        match self {
            Token::Word(text)
            | Token::Quoted(text)
            | Token::Comment(text)
            | Token::Space(text)
            | Token::Other(text) => text,
            Token::Parameter(_) | Token::Semicolon => "",
        }
    }
}

/// Splits SQL into tokens, keeping quoted text and comments whole so that a `;` or `$1`
/// inside them is not mistaken for one outside.
fn scan(sql: &str) -> std::result::Result<Vec<Token<'_>>, &'static str> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let token = match byte {
            b'\'' | b'"' => {
                at += 1;
                loop {
                    match bytes.get(at) {
                        None => return Err("an unterminated quote"),
                        Some(&b) if b == byte && bytes.get(at + 1) == Some(&byte) => at += 2,
                        Some(&b) if b == byte => break,
                        Some(_) => at += 1,
                    }
                }
                at += 1;
                Token::Quoted(&sql[start..at])
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                at = sql[at..].find('\n').map_or(bytes.len(), |end| at + end);
                Token::Comment(&sql[start..at])
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                // PostgreSQL's block comments nest.
                let mut depth = 0;
                loop {
                    match (bytes.get(at), bytes.get(at + 1)) {
                        (None, _) => return Err("an unterminated comment"),
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            at += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            at += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => at += 1,
                    }
                }
                Token::Comment(&sql[start..at])
            }
            b'$' if bytes.get(at + 1).is_some_and(u8::is_ascii_digit) => {
                at += 1;
                while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                    at += 1;
                }
                Token::Parameter(sql[start + 1..at].parse().map_err(|_| "a parameter number too large")?)
            }
            b'$' => {
                // A dollar quote: $tag$ … $tag$, the tag possibly empty.
                let tag_end = sql[at + 1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|end| at + 1 + end)
                    .filter(|&end| bytes.get(end) == Some(&b'$'));
                match tag_end {
                    Some(end) => {
                        let tag = &sql[start..=end];
                        let close = sql[end + 1..].find(tag).ok_or("an unterminated dollar quote")?;
                        at = end + 1 + close + tag.len();
                        Token::Quoted(&sql[start..at])
                    }
                    None => {
                        at += 1;
                        Token::Other(&sql[start..at])
                    }
                }
            }
            b';' => {
                at += 1;
                Token::Semicolon
            }
            _ if byte.is_ascii_whitespace() => {
                while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                    at += 1;
                }
                Token::Space(&sql[start..at])
            }
            // An escape string, E'…': a backslash escapes the character after it.
            b'E' | b'e' if bytes.get(at + 1) == Some(&b'\'') => {
                at += 2;
                loop {
                    match bytes.get(at) {
                        None => return Err("an unterminated quote"),
                        Some(b'\\') => at += 2,
                        Some(b'\'') if bytes.get(at + 1) == Some(&b'\'') => at += 2,
                        Some(b'\'') => break,
                        Some(_) => at += 1,
                    }
                }
                at += 1;
                Token::Quoted(&sql[start..at])
            }
            _ if byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80 => {
                while bytes.get(at).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80) {
                    at += 1;
                }
                Token::Word(&sql[start..at])
            }
            _ => {
                at += sql[at..].chars().next().map_or(1, char::len_utf8);
                Token::Other(&sql[start..at])
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Walks an `EXPLAIN (FORMAT JSON)` plan.
pub fn summarize(plan: &Value) -> PlanSummary {
    let mut summary = PlanSummary::default();
    if let Some(root) = plan.get(0).and_then(|top| top.get("Plan")) {
        walk(root, &mut summary);
    }
    summary.indexes_used.sort();
    summary.indexes_used.dedup();
    summary.sequential_scans.sort();
    summary.sequential_scans.dedup();
    summary
}

fn walk(node: &Value, summary: &mut PlanSummary) {
    summary.nodes += 1;
    let text = |key: &str| node.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| node.get(key).and_then(Value::as_f64);
    let node_type = text("Node Type").unwrap_or_default();
    if let Some(index) = text("Index Name") {
        summary.indexes_used.push(index);
    }
    if node_type == "Seq Scan" {
        summary.sequential_scans.extend(text("Relation Name"));
    }
    if let (Some(estimated), Some(rows), Some(loops)) =
        (number("Plan Rows"), number("Actual Rows"), number("Actual Loops"))
    {
        summary.row_estimates.push(RowEstimate { node: node_type, estimated, actual: rows * loops });
    }
    for child in node.get("Plans").and_then(Value::as_array).into_iter().flatten() {
        walk(child, summary);
    }
}

/// Writes the slow calls `telemetry::queries` hands over to `QueryPerformance`, in batches,
/// keeping the newest `monitor.slow_history_rows`, until `stop` turns true. Off the request
/// path: a full queue drops calls (counted in the stats) rather than slow a request down.
pub async fn keep_slow_history(pool: PgPool, settings: MonitorSettings, mut stop: watch::Receiver<bool>) {
    const QUEUE: usize = 1024;
    const BATCH: usize = 256;
    let (history, mut calls) = mpsc::channel(QUEUE);
    if !queries::registry().send_slow_calls_to(history) {
        tracing::warn!("another slow-query history already runs in this process");
        return;
    }
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = calls.recv_many(&mut batch, BATCH) => if received == 0 { return },
            _ = stop.changed() => return,
        }
        let queries: Vec<String> = batch.iter().map(|call: &queries::SlowCall| call.name.to_owned()).collect();
        let durations: Vec<f64> = batch.iter().map(|call| call.duration.as_secs_f64() * 1000.0).collect();
        let rows: Vec<i64> = batch.iter().map(|call| i64::try_from(call.rows).unwrap_or(i64::MAX)).collect();
        let failed: Vec<bool> = batch.iter().map(|call| call.failed).collect();
        let keep = settings.slow_history_rows;
        if let Err(error) = monitor::append_slow_calls(&pool, &queries, &durations, &rows, &failed, keep).await {
            tracing::warn!(%error, calls = batch.len(), "the slow-query history could not be written");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_select_passes_with_its_parameters_inlined() {
        let checked = check_statement("SELECT * FROM \"User\" WHERE email = $1 AND n > $2;", &[json!("o'k"), json!(3)]);
        assert_eq!(checked.unwrap(), "SELECT * FROM \"User\" WHERE email = 'o''k' AND n > (3)");
        assert_eq!(check_statement("SELECT 1-$1", &[json!(-5)]).unwrap(), "SELECT 1-(-5)");
        // In an escape string, \' is a quote inside it: the $1 after it is still text.
        assert_eq!(check_statement(r"SELECT E'\' $1 '", &[]).unwrap(), r"SELECT E'\' $1 '");
        assert!(check_statement(r"SELECT E'\''; DROP TABLE x", &[]).is_err());
        let with = check_statement("  -- why\n WITH x AS (SELECT 1) SELECT * FROM x", &[]).unwrap();
        assert!(with.contains("WITH x"));
        // A `;` or `$1` inside quotes or comments is text, not syntax.
        let quoted = check_statement("SELECT ';DROP TABLE x', $$ $1 ; $$ /* ; */", &[]).unwrap();
        assert_eq!(quoted, "SELECT ';DROP TABLE x', $$ $1 ; $$ /* ; */");
    }

    #[test]
    fn anything_but_one_select_is_refused() {
        for refused in [
            "SELECT 1; DROP TABLE \"User\"",
            "select 1;select 2",
            "DELETE FROM \"User\"",
            "SET statement_timeout = 0",
            "COPY \"User\" TO STDOUT",
            "EXPLAIN SELECT 1",
            "SELECT * INTO copy FROM \"User\"",
            "SELECT 'unterminated",
            "SELECT $1",
            "",
        ] {
            assert!(check_statement(refused, &[]).is_err(), "{refused}");
        }
    }

    #[test]
    fn advisor_candidates_are_the_filtered_columns_alone_and_together() {
        let columns = ["id".to_owned(), "userId".to_owned(), "model".to_owned()];
        let filter = r#"(("userId" = $1) AND ((model)::text = 'x'::text) AND (other = 1))"#;
        let expected: Vec<Vec<String>> =
            vec![vec!["userId".into()], vec!["model".into()], vec!["userId".into(), "model".into()]];
        assert_eq!(candidates(filter, &columns), expected);
        assert!(is_select("SELECT * FROM t WHERE a = $1"));
        assert!(!is_select("UPDATE t SET a = $1"));
        assert!(!is_select("SELECT 1; SELECT 2"));
    }

    #[test]
    fn a_plan_summary_finds_indexes_scans_and_estimates() {
        let plan = json!([{"Plan": {
            "Node Type": "Nested Loop", "Plan Rows": 10.0, "Actual Rows": 4.0, "Actual Loops": 1.0,
            "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "Project", "Plan Rows": 100.0, "Actual Rows": 90.0, "Actual Loops": 1.0},
                {"Node Type": "Index Scan", "Index Name": "User_pkey", "Relation Name": "User", "Plan Rows": 1.0,
                 "Actual Rows": 1.0, "Actual Loops": 4.0}
            ]
        }}]);
        let summary = summarize(&plan);
        assert_eq!(summary.nodes, 3);
        assert_eq!(summary.indexes_used, ["User_pkey"]);
        assert_eq!(summary.sequential_scans, ["Project"]);
        assert_eq!(summary.row_estimates[2], RowEstimate { node: "Index Scan".into(), estimated: 1.0, actual: 4.0 });
    }
}
