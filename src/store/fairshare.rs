//! A fair share per client, counted in Redis so every `serve` counts
//! alike: the booking calls a client has in flight, its live orders and its
//! open event streams.
//!
//! Each count is a sorted set of one client, its members scored by the
//! time (the server's clock, `TIME`) after which they no longer count:
//! an instance that crashes mid-call or mid-stream leaves members that
//! lapse by themselves, never a count stuck high. Every script prunes what
//! has lapsed, refuses at the cap and adds otherwise, in one step, so N
//! parallel requests never pass more than the cap. A client's keys share
//! the hash tag `{client:<address>}`, so each script touches one slot on
//! Redis Cluster:
//!
//! - `<prefix>:share:{client:<a>}:calls` — booking calls in flight, one
//!   member per call, scored by the longest the call can take;
//! - `<prefix>:share:{client:<a>}:orders` — live orders, one member per
//!   order id, scored by the latest time the order can still be live;
//! - `<prefix>:share:{client:<a>}:streams` — open event streams, one
//!   member per stream, scored by its lease (renewed while it runs).
//!
//! A process renews the leases of all its open streams together, every
//! [`RENEW_EVERY`]: one task, one script call per client key, sent at once
//! (the client pipelines them) — never a call per stream as it sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;

use fred::prelude::{Client, SortedSetsInterface};
use fred::types::scripts::Script;

use super::StoreError;
use super::redis::Redis;
use crate::domain::OrderId;

/// A lease: prune lapsed members, refuse at the cap (returns the ms until
/// the earliest member lapses), else add ARGV[1] for ARGV[3] ms (returns
/// -1).
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, cap, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= cap then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - now)
end
redis.call('ZADD', KEYS[1], now + lease, member)
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return -1
"#,
    )
});

/// Renew for ARGV[1] ms the leases ARGV[2..] of one key that still count
/// (never one already given back); returns how many were renewed.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
if renewed > 0 and redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
"#,
    )
});

/// How often a process renews its streams' leases (all at once).
pub const RENEW_EVERY: Duration = Duration::from_secs(15);
/// Renewal calls a process has on the wire at once.
const RENEWALS_AT_ONCE: usize = 256;

/// A live order's place: first drop ARGV[4..] (orders Postgres says have
/// ended), prune lapsed ones; an order already counted stays
/// (`present`); below the cap ARGV[2] the order is added for ARGV[3] ms
/// (`added`); at the cap, `full` and every member with the ms until it
/// lapses.
static PLACE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local order, cap, bound = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], order) then return {'present'} end
if redis.call('ZCARD', KEYS[1]) >= cap then
  local out = {'full'}
  local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    out[#out + 1] = members[i]
    out[#out + 1] = tostring(math.max(0, tonumber(members[i + 1]) - now))
  end
  return out
end
redis.call('ZADD', KEYS[1], now + bound, order)
if redis.call('PTTL', KEYS[1]) < bound then redis.call('PEXPIRE', KEYS[1], bound) end
return {'added'}
"#,
    )
});

/// Who a count is kept for: the client's address as a key part. An IPv6
/// client is its /64, the smallest network one subscriber is given (any
/// address of it is theirs to use); an IPv4 client is its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKey(String);

impl ClientKey {
    /// The client at `address`; none known (a request without a peer, which
    /// a listener never serves) is counted as one client, `unknown`.
    pub fn of(address: Option<IpAddr>) -> Self {
        Self(match address.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            None => "unknown".into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A live order's place in its client's count.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// The order was counted now: give it back if the create fails.
    Added,
    /// The order was counted already (a retry of its create).
    Present,
    /// The client is at its cap: its counted orders, each with the time
    /// until it lapses by itself.
    Full(Vec<(String, Duration)>),
}

/// The counts of every client. Each call is bounded (see [`Redis`]).
#[derive(Clone)]
pub struct FairShare {
    redis: Redis,
    prefix: String,
    renewed: Arc<Renewed>,
}

/// The process's stream leases, renewed together every [`RENEW_EVERY`].
#[derive(Default)]
struct Renewed(Mutex<Leases>);

#[derive(Default)]
struct Leases {
    next: u64,
    /// Each lease: its key, member and lease.
    open: HashMap<u64, (String, String, Duration)>,
}

impl Renewed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, key: &str, member: &str, lease: Duration) -> u64 {
        let mut leases = self.lock();
        leases.next += 1;
        let id = leases.next;
        leases
            .open
            .insert(id, (key.to_string(), member.to_string(), lease));
        id
    }

