//! `[virtual_servers.NAME]`: load-balanced virtual services and their real servers (scheduler, data plane, persistence, thresholds).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checks::Scalar;
use super::cursor::{Dur, Int, KeyPath, Reader, Text};
use super::proxy::{
    RawAccessLog, RawCookie, RawForwardFor, RawProxy, RawServerTls, RawTimeouts, RawTlsCert,
};
use super::routes::{RawAcls, RawRoute};
use crate::config::model::{
    AdminState, DataPlane, Forward, Fwmark, HaproxyHash, HashFunction, LbScheduler, MhFlags,
    Origin, Protocol, RealCheck, RealServer, Thresholds, VirtualServer,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVirtualServer {
    listen: Option<Text>,
    /// IPVS's firewall-mark service: `7` (IPv4), `"7 inet6"`.
    fwmark: Option<Spanned<Scalar>>,
    protocol: Option<Text>,
    scheduler: Option<Text>,
    scheduler_flags: Option<Vec<Text>>,
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
    mode: Option<Text>,
    maxconn: Option<Spanned<u32>>,
    timeout: Option<Spanned<RawTimeouts>>,
    forwardfor: Option<Spanned<RawForwardFor>>,
    forwarded_proto: Option<bool>,
    cookie: Option<Spanned<RawCookie>>,
    hash: Option<Text>,
    tls: Option<Vec<Spanned<RawTlsCert>>>,
    server_tls: Option<Spanned<RawServerTls>>,
    send_proxy: Option<Text>,
    accept_proxy: Option<bool>,
    allbackups: Option<bool>,
    error_files: Option<Spanned<BTreeMap<String, Text>>>,
    access_log: Option<Spanned<RawAccessLog>>,
    backend: Option<Text>,
    acls: Option<RawAcls>,
    routes: Option<Vec<Spanned<RawRoute>>>,
}

const DATAPLANES: &[(&str, DataPlane)] = &[
    ("proxy", DataPlane::Proxy),
    ("ipvs", DataPlane::Ipvs),
    ("nftables", DataPlane::Nftables),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealServer {
    addr: Option<Text>,
    name: Option<Text>,
    host: Option<Text>,
    weight: Option<u32>,
    forward: Option<Text>,
    admin: Option<Text>,
    inhibit_on_failure: Option<bool>,
    upper_threshold: Option<Int>,
    lower_threshold: Option<Int>,
    /// The server's persistence cookie value (http mode).
    cookie: Option<Text>,
    backup: Option<bool>,
    maxconn: Option<Int>,
    maxqueue: Option<Int>,
    slowstart: Option<Dur>,
    /// keepalived's BFD_CHECK: down while this `[bfd.NAME]` session is.
    bfd: Option<Text>,
    checks: Option<Vec<Spanned<RawRealCheck>>>,
    track_file: Option<Vec<Spanned<super::vrrp::RawTrackFile>>>,
}

/// One of a real server's own health services.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealCheck {
    health: Option<Text>,
    /// The host in that service's results; the real server's host if unset.
    host: Option<Text>,
}

const ADMIN_STATES: &[(&str, AdminState)] = &[
    ("ready", AdminState::Ready),
    ("drain", AdminState::Drain),
    ("maint", AdminState::Maint),
];

const DEFAULT_SCHEDULER: LbScheduler = LbScheduler::WeightedLeastConnection;

impl Reader<'_> {
    /// `scheduler_flags = ["mh-port", "mh-fallback"]` (IPVS's `-b`), for
    /// `mh`; `["djb2", "avalanche"]` (HAProxy's `hash-type map-based`
    /// words), for `haproxy-map`.
    fn scheduler_flags(
        &mut self,
        scheduler: LbScheduler,
        flags: Option<&[Text]>,
        p: &KeyPath,
    ) -> LbScheduler {
        let Some(flags) = flags else {
            return scheduler;
        };
        let path = p.key("scheduler_flags");
        if let LbScheduler::Haproxy(mut hash) = scheduler {
            // As in `hash-type consistent FUNCTION`: avalanche only when written.
            hash.avalanche = false;
            for flag in flags {
                let word = flag.get_ref().as_str();
                if word == "avalanche" {
                    hash.avalanche = true;
                } else if let Some(function) = HashFunction::from_name(word) {
                    hash.function = function;
                } else {
                    self.unknown_word(flag, &path, "scheduler flag", HaproxyHash::NAMES);
                }
            }
            return LbScheduler::Haproxy(hash);
        }
        let LbScheduler::Maglev(mut mh) = scheduler else {
            if let Some(first) = flags.first() {
                self.error(
                    first.span().start,
                    format!("{path}: scheduler {scheduler} takes no flags (mh-port and mh-fallback are mh's; sdbm, djb2, wt6, crc32 and avalanche are haproxy-map's and haproxy-consistent's)"),
                );
            }
            return scheduler;
        };
        for flag in flags {
            match flag.get_ref().as_str() {
                "mh-port" => mh.port = true,
                "mh-fallback" => mh.fallback = true,
                _ => self.unknown_word(flag, &path, "scheduler flag", MhFlags::NAMES),
            }
        }
        LbScheduler::Maglev(mh)
    }

    pub(super) fn virtual_server(
        &mut self,
        name: &str,
        raw: RawVirtualServer,
        p: &KeyPath,
        at: usize,
    ) -> Option<VirtualServer> {
        // No listen: a pool that routes of other virtual servers reach.
        let listen = self.socket_addr(raw.listen.as_ref(), &p.key("listen"), None);
        let fwmark = raw
            .fwmark
            .as_ref()
            .and_then(|mark| match fwmark(mark.get_ref()) {
                Ok(fwmark) => Some(fwmark),
                Err(why) => {
                    let path = p.key("fwmark");
                    self.error(mark.span().start, format!("{path}: {why}"));
                    None
                }
            });
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
        let scheduler = self.scheduler_flags(scheduler, raw.scheduler_flags.as_deref(), p);
        let dataplane = self
            .choice(
                raw.dataplane.as_ref(),
                &p.key("dataplane"),
                "dataplane",
                DATAPLANES,
            )
            .unwrap_or(DataPlane::Proxy);
        if matches!(scheduler, LbScheduler::Haproxy(_))
            && dataplane != DataPlane::Proxy
            && let Some(s) = &raw.scheduler
        {
            self.error(
                s.span().start,
                format!(
                    "{}: {scheduler} runs in the built-in proxy only (dataplane = \"proxy\")",
                    p.key("scheduler")
                ),
            );
        }
        let persistence = self.positive_duration(raw.persistence.as_ref(), &p.key("persistence"));
        let persistence_netmask = raw.persistence_netmask.as_ref().and_then(|mask| {
            let v4 = listen
                .map(|l| l.is_ipv4())
                .or(fwmark.map(|f: Fwmark| !f.ipv6));
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
        // A firewall-mark service has no port: its real servers default
        // to port 0 (ipvsadm's `-a -f N -r IP`: the packet's own port).
        let listen_port = listen.map(|l| l.port()).or(fwmark.map(|_| 0));
        let sorry_server = self.socket_addr(
            raw.sorry_server.as_ref(),
            &p.key("sorry_server"),
            listen_port,
        );
        let mut real_servers = Vec::new();
        let mut server_cookies = Vec::new();
        for (i, rs) in raw.real_servers.iter().flatten().enumerate() {
            let parsed = self.real_server(rs, &p.index("real_servers", i), listen_port);
            if let Some(cookie) = &rs.get_ref().cookie {
                server_cookies.push((parsed.as_ref().map(|rs| rs.addr), cookie));
            }
            if let Some(rs) = parsed {
                real_servers.push(rs);
            }
        }
        let mut seen_names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, rs) in raw.real_servers.iter().flatten().enumerate() {
            let Some(name) = &rs.get_ref().name else {
                continue;
            };
            if let Some(first) = seen_names.insert(name.get_ref(), i) {
                self.error(
                    name.span().start,
                    format!(
                        "{}: server name {:?} is already the name of real_servers[{first}]",
                        p.index("real_servers", i).key("name"),
                        name.get_ref()
                    ),
                );
            }
        }
        let mut proxy = self.proxy_options(
            RawProxy {
                mode: raw.mode.as_ref(),
                maxconn: raw.maxconn.as_ref(),
                timeout: raw.timeout.as_ref(),
                forwardfor: raw.forwardfor.as_ref(),
                forwarded_proto: raw.forwarded_proto,
                cookie: raw.cookie.as_ref(),
                hash: raw.hash.as_ref(),
                tls: raw.tls.as_deref(),
                server_tls: raw.server_tls.as_ref(),
                send_proxy: raw.send_proxy.as_ref(),
                accept_proxy: raw.accept_proxy,
                allbackups: raw.allbackups,
                error_files: raw.error_files.as_ref(),
                access_log: raw.access_log.as_ref(),
                server_cookies,
                scheduler,
                dataplane,
            },
            p,
        );
        proxy.backend = raw
            .backend
            .as_ref()
            .filter(|b| !self.blank(b, &p.key("backend"), "backend name"))
            .map(|b| b.get_ref().clone());
        proxy.routes = self.routes(raw.acls.as_ref(), raw.routes.as_deref(), p);
        if (raw.listen.is_some() && listen.is_none()) || (raw.fwmark.is_some() && fwmark.is_none())
        {
            return None;
        }
        Some(VirtualServer {
            name: name.to_string(),
            listen,
            fwmark,
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
            proxy,
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
        let max = i64::from(u32::MAX);
        // 0 is HAProxy's "no limit" for both.
        let maxconn = self
            .int_in::<u32>(raw.maxconn.as_ref(), &p.key("maxconn"), 0, max)
            .filter(|&n| n > 0);
        let mut maxqueue = self
            .int_in::<u32>(raw.maxqueue.as_ref(), &p.key("maxqueue"), 0, max)
            .filter(|&n| n > 0);
        if maxconn.is_none()
            && let Some(at) = &raw.maxqueue
        {
            self.error(
                at.span().start,
                format!(
                    "{}: a queue needs a limit; set {} too (a server without maxconn never queues)",
                    p.key("maxqueue"),
                    p.key("maxconn")
                ),
            );
            maxqueue = None;
        }
        let slowstart = self.positive_duration(raw.slowstart.as_ref(), &p.key("slowstart"));
        let name = raw
            .name
            .as_ref()
            .filter(|name| !self.blank(name, &p.key("name"), "server name"))
            .map(|name| name.get_ref().clone());
        let mut checks = Vec::new();
        for (i, check) in raw.checks.iter().flatten().enumerate() {
            let cp = p.index("checks", i);
            let at = check.span().start;
            let check = check.get_ref();
            let Some(text) = self.required(
                check.health.as_ref(),
                at,
                &cp,
                "health",
                "e.g. health = \"web:tcp\"",
            ) else {
                continue;
            };
            let Some(health) = self.service_ref(text, &cp.key("health")) else {
                continue;
            };
            let host = match &check.host {
                Some(name) if !self.blank(name, &cp.key("host"), "host name") => {
                    name.get_ref().clone()
                }
                _ => host.clone(),
            };
            checks.push(RealCheck { health, host });
        }
        let track_files = self.track_files(raw.track_file.as_deref(), p, i64::from(i32::MAX));
        Some(RealServer {
            addr,
            name,
            host,
            weight: raw.weight.unwrap_or(1),
            forward,
            admin,
            inhibit_on_failure: raw.inhibit_on_failure.unwrap_or(false),
            thresholds,
            backup: raw.backup.unwrap_or(false),
            maxconn,
            maxqueue,
            slowstart,
            bfd: raw.bfd.as_ref().map(|b| b.get_ref().clone()),
            checks,
            track_files,
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
}

/// A persistence netmask as a prefix length: `24`, `"/24"` or `"24"`, or
/// for an IPv4 service a dotted mask (`"255.255.255.0"`, contiguous). `v4`
/// is the listen address's family, None when that address is bad.
/// `fwmark = 7`, `"7"`, `"7 inet"` or `"7 inet6"` (keepalived's words).
fn fwmark(value: &Scalar) -> Result<Fwmark, String> {
    let expected = "(expected a mark from 1 to 4294967295, optionally followed by inet or inet6, e.g. 7 or \"7 inet6\")";
    let (number, ipv6) = match value {
        Scalar::Integer(n) => (n.to_string(), false),
        Scalar::Text(text) => {
            let mut words = text.split_whitespace();
            let number = words.next().unwrap_or_default().to_string();
            let ipv6 = match (words.next(), words.next()) {
                (None, _) | (Some("inet"), None) => false,
                (Some("inet6"), None) => true,
                _ => return Err(format!("{text:?} is not a firewall mark {expected}")),
            };
            (number, ipv6)
        }
    };
    let mark = number
        .parse::<u32>()
        .ok()
        .and_then(std::num::NonZeroU32::new)
        .ok_or_else(|| format!("{number:?} is not a firewall mark {expected}"))?;
    Ok(Fwmark { mark, ipv6 })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::native::testing::{FakeFs, check, check_cases, parse_with};

    /// `[virtual_servers.NAME]` diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Virtual servers.
            (
                "[virtual_servers.web]\nlisten = \"127.0.0.1:80\"\nscheduler = \"rrr\"\nhealth = \"web\"\nreal_servers = [{ addr = \"127.0.0.1:81\", weight = -1, forward = \"dr\" }, { host = \"x\" }]\n",
                &[
                    "3:13: error: virtual_servers.web.scheduler: unknown scheduler \"rrr\"; did you mean \"rr\"? (expected one of: rr, wrr, lc, wlc, sh, twos, mh, haproxy-map, haproxy-consistent)",
                    "4:10: error: virtual_servers.web.health: \"web\" is not group:service (e.g. \"web:http\")",
                    "5:51: error: virtual_servers.web.real_servers[0].weight: -1 is out of range (expected an integer from 0 to 4294967295)",
                    "5:73: error: virtual_servers.web.real_servers[1]: missing key \"addr\" (e.g. addr = \"127.0.0.1:8081\")",
                ],
            ),
            (
                "[virtual_servers.web]\nlisten = \"127.0.0.1:80\"\nscheduler = \"mh\"\nscheduler_flags = [\"mh-port\", \"mh-falback\"]\n\n[virtual_servers.db]\nlisten = \"127.0.0.1:81\"\nscheduler_flags = [\"mh-port\"]\n",
                &[
                    "4:31: error: virtual_servers.web.scheduler_flags: unknown scheduler flag \"mh-falback\"; did you mean \"mh-fallback\"? (expected one of: mh-port, mh-fallback)",
                    "8:20: error: virtual_servers.db.scheduler_flags: scheduler wlc takes no flags (mh-port and mh-fallback are mh's; sdbm, djb2, wt6, crc32 and avalanche are haproxy-map's and haproxy-consistent's)",
                ],
            ),
            (
                "[virtual_servers.web]\nlisten = \"127.0.0.1:80\"\nscheduler = \"haproxy-map\"\nscheduler_flags = [\"djb3\"]\ndataplane = \"ipvs\"\n",
                &[
                    "3:13: error: virtual_servers.web.scheduler: haproxy-map runs in the built-in proxy only (dataplane = \"proxy\")",
                    "4:20: error: virtual_servers.web.scheduler_flags: unknown scheduler flag \"djb3\"; did you mean \"djb2\"? (expected one of: sdbm, djb2, wt6, crc32, avalanche)",
                ],
            ),
            (
                "[virtual_servers.web]\nprotocol = \"sctp\"\n",
                // No listen: a pool (the validator warns when no route
                // reaches it).
                &[
                    "2:12: error: virtual_servers.web.protocol: unknown protocol \"sctp\"; did you mean \"tcp\"? (expected one of: tcp, udp)",
                ],
            ),
        ]);
    }

    #[test]
    fn real_servers_and_the_backend_take_names() {
        let text = "[virtual_servers.fe]\nlisten = \"127.0.0.1:80\"\nbackend = \"be\"\nreal_servers = [{ addr = \"127.0.0.2:80\", name = \"web1\" }, { addr = \"127.0.0.3:80\" }]\n";
        let (config, found) = parse_with(text, &FakeFs::default());
        assert_eq!(found, Vec::<String>::new());
        let fe = &config.unwrap().virtual_servers["fe"];
        assert_eq!(fe.proxy.backend.as_deref(), Some("be"));
        let names: Vec<Option<&str>> = fe.real_servers.iter().map(|r| r.name.as_deref()).collect();
        assert_eq!(names, [Some("web1"), None]);
        check(
            "[virtual_servers.fe]\nlisten = \"127.0.0.1:80\"\nreal_servers = [{ addr = \"127.0.0.2:80\", name = \"w\" }, { addr = \"127.0.0.3:80\", name = \"w\" }]\n",
            &[
                "3:88: error: virtual_servers.fe.real_servers[1].name: server name \"w\" is already the name of real_servers[0]",
            ],
        );
    }

    #[test]
    fn haproxy_map_takes_hash_type_words() {
        let text = "[virtual_servers.a]\nlisten = \"127.0.0.1:80\"\nscheduler = \"haproxy-map\"\n[virtual_servers.b]\nlisten = \"127.0.0.1:81\"\nscheduler = \"haproxy-map\"\nscheduler_flags = [\"crc32\", \"avalanche\"]\n[virtual_servers.c]\nlisten = \"127.0.0.1:82\"\nscheduler = \"haproxy-consistent\"\n[virtual_servers.d]\nlisten = \"127.0.0.1:83\"\nscheduler = \"haproxy-consistent\"\nscheduler_flags = [\"djb2\"]\n";
        let (config, found) = parse_with(text, &FakeFs::default());
        assert_eq!(found, Vec::<String>::new());
        let config = config.unwrap();
        assert_eq!(
            config.virtual_servers["a"].scheduler,
            LbScheduler::Haproxy(HaproxyHash::default())
        );
        assert_eq!(
            config.virtual_servers["c"].scheduler,
            LbScheduler::Haproxy(HaproxyHash::CONSISTENT)
        );
        assert_eq!(
            config.virtual_servers["d"].scheduler,
            LbScheduler::Haproxy(HaproxyHash {
                consistent: true,
                function: HashFunction::Djb2,
                avalanche: false
            }),
            "a function word without avalanche, as in haproxy.cfg"
        );
        assert_eq!(
            config.virtual_servers["b"].scheduler,
            LbScheduler::Haproxy(HaproxyHash {
                consistent: false,
                function: HashFunction::Crc32,
                avalanche: true
            })
        );
    }

    #[test]
    fn fwmark_services_parse() {
        let text = "[virtual_servers.m]\nfwmark = 7\ndataplane = \"ipvs\"\npersistence = \"1m\"\npersistence_netmask = \"255.255.255.0\"\nreal_servers = [{ addr = \"10.0.0.2\", forward = \"dr\" }]\n[virtual_servers.m6]\nfwmark = \"7 inet6\"\ndataplane = \"ipvs\"\nreal_servers = [{ addr = \"[2001:db8::2]:8080\" }]\n";
        let (config, found) = parse_with(text, &FakeFs::default());
        assert_eq!(found, Vec::<String>::new());
        let config = config.unwrap();
        let m = &config.virtual_servers["m"];
        assert_eq!(m.listen, None);
        assert_eq!(
            m.fwmark,
            Some(Fwmark {
                mark: std::num::NonZeroU32::new(7).unwrap(),
                ipv6: false
            })
        );
        assert_eq!(m.persistence_netmask, Some(24));
        // ipvsadm's `-a -f 7 -r 10.0.0.2`: no port.
        assert_eq!(m.real_servers[0].addr.to_string(), "10.0.0.2:0");
        assert_eq!(
            config.virtual_servers["m6"].fwmark.map(|f| f.ipv6),
            Some(true)
        );
        check_cases(&[
            (
                "[virtual_servers.m]\nfwmark = 0\n",
                &[
                    "2:10: error: virtual_servers.m.fwmark: \"0\" is not a firewall mark (expected a mark from 1 to 4294967295, optionally followed by inet or inet6, e.g. 7 or \"7 inet6\")",
                ],
            ),
            (
                "[virtual_servers.m]\nfwmark = \"7 inet9\"\n",
                &[
                    "2:10: error: virtual_servers.m.fwmark: \"7 inet9\" is not a firewall mark (expected a mark from 1 to 4294967295, optionally followed by inet or inet6, e.g. 7 or \"7 inet6\")",
                ],
            ),
        ]);
        // Only IPVS serves a mark; one virtual server per mark and family.
        let text = "[virtual_servers.m]\nfwmark = 7\nreal_servers = [{ addr = \"10.0.0.2\" }]\n[virtual_servers.n]\nfwmark = 7\ndataplane = \"ipvs\"\nlisten = \"10.0.0.1:80\"\n";
        let Err(e) = crate::config::compile_str(
            text,
            std::path::Path::new("/etc/keepmon/keepmon.toml"),
            crate::config::Format::Toml,
            &FakeFs::default(),
        ) else {
            panic!("a fwmark service on the proxy compiles");
        };
        let e: Vec<String> = e.diagnostics.iter().map(|d| d.message.clone()).collect();
        let e = e.join("\n");
        for needle in [
            "virtual server \"m\" is a firewall-mark service (FWM 7): only the IPVS data plane serves one; the proxy data plane needs a listen address",
            "virtual server \"n\" has both a listen address (10.0.0.1:80) and a firewall mark (FWM 7); give one",
            "virtual server \"n\" serves FWM 7, like \"m\"",
        ] {
            assert!(e.contains(needle), "{needle}\n{e}");
        }
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
}
