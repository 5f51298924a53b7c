//! One error type for the whole API. Each variant has a status code and a stable `code`;
//! the body is always `{"error":{"code":"...","message":"..."}}`. Internal errors are logged
//! once, here at the boundary, and the client sees an opaque message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// PostgreSQL's SQLSTATE for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PaymentRequired(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("too many requests, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the database did not answer in time")]
    DatabaseTimeout,
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    error: ErrorBody,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorBody {
    /// Stable and machine-readable, e.g. `not_found`.
    code: &'static str,
    /// For people; never internal error text.
    message: String,
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::DatabaseTimeout | Error::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::PaymentRequired(_) => "insufficient_tokens",
            Error::PayloadTooLarge => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::Unprocessable(_) => "unprocessable",
            Error::RateLimited { .. } => "rate_limited",
            Error::DatabaseTimeout => "database_timeout",
            Error::DatabaseUnavailable => "database_unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

impl Error {
    /// A copy for the waiters of a shared cache load: Error is not Clone, since it may hold
    /// an anyhow::Error.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::BadRequest(m) => Error::BadRequest(m.clone()),
            Error::Unauthorized => Error::Unauthorized,
            Error::Forbidden(m) => Error::Forbidden(m.clone()),
            Error::NotFound(what) => Error::NotFound(what),
            Error::MethodNotAllowed => Error::MethodNotAllowed,
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::PaymentRequired(m) => Error::PaymentRequired(m.clone()),
            Error::PayloadTooLarge => Error::PayloadTooLarge,
            Error::UnsupportedMediaType(m) => Error::UnsupportedMediaType(m.clone()),
            Error::Unprocessable(m) => Error::Unprocessable(m.clone()),
            Error::RateLimited { retry_after_secs } => Error::RateLimited { retry_after_secs: *retry_after_secs },
            Error::DatabaseTimeout => Error::DatabaseTimeout,
            Error::DatabaseUnavailable => Error::DatabaseUnavailable,
            Error::Internal(source) => Error::Internal(anyhow::anyhow!("{source:#}")),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
                tracing::warn!(error = %db, "statement cancelled by statement_timeout");
                Error::DatabaseTimeout
            }
            sqlx::Error::PoolTimedOut => {
                tracing::warn!("no database connection became free within DB_POOL_TIMEOUT");
                Error::DatabaseTimeout
            }
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                tracing::error!(%error, "database unreachable");
                Error::DatabaseUnavailable
            }
            _ => Error::Internal(error.into()),
        }
    }
}

/// Maps a unique violation of one named constraint to a chosen error; anything else goes
/// through the usual `From<sqlx::Error>`.
pub trait ResultExt<T> {
    fn on_unique_violation(self, constraint: &str, error: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> ResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn on_unique_violation(self, constraint: &str, error: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some(constraint) => error(),
            _ => Error::from(e),
        })
    }
}

impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Self {
        Error::Internal(error)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(source) = &self {
            tracing::error!(error = ?source, "internal error");
        }
        let status = self.status();
        let body = ErrorResponse { error: ErrorBody { code: self.code(), message: self.to_string() } };
        let mut response = (status, Json(body)).into_response();
        if let Error::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
