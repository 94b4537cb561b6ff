//! Live updates without polling: one `LISTEN` connection per `serve`
//! process, fanned out to every open stream.
//!
//! Postgres announces every change on the channel `flightctl_changes`, in
//! the transaction that makes it (triggers, `V5__…sql`): `o:<orderId>:<version>`
//! for an order row, `f:<flightId>` for a flight's seats or availability.
//! Nothing here asks Temporal anything: an open stream costs the engine
//! nothing, and one change costs one read per watched order, or one seat-map
//! read per watched flight however many watch it.
//!
//! - An order stream waits on its order's [`watch`] and reads the row when
//!   told it changed.
//! - A flight (and the flight list) has one [`Feed`]: a task that recomputes
//!   the state when told, and every 5 s to catch what no trigger sees (a hold
//!   lapsing in Redis by itself). Its streams diff what they last sent
//!   against the latest state. The task ends with its last stream.
//! - After the connection is (re)established every stream is told to re-read,
//!   so a change made while it was down is not lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::web::Bytes;
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{Notify, watch};
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use crate::store::{Holds, StoreError};

pub const CHANNEL: &str = "flightctl_changes";
/// How often a feed re-reads with no announcement (holds lapsing in Redis).
const RESYNC: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// After a feed is rung, how long it waits for more changes to recompute
/// once for all of them (a burst of bookings on one flight).
const COALESCE: Duration = Duration::from_millis(20);

/// A state a feed streams: its first event, and the events between two.
pub trait Feedable: PartialEq + Send + Sync + 'static {
    /// The whole state, as the event a new stream starts with.
    fn snapshot(&self, seq: u64) -> String;
    /// The events that take a stream from `before` to `self`.
    fn changes(&self, before: &Self, seq: u64) -> String;
}

/// One computed state of a feed, numbered so streams can name their events,
/// with the events from the state before it rendered once for every stream.
#[derive(Debug)]
pub struct Snapshot<T> {
    pub seq: u64,
    pub value: T,
    pub delta: Bytes,
}

type Latest<T> = watch::Sender<Option<Arc<Snapshot<T>>>>;
pub type FeedReceiver<T> = watch::Receiver<Option<Arc<Snapshot<T>>>>;

/// The shared state of one flight's seat map (or of the flight list) and the
/// bell that makes its task recompute it.
struct Feed<T> {
    latest: Latest<T>,
    wake: Arc<Notify>,
}

