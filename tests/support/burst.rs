//! A flash-sale crowd: many buyers hit one flight at the same instant through
//! the HTTP API only, then an audit of what they left behind in Postgres and
//! Redis. Shared by `tests/flash_sale.rs` and `benches/flash_sale.rs`.
//!
//! A buyer behaves like a well-written client: a fresh `Idempotency-Key` per
//! seat choice, the same key when retrying after a 503, and it honours
//! `Retry-After`. Each buyer is a customer of its own, from its own
//! loopback address (`support::customer_client`), so the server's fair
//! share per client sees a crowd, not one client. Anything a correct API must never answer is a violation
//! (a failed seat-map read included).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::time::Instant;
use uuid::Uuid;

use flightctl::domain::OrderStatus;

use super::TestApp;

/// Order statuses in which a workflow still owns the order.
const LIVE: [OrderStatus; 4] = [
    OrderStatus::Created,
    OrderStatus::SeatsReserved,
    OrderStatus::PaymentPending,
    OrderStatus::PaymentProcessing,
];
/// How long a buyer waits before re-reading a seat map whose only
/// remaining seats are held by others (they may come back on sale).
const HELD_RECHECK: Duration = Duration::from_millis(200);
/// Pause before retrying an answer that gave no `Retry-After`.
const FALLBACK_RETRY: Duration = Duration::from_secs(1);
/// The simultaneous start of a burst, for the latency breakdown.
const FIRST_WAVE: Duration = Duration::from_secs(1);
/// Violation examples kept in the report.
const EXAMPLES: usize = 5;

/// Bounds that keep a burst finite even when the API misbehaves.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A buyer gives up after this long, paid or not.
    pub buyer_for: Duration,
    /// From the burst start, longest we wait for every seat to be booked.
    pub sell_out_within: Duration,
    /// After the buyers, longest we wait for live orders to end.
    pub settle_within: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            buyer_for: Duration::from_secs(60),
            sell_out_within: Duration::from_secs(90),
            settle_within: Duration::from_secs(30),
        }
    }
}

/// What a burst did and what it left behind.
#[derive(Debug, Default)]
pub struct BurstReport {
    pub buyers: usize,
    pub seats: usize,
    pub created: usize,
    pub conflicts: usize,
    pub busy: usize,
    /// 503s that did not say when to come back (each is also a violation).
    pub busy_without_retry_after: usize,
    /// 504 OUTCOME_UNKNOWN: retried with the same key.
    pub unknown: usize,
    /// Answers other than 201, 409, 503 and 504 (transport errors included).
    pub other: usize,
    /// Checkout calls (pay, change, cancel) of buyers holding seats
    /// answered 503: admission keeps room for them, so this stays 0.
    pub checkout_busy: usize,
    /// Seat-map reads answered 503 while a dependency was down (only a
    /// burst through an outage tolerates them; otherwise each is a
    /// violation).
    pub map_unavailable: usize,
    /// Payments refused 409 SEATS_UNAVAILABLE during an outage: a hold lost
    /// with a dependency (a Redis master's last writes) and its seat taken
    /// by another order, caught by the payment's re-check.
    pub lost_holds_caught: usize,
    /// Over every HTTP answer to a create.
    pub create_p50: Duration,
    pub create_p99: Duration,
    pub conflict_p50: Option<Duration>,
    pub conflict_p99: Option<Duration>,
    /// 409s to requests sent in the first second (the simultaneous start).
    pub first_wave_conflicts: usize,
    /// p99 of the 409s to requests sent after the first second.
    pub later_conflict_p99: Option<Duration>,
    pub violations: usize,
    pub violation_examples: Vec<String>,
    /// Buyers whose payment was accepted (202).
    pub paid: usize,
    /// Buyers stopped by `Limits::buyer_for`.
    pub gave_up: usize,
    /// From the burst start until no seat of the flight is left unbooked.
    pub sold_out_after: Option<Duration>,
    /// Orders still live when we stopped waiting for them to end.
    pub unsettled: usize,
    /// Orders still `SEATS_RESERVED` after settling.
    pub ghost_orders: usize,
    /// Redis holds whose owner is neither CONFIRMED nor live.
    pub ghost_holds: usize,
    /// Booked seats not backed by exactly one CONFIRMED order that lists
    /// them and that `seats.order_id` names.
    pub double_sales: usize,
    /// Seats listed by more than one CONFIRMED order.
    pub multi_listed: usize,
}

