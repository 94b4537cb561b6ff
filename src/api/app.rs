//! The kernel of `serve`: both listeners bound with every route of the
//! table, and the run until a signal stops them.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web as aw};

use super::listener::Listener;
use super::live::Live;
use super::routes::routes;
use super::state::AppState;
use super::{codec, errors, headers, listener, metrics, ops, request_id};
use crate::booking::service::Engine;
use crate::config::Settings;
use crate::store::attempts::SignIns;
use crate::store::{self, lookups::Lookups};

/// Both listeners of `serve`, bound, not yet awaited: tests start them on
/// port 0. One `AppState` (pool, Redis, Temporal client, live feeds) serves
/// both; `listener::guard` decides which routes each answers.
pub struct Application {
    port: u16,
    admin: SocketAddr,
    server: Server,
    admin_server: Server,
    live: Live,
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
        let live = Live::start(pool.clone(), holds.clone(), settings.database.pg_config()?);
        let state = aw::Data::new(AppState {
            room: crate::waiting::Room::new(holds.client().clone(), &settings),
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
            sign_ins: SignIns::new(
                holds.client().clone(),
                &settings.redis.key_prefix,
                settings.server.sign_in_window,
                settings.server.sign_in_max_per_address,
                settings.server.sign_in_max_per_name,
            ),
            share: store::fairshare::FairShare::new(
                holds.client().clone(),
                settings.redis.key_prefix.clone(),
            ),
            password_checks: crate::ops::PasswordChecks::new(settings.server.sign_in_checks()),
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
            let signal = crate::shutdown::signal().await;
            tracing::info!(%signal, "stopping: ending event streams, finishing requests in flight");
            live.close();
            tokio::join!(handles.0.stop(true), handles.1.stop(true));
        });
        self.run_until_stopped().await
    }
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
        "admin listener on http://{} for operators: {codec}, /metrics, /api/config, /livez, /readyz",
        app.admin_addr()
    );
    if settings.server.public_metrics {
        tracing::info!("PUBLIC_METRICS=true: /metrics on port {} too", app.port());
    }
    if t.codec_endpoint_enabled && t.codec_token.expose().is_empty() {
        tracing::info!("the codec opens for operators' sessions only (CODEC_TOKEN is not set)");
    }
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
