//! Failed booking look-ups per client, in Redis: a client that guesses
//! references (or names) is refused for the rest of a window once it has
//! failed `max` times in it. Redis, so every `serve` instance counts alike.

use std::time::{Duration, Instant};

use fred::prelude::{Client, KeysInterface};
use fred::types::ExpireOptions;

use super::redis::Redis;
use super::{COMMAND_TIMEOUT, StoreError};

#[derive(Clone)]
pub struct Lookups {
    redis: Redis,
    prefix: String,
    max: u32,
    window: Duration,
}

impl Lookups {
    pub fn new(client: Client, prefix: &str, max: u32, window: Duration) -> Self {
        Self {
            redis: Redis::new(client),
            prefix: prefix.to_string(),
            max,
            window,
        }
    }

    /// Redis for one look-up, which a request waits on: bounded as a
    /// request's calls are (unavailable while the client is
    /// reconnecting), within one command timeout.
    fn redis(&self) -> Redis {
        self.redis.until(Instant::now() + COMMAND_TIMEOUT)
    }

    fn key(&self, who: &str) -> String {
        format!("{}:lookups:{who}", self.prefix)
    }

    /// Seconds until `who` may look up again, if it is refused now.
    pub async fn refused(&self, who: &str) -> Result<Option<u64>, StoreError> {
        let (key, redis) = (self.key(who), self.redis());
        let failures: Option<u64> = redis.call().await?.get(&key).await?;
        if failures.unwrap_or(0) < u64::from(self.max) {
            return Ok(None);
        }
        let ttl: i64 = redis.call().await?.ttl(&key).await?;
        Ok(Some(ttl.max(1) as u64))
    }

    /// `who` failed a look-up: counted in the window its first failure
    /// opened.
    pub async fn failed(&self, who: &str) -> Result<(), StoreError> {
        let (key, redis) = (self.key(who), self.redis());
        let _: u64 = redis.call().await?.incr(&key).await?;
        let secs = self.window.as_secs().max(1) as i64;
        let nx = Some(ExpireOptions::NX);
        let _: bool = redis.call().await?.expire(&key, secs, nx).await?;
        Ok(())
    }
}
