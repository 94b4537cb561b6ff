//! Personal data only to whom it belongs (issue "Abuse-proof", item 5):
//! an order id is no key to passengers' names or emails (the order id is in
//! the Temporal workflow id and in log spans); manage-my-booking sends the
//! family name in a POST body, never in a URL; an operator's read of
//! personal data is in the audit trail.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::sse::{self, Event, EventStream};
use support::{FL101, TestApp};

const LONG: Duration = Duration::from_secs(60);

/// Names and an address no other text of the stack contains.
const GIVEN: &str = "Quillonella";
const FAMILY: &str = "Zzyzxwhistle";
const OTHER_GIVEN: &str = "Ulvhildra";
const OTHER_FAMILY: &str = "Brobdingax";
const EMAIL: &str = "quill.zzyzx@example.com";

async fn settings() -> flightctl::config::Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s
}

/// No passenger's name or email anywhere in `text`.
fn assert_no_personal_data(what: &str, text: &str) {
    for needle in [
        GIVEN,
        FAMILY,
        OTHER_GIVEN,
        OTHER_FAMILY,
        EMAIL,
        "example.com",
    ] {
        assert!(!text.contains(needle), "{what} carries {needle:?}: {text}");
    }
}

async fn create(app: &TestApp, seats: &[&str]) -> String {
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL101, "seats": seats}))
        .await;
    assert_eq!(code, 201, "{body}");
    body["orderId"].as_str().unwrap().to_string()
}

/// The two passengers of seats 4A and 4B, as a customer types them.
fn passengers() -> Value {
    json!({"passengers": [
        {"seat": "4A", "givenName": GIVEN, "familyName": FAMILY, "email": EMAIL},
        {"seat": "4B", "givenName": OTHER_GIVEN, "familyName": OTHER_FAMILY},
    ]})
}

