//! Token usage: recording AI calls against the balance, the exact summary, recent usage.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{AuthUser, Json, JsonBody, PageQuery, Query};
use crate::auth::token;
use crate::db::usage::{NewUsage, UsageGroupRow, UsageRow};
use crate::domain::access::Action;
use crate::domain::page::{Page, PageSize};
use crate::domain::{GroupBy, UtcTime};
use crate::error::{Error, ErrorResponse, Result};
use crate::service::{access, usage};
use crate::state::AppState;
use crate::validate;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    id: String,
    project_id: Option<String>,
    endpoint: String,
    model: String,
    tokens_used: i32,
    context_used: f64,
    saved_tokens: i32,
    cost: f64,
    timestamp: UtcTime,
}

impl From<UsageRow> for UsageRecord {
    fn from(row: UsageRow) -> Self {
        UsageRecord {
            id: row.id,
            project_id: row.project_id,
            endpoint: row.endpoint,
            model: row.model,
            tokens_used: row.tokens_used,
            context_used: row.context_used,
            saved_tokens: row.saved_tokens,
            cost: row.cost,
            timestamp: row.timestamp,
        }
    }
}

/// One group of a usage summary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroup {
    /// The day (YYYY-MM-DD), endpoint or model.
    key: String,
    requests: i64,
    tokens_used: i64,
    context_used: f64,
    saved_tokens: i64,
    cost: f64,
}

impl From<UsageGroupRow> for UsageGroup {
    fn from(row: UsageGroupRow) -> Self {
        UsageGroup {
            key: row.key,
            requests: row.requests,
            tokens_used: row.tokens_used,
            context_used: row.context_used,
            saved_tokens: row.saved_tokens,
            cost: row.cost,
        }
    }
}

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
    body: JsonBody<RecordUsage>,
) -> Result<(StatusCode, Json<Recorded>)> {
    let request = body.read(&state).await?;
    if request.tokens_used < 0 || request.saved_tokens < 0 {
        return Err(Error::Unprocessable("tokensUsed and savedTokens must not be negative".into()));
    }
    if !request.context_used.is_finite() || request.context_used < 0.0 {
        return Err(Error::Unprocessable("contextUsed must be a non-negative number".into()));
    }
    validate::text("endpoint", &request.endpoint, 1, 200)?;
    validate::text("model", &request.model, 1, 100)?;
    if let Some(project_id) = &request.project_id {
        access::project(&state, project_id, Some(&user.id), Action::Read).await?;
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
    let (record, token_balance) = usage::record(&state, &new).await?;
    Ok((StatusCode::CREATED, Json(Recorded { usage: record.into(), token_balance })))
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
    let groups = usage::summary(&state, &user.id, days, group_by).await?.into_iter().map(UsageGroup::from).collect();
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
    let keyset = query.keyset(PageSize::STANDARD)?;
    Ok(Json(usage::recent(&state, &user.id, keyset).await?.map(UsageRecord::from)))
}
