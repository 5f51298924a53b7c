//! The HTTP API: one module per resource, merged here with the OpenAPI document they
//! describe, which is served at `/api/openapi.json`.

pub mod auth;
pub mod cache;
pub mod collab;
pub mod competitions;
pub mod discovery;
pub mod extract;
pub mod files;
pub mod health;
pub mod invalidate;
pub mod likes;
pub mod messages;
pub mod pagination;
pub mod projects;
pub mod usage;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::config::Settings;

#[derive(OpenApi)]
#[openapi(
    info(title = "vibing2 data service", description = "The PostgreSQL-backed API of the vibing2 platform."),
    paths(files::read_file),
    components(schemas(crate::error::ErrorResponse)),
    modifiers(&SessionAuth)
)]
struct ApiDoc;

/// Sessions travel as a Bearer token or as the HttpOnly cookie.
struct SessionAuth;

impl Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("ADMIN_TOKEN")).build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::SESSION_COOKIE))),
        );
    }
}

/// Every route of the service, and the OpenAPI document generated from the same handlers.
pub fn routes(settings: &Settings) -> Router<AppState> {
    let file_batch_limit = DefaultBodyLimit::max(settings.limits.file_batch_body_bytes);
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(auth::routes())
        .merge(projects::routes())
        .merge(files::routes().layer(file_batch_limit))
        .merge(messages::routes())
        .merge(collab::routes())
        .merge(competitions::routes())
        .merge(discovery::routes())
        .merge(likes::routes())
        .merge(usage::routes())
        .merge(cache::routes())
        .split_for_parts();
    router
        .route("/api/projects/{id}/files/{*path}", get(files::read_file))
        .route("/api/openapi.json", get(move || async move { Json(openapi) }))
}
