//! An order's event stream: its status each time its row changes, pushed
//! by Postgres announcements (`api/live.rs`), never polled from Temporal.

use std::time::Duration;

use actix_web::HttpRequest;
use uuid::Uuid;

use super::views::StatusView;
use crate::api::live::{Live, OrderWatch, Pulse};
use crate::api::{ApiError, AppState, sse};
use crate::store::orders::{self, Order};

/// After a failed read, how long an order stream waits to read again.
const REREAD: Duration = Duration::from_secs(1);

struct Events {
    live: Live,
    id: Uuid,
    watch: OrderWatch,
    pulse: Pulse,
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
            true => sse::wait(&mut ev.pulse, tokio::time::sleep(REREAD)).await,
            false => sse::wait(&mut ev.pulse, ev.watch.changed()).await,
        };
        match waited {
            sse::Wait::Next(()) => {}
            sse::Wait::Quiet => return Some((sse::KEEP_ALIVE_EVENT.to_string(), ev)),
            sse::Wait::Closing => return None,
        }
        let read = {
            let _turn = ev.live.read_turn().await;
            orders::find(ev.live.pool(), ev.id.into()).await
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
    let order = orders::find(&state.pool, id.into()).await?;
    if order.status.is_terminal() && order.version <= sent {
        return Ok(None);
    }
    let ev = Events {
        live: state.live.clone(),
        id,
        watch,
        pulse: state.live.pulse(),
        kind,
        max_attempts: state.settings.booking.payment_max_attempts,
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
