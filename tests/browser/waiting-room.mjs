// Browser test of the waiting room (src/api/web/waiting-room.js), against a
// running stack that tests/browser.rs prepared:
//
//   BASE_URL        the UI
//   SCREENSHOT_DIR  where each state's screen is saved
//   CHROMIUM        the browser binary (default /usr/bin/chromium)
//   LATER_FLIGHT    a flight whose sale opens in an hour
//   SALE_FLIGHT     a flight whose sale has just opened, with buyers queued
//                   ahead (they buy when admitted), admissions capped
//   SOLD_FLIGHT     a flight with a scheduled sale and no seat left
//
// Scenarios, in one browser context: (1) the later sale shows its
// countdown on the server's clock, nothing else; (2) the open sale shows
// the buyer's place, the people ahead, a progress bar and the estimate,
// live, then the buyer's turn: the seat map, and the create carries the
// `Admission` header and holds the seat; (3) the sold-out flight says so.
// The polite live region never announces the position twice within 30 s.
// Each state is audited with axe-core (a11y.mjs); any console or page
// error, or a page without its Content-Security-Policy, fails.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { audit } from './a11y.mjs';
import { watchPolicy } from './csp.mjs';

const BASE_URL = (process.env.BASE_URL || 'http://localhost:8080').replace(/\/+$/, '');
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(import.meta.dirname ?? '.', 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const { LATER_FLIGHT, SALE_FLIGHT, SOLD_FLIGHT } = process.env;
const ANNOUNCE_EVERY_MS = 30_000;

class Failure extends Error {}
const fail = (msg) => {
  throw new Failure(msg);
};

async function step(what, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(`${what}: ${e.message.split('\n')[0]}`);
  }
}

const audits = [];
async function accessible(page, what) {
  const { other } = await step(`audit ${what}`, () => audit(page, what));
  audits.push(`${what}${other.length ? ` (minor: ${other.join('; ')})` : ''}`);
}

const shot = (page, name) => page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });

async function openFlight(page, number) {
  const card = page.getByTestId(`flight-${number}`);
  await step(`flight ${number} is listed`, () => card.waitFor());
  await card.click();
}

const visible = (page, id, timeout) => step(`${id} is shown`, () => page.getByTestId(id).waitFor({ state: 'visible', timeout }));

