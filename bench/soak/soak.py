#!/usr/bin/python3
"""The fault soak of keepmon (bench/soak/README.md): a director pair under injected faults.

Topology (all in network namespaces this script creates and removes):
a bridge namespace with br0; two keepmon directors A (10.98.0.1, VRRP
priority 150) and B (10.98.0.2, priority 100) holding the VIP 10.98.0.50
and running the built-in proxy on :8080, the mon port (:2583), metrics
(:9583) and mail to the SMTP server; three nginx backends N1-N3
(10.98.0.11-13, port 80; N3 also on 81, the real server kept in `lb maint`);
the Python SMTP server (10.98.0.30:2525); a client namespace (10.98.0.100)
running a Python client that logs every request and, now and then, wrk.

A seeded fault injector runs one fault at a time (see FAULTS), logging each
window to faults.jsonl; at the end the invariants are checked from the
logs, the VRRP capture (tcpdump on br0), the mailbox and the samples.

Usage: soak.py KEEPMON WORKDIR DURATION_S SEED [--clock-jump]
Exit status 1 when an invariant fails.
"""

import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SMTP_SERVER = os.path.join(HERE, "..", "..", "tests", "common", "smtp_server.py")

NET = "10.98.0."
VIP = NET + "50"
DIRECTORS = {"A": (NET + "1", 150), "B": (NET + "2", 100)}
BACKENDS = {"N1": NET + "11", "N2": NET + "12", "N3": NET + "13"}
SMTP_ADDR = NET + "30"
CLIENT_ADDR = NET + "100"
ADVERT = 0.2  # VRRP advert interval, seconds
PREFIX = "ks%d" % (os.getpid() % 10000)
# Every namespace: its short name -> the real one.
NS = {n: PREFIX + n.lower() for n in ["BR", "A", "B", "N1", "N2", "N3", "SM", "CL"]}
MAINT_RS = BACKENDS["N3"] + ":81"
WEIGHT_RS = BACKENDS["N1"] + ":80"


def now():
    return time.time()


def sh(*args, check=True, timeout=30, ns=None):
    argv = list(args)
    if ns:
        argv = ["ip", "netns", "exec", NS[ns]] + argv
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


class Log:
    """faults.jsonl and the console: every line timestamped."""

    def __init__(self, work):
        self.f = open(os.path.join(work, "events.jsonl"), "a")
        self.lock = threading.Lock()

    def __call__(self, event, **kw):
        rec = {"t": now(), "event": event}
        rec.update(kw)
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
            stamp = datetime.datetime.fromtimestamp(rec["t"]).strftime("%H:%M:%S.%f")[:-3]
            print("%s %s %s" % (stamp, event, " ".join("%s=%s" % kv for kv in kw.items())), flush=True)


# --- topology ---------------------------------------------------------------------------


def topology_up():
    for n in NS.values():
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")
    br = NS["BR"]
    sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", br, "link", "set", "br0", "up")
    addrs = {"A": DIRECTORS["A"][0], "B": DIRECTORS["B"][0], "SM": SMTP_ADDR, "CL": CLIENT_ADDR}
    addrs.update(BACKENDS)
    for short, addr in addrs.items():
        port = "p" + short.lower()
        sh("ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", NS[short])
        sh("ip", "-n", br, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", NS[short], "link", "set", "eth0", "up")
        sh("ip", "-n", NS[short], "addr", "add", addr + "/24", "dev", "eth0")


def topology_down():
    for n in NS.values():
        sh("ip", "netns", "del", n, check=False)


# --- processes ----------------------------------------------------------------------------


class Proc:
    """One long-running program in a namespace, its output appended to a log."""

    def __init__(self, name, ns, argv, work, env=None):
        self.name, self.ns, self.argv, self.work, self.env = name, ns, argv, work, env
        self.p = None
        self.log = open(os.path.join(work, name + ".log"), "a")

    def start(self):
        self.log.write("=== start %s\n" % datetime.datetime.now().isoformat())
        self.log.flush()
        self.p = subprocess.Popen(["ip", "netns", "exec", NS[self.ns]] + self.argv, stdout=self.log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                  start_new_session=True)
        return self

    @property
    def pid(self):
        # `ip netns exec` execs the program: the pid is the program's.
        return self.p.pid if self.p else None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, grace=10):
        if not self.alive():
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.p.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.alive():
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def nginx_conf(work, name, addr):
    d = os.path.join(work, "nginx-" + name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/pid;\n"
                "error_log %s/error.log warn;\nevents { worker_connections 4096; }\nhttp {\n"
                "  access_log off;\n" % (d, d))
        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            f.write("  %s_temp_path %s/%s;\n" % (t, d, t))
        f.write("  server {\n    listen %s:80;\n    listen %s:81;\n"
                "    location / { return 200 \"%s $server_port\\n\"; }\n  }\n}\n" % (addr, addr, name))
    return conf


