//! `GET /api/events?flight=<id>&order=<id>`: everything a page shows, in one
//! stream. A browser keeps at most six HTTP/1.1 connections per server, so a
//! page holds one stream, not one per thing it shows:
//!
//! - `flights` (snapshot), then `flight` `{flightId, availableSeats}`;
//! - with `flight`: `seats` (snapshot), then `seat` `{seat, status}`;
//! - with `order`: `order` status objects, ids the row's version
//!   (`Last-Event-ID` resumes), none after a terminal status.
//!
//! The parts are the same feeds and order events as the endpoints per
//! resource.

use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use futures::stream::LocalBoxStream;
use serde::Deserialize;

use super::{ApiError, AppState, flights, orders, sse};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// A flight whose seat map to follow.
    #[param(value_type = Option<uuid::Uuid>)]
    flight: Option<String>,
    /// An order whose status to follow.
    #[param(value_type = Option<uuid::Uuid>)]
    order: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    summary = "Everything a page shows, in one stream of server-sent events",
    description = "A browser keeps at most six HTTP/1.1 connections per server, so a page holds \
one stream: `event: flights` (`FlightsSnapshot`), then `event: flight` (`FlightAvailability`) \
per change; with `flight`: `event: seats` (`SeatsSnapshot`), then `event: seat` (`SeatChange`); \
with `order`: `event: order` (`StatusView`) per change, its `id:` the row's version \
(`Last-Event-ID` resumes), none after a terminal status. A `: keep-alive` comment every 15 s; \
the stream does not end by itself.",
    params(
        Page,
        ("Last-Event-ID" = Option<String>, Header, description = "The last `order` event id seen: only newer changes of the order are sent"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`INVALID_FLIGHT_ID`, `INVALID_ORDER_ID`: not a UUID; `INVALID_QUERY`: the query string has the wrong shape", body = super::errors::ErrorBody),
        (status = 404, description = "`FLIGHT_NOT_FOUND`, `ORDER_NOT_FOUND`", body = super::errors::ErrorBody),
        (status = 429, description = "`TOO_MANY_STREAMS`: this client has `MAX_STREAMS_PER_CLIENT` event streams open (16); close one", body = super::errors::ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: Postgres or Redis is down", body = super::errors::ErrorBody),
    ),
)]
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let flight = query
        .flight
        .as_deref()
        .map(flights::flight_id)
        .transpose()?;
    let order = query.order.as_deref().map(orders::order_id).transpose()?;
    let lease = sse::lease(&state, &req).await?;
    let mut parts: Vec<LocalBoxStream<'static, web::Bytes>> = Vec::new();
    let live = &state.live;
    parts.push(
        sse::feed_events(live.clone(), live.flights())
            .await?
            .boxed_local(),
    );
    if let Some(id) = flight {
        crate::store::flights::find(&state.pool, id.into()).await?;
        parts.push(
            sse::feed_events(live.clone(), live.flight(id))
                .await?
                .boxed_local(),
        );
    }
    if let Some(id) = order {
        let sent = orders::last_event_id(&req);
        if let Some(events) = orders::order_events(&state, id, sent, Some("order")).await? {
            parts.push(events.map(web::Bytes::from).boxed_local());
        }
    }
    Ok(sse::respond_leased(
        futures::stream::select_all(parts),
        lease,
    ))
}
