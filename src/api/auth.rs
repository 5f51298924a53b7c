//! Accounts and sessions: sign-up, login, logout, and the current session.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{AuthUser, ClientAddress, Json, JsonBody, SESSION_COOKIE};
use crate::db::users::UserRow;
use crate::domain::UtcTime;
use crate::error::{Error, ErrorResponse, Result};
use crate::service::accounts;
use crate::state::AppState;
use crate::validate;

/// A user as they see themselves: never the password hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    id: String,
    name: Option<String>,
    email: String,
    image: Option<String>,
    plan: String,
    token_balance: i32,
    context_used: f64,
    created_at: UtcTime,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            name: row.name,
            email: row.email,
            image: row.image,
            plan: row.plan,
            token_balance: row.token_balance,
            context_used: row.context_used,
            created_at: row.created_at,
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(session))
        .routes(routes!(change_password))
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
    expires_at: UtcTime,
    user: User,
}

/// The longest e-mail address there can be (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 254;
/// Signup allows 128 characters; a Phase-1 password may have been longer, so login allows more,
/// still bounded.
const MAX_LOGIN_PASSWORD_BYTES: usize = 1024;

fn check_password_rules(password: &str) -> Result<()> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Err(Error::Unprocessable("password must be 8 to 128 characters".into()));
    }
    Ok(())
}

/// Creates an account on plan FREE with 10000 tokens. A client address may try
/// `auth.signups_per_window` times per 15 minutes.
#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = User), (status = 409, description = "e-mail taken", body = ErrorResponse),
              (status = 422, body = ErrorResponse),
              (status = 429, description = "too many sign-ups from this address; see Retry-After", body = ErrorResponse),
              (status = 503, description = "too many password hashes waiting; see Retry-After", body = ErrorResponse)))]
async fn signup(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    body: JsonBody<SignupRequest>,
) -> Result<(StatusCode, Json<User>)> {
    let request = body.read(&state).await?;
    validate::text("name", &request.name, 1, 100)?;
    let email = validate::email(&request.email)?;
    check_password_rules(&request.password)?;
    let user = accounts::signup(&state, request.name.trim(), &email, &client, request.password).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Verifies the password and opens a session. Unknown e-mails cost the same as wrong
/// passwords; 5 failures per 15 minutes per (e-mail, client address) or per address lock
/// login, and failures per e-mail only slow it down (`service::rate_limit`).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorResponse),
              (status = 429, description = "too many failures; see Retry-After", body = ErrorResponse)))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    body: JsonBody<LoginRequest>,
) -> Result<Response> {
    let request = body.read(&state).await?;
    // Bounded before anything is looked up or hashed: the e-mail is a rate-limit key.
    if request.email.len() > MAX_EMAIL_BYTES {
        return Err(Error::Unprocessable(format!("email is at most {MAX_EMAIL_BYTES} bytes")));
    }
    if request.password.len() > MAX_LOGIN_PASSWORD_BYTES {
        return Err(Error::Unprocessable(format!("password is at most {MAX_LOGIN_PASSWORD_BYTES} bytes")));
    }
    let email = request.email.trim().to_lowercase();
    let session = accounts::login(&state, &email, &client, request.password).await?;
    let ttl_secs = i64::from(state.settings.auth.session_ttl_days) * 24 * 3600;
    let cookie = session_cookie(&state, &session.token, ttl_secs);
    let body = LoginResponse { token: session.token, expires_at: session.expires_at, user: session.user.into() };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Revokes the current session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("session" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse)))]
async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<(StatusCode, HeaderMap)> {
    accounts::logout(&state, &user.id, &user.token_hash).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok((StatusCode::NO_CONTENT, headers))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordChange {
    current_password: String,
    /// 8 to 128 characters, as at sign-up.
    new_password: String,
}

/// Replaces the caller's password and ends every other session of theirs, on every instance;
/// the session that asked stays. 5 wrong current passwords per 15 minutes lock it (429).
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    security(("session" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse),
              (status = 403, description = "the current password is wrong", body = ErrorResponse),
              (status = 422, body = ErrorResponse),
              (status = 429, description = "too many wrong current passwords; see Retry-After", body = ErrorResponse)))]
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    body: JsonBody<PasswordChange>,
) -> Result<StatusCode> {
    let request = body.read(&state).await?;
    if request.current_password.len() > MAX_LOGIN_PASSWORD_BYTES {
        return Err(Error::Unprocessable(format!("currentPassword is at most {MAX_LOGIN_PASSWORD_BYTES} bytes")));
    }
    check_password_rules(&request.new_password)?;
    accounts::change_password(&state, &user.id, &user.token_hash, request.current_password, request.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/session", tag = "auth", security(("session" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorResponse)))]
async fn session(State(state): State<AppState>, user: AuthUser) -> Result<Json<User>> {
    Ok(Json(accounts::profile(&state, &user.id).await?.into()))
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.settings.secure_cookie() { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&cookie).expect("session tokens are URL-safe")
}
