//! What the API (and the sweep) call to talk to the workflows: start an
//! order's with its creating selection, change seats, pay, cancel; start a
//! booking's refund. Every order call carries a deadline the workflow
//! enforces where it commits, and waits for the answer until that deadline
//! plus a grace period; an answer that does not come by then is
//! [`CallError::Unknown`], and one lost on the way back is
//! [`CallError::Lost`], never "nothing happened".

use std::time::Duration;

use temporalio_client::errors::{
    WorkflowStartError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowHandle, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowStartOptions, WorkflowUpdateWithStartOptions,
};
use tokio::sync::OnceCell;

use super::Booking;
use super::messages::{
    Answer, BookingInput, Cancel, Deadline, Held, Pay, SelectSeats, SetPassengers,
};
use super::refund::{Refund, RefundInput, refund_workflow_id};
use crate::config::TemporalSettings;
use crate::domain::{OrderId, OrderStatus, workflow_id};
use crate::time::now_ms;

/// After a call's deadline, how long an answer the workflow decided before
/// it may still take to arrive.
pub const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// How long a refund's start may take: the refund is recorded before, so a
/// start given up on is only late (the sweep starts it).
pub const REFUND_START_WAIT: Duration = Duration::from_secs(5);

/// Whether a refund's start started its workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundStart {
    /// Started now.
    Started,
    /// The booking has its refund workflow already (running or ended).
    Existing,
}

/// Why a call got no answer from the workflow.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer by the deadline (plus grace): the workflow decided, or
    /// will refuse as late; the order's status tells which.
    #[error("the booking engine did not answer in time")]
    Unknown,
    /// The order's workflow is not running (it ended, or never started).
    #[error("the order's workflow is not running")]
    NotRunning,
    /// Temporal could not be reached: nothing was sent.
    #[error("temporal unavailable: {0}")]
    Unavailable(String),
    /// The call was sent and its answer never came back (a transport error
    /// after sending, retries included): it may have been done. Once its
    /// deadline has passed, the order's row tells whether it was.
    #[error("the booking engine's answer was lost: {0}")]
    Lost(String),
}

/// The booking engine as the API sees it: the Temporal client (connected on
/// first use, so `serve` starts while Temporal is still coming up) and the
/// timing every call follows. A clone shares the settings and, once
/// connected, the client.
#[derive(Clone)]
pub struct Engine {
    settings: TemporalSettings,
    call_timeout: Duration,
    client: OnceCell<Client>,
}

impl Engine {
    pub fn new(settings: TemporalSettings, call_timeout: Duration) -> Self {
        Self {
            settings,
            call_timeout,
            client: OnceCell::new(),
        }
    }

    /// An engine over a client already connected (the worker's).
    pub fn connected(settings: TemporalSettings, call_timeout: Duration, client: Client) -> Self {
        Self {
            settings,
            call_timeout,
            client: OnceCell::new_with(Some(client)),
        }
    }

    /// The Temporal client, connecting on first use.
    pub async fn client(&self) -> Result<&Client, CallError> {
        self.client
            .get_or_try_init(|| async {
                let connect = crate::temporal::connect(
                    &self.settings,
                    "flightctl-api",
                    Duration::from_secs(3),
                );
                tokio::time::timeout(Duration::from_secs(5), connect)
                    .await
                    .map_err(|_| anyhow::anyhow!("temporal did not answer within 5s"))?
            })
            .await
            .map_err(|e| CallError::Unavailable(format!("{e:#}")))
    }

    /// The deadline of a call made now (Unix ms).
    pub fn deadline(&self) -> Deadline {
        Deadline::after(now_ms(), self.call_timeout)
    }

    /// Start the order's workflow with its creating selection, or send the
    /// selection to the run an earlier try started (the same `update_id` is
    /// answered once). A workflow id is never reused: a run that ended is
    /// [`CallError::NotRunning`].
    pub async fn create(
        &self,
        input: BookingInput,
        select: SelectSeats,
        update_id: Option<String>,
    ) -> Result<Answer<Held>, CallError> {
        let mut options = WorkflowUpdateWithStartOptions::new(
            self.settings.task_queue.clone(),
            workflow_id(input.order_id),
            WorkflowIdConflictPolicy::UseExisting,
        )
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .build();
        options.update_id = update_id;
        let client = self.client().await?;
        let started = client.execute_update_with_start_workflow(
            Booking::run,
            input,
            Booking::select_seats,
            select,
            options,
        );
        match self.within(started).await? {
            Ok(answer) => Ok(answer),
            Err(WorkflowUpdateWithStartError::Start(WorkflowStartError::AlreadyStarted {
                ..
            })) => Err(CallError::NotRunning),
            Err(WorkflowUpdateWithStartError::Update(e)) => Err(update_error(e)),
            Err(e) => Err(CallError::Lost(e.to_string())),
        }
    }

