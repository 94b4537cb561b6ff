// What the operator console's views share: the ops API (a 401 means the
// session is gone: the console goes back to its sign-in page), what is said
// to screen readers, the order statuses as shown, tables and pagers.

import { api } from '/assets/api.js';
import { $, el, setText, show } from '/assets/dom.js';

let signedOut = () => {};

// `handler` runs when an ops call answers 401: the session ended.
export function onSignedOut(handler) {
  signedOut = handler;
}

export async function opsApi(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (err) {
    if (err.status === 401) signedOut();
    throw err;
  }
}

// An error the view should say: not a 401, which the sign-in page says.
export const shownError = (err) => err.status !== 401;

// Said once by the page's polite status region. The same words twice in a
// row are said again: the region is emptied first.
let announceTimer = 0;
export function announce(text) {
  const region = $('announce');
  clearTimeout(announceTimer);
  region.textContent = '';
  announceTimer = setTimeout(() => {
    region.textContent = text;
  }, 50);
}

// The page's error banner (an alert); '' hides it.
export function showError(text) {
  setText($('ops-error'), text);
  show($('ops-error'), Boolean(text));
}

// Each status as an operator reads it, and its badge's colour.
export const STATUS = {
  CREATED: ['Created', 'warn'],
  SEATS_RESERVED: ['Seats held', 'warn'],
  PAYMENT_PENDING: ['Payment pending', 'warn'],
  PAYMENT_PROCESSING: ['Payment in progress', 'warn'],
  CONFIRMED: ['Confirmed', 'ok'],
  EXPIRED: ['Expired', 'done'],
  CANCELLED: ['Cancelled', 'done'],
  FAILED: ['Failed', 'bad'],
  REFUND_PENDING: ['Refund pending', 'warn'],
  REFUNDED: ['Refunded', 'done'],
  REFUND_FAILED: ['Refund failed', 'bad'],
};

export const statusLabel = (status) => STATUS[status]?.[0] ?? status;

export function badge(status) {
  return el('span', { class: 'status-badge', 'data-kind': STATUS[status]?.[1] ?? 'warn', text: statusLabel(status) });
}

export const shortId = (id) => String(id ?? '').slice(0, 8);

export const orderLink = (id) => el('a', { href: `#/orders/${encodeURIComponent(id)}`, class: 'mono', title: id, text: shortId(id) });

const stampFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });

// A moment as a <time>, to the second in the operator's time zone.
export function stamp(iso) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const d = new Date(iso);
  return el('time', { datetime: iso, text: Number.isNaN(d.getTime()) ? iso : stampFmt.format(d) });
}

// A table cell; `header` makes it the row's header.
export function cell(content, { header = false, cls = null } = {}) {
  const node = el(header ? 'th' : 'td', { class: cls, scope: header ? 'row' : null });
  node.append(...[content].flat().map((c) => (c instanceof Node ? c : String(c ?? ''))));
  return node;
}

// Fill a table body with `rows` (arrays of cells), or one row saying `empty`.
export function fillBody(tbody, rows, empty) {
  const cols = tbody.closest('table').querySelectorAll('thead th').length;
  if (!rows.length) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: cols, class: 'muted', text: empty })));
    return;
  }
  tbody.replaceChildren(...rows.map((cells) => el('tr', {}, ...cells)));
}

// A pager's buttons and its "Page 2 of 5 · 93 orders" line; `count(n)`
// says n items.
export function renderPager({ prev, next, label }, { page = 1, pageSize = 1, total = 0 }, count) {
  const pages = Math.max(1, Math.ceil(total / Math.max(1, pageSize)));
  setText(label, `Page ${page} of ${pages} · ${count(total)}`);
  prev.disabled = page <= 1;
  next.disabled = page >= pages;
  show(prev.parentElement, total > 0);
}

// The query of the hash (#/orders?status=…) as an object.
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return Object.fromEntries(new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1)));
}

// The hash for `path` with the non-empty `params`.
export function hashFor(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== undefined && v !== null));
  const text = query.toString();
  return `#${path}${text ? `?${text}` : ''}`;
}

// Go to `hash`; when it is already the page's, `again` runs instead (no
// hashchange would).
export function go(hash, again) {
  if (location.hash === hash) again();
  else location.hash = hash;
}
