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
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{mpsc, Mutex};

use crate::db::import::{self as ledger, Batch, Issue, Reject};
use crate::db::maintenance::{self, MaterializedView};
use crate::db::{migrate, partitions, projects};
use cells::{encode_row, row_digest, Cell, COPY_HEADER, COPY_TRAILER};
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

/// Opens a connection to the target for the import: no statement timeout, and commits that
/// do not wait for the disk, since a batch lost in a crash is simply redone (its coverage
/// commits with it).
async fn connect(target: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    let options = target.clone().options([("statement_timeout", "0"), ("synchronous_commit", "off")]);
    options.connect().await.context("cannot connect to the target database")
}

/// Runs the import into the `target` database. Source problems, e-mail conflicts in `fail`
/// mode and a target that holds other data are refused before anything is written.
pub async fn run(target: &PgConnectOptions, options: &ImportOptions) -> anyhow::Result<ImportReport> {
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

    let mut main = connect(target).await?;
    let conn = &mut main;
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
        let targets = report::target_checksums(conn).await?;
        let mut report = report::verify(conn, &source, &targets, RunOutcome::AlreadyComplete, &recorded.source).await?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let resumed = state.ledger.is_some();

    migrate::run(conn).await.context("migrating the target")?;
    ledger::start_ledger(conn, &fingerprint, &source_name).await?;

    ledger::defer_constraints(conn).await?;
    // The user-keyed memberships are derived once, after the load, not per batch.
    projects::set_membership_triggers(conn, false).await?;
    // No DEFAULT partition catches a month without one (docs/operations.md, "Partitioning").
    let created = partitions::ensure_months(conn, &source.usage_months()?).await?;
    tracing::info!(created = created.len(), "TokenUsage partitions for the source's months");

    let progress = ledger::progress(conn).await?;
    let context = load_context(conn, &conflicts).await?;
    let context = Context { limits: options.limits, ..context };
    let totals: HashMap<&str, i64> =
        STAGES.iter().map(|stage| Ok((stage.name, source.row_count(stage.from)?))).collect::<anyhow::Result<_>>()?;

    // Two writers: one backend parsing `COPY` is the bottleneck of a load, and two keep a
    // second core busy.
    let mut helper = connect(target).await?;
    let copied = copy_stages([&mut main, &mut helper], source, context, &progress, options, &totals).await?;
    let conn = &mut main;
    let source = copied.source;

    let step = Instant::now();
    let renumbered = !copied.messages_in_order && !ledger::message_cursors_in_order(conn).await?;
    if renumbered {
        ledger::renumber_message_cursors(conn).await?;
    }
    ledger::advance_message_cursor_sequence(conn, source.max_rowid("Message")?).await?;
    tracing::info!(renumbered, seconds = step.elapsed().as_secs_f64(), "message cursors in createdAt order");

    let step = Instant::now();
    let rebuilt = ledger::restore_constraints([&mut *conn, &mut helper]).await?;
    tracing::info!(rebuilt, seconds = step.elapsed().as_secs_f64(), "rebuilt the keys, indexes and foreign keys");
    // The memberships' triggers were off for the load: the derived table is built from it.
    let step = Instant::now();
    projects::set_membership_triggers(conn, true).await?;
    let memberships = projects::rebuild_memberships(conn).await?;
    tracing::info!(memberships, seconds = step.elapsed().as_secs_f64(), "rebuilt the user-keyed memberships");
    // The checksums' parallel scans, and ANALYZE with the views' refresh on the second
    // connection, share the tables without a lock between them, and fill each other's idle
    // core.
    let step = Instant::now();
    let finish = async {
        ledger::analyze(&mut helper).await?;
        for view in MaterializedView::ALL {
            maintenance::refresh_view(&mut helper, view).await?;
        }
        anyhow::Ok(())
    };
    let (targets, ()) = tokio::try_join!(report::target_checksums(conn), finish)?;
    drop(helper);
    tracing::info!(seconds = step.elapsed().as_secs_f64(), "summed the target, analyzed, and refreshed the views");

    let outcome = if resumed { RunOutcome::Resumed } else { RunOutcome::Imported };
    let mut report = report::verify(conn, &source, &targets, outcome, &source_name).await?;
    report.cursors_renumbered = renumbered;
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_this_run = copied.written;
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

/// A batch on its way from the reading thread to a writer.
struct Piece {
    stage: &'static tables::Stage,
    batch: Batch,
    bar: ProgressBar,
}

/// What [`copy_stages`] leaves behind.
struct Copied {
    /// Rows written by this run.
    written: i64,
    source: Source,
    /// Whether this run wrote every message and saw them in `createdAt` order; false when
    /// they were not, or it resumed the stage, so that only the target can tell.
    messages_in_order: bool,
}

/// Reads and normalises on a blocking thread, and writes on both `writers` at once; at most two batches wait between them. Batches can commit out of order: each
/// records the rowids it covers, and a resume skips what is covered.
async fn copy_stages(
    writers: [&mut PgConnection; 2],
    source: Source,
    mut context: Context,
    progress: &HashMap<String, ledger::Progress>,
    options: &ImportOptions,
    totals: &HashMap<&str, i64>,
) -> anyhow::Result<Copied> {
    let (sender, receiver) = mpsc::channel::<Piece>(2);
    let done: Vec<ledger::Progress> =
        STAGES.iter().map(|stage| progress.get(stage.name).cloned().unwrap_or_default()).collect();
    let batch_rows = options.batch_rows.max(1);
    let visible = !options.quiet && std::io::stderr().is_terminal();
    let totals: Vec<i64> = STAGES.iter().map(|stage| totals.get(stage.name).copied().unwrap_or(0)).collect();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<(Source, bool)> {
        let mut messages_in_order = false;
        for (index, stage) in STAGES.iter().enumerate() {
            let done = &done[index];
            let bar = progress_bar(visible, stage.name, totals[index]);
            bar.set_position(done.rows() as u64);
            let started = Instant::now();
            let mut order = stage.cursor().map(|_| KeysetOrder::new(done.covered.is_empty()));
            let mut rows_read = 0i64;
            let after = done.prefix_end();
            let mut batch = empty_batch(after);
            let mut open = true;
            source.for_each_row(stage, after, |row| {
                if done.covers(row.rowid) {
                    return Ok(true);
                }
                rows_read += 1;
                let mut notes = Vec::new();
                let outcome = tables::apply(stage, &row, &mut context, &mut notes);
                add_row(&mut batch, stage, &row, outcome, notes, order.as_mut());
                if batch.imported as usize + batch.rejects.len() >= batch_rows || batch.copy_rows.len() >= BATCH_BYTES {
                    let full = std::mem::replace(&mut batch, empty_batch(row.rowid));
                    open = sender.blocking_send(Piece { stage, batch: full, bar: bar.clone() }).is_ok();
                }
                Ok(open)
            })?;
            let unsent = batch.last_rowid > batch.after_rowid || !batch.rejects.is_empty();
            if !open || (unsent && sender.blocking_send(Piece { stage, batch, bar: bar.clone() }).is_err()) {
                return Ok((source, false));
            }
            if let Some(order) = order {
                messages_in_order = order.ordered;
            }
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{:<32} {:>10} rows read in {:>6.1} s ({:>9.0} rows/s)",
                stage.name,
                rows_read,
                seconds,
                rows_read as f64 / seconds.max(1e-9)
            );
        }
        Ok((source, messages_in_order))
    });

    let queue = Mutex::new(receiver);
    let written = futures_util::future::try_join_all(writers.map(|conn| write_batches(conn, &queue))).await;
    drop(queue);
    let (source, messages_in_order) = reader.await.context("the reading thread")??;
    Ok(Copied { written: written?.into_iter().sum(), source, messages_in_order })
}

