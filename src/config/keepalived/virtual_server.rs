//! keepalived's `virtual_server` blocks with their `real_server`s and checkers: IPVS services (or keepmon's `keepmon_dataplane`) whose real servers follow one health service per virtual server.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::depend::ServiceRef;
use crate::config::diag::Location;
use crate::config::keepalived::bfd::BfdInstance;
use crate::config::keepalived::global_defs::Globals;
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::tree::Stmt;
use crate::config::keepalived::{Ctx, numbers, security, service, vrrp_script};
use crate::config::model::{
    AdminState, Config, DNS_TYPES, DnsCheck, Forward, HexPattern, HostGroup, HttpCheck, HttpUrl,
    LbScheduler, MhFlags, Monitor, Origin, PingCheck, Protocol, RealServer, RunAs,
    SMTP_DEFAULT_HELO, SmtpCheck, TcpCheck, Thresholds, UdpCheck, VirtualServer, Watch,
};

/// keepalived's IPVS schedulers (`lvs_schedulers`).
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos",
];
/// keepalived's defaults.
const DELAY_LOOP: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A checker's `retry` when neither it nor its real server sets one
/// (keepalived's `default_retry`: 1, MISC_CHECK 0, DNS_CHECK 3).
fn default_retry(kind: &str) -> u32 {
    match kind {
        "MISC_CHECK" => 0,
        "DNS_CHECK" => 3,
        _ => 1,
    }
}

/// A checker's `delay_before_retry` when neither it nor its real server
/// sets one (keepalived's `default_delay_before_retry`: 1 s, HTTP_GET and
/// SSL_GET 3 s); None: the checker's `delay_loop` (DNS_CHECK).
fn default_delay_before_retry(kind: &str) -> Option<Duration> {
    match kind {
        "HTTP_GET" | "SSL_GET" => Some(Duration::from_secs(3)),
        "DNS_CHECK" => None,
        _ => Some(Duration::from_secs(1)),
    }
}
/// `persistence_timeout` without a value (IPVS_SVC_PERSISTENT_TIMEOUT).
const PERSISTENCE_DEFAULT: u64 = 360;
/// IPVS_WEIGHT_LIMIT.
const WEIGHT_LIMIT: u64 = 65535;

/// One `virtual_server` as keepalived holds it after reading.
#[derive(Clone, Debug)]
pub struct Vs {
    pub loc: Location,
    pub addr: SocketAddr,
    pub protocol: Option<Protocol>,
    pub scheduler: Option<String>,
    /// `sh-port`/`mh-port` and `sh-fallback`/`mh-fallback`: IPVS's two
    /// scheduler flag bits (the sh and mh words set the same bits).
    pub sched_flags: MhFlags,
    /// Where a scheduler flag was written (for the messages).
    pub sched_flags_at: Option<Location>,
    pub forward: Option<Forward>,
    pub persistence: Option<u64>,
    pub granularity: Option<u8>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub sorry: Option<SocketAddr>,
    pub inhibit: bool,
    pub timers: Timers,
    pub real_servers: Vec<Rs>,
}

/// Checker timing set on a virtual server, a real server or a checker
/// (the closest one wins).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timers {
    pub delay_loop: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
}

