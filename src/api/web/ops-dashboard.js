// The dashboard: every flight's seats (available, held, sold), revenue,
// bookings per minute as a sparkline, and its sales switch. The list comes
// from the flights' event stream (/api/ops/flights/events), polled only
// while the stream is down; what changes is said, a few seconds apart, to
// screen readers while the dashboard is on screen.

import { $, el, keyed, setAttr, setText } from '/assets/dom.js';
import { fmtClock, fmtDate, fmtMoney, plural } from '/assets/format.js';
import { openStream } from '/assets/live.js';
import { announce, opsApi, shownError, showError } from '/assets/ops-common.js';

const POLL_MS = 5000;
const ANNOUNCE_MS = 4000;
const SVG = 'http://www.w3.org/2000/svg';
const SPARK = { width: 120, height: 28, pad: 3 };

const state = {
  flights: [],
  live: null, // the stream: open (true), down (false), not yet (null)
  updated: null, // when the list was last read (the operator's clock)
  switching: new Set(), // flights whose sales switch is being sent
};

let stream = null;
let visible = false;
const listeners = [];
const changed = new Map(); // flight number -> what to say about it
let announceTimer = 0;

export const flights = () => state.flights;

// `fn(flights)` runs whenever the list changes.
export function onFlights(fn) {
  listeners.push(fn);
}

// ---------------------------------------------------------------- the sparkline

const svg = (tag, attrs) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

export function sparkText(counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return 'No bookings in the last 30 minutes';
  const peak = Math.max(...counts);
  const last = counts.at(-1);
  return `${plural(total, 'booking')} in the last 30 minutes, at most ${peak} a minute, ${last} in the last minute`;
}

// An inline SVG line of `counts` (oldest first), named by its text.
export function sparkline(counts) {
  const { width, height, pad } = SPARK;
  const peak = Math.max(1, ...counts);
  const step = (width - 2 * pad) / Math.max(1, counts.length - 1);
  const xy = counts.map((n, i) => [pad + i * step, height - pad - (n / peak) * (height - 2 * pad)]);
  const points = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const [lx, ly] = xy.at(-1) ?? [width - pad, height - pad];
  const label = sparkText(counts);
  const node = svg('svg', { class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  const title = svg('title', {});
  title.textContent = label;
  node.append(
    title,
    svg('line', { class: 'spark__base', x1: pad, y1: height - pad, x2: width - pad, y2: height - pad }),
    svg('polyline', { class: 'spark__line', points }),
    svg('circle', { class: 'spark__dot', cx: lx.toFixed(1), cy: ly.toFixed(1), r: 2.5 }),
  );
  return node;
}

// ---------------------------------------------------------------- the table

function buildRow(f) {
  const td = (field, cls) => el('td', { class: cls, 'data-field': field });
  const button = el('button', { type: 'button', class: 'btn btn--small', 'data-field': 'switch', dataset: { flightId: f.id } });
  return el(
    'tr',
    { dataset: { flightId: f.id }, 'data-testid': `ops-flight-${f.flightNumber}` },
    el('th', { scope: 'row', 'data-field': 'flight' }),
    td('departs'),
    td('available', 'num'),
    td('held', 'num'),
    td('sold', 'num'),
    td('revenue', 'num'),
    td('spark'),
    el('td', { class: 'ops-sales' }, el('span', { class: 'status-badge', 'data-field': 'sales' }), ' ', button),
  );
}

function updateRow(tr, f) {
  const field = (name) => tr.querySelector(`[data-field="${name}"]`);
  keyed(field('flight'), `${f.flightNumber}|${f.origin}|${f.destination}`, () => [
    el('span', { class: 'ops-flight__num', text: f.flightNumber }),
    ' ',
    el('span', { class: 'ops-flight__route', text: `${f.origin} → ${f.destination}` }),
  ]);
  setText(field('departs'), fmtDate(f.departureTime));
  setText(field('available'), `${f.available} of ${f.totalSeats}`);
  setText(field('held'), String(f.held));
  setText(field('sold'), String(f.sold));
  setText(field('revenue'), fmtMoney(f.revenueCents));
  const counts = f.bookingsPerMinute ?? [];
  keyed(field('spark'), counts.join(), () => [sparkline(counts)]);
  updateSwitch(field('sales'), field('switch'), f);
}

function updateSwitch(badgeNode, button, f) {
  // A scheduled sale not open yet: when it opens (buyers wait in its queue).
  const opensAt = f.salesOpenAt ? new Date(f.salesOpenAt) : null;
  const scheduled = f.salesOpen && opensAt && opensAt > new Date();
  setText(badgeNode, scheduled ? `Opens ${fmtDate(f.salesOpenAt)}` : f.salesOpen ? 'On sale' : 'Sales closed');
  setAttr(badgeNode, 'data-kind', f.salesOpen ? 'ok' : 'bad');
  const busy = state.switching.has(f.id);
  const verb = f.salesOpen ? 'Close sales' : 'Open sales';
  const text = busy ? (f.salesOpen ? 'Closing…' : 'Opening…') : verb;
  if (button.dataset.text !== `${text}|${f.flightNumber}`) {
    button.dataset.text = `${text}|${f.flightNumber}`;
    button.replaceChildren(text, el('span', { class: 'visually-hidden', text: ` for ${f.flightNumber}` }));
  }
  button.className = `btn btn--small ${f.salesOpen ? 'btn--ghost' : 'btn--secondary'}`;
  button.disabled = busy;
}

function renderTable() {
  const body = $('flights-body');
  if (!state.updated) return;
  if (!state.flights.length) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'No flights yet.' })));
    return;
  }
  const rows = new Map([...body.querySelectorAll('tr[data-flight-id]')].map((tr) => [tr.dataset.flightId, tr]));
  const ordered = state.flights.map((f) => {
    const tr = rows.get(f.id) ?? buildRow(f);
    updateRow(tr, f);
    return tr;
  });
  if (ordered.length !== body.children.length || ordered.some((tr, i) => body.children[i] !== tr)) body.replaceChildren(...ordered);
}