/// One writer: takes batches from the queue until it is closed, each in its own
/// transaction. Returns the rows it wrote.
async fn write_batches(conn: &mut PgConnection, queue: &Mutex<mpsc::Receiver<Piece>>) -> anyhow::Result<i64> {
    let mut written = 0;
    loop {
        let piece = queue.lock().await.recv().await;
        let Some(Piece { stage, batch, bar }) = piece else { return Ok(written) };
        let mut columns: Vec<&str> = stage.target.iter().map(|column| column.name).collect();
        columns.extend(stage.cursor().map(|cursor| cursor.column));
        ledger::write_batch(conn, stage.name, stage.table, &columns, &batch, COPY_HEADER, COPY_TRAILER)
            .await
            .with_context(|| format!("writing a batch of {}", stage.name))?;
        bar.inc((batch.imported + batch.rejects.len() as i64 + batch.dropped) as u64);
        written += batch.imported;
    }
}

/// Watches whether the rows a stage keeps come in strictly increasing `createdAt`: then
/// their rowids, written as the cursor, are already in the keyset order.
struct KeysetOrder {
    /// False once the rows are known to be out of order, or the stage was resumed.
    ordered: bool,
    last: Option<normalize::EpochMillis>,
}

impl KeysetOrder {
    fn new(from_the_start: bool) -> Self {
        Self { ordered: from_the_start, last: None }
    }

    fn observe(&mut self, created_at: &Cell) {
        match created_at {
            Cell::Timestamp(millis) if self.last.map_or(true, |last| last < *millis) => self.last = Some(*millis),
            _ => self.ordered = false,
        }
    }
}

fn empty_batch(after: i64) -> Batch {
    Batch {
        copy_rows: Vec::new(),
        after_rowid: after,
        last_rowid: after,
        imported: 0,
        dropped: 0,
        digest_sum: 0,
        rejects: Vec::new(),
        issues: Vec::new(),
        changes: HashMap::new(),
    }
}

fn add_row(
    batch: &mut Batch,
    stage: &tables::Stage,
    row: &tables::SourceRow,
    outcome: Outcome,
    notes: Vec<Note>,
    order: Option<&mut KeysetOrder>,
) {
    batch.last_rowid = row.rowid;
    match outcome {
        Outcome::Keep(mut cells) => {
            debug_assert_eq!(cells.len(), stage.target.len(), "{}", stage.name);
            batch.digest_sum += i128::from(row_digest(&cells));
            if let Some(cursor) = stage.cursor() {
                if let Some(order) = order {
                    order.observe(&cells[cursor.ordered_by]);
                }
                cells.push(Cell::Int8(row.rowid));
            }
            encode_row(&mut batch.copy_rows, &cells);
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
