//! Monitors: one bounded run of a service's check over its hosts — built-in tcp/http/ping/smtp/udp/dns in-process, mon.d scripts as child processes; a failing host is data, never an `Err`.
//!
//! [`run`] is the entry point for every kind but `lua:`: the supervisor
//! calls [`crate::run::monitor`], which sends Lua runs to the Lua runtime in
//! `lua/` and the rest here (this module never imports the Lua runtime,
//! which builds on it). [`run`] decides what to run ([`resolve`]: a
//! built-in, a mon.d script, or a config error), runs it
//! under the request's hard timeout and returns a [`RunOutput`] shaped like
//! mon's: exit value, first line = summary, the rest = detail.
//!
//! Architecture invariants:
//!
//! - `run` never panics and never returns early without a result; a host
//!   check that panics is reported as a failed host.
//! - Every run is bounded by [`RunRequest::timeout`]. Built-in hosts still
//!   unfinished at the deadline are reported as [`HostStatus::Timeout`]; a
//!   script still running is killed with its whole process group.
//! - Monitors never touch service state: deciding what a result means
//!   (alerts, `(NO SUMMARY)`, opstatus) is the caller's job.
//!
//! Deliberate differences from mon for mon.d scripts: a run that exceeds
//! its timeout is killed with its process group and reported with
//! `timed_out` (exit 137); a script killed by signal N is a failure with exit
//! `128 + N` (mon reads it as 0, success); output beyond [`OUTPUT_CAP`] is
//! dropped with a note; a missing script is `config_error` with exit 127 and
//! summary `monitor NAME not found` (mon 1.2 retries and logs every second).
//! For the built-in equivalents of mon's scripts see [`mon_compat`].

pub(crate) mod builtin;
pub mod dns;
mod exec;
pub(crate) mod http;
pub mod mon_compat;
mod ping;
mod smtp;
pub(crate) mod tcp;
mod udp;

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::model::{
    BuiltinPolicy, DnsCheck, HttpCheck, Monitor, PingCheck, SmtpCheck, TcpCheck, UdpCheck,
};
use crate::lua_settings::LuaSettings;

pub use mon_compat::{CompatError, builtin_equivalent};

/// At most this much monitor output (stdout and stderr together) is kept;
/// the rest is read and thrown away so a chatty script cannot exhaust memory.
pub const OUTPUT_CAP: usize = 1 << 20;

/// Exit value reported when a monitor script cannot be found (as a shell does).
pub const EXIT_NOT_FOUND: i32 = 127;

/// Exit value reported when a monitor exists but cannot be run (not
/// executable, bad built-in arguments, unsupported monitor kind).
pub const EXIT_CANNOT_RUN: i32 = 126;

/// What one host's check came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostStatus {
    Ok,
    Fail {
        reason: String,
    },
    /// The check's own timeout, or the run's hard timeout, came first.
    Timeout,
}

/// One host's result from a built-in monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostResult {
    pub host: String,
    pub status: HostStatus,
    /// Time until the host answered (connect, response, echo reply); `None`
    /// when it never answered.
    pub latency: Option<Duration>,
}

impl HostResult {
    pub fn is_ok(&self) -> bool {
        self.status == HostStatus::Ok
    }
}

/// The result of one monitor run, in mon's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// 0 = success, anything else = failure. A script killed by signal N
    /// reports `128 + N` (mon reads it as 0, a bug).
    pub exit: i32,
    /// The first line of output: by convention the failing hosts, space-separated.
    /// Empty when there was none (the caller shows mon's `(NO SUMMARY)`).
    pub summary: String,
    /// Everything after the first line.
    pub detail: String,
    /// Per-host results; empty for exec monitors.
    pub hosts: Vec<HostResult>,
    /// The run hit [`RunRequest::timeout`].
    pub timed_out: bool,
    pub duration: Duration,
    /// The monitor could not be run at all (script missing, not executable,
    /// bad built-in arguments): the service's opstatus is `configerr`.
    pub config_error: bool,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.exit == 0
    }

    /// The whole output as mon keeps it (`MON_LAST_OUTPUT`): summary line, then detail.
    pub fn output(&self) -> String {
        if self.detail.is_empty() {
            if self.summary.is_empty() {
                String::new()
            } else {
                format!("{}\n", self.summary)
            }
        } else {
            format!("{}\n{}", self.summary, self.detail)
        }
    }

    fn config_error(exit: i32, summary: String, started: Instant) -> RunOutput {
        RunOutput {
            exit,
            summary,
            detail: String::new(),
            hosts: Vec::new(),
            timed_out: false,
            duration: started.elapsed(),
            config_error: true,
        }
    }
}

