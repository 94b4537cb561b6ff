// Browser test of the flightctl web UI, against a running stack.
//
//   BASE_URL        the UI with the normal hold (e.g. 15 minutes)
//   SHORT_BASE_URL  the same stack behind an API whose hold is a few seconds
//   SCREENSHOT_DIR  where each scenario's final screen is saved
//   CHROMIUM        the browser binary (default /usr/bin/chromium)
//   OPS_NAME, OPS_PASSWORD  an operator of the console (`flightctl operator add`)
//   ONLY            run only these scenarios, by name (comma-separated)
//
// Scenarios: (1) hold, change (countdown resets), pay 00000, confirmation,
// seats sold to a second visitor; (2) pay 99999: retry progress, failure,
// seats released; (3) short hold at phone width: expiry; (4) a seat another
// visitor holds shows as taken within a second, pushed, with no reload and no
// polling; (5) a visitor whose clock is 15 minutes ahead, then one whose clock
// is 15 minutes behind, sees the right countdown and pays; (6) with the event
// stream refused, polling keeps the seat map current, and stops once the
// stream is back; (7) two tabs of one browser, both holding seats, still
// book at once; (8) two seats with two passengers, the booking reference,
// looked up on /manage, cancelled, refunded, the seats free again; (9) the
// API reference page; (10) the operator console: a customer's hold live on
// its dashboard, the order found, cancelled and in the audit trail, a new
// flight on the public page, its sales closed. A page holds one event stream (/api/events), never
// more: (1) checks it. Each runs in a fresh browser context and fails on any
// console error or page error, and on any page served without a
// Content-Security-Policy or breaking it (csp.mjs), whatever errors the
// scenario allows. Every state a customer sees — the flight
// list, a seat map with a hold, the passenger form, the confirmation, the
// manage page with a booking, the API reference — and every state of the
// operator console is audited with axe-core (a11y.mjs): a serious or
// critical violation fails the scenario.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { audit } from './a11y.mjs';
import { isViolation, watchPolicy } from './csp.mjs';

const trim = (u) => (u ? u.replace(/\/+$/, '') : u);
const BASE_URL = trim(process.env.BASE_URL || 'http://localhost:8080');
const SHORT_BASE_URL = trim(process.env.SHORT_BASE_URL);
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(import.meta.dirname ?? '.', 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ONLY = process.env.ONLY?.split(',').map((n) => n.trim());

class Failure extends Error {}
let lastPage = null; // for a screenshot when a scenario fails
const fail = (msg) => {
  throw new Failure(msg);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function getJson(base, p) {
  const res = await fetch(base + p);
  if (!res.ok) fail(`GET ${base}${p} answered ${res.status}`);
  return res.json();
}

const toSeconds = (mmss) => {
  const m = /^(\d+):(\d{2})$/.exec((mmss || '').trim());
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
};
const money = (cents) => new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(cents / 100);

// A fresh context and page that records console errors (but those matching
// `allowErrors`) and page errors.
async function openPage(browser, baseURL, { allowErrors = null, ...options } = {}) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 }, ...options });
  const { page, check } = await newTab(context, allowErrors);
  return { context, page, check };
}

// Another page of `context`, recording errors as openPage does.
async function newTab(context, allowErrors = null) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  lastPage = page;
  const errors = [];
  await watchPolicy(page, errors);
  page.on('console', (m) => {
    const text = `${m.text()}${m.location()?.url ? ` (${m.location().url})` : ''}`;
    if (m.type() === 'error' && (isViolation(text) || !allowErrors?.test(text))) errors.push(`console error: ${text}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  const check = () => {
    if (errors.length) fail(`the page reported errors:\n  ${errors.join('\n  ')}`);
  };
  return { page, check };
}

async function step(what, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(`${what}: ${e.message.split('\n')[0]}`);
  }
}

async function openFlight(page, flightNumber) {
  await step('load the page', () => page.goto('/'));
  const card = page.getByTestId(`flight-${flightNumber}`);
  await step(`flight ${flightNumber} is listed`, () => card.waitFor());
  await card.click();
  await step(`seat map of ${flightNumber} is shown`, () => page.locator('[data-testid="seat-map"] button.seat').first().waitFor());
  await step('seats get their status', () =>
    page.waitForFunction(() => [...document.querySelectorAll('[data-testid="seat-map"] button.seat')].every((b) => b.getAttribute('aria-label'))),
  );
}

// Pick n available seats at random from the map, by their aria-labels.
async function pickAvailable(page, n) {
  const ids = await page.$$eval('[data-testid="seat-map"] button.seat', (bs) =>
    bs.filter((b) => !b.disabled && / available$/.test(b.getAttribute('aria-label'))).map((b) => b.dataset.seat),
  );
  if (ids.length < n) fail(`only ${ids.length} seats are available, need ${n}`);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids.slice(0, n);
}

const seatLabel = (page, id) => page.getByTestId(`seat-${id}`).getAttribute('aria-label');

async function waitLabel(page, id, fragment, timeout = 15_000) {
  try {
    await page.waitForFunction(
      ([sel, frag]) => document.querySelector(sel)?.getAttribute('aria-label')?.includes(frag),
      [`[data-testid="seat-${id}"]`, fragment],
      { timeout, polling: 100 },
    );
  } catch {
    fail(`seat ${id} should be "${fragment}" but its label is "${await seatLabel(page, id)}"`);
  }
}

async function countdownSeconds(page) {
  return toSeconds(await page.getByTestId('countdown-time').textContent());
}

async function waitText(page, testId, fragment, timeout = 15_000) {
  try {
    await page.waitForFunction(
      ([sel, frag]) => {
        const n = document.querySelector(sel);
        return n && !n.closest('[hidden]') && n.textContent.includes(frag);
      },
      [`[data-testid="${testId}"]`, fragment],
      { timeout, polling: 50 },
    );
  } catch {
    const text = await page.getByTestId(testId).first().textContent().catch(() => '(missing)');
    fail(`expected "${fragment}" in [${testId}], found: "${(text || '').replace(/\s+/g, ' ').trim()}"`);
  }
}

// Resolves with the time (Date.now() in the page) when the seat's label
// first contains `fragment`.
function labelChange(page, id, fragment) {
  return page.evaluate(
    ([sel, frag]) =>
      new Promise((resolve) => {
        const btn = document.querySelector(sel);
        const seen = () => btn.getAttribute('aria-label')?.includes(frag);
        if (seen()) return resolve(Date.now());
        new MutationObserver((_, observer) => {
          if (!seen()) return;
          observer.disconnect();
          resolve(Date.now());
        }).observe(btn, { attributes: true, attributeFilter: ['aria-label'] });
      }),
    [`[data-testid="seat-${id}"]`, fragment],
  );
}

async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Another visitor, over plain HTTP: hold seats, give them up.
async function holdAsOther(flightId, seats) {
  const res = await fetch(`${BASE_URL}/api/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `browser-test-${Math.random()}` },
    body: JSON.stringify({ flightId, seats }),
  });
  if (res.status !== 201) fail(`another visitor's hold of ${seats} answered ${res.status}: ${await res.text()}`);
  return (await res.json()).orderId;
}

async function cancelAsOther(orderId) {
  const res = await fetch(`${BASE_URL}/api/orders/${orderId}`, { method: 'DELETE' });
  if (!res.ok) fail(`another visitor's cancel answered ${res.status}`);
}

const flightByNumber = async (n) => (await getJson(BASE_URL, '/api/flights')).flights.find((f) => f.flightNumber === n);

