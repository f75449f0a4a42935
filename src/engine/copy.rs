//! Copying one folder: windows of UIDs, byte-bounded batches, MULTIAPPEND or pipelined
//! APPENDs, and accounting for every answer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::*;
use crate::digest::ContentHash;

impl Engine {
    /// One attempt at a folder, from `prog.next_uid` on. The folder is walked in windows of
    /// UIDs so memory does not grow with its size.
    pub(super) fn copy_once(
        &self,
        pair: &mut Pair,
        task: &Task,
        prog: &mut FolderProgress,
    ) -> SResult<()> {
        let Pair { src, dst, buf } = pair;
        let sinfo = src.examine(&task.map.source_wire).on(Side::Source)?;
        prog.uid_validity = sinfo.uid_validity;
        if sinfo.exists == 0 || self.opts.dry_run {
            return Ok(());
        }
        // Messages that failed in an earlier run come first, then everything new.
        let mut windows: Vec<Vec<u32>> = Vec::new();
        let retry: Vec<u32> = task
            .retry_uids
            .iter()
            .copied()
            .filter(|u| !prog.retried.contains(u) && *u < prog.next_uid)
            .collect();
        if !retry.is_empty() {
            windows.push(retry);
        }
        let mut uids = src.uids_from(prog.next_uid).on(Side::Source)?;
        uids.retain(|u| *u <= task.scan_last_uid);
        let last_uid = uids.last().copied();
        windows.extend(uids.chunks(WINDOW).map(<[u32]>::to_vec));
        drop(uids);
        if windows.is_empty() {
            return Ok(());
        }

        let dinfo = dst.select(&task.map.dest_wire).on(Side::Destination)?;
        prog.dest_uid_validity = dinfo.uid_validity;
        let must_index = dinfo.exists > 0 && (task.index_destination || prog.unconfirmed);
        // UIDNEXT vouches for "nothing appended beyond the checkpoint" only when everything
        // in the folder is accounted for. While messages found by the index are still ahead
        // of the checkpoint it must not be recorded, or a later run would skip the index and
        // append them again; it is read afresh once the folder is done.
        prog.dest_uid_next = if must_index { None } else { dinfo.uid_next };
        // Already there? Only worth asking when the destination folder holds anything.
        let mut idx = if must_index {
            self.index_destination(dst, dinfo.exists)
                .on(Side::Destination)?
        } else {
            Index::default()
        };
        prog.unconfirmed = false;

        let mut inflight: Option<(Pending, Vec<Sent>)> = None;
        for window in windows {
            if self.cancelled() {
                break;
            }
            let mut metas = src
                .fetch_meta_set(&uid_set(window.iter().copied()))
                .on(Side::Source)?;
            metas.retain(|x| self.opts.dates.takes(x.internal_date));
            let present = if idx.is_empty() {
                HashMap::new()
            } else {
                self.match_source(src, &metas, &mut idx).on(Side::Source)?
            };
            self.copy_window(
                src,
                dst,
                buf,
                task,
                prog,
                &dinfo,
                &metas,
                &present,
                &mut inflight,
            )?;
            // --delete-source: prove window by window, so claims never outgrow a window.
            // (Without UIDPLUS copies are found through an index of the folder: once, at
            // the end.)
            if self.opts.delete_source && prog.claims.len() >= WINDOW && dst.caps.uidplus {
                if let Some((p, sent)) = inflight.take() {
                    let again = self
                        .settle(dst, task, prog, p, sent)
                        .on(Side::Destination)?;
                    self.retry_without_keywords(src, dst, task, prog, again)?;
                }
                self.prove(src, dst, task, prog)?;
                dst.select(&task.map.dest_wire).on(Side::Destination)?;
            }
            if inflight.is_none()
                && !self.cancelled()
                && let Some(last) = window.last()
            {
                prog.next_uid = prog.next_uid.max(last.saturating_add(1));
            }
        }
        if let Some((p, sent)) = inflight.take() {
            let again = self
                .settle(dst, task, prog, p, sent)
                .on(Side::Destination)?;
            self.retry_without_keywords(src, dst, task, prog, again)?;
            self.sample_check(dst, task, prog)?;
        }
        if !self.cancelled() {
            if let Some(last) = last_uid {
                prog.next_uid = prog.next_uid.max(last.saturating_add(1));
            }
            if prog.dest_uid_next.is_none()
                && let Ok(st) = dst.status(&task.map.dest_wire)
                && st.uid_validity == prog.dest_uid_validity
            {
                prog.dest_uid_next = st.uid_next;
            }
        }
        Ok(())
    }

