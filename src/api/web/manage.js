// The "manage my booking" page (/manage): look a booking up by its
// reference and a passenger's last name, see it, check in online
// (checkin.js: the boarding passes), cancel it for a refund
// (after a confirmation step) and follow the refund until it is settled.
// Like the booking page, the screen is drawn from one state object. The
// reference and the name go in a POST body, never in a URL: no access log,
// proxy or browser history keeps them.

import { api, bookingCall, newKey } from '/assets/api.js';
import { $, el, fieldError, focusHeading, keyed, setText, show } from '/assets/dom.js';
import { flightLabel, fmtDate, fmtMoney, plural, sortSeats } from '/assets/format.js';
import { nameProblem } from '/assets/names.js';
import { checkIn, checkInFailed, renderCheckIn } from '/assets/checkin.js';

const POLL_MS = 1000;
const POLL_LIMIT = 600; // ten minutes of a refund under way, then the customer reloads
// The alphabet of booking references: no 0/O, 1/I/L.
const REFERENCE = /^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/;
const FINAL = new Set(['REFUNDED', 'REFUND_FAILED']);

const STATUS = {
  CONFIRMED: ['Confirmed', 'ok'],
  REFUND_PENDING: ['Cancelled · refund in progress', 'warn'],
  REFUNDED: ['Cancelled · refunded', 'done'],
  REFUND_FAILED: ['Cancelled · refund failed', 'bad'],
};

const state = {
  form: { reference: '', lastName: '', touched: new Set() },
  looking: false,
  error: '', // what the last lookup or poll was told, for the whole form
  blockedUntil: 0, // 429: no lookup before this (performance.now())
  booking: null, // the last answer of POST /api/bookings/lookup
  asked: null, // { reference, lastName } the booking was found with
  confirming: false,
  cancelling: false,
  cancelError: '',
  cancelKey: null, // one Idempotency-Key per confirmed cancellation
  checkingIn: false,
  checkInError: '',
};

let pollTimer = 0;
let polls = 0;
let blockTimer = 0;

const normalise = (ref) => ref.replace(/[\s-]+/g, '').toUpperCase();

// A wait in seconds, as said to the customer.
const waitText = (secs) => (secs > 90 ? plural(Math.ceil(secs / 60), 'minute') : plural(secs, 'second'));

function referenceProblem(value) {
  const ref = normalise(value);
  if (!ref) return 'Enter your booking reference.';
  if (/[01OIL]/.test(ref)) return 'References never contain 0, O, 1, I or L: check each character.';
  return REFERENCE.test(ref) ? '' : 'A booking reference is 6 letters and digits, like K7PQ2X.';
}

const problems = (f) => ({ reference: referenceProblem(f.reference), lastName: nameProblem(f.lastName, 'lastName') });

// ---------------------------------------------------------------- render

function renderForm(s) {
  const p = problems(s.form);
  const shown = (name) => (s.form.touched.has(name) ? p[name] : '');
  fieldError($('lookup-reference'), $('lookup-reference-error'), shown('reference'), 'lookup-hint');
  fieldError($('lookup-last-name'), $('lookup-last-name-error'), shown('lastName'));
  const wait = Math.ceil((s.blockedUntil - performance.now()) / 1000);
  const button = $('lookup-button');
  button.disabled = s.looking || wait > 0;
  setText(button, s.looking ? 'Finding…' : wait > 0 ? `Try again in ${waitText(wait)}` : 'Find booking');
  setText($('lookup-error'), s.error);
  show($('lookup-error'), Boolean(s.error));
}

// A booking's seats, each with its passenger.
function seatsOf(b) {
  const named = new Map((b.passengers ?? []).map((p) => [p.seat, p]));
  return sortSeats(b.seats ?? []).map((seat) => ({ seat, ...named.get(seat) }));
}

const paidCents = (b) => b.totalPriceCents ?? 0;

function renderTrip(b) {
  setText($('booking-reference'), b.reference);
  const [label, kind] = STATUS[b.status] ?? [b.status, 'warn'];
  const badge = $('booking-status');
  setText(badge, label);
  badge.dataset.kind = kind;
  const f = b.flight;
  keyed($('booking-flight'), f ? `${f.id}|${f.departureTime}` : '', () =>
    f ? [el('span', { class: 'line', text: flightLabel(f) }), el('span', { class: 'line small', text: `Departs ${fmtDate(f.departureTime)}` })] : [],
  );
  const seats = seatsOf(b);
  keyed($('booking-passengers'), JSON.stringify(seats), () =>
    seats.map((p) =>
      el(
        'li',
        {},
        el('span', { class: 'chip', text: p.seat }),
        ' ',
        el('span', { text: [p.givenName, p.familyName].filter(Boolean).join(' ') }),
        ...(p.ticketNumber ? [' ', el('span', { class: 'small', text: `E-ticket ${p.ticketNumber}`, dataset: { testid: 'ticket-number' } })] : []),
      ),
    ),
  );
  setText($('booking-paid'), fmtMoney(paidCents(b)));
  setText($('booking-confirmed-at'), b.confirmedAt ? fmtDate(b.confirmedAt) : '');
}

