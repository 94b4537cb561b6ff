//! Holds end (issue 24, item 1): a client that keeps changing its seats
//! cannot keep them forever. A change restarts the hold but never past the
//! order's creation + `HOLD_MAX_LIFETIME`, in the workflow timer and in the
//! Redis TTL; a passenger update restarts nothing; the answers and the
//! status show the cap (`maxExpiresAt`). Real Postgres, Redis, Temporal and
//! a worker, with short settings read through the environment contract.

#[path = "support/booking.rs"]
mod booking;
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightctl::config::{Settings, Sources};
use serde_json::{Value, json};
use support::{FL102, TestApp};

use booking::*;

/// The Redis hold outlives the workflow's timer by this much (the safety
/// net), and no more.
const TTL_MARGIN_MS: i64 = 60_000;
/// How late a Redis TTL may be set after the workflow time it was computed
/// from (the lock runs in the workflow task that decided it).
const SET_LATENESS_MS: i64 = 1_500;

/// Settings whose hold and lifetime are read from the environment names
/// `SEAT_RESERVATION_TIMEOUT` and `HOLD_MAX_LIFETIME`, as a deployment sets
/// them; the rest as the booking suites have it.
async fn settings_with(hold: &'static str, lifetime: &'static str) -> Settings {
    let loaded = Settings::load_from(&Sources {
        config_dir: support::repo_root().join("config"),
        file: None,
        env: Box::new(move |name| match name {
            "SEAT_RESERVATION_TIMEOUT" => Some(hold.to_string()),
            "HOLD_MAX_LIFETIME" => Some(lifetime.to_string()),
            _ => None,
        }),
    })
    .expect("the settings load");
    let mut s = settings(loaded.booking.seat_reservation_timeout).await;
    let fixed = s.booking.clone();
    s.booking = loaded.booking;
    s.booking.payment_validation_timeout = fixed.payment_validation_timeout;
    s.booking.payment_max_attempts = fixed.payment_max_attempts;
    s.booking.payment_failure_rate = fixed.payment_failure_rate;
    s
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// An RFC 3339 instant of an answer, in Unix ms.
fn instant(body: &Value, field: &str) -> i64 {
    let text = body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"));
    let at: DateTime<Utc> = text.parse().unwrap();
    at.timestamp_millis()
}

async fn pttl(app: &TestApp, seat: &str) -> i64 {
    use fred::prelude::KeysInterface;
    let prefix = &app.settings.redis.key_prefix;
    let key = format!("{prefix}:hold:{{{FL102}}}:{seat}");
    app.holds.client().pttl(key).await.unwrap()
}

#[tokio::test]
async fn a_hold_spun_by_seat_changes_expires_at_the_cap() {
    const LIFETIME_MS: i64 = 10_000;
    const HOLD_MS: i64 = 4_000;
    const EVERY: Duration = Duration::from_millis(1_500);
    /// How long after the cap the spinner may still be answered: the
    /// workflow's timer, its save, and one more change.
    const SLACK_MS: i64 = 5_000;
    let app = TestApp::with_worker(settings_with("4s", "10s").await).await;

    let before = now_ms();
    let (code, created) = create(&app, FL102, &["5A"]).await;
    let after = now_ms();
    assert_eq!(code, 201, "{created}");
    let order = created["orderId"].as_str().unwrap().to_string();

    // A script changing its seats every 1.5 s, for as long as it is let.
    let give_up = after + LIFETIME_MS + SLACK_MS;
    let seats = [["5B"], ["5A"]];
    let mut accepted: Vec<Value> = Vec::new();
    let refusal = loop {
        tokio::time::sleep(EVERY).await;
        let wanted = seats[accepted.len() % 2];
        let (code, body) = app
            .put(
                &format!("/api/orders/{order}/seats"),
                json!({ "seats": wanted }),
            )
            .await;
        match code {
            200 => accepted.push(body),
            409 => break body,
            _ => panic!("change {}: {code} {body}", accepted.len() + 1),
        }
        assert!(
            now_ms() <= give_up,
            "still held {} ms after its creation (lifetime {LIFETIME_MS} ms): {} changes \
             accepted, the last one until {}",
            now_ms() - before,
            accepted.len(),
            accepted.last().unwrap()["expiresAt"]
        );
    };
    assert_eq!(refusal["error"], "ORDER_EXPIRED", "{refusal}");
    let ended = wait_for(&app, &order, "EXPIRED", LONG).await;

    // The cap is the creation + the lifetime, shown on every answer.
    let cap = instant(&created, "maxExpiresAt");
    assert!(
        (before + LIFETIME_MS..=after + LIFETIME_MS).contains(&cap),
        "cap {cap}: created between {before} and {after}"
    );
    assert!(
        accepted.len() >= 3,
        "the spinner changed seats {} times",
        accepted.len()
    );
    for change in &accepted {
        assert_eq!(instant(change, "maxExpiresAt"), cap, "{change}");
        assert!(instant(change, "expiresAt") <= cap, "{change}");
    }
    let first = instant(&accepted[0], "expiresAt");
    assert!(
        first > instant(&created, "expiresAt") && first < cap,
        "an early change restarts the hold in full: {}",
        accepted[0]
    );
    let last = accepted.last().unwrap();
    assert_eq!(instant(last, "expiresAt"), cap, "a late change: {last}");
    assert_eq!(
        cap - instant(&created, "expiresAt"),
        LIFETIME_MS - HOLD_MS,
        "the first hold is a full one: {created}"
    );

    // Ended: nothing left to extend, and every seat back on sale.
    assert_eq!(ended["expiresAt"], Value::Null, "{ended}");
    assert_eq!(ended["maxExpiresAt"], Value::Null, "{ended}");
    let seats = app.seat_statuses(FL102).await;
    assert_eq!(
        (seats["5A"].as_str(), seats["5B"].as_str()),
        ("available", "available")
    );
    support::eventually("the holds to be released", LONG, || async {
        held_by(&app, FL102).await.is_empty().then_some(())
    })
    .await;
    record_and_replay(&app, &order, "expired-at-cap").await;
}

/// The order's closed history replays against today's code; with
/// `FLIGHTCTL_RECORD_HISTORIES=<dir>` it is written there as `<name>.json`,
/// a fixture `tests/replay.rs` replays.
async fn record_and_replay(app: &TestApp, order: &str, name: &str) {
    support::eventually("a closed history", LONG, || async {
        let events = history(app, order).await;
        (events.last().map(String::as_str) == Some("WorkflowExecutionCompleted")).then_some(())
    })
    .await;
    let client = temporal(app).await;
    let handle =
        client.get_workflow_handle::<flightctl::booking::Booking>(format!("booking-{order}"));
    let json = handle
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    if let Some(dir) = std::env::var_os("FLIGHTCTL_RECORD_HISTORIES") {
        let path = std::path::Path::new(&dir).join(format!("{name}.json"));
        std::fs::write(path, &json).unwrap();
    }
    let recorded = temporalio_client::WorkflowHistory::from_json(&json).unwrap();
    support::replayer()
        .replay_workflow(recorded)
        .await
        .unwrap_or_else(|e| panic!("{name} booking-{order} does not replay: {e}"));
}

#[tokio::test]
async fn a_passenger_update_restarts_nothing_and_a_change_stops_at_the_cap() {
    // A hold of 60 s and a lifetime of 62 s: a change 8 s in is capped.
    let app = TestApp::with_worker(settings_with("60s", "62s").await).await;
    let (code, created) = create(&app, FL102, &["6A"]).await;
    assert_eq!(code, 201, "{created}");
    let order = created["orderId"].as_str().unwrap().to_string();
    let expires = instant(&created, "expiresAt");

    tokio::time::sleep(Duration::from_secs(4)).await;
    let (code, named) = app.name_passengers(&order).await;
    assert_eq!(code, 200, "{named}");
    assert_eq!(
        instant(&named, "expiresAt"),
        expires,
        "naming passengers moved the hold's end: {created} then {named}"
    );
    let shown = status(&app, &order).await;
    assert_eq!(instant(&shown, "expiresAt"), expires, "{shown}");
    let left = pttl(&app, "6A").await;
    let bound = expires - now_ms() + TTL_MARGIN_MS + SET_LATENESS_MS;
    assert!(
        left <= bound,
        "the passenger update restarted the Redis hold: {left} ms left, at most {bound}"
    );
    let cap = instant(&created, "maxExpiresAt");
    assert_eq!(cap - expires, 2_000, "{created}");
    assert_eq!(instant(&named, "maxExpiresAt"), cap, "{named}");
    assert_eq!(instant(&shown, "maxExpiresAt"), cap, "{shown}");

    tokio::time::sleep(Duration::from_secs(4)).await;
    let (code, changed) = app
        .put(
            &format!("/api/orders/{order}/seats"),
            json!({"seats": ["6A", "6B"]}),
        )
        .await;
    assert_eq!(code, 200, "{changed}");
    assert_eq!(instant(&changed, "expiresAt"), cap, "{changed}");
    let shown = status(&app, &order).await;
    assert_eq!(instant(&shown, "expiresAt"), cap, "{shown}");
    assert_eq!(shown["passengers"].as_array().map(Vec::len), Some(1));
    let left = pttl(&app, "6B").await;
    let bound = cap - now_ms() + TTL_MARGIN_MS + SET_LATENESS_MS;
    assert!(
        left <= bound,
        "the new seat is held {left} ms, past the cap + margin ({bound} ms)"
    );
}

fn load(env: &'static [(&'static str, &'static str)]) -> Result<Settings, String> {
    Settings::load_from(&Sources {
        config_dir: support::repo_root().join("config"),
        file: None,
        env: Box::new(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }),
    })
    .map_err(|e| e.to_string())
}

