#!/usr/bin/env bash
# keepmon's userspace proxy vs Debian's HAProxy (mode tcp, or mode http with PROXY_MODE=http): same nginx backends,
# same thread count, loopback only, wrk. See bench/proxy/README.md.
# Usage: bench/proxy/run.sh [--quick]
#
# Environment (defaults in brackets):
#   RUNS [5]        measured runs per contender and mode (interleaved)
#   DURATION [10]   seconds per wrk run      WARMUP [2]   seconds of discarded wrk per contender and mode
#   CONNS [50]      wrk connections          WRK_THREADS [1]
#   THREADS [nproc] proxy threads: HAProxy nbthread and keepmon's TOKIO_WORKER_THREADS
#   NGINX_WORKERS [nproc]  BODY_BYTES [1024]  size of the static file
#   MODES ["keepalive close"]  CONTENDERS ["direct haproxy keepmon"]
#   PROXY_MODE [tcp] tcp or http: both proxies in that mode (HAProxy `mode http`, keepmon `mode = "http"`)
#   COOKIE [0]      1 (http only): cookie persistence on in both (insert indirect nocache)
#   TLS [0]         1 (http only): both proxies terminate TLS (one self-signed P-256 certificate); wrk speaks https
#   PORT [18080]    nginx on 127.0.0.21-23:PORT, HAProxy on 127.0.0.1:PORT+1, keepmon on 127.0.0.1:PORT+2
#   KEEPMON [-]     measure this keepmon binary (no build)
#   KEEPMON_B [-]   a second keepmon binary (say, the last commit's) as contender `keepmon-b` on PORT+3,
#                   with the same config: add it to CONTENDERS for an A/B in one run
#   PERF [0]        1: afterwards, perf-record each proxy under load in each mode and print its top symbols
#   WAIT_IDLE [0]   wait up to this many seconds for a quiet machine (others < 10%) before the runs
#   RESULTS [-]     also save the per-run figures (TSV) to this file     KEEP [0]  keep the temp dir
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NPROC=$(nproc)
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
WRK_THREADS=${WRK_THREADS:-1}
THREADS=${THREADS:-$NPROC}
NGINX_WORKERS=${NGINX_WORKERS:-$NPROC}
BODY_BYTES=${BODY_BYTES:-1024}
MODES=${MODES:-"keepalive close"}
CONTENDERS=${CONTENDERS:-"direct haproxy keepmon"}
PORT=${PORT:-18080}
PROXY_MODE=${PROXY_MODE:-tcp}
COOKIE=${COOKIE:-0}
TLS=${TLS:-0}
PERF=${PERF:-0}
if [[ ${1:-} == --quick ]]; then
    RUNS=1 DURATION=3 WARMUP=1
elif [[ -n ${1:-} ]]; then
    sed -n '2,23p' "$0" >&2
    exit 2
fi
HAPROXY_PORT=$((PORT + 1))
KEEPMON_PORT=$((PORT + 2))
KEEPMON_B_PORT=$((PORT + 3))
BACKENDS="127.0.0.21 127.0.0.22 127.0.0.23"