    /// Change the order's seats.
    pub async fn select(
        &self,
        order_id: OrderId,
        select: SelectSeats,
    ) -> Result<Answer<Held>, CallError> {
        let handle = self.handle(order_id).await?;
        let options = WorkflowExecuteUpdateOptions::default();
        let update = handle.execute_update(Booking::select_seats, select, options);
        self.within(update).await?.map_err(update_error)
    }

    /// Name the order's passengers.
    pub async fn set_passengers(
        &self,
        order_id: OrderId,
        req: SetPassengers,
    ) -> Result<Answer<Held>, CallError> {
        let handle = self.handle(order_id).await?;
        let options = WorkflowExecuteUpdateOptions::default();
        let update = handle.execute_update(Booking::set_passengers, req, options);
        self.within(update).await?.map_err(update_error)
    }

    /// Pay; `update_id` makes a retried payment the same update.
    pub async fn pay(
        &self,
        order_id: OrderId,
        pay: Pay,
        update_id: Option<String>,
    ) -> Result<Answer<OrderStatus>, CallError> {
        let handle = self.handle(order_id).await?;
        let mut options = WorkflowExecuteUpdateOptions::default();
        options.update_id = update_id;
        let update = handle.execute_update(Booking::pay, pay, options);
        self.within(update).await?.map_err(update_error)
    }

    /// Cancel the order.
    pub async fn cancel(
        &self,
        order_id: OrderId,
        cancel: Cancel,
    ) -> Result<Answer<OrderStatus>, CallError> {
        let handle = self.handle(order_id).await?;
        let options = WorkflowExecuteUpdateOptions::default();
        let update = handle.execute_update(Booking::cancel, cancel, options);
        self.within(update).await?.map_err(update_error)
    }

    /// Start this round of the order's refund workflow, unless it has one
    /// already (started, running or ended: the id is never reused). Given
    /// up on after [`REFUND_START_WAIT`].
    pub async fn start_refund(&self, input: RefundInput) -> Result<RefundStart, CallError> {
        let options = WorkflowStartOptions::new(
            self.settings.task_queue.clone(),
            refund_workflow_id(input.order_id, input.round),
        )
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
        let client = self.client().await?;
        let start = client.start_workflow(Refund::run, input, options);
        let Ok(started) = tokio::time::timeout(REFUND_START_WAIT, start).await else {
            return Err(CallError::Unavailable(format!(
                "temporal did not answer within {}",
                humantime::format_duration(REFUND_START_WAIT)
            )));
        };
        match started {
            Ok(_) => Ok(RefundStart::Started),
            Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(RefundStart::Existing),
            Err(e) => Err(CallError::Unavailable(e.to_string())),
        }
    }

    async fn handle(
        &self,
        order_id: OrderId,
    ) -> Result<WorkflowHandle<Client, Booking>, CallError> {
        let client = self.client().await?;
        Ok(client.get_workflow_handle::<Booking>(workflow_id(order_id)))
    }

    /// Wait for a call until its deadline plus the grace period.
    async fn within<T>(&self, call: impl Future<Output = T>) -> Result<T, CallError> {
        let wait = self.call_timeout + ANSWER_GRACE;
        tokio::time::timeout(wait, call)
            .await
            .map_err(|_| CallError::Unknown)
    }
}

/// An update that failed: the workflow is gone (told by the status code),
/// or the answer was lost. A transport error after sending cannot say the
/// update was not taken: the client's last retry failing to connect says
/// nothing of the first try, which may have been delivered and done.
fn update_error(e: WorkflowUpdateError) -> CallError {
    match e {
        WorkflowUpdateError::NotFound(_) => CallError::NotRunning,
        other => CallError::Lost(other.to_string()),
    }
}
