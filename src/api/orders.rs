//! The order endpoints. The API never writes booking state: it starts the
//! order's workflow and talks to it (updates). Status and its event stream
//! are read from the order row the workflow saves at every transition, so
//! watching an order costs the engine nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_client::errors::{
    WorkflowStartError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions,
    WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use utoipa::ToSchema;
use uuid::Uuid;

use super::admission::Call;
use super::errors::ErrorBody;
use super::idempotency::{Answer, Found, Key, Keyed};
use super::live::{Live, OrderWatch};
use super::metrics::{self, Selection as Counted};
use super::request_id;
use super::{ApiError, AppState, sse};
use crate::booking::Booking;
use crate::booking::messages::{
    BookingInput, Pay, SERVICE_BUSY, SERVICE_UNAVAILABLE, SelectSeats, Selection,
};
use crate::domain::{self, OrderStatus, PaymentCode, SeatSelection, workflow_id};
use crate::store::holds::Lock;
use crate::store::idempotency::Entry;
use crate::store::orders::{self, Order};
use crate::store::{StoreError, flights};

/// After a booking call's deadline, how long an answer the workflow decided
/// before it may still take to arrive.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"flightId": "550e8400-e29b-41d4-a716-446655440001", "seats": ["1A", "1B"]}))]
pub struct CreateOrder {
    #[schema(value_type = Uuid)]
    flight_id: String,
    #[schema(value_type = SeatList)]
    seats: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"seats": ["1A", "2C"]}))]
pub struct ChangeSeats {
    #[schema(value_type = SeatList)]
    seats: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayBody {
    /// 5 digits. `00000` always succeeds, `99999` is always declined,
    /// `88888` always times out; other codes fail at the configured rate.
    #[schema(value_type = String, pattern = "^[0-9]{5}$", example = "00000")]
    payment_code: serde_json::Value,
}

/// 1 to 9 distinct seat ids of one flight, e.g. `["1A", "12F"]` (a lowercase
/// column letter is accepted; the answer names the seat in capitals).
pub struct SeatList;

impl utoipa::PartialSchema for SeatList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let seat = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(domain::SEAT_ID_PATTERN))
            .examples(["12A"]);
        ArrayBuilder::new()
            .items(seat)
            .min_items(Some(1))
            .max_items(Some(domain::MAX_SEATS_PER_ORDER))
            .unique_items(true)
            .into()
    }
}

impl ToSchema for SeatList {}

/// The seats an order holds.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    order_id: Uuid,
    /// `booking-<orderId>` (on creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_id: Option<String>,
    /// `SEATS_RESERVED`.
    status: OrderStatus,
    seats: Vec<String>,
    /// When the hold ends unless paid or changed (RFC 3339, UTC).
    expires_at: Option<DateTime<Utc>>,
}

/// An accepted change of the order's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    order_id: Uuid,
    status: OrderStatus,
}

/// The order's status, from its row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    order_id: Uuid,
    workflow_id: String,
    flight_id: Uuid,
    status: OrderStatus,
    seats: Vec<String>,
    /// When the hold ends (RFC 3339, UTC); none before seats are held.
    expires_at: Option<DateTime<Utc>>,
    /// Whole seconds left on the hold; 0 when none is running.
    timer_remaining: u64,
    /// Payment validation attempts made so far.
    payment_attempts: u32,
    max_payment_attempts: u32,
    /// Why the last payment attempt failed, or why the order failed.
    last_error: Option<String>,
    total_price_cents: i64,
}

/// The order id of a path, parsed, and named on the request's span.
pub fn order_id(path: &str) -> Result<Uuid, ApiError> {
    let id = domain::parse_id(path).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_ORDER_ID",
            format!("{path:?} is not an order id (a UUID)"),
        )
    })?;
    request_id::order(id);
    Ok(id)
}

fn selection(items: &[String]) -> Result<SeatSelection, ApiError> {
    SeatSelection::parse(items).map_err(|e| ApiError::bad_request("INVALID_SEATS", e))
}

fn unknown_seats(seats: &[String]) -> ApiError {
    ApiError::bad_request(
        "INVALID_SEATS",
        format!("no such seat on this flight: {}", seats.join(", ")),
    )
}

fn unavailable_seats(seats: &[String]) -> ApiError {
    ApiError::conflict(
        "SEATS_UNAVAILABLE",
        format!(
            "already booked or held by another order: {}",
            seats.join(", ")
        ),
    )
}

