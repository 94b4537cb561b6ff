//! A server-sent events client for tests and benchmarks: reads one event at
//! a time from a real HTTP stream.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

/// One event as sent: its type (`message` unless named), id and JSON data.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub id: Option<String>,
    pub data: Value,
}

pub struct EventStream {
    body: BoxStream<'static, reqwest::Result<actix_web::web::Bytes>>,
    buffer: String,
}

/// A client without the overall timeout of `TestApp::http`: streams stay open.
pub fn client() -> reqwest::Client {
    builder().build().unwrap()
}

/// A stream client whose requests come from `address` (a viewer of a
/// crowd, `support::customer_address`).
pub fn client_from(address: std::net::IpAddr) -> reqwest::Client {
    builder().local_address(address).build().unwrap()
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
}

impl EventStream {
    /// Open `url` (with `Last-Event-ID` if given); panics unless it is a
    /// 200 `text/event-stream`.
    pub async fn open(client: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> Self {
        let mut req = client.get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.expect("open the event stream");
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        EventStream {
            body: resp.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), `None` at the end of
    /// the stream; panics if nothing comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.read())
            .await
            .unwrap_or_else(|_| panic!("no event within {within:?}"))
    }

    /// Like `next`, but `Err(())` if nothing came within `within`.
    pub async fn try_next(&mut self, within: Duration) -> Result<Option<Event>, ()> {
        tokio::time::timeout(within, self.read())
            .await
            .map_err(|_| ())
    }

    /// Read events until one satisfies `wanted`: it, and how long that
    /// took; panics if none comes within `within` or the stream ends.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Event) -> bool,
    ) -> (Event, Duration) {
        let start = std::time::Instant::now();
        loop {
            let left = within.saturating_sub(start.elapsed());
            let event = self
                .try_next(left)
                .await
                .unwrap_or_else(|()| panic!("no wanted event within {within:?}"))
                .expect("the stream stays open");
            if wanted(&event) {
                return (event, start.elapsed());
            }
        }
    }

    /// Read to the end of the stream, counting events (and keep-alives)
    /// without parsing them: a viewer that costs the client next to nothing.
    pub async fn drain(mut self, events: &std::sync::atomic::AtomicUsize) {
        while let Some(Ok(chunk)) = self.body.next().await {
            let ends = chunk.windows(2).filter(|w| w == b"\n\n").count();
            events.fetch_add(ends, std::sync::atomic::Ordering::Relaxed);
        }
    }

    async fn read(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn parse(block: &str) -> Option<Event> {
    let (mut kind, mut id, mut data) = ("message".to_string(), None, None);
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_string();
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(v).expect("event data is JSON"));
        }
    }
    Some(Event {
        kind,
        id,
        data: data?,
    })
}
