//! Server URLs given on the command line: `imaps://USER@HOST[:PORT]` or
//! `imap://USER@HOST[:PORT]`.
//!
//! Passwords are refused here on purpose: a command line is visible to other
//! users in `ps` and is kept in shell history.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// How the connection is secured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// `imaps://`: TLS from the first byte.
    Tls,
    /// `imap://`: plain connection upgraded with STARTTLS, which is required.
    StartTls,
}

impl Security {
    /// The URL scheme for this security mode.
    pub fn scheme(&self) -> &'static str {
        match self {
            Security::Tls => "imaps",
            Security::StartTls => "imap",
        }
    }

    /// The IANA port used when the URL names none.
    pub fn default_port(&self) -> u16 {
        match self {
            Security::Tls => 993,
            Security::StartTls => 143,
        }
    }
}

/// One IMAP account on one server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// Login name, percent-decoded.
    pub user: String,
    /// Host name (lowercased), IPv4 address, or IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// Why a server URL was rejected: one sentence naming the problem and the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError(String);

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EndpointError {}

const FORM: &str = "use imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]";

impl Endpoint {
    /// Parses `imaps://USER@HOST[:PORT]` or `imap://USER@HOST[:PORT]`.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        // Every message shows the URL only in redacted form, so a password
        // typed by mistake is never echoed whatever else is wrong.
        let shown = redact(url);
        let fail = |what: String| Err(EndpointError(what));

        if url.is_empty() {
            return fail(format!("empty server URL: {FORM}"));
        }
        if url.chars().any(char::is_whitespace) {
            return fail(format!("server URL '{shown}' contains whitespace: {FORM}"));
        }
        if url.chars().any(char::is_control) {
            return fail(format!(
                "server URL '{shown}' contains a control character: {FORM}"
            ));
        }

        let Some((scheme, rest)) = url.split_once("://").filter(|(s, _)| is_scheme(s)) else {
            return fail(format!("missing scheme in '{shown}': {FORM}"));
        };
        let security = if scheme.eq_ignore_ascii_case("imaps") {
            Security::Tls
        } else if scheme.eq_ignore_ascii_case("imap") {
            Security::StartTls
        } else {
            return fail(format!("unknown scheme '{scheme}' in '{shown}': {FORM}"));
        };

        // The last '@' separates user from host, so an unencoded
        // "user@example.com@host" still works.
        let Some((userinfo, hostpart)) = rest.rsplit_once('@') else {
            return fail(format!("missing user in '{shown}': {FORM}"));
        };
        if userinfo.contains(':') {
            return fail(format!(
                "password in server URL '{shown}': passwords never go on the command line \
                 (other users can see them in ps, and shell history keeps them); \
                 set BTSX_SRC_PASSWORD / BTSX_DST_PASSWORD or use --src-password-file / --dst-password-file"
            ));
        }
        if userinfo.is_empty() {
            return fail(format!("missing user in '{shown}': {FORM}"));
        }
        if let Some(c) = userinfo.chars().find(|c| matches!(c, '/' | '?' | '#')) {
            return fail(format!(
                "unexpected '{c}' in the user part of '{shown}' (the URL takes no path, query or fragment; \
                 write '%{:02X}' if it belongs to the user name): {FORM}",
                u32::from(c)
            ));
        }
        let user = percent_decode(userinfo).map_err(|e| {
            EndpointError(match e {
                PctError::BadEscape => format!(
                    "bad percent-encoding in the user name of '{shown}': '%' must be followed by \
                     two hex digits (write %25 for a literal '%'); {FORM}"
                ),
                PctError::NotUtf8 => format!(
                    "bad percent-encoding in the user name of '{shown}': the decoded bytes are not valid UTF-8; {FORM}"
                ),
                PctError::Control => format!(
                    "the user name in '{shown}' contains a percent-encoded control character; {FORM}"
                ),
            })
        })?;

        let authority = match hostpart.find(['/', '?', '#']) {
            None => hostpart,
            Some(i) if &hostpart[i..] == "/" => &hostpart[..i],
            Some(i) => {
                let tail = &hostpart[i..];
                let kind = match tail.trim_start_matches('/').chars().next() {
                    Some('?') => "query",
                    Some('#') => "fragment",
                    _ => "path",
                };
                return fail(format!(
                    "unexpected {kind} '{tail}' in '{shown}': the server URL takes no path, query or fragment; {FORM}"
                ));
            }
        };

