#!/usr/bin/env bash
# Benchmark: btsx vs. mbsync (isync) copying one whole mailbox between two
# private Dovecot instances on loopback (issue "Speed: faster than mbsync on
# the same servers"). See docs/benchmark.md.
#
#   scripts/bench.sh [--messages N] [--runs K] [--seed S] [--jobs J]
#                    [--jobs-sweep "1 2 4 8"] [--sweep-runs R]
#                    [--workdir DIR] [--no-build] [--rev REV]
#                    [--no-mbsync] [--perf]
#
#   --messages N   messages in the generated source mailbox (default 5000,
#                  realistic profile, ~26 KB average)
#   --runs K       runs per tool and scenario (default 3)
#   --seed S       scripts/genmail.py seed (default 1)
#   --jobs J       pass --jobs J to btsx (default: btsx's own default)
#   --jobs-sweep L after the main runs, one verified btsx full copy per
#                  --jobs value in L (e.g. "1 2 4 8"), --sweep-runs times
#                  each (default 1)
#   --perf         also run one btsx full copy under `perf stat` (if perf exists)
#   --workdir DIR  where servers, mail and logs go (default: a new
#                  ${TMPDIR:-/tmp}/btsx-bench.XXXXXX; kept afterwards, since
#                  deleting big maildirs slows later disk writes here)
#   --no-build     use target/release/btsx as it is
#   --rev REV      benchmark the committed tree REV (git archive, built with
#                  CARGO_TARGET_DIR=target/bench-rev) instead of the working
#                  tree, which others may be editing and rebuilding meanwhile
#   --no-mbsync    btsx runs only
#
# Each run copies into a fresh destination user (btsxN / mbsyncN), so every
# full copy starts from an empty account; the incremental run repeats the copy
# into the same user (btsx: same --state file; mbsync: same SyncState), with
# nothing changed. Every run is wrapped in /usr/bin/time -v. Every btsx run is
# verified against the source with scripts/digest.py (a mismatch makes the
# script exit 1); mbsync runs are verified too but only reported.
#
# Prints a median table and writes bench/results-<UTC date-time>.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/bench/benchlib.py
CA=$ROOT/tests/fixtures/ca.pem

MESSAGES=5000 RUNS=3 SEED=1 JOBS="" SWEEP="" SWEEP_RUNS=1 WORK="" BUILD=1 MBSYNC=1 PERF=0 REV=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --jobs) JOBS=${2:?}; shift 2 ;;
    --jobs-sweep) SWEEP=${2:?}; shift 2 ;;
    --sweep-runs) SWEEP_RUNS=${2:?}; shift 2 ;;
    --workdir) WORK=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --rev) REV=${2:?}; shift 2 ;;
    --no-mbsync) MBSYNC=0; shift ;;
    --perf) PERF=1; shift ;;
    -h | --help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $MESSAGES =~ ^[0-9]+$ && $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: bad --messages/--runs" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
apt_updated=0
need_pkg() { # COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2"
    if [[ $apt_updated -eq 0 ]]; then
        apt-get update -qq >&2 || die "apt-get update failed"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 || die "cannot install $2"
}
[[ -x /usr/bin/time ]] || need_pkg /usr/bin/time time
[[ $MBSYNC -eq 0 ]] || need_pkg mbsync isync
need_pkg python3 python3
[[ -x /usr/sbin/dovecot ]] || need_pkg /usr/sbin/dovecot dovecot-imapd

BIN=$ROOT/target/release/btsx
if [[ -n $REV ]]; then
    REV_SHA=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}") || die "unknown --rev $REV"
    tree=$(mktemp -d "${TMPDIR:-/tmp}/btsx-bench-tree.XXXXXX")
    git -C "$ROOT" archive "$REV_SHA" | tar -x -C "$tree"
    log "cargo build --release of $REV_SHA (target/bench-rev)"
    (cd "$tree" && CARGO_TARGET_DIR=$ROOT/target/bench-rev cargo build --release --quiet) || die "cargo build failed"
    BIN=$ROOT/target/bench-rev/release/btsx
    rm -rf "$tree" # a small source tree, not mail