function renderRefund(b) {
  const r = b.refund;
  const shown = b.status !== 'CONFIRMED';
  show($('refund'), shown);
  if (!shown) return;
  const amount = fmtMoney(r?.amountCents ?? paidCents(b));
  const box = $('refund');
  box.dataset.kind = STATUS[b.status]?.[1] ?? 'warn';
  show($('refund-spinner'), b.status === 'REFUND_PENDING');
  const [title, detail] = {
    REFUND_PENDING: [`Refunding ${amount}…`, 'Your booking is cancelled and its seats are released. This page updates when the refund is done.'],
    REFUNDED: [`Refunded ${amount}`, r?.refundedAt ? `Refunded on ${fmtDate(r.refundedAt)}. Your seats have been released.` : 'Your seats have been released.'],
    REFUND_FAILED: ['The refund could not be made', `Your booking is cancelled, but the refund of ${amount} failed. Please contact us with your booking reference.`],
  }[b.status] ?? [b.status, ''];
  setText($('refund-title'), title);
  setText($('refund-detail'), detail);
}

function renderCancel(s) {
  const b = s.booking;
  // A checked-in booking can no longer be cancelled.
  const open = b.status === 'CONFIRMED' && !b.checkIn?.checkedIn;
  show($('cancel-area'), open);
  if (!open) return;
  show($('cancel-start'), !s.confirming);
  show($('cancel-confirm'), s.confirming);
  const seats = seatsOf(b).map((p) => p.seat);
  // What a cancellation gives back under the fare rules fixed at booking:
  // the price less any cancellation fee; none at all for a fare that is
  // not refundable (the server refuses it, so the button is not offered).
  const refundable = b.refundableCents !== null && b.refundableCents !== undefined ? b.refundableCents : b.seatPrices ? null : paidCents(b);
  show($('cancel-start'), !s.confirming && refundable !== null);
  setText($('cancel-not-refundable'), refundable === null ? 'This booking\'s fare is not refundable, so it cannot be cancelled here.' : '');
  show($('cancel-not-refundable'), refundable === null);
  const amount = fmtMoney(refundable ?? 0);
  const fees = paidCents(b) - (refundable ?? 0);
  keyed($('cancel-facts'), `${amount}|${seats}`, () => [
    el('li', {
      text: fees > 0
        ? `You get a refund of ${amount} (${fmtMoney(paidCents(b))} paid, less ${fmtMoney(fees)} in cancellation fees), to the card you paid with.`
        : `You get a full refund of ${amount}, to the card you paid with.`,
    }),
    el('li', { text: `${seats.length === 1 ? 'Seat' : 'Seats'} ${seats.join(', ')} ${seats.length === 1 ? 'is' : 'are'} released and may be sold to someone else.` }),
    el('li', { text: 'A cancellation cannot be undone.' }),
  ]);
  const yes = $('cancel-yes');
  yes.disabled = s.cancelling;
  setText(yes, s.cancelling ? 'Cancelling…' : `Yes, cancel and refund ${amount}`);
  $('cancel-no').disabled = s.cancelling;
  setText($('cancel-error'), s.cancelError);
  show($('cancel-error'), Boolean(s.cancelError));
}

function render(s) {
  renderForm(s);
  show($('booking-view'), Boolean(s.booking));
  if (!s.booking) return;
  renderTrip(s.booking);
  renderCheckIn(s.booking, s);
  renderRefund(s.booking);
  renderCancel(s);
}

// ---------------------------------------------------------------- the booking

// The booking, looked up by its reference and a passenger's last name.
const lookUp = ({ reference, lastName }) => api('POST', '/api/bookings/lookup', { reference, lastName });

// A 429: no lookup until Retry-After has passed; the button counts down.
function blockFor(seconds) {
  state.blockedUntil = performance.now() + Math.max(1, seconds) * 1000;
  clearInterval(blockTimer);
  blockTimer = setInterval(() => {
    if (performance.now() >= state.blockedUntil) clearInterval(blockTimer);
    render(state);
  }, 1000);
}

function lookupFailed(e) {
  if (e.code === 'BOOKING_NOT_FOUND') return 'No booking matches that reference and last name. Check both and try again.';
  if (e.code === 'TOO_MANY_LOOKUPS') {
    blockFor(e.retryAfter || 60);
    return `Too many attempts. For your security, please wait ${waitText(e.retryAfter || 60)} before trying again.`;
  }
  return `Your booking could not be looked up: ${e.message}`;
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
}

