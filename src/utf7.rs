//! IMAP modified UTF-7 (RFC 3501 §5.1.3), the wire encoding of mailbox names.
//!
//! Printable ASCII stands for itself except `&`, which is written `&-`; any
//! other run of characters is written `&` + base64 of its UTF-16BE form
//! (with `,` instead of `/`, no padding) + `-`.
//!
//! [`decode`] is strict *and* canonical: it accepts exactly the strings that
//! [`encode`] produces, so `encode(decode(w)?) == w`. That makes decoding
//! injective: two different folders on a server can never decode to the same
//! name and get merged on the destination.

use std::fmt;

/// Why a wire-form mailbox name could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utf7Error {
    offset: usize,
    reason: String,
}

impl Utf7Error {
    fn new(offset: usize, reason: impl Into<String>) -> Self {
        Self {
            offset,
            reason: reason.into(),
        }
    }

    /// Byte offset in the wire string where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for Utf7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid modified UTF-7 mailbox name at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for Utf7Error {}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn sextet(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

fn is_printable_ascii(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Strictly decodes a wire-form mailbox name.
pub fn decode(wire: &str) -> Result<String, Utf7Error> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    // Byte index just past the '-' of the last base64 section, to reject
    // "&AOk-&AOk-" (canonical form merges adjacent sections into one).
    let mut last_section_end = None;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'&' => {
                let start = i;
                let mut j = i + 1;
                while bytes.get(j).and_then(|&c| sextet(c)).is_some() {
                    j += 1;
                }
                match bytes.get(j) {
                    Some(b'-') => {}
                    None => {
                        return Err(Utf7Error::new(
                            start,
                            "'&' section is not terminated by '-'",
                        ));
                    }
                    Some(_) => {
                        // j is a char boundary: everything before it in the section is ASCII.
                        let c = wire.get(j..).and_then(|s| s.chars().next());
                        return Err(Utf7Error::new(
                            j,
                            format!(
                                "invalid character {} in the base64 section starting at byte {start}",
                                describe(c)
                            ),
                        ));
                    }
                }
                let run = &bytes[start + 1..j];
                if run.is_empty() {
                    out.push('&');
                } else {
                    if last_section_end == Some(start) {
                        return Err(Utf7Error::new(
                            start,
                            "base64 section directly follows another one (they must be a single section)",
                        ));
                    }
                    decode_section(run, start, &mut out)?;
                    last_section_end = Some(j + 1);
                }
                i = j + 1;
            }
            0x20..=0x7e => {
                out.push(char::from(b));
                i += 1;
            }
            _ => {
                let c = wire.get(i..).and_then(|s| s.chars().next());
                let what = if b.is_ascii() {
                    "non-printable ASCII character"
                } else {
                    "non-ASCII character"
                };
                return Err(Utf7Error::new(
                    i,
                    format!("{what} {} (it must be base64-encoded)", describe(c)),
                ));
            }
        }
    }
    Ok(out)
}

/// Decodes a wire-form name, or returns it unchanged if it is not valid
/// modified UTF-7: some servers send raw UTF-8 names, and a display name is
/// never worth failing a migration over.
pub fn decode_lossy(wire: &str) -> String {
    decode(wire).unwrap_or_else(|_| wire.to_owned())
}

/// Encodes a mailbox name into its wire form (always printable ASCII).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_printable_ascii(c) {
            flush_section(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_section(&mut units, &mut out);
    out
}

fn flush_section(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut nbits = 0;
    for byte in units.iter().flat_map(|u| u.to_be_bytes()) {
        acc = (acc << 8) | u32::from(byte);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(char::from(ALPHABET[((acc >> nbits) & 0x3f) as usize]));
        }
        acc &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        // Pad the last sextet with zero bits, as RFC 2045 base64 does.
        out.push(char::from(ALPHABET[((acc << (6 - nbits)) & 0x3f) as usize]));
    }
    out.push('-');
    units.clear();
}