// What these seats of a flight cost, as its seat map prices them (cabin
// fare plus surcharges).
async function seatsPrice(flightNumber, seats) {
  const { id } = await flightByNumber(flightNumber);
  const map = (await getJson(BASE_URL, `/api/flights/${id}`)).seatMap.seats;
  return seats.reduce((sum, s) => sum + map.find((x) => x.id === s).priceCents, 0);
}

// Reads of a flight's seat map (GET /api/flights/{id}), i.e. polling.
function countSeatMapReads(page, flightId) {
  const reads = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === `/api/flights/${flightId}`) reads.push(Date.now());
  });
  return reads;
}

// The page's event streams: the requests open now, and how many were made
// of each path. A navigation ends the old document's streams (unreported).
function watchStreams(page) {
  const open = new Set();
  const paths = new Map();
  page.on('request', (r) => {
    const { pathname } = new URL(r.url());
    if (!pathname.endsWith('/events')) return;
    open.add(r);
    paths.set(pathname, (paths.get(pathname) ?? 0) + 1);
  });
  const ended = (r) => open.delete(r);
  page.on('requestfinished', ended);
  page.on('requestfailed', ended);
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) open.clear();
  });
  return { open, paths };
}

// The page holds one stream, /api/events, and none per resource. A stream
// replaced by the next is given a moment to be seen closed.
async function oneStream(streams, when) {
  for (let waited = 0; streams.open.size > 1 && waited < 1000; waited += 50) await sleep(50);
  const urls = [...streams.open].map((r) => r.url());
  if (urls.length > 1) fail(`${when}, the page holds ${urls.length} event streams: ${urls.join(', ')}`);
  const others = [...streams.paths.keys()].filter((p) => p !== '/api/events');
  if (others.length) fail(`${when}, the page opened streams other than /api/events: ${others.join(', ')}`);
  if (!streams.paths.has('/api/events')) fail(`${when}, the page has opened no /api/events stream`);
}

// Wait for the page stream of flight `flightId` to be answered.
const pageStream = (page, flightId, options) =>
  page.waitForResponse((r) => {
    const url = new URL(r.url());
    return url.pathname === '/api/events' && url.searchParams.get('flight') === flightId && r.status() === 200;
  }, options);

// Audits run, for the summary: "what: minor violations" (serious ones fail).
const audits = [];
async function accessible(page, what) {
  const { other } = await step(`audit ${what}`, () => audit(page, what));
  audits.push(`${what}${other.length ? ` (minor: ${other.join('; ')})` : ''}`);
}

// The passenger form: one row per seat, found by its labels. `people` are
// [givenName, familyName, email?] in the order of `seats`.
async function fillPassengers(page, seats, people) {
  for (const [i, seat] of seats.entries()) {
    const [given, family, email] = people[i % people.length];
    await step(`passenger for seat ${seat}`, async () => {
      await page.getByLabel(`Given name, seat ${seat}`, { exact: true }).fill(given);
      await page.getByLabel(`Family name, seat ${seat}`, { exact: true }).fill(family);
      if (email) await page.getByLabel(`Email (optional), seat ${seat}`, { exact: true }).fill(email);
    });
  }
}

const PEOPLE = [
  ['Ada', 'Lovelace', 'ada@example.com'],
  ['Zoë', "O'Neill-Ōta"],
];

// The payment form of a hold whose passengers are filled: pay `code`.
async function pay(page, code) {
  await page.getByTestId('payment-code').fill(code);
  const button = page.getByTestId('pay-button');
  await step('the pay button is enabled', () => page.waitForFunction(() => !document.querySelector('[data-testid="pay-button"]').disabled, null, { timeout: 5000 }));
  await button.click();
}

async function screenshot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await sleep(400); // let colour transitions settle
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

const REFERENCE = /^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/;

// The e-ticket of a confirmed booking: its reference (returned), a QR code
// of it, and each seat with its passenger. Printed, it is all there is.
async function checkTicket(page, seats, people) {
  await waitText(page, 'confirmation', 'Booking confirmed', 40_000);
  const ref = page.getByTestId('booking-reference');
  await step('the booking reference is shown', () =>
    page.waitForFunction((re) => new RegExp(re).test(document.querySelector('[data-testid="booking-reference"]')?.textContent.trim()), REFERENCE.source, { timeout: 10_000 }),
  );
  const reference = (await ref.textContent()).trim();
  await step('the QR code of the reference', () => page.getByRole('img', { name: `QR code of booking reference ${reference}` }).waitFor());
  const ticket = (await page.getByTestId('ticket').textContent()).replace(/\s+/g, ' ');
  for (const [i, seat] of seats.entries()) {
    const [given, family] = people[i % people.length];
    if (!ticket.includes(`${seat} ${given} ${family}`)) fail(`the e-ticket should list seat ${seat} for ${given} ${family}: "${ticket.trim()}"`);
  }
  await page.emulateMedia({ media: 'print' });
  const printed = await page.evaluate(() => {
    const seen = (sel) => [...document.querySelectorAll(sel)].some((n) => n.checkVisibility());
    return { ticket: seen('[data-testid="ticket"]'), map: seen('[data-testid="seat-map"]'), buttons: seen('button'), header: seen('header.topbar') };
  });
  await page.emulateMedia({ media: 'screen' });
  if (!printed.ticket || printed.map || printed.buttons || printed.header) fail(`printed, only the e-ticket should show: ${JSON.stringify(printed)}`);
  return reference;
}

