//! keepalived.conf runs unchanged: the corpus in `tests/keepalived/` read by `keepmon check-config` and by Debian's `keepalived -t -f`, which must agree on what is an error, with a keepmon diagnostic at every line keepalived reports.
//!
//! The corpus files are named for what they are: `broken-*.conf` are files
//! keepalived cannot run (it exits, or its VRRP side does not start), so
//! keepmon must refuse them; `unsupported-*.conf` run under keepalived but
//! use what keepmon cannot yet do the same way, so keepmon must refuse them
//! with a "keepmon cannot run this" error; every other file must compile,
//! with warnings only.
//!
//! keepalived checks that interfaces exist, so it runs inside a network
//! namespace this test creates with an `eth0` (removed on drop, also
//! when an assertion fails). That needs root and the keepalived package:
//! without them the comparison says so, and fails under
//! `KEEPMON_REQUIRE_PRIVILEGED=1`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::peer::{Lan, Peer, is_root, keepalived_installed, run, wait_for};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keepalived")
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is missing: {files:?}");
    files
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Expect {
    Compiles,
    Broken,
    Unsupported,
}

fn expectation(path: &Path) -> Expect {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.starts_with("broken-") {
        Expect::Broken
    } else if name.starts_with("unsupported-") {
        Expect::Unsupported
    } else {
        Expect::Compiles
    }
}

/// What `keepmon check-config -c FILE` said: success, and every
/// diagnostic's (file, line) and text.
struct KeepmonVerdict {
    ok: bool,
    stdout: String,
    diagnostics: Vec<(PathBuf, u32, String)>,
}

fn keepmon_check(path: &Path) -> KeepmonVerdict {
    let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["check-config", "-c"])
        .arg(path)
        .output()
        .expect("run keepmon");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut diagnostics = Vec::new();
    for line in stderr.lines() {
        // FILE:LINE:COL: severity: message
        let mut parts = line.splitn(4, ':');
        let (Some(file), Some(line_no), Some(_col), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(line_no) = line_no.parse::<u32>() else {
            continue;
        };
        diagnostics.push((PathBuf::from(file), line_no, rest.trim().to_string()));
    }
    KeepmonVerdict {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        diagnostics,
    }
}

