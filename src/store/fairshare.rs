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

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

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

/// Renew a lease that still counts (never one already given back).
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[1])
if renewed > 0 and redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
"#,
    )
});

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
}

/// A member counted until it is given back: dropping it removes it (a
/// task of its own, so a flow's early return cannot leak it), and should
/// that fail it lapses with its lease.
pub struct Lease {
    redis: Redis,
    key: String,
    member: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
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

impl Lease {
    /// Renew the lease for `lease` from now, unless it was given back.
    /// Its own task: the caller does not wait.
    pub fn renew(&self, lease: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (redis, key, member) = (self.redis.clone(), self.key.clone(), self.member.clone());
        let args = vec![member, millis(lease)];
        runtime.spawn(async move {
            let renewed: Result<i64, _> = redis.eval(&RENEW, vec![key], args).await;
            if let Err(e) = renewed {
                tracing::debug!(error = %e.report(), "a lease could not be renewed");
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
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            redis: Redis::new(client),
            prefix: prefix.into(),
        }
    }

    /// The counts for a caller that must answer by `due`.
    pub fn until(&self, due: Instant) -> Self {
        Self {
            redis: self.redis.until(due),
            prefix: self.prefix.clone(),
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

    /// One open event stream of `client`, leased for `lease` (renewed while
    /// it runs), if it has fewer than `cap` open.
    pub async fn open_stream(
        &self,
        client: &ClientKey,
        cap: usize,
        lease: Duration,
    ) -> Result<Result<Lease, Duration>, StoreError> {
        self.take(client, "streams", cap, lease).await
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
