#!/usr/bin/env bash
# Build the Debian package of keepmon with dpkg-deb (no debhelper, no cargo-deb).
#
#   bash scripts/build-deb.sh                 # release build -> target/debian/keepmon_VERSION-1_ARCH.deb
#   bash scripts/build-deb.sh --binary PATH   # package an already built binary (tests)
#   bash scripts/build-deb.sh --out DIR       # where the .deb goes
#   bash scripts/build-deb.sh --fast          # gzip -1 instead of xz (tests)
#
# Install it with `apt install ./target/debian/keepmon_*.deb`. The package
# holds /usr/sbin/keepmon, the conffile /etc/keepmon/keepmon.toml (the demo
# config with system paths), the systemd units, the shipped Lua monitors
# and alerts under /usr/share/keepmon/, the man pages and the bash and zsh
# completions. postinst creates the system user keepmon and its
# /var/lib/keepmon and /var/log/keepmon; it starts nothing on a fresh
# install (systemctl enable --now keepmon does), and restarts the daemon on
# an upgrade only if it was running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

binary=""
out="target/debian"
compress=(-Zxz -z6)
while (($# > 0)); do
    case "$1" in
    --binary)
        binary="$2"
        shift 2
        ;;
    --out)
        out="$2"
        shift 2
        ;;
    --fast)
        compress=(-Zgzip -z1)
        shift
        ;;
    *)
        echo "build-deb.sh: unknown argument $1" >&2
        exit 2
        ;;
    esac
done

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
debversion="${version}-1"
arch="$(dpkg --print-architecture)"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# Debian's usual variables name the maintainer; the default is a placeholder
# (lintian flags its host).
maintainer="${DEBFULLNAME:-keepmon maintainers} <${DEBEMAIL:-keepmon@localhost}>"

if [[ -z "${binary}" ]]; then
    # KEEPMON_PACKAGED: look for shipped Lua scripts only under /usr/share/keepmon.
    KEEPMON_PACKAGED=1 KEEPMON_GIT_COMMIT="${commit}" cargo build --release --bin keepmon
    binary="target/release/keepmon"
fi

mkdir -p "${out}"
root="$(mktemp -d "${TMPDIR:-/tmp}/keepmon-deb.XXXXXX")"
trap 'rm -rf "${root}"' EXIT
umask 022
chmod 0755 "${root}"

install -d "${root}/DEBIAN" "${root}/usr/sbin" "${root}/etc/keepmon" \
    "${root}/lib/systemd/system" "${root}/usr/share/keepmon/monitors" \
    "${root}/usr/share/keepmon/alerts" "${root}/usr/share/man/man8" \
    "${root}/usr/share/man/man5" "${root}/usr/share/bash-completion/completions" \
    "${root}/usr/share/zsh/vendor-completions" "${root}/usr/share/doc/keepmon"

install -m 0755 "${binary}" "${root}/usr/sbin/keepmon"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "${root}/usr/sbin/keepmon"

# The demo config with system paths; each edit must apply, or the demo
# changed and this script must follow.
config="${root}/etc/keepmon/keepmon.toml"
cp etc/keepmon.toml "${config}"
edit() {
    local before after
    before="$(cat "${config}")"
    sed -i "$1" "${config}"
    after="$(cat "${config}")"
    if [[ "${before}" == "${after}" ]]; then
        echo "build-deb.sh: the demo config changed; this edit no longer applies: $1" >&2
        exit 1
    fi
}
edit '1,/^# Relative paths/c\
# keepmon configuration (installed by the Debian package as a conffile).\
#\
#   keepmon check-config            # compile it, print every error\
#   systemctl enable --now keepmon  # run it under systemd\
#   systemctl reload keepmon        # apply changes (SIGHUP); unchanged services keep their state\
#   keepmon status                  # without -c, keepmon uses this file\
#\
# As shipped it watches keepmon'"'"'s own metrics page and proxies\
# 127.0.0.1:9580 to it; replace the hostgroups, watches and virtual servers\
# with your own. keepmon.toml(5) explains every key; mon.cf files work too\
# (point ExecStart at one with systemctl edit keepmon).\
#\
# Durations are strings with units: "500ms", "5s", "10m", "1h", "1d", "1m30s".\
# Relative paths are relative to /etc/keepmon.'
edit 's|^statedir = "state"$|statedir = "/var/lib/keepmon"|'
edit 's|^# logdir = "state/log"$|logdir = "/var/log/keepmon"|'
edit 's|^path = "state/alerts.log"$|path = "/var/log/keepmon/alerts.log"|'
# The demo's always-failing service has no place on a real director.
edit '/^# Fails on purpose: nothing listens on port 9.$/,/^$/d'
edit 's|watch\.local\.closed|watch.local.keepmon|g'
chmod 0644 "${config}"

