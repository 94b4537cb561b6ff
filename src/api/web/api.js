// The JSON API: errors as ApiError, and booking calls that ride out a busy
// service. Every answer's Date header teaches the server's clock.

import { observeServerTime } from '/assets/clock.js';

const BUSY_RETRIES = 6;

// `body` is the whole error answer: some name what they are about (the
// `seat` and `field` of INVALID_PASSENGERS, the `seats` of
// PASSENGERS_REQUIRED).
class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.body = body;
  }
}

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The booking service cannot be reached. Check your connection and try again.');
  }
  observeServerTime(Date.parse(res.headers.get('date')));
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const retryAfter = Number(res.headers.get('retry-after')) || 0;
    throw new ApiError(res.status, data?.error ?? `HTTP_${res.status}`, data?.message ?? res.statusText, retryAfter, data);
  }
  return data;
}

// 128 random bits as hex, for an Idempotency-Key. (crypto.randomUUID
// exists only on https/localhost.)
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A booking call (hold, change, pay, cancel). A 503, or a 429
// TOO_MANY_REQUESTS (this client's share of calls in flight is in use, e.g.
// by another tab), changed nothing, so it is retried after the server's
// Retry-After; a 429 TOO_MANY_LIVE_ORDERS is the customer's to act on.
// A create or a payment carries one Idempotency-Key for all its tries: a
// try that did reach the engine is answered once, never run twice, so a 504
// (the outcome was not known in time) is retried too and answers the real
// outcome. A change or a
// cancellation answered 504 is left to the order's live status. `key`
// gives the Idempotency-Key to send (one the caller keeps across its own
// retries), instead of a new one. `headers`: more to send (a create's
// `Admission` from the waiting room).
export async function bookingCall(method, path, body, { idempotent = false, key = null, headers: more = {} } = {}) {
  const sent = key ?? (idempotent ? newKey() : null);
  const headers = sent ? { 'Idempotency-Key': sent, ...more } : { ...more };
  for (let attempt = 1; ; attempt++) {
    try {
      return await api(method, path, body, headers);
    } catch (err) {
      const busy = err.status === 503 || err.code === 'TOO_MANY_REQUESTS';
      const retry = busy || (err.status === 504 && sent !== null);
      if (!retry || attempt >= BUSY_RETRIES) throw err;
      const wait = Math.min(Math.max(err.retryAfter, 1), 5) * 1000;
      await sleep(wait + Math.random() * 250);
    }
  }
}