// Every second while a refund is under way, until it is settled.
function followRefund() {
  stopPolling();
  if (!state.booking || state.booking.status !== 'REFUND_PENDING' || polls >= POLL_LIMIT) return;
  pollTimer = setTimeout(async () => {
    polls += 1;
    try {
      state.booking = await lookUp(state.asked);
      state.error = '';
    } catch (e) {
      if (e.code === 'TOO_MANY_LOOKUPS') await new Promise((r) => setTimeout(r, (e.retryAfter || 5) * 1000));
      else if (e.status && e.status < 500) state.error = lookupFailed(e);
    }
    render(state);
    followRefund();
  }, POLL_MS);
}

function showBooking(booking, asked) {
  Object.assign(state, { booking, asked, confirming: false, cancelling: false, cancelError: '', cancelKey: null, error: '', checkInError: '' });
  polls = 0;
  followRefund();
}

async function onLookup(e) {
  e.preventDefault();
  const f = state.form;
  f.touched = new Set(['reference', 'lastName']);
  const p = problems(f);
  if (p.reference || p.lastName) {
    render(state);
    (p.reference ? $('lookup-reference') : $('lookup-last-name')).focus();
    return;
  }
  const asked = { reference: normalise(f.reference), lastName: f.lastName.trim() };
  stopPolling();
  Object.assign(state, { looking: true, error: '' });
  render(state);
  try {
    showBooking(await lookUp(asked), asked);
    focusHeading('booking-title');
  } catch (err) {
    Object.assign(state, { booking: null, error: lookupFailed(err) });
  } finally {
    state.looking = false;
    render(state);
  }
}

function onInput(e) {
  const name = e.target.name;
  if (!(name in state.form)) return;
  state.form[name] = e.target.value;
  state.error = state.blockedUntil > performance.now() ? state.error : '';
  render(state);
}

function onLeave(e) {
  const name = e.target.name;
  if (name in state.form && e.target.value.trim()) state.form.touched.add(name);
  render(state);
}

// ---------------------------------------------------------------- cancel

function startCancel() {
  Object.assign(state, { confirming: true, cancelError: '' });
  render(state);
  $('cancel-title').focus();
}

function keepBooking() {
  state.confirming = false;
  render(state);
  $('cancel-start').focus();
}

const CANCEL_REFUSED = {
  REFUND_WINDOW_CLOSED: 'This booking can no longer be cancelled online: its flight departs within 24 hours.',
  BOOKING_NOT_CANCELLABLE: 'This booking has already been cancelled.',
};

async function confirmCancel() {
  const { reference, lastName } = state.asked;
  state.cancelKey ??= newKey();
  Object.assign(state, { cancelling: true, cancelError: '' });
  render(state);
  try {
    const r = await bookingCall('POST', `/api/bookings/${encodeURIComponent(reference)}/cancel`, { lastName }, { key: state.cancelKey });
    state.booking = { ...state.booking, status: r.status };
    state.confirming = false;
    focusHeading('booking-title');
    followRefund();
  } catch (err) {
    state.cancelError = CANCEL_REFUSED[err.code] ?? (err.code === 'BOOKING_NOT_FOUND' ? lookupFailed(err) : `The booking could not be cancelled: ${err.message}`);
    if (err.code === 'BOOKING_NOT_CANCELLABLE') {
      const fresh = await lookUp(state.asked).catch(() => null);
      if (fresh) showBooking(fresh, state.asked);
    }
  } finally {
    state.cancelling = false;
    render(state);
  }
}

// ---------------------------------------------------------------- check-in

async function onCheckIn() {
  Object.assign(state, { checkingIn: true, checkInError: '' });
  render(state);
  try {
    const r = await checkIn(state.asked);
    const b = state.booking;
    state.booking = { ...b, checkIn: { ...b.checkIn, checkedIn: true }, boardingPasses: r.boardingPasses };
    state.checkingIn = false;
    render(state);
    $('checkin-title').focus();
  } catch (err) {
    state.checkInError = err.code === 'BOOKING_NOT_FOUND' ? lookupFailed(err) : checkInFailed(err);
  } finally {
    state.checkingIn = false;
    render(state);
  }
}

// ---------------------------------------------------------------- start

function main() {
  const form = $('lookup-form');
  form.addEventListener('submit', onLookup);
  form.addEventListener('input', onInput);
  form.addEventListener('focusout', onLeave);
  $('cancel-start').addEventListener('click', startCancel);
  $('cancel-no').addEventListener('click', keepBooking);
  $('cancel-yes').addEventListener('click', confirmCancel);
  $('checkin-button').addEventListener('click', onCheckIn);
  $('print-passes').addEventListener('click', () => {
    document.body.classList.add('printing-passes');
    window.print();
    document.body.classList.remove('printing-passes');
  });
  const ref = new URLSearchParams(location.search).get('reference');
  if (ref) {
    state.form.reference = normalise(ref).slice(0, 12);
    $('lookup-reference').value = state.form.reference;
  }
  render(state);
}

main();
