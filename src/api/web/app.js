// flightctl web UI: flight list, live seat map, seat hold with countdown,
// payment with retry progress, and the booking's outcome. No dependencies.
//
// The server is the authority: the countdown is computed from its absolute
// `expiresAt`, the order's state comes from its event stream (or from polling
// its status when the stream is unavailable), and the seat map is re-read
// from the server every few seconds.

const MAX_SEATS = 9;
const FLIGHTS_POLL_MS = 5000;
const SEATMAP_POLL_MS = 2500;
const STATUS_POLL_MS = 2000;
const TICK_MS = 250;
const WARN_MS = 60_000;
const STORE_KEY = 'flightctl.order';

const TERMINAL = new Set(['CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED']);
const RELEASED = new Set(['FAILED', 'EXPIRED', 'CANCELLED']);
const PAYING = new Set(['PAYMENT_PENDING', 'PAYMENT_PROCESSING']);

const $ = (id) => document.getElementById(id);

const state = {
  config: {
    temporalUiUrl: '',
    temporalNamespace: 'default',
    paymentFailureRate: null,
    paymentMaxRetries: 3,
    seatReservationSeconds: 900,
  },
  flights: [],
  flightId: null,
  flight: null, // GET /api/flights/{id}, with seatMap
  seatEls: new Map(), // seat id -> <button>
  order: null, // the current order, see orderFrom()
  desired: null, // the seat set the customer asked for, while it is being sent
  syncing: false, // a POST/PUT/DELETE of the selection is in flight
  cancelRequested: false,
  submitting: false, // POST /pay in flight
  mutation: 0, // bumped after each change of the order's seats
  released: new Set(), // seats we just gave up, until the map is re-read
  events: null, // EventSource
  statusTimer: 0,
  ticker: 0,
  noticeTimer: 0,
  resetTimer: 0,
  warned: false,
};

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, extraHeaders = {}) {
  let res;
  const headers = { accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The booking service cannot be reached. Check your connection and try again.');
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error ?? `HTTP_${res.status}`, data?.message ?? res.statusText);
    err.retryAfter = Number(res.headers.get('retry-after')) || 0;
    throw err;
  }
  return data;
}

const BUSY_RETRIES = 6;

// 128 random bits as hex. (crypto.randomUUID exists only on https/localhost.)
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A booking call (hold, change, pay, cancel). A 503 changed nothing, so it is
// retried after the server's Retry-After. A create or a payment carries one
// Idempotency-Key for all its tries: a try that did reach the engine is
// answered once, never run twice.
async function bookingCall(method, path, body, { idempotent = false } = {}) {
  const headers = idempotent ? { 'Idempotency-Key': newKey() } : {};
  for (let attempt = 1; ; attempt++) {
    try {
      return await api(method, path, body, headers);
    } catch (err) {
      if (err.status !== 503 || attempt >= BUSY_RETRIES) throw err;
      const wait = Math.min(Math.max(err.retryAfter, 1), 5) * 1000;
      await sleep(wait + Math.random() * 250);
    }
  }
}

const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const fmtMoney = (cents) => money.format((cents ?? 0) / 100);

// Times are shown in the visitor's local time zone, named.
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', timeZoneName: 'short' });
const fmtDate = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `${dayFmt.format(d)} · ${timeFmt.format(d)}`;
};
const fmtDuration = (fromIso, toIso) => {
  const mins = Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 60000);
  if (!Number.isFinite(mins) || mins <= 0) return '';
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
};
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });

function mmss(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

// Sort seat ids by row then column: 2A, 2C, 10B.
function sortSeats(ids) {
  const key = (id) => {
    const m = /^(\d+)([A-Z]+)$/i.exec(id);
    return m ? [Number(m[1]), m[2]] : [Infinity, id];
  };
  return [...ids].sort((a, b) => {
    const [ra, ca] = key(a);
    const [rb, cb] = key(b);
    return ra - rb || ca.localeCompare(cb);
  });
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function show(node, visible) {
  if (node && node.hidden === visible) node.hidden = !visible;
}

const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

function holdMs() {
  return Math.max(1, state.config.seatReservationSeconds) * 1000;
}

function flightLabel(f) {
  return f ? `${f.flightNumber} · ${f.origin} → ${f.destination}` : '';
}

// ---------------------------------------------------------------- notices

function notice(text, kind = 'info', ms = 8000) {
  const box = $('notice');
  clearTimeout(state.noticeTimer);
  box.dataset.kind = kind;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.textContent = text;
  box.hidden = false;
  if (ms) state.noticeTimer = setTimeout(clearNotice, ms);
}

function clearNotice() {
  clearTimeout(state.noticeTimer);
  const box = $('notice');
  box.hidden = true;
  box.textContent = '';
}

function fatal(text) {
  const box = $('fatal');
  box.textContent = text;
  box.hidden = !text;
}

// ---------------------------------------------------------------- config

async function loadConfig() {
  try {
    Object.assign(state.config, await api('GET', '/api/config'));
  } catch {
    // defaults stay; the demo note then omits the rate
  }
  const rate = state.config.paymentFailureRate;
  const pct = typeof rate === 'number' ? `${Number((rate * 100).toFixed(1))}%` : 'some';
  setText(
    $('demo-note'),
    `Demo: payments fail at random ${pct} of the time; 00000 always succeeds, 99999 always fails.`,
  );
  const mins = Math.round(state.config.seatReservationSeconds / 60);
  const hold = mins >= 1 ? `${mins} minute${mins === 1 ? '' : 's'}` : `${state.config.seatReservationSeconds} seconds`;
  setText($('idle-text'), `Pick a flight, then click a seat to start. Your seats are held for ${hold} while you pay, and every change restarts the hold.`);
}

// ---------------------------------------------------------------- flights

async function refreshFlights() {
  try {
    const { flights } = await api('GET', '/api/flights');
    state.flights = flights;
    fatal('');
    renderFlights();
    setText($('flights-updated'), `Live · updated ${clockFmt.format(new Date())}`);
  } catch (e) {
    if (!state.flights.length) fatal(`Flights could not be loaded: ${e.message}`);
    setText($('flights-updated'), 'Reconnecting…');
  }
}

function renderFlights() {
  const list = $('flight-list');
  list.setAttribute('aria-busy', 'false');
  list.querySelector('.flights__loading')?.remove();
  if (!state.flights.length) {
    list.replaceChildren(el('li', { class: 'muted', text: 'No flights are on sale right now.' }));
    return;
  }
  list.querySelectorAll('li:not([data-flight-id])').forEach((n) => n.remove());
  const seen = new Set();
  state.flights.forEach((f, i) => {
    seen.add(f.id);
    let li = list.querySelector(`li[data-flight-id="${f.id}"]`);
    if (!li) li = buildFlightItem(f);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    updateFlightItem(li, f);
  });
  for (const li of [...list.children]) {
    if (!seen.has(li.dataset.flightId)) li.remove();
  }
}

function buildFlightItem(f) {
  const btn = el(
    'button',
    { type: 'button', class: 'flight', 'data-testid': `flight-${f.flightNumber}`, dataset: { flightId: f.id } },
    el('span', { class: 'flight__top' },
      el('span', { class: 'flight__num', 'data-field': 'number' }),
      el('span', { class: 'flight__price', 'data-field': 'price' })),
    el('span', { class: 'flight__route' },
      el('span', { 'data-field': 'route' }),
      el('span', { class: 'flight__dur', 'data-field': 'duration' })),
    el('span', { class: 'flight__when', 'data-field': 'when' }),
    el('span', { class: 'flight__seats', 'data-field': 'seats', 'data-testid': 'seats-left' }),
  );
  btn.addEventListener('click', () => selectFlight(f.id));
  return el('li', { dataset: { flightId: f.id } }, btn);
}

function updateFlightItem(li, f) {
  const field = (name) => li.querySelector(`[data-field="${name}"]`);
  const btn = li.querySelector('button');
  setText(field('number'), f.flightNumber);
  setText(field('price'), fmtMoney(f.priceCents));
  setText(field('route'), `${f.origin} → ${f.destination}`);
  setText(field('duration'), fmtDuration(f.departureTime, f.arrivalTime));
  setText(field('when'), fmtDate(f.departureTime));
  field('when').title = `Departure ${f.departureTime} (UTC)`;
  const left = f.availableSeats;
  setText(field('seats'), left === 0 ? 'Sold out' : `${left} of ${f.totalSeats} seats left`);
  field('seats').dataset.level = left === 0 ? 'none' : left <= 10 ? 'low' : 'ok';
  btn.setAttribute('aria-pressed', String(f.id === state.flightId));
  btn.setAttribute(
    'aria-label',
    `${f.flightNumber}, ${f.origin} to ${f.destination}, departs ${fmtDate(f.departureTime)}, ${fmtMoney(f.priceCents)} per seat, ${left === 0 ? 'sold out' : `${left} seats left`}`,
  );
}

function orderActive() {
  return state.order && !TERMINAL.has(state.order.status);
}

async function selectFlight(id) {
  if (id === state.flightId) {
    $('seats-title').focus({ preventScroll: true });
    $('seat-section').scrollIntoView({ behavior: 'smooth', block: 'start' });
    return;
  }
  if (orderActive() || state.syncing) {
    notice('Finish or cancel your current booking before choosing another flight.', 'warn');
    return;
  }
  if (state.order) resetOrder();
  state.flightId = id;
  state.flight = null;
  state.released.clear();
  clearNotice();
  renderFlights();
  $('seat-map').replaceChildren();
  state.seatEls.clear();
  const f = state.flights.find((x) => x.id === id);
  setText($('seat-flight'), f ? flightLabel(f) : 'Loading…');
  show($('seat-empty'), false);
  show($('seat-body'), true);
  await refreshFlight();
  render();
  $('seat-section').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// Re-read the open flight's seat map. A read that overlaps a change of our
// own selection may predate it, so it is dropped and read again.
async function refreshFlight() {
  const id = state.flightId;
  if (!id) return;
  const started = state.mutation;
  let flight;
  try {
    flight = await api('GET', `/api/flights/${id}`);
  } catch (e) {
    if (!state.flight) notice(`The seat map could not be loaded: ${e.message}`, 'error', 0);
    return;
  }
  if (id !== state.flightId) return;
  if (started !== state.mutation || state.syncing) return;
  state.flight = flight;
  state.released.clear();
  const listed = state.flights.find((f) => f.id === id);
  if (listed) {
    listed.availableSeats = flight.availableSeats;
    renderFlights();
  }
  if (!state.seatEls.size) buildSeatMap();
  renderSeats();
  renderBooking();
}

// ---------------------------------------------------------------- seat map

function buildSeatMap() {
  const f = state.flight;
  const map = $('seat-map');
  map.replaceChildren();
  state.seatEls.clear();
  setText($('seat-flight'), `${flightLabel(f)} · ${fmtMoney(f.priceCents)} per seat`);
  const seats = f.seatMap.seats;
  const cols = [...new Set(seats.map((s) => s.column))].sort();
  const left = Math.ceil(cols.length / 2);
  map.style.setProperty('--cols-left', left);
  map.style.setProperty('--cols-right', cols.length - left);

  // Column letters, with the aisle between the two halves.
  const head = el('div', { class: 'seatmap__row seatmap__row--head', 'aria-hidden': 'true' });
  cols.forEach((c, i) => {
    if (i === left) head.append(el('span', { class: 'seatmap__aisle' }));
    head.append(el('span', { class: 'seatmap__col', text: c }));
  });
  map.append(head);

  const byRow = new Map();
  for (const s of seats) {
    if (!byRow.has(s.row)) byRow.set(s.row, new Map());
    byRow.get(s.row).set(s.column, s);
  }
  for (const row of [...byRow.keys()].sort((a, b) => a - b)) {
    const line = el('div', { class: 'seatmap__row', role: 'presentation' });
    cols.forEach((c, i) => {
      if (i === left) line.append(el('span', { class: 'seatmap__aisle seatmap__rownum', 'aria-hidden': 'true', text: row }));
      const s = byRow.get(row).get(c);
      if (!s) {
        line.append(el('span', { class: 'seat seat--none', 'aria-hidden': 'true' }));
        return;
      }
      const btn = el('button', {
        type: 'button',
        class: 'seat',
        'data-testid': `seat-${s.id}`,
        dataset: { seat: s.id, row, col: c },
        text: c,
      });
      state.seatEls.set(s.id, btn);
      line.append(btn);
    });
    map.append(line);
  }
}

// What one seat looks like to this customer.
function seatView(seat) {
  const o = state.order;
  const mineNow = o && !RELEASED.has(o.status) && o.seats.includes(seat.id);
  const wanted = state.desired ? state.desired.includes(seat.id) : mineNow;
  if (o?.status === 'CONFIRMED' && mineNow) return { key: 'mine', label: 'yours (sold to you)' };
  if (mineNow && !wanted) return { key: 'mine', pending: true, label: 'releasing…' };
  if (mineNow) return { key: 'mine', label: 'selected' };
  if (wanted) return { key: 'mine', pending: true, label: 'reserving…' };
  if (seat.status === 'booked') return { key: 'booked', label: 'sold' };
  if (seat.status === 'reserved' && !state.released.has(seat.id)) {
    return { key: 'reserved', label: 'held by another customer' };
  }
  return { key: 'available', label: 'available' };
}

// Seats can be changed only before payment, while the hold is live.
function selectionLocked() {
  const o = state.order;
  if (!o || TERMINAL.has(o.status)) return false;
  if (o.status !== 'SEATS_RESERVED' || state.submitting) return true;
  return o.expiresAt !== null && o.expiresAt - Date.now() <= 0;
}

function renderSeats() {
  const f = state.flight;
  if (!f) return;
  const locked = selectionLocked();
  const confirmed = state.order?.status === 'CONFIRMED';
  for (const s of f.seatMap.seats) {
    const btn = state.seatEls.get(s.id);
    if (!btn) continue;
    const v = seatView(s);
    const cls = `seat seat--${v.key}${v.pending ? ' seat--pending' : ''}`;
    if (btn.className !== cls) btn.className = cls;
    if (btn.dataset.status !== v.key) btn.dataset.status = v.key;
    const label = `Seat ${s.id}, ${v.label}`;
    if (btn.getAttribute('aria-label') !== label) {
      btn.setAttribute('aria-label', label);
      btn.title = label;
    }
    const sold = v.key === 'booked' || v.key === 'reserved' || (v.key === 'mine' && confirmed);
    const disabled = sold || locked;
    if (btn.disabled !== disabled) btn.disabled = disabled;
  }
  $('seat-map').setAttribute('aria-busy', String(state.syncing));
}

// Arrow keys move between seats; Tab still walks them in order.
function onSeatKey(e) {
  const btn = e.target.closest('button.seat');
  if (!btn) return;
  const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  const mv = moves[e.key];
  if (!mv) return;
  e.preventDefault();
  const rows = [...$('seat-map').querySelectorAll('.seatmap__row:not(.seatmap__row--head)')];
  const grid = rows.map((r) => [...r.querySelectorAll('.seat')]);
  let r = rows.indexOf(btn.closest('.seatmap__row'));
  let c = grid[r].indexOf(btn);
  for (;;) {
    r += mv[0];
    c += mv[1];
    if (r < 0 || r >= grid.length || c < 0 || c >= grid[r].length) return;
    const next = grid[r][c];
    if (next.tagName === 'BUTTON' && !next.disabled) {
      next.focus();
      return;
    }
  }
}

function onSeatClick(e) {
  const btn = e.target.closest('button.seat');
  if (!btn || btn.disabled) return;
  const id = btn.dataset.seat;
  if (selectionLocked()) return;
  // After an outcome, picking a seat starts a new booking.
  if (state.order && TERMINAL.has(state.order.status)) {
    const o = state.order;
    if (RELEASED.has(o.status)) for (const s of o.seats) state.released.add(s);
    resetOrder();
    clearNotice();
  }
  const current = state.desired ?? (orderActive() ? state.order.seats : []);
  let next;
  if (current.includes(id)) {
    next = current.filter((s) => s !== id);
  } else {
    if (current.length >= MAX_SEATS) {
      notice(`You can hold at most ${MAX_SEATS} seats in one booking.`, 'warn');
      return;
    }
    next = [...current, id];
  }
  state.desired = next;
  state.cancelRequested = false;
  renderSeats();
  renderBooking();
  syncSelection();
}

// ---------------------------------------------------------------- the order

function orderFrom(s, previous = {}) {
  return {
    orderId: s.orderId,
    workflowId: s.workflowId ?? previous.workflowId ?? `booking-${s.orderId}`,
    flightId: s.flightId ?? previous.flightId ?? state.flightId,
    status: s.status,
    seats: s.seats ?? previous.seats ?? [],
    expiresAt: s.expiresAt ? Date.parse(s.expiresAt) : previous.expiresAt ?? null,
    paymentAttempts: s.paymentAttempts ?? previous.paymentAttempts ?? 0,
    maxPaymentAttempts: s.maxPaymentAttempts ?? previous.maxPaymentAttempts ?? state.config.paymentMaxRetries,
    lastError: s.lastError !== undefined ? s.lastError : previous.lastError ?? null,
    totalPriceCents: s.totalPriceCents ?? previous.totalPriceCents ?? null,
  };
}

function remember() {
  try {
    if (orderActive()) {
      const { orderId, workflowId, flightId } = state.order;
      sessionStorage.setItem(STORE_KEY, JSON.stringify({ orderId, workflowId, flightId }));
    } else {
      sessionStorage.removeItem(STORE_KEY);
    }
  } catch {
    // storage may be unavailable (private mode); resuming is a nicety
  }
}

// Send the selection the customer asked for until the server agrees with it:
// POST for the first seat, PUT for every change, DELETE when none is left.
async function syncSelection() {
  if (state.syncing) return;
  state.syncing = true;
  let refresh = false;
  try {
    for (;;) {
      const want = state.desired;
      const o = orderActive() ? state.order : null;
      if (!want) break;
      if (!o && want.length === 0) break;
      if (o && want.length && sameSet(want, o.seats)) break;
      if (o && o.status !== 'SEATS_RESERVED') break;
      refresh = true;
      try {
        if (!o) await createOrder(want);
        else if (want.length === 0) await cancelOrder();
        else await changeSeats(want);
      } catch (e) {
        await handleSelectionError(e);
        break;
      }
    }
  } finally {
    state.syncing = false;
    state.desired = null;
    state.cancelRequested = false;
    render();
    if (refresh) refreshFlight();
  }
}

async function createOrder(seats) {
  const r = await bookingCall('POST', '/api/orders', { flightId: state.flightId, seats }, { idempotent: true });
  state.order = orderFrom(r, { flightId: state.flightId, totalPriceCents: null });
  state.mutation++;
  state.warned = false;
  remember();
  openEvents();
  startTicker();
  flashReset(true);
  clearNotice();
}

async function changeSeats(seats) {
  const o = state.order;
  const before = o.seats;
  const r = await bookingCall('PUT', `/api/orders/${o.orderId}/seats`, { seats });
  if (state.order !== o) return;
  for (const s of before) if (!r.seats.includes(s)) state.released.add(s);
  o.seats = r.seats;
  o.status = r.status;
  o.expiresAt = Date.parse(r.expiresAt);
  state.mutation++;
  state.warned = false;
  flashReset(false);
}

async function cancelOrder() {
  const o = state.order;
  const explicit = state.cancelRequested;
  await bookingCall('DELETE', `/api/orders/${o.orderId}`);
  for (const s of o.seats) state.released.add(s);
  state.mutation++;
  resetOrder();
  notice(
    explicit
      ? 'Your booking was cancelled and your seats have been released.'
      : 'Selection cleared. Your hold has been released.',
    'info',
  );
  refreshFlights();
}

async function handleSelectionError(e) {
  const o = state.order;
  if (e.code === 'SEATS_UNAVAILABLE') {
    const taken = (e.message.split(':')[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const which = taken.length
      ? `${taken.length === 1 ? 'Seat' : 'Seats'} ${taken.join(', ')} ${taken.length === 1 ? 'was' : 'were'} just taken by another customer.`
      : 'A seat you picked was just taken by another customer.';
    notice(`${which} The seat map has been refreshed — please choose another seat.`, 'error', 10000);
    state.mutation++; // drop any map read that is in flight; read afresh
    return;
  }
  if (e.code === 'ORDER_EXPIRED' || e.code === 'ORDER_NOT_MODIFIABLE' || e.code === 'ORDER_NOT_FOUND') {
    if (o) await pollStatus();
    if (orderActive()) notice(e.message, 'error');
    return;
  }
  notice(`Your selection could not be saved: ${e.message}`, 'error', 10000);
}

function resetOrder() {
  closeEvents();
  stopTicker();
  state.order = null;
  state.submitting = false;
  state.warned = false;
  remember();
  const input = $('pay-code');
  input.value = '';
  validateCode(false);
}

function startOver() {
  const o = state.order;
  if (o && RELEASED.has(o.status)) for (const s of o.seats) state.released.add(s);
  resetOrder();
  clearNotice();
  render();
  refreshFlight();
  refreshFlights();
  $('seats-title').focus({ preventScroll: true });
  $('seat-section').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// A status from the event stream or from polling.
function applyStatus(s) {
  const o = state.order;
  if (!o || !s || s.orderId !== o.orderId || TERMINAL.has(o.status)) return;
  if (s.status === 'SEATS_RESERVED') {
    // Our own change in flight answers for itself; never step back.
    if (state.syncing || state.submitting || o.status !== 'SEATS_RESERVED') return;
    const exp = s.expiresAt ? Date.parse(s.expiresAt) : null;
    if (exp !== null && o.expiresAt !== null && exp < o.expiresAt) return;
    if (exp !== null && o.expiresAt !== null && exp > o.expiresAt + 1000) {
      state.warned = false;
      flashReset(false); // changed elsewhere (another tab)
    }
    Object.assign(o, orderFrom(s, o));
    render();
    return;
  }
  Object.assign(o, orderFrom(s, o));
  if (PAYING.has(o.status)) state.submitting = false;
  if (TERMINAL.has(o.status)) onTerminal();
  render();
}

function onTerminal() {
  const o = state.order;
  closeEvents();
  stopTicker();
  state.submitting = false;
  remember();
  if (RELEASED.has(o.status)) for (const s of o.seats) state.released.add(s);
  state.mutation++;
  if (o.status === 'CANCELLED') {
    resetOrder();
    notice('This booking was cancelled and its seats have been released.', 'info');
  }
  render();
  refreshFlight();
  refreshFlights();
  const title = { CONFIRMED: 'confirmed-title', FAILED: 'failed-title', EXPIRED: 'expired-title' }[o.status];
  if (title) {
    requestAnimationFrame(() => {
      const h = $(title);
      h.focus({ preventScroll: true });
      h.scrollIntoView({ behavior: 'smooth', block: 'center' });
    });
  }
}

// ---------------------------------------------------------------- live status

function openEvents() {
  closeEvents();
  const o = state.order;
  if (!o || TERMINAL.has(o.status)) return;
  if (!('EventSource' in window)) {
    startStatusPolling();
    return;
  }
  const es = new EventSource(`/api/orders/${encodeURIComponent(o.orderId)}/events`);
  state.events = es;
  es.onmessage = (ev) => {
    let s;
    try {
      s = JSON.parse(ev.data);
    } catch {
      return;
    }
    applyStatus(s);
    if (TERMINAL.has(s.status)) es.close();
  };
  es.addEventListener('error', (ev) => {
    // A server-sent `event: error` carries data and the stream goes on;
    // a dropped or refused connection does not: poll instead.
    if (ev.data) return;
    es.close();
    if (state.events === es) state.events = null;
    if (orderActive()) startStatusPolling();
  });
}

function closeEvents() {
  state.events?.close();
  state.events = null;
  clearInterval(state.statusTimer);
  state.statusTimer = 0;
}

function startStatusPolling() {
  if (state.statusTimer) return;
  state.statusTimer = setInterval(pollStatus, STATUS_POLL_MS);
  pollStatus();
}

async function pollStatus() {
  const o = state.order;
  if (!o || TERMINAL.has(o.status)) {
    clearInterval(state.statusTimer);
    state.statusTimer = 0;
    return;
  }
  try {
    applyStatus(await api('GET', `/api/orders/${encodeURIComponent(o.orderId)}/status`));
  } catch {
    // keep polling; the service may be restarting
  }
}

// ---------------------------------------------------------------- countdown

function startTicker() {
  stopTicker();
  state.ticker = setInterval(tick, TICK_MS);
  tick();
}

function stopTicker() {
  clearInterval(state.ticker);
  state.ticker = 0;
  show($('holdbar'), false);
}

function tick() {
  const o = state.order;
  if (!o || o.status !== 'SEATS_RESERVED' || o.expiresAt === null) return;
  const left = o.expiresAt - Date.now();
  const ended = left <= 0;
  const warn = !ended && left <= WARN_MS;
  const timer = $('timer');
  const stateName = ended ? 'ended' : warn ? 'warning' : 'ok';
  if (timer.dataset.state !== stateName) {
    timer.dataset.state = stateName;
    $('holdbar').dataset.state = stateName;
    renderSeats();
    renderBooking();
  }
  const text = mmss(left);
  setText($('timer-value'), text);
  setText($('holdbar-time'), text);
  $('timer-fill').style.transform = `scaleX(${Math.min(1, Math.max(0, left / holdMs()))})`;
  if (warn && !state.warned) {
    state.warned = true;
    setNote('Less than a minute left — pay now or your seats will be released.', 'warn');
  }
  if (ended) {
    setNote('Time is up — releasing your seats…', 'warn');
    // The workflow's timer decides; confirm with the server.
    startStatusPolling();
  }
}

function setNote(text, kind) {
  const note = $('timer-note');
  setText(note, text);
  note.dataset.kind = kind;
}

// Show that the hold was (re)started at its full length.
function flashReset(first) {
  const timer = $('timer');
  timer.classList.remove('is-reset');
  void timer.offsetWidth; // restart the animation
  timer.classList.add('is-reset');
  clearTimeout(state.resetTimer);
  state.resetTimer = setTimeout(() => timer.classList.remove('is-reset'), 1600);
  const full = mmss(holdMs());
  setNote(first ? `Held for ${full}. Any change to your seats restarts the hold.` : `Hold restarted — back to ${full}.`, 'reset');
  state.warned = false; // within the last minute, the warning still shows
  tick();
}

// ---------------------------------------------------------------- payment

function validateCode(showErrors) {
  const input = $('pay-code');
  const v = input.value;
  let msg = '';
  if (/\D/.test(v)) msg = 'Use digits only — the payment code is exactly 5 digits.';
  else if (v.length > 0 && v.length < 5 && showErrors) msg = `Enter all 5 digits (${5 - v.length} more).`;
  else if (v.length === 0 && showErrors) msg = 'Enter your 5-digit payment code.';
  const valid = /^\d{5}$/.test(v);
  const err = $('pay-error');
  setText(err, msg);
  show(err, Boolean(msg));
  input.setAttribute('aria-invalid', String(Boolean(msg)));
  $('pay-button').disabled = !valid || state.syncing || state.submitting || selectionLocked();
  return valid;
}

async function onPay(e) {
  e.preventDefault();
  const o = state.order;
  if (!validateCode(true) || !o || state.syncing || state.submitting || selectionLocked()) return;
  const code = $('pay-code').value;
  state.submitting = true;
  render();
  try {
    const r = await bookingCall('POST', `/api/orders/${encodeURIComponent(o.orderId)}/pay`, { paymentCode: code }, { idempotent: true });
    if (state.order === o && !TERMINAL.has(o.status)) {
      if (o.status === 'SEATS_RESERVED') o.status = r.status;
      $('pay-code').value = '';
    }
  } catch (err) {
    if (state.order !== o) return;
    state.submitting = false;
    if (err.code === 'INVALID_PAYMENT_CODE') {
      const box = $('pay-error');
      setText(box, capitalise(err.message));
      show(box, true);
    } else if (err.code === 'ORDER_EXPIRED' || err.code === 'ORDER_NOT_MODIFIABLE') {
      await pollStatus();
    } else {
      const box = $('pay-error');
      setText(box, `Payment could not be started: ${err.message}`);
      show(box, true);
    }
  } finally {
    if (state.order === o) state.submitting = false;
    render();
  }
}

function onCancel() {
  if ((!orderActive() && !state.syncing) || selectionLocked()) return;
  state.desired = [];
  state.cancelRequested = true;
  renderSeats();
  syncSelection().then(() => {
    if (!state.order) $('seats-title').focus({ preventScroll: true });
  });
}

// Which attempt is running: `paymentAttempts` counts attempts started and
// `lastError` names the last failed one ("… (attempt 1)").
function attemptInfo(o) {
  const max = o.maxPaymentAttempts || state.config.paymentMaxRetries || 3;
  const started = o.paymentAttempts || 0;
  if (!o.lastError) return { retrying: false, n: Math.max(1, started), max, failed: 0 };
  const m = /attempt (\d+)/i.exec(o.lastError);
  const failed = m ? Number(m[1]) : started;
  return { retrying: true, n: Math.min(max, Math.max(started, failed + 1)), max, failed };
}

// ---------------------------------------------------------------- render

function render() {
  renderSeats();
  renderBooking();
}

function renderBooking() {
  const o = state.order;
  const f = state.flight ?? state.flights.find((x) => x.id === o?.flightId);
  const status = o?.status;
  const paying = Boolean(o) && (PAYING.has(status) || state.submitting);
  const holding = Boolean(o) && status === 'SEATS_RESERVED' && !state.submitting;
  const pendingFirst = !o && state.desired?.length > 0;

  show($('panel-idle'), !o && !pendingFirst);
  show($('panel-hold'), holding || pendingFirst);
  show($('panel-paying'), paying);
  show($('panel-confirmed'), status === 'CONFIRMED');
  show($('panel-failed'), status === 'FAILED');
  show($('panel-expired'), status === 'EXPIRED');

  // Link to the workflow in the Temporal UI.
  const { temporalUiUrl, temporalNamespace } = state.config;
  const wf = o && temporalUiUrl ? `${temporalUiUrl}/namespaces/${encodeURIComponent(temporalNamespace)}/workflows/${encodeURIComponent(o.workflowId)}` : '';
  show($('wf-wrap'), Boolean(wf));
  if (wf && $('wf-link').getAttribute('href') !== wf) {
    $('wf-link').setAttribute('href', wf);
    $('wf-link').title = `Workflow ${o.workflowId} in the Temporal UI (opens in a new tab)`;
  }

  const seats = sortSeats(state.desired ?? o?.seats ?? []);
  const price = f?.priceCents ?? 0;

  if (holding || pendingFirst) {
    flightLines($('hold-flight'), f);
    fillChips($('hold-seats'), seats);
    setText($('hold-total'), `${fmtMoney(seats.length * price)}${seats.length > 1 ? ` (${seats.length} × ${fmtMoney(price)})` : ''}`);
    $('pay-button').textContent = seats.length ? `Pay ${fmtMoney(seats.length * price)}` : 'Pay';
    $('cancel-button').disabled = selectionLocked();
    if (pendingFirst) {
      setText($('timer-value'), '--:--');
      setText($('timer-note'), 'Reserving your seats…');
    }
    validateCode(false);
    const ended = o && o.expiresAt !== null && o.expiresAt - Date.now() <= 0;
    $('pay-form').toggleAttribute('inert', Boolean(ended));
  }

  // Pinned summary at phone width.
  const bar = $('holdbar');
  show(bar, Boolean(holding && seats.length));
  if (holding) setText($('holdbar-seats'), `${seats.length} seat${seats.length === 1 ? '' : 's'} · ${seats.join(', ')}`);

  if (paying) renderPaying(o, f, seats);

  if (status === 'CONFIRMED') {
    setText($('confirm-order'), o.orderId);
    flightLines($('confirm-flight'), f);
    fillChips($('confirm-seats'), sortSeats(o.seats));
    setText($('confirm-total'), fmtMoney(o.totalPriceCents ?? o.seats.length * price));
  }
  if (status === 'FAILED') {
    setText($('failed-reason'), o.lastError ? `Reason: ${capitalise(o.lastError)}.`.replace(/\.\.$/, '.') : '');
  }
}

function renderPaying(o, f, seats) {
  const info = attemptInfo(o);
  if (!info.retrying) {
    setText($('pay-title'), 'Validating payment…');
    setText($('pay-detail'), state.submitting && !PAYING.has(o.status) ? 'Sending your payment code.' : `Attempt ${info.n} of ${info.max}. Your seats stay held meanwhile.`);
  } else {
    setText($('pay-title'), `Payment failed — retrying (attempt ${info.n} of ${info.max})`);
    setText($('pay-detail'), 'Your seats stay held while we retry.');
  }
  const last = $('pay-last-error');
  setText(last, o.lastError ? `Last error: ${o.lastError}` : '');
  show(last, Boolean(o.lastError));
  const list = $('pay-attempts');
  if (list.children.length !== info.max) {
    list.replaceChildren(...Array.from({ length: info.max }, (_, i) => el('li', { text: `${i + 1}` })));
  }
  [...list.children].forEach((li, i) => {
    const n = i + 1;
    li.dataset.state = n <= info.failed ? 'failed' : n === info.n ? 'active' : 'todo';
  });
  setText($('pay-seats'), `${f ? `${f.flightNumber} · ` : ''}Seats ${seats.join(', ')} · ${fmtMoney(o.totalPriceCents ?? seats.length * (f?.priceCents ?? 0))}`);
}

function flightLines(box, f) {
  const key = f ? `${f.id}|${f.departureTime}` : '';
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...(f ? [el('span', { class: 'line', text: flightLabel(f) }), el('span', { class: 'line muted small', text: `Departs ${fmtDate(f.departureTime)}` })] : []));
}

function fillChips(box, seats) {
  const key = seats.join(',');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...(seats.length ? seats.map((s) => el('span', { class: 'chip', text: s })) : [el('span', { class: 'muted', text: 'none' })]));
}

// ---------------------------------------------------------------- start

async function resume() {
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? 'null');
  } catch {
    saved = null;
  }
  if (!saved?.orderId) return;
  try {
    const s = await api('GET', `/api/orders/${encodeURIComponent(saved.orderId)}/status`);
    if (TERMINAL.has(s.status)) {
      sessionStorage.removeItem(STORE_KEY);
      return;
    }
    await selectFlight(s.flightId);
    state.order = orderFrom(s, saved);
    remember();
    openEvents();
    if (s.status === 'SEATS_RESERVED') startTicker();
    render();
  } catch {
    sessionStorage.removeItem(STORE_KEY);
  }
}

function every(ms, fn) {
  setInterval(() => {
    if (!document.hidden) fn();
  }, ms);
}

async function main() {
  const map = $('seat-map');
  map.addEventListener('click', onSeatClick);
  map.addEventListener('keydown', onSeatKey);
  $('pay-form').addEventListener('submit', onPay);
  $('pay-code').addEventListener('input', () => validateCode(false));
  $('pay-code').addEventListener('blur', () => {
    if ($('pay-code').value) validateCode(true);
  });
  $('cancel-button').addEventListener('click', onCancel);
  document.querySelectorAll('[data-action="restart"]').forEach((b) => b.addEventListener('click', startOver));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      refreshFlights();
      refreshFlight();
    }
  });

  await loadConfig();
  await refreshFlights();
  await resume();
  render();

  every(FLIGHTS_POLL_MS, refreshFlights);
  every(SEATMAP_POLL_MS, () => {
    if (!state.syncing) refreshFlight();
  });
}

main();
