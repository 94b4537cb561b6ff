//! The reconciliation sweep: a workflow a Temporal Schedule starts every
//! `RECONCILE_INTERVAL`, whose one activity repairs what a lost workflow or a
//! lost message can leave behind:
//!
//! 1. an order live in Postgres whose workflow is closed (terminated, timed
//!    out, failed) or gone: its holds are released and its row ends FAILED
//!    with the reason;
//! 2. a hold in Redis whose order has ended, or has no row and no running
//!    workflow: released;
//! 3. a flight whose `available_seats` disagrees with its seats: corrected;
//! 4. a refund pending for over a minute: its workflow is started, should
//!    the API's start have failed (a start that finds it is a no-op); and
//!    an approved payment whose order ended unsold without a refund: its
//!    refund is recorded and started (nothing drops an approved payment);
//! 5. the money ledger is checked against what is sold
//!    (`store::ledger`): nothing is repaired, each order that does not
//!    balance is logged and counted (the report, `flightctl_money_discrepancies`).
//!
//! Each run logs what it fixed and returns it (the workflow's result, so the
//! schedule's recent runs in the Temporal UI show it too). Every step is
//! idempotent; runs never overlap (the schedule skips while one runs).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures::StreamExt;
use prost::{Message, Name};
use serde::{Deserialize, Serialize};
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec,
};
use temporalio_client::{Client, WorkflowDescribeOptions, WorkflowExecutionStatus};
use temporalio_common::RetryPolicy;
use temporalio_common::protos::google::rpc::Status as RpcStatus;
use temporalio_common::protos::temporal::api::errordetails::v1::NotFoundFailure;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

use super::Booking;
use super::refund::Starter;
use super::service::RefundStart;
use crate::domain::{FlightId, OrderId, SeatId};
use crate::store::holds::Holds;
use crate::store::reconcile::{self, Drift};
use crate::store::{StoreError, flights, refunds};

/// Live orders looked at per run; the least recently changed first.
const ORDERS_PER_RUN: i64 = 2_000;
/// Workflows described at once.
const DESCRIBES_AT_ONCE: usize = 8;

/// What one run fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Live orders whose workflow was running or being checked.
    pub orders_checked: u32,
    /// Orders ended FAILED because their workflow was closed or gone.
    pub orders_ended: Vec<OrderId>,
    /// Seat holds released, by order.
    pub holds_released: u32,
    /// Flights whose `available_seats` was corrected.
    pub flights_corrected: Vec<FlightId>,
    /// Orders whose workflow could not be described (left for a later run).
    #[serde(default)]
    pub errors: u32,
    /// Pending refunds whose workflow this run started.
    #[serde(default)]
    pub refunds_started: Vec<OrderId>,
    /// Orders whose approved charges less refunds are not the price of
    /// what they hold sold (step 5).
    #[serde(default)]
    pub money_discrepancies: u32,
    /// Approved payments of unsold orders whose refund this run recorded.
    #[serde(default)]
    pub unsold_refunded: Vec<OrderId>,
}

impl Report {
    fn fixed_anything(&self) -> bool {
        !self.orders_ended.is_empty()
            || self.holds_released > 0
            || !self.flights_corrected.is_empty()
            || !self.refunds_started.is_empty()
            || !self.unsold_refunded.is_empty()
    }
}

/// The sweep's activity: Postgres, Redis and the Temporal client.
pub struct Reconciler {
    pool: Pool,
    holds: Holds,
    temporal: Client,
    /// How long a create's up-front claim lives (`ServerSettings::claim_ttl`).
    claim_ttl: Duration,
    /// How refund workflows are started; none: step 4 is skipped.
    refunds: Option<Starter>,
}

/// Orders that do not balance logged one by one per run; the count says all.
const MONEY_LINES_PER_RUN: usize = 20;

/// A refund pending this long without its workflow is started by the sweep.
const REFUND_START_GRACE: Duration = Duration::from_secs(60);

/// What became of an order's workflow.
enum Run {
    Running,
    /// Closed with this status, or `None`: no such workflow.
    Gone(Option<WorkflowExecutionStatus>),
}

impl Reconciler {
    pub fn new(pool: Pool, holds: Holds, temporal: Client, claim_ttl: Duration) -> Self {
        Self {
            pool,
            holds,
            temporal,
            claim_ttl,
            refunds: None,
        }
    }

    /// Also start the workflows of pending refunds (step 4).
    pub fn restarting(mut self, refunds: Starter) -> Self {
        self.refunds = Some(refunds);
        self
    }

