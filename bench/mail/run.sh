#!/usr/bin/env bash
# Mail outbox drain: N alerts queued while the SMTP relay is down, then it comes back.
# See bench/mail/README.md. Usage: bench/mail/run.sh [--quick]
#
# Environment (defaults in brackets):
#   N [1000]          mail alerts queued    RUNS [3]   runs (medians are printed)
#   SKIP_BUILD [0]    use the existing target/release/keepmon
#   KEEPMON [-]       measure this keepmon binary instead (no build)
#   KEEP [0]          keep the temp dir (configs, daemon logs, received mail)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${N:-1000}
RUNS=${RUNS:-3}
if [[ ${1:-} == --quick ]]; then
    N=200 RUNS=1
elif [[ -n ${1:-} ]]; then
    sed -n '2,9p' "$0" >&2
    exit 2
fi
PYTHON=/usr/bin/python3
SERVER=$ROOT/tests/common/smtp_server.py
"$PYTHON" -c 'import aiosmtpd' 2>/dev/null || {
    echo "run.sh: Debian's python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)" >&2
    exit 1
}
if [[ -n ${KEEPMON:-} ]]; then
    SKIP_BUILD=1
else
    KEEPMON=$ROOT/target/release/keepmon
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/keepmon-bench-mail.XXXXXX)
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench/mail: $N alerts queued with the relay down, then it comes back; $RUNS run(s)"
echo "keepmon: $KEEPMON ($(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "relay: Debian python3-aiosmtpd on 127.0.0.1 (tests/common/smtp_server.py)"
: > "$WORK/results.jsonl"
for run in $(seq "$RUNS"); do
    timeout 900 "$PYTHON" "$HERE/measure.py" "$KEEPMON" "$WORK/run$run" "$N" "$SERVER" "$PYTHON" \
        | tee -a "$WORK/results.jsonl"
done
"$PYTHON" "$HERE/report.py" < "$WORK/results.jsonl"
