//! Cross-reference checks on a built model, shared by both front ends: names resolve, nothing is silently unwatched.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::depend::ServiceRef;
use crate::config::diag::{Diagnostics, Location};
use crate::config::model::{
    AclFetch, Action, Config, DataPlane, Forward, Fwmark, Monitor, Protocol, ProxyMode,
    StatsListen, TrackTarget, VirtualServer,
};

/// Add every cross-reference error and warning of `config` to `diags`.
pub fn validate(config: &Config, file: &Arc<Path>, diags: &mut Diagnostics) {
    check_watches(config, diags);
    check_dependencies(config, diags);
    check_views(config, file, diags);
    check_virtual_servers(config, diags);
    check_vrrp(config, diags);
    check_announcements(config, diags);
    check_stats_pages(config, diags);
    check_something_is_watched(config, file, diags);
    check_mail_delivery(config, diags);
}

/// Mail alerts with no way to deliver them would be silently lost.
fn check_mail_delivery(config: &Config, diags: &mut Diagnostics) {
    if config.mail.smtp.is_some() || config.mail.sendmail.is_some() {
        return;
    }
    let first_mail = config.services().find_map(|(_, s)| {
        s.periods
            .iter()
            .flat_map(|p| {
                p.alerts
                    .iter()
                    .chain(&p.upalerts)
                    .chain(&p.startupalerts)
                    .chain(&p.ackalerts)
                    .chain(&p.disablealerts)
            })
            .find(|a| matches!(a.action, Action::Mail(_)))
            .map(|_| s.origin.0.clone())
    });
    if let Some(at) = first_mail {
        diags.warning(
            at,
            "mail alerts are configured but there is no smtp relay and no local sendmail: \
             they will wait in the outbox until one is configured",
        );
    }
}

fn check_watches(config: &Config, diags: &mut Diagnostics) {
    for watch in config.watches.values() {
        let Some(group) = config.hostgroups.get(&watch.group) else {
            diags.error(
                watch.origin.0.clone(),
                format!(
                    "watch \"{}\" names no hostgroup (defined: {})",
                    watch.group,
                    names(config.hostgroups.keys())
                ),
            );
            continue;
        };
        if watch.services.is_empty() {
            diags.warning(
                watch.origin.0.clone(),
                format!("watch \"{}\" has no services", watch.group),
            );
        }
        for service in watch.services.values() {
            let at = service.origin.0.clone();
            for host in &service.exclude_hosts {
                if !group
                    .hosts
                    .iter()
                    .any(|h| h.trim_start_matches('*') == host)
                {
                    diags.warning(
                        at.clone(),
                        format!(
                            "exclude_hosts: \"{host}\" is not in hostgroup {}",
                            watch.group
                        ),
                    );
                }
            }
            let polled = service.interval.is_some() || service.schedule.is_some();
            if polled && service.monitor.is_none() {
                diags.error(
                    at.clone(),
                    format!(
                        "service {}/{} has an interval but no monitor",
                        watch.group, service.name
                    ),
                );
            }
            if service.interval.is_some() && service.schedule.is_some() {
                diags.error(
                    at.clone(),
                    format!(
                        "service {}/{} has both interval and schedule; use one",
                        watch.group, service.name
                    ),
                );
            }
            if !polled && service.monitor.is_some() && service.traptimeout.is_none() {
                diags.warning(
                    at.clone(),
                    format!(
                        "service {}/{} has a monitor but no interval, so it never runs",
                        watch.group, service.name
                    ),
                );
            }
            if let (Some(timeout), Some(interval)) = (service.timeout, service.interval)
                && timeout > interval
            {
                diags.warning(
                    at,
                    format!(
                        "service {}/{}: timeout {}s is longer than the interval {}s",
                        watch.group,
                        service.name,
                        timeout.as_secs_f64(),
                        interval.as_secs_f64()
                    ),
                );
            }
        }
    }
    // Sets built once: asking every watch about every hostgroup was
    // quadratic (20 s for a 20,000-watch mon.cf).
    let watched: std::collections::BTreeSet<&str> =
        config.watches.values().map(|w| w.group.as_str()).collect();
    let in_views: std::collections::BTreeSet<&str> = config
        .views
        .values()
        .flat_map(|members| members.iter().map(String::as_str))
        .collect();
    for group in config.hostgroups.values() {
        if !group.implicit && !watched.contains(group.name.as_str()) {
            let used_by_view = in_views.contains(group.name.as_str());
            if !used_by_view {
                diags.warning(
                    group.origin.0.clone(),
                    format!("hostgroup \"{}\" is not used by any watch", group.name),
                );
            }
        }
    }
}

