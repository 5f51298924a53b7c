//! The HTTP API: one module per resource, merged here.

pub mod extract;
pub mod health;

use axum::Router;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().merge(health::routes())
}