impl Timers {
    fn or(self, outer: Timers) -> Timers {
        Timers {
            delay_loop: self.delay_loop.or(outer.delay_loop),
            connect_timeout: self.connect_timeout.or(outer.connect_timeout),
            retry: self.retry.or(outer.retry),
            delay_before_retry: self.delay_before_retry.or(outer.delay_before_retry),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Rs {
    pub loc: Location,
    pub addr: SocketAddr,
    pub weight: u32,
    pub forward: Option<Forward>,
    pub inhibit: Option<bool>,
    pub thresholds: Thresholds,
    pub timers: Timers,
    pub checkers: Vec<Checker>,
    /// `BFD_CHECK { name NAME }` checkers: the sessions it follows.
    pub bfd: Vec<(String, Location)>,
}

#[derive(Clone, Debug)]
pub struct Checker {
    pub kind: String,
    pub loc: Location,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub timers: Timers,
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub misc: Vec<String>,
    pub misc_timeout: Option<Duration>,
    /// MISC_CHECK's `user USER [GROUP]`.
    pub misc_user: Option<RunAs>,
    /// Its user could not be resolved: keepalived removes the checker.
    pub misc_user_failed: bool,
    /// SMTP_CHECK's `helo_name` (its first word, as keepalived keeps it).
    pub helo_name: Option<String>,
    /// SMTP_CHECK's deprecated `host { }` blocks, each a checker of its own.
    pub smtp_hosts: Vec<SmtpHost>,
    /// UDP_CHECK's `payload`, `require_reply`, reply lengths.
    pub udp: UdpOptions,
    /// DNS_CHECK's `type` (upper case) and `name`.
    pub dns_type: Option<String>,
    pub dns_name: Option<String>,
    /// A connection keyword (`connect_ip`, `connect_port`, `bindto`,
    /// `bind_port`, `bind_if`, `fwmark`, `connect_timeout`) was given:
    /// keepalived's SMTP_CHECK then keeps its own connection beside its
    /// host blocks.
    pub connection_set: bool,
}

/// What a UDP_CHECK sends and wants back.
#[derive(Clone, Debug)]
pub struct UdpOptions {
    pub payload: Option<Vec<u8>>,
    pub require_reply: bool,
    pub reply: Option<HexPattern>,
    pub min_reply_length: u16,
    pub max_reply_length: u16,
}

impl Default for UdpOptions {
    fn default() -> UdpOptions {
        UdpOptions {
            payload: None,
            require_reply: false,
            reply: None,
            min_reply_length: 0,
            // keepalived: UINT8_MAX.
            max_reply_length: 255,
        }
    }
}

/// One `host { }` block of an SMTP_CHECK (keepalived 2.2.7 still takes
/// them and logs that they are deprecated).
#[derive(Clone, Debug)]
pub struct SmtpHost {
    pub loc: Location,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    /// keepalived allocates a host's connection options zeroed and never
    /// gives them the checker's timeout: without its own
    /// `connect_timeout` a host block's timeout is 0.
    pub connect_timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default)]
pub struct Url {
    pub loc: Option<Location>,
    pub path: Option<String>,
    pub status: Vec<(u16, u16)>,
    /// 32 lowercase hex digits.
    pub digest: Option<String>,
    pub regex: Option<String>,
    pub virtualhost: Option<String>,
}

/// Read one `virtual_server IP PORT { ... }`.
pub fn read(stmt: &Stmt, bfds: &[BfdInstance], ctx: &mut Ctx<'_>) -> Option<Vs> {
    let piece = &stmt.piece;
    let first = ctx.arg(piece, 1)?;
    if first == "fwmark" || first == "group" {
        ctx.unsupported(
            piece.loc.clone(),
            format!("virtual_server {first} (keepmon's virtual services are IP and port)"),
        );
        return None;
    }
    let Some(addr) = socket_addr(piece, 1, ctx) else {
        ctx.ignores(
            piece.loc.clone(),
            "keepalived cannot use this virtual_server address and skips the block",
        );
        return None;
    };
    let mut vs = Vs {
        loc: piece.loc.clone(),
        addr,
        protocol: None,
        scheduler: None,
        sched_flags: MhFlags::default(),
        sched_flags_at: None,
        forward: None,
        persistence: None,
        granularity: None,
        quorum: 1,
        hysteresis: 0,
        sorry: None,
        inhibit: false,
        timers: Timers::default(),
        real_servers: Vec::new(),
    };
    for child in stmt.children() {
        let p = &child.piece;
        if timer_keyword(child, &mut vs.timers, ctx) {
            continue;
        }
        match child.keyword() {
            "lb_algo" | "lvs_sched" => {
                if let Some(name) = ctx.arg(p, 1) {
                    if SCHEDULERS.contains(&name) {
                        vs.scheduler = Some(name.to_string());
                    } else {
                        ctx.logs(
                            p.word_loc(1),
                            format!("Invalid lvs_scheduler '{name}' - ignoring"),
                        );
                    }
                }
            }
            "sh-port" | "mh-port" => {
                vs.sched_flags.port = true;
                vs.sched_flags_at.get_or_insert(p.loc.clone());
            }
            "sh-fallback" | "mh-fallback" => {
                vs.sched_flags.fallback = true;
                vs.sched_flags_at.get_or_insert(p.loc.clone());
            }
            "lb_kind" | "lvs_method" => {
                if let Some(forward) = forwarding(p, ctx) {
                    vs.forward = Some(forward);
                }
            }
            "persistence_timeout" => {
                if p.words.len() < 2 {
                    vs.persistence = Some(PERSISTENCE_DEFAULT);
                } else if let Some(t) = ctx.unsigned(p, 1, 1, 2_678_400, false) {
                    vs.persistence = Some(t);
                } else {
                    ctx.logs(p.loc.clone(), "persistence_timeout invalid");
                }
            }
            "persistence_granularity" => {
                if let Some(text) = ctx.arg(p, 1) {
                    match granularity(text, addr.is_ipv6()) {
                        Some(prefix) => {
                            vs.granularity = Some(prefix);
                            vs.persistence.get_or_insert(PERSISTENCE_DEFAULT);
                        }
                        None => ctx.logs(
                            p.word_loc(1),
                            format!("Invalid persistence_granularity specified - {text}"),
                        ),
                    }
                }
            }
            "protocol" => match ctx.arg(p, 1).map(str::to_ascii_uppercase).as_deref() {
                Some("TCP") => vs.protocol = Some(Protocol::Tcp),
                Some("UDP") => vs.protocol = Some(Protocol::Udp),
                Some("SCTP") => ctx.unsupported(p.word_loc(1), "protocol SCTP"),
                Some(_) => ctx.logs(
                    p.word_loc(1),
                    format!("Unknown protocol {} - ignoring", p.words[1].text),
                ),
                None => {}
            },
            "quorum" => {
                vs.quorum = match ctx.unsigned(p, 1, 1, u64::from(u32::MAX), true) {
                    Some(q) => u32::try_from(q).unwrap_or(u32::MAX),
                    None => {
                        ctx.logs(
                            p.loc.clone(),
                            "Quorum must be in [1, 4294967295]. Setting to 1.",
                        );
                        1
                    }
                };
            }
            "hysteresis" => match ctx.unsigned(p, 1, 0, u64::from(u32::MAX), true) {
                Some(h) => vs.hysteresis = u32::try_from(h).unwrap_or(u32::MAX),
                None => ctx.logs(
                    p.loc.clone(),
                    "Hysteresis must be in [0, 4294967295] - ignoring",
                ),
            },
            "sorry_server" => {
                if let Some(addr) = socket_addr(p, 1, ctx) {
                    vs.sorry = Some(addr);
                }
            }
            "inhibit_on_failure" => vs.inhibit = flag(p, ctx),
            "real_server" => {
                if let Some(rs) = real_server(child, addr, bfds, ctx) {
                    if vs.real_servers.iter().any(|r| r.addr == rs.addr) {
                        ctx.ignores(
                            child.loc(),
                            format!(
                                "real server {} is listed twice; keepalived uses the first",
                                rs.addr
                            ),
                        );
                    } else {
                        vs.real_servers.push(rs);
                    }
                }
            }
            keyword => ctx.unused(p, &format!("'{keyword}' in virtual_server")),
        }
    }
    Some(vs)
}

/// `delay_loop`, `connect_timeout`, `retry`, `delay_before_retry` (and the
/// deprecated `nb_get_retry`) wherever they appear; true when `stmt` was one.
fn timer_keyword(stmt: &Stmt, timers: &mut Timers, ctx: &mut Ctx<'_>) -> bool {
    let p = &stmt.piece;
    match stmt.keyword() {
        "delay_loop" => match ctx.micros(p, 1, 1, u64::from(u32::MAX) * 1_000_000, true) {
            Some(us) => timers.delay_loop = Some(Duration::from_micros(us)),
            None => ctx.logs(p.loc.clone(), "delay loop invalid - ignoring"),
        },
        "connect_timeout" => match ctx.micros(p, 1, 1, u64::from(u32::MAX) * 1_000_000, true) {
            Some(us) => timers.connect_timeout = Some(Duration::from_micros(us)),
            None => ctx.logs(p.loc.clone(), "connect_timeout invalid - ignoring"),
        },
        "retry" | "nb_get_retry" => match ctx.unsigned(p, 1, 0, u64::from(u32::MAX), true) {
            Some(n) => timers.retry = Some(u32::try_from(n).unwrap_or(u32::MAX)),
            None => ctx.logs(p.loc.clone(), "retry invalid - ignoring"),
        },
        "delay_before_retry" => match ctx.micros(p, 1, 0, u64::from(u32::MAX) * 1_000_000, true) {
            Some(us) => timers.delay_before_retry = Some(Duration::from_micros(us)),
            None => ctx.logs(p.loc.clone(), "delay_before_retry invalid - ignoring"),
        },
        _ => return false,
    }
    true
}

fn real_server(
    stmt: &Stmt,
    vs_addr: SocketAddr,
    bfds: &[BfdInstance],
    ctx: &mut Ctx<'_>,
) -> Option<Rs> {
    let piece = &stmt.piece;
    ctx.arg(piece, 1)?;
    let addr = match piece.words.get(2) {
        Some(_) => socket_addr(piece, 1, ctx)?,
        None => {
            // keepalived takes the virtual server's port when none is given.
            let ip = piece.words[1].text.parse::<IpAddr>().ok().or_else(|| {
                ctx.logs(
                    piece.word_loc(1),
                    format!("Invalid real server ip address {}", piece.words[1].text),
                );
                None
            })?;
            SocketAddr::new(ip, vs_addr.port())
        }
    };
    let mut rs = Rs {
        loc: piece.loc.clone(),
        addr,
        weight: 1,
        forward: None,
        inhibit: None,
        thresholds: Thresholds::default(),
        timers: Timers::default(),
        checkers: Vec::new(),
        bfd: Vec::new(),
    };
    for child in stmt.children() {
        let p = &child.piece;
        if timer_keyword(child, &mut rs.timers, ctx) {
            continue;
        }
        match child.keyword() {
            "weight" => match ctx.unsigned(p, 1, 0, WEIGHT_LIMIT, true) {
                Some(w) => rs.weight = u32::try_from(w).unwrap_or(u32::MAX),
                None => ctx.logs(p.loc.clone(), "Real server weight is outside range 0-65535"),
            },
            "lvs_method" => rs.forward = forwarding(p, ctx).or(rs.forward),
            "inhibit_on_failure" => rs.inhibit = Some(flag(p, ctx)),
            "uthreshold" => {
                if let Some(n) = ctx.unsigned(p, 1, 0, u64::from(u32::MAX), true) {
                    rs.thresholds.upper = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "lthreshold" => {
                if let Some(n) = ctx.unsigned(p, 1, 0, u64::from(u32::MAX), true) {
                    rs.thresholds.lower = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "BFD_CHECK" => {
                if let Some(name) = bfd_check(child, &rs, bfds, ctx) {
                    rs.bfd.push((name, child.loc()));
                }
            }
            kind @ ("TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "PING_CHECK"
            | "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "FILE_CHECK") => {
                if let Some(checker) = checker(child, kind, ctx) {
                    rs.checkers.push(checker);
                }
            }
            keyword => ctx.unused(p, &format!("'{keyword}' in real_server")),
        }
    }
    Some(rs)
}

/// One `BFD_CHECK { name NAME alpha }` (check/check_bfd.c): the session it
/// follows; None when keepalived drops the checker. `alpha` changes
/// nothing keepmon can see: keepalived's BFD process reports every session
/// Down at start, so the server starts down either way.
fn bfd_check(stmt: &Stmt, rs: &Rs, bfds: &[BfdInstance], ctx: &mut Ctx<'_>) -> Option<String> {
    let label = format!("[{}]:{}", rs.addr.ip(), rs.addr.port());
    let mut name: Option<String> = None;
    for child in stmt.children() {
        let p = &child.piece;
        match child.keyword() {
            "name" => {
                let message = if p.words.len() != 2 {
                    Some(format!(
                        "({label}) BFD_CHECK - No or too many names specified - skipping checker"
                    ))
                } else {
                    let wanted = &p.words[1].text;
                    if !bfds.iter().any(|b| &b.name == wanted && b.checker) {
                        Some(format!("({label}) BFD_CHECK - BFD {wanted} not configured"))
                    } else if let Some(first) = &name {
                        Some(format!(
                            "({label}) BFD_CHECK - BFD {wanted} already specified as {first}"
                        ))
                    } else if rs.bfd.iter().any(|(n, _)| n == wanted) {
                        Some(format!(
                            "({label}) BFD_CHECK - RS already monitoring {wanted}"
                        ))
                    } else {
                        name = Some(wanted.clone());
                        None
                    }
                };
                if let Some(message) = message {
                    // dequeue_new_checker: the rest of the block is ignored.
                    ctx.logs(p.loc.clone(), message);
                    return None;
                }
            }
            "alpha" => {
                if let Some(word) = p.words.get(1)
                    && numbers::true_false(&word.text).is_none()
                {
                    ctx.logs(
                        p.word_loc(1),
                        format!("Invalid alpha parameter {}", word.text),
                    );
                }
            }
            keyword => ctx.unused(p, &format!("'{keyword}' in BFD_CHECK")),
        }
    }
    if name.is_none() {
        ctx.logs(
            stmt.end_loc(),
            format!("({label}) No name has been specified for BFD_CHECKER - skipping"),
        );
    }
    name
}

/// One checker block; None when keepalived drops it.
fn checker(stmt: &Stmt, kind: &str, ctx: &mut Ctx<'_>) -> Option<Checker> {
    let mut checker = Checker {
        kind: kind.to_string(),
        loc: stmt.loc(),
        connect_ip: None,
        connect_port: None,
        timers: Timers::default(),
        urls: Vec::new(),
        virtualhost: None,
        misc: Vec::new(),
        misc_timeout: None,
        misc_user: None,
        misc_user_failed: false,
        helo_name: None,
        smtp_hosts: Vec::new(),
        udp: UdpOptions::default(),
        dns_type: None,
        dns_name: None,
        connection_set: false,
    };
    for child in stmt.children() {
        let p = &child.piece;
        if timer_keyword(child, &mut checker.timers, ctx) {
            if child.keyword() == "connect_timeout" && checker.timers.connect_timeout.is_some() {
                checker.connection_set = true;
            }
            continue;
        }
        match child.keyword() {
            "helo_name" if kind == "SMTP_CHECK" => match p.words.get(1) {
                Some(word) => {
                    if p.words.len() > 2 {
                        ctx.ignores(
                            p.word_loc(2),
                            "keepalived takes only the first word of helo_name",
                        );
                    }
                    checker.helo_name = Some(word.text.clone());
                }
                None => ctx.logs(p.loc.clone(), "SMTP_CHECK helo name missing"),
            },
            "payload" if kind == "UDP_CHECK" => {
                if p.words.len() < 2 {
                    ctx.logs(p.loc.clone(), "UDP_CHECK payload requires a payload");
                } else {
                    let text = p.args().collect::<Vec<_>>().join(" ");
                    match numbers::hex_str(&text, false) {
                        Some(octets) => checker.udp.payload = Some(octets.bytes),
                        None => ctx.logs(p.word_loc(1), "Invalid hex string for UDP_CHECK payload"),
                    }
                }
            }
            "require_reply" if kind == "UDP_CHECK" => {
                checker.udp.require_reply = true;
                if p.words.len() > 1 {
                    let text = p.args().collect::<Vec<_>>().join(" ");
                    match numbers::hex_str(&text, true) {
                        Some(pattern) => checker.udp.reply = Some(pattern),
                        None => ctx.logs(p.word_loc(1), "Invalid hex string for UDP_CHECK reply"),
                    }
                }
            }
            which @ ("min_reply_length" | "max_reply_length") if kind == "UDP_CHECK" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::unsigned(text, 0, 65535, false).value {
                    Some(n) => {
                        let n = u16::try_from(n).unwrap_or(u16::MAX);
                        if which == "min_reply_length" {
                            checker.udp.min_reply_length = n;
                        } else {
                            checker.udp.max_reply_length = n;
                        }
                    }
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "UDP_CHECK {} length {text} not valid - must be between 0 & 65535",
                            if which == "min_reply_length" {
                                "min"
                            } else {
                                "max"
                            }
                        ),
                    ),
                }
            }
            "type" if kind == "DNS_CHECK" => {
                if let Some(text) = ctx.arg(p, 1) {
                    match DNS_TYPES
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(text))
                    {
                        Some((name, _)) => checker.dns_type = Some(name.to_string()),
                        None => ctx.logs(
                            p.word_loc(1),
                            format!("Unknown DNS check type {text} - ignoring"),
                        ),
                    }
                }
            }
            "name" if kind == "DNS_CHECK" => {
                if let Some(name) = ctx.arg(p, 1) {
                    if checker.dns_name.is_some() {
                        ctx.logs(p.loc.clone(), "DNS_CHECK name already specified - ignoring");
                    } else if dns_name_invalid(name) {
                        ctx.logs(
                            p.word_loc(1),
                            format!("DNS_CHECK name '{name}' has empty label - ignoring"),
                        );
                        if dns_name_first_label_is_one_character(name) {
                            ctx.ignores(
                                p.word_loc(1),
                                "keepalived 2.2.7 takes a first label of one character for an empty one and asks about the root (or an earlier name) instead",
                            );
                        }
                    } else {
                        checker.dns_name = Some(name.to_string());
                    }
                }
            }
            "host" if kind == "SMTP_CHECK" => {
                let host = smtp_host(child, &mut checker.timers, ctx);
                checker.smtp_hosts.push(host);
            }
            "bindto" | "bind_port" | "bind_if" | "fwmark" => {
                checker.connection_set = true;
                ctx.unused(p, &format!("'{}' in {kind}", child.keyword()));
            }
            "connect_ip" => {
                if let Some(text) = ctx.arg(p, 1) {
                    match text.parse() {
                        Ok(ip) => {
                            checker.connection_set = true;
                            checker.connect_ip = Some(ip);
                        }
                        Err(_) => ctx.logs(
                            p.word_loc(1),
                            format!("invalid connect_ip {text} - ignoring"),
                        ),
                    }
                }
            }
            "connect_port" => match ctx.unsigned(p, 1, 1, 65535, true) {
                Some(port) => {
                    checker.connection_set = true;
                    checker.connect_port = u16::try_from(port).ok();
                }
                None => ctx.logs(p.loc.clone(), "Invalid checker connect_port - ignoring"),
            },
            "virtualhost" => checker.virtualhost = p.words.get(1).map(|w| w.text.clone()),
            "url" => {
                let url = url(child, ctx);
                if url.path.is_some() {
                    checker.urls.push(url);
                } else {
                    ctx.logs(
                        child.end_loc(),
                        "HTTP/SSL_GET checker url has no path - ignoring",
                    );
                }
            }
            "misc_path" => checker.misc = vrrp_script::command(p, ctx),
            "misc_timeout" => {
                if let Some(secs) = ctx.unsigned(p, 1, 0, u64::from(u32::MAX) / 1_000_000, true) {
                    checker.misc_timeout = Some(Duration::from_secs(secs));
                }
            }
            "misc_dynamic" => ctx.unsupported(
                p.loc.clone(),
                "misc_dynamic (a MISC_CHECK's exit code setting the weight)",
            ),
            "user" if kind == "MISC_CHECK" => {
                let script = checker.misc.join(" ");
                match p.words.get(1) {
                    None => ctx.logs(
                        p.loc.clone(),
                        format!("No user specified for misc checker script {script}"),
                    ),
                    Some(user) => {
                        let group = p.words.get(2).map(|w| w.text.as_str());
                        match security::resolve_user(ctx.fs, &user.text, group) {
                            Ok(run_as) => checker.misc_user = Some(run_as),
                            Err(message) => {
                                ctx.logs(p.loc.clone(), message);
                                ctx.logs(
                                    p.loc.clone(),
                                    format!("Failed to set uid/gid for misc checker script {script} - removing"),
                                );
                                checker.misc_user_failed = true;
                            }
                        }
                    }
                }
            }
            "alpha" | "warmup" | "enable_sni" | "http_protocol" | "fast_recovery"
            | "log_all_failures" | "user" => {
                ctx.unused(p, &format!("'{}' in {kind}", child.keyword()));
            }
            keyword => ctx.unused(p, &format!("'{keyword}' in {kind}")),
        }
    }
    if matches!(kind, "HTTP_GET" | "SSL_GET") && checker.urls.is_empty() {
        ctx.diags.error(
            stmt.end_loc(),
            "HTTP/SSL_GET checker has no urls specified: keepalived 2.2.7 reports this and then crashes (segmentation fault) while reading the file",
        );
        return None;
    }
    if kind == "UDP_CHECK" && checker.udp.min_reply_length > checker.udp.max_reply_length {
        ctx.logs(
            stmt.end_loc(),
            format!(
                "UDP_CHECK min_reply length {} > max_reply_length {} - will always fail",
                checker.udp.min_reply_length, checker.udp.max_reply_length
            ),
        );
    }
    if kind == "SMTP_CHECK" && !checker.smtp_hosts.is_empty() {
        smtp_hosts_into_checker(&mut checker, ctx)?;
    }
    Some(checker)
}

/// keepalived's `dns_name_handler` test for an empty label: a name that
/// starts with a dot (other than `.` itself), or where the character after
/// the start or after any dot is a dot — which also rejects a first label
/// of one character (`x.test`), a slip in keepalived 2.2.7 kept here.
fn dns_name_invalid(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.first() == Some(&b'.') && bytes.len() > 1 {
        return true;
    }
    let starts = std::iter::once(0).chain(
        bytes
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, b)| **b == b'.')
            .map(|(i, _)| i),
    );
    for start in starts {
        if bytes.get(start + 1) == Some(&b'.') {
            return true;
        }
    }
    false
}

