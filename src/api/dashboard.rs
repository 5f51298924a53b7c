//! The operators' dashboard, `GET /admin`: one self-contained page (its script and styles
//! are served by the binary, no CDN) that draws the monitor's figures and refreshes them.
//! A login form takes the admin token and keeps a digest of it in an HttpOnly, SameSite=Strict
//! cookie, which the monitor's routes accept as they accept the bearer token.

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::api::extract::{
    admin_session_value, same_secret, Admin, ClientAddress, MaybeAdmin, ADMIN_COOKIE, ADMIN_SESSION_SECS,
};
use crate::error::{Error, Result};
use crate::service::rate_limit;
use crate::state::AppState;

const PAGE: &str = include_str!("../../assets/dashboard/index.html");
const LOGIN: &str = include_str!("../../assets/dashboard/login.html");
const SCRIPT: &str = include_str!("../../assets/dashboard/dashboard.js");
const STYLES: &str = include_str!("../../assets/dashboard/dashboard.css");

/// Only this origin's own script, styles and requests; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A token fits many times over.
const LOGIN_BODY_BYTES: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/login", post(login).layer(DefaultBodyLimit::max(LOGIN_BODY_BYTES)))
        .route("/admin/logout", post(logout))
        .route("/admin/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/admin/dashboard.css", get(|| async { asset("text/css; charset=utf-8", STYLES) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (status, headers, Html(body)).into_response()
}

fn login_page(status: StatusCode, message: &str) -> Response {
    html(status, LOGIN.replace("{{message}}", message))
}

/// The dashboard for a signed-in operator, the login form for anyone else. Off (404) without
/// an `ADMIN_TOKEN`.
async fn page(admin: MaybeAdmin, State(state): State<AppState>) -> Result<Response> {
    if state.settings.admin_token.is_none() {
        return Err(Error::NotFound("route"));
    }
    Ok(match admin.0 {
        Ok(Admin) => html(StatusCode::OK, PAGE.to_owned()),
        Err(_) => login_page(StatusCode::OK, ""),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// Checks the admin token (limited per client address, as logins are) and sets the
/// dashboard's cookie.
async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    form: std::result::Result<Form<LoginForm>, FormRejection>,
) -> Result<Response> {
    use secrecy::ExposeSecret;
    let Some(expected) = state.settings.admin_token.clone() else {
        return Err(Error::NotFound("route"));
    };
    let Ok(Form(form)) = form else {
        return Ok(login_page(StatusCode::BAD_REQUEST, "Send the token from the form."));
    };
    let key = rate_limit::Key { name: format!("admin:{client}"), limit: Some(rate_limit::MAX_FAILURES) };
    let reservation = rate_limit::reserve(&state.pool, &[key]).await?;
    if !same_secret(form.token.trim(), expected.expose_secret()) {
        return Ok(login_page(StatusCode::UNAUTHORIZED, "That is not the admin token."));
    }
    rate_limit::succeeded(&state.pool, reservation).await?;
    let value = admin_session_value(expected.expose_secret(), chrono::Utc::now().timestamp());
    let secure = if state.settings.secure_cookie() { "; Secure" } else { "" };
    let cookie =
        format!("{ADMIN_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ADMIN_SESSION_SECS}{secure}");
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("hex digest"));
    Ok((headers, Redirect::to("/admin")).into_response())
}

async fn logout() -> Response {
    let cookie = format!("{ADMIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
}
