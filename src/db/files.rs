//! Project files: listings without contents, single reads, and the set-based batch write.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;

/// A file as listings show it: no content.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct FileEntry {
    pub path: String,
    pub language: String,
    pub size: i32,
    pub checksum: String,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct FileContent {
    pub path: String,
    pub language: String,
    pub size: i32,
    pub checksum: String,
    pub content: String,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
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
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BatchOutcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
}

/// The listing statement: `$1` project, `$2` the last path seen, `$3` limit.
pub const LIST_SQL: &str = r#"SELECT "path", "language", "size", "checksum", "updatedAt" FROM "ProjectFile"
    WHERE "projectId" = $1 AND "path" > $2 ORDER BY "path" LIMIT $3"#;

/// A page of the listing in path order, after `after_path` (exclusive).
pub async fn list(
    db: impl PgExecutor<'_>,
    project_id: &str,
    after_path: &str,
    limit: i64,
) -> sqlx::Result<Vec<FileEntry>> {
    sqlx::query_as(LIST_SQL).bind(project_id).bind(after_path).bind(limit).fetch_all(db).await
}

pub async fn get(db: impl PgExecutor<'_>, project_id: &str, path: &str) -> sqlx::Result<Option<FileContent>> {
    sqlx::query_as(
        r#"SELECT "path", "language", "size", "checksum", "content", "updatedAt" FROM "ProjectFile"
           WHERE "projectId" = $1 AND "path" = $2"#,
    )
    .bind(project_id)
    .bind(path)
    .fetch_optional(db)
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
    let mut outcome = BatchOutcome::default();
    if !deletes.is_empty() {
        outcome.deleted = sqlx::query_scalar(
            r#"DELETE FROM "ProjectFile" WHERE "projectId" = $1 AND "path" = ANY($2) RETURNING "path""#,
        )
        .bind(project_id)
        .bind(deletes)
        .fetch_all(&mut *tx)
        .await?;
    }
    if !upserts.is_empty() {
        let column = |f: fn(&PreparedUpsert) -> &str| upserts.iter().map(f).collect::<Vec<_>>();
        let sizes: Vec<i32> = upserts.iter().map(|u| u.size).collect();
        let written: Vec<(String, bool)> = sqlx::query_as(
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
               RETURNING "path", (xmax = 0) AS created"#,
        )
        .bind(project_id)
        .bind(column(|u| &u.id))
        .bind(column(|u| &u.path))
        .bind(column(|u| &u.content))
        .bind(column(|u| &u.language))
        .bind(&sizes)
        .bind(column(|u| &u.checksum))
        .fetch_all(&mut *tx)
        .await?;
        for (path, created) in written {
            if created {
                outcome.created.push(path);
            } else {
                outcome.updated.push(path);
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
}
