// The booking panel: one view per phase, the workflow link, and the hold
// summary pinned to the bottom at phone width.

import { $, el, setAttr, setText, show } from '/assets/dom.js';
import { selectionLocked } from '/assets/booking.js';
import { renderCountdown } from '/assets/countdown.js';
import { capitalise, flightLabel, fmtDate, fmtMoney, plural, sortSeats } from '/assets/format.js';
import { renderPassengers } from '/assets/passengers.js';
import { renderPayForm, renderPaying } from '/assets/payment.js';
import { renderTicket } from '/assets/ticket.js';

function flightLines(box, f) {
  const key = f ? `${f.id}|${f.departureTime}` : '';
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(
    ...(f ? [el('span', { class: 'line', text: flightLabel(f) }), el('span', { class: 'line muted small', text: `Departs ${fmtDate(f.departureTime)}` })] : []),
  );
}

function fillChips(box, seats) {
  const key = seats.join(',');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...(seats.length ? seats.map((s) => el('span', { class: 'chip', text: s })) : [el('span', { class: 'muted', text: 'none' })]));
}

function renderWorkflowLink(order, { temporalUiUrl, temporalNamespace }) {
  const href = order && temporalUiUrl
    ? `${temporalUiUrl}/namespaces/${encodeURIComponent(temporalNamespace)}/workflows/${encodeURIComponent(order.workflowId)}`
    : '';
  show($('wf-wrap'), Boolean(href));
  if (!href) return;
  const link = $('wf-link');
  setAttr(link, 'href', href);
  setAttr(link, 'title', `Workflow ${order.workflowId} in the Temporal UI (opens in a new tab)`);
}

// Seats held, or being held for the first time (no order yet).
// A seat's price as the seat map shows it (cabin fare and surcharges).
function seatPriceOf(s, id, price) {
  return s.flight?.seatMap?.seats?.find((x) => x.id === id)?.priceCents ?? price;
}

function renderHold(s, f, seats, price) {
  const { booking: b, config } = s;
  // The running total: the order's own once it holds exactly these seats
  // (prices fixed when taken), else the seat map's prices now.
  const o = b.order;
  const same = o?.seats && o.seats.length === seats.length && seats.every((x) => o.seats.includes(x));
  const prices = seats.map((id) => seatPriceOf(s, id, price));
  const total = same && o.totalPriceCents != null ? o.totalPriceCents : prices.reduce((a, x) => a + x, 0);
  const uniform = prices.every((x) => x === prices[0]);
  flightLines($('hold-flight'), f);
  fillChips($('hold-seats'), seats);
  const detail = seats.length > 1 ? (uniform ? ` (${seats.length} × ${fmtMoney(prices[0])})` : ` (${prices.map(fmtMoney).join(' + ')})`) : '';
  setText($('hold-total'), `${fmtMoney(total)}${detail}`);
  renderCountdown(b.order, Math.max(1, config.seatReservationSeconds) * 1000);
  renderPassengers(b, seats);
  renderPayForm(b, total);
  $('cancel-button').disabled = selectionLocked(b);
}

function renderOutcome(o, f, price) {
  if (o.status === 'CONFIRMED') {
    flightLines($('confirm-flight'), f);
    renderTicket(o, price);
  } else if (o.status === 'FAILED') {
    setText($('failed-reason'), o.lastError ? `Reason: ${capitalise(o.lastError)}.`.replace(/\.\.$/, '.') : '');
  }
}

export function renderBooking(s) {
  const { booking: b, config } = s;
  const o = b.order;
  const f = s.flight ?? s.flights.find((x) => x.id === o?.flightId);
  const price = f?.priceCents ?? 0;
  const seats = sortSeats(b.want ?? o?.seats ?? []);
  const first = b.phase === 'idle' && b.want?.length > 0;
  const outcome = b.phase === 'done' ? o.status : null;

  show($('panel-idle'), b.phase === 'idle' && !first);
  show($('panel-hold'), b.phase === 'holding' || first);
  show($('panel-paying'), b.phase === 'paying');
  show($('panel-confirmed'), outcome === 'CONFIRMED');
  show($('panel-failed'), outcome === 'FAILED');
  show($('panel-expired'), outcome === 'EXPIRED');
  renderWorkflowLink(o, config);

  if (b.phase === 'holding' || first) renderHold(s, f, seats, price);
  if (b.phase === 'paying') {
    const total = fmtMoney(o.totalPriceCents ?? seats.length * price);
    renderPaying(o, `${f ? `${f.flightNumber} · ` : ''}Seats ${seats.join(', ')} · ${total}`, config.paymentMaxRetries);
  }
  if (outcome) renderOutcome(o, f, price);

  const bar = b.phase === 'holding' && seats.length > 0;
  show($('holdbar'), bar);
  if (bar) setText($('holdbar-seats'), `${plural(seats.length, 'seat')} · ${seats.join(', ')}`);
}
