//! Seat holds in Redis.
//!
//! Each held seat is a key `<prefix>:hold:{<flight>}:<seat>` whose value is
//! the order id and whose TTL is the hold (plus a safety margin). A sorted set
//! `<prefix>:hold:{<flight>}` indexes the flight's holds as `<seat>:<order>`
//! members scored by expiry time, so listing a flight's holds never scans the
//! keyspace. All keys of one flight share the `{<flight>}` hash tag, so every
//! script touches one slot and stays atomic on Redis Cluster. Scripts read the
//! server's clock (`TIME`), so clients with skewed clocks agree.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use fred::prelude::{Client, KeysInterface};
use fred::types::scripts::Script;

use super::redis::Redis;
use super::{StoreError, seat_id};
use crate::domain::{FlightId, OrderId, SeatId};

/// Lock every seat or none. Re-entrant: seats already held by the same order
/// are kept, and their hold never gets shorter (a retried claim of the API
/// must not cut the workflow's hold down to the claim's few seconds).
/// Returns the seats held by other orders (empty = locked).
static LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local order, ttl = ARGV[1], tonumber(ARGV[2])
local taken = {}
for i = 2, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner and owner ~= order then taken[#taken + 1] = ARGV[i + 1] end
end
if #taken > 0 then return taken end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local longest = ttl
for i = 2, #KEYS do
  local keep = ttl
  if redis.call('GET', KEYS[i]) == order then
    keep = math.max(ttl, redis.call('PTTL', KEYS[i]))
  end
  longest = math.max(longest, keep)
  redis.call('SET', KEYS[i], order, 'PX', keep)
  redis.call('ZADD', KEYS[1], now + keep, ARGV[i + 1] .. ':' .. order)
end
if redis.call('PTTL', KEYS[1]) < longest then redis.call('PEXPIRE', KEYS[1], longest) end
return {}
"#,
    )
});

/// Delete the seats this order holds; returns how many were released.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local order = ARGV[1]
local released = 0
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == order then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
  redis.call('ZREM', KEYS[1], ARGV[i] .. ':' .. order)
end
return released
"#,
    )
});

/// Delete the seats this order holds whose hold ends within ARGV[2] ms:
/// a create's claim no workflow adopted (adopting stretches it to the full
/// hold). Returns how many were released.
static DROP_CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local order, within = ARGV[1], tonumber(ARGV[2])
local released = 0
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == order and redis.call('PTTL', KEYS[i]) <= within then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i + 1] .. ':' .. order)
    released = released + 1
  end
end
return released
"#,
    )
});

/// Live holds of one flight as a flat `seat, order, seat, order...` list.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local sep = string.find(member, ':', 1, true)
  out[#out + 1] = string.sub(member, 1, sep - 1)
  out[#out + 1] = string.sub(member, sep + 1)
end
return out
"#,
    )
});

/// Seat holds of every flight. Each call is bounded (see [`Redis`]): by
/// the client's command timeout, and by a request's deadline in the copy
/// [`Holds::until`] gives.
#[derive(Clone)]
pub struct Holds {
    redis: Redis,
    prefix: String,
}

/// The outcome of an all-or-nothing lock.
#[derive(Debug, PartialEq, Eq)]
pub enum Lock {
    Locked,
    /// Seats held by other orders; nothing was changed.
    Taken(Vec<SeatId>),
}

impl Holds {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            redis: Redis::new(client),
            prefix: prefix.into(),
        }
    }

    /// The holds for a caller that must answer by `due`: each command is
    /// bounded by what is left, and none is sent while the client is
    /// reconnecting (after a short grace, the store is unavailable).
    pub fn until(&self, due: Instant) -> Self {
        Self {
            redis: self.redis.until(due),
            prefix: self.prefix.clone(),
        }
    }

    /// The holds without a caller's deadline, for compensation that runs
    /// after it.
    pub fn unhurried(&self) -> Self {
        Self {
            redis: self.redis.unhurried(),
            prefix: self.prefix.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        self.redis.client()
    }

    /// The bounded Redis these holds are kept in.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    fn keys(&self, flight: FlightId, seats: &[SeatId]) -> Vec<String> {
        let index = format!("{}:hold:{{{flight}}}", self.prefix);
        let mut keys = Vec::with_capacity(seats.len() + 1);
        keys.extend(seats.iter().map(|s| format!("{index}:{s}")));
        keys.insert(0, index);
        keys
    }

    fn args(order: OrderId, ttl: Option<Duration>, seats: &[SeatId]) -> Vec<String> {
        let mut args = vec![order.to_string()];
        args.extend(ttl.map(|t| t.as_millis().max(1).to_string()));
        args.extend(seats.iter().map(SeatId::to_string));
        args
    }

    /// Hold every seat in `seats` for `order` for `ttl`, or none of them.
    pub async fn lock(
        &self,
        flight: FlightId,
        order: OrderId,
        seats: &[SeatId],
        ttl: Duration,
    ) -> Result<Lock, StoreError> {
        let keys = self.keys(flight, seats);
        let args = Self::args(order, Some(ttl), seats);
        let taken: Vec<String> = self.redis.eval(&LOCK, keys, args).await?;
        let taken = taken
            .iter()
            .map(|s| seat_id(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if taken.is_empty() {
            Lock::Locked
        } else {
            Lock::Taken(taken)
        })
    }

    /// Of `seats`, those held by an order other than `order` (a read, no claim).
    pub async fn held_by_others(
        &self,
        flight: FlightId,
        order: OrderId,
        seats: &[SeatId],
    ) -> Result<Vec<SeatId>, StoreError> {
        let keys = self.keys(flight, seats).split_off(1);
        let owners: Vec<Option<String>> = self.redis.call().await?.mget(keys).await?;
        let me = order.to_string();
        Ok(seats
            .iter()
            .zip(owners)
            .filter(|(_, owner)| owner.as_ref().is_some_and(|o| *o != me))
            .map(|(seat, _)| seat.clone())
            .collect())
    }

    /// Release the seats of `seats` that `order` holds; others are untouched.
    pub async fn release(
        &self,
        flight: FlightId,
        order: OrderId,
        seats: &[SeatId],
    ) -> Result<u32, StoreError> {
        if seats.is_empty() {
            return Ok(0);
        }
        let (keys, args) = (self.keys(flight, seats), Self::args(order, None, seats));
        self.redis.eval(&RELEASE, keys, args).await
    }

    /// Release `order`'s claim on `seats` unless a workflow adopted it: a
    /// hold of the seat that ends within `claim_ttl` is still the claim.
    pub async fn drop_claim(
        &self,
        flight: FlightId,
        order: OrderId,
        seats: &[SeatId],
        claim_ttl: Duration,
    ) -> Result<u32, StoreError> {
        let keys = self.keys(flight, seats);
        let args = Self::args(order, Some(claim_ttl), seats);
        self.redis.eval(&DROP_CLAIM, keys, args).await
    }

    /// Live holds of a flight: seat id → order id.
    pub async fn list(&self, flight: FlightId) -> Result<HashMap<SeatId, OrderId>, StoreError> {
        let flat: Vec<String> = self
            .redis
            .eval(&LIST, self.keys(flight, &[]), vec![])
            .await?;
        let mut holds = HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            if let Ok(order) = pair[1].parse::<OrderId>() {
                holds.insert(seat_id(&pair[0])?, order);
            }
        }
        Ok(holds)
    }
}
