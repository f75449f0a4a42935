//! Folders that are views of other folders (RFC 6154 special use), as on Gmail: `\All`
//! holds every message once more (and archived messages that are nowhere else), `\Flagged`
//! and `\Important` show messages that live in other folders.
//!
//! By default the views are not copied as folders (their meaning travels as `\Flagged` and
//! `$Important` on the messages), and from `\All` only the messages in no other copied
//! folder are copied, after everything else. A view on the destination is never a target.

use serde::{Deserialize, Serialize};

use super::*;

/// What to do with a source's `\All` folder (`--all-mail`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AllMail {
    /// Copy only the messages that are in no other copied folder (archived ones); views
    /// (`\Flagged`, `\Important`) are not copied as folders.
    #[default]
    ArchivedOnly,
    /// Copy `\All` and the views as ordinary folders.
    Copy,
    /// Copy neither `\All` nor the views.
    Skip,
}

impl AllMail {
    pub fn is_default(&self) -> bool {
        *self == AllMail::ArchivedOnly
    }
}

fn is(special_use: &Option<String>, what: &str) -> bool {
    special_use
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(what))
}

/// A folder whose messages all live in other folders too.
fn is_view(special_use: &Option<String>) -> bool {
    is(special_use, "\\Flagged") || is(special_use, "\\Important")
}

pub(crate) fn is_all(m: &Mapping) -> bool {
    is(&m.special_use, "\\All")
}

/// What the plan needs to know of a destination folder.
struct DestFolder {
    /// The wire name.
    name: String,
    selectable: bool,
    special_use: Option<String>,
}

/// The pure part of [`Engine::apply_views`], given the destination's folders.
fn plan_views(
    mode: AllMail,
    folders: &mut Vec<Mapping>,
    dst_listed: &[DestFolder],
    warnings: &mut Warnings,
) -> Views {
    let mut out = Views {
        destination_views: dst_listed
            .iter()
            .filter(|f| is(&f.special_use, "\\All") || is_view(&f.special_use))
            .map(|f| crate::utf7::decode_lossy(&f.name))
            .collect(),
        ..Views::default()
    };
    let dst_view_wires: Vec<&str> = dst_listed
        .iter()
        .filter(|f| is(&f.special_use, "\\All") || is_view(&f.special_use))
        .map(|f| f.name.as_str())
        .collect();
    let archive = dst_listed
        .iter()
        .find(|f| f.selectable && is(&f.special_use, "\\Archive"));
    let mut kept = Vec::with_capacity(folders.len());
    for mut m in folders.drain(..) {
        let view = mode != AllMail::Copy
            && (is_view(&m.special_use) || (mode == AllMail::Skip && is_all(&m)));
        if view {
            out.views.push(m.source.clone());
            continue;
        }
        if mode == AllMail::ArchivedOnly && is_all(&m) && out.all_mail.is_none() {
            if let Some(a) = archive {
                m.dest_wire = a.name.clone();
                m.dest = crate::utf7::decode_lossy(&a.name);
                m.exists = true;
            } else if dst_view_wires.contains(&m.dest_wire.as_str()) {
                // A Gmail-shaped destination: archived mail must not vanish into its
                // All Mail view, so it gets a folder of its own.
                m.dest = ARCHIVE_FALLBACK.to_string();
                m.dest_wire = ARCHIVE_FALLBACK.to_string();
                m.exists = dst_listed.iter().any(|f| f.name == ARCHIVE_FALLBACK);
            }
            out.all_mail = Some(m);
            continue;
        }
        if dst_view_wires.contains(&m.dest_wire.as_str()) {
            warnings.push((
                m.source.clone(),
                format!(
                    "folder '{}' is not copied: its destination '{}' is a view of other folders there (its messages' flags still travel with them)",
                    m.source, m.dest
                ),
            ));
            out.refused.push(m.source.clone());
            continue;
        }
        kept.push(m);
    }
    // Last: its archived messages are what no other folder copies.
    kept.extend(out.all_mail.clone());
    *folders = kept;
    out
}

/// The keyword (RFC 8457) that says a message is important.
const IMPORTANT: &str = "$Important";

