#!/usr/bin/env python3
"""Write the two configs of one bench size into DIR.

DIR/mon.cf and DIR/keepmon.cf have the same hostgroups and services: N hosts
in groups of --per-group, one service per group running
`tcp.monitor -p PORT -t 2` every second. They differ only in the globals:
each daemon gets its own state and log directories, and keepmon.cf adds
keepmon's extensions (builtin_monitors = prefer, metrics_listen), which
Debian's mon would reject.
"""

import argparse
import os

from common import hosts


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True)
    p.add_argument("--hosts", type=int, required=True)
    p.add_argument("--per-group", type=int, default=100)
    p.add_argument("--port", type=int, required=True, help="target port")
    p.add_argument("--mon-port", type=int, required=True, help="mon client port")
    p.add_argument("--trap-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--randstart", help="e.g. 1s: spread the first runs (default: none)")
    a = p.parse_args()

    addrs = hosts(a.hosts)
    groups = [addrs[i : i + a.per_group] for i in range(0, len(addrs), a.per_group)]
    body = []
    for g, members in enumerate(groups):
        body.append(f"hostgroup g{g:04d} {' '.join(members)}\n\n")
    for g in range(len(groups)):
        body.append(
            f"watch g{g:04d}\n"
            f"    service tcp\n"
            f"        interval 1s\n"
            f"        monitor tcp.monitor -p {a.port} -t 2\n\n"
        )

    with open(os.path.join(a.dir, "auth.cf"), "w") as f:
        f.write("command section\nlist: all\nversion: all\nquit: all\nprotid: all\n")

    for daemon in ("mon", "keepmon"):
        home = os.path.join(a.dir, daemon)
        for sub in ("state", "log"):
            os.makedirs(os.path.join(home, sub), exist_ok=True)
        globals_ = [
            f"cfbasedir    = {a.dir}",
            f"authfile     = {a.dir}/auth.cf",
            "alertdir     = /usr/lib/mon/alert.d",
            "mondir       = /usr/lib/mon/mon.d",
            f"statedir     = {home}/state",
            f"logdir       = {home}/log",
            f"pidfile      = {home}/state/{daemon}.pid",
            "serverbind   = 127.0.0.1",
            "trapbind     = 127.0.0.1",
            f"serverport   = {a.mon_port}",
            f"trapport     = {a.trap_port}",
            "histlength   = 100",
            "dtlogging    = no",
        ]
        if a.randstart:
            globals_.append(f"randstart    = {a.randstart}")
        if daemon == "keepmon":
            globals_ += [
                "# keepmon extensions: tcp.monitor runs in-process",
                "builtin_monitors = prefer",
                f"metrics_listen   = 127.0.0.1:{a.metrics_port}",
            ]
        with open(os.path.join(a.dir, f"{daemon}.cf"), "w") as f:
            f.write(f"# bench/checks: {a.hosts} hosts, {len(groups)} services\n")
            f.write("\n".join(globals_) + "\n\n" + "".join(body))


if __name__ == "__main__":
    main()
