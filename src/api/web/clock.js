// The server's clock as seen from this page, so the countdown does not
// depend on the visitor's clock being right. Time here runs on
// performance.now(), which is monotonic and ignores changes to the
// visitor's clock; the server's time is learned from what it sends.
//
// Every sample is a lower bound of the server's time when it arrived: an
// HTTP Date is truncated to the second and sent before it is read, and a
// `timerRemaining` is rounded up. So the largest offset is the best one, and
// a later sample can only bring the estimate closer.

let offset = null; // server epoch ms minus performance.now()

export function observeServerTime(serverMs) {
  if (!Number.isFinite(serverMs)) return;
  const sample = serverMs - performance.now();
  if (offset === null || sample > offset) offset = sample;
}

// An order's status: a live hold ends `timerRemaining` whole seconds after
// the moment it was sent. (Other statuses report no time left.)
export function observeStatus({ status, expiresAt, timerRemaining }) {
  if (status === 'SEATS_RESERVED' && expiresAt) observeServerTime(Date.parse(expiresAt) - timerRemaining * 1000);
}

// The server's time now (epoch ms), or null before anything was heard.
export const serverNow = () => (offset === null ? null : performance.now() + offset);
