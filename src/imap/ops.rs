//! The operations the engine uses, on the one client: folders, metadata, headers, bodies.

use chrono::{DateTime, FixedOffset};

use super::encode::Command;
use super::error::ImapError;
use super::name::MailboxName;
use super::parse::{Body, Code, Response};
use super::reader::BodySink;
use super::session::{Done, Session};

/// A folder as LIST reports it.
#[derive(Debug, Clone)]
pub struct ListedFolder {
    /// The wire name as a string (see [`MailboxName::wire_string`]); what the engine maps.
    pub name: String,
    /// The exact bytes and the decoded name.
    pub mailbox: MailboxName,
    pub delimiter: Option<char>,
    pub selectable: bool,
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`, `\All`, `\Flagged`, `\Important`.
    pub special_use: Option<String>,
    /// The attributes as sent (`\HasChildren`, `\Subscribed`, …).
    pub attributes: Vec<String>,
}

/// What SELECT / EXAMINE / STATUS tell about a folder.
#[derive(Debug, Clone, Default)]
pub struct FolderInfo {
    pub exists: u32,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    /// PERMANENTFLAGS; `None` when the server sent none (everything allowed).
    pub permanent_flags: Option<Vec<String>>,
}

impl FolderInfo {
    /// May a message be stored with this flag or keyword?
    pub fn accepts_flag(&self, flag: &str) -> bool {
        match &self.permanent_flags {
            None => true,
            Some(list) => {
                flag.starts_with('\\')
                    || list
                        .iter()
                        .any(|f| f == "\\*" || f.eq_ignore_ascii_case(flag))
            }
        }
    }
}

/// Size, flags and date of one message.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    pub uid: u32,
    pub size: u64,
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<FixedOffset>>,
}

/// The header fields that identify a message, as the server returned them.
#[derive(Debug, Clone)]
pub struct MessageHeaders {
    pub uid: u32,
    pub size: u64,
    pub headers: Vec<u8>,
}

/// One message read back by [`Session::fetch_hashes`].
#[derive(Debug, Clone)]
pub struct FetchedHash {
    pub uid: u32,
    pub internal_date: Option<DateTime<FixedOffset>>,
    pub hash: crate::digest::ContentHash,
}

/// What `delete_messages` could do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Expunged(u64),
    /// Marked \Deleted but not expunged: other messages were marked too and the server has
    /// no UIDPLUS.
    MarkedOnly(u64),
}

/// A fetched batch of bodies, all in one buffer.
pub struct Bodies {
    data: Vec<u8>,
    items: Vec<(u32, usize, usize)>,
}

impl Bodies {
    /// Give the buffer back for the next batch.
    pub fn into_buffer(self) -> Vec<u8> {
        self.data
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.items
            .iter()
            .filter_map(|&(uid, start, len)| Some((uid, self.data.get(start..start + len)?)))
    }
}

const SPECIAL_USE: [&str; 8] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
    // RFC 8457; Gmail's "Important" view.
    "\\Important",
];

impl Session {
    /// The personal namespace: (prefix, separator).
    pub fn personal_namespace(&mut self) -> Result<Option<(String, Option<char>)>, ImapError> {
        if !self.caps.namespace {
            return Ok(None);
        }
        let mut out = None;
        self.run(Command::new("NAMESPACE"), None, |r| {
            if let Response::Namespace([personal, _, _]) = r
                && let Some(first) = personal.into_iter().next()
            {
                out = Some((
                    String::from_utf8_lossy(&first.prefix).into_owned(),
                    first.delimiter,
                ));
            }
        })?;
        Ok(out)
    }

    pub fn list(&mut self) -> Result<Vec<ListedFolder>, ImapError> {
        // RETURN options are LIST-EXTENDED syntax (RFC 5258); never send them without it.
        let cmd = if self.caps.special_use && self.caps.list_extended {
            Command::new("LIST \"\" \"*\" RETURN (SPECIAL-USE)")
        } else {
            Command::new("LIST \"\" \"*\"")
        };
        let utf8 = false;
        let mut out = Vec::new();
        self.run(cmd, None, |r| {
            let Response::List(item) = r else { return };
            if item.lsub {
                return;
            }
            let has = |a: &str| item.attributes.iter().any(|x| x.eq_ignore_ascii_case(a));
            let selectable = !has("\\Noselect") && !has("\\NonExistent");
            let special_use = SPECIAL_USE.iter().find(|s| has(s)).map(|s| s.to_string());
            let mailbox = MailboxName::from_wire(&item.name, utf8);
            out.push(ListedFolder {
                name: mailbox.wire_string(),
                mailbox,
                delimiter: item.delimiter,
                selectable,
                special_use,
                attributes: item.attributes,
            });
        })?;
        Ok(out)
    }

    /// Wire names of the subscribed folders.
    pub fn subscribed(&mut self) -> Result<Vec<String>, ImapError> {
        let mut out = Vec::new();
        self.run(Command::new("LSUB \"\" \"*\""), None, |r| {
            if let Response::List(item) = r
                && item.lsub
            {
                out.push(String::from_utf8_lossy(&item.name).into_owned());
            }
        })?;
        Ok(out)
    }

    pub fn status(&mut self, name: impl AsRef<[u8]>) -> Result<FolderInfo, ImapError> {
        let cmd = Command::new("STATUS")
            .astring(name.as_ref())
            .raw(" (MESSAGES UIDNEXT UIDVALIDITY)");
        let mut info = FolderInfo::default();
        // One STATUS is in flight, so its answer is ours whatever spelling the server
        // echoes the name in.
        self.run(cmd, None, |r| {
            if let Response::Status(_, s) = r {
                info.exists = s.messages.unwrap_or(0);
                info.uid_next = s.uid_next;
                info.uid_validity = s.uid_validity;
            }
        })?;
        Ok(info)
    }

    /// Open read-only: migrate never changes the source.
    pub fn examine(&mut self, name: impl AsRef<[u8]>) -> Result<FolderInfo, ImapError> {
        self.open_folder("EXAMINE", name.as_ref())
    }

    pub fn select(&mut self, name: impl AsRef<[u8]>) -> Result<FolderInfo, ImapError> {
        self.open_folder("SELECT", name.as_ref())
    }

    fn open_folder(&mut self, verb: &str, name: &[u8]) -> Result<FolderInfo, ImapError> {
        let mut info = FolderInfo::default();
        self.run(Command::new(verb).astring(name), None, |r| match r {
            Response::Exists(n) => info.exists = n,
            Response::Untagged(s) => match s.code {
                Some(Code::UidValidity(v)) => info.uid_validity = Some(v),
                Some(Code::UidNext(v)) => info.uid_next = Some(v),
                Some(Code::PermanentFlags(f)) => info.permanent_flags = Some(f),
                _ => {}
            },
            _ => {}
        })?;
        if info.permanent_flags.as_ref().is_some_and(Vec::is_empty) {
            info.permanent_flags = None;
        }
        Ok(info)
    }

    /// The UIDs ≥ `from_uid`, ascending: 4 bytes a message, so a folder can then be walked
    /// in windows.
    pub fn uids_from(&mut self, from_uid: u32) -> Result<Vec<u32>, ImapError> {
        let from = from_uid.max(1);
        let mut out = Vec::new();
        let cmd = Command::new("UID FETCH").raw(&format!(" {from}:* (UID)"));
        self.run(cmd, None, |r| {
            // "N:*" also matches the highest UID when it is below N.
            if let Response::Fetch(_, f) = r
                && let Some(uid) = f.uid.filter(|u| *u >= from)
            {
                out.push(uid);
            }
        })?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// UID, size, flags and date of the messages in a UID set, in UID order.
    pub fn fetch_meta_set(&mut self, uids: &str) -> Result<Vec<MessageMeta>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let cmd =
            Command::new("UID FETCH").raw(&format!(" {uids} (UID RFC822.SIZE FLAGS INTERNALDATE)"));
        self.metas(cmd)
    }

    /// The answers of a metadata FETCH, in UID order (dates only where asked for).
    fn metas(&mut self, cmd: Command<'_>) -> Result<Vec<MessageMeta>, ImapError> {
        let mut out: Vec<MessageMeta> = Vec::new();
        self.run(cmd, None, |r| {
            let Response::Fetch(_, f) = r else { return };
            // A FETCH without UID or size is an unsolicited flag update, not our answer.
            let (Some(uid), Some(size)) = (f.uid, f.size) else {
                return;
            };
            out.push(MessageMeta {
                uid,
                size,
                flags: f
                    .flags
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|x| !x.eq_ignore_ascii_case("\\Recent") && x != "\\*")
                    .collect(),
                internal_date: f.internal_date.as_deref().and_then(parse_date),
            });
        })?;
        out.sort_by_key(|m| m.uid);
        out.dedup_by_key(|m| m.uid);
        Ok(out)
    }

    /// The identifying header fields (see [`crate::index`]) of the messages in `uids`.
    pub fn fetch_headers(&mut self, uids: &str) -> Result<Vec<MessageHeaders>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.headers(&format!("UID FETCH {uids}"))
    }

    /// Like [`Session::fetch_headers`], by sequence numbers (for chunking a whole folder).
    pub fn fetch_headers_seq(&mut self, seqs: &str) -> Result<Vec<MessageHeaders>, ImapError> {
        self.headers(&format!("FETCH {seqs}"))
    }

    fn headers(&mut self, fetch: &str) -> Result<Vec<MessageHeaders>, ImapError> {
        let cmd = Command::new(fetch).raw(&format!(
            " (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({})])",
            crate::index::KEY_HEADERS.join(" ")
        ));
        let mut out = Vec::new();
        self.run(cmd, None, |r| {
            let Response::Fetch(_, f) = r else { return };
            let Some(uid) = f.uid else { return };
            let Some(Body::Inline(h)) = f.section("BODY[HEADER") else {
                return;
            };
            out.push(MessageHeaders {
                uid,
                size: f.size.unwrap_or(0),
                headers: h.to_vec(),
            });
        })?;
        Ok(out)
    }

    /// Fetch whole messages: the reader streams each body literal straight into one buffer
    /// sized from the expected total (a huge message costs its size once).
    ///
    /// `buf` is reused (cleared) so a worker keeps one batch-sized allocation rather than
    /// churning the allocator; `expected` (the sizes from the scan) presizes it.
    pub fn fetch_bodies(
        &mut self,
        uids: &str,
        buf: Vec<u8>,
        expected: usize,
    ) -> Result<Bodies, ImapError> {
        self.fetch_sections(uids, buf, expected, false)
    }

    /// Like [`Session::fetch_bodies`] with `BINARY.PEEK[]` (RFC 3516): the bytes as stored,
    /// NULs included, where `BODY[]` may alter them.
    pub fn fetch_bodies_binary(
        &mut self,
        uids: &str,
        buf: Vec<u8>,
        expected: usize,
    ) -> Result<Bodies, ImapError> {
        self.fetch_sections(uids, buf, expected, true)
    }

    fn fetch_sections(
        &mut self,
        uids: &str,
        mut buf: Vec<u8>,
        expected: usize,
        binary: bool,
    ) -> Result<Bodies, ImapError> {
        let item = if binary {
            "BINARY.PEEK[]"
        } else {
            "BODY.PEEK[]"
        };
        let cmd = Command::new("UID FETCH").raw(&format!(" {uids} (UID {item})"));
        buf.clear();
        buf.reserve_exact(expected);
        let mut items = Vec::new();
        let want = if binary { "BINARY[]" } else { "BODY[]" };
        self.run(cmd, Some(&mut buf), |r| {
            let Response::Fetch(_, f) = r else { return };
            let Some(uid) = f.uid else { return };
            if let Some(Body::External(start, len)) = f.section(want) {
                items.push((uid, *start, *len));
            }
        })?;
        let mut bodies = Bodies { data: buf, items };
        if !binary && self.caps.binary {
            self.restore_nuls(&mut bodies)?;
        }
        Ok(bodies)
    }

    /// Fetch one message's body (`BODY.PEEK[]`) and hand it to `sink` piece by piece as it
    /// arrives: a giant message is never held whole (see `engine::stream`). False when the
    /// source did not return it (expunged meanwhile). On an error mid-literal (the sink's
    /// or the wire's) this session is out of step and must be dropped.
    pub(crate) fn fetch_streamed(
        &mut self,
        uid: u32,
        sink: &mut dyn BodySink,
    ) -> Result<bool, ImapError> {
        let cmd = Command::new("UID FETCH").raw(&format!(" {uid} (UID BODY.PEEK[])"));
        let mut got = false;
        self.run(cmd, Some(sink), |r| {
            if let Response::Fetch(_, f) = r
                && f.uid == Some(uid)
                && matches!(f.section("BODY[]"), Some(Body::External(..)))
            {
                got = true;
            }
        })?;
        Ok(got)
    }

    /// The INTERNALDATE and content hash of each message in `uids` (UID FETCH), for the
    /// proof (issue 15). Each body is hashed piece by piece as it arrives: memory does not
    /// grow with the count or the size of the messages.
    /// Messages the server does not return are absent from the answer.
    ///
    /// `BODY.PEEK[]`, as the copy reads the source (with the same NUL repair where the
    /// server offers BINARY): `BINARY.PEEK[]` alone is not the stored bytes (Dovecot decodes
    /// every part's Content-Transfer-Encoding in it), so it cannot be compared with what
    /// was sent.
    pub fn fetch_hashes(&mut self, uids: &str) -> Result<Vec<FetchedHash>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let tag = self.tag();
        let cmd = Command::new("UID FETCH").raw(&format!(" {uids} (UID INTERNALDATE BODY.PEEK[])"));
        let mut wire = Vec::new();
        let mut done = Done::new();
        self.send(&tag, cmd, &mut wire, &mut done, &mut |_| {})?;
        self.write(&wire)?;
        self.flush()?;
        let addr = self.addr.clone();
        let mut out = Vec::new();
        // Bodies with a stray 0x80 (maybe a NUL served by Dovecot): read again below.
        let mut suspects = Vec::new();
        let mut body = HashSink::default();
        while !done.contains_key(&tag) {
            body.reset();
            let got = self.next(Some(&mut body), |r| match r {
                Response::Tagged(t, s) => {
                    done.insert(t, s);
                    Ok(None)
                }
                Response::Continue(_) => Err(ImapError::new(
                    super::error::Kind::Protocol,
                    format!("{addr}: unexpected continuation request"),
                )),
                Response::Fetch(_, f) => Ok(match (f.uid, f.section("BODY[]")) {
                    (Some(uid), Some(Body::External(..))) => {
                        Some((uid, f.internal_date.as_deref().and_then(parse_date)))
                    }
                    _ => None,
                }),
                _ => Ok(None),
            })??;
            if let Some((uid, internal_date)) = got
                && body.bodies == 1
            {
                // A giant message is not read again: it was copied as BODY[] gave it
                // (streamed, see `engine::stream`), so that is what its copy must match.
                if self.caps.binary && body.stray_0x80 && body.hasher.size() <= REREAD_MAX {
                    suspects.push(out.len());
                }
                out.push(FetchedHash {
                    uid,
                    internal_date,
                    hash: body.hasher.finish(),
                });
            }
        }
        let r = done
            .remove(&tag)
            .ok_or_else(|| ImapError::new(super::error::Kind::Protocol, "answer lost"))?;
        if r.status != super::parse::Status::Ok {
            return Err(ImapError::from_status(&r, &self.addr));
        }
        // Rare: read those again as the copy does (BODY[] with its NULs restored).
        for i in suspects {
            let uid = out[i].uid;
            let again = self.fetch_bodies(&uid.to_string(), Vec::new(), 0)?;
            if let Some((_, bytes)) = again.iter().find(|(u, _)| *u == uid) {
                out[i].hash = crate::digest::ContentHash::of(bytes);
            }
        }
        Ok(out)
    }

    /// Dovecot serves a NUL byte as 0x80 in `BODY[]`; `BINARY[]` (RFC 3516) has the stored
    /// bytes. For each body with a 0x80 byte that is not part of a UTF-8 character, fetch `BINARY.PEEK[]` and take it when it is
    /// the same message with NULs where `BODY[]` had 0x80 — and nothing else changed (for a
    /// message with encoded parts `BINARY[]` decodes them, and then `BODY[]` stays).
    fn restore_nuls(&mut self, bodies: &mut Bodies) -> Result<(), ImapError> {
        let suspects: Vec<(u32, usize, usize)> = bodies
            .items
            .iter()
            .copied()
            .filter(|&(_, start, len)| {
                bodies
                    .data
                    .get(start..start + len)
                    .is_some_and(has_stray_0x80)
            })
            .collect();
        if suspects.is_empty() {
            return Ok(());
        }
        let set = crate::engine::uid_set(suspects.iter().map(|s| s.0));
        let total: usize = suspects.iter().map(|s| s.2).sum();
        let exact = match self.fetch_sections(&set, Vec::new(), total, true) {
            Ok(b) => b,
            // A server may refuse BINARY for some messages ([UNKNOWN-CTE]); keep BODY[].
            Err(e) if matches!(e.kind, super::error::Kind::No | super::error::Kind::Bad) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for (uid, raw) in exact.iter() {
            let Some(&(_, start, len)) = suspects.iter().find(|s| s.0 == uid) else {
                continue;
            };
            let Some(seen) = bodies.data.get_mut(start..start + len) else {
                continue;
            };
            let same_but_nuls = raw.len() == seen.len()
                && seen
                    .iter()
                    .zip(raw)
                    .all(|(a, b)| a == b || (*a == 0x80 && *b == 0));
            if same_but_nuls {
                seen.copy_from_slice(raw);
            }
        }
        Ok(())
    }

    /// Delete `uids` from `folder` (opened read-write for this): mark \Deleted, then
    /// UID EXPUNGE with UIDPLUS; without it, EXPUNGE only when no other message is marked
    /// \Deleted (a plain EXPUNGE would take the user's own marked messages too).
    pub fn delete_messages(
        &mut self,
        folder: impl AsRef<[u8]>,
        uids: &[u32],
    ) -> Result<DeleteOutcome, ImapError> {
        if uids.is_empty() {
            return Ok(DeleteOutcome::Expunged(0));
        }
        self.select(folder)?;
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        for chunk in sorted.chunks(1000) {
            let set = crate::engine::uid_set(chunk.iter().copied());
            let cmd = Command::new("UID STORE").raw(&format!(" {set} +FLAGS.SILENT (\\Deleted)"));
            self.run(cmd, None, |_| {})?;
        }
        let mut expunged = 0u64;
        let mut count = |r: Response<'_>| {
            if matches!(r, Response::Expunge(_)) {
                expunged += 1;
            }
        };
        if self.caps.uidplus {
            for chunk in sorted.chunks(1000) {
                let set = crate::engine::uid_set(chunk.iter().copied());
                self.run(
                    Command::new("UID EXPUNGE").raw(&format!(" {set}")),
                    None,
                    &mut count,
                )?;
            }
            return Ok(DeleteOutcome::Expunged(expunged));
        }
        let mut marked = Vec::new();
        self.run(Command::new("UID SEARCH DELETED"), None, |r| {
            if let Response::Search(v) = r {
                marked.extend(v);
            }
        })?;
        let ours: std::collections::HashSet<u32> = sorted.iter().copied().collect();
        if marked.iter().all(|u| ours.contains(u)) {
            self.run(Command::new("EXPUNGE"), None, &mut count)?;
            Ok(DeleteOutcome::Expunged(expunged))
        } else {
            Ok(DeleteOutcome::MarkedOnly(sorted.len() as u64))
        }
    }

    /// CREATE; a folder that already exists is success.
    pub fn create(&mut self, name: impl AsRef<[u8]>) -> Result<(), ImapError> {
        created(
            self.run(Command::new("CREATE").astring(name.as_ref()), None, |_| {})
                .map(|_| ()),
        )
    }

    /// CREATE each of `names` in one round trip: each one's outcome as [`Session::create`]'s.
    pub fn create_all(&mut self, names: &[&[u8]]) -> Result<Vec<Result<(), ImapError>>, ImapError> {
        let cmds = names
            .iter()
            .map(|n| Command::new("CREATE").astring(n))
            .collect();
        Ok(self.run_all(cmds)?.into_iter().map(created).collect())
    }

    /// SUBSCRIBE each of `names` in one round trip.
    pub fn subscribe_all(
        &mut self,
        names: &[&[u8]],
    ) -> Result<Vec<Result<(), ImapError>>, ImapError> {
        let cmds = names
            .iter()
            .map(|n| Command::new("SUBSCRIBE").astring(n))
            .collect();
        self.run_all(cmds)
    }

    pub fn subscribe(&mut self, name: impl AsRef<[u8]>) -> Result<(), ImapError> {
        self.run(
            Command::new("SUBSCRIBE").astring(name.as_ref()),
            None,
            |_| {},
        )
        .map(|_| ())
    }

    pub fn unsubscribe(&mut self, name: impl AsRef<[u8]>) -> Result<(), ImapError> {
        self.run(
            Command::new("UNSUBSCRIBE").astring(name.as_ref()),
            None,
            |_| {},
        )
        .map(|_| ())
    }

    /// Gmail (`X-GM-EXT-1`): (UID, X-GM-MSGID) of the messages in `set` (UIDs when
    /// `by_uid`, else sequence numbers). The id is the same in every folder a message is in.
    pub fn gmail_ids(&mut self, set: &str, by_uid: bool) -> Result<Vec<(u32, u64)>, ImapError> {
        let verb = if by_uid { "UID FETCH" } else { "FETCH" };
        let cmd = Command::new(verb).raw(&format!(" {set} (UID X-GM-MSGID)"));
        let mut out = Vec::new();
        self.run(cmd, None, |r| {
            if let Response::Fetch(_, f) = r
                && let (Some(uid), Some(id)) = (f.uid, f.gm_msgid)
            {
                out.push((uid, id));
            }
        })?;
        Ok(out)
    }

    /// Gmail (`X-GM-EXT-1`): the UIDs in `uids` whose X-GM-LABELS hold `\Important` (Gmail
    /// shows "important" as a label, not as a keyword).
    pub fn gmail_important(&mut self, uids: &str) -> Result<Vec<u32>, ImapError> {
        let cmd = Command::new("UID FETCH").raw(&format!(" {uids} (UID X-GM-LABELS)"));
        let mut out = Vec::new();
        self.run(cmd, None, |r| {
            if let Response::Fetch(_, f) = r
                && f.gm_important
                && let Some(uid) = f.uid
            {
                out.push(uid);
            }
        })?;
        Ok(out)
    }
}

/// Bodies larger than this are hashed as `BODY[]` gives them, never read again whole.
const REREAD_MAX: u64 = 16 << 20;

/// Hashes one body as it streams in (for [`Session::fetch_hashes`]).
#[derive(Default)]
struct HashSink {
    hasher: crate::digest::Hasher,
    /// Bodies begun since the last reset (one per FETCH response, or it is not ours).
    bodies: usize,
    /// A chunk held a 0x80 byte outside a UTF-8 character (a character cut between two
    /// chunks may look like one: then the message is merely read again).
    stray_0x80: bool,
}

impl HashSink {
    fn reset(&mut self) {
        *self = HashSink::default();
    }
}

impl BodySink for HashSink {
    fn begin(&mut self, _n: usize) -> Result<usize, ImapError> {
        self.bodies += 1;
        Ok(0)
    }
    fn chunk(&mut self, data: &[u8]) -> Result<(), ImapError> {
        self.hasher.update(data);
        self.stray_0x80 |= has_stray_0x80(data);
        Ok(())
    }
}

/// A 0x80 byte that is not a continuation byte of a valid UTF-8 character: what a NUL
/// served by Dovecot looks like (UTF-8 text has 0x80 only inside characters such as '’').
fn has_stray_0x80(b: &[u8]) -> bool {
    memchr::memchr_iter(0x80, b).any(|i| {
        // The character holding byte i starts at most 3 bytes before it.
        !(1..=3).any(|back| {
            let Some(start) = i.checked_sub(back) else {
                return false;
            };
            let len = match b[start] {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF4 => 4,
                _ => return false,
            };
            start + len > i
                && b.get(start..start + len)
                    .is_some_and(|c| std::str::from_utf8(c).is_ok())
        })
    })
}

/// `"17-Jul-1996 02:44:25 -0700"` (the day may be space-padded).
fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z").ok()
}

/// What LIST-STATUS tells: wire name → (status, HIGHESTMODSEQ).
pub type ListStatus = std::collections::HashMap<String, (FolderInfo, Option<u64>)>;

/// Commands for the servers-outrank-the-state checks and flag sync (issue 11).
impl Session {
    /// DELETE a folder (the same-mailbox probe).
    pub fn delete_folder(&mut self, name: impl AsRef<[u8]>) -> Result<(), ImapError> {
        self.run(Command::new("DELETE").astring(name.as_ref()), None, |_| {})
            .map(|_| ())
    }

    /// HIGHESTMODSEQ of a folder (CONDSTORE); `None` when the server does not keep one.
    pub fn highest_modseq(&mut self, name: impl AsRef<[u8]>) -> Result<Option<u64>, ImapError> {
        let cmd = Command::new("STATUS")
            .astring(name.as_ref())
            .raw(" (HIGHESTMODSEQ)");
        let mut out = None;
        match self.run(cmd, None, |r| {
            if let Response::Status(_, s) = r {
                out = s.highest_modseq;
            }
        }) {
            Ok(_) => Ok(out),
            Err(e) if matches!(e.kind, super::Kind::No | super::Kind::Bad) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replace the flags of `uids` (a UID set) in the selected folder.
    pub fn store_flags(&mut self, uids: &str, flags: &[String]) -> Result<(), ImapError> {
        let cmd =
            Command::new("UID STORE").raw(&format!(" {uids} FLAGS.SILENT ({})", flags.join(" ")));
        self.run(cmd, None, |_| {}).map(|_| ())
    }

    /// UID, size and flags of the messages of the selected folder whose flags changed since
    /// `modseq` (CONDSTORE CHANGEDSINCE): the cost follows the changes, not the folder.
    pub fn changed_since(&mut self, modseq: u64) -> Result<Vec<MessageMeta>, ImapError> {
        let cmd = Command::new("UID FETCH").raw(&format!(
            " 1:* (UID RFC822.SIZE FLAGS) (CHANGEDSINCE {modseq})"
        ));
        self.metas(cmd)
    }

    /// Every folder's STATUS in one command (LIST-STATUS, RFC 5819), with HIGHESTMODSEQ;
    /// wire name → (status, HIGHESTMODSEQ). `None` when the server does not offer it.
    pub fn list_status(&mut self) -> Result<Option<ListStatus>, ImapError> {
        if !self.caps.list_status {
            return Ok(None);
        }
        let cmd = Command::new(
            "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))",
        );
        let mut out = ListStatus::new();
        match self.run(cmd, None, |r| {
            if let Response::Status(name, s) = r {
                let info = FolderInfo {
                    exists: s.messages.unwrap_or(0),
                    uid_next: s.uid_next,
                    uid_validity: s.uid_validity,
                    permanent_flags: None,
                };
                out.insert(
                    MailboxName::from_wire(&name, false).wire_string(),
                    (info, s.highest_modseq),
                );
            }
        }) {
            Ok(_) => Ok(Some(out)),
            Err(e) if matches!(e.kind, super::Kind::No | super::Kind::Bad) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A CREATE's answer: a folder that exists already is as good as created.
fn created(r: Result<(), ImapError>) -> Result<(), ImapError> {
    match r {
        Err(e) if e.code == Some(Code::AlreadyExists) => Ok(()),
        // Servers without RFC 5530 codes say it in words.
        Err(e) if e.code.is_none() && e.message.to_ascii_lowercase().contains("already exists") => {
            Ok(())
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_0x80_outside_utf8_characters_is_suspect() {
        assert!(!has_stray_0x80("it’s — fine".as_bytes()));
        assert!(has_stray_0x80(b"nul\x80here"));
        assert!(has_stray_0x80(b"\x80"));
        assert!(has_stray_0x80(&[b'a', 0xE2, 0x80]));
        assert!(!has_stray_0x80(b"plain"));
    }

    #[test]
    fn dates_parse_with_padded_days() {
        assert!(parse_date(" 7-Jul-1996 02:44:25 -0700").is_some());
        assert!(parse_date("17-Jul-1996 02:44:25 +0000").is_some());
        assert!(parse_date("garbage").is_none());
    }
}
