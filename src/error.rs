//! One error type for the whole API. Each variant has a status code and a stable `code`;
//! the body is always `{"error":{"code":"...","message":"..."}}`. Internal errors are logged
//! once, here at the boundary, and the client sees an opaque message.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth::password::HashingError;
use crate::cache::CacheError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// PostgreSQL's SQLSTATE for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";
/// A write in a read-only transaction: `default_transaction_read_only`, or a hot standby.
const READ_ONLY_SQL_TRANSACTION: &str = "25006";
/// The server could not extend a file, or could not write its WAL.
const DISK_FULL: &str = "53100";
/// The server is shutting down, crashed, or is starting up (57P01, 57P02, 57P03).
const SERVER_GOING_OR_COMING: [&str; 3] = ["57P01", "57P02", "57P03"];

#[derive(Debug, Clone, thiserror::Error)]
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
    /// A plan's storage quota would be exceeded; nothing was written.
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("the request was not complete within the server's request timeout")]
    RequestTimeout,
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
    /// The database takes no writes for now (read-only, or out of disk); reads go on.
    #[error("the database is read-only for now: nothing was written")]
    DatabaseReadOnly,
    #[error("the database is out of disk space: nothing was written")]
    DatabaseFull,
    #[error("the request URL is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("the request headers are larger than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("the shared cache is unavailable")]
    CacheUnavailable,
    #[error("the service is busy, retry in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// Shared, so a single-flight cache load can hand one failure to all its waiters.
    #[error("internal error")]
    Internal(Arc<anyhow::Error>),
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
    /// The one place each variant meets HTTP: its status and its stable code.
    fn http(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::PaymentRequired(_) => (StatusCode::PAYMENT_REQUIRED, "insufficient_tokens"),
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota_exceeded"),
            Error::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Error::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::DatabaseTimeout => (StatusCode::SERVICE_UNAVAILABLE, "database_timeout"),
            Error::DatabaseUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Error::DatabaseReadOnly => (StatusCode::SERVICE_UNAVAILABLE, "database_read_only"),
            Error::DatabaseFull => (StatusCode::SERVICE_UNAVAILABLE, "database_full"),
            Error::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            Error::HeadersTooLarge(_) => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
            Error::CacheUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "cache_unavailable"),
            Error::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.http().0
    }

    pub fn code(&self) -> &'static str {
        self.http().1
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
                tracing::warn!(error = %db, "statement cancelled by statement_timeout");
                Error::DatabaseTimeout
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some(READ_ONLY_SQL_TRANSACTION) => {
                tracing::warn!(error = %db, "a write refused: the database is read-only");
                Error::DatabaseReadOnly
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some(DISK_FULL) => {
                tracing::error!(error = %db, "a write refused: the database is out of disk space");
                Error::DatabaseFull
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|code| SERVER_GOING_OR_COMING.contains(&&*code)) => {
                tracing::error!(error = %db, "the database server is shutting down or starting");
                Error::DatabaseUnavailable
            }
            sqlx::Error::PoolTimedOut => {
                tracing::warn!("no database connection became free within DB_POOL_TIMEOUT");
                Error::DatabaseTimeout
            }
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                tracing::error!(%error, "database unreachable");
                Error::DatabaseUnavailable
            }
            _ => Error::Internal(Arc::new(error.into())),
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
        Error::Internal(Arc::new(error))
    }
}

impl From<CacheError> for Error {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::Unavailable => Error::CacheUnavailable,
            codec @ CacheError::Codec(_) => Error::Internal(Arc::new(codec.into())),
        }
    }
}

impl From<HashingError> for Error {
    fn from(error: HashingError) -> Self {
        match error {
            HashingError::Busy => Error::Overloaded { retry_after_secs: 1 },
            failed @ HashingError::Failed(_) => Error::Internal(Arc::new(failed.into())),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(source) = &self {
            tracing::error!(error = ?source, "internal error");
        }
        let (status, code) = self.http();
        let body = ErrorResponse { error: ErrorBody { code, message: self.to_string() } };
        let mut response = (status, Json(body)).into_response();
        let retry_after_secs = match self {
            Error::RateLimited { retry_after_secs } | Error::Overloaded { retry_after_secs } => Some(retry_after_secs),
            Error::DatabaseTimeout | Error::DatabaseUnavailable | Error::CacheUnavailable => Some(1),
            Error::DatabaseReadOnly | Error::DatabaseFull => Some(30),
            _ => None,
        };
        if let Some(seconds) = retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_hash_queue_answers_503_with_retry_after() {
        let response = Error::from(HashingError::Busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
