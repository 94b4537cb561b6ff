// A new flight: its number, route, times (in the operator's time zone,
// sent as RFC 3339), cabin (rows × seat letters) and price. Each field is
// checked as it is left and all of them on submit; a refusal from the
// server that names a field is said next to that field.

import { $, fieldError, setText, show } from '/assets/dom.js';
import { capitalise, fmtMoney, plural } from '/assets/format.js';
import { putFlight } from '/assets/ops-dashboard.js';
import { announce, opsApi, shownError } from '/assets/ops-common.js';

const FIELDS = ['flightNumber', 'origin', 'destination', 'departureTime', 'arrivalTime', 'rows', 'seatLetters', 'priceCents', 'businessRows', 'businessPrice', 'exitRow', 'cancellationFee'];
const UPPER = new Set(['flightNumber', 'origin', 'destination', 'seatLetters']);
const MAX_PRICE_CENTS = 100_000_000;

const state = {
  values: Object.fromEntries(FIELDS.map((f) => [f, ''])),
  touched: new Set(),
  server: {}, // field -> what the server said of it, until the field changes
  sending: false,
  error: '',
};

const input = (field) => $(`ff-${field}`);
const when = (local) => (local ? new Date(local) : null); // datetime-local is the operator's time
const validTime = (d) => d && !Number.isNaN(d.getTime());
const cents = (text) => Math.round(Number(text) * 100);

function numberProblem(number) {
  if (!number) return 'Enter the flight number.';
  return /^[A-Z]{1,3}[0-9]{1,4}[A-Z]?$/.test(number) ? '' : 'A flight number is 1 to 3 letters, then 1 to 4 digits and at most one letter, like FL305.';
}

function airportProblem(code, which) {
  if (!code) return `Enter the ${which} airport's 3-letter code.`;
  return /^[A-Z]{3}$/.test(code) ? '' : 'An airport code is 3 letters, like JFK.';
}

function timeProblems(v) {
  const dep = when(v.departureTime);
  const arr = when(v.arrivalTime);
  const p = {};
  if (!validTime(dep)) p.departureTime = 'Enter the departure date and time.';
  else if (dep.getTime() <= Date.now()) p.departureTime = 'The departure must be in the future.';
  if (!validTime(arr)) p.arrivalTime = 'Enter the arrival date and time.';
  else if (validTime(dep) && arr <= dep) p.arrivalTime = 'The arrival must be after the departure.';
  return p;
}

function letterProblem(letters) {
  if (!letters) return 'Enter the seat letters of a row, like ABCDEF.';
  if (!/^[A-F]+$/.test(letters)) return 'Seat letters are letters from A to F, like ABCDEF.';
  return new Set(letters).size === letters.length ? '' : 'Each seat letter may appear once.';
}

function priceProblem(price) {
  if (price === '') return 'Enter the price of a seat.';
  const ok = /^\d+(\.\d{1,2})?$/.test(price) && cents(price) <= MAX_PRICE_CENTS;
  return ok ? '' : `A price is dollars and cents from 0 to ${fmtMoney(MAX_PRICE_CENTS)}, like 249.00.`;
}

// The optional cabin fields: business rows in front of economy, an exit
// row, a fee; the server checks the cabins again (INVALID_CABINS).
function cabinProblems(v) {
  const rows = Number(v.rows);
  const business = v.businessRows === '' ? 0 : Number(v.businessRows);
  const p = {};
  if (!(Number.isInteger(business) && business >= 0 && (v.rows === '' || business < rows))) p.businessRows = 'Business rows are a whole number below the number of rows (economy needs one).';
  if (business > 0) p.businessPrice = v.businessPrice === '' ? 'Enter the business fare.' : priceProblem(v.businessPrice);
  else if (v.businessPrice !== '') p.businessPrice = priceProblem(v.businessPrice);
  if (v.exitRow !== '') {
    const exit = Number(v.exitRow);
    if (!(Number.isInteger(exit) && exit >= 1 && (v.rows === '' || exit <= rows))) p.exitRow = 'The exit row is one of the flight\'s rows.';
  }
  if (v.cancellationFee !== '') p.cancellationFee = priceProblem(v.cancellationFee);
  return p;
}

// Each field's problem ('' when none), as the API's rules are known.
function problems(v) {
  const rows = Number(v.rows);
  const p = {
    flightNumber: numberProblem(v.flightNumber),
    origin: airportProblem(v.origin, 'departure'),
    destination: airportProblem(v.destination, 'arrival') || (v.destination === v.origin ? 'The destination must differ from the origin.' : ''),
    rows: v.rows === '' ? 'Enter the number of rows.' : Number.isInteger(rows) && rows >= 1 && rows <= 60 ? '' : 'Rows are a whole number from 1 to 60.',
    seatLetters: letterProblem(v.seatLetters),
    priceCents: priceProblem(v.priceCents),
    ...timeProblems(v),
    ...cabinProblems(v),
  };
  return Object.fromEntries(FIELDS.map((f) => [f, p[f] ?? '']));
}

// ---------------------------------------------------------------- render

