// The operator console (/ops), the entry module: the session and the views.
//
// One page; the view is in the address's hash (#/, #/orders?status=…,
// #/orders/<id>, #/flights/new, #/sweep, #/audit?page=2), so Back, a
// reload and a shared link work. Signed out, every view is the sign-in
// page, and signing in shows the view the address names. The session is an
// HttpOnly cookie the page never sees: the server's 401 on any call is
// what says it has ended.

import { api } from '/assets/api.js';
import { serverNow } from '/assets/clock.js';
import { $, setText, show } from '/assets/dom.js';
import { announce, hashQuery, onSignedOut, showError } from '/assets/ops-common.js';
import { dashboardView, initDashboard, onFlights, startFlights, stopFlights } from '/assets/ops-dashboard.js';
import { flightFormView, initFlightForm } from '/assets/ops-flight-form.js';
import { initSettings } from '/assets/ops-settings.js';
import { auditView, initLogs, sweepView } from '/assets/ops-logs.js';
import { initOrder, orderView } from '/assets/ops-order.js';
import { fillFlightFilter, initOrders, ordersView } from '/assets/ops-orders.js';
import { initSignIn, showSignIn } from '/assets/ops-signin.js';

const VIEWS = {
  dashboard: dashboardView,
  orders: ordersView,
  order: orderView,
  'flight-form': flightFormView,
  sweep: sweepView,
  audit: auditView,
};
const MAX_TIMER_MS = 2 ** 31 - 1;

const app = {
  operator: null, // the signed-in operator's name
  view: null, // the name of the view on screen
  moved: false, // the operator has gone from one view to another
};
let expiryTimer = 0;

// The view the hash names, and its parameters.
function route() {
  const path = location.hash.replace(/^#/, '').split('?')[0] || '/';
  const params = hashQuery();
  const order = /^\/orders\/([^/]+)$/.exec(path);
  if (order) return ['order', { ...params, id: decodeURIComponent(order[1]) }];
  const named = { '/orders': 'orders', '/flights/new': 'flight-form', '/sweep': 'sweep', '/audit': 'audit' }[path];
  return [named ?? 'dashboard', params];
}

function showSection(name) {
  for (const section of document.querySelectorAll('.ops-view')) show(section, section.dataset.view === name);
  for (const link of document.querySelectorAll('#ops-nav a')) {
    const current = link.dataset.view === name || (name === 'order' && link.dataset.view === 'orders');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// Show the view the address names; its heading takes the focus when the
// operator came from another view, so a screen reader starts there.
function onRoute() {
  if (!app.operator) return;
  const [name, params] = route();
  const view = VIEWS[name];
  if (app.view) VIEWS[app.view].leave();
  showError('');
  showSection(name);
  app.view = name;
  const title = typeof view.title === 'function' ? view.title(params) : view.title;
  document.title = `${title} · flightctl operator console`;
  view.enter(params);
  if (app.moved) $(`${name}-title`).focus();
  app.moved = true;
}

// Ask again once the session should have ended (on the server's clock,
// which every answer's Date header teaches; the operator's may be off).
function scheduleExpiry(expiresAt) {
  clearTimeout(expiryTimer);
  const ms = Date.parse(expiresAt) - (serverNow() ?? Date.now());
  if (!Number.isFinite(ms)) return;
  expiryTimer = setTimeout(checkSession, Math.min(Math.max(ms + 1000, 1000), MAX_TIMER_MS));
}

// `focus`: the view's heading takes the focus (not on the page's load).
function signedIn(session, { focus = true } = {}) {
  app.operator = session.name;
  setText($('ops-user-name'), session.name);
  show($('ops-user'), true);
  show($('ops-nav'), true);
  scheduleExpiry(session.expiresAt);
  startFlights();
  if (focus) announce(`Signed in as ${session.name}.`);
  app.moved = focus;
  onRoute();
}

// Back to the sign-in page, saying why; nothing of the session is kept.
function signedOut(notice) {
  if (app.view) VIEWS[app.view].leave();
  Object.assign(app, { operator: null, view: null });
  clearTimeout(expiryTimer);
  stopFlights();
  show($('ops-user'), false);
  show($('ops-nav'), false);
  showError('');
  showSection('signin');
  document.title = 'Sign in · flightctl operator console';
  showSignIn(notice);
}

async function checkSession() {
  try {
    scheduleExpiry((await api('GET', '/api/ops/session')).expiresAt);
  } catch (err) {
    if (err.status === 401) signedOut('Your session has ended. Please sign in again.');
    else expiryTimer = setTimeout(checkSession, 30_000);
  }
}

async function signOut() {
  $('sign-out').disabled = true;
  try {
    await api('DELETE', '/api/ops/session');
    signedOut('You have signed out.');
    $('signin-title').focus();
  } catch (err) {
    if (err.status === 401) signedOut('You have signed out.');
    else showError(`You could not be signed out: ${err.message}`);
  } finally {
    $('sign-out').disabled = false;
  }
}

async function main() {
  initSignIn(signedIn);
  initDashboard();
  initSettings();
  initOrders();
  initOrder();
  initFlightForm();
  initLogs();
  onFlights(fillFlightFilter);
  onSignedOut(() => {
    if (app.operator) signedOut('Your session has ended. Please sign in again.');
  });
  $('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', onRoute);
  try {
    signedIn(await api('GET', '/api/ops/session'), { focus: false });
  } catch (err) {
    signedOut(err.status === 401 ? '' : `The console could not reach the server: ${err.message}`);
  }
}

main();
