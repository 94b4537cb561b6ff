//! A flight's waiting room in Redis: the queue of tickets, shared by every
//! `serve` and surviving a restart of any of them.
//!
//! Every key of a flight's queue carries the hash tag `{queue:<flightId>}`,
//! so each script touches one slot on Redis Cluster (one flight's queue is
//! one slot: it scales with flights, not within one; see README's capacity
//! model). Keys, under `<prefix>:{queue:<flightId>}:`:
//!
//! - `meta` — hash: `opens_at`, `opened` (the pre-queue has been shuffled
//!   into the line), `opened_at`, `seed`, `seq` (the last place given in
//!   the line), `preseq`, `sold_out`, `tick` (the last advance),
//!   `admitted_total`, `lapsed_total`, `first_admit`;
//! - `pre` — sorted set: the pre-queue, tickets by join order;
//! - `line` — sorted set: waiting tickets by place (FIFO);
//! - `admitted` — sorted set: admitted tickets whose admission is unused,
//!   by the time it lapses (`ADMISSION_TTL`): the admitted-but-unfinished;
//! - `admits` — sorted set: tickets by the time they were admitted, the
//!   last minute of them (the admission rate and `admitPerMinute`);
//! - `seen` — sorted set: pre-queued and waiting tickets by their last
//!   poll or stream beat (`QUEUE_GRACE` runs from it);
//! - `st` — hash: ticket → stored state (`P`, `W`, `A<until ms>`,
//!   `U<until ms>` once its admission made an order, `X`);
//! - `joined` — hash: ticket → join time (ms);
//! - `clients` — hash: client → its ticket (one per client per flight);
//! - `used` — hash: ticket → the fingerprint of the create that used its
//!   admission (a retry of that create with its `Idempotency-Key` passes);
//! - `done` — hash: second → creates completed by the engine in it (every
//!   instance counts here: the engine's measured pace).
//!
//! Each step is one Lua script, and each first *advances* the queue (at
//! most every `min_tick`, or at once when the opening is due): at the
//! opening the pre-queue is shuffled once (Fisher–Yates driven by a
//! Park–Miller generator seeded from the flight and the opening time, so
//! the order can be checked after the fact), places whose last beat is
//! older than the grace lapse, unused admissions past their TTL lapse,
//! and the head of the line is admitted as far as the pacing allows (see
//! [`Tick`]). Any join, poll or stream beat of any instance moves the
//! queue, atomically: there is no leader to lose.

use std::time::Duration;

use fred::prelude::Client;
use fred::types::scripts::Script;
use std::sync::LazyLock;

use super::StoreError;
use super::redis::Redis;
use crate::domain::FlightId;

/// The advance every script runs first, and the view every script answers.
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta, pre, line, admitted, admits, seen, st, joined, clients, used, done =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local opens_at, seed, grace, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local floor, seats_left, per_minute = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local sold_out, window, min_tick = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local waits = {}

local function num(v) return tonumber(v) or 0 end

local function lapse(ticket)
  redis.call('HSET', st, ticket, 'X')
  redis.call('ZREM', line, ticket)
  redis.call('ZREM', pre, ticket)
  redis.call('ZREM', seen, ticket)
  redis.call('HINCRBY', meta, 'lapsed_total', 1)
end

local function open()
  local members = redis.call('ZRANGE', pre, 0, -1)
  local n = #members
  local x = seed % 2147483646 + 1
  for i = n, 2, -1 do
    x = (x * 48271) % 2147483647
    local j = x % i + 1
    members[i], members[j] = members[j], members[i]
  end
  local seq = num(redis.call('HGET', meta, 'seq'))
  for i = 1, n do
    redis.call('ZADD', line, seq + i, members[i])
    redis.call('HSET', st, members[i], 'W')
  end
  redis.call('HSET', meta, 'seq', seq + n, 'opened', '1', 'opened_at', now, 'seed', seed)
  redis.call('DEL', pre)
end

