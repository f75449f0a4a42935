//! linkproxy: a wide-area link in front of a plaintext IMAP server, for benchmarks.
//!
//! ```sh
//! cargo run --release --example linkproxy -- --upstream 127.0.0.1:10143 --delay-ms 20 --gmail
//! # prints "listening 127.0.0.1:PORT" on stdout, logs to stderr, runs until killed
//! ```
//!
//! - `--delay-ms D` delays every byte by D ms in each direction. It is a delay line: each chunk is
//!   stamped when read and written D ms later, in order, while reading goes on, so a delay adds
//!   latency without capping bandwidth (a sleep per read would do both).
//! - `--gmail` makes the upstream look like Gmail's IMAP: the advertised capabilities (a
//!   `* CAPABILITY` response and `[CAPABILITY …]` codes) lose MULTIAPPEND and have LITERAL+ turned
//!   into LITERAL- (RFC 7888). What a client then must not send is refused with a tagged BAD (and a
//!   `reject` log line) and never reaches the server: an APPEND of more than one message, or a
//!   non-synchronizing literal `{n+}` of more than 4,096 bytes. A command whose start the server
//!   already saw (after a synchronizing literal) cannot be taken back: the client gets the BAD and
//!   the connection is closed.
//! - `--cut-mb LO-HI` cuts every connection once it relayed LO–HI MB in one direction (a new
//!   random amount per connection and direction, `--seed`), so a message smaller than LO can
//!   always pass. With `--cut-link` the bytes are counted over all connections instead: the
//!   link drops one connection after every LO–HI MB it carried, and a connection that has
//!   relayed less than 16 KiB is not cut (the next one is).
//!
//! Plaintext IMAP only (`btsx --plaintext imap://…`, mbsync `SSLType None`); the rewriting and the
//! checks need to read the protocol.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: linkproxy --upstream HOST:PORT [--listen PORT] [--delay-ms MS] [--gmail] \
                     [--cut-mb LO-HI [--cut-link]] [--seed N]";
/// LITERAL- (RFC 7888): the largest non-synchronizing literal a client may send.
const LITERAL_MINUS_MAX: u64 = 4096;
/// A connection is not cut before it relayed this much (keeps cuts out of greetings and logins).
const MIN_CONN_BYTES: u64 = 16 * 1024;
/// Chunks waiting in one delay line; a full line stops the reader (back pressure).
const LINE_CAPACITY: usize = 1024;

#[derive(Clone, Debug)]
struct Opts {
    listen: u16,
    upstream: SocketAddr,
    delay: Duration,
    gmail: bool,
    cut: Option<(u64, u64)>,
    /// Count cut bytes over all connections rather than per connection.
    cut_link: bool,
    seed: u64,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = 0;
    let mut upstream = None;
    let mut delay = Duration::ZERO;
    let mut gmail = false;
    let mut cut = None;
    let mut cut_link = false;
    let mut seed = 1;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--upstream" => {
                let v = value()?;
                upstream = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--upstream {v}: {e}"))?
                    .next();
            }
            "--delay-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--delay-ms: {e}"))?;
                delay = Duration::from_millis(ms);
            }
            "--gmail" => gmail = true,
            "--cut-mb" => {
                let v = value()?;
                let (lo, hi) = v.split_once('-').ok_or("--cut-mb wants LO-HI, e.g. 6-12")?;
                let mb = |s: &str| -> Result<u64, String> {
                    let f: f64 = s.parse().map_err(|e| format!("--cut-mb {v}: {e}"))?;
                    if !(f > 0.0 && f.is_finite()) {
                        return Err(format!("--cut-mb {v}: not a positive size"));
                    }
                    Ok((f * 1e6) as u64)
                };
                let (lo, hi) = (mb(lo)?, mb(hi)?);
                if lo > hi {
                    return Err(format!("--cut-mb {v}: LO above HI"));
                }
                cut = Some((lo, hi));
            }
            "--cut-link" => cut_link = true,
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    let upstream = upstream.ok_or_else(|| format!("--upstream is required\n{USAGE}"))?;
    Ok(Opts {
        listen,
        upstream,
        delay,
        gmail,
        cut,
        cut_link,
        seed,
    })
}

