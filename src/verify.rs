//! `btsx verify`: does the destination hold every source message? Same connection options,
//! folder mapping and filters as migrate; opens both sides read-only.

use std::collections::HashMap;
use std::time::Instant;

use crate::engine::{Engine, OnSide, Op, Pair, SResult, WINDOW, exit_code_for, uid_set};
use crate::event::{
    DifferingMessage, Event, MissingMessage, Phase, Side, VerifyStatus, VerifySummary,
};
use crate::exit;
use crate::imap::{ImapError, MessageMeta, Session};
use crate::index;
use crate::plan::Mapping;

/// What one folder comparison found.
struct Compared {
    source: u64,
    destination: u64,
    missing: u64,
    extra: u64,
    in_both: u64,
    flags_differ: u64,
    date_differ: u64,
    /// `--deep`: copies whose content, date or flags differ.
    altered: u64,
}

impl Engine {
    pub fn verify(&self) -> VerifySummary {
        let started = Instant::now();
        self.emit_start("verify");
        self.emit_warnings();
        self.emit(Event::Phase {
            phase: Phase::Initializing,
        });
        let result = self.verify_inner();
        let summary = match result {
            Ok((folders, failed)) => {
                let sum = |f: fn(&Compared) -> u64| folders.iter().map(f).sum::<u64>();
                let missing = sum(|c| c.missing);
                let flags_differ = sum(|c| c.flags_differ);
                let date_differ = sum(|c| c.date_differ);
                let altered = sum(|c| c.altered);
                let alike = missing == 0 && flags_differ == 0 && date_differ == 0 && altered == 0;
                self.emit(Event::Phase {
                    phase: Phase::Complete,
                });
                // Missing mail outranks a folder that could not be compared.
                let (status, exit_code) = if !alike {
                    (VerifyStatus::Mismatch, exit::VERIFY_MISMATCH)
                } else if failed > 0 {
                    (VerifyStatus::Partial, exit::PARTIAL)
                } else {
                    (VerifyStatus::Ok, exit::OK)
                };
                VerifySummary {
                    flags_differ,
                    date_differ,
                    status,
                    exit_code,
                    folders: folders.len() as u64,
                    folders_failed: failed,
                    source_messages: sum(|c| c.source),
                    destination_messages: sum(|c| c.destination),
                    missing,
                    extra: sum(|c| c.extra),
                    altered,
                    source_clean: sum(|c| c.in_both) == 0,
                    duration_ms: started.elapsed().as_millis() as u64,
                    error: None,
                }
            }
            Err(e) => {
                let (message, side) = e.describe();
                self.emit(Event::Error {
                    message: message.clone(),
                    folder: None,
                    side,
                });
                self.emit(Event::Phase {
                    phase: Phase::Error,
                });
                let mut s = VerifySummary::early_error(message, exit_code_for(&e.err));
                s.duration_ms = started.elapsed().as_millis() as u64;
                s
            }
        };
        self.emit(Event::VerifySummary(summary.clone()));
        summary
    }

    /// The folders compared, and how many could not be.
    fn verify_inner(&self) -> SResult<(Vec<Compared>, u64)> {
        let mut pair = self.open_pair(true)?;
        self.emit(Event::Phase {
            phase: Phase::ScanningFolders,
        });
        let (mut folders, mut warnings) = self.plan_folders(&mut pair)?;
        let views = self.apply_views(&mut pair.dst, &mut folders, &mut warnings)?;
        if let Some(all) = &views.all_mail {
            // Its archived messages are spread over the destination: not comparable as a folder.
            folders.retain(|m| m != all);
            warnings.push((
                all.source.clone(),
                format!(
                    "'{}' is not compared: with --all-mail archived-only the destination holds only its archived messages (--all-mail copy compares it as a folder)",
                    all.source
                ),
            ));
        }
        if !views.is_empty() {
            self.emit(views.event(None));
        }
        for (folder, message) in warnings {
            self.emit(Event::Warning {
                message,
                folder: (!folder.is_empty()).then_some(folder),
            });
        }
        let mut out = Vec::new();
        let mut failed = 0u64;
        for m in &folders {
            // One folder that cannot be opened, or keeps breaking the session, is reported;
            // the others are compared.
            let e = match self.for_folder(&mut pair, Op::Open, |p| self.compare_folder(p, m))? {
                Ok(c) => {
                    out.push(c);
                    continue;
                }
                Err(e) => e,
            };
            if e.side == Side::Source
                && !e.err.is_recoverable()
                && self.not_a_mailbox(&mut pair.src, m, &e.err)
            {
                continue;
            }
            failed += 1;
            self.emit(Event::Error {
                message: format!(
                    "folder '{}' could not be verified: {} server: {}",
                    m.source,
                    e.side.label(),
                    e.err.message
                ),
                folder: Some(m.source.clone()),
                side: Some(e.side),
            });
        }
        pair.src.logout();
        pair.dst.logout();
        Ok((out, failed))
    }