fn dns_name_first_label_is_one_character(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 1 && bytes[0] != b'.' && bytes[1] == b'.'
}

/// One SMTP_CHECK `host { }` block: its connection keywords are its own;
/// the others (`retry`, `delay_before_retry`, ...) set the checker's.
fn smtp_host(stmt: &Stmt, timers: &mut Timers, ctx: &mut Ctx<'_>) -> SmtpHost {
    let mut host = SmtpHost {
        loc: stmt.loc(),
        connect_ip: None,
        connect_port: None,
        connect_timeout: None,
    };
    for child in stmt.children() {
        let p = &child.piece;
        match child.keyword() {
            "connect_ip" => {
                if let Some(text) = ctx.arg(p, 1) {
                    match text.parse() {
                        Ok(ip) => host.connect_ip = Some(ip),
                        Err(_) => ctx.logs(
                            p.word_loc(1),
                            format!("Invalid connect_ip address {text} - ignoring"),
                        ),
                    }
                }
            }
            "connect_port" => match ctx.unsigned(p, 1, 1, 65535, true) {
                Some(port) => host.connect_port = u16::try_from(port).ok(),
                None => ctx.logs(p.loc.clone(), "Invalid checker connect_port - ignoring"),
            },
            "connect_timeout" => {
                let mut own = Timers::default();
                timer_keyword(child, &mut own, ctx);
                if own.connect_timeout.is_some() {
                    host.connect_timeout = own.connect_timeout;
                }
            }
            "bindto" | "bind_port" | "bind_if" | "fwmark" => {
                ctx.unused(p, &format!("'{}' in an SMTP_CHECK host", child.keyword()));
            }
            _ => {
                if !timer_keyword(child, timers, ctx) {
                    ctx.unused(p, &format!("'{}' in an SMTP_CHECK host", child.keyword()));
                }
            }
        }
    }
    host
}

