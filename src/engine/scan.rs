//! Scanning: which source folders there are, where they go, and what is new in each.

use super::*;
use crate::imap::ListStatus;

impl Engine {
    /// LIST both sides and map every selected source folder to its destination.
    pub(crate) fn plan_folders(&self, main: &mut Pair) -> SResult<(Vec<Mapping>, Warnings)> {
        let src_ns = namespace(&mut main.src).on(Side::Source)?;
        let dst_ns = namespace(&mut main.dst).on(Side::Destination)?;
        let listed = main.src.list().on(Side::Source)?;
        let src_ns = fill_separator(src_ns, &listed);
        let dst_listed = main.dst.list().on(Side::Destination)?;
        let dst_ns = fill_separator(dst_ns, &dst_listed);
        // Only the selected folders are planned: a clash with a folder left out is no clash.
        // A \Noselect folder is planned when it has no subfolders or an earlier run knows it:
        // Dovecot lists a folder it once failed to open as \Noselect (even after it was
        // mended), so it is tried; one that cannot be opened is a failure to report, not a
        // folder to forget. A \Noselect parent is only a node of the tree.
        let parents = parents(&listed);
        let known = |name: &str| {
            self.state
                .as_ref()
                .is_some_and(|s| s.folder(name).is_some())
        };
        let sources: Vec<SourceFolder> = listed
            .iter()
            .filter(|f| {
                let name = crate::utf7::decode_lossy(&f.name);
                (f.selectable || !parents.contains(f.name.as_str()) || known(&name))
                    && self.opts.folders.takes(&name)
            })
            .map(|f| SourceFolder {
                wire: f.name.clone(),
                special_use: f.special_use.clone(),
            })
            .collect();
        let existing: Vec<ExistingFolder> = dst_listed
            .iter()
            .filter(|f| f.selectable)
            .map(|f| ExistingFolder {
                wire: f.name.clone(),
                special_use: f.special_use.clone(),
            })
            .collect();
        if self.opts.verbose {
            for (side, ns) in [(Side::Source, &src_ns), (Side::Destination, &dst_ns)] {
                self.emit(Event::Detail {
                    side: Some(side),
                    message: format!(
                        "namespace prefix {:?}, separator {:?}",
                        ns.prefix, ns.separator
                    ),
                });
            }
        }
        let plan = plan::plan(&sources, &src_ns, &dst_ns, &existing, &self.opts.folder_map)
            .map_err(|why| SideErr {
                side: Side::Destination,
                err: ImapError::new(Kind::Usage, why),
            })?;
        let folders = plan.folders;
        let warnings = plan
            .warnings
            .into_iter()
            .filter(|(folder, _)| folder.is_empty() || self.opts.folders.takes(folder))
            .collect();
        Ok((folders, warnings))
    }

    /// Scan every planned folder. A folder the source or destination will not open, or that
    /// keeps dropping the connection, is reported failed (or, when it vanished from the
    /// source meanwhile, warned about) and the others are scanned; `Err` only for what ends
    /// the job or a reconnect that fails.
    pub(super) fn scan(
        &self,
        main: &mut Pair,
    ) -> SResult<(Vec<Task>, Warnings, Vec<FolderReport>)> {
        let (mut folders, mut warnings) = self.plan_folders(main)?;
        let views = self.apply_views(&mut main.dst, &mut folders, &mut warnings)?;
        let real = views.real_folders(&folders);
        let mut archived = None;
        let mut tasks = Vec::new();
        let mut failed = Vec::new();
        // (source UIDVALIDITY, source UIDNEXT, destination STATUS) of folders on both sides.
        let mut both = Vec::new();
        let all = folders.len();
        // One LIST-STATUS per side where offered (else one STATUS per folder below): a
        // no-change run is then two commands.
        let listed = Listed {
            src: match &self.state {
                Some(_) => main.src.list_status().on(Side::Source)?,
                None => None,
            },
            dst: main.dst.list_status().on(Side::Destination)?,
        };
        for m in folders {
            if self.cancelled() {
                break;
            }
            // The All Mail pass: membership over the real folders decides what it copies.
            let all_mail = (views.all_mail.as_ref() == Some(&m)).then_some(real.as_slice());
            let e = match self.for_folder(main, Op::Open, |p| {
                self.scan_folder(p, &m, all_mail, &listed, &mut both)
            })? {
                Ok(t) => {
                    if all_mail.is_some() {
                        archived = Some((t.messages, t.bytes));
                    }
                    tasks.push(t);
                    continue;
                }
                Err(e) => e,
            };
            if self.cancelled()
                || (e.side == Side::Source
                    && !e.err.is_recoverable()
                    && self.not_a_mailbox(&mut main.src, &m, &e.err))
            {
                continue;
            }
            failed.push(self.folder_failed(&m, 0, &e));
            // What earlier runs settled stays; `btsx status` shows the failure, and the
            // next run plans the folder even if LIST now calls it \Noselect.
            if let Some(st) = &self.state
                && !self.opts.dry_run
            {
                let _ = st.update(match st.folder(&m.source) {
                    Some(prior) => FolderState {
                        status: FolderStatus::Failed,
                        ..prior
                    },
                    None => never_opened(&m),
                });
            }
        }
        if !views.is_empty() {
            self.emit(views.event(archived));
        }
        if both.len() == all {
            self.warn_if_same(&both);
        }
        Ok((tasks, warnings, failed))
    }

