//! Several active directors behind an ECMP router, as a user runs them: two keepmon directors (one announcing through BIRD 2, one through FRR's bgpd) peer with a router (BIRD 2, `merge paths` into its kernel table, L4 multipath hashing); a client behind the router opens many connections from spread source ports. Both next hops are in the router's kernel table and flows use both directors; the FRR director withdraws within interval × fall + 1 s when its backends fail and announces again when they return; a planned stop loses no connection and every flow keeps its real server (mh with mh-port on both); a restart announces again.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Fixture;

/// Namespaces, daemons and FRR's run directory of one test; all removed on drop.
struct Lab {
    prefix: String,
    children: Vec<Child>,
    frr_dirs: Vec<PathBuf>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let status = Command::new(program).args(args).status().expect(program);
        assert!(status.success(), "{program} {args:?}");
    }

    fn in_ns(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        self.run("ip", &all);
    }

    fn spawn_in(&mut self, ns: &str, args: &[&str], log: &Path) {
        let log = std::fs::File::create(log).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn in namespace");
        self.children.push(child);
    }

    /// A veth pair `ns_a` (addr_a) — `ns_b` (addr_b), both up.
    fn link(&self, n: &str, (ns_a, addr_a): (&str, &str), (ns_b, addr_b): (&str, &str)) {
        let (a, b) = (
            format!("{}{n}a", self.prefix),
            format!("{}{n}b", self.prefix),
        );
        self.run(
            "ip",
            &["link", "add", &a, "type", "veth", "peer", "name", &b],
        );
        self.run("ip", &["link", "set", &a, "netns", ns_a]);
        self.run("ip", &["link", "set", &b, "netns", ns_b]);
        self.in_ns(ns_a, &["ip", "addr", "add", addr_a, "dev", &a]);
        self.in_ns(ns_b, &["ip", "addr", "add", addr_b, "dev", &b]);
        self.in_ns(ns_a, &["ip", "link", "set", &a, "up"]);
        self.in_ns(ns_b, &["ip", "link", "set", &b, "up"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            child.kill().ok();
            child.wait().ok();
        }
        for dir in &self.frr_dirs {
            // bgpd daemonizes: its pid file names it.
            if let Ok(pid) = std::fs::read_to_string(dir.join("bgpd.pid")) {
                Command::new("kill").arg(pid.trim()).status().ok();
            }
            std::fs::remove_dir_all(dir).ok();
        }
        for name in ["r", "d1", "d2", "c"] {
            Command::new("ip")
                .args(["netns", "del", &self.ns(name)])
                .status()
                .ok();
        }
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const BGPD: &str = "/usr/lib/frr/bgpd";

/// The real servers: each answers `NAME PEER` (the peer is the director
/// that proxied the connection) and waits for the client to close.
const REAL_SERVERS: &str = r#"
import socket, sys, threading
def serve(name, addr):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8000)); s.listen(512)
    while True:
        c, peer = s.accept()
        def talk(c=c, peer=peer):
            try:
                c.sendall(f"{name} {peer[0]}\n".encode()); c.recv(1)
            except OSError: pass
            c.close()
        threading.Thread(target=talk, daemon=True).start()
for i in (1, 2, 3):
    threading.Thread(target=serve, args=(f"rs{i}", f"10.200.0.{i}"), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// The client: one connection per source port to the VIP; prints
/// `PORT NAME PEER` per answer, `PORT error` per failure.
const CLIENT: &str = r#"
import socket, sys, time
first, count = int(sys.argv[1]), int(sys.argv[2])
until = time.time() + float(sys.argv[3]) if len(sys.argv) > 3 else None
for port in range(first, first + count):
    if until and time.time() > until: break
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.settimeout(3)
    try:
        s.bind(("10.123.9.1", port)); s.connect(("192.0.2.10", 80))
        line = b""
        while not line.endswith(b"\n"):
            more = s.recv(100)
            if not more: break
            line += more
        print(port, line.decode().strip(), flush=True)
    except OSError as e:
        print(port, "error", e, flush=True)
    s.close()
"#;

/// Run the client in `ns`: port → (real server, director address).
fn flows(ns: &str, dir: &Path, first: u16, count: u16) -> BTreeMap<u16, (String, String)> {
    let script = dir.join("client.py");
    std::fs::write(&script, CLIENT).expect("client.py");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3"])
        .arg(&script)
        .args([first.to_string(), count.to_string()])
        .output()
        .expect("run client");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [port, name, peer] => Some((port.parse().ok()?, (name.into(), peer.into()))),
                [port, ..] => Some((port.parse().ok()?, ("error".into(), line.into()))),
                _ => None,
            }
        })
        .collect()
}

