// One order: its row, passengers, payment attempts, status history and
// refund, a link to its workflow in the Temporal UI, and what an operator
// may do to it — cancel a live order, refund a confirmed booking, retry
// the refund of a booking the provider declined for good — each after a
// confirmation step. A live order or a refund under way is watched every
// few seconds while it is on screen: through its public status, which
// names no passenger, and read again in full (its passengers: a read the
// audit trail records) only when that status moved.

import { api } from '/assets/api.js';
import { $, el, focusHeading, keyed, setAttr, setText, show } from '/assets/dom.js';
import { flightLabel, fmtMoney, sortSeats } from '/assets/format.js';
import { flights } from '/assets/ops-dashboard.js';
import { ordersAddress } from '/assets/ops-orders.js';
import { STATUS, announce, cell, fillBody, opsApi, shortId, shownError, stamp, statusLabel } from '/assets/ops-common.js';

const POLL_MS = 3000;
const LIVE = new Set(['CREATED', 'SEATS_RESERVED', 'PAYMENT_PENDING', 'PAYMENT_PROCESSING']);
const MOVING = new Set([...LIVE, 'REFUND_PENDING']);

const state = {
  id: null,
  detail: null, // the last answer of GET /api/ops/orders/{id}
  error: '',
  confirming: false,
  acting: false,
  actionError: '',
};
let pollTimer = 0;

// What an operator may do to the order, if anything.
function actionOf(order, refund, checkIns = []) {
  if (LIVE.has(order.status)) return 'cancel';
  // A checked-in booking can no longer be refunded.
  if (order.status === 'CONFIRMED' && order.bookingReference && !checkIns.length) return 'refund';
  if (order.status === 'REFUND_FAILED' && order.bookingReference) return 'retry-refund';
  // An approved payment whose order was not sold: its refund, declined.
  if (refund?.status === 'FAILED') return 'retry-payment-refund';
  return null;
}

// ---------------------------------------------------------------- render

const fact = (term, ...value) => el('div', {}, el('dt', { text: term }), el('dd', {}, ...value));

function flightText(order) {
  const f = flights().find((x) => x.id === order.flightId);
  return f ? flightLabel(f) : order.flightNumber;
}

function renderFacts(o) {
  const seats = sortSeats(o.seats ?? []);
  const facts = [
    fact('Order id', el('span', { class: 'mono', text: o.orderId })),
    fact('Flight', flightText(o)),
    fact('Seats', seats.join(', ') || '—'),
    fact('Booking reference', el('span', { class: 'mono', text: o.bookingReference ?? '—' })),
    fact('Total', fmtMoney(o.totalPriceCents)),
    fact('Created', stamp(o.createdAt)),
  ];
  if (o.confirmedAt) facts.push(fact('Confirmed', stamp(o.confirmedAt)));
  if (o.updatedAt) facts.push(fact('Last change', stamp(o.updatedAt)));
  if (o.expiresAt && LIVE.has(o.status)) facts.push(fact('Hold ends', stamp(o.expiresAt)));
  if (o.maxExpiresAt && LIVE.has(o.status)) facts.push(fact('Hold extendable until', stamp(o.maxExpiresAt)));
  facts.push(fact('Payment attempts', String(o.paymentAttempts ?? 0)));
  if (o.lastError) facts.push(fact('Last error', o.lastError));
  $('order-facts').replaceChildren(...facts);
}

function renderTables(d) {
  const pax = sortSeats((d.passengers ?? []).map((p) => p.seat)).map((seat) => d.passengers.find((p) => p.seat === seat));
  fillBody(
    $('order-passengers').tBodies[0],
    pax.map((p) => {
      const ticket = (d.tickets ?? []).find((t) => t.seat === p.seat);
      const boarding = (d.checkIns ?? []).find((c) => c.seat === p.seat);
      const checkedIn = boarding ? `No. ${boarding.sequence} · ${boarding.compartment} · ${stamp(boarding.checkedInAt)}` : 'not checked in';
      return [cell(p.seat, { header: true }), cell(p.givenName), cell(p.familyName), cell(p.email ?? '—'), cell(ticket?.ticketNumber ?? '—'), cell(checkedIn)];
    }),
    'No passenger named yet.',
  );
  fillBody(
    $('order-attempts').tBodies[0],
    (d.attempts ?? []).map((a) => [cell(String(a.attempt), { header: true }), cell(a.outcome), cell(a.error ?? '—'), cell(stamp(a.at))]),
    'No payment attempted.',
  );
  const history = d.history ?? [];
  $('order-history').replaceChildren(
    ...(history.length ? history.map((h) => el('li', {}, stamp(h.at), ' ', el('span', { class: 'ops-timeline__status', text: statusLabel(h.status) }))) : [el('li', { class: 'muted', text: 'No history recorded.' })]),
  );
}

