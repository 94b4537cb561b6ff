//! Admission tokens: what an admitted ticket shows `POST /api/orders`.
//! Opaque to the buyer: `base64url(flight.ticket.until) "." base64url(mac)`,
//! the MAC HMAC-SHA256 under `ADMISSION_SECRET`, so a token cannot be made
//! or altered without the secret, and binds one flight, one ticket and
//! the time it lapses. One order per token is Redis's part
//! (`store::queue`'s `use_admission`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};

use crate::domain::FlightId;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Why a token is refused (each a 403 `ADMISSION_INVALID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the admission is not one this server issued")]
    Forged,
    #[error("the admission is for another flight")]
    OtherFlight,
    #[error("the admission has lapsed; join the queue again")]
    Expired,
    #[error("the admission was used for another order already")]
    Used,
}

/// What a genuine token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub ticket: String,
    pub until_ms: i64,
}

fn mac(secret: &str, payload: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"flightctl admission v1\0");
    mac.update(payload.as_bytes());
    mac
}

/// The token of `ticket` of `flight`, good until `until_ms`.
pub fn sign(secret: &str, flight: FlightId, ticket: &str, until_ms: i64) -> String {
    let payload = format!("{flight}.{ticket}.{until_ms}");
    let sig = mac(secret, &payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// The token's claims if this server signed it for `flight` and it has
/// not lapsed at `now_ms`.
pub fn verify(secret: &str, flight: FlightId, token: &str, now_ms: i64) -> Result<Claims, Invalid> {
    let (payload, sig) = token.trim().split_once('.').ok_or(Invalid::Forged)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Invalid::Forged)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Invalid::Forged)?;
    let payload = String::from_utf8(payload).map_err(|_| Invalid::Forged)?;
    mac(secret, &payload)
        .verify_slice(&sig)
        .map_err(|_| Invalid::Forged)?;
    let mut parts = payload.splitn(3, '.');
    let (Some(for_flight), Some(ticket), Some(until)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Forged);
    };
    if for_flight != flight.to_string() {
        return Err(Invalid::OtherFlight);
    }
    let until_ms: i64 = until.parse().map_err(|_| Invalid::Forged)?;
    if until_ms <= now_ms {
        return Err(Invalid::Expired);
    }
    Ok(Claims {
        ticket: ticket.to_string(),
        until_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_binds_its_flight_ticket_and_lapse() {
        let a: FlightId = "550e8400-e29b-41d4-a716-446655440001".parse().unwrap();
        let b: FlightId = "550e8400-e29b-41d4-a716-446655440002".parse().unwrap();
        let token = sign("s3cret", a, "t1", 2_000);
        let claims = verify("s3cret", a, &token, 1_000).unwrap();
        assert_eq!(claims.ticket, "t1");
        assert_eq!(
            verify("s3cret", b, &token, 1_000),
            Err(Invalid::OtherFlight)
        );
        assert_eq!(verify("s3cret", a, &token, 2_000), Err(Invalid::Expired));
        assert_eq!(verify("other", a, &token, 1_000), Err(Invalid::Forged));
        let (payload, sig) = token.split_once('.').unwrap();
        let longer = URL_SAFE_NO_PAD.encode(format!("{a}.t1.9999999"));
        assert_eq!(
            verify("s3cret", a, &format!("{longer}.{sig}"), 1_000),
            Err(Invalid::Forged)
        );
        assert_eq!(verify("s3cret", a, payload, 1_000), Err(Invalid::Forged));
        assert_eq!(verify("s3cret", a, "", 1_000), Err(Invalid::Forged));
    }
}
