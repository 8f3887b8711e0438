#!/usr/bin/env python3
"""`list opstatus` latency on mon's client port: keepmon vs Debian's mon.

Interleaved rounds; in each round every daemon is measured on one kept-open
connection (the Mon::Client way) and with a fresh connection per request
(the moncmd way), first with no other client, then with IDLE idle
connections held open. Prints one JSON line per measurement, then a table
of medians and ratios.
"""
import argparse
import json
import re
import socket
import statistics
import sys
import time

STATUS = re.compile(rb"^\d{3}\s")


def ask(sock, reader, line):
    sock.sendall(line)
    data_lines = 0
    while True:
        got = reader.readline()
        if not got:
            raise ConnectionError("connection closed")
        if STATUS.match(got):
            if not got.startswith(b"220"):
                raise RuntimeError(got.decode(errors="replace"))
            return data_lines
        data_lines += 1


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")


def kept_open(port, count):
    s, r = connect(port)
    for _ in range(10):
        ask(s, r, b"list opstatus\n")
    lat = []
    lines = 0
    for _ in range(count):
        t = time.perf_counter()
        lines = ask(s, r, b"list opstatus\n")
        lat.append(time.perf_counter() - t)
    ask(s, r, b"quit\n")
    s.close()
    return lat, lines


def fresh(port, count):
    lat = []
    for _ in range(count):
        t = time.perf_counter()
        s, r = connect(port)
        ask(s, r, b"protid 9745\n")
        ask(s, r, b"list opstatus\n")
        ask(s, r, b"quit\n")
        s.close()
        lat.append(time.perf_counter() - t)
    return lat


def login_timing(port, users):
    """Time a refused `login` for known users (ann0..annN, all in the
    userfile) and unknown ones (nobody0..), alternating. Each attempt comes
    from its own loopback address and names its own user, so keepmon's
    per-address and per-user backoff (after five failures) never starts:
    what is timed is the password check alone, from sending the line to the
    reply."""
    known, unknown = [], []
    for i in range(users):
        for name, out in ((f"ann{i}", known), (f"nobody{i}", unknown)):
            src = f"127.0.{1 + i // 200}.{2 + i % 200}"
            s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
            r = s.makefile("rb")
            t = time.perf_counter()
            s.sendall(f"login {name} wrong-password\n".encode())
            got = r.readline()
            out.append(time.perf_counter() - t)
            if not got.startswith(b"5"):
                raise RuntimeError(f"login {name} with a wrong password: {got!r}")
            s.close()
    return known, unknown


def open_idle(port, n):
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    # Let the server accept them all before measuring.
    time.sleep(1.0)
    return socks


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--daemon", action="append", required=True, help="NAME=PORT")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--logins", type=int, default=0, help="users in the login-timing phase (0: skip it)")
    a = p.parse_args()
    daemons = [d.split("=", 1) for d in a.daemon]
    results = {}
    for rnd in range(a.rounds):
        order = daemons if rnd % 2 == 0 else list(reversed(daemons))
        for idle in (0, a.idle):
            for name, port in order:
                port = int(port)
                socks = open_idle(port, idle) if idle else []
                try:
                    lat, lines = kept_open(port, a.count)
                    flat = fresh(port, max(1, a.count // 3))
                    err = None
                except Exception as e:  # a daemon that cannot serve is a result too
                    lat, flat, lines, err = [], [], 0, f"{type(e).__name__}: {e}"
                finally:
                    for s in socks:
                        s.close()
                rec = {"daemon": name, "round": rnd, "idle": idle, "services": lines,
                       "kept_ms": [x * 1000 for x in lat], "fresh_ms": [x * 1000 for x in flat],
                       "error": err}
                print(json.dumps({k: v for k, v in rec.items() if k not in ("kept_ms", "fresh_ms")}
                                 | {"kept_median_ms": statistics.median(rec["kept_ms"]) if lat else None,
                                    "fresh_median_ms": statistics.median(rec["fresh_ms"]) if flat else None}),
                      file=sys.stderr)
                results.setdefault((name, idle), []).append(rec)
                time.sleep(1.0)
    print()
    print(f"{'idle conns':>10} {'daemon':>8} {'lines':>6} {'kept-open median ms':>20} {'p99 ms':>8} {'fresh-conn median ms':>21} {'errors':>6}")
    med = {}
    for idle in (0, a.idle):
        for name, _ in daemons:
            recs = results.get((name, idle), [])
            kept = [x for r in recs for x in r["kept_ms"]]
            fr = [x for r in recs for x in r["fresh_ms"]]
            errors = sum(1 for r in recs if r["error"])
            lines = max((r["services"] for r in recs), default=0)
            km = statistics.median(kept) if kept else float("nan")
            p99 = sorted(kept)[int(len(kept) * 0.99) - 1] if kept else float("nan")
            fm = statistics.median(fr) if fr else float("nan")
            med[(name, idle)] = (km, fm)
            print(f"{idle:>10} {name:>8} {lines:>6} {km:>20.3f} {p99:>8.3f} {fm:>21.3f} {errors:>6}")
            for r in recs:
                if r["error"]:
                    print(f"{'':>10} {name:>8} round {r['round']}: {r['error']}")
    if len(daemons) == 2:
        (base, _), (other, _) = daemons
        print()
        for idle in (0, a.idle):
            kb, fb = med[(base, idle)]
            ko, fo = med[(other, idle)]
            print(f"idle {idle:>4}: {other}/{base} median latency ratio: kept-open {ko / kb:.2f}x, fresh connection {fo / fb:.2f}x")
    if a.logins:
        print()
        print(f"{'daemon':>8} {'known user median ms':>21} {'unknown user median ms':>23} {'unknown/known':>14}")
        for name, port in daemons:
            known, unknown = login_timing(int(port), a.logins)
            km, um = statistics.median(known) * 1000, statistics.median(unknown) * 1000
            print(json.dumps({"daemon": name, "phase": "login", "known_ms": km, "unknown_ms": um}), file=sys.stderr)
            print(f"{name:>8} {km:>21.3f} {um:>23.3f} {um / km:>14.2f}")


if __name__ == "__main__":
    main()
