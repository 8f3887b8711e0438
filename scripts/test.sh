#!/usr/bin/env bash
# The test command of keepmon: everything CI checks, in the order CI checks it.
#
#   bash scripts/test.sh
#
# As root it first installs the Debian packages the privileged tests need.
# Without root (or without apt) those tests cannot run: this script says so
# loudly, and the tests themselves report it. With KEEPMON_REQUIRE_PRIVILEGED=1
# (set by .ci/run) a missing package is an error instead of a notice.
#
# Debug builds only: the whole run is meant to stay quick on a 2-core machine.
set -euo pipefail

# Debian packages the tests use. One per line, with the reason.
PRIVILEGED_PACKAGES=(
    mon # Debian's mon: moncmd/monshow clients against our mon port, mon itself as a reference
    fping # Debian's fping.monitor needs it: tests/monitors.rs compares it with the built-in ping check
    python3-aiosmtpd # a real SMTP server (STARTTLS, AUTH, 4xx/5xx answers) for tests/mail.rs and bench/mail
    msmtp # a real sendmail-compatible program for the mail test of mon's sendmail fallback
    qemu-system-x86 # tests/ipvs_vm.rs boots Debian's kernel with IPVS (the host kernel has none)
    busybox-static # the IPVS VM's userland
    cpio # packs the IPVS VM's initramfs
    ipvsadm # cross-checks the kernel IPVS table in the VM; bench/kernel's peer
    nftables # tests/nft.rs reads back `nft list table inet keepmon`; the nftables data plane runs nft -j
    redis-server # a real Redis on loopback for the shipped lua:redis_ping monitor (tests/lua.rs)
    iproute2 # ip netns/link/addr: the network-namespace topology of tests/vrrp.rs
    keepalived # Debian's keepalived 2.2.7: a VRRP peer in tests/vrrp.rs (interop); keepalived -t judges the keepalived.conf corpus in tests/keepalived.rs
    passwd # useradd/userdel: tests/keepalived.rs runs scripts as a script_user it creates
    bird2 # BIRD 2 takes keepmon's route announcements in tests/announce.rs, and is the BGP router of its namespace test
    frr # FRR's bgpd announces for one director in tests/active_directors.rs (keepmon drives it through vtysh)
    exabgp # ExaBGP runs `keepmon exabgp-api` as its API process in tests/announce.rs
    systemd # systemd-analyze verify of etc/systemd/*.service (tests/systemd.rs)
    lintian # checks the .deb built by scripts/build-deb.sh (tests/package.rs)
    groff-base # groff -ww renders the man pages without warnings (tests/package.rs)
    man-db # systemd-analyze verify runs man on the units' Documentation= pages (tests/systemd.rs)
    binutils # strip in scripts/build-deb.sh (tests/package.rs)
    prometheus # promtool check metrics lints the metrics page (tests/metrics.rs)
    prometheus-alertmanager # a real Alertmanager on loopback receives keepmon's alerts and notifies the webhook of tests/alertmanager.rs
    nginx-light # a real HTTP backend behind the proxy's http mode (tests/proxy_http_daemon.rs)
    haproxy # the server that reads keepmon's PROXY protocol headers with accept-proxy (tests/proxy_protocol.rs); bench/proxy's peer; its own stats ;csv header is the one keepmon's must equal (tests/stats_page.rs)
    chromium # a real browser renders the web page, acks from it and takes screenshots (tests/web.rs), and HAProxy's stats page (tests/stats_page.rs)
    nginx # the three backends of the fault soak (tests/soak.rs runs bench/soak/run.sh --ci)
    tcpdump # the soak's capture of VRRP adverts on its bridge (at most one master)
    wrk # the soak's load client, next to its Python client
    curl # the soak's heartbeat: each director's metrics page and proxy
    dnsmasq-base # a real DNS server on loopback for the dns monitor (keepalived's DNS_CHECK) in tests/monitors.rs
)

cd "$(dirname "${BASH_SOURCE[0]}")/.."

current_step="setup"
trap 'echo >&2; echo "scripts/test.sh: FAILED at step: ${current_step}" >&2' ERR

step() {
    current_step="$*"
    printf '\n==> %s\n' "$*"
}

loud_notice() {
    local line
    echo >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    for line in "$@"; do
        echo "!!! ${line}" >&2
    done
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo >&2
}

package_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing_packages() {
    local package
    for package in "${PRIVILEGED_PACKAGES[@]}"; do
        package_installed "${package}" || echo "${package}"
    done
}

step "system packages: ${PRIVILEGED_PACKAGES[*]}"
if ! command -v dpkg-query >/dev/null; then
    missing=("${PRIVILEGED_PACKAGES[@]}")
    why="this is not a Debian system (no dpkg-query)"
else
    mapfile -t missing < <(missing_packages)
    why="not running as root, so they cannot be installed"
    if ((${#missing[@]} > 0)) && ((EUID == 0)); then
        echo "installing: ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
        mapfile -t missing < <(missing_packages)
        why="apt-get install did not install them"
    fi
fi
if ((${#missing[@]} > 0)); then
    loud_notice \
        "missing Debian packages: ${missing[*]}" \
        "(${why})." \
        "Tests that need them or root will NOT run; run this script as root to run them."
    if [[ "${KEEPMON_REQUIRE_PRIVILEGED:-}" == 1 ]]; then
        echo "KEEPMON_REQUIRE_PRIVILEGED=1: missing packages are an error" >&2
        false
    fi
else
    echo "all present"
fi
if ((EUID != 0)); then
    loud_notice "not running as root: tests that need root will NOT run."
fi

step "cargo fmt --check"
cargo fmt --check
cargo fmt --check --manifest-path fuzz/Cargo.toml

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "fuzz targets build (cargo build --manifest-path fuzz/Cargo.toml --bins)"
# Built into the main target directory so that it and `cargo test` compile
# the shared dependencies once, not twice.
cargo build --manifest-path fuzz/Cargo.toml --bins --target-dir target

step "cargo doc --no-deps (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "cargo test --no-fail-fast"
cargo test --no-fail-fast

current_step="done"
printf '\n==> all steps passed\n'