def director_conf(name, extra_watch):
    addr, prio = DIRECTORS[name]
    groups = "".join('b%d = ["%s"]\n' % (i + 1, a) for i, a in enumerate(BACKENDS.values()))
    watches = ""
    for i in range(1, 4):
        watches += (
            '[watch.b%d.http]\ninterval = "1s"\n'
            'monitor = { type = "http", port = 80, path = "/", timeout = "1s" }\n'
            'alert = ["ops"]\nupalert = ["ops"]\nalertafter = 2\n'
            # Not strict: mon's strict alertevery also spans recoveries (one alert a day in all).
            'alertevery = "24h"\n\n' % i
        )
    if extra_watch:
        watches += '[watch.b1.tcp80]\ninterval = "2s"\nmonitor = { type = "tcp", port = 80, timeout = "1s" }\n\n'
    return (
        '[daemon]\nstatedir = "state"\ndirector = "lb%s"\nshutdown_grace = "2s"\n\n'
        "[mon_protocol]\nlisten = \"0.0.0.0:2583\"\nclientallow = ['.*']\nauthtype = [\"trustlocal\"]\n\n"
        '[metrics]\nlisten = "0.0.0.0:9583"\n\n'
        '[mail]\nfrom = "keepmon-lb%s@soak.test"\nretry_initial = "1s"\nretry_max = "4s"\n\n'
        '[mail.smtp]\nhost = "%s"\ntls = "none"\nport = 2525\ntimeout = "5s"\n\n'
        '[hostgroups]\nbackends = [%s]\n%s\n'
        '[actions.ops]\ntype = "mail"\nto = ["ops@soak.test"]\n\n'
        '[watch.backends.web]\ninterval = "1s"\n'
        'monitor = { type = "http", port = 80, path = "/", timeout = "1s" }\n\n'
        "%s"
        '[virtual_servers.web]\nlisten = "0.0.0.0:8080"\nscheduler = "rr"\nhealth = "backends:web"\n'
        'retries = 2\nconnect_timeout = "1s"\nreal_servers = [\n%s]\n\n'
        '[vrrp.vi_1]\ninterface = "eth0"\nvirtual_router_id = 51\npriority = %d\nversion = 3\n'
        'advert_int = "%dms"\nvirtual_ipaddress = ["%s/24"]\n'
        % (name, name, SMTP_ADDR, ", ".join('"%s"' % a for a in BACKENDS.values()), groups, watches,
           "".join('  { addr = "%s:80" },\n' % a for a in BACKENDS.values()) + '  { addr = "%s" },\n' % MAINT_RS,
           prio, round(ADVERT * 1000), VIP)
    )


