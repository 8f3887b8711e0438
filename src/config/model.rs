//! The validated config model that both front ends compile to; plain ordered values, no IO, no parsing.
//!
//! Everything here has already been checked: names resolve, durations are
//! parsed, periods compile. Maps are `BTreeMap` so dumps and diffs are stable.
//! Later subsystems (scheduler, alerts, lb, vrrp) read only this model.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::depend::{Expr, ServiceRef};
use crate::config::diag::Location;
use crate::period::{Period, Schedule};

/// Where a definition was written. Never part of equality: moving a block
/// inside the file is not a config change.
#[derive(Clone, Debug)]
pub struct Origin(pub Location);

impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}

impl Eq for Origin {}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which front end a config was written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// mon's `mon.cf` grammar.
    Mon,
    /// keepmon's native TOML.
    Toml,
    /// keepalived's `keepalived.conf` (read as keepalived 2.2.7 reads it).
    Keepalived,
    /// HAProxy's `haproxy.cfg` (read as HAProxy 2.6 reads it).
    Haproxy,
}

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub format: Format,
    pub source: PathBuf,
    pub settings: Settings,
    pub mail: MailSettings,
    pub hostgroups: BTreeMap<String, HostGroup>,
    /// mon `alias` blocks (free text used by mon.cgi).
    pub aliases: BTreeMap<String, Vec<String>>,
    /// mon `view` blocks: members are hostgroup names or `group:service`.
    pub views: BTreeMap<String, Vec<String>>,
    pub watches: BTreeMap<String, Watch>,
    pub virtual_servers: BTreeMap<String, VirtualServer>,
    pub vrrp: BTreeMap<String, VrrpInstance>,
    /// VRRP instances that move together (keepalived's `vrrp_sync_group`,
    /// `[vrrp_sync_group.NAME]`).
    pub vrrp_sync_groups: BTreeMap<String, VrrpSyncGroup>,
    /// BFD sessions (keepalived's `bfd_instance`, `[bfd.NAME]`), tracked by
    /// VRRP instances (`track_bfd`).
    pub bfd: BTreeMap<String, BfdSession>,
    /// Route announcements through a routing daemon (`[announce.NAME]`).
    pub announce: BTreeMap<String, Announcement>,
    /// How announcements reach the routing daemon (`[bgp]`).
    pub bgp: BgpSettings,
    /// HAProxy's stats pages (`[[stats_page]]`, haproxy.cfg `stats ...`),
    /// in the order they were written.
    pub stats_pages: Vec<StatsPage>,
    /// Files the daemon writes a number into when it starts
    /// (keepalived's `init_file` in a `track_file` block, `[[file_init]]`).
    pub file_inits: Vec<FileInit>,
}

/// A tracked file the daemon initialises: created holding `value` when it
/// does not exist, or (`overwrite`) also written over when it does — at
/// start only, never on a reload, as keepalived does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInit {
    pub path: PathBuf,
    pub value: i64,
    pub overwrite: bool,
    pub origin: Origin,
}

impl Config {
    /// Every service, in (group, service) order.
    pub fn services(&self) -> impl Iterator<Item = (&Watch, &Service)> {
        self.watches
            .values()
            .flat_map(|w| w.services.values().map(move |s| (w, s)))
    }

    pub fn service(&self, r: &ServiceRef) -> Option<&Service> {
        self.watches.get(&r.group)?.services.get(&r.service)
    }

    pub fn period_count(&self) -> usize {
        self.services().map(|(_, s)| s.periods.len()).sum()
    }
}

/// Daemon-wide settings: mon's globals plus keepmon's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The director's name in notices (keepalived's `router_id`); None:
    /// the host name.
    pub director: Option<String>,
    pub basedir: PathBuf,
    pub cfbasedir: PathBuf,
    /// Search path for alert.d scripts, in order.
    pub alertdir: Vec<PathBuf>,
    /// Search path for mon.d monitor scripts, in order.
    pub mondir: Vec<PathBuf>,
    /// Search path for Lua monitors and alerts (before the shipped ones).
    pub luadir: Vec<PathBuf>,
    pub statedir: PathBuf,
    pub logdir: PathBuf,
    pub pidfile: Option<PathBuf>,
    /// The Unix control socket used by the CLI (created 0600).
    pub control_socket: PathBuf,
    pub auth: AuthSettings,
    /// mon's client protocol listener (TCP, port 2583 by default).
    pub mon_listener: Option<SocketAddr>,
    /// mon's trap listener (UDP).
    pub trap_listener: Option<SocketAddr>,
    /// Regexes matched against a client's address (`clientallow`).
    pub clientallow: Vec<String>,
    pub cltimeout: Duration,
    /// Prometheus text-format metrics listener.
    pub metrics_listener: Option<SocketAddr>,
    /// The web status page and HTTP API (`[web]`, mon.cf `web_listen`).
    pub web: WebSettings,
    /// Maximum concurrent exec monitors (0 = unlimited).
    pub maxprocs: u32,
    pub histlength: usize,
    pub historicfile: Option<PathBuf>,
    pub historictime: Option<Duration>,
    pub randstart: Option<Duration>,
    pub dtlogging: bool,
    pub dtlogfile: PathBuf,
    pub monerrfile: Option<PathBuf>,
    pub dep_recur_limit: u32,
    pub syslog_facility: String,
    pub startupalerts_on_reset: bool,
    /// On stop, remove the IPVS/nftables entries keepmon owns (default:
    /// leave them, so a restart does not drop traffic).
    pub remove_kernel_tables_on_stop: bool,
    pub monremote: Option<String>,
    /// No monitor runs while this period is true.
    pub exclude_period: Option<Period>,
    pub builtin_monitors: BuiltinPolicy,
    /// Same choice for `mail.alert`, `file.alert`, `lvs.alert` and `ipvs.alert`.
    pub builtin_alerts: BuiltinPolicy,
    /// Hard timeout for a monitor run when the service does not set one.
    pub monitor_timeout: Duration,
    /// Grace period for in-flight alerts at shutdown.
    pub shutdown_grace: Duration,
    pub lua: LuaLimits,
}

/// The web status page and HTTP API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebSettings {
    /// Where the page and the API listen (None: no web listener).
    pub listen: Option<SocketAddr>,
    /// API tokens: `name sha256-hex-of-token` lines (None: no tokens).
    pub tokens_file: Option<PathBuf>,
}

