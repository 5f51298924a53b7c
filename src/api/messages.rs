//! A project's chat history: append, and keyset pages in either direction.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, JsonBody, MaybeUser, Query};
use crate::db::messages::MessageRow;
use crate::domain::access::Action;
use crate::domain::page::{Keyset, Page, PageSize};
use crate::domain::{Direction, MessageRole, UtcTime};
use crate::error::{Error, ErrorResponse, Result};
use crate::service::messages::PagedMessage;
use crate::service::{access, messages};
use crate::state::AppState;
use crate::validate;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    id: String,
    role: MessageRole,
    content: String,
    tokens: i32,
    created_at: UtcTime,
    /// In a page: the content was cut to keep the page within `limits.message_page_bytes`;
    /// `GET /api/projects/{id}/messages/{messageId}` reads it whole.
    truncated: bool,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Message::from(PagedMessage { message: row, truncated: false })
    }
}

impl From<PagedMessage> for Message {
    fn from(PagedMessage { message: row, truncated }: PagedMessage) -> Self {
        Message {
            id: row.id,
            role: row.role,
            content: row.content,
            tokens: row.tokens,
            created_at: row.created_at,
            truncated,
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(append_message, list_messages)).routes(routes!(read_message))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    role: MessageRole,
    content: String,
    tokens: Option<i32>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Page size: default 50, capped at 100.
    limit: Option<u32>,
    /// `older` (default): newest first, back in time. `newer`: oldest first, forward.
    direction: Option<Direction>,
    role: Option<MessageRole>,
}

/// Appends a message. Owner, EDITOR and ADMIN.
#[utoipa::path(post, path = "/api/projects/{id}/messages", tag = "messages", params(("id" = String, Path)),
    request_body = NewMessage, security(("session" = [])),
    responses((status = 201, body = Message), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn append_message(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    body: JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<Message>)> {
    access::project(&state, &id, caller.id(), Action::Write).await?;
    let request = body.read(&state).await?;
    validate::text("content", &request.content, 1, validate::MESSAGE_CONTENT_CHARS)?;
    let tokens = request.tokens.unwrap_or(0);
    if tokens < 0 {
        return Err(Error::Unprocessable("tokens must not be negative".into()));
    }
    let message = messages::append(&state, &id, request.role, &request.content, tokens).await?;
    Ok((StatusCode::CREATED, Json(message.into())))
}

/// One message, whole, as a page may have cut it.
#[utoipa::path(get, path = "/api/projects/{id}/messages/{messageId}", tag = "messages",
    params(("id" = String, Path), ("messageId" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorResponse)))]
async fn read_message(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Json<Message>> {
    access::project_read(&state, &id, caller.id()).await?;
    Ok(Json(messages::one(&state, caller.id(), &id, &message_id).await?.into()))
}

/// One page of messages, within `limits.message_page_bytes` (1 MiB) of content: a message
/// that does not fit is cut, with `truncated: true`. Stable under concurrent appends: no
/// duplicates, no gaps.
#[utoipa::path(get, path = "/api/projects/{id}/messages", tag = "messages", params(("id" = String, Path), MessageQuery),
    responses((status = 200, body = Page<Message>), (status = 404, body = ErrorResponse)))]
async fn list_messages(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Query(query): Query<MessageQuery>,
) -> Result<Json<Page<Message>>> {
    let keyset = Keyset::parse(PageSize::MESSAGES, query.cursor.as_deref(), query.limit)?;
    access::project_read(&state, &id, caller.id()).await?;
    let direction = query.direction.unwrap_or_default();
    Ok(Json(messages::page(&state, caller.id(), &id, query.role, direction, keyset).await?.map(Message::from)))
}