elif [[ $BUILD -eq 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
fi
[[ -x $BIN ]] || die "no $BIN"

# ---------------------------------------------------------------- workdir, servers
if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/btsx-bench.XXXXXX")
else
    mkdir -p "$WORK"
    WORK=$(cd "$WORK" && pwd)
    [[ -z $(ls -A "$WORK") ]] || die "--workdir $WORK is not empty"
fi
chmod 0755 "$WORK"
log "workdir $WORK"
# freeze the binary: others may rebuild target/ while we measure
BTSX=$WORK/btsx
cp "$BIN" "$BTSX"

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

SRC_PW=src-pw DST_PW=dst-pw
dst_users=()
for ((i = 1; i <= RUNS; i++)); do
    dst_users+=(--user "btsx$i:$DST_PW")
    [[ $MBSYNC -eq 0 ]] || dst_users+=(--user "mbsync$i:$DST_PW")
done
for j in $SWEEP; do
    for ((i = 1; i <= SWEEP_RUNS; i++)); do dst_users+=(--user "jobs$j-$i:$DST_PW"); done
done
[[ $PERF -eq 0 ]] || dst_users+=(--user "perf:$DST_PW")

eval "$("$ROOT/scripts/testserver.sh" start "$SRC_DIR" --separator / --user "alice:$SRC_PW" --owner-pid $$ | sed 's/^/SRC_/')"
eval "$("$ROOT/scripts/testserver.sh" start "$DST_DIR" --separator . "${dst_users[@]}" --owner-pid $$ | sed 's/^/DST_/')"
log "source imap $SRC_IMAP_PORT imaps $SRC_IMAPS_PORT; destination imap $DST_IMAP_PORT imaps $DST_IMAPS_PORT"

# ---------------------------------------------------------------- source mailbox
log "generating $MESSAGES messages (seed $SEED)"
t0=$EPOCHREALTIME
python3 "$ROOT/scripts/genmail.py" --port "$SRC_IMAP_PORT" --user alice --password "$SRC_PW" \
    --seed "$SEED" --messages "$MESSAGES" >"$WORK/genmail.json"
log "generated: $(cat "$WORK/genmail.json") in $(python3 -c "print(round($EPOCHREALTIME-$t0,1))") s"
python3 "$ROOT/scripts/digest.py" --port "$SRC_IMAP_PORT" --user alice --password "$SRC_PW" >"$WORK/src-digest.json"
read -r SRC_MSGS SRC_BYTES SKIP_MSGS SKIP_BYTES < <(python3 - "$WORK/src-digest.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1], encoding="utf-8"))["folders"]
n = sum(len(v["messages"]) for v in f.values())
b = sum(m["size"] for v in f.values() for m in v["messages"])
# mbsync 1.4 cannot name a source folder holding the destination's separator
sk = [m for k, v in f.items() if "." in k for m in v["messages"]]
print(n, b, len(sk), sum(m["size"] for m in sk))
PY
)
log "source: $SRC_MSGS messages, $SRC_BYTES bytes"
# mbsync refuses (and aborts the whole channel on) a source name containing the
# destination's separator, so such folders are excluded from its Patterns.
mapfile -t DOT_FOLDERS < <(python3 -c '
import json, sys
for k in json.load(open(sys.argv[1], encoding="utf-8"))["folders"]:
    if "." in k: print(k)' "$WORK/src-digest.json")

RUNS_FILE=$WORK/runs.jsonl
: >"$RUNS_FILE"
FAILED=0

# run_timed NAME CMD... : /usr/bin/time -v; sets WALL, RC, CPU_SRV
run_timed() {
    local name=$1
    shift
    local c0 c1 t0 t1
    c0=$(python3 "$LIB" servercpu "$SRC_DIR" "$DST_DIR")
    t0=$EPOCHREALTIME
    set +e
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    RC=$?
    set -e
    t1=$EPOCHREALTIME
    sleep 0.3 # let the server sessions end so their CPU time is accounted
    c1=$(python3 "$LIB" servercpu "$SRC_DIR" "$DST_DIR")
    WALL=$(python3 -c "print($t1-$t0)")
    CPU_SRV=$(python3 -c "print(max(0.0, $c1-$c0))")
}

# verify_user TOOL USER NAME [--skip F]... : sets VRC
verify_user() {
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

btsx_run() { # SCENARIO RUN USER [JOBS]
    local scen=$1 run=$2 user=$3 jobs=${4:-$JOBS} name="btsx-$1-$2"
    local -a jobarg=()
    [[ -z $jobs ]] || jobarg=(--jobs "$jobs")

    log "btsx $scen run $run -> $user ${jobarg[*]}"
    run_timed "$name" env BTSX_SRC_PASSWORD="$SRC_PW" BTSX_DST_PASSWORD="$DST_PW" \
        XDG_STATE_HOME="$WORK/xdg-state" \
        "$BTSX" migrate "imaps://alice@localhost:$SRC_IMAPS_PORT" "imaps://$user@localhost:$DST_IMAPS_PORT" \
        --ca-file "$CA" --state "$WORK/state-$user.json" --json "${jobarg[@]}"
    [[ $RC -eq 0 ]] || { log "btsx exited $RC; stderr:"; tail -5 "$WORK/$name.err" >&2; FAILED=1; }
    verify_user btsx "$user" "$name"
    [[ $VRC -eq 0 ]] || { log "btsx verification FAILED ($name)"; FAILED=1; }
    python3 "$LIB" record --tool btsx --scenario "$scen" --run "$run" --wall "$WALL" \
        --timefile "$WORK/$name.time" --rc "$RC" --verify "$WORK/$name.verify.json" \
        --server-cpu "$CPU_SRV" --messages "$SRC_MSGS" --bytes "$SRC_BYTES" \
        ${jobs:+--jobs "$jobs"} --btsx-json "$WORK/$name.out" >>"$RUNS_FILE"
    log "btsx $scen run $run: $(printf '%.2f' "$WALL") s, rc $RC"
}

mbsync_conf() { # USER -> writes $WORK/mbsync-USER.rc
    local user=$1 rc=$WORK/mbsync-$1.rc pat="*" f
    for f in "${DOT_FOLDERS[@]}"; do pat+=" \"!$f\""; done
    mkdir -p "$WORK/mbsync-state-$user"
    cat >"$rc" <<EOF
IMAPAccount src
Host localhost
Port $SRC_IMAPS_PORT
User alice
Pass $SRC_PW
SSLType IMAPS
CertificateFile $CA

IMAPStore src
Account src

IMAPAccount dst
Host localhost
Port $DST_IMAPS_PORT
User $user
Pass $DST_PW
SSLType IMAPS
CertificateFile $CA

IMAPStore dst
Account dst

# one-way full copy: source (far) -> destination (near)
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
}

mbsync_run() { # SCENARIO RUN USER
    local scen=$1 run=$2 user=$3 name="mbsync-$1-$2"
    [[ -e $WORK/mbsync-$user.rc ]] || mbsync_conf "$user"
    log "mbsync $scen run $run -> $user"
    run_timed "$name" mbsync -c "$WORK/mbsync-$user.rc" copy
    [[ $RC -eq 0 ]] || { log "mbsync exited $RC (reported, not fatal):"; tail -5 "$WORK/$name.err" >&2; }
    local -a skip=()
    local f
    for f in "${DOT_FOLDERS[@]}"; do skip+=(--skip "$f"); done
    verify_user mbsync "$user" "$name" "${skip[@]}"
    python3 "$LIB" record --tool mbsync --scenario "$scen" --run "$run" --wall "$WALL" \
        --timefile "$WORK/$name.time" --rc "$RC" --verify "$WORK/$name.verify.json" \
        --server-cpu "$CPU_SRV" --messages "$((SRC_MSGS - SKIP_MSGS))" \
        --bytes "$((SRC_BYTES - SKIP_BYTES))" >>"$RUNS_FILE"
    log "mbsync $scen run $run: $(printf '%.2f' "$WALL") s, rc $RC"
}

# ---------------------------------------------------------------- runs
for ((i = 1; i <= RUNS; i++)); do
    btsx_run full "$i" "btsx$i"
    [[ $MBSYNC -eq 0 ]] || mbsync_run full "$i" "mbsync$i"
done
for ((i = 1; i <= RUNS; i++)); do
    btsx_run incremental "$i" "btsx$i"
    [[ $MBSYNC -eq 0 ]] || mbsync_run incremental "$i" "mbsync$i"
done
for ((i = 1; i <= SWEEP_RUNS; i++)); do
    for j in $SWEEP; do
        btsx_run "full-jobs$j" "$i" "jobs$j-$i" "$j"
    done
done
if [[ $PERF -eq 1 ]]; then
    if command -v perf >/dev/null 2>&1; then
        log "btsx full copy under perf stat -> $WORK/perf-stat.txt"
        set +e
        env BTSX_SRC_PASSWORD="$SRC_PW" BTSX_DST_PASSWORD="$DST_PW" XDG_STATE_HOME="$WORK/xdg-state" \
            perf stat -o "$WORK/perf-stat.txt" \
            "$BTSX" migrate "imaps://alice@localhost:$SRC_IMAPS_PORT" "imaps://perf@localhost:$DST_IMAPS_PORT" \
            --ca-file "$CA" --state "$WORK/state-perf.json" --json ${JOBS:+--jobs "$JOBS"} \
            >"$WORK/perf.out" 2>"$WORK/perf.err"
        set -e
        cat "$WORK/perf-stat.txt" >&2
    else
        log "perf not installed; skipping --perf"
    fi
fi

# ---------------------------------------------------------------- report
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$ROOT/bench"
OUT=$ROOT/bench/results-$STAMP.json
python3 - "$WORK/meta.json" <<PY
import json, os, platform, subprocess, sys
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, cwd="$ROOT").stdout.strip()
    except OSError:
        return None
meta = {
    "date": "$STAMP",
    "messages": $SRC_MSGS,
    "bytes": $SRC_BYTES,
    "mbsync_skipped_messages": $SKIP_MSGS,
    "mbsync_skipped_folders": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${DOT_FOLDERS[@]}"),
    "seed": $SEED,
    "runs": $RUNS,
    "btsx_jobs": "${JOBS:-default}",
    "btsx_version": sh("$BTSX", "--version"),
    "btsx_sha256": sh("sha256sum", "$BTSX").split()[0],
    "btsx_built_from": "${REV_SHA:-working tree}",
    "repo_head": sh("git", "rev-parse", "HEAD"),
    "working_tree_dirty": False if "${REV_SHA:-}" else bool(sh("git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")),
    "mbsync_version": sh("mbsync", "--version") if $MBSYNC else None,
    "dovecot_version": sh("/usr/sbin/dovecot", "--version"),
    "cpus": os.cpu_count(),
    "kernel": platform.release(),
    "source_note": "realistic profile, seed $SEED; TLS (imaps) on loopback, both Dovecots on this host",
    "workdir": "$WORK",
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PY
python3 "$LIB" report --runs "$RUNS_FILE" --meta "$WORK/meta.json" --out "$OUT"

if [[ $FAILED -ne 0 ]]; then
    die "at least one btsx run failed or did not verify (see $WORK/*.verify.json, *.err)"
fi
log "all btsx runs verified"
