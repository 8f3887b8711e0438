//! `[bgp]` and `[announce.NAME]`: which prefixes to announce through the routing daemon, and when.

use std::net::IpAddr;

use serde::Deserialize;

use super::cursor::{Dur, KeyPath, Reader, Text};
use crate::config::model::{Announcement, BgpSettings, Origin, RouteDaemon};
use crate::config::when::When;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBgp {
    via: Option<Text>,
    bird_include: Option<Text>,
    birdc: Option<Text>,
    bird_socket: Option<Text>,
    withdraw_drain: Option<Dur>,
    vtysh: Option<Text>,
    frr_pathspace: Option<String>,
    frr_route_map: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    prefix: Option<Text>,
    when: Option<Text>,
}

impl Reader<'_> {
    pub(super) fn bgp(&mut self, raw: RawBgp) -> BgpSettings {
        let p = KeyPath::new("bgp");
        let mut bgp = BgpSettings::default();
        if let Some(via) = &raw.via {
            match via.get_ref().to_ascii_lowercase().as_str() {
                "bird" => bgp.via = RouteDaemon::Bird,
                "exabgp" => bgp.via = RouteDaemon::ExaBgp,
                "frr" => bgp.via = RouteDaemon::Frr,
                _ => self.unknown_word(
                    via,
                    &p.key("via"),
                    "routing daemon",
                    &["bird", "exabgp", "frr"],
                ),
            }
        }
        if let Some(path) = self.path(raw.bird_include.as_ref(), &p.key("bird_include")) {
            bgp.bird_include = path;
        }
        if let Some(birdc) = &raw.birdc {
            bgp.birdc = birdc.get_ref().into();
        }
        bgp.bird_socket = self.path(raw.bird_socket.as_ref(), &p.key("bird_socket"));
        if let Some(vtysh) = &raw.vtysh {
            bgp.vtysh = vtysh.get_ref().into();
        }
        bgp.frr_pathspace = raw.frr_pathspace.clone();
        if let Some(text) = &raw.frr_route_map {
            let map = text.get_ref();
            if map.is_empty() || map.contains(char::is_whitespace) {
                self.error(
                    text.span().start,
                    format!(
                        "{}: {map:?} is not a route-map name",
                        p.key("frr_route_map")
                    ),
                );
            } else {
                bgp.frr_route_map = map.clone();
            }
        }
        if let Some(drain) = self.duration(raw.withdraw_drain.as_ref(), &p.key("withdraw_drain")) {
            bgp.withdraw_drain = drain;
        }
        bgp
    }

    pub(super) fn announcement(
        &mut self,
        name: &str,
        raw: RawAnnounce,
        p: &KeyPath,
        at: usize,
    ) -> Option<Announcement> {
        let prefix = self.required(
            raw.prefix.as_ref(),
            at,
            p,
            "prefix",
            "the virtual IP, e.g. \"192.0.2.10/32\"",
        );
        let when = self.required(
            raw.when.as_ref(),
            at,
            p,
            "when",
            "e.g. \"quorum:web && !vrrp:VI_1=FAULT\"",
        );
        let (prefix, when) = (prefix?, when?);
        let parsed_prefix = parse_prefix(prefix.get_ref());
        if let Err(e) = &parsed_prefix {
            self.error(prefix.span().start, format!("{}: {e}", p.key("prefix")));
        }
        let parsed_when = When::parse(when.get_ref());
        if let Err(e) = &parsed_when {
            self.error(when.span().start, format!("{}: {e}", p.key("when")));
        }
        let ((addr, len), when_expr) = (parsed_prefix.ok()?, parsed_when.ok()?);
        Some(Announcement {
            name: name.to_string(),
            prefix: addr,
            prefix_len: len,
            when: when_expr,
            origin: Origin(self.location(at)),
        })
    }
}

/// `ADDR/LEN` (LEN defaults to a host route); the address must be the
/// network's first (no host bits set), as routing daemons require.
pub(in crate::config) fn parse_prefix(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("\"{text}\" is not an address or ADDR/LEN prefix"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(len) => len
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("\"{text}\": the length must be 0 to {max}"))?,
    };
    let host_bits = match addr {
        IpAddr::V4(v4) if len < 32 => u128::from(u32::from(v4) & (u32::MAX >> len)),
        IpAddr::V6(v6) if len < 128 => u128::from(v6) & (u128::MAX >> len),
        _ => 0,
    };
    if host_bits != 0 {
        return Err(format!(
            "\"{text}\" has host bits set: write the network address"
        ));
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::parse_prefix;

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("192.0.2.10/32"),
            Ok(("192.0.2.10".parse().unwrap(), 32))
        );
        assert_eq!(
            parse_prefix("192.0.2.10"),
            Ok(("192.0.2.10".parse().unwrap(), 32))
        );
        assert_eq!(
            parse_prefix("2001:db8::1"),
            Ok(("2001:db8::1".parse().unwrap(), 128))
        );
        assert_eq!(
            parse_prefix("192.0.2.0/24"),
            Ok(("192.0.2.0".parse().unwrap(), 24))
        );
        assert!(
            parse_prefix("192.0.2.1/24")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(
            parse_prefix("192.0.2.1/33")
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!(
            parse_prefix("web/32")
                .unwrap_err()
                .contains("not an address")
        );
        assert!(
            parse_prefix("2001:db8::1/64")
                .unwrap_err()
                .contains("host bits")
        );
    }
}