/// HAProxy's stats page: its table of frontends, servers and backends (and
/// its `;csv` form) for every virtual server keepmon runs, whatever front
/// end defined them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsPage {
    /// Where the page is served.
    pub listen: StatsListen,
    /// The path prefix that selects the page (HAProxy's `stats uri`,
    /// default [`StatsPage::DEFAULT_URI`]); `;csv` and `;norefresh` follow it.
    pub uri: String,
    /// The Basic-auth realm (HAProxy's `stats realm`, default
    /// [`StatsPage::DEFAULT_REALM`]).
    pub realm: String,
    /// Who may see the page (HAProxy's `stats auth user:password`, plain
    /// text as HAProxy has them); empty: anyone who reaches the listener.
    pub users: Vec<StatsUser>,
    /// The page reloads itself this often (HAProxy's `stats refresh`).
    pub refresh: Option<Duration>,
    /// Leave keepmon's version out of the page (`stats hide-version`).
    pub hide_version: bool,
    /// The page offers drain / maint / ready per server (`stats admin`), to
    /// authenticated users only, so `admin` needs `users`.
    pub admin: bool,
    pub origin: Origin,
}

impl StatsPage {
    /// HAProxy's default `stats uri`.
    pub const DEFAULT_URI: &'static str = "/haproxy?stats";
    /// HAProxy's default `stats realm`.
    pub const DEFAULT_REALM: &'static str = "HAProxy Statistics";
}

/// Where a stats page is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsListen {
    /// Its own listener (HAProxy's `listen stats` idiom: a section with a
    /// `bind`, `stats enable` and no servers).
    Address(SocketAddr),
    /// Inside this http-mode virtual server (HAProxy's `stats enable` in a
    /// frontend that also proxies): requests whose path starts with `uri`
    /// get the page, the others are proxied as usual.
    VirtualServer(String),
}

