//! Server-sent events: framing, keep-alives and the streams of a live feed.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::live::{FeedReceiver, Feedable, Live, Pulse};
use super::{ApiError, AppState, ErrorCode};
use crate::store::fairshare::{self, Lease};

/// How long a new stream waits for its feed's first state.
const FIRST_STATE: Duration = Duration::from_secs(5);

pub const KEEP_ALIVE_EVENT: &str = ": keep-alive\n\n";

/// How long a stream counts for its client without a renewal: four
/// renewal intervals. Every open stream of a process is renewed together,
/// once an interval, in one batch (`store::fairshare`), so only the streams
/// of an instance that died lapse, within this.
const STREAM_LEASE: Duration = Duration::from_secs(4 * fairshare::RENEW_EVERY.as_secs());

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

/// Wait for `next`, until the stream's keep-alive slot rings (`Quiet`:
/// send a keep-alive; every quiet stream sends one each interval), and not
/// past shutdown. No timer of its own: the process's one ticker rings the
/// slot.
pub async fn wait<T>(pulse: &mut Pulse, next: impl Future<Output = T>) -> Wait<T> {
    if *pulse.closing.borrow() {
        return Wait::Closing;
    }
    tokio::select! {
        // Only ever set to true; the hub gone ends the stream too.
        _ = pulse.closing.changed() => Wait::Closing,
        beat = pulse.beat.changed() => match beat {
            Ok(()) => Wait::Quiet,
            Err(_) => Wait::Closing,
        },
        next = next => Wait::Next(next),
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
/// as long as it runs: `lease` is renewed with every other stream of the
/// process (`store::fairshare`) and given back when the stream ends or the
/// client goes.
pub fn respond_leased<C: Into<web::Bytes>>(
    stream: impl Stream<Item = C> + 'static,
    lease: Lease,
) -> HttpResponse {
    respond(stream.map(move |chunk| {
        let _held = &lease;
        chunk
    }))
}

/// A feed stream's place: the changes it follows, the number of the state
/// it last sent, and its pulse.
struct Following<T> {
    rx: FeedReceiver<T>,
    sent: u64,
    pulse: Pulse,
}

impl<T> Following<T> {
    /// `events`, and the changes already waiting after them in one write:
    /// a stream that was not polled for a while catches up in one chunk.
    /// (Most often none wait, and the shared bytes go out as they are.)
    fn and_pending(&mut self, events: web::Bytes) -> Option<web::Bytes> {
        use tokio::sync::broadcast::error::TryRecvError;
        let mut more: Option<web::BytesMut> = None;
        loop {
            match self.rx.changes.try_recv() {
                Ok(change) if change.seq <= self.sent => {}
                Ok(change) if change.seq == self.sent + 1 => {
                    self.sent = change.seq;
                    let chunk = more.get_or_insert_with(|| web::BytesMut::from(&events[..]));
                    chunk.extend_from_slice(&change.events);
                }
                Ok(_) | Err(TryRecvError::Lagged(_)) => return self.resync(),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let chunk = more.map_or(events, web::BytesMut::freeze);
        Some(chunk).filter(|chunk| !chunk.is_empty())
    }

    /// The latest snapshot event, for a stream that fell behind: it skips
    /// what it missed, and follows the changes from the newest on (kept at
    /// the oldest, it would fall behind again with the next change).
    fn resync(&mut self) -> Option<web::Bytes> {
        self.rx.changes = self.rx.changes.resubscribe();
        let now = self.rx.latest.borrow().clone()?;
        tracing::debug!(seq = now.seq, "a slow stream is sent the latest snapshot");
        self.sent = now.seq;
        Some(now.snapshot.clone())
    }
}

/// A feed as events: first its snapshot event with the whole state, then
/// the events of each change, rendered once by the feed and shared. A
/// stream more than [`super::live::CHANGES_KEPT`] changes behind is sent
/// the latest snapshot event instead of what it missed.
pub async fn feed_events<T: Feedable>(
    live: Live,
    mut rx: FeedReceiver<T>,
) -> Result<impl Stream<Item = web::Bytes> + use<T>, ApiError> {
    let first = tokio::time::timeout(FIRST_STATE, rx.latest.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|first| first.clone()))
        .ok_or_else(|| ApiError::unavailable("live feed: no state to send yet"))?;
    let head = first.snapshot.clone();
    let following = Following {
        rx,
        sent: first.seq,
        pulse: live.pulse(),
    };
    let rest = futures::stream::unfold(following, |mut f| async move {
        loop {
            let chunk = match wait(&mut f.pulse, f.rx.changes.recv()).await {
                Wait::Quiet => Some(web::Bytes::from_static(KEEP_ALIVE_EVENT.as_bytes())),
                Wait::Closing | Wait::Next(Err(RecvError::Closed)) => return None,
                Wait::Next(Err(RecvError::Lagged(_))) => f.resync(),
                // Already in the state it started from (or resynchronised to).
                Wait::Next(Ok(change)) if change.seq <= f.sent => None,
                Wait::Next(Ok(change)) if change.seq == f.sent + 1 => {
                    f.sent = change.seq;
                    f.and_pending(change.events)
                }
                Wait::Next(Ok(_)) => f.resync(),
            };
            if let Some(chunk) = chunk {
                return Some((chunk, f));
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
