//! A scheduled sale through the waiting room, over HTTP only: buyers join
//! the flight's queue before the opening (the pre-queue) and after it, each
//! follows its ticket's event stream, and an admitted buyer creates its
//! order with the admission, names its passenger and pays. Shared by
//! `tests/flash_sale.rs` (a smoke size) and `benches/flash_sale.rs`
//! (`-- --waiting-room`).
//!
//! What it reports: join latency, time from the opening to the last seat
//! sold, 503 / 504 answers (to joins, and to admitted buyers' calls), the
//! Kendall tau between join order and queue order for those who joined
//! after the opening (and between join order and admission order where
//! enough of them were admitted), and the median relative error of each
//! admitted buyer's first wait estimate.
//!
//! Each buyer is a customer of its own (`support::customer_client`), and
//! picks its seat with a random generator seeded from the run's seed and
//! its number: the seed is printed, so a run can be repeated.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::burst::percentile;
use super::sse::{self, EventStream};
use super::{TestApp, customer_address, customer_client};

/// The size of a sale.
#[derive(Clone, Copy, Debug)]
pub struct SaleScale {
    /// Rows of six seats.
    pub rows: i32,
    /// Buyers who join before the opening.
    pub prequeued: usize,
    /// Buyers who join after it, spread evenly over `join_within`.
    pub joiners: usize,
    pub join_within: Duration,
    /// From the first pre-queue join to the opening.
    pub opens_after: Duration,
    /// A buyer gives up after this long from the opening.
    pub buyer_for: Duration,
}

/// What one buyer saw.
#[derive(Clone, Debug, Default)]
pub struct Buyer {
    pub n: usize,
    pub prequeued: bool,
    pub join_status: u16,
    pub join_latency: Duration,
    /// When its join was answered, from the opening (negative before).
    pub joined_at: f64,
    /// Its first position and estimate while waiting, and when (seconds
    /// from the opening).
    pub first_position: Option<u64>,
    pub first_estimate: Option<(f64, f64)>,
    pub admitted_at: Option<f64>,
    pub sold_out_told: bool,
    pub expired: bool,
    pub confirmed: bool,
    /// 503 and 504 answers to this buyer's calls after its admission
    /// (create, passengers, pay).
    pub busy_after_admission: usize,
    pub timeouts_after_admission: usize,
    /// Other answers that are not a client's to act on (5xx but 503/504).
    pub other_errors: Vec<String>,
}

pub struct SaleReport {
    pub seed: u64,
    pub seats: usize,
    pub buyers: Vec<Buyer>,
    pub sold_out_after: Option<Duration>,
    pub seats_booked: i64,
    pub double_sales: i64,
}

impl SaleReport {
    pub fn joins(&self, status: u16) -> usize {
        self.buyers
            .iter()
            .filter(|b| b.join_status == status)
            .count()
    }

    pub fn admitted(&self) -> usize {
        self.buyers
            .iter()
            .filter(|b| b.admitted_at.is_some())
            .count()
    }

    pub fn confirmed(&self) -> usize {
        self.buyers.iter().filter(|b| b.confirmed).count()
    }

    pub fn join_latency(&self, p: f64) -> Duration {
        let mut all: Vec<Duration> = self.buyers.iter().map(|b| b.join_latency).collect();
        all.sort();
        percentile(&all, p)
    }

    /// 503 and 504 answers, to joins and to admitted buyers' calls.
    pub fn busy(&self) -> (usize, usize) {
        let after = |f: fn(&Buyer) -> usize| self.buyers.iter().map(f).sum::<usize>();
        (
            self.joins(503) + after(|b| b.busy_after_admission),
            self.joins(504) + after(|b| b.timeouts_after_admission),
        )
    }

    /// Join order against first queue position, for those who joined
    /// after the opening.
    pub fn tau_queue(&self) -> Option<f64> {
        let pairs: Vec<(f64, f64)> = self
            .buyers
            .iter()
            .filter(|b| !b.prequeued)
            .filter_map(|b| Some((b.joined_at, b.first_position? as f64)))
            .collect();
        kendall_tau(&pairs)
    }

    /// Join order against admission order, for those who joined after
    /// the opening and were admitted.
    pub fn tau_admission(&self) -> Option<f64> {
        let pairs: Vec<(f64, f64)> = self
            .buyers
            .iter()
            .filter(|b| !b.prequeued)
            .filter_map(|b| Some((b.joined_at, b.admitted_at?)))
            .collect();
        kendall_tau(&pairs)
    }

