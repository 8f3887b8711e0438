#!/usr/bin/env python3
"""Measure one running daemon (keepmon, mon, or floor.py) for a fixed window;
print one JSON line (and a readable one on stderr).

It waits until the daemon answers (keepmon: its metrics endpoint; mon: its
client port), lets it warm up, then reads, over WINDOW seconds:

  cpu     utime+stime+cutime+cstime of the daemon (/proc/PID/stat 14-17),
          so mon's reaped tcp.monitor children are included
  checks  connections the target listener accepted (same count for both)
  rss     VmHWM of the daemon, and the peak of the sampled PSS sum over the
          daemon and its children (every 0.5 s)
  lag     keepmon: keepmon_schedule_lag_seconds quantiles at the end;
          mon: from `list opstatus` polled every 0.5 s, each change of a
          service's last_check gives a run; lag = gap between runs - interval
          (whole seconds: mon stores time() in last_check)
  floor   floor.py has no schedule of its own to report: CPU, checks, RSS only
"""

import argparse
import json
import re
import socket
import statistics
import sys
import time
import urllib.request

from common import children, cpu_seconds, cpu_times, pss_kb, status_kb


def listener_count(path):
    with open(path) as f:
        count, at = f.read().split()
    return int(count), float(at)


def keepmon_metrics(port):
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def keepmon_sum(values, prefix):
    return sum(v for k, v in values.items() if k.startswith(prefix))


