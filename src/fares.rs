//! Cabins, seat features and fares (issue 26).
//!
//! A flight has cabins, each a range of rows with a fare and fare rules
//! (`refundable`, `cancellation_fee`). A seat's features come from its seat
//! letter's place in the row (WINDOW, AISLE, MIDDLE) and from the flight's
//! exit and extra-legroom rows; its price is its cabin's fare plus the
//! flight's surcharge for each feature it has (`seat_surcharges`, set per
//! flight). What a held seat costs and the rules that apply to it are fixed
//! when the seat is taken ([`SeatPrice`]) and travel with the order.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::SeatId;
use crate::money::Cents;

/// A cabin class, with Lufthansa's compartment codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Cabin {
    First,
    Business,
    PremiumEconomy,
    Economy,
}

impl Cabin {
    pub const ALL: [Cabin; 4] = [
        Cabin::First,
        Cabin::Business,
        Cabin::PremiumEconomy,
        Cabin::Economy,
    ];

    /// The code the API and the database use.
    pub fn as_str(self) -> &'static str {
        match self {
            Cabin::First => "FIRST",
            Cabin::Business => "BUSINESS",
            Cabin::PremiumEconomy => "PREMIUM_ECONOMY",
            Cabin::Economy => "ECONOMY",
        }
    }

    pub fn parse(code: &str) -> Option<Cabin> {
        Cabin::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The compartment code (a BCBP's cabin letter): F, C, E or M.
    pub fn compartment_code(self) -> char {
        match self {
            Cabin::First => 'F',
            Cabin::Business => 'C',
            Cabin::PremiumEconomy => 'E',
            Cabin::Economy => 'M',
        }
    }

    /// The name a cabin gets when none is given.
    pub fn default_name(self) -> &'static str {
        match self {
            Cabin::First => "First",
            Cabin::Business => "Business",
            Cabin::PremiumEconomy => "Premium Economy",
            Cabin::Economy => "Economy",
        }
    }
}

impl fmt::Display for Cabin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a seat offers (IATA seat characteristics W, A, 9, E, L).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Feature {
    Window,
    Aisle,
    Middle,
    ExitRow,
    ExtraLegroom,
}

impl Feature {
    pub const ALL: [Feature; 5] = [
        Feature::Window,
        Feature::Aisle,
        Feature::Middle,
        Feature::ExitRow,
        Feature::ExtraLegroom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Window => "WINDOW",
            Feature::Aisle => "AISLE",
            Feature::Middle => "MIDDLE",
            Feature::ExitRow => "EXIT_ROW",
            Feature::ExtraLegroom => "EXTRA_LEGROOM",
        }
    }

    pub fn parse(code: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.as_str() == code)
    }
}

/// One cabin of a flight: its rows, fare and fare rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CabinFare {
    pub code: Cabin,
    pub name: String,
    pub first_row: i32,
    pub last_row: i32,
    pub price_cents: Cents,
    pub refundable: bool,
    pub cancellation_fee_cents: Cents,
}

impl CabinFare {
    /// The cabin a flight without cabins rows has: economy over every row at
    /// the flight's price, refundable without a fee.
    pub fn economy(last_row: i32, price: Cents) -> Self {
        CabinFare {
            code: Cabin::Economy,
            name: Cabin::Economy.default_name().into(),
            first_row: 1,
            last_row: last_row.max(1),
            price_cents: price,
            refundable: true,
            cancellation_fee_cents: Cents::ZERO,
        }
    }

    pub fn holds_row(&self, row: i32) -> bool {
        (self.first_row..=self.last_row).contains(&row)
    }
}

/// A seat's price and rules, fixed when it was taken: what the order
/// charges for it and what a cancellation gives back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatPrice {
    pub seat: SeatId,
    pub cabin: Cabin,
    pub price_cents: Cents,
    pub refundable: bool,
    pub cancellation_fee_cents: Cents,
}