/// One `stats auth user:password` line.
#[derive(Clone, PartialEq, Eq)]
pub struct StatsUser {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for StatsUser {
    /// The password stays out of debug output (logs, `dump`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    pub authfile: PathBuf,
    pub authtype: Vec<AuthType>,
    pub userfile: PathBuf,
    pub pamservice: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthType {
    Getpwnam,
    Userfile,
    Pam,
    Trustlocal,
    /// Accepted by mon but a no-op.
    Shadow,
}

/// When a mon.cf names `tcp.monitor`, `http.monitor`, `fping.monitor` or
/// `ping.monitor`: run the script from `mondir`, or keepmon's in-process equivalent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinPolicy {
    /// Always use the in-process equivalent, even when a script exists.
    Prefer,
    /// Use the script when `mondir` has it, else the in-process equivalent.
    Fallback,
    /// Only ever run scripts.
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuaLimits {
    pub timeout: Duration,
    pub instructions: u64,
    pub memory_bytes: usize,
    /// Where `file.append` may write (`[lua] files_dir`); None: `logdir`.
    pub files_dir: Option<PathBuf>,
    /// Where `tcp.connect` and `http.request` may go (`[lua]
    /// allow_networks`); empty: anywhere.
    pub allow_networks: Vec<Network>,
}

/// An IP network: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// `ADDR/PREFIX` or a bare address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("bad network \"{text}\" (expected e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix length in \"{text}\" (0 to {max})"))?,
        };
        Ok(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// SMTP and mail settings shared by every `mail` action.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MailSettings {
    pub smtp: Option<SmtpSettings>,
    /// Envelope and header sender when an action does not set one.
    pub from: Option<String>,
    /// Local sendmail used when no SMTP relay is configured (as mon does).
    pub sendmail: Option<PathBuf>,
    /// Alerts for the same recipients within this window are sent as one digest.
    pub digest_window: Option<Duration>,
    /// A message that cannot be delivered for this long goes to the dead-letter list.
    pub max_age: Duration,
    /// The first retry's delay after a failed delivery; later ones double it.
    pub retry_initial: Duration,
    /// The longest delay between two delivery attempts.
    pub retry_max: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Bounds one message's whole SMTP session, connect to the server's 250.
    pub timeout: Duration,
    pub helo_name: Option<String>,
    /// Extra CA certificates (PEM) trusted for the relay, on top of the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (tests, local relays).
    None,
    /// STARTTLS required.
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostGroup {
    pub name: String,
    pub hosts: Vec<String>,
    /// True when mon would create it implicitly (`watch X` with no hostgroup X).
    pub implicit: bool,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The hostgroup this watch checks.
    pub group: String,
    pub services: BTreeMap<String, Service>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub group: String,
    pub name: String,
    pub description: Option<String>,
    /// Without interval and schedule the service is never polled (trap-only).
    pub interval: Option<Duration>,
    pub failure_interval: Option<Duration>,
    /// Cron schedule of instants, instead of an interval.
    pub schedule: Option<Schedule>,
    pub randskew: Option<Duration>,
    pub monitor: Option<Monitor>,
    /// The user an exec monitor runs as (keepalived's `script_user` or a
    /// vrrp_script's `user`); None: the daemon's own.
    pub run_as: Option<RunAs>,
    /// Hard timeout of one monitor run (mon has none).
    pub timeout: Option<Duration>,
    pub allow_empty_group: bool,
    pub exclude_hosts: Vec<String>,
    pub exclude_period: Option<Period>,
    pub depend: Option<Expr>,
    pub alertdepend: Option<Expr>,
    pub monitordepend: Option<Expr>,
    pub hostdepend: Vec<ServiceRef>,
    pub dep_behavior: DepBehavior,
    pub dep_memory: Option<Duration>,
    pub redistribute: Option<AlertLine>,
    pub unack_summary: bool,
    /// keepalived's `misc_dynamic`: an exec monitor's exit status 2–255
    /// passes too, and sets the weight of the real servers the service
    /// checks to the status − 2 (0 gives them back their own).
    pub exit_weight: bool,
    pub traptimeout: Option<Duration>,
    pub trapduration: Option<Duration>,
    /// `VAR=value` lines: environment for monitors and alerts.
    pub env: BTreeMap<String, String>,
    /// Consecutive successes before a down host counts as up.
    pub rise: u32,
    /// Consecutive failures before an up host counts as down.
    pub fall: u32,
    pub periods: Vec<PeriodBlock>,
    pub origin: Origin,
}

impl Service {
    pub fn reference(&self) -> ServiceRef {
        ServiceRef {
            group: self.group.clone(),
            service: self.name.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepBehavior {
    /// Suppress alerts while a dependency fails.
    Alert,
    /// Skip monitor runs while a dependency fails.
    Monitor,
    /// Drop hosts named in failing parents' summaries.
    HostMonitor,
}

/// What checks a service's hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Monitor {
    Tcp(TcpCheck),
    Http(HttpCheck),
    Ping(PingCheck),
    Smtp(SmtpCheck),
    Udp(UdpCheck),
    Dns(DnsCheck),
    Lua {
        script: String,
        args: Vec<String>,
    },
    /// A mon.d script: `NAME args... host...` (no hosts after a `;;`).
    Exec {
        name: String,
        args: Vec<String>,
        append_hosts: bool,
        /// The script found in `mondir` when the config was compiled.
        path: Option<PathBuf>,
    },
}

impl Monitor {
    pub fn kind(&self) -> &'static str {
        match self {
            Monitor::Tcp(_) => "tcp",
            Monitor::Http(_) => "http",
            Monitor::Ping(_) => "ping",
            Monitor::Smtp(_) => "smtp",
            Monitor::Udp(_) => "udp",
            Monitor::Dns(_) => "dns",
            Monitor::Lua { .. } => "lua",
            Monitor::Exec { .. } => "exec",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpCheck {
    pub port: u16,
    pub send: Option<String>,
    /// Regex the reply must match (validated at compile time).
    pub expect: Option<String>,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    pub tls: bool,
    pub port: u16,
    pub method: String,
    pub path: String,
    pub host_header: Option<String>,
    /// Accepted status codes as inclusive ranges.
    pub status: Vec<(u16, u16)>,
    /// Regex the body must match (validated at compile time).
    pub body: Option<String>,
    pub timeout: Duration,
    /// Skip certificate verification (self-signed backends).
    pub insecure: bool,
    /// The MD5 of the body as 32 lowercase hex digits (keepalived's url
    /// `digest`, what its `genhash` prints).
    pub digest: Option<String>,
    /// Further URLs fetched from the same host and port, each on its own
    /// connection after this one; every one must pass (keepalived's
    /// several `url` blocks).
    pub more_urls: Vec<HttpUrl>,
}

/// One more URL of an [`HttpCheck`]: its own path, Host header, status
/// set, body regex and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub path: String,
    pub host_header: Option<String>,
    pub status: Vec<(u16, u16)>,
    pub body: Option<String>,
    pub digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingCheck {
    pub count: u32,
    pub timeout: Duration,
}

/// keepalived's `SMTP_DEFAULT_HELO`, the `helo_name` when none is given.
pub const SMTP_DEFAULT_HELO: &str = "smtpchecker.keepalived.org";

/// keepalived's `SMTP_CHECK`: read the 220 greeting, `HELO helo_name`,
/// expect 250, `QUIT`, read one more line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpCheck {
    pub port: u16,
    /// The name sent with HELO (keepalived's default:
    /// `smtpchecker.keepalived.org`).
    pub helo_name: String,
    /// Bounds the connect and each read and write on its own, as
    /// keepalived's `connect_timeout` does.
    pub timeout: Duration,
}

/// keepalived's `UDP_CHECK`: send a datagram, then wait `timeout` for an
/// answer. An ICMP port (or host, network) unreachable fails; silence
/// passes unless a reply is required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpCheck {
    pub port: u16,
    /// The datagram; None sends keepalived's own 32 bytes
    /// (`keepalived check - ` repeated).
    pub payload: Option<Vec<u8>>,
    /// Silence fails (keepalived's `require_reply`).
    pub require_reply: bool,
    /// What the reply must start with (keepalived compares the shorter of
    /// the reply and the pattern); only with a pattern are the reply length
    /// limits checked, as in keepalived.
    pub reply: Option<HexPattern>,
    pub min_reply_length: u16,
    /// keepalived's default is 255.
    pub max_reply_length: u16,
    pub timeout: Duration,
}

/// Octets with wildcard nibbles: keepalived's hex strings (`0a 1B xx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexPattern {
    pub bytes: Vec<u8>,
    /// Per octet, the bits that are wildcards (`x` nibbles); same length
    /// as `bytes`.
    pub mask: Vec<u8>,
}

impl HexPattern {
    /// Two hex digits per octet, `x` for a wildcard nibble, octets
    /// separated by spaces (what [`HexPattern::parse`] reads back).
    pub fn to_hex(&self) -> String {
        let nibble = |value: u8, wild: bool| {
            if wild {
                'x'
            } else {
                char::from_digit(u32::from(value), 16).unwrap_or('?')
            }
        };
        self.bytes
            .iter()
            .zip(&self.mask)
            .map(|(&b, &m)| {
                let mut octet = String::with_capacity(2);
                octet.push(nibble(b >> 4, m & 0xf0 != 0));
                octet.push(nibble(b & 0x0f, m & 0x0f != 0));
                octet
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Octets as two hex digits each (`x` wildcards only when `wildcards`),
    /// with any spaces between octets.
    pub fn parse(text: &str, wildcards: bool) -> Result<HexPattern, String> {
        let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.is_empty() {
            return Err("no octets".to_string());
        }
        if !digits.len().is_multiple_of(2) {
            return Err(format!(
                "{text:?} has an odd number of hex digits (two per octet)"
            ));
        }
        let mut pattern = HexPattern {
            bytes: Vec::new(),
            mask: Vec::new(),
        };
        for pair in digits.chunks(2) {
            let mut byte = 0u8;
            let mut mask = 0u8;
            for &c in pair {
                byte <<= 4;
                mask <<= 4;
                match c.to_digit(16) {
                    Some(v) => byte |= u8::try_from(v).unwrap_or(0),
                    None if wildcards && matches!(c, 'x' | 'X') => mask |= 0x0f,
                    None => {
                        return Err(format!(
                            "{c:?} is not a hex digit{}",
                            if wildcards { " or x" } else { "" }
                        ));
                    }
                }
            }
            pattern.bytes.push(byte);
            pattern.mask.push(mask);
        }
        Ok(pattern)
    }

    /// keepalived's `check_udp_reply` comparison: the first
    /// min(reply, pattern) octets agree outside the wildcards.
    pub fn matches_prefix(&self, reply: &[u8]) -> bool {
        reply
            .iter()
            .zip(self.bytes.iter().zip(&self.mask))
            .all(|(&got, (&want, &mask))| (got ^ want) & !mask == 0)
    }
}

/// The query types keepalived's `DNS_CHECK` knows, with their numbers.
pub const DNS_TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("RRSIG", 46),
    ("DNSKEY", 48),
];

/// keepalived's `DNS_CHECK`: one query over UDP (recursion desired); the
/// answer with the query's id and the QR bit passes when its rcode is 0
/// (NOERROR), whatever its answer count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsCheck {
    pub port: u16,
    /// One of [`DNS_TYPES`] (upper case); keepalived's default is SOA.
    pub query_type: String,
    /// The name asked about, `.` for the root (keepalived's default).
    pub name: String,
    /// Bounds the whole exchange (keepalived's `connect_timeout`).
    pub timeout: Duration,
}

/// One `period` of a service: when it applies and what it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodBlock {
    /// The label, or the raw spec when there is no label (mon's period key).
    pub key: String,
    pub spec: Period,
    pub alerts: Vec<AlertLine>,
    pub upalerts: Vec<AlertLine>,
    pub startupalerts: Vec<AlertLine>,
    pub ackalerts: Vec<AlertLine>,
    pub disablealerts: Vec<AlertLine>,
    pub alertevery: Option<AlertEvery>,
    pub alertafter: Option<AlertAfter>,
    pub numalerts: Option<u32>,
    pub no_comp_alerts: bool,
    pub upalertafter: Option<Duration>,
    pub alerts_dont_count: bool,
    pub alertexitrange: Option<ExitRange>,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertEvery {
    pub every: Duration,
    pub mode: AlertEveryMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertEveryMode {
    /// Re-alert early when the summary changes (mon's default).
    Summary,
    /// Re-alert early when the whole output changes.
    ObserveDetail,
    /// Only the timer counts.
    IgnoreSummary,
    /// Only the timer counts, and it is not reset by a success.
    Strict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertAfter {
    /// `alertafter N`: N consecutive failures.
    Consecutive(u32),
    /// `alertafter N T`: N failures within the window T.
    Window { count: u32, window: Duration },
    /// `alertafter T`: failing for longer than T.
    Duration(Duration),
}

/// Inclusive range of monitor exit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRange {
    pub low: i32,
    pub high: i32,
}

impl ExitRange {
    pub fn contains(&self, exit: i32) -> bool {
        (self.low..=self.high).contains(&exit)
    }
}

impl fmt::Display for ExitRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// One alert line: an action, optionally filtered by the monitor's exit value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertLine {
    /// What the user wrote (`mail.alert`, a TOML action name, ...), for logs and history.
    pub name: String,
    pub exit: Option<ExitRange>,
    pub action: Action,
}

/// What an alert does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// An alert.d script, run with mon's argv: `-s -g -h -t [flag] args`.
    Exec {
        path: PathBuf,
        args: Vec<String>,
    },
    /// Append mon's file.alert record to a file.
    File {
        path: PathBuf,
    },
    Mail(MailAction),
    Lua {
        script: String,
        args: Vec<String>,
    },
    /// Edit a load-balancer table (mon's lvs.alert / ipvs.alert, or TOML `lb`).
    Lb(LbEdit),
    /// A keepalived notify script on a VRRP transition, run with
    /// keepalived's argv instead of mon's.
    Notify(VrrpNotify),
    /// Post the alert to an Alertmanager (`/api/v2/alerts`), resolved by
    /// the upalert, queued durably while it is unreachable.
    Alertmanager(AlertmanagerAction),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Exec { .. } => "exec",
            Action::File { .. } => "file",
            Action::Mail(_) => "mail",
            Action::Lua { .. } => "lua",
            Action::Lb(_) => "lb",
            Action::Notify(_) => "notify",
            Action::Alertmanager(_) => "alertmanager",
        }
    }
}

/// A keepalived `notify*` script. `notify` (on every transition) runs
/// `PATH ARGS... INSTANCE NAME STATE PRIORITY`; `notify_master`,
/// `notify_backup`, `notify_fault` and `notify_stop` run `PATH ARGS...` on
/// entering their state only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpNotify {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub on: NotifyOn,
    /// keepalived's script user; None: the daemon's own.
    pub run_as: Option<RunAs>,
}

