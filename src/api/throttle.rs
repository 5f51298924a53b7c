//! Rate limits per route class and client address (`rate_limits.*`), ahead of every
//! handler: reads are generous, writes stricter, forks strictest, and the operational
//! endpoints have a limit of their own. Counted across instances through Redis, and per
//! instance while Redis is down (`cache::Cache::admit`). Past a limit: 429 with
//! `Retry-After`, the CORS headers included (the CORS layer wraps this one).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::cache::Admission;
use crate::config::RateLimitSettings;
use crate::error::Error;
use crate::state::AppState;

use super::extract::ClientAddress;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Read,
    Write,
    Fork,
    Operational,
}

impl RouteClass {
    /// The class of a request; None for what has limits of its own (sign-up, login and the
    /// other auth routes) or none at all (liveness, readiness, preflights, the API document).
    pub fn of(method: &Method, path: &str) -> Option<RouteClass> {
        let operational = ["/api/monitor", "/api/cache", "/api/admin", "/metrics", "/admin"];
        if path.starts_with("/api/auth/") || path.starts_with("/api/health") || path == "/api/openapi.json" {
            return None;
        }
        if operational.iter().any(|prefix| path.starts_with(prefix)) {
            return Some(RouteClass::Operational);
        }
        match *method {
            Method::OPTIONS => None,
            Method::GET | Method::HEAD => Some(RouteClass::Read),
            Method::POST if path.ends_with("/fork") => Some(RouteClass::Fork),
            _ => Some(RouteClass::Write),
        }
    }

    fn name(self) -> &'static str {
        match self {
            RouteClass::Read => "read",
            RouteClass::Write => "write",
            RouteClass::Fork => "fork",
            RouteClass::Operational => "operational",
        }
    }

    fn limit(self, limits: &RateLimitSettings) -> u64 {
        match self {
            RouteClass::Read => limits.reads,
            RouteClass::Write => limits.writes,
            RouteClass::Fork => limits.forks,
            RouteClass::Operational => limits.operational,
        }
    }
}

/// The middleware: counts the request against its class's limit for its client address.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.settings.rate_limits;
    let class = RouteClass::of(request.method(), request.uri().path());
    let Some(class) = class.filter(|_| limits.enabled) else {
        return next.run(request).await;
    };
    let ClientAddress(client) = ClientAddress::of(request.extensions(), request.headers(), &state);
    let key = format!("{}:{client}", class.name());
    match state.cache.admit(&key, Duration::from_secs(limits.window_secs), class.limit(limits)).await {
        Admission::Allowed => next.run(request).await,
        Admission::Limited { retry_after_secs } => Error::RateLimited { retry_after_secs }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_has_its_class() {
        let cases = [
            (Method::GET, "/api/projects/p1", Some(RouteClass::Read)),
            (Method::GET, "/api/discover", Some(RouteClass::Read)),
            (Method::PATCH, "/api/projects/p1", Some(RouteClass::Write)),
            (Method::PUT, "/api/projects/p1/files", Some(RouteClass::Write)),
            (Method::POST, "/api/projects/p1/fork", Some(RouteClass::Fork)),
            (Method::GET, "/api/monitor/queries", Some(RouteClass::Operational)),
            (Method::POST, "/api/cache/clear", Some(RouteClass::Operational)),
            (Method::GET, "/api/admin/switches", Some(RouteClass::Operational)),
            (Method::PATCH, "/api/admin/switches", Some(RouteClass::Operational)),
            (Method::GET, "/metrics", Some(RouteClass::Operational)),
            (Method::GET, "/admin", Some(RouteClass::Operational)),
            (Method::POST, "/api/auth/login", None),
            (Method::GET, "/api/health", None),
            (Method::GET, "/api/health/database", None),
            (Method::OPTIONS, "/api/projects", None),
        ];
        for (method, path, class) in cases {
            assert_eq!(RouteClass::of(&method, path), class, "{method} {path}");
        }
    }
}
