//! Content hashes of whole messages, computed while the bytes stream past, so a destination's
//! copy can be compared byte for byte with the source's without holding either.
//!
//! BLAKE3 (a well-kept crate, fast enough to cost nothing next to the network, and
//! collision-resistant, which a proof that licenses deleting mail should be). The header and
//! the body are hashed apart so a difference can be named.

/// Hash of one message: its header part (through the blank line) and its body, 128 bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash {
    pub header: [u8; 16],
    pub body: [u8; 16],
    pub size: u64,
}

impl ContentHash {
    pub fn of(message: &[u8]) -> ContentHash {
        let mut h = Hasher::default();
        h.update(message);
        h.finish()
    }

    /// What differs between the source's hash (`self`) and a copy's, in words a user reads.
    pub fn differences(&self, copy: &ContentHash) -> Vec<Difference> {
        let mut out = Vec::new();
        if self.header != copy.header {
            out.push(Difference::HeaderBytes);
        }
        if self.body != copy.body {
            out.push(Difference::Body);
        }
        if out.is_empty() && self.size != copy.size {
            out.push(Difference::Body);
        }
        out
    }
}

/// How a destination's copy differs from the source's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Difference {
    HeaderBytes,
    Body,
    ArrivalDate,
    /// The copy is not where the destination said it stored it.
    Missing,
    /// The destination did not say where it stored the copy (no UIDPLUS) and the index
    /// did not find it.
    UnknownUid,
    /// `verify --deep`: the copy's flags are not the source's.
    Flags,
}

impl Difference {
    pub fn describe(self) -> &'static str {
        match self {
            Difference::HeaderBytes => "the destination altered its header bytes",
            Difference::Body => "the destination altered the body",
            Difference::ArrivalDate => "the destination changed its arrival date",
            Difference::Missing => "the destination's copy could not be read back",
            Difference::Flags => "the destination's flags differ",
            Difference::UnknownUid => {
                "the destination did not say where it stored it (no UIDPLUS) and no copy was found"
            }
        }
    }
}

/// Streaming hasher: feed the message in pieces of any size.
#[derive(Default)]
pub struct Hasher {
    header: blake3::Hasher,
    body: blake3::Hasher,
    in_body: bool,
    /// Bytes of the current header line so far (a line of 0, or of just CR, ends the header).
    line: u8,
    size: u64,
}

impl Hasher {
    pub fn update(&mut self, mut data: &[u8]) {
        self.size += data.len() as u64;
        if !self.in_body {
            let mut end = None;
            for (i, &b) in data.iter().enumerate() {
                match b {
                    b'\n' if self.line <= 1 => {
                        end = Some(i + 1);
                        break;
                    }
                    b'\n' => self.line = 0,
                    b'\r' if self.line == 0 => self.line = 1,
                    _ => self.line = 2,
                }
            }
            match end {
                Some(n) => {
                    self.header.update(&data[..n]);
                    data = &data[n..];
                    self.in_body = true;
                }
                None => {
                    self.header.update(data);
                    return;
                }
            }
        }
        self.body.update(data);
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(&self) -> ContentHash {
        let cut = |h: &blake3::Hasher| {
            let mut out = [0u8; 16];
            out.copy_from_slice(&h.finalize().as_bytes()[..16]);
            out
        };
        ContentHash {
            header: cut(&self.header),
            body: cut(&self.body),
            size: self.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a\r\nSubject: b\r\n\r\nbody\r\n\r\nmore\r\n";

    #[test]
    fn streamed_in_any_pieces_equals_whole() {
        let whole = ContentHash::of(MSG);
        for cut in 0..MSG.len() {
            let mut h = Hasher::default();
            h.update(&MSG[..cut]);
            h.update(&MSG[cut..]);
            assert_eq!(h.finish(), whole, "cut at {cut}");
        }
        let mut h = Hasher::default();
        for b in MSG {
            h.update(std::slice::from_ref(b));
        }
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn names_what_differs() {
        let a = ContentHash::of(MSG);
        let header = ContentHash::of(b"From: X\r\nSubject: b\r\n\r\nbody\r\n\r\nmore\r\n");
        let body = ContentHash::of(b"From: a\r\nSubject: b\r\n\r\nbodY\r\n\r\nmore\r\n");
        assert_eq!(a.differences(&a), vec![]);
        assert_eq!(a.differences(&header), vec![Difference::HeaderBytes]);
        assert_eq!(a.differences(&body), vec![Difference::Body]);
        // Bare LF ends the header too.
        let lf = ContentHash::of(b"From: a\n\nx");
        let lf2 = ContentHash::of(b"From: a\n\ny");
        assert_eq!(lf.differences(&lf2), vec![Difference::Body]);
    }
}