/// A user a script runs as, resolved when the config is read (keepalived
/// resolves it then too): the script gets this uid, this gid and no other
/// groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// Which transitions a [`VrrpNotify`] script runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyOn {
    /// Every transition, with keepalived's `TYPE NAME STATE PRIORITY` arguments.
    Any,
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyOn {
    /// keepalived's name for the state (`MASTER`, ...); None for [`NotifyOn::Any`].
    pub fn state_name(self) -> Option<&'static str> {
        match self {
            NotifyOn::Any => None,
            NotifyOn::Master => Some("MASTER"),
            NotifyOn::Backup => Some("BACKUP"),
            NotifyOn::Fault => Some("FAULT"),
            NotifyOn::Stop => Some("STOP"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailAction {
    pub to: Vec<String>,
    /// Overrides the summary in the subject (mail.alert `-S`).
    pub subject: Option<String>,
    /// Sender (mail.alert `-f`); else `[mail] from`.
    pub from: Option<String>,
}

/// Where and how an alert goes to Alertmanager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerAction {
    /// The Alertmanager's base URL (`http://am.example.com:9093`); keepmon
    /// posts to `URL/api/v2/alerts`.
    pub url: String,
    /// The `severity` label; else the period's label (mon's `period
    /// LABEL:`), else `critical`.
    pub severity: Option<String>,
    /// Extra labels on every alert of this action.
    pub labels: BTreeMap<String, String>,
    /// How often a firing alert is sent again (Alertmanager resolves an
    /// alert whose `endsAt` passes; keepmon sets it to 4 × this).
    pub resend: Duration,
}

/// The default `resend` of an Alertmanager action (Prometheus's
/// `resend_delay`).
pub const ALERTMANAGER_RESEND: Duration = Duration::from_secs(60);

/// An explicit table edit. On a failure alert the real server is removed;
/// on an upalert it is added (mon's `-u`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbEdit {
    pub protocol: Protocol,
    pub virtual_addr: SocketAddr,
    pub real_addr: IpAddr,
    /// The virtual port when not given (ipvsadm's rule).
    pub real_port: Option<u16>,
    pub weight: Option<u32>,
    pub forward: Option<Forward>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// IPVS forwarding method. The userspace proxy always forwards as NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Nat,
    DirectRouting,
    Tunnel,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forward::Nat => "nat",
            Forward::DirectRouting => "dr",
            Forward::Tunnel => "tun",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbScheduler {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnection,
    WeightedLeastConnection,
    SourceHash,
    TwoChoices,
    /// Maglev consistent hashing of the client address (IPVS `mh`).
    Maglev(MhFlags),
    /// HAProxy 2.6's hashing (`balance source|uri|url_param|hdr` with
    /// `hash-type map-based`, HAProxy's default, or `consistent`): the same
    /// key goes to the same server as under HAProxy reading the same
    /// servers and weights. Built-in proxy only.
    Haproxy(HaproxyHash),
}

/// HAProxy's `hash-type map-based|consistent [FUNCTION [avalanche]]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HaproxyHash {
    /// `consistent` (a ring of points per server) rather than `map-based`.
    pub consistent: bool,
    pub function: HashFunction,
    /// `avalanche`: the hash goes through Bob Jenkins' full avalanche mix
    /// (`consistent` without a function word has it).
    pub avalanche: bool,
}

impl HaproxyHash {
    /// The flag words (`scheduler_flags` in keepmon.toml, the words after
    /// `hash-type map-based` in haproxy.cfg).
    pub const NAMES: &'static [&'static str] = &["sdbm", "djb2", "wt6", "crc32", "avalanche"];

    /// `hash-type consistent` with no function word: sdbm with avalanche.
    pub const CONSISTENT: HaproxyHash = HaproxyHash {
        consistent: true,
        function: HashFunction::Sdbm,
        avalanche: true,
    };
}

/// HAProxy's hash functions for `hash-type` (src/hash.c).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashFunction {
    #[default]
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
}

impl HashFunction {
    pub fn from_name(name: &str) -> Option<HashFunction> {
        Some(match name {
            "sdbm" => HashFunction::Sdbm,
            "djb2" => HashFunction::Djb2,
            "wt6" => HashFunction::Wt6,
            "crc32" => HashFunction::Crc32,
            _ => return None,
        })
    }
}

