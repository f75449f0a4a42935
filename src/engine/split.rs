//! A big folder on several connections, as the engine runs it: cutting folders into parts
//! (see `parts`), each part's checkpoints, and the folder's one report when its last part
//! ends.

use super::*;
use parts::{Folder, Keep, Part, Report, Sum};

impl Engine {
    /// Cut the folders worth it into parts (largest first stays the caller's order); the
    /// rest as they are. `main` lists the UIDs of a split folder (`UID FETCH n:* (UID)`).
    pub(super) fn split_folders(&self, tasks: Vec<Task>, main: &mut Option<Pair>) -> Vec<Task> {
        let jobs = self.opts.jobs.max(1);
        let size = parts::part_size(tasks.iter().map(|t| t.messages).sum(), jobs);
        let mut out = Vec::with_capacity(tasks.len());
        for mut t in tasks {
            let found = std::mem::take(&mut t.found);
            // Ranges an earlier run left are kept whatever the options now.
            let resumed = !t.resume_parts.0.is_empty() || !t.resume_parts.1.is_empty();
            // --delete-source proves and deletes what one connection copied: not split. A
            // throttled run is paced as a whole already (and its progress stays smooth).
            let big = jobs > 1
                && t.messages > size as u64
                && !self.opts.delete_source
                && self.opts.throttle.is_none();
            if t.messages == 0 || t.only_uids.is_some() || !(big || resumed) || self.cancelled() {
                out.push(t);
                continue;
            }
            out.extend(self.split(t, found, size, main));
        }
        out
    }

    fn split(&self, t: Task, found: Vec<u32>, size: usize, main: &mut Option<Pair>) -> Vec<Task> {
        let (settled, pending) = t.resume_parts.clone();
        // The UIDs the scan listed, else a listing now.
        let uids = if found.is_empty() {
            self.pending_uids(&t, &settled, main)
        } else {
            let mut u = found;
            u.retain(|x| *x <= t.scan_last_uid);
            u.sort_unstable();
            Some(u)
        };
        // Above the ranges an earlier run recorded: cut anew.
        let tail = pending
            .iter()
            .chain(&settled)
            .map(|r| r.1.saturating_add(1))
            .max()
            .unwrap_or(t.start_uid)
            .max(t.start_uid);
        let within = |lo: u32, hi: u32| {
            uids.as_ref()
                .map(|u| u.iter().filter(|x| (lo..=hi).contains(*x)).count() as u64)
        };
        let mut ranges: Vec<(u32, u32, Option<u64>)> = pending
            .iter()
            .map(|&(lo, hi)| (lo, hi, within(lo, hi)))
            .collect();
        if tail <= t.scan_last_uid {
            match &uids {
                Some(u) => {
                    let above: Vec<u32> = u.iter().copied().filter(|x| *x >= tail).collect();
                    ranges.extend(
                        parts::plan(&above, tail, t.scan_last_uid, size)
                            .into_iter()
                            .map(|r| (r.lo, r.hi, Some(r.messages))),
                    );
                }
                None => ranges.push((tail, t.scan_last_uid, None)),
            }
        }
        if ranges.len() <= 1 && settled.is_empty() {
            return vec![t];
        }
        let lohi: Vec<(u32, u32)> = ranges.iter().map(|r| (r.0, r.1)).collect();
        let folder = Arc::new(Folder::new(
            t.messages,
            t.bytes,
            t.start_uid.saturating_sub(1),
            &lohi,
            &settled,
        ));
        let even = t.messages.div_ceil(ranges.len() as u64);
        let mut out = Vec::with_capacity(ranges.len());
        for (i, (lo, hi, n)) in ranges.into_iter().enumerate() {
            let Some(index) = folder.index_of(lo) else {
                continue;
            };
            let messages = n.unwrap_or(even);
            let first = i == 0;
            out.push(Task {
                messages,
                bytes: t
                    .bytes
                    .saturating_mul(messages)
                    .checked_div(t.messages)
                    .unwrap_or(0),
                start_uid: lo,
                scan_last_uid: hi,
                // Failures of earlier runs are tried again by the first part, but for
                // those in a range to walk (walked again there).
                retry_uids: if first {
                    let walked = |u: &u32| lohi.iter().any(|(a, b)| (a..=b).contains(&u));
                    t.retry_uids
                        .iter()
                        .copied()
                        .filter(|u| !walked(u))
                        .collect()
                } else {
                    Vec::new()
                },
                retry_failures: if first {
                    t.retry_failures.clone()
                } else {
                    Vec::new()
                },
                split: Some(Part {
                    folder: folder.clone(),
                    index,
                }),
                ..t.clone()
            });
        }
        if self.opts.verbose {
            self.emit(Event::Detail {
                side: Some(Side::Source),
                message: format!(
                    "'{}' goes in {} parts of about {size} messages on as many connections as are free",
                    t.map.source,
                    out.len()
                ),
            });
        }
        out
    }

