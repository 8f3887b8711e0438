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
//! structs below are its exact list of keys, and the tables beside them
//! the words that some keys accept.
//!
//! Every message starts with the dotted TOML path of the key it is about
//! (`watch.local.web.interval: bad duration "5x" ...`). Checks that need the
//! whole model (does `group:service` name a service, does a watch's group
//! exist) belong to [`crate::config::validate`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::config::FileSystem;
use crate::config::depend::{Expr, ServiceRef};
use crate::config::diag::{Diagnostic, Diagnostics, Location, Severity};
use crate::config::model::{
    Action, AdminState, AlertAfter, AlertEvery, AlertEveryMode, AlertLine, AuthType, BuiltinPolicy,
    Config, DataPlane, DepBehavior, ExitRange, Format, Forward, GarpSettings, HostGroup, HttpCheck,
    LbEdit, LbScheduler, MailAction, MailSettings, Monitor, Origin, PeriodBlock, PingCheck,
    Protocol, RealServer, Service, Settings, SmtpSettings, SmtpTls, TcpCheck, Thresholds,
    TrackTarget, VirtualAddress, VirtualServer, Vrid, VrrpInitialState, VrrpInstance, VrrpTrack,
    VrrpVersion, Watch,
};
use crate::config::settings;
use crate::config::values;
use crate::period::{Period, Schedule};

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

// ---------------------------------------------------------------------------
// Raw shapes: what serde reads, before any value is checked.
// ---------------------------------------------------------------------------

type Text = Spanned<String>;
type Int = Spanned<i64>;
type Dur = Spanned<DurationText>;

/// The top-level tables.
const TOP_LEVEL_KEYS: &[&str] = &[
    "daemon",
    "mon_protocol",
    "metrics",
    "lua",
    "mail",
    "hostgroups",
    "actions",
    "watch",
    "virtual_servers",
    "vrrp",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    statedir: Option<Text>,
    logdir: Option<Text>,
    control_socket: Option<Text>,
    pidfile: Option<Text>,
    maxprocs: Option<u32>,
    histlength: Option<u32>,
    randstart: Option<Dur>,
    monitor_timeout: Option<Dur>,
    shutdown_grace: Option<Dur>,
    builtin_monitors: Option<Text>,
    builtin_alerts: Option<Text>,
    alertdir: Option<Vec<Text>>,
    mondir: Option<Vec<Text>>,
    luadir: Option<Vec<Text>>,
    exclude_period: Option<Text>,
    dtlogging: Option<bool>,
    dtlogfile: Option<Text>,
    historicfile: Option<Text>,
    historictime: Option<Dur>,
    dep_recur_limit: Option<u32>,
    startupalerts_on_reset: Option<bool>,
    syslog_facility: Option<Text>,
    remove_kernel_tables_on_stop: Option<bool>,
}

