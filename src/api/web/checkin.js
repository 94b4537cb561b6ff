// Online check-in under "manage my booking": the check-in button while the
// window is open (CHECKIN_OPENS to CHECKIN_CLOSES before departure), then
// each passenger's boarding pass: its facts, its IATA BCBP string as a QR
// code (the vendored encoder, as the e-ticket draws it) and as text, and a
// printable layout (print CSS: the passes alone, one a page).

import { api } from '/assets/api.js';
import { $, el, keyed, setText, show } from '/assets/dom.js';
import { fmtDate } from '/assets/format.js';
import { qrSvg } from '/assets/ticket.js';

// Check in the booking found with `asked` ({reference, lastName}).
export const checkIn = (asked) => api('POST', '/api/bookings/checkin', asked);

const REFUSED = {
  CHECKIN_NOT_OPEN: 'Online check-in is not open yet for this flight.',
  CHECKIN_CLOSED: 'Online check-in has closed for this flight. Please check in at the airport.',
  BOOKING_NOT_CONFIRMED: 'This booking is cancelled: it cannot be checked in.',
};

export const checkInFailed = (e) => REFUSED[e.code] ?? `Check-in failed: ${e.message}`;

function pass(p, f) {
  const facts = [
    ['Passenger', p.passenger],
    ['Flight', f ? `${f.flightNumber} · ${f.origin} → ${f.destination}` : ''],
    ['Departs', f ? fmtDate(f.departureTime) : ''],
    ['Seat', p.seat],
    ['Boarding no.', String(p.sequence)],
    ['E-ticket', p.ticketNumber],
  ];
  return el(
    'article',
    { class: 'pass', dataset: { seat: p.seat, testid: 'boarding-pass' } },
    el('h4', { class: 'pass__title', text: `Boarding pass · seat ${p.seat}` }),
    el(
      'div',
      { class: 'pass__body' },
      el('dl', { class: 'summary pass__facts' }, ...facts.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v })))),
      el('div', { class: 'pass__qr' }, qrSvg(p.bcbp, `Boarding pass barcode of ${p.passenger}, seat ${p.seat}`)),
    ),
    el('p', { class: 'pass__bcbp small' }, 'Barcode data: ', el('code', { text: p.bcbp, dataset: { testid: 'pass-bcbp' } })),
  );
}

// `b`: the booking as the look-up (or a check-in) answered; `s`: the page's
// state ({checkingIn, checkInError}).
export function renderCheckIn(b, s) {
  const c = b.checkIn ?? {};
  const passes = b.boardingPasses ?? [];
  const shown = b.status === 'CONFIRMED' || passes.length > 0;
  show($('checkin'), shown);
  if (!shown) return;
  let hint = '';
  if (passes.length) hint = 'You are checked in. Show a boarding pass at the gate, on screen or printed.';
  else if (c.open) hint = `Online check-in is open until ${fmtDate(c.closesAt)}.`;
  else if (c.opensAt && new Date(c.opensAt) > new Date()) hint = `Online check-in opens ${fmtDate(c.opensAt)}.`;
  else hint = 'Online check-in has closed for this flight.';
  setText($('checkin-hint'), hint);
  const button = $('checkin-button');
  show(button, !passes.length && Boolean(c.open));
  button.disabled = Boolean(s.checkingIn);
  setText(button, s.checkingIn ? 'Checking in…' : 'Check in all passengers');
  setText($('checkin-error'), s.checkInError ?? '');
  show($('checkin-error'), Boolean(s.checkInError));
  keyed($('boarding-passes'), passes.map((p) => p.bcbp).join('|'), () => passes.map((p) => pass(p, b.flight)));
  show($('print-passes'), passes.length > 0);
}
