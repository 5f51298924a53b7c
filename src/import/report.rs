//! The import's verification and report: per table, source rows = imported + quarantined
//! (+ expired sessions dropped), and the content checksum of the normalised values as the
//! import computed it from the source against the same checksum computed by PostgreSQL from
//! what it holds. Printed for a person, and written as JSON with `--report`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use sqlx::PgConnection;

use super::cells::digest_term_sql;
use super::source::Source;
use super::tables::STAGES;
use crate::db::import as ledger;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Imported,
    Resumed,
    /// A rerun after a success: nothing was written.
    AlreadyComplete,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableReport {
    pub table: String,
    /// Rows in the Phase-1 table.
    pub source_rows: i64,
    pub imported: i64,
    /// Files made from `currentCode` (ProjectFile only).
    pub generated: i64,
    pub quarantined: i64,
    /// Expired sessions, left out on purpose.
    pub dropped: i64,
    pub target_rows: i64,
    pub source_checksum: String,
    pub target_checksum: String,
    pub counts_match: bool,
    pub checksums_match: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeCount {
    pub stage: String,
    pub column: String,
    pub change: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub source: String,
    pub outcome: Outcome,
    pub tables: Vec<TableReport>,
    /// What the rules changed, counted; the reported ones are also rows of `MigrationIssue`.
    pub changes: Vec<ChangeCount>,
    pub quarantined: i64,
    pub rejects_file: Option<String>,
    pub cursors_renumbered: bool,
    /// Rows this run wrote (0 on a rerun after a success).
    pub rows_this_run: i64,
    pub seconds: f64,
    /// Every count and checksum matches.
    pub ok: bool,
}

/// The target tables, each once, in stage order.
fn target_tables() -> Vec<&'static str> {
    let mut tables: Vec<&str> = STAGES.iter().map(|stage| stage.table).collect();
    tables.dedup();
    tables
}

/// What PostgreSQL holds: per target table, its rows and the sum of its rows' digests.
pub type TargetChecksums = BTreeMap<&'static str, (i64, i128)>;

pub async fn target_checksums(conn: &mut PgConnection) -> anyhow::Result<TargetChecksums> {
    let mut sums = BTreeMap::new();
    for table in target_tables() {
        let stage = STAGES.iter().find(|stage| stage.table == table).expect("a stage per table");
        let terms: Vec<String> =
            stage.target.iter().enumerate().map(|(position, column)| digest_term_sql(position, column)).collect();
        sums.insert(table, ledger::target_checksum(conn, table, &terms).await?);
    }
    Ok(sums)
}

/// Compares the source, as the committed batches recorded it, with `targets`, table by table.
pub async fn verify(
    conn: &mut PgConnection,
    source: &Source,
    targets: &TargetChecksums,
    outcome: Outcome,
    source_name: &str,
) -> anyhow::Result<ImportReport> {
    let progress = ledger::progress(conn).await?;
    let mut tables = Vec::new();
    for table in target_tables() {
        let stages: Vec<_> = STAGES.iter().filter(|stage| stage.table == table).collect();
        let of = |name: &str| progress.get(name).cloned().unwrap_or_default();
        let own = of(table);
        let generated: i64 =
            stages.iter().filter(|stage| stage.from != table).map(|stage| of(stage.name).imported).sum();
        let source_sum: i128 = stages.iter().map(|stage| of(stage.name).digest_sum).sum();
        let (target_rows, target_sum) = targets[table];
        let source_rows = source.row_count(table)?;
        tables.push(TableReport {
            table: table.to_owned(),
            source_rows,
            imported: own.imported,
            generated,
            quarantined: own.quarantined,
            dropped: own.dropped,
            target_rows,
            source_checksum: source_sum.to_string(),
            target_checksum: target_sum.to_string(),
            counts_match: source_rows == own.imported + own.quarantined + own.dropped
                && target_rows == own.imported + generated,
            checksums_match: source_sum == target_sum,
        });
    }
    let changes = ledger::change_counts(conn)
        .await?
        .into_iter()
        .map(|(stage, column, change, count)| ChangeCount { stage, column, change, count })
        .collect();
    let quarantined = tables.iter().map(|table| table.quarantined).sum();
    let ok = tables.iter().all(|table| table.counts_match && table.checksums_match);
    Ok(ImportReport {
        source: source_name.to_owned(),
        outcome,
        tables,
        changes,
        quarantined,
        rejects_file: None,
        cursors_renumbered: false,
        rows_this_run: 0,
        seconds: 0.0,
        ok,
    })
}

impl ImportReport {
    /// Writes the quarantined rows as JSON lines (table, row, reason), when there are any.
    pub async fn write_rejects(&mut self, conn: &mut PgConnection, path: &Path) -> anyhow::Result<()> {
        if self.quarantined == 0 {
            return Ok(());
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (stage, row, reason) in ledger::all_rejects(conn).await? {
            let table = STAGES.iter().find(|s| s.name == stage).map_or(stage.as_str(), |s| s.table);
            serde_json::to_writer(&mut file, &serde_json::json!({ "table": table, "row": row, "reason": reason }))?;
            file.write_all(b"\n")?;
        }
        file.flush()?;
        self.rejects_file = Some(path.display().to_string());
        Ok(())
    }

    /// The report for a person.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let headline = match self.outcome {
            Outcome::Imported => "imported",
            Outcome::Resumed => "resumed an unfinished import and finished it",
            Outcome::AlreadyComplete => "already imported: nothing changed",
        };
        out.push_str(&format!("{headline} ({})\n\n", self.source));
        out.push_str(&format!(
            "{:<20} {:>9} {:>9} {:>9} {:>11} {:>7} {:>9}  {}\n",
            "table", "source", "imported", "generated", "quarantined", "dropped", "target", "checksum"
        ));
        for table in &self.tables {
            let verdict = match (table.counts_match, table.checksums_match) {
                (true, true) => format!("ok {}", table.target_checksum),
                (false, _) => "COUNTS DIFFER".to_owned(),
                (true, false) => format!("DIFFERS: source {} target {}", table.source_checksum, table.target_checksum),
            };
            out.push_str(&format!(
                "{:<20} {:>9} {:>9} {:>9} {:>11} {:>7} {:>9}  {}\n",
                table.table,
                table.source_rows,
                table.imported,
                table.generated,
                table.quarantined,
                table.dropped,
                table.target_rows,
                verdict
            ));
        }
        let mut by_change: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
        for change in &self.changes {
            *by_change.entry((&change.stage, &change.column, &change.change)).or_default() += change.count;
        }
        if !by_change.is_empty() {
            out.push_str("\nvalues changed on the way in:\n");
            for ((stage, column, change), count) in by_change {
                out.push_str(&format!("  {stage}.{column}: {change}: {count}\n"));
            }
        }
        if let Some(file) = &self.rejects_file {
            out.push_str(&format!("\n{} rows quarantined, listed in {file}\n", self.quarantined));
        }
        if self.cursors_renumbered {
            out.push_str("message cursors renumbered in createdAt order\n");
        }
        if self.rows_this_run > 0 {
            out.push_str(&format!(
                "\n{} rows written in {:.1} s ({:.0} rows/s)\n",
                self.rows_this_run,
                self.seconds,
                self.rows_this_run as f64 / self.seconds.max(1e-9)
            ));
        }
        out.push_str(if self.ok { "verified: every count and checksum matches\n" } else { "VERIFICATION FAILED\n" });
        out
    }
}
