//! The nftables data plane in real network namespaces: a client, a director running keepmon, two backends; traffic to the VIP is spread by weight, a failed backend stops getting new connections once the table changes, and `nft list table inet keepmon` shows the rules.
//!
//! Root only (namespaces, nftables). Every namespace and process the test
//! makes is removed by a Drop guard, also when an assertion fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop (which also deletes its veths and
/// its nftables table).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ns_run(ns: &str, args: &[&str]) -> Output {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all)
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Lab {
    client: String,
    director: String,
    backends: [String; 2],
    dir: PathBuf,
    // Declared last: processes die before their namespaces go.
    _ns: Vec<Netns>,
}

/// client 10.9.0.2 → director (10.9.0.1 | 10.9.1.1 | 10.9.2.1) → backends
/// 10.9.1.2 and 10.9.2.2; the VIP 10.9.100.1 lives only in nftables.
fn lab(tag: &str) -> Lab {
    let pid = std::process::id();
    let name = |role: &str| format!("km{tag}{role}{pid}");
    let (client, director) = (name("c"), name("d"));
    let backends = [name("b1"), name("b2")];
    let mut guards = Vec::new();
    for ns in [&client, &director, &backends[0], &backends[1]] {
        run(&["ip", "netns", "add", ns]);
        guards.push(Netns(ns.clone()));
        ns_run(ns, &["ip", "link", "set", "lo", "up"]);
    }
    let link = |ns: &str, subnet: u8, host: u8, if_ns: &str, if_d: &str| {
        run(&[
            "ip", "link", "add", if_ns, "netns", ns, "type", "veth", "peer", "name", if_d, "netns",
            &director,
        ]);
        ns_run(
            ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.9.{subnet}.{host}/24"),
                "dev",
                if_ns,
            ],
        );
        ns_run(ns, &["ip", "link", "set", if_ns, "up"]);
        ns_run(
            ns,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("10.9.{subnet}.1"),
            ],
        );
        ns_run(
            &director,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.9.{subnet}.1/24"),
                "dev",
                if_d,
            ],
        );
        ns_run(&director, &["ip", "link", "set", if_d, "up"]);
    };
    link(&client, 0, 2, "kmc0", "kmd0");
    link(&backends[0], 1, 2, "kmb1", "kmd1");
    link(&backends[1], 2, 2, "kmb2", "kmd2");
    ns_run(&director, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nft-{tag}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    Lab {
        client,
        director,
        backends,
        dir,
        _ns: guards,
    }
}

/// busybox httpd answering its own name on 8080.
fn backend(lab: &Lab, i: usize) -> Proc {
    let www = lab.dir.join(format!("www{i}"));
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), format!("b{}\n", i + 1)).expect("index");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.backends[i],
            "busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
        ])
        .arg(&www)
        .spawn()
        .expect("busybox httpd");
    Proc(child)
}

