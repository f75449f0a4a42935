//! A small transcript-driven fake IMAP server for response forms a real server will not
//! produce on demand (escaped and literal names, untagged NO inside SELECT, `[ALERT]`,
//! `[TRYCREATE]`, `[UNAVAILABLE]` mid-copy …).
//!
//! It listens on 127.0.0.1 (plain IMAP: run btsx with `--plaintext`), keeps a tiny
//! in-memory mailbox, and answers from *rules* first: a rule matches a command (regex on
//! the command after its tag, literals inlined) and plays scripted lines, `{tag}` standing
//! for the command's tag. Every command received is recorded so tests assert on what the
//! client sent.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use regex::bytes::Regex;

/// Fake message `n`: distinct headers and body, a fixed date.
pub fn message(n: usize) -> Vec<u8> {
    format!(
        "Message-ID: <{n}@fake.test>\r\nSubject: message {n}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

/// A folder holding messages `first..first + count` (see [`message`]).
pub fn folder(name: &[u8], first: usize, count: usize) -> FakeFolder {
    let bodies: Vec<Vec<u8>> = (first..first + count).map(message).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    FakeFolder::new(name, &refs)
}

/// Messages `first..first + count` are in `dst`'s folder `name`, each exactly once.
pub fn assert_each_once(dst: &Fake, name: &[u8], first: usize, count: usize, ctx: &str) {
    let mut got: Vec<Vec<u8>> = dst
        .folder(name)
        .map(|f| f.messages.into_iter().map(|m| m.body).collect())
        .unwrap_or_default();
    got.sort();
    let mut want: Vec<Vec<u8>> = (first..first + count).map(message).collect();
    want.sort();
    assert_eq!(got.len(), count, "{}\n{ctx}", String::from_utf8_lossy(name));
    assert_eq!(got, want, "{}", String::from_utf8_lossy(name));
}

/// One message in a fake folder.
#[derive(Clone, Debug)]
pub struct FakeMessage {
    pub uid: u32,
    pub body: Vec<u8>,
    pub flags: String,
    pub date: String,
}

/// A folder under the exact bytes of its name.
#[derive(Clone, Debug)]
pub struct FakeFolder {
    pub name: Vec<u8>,
    pub messages: Vec<FakeMessage>,
    pub uid_validity: u32,
    pub uid_next: u32,
}

impl FakeFolder {
    pub fn new(name: &[u8], bodies: &[&[u8]]) -> FakeFolder {
        let messages: Vec<FakeMessage> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| FakeMessage {
                uid: i as u32 + 1,
                body: b.to_vec(),
                flags: "\\Seen".into(),
                date: "01-Feb-2024 10:00:00 +0000".into(),
            })
            .collect();
        FakeFolder {
            name: name.to_vec(),
            uid_next: messages.len() as u32 + 1,
            messages,
            uid_validity: 1700000000,
        }
    }
}

/// A scripted answer: when a command (after its tag) matches `pattern`, send `lines`
/// instead of the model's answer. `times`: how often it fires (`None`: always).
pub struct Rule {
    pub pattern: Regex,
    pub lines: String,
    pub times: Option<usize>,
    /// Let this many matching commands pass to the model first.
    pub after: usize,
    /// Send `lines` and then the model's answer too (unsolicited data mid-command).
    pub then_model: bool,
}

impl Rule {
    pub fn always(pattern: &str, lines: &str) -> Rule {
        Rule {
            pattern: Regex::new(pattern).expect("rule regex"),
            lines: lines.into(),
            times: None,
            after: 0,
            then_model: false,
        }
    }
    pub fn once(pattern: &str, lines: &str) -> Rule {
        Rule {
            times: Some(1),
            ..Rule::always(pattern, lines)
        }
    }
    /// Send `lines` before the model's own answer, every time.
    pub fn prepend(pattern: &str, lines: &str) -> Rule {
        Rule {
            then_model: true,
            ..Rule::always(pattern, lines)
        }
    }
    /// Fire once, on the (n+1)-th matching command.
    pub fn once_after(n: usize, pattern: &str, lines: &str) -> Rule {
        Rule {
            after: n,
            ..Rule::once(pattern, lines)
        }
    }
}

/// What the fake serves.
pub struct Script {
    pub capabilities: String,
    /// Raw LIST answer lines (without the tagged OK); `None`: made from the folders.
    pub list: Option<String>,
    pub folders: Vec<FakeFolder>,
    pub rules: Vec<Rule>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            capabilities:
                "IMAP4rev1 LITERAL+ UIDPLUS MULTIAPPEND NAMESPACE LIST-EXTENDED SPECIAL-USE BINARY"
                    .into(),
            list: None,
            folders: Vec::new(),
            rules: Vec::new(),
        }
    }
}