/// One monitor run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRequest {
    /// The hosts to check (already filtered: disabled and excluded hosts removed).
    pub hosts: Vec<String>,
    pub monitor: Monitor,
    /// Hard timeout for the whole run.
    pub timeout: Duration,
    /// Extra environment for exec monitors: the service's `VAR=value` lines
    /// and the `MON_*` variables, prepared by the caller.
    pub env: Vec<(String, String)>,
    pub builtin_policy: BuiltinPolicy,
    /// Where `lua:NAME` monitors are found and the limits they run under.
    pub lua: LuaSettings,
    /// The user an exec monitor runs as (the service's `run_as`).
    pub run_as: Option<crate::config::model::RunAs>,
}

/// A check keepmon runs in-process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuiltinCheck {
    Tcp(TcpCheck),
    Http(HttpCheck),
    Ping(PingCheck),
    Smtp(SmtpCheck),
    Udp(UdpCheck),
    Dns(DnsCheck),
}

impl BuiltinCheck {
    /// The same check as a config model value.
    pub fn to_monitor(&self) -> Monitor {
        match self {
            BuiltinCheck::Tcp(c) => Monitor::Tcp(c.clone()),
            BuiltinCheck::Http(c) => Monitor::Http(c.clone()),
            BuiltinCheck::Ping(c) => Monitor::Ping(c.clone()),
            BuiltinCheck::Smtp(c) => Monitor::Smtp(c.clone()),
            BuiltinCheck::Udp(c) => Monitor::Udp(c.clone()),
            BuiltinCheck::Dns(c) => Monitor::Dns(c.clone()),
        }
    }
}

/// Behaviour of mon's scripts that the config model's checks do not express.
/// `Default` is plain keepmon behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuiltinOptions {
    /// `fping.monitor -a`: the run fails only when every host is unreachable
    /// (the summary still lists the unreachable ones).
    pub fail_only_if_all_fail: bool,
    /// `fping.monitor -s`: an echo reply slower than this makes the host fail.
    pub slow: Option<Duration>,
    /// `http.monitor -m`: the body regex is matched against the status line,
    /// headers and body together, not just the body.
    pub match_whole_response: bool,
    /// `http.monitor -a`: the User-Agent header.
    pub user_agent: Option<String>,
    /// `ping.monitor -6`: resolve host names to IPv6 addresses only.
    pub ipv6_only: bool,
}

/// A built-in check plus what mon's script arguments added to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Builtin {
    pub check: BuiltinCheck,
    pub options: BuiltinOptions,
    /// Non-option words in a script's arguments: mon's scripts treat them as
    /// hosts, before the hosts mon appends (`monitor tcp.monitor -p 80 a b ;;`).
    pub arg_hosts: Vec<String>,
}

impl Builtin {
    /// A plain native check with no extra hosts and default options.
    pub fn plain(check: BuiltinCheck) -> Builtin {
        Builtin {
            check,
            options: BuiltinOptions::default(),
            arg_hosts: Vec::new(),
        }
    }
}

/// What [`run`] will actually do for a monitor under a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Builtin {
        builtin: Builtin,
        /// False after mon's `;;`: only `arg_hosts` are checked.
        append_hosts: bool,
    },
    Script {
        name: String,
        path: PathBuf,
        args: Vec<String>,
        append_hosts: bool,
    },
    Lua {
        script: String,
        args: Vec<String>,
    },
    /// Nothing can run: the service reports `configerr`.
    ConfigError {
        exit: i32,
        summary: String,
    },
}

