//! Native TOML front end: reads `keepmon.toml` into the validated model and reports every problem at its `file:line:col`; asks the [`FileSystem`] only whether scripts exist.
//!
//! How a file is read:
//!
//! 1. `toml` parses the text into a spanned document (every key and value
//!    keeps its byte range). A syntax error stops here: there is no model.
//! 2. Each definition (a daemon section, an action, a service, a period, a
//!    monitor, a virtual server, a vrrp instance) is deserialized on its own
//!    into a private `Raw*` struct (`deny_unknown_fields`, every field
//!    optional), so one bad definition never hides the errors of another.
//!    When serde rejects a key, the error is recorded, that key is dropped
//!    and the definition is read again, so every bad key is reported once.
//! 3. Plain functions turn the raw structs into the model, checking values
//!    (durations, addresses, periods, regexes, ranges) and the references
//!    that are local to this file (an alert names an action in `[actions]`).
//!
//! `etc/keepmon.toml` is the commented example of the format; the `Raw*`
//! structs in the section files are its exact list of keys, and the tables
//! beside them the words that some keys accept.
//!
//! Every message starts with the dotted TOML path of the key it is about
//! (`watch.local.web.interval: bad duration "5x" ...`). Checks that need the
//! whole model (does `group:service` name a service, does a watch's group
//! exist) belong to [`crate::config::validate`].
//!
//! # Layout: one file per section
//!
//! This directory is the pattern every config front end copies
//! (`src/config/<format>/`, e.g. `keepalived/`, `haproxy/`):
//!
//! - `mod.rs` (this file): the entry point [`parse`] and the top-level
//!   document (which sections exist, in which order they are read);
//! - `cursor.rs`: the `Reader` that walks the document
//!   and collects diagnostics (byte offsets → `file:line:col`), key paths,
//!   reading one definition at a time; `checks.rs`: value checks shared by
//!   the sections; `messages.rs`: the wording ("did you mean", serde's
//!   errors in the config's terms);
//! - one file per section, each an `impl Reader` block with the section's
//!   `Raw*` structs, its word tables and its unit tests: `daemon.rs`
//!   (`[daemon]`, `[mon_protocol]`, `[metrics]`, `[lua]`, `[mail]`),
//!   `hostgroups.rs`, `actions.rs`, `watch.rs` (services), `monitors.rs`,
//!   `periods.rs` (alert periods and alert lines), `virtual_servers.rs`,
//!   `vrrp.rs`, `stats_page.rs`.
//!
//! A section file defines only its own keys; what several sections share
//! goes into the cursor or the checks. Where the format nests, a section
//! calls another's reader (a service reads its monitor and its periods; a
//! vrrp instance's `notify` is a list of alert lines).

use std::path::Path;
use std::sync::Arc;

use toml::de::DeTable;

use crate::config::FileSystem;
use crate::config::diag::Diagnostics;
use crate::config::model::{Config, Format};
use crate::config::settings;

mod actions;
pub(in crate::config) mod announce;
pub(in crate::config) mod bfd;
mod checks;
mod cursor;
mod daemon;
mod file_init;
mod hostgroups;
mod messages;
mod monitors;
mod periods;
mod proxy;
mod routes;
mod stats_page;
#[cfg(test)]
pub(crate) mod testing;
mod virtual_servers;
mod vrrp;
mod watch;
mod web;

use self::cursor::{KeyPath, Reader};
use self::daemon::{RawDaemon, RawLua, RawMail, RawMetrics, RawMonProtocol};
use self::messages::lowercase_first;
use self::web::RawWeb;

/// Parse native TOML config text. The model comes back whenever the TOML
/// itself parses (even with errors, so that the cross-reference validator can
/// add its own); `None` only for a TOML syntax error.
pub fn parse(text: &str, file: &Arc<Path>, fs: &dyn FileSystem) -> (Option<Config>, Diagnostics) {
    let mut reader = Reader::new(text, file, fs);
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in &syntax_errors {
            let span = error.span().unwrap_or(0..0);
            reader.error(
                span.start,
                format!(
                    "toml syntax error: {}",
                    lowercase_first(error.message().trim())
                ),
            );
        }
        return (None, reader.finish());
    }
    let config = reader.config(document.get_ref());
    (Some(config), reader.finish())
}

