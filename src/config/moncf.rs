//! mon.cf front end: mon 1.2's grammar (blocks, globals, service and period keywords) read into the model; reports every error, never evaluates Perl.
//!
//! The lexical rules follow mon's `read_cf`: whole-line comments dropped
//! first, `\` continuation, blank lines end blocks. One rule is deliberately
//! kinder: a `watch`/`hostgroup`/`view`/`alias` line inside a hostgroup block
//! with no blank line before it (mon's classic trap, which makes mon watch
//! nothing) is read as the new block the user meant, with a warning.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::FileSystem;
use crate::config::depend::{Expr, ServiceRef};
use crate::config::diag::{Diagnostics, Location};
use crate::config::model::{
    Action, AlertAfter, AlertEvery, AlertEveryMode, AlertLine, AuthType, BuiltinPolicy, Config,
    DepBehavior, ExitRange, Format, HostGroup, MailSettings, Monitor, Network, Origin, PeriodBlock,
    RouteDaemon, Service, Settings, SmtpSettings, SmtpTls, Watch,
};
use crate::config::settings::{self, MON_PORT};
use crate::config::{values, words};
use crate::period::{Period, Schedule};

/// Every global mon 1.2 accepts, then keepmon's additions.
pub const GLOBALS: &[&str] = &[
    "basedir",
    "cfbasedir",
    "alertdir",
    "mondir",
    "statedir",
    "logdir",
    "authfile",
    "authtype",
    "userfile",
    "pamservice",
    "serverport",
    "trapport",
    "serverbind",
    "trapbind",
    "clientallow",
    "pidfile",
    "maxprocs",
    "histlength",
    "historicfile",
    "historictime",
    "randstart",
    "cltimeout",
    "dtlogging",
    "dtlogfile",
    "monerrfile",
    "dep_recur_limit",
    "dep_behavior",
    "dep_memory",
    "unack_summary",
    "syslog_facility",
    "startupalerts_on_reset",
    "monremote",
    "exclude_period",
    // mon 0.99 only; accepted and ignored with a warning.
    "snmp",
    "snmpport",
    "ocfile",
    // keepmon additions.
    "luadir",
    "lua_files_dir",
    "lua_allow_networks",
    "control_socket",
    "metrics_listen",
    "web_listen",
    "builtin_monitors",
    "builtin_alerts",
    "monitor_timeout",
    "shutdown_grace",
    "mail_from",
    "smtp_relay",
    "smtp_tls",
    "mail_retry",
    "mail_max_age",
    "mail_digest_window",
    "director",
    "announce",
    "bgp_via",
    "bgp_bird_include",
    "bgp_birdc",
    "bgp_bird_socket",
    "bgp_vtysh",
    "bgp_frr_pathspace",
    "bgp_frr_route_map",
    "bgp_withdraw_drain",
];

/// Service-level keywords (they must come before the first `period`).
pub const SERVICE_KEYWORDS: &[&str] = &[
    "interval",
    "failure_interval",
    "monitor",
    "allow_empty_group",
    "description",
    "exclude_hosts",
    "exclude_period",
    "randskew",
    "depend",
    "alertdepend",
    "monitordepend",
    "hostdepend",
    "dep_behavior",
    "dep_memory",
    "redistribute",
    "unack_summary",
    "traptimeout",
    "trapduration",
    // keepmon additions.
    "schedule",
    "timeout",
    "rise",
    "fall",
];

/// Period-level keywords.
pub const PERIOD_KEYWORDS: &[&str] = &[
    "alert",
    "upalert",
    "startupalert",
    "ackalert",
    "disablealert",
    "alertevery",
    "alertafter",
    "numalerts",
    "no_comp_alerts",
    "upalertafter",
    "alerts_dont_count",
    "alertexitrange",
];

/// Monitors keepmon can run in-process when `mondir` lacks the script.
pub const BUILTIN_MONITORS: &[&str] = &[
    "tcp.monitor",
    "http.monitor",
    "fping.monitor",
    "ping.monitor",
];

/// Alerts keepmon implements itself.
pub const BUILTIN_ALERTS: &[&str] = &["mail.alert", "file.alert", "lvs.alert", "ipvs.alert"];

/// Parse mon.cf text. Returns a model whenever one could be built (so the
/// validator can add its own findings) and every diagnostic.
pub fn parse(text: &str, file: &Arc<Path>, fs: &dyn FileSystem) -> (Option<Config>, Diagnostics) {
    let mut parser = Parser::new(file, fs);
    for line in logical_lines(text) {
        parser.line(&line);
    }
    let config = parser.finish();
    (Some(config.0), config.1)
}

/// One logical line: comments dropped, continuations joined, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based number of the first physical line.
    pub number: u32,
    /// 1-based column of the first non-blank character.
    pub col: u32,
    pub text: String,
}

/// mon's lexical pass: `^\s*#` lines are dropped before anything else; a line
/// ending in `\` (plus optional blanks) continues onto the next, whose leading
/// blanks are removed; the result is trimmed.
pub fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut pending: Option<LogicalLine> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        if raw.trim_start().starts_with('#') {
            continue;
        }
        let (piece, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(before) => (before, true),
            None => (raw, false),
        };
        let line = match pending.take() {
            Some(mut open) => {
                open.text.push_str(piece.trim_start());
                open
            }
            None => {
                let indent = piece.len() - piece.trim_start().len();
                LogicalLine {
                    number,
                    col: u32::try_from(piece[..indent].chars().count() + 1).unwrap_or(1),
                    text: piece.trim_start().to_string(),
                }
            }
        };
        if continues {
            pending = Some(line);
        } else {
            out.push(finish_line(line));
        }
    }
    if let Some(open) = pending {
        out.push(finish_line(open));
    }
    out
}

fn finish_line(mut line: LogicalLine) -> LogicalLine {
    line.text = line.text.trim().to_string();
    line
}

/// Where the parser is: which block the next line belongs to.
enum Block {
    Top,
    HostGroup { name: String, line: u32 },
    Alias { name: String, line: u32 },
    View { name: String, line: u32 },
    Watch { group: String },
}

/// An alert or monitor line kept as words until the search paths are known
/// (globals may come after the watches that use them).
#[derive(Clone, Debug)]
struct RawCommand {
    exit: Option<ExitRange>,
    words: Vec<String>,
    location: Location,
}

#[derive(Default)]
struct RawPeriod {
    alerts: [Vec<RawCommand>; 5],
}

struct RawService {
    service: Service,
    monitor: Option<RawCommand>,
    redistribute: Option<RawCommand>,
    periods: Vec<RawPeriod>,
    first_period_line: Option<u32>,
}

/// Global values whose meaning depends on other globals (relative paths),
/// applied in `finish`.
#[derive(Default)]
struct PathGlobals {
    basedir: Option<String>,
    cfbasedir: Option<String>,
    alertdir: Option<String>,
    mondir: Option<String>,
    luadir: Option<String>,
    statedir: Option<String>,
    logdir: Option<String>,
    authfile: Option<String>,
    userfile: Option<String>,
    historicfile: Option<String>,
    dtlogfile: Option<String>,
    monerrfile: Option<String>,
    pidfile: Option<String>,
    control_socket: Option<String>,
}

