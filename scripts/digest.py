#!/usr/bin/env python3
"""Digest a whole IMAP account, independently of btsx.

    digest.py --port P --user U --password PW [--host 127.0.0.1]
              [--tls --ca-file F] [--binary]

Prints JSON:
  {"separator": "/",
   "folders": {"<decoded UTF-8 name>": {
       "special_use": ["\\\\Sent"], "subscribed": true,
       "messages": [{"sha256": "<hex of the exact RFC822 bytes>", "size": n,
                     "flags": [sorted, no \\\\Recent], "internaldate": epoch,
                     "message_id": "<...>" or null}, ...]}}}
Messages are sorted by (sha256, flags, internaldate) so equal mailboxes
compare equal. \\Noselect / \\NonExistent folders are skipped. Read-only:
EXAMINE + BODY.PEEK[] (never sets \\Seen). --tls is implicit TLS (imaps).
--binary reads BINARY.PEEK[] (RFC 3516) instead, where the server offers
BINARY: the stored bytes even where BODY[] cannot carry them (Dovecot serves a
NUL byte as 0x80 in BODY[]).
"""

import argparse
import base64
import calendar
import hashlib
import json
import re
import socket
import ssl
import sys

SPECIAL_USE = {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash", "\\important"}
MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
FETCH_BATCH_BYTES = 16 * 1024 * 1024
FETCH_BATCH_MAX = 500


class ImapError(Exception):
    pass


class Client:
    def __init__(self, host, port, tls=False, ca_file=None):
        sock = socket.create_connection((host, port), timeout=120)
        if tls:
            ctx = ssl.create_default_context(cafile=ca_file)
            sock = ctx.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.f = sock.makefile("rb")
        self.tag = 0
        greeting = self.f.readline()
        if not greeting.startswith(b"* OK") and not greeting.startswith(b"* PREAUTH"):
            raise ImapError("bad greeting: %r" % greeting)

    def read_response(self):
        """One complete response line, literals inlined (as '{n}\\r\\n' + bytes)."""
        parts = []
        while True:
            line = self.f.readline()
            if not line:
                raise ImapError("connection closed by server")
            parts.append(line)
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if not m:
                return b"".join(parts)
            n = int(m.group(1))
            data = self.f.read(n)
            if len(data) != n:
                raise ImapError("short literal")
            parts.append(data)

    def command(self, *args):
        """Send a command; args are str/bytes (sent verbatim) or Lit(bytes).
        Returns the list of untagged responses (parsed). Raises on NO/BAD."""
        self.tag += 1
        tag = b"d%d" % self.tag
        chunks = [tag]
        for a in args:
            if isinstance(a, Lit):
                chunks.append(b" {%d}\r\n" % len(a.data))
                self.sock.sendall(b"".join(chunks))
                chunks = []
                while True:
                    r = self.read_response()
                    if r.startswith(b"+"):
                        break
                    if r.startswith(tag + b" "):
                        raise ImapError(r.decode("utf-8", "replace").strip())
                chunks.append(a.data)
            else:
                chunks.append(b" " + (a.encode() if isinstance(a, str) else a))
        chunks.append(b"\r\n")
        self.sock.sendall(b"".join(chunks))
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag + b" "):
                status = r[len(tag) + 1:].split(b" ", 1)[0].upper()
                if status != b"OK":
                    raise ImapError("%s: %s" % (args[0], r.decode("utf-8", "replace").strip()))
                return untagged
            if r.startswith(b"*"):
                untagged.append(parse(r))


class Lit:
    def __init__(self, data):
        self.data = data


def astring(raw):
    """Wire form of a mailbox name (bytes) as a command argument."""
    if all(0x20 <= c < 0x7F for c in raw):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return Lit(raw)


def parse(data):
    """Parse one response into nested lists. Atoms -> str, strings/literals
    -> bytes, NIL -> None."""
    items, _ = _parse(data, 0, top=True)
    return items


def _parse(data, pos, top=False):
    out = []
    n = len(data)
    while pos < n:
        c = data[pos]
        if c in b" \r\n":
            pos += 1
        elif c == 0x28:  # (
            sub, pos = _parse(data, pos + 1)
            out.append(sub)
        elif c == 0x29:  # )
            if top:
                pos += 1
                continue
            return out, pos + 1
        elif c == 0x22:  # "
            pos += 1
            buf = bytearray()
            while data[pos] != 0x22:
                if data[pos] == 0x5C:
                    pos += 1
                buf.append(data[pos])
                pos += 1
            out.append(bytes(buf))
            pos += 1
        elif c == 0x7E and data[pos + 1:pos + 2] == b"{":  # ~{n}: literal8
            pos += 1
        elif c == 0x7B:  # {n}\r\n
            end = data.index(b"}", pos)
            length = int(data[pos + 1:end].rstrip(b"+"))
            start = data.index(b"\n", end) + 1
            out.append(data[start:start + length])
            pos = start + length
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos]
                if ch == 0x5B:
                    depth += 1
                elif ch == 0x5D:
                    depth -= 1
                elif depth == 0 and ch in b" ()\r\n":
                    break
                pos += 1
            atom = data[start:pos].decode("latin-1")
            out.append(None if atom.upper() == "NIL" else atom)
    return out, pos


def as_bytes(v):
    if v is None:
        return None
    return v.encode("latin-1") if isinstance(v, str) else v


