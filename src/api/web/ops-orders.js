// The orders: filtered by status, flight and a search (a booking
// reference, a passenger's family name or an order id), a page at a time,
// newest first. The filters live in the address (#/orders?status=…&page=2),
// so Back and a reload show the same page.

import { $, el, keyed, setText } from '/assets/dom.js';
import { fmtMoney, plural, sortSeats } from '/assets/format.js';
import { STATUS, badge, cell, fillBody, go, hashFor, opsApi, orderLink, renderPager, shownError, stamp } from '/assets/ops-common.js';

const FILTERS = ['status', 'flight', 'q'];

let shown = {}; // the filters and page on screen
let result = null; // the last answer
let address = '#/orders'; // of the page shown last, for an order's way back

export const ordersAddress = () => address;

const pager = () => ({ prev: $('orders-prev'), next: $('orders-next'), label: $('orders-page') });

function fillStatuses() {
  const select = $('filter-status');
  select.append(...Object.entries(STATUS).map(([code, [label]]) => el('option', { value: code, text: label })));
}

// The flight filter lists every flight; the one chosen stays chosen (the
// address's, until the flights were first listed).
export function fillFlightFilter(flights) {
  const select = $('filter-flight');
  const chosen = select.options.length > 1 ? select.value : (shown.flight ?? '');
  const sorted = [...flights].sort((a, b) => a.flightNumber.localeCompare(b.flightNumber));
  const redrawn = keyed(select, sorted.map((f) => `${f.id}:${f.flightNumber}`).join(), () => [
    el('option', { value: '', text: 'Any flight' }),
    ...sorted.map((f) => el('option', { value: f.id, text: `${f.flightNumber} · ${f.origin} → ${f.destination}` })),
  ]);
  if (redrawn) select.value = chosen;
}

const passengerNames = (o) => (o.passengers ?? []).map((p) => [p.givenName, p.familyName].filter(Boolean).join(' ')).join(', ');

// An order's refund, if it has one (a FAILED order's is its approved
// payment's, given back).
const REFUND = { PENDING: 'Refund pending', REFUNDED: 'Refunded', FAILED: 'Refund failed' };

function orderRow(o) {
  return [
    cell(orderLink(o.orderId), { header: true }),
    cell(stamp(o.createdAt)),
    cell(o.flightNumber),
    cell(badge(o.status)),
    cell(sortSeats(o.seats ?? []).join(', ')),
    cell(o.bookingReference ?? '', { cls: 'mono' }),
    cell(passengerNames(o)),
    cell(fmtMoney(o.totalPriceCents), { cls: 'num' }),
    cell(REFUND[o.refund] ?? ''),
  ];
}

function render() {
  const body = $('orders-body');
  if (!result) {
    fillBody(body, [], 'Loading orders…');
    return;
  }
  fillBody(body, result.orders.map(orderRow), 'No order matches these filters.');
  renderPager(pager(), result, (n) => plural(n, 'order'));
  const verb = result.total === 1 ? 'matches' : 'match';
  setText($('orders-count'), FILTERS.some((k) => shown[k]) ? `${plural(result.total, 'order')} ${verb}.` : `${plural(result.total, 'order')} in all.`);
}

async function load() {
  result = null;
  render();
  const query = new URLSearchParams(Object.entries(shown).filter(([, v]) => v));
  try {
    result = await opsApi('GET', `/api/ops/orders?${query}`);
    render();
  } catch (err) {
    if (!shownError(err)) return;
    fillBody($('orders-body'), [], `The orders could not be read: ${err.message}`);
    setText($('orders-count'), '');
  }
}

function showFilters() {
  // A flight not listed yet is chosen once the flights arrive (fillFlightFilter).
  for (const name of FILTERS) $(`filter-${name}`).value = shown[name] ?? '';
}

function goTo(params) {
  go(hashFor('/orders', params), () => ordersView.enter(params));
}

function onFilter(e) {
  e.preventDefault();
  const params = Object.fromEntries(FILTERS.map((name) => [name, $(`filter-${name}`).value.trim()]));
  goTo(params);
}

const turn = (delta) => () => goTo({ ...shown, page: String((Number(shown.page) || 1) + delta) });

export function initOrders() {
  fillStatuses();
  $('orders-filter').addEventListener('submit', onFilter);
  $('orders-prev').addEventListener('click', turn(-1));
  $('orders-next').addEventListener('click', turn(1));
  // A row opens its order on a click anywhere in it (its link is the keyboard's way).
  $('orders-body').addEventListener('click', (e) => {
    const link = e.target.closest('tr')?.querySelector('a[href^="#/orders/"]');
    if (link && !e.target.closest('a') && !window.getSelection()?.toString()) location.hash = link.getAttribute('href');
  });
}

export const ordersView = {
  title: 'Orders',
  enter(params) {
    address = location.hash;
    shown = Object.fromEntries(Object.entries(params).filter(([k]) => [...FILTERS, 'page'].includes(k)));
    showFilters();
    load();
  },
  leave() {},
};
