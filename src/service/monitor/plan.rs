//! Reading `EXPLAIN (FORMAT JSON)` plans: the explain's summary, and what the advisor needs.

use serde::Serialize;
use serde_json::Value;

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

/// The plan's top node.
fn root(plan: &Value) -> Option<&Value> {
    plan.get(0).and_then(|top| top.get("Plan"))
}

/// Every node of the plan, parents before their children.
fn nodes(plan: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    let mut pending: Vec<&Value> = root(plan).into_iter().collect();
    while let Some(node) = pending.pop() {
        found.push(node);
        let children = node.get("Plans").and_then(Value::as_array).into_iter().flatten();
        pending.extend(children.rev());
    }
    found
}

fn text(node: &Value, key: &str) -> Option<String> {
    node.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Walks an `EXPLAIN (FORMAT JSON)` plan.
pub fn summarize(plan: &Value) -> PlanSummary {
    let mut summary = PlanSummary::default();
    for node in nodes(plan) {
        summary.nodes += 1;
        let number = |key: &str| node.get(key).and_then(Value::as_f64);
        let node_type = text(node, "Node Type").unwrap_or_default();
        summary.indexes_used.extend(text(node, "Index Name"));
        if node_type == "Seq Scan" {
            summary.sequential_scans.extend(text(node, "Relation Name"));
        }
        if let (Some(estimated), Some(rows), Some(loops)) =
            (number("Plan Rows"), number("Actual Rows"), number("Actual Loops"))
        {
            summary.row_estimates.push(RowEstimate { node: node_type, estimated, actual: rows * loops });
        }
    }
    summary.indexes_used.sort();
    summary.indexes_used.dedup();
    summary.sequential_scans.sort();
    summary.sequential_scans.dedup();
    summary
}

/// The planner's total cost of the whole plan.
pub(super) fn total_cost(plan: &Value) -> f64 {
    root(plan).and_then(|root| root.get("Total Cost")).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Every sequential scan with a filter: (table, filter text).
pub(super) fn filtered_scans(plan: &Value) -> Vec<(String, String)> {
    nodes(plan)
        .into_iter()
        .filter(|node| text(node, "Node Type").as_deref() == Some("Seq Scan"))
        .filter_map(|node| Some((text(node, "Relation Name")?, text(node, "Filter")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
