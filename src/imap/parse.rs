//! The one response parser: a framed response (see [`super::reader`]) into typed data.
//!
//! Written for btsx rather than taken from a codec crate: message bodies never pass through
//! it (the reader streams them into the batch buffer and leaves a reference), it accepts
//! the forms real servers send even where they stray from the grammar (8-bit quoted names,
//! lower-case keywords), and it never panics: every index is checked, and anything it
//! cannot read is an `Err` the session turns into a reconnect.

use std::borrow::Cow;

use super::reader::Frame;

/// A response the parser could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub String);

type PResult<T> = Result<T, ParseError>;

fn perr<T>(what: impl Into<String>) -> PResult<T> {
    Err(ParseError(what.into()))
}

/// OK, NO, BAD, BYE, PREAUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
}

/// A response code (RFC 3501 §7.1, RFC 5530, extensions), the part in `[...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    TryCreate,
    OverQuota,
    Unavailable,
    ServerBug,
    Limit,
    Throttled,
    NonExistent,
    AlreadyExists,
    NoPerm,
    InUse,
    ReadOnly,
    ReadWrite,
    /// Validity and the new UID set (a range for MULTIAPPEND).
    AppendUid(u32, String),
    CopyUid(u32, String, String),
    UidValidity(u32),
    UidNext(u32),
    Unseen(u32),
    HighestModSeq(u64),
    PermanentFlags(Vec<String>),
    Capability(Vec<String>),
    /// Any other code: its atom (upper case) and the rest, unparsed.
    Other(String, String),
}

/// One untagged or tagged status response, or a continuation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResp {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
}

/// A mailbox name exactly as the server sent it (after removing quoting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub lsub: bool,
    pub attributes: Vec<String>,
    pub delimiter: Option<char>,
    pub name: Vec<u8>,
    /// CHILDINFO (RFC 5258) values, e.g. `SUBSCRIBED`.
    pub childinfo: Vec<String>,
    /// OLDNAME (RFC 5465).
    pub old_name: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusItems {
    pub messages: Option<u32>,
    pub recent: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    pub unseen: Option<u32>,
    pub highest_modseq: Option<u64>,
}