/// Decide what runs for `monitor`: an `Exec` monitor with a built-in
/// equivalent uses it under `Prefer`, or under `Fallback` when no script was
/// found; `Never` always runs the script. When the script's arguments are
/// not understood by the built-in, the script runs if there is one.
pub fn resolve(monitor: &Monitor, policy: BuiltinPolicy) -> Resolved {
    let builtin = |check| Resolved::Builtin {
        builtin: Builtin::plain(check),
        append_hosts: true,
    };
    match monitor {
        Monitor::Tcp(c) => builtin(BuiltinCheck::Tcp(c.clone())),
        Monitor::Http(c) => builtin(BuiltinCheck::Http(c.clone())),
        Monitor::Ping(c) => builtin(BuiltinCheck::Ping(c.clone())),
        Monitor::Smtp(c) => builtin(BuiltinCheck::Smtp(c.clone())),
        Monitor::Udp(c) => builtin(BuiltinCheck::Udp(c.clone())),
        Monitor::Dns(c) => builtin(BuiltinCheck::Dns(c.clone())),
        Monitor::Lua { script, args } => Resolved::Lua {
            script: script.clone(),
            args: args.clone(),
        },
        Monitor::Exec {
            name,
            args,
            append_hosts,
            path,
        } => {
            let script = |path: &PathBuf| Resolved::Script {
                name: name.clone(),
                path: path.clone(),
                args: args.clone(),
                append_hosts: *append_hosts,
            };
            let not_found = || Resolved::ConfigError {
                exit: EXIT_NOT_FOUND,
                summary: format!("monitor {name} not found"),
            };
            let use_builtin = match policy {
                BuiltinPolicy::Prefer => true,
                BuiltinPolicy::Fallback => path.is_none(),
                BuiltinPolicy::Never => false,
            };
            if !use_builtin {
                return path.as_ref().map_or_else(not_found, script);
            }
            match builtin_equivalent(name, args) {
                Some(Ok(builtin)) => Resolved::Builtin {
                    builtin,
                    append_hosts: *append_hosts,
                },
                Some(Err(error)) => match path {
                    Some(path) => {
                        debug!(monitor = %name, %error, "arguments not understood by the built-in equivalent; running the script");
                        script(path)
                    }
                    None => Resolved::ConfigError {
                        exit: EXIT_CANNOT_RUN,
                        summary: format!("monitor {name}: {error}"),
                    },
                },
                None => path.as_ref().map_or_else(not_found, script),
            }
        }
    }
}

/// Run one monitor over `req.hosts`, bounded by `req.timeout`. Never fails:
/// every outcome, including "could not run", is a [`RunOutput`]. A `lua:`
/// monitor is a config error here: [`crate::run::monitor`] runs every kind.
pub async fn run(req: &RunRequest) -> RunOutput {
    run_tracked(req, &AtomicU32::new(0)).await
}

/// [`run`], publishing a mon.d script's process id in `pid` while it runs
/// (0 before it starts and after it ends) — mon's `list pids`.
pub async fn run_tracked(req: &RunRequest, pid: &AtomicU32) -> RunOutput {
    let started = Instant::now();
    match resolve(&req.monitor, req.builtin_policy) {
        Resolved::Builtin {
            builtin,
            append_hosts,
        } => {
            let mut hosts = builtin.arg_hosts.clone();
            if append_hosts {
                hosts.extend(req.hosts.iter().cloned());
            }
            builtin::run(&builtin, hosts, req.timeout, started).await
        }
        Resolved::Script {
            name,
            path,
            args,
            append_hosts,
        } => {
            let mut argv = args;
            if append_hosts {
                argv.extend(req.hosts.iter().cloned());
            }
            let script = exec::Script {
                name: &name,
                path: &path,
                args: &argv,
                env: &req.env,
                timeout: req.timeout,
                pid: Some(pid),
                run_as: req.run_as.as_ref(),
            };
            let output = exec::run(&script, started).await;
            pid.store(0, std::sync::atomic::Ordering::Relaxed);
            output
        }
        // The Lua runtime builds on this module, so it cannot be called from
        // here: `crate::run::monitor` sends Lua runs there before this point.
        Resolved::Lua { script, .. } => {
            let summary =
                format!("monitor lua:{script}: Lua monitors run through keepmon::run::monitor");
            warn!(%summary, "monitor cannot run");
            RunOutput::config_error(EXIT_CANNOT_RUN, summary, started)
        }
        Resolved::ConfigError { exit, summary } => {
            warn!(%summary, "monitor cannot run");
            RunOutput::config_error(exit, summary, started)
        }
    }
}

/// A hostgroup host split into the name to resolve and the port it names:
/// `ADDR:PORT`, `[V6]:PORT` or `NAME:PORT` is checked at that port by the
/// built-in tcp and http monitors (so servers of one address on several
/// ports share one health service); a bare name, IPv4 or IPv6 address, or
/// `[V6]`, has none and the check's own port applies.
pub fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((addr, "")) => (addr, None),
            Some((addr, tail)) => match tail.strip_prefix(':').and_then(parse_port) {
                Some(port) => (addr, Some(port)),
                None => (host, None),
            },
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        // One colon: `name:port`. More than one: a bare IPv6 address.
        Some((name, port)) if !name.is_empty() && !name.contains(':') => match parse_port(port) {
            Some(port) => (name, Some(port)),
            None => (host, None),
        },
        _ => (host, None),
    }
}

