//! The protocol as a state machine: what each order's workflow, Redis,
//! Postgres, the sweep, the refund workflow and the people around them can
//! do, one atomic step at a time. A step is atomic where the code makes it
//! so (one Redis script, one Postgres transaction); a workflow may die
//! between any two of its steps, Redis may forget any hold between any two
//! steps.
//!
//! A dependency outage (Postgres, Temporal, the mail server) is no step of
//! its own: the code retries the step it interrupts until the dependency
//! is back and never counts it as a provider decline, so an outage only
//! delays steps whose every order the checker already tries.

use std::cell::Cell;
use std::sync::LazyLock;

use stateright::Model;

use super::refunds::{
    cancel_booking, finish_refund, operator_retry, provider_declines, provider_pays, refund_crash,
};
use super::space::potential;

/// Orders and seats of the checked system (seats are bits of [`Seats`]).
pub const ORDERS: usize = 2;
pub const SEATS: usize = 2;
/// `PAYMENT_MAX_RETRIES`: attempts of one payment.
pub const PAYMENT_ATTEMPTS: u8 = 2;
/// Payments one order may ask for: a refused one keeps the order holding,
/// and it may ask again.
pub const PAYS: u8 = 2;
/// `REFUND_MAX_ATTEMPTS`: provider calls of one refund run before it is
/// REFUND_FAILED.
pub const REFUND_ATTEMPTS: u8 = 2;
/// Declines the provider may give one refund in all: as many as fail one
/// run, so a failed refund retried by an operator is paid (the provider is
/// not adversarial for ever, else nothing could end).
pub const PROVIDER_DECLINES: u8 = REFUND_ATTEMPTS;

/// The seats of a set.
pub fn seats(set: Seats) -> impl Iterator<Item = usize> {
    (0..SEATS).filter(move |&s| set & (1 << s) != 0)
}

/// An order's index in [`State::orders`].
pub type OrderIx = u8;
/// A set of seats: bit `s` is seat `s`.
pub type Seats = u8;

/// Where an order's workflow is: the next step it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Lock the selection in Redis, all or nothing.
    Lock,
    /// Check Postgres (no seat sold or claimed by another order) and save
    /// the row SEATS_RESERVED.
    Check,
    /// Holding: waits for a payment, a cancellation or the hold's timer.
    Hold,
    /// A payment was asked and the seats locked again in Redis: claim them
    /// in the transaction that saves PAYMENT_PROCESSING.
    Claim,
    /// Paying: the next payment attempt.
    Attempt,
    /// The payment was approved: sell the seats.
    Sell,
    /// End the order FAILED: claims and holds released.
    End,
    /// Start the refund of the approved payment that was not sold.
    StartRefund,
    /// Nothing more to do.
    Done,
}

/// The order's row in Postgres: the status the system shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Row {
    /// No row (not yet saved, or a creation that was refused).
    Absent,
    SeatsReserved,
    PaymentProcessing,
    /// Sold (REFUND_PENDING and REFUND_FAILED are a confirmed booking
    /// whose [`Refund`] is under way).
    Confirmed,
    Failed,
    Expired,
    Cancelled,
    /// A cancelled booking paid back: its seats are on sale again.
    Refunded,
}

impl Row {
    /// Holding seats or paying for them: the rows the sweep and the sale
    /// treat as live.
    pub fn is_live(self) -> bool {
        matches!(self, Row::SeatsReserved | Row::PaymentProcessing)
    }

    /// Ended without a sale.
    fn is_unsold(self) -> bool {
        matches!(self, Row::Failed | Row::Expired | Row::Cancelled)
    }
}

/// Where a refund is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefundStatus {
    /// PENDING, after this many provider declines in the current run.
    Pending { declines: u8 },
    /// REFUND_FAILED: the provider declined every attempt of a run; an
    /// operator may retry it.
    Failed,
    /// Paid back (REFUNDED).
    Refunded,
}

/// A refund of an order's approved payment (one per order: the refund
/// row is keyed by the order, the payout by `refund-<orderId>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Refund {
    pub status: RefundStatus,
    /// The provider paid it out (recorded under its idempotency key); the
    /// refund is not finished until Postgres says so.
    pub paid_out: bool,
    /// Declines the provider may still give (see [`PROVIDER_DECLINES`]).
    pub declines_left: u8,
    /// Whether its workflow runs (a run lost with Temporal is resumed by
    /// the sweep); `crashed` bounds the losses to one.
    pub running: bool,
    pub crashed: bool,
}

