#!/usr/bin/env bash
# A cron wrapper for `btsx migrate`: one run at a time, JSON events appended to a log, mail
# when a run does not end with exit code 0.
#
#   examples/cron.sh SRC DST [more btsx migrate options...]
#
# crontab line (every night at 02:15):
#   15 2 * * *  /path/to/cron.sh imaps://me@old.example.com imaps://me@new.example.com
#
# Settings (environment variables; the defaults suit one job per user):
#   SRC_PASSWORD_FILE  source password, first line    (~/.config/btsx/src.pw, chmod 600)
#   DST_PASSWORD_FILE  destination password           (~/.config/btsx/dst.pw, chmod 600)
#   STATE              btsx state file                (~/.local/state/btsx/cron.json)
#   LOG                JSON lines appended here       (~/.local/state/btsx/cron.jsonl)
#   LOCK               flock(1) lock file             ($STATE.cron-lock)
#   MAILTO             who is told about failures     ($USER); "" = print only
#   BTSX               the btsx binary                (btsx, from $PATH)
#
# Exit code: btsx's (see the table in the README); 0 when a previous run still holds the lock
# (that run will report for itself).
set -uo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi

: "${SRC_PASSWORD_FILE:=$HOME/.config/btsx/src.pw}"
: "${DST_PASSWORD_FILE:=$HOME/.config/btsx/dst.pw}"
: "${STATE:=${XDG_STATE_HOME:-$HOME/.local/state}/btsx/cron.json}"
: "${LOG:=${XDG_STATE_HOME:-$HOME/.local/state}/btsx/cron.jsonl}"
: "${LOCK:=$STATE.cron-lock}"
: "${MAILTO=${USER:-$(id -un)}}"
: "${BTSX:=btsx}"

# The exit codes of btsx (README, "Exit codes").
meaning() {
    case $1 in
    0) echo "everything copied" ;;
    1) echo "finished, but some messages or folders failed (listed in the summary and the state file)" ;;
    2) echo "usage error: bad arguments, URL, password source or CA file" ;;
    3) echo "connection or TLS failure: unknown host, refused port, timeout, untrusted certificate" ;;
    4) echo "authentication failed" ;;
    5) echo "unusable state file: corrupt, truncated, empty, from a newer btsx, or from another job" ;;
    6) echo "another btsx is running on the same state file" ;;
    7) echo "the destination refused to go on (over quota)" ;;
    8) echo "verify: the destination is missing messages" ;;
    130) echo "interrupted by Ctrl-C or SIGTERM; the state is saved, --resume continues" ;;
    *) echo "unexpected exit code $1" ;;
    esac
}

mkdir -p "$(dirname "$STATE")" "$(dirname "$LOG")" "$(dirname "$LOCK")"

exec 9>>"$LOCK"
if ! flock -n 9; then
    echo "btsx cron: a previous run still holds $LOCK; not starting another" >&2
    exit 0
fi

errfile=$(mktemp "${TMPDIR:-/tmp}/btsx-cron.XXXXXX")
trap 'rm -f "$errfile"' EXIT

# Where this run's lines start in the log, to quote its summary afterwards.
start_line=1
if [[ -f $LOG ]]; then start_line=$(($(wc -l <"$LOG") + 1)); fi

"$BTSX" migrate "$1" "$2" "${@:3}" \
    --src-password-file "$SRC_PASSWORD_FILE" \
    --dst-password-file "$DST_PASSWORD_FILE" \
    --state "$STATE" \
    --json >>"$LOG" 2>"$errfile"
code=$?

if [[ $code -eq 0 ]]; then
    exit 0
fi

summary=$(tail -n "+$start_line" "$LOG" | grep '"type":"summary"' | tail -n 1)
if [[ -n $summary ]] && command -v jq >/dev/null 2>&1; then
    summary=$(printf '%s\n' "$summary" | jq '{status, error, messages_total, messages_copied, messages_failed, failures: .failures[:20]}')
fi

subject="btsx migrate $1 -> $2 failed: exit $code ($(meaning "$code"))"
body=$(
    echo "btsx migrate $1 -> $2"
    echo "exit code $code: $(meaning "$code")"
    echo "state file: $STATE"
    echo "event log:  $LOG (lines from $start_line)"
    if [[ -n $summary ]]; then
        echo
        echo "summary:"
        echo "$summary"
    fi
    if [[ -s $errfile ]]; then
        echo
        echo "stderr:"
        tail -n 50 "$errfile"
    fi
    if [[ $code -eq 1 || $code -eq 130 ]]; then
        echo
        echo "The next run continues where this one stopped."
    fi
)

if [[ -n $MAILTO ]] && command -v mail >/dev/null 2>&1; then
    printf '%s\n' "$body" | mail -s "$subject" "$MAILTO"
else
    printf '%s\n\n%s\n' "$subject" "$body"
fi
exit "$code"
