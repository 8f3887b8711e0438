#!/usr/bin/env python3
"""VRRP failover time, keepmon vs Debian's keepalived, measured the same way in one run.

Topology (reference/vrrp.md section 14): a bridge namespace, two director
namespaces (10.99.0.1 priority 150, 10.99.0.2 priority 100) and a client
namespace (10.99.0.100) that pings the VIP 10.99.0.50 every 2 ms. A failure
is injected at a random phase; the outage is the largest gap between ping
replies at or after the injection (minus 10 ms).

* crash    = the master's bridge port is set down (the director vanishes
             from the LAN, like a machine that dies). A SIGKILL of the daemon
             would leave the VIP configured on a live kernel that keeps
             answering pings, so it measures nothing.
* graceful = SIGTERM to the master daemon (it sends priority 0).

Then `dual` randomized failovers of a keepmon pair (graceful stops and
crashes of the current master, each followed by recovery and preemption)
while `ip monitor` timestamps every VIP addition and removal; an interval
longer than 10 ms in which both directors hold the VIP is a dual-master
interval.

Usage: failover.py KEEPMON RUNS DUAL   (root; needs ip, ping, keepalived)
Prints one JSON line per trial, then the summary table.
"""

import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

VIP = "10.99.0.50"
PREFIX = "kvb%d" % (os.getpid() % 10000)
BR, A, B, CL = PREFIX + "br", PREFIX + "a", PREFIX + "b", PREFIX + "cl"
WORK = tempfile.mkdtemp(prefix="keepmon-bench-vrrp.")

# (label, version, advert interval in seconds)
CONFIGS = [("v2 1s", 2, 1.0), ("v3 100ms", 3, 0.1), ("v3 50ms", 3, 0.05)]
# ONLY=v3 keeps the configurations whose label contains it.
CONFIGS = [c for c in CONFIGS if os.environ.get("ONLY", "") in c[0]]
MODES = ["crash", "graceful"]
IMPLS = ["keepalived", "keepmon"]


def ip(*args, check=True):
    return subprocess.run(("ip",) + args, check=check, capture_output=True, text=True)


def topology_up():
    for ns in (BR, A, B, CL):
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", BR, "link", "add", "br0", "type", "bridge")
    ip("-n", BR, "link", "set", "br0", "up")
    for ns, addr, port in ((A, "10.99.0.1/24", "va"), (B, "10.99.0.2/24", "vb"), (CL, "10.99.0.100/24", "vcl")):
        ip("-n", BR, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", BR, "link", "set", port, "master", "br0", "up")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "addr", "add", addr, "dev", "eth0")


def topology_down():
    for ns in (BR, A, B, CL):
        ip("netns", "del", ns, check=False)


def has_vip(ns):
    out = ip("-n", ns, "-4", "-o", "addr", "show", "dev", "eth0", check=False).stdout
    return (" %s/" % VIP) in out


def port(ns, up):
    ip("-n", BR, "link", "set", "va" if ns == A else "vb", "up" if up else "down")


class Node:
    """One director daemon in a namespace."""

    def __init__(self, impl, ns, priority, version, interval, keepmon):
        self.impl, self.ns = impl, ns
        self.dir = os.path.join(WORK, "%s-%s" % (impl, ns))
        os.makedirs(self.dir, exist_ok=True)
        self.log = open(os.path.join(self.dir, "log"), "a")
        if impl == "keepmon":
            conf = os.path.join(self.dir, "keepmon.toml")
            with open(conf, "w") as f:
                f.write(
                    '[daemon]\nstatedir = "state"\nshutdown_grace = "2s"\n\n'
                    '[vrrp.VI_1]\ninterface = "eth0"\nvirtual_router_id = 51\n'
                    'priority = %d\nversion = %d\nadvert_int = "%dms"\n'
                    'virtual_ipaddress = ["%s/24"]\n' % (priority, version, round(interval * 1000), VIP)
                )
            argv = [keepmon, "-c", conf, "start"]
        else:
            conf = os.path.join(self.dir, "keepalived.conf")
            with open(conf, "w") as f:
                f.write(
                    "global_defs {\n  router_id %s\n  vrrp_version %d\n  script_user root\n"
                    "  enable_script_security\n}\n"
                    "vrrp_instance VI_1 {\n  state %s\n  interface eth0\n  virtual_router_id 51\n"
                    "  priority %d\n  advert_int %s\n  virtual_ipaddress {\n    %s/24\n  }\n}\n"
                    % (ns, version, "MASTER" if priority > 100 else "BACKUP", priority, interval, VIP)
                )
            argv = ["keepalived", "-P", "-n", "-l", "-f", conf,
                    "-p", os.path.join(self.dir, "k.pid"), "-r", os.path.join(self.dir, "v.pid")]
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns] + argv,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self):
        self.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(check, limit):
    deadline = time.time() + limit
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def cleanup_vips():
    for ns in (A, B):
        ip("-n", ns, "addr", "del", VIP + "/24", "dev", "eth0", check=False)
    port(A, True)
    port(B, True)