// (1) Hold two seats, change one (the hold restarts, and the note says until
// when it can be), name the passengers (the hold goes on)
// (the form's rules, a seat change keeps the rows of seats kept), pay
// 00000, see the confirmation and its e-ticket; a second visitor sees the
// seats sold.
async function scenarioPay(browser, config) {
  const hold = config.seatReservationSeconds;
  const { context, page, check } = await openPage(browser, BASE_URL);
  const streams = watchStreams(page);
  await step('load the page', () => page.goto('/'));
  const pct = `${Number((config.paymentFailureRate * 100).toFixed(1))}%`;
  await waitText(page, 'demo-note', `fail at random ${pct} of the time`);
  for (const want of ['00000 always succeeds', '99999 always fails']) await waitText(page, 'demo-note', want);
  await page.getByTestId('flight-FL101').waitFor();
  await accessible(page, 'the flight list');
  await openFlight(page, 'FL101');
  const [a, b, c] = await pickAvailable(page, 3);

  await page.getByTestId(`seat-${a}`).click();
  await waitLabel(page, a, 'selected');
  await step('countdown appears', () => page.getByTestId('countdown').waitFor({ state: 'visible' }));
  await oneStream(streams, 'once seats are held');
  await page.getByTestId(`seat-${b}`).click();
  await waitLabel(page, b, 'selected');
  const start = await countdownSeconds(page);
  if (!(start <= hold && start >= hold - 3)) fail(`countdown should start near the full hold ${hold}s, shows ${start}s`);

  const orderHref = await page.getByTestId('workflow-link').getAttribute('href');
  const wfPrefix = `${config.temporalUiUrl}/namespaces/${config.temporalNamespace}/workflows/booking-`;
  if (!orderHref?.startsWith(wfPrefix)) fail(`workflow link should start with ${wfPrefix}, is ${orderHref}`);
  const orderId = orderHref.slice(wfPrefix.length);

  await sleep(2300);
  const before = await countdownSeconds(page);
  if (!(before <= hold - 2)) fail(`countdown should run down: ${before}s after 2.3 s of a ${hold}s hold`);

  // Change the selection: give up b, take c. Each change restarts the hold.
  await page.getByTestId(`seat-${b}`).click();
  await waitLabel(page, b, 'available');
  const afterDrop = await countdownSeconds(page);
  if (!(afterDrop >= hold - 2)) fail(`countdown should reset to ~${hold}s after a change, shows ${afterDrop}s (was ${before}s)`);
  await waitText(page, 'countdown-note', 'restarted');
  await waitText(page, 'countdown-note', 'can be extended until');
  await page.getByTestId(`seat-${c}`).click();
  await waitLabel(page, c, 'selected');
  const afterAdd = await countdownSeconds(page);
  if (!(afterAdd >= hold - 2)) fail(`countdown should reset to ~${hold}s after adding a seat, shows ${afterAdd}s`);
  const chips = (await page.getByTestId('hold-seats').textContent()).replace(/\s+/g, '');
  for (const s of [a, c]) if (!chips.includes(s)) fail(`held seats should list ${s}: "${chips}"`);
  await accessible(page, 'a seat map with a hold');

  // The payment field refuses anything but 5 digits.
  const code = page.getByTestId('payment-code');
  const pay = page.getByTestId('pay-button');
  await code.fill('12a4');
  if (!(await pay.isDisabled())) fail('the pay button should be disabled for "12a4"');
  await step('inline validation message', () => page.getByTestId('payment-error').waitFor({ state: 'visible' }));
  await code.fill('1234');
  if (!(await pay.isDisabled())) fail('the pay button should be disabled for 4 digits');
  await code.fill('00000');
  if (!(await pay.isDisabled())) fail('the pay button should stay disabled until every seat has a passenger');

  // The passenger form: a name breaking the rules is flagged next to its
  // field, and payment waits for every seat's passenger.
  const seats = [a, c].sort();
  const given = page.getByLabel(`Given name, seat ${seats[0]}`, { exact: true });
  await given.fill('R2-D2');
  await step('the given name is flagged next to it', () => page.waitForFunction((id) => {
    const input = document.getElementById(id);
    const error = document.getElementById(input.getAttribute('aria-describedby') ?? '');
    return input.getAttribute('aria-invalid') === 'true' && error && !error.hidden && /letters/.test(error.textContent);
  }, `pax-${seats[0]}-givenName`, { timeout: 5000 }));
  await accessible(page, 'the passenger form with an error');
  await fillPassengers(page, seats, PEOPLE);
  if (await pay.isDisabled()) fail('the pay button should be enabled once every seat has a passenger and the code is 00000');

  // Saved, the hold goes on (naming passengers never restarts it); a seat
  // added gets an empty row, the rows of the seats kept keep their names.
  const beforeSave = await countdownSeconds(page);
  await page.getByRole('button', { name: 'Save passengers' }).click();
  await waitText(page, 'passenger-state', 'Passengers saved');
  const afterSave = await countdownSeconds(page);
  if (!(afterSave <= beforeSave)) fail(`saving the passengers should not restart the hold: ${beforeSave}s, then ${afterSave}s`);
  await page.getByTestId(`seat-${b}`).click();
  await waitLabel(page, b, 'selected');
  if ((await page.getByLabel(`Given name, seat ${b}`, { exact: true }).inputValue()) !== '') fail(`the row of seat ${b}, just added, should be empty`);
  if (!(await pay.isDisabled())) fail(`the pay button should be disabled while seat ${b} has no passenger`);
  for (const [i, seat] of seats.entries()) {
    const kept = await page.getByLabel(`Given name, seat ${seat}`, { exact: true }).inputValue();
    if (kept !== PEOPLE[i][0]) fail(`seat ${seat} was kept, its passenger should be too: "${kept}"`);
  }
  await page.getByTestId(`seat-${b}`).click();
  await waitLabel(page, b, 'available');
  await accessible(page, 'the passenger form, filled');
  await pay.click();

  const reference = await checkTicket(page, seats, PEOPLE);
  const conf = (await page.getByTestId('confirmation').textContent()).replace(/\s+/g, ' ');
  for (const want of [orderId, a, c, money(await seatsPrice('FL101', [a, c]))]) {
    if (!conf.includes(want)) fail(`the confirmation should show ${want}: "${conf.trim()}"`);
  }
  await waitLabel(page, a, 'yours');
  await oneStream(streams, 'once confirmed');
  await accessible(page, 'the confirmation');
  check();
  await screenshot(page, 'pay');

  // Someone else now sees both seats sold.
  const other = await openPage(browser, BASE_URL);
  await openFlight(other.page, 'FL101');
  await waitLabel(other.page, a, 'sold');
  await waitLabel(other.page, c, 'sold');
  if (!(await other.page.getByTestId(`seat-${a}`).isDisabled())) fail(`sold seat ${a} should be disabled`);
  other.check();
  await screenshot(other.page, 'pay-other-visitor');
  await other.context.close();
  await context.close();
  const opened = streams.paths.get('/api/events');
  return `order ${orderId}, reference ${reference}, seats ${a} ${c}; one event stream at a time (${opened} opened in turn)`;
}

// (2) Pay 99999: retries with progress, then failure and the seats released.
async function scenarioDecline(browser, config) {
  const max = config.paymentMaxRetries;
  if (max < 2) fail(`PAYMENT_MAX_RETRIES is ${max}; the retry scenario needs at least 2`);
  const { context, page, check } = await openPage(browser, BASE_URL);
  const flightNumber = ['FL102', 'FL201', 'FL202'][Math.floor(Math.random() * 3)];
  await openFlight(page, flightNumber);
  const seats = await pickAvailable(page, 2);
  for (const s of seats) {
    await page.getByTestId(`seat-${s}`).click();
    await waitLabel(page, s, 'selected');
  }
  await fillPassengers(page, seats, PEOPLE);
  await pay(page, '99999');
  await waitText(page, 'payment-status', 'Validating payment', 10_000);
  await waitText(page, 'payment-status', `Payment failed — retrying (attempt 2 of ${max})`, 20_000);
  await waitText(page, 'payment-last-error', 'declined', 5_000);
  await waitText(page, 'failure', 'your seats have been released', 40_000);
  for (const s of seats) await waitLabel(page, s, 'available', 10_000);
  await step('"Start again" button', () => page.locator('[data-testid="failure"] [data-testid="start-again"]').waitFor({ state: 'visible' }));
  check();
  await screenshot(page, 'decline');
  await context.close();
  return `${flightNumber}, seats ${seats.join(' ')}`;
}