impl fmt::Display for HashFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashFunction::Sdbm => "sdbm",
            HashFunction::Djb2 => "djb2",
            HashFunction::Wt6 => "wt6",
            HashFunction::Crc32 => "crc32",
        })
    }
}

/// IPVS's `mh` scheduler flags (`ipvsadm -b mh-port,mh-fallback`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MhFlags {
    /// `mh-port`: hash the client's port too, so one client's connections
    /// spread over the real servers.
    pub port: bool,
    /// `mh-fallback`: when the chosen real server is unavailable, rehash to
    /// another one; without it the connection fails (as in IPVS).
    pub fallback: bool,
}

impl MhFlags {
    /// The flag words, as ipvsadm and keepalived spell them.
    pub const NAMES: &'static [&'static str] = &["mh-port", "mh-fallback"];
}

impl LbScheduler {
    pub const NAMES: &'static [&'static str] = &[
        "rr",
        "wrr",
        "lc",
        "wlc",
        "sh",
        "twos",
        "mh",
        "haproxy-map",
        "haproxy-consistent",
    ];

    pub fn from_name(name: &str) -> Option<LbScheduler> {
        Some(match name.to_ascii_lowercase().as_str() {
            "rr" => LbScheduler::RoundRobin,
            "wrr" => LbScheduler::WeightedRoundRobin,
            "lc" => LbScheduler::LeastConnection,
            "wlc" => LbScheduler::WeightedLeastConnection,
            "sh" => LbScheduler::SourceHash,
            "twos" | "random2" => LbScheduler::TwoChoices,
            "mh" | "maglev" => LbScheduler::Maglev(MhFlags::default()),
            "haproxy-map" => LbScheduler::Haproxy(HaproxyHash::default()),
            "haproxy-consistent" => LbScheduler::Haproxy(HaproxyHash::CONSISTENT),
            _ => return None,
        })
    }
}

impl fmt::Display for LbScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LbScheduler::RoundRobin => "rr",
            LbScheduler::WeightedRoundRobin => "wrr",
            LbScheduler::LeastConnection => "lc",
            LbScheduler::WeightedLeastConnection => "wlc",
            LbScheduler::SourceHash => "sh",
            LbScheduler::TwoChoices => "twos",
            LbScheduler::Maglev(_) => "mh",
            LbScheduler::Haproxy(hash) if hash.consistent => "haproxy-consistent",
            LbScheduler::Haproxy(_) => "haproxy-map",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPlane {
    /// keepmon's userspace TCP proxy (no root needed).
    Proxy,
    /// Linux IPVS over generic netlink.
    Ipvs,
    /// nftables DNAT maps.
    Nftables,
}

/// How the built-in proxy serves a virtual server (HAProxy's `mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyMode {
    /// Bytes relayed per connection (HAProxy's `mode tcp`).
    #[default]
    Tcp,
    /// Requests parsed and balanced one by one (HAProxy's `mode http`).
    Http,
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyMode::Tcp => "tcp",
            ProxyMode::Http => "http",
        })
    }
}

/// The built-in proxy's settings of one virtual server beyond the table
/// (IPVS and nftables ignore them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    pub mode: ProxyMode,
    /// Client connections served at once (HAProxy's frontend `maxconn`);
    /// None: only the global limit.
    pub maxconn: Option<u32>,
    /// HAProxy's `timeout client`: tcp mode closes a connection idle in
    /// both directions for the shorter of this and `timeout_server`; http
    /// mode closes a client connection that leaves a request body or the
    /// sending of a response stalled this long. None: no limit.
    pub timeout_client: Option<Duration>,
    /// HAProxy's `timeout queue`: how long a request (http) or connection
    /// (tcp) waits in a full server's queue before the client gets a 503
    /// (http) or is closed (tcp). None: the virtual server's
    /// `connect_timeout`, as HAProxy falls back to `timeout connect`.
    pub timeout_queue: Option<Duration>,
    /// HAProxy's `option allbackups`: when no normal server is up, all
    /// backup servers share the load instead of the first one only.
    pub allbackups: bool,
    /// HAProxy's `errorfile`: the response sent instead of keepmon's own
    /// for a status (http mode), read and checked when the config loads.
    pub error_files: BTreeMap<u16, ErrorFile>,
    /// HAProxy's `option httplog` / `option tcplog` with `log`: one line
    /// per request (http) or connection (tcp). None: no access log.
    pub access_log: Option<AccessLog>,
    /// HAProxy's `timeout server`: tcp mode as `timeout_client`; http mode
    /// bounds the wait for a response head. None: no limit.
    pub timeout_server: Option<Duration>,
    /// HAProxy's `send-proxy` / `send-proxy-v2`: a PROXY protocol header
    /// with the client's address first on every server connection.
    pub send_proxy: Option<ProxyProtocol>,
    /// HAProxy's `accept-proxy`: every client connection starts with a
    /// PROXY protocol header (v1 or v2) whose client address is used
    /// (`X-Forwarded-For`, hashing, persistence, `send_proxy`).
    pub accept_proxy: bool,
    /// The name of HAProxy's backend behind a frontend of another name:
    /// the stats page's `pxname` on the server and BACKEND rows (the
    /// FRONTEND row keeps the virtual server's name). None: the virtual
    /// server's name throughout.
    pub backend: Option<String>,
    pub http: HttpOptions,
    /// Content switching (HAProxy's `use_backend NAME if|unless COND`): the
    /// first route whose condition holds sends the request (tcp mode: the
    /// connection, by `src` only) to its pool; when none does, the virtual
    /// server's own real servers take it (none: 503, tcp: closed).
    pub routes: Vec<Route>,
}

/// One content-switching rule: requests for which `when` holds go to the
/// virtual server `to`, a pool (a virtual server without `listen`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub to: String,
    pub when: Condition,
}

/// HAProxy's condition language after names are resolved: `any` is a list
/// of alternatives (`||` / `or`), each a list of ACLs that must all hold
/// (written side by side); `unless` negates the whole. No alternative at
/// all: always true (a `use_backend` without a condition).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub unless: bool,
    pub any: Vec<Vec<AclUse>>,
}

/// One ACL in a condition, maybe negated (`!`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclUse {
    pub not: bool,
    pub acl: Acl,
}

/// An ACL: a named one (HAProxy's `acl NAME ...` lines, several lines of one
/// name are alternatives) or an anonymous `{ ... }` one (a single test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    pub name: Option<String>,
    pub tests: Vec<AclTest>,
}

/// `CRITERION [-i] [-m METHOD] VALUE...`: holds when the fetched sample
/// matches any value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclTest {
    pub fetch: AclFetch,
    pub how: AclMatch,
    /// `-i`: ASCII letters compare without case.
    pub ignore_case: bool,
    pub values: Vec<String>,
}

/// What an ACL test looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclFetch {
    /// `hdr(NAME)`: each comma-separated value of every NAME header.
    Header(String),
    /// `path`: the request path, without the query string.
    Path,
    /// `method`: the request method.
    Method,
    /// `src`: the client's address (after `accept-proxy`).
    Source,
}