fn log(msg: &str) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!("{}.{:03} {msg}", t.as_secs(), t.subsec_millis());
}

/// splitmix64: deterministic cut points from `--seed`.
fn next_rand(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Cut schedule of one direction, over all connections.
struct CutClock {
    lo: u64,
    hi: u64,
    relayed: u64,
    next_at: u64,
    rng: u64,
}

impl CutClock {
    fn new(lo: u64, hi: u64, seed: u64) -> CutClock {
        let mut c = CutClock {
            lo,
            hi,
            relayed: 0,
            next_at: 0,
            rng: seed,
        };
        c.next_at = c.gap();
        c
    }

    fn gap(&mut self) -> u64 {
        self.lo + next_rand(&mut self.rng) % (self.hi - self.lo + 1)
    }

    /// `len` more bytes on a connection that relayed `conn_bytes` so far: where to cut, if here.
    fn advance(&mut self, conn_bytes: u64, len: usize) -> Option<usize> {
        let before = self.relayed;
        self.relayed += len as u64;
        if self.relayed < self.next_at || conn_bytes + (len as u64) < MIN_CONN_BYTES {
            return None;
        }
        let at = self
            .next_at
            .saturating_sub(before)
            .max(MIN_CONN_BYTES.saturating_sub(conn_bytes))
            .min(len as u64);
        self.next_at = self.relayed.max(self.next_at) + self.gap();
        Some(at as usize)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

struct Shared {
    opts: Opts,
    /// `--cut-link`: [to server, to client], over all connections.
    cuts: Option<[Mutex<CutClock>; 2]>,
    connections: AtomicUsize,
}

enum Item {
    /// Write these bytes at this instant.
    Data(Instant, Vec<u8>),
    /// Close both sockets (after everything queued before).
    Close,
}

/// The server→client side of a connection: its delay line and where its responses end, so a BAD
/// from the proxy lands between two responses.
struct ToClient {
    tx: SyncSender<Item>,
    /// The link's one-way delay (a BAD from the proxy takes it too).
    delay: Duration,
    frames: Frames,
    /// A line (and whether to close afterwards) waiting for the next response boundary.
    pending: Option<(Vec<u8>, bool)>,
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("linkproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", opts.listen)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("linkproxy: cannot listen on 127.0.0.1:{}: {e}", opts.listen);
            return ExitCode::from(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("listening 127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    log(&format!(
        "start: upstream {} delay {:?} each way, gmail {}, cuts {:?} bytes{}",
        opts.upstream,
        opts.delay,
        opts.gmail,
        opts.cut,
        if opts.cut_link {
            " over all connections"
        } else {
            " per connection"
        }
    ));
    let cuts = opts.cut.filter(|_| opts.cut_link).map(|(lo, hi)| {
        [
            Mutex::new(CutClock::new(lo, hi, opts.seed)),
            Mutex::new(CutClock::new(lo, hi, opts.seed ^ 0x5555)),
        ]
    });
    let shared = Arc::new(Shared {
        opts,
        cuts,
        connections: AtomicUsize::new(0),
    });
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                log(&format!("accept: {e}"));
                continue;
            }
        };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst);
        let sh = shared.clone();
        std::thread::spawn(move || {
            if let Err(e) = connection(id, client, &sh) {
                log(&format!("conn {id}: {e}"));
            }
        });
    }
    ExitCode::SUCCESS
}

