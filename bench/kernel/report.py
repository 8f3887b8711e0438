"""Medians and ratios of bench/kernel's RESULT lines (stdin)."""
import statistics
import sys
from collections import defaultdict

per_op = defaultdict(list)
for line in sys.stdin:
    parts = line.split()
    if len(parts) == 4 and parts[0] == "RESULT":
        per_op[parts[1]].append(float(parts[2]) / float(parts[3]))

def med(name):
    v = per_op.get(name)
    return statistics.median(v) if v else None

rows = [
    ("IPVS (VM, TCG)", "one real server flip", "ipvs_flip_keepmon", "ipvs_flip_ipvsadm", "ipvsadm -e"),
    ("IPVS (VM, TCG)", "  of which keepmon's netlink update", "ipvs_flip_keepmon_plane", "ipvs_flip_ipvsadm", "ipvsadm -e"),
    ("IPVS (VM, TCG)", "1,000 real servers, empty kernel", "ipvs_1000_keepmon_start", "ipvs_1000_ipvsadm_restore", "ipvsadm -R"),
    ("IPVS (VM, TCG)", "1,000 real servers, empty kernel", "ipvs_1000_keepmon_start", "ipvs_1000_ipvsadm_each", "1,000 x ipvsadm -a"),
    ("IPVS (VM, TCG)", "  of which keepmon's reconcile", "ipvs_1000_keepmon_reconcile", "ipvs_1000_ipvsadm_restore", "ipvsadm -R"),
    ("IPVS (VM, TCG)", "restart over its own 1,000 (adopt)", "ipvs_1000_keepmon_restart_adopt", None, "-"),
    ("IPVS (VM, TCG)", "  of which read + compare (0 changes)", "ipvs_1000_keepmon_adopt_reconcile", None, "-"),
    ("nftables (host)", "one real server flip", "nft_flip_keepmon", "nft_flip_nft_f", "nft -f (same table)"),
    ("nftables (host)", "1,000 real servers, empty kernel", "nft_1000_keepmon_start", "nft_1000_nft_f", "nft -f (same table)"),
]
print(f"{'plane':17} {'operation':37} {'keepmon ms':>11} {'peer ms':>9}  {'peer':22} {'keepmon/peer':>12}")
for plane, op, k, p, pname in rows:
    km, pm = med(k), (med(p) if p else None)
    if km is None:
        continue
    ratio = f"{km / pm:.2f}" if pm else "-"
    pms = f"{pm:.1f}" if pm is not None else "-"
    print(f"{plane:17} {op:37} {km:11.1f} {pms:>9}  {pname:22} {ratio:>12}")
print("\nruns per figure:", {k: len(v) for k, v in sorted(per_op.items())})