/// How a sample is compared with the values (HAProxy's `-m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclMatch {
    /// The whole sample.
    Str,
    /// The sample starts with the value.
    Beg,
    /// The sample ends with the value.
    End,
    /// The value is somewhere in the sample.
    Sub,
    /// The value is in the sample between delimiters (`/ ? . :`) or its ends.
    Dom,
    /// The sample exists (values ignored).
    Found,
    /// The value is a regular expression found in the sample.
    Reg,
    /// The address is in one of the networks (`src`).
    Ip,
}

/// A whole HTTP response from a file (HAProxy's `errorfile STATUS FILE`):
/// status line, headers, blank line, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFile {
    pub path: PathBuf,
    /// The status code written in the file (HAProxy sends the file as it
    /// is, whatever the status it stands in for).
    pub status: u16,
    /// The header fields in file order, names as written.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ErrorFile {
    /// The statuses HAProxy 2.6's `errorfile` accepts; keepmon itself
    /// answers 400, 408, 500, 502, 503 and 504.
    pub const STATUSES: &[u16] = &[
        200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
    ];

    /// HAProxy refuses error files larger than its buffer (16 KiB by default).
    pub const MAX_LEN: usize = 16 * 1024;

    /// The response in the text of an error file (every front end checks
    /// its files with this): a final status, header fields, an empty line
    /// and a body that matches `Content-Length` when there is one.
    pub fn parse(path: PathBuf, text: &str) -> Result<ErrorFile, String> {
        if text.len() > Self::MAX_LEN {
            return Err(format!(
                "{} bytes, more than the {} an error file may hold",
                text.len(),
                Self::MAX_LEN
            ));
        }
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut fields);
        let head_len = match response.parse(text.as_bytes()) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err("the head does not end with an empty line".to_string());
            }
            Err(e) => return Err(e.to_string()),
        };
        let status = response.code.unwrap_or(0);
        if !(200..=599).contains(&status) {
            return Err(format!("status {status} is not a final response"));
        }
        let mut headers = Vec::new();
        for h in response.headers.iter() {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| format!("header {} is not UTF-8", h.name))?;
            headers.push((h.name.to_string(), value.trim().to_string()));
        }
        let body = text.as_bytes()[head_len..].to_vec();
        for (name, value) in &headers {
            if name.eq_ignore_ascii_case("content-length") {
                let length: usize = value
                    .parse()
                    .map_err(|_| format!("Content-Length {value:?} is not a number"))?;
                if length != body.len() {
                    return Err(format!(
                        "Content-Length says {length} bytes but the body has {}",
                        body.len()
                    ));
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("Transfer-Encoding has no place in an error file".to_string());
            }
        }
        Ok(ErrorFile {
            path,
            status,
            headers,
            body,
        })
    }
}

/// The access log of a virtual server (HAProxy's `option httplog` /
/// `tcplog`, one line per request or connection in HAProxy's field order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    pub to: AccessLogTarget,
    /// HAProxy's `option dontlognull`: no line for a connection that sent
    /// no data (a port probe, a browser's speculative connection).
    pub dontlognull: bool,
}

/// Where access log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// keepmon's own log, as `info` events of target `keepmon::access`.
    Tracing,
    /// Appended to a file, one line each.
    File(PathBuf),
}

/// A PROXY protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The text line (`PROXY TCP4 ...`).
    V1,
    /// The binary header.
    V2,
}

/// `mode = "http"` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// HAProxy's `timeout http-request`: the whole request head.
    pub timeout_http_request: Duration,
    /// HAProxy's `timeout http-keep-alive`: idle between requests.
    pub timeout_http_keep_alive: Duration,
    /// HAProxy's `option forwardfor`.
    pub forwardfor: Option<ForwardFor>,
    /// Set `X-Forwarded-Proto` and `X-Forwarded-Port`.
    pub forwarded_proto: bool,
    /// HAProxy's `cookie` persistence.
    pub cookie: Option<CookiePersistence>,
    /// Each real server's cookie value (HAProxy's `server ... cookie V`).
    pub server_cookies: BTreeMap<SocketAddr, String>,
    /// Hash a part of the request instead of the client address for `sh`
    /// and `mh` (HAProxy's `balance uri|hdr()|url_param`).
    pub hash: Option<HashOn>,
    /// TLS termination: certificates chosen by SNI (the first is the default).
    pub tls: Vec<TlsCert>,
    /// TLS towards the real servers (HAProxy's `ssl` on server lines).
    /// None: plain HTTP.
    pub server_tls: Option<ServerTls>,
}

impl Default for HttpOptions {
    /// HAProxy's recommended values: 10 s for a request head, 2 s keep-alive.
    fn default() -> HttpOptions {
        HttpOptions {
            timeout_http_request: Duration::from_secs(10),
            timeout_http_keep_alive: Duration::from_secs(2),
            forwardfor: None,
            forwarded_proto: false,
            cookie: None,
            server_cookies: BTreeMap::new(),
            hash: None,
            tls: Vec::new(),
            server_tls: None,
        }
    }
}

/// How http mode speaks TLS to its real servers (HAProxy's `ssl verify
/// none`, or `ssl verify required ca-file FILE [sni str(NAME)]
/// [verifyhost NAME]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM file of the authorities a server's chain must lead to. None: no
    /// verification at all (`verify none`).
    pub ca_file: Option<PathBuf>,
    /// The name sent as SNI; None: no SNI (HAProxy sends none by default).
    pub sni: Option<String>,
    /// The name the certificate must carry when no SNI is sent; with
    /// neither, only the chain is verified (HAProxy's rule: the SNI name,
    /// else `verifyhost`, else no name check).
    pub verify_host: Option<String>,
}

/// HAProxy's `option forwardfor [except NET] [header NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardFor {
    /// Lower case; `x-forwarded-for` by default.
    pub header: String,
    pub except: Option<Network>,
}

/// HAProxy's `cookie NAME insert|prefix|rewrite ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookiePersistence {
    pub name: String,
    pub mode: CookieMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieMode {
    /// The proxy sets the cookie on responses.
    Insert {
        /// Not set again for a client whose cookie is still valid, and
        /// removed from requests passed to the server.
        indirect: bool,
        /// `Cache-Control: private` on responses that set it.
        nocache: bool,
        httponly: bool,
        secure: bool,
    },
    /// The server's own cookie (a session id) is prefixed with `VALUE~`.
    Prefix,
    /// The server's own cookie value is replaced with the server's value.
    Rewrite,
}

/// What `sh`/`mh` hash in http mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashOn {
    /// The path (without the query), HAProxy's `balance uri`.
    Uri,
    /// A request header's value (lower-case name), `balance hdr(NAME)`.
    Header(String),
    /// A query parameter's value, `balance url_param NAME`.
    UrlParam(String),
}