    fn compare_folder(&self, pair: &mut Pair, m: &Mapping) -> SResult<Compared> {
        // Destination first: everything in the mapped folder (read-only), as a multiset
        // of keys, each copy with its flags and date.
        let mut idx = Copies::default();
        let mut destination = 0u64;
        if m.exists {
            let d = pair.dst.examine(&m.dest_wire).on(Side::Destination)?;
            destination = u64::from(d.exists);
            if d.exists > 0 {
                idx = copies(&mut pair.dst, d.exists).on(Side::Destination)?;
            }
        }
        // Then the source, window by window: the messages a migrate with these filters would
        // copy, each claimed from the multiset or counted missing.
        let info = pair.src.examine(&m.source_wire).on(Side::Source)?;
        let uids = if info.exists == 0 {
            Vec::new()
        } else {
            pair.src.uids_from(1).on(Side::Source)?
        };
        let (mut source, mut in_both, mut missing_count) = (0u64, 0u64, 0u64);
        let (mut flags_differ, mut date_differ) = (0u64, 0u64);
        let mut missing = Vec::new();
        let mut differing = Vec::new();
        let (mut altered, mut matched) = (0u64, Vec::new());
        for chunk in uids.chunks(WINDOW) {
            let wanted: HashMap<u32, Look> = pair
                .src
                .fetch_meta_set(&uid_set(chunk.iter().copied()))
                .on(Side::Source)?
                .into_iter()
                .filter(|x| {
                    self.options().dates.takes(x.internal_date)
                        && self.options().max_size.is_none_or(|l| x.size <= l)
                })
                .map(|x| (x.uid, look(&x)))
                .collect();
            let mut heads = pair
                .src
                .fetch_headers(&uid_set(wanted.keys().copied()))
                .on(Side::Source)?;
            heads.sort_by_key(|h| h.uid);
            for h in heads.iter() {
                let Some(want) = wanted.get(&h.uid) else {
                    continue;
                };
                source += 1;
                if let Some((dst_uid, got)) = idx.take(&index::identity(&h.headers, h.size), want) {
                    in_both += 1;
                    matched.push((h.uid, dst_uid, index::message_id(&h.headers)));
                    flags_differ += u64::from(got.flags != want.flags);
                    date_differ += u64::from(got.date != want.date);
                    if got != *want && differing.len() < 20 {
                        differing.push(DifferingMessage {
                            uid: h.uid,
                            message_id: index::message_id(&h.headers),
                            source_flags: want.flags.clone(),
                            destination_flags: got.flags,
                            date_differs: got.date != want.date,
                        });
                    }
                } else {
                    missing_count += 1;
                    if missing.len() < 20 {
                        missing.push(MissingMessage {
                            uid: h.uid,
                            message_id: index::message_id(&h.headers),
                            size: h.size,
                        });
                    }
                }
            }
            if self.options().deep {
                altered += self.deep_compare(pair, m, &matched)?;
            }
            matched.clear();
        }
        let c = Compared {
            source,
            destination,
            missing: missing_count,
            extra: destination.saturating_sub(in_both),
            in_both,
            flags_differ,
            date_differ,
            altered,
        };
        self.emit(Event::VerifyFolder {
            folder: m.source.clone(),
            destination: m.dest.clone(),
            source_messages: c.source,
            destination_messages: c.destination,
            missing: c.missing,
            extra: c.extra,
            in_both: c.in_both,
            altered: c.altered,
            missing_messages: missing,
            flags_differ: c.flags_differ,
            date_differ: c.date_differ,
            differing_messages: differing,
        });
        Ok(c)
    }
}

/// What a user sees of a message besides its content: flags (without \Recent, sorted) and
/// arrival date (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Look {
    flags: Vec<String>,
    date: Option<i64>,
}

fn look(m: &MessageMeta) -> Look {
    let mut flags: Vec<String> = m
        .flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect();
    flags.sort();
    flags.dedup();
    Look {
        flags,
        date: m.internal_date.map(|d| d.timestamp()),
    }
}

/// The destination folder as a multiset of identities, each copy with its UID and look.
#[derive(Default)]
struct Copies(HashMap<index::Key, Vec<(u32, Look)>>);

impl Copies {
    /// Claim a copy of `k`: one that looks like `want` if there is one.
    fn take(&mut self, k: &index::Key, want: &Look) -> Option<(u32, Look)> {
        let v = self.0.get_mut(k)?;
        let at = v.iter().position(|(_, l)| l == want).unwrap_or(0);
        (!v.is_empty()).then(|| v.swap_remove(at))
    }
}

/// Read the selected destination folder: identities from the header fields, looks from FLAGS and
/// INTERNALDATE, in chunks so memory stays bounded by the folder's size in keys.
fn copies(dst: &mut Session, exists: u32) -> Result<Copies, ImapError> {
    let mut out = Copies::default();
    let chunk = 2000u32;
    let mut start = 1u32;
    while start <= exists {
        let end = start.saturating_add(chunk - 1).min(exists);
        let heads = dst.fetch_headers_seq(&format!("{start}:{end}"))?;
        let looks: HashMap<u32, Look> = dst
            .fetch_meta_set(&uid_set(heads.iter().map(|h| h.uid)))?
            .iter()
            .map(|m| (m.uid, look(m)))
            .collect();
        for h in heads {
            let l = looks.get(&h.uid).cloned().unwrap_or(Look {
                flags: Vec::new(),
                date: None,
            });
            out.0
                .entry(index::identity(&h.headers, h.size))
                .or_default()
                .push((h.uid, l));
        }
        start = end.saturating_add(1);
    }
    Ok(out)
}