    /// Step 4: every approved payment of an unsold order has its refund,
    /// and every refund pending for a while has its workflow.
    async fn start_refunds(&self, report: &mut Report) -> anyhow::Result<()> {
        let Some(starter) = &self.refunds else {
            return Ok(());
        };
        let unsold = refunds::request_unsold_ended(&self.pool, ORDERS_PER_RUN).await?;
        for refund in &unsold {
            tracing::warn!(order_id = %refund.order_id, "reconcile: an approved payment sold nothing; refunding it");
            report.unsold_refunded.push(refund.order_id);
        }
        let pending = refunds::pending(&self.pool, REFUND_START_GRACE, ORDERS_PER_RUN).await?;
        for refund in unsold.into_iter().chain(pending) {
            let order_id = refund.order_id;
            match starter.start(order_id, refund.round).await {
                Ok(RefundStart::Started) => {
                    tracing::warn!(order_id = %order_id, "reconcile: started a pending refund's workflow");
                    report.refunds_started.push(order_id);
                }
                Ok(RefundStart::Existing) => {}
                Err(e) => {
                    tracing::warn!(order_id = %order_id, error = %e, "reconcile: cannot start a pending refund; next run");
                    report.errors += 1;
                }
            }
        }
        Ok(())
    }

    /// Step 5: the money ledger against what is sold. Reported, never
    /// repaired here: a wrong figure needs a person (or the refund of a
    /// payment without a sale) to put it right.
    async fn check_money(&self, report: &mut Report) -> anyhow::Result<()> {
        let money = crate::store::ledger::check(&self.pool).await?;
        let off = &money.discrepancies;
        for d in off.iter().take(MONEY_LINES_PER_RUN) {
            tracing::warn!(order_id = %d.order_id, status = d.status.map(|s| s.as_str()), charged_cents = d.charged.get(), refunded_cents = d.refunded.get(), sold_cents = d.sold.get(), problem = %d.problem, "reconcile: an order's money does not balance");
        }
        if !off.is_empty() {
            tracing::warn!(
                discrepancies = off.len(),
                charged_cents = money.charged.get(),
                refunded_cents = money.refunded.get(),
                sold_cents = money.sold.get(),
                "reconcile: money discrepancies"
            );
        }
        report.money_discrepancies = off.len() as u32;
        crate::metrics::money_discrepancies(off.len());
        Ok(())
    }

    /// One sweep; each step's failure fails the run (the activity retries).
    pub async fn sweep(&self) -> anyhow::Result<Report> {
        let mut report = Report::default();
        self.end_orphans(&mut report).await?;
        self.release_strays(&mut report).await?;
        let drift = reconcile::correct_availability(&self.pool).await?;
        for Drift {
            flight_id,
            was,
            now,
        } in &drift
        {
            tracing::info!(flight_id = %flight_id, was, now, "reconcile: corrected available_seats");
        }
        report.flights_corrected = drift.into_iter().map(|d| d.flight_id).collect();
        self.start_refunds(&mut report).await?;
        self.check_money(&mut report).await?;
        // The console lists the runs; a run whose record fails still fixed
        // what it fixed.
        let recorded = serde_json::to_value(&report).unwrap_or_default();
        if let Err(e) = crate::store::ops::record_sweep(&self.pool, &recorded).await {
            tracing::warn!(error = %e.report(), "reconcile: the run could not be recorded");
        }
        if report.fixed_anything() {
            tracing::info!(
                orders_checked = report.orders_checked,
                orders_ended = report.orders_ended.len(),
                holds_released = report.holds_released,
                flights_corrected = report.flights_corrected.len(),
                refunds_started = report.refunds_started.len(),
                money_discrepancies = report.money_discrepancies,
                "reconcile: run fixed things"
            );
        } else {
            tracing::debug!(
                orders_checked = report.orders_checked,
                money_discrepancies = report.money_discrepancies,
                "reconcile: nothing to fix"
            );
        }
        Ok(report)
    }

