#!/usr/bin/env python3
"""Reads run.sh's per-run TSV and the wrk outputs it names; prints medians and ratios.

Usage: report.py results.tsv [--save runs.tsv]

--save writes a self-contained per-run TSV (the wrk figures instead of the
wrk output paths), which report.py also reads.
"""
import csv
import re
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
TARGET_RPS = 1.0  # keepmon / HAProxy requests/s, at least
TARGET_P99 = 1.1  # keepmon / HAProxy p99 latency, at most


def duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"cannot read wrk duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    out = {"errors": 0, "non2xx": 0}
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if not m:
        raise ValueError(f"{path}: no Requests/sec line:\n{text}")
    out["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    out["requests"] = int(m.group(1)) if m else 0
    for q in ("50", "99"):
        m = re.search(rf"^\s*{q}%\s+(\S+)", text, re.M)
        out["p" + q] = duration_ms(m.group(1)) if m else float("nan")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    return out


def fmt_ms(ms):
    return f"{ms * 1000:.0f}us" if ms < 1 else f"{ms:.2f}ms"


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--save"):
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(args[0], encoding="utf-8"), delimiter="\t"))
    groups = {}  # (mode, contender) -> list of runs
    order_modes, order_cont = [], []
    saved = []
    for r in rows:
        if "wrk_output" in r:
            run = parse_wrk(r["wrk_output"])
        else:
            run = {k: float(r[k]) for k in ("rps", "p50", "p99")}
            run.update({k: int(r[k]) for k in ("requests", "errors", "non2xx")})
        run["cpu_s"] = None if r["cpu_s"] == "-" else float(r["cpu_s"])
        run["foreign"] = float(r["foreign_pct"])
        saved.append([r["mode"], r["contender"], r["run"], run["rps"], run["p50"], run["p99"],
                      run["requests"], run["errors"], run["non2xx"], r["cpu_s"], r["foreign_pct"]])
        groups.setdefault((r["mode"], r["contender"]), []).append(run)
        if r["mode"] not in order_modes:
            order_modes.append(r["mode"])
        if r["contender"] not in order_cont:
            order_cont.append(r["contender"])

    if len(args) == 3:
        with open(args[2], "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["mode", "contender", "run", "rps", "p50", "p99", "requests", "errors",
                        "non2xx", "cpu_s", "foreign_pct"])
            w.writerows(saved)

    med = {}
    for key, runs in groups.items():
        cpu = [1e6 * x["cpu_s"] / x["requests"] for x in runs if x["cpu_s"] is not None and x["requests"]]
        med[key] = {
            "rps": statistics.median(x["rps"] for x in runs),
            "rps_min": min(x["rps"] for x in runs),
            "rps_max": max(x["rps"] for x in runs),
            "p50": statistics.median(x["p50"] for x in runs),
            "p99": statistics.median(x["p99"] for x in runs),
            "p99_min": min(x["p99"] for x in runs),
            "p99_max": max(x["p99"] for x in runs),
            "cpu_us": statistics.median(cpu) if cpu else None,
            "foreign": statistics.median(x["foreign"] for x in runs),
            "errors": sum(x["errors"] + x["non2xx"] for x in runs),
            "n": len(runs),
        }

    print("per run (req/s, p99, other load):")
    for mode in order_modes:
        for c in order_cont:
            runs = groups.get((mode, c), [])
            cells = "  ".join(f"{x['rps']:6.0f} {fmt_ms(x['p99']):>7} {x['foreign']:3.0f}%" for x in runs)
            print(f"  {mode:<9} {c:<8} {cells}")
    print()
    head = (f"{'mode':<9} {'contender':<9} {'req/s':>9} {'(min-max)':>15} {'p50':>8} {'p99':>8}"
            f" {'(min-max)':>17} {'proxy CPU':>10} {'vs direct':>9} {'other':>5} {'errors':>6}")
    print(head)
    print("-" * len(head))
    for mode in order_modes:
        base = med.get((mode, "direct"))
        for c in order_cont:
            m = med.get((mode, c))
            if not m:
                continue
            cpu = f"{m['cpu_us']:.1f}us/req" if m["cpu_us"] is not None else "-"
            vs = f"{m['rps'] / base['rps']:.2f}x" if base and c != "direct" else "-"
            print(f"{mode:<9} {c:<9} {m['rps']:>9.0f} {m['rps_min']:>7.0f}-{m['rps_max']:<7.0f}"
                  f" {fmt_ms(m['p50']):>8} {fmt_ms(m['p99']):>8}"
                  f" {fmt_ms(m['p99_min']):>8}-{fmt_ms(m['p99_max']):<8} {cpu:>10} {vs:>9} {m['foreign']:>4.0f}% {m['errors']:>6}")
    print()
    if any((mode, "keepmon") in med and (mode, "haproxy") in med for mode in order_modes):
        print("keepmon / HAProxy (medians; targets: req/s >= 1.0x, p99 <= 1.1x):")
    for mode, c in ((mode, c) for mode in order_modes for c in ("keepmon", "keepmon-b")):
        k, h = med.get((mode, c)), med.get((mode, "haproxy"))
        if not (k and h):
            continue
        rps = k["rps"] / h["rps"]
        p99 = k["p99"] / h["p99"]
        ok_rps, ok_p99 = rps >= TARGET_RPS, p99 <= TARGET_P99
        cpu = ""
        if k["cpu_us"] and h["cpu_us"]:
            cpu = f"   proxy CPU per request {k['cpu_us'] / h['cpu_us']:.2f}x"
        label = mode if c == "keepmon" else f"{mode} ({c})"
        print(f"  {label:<9}  req/s {rps:.2f}x ({'ok' if ok_rps else 'MISS'})"
              f"   p99 {p99:.2f}x ({'ok' if ok_p99 else 'MISS'}){cpu}")
    worst = max(x["foreign"] for runs in groups.values() for x in runs)
    if worst > 10:
        print(f"  note: other processes used up to {worst:.0f}% of the machine during a run (column 'other');"
              " those runs are noisy")
    if any(m["errors"] for m in med.values()):
        print("  note: some runs had socket errors or non-2xx responses (errors column)")


if __name__ == "__main__":
    main()
