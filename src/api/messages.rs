//! A project's chat history: append, and keyset pages in either direction.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{project_access, Json, MaybeUser, Query};
use crate::api::invalidate;
use crate::api::pagination::{decode_cursor, page_from, Page, PageSize};
use crate::app::AppState;
use crate::auth::access::Action;
use crate::auth::token;
use crate::cache::{Kind, Scope};
use crate::db::messages::{self, Direction, Message, MessageRole};
use crate::error::{Error, ErrorResponse, Result};
use crate::validate;

const MESSAGE_PAGE: PageSize = PageSize { default: 50, max: 100 };
/// The longest message body accepted, in characters.
const MAX_CONTENT_CHARS: usize = 200_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(append_message, list_messages))
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
    Json(request): Json<NewMessage>,
) -> Result<(StatusCode, Json<Message>)> {
    validate::text("content", &request.content, 1, MAX_CONTENT_CHARS)?;
    let tokens = request.tokens.unwrap_or(0);
    if tokens < 0 {
        return Err(Error::Unprocessable("tokens must not be negative".into()));
    }
    project_access(&state, &id, caller.id(), Action::Write).await?;
    let mut tx = state.pool.begin().await?;
    let message = messages::append(&mut tx, &id, &token::new_id(), request.role, &request.content, tokens).await?;
    tx.commit().await?;
    invalidate::project_changed(&state, &id, invalidate::project_members(&state, &id).await?).await;
    Ok((StatusCode::CREATED, Json(message)))
}

/// One page of messages. Stable under concurrent appends: no duplicates, no gaps.
#[utoipa::path(get, path = "/api/projects/{id}/messages", tag = "messages", params(("id" = String, Path), MessageQuery),
    responses((status = 200, body = Page<Message>), (status = 404, body = ErrorResponse)))]
async fn list_messages(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Query(query): Query<MessageQuery>,
) -> Result<Json<Page<Message>>> {
    let limit = MESSAGE_PAGE.resolve(query.limit)?;
    let after: Option<i64> = query.cursor.as_deref().map(decode_cursor).transpose()?;
    project_access(&state, &id, caller.id(), Action::Read).await?;
    let direction = query.direction.unwrap_or_default();
    let load = || async {
        let rows = messages::page(&state.pool, &id, query.role, direction, after, limit + 1).await?;
        Ok(page_from(rows, limit, |message| message.cursor))
    };
    // The newest page is what opening a chat shows; it is cached with the project.
    if after.is_none() && direction == Direction::Older && query.role.is_none() {
        let scope = Scope::Project(id.clone());
        return Ok(Json(
            state.cache.get_or_load(Kind::FirstMessagePage, &scope, &format!("newest:{limit}"), load).await?,
        ));
    }
    Ok(Json(load().await?))
}