    async fn workflow(&self, workflow_id: &str) -> anyhow::Result<Run> {
        let handle = self.temporal.get_workflow_handle::<Booking>(workflow_id);
        match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(d) => Ok(match d.status() {
                WorkflowExecutionStatus::Running => Run::Running,
                other => Run::Gone(Some(other)),
            }),
            Err(WorkflowInteractionError::NotFound(status)) if workflow_is_missing(&status) => {
                Ok(Run::Gone(None))
            }
            Err(e) => Err(anyhow::anyhow!("describing {workflow_id}: {e}")),
        }
    }

    /// Step 1: live rows whose workflow is not running.
    async fn end_orphans(&self, report: &mut Report) -> anyhow::Result<()> {
        let live = reconcile::live_orders(&self.pool, ORDERS_PER_RUN).await?;
        report.orders_checked = live.len() as u32;
        let runs: Vec<_> = futures::stream::iter(live)
            .map(|order| async move {
                let run = self.workflow(&order.workflow_id).await;
                (order, run)
            })
            .buffer_unordered(DESCRIBES_AT_ONCE)
            .collect()
            .await;
        for (order, run) in runs {
            let closed = match run {
                Ok(Run::Running) => continue,
                Ok(Run::Gone(Some(status))) => format!("{status:?}").to_lowercase(),
                // A row saved moments ago may be ahead of its workflow's
                // visibility: only a quiet one is an orphan.
                Ok(Run::Gone(None)) if order.quiet => "not found".to_string(),
                Ok(Run::Gone(None)) => continue,
                Err(e) => {
                    // One order's trouble does not stop the others' repair.
                    tracing::warn!(order_id = %order.id, error = format!("{e:#}"), "reconcile: cannot tell whether the order's workflow runs; next run");
                    report.errors += 1;
                    continue;
                }
            };
            let released = self
                .release(order.flight_id, order.id, &order.seats)
                .await?;
            report.holds_released += released;
            let reason = format!(
                "the order's workflow is {closed}; ended by reconciliation, its seats released"
            );
            if reconcile::end_orphan(&self.pool, order.id, &reason).await? {
                crate::metrics::order_ended(crate::domain::OrderStatus::Failed);
                tracing::warn!(order_id = %order.id, workflow_id = %order.workflow_id, workflow = %closed, released, "reconcile: ended an order whose workflow is gone");
                report.orders_ended.push(order.id);
            }
        }
        Ok(())
    }

    /// Step 2: holds of ended orders, or of orders with neither a row nor a
    /// running workflow. A create's claim has neither for a moment (the API
    /// claims the seats before it starts the workflow), so an unknown
    /// order's hold is released only if it is still there, still unknown
    /// and still without a workflow once every claim taken before the first
    /// look has lapsed or been adopted.
    async fn release_strays(&self, report: &mut Report) -> anyhow::Result<()> {
        let mut unknown = Vec::new();
        for flight in flights::list(&self.pool).await? {
            for (order, seats, status) in self.holders(flight.id).await? {
                match status {
                    Some(status) if status.is_terminal() => {
                        report.holds_released +=
                            self.release_stray(flight.id, order, &seats).await?;
                    }
                    Some(_) => {}
                    None => unknown.push((flight.id, order, seats)),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(self.claim_ttl).await;
        for (flight, order, seats) in unknown {
            let now = self.holders(flight).await?;
            let Some((_, held, None)) = now.into_iter().find(|(o, _, _)| *o == order) else {
                continue;
            };
            let held: Vec<SeatId> = held.into_iter().filter(|s| seats.contains(s)).collect();
            match self.workflow(&crate::domain::workflow_id(order)).await {
                Ok(Run::Gone(_)) => {
                    report.holds_released += self.release_stray(flight, order, &held).await?;
                }
                Ok(Run::Running) => {}
                Err(e) => {
                    tracing::warn!(order_id = %order, error = format!("{e:#}"), "reconcile: cannot tell whether the order's workflow runs; next run");
                    report.errors += 1;
                }
            }
        }
        Ok(())
    }

    /// A flight's holds by order, with each order's status (none: no row).
    #[allow(clippy::type_complexity)]
    async fn holders(
        &self,
        flight: FlightId,
    ) -> anyhow::Result<Vec<(OrderId, Vec<SeatId>, Option<crate::domain::OrderStatus>)>> {
        let mut by_order: BTreeMap<OrderId, Vec<SeatId>> = BTreeMap::new();
        for (seat, order) in self.holds.list(flight).await? {
            by_order.entry(order).or_default().push(seat);
        }
        if by_order.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<OrderId> = by_order.keys().copied().collect();
        let statuses: HashMap<_, _> = reconcile::statuses(&self.pool, &ids).await?;
        Ok(by_order
            .into_iter()
            .map(|(order, seats)| {
                let status = statuses.get(&order).copied();
                (order, seats, status)
            })
            .collect())
    }

    async fn release_stray(
        &self,
        flight: FlightId,
        order: OrderId,
        seats: &[SeatId],
    ) -> anyhow::Result<u32> {
        let released = self.release(flight, order, seats).await?;
        if released > 0 {
            tracing::warn!(order_id = %order, flight_id = %flight, seats = ?seats, "reconcile: released holds of an ended or unknown order");
        }
        Ok(released)
    }

    async fn release(
        &self,
        flight: FlightId,
        order: OrderId,
        seats: &[SeatId],
    ) -> Result<u32, StoreError> {
        let released = self.holds.release(flight, order, seats).await?;
        // Best effort: seat maps re-read every few seconds anyway.
        if released > 0
            && let Err(e) = flights::announce(&self.pool, flight).await
        {
            tracing::warn!(error = %e.report(), flight_id = %flight, "reconcile: announcing released seats failed");
        }
        Ok(released)
    }
}

/// Whether a NotFound answer says the workflow does not exist: Temporal
/// then details it with a `NotFoundFailure`. A namespace that is not found
/// (a Temporal restart, a cache miss) is NotFound too, with a
/// `NamespaceNotFoundFailure`, and says nothing about the order; nor does a
/// NotFound without a detail (from a proxy): errors, not "gone".
fn workflow_is_missing(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::NotFound
        && detail_type(status).is_some_and(|name| name == NotFoundFailure::full_name())
}

/// The full protobuf name of a gRPC error's first typed detail.
fn detail_type(status: &tonic::Status) -> Option<String> {
    let details = RpcStatus::decode(status.details()).ok()?;
    let type_url = &details.details.first()?.type_url;
    type_url.rsplit('/').next().map(str::to_string)
}

#[activities]
impl Reconciler {
    /// One reconciliation sweep.
    #[activity]
    pub async fn reconcile(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<Report, ActivityError> {
        self.sweep().await.map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "reconcile: run failed");
            ActivityError::from(e)
        })
    }
}

/// The workflow each scheduled run starts: the sweep, as one activity.
#[workflow]
#[derive(Default)]
pub struct Reconciliation;

#[workflow_methods]
impl Reconciliation {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, _input: ()) -> WorkflowResult<Report> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_secs(1))
                    .maximum_attempts(3)
                    .build(),
            )
            .build();
        Ok(ctx
            .execute_activity(Reconciler::reconcile, (), opts)
            .await?)
    }
}

/// The schedule's id: one per task queue, so stacks sharing a Temporal
/// namespace keep theirs apart.
pub fn schedule_id(task_queue: &str) -> String {
    format!("flightctl-reconcile-{task_queue}")
}

/// Create the reconciliation schedule, or bring an existing one to `every`
/// (idempotent: every worker does it at start). `every` zero deletes it.
pub async fn ensure_schedule(
    client: &Client,
    task_queue: &str,
    every: Duration,
) -> anyhow::Result<()> {
    let id = schedule_id(task_queue);
    let handle = client.get_schedule_handle(id.clone());
    if every.is_zero() {
        return match handle.delete(Default::default()).await {
            Ok(()) => {
                tracing::info!(schedule = %id, "reconciliation off: schedule deleted");
                Ok(())
            }
            Err(ScheduleError::Rpc(s)) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let action = ScheduleAction::start_workflow(
        Reconciliation::run,
        (),
        task_queue,
        format!("reconcile-{task_queue}"),
    );
    let spec = ScheduleSpec::from_interval(every);
    let options = CreateScheduleOptions::builder()
        .action(action.clone())
        .spec(spec.clone())
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note("flightctl reconciliation sweep; kept by `flightctl worker`")
        .build();
    match client.create_schedule(id.clone(), options).await {
        Ok(_) => {
            tracing::info!(schedule = %id, every = %humantime::format_duration(every), "reconciliation schedule created")
        }
        Err(ScheduleError::Rpc(s)) if s.code() == tonic::Code::AlreadyExists => {
            handle
                .update(
                    move |u| {
                        u.set_spec(spec)
                            .set_action(action)
                            .set_overlap_policy(ScheduleOverlapPolicy::Skip);
                    },
                    Default::default(),
                )
                .await?;
            tracing::info!(schedule = %id, every = %humantime::format_duration(every), "reconciliation schedule updated");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::errordetails::v1::NamespaceNotFoundFailure;
    use temporalio_common::protos::utilities::{encode_status_details, pack_any};

    use super::*;

    /// A NotFound as the Temporal server sends it: its typed detail first.
    fn not_found<T: Name>(message: &str, detail: &T) -> tonic::Status {
        let any = pack_any(format!("type.googleapis.com/{}", T::full_name()), detail).unwrap();
        let details = encode_status_details(&RpcStatus {
            code: tonic::Code::NotFound as i32,
            message: message.into(),
            details: vec![any],
        });
        tonic::Status::with_details(tonic::Code::NotFound, message, details.into())
    }

    #[test]
    fn a_missing_workflow_is_told_by_its_detail_not_its_words() {
        let gone = not_found(
            "workflow not found for namespace default",
            &NotFoundFailure::default(),
        );
        assert!(workflow_is_missing(&gone));
    }

    #[test]
    fn a_missing_namespace_is_never_a_missing_workflow() {
        let detail = NamespaceNotFoundFailure {
            namespace: "default".into(),
        };
        for message in ["Namespace default is not found.", "not found", ""] {
            assert!(
                !workflow_is_missing(&not_found(message, &detail)),
                "{message:?}"
            );
        }
    }

    #[test]
    fn a_not_found_without_a_detail_says_nothing() {
        let bare = tonic::Status::not_found("workflow not found");
        assert!(
            !workflow_is_missing(&bare),
            "a proxy's answer, not Temporal's"
        );
    }
}
