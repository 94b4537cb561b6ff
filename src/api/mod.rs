//! `flightctl serve`: the HTTP API and the embedded web UI (actix-web).
//! Handlers are thin: parse at the edge, call the store or the workflow,
//! map errors once (`errors`).

mod bodies;
mod bookings;
mod codec;
mod errors;
mod events;
mod flights;
mod headers;
mod health;
mod idempotency;
mod listener;
mod live;
mod metrics;
mod openapi;
pub mod ops;
mod orders;
mod request_id;
mod sse;
mod web;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web as aw};
use deadpool_postgres::Pool;

pub use errors::ApiError;
pub use openapi::document as openapi_document;

use listener::Listener;

use crate::booking::service::Engine;
use crate::config::{Settings, TrustedProxies};
use crate::store::lookups::Lookups;
use crate::store::{self, Holds};

/// Shared by every request.
pub struct AppState {
    pub settings: Settings,
    pub pool: Pool,
    pub holds: Holds,
    pub live: live::Live,
    admission: crate::orders::Admission,
    codec: codec::Codec,
    /// The booking engine: the order workflows, through Temporal.
    pub engine: Engine,
    /// Failed booking look-ups per client.
    pub lookups: Lookups,
    /// Failed operator sign-ins per name.
    pub sign_ins: Lookups,
    /// The load balancers whose `X-Forwarded-For` names the client.
    proxies: TrustedProxies,
}

impl AppState {
    /// The Temporal client, connecting on first use so the API starts (and
    /// serves flights) while Temporal is still coming up.
    pub async fn temporal(&self) -> Result<&temporalio_client::Client, ApiError> {
        self.engine
            .client()
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))
    }

    /// The client's address: the peer, or behind a trusted load balancer
    /// the address it forwarded (`TRUSTED_PROXIES`).
    pub fn client_address(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        let peer = req.peer_addr()?.ip();
        let forwarded = req.headers().get_all("x-forwarded-for");
        Some(
            self.proxies
                .client(peer, forwarded.filter_map(|v| v.to_str().ok())),
        )
    }
}

/// Both listeners of `serve`, bound, not yet awaited: tests start them on
/// port 0. One `AppState` (pool, Redis, Temporal client, live feeds) serves
/// both; `listener::guard` decides which routes each answers.
pub struct Application {
    port: u16,
    admin: SocketAddr,
    server: Server,
    admin_server: Server,
    live: live::Live,
}

/// Bind `host:port`, naming the address and the setting when it fails.
fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let address = format!("{host}:{port}");
    TcpListener::bind(&address)
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} ({what}): {e}"))
}

