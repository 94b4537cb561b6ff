//! The IATA Bar Coded Boarding Pass (Resolution 792), format M, one leg,
//! mandatory items only: the 60 characters a gate reader decodes.
//!
//! ```text
//! M 1 DESMARAIS/LUC        E ABC123  YUL FRA AC  0834  326 J 001A 0025  1 00
//! │ │ name (20)            │ PNR (7)  from to  carrier│    │   │ seat  seq  │ │
//! │ legs                   e-ticket          (3) flight(5) │   compartment  │ variable size (hex)
//! format                                                day of year  passenger status
//! ```
//!
//! [`encode`] writes one from a [`Leg`]; [`parse`] reads one back, field by
//! field (the tests use it, and it refuses anything that is not exactly
//! this layout). Names are folded to ASCII here only ([`bcbp_name`]): the
//! booking keeps them as given.

use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::domain::SeatId;

/// The length of a one-leg pass without conditional items.
pub const LEN: usize = 60;

/// Passenger status `1`: ticket issued, passenger checked in.
pub const CHECKED_IN: char = '1';

/// What one boarding pass says.
#[derive(Clone, PartialEq, Eq)]
pub struct Leg<'a> {
    pub family_name: &'a str,
    pub given_name: &'a str,
    /// The booking reference (PNR), at most 7 characters.
    pub reference: &'a str,
    pub origin: &'a str,
    pub destination: &'a str,
    /// The flight number as sold (`FL101`): leading letters are the
    /// carrier, then 1 to 4 digits and an optional suffix letter.
    pub flight_number: &'a str,
    /// The flight's date (its departure, UTC).
    pub date: NaiveDate,
    /// The cabin's compartment code (F, C, E, M).
    pub compartment: char,
    pub seat: &'a SeatId,
    /// The boarding sequence number, 1 to 9999.
    pub sequence: u32,
}

/// Why a pass cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("flight number {0:?} is not a carrier's letters, 1 to 4 digits and an optional letter")]
    FlightNumber(String),
    #[error("{0} is not a 3-letter airport code")]
    Airport(String),
    #[error("reference {0:?} is not 1 to 7 letters and digits")]
    Reference(String),
    #[error("sequence {0} is not 1 to 9999")]
    Sequence(u32),
    #[error("compartment {0:?} is not a capital letter")]
    Compartment(char),
}

