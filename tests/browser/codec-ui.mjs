// The Temporal UI shows an operator decrypted payloads through flightctl's
// codec endpoint (driven from tests/codec_browser.rs).
//
//   WORKFLOW_URL    the order's workflow page in the Temporal UI
//   CODE            the payment code the order was paid with
//   CODEC_ENDPOINT  where the UI's codec calls must go (serve's admin listener)
//   SIGN_IN_URL     the console's sign-in (POST /api/ops/session on serve)
//   OPERATOR, PASSWORD  an operator's credentials
//   SCREENSHOT_DIR  where the final screen is saved
//   CHROMIUM        the browser binary (default /usr/bin/chromium)

import { chromium } from 'playwright-core';
import path from 'node:path';

const { WORKFLOW_URL, CODE, SCREENSHOT_DIR, CODEC_ENDPOINT, SIGN_IN_URL, OPERATOR, PASSWORD } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1400, height: 2400 } });
const page = await context.newPage();
// The codec answers operators only: sign in as the console does, so this
// browser holds the session cookie, and have the UI send it with its codec
// calls (its codec setting "include cross-origin credentials", kept in
// localStorage; set before the UI's scripts read it).
const signIn = await context.request.post(SIGN_IN_URL, { data: { name: OPERATOR, password: PASSWORD } });
if (signIn.status() !== 200) throw new Error(`sign-in answered ${signIn.status()}`);
await page.addInitScript((endpoint) => {
  localStorage.setItem('endpoint', JSON.stringify(endpoint));
  localStorage.setItem('includeCredentials', 'true');
  localStorage.setItem('passAccessToken', 'false');
  localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
}, CODEC_ENDPOINT);
const failed = [];
const decoded = [];
page.on('response', (r) => {
  if (!r.url().includes('/codec/')) return;
  if (r.status() !== 200) failed.push(`${r.status()} ${r.url()}`);
  else if (r.request().method() === 'POST') decoded.push(r.url());
});
const shows = (text) =>
  page.waitForFunction((t) => document.body.innerText.includes(t), text, { timeout: 30000 });

try {
  await page.goto(WORKFLOW_URL);
  // The workflow input, decrypted: its field names are readable.
  await shows('"flight_id"');
  await page.getByText('Event History').first().click();
  await shows('Activity Task Scheduled');
  for (const row of await page.getByText('Activity Task Scheduled').all()) await row.click();
  // The validation activity's input, decrypted: the payment code.
  await shows(`"code": "${CODE}"`);
  const text = await page.innerText('body');
  if (text.includes('binary/encrypted')) throw new Error('an encrypted payload is shown undecoded');
  if (failed.length) throw new Error(`codec calls failed: ${failed.join(', ')}`);
  if (CODEC_ENDPOINT && !decoded.some((u) => u.startsWith(`${CODEC_ENDPOINT}/`)))
    throw new Error(`no codec call went to ${CODEC_ENDPOINT}: ${decoded.join(', ')}`);
  console.log('the Temporal UI shows the decrypted payment code');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  process.exitCode = 1;
} finally {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'temporal-ui-decoded.png'), fullPage: true });
  await browser.close();
}