fn check_dependencies(config: &Config, diags: &mut Diagnostics) {
    for (_, service) in config.services() {
        let own = service.reference();
        if service.exit_weight && !matches!(service.monitor, Some(Monitor::Exec { .. })) {
            diags.error(
                service.origin.0.clone(),
                format!("{own}: exit_weight reads a script's exit status; the service's monitor is not a script"),
            );
        }
        let exprs = [
            ("depend", &service.depend),
            ("alertdepend", &service.alertdepend),
            ("monitordepend", &service.monitordepend),
        ];
        for (keyword, expr) in exprs {
            if let Some(expr) = expr {
                check_refs(
                    config,
                    &own,
                    keyword,
                    &expr.refs(),
                    &service.origin.0,
                    diags,
                );
            }
        }
        check_refs(
            config,
            &own,
            "hostdepend",
            &service.hostdepend,
            &service.origin.0,
            diags,
        );
    }
}

fn check_refs(
    config: &Config,
    own: &ServiceRef,
    keyword: &str,
    refs: &[ServiceRef],
    at: &Location,
    diags: &mut Diagnostics,
) {
    for r in refs {
        if r == own {
            diags.error(
                at.clone(),
                format!("{keyword} of {own}: a service cannot depend on itself"),
            );
        } else if config.service(r).is_none() {
            diags.error(
                at.clone(),
                format!("{keyword} of {own}: \"{r}\" is not a defined group:service"),
            );
        }
    }
}

fn check_views(config: &Config, file: &Arc<Path>, diags: &mut Diagnostics) {
    for (view, members) in &config.views {
        for member in members {
            let known = match member.split_once(':') {
                Some((group, service)) => config
                    .service(&ServiceRef {
                        group: group.to_string(),
                        service: service.to_string(),
                    })
                    .is_some(),
                None => config.hostgroups.contains_key(member),
            };
            if !known {
                diags.warning(
                    Location::file_only(file),
                    format!(
                        "view \"{view}\": \"{member}\" is neither a hostgroup nor a group:service"
                    ),
                );
            }
        }
    }
}

/// Routes go from an http-mode virtual server of the built-in proxy to a
/// pool of the same mode (a virtual server without `listen`, without routes
/// of its own); a pool is reached by some route.
fn check_routes(config: &Config, vs: &VirtualServer, diags: &mut Diagnostics) {
    let at = vs.origin.0.clone();
    let routes = &vs.proxy.routes;
    if vs.listen.is_none() {
        if vs.dataplane != DataPlane::Proxy {
            diags.error(
                at.clone(),
                format!(
                    "virtual server \"{}\" has no listen address: only the built-in proxy serves such a pool (through routes); IPVS and nftables cannot route by content",
                    vs.name
                ),
            );
        }
        if !routes.is_empty() {
            diags.error(
                at.clone(),
                format!(
                    "virtual server \"{}\" has no listen address and routes of its own: a pool cannot route further",
                    vs.name
                ),
            );
        }
        let reached = config
            .virtual_servers
            .values()
            .any(|other| other.proxy.routes.iter().any(|r| r.to == vs.name));
        if !reached {
            diags.warning(
                at.clone(),
                format!(
                    "virtual server \"{}\" has no listen address and no route reaches it: it serves nothing",
                    vs.name
                ),
            );
        }
    }
    if routes.is_empty() {
        return;
    }
    if vs.dataplane != DataPlane::Proxy {
        diags.error(
            at.clone(),
            format!(
                "virtual server \"{}\": routes need the built-in proxy (IPVS and nftables cannot route by content)",
                vs.name
            ),
        );
    }
    let source_only = routes
        .iter()
        .flat_map(|r| r.when.any.iter().flatten())
        .flat_map(|u| &u.acl.tests)
        .all(|t| t.fetch == AclFetch::Source);
    if vs.proxy.mode == ProxyMode::Tcp && !source_only {
        diags.error(
            at.clone(),
            format!(
                "virtual server \"{}\": in mode tcp routes can test only 'src' (there is no request to look at)",
                vs.name
            ),
        );
    }
    for route in routes {
        match config.virtual_servers.get(&route.to) {
            None => diags.error(
                at.clone(),
                format!(
                    "virtual server \"{}\": a route goes to \"{}\", which is not a virtual server",
                    vs.name, route.to
                ),
            ),
            Some(pool) if pool.listen.is_some() => diags.error(
                at.clone(),
                format!(
                    "virtual server \"{}\": a route goes to \"{}\", which has a listen address (a route's target is a pool: a virtual server without listen)",
                    vs.name, route.to
                ),
            ),
            Some(pool) if pool.proxy.mode != vs.proxy.mode => diags.error(
                at.clone(),
                format!(
                    "virtual server \"{}\" (mode {}) has a route to \"{}\" (mode {})",
                    vs.name, vs.proxy.mode, route.to, pool.proxy.mode
                ),
            ),
            Some(_) => {}
        }
    }
}

