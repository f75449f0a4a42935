//! Real-server test harness: private Dovecot instances (scripts/testserver.sh),
//! a deterministic mail generator (scripts/genmail.py) and an independent
//! account digest (scripts/digest.py).
//!
//! Every `tests/*.rs` file that needs it does `mod support;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tempfile::TempDir;

mod cyrus;
#[allow(unused_imports)]
pub use cyrus::{CYRUS_ADMIN, Cyrus};

const DEFAULT_USER: (&str, &str) = ("alice", "alice-pw");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Options for [`Dovecot::start`]. `separator: '\0'` (the default) means '/'.
/// `extra_conf` is Dovecot configuration *text* appended to the generated
/// config (later settings override earlier ones).
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    pub separator: char,
    pub ns_prefix: Option<String>,
    pub quota: Option<String>,
    pub max_mail_size: Option<String>,
    pub untrusted_cert: bool,
    pub users: Vec<(String, String)>,
    pub special_use: Vec<(String, String)>,
    pub extra_conf: Option<String>,
}

/// A private Dovecot instance, stopped (and its directory removed) on drop.
pub struct Dovecot {
    pub imap_port: u16,
    pub imaps_port: u16,
    pub ca_file: PathBuf,
    pub dir: PathBuf,
    users: Vec<(String, String)>,
    _tmp: TempDir,
}