/// The answer to a selection: the seats held, or why not.
fn held(order_id: Uuid, selection: Selection) -> Result<Held, ApiError> {
    match selection {
        Selection::Held {
            seats,
            expires_at_ms,
        } => Ok(Held {
            order_id,
            workflow_id: None,
            status: OrderStatus::SeatsReserved,
            seats,
            expires_at: to_time(expires_at_ms),
        }),
        Selection::Unavailable { seats } => Err(unavailable_seats(&seats)),
        Selection::Unknown { seats } => Err(unknown_seats(&seats)),
        Selection::Late => Err(gave_up()),
    }
}

/// Why an ended order refuses a change.
fn closed(order: &Order) -> ApiError {
    match order.status {
        OrderStatus::Expired => {
            ApiError::conflict("ORDER_EXPIRED", "the hold on this order has expired")
        }
        status => ApiError::conflict("ORDER_NOT_MODIFIABLE", format!("the order is {status}")),
    }
}

fn to_time(ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms as i64)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whole seconds left on a live hold, from the absolute deadline and the
/// server's clock now.
fn remaining(status: OrderStatus, deadline_ms: Option<u64>) -> u64 {
    match (status, deadline_ms) {
        (OrderStatus::SeatsReserved, Some(d)) => d.saturating_sub(now_ms()).div_ceil(1000),
        _ => 0,
    }
}

impl StatusView {
    fn from_row(o: Order, max_attempts: u32) -> Self {
        let deadline = o.expires_at.map(|t| t.timestamp_millis() as u64);
        Self {
            order_id: o.id,
            workflow_id: o.workflow_id,
            flight_id: o.flight_id,
            status: o.status,
            timer_remaining: remaining(o.status, deadline),
            seats: o.seats,
            expires_at: o.expires_at,
            payment_attempts: o.payment_attempts as u32,
            max_payment_attempts: max_attempts,
            last_error: o.failure_reason.or(o.last_payment_error),
            total_price_cents: o.total_price_cents,
        }
    }
}

/// The order's status now, from its row.
fn status_of(state: &AppState, order: Order) -> StatusView {
    StatusView::from_row(order, state.settings.booking.payment_max_retries)
}

/// Map a failed update: a rejection carries its code; a closed workflow is
/// explained by its row.
async fn update_failed(state: &AppState, id: Uuid, e: WorkflowUpdateError) -> ApiError {
    match e {
        WorkflowUpdateError::Failed(failure) => ApiError::from_rejection(&failure.message),
        WorkflowUpdateError::NotFound(_) => match orders::find(&state.pool, id).await {
            Ok(order) => closed(&order),
            Err(e) => e.into(),
        },
        other => ApiError::unavailable(format!("temporal: {other}")),
    }
}

/// Wait for a booking call until its deadline plus a grace period in which
/// an answer decided before the deadline can still arrive.
async fn within<T>(state: &AppState, fut: impl Future<Output = T>) -> Option<T> {
    let wait = state.settings.server.call_timeout + ANSWER_GRACE;
    tokio::time::timeout(wait, fut).await.ok()
}

/// The deadline a booking call carries into the workflow (Unix ms).
fn deadline(state: &AppState) -> u64 {
    now_ms() + state.settings.server.call_timeout.as_millis() as u64
}

/// The outcome of an update the API waits on: its result, 503 once the wait
/// is over, or the workflow's refusal mapped to HTTP.
async fn answered<T>(
    state: &AppState,
    id: Uuid,
    update: impl Future<Output = Result<T, WorkflowUpdateError>>,
) -> Result<T, ApiError> {
    match within(state, update).await {
        None => Err(gave_up()),
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(update_failed(state, id, e).await),
    }
}

/// Update options carrying an idempotent update id, when there is one.
fn update_options(update_id: Option<String>) -> WorkflowExecuteUpdateOptions {
    let mut options = WorkflowExecuteUpdateOptions::default();
    options.update_id = update_id;
    options
}

fn gave_up() -> ApiError {
    ApiError::busy("the booking engine did not answer in time; nothing was changed")
}

/// The order row of a live order, or why it cannot change.
async fn live_order(state: &AppState, id: Uuid) -> Result<Order, ApiError> {
    let order = orders::find(&state.pool, id).await?;
    if order.status.is_terminal() {
        return Err(closed(&order));
    }
    Ok(order)
}

fn handle(client: &Client, id: Uuid) -> temporalio_client::WorkflowHandle<Client, Booking> {
    client.get_workflow_handle::<Booking>(workflow_id(id))
}

/// Seats of one flight, as a create (or a change) asks for them, parsed.
struct SeatRequest {
    flight_id: Uuid,
    seats: SeatSelection,
}

