#!/usr/bin/env bash
# Private Dovecot instances for tests and benchmarks. Never touches the system
# Dovecot (no systemd, no /etc/dovecot, no /run/dovecot, no /var/lib/dovecot).
#
#   scripts/testserver.sh start DIR [--separator /|.] [--ns-prefix PREFIX]
#       [--quota SIZE] [--max-mail-size SIZE] [--untrusted-cert]
#       [--user NAME:PASSWORD]... [--special-use 'NAME=\Flag']...
#       [--extra-conf FILE] [--owner-pid PID]
#     Writes DIR/dovecot.conf (+ DIR/passwd, DIR/home, DIR/run, DIR/dovecot.log),
#     starts Dovecot on two free 127.0.0.1 ports (imap with STARTTLS, imaps)
#     and prints, for eval "$(...)":
#       IMAP_PORT=n  IMAPS_PORT=n  CA_FILE=path  DIR=path
#     --separator /  maildir LAYOUT=fs, separator '/' (default)
#     --separator .  Maildir++, separator '.'
#     --ns-prefix P  personal namespace prefix (e.g. INBOX. for Courier style)
#     --quota 5M     quota plugin, storage limit -> APPEND fails with [OVERQUOTA]
#     --max-mail-size 1M  quota_max_mail_size -> APPEND fails with [LIMIT];
#                    APPENDLIMIT=<bytes> is advertised via imap_capability
#                    (Dovecot 2.3 does not advertise it by itself)
#     --untrusted-cert  serve a self-signed cert not issued by CA_FILE
#     --user         default alice:alice-pw (no ':' in passwords)
#     --special-use  default for '/': "Sent Messages"=\Sent Drafts=\Drafts
#                    "Deleted Messages"=\Trash Junk=\Junk; for '.': Sent Drafts
#                    Trash Junk Archive (auto = no: shown once the folder exists)
#     --extra-conf F appended to dovecot.conf (later settings win)
#     --owner-pid P  a small watchdog stops the instance once P is gone (the Rust
#                    harness passes the test process, so even a killed test run
#                    does not leak servers)
#
#   scripts/testserver.sh stop DIR
#     Stops that instance and waits until its processes are gone.
#
# As root, mail is owned by nobody:nogroup, login processes run as dovenull and
# internal ones as dovecot (DIR and its parents must be searchable by others).
# As an ordinary user, everything runs as that user (rootless Dovecot).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIXTURES="$ROOT/tests/fixtures"
MARKER=.btsx-testserver

size_bytes() { # Dovecot size (123, 100k, 5M, 1G; 1024-based) -> bytes
    local re='^([0-9]+) *([bBkKmMgGtT])?[bB]?$'
    [[ $1 =~ $re ]] || die "bad size: $1"
    local n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
    case $unit in
    k | K) n=$((n * 1024)) ;;
    m | M) n=$((n * 1024 * 1024)) ;;
    g | G) n=$((n * 1024 * 1024 * 1024)) ;;
    t | T) n=$((n * 1024 * 1024 * 1024 * 1024)) ;;
    esac
    echo "$n"
}

die() {
    echo "testserver.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# A real interpreter, not a version-manager shim (those cost ~0.3 s a call).
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

free_ports() { # two distinct free loopback ports
    "$PYTHON" -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0))
b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