// (3) A hold of a few seconds, at phone width: warning, expiry, release.
async function scenarioExpire(browser) {
  if (!SHORT_BASE_URL) fail('SHORT_BASE_URL is not set (an API on the same stack with a hold of a few seconds)');
  const config = await getJson(SHORT_BASE_URL, '/api/config');
  if (config.seatReservationSeconds > 30) fail(`SHORT_BASE_URL's hold is ${config.seatReservationSeconds}s; expected a few seconds`);
  const { context, page, check } = await openPage(browser, SHORT_BASE_URL, {
    viewport: { width: 360, height: 780 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  });
  await openFlight(page, 'FL202');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the page is ${overflow}px wider than a 360px phone screen`);
  const [seat] = await pickAvailable(page, 1);
  await page.getByTestId(`seat-${seat}`).click();
  await waitLabel(page, seat, 'selected');
  await step('countdown warns in the last minute', () =>
    page.waitForFunction(() => ['warning', 'ended'].includes(document.querySelector('[data-testid="countdown"]')?.dataset.state), null, { timeout: 5_000 }),
  );
  await waitText(page, 'expired', 'your seats have been released', (config.seatReservationSeconds + 30) * 1000);
  await waitLabel(page, seat, 'available', 10_000);
  check();
  await screenshot(page, 'expire');
  await context.close();
  return `${config.seatReservationSeconds}s hold on seat ${seat}`;
}

// (4) Another visitor holds a seat: an open seat map shows it taken within a
// second, pushed by the flight's event stream, without a reload or a poll;
// and available again when they give it up.
async function scenarioSeatTaken(browser) {
  const { context, page, check } = await openPage(browser, BASE_URL);
  const flight = await flightByNumber('FL102');
  const stream = pageStream(page, flight.id);
  await openFlight(page, 'FL102');
  await step('the seat map stream opens', () => stream);
  await page.evaluate(() => {
    window.sameDocument = true;
  });
  const reads = countSeatMapReads(page, flight.id);
  const [seat] = await pickAvailable(page, 1);

  const shown = labelChange(page, seat, 'held by another customer');
  const sent = Date.now();
  const orderId = await holdAsOther(flight.id, [seat]);
  const held = Date.now();
  const at = await within(shown, 1000, `seat ${seat} should show as held by another customer`);
  if (!(await page.getByTestId(`seat-${seat}`).isDisabled())) fail(`seat ${seat}, held by another visitor, should be disabled`);
  await screenshot(page, 'seat-taken');

  const freed = labelChange(page, seat, 'available');
  await cancelAsOther(orderId);
  const cancelled = Date.now();
  const back = await within(freed, 1000, `seat ${seat} should be available again after the other visitor cancelled`);

  if (!(await page.evaluate(() => window.sameDocument))) fail('the page reloaded');
  if (reads.length) fail(`the seat map was polled ${reads.length} times while its stream was open`);
  check();
  await context.close();
  return `seat ${seat} shown held ${at - sent} ms after the other visitor's request (its 201 took ${held - sent} ms), available again ${back - cancelled} ms after its cancel was answered; no polling`;
}

// Shift the page's clock (Date.now() and new Date()) by `skew` ms; the
// monotonic clock, performance.now(), is left alone, as a wrong wall clock does.
function shiftClock(skew) {
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args) {
      super(...(args.length ? args : [RealDate.now() + skew]));
    }

    static now() {
      return RealDate.now() + skew;
    }
  }
  globalThis.Date = SkewedDate;
}

// (5) A visitor's clock is 15 minutes off: the countdown still follows the
// server's timer, the note says until when the hold can be extended on the
// visitor's own clock, and paying works.
async function scenarioSkewedClock(browser, config, minutes) {
  const hold = config.seatReservationSeconds;
  const skew = minutes * 60_000;
  const { context, page, check } = await openPage(browser, BASE_URL);
  await page.addInitScript(shiftClock, skew);
  const flightNumber = ['FL102', 'FL201', 'FL202'][Math.floor(Math.random() * 3)];
  await openFlight(page, flightNumber);
  const off = (await page.evaluate(() => [Date.now(), new Date().getTime()])).map((t) => t - Date.now());
  if (off.some((ms) => Math.abs(ms - skew) > 5_000)) fail(`the page's clock should be ${minutes} min off, is ${off.map((ms) => `${ms} ms`).join(', ')}`);

  const [seat] = await pickAvailable(page, 1);
  await page.getByTestId(`seat-${seat}`).click();
  await waitLabel(page, seat, 'selected');
  await step('countdown appears', () => page.getByTestId('countdown').waitFor({ state: 'visible' }));
  await waitText(page, 'countdown-note', 'Held for');
  const href = await page.getByTestId('workflow-link').getAttribute('href');
  const orderId = href.slice(href.lastIndexOf('booking-') + 'booking-'.length);
  const shown = await countdownSeconds(page);
  const { timerRemaining, maxExpiresAt } = await getJson(BASE_URL, `/api/orders/${orderId}/status`);
  if (!(Math.abs(shown - timerRemaining) <= 3)) fail(`countdown shows ${shown}s, the server's timer says ${timerRemaining}s (hold ${hold}s)`);
  // Until when the hold can be extended, on the visitor's own clock.
  const capOnPage = Date.parse(maxExpiresAt) + skew;
  const capTexts = await page.evaluate((ms) => {
    const fmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
    return [ms - 30_000, ms + 30_000].map((t) => fmt.format(new Date(t)));
  }, capOnPage);
  const note = await page.getByTestId('countdown-note').textContent();
  if (!capTexts.some((t) => note.includes(`extended until ${t}`))) fail(`the note should say the hold can be extended until ${capTexts.join(' or ')} (the visitor's clock): "${note}"`);
  await sleep(2300);
  const later = await countdownSeconds(page);
  if (!(later <= shown - 1 && later >= shown - 4)) fail(`countdown should run down by ~2 s: ${shown}s, then ${later}s 2.3 s later`);

  await fillPassengers(page, [seat], PEOPLE);
  await pay(page, '00000');
  await waitText(page, 'confirmation', 'Booking confirmed', 40_000);
  await waitLabel(page, seat, 'yours');
  check();
  await screenshot(page, minutes > 0 ? 'clock-ahead' : 'clock-behind');
  await context.close();
  return `${flightNumber} seat ${seat}: countdown ${shown}s, server ${timerRemaining}s; confirmed`;
}

// (6) The event stream answers 404 (a server without it): the seat map is
// polled and still shows another visitor's hold; once the stream answers
// again, polling stops.
async function scenarioFallback(browser) {
  const isStream = (url) => url.pathname.endsWith('/events'); // /api/events, and any per resource
  const { context, page, check } = await openPage(browser, BASE_URL, { allowErrors: /\/events\b|EventSource/ });
  const streams = watchStreams(page);
  await page.route(isStream, (route) =>
    route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"NOT_FOUND","message":"no such route"}' }),
  );
  const flight = await flightByNumber('FL201');
  const reads = countSeatMapReads(page, flight.id);
  await openFlight(page, 'FL201');
  const [seat] = await pickAvailable(page, 1);
  const shown = labelChange(page, seat, 'held by another customer');
  const orderId = await holdAsOther(flight.id, [seat]);
  const held = Date.now();
  const at = await within(shown, 4000, `with the streams down, seat ${seat} should show as held (polling)`);
  await cancelAsOther(orderId);
  await waitLabel(page, seat, 'available', 4000);
  if (reads.length < 3) fail(`the seat map should be polled while its stream is down: ${reads.length} reads`);
  if (!streams.paths.has('/api/events')) fail('the page should have tried its stream, /api/events');

  const stream = pageStream(page, flight.id, { timeout: 15_000 });
  await page.unroute(isStream);
  await step('the seat map stream is reopened', () => stream);
  await sleep(500);
  const before = reads.length;
  await sleep(6000);
  if (reads.length !== before) fail(`polling should stop once the stream is open: ${reads.length - before} reads in 6 s`);
  check();
  await screenshot(page, 'fallback');
  await context.close();
  return `seat ${seat} shown held ${at - held} ms after the hold by polling (${before} reads); no reads once the stream reopened`;
}

