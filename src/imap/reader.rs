//! The one reader: frames a whole response (its lines and literals of any size) from the
//! wire. A message body (`BODY[]` / `BINARY[]`) goes straight into the caller's buffer and
//! the frame keeps only where it went; every other literal stays in the frame.

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

/// Where the bytes of a framed response come from: the wire, or a buffer (tests).
pub(crate) trait Source {
    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<()>;
    fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()>;
}

impl Source for &Wire {
    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        Wire::read_line(self, out)
    }
    fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
        Wire::read_exact_into(self, out, n)
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
}

/// Read one response into `frame` (cleared first). With `sink`, whole-message literals
/// (`BODY[]`, `BINARY[]`, with or without a partial `<n>`) are appended there instead.
pub(crate) fn read_frame<S: Source>(
    src: &mut S,
    frame: &mut Frame,
    mut sink: Option<&mut Vec<u8>>,
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
                let start = out.len();
                // Presize for bodies, but never trust a huge announced size up front.
                out.reserve(n.min(64 << 20));
                src.read_exact_into(out, n).map_err(io)?;
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

    fn frame(input: &[u8], sink: Option<&mut Vec<u8>>) -> (Frame, usize) {
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
