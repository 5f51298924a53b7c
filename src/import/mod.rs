//! `vibing2 import sqlite:PATH`: the Phase-1 SQLite database into PostgreSQL, value by value
//! ([`normalize`], [`tables`]), in binary `COPY` batches that each commit with the import's
//! progress, so a killed import resumes where it stopped, and verified at the end with row
//! counts and content checksums computed on both sides ([`report`]). docs/import.md has the
//! rules and the runbook.

pub mod cells;
pub mod normalize;
pub mod report;
pub mod source;
pub mod tables;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgConnection;
use tokio::sync::mpsc;

use crate::db::import::{self as ledger, Batch, Issue, Reject};
use crate::db::maintenance::{self, MaterializedView};
use crate::db::migrate;
use cells::{encode_row, row_digest, COPY_HEADER, COPY_TRAILER};
use report::{ImportReport, Outcome as RunOutcome};
use source::Source;
use tables::{ApiLimits, Context, Note, Outcome, STAGES};

/// What to do with users whose e-mails differ only by case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailConflict {
    /// Stop before writing anything, listing every conflict.
    Fail,
    /// Keep the earliest-created user; quarantine the others with everything they own.
    KeepFirst,
}

pub struct ImportOptions {
    pub source: PathBuf,
    pub on_email_conflict: EmailConflict,
    /// Rows per batch (each batch is one transaction); a batch also ends at `BATCH_BYTES`.
    pub batch_rows: usize,
    /// A line per table instead of progress bars.
    pub quiet: bool,
    pub rejects_path: PathBuf,
    pub limits: ApiLimits,
}

/// A batch ends at this much `COPY` data, whatever its row count, so memory stays flat.
const BATCH_BYTES: usize = 8 << 20;

/// Parses `sqlite:PATH`.
pub fn source_path(argument: &str) -> anyhow::Result<PathBuf> {
    match argument.strip_prefix("sqlite:") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!("the source must be given as sqlite:PATH, not {argument:?}"),
    }
}

/// Runs the import into `conn`'s database (a connection without a statement timeout).
/// Source problems, e-mail conflicts in `fail` mode and a target that holds other data are
/// refused before anything is written.
pub async fn run(conn: &mut PgConnection, options: &ImportOptions) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let source = Source::open(&options.source)?;
    let conflicts = source.email_conflicts()?;
    if !conflicts.is_empty() && options.on_email_conflict == EmailConflict::Fail {
        let listed: Vec<String> = conflicts
            .iter()
            .map(|(email, users)| {
                let ids: Vec<&str> = users.iter().map(|(_, id)| id.as_str()).collect();
                format!("{email}: {}", ids.join(", "))
            })
            .collect();
        bail!(
            "{} e-mail conflict(s), users whose e-mails differ only by case; nothing was written. Merge them in the \
             source, or rerun with --on-email-conflict keep-first to keep the earliest-created user of each:\n  {}",
            conflicts.len(),
            listed.join("\n  ")
        );
    }
    let fingerprint = source.fingerprint()?;
    let source_name = options.source.display().to_string();

    let state = ledger::target_state(conn).await?;
    match &state.ledger {
        Some(recorded) if recorded.fingerprint != fingerprint => bail!(
            "the target holds an import of another source ({}), or of this one since changed; import into an \
             empty database",
            recorded.source
        ),
        None if !state.occupied.is_empty() => {
            bail!("the target holds other data (rows in {}); import into an empty database", state.occupied.join(", "))
        }
        _ => {}
    }
    if let Some(recorded) = state.ledger.as_ref().filter(|recorded| recorded.completed) {
        let mut report = report::verify(conn, &source, RunOutcome::AlreadyComplete, &recorded.source).await?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let resumed = state.ledger.is_some();

    migrate::run(conn).await.context("migrating the target")?;
    ledger::start_ledger(conn, &fingerprint, &source_name).await?;

    // Progress commits with its batch, so a batch lost in a crash is simply redone.
    sqlx::query("SET synchronous_commit = off").execute(&mut *conn).await?;
    ledger::defer_constraints(conn).await?;

    let progress = ledger::progress(conn).await?;
    let context = load_context(conn, &conflicts).await?;
    let context = Context { limits: options.limits, ..context };
    let totals: HashMap<&str, i64> =
        STAGES.iter().map(|stage| Ok((stage.name, source.row_count(stage.from)?))).collect::<anyhow::Result<_>>()?;

    let (imported, source) = copy_stages(conn, source, context, &progress, options, &totals).await?;

    let step = Instant::now();
    let rebuilt = ledger::restore_constraints(conn).await?;
    tracing::info!(rebuilt, seconds = step.elapsed().as_secs_f64(), "rebuilt the keys, indexes and foreign keys");
    let step = Instant::now();
    let renumbered = ledger::order_message_cursors(conn).await?;
    tracing::info!(renumbered, seconds = step.elapsed().as_secs_f64(), "message cursors in createdAt order");
    let step = Instant::now();
    ledger::analyze(conn).await?;
    for view in MaterializedView::ALL {
        maintenance::refresh_view(conn, view).await?;
    }
    tracing::info!(seconds = step.elapsed().as_secs_f64(), "analyzed, and refreshed the views");
    let step = Instant::now();

    let outcome = if resumed { RunOutcome::Resumed } else { RunOutcome::Imported };
    let mut report = report::verify(conn, &source, outcome, &source_name).await?;
    tracing::info!(seconds = step.elapsed().as_secs_f64(), "verified");
    report.cursors_renumbered = renumbered;
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_this_run = imported;
    report.write_rejects(conn, &options.rejects_path).await?;
    if report.ok {
        ledger::complete_ledger(conn).await?;
    }
    Ok(report)
}

