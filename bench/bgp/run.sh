#!/usr/bin/env bash
# How fast a director's route leaves the router: keepmon + BIRD 2 on a
# director, BIRD 2 as the router, eBGP between them, in network namespaces
# this script creates (10.124.1.0/24 exists only there) and removes.
#
#   bash bench/bgp/run.sh            (as root; needs bird2)
#   VIA=frr bash bench/bgp/run.sh    (the director announces through FRR's bgpd; needs frr)
#
# Environment: RUNS [5] measurements of each kind; INTERVAL [1s] the health
# check interval; FALL [1] failures before a backend is down;
# VIA [bird] the director's routing daemon (bird | frr);
# KEEPMON [target/release/keepmon, built if missing].
#
# Measures, medians of RUNS:
#   failure -> withdrawn: the only backend stops listening until the router
#     no longer has the director's path (bounded by INTERVAL x FALL plus the
#     BIRD reconfigure and one BGP UPDATE);
#   stop -> withdrawn: `keepmon stop` until the router no longer has the path
#     (the withdraw happens before the daemon stops serving);
#   start -> announced: `keepmon start` until the router has the path.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-5}
INTERVAL=${INTERVAL:-1s}
FALL=${FALL:-1}
VIA=${VIA:-bird}
KEEPMON=${KEEPMON:-$ROOT/target/release/keepmon}
[[ $EUID == 0 ]] || { echo "run.sh: needs root (network namespaces)" >&2; exit 1; }
command -v bird >/dev/null || { echo "run.sh: needs bird2 (apt-get install bird2)" >&2; exit 1; }
[[ $VIA != frr || -x /usr/lib/frr/bgpd ]] || { echo "run.sh: VIA=frr needs frr (apt-get install frr)" >&2; exit 1; }
[[ -x $KEEPMON ]] || (cd "$ROOT" && cargo build --release --bin keepmon)

P=kmbb$$
WORK=$(mktemp -d /tmp/keepmon-bench-bgp.XXXXXX)
PIDS=()
FRR_RUN=/var/run/frr/$P
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ -f $FRR_RUN/bgpd.pid ]] && kill "$(cat "$FRR_RUN/bgpd.pid")" 2>/dev/null || true
    rm -rf "$FRR_RUN"
    pkill -f "$WORK" 2>/dev/null || true
    ip netns del ${P}r 2>/dev/null || true
    ip netns del ${P}d 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add ${P}r; ip netns add ${P}d
ip link add ${P}a type veth peer name ${P}b
ip link set ${P}a netns ${P}d; ip link set ${P}b netns ${P}r
ip -n ${P}d addr add 10.124.1.1/24 dev ${P}a; ip -n ${P}r addr add 10.124.1.254/24 dev ${P}b
ip -n ${P}d link set ${P}a up; ip -n ${P}r link set ${P}b up
ip -n ${P}d link set lo up; ip -n ${P}r link set lo up

cat > "$WORK/router.conf" <<CONF
router id 10.124.1.254;
protocol device {}
protocol bgp d { local 10.124.1.254 as 65000; neighbor 10.124.1.1 as 65001; ipv4 { import all; export none; }; }
CONF
printf 'protocol static keepmon4 { ipv4; }\nprotocol static keepmon6 { ipv6; }\n' > "$WORK/routes.conf"
cat > "$WORK/director.conf" <<CONF
router id 10.124.1.1;
protocol device {}
include "$WORK/routes.conf";
protocol bgp r { local 10.124.1.1 as 65001; neighbor 10.124.1.254 as 65000; ipv4 { import none; export where proto = "keepmon4"; }; }
CONF
ip netns exec ${P}r bird -f -c "$WORK/router.conf" -s "$WORK/router.ctl" -P "$WORK/router.pid" & PIDS+=($!)
if [[ $VIA == frr ]]; then
    # bgpd alone (no zebra): `network` statements with import-check off.
    chmod 755 "$WORK"
    mkdir -p "$FRR_RUN"; chown frr:frr "$FRR_RUN"
    printf '%s\n' 'frr defaults traditional' 'router bgp 65001' ' bgp router-id 10.124.1.1' \
        ' no bgp ebgp-requires-policy' ' no bgp network import-check' \
        ' neighbor 10.124.1.254 remote-as 65000' ' neighbor 10.124.1.254 disable-connected-check' \
        ' neighbor 10.124.1.254 advertisement-interval 0' \
        'exit' 'route-map keepmon permit 10' 'exit' > "$WORK/bgpd.conf"
    ip netns exec ${P}d /usr/lib/frr/bgpd -d -Z -N "$P" -f "$WORK/bgpd.conf" -i "$FRR_RUN/bgpd.pid" --log "file:$WORK/bgpd.log"
    BGP_KEYS="via = \"frr\"
