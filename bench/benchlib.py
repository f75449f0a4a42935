#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (btsx vs. mbsync benchmark).

    benchlib.py verify --src SRC.json --dst DST.json --tool NAME
                       [--skip FOLDER]... [--out FILE]
        Compare two scripts/digest.py outputs after the btsx folder mapping
        (source separator -> destination separator, a destination separator
        inside a name component -> '_', special-use fallback). Prints a
        one-line summary, writes the full result as JSON to --out, exits 1
        on any mismatch (missing/extra message, flags, internaldate).

    benchlib.py timefile FILE
        Parse `/usr/bin/time -v -o FILE` output; prints JSON.

    benchlib.py servercpu DIR
        Cumulative CPU seconds (user+sys) of a scripts/testserver.sh Dovecot
        instance: master + reaped children + live children (imap-login does
        the TLS work, imap the mailbox work).

    benchlib.py record --tool T --scenario S --run N --wall SECONDS
                       --timefile F --rc RC [--verify F] [--server-cpu SECONDS]
                       [--messages N --bytes N] [--jobs N] [--btsx-json F]
        Print one JSON line describing a run (bench.sh appends it to runs.jsonl).

    benchlib.py report --runs runs.jsonl --meta meta.json --out results.json
        Print the median table and write results JSON.
