//! Project files: listings without contents, single reads, and the set-based batch write.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::UtcTime;
use crate::telemetry::queries::{timed, Rows};

/// A file as listings show it: no content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntryRow {
    pub path: String,
    pub language: String,
    pub size: i32,
    pub checksum: String,
    pub updated_at: UtcTime,
}

impl FileEntryRow {
    /// Its place in the listing's path order, the keyset cursor.
    pub fn position(&self) -> String {
        self.path.clone()
    }
}

/// One file with its content.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub entry: FileEntryRow,
    pub content: String,
}

/// One file to write, with its size and checksum already computed.
pub struct PreparedUpsert {
    pub id: String,
    pub path: String,
    pub content: String,
    pub language: String,
    pub size: i32,
    pub checksum: String,
}

/// What a batch did, path by path.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
}

impl Rows for BatchOutcome {
    fn rows(&self) -> u64 {
        (self.created.len() + self.updated.len() + self.deleted.len()) as u64
    }
}

/// The listing statement: `$1` project, `$2` the last path seen, `$3` limit.
pub const LIST_SQL: &str = include_str!("../../queries/files_list.sql");

/// A page of the listing in path order, after `after_path` (exclusive).
pub async fn list(
    db: impl PgExecutor<'_>,
    project_id: &str,
    after_path: &str,
    limit: i64,
) -> sqlx::Result<Vec<FileEntryRow>> {
    timed("files.list", async move {
        sqlx::query_file_as!(FileEntryRow, "queries/files_list.sql", project_id, after_path, limit).fetch_all(db).await
    })
    .await
}

pub async fn get(db: impl PgExecutor<'_>, project_id: &str, path: &str) -> sqlx::Result<Option<FileRow>> {
    timed("files.get", async move {
        let row = sqlx::query!(
            r#"SELECT "path", "language", "size", "checksum", "content", "updatedAt" AS "updated_at: UtcTime"
               FROM "ProjectFile" WHERE "projectId" = $1 AND "path" = $2"#,
            project_id,
            path
        )
        .fetch_optional(db)
        .await?;
        Ok(row.map(|row| FileRow {
            entry: FileEntryRow {
                path: row.path,
                language: row.language,
                size: row.size,
                checksum: row.checksum,
                updated_at: row.updated_at,
            },
            content: row.content,
        }))
    })
    .await
}

/// How many files a project holds, and their bytes.
pub async fn usage(db: impl PgExecutor<'_>, project_id: &str) -> sqlx::Result<(i64, i64)> {
    timed("files.usage", async move {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "files!", COALESCE(sum("size"), 0)::bigint AS "bytes!"
               FROM "ProjectFile" WHERE "projectId" = $1"#,
            project_id
        )
        .fetch_one(db)
        .await?;
        Ok((row.files, row.bytes))
    })
    .await
}

/// Applies deletes, then upserts, as two set-based statements inside the caller's
/// transaction. A file whose checksum and language are unchanged is not rewritten. Paths
/// must be unique across the whole batch (the caller validates that).
pub async fn apply_batch(
    tx: &mut PgConnection,
    project_id: &str,
    upserts: &[PreparedUpsert],
    deletes: &[String],
) -> sqlx::Result<BatchOutcome> {
    timed("files.apply_batch", async move {
        let mut outcome = BatchOutcome::default();
        if !deletes.is_empty() {
            outcome.deleted = sqlx::query_scalar!(
                r#"DELETE FROM "ProjectFile" WHERE "projectId" = $1 AND "path" = ANY($2) RETURNING "path""#,
                project_id,
                deletes
            )
            .fetch_all(&mut *tx)
            .await?;
        }
        if !upserts.is_empty() {
            let column = |f: fn(&PreparedUpsert) -> &str| upserts.iter().map(f).collect::<Vec<_>>();
            let sizes: Vec<i32> = upserts.iter().map(|u| u.size).collect();
            let written = sqlx::query!(
                r#"INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "size", "checksum")
                   SELECT u.id, $1, u.path, u.content, u.language, u.size, u.checksum
                   FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::text[])
                        AS u(id, path, content, language, size, checksum)
                   ON CONFLICT ("projectId", "path") DO UPDATE SET
                       "content" = EXCLUDED."content",
                       "language" = EXCLUDED."language",
                       "size" = EXCLUDED."size",
                       "checksum" = EXCLUDED."checksum",
                       "updatedAt" = now() AT TIME ZONE 'UTC'
                   WHERE "ProjectFile"."checksum" <> EXCLUDED."checksum"
                      OR "ProjectFile"."language" <> EXCLUDED."language"
                   RETURNING "path", (xmax = 0) AS "created!""#,
                project_id,
                &column(|u| &u.id) as &[&str],
                &column(|u| &u.path) as &[&str],
                &column(|u| &u.content) as &[&str],
                &column(|u| &u.language) as &[&str],
                &sizes,
                &column(|u| &u.checksum) as &[&str],
            )
            .fetch_all(&mut *tx)
            .await?;
            for row in written {
                if row.created {
                    outcome.created.push(row.path);
                } else {
                    outcome.updated.push(row.path);
                }
            }
            outcome.unchanged = upserts
                .iter()
                .map(|u| &u.path)
                .filter(|path| !outcome.created.contains(path) && !outcome.updated.contains(path))
                .cloned()
                .collect();
        }
        Ok(outcome)
    })
    .await
}