/// A firewall-mark service: IPVS only, no listen address or routes, one
/// virtual server per mark and family.
fn check_fwmark<'c>(
    vs: &'c VirtualServer,
    fwmark: Fwmark,
    marks: &mut Vec<(Fwmark, &'c str)>,
    diags: &mut Diagnostics,
) {
    let at = vs.origin.0.clone();
    if vs.dataplane != DataPlane::Ipvs {
        diags.error(
            at.clone(),
            format!(
                "virtual server \"{}\" is a firewall-mark service ({fwmark}): only the IPVS data plane serves one; the {} data plane needs a listen address",
                vs.name,
                match vs.dataplane {
                    DataPlane::Proxy => "proxy",
                    DataPlane::Nftables => "nftables",
                    DataPlane::Ipvs => "ipvs",
                }
            ),
        );
    }
    if let Some(listen) = vs.listen {
        diags.error(
            at.clone(),
            format!(
                "virtual server \"{}\" has both a listen address ({listen}) and a firewall mark ({fwmark}); give one",
                vs.name
            ),
        );
    }
    if !vs.proxy.routes.is_empty() {
        diags.error(
            at.clone(),
            format!(
                "virtual server \"{}\" is a firewall-mark service and has routes: IPVS cannot route by content",
                vs.name
            ),
        );
    }
    if let Some((_, other)) = marks.iter().find(|(m, _)| *m == fwmark) {
        diags.error(
            at,
            format!(
                "virtual server \"{}\" serves {fwmark}, like \"{other}\"",
                vs.name
            ),
        );
    }
    marks.push((fwmark, &vs.name));
}