impl BurstReport {
    pub fn ghosts(&self) -> usize {
        self.ghost_orders + self.ghost_holds
    }

    pub fn creates(&self) -> usize {
        self.created + self.conflicts + self.busy + self.unknown + self.other
    }

    /// One aligned block of figures.
    pub fn print(&self) {
        let line = |label: &str, value: String| println!("  {label:<40} {value}");
        println!("burst: {} buyers, {} seats", self.buyers, self.seats);
        line("create answers", self.creates().to_string());
        line("  201 created", self.created.to_string());
        line("  409 seats unavailable", self.conflicts.to_string());
        line(
            "  503 busy (without Retry-After)",
            format!("{} ({})", self.busy, self.busy_without_retry_after),
        );
        line("  504 outcome unknown", self.unknown.to_string());
        line("  other", self.other.to_string());
        line(
            "checkout 503s (pay, change, cancel)",
            self.checkout_busy.to_string(),
        );
        line("seat-map 503s (outage)", self.map_unavailable.to_string());
        line(
            "payments refused: hold lost (outage)",
            self.lost_holds_caught.to_string(),
        );
        line(
            "create latency p50 / p99",
            format!("{:.2?} / {:.2?}", self.create_p50, self.create_p99),
        );
        line(
            "409 latency p50 / p99",
            format!("{} / {}", show(self.conflict_p50), show(self.conflict_p99)),
        );
        line(
            "409s in the first second; p99 after it",
            format!(
                "{}; {}",
                self.first_wave_conflicts,
                show(self.later_conflict_p99)
            ),
        );
        line("violations", self.violations.to_string());
        line(
            "buyers paid / gave up",
            format!("{} / {}", self.paid, self.gave_up),
        );
        line("sold out after", show(self.sold_out_after));
        line(
            "orders still live after settling",
            self.unsettled.to_string(),
        );
        line(
            "ghost orders (SEATS_RESERVED)",
            self.ghost_orders.to_string(),
        );
        line("ghost holds (Redis)", self.ghost_holds.to_string());
        line("double sales (audit)", self.double_sales.to_string());
        line(
            "seats listed by >1 CONFIRMED order",
            self.multi_listed.to_string(),
        );
        for example in &self.violation_examples {
            println!("  violation: {example}");
        }
    }
}

fn show(d: Option<Duration>) -> String {
    d.map_or_else(|| "none".into(), |d| format!("{d:.2?}"))
}

/// The value at fraction `p` of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Insert a flight of `rows` × A–F seats, all available; returns its id.
pub async fn insert_flight(pool: &Pool, rows: i32) -> String {
    let id = Uuid::new_v4();
    let number = format!("FS{}", &id.simple().to_string()[..6]);
    let client = pool.get().await.expect("a connection");
    client
        .execute(
            "INSERT INTO flights (id, flight_number, origin, destination, departure_time,
                    arrival_time, total_seats, available_seats, price_cents)
             VALUES ($1, $2, 'BER', 'LIS', NOW() + interval '1 day',
                    NOW() + interval '1 day 3 hours', $3, $3, 9900)",
            &[&id, &number, &(rows * 6)],
        )
        .await
        .expect("insert flight");
    client
        .execute(
            "INSERT INTO seats (id, flight_id, row_num, col)
             SELECT r || c, $1, r, c
             FROM generate_series(1, $2::int) AS r,
                  unnest(ARRAY['A','B','C','D','E','F']) AS c",
            &[&id, &rows],
        )
        .await
        .expect("insert seats");
    id.to_string()
}

/// `buyers` buyers on `flight` with the default limits.
pub async fn burst(app: &TestApp, flight: &str, buyers: usize) -> BurstReport {
    burst_with(app, flight, buyers, Limits::default()).await
}

pub async fn burst_with(app: &TestApp, flight: &str, buyers: usize, limits: Limits) -> BurstReport {
    crowd(app, flight, buyers, limits, false).await
}

/// A burst during which the test kills a dependency (a Redis master): a
/// seat-map read answered 503 is then the honest answer, counted in
/// `map_unavailable` and retried, not a violation.
pub async fn burst_through_outage(
    app: &TestApp,
    flight: &str,
    buyers: usize,
    limits: Limits,
) -> BurstReport {
    crowd(app, flight, buyers, limits, true).await
}

