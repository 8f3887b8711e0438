#!/usr/bin/env python3
"""The check targets: one listening socket per loopback address (127.1.x.y:PORT),
each connection accepted and closed at once, and counted.

Every 0.1 s the file --status is rewritten with "ACCEPTED MONOTONIC_TIME", so
the bench can count completed connect checks the same way for both daemons.
"""

import argparse
import os
import select
import socket
import time

from common import hosts


def write_status(path, accepted):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{accepted} {time.monotonic()}\n")
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, required=True, help="number of addresses")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--status", required=True)
    a = p.parse_args()

    poller = select.epoll()
    listeners = {}
    for addr in hosts(a.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, a.port))
        s.listen(1024)
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
        listeners[s.fileno()] = s

    accepted = 0
    write_status(a.status, accepted)  # also says "ready"
    next_write = time.monotonic() + 0.1
    while True:
        for fd, _ in poller.poll(0.1):
            s = listeners[fd]
            while True:
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted += 1
        now = time.monotonic()
        if now >= next_write:
            write_status(a.status, accepted)
            next_write = now + 0.1


if __name__ == "__main__":
    main()
