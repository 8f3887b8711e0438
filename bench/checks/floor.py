#!/usr/bin/env python3
"""The kernel floor: every --interval seconds, one plain non-blocking TCP
connect (then close) to each of the N target addresses, and nothing else.

Its system CPU time per check is what the kernel charges a process for a
loopback connect on this machine (both ends of the handshake run in the
connecting process's softirq context), so it shows how much of a daemon's
cost is the TCP work itself rather than the daemon.
"""

import argparse
import select
import socket
import time

from common import hosts


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--hosts", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=1.0)
    a = p.parse_args()

    targets = hosts(a.hosts)
    poller = select.epoll()
    due = time.monotonic()
    while True:
        pending = {}
        for host in targets:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            s.connect_ex((host, a.port))  # EINPROGRESS; the result comes as EPOLLOUT
            poller.register(s.fileno(), select.EPOLLOUT)
            pending[s.fileno()] = s
        while pending:
            events = poller.poll(2)
            if not events:
                break  # a target did not answer in 2 s: give up on this round
            for fd, _ in events:
                poller.unregister(fd)
                pending.pop(fd).close()
        for s in pending.values():
            poller.unregister(s.fileno())
            s.close()
        due += a.interval
        time.sleep(max(0.0, due - time.monotonic()))


if __name__ == "__main__":
    main()
