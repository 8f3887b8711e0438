#!/usr/bin/env python3
"""Memory per idle client connection: keepmon's proxy vs Debian's HAProxy.

Each proxy (tcp mode, then http mode) gets CONNS client connections that
connect and send nothing; in tcp mode each also holds its connection to the
backend (a Python server that accepts and never reads). A third row,
"http-used", is http mode with connections that each sent one request and
read its answer (from a Python server that answers every request) before
they idle: what a keep-alive connection holds between two requests. The
proxy's RSS is read from /proc before and after (settled), and the growth
per connection is printed with the ratio. Medians of ROUNDS rounds; every process is
stopped at the end. See README.md ("Memory per idle connection").

Usage: idle_memory.py --keepmon BIN [--conns 4000] [--rounds 3] [--threads 2]
"""
import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PORT_BASE = 18190


def _raise_nofile():
    """The soft open-file limit up to the hard one (both sides of every
    connection are open here)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_port(port, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


HELD = []  # the backend's connections
HELD_LOCK = threading.Lock()


def drop_held():
    """Closes what the backend holds (between measurements)."""
    with HELD_LOCK:
        for c in HELD:
            c.close()
        HELD.clear()


def serve_backend(port, stop, take):
    """Accepts connections on port until stop is set, handing each to take."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8192)
    srv.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = srv.accept()
            take(conn)
        except socket.timeout:
            pass
    srv.close()


def hold(conn):
    """Holds a connection, reading nothing."""
    with HELD_LOCK:
        HELD.append(conn)


def holding_backend(port, stop):
    """Accepts connections and holds them, reading nothing."""
    serve_backend(port, stop, hold)
    drop_held()


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def answer_connection(conn):
    """Answers each request head on conn with ANSWER until it closes."""
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
            buf = buf.split(b"\r\n\r\n", 1)[1]
            conn.sendall(ANSWER)
    except OSError:
        pass
    finally:
        conn.close()


def answering_backend(port, stop):
    """Accepts connections and answers every request on them."""
    def answer(conn):
        conn.settimeout(None)
        threading.Thread(target=answer_connection, args=(conn,), daemon=True).start()
    serve_backend(port, stop, answer)


def one_request(sock):
    """Sends a request on sock and reads the whole answer (Content-Length 2)."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n")
    got = b""
    while not (b"\r\n\r\n" in got and got.endswith(b"ok")):
        data = sock.recv(4096)
        if not data:
            raise RuntimeError(f"closed after {got!r}")
        got += data


def measure(pid, port, conns, used=False):
    """Growth of pid's RSS (KB) per idle connection to port (each after one
    request and its answer when used)."""
    time.sleep(1.0)
    before = rss_kb(pid)
    socks = []
    for _ in range(conns):
        sock = socket.create_connection(("127.0.0.1", port), 5)
        if used:
            one_request(sock)
        socks.append(sock)
    time.sleep(2.0)  # let the proxy accept and (tcp) connect them all
    after = rss_kb(pid)
    for s in socks:
        s.close()
    drop_held()
    time.sleep(1.0)
    return (after - before) / conns


def start(argv, env=None, log=None):
    def limits():
        _raise_nofile()
    return subprocess.Popen(argv, env=env, stdout=log, stderr=log, preexec_fn=limits)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--keepmon", required=True)
    a.add_argument("--haproxy", default="/usr/sbin/haproxy")
    a.add_argument("--conns", type=int, default=4000, help="at most 9,000 (HAProxy's maxconn here)")
    a.add_argument("--rounds", type=int, default=3)
    a.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = a.parse_args()
    _raise_nofile()
    work = tempfile.mkdtemp(prefix="keepmon-bench-idle.")
    backend_port, hap_port, km_port = PORT_BASE, PORT_BASE + 1, PORT_BASE + 2
    answering_port = PORT_BASE + 3
    stop_backend = threading.Event()
    backend = threading.Thread(target=holding_backend, args=(backend_port, stop_backend), daemon=True)
    backend.start()
    answering = threading.Thread(target=answering_backend, args=(answering_port, stop_backend), daemon=True)
    answering.start()
    results = {}
    rows = ("tcp", "http", "http-used")
    try:
        for row in rows:
            mode = "tcp" if row == "tcp" else "http"
            used = row == "http-used"
            server_port = answering_port if used else backend_port
            hap_cfg = os.path.join(work, f"haproxy-{row}.cfg")
            with open(hap_cfg, "w") as f:
                f.write(f"""global
    nbthread {args.threads}
    maxconn 9000
defaults
    mode {mode}
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout http-request 1h
    timeout http-keep-alive 1h
listen idle
    bind 127.0.0.1:{hap_port}
    server s1 127.0.0.1:{server_port}
""")
            km_cfg = os.path.join(work, f"keepmon-{row}.toml")
            with open(km_cfg, "w") as f:
                extra = 'mode = "http"\ntimeout = { http_request = "1h", http_keep_alive = "1h" }\n' if mode == "http" else ""
                f.write(f"""[daemon]
statedir = "{work}/state-{row}"
[mon_protocol]
enabled = false
[virtual_servers.idle]
listen = "127.0.0.1:{km_port}"
scheduler = "rr"
{extra}real_servers = [ {{ addr = "127.0.0.1:{server_port}" }} ]
""")
            for rnd in range(args.rounds):
                order = [("haproxy", hap_port), ("keepmon", km_port)]
                if rnd % 2:
                    order.reverse()
                for name, port in order:
                    log = open(os.path.join(work, f"{name}-{row}.log"), "a")
                    if name == "haproxy":
                        p = start([args.haproxy, "-db", "-f", hap_cfg], log=log)
                    else:
                        env = dict(os.environ, TOKIO_WORKER_THREADS=str(args.threads), KEEPMON_LOG="warn")
                        p = start([args.keepmon, "start", "-c", km_cfg], env=env, log=log)
                    try:
                        wait_port(port)
                        per = measure(p.pid, port, args.conns, used)
                    except Exception:
                        log.flush()
                        with open(log.name) as f:
                            sys.stderr.write(f.read()[-2000:])
                        raise
                    finally:
                        stop(p)
                    print(f"{row} round {rnd + 1}: {name} {per:.2f} KB per idle connection", file=sys.stderr)
                    results.setdefault((row, name), []).append(per)
    finally:
        stop_backend.set()
        backend.join(5)
        answering.join(5)
    print()
    print(f"{'mode':<9} {'proxy':<8} {'KB per idle connection (median)':>32} {'runs':>24}")
    for (row, name), v in sorted(results.items()):
        print(f"{row:<9} {name:<8} {statistics.median(v):>32.2f} {' '.join('%.2f' % x for x in v):>24}")
    print()
    for row in rows:
        k = statistics.median(results[(row, "keepmon")])
        h = statistics.median(results[(row, "haproxy")])
        verdict = "ok" if k <= h else "MISS"
        print(f"{row}: keepmon/HAProxy memory per idle connection {k / h:.2f}x ({verdict}; target <= 1.0x)")


if __name__ == "__main__":
    main()
