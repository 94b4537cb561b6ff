// flightctl web UI, the entry module: the page's state, what changes it (the
// customer, the API's answers, the live stream) and render(state), which
// draws the whole screen from it. No build step, no dependencies.
//
// The server is the authority: the flight list, the seat map and the order
// are pushed by one event stream per page (and polled only while it is
// down), and the countdown runs on the server's clock.

import { api, bookingCall } from '/assets/api.js';
import {
  TERMINAL,
  busy,
  canPay,
  fillRows,
  heldSeats,
  idleBooking,
  liveOrder,
  orderFrom,
  passengersUnsaved,
  passengersValid,
  selectionLocked,
} from '/assets/booking.js';
import { observeStatus } from '/assets/clock.js';
import { endFlash, keepTicking, remainingMs } from '/assets/countdown.js';
import { $, focusHeading, setAttr, setText, show } from '/assets/dom.js';
import { renderFlights } from '/assets/flights.js';
import { capitalise, flightLabel, fmtHourMinute, fmtMoney, plural, sameSet } from '/assets/format.js';
import { openStream } from '/assets/live.js';
import { renderBooking } from '/assets/panels.js';
import { firstInvalid } from '/assets/passengers.js';
import { passengerForm } from '/assets/pax-form.js';
import { buildSeatMap, onSeatKey, renderSeats } from '/assets/seatmap.js';
import { waitingRoom } from '/assets/waiting-room.js';

const MAX_SEATS = 9;
const FLIGHTS_POLL_MS = 5000;
const SEATMAP_POLL_MS = 2500;
const STATUS_POLL_MS = 2000;
const OVERDUE_MS = 3000;
const REFERENCE_RETRY_MS = 1000;
const STORE_KEY = 'flightctl.order';

const state = {
  config: {
    temporalUiUrl: '',
    temporalNamespace: 'default',
    paymentFailureRate: null,
    paymentMaxRetries: 3,
    seatReservationSeconds: 900,
    holdMaxLifetimeSeconds: 1800,
  },
  fatal: '',
  notice: null, // { text, kind }
  flights: [],
  flightsUpdated: null, // when the list last changed (the visitor's clock, shown as is)
  live: null, // the page's stream: open (true), down (false), not yet (null)
  flightId: null,
  flight: null, // GET /api/flights/{id}: layout, price; null until read
  seatStatus: new Map(), // seat id -> available | reserved | booked
  released: new Set(), // seats we gave up, until the server's map says so too
  booking: idleBooking(),
};

let stream = null; // the page's one event stream (live.js)
let reading = null; // the flight whose read is under way
let overdueAsked = 0; // when an overdue hold was last asked about (performance.now())
let noticeTimer = 0;
// The passenger form: its handlers, on this page's state.
const paxForm = passengerForm(state, { render, refreshStatus });
// The waiting room of a sale with a queue: shown instead of the seat map
// until the buyer's turn.
const room = waitingRoom({ onAdmitted, render: () => render(state) });

// ---------------------------------------------------------------- render

// A duration in whole minutes, or seconds below one.
function minutes(secs) {
  const mins = Math.round(secs / 60);
  return mins >= 1 ? plural(mins, 'minute') : `${secs} seconds`;
}

function renderIntro({ paymentFailureRate: rate, seatReservationSeconds: secs, holdMaxLifetimeSeconds: most }) {
  const pct = typeof rate === 'number' ? `${Number((rate * 100).toFixed(1))}%` : 'some';
  setText($('demo-note'), `Demo: payments fail at random ${pct} of the time; 00000 always succeeds, 99999 always fails.`);
  setText($('idle-text'), `Pick a flight, then click a seat to start. Your seats are held for ${minutes(secs)} while you pay, and every change restarts the hold, for up to ${minutes(most)} in all.`);
}

