// Server-sent event streams, with polling only while a stream is down.
//
// EventSource reconnects by itself after a dropped connection (readyState
// CONNECTING, with Last-Event-ID). An answer that is not a stream — a 404
// from a server without streams, a 503 — closes it for good (CLOSED), so it
// is reopened here after a pause. Either way `poll` runs every `pollMs`
// until the stream is open again.

const REOPEN_MS = 5000;

// `on` maps event types ('snapshot', 'message') to handlers of their JSON
// data; `onLive(bool)` hears when the stream opens or goes down.
export function openStream(url, { on, poll, pollMs, onLive = () => {} }) {
  let source = null;
  let pollTimer = 0;
  let reopenTimer = 0;

  const startPolling = () => {
    if (pollTimer) return;
    pollTimer = setInterval(poll, pollMs);
    poll();
  };
  const stopPolling = () => {
    clearInterval(pollTimer);
    pollTimer = 0;
  };

  const connect = () => {
    source = new EventSource(url);
    source.onopen = () => {
      stopPolling();
      onLive(true);
    };
    for (const [type, handle] of Object.entries(on)) {
      source.addEventListener(type, (ev) => handle(JSON.parse(ev.data)));
    }
    source.onerror = (ev) => {
      // A server-sent `event: error` is a message; the stream goes on.
      if (ev instanceof MessageEvent) return;
      onLive(false);
      startPolling();
      if (source.readyState === EventSource.CLOSED) reopenTimer = setTimeout(connect, REOPEN_MS);
    };
  };

  connect();
  return {
    get live() {
      return source.readyState === EventSource.OPEN;
    },
    close() {
      source.close();
      stopPolling();
      clearTimeout(reopenTimer);
    },
  };
}