struct Parser<'a> {
    file: Arc<Path>,
    fs: &'a dyn FileSystem,
    diags: Diagnostics,
    settings: Settings,
    paths: PathGlobals,
    serverbind: Option<IpAddr>,
    serverport: Option<u16>,
    trapbind: Option<IpAddr>,
    trapport: Option<u16>,
    // Positional defaults: a service takes the value in force at its `service` line.
    dep_behavior: DepBehavior,
    dep_memory: Option<Duration>,
    unack_summary: bool,
    block: Block,
    hostgroups: BTreeMap<String, HostGroup>,
    aliases: BTreeMap<String, Vec<String>>,
    views: BTreeMap<String, Vec<String>>,
    watches: BTreeMap<String, (Origin, Vec<RawService>)>,
    mail: MailSettings,
    announce: BTreeMap<String, crate::config::model::Announcement>,
    bgp: crate::config::model::BgpSettings,
}

const ALERT_KINDS: [&str; 5] = [
    "alert",
    "upalert",
    "startupalert",
    "ackalert",
    "disablealert",
];

impl<'a> Parser<'a> {
    fn new(file: &Arc<Path>, fs: &'a dyn FileSystem) -> Parser<'a> {
        Parser {
            file: Arc::clone(file),
            fs,
            diags: Diagnostics::default(),
            settings: settings::mon_defaults(fs),
            paths: PathGlobals::default(),
            serverbind: None,
            serverport: None,
            trapbind: None,
            trapport: None,
            dep_behavior: DepBehavior::Alert,
            dep_memory: None,
            unack_summary: false,
            block: Block::Top,
            hostgroups: BTreeMap::new(),
            aliases: BTreeMap::new(),
            views: BTreeMap::new(),
            watches: BTreeMap::new(),
            mail: settings::default_mail_settings(fs),
            announce: BTreeMap::new(),
            bgp: crate::config::model::BgpSettings::default(),
        }
    }

    fn loc(&self, line: &LogicalLine) -> Location {
        Location::new(&self.file, line.number, line.col)
    }

    /// The location of the token `word` inside `line` (exact for unwrapped
    /// lines): the first matching token after the keyword, else the keyword.
    fn loc_of(&self, line: &LogicalLine, word: &str) -> Location {
        let mut tokens = Vec::new();
        let mut start = None;
        for (i, c) in line.text.char_indices() {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    tokens.push((s, &line.text[s..i]));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            tokens.push((s, &line.text[s..]));
        }
        let byte = tokens
            .iter()
            .skip(1)
            .chain(tokens.first())
            .find(|(_, t)| *t == word)
            .map(|(b, _)| *b)
            .unwrap_or(0);
        let offset = line.text[..byte].chars().count();
        let col = line.col.saturating_add(u32::try_from(offset).unwrap_or(0));
        Location::new(&self.file, line.number, col)
    }

    fn error(&mut self, line: &LogicalLine, message: impl Into<String>) {
        let loc = self.loc(line);
        self.diags.error(loc, message);
    }

    fn error_at(&mut self, line: &LogicalLine, word: &str, message: impl Into<String>) {
        let loc = self.loc_of(line, word);
        self.diags.error(loc, message);
    }

    fn warning(&mut self, line: &LogicalLine, message: impl Into<String>) {
        let loc = self.loc(line);
        self.diags.warning(loc, message);
    }

    fn line(&mut self, line: &LogicalLine) {
        if line.text.is_empty() {
            self.block = Block::Top;
            return;
        }
        let (keyword, rest) = split_keyword(&line.text);

        // mon tests `name = value` globals first, outside watches.
        if !matches!(self.block, Block::Watch { .. })
            && let Some((name, value)) = global_assignment(&line.text)
        {
            self.global(line, name, value);
            return;
        }

        match &self.block {
            Block::Top => self.top_level(line, keyword, rest),
            Block::HostGroup { name, line: start } => {
                let (name, start) = (name.clone(), *start);
                if self.block_keyword_without_blank(line, keyword, "hostgroup", &name, start) {
                    return;
                }
                if looks_like_watch_content(keyword, rest) {
                    self.error(
                        line,
                        format!(
                            "\"{keyword}\" inside hostgroup \"{name}\" (begun at line {start}): mon would read \
                             \"{}\" as host names; add the missing blank line and a `watch` line before it",
                            line.text
                        ),
                    );
                    return;
                }
                self.add_hosts(line, &name);
            }
            Block::View { name, line: start } => {
                let (name, start) = (name.clone(), *start);
                if self.block_keyword_without_blank(line, keyword, "view", &name, start) {
                    return;
                }
                let members: Vec<String> = line.text.split_whitespace().map(String::from).collect();
                self.views.entry(name).or_default().extend(members);
            }
            Block::Alias { name, line: start } => {
                let (name, start) = (name.clone(), *start);
                if is_block_keyword(keyword) && is_tag(rest.split_whitespace().next().unwrap_or(""))
                {
                    self.error(
                        line,
                        format!(
                            "\"{}\" inside alias \"{name}\" (begun at line {start}) is ambiguous: alias text \
                             runs until a blank line; add a blank line before it if it starts a new {keyword} \
                             block, or reword the alias text",
                            line.text
                        ),
                    );
                    return;
                }
                self.aliases
                    .entry(name)
                    .or_default()
                    .push(line.text.clone());
            }
            Block::Watch { group } => {
                let group = group.clone();
                if is_block_keyword(keyword) {
                    self.top_level(line, keyword, rest);
                } else {
                    self.watch_line(line, &group, keyword, rest);
                }
            }
        }
    }

    /// A block keyword inside a hostgroup/view block with no blank line before it.
    fn block_keyword_without_blank(
        &mut self,
        line: &LogicalLine,
        keyword: &str,
        kind: &str,
        name: &str,
        start: u32,
    ) -> bool {
        if !is_block_keyword(keyword) {
            return false;
        }
        self.warning(
            line,
            format!(
                "missing blank line before \"{}\": the {kind} \"{name}\" begun at line {start} runs until a blank \
                 line, so mon would read this line as more {} and watch nothing; keepmon reads it as a new \
                 {keyword} block (add a blank line before line {} to make the file portable)",
                line.text,
                if kind == "view" { "view members" } else { "host names" },
                line.number
            ),
        );
        let (keyword, rest) = split_keyword(&line.text);
        self.top_level(line, keyword, rest);
        true
    }

    fn top_level(&mut self, line: &LogicalLine, keyword: &str, rest: &str) {
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap_or("");
        match keyword {
            "hostgroup" | "alias" | "view" | "watch" if name.is_empty() => {
                self.error(line, format!("{keyword} needs a name"));
                self.block = Block::Top;
            }
            "hostgroup" | "alias" | "view" | "watch" if !is_tag(name) => {
                self.error_at(
                    line,
                    name,
                    format!("bad {keyword} name \"{name}\" (allowed: letters, digits, _ . -)"),
                );
                self.block = Block::Top;
            }
            "hostgroup" => {
                if let Some(first) = self.hostgroups.get(name) {
                    let msg = format!(
                        "duplicate hostgroup \"{name}\" (first defined at {})",
                        first.origin
                    );
                    self.error_at(line, name, msg);
                } else {
                    self.hostgroups.insert(
                        name.to_string(),
                        HostGroup {
                            name: name.to_string(),
                            hosts: Vec::new(),
                            implicit: false,
                            origin: Origin(self.loc(line)),
                        },
                    );
                }
                self.block = Block::HostGroup {
                    name: name.to_string(),
                    line: line.number,
                };
                let hosts = words.collect::<Vec<_>>().join(" ");
                if !hosts.is_empty() {
                    let hosts_line = LogicalLine {
                        text: hosts,
                        ..line.clone()
                    };
                    self.add_hosts(&hosts_line, name);
                }
            }
            "alias" => {
                if self.aliases.contains_key(name) {
                    self.error_at(line, name, format!("duplicate alias \"{name}\""));
                }
                self.aliases.insert(name.to_string(), Vec::new());
                self.block = Block::Alias {
                    name: name.to_string(),
                    line: line.number,
                };
            }
            "view" => {
                if self.views.contains_key(name) {
                    self.error_at(line, name, format!("duplicate view \"{name}\""));
                }
                self.views
                    .insert(name.to_string(), words.map(String::from).collect());
                self.block = Block::View {
                    name: name.to_string(),
                    line: line.number,
                };
            }
            "watch" => {
                if let Some(extra) = words.next() {
                    self.error_at(
                        line,
                        extra,
                        format!("unexpected \"{extra}\" after watch {name}"),
                    );
                }
                if let Some((origin, _)) = self.watches.get(name) {
                    let msg = format!("duplicate watch \"{name}\" (first defined at {origin})");
                    self.error_at(line, name, msg);
                } else {
                    self.watches
                        .insert(name.to_string(), (Origin(self.loc(line)), Vec::new()));
                }
                self.block = Block::Watch {
                    group: name.to_string(),
                };
            }
            _ if SERVICE_KEYWORDS.contains(&keyword)
                || PERIOD_KEYWORDS.contains(&keyword)
                || keyword == "service"
                || keyword == "period" =>
            {
                self.error(
                    line,
                    format!("\"{keyword}\" outside a watch block (a blank line ends a watch; remove it or add a `watch` line)"),
                );
            }
            _ => {
                let hint = values::suggest(keyword, GLOBALS)
                    .map(|g| format!(" (did you mean the global \"{g} = ...\"?)"))
                    .unwrap_or_default();
                self.error(line, format!("unknown syntax \"{}\"{hint}", line.text));
            }
        }
    }

    fn add_hosts(&mut self, line: &LogicalLine, group: &str) {
        for host in line.text.split_whitespace() {
            let host_name = host.trim_start_matches('*');
            if host_name.is_empty() || host_name.chars().any(|c| c.is_control() || c == ',') {
                self.error_at(
                    line,
                    host,
                    format!("bad host name \"{host}\" in hostgroup {group}"),
                );
                continue;
            }
            if let Some(g) = self.hostgroups.get_mut(group) {
                g.hosts.push(host.to_string());
            }
        }
    }

    fn global(&mut self, line: &LogicalLine, name: &str, value: &str) {
        let value = value.trim();
        let result: Result<(), String> = match name {
            "basedir" => set(&mut self.paths.basedir, value),
            "cfbasedir" => set(&mut self.paths.cfbasedir, value),
            "alertdir" => set(&mut self.paths.alertdir, value),
            "mondir" => set(&mut self.paths.mondir, value),
            "luadir" => set(&mut self.paths.luadir, value),
            "lua_files_dir" => {
                if value.starts_with('/') {
                    self.settings.lua.files_dir = Some(PathBuf::from(value));
                    Ok(())
                } else {
                    Err(format!(
                        "lua_files_dir must be an absolute path: \"{value}\""
                    ))
                }
            }
            "lua_allow_networks" => value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .map(Network::parse)
                .collect::<Result<Vec<_>, _>>()
                .map(|n| self.settings.lua.allow_networks = n),
            "statedir" => set(&mut self.paths.statedir, value),
            "logdir" => set(&mut self.paths.logdir, value),
            "authfile" => set(&mut self.paths.authfile, value),
            "userfile" => set(&mut self.paths.userfile, value),
            "historicfile" => set(&mut self.paths.historicfile, value),
            "dtlogfile" => set(&mut self.paths.dtlogfile, value),
            "monerrfile" => set(&mut self.paths.monerrfile, value),
            "pidfile" => set(&mut self.paths.pidfile, value),
            "control_socket" => set(&mut self.paths.control_socket, value),
            "authtype" => parse_authtypes(value).map(|v| self.settings.auth.authtype = v),
            "pamservice" => {
                self.settings.auth.pamservice = value.to_string();
                Ok(())
            }
            "serverport" => parse_port(value).map(|p| self.serverport = Some(p)),
            "trapport" => parse_port(value).map(|p| self.trapport = Some(p)),
            "serverbind" => parse_bind(value).map(|a| self.serverbind = Some(a)),
            "trapbind" => parse_bind(value).map(|a| self.trapbind = Some(a)),
            "clientallow" => parse_clientallow(value).map(|v| self.settings.clientallow = v),
            "maxprocs" => parse_number(value).map(|n| self.settings.maxprocs = n),
            "histlength" => parse_number(value).map(|n: u32| self.settings.histlength = n as usize),
            "historictime" => {
                values::parse_timeval(value).map(|d| self.settings.historictime = Some(d))
            }
            "randstart" => values::parse_timeval(value).map(|d| self.settings.randstart = Some(d)),
            "cltimeout" => parse_seconds_or_timeval(value).map(|d| self.settings.cltimeout = d),
            "dtlogging" => parse_bool(value).map(|b| self.settings.dtlogging = b),
            "dep_recur_limit" => parse_number(value).map(|n| self.settings.dep_recur_limit = n),
            "dep_behavior" => parse_dep_behavior(value).map(|b| self.dep_behavior = b),
            "dep_memory" => values::parse_timeval(value).map(|d| self.dep_memory = Some(d)),
            "unack_summary" => parse_bool(value).map(|b| self.unack_summary = b),
            "syslog_facility" => {
                self.settings.syslog_facility = value.to_string();
                Ok(())
            }
            "startupalerts_on_reset" => {
                parse_bool(value).map(|b| self.settings.startupalerts_on_reset = b)
            }
            "monremote" => {
                self.settings.monremote = (!value.is_empty()).then(|| value.to_string());
                Ok(())
            }
            "exclude_period" => Period::parse(value)
                .map(|p| self.settings.exclude_period = Some(p))
                .map_err(|e| e.to_string()),
            "metrics_listen" => value
                .parse::<SocketAddr>()
                .map(|a| self.settings.metrics_listener = Some(a))
                .map_err(|_| format!("bad listen address \"{value}\" (expected ip:port)")),
            "web_listen" => value
                .parse::<SocketAddr>()
                .map(|a| self.settings.web.listen = Some(a))
                .map_err(|_| format!("bad listen address \"{value}\" (expected ip:port)")),
            "builtin_monitors" => parse_policy(value).map(|p| self.settings.builtin_monitors = p),
            "builtin_alerts" => parse_policy(value).map(|p| self.settings.builtin_alerts = p),
            "monitor_timeout" => {
                values::parse_timeval(value).map(|d| self.settings.monitor_timeout = d)
            }
            "shutdown_grace" => {
                values::parse_timeval(value).map(|d| self.settings.shutdown_grace = d)
            }
            "mail_from" => values::check_mail_address(value).map(|()| {
                self.mail.from = Some(value.to_string());
            }),
            "smtp_relay" => parse_relay(value).map(|(host, port)| {
                self.mail.smtp = Some(SmtpSettings {
                    host,
                    port: port.unwrap_or(25),
                    tls: SmtpTls::None,
                    username: None,
                    password: None,
                    timeout: Duration::from_secs(30),
                    helo_name: None,
                    ca_file: None,
                });
            }),
            "smtp_tls" => match value {
                "none" => Ok(SmtpTls::None),
                "starttls" => Ok(SmtpTls::StartTls),
                "implicit" => Ok(SmtpTls::Implicit),
                _ => Err(format!(
                    "unknown tls mode \"{value}\" (expected none, starttls or implicit)"
                )),
            }
            .and_then(|tls| match self.mail.smtp.as_mut() {
                Some(smtp) => {
                    smtp.tls = tls;
                    Ok(())
                }
                None => Err("set smtp_relay first".to_string()),
            }),
            "mail_retry" => values::parse_timeval(value).map(|d| {
                self.mail.retry_initial = d;
                self.mail.retry_max = self.mail.retry_max.max(d);
            }),
            "mail_max_age" => values::parse_timeval(value).map(|d| self.mail.max_age = d),
            "mail_digest_window" => {
                values::parse_timeval(value).map(|d| self.mail.digest_window = Some(d))
            }
            "director" => {
                self.settings.director = (!value.is_empty()).then(|| value.to_string());
                Ok(())
            }
            "announce" => self.announce_global(line, value),
            "bgp_via" => match value {
                "bird" => Ok(RouteDaemon::Bird),
                "exabgp" => Ok(RouteDaemon::ExaBgp),
                "frr" => Ok(RouteDaemon::Frr),
                _ => Err(format!(
                    "unknown routing daemon \"{value}\" (expected bird, exabgp or frr)"
                )),
            }
            .map(|via| self.bgp.via = via),
            "bgp_bird_include" => {
                self.bgp.bird_include = PathBuf::from(value);
                Ok(())
            }
            "bgp_birdc" => {
                self.bgp.birdc = PathBuf::from(value);
                Ok(())
            }
            "bgp_bird_socket" => {
                self.bgp.bird_socket = Some(PathBuf::from(value));
                Ok(())
            }
            "bgp_vtysh" => {
                self.bgp.vtysh = PathBuf::from(value);
                Ok(())
            }
            "bgp_frr_pathspace" => {
                self.bgp.frr_pathspace = Some(value.to_string());
                Ok(())
            }
            "bgp_frr_route_map" if value.is_empty() || value.contains(char::is_whitespace) => {
                Err(format!("\"{value}\" is not a route-map name"))
            }
            "bgp_frr_route_map" => {
                self.bgp.frr_route_map = value.to_string();
                Ok(())
            }
            "bgp_withdraw_drain" => {
                values::parse_timeval(value).map(|d| self.bgp.withdraw_drain = d)
            }
            "snmp" | "snmpport" | "ocfile" => {
                self.warning(
                    line,
                    format!("global \"{name}\" is from mon 0.99 and has no effect (ignored)"),
                );
                Ok(())
            }
            _ => {
                let hint = values::suggest(name, GLOBALS)
                    .map(|g| format!("; did you mean \"{g}\"?"))
                    .unwrap_or_default();
                Err(format!("unknown global \"{name}\"{hint}"))
            }
        };
        if let Err(message) = result {
            let message = if message.starts_with("unknown global") {
                message
            } else {
                format!("{name}: {message}")
            };
            self.error(line, message);
        }
    }

    /// `announce = NAME PREFIX CONDITION` (keepmon's; one line per
    /// announcement, the condition in the `when` language).
    fn announce_global(&mut self, line: &LogicalLine, value: &str) -> Result<(), String> {
        let mut words = value.splitn(3, char::is_whitespace);
        let (Some(name), Some(prefix), Some(when)) = (words.next(), words.next(), words.next())
        else {
            return Err(
                "expected NAME PREFIX CONDITION, e.g. announce = vip 192.0.2.10/32 service:dns/udp"
                    .to_string(),
            );
        };
        let (addr, len) = super::native::announce::parse_prefix(prefix)?;
        let when = crate::config::when::When::parse(when.trim())?;
        if self.announce.contains_key(name) {
            return Err(format!("announcement \"{name}\" is defined twice"));
        }
        self.announce.insert(
            name.to_string(),
            crate::config::model::Announcement {
                name: name.to_string(),
                prefix: addr,
                prefix_len: len,
                when,
                origin: Origin(self.loc(line)),
            },
        );
        Ok(())
    }

    fn watch_line(&mut self, line: &LogicalLine, group: &str, keyword: &str, rest: &str) {
        if keyword == "service" {
            self.new_service(line, group, rest);
            return;
        }
        let Some(services) = self.watches.get_mut(group).map(|w| &mut w.1) else {
            return; // duplicate watch: already reported, skip its body
        };
        let Some(current) = services.last_mut() else {
            if env_assignment(&line.text).is_some() {
                self.error(
                    line,
                    "environment line before any `service` in this watch".to_string(),
                );
            } else {
                self.error(
                    line,
                    format!(
                        "expected `service NAME` after `watch {group}`, found \"{}\"",
                        line.text
                    ),
                );
            }
            return;
        };
        if let Some((name, value)) = env_assignment(&line.text) {
            current
                .service
                .env
                .insert(name.to_string(), value.to_string());
            return;
        }
        if keyword == "period" {
            let (first, service_name) = (current.first_period_line, current.service.name.clone());
            self.new_period(line, group, &service_name, rest, first.is_none());
            return;
        }
        let in_period = current.first_period_line;
        if let Some(first) = in_period {
            if PERIOD_KEYWORDS.contains(&keyword) {
                self.period_keyword(line, group, keyword, rest);
            } else if SERVICE_KEYWORDS.contains(&keyword) {
                self.error(
                    line,
                    format!(
                        "service keyword \"{keyword}\" after the first period (line {first}); mon reads \
                         everything after a `period` line as period keywords, so move it above line {first}"
                    ),
                );
            } else {
                self.unknown_keyword(line, keyword, PERIOD_KEYWORDS, "period");
            }
        } else if SERVICE_KEYWORDS.contains(&keyword) {
            self.service_keyword(line, group, keyword, rest);
        } else if PERIOD_KEYWORDS.contains(&keyword) {
            self.error(
                line,
                format!("\"{keyword}\" must be inside a period: add a `period` line before it (a bare `period` means always)"),
            );
        } else {
            self.unknown_keyword(line, keyword, SERVICE_KEYWORDS, "service");
        }
    }

    fn unknown_keyword(&mut self, line: &LogicalLine, keyword: &str, known: &[&str], level: &str) {
        let hint = values::suggest(keyword, known)
            .map(|k| format!("; did you mean \"{k}\"?"))
            .unwrap_or_default();
        self.error(line, format!("unknown {level} keyword \"{keyword}\"{hint}"));
    }

    fn current_service(&mut self, group: &str) -> Option<&mut RawService> {
        self.watches.get_mut(group)?.1.last_mut()
    }

    fn new_service(&mut self, line: &LogicalLine, group: &str, rest: &str) {
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap_or("");
        if name.is_empty() {
            self.error(line, "service needs a name");
            return;
        }
        if !is_tag(name) {
            self.error_at(
                line,
                name,
                format!("bad service name \"{name}\" (allowed: letters, digits, _ . -)"),
            );
            return;
        }
        if let Some(extra) = words.next() {
            self.error_at(
                line,
                extra,
                format!("unexpected \"{extra}\" after service {name}"),
            );
        }
        let origin = Origin(self.loc(line));
        let service = Service {
            group: group.to_string(),
            name: name.to_string(),
            description: None,
            interval: None,
            failure_interval: None,
            schedule: None,
            randskew: None,
            monitor: None,
            run_as: None,
            timeout: None,
            allow_empty_group: false,
            exclude_hosts: Vec::new(),
            exclude_period: None,
            depend: None,
            alertdepend: None,
            monitordepend: None,
            hostdepend: Vec::new(),
            dep_behavior: self.dep_behavior,
            dep_memory: self.dep_memory,
            redistribute: None,
            unack_summary: self.unack_summary,
            exit_weight: false,
            traptimeout: None,
            trapduration: None,
            env: BTreeMap::new(),
            rise: 1,
            fall: 1,
            periods: Vec::new(),
            origin,
        };
        let Some((_, services)) = self.watches.get_mut(group) else {
            return;
        };
        if let Some(first) = services.iter().find(|s| s.service.name == name) {
            let msg = format!(
                "duplicate service \"{name}\" in watch {group} (first defined at {})",
                first.service.origin
            );
            self.error_at(line, name, msg);
            // Keep parsing its body into a throwaway entry so its errors are still found.
        }
        if let Some((_, services)) = self.watches.get_mut(group) {
            services.push(RawService {
                service,
                monitor: None,
                redistribute: None,
                periods: Vec::new(),
                first_period_line: None,
            });
        }
    }

    fn service_keyword(&mut self, line: &LogicalLine, group: &str, keyword: &str, rest: &str) {
        let loc = self.loc(line);
        let rest = rest.trim();
        let needs_value = !matches!(
            keyword,
            "allow_empty_group" | "unack_summary" | "description"
        );
        if needs_value && rest.is_empty() {
            self.error(line, format!("{keyword} needs a value"));
            return;
        }
        let result: Result<(), String> = {
            let Some(raw) = self.current_service(group) else {
                return;
            };
            let s = &mut raw.service;
            match keyword {
                "interval" => values::parse_timeval(rest).map(|d| s.interval = Some(d)),
                "failure_interval" => {
                    values::parse_timeval(rest).map(|d| s.failure_interval = Some(d))
                }
                "randskew" => values::parse_timeval(rest).map(|d| s.randskew = Some(d)),
                "traptimeout" => values::parse_timeval(rest).map(|d| s.traptimeout = Some(d)),
                "trapduration" => values::parse_timeval(rest).map(|d| s.trapduration = Some(d)),
                "dep_memory" => values::parse_timeval(rest).map(|d| s.dep_memory = Some(d)),
                "timeout" => values::parse_timeval(rest).map(|d| s.timeout = Some(d)),
                "schedule" => Schedule::parse(rest)
                    .map(|c| s.schedule = Some(c))
                    .map_err(|e| e.to_string()),
                "rise" => parse_count(rest).map(|n| s.rise = n),
                "fall" => parse_count(rest).map(|n| s.fall = n),
                "description" => {
                    s.description = Some(rest.to_string());
                    Ok(())
                }
                "allow_empty_group" => no_args(keyword, rest).map(|()| s.allow_empty_group = true),
                "unack_summary" => {
                    if rest.is_empty() {
                        s.unack_summary = true;
                        Ok(())
                    } else {
                        parse_bool(rest).map(|b| s.unack_summary = b)
                    }
                }
                "exclude_hosts" => {
                    s.exclude_hosts = rest.split_whitespace().map(String::from).collect();
                    Ok(())
                }
                "exclude_period" => Period::parse(rest)
                    .map(|p| s.exclude_period = Some(p))
                    .map_err(|e| e.to_string()),
                "dep_behavior" => parse_dep_behavior(rest).map(|b| s.dep_behavior = b),
                "hostdepend" => parse_service_list(rest, group).map(|v| s.hostdepend = v),
                "depend" | "alertdepend" | "monitordepend" => match Expr::parse(rest) {
                    Ok(parsed) => {
                        let expr = resolve_self_in(parsed.expr, group);
                        match keyword {
                            "depend" => s.depend = Some(expr),
                            "alertdepend" => s.alertdepend = Some(expr),
                            _ => s.monitordepend = Some(expr),
                        }
                        if parsed.legacy_space_separated {
                            Err(String::from("\u{0}legacy"))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => Err(e.to_string()),
                },
                "monitor" | "redistribute" => match words::split(rest) {
                    Ok(words) if words.is_empty() => Err("needs a name".to_string()),
                    Ok(words) => {
                        let command = RawCommand {
                            exit: None,
                            words,
                            location: loc.clone(),
                        };
                        if keyword == "monitor" {
                            raw.monitor = Some(command);
                        } else {
                            raw.redistribute = Some(command);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
                _ => Err(format!("unhandled service keyword \"{keyword}\"")),
            }
        };
        match result {
            Ok(()) => {}
            Err(message) if message == "\u{0}legacy" => self.warning(
                line,
                format!(
                    "space-separated {keyword} \"{rest}\" is read as AND of the services; mon evaluates it as a \
                     Perl syntax error and suppresses alerts forever; write it with && (e.g. \"{}\")",
                    rest.split_whitespace().collect::<Vec<_>>().join(" && ")
                ),
            ),
            Err(message) => self.error(line, format!("{keyword}: {message}")),
        }
    }

    fn new_period(
        &mut self,
        line: &LogicalLine,
        group: &str,
        service: &str,
        rest: &str,
        first: bool,
    ) {
        let rest = rest.trim();
        let (label, spec_text) = match split_period_label(rest) {
            Some((label, spec)) => (Some(label.to_string()), spec.trim()),
            None => (None, rest),
        };
        let key = label.clone().unwrap_or_else(|| spec_text.to_string());
        let spec = match Period::parse(spec_text) {
            Ok(p) => p,
            Err(e) => {
                self.error(line, format!("period: {e}"));
                Period::always()
            }
        };
        let origin = Origin(self.loc(line));
        let Some(raw) = self.current_service(group) else {
            return;
        };
        if first {
            raw.first_period_line = Some(line.number);
        }
        let duplicate = raw.service.periods.iter().any(|p| p.key == key);
        raw.service.periods.push(PeriodBlock {
            key: key.clone(),
            spec,
            alerts: Vec::new(),
            upalerts: Vec::new(),
            startupalerts: Vec::new(),
            ackalerts: Vec::new(),
            disablealerts: Vec::new(),
            alertevery: None,
            alertafter: None,
            numalerts: None,
            no_comp_alerts: false,
            upalertafter: None,
            alerts_dont_count: false,
            alertexitrange: None,
            origin,
        });
        raw.periods.push(RawPeriod::default());
        if duplicate {
            let shown = if key.is_empty() {
                "(always)"
            } else {
                key.as_str()
            };
            self.error(
                line,
                format!("duplicate period \"{shown}\" in service {group}/{service}"),
            );
        }
    }

    fn period_keyword(&mut self, line: &LogicalLine, group: &str, keyword: &str, rest: &str) {
        let loc = self.loc(line);
        let rest = rest.trim();
        let Some(raw) = self.current_service(group) else {
            return;
        };
        let interval = raw.service.interval;
        let (Some(period), Some(raw_period)) =
            (raw.service.periods.last_mut(), raw.periods.last_mut())
        else {
            return;
        };
        let result: Result<(), String> = match keyword {
            "alert" | "upalert" | "startupalert" | "ackalert" | "disablealert" => {
                let slot = ALERT_KINDS.iter().position(|k| *k == keyword).unwrap_or(0);
                parse_alert_command(rest, keyword == "alert", loc)
                    .map(|c| raw_period.alerts[slot].push(c))
            }
            "alertevery" => parse_alertevery(rest).map(|a| period.alertevery = Some(a)),
            "alertafter" => parse_alertafter(rest, interval).map(|a| period.alertafter = Some(a)),
            "numalerts" => parse_number(rest).map(|n| period.numalerts = Some(n)),
            "upalertafter" => values::parse_timeval(rest).map(|d| period.upalertafter = Some(d)),
            "alertexitrange" => {
                values::parse_exit_range(rest).map(|r| period.alertexitrange = Some(r))
            }
            "no_comp_alerts" => no_args(keyword, rest).map(|()| period.no_comp_alerts = true),
            "alerts_dont_count" => no_args(keyword, rest).map(|()| period.alerts_dont_count = true),
            _ => Err(format!("unhandled period keyword \"{keyword}\"")),
        };
        if let Err(message) = result {
            self.error(line, format!("{keyword}: {message}"));
        }
    }

    /// Resolve paths, search for scripts, build the model.
    fn finish(mut self) -> (Config, Diagnostics) {
        self.apply_path_globals();
        let mut hostgroups = std::mem::take(&mut self.hostgroups);
        let mut watches = BTreeMap::new();
        let raw_watches = std::mem::take(&mut self.watches);
        for (group, (origin, services)) in raw_watches {
            if !hostgroups.contains_key(&group) {
                self.diags.warning(
                    origin.0.clone(),
                    format!("watch \"{group}\" names no hostgroup; using a hostgroup with the single host \"{group}\" (as mon does)"),
                );
                hostgroups.insert(
                    group.clone(),
                    HostGroup {
                        name: group.clone(),
                        hosts: vec![group.clone()],
                        implicit: true,
                        origin: origin.clone(),
                    },
                );
            }
            let mut built = BTreeMap::new();
            for raw in services {
                let service = self.finish_service(raw);
                // A duplicate was reported; keep the first definition.
                built.entry(service.name.clone()).or_insert(service);
            }
            watches.insert(
                group.clone(),
                Watch {
                    group,
                    services: built,
                    origin,
                },
            );
        }
        let config = Config {
            format: Format::Mon,
            source: self.file.to_path_buf(),
            settings: self.settings,
            mail: self.mail,
            hostgroups,
            aliases: self.aliases,
            views: self.views,
            watches,
            virtual_servers: BTreeMap::new(),
            vrrp: BTreeMap::new(),
            vrrp_sync_groups: BTreeMap::new(),
            bfd: BTreeMap::new(),
            announce: self.announce,
            bgp: self.bgp,
            stats_pages: Vec::new(),
            file_inits: Vec::new(),
        };
        (config, self.diags)
    }

    fn apply_path_globals(&mut self) {
        let p = std::mem::take(&mut self.paths);
        let s = &mut self.settings;
        if let Some(b) = p.basedir {
            s.basedir = PathBuf::from(b);
        }
        if let Some(c) = p.cfbasedir {
            s.cfbasedir = PathBuf::from(c);
            s.auth.authfile = s.cfbasedir.join("auth.cf");
            s.auth.userfile = s.cfbasedir.join("monusers.cf");
        }
        let base = s.basedir.clone();
        s.alertdir = settings::search_path(
            p.alertdir
                .as_deref()
                .unwrap_or("/usr/local/lib/mon/alert.d:alert.d"),
            &base,
        );
        s.mondir = settings::search_path(
            p.mondir
                .as_deref()
                .unwrap_or("/usr/local/lib/mon/mon.d:mon.d"),
            &base,
        );
        if let Some(l) = p.luadir {
            s.luadir = settings::search_path(&l, &base);
        }
        if let Some(d) = p.statedir {
            s.statedir = settings::resolve(&base, d);
        }
        if let Some(d) = p.logdir {
            s.logdir = settings::resolve(&base, d);
        }
        if let Some(f) = p.authfile {
            s.auth.authfile = settings::resolve(&s.cfbasedir, f);
        }
        if let Some(f) = p.userfile {
            s.auth.userfile = settings::resolve(&s.cfbasedir, f);
        }
        s.historicfile = p.historicfile.map(|f| settings::resolve(&s.logdir, f));
        s.dtlogfile =
            settings::resolve(&s.logdir, p.dtlogfile.as_deref().unwrap_or("downtime.log"));
        s.monerrfile = p.monerrfile.map(PathBuf::from);
        s.pidfile = p.pidfile.filter(|f| !f.is_empty()).map(PathBuf::from);
        s.control_socket = match p.control_socket {
            Some(c) => settings::resolve(&s.statedir, c),
            None => s.statedir.join("keepmon.sock"),
        };
        let bind = self.serverbind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        s.mon_listener = Some(SocketAddr::new(bind, self.serverport.unwrap_or(MON_PORT)));
        let trap_bind = self.trapbind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        s.trap_listener = Some(SocketAddr::new(
            trap_bind,
            self.trapport.unwrap_or(MON_PORT),
        ));
    }

    fn finish_service(&mut self, raw: RawService) -> Service {
        let mut service = raw.service;
        if let Some(command) = raw.monitor {
            service.monitor = self.resolve_monitor(command);
        }
        if let Some(command) = raw.redistribute {
            service.redistribute = self.resolve_alert(command, "redistribute");
        }
        for (period, raw_period) in service.periods.iter_mut().zip(raw.periods) {
            let [alerts, upalerts, startupalerts, ackalerts, disablealerts] = raw_period.alerts;
            period.alerts = alerts
                .into_iter()
                .filter_map(|c| self.resolve_alert(c, "alert"))
                .collect();
            period.upalerts = upalerts
                .into_iter()
                .filter_map(|c| self.resolve_alert(c, "upalert"))
                .collect();
            period.startupalerts = startupalerts
                .into_iter()
                .filter_map(|c| self.resolve_alert(c, "startupalert"))
                .collect();
            period.ackalerts = ackalerts
                .into_iter()
                .filter_map(|c| self.resolve_alert(c, "ackalert"))
                .collect();
            period.disablealerts = disablealerts
                .into_iter()
                .filter_map(|c| self.resolve_alert(c, "disablealert"))
                .collect();
        }
        service
    }

    fn resolve_monitor(&mut self, command: RawCommand) -> Option<Monitor> {
        let mut words = command.words;
        let append_hosts = if words.last().map(String::as_str) == Some(";;") {
            words.pop();
            false
        } else {
            true
        };
        if words.is_empty() {
            self.diags.error(command.location, "monitor needs a name");
            return None;
        }
        let name = words.remove(0);
        if let Some(script) = name.strip_prefix("lua:") {
            if settings::find_lua(&self.settings, script, self.fs).is_none() {
                self.diags.error(
                    command.location,
                    format!(
                        "lua monitor \"{script}\" not found in luadir or the shipped monitors/"
                    ),
                );
            }
            return Some(Monitor::Lua {
                script: script.to_string(),
                args: words,
            });
        }
        let path = settings::find_in(&self.settings.mondir, &name, self.fs);
        let builtin = BUILTIN_MONITORS.contains(&name.as_str())
            && self.settings.builtin_monitors != BuiltinPolicy::Never;
        if path.is_none() && !builtin {
            self.diags.warning(
                command.location,
                format!(
                    "monitor \"{name}\" not found in mondir {}; the service will report configerr until it is installed",
                    show_path(&self.settings.mondir)
                ),
            );
        }
        Some(Monitor::Exec {
            name,
            args: words,
            append_hosts,
            path,
        })
    }

    /// mail.alert reads its options with Perl's `getopts("S:s:g:h:t:l:f:u")`,
    /// which drops an unknown option (after a message on stderr) and carries
    /// on; mon's own `-u` written on an upalert is harmless. Both are dropped
    /// here with a warning, as the mail mon sends is the same.
    fn mail_alert_leniency(&mut self, args: &mut Vec<String>, kind: &str, at: &Location) {
        const KNOWN: &str = "Ssghtlfu";
        let mut kept = Vec::with_capacity(args.len());
        let mut words = std::mem::take(args).into_iter();
        while let Some(word) = words.next() {
            let option = word
                .strip_prefix('-')
                .filter(|o| !o.is_empty() && !word.starts_with("--"));
            match option {
                Some("u") if kind == "upalert" => self.diags.warning(
                    at.clone(),
                    "upalert mail.alert: -u is what mon adds to every upalert; keepmon adds it too, so this one can go",
                ),
                Some(letters) if letters.len() == 1 && !KNOWN.contains(letters) => {
                    self.diags.warning(
                        at.clone(),
                        format!(
                            "{kind} mail.alert: unknown option \"{word}\"; mail.alert's getopts drops it \
                             (printing \"Unknown option: {letters}\") and mails anyway, and so does keepmon"
                        ),
                    );
                }
                Some("S" | "f") => {
                    kept.push(word);
                    if let Some(value) = words.next() {
                        kept.push(value);
                    }
                }
                _ => kept.push(word),
            }
        }
        *args = kept;
    }

    fn resolve_alert(&mut self, command: RawCommand, kind: &str) -> Option<AlertLine> {
        let mut words = command.words;
        if words.is_empty() {
            self.diags
                .error(command.location, format!("{kind} needs an alert name"));
            return None;
        }
        let name = words.remove(0);
        let mut args = words;
        if name == "mail.alert" {
            self.mail_alert_leniency(&mut args, kind, &command.location);
        }
        let found = || settings::find_in(&self.settings.alertdir, &name, self.fs);
        let lvs = matches!(name.as_str(), "lvs.alert" | "ipvs.alert");
        if lvs && kind == "upalert" && args.iter().any(|a| a == "-u") {
            // LVS-HOWTO configs write mon's own -u on their upalert lines;
            // mon passes it on and the script sees it twice, harmlessly.
            args.retain(|a| a != "-u");
            self.diags.warning(
                command.location.clone(),
                format!(
                    "upalert {name}: -u is what mon adds to every upalert (the script sees it twice, \
                     harmlessly); keepmon adds it too, so this one can go"
                ),
            );
        }
        let action = if name == "alertmanager.alert" {
            // keepmon's own: there is no mon script of that name to prefer.
            values::parse_alertmanager_alert_args(&args).map(Action::Alertmanager)
        } else if let Some(script) = name.strip_prefix("lua:") {
            if settings::find_lua(&self.settings, script, self.fs).is_none() {
                self.diags.error(
                    command.location,
                    format!("lua alert \"{script}\" not found in luadir or the shipped alerts/"),
                );
                return None;
            }
            Ok(Action::Lua {
                script: script.to_string(),
                args,
            })
        } else if BUILTIN_ALERTS.contains(&name.as_str())
            && match self.settings.builtin_alerts {
                BuiltinPolicy::Prefer => true,
                BuiltinPolicy::Fallback => found().is_none(),
                BuiltinPolicy::Never => false,
            }
        {
            match name.as_str() {
                "mail.alert" => values::parse_mail_alert_args(&args).map(Action::Mail),
                "file.alert" => values::parse_file_alert_args(&args, &self.settings.logdir)
                    .map(|path| Action::File { path }),
                _ => values::parse_lvs_alert_args(&args).map(Action::Lb),
            }
        } else {
            match found() {
                Some(path) => Ok(Action::Exec { path, args }),
                None => {
                    // mon runs such a file and fails to exec the alert when
                    // it fires; keepmon does the same, and says so now.
                    self.diags.warning(
                        command.location.clone(),
                        format!(
                            "{kind}: alert \"{name}\" not found in alertdir {} (built-in alerts: {}, lua:NAME); \
                             as in mon, it will fail each time it fires",
                            show_path(&self.settings.alertdir),
                            BUILTIN_ALERTS.join(", ")
                        ),
                    );
                    let path = self
                        .settings
                        .alertdir
                        .first()
                        .map(|dir| dir.join(&name))
                        .unwrap_or_else(|| PathBuf::from(&name));
                    Ok(Action::Exec { path, args })
                }
            }
        };
        match action {
            Ok(action) => Some(AlertLine {
                name,
                exit: command.exit,
                action,
            }),
            Err(message) => {
                self.diags
                    .error(command.location, format!("{kind}: {message}"));
                None
            }
        }
    }
}

fn show_path(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn set(slot: &mut Option<String>, value: &str) -> Result<(), String> {
    *slot = Some(value.to_string());
    Ok(())
}

fn split_keyword(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

/// `^(\w+)\s*=\s*(.*)`: a global setting.
fn global_assignment(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    let rest = text[end..].trim_start();
    rest.strip_prefix('=')
        .map(|value| (&text[..end], value.trim_start()))
}

/// `[A-Z_][A-Z0-9_]*=value` with no space before `=`: a service environment line.
fn env_assignment(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_uppercase() || first == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    ok.then_some((name, value))
}

fn is_block_keyword(word: &str) -> bool {
    matches!(word, "hostgroup" | "watch" | "view" | "alias")
}

/// A line inside a hostgroup that is surely a watch's content, not host names.
fn looks_like_watch_content(keyword: &str, rest: &str) -> bool {
    let first_arg = rest.split_whitespace().next().unwrap_or("");
    match keyword {
        "service" | "period" => true,
        "interval" | "failure_interval" => values::parse_timeval(first_arg).is_ok(),
        "monitor" => first_arg.ends_with(".monitor") || first_arg.starts_with("lua:"),
        "alert" | "upalert" => first_arg.ends_with(".alert") || first_arg.starts_with("exit"),
        _ => false,
    }
}

/// mon's tag regex `[a-zA-Z0-9_.-]+`.
pub fn is_tag(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `label: spec` with mon's label regex `^([a-z_]\w*)\s*:\s*(.*)$` (case-insensitive).
fn split_period_label(text: &str) -> Option<(&str, &str)> {
    let (label, spec) = text.split_once(':')?;
    let label = label.trim_end();
    let mut chars = label.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((label, spec))
}

fn parse_alert_command(
    rest: &str,
    allow_exit: bool,
    location: Location,
) -> Result<RawCommand, String> {
    let mut text = rest.trim();
    let mut exit = None;
    if let Some(after) = text.strip_prefix("exit") {
        let after = after.trim_start();
        if let Some(value) = after.strip_prefix('=') {
            if !allow_exit {
                return Err("exit= is only allowed on `alert` lines".to_string());
            }
            let value = value.trim_start();
            let end = value.find(char::is_whitespace).unwrap_or(value.len());
            exit = Some(values::parse_exit_range(&value[..end])?);
            text = value[end..].trim_start();
        }
    }
    let words = words::split(text).map_err(|e| e.to_string())?;
    if words.is_empty() {
        return Err("needs an alert name".to_string());
    }
    Ok(RawCommand {
        exit,
        words,
        location,
    })
}

fn parse_alertevery(rest: &str) -> Result<AlertEvery, String> {
    let mut words = rest.split_whitespace();
    let every = values::parse_timeval(words.next().unwrap_or(""))?;
    let mode = match words.next() {
        None | Some("summary") => AlertEveryMode::Summary,
        Some("observe_detail") => AlertEveryMode::ObserveDetail,
        Some("ignore_summary") => AlertEveryMode::IgnoreSummary,
        Some("strict") => AlertEveryMode::Strict,
        Some(other) => {
            return Err(format!(
                "unknown alertevery option \"{other}\" (expected observe_detail, ignore_summary or strict)"
            ));
        }
    };
    if let Some(extra) = words.next() {
        return Err(format!("unexpected \"{extra}\""));
    }
    Ok(AlertEvery { every, mode })
}

/// mon's three forms: `N`, `N TIMEVAL`, `TIMEVAL`.
fn parse_alertafter(rest: &str, interval: Option<Duration>) -> Result<AlertAfter, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        [n] if n.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(AlertAfter::Consecutive(parse_count(n)?))
        }
        [t] => Ok(AlertAfter::Duration(values::parse_alertafter_timeval(t)?)),
        [n, t] => {
            let count = parse_count(n)?;
            let window = values::parse_alertafter_timeval(t)?;
            if let Some(interval) = interval
                && interval * count.saturating_sub(1) >= window
            {
                return Err(format!(
                    "\"{rest}\" is not sensible: {} failures at interval {}s take at least {}s, not within {}s",
                    count,
                    interval.as_secs(),
                    (interval * count.saturating_sub(1)).as_secs(),
                    window.as_secs()
                ));
            }
            Ok(AlertAfter::Window { count, window })
        }
        _ => Err(format!(
            "expected N, N TIMEVAL or TIMEVAL, found \"{rest}\""
        )),
    }
}

fn parse_count(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err(format!(
            "expected a positive whole number, found \"{text}\""
        )),
        Ok(n) => Ok(n),
    }
}

fn parse_number(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .map_err(|_| format!("expected a whole number, found \"{text}\""))
}

fn no_args(keyword: &str, rest: &str) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{keyword} takes no arguments, found \"{rest}\""))
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "y" | "yes" | "true" | "on" => Ok(true),
        "0" | "n" | "no" | "false" | "off" => Ok(false),
        other => Err(format!("expected yes or no, found \"{other}\"")),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("bad port \"{text}\"")),
        Ok(p) => Ok(p),
    }
}