local function advance(force)
  redis.call('HSET', meta, 'opens_at', opens_at, 'sold_out', sold_out)
  local opened = redis.call('HGET', meta, 'opened') == '1'
  local due = (not opened) and now >= opens_at
  if not (due or force) and now - num(redis.call('HGET', meta, 'tick')) < min_tick then return end
  redis.call('HSET', meta, 'tick', now)
  if due then open() opened = true end
  for _, ticket in ipairs(redis.call('ZRANGEBYSCORE', seen, '-inf', now - grace, 'LIMIT', 0, 1000)) do
    local s = redis.call('HGET', st, ticket)
    if s == 'P' or s == 'W' then lapse(ticket) else redis.call('ZREM', seen, ticket) end
  end
  for _, ticket in ipairs(redis.call('ZRANGEBYSCORE', admitted, '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', admitted, ticket)
    if string.sub(redis.call('HGET', st, ticket) or 'X', 1, 1) == 'A' then lapse(ticket) end
  end
  redis.call('ZREMRANGEBYSCORE', admits, '-inf', now - 60000)
  local sec = math.floor(now / 1000)
  local done_w = 0
  local buckets = redis.call('HGETALL', done)
  for i = 1, #buckets, 2 do
    local at = tonumber(buckets[i])
    if at <= sec - window - 60 then redis.call('HDEL', done, buckets[i])
    elseif at > sec - window then done_w = done_w + tonumber(buckets[i + 1]) end
  end
  if not opened or sold_out == '1' then return end
  local unfinished = redis.call('ZCARD', admitted)
  local admits_w = redis.call('ZCOUNT', admits, now - window * 1000, '+inf')
  local allowed = math.min(done_w + floor - admits_w, math.max(floor, done_w) - unfinished,
    seats_left - unfinished)
  if per_minute > 0 then allowed = math.min(allowed, per_minute - redis.call('ZCARD', admits)) end
  if allowed <= 0 then return end
  local opened_at = num(redis.call('HGET', meta, 'opened_at'))
  for _, ticket in ipairs(redis.call('ZRANGE', line, 0, allowed - 1)) do
    redis.call('ZREM', line, ticket)
    redis.call('ZREM', seen, ticket)
    redis.call('HSET', st, ticket, 'A' .. (now + ttl))
    redis.call('ZADD', admitted, now + ttl, ticket)
    redis.call('ZADD', admits, now, ticket)
    redis.call('HINCRBY', meta, 'admitted_total', 1)
    redis.call('HSETNX', meta, 'first_admit', now)
    waits[#waits + 1] = tostring(now - math.max(num(redis.call('HGET', joined, ticket)), opened_at))
  end
end

-- The rate buyers are admitted at, in thousandths per second: over the
-- last 30 s (or since the first admission), else the engine's pace.
local function rate()
  local first = num(redis.call('HGET', meta, 'first_admit'))
  if first > 0 then
    local span = math.max(1000, math.min(30000, now - first))
    local n = redis.call('ZCOUNT', admits, now - span, '+inf')
    if n > 0 then return math.floor(n * 1000000 / span) end
  end
  local sec = math.floor(now / 1000)
  local done_w = 0
  local buckets = redis.call('HGETALL', done)
  for i = 1, #buckets, 2 do
    if tonumber(buckets[i]) > sec - window then done_w = done_w + tonumber(buckets[i + 1]) end
  end
  return math.floor(done_w * 1000 / window)
end

-- The ticket as the API shows it: state, place, until, sold out, opens at,
-- rate, created, ticket, then the waits of the tickets admitted now.
local function view(ticket, created, touch)
  local s = redis.call('HGET', st, ticket)
  if not s then return {'none'} end
  local state, position, till = string.sub(s, 1, 1), '', ''
  if (state == 'P' or state == 'W') and touch then redis.call('ZADD', seen, now, ticket) end
  if state == 'W' then
    local rank = redis.call('ZRANK', line, ticket)
    if rank then position = tostring(rank + 1) end
  elseif state == 'A' or state == 'U' then
    till = string.sub(s, 2)
  end
  local out = {state, position, till, redis.call('HGET', meta, 'sold_out') or '0',
    tostring(opens_at), tostring(rate()), created, ticket}
  for _, w in ipairs(waits) do out[#out + 1] = w end
  return out
end
"#;

fn script(body: &str) -> Script {
    Script::from_lua(format!("{PRELUDE}\n{body}"))
}

/// Join: the client's ticket if it has a live one (not lapsed, its
/// admission not used), else ARGV[12] as a new ticket: in the pre-queue
/// before the opening, else at the back of the line.
static JOIN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
advance()
local client, fresh = ARGV[11], ARGV[12]
local mine = redis.call('HGET', clients, client)
if mine then
  local s = string.sub(redis.call('HGET', st, mine) or 'X', 1, 1)
  if s ~= 'X' and s ~= 'U' then return view(mine, '0', true) end
end
local opened = redis.call('HGET', meta, 'opened') == '1'
if opened then
  redis.call('ZADD', line, redis.call('HINCRBY', meta, 'seq', 1), fresh)
  redis.call('HSET', st, fresh, 'W')
else
  redis.call('ZADD', pre, redis.call('HINCRBY', meta, 'preseq', 1), fresh)
  redis.call('HSET', st, fresh, 'P')
end
redis.call('HSET', clients, client, fresh)
redis.call('HSET', joined, fresh, now)
redis.call('ZADD', seen, now, fresh)
-- A joiner at the head of an idle line need not wait for the next step.
if opened and redis.call('ZCARD', line) == 1 then advance(true) end
return view(fresh, '1', true)
"#,
    )
});