impl Dovecot {
    /// Starts a server; panics with the Dovecot log if it does not come up.
    pub fn start(opts: ServerOpts) -> Dovecot {
        let tmp = tempfile::Builder::new()
            .prefix("btsx-dovecot-")
            .tempdir()
            .expect("create temp dir for dovecot");
        let dir = tmp.path().to_path_buf();
        let users = if opts.users.is_empty() {
            vec![(DEFAULT_USER.0.to_string(), DEFAULT_USER.1.to_string())]
        } else {
            opts.users.clone()
        };
        let sep = if opts.separator == '\0' {
            '/'
        } else {
            opts.separator
        };

        let mut cmd = Command::new("bash");
        cmd.arg(script("testserver.sh"))
            .arg("start")
            .arg(&dir)
            .arg("--separator")
            .arg(sep.to_string())
            .arg("--owner-pid")
            .arg(std::process::id().to_string());
        if let Some(p) = &opts.ns_prefix {
            cmd.arg("--ns-prefix").arg(p);
        }
        if let Some(q) = &opts.quota {
            cmd.arg("--quota").arg(q);
        }
        if let Some(m) = &opts.max_mail_size {
            cmd.arg("--max-mail-size").arg(m);
        }
        if opts.untrusted_cert {
            cmd.arg("--untrusted-cert");
        }
        for (u, p) in &users {
            cmd.arg("--user").arg(format!("{u}:{p}"));
        }
        for (name, flag) in &opts.special_use {
            cmd.arg("--special-use").arg(format!("{name}={flag}"));
        }
        if let Some(text) = &opts.extra_conf {
            let path = dir.join("extra.conf");
            std::fs::write(&path, text).expect("write extra.conf");
            cmd.arg("--extra-conf").arg(path);
        }
        let out = run(cmd.stdin(Stdio::null()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let log = std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
            panic!(
                "testserver.sh start failed ({}):\n{}\n--- dovecot.log ---\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let var = |key: &str| -> u16 {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("testserver.sh printed no {key}: {stdout}"))
        };
        Dovecot {
            imap_port: var("IMAP_PORT"),
            imaps_port: var("IMAPS_PORT"),
            ca_file: root().join("tests/fixtures/ca.pem"),
            dir,
            users,
            _tmp: tmp,
        }
    }

    /// Separator '/', maildir LAYOUT=fs, user alice/alice-pw.
    pub fn source() -> Dovecot {
        Dovecot::start(ServerOpts {
            separator: '/',
            ..ServerOpts::default()
        })
    }

    /// Separator '.', Maildir++, user alice/alice-pw.
    pub fn destination() -> Dovecot {
        Dovecot::start(ServerOpts {
            separator: '.',
            ..ServerOpts::default()
        })
    }

    /// `imaps://USER@localhost:IMAPS_PORT` (user percent-encoded).
    pub fn url(&self, user: &str) -> String {
        format!("imaps://{}@localhost:{}", pct(user), self.imaps_port)
    }

    /// `imap://USER@localhost:IMAP_PORT` (plain port, offers STARTTLS).
    pub fn starttls_url(&self, user: &str) -> String {
        format!("imap://{}@localhost:{}", pct(user), self.imap_port)
    }

    pub fn password(&self, user: &str) -> String {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no such test user {user:?}"))
    }

    /// The Dovecot log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("dovecot.log")).unwrap_or_default())
            .into_owned()
    }

    /// Runs scripts/genmail.py against this server; returns its JSON summary
    /// `{"folders": n, "messages": n, "bytes": n}`.
    pub fn generate(&self, user: &str, args: &[&str]) -> serde_json::Value {
        script_json(
            "genmail.py",
            self.imap_port,
            user,
            &self.password(user),
            args,
            || format!("--- dovecot.log ---\n{}", self.log()),
        )
    }

    /// Runs scripts/digest.py (plain IMAP) against this server.
    pub fn digest(&self, user: &str) -> Digest {
        script_json(
            "digest.py",
            self.imap_port,
            user,
            &self.password(user),
            &[],
            || format!("--- dovecot.log ---\n{}", self.log()),
        )
    }

    /// Logs in as `user` over plain IMAP, runs `commands` (untagged, e.g.
    /// `"SELECT INBOX"`, `"STORE 1 +FLAGS (\\Deleted)"`; a command may carry
    /// synchronizing literals written as `{N}\r\n` followed by the N bytes),
    /// logs out and returns the transcript: client lines prefixed `C: `
    /// (`C: t1 SELECT INBOX`), server responses prefixed `S: `. NO/BAD answers
    /// are recorded, not fatal; a failing LOGIN panics.
    pub fn imap(&self, user: &str, commands: &[&str]) -> String {
        imap_transcript(self.imap_port, user, &self.password(user), commands)
    }

    /// Stops the server now (idempotent; drop does it anyway).
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(script("testserver.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a test needs of any real server (Dovecot or Cyrus), to write one test for both.
pub trait Server {
    /// "Dovecot" or "Cyrus", for failure messages.
    fn kind(&self) -> &'static str;
    fn url(&self, user: &str) -> String;
    fn password(&self, user: &str) -> String;
    fn ca_file(&self) -> &Path;
    fn generate(&self, user: &str, args: &[&str]) -> Value;
    fn digest(&self, user: &str) -> Digest;
    fn imap(&self, user: &str, commands: &[&str]) -> String;
    fn log(&self) -> String;
    fn imap_port(&self) -> u16;
}

macro_rules! impl_server {
    ($t:ty, $kind:literal) => {
        impl Server for $t {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn url(&self, user: &str) -> String {
                <$t>::url(self, user)
            }
            fn password(&self, user: &str) -> String {
                <$t>::password(self, user)
            }
            fn ca_file(&self) -> &Path {
                &self.ca_file
            }
            fn generate(&self, user: &str, args: &[&str]) -> Value {
                <$t>::generate(self, user, args)
            }
            fn digest(&self, user: &str) -> Digest {
                <$t>::digest(self, user)
            }
            fn imap(&self, user: &str, commands: &[&str]) -> String {
                <$t>::imap(self, user, commands)
            }
            fn log(&self) -> String {
                <$t>::log(self)
            }
            fn imap_port(&self) -> u16 {
                self.imap_port
            }
        }
    };
}
impl_server!(Dovecot, "Dovecot");
impl_server!(Cyrus, "Cyrus");

/// `btsx migrate SRC DST --ca-file … --state S EXTRA…` for `user` on both servers, passwords
/// in the environment, XDG_STATE_HOME beside the state file.
pub fn migrate_cmd(
    src: &dyn Server,
    dst: &dyn Server,
    user: &str,
    state: &Path,
    extra: &[&str],
) -> Command {
    let mut c = btsx();
    c.arg("migrate")
        .arg(src.url(user))
        .arg(dst.url(user))
        .arg("--ca-file")
        .arg(src.ca_file())
        .arg("--state")
        .arg(state)
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(user))
        .env("BTSX_DST_PASSWORD", dst.password(user))
        .env(
            "XDG_STATE_HOME",
            state.parent().unwrap_or(Path::new("/tmp")),
        )
        .stdin(Stdio::null());
    c
}

/// `btsx verify SRC DST --ca-file … --json` for `user`; returns (exit code, events). The
/// `verify_summary` must be the last event.
pub fn verify_json(src: &dyn Server, dst: &dyn Server, user: &str) -> (Option<i32>, Vec<Value>) {
    let out = btsx()
        .arg("verify")
        .arg(src.url(user))
        .arg(dst.url(user))
        .arg("--ca-file")
        .arg(src.ca_file())
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", src.password(user))
        .env("BTSX_DST_PASSWORD", dst.password(user))
        .stdin(Stdio::null())
        .output()
        .expect("run btsx verify");
    let events = json_lines(&out);
    last_event(&events, "verify_summary");
    (out.status.code(), events)
}

/// A summary's folder map with destination names as digest.py spells them: btsx may name a
/// Cyrus folder without its personal namespace prefix (`Archive.2020` is `INBOX.Archive.2020`).
pub fn digest_map(summary: &Value, dst: &Digest) -> HashMap<String, String> {
    folder_map(summary)
        .into_iter()
        .map(|(s, d)| {
            let full = if dst.folders.contains_key(&d) || d == "INBOX" {
                d
            } else {
                format!("INBOX.{d}")
            };
            (s, full)
        })
        .collect()
}

/// scripts/digest.py --binary: messages read with BINARY.PEEK[] (the stored bytes, NUL
/// included) on a server that offers BINARY.
pub fn digest_binary(server: &dyn Server, user: &str) -> Digest {
    let out = run(python3()
        .arg(script("digest.py"))
        .arg("--binary")
        .arg("--port")
        .arg(server.imap_port().to_string())
        .arg("--user")
        .arg(user)
        .arg("--password")
        .arg(server.password(user))
        .stdin(Stdio::null()));
    assert!(
        out.status.success(),
        "digest.py --binary against {} failed: {}",
        server.kind(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("digest.py printed bad JSON ({e})"))
}

/// Runs scripts/awkward.py against `server` (leaving out cases with a tag in `skip`);
/// returns its JSON summary (`cases`, `folders`, `messages`, `bytes`, `refused`, `skipped`).
pub fn awkward(server: &dyn Server, user: &str, skip: &[&str]) -> Value {
    let mut cmd = python3();
    cmd.arg(script("awkward.py"))
        .arg("--port")
        .arg(server.imap_port().to_string())
        .arg("--user")
        .arg(user)
        .arg("--password")
        .arg(server.password(user))
        .stdin(Stdio::null());
    for tag in skip {
        cmd.arg("--skip").arg(tag);
    }
    let out = run(&mut cmd);
    if !out.status.success() {
        panic!(
            "awkward.py against {} failed ({}):\n{}\n--- server log ---\n{}",
            server.kind(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "awkward.py printed bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `python3` for the helper scripts: $PYTHON if set, else /usr/bin/python3
/// when present (version-manager shims cost ~0.3 s a call), else `python3`.
pub fn python3() -> Command {
    let exe = match std::env::var_os("PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ if Path::new("/usr/bin/python3").exists() => PathBuf::from("/usr/bin/python3"),
        _ => PathBuf::from("python3"),
    };
    Command::new(exe)
}

/// Path of a helper script in scripts/ (e.g. `script("digest.py")`).
pub fn script(name: &str) -> PathBuf {
    root().join("scripts").join(name)
}

/// Runs a Python helper of scripts/ (genmail.py, digest.py) against a plain IMAP port and
/// parses the JSON it prints; a failure panics with the helper's stderr and `log()`.
fn script_json<T: serde::de::DeserializeOwned>(
    name: &str,
    port: u16,
    user: &str,
    password: &str,
    args: &[&str],
    log: impl Fn() -> String,
) -> T {
    let out = run(python3()
        .arg(script(name))
        .arg("--port")
        .arg(port.to_string())
        .arg("--user")
        .arg(user)
        .arg("--password")
        .arg(password)
        .args(args)
        .stdin(Stdio::null()));
    if !out.status.success() {
        panic!(
            "{name} {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            log()
        );
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} printed bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Logs in as `user` over plain IMAP, runs `commands`, logs out: the transcript (see
/// [`Dovecot::imap`]).
fn imap_transcript(port: u16, user: &str, password: &str, commands: &[&str]) -> String {
    let mut s = RawImap::connect(port);
    let login = format!("LOGIN {} {}", quote(user), quote(password));
    let (ok, t) = s.run("t0", &login);
    assert!(ok, "IMAP LOGIN as {user} failed:\n{t}");
    let mut transcript = String::new();
    for (i, c) in commands.iter().enumerate() {
        let (_, t) = s.run(&format!("t{}", i + 1), c);
        transcript.push_str(&t);
    }
    let _ = s.run("t99999", "LOGOUT");
    transcript
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Minimal IMAP client for [`Dovecot::imap`].
struct RawImap {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl RawImap {
    fn connect(port: u16) -> RawImap {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect to test dovecot");
        w.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        let mut s = RawImap { w, r };
        let greeting = s.response();
        assert!(greeting.starts_with(b"* OK"), "bad greeting {greeting:?}");
        s
    }

    /// One response line with any literals inlined.
    fn response(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self
                .r
                .read_until(b'\n', &mut out)
                .expect("read from dovecot");
            assert!(n > 0, "dovecot closed the connection");
            match literal_len(&out[start..]) {
                Some(len) => {
                    let at = out.len();
                    out.resize(at + len, 0);
                    self.r.read_exact(&mut out[at..]).expect("read literal");
                }
                None => return out,
            }
        }
    }

    /// Sends `tag command`, waiting for continuations at synchronizing
    /// literals; returns (tagged OK?, transcript).
    fn run(&mut self, tag: &str, command: &str) -> (bool, String) {
        let mut t = String::new();
        let full = format!("{tag} {command}");
        t.push_str("C: ");
        t.push_str(full.trim_end_matches("\r\n"));
        t.push('\n');
        let bytes = full.as_bytes();
        let mut pos = 0;
        let tagsp = format!("{tag} ");
        loop {
            // next "{N}\r\n" (synchronizing literal) after pos
            let sync = find_sync_literal(&bytes[pos..]).map(|(end, len)| (pos + end, len));
            match sync {
                Some((end, len)) => {
                    self.w.write_all(&bytes[pos..end]).unwrap();
                    loop {
                        let r = self.response();
                        t.push_str("S: ");
                        t.push_str(&String::from_utf8_lossy(&r));
                        if r.starts_with(b"+") {
                            break;
                        }
                        if r.starts_with(tagsp.as_bytes()) {
                            return (false, t);
                        }
                    }
                    let lit_end = (end + len).min(bytes.len());
                    self.w.write_all(&bytes[end..lit_end]).unwrap();
                    pos = lit_end;
                }
                None => {
                    self.w.write_all(&bytes[pos..]).unwrap();
                    self.w.write_all(b"\r\n").unwrap();
                    break;
                }
            }
        }
        loop {
            let r = self.response();
            t.push_str("S: ");
            t.push_str(&String::from_utf8_lossy(&r));
            if r.starts_with(tagsp.as_bytes()) {
                let ok = r[tagsp.len()..].starts_with(b"OK");
                return (ok, t);
            }
        }
    }
}

/// `...{N}\r\n` or `{N+}\r\n` at the end of a line -> N.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// First synchronizing literal marker `{N}\r\n` in `b`: (offset just past
/// the CRLF, N).
fn find_sync_literal(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && b[j..].starts_with(b"}\r\n") {
                let n = std::str::from_utf8(&b[i + 1..j]).ok()?.parse().ok()?;
                return Some((j + 3, n));
            }
        }
        i += 1;
    }
    None
}

/// Output of scripts/digest.py.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Digest {
    /// The server's hierarchy separator ('\0' if the server reported NIL).
    #[serde(deserialize_with = "separator")]
    pub separator: char,
    /// Decoded (UTF-8) full folder names; \Noselect folders are left out.
    pub folders: BTreeMap<String, FolderDigest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FolderDigest {
    pub special_use: Vec<String>,
    pub subscribed: bool,
    /// Sorted by (sha256, flags, internaldate).
    pub messages: Vec<MsgDigest>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct MsgDigest {
    pub sha256: String,
    pub size: u64,
    /// Sorted, without \Recent.
    pub flags: Vec<String>,
    /// Seconds since the epoch (UTC).
    pub internaldate: i64,
    pub message_id: Option<String>,
}

fn separator<'de, D: Deserializer<'de>>(d: D) -> Result<char, D::Error> {
    Ok(Option::<char>::deserialize(d)?.unwrap_or('\0'))
}

/// The btsx binary, with every BTSX_* variable and NO_COLOR removed from
/// its environment.
pub fn btsx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_btsx"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BTSX_") {
            c.env_remove(k);
        }
    }
    c.env_remove("NO_COLOR");
    c
}

pub fn total_messages(d: &Digest) -> usize {
    d.folders.values().map(|f| f.messages.len()).sum()
}

// ------------------------------------------------------------------------------------------
// btsx's JSON output

/// JSON lines; a killed run may leave a cut last line, which is ignored unless `strict`.
pub fn parse_lines(text: &str, strict: bool) -> Vec<Value> {
    let complete = match text.rfind('\n') {
        Some(i) if !strict => &text[..=i],
        None if !strict => "",
        _ => text,
    };
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// A finished run's stdout as JSON lines; every line must be JSON (the panic shows the output).
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{out:?}")))
        .collect()
}

/// The last event, which must be of type `ty`.
pub fn last_event<'a>(events: &'a [Value], ty: &str) -> &'a Value {
    let e = events.last().expect("no JSON events");
    assert_eq!(e["type"], ty, "the last event must be {ty}: {e}");
    e
}

/// The run's `summary`: the last event, which must be one.
pub fn summary(events: &[Value]) -> &Value {
    last_event(events, "summary")
}

/// Source folder → destination folder, from a `summary` event's `per_folder`.
pub fn folder_map(summary: &Value) -> HashMap<String, String> {
    summary["per_folder"]
        .as_array()
        .expect("per_folder")
        .iter()
        .map(|f| {
            (
                f["folder"].as_str().expect("folder").to_string(),
                f["destination"].as_str().expect("destination").to_string(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// comparing accounts

/// What a copy must keep of a message: (sha256, flags, internaldate).
pub type Key = (String, Vec<String>, i64);

/// The [`Key`] of a message.
pub fn key(m: &MsgDigest) -> Key {
    (m.sha256.clone(), m.flags.clone(), m.internaldate)
}

/// The destination name btsx gives a source folder when the source separator is '/' and
/// the destination's '.' ('/' → '.', '.' in a name → '_').
pub fn dest_name(src: &str) -> String {
    src.split('/')
        .map(|c| c.replace('.', "_"))
        .collect::<Vec<_>>()
        .join(".")
}

/// What [`assert_same_mail`] asks of destination folders no source folder maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Others {
    /// Not looked at.
    Ignored,
    /// They hold no mail.
    Empty,
}

/// Every source folder's messages (bytes, flags, dates) are exactly, and only once, in its
/// destination folder under `map`; with [`Others::Empty`], the destination has no other
/// folders with mail. A non-empty `what` prefixes every failure message (`"{what}: …"`).
pub fn assert_same_mail(
    what: &str,
    src: &Digest,
    dst: &Digest,
    map: &HashMap<String, String>,
    others: Others,
) {
    let at = if what.is_empty() {
        String::new()
    } else {
        format!("{what}: ")
    };
    let mut expected: BTreeMap<String, Vec<MsgDigest>> = BTreeMap::new();
    for (name, f) in &src.folders {
        let d = map
            .get(name)
            .unwrap_or_else(|| panic!("{at}source folder {name:?} missing from the summary"));
        expected
            .entry(d.clone())
            .or_default()
            .extend(f.messages.iter().cloned());
    }
    for (dname, want) in &expected {
        let mut want = want.clone();
        want.sort();
        let got = dst
            .folders
            .get(dname)
            .unwrap_or_else(|| panic!("{at}destination folder {dname:?} missing"));
        let mut have = got.messages.clone();
        have.sort();
        assert_eq!(
            have.len(),
            want.len(),
            "{at}message count in destination folder {dname:?}"
        );
        assert_eq!(
            have, want,
            "{at}messages (bytes, flags, dates) in {dname:?}"
        );
    }
    if others == Others::Empty {
        for (dname, f) in &dst.folders {
            assert!(
                expected.contains_key(dname) || f.messages.is_empty(),
                "{at}unexpected mail in destination folder {dname:?}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// processes

/// `kill -SIG pid`.
pub fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{sig} failed");
}

/// Waits for the child; kills it and panics after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("btsx did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
