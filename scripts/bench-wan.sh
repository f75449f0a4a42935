#!/usr/bin/env bash
# Benchmark over a wide-area link: btsx and mbsync copy one mailbox between two
# private Dovecots through examples/linkproxy.rs (issue 12). Not a test: it
# measures. See docs/benchmark.md ("Over a wide-area link").
#
#   scripts/bench-wan.sh [--messages N] [--runs K] [--seed S] [--delay-ms D]
#                        [--jobs "4 8"] [--scenarios "gmail o365 cuts"]
#                        [--cuts "6-12 1-3"] [--cut-runs R]
#                        [--workdir DIR] [--no-build] [--btsx BIN] [--no-mbsync]
#
#   --messages N    messages in the generated source (default 5000, genmail.py)
#   --runs K        runs per tool in the latency scenarios (default 3; medians)
#   --delay-ms D    added each way on both links (default 20)
#   --jobs L        btsx --jobs values to measure (default "4 8")
#   --scenarios L   any of:
#                     gmail  delay D on both sides; the destination advertises
#                            what Gmail does (no MULTIAPPEND, LITERAL- only) and
#                            the proxy refuses what a client must then not send
#                     o365   delay D on both sides, capabilities untouched
#                            (LITERAL+ kept, as Office 365 offers)
#                     cuts   no delay; every connection on both sides is cut
#                            once it relayed LO-HI MB in either direction
#                            (--cuts; a new random amount per connection);
#                            one btsx run (--jobs 4) per cut range and run,
#                            ended with Ctrl-C after --cut-timeout; counts
#                            what is missing afterwards
#                   (default "gmail cuts")
#   --cuts L        cut ranges in MB (default "6-12 1-3")
#   --cut-runs R    runs per cut range (default 1)
#   --cut-timeout S a cut run still going after S seconds gets SIGINT (default 600)
#   --workdir DIR   where servers, mail and logs go (default a new
#                   ${TMPDIR:-/tmp}/btsx-wan.XXXXXX, kept afterwards)
#   --no-build      use target/release/btsx and target/release/examples/linkproxy as they are
#   --btsx BIN      measure this btsx binary (e.g. one built from another commit)
#   --no-mbsync     btsx only
#
# Plaintext IMAP throughout (the proxy reads the protocol): btsx --plaintext
# imap://, mbsync SSLType None. Each run copies into a fresh destination user;
# every run is verified against the source with scripts/digest.py (read
# directly, not through a proxy). Prints a median table, writes
# bench/wan-results-<UTC date-time>.json. Exits 1 when a latency-scenario btsx
# run fails or does not verify, or when a proxy refused a btsx command.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/bench/benchlib.py

MESSAGES=5000 RUNS=3 SEED=1 DELAY=20 JOBS_LIST="4 8" SCENARIOS="gmail cuts" CUTS="6-12 1-3"
CUT_RUNS=1 CUT_TIMEOUT=600 WORK="" BUILD=1 MBSYNC=1 BTSX_BIN=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --delay-ms) DELAY=${2:?}; shift 2 ;;
    --jobs) JOBS_LIST=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --cuts) CUTS=${2:?}; shift 2 ;;
    --cut-runs) CUT_RUNS=${2:?}; shift 2 ;;
    --cut-timeout) CUT_TIMEOUT=${2:?}; shift 2 ;;
    --workdir) WORK=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --btsx) BTSX_BIN=${2:?}; shift 2 ;;
    --no-mbsync) MBSYNC=0; shift ;;
    -h | --help) sed -n '2,42p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-wan.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $MESSAGES =~ ^[0-9]+$ && $RUNS =~ ^[1-9][0-9]*$ && $DELAY =~ ^[0-9]+$ ]] ||
    { echo "bench-wan.sh: bad --messages/--runs/--delay-ms" >&2; exit 2; }
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

