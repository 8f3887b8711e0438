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
        let name = format!("kmka{}", std::process::id());
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

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
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
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        common::not_run(&format!("{what}: needs Debian's keepalived package"));
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