/// Decodes the base64 between '&' (at byte `start`) and '-' into `out`.
fn decode_section(run: &[u8], start: usize, out: &mut String) -> Result<(), Utf7Error> {
    let mut bytes = Vec::with_capacity(run.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut nbits = 0;
    for &b in run {
        // `run` only holds alphabet bytes (the caller checked), so 0 is never used.
        acc = (acc << 6) | sextet(b).unwrap_or(0);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    if nbits >= 6 {
        return Err(Utf7Error::new(
            start,
            "base64 section has an impossible length (one character too many)",
        ));
    }
    if acc != 0 {
        return Err(Utf7Error::new(
            start,
            "base64 section ends with non-zero padding bits",
        ));
    }
    if bytes.len() % 2 != 0 {
        return Err(Utf7Error::new(
            start,
            "base64 section decodes to an odd number of bytes (UTF-16 needs pairs)",
        ));
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) if is_printable_ascii(c) => {
                return Err(Utf7Error::new(
                    start,
                    format!(
                        "base64 section encodes printable ASCII {c:?}, which must be written as itself"
                    ),
                ));
            }
            Ok(c) => out.push(c),
            Err(e) => {
                return Err(Utf7Error::new(
                    start,
                    format!(
                        "base64 section contains an unpaired UTF-16 surrogate 0x{:04X}",
                        e.unpaired_surrogate()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn describe(c: Option<char>) -> String {
    match c {
        Some(c) => format!("{c:?} (U+{:04X})", u32::from(c)),
        None => "(end of name)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("&&", "&-&-"),
        ("Café", "Caf&AOk-"),
        ("é", "&AOk-"),
        ("éé", "&AOkA6Q-"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
        ("Корзина", "&BBoEPgRABDcEOAQ9BDA-"),
        ("😀", "&2D3eAA-"),
        ("a😀b", "a&2D3eAA-b"),
        ("é&", "&AOk-&-"),
        ("&é", "&-&AOk-"),
        ("tab\there", "tab&AAk-here"),
        ("-", "-"),
        ("a-b", "a-b"),
        (
            "~!@#$%^*()_+{}|:\"<>?`-=[]\\;',./",
            "~!@#$%^*()_+{}|:\"<>?`-=[]\\;',./",
        ),
    ];

    #[test]
    fn known_vectors_encode() {
        for (name, wire) in VECTORS {
            assert_eq!(encode(name), *wire, "encode({name:?})");
        }
    }

    #[test]
    fn known_vectors_decode() {
        for (name, wire) in VECTORS {
            assert_eq!(decode(wire).as_deref(), Ok(*name), "decode({wire:?})");
            assert_eq!(decode_lossy(wire), *name);
        }
    }

    fn err(wire: &str) -> Utf7Error {
        match decode(wire) {
            Ok(s) => panic!("decode({wire:?}) unexpectedly gave {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rejects_unterminated_section() {
        let e = err("abc&AOk");
        assert_eq!(e.offset(), 3);
        assert!(e.to_string().contains("not terminated"), "{e}");
        assert!(err("&").to_string().contains("not terminated"));
        assert!(err("a&").to_string().contains("at byte 1"));
    }

    #[test]
    fn rejects_bad_base64_character() {
        let e = err("&AO/k-");
        assert_eq!(e.offset(), 3);
        assert!(e.to_string().contains("'/'"), "{e}");
        let e = err("&AO=-");
        assert!(e.to_string().contains("invalid character"), "{e}");
        let e = err("&AOé-");
        assert!(e.to_string().contains("'é'"), "{e}");
    }

    #[test]
    fn rejects_impossible_length() {
        // 1 and 5 sextets cannot be whole bytes.
        assert!(err("&A-").to_string().contains("impossible length"));
        assert!(err("&AOkAA-").to_string().contains("impossible length"));
    }

    #[test]
    fn rejects_nonzero_padding_bits() {
        // "&AOl-" has the same bytes as "&AOk-" but leftover bits set.
        assert!(err("&AOl-").to_string().contains("padding"));
    }

    #[test]
    fn rejects_odd_byte_count() {
        // "AA" is 12 bits: one byte plus 4 zero bits.
        let e = err("&AA-");
        assert!(e.to_string().contains("odd number of bytes"), "{e}");
    }

    #[test]
    fn rejects_lone_surrogates() {
        // High surrogate 0xD83D alone.
        assert!(err("&2D0-").to_string().contains("surrogate"));
        // Low surrogate 0xDE00 alone.
        assert!(err("&3gA-").to_string().contains("surrogate"));
        // Reversed pair.
        assert!(err("&3gDYPQ-").to_string().contains("surrogate"));
    }

    #[test]
    fn rejects_non_printable_and_non_ascii() {
        let e = err("a\tb");
        assert_eq!(e.offset(), 1);
        assert!(e.to_string().contains("non-printable ASCII"), "{e}");
        assert!(err("a\u{7f}").to_string().contains("non-printable"));
        let e = err("Entwürfe");
        assert_eq!(e.offset(), 4);
        assert!(e.to_string().contains("non-ASCII character 'ü'"), "{e}");
    }

    #[test]
    fn rejects_encoded_printable_ascii() {
        // "&AGE-" is 'a', which must be written as itself.
        assert!(err("&AGE-").to_string().contains("printable ASCII"));
        // '&' itself must be "&-".
        assert!(err("&ACY-").to_string().contains("printable ASCII"));
    }

    #[test]
    fn rejects_adjacent_sections() {
        let e = err("&AOk-&AOk-");
        assert_eq!(e.offset(), 5);
        assert!(e.to_string().contains("directly follows"), "{e}");
        // Separated by "&-" or ASCII is fine.
        assert_eq!(decode("&AOk-&-&AOk-").as_deref(), Ok("é&é"));
        assert_eq!(decode("&AOk-x&AOk-").as_deref(), Ok("éxé"));
    }

    #[test]
    fn lossy_returns_input_on_error() {
        assert_eq!(decode_lossy("Entwürfe"), "Entwürfe");
        assert_eq!(decode_lossy("&broken"), "&broken");
        assert_eq!(decode_lossy("Entw&APw-rfe"), "Entwürfe");
    }

    #[test]
    fn error_is_std_error_with_position() {
        let e: Box<dyn std::error::Error> = Box::new(err("ab&"));
        assert_eq!(
            e.to_string(),
            "invalid modified UTF-7 mailbox name at byte 2: '&' section is not terminated by '-'"
        );
    }

    #[test]
    fn control_characters_round_trip() {
        let s = "\0\u{1}\n\u{7f}";
        assert_eq!(decode(&encode(s)).as_deref(), Ok(s));
    }

    proptest! {
        #[test]
        fn prop_round_trip(s in any::<String>()) {
            prop_assert_eq!(decode(&encode(&s)), Ok(s));
        }

        #[test]
        fn prop_encode_is_printable_ascii(s in any::<String>()) {
            let w = encode(&s);
            prop_assert!(w.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{:?}", w);
        }

        #[test]
        fn prop_decode_never_panics(s in any::<String>()) {
            let _ = decode(&s);
            let _ = decode_lossy(&s);
        }

        // Dense in '&', '-' and base64 characters, so it hits the section parser.
        #[test]
        fn prop_decode_never_panics_utf7ish(s in "[&A-Za-z0-9+,/= -]{0,40}") {
            let _ = decode(&s);
        }

        // Canonical decoding: whatever decodes re-encodes to the same wire form.
        #[test]
        fn prop_decode_is_canonical(s in "[&A-Za-z0-9+,a -]{0,40}") {
            if let Ok(name) = decode(&s) {
                prop_assert_eq!(encode(&name), s);
            }
        }

        #[test]
        fn prop_lossy_matches_decode(s in any::<String>()) {
            match decode(&s) {
                Ok(d) => prop_assert_eq!(decode_lossy(&s), d),
                Err(_) => prop_assert_eq!(decode_lossy(&s), s),
            }
        }
    }
}