    fn scan_folder(
        &self,
        main: &mut Pair,
        m: &Mapping,
        all_mail: Option<&[String]>,
        listed: &Listed,
        both: &mut Vec<(Option<u32>, Option<u32>, FolderInfo)>,
    ) -> SResult<Task> {
        let resume = self
            .state
            .as_ref()
            .and_then(|s| s.folder(&m.source))
            .filter(|r| r.uid_validity != NEVER_OPENED);
        // A folder the state knows: STATUS (or the LIST-STATUS answer) tells whether anything
        // is new, without opening it (a no-change run is then one command per folder and side).
        let src_listed = listed.src(&m.source_wire);
        let src_modseq = src_listed.as_ref().and_then(|l| l.1);
        let info = match (&resume, src_listed) {
            (Some(_), Some((i, _))) => i,
            (Some(_), None) => main.src.status(&m.source_wire).on(Side::Source)?,
            (None, _) => main.src.examine(&m.source_wire).on(Side::Source)?,
        };
        // The servers outrank the state file: what the destination holds now.
        let dinfo = match (m.exists, listed.dst(&m.dest_wire)) {
            (false, _) => None,
            (true, Some((i, _))) => Some(i),
            (true, None) => Some(main.dst.status(&m.dest_wire).on(Side::Destination)?),
        };
        if let Some(d) = &dinfo {
            both.push((info.uid_validity, info.uid_next, d.clone()));
        }
        let mut start_uid = 1;
        let mut index_destination = true;
        let mut retry_uids = Vec::new();
        let mut retry_failures = Vec::new();
        let mut late_appends_until = None;
        let mut prior = None;
        let mut resume_parts = Default::default();
        if let Some(r) = &resume {
            if Some(r.uid_validity) != info.uid_validity {
                self.emit(Event::Warning {
                    message: format!(
                        "folder '{}' changed its UIDVALIDITY since the last run; checking every message against the destination again",
                        m.source
                    ),
                    folder: Some(m.source.clone()),
                });
            } else if let Some(why) = lacking(r, dinfo.as_ref()) {
                self.emit(Event::Warning {
                    message: format!(
                        "destination folder '{}' {why}; checking every message of '{}' against it and copying what is missing",
                        m.dest, m.source
                    ),
                    folder: Some(m.source.clone()),
                });
            } else {
                start_uid = r.last_uid.saturating_add(1);
                // A split folder: what its parts settled beyond the watermark is not copied
                // or counted again.
                resume_parts = super::parts::resume(r.last_uid, &r.parts);
                // Messages that failed last time are tried again.
                retry_uids = r.failures.iter().map(|f| f.uid).collect();
                retry_uids.sort_unstable();
                retry_uids.dedup();
                retry_failures = r.failures.clone();
                let mut p = r.clone();
                if self.opts.flag_sync
                    && !self.opts.dry_run
                    && !self.opts.folders_only
                    && !r.uid_map.is_empty()
                    && let Some(d) = &dinfo
                    && r.dest_uid_validity.is_some()
                    && d.uid_validity == r.dest_uid_validity
                    && let Some(ms) = self.sync_flags(main, m, r, src_modseq)?
                    && let Some(st) = &self.state
                {
                    p.modseq = Some(ms);
                    let _ = st.update(FolderState {
                        modseq: Some(ms),
                        ..r.clone()
                    });
                }
                p.messages = p.messages.saturating_sub(retry_uids.len() as u64);
                p.failed = p.failed.saturating_sub(retry_uids.len() as u64);
                p.failures.clear();
                prior = Some(p);
                // A run stopped mid-folder moments ago: a batch it sent may not have landed
                // yet, so UIDNEXT cannot vouch for anything (see `late`).
                late_appends_until = r.in_flight_at.map(|_| late::settle_deadline());
                // Nothing was appended since the last checkpoint: no need to index.
                if let (Some(v), Some(n), Some(d)) = (r.dest_uid_validity, r.dest_uid_next, &dinfo)
                    && d.uid_validity == Some(v)
                    && d.uid_next == Some(n)
                    && late_appends_until.is_none()
                {
                    index_destination = false;
                }
            }
        }
        let mut only_uids = all_mail.map(|_| Vec::new());
        // The UIDs still to copy, kept for cutting a big folder into parts (no second SEARCH).
        let mut found = Vec::new();
        let (messages, bytes, scan_last_uid) = if info.exists == 0 || self.opts.folders_only {
            (0, 0, 0)
        } else {
            let nothing_new = info
                .uid_next
                .is_some_and(|n| n <= start_uid && start_uid > 1);
            if resume.is_some() && !(nothing_new && retry_uids.is_empty()) {
                // STATUS above did not open the folder.
                main.src.examine(&m.source_wire).on(Side::Source)?;
            }
            let mut uids = retry_uids.clone();
            if !nothing_new {
                let settled: &[(u32, u32)] = &resume_parts.0;
                found = main
                    .src
                    .uids_from(start_uid)
                    .on(Side::Source)?
                    .into_iter()
                    .filter(|u| !settled.iter().any(|(lo, hi)| (*lo..=*hi).contains(u)))
                    .collect();
                uids.extend(&found);
            }
            let (counted, only) = self
                .count_folder(&mut main.src, m, all_mail, &uids, &retry_uids)
                .on(Side::Source)?;
            only_uids = only.or(only_uids);
            counted
        };
        self.emit(Event::FolderFound {
            folder: m.source.clone(),
            destination: m.dest.clone(),
            special_use: m.special_use.clone(),
            create: !m.exists,
            messages,
            bytes,
        });
        Ok(Task {
            messages,
            bytes,
            start_uid,
            // Not only when LIST showed the folder: a folder listed \Noselect (or created
            // meanwhile) may hold mail, and copy indexes only a folder that is not empty.
            index_destination,
            retry_uids,
            retry_failures,
            scan_modseq: src_modseq,
            uid_validity: info.uid_validity,
            scan_last_uid,
            prior,
            map: m.clone(),
            only_uids,
            late_appends_until,
            resume_parts,
            split: None,
            found: if self.opts.jobs > 1 {
                found
            } else {
                Vec::new()
            },
        })
    }

