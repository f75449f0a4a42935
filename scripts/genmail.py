#!/usr/bin/env python3
"""Deterministic IMAP mailbox generator for btsx tests and benchmarks.

    genmail.py --port P --user U --password PW [--host 127.0.0.1] [--seed N]
               [--messages N] [--big-message-mb M] [--profile realistic|flat]
               [--folder NAME]

Logs in over plain IMAP (imaplib) and APPENDs generated messages with flags,
keywords and INTERNALDATEs. The same arguments against the same kind of
server always produce the same bytes, flags and dates.

realistic (default): a folder tree (INBOX, "Sent Messages", Drafts,
  "Deleted Messages", Archive, Archive/2019, Archive/2020, Archive/2020/Q1,
  "Entwürfe", "日本語", "Old Mail", "Empty" (no messages) and "a.b" unless the
  server separator is '.'); '/' in these names is replaced by the server's
  separator, the personal namespace prefix (e.g. "INBOX.") is prepended, and
  names are sent as modified UTF-7. All folders are subscribed except
  "Old Mail". Sizes average ~27 KB (mostly 2-40 KB, one in 250 is
  0.5-5 MB), so 5,000 messages are about 130 MiB.
  INBOX also gets: a byte-identical duplicate pair, two different messages
  sharing one Message-ID, a message without Message-ID and one whose Subject
  holds a raw Latin-1 byte (0xE9).
flat: all --messages go to --folder (default INBOX; created if needed, '/'
  in the name is a hierarchy separator), no special messages.
--big-message-mb M adds one extra message of about M MB to INBOX.
--no-8bit-headers: the Latin-1 Subject message is an ordinary one (same
  count, same everything else), for servers that rewrite 8-bit header
  bytes (Cyrus turns them into 'X').

Prints one JSON line: {"folders": n, "messages": n, "bytes": n}.
"""

import argparse
import base64
import collections
import imaplib
import json
import random
import re
import sys

# --------------------------------------------------------------------------
# static material

