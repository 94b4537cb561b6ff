//! Booking mails through a real SMTP server (aiosmtpd, `support::smtp`):
//! what arrives, what an outage or a stall does to a send, and the mails
//! that are never sent.

mod support;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use flightctl::config::Secret;
use flightctl::mail::{
    BookingMail, MailError, MailKind, MailPassenger, MailSettings, Mailer, SEND_TIMEOUT, Sent,
};
use support::smtp::SmtpSink;

const FROM: &str = "flightctl <bookings@flightctl.invalid>";

fn settings(smtp_url: Option<String>) -> MailSettings {
    MailSettings {
        smtp_url: smtp_url.map(Secret::new),
        from: FROM.into(),
        manage_url: String::new(),
    }
}

fn mailer(sink: &SmtpSink) -> Mailer {
    Mailer::new(&settings(Some(sink.url()))).expect("a mailer for the sink")
}

fn passenger(seat: &str, given_name: &str, family_name: &str) -> MailPassenger {
    MailPassenger {
        seat: seat.into(),
        given_name: given_name.into(),
        family_name: family_name.into(),
        ticket_number: None,
    }
}

fn booking(kind: MailKind) -> BookingMail {
    BookingMail {
        to: "ada@example.com".into(),
        kind,
        reference: "K7PQ2X".into(),
        flight_number: "FL101".into(),
        origin: "JFK".into(),
        destination: "LAX".into(),
        departure_time: Utc.with_ymd_and_hms(2030, 6, 1, 8, 30, 0).unwrap(),
        passengers: vec![
            passenger("12A", "Zoë", "O'Brien <&> Smith"),
            passenger("12B", "李", "小龍"),
        ],
        total_price_cents: flightctl::money::Cents::new(70_000),
        seat_prices: Vec::new(),
        manage_url: None,
    }
}

#[tokio::test]
async fn a_confirmation_arrives_with_a_text_and_an_html_part_naming_everything() {
    let sink = SmtpSink::start();
    let sent = mailer(&sink).send(&booking(MailKind::Confirmation)).await;
    assert_eq!(sent.unwrap(), Sent::Delivered);

    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let mail = &mails[0];
    assert_eq!(mail.header("X-RcptTo"), Some("ada@example.com"));
    assert_eq!(
        mail.header("X-MailFrom"),
        Some("bookings@flightctl.invalid")
    );
    assert_eq!(mail.header("To"), Some("ada@example.com"));
    assert_eq!(mail.subject(), "Your booking K7PQ2X is confirmed");
    // The booking's own: a send retried after the server took it is one
    // message to a mail client.
    assert_eq!(
        mail.header("Message-ID"),
        Some("<confirmation.K7PQ2X@flightctl.invalid>")
    );
    assert_eq!(mail.mime_type, "multipart/alternative");
    let types: Vec<&str> = mail.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);

    let text = mail.body("text/plain");
    for expected in [
        "K7PQ2X",
        "FL101 from JFK to LAX",
        "Sat 1 Jun 2030, 08:30 UTC",
        "12A  Zoë O'Brien <&> Smith",
        "12B  李 小龍",
        "$700.00",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let html = mail.body("text/html");
    for expected in [
        "K7PQ2X",
        "FL101 from JFK to LAX",
        "Sat 1 Jun 2030, 08:30 UTC",
        "<td>12A</td><td>Zoë O&#39;Brien &lt;&amp;&gt; Smith</td>",
        "<td>12B</td><td>李 小龍</td>",
        "$700.00",
    ] {
        assert!(html.contains(expected), "{expected:?} in\n{html}");
    }
    assert!(!html.contains("<&>") && !html.contains("O'Brien"), "{html}");
}

#[tokio::test]
async fn a_refund_says_refunded_and_the_amount() {
    let sink = SmtpSink::start();
    let refund = booking(MailKind::Refund {
        amount_cents: flightctl::money::Cents::new(35_050),
    });
    assert_eq!(mailer(&sink).send(&refund).await.unwrap(), Sent::Delivered);

    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let mail = &mails[0];
    assert_eq!(mail.subject(), "Your booking K7PQ2X is refunded");
    for part in ["text/plain", "text/html"] {
        let body = mail.body(part);
        assert!(body.contains("We refunded $350.50"), "{part}:\n{body}");
        assert!(
            body.contains("$700.00"),
            "the booking's total; {part}:\n{body}"
        );
    }
}

#[tokio::test]
async fn with_the_server_down_a_send_fails_retryably_and_a_retry_after_it_is_back_delivers() {
    let mut sink = SmtpSink::start();
    let mailer = mailer(&sink);
    let mail = booking(MailKind::Confirmation);
    sink.stop();

    let started = Instant::now();
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Transport(_)), "{err:?}");
    assert!(!err.is_permanent());
    assert!(
        started.elapsed() < SEND_TIMEOUT / 2,
        "a refused connection fails at once, not at the timeout: {:?}",
        started.elapsed()
    );
    assert!(!err.to_string().contains("ada@"), "{err}");

    sink.restart();
    assert_eq!(mailer.send(&mail).await.unwrap(), Sent::Delivered);
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject(), "Your booking K7PQ2X is confirmed");
}

#[tokio::test]
async fn a_stalled_server_fails_the_send_at_the_timeout_retryably() {
    let sink = SmtpSink::start();
    let timeout = Duration::from_secs(1);
    let mailer = mailer(&sink).with_timeout(timeout);
    // Stopped, its socket still accepts connections: the greeting never comes.
    let frozen = support::procs::freeze_tree(sink.pid().expect("running"));

    let started = Instant::now();
    let err = mailer
        .send(&booking(MailKind::Confirmation))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(!err.is_permanent(), "{err:?}");
    assert!(
        took >= timeout && took < timeout * 3,
        "gave up after {took:?}"
    );

    frozen.thaw();
    assert_eq!(
        mailer.send(&booking(MailKind::Confirmation)).await.unwrap(),
        Sent::Delivered
    );
}

#[tokio::test]
async fn without_smtp_url_a_send_is_skipped() {
    let mailer = Mailer::new(&settings(None)).unwrap();
    assert!(!mailer.is_enabled());
    let sent = mailer.send(&booking(MailKind::Confirmation)).await;
    assert_eq!(sent.unwrap(), Sent::Skipped);
}

#[tokio::test]
async fn an_invalid_address_is_a_permanent_error_and_nothing_is_sent() {
    let sink = SmtpSink::start();
    let mailer = mailer(&sink);
    for to in [
        "not an address",
        "ada@",
        "",
        "ada@example.com\r\nBcc: eve@example.com",
    ] {
        let mut mail = booking(MailKind::Confirmation);
        mail.to = to.into();
        let err = mailer.send(&mail).await.unwrap_err();
        assert!(err.is_permanent(), "{to:?}: {err:?}");
        assert!(matches!(err, MailError::Invalid(_)), "{to:?}: {err:?}");
        if !to.is_empty() {
            assert!(!err.to_string().contains(to), "{err}");
        }
    }
    // The sink still takes a good mail, and it is the only one it got.
    assert_eq!(
        mailer.send(&booking(MailKind::Confirmation)).await.unwrap(),
        Sent::Delivered
    );
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await.len(), 1);
}

#[test]
fn a_bad_smtp_url_or_sender_is_refused_without_showing_the_url() {
    for url in [
        "http://user:s3cret@mail.example.com",
        "smtp://user:s3cret@mail.example.com?tls=sometimes",
        "no url at all",
    ] {
        let err = Mailer::new(&settings(Some(url.into()))).unwrap_err();
        assert!(err.is_permanent(), "{url}: {err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
    let err = Mailer::new(&MailSettings {
        smtp_url: None,
        from: "bookings".into(),
        manage_url: String::new(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("MAIL_FROM"), "{err}");
}
