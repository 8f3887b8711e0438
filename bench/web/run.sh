#!/usr/bin/env bash
# What the web page costs: 1,000 services and 100 real servers, the main page
# fetched in a loop (latency, size), then the daemon's CPU idle and while the
# page is fetched every 2 s, as a browser left open would. keepmon alone: no
# other program serves this page. See bench/web/README.md.
# Usage: bench/web/run.sh [--quick]
#
# Environment (defaults in brackets):
#   SERVICES [1000]  services (10% check a closed port, so they fail)
#   REALS [100]      real servers, in virtual services of 10
#   WINDOW [60]      seconds of each CPU measurement
#   SKIP_BUILD [0]   use the existing target/release/keepmon
#   KEEP [0]         keep the temp dir (config, daemon log)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SERVICES=${SERVICES:-1000}
REALS=${REALS:-100}
WINDOW=${WINDOW:-60}
if [[ ${1:-} == --quick ]]; then
    WINDOW=20
elif [[ -n ${1:-} ]]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
KEEPMON=$ROOT/target/release/keepmon

WORK=$(mktemp -d /tmp/keepmon-bench-web.XXXXXX)
PID=
LISTENER=
cleanup() {
    [[ -n $LISTENER ]] && kill "$LISTENER" 2>/dev/null || true
    if [[ -n $PID ]]; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "== cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
fi

python3 "$HERE/measure.py" listen --dir "$WORK" &
LISTENER=$!
for _ in $(seq 50); do [[ -f $WORK/up.port ]] && break; sleep 0.1; done
python3 "$HERE/measure.py" config --dir "$WORK" --services "$SERVICES" --reals "$REALS"
"$KEEPMON" start -c "$WORK/keepmon.toml" 2>"$WORK/daemon.log" &
PID=$!
python3 "$HERE/measure.py" measure --dir "$WORK" --pid "$PID" --window "$WINDOW"