fn kernel_route(lab: &Lab) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("r"),
            "ip",
            "route",
            "show",
            "192.0.2.10",
        ])
        .output()
        .expect("ip route");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(limit: Duration, what: &str, check: impl Fn() -> bool, show: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}:\n{}", show());
}

/// Start the daemon of `f` inside namespace `ns`.
fn start_in(f: &mut Fixture, ns: &str) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(f.dir.join("daemon.log"))
        .expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "env", "KEEPMON_LOG=debug"])
        .arg(env!("CARGO_BIN_EXE_keepmon"))
        .args(["start", "-c"])
        .arg(f.config())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start keepmon");
    f.daemon = Some(child);
    f.wait_for(
        |f| f.cli(&["status"]).status.success(),
        "the daemon answers",
    );
}

/// Whether the router's kernel route to the VIP goes through both directors.
fn both_next_hops(lab: &Lab) -> bool {
    let route = kernel_route(lab);
    route.contains("via 10.123.1.1") && route.contains("via 10.123.2.1")
}

/// Whether it goes through director 1 only.
fn only_director_1(lab: &Lab) -> bool {
    let route = kernel_route(lab);
    route.contains("10.123.1.1") && !route.contains("10.123.2.1")
}

fn director_config(n: u32, bgp: &str) -> String {
    format!(
        r#"
[daemon]
statedir = "state"
director = "d{n}"

[bgp]
{bgp}withdraw_drain = "1s"

[hostgroups]
backends = ["10.200.0.1", "10.200.0.2", "10.200.0.3"]

[watch.backends.web]
interval = "1s"
monitor = {{ type = "tcp", port = 8000, timeout = "1s" }}

[virtual_servers.web]
listen = "192.0.2.10:80"
scheduler = "mh"
scheduler_flags = ["mh-port"]
health = "backends:web"
real_servers = [
  {{ addr = "10.200.0.1:8000" }},
  {{ addr = "10.200.0.2:8000" }},
  {{ addr = "10.200.0.3:8000" }},
]

[announce.vip]
prefix = "192.0.2.10/32"
when = "quorum:web"
"#
    )
}