/// The top-level tables.
const TOP_LEVEL_KEYS: &[&str] = &[
    "daemon",
    "mon_protocol",
    "metrics",
    "web",
    "lua",
    "mail",
    "hostgroups",
    "aliases",
    "views",
    "actions",
    "watch",
    "virtual_servers",
    "vrrp",
    "vrrp_sync_group",
    "bfd",
    "bgp",
    "announce",
    "stats_page",
    "file_init",
];

impl Reader<'_> {
    fn config(&mut self, root: &DeTable<'_>) -> Config {
        self.unknown_keys(root, &KeyPath::root(), TOP_LEVEL_KEYS);
        let mut settings = settings::native_defaults(&self.config_dir);
        if let Some(raw) = self.read_section::<RawDaemon>(root, "daemon") {
            self.daemon(raw, &mut settings);
        }
        if let Some(raw) = self.read_section::<RawMonProtocol>(root, "mon_protocol") {
            self.mon_protocol(raw, &mut settings);
        }
        if let Some(raw) = self.read_section::<RawMetrics>(root, "metrics") {
            settings.metrics_listener = self.required_listen(raw.listen, "metrics", root);
        }
        if let Some(raw) = self.read_section::<RawWeb>(root, "web") {
            self.web(raw, &mut settings, root);
        }
        if let Some(raw) = self.read_section::<RawLua>(root, "lua") {
            self.lua(raw, &mut settings);
        }
        let mut mail = settings::default_mail_settings(self.fs);
        if let Some(raw) = self.read_section::<RawMail>(root, "mail") {
            self.mail(raw, &mut mail);
        }
        let hostgroups = root
            .get("hostgroups")
            .map(|value| self.hostgroups(value))
            .unwrap_or_default();
        let aliases = root
            .get("aliases")
            .map(|value| self.string_lists(value, "aliases"))
            .unwrap_or_default();
        let views = root
            .get("views")
            .map(|value| self.string_lists(value, "views"))
            .unwrap_or_default();
        if let Some(value) = root.get("actions") {
            self.actions(value, &settings);
        }
        let watches = root
            .get("watch")
            .map(|value| self.watches(value, &settings))
            .unwrap_or_default();
        let virtual_servers = self.definitions(
            root,
            "virtual_servers",
            "a table of virtual servers ([virtual_servers.NAME])",
            Self::virtual_server,
        );
        let vrrp = self.definitions(
            root,
            "vrrp",
            "a table of vrrp instances ([vrrp.NAME])",
            Self::vrrp,
        );
        let vrrp_sync_groups = self.definitions(
            root,
            "vrrp_sync_group",
            "a table of vrrp sync groups ([vrrp_sync_group.NAME])",
            Self::vrrp_sync_group,
        );
        let bfd = self.definitions(
            root,
            "bfd",
            "a table of BFD sessions ([bfd.NAME])",
            Self::bfd,
        );
        let bgp = self
            .read_section::<announce::RawBgp>(root, "bgp")
            .map(|raw| self.bgp(raw))
            .unwrap_or_default();
        let announce = self.definitions(
            root,
            "announce",
            "a table of route announcements ([announce.NAME])",
            Self::announcement,
        );
        let stats_pages = self.stats_pages(root);
        let file_inits = self.file_inits(root);
        Config {
            format: Format::Toml,
            source: self.file.to_path_buf(),
            settings,
            mail,
            hostgroups,
            aliases,
            views,
            watches,
            virtual_servers,
            vrrp,
            vrrp_sync_groups,
            bfd,
            announce,
            bgp,
            stats_pages,
            file_inits,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::config::compile_str;
    use crate::config::depend::ServiceRef;
    use crate::config::model::{
        Action, AdminState, AlertAfter, AlertEvery, AlertEveryMode, AuthType, BuiltinPolicy,
        DataPlane, DepBehavior, ExitRange, Forward, LbScheduler, Monitor, SmtpTls, TrackTarget,
        VirtualAddress, VrrpInitialState, VrrpTrack, VrrpVersion,
    };
    use crate::config::native::testing::{FILE, FakeFs, check_cases, parse_with};
    use crate::period::Period;

    /// Syntax errors and the shared value checks (types, durations, ranges,
    /// choices, addresses, regexes); each section's own diagnostics are
    /// tested in its file.
    #[test]
    fn every_kind_of_error_names_its_place_and_key() {
        check_cases(&[
            // TOML syntax: no model, every syntax error.
            (
                "[daemon\nstatedir = 1",
                &["1:8: error: toml syntax error: unclosed table, expected `]`"],
            ),
            (
                "a = \n",
                &[
                    "1:5: error: toml syntax error: string values must be quoted, expected literal string",
                ],
            ),
            // Unknown keys, with the valid ones and a suggestion.
            (
                "[wacth.local.web]\n",
                &[
                    "1:2: error: unknown key \"wacth\"; did you mean \"watch\"? (valid keys: daemon, mon_protocol, metrics, web, lua, mail, hostgroups, aliases, views, actions, watch, virtual_servers, vrrp, vrrp_sync_group, bfd, bgp, announce, stats_page, file_init)",
                ],
            ),
            (
                "[metrics]\nlisten = \"127.0.0.1:9583\"\nlistne = 1\n",
                &[
                    "3:1: error: metrics: unknown key \"listne\"; did you mean \"listen\"? (valid keys: listen)",
                ],
            ),
            (
                "[lua]\nmemroy = \"1MiB\"\n",
                &[
                    "2:1: error: lua: unknown key \"memroy\"; did you mean \"memory\"? (valid keys: timeout, instructions, memory, files_dir, allow_networks)",
                ],
            ),
            // Wrong types.
            (
                "[daemon]\nstatedir = 5\n",
                &["2:12: error: daemon.statedir: expected a string, found integer 5"],
            ),
            (
                "daemon = 5\n",
                &["1:10: error: daemon: expected a table, found integer 5"],
            ),
            (
                "[daemon]\ndtlogging = \"yes\"\n",
                &["2:13: error: daemon.dtlogging: expected a boolean, found string \"yes\""],
            ),
            (
                "[daemon]\nalertdir = [\"a\", 3]\n",
                &["2:18: error: daemon.alertdir[1]: expected a string, found integer 3"],
            ),
            (
                "[daemon]\nrandstart = 5\n",
                &[
                    "2:13: error: daemon.randstart: expected a duration string such as \"5s\", \"500ms\" or \"1m30s\", found integer 5",
                ],
            ),
            (
                "[daemon]\nstatedir = 1979-05-27\n",
                &[
                    "2:12: error: daemon.statedir: 1979-05-27 is a date-time, which no key takes; quote it if it is text",
                ],
            ),
            // Durations.
            (
                "[daemon]\nmonitor_timeout = \"5x\"\n",
                &[
                    "2:19: error: daemon.monitor_timeout: bad duration \"5x\" (expected e.g. \"500ms\", \"2s\", \"5m\", \"1.5h\", \"1d\")",
                ],
            ),
            (
                "[lua]\ntimeout = \"0s\"\n",
                &["2:11: error: lua.timeout: must be greater than zero"],
            ),
            // Numbers out of range.
            (
                "[daemon]\nmaxprocs = -1\n",
                &[
                    "2:12: error: daemon.maxprocs: -1 is out of range (expected an integer from 0 to 4294967295)",
                ],
            ),
            (
                "[lua]\ninstructions = 0\n",
                &["2:16: error: lua.instructions: 0 is out of range (expected at least 1)"],
            ),
            (
                "[lua]\nmemory = \"32MB\"\n",
                &[
                    "2:10: error: lua.memory: bad size \"32MB\" (expected bytes such as \"32MiB\", with B, KiB, MiB or GiB)",
                ],
            ),
            // Choices.
            (
                "[daemon]\nbuiltin_alerts = \"prefr\"\n",
                &[
                    "2:18: error: daemon.builtin_alerts: unknown policy \"prefr\"; did you mean \"prefer\"? (expected one of: prefer, fallback, never)",
                ],
            ),
            (
                "[daemon]\nsyslog_facility = \"local9\"\n",
                &[
                    "2:19: error: daemon.syslog_facility: unknown syslog facility \"local9\"; did you mean \"local0\"? (expected one of: auth, authpriv, cron, daemon, ftp, kern, lpr, mail, news, syslog, user, uucp, local0, local1, local2, local3, local4, local5, local6, local7)",
                ],
            ),
            // Addresses.
            (
                "[mon_protocol]\nlisten = \"localhost:2583\"\n",
                &[
                    "2:10: error: mon_protocol.listen: \"localhost:2583\" is not an IP address (names are not resolved here)",
                ],
            ),
            (
                "[metrics]\nlisten = \"127.0.0.1\"\n",
                &[
                    "2:10: error: metrics.listen: \"127.0.0.1\" needs a port (e.g. \"127.0.0.1:80\")",
                ],
            ),
            (
                "[metrics]\n",
                &["1:2: error: metrics: missing key \"listen\" (e.g. listen = \"127.0.0.1:9583\")"],
            ),
            // Regexes and periods.
            (
                "[mon_protocol]\nclientallow = [\"^127\\\\.\", \"(\"]\n",
                &["2:27: error: mon_protocol.clientallow[1]: bad regex \"(\": unclosed group"],
            ),
            (
                "[daemon]\nexclude_period = \"xx {1}\"\n",
                &["2:18: error: daemon.exclude_period: unknown scale \"xx\" in period \"xx {1}\""],
            ),
        ]);
    }

    #[test]
    fn the_demo_config_compiles() {
        let compiled = compile_str(
            include_str!("../../../etc/keepmon.toml"),
            Path::new(FILE),
            Format::Toml,
            &FakeFs::default(),
        )
        .unwrap_or_else(|e| panic!("{e}:\n{}", e.diagnostics));
        let config = compiled.config;
        let local = &config.watches["local"];
        assert_eq!(
            local.services.keys().collect::<Vec<_>>(),
            ["closed", "keepmon"]
        );
        for name in ["keepmon", "closed"] {
            let service = &local.services[name];
            assert_eq!(service.interval, Some(Duration::from_secs(5)), "{name}");
            let period = &service.periods[0];
            assert_eq!(period.spec, Period::always());
            assert_eq!(
                period.alerts[0].action,
                Action::File {
                    path: PathBuf::from("/etc/keepmon/state/alerts.log")
                }
            );
        }
        let Some(Monitor::Http(check)) = &local.services["keepmon"].monitor else {
            panic!("keepmon: {:?}", local.services["keepmon"].monitor);
        };
        assert_eq!((check.port, check.path.as_str()), (9583, "/metrics"));
        let Some(Monitor::Tcp(check)) = &local.services["closed"].monitor else {
            panic!("closed: {:?}", local.services["closed"].monitor);
        };
        assert_eq!(check.port, 9);
        assert_eq!(config.hostgroups["local"].hosts, ["127.0.0.1"]);
        assert_eq!(
            config.settings.statedir,
            PathBuf::from("/etc/keepmon/state")
        );
        assert_eq!(
            config.settings.metrics_listener,
            Some("127.0.0.1:9583".parse().unwrap())
        );
        assert_eq!(
            config.settings.web.listen,
            Some("127.0.0.1:9584".parse().unwrap())
        );
        // One virtual service on the built-in proxy, in front of keepmon's
        // own metrics page; no VRRP (it needs root).
        let demo = &config.virtual_servers["demo"];
        assert_eq!(demo.listen, Some("127.0.0.1:9580".parse().unwrap()));
        assert_eq!(demo.dataplane, DataPlane::Proxy);
        assert_eq!(
            demo.real_servers.iter().map(|r| r.addr).collect::<Vec<_>>(),
            ["127.0.0.1:9583".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.virtual_servers.len(), 1);
        assert!(config.vrrp.is_empty());
        let (_, native_diagnostics) = parse_with(
            include_str!("../../../etc/keepmon.toml"),
            &FakeFs::default(),
        );
        assert_eq!(native_diagnostics, Vec::<String>::new());
    }

    /// Every section and most keys, as a user would write them.
    const FULL: &str = r#"
[daemon]
statedir = "/var/lib/keepmon"
mondir = ["mon.d", "/usr/lib/mon/mon.d"]
luadir = ["lua"]
builtin_monitors = "prefer"
exclude_period = "wd {Sun}"
syslog_facility = "LOCAL3"

[mon_protocol]
listen = "0.0.0.0:2583"
clientallow = ['^10\.']
authtype = ["userfile", "pam"]

[metrics]
listen = "127.0.0.1:9583"

[lua]
memory = "64MiB"
instructions = 5000

[mail]
from = "keepmon@example.com"
[mail.smtp]
host = "mail.example.com"
tls = "starttls"
username = "u"
password = "p"

[hostgroups]
web = ["10.0.0.2", "10.0.0.3"]
db = ["10.0.0.9"]

[actions.log]
type = "file"
path = "alerts.log"

[actions.ops]
type = "mail"
to = ["ops@example.com"]
subject = "keepmon"

[actions.page]
type = "exec"
command = "qpage.alert"
args = ["-x"]

[actions.remove]
type = "lb"
virtual = "10.0.0.1:80"
real = "10.0.0.2"
forward = "dr"

[watch.web.http]
interval = "10s"
failure_interval = "2s"
rise = 2
fall = 3
depend = "SELF:ping && db:pg"
hostdepend = ["SELF:ping"]
dep_behavior = "hm"
env = { PORT = "80" }
monitor = { type = "https", path = "/health", status = [200, "300-399"], body = "ok", insecure = true }

[[watch.web.http.period]]
label = "office"
spec = "wd {Mon-Fri} hr {9am-5pm}"
alert = ["ops", { action = "page", exit = "2-5" }]
alertevery = { every = "1h", mode = "strict" }
alertafter = { count = 3, within = "1m" }

[[watch.web.http.period]]
alert = ["log"]
upalert = ["log"]
alertafter = "10m"

[watch.web.ping]
schedule = "*/5 * * * *"
monitor = { type = "ping", count = 2 }

[watch.db.pg]
interval = "1m"
monitor = { type = "exec", command = "foo.monitor", args = ["-p", "5432"], hosts = false }
alert = ["log"]
alertafter = 2

[watch.db.lua]
interval = "1m"
monitor = { type = "lua", script = "check" }

[virtual_servers.web]
listen = "10.0.0.1:80"
dataplane = "ipvs"
scheduler = "wrr"
persistence = "5m"
sorry_server = "10.0.0.99"
health = "web:http"
real_servers = [
  { addr = "10.0.0.2", forward = "dr", weight = 3 },
  { addr = "10.0.0.3:8080", admin = "drain", inhibit_on_failure = true },
]

[vrrp.vi_1]
interface = "eth0"
virtual_router_id = 51
priority = 150
advert_int = "250ms"
state = "master"
virtual_ipaddress = ["10.0.0.1/24", "10.0.0.5 dev eth1"]
unicast_peer = ["10.0.0.12"]
track = [{ service = "web:http", weight = -60 }, { quorum = "web" }]
notify = ["ops"]
"#;

    #[test]
    fn a_full_config_builds_the_model() {
        let fs = FakeFs::with(&[
            "/etc/keepmon/alert.d/qpage.alert",
            "/etc/keepmon/mon.d/foo.monitor",
            "/etc/keepmon/lua/check.lua",
        ]);
        let (config, diagnostics) = parse_with(FULL, &fs);
        assert_eq!(diagnostics, Vec::<String>::new());
        let config = config.unwrap();
        let s = &config.settings;
        assert_eq!(s.statedir, PathBuf::from("/var/lib/keepmon"));
        assert_eq!(
            s.control_socket,
            PathBuf::from("/var/lib/keepmon/keepmon.sock")
        );
        assert_eq!(
            s.mondir,
            [
                PathBuf::from("/etc/keepmon/mon.d"),
                PathBuf::from("/usr/lib/mon/mon.d")
            ]
        );
        assert_eq!(s.builtin_monitors, BuiltinPolicy::Prefer);
        assert_eq!(s.syslog_facility, "local3");
        assert_eq!(s.mon_listener, Some("0.0.0.0:2583".parse().unwrap()));
        assert_eq!(s.clientallow, ["^10\\."]);
        assert_eq!(s.auth.authtype, [AuthType::Userfile, AuthType::Pam]);
        assert_eq!(s.metrics_listener, Some("127.0.0.1:9583".parse().unwrap()));
        assert_eq!((s.lua.memory_bytes, s.lua.instructions), (64 << 20, 5000));
        let smtp = config.mail.smtp.as_ref().unwrap();
        assert_eq!(
            (smtp.port, smtp.tls, smtp.timeout),
            (587, SmtpTls::StartTls, Duration::from_secs(30))
        );

        let http = &config.watches["web"].services["http"];
        assert_eq!(http.failure_interval, Some(Duration::from_secs(2)));
        assert_eq!((http.rise, http.fall), (2, 3));
        assert_eq!(
            http.depend.as_ref().unwrap().to_string(),
            "web:ping && db:pg"
        );
        assert_eq!(http.hostdepend, [ServiceRef::new("web", "ping")]);
        assert_eq!(http.dep_behavior, DepBehavior::HostMonitor);
        assert_eq!(http.env["PORT"], "80");
        let Some(Monitor::Http(check)) = &http.monitor else {
            panic!("{:?}", http.monitor)
        };
        assert!(check.tls && check.insecure);
        assert_eq!(
            (check.port, check.method.as_str(), check.path.as_str()),
            (443, "GET", "/health")
        );
        assert_eq!(check.status, [(200, 200), (300, 399)]);
        let office = &http.periods[0];
        assert_eq!(office.key, "office");
        assert_eq!(office.alerts.len(), 2);
        assert_eq!(office.alerts[1].exit, Some(ExitRange { low: 2, high: 5 }));
        assert_eq!(
            office.alerts[1].action,
            Action::Exec {
                path: PathBuf::from("/etc/keepmon/alert.d/qpage.alert"),
                args: vec!["-x".into()]
            }
        );
        assert_eq!(
            office.alertevery,
            Some(AlertEvery {
                every: Duration::from_secs(3600),
                mode: AlertEveryMode::Strict
            })
        );
        assert_eq!(
            office.alertafter,
            Some(AlertAfter::Window {
                count: 3,
                window: Duration::from_secs(60)
            })
        );
        let always = &http.periods[1];
        assert_eq!((always.key.as_str(), &always.spec), ("", &Period::always()));
        assert_eq!(
            always.alertafter,
            Some(AlertAfter::Duration(Duration::from_secs(600)))
        );
        assert_eq!(
            always.upalerts[0].action,
            Action::File {
                path: PathBuf::from("/etc/keepmon/alerts.log")
            }
        );

        assert!(config.watches["web"].services["ping"].schedule.is_some());
        let pg = &config.watches["db"].services["pg"];
        assert_eq!(
            pg.monitor,
            Some(Monitor::Exec {
                name: "foo.monitor".into(),
                args: vec!["-p".into(), "5432".into()],
                append_hosts: false,
                path: Some(PathBuf::from("/etc/keepmon/mon.d/foo.monitor")),
            })
        );
        assert_eq!(pg.periods[0].alertafter, Some(AlertAfter::Consecutive(2)));
        assert!(
            matches!(&config.watches["db"].services["lua"].monitor, Some(Monitor::Lua { script, .. }) if script == "check")
        );

        let vs = &config.virtual_servers["web"];
        assert_eq!(
            (vs.dataplane, vs.scheduler),
            (DataPlane::Ipvs, LbScheduler::WeightedRoundRobin)
        );
        assert_eq!(vs.sorry_server, Some("10.0.0.99:80".parse().unwrap()));
        assert_eq!(vs.health, Some(ServiceRef::new("web", "http")));
        assert_eq!(vs.real_servers[0].addr, "10.0.0.2:80".parse().unwrap());
        assert_eq!(
            (vs.real_servers[0].host.as_str(), vs.real_servers[0].weight),
            ("10.0.0.2", 3)
        );
        assert_eq!(vs.real_servers[0].forward, Forward::DirectRouting);
        assert_eq!(vs.real_servers[1].admin, AdminState::Drain);

        let vi = &config.vrrp["vi_1"];
        assert_eq!(
            (vi.vrid.get(), vi.priority, vi.version),
            (51, 150, VrrpVersion::V3)
        );
        assert_eq!(vi.advert_int, Duration::from_millis(250));
        assert_eq!(vi.initial_state, VrrpInitialState::Master);
        assert_eq!(
            vi.virtual_addresses[1],
            VirtualAddress {
                addr: "10.0.0.5".parse().unwrap(),
                prefix: 32,
                dev: Some("eth1".into()),
            }
        );
        assert_eq!(
            vi.track[1],
            VrrpTrack {
                target: TrackTarget::Quorum("web".into()),
                weight: 0,
                reverse: false,
            }
        );
        assert_eq!(vi.garp.master_delay, Duration::from_secs(5));
        assert_eq!(vi.notify[0].name, "ops");
        let header_line = FULL.lines().position(|l| l == "[vrrp.vi_1]").unwrap() + 1;
        assert_eq!(
            (vi.origin.0.line as usize, vi.origin.0.col),
            (header_line, 7)
        );
    }

    #[test]
    fn reports_every_error_at_once_and_still_builds_a_model() {
        let text = r#"
[actions.log]
type = "file"
path = "a.log"

[watch.local.good]
interval = "5s"
monitor = { type = "tcp", port = 80 }
alert = ["log"]

[watch.local.bad]
interval = "5x"
timeout = 3
monitor = { type = "tcp", port = 70000 }
alert = ["lgo"]

[virtual_servers.web]
listen = "127.0.0.1:8080"
retries = "two"
"#;
        let (config, found) = parse_with(text, &FakeFs::default());
        assert_eq!(
            found,
            [
                "12:12: error: watch.local.bad.interval: bad duration \"5x\" (expected e.g. \"500ms\", \"2s\", \"5m\", \"1.5h\", \"1d\")",
                "13:11: error: watch.local.bad.timeout: expected a duration string such as \"5s\", \"500ms\" or \"1m30s\", found integer 3",
                "14:34: error: watch.local.bad.monitor.port: 70000 is out of range (expected 1 to 65535)",
                "15:10: error: watch.local.bad.alert[0]: unknown action \"lgo\"; did you mean \"log\"? (defined actions: log)",
                "19:11: error: virtual_servers.web.retries: expected an integer from 0 to 4294967295, found string \"two\"",
            ]
        );
        let config = config.expect("a model for the validator");
        assert!(config.watches["local"].services.contains_key("good"));
        assert!(config.watches["local"].services.contains_key("bad"));
        assert!(config.virtual_servers.contains_key("web"));
    }

    #[test]
    fn a_bad_value_is_reported_once_not_again_by_the_validator() {
        let text = "[hostgroups]\nlocal = [\"127.0.0.1\"]\n\
                    [watch.local.web]\ninterval = \"5x\"\nmonitor = { type = \"tcp\", port = \"80\" }\n";
        let error =
            compile_str(text, Path::new(FILE), Format::Toml, &FakeFs::default()).unwrap_err();
        let messages: Vec<String> = error.diagnostics.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            messages,
            [
                "/etc/keepmon/keepmon.toml:4:12: error: watch.local.web.interval: bad duration \"5x\" (expected e.g. \"500ms\", \"2s\", \"5m\", \"1.5h\", \"1d\")",
                "/etc/keepmon/keepmon.toml:5:34: error: watch.local.web.monitor.port: expected an integer, found string \"80\"",
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = parse_with(&text, &FakeFs::default());
        }

        #[test]
        fn never_panics_on_a_damaged_config(cut in 0..FULL.len(), len in 0usize..40, insert in "[\\[\\]{}=\"', 0-9a-z\\n]{0,6}") {
            let mut text = FULL.to_string();
            let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (start + len..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(start..end, &insert);
            let _ = parse_with(&text, &FakeFs::default());
        }
    }
}
