//! The SQL of `vibing2 import`: the import's ledger, the batches' binary `COPY`, the content
//! checksums and the finishing steps. Like `migrate`, this is a command's SQL, not the
//! service's, so it is not timed per query.

use std::collections::HashMap;

use sqlx::{Connection, Executor, PgConnection, Row};

use super::migrate::platform_tables;

/// An import recorded in the target.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub fingerprint: String,
    pub source: String,
    pub completed: bool,
}

/// The target before anything is written: its import ledger, and the platform tables that
/// hold rows.
pub struct TargetState {
    pub ledger: Option<Ledger>,
    pub occupied: Vec<String>,
}

pub async fn target_state(conn: &mut PgConnection) -> sqlx::Result<TargetState> {
    let has_ledger: bool =
        sqlx::query_scalar("SELECT to_regclass('public._vibing2_import') IS NOT NULL").fetch_one(&mut *conn).await?;
    let ledger = if has_ledger {
        sqlx::query(r#"SELECT "fingerprint", "source", "completedAt" IS NOT NULL FROM "_vibing2_import""#)
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| Ledger { fingerprint: row.get(0), source: row.get(1), completed: row.get(2) })
    } else {
        None
    };
    let mut occupied = Vec::new();
    for table in platform_tables() {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut *conn)
            .await?;
        if exists {
            let rows: bool = sqlx::query_scalar(&format!(r#"SELECT EXISTS (SELECT 1 FROM "{table}")"#))
                .fetch_one(&mut *conn)
                .await?;
            if rows {
                occupied.push((*table).to_owned());
            }
        }
    }
    Ok(TargetState { ledger, occupied })
}

pub async fn start_ledger(conn: &mut PgConnection, fingerprint: &str, source: &str) -> sqlx::Result<()> {
    sqlx::query(r#"INSERT INTO "_vibing2_import" ("fingerprint", "source") VALUES ($1, $2) ON CONFLICT DO NOTHING"#)
        .bind(fingerprint)
        .bind(source)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn complete_ledger(conn: &mut PgConnection) -> sqlx::Result<()> {
    conn.execute(
        r#"UPDATE "_vibing2_import" SET "completedAt" = now() AT TIME ZONE 'UTC' WHERE "completedAt" IS NULL"#,
    )
    .await?;
    Ok(())
}

/// One stage's committed progress: the sums over its batches, and the source rowids they cover.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub imported: i64,
    pub quarantined: i64,
    pub dropped: i64,
    /// The sum of the imported rows' digests, exact.
    pub digest_sum: i128,
    /// The covered rowids as merged, sorted, disjoint ranges (after, last].
    pub covered: Vec<(i64, i64)>,
}

impl Progress {
    /// The rowid before which every source row has been written: the resume point.
    pub fn prefix_end(&self) -> i64 {
        match self.covered.first() {
            Some(&(after, last)) if after <= 0 => last,
            _ => 0,
        }
    }

    /// Whether a batch committed this row already (batches commit out of order, so there
    /// can be covered ranges past the prefix).
    pub fn covers(&self, rowid: i64) -> bool {
        let at = self.covered.partition_point(|&(_, last)| last < rowid);
        self.covered.get(at).is_some_and(|&(after, _)| after < rowid)
    }

    pub fn rows(&self) -> i64 {
        self.imported + self.quarantined + self.dropped
    }

    fn add(&mut self, batch: (i64, i64), imported: i64, quarantined: i64, dropped: i64, digest_sum: i128) {
        self.imported += imported;
        self.quarantined += quarantined;
        self.dropped += dropped;
        self.digest_sum += digest_sum;
        self.covered.push(batch);
    }

    fn merge_ranges(&mut self) {
        self.covered.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.covered.len());
        for &(after, last) in &self.covered {
            match merged.last_mut() {
                Some(previous) if after <= previous.1 => previous.1 = previous.1.max(last),
                _ => merged.push((after, last)),
            }
        }
        self.covered = merged;
    }
}

pub async fn progress(conn: &mut PgConnection) -> anyhow::Result<HashMap<String, Progress>> {
    let rows = sqlx::query(
        r#"SELECT "stage", "afterRowid", "lastRowid", "imported", "quarantined", "dropped", "digestSum"::text
           FROM "_vibing2_import_batch""#,
    )
    .fetch_all(conn)
    .await?;
    let mut progress: HashMap<String, Progress> = HashMap::new();
    for row in rows {
        let digest_sum: String = row.get(6);
        progress.entry(row.get(0)).or_default().add(
            (row.get(1), row.get(2)),
            row.get(3),
            row.get(4),
            row.get(5),
            digest_sum.parse()?,
        );
    }
    progress.values_mut().for_each(Progress::merge_ranges);
    Ok(progress)
}

/// A quarantined row.
pub struct Reject {
    pub row_id: String,
    pub row: serde_json::Value,
    pub reason: String,
}

/// A value a rule changed, listed in `MigrationIssue`.
pub struct Issue {
    pub row_id: String,
    pub column: &'static str,
    pub original: Option<String>,
    pub problem: &'static str,
}

/// One batch of a stage, ready to write.
pub struct Batch {
    /// Binary `COPY` rows, without header or trailer.
    pub copy_rows: Vec<u8>,
    /// The batch covers the source rowids in (after_rowid, last_rowid].
    pub after_rowid: i64,
    pub last_rowid: i64,
    pub imported: i64,
    pub dropped: i64,
    pub digest_sum: i128,
    pub rejects: Vec<Reject>,
    pub issues: Vec<Issue>,
    /// (column, change) → count.
    pub changes: HashMap<(&'static str, &'static str), i64>,
}

/// Writes one batch in one transaction: its rows, its rejects and issues, its change counts
/// and the rowids it covers. Killed at any point, either all of it is there or none.
pub async fn write_batch(
    conn: &mut PgConnection,
    stage: &str,
    table: &str,
    columns: &[&str],
    batch: &Batch,
    header: &[u8],
    trailer: &[u8],
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    if batch.imported > 0 {
        let list: Vec<String> = columns.iter().map(|column| format!("\"{column}\"")).collect();
        let statement = format!(r#"COPY "{table}" ({}) FROM STDIN (FORMAT binary)"#, list.join(", "));
        let mut copy = tx.copy_in_raw(&statement).await?;
        copy.send(header).await?;
        // Sent in pieces: sqlx frames each send as one CopyData message.
        for piece in batch.copy_rows.chunks(1 << 20) {
            copy.send(piece).await?;
        }
        copy.send(trailer).await?;
        let copied = copy.finish().await?;
        anyhow::ensure!(copied == batch.imported as u64, "COPY wrote {copied} rows of {}", batch.imported);
    }
    if !batch.rejects.is_empty() {
        let ids: Vec<&str> = batch.rejects.iter().map(|reject| reject.row_id.as_str()).collect();
        let rows: Vec<sqlx::types::Json<&serde_json::Value>> =
            batch.rejects.iter().map(|reject| sqlx::types::Json(&reject.row)).collect();
        let reasons: Vec<&str> = batch.rejects.iter().map(|reject| reject.reason.as_str()).collect();
        sqlx::query(
            r#"INSERT INTO "_vibing2_import_reject" ("stage", "rowId", "row", "reason")
               SELECT $1, * FROM UNNEST($2::text[], $3::jsonb[], $4::text[])"#,
        )
        .bind(stage)
        .bind(&ids)
        .bind(&rows)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
    }
    if !batch.issues.is_empty() {
        let ids: Vec<&str> = batch.issues.iter().map(|issue| issue.row_id.as_str()).collect();
        let columns: Vec<&str> = batch.issues.iter().map(|issue| issue.column).collect();
        let originals: Vec<Option<&str>> = batch.issues.iter().map(|issue| issue.original.as_deref()).collect();
        let problems: Vec<&str> = batch.issues.iter().map(|issue| issue.problem).collect();
        sqlx::query(
            r#"INSERT INTO "MigrationIssue" ("tableName", "rowId", "columnName", "originalValue", "problem")
               SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[])"#,
        )
        .bind(table)
        .bind(&ids)
        .bind(&columns)
        .bind(&originals)
        .bind(&problems)
        .execute(&mut *tx)
        .await?;
    }
    if !batch.changes.is_empty() {
        // In one order, so two batches upserting the same counts never deadlock.
        let mut changes: Vec<_> = batch.changes.iter().map(|(key, count)| (*key, *count)).collect();
        changes.sort_unstable();
        let (keys, counts): (Vec<_>, Vec<i64>) = changes.into_iter().unzip();
        let (columns, changes): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
        sqlx::query(
            r#"INSERT INTO "_vibing2_import_change" ("stage", "columnName", "change", "count")
               SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bigint[])
               ON CONFLICT ("stage", "columnName", "change")
               DO UPDATE SET "count" = "_vibing2_import_change"."count" + EXCLUDED."count""#,
        )
        .bind(stage)
        .bind(&columns)
        .bind(&changes)
        .bind(&counts)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        r#"INSERT INTO "_vibing2_import_batch"
               ("stage", "afterRowid", "lastRowid", "imported", "quarantined", "dropped", "digestSum")
           VALUES ($1, $2, $3, $4, $5, $6, $7::numeric)"#,
    )
    .bind(stage)
    .bind(batch.after_rowid)
    .bind(batch.last_rowid)
    .bind(batch.imported)
    .bind(batch.rejects.len() as i64)
    .bind(batch.dropped)
    .bind(batch.digest_sum.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The ids of one table's rows (the parents imported so far, on a resume).
pub async fn ids(conn: &mut PgConnection, table: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(&format!(r#"SELECT "id" FROM "{table}""#)).fetch_all(conn).await
}

/// The rows one stage quarantined, with why.
pub async fn rejected(conn: &mut PgConnection, stage: &str) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(r#"SELECT "rowId", "reason" FROM "_vibing2_import_reject" WHERE "stage" = $1"#)
        .bind(stage)
        .fetch_all(conn)
        .await
}

pub async fn pending_invites(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(r#"SELECT "projectId", "toUserId" FROM "CollaborationInvite" WHERE "status" = 'PENDING'"#)
        .fetch_all(conn)
        .await
}

/// Every quarantined row, in the order it was found.
pub async fn all_rejects(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, serde_json::Value, String)>> {
    let rows: Vec<(String, sqlx::types::Json<serde_json::Value>, String)> =
        sqlx::query_as(r#"SELECT "stage", "row", "reason" FROM "_vibing2_import_reject" ORDER BY "id""#)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(stage, row, reason)| (stage, row.0, reason)).collect())
}

/// (stage, column, change, count), every change the rules made.
pub async fn change_counts(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, String, String, i64)>> {
    sqlx::query_as(r#"SELECT "stage", "columnName", "change", "count" FROM "_vibing2_import_change" ORDER BY 1, 2, 3"#)
        .fetch_all(conn)
        .await
}

/// A table's rows and the sum of their digests, computed from what PostgreSQL holds; `terms`
/// are the columns' terms of the row digest (see `import::cells`).
pub async fn target_checksum(conn: &mut PgConnection, table: &str, terms: &[String]) -> anyhow::Result<(i64, i128)> {
    let digest = terms.join(" # ");
    let statement = format!(r#"SELECT count(*), COALESCE(sum({digest}), 0)::text FROM "{table}""#);
    let (rows, sum): (i64, String) = sqlx::query_as(&statement).fetch_one(conn).await?;
    Ok((rows, sum.parse()?))
}

/// Whether the message cursors follow (`createdAt`, `id`), the keyset order.
pub async fn message_cursors_in_order(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        r#"SELECT NOT EXISTS (
               SELECT 1 FROM (SELECT "cursor", lag("cursor") OVER (ORDER BY "createdAt", "id") AS previous
                              FROM "Message") ordered
               WHERE "cursor" <= previous)"#,
    )
    .fetch_one(conn)
    .await
}

/// Numbers the message cursors 1, 2, ... in (`createdAt`, `id`) order. Runs before the
/// unique (projectId, cursor) key is rebuilt, so no step can meet it.
pub async fn renumber_message_cursors(conn: &mut PgConnection) -> sqlx::Result<()> {
    conn.execute(
        r#"UPDATE "Message" m SET "cursor" = ordered.position
           FROM (SELECT "id", row_number() OVER (ORDER BY "createdAt", "id") AS position FROM "Message") ordered
           WHERE m."id" = ordered."id""#,
    )
    .await?;
    Ok(())
}

/// Carries the cursor sequence on past `at_least` (the highest cursor written), never back.
pub async fn advance_message_cursor_sequence(conn: &mut PgConnection, at_least: i64) -> sqlx::Result<()> {
    sqlx::query(
        r#"SELECT setval('"Message_cursor_seq"', GREATEST($1, (SELECT last_value FROM "Message_cursor_seq")))"#,
    )
    .bind(at_least.max(1))
    .execute(conn)
    .await?;
    Ok(())
}

/// Fresh planner statistics for every table.
pub async fn analyze(conn: &mut PgConnection) -> sqlx::Result<()> {
    conn.execute("ANALYZE").await?;
    Ok(())
}

/// Drops the platform tables' unique keys, indexes and foreign keys for the load, keeping
/// their definitions in `_vibing2_import_deferred` in the same transaction, as pg_restore
/// loads data before it builds them; the unique keys are checked when they are rebuilt.
/// Primary keys stay: the materialized views depend on them, and they guard the load.
/// Idempotent.
pub async fn defer_constraints(conn: &mut PgConnection) -> sqlx::Result<()> {
    let mut tx = conn.begin().await?;
    let deferred: Vec<(String, String, String, String)> = sqlx::query_as(
        r#"SELECT c.conname::text, c.conrelid::regclass::text,
                  CASE c.contype WHEN 'f' THEN 'foreign key' ELSE 'key' END, pg_get_constraintdef(c.oid)
           FROM pg_constraint c
           WHERE c.contype IN ('f', 'u') AND c.connamespace = 'public'::regnamespace
             AND c.conrelid::regclass::text = ANY (SELECT format('%I', t) FROM UNNEST($1::text[]) t)
           UNION ALL
           -- A partitioned table's index reads `ON ONLY`, which would rebuild it on the parent alone.
           SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, 'index',
                  replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')
           FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid
           WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))
             AND r.relnamespace = 'public'::regnamespace
             AND i.indrelid::regclass::text = ANY (SELECT format('%I', t) FROM UNNEST($1::text[]) t)
           -- Foreign keys first: they depend on the keys.
           ORDER BY 3 DESC"#,
    )
    .bind(platform_tables())
    .fetch_all(&mut *tx)
    .await?;
    for (name, table, kind, definition) in deferred {
        sqlx::query(
            r#"INSERT INTO "_vibing2_import_deferred" ("name", "tableName", "kind", "definition")
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"#,
        )
        .bind(&name)
        .bind(&table)
        .bind(&kind)
        .bind(&definition)
        .execute(&mut *tx)
        .await?;
        // Names come from the catalog, already quoted as identifiers by regclass.
        let drop = if kind == "index" {
            format!("DROP INDEX {name}")
        } else {
            format!(r#"ALTER TABLE {table} DROP CONSTRAINT "{}""#, name.replace('"', "\"\""))
        };
        tx.execute(drop.as_str()).await?;
    }
    tx.commit().await
}

/// Rebuilds what [`defer_constraints`] dropped, one object per transaction, so an
/// interrupted rebuild goes on where it stopped: the keys, then the indexes over both
/// connections at once (`CREATE INDEX` takes a share lock, so two build side by side on one
/// table, the largest tables first), then the foreign keys, which validate against the keys.
/// Returns how many it rebuilt.
pub async fn restore_constraints(conns: [&mut PgConnection; 2]) -> sqlx::Result<usize> {
    let [first, second] = conns;
    let deferred: Vec<Deferred> = sqlx::query_as(
        r#"SELECT d."name", d."tableName", d."kind", d."definition" FROM "_vibing2_import_deferred" d
           LEFT JOIN pg_class t ON t.oid = to_regclass(d."tableName")
           ORDER BY CASE d."kind" WHEN 'key' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, t.relpages DESC NULLS LAST, d."name""#,
    )
    .fetch_all(&mut *first)
    .await?;
    let rebuilt = deferred.len();
    let (indexes, others): (Vec<Deferred>, Vec<Deferred>) =
        deferred.into_iter().partition(|deferred| deferred.kind == "index");
    let (keys, foreign_keys): (Vec<Deferred>, Vec<Deferred>) =
        others.into_iter().partition(|deferred| deferred.kind == "key");
    for key in keys {
        rebuild(first, key).await?;
    }
    let queue = std::sync::Mutex::new(indexes.into_iter());
    tokio::try_join!(rebuild_from(first, &queue), rebuild_from(second, &queue))?;
    for foreign_key in foreign_keys {
        rebuild(first, foreign_key).await?;
    }
    Ok(rebuilt)
}

#[derive(sqlx::FromRow)]
struct Deferred {
    name: String,
    #[sqlx(rename = "tableName")]
    table: String,
    kind: String,
    definition: String,
}

/// Rebuilds objects from `queue` until it is empty.
async fn rebuild_from(
    conn: &mut PgConnection,
    queue: &std::sync::Mutex<std::vec::IntoIter<Deferred>>,
) -> sqlx::Result<()> {
    loop {
        let next = queue.lock().expect("the rebuild queue").next();
        match next {
            Some(deferred) => rebuild(conn, deferred).await?,
            None => return Ok(()),
        }
    }
}

async fn rebuild(conn: &mut PgConnection, deferred: Deferred) -> sqlx::Result<()> {
    let mut tx = conn.begin().await?;
    let statement = if deferred.kind == "index" {
        deferred.definition
    } else {
        format!(
            r#"ALTER TABLE {} ADD CONSTRAINT "{}" {}"#,
            deferred.table,
            deferred.name.replace('"', "\"\""),
            deferred.definition
        )
    };
    tx.execute(statement.as_str()).await?;
    sqlx::query(r#"DELETE FROM "_vibing2_import_deferred" WHERE "name" = $1"#)
        .bind(&deferred.name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::Progress;

    fn progress(batches: &[(i64, i64)]) -> Progress {
        let mut progress = Progress::default();
        for &batch in batches {
            progress.add(batch, 1, 0, 0, 0);
        }
        progress.merge_ranges();
        progress
    }

    #[test]
    fn a_resume_starts_after_the_contiguous_batches_and_skips_the_later_ones() {
        // Batch (20, 30] committed before (10, 20] did, which a crash then lost.
        let resumed = progress(&[(0, 10), (20, 30), (30, 40)]);
        assert_eq!(resumed.covered, [(0, 10), (20, 40)]);
        assert_eq!(resumed.prefix_end(), 10);
        let covered: Vec<i64> = (9..=41).filter(|&rowid| resumed.covers(rowid)).collect();
        assert_eq!(covered, [9, 10].into_iter().chain(21..=40).collect::<Vec<_>>());
        assert_eq!(resumed.rows(), 3);
    }

    #[test]
    fn nothing_committed_or_a_lost_first_batch_starts_from_the_beginning() {
        assert_eq!(progress(&[]).prefix_end(), 0);
        let first_lost = progress(&[(10, 20)]);
        assert_eq!(first_lost.prefix_end(), 0);
        assert!(!first_lost.covers(10) && first_lost.covers(11) && first_lost.covers(20) && !first_lost.covers(21));
    }
}
