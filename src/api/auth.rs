//! Accounts and sessions: sign-up, login, logout, and the current session.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{AuthUser, ClientAddress, Json, SESSION_COOKIE};
use crate::app::AppState;
use crate::auth::password::{self, Verdict};
use crate::auth::{rate_limit, token};
use crate::cache::{Kind, Scope};
use crate::db::{sessions, users, users::User};
use crate::error::{Error, ErrorResponse, Result, ResultExt};
use crate::validate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signup)).routes(routes!(login)).routes(routes!(logout)).routes(routes!(session))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    name: String,
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The session token: send it as `Authorization: Bearer <token>` (it is also set as an
    /// HttpOnly cookie).
    token: String,
    #[serde(with = "crate::db::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: NaiveDateTime,
    user: User,
}

fn check_password_rules(password: &str) -> Result<()> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Err(Error::Unprocessable("password must be 8 to 128 characters".into()));
    }
    Ok(())
}

/// Creates an account on plan FREE with 10000 tokens.
#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = User), (status = 409, description = "e-mail taken", body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn signup(State(state): State<AppState>, Json(request): Json<SignupRequest>) -> Result<(StatusCode, Json<User>)> {
    validate::text("name", &request.name, 1, 100)?;
    let email = validate::email(&request.email)?;
    check_password_rules(&request.password)?;
    let hash = password::hash(request.password).await?;
    let user = users::create(&state.pool, &token::new_id(), request.name.trim(), &email, &hash)
        .await
        .on_unique_violation("User_email_key", || Error::Conflict("an account with this e-mail exists".into()))?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Verifies the password and opens a session. Unknown e-mails cost the same as wrong
/// passwords; 5 failures per 15 minutes per e-mail or per client address lock login.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorResponse),
              (status = 429, description = "too many failures; see Retry-After", body = ErrorResponse)))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(request): Json<LoginRequest>,
) -> Result<Response> {
    let email = request.email.trim().to_lowercase();
    let keys = rate_limit::keys(&email, &client);
    rate_limit::check(&state.pool, &keys).await?;

    let credentials = users::credentials_by_email(&state.pool, &email).await?;
    let stored = credentials.as_ref().map(|c| c.password.clone());
    let verdict = password::verify(request.password.clone(), stored).await?;
    let user_id = match (verdict, credentials) {
        (Verdict::Invalid, _) | (_, None) => {
            rate_limit::record_failure(&state.pool, &keys).await?;
            return Err(Error::Unauthorized);
        }
        (Verdict::ValidNeedsRehash, Some(credentials)) => {
            let rehashed = password::hash(request.password).await?;
            users::set_password_hash(&state.pool, &credentials.id, &rehashed).await?;
            tracing::info!(user = %credentials.id, "Phase-1 bcrypt hash replaced by argon2id");
            credentials.id
        }
        (Verdict::Valid, Some(credentials)) => credentials.id,
    };
    rate_limit::record_success(&state.pool, &keys).await?;

    let (session_token, token_hash) = token::new_session_token();
    let ttl = Duration::days(i64::from(state.settings.auth.session_ttl_days));
    let expires_at = (Utc::now() + ttl).naive_utc();
    sessions::create(&state.pool, &token_hash, &user_id, expires_at).await?;
    let user = users::by_id(&state.pool, &user_id).await?.ok_or(Error::Unauthorized)?;

    let cookie = session_cookie(&state, &session_token, ttl.num_seconds());
    let body = LoginResponse { token: session_token, expires_at, user };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Revokes the current session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("session" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse)))]
async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<(StatusCode, HeaderMap)> {
    sessions::delete(&state.pool, &user.token_hash).await?;
    state.cache.invalidate(&[Scope::Session(user.token_hash.clone())]).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok((StatusCode::NO_CONTENT, headers))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/session", tag = "auth", security(("session" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorResponse)))]
async fn session(State(state): State<AppState>, user: AuthUser) -> Result<Json<User>> {
    let scope = Scope::User(user.id.clone());
    let load = || async { users::by_id(&state.pool, &user.id).await?.ok_or(Error::Unauthorized) };
    Ok(Json(state.cache.get_or_load(Kind::User, &scope, "", load).await?))
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.settings.auth.secure_cookie { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&cookie).expect("session tokens are URL-safe")
}
