//! Attempts counted per client in Redis, atomically: the one limiter of
//! booking look-ups (`store::lookups`) and operator sign-ins
//! ([`SignIns`]).
//!
//! An attempt is **taken before it is made**: one script increments every
//! counter the attempt counts against, opens a counter's window (its
//! expiry) on its first hit, and refuses the attempt if any counter is now
//! past its limit (undoing its own increments, so a refused attempt does
//! not count). N attempts at once therefore never pass more than the limit:
//! each finds the count its own increment made. An attempt that turns out
//! not to count (a look-up that found the booking, a sign-in that
//! succeeded or was never checked) is given back.
//!
//! Every counter of one client shares the client's hash tag
//! (`<prefix>:{<client>}:<counter>`), so each script touches one slot and
//! stays atomic on Redis Cluster. Windows are the server's (`PEXPIRE`), so
//! every `serve` instance counts alike.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use fred::prelude::Client;
use fred::types::scripts::Script;
use sha2::{Digest, Sha256};

use super::redis::Redis;
use super::{COMMAND_TIMEOUT, StoreError};

/// KEYS: the counters; ARGV[1]: the window (ms); ARGV[1 + i]: KEYS[i]'s
/// limit. Increments every counter, opening its window on the first hit;
/// if any is past its limit, undoes the increments and returns the longest
/// wait (ms) until those open again, else 0.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local window = tonumber(ARGV[1])
local wait = 0
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], window)
    ttl = window
  end
  if n > tonumber(ARGV[i + 1]) then wait = math.max(wait, ttl) end
end
if wait > 0 then
  for i = 1, #KEYS do redis.call('DECR', KEYS[i]) end
end
return wait
"#,
    )
});

/// KEYS: the counters an attempt was taken from: each loses one, never
/// below 0, its window unchanged (a counter gone with its window stays
/// gone).
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"#,
    )
});

/// One counter an attempt counts against: its key and its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    key: String,
    max: u32,
}

/// Counters of attempts in Redis, under one prefix, with one window.
#[derive(Clone)]
pub struct Attempts {
    redis: Redis,
    prefix: String,
    window: Duration,
}

impl Attempts {
    pub fn new(client: Client, prefix: &str, window: Duration) -> Self {
        Self {
            redis: Redis::new(client),
            prefix: prefix.to_string(),
            window,
        }
    }

    /// The counter `name` of `client` (an address), allowing `max`
    /// attempts per window. Every counter of a client is in one slot.
    pub fn counter(&self, client: &str, name: &str, max: u32) -> Counter {
        // A hash tag must not hold braces; an address never does.
        let client: String = client.chars().filter(|c| !matches!(c, '{' | '}')).collect();
        Counter {
            key: format!("{}:{{{client}}}:{name}", self.prefix),
            max,
        }
    }

    /// Redis for one attempt, which a request waits on: bounded as a
    /// request's calls are, within one command timeout.
    fn redis(&self) -> Redis {
        self.redis.until(Instant::now() + COMMAND_TIMEOUT)
    }

    /// Take one attempt from every counter of `counters` (one client's):
    /// `None` if it may be made, or the seconds until it may be made again
    /// (then nothing was counted).
    pub async fn take(&self, counters: &[Counter]) -> Result<Option<u64>, StoreError> {
        let keys = counters.iter().map(|c| c.key.clone()).collect();
        let window = self.window.as_millis().max(1).to_string();
        let args = std::iter::once(window)
            .chain(counters.iter().map(|c| c.max.to_string()))
            .collect();
        let wait_ms: u64 = self.redis().eval(&TAKE, keys, args).await?;
        Ok((wait_ms > 0).then(|| wait_ms.div_ceil(1000).max(1)))
    }

    /// Give back an attempt taken from `counters`: it did not count.
    pub async fn give_back(&self, counters: &[Counter]) -> Result<(), StoreError> {
        let keys = counters.iter().map(|c| c.key.clone()).collect();
        let _: i64 = self.redis().eval(&GIVE_BACK, keys, Vec::new()).await?;
        Ok(())
    }
}

/// Operator sign-ins per client address: at most `per_address` failures in
/// a window whatever the names, and `per_name` for one name from that
/// address. A name is counted per address, so failures from elsewhere
/// never lock an operator out at their own.
#[derive(Clone)]
pub struct SignIns {
    attempts: Attempts,
    per_address: u32,
    per_name: u32,
}

impl SignIns {
    pub fn new(
        client: Client,
        prefix: &str,
        window: Duration,
        per_address: u32,
        per_name: u32,
    ) -> Self {
        Self {
            attempts: Attempts::new(client, &format!("{prefix}:sign-in"), window),
            per_address,
            per_name,
        }
    }

    /// The counters of `name` (as typed; case and surrounding space do not
    /// make another name) signing in from `address`. The name is kept as
    /// a digest: any length, any characters, a fixed key.
    fn counters(&self, address: &str, name: &str) -> [Counter; 2] {
        let digest = Sha256::digest(name.trim().to_lowercase().as_bytes());
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        [
            self.attempts.counter(address, "all", self.per_address),
            self.attempts
                .counter(address, &format!("name:{name}"), self.per_name),
        ]
    }

    /// Take a sign-in attempt of `name` from `address`: `None` if its
    /// password may be checked, or the seconds until one may be.
    pub async fn take(&self, address: &str, name: &str) -> Result<Option<u64>, StoreError> {
        self.attempts.take(&self.counters(address, name)).await
    }

    /// The attempt did not fail (signed in, or never checked): given back.
    pub async fn give_back(&self, address: &str, name: &str) -> Result<(), StoreError> {
        self.attempts.give_back(&self.counters(address, name)).await
    }
}

#[cfg(test)]
mod tests {
    use fred::prelude::Builder;

    use super::*;

    fn attempts() -> Attempts {
        let config = fred::prelude::Config::from_url("redis://127.0.0.1:1").unwrap();
        let client = Builder::from_config(config).build().unwrap();
        Attempts::new(client, "p:lookups", Duration::from_secs(60))
    }

    #[test]
    fn a_clients_counters_share_its_hash_tag() {
        let a = attempts();
        assert_eq!(
            a.counter("10.0.0.7", "all", 3).key,
            "p:lookups:{10.0.0.7}:all"
        );
        assert_eq!(a.counter("::1", "x", 3).key, "p:lookups:{::1}:x");
        assert_eq!(a.counter("{evil}", "x", 3).key, "p:lookups:{evil}:x");
    }

    #[test]
    fn a_name_is_one_counter_whatever_its_case_or_length() {
        let config = fred::prelude::Config::from_url("redis://127.0.0.1:1").unwrap();
        let client = Builder::from_config(config).build().unwrap();
        let s = SignIns::new(client, "p", Duration::from_secs(60), 20, 5);
        let [all, ada] = s.counters("127.0.0.1", "Ada");
        assert_eq!(all.key, "p:sign-in:{127.0.0.1}:all");
        assert_eq!((all.max, ada.max), (20, 5));
        assert_eq!(ada, s.counters("127.0.0.1", " ada ")[1]);
        assert_ne!(ada, s.counters("127.0.0.2", "ada")[1]);
        let long = s.counters("127.0.0.1", &"x".repeat(10_000))[1].key.len();
        assert_eq!(long, ada.key.len());
    }
}