"""

import argparse
import collections
import json
import os
import re
import statistics
import sys

# --------------------------------------------------------------------------
# verification


def map_name(name, src_sep, dst_sep):
    """btsx's default mapping: split on the source separator, replace the
    destination separator inside each component by '_', join with the
    destination separator."""
    if src_sep is None:
        parts = [name]
    else:
        parts = name.split(src_sep)
    if dst_sep is None:
        return (src_sep or "/").join(parts)
    return dst_sep.join(p.replace(dst_sep, "_") for p in parts)


def key(m):
    return (m["sha256"], m["size"])


def compare_pair(res, a, b):
    """Count flag/date differences between a source and a destination message."""
    fa, fb = set(a["flags"]), set(b["flags"])
    sys_a = {f for f in fa if f.startswith("\\")}
    sys_b = {f for f in fb if f.startswith("\\")}
    if fa != fb:
        res["flag_mismatch"] += 1
    if sys_a != sys_b:
        res["system_flag_mismatch"] += 1
    if (fa - sys_a) - (fb - sys_b):
        res["keywords_lost"] += 1
    if (fb - sys_b) - (fa - sys_a):
        res["keywords_added"] += 1
    if a["internaldate"] != b["internaldate"]:
        res["date_mismatch"] += 1


def compare_lists(src_msgs, dst_msgs, size_deltas=None):
    """Multiset comparison of two message lists. Messages are paired by
    (sha256, size); whatever is left is paired by Message-ID and counted as
    bytes_changed (mbsync adds an X-TUID header, for instance); messages
    without a Message-ID are then paired by INTERNALDATE. Returns a
    Counter: src, dst, exact, missing, extra, bytes_changed, flag_mismatch,
    system_flag_mismatch, keywords_lost, keywords_added, date_mismatch."""
    res = collections.Counter()
    res["src"] = len(src_msgs)
    res["dst"] = len(dst_msgs)
    fd = lambda x: (x["flags"], x["internaldate"])
    by_s = collections.defaultdict(list)
    by_d = collections.defaultdict(list)
    for m in src_msgs:
        by_s[key(m)].append(m)
    for m in dst_msgs:
        by_d[key(m)].append(m)
    left_s, left_d = [], []
    for k in set(by_s) | set(by_d):
        a = sorted(by_s.get(k, []), key=fd)
        b = sorted(by_d.get(k, []), key=fd)
        # exact (flags, date) partners first
        rest_a = []
        pool = collections.defaultdict(list)
        for x in b:
            pool[(tuple(x["flags"]), x["internaldate"])].append(x)
        for x in a:
            t = (tuple(x["flags"]), x["internaldate"])
            if pool.get(t):
                pool[t].pop()
                res["exact"] += 1
            else:
                rest_a.append(x)
        rest_b = sorted((x for v in pool.values() for x in v), key=fd)
        for x, y in zip(rest_a, rest_b):
            compare_pair(res, x, y)
        n = min(len(rest_a), len(rest_b))
        left_s += rest_a[n:]
        left_d += rest_b[n:]
    # leftovers: same Message-ID, different bytes
    mid_s = collections.defaultdict(list)
    mid_d = collections.defaultdict(list)
    for x in left_s:
        mid_s[x.get("message_id")].append(x)
    for x in left_d:
        mid_d[x.get("message_id")].append(x)
    paired = 0
    rest_s, rest_d = list(mid_s.pop(None, [])), list(mid_d.pop(None, []))

    def pair(a, b):
        nonlocal paired
        a = sorted(a, key=lambda x: (x["size"], x["internaldate"]))
        b = sorted(b, key=lambda x: (x["size"], x["internaldate"]))
        for x, y in zip(a, b):
            paired += 1
            res["bytes_changed"] += 1
            if size_deltas is not None:
                size_deltas[y["size"] - x["size"]] += 1
            compare_pair(res, x, y)
        return a[len(b):], b[len(a):]

    for mid, a in mid_s.items():
        ra, rb = pair(a, mid_d.pop(mid, []))
        rest_s += ra
        rest_d += rb
    for b in mid_d.values():
        rest_d += b
    # no Message-ID either: pair by INTERNALDATE
    date_s = collections.defaultdict(list)
    date_d = collections.defaultdict(list)
    for x in rest_s:
        date_s[x["internaldate"]].append(x)
    for x in rest_d:
        date_d[x["internaldate"]].append(x)
    for t, a in date_s.items():
        if t in date_d:
            pair(a, date_d[t])
    res["missing"] += len(left_s) - paired
    res["extra"] += len(left_d) - paired
    return res


def verify(args):
    src = json.load(open(args.src, encoding="utf-8"))
    dst = json.load(open(args.dst, encoding="utf-8"))
    ssep, dsep = src.get("separator"), dst.get("separator")
    sf, df = src["folders"], dst["folders"]
    skip = set(args.skip or [])
    notes = []

    in_scope = {n: f for n, f in sf.items() if n not in skip}
    skipped = {n: len(f["messages"]) for n, f in sf.items() if n in skip}
    if skipped:
        notes.append("not copied by design (excluded from %s's Patterns): %s" % (
            args.tool, ", ".join("%s (%d msgs)" % kv for kv in sorted(skipped.items()))))

    # source folder -> destination folder
    mapping = {}
    unmapped = []
    dst_by_su = collections.defaultdict(list)
    for n, f in df.items():
        for su in f.get("special_use", []):
            dst_by_su[su.lower()].append(n)
    for n, f in in_scope.items():
        m = "INBOX" if n.upper() == "INBOX" else map_name(n, ssep, dsep)
        if m in df:
            mapping[n] = m
            continue
        moved = None
        for su in f.get("special_use", []):
            cands = [c for c in dst_by_su.get(su.lower(), []) if c not in mapping.values()]
            if len(cands) == 1:
                moved = cands[0]
                break
        if moved is not None:
            mapping[n] = moved
            notes.append("special-use: %r -> %r" % (n, moved))
        else:
            unmapped.append(n)
    extra_folders = sorted(set(df) - set(mapping.values()))

    totals = collections.Counter()
    deltas = collections.Counter()
    per_folder = {}
    if not unmapped:
        mode = "per-folder"
        for n, m in sorted(mapping.items()):
            c = compare_lists(in_scope[n]["messages"], df[m]["messages"], deltas)
            per_folder[n] = {"destination": m, **c}
            totals.update(c)
        for n in extra_folders:
            msgs = df[n]["messages"]
            if msgs:
                totals["extra"] += len(msgs)
                totals["dst"] += len(msgs)
            per_folder["(extra) " + n] = {"destination": n, "src": 0, "dst": len(msgs), "extra": len(msgs)}
        if extra_folders:
            notes.append("destination folders with no source folder: %s" % ", ".join(
                "%s (%d msgs)" % (n, len(df[n]["messages"])) for n in extra_folders))
    else:
        mode = "union"
        notes.append("source folders %s have no counterpart under the name mapping; "
                     "compared the union of all messages instead" % ", ".join(repr(u) for u in unmapped))
        all_s = [m for f in in_scope.values() for m in f["messages"]]
        all_d = [m for f in df.values() for m in f["messages"]]
        totals.update(compare_lists(all_s, all_d, deltas))

    # subscriptions: informational only
    sub_diff = []
    for n, m in mapping.items():
        a, b = in_scope[n].get("subscribed"), df[m].get("subscribed")
        if a != b:
            sub_diff.append("%s: %s -> %s" % (n, a, b))
    if sub_diff:
        notes.append("subscription differs (not checked): " + "; ".join(sorted(sub_diff)))

    if deltas:
        notes.append("bytes changed (paired by Message-ID), size deltas: " + ", ".join(
            "%+d B x%d" % kv for kv in sorted(deltas.items())))
    ok = all(totals[k] == 0 for k in ("missing", "extra", "bytes_changed", "flag_mismatch", "date_mismatch")) \
        and totals["src"] == totals["dst"]
    out = {
        "tool": args.tool,
        "ok": ok,
        "mode": mode,
        "messages_src": totals["src"],
        "messages_dst": totals["dst"],
        "bytes_src": sum(m["size"] for f in in_scope.values() for m in f["messages"]),
        "exact": totals["exact"],
        "missing": totals["missing"],
        "extra": totals["extra"],
        "bytes_changed": totals["bytes_changed"],
        "flag_mismatch": totals["flag_mismatch"],
        "system_flag_mismatch": totals["system_flag_mismatch"],
        "keywords_lost": totals["keywords_lost"],
        "keywords_added": totals["keywords_added"],
        "date_mismatch": totals["date_mismatch"],
        "skipped_folders": skipped,
        "mapping": mapping,
        "notes": notes,
        "per_folder": per_folder,
    }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(out, fh, ensure_ascii=False, indent=1)
    print("%s verify %s (%s): src %d, dst %d, identical %d, missing %d, extra %d, bytes changed %d, "
          "flags differ %d (keywords lost %d), dates differ %d%s" % (
              args.tool, "OK" if ok else "MISMATCH", mode, out["messages_src"], out["messages_dst"],
              out["exact"], out["missing"], out["extra"], out["bytes_changed"], out["flag_mismatch"],
              out["keywords_lost"],
              out["date_mismatch"], "".join("\n  note: " + n for n in notes)))
    return 0 if ok else 1


# --------------------------------------------------------------------------
# /usr/bin/time -v, server CPU


def parse_timefile(path):
    d = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("User time (seconds):"):
                d["user_s"] = float(line.rsplit(":", 1)[1])
            elif line.startswith("System time (seconds):"):
                d["sys_s"] = float(line.rsplit(":", 1)[1])
            elif line.startswith("Maximum resident set size (kbytes):"):
                d["max_rss_kb"] = int(line.rsplit(":", 1)[1])
            elif line.startswith("Elapsed (wall clock) time"):
                v = line.split("): ", 1)[1].split(":")
                s = 0.0
                for p in v:
                    s = s * 60 + float(p)
                d["time_wall_s"] = s
            elif line.startswith("Exit status:"):
                d["exit_status"] = int(line.rsplit(":", 1)[1])
            elif line.startswith("Voluntary context switches:"):
                d["voluntary_cs"] = int(line.rsplit(":", 1)[1])
            elif line.startswith("Involuntary context switches:"):
                d["involuntary_cs"] = int(line.rsplit(":", 1)[1])
    return d


def proc_cpu(pid, children=True):
    """utime+stime (+ cutime+cstime) of pid, in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11
    ut, st, cut, cst = (int(x) for x in fields[11:15])
    return ut + st + (cut + cst if children else 0)


