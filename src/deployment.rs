//! Worker Versioning: every `flightctl worker` is a version (deployment
//! name + build id) of one Temporal worker deployment, and every workflow is
//! Pinned to the version it started on. A new build is rolled out by
//! starting its workers and making it current (`flightctl deployment
//! set-current`); bookings started before finish on the old build, which
//! drains (a booking lives at most `HOLD_MAX_LIFETIME` + payment window:
//! however often its seats change, its hold ends by its creation plus the
//! lifetime) and is retired
//! once Temporal reports it drained (`flightctl deployment drained`).
//! So the workflow code has one path: no `ctx.patched` branches.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::deployment::v1::{
    WorkerDeploymentVersion as VersionRef, WorkerDeploymentVersionInfo,
};
use temporalio_common::protos::temporal::api::enums::v1::{
    VersionDrainageStatus, WorkerDeploymentVersionStatus as Status,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkerDeploymentRequest, DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
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

/// Where a version stands on its way out, as Temporal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drainage {
    /// Temporal knows no such version (no worker of it ever polled).
    Unknown,
    /// Created by its pollers but never current: no booking was routed to it.
    Inactive,
    /// Current or ramping: new bookings start on it.
    Active,
    /// No longer current, and bookings pinned to it may still run (or
    /// Temporal has not looked since: it checks periodically).
    Draining,
    /// No open booking is pinned to it: its workers can be removed.
    Drained,
}

impl Drainage {
    pub fn as_str(self) -> &'static str {
        match self {
            Drainage::Unknown => "UNKNOWN",
            Drainage::Inactive => "INACTIVE",
            Drainage::Active => "ACTIVE",
            Drainage::Draining => "DRAINING",
            Drainage::Drained => "DRAINED",
        }
    }
}

/// A version's drainage and when Temporal last looked for pinned bookings
/// (`None` until it has, and while the version is current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionDrainage {
    pub drainage: Drainage,
    pub last_checked: Option<SystemTime>,
}

/// Ask Temporal where `build_id` of `deployment` stands
/// (DescribeWorkerDeploymentVersion).
pub async fn drainage(
    client: &Client,
    deployment: &str,
    build_id: &str,
) -> anyhow::Result<VersionDrainage> {
    let request = DescribeWorkerDeploymentVersionRequest {
        namespace: client.namespace(),
        deployment_version: Some(VersionRef {
            deployment_name: deployment.to_string(),
            build_id: build_id.to_string(),
        }),
        ..Default::default()
    };
    let described = client
        .connection()
        .clone()
        .describe_worker_deployment_version(request.into_request())
        .await;
    match described {
        Ok(resp) => Ok(resp
            .into_inner()
            .worker_deployment_version_info
            .map_or(UNKNOWN, |info| version_drainage(&info))),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(UNKNOWN),
        Err(status) => Err(status).context("describing the worker deployment version"),
    }
}

const UNKNOWN: VersionDrainage = VersionDrainage {
    drainage: Drainage::Unknown,
    last_checked: None,
};

fn version_drainage(info: &WorkerDeploymentVersionInfo) -> VersionDrainage {
    let drainage_info = info.drainage_info.as_ref();
    let last_checked = drainage_info
        .and_then(|d| d.last_checked_time.as_ref())
        .and_then(|t| {
            let nanos = u32::try_from(t.nanos).ok()?;
            let since_epoch = Duration::new(u64::try_from(t.seconds).ok()?, nanos);
            SystemTime::UNIX_EPOCH.checked_add(since_epoch)
        });
    let drainage = match Status::try_from(info.status).unwrap_or(Status::Unspecified) {
        Status::Current | Status::Ramping => Drainage::Active,
        Status::Inactive | Status::Created => Drainage::Inactive,
        Status::Draining => Drainage::Draining,
        Status::Drained => Drainage::Drained,
        // A server without the version status: its drainage info alone.
        Status::Unspecified => match drainage_info.map(|d| d.status()) {
            Some(VersionDrainageStatus::Drained) => Drainage::Drained,
            Some(VersionDrainageStatus::Draining) => Drainage::Draining,
            _ => Drainage::Unknown,
        },
    };
    VersionDrainage {
        drainage,
        last_checked,
    }
}

/// Ask until `build_id` is drained or `wait` has passed (Temporal refreshes
/// a draining version's status every few minutes by default); the last answer.
pub async fn wait_drained(
    client: &Client,
    deployment: &str,
    build_id: &str,
    wait: Duration,
) -> anyhow::Result<VersionDrainage> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let seen = drainage(client, deployment, build_id).await?;
        if seen.drainage == Drainage::Drained || tokio::time::Instant::now() >= until {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_secs(1).min(wait)).await;
    }
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::deployment::v1::VersionDrainageInfo;

    use super::*;

    fn info(
        status: Status,
        drainage: Option<VersionDrainageStatus>,
    ) -> WorkerDeploymentVersionInfo {
        WorkerDeploymentVersionInfo {
            status: status as i32,
            drainage_info: drainage.map(|d| VersionDrainageInfo {
                status: d as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_drained_version_reads_drained() {
        use VersionDrainageStatus as D;
        let cases = [
            (info(Status::Current, None), Drainage::Active),
            (info(Status::Ramping, None), Drainage::Active),
            (info(Status::Created, None), Drainage::Inactive),
            (info(Status::Inactive, None), Drainage::Inactive),
            (
                info(Status::Draining, Some(D::Draining)),
                Drainage::Draining,
            ),
            (info(Status::Drained, Some(D::Drained)), Drainage::Drained),
            // A server that reports drainage info but no version status.
            (
                info(Status::Unspecified, Some(D::Draining)),
                Drainage::Draining,
            ),
            (
                info(Status::Unspecified, Some(D::Drained)),
                Drainage::Drained,
            ),
            (info(Status::Unspecified, None), Drainage::Unknown),
        ];
        for (info, want) in cases {
            assert_eq!(version_drainage(&info).drainage, want, "{info:?}");
        }
    }
}