class Director:
    def __init__(self, name, keepmon, work, log):
        self.name, self.keepmon, self.log = name, keepmon, log
        self.dir = os.path.join(work, "director-" + name)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state, exist_ok=True)
        # A small tmpfs: the "statedir full" fault fills it.
        sh("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "soak-state", self.state)
        self.conf = os.path.join(self.dir, "keepmon.toml")
        self.extra = False
        self.write_conf()
        env = dict(os.environ, RUST_BACKTRACE="1")
        self.proc = Proc("director-" + name, name, [keepmon, "-c", self.conf, "start", "--log", "stderr"], work,
                         env)
        self.incarnation = 0

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write(director_conf(self.name, self.extra))

    def start(self):
        self.proc.start()
        self.incarnation += 1
        self.log("director_start", director=self.name, pid=self.proc.pid, incarnation=self.incarnation)

    def ctl(self, *args, timeout=15):
        try:
            r = sh(self.keepmon, "-c", self.conf, *args, check=False, timeout=timeout, ns=self.name)
            return r.returncode, r.stdout + r.stderr
        except subprocess.TimeoutExpired:
            return 124, "timeout"

    def wait_ready(self, limit=30):
        deadline = now() + limit
        while now() < deadline:
            if self.proc.alive() and self.ctl("status", timeout=5)[0] == 0:
                return True
            time.sleep(0.2)
        return False

    def has_vip(self):
        out = sh("ip", "-n", NS[self.name], "-4", "-o", "addr", "show", "dev", "eth0", check=False).stdout
        return (" %s/" % VIP) in out

    def umount(self):
        sh("umount", "-l", self.state, check=False)


# --- clients ----------------------------------------------------------------------------------


def client_main(out, duration, threads):
    """Runs inside the client namespace: GET http://VIP:8080/ in a loop, one JSON line per request."""
    f = open(out, "a")
    lock = threading.Lock()
    end = now() + duration

    def worker(k):
        while now() < end:
            t0 = now()
            rec = {"t0": t0}
            try:
                s = socket.create_connection((VIP, 8080), timeout=3)
                s.settimeout(3)
                s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                head, _, body = data.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    rec["err"] = "status " + head[:30].decode("latin-1")
                else:
                    rec["ok"] = True
                    rec["backend"] = body.decode("latin-1").strip()
            except Exception as e:  # every failure is a data point
                rec["err"] = type(e).__name__ + ": " + str(e)[:80]
            rec["t1"] = now()
            with lock:
                f.write(json.dumps(rec) + "\n")
                f.flush()
            time.sleep(0.05)

    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


# The mon port serves at most this many connections from one client address
# (src/monproto/server.rs).
MON_PER_ADDRESS = 32


def flood(target_ns_addr, port, idle, junk, hold):
    """Runs inside the client namespace: `idle` silent connections and `junk` ones sending garbage."""
    socks = []
    refused = 0
    for i in range(idle + junk):
        try:
            s = socket.create_connection((target_ns_addr, port), timeout=2)
            if i >= idle:
                s.sendall(os.urandom(512) + b"\r\n\r\n")
            socks.append(s)
        except OSError:
            refused += 1
    time.sleep(hold)
    # Which connections the server still holds open: the others were closed
    # by it (EOF or reset), e.g. the mon port's cap per client address.
    held = 0
    for s in socks:
        s.setblocking(False)  # no wait for data: a timeout socket would poll first
        try:
            while True:
                data = s.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                if not data:
                    break  # closed by the server
                s.recv(len(data), socket.MSG_DONTWAIT)  # replies to junk: read on
        except BlockingIOError:
            held += 1
        except OSError:
            pass  # reset by the server
    for s in socks:
        s.close()
    print(json.dumps({"opened": len(socks), "refused": refused, "held": held}))


# --- the soak ----------------------------------------------------------------------------------


class Soak:
    def __init__(self, keepmon, work, duration, seed, clock_jump):
        self.keepmon, self.work, self.duration, self.seed = keepmon, work, duration, seed
        self.clock_jump = clock_jump
        self.rng = random.Random(seed)
        self.log = Log(work)
        self.windows = []  # dicts: kind, start, end, explains, target
        self.wrk_runs = []  # dicts: t0, t1, jumped, requests, errors ("" when none)
        self.clock_jumps = 0  # clock jumps begun so far (wrk runs during one are excused)
        self.samples = []  # (t, director, incarnation, rss_kb, fds)
        self.checks = []  # (name, ok, detail) from during the run
        self.stop_flag = threading.Event()
        self.procs = []
        self.directors = {}
        self.backends = {}
        self.smtp = None
        self.mode_file = os.path.join(work, "smtp-mode")
        self.kills = {"A": 0, "B": 0}
        self.faults = {}

    # -- setup
    def start_all(self):
        topology_up()
        self.tcpdump = Proc("vrrp-capture", "BR", ["tcpdump", "-i", "br0", "-n", "-tt", "-l", "-U", "proto", "112"],
                            self.work).start()
        self.procs.append(self.tcpdump)
        for name, addr in BACKENDS.items():
            conf = nginx_conf(self.work, name, addr)
            self.backends[name] = Proc("nginx-" + name, name, ["nginx", "-c", conf], self.work).start()
            self.procs.append(self.backends[name])
        self.smtp = Proc("smtp", "SM", ["/usr/bin/python3", SMTP_SERVER, "--host", SMTP_ADDR, "--port", "2525",
                                        "--out", os.path.join(self.work, "mailbox"), "--mode-file",
                                        self.mode_file], self.work).start()
        self.procs.append(self.smtp)
        for name in DIRECTORS:
            d = Director(name, self.keepmon, self.work, self.log)
            self.directors[name] = d
            self.procs.append(d.proc)
        self.directors["A"].start()
        time.sleep(0.5)
        self.directors["B"].start()
        for d in self.directors.values():
            if not d.wait_ready():
                raise SystemExit("director %s did not come up (see %s.log)" % (d.name, d.proc.name))
        deadline = now() + 20
        while now() < deadline and not (self.directors["A"].has_vip() and not self.directors["B"].has_vip()):
            time.sleep(0.1)
        # Admin settings that every kill must not forget.
        for d in self.directors.values():
            for args in (("lb", "maint", "web", MAINT_RS), ("lb", "weight", "web", WEIGHT_RS, "3")):
                rc, out = d.ctl(*args)
                self.log("admin", director=d.name, cmd=" ".join(args), rc=rc, out=out.strip()[:200])
        time.sleep(3)  # the first checks pass before the clients start

    def admin_survives(self, d):
        rc, out = d.ctl("lb", "show")
        ok = rc == 0
        maint = weight = False
        for line in out.splitlines():
            if MAINT_RS in line and "maint" in line.lower():
                maint = True
            if WEIGHT_RS in line and re.search(r"\b3\b", line.replace(WEIGHT_RS, "")):
                weight = True
        return ok and maint and weight, out

    def readback(self, d, why):
        """After every kill and restart: the statedir reads back and the admin settings are there."""
        if not d.wait_ready(30):
            self.checks.append(("statedir reads back", False, "%s not ready after %s" % (d.name, why)))
            return
        rc, out = d.ctl("dump")
        self.checks.append(("statedir reads back", rc == 0, "%s dump rc=%d after %s" % (d.name, rc, why)))
        ok, show = self.admin_survives(d)
        self.checks.append(("admin settings survive kill", ok, "%s after %s" % (d.name, why)))
        if not ok:
            self.log("admin_lost", director=d.name, why=why, show=show[:600])

    # -- background loops
    def sampler(self):
        self.sample_log = open(os.path.join(self.work, "samples.jsonl"), "a")
        while not self.stop_flag.is_set():
            t = now()
            for d in self.directors.values():
                pid = d.proc.pid
                if not d.proc.alive():
                    continue
                try:
                    with open("/proc/%d/status" % pid) as f:
                        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
                    fds = len(os.listdir("/proc/%d/fd" % pid))
                except (OSError, AttributeError):
                    continue
                self.samples.append((t, d.name, d.incarnation, rss, fds))
                self.sample_log.write(json.dumps({"t": t, "director": d.name, "incarnation": d.incarnation,
                                                  "rss_kb": rss, "fds": fds}) + "\n")
                self.sample_log.flush()
            self.stop_flag.wait(2)

    def wrk_loop(self):
        if not shutil.which("wrk"):
            self.log("wrk_missing")
            return
        while not self.stop_flag.wait(self.rng.uniform(20, 40) if self.duration > 300 else 20):
            t0, jumps0 = now(), self.clock_jumps
            try:
                r = sh("wrk", "-t1", "-c2", "-d3s", "--timeout", "3s", "http://%s:8080/" % VIP, ns="CL",
                       check=False, timeout=30)
            except subprocess.TimeoutExpired:
                # Seen once under a fault: wrk -d3s still running after 30 s (killed by the timeout).
                self.log("wrk_hung")
                continue
            m = re.search(r"(\d+) requests in", r.stdout)
            errs = re.search(r"Socket errors: (.*)", r.stdout)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
            self.log("wrk", requests=int(m.group(1)) if m else 0, socket_errors=errs.group(1) if errs else "none",
                     non2xx=int(non2xx.group(1)) if non2xx else 0)
            self.wrk_runs.append({"t0": t0, "t1": now(), "jumped": self.clock_jumps != jumps0,
                                  "requests": int(m.group(1)) if m else 0,
                                  "errors": (errs.group(1) if errs else "") + (" non2xx %s" % non2xx.group(1)
                                                                               if non2xx else "")})

    # -- faults
    def window(self, kind, start, end, explains, target="", slack=0.5):
        w = {"kind": kind, "start": start, "end": end, "explains": explains, "target": target,
             "slack": slack}
        self.windows.append(w)
        self.log("window", **w)

    def master(self):
        for d in self.directors.values():
            if d.proc.alive() and d.has_vip():
                return d
        return self.directors["A"]

    def netem(self, ns, dev, spec):
        return sh("tc", "qdisc", "replace", "dev", dev, "root", "netem", *spec.split(), ns=ns, check=False)

    def netem_clear(self, ns, dev):
        sh("tc", "qdisc", "del", "dev", dev, "root", ns=ns, check=False)

    def fault(self, kind):
        r = self.rng
        quick = self.duration <= 300
        hold = r.uniform(1.5, 3) if quick else r.uniform(3, 20)
        t0 = now()
        self.log("fault", kind=kind)
        self.faults[kind] = self.faults.get(kind, 0) + 1
        if kind in ("backend_kill", "backend_stop", "backend_restart"):
            name = r.choice(list(BACKENDS))
            b = self.backends[name]
            if kind == "backend_kill":
                # Long enough to be seen (alertafter 2 x 1 s): the missed-alert check needs one.
                hold = max(hold, 5)
                b.kill()
                time.sleep(hold)
                b.start()
            elif kind == "backend_stop":
                b.signal(signal.SIGSTOP)
                time.sleep(hold)
                b.signal(signal.SIGCONT)
            else:
                b.stop()
                b.start()
                hold = 0
            self.window(kind, t0, now() + 4, True, name)
        elif kind in ("netem_loss", "netem_delay", "partition"):
            short = r.choice(list(BACKENDS) + ["A", "B", "CL"])
            spec = {"netem_loss": "loss %d%%" % r.choice([5, 20, 40]),
                    "netem_delay": "delay %dms" % r.choice([20, 100, 300]),
                    "partition": "loss 100%"}[kind]
            self.netem(short, "eth0", spec)
            self.netem("BR", "p" + short.lower(), spec)
            time.sleep(hold)
            self.netem_clear(short, "eth0")
            self.netem_clear("BR", "p" + short.lower())
            # A partitioned director comes back as a second master until it hears the first.
            self.window(kind, t0, now() + 5, True, short + " " + spec)
        elif kind in ("smtp_down", "smtp_4xx", "smtp_5xx"):
            if kind == "smtp_down":
                self.smtp.kill()
            else:
                with open(self.mode_file, "w") as f:
                    f.write(kind[5:])
            # A backend episode while the relay is away: its letters must be retried (down, 4xx)
            # or become dead letters (5xx), never lost or doubled.
            name = self.backend_episode()
            if kind == "smtp_down":
                self.smtp.start()
            else:
                os.unlink(self.mode_file)
            self.window(kind, t0, now() + 4, True, name + " smtp")
        elif kind == "statedir_full":
            d = r.choice(list(self.directors.values()))
            filler = os.path.join(d.state, "filler")
            subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=64k"], capture_output=True)
            # A backend episode while the statedir is full: state saves and outbox writes fail.
            name = self.backend_episode()
            os.unlink(filler)
            rc, out = d.ctl("dump")
            self.checks.append(("statedir reads back", rc == 0, "%s after statedir full" % d.name))
            self.window(kind, t0, now() + 4, True, name + " statedir " + d.name)
        elif kind == "master_kill":
            d = self.master()
            self.kills[d.name] += 1
            d.proc.kill()
            time.sleep(min(hold, 5))
            d.start()
            self.readback(d, "kill -9")
            time.sleep(3)  # preemption of the restarted A
            self.window(kind, t0, now() + 3, True, d.name)
        elif kind == "master_stop":
            d = self.master()
            rc, out = d.ctl("stop")
            try:
                d.proc.p.wait(15)
            except subprocess.TimeoutExpired:
                self.checks.append(("planned stop finishes", False, d.name))
                d.proc.kill()
            t1 = now()
            # The stop moves the VIP at once (priority 0, address removed):
            # a request already on its way to A when the address leaves is
            # lost, as with any failover that does not share connection
            # state (keepalived's too). Only requests started between the
            # stop command and A's exit are excused, with no slack; every
            # later one must succeed through B.
            self.window("vip_handover", t0, t1, True, d.name, slack=0.0)
            self.window("planned_stop", t0, t1 + 2, False, d.name)
            time.sleep(2)
            t2 = now()
            d.start()
            self.readback(d, "stop")
            time.sleep(3)
            # A restarted A takes the VIP back: connections through B at that moment break.
            self.window("preempt", t2, now() + 2, True, d.name)
        elif kind == "reload":
            for d in self.directors.values():
                d.extra = not d.extra
                d.write_conf()
                rc, out = d.ctl("reload")
                self.log("reload", director=d.name, rc=rc, out=out.strip()[:200])
                self.checks.append(("reload accepted", rc == 0, "%s rc=%d" % (d.name, rc)))
            time.sleep(2)
            self.window(kind, t0, now(), False, "both")
        elif kind == "flood":
            target = r.choice([(VIP, 8080, "proxy"), (VIP, 2583, "mon")])
            r2 = sh("/usr/bin/python3", os.path.abspath(__file__), "flood", target[0], str(target[1]), "300", "100",
                    "%.1f" % hold, ns="CL", check=False, timeout=120)
            self.log("flood_done", target=target[2], out=r2.stdout.strip()[-200:], err=r2.stderr.strip()[-200:])
            if target[2] == "mon":
                # One client address gets at most MON_PER_ADDRESS connections.
                try:
                    held = json.loads(r2.stdout.strip().splitlines()[-1])["held"]
                except (ValueError, IndexError, KeyError):
                    held = None
                self.checks.append(("mon port caps one client address", held is not None and held <= MON_PER_ADDRESS,
                                    "held %s of 400 (cap %d)" % (held, MON_PER_ADDRESS)))
            self.window("flood_" + target[2], t0, now() + 1, False, target[2])
        elif kind == "clock_jump":
            step = r.choice([-30, 30])
            self.clock_jumps += 1
            sh("date", "-s", "%+d seconds" % step)
            time.sleep(hold)
            sh("date", "-s", "%+d seconds" % -step)
            self.window(kind, t0, now(), False, "%+ds" % step)
        self.log("fault_end", kind=kind)

    def backend_episode(self):
        """kill -9 a backend for 5 s (alertafter 2 x 1 s sees it), restart it, wait for its upalert."""
        name = self.rng.choice(list(BACKENDS))
        self.backends[name].kill()
        time.sleep(5)
        self.backends[name].start()
        time.sleep(3)
        return name

    def injector(self, end):
        kinds = ["backend_kill", "backend_stop", "backend_restart", "netem_loss", "netem_delay", "partition",
                 "smtp_down", "smtp_4xx", "smtp_5xx", "master_kill", "master_stop", "reload", "statedir_full",
                 "flood"]
        if self.clock_jump:
            kinds.append("clock_jump")
        if os.environ.get("FAULTS"):
            kinds = os.environ["FAULTS"].split(",")
        # The short run does every kind once (shuffled) before repeating any.
        order = []
        while now() < end - 10:
            if not order:
                order = kinds[:]
                self.rng.shuffle(order)
            self.fault(order.pop())
            self.heartbeat()
            gap = self.rng.uniform(0.5, 1.5) if self.duration <= 300 else self.rng.uniform(5, 20)
            time.sleep(gap)

    def heartbeat(self):
        """Every task alive: status answers, checks advance (scheduler), VRRP answers, each proxy serves."""

        def checks(addr):
            r = sh("curl", "-s", "-m", "3", "http://%s:9583/metrics" % addr, ns="CL", check=False)
            m = re.search(r"^keepmon_checks_total (\d+)", r.stdout, re.M)
            return int(m.group(1)) if m else None

        first = {n: checks(DIRECTORS[n][0]) for n in self.directors}
        # Where the client sends the VIP's packets (for reading a failure cluster afterwards).
        neigh = sh("ip", "-n", NS["CL"], "neigh", "show", VIP, check=False).stdout.strip()
        macs = {n: sh("ip", "-n", NS[n], "-br", "link", "show", "eth0", check=False).stdout.split()[2:3]
                for n in self.directors}
        self.log("vip_neigh", client=neigh, directors=macs, vip_on=[n for n, d in self.directors.items()
                                                                   if d.has_vip()])
        time.sleep(1.2)
        for d in self.directors.values():
            addr = DIRECTORS[d.name][0]
            rc, out = d.ctl("status", timeout=10)
            rc2, vrrp = d.ctl("vrrp", "show", timeout=10)
            vrrp_ok = rc2 == 0 and ("MASTER" in vrrp.upper() or "BACKUP" in vrrp.upper())
            c1, c2 = first[d.name], checks(addr)
            # Both directors listen on :8080; the backup's proxy answers on its own address.
            r = sh("curl", "-s", "-m", "3", "http://%s:8080/" % addr, ns="CL", check=False)
            proxy_ok = r.returncode == 0 and r.stdout.startswith("N")
            ok = rc == 0 and vrrp_ok and c1 is not None and c2 is not None and c2 > c1 and proxy_ok
            self.checks.append(("every task alive", ok, "%s status=%d vrrp=%s checks %s->%s proxy=%s"
                                % (d.name, rc, vrrp_ok, c1, c2, proxy_ok)))
            if not ok:
                self.log("heartbeat_fail", director=d.name, status=out.strip()[:200], vrrp=vrrp.strip()[:200],
                         checks=[c1, c2], proxy=r.stdout[:80])

    def run(self):
        self.log("seed", seed=self.seed, duration=self.duration, keepmon=self.keepmon, clock_jump=self.clock_jump)
        self.start_all()
        t_start = now()
        end = t_start + self.duration
        threads = [threading.Thread(target=self.sampler, daemon=True),
                   threading.Thread(target=self.wrk_loop, daemon=True)]
        for t in threads:
            t.start()
        client = Proc("client", "CL", ["/usr/bin/python3", os.path.abspath(__file__), "client",
                                       os.path.join(self.work, "requests.jsonl"), "%d" % self.duration, "4"],
                      self.work).start()
        self.procs.append(client)
        self.heartbeat()
        self.injector(end)
        while now() < end - 5:
            time.sleep(1)
        self.heartbeat()
        client.p.wait(30)
        self.stop_flag.set()
        # The last letters (upalerts of the last faults, retried mail) arrive.
        time.sleep(6)
        for d in self.directors.values():
            rc, out = d.ctl("dump")
            self.checks.append(("statedir reads back", rc == 0, "%s at the end" % d.name))
            ok, _ = self.admin_survives(d)
            self.checks.append(("admin settings survive kill", ok, "%s at the end" % d.name))
        self.dead = {}
        self.pending = {}
        for d in self.directors.values():
            dead_dir = os.path.join(d.state, "outbox", "dead")
            self.dead[d.name] = []
            if os.path.isdir(dead_dir):
                for n in sorted(os.listdir(dead_dir)):
                    with open(os.path.join(dead_dir, n), errors="replace") as f:
                        letter = json.load(f)["letter"]
                    self.dead[d.name].append("From: %s\nSubject: %s\n%s" % (letter["from"], letter["subject"],
                                                                          letter["body"]))
            box = os.path.join(d.state, "outbox")
            self.pending[d.name] = sum(1 for n in os.listdir(box) if n.endswith(".json")) \
                if os.path.isdir(box) else 0
        return t_start, end

    def shutdown(self):
        self.stop_flag.set()
        for d in self.directors.values():
            d.proc.stop(10)
        for p in self.procs:
            p.stop(5)
            p.kill()
        for d in self.directors.values():
            d.umount()


# --- analysis ---------------------------------------------------------------------------------


def in_windows(t, windows, slack=None):
    """The windows around `t`, each widened by `slack` (default: its own)."""
    def pad(w):
        return w["slack"] if slack is None else slack
    return [w for w in windows if w["start"] - pad(w) <= t <= w["end"] + pad(w)]


def analyse(soak, t_start, t_end):
    work = soak.work
    rows = []  # (invariant, ok, figures)

    # 1. VRRP masters from the capture.
    adverts = []
    src_name = {DIRECTORS[n][0]: n for n in DIRECTORS}
    with open(os.path.join(work, "vrrp-capture.log")) as f:
        for line in f:
            m = re.match(r"(\d+\.\d+) IP (\S+) > 224\.0\.0\.18: VRRPv3, Advertisement, vrid 51, prio (\d+)", line)
            if m and m.group(2) in src_name:
                adverts.append((float(m.group(1)), src_name[m.group(2)], int(m.group(3))))
    adverts.sort()
    # A director claims mastership while it sends adverts with priority > 0;
    # it holds the claim for one advert interval (plus jitter) after each.
    hold = ADVERT * 1.6
    events = []
    for t, n, prio in adverts:
        if prio > 0:
            events.append((t, n))
    last = {}
    dual = []  # (start, end)
    cur = None
    for t, n in events:
        last[n] = t
        both = all(k in last and t - last[k] <= hold for k in DIRECTORS)
        if both and cur is None:
            cur = [t, t]
        elif both:
            cur[1] = t
        elif cur is not None:
            dual.append(tuple(cur))
            cur = None
    if cur:
        dual.append(tuple(cur))
    # A preemption overlaps for about one advert: allowed up to 3 intervals; longer only in a
    # fault window that splits the pair (partition, loss, delay, a kill or stop of a director).
    allowed_kinds = {"partition", "netem_loss", "netem_delay", "master_kill", "planned_stop", "preempt", "clock_jump"}
    bad_dual = []
    for s, e in dual:
        if e - s <= 3 * ADVERT:
            continue
        if any(w["kind"] in allowed_kinds and w["start"] - 1 <= s <= w["end"] + 1 for w in soak.windows):
            continue
        bad_dual.append((s, e))
    rows.append(("at most one VRRP master (capture)", not bad_dual and len(adverts) > 0,
                 "%d adverts; %d overlaps (longest %.2fs); %d outside allowed windows"
                 % (len(adverts), len(dual), max([e - s for s, e in dual], default=0), len(bad_dual))))

    # 2. Client failures.
    reqs = []
    with open(os.path.join(work, "requests.jsonl")) as f:
        for line in f:
            try:
                reqs.append(json.loads(line))
            except ValueError:
                pass
    fails = [q for q in reqs if not q.get("ok")]
    outside, planned, explained = [], [], []
    for q in fails:
        ws = in_windows(q["t0"], soak.windows) + in_windows(q["t1"], soak.windows)
        if any(w["explains"] for w in ws):
            explained.append(q)
        elif ws:
            planned.append((q, ws[0]["kind"]))
        else:
            outside.append(q)
    rows.append(("client failures only in explaining fault windows", not outside,
                 "%d requests, %d failed: %d explained, %d outside any window"
                 % (len(reqs), len(fails), len(explained), len(outside))))
    planned_kinds = {}
    for _, k in planned:
        planned_kinds[k] = planned_kinds.get(k, 0) + 1
    rows.append(("no client failure in planned stop/reload or other non-network faults", not planned,
                 "%d (%s)" % (len(planned), ", ".join("%s %d" % kv for kv in sorted(planned_kinds.items())) or "none")))
    # wrk's errors, run by run: a run with socket errors or non-2xx answers
    # must overlap a window that explains failures.
    # wrk times its requests with the wall clock (gettimeofday), so a clock
    # jump during a run makes it count timeouts that did not happen: runs
    # overlapping a clock_jump window are excused (the Python client, on
    # the monotonic clock, still judges those windows).
    bad_runs = [w for w in soak.wrk_runs if w["errors"].strip()]
    unexplained_runs = [w for w in bad_runs
                        if not w["jumped"] and not any(
                            (x["explains"] or x["kind"] == "clock_jump")
                            and x["start"] - 0.5 <= max(w["t0"], w["t1"]) and min(w["t0"], w["t1"]) <= x["end"] + 0.5
                            for x in soak.windows)]
    if soak.wrk_runs:
        rows.append(("wrk errors only in explaining fault windows", not unexplained_runs,
                     "%d runs, %d requests; %d with errors, %d unexplained%s"
                     % (len(soak.wrk_runs), sum(w["requests"] for w in soak.wrk_runs), len(bad_runs),
                        len(unexplained_runs),
                        (": " + "; ".join(w["errors"] for w in unexplained_runs[:3])) if unexplained_runs else "")))
    maint_hits = [q for q in reqs if q.get("ok") and q.get("backend", "").endswith(" 81")]
    rows.append(("the maint real server takes no traffic", not maint_hits, "%d requests served by %s"
                 % (len(maint_hits), MAINT_RS)))

    # 3. Alerts: per director and service, alternating ALERT / UPALERT, one per episode.
    letters = []
    box = os.path.join(work, "mailbox")
    if os.path.isdir(box):
        for n in sorted(os.listdir(box)):
            if n.endswith(".json"):
                with open(os.path.join(box, n)) as f:
                    letters.append(json.load(f))

    def parse(data, received):
        subj = re.search(r"^Subject: (.*)$", data, re.M)
        subj = subj.group(1) if subj else ""
        frm = re.search(r"keepmon-lb(\w)@", data)
        noticed = re.search(r"Time noticed\s*:\s*(.*)", data)
        m = re.match(r"(UPALERT|ALERT) (\S+)/(\S+):", subj)
        if not m:
            return None
        return {"kind": m.group(1), "svc": m.group(2) + "/" + m.group(3), "dir": frm.group(1) if frm else "?",
                "noticed": noticed.group(1).strip() if noticed else "", "received": received, "subject": subj}

    parsed = [p for p in (parse(l["data"], l.get("received", 0)) for l in letters) if p]
    dead = []
    for dname, texts in soak.dead.items():
        for text in texts:
            p = parse(text, 0)
            if p:
                p["dir"] = dname
                p["dead"] = True
                dead.append(p)

    def stamp(p):
        try:
            return time.mktime(time.strptime(p["noticed"]))
        except ValueError:
            return p["received"]

    seqs = {}
    for p in parsed + dead:
        seqs.setdefault((p["dir"], p["svc"]), []).append(p)
    dup, bad_order, unexplained, open_end = 0, [], [], []
    episodes = 0
    for key, ps in seqs.items():
        ps.sort(key=lambda p: (stamp(p), p["received"]))
        prev = None
        for p in ps:
            if prev and prev["subject"] == p["subject"]:
                dup += 1
                continue
            if prev and prev["kind"] == p["kind"]:
                bad_order.append((key, p["subject"]))
            if p["kind"] == "ALERT":
                episodes += 1
                target = "N" + p["svc"][1]
                t = stamp(p)
                # A VIP handover explains lost requests, never an alert.
                if not any(w["explains"] and w["kind"] != "vip_handover"
                           and (w["target"].startswith(target) or w["target"].split(" ")[0] in
                                              (key[0], "CL") or w["kind"] == "partition")
                           and w["start"] - 3 <= t <= w["end"] + 15 for w in soak.windows):
                    unexplained.append(p["subject"])
            prev = p
        if prev and prev["kind"] == "ALERT":
            open_end.append(key)
    # Every backend down long enough to be seen must have alerted on each director.
    missed = []
    for w in soak.windows:
        episode = w["kind"] in ("smtp_down", "smtp_4xx", "smtp_5xx", "statedir_full")
        if episode or w["kind"] in ("backend_kill", "backend_stop") and w["end"] - 4 - w["start"] >= 4:
            svc = "b%s/http" % w["target"][1]
            for dn in DIRECTORS:
                if not any(p["svc"] == svc and p["kind"] == "ALERT" and w["start"] - 2 <= stamp(p) <= w["end"] + 5
                           for p in seqs.get((dn, svc), [])):
                    missed.append("%s %s %.0f" % (dn, svc, w["start"]))
    kills = sum(soak.kills.values())
    pending = sum(soak.pending.values())
    ok = not bad_order and not open_end and not missed and dup <= kills and not pending
    rows.append(("one alert + one upalert per episode, across restarts", ok,
                 "%d episodes, %d letters (%d dead), %d duplicates (<= %d kills allowed), %d out of order, "
                 "%d unrecovered, %d missed, %d still in an outbox"
                 % (episodes, len(parsed) + len(dead), len(dead), dup, kills, len(bad_order), len(open_end),
                    len(missed), pending)))
    if missed or bad_order or open_end:
        print("alert problems: missed %s; out of order %s; unrecovered %s" % (missed[:5], bad_order[:5], open_end[:5]))
    rows.append(("every alert inside a fault window that explains it", not unexplained,
                 "%d unexplained%s" % (len(unexplained), (": " + "; ".join(unexplained[:3])) if unexplained else "")))

    # 4. State and admin settings (checked during the run).
    for name in ("statedir reads back", "admin settings survive kill", "reload accepted", "every task alive",
                 "planned stop finishes", "mon port caps one client address"):
        cs = [c for c in soak.checks if c[0] == name]
        if not cs and name in ("planned stop finishes", "reload accepted", "mon port caps one client address"):
            continue
        bad = [c[2] for c in cs if not c[1]]
        rows.append((name, bool(cs) and not bad, "%d checks, %d failed%s" % (len(cs), len(bad),
                                                                            (": " + "; ".join(bad[:3])) if bad else "")))

    # 5. RSS and fds flat: the longest-lived incarnation of each director, first vs last tenth,
    # samples inside fault windows (floods hold hundreds of fds on purpose) left out.
    for dn in DIRECTORS:
        by_inc = {}
        for t, n, inc, rss, fds in soak.samples:
            if n == dn:
                by_inc.setdefault(inc, []).append((t, rss, fds))
        if not by_inc:
            rows.append(("RSS and fds flat (%s)" % dn, False, "no samples"))
            continue
        inc, ss = max(by_inc.items(), key=lambda kv: kv[1][-1][0] - kv[1][0][0])
        ss = [s for s in ss if s[0] - ss[0][0] >= 10] or ss
        quiet = [s for s in ss if not in_windows(s[0], soak.windows, slack=2)] or ss
        tenth = max(1, len(quiet) // 10)
        first, lastt = quiet[:tenth], quiet[-tenth:]
        r0, r1 = statistics.median(s[1] for s in first), statistics.median(s[1] for s in lastt)
        f0, f1 = statistics.median(s[2] for s in first), statistics.median(s[2] for s in lastt)
        life = ss[-1][0] - ss[0][0]
        ok = r1 <= r0 * 1.2 + 2048 and f1 <= f0 + 8
        rows.append(("RSS and fds flat (%s)" % dn, ok,
                     "incarnation %d over %.0fs: RSS %.1f -> %.1f MB, fds %d -> %d; peak RSS %.1f MB, fds %d"
                     % (inc, life, r0 / 1024, r1 / 1024, f0, f1, max(s[1] for s in ss) / 1024,
                        max(s[2] for s in ss))))

    # 6. No panic in the logs.
    panics = []
    for dn in DIRECTORS:
        with open(os.path.join(work, "director-%s.log" % dn), errors="replace") as f:
            for line in f:
                if "panicked" in line or "panic" in line.lower() and "RUST_BACKTRACE" in line:
                    panics.append(line.strip()[:160])
    rows.append(("no panic in the logs", not panics, "%d%s" % (len(panics), (": " + panics[0]) if panics else "")))
    return rows, {"requests": len(reqs), "failed": len(fails), "episodes": episodes, "letters": len(parsed),
                  "dead": len(dead)}


def main():
    if sys.argv[1] == "client":
        client_main(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        return 0
    if sys.argv[1] == "flood":
        flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
        return 0
    keepmon, work, duration, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    clock_jump = "--clock-jump" in sys.argv[5:]
    soak = Soak(keepmon, work, duration, seed, clock_jump)
    topology_down()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        t_start, t_end = soak.run()
    finally:
        soak.shutdown()
        topology_down()
    rows, figures = analyse(soak, t_start, t_end)
    print()
    print("seed %d, %.0f s, faults: %s" % (seed, duration, ", ".join("%s %d" % kv for kv in sorted(soak.faults.items()))))
    print("%-4s  %-60s  %s" % ("", "invariant", "figures"))
    failed = 0
    for name, ok, fig in rows:
        failed += not ok
        print("%-4s  %-60s  %s" % ("PASS" if ok else "FAIL", name, fig))
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump({"seed": seed, "duration": duration, "faults": soak.faults, "rows": rows, "figures": figures}, f,
                  indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
