// The Content-Security-Policy under the browser tests: every page is
// served with one (src/api/headers.rs) and must work under it. A violation
// fails a test whatever console errors its scenario allows: Chromium logs
// each one to the console, and the page's `securitypolicyviolation` event
// is reported there too (by an init script, which the policy does not
// govern).

const VIOLATION = /Content Security Policy|securitypolicyviolation/i;

// Whether a console message reports a violation.
export const isViolation = (text) => VIOLATION.test(text);

// Watch `page`: every violation becomes a console error, and every HTML
// document it loads must carry a policy without inline script; a missing or
// weak policy is pushed onto `errors`.
export async function watchPolicy(page, errors) {
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`securitypolicyviolation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  page.on('response', (r) => {
    if (!r.request().isNavigationRequest() || !(r.headers()['content-type'] ?? '').startsWith('text/html')) return;
    const problem = policyProblem(r.headers()['content-security-policy']);
    if (problem) errors.push(`${r.url()}: ${problem}`);
  });
}

function policyProblem(policy) {
  if (!policy) return 'no Content-Security-Policy';
  const directive = (name) => policy.split(';').map((d) => d.trim().split(/\s+/)).find(([n]) => n === name);
  const script = directive('script-src') ?? directive('default-src');
  if (!script || script.includes("'unsafe-inline'") || script.includes("'unsafe-eval'")) return `script-src allows inline script: ${policy}`;
  if (directive('frame-ancestors')?.[1] !== "'none'") return `frame-ancestors is not 'none': ${policy}`;
  return null;
}
