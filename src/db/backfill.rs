//! Filling computed columns in batches, between a migration's two transactions.
//!
//! A migration with a `-- vibing2:backfill` line adds its computed columns empty above it and
//! makes them NOT NULL below it. In between, each [`Backfill`] walks its source table by
//! primary key, a batch of ids at a time, and runs its update on each batch as a statement of
//! its own: no lock is held for longer than one batch, and an interrupted run loses at most the
//! batch it was in. The updates touch only the rows still to do, so the next run walks again
//! from the start and skips what is done.

use std::time::{Duration, Instant};

use sqlx::{Executor, PgConnection};

/// Rows per batch unless `vibing2 migrate --batch-rows` says otherwise.
pub const DEFAULT_BATCH_ROWS: i64 = 10_000;

/// How often a long backfill logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub struct Backfill {
    /// What it fills, for the log and the summary ("file sizes and checksums").
    pub name: String,
    /// Run once before the walk, in a transaction of its own, unless `source` exists already:
    /// builds a source table the walk needs.
    pub prepare: Option<String>,
    /// The table walked, by its TEXT primary key "id".
    pub source: String,
    /// The update of one batch: `$1` is the batch's ids (`TEXT[]`). It must skip rows that are
    /// done, so a resumed walk changes nothing twice.
    pub update: String,
    /// Run in the migration's second transaction, once every batch is done.
    pub cleanup: Option<String>,
}

/// What one backfill did, for the summary.
#[derive(Debug, Clone)]
pub struct Filled {
    pub name: String,
    /// Rows of the source walked, done before or not.
    pub walked: u64,
    /// Rows this run changed: on a resumed run, fewer than walked.
    pub changed: u64,
    pub elapsed_ms: f64,
}

/// The backfills between the two parts of a migration with a backfill marker.
pub fn of_migration(version: i64) -> Vec<Backfill> {
    match version {
        2 => optimized_schema(),
        14 => vec![token_usage_partitions()],
        _ => Vec::new(),
    }
}

/// The backfills of migration 2: every file's size and checksum from its content, and every
/// message's cursor in (createdAt, id) order, the keyset order of message pages.
fn optimized_schema() -> Vec<Backfill> {
    vec![
        Backfill {
            name: "file sizes and checksums".into(),
            prepare: None,
            source: r#""ProjectFile""#.into(),
            update: r#"UPDATE "ProjectFile"
                       SET "size" = octet_length("content"),
                           "checksum" = encode(sha256(convert_to("content", 'UTF8')), 'hex')
                       WHERE "id" = ANY($1) AND "checksum" IS NULL"#
                .into(),
            cleanup: None,
        },
        Backfill {
            name: "message cursors".into(),
            // The order is computed once and kept, so a resumed run numbers the same way.
            prepare: Some(
                r#"CREATE TABLE "_vibing2_message_order" AS
                   SELECT "id", row_number() OVER (ORDER BY "createdAt", "id") AS "position" FROM "Message";
                   ALTER TABLE "_vibing2_message_order" ADD PRIMARY KEY ("id")"#
                    .into(),
            ),
            source: r#""_vibing2_message_order""#.into(),
            update: r#"UPDATE "Message" m SET "cursor" = o."position"
                       FROM "_vibing2_message_order" o
                       WHERE o."id" = ANY($1) AND m."id" = o."id" AND m."cursor" IS NULL"#
                .into(),
            cleanup: Some(r#"DROP TABLE "_vibing2_message_order""#.into()),
        },
    ]
}

/// The backfill of migration 14: every TokenUsage row copied into the partitioned table
/// beside it. Rows already there (an earlier run's, or mirrored from a live insert) are
/// skipped by their key.
fn token_usage_partitions() -> Backfill {
    Backfill {
        name: "token usage into monthly partitions".into(),
        prepare: None,
        source: r#""TokenUsage""#.into(),
        update: r#"INSERT INTO "_vibing2_token_usage_partitioned"
                   SELECT * FROM "TokenUsage" WHERE "id" = ANY($1)
                   ON CONFLICT DO NOTHING"#
            .into(),
        cleanup: None,
    }
}

/// Runs one backfill to the end, `batch_rows` ids at a time, each batch committed on its own.
pub async fn run(conn: &mut PgConnection, backfill: &Backfill, batch_rows: i64) -> anyhow::Result<Filled> {
    let started = Instant::now();
    if let Some(prepare) = &backfill.prepare {
        if !super::relation_exists(conn, &backfill.source).await? {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            tx.execute(sqlx::raw_sql(prepare)).await?;
            tx.commit().await?;
        }
    }
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM {}", backfill.source)).fetch_one(&mut *conn).await?;
    let first_batch = format!(r#"SELECT "id" FROM {} ORDER BY "id" LIMIT $1"#, backfill.source);
    let next_batch = format!(r#"SELECT "id" FROM {} WHERE "id" > $2 ORDER BY "id" LIMIT $1"#, backfill.source);
    let (mut walked, mut changed, mut last_id, mut logged) = (0u64, 0u64, None::<String>, Instant::now());
    loop {
        let batch = match &last_id {
            None => sqlx::query_scalar::<_, String>(&first_batch).bind(batch_rows),
            Some(last) => sqlx::query_scalar::<_, String>(&next_batch).bind(batch_rows).bind(last),
        };
        let ids: Vec<String> = batch.fetch_all(&mut *conn).await?;
        let Some(last) = ids.last() else { break };
        last_id = Some(last.clone());
        changed += sqlx::query(&backfill.update).bind(&ids).execute(&mut *conn).await?.rows_affected();
        walked += ids.len() as u64;
        if logged.elapsed() >= PROGRESS_EVERY {
            tracing::info!(backfill = %backfill.name, walked, total, changed, "backfilling");
            logged = Instant::now();
        }
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(backfill = %backfill.name, walked, changed, elapsed_ms, "backfilled");
    Ok(Filled { name: backfill.name.clone(), walked, changed, elapsed_ms })
}