# --- What we need ----------------------------------------------------------------
missing=()
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if (( ${#missing[@]} )); then
    if [[ $(id -u) == 0 ]]; then
        echo "== apt-get install ${missing[*]}"
        # Debian's postinst scripts would start the system nginx/haproxy through
        # invoke-rc.d; in containers policy-rc.d usually forbids that. We never use them.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "run.sh: missing: ${missing[*]} — as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
export PATH=$PATH:/usr/sbin:/sbin
if [[ $PERF == 1 ]] && ! command -v perf >/dev/null; then
    echo "run.sh: PERF=1 needs perf (apt-get install linux-perf)" >&2
    exit 1
fi

max=$(ulimit -Hn)
if [[ $max == unlimited || $max -ge 65536 ]]; then ulimit -n 65536; else ulimit -n "$max"; fi

WORK=$(mktemp -d /tmp/keepmon-bench-proxy.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody when started by root
NGINX_PID="" HAPROXY_PID="" KEEPMON_PID="" KEEPMON_B_PID="" LOAD_PID="" WORKTREE=""

# Stop one process we started: TERM, up to 10 s, then KILL; reap it.
stop() {
    local pid=$1
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop "$LOAD_PID"
    stop "$KEEPMON_PID"
    stop "$KEEPMON_B_PID"
    stop "$HAPROXY_PID"
    stop "$NGINX_PID" # nginx's master stops its workers
    if [[ -n $WORKTREE ]]; then
        git -C "$ROOT" worktree remove --force "$WORKTREE" 2>/dev/null || rm -rf "$WORKTREE"
        git -C "$ROOT" worktree prune 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- keepmon binary --------------------------------------------------------------
if [[ -n ${KEEPMON:-} ]]; then
    KEEPMON_DESC="$KEEPMON"
else
    KEEPMON_DESC="$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?') (working tree)"
    echo "== cargo build --release"
    if (cd "$ROOT" && timeout 900 cargo build --release --quiet); then
        KEEPMON=$ROOT/target/release/keepmon
    else
        # The tree may be mid-edit: build the last commit in a worktree of its own.
        WORKTREE=/tmp/kp-bench
        echo "== release build of the working tree failed; building HEAD in $WORKTREE"
        git -C "$ROOT" worktree remove --force "$WORKTREE" 2>/dev/null || rm -rf "$WORKTREE"
        git -C "$ROOT" worktree prune
        git -C "$ROOT" worktree add --detach --quiet "$WORKTREE" HEAD
        (cd "$WORKTREE" && CARGO_TARGET_DIR=$ROOT/target/bench-proxy-head timeout 900 cargo build --release --quiet)
        KEEPMON=$ROOT/target/bench-proxy-head/release/keepmon
        KEEPMON_DESC="$(git -C "$WORKTREE" describe --always 2>/dev/null) (HEAD worktree)"
    fi
fi
# A private copy: another build cannot replace it mid-run.
cp "$KEEPMON" "$WORK/keepmon"
KEEPMON=$WORK/keepmon
if [[ $CONTENDERS == *keepmon-b* ]]; then
    [[ -n ${KEEPMON_B:-} ]] || { echo "run.sh: contender keepmon-b needs KEEPMON_B=/path/to/keepmon" >&2; exit 2; }
    cp "$KEEPMON_B" "$WORK/keepmon-b"
    KEEPMON_B_DESC=$KEEPMON_B
    KEEPMON_B=$WORK/keepmon-b
fi

# --- Backends: one nginx, three loopback addresses, a small static file -----------
mkdir -p "$WORK/www" "$WORK/nginx/tmp" "$WORK/keepmon-state"
head -c "$BODY_BYTES" /dev/zero | tr '\0' x >"$WORK/www/f.html"
chmod -R a+rX "$WORK/www"
{
    echo "worker_processes $NGINX_WORKERS;"
    echo "daemon off;"
    echo "pid $WORK/nginx/nginx.pid;"
    echo "error_log $WORK/nginx/error.log warn;"
    echo "events { worker_connections 8192; }"
    echo "http {"
    echo "    access_log off;"
    echo "    default_type text/html;"
    echo "    sendfile on;"
    echo "    keepalive_timeout 65s;"
    echo "    keepalive_requests 10000000;"
    for d in client_body proxy fastcgi uwsgi scgi; do echo "    ${d}_temp_path $WORK/nginx/tmp/$d;"; done
    echo "    server {"
    # reuseport: one accept queue per worker and address, so the direct baseline
    # (one address) uses every worker too.
    for ip in $BACKENDS; do echo "        listen $ip:$PORT reuseport;"; done
    echo "        root $WORK/www;"
    echo "        add_header X-Backend \$server_addr;"
    echo "    }"
    echo "}"
} >"$WORK/nginx/nginx.conf"

if [[ $TLS == 1 ]]; then
    [[ $PROXY_MODE == http ]] || { echo "run.sh: TLS=1 needs PROXY_MODE=http" >&2; exit 2; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -keyout "$WORK/tls.key" -out "$WORK/tls.crt" >/dev/null 2>&1
    cat "$WORK/tls.crt" "$WORK/tls.key" >"$WORK/tls.pem"
fi
bind_tls=""
[[ $TLS == 1 ]] && bind_tls=" ssl crt $WORK/tls.pem"

# --- HAProxy: mode tcp, roundrobin, nbthread = THREADS ----------------------------
{
    echo "global"
    echo "    nbthread $THREADS"
    echo "    maxconn 8000" # fits a 20,000 open-file limit (HAProxy needs 2 per connection)
    echo "defaults"
    echo "    mode $PROXY_MODE"
    echo "    timeout connect 2s"
    echo "    timeout client 1m"
    echo "    timeout server 1m"
    echo "    retries 2"
    echo "    option redispatch 1"
    if [[ $PROXY_MODE == http ]]; then
        echo "    timeout http-request 10s"
        echo "    timeout http-keep-alive 2s"
    fi
    echo "listen web"
    echo "    bind 127.0.0.1:$HAPROXY_PORT$bind_tls"
    echo "    balance roundrobin"
    [[ $COOKIE == 1 ]] && echo "    cookie SERVERID insert indirect nocache"
    i=0
    for ip in $BACKENDS; do
        i=$((i + 1))
        cookie=""
        [[ $COOKIE == 1 ]] && cookie=" cookie s$i"
        echo "    server s$i $ip:$PORT check inter 10s$cookie"
    done
} >"$WORK/haproxy.cfg"

# --- keepmon: the same virtual server, the same check ------------------------------
{
    echo "[daemon]"
    echo "statedir = \"$WORK/keepmon-state\""
    echo "[hostgroups]"
    echo "backends = [$(printf '"%s", ' $BACKENDS | sed 's/, $//')]"
    echo "[watch.backends.web]"
    echo "interval = \"10s\""
    echo "monitor = { type = \"tcp\", port = $PORT, timeout = \"2s\" }"
    echo "[virtual_servers.web]"
    echo "listen = \"127.0.0.1:$KEEPMON_PORT\""
    echo "scheduler = \"rr\""
    echo "health = \"backends:web\""
    echo "retries = 2"
    echo "connect_timeout = \"2s\""
    if [[ $PROXY_MODE == http ]]; then
        echo "mode = \"http\""
        echo "timeout = { server = \"1m\", http_request = \"10s\", http_keep_alive = \"2s\" }"
        [[ $COOKIE == 1 ]] && echo "cookie = { name = \"SERVERID\", mode = \"insert\", indirect = true, nocache = true }"
        [[ $TLS == 1 ]] && echo "tls = [{ cert = \"$WORK/tls.crt\", key = \"$WORK/tls.key\" }]"
    fi
    echo "real_servers = ["
    i=0
    for ip in $BACKENDS; do
        i=$((i + 1))
        cookie=""
        [[ $COOKIE == 1 ]] && cookie=", cookie = \"s$i\""
        echo "  { addr = \"$ip:$PORT\"$cookie },"
    done
    echo "]"
} >"$WORK/keepmon.toml"
# keepmon-b: the same virtual server on its own port and state directory.
sed -e "s|127.0.0.1:$KEEPMON_PORT|127.0.0.1:$KEEPMON_B_PORT|" -e "s|keepmon-state|keepmon-b-state|" \
    "$WORK/keepmon.toml" >"$WORK/keepmon-b.toml"

# Someone else's server on our ports would be measured instead of ours.
for addr in 127.0.0.21:$PORT 127.0.0.22:$PORT 127.0.0.23:$PORT 127.0.0.1:$HAPROXY_PORT 127.0.0.1:$KEEPMON_PORT 127.0.0.1:$KEEPMON_B_PORT; do
    if ss -Htln "sport = :${addr##*:}" | awk '{print $4}' | grep -qxE "(${addr%:*}|0\.0\.0\.0|\*|\[::\]):${addr##*:}"; then
        echo "run.sh: $addr is already in use; choose other ports with PORT=" >&2
        exit 1
    fi
done

"$KEEPMON" check-config -c "$WORK/keepmon.toml" >"$WORK/check-config.out" 2>&1 \
    || { cat "$WORK/check-config.out" >&2; exit 1; }
haproxy -c -f "$WORK/haproxy.cfg" >"$WORK/haproxy-check.out" 2>&1 \
    || { cat "$WORK/haproxy-check.out" >&2; exit 1; }

SCHEME=http
[[ $TLS == 1 ]] && SCHEME=https
url_of() {
    case $1 in
        direct) echo "http://127.0.0.21:$PORT/f.html" ;;
        haproxy) echo "$SCHEME://127.0.0.1:$HAPROXY_PORT/f.html" ;;
        keepmon) echo "$SCHEME://127.0.0.1:$KEEPMON_PORT/f.html" ;;
        keepmon-b) echo "$SCHEME://127.0.0.1:$KEEPMON_B_PORT/f.html" ;;
    esac
}
pid_of() {
    case $1 in
        direct) echo "" ;;
        haproxy) echo "$HAPROXY_PID" ;;
        keepmon) echo "$KEEPMON_PID" ;;
        keepmon-b) echo "$KEEPMON_B_PID" ;;
    esac
}

