// The booking page's passenger form: what the customer types, what the API
// says about it, said next to the field it names, and saving it (PUT
// …/passengers, which restarts the hold). app.js owns the page's state and
// hands it over with the two things the form needs of the page: render and
// refreshStatus.

import { bookingCall } from '/assets/api.js';
import { canEditPassengers, orderFrom, passengersBody, passengersValid, paxRow } from '/assets/booking.js';
import { observeStatus } from '/assets/clock.js';
import { capitalise } from '/assets/format.js';
import { FIELDS } from '/assets/names.js';
import { firstInvalid, paxKey } from '/assets/passengers.js';

export function passengerForm(state, { render, refreshStatus }) {
  function onPassengerInput(e) {
    const { seat, field } = e.target.dataset;
    if (!seat || !field) return;
    const { pax } = state.booking;
    pax.rows.set(seat, { ...paxRow(pax, seat), [field]: e.target.value });
    pax.errors.delete(paxKey(seat, field));
    pax.errors.delete(paxKey(seat, 'seat'));
    pax.error = '';
    render(state);
  }

  function onPassengerLeave(e) {
    const { seat, field } = e.target.dataset;
    if (!seat || !field || !e.target.value.trim()) return;
    state.booking.pax.touched.add(paxKey(seat, field));
    render(state);
  }

  // Every rule broken is shown, and the first field at fault takes the focus.
  function checkPassengers() {
    const b = state.booking;
    for (const seat of b.order?.seats ?? []) for (const f of FIELDS) b.pax.touched.add(paxKey(seat, f));
    render(state);
    firstInvalid()?.focus();
  }

  // The pay answered 409 PASSENGERS_REQUIRED: the seats it names have none.
  function passengersMissing(err) {
    const seats = err.body?.seats ?? [];
    for (const seat of seats) state.booking.pax.errors.set(paxKey(seat, 'seat'), `Seat ${seat} needs a passenger before you pay.`);
    state.booking.pax.error = capitalise(err.message);
    refreshStatus();
  }

  // What the API said about a passenger's field, said next to it: "seat 12A
  // givenName: may hold only letters…" reads "This may hold only letters…".
  function fieldMessage(message, field) {
    const said = message.replace(/^seat \S+ \w+: /, '').replace(/\.?$/, '.');
    return field === 'seat' ? capitalise(said) : `This ${said}`;
  }

  // What the API said about the passengers, next to the field it names; about
  // a seat the form has no row for (the order changed in another tab), above
  // the button, and the order is read afresh.
  function passengersRefused(err) {
    const { pax, order } = state.booking;
    const { seat, field } = err.body ?? {};
    if (err.code === 'INVALID_PASSENGERS' && order.seats.includes(seat) && field) pax.errors.set(paxKey(seat, field), fieldMessage(err.message, field));
    else if (err.code === 'INVALID_PASSENGERS') {
      pax.error = capitalise(err.message.replace(/\.?$/, '.'));
      refreshStatus();
    } else if (err.code === 'PASSENGERS_REQUIRED') passengersMissing(err);
    else pax.error = `The passengers could not be saved: ${err.message}`;
  }

  // PUT the passengers of the seats held. The answer is the order's status,
  // whose hold has restarted, naming the seats only: what was sent is kept
  // as the order's passengers. True when saved.
  async function savePassengers() {
    const b = state.booking;
    const o = b.order;
    if (!passengersValid(b)) {
      checkPassengers();
      return false;
    }
    if (!canEditPassengers(b)) return false;
    Object.assign(b.pax, { saving: true, error: '' });
    render(state);
    try {
      const passengers = passengersBody(b);
      const s = await bookingCall('PUT', `/api/orders/${encodeURIComponent(o.orderId)}/passengers`, { passengers });
      if (state.booking.order !== o) return false;
      observeStatus(s);
      const expiresAt = Date.parse(s.expiresAt);
      Object.assign(o, orderFrom(s, o), { passengers }, expiresAt > o.expiresAt ? { holds: o.holds + 1 } : {});
      return true;
    } catch (err) {
      if (state.booking.order !== o) return false;
      passengersRefused(err);
      if (['ORDER_EXPIRED', 'ORDER_NOT_MODIFIABLE', 'ORDER_NOT_FOUND'].includes(err.code)) await refreshStatus();
      return false;
    } finally {
      b.pax.saving = false;
      render(state);
      if (state.booking === b && b.phase === 'holding' && (b.pax.errors.size || b.pax.error)) firstInvalid()?.focus();
    }
  }

  function onPassengersSubmit(e) {
    e.preventDefault();
    savePassengers();
  }

  return { checkPassengers, onPassengerInput, onPassengerLeave, onPassengersSubmit, passengersMissing, savePassengers };
}
