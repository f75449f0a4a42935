//! A fault-injecting TCP proxy for tests: listens on 127.0.0.1, relays every
//! accepted connection to an upstream port (raw bytes, so TLS passes through
//! untouched) and, following a [`Rule`], breaks the stream: cuts it, stalls it,
//! or (plaintext IMAP only) injects a line between two server responses.
//!
//! The rule counts the bytes relayed in one direction *across all
//! connections* and fires every `every` bytes ("cut every ~2 MB"), at most
//! `max_faults` times, so a run through the proxy always finishes. The proxy
//! stops by itself after `lifetime` and on drop (every thread joined, every
//! socket shut down).
//!
//! Include with `#[path = "support/proxy.rs"] mod proxy;`.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which way bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Server to client (FETCH bodies on a source, answers on a destination).
    ServerToClient,
    /// Client to server (APPENDs on a destination).
    ClientToServer,
}

/// What happens when a rule fires.
#[derive(Clone, Debug)]
pub enum Action {
    /// Relay exactly up to the trigger byte, then close both sockets.
    Cut,
    /// Stop relaying in both directions for this long, then close both sockets.
    Stall(Duration),
    /// Server to client only, plaintext only: write this line at the next
    /// response boundary (never inside a literal), then relay on.
    Inject(Vec<u8>),
    /// Like `Inject`, but into the answer to the next client command that
    /// contains `command` on that connection (e.g. b"RFC822.SIZE").
    InjectAfterCommand { command: Vec<u8>, line: Vec<u8> },
}

/// A fault schedule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub dir: Dir,
    pub action: Action,
    /// First fault after this many bytes (counted over all connections).
    pub first_at: u64,
    /// Then one fault every this many bytes.
    pub every: u64,
    /// Never more faults than this.
    pub max_faults: usize,
    /// A connection is only faulted once it relayed this many bytes in the
    /// rule's direction (keeps faults out of TLS handshakes and logins).
    pub min_conn_bytes: u64,
    /// Only connections accepted as number `from_conn` (0-based) or later are faulted.
    pub from_conn: usize,
    /// Count `first_at` in each connection's own bytes rather than over all
    /// connections (to hit a handshake or a login; `every` is then unused).
    pub per_connection: bool,
}

impl Rule {
    /// Cut a connection every `every` bytes flowing `dir`, at most `max` times.
    pub fn cut_every(dir: Dir, every: u64, max: usize) -> Rule {
        Rule {
            dir,
            action: Action::Cut,
            first_at: every,
            every,
            max_faults: max,
            min_conn_bytes: 16 * 1024,
            from_conn: 0,
            per_connection: false,
        }
    }

    /// Cut connections number `from_conn` and later once each relayed `at`
    /// bytes flowing `dir`, at most `max` times (e.g. inside a TLS handshake).
    pub fn cut_connections_at(dir: Dir, from_conn: usize, at: u64, max: usize) -> Rule {
        Rule {
            dir,
            action: Action::Cut,
            first_at: at,
            every: 0,
            max_faults: max,
            min_conn_bytes: 0,
            from_conn,
            per_connection: true,
        }
    }

    /// Stall once, after `after` bytes flowing `dir`.
    pub fn stall_once(dir: Dir, after: u64, dur: Duration) -> Rule {
        Rule {
            dir,
            action: Action::Stall(dur),
            first_at: after,
            every: u64::MAX / 4,
            max_faults: 1,
            min_conn_bytes: 16 * 1024,
            from_conn: 0,
            per_connection: false,
        }
    }

    /// Inject `line` into the server's answers once, after `after` bytes.
    pub fn inject_once(after: u64, line: &[u8]) -> Rule {
        Rule {
            dir: Dir::ServerToClient,
            action: Action::Inject(line.to_vec()),
            first_at: after,
            every: u64::MAX / 4,
            max_faults: 1,
            min_conn_bytes: 4 * 1024,
            from_conn: 0,
            per_connection: false,
        }
    }

