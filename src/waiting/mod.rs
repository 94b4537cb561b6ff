//! The waiting room of a flash sale: a fair queue per flight in front of
//! its creates, whose admissions are paced by what the booking engine
//! completes. The rules live here; the queue itself (one Lua script per
//! step, every key of a flight under `{queue:<flightId>}`) in
//! `store::queue`.
//!
//! - `ticket.rs` — a ticket's states and transitions;
//! - `token.rs` — the signed admission a ticket shows `POST /api/orders`.
//!
//! A room is *active* for a flight with `salesOpenAt` set, or with a live
//! queue (anyone waiting or admitted, e.g. after creates overflowed the
//! in-flight limit): then every create needs an admission.

pub mod ticket;
pub mod token;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::config::{Secret, Settings};
use crate::domain::FlightId;
use crate::store::fairshare::ClientKey;
use crate::store::flights::{self, Flight};
use crate::store::queue::{Queues, Raw, Stats, Stored, Tick, Use, shuffle_seed};
use crate::store::{Holds, StoreError};

pub use ticket::TicketState;
pub use token::Invalid;

/// The pacing's window: completions and admissions of the last 5 s.
const WINDOW_S: u32 = 5;
/// The least time between two advances of a queue (any instance).
const MIN_TICK: Duration = Duration::from_millis(100);
/// How long an instance reuses a flight's seats left (one Postgres count
/// and one Redis read), so a crowd polling costs Postgres nothing more.
const SEATS_FRESH: Duration = Duration::from_millis(250);

/// A ticket as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub state: TicketState,
    /// 1-based place in the line (`WAITING` only).
    pub position: Option<u64>,
    /// People ahead (`WAITING` only).
    pub ahead: Option<u64>,
    /// People ahead ÷ the measured admission rate; none while nothing is
    /// measured yet.
    pub estimated_wait: Option<Duration>,
    /// When the sale opens (a scheduled sale).
    pub opens_at: Option<DateTime<Utc>>,
    /// The admission (`ADMITTED`, unused).
    pub admission: Option<String>,
    pub admitted_until: Option<DateTime<Utc>>,
}

/// What a flight's seats say to the pacing.
#[derive(Clone, Copy, Debug)]
struct Seats {
    /// Neither sold, claimed nor held.
    left: i64,
    /// Every seat sold or claimed.
    sold_out: bool,
}

/// Every flight's waiting room, for one process.
pub struct Room {
    queues: Queues,
    holds: Holds,
    secret: Secret,
    grace: Duration,
    ttl: Duration,
    floor: u32,
    call_timeout: Duration,
    seats: Mutex<HashMap<FlightId, (Instant, Seats)>>,
    flights: Mutex<HashMap<FlightId, (Instant, Flight)>>,
}