    /// The median of |estimate − actual wait| ÷ actual wait over admitted
    /// buyers, from their first estimate (a wait under a second counted as
    /// one second).
    pub fn estimate_error(&self) -> Option<f64> {
        let mut errors: Vec<f64> = self
            .buyers
            .iter()
            .filter_map(|b| {
                let (at, estimate) = b.first_estimate?;
                let actual = (b.admitted_at? - at).max(1.0);
                Some((estimate - actual).abs() / actual)
            })
            .collect();
        errors.sort_by(f64::total_cmp);
        errors.get(errors.len().checked_sub(1)? / 2).copied()
    }

    pub fn print(&self) {
        let (busy, timeouts) = self.busy();
        let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"));
        println!(
            "  waiting room: seed {}, {} buyers ({} pre-queued) for {} seats",
            self.seed,
            self.buyers.len(),
            self.buyers.iter().filter(|b| b.prequeued).count(),
            self.seats,
        );
        println!(
            "  joins: 201 {} / other {}; join p50 {:.1?} / p99 {:.1?}",
            self.joins(201) + self.joins(200),
            self.buyers.len() - self.joins(201) - self.joins(200),
            self.join_latency(0.50),
            self.join_latency(0.99),
        );
        println!(
            "  admitted {}, confirmed {}, told SOLD_OUT {}, lapsed {}; seats booked {} of {}, double sales {}",
            self.admitted(),
            self.confirmed(),
            self.buyers.iter().filter(|b| b.sold_out_told).count(),
            self.buyers.iter().filter(|b| b.expired).count(),
            self.seats_booked,
            self.seats,
            self.double_sales,
        );
        println!(
            "  sold out {}; 503 {busy} / 504 {timeouts} (joins and admitted buyers' calls)",
            self.sold_out_after.map_or_else(
                || "never".into(),
                |d| format!("in {d:.2?} from the opening")
            ),
        );
        println!(
            "  Kendall tau, joiners after the opening: join vs queue position {}, join vs admission {}; median first-estimate error {}",
            fmt(self.tau_queue()),
            fmt(self.tau_admission()),
            fmt(self.estimate_error()),
        );
        let errors: Vec<&String> = self.buyers.iter().flat_map(|b| &b.other_errors).collect();
        if !errors.is_empty() {
            println!(
                "  other answers ({}): {:?}",
                errors.len(),
                &errors[..errors.len().min(5)]
            );
        }
    }
}

/// Kendall's tau-b of `pairs` (ties counted in neither direction), or
/// None below two pairs.
pub fn kendall_tau(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 2 {
        return None;
    }
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0f64, 0f64, 0f64, 0f64);
    for (i, a) in pairs.iter().enumerate() {
        for b in &pairs[i + 1..] {
            let dx = (a.0 - b.0).signum();
            let dy = (a.1 - b.1).signum();
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => ties_x += 1.0,
                (false, true) => ties_y += 1.0,
                _ if dx == dy => concordant += 1.0,
                _ => discordant += 1.0,
            }
        }
    }
    let n0 = concordant + discordant;
    let denominator = ((n0 + ties_x) * (n0 + ties_y)).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) / denominator)
}

/// Schedule `flight`'s sale to open at `opens_at`, admissions capped at
/// `admit_per_minute` when given: written to its row, as the operator's
/// `POST /api/ops/flights/{id}/sales` does (tests/waiting_room.rs tests
/// that route).
pub async fn schedule(
    app: &TestApp,
    flight: &str,
    opens_at: chrono::DateTime<chrono::Utc>,
    admit_per_minute: Option<i32>,
) {
    let id = uuid::Uuid::parse_str(flight).unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "UPDATE flights SET sales_open = true, sales_open_at = $2, admit_per_minute = $3
         WHERE id = $1",
        &[&id, &opens_at, &admit_per_minute],
    )
    .await
    .unwrap();
}

/// A scheduled sale of a fresh flight of `scale.rows` rows, as the module
/// says.
pub async fn scheduled_sale(app: &TestApp, scale: SaleScale, seed: u64) -> SaleReport {
    let flight = super::burst::insert_flight(&app.pool, scale.rows).await;
    let seats = (scale.rows * 6) as usize;
    let start = Instant::now() + Duration::from_millis(500);
    let opening = start + scale.opens_after;
    let opens_at =
        chrono::Utc::now() + chrono::Duration::from_std(opening - Instant::now()).unwrap();
    schedule(app, &flight, opens_at, None).await;

    let flight = Arc::new(flight);
    let base = Arc::new(app.address.clone());
    let buyers = scale.prequeued + scale.joiners;
    let mut tasks = Vec::with_capacity(buyers);
    for n in 0..buyers {
        let prequeued = n < scale.prequeued;
        let at = if prequeued {
            start
                + scale
                    .opens_after
                    .mul_f64(0.5 * n as f64 / scale.prequeued.max(1) as f64)
        } else {
            let k = (n - scale.prequeued) as f64 / scale.joiners.max(1) as f64;
            opening + Duration::from_millis(200) + scale.join_within.mul_f64(k)
        };
        let (flight, base) = (flight.clone(), base.clone());
        let rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let until = opening + scale.buyer_for;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let mut b = Buyer {
                n,
                prequeued,
                ..Buyer::default()
            };
            let mut run = Run {
                http: customer_client(n),
                base,
                flight,
                opening,
                until,
                rng,
            };
            run.buyer(&mut b).await;
            b
        }));
    }
    let sold = sold_out_watch(app, &flight, seats, opening, opening + scale.buyer_for);
    let sold_out_after = sold.await;
    let mut all = Vec::with_capacity(buyers);
    for t in tasks {
        all.push(t.await.expect("a buyer task"));
    }
    let (seats_booked, double_sales) = audit(app, &flight).await;
    SaleReport {
        seed,
        seats,
        buyers: all,
        sold_out_after,
        seats_booked,
        double_sales,
    }
}

