//! Who flies: one passenger per seat, checked at the edge, and the booking
//! reference a confirmed order is found by.
//!
//! Names and emails are personal data: [`Passenger`]'s `Debug` shows the
//! seat only, so a `?passenger` in a log line never leaks one.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::domain::SeatId;

/// Longest name, in characters after trimming.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest given and family name together, in characters after trimming:
/// what a ticket (a GDS's name field) can carry.
pub const MAX_TICKET_NAME_CHARS: usize = 55;
/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// The passenger on one seat.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Passenger {
    /// A seat the order holds.
    #[schema(value_type = String, example = "12A", pattern = "^[1-9][0-9]{0,2}[A-Fa-f]$")]
    pub seat: SeatId,
    /// At least one character after trimming: Latin letters (accented
    /// ones too), spaces, hyphens and apostrophes, at least one letter;
    /// at most 55 characters with `familyName` (what a ticket carries).
    /// No `pattern`: `\p{Script=Latin}` is not in every regex dialect a
    /// client or a fuzzer reads the document with.
    #[schema(example = "Ada", min_length = 1, max_length = 55)]
    pub given_name: String,
    /// As `givenName`.
    #[schema(example = "Lovelace", min_length = 1, max_length = 55)]
    pub family_name: String,
    /// Where the confirmation is mailed; none: no mail.
    #[serde(default)]
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: Option<String>,
}

impl fmt::Debug for Passenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Passenger({}, ***)", self.seat)
    }
}

/// A passenger as a request sends it, before any check.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassengerInput {
    #[serde(default)]
    pub seat: serde_json::Value,
    #[serde(default)]
    pub given_name: serde_json::Value,
    #[serde(default)]
    pub family_name: serde_json::Value,
    #[serde(default)]
    pub email: serde_json::Value,
}

/// Why a passenger list was refused: the seat and the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The seat as sent (empty when it was not a string).
    pub seat: String,
    /// `seat`, `givenName`, `familyName` or `email`.
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seat.is_empty() {
            write!(f, "{}: {}", self.field, self.message)
        } else {
            write!(f, "seat {} {}: {}", self.seat, self.field, self.message)
        }
    }
}

/// Check a passenger list: one passenger per distinct seat, names a ticket
/// can carry (Latin letters, accented ones too, spaces, hyphens and
/// apostrophes; given and family name at most 55 characters together), an
/// optional email. Names come back trimmed and NFC-normalised, accents
/// kept, seats in capitals, sorted by seat.
pub fn validate(list: &[PassengerInput]) -> Result<Vec<Passenger>, Invalid> {
    if list.is_empty() || list.len() > crate::domain::MAX_SEATS_PER_ORDER {
        return Err(Invalid {
            seat: String::new(),
            field: "passengers",
            message: format!(
                "give 1 to {} passengers, one per seat",
                crate::domain::MAX_SEATS_PER_ORDER
            ),
        });
    }
    let mut out: Vec<Passenger> = Vec::with_capacity(list.len());
    for p in list {
        let raw_seat = p.seat.as_str().unwrap_or_default().to_string();
        let invalid = |field: &'static str, message: String| Invalid {
            seat: raw_seat.clone(),
            field,
            message,
        };
        let seat = SeatId::parse(&raw_seat)
            .map_err(|_| invalid("seat", "is not a seat id such as 12A".into()))?;
        if out.iter().any(|q| q.seat == seat) {
            return Err(invalid("seat", "has two passengers".into()));
        }
        let given_name = name(&p.given_name).map_err(|m| invalid("givenName", m))?;
        let family_name = name(&p.family_name).map_err(|m| invalid("familyName", m))?;
        let together = given_name.chars().count() + family_name.chars().count();
        if together > MAX_TICKET_NAME_CHARS {
            return Err(invalid(
                "familyName",
                format!(
                    "with givenName is {together} characters: a ticket carries at most \
                     {MAX_TICKET_NAME_CHARS} for both"
                ),
            ));
        }
        let email = email(&p.email).map_err(|m| invalid("email", m))?;
        out.push(Passenger {
            seat,
            given_name,
            family_name,
            email,
        });
    }
    out.sort_by(|a, b| a.seat.cmp(&b.seat));
    Ok(out)
}

fn name(value: &serde_json::Value) -> Result<String, String> {
    let Some(text) = value.as_str() else {
        return Err("is required (a string)".into());
    };
    let text: String = text.trim().nfc().collect();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    let allowed =
        |c: char| is_latin_letter(c) || is_combining_mark(c) || matches!(c, ' ' | '-' | '\'' | '’');
    if !text.chars().all(allowed) || !text.chars().any(is_latin_letter) {
        return Err(
            "may hold only Latin letters (accents allowed), spaces, hyphens and apostrophes".into(),
        );
    }
    Ok(text)
}

