#!/usr/bin/env bash
# VRRP failover time: keepmon vs Debian's keepalived 2.2.7, same topology, same run.
# See bench/vrrp/README.md. Usage: bench/vrrp/run.sh [--quick]
#
# Environment (defaults in brackets):
#   RUNS [5]        trials per implementation, mode and advert interval
#   DUAL [100]      randomized failovers of a keepmon pair checked for dual masters
#   SKIP_BUILD [0]  use the existing target/release/keepmon
#   KEEPMON [-]     measure this keepmon binary instead (no build)
#   RESULTS [-]     also copy the raw JSON lines and the table to this file
#   ONLY [-]        only the configurations whose label contains this (v2, v3, 50ms)
# Needs root (network namespaces), iproute2, iputils-ping and keepalived.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-5}
DUAL=${DUAL:-100}
if [[ ${1:-} == --quick ]]; then
    RUNS=1 DUAL=10
elif [[ -n ${1:-} ]]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
(( EUID == 0 )) || { echo "run.sh: needs root (network namespaces, raw sockets)" >&2; exit 1; }
for tool in ip ping keepalived python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install iproute2 iputils-ping keepalived python3)" >&2; exit 1; }
done
if [[ -z ${KEEPMON:-} ]]; then
    KEEPMON=$ROOT/target/release/keepmon
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        (cd "$ROOT" && cargo build --release --quiet)
    fi
fi
[[ -x $KEEPMON ]] || { echo "run.sh: no keepmon binary at $KEEPMON" >&2; exit 1; }
# A copy, so a build started during the run cannot swap the binary.
BIN=$(mktemp -d /tmp/keepmon-bench-vrrp-bin.XXXXXX)
trap 'rm -rf "$BIN"' EXIT
cp "$KEEPMON" "$BIN/keepmon"

echo "keepmon:    $KEEPMON ($(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "keepalived: $(keepalived --version 2>&1 | head -1)"
echo "kernel:     $(uname -r); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); runs=$RUNS dual=$DUAL"
echo
if [[ -n ${RESULTS:-} ]]; then
    python3 "$HERE/failover.py" "$BIN/keepmon" "$RUNS" "$DUAL" | tee "$RESULTS"
else
    python3 "$HERE/failover.py" "$BIN/keepmon" "$RUNS" "$DUAL"
fi