/// keepalived's `smtp_check_end_handler` for host blocks: when the
/// SMTP_CHECK sets no connection keyword of its own, its first host block
/// becomes its connection; every other host block (and the checker itself
/// when it does set one) is a further checker of the real server.
fn smtp_hosts_into_checker(checker: &mut Checker, ctx: &mut Ctx<'_>) -> Option<()> {
    let first = &checker.smtp_hosts[0];
    ctx.diags.warning(
        first.loc.clone(),
        "keepalived logs \"The SMTP_CHECK host block is deprecated. Please define additional checkers.\"",
    );
    let checkers = checker.smtp_hosts.len() + usize::from(checker.connection_set);
    if checkers > 1 {
        let extra = if checker.connection_set {
            first.loc.clone()
        } else {
            checker.smtp_hosts[1].loc.clone()
        };
        ctx.unsupported(
            extra,
            format!(
                "several checkers on one real server (keepalived makes this SMTP_CHECK {checkers} checkers: each host block is one{})",
                if checker.connection_set {
                    ", and the SMTP_CHECK's own connection keywords another"
                } else {
                    ""
                }
            ),
        );
        return None;
    }
    let Some(timeout) = first.connect_timeout else {
        ctx.unsupported(
            first.loc.clone(),
            "an SMTP_CHECK host block without connect_timeout (keepalived 2.2.7 gives it a connect timeout of 0, not the checker's); add connect_timeout to the host block",
        );
        return None;
    };
    checker.connect_ip = first.connect_ip;
    checker.connect_port = first.connect_port;
    checker.timers.connect_timeout = Some(timeout);
    Some(())
}

