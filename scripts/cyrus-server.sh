#!/usr/bin/env bash
# Private Cyrus IMAP instances for tests: the second real server of the suite.
# Never touches the system Cyrus (no systemd, no /etc/imapd.conf, no /var/lib/cyrus,
# no /var/spool/cyrus): every file of an instance lives in its DIR.
#
#   scripts/cyrus-server.sh install
#     As root: installs cyrus-common, cyrus-admin and sasl2-bin (no service is
#     started), then unpacks the imapd binary from the cyrus-imapd .deb of the
#     same version into $CYRUS_CACHE (default target/cyrus/VERSION). cyrus-imapd
#     itself conflicts with dovecot-imapd, so it is never installed. Reruns
#     with everything in place do nothing.
#
#   scripts/cyrus-server.sh start DIR [--user NAME:PASSWORD]...
#       [--admin NAME:PASSWORD] [--extra-conf FILE] [--owner-pid PID]
#     Writes DIR/imapd.conf, DIR/cyrus.conf, a private sasldb (DIR/sasldb2) and
#     the spool, starts Cyrus's master on two free 127.0.0.1 ports (imap with
#     STARTTLS, imaps; tests/fixtures certificates), creates every user's INBOX
#     (user.NAME, as the admin) and prints, for eval "$(...)":
#       IMAP_PORT=n  IMAPS_PORT=n  CA_FILE=path  DIR=path
#     Classic namespace: INBOX. prefix, separator '.'.
#     --user         default alice:alice-pw (repeatable)
#     --admin        default admin:admin-pw (an IMAP admin: `admins:`)
#     --extra-conf F appended to imapd.conf (later settings win)
#     --owner-pid P  a small watchdog stops the instance once P is gone
#
#   scripts/cyrus-server.sh stop DIR
#     Stops that instance (master and its children) and waits until they are gone.
#
# As root, Cyrus runs as the cyrus user (DIR is handed to it; DIR and its parents
# must be searchable by others). As an ordinary user, everything runs as that
# user (cyrus_user) and only `install` needs root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIXTURES="$ROOT/tests/fixtures"
MARKER=.btsx-cyrus
CYRUS_BIN=/usr/lib/cyrus/bin
REALM=btsx-test

