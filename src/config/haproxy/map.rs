//! haproxy.cfg proxies onto the model: each `listen`, and each `frontend` with its `default_backend`, becomes a virtual server of the built-in proxy; a backend's `check` servers become one hostgroup and one health service; reads no text.
//!
//! Where HAProxy's meaning and keepmon's differ a little (`retries` without
//! `option redispatch`, `url_param` in a POST body), the mapping warns at
//! the line; where keepmon cannot do it at all, it is an error. The hashing
//! `balance` algorithms run HAProxy's own map-based hashing, so both pick
//! the same server for the same key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::depend::ServiceRef;
use crate::config::haproxy::proxy::{Balance, HttpExpect, Kind, Proxy, Server, TcpRule};
use crate::config::haproxy::{Ctx, Section};
use crate::config::keepalived::service;
use crate::config::model::{
    AccessLog, AccessLogTarget, AclFetch, AdminState, Condition, Config, DataPlane, ErrorFile,
    Forward, HashOn, HostGroup, HttpCheck, HttpOptions, LbScheduler, Monitor, Origin, Protocol,
    ProxyMode, ProxyOptions, RealServer, Route, ServerTls, StatsListen, StatsPage, StatsUser,
    TcpCheck, Thresholds, TlsCert, VirtualServer, Watch,
};

/// HAProxy's check defaults: `inter 2s`, `rise 2`, `fall 3`.
const INTER: Duration = Duration::from_secs(2);
const RISE: u32 = 2;
const FALL: u32 = 3;
/// HAProxy's `retries` default.
const RETRIES: u32 = 3;
/// keepmon's connect timeout when the file sets none (HAProxy waits forever
/// and warns).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Map every proxy that accepts connections onto virtual servers; a backend
/// some `use_backend` names becomes a pool (a virtual server without a
/// listener) that the frontends' routes reach.
pub fn apply(sections: &[Section], config: &mut Config, ctx: &mut Ctx<'_>) {
    let mut used_backends: Vec<&str> = Vec::new();
    let mut health_of: BTreeMap<String, Option<ServiceRef>> = BTreeMap::new();
    let routes_of = switching_rules(sections, ctx);
    // The backends of frontends that route (their targets and their
    // default backends) are pools, so each appears once whatever uses it.
    let pooled: Vec<&Section> = sections
        .iter()
        .filter(|s| {
            s.kind == Kind::Backend
                && (routes_of.values().flatten().any(|r| r.to == s.name)
                    || sections.iter().any(|fe| {
                        fe.kind == Kind::Frontend
                            && routes_of.contains_key(&fe.name)
                            && fe
                                .proxy
                                .default_backend
                                .as_ref()
                                .is_some_and(|d| d.value == s.name)
                    }))
        })
        .collect();
    for be in &pooled {
        used_backends.push(&be.name);
        let health = health_of
            .entry(be.name.clone())
            .or_insert_with(|| health_service(be, config, ctx))
            .clone();
        pool_server(be, health, config, ctx);
    }
    for fe in sections.iter().filter(|s| s.kind.frontend()) {
        let mut routes = routes_of.get(&fe.name).cloned().unwrap_or_default();
        let backend = match fe.kind {
            Kind::Listen => Some(fe),
            _ => match &fe.proxy.default_backend {
                None if !routes.is_empty() => None,
                None => {
                    ctx.diags.warning(
                        fe.at.clone(),
                        format!(
                            "frontend '{}' has no default_backend: every request gets HAProxy's 503 (keepmon: the connection is closed)",
                            fe.name
                        ),
                    );
                    None
                }
                Some(name) => {
                    let found = sections
                        .iter()
                        .find(|s| s.kind.backend() && s.name == name.value);
                    if found.is_none() {
                        ctx.error(
                            name.at.clone(),
                            format!(
                                "Proxy '{}': unable to find required default_backend: '{}'",
                                fe.name, name.value
                            ),
                        );
                        continue;
                    }
                    found
                }
            },
        };
        // A default backend that is a pool is reached through it (one of
        // another mode is refused below, as without routes).
        let backend = match backend {
            Some(be)
                if be.kind == Kind::Backend
                    && mode_of(fe) == mode_of(be)
                    && pooled.iter().any(|p| p.name == be.name) =>
            {
                routes.push(Route {
                    to: be.name.clone(),
                    when: Condition::default(),
                });
                None
            }
            other => other,
        };
        if let Some(be) = backend {
            used_backends.push(&be.name);
        }
        // HAProxy's `listen stats` idiom: a page on its own port, no servers.
        let stats_only = fe.proxy.stats.at.is_some()
            && routes.is_empty()
            && backend.is_none_or(|b| b.proxy.servers.is_empty());
        if stats_only {
            for bind in &fe.proxy.binds {
                for addr in &bind.addrs {
                    stats_page(fe, StatsListen::Address(*addr), config);
                }
            }
            continue;
        }
        if fe.proxy.stats.at.is_some() {
            let mode = mode_of(fe);
            if mode == ProxyMode::Tcp {
                if let Some(at) = &fe.proxy.stats.at {
                    ctx.haproxy_ignores(at.clone(), "'stats' ignored in mode tcp");
                }
            } else {
                stats_page(fe, StatsListen::VirtualServer(fe.name.clone()), config);
            }
        }
        let health = match backend {
            Some(be) => health_of
                .entry(be.name.clone())
                .or_insert_with(|| health_service(be, config, ctx))
                .clone(),
            None => None,
        };
        virtual_servers(fe, backend, health, routes, config, ctx);
    }
    for be in sections.iter().filter(|s| s.kind == Kind::Backend) {
        if !used_backends.contains(&be.name.as_str()) {
            ctx.diags.warning(
                be.at.clone(),
                format!(
                    "backend '{}' is used by no frontend; keepmon neither serves nor checks it",
                    be.name
                ),
            );
        }
    }
}

