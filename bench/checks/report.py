#!/usr/bin/env python3
"""Summarise measure.py's JSON lines: medians per (hosts, daemon), then ratios."""

import json
import statistics
import sys

DAEMONS = ("keepmon", "mon", "floor")


def median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value, spec, scale=1):
    return "-" if value is None else format(value / scale, spec)


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    by = {}
    for r in rows:
        by.setdefault((r["hosts"], r["daemon"]), []).append(r)
    sizes = sorted({r["hosts"] for r in rows})

    columns = [
        # header, key, format, scale
        ("checks/s", "checks_per_s", ".0f", 1),
        ("CPU %core", "cpu_pct_of_core", ".1f", 1),
        ("CPU s/1k", "cpu_s_per_1000_checks", ".4f", 1),
        ("user s/1k", "user_s_per_1000_checks", ".4f", 1),
        ("sys s/1k", "sys_s_per_1000_checks", ".4f", 1),
        ("VmHWM MB", "vmhwm_kb", ".1f", 1024),
        ("PSS+kids MB", "peak_pss_with_children_kb", ".1f", 1024),
        ("lag p50 s", "lag_p50_s", ".3f", 1),
        ("lag p99 s", "lag_p99_s", ".3f", 1),
        ("failing", "failing_services", ".0f", 1),
    ]
    print("Medians per size and daemon (CPU s/1k = CPU seconds per 1,000 checks; range over runs in brackets)")
    header = f"{'hosts':>6} {'daemon':<8} {'runs':>4} " + " ".join(f"{h:>{max(9, len(h))}}" for h, *_ in columns)
    print(header)
    print("-" * len(header))
    for n in sizes:
        for d in DAEMONS:
            rs = by.get((n, d))
            if not rs:
                continue
            cells = " ".join(
                f"{fmt(median(rs, key), spec, scale):>{max(9, len(h))}}" for h, key, spec, scale in columns
            )
            per_run = [r["cpu_s_per_1000_checks"] for r in rs if r["cpu_s_per_1000_checks"]]
            spread = f"[{min(per_run):.4f}..{max(per_run):.4f}]" if per_run else ""
            print(f"{n:>6} {d:<8} {len(rs):>4} {cells}  {spread}")

    print()
    print("Ratios of medians, mon / keepmon")
    for n in sizes:
        k, m = by.get((n, "keepmon")), by.get((n, "mon"))
        if not k or not m:
            continue
        ratio = lambda key: median(m, key) / median(k, key)
        print(
            f"  {n:>6} hosts: CPU per check x{ratio('cpu_s_per_1000_checks'):.1f} "
            f"(user x{ratio('user_s_per_1000_checks'):.1f}, sys x{ratio('sys_s_per_1000_checks'):.1f});  "
            f"VmHWM x{ratio('vmhwm_kb'):.2f};  checks done: mon {100 * median(m, 'checks_per_s') / n:.0f}% "
            f"of target, keepmon {100 * median(k, 'checks_per_s') / n:.0f}%"
        )

    k = by.get((10000, "keepmon"))
    if k:
        pct = median(k, "cpu_pct_of_core")
        scaled = median(k, "cpu_s_per_1000_checks") * 10 * 100
        user = median(k, "user_s_per_1000_checks") * 10 * 100
        verdict = "YES" if max(pct, scaled) < 25 else "NO"
        print()
        print(
            f"keepmon under 25% of one core at 10,000 checks/s: {verdict} — measured {pct:.1f}% "
            f"at {median(k, 'checks_per_s'):.0f} checks/s ({scaled:.1f}% scaled to exactly 10,000/s, "
            f"of which user space {user:.1f}%)"
        )
        f = by.get((10000, "floor"))
        if f:
            print(
                f"  kernel floor (floor.py, bare connect+close): system time "
                f"{median(f, 'sys_s_per_1000_checks') * 1000:.0f} us per check = "
                f"{median(f, 'sys_s_per_1000_checks') * 10 * 100:.1f}% of a core at 10,000 checks/s"
            )
    loads = [r["loadavg_at_start"] for r in rows]
    print(f"1-min load average when windows opened: {min(loads):.2f} .. {max(loads):.2f}")


if __name__ == "__main__":
    main()
