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

#[derive(Deserialize)]
pub struct Page {
    flight: Option<String>,
    order: Option<String>,
}

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
    let mut parts: Vec<LocalBoxStream<'static, web::Bytes>> = Vec::new();
    let live = &state.live;
    parts.push(
        sse::feed_events(live.clone(), live.flights())
            .await?
            .boxed_local(),
    );
    if let Some(id) = flight {
        crate::store::flights::find(&state.pool, id).await?;
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
    Ok(sse::respond(futures::stream::select_all(parts)))
}
