#!/usr/bin/env bash
# Health-check cost: keepmon vs Debian's mon, same hosts, same machine, same run.
# See bench/checks/README.md. Usage: bench/checks/run.sh [--quick]
#
# Environment (defaults in brackets):
#   SIZES ["1000 10000"]  host counts      RUNS [3]        measurements per daemon and size
#   WARMUP [8]            seconds before   WINDOW [25]     seconds measured
#   FLOOR_RUNS [1]        floor.py runs    RANDSTART [-]   e.g. 1s: spread first runs (both daemons)
#   PORT [17070]          target port on every 127.1.x.y address
#   SKIP_BUILD [0]        use the existing target/release/keepmon
#   KEEPMON [-]           measure this keepmon binary instead (no build)
#   RESULTS [-]           also copy the raw JSON lines to this file
#   KEEP [0]              keep the temp dir (configs, daemon logs)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZES=${SIZES:-"1000 10000"}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-8}
WINDOW=${WINDOW:-25}
FLOOR_RUNS=${FLOOR_RUNS:-1}
RANDSTART=${RANDSTART:-}
PORT=${PORT:-17070}
if [[ ${1:-} == --quick ]]; then
    SIZES=1000 RUNS=1 WARMUP=4 WINDOW=8
elif [[ -n ${1:-} ]]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi

MON=/usr/sbin/mon
MONDIR=/usr/lib/mon/mon.d
if [[ -n ${KEEPMON:-} ]]; then
    SKIP_BUILD=1
    KEEPMON_DESC="$KEEPMON"
else
    KEEPMON=$ROOT/target/release/keepmon
    KEEPMON_DESC="$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?') (target/release)"
fi
[[ -x $MON && -x $MONDIR/tcp.monitor ]] || { echo "run.sh: Debian's mon is not installed (apt-get install mon)" >&2; exit 1; }

# 10,000 listening sockets in the listener, up to 10,000 connecting sockets in keepmon.
max=$(ulimit -Hn)
if [[ $max == unlimited || $max -ge 65536 ]]; then ulimit -n 65536; else ulimit -n "$max"; fi
for n in $SIZES; do
    if (( $(ulimit -n) < n + 1000 )); then
        echo "run.sh: open-file limit $(ulimit -n) is too low for $n hosts (need $((n + 1000)))" >&2
        exit 1
    fi
done

WORK=$(mktemp -d /tmp/keepmon-bench-checks.XXXXXX)
LISTENER_PID=""
DAEMON_PID=""
MEASURE_PID=""

# Stop one process we started: TERM, up to 10 s, then KILL; reap it.
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

# Three free ports on 127.0.0.1 for mon's client and trap ports and keepmon's metrics.
read -r MON_PORT TRAP_PORT METRICS_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

echo "== keepmon $KEEPMON_DESC, mon $(dpkg-query -W -f='${Version}' mon 2>/dev/null || $MON -v)"
RESULTS_FILE=$WORK/results.jsonl
: >"$RESULTS_FILE"
started=$SECONDS
echo "== $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); sizes: $SIZES; $RUNS run(s) per daemon, $FLOOR_RUNS of floor.py; warm-up ${WARMUP}s, window ${WINDOW}s${RANDSTART:+, randstart $RANDSTART}"

run_one() {
    local daemon=$1 n=$2 run=$3 dir=$4
    local log=$dir/$daemon.run$run.log
    case $daemon in
        keepmon) "$KEEPMON" start -c "$dir/keepmon.cf" >"$log" 2>&1 & ;;
        mon) "$MON" -c "$dir/mon.cf" -B "$dir" -b /usr/lib/mon -s "$MONDIR" -a /usr/lib/mon/alert.d \
                 -A "$dir/auth.cf" -L "$dir/mon/log" -D "$dir/mon/state" -P "$dir/mon/state/mon.pid" \
                 -p "$MON_PORT" -t "$TRAP_PORT" >"$log" 2>&1 & ;;
        floor) python3 "$HERE/floor.py" --hosts "$n" --port "$PORT" >"$log" 2>&1 & ;;
    esac
    DAEMON_PID=$!
    # In the background, so that a TERM to this script is handled at once (bash runs
    # traps between commands, and `wait` is interruptible, a foreground child is not).
    # measure.py waits at most 30 s for the daemon to answer; timeout bounds the rest.
    timeout $((WARMUP + WINDOW + 60)) python3 "$HERE/measure.py" --daemon "$daemon" --pid "$DAEMON_PID" --hosts "$n" --run "$run" \
        --listen-status "$WORK/listen.status" --metrics-port "$METRICS_PORT" --mon-port "$MON_PORT" \
        --warmup "$WARMUP" --window "$WINDOW" >>"$RESULTS_FILE" &
    MEASURE_PID=$!
    if ! wait "$MEASURE_PID"; then
        echo "run.sh: measuring $daemon failed; its log:" >&2
        tail -20 "$log" >&2
        exit 1
    fi
    MEASURE_PID=""
    stop "$DAEMON_PID"
    DAEMON_PID=""
}

for n in $SIZES; do
    dir=$WORK/n$n
    mkdir -p "$dir"
    python3 "$HERE/mkconf.py" --dir "$dir" --hosts "$n" --port "$PORT" \
        --mon-port "$MON_PORT" --trap-port "$TRAP_PORT" --metrics-port "$METRICS_PORT" \
        ${RANDSTART:+--randstart "$RANDSTART"}
    "$KEEPMON" check-config -c "$dir/keepmon.cf" >"$dir/check-config.out" 2>&1 \
        || { cat "$dir/check-config.out" >&2; exit 1; }

    echo "== $n hosts, $((n / 100)) services of 100 hosts, tcp connect every 1 s"
    rm -f "$WORK/listen.status"
    python3 "$HERE/listen.py" --count "$n" --port "$PORT" --status "$WORK/listen.status" &
    LISTENER_PID=$!
    for _ in $(seq 300); do
        [[ -s $WORK/listen.status ]] && break
        kill -0 "$LISTENER_PID" 2>/dev/null || { echo "run.sh: listener failed" >&2; exit 1; }
        sleep 0.1
    done
    [[ -s $WORK/listen.status ]] || { echo "run.sh: listener not ready" >&2; exit 1; }

    for run in $(seq "$RUNS"); do
        # Alternate the order so drift in machine load hits both daemons alike.
        if (( run % 2 )); then order="keepmon mon"; else order="mon keepmon"; fi
        for daemon in $order; do
            run_one "$daemon" "$n" "$run" "$dir"
        done
    done
    for run in $(seq "$FLOOR_RUNS"); do
        run_one floor "$n" "$run" "$dir"
    done
    stop "$LISTENER_PID"
    LISTENER_PID=""
done

echo
echo "== results ($((SECONDS - started)) s)"
python3 "$HERE/report.py" "$RESULTS_FILE"
if [[ -n ${RESULTS:-} ]]; then cp "$RESULTS_FILE" "$RESULTS"; echo "raw results: $RESULTS"; fi