impl<T> Clone for Feed<T> {
    fn clone(&self) -> Self {
        Self {
            latest: self.latest.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<T> Feed<T> {
    fn new() -> Self {
        Self {
            latest: watch::Sender::new(None),
            wake: Arc::new(Notify::new()),
        }
    }
}

/// `(seat, status)` in seat-map order.
pub type SeatStates = Vec<(String, &'static str)>;
/// `(flightId, availableSeats)` in list order.
pub type Availability = Vec<(Uuid, i32)>;

#[derive(Default)]
struct Registry {
    orders: HashMap<Uuid, watch::Sender<()>>,
    flights: HashMap<Uuid, Feed<SeatStates>>,
    list: Option<Feed<Availability>>,
}

struct Inner {
    pool: Pool,
    holds: Holds,
    registry: Mutex<Registry>,
}

/// The process's live-update hub. Cheap to clone.
#[derive(Clone)]
pub struct Live(Arc<Inner>);

impl Live {
    /// Start listening (in the background, reconnecting by itself).
    pub fn start(pool: Pool, holds: Holds, pg: tokio_postgres::Config) -> Self {
        let live = Self(Arc::new(Inner {
            pool,
            holds,
            registry: Mutex::default(),
        }));
        tokio::spawn(listen(live.clone(), pg));
        live
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.0.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Be told when the order's row changes. Subscribe before reading the
    /// row, so a change between the two is not missed.
    pub fn order(&self, id: Uuid) -> OrderWatch {
        let rx = self
            .registry()
            .orders
            .entry(id)
            .or_insert_with(|| watch::Sender::new(()))
            .subscribe();
        OrderWatch {
            live: self.clone(),
            id,
            rx,
        }
    }

    /// The flight's seat map, kept current.
    pub fn flight(&self, id: Uuid) -> FeedReceiver<SeatStates> {
        let mut registry = self.registry();
        if let Some(feed) = registry.flights.get(&id) {
            return feed.latest.subscribe();
        }
        let feed = Feed::new();
        let rx = feed.latest.subscribe();
        registry.flights.insert(id, feed.clone());
        let (pool, holds) = (self.0.pool.clone(), self.0.holds.clone());
        let compute = move || {
            let (pool, holds) = (pool.clone(), holds.clone());
            async move { super::flights::seat_states(&pool, &holds, id).await }
        };
        let live = self.clone();
        let forget = move || {
            let mut registry = live.registry();
            match registry.flights.get(&id) {
                Some(f) if f.latest.receiver_count() > 0 => false,
                _ => {
                    registry.flights.remove(&id);
                    true
                }
            }
        };
        tokio::spawn(run(feed, compute, forget));
        rx
    }

    /// Every flight's availability, kept current.
    pub fn flights(&self) -> FeedReceiver<Availability> {
        let mut registry = self.registry();
        if let Some(feed) = &registry.list {
            return feed.latest.subscribe();
        }
        let feed = Feed::new();
        let rx = feed.latest.subscribe();
        registry.list = Some(feed.clone());
        let (pool, holds) = (self.0.pool.clone(), self.0.holds.clone());
        let compute = move || {
            let (pool, holds) = (pool.clone(), holds.clone());
            async move { super::flights::availability(&pool, &holds).await }
        };
        let live = self.clone();
        let forget = move || {
            let mut registry = live.registry();
            match &registry.list {
                Some(f) if f.latest.receiver_count() > 0 => false,
                _ => {
                    registry.list = None;
                    true
                }
            }
        };
        tokio::spawn(run(feed, compute, forget));
        rx
    }

    /// Act on one announcement.
    fn dispatch(&self, payload: &str) {
        let registry = self.registry();
        match payload.split(':').collect::<Vec<_>>()[..] {
            ["o", id, _version] => {
                let order = Uuid::parse_str(id).ok();
                if let Some(tx) = order.and_then(|id| registry.orders.get(&id)) {
                    tx.send_replace(());
                }
            }
            ["f", id] => {
                let flight = Uuid::parse_str(id).ok();
                if let Some(feed) = flight.and_then(|id| registry.flights.get(&id)) {
                    feed.wake.notify_one();
                }
                if let Some(feed) = &registry.list {
                    feed.wake.notify_one();
                }
            }
            _ => tracing::debug!(payload, "ignoring an unknown change notice"),
        }
    }

    /// Tell every stream to re-read: announcements may have been missed.
    fn resync(&self) {
        let registry = self.registry();
        for tx in registry.orders.values() {
            tx.send_replace(());
        }
        let list = registry.list.iter().map(|feed| &feed.wake);
        for wake in registry.flights.values().map(|feed| &feed.wake).chain(list) {
            wake.notify_one();
        }
    }

    /// Open streams, by kind (for the metrics and the benchmark).
    pub fn watched(&self) -> (usize, usize) {
        let registry = self.registry();
        let orders = registry.orders.values().map(|tx| tx.receiver_count());
        (orders.sum(), registry.flights.len())
    }
}

/// A subscription to one order's changes; forgets the order when the last
/// one is dropped.
pub struct OrderWatch {
    live: Live,
    id: Uuid,
    rx: watch::Receiver<()>,
}

impl OrderWatch {
    /// Wait for the next change (or re-read request).
    pub async fn changed(&mut self) {
        // The sender lives in the registry as long as this receiver does.
        let _ = self.rx.changed().await;
    }
}

impl Drop for OrderWatch {
    fn drop(&mut self) {
        let mut registry = self.live.registry();
        if registry
            .orders
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            registry.orders.remove(&self.id);
        }
    }
}

/// A feed's task: compute when rung (or every `RESYNC`), publish what
/// changed, end when no stream is left (`forget` says whether it was).
async fn run<T, F, Fut>(feed: Feed<T>, compute: F, forget: impl Fn() -> bool)
where
    T: Feedable,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut seq = 0;
    loop {
        match compute().await {
            Ok(value) => {
                feed.latest.send_if_modified(|latest| {
                    if latest.as_ref().is_some_and(|l| l.value == value) {
                        return false;
                    }
                    seq += 1;
                    let delta = match latest {
                        Some(before) => Bytes::from(value.changes(&before.value, seq)),
                        None => Bytes::new(),
                    };
                    *latest = Some(Arc::new(Snapshot { seq, value, delta }));
                    true
                });
            }
            Err(e) => tracing::warn!(error = %e, "a live feed could not read; retrying"),
        }
        tokio::select! {
            () = feed.wake.notified() => tokio::time::sleep(COALESCE).await,
            () = tokio::time::sleep(RESYNC) => {}
            () = feed.latest.closed() => {
                if forget() {
                    return;
                }
            }
        }
    }
}

/// Hold the `LISTEN` connection, reconnecting with backoff, and dispatch
/// every announcement.
async fn listen(live: Live, pg: tokio_postgres::Config) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match pg.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let dispatcher = live.clone();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => dispatcher.dispatch(n.payload()),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "live updates: connection lost");
                                break;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        tracing::info!("live updates: listening for changes");
                        backoff = Duration::from_millis(250);
                        live.resync();
                        let _ = driver.await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live updates: LISTEN failed");
                        driver.abort();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "live updates: cannot connect to postgres"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
