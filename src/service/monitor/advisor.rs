//! The index advisor (`type=advise`): candidate indexes for the slowest statements, proven
//! on hypothetical indexes (hypopg) against their generic plans.

use serde::Serialize;
use serde_json::{json, Value};

use super::plan::{filtered_scans, total_cost};
use super::statement::{is_select, scan, Token};
use super::statements_unavailable;
use crate::db::monitor::{self, StatementOrder};
use crate::db::quote_identifier;
use crate::error::Result;
use crate::state::AppState;

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
/// the memory of one session, which is closed at the end.
pub(super) async fn advise(state: &AppState, limit: i64) -> Result<Value> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisor_candidates_are_the_filtered_columns_alone_and_together() {
        let columns = ["id".to_owned(), "userId".to_owned(), "model".to_owned()];
        let filter = r#"(("userId" = $1) AND ((model)::text = 'x'::text) AND (other = 1))"#;
        let expected: Vec<Vec<String>> =
            vec![vec!["userId".into()], vec!["model".into()], vec!["userId".into(), "model".into()]];
        assert_eq!(candidates(filter, &columns), expected);
    }
}
