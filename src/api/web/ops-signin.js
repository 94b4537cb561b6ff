// The sign-in page: a name and a password. A wrong pair is said without
// saying which was wrong; after too many, the server says how long to wait
// and the button counts it down.

import { api } from '/assets/api.js';
import { $, fieldError, setText, show } from '/assets/dom.js';
import { plural } from '/assets/format.js';

const state = {
  sending: false,
  error: '', // what the last sign-in was told
  notice: '', // why the page is shown (signed out, session ended)
  missing: new Set(), // fields submitted empty
  blockedUntil: 0, // 429: no sign-in before this (performance.now())
};
let blockTimer = 0;
let signedIn = () => {};

const waitText = (secs) => (secs > 90 ? plural(Math.ceil(secs / 60), 'minute') : plural(secs, 'second'));
const secondsLeft = () => Math.ceil((state.blockedUntil - performance.now()) / 1000);

const renderField = (name, msg) => fieldError($(`signin-${name}`), $(`signin-${name}-error`), msg);

function render() {
  renderField('name', state.missing.has('name') ? 'Enter your operator name.' : '');
  renderField('password', state.missing.has('password') ? 'Enter your password.' : '');
  const text = state.error || state.notice;
  setText($('signin-error'), text);
  show($('signin-error'), Boolean(text));
  $('signin-error').dataset.kind = state.error ? 'error' : 'info';
  const wait = secondsLeft();
  const button = $('signin-button');
  button.disabled = state.sending || wait > 0;
  setText(button, state.sending ? 'Signing in…' : wait > 0 ? `Try again in ${waitText(wait)}` : 'Sign in');
}

// A 429: no sign-in until Retry-After has passed; the button counts down.
function blockFor(seconds) {
  state.blockedUntil = performance.now() + Math.max(1, seconds) * 1000;
  clearInterval(blockTimer);
  blockTimer = setInterval(() => {
    if (secondsLeft() <= 0) {
      clearInterval(blockTimer);
      state.error = '';
    }
    render();
  }, 1000);
}

function refused(err) {
  if (err.code === 'INVALID_CREDENTIALS') {
    $('signin-password').value = '';
    $('signin-password').focus();
    return 'That name and password do not match an operator. Check both and try again.';
  }
  if (err.code === 'TOO_MANY_SIGN_INS') {
    const wait = err.retryAfter || 60;
    blockFor(wait);
    return `Too many sign-in attempts. Please wait ${waitText(wait)} before trying again.`;
  }
  return `You could not be signed in: ${err.message}`;
}

async function onSubmit(e) {
  e.preventDefault();
  if (state.sending || secondsLeft() > 0) return;
  const name = $('signin-name').value.trim();
  const password = $('signin-password').value;
  state.missing = new Set([!name && 'name', !password && 'password'].filter(Boolean));
  Object.assign(state, { error: '', notice: '' });
  if (state.missing.size) {
    render();
    $(`signin-${state.missing.has('name') ? 'name' : 'password'}`).focus();
    return;
  }
  state.sending = true;
  render();
  try {
    const session = await api('POST', '/api/ops/session', { name, password });
    $('signin-password').value = '';
    signedIn(session);
  } catch (err) {
    state.error = refused(err);
  } finally {
    state.sending = false;
    render();
  }
}

// `onSignedIn(session)` runs once the server has opened a session.
export function initSignIn(onSignedIn) {
  signedIn = onSignedIn;
  $('signin-form').addEventListener('submit', onSubmit);
  $('signin-form').addEventListener('input', (e) => {
    if (state.missing.delete(e.target.name)) render();
  });
}

// Show the page, saying why (`notice`, '' for none).
export function showSignIn(notice) {
  Object.assign(state, { notice, missing: new Set() });
  if (secondsLeft() <= 0) state.error = '';
  render();
}