async fn get_text(app: &TestApp, path: &str) -> (u16, String) {
    let resp = app.http.get(app.url(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every order-id route that answers JSON, read now: none names a
/// passenger; returns the status.
async fn read_order_routes(app: &TestApp, order: &str) -> Value {
    let (code, status) = get_text(app, &format!("/api/orders/{order}/status")).await;
    assert_eq!(code, 200, "{status}");
    assert_no_personal_data("the status", &status);
    let (code, detail) = get_text(app, &format!("/api/orders/{order}")).await;
    assert_eq!(code, 200, "{detail}");
    assert_no_personal_data("the order's detail", &detail);
    serde_json::from_str(&status).unwrap()
}

/// The events of a stream until one satisfies `last` (or it ends).
async fn events_until(mut stream: EventStream, last: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Some(event) = stream.next(LONG).await {
        let done = last(&event);
        seen.push(event);
        if done {
            break;
        }
    }
    seen
}

fn confirmed(event: &Event) -> bool {
    event.data["status"] == "CONFIRMED"
}

#[tokio::test]
async fn no_name_or_email_on_any_order_id_route_before_or_after_confirmation() {
    let app = TestApp::with_worker(settings().await).await;
    let order = create(&app, &["4A", "4B"]).await;

    // Someone holding only the order id watches both of its streams from
    // the start.
    let client = sse::client();
    let order_stream = EventStream::open(
        &client,
        &app.url(&format!("/api/orders/{order}/events")),
        None,
    )
    .await;
    let page_stream = EventStream::open(
        &client,
        &app.url(&format!("/api/events?order={order}")),
        None,
    )
    .await;
    let order_events = tokio::spawn(events_until(order_stream, confirmed));
    let page_events = tokio::spawn(events_until(page_stream, |e| {
        e.kind == "order" && confirmed(e)
    }));

    // The answer to naming the passengers says which seats are named, not
    // who sits there.
    let resp = app
        .http
        .put(app.url(&format!("/api/orders/{order}/passengers")))
        .json(&passengers())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer = resp.text().await.unwrap();
    assert_no_personal_data("the passengers' answer", &answer);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["passengers"],
        json!([{"seat": "4A"}, {"seat": "4B"}]),
        "the seats named: {answer}"
    );
    let named = read_order_routes(&app, &order).await;
    assert_eq!(named["passengers"], answer["passengers"]);

    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let status = support::eventually("the sale", LONG, || async {
        let s = read_order_routes(&app, &order).await;
        (s["status"] == "CONFIRMED").then_some(s)
    })
    .await;
    // The booking reference stays: alone it is no personal data.
    let reference = status["bookingReference"].as_str().expect("a reference");
    assert_eq!(reference.len(), 6, "{status}");
    assert_eq!(status["passengers"], answer["passengers"]);

    for (what, events) in [
        ("the order's event stream", order_events.await.unwrap()),
        ("the page's event stream", page_events.await.unwrap()),
    ] {
        let orders: Vec<&Event> = events
            .iter()
            .filter(|e| e.data["orderId"] == order.as_str())
            .collect();
        assert!(
            orders
                .iter()
                .any(|e| e.data["passengers"] == answer["passengers"]),
            "{what} shows the seats named: {events:?}"
        );
        assert!(orders.iter().any(|e| confirmed(e)), "{what}: {events:?}");
        for event in orders {
            assert_no_personal_data(what, &event.data.to_string());
        }
    }
    // A reconnecting stream replays nothing more than the status.
    let (code, replay) = get_text(&app, &format!("/api/orders/{order}/events")).await;
    assert_eq!(code, 200);
    assert_no_personal_data("a replayed event stream", &replay);
    assert!(replay.contains("CONFIRMED"), "{replay}");
}

/// Book seat `seat` of FL101 for Ada `family`; its booking reference.
async fn book(app: &TestApp, seat: &str, family: &str) -> String {
    let order = create(app, &[seat]).await;
    let list = json!({"passengers": [
        {"seat": seat, "givenName": "Ada", "familyName": family, "email": EMAIL},
    ]});
    let (code, body) = app
        .put(&format!("/api/orders/{order}/passengers"), list)
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    support::eventually("the sale", LONG, || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        s["bookingReference"].as_str().map(str::to_string)
    })
    .await
}

async fn look_up(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/api/bookings/lookup", body).await
}

#[tokio::test]
async fn the_look_up_is_a_post_and_its_query_string_form_is_gone() {
    let app = TestApp::with_worker(settings().await).await;
    let reference = book(&app, "6C", "Núñez").await;

    let (code, booking) = look_up(
        &app,
        json!({"reference": reference.to_lowercase(), "lastName": " NUNEZ "}),
    )
    .await;
    assert_eq!(code, 200, "{booking}");
    for field in [
        "reference",
        "status",
        "flight",
        "seats",
        "passengers",
        "totalPriceCents",
        "confirmedAt",
        "refund",
    ] {
        assert!(booking.get(field).is_some(), "{field} in {booking}");
    }
    assert_eq!(booking["reference"], reference.as_str());
    assert_eq!(booking["status"], "CONFIRMED");
    assert_eq!(booking["seats"], json!(["6C"]));
    assert_eq!(booking["passengers"][0]["familyName"], "Núñez");
    assert!(!booking.to_string().contains('@'), "no email: {booking}");

    // A wrong name and an unknown reference: the same answer.
    let (code, wrong_name) =
        look_up(&app, json!({"reference": reference, "lastName": "Smith"})).await;
    assert_eq!(code, 404, "{wrong_name}");
    let (code, unknown) = look_up(&app, json!({"reference": "ZZZZZZ", "lastName": "Núñez"})).await;
    assert_eq!(code, 404, "{unknown}");
    assert_eq!(wrong_name, unknown);
    assert_eq!(unknown["error"], "BOOKING_NOT_FOUND");

    // Bad bodies: a clear error.
    for body in [
        json!({"reference": reference}),
        json!({"lastName": "Núñez"}),
        json!({"reference": reference, "lastName": 7}),
    ] {
        let (code, err) = look_up(&app, body.clone()).await;
        assert_eq!(
            (code, err["error"].as_str()),
            (400, Some("INVALID_REQUEST")),
            "{body}: {err}"
        );
        assert!(err["message"].is_string(), "{err}");
    }

    // The query-string form is gone: no route answers it with a booking.
    let (code, body) = get_text(&app, &format!("/api/bookings/{reference}?lastName=Nunez")).await;
    assert!(matches!(code, 404 | 405), "{code} {body}");
    assert_no_personal_data("the old look-up", &body);
    assert!(!body.contains("Núñez") && !body.contains("Nunez"), "{body}");
    let (code, body) = get_text(&app, "/api/bookings/lookup").await;
    assert_eq!(code, 405, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
}

/// The serve process's access log has the look-up's line, and neither the
/// family name nor the reference it was asked with.
#[tokio::test]
async fn the_look_up_leaves_no_name_or_reference_in_the_access_log() {
    let app = TestApp::with_worker(settings().await).await;
    let family = "Wexlerquist";
    let reference = book(&app, "6D", family).await;

    let env = [("LOG_FORMAT", "json"), ("RUST_LOG", "info")];
    let (_serve, port, log) = support::serve_process(&app.settings, &env);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/bookings/lookup");
    for (last, wanted) in [(family, 200), ("Nottheone", 404)] {
        let resp = http
            .post(&url)
            .header("X-Request-Id", format!("lookup-{wanted}"))
            .json(&json!({"reference": reference, "lastName": last}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), wanted);
    }
    let text = support::eventually("the look-ups logged", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.contains("lookup-200") && text.contains("lookup-404")).then_some(text)
    })
    .await;
    assert!(text.contains("/api/bookings/lookup"), "{text}");
    for needle in [family, "Nottheone", reference.as_str()] {
        assert!(!text.contains(needle), "the log has {needle:?}:\n{text}");
    }
}

