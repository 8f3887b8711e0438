#!/usr/bin/env bash
# Build a tiny VM for the IPVS test: Debian's 6.1 kernel, its ip_vs modules,
# busybox, keepmon, Debian's ipvsadm (to cross-check), Debian's keepalived
# (to compare the table it builds from a keepalived.conf) and a scenario.
#
#   tests/vm/build-initramfs.sh CACHE_DIR OUT_DIR KEEPMON_BINARY SCENARIO_DIR
#
# CACHE_DIR keeps the downloaded kernel package between runs (apt-get
# download when missing). OUT_DIR receives vmlinuz and initrd.gz.
# SCENARIO_DIR's files are copied to /test; /test/scenario.sh runs as init.
# Needs: busybox-static, cpio, ipvsadm, keepalived, apt-get (recipe: reference/lb.md §12).
set -euo pipefail

cache=$1 out=$2 keepmon=$3 scenario=$4
mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd) out=$(cd "$out" && pwd)

deb=$(ls "$cache"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$deb" ]]; then
    pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -1 | cut -d' ' -f1)
    if [[ -z "$pkg" ]]; then
        apt-get update >/dev/null
        pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -1 | cut -d' ' -f1)
    fi
    [[ -n "$pkg" ]] || { echo "no linux-image-6.1.0-*-amd64 package in apt" >&2; exit 1; }
    (cd "$cache" && apt-get download "$pkg" >&2)
    deb=$(ls "$cache"/linux-image-6.1.0-*-amd64_*.deb | sort -V | tail -1)
fi

kdir="$cache/kpkg-$(basename "$deb" .deb)"
if [[ ! -d "$kdir" ]]; then
    rm -rf "$kdir.tmp"
    dpkg -x "$deb" "$kdir.tmp"
    mv "$kdir.tmp" "$kdir"
fi
release=$(ls "$kdir/lib/modules" | head -1)
cp "$kdir/boot/vmlinuz-$release" "$out/vmlinuz"

root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,mod,proc,sys,tmp,dev,etc,test,lib64,lib/x86_64-linux-gnu,usr/sbin,var/lib/keepmon,run,var/run}
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
cp /bin/busybox "$root/bin/busybox"

mods="$kdir/lib/modules/$release/kernel"
for m in crypto/crc32c_generic lib/libcrc32c net/ipv4/netfilter/nf_defrag_ipv4 \
         net/ipv6/netfilter/nf_defrag_ipv6 net/netfilter/nf_conntrack \
         net/netfilter/ipvs/ip_vs net/netfilter/ipvs/ip_vs_rr net/netfilter/ipvs/ip_vs_wrr \
         net/netfilter/ipvs/ip_vs_sh net/netfilter/nfnetlink net/netfilter/nf_tables; do
    src="$mods/$m.ko"
    if [[ -f "$src" ]]; then cp "$src" "$root/mod/"; 
    elif [[ -f "$src.xz" ]]; then xz -dc "$src.xz" > "$root/mod/$(basename "$m").ko";
    else echo "module $m missing in $deb" >&2; exit 1; fi
done

# keepmon without debug info (the debug build is >100 MB), ipvsadm, their libraries.
strip --strip-debug -o "$root/bin/keepmon" "$keepmon" 2>/dev/null || cp "$keepmon" "$root/bin/keepmon"
cp /usr/sbin/ipvsadm "$root/usr/sbin/ipvsadm"
cp /usr/sbin/keepalived "$root/usr/sbin/keepalived"
# nft marks the packets of the fwmark services' traffic.
cp /usr/sbin/nft "$root/usr/sbin/nft"
for bin in "$keepmon" /usr/sbin/ipvsadm /usr/sbin/keepalived /usr/sbin/nft; do
    ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done

cp -r "$scenario"/. "$root/test/"
chmod +x "$root/test/scenario.sh"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in crc32c_generic libcrc32c nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nfnetlink nf_tables; do
  insmod /mod/$m.ko || echo "insmod $m failed"
done
ip link set lo up
ip addr add 10.0.0.254/24 dev lo
cd /test && sh ./scenario.sh
echo "=== END"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.gz"
echo "$out"
