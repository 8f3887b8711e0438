//! keepalived's `virtual_server` blocks with their `real_server`s and checkers: IPVS services (or keepmon's `keepmon_dataplane`) whose real servers follow one health service per virtual server.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::depend::ServiceRef;
use crate::config::diag::Location;
use crate::config::keepalived::bfd::BfdInstance;
use crate::config::keepalived::global_defs::Globals;
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::track_file::TrackedFile;
use crate::config::keepalived::tree::Stmt;
use crate::config::keepalived::vs_group::{self, Group};
use crate::config::keepalived::{Ctx, numbers, security, service, vrrp_script};
use crate::config::model::{
    AdminState, Config, DNS_TYPES, DnsCheck, Forward, Fwmark, HexPattern, HostGroup, HttpCheck,
    HttpUrl, LbScheduler, MhFlags, Monitor, Origin, PingCheck, Protocol, RealCheck, RealServer,
    RunAs, SMTP_DEFAULT_HELO, SmtpCheck, TcpCheck, Thresholds, TrackFile, UdpCheck, VirtualServer,
    Watch,
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
    pub key: VsKey,
    /// keepalived's `vs->af` (true: IPv6): the address's, else `ip_family`,
    /// a real or sorry server's (not tunnelled), `persistence_granularity`'s.
    pub family: Option<bool>,
    pub protocol: Option<Protocol>,
    /// Where `protocol` was written (a fwmark service ignores it).
    pub protocol_at: Option<Location>,
    /// Where `persistence_granularity` was written (a group ignores it).
    pub granularity_at: Option<Location>,
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

/// What a `virtual_server` line names.
#[derive(Clone, Debug)]
pub enum VsKey {
    /// `virtual_server IP PORT`.
    Addr(SocketAddr),
    /// `virtual_server fwmark N`.
    Fwmark(NonZeroU32),
    /// `virtual_server group NAME`.
    Group(String),
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
    /// `misc_dynamic`: exit 2–255 passes and sets the weight to status − 2.
    pub misc_dynamic: bool,
    /// FILE_CHECK's tracked file with its weight.
    pub file: Option<TrackFile>,
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

/// Read one `virtual_server IP PORT | fwmark N | group NAME { ... }`.
pub fn read(
    stmt: &Stmt,
    files: &[TrackedFile],
    bfds: &[BfdInstance],
    ctx: &mut Ctx<'_>,
) -> Option<Vs> {
    let piece = &stmt.piece;
    let key = key(piece, ctx)?;
    let (mut family, default_port) = match &key {
        VsKey::Addr(addr) => (Some(addr.is_ipv6()), addr.port()),
        // keepalived's vs->addr stays zero: a real server without a port
        // has port 0.
        VsKey::Fwmark(_) | VsKey::Group(_) => (None, 0),
    };
    let mut vs = Vs {
        loc: piece.loc.clone(),
        key,
        family: None,
        protocol: None,
        protocol_at: None,
        granularity_at: None,
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
                    // keepalived: without a family yet, a dot means IPv4.
                    let v6 = family.unwrap_or(!text.contains('.'));
                    match granularity(text, v6) {
                        Some(prefix) => {
                            vs.granularity = Some(prefix);
                            vs.granularity_at = Some(p.loc.clone());
                            family.get_or_insert(v6);
                            vs.persistence.get_or_insert(PERSISTENCE_DEFAULT);
                        }
                        None => ctx.logs(
                            p.word_loc(1),
                            format!("Invalid persistence_granularity specified - {text}"),
                        ),
                    }
                }
            }
            "ip_family" => {
                if let Some(text) = ctx.arg(p, 1) {
                    ip_family(p, text, &mut family, ctx);
                }
            }
            "protocol" => match ctx
                .arg(p, 1)
                .inspect(|_| vs.protocol_at = Some(p.loc.clone()))
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
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
                if let Some(rs) = real_server(child, default_port, files, bfds, ctx) {
                    // keepalived's rs_end_handler: a real server that is not
                    // tunnelled sets or must match the family.
                    let tunnelled = rs.forward.or(vs.forward) == Some(Forward::Tunnel);
                    if !tunnelled && !same_family(&mut family, rs.addr.ip()) {
                        ctx.logs(
                            child.end_loc(),
                            format!(
                                "Address family of virtual server and real server {} don't match - skipping real server.",
                                rs.addr.ip()
                            ),
                        );
                    } else if vs.real_servers.iter().any(|r| r.addr == rs.addr) {
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
    // keepalived's vs_end_handler: the sorry server's family (unless
    // tunnelled); a fwmark service's family falls back to its tunnelled
    // servers', then IPv4.
    if let Some(sorry) = vs.sorry
        && vs.forward != Some(Forward::Tunnel)
        && !same_family(&mut family, sorry.ip())
    {
        ctx.logs(
            stmt.end_loc(),
            format!(
                "Address family of virtual server and sorry server {} don't match - skipping sorry server.",
                sorry.ip()
            ),
        );
        vs.sorry = None;
    }
    if matches!(vs.key, VsKey::Fwmark(_)) && family.is_none() {
        let mut families = vs
            .sorry
            .iter()
            .map(SocketAddr::is_ipv6)
            .chain(vs.real_servers.iter().map(|r| r.addr.is_ipv6()));
        let first = families.next();
        family = Some(first.filter(|f| families.all(|g| g == *f)).unwrap_or(false));
    }
    vs.family = family;
    Some(vs)
}

/// What the `virtual_server` line names; None when keepalived skips the
/// block.
fn key(piece: &Piece, ctx: &mut Ctx<'_>) -> Option<VsKey> {
    let first = ctx.arg(piece, 1)?;
    match first {
        "group" => Some(VsKey::Group(ctx.arg(piece, 2)?.to_string())),
        "fwmark" => {
            let text = ctx.arg(piece, 2)?;
            let Some(mark) = ctx.unsigned(piece, 2, 0, u64::from(u32::MAX), true) else {
                ctx.logs(
                    piece.word_loc(2),
                    format!(
                        "virtual server fwmark '{text}' must be in [0, {}] - ignoring",
                        u32::MAX
                    ),
                );
                ctx.ignores(piece.loc.clone(), "keepalived skips the block");
                return None;
            };
            let Some(mark) = u32::try_from(mark).ok().and_then(NonZeroU32::new) else {
                ctx.unsupported(
                    piece.word_loc(2),
                    format!(
                        "virtual_server fwmark {text} (keepalived reads mark 0 and takes it for no mark: an address service on an unset address, port 0)"
                    ),
                );
                return None;
            };
            Some(VsKey::Fwmark(mark))
        }
        _ => match socket_addr(piece, 1, ctx) {
            Some(addr) => Some(VsKey::Addr(addr)),
            None => {
                ctx.ignores(
                    piece.loc.clone(),
                    "keepalived cannot use this virtual_server address and skips the block",
                );
                None
            }
        },
    }
}

/// `ip_family inet|inet6` (keepalived's `ip_family_handler`).
fn ip_family(p: &Piece, text: &str, family: &mut Option<bool>, ctx: &mut Ctx<'_>) {
    let v6 = match text {
        "inet" => false,
        "inet6" => true,
        _ => {
            ctx.logs(p.word_loc(1), format!("unknown address family {text}"));
            return;
        }
    };
    if family.is_some_and(|f| f != v6) {
        ctx.logs(
            p.word_loc(1),
            format!("Virtual server specified family {text} conflicts with server family"),
        );
        return;
    }
    *family = Some(v6);
}

/// Whether `ip` has the virtual server's family, setting it when unset.
fn same_family(family: &mut Option<bool>, ip: IpAddr) -> bool {
    *family.get_or_insert(ip.is_ipv6()) == ip.is_ipv6()
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
    default_port: u16,
    files: &[TrackedFile],
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
            SocketAddr::new(ip, default_port)
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
                rs.checkers
                    .extend(checker(child, kind, files, ctx).into_iter().flatten());
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

/// The checkers of one checker block (an SMTP_CHECK with host blocks is
/// several); None when keepalived drops it.
fn checker(
    stmt: &Stmt,
    kind: &str,
    files: &[TrackedFile],
    ctx: &mut Ctx<'_>,
) -> Option<Vec<Checker>> {
    if kind == "FILE_CHECK" {
        return file_check(stmt, files, ctx).map(|c| vec![c]);
    }
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
        misc_dynamic: false,
        file: None,
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
            "misc_dynamic" => checker.misc_dynamic = true,
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
        return smtp_hosts_into_checkers(checker, ctx);
    }
    Some(vec![checker])
}

/// keepalived's FILE_CHECK (check_file.c): `track_file NAME` names a
/// `track_file` block defined before it; `weight W [reverse|noreverse]`
/// (±INT_MAX), else the block's weight and direction. Without a known
/// file keepalived drops the checker.
fn file_check(stmt: &Stmt, files: &[TrackedFile], ctx: &mut Ctx<'_>) -> Option<Checker> {
    let mut file: Option<&TrackedFile> = None;
    let mut weight: Option<(i64, bool)> = None;
    for child in stmt.children() {
        let p = &child.piece;
        match child.keyword() {
            "track_file" => {
                let name = ctx.arg(p, 1)?;
                match files.iter().find(|f| f.name == name) {
                    Some(found) => file = Some(found),
                    None => ctx.logs(p.word_loc(1), format!("track_file {name} not found")),
                }
            }
            "weight" => {
                let Some(text) = p.words.get(1).map(|w| w.text.clone()) else {
                    ctx.logs(p.loc.clone(), "track file weight missing");
                    continue;
                };
                let limit = i64::from(i32::MAX);
                let Some(w) = numbers::int(&text, -limit, limit, true).value else {
                    ctx.logs(
                        p.word_loc(1),
                        format!(
                            "weight for track file must be in [{}..{limit}] inclusive. Ignoring...",
                            -limit
                        ),
                    );
                    continue;
                };
                let reverse = match p.words.get(2).map(|w| w.text.as_str()) {
                    None | Some("noreverse") => false,
                    Some("reverse") => true,
                    Some(other) => {
                        ctx.logs(
                            p.word_loc(2),
                            format!("unknown track file weight option {other} - ignoring"),
                        );
                        continue;
                    }
                };
                weight = Some((w, reverse));
            }
            keyword => ctx.unused(p, &format!("'{keyword}' in FILE_CHECK")),
        }
    }
    let Some(file) = file else {
        ctx.logs(
            stmt.end_loc(),
            "FILE_CHECK has no track_file specified - ignoring",
        );
        return None;
    };
    let (weight, reverse) = weight.unwrap_or((file.weight, file.reverse));
    Some(Checker {
        kind: "FILE_CHECK".to_string(),
        loc: stmt.loc(),
        connect_ip: None,
        connect_port: None,
        timers: Timers::default(),
        urls: Vec::new(),
        virtualhost: None,
        misc: Vec::new(),
        misc_timeout: None,
        misc_dynamic: false,
        file: Some(TrackFile {
            path: file.path.clone(),
            weight: i32::try_from(weight).unwrap_or(0),
            reverse,
        }),
        misc_user: None,
        misc_user_failed: false,
        helo_name: None,
        smtp_hosts: Vec::new(),
        udp: UdpOptions::default(),
        dns_type: None,
        dns_name: None,
        connection_set: false,
    })
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
/// when it does set one) is a further checker of the real server, with the
/// same helo name, retries and delays.
fn smtp_hosts_into_checkers(checker: Checker, ctx: &mut Ctx<'_>) -> Option<Vec<Checker>> {
    let first = &checker.smtp_hosts[0];
    ctx.diags.warning(
        first.loc.clone(),
        "keepalived logs \"The SMTP_CHECK host block is deprecated. Please define additional checkers.\"",
    );
    let mut checkers = Vec::new();
    if checker.connection_set {
        checkers.push(Checker {
            smtp_hosts: Vec::new(),
            ..checker.clone()
        });
    }
    for host in &checker.smtp_hosts {
        let Some(timeout) = host.connect_timeout else {
            ctx.unsupported(
                host.loc.clone(),
                "an SMTP_CHECK host block without connect_timeout (keepalived 2.2.7 gives it a connect timeout of 0, not the checker's); add connect_timeout to the host block",
            );
            return None;
        };
        let mut one = Checker {
            loc: host.loc.clone(),
            connect_ip: host.connect_ip,
            connect_port: host.connect_port,
            smtp_hosts: Vec::new(),
            ..checker.clone()
        };
        one.timers.connect_timeout = Some(timeout);
        checkers.push(one);
    }
    Some(checkers)
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

/// Add the virtual servers, each with a hostgroup and a health service; a
/// `virtual_server group` becomes one virtual server per IPVS service of
/// its group, all following the one health service of the block
/// (keepalived checks each real server once, whatever the group holds).
pub fn apply(
    list: Vec<Vs>,
    groups: &[Group],
    globals: &Globals,
    config: &mut Config,
    ctx: &mut Ctx<'_>,
) {
    for mut vs in list {
        let Some(endpoints) = endpoints(&vs, groups, ctx) else {
            continue;
        };
        let by_address = endpoints
            .iter()
            .any(|e| matches!(e.service, Service::Addr(_)));
        let protocol = match vs.protocol {
            _ if !by_address => {
                if let Some(at) = vs.protocol_at.clone() {
                    ctx.logs(
                        at,
                        format!(
                            "Warning: Virtual server {}: protocol specified for fwmark - protocol will be ignored",
                            display(&vs.key)
                        ),
                    );
                }
                Protocol::Tcp
            }
            Some(p) => p,
            None => {
                ctx.ignores(
                    vs.loc.clone(),
                    format!(
                        "virtual server {} has no protocol: keepalived reports \"no protocol set - defaulting to UDP\" and serves UDP",
                        display(&vs.key)
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
        if let VsKey::Group(group) = &vs.key {
            if let Some(at) = vs.granularity_at.clone() {
                ctx.ignores(
                    at,
                    format!(
                        "keepalived 2.2.7 sends the services of group {group} with the full netmask: persistence_granularity has no effect"
                    ),
                );
                vs.granularity = None;
            }
            if vs.persistence.is_none()
                && endpoints
                    .iter()
                    .any(|e| matches!(e.service, Service::Addr(a) if a.port() == 0))
            {
                ctx.ignores(
                    vs.loc.clone(),
                    format!(
                        "group {group} has an address without a port: keepalived reports \"zero port only valid for persistent services - setting\" and makes the service persistent ({PERSISTENCE_DEFAULT} s)"
                    ),
                );
                vs.persistence = Some(PERSISTENCE_DEFAULT);
            }
        }
        let forward = vs.forward.unwrap_or(Forward::Nat);
        port_warnings(&vs, &endpoints, forward, ctx);
        let block_name = match &vs.key {
            VsKey::Group(group) if by_address && protocol == Protocol::Udp => {
                format!("group-{group}/udp")
            }
            VsKey::Group(group) => format!("group-{group}"),
            _ => endpoints[0].name(protocol),
        };
        // A checker keepmon refuses has been reported; the virtual server
        // stays (unchecked) so that what refers to it still resolves.
        let Health {
            shared: health,
            own,
        } = health_service(&vs, &group_name(&block_name), globals, config, ctx).unwrap_or(Health {
            shared: None,
            own: vec![Vec::new(); vs.real_servers.len()],
        });
        for endpoint in &endpoints {
            let name = endpoint.name(protocol);
            if config.virtual_servers.contains_key(&name) {
                ctx.unsupported(
                    endpoint.loc.clone(),
                    format!(
                        "{} is already a service of an earlier virtual_server (keepalived would program one IPVS service for both)",
                        endpoint.service
                    ),
                );
                continue;
            }
            let real_servers = vs
                .real_servers
                .iter()
                .zip(&own)
                .map(|(rs, checks)| {
                    let forward = rs.forward.unwrap_or(forward);
                    RealServer {
                        bfd: bfd_of(rs, ctx),
                        addr: SocketAddr::new(
                            rs.addr.ip(),
                            endpoint.server_port(rs.addr.port(), forward),
                        ),
                        name: None,
                        host: host_of(rs),
                        weight: rs.weight,
                        forward,
                        admin: AdminState::Ready,
                        inhibit_on_failure: rs.inhibit.unwrap_or(vs.inhibit),
                        thresholds: rs.thresholds,
                        backup: false,
                        maxconn: None,
                        maxqueue: None,
                        slowstart: None,
                        checks: checks.clone(),
                        track_files: rs.checkers.iter().filter_map(|c| c.file.clone()).collect(),
                    }
                })
                .collect();
            let (listen, fwmark) = match endpoint.service {
                Service::Addr(addr) => (Some(addr), None),
                Service::Fwmark(fwmark) => (None, Some(fwmark)),
            };
            config.virtual_servers.insert(
                name.clone(),
                VirtualServer {
                    name,
                    listen,
                    fwmark,
                    protocol,
                    scheduler,
                    dataplane: globals.dataplane(),
                    persistence: vs.persistence.map(Duration::from_secs),
                    persistence_netmask: vs.granularity,
                    sorry_server: vs
                        .sorry
                        .map(|s| SocketAddr::new(s.ip(), endpoint.server_port(s.port(), forward))),
                    quorum: Some(vs.quorum),
                    hysteresis: vs.hysteresis,
                    health: health.clone(),
                    retries: 2,
                    connect_timeout: Duration::from_secs(2),
                    real_servers,
                    proxy: Default::default(),
                    origin: Origin(endpoint.loc.clone()),
                },
            );
        }
    }
}

/// One IPVS service a `virtual_server` block programs.
#[derive(Clone, Debug)]
struct Endpoint {
    service: Service,
    /// Part of a `virtual_server_group`.
    grouped: bool,
    /// The line that names it (the group's entry, or the virtual_server).
    loc: Location,
}

#[derive(Clone, Copy, Debug)]
enum Service {
    Addr(SocketAddr),
    Fwmark(Fwmark),
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Service::Addr(addr) => write!(f, "{addr}"),
            Service::Fwmark(fwmark) => write!(f, "{fwmark}"),
        }
    }
}

impl Endpoint {
    /// The virtual server's name: `10.0.0.1:80`, `10.0.0.1:80/udp`,
    /// `fwmark-7`, `fwmark-7-ipv6`.
    fn name(&self, protocol: Protocol) -> String {
        match (self.service, protocol) {
            (Service::Addr(addr), Protocol::Tcp) => addr.to_string(),
            (Service::Addr(addr), Protocol::Udp) => format!("{addr}/udp"),
            (Service::Fwmark(Fwmark { mark, ipv6: false }), _) => format!("fwmark-{mark}"),
            (Service::Fwmark(Fwmark { mark, ipv6: true }), _) => format!("fwmark-{mark}-ipv6"),
        }
    }

    /// The port IPVS gets for a real (or sorry) server written with
    /// `port` (keepalived's `validate_check_config` and `ipvs_group_cmd`):
    /// NAT keeps it; otherwise a fwmark service has none and a group's
    /// address its own.
    fn server_port(&self, port: u16, forward: Forward) -> u16 {
        match (self.service, forward) {
            (_, Forward::Nat) => port,
            (Service::Fwmark(_), _) => 0,
            (Service::Addr(addr), _) if self.grouped => addr.port(),
            (Service::Addr(_), _) => port,
        }
    }
}

/// keepalived's name of a virtual server in its messages.
fn display(key: &VsKey) -> String {
    match key {
        VsKey::Addr(addr) => addr.to_string(),
        VsKey::Fwmark(mark) => format!("FWM {mark}"),
        VsKey::Group(group) => format!("[{group}]"),
    }
}

/// The IPVS services of a block; None when keepalived drops it
/// (`link_vsg_to_vs`).
fn endpoints(vs: &Vs, groups: &[Group], ctx: &mut Ctx<'_>) -> Option<Vec<Endpoint>> {
    let name = match &vs.key {
        VsKey::Addr(addr) => {
            return Some(vec![Endpoint {
                service: Service::Addr(*addr),
                grouped: false,
                loc: vs.loc.clone(),
            }]);
        }
        VsKey::Fwmark(mark) => {
            return Some(vec![Endpoint {
                service: Service::Fwmark(Fwmark {
                    mark: *mark,
                    ipv6: vs.family.unwrap_or(false),
                }),
                grouped: false,
                loc: vs.loc.clone(),
            }]);
        }
        VsKey::Group(name) => name,
    };
    let Some(group) = groups.iter().find(|g| g.name == *name) else {
        ctx.ignores(
            vs.loc.clone(),
            format!(
                "keepalived logs \"Virtual server group {name} specified but not configured - ignoring virtual server\" when it starts"
            ),
        );
        return None;
    };
    let mismatch = match vs.family {
        Some(_) if group.have_ipv4 && group.have_ipv6 => true,
        Some(v6) => (group.have_ipv4 && v6) || (group.have_ipv6 && !v6),
        None => false,
    };
    if mismatch {
        ctx.ignores(
            vs.loc.clone(),
            format!(
                "the address family of group {name} does not match this virtual server's (its real or sorry servers, ip_family): keepalived logs so when it starts and ignores the virtual server"
            ),
        );
        return None;
    }
    let family = vs.family.or(match (group.have_ipv4, group.have_ipv6) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    });
    let mut out = Vec::new();
    for entry in &group.entries {
        match entry {
            vs_group::Entry::Addresses {
                loc,
                addresses,
                port,
            } => out.extend(addresses.iter().map(|ip| Endpoint {
                service: Service::Addr(SocketAddr::new(*ip, *port)),
                grouped: true,
                loc: loc.clone(),
            })),
            vs_group::Entry::Fwmark { loc, mark, ipv6 } => out.push(Endpoint {
                service: Service::Fwmark(Fwmark {
                    mark: *mark,
                    ipv6: ipv6.or(family).unwrap_or(false),
                }),
                grouped: true,
                loc: loc.clone(),
            }),
        }
    }
    Some(out)
}

/// keepalived's warnings about real and sorry server ports that a fwmark
/// service or a group's address does not use (its `validate_check_config`),
/// and about checkers left with port 0.
fn port_warnings(vs: &Vs, endpoints: &[Endpoint], forward: Forward, ctx: &mut Ctx<'_>) {
    if matches!(vs.key, VsKey::Addr(_)) {
        return;
    }
    let what = display(&vs.key);
    let fwmark = endpoints
        .iter()
        .any(|e| matches!(e.service, Service::Fwmark(_)));
    if let Some(sorry) = vs.sorry
        && forward != Forward::Nat
        && sorry.port() != 0
        && fwmark
    {
        ctx.logs(
            vs.loc.clone(),
            format!(
                "WARNING - fwmark virtual server {what}, sorry server has port specified - {}",
                if matches!(vs.key, VsKey::Group(_)) {
                    "port will be ignored"
                } else {
                    "clearing"
                }
            ),
        );
    }
    for rs in &vs.real_servers {
        let port = rs.addr.port();
        if rs.forward.unwrap_or(forward) != Forward::Nat && port != 0 {
            let other = endpoints
                .iter()
                .find(|e| matches!(e.service, Service::Addr(a) if a.port() != port));
            if fwmark {
                ctx.logs(
                    rs.loc.clone(),
                    format!(
                        "WARNING - fwmark virtual server {what}, real server {} has port specified - {}",
                        rs.addr,
                        if matches!(vs.key, VsKey::Group(_)) {
                            "port will be ignored"
                        } else {
                            "clearing"
                        }
                    ),
                );
            }
            if let Some(other) = other {
                ctx.logs(
                    rs.loc.clone(),
                    format!(
                        "virtual server {what}:[{}] and real server {} ports don't match (IPVS gets the group's port)",
                        other.service, rs.addr
                    ),
                );
            }
        }
        if port == 0 {
            for checker in &rs.checkers {
                let needs_port = matches!(
                    checker.kind.as_str(),
                    "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK"
                );
                if needs_port && checker.connect_port.is_none() {
                    ctx.ignores(
                        checker.loc.clone(),
                        format!(
                            "real server {} has no port and this checker no connect_port: keepalived's checker connects to port 0 (and fails)",
                            rs.addr.ip()
                        ),
                    );
                }
            }
        }
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

/// The BFD session a real server follows (keepalived's BFD_CHECK), beside
/// its other checkers; keepmon follows one session per real server.
fn bfd_of(rs: &Rs, ctx: &mut Ctx<'_>) -> Option<String> {
    let (name, _) = rs.bfd.first()?;
    if let Some((_, at)) = rs.bfd.get(1) {
        ctx.unsupported(
            at.clone(),
            "two BFD_CHECKs on one real server (keepmon follows one BFD session per real server)",
        );
        return None;
    }
    Some(name.clone())
}

/// What one checker runs and how often: checkers with equal plans are one
/// health service over their hosts.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    kind: String,
    monitor: Monitor,
    run_as: Option<RunAs>,
    delay_loop: Duration,
    /// MISC_CHECK's run time limit.
    timeout: Option<Duration>,
    /// MISC_CHECK's `misc_dynamic`.
    exit_weight: bool,
    fall: u32,
    failure_interval: Duration,
}

/// The health services of a virtual server's real servers.
struct Health {
    /// One service checking every real server alike (the usual file).
    shared: Option<ServiceRef>,
    /// Otherwise each real server's own services, in `vs.real_servers` order.
    own: Vec<Vec<RealCheck>>,
}

/// keepalived runs each checker of each real server on its own, and a real
/// server is up while all its checkers are. When every real server has one
/// checker and they differ only in the address they check, that is one
/// health service over a hostgroup of the real servers (bound as the
/// virtual server's `health`); otherwise each distinct checker is a
/// service of its own, bound to the real servers it checks.
fn health_service(
    vs: &Vs,
    name: &str,
    globals: &Globals,
    config: &mut Config,
    ctx: &mut Ctx<'_>,
) -> Option<Health> {
    let mut plans: Vec<(Plan, Location)> = Vec::new();
    // Per real server: (plan index, host) for each checker.
    let mut uses: Vec<Vec<(usize, String)>> = Vec::new();
    for rs in &vs.real_servers {
        let mut mine = Vec::new();
        // A FILE_CHECK is no polled check: the real server tracks its file.
        for checker in rs.checkers.iter().filter(|c| c.file.is_none()) {
            let plan = plan(checker, rs, vs, globals, ctx)?;
            let index = match plans.iter().position(|(p, _)| *p == plan) {
                Some(i) => i,
                None => {
                    plans.push((plan, checker.loc.clone()));
                    plans.len() - 1
                }
            };
            let host = checker.connect_ip.unwrap_or(rs.addr.ip()).to_string();
            mine.push((index, host));
        }
        uses.push(mine);
    }
    if plans.is_empty() {
        return Some(Health {
            shared: None,
            own: vec![Vec::new(); vs.real_servers.len()],
        });
    }
    let shared = plans.len() == 1 && uses.iter().all(|u| u.len() == 1);
    let mut refs = Vec::new();
    for (index, (plan, at)) in plans.iter().enumerate() {
        let group = if shared {
            name.to_string()
        } else {
            format!("{name}-{}", index + 1)
        };
        let mut hosts: Vec<String> = Vec::new();
        for (_, host) in uses.iter().flatten().filter(|(i, _)| *i == index) {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        }
        let service_name = plan.kind.to_ascii_lowercase();
        let mut svc = service(
            &group,
            &service_name,
            plan.monitor.clone(),
            plan.delay_loop,
            at,
        );
        svc.run_as = plan.run_as.clone();
        svc.timeout = plan.timeout;
        svc.exit_weight = plan.exit_weight;
        svc.fall = plan.fall;
        svc.rise = 1;
        svc.failure_interval = Some(plan.failure_interval);
        let origin = Origin(vs.loc.clone());
        config.hostgroups.insert(
            group.clone(),
            HostGroup {
                name: group.clone(),
                hosts,
                implicit: true,
                origin: origin.clone(),
            },
        );
        let mut services = BTreeMap::new();
        services.insert(service_name.clone(), svc);
        config.watches.insert(
            group.clone(),
            Watch {
                group: group.clone(),
                services,
                origin,
            },
        );
        refs.push(ServiceRef {
            group,
            service: service_name,
        });
    }
    if shared {
        return Some(Health {
            shared: refs.pop(),
            own: vec![Vec::new(); vs.real_servers.len()],
        });
    }
    let own = uses
        .into_iter()
        .map(|mine| {
            mine.into_iter()
                .map(|(index, host)| RealCheck {
                    health: refs[index].clone(),
                    host,
                })
                .collect()
        })
        .collect();
    Some(Health { shared: None, own })
}

/// The plan of one checker with keepalived's timing: `retry` failures
/// retried `delay_before_retry` apart before the server goes down, up
/// after one success.
fn plan(checker: &Checker, rs: &Rs, vs: &Vs, globals: &Globals, ctx: &mut Ctx<'_>) -> Option<Plan> {
    let timers = checker.timers.or(rs.timers).or(vs.timers);
    let (monitor, run_as) = monitor(checker, rs, timers, globals, ctx)?;
    let kind = checker.kind.as_str();
    let delay_loop = timers.delay_loop.unwrap_or(DELAY_LOOP);
    // keepalived: misc_timeout, or else the virtual server's delay_loop.
    let timeout = (kind == "MISC_CHECK").then(|| {
        checker
            .misc_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(vs.timers.delay_loop.unwrap_or(DELAY_LOOP))
    });
    let retry = timers.retry.unwrap_or(default_retry(kind));
    // keepalived retries at once after `delay_before_retry 0`; keepmon keeps
    // polling at this interval while the server fails, so zero would spin
    // on a refused connection: a 100 ms floor keeps the retries prompt.
    let failure_interval = timers
        .delay_before_retry
        .unwrap_or_else(|| default_delay_before_retry(kind).unwrap_or(delay_loop))
        .max(Duration::from_millis(100));
    Some(Plan {
        kind: kind.to_string(),
        monitor,
        run_as,
        delay_loop,
        timeout,
        exit_weight: kind == "MISC_CHECK" && checker.misc_dynamic,
        fall: retry.saturating_add(1),
        failure_interval,
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