fn connection(id: usize, client: TcpStream, sh: &Arc<Shared>) -> std::io::Result<()> {
    let server = TcpStream::connect_timeout(&sh.opts.upstream, Duration::from_secs(10))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    log(&format!("conn {id}: open"));
    let (to_server_tx, to_server_rx) = sync_channel(LINE_CAPACITY);
    let (to_client_tx, to_client_rx) = sync_channel(LINE_CAPACITY);
    let to_client = Arc::new(Mutex::new(ToClient {
        tx: to_client_tx,
        delay: sh.opts.delay,
        frames: Frames::default(),
        pending: None,
    }));
    let sockets = [client.try_clone()?, server.try_clone()?];
    let w1 = {
        let (out, socks) = (server.try_clone()?, clone_pair(&sockets)?);
        std::thread::spawn(move || delay_writer(to_server_rx, out, socks))
    };
    let w2 = {
        let (out, socks) = (client.try_clone()?, clone_pair(&sockets)?);
        std::thread::spawn(move || delay_writer(to_client_rx, out, socks))
    };
    let r1 = {
        let (from, tc, sh) = (client.try_clone()?, to_client.clone(), sh.clone());
        std::thread::spawn(move || client_reader(id, from, to_server_tx, &tc, &sh))
    };
    server_reader(id, server, &to_client, sh);
    let _ = r1.join();
    let _ = w1.join();
    let _ = w2.join();
    log(&format!("conn {id}: closed"));
    Ok(())
}

fn clone_pair(s: &[TcpStream; 2]) -> std::io::Result<[TcpStream; 2]> {
    Ok([s[0].try_clone()?, s[1].try_clone()?])
}