WORDS = (
    "the of and to in is that for it as with was on be by this are from at or an "
    "have not but which all were we when your can said there use each she do how "
    "their if will up other about out many then them these so some her would make "
    "like him into time has look two more write go see number no way could people "
    "my than first water been call who oil its now find long down day did get come "
    "made may part meeting budget quarter report invoice project schedule deadline "
    "review proposal contract customer delivery release server backup migration "
    "mailbox folder account password update please thanks regards attached agenda "
    "minutes draft final version feedback question answer tomorrow monday friday"
).split()
WORDS_UTF8 = (
    "Grüße Müller Straße Bürgermeister Übersicht größer Änderung Öffnungszeiten "
    "naïve café crème déjà résumé façade Zürich Köln señor año "
    "会議 資料 確認 お願い します 東京 来週 予定 ありがとう 日本語"
).split()
FIRST = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Oscar Peggy Trent Victor Walter".split()
LAST = "Smith Jones Müller Schmidt Tanaka Suzuki Dubois Martin Rossi Novak Kowalski Berg".split()
DOMAINS = "example.com example.org example.net mail.example.de corp.example.jp".split()
SUBJECTS = [
    "Quarterly report", "Meeting tomorrow", "Invoice #{n}", "Re: project schedule",
    "Fwd: contract draft", "Lunch?", "Server migration plan", "Your order {n} has shipped",
    "Minutes of the {n}th meeting", "Holiday photos", "Password reset", "Re: Re: budget",
    "Weekly newsletter #{n}", "Build failed (run {n})", "Welcome aboard", "Question about folder sync",
]
SUBJECTS_UTF8 = [
    "Grüße aus Köln", "Änderung der Öffnungszeiten", "会議の資料について", "Résumé – déjà vu",
    "Übersicht {n}", "来週の予定 {n}",
]
ATTACHMENTS = [
    ("report.pdf", "application/pdf"),
    ("photo.jpg", "image/jpeg"),
    ("data.csv", "text/csv"),
    ("invoice.pdf", "application/pdf"),
    ("archive.zip", "application/zip"),
    ("Präsentation.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
WEEKDAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
TZ_OFFSETS = [0, 60, 120, -300, -240, -480, 330, 540, 600, -180, 345, -420]

T2009 = 1230768000  # 2009-01-01T00:00:00Z
T2015 = 1420070400
T2019 = 1546300800
T2020 = 1577836800
T2020Q2 = 1585699200
T2021 = 1609459200
T2025 = 1735689600

# (path with '/' as hierarchy, weight, (start, end) epoch range, subscribed)
REALISTIC = [
    ("INBOX", 34, (T2009, T2025), True),
    ("Sent Messages", 14, (T2009, T2025), True),
    ("Drafts", 2, (T2015, T2025), True),
    ("Deleted Messages", 6, (T2009, T2025), True),
    ("Archive", 5, (T2009, T2019), True),
    ("Archive/2019", 8, (T2019, T2020), True),
    ("Archive/2020", 7, (T2020, T2021), True),
    ("Archive/2020/Q1", 4, (T2020, T2020Q2), True),
    ("Entwürfe", 3, (T2009, T2025), True),
    ("日本語", 4, (T2009, T2025), True),
    ("Old Mail", 10, (T2009, T2015), False),
    ("Empty", 0, (T2009, T2025), True),
    ("a.b", 3, (T2009, T2025), True),
]

ME = ("Alice Example", "alice@example.com")

# --------------------------------------------------------------------------
# helpers


def mutf7(name):
    """Encode a str as IMAP modified UTF-7 (RFC 3501 5.1.3)."""
    out, buf = [], []

    def flush():
        if buf:
            raw = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def internaldate(epoch, offset_min):
    t = epoch + offset_min * 60
    days, secs = divmod(t, 86400)
    y, m, d = civil_from_days(days)
    sign = "+" if offset_min >= 0 else "-"
    o = abs(offset_min)
    return '"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        d, MONTHS[m - 1], y, secs // 3600, secs // 60 % 60, secs % 60, sign, o // 60, o % 60)


def rfc2822date(epoch, offset_min):
    t = epoch + offset_min * 60
    days, secs = divmod(t, 86400)
    y, m, d = civil_from_days(days)
    wd = WEEKDAYS[(days + 3) % 7]  # 1970-01-01 was a Thursday
    sign = "+" if offset_min >= 0 else "-"
    o = abs(offset_min)
    return "%s, %02d %s %04d %02d:%02d:%02d %s%02d%02d" % (
        wd, d, MONTHS[m - 1], y, secs // 3600, secs // 60 % 60, secs % 60, sign, o // 60, o % 60)


def civil_from_days(z):
    """Days since 1970-01-01 -> (year, month, day), proleptic Gregorian."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (1 if m <= 2 else 0), m, d)


def encoded_word(s):
    try:
        s.encode("ascii")
        return s
    except UnicodeEncodeError:
        return "=?UTF-8?B?" + base64.b64encode(s.encode("utf-8")).decode() + "?="


def allocate(n, weights):
    """Split n into integer parts proportional to weights (largest remainder)."""
    total = sum(weights)
    if total == 0 or n == 0:
        return [0] * len(weights)
    raw = [n * w / total for w in weights]
    parts = [int(r) for r in raw]
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] - parts[i]), i))
    for i in order[: n - sum(parts)]:
        parts[i] += 1
    return parts


# --------------------------------------------------------------------------
# message factory


class Factory:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        self.counter = 0
        self.nsize = 0
        self.pool_ascii = self._pool(WORDS, 1 << 18)
        self.pool_utf8 = self._pool(WORDS + WORDS_UTF8, 1 << 17)

    def _pool(self, words, size):
        """A block of CRLF-terminated text lines (<= 76 chars), ~size bytes."""
        rng = self.rng
        lines, n = [], 0
        while n < size:
            if rng.random() < 0.12:
                line = ""
            else:
                w = []
                ln = 0
                target = rng.randint(30, 72)
                while ln < target:
                    word = rng.choice(words)
                    w.append(word)
                    ln += len(word) + 1
                line = " ".join(w)
                if len(line.encode()) > 76:
                    line = line.encode()[:76].decode("utf-8", "ignore").rstrip()
            lines.append(line)
            n += len(line.encode()) + 2
        text = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        starts = [0] + [m.end() for m in re.finditer(b"\r\n", text)][:-1]
        return (text + text, starts, len(text))

    def text(self, nbytes, utf8=False):
        pool, starts, plen = self.pool_utf8 if utf8 else self.pool_ascii
        nbytes = max(nbytes, 40)
        chunks = []
        while nbytes > 0:
            take = min(nbytes, plen)
            start = starts[self.rng.randrange(len(starts))]
            chunk = pool[start : start + take]
            cut = chunk.rfind(b"\r\n")
            chunk = chunk[: cut + 2] if cut > 0 else b"hello\r\n"
            chunks.append(chunk)
            nbytes -= len(chunk)
        return b"".join(chunks)

    def size(self):
        # One message in 250 (evenly spread, so totals are stable) is big.
        self.nsize += 1
        if self.nsize % 250 == 125:
            # low-discrepancy sizes over 0.5-5 MB keep the total predictable
            k = self.nsize // 250 + 1
            frac = (k * 0.6180339887498949) % 1.0
            return 512 * 1024 + int(frac * 4.5 * 1024 * 1024) + self.rng.randrange(4096)
        return 2048 + int(38912 * self.rng.random() ** 1.6)

    def person(self):
        f = self.rng.choice(FIRST)
        last = self.rng.choice(LAST)
        dom = self.rng.choice(DOMAINS)
        local = (f + "." + last).lower().encode("ascii", "ignore").decode() or "user"
        return (f + " " + last, local.replace("ü", "u") + "@" + dom)

    @staticmethod
    def addr(p):
        name, email = p
        return "%s <%s>" % (encoded_word(name), email)

    def message(self, folder, epoch, offset, size=None, kind=None, subject=None,
                message_id=True, raw_subject=None):
        """Build one message (bytes) of roughly `size` bytes."""
        rng = self.rng
        self.counter += 1
        size = size if size is not None else self.size()
        if kind is None:
            if size > 45000:
                kind = "attach"
            else:
                r = rng.random()
                kind = "text" if r < 0.45 else "html" if r < 0.65 else "attach"
        utf8 = rng.random() < 0.2
        sent = folder.startswith("Sent")
        frm = ME if sent else self.person()
        to = [self.person() if sent else ME] + [self.person() for _ in range(rng.randint(0, 2))]
        if subject is None:
            pat = rng.choice(SUBJECTS_UTF8 if utf8 else SUBJECTS)
            subject = pat.format(n=rng.randint(1, 9999))
        date_epoch = epoch - rng.randint(5, 7200)  # sent a bit before it arrived
        h = []
        if not sent:
            h.append("Return-Path: <%s>" % frm[1])
            h.append("Received: from mx.%s by mail.example.com with ESMTPS id %08X; %s" % (
                frm[1].split("@")[1], rng.getrandbits(32), rfc2822date(epoch, offset)))
        h.append("From: " + self.addr(frm))
        h.append("To: " + ", ".join(self.addr(p) for p in to))
        if raw_subject is None:
            h.append("Subject: " + encoded_word(subject))
        h.append("Date: " + rfc2822date(date_epoch, offset))
        if message_id is True:
            h.append("Message-ID: <%d.%08x.%d@%s>" % (
                date_epoch, rng.getrandbits(32), self.counter, frm[1].split("@")[1]))
        elif message_id:
            h.append("Message-ID: " + message_id)
        h.append("MIME-Version: 1.0")
        head = ("\r\n".join(h) + "\r\n").encode("utf-8")
        if raw_subject is not None:
            head = head.replace(b"\r\nDate: ", b"\r\nSubject: " + raw_subject + b"\r\nDate: ", 1)

        charset = "utf-8" if utf8 else "us-ascii"
        cte = "8bit" if utf8 else "7bit"
        budget = max(size - len(head) - 200, 200)
        if kind == "text":
            body = self.text(budget, utf8)
            head += ("Content-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: %s\r\n" % (charset, cte)).encode()
            return head + b"\r\n" + body
        boundary = "=_b%d_%08x" % (self.counter, rng.getrandbits(32))
        if kind == "html":
            plain = self.text(budget // 3, utf8)
            html = (b"<html><head><meta charset=\"" + charset.encode() + b"\"></head><body>\r\n<p>"
                    + plain.replace(b"\r\n\r\n", b"</p>\r\n<p>") + b"</p>\r\n</body></html>\r\n")
            head += ('Content-Type: multipart/alternative; boundary="%s"\r\n' % boundary).encode()
            b = boundary.encode()
            return (head + b"\r\nThis is a multi-part message in MIME format.\r\n\r\n--" + b
                    + ("\r\nContent-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n" % (charset, cte)).encode()
                    + plain + b"\r\n--" + b
                    + ("\r\nContent-Type: text/html; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n" % (charset, cte)).encode()
                    + html + b"\r\n--" + b + b"--\r\n")
        # multipart/mixed with base64 attachments
        tlen = min(rng.randint(300, 3000), budget // 2)
        plain = self.text(tlen, utf8)
        rest = budget - len(plain)
        natt = 1 if rest < 8000 or rng.random() < 0.7 else 2
        b = boundary.encode()
        out = [head, ('Content-Type: multipart/mixed; boundary="%s"\r\n' % boundary).encode(),
               b"\r\nThis is a multi-part message in MIME format.\r\n\r\n--", b,
               ("\r\nContent-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n" % (charset, cte)).encode(),
               plain]
        for k in range(natt):
            fname, ctype = rng.choice(ATTACHMENTS)
            raw_len = max(rest // natt * 3 // 4 - 150, 64)
            data = base64.encodebytes(rng.randbytes(raw_len)).replace(b"\n", b"\r\n")
            try:
                fname.encode("ascii")
                disp = 'attachment; filename="%s"' % fname
            except UnicodeEncodeError:
                disp = "attachment; filename*=UTF-8''" + "".join(
                    c if c.isascii() and c.isalnum() or c in ".-_" else "".join("%%%02X" % x for x in c.encode())
                    for c in fname)
            out += [b"\r\n--", b, ("\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: %s\r\n"
                                   "Content-Transfer-Encoding: base64\r\n\r\n" % (ctype, encoded_word(fname), disp)).encode(),
                    data]
        out += [b"\r\n--", b, b"--\r\n"]
        return b"".join(out)

    def flags(self, folder):
        rng = self.rng
        f = []
        if folder == "Drafts" or folder == "Entwürfe":
            f.append("\\Draft")
            if rng.random() < 0.5:
                f.append("\\Seen")
        else:
            if folder.startswith("Sent") or rng.random() < 0.78:
                f.append("\\Seen")
            if rng.random() < 0.15:
                f.append("\\Answered")
            if rng.random() < 0.07:
                f.append("\\Flagged")
            if rng.random() < 0.01:
                f.append("\\Draft")
        if rng.random() < 0.06:
            f.append("$Forwarded")
        if rng.random() < 0.06:
            f.append("Work")
        if rng.random() < 0.04:
            f.append("$label1")
        return f

    def when(self, span):
        return self.rng.randrange(span[0], span[1]), self.rng.choice(TZ_OFFSETS)


# --------------------------------------------------------------------------
# IMAP side

BATCH_MAX = 200
BATCH_BYTES = 8 * 1024 * 1024


class Server:
    def __init__(self, host, port, user, password):
        self.m = imaplib.IMAP4(host, port)
        self.m.login(user, password)
        typ, data = self.m.list('""', '""')
        self.sep = "/"
        if typ == "OK" and data and data[0]:
            mm = re.match(rb'\([^)]*\) (NIL|"((?:[^"\\]|\\.)*)")', data[0])
            if mm and mm.group(2) is not None:
                self.sep = mm.group(2).replace(b"\\\\", b"\\").replace(b'\\"', b'"').decode()
            elif mm:
                self.sep = None
        self.prefix = ""
        typ, data = self.m.capability()  # post-login capabilities
        caps = set((data[0] or b"").decode("ascii", "replace").upper().split()) if typ == "OK" else set()
        caps |= set(self.m.capabilities)
        self.literal_plus = "LITERAL+" in caps
        self.multiappend = "MULTIAPPEND" in caps
        self.seq = 0
        self.pending = collections.deque()
        self.batch, self.batch_path, self.batch_bytes = [], None, 0
        try:  # pre-login capabilities may not mention NAMESPACE; just try
            typ, data = self.m.namespace()
        except imaplib.IMAP4.error:
            typ, data = "NO", [None]
        mm = re.match(rb'\(\("((?:[^"\\]|\\.)*)"', data[0] or b"") if typ == "OK" else None
        if mm:
            self.prefix = mm.group(1).decode()

    def wire_name(self, path):
        """'Archive/2020' (decoded, '/' = hierarchy) -> server mailbox name."""
        if path.upper() == "INBOX":
            return "INBOX"
        parts = path.split("/")
        name = self.prefix + (self.sep or "/").join(parts)
        return quote(mutf7(name))

    def create(self, path):
        self.collect()
        if path.upper() == "INBOX":
            return
        typ, data = self.m.create(self.wire_name(path))
        if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(d or b"" for d in data):
            raise SystemExit("CREATE %s failed: %r" % (path, data))

    def subscribe(self, path):
        self.collect()
        self.m.subscribe(self.wire_name(path))

    def append(self, path, flags, date, msg):
        if not self.literal_plus:
            # imaplib would normalise line endings with a regex over every
            # message; ours are CRLF already, so hand it the bytes as they are.
            args = [self.wire_name(path)]
            if flags:
                args.append("(" + " ".join(flags) + ")")
            args.append(date)
            self.m.literal = msg
            typ, data = self.m._simple_command("APPEND", *args)
            if typ != "OK":
                raise SystemExit("APPEND to %s failed: %r" % (path, data))
            return
        # LITERAL+ (+ MULTIAPPEND): batch messages per folder into one APPEND
        # command and pipeline a few commands on imaplib's connection. The
        # server stores them in order, so the result is the same as one by one.
        if self.batch and (self.batch_path != path or len(self.batch) >= BATCH_MAX
                           or self.batch_bytes >= BATCH_BYTES):
            self.flush()
        self.batch_path = path
        self.batch.append((flags, date, msg))
        self.batch_bytes += len(msg)
        if not self.multiappend:
            self.flush()

    def flush(self):
        if not self.batch:
            return
        self.seq += 1
        tag = b"G%d" % self.seq
        parts = [tag, b" APPEND ", self.wire_name(self.batch_path).encode("ascii")]
        for flags, date, msg in self.batch:
            if flags:
                parts += [b" (", " ".join(flags).encode("ascii"), b")"]
            parts += [b" ", date.encode("ascii"), b" {%d+}\r\n" % len(msg), msg]
        parts.append(b"\r\n")
        self.m.send(b"".join(parts))
        self.pending.append((tag, self.batch_path))
        self.batch = []
        self.batch_bytes = 0
        window = 4 if self.multiappend else 64
        if len(self.pending) >= window:
            self.collect(window // 2)

    def collect(self, keep=0):
        """Send any batch, then read tagged answers until at most `keep`
        APPENDs are in flight."""
        if keep == 0:
            self.flush()
        while len(self.pending) > keep:
            line = self.m.readline()
            if not line:
                raise SystemExit("connection closed during APPEND")
            if line.startswith(b"*"):
                if line[:6].upper() == b"* BYE ":
                    raise SystemExit("server said %r" % line)
                continue
            tag, path = self.pending[0]
            if not line.startswith(tag + b" "):
                raise SystemExit("unexpected response %r (waiting for %r)" % (line, tag))
            self.pending.popleft()
            if not line[len(tag) + 1:].startswith(b"OK"):
                raise SystemExit("APPEND to %s failed: %r" % (path, line.strip()))

    def logout(self):
        self.collect()
        try:
            self.m.logout()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--big-message-mb", type=float, default=0)
    ap.add_argument("--profile", choices=["realistic", "flat"], default="realistic")
    ap.add_argument("--folder", default="INBOX")
    ap.add_argument("--no-8bit-headers", action="store_true")
    a = ap.parse_args()

    srv = Server(a.host, a.port, a.user, a.password)
    fac = Factory(a.seed)
    stats = {"folders": 0, "messages": 0, "bytes": 0}

    def put(path, flags, date, msg):
        srv.append(path, flags, date, msg)
        stats["messages"] += 1
        stats["bytes"] += len(msg)

    if a.profile == "flat":
        srv.create(a.folder)
        srv.subscribe(a.folder)
        stats["folders"] = 1
        for _ in range(a.messages):
            epoch, off = fac.when((T2009, T2025))
            msg = fac.message(a.folder, epoch, off)
            put(a.folder, fac.flags(a.folder), internaldate(epoch, off), msg)
    else:
        plan = [f for f in REALISTIC if not (f[0] == "a.b" and srv.sep == ".")]
        counts = allocate(a.messages, [f[1] for f in plan])
        for (path, _w, span, subscribed), count in zip(plan, counts):
            srv.create(path)
            if subscribed:
                srv.subscribe(path)
            stats["folders"] += 1
            specials = path == "INBOX"
            # INBOX: specials land at fixed-by-seed positions among the others
            special_at = {}
            if specials:
                kinds = ["dup", "shared", "latin1", "nomsgid"]
                kinds = kinds[: max(0, min(len(kinds), count // 2))]
                need = {"dup": 2, "shared": 2, "latin1": 1, "nomsgid": 1}
                total_special = sum(need[k] for k in kinds)
                normal = count - total_special
                slots = sorted(fac.rng.sample(range(normal + 1), len(kinds))) if kinds else []
                for k, s in zip(kinds, slots):
                    special_at.setdefault(s, []).append(k)
            else:
                normal = count
            for i in range(normal + 1):
                for k in special_at.get(i, []):
                    emit_special(k, fac, put, span, a.seed, a.no_8bit_headers)
                if i < normal:
                    epoch, off = fac.when(span)
                    msg = fac.message(path, epoch, off,
                                      message_id=fac.rng.random() >= 0.03)
                    put(path, fac.flags(path), internaldate(epoch, off), msg)
    if a.big_message_mb > 0:
        epoch, off = fac.when((T2015, T2025))
        msg = fac.message("INBOX", epoch, off, size=int(a.big_message_mb * 1024 * 1024),
                          kind="attach", subject="Big attachment (%g MB)" % a.big_message_mb)
        put("INBOX", ["\\Seen"], internaldate(epoch, off), msg)
    srv.logout()
    print(json.dumps(stats))


def emit_special(kind, fac, put, span, seed, no_8bit_headers=False):
    if kind == "dup":
        # the same delivery twice: byte-identical, same flags and date
        epoch, off = fac.when(span)
        msg = fac.message("INBOX", epoch, off, kind="text", subject="Duplicate delivery")
        flags = fac.flags("INBOX")
        put("INBOX", flags, internaldate(epoch, off), msg)
        put("INBOX", flags, internaldate(epoch, off), msg)
    elif kind == "shared":
        mid = "<shared-%d@gen.example.com>" % seed
        for subj in ("Same Message-ID, first message", "Same Message-ID, second message"):
            epoch, off = fac.when(span)
            msg = fac.message("INBOX", epoch, off, kind="text", subject=subj, message_id=mid)
            put("INBOX", fac.flags("INBOX"), internaldate(epoch, off), msg)
    elif kind == "latin1":
        epoch, off = fac.when(span)
        raw = None if no_8bit_headers else b"Re: Caf\xe9 cr\xe8me (8-bit Latin-1)"
        msg = fac.message("INBOX", epoch, off, kind="text", raw_subject=raw)
        put("INBOX", fac.flags("INBOX"), internaldate(epoch, off), msg)
    elif kind == "nomsgid":
        epoch, off = fac.when(span)
        msg = fac.message("INBOX", epoch, off, kind="text", subject="No Message-ID here", message_id=False)
        put("INBOX", fac.flags("INBOX"), internaldate(epoch, off), msg)


if __name__ == "__main__":
    try:
        main()
    except (imaplib.IMAP4.error, OSError) as e:
        print("genmail.py: %s" % e, file=sys.stderr)
        sys.exit(1)