/// An HTTP server on `tcp` with every route of the table, answering those
/// `listener` serves.
fn server(
    state: aw::Data<AppState>,
    listener: Listener,
    tcp: TcpListener,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(listener)
            .app_data(
                aw::QueryConfig::default().error_handler(|e, _| errors::query_error(e).into()),
            )
            .app_data(
                aw::JsonConfig::default()
                    .limit(16 * 1024)
                    .error_handler(|e, _| errors::json_error(e).into()),
            )
            // The last wrapped runs first: metrics see every answer, then
            // every answer gets its security headers (a HEAD its body
            // dropped) and its request id, the listener's, the codec
            // guard's and the console's session guard's too; a route this
            // listener does not serve reaches neither of those guards.
            .wrap(actix_web::middleware::from_fn(ops::guard))
            .wrap(actix_web::middleware::from_fn(codec::cors))
            .wrap(actix_web::middleware::from_fn(listener::guard))
            .wrap(actix_web::middleware::from_fn(request_id::assign))
            .wrap(actix_web::middleware::from_fn(headers::secure))
            .wrap(actix_web::middleware::from_fn(metrics::track))
            .configure(routes)
            .default_service(aw::to(errors::not_found))
    })
    .shutdown_timeout(10)
    // `serve` handles SIGINT/SIGTERM itself: streams end first.
    .disable_signals();
    // Operators' traffic: one worker thread is plenty.
    let server = match listener {
        Listener::Public => server,
        Listener::Admin => server.workers(1),
    };
    Ok(server.listen(tcp)?.run())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (pool, holds) = store::connect(&settings).await?;
        let s = &settings.server;
        let public = bind(&s.host, s.port, "SERVER_HOST:SERVER_PORT")?;
        let admin = bind(&s.admin_host, s.admin_port, "ADMIN_HOST:ADMIN_PORT")?;
        let port = public.local_addr()?.port();
        let admin_addr = admin.local_addr()?;
        tokio::spawn(crate::orders::idempotency::purge_expired(
            pool.clone(),
            settings.server.idempotency_ttl,
        ));
        let live = live::Live::start(pool.clone(), holds.clone(), settings.database.pg_config()?);
        let state = aw::Data::new(AppState {
            live: live.clone(),
            admission: crate::orders::Admission::new(settings.server.max_in_flight),
            codec: codec::Codec::new(&settings.temporal)?,
            engine: Engine::new(settings.temporal.clone(), settings.server.call_timeout),
            lookups: Lookups::new(
                holds.client().clone(),
                &settings.redis.key_prefix,
                settings.booking.lookup_max_failures,
                settings.booking.lookup_window,
            ),
            sign_ins: Lookups::new(
                holds.client().clone(),
                &format!("{}:ops", settings.redis.key_prefix),
                ops::SIGN_IN_FAILURES,
                ops::SIGN_IN_WINDOW,
            ),
            proxies: settings.server.trusted_proxies()?,
            settings,
            pool,
            holds,
        });
        Ok(Self {
            port,
            admin: admin_addr,
            server: server(state.clone(), Listener::Public, public)?,
            admin_server: server(state, Listener::Admin, admin)?,
            live,
        })
    }

    /// The public listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin listener's port.
    pub fn admin_port(&self) -> u16 {
        self.admin.port()
    }

    /// The admin listener's address, as bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Run both listeners until both stop; the first error ends it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tokio::try_join!(self.server, self.admin_server).map(|_| ())
    }

    /// Run until SIGINT or SIGTERM, then end the event streams and stop both
    /// listeners gracefully: requests in flight finish (up to 10 s), no new
    /// ones.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handles = (self.server.handle(), self.admin_server.handle());
        let live = self.live.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stopping: ending event streams, finishing requests in flight");
            live.close();
            tokio::join!(handles.0.stop(true), handles.1.stop(true));
        });
        self.run_until_stopped().await
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A route `serve` registers.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// Lower case, as in the OpenAPI document: `get`, `post`, ...
    pub method: &'static str,
    /// As actix matches it, which is as OpenAPI writes it: `/api/orders/{id}`.
    pub path: &'static str,
    /// `<module>_<handler>`: unique, and what links in the document name.
    pub operation_id: &'static str,
}

impl Route {
    /// The handler's module: `codec` of `codec_decode`.
    pub fn module(&self) -> &'static str {
        self.operation_id
            .split_once('_')
            .map_or(self.operation_id, |(module, _)| module)
    }
}

/// The actix route of one method of the route table: GET is GET or HEAD.
macro_rules! on {
    (get) => {
        aw::route()
            .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
    };
    ($method:ident) => {
        aw::$method()
    };
}

