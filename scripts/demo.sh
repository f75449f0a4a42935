#!/usr/bin/env bash
# A demo migration between two throw-away local Dovecot servers, with the live display.
# Installs what it needs (Debian), generates a mailbox, runs btsx, stops the servers.
#   scripts/demo.sh [--messages N] [any extra btsx migrate options, e.g. --json]
set -euo pipefail
cd "$(dirname "$0")/.."

messages=2000
if [[ "${1:-}" == "--messages" ]]; then messages=$2; shift 2; fi

need() { command -v "$1" >/dev/null 2>&1; }
if ! need dovecot || ! need python3 || ! need openssl; then
  echo "→ Installing dovecot-imapd, python3, openssl (apt-get)…" >&2
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  # Never let the package start the system Dovecot service: the demo runs private ones.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d; created_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dovecot-imapd python3 openssl >/dev/null
  [[ $created_policy -eq 1 ]] && $sudo rm -f /usr/sbin/policy-rc.d
fi

echo "→ Building btsx (release)…" >&2
cargo build --release --quiet

work=$(mktemp -d /tmp/btsx-demo.XXXXXX)
chmod 755 "$work"  # Dovecot's unprivileged processes must reach their files
cleanup() {
  scripts/testserver.sh stop "$work/src" >/dev/null 2>&1 || true
  scripts/testserver.sh stop "$work/dst" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(scripts/testserver.sh start "$work/src" --separator / --user alice:alice-pw | sed 's/^/SRC_/')"
eval "$(scripts/testserver.sh start "$work/dst" --separator . --user bob:bob-pw | sed 's/^/DST_/')"
echo "→ Generating $messages messages on the source…" >&2
python3 scripts/genmail.py --port "$SRC_IMAP_PORT" --user alice --password alice-pw \
  --seed 1 --messages "$messages" >/dev/null

BTSX_SRC_PASSWORD=alice-pw BTSX_DST_PASSWORD=bob-pw \
  target/release/btsx migrate \
    "imaps://alice@localhost:$SRC_IMAPS_PORT" "imaps://bob@localhost:$DST_IMAPS_PORT" \
    --ca-file "$SRC_CA_FILE" --state "$work/state.json" "$@"
