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

/// One page after `after_cursor` (exclusive) in `direction`.
pub async fn page(
    db: impl PgExecutor<'_>,
    project_id: &str,
    role: Option<MessageRole>,
    direction: Direction,
    after_cursor: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Message>> {
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
}

/// The statement of one page: `$1` project, `$2` cursor, `$3` limit, `$4` role if filtered.
/// Each (role filter, direction) pair is its own static statement, so every plan is a range
/// scan on `Message_projectId_cursor_key` or `Message_projectId_role_cursor_idx` rather than
/// one generic plan with optional predicates.
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
