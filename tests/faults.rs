//! The fault suite: mixed customer traffic (hold, change, pay with random
//! codes, cancel, abandon) while the worker, `serve`, Redis (its data lost),
//! Temporal and Postgres are killed and restarted one after another, and
//! Postgres and Temporal are stalled (every process stopped with SIGSTOP for
//! seconds, then continued); then every order must settle and the books
//! must balance:
//!
//! - every booked seat belongs to exactly one CONFIRMED order listing it;
//! - no order is left in a live state;
//! - no Redis hold belongs to an ended (or unknown) order;
//! - `available_seats` equals the count of available seats;
//! - no order was changed by a request answered non-2xx (other than 504
//!   `OUTCOME_UNKNOWN`): any other non-2xx changed nothing, now or later;
//! - every live order's holds outlive its `expiresAt` plus the one-minute
//!   margin (sampled during the traffic and right after each recovery);
//! - every final answer matches the order's real state: a 201 has its row,
//!   an accepted payment (202) ended CONFIRMED or FAILED after an attempt,
//!   a cancel answered 200 ended CANCELLED, and a keyed request's final
//!   refusal (after its retries) changed nothing.
//!
//! Two kinds of customers: those that retry as the API asks (an
//! `Idempotency-Key` on every create and payment, a 503, a 504 or no answer
//! retried after `Retry-After`, as the web UI retries a 503), and those
//! that never retry (one try, half
//! of them with a key; on any non-2xx they record the answer and leave the
//! order alone).
//!
//! Everything runs on servers of its own (Postgres, Redis, a file-backed
//! Temporal dev server) and real `flightctl serve` / `flightctl worker`
//! processes, so killing them touches no other test. It prints what it
//! injected, each fault's recovery time, the orders' outcome and what each
//! invariant checked.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fred::prelude::{ClientLike, KeysInterface};
use fred::types::{ClusterHash, CustomCommand};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use support::servers::{Postgres, Redis, Temporal};
use support::{FL201, Proc, procs};
use tokio::time::Instant;
use uuid::Uuid;

/// Concurrent virtual customers that retry with their key, and that never
/// retry.
const RETRYING: usize = 4;
const ONE_SHOT: usize = 3;
/// Rows (of six seats) of the flight the customers book: enough that a fast
/// run does not sell it out.
const FLIGHT_ROWS: i32 = 200;
/// Seats a customer chooses from: the first available ones of the flight,
/// so customers collide.
const WINDOW: usize = 24;
/// Traffic before the first fault, and between a recovery and the next fault.
const WARMUP: Duration = Duration::from_secs(8);
const GAP: Duration = Duration::from_secs(10);
/// A retrying customer's request answered 503, 504 or not at all is
/// retried (same key) this long.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// A fault must be recovered from within this.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// Every order must reach an ending within this once traffic stops.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// An up-front claim of a create the API did not answer 201 lapses within
/// `API_CALL_TIMEOUT` + 2 s grace + 3 s (8 s); Redis is checked after this.
const CLAIM_LAPSE: Duration = Duration::from_secs(10);
/// Short hold and payment window, so abandoned orders expire in the test.
const HOLD: &str = "8s";
const HOLD_MS: i64 = 8_000;
const PAYMENT_TIMEOUT: &str = "2s";
/// How long a stall keeps a server's processes stopped.
const STALL: Duration = Duration::from_secs(7);
/// Live orders' holds are sampled this often during the traffic.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// A hold outlives its order's `expiresAt` by this margin (hold + 1 min),
/// less this slack for clocks and the time the sample takes.
const TTL_MARGIN_MS: i64 = 60_000;
const TTL_SLACK_MS: i64 = 3_000;
/// Violations quoted per invariant in the failure message.
const EXAMPLES: usize = 5;

const LIVE: &[&str] = &[
    "CREATED",
    "SEATS_RESERVED",
    "PAYMENT_PENDING",
    "PAYMENT_PROCESSING",
    // A refund under way: settles too (it holds no Redis hold).
    "REFUND_PENDING",
];

/// How a customer treats an answer other than 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Creates and payments carry an `Idempotency-Key`; a 503, a 504 or no
    /// answer is retried (the same key) after `Retry-After`, as the web UI
    /// retries a 503, for at most `RETRY_FOR`.
    Retrying,
    /// One try (creates and payments with a key half of the time): on any
    /// non-2xx, or no answer, it records the answer and leaves the order.
    OneShot,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Retrying => "retry",
            Kind::OneShot => "once",
        }
    }
}

/// A status of an order whose seats were sold (whatever its refund did).
fn was_sold(status: &str) -> bool {
    status == "CONFIRMED" || status.starts_with("REFUND")
}

/// An answer that says nothing was changed, nor will be: every non-2xx
/// but 504 `OUTCOME_UNKNOWN` (no answer at all is code 0, not one).
fn refusal(code: u16) -> bool {
    code >= 300 && code != 504
}

/// One customer request and every answer it got.
struct Request {
    kind: Kind,
    call: &'static str,
    keyed: bool,
    /// The order it targets (change, pay, cancel), or the one its 201 named
    /// (create).
    order: Option<Uuid>,
    /// Orders named by its 504 answers (a create's order is known only so).
    named: Vec<Uuid>,
    /// Each try's answer: status code (0: no answer) and error code.
    answers: Vec<(u16, String)>,
    /// The answer it ended on, unless that left the outcome open: none
    /// when a retrying customer's retries ran out, or a one-shot request
    /// was answered 504 or not at all.
    settled: Option<u16>,
    /// The order's seats before the request (change).
    seats_before: Vec<String>,
}

impl Request {
    /// Every answer was a refusal: nothing was changed, nor will be.
    fn refused(&self) -> bool {
        !self.answers.is_empty() && self.answers.iter().all(|(code, _)| refusal(*code))
    }

    /// A try that was answered 504 or not at all.
    fn unknown(&self) -> bool {
        self.answers
            .iter()
            .any(|(code, _)| *code == 0 || *code == 504)
    }

    fn describe(&self) -> String {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(code, error)| match code {
                0 => "no answer".to_string(),
                _ if error.is_empty() => code.to_string(),
                _ => format!("{code} {error}"),
            })
            .collect();
        format!(
            "{} {}{} answered [{}]",
            self.kind.label(),
            self.call,
            if self.keyed { " (keyed)" } else { "" },
            answers.join(", ")
        )
    }
}

/// What a request got.
struct Reply {
    answers: Vec<(u16, String)>,
    named: Vec<Uuid>,
    /// The last answer, unless it left the outcome open (see `Request`).
    settled: Option<(u16, Value)>,
}

/// The order a 504's message names (`/api/orders/<id>/status`).
fn named_order(body: &Value) -> Option<Uuid> {
    let message = body["message"].as_str()?;
    let at = message.find("/api/orders/")? + "/api/orders/".len();
    message.get(at..at + 36)?.parse().ok()
}

/// What the customers saw.
#[derive(Default)]
struct Journal {
    /// `"<kind> <call> <answer>"` (answer: status code and error code, or
    /// `conn`) → count.
    answers: BTreeMap<String, usize>,
    /// Every request, with its answers.
    requests: Vec<Request>,
    /// Orders answered 201.
    created: Vec<Uuid>,
    /// Orders whose payment was answered 202.
    paid: HashSet<Uuid>,
    /// Orders whose payment got no final answer within `RETRY_FOR`.
    pay_unresolved: HashSet<Uuid>,
    /// Creates that got no final answer within `RETRY_FOR`.
    create_unresolved: usize,
    /// Why requests got no final answer: `"<call>: <last 503 message>"`.
    unresolved: BTreeMap<String, usize>,
    /// Orders answered 200 to DELETE.
    cancelled: HashSet<Uuid>,
    /// Confirmed bookings whose cancellation was answered 202.
    refund_asked: HashSet<Uuid>,
    /// Orders created by the recovery probe.
    probes: Vec<Uuid>,
}