# Ready = answers from every backend (6 requests, 3 distinct X-Backend headers; direct: 1), within 15 s.
wait_ready() {
    local name=$1 pid=$2 url seen=0 deadline=$((SECONDS + 15))
    url=$(url_of "$name")
    while (( SECONDS < deadline )); do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: $name exited; its log:" >&2
            tail -20 "$WORK/$name.log" >&2
            exit 1
        fi
        seen=$(for _ in 1 2 3 4 5 6; do
                   curl -s -k -o /dev/null -D - --max-time 1 -H 'Connection: close' "$url" 2>/dev/null \
                       | tr -d '\r' | sed -n 's/^X-Backend: //Ip' || true
               done | sort -u | wc -l) || seen=0
        if [[ $name == direct && $seen -ge 1 ]] || [[ $seen -ge 3 ]]; then return 0; fi
        sleep 0.1
    done
    echo "run.sh: $name is not ready at $url (backends seen: $seen)" >&2
    tail -20 "$WORK/$name.log" >&2
    exit 1
}

echo "== proxy mode $PROXY_MODE (cookie $COOKIE, tls $TLS, body $BODY_BYTES bytes)"
echo "== starting nginx ($NGINX_WORKERS workers), HAProxy (nbthread $THREADS), keepmon (TOKIO_WORKER_THREADS=$THREADS)"
nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" >"$WORK/direct.log" 2>&1 &
NGINX_PID=$!
wait_ready direct "$NGINX_PID"
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
TOKIO_WORKER_THREADS=$THREADS KEEPMON_LOG=warn "$KEEPMON" start -c "$WORK/keepmon.toml" >"$WORK/keepmon.log" 2>&1 &
KEEPMON_PID=$!
wait_ready haproxy "$HAPROXY_PID"
wait_ready keepmon "$KEEPMON_PID"
if [[ $CONTENDERS == *keepmon-b* ]]; then
    TOKIO_WORKER_THREADS=$THREADS KEEPMON_LOG=warn "$KEEPMON_B" start -c "$WORK/keepmon-b.toml" >"$WORK/keepmon-b.log" 2>&1 &
    KEEPMON_B_PID=$!
    wait_ready keepmon-b "$KEEPMON_B_PID"
