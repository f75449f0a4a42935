//! The byte stream under an IMAP session: TCP with timeouts and TCP_NODELAY, then TLS
//! (implicit or after STARTTLS) through native-tls.
//!
//! [`Wire`] is a cheap handle: one clone goes into the `imap` crate's session, another stays
//! with us for the raw, pipelined APPEND path the crate does not offer. Sharing works because
//! `Wire::read` never hands the crate bytes past a line end: the crate reads line by line, so
//! once it has read a tagged response its own buffer is empty and every byte that follows is
//! still in ours.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use native_tls::{TlsConnector, TlsStream};

use super::error::{ImapError, Kind};
use crate::endpoint::{Endpoint, Security};

/// How to reach a server, apart from who logs in.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (PEM), besides the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Do not verify certificates at all (`--insecure`).
    pub insecure: bool,
    /// `imap://` without STARTTLS: the password goes unencrypted (`--plaintext`, test servers).
    pub plaintext: bool,
}

/// Building a connector parses the system's CA bundle (~0.1 s of CPU): build one per set of
/// options for the whole process and share it between every connection, both sides included.
static CONNECTORS: Mutex<Vec<(ConnectorKey, TlsConnector)>> = Mutex::new(Vec::new());

/// Extra CA (PEM) and `--insecure`: what makes two connectors differ.
type ConnectorKey = (Option<Vec<u8>>, bool);

impl TlsOptions {
    pub fn new(ca_pem: Option<Vec<u8>>, insecure: bool, plaintext: bool) -> TlsOptions {
        TlsOptions {
            ca_pem,
            insecure,
            plaintext,
        }
    }

    fn connector(&self) -> Result<TlsConnector, ImapError> {
        let key = (self.ca_pem.clone(), self.insecure);
        let mut cached = CONNECTORS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cached.iter().find(|(k, _)| *k == key) {
            return Ok(c.clone());
        }
        let mut b = TlsConnector::builder();
        if let Some(pem) = &self.ca_pem {
            for cert in split_pem(pem) {
                let c = native_tls::Certificate::from_pem(&cert).map_err(|e| {
                    ImapError::new(Kind::Usage, format!("cannot read the CA file: {e}"))
                })?;
                b.add_root_certificate(c);
            }
        }
        if self.insecure {
            b.danger_accept_invalid_certs(true);
            b.danger_accept_invalid_hostnames(true);
        }
        let c = b
            .build()
            .map_err(|e| ImapError::new(Kind::Tls, format!("cannot set up TLS: {e}")))?;
        cached.push((key, c.clone()));
        Ok(c)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(20),
            io: Duration::from_secs(120),
        }
    }
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref(),
        }
    }
}

struct Inner {
    transport: Transport,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

const READ_BUF: usize = 64 * 1024;

impl Inner {
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos < self.end {
            return Ok(self.end - self.pos);
        }
        self.pos = 0;
        self.end = 0;
        let n = match &mut self.transport {
            Transport::Plain(s) => s.read(&mut self.buf)?,
            Transport::Tls(s) => s.read(&mut self.buf)?,
        };
        self.end = n;
        Ok(n)
    }