    /// The folder's UIDs still to copy (one listing on the main pair), without the
    /// ranges an earlier run settled; `None` when there is no answer (the parts are then
    /// the recorded ranges and one for the rest).
    fn pending_uids(
        &self,
        t: &Task,
        settled: &[(u32, u32)],
        main: &mut Option<Pair>,
    ) -> Option<Vec<u32>> {
        let p = main.as_mut()?;
        let found = p
            .src
            .examine(&t.map.source_wire)
            .and_then(|_| p.src.uids_from(t.start_uid));
        match found {
            Ok(mut u) => {
                u.retain(|x| {
                    *x <= t.scan_last_uid && !settled.iter().any(|(a, b)| (*a..=*b).contains(x))
                });
                u.sort_unstable();
                Some(u)
            }
            Err(e) => {
                // A broken main pair is left behind; workers open their own.
                if e.is_recoverable()
                    && let Some(old) = main.take()
                {
                    old.src.abandon();
                    old.dst.abandon();
                }
                None
            }
        }
    }

    /// Which destination copies a folder's index holds and its messages may take. A part
    /// indexes only what was there before any part appended (its twins' copies made by
    /// other parts are not theirs to take), except after a break, when its own APPENDs may
    /// have landed above that: then all but what other parts or earlier runs claimed.
    pub(super) fn index_keep(&self, task: &Task, uid_next: Option<u32>, uncertain: bool) -> Keep {
        let Some(part) = &task.split else {
            return Keep::all();
        };
        let base = part.folder.base(uid_next);
        let mut except = part.folder.claimed_by_others(part.index);
        if let Some(p) = &task.prior {
            // Copies of messages settled by earlier runs (never walked again).
            let settled = &task.resume_parts.0;
            except.extend(
                p.uid_map
                    .pairs()
                    .filter(|(s, _)| {
                        *s <= p.last_uid || settled.iter().any(|(a, b)| (*a..=*b).contains(s))
                    })
                    .map(|(_, d)| d),
            );
        }
        Keep::of_part(part.clone(), if uncertain { None } else { base }, except)
    }

    /// Record a folder's progress in the state file: as far as all its parts got while it
    /// is split (never finished here: the last part's end writes that).
    pub(super) fn checkpoint(&self, task: &Task, prog: &FolderProgress, status: FolderStatus) {
        let pending: HashSet<u32> = prog.ledger.retries_left().collect();
        let left: Vec<FailureReport> = task
            .retry_failures
            .iter()
            .filter(|f| pending.contains(&f.uid))
            .cloned()
            .collect();
        // What was settled ahead of the resume point is walked again by the next run: it is
        // counted then, not now (or it would be counted twice).
        let l = &prog.ledger;
        let failures: Vec<FailureReport> = (prog.failures.iter())
            .filter(|f| !l.ahead(f.uid))
            .cloned()
            .collect();
        let report = Report {
            next: l.next_uid(),
            tally: l.recorded(),
            failures: &failures,
            left: &left,
            // Every copy, ahead or not: the other parts must not take it for a twin.
            mapped: &prog.mapped,
            in_flight: !prog.attempt_done,
            uid_validity: prog.uid_validity,
            dest_uid_validity: prog.dest_uid_validity,
        };
        match &task.split {
            Some(p) => {
                let sum = p.folder.report(p.index, report);
                // While a part is unfinished UIDNEXT vouches for nothing.
                self.write_state(
                    task,
                    &sum,
                    p.folder.messages,
                    None,
                    FolderStatus::Interrupted,
                );
            }
            None => self.write_state(
                task,
                &Sum::of(report),
                task.messages,
                prog.dest_uid_next,
                status,
            ),
        }
    }

    /// A part ended (`through`: its whole range walked). The last part of its folder ends
    /// the folder: its report, once.
    pub(super) fn part_ended(
        &self,
        part: &Part,
        task: &Task,
        prog: &FolderProgress,
        pair: &mut Option<Pair>,
        failed: Option<(Side, String)>,
        through: bool,
    ) -> Option<(FolderReport, Vec<FailureReport>)> {
        self.checkpoint(task, prog, FolderStatus::Interrupted);
        let sum = part.folder.finish(
            part.index,
            through,
            prog.altered,
            prog.deleted_on_source,
            failed,
        );
        sum.finished
            .then(|| self.folder_ended(task, &part.folder, sum, pair.as_mut()))
    }