/// Why an admission was refused.
#[derive(Debug)]
pub enum Refused {
    Invalid(Invalid),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

impl Room {
    pub fn new(client: fred::prelude::Client, settings: &Settings) -> Self {
        let s = &settings.server;
        Self {
            queues: Queues::new(client.clone(), settings.redis.key_prefix.clone()),
            holds: Holds::new(client, settings.redis.key_prefix.clone()),
            secret: s.admission_secret.clone(),
            grace: s.queue_grace,
            ttl: s.admission_ttl,
            floor: s.max_in_flight.max(1) as u32,
            call_timeout: s.call_timeout,
            seats: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    fn queues(&self) -> Queues {
        self.queues.until(Instant::now() + self.call_timeout)
    }

    /// The flight's row, at most [`SEATS_FRESH`] old: what the queue's
    /// routes read on every poll (a change of its sale shows within it).
    pub async fn flight(&self, pool: &Pool, id: FlightId) -> Result<Flight, StoreError> {
        if let Some((at, flight)) = self.flights.lock().expect("flights").get(&id)
            && at.elapsed() < SEATS_FRESH
        {
            return Ok(flight.clone());
        }
        let flight = flights::find(pool, id).await?;
        let mut cache = self.flights.lock().expect("flights");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id, (Instant::now(), flight.clone()));
        Ok(flight)
    }

    /// Seats left and sold out, at most [`SEATS_FRESH`] old.
    async fn seats(&self, pool: &Pool, flight: FlightId) -> Result<Seats, StoreError> {
        if let Some((at, seats)) = self.seats.lock().expect("seats").get(&flight)
            && at.elapsed() < SEATS_FRESH
        {
            return Ok(*seats);
        }
        let holds = self.holds.until(Instant::now() + self.call_timeout);
        let (open, held) =
            tokio::try_join!(flights::unsold_unclaimed(pool, flight), holds.list(flight))?;
        let seats = Seats {
            left: (open - held.len() as i64).max(0),
            sold_out: open == 0,
        };
        let mut cache = self.seats.lock().expect("seats");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(flight, (Instant::now(), seats));
        Ok(seats)
    }

    /// The step's view of the world outside Redis.
    async fn tick(&self, pool: &Pool, flight: &Flight) -> Result<Tick, StoreError> {
        let seats = self.seats(pool, flight.id).await?;
        Ok(self.tick_with(flight, seats))
    }

    fn tick_with(&self, flight: &Flight, seats: Seats) -> Tick {
        let opens_at_ms = flight.sales_open_at.map_or(0, |t| t.timestamp_millis());
        Tick {
            opens_at_ms,
            seed: shuffle_seed(flight.id, opens_at_ms),
            grace: self.grace,
            ttl: self.ttl,
            floor: self.floor,
            seats_left: seats.left,
            per_minute: flight.admit_per_minute.map_or(0, |n| n.max(0) as u32),
            sold_out: seats.sold_out,
            window_s: WINDOW_S,
            min_tick: MIN_TICK,
        }
    }

    /// The client's ticket for the flight: its live one, or a new one
    /// (`true`), in the pre-queue before the opening, else at the back.
    pub async fn join(
        &self,
        pool: &Pool,
        flight: &Flight,
        client: &ClientKey,
    ) -> Result<(Ticket, bool), StoreError> {
        let tick = self.tick(pool, flight).await?;
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let raw = (self.queues())
            .join(flight.id, &tick, client.as_str(), &fresh)
            .await?;
        observe(flight.id, &raw.waits);
        if raw.created {
            crate::metrics::api()
                .queue_joined
                .with_label_values(&[&flight.id.to_string()])
                .inc();
        }
        let created = raw.created;
        Ok((self.ticket_of(flight, raw), created))
    }

    /// The ticket, if the flight's queue has it; `beat`: its holder is
    /// there (a poll, a stream's beat), so its grace starts again.
    pub async fn ticket(
        &self,
        pool: &Pool,
        flight: &Flight,
        id: &str,
        beat: bool,
    ) -> Result<Option<Ticket>, StoreError> {
        let tick = self.tick(pool, flight).await?;
        let raw = self.queues().view(flight.id, &tick, id, beat).await?;
        Ok(raw.map(|raw| {
            observe(flight.id, &raw.waits);
            self.ticket_of(flight, raw)
        }))
    }

    /// Whether creates of the flight need an admission: a scheduled sale,
    /// or anyone waiting or admitted.
    pub async fn active(&self, pool: &Pool, flight: &Flight) -> Result<bool, StoreError> {
        if flight.sales_open_at.is_some() {
            return Ok(true);
        }
        let stats = self.stats(pool, flight).await?;
        Ok(stats.waiting + stats.prequeued + stats.admitted > 0)
    }

    /// The queue's figures (and the metrics they feed).
    pub async fn stats(&self, pool: &Pool, flight: &Flight) -> Result<Stats, StoreError> {
        let tick = self.tick(pool, flight).await?;
        let stats = self.queues().stats(flight.id, &tick).await?;
        observe(flight.id, &stats.waits);
        let id = flight.id.to_string();
        let m = crate::metrics::api();
        m.queue_length
            .with_label_values(&[&id])
            .set((stats.waiting + stats.prequeued) as i64);
        m.queue_admitted
            .with_label_values(&[&id])
            .set(stats.admitted as i64);
        m.queue_admission_rate
            .with_label_values(&[&id])
            .set(stats.rate_milli as f64 / 1000.0);
        m.queue_lapsed
            .with_label_values(&[&id])
            .set(stats.lapsed_total as i64);
        Ok(stats)
    }

    /// Use `token` for one create of `flight` (`fingerprint` names the
    /// create, so a retry of it with its `Idempotency-Key` passes): the
    /// ticket it admitted, now used.
    pub async fn use_admission(
        &self,
        pool: &Pool,
        flight: &Flight,
        token: &str,
        fingerprint: &str,
    ) -> Result<String, Refused> {
        let now = crate::time::now_ms() as i64;
        let claims =
            token::verify(self.secret.expose(), flight.id, token, now).map_err(Refused::Invalid)?;
        let tick = self.tick(pool, flight).await?;
        match (self.queues())
            .use_admission(flight.id, &tick, &claims.ticket, fingerprint)
            .await?
        {
            Use::Used | Use::Again => Ok(claims.ticket),
            Use::Invalid => Err(Refused::Invalid(Invalid::Used)),
        }
    }

    /// The create that used `ticket`'s admission changed nothing: it is
    /// the buyer's again until it lapses. Compensation: never cut short
    /// by the request's deadline.
    pub async fn give_back(&self, pool: &Pool, flight: &Flight, ticket: &str) {
        let given = async {
            let tick = self.tick(pool, flight).await?;
            (self.queues.unhurried())
                .give_back(flight.id, &tick, ticket)
                .await
        };
        if let Err(e) = given.await {
            tracing::warn!(error = %e.report(), "an admission could not be given back; it lapses");
        }
    }

    /// A create of the flight reached the engine and was answered: the
    /// pace the room admits at follows these.
    pub async fn completed(&self, flight: &Flight) {
        let tick = self.tick_with(
            flight,
            Seats {
                left: 0,
                sold_out: false,
            },
        );
        if let Err(e) = self.queues.unhurried().completed(flight.id, &tick).await {
            tracing::debug!(error = %e.report(), "a completion was not counted");
        }
    }

    /// The create that used `ticket`'s admission has finished (held its
    /// seats, or was refused): it stops counting as admitted-but-unfinished
    /// once every instance's count of seats left has seen its hold.
    pub async fn finished(&self, flight: &Flight, ticket: &str) {
        self.seats.lock().expect("seats").remove(&flight.id);
        let tick = self.tick_with(
            flight,
            Seats {
                left: 0,
                sold_out: false,
            },
        );
        let settle = SEATS_FRESH * 4;
        let finished = (self.queues.unhurried())
            .finished(flight.id, &tick, ticket, settle)
            .await;
        if let Err(e) = finished {
            tracing::debug!(error = %e.report(), "a finished create was not noted; its admission lapses");
        }
    }

    fn ticket_of(&self, flight: &Flight, raw: Raw) -> Ticket {
        let state = TicketState::of(&raw);
        let at = |ms: i64| DateTime::from_timestamp_millis(ms);
        let (admission, admitted_until) = match raw.stored {
            Stored::Admitted { until_ms, used } => (
                (!used)
                    .then(|| token::sign(self.secret.expose(), flight.id, &raw.ticket, until_ms)),
                at(until_ms),
            ),
            _ => (None, None),
        };
        let position = (state == TicketState::Waiting)
            .then_some(raw.position)
            .flatten();
        let ahead = position.map(|p| p.saturating_sub(1));
        let estimated_wait = match (ahead, raw.rate_milli) {
            (Some(ahead), rate) if rate > 0 => Some(Duration::from_millis(
                ahead.saturating_mul(1_000_000) / rate,
            )),
            _ => None,
        };
        Ticket {
            id: raw.ticket,
            state,
            position,
            ahead,
            estimated_wait,
            opens_at: flight.sales_open_at,
            admission,
            admitted_until,
        }
    }
}

/// The waits of tickets a step admitted, into the histogram.
fn observe(flight: FlightId, waits: &[u64]) {
    if waits.is_empty() {
        return;
    }
    let m = crate::metrics::api();
    let h = m.queue_wait.with_label_values(&[&flight.to_string()]);
    for w in waits {
        h.observe(*w as f64 / 1000.0);
    }
    m.queue_admitted_total
        .with_label_values(&[&flight.to_string()])
        .inc_by(waits.len() as u64);
}
