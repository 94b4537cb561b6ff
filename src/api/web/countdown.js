// The hold's countdown, on the server's clock (see clock.js): never the
// visitor's clock against `expiresAt`.

import { serverNow } from '/assets/clock.js';
import { $, setText } from '/assets/dom.js';
import { fmtHourMinute, mmss } from '/assets/format.js';

const TICK_MS = 250;
const WARN_MS = 60_000;

// Time left on the order's hold, or null while the server's time is unknown
// (nothing heard from it yet). Never past the order's cap, `maxExpiresAt`.
export function remainingMs(order) {
  const now = serverNow();
  if (now === null || order.expiresAt === null) return null;
  const end = order.maxExpiresAt === null ? order.expiresAt : Math.min(order.expiresAt, order.maxExpiresAt);
  return end - now;
}

// The latest a change can make the hold end, as HH:MM on the visitor's own
// clock (the server's instant moved by the visitor's clock offset), or null
// if the server did not say.
function capText(order) {
  if (order.maxExpiresAt === null) return null;
  const now = serverNow();
  return fmtHourMinute(now === null ? order.maxExpiresAt : Date.now() + (order.maxExpiresAt - now));
}

function timerState(left) {
  if (left === null) return 'ok';
  if (left <= 0) return 'ended';
  return left <= WARN_MS ? 'warning' : 'ok';
}

function timerNote(stateName, order, holdMs) {
  if (stateName === 'ended') return ['Time is up — releasing your seats…', 'warn'];
  if (stateName === 'warning') return ['Less than a minute left — pay now or your seats will be released.', 'warn'];
  const full = mmss(holdMs);
  const until = capText(order);
  if (until && order.expiresAt >= order.maxExpiresAt) {
    return [`Held until ${until} at the latest: changing your seats no longer extends the hold.`, 'reset'];
  }
  const cap = until ? ` The hold can be extended until ${until}.` : '';
  return order.holds > 1
    ? [`Hold restarted — back to ${full}.${cap}`, 'reset']
    : [`Held for ${full}. Any change to your seats restarts the hold.${cap}`, 'reset'];
}

// Flash the timer once for each start or restart of a hold.
function flashOnRestart(timer, order) {
  const key = `${order.orderId}:${order.holds}`;
  if (timer.dataset.hold === key) return;
  timer.dataset.hold = key;
  timer.classList.remove('is-reset');
  void timer.offsetWidth; // restart the animation
  timer.classList.add('is-reset');
}

// The warning's blink is hidden under the flash until the flash is over.
export function endFlash(e) {
  if (e.target === e.currentTarget) e.currentTarget.classList.remove('is-reset');
}

function setNote(text, kind) {
  const note = $('timer-note');
  setText(note, text);
  note.dataset.kind = kind;
}

function setTime(text, stateName) {
  setText($('timer-value'), text);
  setText($('holdbar-time'), text);
  $('timer').dataset.state = stateName;
  $('holdbar').dataset.state = stateName;
}

// `order` is null while the first seats are being held.
export function renderCountdown(order, holdMs) {
  if (!order) {
    setTime('--:--', 'ok');
    setNote('Reserving your seats…', '');
    return;
  }
  // Until an order status sharpens it, the estimate of the server's clock
  // may lag by up to a second (an HTTP Date is whole seconds); no hold has
  // more than its full length left.
  const raw = remainingMs(order);
  const left = raw === null ? null : Math.min(raw, holdMs);
  const stateName = timerState(left);
  setTime(left === null ? '--:--' : mmss(left), stateName);
  $('timer-fill').style.transform = `scaleX(${Math.max(0, (left ?? holdMs) / holdMs)})`;
  setNote(...timerNote(stateName, order, holdMs));
  flashOnRestart($('timer'), order);
}

let ticker = 0;

// Call `tick` every TICK_MS while `on`.
export function keepTicking(on, tick) {
  if (on && !ticker) ticker = setInterval(tick, TICK_MS);
  if (!on && ticker) {
    clearInterval(ticker);
    ticker = 0;
  }
}