fn mode_of(section: &Section) -> ProxyMode {
    section
        .proxy
        .mode
        .as_ref()
        .map_or(ProxyMode::Tcp, |m| m.value)
}

/// Each frontend's `use_backend` rules as routes (by frontend name), with
/// HAProxy's checks of the target; rules keepmon cannot run are errors.
fn switching_rules(sections: &[Section], ctx: &mut Ctx<'_>) -> BTreeMap<String, Vec<Route>> {
    let mut out: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for fe in sections.iter().filter(|s| s.kind.frontend()) {
        for rule in &fe.proxy.use_backends {
            let Some(be) = sections
                .iter()
                .find(|s| s.kind.backend() && s.name == rule.backend)
            else {
                ctx.error(
                    rule.at.clone(),
                    format!(
                        "Proxy '{}': unable to find required use_backend: '{}'",
                        fe.name, rule.backend
                    ),
                );
                continue;
            };
            let (fe_mode, be_mode) = (mode_of(fe), mode_of(be));
            if fe_mode == ProxyMode::Http && be_mode == ProxyMode::Tcp {
                ctx.error(
                    rule.at.clone(),
                    format!(
                        "http frontend '{}' ({}) tries to use incompatible tcp backend '{}' ({}) in a 'use_backend' rule (see 'mode')",
                        fe.name,
                        short_loc(&fe.at),
                        be.name,
                        short_loc(&be.at)
                    ),
                );
                continue;
            }
            if fe_mode == ProxyMode::Tcp && be_mode == ProxyMode::Http {
                ctx.unsupported(
                    rule.at.clone(),
                    "a tcp frontend switching to an http backend",
                );
                continue;
            }
            if be.kind == Kind::Listen {
                ctx.unsupported(rule.at.clone(), "'use_backend' to a 'listen' section");
                continue;
            }
            if sections
                .iter()
                .any(|s| s.kind.frontend() && s.kind != Kind::Defaults && s.name == be.name)
            {
                ctx.unsupported(
                    rule.at.clone(),
                    format!(
                        "'use_backend' to backend '{}', which has the name of a frontend (keepmon names the pool after the backend)",
                        be.name
                    ),
                );
                continue;
            }
            let Some(when) = fe.proxy.condition(rule) else {
                continue;
            };
            let source_only = when
                .any
                .iter()
                .flatten()
                .flat_map(|u| &u.acl.tests)
                .all(|t| t.fetch == AclFetch::Source);
            if fe_mode == ProxyMode::Tcp && !source_only {
                ctx.unsupported(
                    rule.at.clone(),
                    "a 'use_backend' condition on more than 'src' in mode tcp (there is no request to look at; HAProxy evaluates it on what it has, keepmon routes tcp connections by 'src' only)",
                );
                continue;
            }
            out.entry(fe.name.clone()).or_default().push(Route {
                to: be.name.clone(),
                when,
            });
        }
    }
    out
}

