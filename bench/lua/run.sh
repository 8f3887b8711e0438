#!/usr/bin/env bash
# What one check costs: the same tcp connect check as keepmon's built-in monitor,
# as a Lua monitor (monitors/tcp_port.lua) and as a mon.d exec monitor, 1,000 hosts.
# See bench/lua/README.md. Usage: bench/lua/run.sh [--quick]
#
# Environment (defaults in brackets):
#   HOSTS [1000]       target hosts         PER_GROUP [100]  hosts per service (one run = one group)
#   RUNS [3]           runs per variant     WARMUP [6]       seconds before the window
#   WINDOW [20]        seconds measured     PORT [17170]     target port on every 127.1.x.y
#   SKIP_BUILD [0]     use the existing target/release/keepmon
#   KEEP [0]           keep the temp dir (configs, daemon logs)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CHECKS=$ROOT/bench/checks
HOSTS=${HOSTS:-1000}
PER_GROUP=${PER_GROUP:-100}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-6}
WINDOW=${WINDOW:-20}
PORT=${PORT:-17170}
if [[ ${1:-} == --quick ]]; then
    RUNS=1 WARMUP=4 WINDOW=8
elif [[ -n ${1:-} ]]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
KEEPMON=$ROOT/target/release/keepmon

# The exec variant: Debian's Perl tcp.monitor when mon is installed, else a
# shell script doing the same connects (bash's /dev/tcp), one process per run.
WORK=$(mktemp -d /tmp/keepmon-bench-lua.XXXXXX)
if [[ -x /usr/lib/mon/mon.d/tcp.monitor ]]; then
    MONDIR=/usr/lib/mon/mon.d
    EXEC_MONITOR="tcp.monitor -p $PORT -t 2"
    EXEC_DESC="Debian's /usr/lib/mon/mon.d/tcp.monitor (Perl)"
else
    MONDIR=$WORK/mon.d
    mkdir -p "$MONDIR"
    cat >"$MONDIR/tcpsh.monitor" <<'SH'
#!/bin/bash
# tcpsh.monitor PORT host...: connect to each host; print the failing ones.
port=$1; shift; failed=()
for h in "$@"; do
    if ! timeout 2 bash -c "exec 3<>/dev/tcp/$h/$port" 2>/dev/null; then failed+=("$h"); fi
done
[[ ${#failed[@]} -eq 0 ]] && exit 0
echo "${failed[*]}"; exit 1
SH
    chmod 755 "$MONDIR/tcpsh.monitor"
    EXEC_MONITOR="tcpsh.monitor $PORT"
    EXEC_DESC="a bash script (mon is not installed)"
fi

max=$(ulimit -Hn)
if [[ $max == unlimited || $max -ge 65536 ]]; then ulimit -n 65536; else ulimit -n "$max"; fi

LISTENER_PID=""
DAEMON_PID=""
MEASURE_PID=""
stop() {
    local pid=$1
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$MEASURE_PID"
    stop "$DAEMON_PID"
    stop "$LISTENER_PID"
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "== cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
fi

read -r MON_PORT TRAP_PORT METRICS_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

# One mon.cf per variant: bench/checks' config with the monitor line swapped.
python3 "$CHECKS/mkconf.py" --dir "$WORK" --hosts "$HOSTS" --per-group "$PER_GROUP" --port "$PORT" \
    --mon-port "$MON_PORT" --trap-port "$TRAP_PORT" --metrics-port "$METRICS_PORT"
base=$WORK/keepmon.cf
sed "s|^builtin_monitors = prefer|builtin_monitors = prefer|" "$base" >"$WORK/builtin.cf"
sed -e "s|^builtin_monitors = prefer|builtin_monitors = never\nluadir = $ROOT/monitors|" \
    -e "s|monitor tcp.monitor -p $PORT -t 2|monitor lua:tcp_port port=$PORT timeout=2|" "$base" >"$WORK/lua.cf"
sed -e "s|^builtin_monitors = prefer|builtin_monitors = never|" \
    -e "s|^mondir .*|mondir       = $MONDIR|" \
    -e "s|monitor tcp.monitor -p $PORT -t 2|monitor $EXEC_MONITOR|" "$base" >"$WORK/exec.cf"
for variant in builtin lua exec; do
    "$KEEPMON" check-config -c "$WORK/$variant.cf" >"$WORK/$variant.check" 2>&1 \
        || { cat "$WORK/$variant.check" >&2; exit 1; }
done
for variant in builtin lua exec; do
    printf '   %-8s %s\n' "$variant:" "$(grep -m1 '^ *monitor ' "$WORK/$variant.cf" | sed 's/^ *//')"
done
echo "   (exec runs $EXEC_DESC, one process per service run; builtin_monitors = never)"

python3 "$CHECKS/listen.py" --count "$HOSTS" --port "$PORT" --status "$WORK/listen.status" &
LISTENER_PID=$!
for _ in $(seq 300); do
    [[ -s $WORK/listen.status ]] && break
    kill -0 "$LISTENER_PID" 2>/dev/null || { echo "run.sh: listener failed" >&2; exit 1; }
    sleep 0.1
done
[[ -s $WORK/listen.status ]] || { echo "run.sh: listener not ready" >&2; exit 1; }

echo "== $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $HOSTS hosts in services of $PER_GROUP, every 1 s; $RUNS run(s) per variant, warm-up ${WARMUP}s, window ${WINDOW}s"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for run in $(seq "$RUNS"); do
    # Rotate the order so drift in machine load hits every variant alike.
    case $((run % 3)) in
        1) order="builtin lua exec" ;;
        2) order="lua exec builtin" ;;
        0) order="exec builtin lua" ;;
    esac
    for variant in $order; do
        log=$WORK/$variant.run$run.log
        "$KEEPMON" start -c "$WORK/$variant.cf" >"$log" 2>&1 &
        DAEMON_PID=$!
        timeout $((WARMUP + WINDOW + 60)) python3 "$CHECKS/measure.py" --daemon keepmon --pid "$DAEMON_PID" \
            --hosts "$HOSTS" --per-group "$PER_GROUP" --run "$run" --listen-status "$WORK/listen.status" \
            --metrics-port "$METRICS_PORT" --mon-port "$MON_PORT" --warmup "$WARMUP" --window "$WINDOW" \
            >"$WORK/measure.out" &
        MEASURE_PID=$!
        if ! wait "$MEASURE_PID"; then
            echo "run.sh: measuring $variant failed; its log:" >&2
            tail -20 "$log" >&2
            exit 1
        fi
        MEASURE_PID=""
        python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["variant"]=sys.argv[1]; print(json.dumps(r))' \
            "$variant" <"$WORK/measure.out" >>"$RESULTS"
        stop "$DAEMON_PID"
        DAEMON_PID=""
    done
done
echo
python3 "$HERE/report.py" "$RESULTS"
