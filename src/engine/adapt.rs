//! Batches that fit the link. A link that drops every few megabytes cannot carry a 2 MiB
//! batch, so after a broken connection the next batch is smaller (half, down to one message)
//! and it grows back (double, up to the configured size) after settled batches. When one
//! message alone breaks the connection again and again it cannot pass the link: after
//! [`STRIKES`] breaks it fails with that reason, and the folder goes on. Kept in
//! `FolderProgress`, so it survives reconnects.

use std::collections::HashMap;

use crate::event::Side;

/// Breaks of the connection while one message alone was on the way before it fails.
pub(crate) const STRIKES: u32 = 3;
/// Settled batches in a row before the size doubles again.
const GROW_AFTER: u32 = 2;
/// The byte limit shrinks no further (one message larger than it still goes alone).
const MIN_BYTES: u64 = 64 * 1024;

#[derive(Debug)]
pub(crate) struct BatchSize {
    /// The configured ceiling.
    max_bytes: u64,
    max_count: usize,
    /// The size the next batch may have.
    bytes: u64,
    count: usize,
    /// Settled batches since the last change.
    settled: u32,
    /// The message on the way while batches are one message each: the one a break is
    /// blamed on. (uid, size)
    alone: Option<(u32, u64)>,
    /// The last batch sent: (messages, bytes).
    on_way: (usize, u64),
    /// The message alone on its way was fetched whole: the source is not to blame any more.
    fetched: bool,
    /// Breaks per message while it was on the way alone, and the sides that broke.
    strikes: HashMap<u32, Strikes>,
    /// Grows with every shrink and strike: what a failure taught, for the retry budget.
    lessons: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Strikes {
    breaks: u32,
    size: u64,
    source: bool,
    destination: bool,
}

impl Default for BatchSize {
    fn default() -> Self {
        BatchSize::new(2 * 1024 * 1024, 200)
    }
}

impl BatchSize {
    pub(crate) fn new(max_bytes: u64, max_count: usize) -> BatchSize {
        let max_count = max_count.max(1);
        BatchSize {
            max_bytes,
            max_count,
            bytes: max_bytes,
            count: max_count,
            settled: 0,
            alone: None,
            on_way: (0, 0),
            fetched: false,
            strikes: HashMap::new(),
            lessons: 0,
        }
    }

    /// Bytes the next batch may hold (a single larger message still goes alone).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Messages the next batch may hold, never more than `cap` (e.g. a throttle's hint).
    pub(crate) fn count(&self, cap: usize) -> usize {
        self.count.min(cap).max(1)
    }

    /// One message at a time: each is settled before the next is sent, so a break is
    /// blamed on the one message on the way.
    pub(crate) fn single(&self) -> bool {
        self.count == 1
    }

    /// The connection broke with a batch of `sent` messages (`sent_bytes`) on the way:
    /// the next batch is half of it (or of the current limit, whichever is smaller).
    /// Whether anything changed.
    fn shrink(&mut self, sent: usize, sent_bytes: u64) -> bool {
        let (count, bytes) = (self.count, self.bytes);
        let sent = if sent == 0 { self.count } else { sent };
        let sent_bytes = if sent_bytes == 0 {
            self.bytes
        } else {
            sent_bytes
        };
        self.count = (self.count.min(sent) / 2).max(1);
        self.bytes = (self.bytes.min(sent_bytes) / 2).max(MIN_BYTES.min(self.max_bytes));
        self.settled = 0;
        let changed = (count, bytes) != (self.count, self.bytes);
        self.lessons += u64::from(changed);
        changed
    }

    /// A batch was settled: after a few in a row the size doubles, up to the ceiling.
    pub(crate) fn grow(&mut self) {
        self.alone = None;
        self.on_way = (0, 0);
        self.settled += 1;
        if self.settled < GROW_AFTER {
            return;
        }
        self.settled = 0;
        self.count = self.count.saturating_mul(2).min(self.max_count);
        self.bytes = self.bytes.saturating_mul(2).min(self.max_bytes);
    }

    /// A new attempt: nothing of this run's batches is on the way.
    pub(crate) fn attempt(&mut self) {
        self.alone = None;
        self.on_way = (0, 0);
    }

    /// A batch of `n` messages (`bytes`) is on its way, `first` (uid, size) first: when
    /// batches are one message each, a break is blamed on it.
    pub(crate) fn sending(&mut self, n: usize, bytes: u64, first: (u32, u64)) {
        self.on_way = (n, bytes);
        self.alone = (self.single() && n == 1).then_some(first);
        self.fetched = false;
    }

    /// The batch on its way came whole from the source: a later break of the source
    /// connection (e.g. reading the next window) is not its fault.
    pub(crate) fn fetched(&mut self) {
        self.fetched = true;
    }

