"""Shared by the bench helpers: the target addresses and /proc readings."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def hosts(n):
    """The n loopback target addresses: 127.1.0.1, 127.1.0.2, ... (250 per /24)."""
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(n)]


def cpu_times(pid):
    """(user, system) seconds of pid (all threads) plus its reaped children:
    /proc/PID/stat fields 14-17, utime+cutime and stime+cstime.
    """
    with open(f"/proc/{pid}/stat") as f:
        # The comm field may hold spaces: split after ')'. fields[0] is
        # field 3 (state), so field k is fields[k - 3].
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) / CLK_TCK for x in fields[11:15])
    return utime + cutime, stime + cstime


def cpu_seconds(pid):
    return sum(cpu_times(pid))


def status_kb(pid, key):
    """A 'kB' line of /proc/PID/status (VmHWM, VmRSS), or 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages split between the sharers, so a sum
    over a forking parent and its children does not count them twice."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """Direct children of pid (all its threads)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids
