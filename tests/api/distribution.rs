//! Every request-path query is routed as `db::distribution` declares (docs/scaling.md): each
//! statement a query name runs is read from the source, planned generically (`$n` kept), and
//! its plan must show what the route claims: for a key, an equality on the key's column in
//! every co-located table it touches, one value for all of them, and no other table but
//! reference tables (`UserFace`, `ViewRefresh`); for a lookup or a cross-shard query, that it
//! is indeed not routable as it stands.
//! And the names the monitor shows under `vibing2 bench http` are all in the table.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::{Executor, PgConnection, Row};
use vibing2::db::assembled;
use vibing2::db::distribution::{self, Key, Placement, Route};

use crate::support::{SpawnedServer, TestDb, ADMIN_TOKEN};

/// One statement of a query name, with the types of its leading parameters where the code
/// binds some it does not use.
struct Statement {
    sql: String,
    parameter_types: Vec<&'static str>,
}

/// The statements each `timed("name", …)` body in `src/db` runs: its SQL literals, the
/// `queries/` files it names (directly, or by a module constant that includes one), and every
/// variant of the assembled statements it builds.
fn statements_by_name() -> BTreeMap<String, Vec<Statement>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let variants = assembled::variants();
    let mut found: BTreeMap<String, Vec<Statement>> = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("src/db")).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let helpers = untimed_functions(&source);
        let files = included_queries(&source);
        for (at, _) in source.match_indices("timed(\"") {
            let rest = &source[at + "timed(\"".len()..];
            let (name, rest) = rest.split_once('"').unwrap();
            // The body: up to the end of the enclosing function (rustfmt puts it at column 0).
            let body = &rest[..rest.find("\n}\n").unwrap_or(rest.len())];
            let statements = found.entry(name.to_owned()).or_default();
            // The statements of the module's untimed helpers it calls count as its own.
            let called = helpers.iter().filter(|(helper, _)| body.contains(&format!("{helper}(")));
            for sql in sql_literals(body).into_iter().chain(called.flat_map(|(_, helper)| sql_literals(helper))) {
                statements.push(Statement { sql, parameter_types: Vec::new() });
            }
            for (at, _) in body.match_indices("query_file") {
                let file = body[at..].split('"').nth(1).unwrap();
                let sql = std::fs::read_to_string(root.join(file)).unwrap();
                statements.push(Statement { sql, parameter_types: Vec::new() });
            }
            for (_, file) in files.iter().filter(|(constant, _)| mentions(body, constant)) {
                let sql = std::fs::read_to_string(root.join(file)).unwrap();
                statements.push(Statement { sql, parameter_types: Vec::new() });
            }
            for (at, _) in body.match_indices("_sql(") {
                let start = body[..at].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
                let prefix = format!("{module}::{}_sql(", &body[start..at]);
                for variant in variants.iter().filter(|variant| variant.name.starts_with(&prefix)) {
                    let parameter_types = variant.parameter_types.clone();
                    statements.push(Statement { sql: variant.sql.clone(), parameter_types });
                }
            }
        }
    }
    found
}

/// The module's constants that include a `queries/` file (`const NAME: &str =
/// include_str!("../../queries/….sql")`), by name, with the file's path in the crate.
fn included_queries(source: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("pub const ").or_else(|| line.strip_prefix("const ")) else { continue };
        let Some((name, rest)) = rest.split_once(':') else { continue };
        let Some(file) = rest.split_once("include_str!(\"../../").and_then(|(_, file)| file.split_once('"')) else {
            continue;
        };
        found.push((name.trim().to_owned(), file.0.to_owned()));
    }
    found
}

/// Whether `body` names `identifier` as a whole word.
fn mentions(body: &str, identifier: &str) -> bool {
    body.match_indices(identifier).any(|(at, _)| {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        !body[..at].ends_with(word) && !body[at + identifier.len()..].starts_with(word)
    })
}