/// (messages, bytes, highest UID looked at).
type Counted = (u64, u64, u32);

/// Where the All Mail pass goes when the planned folder is a view on the destination.
const ARCHIVE_FALLBACK: &str = "Archive";

/// How the plan treats views: reported in one [`Event::Views`].
#[derive(Debug, Default)]
pub(crate) struct Views {
    /// Source folders not copied as folders.
    pub(crate) views: Vec<String>,
    /// The source's `\All` folder, copied archived-only (last in the plan).
    pub(crate) all_mail: Option<Mapping>,
    /// Destination folders that are views, never appended to.
    pub(crate) destination_views: Vec<String>,
    /// Source folders left out because they would land in a destination view.
    pub(crate) refused: Vec<String>,
}

impl Views {
    /// The source folders whose messages All Mail's are compared with.
    pub(crate) fn real_folders(&self, planned: &[Mapping]) -> Vec<String> {
        planned
            .iter()
            .filter(|m| self.all_mail.as_ref() != Some(m))
            .map(|m| m.source_wire.clone())
            .collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.views.is_empty() && self.all_mail.is_none() && self.refused.is_empty()
    }

    /// The event, once the archived messages are counted.
    pub(crate) fn event(&self, archived: Option<(u64, u64)>) -> Event {
        Event::Views {
            views: self.views.clone(),
            all_mail: self.all_mail.as_ref().map(|m| m.source.clone()),
            all_mail_destination: self.all_mail.as_ref().map(|m| m.dest.clone()),
            archived_messages: archived.map(|a| a.0),
            archived_bytes: archived.map(|a| a.1),
            destination_views: self.destination_views.clone(),
            not_copied: self.refused.clone(),
        }
    }
}

impl Engine {
    /// Take the views out of `folders`, move `\All` last (archived-only) and keep every
    /// destination view out of the plan.
    pub(crate) fn apply_views(
        &self,
        dst: &mut Session,
        folders: &mut Vec<Mapping>,
        warnings: &mut Warnings,
    ) -> SResult<Views> {
        let dst_listed: Vec<DestFolder> = dst
            .list()
            .on(Side::Destination)?
            .into_iter()
            .map(|f| DestFolder {
                name: f.name,
                selectable: f.selectable,
                special_use: f.special_use,
            })
            .collect();
        Ok(plan_views(
            self.opts.all_mail,
            folders,
            &dst_listed,
            warnings,
        ))
    }

    /// What a folder's scan counts among `uids`: everything the date filter takes, or for
    /// the All Mail pass (`real`: the other folders) only the archived messages, whose UIDs
    /// come back too.
    pub(crate) fn count_folder(
        &self,
        src: &mut Session,
        m: &Mapping,
        real: Option<&[String]>,
        uids: &[u32],
        retry: &[u32],
    ) -> Result<(Counted, Option<Vec<u32>>), ImapError> {
        match real {
            Some(real) => {
                let (counted, only) =
                    self.count_archived(src, &m.source_wire, real, uids, retry)?;
                Ok((counted, Some(only)))
            }
            None => Ok((self.count(src, uids)?, None)),
        }
    }