def servercpu(directory):
    try:
        master = int(open(os.path.join(directory, "run", "master.pid")).read().strip())
    except (OSError, ValueError):
        return 0.0
    ticks = proc_cpu(master)
    # live descendants (their own cumulative time; reaped ones are in cutime)
    kids = collections.defaultdict(list)
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            kids[int(f[1])].append(int(p))
        except OSError:
            continue
    stack = list(kids.get(master, []))
    while stack:
        p = stack.pop()
        ticks += proc_cpu(p)
        stack += kids.get(p, [])
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# records and report


def loadavg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def record(args):
    t = parse_timefile(args.timefile) if os.path.exists(args.timefile) else {}
    r = {
        "tool": args.tool,
        "scenario": args.scenario,
        "run": args.run,
        "jobs": args.jobs,
        "rc": args.rc,
        "wall_s": round(args.wall, 4),
        "user_s": t.get("user_s"),
        "sys_s": t.get("sys_s"),
        "cpu_s": round(t.get("user_s", 0) + t.get("sys_s", 0), 3),
        "max_rss_kb": t.get("max_rss_kb"),
        "time_wall_s": t.get("time_wall_s"),
        "voluntary_cs": t.get("voluntary_cs"),
        "involuntary_cs": t.get("involuntary_cs"),
        "server_cpu_s": round(args.server_cpu, 3) if args.server_cpu is not None else None,
        "messages": args.messages,
        "bytes": args.bytes,
        "loadavg_1min_after": loadavg(),
    }
    if args.verify and os.path.exists(args.verify):
        v = json.load(open(args.verify, encoding="utf-8"))
        v.pop("per_folder", None)
        v.pop("mapping", None)
        r["verify"] = v
    if args.btsx_json and os.path.exists(args.btsx_json):
        summary = None
        with open(args.btsx_json, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("type") == "summary":
                    summary = ev
        if summary:
            r["btsx_summary"] = {k: summary.get(k) for k in (
                "status", "exit_code", "messages_total", "messages_copied", "messages_skipped",
                "messages_failed", "bytes_copied", "duration_ms", "error")}
    print(json.dumps(r, ensure_ascii=False))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def report(args):
    runs = [json.loads(l) for l in open(args.runs, encoding="utf-8") if l.strip()]
    meta = json.load(open(args.meta, encoding="utf-8"))
    groups = collections.OrderedDict()
    for r in runs:
        groups.setdefault((r["tool"], r["scenario"]), []).append(r)
    rows = []
    for (tool, scen), rs in groups.items():
        wall = med(r["wall_s"] for r in rs)
        msgs = rs[0]["messages"]
        byts = rs[0]["bytes"]
        row = {
            "tool": tool,
            "scenario": scen,
            "runs": len(rs),
            "jobs": rs[0].get("jobs"),
            "messages": msgs,
            "bytes": byts,
            "median_wall_s": round(wall, 3),
            "min_wall_s": round(min(r["wall_s"] for r in rs), 3),
            "messages_per_s": round(msgs / wall, 1) if wall else None,
            "mb_per_s": round(byts / 1e6 / wall, 2) if wall else None,
            "median_cpu_s": round(med(r["cpu_s"] for r in rs), 2),
            "median_server_cpu_s": (round(med(r.get("server_cpu_s") for r in rs), 2)
                                    if any(r.get("server_cpu_s") is not None for r in rs) else None),
            "median_max_rss_mib": round(med(r["max_rss_kb"] for r in rs) / 1024, 1)
            if any(r.get("max_rss_kb") for r in rs) else None,
            "max_max_rss_mib": round(max(r["max_rss_kb"] or 0 for r in rs) / 1024, 1),
            "wall_s_all": [r["wall_s"] for r in rs],
            "median_loadavg_1min": med(r.get("loadavg_1min_after") for r in rs),
            "verified_ok": sum(1 for r in rs if r.get("verify", {}).get("ok")),
            "failed_runs": sum(1 for r in rs if r["rc"] != 0),
        }
        rows.append(row)
    ratios = {}
    for scen in ("full", "incremental"):
        a = next((r for r in rows if r["tool"] == "btsx" and r["scenario"] == scen), None)
        b = next((r for r in rows if r["tool"] == "mbsync" and r["scenario"] == scen), None)
        if a and b and a["messages_per_s"] and b["messages_per_s"]:
            ratios[scen] = round(a["messages_per_s"] / b["messages_per_s"], 3)
    out = {"meta": meta, "summary": rows, "ratio_btsx_over_mbsync_messages_per_s": ratios, "runs": runs}
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=1)
        fh.write("\n")

    hdr = ["tool", "scenario", "runs", "median wall s", "min wall s", "msgs/s", "MB/s", "CPU s",
           "srv CPU s", "peak RSS MiB", "verified"]
    table = []
    for r in rows:
        table.append([
            r["tool"], r["scenario"], str(r["runs"]), "%.2f" % r["median_wall_s"], "%.2f" % r["min_wall_s"],
            "%.0f" % r["messages_per_s"], "%.1f" % r["mb_per_s"], "%.2f" % r["median_cpu_s"],
            "-" if r["median_server_cpu_s"] is None else "%.2f" % r["median_server_cpu_s"],
            "-" if r["median_max_rss_mib"] is None else "%.1f" % r["median_max_rss_mib"],
            "%d/%d" % (r["verified_ok"], r["runs"]),
        ])
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(hdr)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                            for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    print()
    print("%d messages, %.1f MiB in the source (%s); medians of the runs" % (
        meta["messages"], meta["bytes"] / 1048576, meta.get("source_note", "")))
    print("btsx %s built from %s (sha256 %s…), %s; %s" % (
        meta.get("btsx_version") or "?", meta.get("btsx_built_from") or "?",
        (meta.get("btsx_sha256") or "?")[:12], "jobs " + str(meta.get("btsx_jobs")), meta.get("mbsync_version") or ""))
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print(line(t))
    for scen, ratio in ratios.items():
        print("btsx/mbsync messages/s, %s: %.2f" % (scen, ratio))
    print("msgs/s and MB/s (10^6 B) = messages/bytes each tool was asked to copy / median wall time;"
          " CPU s = client user+sys; srv CPU s = both Dovecots; peak RSS = median of /usr/bin/time -v max RSS")
    loads = [r.get("loadavg_1min_after") for r in runs if r.get("loadavg_1min_after") is not None]
    if loads:
        print("1-min load average after the runs: median %.1f, max %.1f on %s CPUs (other load skews wall times)" % (
            med(loads), max(loads), meta.get("cpus")))
    print("results: %s" % args.out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--src", required=True)
    v.add_argument("--dst", required=True)
    v.add_argument("--tool", required=True)
    v.add_argument("--skip", action="append")
    v.add_argument("--out")
    t = sub.add_parser("timefile")
    t.add_argument("file")
    s = sub.add_parser("servercpu")
    s.add_argument("dirs", nargs="+")
    r = sub.add_parser("record")
    r.add_argument("--tool", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--run", type=int, required=True)
    r.add_argument("--wall", type=float, required=True)
    r.add_argument("--timefile", required=True)
    r.add_argument("--rc", type=int, required=True)
    r.add_argument("--verify")
    r.add_argument("--server-cpu", type=float)
    r.add_argument("--messages", type=int)
    r.add_argument("--bytes", type=int)
    r.add_argument("--jobs", type=int)
    r.add_argument("--btsx-json")
    p = sub.add_parser("report")
    p.add_argument("--runs", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "verify":
        return verify(a)
    if a.cmd == "timefile":
        print(json.dumps(parse_timefile(a.file)))
        return 0
    if a.cmd == "servercpu":
        print("%.3f" % sum(servercpu(d) for d in a.dirs))
        return 0
    if a.cmd == "record":
        record(a)
        return 0
    if a.cmd == "report":
        return report(a)
    return 2


if __name__ == "__main__":
    sys.exit(main())
