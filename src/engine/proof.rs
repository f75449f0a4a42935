//! Proof before deleting (issue 15): a destination may accept a message and store something
//! else (Cyrus turns 8-bit header bytes into 'X' and replaces an epoch INTERNALDATE by the
//! time of the APPEND). Before `--delete-source` removes a source message, its copy is read
//! back by UID and its content hash and INTERNALDATE compared with the source's; only proven
//! messages are deleted. Without `--delete-source`, a few copies of each folder's first batch
//! are read back the same way, so a rewriting destination is named early.
//!
//! The source's hash is taken from the bytes as they pass through the copy; copies are read
//! back in UID sets of [`CHUNK`] with one command each and hashed as they stream in, so the
//! proof costs one download of what is deleted and no memory per message beyond its claim.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};

use super::*;
use crate::digest::{ContentHash, Difference};
use crate::imap::FetchedHash;

/// Copies read back per UID FETCH.
const CHUNK: usize = 500;
/// Copies of each folder's first batch read back without `--delete-source`.
pub(super) const SAMPLE: usize = 3;

/// "The destination holds a copy of this source message": to be proven.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) src_uid: u32,
    /// Where the destination stored or holds it (APPENDUID, or the index).
    pub(crate) dst_uid: Option<u32>,
    /// The source's bytes as they passed through the copy; `None` for a message the index
    /// found already present (read from the source when proving).
    pub(crate) hash: Option<ContentHash>,
    pub(crate) date: Option<DateTime<FixedOffset>>,
    pub(crate) message_id: Option<String>,
}

impl Engine {
    /// A message the destination stored or already holds: with `--delete-source` it must be
    /// proven before it is deleted; otherwise the first few of a folder are sampled.
    pub(super) fn claim(&self, prog: &mut FolderProgress, c: Claim) {
        if !self.opts.delete_source && c.hash.is_some() && c.dst_uid.is_none() {
            // No UIDPLUS: nothing to read back by UID; stop hashing for a sample.
            prog.sampled = true;
        }
        if self.opts.delete_source
            || (!prog.sampled
                && prog.claims.len() < SAMPLE
                && c.dst_uid.is_some()
                && c.hash.is_some())
        {
            prog.claims.push(c);
        }
    }

    /// Without `--delete-source`: once a folder's first copies are settled, read a few back
    /// (the destination is selected and nothing is in flight) and warn once when they differ.
    pub(super) fn sample_check(
        &self,
        dst: &mut Session,
        task: &Task,
        prog: &mut FolderProgress,
    ) -> SResult<()> {
        if self.opts.delete_source || prog.sampled || prog.claims.is_empty() {
            return Ok(());
        }
        prog.sampled = true;
        let claims = std::mem::take(&mut prog.claims);
        let copies = read_back(dst, &claims).on(Side::Destination)?;
        let altered: Vec<(u32, Vec<Difference>)> = claims
            .iter()
            .map(|c| (c.src_uid, differences(c, &copies)))
            .filter(|(_, d)| !d.is_empty())
            .collect();
        if let Some((uid, diffs)) = altered.first() {
            self.emit(Event::Warning {
                message: format!(
                    "the destination altered {} of the first {} messages read back from '{}' (UID {uid}: {}): it rewrites what it stores; `btsx verify --deep` names every altered message, and --delete-source keeps them on the source",
                    altered.len(),
                    claims.len(),
                    task.map.dest,
                    describe(diffs)
                ),
                folder: Some(task.map.source.clone()),
            });
        }
        Ok(())
    }

    /// `--delete-source`: prove every claim of the folder. Proven messages go to
    /// `prog.confirmed` (deleted next); the others stay on the source and are reported. When
    /// the copies cannot be read back, nothing unproven is deleted.
    pub(super) fn prove_claims(&self, pair: &mut Pair, task: &Task, prog: &mut FolderProgress) {
        let Pair { src, dst, .. } = pair;
        if let Err(e) = self.prove(src, dst, task, prog) {
            let n = std::mem::take(&mut prog.claims).len();
            self.emit(Event::Warning {
                message: format!(
                    "could not read the copies in '{}' back to prove them ({} server: {}): the {n} messages stay on the source",
                    task.map.dest,
                    e.side.label(),
                    e.err.message
                ),
                folder: Some(task.map.source.clone()),
            });
        }
    }

    /// Prove the claims gathered so far (nothing in flight on `dst`). On an error the claims
    /// stay in `prog` for the next try.
    pub(super) fn prove(
        &self,
        src: &mut Session,
        dst: &mut Session,
        task: &Task,
        prog: &mut FolderProgress,
    ) -> SResult<()> {
        if prog.claims.is_empty() {
            return Ok(());
        }
        let mut claims = std::mem::take(&mut prog.claims);
        let result = self.read_claims(src, dst, task, &mut claims);
        let copies = match result {
            Ok(c) => c,
            Err(e) => {
                prog.claims = claims;
                return Err(e);
            }
        };
        for c in claims {
            let diffs = differences(&c, &copies);
            if diffs.is_empty() {
                prog.confirmed.push(c.src_uid);
                continue;
            }
            prog.altered += 1;
            self.emit(Event::MessageAltered {
                folder: task.map.source.clone(),
                uid: c.src_uid,
                message_id: c.message_id.clone(),
                destination_uid: c.dst_uid,
                reason: format!("kept on the source: {}", describe(&diffs)),
                differences: diffs,
            });
        }
        Ok(())
    }