impl SeatRequest {
    fn parse(body: &CreateOrder) -> Result<Self, ApiError> {
        let flight_id = domain::parse_id(&body.flight_id).ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_FLIGHT_ID",
                format!("{:?} is not a flight id (a UUID)", body.flight_id),
            )
        })?;
        let seats = selection(&body.seats)?;
        Ok(Self { flight_id, seats })
    }

    /// What makes two creates the same request.
    fn fingerprint_parts(&self) -> Vec<String> {
        let mut parts = vec![self.flight_id.to_string()];
        parts.extend(self.seats.ids());
        parts
    }
}

/// One try at creating an order.
struct CreateCall<'a> {
    order_id: Uuid,
    /// Set for a keyed request: a retry lands on the same workflow update.
    update_id: Option<String>,
    keyed: Option<&'a Keyed<'a>>,
    /// An earlier try with this key may have started the workflow: attach
    /// to it rather than refuse. False while that run is standing down.
    attach: bool,
    /// The order id is this request's own (no earlier try used it).
    fresh: bool,
}

/// Refuse, without touching Temporal, a seat held by another order (one
/// Redis read, first: the common loser of a flash sale), sold, unknown, or
/// on a flight that does not exist. Postgres stays the authority: the
/// workflow checks again.
async fn refuse_taken(state: &AppState, new: &SeatRequest, order_id: Uuid) -> Result<(), ApiError> {
    refuse_held(state, new, order_id).await?;
    refuse_sold(state, new).await
}

/// A seat held in Redis by an order other than `order_id`: 409.
async fn refuse_held(state: &AppState, new: &SeatRequest, order_id: Uuid) -> Result<(), ApiError> {
    let ids = new.seats.ids();
    let held = state
        .holds
        .held_by_others(new.flight_id, order_id, &ids)
        .await?;
    match held.is_empty() {
        true => Ok(()),
        false => Err(unavailable_seats(&held)),
    }
}

/// A seat sold (409) or unknown (400), or no such flight (404), in Postgres.
async fn refuse_sold(state: &AppState, new: &SeatRequest) -> Result<(), ApiError> {
    let ids = new.seats.ids();
    let check = flights::check_seats(&state.pool, new.flight_id, &ids).await?;
    if check.unknown.len() == ids.len() {
        // No seat at all: most likely no such flight (404 names it).
        flights::find(&state.pool, new.flight_id).await?;
    }
    if !check.unknown.is_empty() {
        return Err(unknown_seats(&check.unknown));
    }
    if !check.sold.is_empty() {
        return Err(unavailable_seats(&check.sold));
    }
    Ok(())
}

/// How long a create's up-front claim lives: the shared setting
/// ([`crate::config::ServerSettings::claim_ttl`]) the sweep waits out too.
pub fn claim_ttl(server: &crate::config::ServerSettings) -> Duration {
    server.claim_ttl()
}

/// Claim the seats for the order in Redis before the workflow runs, so
/// simultaneous buyers of a seat are told apart here. The workflow adopts the
/// claim (its lock is re-entrant for the same order); otherwise it lapses by
/// itself shortly after the call's deadline.
async fn claim(state: &AppState, new: &SeatRequest, order_id: Uuid) -> Result<(), ApiError> {
    let ttl = claim_ttl(&state.settings.server);
    let ids = new.seats.ids();
    match state.holds.lock(new.flight_id, order_id, &ids, ttl).await? {
        Lock::Locked => Ok(()),
        Lock::Taken(seats) => Err(unavailable_seats(&seats)),
    }
}