/// When every seat of `flight` is booked, from `opening`; None by `until`.
async fn sold_out_watch(
    app: &TestApp,
    flight: &str,
    seats: usize,
    opening: Instant,
    until: Instant,
) -> Option<Duration> {
    let id = uuid::Uuid::parse_str(flight).unwrap();
    loop {
        let conn = app.pool.get().await.unwrap();
        let booked: i64 = conn
            .query_one(
                "SELECT count(*) FROM seats WHERE flight_id = $1 AND status = 'booked'",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        drop(conn);
        if booked as usize >= seats {
            return Some(Instant::now().saturating_duration_since(opening));
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seats booked, and seats sold to more than one confirmed order.
async fn audit(app: &TestApp, flight: &str) -> (i64, i64) {
    let id = uuid::Uuid::parse_str(flight).unwrap();
    let conn = app.pool.get().await.unwrap();
    let booked: i64 = conn
        .query_one(
            "SELECT count(*) FROM seats WHERE flight_id = $1 AND status = 'booked'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let double: i64 = conn
        .query_one(
            "SELECT count(*) FROM (
                SELECT s FROM orders o, unnest(o.seats) AS s
                WHERE o.flight_id = $1 AND o.status = 'CONFIRMED'
                GROUP BY s HAVING count(*) > 1) d",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    (booked, double)
}

struct Run {
    http: reqwest::Client,
    base: Arc<String>,
    flight: Arc<String>,
    opening: Instant,
    until: Instant,
    rng: StdRng,
}

const SEAT_RETRIES: usize = 20;

impl Run {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn since_opening(&self) -> f64 {
        let now = Instant::now();
        if now >= self.opening {
            (now - self.opening).as_secs_f64()
        } else {
            -(self.opening - now).as_secs_f64()
        }
    }

    async fn buyer(&mut self, b: &mut Buyer) {
        let Some(ticket) = self.join(b).await else {
            return;
        };
        let Some(admission) = self.wait(b, ticket).await else {
            return;
        };
        self.buy(b, &admission).await;
    }

    /// Join the queue: the ticket's object.
    async fn join(&mut self, b: &mut Buyer) -> Option<Value> {
        let began = Instant::now();
        let resp = self
            .http
            .post(self.url(&format!("/api/flights/{}/queue", self.flight)))
            .send()
            .await;
        b.join_latency = began.elapsed();
        b.joined_at = self.since_opening();
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => {
                b.other_errors.push(format!("join: {e}"));
                return None;
            }
        };
        b.join_status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        if !matches!(b.join_status, 200 | 201) {
            if b.join_status >= 500 && !matches!(b.join_status, 503 | 504) {
                b.other_errors
                    .push(format!("join {}: {body}", b.join_status));
            }
            return None;
        }
        Some(body)
    }

    /// Follow the ticket until the buyer's turn (the admission token), the
    /// sale's end or the buyer's patience.
    async fn wait(&mut self, b: &mut Buyer, mut ticket: Value) -> Option<String> {
        let id = ticket["ticket"].as_str()?.to_string();
        let path = format!("/api/flights/{}/queue/{id}", self.flight);
        let mut stream: Option<EventStream> = None;
        loop {
            if self.seen(b, &ticket) {
                return ticket["admission"].as_str().map(str::to_string);
            }
            if b.sold_out_told || b.expired || Instant::now() >= self.until {
                return None;
            }
            if stream.is_none() {
                let client = sse::client_from(customer_address(b.n));
                stream = Some(
                    EventStream::open(&client, &self.url(&format!("{path}/events")), None).await,
                );
            }
            let left = self.until.saturating_duration_since(Instant::now());
            match stream.as_mut().unwrap().try_next(left).await {
                Ok(Some(event)) if event.data.is_object() => ticket = event.data,
                Ok(Some(_)) => {}
                // The stream ended (a `serve` went away): open another.
                Ok(None) => stream = None,
                Err(()) => return None,
            }
        }
    }

    /// Note what `ticket` says; whether it is the buyer's turn.
    fn seen(&self, b: &mut Buyer, ticket: &Value) -> bool {
        let now = self.since_opening();
        match ticket["state"].as_str() {
            Some("WAITING") => {
                if b.first_position.is_none() {
                    b.first_position = ticket["position"].as_u64();
                }
                if b.first_estimate.is_none()
                    && let Some(estimate) = ticket["estimatedWaitSeconds"].as_f64()
                {
                    b.first_estimate = Some((now, estimate));
                }
                false
            }
            Some("ADMITTED") => {
                b.admitted_at.get_or_insert(now);
                true
            }
            Some("SOLD_OUT") => {
                b.sold_out_told = true;
                false
            }
            Some("EXPIRED") => {
                b.expired = true;
                false
            }
            _ => false,
        }
    }

    /// The buyer's turn: a free seat, held with the admission, named, paid.
    async fn buy(&mut self, b: &mut Buyer, admission: &str) {
        for _ in 0..SEAT_RETRIES {
            if Instant::now() >= self.until {
                return;
            }
            let Some(seat) = self.free_seat().await else {
                return;
            };
            let key = format!("wr-{}-{}", b.n, self.rng.random::<u64>());
            let (code, body) = self
                .call(
                    b,
                    reqwest::Method::POST,
                    "/api/orders",
                    json!({"flightId": *self.flight, "seats": [seat]}),
                    &[("Admission", admission), ("Idempotency-Key", &key)],
                )
                .await;
            match code {
                201 => {
                    let order = body["orderId"].as_str().unwrap_or_default().to_string();
                    self.checkout(b, &order, &seat).await;
                    return;
                }
                // Taken meanwhile: the admission is given back; another seat.
                409 if body["error"] == "SEATS_UNAVAILABLE" => continue,
                503 | 504 => tokio::time::sleep(Duration::from_millis(500)).await,
                _ => return,
            }
        }
    }

    async fn checkout(&mut self, b: &mut Buyer, order: &str, seat: &str) {
        let passengers = json!({"passengers": [
            {"seat": seat, "givenName": "Queue", "familyName": "Buyer"}
        ]});
        let path = format!("/api/orders/{order}/passengers");
        while Instant::now() < self.until {
            let (code, _) = self
                .call(b, reqwest::Method::PUT, &path, passengers.clone(), &[])
                .await;
            if code == 200 {
                break;
            }
            if !matches!(code, 503 | 504) {
                return;
            }
        }
        let key = format!("wr-pay-{}-{}", b.n, self.rng.random::<u64>());
        let path = format!("/api/orders/{order}/pay");
        while Instant::now() < self.until {
            let (code, _) = self
                .call(
                    b,
                    reqwest::Method::POST,
                    &path,
                    json!({"paymentCode": "00000"}),
                    &[("Idempotency-Key", &key)],
                )
                .await;
            if code == 202 || code == 200 {
                break;
            }
            if !matches!(code, 503 | 504) {
                return;
            }
        }
        let path = format!("/api/orders/{order}/status");
        while Instant::now() < self.until {
            let resp = self.http.get(self.url(&path)).send().await;
            let status = match resp {
                Ok(r) => r.json::<Value>().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            match status["status"].as_str() {
                Some("CONFIRMED") => {
                    b.confirmed = true;
                    return;
                }
                Some("FAILED" | "EXPIRED" | "CANCELLED") => return,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// A call of an admitted buyer, its 503s and 504s counted.
    async fn call(
        &self,
        b: &mut Buyer,
        method: reqwest::Method,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                b.other_errors.push(format!("{path}: {e}"));
                return (0, Value::Null);
            }
        };
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        match code {
            503 => b.busy_after_admission += 1,
            504 => b.timeouts_after_admission += 1,
            c if c >= 500 => b.other_errors.push(format!("{path} {c}: {body}")),
            _ => {}
        }
        (code, body)
    }

    /// A random available seat of the flight, None when none is left.
    async fn free_seat(&mut self) -> Option<String> {
        let resp = self
            .http
            .get(self.url(&format!("/api/flights/{}", self.flight)))
            .send()
            .await
            .ok()?;
        let body: Value = resp.json().await.ok()?;
        let free: Vec<String> = body["seatMap"]["seats"]
            .as_array()?
            .iter()
            .filter(|s| s["status"] == "available")
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        free.choose(&mut self.rng).cloned()
    }
}

/// A seed for a run: `FLIGHTCTL_SEED` if set, else the clock's nanoseconds.
pub fn seed() -> u64 {
    std::env::var("FLIGHTCTL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
        })
}