    /// Complete the claims' source hashes and read their copies back.
    fn read_claims(
        &self,
        src: &mut Session,
        dst: &mut Session,
        task: &Task,
        claims: &mut Vec<Claim>,
    ) -> SResult<HashMap<u32, FetchedHash>> {
        if claims.iter().any(|c| c.dst_uid.is_none()) {
            self.find_copies(src, dst, task, claims)?;
        }
        // Messages found already present never passed through btsx: hash the source's.
        let unhashed: Vec<u32> = claims
            .iter()
            .filter(|c| c.hash.is_none() && c.dst_uid.is_some())
            .map(|c| c.src_uid)
            .collect();
        if !unhashed.is_empty() {
            src.examine(&task.map.source_wire).on(Side::Source)?;
            let mut source: HashMap<u32, FetchedHash> = HashMap::new();
            for chunk in unhashed.chunks(CHUNK) {
                let set = uid_set(chunk.iter().copied());
                for f in src.fetch_hashes(&set).on(Side::Source)? {
                    source.insert(f.uid, f);
                }
            }
            for c in claims.iter_mut().filter(|c| c.hash.is_none()) {
                c.hash = source.get(&c.src_uid).map(|f| f.hash);
            }
            // Gone from the source meanwhile: nothing to delete, nothing to prove.
            claims.retain(|c| c.hash.is_some() || c.dst_uid.is_none());
        }
        // The copy path has the destination folder selected already; the final proof
        // comes after it, on a connection that may have moved on.
        dst.examine(&task.map.dest_wire).on(Side::Destination)?;
        read_back(dst, claims).on(Side::Destination)
    }
}

impl Engine {
    /// `verify --deep`: compare the content hash, INTERNALDATE and flags of matched
    /// (source UID, destination UID) pairs of one window; the source folder and the
    /// destination folder are open. Each altered copy is named in a `message_altered` event.
    pub(crate) fn deep_compare(
        &self,
        pair: &mut Pair,
        m: &crate::plan::Mapping,
        matched: &[(u32, u32, Option<String>)],
    ) -> SResult<u64> {
        if matched.is_empty() {
            return Ok(0);
        }
        let Pair { src, dst, .. } = pair;
        let src_set = uid_set(matched.iter().map(|p| p.0));
        let dst_set = uid_set(matched.iter().map(|p| p.1));
        let src_hash: HashMap<u32, FetchedHash> = src
            .fetch_hashes(&src_set)
            .on(Side::Source)?
            .into_iter()
            .map(|f| (f.uid, f))
            .collect();
        let src_flags = flags_by_uid(src.fetch_meta_set(&src_set).on(Side::Source)?);
        let dst_flags = flags_by_uid(dst.fetch_meta_set(&dst_set).on(Side::Destination)?);
        let copies: HashMap<u32, FetchedHash> = dst
            .fetch_hashes(&dst_set)
            .on(Side::Destination)?
            .into_iter()
            .map(|f| (f.uid, f))
            .collect();
        let mut altered = 0;
        for (s, d, message_id) in matched {
            let (s, d) = (*s, *d);
            // Gone from the source meanwhile: nothing to compare.
            let Some(orig) = src_hash.get(&s) else {
                continue;
            };
            let claim = Claim {
                src_uid: s,
                dst_uid: Some(d),
                hash: Some(orig.hash),
                date: orig.internal_date,
                message_id: None,
            };
            let mut diffs = differences(&claim, &copies);
            if copies.contains_key(&d) && src_flags.get(&s) != dst_flags.get(&d) {
                diffs.push(Difference::Flags);
            }
            if diffs.is_empty() {
                continue;
            }
            altered += 1;
            self.emit(Event::MessageAltered {
                folder: m.source.clone(),
                uid: s,
                message_id: message_id.clone(),
                destination_uid: Some(d),
                reason: describe(&diffs),
                differences: diffs,
            });
        }
        Ok(altered)
    }
}

/// Flags as a comparable set: sorted, system flags in one case, without \Recent.
fn flags_by_uid(metas: Vec<crate::imap::MessageMeta>) -> HashMap<u32, Vec<String>> {
    metas
        .into_iter()
        .map(|m| {
            let mut f: Vec<String> = m
                .flags
                .into_iter()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .map(|f| {
                    if f.starts_with('\\') {
                        f.to_ascii_lowercase()
                    } else {
                        f
                    }
                })
                .collect();
            f.sort();
            (m.uid, f)
        })
        .collect()
}

