//! Walks a keyed request through the machine: read the key, ask the machine
//! what the request does, do it, ask the machine where that leaves the key,
//! and have the store apply it.

use super::store::{self, Binding, Entry, Kept, Names};
use super::{KeyState, Next, Settled, fingerprint, update_id};
use crate::domain::OrderId;
use crate::orders::calls::{Stop, finish, resume};
use crate::orders::{Context, Flow, Refusal};

/// How the caller keeps a final outcome (done, or refused) as the key's
/// answer: the API keeps what it answered.
pub type Keep<'r, T, A> = &'r dyn Fn(Result<&T, &Refusal>) -> A;

/// A request's `Idempotency-Key` (checked at the edge), and how its caller
/// keeps an answer.
pub struct Key<'r, T, A> {
    pub value: &'r str,
    pub keep: Keep<'r, T, A>,
}

/// What a keyed request answers: its own attempt's result, or the key's
/// stored answer, replayed.
#[derive(Debug)]
pub enum Reply<A, T> {
    Fresh(T),
    Replayed(A),
}

/// What a keyed request is: its scope (`create`, `pay:<orderId>`), the
/// name of its work in update ids, and what tells it from another request.
pub(crate) struct Request<'a> {
    pub scope: String,
    pub what: &'static str,
    pub parts: &'a [&'a str],
}

/// What a keyed request does in each state of its key.
pub(crate) trait Attempt {
    /// What the work comes to when done.
    type Done;
    /// The order of a new key's first attempt, and a refusal met before
    /// any work (the key's answer at once).
    async fn first(&mut self) -> Result<(OrderId, Option<Refusal>), Stop>;
    /// The order the attempt after an abandoned one is for.
    fn renewed(&self, order_id: OrderId) -> OrderId;
    /// Send an attempt for `order_id` as `update_id`; `resend`: an earlier
    /// request may have sent it already.
    async fn send(
        &mut self,
        order_id: OrderId,
        update_id: String,
        resend: bool,
    ) -> Flow<Self::Done>;
    /// The key was bound to this request's up-front refusal.
    fn refused_first(&mut self, _refusal: &Refusal) {}
}

/// Walk the key until an answer: replay it, bind the key, renew it, or send
/// its running attempt. An attempt an earlier request sent that comes back
/// refused without effect is stale (it came late, or its run ended without
/// an order): the next attempt starts at once, once.
pub(crate) async fn walk<A: Kept, C: Attempt>(
    ctx: &Context<'_>,
    request: Request<'_>,
    key: Key<'_, C::Done, A>,
    call: &mut C,
) -> Flow<Reply<A, C::Done>> {
    let walk = Walk::new(ctx, request, key);
    finish(walk.run(call).await)
}

struct Walk<'a, 'r, T, A> {
    ctx: &'a Context<'a>,
    scope: String,
    what: &'static str,
    key: Key<'r, T, A>,
    fingerprint: String,
}

impl<'a, 'r, T, A: Kept> Walk<'a, 'r, T, A> {
    fn new(ctx: &'a Context<'a>, request: Request<'_>, key: Key<'r, T, A>) -> Self {
        let fingerprint = fingerprint(secret(ctx), &request.scope, request.parts);
        Self {
            ctx,
            scope: request.scope,
            what: request.what,
            key,
            fingerprint,
        }
    }

    async fn run<C: Attempt<Done = T>>(&self, call: &mut C) -> Result<Reply<A, T>, Stop> {
        let mut key = self.find().await?;
        let mut resend = matches!(key, KeyState::Running { .. });
        for _ in 0..3 {
            key = match key.next() {
                Next::Replay(answer) => return Ok(Reply::Replayed(answer)),
                Next::Bind => self.bind(call).await?,
                Next::Renew { order_id, .. } => self.renew(&key, call.renewed(order_id)).await?,
                Next::Send { order_id, attempt } => {
                    let tried = call.send(order_id, self.update_id(attempt), resend).await;
                    let settled = Settled::of(&tried, self.key.keep);
                    let stale = resend && settled == Settled::NothingHappened;
                    self.settle(&key, settled).await;
                    if !stale {
                        return resume(tried).map(Reply::Fresh);
                    }
                    resend = false;
                    KeyState::Abandoned { order_id, attempt }
                }
            };
        }
        Err(Refusal::KeyContended.into())
    }

    fn names(&self) -> Names<'_> {
        Names {
            scope: &self.scope,
            key: self.key.value,
        }
    }

    fn retention(&self) -> std::time::Duration {
        self.ctx.settings.server.idempotency_ttl
    }

    /// The workflow update id of the key's attempt `attempt`: every retry
    /// of one attempt lands on the same update.
    fn update_id(&self, attempt: u32) -> String {
        let id = fingerprint(secret(self.ctx), &self.scope, &[self.key.value]);
        update_id(&format!("{}-{}", self.what, &id[..32]), attempt)
    }

    /// The key's state, if it was bound to this very request.
    fn check(&self, entry: Entry<A>) -> Result<KeyState<A>, Stop> {
        match entry.fingerprint == self.fingerprint {
            true => Ok(entry.state),
            false => Err(Refusal::KeyReused.into()),
        }
    }

    /// The key's state now (New if unused or past its retention).
    async fn find(&self) -> Result<KeyState<A>, Stop> {
        match store::find(self.ctx.pool, self.names(), self.retention()).await? {
            Some(entry) => self.check(entry),
            None => Ok(KeyState::New),
        }
    }

    /// Bind a new key (to the request's up-front refusal, if any); returns
    /// the state that holds (another request may have bound it first).
    async fn bind<C: Attempt<Done = T>>(&self, call: &mut C) -> Result<KeyState<A>, Stop> {
        let (order_id, refused) = call.first().await?;
        let state = KeyState::bind(order_id, refused.as_ref().map(|r| (self.key.keep)(Err(r))));
        let binding = Binding {
            names: self.names(),
            fingerprint: &self.fingerprint,
            order_id,
        };
        let entry = store::bind(self.ctx.pool, &binding, &state, self.retention()).await?;
        let held = self.check(entry)?;
        if let (KeyState::Answered(_), Some(refusal)) = (&held, &refused) {
            call.refused_first(refusal);
        }
        Ok(held)
    }

    /// Start the attempt after the abandoned one `from`, for `order_id`;
    /// returns the state that holds (another request may have renewed it).
    async fn renew(&self, from: &KeyState<A>, order_id: OrderId) -> Result<KeyState<A>, Stop> {
        let to = from.clone().renew(order_id);
        match store::apply(self.ctx.pool, self.names(), from, &to).await? {
            Some(entry) => self.check(entry),
            None => Ok(to),
        }
    }

    /// Record what the running attempt `from` came to. A failure to store
    /// costs a retry only the replay: the work itself is deduplicated by
    /// Temporal.
    async fn settle(&self, from: &KeyState<A>, settled: Settled<A>) {
        let to = from.clone().settle(settled);
        if &to == from {
            return;
        }
        if let Err(e) = store::apply(self.ctx.pool, self.names(), from, &to).await {
            tracing::warn!(error = %e, "could not store the state of an Idempotency-Key");
        }
    }
}

fn secret<'a>(ctx: &'a Context<'_>) -> &'a str {
    ctx.settings.server.idempotency_secret.expose()
}