log() { printf '[bench-wan %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in /usr/bin/time python3 /usr/sbin/dovecot; do
    command -v "$t" >/dev/null || die "$t missing (scripts/bench.sh installs what it needs)"
done
[[ $MBSYNC -eq 0 ]] || command -v mbsync >/dev/null || die "mbsync missing: apt-get install isync"

if [[ $BUILD -eq 1 ]]; then
    log "cargo build --release (btsx, examples/linkproxy)"
    (cd "$ROOT" && cargo build --release --quiet --bin btsx --example linkproxy) || die "cargo build failed"
fi
BIN=${BTSX_BIN:-$ROOT/target/release/btsx} PROXY_BIN=$ROOT/target/release/examples/linkproxy
[[ -x $BIN && -x $PROXY_BIN ]] || die "no $BIN or $PROXY_BIN"

if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/btsx-wan.XXXXXX")
else
    mkdir -p "$WORK"
    WORK=$(cd "$WORK" && pwd)
    [[ -z $(ls -A "$WORK") ]] || die "--workdir $WORK is not empty"
fi
chmod 0755 "$WORK"
log "workdir $WORK"
# freeze the binaries: others may rebuild target/ while we measure
cp "$BIN" "$WORK/btsx"
cp "$PROXY_BIN" "$WORK/linkproxy"
BTSX=$WORK/btsx

SRC_DIR=$WORK/src DST_DIR=$WORK/dst
PROXY_PIDS=()
stop_proxies() {
    local p
    for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PROXY_PIDS=()
}
cleanup() {
    local rc=$?
    set +e
    stop_proxies
    [[ -d $SRC_DIR ]] && "$ROOT/scripts/testserver.sh" stop "$SRC_DIR" >/dev/null 2>&1
    [[ -d $DST_DIR ]] && "$ROOT/scripts/testserver.sh" stop "$DST_DIR" >/dev/null 2>&1
    log "servers stopped; data kept in $WORK (exit $rc)"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_proxy NAME UPSTREAM_PORT ARGS... : sets PORT
start_proxy() {
    local name=$1 up=$2
    shift 2
    : >"$WORK/proxy-$name.port" # exists before the proxy opens it (read below at once)
    "$WORK/linkproxy" --upstream "127.0.0.1:$up" "$@" >"$WORK/proxy-$name.port" 2>"$WORK/proxy-$name.log" &
    PROXY_PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/proxy-$name.port")
        [[ -z $PORT ]] || return 0
        sleep 0.05
    done
    die "proxy $name did not start: $(cat "$WORK/proxy-$name.log")"
}

# ---------------------------------------------------------------- servers, mailbox
SRC_PW=src-pw DST_PW=dst-pw
dst_users=()
for ((i = 1; i <= RUNS; i++)); do
    for scen in gmail o365; do
        has "$scen" || continue
        for j in $JOBS_LIST; do dst_users+=(--user "$scen-j$j-$i:$DST_PW"); done
        [[ $MBSYNC -eq 0 ]] || dst_users+=(--user "$scen-mbsync-$i:$DST_PW")
    done
done
if has cuts; then
    for c in $CUTS; do
        for ((i = 1; i <= CUT_RUNS; i++)); do dst_users+=(--user "cut$c-$i:$DST_PW"); done
    done
fi
eval "$("$ROOT/scripts/testserver.sh" start "$SRC_DIR" --separator / --user "alice:$SRC_PW" --owner-pid $$ | sed 's/^/SRC_/')"
eval "$("$ROOT/scripts/testserver.sh" start "$DST_DIR" --separator . "${dst_users[@]}" --owner-pid $$ | sed 's/^/DST_/')"
log "source imap $SRC_IMAP_PORT; destination imap $DST_IMAP_PORT (plaintext ports, through the proxies)"

log "generating $MESSAGES messages (seed $SEED)"
python3 "$ROOT/scripts/genmail.py" --port "$SRC_IMAP_PORT" --user alice --password "$SRC_PW" \
    --seed "$SEED" --messages "$MESSAGES" >"$WORK/genmail.json"
python3 "$ROOT/scripts/digest.py" --port "$SRC_IMAP_PORT" --user alice --password "$SRC_PW" >"$WORK/src-digest.json"
read -r SRC_MSGS SRC_BYTES SKIP_MSGS SKIP_BYTES < <(python3 - "$WORK/src-digest.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))["folders"]
n = sum(len(v["messages"]) for v in f.values())
b = sum(m["size"] for v in f.values() for m in v["messages"])
sk = [m for k, v in f.items() if "." in k for m in v["messages"]]
print(n, b, len(sk), sum(m["size"] for m in sk))
PY
)
log "source: $SRC_MSGS messages, $SRC_BYTES bytes"
# mbsync aborts its channel on a source name holding the destination's separator (see bench.sh)
mapfile -t DOT_FOLDERS < <(python3 -c '
import json, sys
for k in json.load(open(sys.argv[1], encoding="utf-8"))["folders"]:
    if "." in k: print(k)' "$WORK/src-digest.json")

RUNS_FILE=$WORK/runs.jsonl
: >"$RUNS_FILE"
FAILED=0

run_timed() { # NAME CMD... : sets WALL, RC
    local name=$1 t0 t1
    shift
    t0=$EPOCHREALTIME
    set +e
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    RC=$?
    set -e
    t1=$EPOCHREALTIME
    WALL=$(python3 -c "print($t1-$t0)")
}

verify_user() { # TOOL USER NAME [--skip F]... : sets VRC
    local tool=$1 user=$2 name=$3
    shift 3
    python3 "$ROOT/scripts/digest.py" --port "$DST_IMAP_PORT" --user "$user" --password "$DST_PW" \
        >"$WORK/$name.digest.json" || { VRC=2; log "digest failed for $user"; return; }
    set +e
    python3 "$LIB" verify --src "$WORK/src-digest.json" --dst "$WORK/$name.digest.json" \
        --tool "$tool" --out "$WORK/$name.verify.json" "$@" >&2
    VRC=$?
    set -e
}

btsx_run() { # SCENARIO RUN USER JOBS SRC_PORT DST_PORT [TIMEOUT]
    local scen=$1 run=$2 user=$3 jobs=$4 sp=$5 dp=$6 name="btsx-$1-$2"
    local -a limit=()
    [[ -z ${7:-} ]] || limit=(timeout -s INT -k 60 "$7")
    log "btsx $scen run $run -> $user --jobs $jobs"
    run_timed "$name" "${limit[@]}" env BTSX_SRC_PASSWORD="$SRC_PW" BTSX_DST_PASSWORD="$DST_PW" \
        XDG_STATE_HOME="$WORK/xdg-state" \
        "$BTSX" migrate "imap://alice@127.0.0.1:$sp" "imap://$user@127.0.0.1:$dp" \
        --plaintext --state "$WORK/state-$user.json" --json --jobs "$jobs"
    verify_user btsx "$user" "$name"
    python3 "$LIB" record --tool btsx --scenario "$scen" --run "$run" --wall "$WALL" \
        --timefile "$WORK/$name.time" --rc "$RC" --verify "$WORK/$name.verify.json" \
        --messages "$SRC_MSGS" --bytes "$SRC_BYTES" --jobs "$jobs" --btsx-json "$WORK/$name.out" >>"$RUNS_FILE"
    log "btsx $scen run $run: $(printf '%.2f' "$WALL") s, rc $RC, verify $VRC"
}

mbsync_run() { # SCENARIO RUN USER SRC_PORT DST_PORT
    local scen=$1 run=$2 user=$3 sp=$4 dp=$5 name="mbsync-$1-$2" pat="*" f
    for f in "${DOT_FOLDERS[@]}"; do pat+=" \"!$f\""; done
    mkdir -p "$WORK/mbsync-state-$user"
    cat >"$WORK/mbsync-$user.rc" <<EOF
IMAPAccount src
Host 127.0.0.1
Port $sp
User alice
Pass $SRC_PW
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host 127.0.0.1
Port $dp
User $user
Pass $DST_PW
SSLType None
AuthMechs LOGIN

IMAPStore dst
Account dst

Channel copy
Far :src:
Near :dst:
Patterns $pat
Create Near
Remove None
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState $WORK/mbsync-state-$user/
EOF
    log "mbsync $scen run $run -> $user"
    run_timed "$name" mbsync -c "$WORK/mbsync-$user.rc" copy
    [[ $RC -eq 0 ]] || { log "mbsync exited $RC (reported, not fatal):"; tail -5 "$WORK/$name.err" >&2; }
    local -a skip=()
    for f in "${DOT_FOLDERS[@]}"; do skip+=(--skip "$f"); done
    verify_user mbsync "$user" "$name" "${skip[@]}"
    python3 "$LIB" record --tool mbsync --scenario "$scen" --run "$run" --wall "$WALL" \
        --timefile "$WORK/$name.time" --rc "$RC" --verify "$WORK/$name.verify.json" \
        --messages "$((SRC_MSGS - SKIP_MSGS))" --bytes "$((SRC_BYTES - SKIP_BYTES))" >>"$RUNS_FILE"
    log "mbsync $scen run $run: $(printf '%.2f' "$WALL") s, rc $RC"
}

# ---------------------------------------------------------------- latency scenarios
for scen in gmail o365; do
    has "$scen" || continue
    gm=()
    [[ $scen == o365 ]] || gm=(--gmail)
    start_proxy "$scen-src" "$SRC_IMAP_PORT" --delay-ms "$DELAY"
    SP=$PORT
    start_proxy "$scen-dst" "$DST_IMAP_PORT" --delay-ms "$DELAY" "${gm[@]}"
    DP=$PORT
    log "$scen: proxies source $SP, destination $DP (${DELAY} ms each way${gm:+, Gmail-like destination})"
    for ((i = 1; i <= RUNS; i++)); do
        for j in $JOBS_LIST; do
            btsx_run "$scen-jobs$j" "$i" "$scen-j$j-$i" "$j" "$SP" "$DP"
            [[ $RC -eq 0 && $VRC -eq 0 ]] || { log "btsx $scen --jobs $j run $i FAILED"; FAILED=1; }
        done
        [[ $MBSYNC -eq 0 ]] || mbsync_run "$scen" "$i" "$scen-mbsync-$i" "$SP" "$DP"
    done
    stop_proxies
    if grep -q ' reject ' "$WORK/proxy-$scen-dst.log"; then
        log "the $scen proxy refused commands:"
        grep ' reject ' "$WORK/proxy-$scen-dst.log" | head -5 >&2
        FAILED=1
    fi
done

# ---------------------------------------------------------------- cut scenarios
if has cuts; then
    for c in $CUTS; do
        for ((i = 1; i <= CUT_RUNS; i++)); do
            start_proxy "cut$c-$i-src" "$SRC_IMAP_PORT" --cut-mb "$c" --seed "$i"
            SP=$PORT
            start_proxy "cut$c-$i-dst" "$DST_IMAP_PORT" --cut-mb "$c" --seed "$((i + 100))"
            DP=$PORT
            btsx_run "cuts$c" "$i" "cut$c-$i" 4 "$SP" "$DP" "$CUT_TIMEOUT"
            stop_proxies
            cuts=$(cat "$WORK/proxy-cut$c-$i-src.log" "$WORK/proxy-cut$c-$i-dst.log" | grep -c ' cut ' || true)
            python3 - "$WORK/btsx-cuts$c-$i.verify.json" "$WORK/btsx-cuts$c-$i.out" "$c" "$cuts" "$RC" \
                >>"$WORK/cuts.txt" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
s = {}
for l in open(sys.argv[2], errors="replace"):
    try:
        e = json.loads(l)
    except ValueError:
        continue
    if e.get("type") == "summary":
        s = e
print("cuts every %s MB: %s cuts, exit %s, copied %s, missing %d of %d, extra %d, failed folders %s,"
      " reconnects %s/%s (source/destination)"
      % (sys.argv[3], sys.argv[4], sys.argv[5], s.get("messages_copied"), v["missing"],
         v["messages_src"], v["extra"], s.get("folders_failed"), s.get("reconnects_source"),
         s.get("reconnects_destination")))
PY
            tail -1 "$WORK/cuts.txt" >&2
        done
    done
fi

# ---------------------------------------------------------------- report
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=$ROOT/bench/wan-results-$STAMP.json
python3 - "$WORK/meta.json" <<PY
import json, os, subprocess, sys
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, cwd="$ROOT").stdout.strip()
    except OSError:
        return None
json.dump({
    "date": "$STAMP",
    "messages": $SRC_MSGS,
    "bytes": $SRC_BYTES,
    "seed": $SEED,
    "runs": $RUNS,
    "delay_ms_each_way": $DELAY,
    "scenarios": "$SCENARIOS",
    "btsx_jobs": "$JOBS_LIST",
    "btsx_version": sh("$BTSX", "--version"),
    "btsx_sha256": sh("sha256sum", "$BTSX").split()[0],
    "btsx_built_from": "${BTSX_BIN:-working tree}",
    "repo_head": sh("git", "rev-parse", "HEAD"),
    "mbsync_version": sh("mbsync", "--version") if $MBSYNC else None,
    "dovecot_version": sh("/usr/sbin/dovecot", "--version"),
    "cpus": os.cpu_count(),
    "source_note": "genmail.py seed $SEED; plaintext IMAP through examples/linkproxy, ${DELAY} ms each way",
    "cuts": open("$WORK/cuts.txt").read().splitlines() if os.path.exists("$WORK/cuts.txt") else [],
    "workdir": "$WORK",
}, open(sys.argv[1], "w"), indent=1)
PY
python3 "$LIB" report --runs "$RUNS_FILE" --meta "$WORK/meta.json" --out "$OUT"
[[ ! -e $WORK/cuts.txt ]] || cat "$WORK/cuts.txt"

[[ $FAILED -eq 0 ]] || die "a btsx latency run failed, did not verify, or sent what the proxy refuses"
log "done"
