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
        }
    }
}

#[derive(Default)]
struct Counter {
    relayed: u64,
    next_at: u64,
    faults: usize,
}

struct Shared {
    upstream: SocketAddr,
    rule: Option<Rule>,
    counter: Mutex<Counter>,
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
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("proxy addr").port();
        let first_at = rule.as_ref().map_or(u64::MAX, |r| r.first_at);
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            rule,
            counter: Mutex::new(Counter {
                relayed: 0,
                next_at: first_at,
                faults: 0,
            }),
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

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Faults carried out so far.
    pub fn faults(&self) -> usize {
        self.shared.faults_done.load(Ordering::SeqCst)
    }

    /// Bytes relayed so far in the rule's direction.
    pub fn relayed(&self) -> u64 {
        self.shared.counter.lock().map(|c| c.relayed).unwrap_or(0)
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

fn decide(sh: &Shared, dir: Dir, conn_bytes: u64, len: usize) -> Decision {
    let Some(rule) = &sh.rule else {
        return Decision::Relay;
    };
    if rule.dir != dir {
        return Decision::Relay;
    }
    let Ok(mut c) = sh.counter.lock() else {
        return Decision::Relay;
    };
    let before = c.relayed;
    c.relayed += len as u64;
    if c.faults >= rule.max_faults || c.relayed < c.next_at {
        return Decision::Relay;
    }
    // Too early in this connection: the next eligible chunk takes the fault.
    if conn_bytes + (len as u64) < rule.min_conn_bytes {
        return Decision::Relay;
    }
    let offset = c.next_at.saturating_sub(before).min(len as u64) as usize;
    let offset = if conn_bytes + (offset as u64) < rule.min_conn_bytes {
        (rule.min_conn_bytes - conn_bytes) as usize
    } else {
        offset
    };
    c.faults += 1;
    c.next_at = c.relayed.max(c.next_at).saturating_add(rule.every);
    Decision::Fault(offset, rule.action.clone())
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
        let decision = decide(sh, dir, conn_bytes, n);
        conn_bytes += n as u64;
        let (relay_now, action) = match decision {
            Decision::Relay => (n, None),
            Decision::Fault(at, a) => (at, Some(a)),
        };
        match action {
            None if inject.is_none() => {
                tracker.feed(chunk);
                if to.write_all(chunk).is_err() {
                    return fail("write failed");
                }
            }
            None | Some(Action::Inject(_)) => {
                if let Some(Action::Inject(line)) = action {
                    sh.note(format!(
                        "conn {}: injection armed after {conn_bytes} bytes",
                        conn.id
                    ));
                    inject = Some(line);
                }
                // Write up to the first response boundary, then the line, then the rest.
                let mut pos = 0;
                for b in tracker.feed(chunk) {
                    if let Some(line) = inject.take() {
                        if to.write_all(&chunk[pos..b]).is_err() || to.write_all(&line).is_err() {
                            return fail("write failed");
                        }
                        pos = b;
                        sh.faults_done.fetch_add(1, Ordering::SeqCst);
                        sh.note(format!("conn {}: injected {} bytes", conn.id, line.len()));
                    }
                }
                if to.write_all(&chunk[pos..]).is_err() {
                    return fail("write failed");
                }
            }
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