fn url(stmt: &Stmt, ctx: &mut Ctx<'_>) -> Url {
    let mut url = Url {
        loc: Some(stmt.loc()),
        ..Url::default()
    };
    for child in stmt.children() {
        let p = &child.piece;
        match child.keyword() {
            "path" => url.path = ctx.arg(p, 1).map(str::to_string),
            "digest" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                if url.digest.is_some() {
                    ctx.logs(p.word_loc(1), format!("Digest '{text}' is a duplicate"));
                } else if text.len() != 32 {
                    ctx.logs(
                        p.word_loc(1),
                        format!(
                            "digest '{text}' character length should be 32 rather than {}",
                            text.len()
                        ),
                    );
                } else if let Some(bad) = text
                    .as_bytes()
                    .chunks(2)
                    .position(|pair| !pair.iter().all(u8::is_ascii_hexdigit))
                {
                    ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Unable to interpret hex digit in '{text}' at offset {}/{}",
                            2 * bad,
                            2 * bad + 1
                        ),
                    );
                } else {
                    url.digest = Some(text.to_ascii_lowercase());
                }
            }
            "status_code" => {
                for (i, word) in p.words.iter().enumerate().skip(1) {
                    match status_range(&word.text) {
                        Some(range) => url.status.push(range),
                        None => ctx.logs(
                            p.word_loc(i),
                            format!("Invalid HTTP_GET status code '{}' - ignoring", word.text),
                        ),
                    }
                }
            }
            "regex" => {
                let text = p.args().collect::<Vec<_>>().join(" ");
                match regex::Regex::new(&text) {
                    Ok(_) => url.regex = Some(text),
                    Err(e) => ctx.logs(p.word_loc(1), format!("Invalid regex: {e}")),
                }
            }
            "virtualhost" => url.virtualhost = p.words.get(1).map(|w| w.text.clone()),
            keyword => ctx.unsupported(p.loc.clone(), format!("'{keyword}' in url")),
        }
    }
    url
}

