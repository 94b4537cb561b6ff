//! Which listener serves which route. `serve` listens twice, with one
//! `AppState` and one route table (`routes`): the public listener
//! (`SERVER_HOST:SERVER_PORT`) for customers, and the admin listener
//! (`ADMIN_HOST:ADMIN_PORT`, loopback by default) for operators and their
//! tools. The guard here answers 404, as for an unknown path, to a route its
//! listener does not serve:
//!
//! - the admin listener serves the payload codec (`/codec/*`, which decrypts
//!   every Temporal payload), `GET /metrics` (what Prometheus scrapes),
//!   `GET /api/config` and the health probes (`/health`, `/livez`,
//!   `/readyz`: they let a probe or a load balancer check the admin port
//!   itself); nothing customer-facing;
//! - the public listener serves everything else: `/api/config` (the UI
//!   reads it; it carries what the UI shows and nothing more), `/metrics`
//!   only with `PUBLIC_METRICS=true` (development sets it), and the codec
//!   only with `CODEC_ON_PUBLIC_LISTENER=true` (development only:
//!   `check_secrets`).
//!
//! `CODEC_ENDPOINT_ENABLED=false` still turns the codec off on both
//! (`codec::cors`), and on either the codec answers only an operator's
//! session or `CODEC_TOKEN` (`codec::cors` too).

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
const ADMIN_MODULES: [&str; 3] = ["codec", "health", "metrics"];
/// Other routes the admin listener serves, by path.
const ADMIN_PATHS: [&str; 1] = ["/api/config"];

/// What the public listener serves besides customers' routes: its app
/// data, from the settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// `CODEC_ON_PUBLIC_LISTENER`.
    pub codec: bool,
    /// `PUBLIC_METRICS`.
    pub metrics: bool,
}

impl Exposure {
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            codec: settings.temporal.codec_on_public_listener,
            metrics: settings.server.public_metrics,
        }
    }
}

/// Whether `path` is the path of a route of one of `modules`.
fn in_modules(path: &str, modules: &[&str]) -> bool {
    ROUTES
        .iter()
        .any(|r| r.path == path && modules.contains(&r.module()))
}

impl Listener {
    /// Whether this listener serves the route at `path` (as routed, i.e.
    /// percent-decoded).
    pub fn serves(self, path: &str, public: Exposure) -> bool {
        match self {
            Listener::Admin => in_modules(path, &ADMIN_MODULES) || ADMIN_PATHS.contains(&path),
            Listener::Public if in_modules(path, &["codec"]) => public.codec,
            Listener::Public if in_modules(path, &["metrics"]) => public.metrics,
            Listener::Public => true,
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
    let public = req
        .app_data::<aw::Data<AppState>>()
        .map(|s| Exposure::of(&s.settings))
        .unwrap_or_default();
    // The path as routed (percent-decoded), not as sent: `/%63odec/decode`
    // reaches the codec too.
    if listener.serves(req.match_info().as_str(), public) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let response = ApiError::from(ErrorCode::NotFound).error_response();
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTHING: Exposure = Exposure {
        codec: false,
        metrics: false,
    };
    const EVERYTHING: Exposure = Exposure {
        codec: true,
        metrics: true,
    };

    #[test]
    fn the_admin_listener_serves_the_codec_metrics_config_and_the_probes_only() {
        for path in [
            "/codec/decode",
            "/codec/encode",
            "/health",
            "/livez",
            "/readyz",
            "/metrics",
            "/api/config",
        ] {
            assert!(Listener::Admin.serves(path, NOTHING), "{path}");
        }
        for path in [
            "/",
            "/api/flights",
            "/api/orders",
            "/api/docs",
            "/api/ops/session",
            "/codec/x",
        ] {
            assert!(!Listener::Admin.serves(path, NOTHING), "{path}");
            assert!(!Listener::Admin.serves(path, EVERYTHING), "{path}");
        }
    }

    #[test]
    fn the_public_listener_serves_the_codec_and_metrics_only_when_told_to() {
        for path in ["/codec/decode", "/codec/encode", "/metrics"] {
            assert!(!Listener::Public.serves(path, NOTHING), "{path}");
            assert!(Listener::Public.serves(path, EVERYTHING), "{path}");
        }
        let metrics_only = Exposure {
            metrics: true,
            codec: false,
        };
        assert!(Listener::Public.serves("/metrics", metrics_only));
        assert!(!Listener::Public.serves("/codec/decode", metrics_only));
        for path in ["/", "/api/flights", "/health", "/api/config"] {
            assert!(Listener::Public.serves(path, NOTHING), "{path}");
        }
    }

    #[test]
    fn admin_routes_are_matched_by_path_so_they_have_no_parameters() {
        let admin: Vec<_> = ROUTES
            .iter()
            .filter(|r| ADMIN_MODULES.contains(&r.module()) || ADMIN_PATHS.contains(&r.path))
            .collect();
        assert!(admin.len() >= 7, "{admin:?}");
        for route in admin {
            assert!(!route.path.contains('{'), "{route:?}");
        }
        for route in ROUTES.iter().filter(|r| r.module() == "codec") {
            assert!(route.path.starts_with("/codec/"), "{route:?}");
        }
    }
}
