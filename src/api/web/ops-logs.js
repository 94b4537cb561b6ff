// What happened without a customer asking: the money ledger against what
// is sold (totals per flight, each order that does not balance), the
// reconciliation sweep's runs (what each checked and repaired) and the
// audit trail of operator actions, a page at a time.

import { $, el, setText } from '/assets/dom.js';
import { fmtMoney, plural } from '/assets/format.js';
import { badge, cell, fillBody, go, hashFor, opsApi, orderLink, renderPager, shortId, shownError, stamp } from '/assets/ops-common.js';
import { flights } from '/assets/ops-dashboard.js';

// ---------------------------------------------------------------- sweep runs

// A list of order ids as links, or a dash.
function orderLinks(ids = []) {
  if (!ids.length) return el('span', { class: 'muted', text: '—' });
  const list = el('ul', { class: 'ops-ids' });
  list.append(...ids.map((id) => el('li', {}, orderLink(id))));
  return list;
}

function flightNames(ids = []) {
  if (!ids.length) return '—';
  return ids.map((id) => flights().find((f) => f.id === id)?.flightNumber ?? shortId(id)).join(', ');
}

// The sweep reports its errors as a count or as messages.
function errorsText(errors) {
  if (Array.isArray(errors)) return errors.length ? errors.join('; ') : '—';
  return errors ? String(errors) : '—';
}

function runRow({ at, report: r = {} }) {
  return [
    cell(stamp(at), { header: true }),
    cell(String(r.ordersChecked ?? 0), { cls: 'num' }),
    cell(orderLinks(r.ordersEnded)),
    cell(String(r.holdsReleased ?? 0), { cls: 'num' }),
    cell(flightNames(r.flightsCorrected)),
    cell(orderLinks(r.refundsStarted)),
    cell(String(r.moneyDiscrepancies ?? 0), { cls: 'num' }),
    cell(orderLinks(r.unsoldRefunded)),
    cell(errorsText(r.errors)),
  ];
}

// ---------------------------------------------------------------- money

const amount = (cents) => cell(fmtMoney(cents), { cls: 'num' });

function flightMoneyRow(f) {
  return [cell(f.flightNumber, { header: true }), amount(f.chargedCents), amount(f.refundedCents), amount(f.soldCents)];
}

function discrepancyRow(d) {
  return [
    cell(orderLink(d.orderId), { header: true }),
    cell(flightNames(d.flightId ? [d.flightId] : [])),
    cell(d.status ? badge(d.status) : '—'),
    amount(d.chargedCents),
    amount(d.refundedCents),
    amount(d.soldCents),
    cell(d.problem),
  ];
}

function showMoney(money) {
  const off = money.discrepancies.length;
  const totals = `Charged ${fmtMoney(money.chargedCents)}, refunded ${fmtMoney(money.refundedCents)}, sold ${fmtMoney(money.soldCents)}.`;
  setText($('money-summary'), `${totals} ${off ? `${plural(off, 'order')} not balanced.` : 'Every order balances.'}`);
  fillBody($('money-body'), money.flights.map(flightMoneyRow), 'No money has moved yet.');
  fillBody($('money-off-body'), money.discrepancies.map(discrepancyRow), 'None: every order balances.');
}

async function loadRuns() {
  const body = $('sweep-body');
  fillBody(body, [], 'Loading sweep runs…');
  try {
    const { runs, money } = await opsApi('GET', '/api/ops/reconciliation');
    showMoney(money);
    fillBody(body, runs.map(runRow), 'The sweep has not run yet.');
    setText($('sweep-count'), `${plural(runs.length, 'run')} shown.`);
  } catch (err) {
    if (shownError(err)) fillBody(body, [], `The sweep runs could not be read: ${err.message}`);
  }
}

export const sweepView = {
  title: 'Sweep runs',
  enter: loadRuns,
  leave() {},
};

// ---------------------------------------------------------------- audit trail

let auditPage = 1;

const entries = (n) => (n === 1 ? '1 entry' : `${n} entries`);

function auditRow(e) {
  return [
    cell(stamp(e.at), { header: true }),
    cell(e.operator),
    cell(e.action),
    cell(e.target, { cls: 'mono' }),
    cell(e.outcome),
    cell(e.detail ?? ''),
  ];
}

async function loadAudit() {
  const body = $('audit-body');
  fillBody(body, [], 'Loading the audit trail…');
  try {
    const page = await opsApi('GET', `/api/ops/audit?page=${auditPage}`);
    fillBody(body, page.entries.map(auditRow), 'No operator action yet.');
    renderPager({ prev: $('audit-prev'), next: $('audit-next'), label: $('audit-page') }, page, entries);
    setText($('audit-count'), `${entries(page.total)} in all.`);
  } catch (err) {
    if (shownError(err)) fillBody(body, [], `The audit trail could not be read: ${err.message}`);
  }
}

const turn = (delta) => () => {
  const page = String(Math.max(1, auditPage + delta));
  go(hashFor('/audit', { page }), loadAudit);
};

export function initLogs() {
  $('sweep-refresh').addEventListener('click', loadRuns);
  $('audit-refresh').addEventListener('click', loadAudit);
  $('audit-prev').addEventListener('click', turn(-1));
  $('audit-next').addEventListener('click', turn(1));
}

export const auditView = {
  title: 'Audit trail',
  enter({ page }) {
    auditPage = Math.max(1, Number(page) || 1);
    loadAudit();
  },
  leave() {},
};