    /// The All Mail pass: of `uids` (listed in the `\All` folder `all_wire`), those in no
    /// folder of `real`; `retry` (failed last time) are archived ones already. Content
    /// identity (header hash + size) as a multiset, so a message with two labels is two
    /// members and two messages with equal content are told apart by their counts.
    /// Returns (messages, bytes, highest UID looked at) and the archived UIDs, sorted.
    fn count_archived(
        &self,
        src: &mut Session,
        all_wire: &str,
        real: &[String],
        uids: &[u32],
        retry: &[u32],
    ) -> Result<(Counted, Vec<u32>), ImapError> {
        let new: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| retry.binary_search(u).is_err())
            .collect();
        let mut archived = retry.to_vec();
        let mut looked_at = 0;
        let by_id = if src.caps.gmail && !new.is_empty() {
            match self.archived_by_id(src, all_wire, real, &new) {
                Err(e) if matches!(e.kind, Kind::No | Kind::Bad) => None,
                r => r?,
            }
        } else {
            None
        };
        if let Some(ids) = by_id {
            archived.extend(ids);
            looked_at = new.iter().copied().max().unwrap_or(0);
        } else if !new.is_empty() {
            let mut members = Index::default();
            for wire in real {
                let info = src.examine(wire)?;
                if info.exists > 0 {
                    self.add_members(src, info.exists, &mut members)?;
                }
            }
            src.examine(all_wire)?;
            for chunk in new.chunks(2000) {
                let mut heads = src.fetch_headers(&uid_set(chunk.iter().copied()))?;
                heads.sort_by_key(|h| h.uid);
                for h in heads {
                    if members.take(&index::key(&h.headers, h.size)).is_none() {
                        archived.push(h.uid);
                    }
                }
            }
            looked_at = new.iter().copied().max().unwrap_or(0);
        }
        archived.sort_unstable();
        archived.dedup();
        let (n, bytes, last) = self.count(src, &archived)?;
        Ok(((n, bytes, last.max(looked_at)), archived))
    }

    /// With X-GM-EXT-1, membership by X-GM-MSGID: no headers to fetch and hash, and exact.
    /// `None` when the server did not give every message an id (content identity decides).
    fn archived_by_id(
        &self,
        src: &mut Session,
        all_wire: &str,
        real: &[String],
        new: &[u32],
    ) -> Result<Option<Vec<u32>>, ImapError> {
        let mut members: HashSet<u64> = HashSet::new();
        for wire in real {
            let exists = src.examine(wire)?.exists;
            let mut start = 1u32;
            while start <= exists {
                let end = start.saturating_add(1999).min(exists);
                let ids = src.gmail_ids(&format!("{start}:{end}"), false)?;
                if ids.len() < (end - start + 1) as usize {
                    return Ok(None);
                }
                members.extend(ids.into_iter().map(|(_, id)| id));
                start = end.saturating_add(1);
            }
        }
        src.examine(all_wire)?;
        let mut out = Vec::new();
        for chunk in new.chunks(2000) {
            let mut ids = src.gmail_ids(&uid_set(chunk.iter().copied()), true)?;
            ids.sort_unstable();
            ids.dedup_by_key(|(uid, _)| *uid);
            if ids.len() < chunk.len() {
                return Ok(None);
            }
            out.extend(
                ids.into_iter()
                    .filter(|(_, id)| !members.contains(id))
                    .map(|(uid, _)| uid),
            );
        }
        Ok(Some(out))
    }

    /// Gmail shows "important" as a label (X-GM-LABELS), not a keyword: give those messages
    /// the `$Important` keyword, so the meaning of the Important view travels with them.
    pub(super) fn mark_important(
        &self,
        src: &mut Session,
        task: &Task,
        metas: &mut [MessageMeta],
    ) -> Result<(), ImapError> {
        if metas.is_empty() {
            return Ok(());
        }
        let important = match src.gmail_important(&uid_set(metas.iter().map(|m| m.uid))) {
            Ok(v) => v.into_iter().collect::<HashSet<u32>>(),
            Err(e) if matches!(e.kind, Kind::No | Kind::Bad) => {
                self.emit(Event::Warning {
                    message: format!(
                        "folder '{}': the source did not tell its messages' X-GM-LABELS ({}); \"important\" is not carried over as $Important",
                        task.map.source, e.message
                    ),
                    folder: Some(task.map.source.clone()),
                });
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for m in metas.iter_mut() {
            if important.contains(&m.uid)
                && !m.flags.iter().any(|f| f.eq_ignore_ascii_case(IMPORTANT))
            {
                m.flags.push(IMPORTANT.to_string());
            }
        }
        Ok(())
    }

    /// Add every message of the selected folder to `members`, in sequence chunks so only
    /// the 16-byte keys stay in memory.
    fn add_members(
        &self,
        src: &mut Session,
        exists: u32,
        members: &mut Index,
    ) -> Result<(), ImapError> {
        let chunk = 2000u32;
        let mut start = 1u32;
        while start <= exists {
            let end = start.saturating_add(chunk - 1).min(exists);
            for h in src.fetch_headers_seq(&format!("{start}:{end}"))? {
                // Membership only: no destination UID to remember.
                members.add(index::key(&h.headers, h.size), 0);
            }
            start = end.saturating_add(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(source: &str, dest: &str, su: Option<&str>) -> Mapping {
        Mapping {
            source_wire: source.into(),
            source: source.into(),
            dest_wire: dest.into(),
            dest: dest.into(),
            special_use: su.map(str::to_string),
            exists: false,
        }
    }

    fn gmail() -> Vec<Mapping> {
        vec![
            map("INBOX", "INBOX", None),
            map("[Gmail]/All Mail", "[Gmail].All Mail", Some("\\All")),
            map("[Gmail]/Starred", "[Gmail].Starred", Some("\\Flagged")),
            map(
                "[Gmail]/Important",
                "[Gmail].Important",
                Some("\\Important"),
            ),
            map("Work", "Work", None),
        ]
    }

    fn listed(name: &str, su: Option<&str>) -> DestFolder {
        DestFolder {
            name: name.into(),
            selectable: true,
            special_use: su.map(str::to_string),
        }
    }

    fn sources(v: &[Mapping]) -> Vec<&str> {
        v.iter().map(|m| m.source.as_str()).collect()
    }

    #[test]
    fn archived_only_drops_views_and_puts_all_mail_last_into_archive() {
        let mut f = gmail();
        let mut w = Vec::new();
        let dst = [listed("INBOX", None), listed("Archives", Some("\\Archive"))];
        let v = plan_views(AllMail::ArchivedOnly, &mut f, &dst, &mut w);
        assert_eq!(sources(&f), ["INBOX", "Work", "[Gmail]/All Mail"]);
        assert_eq!(v.views, ["[Gmail]/Starred", "[Gmail]/Important"]);
        let all = v.all_mail.expect("all mail");
        assert_eq!((all.dest.as_str(), all.exists), ("Archives", true));
        assert_eq!(f.last(), Some(&all));
        assert!(w.is_empty());
    }

    #[test]
    fn without_archive_all_mail_keeps_its_planned_name() {
        let mut f = gmail();
        let v = plan_views(AllMail::ArchivedOnly, &mut f, &[], &mut Vec::new());
        assert_eq!(
            v.all_mail.map(|m| m.dest),
            Some("[Gmail].All Mail".to_string())
        );
    }

    #[test]
    fn copy_keeps_everything_and_skip_drops_all_mail_too() {
        let mut f = gmail();
        let v = plan_views(AllMail::Copy, &mut f, &[], &mut Vec::new());
        assert_eq!(f.len(), 5);
        assert!(v.is_empty());
        let mut f = gmail();
        let v = plan_views(AllMail::Skip, &mut f, &[], &mut Vec::new());
        assert_eq!(sources(&f), ["INBOX", "Work"]);
        assert_eq!(v.views.len(), 3);
        assert!(v.all_mail.is_none());
    }

    #[test]
    fn a_destination_view_is_never_a_target() {
        // Gmail to Gmail: the planned names are the destination's views.
        let mut f: Vec<Mapping> = gmail()
            .into_iter()
            .map(|mut m| {
                m.dest_wire = m.source_wire.clone();
                m.dest = m.source.clone();
                m
            })
            .collect();
        let dst = [
            listed("INBOX", None),
            listed("[Gmail]/All Mail", Some("\\All")),
            listed("[Gmail]/Starred", Some("\\Flagged")),
            listed("[Gmail]/Important", Some("\\Important")),
        ];
        let mut w = Vec::new();
        let v = plan_views(AllMail::Copy, &mut f.clone(), &dst, &mut w);
        assert_eq!(
            v.refused,
            ["[Gmail]/All Mail", "[Gmail]/Starred", "[Gmail]/Important"]
        );
        assert_eq!(w.len(), 3);
        assert_eq!(v.destination_views.len(), 3);
        let v = plan_views(AllMail::ArchivedOnly, &mut f, &dst, &mut Vec::new());
        let all = v.all_mail.expect("all mail");
        assert_eq!((all.dest.as_str(), all.exists), (ARCHIVE_FALLBACK, false));
        assert!(v.refused.is_empty());
        assert!(f.iter().all(|m| !m.dest.starts_with("[Gmail]")));
    }
}
