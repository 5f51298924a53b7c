//! A project's chat history, paged on the monotonically increasing `cursor`.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{Direction, MessageRole, UtcTime};
use crate::telemetry::queries::timed;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub role: MessageRole,
    pub content: String,
    pub tokens: i32,
    /// The message's position in its project's history; pages are keyed on it.
    pub cursor: i64,
    #[sqlx(rename = "createdAt")]
    pub created_at: UtcTime,
}

crate::telemetry::queries::one_row!(MessageRow);

/// Appends a message. The project row is updated first, in the same transaction: that lock
/// makes cursor allocation and commit order agree within a project, so a reader paging
/// forward never skips a message that committed late.
pub async fn append(
    tx: &mut PgConnection,
    project_id: &str,
    id: &str,
    role: MessageRole,
    content: &str,
    tokens: i32,
) -> sqlx::Result<MessageRow> {
    timed("messages.append", async move {
        crate::db::projects::touch(&mut *tx, project_id).await?;
        sqlx::query_as!(
            MessageRow,
            r#"INSERT INTO "Message" ("id", "projectId", "role", "content", "tokens") VALUES ($1, $2, $3, $4, $5)
               RETURNING "id", "role" AS "role: MessageRole", "content", "tokens", "cursor",
                         "createdAt" AS "created_at: UtcTime""#,
            id,
            project_id,
            role as MessageRole,
            content,
            tokens
        )
        .fetch_one(&mut *tx)
        .await
    })
    .await
}

/// One message of a project, whole.
pub async fn by_id(db: impl PgExecutor<'_>, project_id: &str, message_id: &str) -> sqlx::Result<Option<MessageRow>> {
    timed("messages.by_id", async move {
        sqlx::query_as!(
            MessageRow,
            r#"SELECT "id", "role" AS "role: MessageRole", "content", "tokens", "cursor",
                      "createdAt" AS "created_at: UtcTime"
               FROM "Message" WHERE "id" = $1 AND "projectId" = $2"#,
            message_id,
            project_id
        )
        .fetch_optional(db)
        .await
    })
    .await
}

/// One page after `after_cursor` (exclusive) in `direction`.
pub async fn page(
    db: impl PgExecutor<'_>,
    project_id: &str,
    role: Option<MessageRole>,
    direction: Direction,
    after_cursor: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    timed("messages.page", async move {
        let start = match direction {
            Direction::Older => i64::MAX,
            Direction::Newer => i64::MIN,
        };
        let sql = page_sql(role.is_some(), direction);
        let query = sqlx::query_as(&sql).bind(project_id).bind(after_cursor.unwrap_or(start)).bind(limit);
        match role {
            Some(role) => query.bind(role).fetch_all(db).await,
            None => query.fetch_all(db).await,
        }
    })
    .await
}

/// The statement of one page: `$1` project, `$2` cursor, `$3` limit, `$4` role if filtered.
/// Each (role filter, direction) pair is its own static statement, so every plan is a range
/// scan on `Message_projectId_cursor_key` or `Message_projectId_role_cursor_idx` rather than
/// one generic plan with optional predicates. Assembled: see `db::assembled`.
pub fn page_sql(role_filter: bool, direction: Direction) -> String {
    let (comparison, order) = match direction {
        Direction::Older => ("<", "DESC"),
        Direction::Newer => (">", "ASC"),
    };
    let role = if role_filter { r#" AND "role" = $4"# } else { "" };
    format!(
        r#"SELECT "id", "role", "content", "tokens", "cursor", "createdAt" FROM "Message"
           WHERE "projectId" = $1{role} AND "cursor" {comparison} $2
           ORDER BY "cursor" {order} LIMIT $3"#
    )
}