/// The name field: `FAMILY/GIVEN`, folded to ASCII capitals (accents
/// dropped, `ß` → `SS`, `Ø` → `O`), letters, spaces, hyphens and
/// apostrophes kept, padded or cut to 20.
pub fn bcbp_name(family_name: &str, given_name: &str) -> String {
    let fold = |name: &str| -> String {
        let plain = deunicode::deunicode(name).to_ascii_uppercase();
        let kept: String = plain
            .chars()
            .filter(|c| c.is_ascii_uppercase() || matches!(c, ' ' | '-' | '\''))
            .collect();
        kept.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    fixed(&format!("{}/{}", fold(family_name), fold(given_name)), 20)
}

/// `text` left-aligned in `width` characters: padded with spaces or cut.
fn fixed(text: &str, width: usize) -> String {
    format!("{text:<width$.width$}")
}

/// The carrier (3, padded) and flight number (4 digits and a suffix or a
/// space) of a flight number as sold.
pub fn carrier_and_number(flight_number: &str) -> Result<(String, String), EncodeError> {
    let bad = || EncodeError::FlightNumber(flight_number.to_string());
    let letters = flight_number
        .chars()
        .take_while(char::is_ascii_uppercase)
        .count();
    let rest = &flight_number[letters..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let suffix = &rest[digits..];
    let suffix_ok =
        suffix.is_empty() || (suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_uppercase()));
    if !(1..=3).contains(&letters) || !(1..=4).contains(&digits) || !suffix_ok {
        return Err(bad());
    }
    let number: u32 = rest[..digits].parse().map_err(|_| bad())?;
    let suffix = if suffix.is_empty() { " " } else { suffix };
    Ok((
        fixed(&flight_number[..letters], 3),
        format!("{number:04}{suffix}"),
    ))
}

/// The boarding pass of `leg`: exactly [`LEN`] characters.
pub fn encode(leg: &Leg<'_>) -> Result<String, EncodeError> {
    let (carrier, number) = carrier_and_number(leg.flight_number)?;
    for airport in [leg.origin, leg.destination] {
        if airport.len() != 3 || !airport.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EncodeError::Airport(airport.to_string()));
        }
    }
    let reference_ok = (1..=7).contains(&leg.reference.len())
        && leg.reference.bytes().all(|b| b.is_ascii_alphanumeric());
    if !reference_ok {
        return Err(EncodeError::Reference(leg.reference.to_string()));
    }
    if !(1..=9999).contains(&leg.sequence) {
        return Err(EncodeError::Sequence(leg.sequence));
    }
    if !leg.compartment.is_ascii_uppercase() {
        return Err(EncodeError::Compartment(leg.compartment));
    }
    let seat = format!("{:03}{}", leg.seat.row(), leg.seat.column());
    let pass = format!(
        "M1{name}E{reference}{from}{to}{carrier}{number}{day:03}{compartment}{seat:>4}{sequence:04} {status}00",
        name = bcbp_name(leg.family_name, leg.given_name),
        reference = fixed(leg.reference, 7),
        from = leg.origin,
        to = leg.destination,
        day = leg.date.ordinal(),
        compartment = leg.compartment,
        sequence = leg.sequence,
        status = CHECKED_IN,
    );
    debug_assert_eq!(pass.len(), LEN, "{pass:?}");
    Ok(pass)
}

/// A pass read back, each item as it stands in the string (trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub format: char,
    pub legs: u32,
    /// `FAMILY/GIVEN`.
    pub name: String,
    pub electronic_ticket: char,
    pub reference: String,
    pub origin: String,
    pub destination: String,
    pub carrier: String,
    /// As printed, e.g. `0101`.
    pub flight_number: String,
    pub day_of_year: u32,
    pub compartment: char,
    /// As printed, e.g. `012A`.
    pub seat: String,
    pub sequence: u32,
    pub passenger_status: char,
    /// The variable-size field's length (hex).
    pub variable_size: u32,
}