/// Writes each chunk when its time comes; closes both sockets at the end of the line.
fn delay_writer(rx: Receiver<Item>, mut out: TcpStream, sockets: [TcpStream; 2]) {
    while let Ok(item) = rx.recv() {
        match item {
            Item::Data(due, bytes) => {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if out.write_all(&bytes).is_err() {
                    break;
                }
            }
            Item::Close => break,
        }
    }
    for s in &sockets {
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// Reads one chunk; `None` at the end of the stream or on an error.
fn read_chunk(from: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    loop {
        match from.read(buf) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// This connection's own cut schedule in one direction (none with `--cut-link`).
fn own_clock(sh: &Shared, id: usize, dir: Dir) -> Option<CutClock> {
    let (lo, hi) = sh.opts.cut.filter(|_| !sh.opts.cut_link)?;
    let seed = sh.opts.seed ^ ((id as u64) << 8) ^ dir as u64;
    Some(CutClock::new(lo, hi, seed))
}

/// How much of a chunk to relay before cutting, if the cut schedule says so.
fn cut_point(
    sh: &Shared,
    own: &mut Option<CutClock>,
    dir: Dir,
    id: usize,
    conn_bytes: u64,
    len: usize,
) -> Option<usize> {
    let at = match own {
        Some(clock) => clock.advance(conn_bytes, len)?,
        None => sh.cuts.as_ref()?[dir as usize]
            .lock()
            .ok()?
            .advance(conn_bytes, len)?,
    };
    log(&format!(
        "conn {id}: cut {dir:?} after {} bytes of this connection",
        conn_bytes + at as u64
    ));
    Some(at)
}

fn server_reader(id: usize, mut from: TcpStream, to_client: &Mutex<ToClient>, sh: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut conn_bytes = 0u64;
    let mut clock = own_clock(sh, id, Dir::ToClient);
    while let Some(n) = read_chunk(&mut from, &mut buf) {
        let cut = cut_point(sh, &mut clock, Dir::ToClient, id, conn_bytes, n);
        let chunk = &buf[..cut.unwrap_or(n)];
        conn_bytes += n as u64;
        let Ok(mut tc) = to_client.lock() else { break };
        let due = Instant::now() + sh.opts.delay;
        let (out, close) = if sh.opts.gmail {
            let tc = &mut *tc;
            tc.frames.server_chunk(chunk, &mut tc.pending)
        } else {
            (chunk.to_vec(), false)
        };
        if tc.tx.send(Item::Data(due, out)).is_err() {
            return;
        }
        if close || cut.is_some() {
            break;
        }
    }
    if let Ok(tc) = to_client.lock() {
        let _ = tc.tx.send(Item::Close);
    }
}

fn client_reader(
    id: usize,
    mut from: TcpStream,
    tx: SyncSender<Item>,
    to_client: &Mutex<ToClient>,
    sh: &Shared,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut conn_bytes = 0u64;
    let mut cmds = Commands::default();
    let mut clock = own_clock(sh, id, Dir::ToServer);
    while let Some(n) = read_chunk(&mut from, &mut buf) {
        let cut = cut_point(sh, &mut clock, Dir::ToServer, id, conn_bytes, n);
        let chunk = &buf[..cut.unwrap_or(n)];
        conn_bytes += n as u64;
        let due = Instant::now() + sh.opts.delay;
        let mut close = false;
        let out = if sh.opts.gmail {
            let mut out = Vec::with_capacity(chunk.len());
            for rejection in cmds.client_chunk(chunk, &mut out) {
                log(&format!(
                    "conn {id}: reject {}: {}",
                    String::from_utf8_lossy(&rejection.tag),
                    rejection.reason
                ));
                let line = [
                    &rejection.tag[..],
                    b" BAD [CLIENTBUG] linkproxy: ",
                    rejection.reason.as_bytes(),
                    b"\r\n",
                ]
                .concat();
                inject(to_client, line, rejection.close);
                close |= rejection.close;
            }
            out
        } else {
            chunk.to_vec()
        };
        if tx.send(Item::Data(due, out)).is_err() || close || cut.is_some() {
            break;
        }
    }
    let _ = tx.send(Item::Close);
}

/// Sends `line` to the client now if the server is between two responses, else at the next
/// boundary.
fn inject(to_client: &Mutex<ToClient>, line: Vec<u8>, close: bool) {
    let Ok(mut tc) = to_client.lock() else { return };
    if tc.frames.at_boundary() && tc.pending.is_none() {
        let _ = tc.tx.send(Item::Data(Instant::now() + tc.delay, line));
        if close {
            let _ = tc.tx.send(Item::Close);
        }
    } else {
        tc.pending = Some((line, close));
    }
}

/// `…{123}` or `…{123+}` at the end of a line (CRLF already removed) → (123, non-synchronizing).
fn literal_marker(line: &[u8]) -> Option<(u64, bool)> {
    let t = line.strip_suffix(b"}")?;
    let open = t.iter().rposition(|&b| b == b'{')?;
    let digits = &t[open + 1..];
    let (digits, nonsync) = match digits.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (digits, false),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, nonsync))
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Server responses, split into lines and literals.
#[derive(Default)]
struct Frames {
    /// The current line, up to its LF.
    line: Vec<u8>,
    /// Literal bytes still to pass.
    literal: u64,
    /// Inside a response that continues after a literal.
    mid: bool,
}

impl Frames {
    fn at_boundary(&self) -> bool {
        self.literal == 0 && !self.mid
    }

    /// Rewrites the capabilities in `chunk`; puts a pending line in at the first boundary.
    /// Returns the bytes to relay and whether to close the connection after them.
    fn server_chunk(
        &mut self,
        mut chunk: &[u8],
        pending: &mut Option<(Vec<u8>, bool)>,
    ) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        loop {
            if self.at_boundary()
                && let Some((line, close)) = pending.take()
            {
                out.extend_from_slice(&line);
                if close {
                    return (out, true);
                }
            }
            if chunk.is_empty() {
                return (out, false);
            }
            if self.literal > 0 {
                let take = (self.literal as usize).min(chunk.len());
                out.extend_from_slice(&chunk[..take]);
                self.literal -= take as u64;
                chunk = &chunk[take..];
                continue;
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.line.extend_from_slice(&chunk[..=p]);
                    chunk = &chunk[p + 1..];
                    let line = std::mem::take(&mut self.line);
                    let bare = trim_crlf(&line);
                    match literal_marker(bare) {
                        Some((n, _)) => {
                            self.literal = n;
                            self.mid = true;
                        }
                        None => self.mid = false,
                    }
                    match rewrite_capabilities(bare) {
                        Some(mut l) => {
                            l.extend_from_slice(b"\r\n");
                            out.extend_from_slice(&l);
                        }
                        None => out.extend_from_slice(&line),
                    }
                }
                None => {
                    self.line.extend_from_slice(chunk);
                    chunk = &[];
                }
            }
        }
    }
}

/// `* CAPABILITY …` or `… [CAPABILITY …] …` without MULTIAPPEND and with LITERAL- for LITERAL+;
/// `None` when the line has no capability list.
fn rewrite_capabilities(line: &[u8]) -> Option<Vec<u8>> {
    let upper = line.to_ascii_uppercase();
    let (start, end) = if upper.starts_with(b"* CAPABILITY ") {
        (b"* CAPABILITY ".len(), line.len())
    } else {
        let code = b"[CAPABILITY ";
        let at = upper.windows(code.len()).position(|w| w == code)? + code.len();
        let end = at + upper[at..].iter().position(|&b| b == b']')?;
        (at, end)
    };
    let caps: Vec<&[u8]> = line[start..end]
        .split(|&b| b == b' ')
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"MULTIAPPEND"))
        .map(|c| {
            if c.eq_ignore_ascii_case(b"LITERAL+") {
                &b"LITERAL-"[..]
            } else {
                c
            }
        })
        .collect();
    Some([&line[..start], &caps.join(&b' ')[..], &line[end..]].concat())
}