// Click a seat and wait up to `ms` for the booking call it makes (`method`
// to /api/orders…): its status and how long it took. The tab comes to the
// front first, as a visitor's would (a hidden tab's clicks are slow).
async function bookingClick(page, seat, method, ms) {
  await page.bringToFront();
  const answered = page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname.startsWith('/api/orders'), { timeout: ms });
  const t0 = Date.now();
  await page.getByTestId(`seat-${seat}`).click();
  const res = await step(`the ${method} for seat ${seat} is answered within ${ms} ms`, () => answered);
  return { status: res.status(), ms: Date.now() - t0 };
}

// (7) Two tabs of one browser share its six connections to the server. With
// both on a seat map, both holding seats, a hold from the second tab and a
// change from the first are still answered at once, and each tab sees the
// other's seats live.
async function scenarioTwoTabs(browser) {
  const { context, page: first, check } = await openPage(browser, BASE_URL);
  const other = await newTab(context);
  const tabs = [first, other.page];
  const streams = tabs.map(watchStreams);
  const flight = await flightByNumber('FL201');
  for (const page of tabs) {
    const stream = pageStream(page, flight.id);
    await openFlight(page, 'FL201');
    await step('the page stream opens', () => stream);
  }
  const [a, b, c] = await pickAvailable(first, 3);
  const calls = [
    [first, a, 'POST', 201],
    [other.page, b, 'POST', 201],
    [first, c, 'PUT', 200],
  ];
  const took = [];
  for (const [page, seat, method, want] of calls) {
    const { status, ms } = await bookingClick(page, seat, method, 5000);
    if (status !== want) fail(`the ${method} for seat ${seat} answered ${status}, expected ${want}`);
    await waitLabel(page, seat, 'selected');
    took.push(`${method} ${ms} ms`);
  }
  await waitLabel(first, b, 'held by another customer', 2000);
  await waitLabel(other.page, c, 'held by another customer', 2000);
  for (const [i, s] of streams.entries()) await oneStream(s, `in tab ${i + 1}, both holding seats`);
  await screenshot(other.page, 'two-tabs');
  for (const page of tabs) {
    await page.bringToFront();
    await page.getByTestId('cancel-order').click();
    await waitText(page, 'notice', 'cancelled', 5000);
  }
  check();
  other.check();
  await context.close();
  return `both tabs holding seats, each on one stream; answered: ${took.join(', ')}`;
}

// (8) Book two seats for two passengers, see the reference; on /manage (the
// header's link) a wrong last name finds nothing, the right one finds the
// booking; cancel it (a confirmation step first), see the refund go from
// pending to done; too many wrong names are refused for a while; the seats
// are free again on the seat map.
async function scenarioManage(browser) {
  const lookupMiss = /status of (404|429) .*\/api\/bookings\//;
  const { context, page, check } = await openPage(browser, BASE_URL, { allowErrors: lookupMiss });
  await openFlight(page, 'FL101');
  // One business seat (coloured by its cabin, its price in its name) and
  // one other seat: the running total is their two prices.
  await step('the cabin legend', () => page.getByTestId('cabin-legend').getByText(/^Business: rows 1–3/).waitFor());
  const business = await page.$$eval('[data-testid="seat-map"] button.seat[data-cabin="business"]', (bs) =>
    bs.filter((b) => !b.disabled && / available$/.test(b.getAttribute('aria-label'))).map((b) => b.dataset.seat),
  );
  if (business.length === 0) fail('no business seat is available on FL101');
  const [picked] = business;
  const pickedLabel = await seatLabel(page, picked);
  const pickedPrice = await seatsPrice('FL101', [picked]);
  if (!pickedLabel.includes('Business') || !pickedLabel.includes(money(pickedPrice))) {
    fail(`a business seat's name should give its cabin and price ${money(pickedPrice)}: "${pickedLabel}"`);
  }
  const other = (await pickAvailable(page, 10)).find((s) => !business.includes(s));
  const seats = [picked, other].sort();
  for (const s of seats) {
    await page.getByTestId(`seat-${s}`).click();
    await waitLabel(page, s, 'selected');
  }
  await fillPassengers(page, seats, PEOPLE);
  await pay(page, '00000');
  const reference = await checkTicket(page, seats, PEOPLE);
  const paid = money(await seatsPrice('FL101', seats));

  await page.getByRole('link', { name: 'Manage booking', exact: true }).click();
  await step('the manage page', () => page.getByRole('heading', { level: 1, name: 'Manage your booking' }).waitFor());
  await accessible(page, 'the manage page');
  await page.getByLabel('Booking reference').fill(reference.toLowerCase());
  await page.getByLabel('Last name').fill('Babbage');
  await page.getByRole('button', { name: 'Find booking' }).click();
  await waitText(page, 'lookup-error', 'No booking matches');
  await accessible(page, 'the manage page, no booking found');

  await page.getByLabel('Last name').fill(PEOPLE[0][1]);
  const lookup = page.waitForRequest((r) => new URL(r.url()).pathname.startsWith('/api/bookings/'));
  await page.getByRole('button', { name: 'Find booking' }).click();
  const asked = await step('the look-up is sent', () => lookup);
  const url = decodeURIComponent(asked.url());
  if (asked.method() !== 'POST' || new URL(asked.url()).pathname !== '/api/bookings/lookup') fail(`the look-up should be POST /api/bookings/lookup: ${asked.method()} ${url}`);
  if (url.includes(PEOPLE[0][1]) || url.includes(reference) || /lastName/i.test(url)) fail(`the look-up's URL should carry neither the name nor the reference: ${url}`);
  await waitText(page, 'booking-status', 'Confirmed');
  const shown = (await page.getByTestId('booking-view').textContent()).replace(/\s+/g, ' ');
  for (const want of [reference, 'FL101', paid, ...seats.map((seat, i) => `${seat} ${PEOPLE[i][0]} ${PEOPLE[i][1]}`)]) {
    if (!shown.includes(want)) fail(`the booking should show ${want}: "${shown.trim()}"`);
  }
  await accessible(page, 'the manage page with a booking');

  await page.getByRole('button', { name: 'Cancel booking…' }).click();
  const confirm = page.getByRole('group', { name: 'Cancel this booking?' });
  await step('the cancellation asks first', () => confirm.waitFor());
  const facts = (await confirm.textContent()).replace(/\s+/g, ' ');
  for (const want of [paid, ...seats, 'released', 'cannot be undone']) {
    if (!facts.includes(want)) fail(`the cancellation step should say ${want}: "${facts.trim()}"`);
  }
  await accessible(page, 'the cancellation step');
  await page.evaluate(() => {
    const badge = document.querySelector('[data-testid="booking-status"]');
    window.statusSeen = [];
    new MutationObserver(() => window.statusSeen.push(badge.textContent)).observe(badge, { childList: true, characterData: true, subtree: true });
  });
  const keyed = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === `/api/bookings/${reference}/cancel`);
  await confirm.getByRole('button', { name: `Yes, cancel and refund ${paid}` }).click();
  const sent = await step('the cancellation is sent', () => keyed);
  if (!sent.headers()['idempotency-key']) fail('the cancellation should carry an Idempotency-Key');
  const pending = Date.now();
  await waitText(page, 'booking-status', 'refunded', 60_000);
  await waitText(page, 'refund-title', `Refunded ${paid}`);
  const statuses = await page.evaluate(() => window.statusSeen);
  if (!statuses.some((t) => /refund in progress/.test(t))) fail(`the refund should show as in progress before it is done: ${statuses.join(' → ')}`);
  await accessible(page, 'the manage page, refunded');
  const refunded = Date.now() - pending;
  await screenshot(page, 'manage');

  // Guessing names: after some failures the page is told to wait, and says so.
  let tries = 0;
  await page.getByLabel('Last name').fill('Babbage');
  for (; tries < 15 && !(await page.getByTestId('lookup-error').textContent()).includes('Too many attempts'); tries++) {
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname.startsWith('/api/bookings/'));
    await page.getByRole('button', { name: 'Find booking' }).click();
    await answered;
  }
  await waitText(page, 'lookup-error', 'Too many attempts');
  await step('the lookup button waits', () => page.getByRole('button', { name: /^Try again in \d+ (minutes?|seconds?)$/ }).waitFor());
  if (!(await page.getByTestId('lookup-button').isDisabled())) fail('the lookup button should be disabled while lookups are refused');

  await page.getByRole('link', { name: 'Book seats' }).click();
  await openFlight(page, 'FL101');
  for (const s of seats) await waitLabel(page, s, 'available', 10_000);
  check();
  await context.close();
  return `reference ${reference}, seats ${seats.join(' ')}; ${statuses.join(' → ')} ${refunded} ms after the cancel was sent; refused after ${tries} more wrong names; seats on sale again`;
}

