#!/usr/bin/env bash
# `list opstatus` latency on mon's client port: keepmon vs Debian's mon, same
# mon.cf, same machine, same run. See bench/monproto/README.md.
# Usage: bench/monproto/run.sh [--quick]
#
# Environment (defaults in brackets):
#   SERVICES [100]   services in the mon.cf (one line each in list opstatus)
#   ROUNDS [3]       interleaved rounds      COUNT [300]   requests per measurement
#   IDLE [1000]      idle connections held open in the second phase
#   LOGINS [20]      known and unknown users timed in the login phase (0: skip)
#   SKIP_BUILD [0]   use the existing target/release/keepmon
#   KEEP [0]         keep the temp dir (configs, daemon logs)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SERVICES=${SERVICES:-100}
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-300}
IDLE=${IDLE:-1000}
LOGINS=${LOGINS:-20}
if [[ ${1:-} == --quick ]]; then
    ROUNDS=1 COUNT=100
elif [[ -n ${1:-} ]]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
MON=/usr/sbin/mon
KEEPMON=$ROOT/target/release/keepmon
[[ -x $MON ]] || { echo "run.sh: Debian's mon is not installed (apt-get install mon)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn | sed 's/unlimited/65536/')" 2>/dev/null || true

WORK=$(mktemp -d /tmp/keepmon-bench-monproto.XXXXXX)
PIDS=()
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "== cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
fi

read -r MON_PORT MON_TRAP KM_PORT KM_TRAP TARGET < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

# One mon.cf body for both daemons: SERVICES services, each a tcp check of a
# closed port every 60 s and no alerts, so `list opstatus` has SERVICES lines.
body() {
    echo "hostgroup local 127.0.0.1"
    echo
    echo "watch local"
    for i in $(seq "$SERVICES"); do
        printf '    service s%03d\n        description service number %d\n        interval 60s\n        monitor tcp.monitor -p %d -t 2\n' "$i" "$i" "$TARGET"
    done
}
printf 'command section\nlist: all\nprotid: all\nquit: all\n' >"$WORK/auth.cf"
# The login phase's users: ann0..annN, each with its own SHA-512 crypt hash.
python3 -c '
import crypt, sys
for i in range(max(1, int(sys.argv[1]))):
    print(f"ann{i}:" + crypt.crypt(f"secret{i}", crypt.mksalt(crypt.METHOD_SHA512)))
' "$LOGINS" >"$WORK/userfile" 2>/dev/null || {
    # Python 3.13 dropped the crypt module: openssl writes the same hashes.
    for i in $(seq 0 $((LOGINS > 0 ? LOGINS - 1 : 0))); do
        echo "ann$i:$(openssl passwd -6 "secret$i")"
    done >"$WORK/userfile"
}
for d in mon keepmon; do
    mkdir -p "$WORK/$d/state" "$WORK/$d/log"
    port=$MON_PORT trap_port=$MON_TRAP
    [[ $d == keepmon ]] && port=$KM_PORT trap_port=$KM_TRAP
    {
        echo "alertdir = /usr/lib/mon/alert.d"
        echo "mondir = /usr/lib/mon/mon.d"
        echo "statedir = $WORK/$d/state"
        echo "logdir = $WORK/$d/log"
        echo "authfile = $WORK/auth.cf"
        echo "pidfile = $WORK/$d/state/$d.pid"
        echo "serverbind = 127.0.0.1"
        echo "serverport = $port"
        echo "trapport = $trap_port"
        echo "cltimeout = 10m"
        echo "authtype = userfile"
        echo "userfile = $WORK/userfile"
        echo
        body
    } >"$WORK/$d.cf"
done

echo "== keepmon $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?') (target/release), mon $(dpkg-query -W -f='${Version}' mon 2>/dev/null || echo '?')"
echo "== $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $SERVICES services; $ROUNDS round(s) of $COUNT requests; $IDLE idle connections in phase 2"
"$MON" -c "$WORK/mon.cf" -b /usr/lib/mon -A "$WORK/auth.cf" -L "$WORK/mon/log" -D "$WORK/mon/state" \
    -P "$WORK/mon/state/mon.pid" -p "$MON_PORT" -t "$MON_TRAP" >"$WORK/mon.log" 2>&1 &
PIDS+=($!)
"$KEEPMON" start -c "$WORK/keepmon.cf" >"$WORK/keepmon.log" 2>&1 &
PIDS+=($!)
for port in "$MON_PORT" "$KM_PORT"; do
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
        sleep 0.2
    done
done
timeout 1800 python3 "$HERE/measure.py" --daemon "keepmon=$KM_PORT" --daemon "mon=$MON_PORT" \
    --rounds "$ROUNDS" --count "$COUNT" --idle "$IDLE" --logins "$LOGINS" 2>"$WORK/measure.jsonl" || {
    echo "run.sh: measuring failed" >&2; tail -20 "$WORK/measure.jsonl" "$WORK/mon.log" "$WORK/keepmon.log" >&2; exit 1; }