/// A ticket's view, after an advance; ARGV[11] `1` counts it as a beat of
/// the ticket's holder (a poll, or a stream that is open).
static VIEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
advance()
return view(ARGV[12], '0', ARGV[11] == '1')
"#,
    )
});

/// Use the admission of ticket ARGV[11] for a create fingerprinted
/// ARGV[12]: `ok` (now used), `again` (used by this same create before:
/// a retry), else `invalid` (lapsed, used by another create, unknown).
static USE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
advance()
local ticket, fp = ARGV[11], ARGV[12]
local s = redis.call('HGET', st, ticket) or 'X'
local kind, till = string.sub(s, 1, 1), tonumber(string.sub(s, 2)) or 0
if kind == 'A' and till > now then
  redis.call('HSET', st, ticket, 'U' .. till)
  redis.call('HSET', used, ticket, fp)
  return 'ok'
end
if kind == 'U' and fp ~= '' and redis.call('HGET', used, ticket) == fp then return 'again' end
return 'invalid'
"#,
    )
});

/// Give back the admission of ticket ARGV[11] (its create changed
/// nothing): admitted again until its own lapse time, if not past it.
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local ticket = ARGV[11]
local s = redis.call('HGET', st, ticket) or 'X'
local till = tonumber(string.sub(s, 2)) or 0
if string.sub(s, 1, 1) == 'U' and till > now then
  redis.call('HSET', st, ticket, 'A' .. till)
  redis.call('ZADD', admitted, till, ticket)
  redis.call('HDEL', used, ticket)
  return 1
end
return 0
"#,
    )
});

/// One create completed by the engine, counted in this second's bucket.
static DONE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
redis.call('HINCRBY', done, tostring(math.floor(now / 1000)), 1)
return 1
"#,
    )
});

/// The create that used ticket ARGV[11]'s admission has finished (its
/// seats are held, or it was refused): it stops counting as unfinished
/// ARGV[12] ms from now, once every instance's count of seats left has
/// seen its hold.
static FINISHED: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local ticket = ARGV[11]
if string.sub(redis.call('HGET', st, ticket) or 'X', 1, 1) == 'U' then
  redis.call('ZADD', admitted, 'XX', now + tonumber(ARGV[12]), ticket)
  return 1
end
return 0
"#,
    )
});

/// The queue's figures (after an advance): waiting, pre-queued, admitted
/// unused, admitted in all, lapsed in all, admission rate (thousandths per
/// second), then the waits of tickets admitted now.
static STATS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
advance()
local out = {tostring(redis.call('ZCARD', line)), tostring(redis.call('ZCARD', pre)),
  tostring(redis.call('ZCARD', admitted)), redis.call('HGET', meta, 'admitted_total') or '0',
  redis.call('HGET', meta, 'lapsed_total') or '0', tostring(rate())}
for _, w in ipairs(waits) do out[#out + 1] = w end
return out
"#,
    )
});

/// What every step of a flight's queue is told, by its caller, of the
/// world outside Redis: when the sale opens, the pacing's inputs and the
/// timings. The pacing admits from the head of the line while all of:
///
/// - admissions in the last `window` ≤ creates the engine completed in it
///   plus `floor` (the rate follows what the engine completes, growing by
///   at most `floor` a window while it keeps up);
/// - admitted-but-unfinished < max(`floor`, completions in the window)
///   (a slower engine admits fewer at a time);
/// - admitted-but-unfinished < `seats_left` (never more buyers than seats);
/// - admissions in the last minute < `per_minute` (the operator's cap,
///   0: none);
///
/// and none while the flight is `sold_out` (every seat sold or claimed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    /// The sale's opening (ms since the epoch); 0: open already.
    pub opens_at_ms: i64,
    /// Seeds the pre-queue's shuffle at the opening ([`shuffle_seed`]).
    pub seed: u32,
    pub grace: Duration,
    pub ttl: Duration,
    pub floor: u32,
    pub seats_left: i64,
    pub per_minute: u32,
    pub sold_out: bool,
    /// The pacing's window, in whole seconds.
    pub window_s: u32,
    /// The least time between two advances.
    pub min_tick: Duration,
}