    /// A part never ran (the run was interrupted or ended first). When it was its folder's
    /// last, the folder ends: as pending if no part began, else with what they did.
    pub(super) fn part_skipped(&self, task: &Task) -> Option<(FolderReport, Vec<FailureReport>)> {
        let part = task.split.as_ref()?;
        let sum = part.folder.finish(part.index, false, 0, 0, None);
        if !sum.finished {
            return None;
        }
        if part.folder.began().is_some() {
            return Some(self.folder_ended(task, &part.folder, sum, None));
        }
        Some((
            super::pending(&task.map, part.folder.messages, 0),
            Vec::new(),
        ))
    }

    fn folder_ended(
        &self,
        task: &Task,
        folder: &Folder,
        sum: Sum,
        pair: Option<&mut Pair>,
    ) -> (FolderReport, Vec<FailureReport>) {
        let messages = folder.messages;
        let status = if sum.failed.is_some() {
            FolderStatus::Failed
        } else if !sum.through || (self.cancelled() && sum.tally.done() < messages) {
            FolderStatus::Interrupted
        } else if sum.tally.failed > 0 || sum.altered > 0 {
            FolderStatus::Partial
        } else {
            FolderStatus::Complete
        };
        if let Some((side, r)) = &sum.failed {
            self.emit(Event::Error {
                message: format!("folder '{}' failed: {r}", task.map.source),
                folder: Some(task.map.source.clone()),
                side: Some(*side),
            });
        }
        // Every part walked its range and had every APPEND answered: UIDNEXT now vouches
        // for the folder, so the next run need not index it.
        let dest_uid_next = match pair {
            Some(p) if sum.through && !sum.in_flight && sum.failed.is_none() => p
                .dst
                .status(&task.map.dest_wire)
                .ok()
                .filter(|st| st.uid_validity == sum.dest_uid_validity)
                .and_then(|st| st.uid_next),
            _ => None,
        };
        self.write_state(task, &sum, messages, dest_uid_next, status);
        let rep = FolderReport {
            folder: task.map.source.clone(),
            destination: task.map.dest.clone(),
            status,
            messages,
            copied: sum.tally.copied,
            skipped: sum.tally.skipped,
            failed: sum.tally.failed,
            bytes: sum.tally.bytes,
            deleted_on_source: sum.deleted_on_source,
            altered: sum.altered,
        };
        self.emit(folder_finished(
            &rep,
            folder.began().map_or(0, |t| t.elapsed().as_millis() as u64),
            sum.failed.map(|(_, r)| r),
        ));
        (rep, sum.failures)
    }

    fn write_state(
        &self,
        task: &Task,
        sum: &Sum,
        messages: u64,
        dest_uid_next: Option<u32>,
        status: FolderStatus,
    ) {
        let (Some(st), Some(v)) = (&self.state, sum.uid_validity) else {
            return;
        };
        // Counts cover the whole job: earlier runs plus this one. Earlier failures not
        // settled again stay failures, so the next run tries them again.
        let p = task.prior.as_ref();
        let t = sum.tally;
        let add = |f: fn(&FolderState) -> u64, now: u64| p.map_or(0, f) + now;
        let r = st.update(FolderState {
            source: task.map.source.clone(),
            destination: task.map.dest.clone(),
            uid_validity: v,
            last_uid: sum.watermark.max(p.map_or(0, |p| p.last_uid)),
            dest_uid_validity: sum.dest_uid_validity,
            dest_uid_next,
            // Earlier runs: what they settled; this run: what is left.
            messages: p.map_or(0, |p| p.copied + p.skipped + p.failed) + messages,
            copied: add(|f| f.copied, t.copied),
            skipped: add(|f| f.skipped, t.skipped),
            failed: add(|f| f.failed, t.failed) + sum.left.len() as u64,
            bytes: add(|f| f.bytes, t.bytes),
            status,
            failures: sum.failures.iter().chain(&sum.left).cloned().collect(),
            held: Some(p.map_or(0, FolderState::held) + t.copied + t.present),
            uid_map: {
                let mut m = p.map(|p| p.uid_map.clone()).unwrap_or_default();
                m.extend(sum.mapped.iter().copied());
                m
            },
            modseq: p.and_then(|p| p.modseq).or(task.scan_modseq),
            in_flight_at: sum.in_flight.then(late::unix_now),
            parts: sum.parts.clone(),
        });
        if let Err(e) = r {
            self.emit(Event::Warning {
                message: format!("could not write the state file: {e}"),
                folder: None,
            });
        }
    }
}
