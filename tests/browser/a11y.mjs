// Accessibility audit of a page as it is now, with axe-core (npm
// `axe-core`): every rule axe runs by default (WCAG 2.x A and AA, and its
// best practices). A violation of impact serious or critical fails the
// audit, naming each rule and the elements it found; lesser ones are
// reported. axe is evaluated in the page through the DevTools protocol, so
// a Content-Security-Policy without inline scripts does not stop it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const FAILING = new Set(['serious', 'critical']);

const describe = (v) => `${v.id} (${v.impact}, ${v.nodes.length}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`;

// Audit `page` in its current state, called `what` in messages. Returns
// { failing, other }: lists of "rule (impact, count): targets". Throws when
// `strict` and anything serious or critical was found.
export async function audit(page, what, { strict = true } = {}) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const violations = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations));
  const failing = violations.filter((v) => FAILING.has(v.impact)).map(describe);
  const other = violations.filter((v) => !FAILING.has(v.impact)).map(describe);
  if (strict && failing.length) {
    throw new Error(`accessibility of ${what}: ${failing.length} serious or critical violation(s):\n    ${failing.join('\n    ')}`);
  }
  return { failing, other };
}
