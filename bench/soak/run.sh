#!/usr/bin/env bash
# The fault soak: a keepmon director pair, three nginx backends, an SMTP server and
# clients in network namespaces, under seeded random faults; invariants checked at
# the end and printed as a PASS/FAIL table. See bench/soak/README.md.
# Usage: bench/soak/run.sh [--ci] [--clock-jump]
#
#   --ci            2 minutes, the same invariants (what tests/soak.rs runs)
#   --clock-jump    also jump the wall clock by +-30 s (date -s: this changes the
#                   HOST's clock for everyone; off by default, never in CI)
# Environment (defaults in brackets):
#   DURATION [1800]  seconds of faults and traffic (--ci: 120)
#   SEED [random]    the fault injector's seed (printed; rerun with it)
#   KEEPMON [-]      this keepmon binary (default: target/debug/keepmon, built with cargo build)
#   KEEP [0]         1: keep the work directory (logs, capture, mailbox) afterwards
#   FAULTS [all]     only these fault kinds, comma-separated (e.g. flood,master_kill)
# Needs root, iproute2 (ip, tc), nginx, tcpdump, curl, python3-aiosmtpd; wrk if installed.
# Exit status: 0 all invariants passed, 1 one failed, 2 usage or missing tools.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-1800}
CLOCK=""
for arg in "$@"; do
    case $arg in
        --ci) DURATION=120 ;;
        --clock-jump) CLOCK=--clock-jump ;;
        *) sed -n '2,17p' "$0" >&2; exit 2 ;;
    esac
done
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
(( EUID == 0 )) || { echo "run.sh: needs root (network namespaces, tc, tmpfs mounts)" >&2; exit 2; }
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for tool in ip tc nginx tcpdump curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
if (( ${#missing[@]} )); then
    echo "run.sh: missing: ${missing[*]} (apt-get install iproute2 nginx-light tcpdump curl python3-aiosmtpd wrk)" >&2
    exit 2
fi
command -v wrk >/dev/null || echo "run.sh: wrk is not installed: only the Python client runs" >&2

if [[ -z ${KEEPMON:-} ]]; then
    (cd "$ROOT" && cargo build --quiet)
    KEEPMON=$ROOT/target/debug/keepmon
fi
[[ -x $KEEPMON ]] || { echo "run.sh: no keepmon binary at $KEEPMON" >&2; exit 2; }

WORK=$(mktemp -d /tmp/keepmon-soak.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    # soak.py removes its namespaces and unmounts the state tmpfs itself, also on
    # failure; this catches what a SIGKILL of soak.py would leave.
    for m in "$WORK"/director-*/state; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A private copy: a build during the run cannot swap the binary.
cp "$KEEPMON" "$WORK/keepmon"

echo "keepmon:  $KEEPMON ($(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "SEED=$SEED DURATION=$DURATION ${CLOCK:+(clock jumps on)} work=$WORK"
echo "kernel:   $(uname -r); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
/usr/bin/python3 "$HERE/soak.py" "$WORK/keepmon" "$WORK" "$DURATION" "$SEED" $CLOCK || status=$?
if (( status != 0 )) && [[ ${KEEP:-0} != 1 ]]; then
    # The evidence of a failed run is worth keeping.
    KEEP=1
fi
exit "$status"
