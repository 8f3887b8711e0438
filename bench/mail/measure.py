#!/usr/bin/env python3
"""One bench/mail run: N mail alerts queued while the relay is down, then the relay comes back.

Prints one JSON line: accept_s (keepmon start -> N letters in the outbox),
drain_s (relay up -> last message received), send_s (first -> last message
received), received, unique (distinct Message-IDs), extra_after_s (messages
arriving in a quiet period after the drain: duplicates would show here).

Usage: measure.py KEEPMON WORKDIR N SMTP_SERVER_SCRIPT PYTHON
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

KEEPMON, WORK, N, SERVER, PYTHON = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
QUIET = 5.0          # seconds watched after the drain for late duplicates
LIMIT = 300.0        # every wait ends after this


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(path, smtp_port, down_port):
    lines = [
        "[daemon]",
        'statedir = "state"',
        'shutdown_grace = "10s"',
        "",
        "[mail]",
        'from = "keepmon@bench.test"',
        'retry_initial = "1s"',
        'retry_max = "2s"',
        "",
        "[mail.smtp]",
        'host = "127.0.0.1"',
        "port = %d" % smtp_port,
        'timeout = "10s"',
        "",
        "[hostgroups]",
        'local = ["127.0.0.1"]',
        "",
        "[actions.ops]",
        'type = "mail"',
        'to = ["ops@example.com"]',
        "",
    ]
    for i in range(N):
        lines += [
            "[watch.local.s%04d]" % i,
            'interval = "30s"',
            'monitor = { type = "tcp", port = %d, timeout = "1s" }' % down_port,
            'alert = ["ops"]',
            'alertevery = "1h"',
            "",
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def dump(config):
    out = subprocess.run([KEEPMON, "dump", "--json", "-c", config], capture_output=True, timeout=30)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["mail"]


def wait(what, check, limit=LIMIT, step=0.05):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise SystemExit("measure.py: timed out waiting for " + what)


def received(out):
    try:
        return sorted(n for n in os.listdir(out) if n.endswith(".json"))
    except FileNotFoundError:
        return []


def stop(p):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    os.makedirs(WORK, exist_ok=True)
    config = os.path.join(WORK, "keepmon.toml")
    smtp_port, down_port = free_port(), free_port()
    write_config(config, smtp_port, down_port)
    out = os.path.join(WORK, "received")
    daemon = server = None
    log = open(os.path.join(WORK, "daemon.log"), "w")
    try:
        started = time.monotonic()
        daemon = subprocess.Popen([KEEPMON, "start", "-c", config], stdout=subprocess.DEVNULL, stderr=log)
        wait("the daemon", lambda: dump(config) is not None)
        wait("%d queued letters" % N, lambda: (dump(config) or {}).get("pending") == N, step=0.2)
        accept_s = time.monotonic() - started

        server = subprocess.Popen(
            [PYTHON, SERVER, "--port", str(smtp_port), "--out", out],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        line = server.stdout.readline().decode()
        if not line.startswith("READY"):
            raise SystemExit("measure.py: SMTP server did not start: %r" % line)
        up = time.monotonic()
        first = wait("the first message", lambda: received(out) and time.monotonic())
        wait("%d messages" % N, lambda: len(received(out)) >= N, step=0.01)
        last = time.monotonic()
        wait("an empty outbox", lambda: (dump(config) or {}).get("pending") == 0)
        time.sleep(QUIET)
        names = received(out)
        ids = set()
        for name in names:
            with open(os.path.join(out, name)) as f:
                data = json.load(f)["data"]
            m = re.search(r"^Message-ID:\s*(\S+)", data, re.M | re.I)
            ids.add(m.group(1) if m else name)
        mail = dump(config)
        print(json.dumps({
            "n": N,
            "accept_s": round(accept_s, 3),
            "drain_s": round(last - up, 3),
            "send_s": round(last - first, 3),
            "received": len(names),
            "unique": len(ids),
            "delivered": mail["delivered"],
            "dead": mail["dead_total"],
            "extra_after_quiet": len(names) - N,
        }), flush=True)
    finally:
        stop(daemon)
        stop(server)
        log.close()


if __name__ == "__main__":
    main()
