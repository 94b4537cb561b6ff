// The flight list: one button per flight, kept in the server's order and
// updated in place. A button's name is its text, so what a screen reader
// says (and what voice control answers to) is what is seen; spaces between
// its parts keep their words apart in that name.

import { $, el, setAttr, setText } from '/assets/dom.js';
import { fmtClock, fmtDate, fmtDuration, fmtMoney } from '/assets/format.js';

function buildItem(f) {
  const field = (name, cls) => el('span', { class: cls, 'data-field': name });
  return el(
    'li',
    { dataset: { flightId: f.id } },
    el(
      'button',
      { type: 'button', class: 'flight', 'data-testid': `flight-${f.flightNumber}`, dataset: { flightId: f.id } },
      el('span', { class: 'flight__top' }, field('number', 'flight__num'), ' ', field('price', 'flight__price'), ' '),
      el('span', { class: 'flight__route' }, field('route'), ' ', field('duration', 'flight__dur'), ' '),
      field('when', 'flight__when'),
      ' ',
      el('span', { class: 'flight__seats', 'data-field': 'seats', 'data-testid': 'seats-left' }),
    ),
  );
}

function updateItem(li, f, selected) {
  const field = (name) => li.querySelector(`[data-field="${name}"]`);
  const left = f.availableSeats;
  setText(field('number'), f.flightNumber);
  setText(field('price'), fmtMoney(f.priceCents));
  setText(field('route'), `${f.origin} → ${f.destination}`);
  setText(field('duration'), fmtDuration(f.departureTime, f.arrivalTime));
  setText(field('when'), `Departs ${fmtDate(f.departureTime)}`);
  setAttr(field('when'), 'title', `Departure ${f.departureTime} (UTC)`);
  setText(field('seats'), left === 0 ? 'Sold out' : `${left} of ${f.totalSeats} seats left`);
  setAttr(field('seats'), 'data-level', left === 0 ? 'none' : left <= 10 ? 'low' : 'ok');
  setAttr(li.querySelector('button'), 'aria-pressed', String(selected));
}

function renderList(list, flights, selectedId) {
  if (!flights.length) {
    list.replaceChildren(el('li', { class: 'muted', text: 'No flights are on sale right now.' }));
    return;
  }
  const items = new Map([...list.querySelectorAll('li[data-flight-id]')].map((li) => [li.dataset.flightId, li]));
  const ordered = flights.map((f) => {
    const li = items.get(f.id) ?? buildItem(f);
    updateItem(li, f, f.id === selectedId);
    return li;
  });
  if (ordered.some((li, i) => list.children[i] !== li) || list.children.length !== ordered.length) {
    list.replaceChildren(...ordered);
  }
}

// `live`: the page's stream is open (true), down (false) or not yet (null).
function updatedLabel(live, at) {
  if (!at) return '';
  const prefix = live === null ? 'Updated' : live ? 'Live · updated' : 'Reconnecting… · updated';
  return `${prefix} ${fmtClock(at)}`;
}

// Until the first read the list keeps its "Loading flights…" line.
export function renderFlights(state) {
  const { flights, flightsUpdated, live, flightId } = state;
  const label = $('flights-updated');
  setText(label, updatedLabel(live, flightsUpdated));
  setAttr(label, 'data-live', String(live !== false));
  if (!flightsUpdated) return;
  const list = $('flight-list');
  setAttr(list, 'aria-busy', 'false');
  renderList(list, flights, flightId);
}