/// The module's top-level functions that run no `timed` call of their own, by name, with
/// their bodies.
fn untimed_functions(source: &str) -> Vec<(String, &str)> {
    let mut functions = Vec::new();
    for (at, _) in source
        .match_indices("\nfn ")
        .chain(source.match_indices("\npub fn "))
        .chain(source.match_indices("\nasync fn "))
    {
        let rest = &source[at + 1..];
        let rest = &rest[rest.find("fn ").unwrap() + 3..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let body = &rest[..rest.find("\n}\n").unwrap_or(rest.len())];
        // The `…_sql` builders are templates: their variants come from `db::assembled`.
        if !body.contains("timed(") && !name.ends_with("_sql") {
            functions.push((name, body));
        }
    }
    functions
}

/// The string literals of `body` that are statements (raw `r#"…"#` or plain).
fn sql_literals(body: &str) -> Vec<String> {
    let mut literals = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find('"') {
        let raw = rest[..at].ends_with("r#");
        rest = &rest[at + 1..];
        let (text, end) = if raw {
            let end = rest.find("\"#").unwrap();
            (rest[..end].to_owned(), end + 2)
        } else {
            let mut end = 0;
            let bytes = rest.as_bytes();
            while bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            (rest[..end].replace("\\\"", "\"").replace("\\\\", "\\"), end + 1)
        };
        rest = &rest[end..];
        let head = text.trim_start().to_uppercase();
        if ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE"].iter().any(|keyword| head.starts_with(keyword)) {
            literals.push(text);
        }
    }
    literals
}

