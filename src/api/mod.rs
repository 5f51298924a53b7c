//! The HTTP API: one module per resource, merged here with the OpenAPI document they
//! describe, which is served at `/api/openapi.json`.

pub mod auth;
pub mod cache;
pub mod collab;
pub mod competitions;
pub mod dashboard;
pub mod discovery;
pub mod extract;
pub mod files;
pub mod health;
pub mod likes;
pub mod messages;
pub mod monitor;
pub mod projects;
pub mod switches;
pub mod throttle;
pub mod usage;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;
use crate::service::invalidation::Write;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "vibing2 data service", description = "The PostgreSQL-backed API of the vibing2 platform."),
    paths(files::read_file),
    components(schemas(crate::error::ErrorResponse, crate::domain::discovery::Sort, crate::domain::Direction)),
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

/// The body limit of the account routes: a name, an e-mail and a password fit many times over.
const AUTH_BODY_BYTES: usize = 16 * 1024;

/// Every route of the service, and the OpenAPI document generated from the same handlers.
pub fn routes(settings: &Settings) -> Router<AppState> {
    let file_batch_limit = DefaultBodyLimit::max(settings.limits.file_batch_body_bytes);
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(auth::routes().layer(DefaultBodyLimit::max(AUTH_BODY_BYTES)))
        .merge(projects::routes())
        .merge(files::routes().layer(file_batch_limit))
        .merge(messages::routes())
        .merge(collab::routes())
        .merge(competitions::routes())
        .merge(discovery::routes())
        .merge(likes::routes())
        .merge(usage::routes())
        .merge(cache::routes())
        .merge(monitor::routes())
        .merge(switches::routes())
        .split_for_parts();
    let mut openapi = openapi;
    document_common_errors(&mut openapi);
    router
        .route("/api/projects/{id}/files/{*path}", get(files::read_file))
        .route("/api/openapi.json", get(move || async move { Json(openapi) }))
        .merge(dashboard::routes())
}

/// Adds to each operation the error answers that do not come from its handler: those of the
/// layers every request passes (the request deadline 408, the URL and header limits 414 and
/// 431, the rate limits 429, the database gate 503, the panic guard 500), of a session
/// presented and refused (401), of a malformed query or body (400, 413, 415, 422), and of an
/// unknown id in the path (404). Each is the JSON error; a handler's own entry is kept.
fn document_common_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let error = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorResponse"))).build();
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let unguarded = path == "/api/health" || path == "/api/openapi.json";
        let own_limits = path.starts_with("/api/health") || path.starts_with("/api/auth/");
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head];
        for operation in operations.into_iter().flatten() {
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            let has_query = parameters.iter().any(|parameter| parameter.parameter_in == ParameterIn::Query);
            let has_path = path.contains('{');
            let has_body = operation.request_body.is_some();
            let mut add = |status: &str, description: &str| {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description));
            };
            add("408", "the request was not complete within its deadline");
            add("414", "the URL is longer than server.max_uri_bytes");
            add("431", "the headers are larger than server.max_header_bytes");
            add("500", "an internal error; the body says no more");
            if !unguarded {
                add("401", "a session was presented and is not valid, or one is needed");
            }
            if !path.starts_with("/api/health") {
                add("503", "the database is unreachable, timed out, read-only or full; see Retry-After");
            }
            if !own_limits || matches!(path.as_str(), "/api/auth/login" | "/api/auth/signup" | "/api/auth/password") {
                add("429", "too many requests; see Retry-After");
            }
            if has_query || has_body || has_path {
                add("400", "a malformed query, path or body");
            }
            if has_query || has_body {
                add("422", "a well-formed request with values out of range");
            }
            if has_path {
                add("404", "no such id, or not one the caller may see");
            }
            if has_body {
                add("413", "the body is larger than the route's limit");
                add("415", "a body without Content-Type: application/json");
            }
        }
    }
}

/// Every write route and the service write it performs, whose declaration in
/// `service::invalidation` says what it makes stale. A test checks this list against the
/// OpenAPI document, so a new write route cannot go without one.
pub const WRITE_ROUTES: &[(&str, &str, Write)] = &[
    ("post", "/api/auth/signup", Write::Signup),
    ("post", "/api/auth/login", Write::Login),
    ("post", "/api/auth/logout", Write::Logout),
    ("put", "/api/auth/password", Write::ChangePassword),
    ("post", "/api/projects", Write::CreateProject),
    ("patch", "/api/projects/{id}", Write::UpdateProject),
    ("delete", "/api/projects/{id}", Write::DeleteProject),
    ("post", "/api/projects/{id}/view", Write::FlushViews),
    ("put", "/api/projects/{id}/files", Write::WriteFiles),
    ("post", "/api/projects/{id}/messages", Write::AppendMessage),
    ("post", "/api/projects/{id}/fork", Write::ForkProject),
    ("put", "/api/projects/{id}/like", Write::LikeProject),
    ("delete", "/api/projects/{id}/like", Write::UnlikeProject),
    ("post", "/api/usage", Write::RecordUsage),
    ("post", "/api/projects/{id}/invites", Write::Invite),
    ("post", "/api/invites/{id}/accept", Write::AcceptInvite),
    ("post", "/api/invites/{id}/decline", Write::DeclineInvite),
    ("delete", "/api/projects/{id}/invites/{inviteId}", Write::RevokeInvite),
    ("patch", "/api/projects/{id}/members/{userId}", Write::ChangeRole),
    ("delete", "/api/projects/{id}/members/{userId}", Write::RemoveMember),
    ("post", "/api/projects/{id}/competition", Write::EnterCompetition),
    ("post", "/api/competitions/{id}/close", Write::CloseCompetition),
    ("post", "/api/cache/clear", Write::ClearCache),
    ("patch", "/api/admin/switches", Write::SetSwitches),
];