/// The parents and decisions of earlier runs, for a resume; nothing on a fresh import.
async fn load_context(conn: &mut PgConnection, conflicts: &source::EmailConflicts) -> anyhow::Result<Context> {
    let mut email_losers = HashMap::new();
    for users in conflicts.values() {
        let kept = &users[0].1;
        for (_, loser) in &users[1..] {
            email_losers.insert(loser.clone(), kept.clone());
        }
    }
    Ok(Context {
        users: ledger::ids(conn, "User").await?.into_iter().collect(),
        projects: ledger::ids(conn, "Project").await?.into_iter().collect(),
        set_aside_users: ledger::rejected(conn, "User").await?.into_iter().collect(),
        set_aside_projects: ledger::rejected(conn, "Project").await?.into_iter().map(|(id, _)| id).collect(),
        email_losers,
        pending_invites: ledger::pending_invites(conn).await?.into_iter().collect(),
        now: chrono::Utc::now().timestamp_millis(),
        limits: ApiLimits { message_chars: usize::MAX, file_bytes: usize::MAX },
    })
}

/// What the reading thread hands the writer.
enum Piece {
    Batch(usize, Batch),
    StageDone(usize),
}

/// Reads and normalises on a blocking thread, writes on this task: the two overlap, and at
/// most two batches wait between them. Returns the rows written by this run, and the source.
async fn copy_stages(
    conn: &mut PgConnection,
    source: Source,
    mut context: Context,
    progress: &HashMap<String, ledger::Progress>,
    options: &ImportOptions,
    totals: &HashMap<&str, i64>,
) -> anyhow::Result<(i64, Source)> {
    let (sender, mut receiver) = mpsc::channel::<Piece>(2);
    let starts: Vec<Option<i64>> = STAGES
        .iter()
        .map(|stage| match progress.get(stage.name) {
            Some(done) if done.done => None,
            Some(partial) => Some(partial.last_rowid),
            None => Some(0),
        })
        .collect();
    let batch_rows = options.batch_rows.max(1);
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<Source> {
        for (index, stage) in STAGES.iter().enumerate() {
            let Some(after) = starts[index] else { continue };
            let mut batch = empty_batch(after);
            source.for_each_row(stage, after, |row| {
                let mut notes = Vec::new();
                let outcome = tables::apply(stage, &row, &mut context, &mut notes);
                add_row(&mut batch, stage, &row, outcome, notes);
                if batch.imported as usize + batch.rejects.len() >= batch_rows || batch.copy_rows.len() >= BATCH_BYTES {
                    let full = std::mem::replace(&mut batch, empty_batch(row.rowid));
                    return Ok(sender.blocking_send(Piece::Batch(index, full)).is_ok());
                }
                Ok(true)
            })?;
            let unsent = batch.last_rowid > after || !batch.rejects.is_empty();
            if unsent && sender.blocking_send(Piece::Batch(index, batch)).is_err() {
                return Ok(source);
            }
            if sender.blocking_send(Piece::StageDone(index)).is_err() {
                return Ok(source);
            }
        }
        Ok(source)
    });

    let visible = !options.quiet && std::io::stderr().is_terminal();
    let mut written = 0i64;
    let mut current: Option<(usize, ProgressBar, Instant, i64)> = None;
    while let Some(piece) = receiver.recv().await {
        let index = match &piece {
            Piece::Batch(index, _) | Piece::StageDone(index) => *index,
        };
        let stage = &STAGES[index];
        if current.as_ref().map(|(at, ..)| *at) != Some(index) {
            let bar = progress_bar(visible, stage.name, totals.get(stage.name).copied().unwrap_or(0));
            bar.set_position(progress.get(stage.name).map_or(0, |p| (p.imported + p.quarantined + p.dropped) as u64));
            current = Some((index, bar, Instant::now(), 0));
        }
        let (_, bar, stage_started, stage_rows) = current.as_mut().expect("set above");
        match piece {
            Piece::Batch(_, batch) => {
                let columns: Vec<&str> = stage.target.iter().map(|column| column.name).collect();
                let result =
                    ledger::write_batch(conn, stage.name, stage.table, &columns, &batch, COPY_HEADER, COPY_TRAILER)
                        .await;
                if let Err(error) = result {
                    drop(receiver);
                    let _ = reader.await;
                    return Err(error.context(format!("writing a batch of {}", stage.name)));
                }
                let rows = batch.imported + batch.rejects.len() as i64 + batch.dropped;
                bar.inc(rows as u64);
                *stage_rows += rows;
                written += batch.imported;
            }
            Piece::StageDone(_) => {
                ledger::mark_done(conn, stage.name).await?;
                bar.finish_and_clear();
                let seconds = stage_started.elapsed().as_secs_f64();
                println!(
                    "{:<32} {:>10} rows read in {:>6.1} s ({:>9.0} rows/s)",
                    stage.name,
                    stage_rows,
                    seconds,
                    *stage_rows as f64 / seconds.max(1e-9)
                );
                current = None;
            }
        }
    }
    let source = reader.await.context("the reading thread")??;
    Ok((written, source))
}