die() {
    echo "cyrus-server.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

if [[ -z ${PYTHON:-} ]]; then
    if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

cyrus_version() { # installed cyrus-common version, or nothing
    dpkg-query -W -f='${Status} ${Version}\n' cyrus-common 2>/dev/null |
        awk '$3 == "installed" { print $4 }'
}

cache_dir() { # VERSION -> where the private imapd of that version lives
    echo "${CYRUS_CACHE:-$ROOT/target/cyrus}/$1"
}

private_imapd() { # the private imapd binary, or nothing
    local v
    v=$(cyrus_version)
    [[ -n $v ]] || return 0
    local f
    f="$(cache_dir "$v")/usr/lib/cyrus/bin/imapd"
    if [[ -x $f ]]; then echo "$f"; fi
}

# --- install -------------------------------------------------------------------

cmd_install() {
    [[ $# -eq 0 ]] || usage
    local need=()
    [[ -x $CYRUS_BIN/master ]] || need+=(cyrus-common)
    command -v cyradm >/dev/null 2>&1 || need+=(cyrus-admin)
    command -v saslpasswd2 >/dev/null 2>&1 || [[ -x /usr/sbin/saslpasswd2 ]] || need+=(sasl2-bin)
    if [[ ${#need[@]} -eq 0 && -n $(private_imapd) ]]; then
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "Cyrus is missing (${need[*]:-private imapd}): run 'scripts/cyrus-server.sh install' as root"
    local policy=/usr/sbin/policy-rc.d policy_created=0
    if [[ ${#need[@]} -gt 0 ]]; then
        echo "cyrus-server.sh: installing ${need[*]}" >&2
        if [[ ! -e $policy ]]; then
            # keep the packages' services from starting (invoke-rc.d honours this)
            printf '#!/bin/sh\nexit 101\n' >"$policy"
            chmod 0755 "$policy"
            policy_created=1
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
        if [[ $policy_created -eq 1 ]]; then
            rm -f "$policy"
            trap - EXIT
        fi
    fi
    local v dest tmp
    v=$(cyrus_version)
    [[ -n $v ]] || die "cyrus-common did not install"
    dest=$(cache_dir "$v")
    if [[ ! -x $dest/usr/lib/cyrus/bin/imapd ]]; then
        echo "cyrus-server.sh: unpacking imapd from cyrus-imapd $v into $dest" >&2
        tmp=$(mktemp -d)
        chmod 0755 "$tmp"
        chown _apt "$tmp" 2>/dev/null || true # apt's sandbox user writes the download here
        if ! (cd "$tmp" && apt-get download "cyrus-imapd=$v"); then
            # package lists may be missing or stale (images often drop them)
            apt-get update
            (cd "$tmp" && apt-get download "cyrus-imapd=$v") || die "cannot download cyrus-imapd=$v"
        fi
        mkdir -p "$dest"
        dpkg -x "$tmp"/cyrus-imapd_*.deb "$dest"
        rm -rf "$tmp"
        chmod -R go+rX "$dest"
    fi
    [[ -x $dest/usr/lib/cyrus/bin/imapd ]] || die "no imapd in the cyrus-imapd package"
}

# --- helpers ---------------------------------------------------------------------

free_ports() { # two distinct free loopback ports
    "$PYTHON" -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0))
b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

alive() { # PID: running and not a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

master_pid() { # DIR -> pid of a live master of that DIR, or nothing
    local pidfile="$1/run/master.pid" pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if alive "$pid" && grep -qa -- "$1/cyrus.conf" "/proc/$pid/cmdline" 2>/dev/null; then
        echo "$pid"
    fi
}

instance_pids() { # DIR -> every live process started with DIR's config
    local p cmd
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        [[ $cmd == *"$1/imapd.conf"* || $cmd == *"$1/cyrus.conf"* ]] || continue
        alive "${p#/proc/}" && echo "${p#/proc/}"
    done
}

wait_ready() { # IMAP_PORT IMAPS_PORT: both ports answer with an IMAP greeting
    "$PYTHON" - "$1" "$2" <<'PY'
import socket, ssl, sys, time
plain, tls = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
deadline = time.monotonic() + 15
def greet(port, wrap):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        if wrap:
            s = ctx.wrap_socket(s)
        s.settimeout(3)
        data = s.recv(4096)
        if not data.startswith(b"* OK"):
            raise OSError("unexpected greeting %r" % data[:80])
while True:
    try:
        greet(plain, False)
        greet(tls, True)
        sys.exit(0)
    except (OSError, ssl.SSLError) as e:
        if time.monotonic() > deadline:
            print("Cyrus not ready after 15 s: %s" % e, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
PY
}

create_inboxes() { # PORT ADMIN PASSWORD USER... : CREATE user.NAME for each
    "$PYTHON" - "$@" <<'PY'
import imaplib, sys
port, admin, pw, users = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
c = imaplib.IMAP4("127.0.0.1", port)
c.login(admin, pw)
for u in users:
    typ, data = c.create("user." + u)
    if typ != "OK" and b"exists" not in b" ".join(d or b"" for d in data).lower():
        sys.exit("CREATE user.%s: %s %r" % (u, typ, data))
c.logout()
PY
}

# --- stop ------------------------------------------------------------------------

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local dir pid i pids
    dir=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
    [[ -e $dir/$MARKER ]] || die "$dir is not a cyrus-server directory"
    pid=$(master_pid "$dir")
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 250; i++)); do # ~5 s
            alive "$pid" || break
            sleep 0.02
        done
    fi
    # Whatever is left (a master that did not stop, services it orphaned): SIGKILL.
    mapfile -t pids < <(instance_pids "$dir")
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$dir/run/master.pid"
    if [[ -s $dir/watchdog.pid ]]; then
        pid=$(<"$dir/watchdog.pid")
        if [[ $pid =~ ^[0-9]+$ && $pid != "${BTSX_WATCHDOG_SELF:-}" ]] &&
            grep -qa -- "$dir" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/watchdog.pid"
    fi
}

# --- start -----------------------------------------------------------------------

cmd_start() {
    [[ $# -ge 1 ]] || usage
    local dir=$1
    shift
    local admin="admin:admin-pw" extra_conf="" owner_pid=""
    local -a users=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --user) users+=("${2:?}"); shift 2 ;;
        --admin) admin=${2:?}; shift 2 ;;
        --extra-conf) extra_conf=${2:?}; shift 2 ;;
        --owner-pid) owner_pid=${2:?}; shift 2 ;;
        -h | --help) usage ;;
        *) die "unknown option: $1" ;;
        esac
    done
    if [[ ${#users[@]} -eq 0 ]]; then users=("alice:alice-pw"); fi
    if [[ -n $extra_conf ]]; then
        [[ -r $extra_conf ]] || die "cannot read --extra-conf $extra_conf"
    fi
    [[ -x $CYRUS_BIN/master ]] || die "Cyrus is not installed: run 'scripts/cyrus-server.sh install' as root"
    local imapd saslpasswd2
    imapd=$(private_imapd)
    [[ -n $imapd ]] || die "no private imapd: run 'scripts/cyrus-server.sh install' as root"
    saslpasswd2=$(command -v saslpasswd2 || echo /usr/sbin/saslpasswd2)
    [[ -x $saslpasswd2 ]] || die "saslpasswd2 is missing (sasl2-bin): run 'scripts/cyrus-server.sh install' as root"

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # cyrus.conf splits commands at spaces
    [[ $dir != *[[:space:]\"]* ]] || die "DIR must not contain spaces or quotes: $dir"
    [[ -z $(master_pid "$dir") ]] || die "an instance is already running in $dir"
    touch "$dir/$MARKER"
    rm -rf "$dir/conf" "$dir/spool"
    mkdir -p "$dir/run" "$dir/spool" "$dir/conf"/{socket,proc,lock,log,db,sieve,ptclient}
    : >"$dir/master.log"

    local owner group
    if [[ $(id -u) -eq 0 ]]; then
        owner=cyrus
        group=$(id -gn cyrus) || die "no cyrus user (is cyrus-common installed?)"
        chmod 0755 "$dir"
        local up=$dir
        while [[ $up != / ]]; do
            up=$(dirname "$up")
            (((8#$(stat -c %a "$up") & 1) != 0)) ||
                die "$up is not searchable by others; as root the cyrus user must reach $dir"
        done
    else
        owner=$(id -un)
        group=$(id -gn)
    fi

    # users and the admin in a private sasldb
    local entry name pw
    rm -f "$dir/sasldb2"
    for entry in "$admin" "${users[@]}"; do
        name=${entry%%:*}
        pw=${entry#*:}
        [[ $entry == *:* && -n $name && $name != *[.\ /]* ]] ||
            die "--user/--admin wants NAME:PASSWORD (no '.', '/' or space in NAME), got $entry"
        printf '%s' "$pw" | "$saslpasswd2" -p -c -f "$dir/sasldb2" -u "$REALM" "$name" ||
            die "saslpasswd2 failed for $name"
    done

    cp "$FIXTURES/server.pem" "$dir/server.pem"
    cp "$FIXTURES/server.key" "$dir/server.key"
    chmod 0600 "$dir/server.key" "$dir/sasldb2"

    local imap_port imaps_port attempt rc=1
    for attempt in 1 2 3 4 5; do
        read -r imap_port imaps_port < <(free_ports)
        {
            echo "# generated by scripts/cyrus-server.sh"
            echo "configdirectory: $dir/conf"
            echo "partition-default: $dir/spool"
            echo "servername: $REALM"
            echo "admins: ${admin%%:*}"
            echo "cyrus_user: $owner"
            echo "cyrus_group: $group"
            # classic namespace: INBOX.x, separator '.'
            echo "altnamespace: no"
            echo "unixhierarchysep: no"
            echo "virtdomains: off"
            echo "allowplaintext: yes"
            echo "sasl_pwcheck_method: auxprop"
            echo "sasl_auxprop_plugin: sasldb"
            echo "sasl_sasldb_path: $dir/sasldb2"
            echo "sasl_mech_list: PLAIN LOGIN"
            echo "tls_server_cert: $dir/server.pem"
            echo "tls_server_key: $dir/server.key"
            echo "tls_sessions_db_path: $dir/conf/tls_sessions.db"
            echo "delete_mode: immediate"
            echo "expunge_mode: immediate"
            echo "syslog_prefix: btsx-cyrus"
            echo "lmtpsocket: $dir/conf/socket/lmtp"
            echo "idlesocket: $dir/conf/socket/idle"
            echo "notifysocket: $dir/conf/socket/notify"
            echo "sievedir: $dir/conf/sieve"
            if [[ -n $extra_conf ]]; then cat "$extra_conf"; fi
        } >"$dir/imapd.conf"
        cat >"$dir/cyrus.conf" <<EOF
# generated by scripts/cyrus-server.sh
START {
  recover cmd="$CYRUS_BIN/ctl_cyrusdb -C $dir/imapd.conf -r"
}
SERVICES {
  imap cmd="$imapd -C $dir/imapd.conf" listen="127.0.0.1:$imap_port" prefork=0
  imaps cmd="$imapd -s -C $dir/imapd.conf" listen="127.0.0.1:$imaps_port" prefork=0
}
EVENTS {
}
DAEMON {
}
EOF
        chmod 0644 "$dir/imapd.conf" "$dir/cyrus.conf"
        chown -R "$owner:$group" "$dir/conf" "$dir/spool" "$dir/run" "$dir/sasldb2" "$dir/server.key" "$dir/server.pem"

        ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
        setsid "$CYRUS_BIN/master" -C "$dir/imapd.conf" -M "$dir/cyrus.conf" -p "$dir/run/master.pid" \
            -L "$dir/master.log" </dev/null >>"$dir/master.log" 2>&1 &
        echo $! >"$dir/run/master.pid"
        if wait_ready "$imap_port" "$imaps_port" 2>>"$dir/master.log"; then
            rc=0
            break
        fi
        cmd_stop "$dir" || true
        grep -qi 'address already in use' "$dir/master.log" || break
    done
    if [[ $rc -ne 0 ]]; then
        echo "cyrus-server.sh: Cyrus failed to start in $dir; master.log follows:" >&2
        cat "$dir/master.log" >&2
        exit 1
    fi
    local names=()
    for entry in "${users[@]}"; do names+=("${entry%%:*}"); done
    if ! create_inboxes "$imap_port" "${admin%%:*}" "${admin#*:}" "${names[@]}" 2>>"$dir/master.log"; then
        cmd_stop "$dir" || true
        echo "cyrus-server.sh: cannot create the users' INBOXes in $dir; master.log follows:" >&2
        cat "$dir/master.log" >&2
        exit 1
    fi

    if [[ -n $owner_pid ]]; then
        # Watchdog: stop this instance once the owner process is gone.
        # shellcheck disable=SC2016 # expanded by the inner bash
        setsid bash -c '
            while kill -0 "$2" 2>/dev/null && [ -e "$0/run/master.pid" ]; do sleep 1; done
            BTSX_WATCHDOG_SELF=$$ bash "$1" stop "$0" >/dev/null 2>&1' \
            "$dir" "$ROOT/scripts/cyrus-server.sh" "$owner_pid" </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/watchdog.pid"
    fi

    printf 'IMAP_PORT=%s\nIMAPS_PORT=%s\nCA_FILE=%q\nDIR=%q\n' \
        "$imap_port" "$imaps_port" "$FIXTURES/ca.pem" "$dir"
}

[[ $# -ge 1 ]] || usage
sub=$1
shift
case $sub in
install) cmd_install "$@" ;;
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
*) usage ;;
esac
