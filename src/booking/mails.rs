//! The mails a booking sends: its confirmation, once CONFIRMED, and its
//! refund, once REFUNDED (or, for an approved payment whose order was not
//! sold, the payment's refund), to every passenger email. The booking and the
//! refund workflow each send theirs by the `send_booking_mail` activity
//! ([`AfterSale`](super::refund::AfterSale)), retried with backoff for a day,
//! so a mail server outage delays the mail, never the booking. The mail is
//! built from the order's row, so no name or address travels through
//! Temporal.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::{ActivityCloseTimeouts, ActivityOptions, ApplicationFailure};

use crate::domain::OrderId;
use crate::mail::{BookingMail, MailKind, MailPassenger, Mailer, Sent};
use crate::store::{StoreError, checkin, flights, orders, refunds};

/// Which mail a booking sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    Confirmation,
    Refund,
}

/// The `send_booking_mail` activity's input: the order whose mail goes out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailOrder {
    pub order_id: OrderId,
    pub notice: Notice,
}

/// A mail is retried with backoff for a day; its failure changes nothing
/// about the booking.
pub fn mail_options() -> ActivityOptions {
    let timeouts = ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(24 * 3600),
        start_to_close: Duration::from_secs(30),
    };
    ActivityOptions::with_close_timeouts(timeouts)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(2))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(300))
                .build(),
        )
        .build()
}

/// Send the order's mail to each of its passenger emails; how many were
/// delivered. A mail server that is down fails the call (Temporal retries
/// it); a mail refused for good is logged and skipped.
pub async fn deliver(pool: &Pool, mailer: &Mailer, req: &MailOrder) -> Result<u32, ActivityError> {
    let mails = build(pool, req, mailer.manage_url()).await?;
    let mut delivered = 0;
    for mail in &mails {
        match mailer.send(mail).await {
            Ok(Sent::Delivered) => delivered += 1,
            Ok(Sent::Skipped) => {}
            Err(e) if e.is_permanent() => {
                tracing::warn!(notice = ?req.notice, "a booking mail was refused for good: {e}");
            }
            Err(e) => {
                tracing::info!(notice = ?req.notice, "mail server unavailable; retried: {e}");
                return Err(anyhow::anyhow!("mail server unavailable: {e}").into());
            }
        }
    }
    if delivered > 0 {
        tracing::info!(notice = ?req.notice, delivered, "booking mail sent");
    }
    Ok(delivered)
}

/// One mail per distinct passenger email of the order.
async fn build(
    pool: &Pool,
    req: &MailOrder,
    manage_url: Option<String>,
) -> Result<Vec<BookingMail>, ActivityError> {
    let order = match orders::find(pool, req.order_id).await {
        Err(e @ StoreError::OrderNotFound(_)) => {
            return Err(ActivityError::application(
                ApplicationFailure::non_retryable(e),
            ));
        }
        other => other?,
    };
    let flight = flights::find(pool, order.flight_id).await?;
    // A refund mail says what the refund row pays back (the price less any
    // cancellation fee), the booking's total beside it.
    let amount_cents = match req.notice {
        Notice::Refund => refunds::find(pool, order.id)
            .await?
            .map_or(order.total_price_cents, |r| r.amount_cents),
        Notice::Confirmation => order.total_price_cents,
    };
    // An order never sold has no booking reference: its refund is the
    // payment's, named by the order's id.
    let (kind, reference) = match (req.notice, order.reference.clone()) {
        (Notice::Confirmation, reference) => {
            (MailKind::Confirmation, reference.unwrap_or_default())
        }
        (Notice::Refund, Some(reference)) => (MailKind::Refund { amount_cents }, reference),
        (Notice::Refund, None) => (
            MailKind::PaymentRefund { amount_cents },
            order.id.uuid().simple().to_string(),
        ),
    };
    let mut to: Vec<&str> = (order.passengers.iter())
        .filter_map(|p| p.email.as_deref())
        .collect();
    to.sort_unstable();
    to.dedup();
    let tickets = checkin::tickets(pool, order.id).await?;
    let passengers: Vec<MailPassenger> = (order.passengers.iter())
        .map(|p| MailPassenger {
            seat: p.seat.to_string(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            ticket_number: (tickets.iter().find(|t| t.seat == p.seat)).map(|t| t.number.clone()),
        })
        .collect();
    Ok(to
        .into_iter()
        .map(|address| BookingMail {
            to: address.to_string(),
            kind: kind.clone(),
            reference: reference.clone(),
            flight_number: flight.flight_number.clone(),
            origin: flight.origin.clone(),
            destination: flight.destination.clone(),
            departure_time: flight.departure_time,
            passengers: passengers.clone(),
            total_price_cents: order.total_price_cents,
            seat_prices: order.seat_prices.clone(),
            manage_url: manage_url.clone(),
        })
        .collect())
}
