//! The one reader: frames a whole response (its lines and literals of any size) from the
//! wire. A message body (`BODY[]` / `BINARY[]`) goes straight to the caller's sink, piece by
//! piece as it arrives (a buffer, a hasher, or another server's APPEND), and the frame keeps
//! only where it went; every other literal stays in the frame.

use super::error::{ImapError, Kind};
use super::wire::Wire;

/// A literal larger than this is not mail but a broken or hostile server.
const MAX_LITERAL: u64 = 1 << 32;

/// One response as read: bytes with inline literals, and the literals streamed elsewhere.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    buf: Vec<u8>,
    /// (offset in `buf` just after the literal's `{n}\r\n`, start in the sink, length).
    external: Vec<(usize, (usize, usize))>,
}

impl Frame {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn external_at(&self, at: usize) -> Option<&(usize, usize)> {
        self.external.iter().find(|(a, _)| *a == at).map(|(_, e)| e)
    }

    /// Only for tests and the fuzz test: a frame from bytes already framed.
    #[cfg(test)]
    pub(crate) fn from_bytes(buf: Vec<u8>) -> Frame {
        Frame {
            buf,
            external: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.external.clear();
    }
}

/// Where a whole-message literal goes, piece by piece: the caller's buffer, a hasher, or a
/// destination's APPEND (a giant message is never held whole).
pub(crate) trait BodySink {
    /// A literal of `n` bytes begins; returns where it starts in the sink (kept in the frame).
    fn begin(&mut self, n: usize) -> Result<usize, ImapError>;
    /// The next bytes of it. An error stops the reading mid-literal: the connection the
    /// literal comes from is then out of step and must be dropped.
    fn chunk(&mut self, data: &[u8]) -> Result<(), ImapError>;
}

/// A batch buffer: bodies one after the other.
impl BodySink for Vec<u8> {
    fn begin(&mut self, n: usize) -> Result<usize, ImapError> {
        // Presize for bodies, but never trust a huge announced size up front.
        self.reserve(n.min(64 << 20));
        Ok(self.len())
    }
    fn chunk(&mut self, data: &[u8]) -> Result<(), ImapError> {
        self.extend_from_slice(data);
        Ok(())
    }
}

/// Where the bytes of a framed response come from: the wire, or a buffer (tests).
pub(crate) trait Source {
    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<()>;
    fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()>;
    /// Hand `f` at most `max` (> 0) bytes, as many as are at hand (reading when none are);
    /// returns how many. Errors with `UnexpectedEof` on close.
    fn read_chunk(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> std::io::Result<usize>;
}

impl Source for &Wire {
    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        Wire::read_line(self, out)
    }
    fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
        Wire::read_exact_into(self, out, n)
    }
    fn read_chunk(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> std::io::Result<usize> {
        Wire::read_chunk(self, max, f)
    }
}

/// Bytes in memory, as a server would send them (for tests and the property test).
#[cfg(test)]
impl Source for &[u8] {
    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if self.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = self
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.len(), |i| i + 1);
        out.extend_from_slice(&self[..n]);
        *self = &self[n..];
        Ok(())
    }
    fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
        if self.len() < n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.extend_from_slice(&self[..n]);
        *self = &self[n..];
        Ok(())
    }
    fn read_chunk(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> std::io::Result<usize> {
        if self.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = max.min(self.len());
        f(&self[..n]);
        *self = &self[n..];
        Ok(n)
    }
}

/// Read `n` bytes from `src` into `sink`, chunk by chunk; the sink's own error wins.
fn stream_literal<S: Source>(
    src: &mut S,
    sink: &mut dyn BodySink,
    mut n: usize,
    addr: &str,
) -> Result<(), ImapError> {
    while n > 0 {
        let mut failed = None;
        let got = src
            .read_chunk(n.min(CHUNK), &mut |data| {
                if failed.is_none()
                    && let Err(e) = sink.chunk(data)
                {
                    failed = Some(e);
                }
            })
            .map_err(|e| ImapError::io(e, addr))?;
        if let Some(e) = failed {
            return Err(e);
        }
        n -= got.min(n);
    }
    Ok(())
}

/// The most handed to a sink at once.
const CHUNK: usize = 256 * 1024;

