//! Token usage: recording AI calls against the balance, the exact summary, recent usage.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{project_access, AuthUser, Json, Query};
use crate::api::pagination::{decode_cursor, page_from, Page, PageQuery, PageSize};
use crate::app::AppState;
use crate::auth::access::Action;
use crate::auth::token;
use crate::cache::{Kind, Scope};
use crate::db::usage::{self, GroupBy, NewUsage, UsageGroup, UsageRecord};
use crate::error::{Error, ErrorResponse, Result};
use crate::validate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record_usage)).routes(routes!(usage_summary)).routes(routes!(recent_usage))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordUsage {
    tokens_used: i32,
    context_used: f64,
    #[serde(default)]
    saved_tokens: i32,
    endpoint: String,
    project_id: Option<String>,
    model: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    usage: UsageRecord,
    /// The caller's balance after this call.
    token_balance: i32,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// How many days back, today included (1–366, default 30).
    days: Option<i32>,
    /// day (default) | endpoint | model
    group_by: Option<GroupBy>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageSummary {
    days: i32,
    group_by: GroupBy,
    groups: Vec<UsageGroup>,
}

/// Records one AI call by the caller and charges its tokens to their balance, atomically.
/// A call the balance does not cover is refused with 402 and records nothing.
#[utoipa::path(post, path = "/api/usage", tag = "usage", request_body = RecordUsage, security(("session" = [])),
    responses((status = 201, body = Recorded), (status = 402, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn record_usage(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<RecordUsage>,
) -> Result<(StatusCode, Json<Recorded>)> {
    if request.tokens_used < 0 || request.saved_tokens < 0 {
        return Err(Error::Unprocessable("tokensUsed and savedTokens must not be negative".into()));
    }
    if !request.context_used.is_finite() || request.context_used < 0.0 {
        return Err(Error::Unprocessable("contextUsed must be a non-negative number".into()));
    }
    validate::text("endpoint", &request.endpoint, 1, 200)?;
    validate::text("model", &request.model, 1, 100)?;
    if let Some(project_id) = &request.project_id {
        project_access(&state, project_id, Some(&user.id), Action::Read).await?;
    }
    let new = NewUsage {
        id: &token::new_id(),
        user_id: &user.id,
        project_id: request.project_id.as_deref(),
        endpoint: &request.endpoint,
        model: &request.model,
        tokens_used: request.tokens_used,
        context_used: request.context_used,
        saved_tokens: request.saved_tokens,
        cost: state.settings.usage.cost(&request.model, request.tokens_used),
    };
    match usage::record(&state.pool, &new).await? {
        Some((usage, token_balance)) => {
            state.cache.invalidate(&[Scope::Usage(user.id.clone()), Scope::User(user.id.clone())]).await;
            Ok((StatusCode::CREATED, Json(Recorded { usage, token_balance })))
        }
        None => Err(Error::PaymentRequired("the token balance does not cover this call".into())),
    }
}

/// The caller's usage over the last `days` days, grouped. Exact: it reads the
/// `user_token_summary` view for the days it covers and live rows since its last refresh.
#[utoipa::path(get, path = "/api/usage/summary", tag = "usage", params(SummaryParams), security(("session" = [])),
    responses((status = 200, body = UsageSummary), (status = 422, body = ErrorResponse)))]
async fn usage_summary(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<SummaryParams>,
) -> Result<Json<UsageSummary>> {
    let days = params.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(Error::Unprocessable("days must be 1 to 366".into()));
    }
    let group_by = params.group_by.unwrap_or_default();
    let scope = Scope::Usage(user.id.clone());
    let suffix = format!("{days}:{group_by:?}");
    let load = || async { Ok(usage::summary(&state.pool, &user.id, days, group_by).await?) };
    let groups = state.cache.get_or_load(Kind::UsageSummary, &scope, &suffix, load).await?;
    Ok(Json(UsageSummary { days, group_by, groups }))
}

/// The caller's recorded calls, newest first.
#[utoipa::path(get, path = "/api/usage/recent", tag = "usage", params(PageQuery), security(("session" = [])),
    responses((status = 200, body = Page<UsageRecord>), (status = 401, body = ErrorResponse)))]
async fn recent_usage(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<UsageRecord>>> {
    let limit = PageSize::STANDARD.resolve(query.limit)?;
    let after: Option<(NaiveDateTime, String)> = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = usage::recent(&state.pool, &user.id, after.as_ref(), limit + 1).await?;
    Ok(Json(page_from(rows, limit, |record| (record.timestamp, record.id.clone()))))
}