    /// Copy one window of messages in byte-bounded batches. The APPENDs of the last batch
    /// stay in flight (`inflight`) while the next batch is fetched, also across windows.
    #[allow(clippy::too_many_arguments)]
    fn copy_window(
        &self,
        src: &mut Session,
        dst: &mut Session,
        buf: &mut Vec<u8>,
        task: &Task,
        prog: &mut FolderProgress,
        dinfo: &FolderInfo,
        metas: &[MessageMeta],
        present: &HashMap<u32, Present>,
        inflight: &mut Option<(Pending, Vec<Sent>)>,
    ) -> SResult<()> {
        let limit = match (self.opts.max_size, dst.caps.append_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let metas_by_uid: HashMap<u32, &MessageMeta> = metas.iter().map(|m| (m.uid, m)).collect();
        let mut i = 0;
        while i < metas.len() {
            if self.cancelled() {
                break;
            }
            // Next batch: bounded by bytes and count; skips are settled on the way.
            let mut batch: Vec<&MessageMeta> = Vec::new();
            let mut batch_bytes = 0u64;
            let max_batch = self
                .opts
                .throttle
                .as_ref()
                .map_or(self.opts.batch_messages, |t| t.batch_hint());
            while i < metas.len() && batch.len() < max_batch {
                let m = &metas[i];
                if !batch.is_empty() && batch_bytes + m.size > self.opts.batch_bytes {
                    break;
                }
                i += 1;
                if let Some((id, dst_uid)) = present.get(&m.uid) {
                    self.skip(task, prog, m, id.clone(), SkipReason::AlreadyPresent);
                    self.claim(
                        prog,
                        proof::Claim {
                            src_uid: m.uid,
                            dst_uid: *dst_uid,
                            hash: None,
                            date: m.internal_date,
                            message_id: id.clone(),
                        },
                    );
                    continue;
                }
                if limit.is_some_and(|l| m.size > l) {
                    self.skip(task, prog, m, None, SkipReason::SizeLimit);
                    continue;
                }
                if let Some(t) = &self.opts.throttle {
                    t.acquire(m.size);
                }
                batch_bytes += m.size;
                batch.push(m);
            }
            if batch.is_empty() {
                if inflight.is_none() {
                    prog.next_uid = prog.next_uid.max(metas[i - 1].uid.saturating_add(1));
                }
                continue;
            }
            let uids = uid_set(batch.iter().map(|m| m.uid));
            let bodies = src
                .fetch_bodies(&uids, std::mem::take(buf), batch_bytes as usize)
                .on(Side::Source)?;
            if let Some((p, sent)) = inflight.take() {
                let again = self
                    .settle(dst, task, prog, p, sent)
                    .on(Side::Destination)?;
                self.retry_without_keywords(src, dst, task, prog, again)?;
                self.sample_check(dst, task, prog)?;
            }
            // Only what we asked for (a server may add unsolicited FETCH responses).
            let mut wanted: HashSet<u32> = batch.iter().map(|m| m.uid).collect();
            let got: Vec<(&MessageMeta, &[u8])> = bodies
                .iter()
                .filter(|(uid, _)| wanted.remove(uid))
                .filter_map(|(uid, body)| metas_by_uid.get(&uid).map(|m| (*m, body)))
                .collect();
            let flag_sets: Vec<Vec<String>> = got
                .iter()
                .map(|(m, _)| self.dest_flags(task, prog, dinfo, &m.flags))
                .collect();
            let sent: Vec<Sent> = got
                .iter()
                .zip(&flag_sets)
                .map(|((m, body), flags)| {
                    let (system, keywords) =
                        flags.iter().cloned().partition(|f| f.starts_with('\\'));
                    Sent {
                        uid: m.uid,
                        size: body.len() as u64,
                        message_id: index::message_id(body),
                        // Hashed here, as the bytes pass through, for the proof.
                        hash: (self.opts.delete_source || !prog.sampled)
                            .then(|| ContentHash::of(body)),
                        system_flags: system,
                        keywords,
                        date: m.internal_date,
                    }
                })
                .collect();
            let items: Vec<AppendItem<'_>> = got
                .iter()
                .zip(&flag_sets)
                .map(|((m, body), flags)| AppendItem {
                    body,
                    flags,
                    date: m.internal_date,
                })
                .collect();
            // Messages expunged from the source since we listed them.
            let fetched: HashSet<u32> = sent.iter().map(|s| s.uid).collect();
            for m in &batch {
                if !fetched.contains(&m.uid) {
                    self.fail(
                        task,
                        prog,
                        m.uid,
                        None,
                        "the message disappeared from the source during the run".into(),
                    );
                }
            }
            if self.opts.verbose {
                self.emit(Event::Detail {
                    side: Some(Side::Destination),
                    message: format!(
                        "APPEND {} messages ({} bytes) to {}{}",
                        items.len(),
                        items.iter().map(|x| x.body.len()).sum::<usize>(),
                        task.map.dest,
                        if dst.caps.literal_plus && dst.caps.multiappend && items.len() > 1 {
                            ", one MULTIAPPEND"
                        } else if dst.caps.literal_plus {
                            ", pipelined with LITERAL+"
                        } else {
                            ""
                        }
                    ),
                });
            }
            prog.unconfirmed = true;
            let pending = dst
                .append_send(&task.map.dest_wire, &items)
                .on(Side::Destination)?;
            drop(items);
            drop(got);
            *buf = bodies.into_buffer();
            // One huge message must not pin its size for the rest of the run.
            if buf.capacity() as u64 > 2 * self.opts.batch_bytes {
                *buf = Vec::new();
            }
            *inflight = Some((pending, sent));
        }
        Ok(())
    }

    /// Read the answers to a batch of APPENDs and account for them.
    fn settle(
        &self,
        dst: &mut Session,
        task: &Task,
        prog: &mut FolderProgress,
        pending: Pending,
        sent: Vec<Sent>,
    ) -> Result<Vec<Retry>, ImapError> {
        let outcomes = dst.append_finish(pending)?;
        let mut again = Vec::new();
        prog.unconfirmed = false;
        for s in &sent {
            if task.retry_uids.binary_search(&s.uid).is_ok() {
                prog.retried.insert(s.uid);
            }
        }
        let last = sent.last().map(|s| s.uid);
        for (s, o) in sent.into_iter().zip(outcomes) {
            match o {
                AppendOutcome::Stored(uid) => self.stored(prog, &s, uid),
                // All or nothing: find the culprit by sending them one at a time.
                AppendOutcome::BatchRefused(reason) => again.push(Retry {
                    sent: s,
                    reason,
                    whole: true,
                }),
                // Keywords are the usual reason (invalid atom, too many per folder): one
                // more try without them, after this batch.
                AppendOutcome::Refused(reason) if !s.keywords.is_empty() => again.push(Retry {
                    sent: s,
                    reason,
                    whole: false,
                }),
                AppendOutcome::Refused(reason) => {
                    self.fail(
                        task,
                        prog,
                        s.uid,
                        s.message_id.clone(),
                        format!("the destination refused it: {reason}"),
                    );
                }
            }
        }
        if let Some(last) = last {
            prog.next_uid = prog.next_uid.max(last.saturating_add(1));
        }
        if again.is_empty() {
            self.progress(task, prog);
            self.checkpoint(task, prog, FolderStatus::Interrupted);
        }
        Ok(again)
    }

    fn stored(&self, prog: &mut FolderProgress, s: &Sent, new_uid: Option<u32>) {
        self.claim(
            prog,
            proof::Claim {
                src_uid: s.uid,
                dst_uid: new_uid,
                hash: s.hash,
                date: s.date,
                message_id: s.message_id.clone(),
            },
        );
        // Without UIDPLUS we cannot tell what UIDNEXT became: forget it, so the next run
        // indexes the folder rather than trusting a stale value.
        prog.dest_uid_next = match (new_uid, prog.dest_uid_next) {
            (Some(u), Some(n)) => Some(n.max(u.saturating_add(1))),
            _ => None,
        };
        prog.copied += 1;
        prog.done += 1;
        prog.bytes += s.size;
        self.totals.done.fetch_add(1, Ordering::Relaxed);
        self.totals.bytes.fetch_add(s.size, Ordering::Relaxed);
    }

    /// Messages the destination refused with keywords: append once more with system flags
    /// only, and say which keywords were lost.
    fn retry_without_keywords(
        &self,
        src: &mut Session,
        dst: &mut Session,
        task: &Task,
        prog: &mut FolderProgress,
        again: Vec<Retry>,
    ) -> SResult<()> {
        if again.is_empty() {
            return Ok(());
        }
        for Retry {
            sent: s,
            mut reason,
            whole,
        } in again
        {
            let bodies = src
                .fetch_bodies(&s.uid.to_string(), Vec::new(), s.size as usize)
                .on(Side::Source)?;
            let Some((_, body)) = bodies.iter().find(|(u, _)| *u == s.uid) else {
                self.fail(
                    task,
                    prog,
                    s.uid,
                    s.message_id.clone(),
                    "the message disappeared from the source during the run".into(),
                );
                continue;
            };
            // As sent first (when a whole batch was refused), then without keywords.
            let all: Vec<String> = s.system_flags.iter().chain(&s.keywords).cloned().collect();
            let mut attempts: Vec<&[String]> = Vec::new();
            if whole {
                attempts.push(&all);
            }
            if !s.keywords.is_empty() {
                attempts.push(&s.system_flags);
            }
            let mut stored = false;
            for flags in attempts {
                let item = AppendItem {
                    body,
                    flags,
                    date: s.date,
                };
                prog.unconfirmed = true;
                let pending = dst
                    .append_send(&task.map.dest_wire, &[item])
                    .on(Side::Destination)?;
                let outcome = dst.append_finish(pending).on(Side::Destination)?;
                prog.unconfirmed = false;
                match outcome.into_iter().next() {
                    Some(AppendOutcome::Stored(uid)) => {
                        self.stored(prog, &s, uid);
                        if flags.len() < all.len() {
                            self.emit(Event::Warning {
                                message: format!(
                                    "{} UID {}: copied without its keywords {} (the destination refused them: {reason})",
                                    task.map.source,
                                    s.uid,
                                    s.keywords.join(" ")
                                ),
                                folder: Some(task.map.source.clone()),
                            });
                        }
                        stored = true;
                        break;
                    }
                    Some(AppendOutcome::Refused(why) | AppendOutcome::BatchRefused(why)) => {
                        reason = why;
                    }
                    None => {}
                }
            }
            if !stored {
                self.fail(
                    task,
                    prog,
                    s.uid,
                    s.message_id.clone(),
                    format!("the destination refused it: {reason}"),
                );
            }
        }
        self.progress(task, prog);
        self.checkpoint(task, prog, FolderStatus::Interrupted);
        Ok(())
    }

    fn progress(&self, task: &Task, prog: &FolderProgress) {
        self.emit(Event::Progress {
            folder: task.map.source.clone(),
            done: prog.done,
            total: task.messages,
            bytes: prog.bytes,
            overall_done: self.totals.done.load(Ordering::Relaxed),
            overall_total: self.totals.total.load(Ordering::Relaxed),
            overall_bytes: self.totals.bytes.load(Ordering::Relaxed),
        });
    }

    fn skip(
        &self,
        task: &Task,
        prog: &mut FolderProgress,
        m: &MessageMeta,
        message_id: Option<String>,
        reason: SkipReason,
    ) {
        prog.skipped += 1;
        prog.done += 1;
        if task.retry_uids.binary_search(&m.uid).is_ok() {
            prog.retried.insert(m.uid);
        }
        self.totals.done.fetch_add(1, Ordering::Relaxed);
        self.emit(Event::MessageSkipped {
            folder: task.map.source.clone(),
            uid: m.uid,
            message_id,
            size: m.size,
            reason,
        });
    }

    fn fail(
        &self,
        task: &Task,
        prog: &mut FolderProgress,
        uid: u32,
        message_id: Option<String>,
        reason: String,
    ) {
        prog.failed += 1;
        prog.done += 1;
        self.totals.done.fetch_add(1, Ordering::Relaxed);
        prog.failures.push(FailureReport {
            folder: task.map.source.clone(),
            uid,
            message_id: message_id.clone(),
            reason: reason.clone(),
        });
        self.emit(Event::MessageFailed {
            folder: task.map.source.clone(),
            uid,
            message_id,
            reason,
        });
    }

    /// Flags to store: keywords the destination cannot keep are dropped, with one warning each.
    fn dest_flags(
        &self,
        task: &Task,
        prog: &mut FolderProgress,
        dinfo: &FolderInfo,
        flags: &[String],
    ) -> Vec<String> {
        let mut out = Vec::with_capacity(flags.len());
        for f in flags {
            if f.eq_ignore_ascii_case("\\Recent") {
                continue;
            }
            if dinfo.accepts_flag(f) {
                out.push(f.clone());
            } else if prog.warned_flags.insert(f.clone()) {
                self.emit(Event::Warning {
                    message: format!(
                        "the destination folder '{}' does not accept the keyword '{f}'; copying without it",
                        task.map.dest
                    ),
                    folder: Some(task.map.source.clone()),
                });
            }
        }
        out
    }

    /// The destination folder's messages as a multiset of keys. Fetched in sequence-number
    /// chunks so memory stays bounded on huge folders.
    pub(crate) fn index_destination(
        &self,
        dst: &mut Session,
        exists: u32,
    ) -> Result<Index, ImapError> {
        let mut idx = Index::default();
        let chunk = 2000u32;
        let mut start = 1u32;
        while start <= exists {
            let end = start.saturating_add(chunk - 1).min(exists);
            for h in dst.fetch_headers_seq(&format!("{start}:{end}"))? {
                let k = index::identity(&h.headers, h.size);
                // UIDs only for a proof or a deep verify: they double the index's memory.
                if self.opts.delete_source || self.opts.deep {
                    idx.add_at(k, h.uid);
                } else {
                    idx.add(k);
                }
            }
            start = end.saturating_add(1);
        }
        Ok(idx)
    }

    /// Which source messages the destination already holds (claimed from `idx`).
    fn match_source(
        &self,
        src: &mut Session,
        metas: &[MessageMeta],
        idx: &mut Index,
    ) -> Result<HashMap<u32, Present>, ImapError> {
        let mut present = HashMap::new();
        for chunk in metas.chunks(2000) {
            let uids = uid_set(chunk.iter().map(|m| m.uid));
            let mut heads = src.fetch_headers(&uids)?;
            heads.sort_by_key(|h| h.uid);
            for h in heads {
                if let Some(dst_uid) = idx.take_uid(&index::identity(&h.headers, h.size)) {
                    present.insert(h.uid, (index::message_id(&h.headers), dst_uid));
                }
            }
        }
        Ok(present)
    }
}

/// Source UIDs per window: the metadata of this many messages is held at once.
pub(crate) const WINDOW: usize = 1000;

/// A source message the destination already holds: its Message-ID and the UID of the copy.
type Present = (Option<String>, Option<u32>);

/// A message to send again on its own.
struct Retry {
    sent: Sent,
    reason: String,
    /// Its whole batch was refused (MULTIAPPEND): first try it as it was.
    whole: bool,
}

/// What we sent in one APPEND, to account for its answer.
struct Sent {
    uid: u32,
    size: u64,
    message_id: Option<String>,
    /// The content hash of what was sent (for the proof), when one is wanted.
    hash: Option<ContentHash>,
    /// Keywords sent with it; when the destination refuses the message they are dropped
    /// for one more try (with the system flags and the date alone).
    keywords: Vec<String>,
    system_flags: Vec<String>,
    date: Option<chrono::DateTime<chrono::FixedOffset>>,
}
