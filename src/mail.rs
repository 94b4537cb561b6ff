//! Booking mails: a passenger who gave an address is mailed the confirmed
//! booking (reference, flight, seats, names), and again when it is refunded;
//! each mail has a plain-text and an HTML part and goes out over SMTP
//! (`SMTP_URL`). The caller, an activity, retries a [`MailError::Transport`],
//! so a mail server outage delays the mail and never the booking. Without
//! `SMTP_URL` nothing is sent ([`Sent::Skipped`]).
//!
//! A mail holds personal data: names and the address. None of it is logged,
//! put in a metric label or in an error's text — errors name an SMTP status
//! code or a network failure only, since an activity's error is kept
//! readable in Temporal's history — and `Debug` redacts it.

use crate::money::Cents;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

pub use crate::config::MailSettings;

/// How long one mail may take to send, connecting included: a stalled
/// server fails the send (to be retried) instead of holding its activity.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Which mail of a booking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailKind {
    /// The booking is confirmed (paid).
    Confirmation,
    /// The booking was refunded, by this amount.
    Refund { amount_cents: Cents },
    /// A payment approved for an order that could not be sold (its seats
    /// went to another order) was refunded; `reference` is then the order's
    /// id, as it has no booking reference.
    PaymentRefund { amount_cents: Cents },
}

/// One passenger of a booking and their seat.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailPassenger {
    pub seat: String,
    pub given_name: String,
    pub family_name: String,
    /// The passenger's e-ticket number (13 digits), once issued.
    #[serde(default)]
    pub ticket_number: Option<String>,
}

/// What a booking mail says, and to whom.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingMail {
    /// One address, bare (`ada@example.com`).
    pub to: String,
    pub kind: MailKind,
    /// The booking reference: ASCII letters and digits (`K7PQ2X`).
    pub reference: String,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure_time: DateTime<Utc>,
    pub passengers: Vec<MailPassenger>,
    pub total_price_cents: Cents,
    /// Each seat's cabin and the price paid for it (the confirmation
    /// itemises the total with them).
    #[serde(default)]
    pub seat_prices: Vec<crate::fares::SeatPrice>,
    /// The manage-my-booking page (`MANAGE_URL`), where the booking is
    /// checked in: a confirmation links to it.
    #[serde(default)]
    pub manage_url: Option<String>,
}

/// What became of a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The SMTP server accepted the mail.
    Delivered,
    /// No `SMTP_URL`: nothing was sent.
    Skipped,
}

/// Why a mail was not sent. The texts carry no personal data.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A bad address, settings or message, or a mail the server refused for
    /// good (5xx): sending it again fails again.
    #[error("invalid mail: {0}")]
    Invalid(String),
    /// The server is down, stalled or refused for now (4xx): retry later.
    #[error("mail transport: {0}")]
    Transport(String),
}

impl MailError {
    /// Whether a retry is pointless.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Invalid(_))
    }

    /// An SMTP failure, by its kind; the server's own words are left out
    /// (a refusal may quote the address).
    fn smtp(e: &lettre::transport::smtp::Error) -> MailError {
        match e.status() {
            Some(code) if e.is_permanent() => {
                MailError::Invalid(format!("the mail server refused the mail ({code})"))
            }
            Some(code) => {
                MailError::Transport(format!("the mail server refused the mail for now ({code})"))
            }
            None if e.is_response() => {
                MailError::Transport("the mail server's answer does not parse".into())
            }
            None if e.is_client() => MailError::Invalid(format!("the mail cannot be sent: {e}")),
            None => MailError::Transport(e.to_string()),
        }
    }
}

/// Sends booking mails through `SMTP_URL`, one connection a mail; without
/// it, skips them. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: String,
    timeout: Duration,
    manage_url: String,
}

/// The one log line of a process that sends no mail.
static SKIPPING: Once = Once::new();

