// The dashboard's form for a flight's scheduled sale (`POST
// /api/ops/flights/{id}/sales` with `opensAt` and `admitPerMinute`) and
// its fares for new holds (`PUT /api/ops/flights/{id}/fares`). What the
// server answers is said in a status line; the dashboard's list and stream
// show the result.

import { $, el, setText } from '/assets/dom.js';
import { fmtDate, fmtMoney } from '/assets/format.js';
import { opsApi, showError, shownError } from '/assets/ops-common.js';
import { onFlights, putFlight } from '/assets/ops-dashboard.js';

const CABINS = { FIRST: 'First', BUSINESS: 'Business', PREMIUM_ECONOMY: 'Premium economy', ECONOMY: 'Economy' };

let flights = [];

function fillFlights(list) {
  flights = list;
  const select = $('ss-flight');
  const chosen = select.value;
  const key = list.map((f) => `${f.id}|${f.flightNumber}`).join();
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    select.replaceChildren(...list.map((f) => el('option', { value: f.id, text: `${f.flightNumber} ${f.origin} → ${f.destination}` })));
    if (list.some((f) => f.id === chosen)) select.value = chosen;
  }
}

// Dollars as typed ("199.50") to whole cents, or null when not a sum.
function cents(text) {
  const t = text.trim();
  if (!/^\d+(\.\d{1,2})?$/.test(t)) return null;
  return Math.round(Number(t) * 100);
}

function said(text) {
  setText($('ss-result'), text);
}

async function send(what, request) {
  const flight = flights.find((f) => f.id === $('ss-flight').value);
  if (!flight) return said('Choose a flight first.');
  try {
    said(await request(flight));
    showError('');
  } catch (err) {
    if (shownError(err)) said(`The ${what} of ${flight.flightNumber} was not changed: ${err.message}`);
  }
}

function schedule() {
  return send('sale', async (flight) => {
    const opens = $('ss-opensAt').value;
    const rate = $('ss-admitPerMinute').value.trim();
    if (rate && !/^[1-9]\d{0,5}$/.test(rate)) return 'Admissions per minute: a whole number from 1, or empty.';
    const body = { open: true, opensAt: opens ? new Date(opens).toISOString() : null, admitPerMinute: rate ? Number(rate) : null };
    const answer = await opsApi('POST', `/api/ops/flights/${encodeURIComponent(flight.id)}/sales`, body);
    putFlight(answer);
    return answer.salesOpenAt
      ? `Sales of ${flight.flightNumber} open ${fmtDate(answer.salesOpenAt)}; buyers queue until then.`
      : `${flight.flightNumber} is on sale now.`;
  });
}

function saveFare() {
  return send('fare', async (flight) => {
    const price = cents($('fa-price').value);
    if (price === null) return 'Fare: an amount in dollars, like 199.50.';
    const feeText = $('fa-fee').value;
    const fee = feeText.trim() ? cents(feeText) : undefined;
    if (fee === null) return 'Cancellation fee: an amount in dollars, or empty.';
    const code = $('fa-cabin').value;
    const fare = { code, priceCents: price, refundable: $('fa-refundable').checked };
    if (fee !== undefined) fare.cancellationFeeCents = fee;
    const answer = await opsApi('PUT', `/api/ops/flights/${encodeURIComponent(flight.id)}/fares`, { fares: [fare] });
    const cabin = (answer.cabins ?? []).find((c) => c.code === code);
    return cabin
      ? `${CABINS[code]} on ${flight.flightNumber} is now ${fmtMoney(cabin.priceCents)} for new holds${cabin.refundable ? '' : ', not refundable'}.`
      : `The fare of ${flight.flightNumber} was changed.`;
  });
}

export function initSettings() {
  onFlights(fillFlights);
  $('ss-schedule').addEventListener('click', schedule);
  $('fa-save').addEventListener('click', saveFare);
}