    /// The connection on `side` broke. When one message alone was on its way it is
    /// blamed; returns true when something was learned (a strike or a smaller batch).
    pub(crate) fn broke(&mut self, side: Side) -> bool {
        let (sent, sent_bytes) = std::mem::take(&mut self.on_way);
        let alone = self.alone.take();
        if let Some((uid, size)) = alone.filter(|_| side == Side::Destination || !self.fetched) {
            let s = self.strikes.entry(uid).or_default();
            s.breaks += 1;
            s.size = size;
            match side {
                Side::Source => s.source = true,
                Side::Destination => s.destination = true,
            }
            self.lessons += 1;
            self.shrink(1, size);
            return true;
        }
        self.shrink(sent, sent_bytes)
    }

    /// Why this message cannot pass the link, once it broke it [`STRIKES`] times alone.
    pub(crate) fn cannot_pass(&self, uid: u32) -> Option<String> {
        let s = self.strikes.get(&uid).filter(|s| s.breaks >= STRIKES)?;
        let (side, verb) = match (s.source, s.destination) {
            (true, true) => (
                "the connections to the source and the destination",
                "copied",
            ),
            (true, false) => ("the connection to the source", "fetched"),
            _ => ("the connection to the destination", "sent"),
        };
        Some(format!(
            "{side} broke each of the {} times this {} message was {verb}; it cannot pass this link",
            s.breaks,
            human_size(s.size)
        ))
    }

    /// Grows with what failures taught (smaller batches, strikes): a failure that teaches
    /// something does not spend the retry budget, which bounds the lessons anyway.
    pub(crate) fn lessons(&self) -> u64 {
        self.lessons
    }
}

fn human_size(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n = n as f64;
    if n >= KIB * KIB {
        format!("{:.1} MiB", n / KIB / KIB)
    } else {
        format!("{:.0} KiB", (n / KIB).max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_to_one_message_and_grows_back() {
        let mut b = BatchSize::new(2 << 20, 200);
        assert!(!b.single());
        // A batch of 80 messages, 2 MiB, broke: 40 and 1 MiB next.
        assert!(b.shrink(80, 2 << 20));
        assert_eq!((b.count(usize::MAX), b.bytes()), (40, 1 << 20));
        assert_eq!(b.count(10), 10, "a throttle's hint caps it");
        for _ in 0..10 {
            b.shrink(0, 0);
        }
        assert!(b.single());
        assert_eq!(b.count(usize::MAX), 1);
        assert_eq!(b.bytes(), MIN_BYTES);
        assert!(!b.shrink(1, 1), "nothing left to learn");
        b.grow();
        assert!(b.single(), "one settled batch is not enough");
        b.grow();
        assert_eq!(b.count(usize::MAX), 2);
        for _ in 0..40 {
            b.grow();
        }
        assert_eq!((b.count(usize::MAX), b.bytes()), (200, 2 << 20), "capped");
    }

    #[test]
    fn a_message_that_breaks_the_link_alone_fails_after_its_strikes() {
        let mut b = BatchSize::new(2 << 20, 200);
        b.shrink(1, 3 << 20);
        assert!(b.single());
        let before = b.lessons();
        for i in 1..=STRIKES {
            assert_eq!(b.cannot_pass(7), None);
            b.sending(1, 2_516_582, (7, 2_516_582));
            assert!(b.broke(Side::Destination));
            assert!(b.lessons() > before + u64::from(i) - 1);
        }
        let why = b.cannot_pass(7).expect("spent");
        assert!(
            why.contains("destination broke each of the 3 times this 2.4 MiB message"),
            "{why}"
        );
        // A break with nobody alone on the way blames nobody.
        b.sending(1, 10, (8, 10));
        b.grow();
        while b.broke(Side::Source) {}
        assert_eq!(b.cannot_pass(8), None);
        // Nor does one in a batch of several.
        let mut b = BatchSize::new(2 << 20, 200);
        b.sending(1, 3 << 20, (9, 3 << 20));
        assert!(b.broke(Side::Source));
        assert_eq!(b.count(usize::MAX), 1, "halved from the batch that broke");
        assert_eq!(b.bytes(), 1 << 20);
        b.sending(1, 3 << 20, (9, 3 << 20));
        assert!(b.broke(Side::Source));
        assert_eq!(b.strikes[&9].breaks, 1, "blamed once it was alone");
        // The source broke after the message was fetched: not its fault.
        b.sending(1, 3 << 20, (9, 3 << 20));
        b.fetched();
        b.broke(Side::Source);
        assert_eq!(b.strikes[&9].breaks, 1);
        b.sending(1, 3 << 20, (9, 3 << 20));
        b.fetched();
        assert!(b.broke(Side::Destination));
        assert_eq!(b.strikes[&9].breaks, 2, "the destination's break is");
    }
}
