//! A project's chat history, paged on the monotonically increasing `cursor`.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
    System,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub role: MessageRole,
    pub content: String,
    pub tokens: i32,
    /// The message's position in its project's history; pages are keyed on it.
    #[serde(skip)]
    pub cursor: i64,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Newest first, going back in time.
    #[default]
    Older,
    /// Oldest first, going forward.
    Newer,
}

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
) -> sqlx::Result<Message> {
    crate::db::projects::touch(&mut *tx, project_id).await?;
    sqlx::query_as(
        r#"INSERT INTO "Message" ("id", "projectId", "role", "content", "tokens") VALUES ($1, $2, $3, $4, $5)
           RETURNING "id", "role", "content", "tokens", "cursor", "createdAt""#,
    )
    .bind(id)
    .bind(project_id)
    .bind(role)
    .bind(content)
    .bind(tokens)
    .fetch_one(&mut *tx)
    .await
}

/// One page after `after_cursor` (exclusive) in `direction`. Each (direction, role filter)
/// pair has its own static statement, so every plan is an index range scan on
/// `Message_projectId_cursor_key` or `Message_projectId_role_cursor_idx`.
pub async fn page(
    db: impl PgExecutor<'_>,
    project_id: &str,
    role: Option<MessageRole>,
    direction: Direction,
    after_cursor: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Message>> {
    const COLUMNS: &str =
        r#"SELECT "id", "role", "content", "tokens", "cursor", "createdAt" FROM "Message""#;
    let (filter, order, start) = match direction {
        Direction::Older => (r#""cursor" < $2"#, "DESC", i64::MAX),
        Direction::Newer => (r#""cursor" > $2"#, "ASC", i64::MIN),
    };
    let cursor = after_cursor.unwrap_or(start);
    let sql = match role {
        Some(_) => format!(
            r#"{COLUMNS} WHERE "projectId" = $1 AND "role" = $4 AND {filter} ORDER BY "cursor" {order} LIMIT $3"#
        ),
        None => format!(
            r#"{COLUMNS} WHERE "projectId" = $1 AND {filter} ORDER BY "cursor" {order} LIMIT $3"#
        ),
    };
    let query = sqlx::query_as(&sql)
        .bind(project_id)
        .bind(cursor)
        .bind(limit);
    match role {
        Some(role) => query.bind(role).fetch_all(db).await,
        None => query.fetch_all(db).await,
    }
}
