//! A big folder on several connections. Under latency each message costs a round trip on
//! its connection, so a folder holding more than its share of the job is cut into parts of
//! contiguous source UIDs, each appended in UID order by whichever worker takes it.
//!
//! [`plan`] finds the parts; [`Folder`] is what they share: one `folder_started`, one
//! `folder_finished` (from the last part to end), counts summed, and one state record whose
//! `last_uid` is the contiguous watermark (every UID up to it settled) with the parts'
//! progress beyond it in `parts`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::ledger::Tally;
use crate::event::{FailureReport, Side};

/// No part is smaller than this (unless the folder is): each part costs a SELECT, maybe an
/// index of the destination folder, and a connection's worth of scheduling.
pub(crate) const MIN_PART: usize = 150;

/// The size of a part: a third of a worker's share of the job, so the last parts of the
/// run spread over every worker too (largest first, no worker idles long at the end).
pub(crate) fn part_size(total_messages: u64, jobs: usize) -> usize {
    let share = total_messages.div_ceil(3 * jobs.max(1) as u64);
    usize::try_from(share).unwrap_or(usize::MAX).max(MIN_PART)
}

/// A range of source UIDs `lo..=hi`, with how many of the folder's pending UIDs it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) lo: u32,
    pub(crate) hi: u32,
    pub(crate) messages: u64,
}

/// Cut `uids` (sorted, the folder's pending UIDs within `first..=last`) into ranges of about
/// `size` UIDs that cover `first..=last` without gaps. A remainder smaller than half a part
/// joins the part before it. One range: the folder is not worth splitting.
pub(crate) fn plan(uids: &[u32], first: u32, last: u32, size: usize) -> Vec<Range> {
    let size = size.max(1);
    let mut chunks: Vec<&[u32]> = uids.chunks(size).collect();
    if chunks.len() > 1 && chunks.last().is_some_and(|c| c.len() < size.div_ceil(2)) {
        let tail = chunks.pop().map_or(0, <[u32]>::len);
        let n = chunks.len();
        // Re-slice so the remainder belongs to the last chunk.
        let start = (n - 1) * size;
        chunks[n - 1] = &uids[start..start + size + tail];
    }
    let mut out = Vec::with_capacity(chunks.len());
    for (i, c) in chunks.iter().enumerate() {
        let lo = if i == 0 { first } else { c[0] };
        let hi = match chunks.get(i + 1) {
            Some(next) => next[0] - 1,
            None => last.max(lo),
        };
        out.push(Range {
            lo,
            hi,
            messages: c.len() as u64,
        });
    }
    out
}

/// UID ranges `(lo, hi)` an earlier run settled, and those it left to do.
pub(crate) type Resumed = (Vec<(u32, u32)>, Vec<(u32, u32)>);

/// The ranges still to copy from a state record: `(lo, hi, done_through)` triples beyond the
/// watermark `last_uid`. Returns (settled ranges, pending ranges), both clipped above
/// `last_uid`; the pending ones start at their first unsettled UID.
pub(crate) fn resume(last_uid: u32, recorded: &[[u32; 3]]) -> Resumed {
    let (mut settled, mut pending) = (Vec::new(), Vec::new());
    for &[lo, hi, done] in recorded {
        let lo = lo.max(last_uid.saturating_add(1));
        if hi < lo {
            continue;
        }
        let done = done.min(hi);
        if done >= lo {
            settled.push((lo, done));
        }
        let from = done.saturating_add(1).max(lo);
        if from <= hi {
            pending.push((from, hi));
        }
    }
    (settled, pending)
}

/// Which destination copies a part's index holds, and which it may take for its messages.
#[derive(Debug, Default)]
pub(crate) struct Keep {
    part: Option<Part>,
    /// Only UIDs below this one (copies made before this run).
    below: Option<u32>,
    /// Copies claimed already (by earlier runs or other parts).
    except: HashSet<u32>,
}

impl Keep {
    /// Everything: a folder on one connection.
    pub(crate) fn all() -> Keep {
        Keep::default()
    }

    pub(crate) fn of_part(part: Part, below: Option<u32>, except: HashSet<u32>) -> Keep {
        Keep {
            part: Some(part),
            below,
            except,
        }
    }

