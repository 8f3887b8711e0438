#!/usr/bin/env bash
# How compile time and memory grow with the size of a mon.cf: `keepmon
# check-config` of N hostgroups and N watches, for growing N, medians of RUNS
# runs, and the ratio of each size's time to the previous one (4x the watches
# should cost about 4x the time: linear, not 16x). See README.md.
# Usage: bench/compile/run.sh [--quick]
#
# Environment (defaults in brackets):
#   SIZES ["1000 4000 16000 64000"]   watches per mon.cf
#   RUNS [3]                          runs per size (the median is reported)
#   SKIP_BUILD [0]                    use the existing target/release/keepmon
#   KEEP [0]                          keep the temp dir with the mon.cf files
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZES=${SIZES:-"1000 4000 16000 64000"}
RUNS=${RUNS:-3}
if [[ ${1:-} == --quick ]]; then
    SIZES="1000 4000" RUNS=1
elif [[ -n ${1:-} ]]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
KEEPMON=$ROOT/target/release/keepmon
[[ -x /usr/bin/time ]] || { echo "run.sh: needs GNU time (apt-get install time)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/keepmon-bench-compile.XXXXXX)
cleanup() { if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "== cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
fi

# The shape of a large site's mon.cf: one hostgroup per watch, one tcp
# service each with a period and a mail alert.
write_cf() {
    local n=$1 i
    {
        for ((i = 0; i < n; i++)); do echo "hostgroup g$i 127.0.$((i / 250 % 250)).$((i % 250 + 1))"; done
        for ((i = 0; i < n; i++)); do
            printf '\nwatch g%d\n    service tcp\n        interval 1m\n        monitor tcp.monitor -p 80\n        period wd {Sun-Sat}\n            alert mail.alert root@localhost\n            alertevery 1h\n' "$i"
        done
    } >"$WORK/mon-$n.cf"
}

echo "== keepmon $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?') (target/release); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %12s %14s %12s\n' watches "file MB" "median s" "x previous" "max RSS MB"
prev=""
for n in $SIZES; do
    write_cf "$n"
    times=() rss=()
    for ((r = 0; r < RUNS; r++)); do
        /usr/bin/time -f '%e %M' -o "$WORK/time" "$KEEPMON" check-config -c "$WORK/mon-$n.cf" >"$WORK/out" 2>&1 || {
            echo "run.sh: check-config failed for $n watches:" >&2; tail -5 "$WORK/out" >&2; exit 1; }
        read -r secs kb <"$WORK/time"
        times+=("$secs") rss+=("$kb")
    done
    median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    t=$(median "${times[@]}") m=$(median "${rss[@]}")
    size=$(du -m "$WORK/mon-$n.cf" | cut -f1)
    ratio="-"
    [[ -n $prev ]] && ratio=$(awk -v a="$t" -v b="$prev" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%8d %10s %12s %14s %12.1f\n' "$n" "$size" "$t" "$ratio" "$(awk -v k="$m" 'BEGIN {print k / 1024}')"
    prev=$t
done
echo "(sizes grow 4x: a ratio near 4 is linear, near 16 quadratic)"