/// A known reference asked with a wrong name and an unknown reference are
/// both refused after the same work: one query. A benchmark: it prints
/// the figures, and asserts only the answers.
#[tokio::test]
async fn known_and_unknown_references_are_refused_alike() {
    let mut s = settings().await;
    s.booking.lookup_max_failures = 10_000;
    let app = TestApp::with_worker(s).await;
    let reference = book(&app, "6E", "Hollerith").await;
    let rounds = 40;
    let mut known = Vec::with_capacity(rounds);
    let mut unknown = Vec::with_capacity(rounds);
    for i in 0..rounds {
        // Alternate, so drift in the machine's load falls on both.
        for (reference, times) in [(reference.as_str(), &mut known), ("ZZZZZZ", &mut unknown)] {
            let started = Instant::now();
            let (code, body) = look_up(
                &app,
                json!({"reference": reference, "lastName": format!("Wrong{i}")}),
            )
            .await;
            times.push(started.elapsed());
            assert_eq!(code, 404, "{body}");
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    println!(
        "wrong name for a known reference: median {:?}; unknown reference: median {:?} ({rounds} each)",
        median(&mut known),
        median(&mut unknown)
    );
}

async fn ops_get(http: &reqwest::Client, app: &TestApp, path: &str) -> (u16, Value) {
    let resp = http.get(app.url(path)).send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

/// The audit trail's rows, as text, oldest first.
async fn audit_rows(app: &TestApp) -> Vec<String> {
    let conn = app.pool.get().await.unwrap();
    let rows = conn
        .query(
            "SELECT row_to_json(a)::text FROM ops_audit a ORDER BY a.at, a.id",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn an_operators_read_of_personal_data_is_audited_without_the_names() {
    let app = TestApp::with_worker(settings().await).await;
    let order = create(&app, &["4A", "4B"]).await;
    let (code, body) = app
        .put(&format!("/api/orders/{order}/passengers"), passengers())
        .await;
    assert_eq!(code, 200, "{body}");
    let ops = support::signed_in_operator(&app, "grace").await;

    // The operator sees the passengers: that read is recorded.
    let (code, detail) = ops_get(&ops, &app, &format!("/api/ops/orders/{order}")).await;
    assert_eq!(code, 200, "{detail}");
    assert!(detail.to_string().contains(FAMILY), "{detail}");
    // So is a search by family name, whose answer lists them.
    let (code, found) = ops_get(&ops, &app, &format!("/api/ops/orders?q={FAMILY}")).await;
    assert_eq!(code, 200, "{found}");
    assert!(found["orders"].to_string().contains(&order), "{found}");

    let (code, trail) = ops_get(&ops, &app, "/api/ops/audit").await;
    assert_eq!(code, 200, "{trail}");
    let entries = trail["entries"].as_array().unwrap();
    let one = entries
        .iter()
        .find(|e| e["action"] == "read_order")
        .unwrap_or_else(|| panic!("the read of one order is audited: {trail}"));
    assert_eq!(
        (
            one["operator"].as_str(),
            one["target"].as_str(),
            one["outcome"].as_str()
        ),
        (Some("grace"), Some(order.as_str()), Some("ok")),
        "{one}"
    );
    let list = entries
        .iter()
        .find(|e| e["action"] == "read_orders")
        .unwrap_or_else(|| panic!("the list's read is audited: {trail}"));
    assert_eq!(list["operator"], "grace");
    assert!(
        list.to_string().contains(&order),
        "the list's entry names the orders it showed: {list}"
    );
    for row in audit_rows(&app).await {
        assert_no_personal_data("the audit trail", &row);
    }
}