    /// Messages, bytes and the highest UID among `uids` that the date filter takes, read in
    /// windows so a huge folder costs little memory.
    pub(super) fn count(
        &self,
        src: &mut Session,
        uids: &[u32],
    ) -> Result<(u64, u64, u32), ImapError> {
        let (mut n, mut bytes, mut last) = (0u64, 0u64, 0u32);
        for chunk in uids.chunks(WINDOW) {
            for m in src.fetch_meta_set(&uid_set(chunk.iter().copied()))? {
                if self.opts.dates.takes(m.internal_date) {
                    n += 1;
                    bytes += m.size;
                    last = last.max(m.uid);
                }
            }
        }
        Ok((n, bytes, last))
    }
}

/// The UIDVALIDITY recorded for a folder no run could open yet (RFC 3501: a real one is
/// never 0): nothing of it is settled.
const NEVER_OPENED: u32 = 0;

fn never_opened(m: &Mapping) -> FolderState {
    FolderState {
        source: m.source.clone(),
        destination: m.dest.clone(),
        uid_validity: NEVER_OPENED,
        last_uid: 0,
        dest_uid_validity: None,
        dest_uid_next: None,
        messages: 0,
        copied: 0,
        skipped: 0,
        failed: 0,
        bytes: 0,
        status: FolderStatus::Failed,
        failures: Vec::new(),
        held: None,
        uid_map: Default::default(),
        modseq: None,
        in_flight_at: None,
        parts: Vec::new(),
    }
}

/// What one LIST-STATUS per side told, where the server offers it (else STATUS per folder).
struct Listed {
    src: Option<ListStatus>,
    dst: Option<ListStatus>,
}