// (10) Online check-in: a business seat on FL909 (the test puts it 3 h
// from departure), booked and paid, checked in on /manage: the boarding
// pass shows with its QR code, and its BCBP string reads back field by
// field; the booking can no longer be cancelled; printed, the passes alone.
async function scenarioCheckIn(browser) {
  const { context, page, check } = await openPage(browser, BASE_URL);
  await openFlight(page, 'FL909');
  const seat = '2A';
  await page.getByTestId(`seat-${seat}`).click();
  await waitLabel(page, seat, 'selected');
  const person = PEOPLE[1];
  await fillPassengers(page, [seat], [person]);
  await pay(page, '00000');
  const reference = await checkTicket(page, [seat], [person]);

  await page.getByRole('link', { name: 'Manage booking', exact: true }).click();
  await step('the manage page', () => page.getByRole('heading', { level: 1, name: 'Manage your booking' }).waitFor());
  // The page's module has run (it reads the reference the link carries).
  await step('the manage page is loaded', () => page.waitForLoadState('load'));
  await page.getByLabel('Booking reference').fill(reference.toLowerCase());
  await page.getByLabel('Last name').fill(person[1]);
  await page.getByRole('button', { name: 'Find booking' }).click();
  await waitText(page, 'booking-status', 'Confirmed');
  await waitText(page, 'checkin-hint', 'Online check-in is open');
  const ticket = (await page.getByTestId('ticket-number').first().textContent()).trim();
  if (!/^E-ticket \d{13}$/.test(ticket)) fail(`the booking should show a 13-digit e-ticket number: "${ticket}"`);
  await accessible(page, 'the manage page, check-in open');

  await page.getByRole('button', { name: 'Check in all passengers' }).click();
  const code = page.getByTestId('pass-bcbp');
  await step('the boarding pass is shown', () => code.first().waitFor({ timeout: 15_000 }));
  await step('its QR code', () => page.getByRole('img', { name: `Boarding pass barcode of ${person[0]} ${person[1]}, seat ${seat}` }).waitFor());
  const bcbp = await code.first().textContent();
  // IATA Resolution 792, format M, one leg, mandatory items.
  const fields = {
    format: bcbp.slice(0, 2), name: bcbp.slice(2, 22).trimEnd(), eticket: bcbp[22], pnr: bcbp.slice(23, 30).trimEnd(),
    route: bcbp.slice(30, 36), carrier: bcbp.slice(36, 39).trimEnd(), flight: bcbp.slice(39, 44).trimEnd(),
    compartment: bcbp[47], seat: bcbp.slice(48, 52), sequence: bcbp.slice(52, 57).trimEnd(), status: bcbp[57], size: bcbp.slice(58, 60),
  };
  const want = {
    format: 'M1', name: "O'NEILL-OTA/ZOE", eticket: 'E', pnr: reference, carrier: 'FL', flight: '0909',
    compartment: 'C', seat: '002A', sequence: '0001', status: '1', size: '00',
  };
  if (bcbp.length !== 60) fail(`the BCBP should be 60 characters: ${JSON.stringify(bcbp)}`);
  for (const [k, v] of Object.entries(want)) if (fields[k] !== v) fail(`BCBP ${k} should be ${v}, is ${JSON.stringify(fields[k])} in ${JSON.stringify(bcbp)}`);
  if (!/^\d{3}$/.test(bcbp.slice(44, 47))) fail(`BCBP date should be a day of the year: ${JSON.stringify(bcbp)}`);
  if (await page.getByTestId('cancel-booking').isVisible()) fail('a checked-in booking should offer no cancellation');
  await accessible(page, 'the boarding passes');
  await page.evaluate(() => document.body.classList.add('printing-passes'));
  await page.emulateMedia({ media: 'print' });
  const printed = await page.evaluate(() => {
    const seen = (sel) => [...document.querySelectorAll(sel)].some((n) => n.checkVisibility());
    return { pass: seen('[data-testid="boarding-pass"]'), buttons: seen('button'), header: seen('header.topbar'), form: seen('#lookup-form') };
  });
  await page.emulateMedia({ media: 'screen' });
  await page.evaluate(() => document.body.classList.remove('printing-passes'));
  if (!printed.pass || printed.buttons || printed.header || printed.form) fail(`printed, only the boarding passes should show: ${JSON.stringify(printed)}`);
  await screenshot(page, 'checkin');
  check();
  await context.close();
  return `reference ${reference}, ${ticket}, pass ${JSON.stringify(bcbp)}`;
}

// (9) The API reference page, an operation open and a request sent.
async function scenarioDocs(browser) {
  const { context, page, check } = await openPage(browser, BASE_URL);
  await step('load /api/docs', () => page.goto('/api/docs'));
  await step('the operations are listed', () => page.locator('details.op').first().waitFor());
  await accessible(page, 'the API reference');
  const show = page.locator('#op-flights_show');
  await show.locator('summary').click();
  await show.getByRole('button', { name: 'Send' }).click();
  await step('the answer is shown', () => show.locator('form pre').filter({ hasText: '"seatMap"' }).waitFor());
  await accessible(page, 'the API reference, a request sent');
  check();
  await context.close();
  return 'audited as loaded and with an answer shown';
}

// ---------------------------------------------------------------- the operator console

// A flight's counts on the console's dashboard: { available, held, sold }.
const opsCounts = (page, flightNumber) =>
  page.getByTestId(`ops-flight-${flightNumber}`).evaluate((row) => {
    const n = (field) => parseInt(row.querySelector(`[data-field="${field}"]`).textContent, 10);
    return { available: n('available'), held: n('held'), sold: n('sold') };
  });

// Wait until the dashboard's counts of `flightNumber` are `want` (a subset).
async function waitCounts(page, flightNumber, want, ms, what) {
  const t0 = Date.now();
  let seen = null;
  while (Date.now() - t0 < ms) {
    seen = await opsCounts(page, flightNumber).catch(() => null);
    if (seen && Object.entries(want).every(([k, v]) => seen[k] === v)) return Date.now() - t0;
    await sleep(50);
  }
  fail(`${what}: the dashboard should show ${flightNumber} ${JSON.stringify(want)} within ${ms} ms, shows ${JSON.stringify(seen)}`);
}

// A datetime-local input's value for `date`, in the browser's (and this
// process's) time zone.
const localInput = (d) => {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
};