    /// Once `after` bytes went to the clients, inject `line` into the answer
    /// to the next command containing `command` on the connection that
    /// crossed the mark.
    pub fn inject_after_command(after: u64, command: &[u8], line: &[u8]) -> Rule {
        Rule {
            dir: Dir::ServerToClient,
            action: Action::InjectAfterCommand {
                command: command.to_vec(),
                line: line.to_vec(),
            },
            first_at: after,
            every: u64::MAX / 4,
            max_faults: 1,
            min_conn_bytes: 4 * 1024,
            from_conn: 0,
            per_connection: false,
        }
    }
}

#[derive(Default)]
struct Counter {
    relayed: u64,
    next_at: u64,
    faults: usize,
}

/// Per-connection cut points drawn from a range (see [`Proxy::cut_each_connection`]).
#[derive(Clone, Copy)]
struct Spread {
    lo: u64,
    hi: u64,
    seed: u64,
}

impl Spread {
    /// Where connection `id` is cut in `dir` (splitmix64 of seed, id and direction).
    fn at(&self, id: usize, dir: Dir) -> u64 {
        let mut z = self
            .seed
            .wrapping_add((id as u64) << 1 | u64::from(dir == Dir::ClientToServer))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        self.lo + z % (self.hi.saturating_sub(self.lo) + 1)
    }
}

struct Shared {
    upstream: SocketAddr,
    /// Each rule with its own byte counter.
    rules: Vec<(Rule, Mutex<Counter>)>,
    spread: Option<Spread>,
    /// No more faults: a plain relay from now on.
    healed: AtomicBool,
    stop: AtomicBool,
    connections: AtomicUsize,
    /// Faults actually carried out (an injection counts once written).
    faults_done: AtomicUsize,
    /// Every socket, to shut down on drop.
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    log: Mutex<Vec<String>>,
}

impl Shared {
    fn note(&self, s: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(s);
        }
    }
}

/// A running proxy; stops on drop.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// Upper bounds so a broken test cannot leave a proxy running forever.
const MAX_CONNECTIONS: usize = 500;
const LIFETIME: Duration = Duration::from_secs(15 * 60);
const POLL: Duration = Duration::from_millis(50);

impl Proxy {
    /// Relay 127.0.0.1:`upstream_port`, faulting per `rule` (None: a clean relay).
    pub fn start(upstream_port: u16, rule: Option<Rule>) -> Proxy {
        Proxy::with_rules(upstream_port, rule.into_iter().collect())
    }

    /// Like [`Proxy::start`] with several independent rules (the first that
    /// fires on a chunk wins).
    pub fn with_rules(upstream_port: u16, rules: Vec<Rule>) -> Proxy {
        Proxy::build(upstream_port, rules, None)
    }

    /// A flaky link: every connection is cut once it relayed a random amount between `lo`
    /// and `hi` bytes in one of `dirs` (a new amount per connection and direction, drawn
    /// from `seed`, so a run faces the same cuts in the same connections).
    pub fn cut_each_connection(
        upstream_port: u16,
        dirs: &[Dir],
        lo: u64,
        hi: u64,
        seed: u64,
    ) -> Proxy {
        let rules = dirs
            .iter()
            .map(|&dir| Rule {
                dir,
                action: Action::Cut,
                first_at: lo,
                every: 0,
                max_faults: usize::MAX,
                min_conn_bytes: 0,
                from_conn: 0,
                per_connection: true,
            })
            .collect();
        Proxy::build(upstream_port, rules, Some(Spread { lo, hi, seed }))
    }