/// A command the proxy refused.
struct Rejection {
    tag: Vec<u8>,
    reason: String,
    /// The server already saw the start of the command: the connection must close.
    close: bool,
}

/// Client commands, checked against what a Gmail-like server allows.
#[derive(Default)]
struct Commands {
    /// The current line (fragment of a command), up to its LF.
    line: Vec<u8>,
    /// Literal bytes still to pass (or drop).
    literal: u64,
    /// Inside a command (after its first fragment).
    in_command: bool,
    tag: Vec<u8>,
    append: bool,
    /// Messages (literals) in the APPEND so far.
    messages: u32,
    /// The command so far, held back until it ends or waits for a `+`.
    held: Vec<u8>,
    /// Part of this command already went to the server.
    sent_any: bool,
    /// Refused: the rest of the command is dropped.
    dropping: bool,
}

impl Commands {
    /// Appends what may go to the server to `out`; returns what was refused.
    fn client_chunk(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) -> Vec<Rejection> {
        let mut rejected = Vec::new();
        while !chunk.is_empty() {
            if self.literal > 0 {
                let take = (self.literal as usize).min(chunk.len());
                if !self.dropping {
                    self.pass(&chunk[..take], out);
                }
                self.literal -= take as u64;
                chunk = &chunk[take..];
                continue;
            }
            let Some(p) = chunk.iter().position(|&b| b == b'\n') else {
                self.line.extend_from_slice(chunk);
                break;
            };
            self.line.extend_from_slice(&chunk[..=p]);
            chunk = &chunk[p + 1..];
            let line = std::mem::take(&mut self.line);
            if let Some(r) = self.fragment(&line, out) {
                let close = r.close;
                rejected.push(r);
                if close {
                    break;
                }
            }
        }
        rejected
    }

    /// Bytes of the current command: held back until the server must see them.
    fn pass(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.sent_any {
            out.extend_from_slice(bytes);
        } else {
            self.held.extend_from_slice(bytes);
        }
    }