    /// The open leases by key: their members and the longest lease.
    fn by_key(&self) -> HashMap<String, (Vec<String>, Duration)> {
        let mut by_key: HashMap<String, (Vec<String>, Duration)> = HashMap::new();
        for (key, member, lease) in self.lock().open.values() {
            let entry = by_key.entry(key.clone()).or_default();
            entry.0.push(member.clone());
            entry.1 = entry.1.max(*lease);
        }
        by_key
    }
}

/// Every [`RENEW_EVERY`], renew every open stream lease of the process: one
/// call per client key, all sent at once. Ends when the counts are gone.
async fn renew_streams(redis: Redis, renewed: Weak<Renewed>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(by_key) = renewed.upgrade().map(|r| r.by_key()) else {
            return;
        };
        let calls = by_key.into_iter().map(|(key, (members, lease))| {
            let redis = redis.clone();
            let mut args = Vec::with_capacity(members.len() + 1);
            args.push(millis(lease));
            args.extend(members);
            async move { redis.eval::<i64>(&RENEW, vec![key], args).await }
        });
        let failed = futures::stream::iter(calls)
            .buffer_unordered(RENEWALS_AT_ONCE)
            .filter(|renewed| std::future::ready(renewed.is_err()))
            .count()
            .await;
        if failed > 0 {
            tracing::debug!(
                failed,
                "stream leases could not be renewed; they lapse unless renewed next time"
            );
        }
    }
}

/// A member counted until it is given back: dropping it removes it (a
/// task of its own, so a flow's early return cannot leak it), and should
/// that fail it lapses with its lease.
pub struct Lease {
    redis: Redis,
    key: String,
    member: String,
    /// A stream's lease: renewed by the process until dropped.
    renewed: Option<(Weak<Renewed>, u64)>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((renewed, id)) = self.renewed.take()
            && let Some(renewed) = renewed.upgrade()
        {
            renewed.lock().open.remove(&id);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (redis, key, member) = (
            self.redis.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.member),
        );
        runtime.spawn(async move {
            if let Err(e) = give_back(&redis, &key, &member).await {
                tracing::debug!(error = %e.report(), "a lease could not be given back; it lapses");
            }
        });
    }
}

