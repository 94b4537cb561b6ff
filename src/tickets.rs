//! E-tickets: a 13-digit number per passenger of a confirmed booking, the
//! airline's 3-digit prefix (`TICKET_AIRLINE_PREFIX`) then a 10-digit
//! serial Postgres gives (`store::checkin`), never twice.

use std::fmt;

/// The airline's 3-digit ticketing prefix (e.g. `724`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketPrefix(String);

impl TicketPrefix {
    /// Exactly three ASCII digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "{text:?} is not a 3-digit airline prefix such as 724"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TicketPrefix {
    /// `724`, the default setting.
    fn default() -> Self {
        Self("724".to_string())
    }
}

impl fmt::Display for TicketPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` has the form of a ticket number: 13 digits.
pub fn is_ticket_number(text: &str) -> bool {
    text.len() == 13 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_three_digits() {
        assert_eq!(TicketPrefix::parse(" 125 ").unwrap().as_str(), "125");
        for bad in ["", "12", "1234", "12a", "١٢٣"] {
            assert!(TicketPrefix::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(TicketPrefix::default().to_string(), "724");
    }

    #[test]
    fn ticket_numbers_are_thirteen_digits() {
        assert!(is_ticket_number("7240000000001"));
        assert!(!is_ticket_number("724000000001"));
        assert!(!is_ticket_number("72400000000x1"));
    }
}