/// The numbers of the `$n` parameters in `text`, with where each `$` is.
fn parameters(text: &str) -> Vec<(usize, u32)> {
    text.match_indices('$')
        .filter_map(|(at, _)| {
            let digits: String = text[at + 1..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok().map(|n| (at, n))
        })
        .collect()
}

/// The parameters `column` is compared to with `=` in a plan's condition, as
/// `("column" = $1)`, `(column = $1)`, `(alias.column = $1)` or `("column" = ($1)::text)`.
fn pins(condition: &str, column: &str) -> Vec<u32> {
    let quoted = format!("\"{column}\"");
    parameters(condition)
        .into_iter()
        .filter(|(at, _)| {
            // A parameter compared with a column of another collation shows as `($1)::text`.
            let before = condition[..*at].trim_end();
            let before = before.strip_suffix('(').map_or(before, str::trim_end);
            let Some(left) = before.strip_suffix('=') else { return false };
            let left = left.trim_end();
            let bare = left.strip_suffix(column).is_some_and(|before| {
                before.ends_with(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"')) || before.is_empty()
            });
            left.ends_with(&quoted) || bare
        })
        .map(|(_, n)| n)
        .collect()
}

/// The parameters `column` is compared to with `= ANY (…)` in a plan's condition, as
/// `(id = ANY ($1))` or `("id" = ANY (($1)::text[]))`: a set of the key's values.
fn any_pins(condition: &str, column: &str) -> Vec<u32> {
    parameters(condition)
        .into_iter()
        .filter(|(at, _)| {
            let before = condition[..*at].trim_end().trim_end_matches('(').trim_end();
            before.strip_suffix("ANY").map(str::trim_end).and_then(|left| left.strip_suffix('=')).is_some_and(|left| {
                let left = left.trim_end();
                left.ends_with(&format!("\"{column}\""))
                    || left.ends_with(&format!(".{column}"))
                    || left == column
                    || left.ends_with(&format!("({column}"))
            })
        })
        .map(|(_, n)| n)
        .collect()
}

/// Whether `column` is compared with `=` to a column `other` of another relation in a plan's
/// condition, as `("projectId" = p.id)`: a join on the distribution column.
fn joined_on(condition: &str, column: &str, other: &str) -> bool {
    let quoted = format!("\"{column}\"");
    condition.match_indices(" = ").any(|(at, _)| {
        let left = condition[..at].trim_end();
        let right = &condition[at + 3..];
        let right: String = right.chars().take_while(|c| c.is_alphanumeric() || "_.\"".contains(*c)).collect();
        let left_is_column = left.ends_with(&quoted)
            || left.strip_suffix(column).is_some_and(|before| before.ends_with(['(', '.', ' ']) || before.is_empty());
        let right_is_other = right
            .split_once('.')
            .is_some_and(|(qualifier, name)| !qualifier.is_empty() && name.trim_matches('"') == other);
        left_is_column && right_is_other
    })
}

/// One scanned table and what pins its distribution column.
#[derive(Debug, Default)]
struct Scan {
    table: String,
    /// Parameters the column is equal to.
    pins: BTreeSet<u32>,
    /// Parameters (arrays) the column is `= ANY` of.
    each: BTreeSet<u32>,
    /// Whether the column is joined with `=` to another relation's "id" (its group's key
    /// table's distribution column, `Project.id` or `User.id`, in the statements read here).
    joined: bool,
}

/// What a plan (and, for inserts, the statement) says about distribution.
#[derive(Debug, Default)]
struct Facts {
    /// Each table scanned, and what its distribution column is pinned to.
    scans: Vec<Scan>,
    /// Each table inserted into, and the parameter its distribution column takes, if one.
    inserts: Vec<(String, Option<u32>)>,
}

impl Facts {
    fn tables(&self) -> BTreeSet<&str> {
        self.scans.iter().map(|scan| scan.table.as_str()).chain(self.inserts.iter().map(|(t, _)| t.as_str())).collect()
    }

    /// The key that routes the statement to one shard, if any: every distributed table it
    /// touches is in that key's group and pinned, all to one parameter, and the others it
    /// touches are reference tables (a coordinator's table cannot join a shard).
    fn routed_by(&self) -> Option<Key> {
        let mut key = None;
        let mut values: BTreeSet<u32> = BTreeSet::new();
        // Some(group) for a distributed table, None for a reference table, and no answer for
        // any other (the caller returns None).
        let distributed = |table: &str| match distribution::placement(table) {
            Some(Placement::Distributed(key, _)) => Some(Some(key)),
            Some(Placement::Reference) => Some(None),
            _ => None,
        };
        for Scan { table, pins, .. } in &self.scans {
            let Some(group) = distributed(table)? else { continue };
            if key.is_some_and(|k| k != group) || pins.is_empty() {
                return None;
            }
            key = Some(group);
            values.extend(pins);
        }
        for (table, value) in &self.inserts {
            let Some(group) = distributed(table)? else { continue };
            if key.is_some_and(|k| k != group) {
                return None;
            }
            key = Some(group);
            // A key column filled from a scanned row follows that row's pin.
            values.extend(value);
        }
        (values.len() == 1).then_some(key).flatten()
    }

    /// The key whose set of values (one array parameter) prunes the statement to their
    /// shards: a read whose every distributed table is in that key's group, pinned to the
    /// array, or joined on the distribution column, with at least one pinned to it.
    fn routed_each_by(&self) -> Option<Key> {
        if !self.inserts.is_empty() {
            return None;
        }
        let mut key = None;
        let mut arrays: BTreeSet<u32> = BTreeSet::new();
        for scan in &self.scans {
            let Some(Placement::Distributed(group, _)) = distribution::placement(&scan.table) else { continue };
            if key.is_some_and(|k| k != group) || !scan.pins.is_empty() || (scan.each.is_empty() && !scan.joined) {
                return None;
            }
            key = Some(group);
            arrays.extend(&scan.each);
        }
        (arrays.len() == 1).then_some(key).flatten()
    }
}

/// The column `table` is distributed by.
fn key_column(table: &str) -> Option<&'static str> {
    match distribution::placement(table) {
        Some(Placement::Distributed(_, column)) => Some(column),
        _ => None,
    }
}

/// Walks a JSON plan: every scanned relation, with the external parameters (1..=count)
/// its distribution column is compared to in the node's conditions.
/// A partition (TokenUsage's months) counts as its parent table.
fn collect_scans(node: &Value, count: u32, parents: &BTreeMap<String, String>, scans: &mut Vec<Scan>) {
    if let (Some(table), false) = (node["Relation Name"].as_str(), node["Node Type"] == "ModifyTable") {
        let table = parents.get(table).map_or(table, String::as_str);
        let mut scan = Scan { table: table.to_owned(), ..Scan::default() };
        if let Some(column) = key_column(table) {
            let input = |n: &u32| (1..=count).contains(n);
            for condition in ["Index Cond", "Recheck Cond", "Filter", "TID Cond"] {
                if let Some(text) = node[condition].as_str() {
                    // Higher numbers are the plan's own (an InitPlan's output), not inputs.
                    scan.pins.extend(self::pins(text, column).into_iter().filter(input));
                    scan.each.extend(any_pins(text, column).into_iter().filter(input));
                    // Each group's key table (`User`, `Project`) is distributed by its "id".
                    scan.joined |= column != "id" && joined_on(text, column, "id");
                }
            }
        }
        scans.push(scan);
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        collect_scans(child, count, parents, scans);
    }
}

/// Each `INSERT INTO "T" (columns) VALUES (…)` or `… SELECT …` of the statement, with the
/// parameter its table's distribution column takes, if the value is one.
fn inserts(sql: &str) -> Vec<(String, Option<u32>)> {
    let upper = sql.to_uppercase();
    let mut found = Vec::new();
    for (at, _) in upper.match_indices("INSERT INTO") {
        let rest = sql[at + "INSERT INTO".len()..].trim_start();
        let Some((table, rest)) = rest.split_once('(') else { continue };
        let table = table.trim().trim_matches('"').to_owned();
        let Some((columns, rest)) = rest.split_once(')') else { continue };
        let columns: Vec<&str> = columns.split(',').map(|col| col.trim().trim_matches('"')).collect();
        let rest = rest.trim_start();
        let values = if rest.to_uppercase().starts_with("VALUES") {
            top_level_items(rest["VALUES".len()..].trim_start().strip_prefix('(').unwrap_or_default())
        } else if rest.to_uppercase().starts_with("SELECT") {
            top_level_items(&rest["SELECT".len()..])
        } else {
            Vec::new()
        };
        let value = key_column(&table)
            .and_then(|column| columns.iter().position(|col| *col == column))
            .and_then(|at| values.get(at))
            .and_then(|value| {
                let value = value.split("::").next().unwrap_or_default();
                value.strip_prefix('$').and_then(|n| n.parse().ok())
            });
        found.push((table, value));
    }
    found
}

/// The comma-separated items from the start of `text` up to a closing parenthesis or a
/// `FROM` at depth 0.
fn top_level_items(text: &str) -> Vec<String> {
    let (mut items, mut current, mut depth) = (Vec::new(), String::new(), 0i32);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let from_follows =
            || rest[c.len_utf8()..].trim_start().get(..4).is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
        if depth == 0 && (c == ')' || (c.is_whitespace() && from_follows())) {
            break;
        }
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(current.trim().to_owned());
                current.clear();
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        current.push(c);
        rest = &rest[c.len_utf8()..];
    }
    items.push(current.trim().to_owned());
    items
}