async function availableSeat(flightId) {
  const { seatMap } = await getJson(BASE_URL, `/api/flights/${flightId}`);
  const free = seatMap.seats.filter((s) => s.status === 'available').map((s) => s.id);
  if (!free.length) fail(`flight ${flightId} has no seat available`);
  return free[Math.floor(Math.random() * free.length)];
}

const opsHeading = (page, name) => step(`the "${name}" page`, () => page.getByRole('heading', { level: 1, name, exact: true }).waitFor());

// Sign in with the keyboard: a wrong password first, then the right one.
async function opsSignIn(page, name, password) {
  await step('load /ops', () => page.goto('/ops'));
  await opsHeading(page, 'Operator sign-in');
  await accessible(page, 'the console, signed out');
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Password', { exact: true }).fill(`${password}-wrong`);
  await page.getByLabel('Password', { exact: true }).press('Enter');
  await waitText(page, 'signin-error', 'do not match');
  await accessible(page, 'the console, a sign-in refused');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Password', { exact: true }).press('Enter');
  await opsHeading(page, 'Flights');
  await waitText(page, 'ops-user', name);
}

// The orders page: the order found by its id, opened; cancelled after the
// confirmation step.
async function opsCancelOrder(page, orderId, flight) {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Orders' }).click();
  await opsHeading(page, 'Orders');
  await page.getByLabel('Status', { exact: true }).selectOption({ label: 'Seats held' });
  await page.getByLabel('Flight', { exact: true }).selectOption({ label: `${flight.flightNumber} · ${flight.origin} → ${flight.destination}` });
  await page.getByLabel('Search', { exact: true }).fill(orderId);
  await page.getByRole('button', { name: 'Show orders' }).click();
  const link = page.getByRole('link', { name: orderId.slice(0, 8), exact: true });
  await step('the order is listed', () => link.waitFor());
  await waitText(page, 'orders-count', '1 order matches');
  await accessible(page, 'the console, orders filtered');
  await link.click();
  await opsHeading(page, `Order ${orderId.slice(0, 8)}`);
  await waitText(page, 'order-status', 'Seats held');
  const href = await page.getByRole('link', { name: /Open the workflow in the Temporal UI/ }).getAttribute('href');
  if (!href?.endsWith(`/workflows/booking-${orderId}`)) fail(`the workflow link should end with booking-${orderId}: ${href}`);
  await accessible(page, 'the console, an order');
  // A live order on screen is watched through its public status (no
  // names); its full read (its passengers, an audited read) is not repeated
  // while the status stays.
  const full = [];
  const seeFull = (r) => new URL(r.url()).pathname === `/api/ops/orders/${orderId}` && full.push(r.url());
  page.on('request', seeFull);
  for (let i = 1; i <= 2; i++) {
    await step(`the live order's status is read (${i})`, () => page.waitForRequest((r) => new URL(r.url()).pathname === `/api/orders/${orderId}/status`, { timeout: 15_000 }));
  }
  page.off('request', seeFull);
  if (full.length) fail(`watching an unchanged order should not read it in full again: ${full.join(', ')}`);
  await page.getByRole('button', { name: 'Cancel order…' }).click();
  const confirm = page.getByRole('group', { name: 'Cancel this order?' });
  await step('the cancellation asks first', () => confirm.waitFor());
  await accessible(page, 'the console, the cancel step');
  await confirm.getByRole('button', { name: 'Yes, cancel the order' }).click();
  await waitText(page, 'order-status', 'Cancelled', 20_000);
  await waitText(page, 'order-history', 'Cancelled');
  const { status } = await getJson(BASE_URL, `/api/orders/${orderId}/status`);
  if (status !== 'CANCELLED') fail(`the customer's order should be CANCELLED, is ${status}`);
}

// The flight form: refused empty (each field says why), refused for a
// number taken (said at the number), then a new flight added.
async function opsAddFlight(page, number) {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'New flight' }).click();
  await opsHeading(page, 'New flight');
  await page.getByRole('button', { name: 'Add flight' }).click();
  await step('an empty form is flagged', () => page.getByText('Enter the flight number.').waitFor());
  await accessible(page, 'the console, the flight form with errors');
  const departs = new Date(Date.now() + 10 * 86_400_000);
  const fields = [
    ['Flight number', 'FL101'],
    ['From (airport code)', 'bos'],
    ['To (airport code)', 'sea'],
    ['Departure', localInput(departs)],
    ['Arrival', localInput(new Date(departs.getTime() + 6 * 3_600_000))],
    ['Rows', '5'],
    ['Seat letters', 'abcd'],
    ['Price per seat (USD)', '199.50'],
  ];
  for (const [label, value] of fields) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Add flight' }).click();
  const numberField = page.getByLabel('Flight number', { exact: true });
  await step('a number taken is refused at its field', () =>
    page.waitForFunction(() => {
      const input = document.getElementById('ff-flightNumber');
      const error = document.getElementById('ff-flightNumber-error');
      return input.getAttribute('aria-invalid') === 'true' && !error.hidden && /already exists/.test(error.textContent) && input.getAttribute('aria-describedby')?.includes(error.id);
    }),
  );
  await accessible(page, 'the console, a flight refused by the server');
  await numberField.fill(number);
  await page.getByRole('button', { name: 'Add flight' }).click();
  await opsHeading(page, 'Flights');
  await step(`${number} is on the dashboard`, () => page.getByTestId(`ops-flight-${number}`).waitFor());
}