install -m 0644 etc/systemd/keepmon.service etc/systemd/keepmon@.service "${root}/lib/systemd/system/"
install -m 0644 monitors/*.lua "${root}/usr/share/keepmon/monitors/"
install -m 0644 alerts/*.lua "${root}/usr/share/keepmon/alerts/"
install -m 0644 monitors/README.md "${root}/usr/share/doc/keepmon/monitors.md"
install -m 0644 alerts/README.md "${root}/usr/share/doc/keepmon/alerts.md"
install -m 0644 README.md "${root}/usr/share/doc/keepmon/README.md"
gzip -9n <doc/keepmon.8 >"${root}/usr/share/man/man8/keepmon.8.gz"
gzip -9n <doc/keepmon.toml.5 >"${root}/usr/share/man/man5/keepmon.toml.5.gz"
install -m 0644 doc/completions/keepmon.bash "${root}/usr/share/bash-completion/completions/keepmon"
install -m 0644 doc/completions/_keepmon "${root}/usr/share/zsh/vendor-completions/_keepmon"

cat >"${root}/usr/share/doc/keepmon/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: keepmon

Files: *
Copyright: $(date -u +%Y) the keepmon authors
License: MIT or Apache-2.0
 On Debian systems the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
printf 'keepmon (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n' \
    "${debversion}" "${commit}" "${maintainer}" "$(date -R -u -d @"${SOURCE_DATE_EPOCH:-0}")" |
    gzip -9n >"${root}/usr/share/doc/keepmon/changelog.Debian.gz"

# Only Debian's own uploads close an ITP bug.
install -d "${root}/usr/share/lintian/overrides"
echo "keepmon: initial-upload-closes-no-bugs" >"${root}/usr/share/lintian/overrides/keepmon"

installed_size="$(du -sk --exclude=DEBIAN "${root}" | cut -f1)"
cat >"${root}/DEBIAN/control" <<EOF
Package: keepmon
Version: ${debversion}
Architecture: ${arch}
Maintainer: ${maintainer}
Installed-Size: ${installed_size}
Depends: libc6 (>= 2.34), adduser
Recommends: systemd
Suggests: nftables, ipvsadm, mon
Section: net
Priority: optional
Homepage: https://github.com/keepmon/keepmon
Description: monitoring, alerts, load-balancer tables and VRRP failover in one daemon
 keepmon does the job of mon (service checks and alerts, reading mon.cf
 unchanged), ldirectord/lvs.alert (load-balancer tables through its own
 proxy, IPVS or nftables) and keepalived (VRRP failover of the virtual IP)
 in one daemon with one configuration.
EOF

echo /etc/keepmon/keepmon.toml >"${root}/DEBIAN/conffiles"

# The systemd parts follow what dh_installsystemd --no-enable writes:
# deb-systemd-invoke starts or restarts the unit only if the admin enabled
# it (or it is running), so a fresh install starts nothing.
cat >"${root}/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = configure ]; then
    if ! getent passwd keepmon >/dev/null; then
        adduser --system --group --home /var/lib/keepmon --no-create-home \
            --gecos "keepmon daemon" keepmon >/dev/null
    fi
    for dir in /var/lib/keepmon /var/log/keepmon; do
        if [ ! -d "$dir" ]; then
            install -d -o keepmon -g keepmon -m 0750 "$dir"
        fi
    done
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper update-state keepmon.service >/dev/null || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ]; then
            action=restart
        else
            action=start
        fi
        deb-systemd-invoke "$action" keepmon.service >/dev/null || true
    fi
fi

exit 0
EOF

cat >"${root}/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop keepmon.service >/dev/null || true
fi

exit 0
EOF

cat >"${root}/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e

if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge keepmon.service >/dev/null || true
    fi
    rm -rf /var/lib/keepmon /var/log/keepmon
fi

exit 0
EOF
chmod 0755 "${root}/DEBIAN/postinst" "${root}/DEBIAN/prerm" "${root}/DEBIAN/postrm"

deb="${out}/keepmon_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "${root}" "${deb}" >/dev/null
echo "${deb}"