frr_pathspace = \"$P\""
else
    ip netns exec ${P}d bird -f -c "$WORK/director.conf" -s "$WORK/director.ctl" -P "$WORK/director.pid" & PIDS+=($!)
    BGP_KEYS="bird_include = \"$WORK/routes.conf\"
bird_socket = \"$WORK/director.ctl\""
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VIP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/keepmon.toml" <<CONF
[daemon]
statedir = "$WORK/state"
[bgp]
$BGP_KEYS
withdraw_drain = "1s"
[hostgroups]
backends = ["127.0.0.1"]
[watch.backends.web]
interval = "$INTERVAL"
monitor = { type = "tcp", port = $PORT, timeout = "1s" }
fall = $FALL
[virtual_servers.web]
listen = "127.0.0.1:$VIP"
health = "backends:web"
real_servers = [ { addr = "127.0.0.1:$PORT" } ]
[announce.vip]
prefix = "192.0.2.10/32"
when = "quorum:web"
CONF

now() { date +%s.%N; }
has_path() { birdc -s "$WORK/router.ctl" show route 192.0.2.10/32 2>/dev/null | grep -q '\[d '; }
# Wait (at most 30 s) until has_path returns $1 (0: present, 1: absent); print seconds since $2.
wait_path() {
    local want=$1 t0=$2 deadline=$(( $(date +%s) + 30 ))
    while (( $(date +%s) < deadline )); do
        if has_path; then got=0; else got=1; fi
        if [[ $got == "$want" ]]; then python3 -c "print(f'{$(now) - $t0:.3f}')"; return; fi
        sleep 0.01
    done
    echo "timeout"; return 1
}
backend_up() { python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1',$PORT)); s.listen(128); time.sleep(3600)" & BACKEND=$!; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for _ in $(seq 300); do
    birdc -s "$WORK/router.ctl" show protocols d 2>/dev/null | grep -q Established && break
    sleep 0.1
done
birdc -s "$WORK/router.ctl" show protocols d | grep -q Established || { echo "run.sh: the BGP session did not come up" >&2; exit 1; }

FAIL=(); STOP=(); START=()
for run in $(seq "$RUNS"); do
    backend_up
    t0=$(now)
    "$KEEPMON" start -c "$WORK/keepmon.toml" >"$WORK/keepmon.$run.log" 2>&1 & DAEMON=$!
    START+=("$(wait_path 0 "$t0")")
    sleep 1
    t0=$(now); kill "$BACKEND"; wait "$BACKEND" 2>/dev/null || true
    FAIL+=("$(wait_path 1 "$t0")")
    backend_up; wait_path 0 "$(now)" >/dev/null
    t0=$(now); "$KEEPMON" stop -c "$WORK/keepmon.toml" >/dev/null
    STOP+=("$(wait_path 1 "$t0")")
    wait "$DAEMON" 2>/dev/null || true
    kill "$BACKEND"; wait "$BACKEND" 2>/dev/null || true
    echo "run $run: start->announced ${START[-1]} s, failure->withdrawn ${FAIL[-1]} s, stop->withdrawn ${STOP[-1]} s"
done
echo
echo "medians of $RUNS through $VIA (check interval $INTERVAL, fall $FALL):"
echo "  start   -> announced at the router: $(printf '%s\n' "${START[@]}" | median) s"
echo "  failure -> withdrawn at the router: $(printf '%s\n' "${FAIL[@]}" | median) s"
echo "  stop    -> withdrawn at the router: $(printf '%s\n' "${STOP[@]}" | median) s (the daemon keeps serving for withdraw_drain after that)"