fn check_virtual_servers(config: &Config, diags: &mut Diagnostics) {
    let mut listens: Vec<(std::net::SocketAddr, Protocol, &str)> = Vec::new();
    let mut marks: Vec<(Fwmark, &str)> = Vec::new();
    for vs in config.virtual_servers.values() {
        let at = vs.origin.0.clone();
        for rs in &vs.real_servers {
            if let Some(session) = &rs.bfd
                && !config.bfd.contains_key(session)
            {
                diags.error(
                    at.clone(),
                    format!(
                        "virtual server \"{}\": real server {} follows bfd \"{session}\", which is not a defined BFD session (defined: {})",
                        vs.name,
                        rs.addr,
                        names(config.bfd.keys())
                    ),
                );
            }
        }
        if let Some(listen) = vs.listen {
            if let Some((_, _, other)) = listens
                .iter()
                .find(|(addr, proto, _)| *addr == listen && *proto == vs.protocol)
            {
                diags.error(
                    at.clone(),
                    format!(
                        "virtual server \"{}\" listens on {} {listen}, like \"{other}\"",
                        vs.name, vs.protocol
                    ),
                );
            }
            listens.push((listen, vs.protocol, &vs.name));
        }
        if let Some(fwmark) = vs.fwmark {
            check_fwmark(vs, fwmark, &mut marks, diags);
        } else {
            check_routes(config, vs, diags);
        }
        if vs.dataplane == DataPlane::Proxy && vs.protocol == Protocol::Udp {
            diags.error(
                at.clone(),
                format!(
                    "virtual server \"{}\": the proxy data plane serves tcp only; use dataplane ipvs or nftables for udp",
                    vs.name
                ),
            );
        }
        if vs.real_servers.is_empty() && vs.sorry_server.is_none() && vs.proxy.routes.is_empty() {
            diags.warning(
                at.clone(),
                format!("virtual server \"{}\" has no real servers", vs.name),
            );
        }
        for (i, rs) in vs.real_servers.iter().enumerate() {
            if vs.real_servers[..i].iter().any(|o| o.addr == rs.addr) {
                diags.error(
                    at.clone(),
                    format!(
                        "virtual server \"{}\": real server {} is listed twice",
                        vs.name, rs.addr
                    ),
                );
            }
            if vs.dataplane == DataPlane::Proxy && rs.forward != Forward::Nat {
                diags.error(
                    at.clone(),
                    format!(
                        "virtual server \"{}\": real server {} uses forward {}, but the proxy always forwards as nat",
                        vs.name, rs.addr, rs.forward
                    ),
                );
            }
            if rs.maxqueue.is_some() && rs.maxconn.is_none() {
                diags.error(
                    at.clone(),
                    format!(
                        "virtual server \"{}\": real server {} has maxqueue without maxconn (a server without a limit never queues)",
                        vs.name, rs.addr
                    ),
                );
            }
            if vs.dataplane != DataPlane::Proxy && (rs.maxconn.is_some() || rs.slowstart.is_some())
            {
                diags.warning(
                    at.clone(),
                    format!(
                        "virtual server \"{}\": real server {}: maxconn, maxqueue and slowstart are the built-in proxy's; dataplane {:?} ignores them (upper_threshold is the kernel's limit)",
                        vs.name, rs.addr, vs.dataplane
                    ),
                );
            }
            for check in &rs.checks {
                let Some(service) = config.service(&check.health) else {
                    diags.error(
                        at.clone(),
                        format!(
                            "virtual server \"{}\": real server {}: check \"{}\" is not a defined group:service",
                            vs.name, rs.addr, check.health
                        ),
                    );
                    continue;
                };
                let hosts = config
                    .hostgroups
                    .get(&service.group)
                    .map(|g| g.hosts.as_slice())
                    .unwrap_or_default();
                if !hosts
                    .iter()
                    .any(|h| h.trim_start_matches('*') == check.host)
                {
                    diags.error(
                        at.clone(),
                        format!(
                            "virtual server \"{}\": real server {}: host \"{}\" is not in hostgroup {} checked by {} (hosts: {})",
                            vs.name,
                            rs.addr,
                            check.host,
                            service.group,
                            check.health,
                            hosts.join(" ")
                        ),
                    );
                }
            }
        }
        let Some(health) = &vs.health else {
            continue;
        };
        let Some(service) = config.service(health) else {
            diags.error(
                at,
                format!(
                    "virtual server \"{}\": health \"{health}\" is not a defined group:service",
                    vs.name
                ),
            );
            continue;
        };
        let hosts = config
            .hostgroups
            .get(&service.group)
            .map(|g| g.hosts.as_slice())
            .unwrap_or_default();
        // A server following a BFD session is not bound to the health service.
        for rs in vs.real_servers.iter().filter(|rs| rs.bfd.is_none()) {
            if !hosts.iter().any(|h| h.trim_start_matches('*') == rs.host) {
                diags.error(
                    at.clone(),
                    format!(
                        "virtual server \"{}\": real server {} is host \"{}\", which is not in hostgroup {} checked by {health} (hosts: {})",
                        vs.name,
                        rs.addr,
                        rs.host,
                        service.group,
                        hosts.join(" ")
                    ),
                );
            }
        }
    }
}

