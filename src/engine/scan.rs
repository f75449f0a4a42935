//! Scanning: which source folders there are, where they go, and what is new in each.

use super::*;

impl Engine {
    /// LIST both sides and map every selected source folder to its destination.
    pub(crate) fn plan_folders(&self, main: &mut Pair) -> SResult<(Vec<Mapping>, Warnings)> {
        let src_ns = namespace(&mut main.src).on(Side::Source)?;
        let dst_ns = namespace(&mut main.dst).on(Side::Destination)?;
        let listed = main.src.list().on(Side::Source)?;
        let src_ns = fill_separator(src_ns, &listed);
        let dst_listed = main.dst.list().on(Side::Destination)?;
        let dst_ns = fill_separator(dst_ns, &dst_listed);
        let sources: Vec<SourceFolder> = listed
            .iter()
            .filter(|f| f.selectable)
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
        let plan = plan::plan(&sources, &src_ns, &dst_ns, &existing, &self.opts.folder_map);
        let folders = plan
            .folders
            .into_iter()
            .filter(|m| self.opts.folders.takes(&m.source))
            .collect();
        let warnings = plan
            .warnings
            .into_iter()
            .filter(|(folder, _)| folder.is_empty() || self.opts.folders.takes(folder))
            .collect();
        Ok((folders, warnings))
    }

    pub(super) fn scan(&self, main: &mut Pair) -> SResult<(Vec<Task>, Warnings)> {
        let (mut folders, mut warnings) = self.plan_folders(main)?;
        let views = self.apply_views(&mut main.dst, &mut folders, &mut warnings)?;
        let real = views.real_folders(&folders);
        let mut archived = None;
        let mut tasks = Vec::new();
        for m in folders {
            if self.cancelled() {
                break;
            }
            let resume = self.state.as_ref().and_then(|s| s.folder(&m.source));
            // A folder the state knows: STATUS tells whether anything is new, without
            // opening it (a no-change run is then one command per folder).
            let info = match &resume {
                Some(_) => main.src.status(&m.source_wire).on(Side::Source)?,
                None => main.src.examine(&m.source_wire).on(Side::Source)?,
            };
            let mut start_uid = 1;
            let mut index_destination = true;
            let mut retry_uids = Vec::new();
            let mut prior = None;
            if let Some(r) = &resume {
                if Some(r.uid_validity) == info.uid_validity {
                    start_uid = r.last_uid.saturating_add(1);
                    // Messages that failed last time are tried again.
                    retry_uids = r.failures.iter().map(|f| f.uid).collect();
                    retry_uids.sort_unstable();
                    retry_uids.dedup();
                    let mut p = r.clone();
                    p.messages = p.messages.saturating_sub(retry_uids.len() as u64);
                    p.failed = p.failed.saturating_sub(retry_uids.len() as u64);
                    p.failures.clear();
                    prior = Some(p);
                    let nothing_new =
                        retry_uids.is_empty() && info.uid_next.is_some_and(|n| n <= start_uid);
                    // Nothing was appended since the last checkpoint: no need to index.
                    if m.exists
                        && !nothing_new
                        && let (Some(v), Some(n)) = (r.dest_uid_validity, r.dest_uid_next)
                        && let Ok(st) = main.dst.status(&m.dest_wire)
                        && st.uid_validity == Some(v)
                        && st.uid_next == Some(n)
                    {
                        index_destination = false;
                    }
                } else {
                    self.emit(Event::Warning {
                        message: format!(
                            "folder '{}' changed its UIDVALIDITY since the last run; checking every message against the destination again",
                            m.source
                        ),
                        folder: Some(m.source.clone()),
                    });
                }
            }
            // The All Mail pass: membership over the real folders decides what it copies.
            let all_mail = (views.all_mail.as_ref() == Some(&m)).then_some(real.as_slice());
            let mut only_uids = all_mail.map(|_| Vec::new());
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
                    uids.extend(main.src.uids_from(start_uid).on(Side::Source)?);
                }
                let (counted, only) = self
                    .count_folder(&mut main.src, &m, all_mail, &uids, &retry_uids)
                    .on(Side::Source)?;
                only_uids = only.or(only_uids);
                counted
            };
            if all_mail.is_some() {
                archived = Some((messages, bytes));
            }
            self.emit(Event::FolderFound {
                folder: m.source.clone(),
                destination: m.dest.clone(),
                special_use: m.special_use.clone(),
                create: !m.exists,
                messages,
                bytes,
            });
            tasks.push(Task {
                messages,
                bytes,
                start_uid,
                index_destination: index_destination && m.exists,
                retry_uids,
                uid_validity: info.uid_validity,
                scan_last_uid,
                prior,
                map: m,
                only_uids,
            });
        }
        if !views.is_empty() {
            self.emit(views.event(archived));
        }
        Ok((tasks, warnings))
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