/// Admission, the claim, then update-with-start of the order's workflow
/// with a deadline. The caller has run the up-front refusals.
async fn create_order(
    state: &AppState,
    new: &SeatRequest,
    mut call: CreateCall<'_>,
) -> Result<Answer, ApiError> {
    request_id::order(call.order_id);
    let _ticket = state.admission.enter(Call::Create)?;
    claim(state, new, call.order_id).await?;
    if !call.fresh
        && let Some(base) = call.update_id.take()
    {
        call.update_id = Some(retry_update_id(state, call.order_id, base).await);
    }
    let outcome = match flights::find(&state.pool, new.flight_id).await {
        Ok(flight) => start(state, new, &call, flight.price_cents).await,
        Err(e) => Err(e.into()),
    };
    if outcome.is_err() && call.fresh {
        // No workflow adopted the claim: free the seats now rather than when
        // it lapses (releasing is owner-checked, the id is this request's).
        let seats = new.seats.ids();
        let released = state.holds.release(new.flight_id, call.order_id, &seats);
        let announced = match released.await {
            Ok(0) => Ok(()),
            Ok(_) => flights::announce(&state.pool, new.flight_id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = announced {
            tracing::debug!(error = %e, "releasing (or announcing) an unused claim failed; it lapses by itself");
        }
    }
    outcome
}

/// The update id of a retried keyed create. Temporal answers an update id
/// once: when the key's run has ended without the order ever holding seats
/// (it refused the creation — it came too late, or the seat store failed —
/// or was withdrawn), reusing the key's id would replay that non-answer
/// (503) for as long as the key lives. Such a retry gets an id of its own
/// run, the same for every retry that finds the same ended run. A run still
/// going, or an order that held seats, keeps the key's id: its answer is
/// replayed.
async fn retry_update_id(state: &AppState, order_id: Uuid, base: String) -> String {
    let Ok(client) = state.temporal().await else {
        return base;
    };
    // Bounded: the caller holds an admission slot and a short seat claim.
    let workflow = handle(client, order_id);
    let describe = workflow.describe(WorkflowDescribeOptions::default());
    let described = tokio::time::timeout(Duration::from_secs(1), describe).await;
    match described {
        Ok(Ok(run)) if run.close_time().is_some() => {
            match orders::find(&state.pool, order_id).await {
                Err(StoreError::OrderNotFound(_)) => format!("{base}-{}", run.run_id()),
                _ => base,
            }
        }
        _ => base,
    }
}

/// Update-with-start of the order's workflow, the selection carrying its
/// deadline.
async fn start(
    state: &AppState,
    new: &SeatRequest,
    call: &CreateCall<'_>,
    seat_price_cents: i64,
) -> Result<Answer, ApiError> {
    let booking = &state.settings.booking;
    let input = BookingInput {
        order_id: call.order_id,
        flight_id: new.flight_id,
        seat_price_cents,
        hold_ms: booking.seat_reservation_timeout.as_millis() as u64,
        payment_timeout_ms: booking.payment_validation_timeout.as_millis() as u64,
        payment_max_attempts: booking.payment_max_retries,
        creation_wait_ms: None,
    };
    let select = SelectSeats {
        seats: new.seats.clone(),
        deadline_ms: Some(deadline(state)),
        request_id: request_id::current(),
    };
    let mut options = WorkflowUpdateWithStartOptions::new(
        state.settings.temporal.task_queue.clone(),
        workflow_id(call.order_id),
        WorkflowIdConflictPolicy::Fail,
    )
    .build();
    options.update_id = call.update_id.clone();
    let client = state.temporal().await?;
    let started = client.execute_update_with_start_workflow(
        Booking::run,
        input,
        Booking::select_seats,
        select.clone(),
        options,
    );
    let selection = match within(state, started).await {
        None => return Err(give_up_create(state, call).await),
        Some(Ok(selection)) => selection,
        Some(Err(WorkflowUpdateWithStartError::Start(WorkflowStartError::AlreadyStarted {
            ..
        }))) => attach(state, call, select).await?,
        Some(Err(WorkflowUpdateWithStartError::Update(e))) => {
            return Err(update_failed(state, call.order_id, e).await);
        }
        Some(Err(e)) => return Err(ApiError::unavailable(format!("temporal: {e}"))),
    };
    let held = held(call.order_id, selection)?;
    Ok(Answer::new(
        StatusCode::CREATED,
        Held {
            workflow_id: Some(workflow_id(call.order_id)),
            ..held
        },
    ))
}

/// An earlier try with the same key started the workflow: send it the same
/// update (same id), which Temporal answers once.
async fn attach(
    state: &AppState,
    call: &CreateCall<'_>,
    select: SelectSeats,
) -> Result<Selection, ApiError> {
    if !call.attach {
        return Err(ApiError::busy(
            "an earlier attempt with this Idempotency-Key is still being withdrawn",
        ));
    }
    let client = state.temporal().await?;
    let handle = handle(client, call.order_id);
    let options = update_options(call.update_id.clone());
    let update = handle.execute_update(Booking::select_seats, select, options);
    answered(state, call.order_id, update).await
}

/// The caller is told 503 and nothing may stay held for it: the workflow
/// refuses the creation if it sees it after the deadline, and if it already
/// took the seats, cancelling it releases them.
async fn give_up_create(state: &AppState, call: &CreateCall<'_>) -> ApiError {
    if let Some(keyed) = call.keyed {
        keyed.abandon().await;
    }
    if let Ok(client) = state.temporal().await {
        let handle = handle(client, call.order_id);
        tokio::spawn(async move {
            let opts = WorkflowCancelOptions::builder()
                .reason("the API gave up waiting for the creation".to_string())
                .build();
            let cancel = tokio::time::timeout(Duration::from_secs(5), handle.cancel(opts));
            if let Ok(Err(e)) = cancel.await {
                tracing::debug!(error = %e, "cancelling an abandoned creation failed");
            }
        });
    }
    gave_up()
}

#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    summary = "Hold seats: create an order",
    description = "Takes every seat or none. A seat already held or sold is refused (409) \
without starting a workflow; any answer but 201 leaves nothing held. With `Idempotency-Key`, \
the same key and body return the same answer for 24 h (one order), another body is 422.",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "1–255 printable ASCII characters: retry with the same key and body to get the same order"),
    ),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "The seats are held for the new order", body = Held,
         links(
            ("status" = (operation_id = "orders_status", parameters(("id" = "$response.body#/orderId")))),
            ("changeSeats" = (operation_id = "orders_change_seats", parameters(("id" = "$response.body#/orderId")))),
            ("pay" = (operation_id = "orders_pay", parameters(("id" = "$response.body#/orderId")))),
            ("cancel" = (operation_id = "orders_cancel", parameters(("id" = "$response.body#/orderId")))),
         )),
        (status = 400, description = "`INVALID_FLIGHT_ID`: not a UUID; `INVALID_SEATS`: not 1–9 distinct seat ids, or a seat the flight does not have; `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`SEATS_UNAVAILABLE`: a seat is sold or held by another order (the message names them)", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key was used with another body", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY`: too many booking calls in flight, or the engine did not answer in time (nothing was changed); `SERVICE_UNAVAILABLE`: a dependency is down", body = ErrorBody),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateOrder>,
) -> Result<HttpResponse, ApiError> {
    let key = Key::from_request(&req)?;
    let new = SeatRequest::parse(&body)?;
    let Some(key) = key else {
        let call = CreateCall {
            order_id: Uuid::new_v4(),
            update_id: None,
            keyed: None,
            attach: false,
            fresh: true,
        };
        let outcome = async {
            refuse_taken(&state, &new, call.order_id).await?;
            create_order(&state, &new, call).await
        }
        .await;
        metrics::selection(Counted::Create, outcome.as_ref().map(|_| ()));
        return Ok(outcome?.respond());
    };
    let parts = new.fingerprint_parts();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let keyed = Keyed::new(&state, "create".into(), key, &parts);
    let (order_id, attach, fresh) = match bind_create(&state, &keyed, &new).await? {
        Bound::Answered(answer) => return Ok(answer.respond()),
        Bound::Refused(e) => {
            metrics::selection(Counted::Create, Err(&e));
            return Err(e);
        }
        Bound::Try {
            order_id,
            attach,
            fresh,
        } => (order_id, attach, fresh),
    };
    let call = CreateCall {
        order_id,
        update_id: Some(keyed.update_id("create")),
        keyed: Some(&keyed),
        attach,
        fresh,
    };
    // A fresh id passed the up-front refusals while its key was bound.
    let outcome = async {
        if !fresh {
            refuse_taken(&state, &new, order_id).await?;
        }
        create_order(&state, &new, call).await
    }
    .await;
    metrics::selection(Counted::Create, outcome.as_ref().map(|_| ()));
    keyed.remember(&outcome).await;
    Ok(outcome?.respond())
}