def mutf7_decode(raw):
    try:
        s = raw.decode("ascii")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")  # server sent raw UTF-8
    out, i = [], 0
    while i < len(s):
        if s[i] == "&":
            j = s.find("-", i)
            if j < 0:
                out.append(s[i:])
                break
            if j == i + 1:
                out.append("&")
            else:
                b64 = s[i + 1:j].replace(",", "/")
                b64 += "=" * (-len(b64) % 4)
                out.append(base64.b64decode(b64).decode("utf-16-be", "replace"))
            i = j + 1
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_internaldate(s):
    m = re.match(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", s)
    if not m:
        raise ImapError("bad INTERNALDATE %r" % s)
    d, mon, y, hh, mm, ss, sign, oh, om = m.groups()
    t = calendar.timegm((int(y), MONTHS[mon.lower()], int(d), int(hh), int(mm), int(ss), 0, 0, 0))
    off = (int(oh) * 60 + int(om)) * 60
    return t - off if sign == "+" else t + off


def message_id(raw):
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    head = re.sub(rb"\r?\n[ \t]+", b" ", head)
    for line in re.split(rb"\r?\n", head):
        if line[:11].lower() == b"message-id:":
            v = line[11:].strip()
            return v.decode("utf-8", "replace") if v else None
    return None


def fetch_attrs(resp):
    """['*', '5', 'FETCH', [k, v, k, v...]] -> dict with upper-case keys."""
    if len(resp) < 4 or not isinstance(resp[2], str) or resp[2].upper() != "FETCH":
        return None
    lst = resp[3]
    return {str(lst[i]).upper(): lst[i + 1] for i in range(0, len(lst) - 1, 2)}


def digest_folder(c, raw_name, binary=False):
    c.command("EXAMINE", astring(raw_name))
    sizes = []
    for r in c.command("UID FETCH 1:* (UID RFC822.SIZE)"):
        a = fetch_attrs(r)
        if a and "UID" in a:
            sizes.append((int(a["UID"]), int(a.get("RFC822.SIZE", 0))))
    sizes.sort()
    msgs = []
    i = 0
    while i < len(sizes):
        batch, total = [], 0
        while i < len(sizes) and (not batch or (total + sizes[i][1] <= FETCH_BATCH_BYTES and len(batch) < FETCH_BATCH_MAX)):
            batch.append(sizes[i][0])
            total += sizes[i][1]
            i += 1
        uidset = ",".join(str(u) for u in batch)
        item = "BINARY" if binary else "BODY"
        for r in c.command("UID FETCH %s (UID FLAGS INTERNALDATE %s.PEEK[])" % (uidset, item)):
            a = fetch_attrs(r)
            if not a or item + "[]" not in a:
                continue
            body = as_bytes(a[item + "[]"]) or b""
            flags = sorted(str(f) for f in (a.get("FLAGS") or []) if str(f).lower() != "\\recent")
            msgs.append({
                "sha256": hashlib.sha256(body).hexdigest(),
                "size": len(body),
                "flags": flags,
                "internaldate": parse_internaldate(as_bytes(a["INTERNALDATE"]).decode("latin-1")),
                "message_id": message_id(body),
            })
    msgs.sort(key=lambda m: (m["sha256"], m["flags"], m["internaldate"]))
    return msgs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--tls", action="store_true", help="implicit TLS (imaps)")
    ap.add_argument("--ca-file")
    ap.add_argument("--binary", action="store_true", help="BINARY.PEEK[] instead of BODY.PEEK[]")
    a = ap.parse_args()

    c = Client(a.host, a.port, a.tls, a.ca_file)
    c.command("LOGIN", astring(a.user.encode()), astring(a.password.encode()))
    caps = set()
    for r in c.command("CAPABILITY"):
        if len(r) > 1 and str(r[1]).upper() == "CAPABILITY":
            caps = {str(x).upper() for x in r[2:]}
    if a.binary and "BINARY" not in caps:
        raise ImapError("--binary: the server does not offer BINARY")

    sep = None
    for r in c.command('LIST "" ""'):
        if len(r) >= 4 and str(r[1]).upper() == "LIST":
            sep = as_bytes(r[3]).decode() if r[3] is not None else None

    if "LIST-EXTENDED" in caps and "SPECIAL-USE" in caps:
        listing = c.command('LIST "" "*" RETURN (SPECIAL-USE)')
    else:
        listing = c.command('LIST "" "*"')
    subscribed = set()
    for r in c.command('LSUB "" "*"'):
        if len(r) >= 5 and str(r[1]).upper() == "LSUB":
            subscribed.add(as_bytes(r[4]))

    folders = {}
    for r in listing:
        if len(r) < 5 or str(r[1]).upper() != "LIST":
            continue
        attrs = [str(x) for x in r[2]]
        lower = {x.lower() for x in attrs}
        if "\\noselect" in lower or "\\nonexistent" in lower:
            continue
        raw = as_bytes(r[4])
        name = mutf7_decode(raw)
        folders[name] = {
            "special_use": sorted(x for x in attrs if x.lower() in SPECIAL_USE),
            "subscribed": raw in subscribed,
            "messages": digest_folder(c, raw, a.binary),
        }
    try:
        c.command("LOGOUT")
    except (ImapError, OSError):
        pass
    out = {"separator": sep, "folders": dict(sorted(folders.items()))}
    sys.stdout.buffer.write(json.dumps(out, ensure_ascii=False).encode("utf-8") + b"\n")


if __name__ == "__main__":
    try:
        main()
    except (ImapError, OSError, ssl.SSLError) as e:
        print("digest.py: %s" % e, file=sys.stderr)
        sys.exit(1)
