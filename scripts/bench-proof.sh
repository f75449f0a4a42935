#!/usr/bin/env bash
# The cost of the proof before deleting (issue 15): the same generated mailbox
# copied between two private Dovecots on loopback, K times without and K times
# with --delete-source (which reads every copy back and compares it before
# deleting the source message). See docs/benchmark.md.
#
#   scripts/bench-proof.sh [--messages N] [--runs K] [--seed S] [--no-build] [--workdir DIR]
#                          [--baseline BIN]
#
# --baseline BIN also runs BIN (a btsx built before the proof, e.g. from commit
# 949a3d3) with --delete-source, to separate the proof's cost from the delete's.
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
MESSAGES=5000 RUNS=3 SEED=1 BUILD=1 WORK="" BASELINE=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --workdir) WORK=${2:?}; shift 2 ;;
    --baseline) BASELINE=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
[[ -z $BASELINE ]] || cp "$BASELINE" "$WORK/btsx-baseline"
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
MODES="plain proof"
[[ -z $BASELINE ]] || MODES+=" unproven"
for ((i = 1; i <= RUNS; i++)); do
    src_users+=(--user "proof$i:$PW")
    dst_users+=(--user "plain$i:$PW" --user "proof$i:$PW")
    [[ -z $BASELINE ]] || { src_users+=(--user "unproven$i:$PW"); dst_users+=(--user "unproven$i:$PW"); }
done
eval "$("$ROOT/scripts/testserver.sh" start "$SRC_DIR" --separator / "${src_users[@]}" --owner-pid $$ | sed 's/^/SRC_/')"
eval "$("$ROOT/scripts/testserver.sh" start "$DST_DIR" --separator . "${dst_users[@]}" --owner-pid $$ | sed 's/^/DST_/')"

for u in plain $(for ((i = 1; i <= RUNS; i++)); do echo "proof$i"; [[ -z $BASELINE ]] || echo "unproven$i"; done); do
    log "generating $MESSAGES messages for source user $u (seed $SEED)"
    python3 "$ROOT/scripts/genmail.py" --port "$SRC_IMAP_PORT" --user "$u" --password "$PW" \
        --seed "$SEED" --messages "$MESSAGES" >"$WORK/genmail-$u.json"
done

RUNS_FILE=$WORK/runs.jsonl
: >"$RUNS_FILE"

# bytes USER LOGFILE OFFSET: sum of in= and out= over the user's sessions logged
# out after byte OFFSET of the log (this run's only)
bytes() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys
user, path, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
i = o = 0
f = open(path, "rb")
f.seek(offset)
for line in f.read().decode("utf-8", "replace").splitlines():
    if f"imap({user})" in line and "Logged out" in line:
        m = re.search(r"in=(\d+) out=(\d+)", line)
        if m:
            i += int(m.group(1)); o += int(m.group(2))
print(i, o)
PY
}

run() { # MODE N
    local mode=$1 n=$2 src_user dst_user extra=() bin=$BTSX
    if [[ $mode == plain ]]; then
        src_user=plain dst_user=plain$n
    else
        src_user=$mode$n dst_user=$mode$n extra=(--delete-source --yes)
    fi
    [[ $mode != unproven ]] || bin=$WORK/btsx-baseline
    local name=$mode-$n t0 t1 rc
    log "$name: $src_user -> $dst_user ${extra[*]}"
    local src_off dst_off
    src_off=$(stat -c %s "$SRC_DIR/dovecot.log")
    dst_off=$(stat -c %s "$DST_DIR/dovecot.log")
    t0=$EPOCHREALTIME
    set +e
    env BTSX_SRC_PASSWORD=$PW BTSX_DST_PASSWORD=$PW XDG_STATE_HOME="$WORK/xdg" \
        /usr/bin/time -v -o "$WORK/$name.time" \
        "$bin" migrate "imaps://$src_user@localhost:$SRC_IMAPS_PORT" \
        "imaps://$dst_user@localhost:$DST_IMAPS_PORT" --ca-file "$CA" \
        --state "$WORK/state-$name.json" --json "${extra[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    set -e
    t1=$EPOCHREALTIME
    [[ $rc -eq 0 ]] || die "$name exited $rc: $(tail -3 "$WORK/$name.err")"
    sleep 1 # the servers log the logout after the client has gone
    read -r src_in src_out < <(bytes "$src_user" "$SRC_DIR/dovecot.log" "$src_off")
    read -r dst_in dst_out < <(bytes "$dst_user" "$DST_DIR/dovecot.log" "$dst_off")
    python3 - "$WORK/$name.out" "$WORK/$name.time" "$mode" "$n" "$t0" "$t1" \
        "$src_in" "$src_out" "$dst_in" "$dst_out" >>"$RUNS_FILE" <<'PY'
import json, re, sys
out, timef, mode, n, t0, t1, si, so, di, do = sys.argv[1:]
summary = [json.loads(l) for l in open(out) if l.strip()][-1]
t = open(timef).read()
cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", t))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
if mode != "plain":
    assert summary["messages_deleted_on_source"] == summary["messages_copied"], summary
    assert summary.get("messages_altered", 0) == 0, summary
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
    for m in $MODES; do run "$m" "$i"; done
done

mkdir -p "$ROOT/bench"
OUT=$ROOT/bench/proof-$(date -u +%Y-%m-%dT%H%M%SZ).json
python3 - "$RUNS_FILE" "$OUT" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med, best = {}, {}
modes = [m for m in ("plain", "unproven", "proof") if any(r["mode"] == m for r in runs)]
for mode in modes:
    rs = [r for r in runs if r["mode"] == mode]
    med[mode] = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k not in ("mode", "run")}
    best[mode] = {k: min(r[k] for r in rs) for k in ("wall_s", "cpu_s")}
json.dump({"runs": runs, "median": med, "min": best}, open(sys.argv[2], "w"), indent=1)
MiB = 1024 * 1024
names = {"plain": "migrate", "unproven": "delete, unproven", "proof": "--delete-source"}
print(f"{'median (min)':22}" + "".join(f"{names[m]:>24}" for m in modes))
for k, label, scale, unit in [
    ("wall_s", "wall time", 1, "s"), ("cpu_s", "btsx CPU (user+sys)", 1, "s"),
    ("rss_kb", "btsx peak RSS", 1024, "MiB"), ("src_received", "source received", MiB, "MiB"), ("src_sent", "source sent", MiB, "MiB"),
    ("dst_received", "destination received", MiB, "MiB"), ("dst_sent", "destination sent", MiB, "MiB"),
]:
    cells = []
    for m in modes:
        v = f"{med[m][k] / scale:.2f}"
        if k in best[m]:
            v += f" ({best[m][k] / scale:.2f})"
        cells.append(f"{v + ' ' + unit:>24}")
    print(f"{label:22}" + "".join(cells))
print(f"wrote {sys.argv[2]}")
PY