/// A letter of the Latin script, accented or not: Basic Latin, the
/// letters of Latin-1, Latin Extended-A and -B, Latin Extended Additional.
fn is_latin_letter(c: char) -> bool {
    matches!(c,
        'A'..='Z' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{24F}'
        | '\u{1E00}'..='\u{1EFF}')
}

fn email(value: &serde_json::Value) -> Result<Option<String>, String> {
    let text = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(s) if s.trim().is_empty() => return Ok(None),
        serde_json::Value::String(s) => s.trim(),
        _ => return Err("must be a string".into()),
    };
    let ok = text.chars().count() <= MAX_EMAIL_CHARS
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(text.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(Some(text.to_string()))
    } else {
        Err("is not an email address".into())
    }
}

/// A name as look-ups compare it: without accents, case or extra spaces
/// (`Lovelace`, ` LOVELACE `, `Lóvelace` match).
pub fn name_key(name: &str) -> String {
    let plain: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `wanted` (a family name as a customer types it) is the family
/// name of one of `passengers`, compared as look-ups compare names
/// ([`name_key`]). The same work whatever the answer: every slot of a
/// full order is compared (an empty slot against a decoy), each as two
/// SHA-256 digests compared over all their bytes without an early exit,
/// so how long it takes says neither which passenger matched, nor whether
/// any did, nor how many passengers the booking has (or whether there is
/// a booking at all: give no passengers).
pub fn family_matches(passengers: &[Passenger], wanted: &str) -> bool {
    const DECOY: &str = "no passenger has this name";
    let wanted = Sha256::digest(name_key(wanted).as_bytes());
    let slots = passengers.len().max(crate::domain::MAX_SEATS_PER_ORDER);
    let mut found = 0u8;
    for slot in 0..slots {
        let (name, real) = match passengers.get(slot) {
            Some(p) => (p.family_name.as_str(), 1u8),
            None => (DECOY, 0u8),
        };
        let digest = Sha256::digest(name_key(name).as_bytes());
        found |= same_bytes(&digest, &wanted) & real;
    }
    std::hint::black_box(found) == 1
}

/// 1 if `a` and `b` (of one length) are equal, else 0: every byte is
/// looked at, and no branch depends on them.
fn same_bytes(a: &[u8], b: &[u8]) -> u8 {
    let diff = (a.iter().zip(b)).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    let diff = std::hint::black_box(diff);
    ((u16::from(diff).wrapping_sub(1) >> 8) & 1) as u8
}

/// Booking references: 6 characters without look-alikes (no 0/O, 1/I/L).
pub const REFERENCE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const REFERENCE_LEN: usize = 6;

/// A new random reference (uniqueness is the database's constraint).
pub fn new_reference() -> String {
    let alphabet = REFERENCE_ALPHABET.as_bytes();
    let mut rng = rand::rng();
    (0..REFERENCE_LEN)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A reference as a customer types it (any case, spaces around), or none
/// if it cannot be one.
pub fn parse_reference(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_uppercase();
    (text.len() == REFERENCE_LEN && text.chars().all(|c| REFERENCE_ALPHABET.contains(c)))
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(seat: &str, given: &str, family: &str) -> PassengerInput {
        PassengerInput {
            seat: json!(seat),
            given_name: json!(given),
            family_name: json!(family),
            email: serde_json::Value::Null,
        }
    }

    #[test]
    fn latin_names_with_accents_spaces_hyphens_and_apostrophes_pass_unchanged() {
        for (given, family) in [
            ("Ada", "Lovelace"),
            ("  Jean-Luc ", "O'Brien"),
            ("Zoë", "Ðorđević"),
            ("Søren", "Kierkegaard"),
            ("Łukasz", "Żółć"),
            ("Nguyễn", "Thị Minh Khai"),
            ("Ana María", "de la Cruz O’Neil"),
        ] {
            let list = validate(&[input("1a", given, family)]).unwrap();
            assert_eq!(list[0].seat.to_string(), "1A");
            assert_eq!(list[0].given_name, given.trim(), "accents are kept");
            assert_eq!(list[0].family_name, family.trim());
        }
        // Decomposed accents are composed, not lost.
        let list = validate(&[input("1A", "Zoe\u{308}", "Lovelace")]).unwrap();
        assert_eq!(list[0].given_name, "Zoë");
    }

    #[test]
    fn names_a_ticket_cannot_carry_are_refused_naming_the_field() {
        for (given, family, field) in [
            ("明", "王", "givenName"),
            ("Ada", "Достоевский", "familyName"),
            ("محمد", "Lovelace", "givenName"),
            ("J.R.R.", "Tolkien", "givenName"),
            ("Ada", "Lovelace_", "familyName"),
            ("Ada", "-'", "familyName"),
        ] {
            let err = validate(&[input("1A", given, family)]).unwrap_err();
            assert_eq!(err.field, field, "{given} {family}: {err}");
        }
        let (given, family) = ("A".repeat(25), "B".repeat(30));
        assert!(
            validate(&[input("1A", &given, &family)]).is_ok(),
            "55 together"
        );
        let err = validate(&[input("1A", &given, &"B".repeat(31))]).unwrap_err();
        assert_eq!(err.field, "familyName");
        assert!(err.message.contains("55"), "{err}");
    }

    #[test]
    fn a_bad_name_email_or_seat_names_the_seat_and_field() {
        let long = "a".repeat(65);
        for (p, field) in [
            (input("1A", "", "X"), "givenName"),
            (input("1A", "   ", "X"), "givenName"),
            (input("1A", &long, "X"), "givenName"),
            (input("1A", "Ada", "L0velace"), "familyName"),
            (input("1A", "Ada", "<script>"), "familyName"),
            (input("1A", "Ada", "..."), "familyName"),
            (input("1Z", "Ada", "Lovelace"), "seat"),
        ] {
            let err = validate(&[p]).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        let mut p = input("2B", "Ada", "Lovelace");
        p.email = json!("not-an-address");
        let err = validate(&[p]).unwrap_err();
        assert_eq!((err.seat.as_str(), err.field), ("2B", "email"));
        let two = validate(&[input("2B", "A", "B"), input("2b", "C", "D")]).unwrap_err();
        assert_eq!(two.field, "seat");
        assert_eq!(validate(&[]).unwrap_err().field, "passengers");
    }

    #[test]
    fn an_email_is_optional_and_kept_trimmed() {
        let mut p = input("3C", "Ada", "Lovelace");
        p.email = json!(" ada@example.com ");
        assert_eq!(
            validate(&[p]).unwrap()[0].email.as_deref(),
            Some("ada@example.com")
        );
        let mut p = input("3C", "Ada", "Lovelace");
        p.email = json!("");
        assert_eq!(validate(&[p]).unwrap()[0].email, None);
    }

    #[test]
    fn debug_never_shows_a_name_or_email() {
        let mut p = input("4D", "Ada", "Lovelace");
        p.email = json!("ada@example.com");
        let shown = format!("{:?}", validate(&[p]).unwrap());
        assert!(!shown.contains("Ada") && !shown.contains("Lovelace") && !shown.contains('@'));
        assert!(shown.contains("4D"));
    }

    #[test]
    fn look_ups_ignore_case_accents_and_spaces() {
        assert_eq!(name_key("  LÓVELACE "), name_key("lovelace"));
        assert_eq!(name_key("Ðorđević"), name_key("ðorđevic"));
        assert_eq!(name_key("van  der Berg"), "van der berg");
        assert_ne!(name_key("Lovelace"), name_key("Lovelaces"));
    }

    #[test]
    fn a_family_name_matches_any_passenger_as_look_ups_compare_names() {
        let list = validate(&[
            input("1A", "Ada", "Lovelace"),
            input("1B", "Charles", "Babbage"),
        ])
        .unwrap();
        for typed in ["Lovelace", " LÓVELACE ", "babbage"] {
            assert!(family_matches(&list, typed), "{typed}");
        }
        for typed in ["Lovelaces", "Ada", "", "no passenger has this name"] {
            assert!(!family_matches(&list, typed), "{typed}");
        }
        assert!(!family_matches(&[], "Lovelace"), "no booking: no match");
        assert!(!family_matches(&[], "no passenger has this name"));
    }

    #[test]
    fn bytes_compare_equal_only_when_every_byte_is() {
        assert_eq!(same_bytes(&[0; 32], &[0; 32]), 1);
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = [0u8; 32];
                b[i] = 1 << bit;
                assert_eq!(same_bytes(&[0; 32], &b), 0, "byte {i} bit {bit}");
            }
        }
        assert_eq!(same_bytes(&[0xff; 32], &[0xff; 32]), 1);
    }

    #[test]
    fn references_avoid_look_alikes_and_parse_back() {
        for _ in 0..500 {
            let r = new_reference();
            assert_eq!(r.len(), REFERENCE_LEN);
            assert!(!r.contains(['0', 'O', '1', 'I', 'L']), "{r}");
            assert_eq!(parse_reference(&r.to_lowercase()), Some(r));
        }
        for bad in [
            "", "ABCDE", "ABCDEFG", "ABCDE0", "ABCDEO", "ABCDE1", "ABCDEL",
        ] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
    }
}