impl Refund {
    pub fn new() -> Self {
        Self {
            status: RefundStatus::Pending { declines: 0 },
            paid_out: false,
            declines_left: PROVIDER_DECLINES,
            running: true,
            crashed: false,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.status, RefundStatus::Pending { .. })
    }

    /// Its workflow runs and has something to do.
    pub fn works(&self) -> bool {
        self.running && self.is_pending()
    }
}

/// One order: what it wants, its workflow, its row, its money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Order {
    /// The seats it selects (never empty).
    pub wants: Seats,
    pub step: Step,
    /// Its workflow runs (a dead one never takes another step, but a sale
    /// it had in flight may still commit).
    pub alive: bool,
    pub row: Row,
    /// Payments asked, accepted or refused.
    pub pays: u8,
    /// Payment attempts made.
    pub attempts: u8,
    /// The provider approved a charge (recorded with the approval).
    pub charged: bool,
    /// History: the sale of its approved charge found a seat sold to
    /// another order (charged without a seat).
    pub lost_seats: bool,
    pub refund: Option<Refund>,
}

impl Order {
    fn new(wants: Seats) -> Self {
        Self {
            wants,
            step: Step::Lock,
            alive: true,
            row: Row::Absent,
            pays: 0,
            attempts: 0,
            charged: false,
            lost_seats: false,
            refund: None,
        }
    }

    pub fn wants_seat(&self, seat: usize) -> bool {
        self.wants & (1 << seat) != 0
    }

    /// Its workflow runs and is at `step`.
    fn at(&self, step: Step) -> bool {
        self.alive && self.step == step
    }
}

/// The whole system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub orders: [Order; ORDERS],
    /// Redis: the order holding each seat (a key with a TTL).
    pub redis: [Option<OrderIx>; SEATS],
    /// Postgres: the order each seat is sold to.
    pub sold: [Option<OrderIx>; SEATS],
    /// Postgres: the order each seat is claimed by.
    pub claim: [Option<OrderIx>; SEATS],
}

impl State {
    pub fn order(&mut self, o: OrderIx) -> &mut Order {
        &mut self.orders[o as usize]
    }

    /// The seats `o` wants.
    pub fn seats_of(&self, o: OrderIx) -> impl Iterator<Item = usize> + use<> {
        seats(self.orders[o as usize].wants)
    }

    /// Every seat `o` wants is now `owner`'s in `table`.
    fn set_all(table: &mut [Option<OrderIx>; SEATS], wants: Seats, owner: OrderIx) {
        for seat in seats(wants) {
            table[seat] = Some(owner);
        }
    }

    /// Every hold `o` has in Redis goes (owner-checked: another order's
    /// hold on the same seat stays).
    fn release_holds(&mut self, o: OrderIx) {
        for owner in &mut self.redis {
            if *owner == Some(o) {
                *owner = None;
            }
        }
    }

    fn release_claims(&mut self, o: OrderIx) {
        for owner in &mut self.claim {
            if *owner == Some(o) {
                *owner = None;
            }
        }
    }

    fn holds_any(&self, o: OrderIx) -> bool {
        self.redis.contains(&Some(o))
    }

    /// Each seat `o` wants is unsold and, when `claims` are kept, claimed
    /// by no other order.
    fn available_to(&self, o: OrderIx, claims: bool) -> bool {
        self.seats_of(o)
            .all(|s| self.sold[s].is_none() && (!claims || self.claim[s].is_none_or(|c| c == o)))
    }

    /// The order's row ends `row` if it is live: its claims and holds go
    /// back in the same step.
    fn end_unsold(&mut self, o: OrderIx, row: Row) {
        if self.order(o).row.is_live() {
            self.order(o).row = row;
        }
        self.release_claims(o);
        self.release_holds(o);
    }
}

