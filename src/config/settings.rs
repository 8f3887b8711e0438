//! Default daemon settings for each front end (mon's documented defaults vs keepmon's no-root defaults) and path resolution.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::FileSystem;
use crate::config::model::{
    AuthSettings, AuthType, BuiltinPolicy, LuaLimits, MailSettings, Settings, WebSettings,
};

/// mon's client and trap port.
pub const MON_PORT: u16 = 2583;

/// Where the shipped Lua monitors and alerts live: the build tree, then
/// where the Debian package installs them. A packaged build
/// (`KEEPMON_PACKAGED` set by scripts/build-deb.sh) looks only in the latter.
pub const SHIPPED_LUA_DIRS: &[&str] = match option_env!("KEEPMON_PACKAGED") {
    Some(_) => &["/usr/share/keepmon/monitors", "/usr/share/keepmon/alerts"],
    None => &[
        concat!(env!("CARGO_MANIFEST_DIR"), "/monitors"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/alerts"),
        "/usr/share/keepmon/monitors",
        "/usr/share/keepmon/alerts",
    ],
};

/// Settings as mon 1.2 starts with (`init_cf_globals`), except that the
/// client port binds to 127.0.0.1 (keepmon's safe default; set `serverbind`
/// to listen elsewhere). Directories that mon picks by existence are picked
/// the same way here.
pub fn mon_defaults(fs: &dyn FileSystem) -> Settings {
    let basedir = PathBuf::from("/usr/lib/mon");
    let statedir = ["/var/state/mon", "/var/lib/mon"]
        .iter()
        .map(PathBuf::from)
        .find(|p| fs.is_dir(p))
        .unwrap_or_else(|| basedir.join("state.d"));
    let logdir = if fs.is_dir(Path::new("/var/log/mon")) {
        PathBuf::from("/var/log/mon")
    } else {
        basedir.join("log.d")
    };
    let localhost = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), MON_PORT);
    Settings {
        alertdir: search_path("/usr/local/lib/mon/alert.d:alert.d", &basedir),
        mondir: search_path("/usr/local/lib/mon/mon.d:mon.d", &basedir),
        mon_listener: Some(localhost),
        trap_listener: Some(localhost),
        ..shared_defaults(
            Dirs {
                basedir,
                cfbasedir: PathBuf::from("/etc/mon"),
                statedir,
                logdir,
            },
            AuthType::Getpwnam,
        )
    }
}

/// Settings for a native config: every directory is under `statedir`, which
/// defaults to `state` beside the config file, so nothing needs root.
pub fn native_defaults(config_dir: &Path) -> Settings {
    let statedir = config_dir.join("state");
    Settings {
        alertdir: vec![config_dir.join("alert.d")],
        mondir: vec![config_dir.join("mon.d")],
        ..shared_defaults(
            Dirs {
                basedir: config_dir.to_path_buf(),
                cfbasedir: config_dir.to_path_buf(),
                logdir: statedir.join("log"),
                statedir,
            },
            AuthType::Userfile,
        )
    }
}

/// No SMTP relay; a local sendmail when the machine has one (mon's way).
pub fn default_mail_settings(fs: &dyn FileSystem) -> MailSettings {
    MailSettings {
        smtp: None,
        from: None,
        sendmail: ["/usr/sbin/sendmail", "/usr/lib/sendmail"]
            .iter()
            .map(PathBuf::from)
            .find(|p| fs.is_file(p)),
        digest_window: None,
        max_age: Duration::from_secs(2 * 86400),
        retry_initial: Duration::from_secs(10),
        retry_max: Duration::from_secs(600),
    }
}

/// A colon-separated search path; relative entries are under `base`.
pub fn search_path(value: &str, base: &Path) -> Vec<PathBuf> {
    value
        .split(':')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| resolve(base, p))
        .collect()
}

/// `path` when absolute, else `base/path`.
pub fn resolve(base: &Path, path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The first `dir/name` that is a file, along a search path.
pub fn find_in(dirs: &[PathBuf], name: &str, fs: &dyn FileSystem) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return fs.is_file(&p).then_some(p);
    }
    dirs.iter().map(|d| d.join(name)).find(|p| fs.is_file(p))
}

/// The Lua script `name` (with or without `.lua`) in `luadir`, then the shipped dirs.
pub fn find_lua(settings: &Settings, name: &str, fs: &dyn FileSystem) -> Option<PathBuf> {
    let file = if name.ends_with(".lua") {
        name.to_string()
    } else {
        format!("{name}.lua")
    };
    let mut dirs = settings.luadir.clone();
    dirs.extend(SHIPPED_LUA_DIRS.iter().map(PathBuf::from));
    find_in(&dirs, &file, fs)
}

/// Where a front end keeps its files unless the config says otherwise.
struct Dirs {
    basedir: PathBuf,
    cfbasedir: PathBuf,
    statedir: PathBuf,
    logdir: PathBuf,
}

/// The defaults both front ends share. The control socket is in `statedir`,
/// the downtime log in `logdir` and the auth files in `cfbasedir`; there is
/// no script search path and no mon listener (each front end sets its own).
fn shared_defaults(dirs: Dirs, authtype: AuthType) -> Settings {
    Settings {
        director: None,
        alertdir: Vec::new(),
        mondir: Vec::new(),
        luadir: Vec::new(),
        control_socket: dirs.statedir.join("keepmon.sock"),
        dtlogfile: dirs.logdir.join("downtime.log"),
        auth: AuthSettings {
            authfile: dirs.cfbasedir.join("auth.cf"),
            authtype: vec![authtype],
            userfile: dirs.cfbasedir.join("monusers.cf"),
            pamservice: "passwd".to_string(),
        },
        basedir: dirs.basedir,
        cfbasedir: dirs.cfbasedir,
        statedir: dirs.statedir,
        logdir: dirs.logdir,
        pidfile: None,
        mon_listener: None,
        trap_listener: None,
        clientallow: Vec::new(),
        cltimeout: Duration::from_secs(30),
        metrics_listener: None,
        web: WebSettings::default(),
        maxprocs: 0,
        histlength: 100,
        historicfile: None,
        historictime: None,
        randstart: None,
        dtlogging: false,
        monerrfile: None,
        dep_recur_limit: 10,
        syslog_facility: "daemon".to_string(),
        startupalerts_on_reset: false,
        remove_kernel_tables_on_stop: false,
        monremote: None,
        exclude_period: None,
        builtin_monitors: BuiltinPolicy::Fallback,
        builtin_alerts: BuiltinPolicy::Prefer,
        monitor_timeout: Duration::from_secs(300),
        shutdown_grace: Duration::from_secs(10),
        lua: LuaLimits {
            timeout: Duration::from_secs(10),
            instructions: 10_000_000,
            memory_bytes: 32 * 1024 * 1024,
            files_dir: None,
            allow_networks: Vec::new(),
        },
    }
}