/// A stats page's listener is its own (no other page, virtual server or
/// keepmon listener on it); a page inside a virtual server names an
/// http-mode one served by the proxy.
fn check_stats_pages(config: &Config, diags: &mut Diagnostics) {
    let settings = &config.settings;
    let mut taken: Vec<(std::net::SocketAddr, String)> = [
        (settings.web.listen, "the web page"),
        (settings.metrics_listener, "the metrics listener"),
        (settings.mon_listener, "the mon protocol listener"),
    ]
    .into_iter()
    .filter_map(|(addr, what)| addr.map(|a| (a, what.to_string())))
    .collect();
    taken.extend(
        config
            .virtual_servers
            .values()
            .filter(|vs| vs.protocol == Protocol::Tcp)
            .filter_map(|vs| Some((vs.listen?, format!("virtual server \"{}\"", vs.name)))),
    );
    for (i, page) in config.stats_pages.iter().enumerate() {
        let at = page.origin.0.clone();
        match &page.listen {
            StatsListen::Address(addr) => {
                if let Some((_, other)) = taken.iter().find(|(a, _)| a == addr) {
                    diags.error(
                        at,
                        format!("stats page: {addr} is already taken by {other}"),
                    );
                }
                taken.push((*addr, format!("stats page {}", i + 1)));
            }
            StatsListen::VirtualServer(name) => {
                let Some(vs) = config.virtual_servers.get(name) else {
                    diags.error(
                        at,
                        format!(
                            "stats page: virtual server \"{name}\" is not defined (defined: {})",
                            names(config.virtual_servers.keys())
                        ),
                    );
                    continue;
                };
                if vs.dataplane != DataPlane::Proxy || vs.proxy.mode != ProxyMode::Http {
                    diags.error(
                        at,
                        format!(
                            "stats page: virtual server \"{name}\" is not served by the proxy in http mode, so it cannot answer the page's requests (as HAProxy, which needs mode http for stats)"
                        ),
                    );
                    continue;
                }
                if let Some(other) = config.stats_pages[..i]
                    .iter()
                    .position(|p| p.listen == page.listen)
                {
                    diags.error(
                        at,
                        format!(
                            "stats page: virtual server \"{name}\" already serves stats page {}",
                            other + 1
                        ),
                    );
                }
            }
        }
    }
}

/// An announcement's condition names existing virtual servers, services
/// and VRRP instances; a prefix is announced once.
fn check_announcements(config: &Config, diags: &mut Diagnostics) {
    use crate::config::when::When;
    let mut prefixes: std::collections::BTreeMap<String, &str> = Default::default();
    for a in config.announce.values() {
        let at = a.origin.0.clone();
        if let Some(other) = prefixes.insert(a.prefix_text(), &a.name) {
            diags.error(
                at.clone(),
                format!(
                    "announce \"{}\": prefix {} is already announced by \"{other}\"",
                    a.name,
                    a.prefix_text()
                ),
            );
        }
        for atom in a.when.atoms() {
            let missing = match atom {
                When::Quorum(vs) if !config.virtual_servers.contains_key(vs) => {
                    Some(format!("virtual server \"{vs}\""))
                }
                When::Service { group, service }
                    if config
                        .watches
                        .get(group)
                        .is_none_or(|w| !w.services.contains_key(service)) =>
                {
                    Some(format!("service \"{group}/{service}\""))
                }
                When::Vrrp { instance, .. } if !config.vrrp.contains_key(instance) => {
                    Some(format!("vrrp instance \"{instance}\""))
                }
                _ => None,
            };
            if let Some(what) = missing {
                diags.error(
                    at.clone(),
                    format!("announce \"{}\": when names an undefined {what}", a.name),
                );
            }
        }
    }
}