/// The hold-lifetime samples: every live order's holds against its
/// `expiresAt`.
#[derive(Default)]
struct HoldSamples {
    /// Samples taken, and those a store did not answer in time.
    samples: usize,
    failed: usize,
    /// Samples skipped while Redis was down.
    redis_down: usize,
    /// What the answered samples found, together.
    found: Sample,
}

/// What one sample (or all of them) found.
#[derive(Default)]
struct Sample {
    /// Live orders and seat holds checked.
    orders: usize,
    holds: usize,
    /// Orders left out: selected before Redis came back empty.
    lost_with_redis: usize,
    /// Orders that changed while sampled (a short or missing hold of theirs
    /// is not counted).
    moved: usize,
    /// The least a hold outlived its order's `expiresAt` + margin (ms).
    least_spare_ms: Option<i64>,
    violations: Vec<String>,
}

impl Sample {
    fn spare(&mut self, ms: i64) {
        self.least_spare_ms = Some(self.least_spare_ms.map_or(ms, |least| least.min(ms)));
    }

    /// Add another sample's findings, its violations marked `when`.
    fn add(&mut self, other: Sample, when: &str) {
        self.orders += other.orders;
        self.holds += other.holds;
        self.lost_with_redis += other.lost_with_redis;
        self.moved += other.moved;
        if let Some(ms) = other.least_spare_ms {
            self.spare(ms);
        }
        self.violations
            .extend(other.violations.into_iter().map(|v| format!("{when}: {v}")));
    }
}

/// Redis's data is lost when it is killed: holds of orders selected before
/// it came back are gone until the order pays (the re-check takes them
/// again), changes or ends.
#[derive(Default)]
struct RedisOutage {
    down: bool,
    back_at: Option<DateTime<Utc>>,
}

struct Shared {
    /// `serve`'s address: a restarted `serve` takes the same port.
    base: String,
    http: reqwest::Client,
    flight: String,
    stop: AtomicBool,
    journal: Mutex<Journal>,
    pool: deadpool_postgres::Pool,
    redis: fred::prelude::Client,
    prefix: String,
    outage: Mutex<RedisOutage>,
    holds: Mutex<HoldSamples>,
}

impl Shared {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn note(&self, kind: Kind, call: &str, answer: &str) {
        *self
            .journal
            .lock()
            .unwrap()
            .answers
            .entry(format!("{} {call} {answer}", kind.label()))
            .or_default() += 1;
    }

    /// One request. A retrying customer retries it (with the same
    /// `Idempotency-Key`) after a 503, a 504 or no answer, waiting what
    /// `Retry-After` says, for at most `RETRY_FOR`; a one-shot customer
    /// tries once.
    async fn call(
        &self,
        kind: Kind,
        call: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Reply {
        let start = Instant::now();
        let mut reply = Reply {
            answers: Vec::new(),
            named: Vec::new(),
            settled: None,
        };
        let mut last: String;
        loop {
            let mut req = self.http.request(method.clone(), self.url(path));
            if let Some(body) = &body {
                req = req.json(body);
            }
            if let Some(key) = key {
                req = req.header("Idempotency-Key", key);
            }
            let wait = match req.send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    let text = resp.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    let error = body["error"].as_str().unwrap_or_default().to_string();
                    self.note(kind, call, format!("{code} {error}").trim_end());
                    reply.answers.push((code, error));
                    if code == 504
                        && let Some(order) = named_order(&body)
                        && !reply.named.contains(&order)
                    {
                        reply.named.push(order);
                    }
                    let again = code == 503 || code == 504;
                    if kind == Kind::OneShot || !again {
                        if code != 504 {
                            reply.settled = Some((code, body));
                        }
                        return reply;
                    }
                    last = body["message"].as_str().unwrap_or_default().to_string();
                    // As the web UI: Retry-After, 1 to 5 s, a little jitter.
                    let jitter = rand::rng().random_range(0..250);
                    Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 5))
                        + Duration::from_millis(jitter)
                }
                Err(_) => {
                    self.note(kind, call, "conn");
                    reply.answers.push((0, String::new()));
                    if kind == Kind::OneShot {
                        return reply;
                    }
                    last = "no answer".into();
                    Duration::from_millis(500)
                }
            };
            if start.elapsed() > RETRY_FOR {
                *self
                    .journal
                    .lock()
                    .unwrap()
                    .unresolved
                    .entry(format!("{call}: {last}"))
                    .or_default() += 1;
                return reply;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Journal a request: what it targets and every answer it got.
    fn record(
        &self,
        kind: Kind,
        call: &'static str,
        keyed: bool,
        order: Option<Uuid>,
        reply: &Reply,
        seats_before: Vec<String>,
    ) {
        self.journal.lock().unwrap().requests.push(Request {
            kind,
            call,
            keyed,
            order,
            named: reply.named.clone(),
            answers: reply.answers.clone(),
            settled: reply.settled.as_ref().map(|(code, _)| *code),
            seats_before,
        });
    }

    /// Up to `n` seats among the first available ones (all seats when the
    /// map cannot be read).
    async fn choose(&self, n: usize) -> Vec<String> {
        let map = async {
            let resp = self
                .http
                .get(self.url(&format!("/api/flights/{}", self.flight)))
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let body: Value = resp.json().await.ok()?;
            let seats = body["seatMap"]["seats"].as_array()?.clone();
            Some(seats)
        }
        .await;
        let pool: Vec<String> = match map {
            Some(seats) => seats
                .iter()
                .filter(|s| s["status"] == "available")
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .take(WINDOW)
                .collect(),
            None => (1..=4)
                .flat_map(|r| ["A", "B", "C", "D", "E", "F"].map(|c| format!("{r}{c}")))
                .collect(),
        };
        let mut rng = rand::rng();
        let mut picked: Vec<String> = pool
            .choose_multiple(&mut rng, n.min(pool.len()))
            .cloned()
            .collect();
        if picked.is_empty() {
            picked.push("1A".into());
        }
        picked
    }
}