    /// Copy at most one line (through its LF) into `out`.
    fn read_line_part(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.fill()? == 0 {
            return Ok(0);
        }
        let avail = &self.buf[self.pos..self.end];
        let line_len = memchr_lf(avail).map_or(avail.len(), |i| i + 1);
        let n = line_len.min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n;
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.transport {
            Transport::Plain(s) => s.write_all(data),
            Transport::Tls(s) => s.write_all(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.transport {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

fn memchr_lf(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// A shared handle on one server connection.
#[derive(Clone)]
pub struct Wire {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

impl Wire {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves only a byte buffer behind.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open TCP (and TLS) to `ep`, read the greeting, and for `imap://` upgrade with STARTTLS.
    /// Returns the wire and whether the greeting was PREAUTH.
    pub fn connect(
        ep: &Endpoint,
        tls: &TlsOptions,
        timeouts: Timeouts,
    ) -> Result<(Wire, Vec<u8>), ImapError> {
        let tcp = connect_tcp(ep, timeouts)?;
        let wire = match ep.security {
            Security::Tls => {
                let stream = handshake(ep, tls, tcp)?;
                Wire::new(Transport::Tls(Box::new(stream)))
            }
            Security::StartTls => {
                let plain = Wire::new(Transport::Plain(tcp));
                let greeting = plain.read_greeting(ep)?;
                if tls.plaintext {
                    // The user asked for no encryption at all (test servers).
                    return Ok((plain, greeting));
                }
                let caps = plain.raw_command(ep, "S0 CAPABILITY", "S0")?;
                let offers_starttls = String::from_utf8_lossy(&caps)
                    .to_ascii_uppercase()
                    .contains("STARTTLS");
                if !offers_starttls {
                    return Err(ImapError::new(
                        Kind::Tls,
                        format!(
                            "{} does not offer STARTTLS; use imaps:// if it has an implicit-TLS port, or --plaintext to send the password unencrypted (test servers only)",
                            ep.display_addr()
                        ),
                    ));
                }
                plain.raw_command(ep, "S1 STARTTLS", "S1")?;
                let tcp = plain.into_tcp()?;
                let stream = handshake(ep, tls, tcp)?;
                return Ok((Wire::new(Transport::Tls(Box::new(stream))), greeting));
            }
        };
        let greeting = wire.read_greeting(ep)?;
        Ok((wire, greeting))
    }

    fn new(transport: Transport) -> Wire {
        Wire {
            inner: Arc::new(Mutex::new(Inner {
                transport,
                buf: vec![0u8; READ_BUF].into_boxed_slice(),
                pos: 0,
                end: 0,
            })),
        }
    }

    fn into_tcp(self) -> Result<TcpStream, ImapError> {
        let inner = Arc::try_unwrap(self.inner)
            .map_err(|_| ImapError::new(Kind::Protocol, "connection still shared"))?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        match inner.transport {
            Transport::Plain(s) => Ok(s),
            Transport::Tls(_) => Err(ImapError::new(Kind::Protocol, "already encrypted")),
        }
    }

    fn read_greeting(&self, ep: &Endpoint) -> Result<Vec<u8>, ImapError> {
        let mut line = Vec::new();
        self.read_line(&mut line)
            .map_err(|e| ImapError::io(e, &ep.display_addr()))?;
        if line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") {
            Ok(line)
        } else if line.starts_with(b"* BYE") {
            let text = String::from_utf8_lossy(&line);
            // A server with too many connections may say so here ("* BYE [UNAVAILABLE] …"):
            // keep the code for the error table.
            let code = super::parse::split_code(text[5..].trim()).0;
            Err(ImapError {
                code,
                ..ImapError::new(
                    Kind::Dropped,
                    format!(
                        "{} refused the connection: {}",
                        ep.display_addr(),
                        text.trim()
                    ),
                )
            })
        } else {
            Err(ImapError::new(
                Kind::Protocol,
                format!(
                    "{} did not greet like an IMAP server (is this the right port?)",
                    ep.display_addr()
                ),
            ))
        }
    }

    /// Send one complete command line and read up to its tagged response; untagged lines are
    /// returned. Used before the crate takes over (CAPABILITY, STARTTLS).
    fn raw_command(&self, ep: &Endpoint, cmd: &str, tag: &str) -> Result<Vec<u8>, ImapError> {
        let addr = ep.display_addr();
        self.write_all(format!("{cmd}\r\n").as_bytes())
            .and_then(|_| self.flush())
            .map_err(|e| ImapError::io(e, &addr))?;
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            self.read_line(&mut line)
                .map_err(|e| ImapError::io(e, &addr))?;
            if line.starts_with(tag.as_bytes()) {
                let rest = &line[tag.len()..];
                if rest.starts_with(b" OK") {
                    return Ok(all);
                }
                return Err(ImapError::new(
                    Kind::Protocol,
                    format!(
                        "{addr} refused {}: {}",
                        cmd.split(' ').nth(1).unwrap_or(cmd),
                        String::from_utf8_lossy(rest).trim()
                    ),
                ));
            }
            all.extend_from_slice(&line);
        }
    }

    /// Read one line (through LF) into `out`, appending. Errors with `UnexpectedEof` on close.
    pub fn read_line(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut inner = self.lock();
        loop {
            if inner.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by server",
                ));
            }
            let avail = &inner.buf[inner.pos..inner.end];
            match memchr_lf(avail) {
                Some(i) => {
                    out.extend_from_slice(&avail[..=i]);
                    inner.pos += i + 1;
                    return Ok(());
                }
                None => {
                    out.extend_from_slice(avail);
                    inner.pos = inner.end;
                }
            }
        }
    }

    /// Read exactly `n` bytes (a literal) into `out`, appending.
    pub fn read_exact_into(&self, out: &mut Vec<u8>, mut n: usize) -> io::Result<()> {
        let mut inner = self.lock();
        while n > 0 {
            if inner.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by server",
                ));
            }
            let take = (inner.end - inner.pos).min(n);
            out.extend_from_slice(&inner.buf[inner.pos..inner.pos + take]);
            inner.pos += take;
            n -= take;
        }
        Ok(())
    }

    /// Hand `f` at most `max` bytes of what is buffered (reading when nothing is), without
    /// copying them; returns how many. A literal streams through here in pieces.
    pub fn read_chunk(&self, max: usize, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut inner = self.lock();
        if inner.fill()? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by server",
            ));
        }
        let take = (inner.end - inner.pos).min(max);
        f(&inner.buf[inner.pos..inner.pos + take]);
        inner.pos += take;
        Ok(take)
    }

    pub fn write_all(&self, data: &[u8]) -> io::Result<()> {
        self.lock().write_all(data)
    }

    pub fn flush(&self) -> io::Result<()> {
        self.lock().flush()
    }

    /// Cut the connection now (used to abandon a session that is out of step).
    pub fn shutdown(&self) {
        let _ = self.lock().transport.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lock().read_line_part(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.lock().write_all(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

fn connect_tcp(ep: &Endpoint, timeouts: Timeouts) -> Result<TcpStream, ImapError> {
    let addr = ep.display_addr();
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| {
            ImapError::new(
                Kind::Resolve,
                format!(
                    "cannot resolve host '{}': {} (check the server name)",
                    ep.host,
                    short_io(&e)
                ),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ImapError::new(
            Kind::Resolve,
            format!("cannot resolve host '{}' (check the server name)", ep.host),
        ));
    }
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeouts.connect) {
            Ok(s) => {
                // Without NODELAY a server lacking it stalls ~40 ms per APPEND (Nagle + delayed ACK).
                let _ = s.set_nodelay(true);
                s.set_read_timeout(Some(timeouts.io))
                    .and_then(|_| s.set_write_timeout(Some(timeouts.io)))
                    .map_err(|e| ImapError::io(e, &addr))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address"));
    let kind = match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Kind::Timeout,
        _ => Kind::Connect,
    };
    Err(ImapError::new(
        kind,
        format!(
            "cannot connect to {addr}: {} (check the host and port, and that the server is running)",
            short_io(&e)
        ),
    ))
}

fn handshake(
    ep: &Endpoint,
    tls: &TlsOptions,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ImapError> {
    let addr = ep.display_addr();
    let connector = tls.connector()?;
    connector.connect(&ep.host, tcp).map_err(|e| {
        let (msg, io_kind) = match &e {
            native_tls::HandshakeError::Failure(err) => (err.to_string(), io_cause(err)),
            // A blocking socket whose read timeout expired.
            native_tls::HandshakeError::WouldBlock(_) => {
                ("timed out".to_string(), Some(io::ErrorKind::TimedOut))
            }
        };
        let lower = msg.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("verify") {
            ImapError::new(
                Kind::Certificate,
                format!(
                    "TLS certificate of {addr} is not trusted ({}); pass its CA with --ca-file, or --insecure to skip verification",
                    first_reason(&msg)
                ),
            )
        } else if io_kind.is_some() || lower.contains("unexpected eof") {
            // The connection broke or stalled mid-handshake: worth another try, like a
            // connection lost later on.
            let timeout = matches!(
                io_kind,
                Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
            );
            let (kind, what) = if timeout {
                (Kind::Timeout, "timed out".to_string())
            } else {
                (Kind::Dropped, first_reason(&msg))
            };
            ImapError::new(
                kind,
                format!("TLS handshake with {addr} failed: connection lost: {what}"),
            )
        } else if lower.contains("wrong version number") || lower.contains("packet length") {
            ImapError::new(
                Kind::Tls,
                format!(
                    "TLS handshake with {addr} failed: the port does not speak TLS (for a STARTTLS port use imap:// instead of imaps://)"
                ),
            )
        } else {
            ImapError::new(
                Kind::Tls,
                format!("TLS handshake with {addr} failed: {}", first_reason(&msg)),
            )
        }
    })
}

/// The I/O error under a TLS failure, if the transport itself failed.
fn io_cause(err: &native_tls::Error) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// OpenSSL error stacks are long; keep the part a person can act on.
fn first_reason(msg: &str) -> String {
    let m = msg.lines().next().unwrap_or(msg).trim();
    if let Some(i) = m.find("certificate verify failed") {
        let rest = &m[i..];
        return rest.split(']').next().unwrap_or(rest).to_string() + ")";
    }
    m.chars().take(200).collect()
}

fn short_io(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// native-tls takes one certificate per call; a CA file may hold a bundle.
fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(cur.as_bytes().to_vec());
            cur.clear();
        }
    }
    if out.is_empty() {
        out.push(pem.to_vec());
    }
    out
}