        let (host, port) = split_host_port(authority, &shown)?;
        let port = match port {
            None => security.default_port(),
            Some(p) => parse_port(p, &shown)?,
        };
        Ok(Endpoint {
            user,
            host,
            port,
            security,
        })
    }

    /// Canonical URL form, user percent-encoded where needed:
    /// `imaps://user%40example.com@host:993`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}@{}",
            self.security.scheme(),
            percent_encode(&self.user),
            self.display_addr()
        )
    }

    /// `host:port` for display, IPv6 bracketed.
    pub fn display_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

/// RFC 3986 scheme syntax: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The URL with any password in the userinfo replaced by `***`, and control
/// characters escaped so the message cannot mess up a terminal.
fn redact(url: &str) -> String {
    let shown = match url.rsplit_once('@') {
        Some((before, after)) => {
            let (prefix, userinfo) = match before.split_once("://") {
                Some((s, u)) if is_scheme(s) => (&before[..s.len() + 3], u),
                _ => ("", before),
            };
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{prefix}{user}:***@{after}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

enum PctError {
    BadEscape,
    NotUtf8,
    Control,
}

fn percent_decode(s: &str) -> Result<String, PctError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |k: usize| bytes.get(k).and_then(|&h| char::from(h).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                }
                _ => return Err(PctError::BadEscape),
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| PctError::NotUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(PctError::Control);
    }
    Ok(decoded)
}

/// Keeps RFC 3986 unreserved and sub-delim characters, encodes the rest.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn split_host_port<'a>(
    authority: &'a str,
    shown: &str,
) -> Result<(String, Option<&'a str>), EndpointError> {
    if let Some(inner) = authority.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(EndpointError(format!(
                "missing ']' after the IPv6 address in '{shown}': {FORM}"
            )));
        };
        let ip: Ipv6Addr = addr.parse().map_err(|_| {
            EndpointError(format!(
                "invalid IPv6 address '[{addr}]' in '{shown}': {FORM}"
            ))
        })?;
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => {
                    return Err(EndpointError(format!(
                        "unexpected '{after}' after the IPv6 address in '{shown}': {FORM}"
                    )));
                }
            },
        };
        return Ok((ip.to_string(), port));
    }

    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if port.is_some_and(|p| p.contains(':')) && authority.parse::<Ipv6Addr>().is_ok() {
        return Err(EndpointError(format!(
            "IPv6 address in '{shown}' must be in brackets, e.g. imaps://USER@[::1]:993"
        )));
    }
    if host.is_empty() {
        return Err(EndpointError(format!("empty host in '{shown}': {FORM}")));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(EndpointError(format!(
            "invalid character '{c}' in host '{host}' of '{shown}' (international names must be \
             written in punycode, xn--…): {FORM}"
        )));
    }
    // All digits and dots can only be an IPv4 address; catch 300.1.1.1 here
    // rather than as a confusing DNS failure later.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') && host.parse::<Ipv4Addr>().is_err() {
        return Err(EndpointError(format!(
            "invalid IPv4 address '{host}' in '{shown}': {FORM}"
        )));
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(p: &str, shown: &str) -> Result<u16, EndpointError> {
    if p.is_empty() {
        return Err(EndpointError(format!(
            "empty port after ':' in '{shown}': give a number from 1 to 65535 or leave out the ':'"
        )));
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError(format!(
            "bad port '{p}' in '{shown}': the port must be a number from 1 to 65535"
        )));
    }
    match p.parse::<u16>() {
        Ok(0) => Err(EndpointError(format!(
            "port 0 in '{shown}' is not usable: the port must be a number from 1 to 65535"
        ))),
        Ok(n) => Ok(n),
        // Only digits, so the only failure is overflow.
        Err(_) => Err(EndpointError(format!(
            "port {p} in '{shown}' is too large: the port must be a number from 1 to 65535"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(url: &str) -> Endpoint {
        match Endpoint::parse(url) {
            Ok(e) => e,
            Err(e) => panic!("parse({url:?}) failed: {e}"),
        }
    }

    fn err(url: &str) -> String {
        match Endpoint::parse(url) {
            Ok(e) => panic!("parse({url:?}) unexpectedly gave {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn ep(user: &str, host: &str, port: u16, security: Security) -> Endpoint {
        Endpoint {
            user: user.into(),
            host: host.into(),
            port,
            security,
        }
    }

    #[test]
    fn default_ports() {
        assert_eq!(
            ok("imaps://alice@mail.example.com"),
            ep("alice", "mail.example.com", 993, Security::Tls)
        );
        assert_eq!(
            ok("imap://alice@mail.example.com"),
            ep("alice", "mail.example.com", 143, Security::StartTls)
        );
    }

    #[test]
    fn explicit_port_and_trailing_slash() {
        assert_eq!(
            ok("imaps://bob@host:1993"),
            ep("bob", "host", 1993, Security::Tls)
        );
        assert_eq!(
            ok("imap://bob@host:65535/"),
            ep("bob", "host", 65535, Security::StartTls)
        );
        assert_eq!(
            ok("imaps://bob@host/"),
            ep("bob", "host", 993, Security::Tls)
        );
        assert_eq!(
            ok("imaps://bob@host:1"),
            ep("bob", "host", 1, Security::Tls)
        );
    }

    #[test]
    fn percent_encoded_and_raw_at_in_user() {
        let want = ep("user@example.com", "imap.example.com", 993, Security::Tls);
        assert_eq!(ok("imaps://user%40example.com@imap.example.com"), want);
        assert_eq!(
            ok("imaps://user%40Example.com@imap.example.com").user,
            "user@Example.com"
        );
        // Unencoded '@' in the user is tolerated: the last '@' ends the user.
        assert_eq!(ok("imaps://user@example.com@imap.example.com"), want);
        assert_eq!(ok("imaps://j%C3%BCrgen@h").user, "jürgen");
        assert_eq!(ok("imaps://jürgen@h").user, "jürgen");
        assert_eq!(ok("imaps://DOMAIN%5Cjohn%20doe@h").user, "DOMAIN\\john doe");
    }

    #[test]
    fn hosts() {
        assert_eq!(ok("imaps://u@192.0.2.1:143").host, "192.0.2.1");
        assert_eq!(ok("imaps://u@[::1]"), ep("u", "::1", 993, Security::Tls));
        assert_eq!(
            ok("imap://u@[2001:DB8::0001]:10143"),
            ep("u", "2001:db8::1", 10143, Security::StartTls)
        );
        assert_eq!(ok("imaps://u@Mail.Example.COM").host, "mail.example.com");
        assert_eq!(
            ok("imaps://u@mail_1.example.com.").host,
            "mail_1.example.com."
        );
        assert_eq!(ok("IMAPS://u@h").security, Security::Tls);
        assert_eq!(ok("Imap://u@h").security, Security::StartTls);
    }

    #[test]
    fn from_str_works() {
        let e: Endpoint = "imaps://u@h:2".parse().unwrap();
        assert_eq!(e, ep("u", "h", 2, Security::Tls));
        assert!("nope".parse::<Endpoint>().is_err());
    }

    #[test]
    fn url_and_display_addr() {
        let e = ep("user@example.com", "host", 993, Security::Tls);
        assert_eq!(e.url(), "imaps://user%40example.com@host:993");
        assert_eq!(e.display_addr(), "host:993");
        let e = ep("a b:c/%ü", "::1", 143, Security::StartTls);
        assert_eq!(e.url(), "imap://a%20b%3Ac%2F%25%C3%BC@[::1]:143");
        assert_eq!(e.display_addr(), "[::1]:143");
        assert_eq!(ok(&e.url()), e);
    }

    #[test]
    fn serde_names() {
        assert_eq!(serde_json::to_string(&Security::Tls).unwrap(), "\"tls\"");
        assert_eq!(
            serde_json::to_string(&Security::StartTls).unwrap(),
            "\"starttls\""
        );
        let e = ep("u", "h", 993, Security::StartTls);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"user":"u","host":"h","port":993,"security":"starttls"}"#
        );
        assert_eq!(serde_json::from_str::<Endpoint>(&json).unwrap(), e);
    }

    #[test]
    fn error_empty() {
        assert_eq!(err(""), format!("empty server URL: {FORM}"));
    }

    #[test]
    fn error_whitespace() {
        assert!(err(" imaps://u@h").contains("contains whitespace"));
        assert!(err("imaps://u@h ").contains("contains whitespace"));
        assert!(err("imaps://u @h").contains("contains whitespace"));
        let e = err("imaps://u@h\u{1b}[2J");
        assert!(e.contains("control character"), "{e}");
        assert!(
            !e.contains('\u{1b}'),
            "control characters are escaped: {e:?}"
        );
    }

    #[test]
    fn error_missing_scheme() {
        let e = err("user@host");
        assert_eq!(e, format!("missing scheme in 'user@host': {FORM}"));
        assert!(err("://user@host").contains("missing scheme"));
        assert!(err("imaps:user@host").contains("missing scheme"));
        assert!(err("imaps:/user@host").contains("missing scheme"));
    }

    #[test]
    fn error_unknown_scheme() {
        assert_eq!(
            err("http://a@b"),
            "unknown scheme 'http' in 'http://a@b': use imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]"
        );
        assert!(err("imapx://a@b").contains("unknown scheme 'imapx'"));
    }

    #[test]
    fn error_missing_user() {
        assert!(err("imaps://host").contains("missing user in 'imaps://host'"));
        assert!(err("imaps://@host").contains("missing user"));
        assert!(err("imaps://host:993").contains("missing user"));
    }

    #[test]
    fn error_empty_host() {
        assert!(err("imaps://u@").contains("empty host"));
        assert!(err("imaps://u@:993").contains("empty host"));
        assert!(err("imaps://u@/").contains("empty host"));
    }

    #[test]
    fn error_bad_host() {
        assert!(err("imaps://u@[::1").contains("missing ']'"));
        assert!(err("imaps://u@[zz::1]").contains("invalid IPv6 address '[zz::1]'"));
        assert!(err("imaps://u@[::1]x").contains("after the IPv6 address"));
        assert!(err("imaps://u@::1").contains("must be in brackets"));
        assert!(err("imaps://u@2001:db8::1").contains("must be in brackets"));
        assert!(err("imaps://u@ho%73t").contains("invalid character '%' in host"));
        assert!(err("imaps://u@bücher.de").contains("punycode"));
        assert!(err("imaps://u@300.1.1.1").contains("invalid IPv4 address"));
    }

    #[test]
    fn error_bad_port() {
        let e = err("imaps://u@h:abc");
        assert!(
            e.contains("bad port 'abc'") && e.contains("1 to 65535"),
            "{e}"
        );
        assert!(err("imaps://u@h:+993").contains("bad port '+993'"));
        assert!(err("imaps://u@h:-1").contains("bad port '-1'"));
        assert!(err("imaps://u@h:993:1").contains("bad port '993:1'"));
        assert!(err("imaps://u@h:0").contains("port 0"));
        assert!(
            err("imaps://u@h:65536").contains("port 65536 in 'imaps://u@h:65536' is too large")
        );
        assert!(err("imaps://u@h:99999999999999999999999").contains("too large"));
        assert!(err("imaps://u@h:").contains("empty port"));
        assert!(err("imaps://u@[::1]:x").contains("bad port 'x'"));
    }

    #[test]
    fn error_password() {
        for url in [
            "imaps://alice:hunter2@host",
            "imaps://alice:hunter2@host:993/",
            "imaps://alice:hun@ter2@host",
            "imaps://alice:hun/ter2@host",
            "imaps://alice:hunter2@host/path",
            "imaps://alice:hunter2@",
            "http://alice:hunter2@host",
            "alice:hunter2@host",
            "alice:hunter2://x@host",
            "imaps://alice:hunter2 @host",
        ] {
            let e = err(url);
            assert!(
                !e.contains("hunter2") && !e.contains("ter2"),
                "{url}: password echoed: {e}"
            );
            assert!(!e.contains("hun"), "{url}: password echoed: {e}");
        }
        let e = err("imaps://alice:hunter2@host");
        assert!(
            e.starts_with("password in server URL 'imaps://alice:***@host'"),
            "{e}"
        );
        assert!(e.contains("never go on the command line"), "{e}");
        assert!(
            e.contains("BTSX_SRC_PASSWORD") && e.contains("--src-password-file"),
            "{e}"
        );
        assert!(err("imaps://alice:@host").contains("password in server URL"));
    }

    #[test]
    fn error_path_query_fragment() {
        assert!(err("imaps://u@h/INBOX").contains("unexpected path '/INBOX'"));
        assert!(err("imaps://u@h:993/a/b").contains("unexpected path '/a/b'"));
        assert!(err("imaps://u@h//").contains("unexpected path '//'"));
        assert!(err("imaps://u@h?x=1").contains("unexpected query '?x=1'"));
        assert!(err("imaps://u@h/?x=1").contains("unexpected query '/?x=1'"));
        assert!(err("imaps://u@h#frag").contains("unexpected fragment '#frag'"));
        assert!(err("imaps://u/x@h").contains("unexpected '/' in the user part"));
        assert!(err("imaps://u@h?q=a@b").contains("unexpected '?' in the user part"));
    }

    #[test]
    fn error_bad_percent_encoding() {
        assert!(err("imaps://us%4@h").contains("bad percent-encoding in the user name"));
        assert!(err("imaps://us%@h").contains("bad percent-encoding"));
        assert!(err("imaps://us%zz@h").contains("bad percent-encoding"));
        assert!(err("imaps://us%FF@h").contains("not valid UTF-8"));
        assert!(err("imaps://us%0A@h").contains("control character"));
    }

    #[test]
    fn every_error_shows_the_expected_form_or_a_fix() {
        for url in [
            "",
            "x",
            "http://a@b",
            "imaps://h",
            "imaps://u@",
            "imaps://u@h:x",
            "imaps://u@h:0",
            "imaps://u@h:70000",
            "imaps://u@h/p",
            "imaps://u%@h",
            " imaps://u@h",
        ] {
            let e = err(url);
            assert!(
                e.contains("imaps://USER@HOST") || e.contains("1 to 65535"),
                "{url}: {e}"
            );
        }
    }

    fn arb_host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?){0,3}"
                .prop_filter("all-digit names are IPv4", |h| !h
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.')),
            any::<Ipv4Addr>().prop_map(|a| a.to_string()),
            any::<Ipv6Addr>().prop_map(|a| a.to_string()),
        ]
    }

    fn arb_endpoint() -> impl Strategy<Value = Endpoint> {
        (
            "[^\\p{Cc}]{1,20}",
            arb_host(),
            1u16..,
            prop_oneof![Just(Security::Tls), Just(Security::StartTls)],
        )
            .prop_map(|(user, host, port, security)| Endpoint {
                user,
                host,
                port,
                security,
            })
    }

    proptest! {
        #[test]
        fn prop_parse_never_panics(s in any::<String>()) {
            let _ = Endpoint::parse(&s);
        }

        #[test]
        fn prop_parse_never_panics_urlish(s in "(imaps?://)?[a-z%0-9@:/?#\\[\\]. ]{0,30}") {
            let _ = Endpoint::parse(&s);
        }

        #[test]
        fn prop_url_round_trip(e in arb_endpoint()) {
            prop_assert_eq!(Endpoint::parse(&e.url()), Ok(e));
        }

        #[test]
        fn prop_parse_is_idempotent(s in "imaps?://[a-zA-Z%0-9@.]{1,12}@[a-zA-Z0-9.]{1,12}(:[0-9]{1,5})?/?") {
            if let Ok(e) = Endpoint::parse(&s) {
                prop_assert_eq!(Endpoint::parse(&e.url()), Ok(e));
            }
        }

        #[test]
        fn prop_password_never_echoed(
            user in "[a-z]{1,8}",
            pw in "[A-Za-z0-9!/@#?%]{6,16}",
            host in "[a-z]{1,8}(:[0-9a-z]{0,6})?(/[a-z]{0,4})?",
        ) {
            // Tag the password so a coincidental substring of the message cannot match.
            let pw = format!("PW{pw}");
            for url in [format!("imaps://{user}:{pw}@{host}"), format!("{user}:{pw}@{host}")] {
                let e = Endpoint::parse(&url);
                prop_assert!(e.is_err());
                if let Err(e) = e {
                    prop_assert!(!e.to_string().contains(&pw), "{}", e);
                }
            }
        }
    }
}
