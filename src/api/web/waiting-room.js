// The waiting room of a flight's sale: the buyer's queue ticket, live over
// its own event stream (polled only while that is down), drawn as the
// server says it is. Its states are the server's:
//
//   PREQUEUE  before the sale opens: a countdown to `opensAt` on the
//             server's clock (clock.js); everyone here then gets the same
//             chance, drawn at the opening
//   WAITING   a place: position, people ahead, a progress bar from where
//             the buyer started, and the estimated wait
//   ADMITTED  the buyer's turn: the room hands the admission token to the
//             page (`onAdmitted`), which goes to the seat map and sends it
//             with the create (header `Admission`)
//   SOLD_OUT  said plainly; nothing to wait for
//   EXPIRED   the place or the admission lapsed: the buyer may join again
//
// A polite live region says the position and the estimate at most every
// 30 s (a change of state — the sale opening, the buyer's turn, sold out —
// is said at once); what is on screen updates with every event.

import { api } from '/assets/api.js';
import { serverNow } from '/assets/clock.js';
import { $, focusHeading, setAttr, setText, show } from '/assets/dom.js';
import { fmtHourMinute, plural } from '/assets/format.js';
import { openStream } from '/assets/live.js';

export const ANNOUNCE_EVERY_MS = 30_000;
const POLL_MS = 5000;
const TICK_MS = 1000;

const path = (flightId, ticket = '') =>
  `/api/flights/${encodeURIComponent(flightId)}/queue${ticket ? `/${encodeURIComponent(ticket)}` : ''}`;

// A wait, in words: "less than a minute", "about 4 minutes", "about 1 hour 5 minutes".
export function waitText(secs) {
  if (!Number.isFinite(secs) || secs < 0) return 'Working out your wait…';
  if (secs < 60) return 'Estimated wait: less than a minute';
  const mins = Math.round(secs / 60);
  if (mins < 60) return `Estimated wait: about ${plural(mins, 'minute')}`;
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return `Estimated wait: about ${plural(h, 'hour')}${m ? ` ${plural(m, 'minute')}` : ''}`;
}

