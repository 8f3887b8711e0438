#!/usr/bin/env python3
"""Summarise bench/lua's JSON lines: median CPU per check for each variant, then the ratios."""

import json
import statistics
import sys

VARIANTS = ("builtin", "lua", "exec")


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    by = {v: [r for r in rows if r["variant"] == v] for v in VARIANTS}
    per_check = {}
    print(f"{'variant':<8} {'runs':>4} {'checks/s':>9} {'CPU %core':>9} {'CPU us/check':>12} {'user us':>8} {'sys us':>8} {'VmHWM MB':>9} {'failing':>7}  range us/check")
    for v in VARIANTS:
        rs = [r for r in by[v] if r["cpu_s_per_1000_checks"]]
        if not rs:
            continue
        med = lambda key: statistics.median(r[key] for r in rs if r[key] is not None)
        # CPU seconds per 1,000 checks = milliseconds per check; x1000 = microseconds.
        us = med("cpu_s_per_1000_checks") * 1000
        per_check[v] = us
        runs = [r["cpu_s_per_1000_checks"] * 1000 for r in rs]
        failing = [r["failing_services"] for r in rs if r["failing_services"] is not None]
        print(
            f"{v:<8} {len(rs):>4} {med('checks_per_s'):>9.0f} {med('cpu_pct_of_core'):>9.1f} {us:>12.1f}"
            f" {med('user_s_per_1000_checks') * 1000:>8.1f} {med('sys_s_per_1000_checks') * 1000:>8.1f}"
            f" {med('vmhwm_kb') / 1024:>9.1f} {max(failing) if failing else '-':>7}  [{min(runs):.1f}..{max(runs):.1f}]"
        )
    print()
    if "builtin" in per_check and "lua" in per_check:
        r = per_check["lua"] / per_check["builtin"]
        print(f"lua / builtin = {r:.2f}x   (target <= 3x: {'met' if r <= 3 else 'NOT met'})")
    if "lua" in per_check and "exec" in per_check:
        r = per_check["exec"] / per_check["lua"]
        print(f"exec / lua    = {r:.1f}x   (target >= 30x: {'met' if r >= 30 else 'NOT met'})")


if __name__ == "__main__":
    main()