function renderRefund(refund) {
  show($('order-refund'), Boolean(refund));
  if (!refund) return;
  $('order-refund-facts').replaceChildren(
    fact('Status', statusLabel(refund.status)),
    fact('Amount', fmtMoney(refund.amountCents)),
    fact('Provider attempts', String(refund.attempts ?? 0)),
    fact('Requested', stamp(refund.requestedAt)),
    fact('Finished', stamp(refund.finishedAt)),
  );
}

// The facts of the confirmation step, and its buttons' words.
function actionWords(action, o) {
  const seats = sortSeats(o.seats ?? []);
  const amount = fmtMoney(o.totalPriceCents);
  const seatText = `${seats.length === 1 ? 'Seat' : 'Seats'} ${seats.join(', ')}`;
  if (action === 'cancel') {
    return {
      start: 'Cancel order…',
      title: 'Cancel this order?',
      facts: [`${seatText} ${seats.length === 1 ? 'is' : 'are'} released at once.`, 'No payment is taken; the customer sees the order cancelled.', 'This cannot be undone.'],
      yes: 'Yes, cancel the order',
      no: 'Keep the order',
    };
  }
  if (action === 'retry-payment-refund') {
    return {
      start: 'Retry refund…',
      title: 'Retry the refund of this payment?',
      facts: [`The order was never sold; the payment provider is asked again to refund ${amount}. It never pays twice.`],
      yes: `Yes, retry the refund of ${amount}`,
      no: 'Not now',
    };
  }
  if (action === 'retry-refund') {
    return {
      start: 'Retry refund…',
      title: `Retry the refund of booking ${o.bookingReference}?`,
      facts: [`The payment provider is asked again to refund ${amount}; it never pays twice.`, `${seatText} go back on sale once it pays.`],
      yes: `Yes, retry the refund of ${amount}`,
      no: 'Not now',
    };
  }
  return {
    start: 'Refund booking…',
    title: `Refund booking ${o.bookingReference}?`,
    facts: [`The booking is cancelled and ${amount} refunded to the customer.`, `${seatText} go back on sale.`, 'This cannot be undone.'],
    yes: `Yes, refund ${amount}`,
    no: 'Keep the booking',
  };
}

function renderAction(s) {
  const o = s.detail.order;
  const action = actionOf(o, s.detail.refund, s.detail.checkIns);
  show($('order-no-action'), !action);
  setText($('order-no-action'), action ? '' : `Nothing to do: the order is ${statusLabel(o.status).toLowerCase()}.`);
  show($('action-start'), Boolean(action) && !s.confirming);
  show($('action-confirm'), Boolean(action) && s.confirming);
  setText($('action-error'), s.actionError);
  show($('action-error'), Boolean(s.actionError));
  if (!action) return;
  const words = actionWords(action, o);
  setText($('action-start'), words.start);
  setText($('action-title'), words.title);
  keyed($('action-facts'), words.facts.join('|'), () => words.facts.map((text) => el('li', { text })));
  const yes = $('action-yes');
  yes.disabled = s.acting;
  setText(yes, s.acting ? 'Sending…' : words.yes);
  $('action-no').disabled = s.acting;
  setText($('action-no'), words.no);
}