/// Everything that can happen. `o` is an order, `s` a seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    // The order's workflow.
    Lock(OrderIx),
    Check(OrderIx),
    Expire(OrderIx),
    Cancel(OrderIx),
    Relock(OrderIx),
    Claim(OrderIx),
    Approve(OrderIx),
    Decline(OrderIx),
    Sell(OrderIx),
    End(OrderIx),
    StartRefund(OrderIx),
    Crash(OrderIx),
    LoseSale(OrderIx),
    // Redis.
    Forget(usize),
    // The sweep.
    SweepOrphan(OrderIx),
    SweepStrays(OrderIx),
    SweepRefund(OrderIx),
    SweepResumeRefund(OrderIx),
    // The customer, after the sale.
    CancelBooking(OrderIx),
    // The refund workflow, the provider, an operator.
    ProviderDeclines(OrderIx),
    ProviderPays(OrderIx),
    FinishRefund(OrderIx),
    RefundCrash(OrderIx),
    OperatorRetry(OrderIx),
}

/// Every action, enabled or not, in a fixed order.
static ACTIONS: LazyLock<Vec<Action>> = LazyLock::new(|| {
    let per_order: [fn(OrderIx) -> Action; 23] = [
        Action::Lock,
        Action::Check,
        Action::Expire,
        Action::Cancel,
        Action::Relock,
        Action::Claim,
        Action::Approve,
        Action::Decline,
        Action::Sell,
        Action::End,
        Action::StartRefund,
        Action::Crash,
        Action::LoseSale,
        Action::SweepOrphan,
        Action::SweepStrays,
        Action::SweepRefund,
        Action::SweepResumeRefund,
        Action::CancelBooking,
        Action::ProviderDeclines,
        Action::ProviderPays,
        Action::FinishRefund,
        Action::RefundCrash,
        Action::OperatorRetry,
    ];
    let mut all = Vec::new();
    for o in 0..ORDERS as OrderIx {
        all.extend(per_order.iter().map(|make| make(o)));
    }
    all.extend((0..SEATS).map(Action::Forget));
    all
});

/// The protocol, with the Postgres claim (`claims: true`, what the system
/// does) or without it (payment accepted on the Redis holds alone).
#[derive(Clone, Debug)]
pub struct Protocol {
    pub claims: bool,
}

impl Model for Protocol {
    type State = State;
    type Action = Action;

    /// Every way each order can select a non-empty set of seats.
    fn init_states(&self) -> Vec<State> {
        let mut choices: Vec<Vec<Seats>> = vec![Vec::new()];
        for _ in 0..ORDERS {
            choices = (choices.into_iter())
                .flat_map(|chosen| {
                    (1..(1 << SEATS)).map(move |set| [chosen.clone(), vec![set]].concat())
                })
                .collect();
        }
        let state = |chosen: Vec<Seats>| State {
            orders: std::array::from_fn(|o| Order::new(chosen[o])),
            redis: [None; SEATS],
            sold: [None; SEATS],
            claim: [None; SEATS],
        };
        choices.into_iter().map(state).collect()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        let enabled = ACTIONS.iter().filter(|&&a| self.step(state, a).is_some());
        actions.extend(enabled);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let next = self.step(last, action)?;
        // Every step lowers the potential: the state graph has no cycle,
        // so every run ends, and what holds where no step is left holds at
        // the end of every run.
        assert!(
            potential(&next) < potential(last),
            "{action:?} does not make progress from {last:?}"
        );
        Some(next)
    }

    fn properties(&self) -> Vec<stateright::Property<Self>> {
        super::properties::all()
    }
}

impl Protocol {
    /// Whether no step is left: every run of the system ends in such a
    /// state (see `space::potential`).
    pub fn is_terminal(&self, state: &State) -> bool {
        thread_local! {
            // The checker asks once per property of the same state.
            static LAST: Cell<Option<(State, bool)>> = const { Cell::new(None) };
        }
        if let Some((last, terminal)) = LAST.get()
            && last == *state
        {
            return terminal;
        }
        let terminal = ACTIONS.iter().all(|&a| self.step(state, a).is_none());
        LAST.set(Some((*state, terminal)));
        terminal
    }