#[test]
fn flows_spread_over_bird_and_frr_directors_and_keep_their_real_server_when_one_leaves() {
    let what = "several active directors (BIRD and FRR) behind an ECMP router";
    if !nix::unistd::geteuid().is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    if !(have("bird") && have("birdc")) {
        common::not_run(&format!("{what}: needs BIRD 2 (Debian package bird2)"));
        return;
    }
    if !(Path::new(BGPD).exists() && have("vtysh")) {
        common::not_run(&format!("{what}: needs FRR (Debian package frr)"));
        return;
    }
    if !have("python3") {
        common::not_run(&format!(
            "{what}: needs python3 for the client and real servers"
        ));
        return;
    }
    let mut lab = Lab {
        prefix: format!("kmad{}", std::process::id() % 100_000),
        children: Vec::new(),
        frr_dirs: Vec::new(),
    };
    let (r, d1, d2, c) = (lab.ns("r"), lab.ns("d1"), lab.ns("d2"), lab.ns("c"));
    for ns in [&r, &d1, &d2, &c] {
        lab.run("ip", &["netns", "add", ns]);
        lab.in_ns(ns, &["ip", "link", "set", "lo", "up"]);
    }
    lab.link("1", (&d1, "10.123.1.1/24"), (&r, "10.123.1.254/24"));
    lab.link("2", (&d2, "10.123.2.1/24"), (&r, "10.123.2.254/24"));
    lab.link("9", (&c, "10.123.9.1/24"), (&r, "10.123.9.254/24"));
    lab.in_ns(
        &c,
        &["ip", "route", "add", "default", "via", "10.123.9.254"],
    );
    lab.in_ns(&c, &["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
    for (n, d) in [(1, &d1), (2, &d2)] {
        lab.in_ns(d, &["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
        lab.in_ns(
            d,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("10.123.{n}.254"),
            ],
        );
    }
    // The router forwards, hashes flows over next hops by their ports, and
    // owns the real servers' addresses.
    lab.in_ns(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.in_ns(
        &r,
        &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    );
    for i in 1..=3 {
        lab.in_ns(
            &r,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.200.0.{i}/32"),
                "dev",
                "lo",
            ],
        );
    }

    let mut first = Fixture::new("active-d1");
    let mut second = Fixture::new("active-d2");
    let servers = first.dir.join("servers.py");
    std::fs::write(&servers, REAL_SERVERS).expect("servers.py");
    lab.spawn_in(
        &r,
        &["python3", &servers.display().to_string()],
        &first.dir.join("servers.log"),
    );
    let router_conf = first.dir.join("router.conf");
    std::fs::write(
        &router_conf,
        "router id 10.123.9.254;\nprotocol device {}\n\
         protocol kernel { ipv4 { export all; }; merge paths on; }\n\
         protocol bgp d1 { local 10.123.1.254 as 65000; neighbor 10.123.1.1 as 65001; ipv4 { import all; export none; }; }\n\
         protocol bgp d2 { local 10.123.2.254 as 65000; neighbor 10.123.2.1 as 65002; ipv4 { import all; export none; }; }\n",
    )
    .expect("router.conf");
    let router_sock = first.dir.join("router.ctl");
    lab.spawn_in(
        &r,
        &[
            "bird",
            "-f",
            "-c",
            &router_conf.display().to_string(),
            "-s",
            &router_sock.display().to_string(),
            "-P",
            &first.dir.join("router.pid").display().to_string(),
        ],
        &first.dir.join("router.log"),
    );

    // Director 1: BIRD with keepmon's include file.
    let include = first.dir.join("routes.conf");
    std::fs::write(
        &include,
        "protocol static keepmon4 { ipv4; }\nprotocol static keepmon6 { ipv6; }\n",
    )
    .expect("include");
    let d1_conf = first.dir.join("director.conf");
    std::fs::write(
        &d1_conf,
        format!(
            "router id 10.123.1.1;\nprotocol device {{}}\ninclude \"{}\";\n\
             protocol bgp r {{ local 10.123.1.1 as 65001; neighbor 10.123.1.254 as 65000;\n\
             ipv4 {{ import none; export where proto = \"keepmon4\"; }}; }}\n",
            include.display()
        ),
    )
    .expect("director.conf");
    let d1_sock = first.dir.join("director.ctl");
    lab.spawn_in(
        &d1,
        &[
            "bird",
            "-f",
            "-c",
            &d1_conf.display().to_string(),
            "-s",
            &d1_sock.display().to_string(),
            "-P",
            &first.dir.join("director.pid").display().to_string(),
        ],
        &first.dir.join("director-bird.log"),
    );

    // Director 2: FRR's bgpd (no zebra: `network` statements need no RIB
    // with import-check off) in its own path space.
    let pathspace = lab.ns("frr");
    let frr_dir = PathBuf::from("/var/run/frr").join(&pathspace);
    std::fs::create_dir_all(&frr_dir).expect("frr run dir");
    lab.frr_dirs.push(frr_dir.clone());
    lab.run("chown", &["frr:frr", &frr_dir.display().to_string()]);
    let bgpd_conf = second.dir.join("bgpd.conf");
    std::fs::write(
        &bgpd_conf,
        "frr defaults traditional\nhostname d2\nrouter bgp 65002\n bgp router-id 10.123.2.1\n\
         no bgp ebgp-requires-policy\n no bgp network import-check\n neighbor 10.123.2.254 remote-as 65000\n\
         neighbor 10.123.2.254 disable-connected-check\n neighbor 10.123.2.254 advertisement-interval 0\nexit\n!\nroute-map keepmon permit 10\nexit\n",
    )
    .expect("bgpd.conf");
    lab.in_ns(
        &d2,
        &[
            BGPD,
            "-d",
            "-Z",
            "-N",
            &pathspace,
            "-f",
            &bgpd_conf.display().to_string(),
            "-i",
            &frr_dir.join("bgpd.pid").display().to_string(),
            "--log",
            &format!("file:{}", second.dir.join("bgpd.log").display()),
        ],
    );

    let bgp = [
        format!(
            "bird_include = \"{}\"\nbird_socket = \"{}\"\n",
            include.display(),
            d1_sock.display()
        ),
        format!("via = \"frr\"\nfrr_pathspace = \"{pathspace}\"\n"),
    ];
    for (n, (f, ns)) in [(&mut first, &d1), (&mut second, &d2)]
        .into_iter()
        .enumerate()
    {
        std::fs::write(f.config(), director_config(n as u32 + 1, &bgp[n])).expect("config");
        start_in(f, ns);
    }

    // Both next hops in the router's kernel table (BIRD merged the paths).
    wait_until(
        Duration::from_secs(40),
        "the router's kernel table has both next hops",
        || both_next_hops(&lab),
        || {
            format!(
                "ip route: {}\nrouter: {}\nfrr: {}",
                kernel_route(&lab),
                birdc(&router_sock, &["show", "route", "all"]),
                vtysh(&pathspace, "show bgp summary")
            )
        },
    );
    let running = vtysh(&pathspace, "show running-config");
    assert!(
        running.contains("network 192.0.2.10/32 route-map keepmon"),
        "{running}"
    );

    // Many flows from spread source ports: both directors carry some, and
    // the real servers share them.
    let before = flows(&c, &first.dir, 20_000, 200);
    assert_eq!(before.len(), 200);
    let failed: Vec<_> = before.values().filter(|(n, _)| n == "error").collect();
    assert!(failed.is_empty(), "{failed:?}");
    let directors: BTreeMap<&str, usize> =
        before.values().fold(BTreeMap::new(), |mut m, (_, d)| {
            *m.entry(d.as_str()).or_default() += 1;
            m
        });
    assert_eq!(
        directors.keys().copied().collect::<Vec<_>>(),
        ["10.123.1.1", "10.123.2.1"],
        "flows over both directors: {directors:?}"
    );
    let servers: std::collections::BTreeSet<&str> =
        before.values().map(|(n, _)| n.as_str()).collect();
    assert_eq!(servers.len(), 3, "mh-port spreads one client: {servers:?}");

    // Director 2 (FRR) loses its backends (a blackhole route in its
    // namespace): it withdraws, and the router's kernel table has one next
    // hop within the check interval x fall + 1 s.
    lab.in_ns(&d2, &["ip", "route", "add", "blackhole", "10.200.0.0/24"]);
    let failed_at = Instant::now();
    wait_until(
        Duration::from_secs(10),
        "director 2 withdraws after its backends fail",
        || only_director_1(&lab),
        || kernel_route(&lab),
    );
    let withdraw = failed_at.elapsed();
    eprintln!("backend failure -> one next hop at the router: {withdraw:?}");
    assert!(
        withdraw <= CHECK_INTERVAL + Duration::from_secs(1),
        "withdrawn within interval x fall + 1 s: {withdraw:?}"
    );
    // The backends return: director 2 announces again.
    lab.in_ns(&d2, &["ip", "route", "del", "blackhole", "10.200.0.0/24"]);
    wait_until(
        Duration::from_secs(20),
        "director 2 announces again after recovery",
        || both_next_hops(&lab),
        || kernel_route(&lab),
    );

    // Director 2 (FRR) stops while the client keeps connecting: its path
    // leaves the router's kernel table before it stops serving, so no
    // connection fails; then every flow keeps its real server through
    // director 1.
    let script = first.dir.join("client.py");
    let during = Command::new("ip")
        .args(["netns", "exec", &c, "python3"])
        .arg(&script)
        .args(["30000", "20000", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("client loop");
    std::thread::sleep(Duration::from_millis(500));
    let out = second.cli(&["stop"]);
    assert!(out.status.success());
    second.wait_exit();
    let during = during.wait_with_output().expect("client loop");
    let during = String::from_utf8_lossy(&during.stdout);
    let total = during.lines().count();
    let errors: Vec<&str> = during.lines().filter(|l| l.contains("error")).collect();
    assert!(total > 50, "the client loop ran: {total} connections");
    assert!(
        errors.is_empty(),
        "{} of {total} connections failed during the planned stop: {errors:?}",
        errors.len()
    );
    assert!(
        during.contains("10.123.2.1") && during.contains("10.123.1.1"),
        "the loop saw both directors, then one"
    );
    let route = kernel_route(&lab);
    assert!(
        route.contains("10.123.1.1") && !route.contains("10.123.2.1"),
        "only director 1 is left at exit: {route}"
    );
    assert!(
        !vtysh(&pathspace, "show running-config").contains("network 192.0.2.10/32"),
        "FRR withdrew the statement"
    );
    std::thread::sleep(Duration::from_millis(1100)); // TIME_WAIT reuse needs 1 s
    let after = flows(&c, &first.dir, 20_000, 200);
    let moved: Vec<(u16, &str, &str)> = before
        .iter()
        .filter_map(|(port, (name, _))| {
            let now = &after.get(port)?.0;
            (now != name).then_some((*port, name.as_str(), now.as_str()))
        })
        .collect();
    assert_eq!(after.len(), 200);
    assert!(moved.is_empty(), "flows changed real server: {moved:?}");
    assert!(
        after.values().all(|(_, d)| d == "10.123.1.1"),
        "director 1 carries every flow now"
    );

    // A restart of director 2 announces again.
    start_in(&mut second, &d2);
    wait_until(
        Duration::from_secs(30),
        "director 2 announces again after its restart",
        || both_next_hops(&lab),
        || kernel_route(&lab),
    );
}

/// The health-check interval of the directors (fall is 1).
const CHECK_INTERVAL: Duration = Duration::from_millis(1000);

fn birdc(socket: &Path, args: &[&str]) -> String {
    Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

fn vtysh(pathspace: &str, command: &str) -> String {
    Command::new("vtysh")
        .args(["-N", pathspace, "-c", command])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}
