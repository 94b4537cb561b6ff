// The e-ticket of a confirmed order: its booking reference, large and as a
// QR code, each seat with its passenger, and what was paid.
// The QR code is drawn by qrcode-generator (npm, MIT; vendored unchanged in
// vendor/, served as /assets/qrcode-generator.mjs) as an SVG path: no
// canvas, no markup strings.

import qrcode from '/assets/qrcode-generator.mjs';
import { $, el, setText } from '/assets/dom.js';
import { fmtMoney, sortSeats } from '/assets/format.js';

const SVG = 'http://www.w3.org/2000/svg';
const QUIET = 4; // modules of white around the code, as the standard asks

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// The QR code of `text` (error correction M), one unit per module.
export function qrSvg(text, label) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  let d = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + QUIET} ${r + QUIET}h1v1h-1z`;
  }
  const size = n + 2 * QUIET;
  const image = svg('svg', { viewBox: `0 0 ${size} ${size}`, role: 'img', 'aria-label': label, 'shape-rendering': 'crispEdges' });
  image.append(svg('rect', { width: size, height: size, fill: '#fff' }), svg('path', { d, fill: '#000' }));
  return image;
}

function passengerLine(seat, p) {
  const name = p ? `${p.givenName} ${p.familyName}` : '';
  return el('li', {}, el('span', { class: 'chip', text: seat }), ' ', el('span', { text: name }));
}

// `o`: the confirmed order; `price`: per seat. (The flight is the booking
// panel's flightLines.)
export function renderTicket(o, price) {
  const ref = o.reference ?? '';
  setText($('confirm-reference'), ref || 'Being issued…');
  const qr = $('ticket-qr');
  if (qr.dataset.ref !== ref) {
    qr.dataset.ref = ref;
    qr.replaceChildren(...(ref ? [qrSvg(ref, `QR code of booking reference ${ref}`)] : []));
  }
  const link = $('manage-booking');
  link.setAttribute('href', ref ? `/manage?reference=${encodeURIComponent(ref)}` : '/manage');

  const byseat = new Map(o.passengers.map((p) => [p.seat, p]));
  const list = $('confirm-passengers');
  const lines = sortSeats(o.seats).map((s) => `${s}:${byseat.get(s)?.givenName ?? ''} ${byseat.get(s)?.familyName ?? ''}`).join('|');
  if (list.dataset.key !== lines) {
    list.dataset.key = lines;
    list.replaceChildren(...sortSeats(o.seats).map((s) => passengerLine(s, byseat.get(s))));
  }
  setText($('confirm-total'), fmtMoney(o.totalPriceCents ?? o.seats.length * price));
  setText($('confirm-order'), o.orderId);
}