/// Read one response into `frame` (cleared first). With `sink`, whole-message literals
/// (`BODY[]`, `BINARY[]`, with or without a partial `<n>`) go there instead, in chunks.
pub(crate) fn read_frame<S: Source>(
    src: &mut S,
    frame: &mut Frame,
    mut sink: Option<&mut dyn BodySink>,
    addr: &str,
) -> Result<(), ImapError> {
    frame.clear();
    let io = |e| ImapError::io(e, addr);
    src.read_line(&mut frame.buf).map_err(io)?;
    // Status responses and continuation requests carry free text: a "{5}" at the end of
    // it is text, never a literal announcement.
    if is_text_response(&frame.buf) {
        return Ok(());
    }
    let mut line_start = 0;
    while let Some((n, open)) = trailing_literal(&frame.buf[line_start..]) {
        if n > MAX_LITERAL {
            return Err(ImapError::new(
                Kind::Protocol,
                format!("{addr} announced a literal of {n} bytes; starting a new session"),
            ));
        }
        let n = n as usize;
        let streamed = sink.is_some() && is_message_item(&frame.buf[..line_start + open]);
        let at = frame.buf.len();
        match sink.as_deref_mut() {
            Some(out) if streamed => {
                let start = out.begin(n)?;
                stream_literal(src, out, n, addr)?;
                frame.external.push((at, (start, n)));
            }
            _ => {
                frame.buf.reserve(n.min(64 << 20));
                src.read_exact_into(&mut frame.buf, n).map_err(io)?;
            }
        }
        line_start = frame.buf.len();
        src.read_line(&mut frame.buf).map_err(io)?;
    }
    Ok(())
}

/// `+ …`, `* OK …`, `tag NO …` and the like: responses whose rest is text.
fn is_text_response(line: &[u8]) -> bool {
    if line.first() == Some(&b'+') {
        return true;
    }
    let mut words = line.split(|&b| b == b' ');
    let _tag = words.next();
    let Some(kw) = words.next() else {
        return true;
    };
    let kw = kw
        .strip_suffix(b"\r\n")
        .or_else(|| kw.strip_suffix(b"\n"))
        .unwrap_or(kw);
    ["OK", "NO", "BAD", "BYE", "PREAUTH"]
        .iter()
        .any(|s| kw.eq_ignore_ascii_case(s.as_bytes()))
}

