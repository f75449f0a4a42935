//! One logged-in IMAP connection, with the handful of operations the engine needs.
//!
//! Everything the engine sees is our own types; the `imap` crate stays inside this module,
//! so the wire library can be swapped without touching the engine.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};
use imap::types::Flag;
use imap_proto::NameAttribute;

use super::error::{ImapError, Kind, from_crate, truncate};
use super::wire::{Timeouts, TlsOptions, Wire};
use crate::endpoint::Endpoint;
use crate::event::ConnState;
use crate::secret::{Secret, SecretSource};

/// How to log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub auth: Auth,
}

#[derive(Debug, Clone)]
pub enum Auth {
    Password(Secret),
    /// An OAuth2 access token, fetched again on every connect so an external refresher can
    /// keep it fresh.
    OAuth2(SecretSource),
}

/// What the server can do that changes how we talk to it.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    /// LITERAL+ (any size) — APPENDs can be pipelined without waiting for "+".
    pub literal_plus: bool,
    /// LITERAL- — non-synchronizing literals up to 4096 bytes.
    pub literal_minus: bool,
    pub uidplus: bool,
    pub special_use: bool,
    pub namespace: bool,
    /// APPENDLIMIT=N: the largest message the server accepts.
    pub append_limit: Option<u64>,
    /// MULTIAPPEND (RFC 3502): many messages in one APPEND, stored in one transaction.
    pub multiappend: bool,
}

impl Caps {
    fn from_list(caps: &[String]) -> Caps {
        let has = |c: &str| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
        Caps {
            literal_plus: has("LITERAL+"),
            literal_minus: has("LITERAL-"),
            uidplus: has("UIDPLUS"),
            multiappend: has("MULTIAPPEND"),
            special_use: has("SPECIAL-USE"),
            namespace: has("NAMESPACE"),
            append_limit: caps.iter().find_map(|c| {
                let (k, v) = c.split_once('=')?;
                if k.eq_ignore_ascii_case("APPENDLIMIT") {
                    v.parse().ok()
                } else {
                    None
                }
            }),
        }
    }
}