    /// Nothing in the destination folder can be indexed: it was empty when this run
    /// began appending to it (so reading it would be wasted round trips).
    pub(crate) fn holds_nothing(&self) -> bool {
        self.below.is_some_and(|b| b <= 1)
    }

    /// The index holds destination UID `uid`.
    pub(crate) fn indexes(&self, uid: u32) -> bool {
        self.below.is_none_or(|b| uid < b) && !self.except.contains(&uid)
    }

    /// A source message takes the copy at `uid`; false when another part has it.
    pub(crate) fn claim(&self, uid: u32) -> bool {
        self.part
            .as_ref()
            .is_none_or(|p| p.folder.claim(uid, p.index))
    }
}

/// One part of a split folder, as its task carries it.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) folder: Arc<Folder>,
    pub(crate) index: usize,
}

/// One part's progress, as its worker last reported it.
#[derive(Debug, Clone, Default)]
struct PartState {
    lo: u32,
    hi: u32,
    /// The first UID of the part not settled (`hi + 1` once the part is through).
    next: u32,
    tally: Tally,
    failures: Vec<FailureReport>,
    mapped: Vec<(u32, u32)>,
    /// Failures of earlier runs given to this part and not settled yet.
    left: Vec<FailureReport>,
    uid_validity: Option<u32>,
    /// Its connection may have APPENDs in flight.
    in_flight: bool,
    dest_uid_validity: Option<u32>,
    altered: u64,
    deleted_on_source: u64,
    /// The part ended (any way).
    finished: bool,
    /// The part ended with every message of its range walked.
    through: bool,
    failed: Option<(Side, String)>,
}

/// One part's (or an unsplit folder's) progress, as of a checkpoint.
pub(crate) struct Report<'a> {
    /// The first UID not settled.
    pub(crate) next: u32,
    pub(crate) tally: Tally,
    pub(crate) failures: &'a [FailureReport],
    pub(crate) left: &'a [FailureReport],
    pub(crate) mapped: &'a [(u32, u32)],
    pub(crate) in_flight: bool,
    pub(crate) uid_validity: Option<u32>,
    pub(crate) dest_uid_validity: Option<u32>,
}

impl Sum {
    /// A folder on one connection: its own progress is the folder's.
    pub(crate) fn of(r: Report<'_>) -> Sum {
        Sum {
            tally: r.tally,
            failures: r.failures.to_vec(),
            left: r.left.to_vec(),
            mapped: r.mapped.to_vec(),
            uid_validity: r.uid_validity,
            watermark: r.next.saturating_sub(1),
            in_flight: r.in_flight,
            dest_uid_validity: r.dest_uid_validity,
            ..Default::default()
        }
    }
}

/// What the parts of one folder came to so far.
#[derive(Debug, Default)]
pub(crate) struct Sum {
    pub(crate) tally: Tally,
    pub(crate) failures: Vec<FailureReport>,
    pub(crate) mapped: Vec<(u32, u32)>,
    /// Failures of earlier runs not settled yet (not in `tally`).
    pub(crate) left: Vec<FailureReport>,
    pub(crate) uid_validity: Option<u32>,
    /// Every UID up to this one is settled.
    pub(crate) watermark: u32,
    /// `[lo, hi, done_through]` of the parts beyond the watermark.
    pub(crate) parts: Vec<[u32; 3]>,
    pub(crate) in_flight: bool,
    pub(crate) dest_uid_validity: Option<u32>,
    pub(crate) altered: u64,
    pub(crate) deleted_on_source: u64,
    /// Every part ended.
    pub(crate) finished: bool,
    /// Every part ended with its whole range walked.
    pub(crate) through: bool,
    pub(crate) failed: Option<(Side, String)>,
}

/// What the parts of one folder share.
#[derive(Debug)]
pub(crate) struct Folder {
    /// The folder's messages and bytes in this run (all parts).
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// When the first part began.
    started: Option<Instant>,
    /// Every UID up to this one was settled before this run.
    floor: u32,
    /// Sorted by `lo`, contiguous from `floor + 1`.
    parts: Vec<PartState>,
    /// The destination folder's UIDNEXT before any part appended: below it nothing is a
    /// copy made by this run.
    base: Option<u32>,
    /// Destination UIDs found holding a source message, and the part that claimed each:
    /// two parts must not both take one copy for their twins.
    claims: HashMap<u32, usize>,
}