fn parse_bind(text: &str) -> Result<IpAddr, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    t.parse::<IpAddr>()
        .map_err(|_| format!("\"{t}\" is not an IP address (host names are not resolved)"))
}

/// keepmon's `smtp_relay = host[:port]` (port 25 when not given).
fn parse_relay(text: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("bad relay \"{text}\" (expected host, host:port or [ipv6]:port)");
    let port = |p: &str| p.parse::<u16>().map_err(|_| bad());
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(port(p)?)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, p)) if !host.contains(':') => (host, Some(port(p)?)),
            _ => (text, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn parse_seconds_or_timeval(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be greater than zero".to_string()),
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) => values::parse_timeval(text),
    }
}

fn parse_authtypes(text: &str) -> Result<Vec<AuthType>, String> {
    text.split_whitespace()
        .map(|word| match word {
            "getpwnam" => Ok(AuthType::Getpwnam),
            "userfile" => Ok(AuthType::Userfile),
            "pam" => Ok(AuthType::Pam),
            "trustlocal" => Ok(AuthType::Trustlocal),
            "shadow" => Ok(AuthType::Shadow),
            other => Err(format!(
                "unknown authtype \"{other}\" (expected getpwnam, userfile, pam, trustlocal)"
            )),
        })
        .collect()
}

