//! A flight's waiting room: join its queue, read a ticket, follow it as
//! server-sent events. The rules are `crate::waiting`'s; the queue lives
//! in Redis (`store::queue`), shared by every `serve`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::errors::ErrorBody;
use super::flights::flight_id;
use super::{ApiError, AppState, ErrorCode, sse};
use crate::store::flights::Flight;
use crate::waiting::{Ticket, TicketState};

/// How often a ticket's stream reads it (and counts as its holder's beat).
const BEAT: Duration = Duration::from_secs(1);
/// How often a stream sends a keep-alive comment when nothing changed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A ticket's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
pub enum QueueState {
    /// Joined before the sale opens: no place yet (see `opensAt`).
    Prequeue,
    /// In the line: `position` ≥ 1, `ahead` people before it.
    Waiting,
    /// Admitted: `admission` is the create's `Admission` header until
    /// `admittedUntil`.
    Admitted,
    /// Every seat is sold or claimed (waiting resumes if seats come back).
    SoldOut,
    /// The place (no poll or stream for `QUEUE_GRACE`) or the admission
    /// (unused for `ADMISSION_TTL`) lapsed: join again.
    Expired,
}

/// A ticket of a flight's queue.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"ticket": "7d1f0c9e2b4a4f0e9c1d2b3a4f5e6d7c", "state": "WAITING",
    "position": 42, "ahead": 41, "estimatedWaitSeconds": 20, "opensAt": "2030-06-01T08:00:00Z"}))]
pub struct QueueTicket {
    /// The ticket's id: keep it to itself (whoever has it can read its
    /// admission).
    ticket: String,
    #[schema(value_type = QueueState)]
    state: &'static str,
    /// 1-based place in the line (`WAITING`), else null.
    position: Option<u64>,
    /// People ahead in the line (`WAITING`), else null.
    ahead: Option<u64>,
    /// `ahead` ÷ the measured admission rate, in seconds; null while no
    /// rate is measured yet.
    estimated_wait_seconds: Option<u64>,
    /// When the flight's sale opens (a scheduled sale), else null.
    opens_at: Option<DateTime<Utc>>,
    /// `ADMITTED`: the token to send as `Admission` with `POST
    /// /api/orders` (good for one order).
    #[serde(skip_serializing_if = "Option::is_none")]
    admission: Option<String>,
    /// `ADMITTED`: when the admission lapses unless used.
    #[serde(skip_serializing_if = "Option::is_none")]
    admitted_until: Option<DateTime<Utc>>,
}

impl From<Ticket> for QueueTicket {
    fn from(t: Ticket) -> Self {
        Self {
            ticket: t.id,
            state: t.state.as_str(),
            position: t.position,
            ahead: t.ahead,
            estimated_wait_seconds: t
                .estimated_wait
                .map(|w| w.as_millis().div_ceil(1000) as u64),
            opens_at: t.opens_at,
            admission: t.admission,
            admitted_until: t.admitted_until,
        }
    }
}

async fn flight(state: &AppState, path: &str) -> Result<Flight, ApiError> {
    let id = flight_id(path)?;
    Ok(state.room.flight(&state.pool, id.into()).await?)
}

fn no_ticket() -> ApiError {
    ApiError::from(ErrorCode::TicketNotFound)
}

#[utoipa::path(
    post,
    path = "/api/flights/{id}/queue",
    tag = "waiting room",
    summary = "Join the flight's queue: one ticket per client",
    description = "Before a scheduled sale opens the ticket is `PREQUEUE` (no place yet); at the \
opening the pre-queue is shuffled once, every early buyer with the same chance, and later joiners \
go behind, first come first served. A second join by the same client answers its live ticket \
(200). Keep the place by polling the ticket or following its stream: it lapses `QUEUE_GRACE` \
(2 min) after the last poll or stream ends.",
    params(("id" = Uuid, Path, description = "The flight's id")),
    responses(
        (status = 201, description = "A new ticket", body = QueueTicket),
        (status = 200, description = "The client's live ticket for this flight", body = QueueTicket),
        (status = 400, description = "`INVALID_FLIGHT_ID`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Redis or Postgres is down", body = ErrorBody),
    ),
)]
pub async fn join(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let flight = flight(&state, &path).await?;
    let client = state.client_key(&req);
    let (ticket, created) = state.room.join(&state.pool, &flight, &client).await?;
    let body = QueueTicket::from(ticket);
    Ok(match created {
        true => HttpResponse::Created().json(body),
        false => HttpResponse::Ok().json(body),
    })
}

