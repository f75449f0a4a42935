//! The one encoder: every command btsx sends is built here. Strings become an atom, a
//! quoted string or a literal by their content; a quoted string never carries 8-bit bytes.

use std::borrow::Cow;

/// One piece of a command: plain text, or a literal whose bytes follow a `{n}` line.
#[derive(Debug, Clone)]
pub(crate) enum Part<'a> {
    Text(Vec<u8>),
    /// The bytes, and whether they go as `literal8` (`~{n}`, RFC 3516).
    Literal(Cow<'a, [u8]>, bool),
    /// A literal of this many bytes that the caller writes itself, piece by piece (a
    /// streamed message); it ends the command, and the caller ends the line after it.
    Announce(u64),
}

/// A command without its tag; the session adds the tag and the literal markers (`{n}`
/// or `{n+}` depend on what the server offers).
#[derive(Debug, Clone, Default)]
pub(crate) struct Command<'a> {
    parts: Vec<Part<'a>>,
    /// Text not yet closed into a part.
    tail: Vec<u8>,
}

impl<'a> Command<'a> {
    pub(crate) fn new(verb: &str) -> Command<'a> {
        Command {
            parts: Vec::new(),
            tail: verb.as_bytes().to_vec(),
        }
    }

    fn text_mut(&mut self) -> &mut Vec<u8> {
        &mut self.tail
    }

    fn push_literal(&mut self, part: Part<'a>) {
        let t = std::mem::take(&mut self.tail);
        self.parts.push(Part::Text(t));
        self.parts.push(part);
    }

    /// The pieces to write, in order.
    pub(crate) fn into_parts(mut self) -> Vec<Part<'a>> {
        let t = std::mem::take(&mut self.tail);
        if !t.is_empty() {
            self.parts.push(Part::Text(t));
        }
        self.parts
    }

    /// Protocol text written as is (keywords, numbers, sets, lists we build).
    pub(crate) fn raw(mut self, s: &str) -> Self {
        self.text_mut().extend_from_slice(s.as_bytes());
        self
    }

    /// A space, then `s` as an astring.
    pub(crate) fn astring(mut self, s: &'a [u8]) -> Self {
        self.text_mut().push(b' ');
        match choose(s) {
            Form::Atom => self.text_mut().extend_from_slice(s),
            Form::Quoted => {
                let t = self.text_mut();
                t.push(b'"');
                for &b in s {
                    if b == b'"' || b == b'\\' {
                        t.push(b'\\');
                    }
                    t.push(b);
                }
                t.push(b'"');
            }
            Form::Literal => self.push_literal(Part::Literal(Cow::Borrowed(s), false)),
        }
        self
    }

    /// A space, then the announcement of a literal of `n` bytes written later by the caller
    /// (see [`Part::Announce`]); nothing may follow it.
    pub(crate) fn announce(mut self, n: u64) -> Self {
        self.text_mut().push(b' ');
        self.push_literal(Part::Announce(n));
        self
    }

    /// A space, then a literal (message bodies; `binary` for `~{n}`).
    pub(crate) fn literal(mut self, s: &'a [u8], binary: bool) -> Self {
        self.text_mut().push(b' ');
        self.push_literal(Part::Literal(Cow::Borrowed(s), binary));
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Atom,
    Quoted,
    Literal,
}

/// How a string must go on the wire (RFC 3501 §4, §9: ASTRING-CHAR, quoted, literal).
pub(crate) fn choose(s: &[u8]) -> Form {
    if s.is_empty() || s.eq_ignore_ascii_case(b"NIL") {
        return Form::Quoted;
    }
    if s.iter().all(|&b| is_astring_char(b)) {
        return Form::Atom;
    }
    if s.iter()
        .all(|&b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n')
    {
        return Form::Quoted;
    }
    Form::Literal
}

fn is_astring_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(c: &Command<'_>) -> String {
        c.clone()
            .into_parts()
            .iter()
            .map(|p| match p {
                Part::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Part::Literal(l, _) => format!("{{{}}}<{}>", l.len(), String::from_utf8_lossy(l)),
                Part::Announce(n) => format!("{{{n}}}<…>"),
            })
            .collect()
    }

    #[test]
    fn strings_take_the_form_their_content_needs() {
        let c = Command::new("EXAMINE").astring(b"INBOX");
        assert_eq!(text(&c), "EXAMINE INBOX");
        let c = Command::new("EXAMINE").astring(br#"back\slash"#);
        assert_eq!(text(&c), r#"EXAMINE "back\\slash""#);
        let c = Command::new("EXAMINE").astring(br#"Say "hi""#);
        assert_eq!(text(&c), r#"EXAMINE "Say \"hi\"""#);
        let c = Command::new("EXAMINE").astring(b"pct%star*");
        assert_eq!(text(&c), r#"EXAMINE "pct%star*""#);
        let c = Command::new("EXAMINE").astring(b" lead space");
        assert_eq!(text(&c), r#"EXAMINE " lead space""#);
        let c = Command::new("EXAMINE").astring("Größe".as_bytes());
        assert_eq!(text(&c), "EXAMINE {7}<Größe>");
        let c = Command::new("EXAMINE").astring(b"");
        assert_eq!(text(&c), r#"EXAMINE """#);
        let c = Command::new("LOGIN").astring(b"a\r\nb");
        assert_eq!(choose(b"a\r\nb"), Form::Literal);
        assert!(text(&c).ends_with("{4}<a\r\nb>"));
    }
}
