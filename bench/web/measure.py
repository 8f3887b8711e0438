#!/usr/bin/env python3
"""bench/web: write the config, then measure the page and the daemon's CPU.

`config` writes DIR/keepmon.toml: SERVICES tcp checks every 10 s (spread by
randstart; every tenth checks a closed port and fails), REALS real servers in
proxy virtual services of 10, and the web listener. `measure` waits for the
page, fetches it 200 times in a row (latency and size), then reads the
daemon's CPU time (/proc/PID/stat) over WINDOW seconds idle and WINDOW
seconds with the page fetched every 2 s.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import time


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listen(a):
    """Accept and close connections on a port of our own (the checks' target)."""
    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(4096)
    tmp = os.path.join(a.dir, "up.port.tmp")
    with open(tmp, "w") as f:
        f.write(str(up.getsockname()[1]))
    os.rename(tmp, os.path.join(a.dir, "up.port"))
    while True:
        c, _ = up.accept()
        c.close()


def config(a):
    with open(os.path.join(a.dir, "up.port")) as f:
        up_port = int(f.read())
    web, closed, *vs_ports = free_ports(2 + (a.reals + 9) // 10)
    lines = [
        "[daemon]",
        'statedir = "state"',
        'randstart = "10s"',
        "",
        "[web]",
        f'listen = "127.0.0.1:{web}"',
        "",
        "[hostgroups]",
        'local = ["127.0.0.1"]',
        "",
    ]
    for i in range(a.services):
        port = closed if i % 10 == 0 else up_port
        lines += [
            f"[watch.local.s{i:04d}]",
            'interval = "10s"',
            f'monitor = {{ type = "tcp", port = {port}, timeout = "1s" }}',
            "",
        ]
    for v, listen in enumerate(vs_ports):
        reals = ", ".join(
            f'{{ addr = "127.0.0.1:{20000 + v * 10 + r}" }}'
            for r in range(min(10, a.reals - v * 10))
        )
        health = "local:s0000" if v % 5 == 0 else "local:s0001"
        lines += [
            f"[virtual_servers.vs{v:02d}]",
            f'listen = "127.0.0.1:{listen}"',
            f'health = "{health}"',
            f"real_servers = [{reals}]",
            "",
        ]
    with open(os.path.join(a.dir, "keepmon.toml"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(a.dir, "ports.json"), "w") as f:
        json.dump({"web": web, "up": up_port}, f)
    print(f"config: {a.services} services, {a.reals} real servers, web on 127.0.0.1:{web}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def fetch(port, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    elapsed = time.perf_counter() - t
    c.close()
    fetch.timing = r.getheader("server-timing") or ""
    return r.status, body, elapsed


def measure(a):
    with open(os.path.join(a.dir, "ports.json")) as f:
        ports = json.load(f)
    web = ports["web"]
    deadline = time.time() + 60
    while True:
        try:
            status, body, _ = fetch(web)
            if status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit("the page never answered")
        time.sleep(0.2)
    time.sleep(12)  # every service checked once
    status, body, _ = fetch(web, "/api/v1/services")
    doc = json.loads(body)
    failing = sum(1 for s in doc["services"] if s["failing"])
    print(f"services: {len(doc['services'])}, failing: {failing}")
    for path in ("/", "/api/v1/status", "/service/local/s0000"):
        times = []
        parts = {"view": [], "render": []}
        size = 0
        for _ in range(200):
            status, body, elapsed = fetch(web, path)
            assert status == 200, (path, status)
            times.append(elapsed * 1000)
            size = len(body)
            for item in fetch.timing.split(","):
                name, _, dur = item.strip().partition(";dur=")
                if name in parts:
                    parts[name].append(float(dur))
        times.sort()
        server = "".join(
            f", {name} median {statistics.median(v):.1f} ms max {max(v):.1f} ms"
            for name, v in parts.items()
            if v
        )
        print(
            f"GET {path}: {size / 1024:.0f} KiB, median {statistics.median(times):.1f} ms, "
            f"p95 {times[int(len(times) * 0.95)]:.1f} ms, max {times[-1]:.1f} ms{server}"
        )
    time.sleep(2)
    before = cpu_seconds(a.pid)
    time.sleep(a.window)
    idle = (cpu_seconds(a.pid) - before) / a.window * 100
    print(f"daemon CPU idle (checks only): {idle:.2f}% of one core over {a.window} s")
    before = cpu_seconds(a.pid)
    start = time.time()
    n = 0
    while time.time() - start < a.window:
        fetch(web)
        n += 1
        time.sleep(max(0, start + n * 2 - time.time()))
    busy = (cpu_seconds(a.pid) - before) / a.window * 100
    print(
        f"daemon CPU with the page fetched every 2 s: {busy:.2f}% of one core "
        f"({n} fetches; +{busy - idle:.2f} points)"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("config")
    c.add_argument("--dir", required=True)
    c.add_argument("--services", type=int, required=True)
    c.add_argument("--reals", type=int, required=True)
    listen_ = sub.add_parser("listen")
    listen_.add_argument("--dir", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--dir", required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--window", type=int, required=True)
    a = p.parse_args()
    {"config": config, "listen": listen, "measure": measure}[a.cmd](a)


if __name__ == "__main__":
    main()