#[derive(Default)]
pub struct State {
    pub script: Script,
    /// Every command received (tag included, literals inline), in order.
    pub log: Vec<Vec<u8>>,
    pub connections: usize,
}

pub struct Fake {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn start(script: Script) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            script,
            ..Default::default()
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        Fake { port, state }
    }

    pub fn url(&self, user: &str) -> String {
        format!("imap://{user}@127.0.0.1:{}", self.port)
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The commands received, as text (lossy), tags stripped.
    pub fn commands(&self) -> Vec<String> {
        self.state()
            .log
            .iter()
            .map(|c| {
                let s = String::from_utf8_lossy(c).into_owned();
                s.split_once(' ').map(|(_, r)| r.to_string()).unwrap_or(s)
            })
            .collect()
    }

    pub fn folder(&self, name: &[u8]) -> Option<FakeFolder> {
        self.state()
            .script
            .folders
            .iter()
            .find(|f| f.name == name)
            .cloned()
    }
}

/// Read one command: its line, and each literal (answering `+` to a synchronizing one).
fn read_command(r: &mut BufReader<TcpStream>, w: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut cmd = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        cmd.extend_from_slice(&line);
        let Some((n, sync)) = literal_at_end(&line) else {
            return Ok(cmd);
        };
        if sync {
            w.write_all(b"+ go ahead\r\n")?;
        }
        let mut buf = vec![0; n];
        r.read_exact(&mut buf)?;
        cmd.extend_from_slice(&buf);
    }
}

fn literal_at_end(line: &[u8]) -> Option<(usize, bool)> {
    let l = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let inner = &l[open + 1..];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, sync))
}

/// Tokens of a command: atoms, strings (quoted or literal, unescaped), lists (raw).
fn tokens(cmd: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cmd.len() {
        match cmd[i] {
            b' ' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < cmd.len() && cmd[i] != b'"' {
                    if cmd[i] == b'\\' {
                        i += 1;
                    }
                    if i < cmd.len() {
                        s.push(cmd[i]);
                    }
                    i += 1;
                }
                i += 1;
                out.push(s);
            }
            b'{' | b'~' => {
                let start = if cmd[i] == b'~' { i + 2 } else { i + 1 };
                let close = start + cmd[start..].iter().position(|&b| b == b'}').unwrap_or(0);
                let n: usize = std::str::from_utf8(&cmd[start..close])
                    .unwrap_or("0")
                    .trim_end_matches('+')
                    .parse()
                    .unwrap_or(0);
                let from = close + 3;
                out.push(cmd[from..from + n].to_vec());
                i = from + n;
            }
            b'(' => {
                let mut depth = 0;
                let start = i;
                while i < cmd.len() {
                    if cmd[i] == b'(' {
                        depth += 1;
                    } else if cmd[i] == b')' {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    i += 1;
                }
                out.push(cmd[start..i].to_vec());
            }
            _ => {
                let start = i;
                // Atoms may hold [...] with spaces (BODY.PEEK[HEADER.FIELDS (A B)]).
                let mut br = 0;
                while i < cmd.len() && (br > 0 || !matches!(cmd[i], b' ' | b'\r' | b'\n')) {
                    if cmd[i] == b'[' {
                        br += 1;
                    } else if cmd[i] == b']' {
                        br -= 1;
                    }
                    i += 1;
                }
                out.push(cmd[start..i].to_vec());
            }
        }
    }
    out
}

/// A name as a server writes it: quoted with escapes, or a literal when 8-bit.
pub fn quote(name: &[u8]) -> Vec<u8> {
    if name.iter().any(|&b| !(0x20..0x80).contains(&b)) {
        let mut v = format!("{{{}}}\r\n", name.len()).into_bytes();
        v.extend_from_slice(name);
        return v;
    }
    let mut v = vec![b'"'];
    for &b in name {
        if b == b'"' || b == b'\\' {
            v.push(b'\\');
        }
        v.push(b);
    }
    v.push(b'"');
    v
}

fn in_set(set: &[u8], n: u32, max: u32) -> bool {
    String::from_utf8_lossy(set).split(',').any(|part| {
        let num = |s: &str| {
            if s == "*" {
                Some(max)
            } else {
                s.parse::<u32>().ok()
            }
        };
        match part.split_once(':') {
            Some((a, b)) => match (num(a), num(b)) {
                (Some(a), Some(b)) => (a.min(b)..=a.max(b)).contains(&n),
                _ => false,
            },
            None => num(part) == Some(n),
        }
    })
}