def mon_opstatus(port):
    """`list opstatus` over mon's client protocol: {(group, service): {key: value}}."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"list opstatus\n")
        data = b""
        while not re.search(rb"^[2-5]\d\d [^\n]*\n", data, re.M):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.sendall(b"quit\n")
    services = {}
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("group="):
            fields = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
            services[(fields["group"], fields["service"])] = fields
    return services


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * q)]


def alive(pid):
    try:
        cpu_seconds(pid)
        return True
    except OSError:
        return False


def wait_ready(a):
    """Until keepmon's metrics or mon's client port answer."""
    deadline = time.monotonic() + a.ready_timeout
    while True:
        try:
            if a.daemon == "keepmon":
                keepmon_metrics(a.metrics_port)
            elif a.daemon == "mon":
                mon_opstatus(a.mon_port)
            return
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                sys.exit(f"measure: {a.daemon} did not answer within {a.ready_timeout} s")
            if not alive(a.pid):
                sys.exit(f"measure: {a.daemon} (pid {a.pid}) exited")
            time.sleep(0.2)


class MonRuns:
    """mon's runs, seen as changes of each service's last_check in `list opstatus`."""

    def __init__(self, port):
        self.port = port
        self.last_check = {}
        self.gaps = []
        self.failing = set()

    def poll(self, counting):
        for key, f in mon_opstatus(self.port).items():
            if counting and f.get("opstatus") == "0":
                self.failing.add(key)
            if not f.get("last_check"):
                continue
            t = int(f["last_check"])
            if counting and key in self.last_check and t != self.last_check[key]:
                self.gaps.append(t - self.last_check[key])
            self.last_check[key] = t


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--daemon", choices=["keepmon", "mon", "floor"], required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--hosts", type=int, required=True)
    p.add_argument("--per-group", type=int, default=100)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--listen-status", required=True)
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--mon-port", type=int)
    p.add_argument("--warmup", type=float, default=10)
    p.add_argument("--window", type=float, default=20)
    p.add_argument("--ready-timeout", type=float, default=30)
    p.add_argument("--run", type=int, default=1)
    a = p.parse_args()

    wait_ready(a)
    with open("/proc/loadavg") as f:
        loadavg = float(f.read().split()[0])
    # mon: poll from the start of the warm-up, so every service has a
    # baseline last_check when the window opens.
    mon = MonRuns(a.mon_port) if a.daemon == "mon" else None
    warm_end = time.monotonic() + a.warmup
    while time.monotonic() < warm_end:
        if mon:
            mon.poll(counting=False)
        time.sleep(0.5)

    user0, sys0 = cpu_times(a.pid)
    count0, at0 = listener_count(a.listen_status)
    metrics0 = keepmon_metrics(a.metrics_port) if a.daemon == "keepmon" else None
    t0 = time.monotonic()
    peak_pss = 0
    while time.monotonic() - t0 < a.window:
        pss = pss_kb(a.pid) + sum(pss_kb(c) for c in children(a.pid))
        peak_pss = max(peak_pss, pss)
        if mon:
            mon.poll(counting=True)
        time.sleep(max(0.0, min(0.5, a.window - (time.monotonic() - t0))))
    user1, sys1 = cpu_times(a.pid)
    count1, at1 = listener_count(a.listen_status)
    elapsed = time.monotonic() - t0
    if not alive(a.pid):
        sys.exit(f"measure: {a.daemon} (pid {a.pid}) exited during the window")

    cpu = (user1 - user0) + (sys1 - sys0)
    checks = count1 - count0
    per_1k = lambda seconds: round(1000 * seconds / checks, 4) if checks else None
    r = {
        "daemon": a.daemon,
        "hosts": a.hosts,
        "services": a.hosts // a.per_group,
        "run": a.run,
        "window_s": round(elapsed, 2),
        "loadavg_at_start": loadavg,
        "cpu_s": round(cpu, 3),
        "cpu_user_s": round(user1 - user0, 3),
        "cpu_sys_s": round(sys1 - sys0, 3),
        "cpu_pct_of_core": round(100 * cpu / elapsed, 1),
        "checks": checks,
        "checks_per_s": round(checks / (at1 - at0), 1),
        "target_checks_per_s": a.hosts / a.interval,
        "cpu_s_per_1000_checks": per_1k(cpu),
        "user_s_per_1000_checks": per_1k(user1 - user0),
        "sys_s_per_1000_checks": per_1k(sys1 - sys0),
        "vmhwm_kb": status_kb(a.pid, "VmHWM"),
        "peak_pss_with_children_kb": peak_pss,
        "daemon_checks": None,
        "lag_p50_s": None,
        "lag_p99_s": None,
        "lag_max_s": None,
        "failing_services": None,
    }
    if mon:
        lags = [g - a.interval for g in mon.gaps]
        r.update(
            daemon_checks=len(mon.gaps) * a.per_group,
            lag_p50_s=percentile(lags, 0.5),
            lag_p99_s=percentile(lags, 0.99),
            lag_max_s=max(lags, default=None),
            mean_gap_s=round(statistics.mean(mon.gaps), 2) if mon.gaps else None,
            failing_services=len(mon.failing),
        )
    elif a.daemon == "keepmon":
        metrics1 = keepmon_metrics(a.metrics_port)
        q = 'keepmon_schedule_lag_seconds{quantile="%s"}'
        failures = "keepmon_service_failures_total"
        r.update(
            daemon_checks=int(metrics1["keepmon_checks_total"] - metrics0["keepmon_checks_total"]),
            lag_p50_s=metrics1.get(q % "0.5"),
            lag_p99_s=metrics1.get(q % "0.99"),
            lag_max_s=metrics1.get(q % "1"),
            failed_runs=int(keepmon_sum(metrics1, failures) - keepmon_sum(metrics0, failures)),
            failing_services=sum(
                1 for k, v in metrics1.items() if k.startswith("keepmon_service_up{") and v == 0
            ),
        )
    print(json.dumps(r), flush=True)
    print(
        f"   {a.daemon:<8} run {a.run}: {r['checks_per_s']:.0f} checks/s, cpu {r['cpu_s']:.2f} s "
        f"(user {r['cpu_user_s']:.2f} sys {r['cpu_sys_s']:.2f}; {r['cpu_pct_of_core']}% of a core), "
        f"{r['cpu_s_per_1000_checks']} s per 1000 checks, lag p99 {r['lag_p99_s']} s, "
        f"failing services {r['failing_services']}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