impl Mailer {
    /// A mailer for `settings`: checks the sender and the URL (scheme, TLS
    /// mode, credentials) without connecting.
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailError> {
        sender(&settings.from)?;
        let transport = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose().trim())
                    // lettre's text would not quote the URL, but says little.
                    .map_err(|_| {
                        MailError::Invalid(
                            "SMTP_URL is not smtp://host[:port], smtp://…?tls=required|opportunistic or smtps://host[:port]".into(),
                        )
                    })?
                    .timeout(Some(SEND_TIMEOUT))
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer {
            transport,
            from: settings.from.clone(),
            timeout: SEND_TIMEOUT,
            manage_url: settings.manage_url.trim().to_string(),
        })
    }

    /// The same mailer, giving up on a send after `timeout` instead of
    /// [`SEND_TIMEOUT`] (for a caller whose own deadline is shorter).
    pub fn with_timeout(mut self, timeout: Duration) -> Mailer {
        self.timeout = timeout;
        self
    }

    /// The manage-my-booking page a confirmation links to (`MANAGE_URL`);
    /// none when it is not set.
    pub fn manage_url(&self) -> Option<String> {
        (!self.manage_url.is_empty()).then(|| self.manage_url.clone())
    }

    /// Whether mails are sent at all (`SMTP_URL` is set).
    pub fn is_enabled(&self) -> bool {
        self.transport.is_some()
    }

    /// Send `mail`, within the mailer's timeout. Without `SMTP_URL`,
    /// `Skipped` (logged once a process).
    pub async fn send(&self, mail: &BookingMail) -> Result<Sent, MailError> {
        let Some(transport) = &self.transport else {
            SKIPPING.call_once(|| {
                tracing::info!("SMTP_URL is not set: booking mails are skipped, not sent");
            });
            return Ok(Sent::Skipped);
        };
        let message = mail.message(&self.from)?;
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(Ok(_)) => Ok(Sent::Delivered),
            Ok(Err(e)) => Err(MailError::smtp(&e)),
            Err(_) => Err(MailError::Transport(format!(
                "the mail server did not finish within {:?}",
                self.timeout
            ))),
        }
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("enabled", &self.is_enabled())
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn sender(from: &str) -> Result<Mailbox, MailError> {
    from.parse()
        .map_err(|_| MailError::Invalid("the sender (MAIL_FROM) is not a mail address".into()))
}

impl BookingMail {
    /// The mail from `from` (`Name <address>`): multipart/alternative, a
    /// text/plain and a text/html part. Its Message-ID is the booking's and
    /// the kind's, so a send retried after the server took it is one
    /// message to a mail client.
    pub fn message(&self, from: &str) -> Result<Message, MailError> {
        let from = sender(from)?;
        let to: Address = self
            .to
            .trim()
            .parse()
            .map_err(|_| MailError::Invalid("the recipient is not a mail address".into()))?;
        if self.reference.is_empty() || !self.reference.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(MailError::Invalid(
                "the booking reference is not letters and digits".into(),
            ));
        }
        let content = Content::of(self);
        let message_id = format!(
            "<{}.{}@{}>",
            content.slug,
            self.reference,
            from.email.domain()
        );
        Message::builder()
            .message_id(Some(message_id))
            .from(from)
            .to(Mailbox::new(None, to))
            .subject(content.heading.clone())
            .multipart(MultiPart::alternative_plain_html(
                content.text(),
                content.html(),
            ))
            .map_err(|e| MailError::Invalid(format!("the mail cannot be built: {e}")))
    }
}

impl fmt::Debug for MailPassenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailPassenger")
            .field("seat", &self.seat)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for BookingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BookingMail")
            .field("to", &"[redacted]")
            .field("kind", &self.kind)
            .field("reference", &self.reference)
            .field("flight_number", &self.flight_number)
            .field("departure_time", &self.departure_time)
            .field("passengers", &self.passengers)
            .field("total_price_cents", &self.total_price_cents)
            .finish_non_exhaustive()
    }
}

