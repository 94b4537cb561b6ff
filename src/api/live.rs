//! Live updates without polling: one `LISTEN` connection per `serve`
//! process, fanned out to every open stream.
//!
//! Postgres announces every change on the channel `flightctl_changes`, in
//! the transaction that makes it (triggers, `V5__…sql`): `o:<orderId>:<version>`
//! for an order row, `f:<flightId>` for a flight's seats or availability.
//! Nothing here asks Temporal anything: an open stream costs the engine
//! nothing, and one change costs one row read per stream of that order, or
//! one seat-map read per watched flight however many watch it.
//!
//! - An order stream waits on its order's [`watch`] and reads the row when
//!   told it changed.
//! - A flight (and the flight list) has one [`Feed`]: a task that recomputes
//!   the state when told, and every 5 s to catch what no trigger sees (a hold
//!   lapsing in Redis by itself). Each new state is rendered once — its
//!   snapshot event and the events from the state before — and the bytes are
//!   shared by every stream through a broadcast channel: a change costs a
//!   stream one wake-up and one write, never a read or a serialisation of
//!   its own. The task ends with its last stream.
//! - The channel keeps the last [`CHANGES_KEPT`] changes. A stream that
//!   falls further behind (its client reads too slowly) is not waited for:
//!   it skips what it missed and is sent the latest snapshot event (`seats`
//!   or `flights`) instead, which a client applies as a whole new state,
//!   then follows the changes again.
//! - Keep-alives come from one ticker per process (see [`Live::pulse`]),
//!   never a timer per stream.
//! - After the connection is (re)established every stream is told to re-read,
//!   so a change made while it was down is not lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::web::Bytes;
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use super::seats::{self, Availability, SeatStates};
use crate::store::{Holds, StoreError};

pub const CHANNEL: &str = "flightctl_changes";
/// How the listening connection names itself to Postgres (`pg_stat_activity`).
pub const APPLICATION_NAME: &str = "flightctl-live";
/// How often a feed re-reads with no announcement (holds lapsing in Redis).
const RESYNC: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const HEARTBEAT: Duration = Duration::from_secs(15);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Order rows read at once for streams (a few of the pool's connections).
const READS_AT_ONCE: usize = 4;
/// A feed recomputes at once when rung after a quiet spell, but at most once
/// per this interval: a burst of changes on one flight is read and sent in
/// batches, not as one write per change to every stream.
const MIN_INTERVAL: Duration = Duration::from_millis(75);
/// The changes a feed keeps for streams that are behind; one further behind
/// is resynchronised with a snapshot.
pub const CHANGES_KEPT: usize = 64;
/// A stream sends a keep-alive comment this often.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The keep-alive ticker's slots: it rings one slot every
/// `KEEP_ALIVE / BEATS`, so the streams' keep-alives are spread over the
/// interval rather than written all at once.
const BEATS: usize = 15;

/// A state a feed streams: its first event, and the events between two.
/// (Feed events carry no id: a reconnect starts from a new snapshot.)
pub trait Feedable: PartialEq + Send + Sync + 'static {
    /// The whole state, as the event a new stream starts with.
    fn snapshot(&self) -> String;
    /// The events that take a stream from `before` to `self`.
    fn changes(&self, before: &Self) -> String;
}

/// One computed state of a feed, numbered, with its snapshot event rendered
/// once for every stream that starts from it or resynchronises to it.
#[derive(Debug)]
pub struct Snapshot<T> {
    pub seq: u64,
    pub value: T,
    pub snapshot: Bytes,
}

/// The events that take a stream from state `seq - 1` to state `seq`,
/// rendered once and shared by every stream.
#[derive(Clone, Debug)]
pub struct Change {
    pub seq: u64,
    pub events: Bytes,
}

type Latest<T> = watch::Sender<Option<Arc<Snapshot<T>>>>;

/// A stream's subscription to a feed: the latest state (to start from, and
/// to resynchronise to) and the changes after it.
pub struct FeedReceiver<T> {
    pub latest: watch::Receiver<Option<Arc<Snapshot<T>>>>,
    pub changes: broadcast::Receiver<Change>,
}

/// The shared state of one flight's seat map (or of the flight list) and the
/// bell that makes its task recompute it.
struct Feed<T> {
    latest: Latest<T>,
    changes: broadcast::Sender<Change>,
    wake: Arc<Notify>,
}

