//! What every request shares: the settings, the stores, the booking engine
//! and the limits, in one `AppState`.

use deadpool_postgres::Pool;

use super::codec::Codec;
use super::live::Live;
use crate::api::ApiError;
use crate::booking::service::Engine;
use crate::config::Settings;
use crate::ops::PasswordChecks;
use crate::orders::Admission;
use crate::store::Holds;
use crate::store::attempts::SignIns;
use crate::store::fairshare::{ClientKey, FairShare};
use crate::store::lookups::Lookups;

/// Shared by every request.
pub struct AppState {
    pub settings: Settings,
    pub pool: Pool,
    pub holds: Holds,
    pub live: Live,
    pub(super) admission: Admission,
    pub(super) codec: Codec,
    /// The booking engine: the order workflows, through Temporal.
    pub engine: Engine,
    /// Failed booking look-ups per client.
    pub lookups: Lookups,
    /// Failed operator sign-ins per client address, and per name from it.
    pub sign_ins: SignIns,
    /// The password checks this process runs at once (sign-in).
    pub password_checks: PasswordChecks,
    /// Each client's booking calls in flight, live orders and open event
    /// streams, across every `serve`.
    pub share: FairShare,
    /// The flights' waiting rooms (their queues in Redis, shared by every
    /// `serve`).
    pub room: crate::waiting::Room,
}

impl AppState {
    /// The seat holds for one request: each Redis call bounded by the
    /// request's deadline (`API_CALL_TIMEOUT` from now), and refused while
    /// the Redis client is reconnecting (past a short grace), so a store
    /// that is gone is a 503 in time, never a wait.
    pub fn request_holds(&self) -> Holds {
        let due = std::time::Instant::now() + self.settings.server.call_timeout;
        self.holds.until(due)
    }

    /// The per-client counts for one request, bounded by its deadline as
    /// the holds are.
    pub fn request_share(&self) -> FairShare {
        let due = std::time::Instant::now() + self.settings.server.call_timeout;
        self.share.until(due)
    }

    /// The client a request counts against: its address (see
    /// [`AppState::client_address`]).
    pub fn client_key(&self, req: &actix_web::HttpRequest) -> ClientKey {
        ClientKey::of(self.client_address(req))
    }

    /// The Temporal client, connecting on first use so the API starts (and
    /// serves flights) while Temporal is still coming up.
    pub async fn temporal(&self) -> Result<&temporalio_client::Client, ApiError> {
        self.engine.client().await.map_err(|e| {
            ApiError::dependency_down("the booking service is unavailable; try again shortly", &e)
        })
    }

    /// The client's address: the peer, or behind a trusted load balancer
    /// the address it forwarded (`TRUSTED_PROXIES`).
    pub fn client_address(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        let peer = req.peer_addr()?.ip();
        let forwarded = req.headers().get_all("x-forwarded-for");
        Some(
            self.settings
                .server
                .trusted_proxies
                .client(peer, forwarded.filter_map(|v| v.to_str().ok())),
        )
    }
}