    fn build(upstream_port: u16, rules: Vec<Rule>, spread: Option<Spread>) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("proxy addr").port();
        let rules = rules
            .into_iter()
            .map(|r| {
                let c = Counter {
                    relayed: 0,
                    next_at: r.first_at,
                    faults: 0,
                };
                (r, Mutex::new(c))
            })
            .collect();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            rules,
            spread,
            healed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            faults_done: AtomicUsize::new(0),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(listener, sh));
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// From now on relay without faults (the same address, a sound link).
    pub fn heal(&self) {
        self.shared.healed.store(true, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Faults carried out so far.
    pub fn faults(&self) -> usize {
        self.shared.faults_done.load(Ordering::SeqCst)
    }

    /// Bytes relayed so far in the first rule's direction.
    pub fn relayed(&self) -> u64 {
        self.shared
            .rules
            .first()
            .and_then(|(_, c)| c.lock().ok().map(|c| c.relayed))
            .unwrap_or(0)
    }

    /// What happened, one line per connection and fault.
    pub fn log(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        if let Ok(socks) = self.shared.sockets.lock() {
            for s in socks.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let threads: Vec<JoinHandle<()>> = self
            .shared
            .threads
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, sh: Arc<Shared>) {
    let started = Instant::now();
    while !sh.stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
        match listener.accept() {
            Ok((client, _)) => {
                let n = sh.connections.fetch_add(1, Ordering::SeqCst);
                if n >= MAX_CONNECTIONS {
                    drop(client);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let server = match TcpStream::connect_timeout(&sh.upstream, Duration::from_secs(5))
                {
                    Ok(s) => s,
                    Err(e) => {
                        sh.note(format!("conn {n}: upstream connect failed: {e}"));
                        continue;
                    }
                };
                sh.note(format!("conn {n}: open"));
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                start_connection(n, client, server, &sh);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 5),
            Err(_) => std::thread::sleep(POLL),
        }
    }
    sh.stop.store(true, Ordering::SeqCst);
}

/// State of one connection, shared by its two pump threads.
struct Conn {
    id: usize,
    client: TcpStream,
    server: TcpStream,
    /// Both directions stop writing until this instant (stall).
    stalled_until: Mutex<Option<Instant>>,
    /// (command pattern, line): inject the line once the client sent the pattern.
    wait_command: Mutex<Option<(Vec<u8>, Vec<u8>)>>,
    /// A line for the server→client pump to inject at the next response boundary.
    inject_now: Mutex<Option<Vec<u8>>>,
    closed: AtomicBool,
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

fn start_connection(id: usize, client: TcpStream, server: TcpStream, sh: &Arc<Shared>) {
    let clones = [client.try_clone(), server.try_clone()];
    if let Ok(mut socks) = sh.sockets.lock() {
        for c in clones.into_iter().flatten() {
            socks.push(c);
        }
    }
    let conn = Arc::new(Conn {
        id,
        client,
        server,
        stalled_until: Mutex::new(None),
        wait_command: Mutex::new(None),
        inject_now: Mutex::new(None),
        closed: AtomicBool::new(false),
    });
    let mut handles = Vec::new();
    for dir in [Dir::ClientToServer, Dir::ServerToClient] {
        let (c, s) = (conn.clone(), sh.clone());
        handles.push(std::thread::spawn(move || pump(&c, &s, dir)));
    }
    if let Ok(mut t) = sh.threads.lock() {
        // Joined handles of finished connections are cheap; keep it simple.
        t.extend(handles);
    }
}

/// What to do with the chunk just read.
enum Decision {
    Relay,
    /// Fault after this many bytes of the chunk.
    Fault(usize, Action),
}

fn decide(sh: &Shared, id: usize, dir: Dir, conn_bytes: u64, len: usize) -> Decision {
    let mut out = Decision::Relay;
    if sh.healed.load(Ordering::SeqCst) {
        return out;
    }
    for (rule, counter) in &sh.rules {
        let Ok(mut c) = counter.lock() else {
            continue;
        };
        if rule.dir != dir {
            continue;
        }
        let before = c.relayed;
        c.relayed += len as u64;
        if !matches!(out, Decision::Relay) || id < rule.from_conn || c.faults >= rule.max_faults {
            continue;
        }
        let offset = if rule.per_connection {
            let at = sh.spread.map_or(rule.first_at, |s| s.at(id, dir));
            if conn_bytes + (len as u64) < at {
                continue;
            }
            at.saturating_sub(conn_bytes) as usize
        } else {
            if c.relayed < c.next_at {
                continue;
            }
            // Too early in this connection: the next eligible chunk takes the fault.
            if conn_bytes + (len as u64) < rule.min_conn_bytes {
                continue;
            }
            let offset = c.next_at.saturating_sub(before).min(len as u64);
            c.next_at = c.relayed.max(c.next_at).saturating_add(rule.every);
            offset.max(rule.min_conn_bytes.saturating_sub(conn_bytes)) as usize
        };
        c.faults += 1;
        out = Decision::Fault(offset.min(len), rule.action.clone());
    }
    out
}

fn pump(conn: &Conn, sh: &Shared, dir: Dir) {
    let (mut from, mut to) = match dir {
        Dir::ClientToServer => (&conn.client, &conn.server),
        Dir::ServerToClient => (&conn.server, &conn.client),
    };
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 64 * 1024];
    let mut conn_bytes = 0u64;
    let mut tracker = Boundaries::default();
    // An injection waiting for the next response boundary.
    let mut inject: Option<Vec<u8>> = None;
    // The last client bytes, to spot a command split over reads.
    let mut recent: Vec<u8> = Vec::new();
    let fail = |why: &str| {
        if !conn.closed.load(Ordering::SeqCst) {
            sh.note(format!("conn {}: {dir:?} ended: {why}", conn.id));
        }
        conn.close();
    };
    loop {
        if sh.stop.load(Ordering::SeqCst) || conn.closed.load(Ordering::SeqCst) {
            conn.close();
            return;
        }
        if let Some(until) = conn.stalled_until.lock().ok().and_then(|g| *g) {
            if Instant::now() < until {
                std::thread::sleep(POLL);
                continue;
            }
            sh.note(format!("conn {}: stall over, closing", conn.id));
            conn.close();
            return;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => return fail("eof"),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return fail(&e.to_string()),
        };
        let chunk = &buf[..n];
        let decision = decide(sh, conn.id, dir, conn_bytes, n);
        conn_bytes += n as u64;
        let (relay_now, action) = match decision {
            Decision::Relay => (n, None),
            Decision::Fault(at, a) => (at, Some(a)),
        };
        if dir == Dir::ClientToServer {
            // A command the server→client pump waits for? Arm it before the
            // command reaches the server, so its answer cannot slip past.
            // Only bytes sent while waiting count (not an earlier command).
            if let Ok(mut w) = conn.wait_command.lock() {
                match w.as_ref() {
                    None => recent.clear(),
                    Some((pat, _)) => {
                        recent.extend_from_slice(chunk);
                        if recent.windows(pat.len()).any(|x| x == pat.as_slice())
                            && let Some((_, line)) = w.take()
                        {
                            sh.note(format!("conn {}: command seen, injection armed", conn.id));
                            if let Ok(mut i) = conn.inject_now.lock() {
                                *i = Some(line);
                            }
                        }
                        if recent.len() > 8192 {
                            recent.drain(..recent.len() - 4096);
                        }
                    }
                }
            }
        } else if inject.is_none() {
            inject = conn.inject_now.lock().ok().and_then(|mut i| i.take());
        }
        let action = match action {
            Some(Action::Inject(line)) => {
                sh.note(format!(
                    "conn {}: injection armed after {conn_bytes} bytes",
                    conn.id
                ));
                inject = Some(line);
                None
            }
            Some(Action::InjectAfterCommand { command, line }) => {
                sh.note(format!(
                    "conn {}: waiting for a command with {:?} after {conn_bytes} bytes",
                    conn.id,
                    String::from_utf8_lossy(&command)
                ));
                if let Ok(mut w) = conn.wait_command.lock() {
                    *w = Some((command, line));
                }
                None
            }
            other => other,
        };
        match action {
            None if dir == Dir::ClientToServer => {
                if to.write_all(chunk).is_err() {
                    return fail("write failed");
                }
            }
            None => {
                // Write up to the first response boundary, then the line, then the rest.
                let mut pos = 0;
                for b in tracker.feed(chunk) {
                    if let Some(line) = inject.take() {
                        if to.write_all(&chunk[pos..b]).is_err() || to.write_all(&line).is_err() {
                            return fail("write failed");
                        }
                        pos = b;
                        sh.faults_done.fetch_add(1, Ordering::SeqCst);
                        let after = &chunk[b..chunk.len().min(b + 60)];
                        let before = &chunk[b.saturating_sub(60)..b];
                        sh.note(format!(
                            "conn {}: injected {} bytes between {:?} and {:?}",
                            conn.id,
                            line.len(),
                            String::from_utf8_lossy(before),
                            String::from_utf8_lossy(after)
                        ));
                    }
                }
                if to.write_all(&chunk[pos..]).is_err() {
                    return fail("write failed");
                }
            }
            Some(Action::Inject(_) | Action::InjectAfterCommand { .. }) => unreachable!(),
            Some(Action::Cut) => {
                let _ = to.write_all(&chunk[..relay_now]);
                let _ = to.flush();
                sh.faults_done.fetch_add(1, Ordering::SeqCst);
                sh.note(format!(
                    "conn {}: cut {dir:?} after {} bytes of this connection",
                    conn.id,
                    conn_bytes - (n - relay_now) as u64
                ));
                conn.close();
                return;
            }
            Some(Action::Stall(d)) => {
                let _ = to.write_all(&chunk[..relay_now]);
                if let Ok(mut g) = conn.stalled_until.lock() {
                    *g = Some(Instant::now() + d);
                }
                sh.faults_done.fetch_add(1, Ordering::SeqCst);
                sh.note(format!("conn {}: stalled for {d:?}", conn.id));
                // The rest of the chunk is never delivered: the connection closes after the stall.
            }
        }
    }
}

/// Finds the ends of IMAP server responses in a byte stream: a CRLF that is
/// not inside a literal (`{N}\r\n` followed by N bytes).
#[derive(Default)]
struct Boundaries {
    /// Literal bytes still to skip.
    literal: u64,
    /// The tail of the current line (enough to see a `{N}` marker).
    tail: Vec<u8>,
}

impl Boundaries {
    /// Feeds `chunk`; returns the offsets just past each response end.
    fn feed(&mut self, chunk: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < chunk.len() {
            if self.literal > 0 {
                let take = (self.literal as usize).min(chunk.len() - i);
                self.literal -= take as u64;
                i += take;
                continue;
            }
            let b = chunk[i];
            i += 1;
            if b == b'\n' {
                let line = std::mem::take(&mut self.tail);
                match literal_marker(&line) {
                    Some(n) => self.literal = n,
                    None => out.push(i),
                }
            } else {
                self.tail.push(b);
                if self.tail.len() > 64 {
                    self.tail.drain(..self.tail.len() - 32);
                }
            }
        }
        out
    }
}

/// `...{123}\r` or `...{123+}\r` → 123.
fn literal_marker(tail: &[u8]) -> Option<u64> {
    let t = tail.strip_suffix(b"\r").unwrap_or(tail);
    let t = t.strip_suffix(b"}")?;
    let open = t.iter().rposition(|&b| b == b'{')?;
    let digits = &t[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_skip_literals() {
        let mut b = Boundaries::default();
        let s = b"* 1 FETCH (BODY[] {7}\r\nab\r\ncd FLAGS ())\r\nB1 OK done\r\n";
        let ends = b.feed(s);
        let first = s.windows(5).position(|w| w == b"())\r\n").unwrap() + 5;
        assert_eq!(ends, vec![first, s.len()]);
        // Split across chunks.
        let mut b = Boundaries::default();
        let (x, y) = s.split_at(19);
        let mut all: Vec<usize> = b.feed(x);
        all.extend(b.feed(y).into_iter().map(|e| e + x.len()));
        assert_eq!(all, ends);
    }
}