/// The route table: every route `serve` has, registered (`routes`) and
/// documented (`RouteDocs`, each handler's `#[utoipa::path]`) from this one
/// list, so no route can be served without being in the OpenAPI document.
/// Every GET route answers HEAD too, with the same handler (`on!`; the
/// document says so once, `headers::secure` drops a streamed body). A
/// path's other methods answer 405 with `Allow`. `ROUTES` is what
/// `tests/openapi.rs` checks the document against.
macro_rules! route_table {
    ($($path:literal => [$($method:ident $module:ident::$handler:ident),+ $(,)?]),* $(,)?) => {
        fn routes(cfg: &mut aw::ServiceConfig) {
            $(cfg.service(
                aw::resource($path)
                    $(.route(on!($method).to($module::$handler)))+
                    .default_service(aw::to(|| async {
                        errors::method_not_allowed(&[$(stringify!($method)),+])
                    })),
            );)*
        }

        /// Every registered route, in registration order.
        pub const ROUTES: &[Route] = &[$($(Route {
            method: stringify!($method),
            path: $path,
            operation_id: concat!(stringify!($module), "_", stringify!($handler)),
        }),+),*];

        /// The operations of the route table, from the handlers' annotations.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($($module::$handler),+),*))]
        struct RouteDocs;
    };
}

route_table! {
    "/health" => [get health::health],
    "/livez" => [get health::livez],
    "/readyz" => [get health::readyz],
    "/metrics" => [get metrics::render],
    "/api/config" => [get web::client_config],
    "/api/openapi.json" => [get openapi::document_json],
    "/api/docs" => [get openapi::docs],
    "/api/flights" => [get flights::list],
    "/api/events" => [get events::page],
    "/api/flights/events" => [get flights::list_events],
    "/api/flights/{id}" => [get flights::show],
    "/api/flights/{id}/events" => [get flights::events],
    "/api/orders" => [post orders::create],
    "/api/orders/{id}" => [get orders::show, delete orders::cancel],
    "/api/orders/{id}/seats" => [put orders::change_seats],
    "/api/orders/{id}/status" => [get orders::status],
    "/api/orders/{id}/passengers" => [put orders::set_passengers],
    "/api/orders/{id}/pay" => [post orders::pay],
    "/api/orders/{id}/events" => [get orders::events],
    "/api/bookings/{reference}" => [get bookings::show],
    "/api/bookings/{reference}/cancel" => [post bookings::cancel],
    "/api/ops/session" => [post ops::sign_in, get ops::session, delete ops::sign_out],
    "/api/ops/flights" => [get ops::flights, post ops::add_flight],
    "/api/ops/flights/events" => [get ops::flights_events],
    "/api/ops/flights/{id}/sales" => [post ops::sales],
    "/api/ops/orders" => [get ops::orders_list],
    "/api/ops/orders/{id}" => [get ops::order],
    "/api/ops/orders/{id}/cancel" => [post ops::cancel_order],
    "/api/ops/bookings/{reference}/refund" => [post ops::refund_booking],
    "/api/ops/reconciliation" => [get ops::reconciliation],
    "/api/ops/audit" => [get ops::audit],
    "/codec/encode" => [post codec::encode],
    "/codec/decode" => [post codec::decode],
    "/" => [get web::index],
    "/manage" => [get web::manage],
    "/ops" => [get web::ops],
    "/assets/{file}" => [get web::asset],
}

/// `flightctl serve`: run until SIGINT/SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone()).await?;
    tracing::info!(
        "serving on http://{}:{} (web UI at /)",
        settings.server.host,
        app.port()
    );
    let t = &settings.temporal;
    let codec = match (t.codec_endpoint_enabled, t.codec_on_public_listener) {
        (false, _) => "no codec (CODEC_ENDPOINT_ENABLED=false)",
        (true, false) => "the codec at /codec",
        (true, true) => "the codec at /codec (also on the public listener)",
    };
    tracing::info!(
        "admin listener on http://{} for operators: {codec}, /livez, /readyz",
        app.admin_addr()
    );
    if t.codec_endpoint_enabled && t.codec_on_public_listener {
        tracing::warn!(
            "CODEC_ON_PUBLIC_LISTENER=true: whoever reaches port {} can decrypt Temporal payloads",
            app.port()
        );
    }
    app.run_until_signalled().await?;
    tracing::info!("server stopped");
    Ok(())
}