// (10) The operator console: signed in (a wrong password first), a
// customer's hold shows on the dashboard's counts, pushed; the order is
// found, opened and cancelled, and the audit trail says so; a new flight
// (refused first for a number taken) is on the public page; its sales
// closed, a customer's create is refused 409 SALES_CLOSED; the sweep's runs;
// signed out, the API answers 401. Every state is audited with axe-core.
async function scenarioOps(browser) {
  const { OPS_NAME: name, OPS_PASSWORD: password } = process.env;
  if (!name || !password) fail('OPS_NAME and OPS_PASSWORD are not set (an operator made with `flightctl operator add`)');
  const expected = /status of 401 .*\/api\/ops\/session|status of 409 .*\/api\/ops\/flights\b/;
  const { context, page, check } = await openPage(browser, BASE_URL, { allowErrors: expected });
  const streams = watchStreams(page);
  const polls = [];
  page.on('request', (r) => {
    if (r.method() === 'GET' && new URL(r.url()).pathname === '/api/ops/flights') polls.push(r.url());
  });
  await opsSignIn(page, name, password);

  const flight = await flightByNumber('FL101');
  await step('FL101 is on the dashboard', () => page.getByTestId('ops-flight-FL101').waitFor());
  await step('its bookings sparkline has a text alternative', () =>
    page.getByTestId('ops-flight-FL101').getByRole('img', { name: /^(No bookings|\d+ bookings?) in the last 30 minutes/ }).waitFor(),
  );
  await accessible(page, 'the console dashboard');
  const before = await opsCounts(page, 'FL101');
  const seat = await availableSeat(flight.id);
  const orderId = await holdAsOther(flight.id, [seat]);
  const shownIn = await waitCounts(page, 'FL101', { held: before.held + 1, available: before.available - 1 }, 5000, "a customer's hold");
  if (!streams.paths.has('/api/ops/flights/events')) fail('the dashboard should follow /api/ops/flights/events');
  if (polls.length) fail(`the dashboard should not poll while its stream is open: ${polls.length} reads of /api/ops/flights`);

  await opsCancelOrder(page, orderId, flight);
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Dashboard' }).click();
  await opsHeading(page, 'Flights');
  await waitCounts(page, 'FL101', { held: before.held, available: before.available }, 5000, 'the cancelled hold');

  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Audit trail' }).click();
  await opsHeading(page, 'Audit trail');
  const entry = page.getByRole('row').filter({ hasText: orderId }).filter({ hasText: name });
  await step('the cancellation is in the audit trail', () => entry.filter({ hasText: 'cancel_order' }).first().waitFor());
  await step('the read of its passengers is in the audit trail', () => entry.filter({ hasText: 'read_order' }).first().waitFor());
  await accessible(page, 'the console audit trail');

  const number = `OP${100 + Math.floor(Math.random() * 9900)}`;
  await opsAddFlight(page, number);
  await screenshot(page, 'ops');
  const visitor = await openPage(browser, BASE_URL);
  await step('load the public page', () => visitor.page.goto('/'));
  await step(`${number} is on the public page`, () => visitor.page.getByTestId(`flight-${number}`).waitFor());
  visitor.check();
  await visitor.context.close();
  const added = await flightByNumber(number);

  // The scheduled sale and the fares, set from the dashboard's form.
  const settings = page.getByTestId('ops-settings');
  await settings.getByLabel('Flight to change', { exact: true }).selectOption(added.id);
  const opens = new Date(Date.now() + 86_400_000);
  await settings.getByLabel('Sales open at', { exact: true }).fill(localInput(opens));
  await settings.getByLabel('Admissions per minute', { exact: true }).fill('30');
  await settings.getByRole('button', { name: 'Schedule the sale' }).click();
  await step('the sale is scheduled', () => settings.getByText(`Sales of ${number} open`).waitFor());
  const scheduled = await flightByNumber(number);
  if (!scheduled.salesOpenAt || Math.abs(new Date(scheduled.salesOpenAt) - opens) > 60_000) fail(`${number} should open for sale at ${opens.toISOString()}, shows ${scheduled.salesOpenAt}`);
  await accessible(page, 'the console dashboard, a sale scheduled');
  await settings.getByLabel('Sales open at', { exact: true }).fill('');
  await settings.getByLabel('Admissions per minute', { exact: true }).fill('');
  await settings.getByRole('button', { name: 'Schedule the sale' }).click();
  await step('the sale is open again', () => settings.getByText(`${number} is on sale now.`).waitFor());
  await settings.getByLabel('Cabin', { exact: true }).selectOption('ECONOMY');
  await settings.getByLabel('Fare for new holds (USD)', { exact: true }).fill('149.00');
  await settings.getByLabel('Refundable', { exact: true }).uncheck();
  await settings.getByRole('button', { name: 'Change the fare' }).click();
  await step('the fare is changed', () => settings.getByText(`Economy on ${number} is now $149.00 for new holds, not refundable.`).waitFor());
  const { seatMap } = await getJson(BASE_URL, `/api/flights/${added.id}`);
  const economy = seatMap.cabins.find((c) => c.code === 'ECONOMY');
  if (economy?.priceCents !== 14900 || economy.refundable !== false) fail(`the economy fare of ${number} should be 14900 and not refundable, is ${JSON.stringify(economy)}`);
  await accessible(page, 'the console dashboard, a fare changed');

  const close = page.getByRole('button', { name: `Close sales for ${number}` });
  await close.focus();
  await page.keyboard.press('Enter');
  await step('the sales are closed', () => page.getByRole('button', { name: `Open sales for ${number}` }).waitFor());
  await waitText(page, `ops-flight-${number}`, 'Sales closed');
  await accessible(page, 'the console dashboard, sales closed');
  const res = await fetch(`${BASE_URL}/api/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `browser-test-${Math.random()}` },
    body: JSON.stringify({ flightId: added.id, seats: ['1A'] }),
  });
  const refusal = await res.json().catch(() => ({}));
  if (res.status !== 409 || refusal.error !== 'SALES_CLOSED') fail(`a create on a closed flight should be 409 SALES_CLOSED, is ${res.status} ${JSON.stringify(refusal)}`);

  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Sweep runs' }).click();
  await opsHeading(page, 'Sweep runs');
  await step('the runs are read', () => page.getByText(/\d+ runs? shown|has not run yet/).first().waitFor());
  await step('the money balances', () => page.getByTestId('ops-money-summary').getByText(/^Charged \$[\d,.]+, refunded \$[\d,.]+, sold \$[\d,.]+\. Every order balances\.$/).waitFor());
  await accessible(page, 'the console sweep runs');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await opsHeading(page, 'Operator sign-in');
  await waitText(page, 'signin-error', 'You have signed out');
  const after = await context.request.get('/api/ops/flights');
  if (after.status() !== 401) fail(`signed out, /api/ops/flights should answer 401, answers ${after.status()}`);
  check();
  await context.close();
  return `hold of FL101 ${seat} shown ${shownIn} ms after it was made, no polling; order ${orderId.slice(0, 8)} cancelled and audited; ${number} added, on the public page, sales closed: 409 SALES_CLOSED`;
}

async function main() {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const config = await getJson(BASE_URL, '/api/config');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const scenarios = [
    ['pay', 'hold, change, pay 00000, confirmed, seats sold to others', () => scenarioPay(browser, config)],
    ['decline', 'pay 99999, retry progress, failure, seats released', () => scenarioDecline(browser, config)],
    ['expire', 'short hold at phone width, expiry, seats released', () => scenarioExpire(browser)],
    ['seat-taken', "another visitor's hold shows within 1 s, no reload, no polling", () => scenarioSeatTaken(browser)],
    ['clock-ahead', 'clock 15 min ahead: right countdown, pays', () => scenarioSkewedClock(browser, config, 15)],
    ['clock-behind', 'clock 15 min behind: right countdown, pays', () => scenarioSkewedClock(browser, config, -15)],
    ['fallback', 'stream refused: polling keeps the map current, stops when the stream is back', () => scenarioFallback(browser)],
    ['two-tabs', 'two tabs holding seats: bookings still answered at once, changes seen live', () => scenarioTwoTabs(browser)],
    ['checkin', 'a business seat 3 h before departure, checked in on /manage, its BCBP read off the page, printable', () => scenarioCheckIn(browser)],
    ['manage', 'two passengers, the reference, looked up on /manage, cancelled, refunded, seats free', () => scenarioManage(browser)],
    ['docs', 'the API reference page, audited', () => scenarioDocs(browser)],
    ['ops', "the operator console: a hold live, the order cancelled and audited, a flight added, its sales closed", () => scenarioOps(browser)],
  ].filter(([name]) => !ONLY || ONLY.includes(name));
  let failed = false;
  try {
    for (const [name, what, run] of scenarios) {
      const t0 = Date.now();
      try {
        const detail = await run();
        console.log(`ok   ${name}: ${what} (${detail}; ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failed = true;
        await lastPage?.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-failed.png`), fullPage: true }).catch(() => {});
        console.error(`FAIL ${name}: ${what}\n  ${e instanceof Failure ? e.message : e.stack}`);
        break;
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`accessibility (axe-core): ${audits.length} states audited without a serious or critical violation:\n  ${audits.join('\n  ')}`);
  if (failed) process.exit(1);
  console.log(`all scenarios passed; screenshots in ${SCREENSHOT_DIR}`);
}

main().catch((e) => {
  console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack}`);
  process.exit(1);
});