/// A certificate chain and its key, PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub name: String,
    /// None: a pool that only routes of other virtual servers reach
    /// (HAProxy's backend named by `use_backend`); built-in proxy only.
    /// Also None for a firewall-mark service (`fwmark`).
    pub listen: Option<SocketAddr>,
    /// IPVS only: the service takes the packets the firewall marked with
    /// this number (keepalived's `virtual_server fwmark N`, ipvsadm's
    /// `-f N`) instead of those sent to an address; `listen` is then None
    /// and `protocol` means nothing (the kernel keys it by mark and family).
    pub fwmark: Option<Fwmark>,
    pub protocol: Protocol,
    pub scheduler: LbScheduler,
    pub dataplane: DataPlane,
    pub persistence: Option<Duration>,
    /// Prefix length that groups clients for persistence (keepalived's
    /// `persistence_granularity`, ipvsadm's `-M`); None = one address
    /// (/32 or /128). Checked against the listen address's family.
    pub persistence_netmask: Option<u8>,
    pub sorry_server: Option<SocketAddr>,
    /// Minimum sum of live weights; below it the sorry server takes over.
    pub quorum: Option<u32>,
    pub hysteresis: u32,
    /// The service whose per-host results drive real-server health.
    pub health: Option<ServiceRef>,
    /// Connection attempts on other real servers before the client sees an error.
    pub retries: u32,
    pub connect_timeout: Duration,
    pub real_servers: Vec<RealServer>,
    /// The built-in proxy's mode, limits and HTTP settings.
    pub proxy: ProxyOptions,
    pub origin: Origin,
}

/// A firewall mark an IPVS service is keyed by, with its address family.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Fwmark {
    /// The mark (1 to 2^32-1; IPVS reads 0 as "no mark").
    pub mark: std::num::NonZeroU32,
    /// The IPv6 service of that mark (IPVS keeps one per family).
    pub ipv6: bool,
}

impl std::fmt::Display for Fwmark {
    /// ipvsadm's form: `FWM 7` (IPv4), `FWM 7 IPv6`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FWM {}", self.mark)?;
        if self.ipv6 {
            f.write_str(" IPv6")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub addr: SocketAddr,
    /// The server's name (haproxy.cfg's `server NAME`, keepmon.toml's
    /// `name`): the stats page's `svname` and the admin form's `s`. None:
    /// shown by address.
    pub name: Option<String>,
    /// The host name in the health service's results that stands for this server.
    pub host: String,
    pub weight: u32,
    pub forward: Forward,
    pub admin: AdminState,
    /// Weight 0 instead of removal on failure (keepalived's option).
    pub inhibit_on_failure: bool,
    /// IPVS connection thresholds (keepalived's `uthreshold`/`lthreshold`,
    /// ipvsadm's `-x`/`-y`); 0 = none.
    pub thresholds: Thresholds,
    /// HAProxy's `backup`: used only when no normal server of the virtual
    /// server is up (the first by order, or all with `allbackups`).
    pub backup: bool,
    /// HAProxy's server `maxconn`: the built-in proxy's limit of
    /// connections (tcp) or requests (http) on this server at once; more
    /// wait in the server's queue. None: no limit.
    pub maxconn: Option<u32>,
    /// HAProxy's `maxqueue`: the most that wait in this server's queue;
    /// beyond it another server is chosen, or the client gets a 503.
    /// None: no bound. Needs `maxconn`.
    pub maxqueue: Option<u32>,
    /// HAProxy's `slowstart`: a server that comes back up ramps its weight
    /// from a small fraction to full over this time. None: at once.
    pub slowstart: Option<Duration>,
    /// keepalived's `BFD_CHECK { name NAME }`: the server is down while
    /// this BFD session is not Up (and until it first comes Up), instead
    /// of following a health service.
    pub bfd: Option<String>,
    /// Health services of this real server alone, beside its virtual
    /// server's `health`: it is up only while every one of them reports its
    /// host up (keepalived's several checkers on one real server, or
    /// checkers that differ from one real server to the next).
    pub checks: Vec<RealCheck>,
    /// Files whose number moves this server (keepalived's `FILE_CHECK`):
    /// with weight 0 it is down while the number is not 0 (while it is 0
    /// with `reverse`); otherwise number × weight (negated with `reverse`)
    /// is added to its weight in force. Re-read every 100 ms.
    pub track_files: Vec<TrackFile>,
}

/// One health service checking one real server: the server is down while
/// the service reports `host` down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealCheck {
    pub health: ServiceRef,
    /// The host name in the service's results that stands for the server.
    pub host: String,
}

/// IPVS connection thresholds of a real server: at `upper` connections the
/// kernel sends it no new ones until they fall to `lower`. 0 = no limit
/// (upper) or the kernel's default of three quarters of upper (lower).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thresholds {
    pub upper: u32,
    pub lower: u32,
}