    /// `action` taken in `state`, or None if it is not enabled there.
    fn step(&self, state: &State, action: Action) -> Option<State> {
        let mut s = *state;
        let taken = match action {
            Action::Lock(o) => lock(&mut s, o),
            Action::Check(o) => check(&mut s, o, self.claims),
            Action::Expire(o) => end_hold(&mut s, o, Row::Expired),
            Action::Cancel(o) => end_hold(&mut s, o, Row::Cancelled),
            Action::Relock(o) => relock(&mut s, o),
            Action::Claim(o) => claim(&mut s, o, self.claims),
            Action::Approve(o) => attempt(&mut s, o, true),
            Action::Decline(o) => attempt(&mut s, o, false),
            Action::Sell(o) => sell(&mut s, o, self.claims),
            Action::End(o) => end(&mut s, o),
            Action::StartRefund(o) => start_refund(&mut s, o),
            Action::Crash(o) => crash(&mut s, o),
            Action::LoseSale(o) => lose_sale(&mut s, o),
            Action::Forget(seat) => s.redis[seat].take().is_some(),
            Action::SweepOrphan(o) => sweep_orphan(&mut s, o),
            Action::SweepStrays(o) => sweep_strays(&mut s, o),
            Action::SweepRefund(o) => sweep_refund(&mut s, o),
            Action::SweepResumeRefund(o) => resume_refund(&mut s, o),
            Action::CancelBooking(o) => cancel_booking(&mut s, o),
            Action::ProviderDeclines(o) => provider_declines(&mut s, o),
            Action::ProviderPays(o) => provider_pays(&mut s, o),
            Action::FinishRefund(o) => finish_refund(&mut s, o),
            Action::RefundCrash(o) => refund_crash(&mut s, o),
            Action::OperatorRetry(o) => operator_retry(&mut s, o),
        };
        taken.then_some(s)
    }
}

/// Redis, one script: every wanted seat free → all locked, else none (the
/// creation is refused: no order).
fn lock(s: &mut State, o: OrderIx) -> bool {
    if !s.orders[o as usize].at(Step::Lock) {
        return false;
    }
    let free = s.seats_of(o).all(|seat| s.redis[seat].is_none());
    if free {
        State::set_all(&mut s.redis, s.orders[o as usize].wants, o);
        s.order(o).step = Step::Check;
    } else {
        s.order(o).step = Step::Done;
    }
    true
}

/// Postgres: a seat sold, or claimed by another order, refuses the
/// creation and its locks go back; else the row is saved SEATS_RESERVED.
fn check(s: &mut State, o: OrderIx, claims: bool) -> bool {
    if !s.orders[o as usize].at(Step::Check) {
        return false;
    }
    if s.available_to(o, claims) {
        s.order(o).row = Row::SeatsReserved;
        s.order(o).step = Step::Hold;
    } else {
        s.release_holds(o);
        s.order(o).step = Step::Done;
    }
    true
}

/// The hold's timer, or the customer's cancel: the row ends, the holds go.
fn end_hold(s: &mut State, o: OrderIx, row: Row) -> bool {
    if !s.orders[o as usize].at(Step::Hold) {
        return false;
    }
    s.end_unsold(o, row);
    s.order(o).step = Step::Done;
    true
}

/// A payment asked while holding: the seats locked again in Redis
/// (re-entrant: a hold Redis forgot is taken back if the seat is free).
/// Another order's hold refuses it; the order keeps holding.
fn relock(s: &mut State, o: OrderIx) -> bool {
    let order = s.orders[o as usize];
    if !order.at(Step::Hold) || order.pays == PAYS {
        return false;
    }
    if s.seats_of(o)
        .all(|seat| s.redis[seat].is_none_or(|h| h == o))
    {
        State::set_all(&mut s.redis, s.orders[o as usize].wants, o);
        s.order(o).step = Step::Claim;
    } else {
        s.order(o).pays += 1;
    }
    true
}

/// Postgres, one transaction: the seats claimed (all or nothing, each
/// unsold and not claimed by another order) and the row saved
/// PAYMENT_PROCESSING; else the payment is refused and the order keeps
/// holding. Without claims only the sale is checked (today's code).
fn claim(s: &mut State, o: OrderIx, claims: bool) -> bool {
    if !s.orders[o as usize].at(Step::Claim) {
        return false;
    }
    s.order(o).pays += 1;
    if !s.available_to(o, claims) {
        s.order(o).step = Step::Hold;
        return true;
    }
    if claims {
        State::set_all(&mut s.claim, s.orders[o as usize].wants, o);
    }
    s.order(o).row = Row::PaymentProcessing;
    s.order(o).step = Step::Attempt;
    true
}

