//! The simulated payment provider and the retry schedule. Pure functions, so
//! the rules are unit-tested and the activity only adds sleeping and dice.

use std::time::Duration;

use crate::domain::PaymentCode;

/// Always approved.
pub const CODE_APPROVE: &str = "00000";
/// Declined on every attempt.
pub const CODE_DECLINE: &str = "99999";
/// Outlasts the validation timeout on every attempt.
pub const CODE_HANG: &str = "88888";

/// How the simulated provider treats one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Approve,
    Decline,
    Hang,
}

/// `roll` is uniform in [0, 1); the attempt fails when `roll < failure_rate`.
pub fn behaviour(code: &PaymentCode, failure_rate: f64, roll: f64) -> Behaviour {
    match code.as_str() {
        CODE_APPROVE => Behaviour::Approve,
        CODE_DECLINE => Behaviour::Decline,
        CODE_HANG => Behaviour::Hang,
        _ if roll < failure_rate => Behaviour::Decline,
        _ => Behaviour::Approve,
    }
}

/// Simulated processing time: 100–400 ms, and never more than a quarter of
/// the timeout, so only `88888` ever times out.
pub fn latency(timeout: Duration, roll: f64) -> Duration {
    let wanted = Duration::from_millis(100 + (roll.clamp(0.0, 1.0) * 300.0) as u64);
    wanted.min(timeout / 4)
}

/// Wait after failed attempt `attempt` (1-based): 1 s, ×1.5 each time, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16) as i32;
    Duration::from_secs_f64((1.5f64.powi(exp)).min(5.0))
}

/// Longest a whole payment can take: every attempt times out and every
/// backoff is waited. The holds are extended to cover it.
pub fn window(timeout: Duration, max_attempts: u32) -> Duration {
    let backoffs: Duration = (1..max_attempts).map(backoff).sum();
    timeout * max_attempts + backoffs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> PaymentCode {
        PaymentCode::parse(c).unwrap()
    }

    #[test]
    fn test_codes_are_deterministic() {
        for roll in [0.0, 0.5, 0.99] {
            assert_eq!(behaviour(&code("00000"), 1.0, roll), Behaviour::Approve);
            assert_eq!(behaviour(&code("99999"), 0.0, roll), Behaviour::Decline);
            assert_eq!(behaviour(&code("88888"), 0.0, roll), Behaviour::Hang);
        }
    }

    #[test]
    fn other_codes_fail_at_the_configured_rate() {
        assert_eq!(behaviour(&code("12345"), 0.15, 0.10), Behaviour::Decline);
        assert_eq!(behaviour(&code("12345"), 0.15, 0.20), Behaviour::Approve);
        assert_eq!(behaviour(&code("12345"), 1.0, 0.999), Behaviour::Decline);
        assert_eq!(behaviour(&code("12345"), 0.0, 0.0), Behaviour::Approve);
    }

    #[test]
    fn backoff_grows_by_half_and_caps_at_five_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_millis(1500));
        assert_eq!(backoff(3), Duration::from_millis(2250));
        assert_eq!(backoff(10), Duration::from_secs(5));
    }

    #[test]
    fn latency_stays_below_the_timeout() {
        assert!(latency(Duration::from_secs(10), 0.99) <= Duration::from_millis(400));
        assert_eq!(
            latency(Duration::from_millis(400), 0.99),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn the_payment_window_covers_every_attempt_and_wait() {
        let w = window(Duration::from_secs(10), 3);
        assert_eq!(w, Duration::from_secs(30) + Duration::from_millis(2500));
    }
}