/// Add the virtual servers, each with a hostgroup and a health service.
pub fn apply(list: Vec<Vs>, globals: &Globals, config: &mut Config, ctx: &mut Ctx<'_>) {
    for vs in list {
        let protocol = match vs.protocol {
            Some(p) => p,
            None => {
                ctx.ignores(
                    vs.loc.clone(),
                    format!(
                        "virtual server {} has no protocol: keepalived reports \"no protocol set - defaulting to UDP\" and serves UDP",
                        vs.addr
                    ),
                );
                Protocol::Udp
            }
        };
        let scheduler_name = vs.scheduler.clone().unwrap_or_else(|| "wlc".to_string());
        let Some(mut scheduler) = LbScheduler::from_name(&scheduler_name) else {
            ctx.unsupported(
                vs.loc.clone(),
                format!("the IPVS scheduler {scheduler_name}"),
            );
            continue;
        };
        if let Some(at) = vs.sched_flags_at.clone() {
            match &mut scheduler {
                LbScheduler::Maglev(flags) => *flags = vs.sched_flags,
                LbScheduler::SourceHash => {
                    ctx.unsupported(at, "sh-port/sh-fallback with the sh scheduler");
                    continue;
                }
                _ => ctx.ignores(
                    at,
                    format!(
                        "the scheduler flags only mean something to sh and mh; {scheduler_name} ignores them"
                    ),
                ),
            }
        }
        let name = match protocol {
            Protocol::Tcp => vs.addr.to_string(),
            Protocol::Udp => format!("{}/udp", vs.addr),
        };
        let forward = vs.forward.unwrap_or(Forward::Nat);
        let health = health_service(&vs, &group_name(&name), globals, config, ctx);
        let real_servers = vs
            .real_servers
            .iter()
            .map(|rs| RealServer {
                bfd: bfd_of(rs, ctx),
                addr: rs.addr,
                name: None,
                host: host_of(rs),
                weight: rs.weight,
                forward: rs.forward.unwrap_or(forward),
                admin: AdminState::Ready,
                inhibit_on_failure: rs.inhibit.unwrap_or(vs.inhibit),
                thresholds: rs.thresholds,
                backup: false,
                maxconn: None,
                maxqueue: None,
                slowstart: None,
            })
            .collect();
        config.virtual_servers.insert(
            name.clone(),
            VirtualServer {
                name,
                listen: Some(vs.addr),
                protocol,
                scheduler,
                dataplane: globals.dataplane(),
                persistence: vs.persistence.map(Duration::from_secs),
                persistence_netmask: vs.granularity,
                sorry_server: vs.sorry,
                quorum: Some(vs.quorum),
                hysteresis: vs.hysteresis,
                health,
                retries: 2,
                connect_timeout: Duration::from_secs(2),
                real_servers,
                proxy: Default::default(),
                origin: Origin(vs.loc.clone()),
            },
        );
    }
}

/// The host name standing for a real server in its health service.
fn host_of(rs: &Rs) -> String {
    rs.checkers
        .first()
        .and_then(|c| c.connect_ip)
        .unwrap_or(rs.addr.ip())
        .to_string()
}