function renderField(field, msg) {
  const hint = $(`ff-${field}-hint`) ? `ff-${field}-hint` : '';
  fieldError(input(field), $(`ff-${field}-error`), msg, hint);
}

function summary(v, p) {
  if (p.rows || p.seatLetters) return '';
  const seats = Number(v.rows) * v.seatLetters.length;
  const price = p.priceCents ? '' : `, ${fmtMoney(seats * cents(v.priceCents))} if every seat sells`;
  return `${plural(seats, 'seat')} (${plural(Number(v.rows), 'row')} of ${v.seatLetters.length})${price}.`;
}

function render(s) {
  const p = problems(s.values);
  for (const f of FIELDS) renderField(f, s.server[f] || (s.touched.has(f) ? p[f] : ''));
  setText($('ff-summary'), summary(s.values, p));
  setText($('ff-error'), s.error);
  show($('ff-error'), Boolean(s.error));
  const button = $('ff-submit');
  button.disabled = s.sending;
  setText(button, s.sending ? 'Adding…' : 'Add flight');
}

// ---------------------------------------------------------------- events

const valueOf = (field) => {
  const raw = input(field).value.trim();
  return UPPER.has(field) ? raw.toUpperCase() : raw;
};

function onInput(e) {
  const field = e.target.name;
  if (!FIELDS.includes(field)) return;
  state.values[field] = valueOf(field);
  delete state.server[field];
  render(state);
}

function onLeave(e) {
  const field = e.target.name;
  if (FIELDS.includes(field) && e.target.value.trim()) state.touched.add(field);
  render(state);
}

function body(v) {
  return {
    flightNumber: v.flightNumber,
    origin: v.origin,
    destination: v.destination,
    departureTime: when(v.departureTime).toISOString(),
    arrivalTime: when(v.arrivalTime).toISOString(),
    rows: Number(v.rows),
    seatLetters: v.seatLetters,
    priceCents: cents(v.priceCents),
    ...cabinsBody(v),
  };
}

// The cabins, exit row and fee of the form, as the API takes them.
function cabinsBody(v) {
  const rows = Number(v.rows);
  const business = v.businessRows === '' ? 0 : Number(v.businessRows);
  const refundable = $('ff-refundable').checked;
  const cancellationFeeCents = v.cancellationFee === '' ? 0 : cents(v.cancellationFee);
  const economy = { code: 'ECONOMY', firstRow: business + 1, lastRow: rows, priceCents: cents(v.priceCents), refundable, cancellationFeeCents };
  const cabins = business > 0
    ? [{ code: 'BUSINESS', firstRow: 1, lastRow: business, priceCents: cents(v.businessPrice), refundable, cancellationFeeCents }, economy]
    : [economy];
  return { cabins, ...(v.exitRow === '' ? {} : { exitRows: [Number(v.exitRow)] }) };
}

// The server's words about a field, as a sentence: "origin: a 3-letter
// airport code such as LIS" is said at the origin as "A 3-letter airport
// code such as LIS."
function serverWords({ message, body }) {
  const text = message.startsWith(`${body.field}: `) ? message.slice(body.field.length + 2) : message;
  return `${capitalise(text)}${/[.!?]$/.test(text) ? '' : '.'}`;
}

// A refusal: at the field it names, or above the button.
function refused(err) {
  if (err.code === 'FLIGHT_EXISTS') state.server.flightNumber = `A flight ${state.values.flightNumber} already exists: choose another number.`;
  else if (err.code === 'INVALID_FLIGHT' && FIELDS.includes(err.body?.field)) state.server[err.body.field] = serverWords(err);
  else if (err.code === 'INVALID_CABINS') state.server.businessRows = `${capitalise(err.message)}.`;
  else state.error = `The flight could not be added: ${err.message}`;
  const field = FIELDS.find((f) => state.server[f]);
  if (field) input(field).focus();
}

async function onSubmit(e) {
  e.preventDefault();
  for (const f of FIELDS) state.values[f] = valueOf(f);
  state.touched = new Set(FIELDS);
  Object.assign(state, { server: {}, error: '' });
  const p = problems(state.values);
  const first = FIELDS.find((f) => p[f]);
  render(state);
  if (first) {
    input(first).focus();
    return;
  }
  state.sending = true;
  render(state);
  try {
    const flight = await opsApi('POST', '/api/ops/flights', body(state.values));
    putFlight(flight);
    reset();
    announce(`Flight ${flight.flightNumber} added, ${plural(flight.totalSeats, 'seat')} on sale.`);
    location.hash = '#/';
  } catch (err) {
    if (shownError(err)) refused(err);
  } finally {
    state.sending = false;
    render(state);
  }
}

function reset() {
  $('flight-form').reset();
  Object.assign(state, { values: Object.fromEntries(FIELDS.map((f) => [f, ''])), touched: new Set(), server: {}, error: '' });
}

export function initFlightForm() {
  const form = $('flight-form');
  form.addEventListener('submit', onSubmit);
  form.addEventListener('input', onInput);
  form.addEventListener('focusout', onLeave);
  setText($('flight-tz'), Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time');
}

export const flightFormView = {
  title: 'New flight',
  enter() {
    render(state);
  },
  leave() {},
};