/// Where a keyed create stands once its key is bound.
enum Bound {
    /// The key's stored answer.
    Answered(Answer),
    /// A new key refused up front; the key is bound to this answer.
    Refused(ApiError),
    /// A try to make, for this order. `fresh`: the id is this request's and
    /// passed the up-front refusals; `attach`: an earlier try may have
    /// started the workflow and is not being withdrawn.
    Try {
        order_id: Uuid,
        attach: bool,
        fresh: bool,
    },
}

/// Look the key up and, for a new key, run the up-front refusals and bind
/// the key to the order id, or to the refusal, in one write. The key and
/// the Redis holds are read at once: for a new key, the holds decide most
/// refusals of a flash sale.
async fn bind_create(
    state: &AppState,
    keyed: &Keyed<'_>,
    new: &SeatRequest,
) -> Result<Bound, ApiError> {
    let order_id = Uuid::new_v4();
    let (found, held) = tokio::join!(keyed.find(), refuse_held(state, new, order_id));
    let unanswered = |entry: Entry| Bound::Try {
        order_id: entry.order_id,
        attach: !entry.abandoned,
        fresh: false,
    };
    match found? {
        Found::Answered(answer) => return Ok(Bound::Answered(answer)),
        Found::Unanswered(entry) => return Ok(unanswered(entry)),
        Found::New => {}
    }
    let refusal = match held {
        Ok(()) => refuse_sold(state, new).await.err(),
        Err(e) => Some(e),
    };
    // A dependency that is down is no answer to bind the key to.
    let refusal = match refusal {
        Some(e) if e.status.is_server_error() => return Err(e),
        other => other.map(Err),
    };
    Ok(match keyed.bind(order_id, refusal.as_ref()).await? {
        Found::New => match refusal {
            Some(Err(e)) => Bound::Refused(e),
            _ => Bound::Try {
                order_id,
                attach: false,
                fresh: true,
            },
        },
        Found::Answered(answer) => Bound::Answered(answer),
        Found::Unanswered(entry) => unanswered(entry),
    })
}