/// One payment attempt, recorded: approved (the charge, then the sale),
/// or declined / timed out (after the last, the order fails).
fn attempt(s: &mut State, o: OrderIx, approved: bool) -> bool {
    let order = s.order(o);
    if !order.at(Step::Attempt) || order.attempts == PAYMENT_ATTEMPTS {
        return false;
    }
    order.attempts += 1;
    if approved {
        order.charged = true;
        order.step = Step::Sell;
    } else if order.attempts == PAYMENT_ATTEMPTS {
        order.step = Step::End;
    }
    true
}

/// Postgres, one transaction (`orders::confirm`): a live row whose seats
/// are each unsold and unclaimed or claimed by this order is sold, its
/// claims cleared, then its holds released; else nothing is sold (seats
/// taken, or the row ended: NotLive) and the order ends. A sale in flight
/// commits even if its workflow died meanwhile.
fn sell(s: &mut State, o: OrderIx, claims: bool) -> bool {
    if s.orders[o as usize].step != Step::Sell {
        return false;
    }
    if !s.orders[o as usize].row.is_live() {
        s.order(o).step = Step::End;
    } else if s.available_to(o, claims) {
        State::set_all(&mut s.sold, s.orders[o as usize].wants, o);
        s.release_claims(o);
        s.release_holds(o);
        s.order(o).row = Row::Confirmed;
        s.order(o).step = Step::Done;
    } else {
        s.order(o).lost_seats = true;
        s.order(o).step = Step::End;
    }
    true
}

/// The workflow ends the order FAILED (if the sweep has not): claims and
/// holds released. An approved charge is refunded next.
fn end(s: &mut State, o: OrderIx) -> bool {
    if !s.orders[o as usize].at(Step::End) {
        return false;
    }
    s.end_unsold(o, Row::Failed);
    s.order(o).step = if s.orders[o as usize].charged {
        Step::StartRefund
    } else {
        Step::Done
    };
    true
}

/// The workflow starts the refund of its unsold charge (none if the sweep
/// started it first).
fn start_refund(s: &mut State, o: OrderIx) -> bool {
    let order = s.order(o);
    if !order.at(Step::StartRefund) {
        return false;
    }
    order.refund.get_or_insert_with(Refund::new);
    order.step = Step::Done;
    true
}

/// The workflow's run closes midway (terminated, failed, lost): it takes
/// no step again.
fn crash(s: &mut State, o: OrderIx) -> bool {
    let order = s.order(o);
    if !order.alive || order.step == Step::Done {
        return false;
    }
    order.alive = false;
    true
}

/// The worker running a dead workflow's sale dies too: that sale never
/// commits.
fn lose_sale(s: &mut State, o: OrderIx) -> bool {
    let order = s.order(o);
    if order.alive || order.step != Step::Sell {
        return false;
    }
    order.step = Step::Done;
    true
}

/// The sweep: a live row whose workflow is gone ends FAILED, its claims
/// and holds released.
fn sweep_orphan(s: &mut State, o: OrderIx) -> bool {
    let order = s.orders[o as usize];
    if order.alive || !order.row.is_live() {
        return false;
    }
    s.end_unsold(o, Row::Failed);
    true
}

/// The sweep: holds of an order with neither a live row nor a running
/// workflow go.
fn sweep_strays(s: &mut State, o: OrderIx) -> bool {
    let order = s.orders[o as usize];
    if order.alive || order.row.is_live() || !s.holds_any(o) {
        return false;
    }
    s.release_holds(o);
    true
}

/// The sweep: an approved charge whose order ended unsold, without a
/// refund, gets one.
fn sweep_refund(s: &mut State, o: OrderIx) -> bool {
    let order = s.order(o);
    if !order.charged || !order.row.is_unsold() || order.refund.is_some() {
        return false;
    }
    order.refund = Some(Refund::new());
    true
}

/// The sweep: a pending refund whose workflow is gone is started again.
fn resume_refund(s: &mut State, o: OrderIx) -> bool {
    match &mut s.order(o).refund {
        Some(r) if r.is_pending() && !r.running => {
            r.running = true;
            true
        }
        _ => false,
    }
}
