//! The checked state space: why it is finite and acyclic ([`potential`]),
//! and how states alike up to names are checked once
//! ([`representative`]).

use std::sync::LazyLock;

use super::protocol::{
    ORDERS, Order, OrderIx, PAYMENT_ATTEMPTS, PAYS, Refund, RefundStatus, Row, SEATS, State, Step,
    seats,
};

/// A measure every step lowers (asserted in `next_state`): the work left
/// to each order's workflow (payments it may still ask for weigh most),
/// its row, its refund's, each Redis key. No step can
/// be taken for ever, so the checker's graph is acyclic.
pub fn potential(s: &State) -> u32 {
    let keys = s.redis.iter().flatten().count() as u32;
    let orders: u32 = s.orders.iter().map(order_potential).sum();
    keys + orders
}

fn order_potential(o: &Order) -> u32 {
    let step = match o.step {
        Step::Lock => 100,
        Step::Check => 90,
        Step::Hold => 80,
        Step::Claim => 70,
        Step::Attempt => 40 + 10 * (PAYMENT_ATTEMPTS - o.attempts) as u32,
        Step::Sell => 30,
        Step::End => 20,
        Step::StartRefund => 10,
        Step::Done => 0,
    };
    let row = match o.row {
        Row::Absent => 6,
        Row::SeatsReserved => 5,
        Row::PaymentProcessing => 4,
        Row::Confirmed => 3,
        Row::Failed | Row::Expired | Row::Cancelled => 2,
        Row::Refunded => 1,
    };
    let pays = 1000 * (PAYS - o.pays) as u32;
    let refund = o.refund.as_ref().map_or(1000, refund_potential);
    pays + step + row + o.alive as u32 + refund
}

fn refund_potential(r: &Refund) -> u32 {
    let stage = match r.status {
        RefundStatus::Failed => 60,
        RefundStatus::Pending { .. } if r.paid_out => 20,
        RefundStatus::Pending { .. } => 50,
        RefundStatus::Refunded => 0,
    };
    let run = match (r.crashed, r.running) {
        (false, _) => 2,
        (true, false) => 1,
        (true, true) => 0,
    };
    100 * r.declines_left as u32 + stage + run
}

/// The least of a state's images under every renaming of orders and of
/// seats: the protocol treats every order and every seat alike, so states
/// that differ only by names are checked once.
pub fn representative(s: &State) -> State {
    let mut best = *s;
    for orders in ORDER_RENAMINGS.iter() {
        for seats in SEAT_RENAMINGS.iter() {
            best = best.min(rename(s, orders, seats));
        }
    }
    best
}

/// Every order of `0..ORDERS`, and of `0..SEATS`.
static ORDER_RENAMINGS: LazyLock<Vec<Vec<usize>>> = LazyLock::new(|| permutations(ORDERS));
static SEAT_RENAMINGS: LazyLock<Vec<Vec<usize>>> = LazyLock::new(|| permutations(SEATS));

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for shorter in permutations(n - 1) {
        for at in 0..n {
            let mut p = shorter.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

/// `s` with order `o` renamed `orders[o]` and seat `x` renamed `seats[x]`.
fn rename(s: &State, orders: &[usize], seats: &[usize]) -> State {
    let owner = |o: Option<OrderIx>| o.map(|o| orders[o as usize] as OrderIx);
    let table = |t: &[Option<OrderIx>; SEATS]| {
        let mut renamed = [None; SEATS];
        for (seat, o) in t.iter().enumerate() {
            renamed[seats[seat]] = owner(*o);
        }
        renamed
    };
    let mut renamed = *s;
    for (o, order) in s.orders.iter().enumerate() {
        let wants = self::seats(order.wants).fold(0, |set, seat| set | 1 << seats[seat]);
        renamed.orders[orders[o]] = Order { wants, ..*order };
    }
    renamed.redis = table(&s.redis);
    renamed.sold = table(&s.sold);
    renamed.claim = table(&s.claim);
    renamed
}