/// `clientallow`: space-separated regexes on the client's address; an
/// unescaped `.` means a literal dot, as mon rewrites it.
fn parse_clientallow(text: &str) -> Result<Vec<String>, String> {
    text.split_whitespace()
        .map(|pattern| {
            let mut out = String::new();
            let mut escaped = false;
            for c in pattern.chars() {
                if c == '.' && !escaped {
                    out.push_str("\\.");
                } else {
                    out.push(c);
                }
                escaped = c == '\\' && !escaped;
            }
            regex::Regex::new(&format!("^(?:{out})$"))
                .map(|_| out)
                .map_err(|e| format!("bad clientallow pattern \"{pattern}\": {e}"))
        })
        .collect()
}

fn parse_dep_behavior(text: &str) -> Result<DepBehavior, String> {
    match text.trim() {
        "a" => Ok(DepBehavior::Alert),
        "m" => Ok(DepBehavior::Monitor),
        "hm" => Ok(DepBehavior::HostMonitor),
        other => Err(format!("expected a, m or hm, found \"{other}\"")),
    }
}

fn parse_policy(text: &str) -> Result<BuiltinPolicy, String> {
    match text.trim() {
        "prefer" => Ok(BuiltinPolicy::Prefer),
        "fallback" => Ok(BuiltinPolicy::Fallback),
        "never" => Ok(BuiltinPolicy::Never),
        other => Err(format!(
            "expected prefer, fallback or never, found \"{other}\""
        )),
    }
}

fn parse_service_list(text: &str, own_group: &str) -> Result<Vec<ServiceRef>, String> {
    text.split_whitespace()
        .map(|word| {
            let (group, service) = word
                .split_once(':')
                .filter(|(g, s)| is_tag(g) && is_tag(s))
                .ok_or_else(|| format!("expected group:service, found \"{word}\""))?;
            Ok(ServiceRef {
                group: group.to_string(),
                service: service.to_string(),
            }
            .resolve_self(own_group))
        })
        .collect()
}

fn resolve_self_in(expr: Expr, group: &str) -> Expr {
    match expr {
        Expr::Ref(r) => Expr::Ref(r.resolve_self(group)),
        Expr::Not(e) => Expr::Not(Box::new(resolve_self_in(*e, group))),
        Expr::And(a, b) => Expr::And(
            Box::new(resolve_self_in(*a, group)),
            Box::new(resolve_self_in(*b, group)),
        ),
        Expr::Or(a, b) => Expr::Or(
            Box::new(resolve_self_in(*a, group)),
            Box::new(resolve_self_in(*b, group)),
        ),
    }
}