/// What a mail says, written once and rendered as text and as HTML.
struct Content {
    /// `confirmation` or `refund`, for the Message-ID.
    slug: &'static str,
    /// The subject, also the first line.
    heading: String,
    lead: String,
    facts: Vec<(&'static str, String)>,
    /// Seat, full name and e-ticket number (or empty).
    passengers: Vec<(String, String, String)>,
    /// A confirmation's invitation to check in online, and where.
    check_in: Option<String>,
}

impl Content {
    fn of(mail: &BookingMail) -> Content {
        let reference = &mail.reference;
        let total = mail.total_price_cents.to_string();
        let (slug, heading, lead, money) = match &mail.kind {
            MailKind::Confirmation => (
                "confirmation",
                format!("Your booking {reference} is confirmed"),
                "Thank you for your booking. Have a good flight!".to_string(),
                {
                    let mut money = Vec::new();
                    if !mail.seat_prices.is_empty() {
                        let items: Vec<String> = (mail.seat_prices.iter())
                            .map(|p| format!("{} {} {}", p.seat, p.cabin.as_str(), p.price_cents))
                            .collect();
                        money.push(("Seat prices", items.join("; ")));
                    }
                    money.push(("Total paid", total));
                    money
                },
            ),
            MailKind::Refund { amount_cents } => (
                "refund",
                format!("Your booking {reference} is refunded"),
                format!("We refunded {amount_cents} of this booking."),
                vec![
                    ("Refunded", amount_cents.to_string()),
                    ("Booking total", total),
                ],
            ),
            MailKind::PaymentRefund { amount_cents } => (
                "payment-refund",
                "Your payment is refunded: nothing was booked".to_string(),
                format!(
                    "Your seats could not be booked, so we refunded {amount_cents}, all of your payment."
                ),
                vec![("Refunded", amount_cents.to_string())],
            ),
        };
        let label = match &mail.kind {
            MailKind::PaymentRefund { .. } => "Order",
            _ => "Booking reference",
        };
        let flight = format!(
            "{} from {} to {}",
            mail.flight_number, mail.origin, mail.destination
        );
        let departure = mail.departure_time.format("%a %-d %b %Y, %H:%M UTC");
        let mut facts = vec![
            (label, reference.clone()),
            ("Flight", flight),
            ("Departure", departure.to_string()),
        ];
        facts.extend(money);
        let passengers = mail
            .passengers
            .iter()
            .map(|p| {
                (
                    p.seat.clone(),
                    format!("{} {}", p.given_name, p.family_name),
                    p.ticket_number.clone().unwrap_or_default(),
                )
            })
            .collect();
        let check_in = match (&mail.kind, &mail.manage_url) {
            (MailKind::Confirmation, Some(url)) if !url.is_empty() => Some(url.clone()),
            _ => None,
        };
        Content {
            slug,
            heading,
            lead,
            facts,
            passengers,
            check_in,
        }
    }

    fn text(&self) -> String {
        let mut out = format!("{}.\n\n{}\n\n", self.heading, self.lead);
        for (label, value) in &self.facts {
            out.push_str(&format!("{label}: {value}\n"));
        }
        out.push_str("\nPassengers:\n");
        for (seat, name, ticket) in &self.passengers {
            if ticket.is_empty() {
                out.push_str(&format!("  {seat}  {name}\n"));
            } else {
                out.push_str(&format!("  {seat}  {name}  e-ticket {ticket}\n"));
            }
        }
        if let Some(url) = &self.check_in {
            out.push_str(&format!(
                "\nCheck in online from 24 hours before departure: {url}\n"
            ));
        }
        out
    }

