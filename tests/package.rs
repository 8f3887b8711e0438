//! keepmon as an installable package: the man pages and completions match the CLI and the annotated config, render without groff warnings, and the .deb built by scripts/build-deb.sh holds what it should and runs from its installed paths.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::daemon::Fixture;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

const DOCS: [&str; 4] = [
    "keepmon.8",
    "keepmon.toml.5",
    "completions/keepmon.bash",
    "completions/_keepmon",
];

#[test]
fn man_pages_and_completions_are_generated_from_the_cli_and_the_config() {
    let f = Fixture::new("package-docs");
    let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .arg("generate-docs")
        .arg(&f.dir)
        .output()
        .expect("keepmon generate-docs");
    assert!(out.status.success(), "{out:?}");
    for file in DOCS {
        let fresh = std::fs::read_to_string(f.dir.join(file)).expect("generated");
        let checked_in = std::fs::read_to_string(repo().join("doc").join(file)).unwrap_or_default();
        assert!(
            fresh == checked_in,
            "doc/{file} is out of date with the CLI or etc/keepmon.toml; \
             run `cargo run -- generate-docs doc` and commit the result"
        );
    }
    let page = std::fs::read_to_string(f.dir.join("keepmon.8")).expect("page");
    for command in [
        "keepmon start",
        "keepmon reload",
        "keepmon lb drain",
        "keepmon version",
    ] {
        assert!(
            page.contains(&format!("\\fB{}\\fR", command.replace('-', "\\-"))),
            "keepmon(8) documents {command}"
        );
    }
    assert!(
        !page.contains("generate"),
        "the hidden command stays hidden"
    );
    let config = std::fs::read_to_string(f.dir.join("keepmon.toml.5")).expect("page");
    assert!(config.contains(".SH \"THE DAEMON\""));
    assert!(config.contains("statedir = \"state\""));
    let bash = std::fs::read_to_string(f.dir.join("completions/keepmon.bash")).expect("bash");
    assert!(bash.contains("check-config") && bash.contains("--log"));
}

#[test]
fn man_pages_render_without_groff_warnings() {
    if !have("groff") {
        common::not_run("groff -ww on the man pages: no groff (Debian package groff-base)");
        return;
    }
    for page in ["keepmon.8", "keepmon.toml.5"] {
        let out = Command::new("groff")
            .args(["-ww", "-man", "-Tutf8", "-z"])
            .arg(repo().join("doc").join(page))
            .output()
            .expect("groff");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff -ww {page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_debian_package_holds_the_daemon_its_config_units_scripts_and_docs() {
    if !have("dpkg-deb") {
        common::not_run("building the .deb: no dpkg-deb (Debian package dpkg)");
        return;
    }
    let f = Fixture::new("package-deb");
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-deb.sh"))
        .args(["--fast", "--binary", env!("CARGO_BIN_EXE_keepmon"), "--out"])
        .arg(&f.dir)
        // A maintainer address lintian accepts (the default is a placeholder).
        .env("DEBFULLNAME", "keepmon test")
        .env("DEBEMAIL", "keepmon-test@example.org")
        .output()
        .expect("build-deb.sh");
    assert!(
        out.status.success(),
        "build-deb.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(deb.is_file(), "{deb:?}");

    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(name)
            .output()
            .expect("dpkg-deb -f");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "keepmon");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert!(field("Depends").contains("adduser"));

    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb -c");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/sbin/keepmon",
        "./etc/keepmon/keepmon.toml",
        "./lib/systemd/system/keepmon.service",
        "./lib/systemd/system/keepmon@.service",
        "./usr/share/keepmon/monitors/tcp_port.lua",
        "./usr/share/keepmon/alerts/webhook.lua",
        "./usr/share/man/man8/keepmon.8.gz",
        "./usr/share/man/man5/keepmon.toml.5.gz",
        "./usr/share/bash-completion/completions/keepmon",
        "./usr/share/zsh/vendor-completions/_keepmon",
        "./usr/share/doc/keepmon/copyright",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} in the package:\n{listing}"
        );
    }
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "everything owned by root:\n{listing}"
    );

    // Unpack into a throw-away root: the maintainer scripts and the conffile.
    let root = f.dir.join("root");
    let control = f.dir.join("control");
    for (flag, dir) in [("-x", &root), ("-e", &control)] {
        let out = Command::new("dpkg-deb")
            .arg(flag)
            .arg(&deb)
            .arg(dir)
            .output()
            .expect("dpkg-deb");
        assert!(out.status.success(), "dpkg-deb {flag}: {out:?}");
    }
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles")).expect("conffiles"),
        "/etc/keepmon/keepmon.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.join(script);
        let check = Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .expect("sh -n");
        assert!(check.status.success(), "{script} is valid sh: {check:?}");
    }
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(postinst.contains("install -d -o keepmon -g keepmon -m 0750"));
    let commands: Vec<&str> = postinst
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(
        commands
            .iter()
            .all(|l| !l.contains("systemctl start") && !l.contains("systemctl enable")),
        "postinst starts nothing on install: {postinst}"
    );
    assert!(
        commands
            .iter()
            .any(|l| l.contains("deb-systemd-invoke \"$action\" keepmon.service")),
        "start (if enabled) or restart (if enabled or running) through deb-systemd-invoke: {postinst}"
    );

    // The installed binary checks the installed config.
    let installed = root.join("usr/sbin/keepmon");
    let config = root.join("etc/keepmon/keepmon.toml");
    let out = Command::new(&installed)
        .arg("check-config")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("installed keepmon");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-config of the installed config: {}{summary}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.contains("state directory  /var/lib/keepmon"),
        "{summary}"
    );
    assert!(summary.contains("0 warning(s)"), "{summary}");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        !text.contains("port = 9,"),
        "the demo's failing service is gone"
    );
    assert!(text.contains("path = \"/var/log/keepmon/alerts.log\""));
    let version = Command::new(&installed)
        .args(["version"])
        .output()
        .expect("version");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("keepmon {}", env!("CARGO_PKG_VERSION"))
    );
    assert_units_match(&root);
    lintian_is_clean(&deb);
}

/// lintian (Debian's package checker) finds no error and no warning.
fn lintian_is_clean(deb: &Path) {
    if !have("lintian") {
        common::not_run("lintian on the .deb: no lintian (Debian package lintian)");
        return;
    }
    let out = Command::new("lintian").arg(deb).output().expect("lintian");
    let report = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(tags.is_empty(), "lintian:\n{}", tags.join("\n"));
}

/// The packaged units are the ones in etc/systemd.
fn assert_units_match(root: &Path) {
    for unit in ["keepmon.service", "keepmon@.service"] {
        assert_eq!(
            std::fs::read(root.join("lib/systemd/system").join(unit)).expect("unit"),
            std::fs::read(repo().join("etc/systemd").join(unit)).expect("unit"),
        );
    }
}

#[test]
fn version_verbose_reports_the_build_and_what_this_machine_offers() {
    let out = Command::new(env!("CARGO_BIN_EXE_keepmon"))
        .args(["version", "--verbose"])
        .output()
        .expect("keepmon version --verbose");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("keepmon {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    for line in [
        "commit:",
        "lua:           Lua 5.4",
        "kernel:",
        "ipvs:",
        "nftables:",
        "vrrp sockets:",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in {text}"
        );
    }
}
