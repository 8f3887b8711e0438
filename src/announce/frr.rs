//! FRR as the routing daemon: keepmon's `network PREFIX route-map MAP` statements in bgpd's running configuration, read back from `show running-config` and brought to the wanted set by one `vtysh` call carrying only the difference (pure parsing and command building here; the process runs in `super::apply`).
//!
//! Why vtysh and not `frr-reload.py`: frr-reload diffs a *whole* config
//! file against the running one, so keepmon would have to own (or rewrite)
//! the operator's entire frr.conf; there is no include mechanism to hand it
//! a part. Statements marked by keepmon's route-map are keepmon's alone:
//! keepmon reads them back before every change, never touches any other
//! line, and one vtysh call carries the whole difference. FRR's CLI is not
//! transactional, so a change that fails half-way is not rolled back; the
//! retry reads the running config again and sends what is still missing.
//!
//! `network` statements (with `no bgp network import-check`) announce
//! without putting anything in the kernel, like BIRD's static protocol:
//! the director itself answers for the VIP. The operator's config needs
//!
//! ```text
//! router bgp 65001
//!  no bgp network import-check
//!  neighbor 192.0.2.1 remote-as 65000
//!  neighbor 192.0.2.1 advertisement-interval 0
//! route-map keepmon permit 10
//! ```

use std::net::IpAddr;

use super::Route;

/// What keepmon finds in FRR's running configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// The default instance's AS (`router bgp N` without `vrf`/`view`).
    pub asn: Option<u32>,
    /// keepmon's statements there (those naming its route-map).
    pub routes: Vec<Route>,
}

/// Read `show running-config`.
pub fn parse_running(text: &str, route_map: &str) -> Running {
    let mut running = Running::default();
    let mut in_default_bgp = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with(' ') {
            in_default_bgp = false;
            if let ["router", "bgp", asn] = words[..]
                && let Ok(asn) = asn.parse()
            {
                running.asn = Some(asn);
                in_default_bgp = true;
            }
            continue;
        }
        if !in_default_bgp {
            continue;
        }
        if let ["network", prefix, "route-map", map] = words[..]
            && map == route_map
            && let Some(route) = parse_route(prefix)
        {
            running.routes.push(route);
        }
    }
    running.routes.sort();
    running
}

/// The vtysh `-c` commands that take `have` to `want` (empty: nothing to do).
pub fn commands(asn: u32, have: &[Route], want: &[Route], route_map: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (family, v4) in [("ipv4", true), ("ipv6", false)] {
        let mine = |r: &&Route| r.prefix.is_ipv4() == v4;
        let remove: Vec<&Route> = have
            .iter()
            .filter(mine)
            .filter(|r| !want.contains(r))
            .collect();
        let add: Vec<&Route> = want
            .iter()
            .filter(mine)
            .filter(|r| !have.contains(r))
            .collect();
        if remove.is_empty() && add.is_empty() {
            continue;
        }
        lines.push(format!("address-family {family} unicast"));
        for r in remove {
            lines.push(format!(
                "no network {}/{} route-map {route_map}",
                r.prefix, r.len
            ));
        }
        for r in add {
            lines.push(format!(
                "network {}/{} route-map {route_map}",
                r.prefix, r.len
            ));
        }
        lines.push("exit-address-family".to_string());
    }
    if lines.is_empty() {
        return lines;
    }
    let mut all = vec![
        "configure terminal".to_string(),
        format!("router bgp {asn}"),
    ];
    all.extend(lines);
    all
}

fn parse_route(text: &str) -> Option<Route> {
    let (addr, len) = text.split_once('/')?;
    Some(Route {
        prefix: addr.parse::<IpAddr>().ok()?,
        len: len.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> Route {
        parse_route(text).expect("route")
    }

    const RUNNING: &[&str] = &[
        "Building configuration...",
        "",
        "Current configuration:",
        "!",
        "frr version 8.4.4",
        "hostname d1",
        "!",
        "router bgp 65001 vrf red",
        " address-family ipv4 unicast",
        "  network 10.0.0.1/32 route-map keepmon",
        " exit-address-family",
        "exit",
        "!",
        "router bgp 65001",
        " bgp router-id 10.9.9.1",
        " no bgp network import-check",
        " !",
        " address-family ipv4 unicast",
        "  network 192.0.2.10/32 route-map keepmon",
        "  network 192.0.2.11/32",
        "  network 192.0.2.12/32 route-map other",
        " exit-address-family",
        " !",
        " address-family ipv6 unicast",
        "  network 2001:db8::10/128 route-map keepmon",
        " exit-address-family",
        "exit",
        "!",
        "route-map keepmon permit 10",
        "exit",
        "!",
        "end",
    ];

    #[test]
    fn only_keepmons_statements_in_the_default_instance_are_read() {
        assert_eq!(
            parse_running(&RUNNING.join("\n"), "keepmon"),
            Running {
                asn: Some(65001),
                routes: vec![route("192.0.2.10/32"), route("2001:db8::10/128")],
            }
        );
        assert_eq!(
            parse_running("hostname d1\n", "keepmon"),
            Running::default()
        );
    }

    #[test]
    fn commands_are_the_difference_per_family() {
        let have = [route("192.0.2.10/32"), route("2001:db8::10/128")];
        let want = [route("192.0.2.20/32"), route("2001:db8::10/128")];
        assert_eq!(
            commands(65001, &have, &want, "keepmon"),
            [
                "configure terminal",
                "router bgp 65001",
                "address-family ipv4 unicast",
                "no network 192.0.2.10/32 route-map keepmon",
                "network 192.0.2.20/32 route-map keepmon",
                "exit-address-family",
            ]
        );
        assert!(commands(65001, &want, &want, "keepmon").is_empty());
        assert_eq!(
            commands(65001, &have, &[], "km").len(),
            2 + 2 * 3,
            "a withdraw of both families"
        );
    }
}
