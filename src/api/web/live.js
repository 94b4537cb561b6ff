// The page's server-sent event stream, with polling only while it is down.
//
// EventSource reconnects by itself after a dropped connection (readyState
// CONNECTING, with Last-Event-ID). An answer that is not a stream — a 404
// from a server without streams, a 503 — closes it for good (CLOSED), so it
// is reopened here after a pause. Either way each poll runs at its interval
// until the stream is open again.

const REOPEN_MS = 5000;

// A handler of the events the server sent (its `event: error` among them),
// not of a lost connection (a plain Event named `error` too).
const fromServer = (handle) => (ev) => {
  if (ev instanceof MessageEvent) handle(JSON.parse(ev.data));
};

// `on` maps event types to handlers of their JSON data; `polls` is a list
// of [poll, intervalMs]; `onLive(bool)` hears when the stream opens or goes
// down.
export function openStream(url, { on, polls, onLive }) {
  let source = null;
  let pollTimers = null;
  let reopenTimer = 0;

  const startPolling = () => {
    pollTimers ??= polls.map(([poll, ms]) => {
      poll();
      return setInterval(poll, ms);
    });
  };
  const stopPolling = () => {
    pollTimers?.forEach(clearInterval);
    pollTimers = null;
  };

  const connect = () => {
    source = new EventSource(url);
    source.onopen = () => {
      stopPolling();
      onLive(true);
    };
    for (const [type, handle] of Object.entries(on)) source.addEventListener(type, fromServer(handle));
    source.addEventListener('error', (ev) => {
      if (ev instanceof MessageEvent) return;
      onLive(false);
      startPolling();
      if (source.readyState === EventSource.CLOSED) reopenTimer = setTimeout(connect, REOPEN_MS);
    });
  };

  connect();
  return {
    url,
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
