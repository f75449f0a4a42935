#!/usr/bin/env python3
"""Awkward-mailbox generator: the folder names, message forms, flags and dates
that break IMAP clients, one numbered case each, for btsx tests.

    awkward.py --port P --user U --password PW [--host 127.0.0.1]
               [--skip TAG]... [--list]

Logs in over plain IMAP and creates every case:
  name-*   a folder with an awkward name ('/' is the hierarchy, replaced by the
           server's separator; the personal namespace prefix is prepended),
           holding one small message;
  form-*   one message of an awkward form in the folder "Forms";
  flag-*   one message with awkward flags in "Flags";
  date-*   one message with an awkward INTERNALDATE in "Dates".
Every folder is subscribed, except the one of case name-unsubscribed.

A case the server refuses (CREATE or APPEND answered NO) is left out and
listed under "refused"; --skip TAG leaves out every case with that tag
(repeatable; --list shows ids and tags). Tags:
  escape     name with '\\' or '"' (sent quoted with escapes)
  wildcard   name with '%' or '*'
  space      leading or trailing space in a name
  nul        NUL bytes in the message (needs BINARY to be copied byte-exact)
  8bit-header  raw 8-bit bytes in a header (Cyrus rewrites them to 'X')
  epoch-date   INTERNALDATE at or before the epoch (Cyrus replaces the epoch
               by the APPEND time, refuses 1969, wraps 1970 dates that are
               before the epoch in UTC to 2106)
  pre-epoch    INTERNALDATE before the epoch
  far-future   INTERNALDATE from 2038 on (Dovecot 2.3 replaces it)
  bare-eol   bare LF line ends (Cyrus refuses them)
  bare-cr    a bare CR in the body
  unsubscribed  the one unsubscribed folder
  cyrus-refuses  other names Cyrus refuses ('[', '{', '!', ...)
The same arguments against the same kind of server always produce the same
mailbox. Prints one JSON line:
  {"cases": n, "folders": n, "messages": n, "bytes": n,
   "refused": ["case-id", ...], "skipped": ["case-id", ...],
   "unsupported": ["case-id", ...]}
("unsupported": a name component holding the server's own separator.)
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genmail  # noqa: E402  (mutf7, quote, Server)


def msg(subject, mid, body=b"Hello.\r\n", extra=b"", eol=b"\r\n"):
    """A small message; `extra` is raw header lines (each ending in `eol`)."""
    head = (b"From: Awkward Sender <awk@example.org>" + eol
            + b"To: Alice <alice@example.com>" + eol
            + b"Subject: " + subject.encode() + eol
            + b"Date: Mon, 01 Jan 2024 10:00:00 +0000" + eol
            + b"Message-ID: <" + mid.encode() + b"@awkward.example>" + eol
            + extra)
    return head + eol + body


# --------------------------------------------------------------------------
# the cases: (id, tags, folder path or None, message builder, flags, date)

NAMES = [
    ("name-backslash", {"escape"}, "back\\slash"),
    ("name-quote", {"escape"}, 'Say "hi"'),
    ("name-both-escapes", {"escape"}, 'a\\"b'),
    ("name-percent-star", {"wildcard"}, "pct%star*"),
    ("name-lead-space", {"space"}, " lead space"),
    ("name-trail-space", {"space"}, "trail space "),
    ("name-umlaut", set(), "Überweisungen für Jörg"),
    ("name-cjk", set(), "日本語のフォルダ"),
    ("name-emoji", set(), "Post 📬 box"),
    ("name-rtl", set(), "ملفات"),
    ("name-ampersand", set(), "R&D"),
    ("name-amp-dash", set(), "&-literal &Jjo-"),
    ("name-deep", set(), "l1/l2/l3/l4/l5/l6/l7/l8"),
    ("name-deep-unicode", set(), "Ärger/Straße/Größe"),
    ("name-dot", set(), "dot.name"),
    ("name-dots-deep", set(), "v1.2/rel.3"),
    ("name-long", set(), "Long " + "abcdefghij" * 18),
    ("name-brackets", {"cyrus-refuses"}, "br [a] (b) {c}"),
    ("name-literal-look", {"cyrus-refuses"}, "lit {5}"),
    ("name-nil", set(), "NIL"),
    ("name-inbox-like", set(), "INBOXES"),
    ("name-tilde-hash", set(), "tilde~ #hash"),
    ("name-punct", {"cyrus-refuses"}, "a,b;c:d=e+f!g@h'i"),
    ("name-digits", set(), "2024"),
    ("name-unsubscribed", {"unsubscribed"}, "Not subscribed"),
    # one name component holding '/': only on servers whose separator is not '/'
    ("name-slash-inside", set(), ("with/slash",)),
]

HUGE_HEADER = b"".join(
    b"Received: from relay%d.example.net by relay%d.example.net with ESMTP id %08d; Mon, 01 Jan 2024 09:%02d:00 +0000\r\n"
    % (i, i + 1, i, i % 60) for i in range(700))

MULTIPART = (
    b'Content-Type: multipart/mixed; boundary="outer"\r\nMIME-Version: 1.0\r\n',
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
    b"--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>Hi</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: inner@example.org\r\nSubject: attached mail\r\n\r\nInner body.\r\n"
    b"--outer\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQoLDA0ODw==\r\n"
    b"--outer--\r\n")

FORMS = [
    ("form-nul", {"nul"}, lambda: msg("NUL bytes", "nul", b"before\x00after\r\n\x00\x00\r\n")),
    ("form-bare-lf", {"bare-eol"}, lambda: msg("bare LF", "bare-lf", b"line one\nline two\n", eol=b"\n")),
    ("form-bare-cr", {"bare-cr"}, lambda: msg("bare CR", "bare-cr", b"one\rtwo\r\nthree\r\n")),
    ("form-mixed-eol", {"bare-eol"}, lambda: msg("mixed line ends", "mixed-eol", b"crlf\r\nlf\ncr\rend\r\n")),
    ("form-no-final-newline", set(), lambda: msg("no final newline", "no-final-nl", b"ends here")),
    ("form-8bit-header-utf8", {"8bit-header"},
     lambda: msg("UTF-8 header", "utf8-header", extra="X-Name: Jürgen Groß\r\n".encode())),
    ("form-8bit-header-latin1", {"8bit-header"},
     lambda: msg("Latin-1 header", "latin1-header", extra=b"X-Name: Caf\xe9 cr\xe8me\r\n")),
    ("form-8bit-body", set(), lambda: msg("8-bit body", "8bit-body", bytes(range(0x80, 0x100)) + b"\r\n")),
    ("form-control-chars", set(), lambda: msg("control characters", "ctl", b"bell\x07 esc\x1b tab\t ff\x0c\r\n")),
    ("form-huge-header", set(), lambda: msg("huge header", "huge-header", extra=HUGE_HEADER)),
    ("form-empty-body", set(), lambda: msg("empty body", "empty-body", b"")),
    ("form-headers-only", set(),
     lambda: b"From: awk@example.org\r\nSubject: no body at all\r\nMessage-ID: <headers-only@awkward.example>\r\n"),
    ("form-long-line", set(), lambda: msg("very long line", "long-line", b"x" * 120000 + b"\r\n")),
    ("form-long-folded-header", set(),
     lambda: msg("folded header", "folded", extra=b"X-Long: " + b"\r\n\t".join([b"word" * 15] * 60) + b"\r\n")),
    ("form-multipart", set(), lambda: msg("MIME multipart", "multipart", MULTIPART[1], extra=MULTIPART[0])),
    ("form-literal-in-body", set(),
     lambda: msg("literal-looking lines", "literal-body", b"a {12}\r\n* OK fake\r\nA1 OK done\r\n)\r\n")),
    ("form-dot-and-from", set(), lambda: msg("dots and From", "dot-from", b".\r\n..\r\nFrom me\r\n>From you\r\n")),
    ("form-no-message-id", set(),
     lambda: b"From: awk@example.org\r\nSubject: without Message-ID\r\n\r\nNo id.\r\n"),
    ("form-duplicate-a", set(), lambda: msg("byte-identical twin", "twin")),
    ("form-duplicate-b", set(), lambda: msg("byte-identical twin", "twin")),
    ("form-big", set(), lambda: msg("two megabytes", "big", (b"0123456789abcdef" * 4 + b"\r\n") * 31000)),
    ("form-whitespace-header", set(),
     lambda: msg("odd header whitespace", "ws", extra=b"X-Empty:\r\nX-Spaces:    \r\nX-Tab:\tvalue\r\n")),
]

KEYWORDS_MANY = ["kw%02d" % i for i in range(20)]

FLAGS = [
    ("flag-none", set(), []),
    ("flag-all-system", set(), ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]),
    ("flag-deleted-only", set(), ["\\Deleted"]),
    ("flag-draft-seen", set(), ["\\Draft", "\\Seen"]),
    ("flag-many-keywords", set(), KEYWORDS_MANY),
    ("flag-dollar-keywords", set(), ["$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "$label1"]),
    ("flag-odd-keywords", set(), ["a+b", "x.y", "foo!bar", "it's", "#tag", "~x", "&amp", "under_score", "semi;colon"]),
    ("flag-long-keyword", set(), ["k" + "eyword" * 7]),  # 43 bytes: Dovecot allows 50
    ("flag-case-twins-a", set(), ["Work"]),
    ("flag-case-twins-b", set(), ["Important", "$Important"]),
    ("flag-system-and-keywords", set(), ["\\Seen", "\\Flagged", "Work", "$Forwarded"]),
]

DATES = [
    ("date-epoch", {"epoch-date"}, '"01-Jan-1970 00:00:00 +0000"'),
    ("date-pre-epoch", {"epoch-date", "pre-epoch"}, '"31-Dec-1969 23:00:00 +0000"'),
    ("date-tz-before-epoch", {"epoch-date", "pre-epoch"}, '"01-Jan-1970 00:30:00 +0100"'),
    ("date-1980", set(), '"15-Jun-1980 12:34:56 +0200"'),
    ("date-y2k-eve", set(), '"31-Dec-1999 23:59:59 -0800"'),
    ("date-leap-day", set(), '"29-Feb-2024 12:00:00 +0000"'),
    ("date-y2038", {"far-future"}, '"19-Jan-2038 03:14:08 +0000"'),
    ("date-future", {"far-future"}, '"01-Jan-2099 00:00:00 +0000"'),
    ("date-tz-plus14", set(), '"01-Jul-2021 00:30:00 +1400"'),
    ("date-tz-minus12", set(), '"01-Jul-2021 23:30:00 -1200"'),
    ("date-tz-nepal", set(), '"10-Oct-2022 10:10:10 +0545"'),
    ("date-tz-marquesas", set(), '"10-Oct-2022 10:10:10 -0930"'),
    ("date-single-digit-day", set(), '" 5-May-2015 05:05:05 +0000"'),
]


def wire(srv, folder):
    """Server mailbox name of a folder: a path with '/' as the hierarchy, or a
    tuple of name components (None if a component holds the separator)."""
    if isinstance(folder, str):
        return srv.wire_name(folder)
    if any(srv.sep and srv.sep in c for c in folder):
        return None
    return genmail.quote(genmail.mutf7(srv.prefix + (srv.sep or "/").join(folder)))


def cases():
    """Every case as (id, tags, folder, message bytes or None, flags, date)."""
    out = []
    for cid, tags, name in NAMES:
        out.append((cid, tags, name, msg("in folder " + cid, cid), [], '"02-Feb-2022 02:02:02 +0000"'))
    for cid, tags, build in FORMS:
        out.append((cid, tags, "Forms", build(), ["\\Seen"], '"03-Mar-2023 03:03:03 +0000"'))
    for cid, tags, flags in FLAGS:
        out.append((cid, tags, "Flags", msg("flags " + cid, cid), flags, '"04-Apr-2023 04:04:04 +0000"'))
    for cid, tags, date in DATES:
        out.append((cid, tags, "Dates", msg("date " + cid, cid), ["\\Seen"], date))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--skip", action="append", default=[], metavar="TAG")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    a = ap.parse_args()
    all_cases = cases()
    if a.list:
        for cid, tags, folder, _m, _f, _d in all_cases:
            shown = folder if isinstance(folder, str) else "(%s)" % ", ".join(folder)
            print("%-28s %-24s %s" % (cid, ",".join(sorted(tags)) or "-", shown))
        return
    if a.port is None or a.user is None or a.password is None:
        ap.error("--port, --user and --password are required")

    srv = genmail.Server(a.host, a.port, a.user, a.password)
    m = srv.m
    stats = {"cases": 0, "folders": 0, "messages": 0, "bytes": 0, "refused": [], "skipped": [],
             "unsupported": []}
    created = {}  # folder -> True (usable) / False (refused)

    def ensure(folder, cid, subscribe):
        if folder in created:
            return created[folder]
        ok = True
        if folder != "INBOX":
            typ, data = m.create(wire(srv, folder))
            ok = typ == "OK" or b"ALREADYEXISTS" in b" ".join(d or b"" for d in data)
            if ok and subscribe:
                m.subscribe(wire(srv, folder))
        created[folder] = ok
        if ok:
            stats["folders"] += 1
        return ok

    for cid, tags, folder, body, flags, date in all_cases:
        if tags & set(a.skip):
            stats["skipped"].append(cid)
            continue
        if wire(srv, folder) is None:
            stats["unsupported"].append(cid)
            continue
        stats["cases"] += 1
        if not ensure(folder, cid, "unsubscribed" not in tags):
            stats["refused"].append(cid)
            continue
        args = [wire(srv, folder)]
        if flags:
            args.append("(" + " ".join(flags) + ")")
        args.append(date)
        m.literal = body
        try:
            typ, data = m._simple_command("APPEND", *args)
        except genmail.imaplib.IMAP4.error:
            typ = "NO"
        if typ != "OK":
            stats["refused"].append(cid)
            continue
        stats["messages"] += 1
        stats["bytes"] += len(body)
    srv.logout()
    print(json.dumps(stats))


if __name__ == "__main__":
    try:
        main()
    except (genmail.imaplib.IMAP4.error, OSError) as e:
        print("awkward.py: %s" % e, file=sys.stderr)
        sys.exit(1)
