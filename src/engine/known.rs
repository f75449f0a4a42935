//! What is known of a destination folder across the attempts at it in one run. The first
//! attempt reads the whole folder only when it may already hold this folder's mail; after a
//! reconnect with APPENDs unconfirmed only the UIDs from the last look on are read (a
//! reconnect costs what is unconfirmed, not the folder). The whole folder is read again only
//! when its UIDVALIDITY changed, the server gives no UIDNEXT to start from, or copies confirmed
//! since the last look came without their UIDs (a server without UIDPLUS).

use std::collections::HashSet;

use super::*;

#[derive(Debug, Default)]
pub(crate) struct DestKnown {
    /// Copies on the destination not claimed by a source message yet.
    pub(crate) idx: Index,
    /// Destination UIDs below this were looked at (in `idx`, or accounted for); `None`
    /// before the first look.
    upto: Option<u32>,
    validity: Option<u32>,
    /// `idx` holds the folder as it was before this run, so every source message is looked
    /// for; otherwise only those in `unconfirmed` can be there.
    pub(crate) whole: bool,
    /// Source UIDs whose APPEND was on the way when a connection broke.
    unconfirmed: HashSet<u32>,
    /// Some of them were not looked for since: the next look reads from `upto` on.
    stale: bool,
    /// A copy confirmed since the last look has no known destination UID (no UIDPLUS): a
    /// range read could not tell it from an unconfirmed one, so the next look reads the whole
    /// folder, where the messages settled meanwhile claim their copies first.
    unmapped: bool,
}

impl DestKnown {
    /// A new attempt begins; `open`: the source UIDs sent without an answer before.
    pub(crate) fn broke_with(&mut self, open: Vec<u32>) {
        self.stale |= !open.is_empty();
        self.unconfirmed.extend(open);
    }

    /// The destination confirmed a copy without saying its UID.
    pub(crate) fn stored_unmapped(&mut self) {
        self.unmapped = true;
    }

    /// APPENDs may have landed that nobody looked for yet.
    pub(crate) fn stale(&self) -> bool {
        self.stale
    }

    /// Whether the destination may hold a copy of source `uid` not accounted for yet.
    pub(crate) fn may_hold(&self, uid: u32) -> bool {
        self.whole || self.unconfirmed.contains(&uid)
    }
}

impl Engine {
    /// After SELECT: bring what is known of the destination folder up to date. True when
    /// the whole folder was read in this attempt (then copies stored earlier in this run are
    /// in the index again, and their source messages must claim them).
    pub(super) fn look_at_destination(
        &self,
        dst: &mut Session,
        task: &Task,
        prog: &mut FolderProgress,
        dinfo: &FolderInfo,
        keep: &parts::Keep,
    ) -> Result<bool, ImapError> {
        let k = &mut prog.known;
        let uncertain = k.stale;
        let fresh =
            k.upto.is_none() || k.validity != dinfo.uid_validity || (uncertain && k.unmapped);
        let mut whole_read = false;
        // Read past UIDNEXT (something landed after SELECT): the next look starts after it.
        let mut past = None;
        if fresh {
            k.idx = Index::default();
            k.whole = false;
            if dinfo.exists > 0 && (task.index_destination || uncertain) {
                self.detail(format!(
                    "reading all {} messages of '{}' to find what it holds already",
                    dinfo.exists, task.map.dest
                ));
                k.idx = self.index_destination(dst, dinfo.exists, keep)?;
                k.whole = true;
                whole_read = true;
            }
        } else if let Some(from) = k.upto.filter(|_| uncertain && dinfo.exists > 0) {
            // Our own confirmed copies are accounted for already.
            let ours: HashSet<u32> = prog.mapped.iter().map(|(_, d)| *d).collect();
            self.detail(format!(
                "reading UIDs {from}:* of '{}': APPENDs unconfirmed when the connection broke",
                task.map.dest
            ));
            for h in dst.fetch_headers(&format!("{from}:*"))? {
                // "N:*" also matches the highest UID when it is below N.
                if h.uid < from {
                    continue;
                }
                past = past.max(Some(h.uid.saturating_add(1)));
                if !ours.contains(&h.uid) && keep.indexes(h.uid) {
                    k.idx.add(index::identity(&h.headers, h.size), h.uid);
                }
            }
        }
        k.validity = dinfo.uid_validity;
        k.upto = dinfo.uid_next.map(|n| past.map_or(n, |p| n.max(p)));
        k.stale = false;
        k.unmapped = false;
        Ok(whole_read)
    }

    fn detail(&self, message: String) {
        if self.opts.verbose {
            self.emit(Event::Detail {
                side: Some(Side::Destination),
                message,
            });
        }
    }
}
