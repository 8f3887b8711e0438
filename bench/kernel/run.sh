#!/usr/bin/env bash
# Kernel data planes: how fast a table change reaches the kernel, keepmon vs
# the kernel's own tools doing the same change, same run. See README.md.
# Usage: bench/kernel/run.sh [--quick]   (root: namespaces, nftables)
#
# Environment (defaults in brackets):
#   FLIPS [40]    flips each way per run      RUNS [3]   runs per figure
#   KEEPMON [-]   measure this binary (default: build target/release/keepmon)
#   SKIP_IPVS [0] / SKIP_NFT [0]              leave out one half
#   RESULTS [-]   also copy the raw RESULT lines to this file
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FLIPS=${FLIPS:-40}
RUNS=${RUNS:-3}
if [[ ${1:-} == --quick ]]; then FLIPS=10 RUNS=1; fi
if [[ -z ${KEEPMON:-} ]]; then
    (cd "$ROOT" && cargo build --release --bin keepmon)
    KEEPMON=$ROOT/target/release/keepmon
fi
for tool in qemu-system-x86_64 busybox cpio ipvsadm nft ip python3; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
        echo "run.sh: $tool missing (apt-get install qemu-system-x86 busybox-static cpio ipvsadm nftables)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/keepmon-bench-kernel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/results
: > "$OUT"

if [[ ${SKIP_IPVS:-0} != 1 ]]; then
    scen=$WORK/scenario
    mkdir -p "$scen"
    cp "$HERE/vm/scenario.sh" "$scen/scenario.sh"
    sed -i "s/^FLIPS=.*/FLIPS=$FLIPS/; s/^RUNS=.*/RUNS=$RUNS/" "$scen/scenario.sh"
    cat > "$scen/flip.toml" <<TOML
[daemon]
statedir = "/var/lib/keepmon/flip"
[virtual_servers.web]
listen = "10.0.0.1:80"
dataplane = "ipvs"
scheduler = "wrr"
real_servers = [{ addr = "10.0.0.2:80", weight = 3 }, { addr = "10.0.0.3:80", weight = 1 }]
TOML
    {
        printf '[daemon]\nstatedir = "/var/lib/keepmon/big"\n'
        printf '[virtual_servers.web]\nlisten = "10.0.0.1:80"\ndataplane = "ipvs"\nscheduler = "wrr"\nreal_servers = [\n'
        : > "$scen/big.each"
        printf -- '-A -t 10.0.0.1:80 -s wrr\n' > "$scen/big.ipvsadm"
        for port in 80 81 82 83; do
            for host in $(seq 1 250); do
                printf '  { addr = "10.0.0.%s:%s" },\n' "$host" "$port"
                printf -- '-a -t 10.0.0.1:80 -r 10.0.0.%s:%s -m -w 1\n' "$host" "$port" >> "$scen/big.ipvsadm"
                printf -- '-a -t 10.0.0.1:80 -r 10.0.0.%s:%s -m -w 1\n' "$host" "$port" >> "$scen/big.each"
            done
        done
        printf ']\n'
    } > "$scen/big.toml"
    bash "$ROOT/tests/vm/build-initramfs.sh" "$ROOT/target/tmp/vm-cache" "$WORK/vm" "$KEEPMON" "$scen" >/dev/null
    echo "booting the IPVS VM (QEMU TCG; FLIPS=$FLIPS RUNS=$RUNS)..." >&2
    timeout 1800 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -kernel "$WORK/vm/vmlinuz" \
        -initrd "$WORK/vm/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
        -nographic -no-reboot < /dev/null | tr -d '\r' | tee "$WORK/console" | grep -o 'RESULT .*' >> "$OUT" || true
    grep -q '^RESULT ipvs_1000_ipvsadm_each' "$OUT" || { echo "the VM half did not finish; console:" >&2; tail -40 "$WORK/console" >&2; exit 1; }
fi

if [[ ${SKIP_NFT:-0} != 1 ]]; then
    echo "nftables in a network namespace..." >&2
    python3 "$HERE/nft.py" "$KEEPMON" "$WORK" "$FLIPS" "$RUNS" | tee -a "$OUT" >/dev/null
fi

[[ -n ${RESULTS:-} ]] && cp "$OUT" "$RESULTS"
echo "keepmon: $KEEPMON ($(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?'))"
echo "kernel for IPVS: Debian linux-image-6.1.0 under qemu-system-x86_64 -accel tcg; nftables: host kernel $(uname -r), $(nft --version)"
python3 "$HERE/report.py" < "$OUT"