impl Listed {
    fn src(&self, wire: &str) -> Option<(FolderInfo, Option<u64>)> {
        self.src.as_ref().and_then(|l| l.get(wire).cloned())
    }

    fn dst(&self, wire: &str) -> Option<(FolderInfo, Option<u64>)> {
        self.dst.as_ref().and_then(|l| l.get(wire).cloned())
    }
}

/// Wire names that have a subfolder in `listed`.
fn parents(listed: &[crate::imap::ListedFolder]) -> HashSet<&str> {
    let mut out = HashSet::new();
    for f in listed {
        if let Some(d) = f.delimiter {
            for (i, _) in f.name.match_indices(d) {
                out.insert(&f.name[..i]);
            }
        }
    }
    out
}

impl Engine {
    /// A source folder would not open: is it simply not (or no longer) a mailbox, rather
    /// than a mailbox that failed? Gone from LIST: deleted or renamed since the scan began
    /// (a warning). Listed \Noselect and the server reports no trouble of its own: a node of
    /// the tree (quietly skipped; a warning when an earlier run copied from it). Anything
    /// else, a LIST that fails included, is the folder's failure.
    pub(crate) fn not_a_mailbox(&self, src: &mut Session, m: &Mapping, err: &ImapError) -> bool {
        let Ok(listed) = src.list() else {
            return false;
        };
        let why = match listed.iter().find(|f| f.name == m.source_wire) {
            None => "is no longer on the source (deleted or renamed since the scan began)",
            Some(f) if !f.selectable && !server_trouble(err) => {
                let known = self
                    .state
                    .as_ref()
                    .is_some_and(|s| s.folder(&m.source).is_some());
                if !known {
                    return true;
                }
                "can no longer be opened on the source (it is listed \\Noselect)"
            }
            Some(_) => return false,
        };
        self.emit(Event::Warning {
            message: format!("folder '{}' {why}; nothing is taken from it", m.source),
            folder: Some(m.source.clone()),
        });
        true
    }
}

/// Why the destination folder no longer holds what the state says it does, if it does not.
fn lacking(r: &FolderState, now: Option<&FolderInfo>) -> Option<String> {
    let held = r.held();
    match now {
        None if held > 0 => Some("is gone".to_string()),
        None => None,
        Some(d) if r.dest_uid_validity.is_some() && d.uid_validity != r.dest_uid_validity => {
            Some("was recreated (its UIDVALIDITY changed)".to_string())
        }
        Some(d) if u64::from(d.exists) < held => Some(format!(
            "holds {} messages, fewer than the {held} recorded",
            d.exists
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(copied: u64, held: Option<u64>, dest_uid_validity: Option<u32>) -> FolderState {
        FolderState {
            source: "INBOX".into(),
            destination: "INBOX".into(),
            uid_validity: 1,
            last_uid: 10,
            dest_uid_validity,
            dest_uid_next: Some(11),
            messages: 10,
            copied,
            skipped: 0,
            failed: 0,
            bytes: 0,
            status: FolderStatus::Complete,
            failures: Vec::new(),
            held,
            uid_map: Default::default(),
            modseq: None,
            in_flight_at: None,
            parts: Vec::new(),
        }
    }

    fn now(exists: u32, uid_validity: u32) -> FolderInfo {
        FolderInfo {
            exists,
            uid_next: Some(11),
            uid_validity: Some(uid_validity),
            permanent_flags: None,
        }
    }

    #[test]
    fn the_destination_outranks_the_state() {
        let r = recorded(8, Some(10), Some(5));
        assert_eq!(lacking(&r, Some(&now(10, 5))), None);
        assert_eq!(lacking(&r, Some(&now(12, 5))), None, "more is fine");
        assert!(lacking(&r, Some(&now(9, 5))).is_some_and(|w| w.contains("fewer")));
        assert!(lacking(&r, Some(&now(10, 6))).is_some_and(|w| w.contains("recreated")));
        assert!(lacking(&r, None).is_some_and(|w| w.contains("gone")));
        // An old state file without `held`: what it copied stands in.
        let old = recorded(8, None, None);
        assert_eq!(lacking(&old, Some(&now(8, 7))), None);
        assert!(lacking(&old, Some(&now(7, 7))).is_some());
        // Nothing recorded as held: a missing folder is simply created.
        assert_eq!(lacking(&recorded(0, Some(0), None), None), None);
    }
}
