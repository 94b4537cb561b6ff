// The payment form and the progress of a payment under way.

import { $, el, setAttr, setText, show } from '/assets/dom.js';
import { canPay, holdEnded } from '/assets/booking.js';
import { fmtMoney } from '/assets/format.js';

// Non-digits are flagged at once; a short or empty code once the customer
// has left the field or tried to pay.
function codeMessage({ code, touched, error }) {
  if (/\D/.test(code)) return 'Use digits only — the payment code is exactly 5 digits.';
  if (error) return error;
  if (!touched) return '';
  if (code.length === 0) return 'Enter your 5-digit payment code.';
  return code.length < 5 ? `Enter all 5 digits (${5 - code.length} more).` : '';
}

export function renderPayForm(b, total) {
  const input = $('pay-code');
  if (input.value !== b.pay.code) input.value = b.pay.code;
  const msg = codeMessage(b.pay);
  const err = $('pay-error');
  setText(err, msg);
  show(err, Boolean(msg));
  setAttr(input, 'aria-invalid', String(Boolean(msg)));
  const button = $('pay-button');
  button.disabled = !canPay(b);
  setText(button, total ? `Pay ${fmtMoney(total)}` : 'Pay');
  $('pay-form').toggleAttribute('inert', b.order !== null && holdEnded(b.order));
}

// Which attempt is running. `paymentAttempts` counts the attempts recorded,
// i.e. finished: while the payment is under way each of them failed (the
// last one is `lastError`, "… (attempt N)"), and the next one is running.
function attemptInfo(o, defaultMax) {
  const max = o.maxPaymentAttempts || defaultMax || 3;
  const failed = o.paymentAttempts || 0;
  return { retrying: failed > 0, n: Math.min(max, failed + 1), max, failed };
}

function renderAttempts(info) {
  const list = $('pay-attempts');
  if (list.children.length !== info.max) {
    list.replaceChildren(...Array.from({ length: info.max }, (_, i) => el('li', { text: `${i + 1}` })));
  }
  [...list.children].forEach((li, i) => {
    const n = i + 1;
    li.dataset.state = n <= info.failed ? 'failed' : n === info.n ? 'active' : 'todo';
  });
}

// `summary` names the flight, seats and total.
export function renderPaying(o, summary, defaultMax) {
  const info = attemptInfo(o, defaultMax);
  if (info.retrying) {
    setText($('pay-title'), `Payment failed — retrying (attempt ${info.n} of ${info.max})`);
    setText($('pay-detail'), 'Your seats stay held while we retry.');
  } else {
    setText($('pay-title'), 'Validating payment…');
    const sending = o.status === 'SEATS_RESERVED';
    setText($('pay-detail'), sending ? 'Sending your payment code.' : `Attempt ${info.n} of ${info.max}. Your seats stay held meanwhile.`);
  }
  const last = $('pay-last-error');
  setText(last, o.lastError ? `Last error: ${o.lastError}` : '');
  show(last, Boolean(o.lastError));
  renderAttempts(info);
  setText($('pay-seats'), summary);
}