function render(s) {
  const d = s.detail;
  setText($('order-title'), `Order ${shortId(s.id)}`);
  setAttr($('order-back'), 'href', ordersAddress());
  show($('order-loading'), !d);
  setText($('order-loading'), s.error || 'Loading…');
  show($('order-body'), Boolean(d));
  const badgeNode = $('order-status');
  show(badgeNode, Boolean(d));
  if (!d) return;
  setText(badgeNode, statusLabel(d.order.status));
  setAttr(badgeNode, 'data-kind', STATUS[d.order.status]?.[1] ?? 'warn');
  setAttr($('order-workflow'), 'href', d.workflowUrl);
  renderFacts(d.order);
  renderTables(d);
  renderRefund(d.refund);
  renderAction(s);
}

// ---------------------------------------------------------------- reads

// The answer with the order's facts in `order`, wherever the server put
// them (its flight number and times may come beside the order's status).
const withOrderFacts = (d) => ({
  ...d,
  order: { flightNumber: d.flightNumber, createdAt: d.createdAt, confirmedAt: d.confirmedAt, ...d.order },
});

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
}

async function read() {
  const id = state.id;
  try {
    const detail = withOrderFacts(await opsApi('GET', `/api/ops/orders/${encodeURIComponent(id)}`));
    if (id !== state.id) return;
    const before = state.detail?.order.status;
    Object.assign(state, { detail, error: '' });
    if (before && before !== detail.order.status) announce(`Order ${shortId(id)} is now ${statusLabel(detail.order.status).toLowerCase()}.`);
  } catch (err) {
    if (id !== state.id || !shownError(err)) return;
    state.error = err.status === 404 ? 'No such order.' : `The order could not be read: ${err.message}`;
  }
  render(state);
  follow();
}

// Read again in a while if the order may still change.
function follow() {
  stopPolling();
  if (state.id && state.detail && MOVING.has(state.detail.order.status)) pollTimer = setTimeout(check, POLL_MS);
}

// What the order's status shows that this page draws from the full read.
const WATCHED = ['status', 'paymentAttempts', 'lastError', 'expiresAt', 'bookingReference'];
const moved = (o, s) => WATCHED.some((k) => (o[k] ?? null) !== (s[k] ?? null)) || String(o.seats) !== String(s.seats);

// The order's public status (no personal data, so no audit row); the full
// order again only when it moved, or when the status could not be read.
async function check() {
  const id = state.id;
  let s = null;
  try {
    s = await api('GET', `/api/orders/${encodeURIComponent(id)}/status`);
  } catch {
    // the full read says what is wrong
  }
  if (id !== state.id) return;
  if (!s || !state.detail || moved(state.detail.order, s)) await read();
  else follow();
}

// ---------------------------------------------------------------- actions

function startAction() {
  Object.assign(state, { confirming: true, actionError: '' });
  render(state);
  $('action-title').focus();
}

function keep() {
  state.confirming = false;
  render(state);
  $('action-start').focus();
}

const REFUSED = {
  ORDER_NOT_MODIFIABLE: 'The order has moved on (see its status and its refund).',
  BOOKING_NOT_CANCELLABLE: 'The booking can no longer be refunded: it has moved on (see its status).',
};

async function confirmAction() {
  const o = state.detail.order;
  const action = actionOf(o, state.detail.refund, state.detail.checkIns);
  const path = {
    cancel: `/api/ops/orders/${encodeURIComponent(o.orderId)}/cancel`,
    'retry-payment-refund': `/api/ops/orders/${encodeURIComponent(o.orderId)}/refund`,
  }[action] ?? `/api/ops/bookings/${encodeURIComponent(o.bookingReference)}/refund`;
  Object.assign(state, { acting: true, actionError: '' });
  render(state);
  try {
    await opsApi('POST', path, {});
    state.confirming = false; // the read below says the new status
    focusHeading('order-title');
  } catch (err) {
    if (shownError(err)) state.actionError = REFUSED[err.code] ?? `That did not work: ${err.message}`;
  } finally {
    state.acting = false;
  }
  await read();
}

export function initOrder() {
  $('action-start').addEventListener('click', startAction);
  $('action-no').addEventListener('click', keep);
  $('action-yes').addEventListener('click', confirmAction);
}

export const orderView = {
  title: ({ id }) => `Order ${shortId(id)}`,
  enter({ id }) {
    if (id !== state.id) Object.assign(state, { id, detail: null, error: '', confirming: false, actionError: '' });
    render(state);
    read();
  },
  leave() {
    stopPolling();
  },
};
