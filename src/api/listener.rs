//! Which listener serves which route. `serve` listens twice, with one
//! `AppState` and one route table (`routes`): the public listener
//! (`SERVER_HOST:SERVER_PORT`) for customers, and the admin listener
//! (`ADMIN_HOST:ADMIN_PORT`, loopback by default) for operators. The guard
//! here answers 404, as for an unknown path, to a route its listener does
//! not serve:
//!
//! - the admin listener serves the payload codec (`/codec/*`, which decrypts
//!   every Temporal payload) and the health probes (`/health`, `/livez`,
//!   `/readyz`: they read nothing private, and let a probe or a load balancer
//!   check the admin port itself); nothing customer-facing;
//! - the public listener serves everything else, and the codec only with
//!   `CODEC_ON_PUBLIC_LISTENER=true` (development only: `check_secrets`).
//!
//! `CODEC_ENDPOINT_ENABLED=false` still turns the codec off on both
//! (`codec::cors`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web as aw};

use super::{ApiError, AppState, ErrorCode, ROUTES};

/// Which of `serve`'s listeners an `App` answers on: its app data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// `SERVER_HOST:SERVER_PORT`: customers.
    Public,
    /// `ADMIN_HOST:ADMIN_PORT`: operators.
    Admin,
}

/// The route table's modules the admin listener serves. Their paths have no
/// parameters, so a path names its route (`tests` below).
const ADMIN_MODULES: [&str; 2] = ["codec", "health"];
/// The route table's modules the public listener serves only when told to.
const ADMIN_ONLY_MODULES: [&str; 1] = ["codec"];

/// Whether `path` is the path of a route of one of `modules`.
fn in_modules(path: &str, modules: &[&str]) -> bool {
    ROUTES
        .iter()
        .any(|r| r.path == path && modules.contains(&r.module()))
}

impl Listener {
    /// Whether this listener serves the route at `path` (as routed, i.e.
    /// percent-decoded).
    pub fn serves(self, path: &str, codec_on_public: bool) -> bool {
        match self {
            Listener::Admin => in_modules(path, &ADMIN_MODULES),
            Listener::Public => codec_on_public || !in_modules(path, &ADMIN_ONLY_MODULES),
        }
    }
}

/// Middleware: a route this listener does not serve is 404 `NOT_FOUND`,
/// whatever the method (a preflight too), as for a path no route has.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let listener = req
        .app_data::<Listener>()
        .copied()
        .unwrap_or(Listener::Public);
    let codec_on_public = req
        .app_data::<aw::Data<AppState>>()
        .is_some_and(|s| s.settings.temporal.codec_on_public_listener);
    // The path as routed (percent-decoded), not as sent: `/%63odec/decode`
    // reaches the codec too.
    if listener.serves(req.match_info().as_str(), codec_on_public) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let response = ApiError::from(ErrorCode::NotFound).error_response();
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_listener_serves_the_codec_and_the_probes_only() {
        for path in [
            "/codec/decode",
            "/codec/encode",
            "/health",
            "/livez",
            "/readyz",
        ] {
            assert!(Listener::Admin.serves(path, false), "{path}");
        }
        for path in [
            "/",
            "/api/flights",
            "/api/orders",
            "/metrics",
            "/api/docs",
            "/codec/x",
        ] {
            assert!(!Listener::Admin.serves(path, false), "{path}");
            assert!(!Listener::Admin.serves(path, true), "{path}");
        }
    }

    #[test]
    fn the_public_listener_serves_the_codec_only_when_told_to() {
        for path in ["/codec/decode", "/codec/encode"] {
            assert!(!Listener::Public.serves(path, false), "{path}");
            assert!(Listener::Public.serves(path, true), "{path}");
        }
        for path in ["/", "/api/flights", "/health", "/metrics"] {
            assert!(Listener::Public.serves(path, false), "{path}");
        }
    }

    #[test]
    fn admin_routes_are_matched_by_path_so_they_have_no_parameters() {
        let admin: Vec<_> = ROUTES
            .iter()
            .filter(|r| ADMIN_MODULES.contains(&r.module()))
            .collect();
        assert!(admin.len() >= 5, "{admin:?}");
        for route in admin {
            assert!(!route.path.contains('{'), "{route:?}");
        }
        for route in ROUTES.iter().filter(|r| r.module() == "codec") {
            assert!(route.path.starts_with("/codec/"), "{route:?}");
        }
    }
}