/// The seed of a flight's pre-queue shuffle: recorded facts (the flight
/// and its opening), so a test or an audit can replay the shuffle.
pub fn shuffle_seed(flight: FlightId, opens_at_ms: i64) -> u32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{flight}:{opens_at_ms}").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff
}

/// The shuffle the opening applies to a pre-queue of `n` (join order in,
/// line order out): the same Fisher–Yates and Park–Miller steps as the Lua.
pub fn shuffled(n: usize, seed: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = u64::from(seed) % 2_147_483_646 + 1;
    for i in (2..=n).rev() {
        x = (x * 48_271) % 2_147_483_647;
        let j = (x % i as u64) as usize;
        order.swap(i - 1, j);
    }
    order
}

/// A ticket's state as stored (`SOLD_OUT` is not stored: waiting tickets
/// are told it while the flight's `sold_out` is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Prequeue,
    Waiting,
    /// Admitted until the time (ms); `used` once its admission made an
    /// order.
    Admitted {
        until_ms: i64,
        used: bool,
    },
    Expired,
}

/// A ticket as a step read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raw {
    pub ticket: String,
    pub stored: Stored,
    /// 1-based place in the line (waiting tickets).
    pub position: Option<u64>,
    pub sold_out: bool,
    pub opens_at_ms: i64,
    /// Admissions per second, in thousandths.
    pub rate_milli: u64,
    /// The step made this ticket (a join that found none live).
    pub created: bool,
    /// How long each ticket this step admitted waited (ms).
    pub waits: Vec<u64>,
}

/// A queue's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub waiting: u64,
    pub prequeued: u64,
    /// Admitted and not finished (admission unused, or its create running).
    pub admitted: u64,
    pub admitted_total: u64,
    pub lapsed_total: u64,
    pub rate_milli: u64,
    pub waits: Vec<u64>,
}

/// What using an admission came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Used now by this create.
    Used,
    /// Used before by this same create (a retry with its key).
    Again,
    /// Lapsed, used by another create, or no such ticket.
    Invalid,
}

/// Every flight's queue. Each call is bounded (see [`Redis`]).
#[derive(Clone)]
pub struct Queues {
    redis: Redis,
    prefix: String,
}