#[test]
fn a_lifetime_shorter_than_the_hold_is_refused_naming_both() {
    let err = load(&[
        ("SEAT_RESERVATION_TIMEOUT", "15m"),
        ("HOLD_MAX_LIFETIME", "10m"),
    ])
    .expect_err("a lifetime shorter than one hold");
    assert!(
        err.contains("HOLD_MAX_LIFETIME") && err.contains("SEAT_RESERVATION_TIMEOUT"),
        "{err}"
    );
    let err = load(&[("HOLD_MAX_LIFETIME", "half an hour")]).expect_err("not a duration");
    assert!(err.contains("HOLD_MAX_LIFETIME"), "{err}");
    let default = load(&[]).unwrap().booking;
    assert_eq!(default.hold_max_lifetime, Duration::from_secs(30 * 60));
    let equal = load(&[("SEAT_RESERVATION_TIMEOUT", "30m")])
        .unwrap()
        .booking;
    assert_eq!(equal.seat_reservation_timeout, equal.hold_max_lifetime);
    let err = load(&[("SEAT_RESERVATION_TIMEOUT", "31m")]).expect_err("past the default 30m");
    assert!(err.contains("HOLD_MAX_LIFETIME"), "{err}");
}

#[test]
fn the_cap_is_documented_in_the_openapi_document() {
    let doc = flightctl::api::openapi_document();
    for schema in ["Held", "StatusView"] {
        let field = &doc["components"]["schemas"][schema]["properties"]["maxExpiresAt"];
        let said = field["description"].as_str().unwrap_or_default();
        assert!(said.contains("HOLD_MAX_LIFETIME"), "{schema}: {field}");
    }
}