    fn fragment(&mut self, line: &[u8], out: &mut Vec<u8>) -> Option<Rejection> {
        let bare = trim_crlf(line);
        if !self.in_command {
            self.in_command = true;
            let mut words = bare.split(|&b| b == b' ');
            self.tag = words.next().unwrap_or_default().to_vec();
            self.append = words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"));
            self.messages = 0;
            self.sent_any = false;
            self.dropping = false;
            self.held.clear();
        }
        let marker = literal_marker(bare);
        let mut rejection = None;
        if !self.dropping
            && let Some((n, nonsync)) = marker
        {
            if self.append {
                self.messages += 1;
            }
            let reason = if self.append && self.messages > 1 {
                Some("APPEND of more than one message, but MULTIAPPEND is not advertised".into())
            } else if nonsync && n > LITERAL_MINUS_MAX {
                Some(format!(
                    "non-synchronizing literal {{{n}+}} over {LITERAL_MINUS_MAX} bytes under LITERAL-"
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                self.dropping = true;
                self.held.clear();
                rejection = Some(Rejection {
                    tag: self.tag.clone(),
                    reason,
                    close: self.sent_any,
                });
            }
        }
        if !self.dropping {
            self.pass(line, out);
        }
        match marker {
            // The client sends the literal without waiting: it belongs to this command.
            Some((n, true)) => self.literal = n,
            // The client waits for the server's `+`, which a refused command never gets.
            Some((n, false)) if !self.dropping => {
                out.append(&mut self.held);
                self.sent_any = true;
                self.literal = n;
            }
            _ => {
                if !self.dropping {
                    out.append(&mut self.held);
                }
                self.in_command = false;
            }
        }
        rejection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_rewritten() {
        let l = b"* CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND UIDPLUS";
        assert_eq!(
            rewrite_capabilities(l).unwrap(),
            b"* CAPABILITY IMAP4rev1 LITERAL- UIDPLUS"
        );
        let l = b"* OK [CAPABILITY IMAP4rev1 multiappend literal+ IDLE] Dovecot ready.";
        assert_eq!(
            rewrite_capabilities(l).unwrap(),
            b"* OK [CAPABILITY IMAP4rev1 LITERAL- IDLE] Dovecot ready."
        );
        assert!(rewrite_capabilities(b"* 1 FETCH (UID 5)").is_none());
    }

    #[test]
    fn literals_in_server_responses_pass_untouched() {
        let mut f = Frames::default();
        let mut pending = Some((b"X BAD no\r\n".to_vec(), false));
        f.literal = 0;
        // A literal that looks like a capability line is not rewritten; the BAD waits for the end.
        let s = b"* 1 FETCH (BODY[] {33}\r\n* CAPABILITY LITERAL+ MULTIAPPEND)\r\n";
        let mut pending2 = None;
        let (out, close) = f.server_chunk(s, &mut pending2);
        assert_eq!(out, s);
        assert!(!close);
        let (out, _) = f.server_chunk(b"A1 OK done\r\n", &mut pending);
        assert_eq!(out, b"X BAD no\r\nA1 OK done\r\n");
    }

    #[test]
    fn small_nonsync_and_sync_literals_pass() {
        let mut c = Commands::default();
        let mut out = Vec::new();
        let cmd = b"A1 APPEND INBOX {5+}\r\nhello\r\nA2 APPEND INBOX {6000}\r\n";
        assert!(c.client_chunk(cmd, &mut out).is_empty());
        assert_eq!(out, cmd);
    }

    #[test]
    fn big_nonsync_literal_refused_and_dropped() {
        let mut c = Commands::default();
        let mut out = Vec::new();
        let body = vec![b'x'; 5000];
        let cmd = [
            &b"A1 APPEND INBOX {5000+}\r\n"[..],
            &body,
            b"\r\nA2 NOOP\r\n",
        ]
        .concat();
        let r = c.client_chunk(&cmd, &mut out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].tag, b"A1");
        assert!(!r[0].close);
        assert_eq!(out, b"A2 NOOP\r\n");
    }

    #[test]
    fn multiappend_refused_before_the_server_sees_it() {
        let mut c = Commands::default();
        let mut out = Vec::new();
        let cmd = b"A1 APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\nA2 NOOP\r\n";
        let r = c.client_chunk(cmd, &mut out);
        assert_eq!(r.len(), 1);
        assert!(r[0].reason.contains("MULTIAPPEND"));
        assert!(!r[0].close);
        assert_eq!(out, b"A2 NOOP\r\n");
        // After a synchronizing literal the server has seen the start: close.
        let mut c = Commands::default();
        let mut out = Vec::new();
        let r = c.client_chunk(b"A3 APPEND INBOX {3}\r\nabc {3}\r\n", &mut out);
        assert_eq!(r.len(), 1);
        assert!(r[0].close);
        assert_eq!(out, b"A3 APPEND INBOX {3}\r\nabc");
    }

    #[test]
    fn cuts_follow_the_schedule() {
        let mut c = CutClock::new(1000, 1000, 1);
        assert_eq!(c.advance(0, 20_000), Some(16_384));
        assert_eq!(c.advance(20_000, 500), None);
        assert_eq!(c.advance(20_500, 600), Some(500));
    }
}