/// Why a string is not a one-leg M pass of mandatory items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a BCBP M1 pass: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// Read a pass [`encode`] wrote (any one-leg M pass of mandatory items
/// only), checking each item's form.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let err = |what: &str| ParseError(what.to_string());
    if text.len() != LEN || !text.is_ascii() {
        return Err(err(&format!("{} characters, not {LEN} ASCII", text.len())));
    }
    let at = |from: usize, len: usize| &text[from..from + len];
    let one = |from: usize| text.as_bytes()[from] as char;
    let number = |from: usize, len: usize, what: &str| -> Result<u32, ParseError> {
        let digits = at(from, len).trim_end();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(what));
        }
        digits.parse().map_err(|_| err(what))
    };
    let parsed = Parsed {
        format: one(0),
        legs: number(1, 1, "number of legs")?,
        name: at(2, 20).trim_end().to_string(),
        electronic_ticket: one(22),
        reference: at(23, 7).trim_end().to_string(),
        origin: at(30, 3).to_string(),
        destination: at(33, 3).to_string(),
        carrier: at(36, 3).trim_end().to_string(),
        flight_number: at(39, 5).trim_end().to_string(),
        day_of_year: number(44, 3, "date of flight")?,
        compartment: one(47),
        seat: at(48, 4).to_string(),
        sequence: number(52, 5, "check-in sequence number")?,
        passenger_status: one(57),
        variable_size: u32::from_str_radix(at(58, 2), 16).map_err(|_| err("field size"))?,
    };
    if parsed.format != 'M' {
        return Err(err("format code is not M"));
    }
    if !parsed.name.contains('/') {
        return Err(err("the name has no /"));
    }
    if !(1..=366).contains(&parsed.day_of_year) {
        return Err(err("date of flight is not a day of the year"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(text: &str) -> SeatId {
        SeatId::parse(text).unwrap()
    }

    #[test]
    fn the_resolutions_example_is_written_character_for_character() {
        let seat = seat("1A");
        let leg = Leg {
            family_name: "Desmarais",
            given_name: "Luc",
            reference: "ABC123",
            origin: "YUL",
            destination: "FRA",
            flight_number: "AC834",
            date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            compartment: 'J',
            seat: &seat,
            sequence: 25,
        };
        let pass = encode(&leg).unwrap();
        assert_eq!(
            pass,
            "M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100"
        );
        let back = parse(&pass).unwrap();
        assert_eq!(back.name, "DESMARAIS/LUC");
        assert_eq!(
            (back.carrier.as_str(), back.flight_number.as_str()),
            ("AC", "0834")
        );
        assert_eq!((back.day_of_year, back.sequence), (326, 25));
        assert_eq!((back.passenger_status, back.variable_size), ('1', 0));
    }

    #[test]
    fn names_are_folded_to_ascii_capitals_and_cut_to_twenty() {
        assert_eq!(bcbp_name("Ðorđević", "Zoë"), "DORDEVIC/ZOE        ");
        assert_eq!(
            bcbp_name("O'Brien-Smith", "Ana María"),
            "O'BRIEN-SMITH/ANA MA"
        );
        assert_eq!(bcbp_name("Straße", "Søren"), "STRASSE/SOREN       ");
        assert_eq!(bcbp_name("Lovelace", "Ada").len(), 20);
    }

    #[test]
    fn flight_numbers_become_a_carrier_and_four_digits() {
        for (sold, carrier, number) in [
            ("FL101", "FL ", "0101 "),
            ("LH1", "LH ", "0001 "),
            ("ABC1234", "ABC", "1234 "),
            ("FL12A", "FL ", "0012A"),
        ] {
            assert_eq!(
                carrier_and_number(sold).unwrap(),
                (carrier.to_string(), number.to_string()),
                "{sold}"
            );
        }
        for bad in ["101", "FL", "FL12345", "ABCD12", "FL1AB", "FL1a"] {
            assert!(carrier_and_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_does_not_fit_is_refused_not_cut() {
        let seat = seat("12C");
        let good = Leg {
            family_name: "Lovelace",
            given_name: "Ada",
            reference: "K7PQ2X",
            origin: "NYC",
            destination: "LAX",
            flight_number: "FL101",
            date: NaiveDate::from_ymd_opt(2030, 2, 1).unwrap(),
            compartment: 'M',
            seat: &seat,
            sequence: 1,
        };
        let pass = encode(&good).unwrap();
        assert_eq!(
            pass,
            "M1LOVELACE/ADA        EK7PQ2X NYCLAXFL 0101 032M012C0001 100"
        );
        assert_eq!(pass.len(), LEN);
        for bad in [
            Leg {
                sequence: 0,
                ..good.clone()
            },
            Leg {
                sequence: 10_000,
                ..good.clone()
            },
            Leg {
                origin: "NY",
                ..good.clone()
            },
            Leg {
                reference: "K7PQ2X99",
                ..good.clone()
            },
            Leg {
                compartment: 'm',
                ..good.clone()
            },
        ] {
            assert!(encode(&bad).is_err());
        }
    }

    #[test]
    fn parse_refuses_what_is_not_one_leg_of_mandatory_items() {
        assert!(parse("").is_err());
        let good = "M1LOVELACE/ADA        EK7PQ2X NYCLAXFL 0101 032M012C0001 100";
        assert!(parse(good).is_ok());
        assert!(parse(&good.replacen('M', "S", 1)).is_err());
        assert!(parse(&format!("{good} ")).is_err());
        assert!(parse(&good.replace("032", "0X2")).is_err());
    }
}