#[test]
fn the_corpus_compiles_as_its_names_say() {
    for path in corpus() {
        let verdict = keepmon_check(&path);
        let all = verdict
            .diagnostics
            .iter()
            .map(|(f, l, m)| format!("{}:{l}: {m}", f.display()))
            .collect::<Vec<_>>()
            .join("\n");
        match expectation(&path) {
            Expect::Compiles => {
                assert!(verdict.ok, "{} does not compile:\n{all}", path.display());
                assert!(
                    verdict.stdout.contains("(keepalived.conf format"),
                    "{} is not detected as keepalived.conf: {}",
                    path.display(),
                    verdict.stdout
                );
            }
            Expect::Broken => {
                assert!(
                    !verdict.ok,
                    "{} compiles but keepalived cannot run it",
                    path.display()
                );
            }
            Expect::Unsupported => {
                assert!(!verdict.ok, "{} compiles", path.display());
                assert!(
                    verdict
                        .diagnostics
                        .iter()
                        .any(|(_, _, m)| m
                            .contains("error: keepmon cannot run this as keepalived does")),
                    "{}: no 'keepmon cannot run this' error:\n{all}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_shipped_examples_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/keepalived");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("etc/keepalived") {
        let path = entry.expect("entry").path();
        let verdict = keepmon_check(&path);
        assert!(
            verdict.ok,
            "{} does not compile: {:?}",
            path.display(),
            verdict.diagnostics
        );
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
fn a_tutorial_pair_differs_only_in_state_and_priority() {
    let dir = corpus_dir();
    let master = keepmon::config::load(&dir.join("master.conf"), None).expect("master compiles");
    let backup = keepmon::config::load(&dir.join("backup.conf"), None).expect("backup compiles");
    let (m, b) = (&master.config.vrrp["VI_1"], &backup.config.vrrp["VI_1"]);
    assert_eq!((m.priority, b.priority), (101, 100));
    assert_eq!(m.vrid, b.vrid);
    assert_eq!(m.auth_pass, b.auth_pass);
    assert_eq!(m.virtual_addresses, b.virtual_addresses);
    assert_eq!(m.track, b.track);
}

/// A network namespace with an `eth0` (one end of a veth pair); deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("kmka{}x{n}", std::process::id() % 100_000);
        let ns = Netns(name.clone());
        run("ip", &["netns", "add", &name]);
        run(
            "ip",
            &[
                "-n", &name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
            ],
        );
        run("ip", &["-n", &name, "link", "set", "eth0", "up"]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// `keepalived -t -f FILE` in `ns`: its exit status and every (file, line)
/// it reported a config problem at.
fn keepalived_check(ns: &Netns, path: &Path) -> (i32, BTreeSet<(PathBuf, u32)>, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "keepalived", "-t", "-f"])
        .arg(path)
        .output()
        .expect("run keepalived -t");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let dir = path.parent().expect("corpus dir");
    let mut lines = BTreeSet::new();
    for line in stderr.lines() {
        // "(Line N) message" for the main file, "(FILE: Line N) message" otherwise.
        let Some(rest) = line.strip_prefix('(') else {
            continue;
        };
        let Some((place, _message)) = rest.split_once(") ") else {
            continue;
        };
        let (file, number) = match place.rsplit_once(": Line ") {
            Some((file, n)) => (dir.join(file), n),
            None => match place.strip_prefix("Line ") {
                Some(n) => (path.to_path_buf(), n),
                None => continue,
            },
        };
        if let Ok(n) = number.parse::<u32>() {
            lines.insert((file, n));
        }
    }
    (out.status.code().unwrap_or(-1), lines, stderr)
}

#[test]
fn keepmon_and_keepalived_agree_on_the_corpus() {
    let what = "keepalived.conf corpus against keepalived -t";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for a network namespace"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let ns = Netns::new();
    let mut compared = 0;
    let mut lines_checked = 0;
    for path in corpus() {
        let (status, reported, stderr) = keepalived_check(&ns, &path);
        let verdict = keepmon_check(&path);
        let name = path.display();
        match expectation(&path) {
            // keepalived runs these (2: a missing parameter, 4: a file or
            // interface it cannot use, are the statuses of files it refuses).
            Expect::Compiles | Expect::Unsupported => assert!(
                ![2, 4].contains(&status),
                "keepalived -t refuses {name} (status {status}):\n{stderr}"
            ),
            Expect::Broken => assert_ne!(
                status, 0,
                "keepalived -t accepts {name}, which the corpus says it cannot run"
            ),
        }
        assert_eq!(
            verdict.ok,
            expectation(&path) == Expect::Compiles,
            "keepmon check-config on {name}"
        );
        lines_checked += reported.len();
        for (file, line) in &reported {
            let covered = verdict
                .diagnostics
                .iter()
                .any(|(f, l, _)| f == file && l == line);
            assert!(
                covered,
                "keepalived reports {}:{line} but keepmon says nothing there\nkeepalived:\n{stderr}\nkeepmon:\n{:#?}",
                file.display(),
                verdict.diagnostics
            );
        }
        compared += 1;
    }
    assert!(compared >= 10);
    // traps.conf alone makes keepalived report a dozen lines: an empty set
    // would mean its messages were not understood.
    assert!(
        lines_checked >= 12,
        "only {lines_checked} reported lines were compared"
    );
}

// ---------------------------------------------------------------------------
// Interop: keepalived and keepmon started from the same keepalived.conf.

const VIP: &str = "10.98.0.50";
/// In `virtual_ipaddress_excluded`: held by the master, never advertised.
const EXCLUDED: &str = "10.98.0.77";

/// Two directors' namespaces (`eth0` 10.98.0.1 and .2) joined by a bridge
/// namespace; deleted on drop.
struct Pair(Lan);

impl Pair {
    fn new() -> Pair {
        Pair::tagged("")
    }

    /// Tests running at once in one process use different tags.
    fn tagged(tag: &str) -> Pair {
        let prefix = format!("kmkp{tag}{}", std::process::id() % 100_000);
        let pair = Pair(Lan::new(
            &prefix,
            &[("1", "10.98.0.1/24"), ("2", "10.98.0.2/24")],
        ));
        for host in ["1", "2"] {
            pair.healthy(host, true);
        }
        pair
    }

    fn ns(&self, host: &str) -> String {
        self.0.ns(host)
    }

    /// The tracked script checks that link `chk0` exists in the director's
    /// namespace: this adds or removes it.
    fn healthy(&self, host: &str, up: bool) {
        let ns = self.ns(host);
        if up {
            run(
                "ip",
                &[
                    "-n", &ns, "link", "add", "chk0", "type", "veth", "peer", "name", "chk1",
                ],
            );
        } else {
            run("ip", &["-n", &ns, "link", "del", "chk0"]);
        }
    }

    fn has_vip(&self, host: &str) -> bool {
        self.0.has_address(host, VIP)
    }

    fn has_address(&self, host: &str, address: &str) -> bool {
        self.0.has_address(host, address)
    }
}

/// The one keepalived.conf both directors run; the copies differ only in
/// `state` and `priority`, as a tutorial's two copies do.
fn pair_config(ip: &str, notify: &Path, state: &str, priority: u8) -> String {
    format!(
        "! keepalived.conf shared by a keepalived and a keepmon director
global_defs {{
    router_id DIRECTOR
}}

vrrp_script chk_link {{
    script \"{ip} link show chk0\"
    interval 1
    weight -60
}}

vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 52
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass k33pm0n
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
    virtual_ipaddress_excluded {{
        {EXCLUDED}/24
    }}
    track_script {{
        chk_link
    }}
    notify \"{notify}\"
}}
",
        notify = notify.display()
    )
}

fn ip_binary() -> Option<&'static str> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

/// keepalived and keepmon started from the same keepalived.conf are VRRP
/// peers: one master at a time, failover both ways on a failing
/// vrrp_script and on a stopped or killed director, notify scripts called
/// with keepalived's argv by both.
#[test]
fn keepalived_and_keepmon_from_the_same_file_are_peers() {
    let what = "keepalived/keepmon interop from one keepalived.conf";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    let Some(ip) = ip_binary() else {
        common::not_run(&format!("{what}: needs iproute2 (ip)"));
        return;
    };
    if !keepalived_installed(what) {
        return;
    }
    let pair = Pair::new();
    let root = std::env::temp_dir().join(format!("keepmon-ka-interop-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    std::fs::create_dir_all(&root).expect("temp dir");
    let notify_log = root.join("notify.log");
    let notify = root.join("notify.sh");
    std::fs::write(
        &notify,
        format!(
            "#!/bin/sh\necho \"$({ip} netns identify) $*\" >> {}\n",
            notify_log.display()
        ),
    )
    .expect("notify script");
    run("chmod", &["755", &notify.display().to_string()]);
    let notified = || std::fs::read_to_string(&notify_log).unwrap_or_default();

    // keepalived MASTER (150) on 1, keepmon BACKUP (100) on 2.
    let mut ka = Peer::start(
        &pair.ns("1"),
        &root.join("ka"),
        true,
        &pair_config(ip, &notify, "MASTER", 150),
    );
    let mut km = Peer::start(
        &pair.ns("2"),
        &root.join("km"),
        false,
        &pair_config(ip, &notify, "BACKUP", 100),
    );
    wait_for("keepalived is master, keepmon backup", &[&ka, &km], || {
        pair.has_vip("1")
            && !pair.has_vip("2")
            && notified().contains(&format!("{} INSTANCE VI_1 BACKUP", pair.ns("2")))
    });
    // keepalived's script fails: 150 - 60 = 90 < 100, keepmon preempts.
    pair.healthy("1", false);
    wait_for(
        "keepmon takes over from keepalived on a failing script",
        &[&ka, &km],
        || pair.has_vip("2") && !pair.has_vip("1"),
    );
    wait_for(
        "the excluded address moves with the VIP",
        &[&ka, &km],
        || pair.has_address("2", EXCLUDED) && !pair.has_address("1", EXCLUDED),
    );
    pair.healthy("1", true);
    wait_for("keepalived preempts keepmon again", &[&ka, &km], || {
        pair.has_vip("1") && !pair.has_vip("2")
    });
    ka.stop("-15");
    wait_for(
        "keepmon takes over from a stopped keepalived",
        &[&ka, &km],
        || pair.has_vip("2"),
    );
    // keepmon ran the notify script with keepalived's argv.
    let log = notified();
    assert!(
        log.contains(&format!("{} INSTANCE VI_1 MASTER 100", pair.ns("2"))),
        "keepmon's notify lines:\n{log}"
    );
    assert!(
        log.contains(&format!("{} INSTANCE VI_1 MASTER", pair.ns("1"))),
        "keepalived's notify lines:\n{log}"
    );
    // A graceful stop runs the STOP notify (notify_stop), as keepalived does.
    km.stop("-15");
    wait_for("keepmon ran its STOP notify", &[&ka, &km], || {
        notified().contains(&format!("{} INSTANCE VI_1 STOP 100", pair.ns("2")))
    });
    drop(km);
    drop(ka);

    // Roles swapped: keepmon MASTER (150) on 1, keepalived BACKUP (100) on 2.
    let mut km = Peer::start(
        &pair.ns("1"),
        &root.join("km2"),
        false,
        &pair_config(ip, &notify, "MASTER", 150),
    );
    let ka = Peer::start(
        &pair.ns("2"),
        &root.join("ka2"),
        true,
        &pair_config(ip, &notify, "BACKUP", 100),
    );
    wait_for("keepmon is master, keepalived backup", &[&ka, &km], || {
        pair.has_vip("1") && !pair.has_vip("2")
    });
    pair.healthy("1", false);
    wait_for(
        "keepalived takes over from keepmon on a failing script",
        &[&ka, &km],
        || pair.has_vip("2") && !pair.has_vip("1"),
    );
    pair.healthy("1", true);
    wait_for("keepmon preempts keepalived again", &[&ka, &km], || {
        pair.has_vip("1") && !pair.has_vip("2")
    });
    km.stop("-9");
    wait_for(
        "keepalived takes over from a killed keepmon",
        &[&ka, &km],
        || pair.has_vip("2"),
    );
    drop(ka);
    drop(km);
    std::fs::remove_dir_all(&root).ok();
}

const SYNC_VIPS: [&str; 2] = ["10.98.0.61", "10.98.0.62"];

/// A sync group of two instances, as a tutorial writes it: only VI_1
/// tracks the script (weight 0: FAULT when it fails), the group takes
/// VI_2 along. Both directors' copies differ in `state` and `priority`.
fn sync_pair_config(ip: &str, notify: &Path, state: &str, priority: u8) -> String {
    format!(
        "! keepalived.conf with a sync group, shared by keepalived and keepmon
vrrp_script chk_link {{
    script \"{ip} link show chk0\"
    interval 1
}}

vrrp_sync_group VG_1 {{
    group {{
        VI_1
        VI_2
    }}
    notify \"{notify}\"
}}

vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 61
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip1}/24
    }}
    track_script {{
        chk_link
    }}
}}

vrrp_instance VI_2 {{
    state {state}
    interface eth0
    virtual_router_id 62
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip2}/24
    }}
}}
",
        notify = notify.display(),
        vip1 = SYNC_VIPS[0],
        vip2 = SYNC_VIPS[1],
    )
}

