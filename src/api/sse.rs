//! Server-sent events: framing, keep-alives and the streams of a live feed.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use futures::{Stream, StreamExt};
use serde::Serialize;

use super::live::{FeedReceiver, Feedable, Live};
use super::{ApiError, AppState, ErrorCode};
use crate::store::fairshare::Lease;

/// A comment this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a new stream waits for its feed's first state.
const FIRST_STATE: Duration = Duration::from_secs(5);

pub const KEEP_ALIVE_EVENT: &str = ": keep-alive\n\n";

/// How long a stream counts for its client without a renewal: four
/// keep-alive intervals. A stream renews it as it sends (a quiet one sends
/// a keep-alive every interval), so only the streams of an instance that
/// died lapse, within this.
const STREAM_LEASE: Duration = Duration::from_secs(60);

/// A place among the client's open event streams (`MAX_STREAMS_PER_CLIENT`,
/// counted across every `serve`), or 429 `TOO_MANY_STREAMS`. Taken before
/// anything else a stream costs; given back when the lease drops.
pub async fn lease(state: &AppState, req: &HttpRequest) -> Result<Lease, ApiError> {
    let client = state.client_key(req);
    let max = state.settings.server.max_streams_per_client as usize;
    match state
        .request_share()
        .open_stream(&client, max, STREAM_LEASE)
        .await?
    {
        Ok(lease) => Ok(lease),
        Err(_) => Err(ApiError::new(
            ErrorCode::TooManyStreams,
            format!(
                "this client has {max} event streams open already, as many as it may; close one \
                 and try again"
            ),
        )),
    }
}

/// One event: its type (none: `message`), its id if any, its JSON data.
pub fn event(kind: Option<&str>, id: Option<u64>, data: &impl Serialize) -> String {
    let data = serde_json::to_string(data).unwrap_or_default();
    let kind = kind.map(|k| format!("event: {k}\n")).unwrap_or_default();
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    format!("{kind}{id}data: {data}\n\n")
}

/// One event of type `kind` per item.
pub fn events<C: Serialize>(kind: &str, items: impl Iterator<Item = C>) -> String {
    items.map(|item| event(Some(kind), None, &item)).collect()
}

/// What a stream waiting for its next change got.
pub enum Wait<T> {
    /// The change (or its error).
    Next(T),
    /// Nothing for the keep-alive interval: send a keep-alive comment.
    Quiet,
    /// The server is shutting down: end the stream (the client reconnects,
    /// to another process or to this one once it is back).
    Closing,
}

/// Wait for `next`, at most the keep-alive interval, and not past shutdown.
pub async fn wait<T>(live: &Live, next: impl Future<Output = T>) -> Wait<T> {
    tokio::select! {
        () = live.closing() => Wait::Closing,
        next = tokio::time::timeout(KEEP_ALIVE, next) => next.map_or(Wait::Quiet, Wait::Next),
    }
}

pub fn respond<C: Into<web::Bytes>>(stream: impl Stream<Item = C> + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream.map(|chunk| Ok::<_, actix_web::Error>(chunk.into())))
}

/// `stream` as the response, counted among its client's open streams for
/// as long as it runs: `lease` is renewed as it sends and given back when
/// the stream ends or the client goes.
pub fn respond_leased<C: Into<web::Bytes>>(
    stream: impl Stream<Item = C> + 'static,
    lease: Lease,
) -> HttpResponse {
    let mut renewed = Instant::now();
    respond(stream.map(move |chunk| {
        if renewed.elapsed() >= KEEP_ALIVE {
            renewed = Instant::now();
            lease.renew(STREAM_LEASE);
        }
        chunk
    }))
}

/// A feed as events: first its snapshot event with the whole state, then
/// the events of each change. A stream that kept up sends the events the
/// feed rendered once for all; one that skipped a state renders its own.
pub async fn feed_events<T: Feedable>(
    live: Live,
    mut rx: FeedReceiver<T>,
) -> Result<impl Stream<Item = web::Bytes> + use<T>, ApiError> {
    let first = tokio::time::timeout(FIRST_STATE, rx.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|first| first.clone()))
        .ok_or_else(|| ApiError::unavailable("live feed: no state to send yet"))?;
    let head = web::Bytes::from(first.value.snapshot());
    let rest = futures::stream::unfold((rx, first), move |(mut rx, last)| {
        let live = live.clone();
        async move {
            loop {
                match wait(&live, rx.changed()).await {
                    Wait::Quiet => {
                        let keep_alive = web::Bytes::from_static(KEEP_ALIVE_EVENT.as_bytes());
                        return Some((keep_alive, (rx, last)));
                    }
                    Wait::Closing | Wait::Next(Err(_)) => return None,
                    Wait::Next(Ok(())) => {}
                }
                let Some(now) = rx.borrow_and_update().clone() else {
                    continue;
                };
                let chunk = match now.seq == last.seq + 1 {
                    true => now.delta.clone(),
                    false => web::Bytes::from(now.value.changes(&last.value)),
                };
                if !chunk.is_empty() {
                    return Some((chunk, (rx, now)));
                }
            }
        }
    });
    Ok(futures::stream::once(async { head }).chain(rest))
}

/// A feed as a response, counted among its client's streams (`lease`).
pub async fn feed<T: Feedable>(
    live: Live,
    rx: FeedReceiver<T>,
    lease: Lease,
) -> Result<HttpResponse, ApiError> {
    Ok(respond_leased(feed_events(live, rx).await?, lease))
}
