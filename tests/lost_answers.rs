//! Answers whose way back was lost: `serve` reaches Temporal through a TCP
//! proxy that, switched over, still forwards what `serve` sends but
//! swallows what Temporal answers, then cuts the connection and refuses new
//! ones. The call was delivered and done, and the client's retries fail
//! with a transport error. Such an answer must not be 503 ("nothing
//! happened, now or later") for work that was done: 2xx, or 504
//! `OUTCOME_UNKNOWN`.

mod support;

use std::time::Duration;

use flightctl::domain::OrderId;
use serde_json::{Value, json};
use support::{FL101, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(30);

/// What the proxy does with the bytes of a connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Both ways, as if it were not there.
    Forward,
    /// `serve`'s bytes reach Temporal; Temporal's never come back.
    Swallow,
    /// Neither way: nothing `serve` sends arrives.
    Drop,
    /// Every connection closed, and new ones refused.
    Cut,
}

/// A TCP proxy to `upstream`, switched by [`Proxy::set`].
struct Proxy {
    addr: String,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (mode, watching) = watch::channel(Mode::Forward);
        tokio::spawn(accept(listener, upstream, watching));
        Proxy { addr, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Accept until cut; dropping the listener then refuses new connections.
async fn accept(listener: TcpListener, upstream: String, mode: watch::Receiver<Mode>) {
    let mut cut = mode.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { return };
                tokio::spawn(pipe(client, upstream.clone(), mode.clone()));
            }
            _ = cut.wait_for(|m| *m == Mode::Cut) => return,
        }
    }
}

/// One connection, both ways, until either side closes or the cut.
async fn pipe(client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = copy(client_read, server_write, mode.clone(), &[Mode::Drop]) => {}
        _ = copy(server_read, client_write, mode.clone(), &[Mode::Swallow, Mode::Drop]) => {}
        _ = mode.wait_for(|m| *m == Mode::Cut) => {}
    }
}

/// Copy `from` to `to`, dropping the bytes read in a mode of `dropped`.
async fn copy(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
    dropped: &[Mode],
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if dropped.contains(&*mode.borrow()) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The app with `serve` behind the proxy, the worker on Temporal directly,
/// and `serve`'s client connected (a first order through the proxy).
async fn app() -> (TestApp, Proxy) {
    let mut s = support::isolated_settings(true).await;
    let temporal = s.temporal.host.clone();
    let proxy = Proxy::start(temporal.clone()).await;
    s.temporal.host = proxy.addr.clone();
    let mut app = TestApp::spawn(s).await;
    app.settings.temporal.host = temporal;
    app.start_worker().await;
    create(&app, "1A").await;
    (app, proxy)
}

async fn create(app: &TestApp, seat: &str) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": [seat]}))
        .await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

/// The order holding `seat`, once the workflow saved one.
async fn order_holding(app: &TestApp, seat: &str) -> Option<Uuid> {
    let conn = app.pool.get().await.unwrap();
    let flight = Uuid::parse_str(FL101).unwrap();
    let sql = "SELECT id FROM orders WHERE flight_id = $1 AND $2 = ANY(seats)";
    let row = conn.query_opt(sql, &[&flight, &seat]).await.unwrap();
    row.map(|r| r.get(0))
}

async fn status(app: &TestApp, order: &str) -> String {
    let id: OrderId = order.parse().unwrap();
    let order = flightctl::store::orders::find(&app.pool, id).await.unwrap();
    order.status.as_str().to_string()
}

/// Send `call` with the answers swallowed; once `done` says the workflow
/// did the work, cut the proxy; the API's answer.
async fn lost<C, D, F>(proxy: &Proxy, call: C, done: D) -> (u16, Value)
where
    C: Future<Output = (u16, Value)> + Send + 'static,
    D: FnMut() -> F,
    F: Future<Output = Option<()>>,
{
    proxy.set(Mode::Swallow);
    let answer = tokio::spawn(call);
    support::eventually("the workflow to do the work", LONG, done).await;
    proxy.set(Mode::Cut);
    answer.await.unwrap()
}

/// POST `body` to `path` of `app`, as a task of its own can.
fn post(app: &TestApp, path: &str, body: Value) -> impl Future<Output = (u16, Value)> + use<> {
    let (http, url) = (app.http.clone(), app.url(path));
    async move {
        let resp = http.post(url).json(&body).send().await.unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or_default())
    }
}

fn assert_told(code: u16, body: &Value, what: &str) {
    println!("{what}: answered {code} {body}");
    let unknown = code == 504 && body["error"] == "OUTCOME_UNKNOWN";
    assert!(
        (200..300).contains(&code) || unknown,
        "{what} was done, and the API answered {code} {body}"
    );
}

/// Defect: a create delivered and done, its answer lost, was answered 503
/// SERVICE_UNAVAILABLE, and its order lived on.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_answered_as_not_taken() {
    let (app, proxy) = app().await;
    let call = post(
        &app,
        "/api/orders",
        json!({"flightId": FL101, "seats": ["2A"]}),
    );
    let done = || async { order_holding(&app, "2A").await.map(|_| ()) };
    let (code, body) = lost(&proxy, call, done).await;
    let order = order_holding(&app, "2A").await.unwrap();
    assert_told(code, &body, &format!("the create of order {order}"));
    if code == 201 {
        assert_eq!(body["orderId"], order.to_string(), "{body}");
    }
}

/// The same for a payment: accepted by the workflow, its answer lost.
#[tokio::test]
async fn a_payment_whose_answer_was_lost_is_not_answered_as_not_taken() {
    let (app, proxy) = app().await;
    let order = create(&app, "3A").await;
    app.name_passengers(&order).await;
    let path = format!("/api/orders/{order}/pay");
    let call = post(&app, &path, json!({"paymentCode": "00000"}));
    let done = || async { (status(&app, &order).await != "SEATS_RESERVED").then_some(()) };
    let (code, body) = lost(&proxy, call, done).await;
    assert_told(code, &body, &format!("the payment of order {order}"));
}

/// A create that never reached Temporal (its bytes dropped, then the cut)
/// still gets 503: after its deadline no order was made, and none will be.
#[tokio::test]
async fn a_create_that_never_arrived_is_answered_503_and_makes_no_order() {
    let (app, proxy) = app().await;
    proxy.set(Mode::Drop);
    let create = post(
        &app,
        "/api/orders",
        json!({"flightId": FL101, "seats": ["4A"]}),
    );
    let answer = tokio::spawn(create);
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.set(Mode::Cut);
    let (code, body) = answer.await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE", "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        order_holding(&app, "4A").await,
        None,
        "no order, now or later"
    );
}
