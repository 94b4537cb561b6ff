//! Instants as the store and the workflow messages carry them: milliseconds
//! since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// `time` as Unix milliseconds (0 before the epoch). Workflow code passes
/// the workflow's time, never the host's clock.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The host's clock now, as Unix milliseconds (never in workflow code).
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// Unix milliseconds as a timestamp (`None` out of chrono's range).
pub fn to_time(ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms as i64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn milliseconds_go_both_ways() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(unix_ms(t), 1_700_000_000_123);
        assert_eq!(
            to_time(1_700_000_000_123).unwrap().timestamp_millis(),
            1_700_000_000_123
        );
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