async function main() {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ baseURL: BASE_URL, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  await watchPolicy(page, errors);
  page.on('console', (m) => m.type() === 'error' && errors.push(`console error: ${m.text()}`));
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  // What the live region said, and when (the page's clock).
  await page.addInitScript(() => {
    window.__said = [];
    document.addEventListener('DOMContentLoaded', () => {
      const region = document.getElementById('wr-live');
      new MutationObserver(() => window.__said.push({ at: performance.now(), text: region.textContent })).observe(region, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
  });
  const creates = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/orders') creates.push(r.headers().admission ?? null);
  });
  const results = [];
  try {
    await step('load the page', () => page.goto('/'));

    // (1) A sale that opens in an hour: the countdown.
    await openFlight(page, LATER_FLIGHT);
    await visible(page, 'wr-prequeue');
    await step('the countdown runs', () =>
      page.waitForFunction(() => /^(\d+ d )?(\d{2}:)?\d{2}:\d{2}$/.test(document.querySelector('[data-testid="wr-countdown"]').textContent)),
    );
    const left = await page.getByTestId('wr-countdown').textContent();
    const secs = left.split(':').map(Number).reduce((total, part) => total * 60 + part, 0);
    if (!(secs > 55 * 60 && secs <= 60 * 60)) fail(`the countdown to a sale an hour away reads ${left}`);
    if (await page.getByTestId('seat-map').isVisible()) fail('the seat map is shown before the sale opens');
    await accessible(page, 'the waiting room before the sale');
    await shot(page, 'waiting-prequeue');
    results.push(`countdown ${left}`);

    // (2) The open sale: a place, then the buyer's turn.
    await openFlight(page, SALE_FLIGHT);
    await visible(page, 'wr-waiting');
    const first = {
      position: Number(await page.getByTestId('wr-position').textContent()),
      ahead: await page.getByTestId('wr-ahead').textContent(),
      estimate: await page.getByTestId('wr-estimate').textContent(),
    };
    if (!(first.position >= 2)) fail(`the buyer should wait behind the queued buyers, is number ${first.position}`);
    if (!/^\d+ (people|person) ahead of you$/.test(first.ahead)) fail(`people ahead reads "${first.ahead}"`);
    if (!/^(Estimated wait: |Working out)/.test(first.estimate)) fail(`the estimate reads "${first.estimate}"`);
    const bar = await page.getByTestId('wr-progress').evaluate((p) => ({ max: p.max, value: p.value }));
    if (bar.max !== 100 || bar.value < 0 || bar.value > 100) fail(`the progress bar is ${JSON.stringify(bar)}`);
    await accessible(page, 'the waiting room with a place in the queue');
    await shot(page, 'waiting-position');
    const positions = new Set([first.position]);
    const seen = setInterval(() => {
      page
        .getByTestId('wr-position')
        .textContent()
        .then((t) => t && positions.add(Number(t)))
        .catch(() => {});
    }, 250);
    await step("the buyer's turn comes: the seat map", () => page.locator('[data-testid="seat-map"] button.seat').first().waitFor({ state: 'visible', timeout: 120_000 }));
    clearInterval(seen);
    await step('the turn is said', () => page.getByTestId('notice').getByText(/It is your turn/).waitFor());
    await step('seats get their status', () =>
      page.waitForFunction(() => [...document.querySelectorAll('[data-testid="seat-map"] button.seat')].some((b) => / available$/.test(b.getAttribute('aria-label') || ''))),
    );
    const seat = await page.$$eval('[data-testid="seat-map"] button.seat', (bs) => bs.find((b) => !b.disabled && / available$/.test(b.getAttribute('aria-label'))).dataset.seat);
    await page.locator(`[data-testid="seat-map"] button.seat[data-seat="${seat}"]`).click();
    await visible(page, 'panel-hold');
    const sent = creates.at(-1);
    if (!sent) fail(`the create was sent without an Admission header (${creates.length} creates)`);
    await accessible(page, 'the seat map after admission, a seat held');
    await shot(page, 'waiting-admitted');
    results.push(`number ${first.position} (${first.ahead}), positions seen ${[...positions].join(' → ')}, admitted, ${seat} held with the admission`);

    // The live region: the position at most every 30 s.
    const said = await page.evaluate(() => window.__said);
    const placeSaid = said.filter((s) => s.text.startsWith('You are number'));
    for (let i = 1; i < placeSaid.length; i++) {
      const gap = placeSaid[i].at - placeSaid[i - 1].at;
      if (gap < ANNOUNCE_EVERY_MS - 50) fail(`the position was announced twice within ${Math.round(gap)} ms: ${JSON.stringify(placeSaid)}`);
    }
    if (!placeSaid.length) fail(`the position was never announced: ${JSON.stringify(said)}`);
    if (!said.some((s) => s.text.startsWith('It is your turn'))) fail(`the turn was not announced: ${JSON.stringify(said)}`);
    results.push(`live region: ${said.length} announcements, ${placeSaid.length} of the position`);

    // (3) Sold out, said plainly (the hold given up first: one booking at a time).
    await page.getByTestId('cancel-order').click();
    await visible(page, 'panel-idle');
    await openFlight(page, SOLD_FLIGHT);
    await visible(page, 'wr-soldout', 60_000);
    await step('sold out is said', () => page.getByRole('heading', { name: 'Sold out' }).waitFor());
    await accessible(page, 'the waiting room of a sold-out flight');
    await shot(page, 'waiting-soldout');
    results.push('sold out shown');
    if (errors.length) fail(`the page reported errors:\n  ${errors.join('\n  ')}`);
  } catch (e) {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'waiting-failed.png'), fullPage: true }).catch(() => {});
    console.error(`FAIL waiting room: ${e instanceof Failure ? e.message : e.stack}`);
    await browser.close();
    process.exit(1);
  }
  await browser.close();
  console.log(`ok   waiting room: ${results.join('; ')}`);
  console.log(`accessibility (axe-core): ${audits.length} states audited without a serious or critical violation:\n  ${audits.join('\n  ')}`);
}

main().catch((e) => {
  console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack}`);
  process.exit(1);
});
