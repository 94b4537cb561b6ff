//! `GET /health`: each dependency checked with a short timeout.

use std::future::Future;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use temporalio_common::protos::grpc::health::v1::HealthCheckRequest;

use super::AppState;
use crate::store;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Health {
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
struct Checks {
    postgres: String,
    redis: String,
    temporal: String,
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

async fn temporal(state: &AppState) -> Result<(), String> {
    let client = state.temporal().await.map_err(|e| e.message)?;
    let mut health = client.connection().health_service();
    health
        .check(tonic::Request::new(HealthCheckRequest::default()))
        .await
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (pg, redis, temporal) = tokio::join!(
        check("postgres", store::check_postgres(&state.pool)),
        check("redis", store::check_redis(state.holds.client())),
        check("temporal", temporal(&state)),
    );
    let healthy = pg.is_ok() && redis.is_ok() && temporal.is_ok();
    let show = |r: Result<(), String>| r.err().unwrap_or_else(|| "ok".into());
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        checks: Checks {
            postgres: show(pg),
            redis: show(redis),
            temporal: show(temporal),
        },
    };
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