/// `file:line` as HAProxy writes a section's place.
fn short_loc(at: &crate::config::diag::Location) -> String {
    let file = at.file.file_name().map_or_else(
        || at.file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    format!("{file}:{}", at.line)
}

/// A backend reached by `use_backend`: a virtual server without a listener,
/// named after the backend, with the backend's own settings.
fn pool_server(be: &Section, health: Option<ServiceRef>, config: &mut Config, ctx: &mut Ctx<'_>) {
    refuse_unsupported(&be.proxy, ctx);
    let bp = &be.proxy;
    let mode = mode_of(be);
    let Some(part) = backend_part(&be.name, bp, mode, None, ctx) else {
        return;
    };
    let error_files = error_files(&Proxy::default(), bp, mode, ctx);
    let defaults = HttpOptions::default();
    let vs = VirtualServer {
        name: be.name.clone(),
        listen: None,
        fwmark: None,
        protocol: Protocol::Tcp,
        scheduler: part.scheduler,
        dataplane: DataPlane::Proxy,
        persistence: None,
        persistence_netmask: None,
        sorry_server: None,
        quorum: None,
        hysteresis: 0,
        health,
        retries: bp.retries.unwrap_or(RETRIES),
        connect_timeout: bp.timeouts.connect.unwrap_or(CONNECT_TIMEOUT),
        real_servers: part.real_servers,
        proxy: ProxyOptions {
            mode,
            timeout_queue: bp.timeouts.queue.as_ref().map(|q| q.value),
            allbackups: bp.allbackups,
            error_files,
            timeout_server: bp.timeouts.server,
            send_proxy: part.send_proxy,
            http: HttpOptions {
                timeout_http_keep_alive: bp
                    .timeouts
                    .http_keep_alive
                    .unwrap_or(defaults.timeout_http_keep_alive),
                forwardfor: bp.forwardfor.clone(),
                cookie: part.cookie,
                server_cookies: part.server_cookies,
                hash: part.hash,
                server_tls: part.server_tls,
                ..defaults
            },
            ..ProxyOptions::default()
        },
        origin: Origin(be.at.clone()),
    };
    config.virtual_servers.insert(be.name.clone(), vs);
}

/// A section's lines keepmon cannot run, reported once the section is used.
fn refuse_unsupported(proxy: &Proxy, ctx: &mut Ctx<'_>) {
    for u in &proxy.unsupported {
        ctx.unsupported(u.at.clone(), &u.what);
    }
}

fn virtual_servers(
    fe: &Section,
    be: Option<&Section>,
    health: Option<ServiceRef>,
    routes: Vec<Route>,
    config: &mut Config,
    ctx: &mut Ctx<'_>,
) {
    refuse_unsupported(&fe.proxy, ctx);
    let empty = Proxy::default();
    let bp = be.map_or(&empty, |b| &b.proxy);
    if let Some(be) = be.filter(|b| b.kind == Kind::Backend) {
        refuse_unsupported(&be.proxy, ctx);
    }
    let mode = fe.proxy.mode.as_ref().map_or(ProxyMode::Tcp, |m| m.value);
    if let Some(be) = be {
        let be_mode = be.proxy.mode.as_ref().map_or(ProxyMode::Tcp, |m| m.value);
        if be_mode != mode {
            let at = fe
                .proxy
                .default_backend
                .as_ref()
                .map_or(fe.at.clone(), |d| d.at.clone());
            ctx.error(
                at,
                format!(
                    "frontend '{}' (mode {mode}) cannot use backend '{}' (mode {be_mode}); HAProxy refuses this too",
                    fe.name, be.name
                ),
            );
            return;
        }
    }
    if fe.proxy.binds.is_empty() {
        ctx.diags.warning(
            fe.at.clone(),
            format!(
                "{} '{}' has no 'bind' line: it accepts no connections",
                fe.kind.name(),
                fe.name
            ),
        );
        return;
    }
    let addrs: Vec<(SocketAddr, &crate::config::haproxy::proxy::Bind)> = fe
        .proxy
        .binds
        .iter()
        .flat_map(|b| b.addrs.iter().map(move |a| (*a, b)))
        .collect();
    let single_port = match addrs.as_slice() {
        [(a, _)] => Some(a.port()),
        _ => None,
    };
    let Some(part) = backend_part(
        be.map_or(fe.name.as_str(), |b| b.name.as_str()),
        bp,
        mode,
        single_port,
        ctx,
    ) else {
        return;
    };
    let BackendPart {
        scheduler,
        real_servers,
        server_cookies,
        send_proxy,
        hash,
        cookie,
        server_tls,
    } = part;
    let mut forwardfor = fe
        .proxy
        .forwardfor
        .clone()
        .or_else(|| bp.forwardfor.clone());
    if mode == ProxyMode::Tcp && forwardfor.take().is_some() {
        ctx.haproxy_ignores(
            fe.at.clone(),
            format!(
                "'option forwardfor' ignored for {} '{}' as it requires HTTP mode",
                fe.kind.name(),
                fe.name
            ),
        );
    }
    let fe_t = &fe.proxy.timeouts;
    let error_files = error_files(&fe.proxy, bp, mode, ctx);
    let logged = if mode == ProxyMode::Http {
        fe.proxy.httplog
    } else {
        fe.proxy.tcplog || fe.proxy.httplog
    };
    let access_log = (fe.proxy.log && logged).then_some(AccessLog {
        to: AccessLogTarget::Tracing,
        dontlognull: fe.proxy.dontlognull,
    });
    let defaults = HttpOptions::default();
    let retries = bp.retries.unwrap_or(RETRIES);
    for (index, (listen, bind)) in addrs.iter().enumerate() {
        let tls: Vec<TlsCert> = bind
            .crt
            .iter()
            .map(|path| TlsCert {
                cert: path.clone(),
                key: path.clone(),
            })
            .collect();
        if bind.ssl && mode == ProxyMode::Tcp {
            ctx.unsupported(bind.at.clone(), "TLS termination ('ssl') in mode tcp");
            continue;
        }
        let name = if index == 0 {
            fe.name.clone()
        } else {
            format!("{}#{}", fe.name, index + 1)
        };
        let vs = VirtualServer {
            name: name.clone(),
            listen: Some(*listen),
            fwmark: None,
            protocol: Protocol::Tcp,
            scheduler,
            dataplane: DataPlane::Proxy,
            persistence: None,
            persistence_netmask: None,
            sorry_server: None,
            quorum: None,
            hysteresis: 0,
            health: health.clone(),
            retries,
            connect_timeout: bp.timeouts.connect.unwrap_or(CONNECT_TIMEOUT),
            real_servers: real_servers.clone(),
            proxy: ProxyOptions {
                mode,
                maxconn: fe.proxy.maxconn,
                timeout_client: fe_t.client,
                timeout_queue: bp.timeouts.queue.as_ref().map(|q| q.value),
                allbackups: bp.allbackups,
                error_files: error_files.clone(),
                access_log: access_log.clone(),
                timeout_server: bp.timeouts.server,
                send_proxy,
                accept_proxy: bind.accept_proxy,
                http: if mode == ProxyMode::Tcp {
                    HttpOptions::default()
                } else {
                    HttpOptions {
                        timeout_http_request: fe_t
                            .http_request
                            .unwrap_or(defaults.timeout_http_request),
                        timeout_http_keep_alive: fe_t
                            .http_keep_alive
                            .or(bp.timeouts.http_keep_alive)
                            .unwrap_or(defaults.timeout_http_keep_alive),
                        forwardfor: forwardfor.clone(),
                        forwarded_proto: false,
                        cookie: cookie.clone(),
                        server_cookies: server_cookies.clone(),
                        hash: hash.clone(),
                        tls,
                        server_tls: server_tls.clone(),
                    }
                },
                routes: routes.clone(),
                backend: be
                    .filter(|b| b.kind == Kind::Backend && b.name != fe.name)
                    .map(|b| b.name.clone()),
            },
            origin: Origin(fe.at.clone()),
        };
        config.virtual_servers.insert(name, vs);
    }
}

/// What a backend gives the virtual server that serves it.
struct BackendPart {
    scheduler: LbScheduler,
    real_servers: Vec<RealServer>,
    server_cookies: BTreeMap<SocketAddr, String>,
    send_proxy: Option<crate::config::model::ProxyProtocol>,
    hash: Option<HashOn>,
    cookie: Option<crate::config::model::CookiePersistence>,
    server_tls: Option<ServerTls>,
}

/// A backend's servers and balancing; `name` is the section that holds
/// them, `single_port` the port of the one bind address a server without a
/// port takes.
fn backend_part(
    name: &str,
    bp: &Proxy,
    mode: ProxyMode,
    single_port: Option<u16>,
    ctx: &mut Ctx<'_>,
) -> Option<BackendPart> {
    let scheduler = scheduler(bp, mode, ctx)?;
    let mut real_servers = Vec::new();
    let mut server_cookies = BTreeMap::new();
    let mut send_proxy = None;
    let mut server_tls_of_all = None;
    for (i, server) in bp.servers.iter().enumerate() {
        let Some(addr) = server_addr(server, single_port, ctx) else {
            continue;
        };
        for (what, at) in &server.opts.unsupported {
            ctx.unsupported(at.clone(), what);
        }
        let tls = server_tls(server, name, mode, ctx);
        if i == 0 {
            send_proxy = server.opts.send_proxy;
            server_tls_of_all = tls;
        } else if tls != server_tls_of_all {
            ctx.unsupported(
                server.at.clone(),
                format!(
                    "TLS settings ('ssl', 'verify', 'ca-file', 'sni', 'verifyhost') that differ from server '{}' (keepmon sets them per backend)",
                    bp.servers[0].name
                ),
            );
        }
        if i > 0 && server.opts.send_proxy != send_proxy {
            ctx.unsupported(
                server.at.clone(),
                "'send-proxy' on some servers of a backend and not on others (keepmon sets it per virtual server)",
            );
        }
        if let Some(cookie) = &server.opts.cookie {
            server_cookies.insert(addr, cookie.clone());
        }
        real_servers.push(RealServer {
            addr,
            name: Some(server.name.clone()),
            host: health_host(server, addr),
            weight: server.opts.weight.unwrap_or(1),
            forward: Forward::Nat,
            admin: if server.opts.disabled {
                AdminState::Maint
            } else {
                AdminState::Ready
            },
            inhibit_on_failure: false,
            thresholds: Thresholds::default(),
            backup: server.opts.backup.is_some(),
            maxconn: server.opts.maxconn,
            maxqueue: server.opts.maxqueue,
            slowstart: server.opts.slowstart,
            bfd: None,
            checks: Vec::new(),
            track_files: Vec::new(),
        });
    }
    let hash = match bp.balance.as_ref().map(|b| &b.value) {
        Some(Balance::Uri) => Some(HashOn::Uri),
        Some(Balance::UrlParam(p)) => Some(HashOn::UrlParam(p.clone())),
        Some(Balance::Header(h)) => Some(HashOn::Header(h.clone())),
        _ => None,
    };
    if hash.is_some() && mode == ProxyMode::Tcp {
        if let Some(b) = &bp.balance {
            ctx.unsupported(
                b.at.clone(),
                "balance uri, url_param or hdr() in mode tcp (HAProxy falls back to roundrobin)",
            );
        }
        return None;
    }
    let cookie = bp.cookie.as_ref().map(|c| c.value.clone());
    if let (Some(c), ProxyMode::Tcp) = (&bp.cookie, mode) {
        ctx.unsupported(c.at.clone(), "cookie persistence in mode tcp");
        return None;
    }
    Some(BackendPart {
        scheduler,
        real_servers,
        server_cookies,
        send_proxy,
        hash,
        cookie,
        server_tls: server_tls_of_all,
    })
}

/// A server line's `ssl` and its verification words as the model's
/// [`ServerTls`], with HAProxy's errors (verification without a CA file, a
/// CA file that cannot be read). TLS to servers is http mode's.
fn server_tls(
    server: &Server,
    proxy_name: &str,
    mode: ProxyMode,
    ctx: &mut Ctx<'_>,
) -> Option<ServerTls> {
    let opts = &server.opts;
    if !opts.ssl {
        return None;
    }
    if mode == ProxyMode::Tcp {
        ctx.unsupported(
            server.at.clone(),
            "TLS to a server ('ssl' on a server line) in mode tcp",
        );
        return None;
    }
    let verify = opts.verify.unwrap_or(ctx.server_verify);
    let ca_file = match (&opts.ca_file, verify) {
        (_, false) => None,
        (None, true) => {
            ctx.error(
                server.at.clone(),
                format!(
                    "'server {}/{}' : verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default.",
                    proxy_name, server.name
                ),
            );
            return None;
        }
        (Some((path, at)), true) => {
            if !ctx.fs.is_file(path) {
                ctx.error(
                    at.clone(),
                    format!(
                        "'server {}/{}' : Couldn't open the ca-file '{}' (No such file or directory).",
                        proxy_name,
                        server.name,
                        path.display()
                    ),
                );
                return None;
            }
            Some(path.clone())
        }
    };
    Some(ServerTls {
        ca_file,
        sni: opts.sni.clone(),
        verify_host: opts.verifyhost.clone().filter(|_| verify),
    })
}

fn scheduler(bp: &Proxy, mode: ProxyMode, ctx: &mut Ctx<'_>) -> Option<LbScheduler> {
    let Some(balance) = &bp.balance else {
        return Some(LbScheduler::WeightedRoundRobin);
    };
    Some(match &balance.value {
        Balance::RoundRobin | Balance::StaticRr => LbScheduler::WeightedRoundRobin,
        Balance::LeastConn => LbScheduler::WeightedLeastConnection,
        Balance::Random => LbScheduler::TwoChoices,
        Balance::Source | Balance::Uri | Balance::UrlParam(_) | Balance::Header(_) => {
            if matches!(balance.value, Balance::UrlParam(_)) && mode == ProxyMode::Http {
                ctx.diags.warning(
                    balance.at.clone(),
                    "a POST whose query lacks the parameter: HAProxy looks for it in the body, keepmon goes round robin",
                );
            }
            LbScheduler::Haproxy(
                bp.hash_type
                    .as_ref()
                    .map_or_else(Default::default, |h| h.value),
            )
        }
        Balance::First => {
            ctx.unsupported(balance.at.clone(), "balance first");
            return None;
        }
    })
}

fn server_addr(server: &Server, single_port: Option<u16>, ctx: &mut Ctx<'_>) -> Option<SocketAddr> {
    let (ip, port) = server.addr;
    match port.or(single_port) {
        Some(port) => Some(SocketAddr::new(ip, port)),
        None => {
            ctx.unsupported(
                server.at.clone(),
                "a server without a port where clients may arrive on several ports (several bind addresses, or a backend that use_backend rules reach): HAProxy uses the port each client connected to",
            );
            None
        }
    }
}

/// The host a server's health checks name: its address and port, or its
/// check `addr`/`port`.
fn health_host(server: &Server, addr: SocketAddr) -> String {
    let ip = server.opts.check_addr.unwrap_or(addr.ip());
    let port = server.opts.check_port.unwrap_or(addr.port());
    SocketAddr::new(ip, port).to_string()
}

/// A backend's `check` servers as one hostgroup and one service, named
/// after the backend.
fn health_service(be: &Section, config: &mut Config, ctx: &mut Ctx<'_>) -> Option<ServiceRef> {
    let p = &be.proxy;
    let checked: Vec<&Server> = p.servers.iter().filter(|s| s.opts.check).collect();
    if checked.is_empty() {
        return None;
    }
    if let Some(unchecked) = p.servers.iter().find(|s| !s.opts.check) {
        ctx.unsupported(
            unchecked.at.clone(),
            "a server without 'check' beside servers with it (keepmon checks all servers of a backend with one health service)",
        );
        return None;
    }
    let first = &checked[0].opts;
    let timing = |o: &crate::config::haproxy::proxy::ServerOpts| {
        (o.inter, o.fastinter, o.downinter, o.rise, o.fall)
    };
    for s in &checked[1..] {
        if timing(&s.opts) != timing(first) {
            ctx.unsupported(
                s.at.clone(),
                format!(
                    "check timing (inter, fastinter, downinter, rise, fall) that differs from server '{}' (keepmon checks a backend's servers at one pace)",
                    checked[0].name
                ),
            );
            return None;
        }
    }
    let inter = first.inter.unwrap_or(INTER);
    let timeout = p.timeouts.check.unwrap_or(inter);
    let port = checked[0].addr.1.unwrap_or(80);
    let mut monitor = monitor(p, port, timeout, ctx)?;
    // HAProxy sends the checks of an `ssl` server over TLS too (unless a
    // check `port` points elsewhere).
    if first.ssl && first.check_port.is_none() {
        match &mut monitor {
            Monitor::Http(check) => {
                check.tls = true;
                // The check trusts what the traffic's settings trust:
                // keepmon's https check has no CA file of its own.
                check.insecure = true;
                if first.verify.unwrap_or(ctx.server_verify) {
                    ctx.diags.warning(
                        checked[0].at.clone(),
                        "the https check does not verify the server's certificate (HAProxy's does, with ca-file); requests do",
                    );
                }
            }
            _ => ctx.diags.warning(
                checked[0].at.clone(),
                "the check only opens a TCP connection; HAProxy's also completes a TLS handshake with an 'ssl' server",
            ),
        }
    }
    let mut hosts: Vec<String> = Vec::new();
    for s in &checked {
        let (ip, port) = s.addr;
        let host = health_host(s, SocketAddr::new(ip, port.unwrap_or(0)));
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let group = be.name.clone();
    let at = checked[0].at.clone();
    let mut svc = service(&group, "check", monitor, inter, &at);
    svc.failure_interval = first.downinter.or(first.fastinter);
    svc.rise = first.rise.unwrap_or(RISE);
    svc.fall = first.fall.unwrap_or(FALL);
    svc.description = Some(format!("HAProxy checks of backend {group}"));
    config.hostgroups.insert(
        group.clone(),
        HostGroup {
            name: group.clone(),
            hosts,
            implicit: false,
            origin: Origin(be.at.clone()),
        },
    );
    config.watches.insert(
        group.clone(),
        Watch {
            group: group.clone(),
            services: BTreeMap::from([("check".to_string(), svc)]),
            origin: Origin(be.at.clone()),
        },
    );
    Some(ServiceRef {
        group,
        service: "check".to_string(),
    })
}

fn monitor(p: &Proxy, port: u16, timeout: Duration, ctx: &mut Ctx<'_>) -> Option<Monitor> {
    if let Some(chk) = &p.httpchk {
        let mut chk = chk.clone();
        if let Some(send) = &p.http_send {
            if !send.value.method.is_empty() {
                chk.value.method = send.value.method.clone();
            }
            if !send.value.uri.is_empty() {
                chk.value.uri = send.value.uri.clone();
            }
            if send.value.host.is_some() {
                chk.value.host = send.value.host.clone();
            }
        }
        let chk = &chk;
        let (status, body) = match p.http_expect.as_ref().map(|e| &e.value) {
            None => (vec![(200, 399)], None),
            Some(HttpExpect::Status(ranges)) => (ranges.clone(), None),
            // HAProxy does not look at the status when it matches the body.
            Some(HttpExpect::Body(re)) => (vec![(100, 599)], Some(re.clone())),
        };
        if !chk.value.uri.starts_with('/') || chk.value.uri.contains(char::is_whitespace) {
            ctx.unsupported(
                chk.at.clone(),
                format!(
                    "the check URI '{}' (keepmon's http check sends a path that starts with '/' and has no blanks)",
                    chk.value.uri
                ),
            );
            return None;
        }
        if p.tcp_check.is_some() {
            ctx.diags.warning(
                chk.at.clone(),
                "both 'option httpchk' and 'option tcp-check' are set; the last one wins in HAProxy, keepmon uses httpchk",
            );
        }
        return Some(Monitor::Http(HttpCheck {
            tls: false,
            port,
            method: chk.value.method.clone(),
            path: chk.value.uri.clone(),
            host_header: chk.value.host.clone(),
            status,
            body,
            timeout,
            insecure: false,
            digest: None,
            more_urls: Vec::new(),
        }));
    }
    let mut check = TcpCheck {
        port,
        send: None,
        expect: None,
        timeout,
    };
    if p.tcp_check.is_none() {
        if let Some(rule) = p.tcp_rules.first() {
            ctx.diags.warning(
                rule.at.clone(),
                "'tcp-check' rules without 'option tcp-check': HAProxy ignores them, keepmon too",
            );
        }
        return Some(Monitor::Tcp(check));
    }
    for (i, rule) in p.tcp_rules.iter().enumerate() {
        match &rule.value {
            TcpRule::Connect { port: Some(_) } => {
                ctx.unsupported(
                    rule.at.clone(),
                    "'tcp-check connect port' (the check connects to each server's own check port)",
                );
                return None;
            }
            TcpRule::Connect { port: None } if i == 0 => {}
            TcpRule::Connect { .. } => {
                ctx.unsupported(rule.at.clone(), "a second 'tcp-check connect'");
                return None;
            }
            TcpRule::Send(text) if check.expect.is_none() => {
                check.send.get_or_insert_with(String::new).push_str(text);
            }
            TcpRule::Expect(re) if check.expect.is_none() => check.expect = Some(re.clone()),
            _ => {
                ctx.unsupported(
                    rule.at.clone(),
                    "tcp-check rules after the first 'expect' (keepmon's tcp check sends once and expects once)",
                );
                return None;
            }
        }
    }
    Some(Monitor::Tcp(check))
}

fn stats_page(fe: &Section, listen: StatsListen, config: &mut Config) {
    let st = &fe.proxy.stats;
    config.stats_pages.push(StatsPage {
        listen,
        uri: st
            .uri
            .clone()
            .unwrap_or_else(|| StatsPage::DEFAULT_URI.to_string()),
        realm: st
            .realm
            .clone()
            .unwrap_or_else(|| StatsPage::DEFAULT_REALM.to_string()),
        users: st
            .users
            .iter()
            .map(|(user, password)| StatsUser {
                user: user.clone(),
                password: password.clone(),
            })
            .collect(),
        refresh: st.refresh,
        hide_version: st.hide_version,
        // HAProxy offers the actions only after a login; keepmon too.
        admin: st.admin && !st.users.is_empty(),
        origin: Origin(st.at.clone().unwrap_or_else(|| fe.at.clone())),
    });
}

/// `errorfile` lines of the frontend and the backend (the backend's win),
/// each file read and checked now, as HAProxy does at startup.
fn error_files(
    fe: &Proxy,
    be: &Proxy,
    mode: ProxyMode,
    ctx: &mut Ctx<'_>,
) -> BTreeMap<u16, ErrorFile> {
    let mut files = BTreeMap::new();
    for (status, file, at) in fe.errorfiles.iter().chain(&be.errorfiles) {
        if mode == ProxyMode::Tcp {
            continue;
        }
        if !ErrorFile::STATUSES.contains(status) {
            ctx.error(
                at.clone(),
                format!("status code '{status}' not handled by 'errorfile'"),
            );
            continue;
        }
        let path = ctx
            .file
            .parent()
            .map_or_else(|| std::path::PathBuf::from(file), |dir| dir.join(file));
        let Some(text) = ctx.fs.read_to_string(&path) else {
            ctx.error(
                at.clone(),
                format!("error when trying to open file '{}'", path.display()),
            );
            continue;
        };
        match ErrorFile::parse(path.clone(), &text) {
            Ok(parsed) => {
                files.insert(*status, parsed);
            }
            Err(e) => ctx.error(at.clone(), format!("errorfile '{}': {e}", path.display())),
        }
    }
    files
}