fn empty_batch(after: i64) -> Batch {
    Batch {
        copy_rows: Vec::new(),
        last_rowid: after,
        imported: 0,
        dropped: 0,
        digest_sum: 0,
        rejects: Vec::new(),
        issues: Vec::new(),
        changes: HashMap::new(),
    }
}

fn add_row(batch: &mut Batch, stage: &tables::Stage, row: &tables::SourceRow, outcome: Outcome, notes: Vec<Note>) {
    batch.last_rowid = row.rowid;
    match outcome {
        Outcome::Keep(cells) => {
            debug_assert_eq!(cells.len(), stage.target.len(), "{}", stage.name);
            encode_row(&mut batch.copy_rows, &cells);
            batch.digest_sum += i128::from(row_digest(&cells));
            batch.imported += 1;
            for note in notes {
                *batch.changes.entry((note.column, note.change.what)).or_default() += 1;
                if note.change.reported {
                    batch.issues.push(Issue {
                        row_id: tables::row_id(stage, row),
                        column: note.column,
                        original: note.original,
                        problem: note.change.what,
                    });
                }
            }
        }
        Outcome::Quarantine(reason) => {
            batch.rejects.push(Reject { row_id: tables::row_id(stage, row), row: tables::row_json(stage, row), reason })
        }
        Outcome::Drop => batch.dropped += 1,
    }
}

fn progress_bar(visible: bool, name: &str, total: i64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total.max(0) as u64);
    let style = ProgressStyle::with_template("{msg:<32} {bar:30} {pos:>10}/{len:<10} {per_sec:>14} {elapsed}")
        .expect("a valid template");
    bar.set_style(style);
    bar.set_message(name.to_owned());
    bar
}