impl Engine {
    /// A destination without UIDPLUS did not say where it stored the copies: find them by
    /// identity among the folder's messages that no other claim names (a wrong match is
    /// caught by the comparison that follows).
    fn find_copies(
        &self,
        src: &mut Session,
        dst: &mut Session,
        task: &Task,
        claims: &mut [Claim],
    ) -> SResult<()> {
        let known: std::collections::HashSet<u32> =
            claims.iter().filter_map(|c| c.dst_uid).collect();
        let info = dst.examine(&task.map.dest_wire).on(Side::Destination)?;
        let mut idx = crate::index::Index::default();
        let mut start = 1u32;
        while start <= info.exists {
            let end = start.saturating_add(1999).min(info.exists);
            for h in dst
                .fetch_headers_seq(&format!("{start}:{end}"))
                .on(Side::Destination)?
            {
                if !known.contains(&h.uid) {
                    idx.add(crate::index::identity(&h.headers, h.size), h.uid);
                }
            }
            start = end.saturating_add(1);
        }
        let unknown: Vec<u32> = claims
            .iter()
            .filter(|c| c.dst_uid.is_none())
            .map(|c| c.src_uid)
            .collect();
        src.examine(&task.map.source_wire).on(Side::Source)?;
        let mut found = HashMap::new();
        for chunk in unknown.chunks(CHUNK) {
            let mut heads = src
                .fetch_headers(&uid_set(chunk.iter().copied()))
                .on(Side::Source)?;
            heads.sort_by_key(|h| h.uid);
            for h in heads {
                if let Some(u) = idx.take(&crate::index::identity(&h.headers, h.size)) {
                    found.insert(h.uid, u);
                }
            }
        }
        for c in claims.iter_mut().filter(|c| c.dst_uid.is_none()) {
            c.dst_uid = found.get(&c.src_uid).copied();
        }
        Ok(())
    }
}

/// The destination's copies of `claims`, by destination UID (the folder is selected).
fn read_back(dst: &mut Session, claims: &[Claim]) -> Result<HashMap<u32, FetchedHash>, ImapError> {
    let uids: Vec<u32> = claims.iter().filter_map(|c| c.dst_uid).collect();
    let mut out = HashMap::with_capacity(uids.len());
    for chunk in uids.chunks(CHUNK) {
        for f in dst.fetch_hashes(&uid_set(chunk.iter().copied()))? {
            out.insert(f.uid, f);
        }
    }
    Ok(out)
}

/// What differs between a claim and the copy read back; empty when proven.
fn differences(c: &Claim, copies: &HashMap<u32, FetchedHash>) -> Vec<Difference> {
    let Some(dst_uid) = c.dst_uid else {
        return vec![Difference::UnknownUid];
    };
    let (Some(hash), Some(copy)) = (c.hash, copies.get(&dst_uid)) else {
        return vec![Difference::Missing];
    };
    let mut out = hash.differences(&copy.hash);
    if let Some(date) = c.date
        && copy.internal_date.map(|d| d.timestamp()) != Some(date.timestamp())
    {
        out.push(Difference::ArrivalDate);
    }
    out
}

fn describe(diffs: &[Difference]) -> String {
    diffs
        .iter()
        .map(|d| d.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(hash: &[u8], date: i64) -> Claim {
        Claim {
            src_uid: 1,
            dst_uid: Some(7),
            hash: Some(ContentHash::of(hash)),
            date: DateTime::from_timestamp(date, 0).map(|d| d.fixed_offset()),
            message_id: None,
        }
    }

    fn copy(hash: &[u8], date: i64) -> HashMap<u32, FetchedHash> {
        HashMap::from([(
            7,
            FetchedHash {
                uid: 7,
                internal_date: DateTime::from_timestamp(date, 0).map(|d| d.fixed_offset()),
                hash: ContentHash::of(hash),
            },
        )])
    }

    #[test]
    fn proven_only_when_bytes_and_date_match() {
        let m = b"From: J\xc3\xbcrgen\r\n\r\nbody\r\n";
        let x = b"From: JXXrgen\r\n\r\nbody\r\n";
        assert!(differences(&claim(m, 100), &copy(m, 100)).is_empty());
        assert_eq!(
            differences(&claim(m, 100), &copy(x, 100)),
            vec![Difference::HeaderBytes]
        );
        assert_eq!(
            differences(&claim(m, 0), &copy(m, 1_700_000_000)),
            vec![Difference::ArrivalDate]
        );
        assert_eq!(
            differences(&claim(m, 0), &HashMap::new()),
            vec![Difference::Missing]
        );
        let mut c = claim(m, 0);
        c.dst_uid = None;
        assert_eq!(differences(&c, &copy(m, 0)), vec![Difference::UnknownUid]);
    }
}
