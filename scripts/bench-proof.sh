#!/usr/bin/env bash
# The cost of the proof before deleting (issue 15): the same generated mailbox
# copied between two private Dovecots on loopback, K times without and K times
# with --delete-source (which reads every copy back and compares it before
# deleting the source message). See docs/benchmark.md.
#
#   scripts/bench-proof.sh [--messages N] [--runs K] [--seed S] [--no-build] [--workdir DIR]
#
# Every run copies into a fresh destination user; every --delete-source run
# from its own source user, generated with the same seed. Measured per run:
# wall time, client CPU and peak RSS (/usr/bin/time -v), and the bytes each
# Dovecot sent and received (its "Logged out in=… out=…" lines). Each run must
# exit 0; a --delete-source run must leave its source empty and delete every
# message. Prints a median table and writes bench/proof-<UTC date-time>.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CA=$ROOT/tests/fixtures/ca.pem
MESSAGES=5000 RUNS=3 SEED=1 BUILD=1 WORK=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --workdir) WORK=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-proof.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $MESSAGES =~ ^[0-9]+$ && $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench-proof.sh: bad --messages/--runs" >&2; exit 2; }
log() { printf '[bench-proof %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ -x /usr/bin/time ]] || die "needs /usr/bin/time (apt-get install time)"
[[ -x /usr/sbin/dovecot ]] || die "needs Dovecot (apt-get install dovecot-imapd)"

if [[ $BUILD -eq 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
fi
if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/btsx-bench-proof.XXXXXX")
else
    mkdir -p "$WORK"
fi
chmod 0755 "$WORK"
BTSX=$WORK/btsx
cp "$ROOT/target/release/btsx" "$BTSX" # others may rebuild target/ meanwhile
log "workdir $WORK"

SRC_DIR=$WORK/src DST_DIR=$WORK/dst
cleanup() {
    local rc=$?
    set +e
    [[ -d $SRC_DIR ]] && "$ROOT/scripts/testserver.sh" stop "$SRC_DIR" >/dev/null 2>&1
    [[ -d $DST_DIR ]] && "$ROOT/scripts/testserver.sh" stop "$DST_DIR" >/dev/null 2>&1
    log "servers stopped; data kept in $WORK (exit $rc)"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PW=pw
src_users=(--user "plain:$PW") dst_users=()
for ((i = 1; i <= RUNS; i++)); do
    src_users+=(--user "proof$i:$PW")
    dst_users+=(--user "plain$i:$PW" --user "proof$i:$PW")
done
eval "$("$ROOT/scripts/testserver.sh" start "$SRC_DIR" --separator / "${src_users[@]}" --owner-pid $$ | sed 's/^/SRC_/')"
eval "$("$ROOT/scripts/testserver.sh" start "$DST_DIR" --separator . "${dst_users[@]}" --owner-pid $$ | sed 's/^/DST_/')"

for u in plain $(for ((i = 1; i <= RUNS; i++)); do echo "proof$i"; done); do
    log "generating $MESSAGES messages for source user $u (seed $SEED)"
    python3 "$ROOT/scripts/genmail.py" --port "$SRC_IMAP_PORT" --user "$u" --password "$PW" \
        --seed "$SEED" --messages "$MESSAGES" >"$WORK/genmail-$u.json"
done

RUNS_FILE=$WORK/runs.jsonl
: >"$RUNS_FILE"

# bytes USER LOGFILE: sum of in= and out= over the user's logged-out sessions
bytes() {
    python3 - "$1" "$2" <<'PY'
import re, sys
user, path = sys.argv[1], sys.argv[2]
i = o = 0
for line in open(path, encoding="utf-8", errors="replace"):
    if f"imap({user})" in line and "Logged out" in line:
        m = re.search(r"in=(\d+) out=(\d+)", line)
        if m:
            i += int(m.group(1)); o += int(m.group(2))
print(i, o)
PY
}

run() { # MODE N
    local mode=$1 n=$2 src_user dst_user extra=()
    if [[ $mode == plain ]]; then
        src_user=plain dst_user=plain$n
    else
        src_user=proof$n dst_user=proof$n extra=(--delete-source --yes)
    fi
    local name=$mode-$n t0 t1 rc
    log "$name: $src_user -> $dst_user ${extra[*]}"
    t0=$EPOCHREALTIME
    set +e
    env BTSX_SRC_PASSWORD=$PW BTSX_DST_PASSWORD=$PW XDG_STATE_HOME="$WORK/xdg" \
        /usr/bin/time -v -o "$WORK/$name.time" \
        "$BTSX" migrate "imaps://$src_user@localhost:$SRC_IMAPS_PORT" \
        "imaps://$dst_user@localhost:$DST_IMAPS_PORT" --ca-file "$CA" \
        --state "$WORK/state-$name.json" --json "${extra[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    set -e
    t1=$EPOCHREALTIME
    [[ $rc -eq 0 ]] || die "$name exited $rc: $(tail -3 "$WORK/$name.err")"
    sleep 1 # the servers log the logout after the client has gone
    read -r src_in src_out < <(bytes "$src_user" "$SRC_DIR/dovecot.log")
    read -r dst_in dst_out < <(bytes "$dst_user" "$DST_DIR/dovecot.log")
    python3 - "$WORK/$name.out" "$WORK/$name.time" "$mode" "$n" "$t0" "$t1" \
        "$src_in" "$src_out" "$dst_in" "$dst_out" >>"$RUNS_FILE" <<'PY'
import json, re, sys
out, timef, mode, n, t0, t1, si, so, di, do = sys.argv[1:]
summary = [json.loads(l) for l in open(out) if l.strip()][-1]
t = open(timef).read()
cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", t))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
if mode == "proof":
    assert summary["messages_deleted_on_source"] == summary["messages_copied"], summary
    assert summary["messages_altered"] == 0, summary
print(json.dumps({
    "mode": mode, "run": int(n), "wall_s": float(t1) - float(t0), "cpu_s": cpu, "rss_kb": rss,
    "copied": summary["messages_copied"], "bytes_copied": summary["bytes_copied"],
    "deleted": summary["messages_deleted_on_source"],
    "src_sent": int(so), "src_received": int(si), "dst_sent": int(do), "dst_received": int(di),
}))
PY
    tail -1 "$RUNS_FILE" >&2
}

for ((i = 1; i <= RUNS; i++)); do
    run plain "$i"
    run proof "$i"
done

mkdir -p "$ROOT/bench"
OUT=$ROOT/bench/proof-$(date -u +%Y-%m-%dT%H%M%SZ).json
python3 - "$RUNS_FILE" "$OUT" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for mode in ("plain", "proof"):
    rs = [r for r in runs if r["mode"] == mode]
    med[mode] = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k not in ("mode", "run")}
json.dump({"runs": runs, "median": med}, open(sys.argv[2], "w"), indent=1)
p, q = med["plain"], med["proof"]
MiB = 1024 * 1024
print(f"{'median':28} {'migrate':>12} {'--delete-source':>16} {'cost':>10}")
for k, label, scale, unit in [
    ("wall_s", "wall time", 1, "s"), ("cpu_s", "btsx CPU (user+sys)", 1, "s"),
    ("rss_kb", "btsx peak RSS", 1024, "MiB"), ("src_sent", "source sent", MiB, "MiB"),
    ("dst_received", "destination received", MiB, "MiB"), ("dst_sent", "destination sent", MiB, "MiB"),
]:
    a, b = p[k] / scale, q[k] / scale
    if unit == "MiB" and k == "rss_kb":
        a, b = p[k] / 1024, q[k] / 1024
    print(f"{label:28} {a:10.2f} {unit:3} {b:12.2f} {unit:3} {b - a:+8.2f}")
print(f"wrote {sys.argv[2]}")
PY