def trial(impl, mode, version, interval):
    a = Node(impl, A, 150, version, interval, keepmon)
    b = Node(impl, B, 100, version, interval, keepmon)
    try:
        if not wait_for(lambda: has_vip(A) and not has_vip(B), 20):
            return None
        time.sleep(max(1.0, 3 * interval))
        out = open(os.path.join(WORK, "ping.txt"), "w")
        ping = subprocess.Popen(["ip", "netns", "exec", CL, "ping", "-D", "-n", "-i", "0.002", "-W", "0.05", VIP],
                                stdout=out, stderr=subprocess.DEVNULL)
        time.sleep(1 + random.random() * interval)
        t0 = time.time()
        if mode == "crash":
            port(A, False)
        else:
            a.terminate()
        time.sleep(4 * interval + 1.5)
        ping.send_signal(signal.SIGINT)
        ping.wait()
        out.close()
        took_over = has_vip(B)
        replies = []
        with open(os.path.join(WORK, "ping.txt")) as f:
            for line in f:
                if line.startswith("[") and "bytes from" in line:
                    replies.append(float(line[1:line.index("]")]))
        replies = [t for t in replies if t >= t0 - 0.01]
        if len(replies) < 2 or not took_over:
            return None
        gaps = [(b2 - b1, b1) for b1, b2 in zip(replies, replies[1:])]
        gap, start = max(gaps)
        return {"outage": gap, "start": start - t0, "end": start + gap - t0}
    finally:
        a.stop()
        b.stop()
        cleanup_vips()


def rfc_window(mode, version, interval):
    skew = (256 - 100) / 256.0 * (1.0 if version == 2 else interval)
    mdi = 3 * interval + skew
    return (skew, skew) if mode == "graceful" else (mdi - interval, mdi)


def dual(n):
    """n randomized failovers of a keepmon pair (v3 100 ms); counts dual masters.

    `ip -ts monitor address` in each director namespace timestamps every
    VIP addition and removal in the kernel; the sweep over those events
    gives every interval in which both directors held the VIP. One longer
    than 10 ms is a dual-master interval (a preemption overlaps for the
    time an advert takes to reach the old master).
    """
    interval = 0.1
    monitors = {ns: subprocess.Popen(["ip", "-ts", "-n", ns, "monitor", "address"],
                                     stdout=subprocess.PIPE, text=True) for ns in (A, B)}
    time.sleep(0.3)
    a = Node("keepmon", A, 150, 3, interval, keepmon)
    b = Node("keepmon", B, 100, 3, interval, keepmon)
    failovers = 0
    failed = 0
    try:
        if not wait_for(lambda: has_vip(A) and not has_vip(B), 20):
            return {"error": "no initial master"}
        while failovers < n:
            time.sleep(random.random() * 0.5)
            how = random.choice(["graceful", "crash"])
            if how == "graceful":
                a.stop()
            else:
                port(A, False)
            ok = wait_for(lambda: has_vip(B), 5)
            failovers += 1
            failed += not ok
            time.sleep(random.random() * 0.5)
            if how == "graceful":
                a = Node("keepmon", A, 150, 3, interval, keepmon)
            else:
                port(A, True)
            ok = wait_for(lambda: has_vip(A) and not has_vip(B), 5)
            failovers += 1
            failed += not ok
    finally:
        a.stop()
        b.stop()
        cleanup_vips()
        time.sleep(0.3)
        events = []
        for ns, proc in monitors.items():
            proc.terminate()
            out, _ = proc.communicate()
            for line in out.splitlines():
                if line.startswith("[") and (" %s/" % VIP) in line:
                    stamp = datetime.datetime.fromisoformat(line[1:line.index("]")]).timestamp()
                    events.append((stamp, ns, "Deleted" not in line))
    events.sort()
    holds = {A: False, B: False}
    overlaps = []
    since = None
    for stamp, ns, present in events:
        holds[ns] = present
        both = holds[A] and holds[B]
        if both and since is None:
            since = stamp
        elif not both and since is not None:
            overlaps.append(stamp - since)
            since = None
    return {
        "failovers": failovers,
        "missed": failed,
        "vip_events": len(events),
        "overlaps": len(overlaps),
        "max_overlap_ms": round(max(overlaps, default=0.0) * 1000, 3),
        "dual_intervals": sum(1 for o in overlaps if o > 0.010),
    }


def main():
    global keepmon
    keepmon, runs, ndual = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    topology_down()
    topology_up()
    results = {}
    try:
        for label, version, interval in CONFIGS:
            for mode in MODES:
                for run in range(runs):
                    # Interleaved: keepalived and keepmon alternate within a run.
                    for impl in (IMPLS if run % 2 == 0 else IMPLS[::-1]):
                        r = trial(impl, mode, version, interval)
                        line = {"impl": impl, "mode": mode, "config": label, "run": run, "result": r}
                        print(json.dumps(line), flush=True)
                        if r:
                            results.setdefault((label, mode, impl), []).append(r["outage"])
        dual_result = dual(ndual) if ndual > 0 else None
        if dual_result:
            print(json.dumps({"dual": dual_result}), flush=True)
    finally:
        topology_down()

    print()
    print("%-9s %-8s %6s %14s %14s %7s %15s" % ("config", "mode", "runs", "keepalived s", "keepmon s", "ratio", "RFC window s"))
    for label, version, interval in CONFIGS:
        for mode in MODES:
            ka = results.get((label, mode, "keepalived"), [])
            km = results.get((label, mode, "keepmon"), [])
            mka = statistics.median(ka) if ka else float("nan")
            mkm = statistics.median(km) if km else float("nan")
            lo, hi = rfc_window(mode, version, interval)
            window = "%.3f" % hi if mode == "graceful" else "%.3f-%.3f" % (lo, hi)
            print("%-9s %-8s %3d/%-3d %14.3f %14.3f %7.2f %15s" % (
                label, mode, len(ka), len(km), mka, mkm, mkm / mka if ka and km else float("nan"), window))
    print("(median of the largest ping gap; ratio = keepmon / keepalived; runs = keepalived/keepmon trials that succeeded)")
    if dual_result:
        print("randomized failovers (keepmon pair, v3 100 ms): %(failovers)d failovers, %(missed)d missed; "
              "%(dual_intervals)d dual-master intervals (> 10 ms); %(overlaps)d overlaps in all, "
              "longest %(max_overlap_ms).3f ms (%(vip_events)d VIP events)" % dual_result)


if __name__ == "__main__":
    main()