async fn crowd(
    app: &TestApp,
    flight: &str,
    buyers: usize,
    limits: Limits,
    outage: bool,
) -> BurstReport {
    let map = SeatMap::read(&app.http, &app.url(&format!("/api/flights/{flight}")))
        .await
        .expect("the seat map before the burst");
    let first = Arc::new(map.available());
    // Every buyer's first pick is ready before anyone sends: the start is a
    // true simultaneous burst, not a trickle behind seat-map reads. Each
    // buyer has loaded the seat map, as a customer on the page has, so its
    // connection is open when the sale starts.
    let barrier = Arc::new(Barrier::new(buyers + 1));
    let url = app.url(&format!("/api/flights/{flight}"));
    let seed = burst_seed();
    let tasks: Vec<_> = (0..buyers)
        .map(|i| {
            let rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            // Each buyer is a customer of its own, from its own address.
            let http = super::customer_client(i);
            let mut buyer = Buyer::new(app, &http, flight, limits.buyer_for, rng);
            buyer.outage = outage;
            let (first, barrier, url) = (first.clone(), barrier.clone(), url.clone());
            tokio::spawn(async move {
                let _ = SeatMap::read(&buyer.http, &url).await;
                barrier.wait().await;
                buyer.run(&first).await
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let sold_out = tokio::spawn(sold_out_after(
        app.pool.clone(),
        flight_uuid(flight),
        start,
        limits.sell_out_within,
    ));
    let mut logs = Vec::with_capacity(buyers);
    for t in tasks {
        logs.push(t.await.expect("a buyer task"));
    }
    let mut report = summarize(&logs);
    report.buyers = buyers;
    report.seats = map.seats.len();
    report.sold_out_after = sold_out.await.expect("the sell-out poller");
    audit(app, flight, limits.settle_within, &mut report).await;
    report
}

/// The buyers' choices (which seats, when to change them) are drawn from
/// this seed, buyer `i` from `seed + i`: 22 unless `FLIGHTCTL_BURST_SEED`
/// says otherwise. Printed, so a failing burst's choices can be replayed
/// (its timing, which the server decides, cannot).
fn burst_seed() -> u64 {
    let seed = std::env::var("FLIGHTCTL_BURST_SEED")
        .ok()
        .map(|s| s.parse().expect("FLIGHTCTL_BURST_SEED is a number"))
        .unwrap_or(22);
    println!("burst seed: {seed} (FLIGHTCTL_BURST_SEED={seed} replays the buyers' choices)");
    seed
}

/// The crowd's HTTP client. It drops idle connections well before the
/// server's 5 s keep-alive does: otherwise a request sent on a connection
/// the server is closing fails as "connection closed before message
/// completed", a client-side race and not an answer from the API.
pub fn crowd_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

fn flight_uuid(flight: &str) -> Uuid {
    Uuid::parse_str(flight).expect("a flight id")
}

/// One HTTP answer to a create (`code` 0: no answer, a transport error).
struct Answer {
    code: u16,
    /// When it was sent, from the start of the burst.
    sent: Duration,
    latency: Duration,
    retry_after: bool,
}

#[derive(Default)]
struct BuyerLog {
    answers: Vec<Answer>,
    violations: Vec<String>,
    /// Checkout calls answered 503.
    checkout_busy: usize,
    /// Seat-map reads answered 503 during an outage.
    map_unavailable: usize,
    /// A payment refused because the order's hold was lost in an outage.
    lost_hold: bool,
    paid: bool,
    gave_up: bool,
}

fn summarize(logs: &[BuyerLog]) -> BurstReport {
    let answers: Vec<&Answer> = logs.iter().flat_map(|l| &l.answers).collect();
    let count = |code: u16| answers.iter().filter(|a| a.code == code).count();
    let sorted = |keep: &dyn Fn(&Answer) -> bool| {
        let mut v: Vec<Duration> = answers
            .iter()
            .filter(|a| keep(a))
            .map(|a| a.latency)
            .collect();
        v.sort();
        v
    };
    let all = sorted(&|a| a.code != 0);
    let conflicts = sorted(&|a| a.code == 409);
    let later = sorted(&|a| a.code == 409 && a.sent >= FIRST_WAVE);
    let violations: Vec<&String> = logs.iter().flat_map(|l| &l.violations).collect();
    BurstReport {
        created: count(201),
        conflicts: count(409),
        busy: count(503),
        busy_without_retry_after: answers
            .iter()
            .filter(|a| a.code == 503 && !a.retry_after)
            .count(),
        unknown: count(504),
        other: answers.len() - count(201) - count(409) - count(503) - count(504),
        create_p50: percentile(&all, 0.50),
        create_p99: percentile(&all, 0.99),
        conflict_p50: (!conflicts.is_empty()).then(|| percentile(&conflicts, 0.50)),
        conflict_p99: (!conflicts.is_empty()).then(|| percentile(&conflicts, 0.99)),
        first_wave_conflicts: conflicts.len() - later.len(),
        later_conflict_p99: (!later.is_empty()).then(|| percentile(&later, 0.99)),
        violations: violations.len(),
        violation_examples: violations.into_iter().take(EXAMPLES).cloned().collect(),
        checkout_busy: logs.iter().map(|l| l.checkout_busy).sum(),
        map_unavailable: logs.iter().map(|l| l.map_unavailable).sum(),
        lost_holds_caught: logs.iter().filter(|l| l.lost_hold).count(),
        paid: logs.iter().filter(|l| l.paid).count(),
        gave_up: logs.iter().filter(|l| l.gave_up).count(),
        ..BurstReport::default()
    }
}

/// A flight's seats by status, as the API shows them.
struct SeatMap {
    seats: Vec<(String, String)>,
}

impl SeatMap {
    async fn read(http: &reqwest::Client, url: &str) -> Result<SeatMap, String> {
        let resp = http.get(url).send().await.map_err(transport)?;
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.map_err(transport)?;
        if code != 200 {
            return Err(format!("{code} {body}"));
        }
        let seats = body["seatMap"]["seats"]
            .as_array()
            .ok_or("a seat map without seats")?
            .iter()
            .map(|s| (text(&s["id"]), text(&s["status"])))
            .collect();
        Ok(SeatMap { seats })
    }

    fn with_status(&self, status: &str) -> Vec<String> {
        self.seats
            .iter()
            .filter(|(_, s)| s == status)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn available(&self) -> Vec<String> {
        self.with_status("available")
    }
}

/// A failed exchange with the API, with its causes (reqwest's own message
/// alone does not say whether the connection was refused, reset or closed).
fn transport(e: reqwest::Error) -> String {
    let mut text = format!("transport error: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

enum Created {
    Order(String),
    /// Refused (409) or failed: choose seats again.
    ChooseAgain,
    /// The buyer's time is up.
    OutOfTime,
}

struct Buyer {
    http: reqwest::Client,
    base: String,
    flight: String,
    rng: StdRng,
    buyer_for: Duration,
    started: Instant,
    deadline: Instant,
    /// A dependency is killed during the burst (see `burst_through_outage`).
    outage: bool,
    log: BuyerLog,
}

impl Buyer {
    fn new(
        app: &TestApp,
        http: &reqwest::Client,
        flight: &str,
        buyer_for: Duration,
        rng: StdRng,
    ) -> Buyer {
        Buyer {
            http: http.clone(),
            base: app.address.clone(),
            flight: flight.to_string(),
            rng,
            buyer_for,
            started: Instant::now(),
            deadline: Instant::now() + buyer_for,
            outage: false,
            log: BuyerLog::default(),
        }
    }

    async fn run(mut self, first: &[String]) -> BuyerLog {
        // The clock starts at the burst, not when the buyer was made.
        self.started = Instant::now();
        self.deadline = self.started + self.buyer_for;
        let mut available = first.to_vec();
        loop {
            let seats = self.pick(&available);
            match self.create(&seats).await {
                Created::Order(order) => {
                    self.pay(&order, &seats).await;
                    break;
                }
                Created::OutOfTime => break,
                Created::ChooseAgain => {}
            }
            match self.available().await {
                Some(seats) => available = seats,
                None => break,
            }
        }
        self.log
    }

    /// One or two random seats among `available` (never empty).
    fn pick(&mut self, available: &[String]) -> Vec<String> {
        let n = self.rng.random_range(1..=2).min(available.len());
        available
            .choose_multiple(&mut self.rng, n)
            .cloned()
            .collect()
    }

    fn out_of_time(&mut self) -> bool {
        let out = Instant::now() >= self.deadline;
        self.log.gave_up |= out;
        out
    }

    /// Seats on sale now. Seats held by others may come back (an abandoned
    /// or failed order), so wait for them; `None` once sold out or out of time.
    async fn available(&mut self) -> Option<Vec<String>> {
        let url = format!("{}/api/flights/{}", self.base, self.flight);
        loop {
            if self.out_of_time() {
                return None;
            }
            match SeatMap::read(&self.http, &url).await {
                Ok(map) if !map.available().is_empty() => return Some(map.available()),
                Ok(map) if map.with_status("reserved").is_empty() => return None,
                Ok(_) => {}
                Err(e) if self.outage && e.starts_with("503 ") => self.log.map_unavailable += 1,
                Err(e) => self.log.violations.push(format!("seat map: {e}")),
            }
            tokio::time::sleep(HELD_RECHECK).await;
        }
    }

    /// Create an order for `seats`, retrying busy answers with the same key.
    async fn create(&mut self, seats: &[String]) -> Created {
        let key = Uuid::new_v4().to_string();
        let url = format!("{}/api/orders", self.base);
        let body = json!({"flightId": self.flight, "seats": seats});
        loop {
            if self.out_of_time() {
                return Created::OutOfTime;
            }
            let began = Instant::now();
            let sent = began - self.started;
            let reply = send(&self.http, &url, &key, &body).await;
            let latency = began.elapsed();
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    self.log.answers.push(Answer {
                        code: 0,
                        sent,
                        latency,
                        retry_after: false,
                    });
                    self.log.violations.push(format!("create: {e}"));
                    self.pause(None).await;
                    continue;
                }
            };
            self.log.answers.push(Answer {
                code: reply.code,
                sent,
                latency,
                retry_after: reply.retry_after.is_some(),
            });
            match reply.code {
                201 => return Created::Order(text(&reply.body["orderId"])),
                409 => return Created::ChooseAgain,
                // Busy, or the outcome not known in time: the same key
                // again tells the real outcome.
                503 | 504 => self.busy("create", &reply).await,
                _ if reply.code >= 500 => {
                    self.violation("create", &reply);
                    self.pause(None).await;
                }
                _ => {
                    self.violation("create", &reply);
                    return Created::ChooseAgain;
                }
            }
        }
    }

    /// Pay an order just created, naming a passenger per seat in the same
    /// call (as a buyer must before paying); a refusal here is a violation,
    /// as the buyer holds its seats.
    async fn pay(&mut self, order: &str, seats: &[String]) {
        let key = Uuid::new_v4().to_string();
        let url = format!("{}/api/orders/{order}/pay", self.base);
        let passengers: Vec<Value> = (seats.iter())
            .map(|seat| json!({"seat": seat, "givenName": "Flash", "familyName": "Buyer"}))
            .collect();
        let body = json!({"paymentCode": "00000", "passengers": passengers});
        while !self.out_of_time() {
            match send(&self.http, &url, &key, &body).await {
                Ok(reply) if reply.code == 202 => {
                    self.log.paid = true;
                    return;
                }
                // The hold was lost with the dependency and another order
                // took a seat: the payment's re-check refuses, as it must.
                Ok(reply)
                    if self.outage
                        && reply.code == 409
                        && reply.body["error"] == "SEATS_UNAVAILABLE" =>
                {
                    self.log.lost_hold = true;
                    return;
                }
                Ok(reply) if reply.code == 503 || reply.code == 504 => {
                    self.log.checkout_busy += usize::from(reply.code == 503);
                    self.busy("pay", &reply).await;
                }
                Ok(reply) => {
                    self.violation("pay", &reply);
                    return;
                }
                Err(e) => {
                    self.log.violations.push(format!("pay: {e}"));
                    self.pause(None).await;
                }
            }
        }
    }

    /// A 503 must say when to come back; wait that long, plus jitter so the
    /// crowd does not return in lockstep.
    async fn busy(&mut self, what: &str, reply: &Reply) {
        if reply.retry_after.is_none() {
            self.log
                .violations
                .push(format!("{what}: 503 without Retry-After: {}", reply.body));
        }
        self.pause(reply.retry_after).await;
    }

    fn violation(&mut self, what: &str, reply: &Reply) {
        self.log
            .violations
            .push(format!("{what}: {} {}", reply.code, reply.body));
    }

    async fn pause(&mut self, retry_after: Option<Duration>) {
        let jitter = Duration::from_millis(self.rng.random_range(0..250));
        let wait = retry_after.unwrap_or(FALLBACK_RETRY) + jitter;
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(left)).await;
    }
}

struct Reply {
    code: u16,
    retry_after: Option<Duration>,
    body: Value,
}

/// POST `body` with an `Idempotency-Key`; the whole answer, body included.
async fn send(http: &reqwest::Client, url: &str, key: &str, body: &Value) -> Result<Reply, String> {
    send_as(http, reqwest::Method::POST, url, Some(key), body).await
}

/// Send `body` (with an `Idempotency-Key`, if any); the whole answer.
async fn send_as(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> Result<Reply, String> {
    let mut req = http.request(method, url).json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.map_err(transport)?;
    let code = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.map_err(transport)?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply {
        code,
        retry_after,
        body,
    })
}

/// Poll Postgres every 50 ms until every seat is booked.
async fn sold_out_after(
    pool: Pool,
    flight: Uuid,
    start: Instant,
    within: Duration,
) -> Option<Duration> {
    let client = pool.get().await.expect("a connection");
    loop {
        let unsold: i64 = client
            .query_one(
                "SELECT count(*) FROM seats WHERE flight_id = $1 AND status <> 'booked'",
                &[&flight],
            )
            .await
            .expect("count unsold seats")
            .get(0);
        if unsold == 0 {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Settle, then count ghosts and double sales.
pub async fn audit(app: &TestApp, flight: &str, settle_within: Duration, report: &mut BurstReport) {
    let flight = flight_uuid(flight);
    let client = app.pool.get().await.expect("a connection");
    report.unsettled = settle(&client, flight, settle_within).await;
    let statuses: HashMap<Uuid, OrderStatus> = client
        .query(
            "SELECT id, status FROM orders WHERE flight_id = $1",
            &[&flight],
        )
        .await
        .expect("order statuses")
        .iter()
        .map(|r| {
            let status: String = r.get(1);
            let parsed = OrderStatus::parse(&status)
                .unwrap_or_else(|| panic!("an order status the domain knows: {status}"));
            (r.get(0), parsed)
        })
        .collect();
    report.ghost_orders = statuses
        .values()
        .filter(|s| **s == OrderStatus::SeatsReserved)
        .count();
    let holds = app.holds.list(flight.into()).await.expect("list holds");
    report.ghost_holds = holds
        .values()
        .filter(|owner| {
            statuses
                .get(&owner.uuid())
                .is_none_or(|s| *s != OrderStatus::Confirmed && !LIVE.contains(s))
        })
        .count();
    report.double_sales = count(&client, DOUBLE_SALES, flight).await;
    report.multi_listed = count(&client, MULTI_LISTED, flight).await;
}

/// Wait, bounded, until no order of the flight is live; returns how many are.
async fn settle(client: &deadpool_postgres::Object, flight: Uuid, within: Duration) -> usize {
    let live: Vec<&str> = LIVE.iter().map(|s| s.as_str()).collect();
    let deadline = Instant::now() + within;
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM orders WHERE flight_id = $1 AND status = ANY($2)",
                &[&flight, &live],
            )
            .await
            .expect("count live orders")
            .get(0);
        if n == 0 || Instant::now() >= deadline {
            return n as usize;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Booked seats not sold to exactly one CONFIRMED order listing them, with
/// `seats.order_id` naming that order.
const DOUBLE_SALES: &str = "
    SELECT count(*) FROM seats s
    WHERE s.flight_id = $1 AND s.status = 'booked'
      AND (SELECT array_agg(o.id) FROM orders o
           WHERE o.flight_id = s.flight_id AND o.status = 'CONFIRMED'
             AND s.id = ANY(o.seats))
          IS DISTINCT FROM ARRAY[s.order_id]";

/// Seats that more than one CONFIRMED order lists.
const MULTI_LISTED: &str = "
    SELECT count(*) FROM (
        SELECT seat FROM orders o, unnest(o.seats) AS seat
        WHERE o.flight_id = $1 AND o.status = 'CONFIRMED'
        GROUP BY seat HAVING count(*) > 1) AS listed";

async fn count(client: &deadpool_postgres::Object, sql: &str, flight: Uuid) -> usize {
    let n: i64 = client
        .query_one(sql, &[&flight])
        .await
        .expect("audit query")
        .get(0);
    n as usize
}