/// One service checking every real server of `vs` (keepalived runs one
/// checker per real server; keepmon's model has one health service per
/// virtual server, so the checkers must agree apart from the address).
/// The hostgroup and watch of a virtual server's checks: its name with
/// every character that `group:service` references (and mon's protocol)
/// cannot carry made `_` (`10.0.0.1:80` → `10.0.0.1_80`).
fn group_name(vs_name: &str) -> String {
    vs_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The BFD session a real server follows (keepalived's BFD_CHECK): one
/// BFD_CHECK as the server's only checker.
fn bfd_of(rs: &Rs, ctx: &mut Ctx<'_>) -> Option<String> {
    let (name, at) = rs.bfd.first()?;
    if rs.bfd.len() > 1 || !rs.checkers.is_empty() {
        let at = rs.bfd.get(1).map_or(at, |(_, at)| at);
        ctx.unsupported(
            at.clone(),
            "several checkers on one real server (a BFD_CHECK must be the server's only checker)",
        );
        return None;
    }
    Some(name.clone())
}

fn health_service(
    vs: &Vs,
    name: &str,
    globals: &Globals,
    config: &mut Config,
    ctx: &mut Ctx<'_>,
) -> Option<ServiceRef> {
    let checked: Vec<&Rs> = vs
        .real_servers
        .iter()
        .filter(|r| !r.checkers.is_empty())
        .collect();
    if checked.is_empty() {
        return None;
    }
    // A server following a BFD session (BFD_CHECK) needs no health service.
    let unchecked = |r: &&Rs| r.checkers.is_empty() && r.bfd.is_empty();
    if vs.real_servers.iter().any(|r| unchecked(&r)) {
        let unchecked = vs.real_servers.iter().find(unchecked);
        if let Some(rs) = unchecked {
            ctx.unsupported(
                rs.loc.clone(),
                "a real server without a checker beside real servers with one (keepmon checks all real servers of a virtual server with one health service)",
            );
        }
        return None;
    }
    let mut plans = Vec::new();
    for rs in &checked {
        if rs.checkers.len() > 1 {
            ctx.unsupported(
                rs.checkers[1].loc.clone(),
                "several checkers on one real server",
            );
            return None;
        }
        let checker = &rs.checkers[0];
        let timers = checker.timers.or(rs.timers).or(vs.timers);
        let (monitor, run_as) = monitor(checker, rs, timers, globals, ctx)?;
        plans.push((monitor, run_as, timers, checker.loc.clone()));
    }
    let (first, run_as, timers, at) = plans[0].clone();
    for (monitor, other_run_as, other_timers, loc) in &plans[1..] {
        let same_timers = other_timers.delay_loop == timers.delay_loop
            && other_timers.retry == timers.retry
            && other_timers.delay_before_retry == timers.delay_before_retry;
        if *monitor != first || !same_timers || *other_run_as != run_as {
            ctx.unsupported(
                loc.clone(),
                format!(
                    "this checker differs from the one at line {} (beyond the address it checks); keepmon checks all real servers of a virtual server with one health service",
                    at.line
                ),
            );
            return None;
        }
    }
    let kind = checked[0].checkers[0].kind.to_ascii_lowercase();
    let kind_name = checked[0].checkers[0].kind.as_str();
    let delay_loop = timers.delay_loop.unwrap_or(DELAY_LOOP);
    let mut svc = service(name, &kind, first, delay_loop, &at);
    svc.run_as = run_as;
    if kind_name == "MISC_CHECK" {
        // keepalived: misc_timeout, or else the virtual server's delay_loop.
        svc.timeout = Some(
            checked[0].checkers[0]
                .misc_timeout
                .filter(|t| !t.is_zero())
                .unwrap_or(vs.timers.delay_loop.unwrap_or(DELAY_LOOP)),
        );
    }
    let retry = timers.retry.unwrap_or(default_retry(kind_name));
    svc.fall = retry.saturating_add(1);
    svc.rise = 1;
    // keepalived retries at once after `delay_before_retry 0`; keepmon keeps
    // polling at this interval while the server fails, so zero would spin
    // on a refused connection: a 100 ms floor keeps the retries prompt.
    svc.failure_interval = Some(
        timers
            .delay_before_retry
            .unwrap_or_else(|| default_delay_before_retry(kind_name).unwrap_or(delay_loop))
            .max(Duration::from_millis(100)),
    );
    let mut hosts: Vec<String> = Vec::new();
    for rs in &checked {
        let host = host_of(rs);
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let origin = Origin(vs.loc.clone());
    config.hostgroups.insert(
        name.to_string(),
        HostGroup {
            name: name.to_string(),
            hosts,
            implicit: true,
            origin: origin.clone(),
        },
    );
    let mut services = BTreeMap::new();
    services.insert(kind.clone(), svc);
    config.watches.insert(
        name.to_string(),
        Watch {
            group: name.to_string(),
            services,
            origin,
        },
    );
    Some(ServiceRef {
        group: name.to_string(),
        service: kind,
    })
}

/// The built-in or exec monitor doing what a checker does, and the user
/// a MISC_CHECK script runs as.
fn monitor(
    checker: &Checker,
    rs: &Rs,
    timers: Timers,
    globals: &Globals,
    ctx: &mut Ctx<'_>,
) -> Option<(Monitor, Option<RunAs>)> {
    if checker.kind == "MISC_CHECK" {
        let run_as = misc_run_as(checker, globals, ctx)?;
        let monitor = checker_monitor(checker, rs, timers, ctx)?;
        if let Monitor::Exec {
            path: Some(path), ..
        } = &monitor
            && !vrrp_script::secure(path, run_as.as_ref(), globals, &checker.loc, ctx)
        {
            ctx.unsupported(
                checker.loc.clone(),
                format!(
                    "keepalived disables the insecure MISC_CHECK script {} and the real server then has no checker",
                    path.display()
                ),
            );
            return None;
        }
        return Some((monitor, run_as));
    }
    Some((checker_monitor(checker, rs, timers, ctx)?, None))
}

/// Who a MISC_CHECK script runs as (keepalived's `misc_user_handler` and
/// `misc_end_handler`): its `user`, else the default script user.
fn misc_run_as(checker: &Checker, globals: &Globals, ctx: &mut Ctx<'_>) -> Option<Option<RunAs>> {
    if checker.misc_user_failed {
        ctx.unsupported(
            checker.loc.clone(),
            "keepalived removes this MISC_CHECK (its user cannot be resolved) and the real server then has no checker",
        );
        return None;
    }
    if let Some(user) = &checker.misc_user {
        return Some(Some(user.clone()));
    }
    match globals.default_run_as(ctx.fs) {
        Ok(run_as) => Some(run_as),
        Err(_) => {
            ctx.logs(
                checker.loc.clone(),
                format!(
                    "Unable to set default user for misc script {} - removing",
                    checker.misc.join(" ")
                ),
            );
            ctx.unsupported(
                checker.loc.clone(),
                "keepalived removes this MISC_CHECK (no default script user) and the real server then has no checker",
            );
            None
        }
    }
}

/// The built-in or exec monitor of one checker.
fn checker_monitor(
    checker: &Checker,
    rs: &Rs,
    timers: Timers,
    ctx: &mut Ctx<'_>,
) -> Option<Monitor> {
    let port = checker.connect_port.unwrap_or(rs.addr.port());
    let timeout = timers.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
    match checker.kind.as_str() {
        "TCP_CHECK" => Some(Monitor::Tcp(TcpCheck {
            port,
            send: None,
            expect: None,
            timeout,
        })),
        "HTTP_GET" | "SSL_GET" => {
            // Every url in turn, each on its own connection; all must pass.
            let mut urls = Vec::new();
            for url in &checker.urls {
                let at = url.loc.clone().unwrap_or_else(|| checker.loc.clone());
                let Some(path) = url.path.clone() else {
                    ctx.unsupported(
                        at,
                        "a url without a path (keepalived drops it: the checker then has no url)",
                    );
                    return None;
                };
                urls.push(HttpUrl {
                    path,
                    host_header: url.virtualhost.clone().or(checker.virtualhost.clone()),
                    status: if url.status.is_empty() {
                        vec![(200, 299)]
                    } else {
                        url.status.clone()
                    },
                    body: url.regex.clone(),
                    digest: url.digest.clone(),
                });
            }
            if urls.is_empty() {
                ctx.unsupported(
                    checker.loc.clone(),
                    format!("{} without a url", checker.kind),
                );
                return None;
            }
            let first = urls.remove(0);
            let tls = checker.kind == "SSL_GET";
            Some(Monitor::Http(HttpCheck {
                tls,
                port,
                method: "GET".to_string(),
                path: first.path,
                host_header: first.host_header,
                status: first.status,
                body: first.body,
                timeout,
                // keepalived does not verify the real server's certificate
                // (meaningless without TLS, so only said for SSL_GET).
                insecure: tls,
                digest: first.digest,
                more_urls: urls,
            }))
        }
        "PING_CHECK" => Some(Monitor::Ping(PingCheck { count: 1, timeout })),
        "UDP_CHECK" => Some(Monitor::Udp(UdpCheck {
            port,
            payload: checker.udp.payload.clone(),
            require_reply: checker.udp.require_reply,
            reply: checker.udp.reply.clone(),
            min_reply_length: checker.udp.min_reply_length,
            max_reply_length: checker.udp.max_reply_length,
            timeout,
        })),
        "DNS_CHECK" => {
            let name = checker.dns_name.clone().unwrap_or_else(|| ".".to_string());
            if let Err(e) = crate::monitor::dns::encode_query(0, &name, 0) {
                ctx.unsupported(
                    checker.loc.clone(),
                    format!("the DNS_CHECK name {name}: {e} (keepalived sends a malformed query)"),
                );
                return None;
            }
            Some(Monitor::Dns(DnsCheck {
                port,
                query_type: checker
                    .dns_type
                    .clone()
                    .unwrap_or_else(|| "SOA".to_string()),
                name,
                timeout,
            }))
        }
        "SMTP_CHECK" => Some(Monitor::Smtp(SmtpCheck {
            port,
            helo_name: checker
                .helo_name
                .clone()
                .unwrap_or_else(|| SMTP_DEFAULT_HELO.to_string()),
            timeout,
        })),
        "MISC_CHECK" => {
            let Some(program) = checker.misc.first() else {
                ctx.unsupported(checker.loc.clone(), "a MISC_CHECK without misc_path");
                return None;
            };
            let path: Option<PathBuf> = vrrp_script::find_program(program, ctx);
            if path.is_none() {
                ctx.unsupported(
                    checker.loc.clone(),
                    format!("the MISC_CHECK script {program} is not found"),
                );
                return None;
            }
            Some(Monitor::Exec {
                name: program.clone(),
                args: checker.misc[1..].to_vec(),
                append_hosts: false,
                path,
            })
        }
        other => {
            ctx.unsupported(
                checker.loc.clone(),
                format!("{other} has no equivalent monitor in keepmon yet"),
            );
            None
        }
    }
}

/// `IP PORT` at word `index` of `piece`.
fn socket_addr(piece: &Piece, index: usize, ctx: &mut Ctx<'_>) -> Option<SocketAddr> {
    let ip_text = ctx.arg(piece, index)?;
    let port_text = ctx.arg(piece, index + 1)?;
    let Ok(ip) = ip_text.parse::<IpAddr>() else {
        ctx.logs(piece.word_loc(index), format!("Invalid address {ip_text}"));
        return None;
    };
    let Some(port) = numbers::unsigned(port_text, 0, 65535, false).value else {
        ctx.logs(
            piece.word_loc(index + 1),
            format!("Invalid port {port_text}"),
        );
        return None;
    };
    Some(SocketAddr::new(ip, u16::try_from(port).unwrap_or(0)))
}

fn forwarding(p: &Piece, ctx: &mut Ctx<'_>) -> Option<Forward> {
    match ctx.arg(p, 1)? {
        "NAT" => Some(Forward::Nat),
        "DR" => Some(Forward::DirectRouting),
        "TUN" => Some(Forward::Tunnel),
        other => {
            ctx.logs(
                p.word_loc(1),
                format!("PARSER : unknown [{other}] routing method."),
            );
            None
        }
    }
}

/// `inhibit_on_failure [on|off]`.
fn flag(p: &Piece, ctx: &mut Ctx<'_>) -> bool {
    match p.words.get(1) {
        None => true,
        Some(word) => numbers::true_false(&word.text).unwrap_or_else(|| {
            ctx.logs(
                p.word_loc(1),
                format!("Invalid value '{}' - ignoring", word.text),
            );
            true
        }),
    }
}

/// An IPv4 netmask (`255.255.255.0`) or an IPv6 prefix length.
fn granularity(text: &str, v6: bool) -> Option<u8> {
    if v6 {
        return text.parse::<u8>().ok().filter(|p| (1..=128).contains(p));
    }
    let mask: std::net::Ipv4Addr = text.parse().ok()?;
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then(|| u8::try_from(ones).unwrap_or(32))
}

/// `200`, or `200-299`.
fn status_range(text: &str) -> Option<(u16, u16)> {
    let (low, high) = match text.split_once('-') {
        Some((l, h)) => (l.parse().ok()?, h.parse().ok()?),
        None => {
            let code = text.parse().ok()?;
            (code, code)
        }
    };
    ((100..=599).contains(&low) && low <= high && high <= 599).then_some((low, high))
}