#[utoipa::path(
    put,
    path = "/api/orders/{id}/seats",
    tag = "orders",
    summary = "Change the order's seats; the hold restarts in full",
    description = "All or nothing: a refused change leaves the previous seats, their holds and \
the timer as they were.",
    params(("id" = Uuid, Path, description = "The order's id")),
    request_body = ChangeSeats,
    responses(
        (status = 200, description = "The new seats, held until `expiresAt`", body = Held),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID; `INVALID_SEATS`: not 1–9 distinct seat ids, or a seat the flight does not have", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`SEATS_UNAVAILABLE` (names the seats), `ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (paid, failed or cancelled)", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
    ),
)]
pub async fn change_seats(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ChangeSeats>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let seats = selection(&body.seats)?;
    let outcome = change(&state, id, seats).await;
    metrics::selection(Counted::Change, outcome.as_ref().map(|_| ()));
    Ok(HttpResponse::Ok().json(outcome?))
}

/// A selection change of a live order, through its workflow.
async fn change(state: &AppState, id: Uuid, seats: SeatSelection) -> Result<Held, ApiError> {
    let order = live_order(state, id).await?;
    let wanted = SeatRequest {
        flight_id: order.flight_id,
        seats,
    };
    refuse_taken(state, &wanted, id).await?;
    let _ticket = state.admission.enter(Call::Checkout)?;
    let client = state.temporal().await?;
    let select = SelectSeats {
        seats: wanted.seats,
        deadline_ms: Some(deadline(state)),
        request_id: request_id::current(),
    };
    let handle = handle(client, id);
    let update = handle.execute_update(Booking::select_seats, select, update_options(None));
    let selection = answered(state, id, update).await?;
    held(id, selection)
}

#[utoipa::path(
    get,
    path = "/api/orders/{id}/status",
    tag = "orders",
    summary = "The order's status",
    description = "Works while the workflow runs and after it has ended.",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The status", body = StatusView),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres is down", body = ErrorBody),
    ),
)]
pub async fn status(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let order = orders::find(&state.pool, id).await?;
    Ok(HttpResponse::Ok().json(status_of(&state, order)))
}

/// The order's status with its flight.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetail {
    #[serde(flatten)]
    status: StatusView,
    confirmed_at: Option<DateTime<Utc>>,
    flight: flights::Flight,
}

#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    summary = "The order: its status, when it was confirmed, and its flight",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderDetail),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres is down", body = ErrorBody),
    ),
)]
pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let order = orders::find(&state.pool, id).await?;
    let flight = flights::find(&state.pool, order.flight_id).await?;
    Ok(HttpResponse::Ok().json(OrderDetail {
        confirmed_at: order.confirmed_at,
        status: status_of(&state, order),
        flight,
    }))
}

/// Send the payment to the order's workflow. `retry` is a keyed request
/// whose earlier try got no answer: the same update id makes Temporal answer
/// it once, and an order that has moved on since is asked no more.
async fn pay_order(
    state: &AppState,
    id: Uuid,
    code: PaymentCode,
    update_id: Option<String>,
    retry: bool,
) -> Result<Answer, ApiError> {
    let accepted = |status| {
        Answer::new(
            StatusCode::ACCEPTED,
            Ack {
                order_id: id,
                status,
            },
        )
    };
    let order = orders::find(&state.pool, id).await?;
    if order.status.is_terminal() {
        return match retry && order.payment_attempts > 0 {
            true => Ok(accepted(OrderStatus::PaymentProcessing)),
            false => Err(closed(&order)),
        };
    }
    let _ticket = state.admission.enter(Call::Checkout)?;
    let client = state.temporal().await?;
    let pay = Pay {
        code,
        deadline_ms: Some(deadline(state)),
        request_id: request_id::current(),
    };
    let handle = handle(client, id);
    let update = handle.execute_update(Booking::pay, pay, update_options(update_id));
    Ok(accepted(answered(state, id, update).await?))
}

