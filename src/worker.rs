//! `flightctl worker`: polls the task queue for booking workflow and activity
//! tasks until SIGINT/SIGTERM, then drains and exits.

use std::time::Duration;

use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::booking::reconcile::{self, Reconciler, Reconciliation};
use crate::booking::refund::{AfterSale, Refund, Starter};
use crate::booking::service::Engine;
use crate::booking::{Booking, BookingActivities};
use crate::config::Settings;
use crate::mail::Mailer;
use crate::{metrics, store};

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let port = settings.worker.metrics_port;
    let exporter = match metrics::start_worker_exporter(port) {
        Ok(exporter) => exporter,
        // Another worker on this host has the port: serve on a free one
        // rather than refuse to work (give each worker its own port).
        Err(e) if port != 0 => {
            tracing::warn!(
                port,
                error = format!("{e:#}"),
                "worker metrics port unavailable; using a free port instead (set WORKER_METRICS_PORT per worker)"
            );
            metrics::start_worker_exporter(0)
                .map_err(|e| anyhow::anyhow!("cannot serve worker metrics: {e:#}"))?
        }
        Err(e) => anyhow::bail!("cannot serve worker metrics on port {port}: {e:#}"),
    };
    tracing::info!(
        port = exporter.address.port(),
        "worker metrics on http://{}/metrics",
        exporter.address
    );
    let (pool, holds) = store::connect(&settings).await?;
    let client = crate::temporal::connect(
        &settings.temporal,
        "flightctl-worker",
        Duration::from_secs(10),
    )
    .await?;
    let refunds = Starter {
        engine: Engine::connected(
            settings.temporal.clone(),
            settings.server.call_timeout,
            client.clone(),
        ),
        max_attempts: settings.booking.refund_max_attempts,
    };
    let activities = BookingActivities::new(
        pool.clone(),
        holds.clone(),
        settings.booking.payment_failure_rate,
    )
    .refunding(refunds.clone())
    .ticketing(settings.booking.ticket_prefix());
    let mailer = Mailer::new(&settings.mail)?;
    let after_sale = AfterSale::new(pool.clone(), mailer, settings.booking.refund_failure_rate);
    let claim_ttl = settings.server.claim_ttl();
    let reconciler = Reconciler::new(pool, holds, client.clone(), claim_ttl).restarting(refunds);
    let options = WorkerOptions::new(settings.temporal.task_queue.clone())
        .register_workflow::<Booking>()?
        .register_workflow::<Refund>()?
        .register_workflow::<Reconciliation>()?
        .register_activities(activities)
        .register_activities(after_sale)
        .register_activities(reconciler)
        .deployment_options(crate::deployment::options(&settings.worker))
        .build();
    tokio::spawn(keep_schedule(
        client.clone(),
        settings.temporal.task_queue.clone(),
        settings.booking.reconcile_interval,
    ));
    let runtime = Runtime::from_current_tokio(runtime_options(&exporter)?)?;
    let mut worker = Worker::new(&runtime, client, options)?;
    let shutdown = worker.shutdown_handle();
    tracing::info!(
        task_queue = %settings.temporal.task_queue,
        temporal = %settings.temporal.host,
        deployment = %settings.worker.deployment_name,
        build_id = %settings.worker.build_id(),
        "worker polling"
    );
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result?,
        signal = crate::shutdown::signal() => {
            tracing::info!(%signal, "shutting down: stopped polling, finishing in-flight tasks");
            shutdown();
            run.await?;
        }
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// Create or update the reconciliation schedule, retrying with backoff
/// while Temporal refuses (another worker updating it at the same moment).
async fn keep_schedule(client: temporalio_client::Client, task_queue: String, every: Duration) {
    let mut wait = Duration::from_secs(1);
    loop {
        match reconcile::ensure_schedule(&client, &task_queue, every).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?wait, "keeping the reconciliation schedule failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// The Temporal runtime, recording its worker metrics on our exporter's meter.
fn runtime_options(exporter: &metrics::WorkerExporter) -> anyhow::Result<RuntimeOptions> {
    let telemetry = TelemetryOptions::builder()
        .metrics(exporter.meter.clone())
        .build();
    RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(anyhow::Error::msg)
}
