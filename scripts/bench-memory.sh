#!/usr/bin/env bash
# Peak memory of btsx (issue 12 item 6): one giant message, and a mailbox of many
# messages, copied between two private Dovecots on loopback. See docs/benchmark.md.
#
#   scripts/bench-memory.sh [--messages N] [--big-mb M] [--runs K] [--jobs J]
#                           [--only big|many] [--no-build] [--workdir DIR] [--bin BIN]...
#
# Scenarios (each run copies into a fresh destination user):
#   big   20 small messages plus one of about M MiB (default 500) in INBOX
#         (genmail.py --profile flat --big-message-mb M)
#   many  the realistic mailbox of N messages (default 50000; genmail.py)
# Each --bin BIN (default: target/release/btsx, built first unless --no-build) is run
# K times (default 1) per scenario with --jobs J (default 4). Measured per run: peak
# RSS ("Maximum resident set size" of /usr/bin/time -v), wall time and client CPU.
# Each run must exit 0 with every message copied; `btsx verify` must then exit 0, and
# for "big" the destination's INBOX must hold the same bytes, flags and dates as the
# source's (scripts/digest.py, sha256). Prints a table; writes bench/memory-<UTC>.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CA=$ROOT/tests/fixtures/ca.pem
MESSAGES=50000 BIG_MB=500 RUNS=1 JOBS=4 BUILD=1 WORK="" ONLY="" BINS=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --big-mb) BIG_MB=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --jobs) JOBS=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --workdir) WORK=${2:?}; shift 2 ;;
    --bin) BINS+=("${2:?}"); shift 2 ;;
    -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-memory.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $MESSAGES =~ ^[0-9]+$ && $RUNS =~ ^[1-9][0-9]*$ && $BIG_MB =~ ^[0-9]+$ ]] ||
    { echo "bench-memory.sh: bad --messages/--runs/--big-mb" >&2; exit 2; }