fn header_fields(body: &[u8], names: &[String]) -> Vec<u8> {
    let end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(body.len(), |i| i + 2);
    let mut out = Vec::new();
    for line in body[..end].split_inclusive(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        if names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `"01-Feb-2024 10:00:00 +0000"` as opposed to a message (which has line ends).
fn is_date(t: &[u8]) -> bool {
    (24..=27).contains(&t.len()) && !t.contains(&b'\n') && t.contains(&b':')
}

fn serve(conn: TcpStream, st: &Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    st.lock().unwrap_or_else(|p| p.into_inner()).connections += 1;
    w.write_all(b"* OK fake IMAP ready\r\n")?;
    let mut selected: Option<usize> = None;
    loop {
        let cmd = read_command(&mut r, &mut w)?;
        let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
        s.log.push(cmd.clone());
        let toks = tokens(&cmd);
        let tag = String::from_utf8_lossy(toks.first().map_or(&b""[..], |t| t)).into_owned();
        let rest = cmd
            .iter()
            .position(|&b| b == b' ')
            .map_or(&b""[..], |i| &cmd[i + 1..]);
        let opens = match toks.get(1).map(|v| v.to_ascii_uppercase()) {
            Some(v) if v == b"EXAMINE" || v == b"SELECT" => {
                let name = toks.get(2).cloned().unwrap_or_default();
                s.script.folders.iter().position(|f| f.name == name)
            }
            _ => None,
        };
        let mut rule = None;
        for r in s.script.rules.iter_mut() {
            if r.times == Some(0) || !r.pattern.is_match(rest) {
                continue;
            }
            if r.after > 0 {
                r.after -= 1;
                continue;
            }
            rule = Some(r);
            break;
        }
        if let Some(rule) = rule {
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            // A scripted EXAMINE/SELECT still opens the folder for what follows.
            if opens.is_some() {
                selected = opens;
            }
            let lines = rule.lines.replace("{tag}", &tag);
            if rule.then_model {
                w.write_all(lines.as_bytes())?;
            } else {
                drop(s);
                w.write_all(lines.as_bytes())?;
                continue;
            }
        }
        let verb = toks
            .get(1)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let verb2 = toks
            .get(2)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let mut out: Vec<u8> = Vec::new();
        let ok = |out: &mut Vec<u8>, text: &str| {
            out.extend_from_slice(format!("{tag} {text}\r\n").as_bytes());
        };
        match verb.as_slice() {
            b"CAPABILITY" => {
                out.extend_from_slice(
                    format!("* CAPABILITY {}\r\n", s.script.capabilities).as_bytes(),
                );
                ok(&mut out, "OK done");
            }
            b"LOGIN" | b"NOOP" | b"SUBSCRIBE" | b"CHECK" => ok(&mut out, "OK done"),
            b"LOGOUT" => {
                out.extend_from_slice(b"* BYE bye\r\n");
                ok(&mut out, "OK done");
                w.write_all(&out)?;
                return Ok(());
            }
            b"NAMESPACE" => {
                out.extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                ok(&mut out, "OK done");
            }
            b"LIST" | b"LSUB" => {
                match (&s.script.list, verb.as_slice()) {
                    (Some(l), b"LIST") => out.extend_from_slice(l.as_bytes()),
                    _ => {
                        for f in &s.script.folders {
                            out.extend_from_slice(
                                format!("* {} () \"/\" ", String::from_utf8_lossy(&verb))
                                    .as_bytes(),
                            );
                            out.extend_from_slice(&quote(&f.name));
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                }
                ok(&mut out, "OK done");
            }
            b"STATUS" | b"EXAMINE" | b"SELECT" | b"CREATE" => {
                let name = toks.get(2).cloned().unwrap_or_default();
                let found = s.script.folders.iter().position(|f| f.name == name);
                match (verb.as_slice(), found) {
                    (b"CREATE", Some(_)) => ok(&mut out, "NO [ALREADYEXISTS] exists"),
                    (b"CREATE", None) => {
                        s.script.folders.push(FakeFolder::new(&name, &[]));
                        ok(&mut out, "OK created");
                    }
                    (_, None) => ok(&mut out, "NO [NONEXISTENT] Mailbox doesn't exist"),
                    (b"STATUS", Some(i)) => {
                        let f = &s.script.folders[i];
                        out.extend_from_slice(b"* STATUS ");
                        out.extend_from_slice(&quote(&f.name));
                        out.extend_from_slice(
                            format!(
                                " (MESSAGES {} UIDNEXT {} UIDVALIDITY {})\r\n",
                                f.messages.len(),
                                f.uid_next,
                                f.uid_validity
                            )
                            .as_bytes(),
                        );
                        ok(&mut out, "OK done");
                    }
                    (_, Some(i)) => {
                        let f = &s.script.folders[i];
                        out.extend_from_slice(
                            format!(
                                "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] ok\r\n* {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY {}] ok\r\n* OK [UIDNEXT {}] ok\r\n",
                                f.messages.len(),
                                f.uid_validity,
                                f.uid_next
                            )
                            .as_bytes(),
                        );
                        selected = Some(i);
                        ok(&mut out, "OK selected");
                    }
                }
            }
            b"UID" | b"FETCH" => {
                let (set, items, by_uid) = if verb == b"UID" {
                    (toks.get(3), toks.get(4), true)
                } else {
                    (toks.get(2), toks.get(3), false)
                };
                let what = if by_uid {
                    verb2.as_slice()
                } else {
                    b"FETCH".as_slice()
                };
                let (Some(set), Some(items), Some(sel)) = (set, items, selected) else {
                    ok(&mut out, "BAD what");
                    w.write_all(&out)?;
                    continue;
                };
                if what != b"FETCH" {
                    ok(&mut out, "OK done");
                    w.write_all(&out)?;
                    continue;
                }
                let items = String::from_utf8_lossy(items).to_ascii_uppercase();
                let f = &s.script.folders[sel];
                let max_uid = f.messages.last().map_or(0, |m| m.uid);
                let max_seq = f.messages.len() as u32;
                for (i, m) in f.messages.iter().enumerate() {
                    let seq = i as u32 + 1;
                    let hit = if by_uid {
                        in_set(set, m.uid, max_uid)
                    } else {
                        in_set(set, seq, max_seq)
                    };
                    if !hit {
                        continue;
                    }
                    let mut line = format!("* {seq} FETCH (UID {}", m.uid).into_bytes();
                    if items.contains("RFC822.SIZE") {
                        line.extend_from_slice(format!(" RFC822.SIZE {}", m.body.len()).as_bytes());
                    }
                    if items.contains("FLAGS") {
                        line.extend_from_slice(format!(" FLAGS ({})", m.flags).as_bytes());
                    }
                    if items.contains("INTERNALDATE") {
                        line.extend_from_slice(format!(" INTERNALDATE \"{}\"", m.date).as_bytes());
                    }
                    if let Some(i) = items.find("HEADER.FIELDS (") {
                        let names: Vec<String> = items[i + 15..]
                            .split(')')
                            .next()
                            .unwrap_or("")
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        let h = header_fields(&m.body, &names);
                        line.extend_from_slice(
                            format!(
                                " BODY[HEADER.FIELDS ({})] {{{}}}\r\n",
                                names.join(" "),
                                h.len()
                            )
                            .as_bytes(),
                        );
                        line.extend_from_slice(&h);
                    }
                    if items.contains("BINARY.PEEK[]") {
                        line.extend_from_slice(
                            format!(" BINARY[] ~{{{}}}\r\n", m.body.len()).as_bytes(),
                        );
                        line.extend_from_slice(&m.body);
                    } else if items.contains("BODY.PEEK[]") {
                        line.extend_from_slice(
                            format!(" BODY[] {{{}}}\r\n", m.body.len()).as_bytes(),
                        );
                        line.extend_from_slice(&m.body);
                    }
                    line.extend_from_slice(b")\r\n");
                    out.extend_from_slice(&line);
                }
                ok(&mut out, "OK done");
            }
            b"APPEND" => {
                let name = toks.get(2).cloned().unwrap_or_default();
                let Some(i) = s.script.folders.iter().position(|f| f.name == name) else {
                    ok(&mut out, "NO [TRYCREATE] Mailbox doesn't exist");
                    w.write_all(&out)?;
                    continue;
                };
                let f = &mut s.script.folders[i];
                let first = f.uid_next;
                let mut flags = String::new();
                let mut date = "01-Jan-2024 00:00:00 +0000".to_string();
                for t in &toks[3..] {
                    if t.starts_with(b"(") {
                        flags = String::from_utf8_lossy(&t[1..t.len() - 1]).into_owned();
                    } else if is_date(t) {
                        date = String::from_utf8_lossy(t).into_owned();
                    } else {
                        let uid = f.uid_next;
                        f.uid_next += 1;
                        f.messages.push(FakeMessage {
                            uid,
                            body: t.clone(),
                            flags: std::mem::take(&mut flags),
                            date: date.clone(),
                        });
                    }
                }
                let last = f.uid_next - 1;
                ok(
                    &mut out,
                    &format!("OK [APPENDUID {} {first}:{last}] appended", f.uid_validity),
                );
            }
            _ => ok(&mut out, "BAD unknown command"),
        }
        drop(s);
        w.write_all(&out)?;
    }
}
