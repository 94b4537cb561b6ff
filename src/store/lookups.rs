//! Failed booking look-ups per client, in Redis: a client that guesses
//! references (or names) is refused for the rest of a window once it has
//! failed `max` times in it. Redis, so every `serve` instance counts alike.
//!
//! Atomic ([`super::attempts`]): [`Lookups::refused`] takes the attempt
//! before the store is asked, so N look-ups at once never get more than
//! `max` answers; a look-up that finds its booking gives it back
//! ([`Lookups::passed`]), one that fails keeps it ([`Lookups::failed`]).

use std::time::Duration;

use fred::prelude::Client;

use super::StoreError;
use super::attempts::{Attempts, Counter};

#[derive(Clone)]
pub struct Lookups {
    attempts: Attempts,
    max: u32,
}

impl Lookups {
    pub fn new(client: Client, prefix: &str, max: u32, window: Duration) -> Self {
        Self {
            attempts: Attempts::new(client, &format!("{prefix}:lookups"), window),
            max,
        }
    }

    fn counter(&self, who: &str) -> [Counter; 1] {
        [self.attempts.counter(who, "failed", self.max)]
    }

    /// Take a look-up attempt of `who`: the seconds until it may look up
    /// again if it is refused now (nothing counted then), else `None` and
    /// the attempt counts until [`Lookups::passed`] gives it back.
    pub async fn refused(&self, who: &str) -> Result<Option<u64>, StoreError> {
        self.attempts.take(&self.counter(who)).await
    }

    /// `who` failed the look-up it took: it stays counted in the window
    /// its first failure opened (nothing to do: [`Lookups::refused`]
    /// counted it).
    pub async fn failed(&self, _who: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// `who` found what it looked up: the attempt is given back.
    pub async fn passed(&self, who: &str) -> Result<(), StoreError> {
        self.attempts.give_back(&self.counter(who)).await
    }
}