/// `n` new connections from the client to the VIP; the answers' bodies.
fn answers(lab: &Lab, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(busybox seq {n}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 10.9.100.1 80 | busybox tail -1; echo; done"
    );
    let out = ns_run(&lab.client, &["busybox", "sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn count(v: &[String], what: &str) -> usize {
    v.iter().filter(|s| *s == what).count()
}

fn nft_table(lab: &Lab) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.director,
            "nft",
            "list",
            "table",
            "inet",
            "keepmon",
        ])
        .output()
        .expect("nft list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait (at most 20 s) until the table satisfies `ok`.
fn wait_table(lab: &Lab, ok: impl Fn(&str) -> bool, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = nft_table(lab);
        if ok(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; table:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("keepmon.toml");
    let text = format!(
        r#"
[daemon]
statedir = "{}"

[hostgroups]
backends = ["10.9.1.2", "10.9.2.2"]

[watch.backends.web]
interval = "200ms"
monitor = {{ type = "tcp", port = 8080, timeout = "1s" }}

[virtual_servers.web]
listen = "10.9.100.1:80"
dataplane = "nftables"
scheduler = "wrr"
health = "backends:web"
real_servers = [
  {{ addr = "10.9.1.2:8080", host = "10.9.1.2", weight = 3 }},
  {{ addr = "10.9.2.2:8080", host = "10.9.2.2", weight = 1 }},
]
"#,
        dir.join("state").display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
fn nftables_spreads_by_weight_and_follows_health() {
    if !nix::unistd::geteuid().is_root() {
        common::not_run("tests/nft.rs needs root (network namespaces, nftables)");
        return;
    }
    for tool in ["ip", "nft", "busybox"] {
        if !have(tool) {
            common::not_run(&format!(
                "{tool} is missing (scripts/test.sh installs nftables, busybox-static, iproute2)"
            ));
            return;
        }
    }
    let lab = lab("n");
    let b1 = backend(&lab, 0);
    let mut b2 = Some(backend(&lab, 1));
    let cfg = config(&lab.dir);
    let keepmon = Proc(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.director,
                env!("CARGO_BIN_EXE_keepmon"),
                "-c",
            ])
            .arg(&cfg)
            .arg("start")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(lab.dir.join("keepmon.log")).expect("log"))
            .spawn()
            .expect("start keepmon"),
    );

    // Both real servers up: numgen inc mod 4, keys 0-2 to b1, 3 to b2.
    let table = wait_table(
        &lab,
        |t| t.contains("10.9.1.2 . 8080") && t.contains("10.9.2.2 . 8080"),
        "both real servers",
    );
    assert!(table.contains("table inet keepmon"), "{table}");
    assert!(
        table.contains(
            "ip daddr 10.9.100.1 tcp dport 80 dnat ip to numgen inc mod 4 map { 0-2 : 10.9.1.2 . 8080, 3 : 10.9.2.2 . 8080 }"
        ),
        "{table}"
    );
    assert!(
        table.contains("type nat hook prerouting priority dstnat; policy accept;"),
        "{table}"
    );
    let got = answers(&lab, 40);
    assert_eq!(got.len(), 40, "every connection answered: {got:?}");
    let (n1, n2) = (count(&got, "b1"), count(&got, "b2"));
    assert_eq!(n1 + n2, 40, "{got:?}");
    assert!((28..=32).contains(&n1), "3:1 weights, got b1={n1} b2={n2}");

    // b2 fails: after the table change every new connection goes to b1.
    drop(b2.take());
    let table = wait_table(&lab, |t| !t.contains("10.9.2.2"), "b2 to leave the table");
    assert!(
        table.contains("dnat ip to numgen inc mod 3 map { 0-2 : 10.9.1.2 . 8080 }"),
        "{table}"
    );
    let got = answers(&lab, 12);
    assert_eq!(count(&got, "b1"), 12, "{got:?}");

    // b2 returns: it is back in the map.
    let _b2 = backend(&lab, 1);
    wait_table(&lab, |t| t.contains("10.9.2.2 . 8080"), "b2 to come back");
    let got = answers(&lab, 8);
    assert!(count(&got, "b2") >= 1, "{got:?}");

    // Stop leaves the table (default), so traffic keeps flowing.
    run(&[
        env!("CARGO_BIN_EXE_keepmon"),
        "-c",
        cfg.to_str().unwrap(),
        "stop",
    ]);
    let mut keepmon = keepmon;
    let deadline = Instant::now() + Duration::from_secs(15);
    while keepmon.0.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "keepmon did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(nft_table(&lab).contains("10.9.1.2 . 8080"));
    assert_eq!(
        answers(&lab, 4).len(),
        4,
        "traffic flows after keepmon stopped"
    );
    drop(b1);
}

/// Every kind of service keepmon writes (tcp/udp, IPv4/IPv6, numgen/jhash,
/// a service without live members) is accepted by the real nft, and lists
/// back as the rules we meant. Runs in a private network namespace.
#[test]
fn nft_accepts_every_kind_of_service_keepmon_writes() {
    use keepmon::config::model::{DataPlane, Forward, LbScheduler, Protocol, Thresholds};
    use keepmon::lb::table::{Desired, DesiredService, Member, ServiceSpec};
    use std::io::Write;

    if !nix::unistd::geteuid().is_root() || !have("nft") || !have("unshare") {
        common::not_run("needs root, nft and unshare (nftables package)");
        return;
    }
    let service = |listen: &str, protocol, scheduler, members: &[(&str, u32)]| DesiredService {
        spec: ServiceSpec {
            listen: Some(listen.parse().unwrap()),
            fwmark: None,
            protocol,
            scheduler,
            dataplane: DataPlane::Nftables,
            persistence: None,
            persistence_netmask: None,
            sorry_server: None,
            quorum: None,
            hysteresis: 0,
            retries: 0,
            connect_timeout: Duration::from_secs(1),
            proxy: Default::default(),
            server_order: Vec::new(),
            weight_unit: 1,
        },
        members: members
            .iter()
            .map(|(a, w)| {
                (
                    a.parse().unwrap(),
                    Member {
                        weight: *w,
                        forward: Forward::Nat,
                        thresholds: Thresholds::default(),
                        proxy: Default::default(),
                    },
                )
            })
            .collect(),
    };
    let mut d = Desired::default();
    d.services.insert(
        "web".into(),
        service(
            "10.9.100.1:80",
            Protocol::Tcp,
            LbScheduler::WeightedRoundRobin,
            &[("10.9.1.2:8080", 2), ("10.9.2.2:8080", 1)],
        ),
    );
    d.services.insert(
        "dns".into(),
        service(
            "10.9.100.2:53",
            Protocol::Udp,
            LbScheduler::SourceHash,
            &[("10.9.1.2:53", 1), ("10.9.2.2:53", 1)],
        ),
    );
    d.services.insert(
        "v6".into(),
        service(
            "[fd00::1]:443",
            Protocol::Tcp,
            LbScheduler::RoundRobin,
            &[("[fd00::2]:443", 5), ("[fd00::3]:443", 1)],
        ),
    );
    d.services.insert(
        "empty".into(),
        service(
            "10.9.100.3:25",
            Protocol::Tcp,
            LbScheduler::WeightedRoundRobin,
            &[("10.9.1.2:25", 0)],
        ),
    );
    let (batch, _) = keepmon::lb::nft::ruleset(&d);
    let mut child = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "nft -j -f - && nft list table inet keepmon",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(batch.to_string().as_bytes())
        .expect("write batch");
    let out = child.wait_with_output().expect("nft");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nft refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "ip daddr 10.9.100.1 tcp dport 80 dnat ip to numgen inc mod 3 map { 0-1 : 10.9.1.2 . 8080, 2 : 10.9.2.2 . 8080 }",
        "ip daddr 10.9.100.2 udp dport 53 dnat ip to jhash ip saddr mod 2 map { 0 : 10.9.1.2 . 53, 1 : 10.9.2.2 . 53 }",
        "ip6 daddr fd00::1 tcp dport 443 dnat ip6 to numgen inc mod 2 map { 0 : fd00::2 . 443, 1 : fd00::3 . 443 }",
        "comment \"web\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("10.9.100.3"),
        "a service without live members has no rule:\n{text}"
    );
}
