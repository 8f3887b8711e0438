#!/usr/bin/env python3
"""Medians of bench/mail runs (JSON lines on stdin) as a table."""

import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip().startswith("{")]
if not runs:
    sys.exit("report.py: no results")


def med(key):
    return statistics.median(r[key] for r in runs)


n = runs[0]["n"]
ok = all(r["received"] == n and r["unique"] == n and r["dead"] == 0 for r in runs)
send = med("send_s")
print()
print("runs: %d, alerts per run: %d" % (len(runs), n))
print("%-44s %10s" % ("median", "keepmon"))
print("%-44s %10.2f" % ("accept: start -> all letters in the outbox (s)", med("accept_s")))
print("%-44s %10.2f" % ("drain: relay up -> last message received (s)", med("drain_s")))
print("%-44s %10.2f" % ("send: first -> last message received (s)", send))
print("%-44s %10.0f" % ("throughput while sending (messages/s)", (n - 1) / send if send else 0))
print("%-44s %10s" % ("delivered / unique Message-IDs / dead", "%d / %d / %d" % (
    med("received"), med("unique"), med("dead"))))
print("%-44s %10s" % ("all delivered, no duplicates, none dead", "yes" if ok else "NO"))
print()
print("mon has no queue: mail.alert pipes to sendmail once and mon ignores its exit")
print("status, so with the relay (or sendmail) down at alert time, mon delivers 0 of")
print("%d and there is no ratio to print; the figures above are keepmon's alone." % n)
if not ok:
    sys.exit(1)