function render() {
  const label = $('flights-live');
  const at = state.updated ? ` · updated ${fmtClock(state.updated)}` : '';
  setText(label, state.live === false ? `Reconnecting…${at}` : state.live ? `Live${at}` : at.slice(3));
  setAttr(label, 'data-live', String(state.live !== false));
  renderTable();
}

// ---------------------------------------------------------------- changes

const seatsText = (f) => `${f.flightNumber}: ${f.available} available, ${f.held} held, ${f.sold} sold`;

// Say what changed in the counts, a few seconds apart, while on screen.
function noteChanges(before, after) {
  const old = new Map(before.map((f) => [f.id, f]));
  for (const f of after) {
    const was = old.get(f.id);
    if (!was) changed.set(f.flightNumber, `${f.flightNumber} added`);
    else if (was.available !== f.available || was.held !== f.held || was.sold !== f.sold) changed.set(f.flightNumber, seatsText(f));
  }
  if (!changed.size || announceTimer) return;
  announceTimer = setTimeout(() => {
    announceTimer = 0;
    const texts = [...changed.values()];
    changed.clear();
    if (visible) announce(texts.length > 3 ? `${texts.slice(0, 3).join('. ')}. And ${plural(texts.length - 3, 'more flight')}.` : `${texts.join('. ')}.`);
  }, ANNOUNCE_MS);
}

function setFlights(list) {
  if (state.updated) noteChanges(state.flights, list);
  state.flights = list;
  state.updated = new Date();
  render();
  listeners.forEach((fn) => fn(list));
}

// One flight as an answer gave it, merged into the list. An answer may
// carry the flight alone, without its sales: a flight not listed yet has
// sold nothing, one listed keeps its counts until the stream tells.
export function putFlight(f) {
  const known = state.flights.find((x) => x.id === f.id);
  const fresh = { available: f.availableSeats ?? f.totalSeats, held: 0, sold: 0, revenueCents: 0, bookingsPerMinute: [] };
  const merged = { ...(known ?? fresh), ...f };
  setFlights(known ? state.flights.map((x) => (x === known ? merged : x)) : [...state.flights, merged]);
}

async function poll() {
  try {
    setFlights((await opsApi('GET', '/api/ops/flights')).flights);
  } catch (err) {
    if (shownError(err)) showError(`The flights could not be read: ${err.message}`);
  }
}

async function toggleSales(id) {
  const f = state.flights.find((x) => x.id === id);
  if (!f || state.switching.has(id)) return;
  const open = !f.salesOpen;
  state.switching.add(id);
  render();
  try {
    putFlight(await opsApi('POST', `/api/ops/flights/${encodeURIComponent(id)}/sales`, { open }));
    announce(`Sales of ${f.flightNumber} ${open ? 'opened' : 'closed'}.`);
    showError('');
  } catch (err) {
    if (shownError(err)) showError(`Sales of ${f.flightNumber} could not be ${open ? 'opened' : 'closed'}: ${err.message}`);
  } finally {
    state.switching.delete(id);
    render();
  }
}

// ---------------------------------------------------------------- lifecycle

export function initDashboard() {
  $('flights-body').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-flight-id]');
    if (button) toggleSales(button.dataset.flightId);
  });
}

// Signed in: follow the flights.
export function startFlights() {
  stream?.close();
  stream = openStream('/api/ops/flights/events', {
    on: { flights: (data) => setFlights(data.flights) },
    polls: [[poll, POLL_MS]],
    onLive: (live) => {
      state.live = live;
      render();
    },
  });
}

// Signed out: nothing more is read, nothing is kept.
export function stopFlights() {
  stream?.close();
  stream = null;
  clearTimeout(announceTimer);
  announceTimer = 0;
  changed.clear();
  Object.assign(state, { flights: [], live: null, updated: null });
  $('flights-body').replaceChildren(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'Loading flights…' })));
  listeners.forEach((fn) => fn([]));
}

export const dashboardView = {
  title: 'Flights',
  enter() {
    visible = true;
    render();
  },
  leave() {
    visible = false;
  },
};