/// keepalived and keepmon from one keepalived.conf with a
/// `vrrp_sync_group`: on either side, the tracked script failing on VI_1
/// takes VI_2 to FAULT too, so the peer takes both addresses; recovery
/// brings both back; the group's notify runs with `GROUP VG_1 STATE 0`.
#[test]
fn a_sync_group_moves_together_on_keepalived_and_keepmon() {
    let what = "keepalived/keepmon sync group interop";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    let Some(ip) = ip_binary() else {
        common::not_run(&format!("{what}: needs iproute2 (ip)"));
        return;
    };
    if !keepalived_installed(what) {
        return;
    }
    let pair = Pair::tagged("s");
    let root = std::env::temp_dir().join(format!("keepmon-ka-sync-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    std::fs::create_dir_all(&root).expect("temp dir");
    let notify_log = root.join("notify.log");
    let notify = root.join("notify.sh");
    std::fs::write(
        &notify,
        format!(
            "#!/bin/sh\necho \"$({ip} netns identify) $*\" >> {}\n",
            notify_log.display()
        ),
    )
    .expect("notify script");
    run("chmod", &["755", &notify.display().to_string()]);
    let notified = || std::fs::read_to_string(&notify_log).unwrap_or_default();
    let holds_both = |host: &str| SYNC_VIPS.iter().all(|vip| pair.has_address(host, vip));
    let holds_none = |host: &str| !SYNC_VIPS.iter().any(|vip| pair.has_address(host, vip));

    for keepmon_is_master in [false, true] {
        let (master_dir, backup_dir) = if keepmon_is_master {
            ("km-master", "ka-backup")
        } else {
            ("ka-master", "km-backup")
        };
        let master = Peer::start(
            &pair.ns("1"),
            &root.join(master_dir),
            !keepmon_is_master,
            &sync_pair_config(ip, &notify, "MASTER", 150),
        );
        let backup = Peer::start(
            &pair.ns("2"),
            &root.join(backup_dir),
            keepmon_is_master,
            &sync_pair_config(ip, &notify, "BACKUP", 100),
        );
        let peers = [&master, &backup];
        wait_for("director 1 holds both addresses", &peers, || {
            holds_both("1") && holds_none("2")
        });
        // VI_1's script fails on director 1: the group takes VI_2 along.
        pair.healthy("1", false);
        wait_for("director 2 takes both addresses", &peers, || {
            holds_both("2") && holds_none("1")
        });
        // keepmon's side names the group and its state for each member.
        let keepmon_side = if keepmon_is_master { &master } else { &backup };
        let group_state = if keepmon_is_master { "FAULT" } else { "MASTER" };
        wait_for(
            "keepmon's vrrp show names the group's state",
            &peers,
            || {
                let shown = keepmon_side.vrrp_show();
                shown
                    .matches(&format!("sync group VG_1: {group_state}"))
                    .count()
                    == 2
            },
        );
        let group_fault = format!("{} GROUP VG_1 FAULT 0", pair.ns("1"));
        let group_master = format!("{} GROUP VG_1 MASTER 0", pair.ns("2"));
        wait_for("both sides ran the group's notify", &peers, || {
            let log = notified();
            log.contains(&group_fault) && log.contains(&group_master)
        });
        pair.healthy("1", true);
        wait_for("director 1 takes both addresses back", &peers, || {
            holds_both("1") && holds_none("2")
        });
        drop(master);
        drop(backup);
        std::fs::remove_file(&notify_log).ok();
    }
    std::fs::remove_dir_all(&root).ok();
}

/// keepalived's `track_file` on both sides: the number in the master's
/// file times the line's weight lowers its priority below the peer's, the
/// peer takes over, and clearing the file gives the address back. Each
/// copy names its director's own file (one machine, one /run).
#[test]
fn a_tracked_file_moves_the_address_between_keepalived_and_keepmon() {
    let what = "keepalived/keepmon track_file interop";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let pair = Pair::tagged("f");
    let root = std::env::temp_dir().join(format!("keepmon-ka-tfile-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    std::fs::create_dir_all(&root).expect("temp dir");
    let vip = "10.98.0.81";
    let config = |host: &str, state: &str, priority: u8| {
        format!(
            "track_file prio {{
    file \"{file}\"
}}

vrrp_instance VI_F {{
    state {state}
    interface eth0
    virtual_router_id 81
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
    track_file {{
        prio weight -10
    }}
}}
",
            file = root.join(format!("{host}.prio")).display()
        )
    };
    let set = |host: &str, value: &str| {
        std::fs::write(root.join(format!("{host}.prio")), value).expect("track file")
    };
    for keepmon_is_master in [false, true] {
        set("1", "0\n");
        set("2", "0\n");
        let master = Peer::start(
            &pair.ns("1"),
            &root.join(format!("master-{keepmon_is_master}")),
            !keepmon_is_master,
            &config("1", "MASTER", 150),
        );
        let backup = Peer::start(
            &pair.ns("2"),
            &root.join(format!("backup-{keepmon_is_master}")),
            keepmon_is_master,
            &config("2", "BACKUP", 100),
        );
        let peers = [&master, &backup];
        wait_for("director 1 holds the address", &peers, || {
            pair.has_address("1", vip) && !pair.has_address("2", vip)
        });
        // 150 + 10 × -10 = 50 < 100.
        set("1", "10\n");
        wait_for("director 2 takes over on the tracked file", &peers, || {
            pair.has_address("2", vip) && !pair.has_address("1", vip)
        });
        set("1", "0\n");
        wait_for("director 1 takes the address back", &peers, || {
            pair.has_address("1", vip) && !pair.has_address("2", vip)
        });
        drop(master);
        drop(backup);
    }
    std::fs::remove_dir_all(&root).ok();
}

/// A `sleep` started for a tracked process, killed on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start(seconds: &str) -> Sleeper {
        Sleeper(
            Command::new("/bin/sleep")
                .arg(seconds)
                .spawn()
                .expect("start sleep"),
        )
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// keepmon's `track_process` against a real process started and killed:
/// keepmon (master, 150) tracks `/bin/sleep ARG` with weight -60, the
/// keepalived backup reads the same shape of file; killing the process
/// hands the address to keepalived (150 - 60 = 90 < 100), starting it
/// again takes it back. keepalived 2.2.7 cannot listen to process events
/// inside a network namespace (it logs "Failed to set/clear process event
/// listen", errno 111) and then counts its own process as gone: its
/// priority 160 is 100 throughout.
#[test]
fn a_tracked_process_moves_the_address_from_keepmon_to_keepalived() {
    let what = "keepalived/keepmon track_process interop";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for network namespaces"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let pair = Pair::tagged("p");
    let root = std::env::temp_dir().join(format!("keepmon-ka-tproc-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    std::fs::create_dir_all(&root).expect("temp dir");
    let vip = "10.98.0.82";
    // Arguments no other process has: one per director.
    let arg = |host: &str| format!("{}.{host}", 100_000 + std::process::id());
    let config = |host: &str, state: &str, priority: u8| {
        format!(
            "vrrp_track_process server {{
    process /bin/sleep {arg}
    weight -60
}}

vrrp_instance VI_P {{
    state {state}
    interface eth0
    virtual_router_id 82
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
    track_process {{
        server
    }}
}}
",
            arg = arg(host)
        )
    };
    let mut keepmon_server = Some(Sleeper::start(&arg("1")));
    let _keepalived_server = Sleeper::start(&arg("2"));
    let master = Peer::start(
        &pair.ns("1"),
        &root.join("master"),
        false,
        &config("1", "MASTER", 150),
    );
    let backup = Peer::start(
        &pair.ns("2"),
        &root.join("backup"),
        true,
        &config("2", "BACKUP", 160),
    );
    let peers = [&master, &backup];
    wait_for("keepmon holds the address", &peers, || {
        pair.has_address("1", vip) && !pair.has_address("2", vip)
    });
    // 150 - 60 = 90 < 100.
    let killed = std::time::Instant::now();
    keepmon_server.take();
    wait_for(
        "keepalived takes over when keepmon's process is gone",
        &peers,
        || pair.has_address("2", vip) && !pair.has_address("1", vip),
    );
    eprintln!(
        "track_process: address moved {} ms after the kill",
        killed.elapsed().as_millis()
    );
    let _again = Sleeper::start(&arg("1"));
    wait_for("keepmon takes the address back", &peers, || {
        pair.has_address("1", vip) && !pair.has_address("2", vip)
    });
    drop(master);
    drop(backup);
    std::fs::remove_dir_all(&root).ok();
}

/// A system user for scripts, removed on drop.
struct ScriptUser(String);

impl ScriptUser {
    fn create() -> ScriptUser {
        let name = format!("kmscr{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").arg(&name).output();
        run(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ],
        );
        ScriptUser(name)
    }

    fn uid(&self) -> String {
        let out = Command::new("id")
            .args(["-u", &self.0])
            .output()
            .expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for ScriptUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).output();
    }
}