#[utoipa::path(
    get,
    path = "/api/flights/{id}/queue/{ticket}",
    tag = "waiting room",
    summary = "A ticket of the flight's queue (a poll keeps its place)",
    params(
        ("id" = Uuid, Path, description = "The flight's id"),
        ("ticket" = String, Path, description = "The ticket's id"),
    ),
    responses(
        (status = 200, description = "The ticket", body = QueueTicket),
        (status = 400, description = "`INVALID_FLIGHT_ID`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`, `TICKET_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn ticket(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, ticket) = path.into_inner();
    let flight = flight(&state, &id).await?;
    let ticket = (state
        .room
        .ticket(&state.pool, &flight, &ticket, true)
        .await?)
        .ok_or_else(no_ticket)?;
    Ok(HttpResponse::Ok().json(QueueTicket::from(ticket)))
}

#[utoipa::path(
    get,
    path = "/api/flights/{id}/queue/{ticket}/events",
    tag = "events",
    summary = "A ticket of the flight's queue, as server-sent events",
    description = "One unnamed event (`message`) with the ticket (`QueueTicket`) at once and on \
every change of its state, place or estimate; a `: keep-alive` comment every 15 s. While it is \
open the place is kept. Ends after `EXPIRED`. Counts against `MAX_STREAMS_PER_CLIENT`.",
    params(
        ("id" = Uuid, Path, description = "The flight's id"),
        ("ticket" = String, Path, description = "The ticket's id"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`INVALID_FLIGHT_ID`", body = ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`, `TICKET_NOT_FOUND`", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_STREAMS`: this client has `MAX_STREAMS_PER_CLIENT` event streams open (16); close one", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, ticket) = path.into_inner();
    let flight = flight(&state, &id).await?;
    let first = (state
        .room
        .ticket(&state.pool, &flight, &ticket, true)
        .await?)
        .ok_or_else(no_ticket)?;
    let lease = sse::lease(&state, &req).await?;
    let first = QueueTicket::from(first);
    let head = sse::event(None, None, &first);
    let done = first.state == TicketState::Expired.as_str();
    let stream = futures::stream::unfold(
        (
            state,
            flight.id,
            ticket,
            first,
            done,
            tokio::time::Instant::now(),
        ),
        |(state, flight_id, ticket, last, done, mut quiet)| async move {
            if done {
                return None;
            }
            loop {
                let mut pulse = state.live.pulse();
                match sse::wait(&mut pulse, tokio::time::sleep(BEAT)).await {
                    sse::Wait::Closing => return None,
                    sse::Wait::Next(()) | sse::Wait::Quiet => {}
                }
                let read = async {
                    let flight = state.room.flight(&state.pool, flight_id).await?;
                    state.room.ticket(&state.pool, &flight, &ticket, true).await
                };
                let now = match read.await {
                    Ok(Some(now)) => QueueTicket::from(now),
                    Ok(None) => return None,
                    // A read that failed is tried again at the next beat.
                    Err(_) => continue,
                };
                if now != last {
                    let done = now.state == TicketState::Expired.as_str();
                    let event = sse::event(None, None, &now);
                    let quiet = tokio::time::Instant::now();
                    return Some((event, (state, flight_id, ticket, now, done, quiet)));
                }
                if quiet.elapsed() >= KEEP_ALIVE {
                    quiet = tokio::time::Instant::now();
                    let keep_alive = sse::KEEP_ALIVE_EVENT.to_string();
                    return Some((keep_alive, (state, flight_id, ticket, last, false, quiet)));
                }
            }
        },
    );
    Ok(sse::respond_leased(
        futures::stream::once(async { head }).chain(stream),
        lease,
    ))
}
