//! E-tickets and online check-in against the real stack: ticket numbers
//! given at the sale (look-up, mail, console), `POST /api/bookings/checkin`
//! within its window, one IATA BCBP M1 pass per passenger parsed back
//! field by field (by this crate's parser and by an independent one), and
//! what a checked-in booking can no longer do.

mod support;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use flightctl::config::{Secret, Settings};
use serde_json::{Value, json};
use support::{FL101, FL102, FL202, TestApp};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);
const PREFIX: &str = "125";

async fn settings() -> Settings {
    let mut s = support::isolated_settings(true).await;
    s.booking.payment_validation_timeout = Duration::from_secs(1);
    s.booking.payment_failure_rate = 0.0;
    s.booking.refund_failure_rate = 0.0;
    s.booking.ticket_airline_prefix = PREFIX.into();
    s.mail.manage_url = "https://flights.example/manage".into();
    s
}

/// Book `passengers` (`[seat, given, family, email]`) on `flight`; the
/// order id and booking reference.
async fn book(app: &TestApp, flight: &str, passengers: &[[&str; 4]]) -> (String, String) {
    let seats: Vec<&str> = passengers.iter().map(|p| p[0]).collect();
    let (code, body) = app
        .post("/api/orders", json!({"flightId": flight, "seats": seats}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    let list: Vec<Value> = (passengers.iter())
        .map(|[seat, given, family, email]| {
            json!({"seat": seat, "givenName": given, "familyName": family, "email": email})
        })
        .collect();
    let (code, body) = app
        .put(
            &format!("/api/orders/{order}/passengers"),
            json!({ "passengers": list }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = app
        .post(
            &format!("/api/orders/{order}/pay"),
            json!({"paymentCode": "00000"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let confirmed = support::eventually(&format!("order {order} CONFIRMED"), LONG, || async {
        let (_, s) = app.get(&format!("/api/orders/{order}/status")).await;
        (s["status"] == "CONFIRMED").then_some(s)
    })
    .await;
    let reference = confirmed["bookingReference"].as_str().unwrap().to_string();
    (order, reference)
}

async fn look_up(app: &TestApp, reference: &str, last: &str) -> (u16, Value) {
    app.post(
        "/api/bookings/lookup",
        json!({"reference": reference, "lastName": last}),
    )
    .await
}

async fn check_in(app: &TestApp, reference: &str, last: &str) -> (u16, Value) {
    app.post(
        "/api/bookings/checkin",
        json!({"reference": reference, "lastName": last}),
    )
    .await
}

/// Move the flight's departure to `from_now` (its arrival two hours later).
async fn depart_in(app: &TestApp, flight: &str, from_now: chrono::Duration) -> DateTime<Utc> {
    let departure = Utc::now() + from_now;
    let id = Uuid::parse_str(flight).unwrap();
    let conn = app.pool.get().await.unwrap();
    conn.execute(
        "UPDATE flights SET departure_time = $2::timestamptz,
                arrival_time = $2::timestamptz + interval '2 hours'
         WHERE id = $1",
        &[&id, &departure],
    )
    .await
    .unwrap();
    // As the database stores it (microseconds).
    conn.query_one("SELECT departure_time FROM flights WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let conn = app.pool.get().await.unwrap();
    conn.query_one(sql, &[]).await.unwrap().get(0)
}

fn tickets_of(booking: &Value) -> Vec<String> {
    (booking["passengers"].as_array().unwrap().iter())
        .map(|p| {
            p["ticketNumber"]
                .as_str()
                .expect("a ticket number")
                .to_string()
        })
        .collect()
}

/// What a boarding pass must say.
struct Pass<'a> {
    reference: &'a str,
    origin: &'a str,
    destination: &'a str,
    day: u32,
    name: &'a str,
    compartment: char,
    seat: &'a str,
    sequence: u32,
}

/// A pass read back field by field, by this crate's parser and by an
/// independent reader of Resolution 792.
fn assert_pass_reads_back(bcbp: &str, w: &Pass<'_>) {
    println!("{bcbp:?}");
    assert_eq!(bcbp.len(), 60, "{bcbp:?}");

    // Field by field, with this crate's parser.
    let p = flightctl::bcbp::parse(bcbp).unwrap();
    assert_eq!((p.format, p.legs), ('M', 1));
    assert_eq!(p.name, w.name);
    assert_eq!(p.electronic_ticket, 'E');
    assert_eq!(p.reference, w.reference);
    assert_eq!(
        (p.origin.as_str(), p.destination.as_str()),
        (w.origin, w.destination)
    );
    assert_eq!(
        (p.carrier.as_str(), p.flight_number.as_str()),
        ("FL", "0101")
    );
    assert_eq!(p.day_of_year, w.day);
    assert_eq!(p.compartment, w.compartment);
    assert_eq!(p.seat, w.seat);
    assert_eq!(p.sequence, w.sequence);
    assert_eq!((p.passenger_status, p.variable_size), ('1', 0));

    // And with an independent reader of Resolution 792.
    let read = iata_bcbp::Bcbp::from_str(bcbp).expect("a pass a gate reader decodes");
    assert_eq!(read.passenger_name().trim(), w.name);
    assert_eq!(read.electronic_ticket_indicator(), 'E');
    assert_eq!(read.legs().len(), 1);
    let leg = &read.legs()[0];
    assert_eq!(leg.operating_carrier_pnr_code().trim(), w.reference);
    assert_eq!(leg.from_city_airport_code(), w.origin);
    assert_eq!(leg.to_city_airport_code(), w.destination);
    assert_eq!(leg.operating_carrier_designator().trim(), "FL");
    assert_eq!(leg.flight_number().trim(), "0101");
    assert_eq!(leg.date_of_flight().trim(), format!("{:03}", w.day));
    assert_eq!(leg.compartment_code(), w.compartment);
    assert_eq!(leg.seat_number(), w.seat);
    assert_eq!(
        leg.check_in_sequence_number().trim(),
        format!("{:04}", w.sequence)
    );
    assert_eq!(leg.passenger_status(), '1');
}

/// A checked-in booking: neither its customer nor an operator can cancel
/// it, and the console's order view shows its tickets and check-ins.
async fn checked_in_stays_and_the_console_shows_it(
    app: &TestApp,
    reference: &str,
    order: &str,
    tickets: &[String],
) {
    // Checked in: neither the customer nor an operator can cancel it.
    let (code, body) = app
        .post(
            &format!("/api/bookings/{reference}/cancel"),
            json!({"lastName": "Đorđevic"}),
        )
        .await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("BOOKING_CHECKED_IN")),
        "{body}"
    );
    let operator = support::signed_in_operator(app, "checkin-ops").await;
    let refund = operator
        .post(app.url(&format!("/api/ops/bookings/{reference}/refund")))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status().as_u16(), 409);
    let body: Value = refund.json().await.unwrap();
    assert_eq!(body["error"], "BOOKING_CHECKED_IN");
    let (_, booking) = look_up(app, reference, "Đorđevic").await;
    assert_eq!(booking["status"], "CONFIRMED");
    assert_eq!(count(app, "SELECT count(*) FROM refunds").await, 0);

    // The console's order view shows the tickets and the check-in.
    let view: Value = operator
        .get(app.url(&format!("/api/ops/orders/{order}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown: Vec<&str> = (view["tickets"].as_array().unwrap().iter())
        .map(|t| t["ticketNumber"].as_str().unwrap())
        .collect();
    assert_eq!(shown.len(), 2, "{view}");
    assert!(shown.iter().all(|t| tickets.iter().any(|u| u == t)));
    assert_eq!(view["checkIns"].as_array().unwrap().len(), 2, "{view}");
}

async fn check_ins_at_once_share_no_sequence(app: &TestApp) {
    // Bookings checking in at once share no sequence number, and no two
    // passengers share a ticket number.
    let mut references = Vec::new();
    for (i, seat) in ["14A", "14B", "14C"].into_iter().enumerate() {
        let family = ["Lovelace", "Babbage", "Hopper"][i];
        let (_, reference) = book(app, FL101, &[[seat, "Ada", family, ""]]).await;
        references.push((reference, family));
    }
    let at_once = references
        .iter()
        .map(|(reference, family)| check_in(app, reference, family));
    let mut sequences: Vec<u64> = futures::future::join_all(at_once)
        .await
        .into_iter()
        .map(|(code, body)| {
            assert_eq!(code, 200, "{body}");
            body["boardingPasses"][0]["sequence"].as_u64().unwrap()
        })
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [3, 4, 5]);
    assert_eq!(
        count(app, "SELECT count(DISTINCT ticket_number) FROM tickets").await,
        count(app, "SELECT count(*) FROM tickets").await,
    );
}

#[tokio::test]
async fn a_booking_within_24_hours_checks_in_with_a_pass_per_passenger_that_parses_back_field_by_field()
 {
    let mut sink = support::smtp::SmtpSink::start();
    let mut s = settings().await;
    s.mail.smtp_url = Some(Secret::new(sink.url()));
    let app = TestApp::with_worker(s).await;
    let departure = depart_in(&app, FL101, chrono::Duration::hours(3)).await;
    let (_, flight) = app.get(&format!("/api/flights/{FL101}")).await;
    let (origin, destination) = (
        flight["origin"].as_str().unwrap().to_string(),
        flight["destination"].as_str().unwrap().to_string(),
    );

    // Seat 2A is in the seeded business cabin (rows 1-3), 12C in economy.
    let (order, reference) = book(
        &app,
        FL101,
        &[
            ["2A", "Zoë", "Đorđević", "zoe@example.com"],
            ["12C", "Ana María", "Đorđević", ""],
        ],
    )
    .await;

    // Tickets: 13 digits, the configured prefix, one each, in the look-up
    // with the names as booked (accents kept).
    let (code, booking) = look_up(&app, &reference, "đorđević").await;
    assert_eq!(code, 200, "{booking}");
    assert_eq!(booking["passengers"][0]["givenName"], "Zoë");
    assert_eq!(booking["passengers"][0]["familyName"], "Đorđević");
    let tickets = tickets_of(&booking);
    assert_eq!(tickets.len(), 2);
    for t in &tickets {
        assert!(flightctl::tickets::is_ticket_number(t), "{t}");
        assert!(t.starts_with(PREFIX), "{t}");
    }
    assert_ne!(tickets[0], tickets[1]);
    assert_eq!(booking["checkIn"]["open"], true, "{booking}");
    assert_eq!(booking["checkIn"]["checkedIn"], false);
    assert_eq!(booking["boardingPasses"], json!([]));

    // The confirmation mail carries the ticket numbers and the link to
    // manage-my-booking.
    let mails = sink.wait_for(1, LONG).await;
    for part in ["text/plain", "text/html"] {
        let body = mails[0].body(part);
        for needle in [
            tickets[0].as_str(),
            tickets[1].as_str(),
            "https://flights.example/manage",
        ] {
            assert!(body.contains(needle), "{part} lacks {needle}: {body}");
        }
    }

    // A wrong name is the look-up's 404, nothing checked in.
    let (code, body) = check_in(&app, &reference, "Lovelace").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("BOOKING_NOT_FOUND"))
    );
    assert_eq!(count(&app, "SELECT count(*) FROM boarding_passes").await, 0);

    let (code, checked) = check_in(&app, &reference, "ĐORĐEVIĆ").await;
    assert_eq!(code, 200, "{checked}");
    assert_eq!(checked["reference"], reference.as_str());
    let passes = checked["boardingPasses"].as_array().unwrap();
    assert_eq!(passes.len(), 2, "one pass per passenger: {checked}");
    let day = departure.date_naive().ordinal();
    let expected = [
        ("2A", "002A", "Zoë Đorđević", "DORDEVIC/ZOE", 'C'),
        (
            "12C",
            "012C",
            "Ana María Đorđević",
            "DORDEVIC/ANA MARIA",
            'M',
        ),
    ];
    let mut sequences = Vec::new();
    for (pass, (seat, printed_seat, passenger, name, compartment)) in passes.iter().zip(expected) {
        assert_eq!(pass["seat"], seat);
        assert_eq!(pass["passenger"], passenger);
        let ticket = pass["ticketNumber"].as_str().unwrap();
        assert!(tickets.iter().any(|t| t == ticket), "{ticket}");
        let sequence = pass["sequence"].as_u64().unwrap() as u32;
        sequences.push(sequence);
        let want = Pass {
            reference: &reference,
            origin: &origin,
            destination: &destination,
            day,
            name,
            compartment,
            seat: printed_seat,
            sequence,
        };
        assert_pass_reads_back(pass["bcbp"].as_str().unwrap(), &want);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2], "per flight, from 1");

    // Again: the same passes, nothing new.
    let (code, again) = check_in(&app, &reference, "đorđević").await;
    assert_eq!((code, &again), (200, &checked));
    assert_eq!(count(&app, "SELECT count(*) FROM boarding_passes").await, 2);
    let (_, booking) = look_up(&app, &reference, "Đorđevic").await;
    assert_eq!(booking["checkIn"]["checkedIn"], true);
    assert_eq!(booking["boardingPasses"], checked["boardingPasses"]);

    checked_in_stays_and_the_console_shows_it(&app, &reference, &order, &tickets).await;
    check_ins_at_once_share_no_sequence(&app).await;
    sink.stop();
}

#[tokio::test]
async fn check_in_outside_its_window_or_of_a_booking_not_confirmed_is_refused_and_changes_nothing()
{
    let app = TestApp::with_worker(settings().await).await;

    // Names a ticket cannot carry are refused, naming the field.
    let (code, body) = app
        .post("/api/orders", json!({"flightId": FL202, "seats": ["10A"]}))
        .await;
    assert_eq!(code, 201, "{body}");
    let order = body["orderId"].as_str().unwrap().to_string();
    for (given, family, field) in [
        ("明", "Lovelace", "givenName"),
        ("Ada", "Достоевский", "familyName"),
        ("J.R.R.", "Tolkien", "givenName"),
        (
            "Adaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Lovelaceeeeeeeeeeeeeeeeeeeeeee",
            "familyName",
        ),
    ] {
        let (code, body) = app
            .put(
                &format!("/api/orders/{order}/passengers"),
                json!({"passengers": [{"seat": "10A", "givenName": given, "familyName": family}]}),
            )
            .await;
        assert_eq!(code, 400, "{given} {family}: {body}");
        assert_eq!(body["error"], "INVALID_PASSENGERS");
        assert_eq!(body["field"], field, "{body}");
    }
    app.delete(&format!("/api/orders/{order}")).await;

    // Too early: the seeded flights leave days from now.
    let (_, early) = book(&app, FL202, &[["11A", "Ada", "Lovelace", ""]]).await;
    let (code, body) = check_in(&app, &early, "Lovelace").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("CHECKIN_NOT_OPEN")),
        "{body}"
    );

    // Cancelled (while it could be), then within the window: not confirmed.
    let (_, cancelled) = book(&app, FL102, &[["5A", "Grace", "Hopper", ""]]).await;
    let (code, body) = app
        .post(
            &format!("/api/bookings/{cancelled}/cancel"),
            json!({"lastName": "Hopper"}),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    depart_in(&app, FL102, chrono::Duration::hours(2)).await;
    let (code, body) = check_in(&app, &cancelled, "Hopper").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("BOOKING_NOT_CONFIRMED")),
        "{body}"
    );

    // Too late: within CHECKIN_CLOSES (1 h) of departure.
    depart_in(&app, FL202, chrono::Duration::minutes(30)).await;
    let (code, body) = check_in(&app, &early, "Lovelace").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("CHECKIN_CLOSED")),
        "{body}"
    );

    assert_eq!(count(&app, "SELECT count(*) FROM boarding_passes").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM checkin_sequences").await,
        0
    );
    let (_, booking) = look_up(&app, &early, "Lovelace").await;
    assert_eq!(booking["checkIn"]["open"], false);
    assert_eq!(booking["checkIn"]["checkedIn"], false);
}