impl<T> Clone for Feed<T> {
    fn clone(&self) -> Self {
        Self {
            latest: self.latest.clone(),
            changes: self.changes.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<T: Feedable> Feed<T> {
    fn new() -> Self {
        Self {
            latest: watch::Sender::new(None),
            changes: broadcast::Sender::new(CHANGES_KEPT),
            wake: Arc::new(Notify::new()),
        }
    }

    /// A new stream's subscription: to the changes first, then the latest
    /// state, so no change after the state it starts from is missed.
    fn subscribe(&self) -> FeedReceiver<T> {
        let changes = self.changes.subscribe();
        FeedReceiver {
            latest: self.latest.subscribe(),
            changes,
        }
    }

    /// Publish `value` if it differs from the latest state: the state
    /// first, then the change, so a stream that subscribed in between finds
    /// the change in its snapshot (and skips it by its number).
    fn publish(&self, seq: &mut u64, value: T) {
        let mut change = None;
        self.latest.send_if_modified(|latest| {
            if latest.as_ref().is_some_and(|l| l.value == value) {
                return false;
            }
            *seq += 1;
            if let Some(before) = latest {
                let events = Bytes::from(value.changes(&before.value));
                change = Some(Change { seq: *seq, events });
            }
            let snapshot = Bytes::from(value.snapshot());
            *latest = Some(Arc::new(Snapshot {
                seq: *seq,
                value,
                snapshot,
            }));
            true
        });
        if let Some(change) = change {
            // No receiver: no stream to tell.
            let _ = self.changes.send(change);
        }
    }
}

#[derive(Default)]
struct Registry {
    orders: HashMap<Uuid, watch::Sender<()>>,
    flights: HashMap<Uuid, Feed<SeatStates>>,
    /// The flight list's feed: one, under the key `()`.
    lists: HashMap<(), Feed<Availability>>,
}

/// Where a kind of feed is kept in the registry.
type Table<K, T> = fn(&mut Registry) -> &mut HashMap<K, Feed<T>>;

struct Inner {
    pool: Pool,
    holds: Holds,
    registry: Mutex<Registry>,
    /// The runtime feeds run on: the process's, not the actix worker's that
    /// happened to open a feed's first stream.
    runtime: tokio::runtime::Handle,
    /// Set when the process shuts down: every stream ends.
    closing: watch::Sender<bool>,
    /// The keep-alive ticker's slots (see [`Live::pulse`]).
    beats: Vec<watch::Sender<()>>,
    /// The slot the next stream is given.
    next_beat: std::sync::atomic::AtomicUsize,
    /// Bounds the order rows read at once by order streams (all of them
    /// re-read after a reconnect), so they cannot starve bookings of
    /// connections.
    reads: Semaphore,
}

/// The process's live-update hub. Cheap to clone.
#[derive(Clone)]
pub struct Live(Arc<Inner>);

impl Live {
    /// Start listening (in the background, reconnecting by itself). Call it
    /// on the runtime feeds should run on.
    pub fn start(pool: Pool, holds: Holds, pg: tokio_postgres::Config) -> Self {
        let live = Self(Arc::new(Inner {
            pool,
            holds,
            registry: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            reads: Semaphore::new(READS_AT_ONCE),
            closing: watch::Sender::new(false),
            beats: beats(),
            next_beat: Default::default(),
        }));
        let mut pg = pg;
        pg.application_name(APPLICATION_NAME);
        tokio::spawn(listen(live.clone(), pg));
        tokio::spawn(tick(Arc::downgrade(&live.0)));
        live
    }

    /// What a stream waits on besides its own changes: the process closing,
    /// and its keep-alive slot, rung by the one ticker every
    /// [`KEEP_ALIVE`] (slots are handed out in turn, so the streams'
    /// keep-alives are spread over the interval).
    pub fn pulse(&self) -> Pulse {
        use std::sync::atomic::Ordering::Relaxed;
        let slot = self.0.next_beat.fetch_add(1, Relaxed) % BEATS;
        let mut beat = self.0.beats[slot].subscribe();
        beat.mark_unchanged();
        Pulse {
            closing: self.0.closing.subscribe(),
            beat,
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.0.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// End every stream: the server is shutting down, and would otherwise
    /// wait its whole shutdown timeout for streams that never end.
    pub fn close(&self) {
        self.0.closing.send_replace(true);
    }

    /// Resolves once [`Live::close`] was called.
    pub async fn closing(&self) {
        let mut closing = self.0.closing.subscribe();
        // The sender lives as long as `self`.
        let _ = closing.wait_for(|closing| *closing).await;
    }

    pub fn pool(&self) -> &Pool {
        &self.0.pool
    }

    /// Wait for a turn to read an order row for a stream.
    pub async fn read_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed.
        self.0
            .reads
            .acquire()
            .await
            .expect("the read semaphore is open")
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
            rx,
            _forget: ForgetOrder {
                live: self.clone(),
                id,
            },
        }
    }

    /// The flight's seat map, kept current.
    pub fn flight(&self, id: Uuid) -> FeedReceiver<SeatStates> {
        self.feed(
            |r| &mut r.flights,
            id,
            move |pool, holds| async move { seats::seat_states(&pool, &holds, id).await },
        )
    }

    /// Every flight's availability, kept current.
    pub fn flights(&self) -> FeedReceiver<Availability> {
        self.feed(
            |r| &mut r.lists,
            (),
            |pool, holds| async move { seats::availability(&pool, &holds).await },
        )
    }

    /// Subscribe to the feed under `key`, starting it if none runs.
    fn feed<K, T, C, Fut>(&self, table: Table<K, T>, key: K, compute: C) -> FeedReceiver<T>
    where
        K: std::hash::Hash + Eq + Copy + Send + 'static,
        T: Feedable,
        C: Fn(Pool, Holds) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let mut registry = self.registry();
        if let Some(feed) = table(&mut registry).get(&key) {
            return feed.subscribe();
        }
        let feed = Feed::new();
        let rx = feed.subscribe();
        table(&mut registry).insert(key, feed.clone());
        let (live, inner) = (self.clone(), self.0.clone());
        let compute = move || compute(inner.pool.clone(), inner.holds.clone());
        self.0.runtime.spawn(async move {
            let _forget = Forget {
                live,
                table,
                key,
                feed: feed.clone(),
            };
            run(feed, compute).await;
        });
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
                for feed in registry.lists.values() {
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
        let list = registry.lists.values().map(|feed| &feed.wake);
        for wake in registry.flights.values().map(|feed| &feed.wake).chain(list) {
            wake.notify_one();
        }
    }
}

/// Removes a feed from the registry when its task ends, however it ends
/// (a panic included: its streams then end, and reconnect to a new feed).
struct Forget<K: std::hash::Hash + Eq, T> {
    live: Live,
    table: Table<K, T>,
    key: K,
    feed: Feed<T>,
}

impl<K: std::hash::Hash + Eq, T> Drop for Forget<K, T> {
    fn drop(&mut self) {
        let mut registry = self.live.registry();
        let table = (self.table)(&mut registry);
        if table
            .get(&self.key)
            .is_some_and(|f| f.latest.same_channel(&self.feed.latest))
        {
            table.remove(&self.key);
        }
    }
}

/// A subscription to one order's changes; forgets the order when the last
/// one is dropped.
pub struct OrderWatch {
    // Fields drop in order: the receiver is gone before `_forget` counts
    // the receivers left.
    rx: watch::Receiver<()>,
    _forget: ForgetOrder,
}

impl OrderWatch {
    /// Wait for the next change (or re-read request).
    pub async fn changed(&mut self) {
        // The sender lives in the registry as long as this receiver does.
        let _ = self.rx.changed().await;
    }
}

/// Removes an order's entry once no receiver of it is left. It runs after
/// its watch's receiver is dropped, so it never counts its own: of two
/// watches dropped at once, the later check sees zero, whichever it is. A
/// watch opened meanwhile keeps the entry, and forgets it when it ends.
struct ForgetOrder {
    live: Live,
    id: Uuid,
}

impl Drop for ForgetOrder {
    fn drop(&mut self) {
        let mut registry = self.live.registry();
        if registry
            .orders
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            registry.orders.remove(&self.id);
        }
    }
}

/// A feed's task: compute when rung (or every `RESYNC`), publish what
/// changed; end when its last stream has gone (the registry holds a sender,
/// so that is when no receiver is left).
async fn run<T, F, Fut>(feed: Feed<T>, compute: F)
where
    T: Feedable,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut seq = 0;
    loop {
        let computed = tokio::time::Instant::now();
        match compute().await {
            Ok(value) => feed.publish(&mut seq, value),
            Err(e) => tracing::warn!(error = %e.report(), "a live feed could not read; retrying"),
        }
        tokio::select! {
            () = feed.wake.notified() => tokio::time::sleep_until(computed + MIN_INTERVAL).await,
            () = tokio::time::sleep(RESYNC) => {}
            () = feed.latest.closed() => return,
        }
    }
}

/// What a stream waits on besides its changes: the process closing, and
/// its slot of the shared keep-alive ticker.
pub struct Pulse {
    pub closing: watch::Receiver<bool>,
    pub beat: watch::Receiver<()>,
}

fn beats() -> Vec<watch::Sender<()>> {
    (0..BEATS).map(|_| watch::Sender::new(())).collect()
}

/// The process's one keep-alive ticker: rings one slot every
/// `KEEP_ALIVE / BEATS`, so each slot every `KEEP_ALIVE`. Ends with the hub.
async fn tick(live: std::sync::Weak<Inner>) {
    let every = KEEP_ALIVE / BEATS as u32;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for slot in (0..BEATS).cycle() {
        ticker.tick().await;
        let Some(inner) = live.upgrade() else { return };
        inner.beats[slot].send_replace(());
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
                let mut driver = tokio::spawn(async move {
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
                        heartbeat(&client, &mut driver).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "live updates: LISTEN failed"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "live updates: cannot connect to postgres"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Until the connection is lost, prove it alive every `HEARTBEAT`: a
/// connection dropped without a reset (a NAT, a failover) errors only when
/// written to, and until then would silence every stream.
async fn heartbeat(client: &tokio_postgres::Client, driver: &mut tokio::task::JoinHandle<()>) {
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            _ = &mut *driver => return,
            _ = beat.tick() => {
                let ping = tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("SELECT 1"));
                if !matches!(ping.await, Ok(Ok(_))) {
                    tracing::warn!("live updates: the connection stopped answering");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub that never connects: the order registry needs no server.
    fn live() -> Live {
        let manager =
            deadpool_postgres::Manager::new(tokio_postgres::Config::new(), tokio_postgres::NoTls);
        let pool = Pool::builder(manager).build().expect("a lazy pool");
        let redis = fred::prelude::Builder::default_centralized()
            .build()
            .expect("an unconnected client");
        Live(Arc::new(Inner {
            pool,
            holds: Holds::new(redis, "test"),
            registry: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            closing: watch::Sender::new(false),
            reads: Semaphore::new(READS_AT_ONCE),
            beats: beats(),
            next_beat: Default::default(),
        }))
    }

    fn watched(live: &Live, id: Uuid) -> bool {
        live.registry().orders.contains_key(&id)
    }

    #[tokio::test]
    async fn the_last_of_two_order_watches_forgets_the_order_in_either_order() {
        let live = live();
        let id = Uuid::new_v4();
        for first_dropped in [0, 1] {
            let mut watches = vec![live.order(id), live.order(id)];
            drop(watches.remove(first_dropped));
            assert!(watched(&live, id), "one watch is still open");
            drop(watches);
            assert!(!watched(&live, id), "no watch is open");
        }
    }

    /// Two streams of one order ending together. The registry is held
    /// while both drops start, so both wait for it and run back to back: a
    /// drop that counted its own receiver saw the other's still open, and
    /// each left the entry to the other.
    #[tokio::test]
    async fn order_watches_dropped_together_leave_no_entry() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let live = live();
        for _ in 0..50 {
            let id = Uuid::new_v4();
            let (a, b) = (live.order(id), live.order(id));
            let started = AtomicUsize::new(0);
            let held = live.registry();
            std::thread::scope(|s| {
                for watch in [a, b] {
                    let started = &started;
                    s.spawn(move || {
                        started.fetch_add(1, SeqCst);
                        drop(watch);
                    });
                }
                while started.load(SeqCst) < 2 {
                    std::thread::yield_now();
                }
                // Let both drops reach the lock and wait for it.
                std::thread::sleep(Duration::from_millis(2));
                drop(held);
            });
            assert!(!watched(&live, id), "the registry leaked order {id}");
        }
    }

    #[tokio::test]
    async fn a_watch_opened_while_another_closes_keeps_the_order_watched() {
        let live = live();
        let id = Uuid::new_v4();
        let first = live.order(id);
        let second = live.order(id);
        drop(first);
        let third = live.order(id);
        drop(second);
        assert!(watched(&live, id), "the third watch is open");
        drop(third);
        assert!(!watched(&live, id));
    }

    /// A test feed's state: a counter; each change one event naming it.
    #[derive(PartialEq, Debug)]
    struct Count(u64);

    impl Feedable for Count {
        fn snapshot(&self) -> String {
            format!("snapshot {}\n\n", self.0)
        }
        fn changes(&self, _before: &Self) -> String {
            format!("change {}\n\n", self.0)
        }
    }

    fn text(chunk: &Bytes) -> String {
        String::from_utf8_lossy(chunk).into_owned()
    }

    /// Every stream of a feed gets each change exactly once, in order, from
    /// bytes rendered once; a stream that is not read while more than
    /// `CHANGES_KEPT` changes pass holds no one up: the others get every
    /// change meanwhile, and it is sent the latest snapshot, then follows
    /// the changes again, each once.
    #[tokio::test]
    async fn each_change_reaches_every_stream_once_and_a_slow_one_resyncs() {
        use futures::StreamExt;
        let live = live();
        let feed: Feed<Count> = Feed::new();
        let mut seq = 0;
        feed.publish(&mut seq, Count(0));
        let open = || async {
            let events = crate::api::sse::feed_events(live.clone(), feed.subscribe()).await;
            Box::pin(events.unwrap_or_else(|_| panic!("a first state")))
        };
        let (mut fast, mut other, mut slow) = (open().await, open().await, open().await);
        for stream in [&mut fast, &mut other, &mut slow] {
            assert_eq!(text(&stream.next().await.unwrap()), "snapshot 0\n\n");
        }
        let changes = CHANGES_KEPT as u64 * 2;
        for n in 1..=changes {
            feed.publish(&mut seq, Count(n));
            // An equal state is no change.
            feed.publish(&mut seq, Count(n));
            for stream in [&mut fast, &mut other] {
                assert_eq!(
                    text(&stream.next().await.unwrap()),
                    format!("change {n}\n\n")
                );
            }
        }
        // The rendered bytes are shared, not copied per stream.
        feed.publish(&mut seq, Count(changes + 1));
        let (a, b) = (fast.next().await.unwrap(), other.next().await.unwrap());
        assert_eq!(a.as_ptr(), b.as_ptr(), "one rendering for every stream");
        // The slow stream skipped what it missed: one snapshot, then on.
        assert_eq!(
            text(&slow.next().await.unwrap()),
            format!("snapshot {}\n\n", changes + 1)
        );
        feed.publish(&mut seq, Count(changes + 2));
        for stream in [&mut fast, &mut other, &mut slow] {
            let next = text(&stream.next().await.unwrap());
            assert_eq!(next, format!("change {}\n\n", changes + 2));
        }
        // Nothing more is pending for anyone: no change sent twice.
        for stream in [&mut fast, &mut other, &mut slow] {
            let more = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
            assert!(
                more.is_err(),
                "nothing more: {:?}",
                more.ok().flatten().map(|c| text(&c))
            );
        }
    }

    /// A stream that subscribed while a change was being published starts
    /// from a state that has it, and never gets it again.
    #[tokio::test]
    async fn a_change_in_the_starting_snapshot_is_not_sent_again() {
        use futures::StreamExt;
        let live = live();
        let feed: Feed<Count> = Feed::new();
        let mut seq = 0;
        feed.publish(&mut seq, Count(0));
        // Subscribed to the changes, then the state moved on before the
        // stream read it: the change is both buffered and in the snapshot.
        let rx = feed.subscribe();
        feed.publish(&mut seq, Count(1));
        let mut stream = Box::pin(
            crate::api::sse::feed_events(live.clone(), rx)
                .await
                .ok()
                .unwrap(),
        );
        assert_eq!(text(&stream.next().await.unwrap()), "snapshot 1\n\n");
        feed.publish(&mut seq, Count(2));
        assert_eq!(text(&stream.next().await.unwrap()), "change 2\n\n");
        // A few behind: caught up in one write, each change once.
        for n in 3..=5 {
            feed.publish(&mut seq, Count(n));
        }
        let caught_up = text(&stream.next().await.unwrap());
        assert_eq!(caught_up, "change 3\n\nchange 4\n\nchange 5\n\n");
    }
}
