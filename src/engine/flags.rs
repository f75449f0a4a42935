//! Flag sync: flags and keywords of messages copied in earlier runs follow the source
//! (additions and removals), through the source-UID → destination-UID map in the state.

use std::collections::{BTreeMap, HashMap};

use super::*;

impl Engine {
    /// Bring the flags of the mapped messages of one folder in line with the source. With
    /// CONDSTORE a folder whose HIGHESTMODSEQ did not move since the last sync costs one
    /// STATUS, or nothing when LIST-STATUS told it already (`known`). Returns the
    /// HIGHESTMODSEQ to record, if any.
    pub(super) fn sync_flags(
        &self,
        main: &mut Pair,
        m: &Mapping,
        r: &FolderState,
        known: Option<u64>,
    ) -> SResult<Option<u64>> {
        let modseq = match known {
            Some(k) => Some(k),
            None => main.src.highest_modseq(&m.source_wire).on(Side::Source)?,
        };
        if modseq.is_some() && modseq == r.modseq {
            return Ok(None);
        }
        main.src.examine(&m.source_wire).on(Side::Source)?;
        // With CONDSTORE only what changed since the last sync; else every mapped message.
        let changed = match (modseq, r.modseq) {
            (Some(_), Some(since)) => Some(
                main.src
                    .changed_since(since)
                    .on(Side::Source)?
                    .into_iter()
                    .map(|x| (x.uid, x))
                    .collect::<HashMap<u32, MessageMeta>>(),
            ),
            _ => None,
        };
        let pairs: Vec<(u32, u32)> = r
            .uid_map
            .pairs()
            .filter(|(s, _)| changed.as_ref().is_none_or(|c| c.contains_key(s)))
            .collect();
        if pairs.is_empty() {
            return Ok(modseq);
        }
        let dinfo = main.dst.select(&m.dest_wire).on(Side::Destination)?;
        // Target flag set → destination UIDs that need it.
        let mut updates: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
        for chunk in pairs.chunks(WINDOW) {
            let smeta = match &changed {
                Some(c) => chunk.iter().filter_map(|p| c.get(&p.0).cloned()).collect(),
                None => main
                    .src
                    .fetch_meta_set(&uid_set(chunk.iter().map(|p| p.0)))
                    .on(Side::Source)?,
            };
            let dmeta = main
                .dst
                .fetch_meta_set(&uid_set(chunk.iter().map(|p| p.1)))
                .on(Side::Destination)?;
            let to_dst: HashMap<u32, u32> = chunk.iter().copied().collect();
            let dst_by_uid: HashMap<u32, &MessageMeta> = dmeta.iter().map(|d| (d.uid, d)).collect();
            for sm in &smeta {
                let Some(d) = to_dst.get(&sm.uid).and_then(|d| dst_by_uid.get(d)) else {
                    continue; // gone on either side
                };
                // A pair whose sizes differ is not the same message: never touch it.
                if d.size != sm.size {
                    continue;
                }
                let want = normal(sm.flags.iter().filter(|f| dinfo.accepts_flag(f)));
                if want != normal(d.flags.iter()) {
                    updates.entry(want).or_default().push(d.uid);
                }
            }
        }
        let mut updated = 0u64;
        for (flags, uids) in &updates {
            for chunk in uids.chunks(WINDOW) {
                main.dst
                    .store_flags(&uid_set(chunk.iter().copied()), flags)
                    .on(Side::Destination)?;
                updated += chunk.len() as u64;
            }
        }
        if updated > 0 {
            self.totals
                .flags_updated
                .fetch_add(updated, Ordering::Relaxed);
            self.emit(Event::FlagsSynced {
                folder: m.source.clone(),
                destination: m.dest.clone(),
                updated,
            });
        }
        Ok(modseq)
    }
}

/// A flag set as compared: without \Recent (the server's own), sorted, once each.
fn normal<'a>(flags: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = flags
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}