// A countdown of `ms`: "2 d 03:04:05", "03:04:05", "04:05".
export function countdownText(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, '0');
  const clock = h || d ? `${two(h)}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
  return d ? `${d} d ${clock}` : clock;
}

export const people = (n) => (n === 1 ? '1 person' : `${n} people`);

// How far through the queue the buyer is, 0–100, from the people ahead
// when first seen.
export function progressOf(firstAhead, ahead) {
  if (!(firstAhead > 0)) return ahead === 0 ? 100 : 0;
  return Math.round(Math.min(1, Math.max(0, (firstAhead - ahead) / firstAhead)) * 100);
}

// `hooks.onAdmitted({ flightId, admission, admittedUntil })`: the buyer's
// turn; `hooks.render()`: the page redraws (the room shows or hides).
export function waitingRoom(hooks) {
  const room = {
    flightId: null,
    label: '',
    ticket: null, // the server's object
    error: '',
    firstAhead: null,
    said: { at: -Infinity, text: '' },
  };
  let stream = null;
  let timer = 0;
  // The admission the buyer holds (one order's worth), by flight.
  let admission = null; // { flightId, token }

  function stop() {
    stream?.close();
    stream = null;
    clearInterval(timer);
    timer = 0;
  }

  // The live region: `text` now if `urgent`, else not sooner than 30 s
  // after what it last said.
  function say(text, urgent = false) {
    const now = performance.now();
    if (text === room.said.text) return;
    if (!urgent && now - room.said.at < ANNOUNCE_EVERY_MS) return;
    room.said = { at: now, text };
    setText($('wr-live'), text);
  }

  function positionText(t) {
    return `You are number ${t.position} in the queue, ${people(t.ahead)} ahead. ${waitText(t.estimatedWaitSeconds)}.`;
  }

  // A ticket as the server sent it (created, read or pushed).
  function apply(t) {
    if (!t || !room.flightId) return;
    const before = room.ticket?.state;
    room.ticket = t;
    room.error = '';
    if (t.state === 'WAITING' && room.firstAhead === null) room.firstAhead = t.ahead;
    if (t.state !== before) onState(t);
    else if (t.state === 'WAITING') say(positionText(t));
    draw();
  }

  function onState(t) {
    if (t.state === 'PREQUEUE') {
      say('You are in the waiting room. The sale has not opened yet.', true);
      timer ||= setInterval(draw, TICK_MS);
    } else if (t.state === 'WAITING') {
      clearInterval(timer);
      timer = 0;
      say(positionText(t), true);
    } else if (t.state === 'ADMITTED') {
      stop();
      admission = { flightId: room.flightId, token: t.admission };
      say('It is your turn. Choose your seats now.', true);
      const { flightId } = room;
      room.flightId = null;
      hooks.onAdmitted({ flightId, admission: t.admission, admittedUntil: t.admittedUntil });
    } else if (t.state === 'SOLD_OUT') {
      stop();
      say('Sold out. Every seat on this flight has been sold.', true);
      focusHeading('wr-soldout-title');
    } else if (t.state === 'EXPIRED') {
      stop();
      say('Your place in the queue has lapsed.', true);
      focusHeading('wr-expired-title');
    }
  }

  async function read() {
    const { flightId, ticket } = room;
    if (!flightId || !ticket) return;
    try {
      const t = await api('GET', path(flightId, ticket.ticket));
      if (flightId === room.flightId) apply(t);
    } catch {
      // the stream, or the next poll, will tell
    }
  }

  function watch() {
    stream?.close();
    const { flightId, ticket } = room;
    const handle = (t) => {
      if (flightId === room.flightId) apply(t);
    };
    stream = openStream(`${path(flightId, ticket.ticket)}/events`, {
      on: { queue: handle, message: handle },
      polls: [[read, POLL_MS]],
      onLive: () => {},
    });
  }

  // Join `flight`'s queue (or take the ticket a create was answered with).
  async function enter(flight, ticket = null) {
    if (room.flightId !== flight.id) leave();
    Object.assign(room, { flightId: flight.id, label: flight.label ?? '', firstAhead: null, error: '' });
    hooks.render();
    focusHeading('wr-title');
    if (!ticket) {
      try {
        ticket = await api('POST', path(flight.id));
      } catch (e) {
        if (room.flightId === flight.id) room.error = `You could not join the queue: ${e.message}`;
        hooks.render();
        return;
      }
    }
    if (room.flightId !== flight.id) return;
    room.ticket = null;
    apply(ticket);
    if (room.flightId === flight.id && ['PREQUEUE', 'WAITING'].includes(ticket.state)) watch();
    hooks.render();
  }

  function leave() {
    stop();
    Object.assign(room, { flightId: null, ticket: null, error: '', firstAhead: null });
    room.said = { at: -Infinity, text: '' };
  }

  function draw() {
    const t = room.ticket;
    const s = t?.state;
    setText($('wr-flight'), room.label);
    show($('wr-joining'), !t && !room.error);
    show($('wr-prequeue'), s === 'PREQUEUE');
    show($('wr-waiting'), s === 'WAITING');
    show($('wr-soldout'), s === 'SOLD_OUT');
    show($('wr-expired'), s === 'EXPIRED');
    setText($('wr-error'), room.error);
    show($('wr-error'), Boolean(room.error));
    if (s === 'PREQUEUE') {
      const opens = Date.parse(t.opensAt);
      const now = serverNow();
      setText($('wr-countdown'), now === null || !Number.isFinite(opens) ? '--:--' : countdownText(opens - now));
      setText($('wr-opens'), Number.isFinite(opens) ? `Sales open at ${fmtHourMinute(now === null ? opens : Date.now() + (opens - now))}.` : '');
    }
    if (s === 'WAITING') {
      setText($('wr-position'), String(t.position));
      setText($('wr-ahead'), t.ahead === 0 ? 'You are next.' : `${people(t.ahead)} ahead of you`);
      const pct = progressOf(room.firstAhead, t.ahead);
      const bar = $('wr-progress');
      if (bar.value !== pct) bar.value = pct;
      setAttr(bar, 'aria-valuetext', `${pct}% of the way`);
      setText($('wr-estimate'), waitText(t.estimatedWaitSeconds));
    }
  }

  return {
    get active() {
      return room.flightId !== null;
    },
    get flightId() {
      return room.flightId;
    },
    enter,
    leave,
    draw,
    // The admission to send with a create for `flightId`, if the buyer has one.
    admissionFor(flightId) {
      if (!admission || admission.flightId !== flightId) return null;
      return admission.token;
    },
    // A create took the admission (it is good for one order), or the
    // server refused it.
    spend() {
      admission = null;
    },
  };
}