function renderNotice(n) {
  const box = $('notice');
  show(box, Boolean(n));
  setText(box, n?.text ?? '');
  if (!n) return;
  box.dataset.kind = n.kind;
  setAttr(box, 'role', n.kind === 'error' ? 'alert' : 'status');
}

function renderSeatSection(s) {
  show($('seat-empty'), !s.flightId);
  show($('seat-body'), Boolean(s.flightId));
  const listed = s.flights.find((f) => f.id === s.flightId);
  let title = '';
  if (s.flight) title = `${flightLabel(s.flight)} · ${fmtMoney(s.flight.priceCents)} per seat`;
  else if (s.flightId) title = listed ? flightLabel(listed) : 'Loading…';
  setText($('seat-flight'), title);
  renderSeats(s);
}

function render(s) {
  renderIntro(s.config);
  setText($('fatal'), s.fatal);
  show($('fatal'), Boolean(s.fatal));
  renderNotice(s.notice);
  renderFlights(s);
  renderSeatSection(s);
  renderBooking(s);
  keepTicking(s.booking.phase === 'holding', tick);
  show($('waiting-room'), room.active);
  show($('booking-layout'), !room.active);
  if (room.active) room.draw();
}

function notify(text, kind = 'info', ms = 8000) {
  clearTimeout(noticeTimer);
  state.notice = { text, kind };
  if (!ms) return;
  noticeTimer = setTimeout(() => {
    state.notice = null;
    render(state);
  }, ms);
}

function clearNotice() {
  clearTimeout(noticeTimer);
  state.notice = null;
}