/// A folder as LIST reports it. `name` is the wire (modified UTF-7) name.
#[derive(Debug, Clone)]
pub struct ListedFolder {
    pub name: String,
    pub delimiter: Option<char>,
    pub selectable: bool,
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`, `\All`, `\Flagged`.
    pub special_use: Option<String>,
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

/// One message to append.
pub struct AppendItem<'a> {
    pub body: &'a [u8],
    pub flags: &'a [String],
    pub date: Option<DateTime<FixedOffset>>,
}

/// The destination's answer to one APPEND.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// Stored; the new UID (for a MULTIAPPEND, the highest of the batch) with UIDPLUS.
    Stored(Option<u32>),
    /// NO or BAD for this message alone.
    Refused(String),
    /// A MULTIAPPEND was refused as a whole (it is all or nothing): nothing of the batch was
    /// stored, and which message the server objected to is unknown.
    BatchRefused(String),
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

/// APPENDs written but not yet answered.
#[must_use]
pub struct Pending {
    tags: Vec<String>,
    done: HashMap<String, AppendOutcome>,
    /// One MULTIAPPEND covering this many messages (under `tags[0]`).
    multi: Option<usize>,
    /// The APPENDUID set of each answered tag, in order (a MULTIAPPEND's gives each message
    /// its own UID).
    uid_sets: HashMap<String, Vec<u32>>,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.tags.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

pub struct Session {
    imap: imap::Session<Wire>,
    wire: Wire,
    addr: String,
    pub caps: Caps,
    next_tag: u64,
}

/// Send state changes to the caller (connecting, connected, authenticating, authenticated).
pub type StateFn<'a> = &'a mut dyn FnMut(ConnState);

impl Session {
    pub fn open(
        ep: &Endpoint,
        creds: &Credentials,
        tls: &TlsOptions,
        timeouts: Timeouts,
        on_state: StateFn<'_>,
    ) -> Result<Session, ImapError> {
        let addr = ep.display_addr();
        on_state(ConnState::Connecting);
        let (wire, greeting) = Wire::connect(ep, tls, timeouts)?;
        on_state(ConnState::Connected);
        let mut client = imap::Client::new(wire.clone());
        // The greeting was read by `Wire::connect`.
        client.greeting_read = true;
        on_state(ConnState::Authenticating);
        let session = if greeting.starts_with(b"* PREAUTH") {
            return Err(ImapError::new(
                Kind::Auth,
                format!("{addr} pre-authenticated the connection; btsx needs a login"),
            ));
        } else {
            let caps = client
                .capabilities()
                .map_err(|e| from_crate(e, &addr))?
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(" ");
            let result = match &creds.auth {
                Auth::Password(secret) => {
                    if caps.contains("LOGINDISABLED") {
                        let plain = PlainAuth {
                            user: creds.user.clone(),
                            secret: secret.clone(),
                        };
                        client.authenticate("PLAIN", &plain)
                    } else {
                        client.login(&creds.user, secret.expose())
                    }
                }
                Auth::OAuth2(source) => {
                    let token = crate::secret::resolve(source).map_err(|e| {
                        ImapError::new(Kind::Auth, format!("no OAuth2 token for {addr}: {e}"))
                    })?;
                    let mech = if caps.contains("XOAUTH2") {
                        "XOAUTH2"
                    } else if caps.contains("OAUTHBEARER") {
                        "OAUTHBEARER"
                    } else {
                        return Err(ImapError::new(
                            Kind::Auth,
                            format!(
                                "{addr} offers neither XOAUTH2 nor OAUTHBEARER; use a password (an app password) instead of a token"
                            ),
                        ));
                    };
                    let auth = OAuthAuth {
                        mechanism: mech,
                        user: creds.user.clone(),
                        host: ep.host.clone(),
                        port: ep.port,
                        token,
                    };
                    client.authenticate(mech, &auth)
                }
            };
            match result {
                Ok(s) => s,
                Err((e, _)) => {
                    let e = from_crate(e, &addr);
                    // RFC 5530: the server cannot check credentials right now; try again.
                    if e.message.to_ascii_uppercase().contains("[UNAVAILABLE]") {
                        return Err(ImapError::new(
                            Kind::Dropped,
                            format!(
                                "{addr} cannot log anyone in right now: {}",
                                truncate(&e.message, 120)
                            ),
                        ));
                    }
                    if matches!(e.kind, Kind::No | Kind::Bad | Kind::OverQuota) {
                        return Err(ImapError::new(
                            Kind::Auth,
                            format!(
                                "authentication failed for '{}' at {addr}: {} (check the user name and password)",
                                creds.user,
                                truncate(&e.message, 120)
                            ),
                        ));
                    }
                    return Err(e);
                }
            }
        };
        on_state(ConnState::Authenticated);
        let mut s = Session {
            imap: session,
            wire,
            addr,
            caps: Caps::default(),
            next_tag: 0,
        };
        let caps = s.capability_list()?;
        s.caps = Caps::from_list(&caps);
        Ok(s)
    }

    fn err(&self, e: imap::Error) -> ImapError {
        from_crate(e, &self.addr)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn capability_list(&mut self) -> Result<Vec<String>, ImapError> {
        let lines = self.raw("CAPABILITY")?;
        Ok(lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .filter_map(|l| l.strip_prefix("* CAPABILITY ").map(str::to_string))
            .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect())
    }

    /// Run a simple command (no literals sent) on our own path and return its untagged
    /// lines. For responses the crate's parser does not know (NAMESPACE, ESEARCH …): an
    /// unknown untagged line would desynchronise its session.
    fn raw(&mut self, cmd: &str) -> Result<Vec<Vec<u8>>, ImapError> {
        let tag = self.tag();
        self.write(format!("{tag} {cmd}\r\n").as_bytes())?;
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            self.wire
                .read_line(&mut line)
                .map_err(|e| ImapError::io(e, &self.addr))?;
            while let Some(n) = trailing_literal(&line) {
                self.wire
                    .read_exact_into(&mut line, n)
                    .and_then(|_| self.wire.read_line(&mut line))
                    .map_err(|e| ImapError::io(e, &self.addr))?;
            }
            if let Some(done) = self.completion(&line, &tag) {
                return done.map(|()| lines);
            }
            lines.push(line);
        }
    }

    /// The personal namespace: (prefix, separator).
    pub fn personal_namespace(&mut self) -> Result<Option<(String, Option<char>)>, ImapError> {
        if !self.caps.namespace {
            return Ok(None);
        }
        let lines = self.raw("NAMESPACE")?;
        Ok(lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .find_map(|l| l.strip_prefix("* NAMESPACE ").map(str::to_string))
            .and_then(|l| parse_personal_namespace(&l)))
    }

    pub fn list(&mut self) -> Result<Vec<ListedFolder>, ImapError> {
        // The crate inserts the pattern verbatim, which lets us add the RFC 6154 return option.
        let pattern = if self.caps.special_use {
            "\"*\" RETURN (SPECIAL-USE)"
        } else {
            "\"*\""
        };
        let names = self
            .imap
            .list(Some(""), Some(pattern))
            .map_err(|e| from_crate(e, &self.addr))?;
        let mut out = Vec::new();
        for n in names.iter() {
            let mut selectable = true;
            let mut special_use = None;
            for a in n.attributes() {
                match a {
                    NameAttribute::NoSelect => selectable = false,
                    NameAttribute::Extension(x) if x.eq_ignore_ascii_case("\\NonExistent") => {
                        selectable = false
                    }
                    NameAttribute::All => special_use = Some("\\All".to_string()),
                    NameAttribute::Archive => special_use = Some("\\Archive".to_string()),
                    NameAttribute::Drafts => special_use = Some("\\Drafts".to_string()),
                    NameAttribute::Flagged => special_use = Some("\\Flagged".to_string()),
                    NameAttribute::Junk => special_use = Some("\\Junk".to_string()),
                    NameAttribute::Sent => special_use = Some("\\Sent".to_string()),
                    NameAttribute::Trash => special_use = Some("\\Trash".to_string()),
                    _ => {}
                }
            }
            out.push(ListedFolder {
                name: n.name().to_string(),
                delimiter: n.delimiter().and_then(|d| d.chars().next()),
                selectable,
                special_use,
            });
        }
        Ok(out)
    }

    /// Wire names of the subscribed folders.
    pub fn subscribed(&mut self) -> Result<Vec<String>, ImapError> {
        let names = self
            .imap
            .lsub(Some(""), Some("\"*\""))
            .map_err(|e| from_crate(e, &self.addr))?;
        Ok(names.iter().map(|n| n.name().to_string()).collect())
    }

    pub fn status(&mut self, name: &str) -> Result<FolderInfo, ImapError> {
        let m = self
            .imap
            .status(name, "(MESSAGES UIDNEXT UIDVALIDITY)")
            .map_err(|e| from_crate(e, &self.addr))?;
        Ok(FolderInfo {
            exists: m.exists,
            uid_next: m.uid_next,
            uid_validity: m.uid_validity,
            permanent_flags: None,
        })
    }

    /// Open read-only: migrate never changes the source.
    pub fn examine(&mut self, name: &str) -> Result<FolderInfo, ImapError> {
        let m = self.imap.examine(name).map_err(|e| self.err(e))?;
        Ok(folder_info(&m))
    }

    pub fn select(&mut self, name: &str) -> Result<FolderInfo, ImapError> {
        let m = self.imap.select(name).map_err(|e| self.err(e))?;
        Ok(folder_info(&m))
    }

    /// The UIDs ≥ `from_uid`, ascending: 4 bytes a message, so a folder can then be walked
    /// in windows. Read on our own path, line by line.
    pub fn uids_from(&mut self, from_uid: u32) -> Result<Vec<u32>, ImapError> {
        let from = from_uid.max(1);
        let tag = self.tag();
        self.write(format!("{tag} UID FETCH {from}:* (UID)\r\n").as_bytes())?;
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            self.wire
                .read_line(&mut line)
                .map_err(|e| ImapError::io(e, &self.addr))?;
            while let Some(n) = trailing_literal(&line) {
                let mut skip = Vec::new();
                self.wire
                    .read_exact_into(&mut skip, n)
                    .and_then(|_| self.wire.read_line(&mut line))
                    .map_err(|e| ImapError::io(e, &self.addr))?;
            }
            if let Some(done) = self.completion(&line, &tag) {
                done?;
                break;
            }
            if line.windows(7).any(|w| w.eq_ignore_ascii_case(b" FETCH ")) {
                // "N:*" also matches the highest UID when it is below N.
                if let Some(uid) = find_uid(&line).filter(|u| *u >= from) {
                    out.push(uid);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// UID, size, flags and date of the messages in a UID set, in UID order.
    pub fn fetch_meta_set(&mut self, uids: &str) -> Result<Vec<MessageMeta>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let fetches = self
            .imap
            .uid_fetch(uids, "(UID RFC822.SIZE FLAGS INTERNALDATE)")
            .map_err(|e| from_crate(e, &self.addr))?;
        let mut out: Vec<MessageMeta> = fetches
            .iter()
            .filter_map(|f| {
                Some(MessageMeta {
                    uid: f.uid?,
                    size: f.size.map(u64::from).unwrap_or(0),
                    flags: f.flags().iter().filter_map(flag_name).collect(),
                    internal_date: f.internal_date(),
                })
            })
            .collect();
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// The identifying header fields (see [`crate::index`]) of the messages in `uids`.
    pub fn fetch_headers(&mut self, uids: &str) -> Result<Vec<MessageHeaders>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let fetches = self
            .imap
            .uid_fetch(uids, header_query())
            .map_err(|e| from_crate(e, &self.addr))?;
        Ok(headers_of(&fetches))
    }

    /// Like [`Session::fetch_headers`], by sequence numbers (for chunking a whole folder).
    pub fn fetch_headers_seq(&mut self, seqs: &str) -> Result<Vec<MessageHeaders>, ImapError> {
        let fetches = self
            .imap
            .fetch(seqs, header_query())
            .map_err(|e| from_crate(e, &self.addr))?;
        Ok(headers_of(&fetches))
    }

    /// Fetch whole messages on our own path: the crate re-parses a response from its start
    /// after every line, which costs more CPU than the copy itself on big literals. Bodies land
    /// in one buffer sized from the literal lengths (a huge message costs its size once).
    ///
    /// `buf` is reused (cleared) so a worker keeps one batch-sized allocation rather than
    /// churning the allocator; `expected` (the sizes from the scan) presizes it.
    pub fn fetch_bodies(
        &mut self,
        uids: &str,
        mut buf: Vec<u8>,
        expected: usize,
    ) -> Result<Bodies, ImapError> {
        let tag = self.tag();
        self.write(format!("{tag} UID FETCH {uids} (UID BODY.PEEK[])\r\n").as_bytes())?;
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        let io = |e| ImapError::io(e, &self.addr);
        buf.clear();
        buf.reserve_exact(expected);
        let mut data = buf;
        let mut items = Vec::new();
        loop {
            let mut line = Vec::new();
            self.wire.read_line(&mut line).map_err(io)?;
            if let Some(done) = self.completion(&line, &tag) {
                return done.map(|()| Bodies { data, items });
            }
            // "* N FETCH (UID x BODY[] {n}" literal ")" — UID may come before or after.
            let mut uid = find_uid(&line);
            let mut body: Option<(usize, usize)> = None;
            while let Some(n) = trailing_literal(&line) {
                let is_body = line_ends_with_body_literal(&line);
                let start = data.len();
                if is_body {
                    data.reserve_exact(n);
                    self.wire.read_exact_into(&mut data, n).map_err(io)?;
                    body = Some((start, n));
                } else {
                    let mut skip = Vec::new();
                    self.wire.read_exact_into(&mut skip, n).map_err(io)?;
                }
                line.clear();
                self.wire.read_line(&mut line).map_err(io)?;
                if uid.is_none() {
                    uid = find_uid(&line);
                }
            }
            if let (Some(uid), Some((start, len))) = (uid, body) {
                items.push((uid, start, len));
            }
        }
    }

    /// Delete `uids` from `folder` (opened read-write for this): mark \Deleted, then
    /// UID EXPUNGE with UIDPLUS; without it, EXPUNGE only when no other message is marked
    /// \Deleted (a plain EXPUNGE would take the user's own marked messages too).
    /// Returns how many were expunged.
    pub fn delete_messages(
        &mut self,
        folder: &str,
        uids: &[u32],
    ) -> Result<DeleteOutcome, ImapError> {
        if uids.is_empty() {
            return Ok(DeleteOutcome::Expunged(0));
        }
        self.imap
            .select(folder)
            .map_err(|e| from_crate(e, &self.addr))?;
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        for chunk in sorted.chunks(1000) {
            let set = crate::engine::uid_set(chunk.iter().copied());
            self.imap
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .map_err(|e| from_crate(e, &self.addr))?;
        }
        if self.caps.uidplus {
            let mut n = 0;
            for chunk in sorted.chunks(1000) {
                let set = crate::engine::uid_set(chunk.iter().copied());
                let d = self
                    .imap
                    .uid_expunge(&set)
                    .map_err(|e| from_crate(e, &self.addr))?;
                n += d.seqs().count() as u64;
            }
            return Ok(DeleteOutcome::Expunged(n));
        }
        let marked = self
            .imap
            .uid_search("DELETED")
            .map_err(|e| from_crate(e, &self.addr))?;
        let ours: std::collections::HashSet<u32> = sorted.iter().copied().collect();
        if marked.iter().all(|u| ours.contains(u)) {
            let d = self.imap.expunge().map_err(|e| from_crate(e, &self.addr))?;
            Ok(DeleteOutcome::Expunged(d.seqs().count() as u64))
        } else {
            Ok(DeleteOutcome::MarkedOnly(sorted.len() as u64))
        }
    }

    pub fn create(&mut self, name: &str) -> Result<(), ImapError> {
        match self.imap.create(name) {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = self.err(e);
                let lower = e.message.to_ascii_lowercase();
                if e.kind == Kind::No
                    && (lower.contains("alreadyexists") || lower.contains("already exists"))
                {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    pub fn subscribe(&mut self, name: &str) -> Result<(), ImapError> {
        self.imap.subscribe(name).map_err(|e| self.err(e))
    }

    pub fn logout(mut self) {
        let _ = self.imap.logout();
    }

    /// Drop a session that is out of step; nothing more is read from it.
    pub fn abandon(self) {
        self.wire.shutdown();
    }

    /// Is `line` the end of the command tagged `tag` (its OK, NO or BAD), or a BYE? `None`
    /// for any other line.
    fn completion(&self, line: &[u8], tag: &str) -> Option<Result<(), ImapError>> {
        if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
            let text = String::from_utf8_lossy(&line[tag.len() + 1..])
                .trim_end()
                .to_string();
            let (status, info) = text.split_once(' ').unwrap_or((&text, ""));
            return Some(match status.to_ascii_uppercase().as_str() {
                "OK" => Ok(()),
                "NO" => Err(ImapError::new(Kind::No, info.to_string())),
                _ => Err(ImapError::new(Kind::Bad, info.to_string())),
            });
        }
        if line.starts_with(b"* BYE") {
            return Some(Err(ImapError::new(
                Kind::Dropped,
                format!(
                    "{} closed the session: {}",
                    self.addr,
                    String::from_utf8_lossy(&line[5..]).trim()
                ),
            )));
        }
        None
    }

    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("B{}", self.next_tag)
    }

    /// Write APPENDs for `items` into `mailbox` (wire name). With LITERAL+ nothing is read
    /// until [`Session::append_finish`], so the server works while we fetch the next batch.
    pub fn append_send(
        &mut self,
        mailbox: &str,
        items: &[AppendItem<'_>],
    ) -> Result<Pending, ImapError> {
        if items.len() > 1 && self.caps.multiappend && self.caps.literal_plus {
            return self.multiappend_send(mailbox, items);
        }
        let mut pending = Pending {
            tags: Vec::with_capacity(items.len()),
            done: HashMap::new(),
            multi: None,
            uid_sets: HashMap::new(),
        };
        let mbox = astring(mailbox);
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        for item in items {
            let tag = self.tag();
            let (flags, date) = append_args(item);
            let n = item.body.len();
            let sync = !(self.caps.literal_plus || (self.caps.literal_minus && n <= 4096));
            let plus = if sync { "" } else { "+" };
            out.extend_from_slice(
                format!("{tag} APPEND {mbox} ({flags}){date} {{{n}{plus}}}\r\n").as_bytes(),
            );
            if sync {
                self.write(&out)?;
                out.clear();
                self.wait_continuation(&tag, &mut pending)?;
                if pending.done.contains_key(&tag) {
                    // Refused before the literal was sent (e.g. too large).
                    pending.tags.push(tag);
                    continue;
                }
            }
            if out.len() + n > 256 * 1024 {
                self.write(&out)?;
                out.clear();
                self.write(item.body)?;
            } else {
                out.extend_from_slice(item.body);
            }
            out.extend_from_slice(b"\r\n");
            pending.tags.push(tag);
        }
        self.write(&out)?;
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        Ok(pending)
    }

    /// One APPEND carrying every message (RFC 3502 with LITERAL+): the server stores the
    /// batch in one transaction, several times faster than one APPEND per message.
    fn multiappend_send(
        &mut self,
        mailbox: &str,
        items: &[AppendItem<'_>],
    ) -> Result<Pending, ImapError> {
        let tag = self.tag();
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(format!("{tag} APPEND {}", astring(mailbox)).as_bytes());
        for item in items {
            let (flags, date) = append_args(item);
            let n = item.body.len();
            out.extend_from_slice(format!(" ({flags}){date} {{{n}+}}\r\n").as_bytes());
            if out.len() + n > 256 * 1024 {
                self.write(&out)?;
                out.clear();
                self.write(item.body)?;
            } else {
                out.extend_from_slice(item.body);
            }
        }
        out.extend_from_slice(b"\r\n");
        self.write(&out)?;
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        Ok(Pending {
            tags: vec![tag],
            done: HashMap::new(),
            multi: Some(items.len()),
            uid_sets: HashMap::new(),
        })
    }

    /// Read the answers to every APPEND in `pending`, one outcome per message, in order.
    pub fn append_finish(&mut self, mut pending: Pending) -> Result<Vec<AppendOutcome>, ImapError> {
        if let Some(n) = pending.multi {
            let tag = pending.tags[0].clone();
            while !pending.done.contains_key(&tag) {
                self.read_response_line(&mut pending, None)?;
            }
            let outcome = match pending.done.remove(&tag) {
                Some(AppendOutcome::Refused(why)) => AppendOutcome::BatchRefused(why),
                Some(o) => o,
                None => AppendOutcome::BatchRefused("no answer".into()),
            };
            // RFC 4315: the UID set lists the new UIDs in the order the messages were sent.
            if let (AppendOutcome::Stored(_), Some(set)) = (&outcome, pending.uid_sets.get(&tag))
                && set.len() == n
            {
                return Ok(set
                    .iter()
                    .map(|u| AppendOutcome::Stored(Some(*u)))
                    .collect());
            }
            return Ok(vec![outcome; n]);
        }
        let wanted: Vec<String> = pending.tags.clone();
        for tag in &wanted {
            while !pending.done.contains_key(tag) {
                self.read_response_line(&mut pending, None)?;
            }
        }
        Ok(wanted
            .iter()
            .map(|t| {
                pending
                    .done
                    .remove(t)
                    .unwrap_or(AppendOutcome::Refused("no answer".into()))
            })
            .collect())
    }

    fn write(&self, data: &[u8]) -> Result<(), ImapError> {
        self.wire
            .write_all(data)
            .map_err(|e| ImapError::io(e, &self.addr))
    }

    fn wait_continuation(&mut self, tag: &str, pending: &mut Pending) -> Result<(), ImapError> {
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        loop {
            if self.read_response_line(pending, Some(tag))? {
                return Ok(());
            }
            if pending.done.contains_key(tag) {
                return Ok(());
            }
        }
    }

    /// Read one response. Returns true for a continuation ("+") when `want_cont` is set.
    fn read_response_line(
        &mut self,
        pending: &mut Pending,
        want_cont: Option<&str>,
    ) -> Result<bool, ImapError> {
        let mut line = Vec::new();
        self.wire
            .read_line(&mut line)
            .map_err(|e| ImapError::io(e, &self.addr))?;
        // An untagged response may carry literals; skip them whole.
        while let Some(n) = trailing_literal(&line) {
            line.clear();
            let mut sink = Vec::new();
            self.wire
                .read_exact_into(&mut sink, n)
                .map_err(|e| ImapError::io(e, &self.addr))?;
            self.wire
                .read_line(&mut line)
                .map_err(|e| ImapError::io(e, &self.addr))?;
        }
        if line.starts_with(b"+") {
            if want_cont.is_some() {
                return Ok(true);
            }
            return Err(ImapError::new(
                Kind::Protocol,
                format!("{}: unexpected continuation request", self.addr),
            ));
        }
        if line.starts_with(b"* BYE") {
            return Err(ImapError::new(
                Kind::Dropped,
                format!(
                    "{} closed the session: {}",
                    self.addr,
                    String::from_utf8_lossy(&line[5..]).trim()
                ),
            ));
        }
        if line.starts_with(b"*") {
            return Ok(false);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let (tag, rest) = text.split_once(' ').unwrap_or((text, ""));
        if !tag.starts_with('B') {
            return Err(ImapError::new(
                Kind::Protocol,
                format!(
                    "{}: unexpected response '{}'",
                    self.addr,
                    truncate(text, 80)
                ),
            ));
        }
        let (status, info) = rest.split_once(' ').unwrap_or((rest, ""));
        // APPENDUID belongs to UIDPLUS: a server that does not offer it is not believed.
        let outcome = if status.eq_ignore_ascii_case("OK") && !self.caps.uidplus {
            AppendOutcome::Stored(None)
        } else if status.eq_ignore_ascii_case("OK") {
            pending
                .uid_sets
                .insert(tag.to_string(), parse_appenduid_set(info));
            AppendOutcome::Stored(parse_appenduid(info))
        } else if info.to_ascii_uppercase().contains("OVERQUOTA")
            || info.to_ascii_lowercase().contains("quota exceeded")
        {
            return Err(ImapError::new(
                Kind::OverQuota,
                format!(
                    "the destination {} is over quota: {}",
                    self.addr,
                    truncate(info, 120)
                ),
            ));
        } else {
            AppendOutcome::Refused(truncate(info, 200))
        };
        pending.done.insert(tag.to_string(), outcome);
        Ok(false)
    }

    // --- proof (issue 15): reading copies back, on the raw path ---

    /// The INTERNALDATE and content hash of each message in `uids` (UID FETCH), hashed as
    /// its literal streams in: memory stays at one read chunk whatever the sizes. Messages
    /// the server does not return are absent from the answer.
    ///
    /// BODY.PEEK[], as the copy reads the source: BINARY.PEEK[] is not the stored bytes
    /// (Dovecot decodes every part's Content-Transfer-Encoding in it), so it cannot be
    /// compared with what was sent.
    pub fn fetch_hashes(&mut self, uids: &str) -> Result<Vec<FetchedHash>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let tag = self.tag();
        self.write(
            format!("{tag} UID FETCH {uids} (UID INTERNALDATE BODY.PEEK[])\r\n").as_bytes(),
        )?;
        self.wire
            .flush()
            .map_err(|e| ImapError::io(e, &self.addr))?;
        let io = |e| ImapError::io(e, &self.addr);
        let mut out = Vec::new();
        let mut chunk = Vec::with_capacity(64 * 1024);
        loop {
            let mut line = Vec::new();
            self.wire.read_line(&mut line).map_err(io)?;
            if let Some(done) = self.completion(&line, &tag) {
                return done.map(|()| out);
            }
            // The text around the literals, to find UID and INTERNALDATE wherever they are.
            let mut text = Vec::new();
            let mut hash = None;
            while let Some(n) = trailing_literal(&line) {
                let message = line_ends_with_body_literal(&line);
                text.extend_from_slice(&line);
                let mut h = crate::digest::Hasher::default();
                let mut left = n;
                while left > 0 {
                    let take = left.min(64 * 1024);
                    chunk.clear();
                    self.wire.read_exact_into(&mut chunk, take).map_err(io)?;
                    if message {
                        h.update(&chunk);
                    }
                    left -= take;
                }
                if message {
                    hash = Some(h.finish());
                }
                line.clear();
                self.wire.read_line(&mut line).map_err(io)?;
            }
            text.extend_from_slice(&line);
            if let (Some(uid), Some(hash)) = (find_uid(&text), hash) {
                out.push(FetchedHash {
                    uid,
                    internal_date: find_internal_date(&text),
                    hash,
                });
            }
        }
    }
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
            .map(|&(uid, start, len)| (uid, &self.data[start..start + len]))
    }
}

/// "UID 123" anywhere in a FETCH line.
fn find_uid(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    let upper = text.to_ascii_uppercase();
    let mut from = 0;
    while let Some(i) = upper[from..].find("UID ") {
        let at = from + i;
        // Not part of a longer word such as "XUID".
        let boundary = at == 0 || !upper.as_bytes()[at - 1].is_ascii_alphanumeric();
        let digits: String = text[at + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if boundary && !digits.is_empty() {
            return digits.parse().ok();
        }
        from = at + 4;
    }
    None
}

/// Does this line end with the `BODY[] {n}` literal (as opposed to some other item's)?
fn line_ends_with_body_literal(line: &[u8]) -> bool {
    let Some(open) = line.iter().rposition(|&b| b == b'{') else {
        return false;
    };
    let before = String::from_utf8_lossy(&line[..open]).to_ascii_uppercase();
    before.trim_end().ends_with("BODY[]")
}

fn header_query() -> String {
    format!(
        "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({})])",
        crate::index::KEY_HEADERS.join(" ")
    )
}

fn headers_of(fetches: &imap::types::Fetches) -> Vec<MessageHeaders> {
    fetches
        .iter()
        .filter_map(|f| {
            Some(MessageHeaders {
                uid: f.uid?,
                size: f.size.map(u64::from).unwrap_or(0),
                headers: f.header().unwrap_or_default().to_vec(),
            })
        })
        .collect()
}

fn folder_info(m: &imap::types::Mailbox) -> FolderInfo {
    FolderInfo {
        exists: m.exists,
        uid_next: m.uid_next,
        uid_validity: m.uid_validity,
        permanent_flags: if m.permanent_flags.is_empty() {
            None
        } else {
            Some(
                m.permanent_flags
                    .iter()
                    .filter_map(|f| match f {
                        Flag::MayCreate => Some("\\*".to_string()),
                        other => flag_name(other),
                    })
                    .collect(),
            )
        },
    }
}

fn flag_name(f: &Flag<'_>) -> Option<String> {
    Some(match f {
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::Recent => return None,
        Flag::MayCreate => return None,
        Flag::Custom(c) => c.to_string(),
        _ => return None,
    })
}

/// Quote a mailbox name for a command we write ourselves (the crate's APPEND does not
/// escape `"` and `\`).
pub fn astring(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn trailing_literal(line: &[u8]) -> Option<usize> {
    let l = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let num = std::str::from_utf8(&l[open + 1..]).ok()?;
    num.trim_end_matches('+').parse().ok()
}

/// The new UID from `[APPENDUID validity uid-set]`; for a set (MULTIAPPEND), the highest.
fn parse_appenduid(info: &str) -> Option<u32> {
    let i = info.to_ascii_uppercase().find("[APPENDUID ")?;
    let rest = &info[i + "[APPENDUID ".len()..];
    let end = rest.find(']')?;
    let mut parts = rest[..end].split_whitespace();
    let _validity = parts.next()?;
    parts
        .next()?
        .split([',', ':'])
        .filter_map(|u| u.parse::<u32>().ok())
        .max()
}

/// Every UID of `[APPENDUID validity uid-set]`, in the order given.
fn parse_appenduid_set(info: &str) -> Vec<u32> {
    let Some(i) = info.to_ascii_uppercase().find("[APPENDUID ") else {
        return Vec::new();
    };
    let rest = &info[i + "[APPENDUID ".len()..];
    let Some(set) = rest
        .find(']')
        .and_then(|end| rest[..end].split_whitespace().nth(1))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in set.split(',') {
        let bounds = part.split_once(':').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (bounds.0.parse::<u32>(), bounds.1.parse::<u32>()) else {
            return Vec::new();
        };
        // A range is ascending whichever way it is written; a huge one is not believed.
        let (lo, hi) = (a.min(b), a.max(b));
        if hi - lo > 100_000 {
            return Vec::new();
        }
        out.extend(lo..=hi);
    }
    out
}

/// `INTERNALDATE "dd-Mon-yyyy hh:mm:ss +zzzz"` in a FETCH response.
fn find_internal_date(text: &[u8]) -> Option<DateTime<FixedOffset>> {
    let upper = text.to_ascii_uppercase();
    let at = upper.windows(14).position(|w| w == b"INTERNALDATE \"")?;
    let rest = &text[at + 14..];
    let end = rest.iter().position(|&b| b == b'"')?;
    let value = std::str::from_utf8(&rest[..end]).ok()?.trim();
    DateTime::parse_from_str(value, "%d-%b-%Y %H:%M:%S %z").ok()
}

/// The flag list and date-time of an APPEND (never \Recent).
fn append_args(item: &AppendItem<'_>) -> (String, String) {
    let flags = item
        .flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let date = item
        .date
        .map(|d| format!(" \"{}\"", d.format("%d-%b-%Y %H:%M:%S %z")))
        .unwrap_or_default();
    (flags, date)
}

/// `(("" "/")) NIL NIL` → the first personal namespace.
fn parse_personal_namespace(s: &str) -> Option<(String, Option<char>)> {
    let s = s.trim_start();
    let s = s.strip_prefix("((")?;
    let (prefix, rest) = parse_quoted(s)?;
    let rest = rest.trim_start();
    let sep = if rest.starts_with("NIL") || rest.starts_with("nil") {
        None
    } else {
        parse_quoted(rest).and_then(|(d, _)| d.chars().next())
    };
    Some((prefix, sep))
}

fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

struct OAuthAuth {
    mechanism: &'static str,
    user: String,
    host: String,
    port: u16,
    token: Secret,
}

impl imap::Authenticator for OAuthAuth {
    type Response = Vec<u8>;
    fn process(&self, challenge: &[u8]) -> Self::Response {
        // A non-empty challenge after our response is the server's error report (JSON);
        // answering with an empty response lets it finish with NO.
        if !challenge.is_empty() {
            return Vec::new();
        }
        let t = self.token.expose();
        match self.mechanism {
            "XOAUTH2" => format!("user={}\x01auth=Bearer {t}\x01\x01", self.user).into_bytes(),
            _ => format!(
                "n,a={},\x01host={}\x01port={}\x01auth=Bearer {t}\x01\x01",
                self.user, self.host, self.port
            )
            .into_bytes(),
        }
    }
}

struct PlainAuth {
    user: String,
    secret: Secret,
}

impl imap::Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&self, _challenge: &[u8]) -> Self::Response {
        let mut v = Vec::new();
        v.push(0);
        v.extend_from_slice(self.user.as_bytes());
        v.push(0);
        v.extend_from_slice(self.secret.expose().as_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_parsing() {
        assert_eq!(
            parse_personal_namespace(r#"(("" "/")) NIL NIL"#),
            Some((String::new(), Some('/')))
        );
        assert_eq!(
            parse_personal_namespace(r#"(("INBOX." ".")) NIL NIL"#),
            Some(("INBOX.".into(), Some('.')))
        );
        assert_eq!(parse_personal_namespace("NIL NIL NIL"), None);
    }

    #[test]
    fn appenduid_sets_and_internal_dates() {
        assert_eq!(
            parse_appenduid_set("[APPENDUID 38505 3955,3960:3962] done"),
            vec![3955, 3960, 3961, 3962]
        );
        assert_eq!(parse_appenduid_set("[APPENDUID 1 7] ok"), vec![7]);
        assert!(parse_appenduid_set("OK done").is_empty());
        assert!(parse_appenduid_set("[APPENDUID 1 x] ok").is_empty());
        let d = find_internal_date(
            b"* 1 FETCH (UID 4 INTERNALDATE \" 1-Jan-1970 00:00:00 +0000\" BODY[] {3}",
        )
        .map(|d| d.timestamp());
        assert_eq!(d, Some(0));
        assert_eq!(find_internal_date(b"* 1 FETCH (UID 4)"), None);
    }

    #[test]
    fn appenduid_parsing() {
        assert_eq!(
            parse_appenduid("[APPENDUID 1700000000 42] Append completed."),
            Some(42)
        );
        assert_eq!(parse_appenduid("Append completed."), None);
        assert_eq!(
            parse_appenduid("[APPENDUID 17 31:130] Append completed."),
            Some(130)
        );
        assert_eq!(parse_appenduid("[APPENDUID 17 5,9:12,7] ok"), Some(12));
    }

    #[test]
    fn literal_detection() {
        assert_eq!(trailing_literal(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(trailing_literal(b"* 1 EXISTS\r\n"), None);
    }

    #[test]
    fn fetch_line_parsing() {
        assert_eq!(find_uid(b"* 3 FETCH (UID 17 BODY[] {5}\r\n"), Some(17));
        assert_eq!(find_uid(b" UID 9)\r\n"), Some(9));
        assert_eq!(find_uid(b"* 3 FETCH (FLAGS (\\Seen))\r\n"), None);
        assert!(line_ends_with_body_literal(
            b"* 3 FETCH (UID 17 BODY[] {5}\r\n"
        ));
        assert!(!line_ends_with_body_literal(
            b"* 3 FETCH (UID 17 BODY[HEADER] {5}\r\n"
        ));
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(astring(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
