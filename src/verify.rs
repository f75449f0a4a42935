//! `btsx verify`: does the destination hold every source message? Same connection options,
//! folder mapping and filters as migrate; opens both sides read-only.

use std::time::Instant;

use crate::engine::{Engine, OnSide, Pair, SResult, WINDOW, exit_code_for, uid_set};
use crate::event::{Event, MissingMessage, Phase, Side, VerifyStatus, VerifySummary};
use crate::exit;
use crate::index;
use crate::plan::Mapping;

/// What one folder comparison found.
struct Compared {
    source: u64,
    destination: u64,
    missing: u64,
    extra: u64,
    in_both: u64,
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
            Ok(folders) => {
                let sum = |f: fn(&Compared) -> u64| folders.iter().map(f).sum::<u64>();
                let missing = sum(|c| c.missing);
                let altered = sum(|c| c.altered);
                self.emit(Event::Phase {
                    phase: Phase::Complete,
                });
                VerifySummary {
                    status: if missing == 0 && altered == 0 {
                        VerifyStatus::Ok
                    } else {
                        VerifyStatus::Mismatch
                    },
                    exit_code: if missing == 0 && altered == 0 {
                        exit::OK
                    } else {
                        exit::VERIFY_MISMATCH
                    },
                    folders: folders.len() as u64,
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
                let message = format!("{} server: {}", e.side.label(), e.err.message);
                self.emit(Event::Error {
                    message: message.clone(),
                    folder: None,
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

    fn verify_inner(&self) -> SResult<Vec<Compared>> {
        let mut pair = self.open_pair(true)?;
        self.emit(Event::Phase {
            phase: Phase::ScanningFolders,
        });
        let (folders, warnings) = self.plan_folders(&mut pair)?;
        for (folder, message) in warnings {
            self.emit(Event::Warning {
                message,
                folder: (!folder.is_empty()).then_some(folder),
            });
        }
        let mut out = Vec::new();
        for m in &folders {
            out.push(self.compare_folder(&mut pair, m)?);
        }
        pair.src.logout();
        pair.dst.logout();
        Ok(out)
    }

    fn compare_folder(&self, pair: &mut Pair, m: &Mapping) -> SResult<Compared> {
        // Destination first: everything in the mapped folder (read-only), as a multiset.
        let mut idx = index::Index::default();
        let mut destination = 0u64;
        if m.exists {
            let d = pair.dst.examine(&m.dest_wire).on(Side::Destination)?;
            destination = u64::from(d.exists);
            if d.exists > 0 {
                idx = self
                    .index_destination(&mut pair.dst, d.exists)
                    .on(Side::Destination)?;
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
        let mut missing = Vec::new();
        let (mut altered, mut matched) = (0u64, Vec::new());
        for chunk in uids.chunks(WINDOW) {
            let wanted: std::collections::HashSet<u32> = pair
                .src
                .fetch_meta_set(&uid_set(chunk.iter().copied()))
                .on(Side::Source)?
                .into_iter()
                .filter(|x| {
                    self.options().dates.takes(x.internal_date)
                        && self.options().max_size.is_none_or(|l| x.size <= l)
                })
                .map(|x| x.uid)
                .collect();
            let mut heads = pair
                .src
                .fetch_headers(&uid_set(wanted.iter().copied()))
                .on(Side::Source)?;
            heads.sort_by_key(|h| h.uid);
            for h in heads.iter().filter(|h| wanted.contains(&h.uid)) {
                source += 1;
                if let Some(dst_uid) = idx.take_uid(&index::identity(&h.headers, h.size)) {
                    in_both += 1;
                    if let Some(d) = dst_uid {
                        matched.push((h.uid, d, index::message_id(&h.headers)));
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
        });
        Ok(c)
    }
}
