//! Extractors that answer malformed input with the project's JSON error shape instead of
//! axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// `axum::Json`, with rejections mapped: 400 for syntax, 422 for wrong types or unknown
/// fields, 413 for an oversized body, 415 for a missing JSON content type.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonDataError(error) => {
            Error::Unprocessable(serde_message(&error.body_text()))
        }
        JsonRejection::JsonSyntaxError(_) => Error::BadRequest("the body is not valid JSON".into()),
        JsonRejection::MissingJsonContentType(_) => {
            Error::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        _ => Error::BadRequest("the body could not be read".into()),
    }
}

/// `axum::extract::Query`, with a bad query string answered as 400 in the JSON shape.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(error)) => {
                Err(Error::BadRequest(serde_message(&error.body_text())))
            }
            Err(_) => Err(Error::BadRequest("invalid query string".into())),
        }
    }
}

/// serde's message without axum's prefix, and without echoing long input back.
fn serde_message(text: &str) -> String {
    let message = text.split_once(": ").map_or(text, |(_, rest)| rest);
    message.chars().take(200).collect()
}