const BUILTIN_POLICIES: &[(&str, BuiltinPolicy)] = &[
    ("prefer", BuiltinPolicy::Prefer),
    ("fallback", BuiltinPolicy::Fallback),
    ("never", BuiltinPolicy::Never),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonProtocol {
    listen: Option<Text>,
    trap_listen: Option<Text>,
    clientallow: Option<Vec<Text>>,
    cltimeout: Option<Dur>,
    authfile: Option<Text>,
    userfile: Option<Text>,
    authtype: Option<Vec<Text>>,
    pamservice: Option<String>,
}

const AUTH_TYPES: &[(&str, AuthType)] = &[
    ("userfile", AuthType::Userfile),
    ("getpwnam", AuthType::Getpwnam),
    ("pam", AuthType::Pam),
    ("trustlocal", AuthType::Trustlocal),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLua {
    timeout: Option<Dur>,
    instructions: Option<Int>,
    memory: Option<Spanned<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    from: Option<Text>,
    sendmail: Option<Text>,
    digest_window: Option<Dur>,
    max_age: Option<Dur>,
    retry_initial: Option<Dur>,
    retry_max: Option<Dur>,
    smtp: Option<Spanned<RawSmtp>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<Text>,
    port: Option<Int>,
    tls: Option<Text>,
    username: Option<String>,
    password: Option<String>,
    timeout: Option<Dur>,
    helo_name: Option<String>,
    ca_file: Option<Text>,
}

const SMTP_TLS_MODES: &[(&str, SmtpTls)] = &[
    ("none", SmtpTls::None),
    ("starttls", SmtpTls::StartTls),
    ("implicit", SmtpTls::Implicit),
];

const ACTION_TYPES: &[&str] = &["file", "mail", "exec", "lua", "lb"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    path: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    to: Option<Vec<Text>>,
    subject: Option<String>,
    from: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    command: Option<Text>,
    args: Option<Vec<String>>,
}

/// A `type = "lua"` action or monitor.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLuaCall {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    script: Option<Text>,
    args: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLbAction {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    #[serde(rename = "virtual")]
    virtual_addr: Option<Text>,
    real: Option<Text>,
    protocol: Option<Text>,
    weight: Option<u32>,
    forward: Option<Text>,
}

/// The service keys of `[watch.GROUP.SERVICE]` other than `monitor`,
/// `period` and the alert keys (those are read separately).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    description: Option<String>,
    interval: Option<Dur>,
    failure_interval: Option<Dur>,
    schedule: Option<Text>,
    randskew: Option<Dur>,
    timeout: Option<Dur>,
    allow_empty_group: Option<bool>,
    exclude_hosts: Option<Vec<String>>,
    exclude_period: Option<Text>,
    depend: Option<Text>,
    alertdepend: Option<Text>,
    monitordepend: Option<Text>,
    hostdepend: Option<Vec<Text>>,
    dep_behavior: Option<Text>,
    dep_memory: Option<Dur>,
    redistribute: Option<Spanned<AlertRef>>,
    unack_summary: Option<bool>,
    traptimeout: Option<Dur>,
    trapduration: Option<Dur>,
    env: Option<BTreeMap<Text, String>>,
    rise: Option<Int>,
    fall: Option<Int>,
}

const DEP_BEHAVIORS: &[(&str, DepBehavior)] = &[
    ("alert", DepBehavior::Alert),
    ("monitor", DepBehavior::Monitor),
    ("host", DepBehavior::HostMonitor),
    ("a", DepBehavior::Alert),
    ("m", DepBehavior::Monitor),
    ("hm", DepBehavior::HostMonitor),
];

/// Keys of a service that are not in [`RawService`].
const SERVICE_SUBTABLE_KEYS: &[&str] = &["monitor", "period"];

/// The alert keys: directly on a service (one implicit always-period) or in
/// each `[[watch.GROUP.SERVICE.period]]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlertKeys {
    alert: Option<Vec<Spanned<AlertRef>>>,
    upalert: Option<Vec<Spanned<AlertRef>>>,
    startupalert: Option<Vec<Spanned<AlertRef>>>,
    ackalert: Option<Vec<Spanned<AlertRef>>>,
    disablealert: Option<Vec<Spanned<AlertRef>>>,
    alertevery: Option<Spanned<Flexible<RawAlertEvery>>>,
    alertafter: Option<Spanned<Flexible<RawAlertAfter>>>,
    numalerts: Option<u32>,
    no_comp_alerts: Option<bool>,
    upalertafter: Option<Dur>,
    alerts_dont_count: Option<bool>,
    alertexitrange: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriodHead {
    spec: Option<Text>,
    label: Option<Text>,
}

/// One alert entry: `"name"` or `{ action = "name", exit = "1-5" }`.
type AlertRef = Flexible<RawAlertRef>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertRef {
    action: Option<Text>,
    exit: Option<Spanned<Scalar>>,
}

impl TableForm for RawAlertRef {
    const EXPECTING: &'static str =
        "an action name or a table { action = \"name\", exit = \"N-M\" }";
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertEvery {
    every: Option<Dur>,
    mode: Option<Text>,
}

impl TableForm for RawAlertEvery {
    const EXPECTING: &'static str =
        "a duration such as \"1h\" or a table { every = \"1h\", mode = \"summary\" }";
}

const ALERTEVERY_MODES: &[(&str, AlertEveryMode)] = &[
    ("summary", AlertEveryMode::Summary),
    ("observe_detail", AlertEveryMode::ObserveDetail),
    ("ignore_summary", AlertEveryMode::IgnoreSummary),
    ("strict", AlertEveryMode::Strict),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertAfter {
    count: Option<Int>,
    within: Option<Dur>,
}

impl TableForm for RawAlertAfter {
    const EXPECTING: &'static str =
        "a count, a duration such as \"10m\" or a table { count = 3, within = \"10m\" }";
}

const MONITOR_TYPES: &[&str] = &["tcp", "http", "https", "ping", "lua", "exec"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcpMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    send: Option<String>,
    expect: Option<Text>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    port: Option<Int>,
    method: Option<Text>,
    path: Option<Text>,
    host: Option<String>,
    status: Option<Vec<Spanned<Scalar>>>,
    body: Option<Text>,
    timeout: Option<Dur>,
    insecure: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPingMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    count: Option<Int>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecMonitor {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    command: Option<Text>,
    args: Option<Vec<String>>,
    hosts: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVirtualServer {
    listen: Option<Text>,
    protocol: Option<Text>,
    scheduler: Option<Text>,
    dataplane: Option<Text>,
    persistence: Option<Dur>,
    persistence_netmask: Option<Spanned<Scalar>>,
    sorry_server: Option<Text>,
    quorum: Option<u32>,
    hysteresis: Option<u32>,
    health: Option<Text>,
    retries: Option<u32>,
    connect_timeout: Option<Dur>,
    real_servers: Option<Vec<Spanned<RawRealServer>>>,
}

const PROTOCOLS: &[(&str, Protocol)] = &[("tcp", Protocol::Tcp), ("udp", Protocol::Udp)];

const DATAPLANES: &[(&str, DataPlane)] = &[
    ("proxy", DataPlane::Proxy),
    ("ipvs", DataPlane::Ipvs),
    ("nftables", DataPlane::Nftables),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealServer {
    addr: Option<Text>,
    host: Option<Text>,
    weight: Option<u32>,
    forward: Option<Text>,
    admin: Option<Text>,
    inhibit_on_failure: Option<bool>,
    upper_threshold: Option<Int>,
    lower_threshold: Option<Int>,
}

const ADMIN_STATES: &[(&str, AdminState)] = &[
    ("ready", AdminState::Ready),
    ("drain", AdminState::Drain),
    ("maint", AdminState::Maint),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVrrp {
    interface: Option<Text>,
    virtual_router_id: Option<Int>,
    priority: Option<Int>,
    advert_int: Option<Dur>,
    version: Option<Int>,
    state: Option<Text>,
    nopreempt: Option<bool>,
    preempt_delay: Option<Dur>,
    auth_pass: Option<Text>,
    virtual_ipaddress: Option<Vec<Text>>,
    unicast_src_ip: Option<Text>,
    unicast_peer: Option<Vec<Text>>,
    garp_master_delay: Option<Dur>,
    garp_master_repeat: Option<u32>,
    garp_master_refresh: Option<Dur>,
    track: Option<Vec<Spanned<RawTrack>>>,
    track_interface: Option<Vec<String>>,
    v3_checksum_as_v2: Option<bool>,
    notify: Option<Vec<Spanned<AlertRef>>>,
}

const VRRP_STATES: &[(&str, VrrpInitialState)] = &[
    ("BACKUP", VrrpInitialState::Backup),
    ("MASTER", VrrpInitialState::Master),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrack {
    service: Option<Text>,
    quorum: Option<Text>,
    weight: Option<Int>,
}

// ---------------------------------------------------------------------------
// The reader: raw → model, collecting diagnostics.
// ---------------------------------------------------------------------------

struct Reader<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    file: &'a Arc<Path>,
    fs: &'a dyn FileSystem,
    /// Relative paths in the config are relative to this directory.
    config_dir: PathBuf,
    found: Vec<Diagnostic>,
    /// Keys whose value serde rejected and [`Reader::read`] dropped. A later
    /// "missing key" about them would only repeat the error.
    rejected: HashSet<String>,
    actions: BTreeMap<String, Action>,
    /// Actions that are defined but could not be built; references to them
    /// are not reported again.
    broken_actions: BTreeSet<String>,
}

/// One definition in a table of named definitions (`[SECTION.NAME]`).
struct Entry<'v, 't> {
    name: String,
    /// `SECTION.NAME`.
    path: KeyPath,
    /// Where the name is written: the definition's origin, and the place of
    /// the "missing key" errors about it.
    at: usize,
    value: &'v Spanned<DeValue<'t>>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, file: &'a Arc<Path>, fs: &'a dyn FileSystem) -> Reader<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let config_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Reader {
            text,
            line_starts,
            file,
            fs,
            config_dir,
            found: Vec::new(),
            rejected: HashSet::new(),
            actions: BTreeMap::new(),
            broken_actions: BTreeSet::new(),
        }
    }

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
        Config {
            format: Format::Toml,
            source: self.file.to_path_buf(),
            settings,
            mail,
            hostgroups,
            aliases: BTreeMap::new(),
            views: BTreeMap::new(),
            watches,
            virtual_servers,
            vrrp,
        }
    }

    // ----- [daemon], [mon_protocol], [metrics], [lua], [mail] -----

    fn daemon(&mut self, raw: RawDaemon, s: &mut Settings) {
        let p = KeyPath::new("daemon");
        if let Some(dir) = self.path(raw.statedir.as_ref(), &p.key("statedir")) {
            // Everything that defaults to a place in statedir moves with it.
            s.logdir = dir.join("log");
            s.dtlogfile = s.logdir.join("downtime.log");
            s.control_socket = dir.join("keepmon.sock");
            s.statedir = dir;
        }
        if let Some(dir) = self.path(raw.logdir.as_ref(), &p.key("logdir")) {
            s.dtlogfile = dir.join("downtime.log");
            s.logdir = dir;
        }
        if let Some(path) = self.path(raw.control_socket.as_ref(), &p.key("control_socket")) {
            s.control_socket = path;
        }
        if let Some(path) = self.path(raw.pidfile.as_ref(), &p.key("pidfile")) {
            s.pidfile = Some(path);
        }
        s.maxprocs = raw.maxprocs.unwrap_or(s.maxprocs);
        if let Some(n) = raw.histlength {
            s.histlength = n as usize;
        }
        s.randstart = self.duration(raw.randstart.as_ref(), &p.key("randstart"));
        if let Some(d) =
            self.positive_duration(raw.monitor_timeout.as_ref(), &p.key("monitor_timeout"))
        {
            s.monitor_timeout = d;
        }
        if let Some(d) = self.duration(raw.shutdown_grace.as_ref(), &p.key("shutdown_grace")) {
            s.shutdown_grace = d;
        }
        if let Some(policy) =
            self.builtin_policy(raw.builtin_monitors.as_ref(), &p.key("builtin_monitors"))
        {
            s.builtin_monitors = policy;
        }
        if let Some(policy) =
            self.builtin_policy(raw.builtin_alerts.as_ref(), &p.key("builtin_alerts"))
        {
            s.builtin_alerts = policy;
        }
        if let Some(dirs) = self.paths(raw.alertdir.as_deref(), &p.key("alertdir")) {
            s.alertdir = dirs;
        }
        if let Some(dirs) = self.paths(raw.mondir.as_deref(), &p.key("mondir")) {
            s.mondir = dirs;
        }
        if let Some(dirs) = self.paths(raw.luadir.as_deref(), &p.key("luadir")) {
            s.luadir = dirs;
        }
        s.exclude_period = self.period(raw.exclude_period.as_ref(), &p.key("exclude_period"));
        s.dtlogging = raw.dtlogging.unwrap_or(s.dtlogging);
        if let Some(path) = self.path(raw.dtlogfile.as_ref(), &p.key("dtlogfile")) {
            s.dtlogfile = path;
        }
        s.historicfile = self.path(raw.historicfile.as_ref(), &p.key("historicfile"));
        s.historictime = self.duration(raw.historictime.as_ref(), &p.key("historictime"));
        s.dep_recur_limit = raw.dep_recur_limit.unwrap_or(s.dep_recur_limit);
        s.startupalerts_on_reset = raw
            .startupalerts_on_reset
            .unwrap_or(s.startupalerts_on_reset);
        s.remove_kernel_tables_on_stop = raw
            .remove_kernel_tables_on_stop
            .unwrap_or(s.remove_kernel_tables_on_stop);
        if let Some(facility) = &raw.syslog_facility {
            match SYSLOG_FACILITIES
                .iter()
                .find(|f| f.eq_ignore_ascii_case(facility.get_ref()))
            {
                Some(f) => s.syslog_facility = f.to_string(),
                None => self.unknown_word(
                    facility,
                    &p.key("syslog_facility"),
                    "syslog facility",
                    SYSLOG_FACILITIES,
                ),
            }
        }
    }

    fn builtin_policy(&mut self, value: Option<&Text>, path: &str) -> Option<BuiltinPolicy> {
        self.choice(value, path, "policy", BUILTIN_POLICIES)
    }

    fn mon_protocol(&mut self, raw: RawMonProtocol, s: &mut Settings) {
        let p = KeyPath::new("mon_protocol");
        s.mon_listener = Some(
            self.socket_addr(raw.listen.as_ref(), &p.key("listen"), None)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], settings::MON_PORT))),
        );
        s.trap_listener = self.socket_addr(raw.trap_listen.as_ref(), &p.key("trap_listen"), None);
        for (i, pattern) in raw.clientallow.iter().flatten().enumerate() {
            if self.regex(pattern, &p.at_key("clientallow", i)) {
                s.clientallow.push(pattern.get_ref().clone());
            }
        }
        if let Some(d) = self.positive_duration(raw.cltimeout.as_ref(), &p.key("cltimeout")) {
            s.cltimeout = d;
        }
        if let Some(path) = self.path(raw.authfile.as_ref(), &p.key("authfile")) {
            s.auth.authfile = path;
        }
        if let Some(path) = self.path(raw.userfile.as_ref(), &p.key("userfile")) {
            s.auth.userfile = path;
        }
        if let Some(types) = &raw.authtype {
            s.auth.authtype = types
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    self.choice(Some(t), &p.at_key("authtype", i), "authtype", AUTH_TYPES)
                })
                .collect();
        }
        if let Some(service) = raw.pamservice {
            s.auth.pamservice = service;
        }
    }

    /// `listen` of a section that exists only to listen somewhere.
    fn required_listen(
        &mut self,
        listen: Option<Text>,
        section: &str,
        root: &DeTable<'_>,
    ) -> Option<SocketAddr> {
        let path = KeyPath::new(section);
        if listen.is_none() {
            let at = root
                .get_key_value(section)
                .map_or(0, |(k, _)| k.span().start);
            self.missing(at, &path, "listen", "e.g. listen = \"127.0.0.1:9583\"");
        }
        self.socket_addr(listen.as_ref(), &path.key("listen"), None)
    }

    fn lua(&mut self, raw: RawLua, s: &mut Settings) {
        let p = KeyPath::new("lua");
        if let Some(d) = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout")) {
            s.lua.timeout = d;
        }
        if let Some(n) = self.int_in::<u64>(
            raw.instructions.as_ref(),
            &p.key("instructions"),
            1,
            i64::MAX,
        ) {
            s.lua.instructions = n;
        }
        if let Some(memory) = &raw.memory {
            let path = p.key("memory");
            let bytes = match memory.get_ref() {
                Scalar::Integer(n) => u64::try_from(*n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("{n} is out of range (expected a positive number of bytes)")
                }),
                Scalar::Text(text) => parse_size(text),
            };
            let bytes = bytes
                .and_then(|b| usize::try_from(b).map_err(|_| format!("{b} bytes is too large")));
            if let Some(b) = self.ok_or_report(bytes, memory.span().start, &path) {
                s.lua.memory_bytes = b;
            }
        }
    }

    fn mail(&mut self, raw: RawMail, mail: &mut MailSettings) {
        let p = KeyPath::new("mail");
        if let Some(from) = &raw.from
            && self.mail_address(from, &p.key("from"))
        {
            mail.from = Some(from.get_ref().clone());
        }
        if let Some(path) = self.path(raw.sendmail.as_ref(), &p.key("sendmail")) {
            mail.sendmail = Some(path);
        }
        mail.digest_window = self.duration(raw.digest_window.as_ref(), &p.key("digest_window"));
        if let Some(d) = self.positive_duration(raw.max_age.as_ref(), &p.key("max_age")) {
            mail.max_age = d;
        }
        if let Some(d) = self.positive_duration(raw.retry_initial.as_ref(), &p.key("retry_initial"))
        {
            mail.retry_initial = d;
        }
        if let Some(d) = self.positive_duration(raw.retry_max.as_ref(), &p.key("retry_max")) {
            mail.retry_max = d;
        }
        if mail.retry_max < mail.retry_initial
            && let Some(at) = raw.retry_max.as_ref().or(raw.retry_initial.as_ref())
        {
            self.error(
                at.span().start,
                format!(
                    "{p}: retry_max ({}s) is shorter than retry_initial ({}s)",
                    mail.retry_max.as_secs_f64(),
                    mail.retry_initial.as_secs_f64()
                ),
            );
        }
        if let Some(smtp) = &raw.smtp {
            mail.smtp = self.smtp(smtp, &p.child("smtp"));
        }
    }

    fn smtp(&mut self, raw: &Spanned<RawSmtp>, p: &KeyPath) -> Option<SmtpSettings> {
        let at = raw.span().start;
        let raw = raw.get_ref();
        let tls = self
            .choice(raw.tls.as_ref(), &p.key("tls"), "tls mode", SMTP_TLS_MODES)
            .unwrap_or(SmtpTls::None);
        let default_port = match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
        };
        let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
        let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
        let ca_file = self.path(raw.ca_file.as_ref(), &p.key("ca_file"));
        if raw.password.is_some() && raw.username.is_none() {
            self.error(at, format!("{p}: password is set but username is not"));
        }
        if raw.username.is_some() && raw.password.is_none() {
            self.error(at, format!("{p}: username is set but password is not"));
        }
        if raw.username.is_some() && tls == SmtpTls::None {
            self.warning(
                at,
                format!("{p}: the password is sent in clear text because tls = \"none\"; use \"starttls\" or \"implicit\""),
            );
        }
        let Some(host) = &raw.host else {
            self.missing(
                at,
                p,
                "host",
                "the SMTP relay, e.g. host = \"mail.example.com\"",
            );
            return None;
        };
        if self.blank(host, &p.key("host"), "host name") {
            return None;
        }
        Some(SmtpSettings {
            host: host.get_ref().clone(),
            port: port.unwrap_or(default_port),
            tls,
            username: raw.username.clone(),
            password: raw.password.clone(),
            timeout: timeout.unwrap_or(Duration::from_secs(30)),
            helo_name: raw.helo_name.clone(),
            ca_file,
        })
    }

    // ----- [hostgroups] -----

    fn hostgroups(&mut self, value: &Spanned<DeValue<'_>>) -> BTreeMap<String, HostGroup> {
        let mut groups = BTreeMap::new();
        let entries = self.entries(
            value,
            &KeyPath::new("hostgroups"),
            "a table of hostgroups (name = [hosts])",
        );
        for group in entries.unwrap_or_default() {
            self.tag(&group, "hostgroup");
            // A group whose list is bad still exists (empty), so the watches
            // on it do not report a second, misleading error.
            let hosts = self
                .read::<Vec<Text>>(group.value, &group.path)
                .unwrap_or_default();
            let mut checked = Vec::new();
            for (i, host) in hosts.iter().enumerate() {
                let h = host.get_ref();
                if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    self.error(
                        host.span().start,
                        format!("{}: bad host name {h:?}", group.path.at(i)),
                    );
                } else {
                    checked.push(h.clone());
                }
            }
            groups.insert(
                group.name.clone(),
                HostGroup {
                    name: group.name,
                    hosts: checked,
                    implicit: false,
                    origin: Origin(self.location(group.at)),
                },
            );
        }
        groups
    }

    // ----- [actions.NAME] -----

    fn actions(&mut self, value: &Spanned<DeValue<'_>>, settings: &Settings) {
        let entries = self.entries(
            value,
            &KeyPath::new("actions"),
            "a table of actions ([actions.NAME])",
        );
        for entry in entries.unwrap_or_default() {
            match self.action(entry.value, &entry.path, entry.at, settings) {
                Some(action) => {
                    self.actions.insert(entry.name, action);
                }
                None => {
                    self.broken_actions.insert(entry.name);
                }
            }
        }
    }

    fn action(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        at: usize,
        settings: &Settings,
    ) -> Option<Action> {
        let kind = self.type_key(value, p, at, "action type", ACTION_TYPES)?;
        match kind.as_str() {
            "file" => {
                let raw = self.read::<RawFileAction>(value, p)?;
                let path = self.required(
                    raw.path.as_ref(),
                    at,
                    p,
                    "path",
                    "e.g. path = \"state/alerts.log\"",
                )?;
                let path = self.path(Some(path), &p.key("path"))?;
                Some(Action::File { path })
            }
            "mail" => {
                let raw = self.read::<RawMailAction>(value, p)?;
                let to = self.required(
                    raw.to.as_ref(),
                    at,
                    p,
                    "to",
                    "e.g. to = [\"ops@example.com\"]",
                )?;
                let mut ok = true;
                if to.is_empty() {
                    self.error(at, format!("{}: needs at least one recipient", p.key("to")));
                    ok = false;
                }
                for (i, address) in to.iter().enumerate() {
                    ok &= self.mail_address(address, &p.at_key("to", i));
                }
                if let Some(from) = &raw.from {
                    ok &= self.mail_address(from, &p.key("from"));
                }
                ok.then(|| {
                    Action::Mail(MailAction {
                        to: to.iter().map(|t| t.get_ref().clone()).collect(),
                        subject: raw.subject.clone(),
                        from: raw.from.as_ref().map(|f| f.get_ref().clone()),
                    })
                })
            }
            "exec" => {
                let raw = self.read::<RawExecAction>(value, p)?;
                let command = self.required(
                    raw.command.as_ref(),
                    at,
                    p,
                    "command",
                    "a script in alertdir or a path",
                )?;
                let path = self.find_script(command, &p.key("command"), &settings.alertdir)?;
                let path = match path {
                    Ok(path) => path,
                    Err(searched) => {
                        self.error(
                            command.span().start,
                            format!(
                                "{}: alert script {:?} not found (searched {searched})",
                                p.key("command"),
                                command.get_ref()
                            ),
                        );
                        return None;
                    }
                };
                Some(Action::Exec {
                    path,
                    args: raw.args.unwrap_or_default(),
                })
            }
            "lua" => {
                let (script, args) =
                    self.lua_call(value, p, at, "the name of a Lua alert", settings)?;
                Some(Action::Lua { script, args })
            }
            "lb" => {
                let raw = self.read::<RawLbAction>(value, p)?;
                self.lb_edit(&raw, p, at).map(Action::Lb)
            }
            _ => None,
        }
    }

    fn lb_edit(&mut self, raw: &RawLbAction, p: &KeyPath, at: usize) -> Option<LbEdit> {
        let protocol = self.protocol(raw.protocol.as_ref(), &p.key("protocol"));
        let forward = raw
            .forward
            .as_ref()
            .map(|f| self.forward(f, &p.key("forward")));
        let virtual_text = self.required(
            raw.virtual_addr.as_ref(),
            at,
            p,
            "virtual",
            "e.g. virtual = \"10.0.0.1:80\"",
        );
        let real_text = self.required(raw.real.as_ref(), at, p, "real", "e.g. real = \"10.0.0.2\"");
        let virtual_addr = self.socket_addr(virtual_text, &p.key("virtual"), None);
        let real = match real_text {
            Some(text) => self.host_port(text, &p.key("real")),
            None => None,
        };
        let (virtual_addr, (real_addr, real_port)) = (virtual_addr?, real?);
        // A bad forward was reported; no edit without it.
        let forward = match forward {
            Some(f) => Some(f?),
            None => None,
        };
        Some(LbEdit {
            protocol: protocol.unwrap_or(Protocol::Tcp),
            virtual_addr,
            real_addr,
            real_port,
            weight: raw.weight,
            forward,
        })
    }

    // ----- [watch.GROUP.SERVICE] -----

    fn watches(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        settings: &Settings,
    ) -> BTreeMap<String, Watch> {
        let mut watches = BTreeMap::new();
        let groups = self.entries(
            value,
            &KeyPath::new("watch"),
            "a table of watches ([watch.GROUP.SERVICE])",
        );
        for group in groups.unwrap_or_default() {
            self.tag(&group, "group");
            let Some(entries) = self.entries(
                group.value,
                &group.path,
                "a table of services ([watch.GROUP.SERVICE])",
            ) else {
                continue;
            };
            let mut services = BTreeMap::new();
            for entry in entries {
                self.tag(&entry, "service");
                if let Some(service) =
                    self.service(&group.name, &entry.name, entry.value, entry.at, settings)
                {
                    services.insert(entry.name, service);
                }
            }
            watches.insert(
                group.name.clone(),
                Watch {
                    group: group.name,
                    services,
                    origin: Origin(self.location(group.at)),
                },
            );
        }
        watches
    }

    fn service(
        &mut self,
        group: &str,
        name: &str,
        value: &Spanned<DeValue<'_>>,
        at: usize,
        settings: &Settings,
    ) -> Option<Service> {
        let p = KeyPath::new("watch").child(group).child(name);
        let table = self.table(value, &p, "a table of service keys")?;
        let service_keys = keys_of::<RawService>();
        let alert_keys = keys_of::<RawAlertKeys>();
        let known: Vec<&str> = service_keys
            .iter()
            .chain(SERVICE_SUBTABLE_KEYS)
            .chain(alert_keys)
            .copied()
            .collect();
        let table = self.unknown_keys(table, &p, &known);
        let raw = self.read::<RawService>(&subtable(&table, value.span(), service_keys), &p)?;
        let direct_alerts = alert_keys.iter().any(|k| table.contains_key(*k));
        let direct = if direct_alerts {
            self.read::<RawAlertKeys>(&subtable(&table, value.span(), alert_keys), &p)
        } else {
            None
        };

        let interval = self.positive_duration(raw.interval.as_ref(), &p.key("interval"));
        let schedule = raw.schedule.as_ref().and_then(|s| {
            self.ok_or_report(
                Schedule::parse(s.get_ref()),
                s.span().start,
                &p.key("schedule"),
            )
        });
        let monitor = table.get("monitor").map(|m| {
            self.monitor(m, &p.child("monitor"), settings)
                .unwrap_or_else(stand_in_monitor)
        });
        let depend = self.depend(raw.depend.as_ref(), &p.key("depend"), group);
        let alertdepend = self.depend(raw.alertdepend.as_ref(), &p.key("alertdepend"), group);
        let monitordepend = self.depend(raw.monitordepend.as_ref(), &p.key("monitordepend"), group);
        let hostdepend = raw
            .hostdepend
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, r)| {
                self.service_ref(r, &p.at_key("hostdepend", i))
                    .map(|r| r.resolve_self(group))
            })
            .collect();
        let dep_behavior = self
            .choice(
                raw.dep_behavior.as_ref(),
                &p.key("dep_behavior"),
                "dep_behavior",
                DEP_BEHAVIORS,
            )
            .unwrap_or(DepBehavior::Alert);
        let redistribute = raw
            .redistribute
            .as_ref()
            .and_then(|r| self.alert_line(r, &p.key("redistribute")));
        let mut env = BTreeMap::new();
        for (var, value) in raw.env.iter().flatten() {
            if is_env_name(var.get_ref()) {
                env.insert(var.get_ref().clone(), value.clone());
            } else {
                self.error(
                    var.span().start,
                    format!(
                        "{}: environment variable name {:?} must match [A-Z_][A-Z0-9_]*",
                        p.child("env").child(var.get_ref()),
                        var.get_ref()
                    ),
                );
            }
        }

        let mut periods = Vec::new();
        if let Some(direct) = direct {
            periods.push(self.period_block(
                String::new(),
                Period::always(),
                direct,
                &p,
                interval,
                at,
            ));
        }
        if let Some((period_key, period_value)) = table.get_key_value("period") {
            if direct_alerts {
                // Read the periods anyway, so their own errors show up too.
                periods.clear();
                let keys: Vec<&str> = alert_keys
                    .iter()
                    .copied()
                    .filter(|k| table.contains_key(*k))
                    .collect();
                self.error(
                    period_key.span().start,
                    format!(
                        "{p}: alert keys ({}) are set directly on the service and [[{}]] tables exist too; \
                         move them into the period tables",
                        keys.join(", "),
                        p.child("period")
                    ),
                );
            }
            self.periods(period_value, &p, interval, &mut periods);
        }

        // A bad interval or schedule still counts as "polled", so the
        // validator does not add "has a monitor but no interval" to the
        // real error.
        let written_but_bad = (raw.interval.is_some() && interval.is_none())
            || (raw.schedule.is_some() && schedule.is_none());
        let interval = match interval {
            None if written_but_bad => Some(STAND_IN_INTERVAL),
            interval => interval,
        };
        Some(Service {
            group: group.to_string(),
            name: name.to_string(),
            description: raw.description,
            interval,
            failure_interval: self
                .positive_duration(raw.failure_interval.as_ref(), &p.key("failure_interval")),
            schedule,
            randskew: self.duration(raw.randskew.as_ref(), &p.key("randskew")),
            monitor,
            timeout: self.positive_duration(raw.timeout.as_ref(), &p.key("timeout")),
            allow_empty_group: raw.allow_empty_group.unwrap_or(false),
            exclude_hosts: raw.exclude_hosts.unwrap_or_default(),
            exclude_period: self.period(raw.exclude_period.as_ref(), &p.key("exclude_period")),
            depend,
            alertdepend,
            monitordepend,
            hostdepend,
            dep_behavior,
            dep_memory: self.duration(raw.dep_memory.as_ref(), &p.key("dep_memory")),
            redistribute,
            unack_summary: raw.unack_summary.unwrap_or(false),
            traptimeout: self.positive_duration(raw.traptimeout.as_ref(), &p.key("traptimeout")),
            trapduration: self.duration(raw.trapduration.as_ref(), &p.key("trapduration")),
            env,
            rise: self
                .int_in::<u32>(raw.rise.as_ref(), &p.key("rise"), 1, u32::MAX.into())
                .unwrap_or(1),
            fall: self
                .int_in::<u32>(raw.fall.as_ref(), &p.key("fall"), 1, u32::MAX.into())
                .unwrap_or(1),
            periods,
            origin: Origin(self.location(at)),
        })
    }

    fn depend(&mut self, value: Option<&Text>, path: &str, group: &str) -> Option<Expr> {
        let value = value?;
        match Expr::parse(value.get_ref()) {
            Ok(parsed) => {
                if parsed.legacy_space_separated {
                    self.warning(
                        value.span().start,
                        format!(
                            "{path}: {:?} has services with no operator between them; they are read as AND, \
                             write \"&&\" between them",
                            value.get_ref()
                        ),
                    );
                }
                Some(parsed.expr.resolve_self(group))
            }
            Err(e) => {
                self.error(
                    value.span().start,
                    format!("{path}: {e} in {:?}", value.get_ref()),
                );
                None
            }
        }
    }

    fn periods(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        interval: Option<Duration>,
        periods: &mut Vec<PeriodBlock>,
    ) {
        let period_path = p.child("period");
        let DeValue::Array(array) = value.get_ref() else {
            self.error(
                value.span().start,
                format!(
                    "{period_path}: expected an array of tables (write [[{period_path}]] for each period), found {}",
                    value.get_ref().type_str()
                ),
            );
            return;
        };
        let head_keys = keys_of::<RawPeriodHead>();
        let alert_keys = keys_of::<RawAlertKeys>();
        let known: Vec<&str> = head_keys.iter().chain(alert_keys).copied().collect();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (i, element) in array.iter().enumerate() {
            let path = p.index("period", i);
            let Some(table) = self.table(element, &path, "a table of period keys") else {
                continue;
            };
            let table = self.unknown_keys(table, &path, &known);
            let span = element.span();
            let Some(head) =
                self.read::<RawPeriodHead>(&subtable(&table, span.clone(), head_keys), &path)
            else {
                continue;
            };
            let alerts = self
                .read::<RawAlertKeys>(&subtable(&table, span.clone(), alert_keys), &path)
                .unwrap_or_default();
            let spec = match &head.spec {
                Some(spec) => self
                    .period(Some(spec), &path.key("spec"))
                    .unwrap_or_else(Period::always),
                None => Period::always(),
            };
            let key = match (&head.label, &head.spec) {
                (Some(label), _) => {
                    // An empty label is an error, but the period keeps it.
                    self.blank(label, &path.key("label"), "label");
                    label.get_ref().clone()
                }
                (None, Some(spec)) => spec.get_ref().trim().to_string(),
                (None, None) => String::new(),
            };
            // When spec or label was rejected the key is unknown: no guess.
            let key_known = !self.rejected.contains(&path.key("spec"))
                && !self.rejected.contains(&path.key("label"));
            if let Some((_, first)) = seen.iter().find(|(k, _)| key_known && *k == key) {
                let shown = if key.is_empty() {
                    "(always)"
                } else {
                    key.as_str()
                };
                self.error(
                    span.start,
                    format!(
                        "{path}: duplicate period {shown:?} (also {}); give one of them a distinct label",
                        p.index("period", *first)
                    ),
                );
            }
            if key_known {
                seen.push((key.clone(), i));
            }
            periods.push(self.period_block(key, spec, alerts, &path, interval, span.start));
        }
    }

    fn period_block(
        &mut self,
        key: String,
        spec: Period,
        raw: RawAlertKeys,
        p: &KeyPath,
        interval: Option<Duration>,
        at: usize,
    ) -> PeriodBlock {
        PeriodBlock {
            key,
            spec,
            alerts: self.alert_lines(raw.alert.as_deref(), p, "alert"),
            upalerts: self.alert_lines(raw.upalert.as_deref(), p, "upalert"),
            startupalerts: self.alert_lines(raw.startupalert.as_deref(), p, "startupalert"),
            ackalerts: self.alert_lines(raw.ackalert.as_deref(), p, "ackalert"),
            disablealerts: self.alert_lines(raw.disablealert.as_deref(), p, "disablealert"),
            alertevery: raw
                .alertevery
                .as_ref()
                .and_then(|v| self.alertevery(v, &p.key("alertevery"))),
            alertafter: raw
                .alertafter
                .as_ref()
                .and_then(|v| self.alertafter(v, &p.key("alertafter"), interval)),
            numalerts: raw.numalerts,
            no_comp_alerts: raw.no_comp_alerts.unwrap_or(false),
            upalertafter: self.positive_duration(raw.upalertafter.as_ref(), &p.key("upalertafter")),
            alerts_dont_count: raw.alerts_dont_count.unwrap_or(false),
            alertexitrange: raw.alertexitrange.as_ref().and_then(|r| {
                let range = values::parse_exit_range(r.get_ref());
                self.ok_or_report(range, r.span().start, &p.key("alertexitrange"))
            }),
            origin: Origin(self.location(at)),
        }
    }

    fn alert_lines(
        &mut self,
        list: Option<&[Spanned<AlertRef>]>,
        p: &KeyPath,
        key: &str,
    ) -> Vec<AlertLine> {
        list.unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| self.alert_line(entry, &p.at_key(key, i)))
            .collect()
    }

    /// One alert entry, resolved against `[actions]`.
    fn alert_line(&mut self, entry: &Spanned<AlertRef>, path: &str) -> Option<AlertLine> {
        let (name, exit) = match entry.get_ref() {
            Flexible::Text(name) => (Spanned::new(entry.span(), name.clone()), None),
            Flexible::Table(table) => {
                let exit = match &table.exit {
                    Some(exit) => Some(self.exit_range(exit, &format!("{path}.exit"))?),
                    None => None,
                };
                let Some(action) = &table.action else {
                    self.error(
                        entry.span().start,
                        format!(
                            "{path}: missing key \"action\" (the name of an action in [actions])"
                        ),
                    );
                    return None;
                };
                (action.clone(), exit)
            }
            Flexible::Integer(n) => {
                self.error(
                    entry.span().start,
                    format!(
                        "{path}: expected {}, found integer {n}",
                        RawAlertRef::EXPECTING
                    ),
                );
                return None;
            }
        };
        if let Some(action) = self.actions.get(name.get_ref()) {
            return Some(AlertLine {
                name: name.get_ref().clone(),
                exit,
                action: action.clone(),
            });
        }
        if !self.broken_actions.contains(name.get_ref()) {
            let defined: Vec<&str> = self
                .actions
                .keys()
                .chain(&self.broken_actions)
                .map(String::as_str)
                .collect();
            let message = if defined.is_empty() {
                format!(
                    "{path}: unknown action {:?} (no actions are defined; add an [actions.{}] table)",
                    name.get_ref(),
                    quote_key(name.get_ref())
                )
            } else {
                format!(
                    "{path}: unknown action {:?}{} (defined actions: {})",
                    name.get_ref(),
                    did_you_mean(name.get_ref(), &defined),
                    defined.join(", ")
                )
            };
            self.error(name.span().start, message);
        }
        None
    }

    fn exit_range(&mut self, value: &Spanned<Scalar>, path: &str) -> Option<ExitRange> {
        let result = match value.get_ref() {
            Scalar::Integer(n) => i32::try_from(*n)
                .map(|n| ExitRange { low: n, high: n })
                .map_err(|_| format!("{n} is not an exit value")),
            Scalar::Text(text) => values::parse_exit_range(text),
        };
        self.ok_or_report(result, value.span().start, path)
    }

    fn alertevery(
        &mut self,
        value: &Spanned<Flexible<RawAlertEvery>>,
        path: &str,
    ) -> Option<AlertEvery> {
        let at = value.span().start;
        let (every, mode) = match value.get_ref() {
            Flexible::Text(text) => (Spanned::new(value.span(), DurationText(text.clone())), None),
            Flexible::Table(table) => {
                let Some(every) = &table.every else {
                    if !self.rejected.contains(&format!("{path}.every")) {
                        self.error(
                            at,
                            format!("{path}: missing key \"every\" (e.g. every = \"1h\")"),
                        );
                    }
                    return None;
                };
                (every.clone(), table.mode.as_ref())
            }
            Flexible::Integer(n) => {
                self.error(
                    at,
                    format!(
                        "{path}: expected {}, found integer {n}",
                        RawAlertEvery::EXPECTING
                    ),
                );
                return None;
            }
        };
        let mode = self
            .choice(mode, &format!("{path}.mode"), "mode", ALERTEVERY_MODES)
            .unwrap_or(AlertEveryMode::Summary);
        let every = self.positive_duration(Some(&every), path)?;
        Some(AlertEvery { every, mode })
    }

    fn alertafter(
        &mut self,
        value: &Spanned<Flexible<RawAlertAfter>>,
        path: &str,
        interval: Option<Duration>,
    ) -> Option<AlertAfter> {
        let at = value.span().start;
        match value.get_ref() {
            Flexible::Integer(n) => {
                let count = self.int_in::<u32>(
                    Some(&Spanned::new(value.span(), *n)),
                    path,
                    1,
                    u32::MAX.into(),
                )?;
                Some(AlertAfter::Consecutive(count))
            }
            Flexible::Text(text) => {
                let d = Spanned::new(value.span(), DurationText(text.clone()));
                self.positive_duration(Some(&d), path)
                    .map(AlertAfter::Duration)
            }
            Flexible::Table(table) => {
                let count_path = format!("{path}.count");
                let count =
                    self.int_in::<u32>(table.count.as_ref(), &count_path, 1, u32::MAX.into());
                let window =
                    self.positive_duration(table.within.as_ref(), &format!("{path}.within"));
                if table.count.is_none() {
                    if !self.rejected.contains(&count_path) {
                        let hint = if table.within.is_some() {
                            "; for \"failing for longer than T\" write alertafter = \"T\""
                        } else {
                            ""
                        };
                        self.error(at, format!("{path}: missing key \"count\"{hint}"));
                    }
                    return None;
                }
                let count = count?;
                let Some(within) = &table.within else {
                    return Some(AlertAfter::Consecutive(count));
                };
                let window = window?;
                if let Some(interval) = interval {
                    let earliest = interval.saturating_mul(count - 1);
                    if earliest >= window {
                        self.error(
                            within.span().start,
                            format!(
                                "{path}: {count} failures within {} is not sensible: at interval {} \
                                 they take at least {}; widen within or lower count",
                                show_duration(window),
                                show_duration(interval),
                                show_duration(earliest)
                            ),
                        );
                        return None;
                    }
                }
                Some(AlertAfter::Window { count, window })
            }
        }
    }

    // ----- monitors -----

    fn monitor(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        settings: &Settings,
    ) -> Option<Monitor> {
        let at = value.span().start;
        let kind = self.type_key(value, p, at, "monitor type", MONITOR_TYPES)?;
        match kind.as_str() {
            "tcp" => {
                let raw = self.read::<RawTcpMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                let expect_ok = raw
                    .expect
                    .as_ref()
                    .is_none_or(|e| self.regex(e, &p.key("expect")));
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                if raw.port.is_none() {
                    self.missing(at, p, "port", "e.g. port = 80");
                }
                let port = port?;
                expect_ok.then(|| {
                    Monitor::Tcp(TcpCheck {
                        port,
                        send: raw.send,
                        expect: raw.expect.map(Spanned::into_inner),
                        timeout: timeout.unwrap_or(Duration::from_secs(5)),
                    })
                })
            }
            "http" | "https" => {
                let tls = kind == "https";
                let raw = self.read::<RawHttpMonitor>(value, p)?;
                let port = self.int_in::<u16>(raw.port.as_ref(), &p.key("port"), 1, 65535);
                let mut ok = raw.port.is_none() || port.is_some();
                let method = match &raw.method {
                    Some(m) if is_http_token(m.get_ref()) => m.get_ref().to_ascii_uppercase(),
                    Some(m) => {
                        self.error(
                            m.span().start,
                            format!("{}: bad HTTP method {:?}", p.key("method"), m.get_ref()),
                        );
                        ok = false;
                        String::new()
                    }
                    None => "GET".to_string(),
                };
                let path = match &raw.path {
                    Some(path)
                        if path.get_ref().starts_with('/')
                            && !path.get_ref().contains(char::is_whitespace) =>
                    {
                        path.get_ref().clone()
                    }
                    Some(path) => {
                        self.error(
                            path.span().start,
                            format!(
                                "{}: {:?} must start with \"/\" and contain no spaces",
                                p.key("path"),
                                path.get_ref()
                            ),
                        );
                        ok = false;
                        String::new()
                    }
                    None => "/".to_string(),
                };
                let mut status = Vec::new();
                for (i, s) in raw.status.iter().flatten().enumerate() {
                    let range = status_range(s.get_ref());
                    match self.ok_or_report(range, s.span().start, &p.at_key("status", i)) {
                        Some(range) => status.push(range),
                        None => ok = false,
                    }
                }
                if raw.status.as_ref().is_some_and(Vec::is_empty) {
                    self.error(
                        at,
                        format!(
                            "{}: empty list (leave it out to accept 200-299)",
                            p.key("status")
                        ),
                    );
                    ok = false;
                }
                if status.is_empty() {
                    status.push((200, 299));
                }
                if let Some(body) = &raw.body {
                    ok &= self.regex(body, &p.key("body"));
                }
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                if let Some(insecure) = &raw.insecure
                    && *insecure.get_ref()
                    && !tls
                {
                    self.warning(
                        insecure.span().start,
                        format!("{}: has no effect with type = \"http\" (it only skips certificate checks for https)", p.key("insecure")),
                    );
                }
                ok.then(|| {
                    Monitor::Http(HttpCheck {
                        tls,
                        port: port.unwrap_or(if tls { 443 } else { 80 }),
                        method,
                        path,
                        host_header: raw.host,
                        status,
                        body: raw.body.map(Spanned::into_inner),
                        timeout: timeout.unwrap_or(Duration::from_secs(10)),
                        insecure: raw.insecure.is_some_and(|i| i.into_inner()),
                    })
                })
            }
            "ping" => {
                let raw = self.read::<RawPingMonitor>(value, p)?;
                let count = self.int_in::<u32>(raw.count.as_ref(), &p.key("count"), 1, 100);
                let timeout = self.positive_duration(raw.timeout.as_ref(), &p.key("timeout"));
                if raw.count.is_some() && count.is_none() {
                    return None;
                }
                Some(Monitor::Ping(PingCheck {
                    count: count.unwrap_or(3),
                    timeout: timeout.unwrap_or(Duration::from_secs(5)),
                }))
            }
            "lua" => {
                let (script, args) =
                    self.lua_call(value, p, at, "the name of a Lua monitor", settings)?;
                Some(Monitor::Lua { script, args })
            }
            "exec" => {
                let raw = self.read::<RawExecMonitor>(value, p)?;
                let command = self.required(
                    raw.command.as_ref(),
                    at,
                    p,
                    "command",
                    "e.g. command = \"tcp.monitor\"",
                )?;
                let path = match self.find_script(command, &p.key("command"), &settings.mondir)? {
                    Ok(path) => Some(path),
                    Err(searched) => {
                        self.warning(
                            command.span().start,
                            format!(
                                "{}: monitor script {:?} not found (searched {searched}); the service reports a config error until it exists",
                                p.key("command"),
                                command.get_ref()
                            ),
                        );
                        None
                    }
                };
                Some(Monitor::Exec {
                    name: command.get_ref().clone(),
                    args: raw.args.unwrap_or_default(),
                    append_hosts: raw.hosts.unwrap_or(true),
                    path,
                })
            }
            _ => None,
        }
    }

    // ----- [virtual_servers.NAME] -----

    fn virtual_server(
        &mut self,
        name: &str,
        raw: RawVirtualServer,
        p: &KeyPath,
        at: usize,
    ) -> Option<VirtualServer> {
        let listen_text = self.required(
            raw.listen.as_ref(),
            at,
            p,
            "listen",
            "e.g. listen = \"127.0.0.1:8080\"",
        );
        let listen = self.socket_addr(listen_text, &p.key("listen"), None);
        let protocol = self
            .protocol(raw.protocol.as_ref(), &p.key("protocol"))
            .unwrap_or(Protocol::Tcp);
        let scheduler = match &raw.scheduler {
            Some(s) => match LbScheduler::from_name(s.get_ref()) {
                Some(scheduler) => scheduler,
                None => {
                    self.unknown_word(s, &p.key("scheduler"), "scheduler", LbScheduler::NAMES);
                    DEFAULT_SCHEDULER
                }
            },
            None => DEFAULT_SCHEDULER,
        };
        let dataplane = self
            .choice(
                raw.dataplane.as_ref(),
                &p.key("dataplane"),
                "dataplane",
                DATAPLANES,
            )
            .unwrap_or(DataPlane::Proxy);
        let persistence = self.positive_duration(raw.persistence.as_ref(), &p.key("persistence"));
        let persistence_netmask = raw.persistence_netmask.as_ref().and_then(|mask| {
            let v4 = listen.map(|l| l.is_ipv4());
            match persistence_prefix(mask.get_ref(), v4) {
                Ok(prefix) => Some(prefix),
                Err(why) => {
                    let path = p.key("persistence_netmask");
                    self.error(mask.span().start, format!("{path}: {why}"));
                    None
                }
            }
        });
        if let Some(mask) = &raw.persistence_netmask
            && raw.persistence.is_none()
        {
            self.warning(
                mask.span().start,
                format!(
                    "{}: has no effect without persistence",
                    p.key("persistence_netmask")
                ),
            );
        }
        let connect_timeout =
            self.positive_duration(raw.connect_timeout.as_ref(), &p.key("connect_timeout"));
        let health = raw
            .health
            .as_ref()
            .and_then(|h| self.service_ref(h, &p.key("health")));
        let listen_port = listen.map(|l| l.port());
        let sorry_server = self.socket_addr(
            raw.sorry_server.as_ref(),
            &p.key("sorry_server"),
            listen_port,
        );
        let mut real_servers = Vec::new();
        for (i, rs) in raw.real_servers.iter().flatten().enumerate() {
            if let Some(rs) = self.real_server(rs, &p.index("real_servers", i), listen_port) {
                real_servers.push(rs);
            }
        }
        Some(VirtualServer {
            name: name.to_string(),
            listen: listen?,
            protocol,
            scheduler,
            dataplane,
            persistence,
            persistence_netmask,
            sorry_server,
            quorum: raw.quorum,
            hysteresis: raw.hysteresis.unwrap_or(0),
            health,
            retries: raw.retries.unwrap_or(2),
            connect_timeout: connect_timeout.unwrap_or(Duration::from_secs(2)),
            real_servers,
            origin: Origin(self.location(at)),
        })
    }

    fn real_server(
        &mut self,
        raw: &Spanned<RawRealServer>,
        p: &KeyPath,
        listen_port: Option<u16>,
    ) -> Option<RealServer> {
        let at = raw.span().start;
        let raw = raw.get_ref();
        let addr_text = self.required(
            raw.addr.as_ref(),
            at,
            p,
            "addr",
            "e.g. addr = \"127.0.0.1:8081\"",
        );
        let forward = match &raw.forward {
            Some(f) => self.forward(f, &p.key("forward")).unwrap_or(Forward::Nat),
            None => Forward::Nat,
        };
        let admin = self
            .choice(
                raw.admin.as_ref(),
                &p.key("admin"),
                "admin state",
                ADMIN_STATES,
            )
            .unwrap_or(AdminState::Ready);
        // Without a port the real server listens on the virtual port
        // (ipvsadm's rule); when the listen address itself is bad, 0 keeps
        // the real server in the model without a second error.
        let addr = self.socket_addr(addr_text, &p.key("addr"), Some(listen_port.unwrap_or(0)))?;
        let mut host = addr.ip().to_string();
        if let Some(name) = &raw.host
            && !self.blank(name, &p.key("host"), "host name")
        {
            host = name.get_ref().clone();
        }
        let thresholds = self.thresholds(raw, p);
        Some(RealServer {
            addr,
            host,
            weight: raw.weight.unwrap_or(1),
            forward,
            admin,
            inhibit_on_failure: raw.inhibit_on_failure.unwrap_or(false),
            thresholds,
        })
    }

    /// `upper_threshold`/`lower_threshold`: connection counts, 0 = none;
    /// lower above a set upper is an error (the kernel would never clear
    /// the overload mark), reported on `lower_threshold`.
    fn thresholds(&mut self, raw: &RawRealServer, p: &KeyPath) -> Thresholds {
        let max = i64::from(u32::MAX);
        let upper_path = p.key("upper_threshold");
        let lower_path = p.key("lower_threshold");
        let upper = self.int_in::<u32>(raw.upper_threshold.as_ref(), &upper_path, 0, max);
        let lower = self.int_in::<u32>(raw.lower_threshold.as_ref(), &lower_path, 0, max);
        let (upper, lower) = (upper.unwrap_or(0), lower.unwrap_or(0));
        if upper != 0
            && lower > upper
            && let Some(at) = raw.lower_threshold.as_ref()
        {
            self.error(
                at.span().start,
                format!(
                    "{lower_path}: {lower} is above {upper_path} ({upper}); the lower threshold must not exceed the upper one"
                ),
            );
            return Thresholds::default();
        }
        if upper == 0
            && lower != 0
            && let Some(at) = raw.lower_threshold.as_ref()
        {
            self.warning(
                at.span().start,
                format!("{lower_path}: has no effect without {upper_path}"),
            );
        }
        Thresholds { upper, lower }
    }

    // ----- [vrrp.NAME] -----

    fn vrrp(&mut self, name: &str, raw: RawVrrp, p: &KeyPath, at: usize) -> Option<VrrpInstance> {
        let mut ok = true;
        let interface = self.required(
            raw.interface.as_ref(),
            at,
            p,
            "interface",
            "e.g. interface = \"eth0\"",
        );
        if let Some(i) = interface
            && self.blank(i, &p.key("interface"), "interface name")
        {
            ok = false;
        }
        let vrid_value = self.required(
            raw.virtual_router_id.as_ref(),
            at,
            p,
            "virtual_router_id",
            "1 to 255, the same on every router of the group",
        );
        let vrid = self
            .int_in::<u8>(vrid_value, &p.key("virtual_router_id"), 1, 255)
            .and_then(Vrid::new);
        let priority = self.int_in::<u8>(raw.priority.as_ref(), &p.key("priority"), 1, 255);
        ok &= raw.priority.is_none() || priority.is_some();
        let version = match &raw.version {
            None => VrrpVersion::V3,
            Some(v) if *v.get_ref() == 2 => VrrpVersion::V2,
            Some(v) if *v.get_ref() == 3 => VrrpVersion::V3,
            Some(v) => {
                self.error(
                    v.span().start,
                    format!(
                        "{}: {} is not a vrrp version (expected 2 or 3)",
                        p.key("version"),
                        v.get_ref()
                    ),
                );
                ok = false;
                VrrpVersion::V3
            }
        };
        let advert_int = match &raw.advert_int {
            Some(d) => self.advert_int(d, &p.key("advert_int"), version),
            None => Some(Duration::from_secs(1)),
        };
        ok &= advert_int.is_some();
        let initial_state = self
            .choice(raw.state.as_ref(), &p.key("state"), "state", VRRP_STATES)
            .unwrap_or(VrrpInitialState::Backup);
        let preempt_delay = self.duration(raw.preempt_delay.as_ref(), &p.key("preempt_delay"));
        if let (Some(d), Some(text)) = (preempt_delay, &raw.preempt_delay)
            && d > Duration::from_secs(1000)
        {
            self.error(
                text.span().start,
                format!(
                    "{}: {} is out of range (expected 0s to 1000s)",
                    p.key("preempt_delay"),
                    show_duration(d)
                ),
            );
            ok = false;
        }
        if let Some(pass) = &raw.auth_pass {
            let path = p.key("auth_pass");
            if version == VrrpVersion::V3 {
                self.error(pass.span().start, format!("{path}: vrrp version 3 has no authentication; remove auth_pass or set version = 2"));
                ok = false;
            } else if pass.get_ref().len() > 8 {
                self.error(
                    pass.span().start,
                    format!(
                        "{path}: at most 8 bytes (keepalived would cut it to {:?})",
                        truncate_bytes(pass.get_ref(), 8)
                    ),
                );
                ok = false;
            } else if pass.get_ref().is_empty() {
                self.error(pass.span().start, format!("{path}: empty password"));
                ok = false;
            }
        }

        let mut virtual_addresses = Vec::new();
        match &raw.virtual_ipaddress {
            Some(list) if !list.is_empty() => {
                for (i, text) in list.iter().enumerate() {
                    let path = p.at_key("virtual_ipaddress", i);
                    let vip = parse_virtual_address(text.get_ref());
                    match self.ok_or_report(vip, text.span().start, &path) {
                        Some(vip) => virtual_addresses.push((vip, text.span().start, path)),
                        None => ok = false,
                    }
                }
            }
            Some(_) => {
                self.error(
                    at,
                    format!("{}: needs at least one address", p.key("virtual_ipaddress")),
                );
                ok = false;
            }
            None => {
                if !self.rejected.contains(&p.key("virtual_ipaddress")) {
                    self.missing(
                        at,
                        p,
                        "virtual_ipaddress",
                        "e.g. virtual_ipaddress = [\"10.0.0.100/24\"]",
                    );
                }
                ok = false;
            }
        }
        let family_v4 = virtual_addresses
            .first()
            .map(|(vip, _, _)| vip.addr.is_ipv4());
        for (vip, at, path) in &virtual_addresses {
            if vip.addr.is_ipv6() && version == VrrpVersion::V2 {
                self.error(
                    *at,
                    format!("{path}: IPv6 address {} needs vrrp version 3", vip.addr),
                );
                ok = false;
            } else if Some(vip.addr.is_ipv4()) != family_v4 {
                self.error(*at, format!("{path}: {} mixes IPv4 and IPv6 in one instance; use one vrrp instance per address family", vip.addr));
                ok = false;
            }
        }
        let unicast_src = match &raw.unicast_src_ip {
            Some(text) => self.same_family_ip(text, &p.key("unicast_src_ip"), family_v4),
            None => None,
        };
        let mut unicast_peers = Vec::new();
        for (i, text) in raw.unicast_peer.iter().flatten().enumerate() {
            match self.same_family_ip(text, &p.at_key("unicast_peer", i), family_v4) {
                Some(ip) => unicast_peers.push(ip),
                None => ok = false,
            }
        }
        ok &= raw.unicast_src_ip.is_none() || unicast_src.is_some();
        let garp = GarpSettings {
            master_delay: self
                .duration(raw.garp_master_delay.as_ref(), &p.key("garp_master_delay"))
                .unwrap_or(Duration::from_secs(5)),
            master_repeat: raw.garp_master_repeat.unwrap_or(5),
            master_refresh: self.positive_duration(
                raw.garp_master_refresh.as_ref(),
                &p.key("garp_master_refresh"),
            ),
        };
        let mut track = Vec::new();
        for (i, entry) in raw.track.iter().flatten().enumerate() {
            match self.vrrp_track(entry, &p.index("track", i)) {
                Some(t) => track.push(t),
                None => ok = false,
            }
        }
        let notify = self.alert_lines(raw.notify.as_deref(), p, "notify");
        if !ok {
            return None;
        }
        Some(VrrpInstance {
            name: name.to_string(),
            interface: interface?.get_ref().clone(),
            vrid: vrid?,
            priority: priority.unwrap_or(100),
            advert_int: advert_int?,
            version,
            initial_state,
            nopreempt: raw.nopreempt.unwrap_or(false),
            preempt_delay,
            auth_pass: raw.auth_pass.map(Spanned::into_inner),
            virtual_addresses: virtual_addresses
                .into_iter()
                .map(|(vip, _, _)| vip)
                .collect(),
            unicast_src,
            unicast_peers,
            garp,
            track,
            track_interfaces: raw.track_interface.unwrap_or_default(),
            v3_checksum_as_v2: raw.v3_checksum_as_v2.unwrap_or(false),
            notify,
            origin: Origin(self.location(at)),
        })
    }

    /// v2 sends whole seconds (1-255); v3 sends centiseconds (1-4095).
    fn advert_int(&mut self, value: &Dur, path: &str, version: VrrpVersion) -> Option<Duration> {
        let d = self.duration(Some(value), path)?;
        let at = value.span().start;
        match version {
            VrrpVersion::V2 => {
                let seconds = d.as_secs_f64().round();
                if (d.as_secs_f64() - seconds).abs() > 1e-6 || !(1.0..=255.0).contains(&seconds) {
                    self.error(at, format!("{path}: {} is not valid for vrrp version 2 (whole seconds from 1s to 255s)", show_duration(d)));
                    return None;
                }
                Some(Duration::from_secs(seconds as u64))
            }
            VrrpVersion::V3 => {
                let centis = (d.as_secs_f64() * 100.0).round();
                if (d.as_secs_f64() * 100.0 - centis).abs() > 1e-4
                    || !(1.0..=4095.0).contains(&centis)
                {
                    self.error(at, format!("{path}: {} is not valid for vrrp version 3 (a multiple of 10ms from 10ms to 40.95s)", show_duration(d)));
                    return None;
                }
                Some(Duration::from_millis(centis as u64 * 10))
            }
        }
    }

    fn same_family_ip(
        &mut self,
        text: &Text,
        path: &str,
        family_v4: Option<bool>,
    ) -> Option<IpAddr> {
        let Ok(ip) = text.get_ref().trim().parse::<IpAddr>() else {
            self.error(
                text.span().start,
                format!("{path}: {:?} is not an IP address", text.get_ref()),
            );
            return None;
        };
        if family_v4.is_some_and(|v4| v4 != ip.is_ipv4()) {
            self.error(
                text.span().start,
                format!("{path}: {ip} is not the same address family as virtual_ipaddress"),
            );
            return None;
        }
        Some(ip)
    }

    fn vrrp_track(&mut self, entry: &Spanned<RawTrack>, p: &KeyPath) -> Option<VrrpTrack> {
        let raw = entry.get_ref();
        let weight = self.int_in::<i32>(raw.weight.as_ref(), &p.key("weight"), -254, 254);
        if raw.weight.is_some() && weight.is_none() {
            return None;
        }
        let target = match (&raw.service, &raw.quorum) {
            (Some(service), None) => {
                TrackTarget::Service(self.service_ref(service, &p.key("service"))?)
            }
            (None, Some(quorum)) => TrackTarget::Quorum(quorum.get_ref().clone()),
            _ => {
                let ignore = self.rejected.contains(&p.key("service"))
                    || self.rejected.contains(&p.key("quorum"));
                if !ignore {
                    self.error(
                        entry.span().start,
                        format!("{p}: needs exactly one of service = \"group:service\" or quorum = \"virtual server name\""),
                    );
                }
                return None;
            }
        };
        Some(VrrpTrack {
            target,
            weight: weight.unwrap_or(0),
        })
    }

    // ----- tables of named definitions -----

    /// The definitions in `value`, a table of named definitions
    /// (`[SECTION.NAME]`); `None`, reported, when it is not a table.
    fn entries<'v, 't>(
        &mut self,
        value: &'v Spanned<DeValue<'t>>,
        path: &KeyPath,
        what: &str,
    ) -> Option<Vec<Entry<'v, 't>>> {
        let table = self.table(value, path, what)?;
        let entries = table
            .iter()
            .map(|(key, value)| {
                let name = key.get_ref().to_string();
                Entry {
                    path: path.child(&name),
                    name,
                    at: key.span().start,
                    value,
                }
            })
            .collect();
        Some(entries)
    }

    /// The top-level table `section` of named definitions, each read into
    /// `R` and built by `build`. A definition that cannot be read or built
    /// is left out (its errors are reported).
    fn definitions<R: DeserializeOwned, T>(
        &mut self,
        root: &DeTable<'_>,
        section: &str,
        what: &str,
        build: fn(&mut Self, &str, R, &KeyPath, usize) -> Option<T>,
    ) -> BTreeMap<String, T> {
        let mut built = BTreeMap::new();
        let Some(value) = root.get(section) else {
            return built;
        };
        let entries = self.entries(value, &KeyPath::new(section), what);
        for entry in entries.unwrap_or_default() {
            if let Some(raw) = self.read::<R>(entry.value, &entry.path)
                && let Some(definition) = build(self, &entry.name, raw, &entry.path, entry.at)
            {
                built.insert(entry.name, definition);
            }
        }
        built
    }

    // ----- value helpers: each reports its own error and returns None -----

    /// Deserialize one definition, reporting every key serde rejects: after
    /// an error the offending key is dropped and the definition read again.
    fn read<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
    ) -> Option<T> {
        let mut value = value.clone();
        // serde sees a TOML date-time as a private table; no key takes one,
        // so say what it is here instead of a confusing type error.
        for (steps, span, datetime) in datetimes(value.get_ref()) {
            let path = p.join(&steps);
            self.error(
                span.start,
                format!(
                    "{path}: {datetime} is a date-time, which no key takes; quote it if it is text"
                ),
            );
            if let Some(removed) = remove(value.get_mut(), &steps) {
                self.rejected.insert(p.join(&steps[..removed]).to_string());
            }
        }
        // Each round drops one key, so this ends; the bound is a safeguard.
        for _ in 0..1000 {
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(raw) => return Some(raw),
                Err(error) => error,
            };
            let span = error.span().unwrap_or_else(|| value.span());
            let steps = locate(value.get_ref(), &span).unwrap_or_default();
            self.serde_error(&error, span.start, p, &steps);
            // An error that names no key (the definition itself has the
            // wrong type) ends the reading.
            let removed = remove(value.get_mut(), &steps)?;
            self.rejected.insert(p.join(&steps[..removed]).to_string());
        }
        None
    }

    fn read_section<T: DeserializeOwned>(&mut self, root: &DeTable<'_>, name: &str) -> Option<T> {
        let value = root.get(name)?;
        self.read(value, &KeyPath::new(name))
    }

    fn serde_error(&mut self, error: &toml::de::Error, at: usize, p: &KeyPath, steps: &[Step]) {
        let message = error.message();
        if let Some(rest) = message.strip_prefix("unknown field ") {
            let mut names = rest.split('`').skip(1).step_by(2);
            let unknown = names.next().unwrap_or_default();
            let valid: Vec<&str> = names.collect();
            let parent = p.join(
                steps
                    .get(..steps.len().saturating_sub(1))
                    .unwrap_or_default(),
            );
            self.error(at, unknown_key_message(&parent, unknown, &valid));
            return;
        }
        let path = p.join(steps);
        self.error(at, format!("{path}: {}", explain_serde_message(message)));
    }

    /// Report keys of `table` not in `known`; returns the table without them.
    fn unknown_keys<'t>(
        &mut self,
        table: &DeTable<'t>,
        path: &KeyPath,
        known: &[&str],
    ) -> DeTable<'t> {
        let mut kept = table.clone();
        for key in table.keys() {
            let name: &str = key.get_ref();
            if !known.contains(&name) {
                self.error(key.span().start, unknown_key_message(path, name, known));
                kept.remove(name);
            }
        }
        kept
    }

    fn table<'v, 't>(
        &mut self,
        value: &'v Spanned<DeValue<'t>>,
        path: &KeyPath,
        what: &str,
    ) -> Option<&'v DeTable<'t>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                self.error(
                    value.span().start,
                    format!("{path}: expected {what}, found {}", found(other)),
                );
                None
            }
        }
    }

    /// The `type` key of an action or monitor table.
    fn type_key(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        at: usize,
        what: &str,
        kinds: &[&str],
    ) -> Option<String> {
        let table = self.table(value, p, "a table")?;
        let Some(kind) = table.get("type") else {
            self.missing(at, p, "type", &format!("one of: {}", kinds.join(", ")));
            return None;
        };
        let Some(text) = kind.get_ref().as_str() else {
            self.error(
                kind.span().start,
                format!(
                    "{}: expected a string, found {}",
                    p.key("type"),
                    found(kind.get_ref())
                ),
            );
            return None;
        };
        let spanned = Spanned::new(kind.span(), text.to_string());
        let kind = kinds.iter().find(|k| k.eq_ignore_ascii_case(text));
        if kind.is_none() {
            self.unknown_word(&spanned, &p.key("type"), what, kinds);
        }
        kind.map(|k| k.to_string())
    }

    fn required<'v, T>(
        &mut self,
        value: Option<&'v T>,
        at: usize,
        p: &KeyPath,
        key: &str,
        hint: &str,
    ) -> Option<&'v T> {
        if value.is_none() {
            self.missing(at, p, key, hint);
        }
        value
    }

    /// "missing key", unless the key was there and already reported as bad.
    fn missing(&mut self, at: usize, p: &KeyPath, key: &str, hint: &str) {
        if !self.rejected.contains(&p.key(key)) {
            self.error(at, format!("{p}: missing key {key:?} ({hint})"));
        }
    }

    fn choice<T: Copy>(
        &mut self,
        value: Option<&Text>,
        path: &str,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let value = value?;
        let text = value.get_ref().trim();
        if let Some((_, v)) = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        self.unknown_word(value, path, what, &names);
        None
    }

    fn unknown_word(&mut self, value: &Text, path: &str, what: &str, valid: &[&str]) {
        let text = value.get_ref();
        self.error(
            value.span().start,
            format!(
                "{path}: unknown {what} {text:?}{} (expected one of: {})",
                did_you_mean(text, valid),
                valid.join(", ")
            ),
        );
    }

    /// The value of `result`, or `None` with its error reported at `at` as
    /// `path: error`.
    fn ok_or_report<T, E: fmt::Display>(
        &mut self,
        result: Result<T, E>,
        at: usize,
        path: &str,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.error(at, format!("{path}: {e}"));
                None
            }
        }
    }

    /// Reports `path: empty WHAT` when `value` is empty or only white space;
    /// returns whether it was.
    fn blank(&mut self, value: &Text, path: &str, what: &str) -> bool {
        let blank = value.get_ref().trim().is_empty();
        if blank {
            self.error(value.span().start, format!("{path}: empty {what}"));
        }
        blank
    }

    fn duration(&mut self, value: Option<&Dur>, path: &str) -> Option<Duration> {
        let value = value?;
        self.ok_or_report(
            values::parse_duration(&value.get_ref().0),
            value.span().start,
            path,
        )
    }

    fn positive_duration(&mut self, value: Option<&Dur>, path: &str) -> Option<Duration> {
        let d = self.duration(value, path)?;
        if d.is_zero() {
            let at = value.map_or(0, |v| v.span().start);
            self.error(at, format!("{path}: must be greater than zero"));
            return None;
        }
        Some(d)
    }

    fn int_in<T: TryFrom<i64>>(
        &mut self,
        value: Option<&Int>,
        path: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let value = value?;
        let n = *value.get_ref();
        if n < min || n > max {
            let expected = if max == i64::MAX || max == i64::from(u32::MAX) {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            self.error(
                value.span().start,
                format!("{path}: {n} is out of range (expected {expected})"),
            );
            return None;
        }
        T::try_from(n).ok()
    }

    fn path(&mut self, value: Option<&Text>, path: &str) -> Option<PathBuf> {
        let value = value?;
        if self.blank(value, path, "path") {
            return None;
        }
        Some(settings::resolve(&self.config_dir, value.get_ref()))
    }

    fn paths(&mut self, values: Option<&[Text]>, path: &str) -> Option<Vec<PathBuf>> {
        let values = values?;
        Some(
            values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| self.path(Some(v), &format!("{path}[{i}]")))
                .collect(),
        )
    }

    fn period(&mut self, value: Option<&Text>, path: &str) -> Option<Period> {
        let value = value?;
        self.ok_or_report(Period::parse(value.get_ref()), value.span().start, path)
    }

    /// Compiles `value` as a regex only to check it; returns whether it is valid.
    fn regex(&mut self, value: &Text, path: &str) -> bool {
        match regex::Regex::new(value.get_ref()) {
            Ok(_) => true,
            Err(e) => {
                let detail = e.to_string();
                let reason = detail
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("error: ");
                self.error(
                    value.span().start,
                    format!("{path}: bad regex {:?}: {reason}", value.get_ref()),
                );
                false
            }
        }
    }

    fn mail_address(&mut self, value: &Text, path: &str) -> bool {
        let checked = values::check_mail_address(value.get_ref());
        self.ok_or_report(checked, value.span().start, path)
            .is_some()
    }

    fn host_port(&mut self, value: &Text, path: &str) -> Option<(IpAddr, Option<u16>)> {
        let parsed = values::parse_host_port(value.get_ref().trim());
        self.ok_or_report(parsed, value.span().start, path)
    }

    /// `ip:port`; a bare `ip` takes `default_port` when there is one.
    fn socket_addr(
        &mut self,
        value: Option<&Text>,
        path: &str,
        default_port: Option<u16>,
    ) -> Option<SocketAddr> {
        let value = value?;
        let (ip, port) = self.host_port(value, path)?;
        match port.or(default_port) {
            Some(port) => Some(SocketAddr::new(ip, port)),
            None => {
                self.error(
                    value.span().start,
                    format!(
                        "{path}: {:?} needs a port (e.g. \"{ip}:80\")",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn protocol(&mut self, value: Option<&Text>, path: &str) -> Option<Protocol> {
        self.choice(value, path, "protocol", PROTOCOLS)
    }

    fn forward(&mut self, value: &Text, path: &str) -> Option<Forward> {
        let parsed = values::parse_forward(value.get_ref());
        self.ok_or_report(parsed, value.span().start, path)
    }

    /// `group:service` (names as in mon: letters, digits, `_`, `.`, `-`).
    fn service_ref(&mut self, value: &Text, path: &str) -> Option<ServiceRef> {
        match value.get_ref().trim().split_once(':') {
            Some((group, service)) if is_tag(group) && is_tag(service) => {
                Some(ServiceRef::new(group, service))
            }
            _ => {
                self.error(
                    value.span().start,
                    format!(
                        "{path}: {:?} is not group:service (e.g. \"web:http\")",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// Group and service names must be usable in `group:service` references.
    fn tag(&mut self, entry: &Entry<'_, '_>, what: &str) {
        if !is_tag(&entry.name) {
            self.error(
                entry.at,
                format!(
                    "{}: {what} name {:?} may only contain letters, digits, \"_\", \".\" and \"-\"",
                    entry.path, entry.name
                ),
            );
        }
    }

    /// Finds an exec script: a name along `dirs`, or a path (relative to the
    /// config file). `Err` carries the places searched.
    fn find_script(
        &mut self,
        command: &Text,
        path: &str,
        dirs: &[PathBuf],
    ) -> Option<Result<PathBuf, String>> {
        if self.blank(command, path, "command") {
            return None;
        }
        let name = command.get_ref().trim();
        if name.contains('/') {
            let path = settings::resolve(&self.config_dir, name);
            return Some(if self.fs.is_file(&path) {
                Ok(path)
            } else {
                Err(path.display().to_string())
            });
        }
        Some(settings::find_in(dirs, name, self.fs).ok_or_else(|| show_dirs(dirs)))
    }

    /// The script and arguments of a `type = "lua"` action or monitor; the
    /// script must exist.
    fn lua_call(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        at: usize,
        hint: &str,
        settings: &Settings,
    ) -> Option<(String, Vec<String>)> {
        let raw = self.read::<RawLuaCall>(value, p)?;
        let script = self.required(raw.script.as_ref(), at, p, "script", hint)?;
        self.lua_script(script, &p.key("script"), settings)?;
        Some((script.get_ref().clone(), raw.args.unwrap_or_default()))
    }

    fn lua_script(&mut self, script: &Text, path: &str, settings: &Settings) -> Option<PathBuf> {
        let found = settings::find_lua(settings, script.get_ref(), self.fs);
        if found.is_none() {
            let mut dirs = settings.luadir.clone();
            dirs.extend(settings::SHIPPED_LUA_DIRS.iter().map(PathBuf::from));
            self.error(
                script.span().start,
                format!(
                    "{path}: Lua script {:?} not found (searched {})",
                    script.get_ref(),
                    show_dirs(&dirs)
                ),
            );
        }
        found
    }

    // ----- diagnostics -----

    fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |prefix| prefix.chars().count())
            + 1;
        Location::new(
            self.file,
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }

    fn error(&mut self, offset: usize, message: String) {
        self.push(Severity::Error, offset, message);
    }

    fn warning(&mut self, offset: usize, message: String) {
        self.push(Severity::Warning, offset, message);
    }

    fn push(&mut self, severity: Severity, offset: usize, message: String) {
        let location = self.location(offset);
        self.found.push(Diagnostic {
            severity,
            location,
            message,
        });
    }

    /// The diagnostics in file order (the document's tables are sorted by
    /// key, so they were found out of order).
    fn finish(mut self) -> Diagnostics {
        self.found.sort_by(|a, b| {
            (a.location.line, a.location.col).cmp(&(b.location.line, b.location.col))
        });
        let mut diagnostics = Diagnostics::default();
        for d in self.found {
            match d.severity {
                Severity::Error => diagnostics.error(d.location, d.message),
                Severity::Warning => diagnostics.warning(d.location, d.message),
            }
        }
        diagnostics
    }
}

/// A bad interval keeps the service "polled" so the validator does not add
/// a second, misleading error; the config is rejected anyway.
const STAND_IN_INTERVAL: Duration = Duration::from_secs(60);

/// Used when a service's monitor is written but bad (reported already), so
/// the validator does not also say "has an interval but no monitor".
fn stand_in_monitor() -> Monitor {
    Monitor::Exec {
        name: String::new(),
        args: Vec::new(),
        append_hosts: false,
        path: None,
    }
}

const DEFAULT_SCHEDULER: LbScheduler = LbScheduler::WeightedLeastConnection;

const SYSLOG_FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

// ---------------------------------------------------------------------------
// Value types with their own serde shapes.
// ---------------------------------------------------------------------------

/// A duration as written (`"5s"`); checked after reading so that the
/// message can name the key.
#[derive(Clone)]
struct DurationText(String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\", \"500ms\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// An integer or a string (`status = [200, "300-399"]`, `memory = "32MiB"`).
enum Scalar {
    Integer(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The table shape of a [`Flexible`] key, and what to say when the value
/// has none of the accepted shapes.
trait TableForm: DeserializeOwned {
    const EXPECTING: &'static str;
}

/// A key written as an integer, a string or a table
/// (`alertafter = 3 | "10m" | { count = 3, within = "10m" }`). The table is
/// read straight from the document, so its errors keep their positions.
enum Flexible<T> {
    Integer(i64),
    Text(String),
    Table(T),
}

impl<'de, T: TableForm> Deserialize<'de> for Flexible<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlexibleVisitor<T>(PhantomData<T>);
        impl<'de, T: TableForm> Visitor<'de> for FlexibleVisitor<T> {
            type Value = Flexible<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flexible<T>, E> {
                Ok(Flexible::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flexible<T>, E> {
                i64::try_from(v)
                    .map(Flexible::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flexible<T>, E> {
                Ok(Flexible::Text(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Flexible<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Flexible::Table)
            }
        }
        deserializer.deserialize_any(FlexibleVisitor(PhantomData))
    }
}

/// The keys serde accepts for a `Raw*` struct (its field names in order).
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct FieldNames<'c>(&'c std::cell::Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("field names captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let fields = std::cell::Cell::new(&[][..]);
    // The error is the point: deserialize_struct records the names and stops.
    let _ = T::deserialize(FieldNames(&fields));
    fields.get()
}

// ---------------------------------------------------------------------------
// Paths of keys, and finding the key an error is about.
// ---------------------------------------------------------------------------

/// A dotted TOML key path such as `watch.local.web` (array elements as `[i]`).
#[derive(Clone)]
struct KeyPath(String);

impl KeyPath {
    /// The document itself (messages about it have no path prefix).
    fn root() -> KeyPath {
        KeyPath(String::new())
    }

    fn new(key: &str) -> KeyPath {
        KeyPath(quote_key(key))
    }

    fn child(&self, key: &str) -> KeyPath {
        if self.0.is_empty() {
            KeyPath::new(key)
        } else {
            KeyPath(format!("{}.{}", self.0, quote_key(key)))
        }
    }

    /// `self.key[index]` as a path.
    fn index(&self, key: &str, index: usize) -> KeyPath {
        KeyPath(format!("{}[{index}]", self.child(key).0))
    }

    /// `self.key` as text.
    fn key(&self, key: &str) -> String {
        self.child(key).0
    }

    /// `self.key[index]` as text.
    fn at_key(&self, key: &str, index: usize) -> String {
        self.index(key, index).0
    }

    /// `self[index]` as text.
    fn at(&self, index: usize) -> String {
        format!("{}[{index}]", self.0)
    }

    fn join(&self, steps: &[Step]) -> KeyPath {
        let mut path = self.clone();
        for step in steps {
            path = match step {
                Step::Key(key) => path.child(key),
                Step::Index(i) => KeyPath(path.at(*i)),
            };
        }
        path
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The steps from `value` to the innermost key or element whose key or value
/// holds `span`. Header tables (`[a.b]`) span only their header, so every
/// child is searched, not only those whose span contains `span`.
fn locate(value: &DeValue<'_>, span: &Range<usize>) -> Option<Vec<Step>> {
    let contains = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    children(value).into_iter().find_map(|child| {
        if child.key.as_ref() == Some(span) {
            return Some(vec![child.step]);
        }
        if let Some(mut rest) = locate(child.value.get_ref(), span) {
            rest.insert(0, child.step);
            return Some(rest);
        }
        contains(child.value.span()).then(|| vec![child.step])
    })
}

/// Every date-time value under `value`: where it is, and as written.
fn datetimes(value: &DeValue<'_>) -> Vec<(Vec<Step>, Range<usize>, String)> {
    let mut found = Vec::new();
    for child in children(value) {
        if let DeValue::Datetime(datetime) = child.value.get_ref() {
            found.push((
                vec![child.step.clone()],
                child.value.span(),
                datetime.to_string(),
            ));
        }
        for (mut steps, span, text) in datetimes(child.value.get_ref()) {
            steps.insert(0, child.step.clone());
            found.push((steps, span, text));
        }
    }
    found
}

/// A key's value or an array's element, one step below a value.
struct Child<'v, 't> {
    step: Step,
    /// Where the key is written; `None` for an array element.
    key: Option<Range<usize>>,
    value: &'v Spanned<DeValue<'t>>,
}

/// The keys and elements directly under `value`, in document order.
fn children<'v, 't>(value: &'v DeValue<'t>) -> Vec<Child<'v, 't>> {
    match value {
        DeValue::Table(table) => table
            .iter()
            .map(|(key, value)| Child {
                step: Step::Key(key.get_ref().to_string()),
                key: Some(key.span()),
                value,
            })
            .collect(),
        DeValue::Array(array) => array
            .iter()
            .enumerate()
            .map(|(i, value)| Child {
                step: Step::Index(i),
                key: None,
                value,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Removes the innermost key on `steps` (an error inside an array drops the
/// whole array key, so later indexes in messages stay right). Returns how
/// many steps lead to the removed key.
fn remove(value: &mut DeValue<'_>, steps: &[Step]) -> Option<usize> {
    let last_key = steps.iter().rposition(|s| matches!(s, Step::Key(_)))?;
    let mut current = value;
    for step in &steps[..last_key] {
        current = match (step, current) {
            (Step::Key(key), DeValue::Table(table)) => table.get_mut(key.as_str())?.get_mut(),
            (Step::Index(i), DeValue::Array(array)) => array.get_mut(*i)?.get_mut(),
            _ => return None,
        };
    }
    match (&steps[last_key], current) {
        (Step::Key(key), DeValue::Table(table)) => table.remove(key.as_str()).map(|_| last_key + 1),
        _ => None,
    }
}

/// A table holding only `keys` of `table`, for reading with one `Raw*` struct.
fn subtable<'t>(table: &DeTable<'t>, span: Range<usize>, keys: &[&str]) -> Spanned<DeValue<'t>> {
    let mut part = DeTable::new();
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        if keys.contains(&name) {
            part.insert(key.clone(), value.clone());
        }
    }
    Spanned::new(span, DeValue::Table(part))
}

// ---------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------

fn unknown_key_message(path: &KeyPath, key: &str, valid: &[&str]) -> String {
    let prefix = if path.0.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    let list = if valid.is_empty() {
        "none".to_string()
    } else {
        valid.join(", ")
    };
    format!(
        "{prefix}unknown key {key:?}{} (valid keys: {list})",
        did_you_mean(key, valid)
    )
}

/// `; did you mean "x"?` for a likely typo of a known word, ignoring ASCII
/// case on both sides.
fn did_you_mean(word: &str, known: &[&str]) -> String {
    let folded: Vec<String> = known.iter().map(|k| k.to_ascii_lowercase()).collect();
    let folded: Vec<&str> = folded.iter().map(String::as_str).collect();
    values::suggest(&word.to_ascii_lowercase(), &folded)
        .and_then(|s| folded.iter().position(|f| *f == s))
        .map(|i| format!("; did you mean {:?}?", known[i]))
        .unwrap_or_default()
}

/// serde's wording (`invalid type: string "x", expected u16`) in the
/// config's terms (`expected an integer from 0 to 65535, found string "x"`).
fn explain_serde_message(message: &str) -> String {
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|r| r.split_once(", expected "))
    {
        return format!(
            "expected {}, found {}",
            plain_expected(expected),
            plain_found(found)
        );
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid value: ")
        .and_then(|r| r.split_once(", expected "))
    {
        let value = found.trim_start_matches("integer ").replace('`', "");
        return format!(
            "{value} is out of range (expected {})",
            plain_expected(expected)
        );
    }
    lowercase_first(message)
}

fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" => "an integer from 0 to 255".to_string(),
        "u16" => "an integer from 0 to 65535".to_string(),
        "u32" => "an integer from 0 to 4294967295".to_string(),
        "u64" | "usize" => "a non-negative integer".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        e if e.starts_with("struct ") => "a table".to_string(),
        e => e.to_string(),
    }
}

fn plain_found(found: &str) -> String {
    match found {
        "sequence" => "an array".to_string(),
        "map" => "a table".to_string(),
        f => f.replace("floating point", "float").replace('`', ""),
    }
}

fn found(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer {}", i.as_str()),
        DeValue::Float(f) => format!("float {}", f.as_str()),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
        DeValue::Datetime(_) => "a date-time".to_string(),
    }
}

fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn show_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directories".to_string();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_duration(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A key as it would be written in TOML: bare when it can be.
fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

// ---------------------------------------------------------------------------
// Small value parsers that only the native format has.
// ---------------------------------------------------------------------------

/// mon's tag: `[A-Za-z0-9_.-]+`.
fn is_tag(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `[A-Z_][A-Z0-9_]*`, as mon's `VAR=value` lines.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_http_token(method: &str) -> bool {
    !method.is_empty() && method.chars().all(|c| c.is_ascii_alphabetic())
}

/// A persistence netmask as a prefix length: `24`, `"/24"` or `"24"`, or
/// for an IPv4 service a dotted mask (`"255.255.255.0"`, contiguous). `v4`
/// is the listen address's family, None when that address is bad.
fn persistence_prefix(value: &Scalar, v4: Option<bool>) -> Result<u8, String> {
    let max: i64 = if v4 == Some(false) { 128 } else { 32 };
    let family = match v4 {
        Some(true) => "an IPv4",
        Some(false) => "an IPv6",
        None => "a",
    };
    let prefix = |n: i64| -> Result<u8, String> {
        u8::try_from(n)
            .ok()
            .filter(|&n| n >= 1 && i64::from(n) <= max)
            .ok_or_else(|| {
                format!(
                    "prefix length {n} is out of range for {family} service (expected 1 to {max})"
                )
            })
    };
    let text = match value {
        Scalar::Integer(n) => return prefix(*n),
        Scalar::Text(text) => text.trim(),
    };
    let digits = text.strip_prefix('/').unwrap_or(text);
    if let Ok(n) = digits.parse::<i64>() {
        return prefix(n);
    }
    let Ok(mask) = text.parse::<std::net::Ipv4Addr>() else {
        return Err(format!(
            "{text:?} is not a netmask (expected a prefix length such as 24 or \"/64\", or an IPv4 dotted mask such as \"255.255.255.0\")"
        ));
    };
    if v4 == Some(false) {
        return Err(format!(
            "{text:?} is an IPv4 mask but the service is IPv6; give a prefix length such as 64"
        ));
    }
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    if ones == 0 || bits.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(format!(
            "{text:?} is not a contiguous netmask (expected e.g. \"255.255.255.0\")"
        ));
    }
    Ok(ones as u8)
}

/// `200` or `"300-399"`: an inclusive range of HTTP status codes.
fn status_range(value: &Scalar) -> Result<(u16, u16), String> {
    let code = |n: i64| -> Result<u16, String> {
        u16::try_from(n)
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("{n} is not an HTTP status code (100 to 599)"))
    };
    match value {
        Scalar::Integer(n) => code(*n).map(|c| (c, c)),
        Scalar::Text(text) => {
            let bad = || {
                format!(
                    "bad status {text:?} (expected a code such as 200 or a range such as \"200-399\")"
                )
            };
            let (low, high) = text.split_once('-').unwrap_or((text, text));
            let low = code(low.trim().parse().map_err(|_| bad())?)?;
            let high = code(high.trim().parse().map_err(|_| bad())?)?;
            if low > high {
                return Err(format!("status range {text:?} is empty ({low} > {high})"));
            }
            Ok((low, high))
        }
    }
}

/// `"32MiB"`: a number and one of B, KiB, MiB, GiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad =
        || format!("bad size {t:?} (expected bytes such as \"32MiB\", with B, KiB, MiB or GiB)");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(format!("size {t:?} must be greater than zero")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("size {t:?} is too large")),
    }
}

/// keepalived's `10.0.0.100/24 dev eth1` (prefix optional).
fn parse_virtual_address(text: &str) -> Result<VirtualAddress, String> {
    let mut words = text.split_whitespace();
    let address = words.next().ok_or("empty address")?;
    let (ip_text, prefix_text) = match address.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (address, None),
    };
    let addr: IpAddr = ip_text
        .parse()
        .map_err(|_| format!("{ip_text:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("bad prefix length \"/{p}\" for {addr} (0 to {max})"))?,
        None => max,
    };
    let mut dev = None;
    while let Some(word) = words.next() {
        match word {
            "dev" => {
                let name = words.next().ok_or("\"dev\" needs an interface name")?;
                dev = Some(name.to_string());
            }
            other => {
                return Err(format!(
                    "unexpected {other:?} in {text:?} (keepmon accepts \"ADDRESS[/PREFIX] [dev INTERFACE]\")"
                ));
            }
        }
    }
    Ok(VirtualAddress { addr, prefix, dev })
}

fn truncate_bytes(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::config::compile_str;

    /// A machine with exactly these files (absolute paths). The integration
    /// tests share a copy in `tests/common`, which unit tests cannot reach.
    #[derive(Default)]
    struct FakeFs {
        files: BTreeSet<PathBuf>,
    }

    impl FakeFs {
        fn with(files: &[&str]) -> FakeFs {
            FakeFs {
                files: files.iter().map(PathBuf::from).collect(),
            }
        }
    }

    impl FileSystem for FakeFs {
        fn is_file(&self, path: &Path) -> bool {
            self.files.contains(path)
        }

        fn is_dir(&self, path: &Path) -> bool {
            self.files.iter().any(|f| f.starts_with(path) && f != path)
        }
    }

    const FILE: &str = "/etc/keepmon/keepmon.toml";

    fn parse_with(text: &str, fs: &FakeFs) -> (Option<Config>, Vec<String>) {
        let file: Arc<Path> = Arc::from(Path::new(FILE));
        let (config, diagnostics) = parse(text, &file, fs);
        let shown = diagnostics
            .iter()
            .map(|d| {
                let severity = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                format!(
                    "{}:{}: {severity}: {}",
                    d.location.line, d.location.col, d.message
                )
            })
            .collect();
        (config, shown)
    }

    /// Every diagnostic of `text`, as `line:col: severity: message`.
    fn check(text: &str, expected: &[&str]) {
        let (_, found) = parse_with(text, &FakeFs::default());
        assert_eq!(found, expected, "config:\n{text}");
    }

    #[test]
    fn every_kind_of_error_names_its_place_and_key() {
        let cases: &[(&str, &[&str])] = &[
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
                    "1:2: error: unknown key \"wacth\"; did you mean \"watch\"? (valid keys: daemon, mon_protocol, metrics, lua, mail, hostgroups, actions, watch, virtual_servers, vrrp)",
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
                    "2:1: error: lua: unknown key \"memroy\"; did you mean \"memory\"? (valid keys: timeout, instructions, memory)",
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
            // Mail.
            (
                "[mail]\nfrom = \"@nobody\"\n[mail.smtp]\npassword = \"x\"\n",
                &[
                    "2:8: error: mail.from: bad mail address \"@nobody\"",
                    "3:1: error: mail.smtp: password is set but username is not",
                    "3:1: error: mail.smtp: missing key \"host\" (the SMTP relay, e.g. host = \"mail.example.com\")",
                ],
            ),
            (
                "[mail]\nretry_initial = \"1m\"\nretry_max = \"10s\"\nmax_age = \"0s\"\n",
                &[
                    "3:13: error: mail: retry_max (10s) is shorter than retry_initial (60s)",
                    "4:11: error: mail.max_age: must be greater than zero",
                ],
            ),
            (
                "[mail.smtp]\nhost = \"mx\"\nusername = \"u\"\npassword = \"p\"\n",
                &[
                    "1:1: warning: mail.smtp: the password is sent in clear text because tls = \"none\"; use \"starttls\" or \"implicit\"",
                ],
            ),
            // Hostgroups.
            (
                "[hostgroups]\nweb = \"127.0.0.1\"\n\"my group\" = [\"a b\"]\n",
                &[
                    "2:7: error: hostgroups.web: expected an array, found string \"127.0.0.1\"",
                    "3:1: error: hostgroups.\"my group\": hostgroup name \"my group\" may only contain letters, digits, \"_\", \".\" and \"-\"",
                    "3:15: error: hostgroups.\"my group\"[0]: bad host name \"a b\"",
                ],
            ),
            // Actions.
            (
                "[actions.ops]\ntype = \"mial\"\n",
                &[
                    "2:8: error: actions.ops.type: unknown action type \"mial\"; did you mean \"mail\"? (expected one of: file, mail, exec, lua, lb)",
                ],
            ),
            (
                "[actions.ops]\nto = [\"a@b\"]\n",
                &[
                    "1:10: error: actions.ops: missing key \"type\" (one of: file, mail, exec, lua, lb)",
                ],
            ),
            (
                "[actions.ops]\ntype = \"mail\"\nto = [\"ops@\"]\ncc = 1\n",
                &[
                    "3:7: error: actions.ops.to[0]: bad mail address \"ops@\"",
                    "4:1: error: actions.ops: unknown key \"cc\" (valid keys: type, to, subject, from)",
                ],
            ),
            (
                "[actions.log]\ntype = \"file\"\n",
                &[
                    "1:10: error: actions.log: missing key \"path\" (e.g. path = \"state/alerts.log\")",
                ],
            ),
            (
                "[actions.page]\ntype = \"exec\"\ncommand = \"qpage.alert\"\n",
                &[
                    "3:11: error: actions.page.command: alert script \"qpage.alert\" not found (searched /etc/keepmon/alert.d)",
                ],
            ),
            (
                "[actions.l]\ntype = \"lua\"\nscript = \"nope\"\n",
                &[&format!(
                    "3:10: error: actions.l.script: Lua script \"nope\" not found (searched {})",
                    settings::SHIPPED_LUA_DIRS.join(", ")
                )],
            ),
            (
                "[actions.lb]\ntype = \"lb\"\nvirtual = \"10.0.0.1\"\nreal = \"x\"\nforward = \"nta\"\n",
                &[
                    "3:11: error: actions.lb.virtual: \"10.0.0.1\" needs a port (e.g. \"10.0.0.1:80\")",
                    "4:8: error: actions.lb.real: \"x\" is not an IP address (names are not resolved here)",
                    "5:11: error: actions.lb.forward: unknown forwarding method \"nta\" (expected nat|dr|tun or m|g|i)",
                ],
            ),
            // Alerts name actions.
            (
                "[actions.log]\ntype = \"file\"\npath = \"a.log\"\n[watch.g.s]\nalert = [\"lgo\", { action = \"log\", exit = \"5-1\" }, 7, { exit = 1 }]\n",
                &[
                    "5:10: error: watch.g.s.alert[0]: unknown action \"lgo\"; did you mean \"log\"? (defined actions: log)",
                    "5:42: error: watch.g.s.alert[1].exit: exit range \"5-1\" is empty (5 > 1)",
                    "5:51: error: watch.g.s.alert[2]: expected an action name or a table { action = \"name\", exit = \"N-M\" }, found integer 7",
                    "5:54: error: watch.g.s.alert[3]: missing key \"action\" (the name of an action in [actions])",
                ],
            ),
            (
                "[watch.g.s]\nupalert = [\"log\"]\n",
                &[
                    "2:12: error: watch.g.s.upalert[0]: unknown action \"log\" (no actions are defined; add an [actions.log] table)",
                ],
            ),
            (
                "[watch.g.s]\nalert = \"log\"\n",
                &["2:9: error: watch.g.s.alert: expected an array, found string \"log\""],
            ),
            // Services.
            (
                "[watch.g.s]\nintreval = \"5s\"\n",
                &[
                    "2:1: error: watch.g.s: unknown key \"intreval\"; did you mean \"interval\"? (valid keys: description, interval, failure_interval, schedule, randskew, timeout, allow_empty_group, exclude_hosts, exclude_period, depend, alertdepend, monitordepend, hostdepend, dep_behavior, dep_memory, redistribute, unack_summary, traptimeout, trapduration, env, rise, fall, monitor, period, alert, upalert, startupalert, ackalert, disablealert, alertevery, alertafter, numalerts, no_comp_alerts, upalertafter, alerts_dont_count, alertexitrange)",
                ],
            ),
            (
                "[watch.g.s]\nschedule = \"every minute\"\nrise = 0\nenv = { home = \"x\" }\n",
                &[
                    "2:12: error: watch.g.s.schedule: invalid cron schedule \"every minute\": expected 5, 6 or 7 fields, found 2",
                    "3:8: error: watch.g.s.rise: 0 is out of range (expected at least 1)",
                    "4:9: error: watch.g.s.env.home: environment variable name \"home\" must match [A-Z_][A-Z0-9_]*",
                ],
            ),
            (
                "[watch.\"my g\".s]\n",
                &[
                    "1:8: error: watch.\"my g\": group name \"my g\" may only contain letters, digits, \"_\", \".\" and \"-\"",
                ],
            ),
            (
                "[watch.g.s]\ndepend = \"a:b &&\"\nalertdepend = \"a:b c:d\"\nhostdepend = [\"ab\"]\ndep_behavior = \"alerts\"\n",
                &[
                    "2:10: error: watch.g.s.depend: operator '&&' at column 5 is missing an operand in \"a:b &&\"",
                    "3:15: warning: watch.g.s.alertdepend: \"a:b c:d\" has services with no operator between them; they are read as AND, write \"&&\" between them",
                    "4:15: error: watch.g.s.hostdepend[0]: \"ab\" is not group:service (e.g. \"web:http\")",
                    "5:16: error: watch.g.s.dep_behavior: unknown dep_behavior \"alerts\"; did you mean \"alert\"? (expected one of: alert, monitor, host, a, m, hm)",
                ],
            ),
            (
                "[watch.g.s]\ninterval = \"5s\"\nalertafter = { count = 3, within = \"10s\" }\nalertevery = { every = \"1h\", mode = \"sumary\" }\n",
                &[
                    "3:36: error: watch.g.s.alertafter: 3 failures within 10s is not sensible: at interval 5s they take at least 10s; widen within or lower count",
                    "4:37: error: watch.g.s.alertevery.mode: unknown mode \"sumary\"; did you mean \"summary\"? (expected one of: summary, observe_detail, ignore_summary, strict)",
                ],
            ),
            (
                "[watch.g.s]\nalertafter = { within = \"10m\" }\nalertevery = 5\n",
                &[
                    "2:14: error: watch.g.s.alertafter: missing key \"count\"; for \"failing for longer than T\" write alertafter = \"T\"",
                    "3:14: error: watch.g.s.alertevery: expected a duration such as \"1h\" or a table { every = \"1h\", mode = \"summary\" }, found integer 5",
                ],
            ),
            // Monitors.
            (
                "[watch.g.s]\nmonitor = { type = \"tcp\", port = \"80\", prot = 3, expect = \"(\" }\n",
                &[
                    "2:34: error: watch.g.s.monitor.port: expected an integer, found string \"80\"",
                    "2:40: error: watch.g.s.monitor: unknown key \"prot\"; did you mean \"port\"? (valid keys: type, port, send, expect, timeout)",
                    "2:59: error: watch.g.s.monitor.expect: bad regex \"(\": unclosed group",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"tcp\" }\n",
                &["2:11: error: watch.g.s.monitor: missing key \"port\" (e.g. port = 80)"],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"htp\" }\n",
                &[
                    "2:20: error: watch.g.s.monitor.type: unknown monitor type \"htp\"; did you mean \"http\"? (expected one of: tcp, http, https, ping, lua, exec)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"http\", status = [200, \"300-199\", 700], path = \"x\", insecure = true }\n",
                &[
                    "2:43: error: watch.g.s.monitor.status[1]: status range \"300-199\" is empty (300 > 199)",
                    "2:54: error: watch.g.s.monitor.status[2]: 700 is not an HTTP status code (100 to 599)",
                    "2:67: error: watch.g.s.monitor.path: \"x\" must start with \"/\" and contain no spaces",
                    "2:83: warning: watch.g.s.monitor.insecure: has no effect with type = \"http\" (it only skips certificate checks for https)",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"ping\", count = 0 }\n",
                &["2:36: error: watch.g.s.monitor.count: 0 is out of range (expected 1 to 100)"],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"exec\", command = \"foo.monitor\" }\n",
                &[
                    "2:38: warning: watch.g.s.monitor.command: monitor script \"foo.monitor\" not found (searched /etc/keepmon/mon.d); the service reports a config error until it exists",
                ],
            ),
            (
                "[watch.g.s]\nmonitor = { type = \"lua\" }\n",
                &[
                    "2:11: error: watch.g.s.monitor: missing key \"script\" (the name of a Lua monitor)",
                ],
            ),
            // Periods.
            (
                "[watch.g.s]\n[[watch.g.s.period]]\nspec = \"xx {1}\"\n[[watch.g.s.period]]\nlabel = \"a\"\n[[watch.g.s.period]]\nlabel = \"a\"\nalert_every = \"1h\"\n",
                &[
                    "3:8: error: watch.g.s.period[0].spec: unknown scale \"xx\" in period \"xx {1}\"",
                    "6:1: error: watch.g.s.period[2]: duplicate period \"a\" (also watch.g.s.period[1]); give one of them a distinct label",
                    "8:1: error: watch.g.s.period[2]: unknown key \"alert_every\"; did you mean \"alertevery\"? (valid keys: spec, label, alert, upalert, startupalert, ackalert, disablealert, alertevery, alertafter, numalerts, no_comp_alerts, upalertafter, alerts_dont_count, alertexitrange)",
                ],
            ),
            (
                "[watch.g.s]\nnumalerts = 3\n[[watch.g.s.period]]\nnumalerts = -3\n",
                &[
                    "3:13: error: watch.g.s: alert keys (numalerts) are set directly on the service and [[watch.g.s.period]] tables exist too; move them into the period tables",
                    "4:13: error: watch.g.s.period[0].numalerts: -3 is out of range (expected an integer from 0 to 4294967295)",
                ],
            ),
            (
                "[watch.g.s]\nperiod = { spec = \"wd {Mon}\" }\n",
                &[
                    "2:10: error: watch.g.s.period: expected an array of tables (write [[watch.g.s.period]] for each period), found table",
                ],
            ),
            // Virtual servers.
            (
                "[virtual_servers.web]\nlisten = \"127.0.0.1:80\"\nscheduler = \"rrr\"\nhealth = \"web\"\nreal_servers = [{ addr = \"127.0.0.1:81\", weight = -1, forward = \"dr\" }, { host = \"x\" }]\n",
                &[
                    "3:13: error: virtual_servers.web.scheduler: unknown scheduler \"rrr\"; did you mean \"rr\"? (expected one of: rr, wrr, lc, wlc, sh, twos)",
                    "4:10: error: virtual_servers.web.health: \"web\" is not group:service (e.g. \"web:http\")",
                    "5:51: error: virtual_servers.web.real_servers[0].weight: -1 is out of range (expected an integer from 0 to 4294967295)",
                    "5:73: error: virtual_servers.web.real_servers[1]: missing key \"addr\" (e.g. addr = \"127.0.0.1:8081\")",
                ],
            ),
            (
                "[virtual_servers.web]\nprotocol = \"sctp\"\n",
                &[
                    "1:18: error: virtual_servers.web: missing key \"listen\" (e.g. listen = \"127.0.0.1:8080\")",
                    "2:12: error: virtual_servers.web.protocol: unknown protocol \"sctp\"; did you mean \"tcp\"? (expected one of: tcp, udp)",
                ],
            ),
            // VRRP.
            (
                "[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 0\npriority = 256\nversion = 2\nadvert_int = \"1.5s\"\nauth_pass = \"123456789\"\nvirtual_ipaddress = [\"10.0.0.1/24\", \"::1/64 dev eth0\", \"10.0.0.2/33\"]\n",
                &[
                    "3:21: error: vrrp.v1.virtual_router_id: 0 is out of range (expected 1 to 255)",
                    "4:12: error: vrrp.v1.priority: 256 is out of range (expected 1 to 255)",
                    "6:14: error: vrrp.v1.advert_int: 1.5s is not valid for vrrp version 2 (whole seconds from 1s to 255s)",
                    "7:13: error: vrrp.v1.auth_pass: at most 8 bytes (keepalived would cut it to \"12345678\")",
                    "8:37: error: vrrp.v1.virtual_ipaddress[1]: IPv6 address ::1 needs vrrp version 3",
                    "8:56: error: vrrp.v1.virtual_ipaddress[2]: bad prefix length \"/33\" for 10.0.0.2 (0 to 32)",
                ],
            ),
            (
                "[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 1\nadvert_int = \"15ms\"\nauth_pass = \"x\"\nvirtual_ipaddress = [\"10.0.0.1\", \"fe80::1\"]\nunicast_peer = [\"fe80::2\"]\ntrack = [{ service = \"a:b\", quorum = \"x\" }, { quorum = \"vs\", weight = 255 }]\npreempt_delay = \"1001s\"\n",
                &[
                    "4:14: error: vrrp.v1.advert_int: 0.015s is not valid for vrrp version 3 (a multiple of 10ms from 10ms to 40.95s)",
                    "5:13: error: vrrp.v1.auth_pass: vrrp version 3 has no authentication; remove auth_pass or set version = 2",
                    "6:34: error: vrrp.v1.virtual_ipaddress[1]: fe80::1 mixes IPv4 and IPv6 in one instance; use one vrrp instance per address family",
                    "7:17: error: vrrp.v1.unicast_peer[0]: fe80::2 is not the same address family as virtual_ipaddress",
                    "8:10: error: vrrp.v1.track[0]: needs exactly one of service = \"group:service\" or quorum = \"virtual server name\"",
                    "8:71: error: vrrp.v1.track[1].weight: 255 is out of range (expected -254 to 254)",
                    "9:17: error: vrrp.v1.preempt_delay: 1001s is out of range (expected 0s to 1000s)",
                ],
            ),
            (
                "[vrrp.v1]\nvirtual_ipaddress = []\n",
                &[
                    "1:7: error: vrrp.v1: missing key \"interface\" (e.g. interface = \"eth0\")",
                    "1:7: error: vrrp.v1: missing key \"virtual_router_id\" (1 to 255, the same on every router of the group)",
                    "1:7: error: vrrp.v1.virtual_ipaddress: needs at least one address",
                ],
            ),
        ];
        let mut failed = 0;
        for (text, expected) in cases {
            let (_, found) = parse_with(text, &FakeFs::default());
            if found != *expected {
                failed += 1;
                println!("config:\n{text}\nexpected: {expected:#?}\nfound: {found:#?}\n");
            }
        }
        assert_eq!(failed, 0);
    }

    #[test]
    fn the_demo_config_compiles() {
        let compiled = compile_str(
            include_str!("../../etc/keepmon.toml"),
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
        // One virtual service on the built-in proxy, in front of keepmon's
        // own metrics page; no VRRP (it needs root).
        let demo = &config.virtual_servers["demo"];
        assert_eq!(demo.listen, "127.0.0.1:9580".parse().unwrap());
        assert_eq!(demo.dataplane, DataPlane::Proxy);
        assert_eq!(
            demo.real_servers.iter().map(|r| r.addr).collect::<Vec<_>>(),
            ["127.0.0.1:9583".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.virtual_servers.len(), 1);
        assert!(config.vrrp.is_empty());
        let (_, native_diagnostics) =
            parse_with(include_str!("../../etc/keepmon.toml"), &FakeFs::default());
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
                weight: 0
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

    #[test]
    fn unknown_keys_suggest_the_nearest_valid_key() {
        check(
            "[virtual_servers.web]\nlisten = \"127.0.0.1:80\"\nreal_server = []\n",
            &[
                "3:1: error: virtual_servers.web: unknown key \"real_server\"; did you mean \"real_servers\"? (valid keys: listen, protocol, scheduler, dataplane, persistence, persistence_netmask, sorry_server, quorum, hysteresis, health, retries, connect_timeout, real_servers)",
            ],
        );
        // Nothing close: no guess.
        check(
            "[vrrp.v1]\nflavour = 1\n",
            &[
                "1:7: error: vrrp.v1: missing key \"interface\" (e.g. interface = \"eth0\")",
                "1:7: error: vrrp.v1: missing key \"virtual_router_id\" (1 to 255, the same on every router of the group)",
                "1:7: error: vrrp.v1: missing key \"virtual_ipaddress\" (e.g. virtual_ipaddress = [\"10.0.0.100/24\"])",
                "2:1: error: vrrp.v1: unknown key \"flavour\" (valid keys: interface, virtual_router_id, priority, advert_int, version, state, nopreempt, preempt_delay, auth_pass, virtual_ipaddress, unicast_src_ip, unicast_peer, garp_master_delay, garp_master_repeat, garp_master_refresh, track, track_interface, v3_checksum_as_v2, notify)",
            ],
        );
    }

    #[test]
    fn columns_count_characters_and_keys_are_quoted_when_needed() {
        check(
            "[hostgroups]\n\"é\" = [\"x\", 1]\n",
            &[
                "2:1: error: hostgroups.\"é\": hostgroup name \"é\" may only contain letters, digits, \"_\", \".\" and \"-\"",
                "2:13: error: hostgroups.\"é\"[1]: expected a string, found integer 1",
            ],
        );
    }

    #[test]
    fn thresholds_and_persistence_netmask_parse() {
        let text = "[virtual_servers.web]\nlisten = \"10.0.0.1:80\"\ndataplane = \"ipvs\"\npersistence = \"10m\"\npersistence_netmask = \"255.255.255.0\"\nreal_servers = [\n  { addr = \"10.0.0.2\", upper_threshold = 100, lower_threshold = 50 },\n  { addr = \"10.0.0.3\", upper_threshold = 20 },\n  { addr = \"10.0.0.4\" },\n]\n[virtual_servers.v6]\nlisten = \"[2001:db8::1]:80\"\npersistence = \"1m\"\npersistence_netmask = 64\n[virtual_servers.slash]\nlisten = \"10.0.0.9:80\"\npersistence = \"1m\"\npersistence_netmask = \"/16\"\n";
        let (config, found) = parse_with(text, &FakeFs::default());
        assert_eq!(found, Vec::<String>::new());
        let config = config.unwrap();
        let web = &config.virtual_servers["web"];
        assert_eq!(web.persistence_netmask, Some(24));
        let thresholds: Vec<Thresholds> = web.real_servers.iter().map(|r| r.thresholds).collect();
        assert_eq!(
            thresholds,
            [
                Thresholds {
                    upper: 100,
                    lower: 50
                },
                Thresholds {
                    upper: 20,
                    lower: 0
                },
                Thresholds::default(),
            ]
        );
        assert_eq!(config.virtual_servers["v6"].persistence_netmask, Some(64));
        assert_eq!(
            config.virtual_servers["slash"].persistence_netmask,
            Some(16)
        );
        assert_eq!(
            config.virtual_servers["slash"].real_servers,
            Vec::<RealServer>::new()
        );
    }

    #[test]
    fn bad_thresholds_and_netmasks_name_their_key() {
        let vs = |extra: &str, rs: &str| {
            format!(
                "[virtual_servers.web]\nlisten = \"10.0.0.1:80\"\npersistence = \"1m\"\n{extra}\nreal_servers = [{{ addr = \"10.0.0.2\", {rs} }}]\n"
            )
        };
        check(
            &vs("", "upper_threshold = 10, lower_threshold = 20"),
            &[
                "5:78: error: virtual_servers.web.real_servers[0].lower_threshold: 20 is above virtual_servers.web.real_servers[0].upper_threshold (10); the lower threshold must not exceed the upper one",
            ],
        );
        check(
            &vs("", "upper_threshold = -1"),
            &[
                "5:56: error: virtual_servers.web.real_servers[0].upper_threshold: -1 is out of range (expected at least 0)",
            ],
        );
        check(
            &vs("", "lower_threshold = 5"),
            &[
                "5:56: warning: virtual_servers.web.real_servers[0].lower_threshold: has no effect without virtual_servers.web.real_servers[0].upper_threshold",
            ],
        );
        check(
            &vs("persistence_netmask = \"255.0.255.0\"", "weight = 1"),
            &[
                "4:23: error: virtual_servers.web.persistence_netmask: \"255.0.255.0\" is not a contiguous netmask (expected e.g. \"255.255.255.0\")",
            ],
        );
        check(
            &vs("persistence_netmask = 33", "weight = 1"),
            &[
                "4:23: error: virtual_servers.web.persistence_netmask: prefix length 33 is out of range for an IPv4 service (expected 1 to 32)",
            ],
        );
        check(
            &vs("persistence_netmask = \"wide\"", "weight = 1"),
            &[
                "4:23: error: virtual_servers.web.persistence_netmask: \"wide\" is not a netmask (expected a prefix length such as 24 or \"/64\", or an IPv4 dotted mask such as \"255.255.255.0\")",
            ],
        );
        check(
            "[virtual_servers.v6]\nlisten = \"[::1]:80\"\npersistence = \"1m\"\npersistence_netmask = \"255.255.255.0\"\n",
            &[
                "4:23: error: virtual_servers.v6.persistence_netmask: \"255.255.255.0\" is an IPv4 mask but the service is IPv6; give a prefix length such as 64",
            ],
        );
        check(
            "[virtual_servers.v6]\nlisten = \"[::1]:80\"\npersistence = \"1m\"\npersistence_netmask = 129\n",
            &[
                "4:23: error: virtual_servers.v6.persistence_netmask: prefix length 129 is out of range for an IPv6 service (expected 1 to 128)",
            ],
        );
        check(
            "[virtual_servers.web]\nlisten = \"10.0.0.1:80\"\npersistence_netmask = 24\n",
            &[
                "3:23: warning: virtual_servers.web.persistence_netmask: has no effect without persistence",
            ],
        );
    }

    #[test]
    fn keys_of_lists_the_serde_field_names() {
        assert_eq!(keys_of::<RawPeriodHead>(), ["spec", "label"]);
        assert_eq!(keys_of::<RawFileAction>(), ["type", "path"]);
    }

    #[test]
    fn small_value_parsers() {
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("0B").is_err());
        assert!(parse_size("99999999999GiB").is_err());
        assert_eq!(
            status_range(&Scalar::Text("200-204".into())),
            Ok((200, 204))
        );
        assert!(status_range(&Scalar::Integer(-1)).is_err());
        assert!(parse_virtual_address("10.0.0.1/24 dev").is_err());
        assert!(parse_virtual_address("10.0.0.1/24 brd 10.0.0.255").is_err());
        assert_eq!(
            did_you_mean("intreval", &["interval", "timeout"]),
            "; did you mean \"interval\"?"
        );
        assert_eq!(did_you_mean("x", &["interval"]), "");
        assert_eq!(
            did_you_mean("bakup", &["BACKUP", "MASTER"]),
            "; did you mean \"BACKUP\"?"
        );
        assert_eq!(truncate_bytes("ééé", 3), "é");
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