impl Folder {
    /// A folder settled up to `floor`, then cut into `ranges` (contiguous, sorted);
    /// `settled` ranges (from an earlier run) are through already.
    pub(crate) fn new(
        messages: u64,
        bytes: u64,
        floor: u32,
        ranges: &[(u32, u32)],
        settled: &[(u32, u32)],
    ) -> Folder {
        let mut parts: Vec<PartState> = ranges
            .iter()
            .map(|&(lo, hi)| PartState {
                lo,
                hi,
                next: lo,
                ..Default::default()
            })
            .chain(settled.iter().map(|&(lo, hi)| PartState {
                lo,
                hi,
                next: hi.saturating_add(1),
                finished: true,
                through: true,
                ..Default::default()
            }))
            .collect();
        parts.sort_by_key(|p| p.lo);
        Folder {
            messages,
            bytes,
            inner: Mutex::new(Inner {
                floor,
                parts,
                ..Default::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index (in [`Folder::new`]'s sorted order) of the part starting at `lo`.
    pub(crate) fn index_of(&self, lo: u32) -> Option<usize> {
        self.lock().parts.iter().position(|p| p.lo == lo)
    }

    /// True for the first part to begin: it announces the folder.
    pub(crate) fn begin(&self) -> bool {
        let mut g = self.lock();
        let first = g.started.is_none();
        g.started.get_or_insert_with(Instant::now);
        first
    }

    /// When the first part began, if one did.
    pub(crate) fn began(&self) -> Option<Instant> {
        self.lock().started
    }

    /// Part `index` takes destination UID `uid` as the copy of one of its messages: false
    /// when another part took it already.
    pub(crate) fn claim(&self, uid: u32, index: usize) -> bool {
        *self.lock().claims.entry(uid).or_insert(index) == index
    }

    /// The destination's UIDNEXT before this run appended to the folder. The first part to
    /// SELECT records it, before it appends anything; a part selecting later saw its own
    /// value after that first record, so the smallest is kept.
    pub(crate) fn base(&self, seen: Option<u32>) -> Option<u32> {
        let mut g = self.lock();
        g.base = match (g.base, seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        g.base
    }

    /// Destination UIDs that other parts than `index` claimed or stored in this run.
    pub(crate) fn claimed_by_others(&self, index: usize) -> HashSet<u32> {
        let g = self.lock();
        let stored = g
            .parts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .flat_map(|(_, p)| p.mapped.iter().map(|&(_, d)| d));
        let claimed = g
            .claims
            .iter()
            .filter(|(_, i)| **i != index)
            .map(|(d, _)| *d);
        stored.chain(claimed).collect()
    }

    /// A part's progress.
    pub(crate) fn report(&self, index: usize, r: Report<'_>) -> Sum {
        let mut g = self.lock();
        if let Some(p) = g.parts.get_mut(index) {
            p.next = r.next.max(p.lo);
            p.tally = r.tally;
            p.failures = r.failures.to_vec();
            p.left = r.left.to_vec();
            p.mapped = r.mapped.to_vec();
            p.in_flight = r.in_flight;
            p.uid_validity = r.uid_validity.or(p.uid_validity);
            p.dest_uid_validity = r.dest_uid_validity.or(p.dest_uid_validity);
        }
        g.sum()
    }

    /// A part ended: `through` when its whole range was walked.
    pub(crate) fn finish(
        &self,
        index: usize,
        through: bool,
        altered: u64,
        deleted_on_source: u64,
        failed: Option<(Side, String)>,
    ) -> Sum {
        let mut g = self.lock();
        if let Some(p) = g.parts.get_mut(index) {
            p.finished = true;
            p.through = through;
            if through {
                p.next = p.hi.saturating_add(1);
            }
            p.altered = altered;
            p.deleted_on_source = deleted_on_source;
            p.failed = failed;
        }
        g.sum()
    }

    /// Messages and bytes done by all parts, part `index` being at `now`: for progress
    /// events.
    pub(crate) fn done_with(&self, index: usize, now: &Tally) -> (u64, u64) {
        let g = self.lock();
        g.parts
            .iter()
            .enumerate()
            .map(|(i, p)| if i == index { now } else { &p.tally })
            .fold((0, 0), |(n, b), t| (n + t.done(), b + t.bytes))
    }
}

impl Inner {
    fn sum(&self) -> Sum {
        let mut s = Sum {
            watermark: self.floor,
            finished: true,
            through: true,
            ..Default::default()
        };
        let mut contiguous = true;
        for p in &self.parts {
            s.tally += p.tally;
            s.failures.extend(p.failures.iter().cloned());
            s.mapped.extend(p.mapped.iter().copied());
            s.left.extend(p.left.iter().cloned());
            s.uid_validity = s.uid_validity.or(p.uid_validity);
            s.in_flight |= p.in_flight;
            s.dest_uid_validity = s.dest_uid_validity.or(p.dest_uid_validity);
            s.altered += p.altered;
            s.deleted_on_source += p.deleted_on_source;
            s.finished &= p.finished;
            s.through &= p.through;
            if s.failed.is_none() {
                s.failed.clone_from(&p.failed);
            }
            let done_through = p.next.saturating_sub(1).max(p.lo.saturating_sub(1));
            if contiguous && p.lo <= s.watermark.saturating_add(1) {
                s.watermark = s.watermark.max(done_through);
                contiguous = done_through >= p.hi;
            } else {
                contiguous = false;
            }
            if p.hi > s.watermark {
                s.parts.push([p.lo, p.hi, done_through]);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rep(
        next: u32,
        tally: Tally,
        mapped: &[(u32, u32)],
        in_flight: bool,
        dest_uid_validity: Option<u32>,
    ) -> Report<'_> {
        Report {
            next,
            tally,
            failures: &[],
            left: &[],
            mapped,
            in_flight,
            uid_validity: Some(1),
            dest_uid_validity,
        }
    }

    #[test]
    fn small_folders_are_one_part() {
        let uids: Vec<u32> = (1..=200).collect();
        assert_eq!(plan(&uids, 1, 200, 150).len(), 1, "a remainder of 50 joins");
        assert_eq!(part_size(1000, 4), 150);
        assert_eq!(part_size(5000, 4), 417);
        assert_eq!(part_size(5000, 8), 209);
    }

    #[test]
    fn watermark_stops_at_the_first_unfinished_part() {
        let f = Folder::new(300, 0, 10, &[(11, 110), (111, 210), (211, 310)], &[]);
        let t = Tally::default();
        let s = f.report(1, rep(211, t, &[], false, None));
        assert_eq!(s.watermark, 10, "part 0 has not begun");
        assert_eq!(
            s.parts,
            vec![[11, 110, 10], [111, 210, 210], [211, 310, 210]]
        );
        let s = f.report(0, rep(51, t, &[], true, None));
        assert_eq!(s.watermark, 50);
        assert!(s.in_flight);
        let s = f.finish(0, true, 0, 0, None);
        assert_eq!(s.watermark, 210, "part 1 was through already");
        assert_eq!(s.parts, vec![[211, 310, 210]]);
        assert!(!s.finished);
        let s = f.finish(2, true, 0, 0, None);
        assert_eq!(s.watermark, 310);
        assert!(s.parts.is_empty() && !s.finished, "part 1 is still running");
        let s = f.finish(1, true, 0, 0, None);
        assert!(s.finished && s.through);
    }

    #[test]
    fn resume_keeps_what_parts_settled() {
        let recorded = [[11, 110, 50], [111, 210, 210], [211, 310, 250]];
        let (settled, pending) = resume(50, &recorded);
        assert_eq!(settled, vec![(111, 210), (211, 250)]);
        assert_eq!(pending, vec![(51, 110), (251, 310)]);
        // An old state file: no parts, nothing to do here.
        assert_eq!(resume(50, &[]), (vec![], vec![]));
        // The settled and pending ranges rebuild the same watermark and parts.
        let mut ranges = pending.clone();
        ranges.push((311, 400));
        let f = Folder::new(0, 0, 50, &ranges, &settled);
        let s = f.report(0, rep(51, Tally::default(), &[], false, None));
        assert_eq!(s.watermark, 50);
        assert_eq!(
            s.parts,
            vec![
                [51, 110, 50],
                [111, 210, 210],
                [211, 250, 250],
                [251, 310, 250],
                [311, 400, 310]
            ]
        );
    }

    #[test]
    fn counts_are_summed_once_per_part() {
        let f = Folder::new(20, 0, 0, &[(1, 10), (11, 20)], &[]);
        let t = Tally {
            copied: 3,
            bytes: 30,
            ..Default::default()
        };
        f.report(0, rep(4, t, &[(1, 101)], false, Some(7)));
        f.report(0, rep(4, t, &[(1, 101)], false, Some(7)));
        let s = f.report(1, rep(14, t, &[(11, 102)], false, None));
        assert_eq!(s.tally.copied, 6, "a report replaces the part's last one");
        assert_eq!(f.done_with(0, &Tally::default()), (3, 30));
        assert_eq!(s.dest_uid_validity, Some(7));
        assert_eq!(f.claimed_by_others(0), HashSet::from([102]));
        assert!(
            f.claim(50, 0) && f.claim(50, 0),
            "a part's own claim stands"
        );
        assert!(!f.claim(50, 1), "two parts never take one copy");
        assert_eq!(f.claimed_by_others(1), HashSet::from([50, 101]));
        assert!(f.begin());
        assert!(!f.begin(), "one folder_started");
        assert_eq!(f.base(Some(9)), Some(9));
        assert_eq!(f.base(Some(12)), Some(9));
        assert_eq!(f.base(None), Some(9));
    }

    proptest! {
        #[test]
        fn plans_cover_the_range_and_every_uid_once(
            mut uids in proptest::collection::vec(1u32..5000, 0..800),
            size in 1usize..300,
        ) {
            uids.sort_unstable();
            uids.dedup();
            let first = uids.first().copied().unwrap_or(1).min(3);
            let last = uids.last().copied().unwrap_or(first) + 2;
            let parts = plan(&uids, first, last, size);
            if uids.is_empty() {
                prop_assert!(parts.len() <= 1);
            } else {
                prop_assert_eq!(parts[0].lo, first);
                prop_assert_eq!(parts.last().map(|p| p.hi), Some(last));
                for w in parts.windows(2) {
                    prop_assert_eq!(w[0].hi + 1, w[1].lo);
                }
                let mut n = 0;
                for p in &parts {
                    let inside = uids.iter().filter(|u| (p.lo..=p.hi).contains(u)).count();
                    prop_assert_eq!(inside as u64, p.messages);
                    prop_assert!(p.messages as usize <= size + size.div_ceil(2));
                    n += inside;
                }
                prop_assert_eq!(n, uids.len());
            }
        }

        #[test]
        fn the_watermark_never_passes_an_unsettled_uid(
            nexts in proptest::collection::vec(0u32..=12, 1..6),
        ) {
            // Parts of 10 UIDs from 1; part i reports `nexts[i]` UIDs settled.
            let ranges: Vec<(u32, u32)> =
                (0..nexts.len() as u32).map(|i| (i * 10 + 1, i * 10 + 10)).collect();
            let f = Folder::new(0, 0, 0, &ranges, &[]);
            let mut s = Sum::default();
            for (i, n) in nexts.iter().enumerate() {
                s = f.report(i, rep(ranges[i].0 + (*n).min(10), Tally::default(), &[], false, None));
            }
            let first_open = nexts
                .iter()
                .enumerate()
                .find(|(_, n)| **n < 10)
                .map(|(i, n)| i as u32 * 10 + n + 1);
            match first_open {
                Some(u) => prop_assert_eq!(s.watermark, u - 1),
                None => prop_assert_eq!(s.watermark, nexts.len() as u32 * 10),
            }
            // Resuming from the record settles exactly what the parts settled.
            let (settled, pending) = resume(s.watermark, &s.parts);
            for (i, n) in nexts.iter().enumerate() {
                for u in ranges[i].0..=ranges[i].1 {
                    let done = u < ranges[i].0 + (*n).min(10);
                    let in_settled = u <= s.watermark
                        || settled.iter().any(|(a, b)| (*a..=*b).contains(&u));
                    let in_pending = pending.iter().any(|(a, b)| (*a..=*b).contains(&u));
                    prop_assert_eq!(done, in_settled, "uid {}", u);
                    prop_assert_eq!(!done, in_pending, "uid {}", u);
                }
            }
        }
    }
}