fn check_vrrp(config: &Config, diags: &mut Diagnostics) {
    let instances: Vec<_> = config.vrrp.values().collect();
    for (i, vrrp) in instances.iter().enumerate() {
        let at = vrrp.origin.0.clone();
        for other in &instances[..i] {
            let same_family = vrrp.virtual_addresses.first().map(|a| a.addr.is_ipv4())
                == other.virtual_addresses.first().map(|a| a.addr.is_ipv4());
            if other.interface == vrrp.interface
                && other.vrid == vrrp.vrid
                && same_family
                && other.unicast_peers == vrrp.unicast_peers
            {
                diags.error(
                    at.clone(),
                    format!(
                        "vrrp \"{}\" uses virtual_router_id {} on {}, like \"{}\"",
                        vrrp.name,
                        vrrp.vrid.get(),
                        vrrp.interface,
                        other.name
                    ),
                );
            }
        }
        for track in &vrrp.track {
            match &track.target {
                TrackTarget::Service(r) if config.service(r).is_none() => diags.error(
                    at.clone(),
                    format!(
                        "vrrp \"{}\": track service \"{r}\" is not a defined group:service",
                        vrrp.name
                    ),
                ),
                TrackTarget::Quorum(name) if !config.virtual_servers.contains_key(name) => {
                    diags.error(
                        at.clone(),
                        format!(
                            "vrrp \"{}\": track quorum \"{name}\" is not a defined virtual server (defined: {})",
                            vrrp.name,
                            names(config.virtual_servers.keys())
                        ),
                    )
                }
                _ => {}
            }
        }
        for track in &vrrp.track_bfds {
            if !config.bfd.contains_key(&track.name) {
                diags.error(
                    at.clone(),
                    format!(
                        "vrrp \"{}\": track_bfd \"{}\" is not a defined BFD session (defined: {})",
                        vrrp.name,
                        track.name,
                        names(config.bfd.keys())
                    ),
                );
            }
        }
    }
    let mut grouped: BTreeMap<&str, &str> = BTreeMap::new();
    for group in config.vrrp_sync_groups.values() {
        let at = group.origin.0.clone();
        for member in &group.members {
            if !config.vrrp.contains_key(member) {
                diags.error(
                    at.clone(),
                    format!(
                        "vrrp_sync_group \"{}\": member \"{member}\" is not a defined vrrp instance (defined: {})",
                        group.name,
                        names(config.vrrp.keys())
                    ),
                );
            } else if let Some(other) = grouped.insert(member, &group.name) {
                let what = if other == group.name {
                    "is listed twice".to_string()
                } else {
                    format!(
                        "is already a member of \"{other}\" (an instance belongs to one sync group at most)"
                    )
                };
                diags.error(
                    at.clone(),
                    format!(
                        "vrrp_sync_group \"{}\": vrrp instance \"{member}\" {what}",
                        group.name
                    ),
                );
            }
        }
    }
}

/// keepmon must never silently watch nothing (mon's blank-line trap).
fn check_something_is_watched(config: &Config, file: &Arc<Path>, diags: &mut Diagnostics) {
    let polled = config
        .services()
        .filter(|(_, s)| s.interval.is_some() || s.schedule.is_some())
        .count();
    let traps = config
        .services()
        .filter(|(_, s)| s.traptimeout.is_some())
        .count();
    if polled == 0
        && traps == 0
        && config.vrrp.is_empty()
        && config.virtual_servers.is_empty()
        && config.bfd.is_empty()
    {
        diags.warning(
            Location::file_only(file),
            "this config watches nothing: no service has an interval, a schedule or a traptimeout",
        );
    }
}

fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = keys.map(String::as_str).collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::native::testing::FakeFs;
    use crate::config::{Format, compile_str};

    /// The diagnostics of a native config, one per line.
    fn diagnostics(text: &str) -> String {
        match compile_str(text, Path::new("/k.toml"), Format::Toml, &FakeFs::default()) {
            Ok(compiled) => compiled.warnings.to_string(),
            Err(e) => e.diagnostics.to_string(),
        }
    }

    const WATCHED: &str = "[hostgroups]\ng = [\"127.0.0.1\"]\n\n[watch.g.s]\ninterval = \"1m\"\nmonitor = { type = \"tcp\", port = 9 }\n\n";

    #[test]
    fn a_tracked_bfd_session_must_exist() {
        let found = diagnostics(
            "[bfd.b1]\nneighbor = \"10.0.0.2\"\n[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\ntrack_bfd = [{ name = \"b1\", weight = -20 }, { name = \"b2\" }]\n",
        );
        assert_eq!(
            found,
            "/k.toml:3:7: error: vrrp \"v1\": track_bfd \"b2\" is not a defined BFD session (defined: b1)\n"
        );
        let found = diagnostics(
            "[bfd.b1]\nneighbor = \"10.0.0.2\"\n[virtual_servers.web]\nlisten = \"10.0.0.1:80\"\nreal_servers = [{ addr = \"10.0.0.11:80\", bfd = \"b1\" }, { addr = \"10.0.0.12:80\", bfd = \"b9\" }]\n",
        );
        assert_eq!(
            found,
            "/k.toml:3:18: error: virtual server \"web\": real server 10.0.0.12:80 follows bfd \"b9\", which is not a defined BFD session (defined: b1)\n"
        );
        // A config with only BFD sessions watches something.
        let found = diagnostics("[bfd.b1]\nneighbor = \"10.0.0.2\"\n");
        assert_eq!(found, "");
    }

    #[test]
    fn routes_go_from_http_proxies_to_pools() {
        let found = diagnostics(&format!(
            "{WATCHED}[virtual_servers.front]\nlisten = \"127.0.0.1:8001\"\nmode = \"http\"\n\
             routes = [{{ to = \"pool\" }}, {{ to = \"missing\" }}, {{ to = \"listening\" }}, {{ to = \"tcppool\" }}]\n\n\
             [virtual_servers.pool]\nmode = \"http\"\nreal_servers = [{{ addr = \"127.0.0.1:9\" }}]\n\n\
             [virtual_servers.tcppool]\nreal_servers = [{{ addr = \"127.0.0.1:9\" }}]\n\n\
             [virtual_servers.listening]\nlisten = \"127.0.0.1:8002\"\nmode = \"http\"\nreal_servers = [{{ addr = \"127.0.0.1:9\" }}]\n\n\
             [virtual_servers.kernel]\ndataplane = \"ipvs\"\nreal_servers = [{{ addr = \"127.0.0.1:9\" }}]\n\n\
             [virtual_servers.tcpfront]\nlisten = \"127.0.0.1:8003\"\nroutes = [{{ to = \"tcppool\" }}]\n"
        ));
        for expected in [
            "virtual server \"front\": a route goes to \"missing\", which is not a virtual server",
            "virtual server \"front\": a route goes to \"listening\", which has a listen address",
            "virtual server \"front\" (mode http) has a route to \"tcppool\" (mode tcp)",
            "virtual server \"kernel\" has no listen address: only the built-in proxy serves such a pool",
            "warning: virtual server \"kernel\" has no listen address and no route reaches it",
            "virtual server \"front\": a route goes to \"missing\"",
        ] {
            assert!(found.contains(expected), "{expected}\n{found}");
        }
        assert!(!found.contains("\"pool\""), "{found}");
    }

    #[test]
    fn stats_pages_need_their_own_listener_and_an_http_virtual_server() {
        let found = diagnostics(&format!(
            "{WATCHED}[web]\nlisten = \"127.0.0.1:9584\"\n\n\
             [virtual_servers.tcp]\nlisten = \"127.0.0.1:8000\"\nreal_servers = [{{ addr = \"127.0.0.1:9\" }}]\n\n\
             [virtual_servers.web]\nlisten = \"127.0.0.1:8001\"\nmode = \"http\"\nreal_servers = [{{ addr = \"127.0.0.1:9\" }}]\n\n\
             [[stats_page]]\nlisten = \"127.0.0.1:9584\"\n\n\
             [[stats_page]]\nlisten = \"127.0.0.1:8000\"\n\n\
             [[stats_page]]\nlisten = \"127.0.0.1:8404\"\n\n\
             [[stats_page]]\nlisten = \"127.0.0.1:8404\"\n\n\
             [[stats_page]]\nvirtual_server = \"nope\"\n\n\
             [[stats_page]]\nvirtual_server = \"tcp\"\n\n\
             [[stats_page]]\nvirtual_server = \"web\"\n\n\
             [[stats_page]]\nvirtual_server = \"web\"\n"
        ));
        for expected in [
            "stats page: 127.0.0.1:9584 is already taken by the web page",
            "stats page: 127.0.0.1:8000 is already taken by virtual server \"tcp\"",
            "stats page: 127.0.0.1:8404 is already taken by stats page 3",
            "stats page: virtual server \"nope\" is not defined (defined: tcp, web)",
            "stats page: virtual server \"tcp\" is not served by the proxy in http mode",
            "stats page: virtual server \"web\" already serves stats page 7",
        ] {
            assert!(found.contains(expected), "{expected:?} not in:\n{found}");
        }
        assert_eq!(found.matches("error").count(), 6, "{found}");
    }
}
