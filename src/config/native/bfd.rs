//! `[bfd.NAME]`: BFD sessions (keepalived's `bfd_instance` keys, the same defaults) that VRRP instances track with `track_bfd`.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::cursor::{Dur, Int, KeyPath, Reader, Text};
use crate::config::model::{BfdSession, Origin};

/// keepalived's defaults (`bfd.h`).
pub(in crate::config) const DEFAULT_MIN_RX_US: u32 = 10_000;
pub(in crate::config) const DEFAULT_MIN_TX_US: u32 = 10_000;
pub(in crate::config) const DEFAULT_IDLE_TX_US: u32 = 1_000_000;
pub(in crate::config) const DEFAULT_MULTIPLIER: u8 = 5;

/// The TTL (IPv4) or hop limit (IPv6) sent when none is set.
pub(in crate::config) fn default_ttl(neighbor: IpAddr) -> u8 {
    if neighbor.is_ipv4() { 255 } else { 64 }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBfd {
    neighbor: Option<Text>,
    source: Option<Text>,
    min_rx: Option<Dur>,
    min_tx: Option<Dur>,
    idle_tx: Option<Dur>,
    multiplier: Option<Int>,
    passive: Option<bool>,
    ttl: Option<Int>,
    max_hops: Option<Int>,
}

impl Reader<'_> {
    pub(super) fn bfd(
        &mut self,
        name: &str,
        raw: RawBfd,
        p: &KeyPath,
        at: usize,
    ) -> Option<BfdSession> {
        let neighbor = self.required(
            raw.neighbor.as_ref(),
            at,
            p,
            "neighbor",
            "the peer's address, e.g. neighbor = \"10.0.0.2\"",
        );
        let neighbor = neighbor.and_then(|text| self.bfd_ip(text, &p.key("neighbor")));
        let source = raw
            .source
            .as_ref()
            .map(|text| self.bfd_ip(text, &p.key("source")));
        let mut ok = neighbor.is_some() && !matches!(source, Some(None));
        let source = source.flatten();
        if let (Some(n), Some(s), Some(text)) = (neighbor, source, raw.source.as_ref())
            && n.is_ipv4() != s.is_ipv4()
        {
            self.error(
                text.span().start,
                format!(
                    "{}: {s} is not the same address family as neighbor {n}",
                    p.key("source")
                ),
            );
            ok = false;
        }
        let mut interval = |value: Option<&Dur>, key: &str, min_us: u32, default: u32| {
            let Some(value) = value else {
                return Some(default);
            };
            let d = self.duration(Some(value), &p.key(key))?;
            let us = micros(d);
            if us < u64::from(min_us) || us > u64::from(u32::MAX) {
                self.error(
                    value.span().start,
                    format!(
                        "{}: must be {min_us}µs to {}s",
                        p.key(key),
                        u32::MAX / 1_000_000
                    ),
                );
                return None;
            }
            u32::try_from(us).ok()
        };
        let min_rx = interval(raw.min_rx.as_ref(), "min_rx", 1000, DEFAULT_MIN_RX_US);
        let min_tx = interval(raw.min_tx.as_ref(), "min_tx", 1000, DEFAULT_MIN_TX_US);
        let idle_tx = interval(
            raw.idle_tx.as_ref(),
            "idle_tx",
            1_000_000,
            DEFAULT_IDLE_TX_US,
        );
        let multiplier = match raw.multiplier.as_ref() {
            None => Some(DEFAULT_MULTIPLIER),
            some => self.int_in::<u8>(some, &p.key("multiplier"), 1, 255),
        };
        let ttl = match raw.ttl.as_ref() {
            None => neighbor.map(default_ttl),
            some => self.int_in::<u8>(some, &p.key("ttl"), 1, 255),
        };
        let max_hops = match raw.max_hops.as_ref() {
            None => Some(0),
            some => self.int_in::<u8>(some, &p.key("max_hops"), 0, 255),
        };
        if let (Some(ttl), Some(hops), Some(value)) = (ttl, max_hops, raw.max_hops.as_ref())
            && hops != u8::MAX
            && hops > ttl
        {
            self.error(
                value.span().start,
                format!(
                    "{}: {hops} is above ttl {ttl} (255 turns the check off)",
                    p.key("max_hops")
                ),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(BfdSession {
            name: name.to_string(),
            neighbor: neighbor?,
            source,
            min_rx_us: min_rx?,
            min_tx_us: min_tx?,
            idle_tx_us: idle_tx?,
            multiplier: multiplier?,
            passive: raw.passive.unwrap_or(false),
            ttl: ttl?,
            max_hops: max_hops?,
            origin: Origin(self.location(at)),
        })
    }

    fn bfd_ip(&mut self, text: &Text, path: &str) -> Option<IpAddr> {
        match text.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error(
                    text.span().start,
                    format!("{path}: {:?} is not an IP address", text.get_ref()),
                );
                None
            }
        }
    }
}

/// A duration in whole microseconds (rounded: TOML durations are read as
/// floating seconds).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().saturating_add(500) / 1000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use crate::config::native::testing::check_cases;

    #[test]
    fn bfd_sessions_read_with_keepalived_defaults_and_errors() {
        check_cases(&[
            ("[bfd.b1]\nneighbor = \"10.0.0.2\"\n", &[]),
            (
                "[bfd.b1]\nsource = \"10.0.0.1\"\n",
                &[
                    "1:6: error: bfd.b1: missing key \"neighbor\" (the peer's address, e.g. neighbor = \"10.0.0.2\")",
                ],
            ),
            (
                "[bfd.b1]\nneighbor = \"10.0.0.2\"\nsource = \"fe80::1\"\nmin_rx = \"0.1ms\"\nidle_tx = \"10ms\"\nmultiplier = 0\nmax_hops = 300\n",
                &[
                    "3:10: error: bfd.b1.source: fe80::1 is not the same address family as neighbor 10.0.0.2",
                    "4:10: error: bfd.b1.min_rx: must be 1000µs to 4294s",
                    "5:11: error: bfd.b1.idle_tx: must be 1000000µs to 4294s",
                    "6:14: error: bfd.b1.multiplier: 0 is out of range (expected 1 to 255)",
                    "7:12: error: bfd.b1.max_hops: 300 is out of range (expected 0 to 255)",
                ],
            ),
            // track_bfd entries need a name (that it names a session is
            // the validator's check).
            (
                "[bfd.b1]\nneighbor = \"10.0.0.2\"\n[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\ntrack_bfd = [{ name = \"b1\", weight = -20 }, { name = \"b2\" }]\n",
                &[],
            ),
            (
                "[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\ntrack_bfd = [{ weight = 300 }]\n",
                &[
                    "5:14: error: vrrp.v1.track_bfd[0]: missing key \"name\" (a [bfd.NAME] session, e.g. name = \"b1\")",
                ],
            ),
            (
                "[bfd.b1]\nneighbor = \"x\"\nttl = 10\nmax_hops = 11\n",
                &[
                    "2:12: error: bfd.b1.neighbor: \"x\" is not an IP address",
                    "4:12: error: bfd.b1.max_hops: 11 is above ttl 10 (255 turns the check off)",
                ],
            ),
        ]);
    }
}