/// The update id of a retried keyed payment. Temporal answers an update id
/// once, and the workflow refuses a payment that reaches it after the
/// caller stopped waiting (or meets a store outage) with a 503 kept for that
/// id: a retry reusing it would get that 503 until the hold ran out. So a
/// retry walks the key's ids (`<id>`, `<id>-1`, `<id>-2`, ...) past those
/// that ended in such a refusal, and uses the first that did not: still
/// running, accepted (its answer is replayed), or never sent. Every retry
/// of the key walks to the same id.
async fn retry_pay_update_id(state: &AppState, order_id: Uuid, base: String) -> String {
    const MAX_TRIES: usize = 10;
    let Ok(client) = state.temporal().await else {
        return base;
    };
    let handle = handle(client, order_id);
    for n in 0..MAX_TRIES {
        let id = match n {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        };
        let update = handle.get_update_handle(Booking::pay, id.clone());
        let outcome = tokio::time::timeout(
            Duration::from_millis(500),
            update.get_result(temporalio_client::RpcOptions::default()),
        )
        .await;
        match outcome {
            Ok(Err(WorkflowUpdateError::Failed(failure)))
                if failure.message.starts_with(SERVICE_BUSY)
                    || failure.message.starts_with(SERVICE_UNAVAILABLE) => {}
            _ => return id,
        }
    }
    format!("{base}-{MAX_TRIES}")
}

#[utoipa::path(
    post,
    path = "/api/orders/{id}/pay",
    tag = "orders",
    summary = "Pay: start validating the payment code",
    description = "Accepted only while the hold is live; from then on the order ends \
`CONFIRMED` or `FAILED` (follow `/status` or `/events`). The holds are checked again first: a \
seat lost to another order is 409 `SEATS_UNAVAILABLE` with no payment attempt. With \
`Idempotency-Key`, the same key and code return the same answer for 24 h (one payment).",
    params(
        ("id" = Uuid, Path, description = "The order's id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "1–255 printable ASCII characters: retry with the same key and code to get the same answer"),
    ),
    request_body = PayBody,
    responses(
        (status = 202, description = "The payment is being validated", body = Ack),
        (status = 400, description = "`INVALID_PAYMENT_CODE`: not 5 digits; `INVALID_ORDER_ID`: not a UUID; `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (already paid, failed or cancelled), `SEATS_UNAVAILABLE` (a seat lost to another order)", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key was used with another code", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
    ),
)]
pub async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PayBody>,
) -> Result<HttpResponse, ApiError> {
    let code = body
        .payment_code
        .as_str()
        .ok_or_else(|| "the payment code must be a string of 5 digits".to_string())
        .and_then(PaymentCode::parse)
        .map_err(|e| ApiError::bad_request("INVALID_PAYMENT_CODE", e))?;
    let id = order_id(&path)?;
    let Some(key) = Key::from_request(&req)? else {
        return Ok(pay_order(&state, id, code, None, false).await?.respond());
    };
    let keyed = Keyed::new(&state, format!("pay:{id}"), key, &[code.as_str()]);
    let retry = match keyed.find().await? {
        Found::Answered(answer) => return Ok(answer.respond()),
        Found::Unanswered(_) => true,
        Found::New => match keyed.bind(id, None).await? {
            Found::Answered(answer) => return Ok(answer.respond()),
            Found::Unanswered(_) => true,
            Found::New => false,
        },
    };
    let mut update_id = keyed.update_id("pay");
    if retry {
        update_id = retry_pay_update_id(&state, id, update_id).await;
    }
    let outcome = pay_order(&state, id, code, Some(update_id), retry).await;
    keyed.remember(&outcome).await;
    Ok(outcome?.respond())
}

#[utoipa::path(
    delete,
    path = "/api/orders/{id}",
    tag = "orders",
    summary = "Cancel the order: its seats go back on sale",
    description = "The order stays readable (`CANCELLED`).",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "Cancelled", body = Ack),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `ORDER_NOT_MODIFIABLE` (paid, failed or already cancelled)", body = ErrorBody),
        (status = 503, description = "`SERVICE_BUSY` or `SERVICE_UNAVAILABLE`: nothing was changed", body = ErrorBody),
    ),
)]
pub async fn cancel(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    live_order(&state, id).await?;
    let _ticket = state.admission.enter(Call::Checkout)?;
    let client = state.temporal().await?;
    let handle = handle(client, id);
    let update = handle.execute_update(Booking::cancel, (), update_options(None));
    let status = answered(&state, id, update).await?;
    Ok(HttpResponse::Ok().json(Ack {
        order_id: id,
        status,
    }))
}