/// A body section's bytes: inline in the frame, or streamed into an outside buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Inline(Cow<'a, [u8]>),
    /// `(start, len)` in the caller's sink.
    External(usize, usize),
    Nil,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchItems<'a> {
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub internal_date: Option<String>,
    pub size: Option<u64>,
    pub modseq: Option<u64>,
    /// `BODY[...]` / `BINARY[...]` items: the section as sent (upper case) and its bytes.
    pub sections: Vec<(String, Body<'a>)>,
    /// Gmail (X-GM-EXT-1): the message's id, the same in every folder.
    pub gm_msgid: Option<u64>,
    /// Gmail: X-GM-LABELS holds the `\Important` system label (an atom; a user label of
    /// that name would be a string).
    pub gm_important: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDesc {
    pub prefix: Vec<u8>,
    pub delimiter: Option<char>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `+ text`.
    Continue(String),
    Tagged(String, StatusResp),
    Untagged(StatusResp),
    Capability(Vec<String>),
    List(ListItem),
    Status(Vec<u8>, StatusItems),
    Flags(Vec<String>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    /// `EARLIER` and the UID set.
    Vanished(bool, String),
    Fetch(u32, FetchItems<'a>),
    Search(Vec<u32>),
    /// ESEARCH: the items after the correlator, keyword (upper case) and value.
    ESearch(Vec<(String, String)>),
    /// Personal, other users', shared.
    Namespace([Vec<NamespaceDesc>; 3]),
    Enabled(Vec<String>),
    Id(Vec<(String, Option<String>)>),
    /// An untagged response of a kind btsx has no use for (its keyword).
    Other(String),
}

/// A token of the generic grammar: atoms, strings, NIL, parenthesised lists.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Atom(&'a [u8]),
    Str(Cow<'a, [u8]>),
    External(usize, usize),
    Nil,
    List(Vec<Tok<'a>>),
}

impl<'a> Tok<'a> {
    fn atom(&self) -> Option<&'a [u8]> {
        match self {
            Tok::Atom(a) => Some(a),
            _ => None,
        }
    }
    fn text(&self) -> String {
        match self {
            Tok::Atom(a) => String::from_utf8_lossy(a).into_owned(),
            Tok::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Tok::Nil => "NIL".into(),
            Tok::External(..) => String::new(),
            Tok::List(l) => format!(
                "({})",
                l.iter().map(Tok::text).collect::<Vec<_>>().join(" ")
            ),
        }
    }
    /// An astring or nstring's bytes (atoms included: servers send bare mailbox names).
    fn bytes(&self) -> Option<Cow<'a, [u8]>> {
        match self {
            Tok::Atom(a) => Some(Cow::Borrowed(a)),
            Tok::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn number<N: std::str::FromStr>(&self) -> Option<N> {
        std::str::from_utf8(self.atom()?).ok()?.parse().ok()
    }
    fn list(&self) -> Option<&[Tok<'a>]> {
        match self {
            Tok::List(l) => Some(l),
            _ => None,
        }
    }
}

/// How deep parenthesised lists may nest: deeper is hostile input, not mail.
const MAX_DEPTH: usize = 64;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    frame: &'a Frame,
}

fn is_atom_char(b: u8) -> bool {
    !matches!(b, b'(' | b')' | b'{' | b' ' | b'"' | b']' | b'\r' | b'\n') && b > 0x1f && b != 0x7f
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\r') | Some(b'\n'))
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// The rest of the line, as text.
    fn rest_of_line(&mut self) -> String {
        let start = self.pos.min(self.buf.len());
        let end = self.buf[start..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map_or(self.buf.len(), |i| start + i);
        self.pos = end;
        String::from_utf8_lossy(&self.buf[start..end]).into_owned()
    }

    /// A word up to a space (for tags and keywords).
    fn word(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.buf.len());
        let end = self.buf[start..]
            .iter()
            .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
            .map_or(self.buf.len(), |i| start + i);
        self.pos = end;
        &self.buf[start..end]
    }

    fn tokens(&mut self) -> PResult<Vec<Tok<'a>>> {
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            if self.at_end() {
                return Ok(out);
            }
            out.push(self.token(0)?);
        }
    }

    fn token(&mut self, depth: usize) -> PResult<Tok<'a>> {
        if depth > MAX_DEPTH {
            return perr("lists nested too deeply");
        }
        match self.peek() {
            None => perr("response ends early"),
            Some(b'(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(Tok::List(items));
                        }
                        None | Some(b'\r') | Some(b'\n') => return perr("unclosed list"),
                        _ => items.push(self.token(depth + 1)?),
                    }
                }
            }
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'~') if self.buf.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.literal()
            }
            Some(b')') => perr("unexpected ')'"),
            Some(_) => self.atom(),
        }
    }

    /// An atom; `[...]` inside it (BODY[HEADER.FIELDS (A B)]) and a `<n>` after it belong
    /// to it, spaces and parentheses included.
    fn atom(&mut self) -> PResult<Tok<'a>> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            if b == b'[' {
                depth += 1;
            } else if b == b']' {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            } else if b == b'\r' || b == b'\n' || (depth == 0 && !is_atom_char(b)) {
                break;
            }
            self.pos += 1;
        }
        if depth > 0 {
            return perr("unclosed '['");
        }
        if self.pos == start {
            return perr(format!(
                "unexpected byte 0x{:02x}",
                self.peek().unwrap_or(0)
            ));
        }
        let a = &self.buf[start..self.pos];
        if a.eq_ignore_ascii_case(b"NIL") {
            return Ok(Tok::Nil);
        }
        Ok(Tok::Atom(a))
    }

    /// A quoted string; 8-bit bytes are kept (servers send them, RFC 3501 forbids them).
    fn quoted(&mut self) -> PResult<Tok<'a>> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return perr("unclosed quoted string"),
                Some(b'"') => {
                    let s = match owned {
                        Some(v) => Cow::Owned(v),
                        None => Cow::Borrowed(&self.buf[start..self.pos]),
                    };
                    self.pos += 1;
                    return Ok(Tok::Str(s));
                }
                Some(b'\\') => {
                    let v = owned.get_or_insert_with(|| self.buf[start..self.pos].to_vec());
                    self.pos += 1;
                    match self.peek() {
                        Some(c) if c != b'\r' && c != b'\n' => {
                            v.push(c);
                            self.pos += 1;
                        }
                        _ => return perr("backslash at the end of a quoted string"),
                    }
                }
                Some(c) => {
                    if let Some(v) = owned.as_mut() {
                        v.push(c);
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` or `{n+}` CRLF, then n bytes (in the frame, or streamed out by the reader).
    fn literal(&mut self) -> PResult<Tok<'a>> {
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let n: usize = match std::str::from_utf8(&self.buf[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(n) => n,
            None => return perr("bad literal length"),
        };
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        if self.buf.get(self.pos..self.pos + 3) == Some(b"}\r\n".as_slice()) {
            self.pos += 3;
        } else if self.buf.get(self.pos..self.pos + 2) == Some(b"}\n".as_slice()) {
            self.pos += 2;
        } else {
            return perr("bad literal");
        }
        if let Some(&(start, len)) = self.frame.external_at(self.pos) {
            return Ok(Tok::External(start, len));
        }
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return perr("literal longer than the response");
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(Tok::Str(Cow::Borrowed(s)))
    }
}

/// Parse one framed response.
pub(crate) fn parse(frame: &Frame) -> PResult<Response<'_>> {
    let mut c = Cursor {
        buf: frame.bytes(),
        pos: 0,
        frame,
    };
    match c.peek() {
        Some(b'+') => {
            c.pos += 1;
            c.skip_spaces();
            return Ok(Response::Continue(c.rest_of_line()));
        }
        None => return perr("empty response"),
        _ => {}
    }
    let tag = c.word();
    if tag.is_empty() {
        return perr("response without a tag");
    }
    c.skip_spaces();
    if tag != b"*" {
        let tag = String::from_utf8_lossy(tag).into_owned();
        let kw = c.word();
        let Some(status) = status_of(kw) else {
            return perr(format!(
                "tagged response that is not OK/NO/BAD: {}",
                String::from_utf8_lossy(kw)
            ));
        };
        return Ok(Response::Tagged(tag, resp_text(&mut c, status)));
    }
    let kw = c.word();
    if let Some(status) = status_of(kw) {
        return Ok(Response::Untagged(resp_text(&mut c, status)));
    }
    if kw.first().is_some_and(u8::is_ascii_digit) {
        let Some(n) = std::str::from_utf8(kw).ok().and_then(|s| s.parse().ok()) else {
            return perr("bad message number");
        };
        c.skip_spaces();
        let what = c.word().to_ascii_uppercase();
        return match what.as_slice() {
            b"EXISTS" => Ok(Response::Exists(n)),
            b"RECENT" => Ok(Response::Recent(n)),
            b"EXPUNGE" => Ok(Response::Expunge(n)),
            b"FETCH" => {
                let toks = c.tokens()?;
                let Some(items) = toks.first().and_then(Tok::list) else {
                    return perr("FETCH without a list");
                };
                Ok(Response::Fetch(n, fetch_items(items)?))
            }
            _ => Ok(Response::Other(String::from_utf8_lossy(&what).into_owned())),
        };
    }
    let kw = kw.to_ascii_uppercase();
    const KNOWN: [&[u8]; 13] = [
        b"CAPABILITY",
        b"ENABLED",
        b"LIST",
        b"LSUB",
        b"XLIST",
        b"STATUS",
        b"FLAGS",
        b"SEARCH",
        b"ESEARCH",
        b"NAMESPACE",
        b"ID",
        b"VANISHED",
        b"SORT",
    ];
    // What btsx does not use is not parsed, so it cannot break a session.
    if !KNOWN.contains(&kw.as_slice()) {
        return Ok(Response::Other(String::from_utf8_lossy(&kw).into_owned()));
    }
    let toks = c.tokens()?;
    Ok(match kw.as_slice() {
        b"CAPABILITY" => Response::Capability(toks.iter().map(Tok::text).collect()),
        b"ENABLED" => Response::Enabled(toks.iter().map(Tok::text).collect()),
        b"LIST" | b"LSUB" | b"XLIST" => Response::List(list_item(&toks, kw == b"LSUB")?),
        b"STATUS" => {
            let name = toks
                .first()
                .and_then(Tok::bytes)
                .ok_or_else(|| ParseError("STATUS without a mailbox".into()))?;
            let mut items = StatusItems::default();
            for pair in toks.get(1).and_then(Tok::list).unwrap_or(&[]).chunks(2) {
                let (Some(k), Some(v)) = (pair.first().and_then(Tok::atom), pair.get(1)) else {
                    continue;
                };
                match k.to_ascii_uppercase().as_slice() {
                    b"MESSAGES" => items.messages = v.number(),
                    b"RECENT" => items.recent = v.number(),
                    b"UIDNEXT" => items.uid_next = v.number(),
                    b"UIDVALIDITY" => items.uid_validity = v.number(),
                    b"UNSEEN" => items.unseen = v.number(),
                    b"HIGHESTMODSEQ" => items.highest_modseq = v.number(),
                    _ => {}
                }
            }
            Response::Status(name.into_owned(), items)
        }
        b"FLAGS" => Response::Flags(
            toks.first()
                .and_then(Tok::list)
                .unwrap_or(&[])
                .iter()
                .map(Tok::text)
                .collect(),
        ),
        b"SEARCH" => Response::Search(toks.iter().filter_map(Tok::number).collect()),
        b"ESEARCH" => {
            let mut rest = toks.as_slice();
            if rest.first().is_some_and(|t| t.list().is_some()) {
                rest = &rest[1..];
            }
            let mut out = Vec::new();
            let mut i = 0;
            while i < rest.len() {
                let k = rest[i].text().to_ascii_uppercase();
                if k == "UID" {
                    i += 1;
                    continue;
                }
                let v = rest.get(i + 1).map(Tok::text).unwrap_or_default();
                out.push((k, v));
                i += 2;
            }
            Response::ESearch(out)
        }
        b"NAMESPACE" => {
            let mut ns: [Vec<NamespaceDesc>; 3] = Default::default();
            for (slot, t) in ns.iter_mut().zip(toks.iter()) {
                for d in t.list().unwrap_or(&[]) {
                    let Some(d) = d.list() else { continue };
                    let Some(prefix) = d.first().and_then(Tok::bytes) else {
                        continue;
                    };
                    slot.push(NamespaceDesc {
                        prefix: prefix.into_owned(),
                        delimiter: d.get(1).and_then(delimiter),
                    });
                }
            }
            Response::Namespace(ns)
        }
        b"ID" => Response::Id(
            toks.first()
                .and_then(Tok::list)
                .unwrap_or(&[])
                .chunks(2)
                .map(|p| {
                    (
                        p.first().map(Tok::text).unwrap_or_default(),
                        p.get(1).and_then(|v| match v {
                            Tok::Nil => None,
                            v => Some(v.text()),
                        }),
                    )
                })
                .collect(),
        ),
        b"VANISHED" => {
            let earlier = toks
                .first()
                .and_then(Tok::list)
                .is_some_and(|l| l.iter().any(|t| t.text().eq_ignore_ascii_case("EARLIER")));
            let set = toks.last().map(Tok::text).unwrap_or_default();
            Response::Vanished(earlier, set)
        }
        _ => Response::Other(String::from_utf8_lossy(&kw).into_owned()),
    })
}

fn status_of(kw: &[u8]) -> Option<Status> {
    Some(match kw.to_ascii_uppercase().as_slice() {
        b"OK" => Status::Ok,
        b"NO" => Status::No,
        b"BAD" => Status::Bad,
        b"BYE" => Status::Bye,
        b"PREAUTH" => Status::Preauth,
        _ => return None,
    })
}

/// `[CODE args] text`: the text is free-form (a `{5}` at its end is text, not a literal).
fn resp_text(c: &mut Cursor<'_>, status: Status) -> StatusResp {
    c.skip_spaces();
    let line = c.rest_of_line();
    let (code, text) = split_code(&line);
    StatusResp {
        status,
        code,
        text: text.to_string(),
    }
}

/// `[CODE args] text` → the code and the text after it (also for answers the `imap` crate
/// read at login, whose parser leaves codes it does not know, such as `[LIMIT]`, in the text).
pub(crate) fn split_code(line: &str) -> (Option<Code>, &str) {
    if let Some(inner) = line.strip_prefix('[')
        && let Some(close) = inner.find(']')
    {
        (
            Some(parse_code(&inner[..close])),
            inner[close + 1..].trim_start(),
        )
    } else {
        (None, line)
    }
}

fn parse_code(s: &str) -> Code {
    let (name, args) = s.split_once(' ').unwrap_or((s, ""));
    let name = name.to_ascii_uppercase();
    let args = args.trim();
    let mut nums = args.split_whitespace();
    let list = || {
        args.trim_start_matches('(')
            .trim_end_matches(')')
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let num32 = |v: Option<&str>| v.and_then(|v| v.parse::<u32>().ok());
    match name.as_str() {
        "ALERT" => Code::Alert,
        "TRYCREATE" => Code::TryCreate,
        "OVERQUOTA" => Code::OverQuota,
        "UNAVAILABLE" => Code::Unavailable,
        "SERVERBUG" => Code::ServerBug,
        "LIMIT" => Code::Limit,
        "THROTTLED" => Code::Throttled,
        "NONEXISTENT" => Code::NonExistent,
        "ALREADYEXISTS" => Code::AlreadyExists,
        "NOPERM" => Code::NoPerm,
        "INUSE" => Code::InUse,
        "READ-ONLY" => Code::ReadOnly,
        "READ-WRITE" => Code::ReadWrite,
        "PERMANENTFLAGS" => Code::PermanentFlags(list()),
        "CAPABILITY" => Code::Capability(list()),
        "UIDVALIDITY" => match num32(nums.next()) {
            Some(n) => Code::UidValidity(n),
            None => Code::Other(name, args.into()),
        },
        "UIDNEXT" => match num32(nums.next()) {
            Some(n) => Code::UidNext(n),
            None => Code::Other(name, args.into()),
        },
        "UNSEEN" => match num32(nums.next()) {
            Some(n) => Code::Unseen(n),
            None => Code::Other(name, args.into()),
        },
        "HIGHESTMODSEQ" => match nums.next().and_then(|v| v.parse().ok()) {
            Some(n) => Code::HighestModSeq(n),
            None => Code::Other(name, args.into()),
        },
        "APPENDUID" => match (num32(nums.next()), nums.next()) {
            (Some(v), Some(set)) => Code::AppendUid(v, set.to_string()),
            _ => Code::Other(name, args.into()),
        },
        "COPYUID" => match (num32(nums.next()), nums.next(), nums.next()) {
            (Some(v), Some(a), Some(b)) => Code::CopyUid(v, a.to_string(), b.to_string()),
            _ => Code::Other(name, args.into()),
        },
        _ => Code::Other(name, args.into()),
    }
}

fn delimiter(t: &Tok<'_>) -> Option<char> {
    match t {
        Tok::Str(s) => s.first().map(|&b| b as char),
        Tok::Atom(a) => a.first().map(|&b| b as char),
        _ => None,
    }
}

/// `(attrs) delim name [(ext-items)]`.
fn list_item(toks: &[Tok<'_>], lsub: bool) -> PResult<ListItem> {
    let Some(attrs) = toks.first().and_then(Tok::list) else {
        return perr("LIST without attributes");
    };
    let Some(name) = toks.get(2).and_then(Tok::bytes) else {
        return perr("LIST without a mailbox name");
    };
    let mut item = ListItem {
        lsub,
        attributes: attrs.iter().map(Tok::text).collect(),
        delimiter: toks.get(1).and_then(delimiter),
        name: name.into_owned(),
        childinfo: Vec::new(),
        old_name: None,
    };
    if let Some(ext) = toks.get(3).and_then(Tok::list) {
        for pair in ext.chunks(2) {
            let key = pair.first().map(Tok::text).unwrap_or_default();
            let val = pair.get(1);
            if key.eq_ignore_ascii_case("CHILDINFO") {
                item.childinfo = val
                    .and_then(Tok::list)
                    .unwrap_or(&[])
                    .iter()
                    .map(Tok::text)
                    .collect();
            } else if key.eq_ignore_ascii_case("OLDNAME") {
                item.old_name = val
                    .and_then(Tok::list)
                    .and_then(|l| l.first())
                    .and_then(Tok::bytes)
                    .map(Cow::into_owned);
            }
        }
    }
    Ok(item)
}

fn fetch_items<'a>(toks: &[Tok<'a>]) -> PResult<FetchItems<'a>> {
    let mut f = FetchItems::default();
    for pair in toks.chunks(2) {
        let Some(key) = pair.first().and_then(Tok::atom) else {
            return perr("FETCH item is not an atom");
        };
        let Some(val) = pair.get(1) else {
            return perr("FETCH item without a value");
        };
        let upper = key.to_ascii_uppercase();
        match upper.as_slice() {
            b"UID" => f.uid = val.number(),
            b"RFC822.SIZE" => f.size = val.number(),
            b"FLAGS" => f.flags = Some(val.list().unwrap_or(&[]).iter().map(Tok::text).collect()),
            b"INTERNALDATE" => {
                f.internal_date = val
                    .bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            }
            b"MODSEQ" => f.modseq = val.list().and_then(|l| l.first()).and_then(Tok::number),
            b"X-GM-MSGID" => f.gm_msgid = val.number(),
            b"X-GM-LABELS" => {
                f.gm_important = val.list().unwrap_or(&[]).iter().any(|t| {
                    t.atom()
                        .is_some_and(|a| a.eq_ignore_ascii_case(b"\\Important"))
                })
            }
            k if k.starts_with(b"BODY[")
                || k.starts_with(b"BINARY[")
                || k.starts_with(b"RFC822") =>
            {
                let body = match val {
                    Tok::External(s, l) => Body::External(*s, *l),
                    Tok::Str(s) => Body::Inline(s.clone()),
                    Tok::Atom(a) => Body::Inline(Cow::Borrowed(a)),
                    _ => Body::Nil,
                };
                f.sections
                    .push((String::from_utf8_lossy(&upper).into_owned(), body));
            }
            _ => {}
        }
    }
    Ok(f)
}

impl FetchItems<'_> {
    /// The bytes of the first section whose name starts with `prefix` (e.g. `BODY[HEADER`).
    pub fn section(&self, prefix: &str) -> Option<&Body<'_>> {
        self.sections
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &[u8]) -> Response<'static> {
        let f = Box::leak(Box::new(Frame::from_bytes(s.to_vec())));
        parse(f).unwrap()
    }

    fn list(s: &[u8]) -> ListItem {
        match one(s) {
            Response::List(l) => l,
            other => panic!("not a LIST: {other:?}"),
        }
    }

    #[test]
    fn list_names_in_every_form() {
        let l = list(b"* LIST (\\HasNoChildren) \"/\" \"back\\\\slash\"\r\n");
        assert_eq!(l.name, br"back\slash");
        let l = list(b"* LIST () \"/\" \"Say \\\"hi\\\"\"\r\n");
        assert_eq!(l.name, br#"Say "hi""#);
        let l = list(b"* LIST () NIL {9}\r\npct%star*\r\n");
        assert_eq!(l.name, b"pct%star*");
        assert_eq!(l.delimiter, None);
        let l = list("* LIST () \".\" \"Größe\"\r\n".as_bytes());
        assert_eq!(l.name, "Größe".as_bytes());
        let l = list(b"* LIST (\\Marked \\NoInferiors) \"/\" INBOX\r\n");
        assert_eq!(l.name, b"INBOX");
        assert_eq!(l.attributes, vec!["\\Marked", "\\NoInferiors"]);
        let l = list(b"* LIST (\\Subscribed) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Bar\"))\r\n");
        assert_eq!(l.childinfo, vec!["SUBSCRIBED"]);
        assert_eq!(l.old_name.as_deref(), Some(b"Bar".as_slice()));
        let l = list(b"* LSUB () \"/\" \" lead space\"\r\n");
        assert!(l.lsub);
        assert_eq!(l.name, b" lead space");
    }

    #[test]
    fn status_responses_and_codes() {
        match one(b"B3 NO [TRYCREATE] Mailbox doesn't exist {5}\r\n") {
            Response::Tagged(t, s) => {
                assert_eq!(t, "B3");
                assert_eq!(s.status, Status::No);
                assert_eq!(s.code, Some(Code::TryCreate));
                assert_eq!(s.text, "Mailbox doesn't exist {5}");
            }
            other => panic!("{other:?}"),
        }
        let codes: [(&[u8], Code); 8] = [
            (
                b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
                Code::UidValidity(3857529045),
            ),
            (b"* OK [UIDNEXT 4392] x\r\n", Code::UidNext(4392)),
            (
                b"* OK [HIGHESTMODSEQ 715194045007] x\r\n",
                Code::HighestModSeq(715194045007),
            ),
            (
                b"* NO [ALERT] System shutdown in 10 minutes\r\n",
                Code::Alert,
            ),
            (
                b"B1 OK [APPENDUID 38505 3955:3960] done\r\n",
                Code::AppendUid(38505, "3955:3960".into()),
            ),
            (b"B1 NO [OVERQUOTA] full\r\n", Code::OverQuota),
            (
                b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] ok\r\n",
                Code::PermanentFlags(vec!["\\Deleted".into(), "\\Seen".into(), "\\*".into()]),
            ),
            (
                b"B1 NO [X-WEIRD foo] hm\r\n",
                Code::Other("X-WEIRD".into(), "foo".into()),
            ),
        ];
        for (wire, code) in codes {
            let r = one(wire);
            let (Response::Tagged(_, s) | Response::Untagged(s)) = r else {
                panic!()
            };
            assert_eq!(s.code, Some(code));
        }
        assert!(matches!(one(b"+ Ready\r\n"), Response::Continue(_)));
        assert!(matches!(
            one(b"* BYE going\r\n"),
            Response::Untagged(StatusResp {
                status: Status::Bye,
                ..
            })
        ));
    }

    #[test]
    fn data_responses() {
        match one(b"* CAPABILITY IMAP4rev1 LITERAL+ APPENDLIMIT=100 AUTH=PLAIN\r\n") {
            Response::Capability(c) => assert_eq!(c.len(), 4),
            other => panic!("{other:?}"),
        }
        match one(b"* STATUS \"Say \\\"hi\\\"\" (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 7 UNSEEN 2 HIGHESTMODSEQ 9)\r\n") {
            Response::Status(n, s) => {
                assert_eq!(n, br#"Say "hi""#);
                assert_eq!(s.messages, Some(231));
                assert_eq!(s.uid_next, Some(44292));
                assert_eq!(s.highest_modseq, Some(9));
            }
            other => panic!("{other:?}"),
        }
        match one(b"* 12 FETCH (FLAGS (\\Seen $Label1) UID 55 RFC822.SIZE 44827 INTERNALDATE \" 7-Feb-1994 21:52:25 -0800\" MODSEQ (12121))\r\n") {
            Response::Fetch(12, f) => {
                assert_eq!(f.uid, Some(55));
                assert_eq!(f.size, Some(44827));
                assert_eq!(f.flags.unwrap(), vec!["\\Seen", "$Label1"]);
                assert_eq!(f.modseq, Some(12121));
                assert!(f.internal_date.unwrap().contains("Feb-1994"));
            }
            other => panic!("{other:?}"),
        }
        match one(b"* 1 FETCH (UID 3 BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {4}\r\nab\r\n)\r\n") {
            Response::Fetch(1, f) => {
                assert_eq!(
                    f.section("BODY[HEADER"),
                    Some(&Body::Inline(Cow::Borrowed(b"ab\r\n".as_slice())))
                );
            }
            other => panic!("{other:?}"),
        }
        match one(b"* 1 FETCH (UID 3 BINARY[] ~{3}\r\na\0b)\r\n") {
            Response::Fetch(1, f) => assert_eq!(
                f.section("BINARY[]"),
                Some(&Body::Inline(Cow::Borrowed(b"a\0b".as_slice())))
            ),
            other => panic!("{other:?}"),
        }
        match one(b"* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared/\" \"/\"))\r\n") {
            Response::Namespace([p, o, s]) => {
                assert_eq!(p[0].prefix, b"INBOX.");
                assert_eq!(p[0].delimiter, Some('.'));
                assert!(o.is_empty());
                assert_eq!(s.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            one(b"* SEARCH 2 84 882\r\n"),
            Response::Search(vec![2, 84, 882])
        );
        assert_eq!(one(b"* 23 EXISTS\r\n"), Response::Exists(23));
        assert_eq!(one(b"* 5 EXPUNGE\r\n"), Response::Expunge(5));
        assert_eq!(
            one(b"* VANISHED (EARLIER) 300:310\r\n"),
            Response::Vanished(true, "300:310".into())
        );
        assert_eq!(
            one(b"* ENABLED CONDSTORE\r\n"),
            Response::Enabled(vec!["CONDSTORE".into()])
        );
        assert!(
            matches!(one(b"* ESEARCH (TAG \"B1\") UID ALL 1:3 COUNT 3\r\n"), Response::ESearch(v) if v.len() == 2)
        );
        assert!(
            matches!(one(b"* ID (\"name\" \"Dovecot\" \"x\" NIL)\r\n"), Response::Id(v) if v.len() == 2)
        );
        assert!(matches!(one(b"* FLAGS (\\Seen \\Draft)\r\n"), Response::Flags(v) if v.len() == 2));
        assert!(matches!(
            one(b"* XYZZY whatever ( \r\n"),
            Response::Other(_)
        ));
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"*",
            b"* 1 FETCH (UID",
            b"* LIST (",
            b"* 1 FETCH (BODY[] {99}\r\nab)\r\n",
            b"B1 FOO bar\r\n",
            b"* 99999999999 EXISTS\r\n",
        ] {
            let f = Frame::from_bytes(bad.to_vec());
            let _ = parse(&f);
        }
        let deep = [b"* LIST ".as_slice(), &[b'('; 100_000]].concat();
        assert!(parse(&Frame::from_bytes(deep)).is_err());
    }
}