/// A decimal port 1..=65535 (no sign, no spaces).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// `1s`, `1.5s`, `250ms`: short durations for summaries and detail lines.
pub(crate) fn show_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        let seconds = format!("{:.3}", d.as_secs_f64());
        format!("{}s", seconds.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(name: &str, path: Option<&str>) -> Monitor {
        Monitor::Exec {
            name: name.to_string(),
            args: vec!["-p".to_string(), "8080".to_string()],
            append_hosts: true,
            path: path.map(PathBuf::from),
        }
    }

    fn kind(r: &Resolved) -> &'static str {
        match r {
            Resolved::Builtin { .. } => "builtin",
            Resolved::Script { .. } => "script",
            Resolved::Lua { .. } => "lua",
            Resolved::ConfigError { .. } => "configerr",
        }
    }

    #[test]
    fn policy_chooses_builtin_or_script() {
        use BuiltinPolicy::*;
        let cases = [
            ("tcp.monitor", Some("/x/tcp.monitor"), Prefer, "builtin"),
            ("tcp.monitor", Some("/x/tcp.monitor"), Fallback, "script"),
            ("tcp.monitor", Some("/x/tcp.monitor"), Never, "script"),
            ("tcp.monitor", None, Prefer, "builtin"),
            ("tcp.monitor", None, Fallback, "builtin"),
            ("tcp.monitor", None, Never, "configerr"),
            ("smtp.monitor", Some("/x/smtp.monitor"), Prefer, "script"),
            ("smtp.monitor", None, Prefer, "configerr"),
            ("smtp.monitor", None, Fallback, "configerr"),
        ];
        for (name, path, policy, expected) in cases {
            let got = resolve(&exec(name, path), policy);
            assert_eq!(kind(&got), expected, "{name} {path:?} {policy:?}: {got:?}");
        }
    }

    #[test]
    fn missing_script_summary() {
        let got = resolve(&exec("smtp.monitor", None), BuiltinPolicy::Fallback);
        assert_eq!(
            got,
            Resolved::ConfigError {
                exit: EXIT_NOT_FOUND,
                summary: "monitor smtp.monitor not found".to_string()
            }
        );
    }

    #[test]
    fn bad_builtin_arguments_fall_back_to_the_script() {
        let bad = Monitor::Exec {
            name: "tcp.monitor".to_string(),
            args: vec!["-p".to_string(), "telnet".to_string()],
            append_hosts: true,
            path: Some(PathBuf::from("/x/tcp.monitor")),
        };
        assert_eq!(kind(&resolve(&bad, BuiltinPolicy::Prefer)), "script");
        let Monitor::Exec {
            name,
            args,
            append_hosts,
            ..
        } = bad
        else {
            unreachable!()
        };
        let no_script = Monitor::Exec {
            name,
            args,
            append_hosts,
            path: None,
        };
        match resolve(&no_script, BuiltinPolicy::Prefer) {
            Resolved::ConfigError { exit, summary } => {
                assert_eq!(exit, EXIT_CANNOT_RUN);
                assert!(summary.starts_with("monitor tcp.monitor: "), "{summary}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_run_can_be_spawned() {
        fn assert_send<T: Send + 'static>(_: T) {}
        let req = RunRequest {
            hosts: vec!["h".to_string()],
            monitor: exec("tcp.monitor", None),
            timeout: Duration::from_secs(1),
            env: Vec::new(),
            builtin_policy: BuiltinPolicy::Prefer,
            lua: LuaSettings::default(),
            run_as: None,
        };
        assert_send(async move { run(&req).await });
    }

    #[test]
    fn hosts_name_their_port() {
        let cases = [
            ("10.0.0.1", ("10.0.0.1", None)),
            ("10.0.0.1:8001", ("10.0.0.1", Some(8001))),
            ("web1", ("web1", None)),
            ("web1.example.com:443", ("web1.example.com", Some(443))),
            ("::1", ("::1", None)),
            ("2001:db8::1", ("2001:db8::1", None)),
            ("[2001:db8::1]", ("2001:db8::1", None)),
            ("[::1]:8080", ("::1", Some(8080))),
            // Not a port: the host is left whole (and fails to resolve).
            ("web1:http", ("web1:http", None)),
            ("web1:0", ("web1:0", None)),
            ("web1:70000", ("web1:70000", None)),
            ("web1:", ("web1:", None)),
            (":80", (":80", None)),
            ("[::1]80", ("[::1]80", None)),
            ("[::1", ("[::1", None)),
        ];
        for (host, expected) in cases {
            assert_eq!(split_host_port(host), expected, "{host}");
        }
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(show_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(show_duration(Duration::from_secs(10)), "10s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn output_joins_summary_and_detail() {
        let mut out = RunOutput {
            exit: 1,
            summary: "a b".to_string(),
            detail: "x\ny\n".to_string(),
            hosts: Vec::new(),
            timed_out: false,
            duration: Duration::ZERO,
            config_error: false,
        };
        assert_eq!(out.output(), "a b\nx\ny\n");
        out.detail.clear();
        assert_eq!(out.output(), "a b\n");
        out.summary.clear();
        assert_eq!(out.output(), "");
    }
}
