//! What this build is and which kernel planes this machine offers, for `keepmon version --verbose`; probes only (opens and closes sockets, runs `nft --version`), changes nothing.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::settings::SHIPPED_LUA_DIRS;

/// The commit the binary was built from, when the build said so
/// (`KEEPMON_GIT_COMMIT`, set by `scripts/build-deb.sh`).
pub const GIT_COMMIT: Option<&str> = option_env!("KEEPMON_GIT_COMMIT");

/// The report, one `name: value` line each.
pub fn verbose_report() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "keepmon {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(
        out,
        "commit:        {}",
        GIT_COMMIT.unwrap_or("unknown (not built by scripts/build-deb.sh)")
    );
    let _ = writeln!(
        out,
        "target:        {}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    let _ = writeln!(
        out,
        "built in:      config front ends mon.cf and toml; monitors tcp http https ping lua exec; \
         alerts mail file exec lua lvs; data planes proxy ipvs nftables; vrrp v2 v3; \
         systemd notify, watchdog, journal; syslog"
    );
    let _ = writeln!(out, "lua:           {}", lua_version());
    let _ = writeln!(out, "shipped lua:   {}", shipped_dirs());
    let _ = writeln!(out, "kernel:        {}", kernel_release());
    let _ = writeln!(out, "ipvs:          {}", ipvs());
    let _ = writeln!(out, "nftables:      {}", nftables());
    let _ = writeln!(out, "vrrp sockets:  {}", raw_vrrp_socket());
    let _ = writeln!(
        out,
        "systemd:       {}",
        if std::env::var_os("INVOCATION_ID").is_some() {
            "running as a systemd service"
        } else {
            "not started by systemd"
        }
    );
    out
}

fn lua_version() -> String {
    let lua = mlua::Lua::new();
    lua.load("return _VERSION")
        .eval::<String>()
        .unwrap_or_else(|e| format!("unavailable ({e})"))
        + " (vendored, sandboxed)"
}

fn shipped_dirs() -> String {
    let present: Vec<String> = SHIPPED_LUA_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    if present.is_empty() {
        "none found".to_string()
    } else {
        present.join(", ")
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn ipvs() -> String {
    match crate::lb::ipvs::Ipvs::open() {
        Ok(_) => "available (IPVS generic netlink family found)".to_string(),
        Err(e) => format!("not available: {e}"),
    }
}

fn nftables() -> String {
    match std::process::Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => {
            format!(
                "available ({})",
                String::from_utf8_lossy(&out.stdout).trim()
            )
        }
        Ok(out) => format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("not available (nft: {e})"),
    }
}

fn raw_vrrp_socket() -> String {
    use socket2::{Domain, Protocol, Socket, Type};
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))) {
        Ok(_) => "available (raw protocol-112 socket opened)".to_string(),
        Err(e) => format!("not available: {e} (VRRP needs CAP_NET_RAW)"),
    }
}