impl SeatPrice {
    /// What cancelling this seat gives back: the price less the fee, never
    /// below nothing; `None` when the fare is not refundable.
    pub fn refund(&self) -> Option<Cents> {
        self.refundable.then(|| {
            Cents::new((self.price_cents.get() - self.cancellation_fee_cents.get()).max(0))
        })
    }
}

/// What cancelling seats with these prices gives back: `None` when any of
/// them is not refundable.
pub fn refund_of(prices: &[SeatPrice]) -> Option<Cents> {
    prices.iter().map(SeatPrice::refund).sum()
}

/// The total of seats with these prices.
pub fn total_of(prices: &[SeatPrice]) -> Cents {
    prices.iter().map(|p| p.price_cents).sum()
}

/// WINDOW, AISLE or MIDDLE of `letter` in a row with these letters: one
/// aisle splits the row in the middle (ABC|DEF, AC|DF); the first and last
/// letters are windows, the letters next to the aisle aisle seats. A seat
/// can be both (the lone seat of a side).
pub fn place_in_row(letter: char, letters: &[char]) -> Vec<Feature> {
    let mut sorted: Vec<char> = letters.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let Some(i) = sorted.iter().position(|&c| c == letter) else {
        return Vec::new();
    };
    let n = sorted.len();
    let left = n.div_ceil(2);
    let mut features = Vec::new();
    if i == 0 || i + 1 == n {
        features.push(Feature::Window);
    }
    if n > 1 && (i + 1 == left || i == left) {
        features.push(Feature::Aisle);
    }
    if features.is_empty() {
        features.push(Feature::Middle);
    }
    features
}

/// A flight's fares: cabins, special rows, surcharges and the seat letters
/// of its rows. Prices every seat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FareTable {
    pub cabins: Vec<CabinFare>,
    pub exit_rows: Vec<i32>,
    pub extra_legroom_rows: Vec<i32>,
    pub surcharges: Vec<(Feature, Cents)>,
    pub letters: Vec<char>,
    /// The flight's own price: the fare of a seat outside every cabin.
    pub base_price: Cents,
}

impl FareTable {
    pub fn cabin_of(&self, row: i32) -> Option<&CabinFare> {
        self.cabins.iter().find(|c| c.holds_row(row))
    }

    pub fn features(&self, seat: &SeatId) -> Vec<Feature> {
        let row = i32::from(seat.row());
        let mut features = place_in_row(seat.column(), &self.letters);
        if self.exit_rows.contains(&row) {
            features.push(Feature::ExitRow);
        }
        if self.extra_legroom_rows.contains(&row) {
            features.push(Feature::ExtraLegroom);
        }
        features
    }

    pub fn surcharge(&self, feature: Feature) -> Cents {
        self.surcharges
            .iter()
            .find(|(f, _)| *f == feature)
            .map_or(Cents::ZERO, |(_, c)| *c)
    }

    /// The seat's price and rules now.
    pub fn price(&self, seat: &SeatId) -> SeatPrice {
        let row = i32::from(seat.row());
        let fallback;
        let cabin = match self.cabin_of(row) {
            Some(c) => c,
            None => {
                fallback = CabinFare::economy(row, self.base_price);
                &fallback
            }
        };
        let extra: Cents = self
            .features(seat)
            .into_iter()
            .map(|f| self.surcharge(f))
            .sum();
        SeatPrice {
            seat: seat.clone(),
            cabin: cabin.code,
            price_cents: cabin.price_cents + extra,
            refundable: cabin.refundable,
            cancellation_fee_cents: cabin.cancellation_fee_cents,
        }
    }

