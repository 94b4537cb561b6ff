//! Health for people and for orchestrators.
//!
//! `GET /readyz` (and `GET /health`, its older name): each dependency checked
//! with a short timeout, and whether a worker polls the booking task queue.
//! `GET /livez`: only that this process answers; no Postgres, Redis or
//! Temporal I/O, so an outage of a dependency never restarts every pod.
//!
//! A failing check says why on the admin listener, in the drivers' words
//! operators need; on the public listener only which check failed (the
//! words are logged), so no driver or Temporal client text reaches a
//! customer.

use std::future::Future;
use std::time::{Duration, SystemTime};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use temporalio_common::protos::grpc::health::v1::HealthCheckRequest;
use temporalio_common::protos::temporal::api::enums::v1::{TaskQueueKind, TaskQueueType};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeTaskQueueRequest;

use super::AppState;
use super::listener::Listener;
use crate::store::{self, StoreError};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A worker counts as polling if Temporal saw it poll this recently: a long
/// poll lasts up to about a minute, so a live worker is always within it.
const WORKER_SEEN_WITHIN: Duration = Duration::from_secs(90);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when every check is `ok`, else `unavailable`.
    #[schema(value_type = HealthStatus)]
    status: &'static str,
    checks: Checks,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// Each check: `ok`, or why it failed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    postgres: String,
    redis: String,
    temporal: String,
    worker: String,
}

async fn check<F, E>(name: &str, fut: F) -> Result<(), String>
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{name} unavailable: {e}")),
        Err(_) => Err(format!(
            "{name} unavailable: no answer within {CHECK_TIMEOUT:?}"
        )),
    }
}

/// A store check whose failure says its causes too: readiness is read by
/// operators, who need the driver's words.
async fn reported(check: impl Future<Output = Result<(), StoreError>>) -> Result<(), String> {
    check.await.map_err(|e| e.report())
}

async fn temporal(state: &AppState) -> Result<(), String> {
    let client = state.engine.client().await.map_err(|e| e.to_string())?;
    let mut health = client.connection().health_service();
    health
        .check(tonic::Request::new(HealthCheckRequest::default()))
        .await
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

/// Some worker polls the booking task queue: bookings can make progress.
async fn worker(state: &AppState) -> Result<(), String> {
    let client = state.engine.client().await.map_err(|e| e.to_string())?;
    let t = &state.settings.temporal;
    let request = DescribeTaskQueueRequest {
        namespace: t.namespace.clone(),
        task_queue: Some(TaskQueue {
            name: t.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        task_queue_type: TaskQueueType::Workflow as i32,
        ..Default::default()
    };
    let described = client
        .connection()
        .workflow_service()
        .describe_task_queue(tonic::Request::new(request))
        .await
        .map_err(|e| e.message().to_string())?;
    let now = SystemTime::now();
    let polling = described.into_inner().pollers.iter().any(|p| {
        let seen = p
            .last_access_time
            .and_then(|t| SystemTime::try_from(t).ok());
        seen.is_some_and(|seen| now.duration_since(seen).unwrap_or_default() < WORKER_SEEN_WITHIN)
    });
    match polling {
        true => Ok(()),
        false => Err(format!(
            "no worker has polled task queue {} in the last {}s",
            t.task_queue,
            WORKER_SEEN_WITHIN.as_secs()
        )),
    }
}

/// What `/readyz` and `/health` answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum Readiness {
    /// Every check is `ok`
    #[response(status = 200,
        example = json!({"status": "ok", "checks": {"postgres": "ok", "redis": "ok", "temporal": "ok", "worker": "ok"}}))]
    Ready(Health),
    /// A check failed: it says why
    #[response(status = 503)]
    Unavailable(Health),
}

/// What `/livez` answers: the process serves requests.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Live {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/livez",
    tag = "operations",
    summary = "Liveness: the process answers (no dependency is checked)",
    description = "Served on both listeners: the public one and the admin one (`ADMIN_PORT`).",
    responses(
        (status = 200, description = "The process serves requests", body = Live,
         example = json!({"status": "ok"})),
    ),
)]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(Live { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: Postgres, Redis, Temporal, and a worker polling the task queue",
    description = "Served on both listeners: the public one and the admin one (`ADMIN_PORT`). \
A failing check says why on the admin listener; on the public one it names the check only.",
    responses(Readiness)
)]
pub async fn readyz(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    readiness(&state, &req).await
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Postgres, Redis, Temporal, and a worker polling the task queue (as `/readyz`)",
    description = "The older name of `/readyz`, kept for the health checks that call it. \
Served on both listeners: the public one and the admin one (`ADMIN_PORT`). A failing check \
says why on the admin listener; on the public one it names the check only.",
    responses(Readiness)
)]
pub async fn health(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    readiness(&state, &req).await
}

async fn readiness(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let public = req.app_data::<Listener>().copied() != Some(Listener::Admin);
    let holds = state.request_holds();
    let (pg, redis, temporal, worker) = tokio::join!(
        check("postgres", reported(store::check_postgres(&state.pool))),
        check("redis", reported(store::check_redis(&holds))),
        check("temporal", temporal(state)),
        check("worker", worker(state)),
    );
    let healthy = pg.is_ok() && redis.is_ok() && temporal.is_ok() && worker.is_ok();
    let show = |name: &str, r: Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(why) if public => {
            tracing::warn!(check = name, %why, "readiness check failed");
            format!("{name} unavailable")
        }
        Err(why) => why,
    };
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        checks: Checks {
            postgres: show("postgres", pg),
            redis: show("redis", redis),
            temporal: show("temporal", temporal),
            worker: show("worker", worker),
        },
    };
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
