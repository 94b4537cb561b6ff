// Browser test of the API reference page (/api/docs), against a running
// `serve`: the document renders, an operation opens, its form sends the
// request and shows the answer. Fails on any console or page error, and
// on a page served without a Content-Security-Policy or breaking it.
//
//   BASE_URL  the server;  CHROMIUM  the browser binary

import { chromium } from 'playwright-core';
import { isViolation, watchPolicy } from './csp.mjs';

const BASE_URL = (process.env.BASE_URL || 'http://localhost:8080').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FL101 = '550e8400-e29b-41d4-a716-446655440001';

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
const errors = [];
const elsewhere = [];
try {
  const page = await browser.newPage({ baseURL: BASE_URL });
  page.setDefaultTimeout(15_000);
  // The browser logs the deliberate 400 below; nothing else may be logged.
  const expected = /Failed to load resource: the server responded with a status of 400/;
  await watchPolicy(page, errors);
  page.on('console', (m) => {
    if (m.type() === 'error' && (isViolation(m.text()) || !expected.test(m.text()))) errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(BASE_URL)) elsewhere.push(r.url());
  });

  await page.goto('/api/docs');
  await page.locator('details.op').first().waitFor();
  const count = await page.locator('details.op').count();
  const doc = await (await fetch(`${BASE_URL}/api/openapi.json`)).json();
  const operations = Object.values(doc.paths).flatMap((item) =>
    ['get', 'put', 'post', 'delete', 'patch'].filter((m) => item[m])).length;
  if (count !== operations) throw new Error(`${count} operations listed, the document has ${operations}`);

  // A flight's seat map: the path parameter is prefilled with its example.
  const show = page.locator('#op-flights_show');
  await show.locator('summary').click();
  const id = show.locator('input[name="id"]');
  if ((await id.inputValue()) !== FL101) throw new Error(`id prefilled with ${await id.inputValue()}`);
  await show.getByRole('button', { name: 'Send' }).click();
  const out = show.locator('form pre');
  await out.filter({ hasText: '"seatMap"' }).waitFor();
  const text = await out.textContent();
  for (const want of ['GET /api/flights/', '200 OK', 'x-request-id:', '"flightNumber": "FL101"']) {
    if (!text.includes(want)) throw new Error(`answer lacks ${want}:\n${text.slice(0, 600)}`);
  }

  // An error answer, in the documented shape.
  await id.fill('not-a-uuid');
  await show.getByRole('button', { name: 'Send' }).click();
  await out.filter({ hasText: 'INVALID_FLIGHT_ID' }).waitFor();
  if (!(await out.textContent()).includes('400 Bad Request')) throw new Error('no 400 shown');

  // An event stream, read as it arrives, and stopped.
  const stream = page.locator('#op-flights_list_events');
  await stream.locator('summary').click();
  await stream.getByRole('button', { name: 'Send' }).click();
  await stream.locator('form pre').filter({ hasText: 'event: flights' }).waitFor();
  await stream.getByRole('button', { name: 'Stop' }).click();
  await stream.locator('form pre').filter({ hasText: '(stopped)' }).waitFor();

  // Schemas are listed and linked.
  await page.locator('#schema-Error').waitFor({ state: 'attached' });
  if (errors.length) throw new Error(errors.join('\n'));
  if (elsewhere.length) throw new Error(`requests elsewhere: ${elsewhere.join(', ')}`);
  console.log(`ok   docs: ${count} operations, a request, an error and a stream sent from the page`);
} catch (e) {
  console.error(`FAIL docs: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
