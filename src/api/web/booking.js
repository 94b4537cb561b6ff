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
// empty, so nothing more is sent. `pay` is the payment form.

import { remainingMs } from '/assets/countdown.js';

export const TERMINAL = new Set(['CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED']);

export function idleBooking() {
  return { phase: 'idle', order: null, want: null, cancelling: false, pay: { code: '', touched: false, error: '' } };
}

// An order from an API answer or a status, keeping what the answer omits.
// `holds` counts the times the hold was (re)started.
export function orderFrom(s, previous = {}) {
  return {
    orderId: s.orderId,
    workflowId: s.workflowId ?? previous.workflowId ?? `booking-${s.orderId}`,
    flightId: s.flightId ?? previous.flightId,
    status: s.status,
    seats: s.seats ?? previous.seats ?? [],
    expiresAt: s.expiresAt ? Date.parse(s.expiresAt) : previous.expiresAt ?? null,
    paymentAttempts: s.paymentAttempts ?? previous.paymentAttempts ?? 0,
    maxPaymentAttempts: s.maxPaymentAttempts ?? previous.maxPaymentAttempts ?? null,
    lastError: s.lastError !== undefined ? s.lastError : previous.lastError ?? null,
    totalPriceCents: s.totalPriceCents ?? previous.totalPriceCents ?? null,
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

export const canPay = (b) => b.phase === 'holding' && b.want === null && !holdEnded(b.order) && codeValid(b.pay.code);
