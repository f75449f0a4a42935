//! Copying one folder: windows of UIDs, byte-bounded batches, MULTIAPPEND or pipelined
//! APPENDs, and accounting for every answer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::*;
use crate::digest::ContentHash;

impl Engine {
    /// One attempt at a folder. Until it ends with every APPEND answered, a checkpoint
    /// records that APPENDs may be in flight.
    pub(super) fn copy_once(
        &self,
        pair: &mut Pair,
        task: &Task,
        prog: &mut FolderProgress,
    ) -> SResult<()> {
        prog.attempt_done = false;
        let r = self.copy_attempt(pair, task, prog);
        prog.attempt_done = r.is_ok();
        if r.is_err() {
            prog.broke_off = Some(std::time::SystemTime::now());
        }
        r
    }

    /// One attempt at a folder, from the first unsettled UID on. The folder is walked in
    /// windows of UIDs so memory does not grow with its size.
    fn copy_attempt(&self, pair: &mut Pair, task: &Task, prog: &mut FolderProgress) -> SResult<()> {
        let Pair { src, dst, buf } = pair;
        // A new attempt walks again whatever the last one left open.
        prog.known.broke_with(prog.ledger.rewind());
        prog.batch.attempt();
        let sinfo = src.examine(&task.map.source_wire).on(Side::Source)?;
        prog.uid_validity = sinfo.uid_validity;
        if sinfo.exists == 0 || self.opts.dry_run {
            return Ok(());
        }
        // Messages that failed in an earlier run come first, then everything new.
        let mut windows: Vec<Vec<u32>> = Vec::new();
        let retry: Vec<u32> = prog.ledger.retries_left().collect();
        if !retry.is_empty() {
            windows.push(retry);
        }
        let mut uids = src.uids_from(prog.ledger.next_uid()).on(Side::Source)?;
        uids.retain(|u| *u <= task.scan_last_uid);
        let last_uid = uids.last().copied();
        if let Some(only) = &task.only_uids {
            // All Mail pass: the rest is in other folders; `last_uid` still settles it.
            uids.retain(|u| only.binary_search(u).is_ok());
        }
        windows.extend(uids.chunks(WINDOW).map(<[u32]>::to_vec));
        drop(uids);
        if windows.is_empty() {
            if let Some(last) = last_uid.filter(|_| !self.cancelled()) {
                prog.ledger.passed(last);
            }
            return Ok(());
        }

        // APPENDs of an interrupted run or a broken connection may still land: let them,
        // before the destination folder is read.
        let uncertain = prog.known.stale();
        self.await_late_appends(task, prog, uncertain);
        let dinfo = dst.select(&task.map.dest_wire).on(Side::Destination)?;
        prog.dest_uid_validity = dinfo.uid_validity;
        prog.next_seen = dinfo.uid_next;
        // Already there? Only worth asking when the destination folder holds anything, and
        // after a reconnect only what arrived since the last look (see `known`).
        // A split folder's parts share the destination folder (see `parts::Keep`).
        let keep = self.index_keep(task, dinfo.uid_next, uncertain);
        let reread = self
            .look_at_destination(dst, task, prog, &dinfo, &keep)
            .on(Side::Destination)?;
        // UIDNEXT vouches for "nothing appended beyond the checkpoint" only when everything
        // in the folder is accounted for. While messages found by the index are still ahead
        // of the checkpoint it must not be recorded, or a later run would skip the index and
        // append them again; it is read afresh once the folder is done.
        let must_index = prog.known.whole || uncertain || !prog.known.idx.is_empty();
        prog.dest_uid_next = if must_index { None } else { dinfo.uid_next };

        let mut walked_all = true;
        let mut inflight: Option<(Pending, Vec<Sent>)> = None;
        for window in windows {
            if self.cancelled() {
                // What is left of the walk stays unsettled.
                walked_all = false;
                break;
            }
            let mut metas = src
                .fetch_meta_set(&uid_set(window.iter().copied()))
                .on(Side::Source)?;
            metas.retain(|x| self.opts.dates.takes(x.internal_date));
            // What an earlier attempt settled is not handled twice. When the whole folder
            // was read again, what it stored claims its copy in the index, so a twin is not
            // taken for it (otherwise those copies were claimed, or are known to be ours).
            metas.retain(|x| match prog.ledger.settled(x.uid) {
                Some(held) => reread && held,
                None => true,
            });
            if src.caps.gmail {
                self.mark_important(src, task, &mut metas)
                    .on(Side::Source)?;
            }
            // Only those the destination may hold unaccounted for are looked for, after
            // those settled claimed their copies (so a twin never takes one of ours).
            let (claim, ask): (Vec<MessageMeta>, Vec<MessageMeta>) = if prog.known.idx.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                metas
                    .iter()
                    .filter(|m| prog.known.may_hold(m.uid) || prog.ledger.settled(m.uid).is_some())
                    .cloned()
                    .partition(|m| prog.ledger.settled(m.uid).is_some())
            };
            if !claim.is_empty() {
                match_source(src, &claim, &mut prog.known.idx, &keep, &mut prog.suspects)
                    .on(Side::Source)?;
            }
            let present = if ask.is_empty() {
                HashMap::new()
            } else {
                match_source(src, &ask, &mut prog.known.idx, &keep, &mut prog.suspects)
                    .on(Side::Source)?
            };
            metas.retain(|x| prog.ledger.settled(x.uid).is_none());
            let whole = self.copy_window(
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
            if whole && self.opts.delete_source && prog.claims.len() >= WINDOW && dst.caps.uidplus {
                if let Some((p, sent)) = inflight.take() {
                    let again = self
                        .settle(dst, task, prog, p, sent)
                        .on(Side::Destination)?;
                    self.resend_one_by_one(src, dst, task, prog, again)?;
                }
                self.prove(src, dst, task, prog)?;
                dst.select(&task.map.dest_wire).on(Side::Destination)?;
            }
            match window.last() {
                Some(last) if whole => prog.ledger.passed(*last),
                _ => {
                    walked_all = false;
                    break;
                }
            }
        }
        if let Some((p, sent)) = inflight.take() {
            let again = self
                .settle(dst, task, prog, p, sent)
                .on(Side::Destination)?;
            self.resend_one_by_one(src, dst, task, prog, again)?;
            self.sample_check(dst, task, prog)?;
        }
        if walked_all && let Some(last) = last_uid {
            prog.ledger.passed(last);
        }
        if !self.cancelled()
            && prog.dest_uid_next.is_none()
            && let Ok(st) = dst.status(&task.map.dest_wire)
            && st.uid_validity == prog.dest_uid_validity
        {
            prog.dest_uid_next = st.uid_next;
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
        present: &HashMap<u32, (Option<String>, u32)>,
        inflight: &mut Option<(Pending, Vec<Sent>)>,
    ) -> SResult<bool> {
        let limit = match (self.opts.max_size, dst.caps.append_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let metas_by_uid: HashMap<u32, &MessageMeta> = metas.iter().map(|m| (m.uid, m)).collect();
        let mut i = 0;
        while i < metas.len() {
            if self.cancelled() {
                return Ok(false);
            }
            // Next batch: bounded by bytes and count; skips are settled on the way.
            let mut batch: Vec<&MessageMeta> = Vec::new();
            let mut batch_bytes = 0u64;
            // As large as the link carries (see `adapt`).
            let max_batch = prog.batch.count(
                self.opts
                    .throttle
                    .as_ref()
                    .map_or(self.opts.batch_messages, |t| t.batch_hint()),
            );
            let max_bytes = prog.batch.bytes();
            while i < metas.len() && batch.len() < max_batch {
                let m = &metas[i];
                if !batch.is_empty() && batch_bytes + m.size > max_bytes {
                    break;
                }
                i += 1;
                if let Some((id, d)) = present.get(&m.uid) {
                    self.skip(task, prog, m, id.clone(), SkipReason::AlreadyPresent);
                    prog.mapped.push((m.uid, *d));
                    self.claim(
                        prog,
                        proof::Claim {
                            src_uid: m.uid,
                            dst_uid: Some(*d),
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
                if let Some(reason) = prog.batch.cannot_pass(m.uid) {
                    self.fail(task, prog, m.uid, None, reason);
                    continue;
                }
                // A giant message goes alone, streamed (stream.rs), after the answers in flight.
                if self.streams(m) {
                    if let Some((p, sent)) = inflight.take() {
                        let again = self
                            .settle(dst, task, prog, p, sent)
                            .on(Side::Destination)?;
                        self.resend_one_by_one(src, dst, task, prog, again)?;
                    }
                    let s = self.sent_of(task, prog, dinfo, m, None);
                    // Alone on its way: a break while it streams is blamed on it (adapt.rs).
                    prog.batch.sending(1, m.size, (m.uid, m.size));
                    *inflight = self.stream_alone(src, dst, task, prog, s)?;
                    prog.batch.fetched();
                    continue;
                }
                if let Some(&alone) = prog.suspects.get(&m.uid) {
                    if alone {
                        self.fail(
                            task,
                            prog,
                            m.uid,
                            None,
                            "the source closes the session whenever this message is fetched".into(),
                        );
                        continue;
                    }
                    // Alone, after the answers in flight (one destination connection).
                    if let Some((p, sent)) = inflight.take() {
                        let again = self
                            .settle(dst, task, prog, p, sent)
                            .on(Side::Destination)?;
                        self.resend_one_by_one(src, dst, task, prog, again)?;
                    }
                    let one = Retry {
                        sent: self.sent_of(task, prog, dinfo, m, None),
                        reason: String::new(),
                        as_sent: true,
                    };
                    self.resend_one_by_one(src, dst, task, prog, vec![one])?;
                    continue;
                }
                if let Some(t) = &self.opts.throttle {
                    t.acquire(m.size);
                }
                batch_bytes += m.size;
                batch.push(m);
            }
            if batch.is_empty() {
                prog.ledger.passed(metas[i - 1].uid);
                continue;
            }
            // One message at a time: the one before is answered first, so a break is
            // blamed on the one on its way.
            if prog.batch.single()
                && let Some((p, sent)) = inflight.take()
            {
                let again = self
                    .settle(dst, task, prog, p, sent)
                    .on(Side::Destination)?;
                self.resend_one_by_one(src, dst, task, prog, again)?;
                self.sample_check(dst, task, prog)?;
            }
            prog.batch
                .sending(batch.len(), batch_bytes, (batch[0].uid, batch[0].size));
            let uids = uid_set(batch.iter().map(|m| m.uid));
            let fetched = src.fetch_bodies(&uids, std::mem::take(buf), batch_bytes as usize);
            // The answers to the batch in flight are read whatever the fetch said, so the
            // destination connection stays in step.
            if let Some((p, sent)) = inflight.take() {
                let again = self
                    .settle(dst, task, prog, p, sent)
                    .on(Side::Destination)?;
                self.resend_one_by_one(src, dst, task, prog, again)?;
                self.sample_check(dst, task, prog)?;
            }
            let bodies = match fetched {
                Ok(b) => b,
                // The server ended the session over this batch (e.g. Dovecot cannot read a
                // message file): after the reconnect its messages are fetched one by one.
                Err(e) if closed_by_server(&e) => {
                    for m in &batch {
                        prog.suspects.entry(m.uid).or_insert(false);
                    }
                    return Err(e).on(Side::Source);
                }
                // The source would not give one of them: the others must not sink with it.
                Err(e) if source_refused(&e) => {
                    prog.ledger.sent(batch.iter().map(|m| m.uid));
                    let singles = batch
                        .iter()
                        .map(|m| Retry {
                            sent: self.sent_of(task, prog, dinfo, m, None),
                            reason: e.message.clone(),
                            as_sent: true,
                        })
                        .collect();
                    self.resend_one_by_one(src, dst, task, prog, singles)?;
                    continue;
                }
                Err(e) => return Err(e).on(Side::Source),
            };
            prog.batch.fetched();
            // Only what we asked for (a server may add unsolicited FETCH responses).
            let mut wanted: HashSet<u32> = batch.iter().map(|m| m.uid).collect();
            let got: Vec<(&MessageMeta, &[u8])> = bodies
                .iter()
                .filter(|(uid, _)| wanted.remove(uid))
                .filter_map(|(uid, body)| metas_by_uid.get(&uid).map(|m| (*m, body)))
                .collect();
            let sent: Vec<Sent> = got
                .iter()
                .map(|(m, body)| self.sent_of(task, prog, dinfo, m, Some(body)))
                .collect();
            let flag_sets: Vec<Vec<String>> = sent
                .iter()
                .map(|s| s.system_flags.iter().chain(&s.keywords).cloned().collect())
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
            prog.ledger.sent(sent.iter().map(|s| s.uid));
            // Everything before this batch was skipped, settled or is open.
            prog.ledger.passed(metas[i - 1].uid);
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
        Ok(true)
    }

    /// What is sent for one message: its flags as the destination can keep them.
    pub(super) fn sent_of(
        &self,
        task: &Task,
        prog: &mut FolderProgress,
        dinfo: &FolderInfo,
        m: &MessageMeta,
        body: Option<&[u8]>,
    ) -> Sent {
        let flags = self.dest_flags(task, prog, dinfo, &m.flags);
        let (system_flags, keywords) = flags.into_iter().partition(|f| f.starts_with('\\'));
        Sent {
            uid: m.uid,
            size: body.map_or(m.size, |b| b.len() as u64),
            message_id: body.and_then(index::message_id),
            // Hashed here, as the bytes pass through, for the proof.
            hash: body
                .filter(|_| self.opts.delete_source || !prog.sampled)
                .map(ContentHash::of),
            system_flags,
            keywords,
            date: m.internal_date,
        }
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
        prog.batch.grow();
        // A MULTIAPPEND whose APPENDUID set names every message gives each its own UID
        // (see `append_finish`). Otherwise all carry the batch's highest new UID (the last
        // message's); the others had the UIDs just below only when the batch began at the
        // UIDNEXT we saw: then they are mapped too, else only the last one.
        let n = outcomes.len() as u32;
        let multi_high = match outcomes.first() {
            Some(AppendOutcome::Stored(Some(h)))
                if n > 1
                    && outcomes
                        .iter()
                        .all(|o| matches!(o, AppendOutcome::Stored(Some(x)) if x == h)) =>
            {
                Some(*h)
            }
            _ => None,
        };
        let contiguous = multi_high
            .is_some_and(|h| h.checked_sub(n - 1).is_some() && prog.next_seen == Some(h - (n - 1)));
        let mut again = Vec::new();
        for (i, (s, o)) in sent.into_iter().zip(outcomes).enumerate() {
            match o {
                AppendOutcome::Stored(uid) => {
                    let last = i as u32 + 1 == n;
                    let map_to = match multi_high {
                        Some(h) if contiguous => Some(h - (n - 1) + i as u32),
                        Some(h) if last => Some(h),
                        Some(_) => None,
                        None => uid,
                    };
                    self.stored(prog, &s, uid, map_to)
                }
                // All or nothing: find the culprit by sending them one at a time.
                AppendOutcome::BatchRefused(reason) => again.push(Retry {
                    sent: s,
                    reason,
                    as_sent: true,
                }),
                // Keywords are the usual reason (invalid atom, too many per folder): one
                // more try without them, after this batch.
                AppendOutcome::Refused(reason) if !s.keywords.is_empty() => again.push(Retry {
                    sent: s,
                    reason,
                    as_sent: false,
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
        // Refused ones stay open until their resend is accounted for.
        self.progress(task, prog);
        self.checkpoint(task, prog, FolderStatus::Interrupted);
        Ok(again)
    }

    /// `new_uid`: what APPENDUID said (for a MULTIAPPEND without a UID per message, the
    /// batch's highest); `map_to`: the message's own destination UID when known for sure,
    /// which is also where the proof reads the copy back (unknown: found by identity).
    pub(super) fn stored(
        &self,
        prog: &mut FolderProgress,
        s: &Sent,
        new_uid: Option<u32>,
        map_to: Option<u32>,
    ) {
        if !prog.ledger.stored(s.uid, s.size) {
            return;
        }
        self.claim(
            prog,
            proof::Claim {
                src_uid: s.uid,
                dst_uid: map_to,
                hash: s.hash,
                date: s.date,
                message_id: s.message_id.clone(),
            },
        );
        match map_to {
            Some(d) => prog.mapped.push((s.uid, d)),
            None => prog.known.stored_unmapped(),
        }
        prog.next_seen = match (new_uid, prog.next_seen) {
            (Some(u), Some(n)) => Some(n.max(u.saturating_add(1))),
            _ => None,
        };
        // Without UIDPLUS we cannot tell what UIDNEXT became: forget it, so the next run
        // indexes the folder rather than trusting a stale value.
        prog.dest_uid_next = match (new_uid, prog.dest_uid_next) {
            (Some(u), Some(n)) => Some(n.max(u.saturating_add(1))),
            _ => None,
        };
        self.totals.done.fetch_add(1, Ordering::Relaxed);
        self.totals.bytes.fetch_add(s.size, Ordering::Relaxed);
    }

    /// Messages to send on their own: refused with keywords (once more with system flags
    /// only, saying which keywords were lost), refused in a whole MULTIAPPEND, or in a
    /// batch the source would not give whole. Each stays open until accounted for.
    fn resend_one_by_one(
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
            sent: mut s,
            mut reason,
            as_sent,
        } in again
        {
            prog.ledger.sent([s.uid]);
            let bodies = match src.fetch_bodies(&s.uid.to_string(), Vec::new(), s.size as usize) {
                Ok(b) => b,
                Err(e) if source_refused(&e) => {
                    self.fail(
                        task,
                        prog,
                        s.uid,
                        s.message_id.clone(),
                        format!("the source would not give it: {}", e.message),
                    );
                    continue;
                }
                Err(e) => {
                    if closed_by_server(&e)
                        && let Some(alone) = prog.suspects.get_mut(&s.uid)
                    {
                        *alone = true;
                    }
                    return Err(e).on(Side::Source);
                }
            };
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
            // Sent without its bytes at hand (fetched alone): hash them now, for the proof.
            if s.hash.is_none() && (self.opts.delete_source || !prog.sampled) {
                s.hash = Some(ContentHash::of(body));
            }
            // As sent first (when a whole batch was refused), then without keywords.
            let all: Vec<String> = s.system_flags.iter().chain(&s.keywords).cloned().collect();
            let mut attempts: Vec<&[String]> = Vec::new();
            if as_sent {
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
                let pending = dst
                    .append_send(&task.map.dest_wire, &[item])
                    .on(Side::Destination)?;
                let outcome = dst.append_finish(pending).on(Side::Destination)?;
                match outcome.into_iter().next() {
                    Some(AppendOutcome::Stored(uid)) => {
                        self.stored(prog, &s, uid, uid);
                        if flags.len() < all.len() {
                            self.keywords_lost(task, &s, &reason);
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

    pub(super) fn progress(&self, task: &Task, prog: &FolderProgress) {
        let t = prog.ledger.tally();
        // A part of a split folder reports the whole folder.
        let ((done, bytes), total) = match &task.split {
            Some(p) => (p.folder.done_with(p.index, t), p.folder.messages),
            None => ((t.done(), t.bytes), task.messages),
        };
        self.emit(Event::Progress {
            folder: task.map.source.clone(),
            done,
            total,
            bytes,
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
        if !prog
            .ledger
            .skipped(m.uid, reason == SkipReason::AlreadyPresent)
        {
            return;
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

    pub(super) fn fail(
        &self,
        task: &Task,
        prog: &mut FolderProgress,
        uid: u32,
        message_id: Option<String>,
        reason: String,
    ) {
        if !prog.ledger.failed(uid) {
            return;
        }
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
        keep: &parts::Keep,
    ) -> Result<Index, ImapError> {
        let mut idx = Index::default();
        if keep.holds_nothing() {
            return Ok(idx);
        }
        let chunk = 2000u32;
        let mut start = 1u32;
        while start <= exists {
            let end = start.saturating_add(chunk - 1).min(exists);
            for h in dst.fetch_headers_seq(&format!("{start}:{end}"))? {
                if !keep.indexes(h.uid) {
                    continue;
                }
                idx.add(index::identity(&h.headers, h.size), h.uid);
            }
            start = end.saturating_add(1);
        }
        Ok(idx)
    }
}

/// Which source messages the destination already holds (claimed from `idx`). Suspects (see
/// `FolderProgress::suspects`) are asked one at a time; one that made the source close the
/// session was never appended, so it is not looked for.
fn match_source(
    src: &mut Session,
    metas: &[MessageMeta],
    idx: &mut Index,
    keep: &parts::Keep,
    suspects: &mut HashMap<u32, bool>,
) -> Result<HashMap<u32, (Option<String>, u32)>, ImapError> {
    let mut present = HashMap::new();
    let (alone, plain): (Vec<&MessageMeta>, Vec<&MessageMeta>) =
        metas.iter().partition(|m| suspects.contains_key(&m.uid));
    let mut sets: Vec<String> = plain
        .chunks(2000)
        .map(|c| uid_set(c.iter().map(|m| m.uid)))
        .collect();
    sets.extend(
        alone
            .iter()
            .filter(|m| suspects.get(&m.uid) == Some(&false))
            .map(|m| m.uid.to_string()),
    );
    for uids in sets {
        let mut heads = match src.fetch_headers(&uids) {
            Ok(h) => h,
            Err(e) => {
                if closed_by_server(&e)
                    && let Ok(uid) = uids.parse::<u32>()
                    && let Some(a) = suspects.get_mut(&uid)
                {
                    *a = true;
                }
                return Err(e);
            }
        };
        heads.sort_by_key(|h| h.uid);
        for h in heads {
            if let Some(d) = idx.take_where(&index::identity(&h.headers, h.size), |d| keep.claim(d))
            {
                present.insert(h.uid, (index::message_id(&h.headers), d));
            }
        }
    }
    Ok(present)
}

/// The server said BYE (not a cut or a timeout): something in the request made it stop —
/// unless the BYE is a provider signal (too many connections, the bandwidth cap), which is
/// about the account, not the messages.
fn closed_by_server(e: &ImapError) -> bool {
    e.kind == Kind::Dropped
        && e.message.contains("closed the session")
        && e.signal(Side::Source, crate::imap::Phase::Fetch).is_none()
}

/// The source answered NO about these messages; not "not now" (`[UNAVAILABLE]`,
/// `[THROTTLED]` …: retried) nor its bandwidth cap (the run stops), which say nothing
/// about them.
impl Engine {
    /// A message was stored without the keywords the destination refused.
    pub(super) fn keywords_lost(&self, task: &Task, s: &Sent, reason: &str) {
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
}

pub(super) fn source_refused(e: &ImapError) -> bool {
    e.kind == Kind::No
        && !matches!(
            e.disposition(Side::Source, crate::imap::Phase::Fetch),
            crate::imap::Disposition::Retry | crate::imap::Disposition::Interrupt
        )
}

/// Source UIDs per window: the metadata of this many messages is held at once.
pub(crate) const WINDOW: usize = 1000;

/// A message to send again on its own.
struct Retry {
    sent: Sent,
    reason: String,
    /// First try it as it was (its whole batch was refused, or never sent).
    as_sent: bool,
}

/// What we sent in one APPEND, to account for its answer.
pub(super) struct Sent {
    pub(super) uid: u32,
    pub(super) size: u64,
    pub(super) message_id: Option<String>,
    /// The content hash of what was sent (for the proof), when one is wanted.
    pub(super) hash: Option<ContentHash>,
    /// Keywords sent with it; when the destination refuses the message they are dropped
    /// for one more try (with the system flags and the date alone).
    pub(super) keywords: Vec<String>,
    pub(super) system_flags: Vec<String>,
    pub(super) date: Option<chrono::DateTime<chrono::FixedOffset>>,
}
