//! keepmon programs a real Linux IPVS table: Debian's 6.1 kernel boots under QEMU (TCG) with keepmon, busybox and ipvsadm; the scenario flips health and the CLI, and the kernel's own view (ipvsadm -Ln, /proc/net/ip_vs) is asserted after each step.
//!
//! The host kernel has no IPVS, hence the VM (recipe: reference/lb.md §12).
//! The same boot also runs Debian's keepalived on `tests/vm/ipvs/keepalived.conf`
//! and then keepmon on that file, compares the two kernel tables (address,
//! fwmark and group services), and sends traffic through a fwmark service
//! (nft marks it).
//! `tests/vm/build-initramfs.sh` downloads the kernel package once into
//! `target/tmp/vm-cache` and builds the initramfs; `tests/vm/ipvs/` holds
//! the scenario and configs. One boot covers every step.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills QEMU if the test ends early.
struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn missing_tools() -> Option<String> {
    for tool in [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "ipvsadm",
        "keepalived",
        "apt-get",
        "dpkg",
    ] {
        if !have(tool) && !Path::new(&format!("/usr/sbin/{tool}")).exists() {
            return Some(format!(
                "{tool} is missing (scripts/test.sh installs qemu-system-x86, busybox-static, cpio, ipvsadm, keepalived as root)"
            ));
        }
    }
    None
}

/// The text between "=== STEP name" and "=== ENDSTEP name".
fn section<'a>(console: &'a str, start: &str, end: &str) -> &'a str {
    let from = console
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in the console:\n{console}"));
    let rest = &console[from + start.len()..];
    let to = rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}:\n{console}"));
    &rest[..to]
}

fn step<'a>(console: &'a str, name: &str) -> &'a str {
    section(
        console,
        &format!("=== STEP {name}\n"),
        &format!("=== ENDSTEP {name}"),
    )
}

/// The `ipvsadm -Ln` part of a step, whitespace-normalised lines.
fn ipvsadm(step: &str) -> Vec<String> {
    step.split("--- /proc/net/ip_vs")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| {
            l.starts_with("TCP")
                || l.starts_with("FWM")
                || l.starts_with("-> 10.")
                || l.starts_with("-> 0A")
        })
        .collect()
}

/// ipvsadm lines as services, each with its sorted real server lines (the
/// kernel lists services in hash order).
fn services(lines: &[String]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut current = String::new();
    for line in lines {
        if line.starts_with("->") {
            out.entry(current.clone()).or_default().push(line.clone());
        } else {
            current = line.clone();
            out.entry(current.clone()).or_default();
        }
    }
    for dests in out.values_mut() {
        dests.sort();
    }
    out
}

/// The /proc/net/ip_vs part of a step, whitespace-normalised lines.
fn proc_ip_vs(step: &str) -> Vec<String> {
    step.split("--- /proc/net/ip_vs")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| l.starts_with("TCP") || l.starts_with("-> 10.") || l.starts_with("-> 0A"))
        .collect()
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

