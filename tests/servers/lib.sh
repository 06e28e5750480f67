# shellcheck shell=bash
# Shared helpers for tests/servers/<name> fixture scripts (sourced, not run).
#
# Conventions used by every fixture script:
#   - everything the instance needs (config, state, logs, pid) lives in DIR;
#   - stdout carries only KEY=VALUE lines; all chatter goes to stderr;
#   - ports are picked from an aligned 16-port block in 20000..32767 (below the
#     kernel's default ephemeral range) whose first port is the instance's main
#     listener: while an instance is up its block's first port is bound, so a
#     second instance can never pick an overlapping block. A global flock
#     serialises "pick ports .. start .. wait for listening" between DIRs.

LVSD_SRV_LOCK=${LVSD_SRV_LOCK:-/tmp/lvsd-test-servers.lock}

# Close what the caller left open beyond stdin/stdout/stderr (a test
# runner's lock file, a pipe): servers and holders started here outlive
# this script, and an inherited lock held by a leftover once blocked every
# `flock` on the machine. (255 is bash's own descriptor for the script.)
for _fd in /proc/$$/fd/*; do
    _fd=${_fd##*/}
    case $_fd in
    0 | 1 | 2 | 255) ;;
    *) eval "exec ${_fd}>&-" 2>/dev/null || true ;;
    esac
done
unset _fd

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# take_lock: hold the global fixture lock on fd 9 until the script exits.
# Any daemon started while it is held must be started with `9>&-`.
take_lock() {
    exec 9>>"$LVSD_SRV_LOCK"
    flock -w 120 9 || die "could not take $LVSD_SRV_LOCK"
}

# ensure_pkgs SERVICE PKG...: install missing Debian packages without letting
# their postinst start (or leave enabled) a system-wide SERVICE.
ensure_pkgs() {
    local service=$1; shift
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    log "installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, written by lvsd tests/servers: no service starts during install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT   # also if we die half-way
    fi
    local apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=300
               -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install)
    local rc=0
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >&2 || {
        log "install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || true
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >&2 || rc=$?
    }
    if [ "$own_policy" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
    [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed (rc=$rc)"

    # Belt and braces: if a system instance got started anyway, stop it, and
    # leave it disabled so that it does not come up on the standard ports.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now "$service.service" "$service.socket" >&2 2>/dev/null || true
    else
        if [ -x "/etc/init.d/$service" ]; then
            if "/etc/init.d/$service" status >/dev/null 2>&1; then
                "/etc/init.d/$service" stop >&2 || true
            fi
        fi
        if command -v update-rc.d >/dev/null; then
            update-rc.d "$service" disable >/dev/null 2>&1 || true
        fi
    fi
}

# pick_block N [PROTOS]: print the base port B of a free aligned block
# (B % 16 == 0) where B..B+N-1 can all be bound on 127.0.0.1. N <= 16.
# PROTOS is "tcp" (default), "udp" or "tcp,udp": the protocols each port must
# be free for (a UDP-only server such as RADIUS holds its block's first port
# only for UDP, so its script must pass "udp" or "tcp,udp").
pick_block() {
    python3 - "$1" "${2:-tcp}" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
kinds = [{'tcp': socket.SOCK_STREAM, 'udp': socket.SOCK_DGRAM}[k]
         for k in sys.argv[2].split(',')]
try:
    lo_eph = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[0])
except Exception:
    lo_eph = 32768
top = min(lo_eph, 32768)
bases = list(range(20000, top - 16 + 1, 16)) or list(range(10000, 20000, 16))
random.shuffle(bases)
for b in bases:
    socks = []
    try:
        for p in range(b, b + n):
            for k in kinds:
                s = socket.socket(socket.AF_INET, k)
                socks.append(s)
                s.bind(('127.0.0.1', p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(b)
    sys.exit(0)
sys.exit('no free port block')
EOF
}

# wait_ports TIMEOUT PORT...: wait until every port accepts a TCP connection.
wait_ports() {
    python3 - "$@" <<'EOF'
import socket, sys, time
deadline = time.time() + float(sys.argv[1])
for p in map(int, sys.argv[2:]):
    while True:
        try:
            socket.create_connection(('127.0.0.1', p), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit('port %d not accepting connections' % p)
            time.sleep(0.1)
EOF
}

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# stop_instance DIR COMM: stop the instance whose pid is in DIR/pid, if that
# pid is still a COMM process; then any process left in its session (the
# daemon is a session leader, so its session is exactly this instance).
stop_instance() {
    local dir=$1 comm=$2 pid
    [ -f "$dir/pid" ] || { log "no $dir/pid: nothing to stop"; return 0; }
    pid=$(cat "$dir/pid")
    case "$pid" in ''|*[!0-9]*) log "bad pid in $dir/pid"; return 0 ;; esac
    if ! alive "$pid" || [ "$(cat /proc/"$pid"/comm 2>/dev/null)" != "$comm" ]; then
        log "pid $pid is not running $comm: already stopped"
        return 0
    fi
    local sid
    sid=$(ps -o sid= -p "$pid" | tr -d ' ')
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    local _
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # Leftovers of this instance (children of a SIGKILLed master, or
    # per-connection children of an FTP server), only if pid led its session.
    if [ "$sid" = "$pid" ]; then
        local left
        left=$(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s {print $1}')
        if [ -n "$left" ]; then
            # shellcheck disable=SC2086 # a list of pids
            kill -CONT $left 2>/dev/null || true
            # shellcheck disable=SC2086
            kill -TERM $left 2>/dev/null || true
            sleep 0.5
            left=$(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s {print $1}')
            # shellcheck disable=SC2086
            if [ -n "$left" ]; then kill -KILL $left 2>/dev/null || true; fi
        fi
    fi
    for _ in $(seq 20); do alive "$pid" || break; sleep 0.1; done
    return 0
}

# make_reachable USER DIR: let the unprivileged USER (the account a daemon
# drops to) reach DIR: adds o+x (search, not listing) to DIR itself, which
# for a tempdir (0700, root) below /tmp is all that is missing. Ancestors are
# never changed: if USER still cannot reach DIR, dies naming the first
# ancestor USER cannot search (e.g. a TMPDIR below /root).
make_reachable() {
    local user=$1 dir=$2 d=/ p parts
    local as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups)
    chmod o+x "$dir"
    "${as[@]}" test -x "$dir" 2>/dev/null && return 0
    IFS=/ read -ra parts <<<"${dir#/}"
    for p in "${parts[@]}"; do
        d=${d%/}/$p
        "${as[@]}" test -x "$d" 2>/dev/null \
            || die "user $user cannot search $d, so cannot reach $dir: use a DIR below /tmp, or make $d searchable"
    done
}
