//! How one Redis call is made: bounded, so a store that is gone is an
//! answer (`StoreError::Redis`, 503 at the API) and never a wait.
//!
//! The client's own command timeout bounds every call. A caller with a
//! deadline (an API request) also has each command bounded by what is
//! left of it, and is refused while the client is reconnecting (after a
//! short grace for a blip): a command sent then would only queue until the
//! deadline. That happens
//! for as long as any master of a cluster is unreachable (the client
//! connects to every master of the slot map, or serves none), so without
//! it every request would wait out its deadline until that master returns.
//! The timeouts are the client's, never a dropped future's: a command still
//! queued when its caller gives up is marked so and never written later
//! (one already written may still run; a claim then lapses with its TTL).

use std::time::{Duration, Instant};

use fred::clients::WithOptions;
use fred::error::{Error, ErrorKind};
use fred::prelude::{Client, ClientLike, ClientState, FromValue, Options, Value};
use fred::types::scripts::Script;
use fred::types::{ClusterHash, CustomCommand};

use super::StoreError;

/// A Redis client and the deadline its calls must meet, if any.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    due: Option<Instant>,
}

impl Redis {
    /// Calls bounded by the client's command timeout alone.
    pub fn new(client: Client) -> Self {
        Self { client, due: None }
    }

    /// The same client for a caller that must answer by `due`.
    pub fn until(&self, due: Instant) -> Self {
        Self {
            client: self.client.clone(),
            due: Some(due),
        }
    }

    /// The same client without a caller's deadline: for compensation,
    /// which must not be cut short by a deadline that has passed.
    pub fn unhurried(&self) -> Self {
        Self::new(self.client.clone())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client with this call's timeout, or why no command is sent: the
    /// deadline has passed, or the client is reconnecting and has not
    /// connected within [`RECONNECT_GRACE`] (a blip passes; a store that is
    /// gone is refused without waiting out the deadline).
    pub async fn call(&self) -> Result<WithOptions<Client>, StoreError> {
        let mut options = Options::default();
        if let Some(due) = self.due {
            let left = || due.saturating_duration_since(Instant::now());
            let late = || {
                let why = "no time is left before the request's deadline";
                (left() < MIN_CALL).then(|| gone(ErrorKind::Timeout, why))
            };
            if let Some(late) = late() {
                return Err(late);
            }
            if self.client.state() != ClientState::Connected {
                let wait = left().min(RECONNECT_GRACE);
                let connected = tokio::time::timeout(wait, self.client.wait_for_connect()).await;
                if !matches!(connected, Ok(Ok(()))) {
                    let why = "the client is reconnecting to redis";
                    return Err(gone(ErrorKind::IO, why));
                }
            }
            if let Some(late) = late() {
                return Err(late);
            }
            options.timeout = Some(left());
        }
        Ok(self.client.with_options(&options))
    }

    /// Run `script` (`EVALSHA`, loading it first where the server lacks
    /// it) on `keys` and `args`, routed by its first key's slot.
    pub async fn eval<R: FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, StoreError> {
        let mut argv: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        argv.push(script.sha1().clone().into());
        argv.push((keys.len() as i64).into());
        argv.extend(keys.into_iter().chain(args).map(Value::from));
        // The first key follows the hash and the key count.
        let evalsha = CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false);
        match self
            .call()
            .await?
            .custom(evalsha.clone(), argv.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                self.load(script).await?;
                Ok(self.call().await?.custom(evalsha, argv).await?)
            }
            answer => Ok(answer?),
        }
    }

    /// `SCRIPT LOAD` on every master. Harmless if it lands late, so a
    /// plain timeout bounds it.
    async fn load(&self, script: &Script) -> Result<(), StoreError> {
        let left = match self.due {
            Some(due) => due.saturating_duration_since(Instant::now()),
            None => super::COMMAND_TIMEOUT,
        };
        match tokio::time::timeout(left, script.load(&self.client)).await {
            Ok(loaded) => Ok(loaded?),
            Err(_) => Err(gone(ErrorKind::Timeout, "loading a script timed out")),
        }
    }
}

/// How long a caller with a deadline waits for a reconnecting client
/// before it is told the store is unavailable.
const RECONNECT_GRACE: Duration = Duration::from_millis(500);

/// Shorter than this, a command could not be answered anyway.
const MIN_CALL: Duration = Duration::from_millis(10);

/// The store is unavailable for this call.
fn gone(kind: ErrorKind, why: &'static str) -> StoreError {
    StoreError::Redis(Error::new(kind, why))
}

#[cfg(test)]
mod tests {
    use fred::prelude::Builder;

    use super::*;

    /// A client that has not connected (nothing listens at its address): what
    /// a client reconnecting after an outage looks like to a caller.
    fn not_connected() -> Client {
        let config = fred::prelude::Config::from_url("redis://127.0.0.1:1").unwrap();
        Builder::from_config(config).build().unwrap()
    }

    async fn refusal(redis: &Redis) -> String {
        match redis.call().await {
            Ok(_) => "no refusal".into(),
            Err(e) => e.report(),
        }
    }

    #[tokio::test]
    async fn a_request_sends_nothing_while_the_client_is_not_connected() {
        let redis = Redis::new(not_connected());
        let due = Instant::now() + Duration::from_secs(3);
        let asked = Instant::now();
        let why = refusal(&redis.until(due)).await;
        let waited = asked.elapsed();
        assert!(
            waited >= RECONNECT_GRACE && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        assert_eq!(
            why,
            "redis is unavailable: IO Error: the client is reconnecting to redis"
        );
        // Without a deadline the command is sent and waits for the client
        // (bounded by its command timeout): workers and compensation.
        assert!(redis.until(due).unhurried().call().await.is_ok());
    }

    #[tokio::test]
    async fn a_request_whose_deadline_has_passed_sends_nothing() {
        let redis = Redis::new(not_connected()).until(Instant::now());
        assert_eq!(
            refusal(&redis).await,
            "redis is unavailable: Timeout Error: no time is left before the request's deadline"
        );
    }
}
