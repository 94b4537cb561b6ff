// The seat map: its layout, each seat as this customer sees it, and arrow
// key movement between seats.

import { $, el, setAttr } from '/assets/dom.js';
import { heldSeats, selectionLocked } from '/assets/booking.js';
import { fmtMoney } from '/assets/format.js';

const FEATURE_WORDS = { WINDOW: 'window', AISLE: 'aisle', MIDDLE: 'middle', EXIT_ROW: 'exit row', EXTRA_LEGROOM: 'extra legroom' };

// "Business, window, exit row, $960.00": what a seat is and costs, for its
// accessible name and its tooltip.
function seatFacts(s, cabins) {
  const cabin = cabins.find((c) => c.code === s.cabin);
  const words = [cabin?.name ?? s.cabin, ...(s.features ?? []).map((f) => FEATURE_WORDS[f] ?? f)];
  if (s.priceCents !== undefined) words.push(fmtMoney(s.priceCents));
  return words.filter(Boolean).join(', ');
}

// The legend: each cabin's colour, rows and fare.
function buildLegend(flight) {
  const cabins = flight.seatMap.cabins ?? [];
  const legend = $('cabin-legend');
  if (!legend) return;
  legend.replaceChildren(
    ...cabins.map((c) =>
      el('li', { class: `cabin-legend__item cabin--${c.code.toLowerCase()}` },
        el('span', { class: 'cabin-legend__swatch', 'aria-hidden': 'true' }),
        el('span', { text: `${c.name}: rows ${c.firstRow}–${c.lastRow}, from ${fmtMoney(c.priceCents)}${c.refundable ? '' : ', non-refundable'}` }),
      ),
    ),
  );
}

// Rows of buttons, with the aisle between the two halves of the columns.
export function buildSeatMap(flight) {
  const map = $('seat-map');
  const seats = flight.seatMap.seats;
  const cabins = flight.seatMap.cabins ?? [];
  buildLegend(flight);
  const cols = [...new Set(seats.map((s) => s.column))].sort();
  const left = Math.ceil(cols.length / 2);
  map.style.setProperty('--cols-left', left);
  map.style.setProperty('--cols-right', cols.length - left);

  const head = el('div', { class: 'seatmap__row seatmap__row--head', 'aria-hidden': 'true' });
  cols.forEach((c, i) => {
    if (i === left) head.append(el('span', { class: 'seatmap__aisle' }));
    head.append(el('span', { class: 'seatmap__col', text: c }));
  });

  const byRow = new Map();
  for (const s of seats) {
    if (!byRow.has(s.row)) byRow.set(s.row, new Map());
    byRow.get(s.row).set(s.column, s);
  }
  const rows = [...byRow.keys()].sort((a, b) => a - b).map((row) => {
    const line = el('div', { class: 'seatmap__row', role: 'presentation' });
    cols.forEach((c, i) => {
      if (i === left) line.append(el('span', { class: 'seatmap__aisle seatmap__rownum', 'aria-hidden': 'true', text: row }));
      const s = byRow.get(row).get(c);
      line.append(
        s
          ? el('button', { type: 'button', class: 'seat', 'data-testid': `seat-${s.id}`, dataset: { seat: s.id, row, col: c, cabin: (s.cabin ?? '').toLowerCase(), facts: seatFacts(s, cabins), price: s.priceCents ?? '' }, text: c })
          : el('span', { class: 'seat seat--none', 'aria-hidden': 'true' }),
      );
    });
    return line;
  });
  map.replaceChildren(head, ...rows);
  // A focused seat's cabin, features and price, for sighted keyboard users
  // (its accessible name says the same).
  map.onfocusin = (e) => {
    const btn = e.target.closest('button.seat');
    const focus = $('seat-focus');
    if (btn && focus) focus.textContent = `Seat ${btn.dataset.seat}: ${btn.dataset.facts}`;
  };
}

// What one seat looks like to this customer: `status` is the server's
// (available, reserved, booked); our own seats and wishes come first.
function seatView(id, status, state) {
  const { booking, released } = state;
  const mine = heldSeats(booking).includes(id);
  const wanted = booking.want ? booking.want.includes(id) : mine;
  if (mine && booking.phase === 'done') return { key: 'mine', label: 'yours (sold to you)' };
  if (mine && !wanted) return { key: 'mine', pending: true, label: 'releasing…' };
  if (mine) return { key: 'mine', label: 'selected' };
  if (wanted) return { key: 'mine', pending: true, label: 'reserving…' };
  if (status === 'booked') return { key: 'booked', label: 'sold' };
  if (status === 'reserved' && !released.has(id)) return { key: 'reserved', label: 'held by another customer' };
  return { key: 'available', label: 'available' };
}

export function renderSeats(state) {
  const map = $('seat-map');
  const locked = selectionLocked(state.booking);
  for (const btn of map.querySelectorAll('button.seat')) {
    const id = btn.dataset.seat;
    const v = seatView(id, state.seatStatus.get(id), state);
    const cls = `seat seat--${v.key}${v.pending ? ' seat--pending' : ''}`;
    if (btn.className !== cls) btn.className = cls;
    setAttr(btn, 'data-status', v.key);
    const facts = btn.dataset.facts ? `${btn.dataset.facts}, ` : '';
    const label = `Seat ${id}, ${facts}${v.label}`;
    setAttr(btn, 'aria-label', label);
    setAttr(btn, 'title', label);
    const taken = v.key === 'booked' || v.key === 'reserved' || (v.key === 'mine' && state.booking.phase === 'done');
    if (btn.disabled !== (taken || locked)) btn.disabled = taken || locked;
  }
  setAttr(map, 'aria-busy', String(state.booking.want !== null));
}

// Arrow keys move between seats; Tab still walks them in order.
export function onSeatKey(e) {
  const btn = e.target.closest('button.seat');
  const move = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[e.key];
  if (!btn || !move) return;
  e.preventDefault();
  const rows = [...$('seat-map').querySelectorAll('.seatmap__row:not(.seatmap__row--head)')];
  const grid = rows.map((r) => [...r.querySelectorAll('.seat')]);
  let r = rows.indexOf(btn.closest('.seatmap__row'));
  let c = grid[r].indexOf(btn);
  for (;;) {
    r += move[0];
    c += move[1];
    if (r < 0 || r >= grid.length || c < 0 || c >= grid[r].length) return;
    const next = grid[r][c];
    if (next.tagName === 'BUTTON' && !next.disabled) {
      next.focus();
      return;
    }
  }
}