function showSeats() {
  $('seats-title').focus({ preventScroll: true });
  $('seat-section').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---------------------------------------------------------------- flights

async function loadFlights() {
  try {
    state.flights = (await api('GET', '/api/flights')).flights;
    state.flightsUpdated = new Date();
    state.fatal = '';
  } catch (e) {
    if (!state.flights.length) state.fatal = `Flights could not be loaded: ${e.message}`;
  }
  render(state);
}

function setAvailability({ flightId, availableSeats }) {
  const f = state.flights.find((x) => x.id === flightId);
  if (f) f.availableSeats = availableSeats;
  return Boolean(f);
}

// A flight the list lacks (or a list not read yet) means reading the list.
function onAvailability(changes) {
  if (!changes.map(setAvailability).every(Boolean) || !state.flightsUpdated) loadFlights();
  else state.flightsUpdated = new Date();
  render(state);
}

// ---------------------------------------------------------------- seat map

function setSeats(seats) {
  state.seatStatus = new Map(seats.map((s) => [s.seat, s.status]));
  state.released.clear();
}

function setSeat({ seat, status }) {
  state.seatStatus.set(seat, status);
  state.released.delete(seat);
}

// Read the open flight: its layout and price, and its seats' status unless
// the stream (the fresher source) is up. One read at a time: a poll or a
// snapshot while one is out adds none.
async function readFlight() {
  const id = state.flightId;
  if (!id || reading === id) return;
  reading = id;
  let flight;
  try {
    flight = await api('GET', `/api/flights/${encodeURIComponent(id)}`);
  } catch (e) {
    if (!state.flight && id === state.flightId) notify(`The seat map could not be loaded: ${e.message}`, 'error', 0);
    render(state);
    return;
  } finally {
    if (reading === id) reading = null;
  }
  if (id !== state.flightId) return;
  if (!state.flight) buildSeatMap(flight);
  state.flight = flight;
  if (!room.active && state.booking.phase === 'idle' && queued(id)) queueFor(id);
  if (!stream?.live) setSeats(flight.seatMap.seats.map((s) => ({ seat: s.id, status: s.status })));
  render(state);
}

// The stream's seat map, whole; a layout not read yet is read now.
function onSeats({ seats }) {
  setSeats(seats);
  if (!state.flight) readFlight();
  render(state);
}

function onSeat(change) {
  setSeat(change);
  render(state);
}

async function selectFlight(id) {
  if (id === state.flightId) {
    showSeats();
    return;
  }
  if (busy(state.booking)) {
    notify('Finish or cancel your current booking before choosing another flight.', 'warn');
    render(state);
    return;
  }
  endBooking();
  clearNotice();
  await openFlight(id);
}

// Show flight `id`'s seat map, read afresh, and follow it on the stream;
// a sale not open yet shows its waiting room instead.
async function openFlight(id) {
  Object.assign(state, { flightId: id, flight: null, seatStatus: new Map(), released: new Set() });
  if (room.active && room.flightId !== id) room.leave();
  if (queued(id)) queueFor(id);
  $('seat-map').replaceChildren();
  render(state);
  rewatch();
  await readFlight();
  if (id === state.flightId) $('seat-section').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---------------------------------------------------------------- the waiting room

// Flight `id` is sold through its waiting room: its sale is scheduled
// (`salesOpenAt`, of the list or of the flight read), before the opening
// and after it, and this buyer holds no admission for it yet.
function queued(id) {
  const read = state.flight?.id === id ? state.flight : null;
  const opensAt = read?.salesOpenAt ?? state.flights.find((f) => f.id === id)?.salesOpenAt;
  return Boolean(opensAt) && !room.admissionFor(id);
}

// Join flight `id`'s queue, or take the ticket a create was answered with.
function queueFor(id, ticket = null) {
  const listed = state.flights.find((f) => f.id === id);
  room.enter({ id, label: listed ? flightLabel(listed) : '' }, ticket);
}

// The buyer's turn: the seat map, where the create carries the admission.
function onAdmitted({ flightId, admittedUntil }) {
  if (flightId !== state.flightId) return;
  const until = Date.parse(admittedUntil);
  const by = Number.isFinite(until) ? ` Choose your seats by ${fmtHourMinute(until)}.` : '';
  notify(`It is your turn.${by}`, 'info', 0);
  render(state);
  if (!state.flight) readFlight();
  showSeats();
}

// ---------------------------------------------------------------- the stream

// The page's one stream (a browser has six connections per server, shared
// by its tabs): the flight list, the open flight's seats and the live order.
// Another flight or a new order opens a new stream, whose snapshots re-sync
// the page; an order that ended is left out of the next one.
function rewatch() {
  const url = streamUrl();
  if (stream?.url === url) return;
  stream?.close();
  stream = openStream(url, {
    on: {
      flights: ({ flights }) => onAvailability(flights),
      flight: (change) => onAvailability([change]),
      seats: onSeats,
      seat: onSeat,
      order: applyStatus,
      // A read failed on the server, which retries; ask once meanwhile.
      error: () => refreshStatus(),
    },
    polls: [
      [loadFlights, FLIGHTS_POLL_MS],
      [readFlight, SEATMAP_POLL_MS],
      [refreshStatus, STATUS_POLL_MS],
    ],
    onLive: (live) => {
      state.live = live;
      render(state);
    },
  });
}

function streamUrl() {
  const query = new URLSearchParams();
  if (state.flightId) query.set('flight', state.flightId);
  const order = liveOrder(state.booking);
  if (order) query.set('order', order.orderId);
  const q = query.toString();
  return q ? `/api/events?${q}` : '/api/events';
}

// ---------------------------------------------------------------- the order

// The order this tab holds or is paying, kept for a reload; none otherwise.
function remember() {
  const order = liveOrder(state.booking);
  try {
    if (order) {
      const { orderId, workflowId, flightId } = order;
      sessionStorage.setItem(STORE_KEY, JSON.stringify({ orderId, workflowId, flightId }));
    } else {
      sessionStorage.removeItem(STORE_KEY);
    }
  } catch {
    // storage may be unavailable (private mode); resuming is a nicety
  }
}

function release(seats) {
  for (const s of seats) state.released.add(s);
}

// Back to idle. Seats asked for meanwhile (`want`) are still to be sent.
function endBooking() {
  state.booking = { ...idleBooking(), want: state.booking.want };
  remember();
}

// The live order's status, read (not pushed).
async function refreshStatus() {
  const o = liveOrder(state.booking);
  if (!o) return;
  try {
    applyStatus(await api('GET', `/api/orders/${encodeURIComponent(o.orderId)}/status`));
  } catch {
    // the stream, or the next poll, will tell
  }
}

// A status from the order's stream or from polling.
function applyStatus(s) {
  observeStatus(s);
  const b = state.booking;
  if (b.order?.orderId !== s.orderId || b.phase === 'done') return;
  if (s.status === 'SEATS_RESERVED') {
    applyHold(s);
  } else {
    Object.assign(b.order, orderFrom(s, b.order));
    if (TERMINAL.has(s.status)) onTerminal();
    else b.phase = 'paying';
  }
  fillRows(b);
  render(state);
}

// A hold as the server sees it. Our own change or payment in flight answers
// for itself, and an older hold never replaces a newer one.
function applyHold(s) {
  const { phase, want, order } = state.booking;
  const expiresAt = Date.parse(s.expiresAt);
  if (phase !== 'holding' || want || expiresAt < order.expiresAt) return;
  const elsewhere = expiresAt > order.expiresAt + 1000; // changed in another tab
  Object.assign(order, orderFrom(s, order), elsewhere ? { holds: order.holds + 1 } : {});
}

// The order ended. Seats being sent for it are moot: `want` empties, so
// the selection loop creates no order from them.
function onTerminal() {
  const b = state.booking;
  if (b.want) b.want = [];
  if (b.order.status !== 'CONFIRMED') release(b.order.seats);
  if (b.order.status === 'CANCELLED') {
    endBooking();
    notify('This booking was cancelled and its seats have been released.');
    return;
  }
  b.phase = 'done';
  remember();
  focusHeading({ CONFIRMED: 'confirmed-title', FAILED: 'failed-title', EXPIRED: 'expired-title' }[b.order.status]);
  if (b.order.status === 'CONFIRMED') awaitReference(b.order);
}

// A confirmation read before its reference was issued: ask again, a few
// times, until the reference is there.
async function awaitReference(order, tries = 10) {
  for (let i = 0; i < tries && !order.reference && state.booking.order === order; i++) {
    await new Promise((resolve) => setTimeout(resolve, REFERENCE_RETRY_MS));
    const s = await api('GET', `/api/orders/${encodeURIComponent(order.orderId)}/status`).catch(() => null);
    if (s && state.booking.order === order) {
      Object.assign(order, orderFrom(s, order));
      render(state);
    }
  }
}

// Each tick of a hold's countdown.
function tick() {
  render(state);
  askIfOverdue();
}

// A hold past its end with no outcome heard for a few seconds (an event
// lost, an expiry late): read the order's status, again every few seconds
// while it stays so, so that the page never hangs on "Time is up".
function askIfOverdue() {
  const { phase, order } = state.booking;
  const left = phase === 'holding' ? remainingMs(order) : null;
  const now = performance.now();
  if (left === null || left > -OVERDUE_MS || now - overdueAsked < OVERDUE_MS) return;
  overdueAsked = now;
  refreshStatus();
}

// ---------------------------------------------------------------- selection

// The call that brings the server closer to the seats the customer wants.
function nextStep({ phase, order, want }) {
  if (phase === 'idle') return want.length ? createOrder : null;
  if (phase !== 'holding') return null;
  if (!want.length) return cancelOrder;
  return sameSet(want, order.seats) ? null : changeSeats;
}

// Send the seats the customer wants until the server agrees. Clicks while a
// call is out only change `want`: one loop sends them, in order.
async function syncSelection() {
  try {
    for (let step = nextStep(state.booking); step; step = nextStep(state.booking)) {
      await step(state.booking.want);
    }
  } catch (e) {
    await selectionFailed(e);
  } finally {
    state.booking.want = null;
    state.booking.cancelling = false;
    render(state);
  }
}

function wantSeats(seats) {
  const b = state.booking;
  const idle = b.want === null;
  b.want = seats;
  render(state);
  if (idle) syncSelection();
}

async function createOrder(seats) {
  const flightId = state.flightId;
  const admission = room.admissionFor(flightId);
  const headers = admission ? { Admission: admission } : {};
  const r = await bookingCall('POST', '/api/orders', { flightId, seats }, { idempotent: true, headers });
  if (r?.ticket && !r.orderId) {
    // The engine is busy: a place in the queue instead of an order.
    state.booking.want = [];
    queueFor(flightId, r);
    return;
  }
  if (admission) room.spend();
  Object.assign(state.booking, { phase: 'holding', order: orderFrom(r, { flightId }) });
  remember();
  rewatch();
  clearNotice();
}

async function changeSeats(seats) {
  const o = state.booking.order;
  const r = await bookingCall('PUT', `/api/orders/${encodeURIComponent(o.orderId)}/seats`, { seats });
  if (state.booking.order !== o) return;
  release(o.seats.filter((s) => !r.seats.includes(s)));
  const { maxExpiresAt } = orderFrom(r, o);
  Object.assign(o, { seats: r.seats, status: r.status, expiresAt: Date.parse(r.expiresAt), maxExpiresAt, holds: o.holds + 1 });
  for (const key of state.booking.pax.errors.keys()) if (!r.seats.includes(key.split('|')[0])) state.booking.pax.errors.delete(key);
}

async function cancelOrder() {
  const { order, cancelling } = state.booking;
  await bookingCall('DELETE', `/api/orders/${encodeURIComponent(order.orderId)}`);
  release(order.seats);
  endBooking();
  notify(cancelling ? 'Your booking was cancelled and your seats have been released.' : 'Selection cleared. Your hold has been released.');
  if (cancelling) $('seats-title').focus({ preventScroll: true });
}

function seatsTaken(message) {
  const taken = (message.split(':')[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const which = taken.length
    ? `${taken.length === 1 ? 'Seat' : 'Seats'} ${taken.join(', ')} ${taken.length === 1 ? 'was' : 'were'} just taken by another customer.`
    : 'A seat you picked was just taken by another customer.';
  notify(`${which} The seat map has been refreshed — please choose another seat.`, 'error', 10000);
}

async function selectionFailed(e) {
  if (['QUEUE_REQUIRED', 'SALES_NOT_OPEN', 'ADMISSION_INVALID'].includes(e.code) && state.flightId) {
    if (e.code === 'ADMISSION_INVALID') room.spend();
    clearNotice();
    queueFor(state.flightId);
  } else if (e.code === 'SEATS_UNAVAILABLE') {
    seatsTaken(e.message);
  } else if (['ORDER_EXPIRED', 'ORDER_NOT_MODIFIABLE', 'ORDER_NOT_FOUND'].includes(e.code)) {
    await refreshStatus();
    if (state.booking.phase === 'holding') notify(e.message, 'error');
  } else {
    notify(`Your selection could not be saved: ${e.message}`, 'error', 10000);
  }
}

function onSeatClick(e) {
  const btn = e.target.closest('button.seat');
  if (!btn || btn.disabled || selectionLocked(state.booking)) return;
  // After an outcome, picking a seat starts a new booking.
  if (state.booking.phase === 'done') {
    endBooking();
    clearNotice();
  }
  const id = btn.dataset.seat;
  const current = state.booking.want ?? heldSeats(state.booking);
  if (current.includes(id)) {
    wantSeats(current.filter((s) => s !== id));
  } else if (current.length < MAX_SEATS) {
    wantSeats([...current, id]);
  } else {
    notify(`You can hold at most ${MAX_SEATS} seats in one booking.`, 'warn');
    render(state);
  }
}

function onCancel() {
  const b = state.booking;
  if (!busy(b) || selectionLocked(b)) return;
  b.cancelling = true;
  wantSeats([]);
}

function startOver() {
  endBooking();
  clearNotice();
  render(state);
  showSeats();
}

// ---------------------------------------------------------------- payment

function onCodeInput() {
  state.booking.pay = { code: $('pay-code').value, touched: false, error: '' };
  render(state);
}

function onCodeBlur() {
  state.booking.pay.touched = state.booking.pay.code !== '';
  render(state);
}

async function onPay(e) {
  e.preventDefault();
  const b = state.booking;
  b.pay.touched = true;
  if (!passengersValid(b)) {
    paxForm.checkPassengers();
    return;
  }
  if (!canPay(b)) {
    render(state);
    return;
  }
  const o = b.order;
  if (passengersUnsaved(b) && !(await paxForm.savePassengers())) return;
  if (state.booking !== b || !canPay(b)) return;
  b.phase = 'paying';
  render(state);
  try {
    const r = await bookingCall('POST', `/api/orders/${encodeURIComponent(o.orderId)}/pay`, { paymentCode: b.pay.code }, { idempotent: true });
    if (o.status === 'SEATS_RESERVED') o.status = r.status;
    b.pay = idleBooking().pay;
  } catch (err) {
    if (state.booking !== b || b.phase !== 'paying') return;
    b.phase = 'holding';
    if (err.code === 'PASSENGERS_REQUIRED') paxForm.passengersMissing(err);
    else if (err.code === 'ORDER_EXPIRED' || err.code === 'ORDER_NOT_MODIFIABLE') await refreshStatus();
    else b.pay.error = err.code === 'INVALID_PAYMENT_CODE' ? capitalise(err.message) : `Payment could not be started: ${err.message}`;
  }
  render(state);
  if (b.pax.errors.size) firstInvalid()?.focus();
}

// ---------------------------------------------------------------- start

// Pick up an order this tab was holding or paying before a reload.
async function resume() {
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? 'null');
  } catch {
    saved = null;
  }
  if (!saved?.orderId) return;
  const s = await api('GET', `/api/orders/${encodeURIComponent(saved.orderId)}/status`).catch(() => null);
  if (!s || TERMINAL.has(s.status)) {
    remember();
    return;
  }
  observeStatus(s);
  const phase = s.status === 'SEATS_RESERVED' ? 'holding' : 'paying';
  Object.assign(state.booking, { phase, order: orderFrom(s, saved) });
  fillRows(state.booking);
  remember();
  await openFlight(s.flightId);
}

async function loadConfig() {
  try {
    Object.assign(state.config, await api('GET', '/api/config'));
  } catch {
    // defaults stay; the demo note then omits the rate
  }
}

async function main() {
  const map = $('seat-map');
  map.addEventListener('click', onSeatClick);
  map.addEventListener('keydown', onSeatKey);
  $('flight-list').addEventListener('click', (e) => {
    const btn = e.target.closest('button.flight');
    if (btn) selectFlight(btn.dataset.flightId);
  });
  $('pay-form').addEventListener('submit', onPay);
  $('pax-form').addEventListener('submit', paxForm.onPassengersSubmit);
  $('pax-form').addEventListener('input', paxForm.onPassengerInput);
  $('pax-form').addEventListener('focusout', paxForm.onPassengerLeave);
  $('print-ticket').addEventListener('click', () => window.print());
  $('pay-code').addEventListener('input', onCodeInput);
  $('pay-code').addEventListener('blur', onCodeBlur);
  $('cancel-button').addEventListener('click', onCancel);
  $('wr-rejoin').addEventListener('click', () => state.flightId && queueFor(state.flightId));
  $('timer').addEventListener('animationend', endFlash);
  document.querySelectorAll('[data-action="restart"]').forEach((b) => b.addEventListener('click', startOver));

  await loadConfig();
  await loadFlights();
  await resume();
  rewatch();
  render(state);
}

main();