    /// The lowest price of any seat of the flight (`fromPriceCents`).
    pub fn from_price(&self) -> Cents {
        let cheapest_extra = |cabin: &CabinFare| {
            // The cheapest seat of a cabin: the cheapest place in a row, in
            // a row that is neither exit nor extra legroom if there is one.
            let place = self
                .letters
                .iter()
                .map(|&l| {
                    place_in_row(l, &self.letters)
                        .into_iter()
                        .map(|f| self.surcharge(f))
                        .sum::<Cents>()
                })
                .min()
                .unwrap_or(Cents::ZERO);
            let plain_row = (cabin.first_row..=cabin.last_row)
                .any(|r| !self.exit_rows.contains(&r) && !self.extra_legroom_rows.contains(&r));
            let row = if plain_row {
                Cents::ZERO
            } else {
                self.surcharge(Feature::ExitRow) + self.surcharge(Feature::ExtraLegroom)
            };
            cabin.price_cents + place + row
        };
        self.cabins
            .iter()
            .map(cheapest_extra)
            .min()
            .unwrap_or(self.base_price)
    }
}

/// Why a set of cabins cannot be a flight's.
pub fn validate_cabins(cabins: &[CabinFare], rows: i32) -> Result<(), String> {
    if cabins.is_empty() {
        return Err("cabins: give at least one cabin".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in cabins {
        if !seen.insert(c.code) {
            return Err(format!("cabins: {} appears twice", c.code));
        }
        if c.name.trim().is_empty() || c.name.chars().count() > 40 {
            return Err(format!(
                "cabins: {} needs a name of 1 to 40 characters",
                c.code
            ));
        }
        if c.first_row < 1 || c.last_row < c.first_row {
            return Err(format!(
                "cabins: {} rows {}–{} are not a range from row 1",
                c.code, c.first_row, c.last_row
            ));
        }
        if c.last_row > rows {
            return Err(format!(
                "cabins: {} ends at row {} but the flight has {rows} rows",
                c.code, c.last_row
            ));
        }
        if c.price_cents.get() < 0 {
            return Err(format!("cabins: {} priceCents must be 0 or more", c.code));
        }
        if c.cancellation_fee_cents.get() < 0 {
            return Err(format!(
                "cabins: {} cancellationFeeCents must be 0 or more",
                c.code
            ));
        }
    }
    let mut sorted: Vec<&CabinFare> = cabins.iter().collect();
    sorted.sort_by_key(|c| c.first_row);
    let mut next = 1;
    for c in sorted {
        if c.first_row < next {
            return Err(format!(
                "cabins: {} rows {}–{} overlap another cabin",
                c.code, c.first_row, c.last_row
            ));
        }
        if c.first_row > next {
            return Err(format!(
                "cabins: rows {next}–{} are in no cabin",
                c.first_row - 1
            ));
        }
        next = c.last_row + 1;
    }
    if next <= rows {
        return Err(format!("cabins: rows {next}–{rows} are in no cabin"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(s: &str) -> SeatId {
        SeatId::parse(s).unwrap()
    }

    fn cabin(code: Cabin, first: i32, last: i32, price: i64) -> CabinFare {
        CabinFare {
            code,
            name: code.default_name().into(),
            first_row: first,
            last_row: last,
            price_cents: Cents::new(price),
            refundable: true,
            cancellation_fee_cents: Cents::ZERO,
        }
    }

    #[test]
    fn compartment_codes_are_lufthansas() {
        let codes: String = Cabin::ALL.iter().map(|c| c.compartment_code()).collect();
        assert_eq!(codes, "FCEM");
        for c in Cabin::ALL {
            assert_eq!(Cabin::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn places_in_a_row_of_six_and_of_four() {
        let six = ['A', 'B', 'C', 'D', 'E', 'F'];
        let got: Vec<Vec<Feature>> = six.iter().map(|&l| place_in_row(l, &six)).collect();
        use Feature::*;
        assert_eq!(
            got,
            [
                vec![Window],
                vec![Middle],
                vec![Aisle],
                vec![Aisle],
                vec![Middle],
                vec![Window]
            ]
        );
        let four = ['A', 'C', 'D', 'F'];
        let got: Vec<Vec<Feature>> = four.iter().map(|&l| place_in_row(l, &four)).collect();
        assert_eq!(got, [vec![Window], vec![Aisle], vec![Aisle], vec![Window]]);
    }

    #[test]
    fn a_seat_costs_its_cabin_fare_plus_its_surcharges() {
        let table = FareTable {
            cabins: vec![
                cabin(Cabin::Business, 1, 3, 90_000),
                cabin(Cabin::Economy, 4, 20, 30_000),
            ],
            exit_rows: vec![14],
            extra_legroom_rows: vec![14],
            surcharges: vec![
                (Feature::ExitRow, Cents::new(2_500)),
                (Feature::ExtraLegroom, Cents::new(1_500)),
                (Feature::Window, Cents::new(500)),
            ],
            letters: vec!['A', 'B', 'C', 'D', 'E', 'F'],
            base_price: Cents::new(30_000),
        };
        assert_eq!(table.price(&seat("2B")).price_cents, Cents::new(90_000));
        assert_eq!(table.price(&seat("2B")).cabin, Cabin::Business);
        assert_eq!(table.price(&seat("5A")).price_cents, Cents::new(30_500));
        assert_eq!(table.price(&seat("14C")).price_cents, Cents::new(34_000));
        assert_eq!(
            table.features(&seat("14A")),
            [Feature::Window, Feature::ExitRow, Feature::ExtraLegroom]
        );
        // Outside every cabin: economy at the flight's price.
        assert_eq!(table.price(&seat("30B")).price_cents, Cents::new(30_000));
        assert_eq!(table.from_price(), Cents::new(30_000));
    }

    #[test]
    fn refunds_follow_the_rules_fixed_with_the_seat() {
        let mut p = SeatPrice {
            seat: seat("1A"),
            cabin: Cabin::Business,
            price_cents: Cents::new(10_000),
            refundable: true,
            cancellation_fee_cents: Cents::new(2_500),
        };
        assert_eq!(p.refund(), Some(Cents::new(7_500)));
        let mut q = p.clone();
        q.cancellation_fee_cents = Cents::new(20_000);
        assert_eq!(q.refund(), Some(Cents::ZERO));
        assert_eq!(refund_of(&[p.clone(), q.clone()]), Some(Cents::new(7_500)));
        p.refundable = false;
        assert_eq!(refund_of(&[p, q]), None);
    }

    #[test]
    fn cabins_must_cover_the_rows_without_overlap() {
        let ok = [
            cabin(Cabin::Business, 1, 3, 1),
            cabin(Cabin::Economy, 4, 20, 1),
        ];
        assert_eq!(validate_cabins(&ok, 20), Ok(()));
        let gap = [
            cabin(Cabin::Business, 1, 3, 1),
            cabin(Cabin::Economy, 5, 20, 1),
        ];
        assert!(validate_cabins(&gap, 20).unwrap_err().contains("rows 4–4"));
        let overlap = [
            cabin(Cabin::Business, 1, 4, 1),
            cabin(Cabin::Economy, 4, 20, 1),
        ];
        assert!(
            validate_cabins(&overlap, 20)
                .unwrap_err()
                .contains("overlap")
        );
        let short = [cabin(Cabin::Economy, 1, 10, 1)];
        assert!(
            validate_cabins(&short, 20)
                .unwrap_err()
                .contains("rows 11–20")
        );
        let long = [cabin(Cabin::Economy, 1, 21, 1)];
        assert!(validate_cabins(&long, 20).unwrap_err().contains("20 rows"));
        let twice = [
            cabin(Cabin::Economy, 1, 10, 1),
            cabin(Cabin::Economy, 11, 20, 1),
        ];
        assert!(validate_cabins(&twice, 20).unwrap_err().contains("twice"));
        let negative = [cabin(Cabin::Economy, 1, 20, -1)];
        assert!(
            validate_cabins(&negative, 20)
                .unwrap_err()
                .contains("priceCents")
        );
    }
}
