//! Paying for a live order: one `pay` update of its workflow with a
//! deadline, which may name the passengers too (one update where naming
//! them first would take two). With an `Idempotency-Key`, the key's state (`idempotency`)
//! decides what a request does, as for a create (the same order on every
//! attempt).

use super::admission::Call;
use super::calls::{Stop, admit, answer, finish, told};
use super::idempotency::{Attempt, Kept, Key, Reply, Request, walk};
use super::{Context, Flow, Refusal};
use crate::booking::messages::Pay;
use crate::domain::{OrderId, OrderStatus, PaymentCode};
use crate::passengers::Passenger;
use crate::store::orders;

/// What a payment brings: the code, and the passengers it names (none:
/// those named before).
#[derive(Clone)]
pub struct Payment {
    pub code: PaymentCode,
    pub passengers: Option<Vec<Passenger>>,
}

impl Payment {
    /// What a key's fingerprint covers: the code, then each passenger's
    /// seat, names and email (the fingerprint is a keyed hash; none of it
    /// is stored).
    fn fingerprint_parts(&self) -> Vec<String> {
        let mut parts = vec![self.code.as_str().to_string()];
        for p in self.passengers.iter().flatten() {
            parts.push(p.seat.to_string());
            parts.push(p.given_name.clone());
            parts.push(p.family_name.clone());
            parts.push(p.email.clone().unwrap_or_default());
        }
        parts
    }
}

/// Pay for the order `id`: one try, or, with a key, the key's walk until
/// an answer. Done, the payment is being validated.
pub async fn pay<A: Kept>(
    ctx: &Context<'_>,
    id: OrderId,
    payment: Payment,
    key: Option<Key<'_, OrderStatus, A>>,
) -> Flow<Reply<A, OrderStatus>> {
    let Some(key) = key else {
        let paid = finish(try_pay(ctx, id, payment, None).await);
        return paid.map(|outcome| outcome.map(Reply::Fresh));
    };
    let parts = payment.fingerprint_parts();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let request = Request {
        scope: format!("pay:{id}"),
        what: "pay",
        parts: &parts,
    };
    walk(
        ctx,
        request,
        key,
        &mut KeyedPay {
            ctx,
            id,
            payment: &payment,
        },
    )
    .await
}

/// A keyed payment: every attempt is for the same order.
struct KeyedPay<'a> {
    ctx: &'a Context<'a>,
    id: OrderId,
    payment: &'a Payment,
}

impl Attempt for KeyedPay<'_> {
    type Done = OrderStatus;

    async fn first(&mut self) -> Result<(OrderId, Option<Refusal>), Stop> {
        Ok((self.id, None))
    }

    fn renewed(&self, order_id: OrderId) -> OrderId {
        order_id
    }

    async fn send(
        &mut self,
        _order_id: OrderId,
        update_id: String,
        resend: bool,
    ) -> Flow<OrderStatus> {
        let payment = self.payment.clone();
        finish(try_pay(self.ctx, self.id, payment, Some((update_id, resend))).await)
    }
}

/// One try of a payment. `update_id`: the keyed attempt's update, and
/// whether an earlier request may have sent it already.
async fn try_pay(
    ctx: &Context<'_>,
    id: OrderId,
    payment: Payment,
    update_id: Option<(String, bool)>,
) -> Result<OrderStatus, Stop> {
    let accepted = OrderStatus::PaymentProcessing;
    let sent_before = update_id.as_ref().is_some_and(|(_, retry)| *retry);
    let order = orders::find(ctx.pool, id).await?;
    if order.status.is_terminal() {
        // An attempt sent before may be the payment this order went through.
        return match sent_before && order.payment_attempts > 0 {
            true => Ok(accepted),
            false => Err(Refusal::Closed(order.status).into()),
        };
    }
    let _ticket = admit(ctx, Call::Checkout).await?;
    let deadline = ctx.engine.deadline();
    let pay = Pay {
        code: payment.code,
        deadline_ms: deadline,
        request_id: ctx.request_id.clone(),
        passengers: payment.passengers,
    };
    let answered = ctx.engine.pay(id, pay, update_id.map(|(u, _)| u)).await;
    if answer(id, told(ctx, &order, deadline, answered).await)?.is_some() {
        return Ok(accepted);
    }
    let order = orders::find(ctx.pool, id).await?;
    match sent_before && order.payment_attempts > 0 {
        true => Ok(accepted),
        false => Err(Refusal::Closed(order.status).into()),
    }
}