impl Queues {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            redis: Redis::new(client),
            prefix: prefix.into(),
        }
    }

    /// The queues for a caller that must answer by `due`.
    pub fn until(&self, due: std::time::Instant) -> Self {
        Self {
            redis: self.redis.until(due),
            prefix: self.prefix.clone(),
        }
    }

    /// Without a caller's deadline (compensation).
    pub fn unhurried(&self) -> Self {
        Self {
            redis: self.redis.unhurried(),
            prefix: self.prefix.clone(),
        }
    }

    fn keys(&self, flight: FlightId) -> Vec<String> {
        [
            "meta", "pre", "line", "admitted", "admits", "seen", "st", "joined", "clients", "used",
            "done",
        ]
        .iter()
        .map(|k| format!("{}:{{queue:{flight}}}:{k}", self.prefix))
        .collect()
    }

    fn args(tick: &Tick, more: &[&str]) -> Vec<String> {
        let ms = |d: Duration| d.as_millis().to_string();
        let mut args = vec![
            tick.opens_at_ms.max(0).to_string(),
            tick.seed.to_string(),
            ms(tick.grace),
            ms(tick.ttl),
            tick.floor.to_string(),
            tick.seats_left.to_string(),
            tick.per_minute.to_string(),
            if tick.sold_out { "1" } else { "0" }.to_string(),
            tick.window_s.max(1).to_string(),
            ms(tick.min_tick),
        ];
        args.extend(more.iter().map(|s| s.to_string()));
        args
    }

    /// The client's live ticket, or `fresh` as its new one.
    pub async fn join(
        &self,
        flight: FlightId,
        tick: &Tick,
        client: &str,
        fresh: &str,
    ) -> Result<Raw, StoreError> {
        let out: Vec<String> = self
            .redis
            .eval(&JOIN, self.keys(flight), Self::args(tick, &[client, fresh]))
            .await?;
        parse_raw(out).ok_or_else(|| StoreError::corrupt("queue ticket", fresh))
    }

    /// The ticket, if the queue has it; `beat`: its holder is still there
    /// (a poll, a stream's beat), so its grace starts again.
    pub async fn view(
        &self,
        flight: FlightId,
        tick: &Tick,
        ticket: &str,
        beat: bool,
    ) -> Result<Option<Raw>, StoreError> {
        let beat = if beat { "1" } else { "0" };
        let out: Vec<String> = self
            .redis
            .eval(&VIEW, self.keys(flight), Self::args(tick, &[beat, ticket]))
            .await?;
        Ok(parse_raw(out))
    }

    /// Use ticket's admission for one create (`fingerprint` names the
    /// create, so its retry passes; empty: no retry passes).
    pub async fn use_admission(
        &self,
        flight: FlightId,
        tick: &Tick,
        ticket: &str,
        fingerprint: &str,
    ) -> Result<Use, StoreError> {
        let out: String = self
            .redis
            .eval(
                &USE,
                self.keys(flight),
                Self::args(tick, &[ticket, fingerprint]),
            )
            .await?;
        Ok(match out.as_str() {
            "ok" => Use::Used,
            "again" => Use::Again,
            _ => Use::Invalid,
        })
    }

    /// The create that used ticket's admission changed nothing: the
    /// admission is the buyer's again until it lapses.
    pub async fn give_back(
        &self,
        flight: FlightId,
        tick: &Tick,
        ticket: &str,
    ) -> Result<bool, StoreError> {
        let given: i64 = self
            .redis
            .eval(&GIVE_BACK, self.keys(flight), Self::args(tick, &[ticket]))
            .await?;
        Ok(given == 1)
    }

    /// A create of the flight was completed by the engine (any instance).
    pub async fn completed(&self, flight: FlightId, tick: &Tick) -> Result<(), StoreError> {
        let _: i64 = self
            .redis
            .eval(&DONE, self.keys(flight), Self::args(tick, &[]))
            .await?;
        Ok(())
    }

    /// The create that used `ticket`'s admission has finished: it counts
    /// as admitted-but-unfinished for `settle` more (until every
    /// instance's count of seats left has seen its hold), then no more.
    pub async fn finished(
        &self,
        flight: FlightId,
        tick: &Tick,
        ticket: &str,
        settle: Duration,
    ) -> Result<(), StoreError> {
        let settle = settle.as_millis().to_string();
        let _: i64 = self
            .redis
            .eval(
                &FINISHED,
                self.keys(flight),
                Self::args(tick, &[ticket, &settle]),
            )
            .await?;
        Ok(())
    }

    /// The queue's figures, after an advance.
    pub async fn stats(&self, flight: FlightId, tick: &Tick) -> Result<Stats, StoreError> {
        let out: Vec<String> = self
            .redis
            .eval(&STATS, self.keys(flight), Self::args(tick, &[]))
            .await?;
        let n = |i: usize| out.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Stats {
            waiting: n(0),
            prequeued: n(1),
            admitted: n(2),
            admitted_total: n(3),
            lapsed_total: n(4),
            rate_milli: n(5),
            waits: out.iter().skip(6).filter_map(|v| v.parse().ok()).collect(),
        })
    }
}

fn parse_raw(out: Vec<String>) -> Option<Raw> {
    if out.len() < 8 || out[0] == "none" {
        return None;
    }
    let until_ms = out[2].parse().unwrap_or(0);
    let stored = match out[0].as_str() {
        "P" => Stored::Prequeue,
        "W" => Stored::Waiting,
        "A" => Stored::Admitted {
            until_ms,
            used: false,
        },
        "U" => Stored::Admitted {
            until_ms,
            used: true,
        },
        _ => Stored::Expired,
    };
    Some(Raw {
        stored,
        position: out[1].parse().ok(),
        sold_out: out[3] == "1",
        opens_at_ms: out[4].parse().unwrap_or(0),
        rate_milli: out[5].parse().unwrap_or(0),
        created: out[6] == "1",
        ticket: out[7].clone(),
        waits: out[8..].iter().filter_map(|v| v.parse().ok()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shuffle_is_a_permutation_and_every_place_is_as_likely() {
        let n = 8;
        let mut first = vec![0u32; n];
        for seed in 1..=40_000u32 {
            let order = shuffled(n, seed.wrapping_mul(2_654_435_761) & 0x7fff_ffff);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            first[order[0]] += 1;
        }
        // Each early buyer is first about 1/8 of the time (5,000 ± 5 %).
        for (buyer, times) in first.iter().enumerate() {
            assert!((4750..=5250).contains(times), "buyer {buyer}: {times}");
        }
    }

    #[test]
    fn the_seed_is_the_flight_and_its_opening() {
        let f: FlightId = "550e8400-e29b-41d4-a716-446655440001".parse().unwrap();
        assert_eq!(shuffle_seed(f, 1_000), shuffle_seed(f, 1_000));
        assert_ne!(shuffle_seed(f, 1_000), shuffle_seed(f, 2_000));
        assert!(shuffle_seed(f, 1_000) < 1 << 31);
    }
}