/// The seats of an answer's body.
fn seats_of(body: &Value) -> Vec<String> {
    body["seats"]
        .as_array()
        .map(|seats| {
            seats
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// One customer: create, then sometimes change seats, then pay, cancel or
/// abandon, until told to stop.
async fn customer(sh: Arc<Shared>, kind: Kind) {
    while !sh.stop.load(Ordering::Relaxed) {
        let (n, change, action, code, think, keyed) = {
            let mut rng = rand::rng();
            (
                rng.random_range(1..=3),
                rng.random_bool(0.2),
                rng.random_range(0..100),
                // Random codes (each attempt fails 15 %, retried), and a
                // few always declined or always timing out: FAILED endings.
                match rng.random_range(0..100) {
                    0..5 => "99999".to_string(),
                    5..8 => "88888".to_string(),
                    _ => format!("{:05}", rng.random_range(0..100_000)),
                },
                rng.random_range(100..500),
                kind == Kind::Retrying || rng.random_bool(0.5),
            )
        };
        let seats = sh.choose(n).await;
        let key = keyed.then(|| Uuid::new_v4().to_string());
        let reply = sh
            .call(
                kind,
                "create",
                reqwest::Method::POST,
                "/api/orders",
                Some(json!({"flightId": sh.flight, "seats": seats})),
                key.as_deref(),
            )
            .await;
        let created = match &reply.settled {
            Some((201, body)) => body["orderId"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .map(|order: Uuid| (order, seats_of(body))),
            _ => None,
        };
        let order = created.as_ref().map(|c| c.0);
        sh.record(kind, "create", keyed, order, &reply, Vec::new());
        if kind == Kind::Retrying && reply.settled.is_none() {
            sh.journal.lock().unwrap().create_unresolved += 1;
        }
        if let Some((order, held)) = created {
            sh.journal.lock().unwrap().created.push(order);
            drive(&sh, kind, order, held, change, action, &code).await;
        }
        tokio::time::sleep(Duration::from_millis(think)).await;
    }
}

/// A customer looks at the order before the next step, so orders are
/// between steps when a fault strikes (well within the 8 s hold).
async fn step() {
    let think = rand::rng().random_range(200..1200);
    tokio::time::sleep(Duration::from_millis(think)).await;
}

async fn drive(
    sh: &Shared,
    kind: Kind,
    order: Uuid,
    held: Vec<String>,
    change: bool,
    action: u32,
    code: &str,
) {
    let success = |reply: &Reply| matches!(reply.settled, Some((200..300, _)));
    let mut holding = held.clone();
    if change {
        step().await;
        let n = rand::rng().random_range(1..=3);
        let seats = sh.choose(n).await;
        let reply = sh
            .call(
                kind,
                "change",
                reqwest::Method::PUT,
                &format!("/api/orders/{order}/seats"),
                Some(json!({"seats": seats})),
                None,
            )
            .await;
        if let Some((200, body)) = &reply.settled {
            holding = seats_of(body);
        }
        sh.record(kind, "change", false, Some(order), &reply, held);
        if kind == Kind::OneShot && !success(&reply) {
            return;
        }
    }
    if action < 60 {
        // A passenger per seat, as every payment needs.
        let passengers: Vec<Value> = (holding.iter())
            .map(|seat| json!({"seat": seat, "givenName": "Fault", "familyName": "Tester"}))
            .collect();
        let reply = sh
            .call(
                kind,
                "passengers",
                reqwest::Method::PUT,
                &format!("/api/orders/{order}/passengers"),
                Some(json!({ "passengers": passengers })),
                None,
            )
            .await;
        sh.record(kind, "passengers", false, Some(order), &reply, holding);
        if kind == Kind::OneShot && !success(&reply) {
            return;
        }
    }
    let (call, method, path, body) = match action {
        // Pay with a random code: the simulated validator fails ~15 %.
        0..60 => (
            "pay",
            reqwest::Method::POST,
            format!("/api/orders/{order}/pay"),
            Some(json!({"paymentCode": code})),
        ),
        60..80 => (
            "cancel",
            reqwest::Method::DELETE,
            format!("/api/orders/{order}"),
            None,
        ),
        // Abandon: the hold expires.
        _ => return,
    };
    step().await;
    let keyed = call == "pay" && (kind == Kind::Retrying || rand::rng().random_bool(0.5));
    let key = keyed.then(|| Uuid::new_v4().to_string());
    let reply = sh
        .call(kind, call, method, &path, body, key.as_deref())
        .await;
    sh.record(kind, call, keyed, Some(order), &reply, Vec::new());
    let refund = matches!((call, &reply.settled), ("pay", Some((202, _)))) && action < 20;
    {
        let mut journal = sh.journal.lock().unwrap();
        match (call, &reply.settled) {
            ("pay", Some((202, _))) => {
                journal.paid.insert(order);
            }
            ("pay", None) if kind == Kind::Retrying => {
                journal.pay_unresolved.insert(order);
            }
            ("cancel", Some((200, _))) => {
                journal.cancelled.insert(order);
            }
            _ => {}
        }
    }
    if refund {
        cancel_booking(sh, kind, order).await;
    }
}

/// A customer cancels the booking once it is confirmed (by its reference
/// and the passenger's name), for a refund.
async fn cancel_booking(sh: &Shared, kind: Kind, order: Uuid) {
    let started = Instant::now();
    let reference = loop {
        if sh.stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
            return;
        }
        let status = async {
            let resp = (sh.http.get(sh.url(&format!("/api/orders/{order}/status"))))
                .send()
                .await
                .ok()?;
            resp.json::<Value>().await.ok()
        };
        match status.await {
            Some(s) if s["status"] == "CONFIRMED" => match s["bookingReference"].as_str() {
                Some(r) => break r.to_string(),
                None => return,
            },
            Some(s) if s["status"] != "PAYMENT_PROCESSING" && s["status"].is_string() => return,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    step().await;
    let keyed = kind == Kind::Retrying;
    let key = keyed.then(|| Uuid::new_v4().to_string());
    let reply = sh
        .call(
            kind,
            "refund",
            reqwest::Method::POST,
            &format!("/api/bookings/{reference}/cancel"),
            Some(json!({"lastName": "tester"})),
            key.as_deref(),
        )
        .await;
    sh.record(kind, "refund", keyed, Some(order), &reply, Vec::new());
    if let Some((202, _)) = reply.settled {
        sh.journal.lock().unwrap().refund_asked.insert(order);
    }
}

/// Until a booking goes through again: a create answered 201 (then
/// cancelled). Returns how long it took.
async fn recovery(sh: &Shared, probe_flight: &str) -> Option<Duration> {
    let start = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    while start.elapsed() < RECOVERY_LIMIT {
        let seat = {
            let mut rng = rand::rng();
            format!(
                "{}{}",
                rng.random_range(1..=15),
                ["A", "B", "C", "D", "E", "F"][rng.random_range(0..6)]
            )
        };
        let resp = client
            .post(sh.url("/api/orders"))
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({"flightId": probe_flight, "seats": [seat]}))
            .send()
            .await;
        if let Ok(resp) = resp
            && resp.status().as_u16() == 201
        {
            let took = start.elapsed();
            let body: Value = resp.json().await.unwrap_or_default();
            if let Some(id) = body["orderId"].as_str().and_then(|s| s.parse().ok()) {
                sh.journal.lock().unwrap().probes.push(id);
                sh.call(
                    Kind::Retrying,
                    "probe-cancel",
                    reqwest::Method::DELETE,
                    &format!("/api/orders/{id}"),
                    None,
                    None,
                )
                .await;
            }
            return Some(took);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// One sample of every live order's holds: each seat of an order that is
/// SEATS_RESERVED with `expiresAt` ahead must be held by it in Redis for at
/// least the time left plus the margin. An order that changed meanwhile
/// (its row's version moved) is not judged; nor one selected before Redis
/// came back empty.
async fn sample_holds(sh: &Shared, when: &str) {
    let back_at = {
        let outage = sh.outage.lock().unwrap();
        if outage.down {
            sh.holds.lock().unwrap().redis_down += 1;
            return;
        }
        outage.back_at
    };
    let sample = tokio::time::timeout(Duration::from_secs(5), sample_once(sh, back_at)).await;
    let mut holds = sh.holds.lock().unwrap();
    holds.samples += 1;
    match sample {
        Ok(Ok(found)) => {
            let at = Utc::now().format("%H:%M:%S%.3f");
            holds.found.add(found, &format!("{when} (at {at})"));
        }
        Ok(Err(_)) | Err(_) => holds.failed += 1,
    }
}

async fn sample_once(sh: &Shared, back_at: Option<DateTime<Utc>>) -> Result<Sample, String> {
    let db = sh.pool.get().await.map_err(|e| e.to_string())?;
    let rows = db
        .query(
            "SELECT id, flight_id::text, seats, expires_at, version,
                    (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint
             FROM orders WHERE status = 'SEATS_RESERVED' AND expires_at > clock_timestamp()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let read = Instant::now();
    let mut sample = Sample::default();
    // Order → (its row's version, what looked wrong).
    let mut suspects: HashMap<Uuid, (i64, Vec<String>)> = HashMap::new();
    for r in &rows {
        let (id, flight, seats, expires_at, version, left_ms): (
            Uuid,
            String,
            Vec<String>,
            DateTime<Utc>,
            i64,
            i64,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let selected_at = expires_at - chrono::Duration::milliseconds(HOLD_MS);
        if back_at.is_some_and(|back| selected_at < back + chrono::Duration::seconds(1)) {
            sample.lost_with_redis += 1;
            continue;
        }
        sample.orders += 1;
        let me = id.to_string();
        for seat in &seats {
            let key = format!("{}:hold:{{{flight}}}:{seat}", sh.prefix);
            let owner: Option<String> = sh.redis.get(&key).await.map_err(|e| e.to_string())?;
            let pttl: i64 = sh.redis.pttl(&key).await.map_err(|e| e.to_string())?;
            sample.holds += 1;
            let needed = left_ms - read.elapsed().as_millis() as i64 + TTL_MARGIN_MS;
            let wrong = if owner.as_deref() != Some(me.as_str()) {
                Some(format!("held by {owner:?} (PTTL {pttl} ms)"))
            } else if pttl >= 0 && pttl < needed - TTL_SLACK_MS {
                Some(format!("PTTL {pttl} ms, needs {needed} ms"))
            } else {
                None
            };
            if owner.as_deref() == Some(me.as_str()) && pttl >= 0 {
                sample.spare(pttl - needed);
            }
            if let Some(wrong) = wrong {
                suspects
                    .entry(id)
                    .or_insert_with(|| (version, Vec::new()))
                    .1
                    .push(format!("{seat} {wrong}"));
            }
        }
    }
    if suspects.is_empty() {
        return Ok(sample);
    }
    // Judge only orders whose row did not move while they were sampled (a
    // change, payment, cancel or ending releases or retakes holds).
    let ids: Vec<Uuid> = suspects.keys().copied().collect();
    let now: HashMap<Uuid, i64> = db
        .query(
            "SELECT id, version FROM orders WHERE id = ANY($1) AND status = 'SEATS_RESERVED'",
            &[&ids],
        )
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, (version, wrong)) in suspects {
        if now.get(&id) == Some(&version) {
            sample.violations.push(format!(
                "order {id} SEATS_RESERVED (row version {version}): {}",
                wrong.join("; ")
            ));
        } else {
            sample.moved += 1;
        }
    }
    Ok(sample)
}

/// Sample the holds every `SAMPLE_EVERY` until told to stop.
async fn hold_sampler(sh: Arc<Shared>) {
    while !sh.stop.load(Ordering::Relaxed) {
        sample_holds(&sh, "during traffic").await;
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}
/// `temporal workflow show` of an order's workflow (every run), for a report.
fn workflow_history(address: &str, order: &str) -> String {
    let bin = procs::find_bin("temporal", "FLIGHTCTL_TEST_TEMPORAL", &[]);
    let mut out = String::new();
    for args in [
        vec!["workflow", "list", "--query"],
        vec!["workflow", "show", "--workflow-id"],
    ] {
        let target = if args[1] == "list" {
            format!("WorkflowId = 'booking-{order}'")
        } else {
            format!("booking-{order}")
        };
        let result = std::process::Command::new(&bin)
            .args(&args)
            .arg(target)
            .args(["--address", address])
            .output();
        match result {
            Ok(o) => {
                out.push_str(&String::from_utf8_lossy(&o.stdout));
                out.push_str(&String::from_utf8_lossy(&o.stderr));
            }
            Err(e) => out.push_str(&format!("temporal: {e}\n")),
        }
    }
    out
}

/// The system under test: its own servers and processes.
struct Stack {
    pg: Postgres,
    redis: Redis,
    temporal: Temporal,
    settings: flightctl::config::Settings,
    serve: Proc,
    serve_port: u16,
    worker: Proc,
    logs: PathBuf,
    /// The processes a stall stopped, until it ends.
    frozen: Option<procs::Frozen>,
}

const SERVE_ENV: &[(&str, &str)] = &[
    ("SEAT_RESERVATION_TIMEOUT", HOLD),
    ("PAYMENT_VALIDATION_TIMEOUT", PAYMENT_TIMEOUT),
    ("PAYMENT_MAX_RETRIES", "3"),
];

impl Stack {
    async fn start() -> Stack {
        let (pg, redis, temporal) = tokio::task::spawn_blocking(|| {
            std::thread::scope(|s| {
                let temporal = s.spawn(Temporal::start);
                let pg = s.spawn(Postgres::start_durable);
                let redis = Redis::start();
                (pg.join().unwrap(), redis, temporal.join().unwrap())
            })
        })
        .await
        .unwrap();
        pg.create_database("faults").await;
        let mut s = support::base_settings();
        s.server.host = "127.0.0.1".into();
        s.database.url = flightctl::config::Secret::new(pg.url("faults"));
        s.redis.target = support::redis_target(&redis.addr());
        s.redis.key_prefix = "faults".into();
        s.temporal.host = temporal.host();
        s.temporal.task_queue = "faults".into();
        s.worker.deployment_name = "faults".into();
        s.worker.build_id = "faults-build".into();
        s.booking.payment_failure_rate = 0.15;
        // The test flight leaves in a day: cancellable up to an hour before.
        s.booking.refund_cutoff = Duration::from_secs(3600);
        s.booking.refund_failure_rate = 0.15;
        support::prepare_database(&s).await;
        let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("faults-{}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();
        let serve_port = procs::free_port();
        let worker = support::worker_process(&s, &logs.join("worker.log"));
        support::make_current(&s).await;
        let settings = s.clone();
        let log = logs.join("serve.log");
        let serve = tokio::task::spawn_blocking(move || {
            support::serve_process_at(&settings, SERVE_ENV, serve_port, &log)
        })
        .await
        .unwrap();
        Stack {
            pg,
            redis,
            temporal,
            settings: s,
            serve,
            serve_port,
            worker,
            logs,
            frozen: None,
        }
    }

    fn restart_serve(&mut self) {
        self.serve = support::serve_process_at(
            &self.settings,
            SERVE_ENV,
            self.serve_port,
            &self.logs.join("serve.log"),
        );
    }

    fn restart_worker(&mut self) {
        self.worker = support::worker_process(&self.settings, &self.logs.join("worker.log"));
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Worker,
    Serve,
    Redis,
    Temporal,
    TemporalStall,
    Postgres,
    PostgresStall,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::Worker => "worker: SIGKILL, restart",
            Fault::Serve => "serve: SIGKILL, restart (same port)",
            Fault::Redis => "redis: SIGKILL, restart empty (holds lost)",
            Fault::Temporal => "temporal: SIGKILL, restart (same db file)",
            Fault::TemporalStall => "temporal: stall (SIGSTOP 7s, SIGCONT)",
            Fault::Postgres => "postgres: immediate shutdown, restart",
            Fault::PostgresStall => "postgres: stall (SIGSTOP all 7s, SIGCONT)",
        }
    }

    /// How long the component stays down (or stopped).
    fn down_for(self) -> Duration {
        match self {
            Fault::Worker | Fault::Serve | Fault::Redis => Duration::from_secs(1),
            Fault::Temporal | Fault::Postgres => Duration::from_secs(2),
            Fault::TemporalStall | Fault::PostgresStall => STALL,
        }
    }
}

struct Injected {
    fault: Fault,
    at: Duration,
    down: Duration,
    recovered: Option<Duration>,
    notes: Vec<String>,
}

/// Inject the fault; returns what is worth noting.
fn inject(stack: &mut Stack, fault: Fault) -> Option<String> {
    match fault {
        Fault::Worker => stack.worker.kill(),
        Fault::Serve => stack.serve.kill(),
        Fault::Redis => stack.redis.kill(),
        Fault::Temporal => stack.temporal.kill(),
        Fault::Postgres => stack.pg.crash(),
        Fault::TemporalStall | Fault::PostgresStall => {
            let (name, pid) = match fault {
                Fault::TemporalStall => ("temporal", stack.temporal.pid()),
                _ => ("postgres", stack.pg.pid()),
            };
            let pid = pid.unwrap_or_else(|| panic!("{name} is not running"));
            let frozen = procs::freeze_tree(pid);
            let note = format!("{} {name} processes stopped", frozen.pids().len());
            stack.frozen = Some(frozen);
            return Some(note);
        }
    }
    None
}

fn restore(stack: &mut Stack, fault: Fault) {
    match fault {
        Fault::Worker => stack.restart_worker(),
        Fault::Serve => stack.restart_serve(),
        Fault::Redis => stack.redis.restart(),
        Fault::Temporal => stack.temporal.restart(),
        Fault::Postgres => stack.pg.restart(),
        Fault::TemporalStall | Fault::PostgresStall => {
            if let Some(frozen) = stack.frozen.take() {
                frozen.thaw();
            }
        }
    }
}

/// What one invariant checked, and where it failed.
struct Invariant {
    name: &'static str,
    checked: String,
    violations: Vec<String>,
}

/// An order's final row.
struct Row {
    status: String,
    flight: String,
    seats: Vec<String>,
    /// Payment attempts: the row's counter, and the recorded attempts.
    attempts: i32,
    attempt_rows: i64,
}

/// A request that changed nothing left `order` as it was: its seats
/// (change), no payment (pay), not cancelled (cancel).
fn unchanged(req: &Request, order: Uuid, row: Option<&Row>) -> Option<String> {
    let Some(row) = row else {
        return Some(format!("{}: order {order} has no row", req.describe()));
    };
    let wrong = match req.call {
        "change" => {
            let mut before = req.seats_before.clone();
            let mut after = row.seats.clone();
            before.sort();
            after.sort();
            (before != after).then(|| format!("seats {before:?} before, {after:?} now"))
        }
        "pay" => (row.attempts > 0 || row.attempt_rows > 0 || was_sold(&row.status)).then(|| {
            format!(
                "{} with {} payment attempts ({} recorded)",
                row.status, row.attempts, row.attempt_rows
            )
        }),
        "cancel" => (row.status == "CANCELLED").then(|| "CANCELLED".to_string()),
        _ => None,
    };
    wrong.map(|w| format!("{}: order {order} changed: {w}", req.describe()))
}

/// No order changed by a request answered non-2xx (other than 504 or no
/// answer): each such request left its order as it was, and a create so
/// answered left no order behind. A create's order is known only from a
/// 201 or a 504 naming it, so rows of orders nobody was told about are
/// bounded by the creates that got no answer at all.
fn check_refusals(journal: &Journal, rows: &HashMap<Uuid, Row>, flight: &str) -> Invariant {
    let mut violations = Vec::new();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for req in journal.requests.iter().filter(|r| r.refused()) {
        *checked
            .entry(format!("{} {}", req.kind.label(), req.call))
            .or_default() += 1;
        if let Some(order) = req.order
            && req.call != "create"
        {
            violations.extend(unchanged(req, order, rows.get(&order)));
        }
    }
    // A create answered 504 that was never retried: its order may exist,
    // but nobody paid it.
    let mut unknown_creates = 0;
    for req in journal.requests.iter().filter(|r| r.call == "create") {
        if req.settled.is_none() {
            for order in &req.named {
                unknown_creates += 1;
                if let Some(row) = rows.get(order)
                    && was_sold(&row.status)
                {
                    violations.push(format!(
                        "{}: order {order} named by its 504 is CONFIRMED",
                        req.describe()
                    ));
                }
            }
        }
    }
    let told: HashSet<Uuid> = journal
        .requests
        .iter()
        .filter(|r| r.call == "create")
        .flat_map(|r| r.order.iter().chain(&r.named))
        .copied()
        .collect();
    let untold: Vec<(&Uuid, &Row)> = rows
        .iter()
        .filter(|(id, row)| row.flight == flight && !told.contains(id))
        .collect();
    let unanswered = journal
        .requests
        .iter()
        .filter(|r| r.call == "create" && r.settled.is_none())
        .filter(|r| r.answers.iter().any(|(code, _)| *code == 0))
        .count();
    let listed = |rows: &[(&Uuid, &Row)]| -> String {
        let shown: Vec<String> = rows
            .iter()
            .take(EXAMPLES)
            .map(|(id, row)| format!("{id} {} {:?}", row.status, row.seats))
            .collect();
        shown.join(", ")
    };
    if untold.len() > unanswered {
        violations.push(format!(
            "{} orders exist that no create was answered 201 or 504 for, but only {unanswered} creates got no answer at all: {}",
            untold.len(),
            listed(&untold)
        ));
    }
    let sold: Vec<(&Uuid, &Row)> = untold
        .iter()
        .filter(|(_, row)| was_sold(&row.status))
        .copied()
        .collect();
    if !sold.is_empty() {
        violations.push(format!(
            "orders nobody was told about are CONFIRMED: {}",
            listed(&sold)
        ));
    }
    let checked: Vec<String> = checked.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Invariant {
        name: "no order changed by a request answered non-2xx",
        checked: format!(
            "refused requests: {}; creates answered 504 or not at all, never retried or retried in vain: {unknown_creates} named, {unanswered} unnamed; rows nobody was told about: {}",
            if checked.is_empty() {
                "none".to_string()
            } else {
                checked.join(", ")
            },
            untold.len()
        ),
        violations,
    }
}

/// Every final answer matches the order: a 201 has its row, a 202 ended
/// CONFIRMED or FAILED after an attempt, a cancel answered 200 ended
/// CANCELLED; a keyed request's final refusal (after its retries) changed
/// nothing, and the orders its 504s named and its final answer did not
/// are not orders.
fn check_answers(journal: &Journal, rows: &HashMap<Uuid, Row>) -> Invariant {
    let mut violations = Vec::new();
    let (mut created, mut paid, mut cancelled, mut refused, mut superseded) = (0, 0, 0, 0, 0);
    for req in &journal.requests {
        let row = req.order.and_then(|o| rows.get(&o));
        match (req.call, req.settled, req.order) {
            ("create", Some(201), Some(order)) => {
                created += 1;
                if row.is_none() {
                    violations.push(format!("{}: order {order} has no row", req.describe()));
                }
            }
            ("pay", Some(202), Some(order)) => {
                paid += 1;
                match row {
                    Some(r)
                        if (r.status == "CONFIRMED"
                            || r.status == "FAILED"
                            || r.status.starts_with("REFUND"))
                            && r.attempt_rows > 0 => {}
                    Some(r) => violations.push(format!(
                        "{}: order {order} is {} with {} recorded payment attempts",
                        req.describe(),
                        r.status,
                        r.attempt_rows
                    )),
                    None => {
                        violations.push(format!("{}: order {order} has no row", req.describe()))
                    }
                }
            }
            ("cancel", Some(200), Some(order)) => {
                cancelled += 1;
                if row.map(|r| r.status.as_str()) != Some("CANCELLED") {
                    violations.push(format!(
                        "{}: order {order} is {:?}",
                        req.describe(),
                        row.map(|r| &r.status)
                    ));
                }
            }
            ("pay", Some(code), Some(order)) if req.keyed && req.unknown() && refusal(code) => {
                refused += 1;
                violations.extend(unchanged(req, order, row));
            }
            _ => {}
        }
        // A keyed create that settled: the orders its 504s named, other
        // than the one it was answered with, never became orders.
        if req.call == "create" && req.keyed && req.settled.is_some() {
            for named in req.named.iter().filter(|n| Some(**n) != req.order) {
                superseded += 1;
                if let Some(r) = rows.get(named) {
                    violations.push(format!(
                        "{}: order {named} its 504 named, not the one it ended on ({:?}), is {} {:?}",
                        req.describe(),
                        req.order,
                        r.status,
                        r.seats
                    ));
                }
            }
        }
    }
    for order in &journal.probes {
        if !rows.contains_key(order) {
            violations.push(format!(
                "probe order {order} was created (201) but has no row"
            ));
        }
    }
    Invariant {
        name: "every final answer matches the order's state",
        checked: format!(
            "201 creates {created}, 202 payments {paid}, 200 cancels {cancelled}, keyed payments refused after a 504 or no answer {refused}, orders named by a keyed create's 504 and superseded {superseded}"
        ),
        violations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_balance_after_every_component_is_killed_and_restarted() {
    let t0 = Instant::now();
    let mut stack = Stack::start().await;
    println!(
        "stack up in {:.1}s; logs in {}",
        t0.elapsed().as_secs_f64(),
        stack.logs.display()
    );
    let pool = flightctl::store::pg_pool(&stack.settings.database).unwrap();
    let flight = support::burst::insert_flight(&pool, FLIGHT_ROWS).await;
    let redis = flightctl::store::redis_client(&stack.settings.redis)
        .await
        .unwrap();
    let prefix = stack.settings.redis.key_prefix.clone();
    let sh = Arc::new(Shared {
        base: format!("http://127.0.0.1:{}", stack.serve_port),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        flight: flight.clone(),
        stop: AtomicBool::new(false),
        journal: Mutex::new(Journal::default()),
        pool: pool.clone(),
        redis: redis.clone(),
        prefix: prefix.clone(),
        outage: Mutex::new(RedisOutage::default()),
        holds: Mutex::new(HoldSamples::default()),
    });
    // The system answers before the traffic starts.
    let ready = recovery(&sh, FL201).await;
    assert!(ready.is_some(), "the stack never booked a seat");

    let start = Instant::now();
    let kinds = std::iter::repeat_n(Kind::Retrying, RETRYING)
        .chain(std::iter::repeat_n(Kind::OneShot, ONE_SHOT));
    let customers: Vec<_> = kinds
        .map(|kind| tokio::spawn(customer(sh.clone(), kind)))
        .collect();
    let sampler = tokio::spawn(hold_sampler(sh.clone()));
    tokio::time::sleep(WARMUP).await;
    let mut injected = Vec::new();
    for fault in [
        Fault::Worker,
        Fault::Serve,
        Fault::Redis,
        Fault::Temporal,
        Fault::TemporalStall,
        Fault::Postgres,
        Fault::PostgresStall,
    ] {
        let at = start.elapsed();
        let redis_fault = matches!(fault, Fault::Redis);
        if redis_fault {
            sh.outage.lock().unwrap().down = true;
        }
        let mut notes: Vec<String> = tokio::task::block_in_place(|| inject(&mut stack, fault))
            .into_iter()
            .collect();
        tokio::time::sleep(fault.down_for()).await;
        tokio::task::block_in_place(|| restore(&mut stack, fault));
        if redis_fault {
            *sh.outage.lock().unwrap() = RedisOutage {
                down: false,
                back_at: Some(Utc::now()),
            };
        }
        let down = start.elapsed() - at;
        let recovered = recovery(&sh, FL201).await;
        sample_holds(&sh, &format!("after {}", fault.describe())).await;
        if !stack.worker.is_running() {
            notes.push("the worker had exited; restarted".to_string());
            tokio::task::block_in_place(|| stack.restart_worker());
        }
        if !stack.serve.is_running() {
            notes.push("serve had exited; restarted".to_string());
            tokio::task::block_in_place(|| stack.restart_serve());
        }
        println!(
            "{:>6.1}s  {:<45} down {:.1}s, recovered in {}",
            at.as_secs_f64(),
            fault.describe(),
            down.as_secs_f64(),
            recovered.map_or("NEVER".into(), |d| format!("{:.1}s", d.as_secs_f64()))
        );
        injected.push(Injected {
            fault,
            at,
            down,
            recovered,
            notes,
        });
        tokio::time::sleep(GAP).await;
    }
    sh.stop.store(true, Ordering::Relaxed);
    for c in customers {
        c.await.unwrap();
    }
    sampler.await.unwrap();
    let traffic = start.elapsed();
    // Every order reaches an ending.
    let settle_start = Instant::now();
    let db = pool.get().await.unwrap();
    let live_sql = "SELECT id, status FROM orders WHERE status = ANY($1) ORDER BY id";
    let live: Vec<String> = loop {
        let rows = db.query(live_sql, &[&LIVE]).await.unwrap();
        let live: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}", r.get::<_, Uuid>(0), r.get::<_, String>(1)))
            .collect();
        if live.is_empty() || settle_start.elapsed() > SETTLE_LIMIT {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let settled = settle_start.elapsed();
    // Claims of creates answered non-2xx lapse by design within seconds.
    tokio::time::sleep(CLAIM_LAPSE.saturating_sub(settled)).await;

    let mut violations = Vec::new();
    for order in &live {
        violations.push(format!("order left live: {order}"));
    }
    // What the engine says about them, for the report.
    for order in live.iter().take(3) {
        let id = order.split(' ').next().unwrap_or_default();
        println!("--- {order}: row and workflow history ---");
        let row = db
            .query_one(
                "SELECT seats, saved_at_event, created_at::text, updated_at::text
                 FROM orders WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap();
        let (seats, at, created, updated): (Vec<String>, i64, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        println!("row: seats {seats:?}, saved at event {at}, created {created}, updated {updated}");
        println!("{}", workflow_history(&stack.temporal.host(), id));
    }

    // Final state of every order.
    let orders: HashMap<Uuid, Row> = db
        .query(
            "SELECT o.id, o.status, o.flight_id::text, o.seats, o.payment_attempts,
                    (SELECT count(*) FROM payment_attempts p WHERE p.order_id = o.id)
             FROM orders o",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let row = Row {
                status: r.get(1),
                flight: r.get(2),
                seats: r.get(3),
                attempts: r.get(4),
                attempt_rows: r.get(5),
            };
            (r.get(0), row)
        })
        .collect();
    let status: HashMap<Uuid, String> = orders
        .iter()
        .map(|(id, row)| (*id, row.status.clone()))
        .collect();

    // Every booked seat belongs to exactly one CONFIRMED order listing it.
    let rows = db
        .query(
            "SELECT s.flight_id::text, s.id, s.order_id, o.status, o.flight_id = s.flight_id
                    AND s.id = ANY(o.seats)
             FROM seats s LEFT JOIN orders o ON o.id = s.order_id
             WHERE s.status = 'booked'",
            &[],
        )
        .await
        .unwrap();
    let booked = rows.len();
    for r in &rows {
        let (flight, seat): (String, String) = (r.get(0), r.get(1));
        let (order, st, lists): (Option<Uuid>, Option<String>, Option<bool>) =
            (r.get(2), r.get(3), r.get(4));
        let sold = ["CONFIRMED", "REFUND_PENDING", "REFUND_FAILED"];
        if !st.as_deref().is_some_and(|st| sold.contains(&st)) || lists != Some(true) {
            violations.push(format!(
                "booked seat {flight}/{seat} belongs to {order:?} ({st:?}), listing it: {lists:?}"
            ));
        }
    }
    let rows = db
        .query(
            "SELECT o.id, seat, s.status, s.order_id
             FROM orders o CROSS JOIN LATERAL unnest(o.seats) AS seat
             LEFT JOIN seats s ON s.flight_id = o.flight_id AND s.id = seat
             WHERE o.status = 'CONFIRMED' AND s.order_id IS DISTINCT FROM o.id",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (order, seat, st, owner): (Uuid, String, Option<String>, Option<Uuid>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        violations.push(format!(
            "CONFIRMED order {order} lists {seat}, which is {st:?} for {owner:?}"
        ));
    }
    let rows = db
        .query(
            "SELECT o.flight_id::text, seat, array_agg(o.id::text)
             FROM orders o CROSS JOIN LATERAL unnest(o.seats) AS seat
             WHERE o.status = 'CONFIRMED'
             GROUP BY 1, 2 HAVING count(*) > 1",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (flight, seat, orders): (String, String, Vec<String>) = (r.get(0), r.get(1), r.get(2));
        violations.push(format!(
            "seat {flight}/{seat} listed by several CONFIRMED orders: {orders:?}"
        ));
    }

    // Refunds: one payout per cancelled booking, never one without a
    // cancellation answered 202 (or left unknown), and a refunded
    // booking owns no seat any more.
    let mut refund_violations = Vec::new();
    let rows = db
        .query(
            "SELECT o.id, o.status, r.status,
                    (SELECT count(*) FROM provider_refunds p WHERE p.order_id = o.id),
                    (SELECT count(*) FROM seats s WHERE s.order_id = o.id)
             FROM orders o LEFT JOIN refunds r ON r.order_id = o.id
             WHERE r.order_id IS NOT NULL OR o.status LIKE 'REFUND%'",
            &[],
        )
        .await
        .unwrap();
    let refunds_found = rows.len();
    let mut refunded = 0;
    for r in &rows {
        let (order, st, refund, payouts, owned): (Uuid, String, Option<String>, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let asked = sh
            .journal
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|q| q.call == "refund" && q.order == Some(order) && !q.refused());
        if !asked {
            refund_violations.push(format!(
                "{order}: a refund ({st}) nobody was answered 202 for"
            ));
        }
        match (st.as_str(), refund.as_deref()) {
            ("REFUNDED", Some("REFUNDED")) if payouts == 1 && owned == 0 => refunded += 1,
            ("REFUND_FAILED", Some("FAILED")) if payouts == 0 => {}
            _ => refund_violations.push(format!(
                "{order}: {st}, refund {refund:?}, {payouts} payouts, owns {owned} seats"
            )),
        }
    }
    for order in &sh.journal.lock().unwrap().refund_asked {
        if !orders
            .get(order)
            .is_some_and(|r| r.status.starts_with("REFUND"))
        {
            refund_violations.push(format!("{order}: cancelled with 202 but not refunding"));
        }
    }

    // available_seats equals the count of available seats.
    let rows = db
        .query(
            "SELECT f.flight_number, f.available_seats,
                    (SELECT count(*) FROM seats s WHERE s.flight_id = f.id AND s.status = 'available')
             FROM flights f",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (number, counter, counted): (String, i32, i64) = (r.get(0), r.get(1), r.get(2));
        if i64::from(counter) != counted {
            violations.push(format!(
                "{number}: available_seats {counter}, available seats {counted}"
            ));
        }
    }

    // No Redis hold of an ended (or unknown) order.
    let keys: Vec<String> = redis
        .custom(
            CustomCommand::new("KEYS", ClusterHash::FirstKey, false),
            vec![format!("{prefix}:hold:*")],
        )
        .await
        .unwrap();
    let mut holds = 0;
    for key in keys.iter().filter(|k| !k.ends_with('}')) {
        let owner: Option<String> = redis.get(key).await.unwrap();
        let Some(owner) = owner else { continue };
        holds += 1;
        let st = owner
            .parse::<Uuid>()
            .ok()
            .and_then(|id| status.get(&id).cloned());
        match st {
            Some(st) if LIVE.contains(&st.as_str()) => {}
            st => violations.push(format!("redis hold {key} of order {owner} ({st:?})")),
        }
    }
    let holds_api = flightctl::store::Holds::new(redis.clone(), prefix.clone());
    for f in [flight.as_str(), FL201] {
        for (seat, order) in holds_api.list(f.parse().unwrap()).await.unwrap() {
            let st = status.get(&order);
            if !st.is_some_and(|s| LIVE.contains(&s.as_str())) {
                violations.push(format!(
                    "hold index of {f} lists {seat} for order {order} ({st:?})"
                ));
            }
        }
    }

    // The invariants.
    let journal = sh.journal.lock().unwrap();
    let sampled = sh.holds.lock().unwrap();
    let found = &sampled.found;
    let mut outlive = found.violations.clone();
    if found.holds == 0 {
        outlive.push("no live order's hold was ever sampled".to_string());
    }
    let invariants = [
        Invariant {
            name: "the books balance",
            checked: format!(
                "{} orders, {booked} booked seats, {holds} redis holds left",
                orders.len()
            ),
            violations,
        },
        check_refusals(&journal, &orders, &flight),
        Invariant {
            name: "every live order's holds outlive its expiresAt + 60 s",
            checked: format!(
                "{} samples ({} unanswered within 5 s, {} skipped while Redis was down): {} live orders, {} holds; not judged: {} orders selected before Redis came back empty, {} that changed while sampled; least spare {}",
                sampled.samples,
                sampled.failed,
                sampled.redis_down,
                found.orders,
                found.holds,
                found.lost_with_redis,
                found.moved,
                found
                    .least_spare_ms
                    .map_or("-".to_string(), |ms| format!("{ms} ms")),
            ),
            violations: outlive,
        },
        check_answers(&journal, &orders),
        Invariant {
            name: "one refund per cancelled booking, its seats back on sale",
            checked: format!(
                "{} cancellations answered 202; {refunds_found} refunds, {refunded} refunded",
                journal.refund_asked.len()
            ),
            violations: refund_violations,
        },
    ];

    // The report.
    println!();
    println!(
        "== faults injected ({RETRYING} customers retrying with their key, {ONE_SHOT} never retrying) =="
    );
    println!(
        "{:<45} {:>11} {:>8} {:>13}",
        "fault", "injected at", "down", "recovered in"
    );
    for i in &injected {
        println!(
            "{:<45} {:>10.1}s {:>7.1}s {:>13}{}",
            i.fault.describe(),
            i.at.as_secs_f64(),
            i.down.as_secs_f64(),
            i.recovered
                .map_or("NEVER".into(), |d| format!("{:.1}s", d.as_secs_f64())),
            if i.notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", i.notes.join("; "))
            }
        );
    }
    println!(
        "recovered in: from the restart (or SIGCONT) until a create is answered 201 (a probe order, then cancelled)"
    );
    println!();
    println!(
        "== traffic: {:.0}s, then settled in {:.1}s ==",
        traffic.as_secs_f64(),
        settled.as_secs_f64()
    );
    println!("answers per try (retry: retrying customer, once: never retrying):");
    for (answer, n) in &journal.answers {
        println!("  {answer:<40} {n}");
    }
    let created: HashSet<&Uuid> = journal.created.iter().collect();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, st) in &status {
        if created.contains(id) {
            *by_status.entry(st).or_default() += 1;
        }
    }
    println!(
        "orders created (201): {}; by final status: {by_status:?}",
        journal.created.len()
    );
    let paid_confirmed = journal
        .paid
        .iter()
        .filter(|o| status.get(*o).map(String::as_str) == Some("CONFIRMED"))
        .count();
    println!(
        "payments accepted (202): {} ({} CONFIRMED, {} FAILED); retried pay without a final answer: {}",
        journal.paid.len(),
        paid_confirmed,
        journal.paid.len() - paid_confirmed,
        journal.pay_unresolved.len()
    );
    for kind in [Kind::Retrying, Kind::OneShot] {
        let mine: Vec<&Request> = journal.requests.iter().filter(|r| r.kind == kind).collect();
        let count = |f: &dyn Fn(&Request) -> bool| mine.iter().filter(|r| f(r)).count();
        println!(
            "{} requests: {} ({} keyed); ended 2xx {}, refused (every answer non-2xx, not 504) {}, outcome left open (504 or no answer, not settled) {}",
            kind.label(),
            mine.len(),
            count(&|r| r.keyed),
            count(&|r| matches!(r.settled, Some(200..300))),
            count(&|r| r.refused()),
            count(&|r| r.settled.is_none()),
        );
    }
    let unanswered = status
        .keys()
        .filter(|id| !created.contains(id) && !journal.probes.contains(id))
        .count();
    println!(
        "retried creates without a final answer after {}s of retries (same key): {}",
        RETRY_FOR.as_secs(),
        journal.create_unresolved
    );
    for (why, n) in &journal.unresolved {
        println!("  {n} × {why}");
    }
    println!(
        "rows of orders never answered 201: {unanswered}; probe orders: {}; booked seats: {booked}; redis holds left: {holds}",
        journal.probes.len()
    );
    println!("total {:.0}s", t0.elapsed().as_secs_f64());
    println!();
    println!("== invariants ==");
    for inv in &invariants {
        let verdict = if inv.violations.is_empty() {
            "ok".to_string()
        } else {
            format!("{} VIOLATIONS", inv.violations.len())
        };
        println!("{}: {verdict}; checked: {}", inv.name, inv.checked);
        for v in &inv.violations {
            println!("  VIOLATION: {v}");
        }
    }
    assert!(
        injected.iter().all(|i| i.recovered.is_some()),
        "a fault was never recovered from"
    );
    let failed: Vec<String> = invariants
        .iter()
        .filter(|inv| !inv.violations.is_empty())
        .map(|inv| {
            let examples: Vec<&str> = inv
                .violations
                .iter()
                .take(EXAMPLES)
                .map(String::as_str)
                .collect();
            format!(
                "{}: {} violations, for example:\n    {}",
                inv.name,
                inv.violations.len(),
                examples.join("\n    ")
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "invariants violated (all listed above); logs in {}:\n{}",
        stack.logs.display(),
        failed.join("\n")
    );
    // Kept only for a failed run.
    let _ = std::fs::remove_dir_all(&stack.logs);
}

/// What a `hold_seats` attempt lost with a killed worker leaves behind — a
/// lock and a SEATS_RESERVED row its workflow never recorded — is cleaned up
/// when the creation is refused (here: it reaches the workflow after its
/// deadline, as a create the API gave up on does). Found by the fault suite:
/// such a row stayed SEATS_RESERVED for ever.
#[tokio::test]
async fn a_creation_lost_with_its_worker_leaves_no_live_row_and_no_hold() {
    use flightctl::booking::Booking;
    use flightctl::booking::messages::{BookingInput, Refusal, SelectSeats};
    use flightctl::domain::{OrderStatus, SeatSelection};
    use flightctl::store::orders::{self, Order};
    use temporalio_client::{WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions};

    let app = support::TestApp::with_worker(support::isolated_settings(true).await).await;
    let flight: Uuid = FL201.parse().unwrap();
    let order = Uuid::new_v4();
    let lost = vec!["7A".to_string()];
    app.holds
        .lock(flight, order, &lost, Duration::from_secs(120))
        .await
        .unwrap();
    let row = Order {
        id: order,
        flight_id: flight,
        workflow_id: format!("booking-{order}"),
        status: OrderStatus::SeatsReserved,
        seats: lost.clone(),
        total_price_cents: 28000,
        expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
        confirmed_at: None,
        failure_reason: None,
        payment_attempts: 0,
        last_payment_error: None,
        saved_at_event: 5,
        passengers: Vec::new(),
        reference: None,
        created_at: None,
        updated_at: None,
        version: 0,
    };
    orders::save(&app.pool, &row, None).await.unwrap();

    let s = &app.settings;
    let client = flightctl::temporal::connect(&s.temporal, "test", Duration::from_secs(10))
        .await
        .unwrap();
    let input = BookingInput {
        order_id: order,
        flight_id: flight,
        seat_price_cents: 28000,
        hold_ms: 60_000,
        payment_timeout_ms: 1_000,
        payment_max_attempts: 3,
        creation_wait_ms: None,
    };
    let late = SelectSeats {
        seats: SeatSelection::parse(&["7B"]).unwrap(),
        deadline_ms: 1,
        request_id: None,
    };
    let options = WorkflowUpdateWithStartOptions::new(
        s.temporal.task_queue.clone(),
        format!("booking-{order}"),
        WorkflowIdConflictPolicy::Fail,
    )
    .build();
    let selection = client
        .execute_update_with_start_workflow(
            Booking::run,
            input,
            Booking::select_seats,
            late,
            options,
        )
        .await
        .unwrap();
    assert_eq!(selection, Err(Refusal::Late));

    support::eventually(
        "the lost attempt's row and lock to go",
        Duration::from_secs(30),
        || async {
            let gone = matches!(
                orders::find(&app.pool, order).await,
                Err(flightctl::store::StoreError::OrderNotFound(_))
            );
            let holds = app.holds.list(flight).await.unwrap();
            (gone && !holds.values().any(|o| *o == order)).then_some(())
        },
    )
    .await;
}

/// A lock taken by a selection change the workflow never recorded (its task
/// lost with a killed worker or Temporal server) is released when the order
/// ends. Found by the fault suite: such holds of EXPIRED orders outlived
/// them by their TTL (hold + 1 min).
#[tokio::test]
async fn an_ending_order_releases_holds_its_workflow_never_recorded() {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.seat_reservation_timeout = Duration::from_secs(60);
    let app = support::TestApp::with_worker(settings).await;
    let flight: Uuid = FL201.parse().unwrap();
    for end in ["cancel", "pay"] {
        let (code, body) = app
            .post("/api/orders", json!({"flightId": FL201, "seats": ["9A"]}))
            .await;
        assert_eq!(code, 201, "{body}");
        let order: Uuid = body["orderId"].as_str().unwrap().parse().unwrap();
        // The lost attempt's lock: the workflow knows only 9A.
        let stray = vec!["9B".to_string()];
        app.holds
            .lock(flight, order, &stray, Duration::from_secs(120))
            .await
            .unwrap();
        let (code, body) = match end {
            "cancel" => app.delete(&format!("/api/orders/{order}")).await,
            _ => {
                app.name_passengers(&order.to_string()).await;
                app.post(
                    &format!("/api/orders/{order}/pay"),
                    json!({"paymentCode": "00000"}),
                )
                .await
            }
        };
        assert!(code == 200 || code == 202, "{end}: {code} {body}");
        support::eventually(
            "every hold of the ended order to go",
            Duration::from_secs(30),
            || async {
                let holds = app.holds.list(flight).await.unwrap();
                (!holds.values().any(|o| *o == order)).then_some(())
            },
        )
        .await;
    }
}

/// A keyed create whose outcome was unknown (504) because no worker was
/// there in time goes through on a retry with the same key once a worker is
/// back.
#[tokio::test]
async fn a_create_answered_504_while_no_worker_ran_succeeds_on_retry_with_its_key() {
    let mut app = support::TestApp::spawn(support::isolated_settings(true).await).await;
    let (code, body) = keyed_create(&app).await;
    assert_eq!(code, 504, "{body}");
    app.start_worker().await;
    let start = Instant::now();
    let mut answers = Vec::new();
    let (code, body) = loop {
        let (code, body) = keyed_create(&app).await;
        answers.push(code);
        if (code != 503 && code != 504) || start.elapsed() > Duration::from_secs(40) {
            break (code, body);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(code, 201, "{body}; answers {answers:?}");
}

async fn keyed_create(app: &support::TestApp) -> (u16, String) {
    let resp = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "retry-after-503")
        .json(&json!({"flightId": FL201, "seats": ["11C"]}))
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.text().await.unwrap_or_default())
}

/// A keyed payment whose outcome was unknown (504) because no worker was
/// there in time is accepted on a retry with the same key once a worker is
/// back (the late refusal of the first attempt is not replayed: the key
/// starts its next attempt).
#[tokio::test]
async fn a_payment_answered_504_while_no_worker_ran_is_accepted_on_retry_with_its_key() {
    let mut settings = support::isolated_settings(true).await;
    settings.booking.seat_reservation_timeout = Duration::from_secs(120);
    let mut app = support::TestApp::with_worker(settings).await;
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL201, "seats": ["12D"]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    app.name_passengers(&order).await;
    app.worker().stop();
    let pay = |app: &support::TestApp| {
        app.http
            .post(app.url(&format!("/api/orders/{order}/pay")))
            .header("Idempotency-Key", "pay-after-503")
            .json(&json!({"paymentCode": "00000"}))
            .send()
    };
    let first = pay(&app).await.unwrap().status().as_u16();
    assert_eq!(first, 504);
    app.start_worker().await;
    let start = Instant::now();
    let mut answers = Vec::new();
    let code = loop {
        let code = pay(&app).await.unwrap().status().as_u16();
        answers.push(code);
        if (code != 503 && code != 504) || start.elapsed() > Duration::from_secs(40) {
            break code;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(code, 202, "answers {answers:?}");
}