log() { printf '[bench-memory %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ -x /usr/bin/time ]] || die "needs /usr/bin/time (apt-get install time)"
[[ -x /usr/sbin/dovecot ]] || die "needs Dovecot (apt-get install dovecot-imapd)"

if [[ ${#BINS[@]} -eq 0 ]]; then
    if [[ $BUILD -eq 1 ]]; then
        log "cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
    fi
    BINS=("$ROOT/target/release/btsx")
fi
if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/btsx-bench-memory.XXXXXX")
else
    mkdir -p "$WORK"
fi
chmod 0755 "$WORK"
# Copies: others may rebuild target/ meanwhile.
LABELS=()
for i in "${!BINS[@]}"; do
    cp "${BINS[$i]}" "$WORK/btsx-$i"
    LABELS+=("b$i")
    log "build b$i: ${BINS[$i]}"
done
log "workdir $WORK"

SRC_DIR=$WORK/src DST_DIR=$WORK/dst
cleanup() {
    local rc=$?
    set +e
    [[ -d $SRC_DIR ]] && "$ROOT/scripts/testserver.sh" stop "$SRC_DIR" >/dev/null 2>&1
    [[ -d $DST_DIR ]] && "$ROOT/scripts/testserver.sh" stop "$DST_DIR" >/dev/null 2>&1
    log "servers stopped; data removed from $WORK (exit $rc)"
    rm -rf "$SRC_DIR" "$DST_DIR"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SCENARIOS=(big many)
[[ -z $ONLY ]] || SCENARIOS=("$ONLY")
PW=pw
dst_users=()
for s in "${SCENARIOS[@]}"; do
    for i in "${!BINS[@]}"; do
        for ((r = 1; r <= RUNS; r++)); do dst_users+=(--user "$s-$i-$r:$PW"); done
    done
done
eval "$("$ROOT/scripts/testserver.sh" start "$SRC_DIR" --separator / --user "big:$PW" --user "many:$PW" --owner-pid $$ | sed 's/^/SRC_/')"
eval "$("$ROOT/scripts/testserver.sh" start "$DST_DIR" --separator . "${dst_users[@]}" --owner-pid $$ | sed 's/^/DST_/')"

for s in "${SCENARIOS[@]}"; do
    if [[ $s == big ]]; then
        log "generating 20 messages and one of $BIG_MB MiB for source user big"
        python3 "$ROOT/scripts/genmail.py" --port "$SRC_IMAP_PORT" --user big --password "$PW" \
            --profile flat --messages 20 --big-message-mb "$BIG_MB" >"$WORK/genmail-big.json"
    else
        log "generating $MESSAGES messages for source user many"
        python3 "$ROOT/scripts/genmail.py" --port "$SRC_IMAP_PORT" --user many --password "$PW" \
            --messages "$MESSAGES" >"$WORK/genmail-many.json"
    fi
done

digest_inbox() { # PORT USER: the INBOX's (sha256, flags, date) list, sorted
    python3 "$ROOT/scripts/digest.py" --port "$1" --user "$2" --password "$PW" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(sorted((m["sha256"], m["flags"], m["internaldate"]) for m in d["folders"]["INBOX"]["messages"])))'
}

RUNS_FILE=$WORK/runs.jsonl
: >"$RUNS_FILE"
[[ " ${SCENARIOS[*]} " != *" big "* ]] || SRC_BIG_DIGEST=$(digest_inbox "$SRC_IMAP_PORT" big)
for s in "${SCENARIOS[@]}"; do
    for i in "${!BINS[@]}"; do
        for ((r = 1; r <= RUNS; r++)); do
            dst_user=$s-$i-$r name=$s-$i-$r
            log "$name: ${LABELS[$i]} $s -> $dst_user (--jobs $JOBS)"
            t0=$EPOCHREALTIME
            set +e
            env BTSX_SRC_PASSWORD=$PW BTSX_DST_PASSWORD=$PW XDG_STATE_HOME="$WORK/xdg" \
                /usr/bin/time -v -o "$WORK/$name.time" \
                "$WORK/btsx-$i" migrate "imaps://$s@localhost:$SRC_IMAPS_PORT" \
                "imaps://$dst_user@localhost:$DST_IMAPS_PORT" --ca-file "$CA" --jobs "$JOBS" \
                --state "$WORK/state-$name.json" --json >"$WORK/$name.out" 2>"$WORK/$name.err"
            rc=$?
            set -e
            t1=$EPOCHREALTIME
            [[ $rc -eq 0 ]] || die "$name exited $rc: $(tail -3 "$WORK/$name.err")"
            env BTSX_SRC_PASSWORD=$PW BTSX_DST_PASSWORD=$PW "$WORK/btsx-$i" verify \
                "imaps://$s@localhost:$SRC_IMAPS_PORT" "imaps://$dst_user@localhost:$DST_IMAPS_PORT" \
                --ca-file "$CA" >"$WORK/$name.verify" 2>&1 || die "$name: btsx verify failed"
            if [[ $s == big ]]; then
                [[ $(digest_inbox "$DST_IMAP_PORT" "$dst_user") == "$SRC_BIG_DIGEST" ]] ||
                    die "$name: the destination's INBOX differs from the source's (digest.py)"
            fi
            python3 - "$WORK/$name.out" "$WORK/$name.time" "$s" "${LABELS[$i]}" "$r" "$t0" "$t1" >>"$RUNS_FILE" <<'PY'
import json, re, sys
out, timef, scenario, label, run, t0, t1 = sys.argv[1:]
summary = [json.loads(l) for l in open(out) if l.strip()][-1]
assert summary["messages_copied"] == summary["messages_total"], summary
t = open(timef).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
cpu = sum(float(re.search(p + r": ([\d.]+)", t).group(1)) for p in ("User time \(seconds\)", "System time \(seconds\)"))
print(json.dumps({"scenario": scenario, "build": label, "run": int(run), "wall_s": float(t1) - float(t0),
                  "cpu_s": cpu, "rss_kb": rss, "messages": summary["messages_copied"],
                  "bytes": summary["bytes_copied"]}))
PY
            tail -1 "$RUNS_FILE" >&2
        done
    done
done

mkdir -p "$ROOT/bench"
OUT=$ROOT/bench/memory-$(date -u +%Y-%m-%dT%H%M%SZ).json
python3 - "$RUNS_FILE" "$OUT" "$JOBS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump({"jobs": int(sys.argv[3]), "runs": runs}, open(sys.argv[2], "w"), indent=1)
print("| scenario | build | runs | messages | MiB copied | median wall s | CPU s | peak RSS MiB (median, max) |")
print("|---|---|---|---|---|---|---|---|")
keys = []
for r in runs:
    if (r["scenario"], r["build"]) not in keys:
        keys.append((r["scenario"], r["build"]))
for s, b in keys:
    rs = [r for r in runs if r["scenario"] == s and r["build"] == b]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {s} | {b} | {len(rs)} | {rs[0]['messages']:,} | {rs[0]['bytes'] / 2**20:,.1f} | "
          f"{med('wall_s'):.2f} | {med('cpu_s'):.2f} | {med('rss_kb') / 1024:.1f}, {max(r['rss_kb'] for r in rs) / 1024:.1f} |")
PY
log "wrote $OUT"
