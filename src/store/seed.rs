//! Demo data: four flights and their seats. Re-running changes nothing.
//!
//! Each flight has a business cabin in rows 1–3 at three times its economy
//! fare (`price_cents`, economy from row 4), one exit row with extra legroom
//! (`rows / 2 + 4`, $25 + $15 on top of the fare), all fares refundable
//! without a fee: the layout migration V16 gives the seed's flights that
//! were there before it.

use crate::money::Cents;
use deadpool_postgres::Pool;

use super::StoreError;

struct SeedFlight {
    n: u8,
    number: &'static str,
    origin: &'static str,
    destination: &'static str,
    rows: i32,
    price_cents: Cents,
    departs_in_days: i32,
    duration_hours: i32,
}

const FLIGHTS: [SeedFlight; 4] = [
    SeedFlight {
        n: 1,
        number: "FL101",
        origin: "NYC",
        destination: "LAX",
        rows: 20,
        price_cents: Cents::new(35_000),
        departs_in_days: 2,
        duration_hours: 6,
    },
    SeedFlight {
        n: 2,
        number: "FL102",
        origin: "LAX",
        destination: "NYC",
        rows: 20,
        price_cents: Cents::new(32_000),
        departs_in_days: 3,
        duration_hours: 5,
    },
    SeedFlight {
        n: 3,
        number: "FL201",
        origin: "SFO",
        destination: "CHI",
        rows: 15,
        price_cents: Cents::new(28_000),
        departs_in_days: 1,
        duration_hours: 4,
    },
    SeedFlight {
        n: 4,
        number: "FL202",
        origin: "CHI",
        destination: "SFO",
        rows: 15,
        price_cents: Cents::new(27_500),
        departs_in_days: 4,
        duration_hours: 4,
    },
];

/// What one `seed` run inserted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub flights: u64,
    pub seats: u64,
}

/// Fixed id of seed flight `n` (1–4).
pub fn flight_id(n: u8) -> uuid::Uuid {
    uuid::Uuid::parse_str(&format!("550e8400-e29b-41d4-a716-44665544000{n}"))
        .expect("seed ids are valid")
}

/// Insert the demo flights and seats that are missing.
pub async fn run(pool: &Pool) -> Result<SeedReport, StoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let mut report = SeedReport::default();
    // Seeding a database migrated only part of the way (a test of an older
    // schema) leaves the fares to migration V16's backfill.
    let has_cabins: bool = tx
        .query_one("SELECT to_regclass('cabins') IS NOT NULL", &[])
        .await?
        .get(0);
    for f in &FLIGHTS {
        let id = flight_id(f.n);
        let seats = f.rows * 6;
        let inserted = tx
            .execute(
                "INSERT INTO flights (id, flight_number, origin, destination, departure_time,
                        arrival_time, total_seats, available_seats, price_cents)
                 VALUES ($1, $2, $3, $4, NOW() + make_interval(days => $5),
                        NOW() + make_interval(days => $5, hours => $6), $7, $7, $8)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &id,
                    &f.number,
                    &f.origin,
                    &f.destination,
                    &f.departs_in_days,
                    &f.duration_hours,
                    &seats,
                    &f.price_cents,
                ],
            )
            .await?;
        report.flights += inserted;
        if inserted == 1 && has_cabins {
            seed_fares(&tx, id, f).await?;
        }
        report.seats += tx
            .execute(
                "INSERT INTO seats (id, flight_id, row_num, col)
                 SELECT r || c, $1, r, c
                 FROM generate_series(1, $2::int) AS r,
                      unnest(ARRAY['A','B','C','D','E','F']) AS c
                 ON CONFLICT (flight_id, id) DO NOTHING",
                &[&id, &f.rows],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// The seeded flight's cabins, exit row and surcharges.
async fn seed_fares(
    tx: &deadpool_postgres::Transaction<'_>,
    id: uuid::Uuid,
    f: &SeedFlight,
) -> Result<(), StoreError> {
    let business = Cents::new(f.price_cents.get() * 3);
    tx.execute(
        "INSERT INTO cabins (flight_id, code, name, first_row, last_row, price_cents,
                refundable, cancellation_fee_cents)
         VALUES ($1, 'BUSINESS', 'Business', 1, 3, $2, TRUE, 0),
                ($1, 'ECONOMY', 'Economy', 4, $3, $4, TRUE, 0)
         ON CONFLICT DO NOTHING",
        &[&id, &business, &f.rows, &f.price_cents],
    )
    .await?;
    let exit_row = f.rows / 2 + 4;
    tx.execute(
        "UPDATE flights SET exit_rows = ARRAY[$2::int], extra_legroom_rows = ARRAY[$2::int]
         WHERE id = $1",
        &[&id, &exit_row],
    )
    .await?;
    tx.execute(
        "INSERT INTO seat_surcharges (flight_id, feature, amount_cents)
         VALUES ($1, 'EXIT_ROW', 2500), ($1, 'EXTRA_LEGROOM', 1500)
         ON CONFLICT DO NOTHING",
        &[&id],
    )
    .await?;
    Ok(())
}
