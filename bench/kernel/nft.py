"""nftables half of bench/kernel: keepmon in a network namespace vs nft -f doing the same change.

Prints "RESULT <what> <total ms> <operations>" lines like the VM half.
Usage: nft.py KEEPMON WORKDIR FLIPS RUNS
"""
import json
import os
import subprocess
import sys
import time

keepmon, work, flips, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ns = f"kmbench{os.getpid()}"


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def nsx(*args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


def table():
    out = nsx("nft", "list", "table", "inet", "keepmon", check=False)
    return out.stdout


def wait(pred, limit=60.0):
    end = time.perf_counter() + limit
    while True:
        t = table()
        if pred(t):
            return
        if time.perf_counter() > end:
            raise SystemExit(f"timed out; table:\n{t}")


def config(path, servers):
    rs = ",\n".join(f'  {{ addr = "{a}", weight = {w} }}' for a, w in servers)
    with open(path, "w") as f:
        f.write(f'[daemon]\nstatedir = "{work}/state-{os.path.basename(path)}"\n'
                f'remove_kernel_tables_on_stop = true\n\n'
                f'[virtual_servers.web]\nlisten = "10.9.100.1:80"\ndataplane = "nftables"\n'
                f'scheduler = "wrr"\nreal_servers = [\n{rs}\n]\n')


def start(cfg):
    return subprocess.Popen(["ip", "netns", "exec", ns, keepmon, "-c", cfg, "start"],
                            stdout=subprocess.DEVNULL, stderr=open(f"{work}/keepmon.log", "a"))


def stop(cfg, proc):
    sh(keepmon, "-c", cfg, "stop", check=False)
    proc.wait(timeout=30)


def nft_file(path, servers):
    """The same table keepmon builds, as nft text: one transaction."""
    total, ranges, nxt = 0, [], 0
    for a, w in servers:
        ip, port = a.rsplit(":", 1)
        key = f"{nxt}" if w == 1 else f"{nxt}-{nxt + w - 1}"
        ranges.append(f"{key} : {ip} . {port}")
        nxt += w
    m = ", ".join(ranges)
    rule = f"ip daddr 10.9.100.1 tcp dport 80 dnat ip to numgen inc mod {nxt} map {{ {m} }}"
    with open(path, "w") as f:
        f.write("add table inet keepmon\ndelete table inet keepmon\n"
                "table inet keepmon {\n"
                " chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
                f"  {rule}\n }}\n"
                " chain output { type nat hook output priority -100; policy accept;\n"
                f"  {rule}\n }}\n}}\n")


def result(name, total_s, ops):
    print(f"RESULT {name} {total_s * 1000:.3f} {ops}", flush=True)


sh("ip", "netns", "add", ns)
try:
    nsx("ip", "link", "set", "lo", "up")
    two = [("10.9.1.2:8080", 3), ("10.9.2.2:8080", 1)]
    two_drained = [("10.9.1.2:8080", 3)]
    flip_cfg = f"{work}/flip.toml"
    config(flip_cfg, two)
    nft_file(f"{work}/two.nft", two)
    nft_file(f"{work}/one.nft", two_drained)
    big = [(f"10.9.{1 + i // 250}.{1 + i % 250}:8080", 1) for i in range(1000)]
    big_cfg = f"{work}/big.toml"
    config(big_cfg, big)
    nft_file(f"{work}/big.nft", big)

    for _ in range(runs):
        p = start(flip_cfg)
        wait(lambda t: "10.9.2.2 . 8080" in t)
        t0 = time.perf_counter()
        for _ in range(flips):
            sh(keepmon, "-c", flip_cfg, "lb", "drain", "web", "10.9.2.2:8080")
            wait(lambda t: "10.9.2.2" not in t)
            sh(keepmon, "-c", flip_cfg, "lb", "ready", "web", "10.9.2.2:8080")
            wait(lambda t: "10.9.2.2 . 8080" in t)
        result("nft_flip_keepmon", time.perf_counter() - t0, 2 * flips)
        stop(flip_cfg, p)

        t0 = time.perf_counter()
        for _ in range(flips):
            nsx("nft", "-f", f"{work}/one.nft")
            wait(lambda t: "10.9.2.2" not in t)
            nsx("nft", "-f", f"{work}/two.nft")
            wait(lambda t: "10.9.2.2 . 8080" in t)
        result("nft_flip_nft_f", time.perf_counter() - t0, 2 * flips)
        nsx("nft", "delete", "table", "inet", "keepmon", check=False)

        t0 = time.perf_counter()
        p = start(big_cfg)
        wait(lambda t: "10.9.4.250 . 8080" in t)
        result("nft_1000_keepmon_start", time.perf_counter() - t0, 1)
        stop(big_cfg, p)
        nsx("nft", "delete", "table", "inet", "keepmon", check=False)

        t0 = time.perf_counter()
        nsx("nft", "-f", f"{work}/big.nft")
        wait(lambda t: "10.9.4.250 . 8080" in t)
        result("nft_1000_nft_f", time.perf_counter() - t0, 1)
        nsx("nft", "delete", "table", "inet", "keepmon", check=False)
finally:
    sh("ip", "netns", "del", ns, check=False)
