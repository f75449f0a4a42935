#!/usr/bin/env bash
# A cron wrapper for `btsx batch`: one run at a time (flock), JSON events appended to a log, and
# a mail naming the failed accounts when a run does not end with exit code 0.
#
#   examples/batch-cron.sh accounts.csv [more btsx batch options, e.g. --accounts 4]
#
# crontab lines (every night at 01:30; every run continues interrupted accounts and copies only
# new mail into finished ones, so running it again and again is the normal use):
#   30 1 * * *  /opt/btsx/examples/batch-cron.sh /etc/btsx/accounts.csv --accounts 4
# Several machines sharing the work: the same line on each, with its own shard, and STATE_DIR
# on a file system they all mount (NFS, ...):
#   30 1 * * *  SHARD=2/3 STATE_DIR=/shared/btsx/state /opt/btsx/examples/batch-cron.sh /etc/btsx/accounts.csv
#
# Without the lock a run that overlaps the previous one would find each account still locked
# by it and report those as failed (exit 6 per account); with it, the newer run does not start.
#
# Settings (environment variables):
#   STATE_DIR  btsx --state-dir, one state file per account  (~/.local/state/btsx/batch)
#   SHARD      K/N: only this machine's share of the rows    ("" = every row)
#   LOG        JSON lines appended here                      ($STATE_DIR/../batch[-shard-K-of-N].jsonl)
#   LOCK       flock(1) lock file                            ($LOG.lock)
#   MAILTO     who is told about failures                    ($USER); "" = print only
#   BTSX       the btsx binary                               (btsx, from $PATH)
#
# Exit code: btsx's (0 every account complete; 1 some account failed or a row of the file is
# unusable; 2 usage error, e.g. the file is unreadable or its header wrong; 130 interrupted);
# 0 when a previous run still holds the lock (that run will report for itself).
set -uo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
CSV=$1
shift

: "${STATE_DIR:=${XDG_STATE_HOME:-$HOME/.local/state}/btsx/batch}"
: "${SHARD:=}"
suffix=${SHARD:+-shard-${SHARD%/*}-of-${SHARD#*/}}
: "${LOG:=$(dirname "$STATE_DIR")/batch$suffix.jsonl}"
: "${LOCK:=$LOG.lock}"
: "${MAILTO=${USER:-$(id -un)}}"
: "${BTSX:=btsx}"

meaning() {
    case $1 in
    0) echo "every account complete" ;;
    1) echo "some accounts failed or some rows of the file are unusable (listed below); the others are done" ;;
    2) echo "usage error: unreadable file, bad header, bad --shard, or --strict and an unusable row" ;;
    130) echo "interrupted by SIGTERM or Ctrl-C; every state is saved, the next run continues" ;;
    *) echo "unexpected exit code $1" ;;
    esac
}

mkdir -p "$STATE_DIR" "$(dirname "$LOG")" "$(dirname "$LOCK")"

exec 9>>"$LOCK"
if ! flock -n 9; then
    echo "btsx batch cron: a previous run still holds $LOCK; not starting another" >&2
    exit 0
fi

errfile=$(mktemp "${TMPDIR:-/tmp}/btsx-batch-cron.XXXXXX")
trap 'rm -f "$errfile"' EXIT

# Where this run's lines start in the log, to quote its summary afterwards.
start_line=1
[[ -f $LOG ]] && start_line=$(($(wc -l <"$LOG") + 1))

shard_args=()
[[ -n $SHARD ]] && shard_args=(--shard "$SHARD")

"$BTSX" batch "$CSV" "${shard_args[@]}" --state-dir "$STATE_DIR" "$@" \
    --json >>"$LOG" 2>"$errfile"
code=$?

if [[ $code -eq 0 ]]; then
    exit 0
fi

summary=$(tail -n "+$start_line" "$LOG" | grep '"type":"batch_summary"' | tail -n 1)
if [[ -n $summary ]] && command -v jq >/dev/null 2>&1; then
    # One line per account that did not complete, then the unusable rows.
    summary=$(printf '%s\n' "$summary" | jq -r '
        "\(.complete) of \(.accounts) accounts complete, \(.failed) not; \(.messages_copied) messages copied",
        (.per_account[] | select(.status != "complete")
            | "  line \(.line): \(.job): \(.status), exit \(.exit_code): \(.error // "\(.messages_failed) messages failed")"),
        (.bad_rows[] | "  line \(.line): unusable row: \(.message)")')
fi

subject="btsx batch $CSV${SHARD:+ (shard $SHARD)}: exit $code ($(meaning "$code"))"
body=$(
    echo "btsx batch $CSV${SHARD:+ --shard $SHARD}"
    echo "exit code $code: $(meaning "$code")"
    echo "state directory: $STATE_DIR"
    echo "event log:       $LOG (lines from $start_line)"
    if [[ -n $summary ]]; then
        echo
        echo "$summary"
    fi
    if [[ -s $errfile ]]; then
        echo
        echo "stderr:"
        tail -n 50 "$errfile"
    fi
    echo
    "$BTSX" status "$STATE_DIR" 2>&1 | head -n 60
)

if [[ -n $MAILTO ]] && command -v mail >/dev/null 2>&1; then
    printf '%s\n' "$body" | mail -s "$subject" "$MAILTO"
else
    printf '%s\n\n%s\n' "$subject" "$body"
fi
exit "$code"
