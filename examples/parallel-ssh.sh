#!/usr/bin/env bash
# One btsx batch spread over several machines with GNU parallel and ssh: with N shards, the
# k-th job runs, on whichever host has a free slot,
#
#   btsx batch accounts.csv --shard k/N --state-dir /shared/btsx/state --json ...
#
# Usage:
#   examples/parallel-ssh.sh accounts.csv [more btsx batch options, e.g. --jobs 2 --ca-file F]
#
# Needs:
#   - GNU parallel here; ssh to every host without prompts (keys); btsx in $PATH on every host.
#   - The same paths on every host for the CSV, the password files its rows name, STATE_DIR and
#     LOG_DIR. STATE_DIR must be one shared file system (NFS, CephFS, ...): then `btsx status
#     STATE_DIR` sees every account, and a later run on any host continues any job.
#     Each row belongs to exactly one shard (a hash of its source URL; adding rows moves no other
#     row), so two hosts never work on the same account; the lock next to every state file
#     also stops an overlapping second run of this script from doing so.
#
# hosts.txt, one ssh login per line as for `parallel --sshloginfile`; "1/" = one shard at a
# time on that host, ":" = this machine without ssh (handy for a trial run):
#   1/btsx@mig1.example.com
#   1/btsx@mig2.example.com
#   1/btsx@mig3.example.com
#
# Settings (environment variables):
#   HOSTS      the ssh login file                          (hosts.txt)
#   SHARDS     N, the number of shards                     (the number of lines in HOSTS)
#   STATE_DIR  the shared state directory                  (/shared/btsx/state)
#   LOG_DIR    one JSON event log per shard, appended      (/shared/btsx/logs)
#   ACCOUNTS   migrations at once per shard                (4)
#   BTSX       btsx on the hosts                           (btsx)
#   JOBLOG     parallel's job log, here                    (./btsx-parallel.joblog)
#
# Exit code: the highest exit code of the shards (0 = every account of every shard complete,
# 1 = some account failed or a row is unusable, 2 = usage error, 130 = interrupted); 255 when a
# shard could not be started at all. Run the script again to continue: finished accounts only
# get their new mail.
set -uo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
CSV=$1
shift

: "${HOSTS:=hosts.txt}"
: "${STATE_DIR:=/shared/btsx/state}"
: "${LOG_DIR:=/shared/btsx/logs}"
: "${ACCOUNTS:=4}"
: "${BTSX:=btsx}"
: "${JOBLOG:=./btsx-parallel.joblog}"

command -v parallel >/dev/null || {
    echo "parallel-ssh.sh: GNU parallel is not installed" >&2
    exit 2
}
[[ -r $HOSTS ]] || {
    echo "parallel-ssh.sh: cannot read the host list $HOSTS" >&2
    exit 2
}
if [[ -z ${SHARDS:-} ]]; then
    SHARDS=$(grep -cEv '^[[:space:]]*(#|$)' "$HOSTS")
fi
[[ $SHARDS =~ ^[1-9][0-9]*$ ]] || {
    echo "parallel-ssh.sh: no hosts in $HOSTS (or SHARDS=$SHARDS is not a number)" >&2
    exit 2
}

# The command each host runs, quoted for its shell; parallel puts the shard number in for {}.
q() { printf '%q ' "$@"; }
log=$(printf '%q' "$LOG_DIR")/shard-{}-of-$SHARDS
remote="mkdir -p $(q "$LOG_DIR")&& $(q "$BTSX" batch "$CSV" --state-dir "$STATE_DIR" \
    --accounts "$ACCOUNTS" --json "$@")--shard {}/$SHARDS >>$log.jsonl 2>>$log.stderr"

echo "btsx: $SHARDS shards of $CSV over the hosts in $HOSTS; events in $LOG_DIR" >&2
# --jobs comes from the "N/" slots in HOSTS; --halt never: one failing shard stops no other.
parallel --sshloginfile "$HOSTS" --halt never --joblog "$JOBLOG" \
    "$remote" ::: $(seq 1 "$SHARDS")

# Per shard: where it ran and how it ended (the job log has one line per shard).
worst=0
while IFS=$'\t' read -r seq host _start runtime _send _recv code signal _cmd; do
    [[ $seq =~ ^[0-9]+$ ]] || continue
    ((signal != 0)) && code=255
    runtime=${runtime//[[:space:]]/}
    echo "shard $seq/$SHARDS on $host: exit $code after ${runtime%%.*} s" >&2
    ((code > worst)) && worst=$code
done <"$JOBLOG"

# Every account of every shard, if the shared directory is mounted here too.
if [[ -d $STATE_DIR ]] && command -v "$BTSX" >/dev/null; then
    "$BTSX" status "$STATE_DIR" >&2
else
    echo "progress of all shards: $BTSX status $STATE_DIR (on any host)" >&2
fi
exit "$worst"