    fn html(&self) -> String {
        let heading = escape(&self.heading);
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{heading}</title></head>\n\
             <body>\n<h1>{heading}</h1>\n<p>{}</p>\n<table>\n",
            escape(&self.lead)
        );
        for (label, value) in &self.facts {
            out.push_str(&format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
                escape(label),
                escape(value)
            ));
        }
        out.push_str("</table>\n<h2>Passengers</h2>\n<table>\n<tr><th align=\"left\">Seat</th><th align=\"left\">Name</th><th align=\"left\">E-ticket</th></tr>\n");
        for (seat, name, ticket) in &self.passengers {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(seat),
                escape(name),
                escape(ticket)
            ));
        }
        out.push_str("</table>\n");
        if let Some(url) = &self.check_in {
            out.push_str(&format!(
                "<p>Check in online from 24 hours before departure: <a href=\"{0}\">{0}</a></p>\n",
                escape(url)
            ));
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

/// `text` safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use chrono::TimeZone;

    fn mail(to: &str) -> BookingMail {
        BookingMail {
            to: to.into(),
            kind: MailKind::Confirmation,
            reference: "K7PQ2X".into(),
            flight_number: "FL101".into(),
            origin: "JFK".into(),
            destination: "LAX".into(),
            departure_time: Utc.with_ymd_and_hms(2030, 6, 1, 8, 30, 0).unwrap(),
            passengers: vec![MailPassenger {
                seat: "12A".into(),
                given_name: "Zoë".into(),
                family_name: "O'Brien <&>".into(),
                ticket_number: Some("7240000000042".into()),
            }],
            total_price_cents: Cents::new(123_456),
            seat_prices: Vec::new(),
            manage_url: Some("https://flights.example/manage".into()),
        }
    }

    #[test]
    fn every_character_that_means_something_in_html_is_escaped() {
        assert_eq!(
            escape(r#"<b>"O'Brien" & co</b>"#),
            "&lt;b&gt;&quot;O&#39;Brien&quot; &amp; co&lt;/b&gt;"
        );
        assert_eq!(escape("Zoë 李"), "Zoë 李");
    }

    #[test]
    fn the_html_part_carries_names_escaped_and_the_text_part_as_given() {
        let content = Content::of(&mail("ada@example.com"));
        let html = content.html();
        assert!(html.contains("Zoë O&#39;Brien &lt;&amp;&gt;"), "{html}");
        assert!(!html.contains("<&>"), "{html}");
        assert!(content.text().contains("12A  Zoë O'Brien <&>"));
        assert!(content.text().contains("Total paid: $1,234.56"));
        assert!(content.text().contains("Sat 1 Jun 2030, 08:30 UTC"));
        assert!(
            content
                .text()
                .contains("12A  Zoë O'Brien <&>  e-ticket 7240000000042")
        );
        assert!(html.contains("<td>7240000000042</td>"), "{html}");
        assert!(content.text().contains("https://flights.example/manage"));
        assert!(
            html.contains("<a href=\"https://flights.example/manage\">"),
            "{html}"
        );
    }

    #[test]
    fn a_reference_that_could_forge_a_header_is_refused() {
        let mut bad = mail("ada@example.com");
        bad.reference = "K7PQ2X\r\nBcc: x@example.com".into();
        let err = bad.message("flightctl <b@flightctl.invalid>").unwrap_err();
        assert!(err.is_permanent(), "{err}");
    }

    #[test]
    fn debug_output_shows_no_name_and_no_address() {
        let debug = format!("{:?}", mail("ada@example.com"));
        assert!(debug.contains("K7PQ2X"), "{debug}");
        for private in ["ada@", "Zoë", "Brien"] {
            assert!(!debug.contains(private), "{private}: {debug}");
        }
    }

    #[test]
    fn the_smtp_url_never_shows_in_debug_output() {
        let settings = MailSettings {
            smtp_url: Some(Secret::new("smtps://user:s3cret-smtp@mail.example.com")),
            from: "flightctl <bookings@flightctl.invalid>".into(),
            manage_url: String::new(),
        };
        let mailer = Mailer::new(&settings).unwrap();
        for debug in [format!("{settings:?}"), format!("{mailer:?}")] {
            assert!(!debug.contains("s3cret"), "{debug}");
            assert!(!debug.contains("user"), "{debug}");
        }
    }

    /// The only test of this binary that sends without `SMTP_URL`: the log
    /// line is once a process.
    #[test]
    fn without_smtp_url_sends_are_skipped_and_logged_once_without_the_address() {
        use std::sync::{Arc, Mutex};
        let log = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Capture(writer.clone()))
            .with_ansi(false)
            .finish();
        let mailer = Mailer::new(&MailSettings {
            smtp_url: None,
            from: "flightctl <bookings@flightctl.invalid>".into(),
            manage_url: String::new(),
        })
        .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                let sent = futures::executor::block_on(mailer.send(&mail("ada@example.com")));
                assert_eq!(sent.unwrap(), Sent::Skipped);
            }
        });
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("SMTP_URL is not set").count(), 1, "{log}");
        assert!(!log.contains("ada@"), "{log}");
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
