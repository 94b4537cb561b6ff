// The passenger form: one row per seat (given name, family name, optional
// email), each field labelled with its seat and its error next to it —
// the rules broken as typed, or what the API said about it.

import { $, el, setAttr, setText, show } from '/assets/dom.js';
import { canEditPassengers, passengersUnsaved, passengersValid, paxRow } from '/assets/booking.js';
import { FIELDS, fieldProblem } from '/assets/names.js';

const LABELS = { givenName: 'Given name', familyName: 'Family name', email: 'Email (optional)' };
const AUTOCOMPLETE = { givenName: 'given-name', familyName: 'family-name', email: 'email' };

const inputId = (seat, field) => `pax-${seat}-${field}`;
const errorId = (seat, field) => `${inputId(seat, field)}-error`;
export const paxKey = (seat, field) => `${seat}|${field}`;

function buildRow(seat) {
  const fields = FIELDS.map((field) =>
    el(
      'div',
      { class: `pax__field pax__field--${field}` },
      el('label', { for: inputId(seat, field) }, LABELS[field], el('span', { class: 'visually-hidden', text: `, seat ${seat}` })),
      el('input', {
        id: inputId(seat, field),
        type: field === 'email' ? 'email' : 'text',
        autocomplete: `section-${seat} ${AUTOCOMPLETE[field]}`,
        spellcheck: 'false',
        'data-testid': `passenger-${seat}-${field}`,
        dataset: { seat, field },
      }),
      el('p', { class: 'field-error', id: errorId(seat, field), hidden: true }),
    ),
  );
  return el(
    'fieldset',
    { class: 'pax__row', dataset: { seat } },
    el('legend', { text: `Seat ${seat}` }),
    el('p', { class: 'field-error', id: errorId(seat, 'seat'), hidden: true }),
    ...fields,
  );
}

// The message for one field: the API's, else a rule broken. Characters
// that are never allowed are flagged at once; a missing or long value once
// the customer has left the field or tried to save.
function message(pax, seat, field) {
  const key = paxKey(seat, field);
  const said = pax.errors.get(key);
  if (said || field === 'seat') return said ?? '';
  const value = paxRow(pax, seat)[field];
  const problem = fieldProblem(field, value);
  const early = field !== 'email' && value.trim() !== '' && /characters|letters/.test(problem);
  return pax.touched.has(key) || early ? problem : '';
}

function describe(node, id, msg) {
  const box = $(id);
  setText(box, msg);
  show(box, Boolean(msg));
  if (msg) setAttr(node, 'aria-describedby', id);
  else node.removeAttribute('aria-describedby');
}

function renderRow(row, b, seat, editable) {
  const pax = b.pax;
  describe(row, errorId(seat, 'seat'), message(pax, seat, 'seat'));
  const values = paxRow(pax, seat);
  for (const field of FIELDS) {
    const input = $(inputId(seat, field));
    if (input.value !== values[field]) input.value = values[field];
    const msg = message(pax, seat, field);
    setAttr(input, 'aria-invalid', String(Boolean(msg)));
    describe(input, errorId(seat, field), msg);
    input.readOnly = !editable;
  }
}

// Rows in seat order: those of seats kept stay as they are (values, focus).
function placeRows(box, seats) {
  const rows = new Map([...box.children].map((r) => [r.dataset.seat, r]));
  const wanted = seats.map((seat) => rows.get(seat) ?? buildRow(seat));
  if (wanted.length !== box.children.length || wanted.some((r, i) => box.children[i] !== r)) box.replaceChildren(...wanted);
}

function stateText(b) {
  if (b.pax.saving) return 'Saving passengers…';
  if (!b.order || !passengersValid(b)) return '';
  const one = b.order.seats.length === 1;
  if (passengersUnsaved(b)) return `Not saved yet: ${one ? 'it is' : 'they are'} saved when you pay.`;
  return one ? 'Passenger saved.' : 'Passengers saved.';
}

// `seats`: the seats shown (those held, or being held).
export function renderPassengers(b, seats) {
  placeRows($('pax-rows'), seats);
  const editable = (b.phase === 'holding' || b.phase === 'idle') && !b.pax.saving;
  const box = $('pax-rows');
  for (const seat of seats) renderRow(box.querySelector(`[data-seat="${seat}"]`), b, seat, editable);
  const err = $('pax-error');
  setText(err, b.pax.error);
  show(err, Boolean(b.pax.error));
  setText($('pax-state'), stateText(b));
  const save = $('pax-save');
  save.disabled = !(b.order && canEditPassengers(b));
  setText(save, b.order && b.order.seats.length > 1 ? 'Save passengers' : 'Save passenger');
}

// The first field with an error (a seat's first field for an error about
// the seat), to take the focus after a refusal.
export function firstInvalid() {
  const node = $('pax-rows').querySelector('input[aria-invalid="true"], fieldset[aria-describedby]');
  return node?.tagName === 'FIELDSET' ? node.querySelector('input') : node;
}