/// A line ending in `{n}`, `{n+}` or `~{n}`: the length and where `{` (or `~`) is.
fn trailing_literal(line: &[u8]) -> Option<(u64, usize)> {
    let l = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let digits = &l[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let open = if open > 0 && l[open - 1] == b'~' {
        open - 1
    } else {
        open
    };
    Some((n, open))
}

/// Does the text before a literal end with a whole-message item name?
fn is_message_item(before: &[u8]) -> bool {
    let t = before.strip_suffix(b" ").unwrap_or(before);
    let word_start = t
        .iter()
        .rposition(|&b| b == b' ' || b == b'(')
        .map_or(0, |i| i + 1);
    let mut w = t[word_start..].to_ascii_uppercase();
    // A partial fetch answers "BODY[]<0>".
    if w.ends_with(b">")
        && let Some(i) = w.iter().rposition(|&b| b == b'<')
    {
        w.truncate(i);
    }
    w == b"BODY[]" || w == b"BINARY[]" || w == b"RFC822"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(input: &[u8], sink: Option<&mut dyn BodySink>) -> (Frame, usize) {
        let mut src = input;
        let mut f = Frame::default();
        read_frame(&mut src, &mut f, sink, "test").unwrap();
        (f, input.len() - src.len())
    }

    #[test]
    fn literals_are_framed_and_bodies_streamed() {
        let wire = b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello FLAGS (\\Seen))\r\n* 2 EXISTS\r\n";
        let mut sink = b"xx".to_vec();
        let (f, used) = frame(wire, Some(&mut sink));
        assert_eq!(sink, b"xxhello");
        assert_eq!(used, wire.len() - b"* 2 EXISTS\r\n".len());
        assert_eq!(f.external.len(), 1);
        // Without a sink the literal stays in the frame.
        let (f, _) = frame(wire, None);
        assert!(f.bytes().windows(5).any(|w| w == b"hello"));
    }

    /// Bytes that arrive in pieces: a read never crosses the next cut.
    struct Pieces<'a> {
        data: &'a [u8],
        pos: usize,
        cuts: Vec<usize>,
    }

    impl Pieces<'_> {
        fn avail(&self, max: usize) -> usize {
            let next = self
                .cuts
                .iter()
                .copied()
                .find(|&c| c > self.pos)
                .unwrap_or(self.data.len());
            (next - self.pos).min(max)
        }
    }

    impl Source for Pieces<'_> {
        fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
            let mut rest = &self.data[self.pos..];
            let before = rest.len();
            rest.read_line(out)?;
            self.pos += before - rest.len();
            Ok(())
        }
        fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
            let mut rest = &self.data[self.pos..];
            rest.read_exact_into(out, n)?;
            self.pos += n;
            Ok(())
        }
        fn read_chunk(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> std::io::Result<usize> {
            let n = self.avail(max);
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            f(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Records what a streaming sink sees.
    #[derive(Default)]
    struct Recorder {
        begun: Vec<usize>,
        bytes: Vec<u8>,
        chunks: usize,
        fail_after: Option<usize>,
    }

    impl BodySink for Recorder {
        fn begin(&mut self, n: usize) -> Result<usize, ImapError> {
            self.begun.push(n);
            Ok(self.bytes.len())
        }
        fn chunk(&mut self, data: &[u8]) -> Result<(), ImapError> {
            if self
                .fail_after
                .is_some_and(|n| self.bytes.len() + data.len() > n)
            {
                return Err(ImapError::new(Kind::Dropped, "sink broke"));
            }
            self.chunks += 1;
            self.bytes.extend_from_slice(data);
            Ok(())
        }
    }

    fn response(body: &[u8]) -> Vec<u8> {
        let mut wire = format!("* 3 FETCH (UID 9 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        wire.extend_from_slice(body);
        wire.extend_from_slice(b" FLAGS (\\Seen))\r\nB4 OK done\r\n");
        wire
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// However the bytes are split on the wire, a streamed body reaches the sink whole
        /// and in order, the frame is the same, and the next response is untouched.
        #[test]
        fn a_literal_read_in_chunks_is_the_literal_whatever_the_splits(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(0usize..2100, 0..40),
        ) {
            let wire = response(&body);
            let (whole, used) = frame(&wire, Some(&mut Vec::new()));
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut src = Pieces { data: &wire, pos: 0, cuts };
            let mut rec = Recorder::default();
            let mut f = Frame::default();
            read_frame(&mut src, &mut f, Some(&mut rec), "test").unwrap();
            proptest::prop_assert_eq!(&rec.bytes, &body);
            proptest::prop_assert_eq!(rec.begun, vec![body.len()]);
            proptest::prop_assert_eq!(f.bytes(), whole.bytes());
            proptest::prop_assert_eq!(&f.external, &whole.external);
            proptest::prop_assert_eq!(src.pos, used);
            read_frame(&mut src, &mut f, None, "test").unwrap();
            proptest::prop_assert_eq!(f.bytes(), b"B4 OK done\r\n");
        }
    }

    #[test]
    fn a_sink_error_stops_the_literal_mid_way() {
        let body = vec![b'x'; 1000];
        let wire = response(&body);
        let mut src = Pieces {
            data: &wire,
            pos: 0,
            cuts: (0..wire.len()).step_by(100).collect(),
        };
        let mut rec = Recorder {
            fail_after: Some(450),
            ..Recorder::default()
        };
        let e = read_frame(&mut src, &mut Frame::default(), Some(&mut rec), "test").unwrap_err();
        assert_eq!(e.message, "sink broke");
        assert!(rec.bytes.len() <= 450 && rec.chunks > 0);
        // A body cut short on the wire is an error too, never a short body.
        let cut = &wire[..wire.len() - 40 - body.len() / 2];
        let mut rec = Recorder::default();
        assert!(read_frame(&mut &cut[..], &mut Frame::default(), Some(&mut rec), "t").is_err());
    }

    #[test]
    fn tagged_no_ending_in_braces_is_text() {
        let wire = b"B1 NO [CANNOT] bad name {5}\r\nB2 OK\r\n";
        let (f, used) = frame(wire, None);
        assert_eq!(used, b"B1 NO [CANNOT] bad name {5}\r\n".len());
        assert!(f.external.is_empty());
    }

    #[test]
    fn header_sections_stay_inline() {
        assert!(!is_message_item(b"* 1 FETCH (BODY[HEADER] "));
        assert!(is_message_item(b"* 1 FETCH (UID 3 BINARY[] "));
        assert!(is_message_item(b"* 1 FETCH (BODY[]<0> "));
        assert_eq!(trailing_literal(b"x ~{12}\r\n"), Some((12, 2)));
        assert_eq!(trailing_literal(b"x {12+}\r\n"), Some((12, 2)));
        assert_eq!(trailing_literal(b"x {}\r\n"), None);
    }
}