fi

# --- Runs -------------------------------------------------------------------------
cpu_ticks() { # utime + stime of a process and all its threads (fields 14, 15)
    [[ -n $1 ]] || { echo 0; return; }
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# "busy ours": user + nice + system ticks of the whole machine (/proc/stat), and
# utime + stime of everything this bench runs: nginx (master and workers), both
# proxies, and this script's reaped children (wrk). The difference is other
# people's load. (irq/softirq time is left out on both sides: the kernel does
# not charge it to a process, and loopback traffic makes plenty of it.)
machine_ticks() {
    local pids="$NGINX_PID $HAPROXY_PID $KEEPMON_PID $KEEPMON_B_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
    local ours=0 p
    for p in $pids; do ours=$((ours + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
    ours=$((ours + $(awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat")))
    echo "$(awk '/^cpu / { print $2 + $3 + $4 }' /proc/stat) $ours"
}

wrk_args() { # $1 = seconds; the same for every contender and mode
    echo "-t$WRK_THREADS -c$CONNS -d${1}s --latency --timeout 5s"
}

# One wrk run of contender $1 in mode $2 for $4 seconds, output to $3. In the
# background, so that a TERM to this script is handled at once.
load() {
    local name=$1 mode=$2 out=$3 secs=$4
    local hdr=()
    [[ $mode == close ]] && hdr=(-H "Connection: close")
    # shellcheck disable=SC2046
    timeout $((secs + 15)) wrk $(wrk_args "$secs") "${hdr[@]}" "$(url_of "$name")" >"$out" 2>&1 &
    LOAD_PID=$!
    if ! wait "$LOAD_PID"; then
        LOAD_PID=""
        echo "run.sh: wrk against $name ($mode) failed:" >&2
        cat "$out" >&2
        exit 1
    fi
    LOAD_PID=""
}

# Other people's load makes every number noisy: say how busy the machine is,
# and with WAIT_IDLE, wait (that long at most) for a quiet 5 s.
other_load() { # percent of the machine used by others over $1 seconds
    local b0 o0 b1 o1
    read -r b0 o0 < <(machine_ticks)
    sleep "$1"
    read -r b1 o1 < <(machine_ticks)
    awk -v b="$((b1 - b0))" -v o="$((o1 - o0))" -v t="$(getconf CLK_TCK)" -v n="$NPROC" -v s="$1" \
        'BEGIN { f = 100 * (b - o) / (t * n * s); printf "%.0f", f < 0 ? 0 : f }'
}
idle_deadline=$((SECONDS + ${WAIT_IDLE:-0}))
while :; do
    busy=$(other_load 5)
    (( busy < 10 || SECONDS >= idle_deadline )) && break
    echo "   others use ${busy}% of the machine; waiting for a quiet moment (WAIT_IDLE)"
done
(( busy < 10 )) || echo "run.sh: warning: others use ${busy}% of the machine; the results will be noisy (see the 'other' column)" >&2

n_runs=$(( $(wc -w <<<"$MODES") * $(wc -w <<<"$CONTENDERS") ))
[[ -n ${KEEPMON_B_DESC:-} ]] && echo "== keepmon-b $KEEPMON_B_DESC"
echo "== keepmon $KEEPMON_DESC; $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "== $NPROC CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); wrk $(wrk_args "$DURATION"); $RUNS run(s) per contender and mode; about $(( n_runs * (RUNS * (DURATION + 1) + WARMUP + 1) / 60 + 1 )) min"
RESULTS_FILE=$WORK/results.tsv
printf 'mode\tcontender\trun\tcpu_s\tforeign_pct\twrk_output\n' >"$RESULTS_FILE"
mkdir -p "$WORK/runs"
started=$SECONDS
TICK=$(getconf CLK_TCK)
for mode in $MODES; do
    for c in $CONTENDERS; do
        load "$c" "$mode" "$WORK/runs/warmup.$mode.$c.txt" "$WARMUP"
        sleep 1
    done
    read -r -a order <<<"$CONTENDERS"
    for run in $(seq "$RUNS"); do
        # Rotate the order every round (A B C, B C A, ...) so drift hits everyone alike.
        line=""
        for ((k = 0; k < ${#order[@]}; k++)); do
            c=${order[$(( (k + run - 1) % ${#order[@]} ))]}
            out=$WORK/runs/$mode.$c.$run.txt
            pid=$(pid_of "$c")
            t0=$(cpu_ticks "$pid")
            read -r busy0 ours0 < <(machine_ticks)
            w0=$(date +%s.%N)
            load "$c" "$mode" "$out" "$DURATION"
            t1=$(cpu_ticks "$pid")
            read -r busy1 ours1 < <(machine_ticks)
            w1=$(date +%s.%N)
            cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TICK" 'BEGIN { printf "%.2f", (b - a) / t }')
            [[ -n $pid ]] || cpu=-
            foreign=$(awk -v b0="$busy0" -v b1="$busy1" -v o0="$ours0" -v o1="$ours1" -v w0="$w0" -v w1="$w1" -v t="$TICK" -v n="$NPROC" \
                'BEGIN { f = 100 * ((b1 - b0) - (o1 - o0)) / (t * n * (w1 - w0)); printf "%.1f", f < 0 ? 0 : f }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$c" "$run" "$cpu" "$foreign" "$out" >>"$RESULTS_FILE"
            line+="$c $(sed -n "s/^Requests\/sec: *//p" "$out") req/s (other $foreign%); "
            sleep 1 # let the closing sockets of this run settle
        done
        echo "   $mode round $run/$RUNS: $line"
    done
done

echo
echo "== results ($((SECONDS - started)) s of runs; medians of $RUNS run(s))"
python3 "$HERE/report.py" "$RESULTS_FILE" ${RESULTS:+--save "$RESULTS"}
if [[ -n ${RESULTS:-} ]]; then echo "per-run TSV: $RESULTS (bench/proxy/report.py $RESULTS prints this report again)"; fi
for f in haproxy keepmon; do
    if grep -qiE 'panic|error' "$WORK/$f.log"; then
        echo "note: $f logged errors:"; grep -iE 'panic|error' "$WORK/$f.log" | sort | uniq -c | head -5
    fi
done

# --- Optional profile ---------------------------------------------------------------
if [[ $PERF == 1 ]]; then
    for mode in $MODES; do
        hdr=()
        [[ $mode == close ]] && hdr=(-H "Connection: close")
        for c in haproxy keepmon; do
            pid=$(pid_of "$c")
            echo
            echo "== perf: $c under $mode load (cpu-clock, 5 s; self time by binary, then user-space symbols)"
            timeout 30 wrk -t"$WRK_THREADS" -c"$CONNS" -d8s "${hdr[@]}" "$(url_of "$c")" >/dev/null 2>&1 &
            LOAD_PID=$!
            sleep 1
            timeout 20 perf record -q -e cpu-clock -F 999 -g -p "$pid" -o "$WORK/perf.$mode.$c.data" -- sleep 5 >/dev/null 2>&1 || true
            wait "$LOAD_PID" 2>/dev/null || true
            LOAD_PID=""
            # Where the time goes (kernel vs the proxy's own code), then the top user-space symbols.
            perf report -q -i "$WORK/perf.$mode.$c.data" --no-children --sort dso -g none 2>/dev/null \
                | sed '/^$/d' | head -4 || true
            perf report -q -i "$WORK/perf.$mode.$c.data" --no-children --sort dso,sym -g none 2>/dev/null \
                | grep -v '\[k\]' | sed '/^$/d' | head -10 | cut -c1-150 || true
        done
    done
fi