async fn give_back(redis: &Redis, key: &str, member: &str) -> Result<(), StoreError> {
    let _: i64 = redis.call().await?.zrem(key, member).await?;
    Ok(())
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

impl FairShare {
    /// The counts; on a runtime, the renewal of its stream leases starts
    /// (it ends when the last copy of the counts is dropped).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let share = Self {
            redis: Redis::new(client),
            prefix: prefix.into(),
            renewed: Arc::default(),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let renewed = Arc::downgrade(&share.renewed);
            runtime.spawn(renew_streams(share.redis.clone(), renewed));
        }
        share
    }

    /// The counts for a caller that must answer by `due`.
    pub fn until(&self, due: Instant) -> Self {
        Self {
            redis: self.redis.until(due),
            prefix: self.prefix.clone(),
            renewed: self.renewed.clone(),
        }
    }

    fn key(&self, client: &ClientKey, count: &str) -> String {
        format!(
            "{}:share:{{client:{}}}:{count}",
            self.prefix,
            client.as_str()
        )
    }

    /// Take one of `cap` leases of `count` for `lease`: the lease, or when
    /// the client holds `cap` already, how long until the earliest of them
    /// lapses by itself (an upper bound: most are given back sooner).
    async fn take(
        &self,
        client: &ClientKey,
        count: &str,
        cap: usize,
        lease: Duration,
    ) -> Result<Result<Lease, Duration>, StoreError> {
        let key = self.key(client, count);
        let member = uuid::Uuid::new_v4().simple().to_string();
        let args = vec![member.clone(), cap.to_string(), millis(lease)];
        let left: i64 = self.redis.eval(&TAKE, vec![key.clone()], args).await?;
        if left >= 0 {
            return Ok(Err(Duration::from_millis(left as u64)));
        }
        Ok(Ok(Lease {
            redis: self.redis.unhurried(),
            key,
            member,
            renewed: None,
        }))
    }

    /// One booking call of `client` in flight, for at most `lease`, if it
    /// has fewer than `cap` (else how long until one surely ends).
    pub async fn enter_call(
        &self,
        client: &ClientKey,
        cap: usize,
        lease: Duration,
    ) -> Result<Result<Lease, Duration>, StoreError> {
        self.take(client, "calls", cap, lease).await
    }

    /// One open event stream of `client`, leased for `lease` (renewed
    /// every [`RENEW_EVERY`] with the process's other streams until it is
    /// dropped; longer than that), if it has fewer than `cap` open.
    pub async fn open_stream(
        &self,
        client: &ClientKey,
        cap: usize,
        lease: Duration,
    ) -> Result<Result<Lease, Duration>, StoreError> {
        let mut taken = self.take(client, "streams", cap, lease).await?;
        if let Ok(lease_taken) = &mut taken {
            let id = self
                .renewed
                .add(&lease_taken.key, &lease_taken.member, lease);
            lease_taken.renewed = Some((Arc::downgrade(&self.renewed), id));
        }
        Ok(taken)
    }

    /// Count `order` as a live order of `client` until `bound` from now,
    /// unless it holds `cap` already; `ended` (orders of the client that
    /// have ended) are dropped first.
    pub async fn place_order(
        &self,
        client: &ClientKey,
        order: OrderId,
        (cap, bound): (u32, Duration),
        ended: &[String],
    ) -> Result<Place, StoreError> {
        let key = self.key(client, "orders");
        let mut args = vec![order.to_string(), cap.to_string(), millis(bound)];
        args.extend(ended.iter().cloned());
        let answer: Vec<String> = self.redis.eval(&PLACE, vec![key], args).await?;
        Ok(match answer.first().map(String::as_str) {
            Some("added") => Place::Added,
            Some("present") => Place::Present,
            _ => Place::Full(
                answer[1..]
                    .chunks_exact(2)
                    .map(|m| {
                        (
                            m[0].clone(),
                            Duration::from_millis(m[1].parse().unwrap_or(0)),
                        )
                    })
                    .collect(),
            ),
        })
    }

    /// `order` no longer counts for `client` (its create was refused).
    /// Compensation: not bounded by a request's deadline.
    pub async fn remove_order(&self, client: &ClientKey, order: OrderId) -> Result<(), StoreError> {
        let key = self.key(client, "orders");
        give_back(&self.redis.unhurried(), &key, &order.to_string()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_its_ipv4_address_or_its_ipv6_network() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(ClientKey::of(Some(v4)).as_str(), "198.51.100.7");
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(ClientKey::of(Some(mapped)).as_str(), "198.51.100.7");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(a)), ClientKey::of(Some(b)));
        assert_ne!(ClientKey::of(Some(a)), ClientKey::of(Some(other)));
        assert_eq!(ClientKey::of(Some(a)).as_str(), "2001:db8:1:2::/64");
        assert_eq!(ClientKey::of(None).as_str(), "unknown");
    }
}
