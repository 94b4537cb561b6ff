//! The customers: mixed traffic that journals every answer, the recovery
//! probe and the hold-lifetime sampler.

use super::*;

/// One customer request and every answer it got.
pub struct Request {
    pub kind: Kind,
    pub call: &'static str,
    pub keyed: bool,
    /// The order it targets (change, pay, cancel), or the one its 201 named
    /// (create).
    pub order: Option<Uuid>,
    /// Orders named by its 504 answers (a create's order is known only so).
    pub named: Vec<Uuid>,
    /// Each try's answer: status code (0: no answer) and error code.
    pub answers: Vec<(u16, String)>,
    /// The answer it ended on, unless that left the outcome open: none
    /// when a retrying customer's retries ran out, or a one-shot request
    /// was answered 504 or not at all.
    pub settled: Option<u16>,
    /// The order's seats before the request (change).
    pub seats_before: Vec<String>,
    /// The customer that made it (see [`PROCESS`]).
    pub process: usize,
    /// When it was sent first and when its last answer came, since the
    /// traffic started.
    pub invoked: Duration,
    pub completed: Duration,
}

impl Request {
    /// Every answer was a refusal: nothing was changed, nor will be.
    pub fn refused(&self) -> bool {
        !self.answers.is_empty() && self.answers.iter().all(|(code, _)| refusal(*code))
    }

    /// A try that was answered 504 or not at all.
    pub fn unknown(&self) -> bool {
        self.answers
            .iter()
            .any(|(code, _)| *code == 0 || *code == 504)
    }

    pub fn describe(&self) -> String {
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
pub struct Reply {
    pub answers: Vec<(u16, String)>,
    pub named: Vec<Uuid>,
    /// The last answer, unless it left the outcome open (see `Request`).
    pub settled: Option<(u16, Value)>,
    /// When it was sent first and answered last, since the traffic started.
    pub invoked: Duration,
    pub completed: Duration,
}

/// The order a 504's message names (`/api/orders/<id>/status`).
pub fn named_order(body: &Value) -> Option<Uuid> {
    let message = body["message"].as_str()?;
    let at = message.find("/api/orders/")? + "/api/orders/".len();
    message.get(at..at + 36)?.parse().ok()
}

/// What the customers saw.
#[derive(Default)]
pub struct Journal {
    /// `"<kind> <call> <answer>"` (answer: status code and error code, or
    /// `conn`) → count.
    pub answers: BTreeMap<String, usize>,
    /// Every request, with its answers.
    pub requests: Vec<Request>,
    /// Orders answered 201.
    pub created: Vec<Uuid>,
    /// Orders whose payment was answered 202.
    pub paid: HashSet<Uuid>,
    /// Orders whose payment got no final answer within `RETRY_FOR`.
    pub pay_unresolved: HashSet<Uuid>,
    /// Creates that got no final answer within `RETRY_FOR`.
    pub create_unresolved: usize,
    /// Why requests got no final answer: `"<call>: <last 503 message>"`.
    pub unresolved: BTreeMap<String, usize>,
    /// Orders answered 200 to DELETE.
    pub cancelled: HashSet<Uuid>,
    /// Confirmed bookings whose cancellation was answered 202.
    pub refund_asked: HashSet<Uuid>,
    /// Orders created by the recovery probe.
    pub probes: Vec<Uuid>,
}

/// The hold-lifetime samples: every live order's holds against its
/// `expiresAt`.
#[derive(Default)]
pub struct HoldSamples {
    /// Samples taken, and those a store did not answer in time.
    pub samples: usize,
    pub failed: usize,
    /// Samples skipped while Redis was down.
    pub redis_down: usize,
    /// What the answered samples found, together.
    pub found: Sample,
}

/// What one sample (or all of them) found.
#[derive(Default)]
pub struct Sample {
    /// Live orders and seat holds checked.
    pub orders: usize,
    pub holds: usize,
    /// Orders left out: selected before Redis came back empty.
    pub lost_with_redis: usize,
    /// Orders that changed while sampled (a short or missing hold of theirs
    /// is not counted).
    pub moved: usize,
    /// The least a hold outlived its order's `expiresAt` + margin (ms).
    pub least_spare_ms: Option<i64>,
    pub violations: Vec<String>,
}

impl Sample {
    pub fn spare(&mut self, ms: i64) {
        self.least_spare_ms = Some(self.least_spare_ms.map_or(ms, |least| least.min(ms)));
    }

    /// Add another sample's findings, its violations marked `when`.
    pub fn add(&mut self, other: Sample, when: &str) {
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
pub struct RedisOutage {
    pub down: bool,
    pub back_at: Option<DateTime<Utc>>,
}

tokio::task_local! {
    /// The customer a task is: each request of the history names it.
    pub static PROCESS: usize;
}

/// The address customer `process` speaks from, as `serve`'s trusted proxy
/// (loopback, `TRUSTED_PROXIES`) forwards it: each customer is a client of
/// its own for the server's fair share, as in a real crowd.
pub fn forwarded_for(process: usize) -> String {
    format!("10.77.{}.{}", process / 250, process % 250 + 1)
}

pub struct Shared {
    /// `serve`'s address: a restarted `serve` takes the same port.
    pub base: String,
    /// When the traffic started: the history's clock.
    pub t0: Instant,
    pub http: reqwest::Client,
    pub flight: String,
    pub stop: AtomicBool,
    pub journal: Mutex<Journal>,
    pub pool: deadpool_postgres::Pool,
    pub redis: fred::prelude::Client,
    pub prefix: String,
    pub outage: Mutex<RedisOutage>,
    pub holds: Mutex<HoldSamples>,
}

impl Shared {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn note(&self, kind: Kind, call: &str, answer: &str) {
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
    pub async fn call(
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
            invoked: start - self.t0,
            completed: start - self.t0,
        };
        let mut last: String;
        loop {
            let mut req = (self.http.request(method.clone(), self.url(path))).header(
                "X-Forwarded-For",
                forwarded_for(PROCESS.try_with(|p| *p).unwrap_or(0)),
            );
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
                        reply.completed = self.t0.elapsed();
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
                        reply.completed = self.t0.elapsed();
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
                reply.completed = self.t0.elapsed();
                return reply;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Journal a request: what it targets and every answer it got.
    pub fn record(
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
            process: PROCESS.try_with(|p| *p).unwrap_or(0),
            invoked: reply.invoked,
            completed: reply.completed,
        });
    }

    /// Up to `n` seats among the first available ones (all seats when the
    /// map cannot be read).
    pub async fn choose(&self, n: usize) -> Vec<String> {
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
pub fn seats_of(body: &Value) -> Vec<String> {
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
pub async fn customer(sh: Arc<Shared>, kind: Kind) {
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
pub async fn step() {
    let think = rand::rng().random_range(200..1200);
    tokio::time::sleep(Duration::from_millis(think)).await;
}

pub async fn drive(
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
pub async fn cancel_booking(sh: &Shared, kind: Kind, order: Uuid) {
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
pub async fn recovery(sh: &Shared, probe_flight: &str) -> Option<Duration> {
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
            .header("X-Forwarded-For", "10.78.0.1")
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
pub async fn sample_holds(sh: &Shared, when: &str) {
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

pub async fn sample_once(sh: &Shared, back_at: Option<DateTime<Utc>>) -> Result<Sample, String> {
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
pub async fn hold_sampler(sh: Arc<Shared>) {
    while !sh.stop.load(Ordering::Relaxed) {
        sample_holds(&sh, "during traffic").await;
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}