/// `script_user` and `enable_script_security` as keepalived applies them:
/// scripts, notify scripts and MISC_CHECK scripts run as the script user; a script that runs
/// as root from a path others can write is disabled — `keepalived -t`
/// and keepmon say so for the same line — and keepmon's instance does not
/// track it.
#[test]
fn scripts_run_as_the_script_user_and_insecure_ones_are_disabled() {
    let what = "keepalived.conf script_user / enable_script_security";
    if !is_root() {
        common::not_run(&format!(
            "{what}: needs root to create a user and a namespace"
        ));
        return;
    }
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
        || Command::new("useradd").arg("--help").output().is_err()
    {
        common::not_run(&format!(
            "{what}: needs Debian's keepalived and passwd packages"
        ));
        return;
    }
    let user = ScriptUser::create();
    let root = std::env::temp_dir().join(format!("keepmon-ka-user-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    let out = root.join("out");
    let open = root.join("open");
    std::fs::create_dir_all(&out).expect("out dir");
    std::fs::create_dir_all(&open).expect("open dir");
    run("chmod", &["755", &root.display().to_string()]);
    // Scripts write here as the script user; no script lives here.
    run("chmod", &["1777", &out.display().to_string()]);
    // Anyone may replace what is in here: unsafe for root's scripts.
    run("chmod", &["777", &open.display().to_string()]);
    let script = |path: &Path, body: &str| {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
        run("chmod", &["755", &path.display().to_string()]);
    };
    script(
        &root.join("whoami.sh"),
        &format!("id -u > {}/check.uid", out.display()),
    );
    script(
        &root.join("notify.sh"),
        &format!("id -u > {}/notify.uid", out.display()),
    );
    script(
        &root.join("misc.sh"),
        &format!("id -u > {}/misc.uid", out.display()),
    );
    script(&open.join("bad.sh"), "exit 0");
    let config = root.join("keepalived.conf");
    std::fs::write(
        &config,
        format!(
            "global_defs {{
    script_user {user}
    enable_script_security
    keepmon_dataplane proxy
}}

vrrp_script chk_user {{
    script \"{root}/whoami.sh\"
    interval 1
}}

vrrp_script chk_open {{
    script \"{root}/open/bad.sh\"
    interval 1
    user root
}}

vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 71
    priority 100
    advert_int 1
    virtual_ipaddress {{
        10.97.0.1/24
    }}
    track_script {{
        chk_user
        chk_open
    }}
    notify \"{root}/notify.sh\"
}}

virtual_server 10.97.0.2 8080 {{
    delay_loop 1
    protocol TCP
    real_server 10.97.0.2 8081 {{
        MISC_CHECK {{
            misc_path \"{root}/misc.sh\"
        }}
    }}
}}
",
            user = user.0,
            root = root.display()
        ),
    )
    .expect("config");

    // keepalived -t and keepmon check-config both disable chk_open.
    // (keepalived 2.2.7's -t kills itself with SIGTERM when it checks a
    // script of another user, `main_pid != getppid()` in
    // check_script_secure, so it judges a copy without script_user and
    // without the MISC_CHECK, which it would remove for want of one.)
    let ns = Netns::new();
    let root_only = root.join("root-only.conf");
    std::fs::write(
        &root_only,
        std::fs::read_to_string(&config)
            .expect("config")
            .replace(&format!("    script_user {}\n", user.0), "")
            .replace("        chk_user\n", "")
            .split("virtual_server")
            .next()
            .unwrap_or_default()
            .to_string()
            .replace(
                &format!("    notify \"{}/notify.sh\"\n", root.display()),
                "",
            ),
    )
    .expect("root-only config");
    let (_, _, keepalived_says) = keepalived_check(&ns, &root_only);
    assert!(
        keepalived_says.contains("Disabling track script chk_open due to insecure"),
        "keepalived -t:\n{keepalived_says}"
    );
    assert!(
        !keepalived_says.contains("chk_user due to insecure"),
        "keepalived -t:\n{keepalived_says}"
    );
    for file in [&root_only, &config] {
        let verdict = keepmon_check(file);
        let all: Vec<&str> = verdict
            .diagnostics
            .iter()
            .map(|(_, _, m)| m.as_str())
            .collect();
        assert!(verdict.ok, "{all:#?}");
        for needle in [
            "Disabling track script chk_open due to insecure",
            "Unsafe permissions found for script",
        ] {
            assert!(all.iter().any(|m| m.contains(needle)), "{needle}: {all:#?}");
        }
        assert!(
            !all.iter().any(|m| m.contains("chk_user due to insecure")),
            "{all:#?}"
        );
    }

    // The daemon runs the check and the notify script as the script user
    // (the instance needs a running eth0 with an address to become master).
    run("ip", &["-n", &ns.0, "link", "set", "eth1", "up"]);
    run(
        "ip",
        &["-n", &ns.0, "addr", "add", "10.97.0.2/24", "dev", "eth0"],
    );
    let daemon = Peer::start(
        &ns.0,
        &root.join("km"),
        false,
        &std::fs::read_to_string(&config).expect("config"),
    );
    let uid = user.uid();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    wait_for("the scripts ran as the script user", &[&daemon], || {
        read("check.uid").trim() == uid
            && read("notify.uid").trim() == uid
            && read("misc.uid").trim() == uid
    });
    drop(daemon);
    drop(ns);
    std::fs::remove_dir_all(&root).ok();
}

