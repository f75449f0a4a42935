//! `--retries`: how many failures in a row a folder may have, and how long to wait after each.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first backoff; it doubles per failure in a row.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// No backoff is longer than this.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Counts consecutive failures with no progress in between: a link that drops every few
/// megabytes but carries messages between drops never spends the budget; one that carries
/// nothing does. Progress is a mark that only grows when messages are settled for good (the
/// folder's next unsettled source UID), not a count that a re-run of the same window repeats.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    max: u32,
    /// Failures since the last progress.
    used: u32,
    /// The progress mark when the budget was last reset.
    settled: u64,
}

impl RetryBudget {
    /// A budget of `max` failures in a row, starting at progress mark `settled`.
    pub(crate) fn new(max: u32, settled: u64) -> RetryBudget {
        RetryBudget {
            max,
            used: 0,
            settled,
        }
    }

    /// A recoverable failure at progress mark `settled`: whether to try again. Progress since
    /// the last failure gives the whole budget back first.
    pub(crate) fn allows(&mut self, settled: u64) -> bool {
        if settled > self.settled {
            self.settled = settled;
            self.used = 0;
        }
        if self.used >= self.max {
            return false;
        }
        self.used += 1;
        true
    }

    /// Failures in a row so far (1 after the first): the backoff's step.
    pub(crate) fn attempt(&self) -> u32 {
        self.used
    }
}

/// How long to wait before attempt `attempt` (1-based): 0.5 s doubling per attempt, capped at
/// 30 s, of which a random half is waited (jitter, so workers cut at once do not reconnect in
/// step).
pub(crate) fn backoff(attempt: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let full = BACKOFF_BASE
        .saturating_mul(1 << (attempt - 1).min(10))
        .min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(jitter())
}

/// A number in [0, 1) from the standard library's randomly keyed hasher.
fn jitter() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_gives_the_budget_back() {
        let mut b = RetryBudget::new(2, 10);
        assert!(b.allows(10));
        assert!(b.allows(10));
        assert_eq!(b.attempt(), 2);
        assert!(
            !b.allows(10),
            "two failures in a row without progress spend it"
        );
        // A message settled since: the count starts again.
        assert!(b.allows(11));
        assert_eq!(b.attempt(), 1);
        assert!(b.allows(11));
        assert!(!b.allows(11));
        assert!(!RetryBudget::new(0, 0).allows(5));
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        for _ in 0..50 {
            let b1 = backoff(1);
            assert!(b1 >= Duration::from_millis(250) && b1 <= Duration::from_millis(500));
            let b3 = backoff(3);
            assert!(b3 >= Duration::from_secs(1) && b3 <= Duration::from_secs(2));
            let big = backoff(40);
            assert!(big >= BACKOFF_CAP / 2 && big <= BACKOFF_CAP);
        }
    }
}