fn boot(dir: &Path) -> String {
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "512", "-kernel"])
        .arg(dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(dir.join("initrd.gz"))
        .args([
            "-append",
            "console=ttyS0 quiet panic=-1",
            "-nographic",
            "-no-reboot",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qemu-system-x86_64");
    let mut stdout = child.stdout.take().expect("qemu stdout");
    let vm = Vm(child);
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut vm = vm;
    loop {
        if vm.0.try_wait().expect("qemu status").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the VM did not power off within 300 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(vm);
    strip_ansi(&String::from_utf8_lossy(
        &reader.join().expect("console reader"),
    ))
}

#[test]
fn keepmon_programs_the_kernel_ipvs_table_in_a_vm() {
    if let Some(why) = missing_tools() {
        common::not_run(&why);
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join("ipvs-vm");
    let build = Command::new("bash")
        .arg(root.join("tests/vm/build-initramfs.sh"))
        .arg(tmp.join("vm-cache"))
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_keepmon"))
        .arg(root.join("tests/vm/ipvs"))
        .status()
        .expect("run tests/vm/build-initramfs.sh");
    if !build.success() {
        common::not_run("tests/vm/build-initramfs.sh failed (no kernel package reachable?)");
        return;
    }

    let console = boot(&out);
    assert!(
        console.contains("=== END"),
        "the scenario did not finish:\n{console}"
    );
    assert!(!console.contains("TIMEOUT"), "a wait timed out:\n{console}");

    let foreign = lines(&["TCP 10.0.0.50:443 rr", "-> 10.0.0.60:443 Masq 1 0 0"]);
    // Before keepmon: the boot script's table, with our VIP on the wrong
    // scheduler and weight.
    let before = ipvsadm(step(&console, "before"));
    assert!(
        before.contains(&"TCP 10.0.0.1:80 rr".to_string()),
        "{before:?}"
    );

    // Started: adopted in place (wrr, weights 3/1), the foreign service untouched.
    let started = step(&console, "started");
    let mut want = lines(&[
        "TCP 10.0.0.1:80 wrr",
        "-> 10.0.0.2:80 Masq 3 0 0",
        "-> 10.0.0.3:80 Masq 1 0 0",
    ]);
    want.extend(foreign.clone());
    assert_eq!(ipvsadm(started), want);
    let proc_started = proc_ip_vs(started);
    assert!(
        proc_started.contains(&"TCP 0A000001:0050 wrr".to_string()),
        "{proc_started:?}"
    );
    assert!(
        proc_started.contains(&"-> 0A000002:0050 Masq 3 0 0".to_string()),
        "{proc_started:?}"
    );
    assert!(
        proc_started.contains(&"-> 0A000003:0050 Masq 1 0 0".to_string()),
        "{proc_started:?}"
    );
    // The kernel has no "twos" scheduler: a clear error naming the service,
    // nothing created for it, and the daemon carried on.
    assert!(!ipvsadm(started).iter().any(|l| l.contains("10.0.0.9")));
    let log = section(&console, "=== LOG\n", "=== ENDLOG");
    assert!(
        log.contains("service=bad (tcp 10.0.0.9:80)")
            && log.contains("scheduler \"twos\" is not available in this kernel"),
        "{log}"
    );
    assert!(console.contains("keepmon still running after the kernel refused a service"));

    // The health check of 127.0.0.3 fails: its real server leaves the kernel.
    let mut want = lines(&["TCP 10.0.0.1:80 wrr", "-> 10.0.0.2:80 Masq 3 0 0"]);
    want.extend(foreign.clone());
    assert_eq!(ipvsadm(step(&console, "down")), want);
    assert!(
        !proc_ip_vs(step(&console, "down"))
            .iter()
            .any(|l| l.contains("0A000003"))
    );

    // It recovers: back with its weight.
    let mut want = lines(&[
        "TCP 10.0.0.1:80 wrr",
        "-> 10.0.0.2:80 Masq 3 0 0",
        "-> 10.0.0.3:80 Masq 1 0 0",
    ]);
    want.extend(foreign.clone());
    assert_eq!(ipvsadm(step(&console, "back")), want);

    // `keepmon lb drain` = weight 0 in the kernel (SET_DEST).
    let drained = ipvsadm(step(&console, "drained"));
    assert!(
        drained.contains(&"-> 10.0.0.3:80 Masq 0 0 0".to_string()),
        "{drained:?}"
    );

    // Traffic through the VIP, and `lb show` reads the kernel's counters.
    assert!(
        console.contains("through the VIP: ok"),
        "no answer through IPVS:\n{console}"
    );
    let show = section(&console, "=== SHOW\n", "=== ENDSHOW");
    let conns: u64 = show
        .lines()
        .filter(|l| l.trim_start().starts_with("-> 10.0.0.") && l.contains(" up "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[4].parse::<u64>().unwrap_or(0) + f[5].parse::<u64>().unwrap_or(0)
        })
        .sum();
    assert!(
        conns > 0,
        "lb show has no kernel connection counts:\n{show}"
    );

    // Reload with a new weight: changed in place (SET_DEST), so the real
    // server keeps the connection entries it had; a delete and re-add
    // would start from zero.
    let conns_of = |lines: &[String], rs: &str| -> u64 {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("-> {rs} ")))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f[4].parse::<u64>().unwrap_or(0) + f[5].parse::<u64>().unwrap_or(0)
            })
            .unwrap_or(0)
    };
    let reloaded = ipvsadm(step(&console, "reloaded"));
    assert!(
        reloaded
            .iter()
            .any(|l| l.starts_with("-> 10.0.0.2:80 Masq 5 ")),
        "{reloaded:?}"
    );
    assert!(
        conns_of(&reloaded, "10.0.0.2:80") > 0,
        "counters survived the reload: {reloaded:?}"
    );
    assert!(
        reloaded.contains(&"TCP 10.0.0.50:443 rr".to_string()),
        "{reloaded:?}"
    );

    // Reload with thresholds and a persistence netmask: ipvsadm shows the
    // persistence mask and, with --thresholds, the thresholds; both were
    // set in place, so the counters survived once more.
    let thresholds = ipvsadm(step(&console, "thresholds"));
    assert!(
        thresholds.contains(&"TCP 10.0.0.1:80 wrr persistent 600 mask 255.255.255.0".to_string()),
        "{thresholds:?}"
    );
    assert!(
        conns_of(&thresholds, "10.0.0.2:80") > 0,
        "changed in place, not re-created: {thresholds:?}"
    );
    let shown = ipvsadm(section(&console, "=== THRESHOLDS\n", "=== ENDTHRESHOLDS"));
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("-> 10.0.0.2:80 100 50 ")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|l| l.starts_with("-> 10.0.0.3:80 0 0 ")),
        "{shown:?}"
    );

    // Stop (default: leave): the table stays, so traffic keeps flowing.
    let mut want = lines(&[
        "TCP 10.0.0.1:80 wrr",
        "-> 10.0.0.2:80 Masq 5",
        "-> 10.0.0.3:80 Masq 1",
    ]);
    want.extend(lines(&["TCP 10.0.0.50:443 rr", "-> 10.0.0.60:443 Masq 1"]));
    let weights = |s: &str| -> Vec<String> {
        ipvsadm(step(&console, s))
            .into_iter()
            .map(|l| l.split(' ').take(4).collect::<Vec<_>>().join(" "))
            .map(|l| {
                if l.starts_with("TCP") {
                    l.split(' ').take(3).collect::<Vec<_>>().join(" ")
                } else {
                    l
                }
            })
            .collect()
    };
    assert_eq!(weights("stopped-leave"), want);
    // Restart with the original config (weight 3): adopted, changed in place.
    want[1] = "-> 10.0.0.2:80 Masq 3".to_string();
    assert_eq!(weights("restarted"), want);
    let restarted = ipvsadm(step(&console, "restarted"));
    assert!(
        conns_of(&restarted, "10.0.0.2:80") > 0,
        "adopted, not re-created: {restarted:?}"
    );
    // Stop with remove_kernel_tables_on_stop: only keepmon's service goes.
    assert_eq!(ipvsadm(step(&console, "stopped-remove")), foreign);

    // One keepalived.conf: Debian's keepalived and keepmon build the same
    // table (scheduler, persistence, forwarding, weights; a fwmark service
    // keyed by its mark with port-less DR real servers; a group's two
    // entries as two services), and keepmon takes a failed real server out
    // of every service it is in and puts it back.
    let from_keepalived = services(&ipvsadm(step(&console, "keepalived")));
    let all = |with_22: bool| {
        let mut want = vec![
            (
                "TCP 10.0.0.20:80 wrr persistent 50",
                vec![
                    "-> 10.0.0.21:8080 Masq 3 0 0",
                    "-> 10.0.0.22:8080 Masq 1 0 0",
                ],
            ),
            (
                "FWM 7 rr",
                vec!["-> 10.0.0.21:0 Route 1 0 0", "-> 10.0.0.22:0 Route 1 0 0"],
            ),
            (
                "TCP 10.0.0.30:80 wrr",
                vec![
                    "-> 10.0.0.21:8080 Masq 2 0 0",
                    "-> 10.0.0.22:8080 Masq 1 0 0",
                ],
            ),
            (
                "FWM 8 wrr",
                vec![
                    "-> 10.0.0.21:8080 Masq 2 0 0",
                    "-> 10.0.0.22:8080 Masq 1 0 0",
                ],
            ),
        ];
        if !with_22 {
            for (_, dests) in &mut want {
                dests.retain(|d| !d.contains("10.0.0.22"));
            }
        }
        services(
            &want
                .into_iter()
                .flat_map(|(s, d)| std::iter::once(s).chain(d))
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(from_keepalived, all(true), "keepalived's own table");
    assert_eq!(
        services(&ipvsadm(step(&console, "keepmon-keepalived"))),
        from_keepalived,
        "keepmon reading keepalived.conf builds keepalived's table"
    );
    assert_eq!(
        services(&ipvsadm(step(&console, "keepmon-keepalived-down"))),
        all(false),
        "the failed real server leaves every service (keepalived removes it too: no inhibit_on_failure)"
    );
    assert_eq!(
        services(&ipvsadm(step(&console, "keepmon-keepalived-back"))),
        all(true)
    );
    // Traffic: nft marks what goes to 10.0.0.40:81 with 8, and IPVS's
    // fwmark 8 service (NAT) takes it to the real servers' port 8080 (only
    // they answer "backend"; fwmark 7 is DR to port 81, where nothing
    // listens); without the mark nothing answers there.
    let through = console
        .lines()
        .filter(|l| l.starts_with("through fwmark 8: "))
        .collect::<Vec<_>>();
    assert_eq!(
        through, ["through fwmark 8: backend"; 4],
        "no answer through the fwmark service:\n{console}"
    );
    assert!(
        !console.contains("unmarked: backend"),
        "unmarked traffic reached a real server:\n{console}"
    );

    // `keepmon lb show` lists a mark service as ipvsadm does.
    let shown = section(&console, "=== KSHOW\n", "=== ENDKSHOW");
    for service in ["FWM  7 rr [fwmark-7, ipvs", "FWM  8 wrr [fwmark-8, ipvs"] {
        assert!(shown.contains(service), "{service:?} in:\n{shown}");
    }
}
