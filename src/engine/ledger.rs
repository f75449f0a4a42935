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
    /// UID → whether the destination holds it, and what it added to the tally.
    settled: BTreeMap<u32, Beyond>,
    /// What the settled UIDs came to; each UID counts once.
    tally: Tally,
    /// The last UID of the walk (a part of a split folder); none above counts as walked.
    cap: Option<u32>,
}

/// A UID settled ahead of the resume point: whether the destination holds it, and what it
/// added to the tally. A checkpoint leaves it out, as the next run walks it again.
#[derive(Debug, Clone, Copy)]
struct Beyond {
    held: bool,
    added: Tally,
}

/// Counts of one folder in this run, kept by the [`Ledger`] transitions only.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) copied: u64,
    pub(crate) skipped: u64,
    pub(crate) failed: u64,
    pub(crate) bytes: u64,
    /// Skipped because the destination already held them.
    pub(crate) present: u64,
}

impl Tally {
    pub(crate) fn done(&self) -> u64 {
        self.copied + self.skipped + self.failed
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.copied += o.copied;
        self.skipped += o.skipped;
        self.failed += o.failed;
        self.bytes += o.bytes;
        self.present += o.present;
    }
}

impl std::ops::SubAssign for Tally {
    fn sub_assign(&mut self, o: Tally) {
        self.copied -= o.copied;
        self.skipped -= o.skipped;
        self.failed -= o.failed;
        self.bytes -= o.bytes;
        self.present -= o.present;
    }
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
            tally: Tally::default(),
            cap: None,
        }
    }

    /// A part of a split folder (see `parts`), walking `start_uid..=last_uid`: its earlier
    /// failures to try again may also lie above its range, in ranges an earlier run settled
    /// (never in a range walked); passing them does not move its walk.
    pub(crate) fn for_part(start_uid: u32, last_uid: u32, retry: &[u32]) -> Ledger {
        Ledger {
            retry: retry.iter().copied().collect(),
            cap: Some(last_uid),
            ..Ledger::new(start_uid, &[])
        }
    }

    /// APPENDs for these UIDs were written. One settled already stays settled (it is never
    /// sent again; were it, reopening it would pull the walk back below UIDs the ledger no
    /// longer remembers, and they would be counted twice).
    pub(crate) fn sent(&mut self, uids: impl IntoIterator<Item = u32>) {
        for uid in uids {
            if self.open.contains(&uid)
                || self.retry.contains(&uid)
                || (uid > self.walked && !self.settled.contains_key(&uid))
            {
                self.open.insert(uid);
            }
        }
    }

    /// The destination confirmed storing it. False (and nothing counted) when it was
    /// settled already.
    pub(crate) fn stored(&mut self, uid: u32, bytes: u64) -> bool {
        let added = Tally {
            copied: 1,
            bytes,
            ..Tally::default()
        };
        self.settle(uid, true, added)
    }

    /// Skipped: already on the destination (`present`), or over the size limit.
    pub(crate) fn skipped(&mut self, uid: u32, present: bool) -> bool {
        let added = Tally {
            skipped: 1,
            present: u64::from(present),
            ..Tally::default()
        };
        self.settle(uid, present, added)
    }

    /// Recorded as failed, with a reason the caller keeps.
    pub(crate) fn failed(&mut self, uid: u32) -> bool {
        let added = Tally {
            failed: 1,
            ..Tally::default()
        };
        self.settle(uid, false, added)
    }

    /// This run's counts, each settled UID once (what events report).
    pub(crate) fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The counts a checkpoint may record: without UIDs settled ahead of the resume point,
    /// which the next run walks again (and would count a second time).
    pub(crate) fn recorded(&self) -> Tally {
        let mut t = self.tally;
        for (_, b) in self.settled.range(self.next_uid()..) {
            t -= b.added;
        }
        t
    }

    /// Settled ahead of the resume point: left out of a checkpoint (see [`Ledger::recorded`]).
    pub(crate) fn ahead(&self, uid: u32) -> bool {
        uid >= self.next_uid() && self.settled.contains_key(&uid)
    }

    /// Settle `uid`, adding `added` to the tally; true when it was not settled before.
    fn settle(&mut self, uid: u32, held: bool, added: Tally) -> bool {
        let new = self.open.remove(&uid)
            | self.retry.remove(&uid)
            | (uid > self.walked && !self.settled.contains_key(&uid));
        if new {
            self.tally += added;
            // A part's retries above its range are never walked: nothing to remember, and
            // they would stay ahead of its resume point (and out of every checkpoint).
            if uid >= self.floor && self.cap.is_none_or(|c| uid <= c) {
                self.settled.insert(uid, Beyond { held, added });
            }
        }
        new
    }

    /// Settled in an earlier attempt of this run: `Some(held)`.
    pub(crate) fn settled(&self, uid: u32) -> Option<bool> {
        self.settled.get(&uid).map(|b| b.held)
    }

    /// The walk went past every UID up to `uid`: those not open are settled (filtered out,
    /// gone from the source, present, skipped).
    pub(crate) fn passed(&mut self, uid: u32) {
        if self.cap.is_some_and(|c| uid > c) {
            return;
        }
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
    /// from [`Ledger::next_uid`]. Returns what was open: the destination may hold some of
    /// it, so it must be looked for first.
    pub(crate) fn rewind(&mut self) -> Vec<u32> {
        let next = self.next_uid();
        self.walked = next.saturating_sub(1);
        let open = std::mem::take(&mut self.open);
        self.settled = self.settled.split_off(&next);
        open.into_iter().collect()
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
        assert!(l.stored(10, 5));
        assert!(l.stored(12, 5));
        assert!(!l.stored(12, 5), "counted once");
        assert_eq!(l.next_uid(), 11, "11 waits for its resend");
        l.sent([13]);
        l.passed(20);
        assert_eq!(l.next_uid(), 11);
        assert!(l.failed(11));
        assert_eq!(l.next_uid(), 13);
        assert!(l.stored(13, 5));
        assert_eq!(l.next_uid(), 21);
        assert_eq!(l.retries_left().collect::<Vec<_>>(), vec![3, 5]);
        let t = l.tally();
        assert_eq!((t.copied, t.failed, t.bytes, t.done()), (3, 1, 15, 4));
    }

    #[test]
    fn a_part_retries_failures_above_its_range_without_moving_its_walk() {
        // Part 11..=20; UIDs 3 (below the folder's watermark) and 35 (in a range an
        // earlier run's part settled) failed last time.
        let mut l = Ledger::for_part(11, 20, &[3, 35]);
        assert_eq!(l.retries_left().collect::<Vec<_>>(), vec![3, 35]);
        l.sent([3, 35]);
        l.passed(35);
        assert_eq!(
            l.next_uid(),
            11,
            "the retries' window does not walk the range"
        );
        assert_eq!(
            l.next_uid(),
            11,
            "in flight above the range: the walk stays"
        );
        assert!(l.stored(35, 5));
        assert!(l.failed(3));
        assert_eq!(l.retries_left().count(), 0);
        l.sent([11]);
        l.passed(20);
        assert_eq!(l.next_uid(), 11);
        assert!(l.stored(11, 5));
        assert_eq!(l.next_uid(), 21);
        let t = l.tally();
        assert_eq!((t.copied, t.failed), (2, 1));
        // The retries above the range are recorded, though the walk never passes them.
        assert!(!l.ahead(35));
        let r = l.recorded();
        assert_eq!((r.copied, r.failed), (2, 1));
    }

    #[test]
    fn a_checkpoint_records_nothing_settled_ahead_of_the_resume_point() {
        let mut l = Ledger::new(1, &[]);
        l.sent([1, 2, 3]);
        l.passed(3);
        assert!(l.stored(2, 10));
        assert!(l.skipped(3, true));
        assert_eq!(l.next_uid(), 1, "1 is still open");
        assert!(l.ahead(2) && l.ahead(3) && !l.ahead(1));
        let r = l.recorded();
        assert_eq!((r.copied, r.skipped, r.bytes, r.present), (0, 0, 0, 0));
        assert_eq!(l.tally().done(), 2, "the run's own counts keep them");
        assert!(l.stored(1, 7));
        assert_eq!(l.next_uid(), 4);
        assert!(!l.ahead(2));
        let r = l.recorded();
        assert_eq!((r.copied, r.skipped, r.bytes, r.present), (2, 1, 17, 1));
    }

    #[test]
    fn retried_failures_do_not_pull_the_walk_back() {
        let mut l = Ledger::new(10, &[3]);
        l.sent([3]);
        assert_eq!(l.next_uid(), 10);
        assert_eq!(l.rewind(), vec![3], "3 may be on the destination");
        assert_eq!(l.retries_left().collect::<Vec<_>>(), vec![3]);
        assert!(l.stored(3, 1));
        assert_eq!(l.retries_left().count(), 0);
        assert!(!l.failed(3), "settled already");
    }

    /// Progress never says more than 100 %: through any order of sends, answers, walks and
    /// rewinds (reconnects), each UID is counted at most once.
    #[test]
    fn each_uid_counts_once_through_any_rewinds() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(n)) as u32
        };
        for _ in 0..200 {
            let mut l = Ledger::new(5, &[2, 3]);
            let mut counted = std::collections::HashSet::new();
            for _ in 0..300 {
                let uid = 1 + next(40);
                let new = match next(6) {
                    0 => {
                        l.sent([uid]);
                        false
                    }
                    1 => l.stored(uid, 1),
                    2 => l.failed(uid),
                    3 => l.skipped(uid, next(2) == 0),
                    4 => {
                        l.passed(uid);
                        false
                    }
                    _ => {
                        l.rewind();
                        false
                    }
                };
                if new {
                    assert!(counted.insert(uid), "{uid} counted twice");
                }
            }
            assert_eq!(l.tally().done(), counted.len() as u64);
        }
    }

    #[test]
    fn rewind_starts_at_the_first_open_uid() {
        let mut l = Ledger::new(1, &[]);
        l.sent([1, 2, 3]);
        assert!(l.stored(1, 1));
        assert!(l.failed(3));
        l.passed(3);
        assert_eq!(l.rewind(), vec![2]);
        assert_eq!(l.next_uid(), 2);
        assert_eq!(l.settled(1), None, "below the resume point");
        assert_eq!(l.settled(3), Some(false), "not handled twice");
        assert!(!l.failed(3), "nor counted twice");
        assert!(l.skipped(2, true), "2 is walked again");
        assert_eq!(l.tally().done(), 3);
        assert!(l.rewind().is_empty());
        assert_eq!(l.next_uid(), 2);
    }
}
