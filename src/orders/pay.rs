//! Paying for a live order: one `pay` update of its workflow with a
//! deadline. With an `Idempotency-Key`, the key's state (`idempotency`)
//! decides what a request does, as for a create (the same order on every
//! attempt).

use super::admission::Call;
use super::calls::{Stop, admit, answer, finish, told};
use super::idempotency::{Attempt, Kept, Key, Reply, Request, walk};
use super::{Context, Flow, Refusal};
use crate::booking::messages::Pay;
use crate::domain::{OrderId, OrderStatus, PaymentCode};
use crate::store::orders;

/// Pay for the order `id` with `code`: one try, or, with a key, the key's
/// walk until an answer. Done, the payment is being validated.
pub async fn pay<A: Kept>(
    ctx: &Context<'_>,
    id: OrderId,
    code: PaymentCode,
    key: Option<Key<'_, OrderStatus, A>>,
) -> Flow<Reply<A, OrderStatus>> {
    let Some(key) = key else {
        let paid = finish(try_pay(ctx, id, code, None).await);
        return paid.map(|outcome| outcome.map(Reply::Fresh));
    };
    let request = Request {
        scope: format!("pay:{id}"),
        what: "pay",
        parts: &[code.as_str()],
    };
    walk(
        ctx,
        request,
        key,
        &mut KeyedPay {
            ctx,
            id,
            code: &code,
        },
    )
    .await
}

/// A keyed payment: every attempt is for the same order.
struct KeyedPay<'a> {
    ctx: &'a Context<'a>,
    id: OrderId,
    code: &'a PaymentCode,
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
        let code = self.code.clone();
        finish(try_pay(self.ctx, self.id, code, Some((update_id, resend))).await)
    }
}

/// One try of a payment. `update_id`: the keyed attempt's update, and
/// whether an earlier request may have sent it already.
async fn try_pay(
    ctx: &Context<'_>,
    id: OrderId,
    code: PaymentCode,
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
        code,
        deadline_ms: deadline,
        request_id: ctx.request_id.clone(),
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
