//! Which source UIDs of a folder are settled. A UID is settled only once the destination
//! confirmed it (stored, or found by the index), or it was skipped or recorded as failed
//! with a reason. Anything sent whose answer was not accounted for stays open, so an
//! interruption anywhere leaves it for the next attempt or run (after indexing the
//! destination, so nothing is doubled).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Where this run's walk began.
    floor: u32,
    /// Every UID up to this one was walked past: settled unless open.
    walked: u32,
    /// Handed to the destination, answer not yet accounted for (in flight, or refused and
    /// waiting for its resend).
    open: BTreeSet<u32>,
    /// Failures of earlier runs tried again (below `walked`), not settled yet.
    retry: BTreeSet<u32>,
    /// Settled beyond the first open UID, so a new attempt does not handle them twice:
    /// UID → whether the destination holds it.
    settled: BTreeMap<u32, bool>,
}

impl Ledger {
    /// A folder continued from `start_uid`, with earlier failures to try again.
    pub(crate) fn new(start_uid: u32, retry: &[u32]) -> Ledger {
        Ledger {
            floor: start_uid,
            walked: start_uid.saturating_sub(1),
            open: BTreeSet::new(),
            retry: retry.iter().copied().filter(|u| *u < start_uid).collect(),
            settled: BTreeMap::new(),
        }
    }

    /// APPENDs for these UIDs were written.
    pub(crate) fn sent(&mut self, uids: impl IntoIterator<Item = u32>) {
        self.open.extend(uids);
    }

    /// Confirmed by the destination (`held`), or skipped or recorded as failed.
    pub(crate) fn settle(&mut self, uid: u32, held: bool) {
        self.open.remove(&uid);
        self.retry.remove(&uid);
        if uid >= self.floor {
            self.settled.insert(uid, held);
        }
    }

    /// Settled in an earlier attempt of this run: `Some(held)`.
    pub(crate) fn settled(&self, uid: u32) -> Option<bool> {
        self.settled.get(&uid).copied()
    }

    /// The walk went past every UID up to `uid`: those not open are settled (filtered out,
    /// gone from the source, present, skipped).
    pub(crate) fn passed(&mut self, uid: u32) {
        self.walked = self.walked.max(uid);
        // Below the resume point nothing is walked again: no need to remember it.
        let next = self.next_uid();
        if self
            .settled
            .first_key_value()
            .is_some_and(|(u, _)| *u < next)
        {
            self.settled = self.settled.split_off(&next);
        }
    }

    /// The first UID of the walk not settled: the next attempt or run starts there.
    pub(crate) fn next_uid(&self) -> u32 {
        let past = self.walked.saturating_add(1);
        // Retried failures sit below `floor`; they are kept as failures, not as the walk.
        self.open
            .range(self.floor..)
            .next()
            .map_or(past, |u| (*u).min(past))
    }

    /// Earlier failures not settled yet (kept in the state file as failures).
    pub(crate) fn retries_left(&self) -> impl Iterator<Item = u32> + '_ {
        self.retry.iter().copied()
    }

    /// Before a new attempt (after a dropped connection): what was open is walked again
    /// from [`Ledger::next_uid`]. True when the destination may hold some of it, so it must
    /// be indexed first.
    pub(crate) fn rewind(&mut self) -> bool {
        let uncertain = !self.open.is_empty();
        let next = self.next_uid();
        self.walked = next.saturating_sub(1);
        self.open.clear();
        self.settled = self.settled.split_off(&next);
        uncertain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_settled_only_when_accounted_for() {
        let mut l = Ledger::new(10, &[3, 5]);
        assert_eq!(l.next_uid(), 10);
        l.sent([10, 11, 12]);
        l.passed(12);
        assert_eq!(l.next_uid(), 10, "answers unread");
        l.settle(10, true);
        l.settle(12, true);
        assert_eq!(l.next_uid(), 11, "11 waits for its resend");
        l.sent([13]);
        l.passed(20);
        assert_eq!(l.next_uid(), 11);
        l.settle(11, false);
        assert_eq!(l.next_uid(), 13);
        l.settle(13, true);
        assert_eq!(l.next_uid(), 21);
        assert_eq!(l.retries_left().collect::<Vec<_>>(), vec![3, 5]);
    }

    #[test]
    fn retried_failures_do_not_pull_the_walk_back() {
        let mut l = Ledger::new(10, &[3]);
        l.sent([3]);
        assert_eq!(l.next_uid(), 10);
        assert!(l.rewind(), "3 may be on the destination");
        assert_eq!(l.retries_left().collect::<Vec<_>>(), vec![3]);
        l.settle(3, true);
        assert_eq!(l.retries_left().count(), 0);
    }

    #[test]
    fn rewind_starts_at_the_first_open_uid() {
        let mut l = Ledger::new(1, &[]);
        l.sent([1, 2, 3]);
        l.settle(1, true);
        l.settle(3, false);
        l.passed(3);
        assert!(l.rewind());
        assert_eq!(l.next_uid(), 2);
        assert_eq!(l.settled(1), None, "below the resume point");
        assert_eq!(l.settled(3), Some(false), "not handled twice");
        assert!(!l.rewind());
        assert_eq!(l.next_uid(), 2);
    }
}
