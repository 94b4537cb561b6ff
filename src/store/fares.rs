//! A flight's fares as Postgres keeps them: `cabins`, `flights.exit_rows` /
//! `extra_legroom_rows`, `seat_surcharges` and the seat letters of its
//! rows, read into a [`FareTable`] that prices each seat.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use deadpool_postgres::Pool;

use super::StoreError;
use crate::domain::{FlightId, SeatId};
use crate::fares::{Cabin, CabinFare, FareTable, Feature, SeatPrice};
use crate::money::Cents;

/// The fare tables of `flights`, in their order (a flight that does not
/// exist gets an empty table priced at nothing).
pub async fn tables(pool: &Pool, flights: &[FlightId]) -> Result<Vec<FareTable>, StoreError> {
    let conn = pool.get().await?;
    tables_with(&conn, flights).await
}

/// [`tables`] on a connection or transaction of the caller's.
pub async fn tables_with<C: GenericClient>(
    conn: &C,
    flights: &[FlightId],
) -> Result<Vec<FareTable>, StoreError> {
    let mut by_id: HashMap<FlightId, FareTable> = HashMap::new();
    let mut last_rows: HashMap<FlightId, i32> = HashMap::new();
    for row in conn
        .query(
            "SELECT f.id, f.price_cents, f.exit_rows, f.extra_legroom_rows,
                    ARRAY(SELECT DISTINCT s.col::text FROM seats s WHERE s.flight_id = f.id
                          ORDER BY 1) AS letters,
                    (SELECT max(s.row_num) FROM seats s WHERE s.flight_id = f.id) AS last_row
             FROM flights f WHERE f.id = ANY($1)",
            &[&flights],
        )
        .await?
    {
        let letters: Vec<String> = row.get("letters");
        let last_row: Option<i32> = row.get("last_row");
        last_rows.insert(row.get("id"), last_row.unwrap_or(1));
        by_id.insert(
            row.get("id"),
            FareTable {
                base_price: row.get("price_cents"),
                exit_rows: row.get("exit_rows"),
                extra_legroom_rows: row.get("extra_legroom_rows"),
                letters: letters.iter().filter_map(|l| l.chars().next()).collect(),
                ..FareTable::default()
            },
        );
    }
    for row in conn
        .query(
            "SELECT flight_id, code, name, first_row, last_row, price_cents, refundable,
                    cancellation_fee_cents
             FROM cabins WHERE flight_id = ANY($1) ORDER BY flight_id, first_row",
            &[&flights],
        )
        .await?
    {
        let code: &str = row.get("code");
        let code = Cabin::parse(code).ok_or_else(|| StoreError::corrupt("cabin", code))?;
        if let Some(t) = by_id.get_mut(&row.get::<_, FlightId>("flight_id")) {
            t.cabins.push(CabinFare {
                code,
                name: row.get("name"),
                first_row: row.get("first_row"),
                last_row: row.get("last_row"),
                price_cents: row.get("price_cents"),
                refundable: row.get("refundable"),
                cancellation_fee_cents: row.get("cancellation_fee_cents"),
            });
        }
    }
    for row in conn
        .query(
            "SELECT flight_id, feature, amount_cents FROM seat_surcharges
             WHERE flight_id = ANY($1) ORDER BY flight_id, feature",
            &[&flights],
        )
        .await?
    {
        let feature: &str = row.get("feature");
        let feature =
            Feature::parse(feature).ok_or_else(|| StoreError::corrupt("seat feature", feature))?;
        if let Some(t) = by_id.get_mut(&row.get::<_, FlightId>("flight_id")) {
            t.surcharges.push((feature, row.get("amount_cents")));
        }
    }
    // A flight without cabins rows (inserted by hand) is one economy cabin
    // at its own price.
    for (id, t) in by_id.iter_mut() {
        if t.cabins.is_empty() {
            let last_row = last_rows.get(id).copied().unwrap_or(1);
            t.cabins.push(CabinFare::economy(last_row, t.base_price));
        }
    }
    Ok(flights
        .iter()
        .map(|f| by_id.remove(f).unwrap_or_default())
        .collect())
}

/// The flight's fare table.
pub async fn table(pool: &Pool, flight: FlightId) -> Result<FareTable, StoreError> {
    Ok(tables(pool, &[flight]).await?.remove(0))
}

/// What each of `seats` costs on the flight now, with its rules.
pub async fn prices(
    pool: &Pool,
    flight: FlightId,
    seats: &[SeatId],
) -> Result<Vec<SeatPrice>, StoreError> {
    let table = table(pool, flight).await?;
    Ok(seats.iter().map(|s| table.price(s)).collect())
}

/// Replace the flight's cabins, special rows and surcharges (an operator
/// creating a flight), in the caller's transaction.
pub async fn replace<C: GenericClient>(
    conn: &C,
    flight: FlightId,
    cabins: &[CabinFare],
    exit_rows: &[i32],
    extra_legroom_rows: &[i32],
    surcharges: &[(Feature, Cents)],
) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cabins WHERE flight_id = $1", &[&flight])
        .await?;
    conn.execute(
        "DELETE FROM seat_surcharges WHERE flight_id = $1",
        &[&flight],
    )
    .await?;
    for c in cabins {
        conn.execute(
            "INSERT INTO cabins (flight_id, code, name, first_row, last_row, price_cents,
                    refundable, cancellation_fee_cents)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &flight,
                &c.code.as_str(),
                &c.name,
                &c.first_row,
                &c.last_row,
                &c.price_cents,
                &c.refundable,
                &c.cancellation_fee_cents,
            ],
        )
        .await?;
    }
    for (feature, amount) in surcharges {
        conn.execute(
            "INSERT INTO seat_surcharges (flight_id, feature, amount_cents) VALUES ($1, $2, $3)",
            &[&flight, &feature.as_str(), amount],
        )
        .await?;
    }
    conn.execute(
        "UPDATE flights SET exit_rows = $2, extra_legroom_rows = $3 WHERE id = $1",
        &[&flight, &exit_rows, &extra_legroom_rows],
    )
    .await?;
    Ok(())
}

/// A new fare for one cabin: its price and rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FareChange {
    pub cabin: Cabin,
    pub price_cents: Cents,
    pub refundable: Option<bool>,
    pub cancellation_fee_cents: Option<Cents>,
}

/// Set new fares on the flight's cabins (what new holds pay; held and sold
/// seats keep theirs). Returns the cabins of `changes` the flight lacks (and
/// changes nothing then).
pub async fn set_fares<C: GenericClient>(
    conn: &C,
    flight: FlightId,
    changes: &[FareChange],
) -> Result<Vec<Cabin>, StoreError> {
    let have: Vec<String> = conn
        .query("SELECT code FROM cabins WHERE flight_id = $1", &[&flight])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<Cabin> = changes
        .iter()
        .map(|c| c.cabin)
        .filter(|c| !have.iter().any(|h| h == c.as_str()))
        .collect();
    if !missing.is_empty() {
        return Ok(missing);
    }
    for c in changes {
        conn.execute(
            "UPDATE cabins SET price_cents = $3,
                    refundable = COALESCE($4, refundable),
                    cancellation_fee_cents = COALESCE($5, cancellation_fee_cents)
             WHERE flight_id = $1 AND code = $2",
            &[
                &flight,
                &c.cabin.as_str(),
                &c.price_cents,
                &c.refundable,
                &c.cancellation_fee_cents,
            ],
        )
        .await?;
    }
    Ok(Vec::new())
}
