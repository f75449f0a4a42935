#!/usr/bin/env bash
# The one test command: formatting, lints and every test against real,
# private Dovecot and Cyrus IMAP instances. Works on a fresh Debian machine (as
# root it installs dovecot-imapd, python3, openssl and Cyrus (see
# scripts/cyrus-server.sh install) if missing, without ever starting the
# system Dovecot or Cyrus service).
#
#   scripts/test.sh            # TEST_THREADS=n to change test parallelism (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test.sh: $*" >&2; }

# --- prerequisites -----------------------------------------------------------

apt_updated=0
policy_created=0
POLICY=/usr/sbin/policy-rc.d

drop_policy() {
    if [[ $policy_created -eq 1 ]]; then
        rm -f "$POLICY"
        policy_created=0
    fi
}

need_pkg() { # CHECK-COMMAND PACKAGE
    if command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        log "$1 is missing: install the Debian package $2 (as root: apt-get install $2)"
        exit 1
    fi
    log "installing $2"
    if [[ ! -e $POLICY ]]; then
        # keep the package's service from starting (invoke-rc.d honours this)
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"
        chmod 0755 "$POLICY"
        policy_created=1
    fi
    if [[ $apt_updated -eq 0 ]]; then
        apt-get update
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$2"
    drop_policy
}

RUNDIR=""
cleanup() {
    local rc=$?
    drop_policy
    if [[ -n $RUNDIR && -d $RUNDIR ]]; then
        # Stop any Dovecot a test left behind: each instance's DIR lives under
        # this run's private TMPDIR, so other runs' servers are never touched.
        local p cmd dir n=0
        for p in /proc/[0-9]*; do
            cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
            [[ $cmd == *" -c $RUNDIR/"*/dovecot.conf* ]] || continue
            dir=${cmd#* -c }
            dir=${dir%/dovecot.conf*}
            bash scripts/testserver.sh stop "$dir" >/dev/null 2>&1 || kill -KILL "${p#/proc/}" 2>/dev/null || true
            n=$((n + 1))
        done
        if [[ $n -gt 0 ]]; then
            log "stopped $n leftover test Dovecot instance(s)"
        fi
        # The same for Cyrus: a master started with DIR/cyrus.conf under this run.
        n=0
        for p in /proc/[0-9]*; do
            cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
            [[ $cmd == *" -M $RUNDIR/"*/cyrus.conf* ]] || continue
            dir=${cmd#* -M }
            dir=${dir%/cyrus.conf*}
            bash scripts/cyrus-server.sh stop "$dir" >/dev/null 2>&1 || kill -KILL "${p#/proc/}" 2>/dev/null || true
            n=$((n + 1))
        done
        if [[ $n -gt 0 ]]; then
            log "stopped $n leftover test Cyrus instance(s)"
        fi
        rm -rf "$RUNDIR"
    fi
    exit "$rc"
}
trap cleanup EXIT

need_pkg dovecot dovecot-imapd
need_pkg python3 python3
need_pkg openssl openssl
need_pkg pkg-config pkg-config
# native-tls builds against OpenSSL's headers (a library, so no command to look for).
if ! pkg-config --exists openssl 2>/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        log "OpenSSL headers are missing: install the Debian package libssl-dev"
        exit 1
    fi
    log "installing libssl-dev"
    if [[ $apt_updated -eq 0 ]]; then
        apt-get update
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y libssl-dev
fi
# Cyrus IMAP, the second real server: packages plus a private imapd (cyrus-imapd
# itself conflicts with dovecot-imapd); as root it installs what is missing, with
# the same policy-rc.d guard. Without Cyrus the Cyrus tests would fail: stop here.
bash scripts/cyrus-server.sh install
command -v cargo >/dev/null || {
    log "cargo is missing: install Rust (https://rustup.rs)"
    exit 1
}

# --- checks ------------------------------------------------------------------

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets -- -D warnings

# Tests start their own Dovecot instances (tests/support, scripts/testserver.sh);
# their directories go under a private TMPDIR so leftovers can be found.
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/btsx-test-run.XXXXXX")
chmod 0755 "$RUNDIR" # as root, Dovecot's unprivileged processes must traverse it
threads=${TEST_THREADS:-2}
log "cargo test (--test-threads=$threads)"
# Output is kept to add up the counts: cargo prints one "test result" per test binary and the
# last one (an empty target) says "0 passed", which is not the run's result.
results=$RUNDIR/cargo-test.log
set +e
TMPDIR=$RUNDIR cargo test --all-targets -- --test-threads="$threads" 2>&1 | tee "$results"
status=${PIPESTATUS[0]}
set -e
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { printf "%d passed, %d failed", p, f }' "$results")
if [[ $status -ne 0 ]]; then
    log "cargo test failed (exit $status)"
else
    log "all good"
fi
echo "btsx: $totals"
exit "$status"
