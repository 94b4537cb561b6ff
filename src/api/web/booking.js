// The booking, in one of four phases:
//
//   idle     no order; `want` holds the first seats while they are being held
//   holding  seats held (SEATS_RESERVED) and counting down; `want` is a
//            change being sent, `cancelling` says the customer asked to cancel
//   paying   the payment is sent (the order still says SEATS_RESERVED) or
//            under way (PAYMENT_PENDING, PAYMENT_PROCESSING)
//   done     the outcome is the order's status: CONFIRMED, FAILED or EXPIRED
//
// A cancelled order goes back to idle. `want` is not null exactly while the
// selection is being sent; an order the server ends meanwhile leaves it
// empty, so nothing more is sent. `pay` is the payment form, `pax` the
// passenger form: what was typed for each seat (kept by seat, so a seat
// change keeps the rows of the seats kept), the fields the customer has
// left, the API's complaints by `seat|field`, and whether a save is out.

import { remainingMs } from '/assets/countdown.js';
import { FIELDS, fieldProblem, passengerBody } from '/assets/names.js';

export const TERMINAL = new Set(['CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED']);

export function idleBooking() {
  return {
    phase: 'idle',
    order: null,
    want: null,
    cancelling: false,
    pay: { code: '', touched: false, error: '' },
    pax: { rows: new Map(), touched: new Set(), errors: new Map(), saving: false, error: '' },
  };
}

// An order from an API answer or a status, keeping what the answer omits.
// `holds` counts the times the hold was (re)started. `passengers` are the
// ones this page saved, as it sent them: the API never sends a name or an
// email back on an order's routes (the order id is no key to them), so the
// page keeps them in memory to show them (not in storage: a reload asks
// for them again).
export function orderFrom(s, previous = {}) {
  return {
    orderId: s.orderId,
    workflowId: s.workflowId ?? previous.workflowId ?? `booking-${s.orderId}`,
    flightId: s.flightId ?? previous.flightId,
    status: s.status,
    seats: s.seats ?? previous.seats ?? [],
    expiresAt: s.expiresAt ? Date.parse(s.expiresAt) : previous.expiresAt ?? null,
    maxExpiresAt: s.maxExpiresAt ? Date.parse(s.maxExpiresAt) : previous.maxExpiresAt ?? null,
    paymentAttempts: s.paymentAttempts ?? previous.paymentAttempts ?? 0,
    maxPaymentAttempts: s.maxPaymentAttempts ?? previous.maxPaymentAttempts ?? null,
    lastError: s.lastError !== undefined ? s.lastError : previous.lastError ?? null,
    totalPriceCents: s.totalPriceCents ?? previous.totalPriceCents ?? null,
    passengers: previous.passengers ?? [],
    reference: s.bookingReference ?? previous.reference ?? null,
    holds: previous.holds ?? 1,
  };
}

// The order under way (holding or paying), or null.
export const liveOrder = ({ phase, order }) => (phase === 'holding' || phase === 'paying' ? order : null);

// The seats this booking holds or has bought.
export function heldSeats(b) {
  if (liveOrder(b)) return b.order.seats;
  return b.phase === 'done' && b.order.status === 'CONFIRMED' ? b.order.seats : [];
}

// An order is under way, or seats are being sent.
export const busy = (b) => b.want !== null || liveOrder(b) !== null;

export function holdEnded(order) {
  const left = remainingMs(order);
  return left !== null && left <= 0;
}

// Seats can be changed only before payment, while the hold is live.
export const selectionLocked = (b) => b.phase === 'paying' || (b.phase === 'holding' && holdEnded(b.order));

const codeValid = (code) => /^\d{5}$/.test(code);

// What was typed for `seat`, blank if nothing.
export const paxRow = (pax, seat) => pax.rows.get(seat) ?? { givenName: '', familyName: '', email: '' };

// A seat whose row breaks a rule, as typed.
const rowValid = (pax, seat) => FIELDS.every((f) => !fieldProblem(f, paxRow(pax, seat)[f]));

// Every seat held has a valid passenger, as typed.
export const passengersValid = (b) => b.order !== null && b.order.seats.every((seat) => rowValid(b.pax, seat));

const bySeat = (a, b) => a.seat.localeCompare(b.seat);

// The passengers to send for the seats held, as the API takes them.
export const passengersBody = (b) => b.order.seats.map((seat) => passengerBody(seat, paxRow(b.pax, seat))).sort(bySeat);

// The form says something the server has not been told.
export function passengersUnsaved(b) {
  const saved = b.order.passengers
    .filter((p) => b.order.seats.includes(p.seat))
    .map((p) => passengerBody(p.seat, { givenName: p.givenName, familyName: p.familyName, email: p.email ?? '' }))
    .sort(bySeat);
  return JSON.stringify(saved) !== JSON.stringify(passengersBody(b));
}

// Rows for seats held that have none yet, from what this page saved.
export function fillRows(b) {
  for (const p of b.order?.passengers ?? []) {
    if (!b.pax.rows.has(p.seat)) b.pax.rows.set(p.seat, { givenName: p.givenName, familyName: p.familyName, email: p.email ?? '' });
  }
}

export const canEditPassengers = (b) => b.phase === 'holding' && b.want === null && !b.pax.saving && !holdEnded(b.order);

export const canPay = (b) => canEditPassengers(b) && codeValid(b.pay.code) && passengersValid(b);