/// After a failed read, how long an order stream waits to read again.
const REREAD: Duration = Duration::from_secs(1);

struct Events {
    live: Live,
    id: Uuid,
    watch: OrderWatch,
    /// The event type (none: `message`).
    kind: Option<&'static str>,
    max_attempts: u32,
    done: bool,
    /// The version of the row last sent (or the client's `Last-Event-ID`).
    sent: i64,
    /// A row read, not yet sent.
    read: Option<Order>,
    /// The last read failed: read again without waiting for a change.
    failed: bool,
}

impl Events {
    /// The row as an event, if the client has not seen this version.
    fn unseen(&mut self, order: Order) -> Option<String> {
        if order.version <= self.sent {
            return None;
        }
        self.sent = order.version;
        let id = Some(order.version as u64);
        let view = StatusView::from_row(order, self.max_attempts);
        Some(sse::event(self.kind, id, &view))
    }
}

/// The next thing to send: a changed row, an error, or a keep-alive; none
/// after a terminal status.
async fn next_event(mut ev: Events) -> Option<(String, Events)> {
    while !ev.done {
        if let Some(order) = ev.read.take() {
            ev.done = order.status.is_terminal();
            if let Some(event) = ev.unseen(order) {
                return Some((event, ev));
            }
            continue;
        }
        let waited = match std::mem::take(&mut ev.failed) {
            true => sse::wait(&ev.live, tokio::time::sleep(REREAD)).await,
            false => sse::wait(&ev.live, ev.watch.changed()).await,
        };
        match waited {
            sse::Wait::Next(()) => {}
            sse::Wait::Quiet => return Some((sse::KEEP_ALIVE_EVENT.to_string(), ev)),
            sse::Wait::Closing => return None,
        }
        let read = {
            let _turn = ev.live.read_turn().await;
            orders::find(ev.live.pool(), ev.id).await
        };
        match read {
            Ok(order) => ev.read = Some(order),
            Err(e) => {
                ev.failed = true;
                let e = ApiError::from(e);
                let msg = serde_json::json!({"error": e.code, "message": e.message});
                return Some((format!("event: error\ndata: {msg}\n\n"), ev));
            }
        }
    }
    None
}

/// An order's events: its status each time its row changes (pushed, not
/// polled), the row's version as the event id, from the version after
/// `sent` on; ends after a terminal status. `None`: the client has seen the
/// order's last status already.
pub async fn order_events(
    state: &AppState,
    id: Uuid,
    sent: i64,
    kind: Option<&'static str>,
) -> Result<Option<impl futures::Stream<Item = String> + use<>>, ApiError> {
    let watch = state.live.order(id);
    let order = orders::find(&state.pool, id).await?;
    if order.status.is_terminal() && order.version <= sent {
        return Ok(None);
    }
    let ev = Events {
        live: state.live.clone(),
        id,
        watch,
        kind,
        max_attempts: state.settings.booking.payment_max_retries,
        done: false,
        sent,
        read: Some(order),
        failed: false,
    };
    Ok(Some(futures::stream::unfold(ev, next_event)))
}

/// The `Last-Event-ID` a reconnecting client sends (0: none).
pub fn last_event_id(req: &HttpRequest) -> i64 {
    req.headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok())
        .unwrap_or(0)
}

/// Server-sent events: the status object each time the order's row
/// changes, its version as the event id, a keep-alive comment every 15 s;
/// closed after a terminal status. A reconnect with `Last-Event-ID` gets
/// only what it has not seen; `204` (which stops an `EventSource`) once it
/// has seen the last status.
#[utoipa::path(
    get,
    path = "/api/orders/{id}/events",
    tag = "events",
    summary = "The order's status changes, as server-sent events",
    description = "One unnamed event (`message`) per change of the order, its data the status \
object (`StatusView`), its `id:` the order row's version. A `: keep-alive` comment every 15 s; \
the stream ends after a terminal status (`CONFIRMED`, `FAILED`, `EXPIRED`, `CANCELLED`). \
`event: error` (`Error`) when a read failed (it is retried).",
    params(
        ("id" = Uuid, Path, description = "The order's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id seen: only newer changes are sent (a value that is not a number counts as none)"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 204, description = "The client has seen the order's last status already (stops an `EventSource`)"),
        (status = 400, description = "`INVALID_ORDER_ID`: not a UUID", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres is down", body = ErrorBody),
    ),
)]
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    Ok(
        match order_events(&state, id, last_event_id(&req), None).await? {
            Some(stream) => sse::respond(stream),
            None => HttpResponse::NoContent().finish(),
        },
    )
}
