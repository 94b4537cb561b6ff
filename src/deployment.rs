//! Worker Versioning: every `flightctl worker` is a version (deployment
//! name + build id) of one Temporal worker deployment, and every workflow is
//! Pinned to the version it started on. A new build is rolled out by
//! starting its workers and making it current (`flightctl deployment
//! set-current`); bookings started before finish on the old build, which
//! drains (a booking lives at most hold + payment window) and is retired.
//! So the workflow code has one path: no `ctx.patched` branches.

use std::time::Duration;

use anyhow::Context;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkerDeploymentRequest, SetWorkerDeploymentCurrentVersionRequest,
};
use temporalio_common::worker::{
    VersioningBehavior, WorkerDeploymentOptions, WorkerDeploymentVersion,
};
use tonic::IntoRequest;

use crate::config::WorkerSettings;

/// The worker options of this build: versioned, workflows Pinned.
pub fn options(worker: &WorkerSettings) -> WorkerDeploymentOptions {
    let version = WorkerDeploymentVersion::builder()
        .deployment_name(worker.deployment_name.clone())
        .build_id(worker.build_id())
        .build();
    WorkerDeploymentOptions::new(version)
        .use_worker_versioning(true)
        .default_versioning_behavior(VersioningBehavior::Pinned)
        .build()
}

/// The current build id of a deployment (`None`: none is current, or the
/// deployment does not exist yet).
pub async fn current(client: &Client, deployment: &str) -> anyhow::Result<Option<String>> {
    let request = DescribeWorkerDeploymentRequest {
        namespace: client.namespace(),
        deployment_name: deployment.to_string(),
    };
    let described = client
        .connection()
        .clone()
        .describe_worker_deployment(request.into_request())
        .await;
    let info = match described {
        Ok(resp) => resp.into_inner().worker_deployment_info,
        Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
        Err(status) => return Err(status).context("describing the worker deployment"),
    };
    let current = info
        .and_then(|i| i.routing_config)
        .and_then(|r| r.current_deployment_version)
        .map(|v| v.build_id)
        .filter(|id| !id.is_empty());
    Ok(current)
}

/// Make `build_id` the current version of `deployment`, waiting up to
/// `wait` for its workers to poll (Temporal refuses a version it has not
/// seen polling yet).
pub async fn set_current(
    client: &Client,
    deployment: &str,
    build_id: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let request = SetWorkerDeploymentCurrentVersionRequest {
            namespace: client.namespace(),
            deployment_name: deployment.to_string(),
            build_id: build_id.to_string(),
            identity: "flightctl".into(),
            ..Default::default()
        };
        let set = client
            .connection()
            .clone()
            .set_worker_deployment_current_version(request.into_request())
            .await;
        match set {
            Ok(_) => return Ok(()),
            Err(status) if tokio::time::Instant::now() < until => {
                tracing::debug!(error = %status.message(), "version not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => {
                return Err(anyhow::anyhow!(
                    "cannot make build {build_id} current in deployment {deployment}: {}",
                    status.message()
                ));
            }
        }
    }
}