alive() { # PID: running and not a zombie (PID 1 here may reap slowly)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

busy_children() { # PID -> number of live children other than "log"
    local c comm n=0 kids
    if [[ -r /proc/$1/task/$1/children ]]; then
        read -r -a kids <"/proc/$1/task/$1/children" || true
    else
        read -r -a kids < <(ps -o pid= --ppid "$1" | tr '\n' ' ') || true
    fi
    for c in "${kids[@]}"; do
        alive "$c" || continue
        read -r comm 2>/dev/null <"/proc/$c/comm" || continue
        [[ $comm == log ]] || n=$((n + 1))
    done
    echo "$n"
}

kill_children() { # PID: SIGKILL its direct children
    local kids c
    read -r -a kids 2>/dev/null <"/proc/$1/task/$1/children" || true
    for c in "${kids[@]}"; do kill -KILL "$c" 2>/dev/null || true; done
}

master_pid() { # DIR -> pid of a live master, or nothing
    local pidfile="$1/run/master.pid" pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if alive "$pid" && grep -qa -- "$1/dovecot.conf" "/proc/$pid/cmdline" 2>/dev/null; then
        echo "$pid"
    fi
}

wait_ready() { # IMAP_PORT IMAPS_PORT: both ports answer with an IMAP greeting
    "$PYTHON" - "$1" "$2" <<'PY'
import socket, ssl, sys, time
plain, tls = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
deadline = time.monotonic() + 10
def greet(port, wrap):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        if wrap:
            s = ctx.wrap_socket(s)
        s.settimeout(2)
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
            print("server not ready after 10 s: %s" % e, file=sys.stderr)
            sys.exit(1)
        time.sleep(0.05)
PY
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local dir pid i
    dir=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
    [[ -e $dir/$MARKER ]] || die "$dir is not a testserver directory"
    pid=$(master_pid "$dir")
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        # The master exits about 2 s after SIGTERM: it keeps its log process a
        # while and then polls. Once every other child is gone (no listener,
        # no session left) and the log process had 0.2 s to drain, finish it.
        local others quiet=0
        for ((i = 0; i < 400; i++)); do # ~10 s
            alive "$pid" || break
            others=$(busy_children "$pid")
            if [[ $others -eq 0 ]]; then
                quiet=$((quiet + 1))
                if [[ $quiet -ge 8 ]]; then
                    kill_children "$pid"
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            fi
            sleep 0.02
        done
        if alive "$pid"; then
            kill_children "$pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        # A killed master leaves its pid file; while PID 1 has not reaped the
        # zombie, a restart in the same DIR would think it is still running.
        rm -f "$dir/run/master.pid"
    fi
    # the watchdog, if any
    if [[ -s $dir/watchdog.pid ]]; then
        pid=$(<"$dir/watchdog.pid")
        if [[ $pid =~ ^[0-9]+$ && $pid != "${BTSX_WATCHDOG_SELF:-}" ]] &&
            grep -qa -- "$dir" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/watchdog.pid"
    fi
}

cmd_start() {
    [[ $# -ge 1 ]] || usage
    local dir=$1
    shift
    local sep=/ ns_prefix="" quota="" max_mail_size="" untrusted=0 extra_conf="" owner_pid=""
    local -a users=() special=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --separator) sep=${2:?}; shift 2 ;;
        --ns-prefix) ns_prefix=${2?}; shift 2 ;;
        --quota) quota=${2:?}; shift 2 ;;
        --max-mail-size) max_mail_size=${2:?}; shift 2 ;;
        --untrusted-cert) untrusted=1; shift ;;
        --user) users+=("${2:?}"); shift 2 ;;
        --special-use) special+=("${2:?}"); shift 2 ;;
        --extra-conf) extra_conf=${2:?}; shift 2 ;;
        --owner-pid) owner_pid=${2:?}; shift 2 ;;
        -h | --help) usage ;;
        *) die "unknown option: $1" ;;
        esac
    done
    [[ $sep == / || $sep == . ]] || die "--separator must be / or ."
    if [[ ${#users[@]} -eq 0 ]]; then users=("alice:alice-pw"); fi
    if [[ ${#special[@]} -eq 0 ]]; then
        if [[ $sep == / ]]; then
            special=('Sent Messages=\Sent' 'Drafts=\Drafts' 'Deleted Messages=\Trash' 'Junk=\Junk')
        else
            special=('Sent=\Sent' 'Drafts=\Drafts' 'Trash=\Trash' 'Junk=\Junk' 'Archive=\Archive')
        fi
    fi
    if [[ -n $extra_conf ]]; then
        [[ -r $extra_conf ]] || die "cannot read --extra-conf $extra_conf"
    fi

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -z $(master_pid "$dir") ]] || die "an instance is already running in $dir"
    touch "$dir/$MARKER"
    mkdir -p "$dir/run" "$dir/state" "$dir/home"
    : >"$dir/dovecot.log"

    local uid mail_user mail_group mail_uid mail_gid rootless
    uid=$(id -u)
    if [[ $uid -eq 0 ]]; then
        rootless=0
        mail_user=nobody
        mail_group=$(getent group nogroup >/dev/null && echo nogroup || echo nobody)
        mail_uid=$(id -u "$mail_user")
        mail_gid=$(getent group "$mail_group" | cut -d: -f3)
        # unprivileged processes (auth as dovecot, mail as nobody) must traverse DIR
        chmod 0755 "$dir"
        local up=$dir
        while [[ $up != / ]]; do
            up=$(dirname "$up")
            (((8#$(stat -c %a "$up") & 1) != 0)) ||
                die "$up is not searchable by others; as root the mail user ($mail_user) must reach $dir"
        done
    else
        rootless=1
        mail_user=$(id -un)
        mail_group=$(id -gn)
        mail_uid=$uid
        mail_gid=$(id -g)
    fi

    # passwd-file: name:{PLAIN}password
    local entry name pw
    : >"$dir/passwd"
    for entry in "${users[@]}"; do
        name=${entry%%:*}
        pw=${entry#*:}
        [[ $entry == *:* && -n $name ]] || die "--user wants NAME:PASSWORD, got $entry"
        [[ $pw != *:* && $name != */* ]] || die "--user $entry: passwd-file cannot hold ':' in a password or '/' in a name"
        printf '%s:{PLAIN}%s\n' "$name" "$pw" >>"$dir/passwd"
        mkdir -p "$dir/home/$name"
    done
    chmod 0644 "$dir/passwd"
    if [[ $rootless -eq 0 ]]; then
        chown -R "$mail_uid:$mail_gid" "$dir/home"
    fi

    local cert key
    if [[ $untrusted -eq 1 ]]; then
        cert=$FIXTURES/untrusted.pem key=$FIXTURES/untrusted.key
    else
        cert=$FIXTURES/server.pem key=$FIXTURES/server.key
    fi

    local mail_location
    if [[ $sep == / ]]; then
        mail_location="maildir:~/Maildir:LAYOUT=fs"
    else
        mail_location="maildir:~/Maildir"
    fi

    local special_conf="" su su_name su_flag
    for su in "${special[@]}"; do
        su_name=${su%=*}
        su_flag=${su##*=}
        [[ $su == *=* && -n $su_name && $su_flag == \\* ]] || die "--special-use wants 'NAME=\\Flag', got $su"
        special_conf+="  mailbox \"${su_name//\"/\\\"}\" {
    auto = no
    special_use = $su_flag
  }
"
    done

    local quota_conf=""
    if [[ -n $quota || -n $max_mail_size ]]; then
        quota_conf="mail_plugins = \$mail_plugins quota
protocol imap {
  mail_plugins = \$mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
"
        if [[ -n $quota ]]; then
            quota_conf+="  quota_rule = *:storage=$quota
"
        fi
        if [[ -n $max_mail_size ]]; then
            quota_conf+="  quota_max_mail_size = $max_mail_size
"
        fi
        quota_conf+="}"
        if [[ -n $max_mail_size ]]; then
            # Dovecot 2.3 enforces quota_max_mail_size (NO [LIMIT]) but has no
            # APPENDLIMIT support of its own: advertise it (RFC 7889) explicitly.
            # Override with "imap_capability =" in --extra-conf to hide it.
            quota_conf+="
imap_capability = +APPENDLIMIT=$(size_bytes "$max_mail_size")"
        fi
    fi

    local rootless_conf=""
    if [[ $rootless -eq 1 ]]; then
        rootless_conf="default_internal_user = $mail_user
default_internal_group = $mail_group
default_login_user = $mail_user
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service auth-worker {
  user = \$default_internal_user
}"
    fi

    local attempt imap_port imaps_port rc=1
    for ((attempt = 1; attempt <= 3; attempt++)); do
        read -r imap_port imaps_port < <(free_ports)
        cat >"$dir/dovecot.conf" <<CONF
# Generated by scripts/testserver.sh -- private test instance, not the system Dovecot.
instance_name = btsx-test-$imap_port
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
debug_log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes

$rootless_conf

first_valid_uid = $mail_uid
last_valid_uid = $mail_uid
first_valid_gid = $mail_gid
last_valid_gid = $mail_gid

disable_plaintext_auth = no
auth_verbose = yes
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dir/home/%u
}

ssl = yes
ssl_cert = <$cert
ssl_key = <$key
ssl_dh = <$FIXTURES/dh.pem

mail_location = $mail_location
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = $sep
  prefix = $ns_prefix
$special_conf}

# benchmark-friendly limits
mail_max_userip_connections = 200
default_process_limit = 300
default_client_limit = 2000
default_vsz_limit = 1G
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}
service imap {
  process_limit = 300
}
service auth {
  client_limit = 4000
}
service anvil {
  client_limit = 4000
}

$quota_conf
CONF
        if [[ -n $extra_conf ]]; then
            {
                echo
                echo "# --extra-conf $extra_conf"
                cat "$extra_conf"
            } >>"$dir/dovecot.conf"
        fi
        chmod 0644 "$dir/dovecot.conf"

        ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
        if ! /usr/sbin/dovecot -c "$dir/dovecot.conf" 2>>"$dir/dovecot.log"; then
            if grep -q 'Address already in use' "$dir/dovecot.log"; then
                continue
            fi
            break
        fi
        if wait_ready "$imap_port" "$imaps_port" 2>>"$dir/dovecot.log"; then
            rc=0
            break
        fi
        cmd_stop "$dir" || true
        if ! grep -q 'Address already in use' "$dir/dovecot.log"; then
            break
        fi
    done
    if [[ $rc -ne 0 ]]; then
        echo "testserver.sh: Dovecot failed to start in $dir; log follows:" >&2
        cat "$dir/dovecot.log" >&2
        exit 1
    fi

    if [[ -n $owner_pid ]]; then
        # Watchdog: stop this instance once the owner process is gone. Fully
        # detached from our stdout so "$(testserver.sh start ...)" returns.
        # shellcheck disable=SC2016 # expanded by the inner bash
        setsid bash -c '
            while kill -0 "$2" 2>/dev/null && [ -e "$0/run/master.pid" ]; do sleep 1; done
            BTSX_WATCHDOG_SELF=$$ bash "$1" stop "$0" >/dev/null 2>&1' \
            "$dir" "$ROOT/scripts/testserver.sh" "$owner_pid" </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/watchdog.pid"
    fi

    printf 'IMAP_PORT=%s\nIMAPS_PORT=%s\nCA_FILE=%q\nDIR=%q\n' \
        "$imap_port" "$imaps_port" "$FIXTURES/ca.pem" "$dir"
}

[[ $# -ge 1 ]] || usage
sub=$1
shift
case $sub in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
*) usage ;;
esac
