//! Failed booking look-ups per client, in Redis: a client that guesses
//! references (or names) is refused for the rest of a window once it has
//! failed `max` times in it. Redis, so every `serve` instance counts alike.

use std::time::Duration;

use fred::prelude::{Client, KeysInterface};
use fred::types::ExpireOptions;

use super::StoreError;

#[derive(Clone)]
pub struct Lookups {
    client: Client,
    prefix: String,
    max: u32,
    window: Duration,
}

impl Lookups {
    pub fn new(client: Client, prefix: &str, max: u32, window: Duration) -> Self {
        Self {
            client,
            prefix: prefix.to_string(),
            max,
            window,
        }
    }

    fn key(&self, who: &str) -> String {
        format!("{}:lookups:{who}", self.prefix)
    }

    /// Seconds until `who` may look up again, if it is refused now.
    pub async fn refused(&self, who: &str) -> Result<Option<u64>, StoreError> {
        let key = self.key(who);
        let failures: Option<u64> = self.client.get(&key).await?;
        if failures.unwrap_or(0) < u64::from(self.max) {
            return Ok(None);
        }
        let ttl: i64 = self.client.ttl(&key).await?;
        Ok(Some(ttl.max(1) as u64))
    }

    /// `who` failed a look-up: counted in the window its first failure
    /// opened.
    pub async fn failed(&self, who: &str) -> Result<(), StoreError> {
        let key = self.key(who);
        let _: u64 = self.client.incr(&key).await?;
        let secs = self.window.as_secs().max(1) as i64;
        let _: bool = self
            .client
            .expire(&key, secs, Some(ExpireOptions::NX))
            .await?;
        Ok(())
    }
}