/// The statement's generic plan (the one a prepared statement falls back to), its `$n` kept.
async fn facts(conn: &mut PgConnection, statement: &Statement) -> Facts {
    let used = parameters(&statement.sql).into_iter().map(|(_, n)| n).max().unwrap_or(0);
    let count = used.max(statement.parameter_types.len() as u32);
    let types = if statement.parameter_types.is_empty() {
        String::new()
    } else {
        format!("({})", statement.parameter_types.join(", "))
    };
    conn.execute(format!("PREPARE distribution_check{types} AS {}", statement.sql).as_str())
        .await
        .unwrap_or_else(|error| panic!("{error}: {}", statement.sql));
    let arguments = if count == 0 { String::new() } else { format!("({})", vec!["NULL"; count as usize].join(", ")) };
    let plan: Value = sqlx::query(&format!("EXPLAIN (FORMAT JSON) EXECUTE distribution_check{arguments}"))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|error| panic!("{error}: {}", statement.sql))
        .get(0);
    conn.execute("DEALLOCATE distribution_check").await.unwrap();
    let parents: BTreeMap<String, String> = sqlx::query_as(
        "SELECT child.relname::text, parent.relname::text FROM pg_inherits
         JOIN pg_class child ON child.oid = inhrelid JOIN pg_class parent ON parent.oid = inhparent",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut facts = Facts { inserts: inserts(&statement.sql), ..Facts::default() };
    collect_scans(&plan[0]["Plan"], count, &parents, &mut facts.scans);
    facts
}

