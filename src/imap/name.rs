//! Mailbox names in one canonical form: the exact bytes a server uses, and the Unicode name
//! people and the planner see.

use std::fmt;

/// A mailbox name as one server spells it on the wire, and what it means.
///
/// `wire` is what LIST returned after removing the quoting (escapes undone, literals
/// taken whole), so sending it back through the encoder names the same folder however
/// it was written (atom, quoted with escapes, literal, 8-bit).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MailboxName {
    wire: Vec<u8>,
    name: String,
}

impl MailboxName {
    /// A name as the server sent it. With `utf8` (UTF8=ACCEPT enabled) names are UTF-8;
    /// otherwise modified UTF-7, falling back to the bytes as UTF-8 for servers that send
    /// raw 8-bit names anyway.
    pub fn from_wire(wire: &[u8], utf8: bool) -> MailboxName {
        let text = String::from_utf8_lossy(wire);
        let name = if utf8 || !wire.is_ascii() {
            text.into_owned()
        } else {
            crate::utf7::decode_lossy(&text)
        };
        MailboxName {
            wire: wire.to_vec(),
            name,
        }
    }

    /// The wire form of a Unicode name for a server (modified UTF-7 unless `utf8`).
    pub fn from_unicode(name: &str, utf8: bool) -> MailboxName {
        let wire = if utf8 {
            name.as_bytes().to_vec()
        } else {
            crate::utf7::encode(name).into_bytes()
        };
        MailboxName {
            wire,
            name: name.to_string(),
        }
    }

    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The decoded (Unicode) name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The wire bytes as a `String` for the engine's maps; lossless unless the server
    /// used bytes that are not UTF-8 (then [`MailboxName::wire`] is the truth).
    pub fn wire_string(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }
}

impl AsRef<[u8]> for MailboxName {
    fn as_ref(&self) -> &[u8] {
        &self.wire
    }
}

impl fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (wire {:?})",
            self.name,
            String::from_utf8_lossy(&self.wire)
        )
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decode_from_every_spelling() {
        assert_eq!(
            MailboxName::from_wire(b"Entw&APw-rfe", false).as_str(),
            "Entwürfe"
        );
        assert_eq!(
            MailboxName::from_wire("Entwürfe".as_bytes(), false).as_str(),
            "Entwürfe"
        );
        assert_eq!(
            MailboxName::from_wire(br#"back\slash"#, false).as_str(),
            r#"back\slash"#
        );
        let n = MailboxName::from_unicode("Entwürfe", false);
        assert_eq!(n.wire(), b"Entw&APw-rfe");
        assert_eq!(
            MailboxName::from_unicode("Entwürfe", true).wire(),
            "Entwürfe".as_bytes()
        );
    }
}