/// `smtp_alert` mails the `notification_email` list from
/// `notification_email_from` through `smtp_server` when the instance
/// changes state (a real SMTP server, Debian's python3-aiosmtpd, inside the
/// director's namespace).
#[test]
fn smtp_alert_mail_reaches_the_smtp_server() {
    let what = "keepalived.conf smtp_alert mail";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for a network namespace"));
        return;
    }
    let python_ok = Command::new("/usr/bin/python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        common::not_run(&format!("{what}: needs python3-aiosmtpd (Debian package)"));
        return;
    }
    let ns = Netns::new();
    run("ip", &["-n", &ns.0, "link", "set", "eth1", "up"]);
    run(
        "ip",
        &["-n", &ns.0, "addr", "add", "10.97.0.1/24", "dev", "eth0"],
    );
    let root = std::env::temp_dir().join(format!("keepmon-ka-smtp-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    std::fs::create_dir_all(&root).expect("temp dir");
    let received = root.join("received");

    // The SMTP server, inside the namespace, on its loopback.
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.0, "/usr/bin/python3"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/common/smtp_server.py"
        ))
        .args(["--port", "0", "--out"])
        .arg(&received)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the SMTP server");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
    let stdout = server.stdout.take().expect("stdout");
    let server = Kill(server);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("READY");
    let port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("SMTP server did not start: {line:?}"));

    let config = format!(
        "global_defs {{
    router_id LB_NORTH
    notification_email {{
        ops@example.com
        noc@example.com
    }}
    notification_email_from director@example.com
    smtp_server 127.0.0.1 {port}
    smtp_connect_timeout 5
}}
vrrp_instance VI_MAIL {{
    state BACKUP
    interface eth0
    virtual_router_id 77
    priority 100
    advert_int 1
    virtual_ipaddress {{
        10.97.0.50/24
    }}
    smtp_alert
}}
"
    );
    let director = Peer::start(&ns.0, &root.join("km"), false, &config);
    let message = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let found = std::fs::read_dir(&received).ok().and_then(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| p.extension().is_some_and(|e| e == "json"))
            });
            if let Some(path) = found {
                let text = std::fs::read_to_string(path).expect("read message");
                break serde_json::from_str::<serde_json::Value>(&text).expect("json");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail arrived\n--- keepmon ---\n{}",
                director.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    assert_eq!(message["mail_from"], "director@example.com");
    let mut to: Vec<String> = message["rcpt_tos"]
        .as_array()
        .expect("rcpt_tos")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    to.sort();
    assert_eq!(to, ["noc@example.com", "ops@example.com"]);
    let data = message["data"].as_str().expect("data");
    assert!(data.contains("VI_MAIL"), "{data}");
    assert!(
        data.contains("LB_NORTH"),
        "router_id names the director in the letter: {data}"
    );
    drop(director);
    drop(server);
    std::fs::remove_dir_all(&root).ok();
}

// ---------------------------------------------------------------------------
// Differential: generated configs judged by keepalived -t and keepmon.

/// Lines of each block, right and wrong, in the shapes people write.
const GENERATED_BLOCKS: &[(&str, &[&str])] = &[
    (
        "global_defs",
        &[
            "router_id X",
            "notification_email { a@b }",
            "smtp_server 127.0.0.1",
            "smtp_server 127.0.0.1 99999",
            "smtp_connect_timeout 0",
            "smtp_connect_timeout x",
            "vrrp_version 4",
            "vrrp_version 3",
            "vrrp_garp_master_delay 10",
            "vrrp_garp_master_repeat 0",
            "enable_script_security",
            "script_user root",
            "lvs_flush",
            "bogus 1",
            "notification_email_from",
            "smtp_alert maybe",
        ],
    ),
    (
        "vrrp_script S",
        &[
            "script \"/bin/true\"",
            "script /bin/true x",
            "interval 0",
            "interval 2",
            "timeout x",
            "weight 300",
            "weight -20 reverse",
            "weight 10 foo",
            "rise 0",
            "fall 2",
            "user root",
            "init_fail",
            "bogus",
        ],
    ),
    (
        "bfd_instance B",
        &[
            "neighbor_ip 10.1.0.9",
            "neighbor_ip 10.1.0.9/24",
            "neighbour_ip fe80::9",
            "neighbor_ip nope",
            "source_ip 10.1.0.1",
            "source_ip x",
            "min_rx 0",
            "min_rx 20.5",
            "min_tx 99999999",
            "idle_tx 999",
            "multiplier 0",
            "multiplier 3",
            "passive",
            "ttl 0",
            "hoplimit 10",
            "max_hops 300",
            "max_hops 20",
            "max_hops -1",
            "weight -300",
            "weight 10 reverse",
            "weight 10 sideways",
            "vrrp",
            "checker",
        ],
    ),
    (
        "vrrp_instance VI_1",
        &[
            "state MASTER",
            "state BACKUP",
            "state foo",
            "interface eth0",
            "virtual_router_id 0",
            "virtual_router_id 300",
            "virtual_router_id 5",
            "priority 0",
            "priority 255",
            "priority abc",
            "advert_int 0.5",
            "advert_int 300",
            "advert_int x",
            "nopreempt",
            "preempt_delay 10",
            "preempt_delay x",
            "version 3",
            "version 5",
            "authentication { auth_type PASS auth_pass 12345678901 }",
            "authentication { auth_type XX }",
            "virtual_ipaddress { 10.0.0.1/24 }",
            "virtual_ipaddress { 10.0.0.300 }",
            "virtual_ipaddress { 10.0.0.1 dev eth0 label eth0:1 }",
            "virtual_ipaddress { fe80::1 }",
            "virtual_ipaddress { 10.0.0.4 dev }",
            "unicast_src_ip 10.0.0.9",
            "unicast_peer { 10.0.0.7 }",
            "unicast_peer { x }",
            "track_script { S }",
            "track_script { S weight 5 }",
            "track_script { nosuch }",
            "track_script { S foo }",
            "track_interface { eth0 }",
            "track_interface { eth0 foo }",
            "track_bfd { B }",
            "track_bfd { B weight 300 }",
            "track_bfd { B weight -10 reverse }",
            "track_bfd { nosuch }",
            "track_bfd { B foo }",
            "notify \"/bin/true\"",
            "notify_master /bin/true",
            "notify_backup \"/bin/true a b\"",
            "smtp_alert",
            "smtp_alert no",
            "garp_master_repeat 0",
            "garp_master_delay x",
            "dont_track_primary",
            "bogus_kw",
            "virtual_ipaddress 10.2.0.2",
        ],
    ),
    (
        "vrrp_sync_group G",
        &[
            "group { VI_1 }",
            "group { VI_9 }",
            "group { }",
            "group { VI_1 VI_9 }",
            "smtp_alert",
            "track_script { S }",
            "track_script { nosuch }",
            "track_interface { eth0 }",
            "notify_master /bin/true",
            "notify \"/bin/true x\"",
            "sync_group_tracking_weight",
            "global_tracking",
        ],
    ),
    (
        "virtual_server 10.1.0.1 80",
        &[
            "delay_loop 5",
            "delay_loop x",
            "lb_algo rr",
            "lb_algo xx",
            "lb_kind DR",
            "lb_kind XX",
            "protocol TCP",
            "protocol XX",
            "persistence_timeout",
            "persistence_timeout 0",
            "persistence_granularity 255.255.0.0",
            "persistence_granularity x",
            "quorum 0",
            "hysteresis x",
            "sorry_server 10.1.0.9 80",
            "inhibit_on_failure",
            "real_server 10.1.0.2 80 { weight 2 TCP_CHECK { connect_timeout 2 } }",
            "real_server 10.1.0.3 80 { weight x TCP_CHECK { connect_timeout 2 } }",
            "real_server 10.1.0.4 { TCP_CHECK { connect_port 0 } }",
            "real_server 10.1.0.5 80 { BFD_CHECK { name B } }",
            "real_server 10.1.0.6 80 { BFD_CHECK { name B alpha } TCP_CHECK { } }",
            "real_server 10.1.0.7 80 { BFD_CHECK { name nosuch } }",
            "real_server 10.1.0.8 80 { BFD_CHECK { } }",
            "real_server 10.1.0.5 80 { HTTP_GET { url { path / status_code 200 } } }",
            "real_server 10.1.0.6 80 { HTTP_GET { url { status_code 200 } } }",
            "real_server 10.1.0.7 80 { weight 70000 }",
            "real_server 10.1.0.8 80 { HTTP_GET { url { path / digest 0123 } url { path /x digest 640205b7b0fc66c1ea91c463fac6334d } } }",
            "bogus",
        ],
    ),
];