#[tokio::test]
async fn every_request_path_query_routes_as_the_distribution_table_declares() {
    let db = TestDb::migrated().await;
    let mut conn = db.connect().await;
    conn.execute("SET plan_cache_mode = force_generic_plan").await.unwrap();
    let statements = statements_by_name();

    // Nothing on the request path is missing from the table, nor listed there in vain.
    let platform = |name: &str| distribution::PLATFORM_PREFIXES.iter().any(|prefix| name.starts_with(prefix));
    let unlisted: Vec<&String> =
        statements.keys().filter(|name| !platform(name) && distribution::route(name).is_none()).collect();
    assert!(unlisted.is_empty(), "queries missing from db::distribution::QUERIES: {unlisted:?}");

    let mut wrong = Vec::new();
    for name in distribution::COLD.iter().map(|(name, _)| name).chain(distribution::PUBLIC_LISTINGS) {
        if distribution::route(name).is_none() {
            wrong.push(format!("{name} is classified, but not in db::distribution::QUERIES"));
        }
    }
    for (name, route) in distribution::QUERIES {
        let Some(found) = statements.get(*name).filter(|found| !found.is_empty()) else {
            wrong.push(format!("{name}: no such query, or no statement found in its body"));
            continue;
        };
        let mut all = Vec::new();
        for statement in found {
            let facts = facts(&mut conn, statement).await;
            for table in facts.tables() {
                if distribution::placement(table).is_none() {
                    wrong.push(format!("{name}: {table} is not in db::distribution::TABLES"));
                }
            }
            all.push(facts);
        }
        let verdict = match route {
            Route::Router(key) => all.iter().all(|f| f.routed_by() == Some(*key)),
            Route::RouterEach(key) => all.iter().all(|f| f.routed_each_by() == Some(*key)),
            Route::Lookup(_) | Route::CrossShard(_) => all.iter().any(|f| f.routed_by().is_none()),
            Route::Coordinator => all.iter().all(|f| {
                f.tables().iter().all(|table| {
                    matches!(distribution::placement(table), Some(Placement::Coordinator | Placement::Reference))
                })
            }),
        };
        let routable = matches!(route, Route::Router(_) | Route::RouterEach(_) | Route::Coordinator);
        if distribution::is_hot(name) && !routable && !distribution::PUBLIC_LISTINGS.contains(name) {
            wrong.push(format!("{name} is hot, but {route:?} is not routable by one key"));
        }
        if !verdict {
            wrong.push(format!("{name} is declared {route:?}, but its plans show {all:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn every_query_the_monitor_shows_under_load_is_in_the_distribution_table() {
    let db = TestDb::migrated().await;
    let server = SpawnedServer::start(
        &db,
        &[
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("VIBING2_RATE_LIMITS__ENABLED", "false"),
            ("VIBING2_AUTH__SIGNUPS_PER_WINDOW", "100"),
        ],
    )
    .await;
    let report = vibing2::bench::http::run(vibing2::bench::http::HttpOptions {
        url: &server.base,
        concurrency: 4,
        data: vibing2::bench::http::Data::Own,
        users: 2,
        projects_per_user: 3,
        seconds: 1.0,
        server_pid: None,
        pgbench_database: None,
        select_only_reference: false,
        scenario_seconds: 0.0,
        admin_token: None,
    })
    .await
    .expect("the load runs");
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let stats: Value = reqwest::Client::new()
        .get(format!("{}/api/monitor/queries?type=stats", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut calls: Vec<(u64, &str)> = stats["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|query| (query["sinceStart"]["count"].as_u64().unwrap(), query["name"].as_str().unwrap()))
        .filter(|(count, _)| *count > 0)
        .collect();
    calls.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!("the load's queries, by calls: {calls:?}");
    assert!(calls.len() >= 10, "the load ran the service's queries: {calls:?}");
    let platform = |name: &str| distribution::PLATFORM_PREFIXES.iter().any(|prefix| name.starts_with(prefix));
    let unlisted: Vec<&str> = calls
        .iter()
        .map(|(_, name)| *name)
        .filter(|name| !platform(name) && distribution::route(name).is_none())
        .collect();
    assert!(unlisted.is_empty(), "hot queries missing from db::distribution::QUERIES: {unlisted:?}");
    let total: u64 = calls.iter().map(|(count, _)| count).sum();
    for (count, name) in &calls {
        if let Some(route) = distribution::route(name) {
            eprintln!("{count:>7}  {name:<32} {route:?}");
        }
    }
    // What the load calls often is hot, whatever the table says.
    let busy_cold: Vec<(u64, &str)> = calls
        .iter()
        .filter(|(count, name)| !distribution::is_hot(name) && *count as f64 >= distribution::HOT_SHARE * total as f64)
        .copied()
        .collect();
    assert!(busy_cold.is_empty(), "declared cold, but busy under load ({total} calls): {busy_cold:?}");
}

#[test]
fn the_plan_readers_see_pins_and_inserted_keys() {
    assert_eq!(pins(r#"(("projectId" = $1) AND (path = $2))"#, "projectId"), [1]);
    assert_eq!(pins("(p.id = $2)", "id"), [2]);
    assert_eq!(pins(r#"((c."projectId" = ($1)::text) AND (c."userId" = $2))"#, "projectId"), [1], "relabelled");
    assert_eq!(pins(r#"(id = p."userId")"#, "id"), Vec::<u32>::new(), "a join, not a parameter");
    assert_eq!(pins(r#"("fromUserId" = $1)"#, "id"), Vec::<u32>::new(), "another column");
    assert_eq!(pins("(id = ANY ($1))", "id"), Vec::<u32>::new(), "a set of values is not one");
    assert_eq!(any_pins("(id = ANY ($1))", "id"), [1]);
    assert_eq!(any_pins(r#"(p."id" = ANY (($2)::text[]))"#, "id"), [2]);
    assert_eq!(any_pins(r#"("userId" = ANY ($1))"#, "id"), Vec::<u32>::new(), "another column");
    assert!(joined_on(r#"("projectId" = p.id)"#, "projectId", "id"));
    assert!(joined_on(r#"(f."projectId" = p."id")"#, "projectId", "id"));
    assert!(!joined_on(r#"("projectId" = $1)"#, "projectId", "id"), "a parameter, not a join");
    assert!(!joined_on(r#"("projectId" = c."userId")"#, "projectId", "id"), "another column");
    let insert = r#"INSERT INTO "Message" ("id", "projectId", "role") VALUES ($1, $2, lower($3))"#;
    assert_eq!(inserts(insert), [("Message".to_owned(), Some(2))]);
    let copy = r#"WITH p AS (INSERT INTO "Project" ("id", "name") SELECT $2, "name" FROM "Project" WHERE "id" = $1)
                  INSERT INTO "ProjectFile" ("id", "projectId") SELECT gen_random_uuid()::text, p."id" FROM p"#;
    assert_eq!(inserts(copy), [("Project".to_owned(), Some(2)), ("ProjectFile".to_owned(), None)]);
}