impl Thresholds {
    /// Whether any threshold is set.
    pub fn is_set(self) -> bool {
        self.upper != 0 || self.lower != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    Ready,
    Drain,
    Maint,
}

/// VRRP router id: 1..=255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vrid(u8);

impl Vrid {
    pub fn new(value: u8) -> Option<Vrid> {
        (value != 0).then_some(Vrid(value))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: Vrid,
    /// 1..=255 (255 = address owner).
    pub priority: u8,
    pub advert_int: Duration,
    pub version: VrrpVersion,
    pub initial_state: VrrpInitialState,
    pub nopreempt: bool,
    pub preempt_delay: Option<Duration>,
    /// v2 simple-text password (at most 8 bytes).
    pub auth_pass: Option<String>,
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Added and removed with the VIPs but never advertised (keepalived's
    /// `virtual_ipaddress_excluded`); either address family.
    pub excluded_addresses: Vec<VirtualAddress>,
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub garp: GarpSettings,
    pub track: Vec<VrrpTrack>,
    pub track_interfaces: Vec<String>,
    /// keepalived's `track_file`: a number read from a file moves the
    /// priority or means FAULT.
    pub track_files: Vec<TrackFile>,
    /// keepalived's `track_process`: how many processes match moves the
    /// priority or means FAULT.
    pub track_processes: Vec<TrackProcess>,
    /// keepalived's `track_bfd`: a BFD session's state moves the priority
    /// or means FAULT.
    pub track_bfds: Vec<TrackBfd>,
    /// Send v3 IPv4 checksums without the pseudo-header (keepalived's `v3_checksum_as_v2`).
    pub v3_checksum_as_v2: bool,
    /// Alerts fired on state transitions.
    pub notify: Vec<AlertLine>,
    pub origin: Origin,
}

/// VRRP instances that move together as keepalived's `vrrp_sync_group`
/// does: one member in FAULT takes all to FAULT, one leaving MASTER for
/// BACKUP takes all to BACKUP, and they become MASTER together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpSyncGroup {
    pub name: String,
    /// Instance names (each in one group at most).
    pub members: Vec<String>,
    /// Alerts fired when the group changes state (keepalived's group
    /// notify scripts: `notify ... GROUP NAME STATE 0`).
    pub notify: Vec<AlertLine>,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrrpVersion {
    V2,
    V3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrrpInitialState {
    Master,
    Backup,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarpSettings {
    pub master_delay: Duration,
    pub master_repeat: u32,
    pub master_refresh: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpTrack {
    pub target: TrackTarget,
    /// Added while up (positive) or subtracted while down (negative); 0 = FAULT on failure.
    pub weight: i32,
    /// keepalived's `reverse`: a positive weight is subtracted while up, a
    /// negative one added while down, and weight 0 is FAULT while up.
    pub reverse: bool,
}

/// A file whose number moves an instance's priority (keepalived's
/// `track_file`): weight 0 means FAULT while the number is not 0 (while it
/// is 0 with `reverse`); otherwise number × weight (negated with
/// `reverse`), limited to −254..253, is added, and −254 is FAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackFile {
    pub path: PathBuf,
    pub weight: i32,
    pub reverse: bool,
}

/// Processes whose number moves an instance's priority (keepalived's
/// `vrrp_track_process`): the tracker is up while `quorum` ≤ matching
/// processes ≤ `quorum_max`. Weight 0 means FAULT while down (while up
/// with `reverse`); a positive weight is added while up, a negative one
/// while down (negated with `reverse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackProcess {
    /// The tracker's name (keepalived's `vrrp_track_process NAME`).
    pub name: String,
    /// The process name (`comm`, at most 15 characters) or, with
    /// `full_command`, the command line's first word.
    pub process: String,
    /// The command line's further words the process must have.
    pub args: Vec<String>,
    pub param_match: ParamMatch,
    pub full_command: bool,
    pub quorum: u32,
    pub quorum_max: u32,
    pub weight: i32,
    pub reverse: bool,
    /// How long a gained quorum must last before it counts.
    pub fork_delay: Option<Duration>,
    /// How long a lost quorum must last before it counts.
    pub terminate_delay: Option<Duration>,
}

/// A BFD session to one neighbour (RFC 5880/5881 single hop, UDP 3784;
/// keepalived's `bfd_instance`). Intervals are in microseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdSession {
    pub name: String,
    pub neighbor: IpAddr,
    /// The address packets are sent from (and must arrive at while the
    /// peer's discriminator is unknown); same family as `neighbor`.
    pub source: Option<IpAddr>,
    /// Required Min RX Interval (keepalived's `min_rx`, default 10 ms).
    pub min_rx_us: u32,
    /// Desired Min TX Interval while Up (`min_tx`, default 10 ms).
    pub min_tx_us: u32,
    /// Desired Min TX Interval while not Up (`idle_tx`, default 1 s).
    pub idle_tx_us: u32,
    /// Detect Mult (`multiplier`, default 5).
    pub multiplier: u8,
    /// Send nothing until the neighbour speaks.
    pub passive: bool,
    /// TTL / hop limit sent (default 255 for IPv4, 64 for IPv6).
    pub ttl: u8,
    /// Received packets must have TTL ≥ `ttl − max_hops` (255: no check).
    pub max_hops: u8,
    pub origin: Origin,
}

/// A BFD session an instance tracks (keepalived's `track_bfd`). Weight 0
/// means FAULT while the session is down (while up with `reverse`); a
/// positive weight is added while up, a negative one while down (negated
/// with `reverse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackBfd {
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
}

/// How a tracked process's arguments are compared (keepalived's
/// `param_match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamMatch {
    /// Arguments are not looked at.
    None,
    /// Exactly these arguments.
    Exact,
    /// These arguments first, the last one possibly cut short.
    Initial,
    /// These arguments first, whole.
    Partial,
}

impl ParamMatch {
    pub fn name(self) -> &'static str {
        match self {
            ParamMatch::None => "none",
            ParamMatch::Exact => "exact",
            ParamMatch::Initial => "initial",
            ParamMatch::Partial => "partial",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackTarget {
    Service(ServiceRef),
    /// A virtual server's quorum.
    Quorum(String),
}

/// A prefix announced while a condition holds (`[announce.NAME]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub name: String,
    /// The announced prefix: the virtual IP as a /32 or /128 (or a wider
    /// prefix the operator chose).
    pub prefix: IpAddr,
    pub prefix_len: u8,
    pub when: crate::config::when::When,
    pub origin: Origin,
}

impl Announcement {
    /// `ADDR/LEN`, as routing daemons write it.
    pub fn prefix_text(&self) -> String {
        format!("{}/{}", self.prefix, self.prefix_len)
    }
}

/// Which routing daemon carries the announcements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteDaemon {
    /// keepmon writes `bird_include` and runs `birdc configure`.
    #[default]
    Bird,
    /// ExaBGP runs `keepmon exabgp-api` as its API process.
    ExaBgp,
    /// keepmon adds and removes bgpd `network PREFIX route-map MAP`
    /// statements through `vtysh`.
    Frr,
}

/// The routing daemon announcements go through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpSettings {
    pub via: RouteDaemon,
    /// BIRD 2: the file keepmon writes (the operator's bird.conf includes
    /// it and exports its `keepmon4`/`keepmon6` static protocols into BGP).
    pub bird_include: PathBuf,
    /// The birdc program that asks BIRD to re-read its configuration.
    pub birdc: PathBuf,
    /// BIRD's control socket (birdc -s); None: birdc's default.
    pub bird_socket: Option<PathBuf>,
    /// At stop: how long after the withdraw the VIP and services stay up,
    /// so the routers have moved the traffic away.
    pub withdraw_drain: Duration,
    /// FRR: the vtysh program.
    pub vtysh: PathBuf,
    /// FRR: the daemons' path space (`vtysh -N NAME`); None: the default.
    pub frr_pathspace: Option<String>,
    /// FRR: the route-map keepmon's `network` statements name; it marks
    /// them as keepmon's (others are never touched) and the operator
    /// defines it (`route-map keepmon permit 10`).
    pub frr_route_map: String,
}

impl Default for BgpSettings {
    fn default() -> Self {
        BgpSettings {
            via: RouteDaemon::Bird,
            bird_include: PathBuf::from("/etc/bird/keepmon.conf"),
            birdc: PathBuf::from("birdc"),
            bird_socket: None,
            withdraw_drain: Duration::from_secs(2),
            vtysh: PathBuf::from("vtysh"),
            frr_pathspace: None,
            frr_route_map: "keepmon".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let net = |t: &str| Network::parse(t).unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.200.1.1")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(
            net("127.0.0.1").contains(ip("::ffff:127.0.0.1")),
            "mapped v4"
        );
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(net("::/0").contains(ip("::1")));
        assert_eq!(net("10.1.0.0/16").to_string(), "10.1.0.0/16");
        for bad in ["10.0.0.0/33", "x/8", "10.0.0.0/", "::/129"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }
}