/// One generated config: some blocks, some of their lines, and sometimes
/// a stray brace or an unknown block.
fn generated_config(rng: &mut fastrand::Rng) -> String {
    let mut lines = Vec::new();
    for (head, keywords) in GENERATED_BLOCKS {
        if rng.u8(0..4) == 0 {
            continue;
        }
        lines.push(if rng.bool() {
            format!("{head} {{")
        } else {
            format!("{head}{{")
        });
        let count = rng.usize(1..=keywords.len().min(8));
        let mut chosen: Vec<&str> = keywords.to_vec();
        rng.shuffle(&mut chosen);
        for keyword in &chosen[..count] {
            lines.push(format!("    {keyword}"));
        }
        lines.push("}".to_string());
    }
    if rng.u8(0..5) == 0 {
        let stray = ["}", "{", "foo { bar }"][rng.usize(0..3)];
        lines.insert(rng.usize(0..=lines.len()), stray.to_string());
    }
    lines.join("\n") + "\n"
}

/// Generated configs (a fixed seed): every line keepalived -t reports has a
/// keepmon diagnostic, and what keepalived cannot run keepmon refuses.
#[test]
fn generated_configs_keepmon_warns_wherever_keepalived_reports() {
    let what = "generated keepalived.conf against keepalived -t";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for a network namespace"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let ns = Netns::new();
    let dir = std::env::temp_dir().join(format!("keepmon-ka-gen-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("temp dir");
    // KEEPMON_DIFF_CASES and KEEPMON_DIFF_SEED widen a local run.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = fastrand::Rng::with_seed(env("KEEPMON_DIFF_SEED", 14));
    let mut compared_lines = 0;
    for case in 0..env("KEEPMON_DIFF_CASES", 150) {
        let text = generated_config(&mut rng);
        let path = dir.join(format!("case{case}.conf"));
        std::fs::write(&path, &text).expect("write case");
        let (status, reported, stderr) = keepalived_check(&ns, &path);
        let verdict = keepmon_check(&path);
        // keepalived exits (2, 4) or crashes (a signal) on some of them.
        let cannot_run = [2, 4, -1].contains(&status);
        if cannot_run {
            assert!(
                !verdict.ok,
                "keepalived cannot run case {case} (status {status}) but keepmon accepts it\n{text}\n{stderr}"
            );
            continue;
        }
        for (file, line) in &reported {
            compared_lines += 1;
            assert!(
                verdict
                    .diagnostics
                    .iter()
                    .any(|(f, l, _)| f == file && l == line),
                "case {case}: keepalived reports line {line} but keepmon says nothing there\n{text}\nkeepalived:\n{stderr}\nkeepmon:\n{:#?}",
                verdict.diagnostics
            );
        }
    }
    assert!(
        compared_lines > 100,
        "only {compared_lines} reported lines compared"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// What keepalived's own dump (`keepalived -d`) says one VRRP instance is.
#[derive(Debug, Default, PartialEq, Eq)]
struct DumpedInstance {
    wantstate: String,
    vrid: u8,
    priority: u8,
    /// v2 in seconds, v3 in milliseconds, as the dump prints them.
    advert: String,
    version: u8,
    preempt: bool,
    password: Option<String>,
    vips: Vec<(std::net::IpAddr, u8)>,
    /// Gratuitous ARP delay, repeat and refresh (whole seconds).
    garp: (u64, u32, u64),
    unicast_peers: Vec<std::net::IpAddr>,
}

/// Start keepalived with `-d` in `ns` long enough to read its dump of the
/// VRRP instances, then stop it.
fn keepalived_dump(ns: &Netns, path: &Path) -> Vec<(String, DumpedInstance)> {
    let dir = path.with_extension("run");
    std::fs::create_dir_all(&dir).expect("run dir");
    let log_path = dir.join("log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-d",
            "-P",
            "-f",
        ])
        .arg(path)
        .arg("-p")
        .arg(dir.join("pid"))
        .arg("-r")
        .arg(dir.join("vrrp.pid"))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start keepalived");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log_path).unwrap_or_default();
        // The VRRP child prints its topology after its sockets line.
        if text.contains("VRRP Topology")
            && (text.contains("sockets allocated") || text.contains("Sockets:"))
        {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-15", &child.id().to_string()])
        .status();
    let _ = child.wait();
    parse_dump(&text)
}

fn parse_dump(text: &str) -> Vec<(String, DumpedInstance)> {
    let mut out: Vec<(String, DumpedInstance)> = Vec::new();
    let mut in_vips = false;
    let mut in_peers = false;
    for raw in text.lines() {
        let line = match raw.find(": ") {
            Some(i) if raw[..i].contains(" 20") => &raw[i + 2..],
            _ => raw,
        };
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("VRRP Instance = ") {
            out.push((name.to_string(), DumpedInstance::default()));
            in_vips = false;
            in_peers = false;
            continue;
        }
        let Some((_, current)) = out.last_mut() else {
            continue;
        };
        if in_vips {
            let first = trimmed.split_whitespace().next().unwrap_or_default();
            let (addr, prefix) = match first.split_once('/') {
                Some((a, p)) => (a, p.parse().ok()),
                None => (first, None),
            };
            if let Ok(addr) = addr.parse::<std::net::IpAddr>() {
                let host = if addr.is_ipv4() { 32 } else { 128 };
                current.vips.push((addr, prefix.unwrap_or(host)));
                continue;
            }
            in_vips = false;
        }
        if in_peers {
            let first = trimmed.split_whitespace().next().unwrap_or_default();
            if let Ok(addr) = first.parse::<std::net::IpAddr>() {
                current.unicast_peers.push(addr);
                continue;
            }
            in_peers = false;
        }
        if trimmed == "Unicast Peer :" {
            in_peers = true;
            continue;
        }
        if let Some((key, value)) = trimmed.split_once(" = ") {
            match key {
                "Gratuitous ARP delay" => current.garp.0 = value.parse().unwrap_or(99),
                "Gratuitous ARP repeat" => current.garp.1 = value.parse().unwrap_or(99),
                "Gratuitous ARP refresh" => current.garp.2 = value.parse().unwrap_or(99),
                "Wantstate" => current.wantstate = value.to_string(),
                "Virtual Router ID" => current.vrid = value.parse().unwrap_or(0),
                "Priority" => current.priority = value.parse().unwrap_or(0),
                "Advert interval" => current.advert = value.to_string(),
                "VRRP Version" => current.version = value.parse().unwrap_or(0),
                "Preempt" => current.preempt = value == "enabled",
                "Password" => current.password = Some(value.to_string()),
                _ => {}
            }
        } else if trimmed.starts_with("Virtual IP (") {
            in_vips = true;
        }
    }
    out
}

/// The same instance as keepmon's model says it is, in the dump's terms.
fn model_instance(vi: &keepmon::config::model::VrrpInstance) -> DumpedInstance {
    use keepmon::config::model::{VrrpInitialState, VrrpVersion};
    let (version, advert) = match vi.version {
        VrrpVersion::V2 => (2, format!("{} sec", vi.advert_int.as_secs())),
        VrrpVersion::V3 => (3, format!("{} milli-sec", vi.advert_int.as_millis())),
    };
    DumpedInstance {
        wantstate: match vi.initial_state {
            VrrpInitialState::Master => "MASTER".to_string(),
            VrrpInitialState::Backup => "BACKUP".to_string(),
        },
        vrid: vi.vrid.get(),
        priority: vi.priority,
        advert,
        version,
        preempt: !vi.nopreempt,
        password: vi.auth_pass.clone(),
        vips: vi
            .virtual_addresses
            .iter()
            .map(|a| (a.addr, a.prefix))
            .collect(),
        garp: (
            vi.garp.master_delay.as_secs(),
            vi.garp.master_repeat,
            vi.garp.master_refresh.map_or(0, |r| r.as_secs()),
        ),
        unicast_peers: vi.unicast_peers.clone(),
    }
}

/// One generated VRRP instance in many spellings: values keepalived takes,
/// corrects or ignores, written with the lexer's features.
fn generated_instance(rng: &mut fastrand::Rng, host: &str) -> String {
    let pick =
        |rng: &mut fastrand::Rng, items: &[&str]| items[rng.usize(0..items.len())].to_string();
    let mut lines = vec!["$VRID=44".to_string()];
    let globals = pick(
        rng,
        &[
            "",
            "global_defs {\n    vrrp_version 3\n}",
            "global_defs {\n    vrrp_garp_master_delay 2\n    vrrp_garp_master_repeat 0\n    vrrp_garp_master_refresh 60\n}",
            "global_defs {\n    vrrp_garp_master_repeat 3\n    vrrp_version 2\n}",
        ],
    );
    if !globals.is_empty() {
        lines.push(globals);
    }
    if rng.bool() {
        lines.push("$PRIO=".to_string() + &pick(rng, &["90", "150", "255", "0", "x"]));
    }
    let open = pick(
        rng,
        &[
            "vrrp_instance VI_1 {",
            "vrrp_instance VI_1{",
            "vrrp_instance VI_1\n{",
        ],
    );
    lines.push(open);
    lines.push("    interface eth0 # the director's LAN".to_string());
    lines.push(format!(
        "    virtual_router_id {}",
        pick(rng, &["51", "\"52\"", "7", "$VRID", "${VRID}"])
    ));
    let mut body = vec![
        pick(
            rng,
            &[
                "state MASTER",
                "state BACKUP",
                "state MASTRE",
                "! state MASTER",
                "",
            ],
        ),
        pick(
            rng,
            &[
                "priority 100",
                "priority $PRIO",
                "priority 300",
                "priority 255",
                "priority ${PRIO}",
                "priority 100 \\#not-a-comment",
                "@HOST priority 200",
                "@^HOST priority 60",
                "@nosuchhost priority 10",
                "",
            ],
        )
        .replace("HOST", host),
        pick(
            rng,
            &[
                "advert_int 1",
                "advert_int 2",
                "advert_int 1.5",
                "advert_int 0.3",
                "advert_int 0",
                "",
            ],
        ),
        pick(rng, &["version 3", "version 2", ""]),
        pick(
            rng,
            &[
                "garp_master_delay 1",
                "garp_master_repeat 2",
                "garp_master_refresh 0",
                "garp_master_refresh 30",
                "",
                "",
            ],
        ),
        pick(
            rng,
            &[
                "unicast_peer {\n        10.0.0.8\n        10.0.0.7\n    }",
                "unicast_src_ip 10.0.0.9",
                "",
                "",
                "",
            ],
        ),
        pick(rng, &["nopreempt", "preempt", "", ""]),
        pick(
            rng,
            &[
                "authentication { auth_type PASS auth_pass secret }",
                "authentication {\n        auth_type PASS\n        auth_pass 123456789\n    }",
                "authentication { auth_pass nopass }",
                "authentication { auth_type PASS auth_pass \"pa ss\" }",
                "",
            ],
        ),
        pick(
            rng,
            &[
                "virtual_ipaddress { 10.0.0.100/24 }",
                "virtual_ipaddress {\n        10.0.0.100/24 dev eth0\n        10.0.0.101\n    }",
                "virtual_ipaddress { 10.0.0.100/33 10.0.0.102 }",
                "virtual_ipaddress {\n        10.0.0.100 # main\n        fe80::1\n    }",
                "virtual_ipaddress { \"10.0.0.103/16\" }",
                "include vips.inc",
                "virtual_ipaddress {\n        include vip-lines.inc\n    }",
            ],
        ),
    ];
    rng.shuffle(&mut body);
    for line in body {
        if !line.is_empty() {
            lines.push(format!("    {line}"));
        }
    }
    lines.push("}".to_string());
    lines.join("\n") + "\n"
}

/// Generated instances: keepmon's model holds the values keepalived's own
/// dump (`keepalived -d`) shows after its defaults, corrections and
/// rounding.
#[test]
fn generated_instances_read_to_the_values_keepalived_dumps() {
    let what = "keepalived.conf values against keepalived -d";
    if !is_root() {
        common::not_run(&format!("{what}: needs root for a network namespace"));
        return;
    }
    if !keepalived_installed(what) {
        return;
    }
    let ns = Netns::new();
    run("ip", &["-n", &ns.0, "link", "set", "eth1", "up"]);
    run(
        "ip",
        &["-n", &ns.0, "addr", "add", "10.0.0.9/24", "dev", "eth0"],
    );
    let dir = std::env::temp_dir().join(format!("keepmon-ka-dump-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases = std::env::var("KEEPMON_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12u64);
    // Included by some cases, relative to the including file.
    std::fs::write(
        dir.join("vips.inc"),
        "virtual_ipaddress {\n  10.0.0.120/24\n}\n",
    )
    .expect("vips.inc");
    std::fs::write(dir.join("vip-lines.inc"), "10.0.0.121/25\n10.0.0.122\n")
        .expect("vip-lines.inc");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let seed = std::env::var("KEEPMON_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1414u64);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut compared = 0;
    for case in 0..cases {
        let text = generated_instance(&mut rng, &host);
        let path = dir.join(format!("case{case}.conf"));
        std::fs::write(&path, &text).expect("write case");
        let dumped = keepalived_dump(&ns, &path);
        let compiled = keepmon::config::load(&path, Some(keepmon::config::Format::Keepalived));
        match (dumped.first(), &compiled) {
            (Some((name, dump)), Ok(compiled)) => {
                let vi = compiled.config.vrrp.get(name).unwrap_or_else(|| {
                    panic!("case {case}: keepmon has no instance {name}\n{text}")
                });
                assert_eq!(
                    &model_instance(vi),
                    dump,
                    "case {case}: keepmon's model (left) differs from keepalived's dump (right)\n{text}\nwarnings:\n{}",
                    compiled.warnings
                );
                compared += 1;
            }
            (None, Err(_)) => {}
            (Some(_), Err(e)) => panic!(
                "case {case}: keepalived runs it, keepmon refuses:\n{text}\n{}",
                e.diagnostics
            ),
            (None, Ok(_)) => panic!(
                "case {case}: keepalived runs no instance, keepmon does\n{text}\n{}",
                std::fs::read_to_string(path.with_extension("run").join("log")).unwrap_or_default()
            ),
        }
    }
    assert!(
        compared * 2 >= cases,
        "only {compared} of {cases} cases compared"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A keepalived.conf whose real server has two checkers (its own port and
/// a `connect_port` beside it): keepmon keeps it in the table only while
/// both pass, as keepalived does; a real server without a checker stays.
/// Runs the daemon from the file unchanged on loopback (the proxy data
/// plane), so it needs neither root nor keepalived.
#[test]
fn a_real_server_leaves_while_any_of_its_checkers_fails() {
    use std::net::TcpListener;
    let mut f = common::daemon::Fixture::new("ka-several-checkers");
    let listen = |port: u16| TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let first = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = |l: &TcpListener| l.local_addr().expect("addr").port();
    let (rs_port, vs_port) = (port(&first), common::daemon::closed_port());
    let side = TcpListener::bind("127.0.0.1:0").expect("bind");
    let side_port = port(&side);
    let unchecked = common::daemon::closed_port();
    f.config_name = "keepalived.conf";
    std::fs::write(
        f.config(),
        format!(
            "global_defs {{\n    keepmon_dataplane proxy\n}}\n\n\
             virtual_server 127.0.0.1 {vs_port} {{\n    delay_loop 1\n    lb_algo rr\n    protocol TCP\n\
             \x20   real_server 127.0.0.1 {rs_port} {{\n        TCP_CHECK {{\n            connect_timeout 1\n            delay_before_retry 1\n        }}\n\
             \x20       TCP_CHECK {{\n            connect_port {side_port}\n            connect_timeout 1\n            retry 0\n        }}\n    }}\n\
             \x20   real_server 127.0.0.3 {unchecked} {{\n    }}\n}}\n"
        ),
    )
    .expect("keepalived.conf");
    f.start();
    let checked = format!("127.0.0.1:{rs_port}");
    let always = format!("127.0.0.3:{unchecked}");
    let health = |f: &common::daemon::Fixture| {
        let out = f.cli(&["lb", "show"]);
        String::from_utf8_lossy(&out.stdout).contains(" up ")
    };
    f.wait_for(health, "both checks report the real server up");
    assert_eq!(f.in_force(&checked), "1");
    drop(side);
    f.wait_for(
        |f| f.in_force(&checked) == "absent",
        "the real server leaves when its second checker fails",
    );
    assert_eq!(f.in_force(&always), "1", "no checker: always in");
    let side = listen(side_port);
    f.wait_for(
        |f| f.in_force(&checked) == "1",
        "the real server returns when both pass again",
    );
    drop(first);
    f.wait_for(
        |f| f.in_force(&checked) == "absent",
        "the real server leaves when its first checker fails",
    );
    assert_eq!(f.in_force(&always), "1", "no checker: always in");
    drop(side);
}

/// `init_file`: `check-config` writes nothing (as `keepalived -t`); the
/// daemon creates a missing file with the value and writes over an
/// existing one only with `overwrite`.
#[test]
fn init_file_is_written_by_the_daemon_at_start() {
    let mut f = common::daemon::Fixture::new("ka-init-file");
    let (fresh, kept, over) = (f.dir.join("fresh"), f.dir.join("kept"), f.dir.join("over"));
    std::fs::write(&kept, "7\n").expect("kept");
    std::fs::write(&over, "7\n").expect("over");
    let vs_port = common::daemon::closed_port();
    f.config_name = "keepalived.conf";
    std::fs::write(
        f.config(),
        format!(
            "global_defs {{\n    keepmon_dataplane proxy\n}}\n\
             track_file fresh {{\n    file {}\n    init_file -3\n}}\n\
             track_file kept {{\n    file {}\n    init_file 5\n}}\n\
             track_file over {{\n    file {}\n    init_file 9 overwrite\n}}\n\
             virtual_server 127.0.0.1 {vs_port} {{\n    protocol TCP\n    real_server 127.0.0.1 1 {{\n    }}\n}}\n",
            fresh.display(),
            kept.display(),
            over.display()
        ),
    )
    .expect("keepalived.conf");
    let check = f.cli(&["check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!fresh.exists(), "check-config wrote a track file");
    assert_eq!(std::fs::read_to_string(&over).expect("over"), "7\n");
    f.start();
    f.wait_for(
        |_| std::fs::read_to_string(&over).is_ok_and(|t| t == "9\n"),
        "the daemon writes the init values",
    );
    assert_eq!(std::fs::read_to_string(&fresh).expect("fresh"), "-3\n");
    assert_eq!(std::fs::read_to_string(&kept).expect("kept"), "7\n");
    assert_eq!(std::fs::read_to_string(&over).expect("over"), "9\n");
}

/// `misc_dynamic`: a MISC_CHECK's exit status 2–255 passes and sets the
/// real server's weight to the status − 2; 0 passes and gives it back its
/// own weight; 1 fails (keepalived's check_misc.c). The daemon runs the
/// file unchanged on loopback (proxy data plane).
#[test]
fn misc_dynamic_sets_the_weight_from_the_exit_status() {
    if !is_root() {
        common::not_run(
            "misc_dynamic: needs root (keepalived runs MISC_CHECK scripts as root or its script user)",
        );
        return;
    }
    let mut f = common::daemon::Fixture::new("ka-misc-dynamic");
    let code = f.dir.join("code");
    std::fs::write(&code, "7\n").expect("code");
    let script = f.write_script(
        "weight.sh",
        &format!("#!/bin/sh\nexit $(cat {})\n", code.display()),
    );
    let (vs_port, rs_port) = (common::daemon::closed_port(), common::daemon::closed_port());
    f.config_name = "keepalived.conf";
    std::fs::write(
        f.config(),
        format!(
            "global_defs {{\n    keepmon_dataplane proxy\n}}\n\
             virtual_server 127.0.0.1 {vs_port} {{\n    delay_loop 1\n    lb_algo wrr\n    protocol TCP\n\
             \x20   real_server 127.0.0.1 {rs_port} {{\n        weight 3\n        MISC_CHECK {{\n            misc_path \"{}\"\n            misc_dynamic\n        }}\n    }}\n}}\n",
            script.display()
        ),
    )
    .expect("keepalived.conf");
    f.start();
    let server = format!("127.0.0.1:{rs_port}");
    let in_force = |f: &common::daemon::Fixture| f.in_force(&server);
    f.wait_for(|f| in_force(f) == "5", "exit 7 sets weight 5");
    std::fs::write(&code, "0\n").expect("code");
    f.wait_for(|f| in_force(f) == "3", "exit 0 gives back weight 3");
    std::fs::write(&code, "2\n").expect("code");
    f.wait_for(|f| in_force(f) == "0", "exit 2 sets weight 0");
    std::fs::write(&code, "1\n").expect("code");
    f.wait_for(|f| in_force(f) == "absent", "exit 1 fails");
    std::fs::write(&code, "10\n").expect("code");
    f.wait_for(|f| in_force(f) == "8", "back up with weight 8");
}

/// FILE_CHECK: the number in a tracked file moves the real server (weight
/// 0: out while it is not 0; another weight: number × weight added to its
/// weight), read as the daemon runs the file unchanged on loopback.
#[test]
fn a_file_check_moves_the_real_server_by_the_files_number() {
    let mut f = common::daemon::Fixture::new("ka-file-check");
    let (load, maint) = (f.dir.join("load"), f.dir.join("maint"));
    std::fs::write(&load, "0\n").expect("load");
    let (vs_port, rs_port) = (common::daemon::closed_port(), common::daemon::closed_port());
    f.config_name = "keepalived.conf";
    std::fs::write(
        f.config(),
        format!(
            "global_defs {{\n    keepmon_dataplane proxy\n}}\n\
             track_file load {{\n    file {}\n}}\n\
             track_file maint {{\n    file {}\n    weight 0\n}}\n\
             virtual_server 127.0.0.1 {vs_port} {{\n    lb_algo wrr\n    protocol TCP\n\
             \x20   real_server 127.0.0.1 {rs_port} {{\n        weight 10\n\
             \x20       FILE_CHECK {{\n            track_file load\n            weight -2\n        }}\n\
             \x20       FILE_CHECK {{\n            track_file maint\n        }}\n    }}\n}}\n",
            load.display(),
            maint.display()
        ),
    )
    .expect("keepalived.conf");
    f.start();
    let server = format!("127.0.0.1:{rs_port}");
    let in_force = |f: &common::daemon::Fixture| f.in_force(&server);
    f.wait_for(|f| in_force(f) == "10", "weight 10 while the file reads 0");
    std::fs::write(&load, "3\n").expect("load");
    f.wait_for(|f| in_force(f) == "4", "3 × −2 moves it to 4");
    std::fs::write(&maint, "1\n").expect("maint");
    f.wait_for(
        |f| in_force(f) == "absent",
        "a number in the weight-0 file takes it out",
    );
    std::fs::remove_file(&maint).expect("maint");
    f.wait_for(|f| in_force(f) == "4", "a missing file reads 0: back");
    std::fs::write(&load, "0x10\n").expect("load");
    f.wait_for(|f| in_force(f) == "0", "16 × −2 stops at weight 0");
}
