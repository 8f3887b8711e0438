//! The built-in `ping` check of one host: ICMP echo through surge-ping (an unprivileged DGRAM socket where `ping_group_range` allows, RAW as root); never runs the `ping` binary.
//!
//! Semantics: up to `count` echo requests are sent one after another; each
//! waits up to `timeout` for its reply; the host is up at the first reply
//! (like `ping -c N` exiting 0 on any reply, and like fping's retries). A run
//! therefore takes at most `count × timeout` per host, hosts in parallel.

use std::io;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};

use super::{BuiltinOptions, HostStatus, show_duration};
use crate::config::model::PingCheck;

/// Echo payload size, as `ping`'s default.
const PAYLOAD: [u8; 56] = [0; 56];

const ECHO_REPLY_V4: u8 = 0;
const ECHO_REPLY_V6: u8 = 129;

/// A ping check plus the run's ICMP sockets, opened on first use and shared
/// by every host of the run (they close when the run ends).
pub(crate) struct Prepared {
    check: PingCheck,
    ipv6_only: bool,
    v4: OnceLock<Result<Client, String>>,
    v6: OnceLock<Result<Client, String>>,
}

impl Prepared {
    pub(crate) fn new(check: &PingCheck, options: &BuiltinOptions) -> Prepared {
        Prepared {
            check: check.clone(),
            ipv6_only: options.ipv6_only,
            v4: OnceLock::new(),
            v6: OnceLock::new(),
        }
    }

    /// `index` is the host's position in the run: it keeps the sequence
    /// numbers of a host listed twice apart.
    pub(crate) async fn check(&self, index: usize, host: &str) -> (HostStatus, Option<Duration>) {
        match self.probe(index, host).await {
            Ok(rtt) => (HostStatus::Ok, Some(rtt)),
            Err(reason) => (HostStatus::Fail { reason }, None),
        }
    }

    async fn probe(&self, index: usize, host: &str) -> Result<Duration, String> {
        let addr = resolve(host, self.ipv6_only).await?;
        let client = self.client(addr.is_ipv6())?;
        let mut pinger = client.pinger(addr, PingIdentifier(next_identifier())).await;
        pinger.timeout(self.check.timeout);
        let count = self.check.count.max(1);
        for attempt in 0..count {
            // Sequence numbers are 16 bits on the wire: truncation is intended.
            let seq = (index as u32).wrapping_mul(count).wrapping_add(attempt) as u16;
            match pinger.ping(PingSequence(seq), &PAYLOAD).await {
                Ok((packet, rtt)) => return reply(packet, rtt),
                Err(SurgeError::Timeout { .. }) => continue,
                Err(error) => return Err(format!("ping {addr}: {error}")),
            }
        }
        Err(format!(
            "no reply to {count} echo request{} ({} each)",
            if count == 1 { "" } else { "s" },
            show_duration(self.check.timeout)
        ))
    }

    /// Never clone the returned client: surge-ping's `Client::drop` marks
    /// the shared socket destroyed when any clone is dropped.
    fn client(&self, v6: bool) -> Result<&Client, String> {
        let (cell, kind) = if v6 {
            (&self.v6, ICMP::V6)
        } else {
            (&self.v4, ICMP::V4)
        };
        cell.get_or_init(|| {
            Client::new(&Config::builder().kind(kind).build()).map_err(|e| socket_error(&e))
        })
        .as_ref()
        .map_err(Clone::clone)
    }
}

fn reply(packet: IcmpPacket, rtt: Duration) -> Result<Duration, String> {
    let (kind, expected) = match &packet {
        IcmpPacket::V4(p) => (p.get_icmp_type().0, ECHO_REPLY_V4),
        IcmpPacket::V6(p) => (p.get_icmpv6_type().0, ECHO_REPLY_V6),
    };
    if kind == expected {
        Ok(rtt)
    } else {
        Err(format!("ICMP type {kind} instead of an echo reply"))
    }
}

/// The address to ping: the host itself when it is an address, else the
/// resolver's first IPv4 address (first IPv6 one with `-6`, or when there is
/// no IPv4 address).
async fn resolve(host: &str, ipv6_only: bool) -> Result<IpAddr, String> {
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Ok(addr);
    }
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .map(|a| a.ip())
        .collect();
    let v6 = addrs.iter().copied().find(IpAddr::is_ipv6);
    let chosen = if ipv6_only {
        v6
    } else {
        addrs.iter().copied().find(IpAddr::is_ipv4).or(v6)
    };
    chosen.ok_or_else(|| {
        format!(
            "cannot resolve {host}: no {}address",
            if ipv6_only { "IPv6 " } else { "" }
        )
    })
}

/// What to tell the operator when no ICMP socket can be opened.
pub(crate) fn socket_error(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::PermissionDenied {
        format!(
            "cannot open an ICMP socket ({error}): ping needs root (CAP_NET_RAW) or keepmon's group in sysctl net.ipv4.ping_group_range"
        )
    } else {
        format!("cannot open an ICMP socket: {error}")
    }
}

/// Identifiers for RAW sockets, which see every ICMP reply on the machine:
/// distinct per host check, seeded from the pid so two daemons differ.
fn next_identifier() -> u16 {
    static NEXT: OnceLock<AtomicU16> = OnceLock::new();
    // Only the low 16 bits of the pid matter: truncation is intended.
    NEXT.get_or_init(|| AtomicU16::new(std::process::id() as u16))
        .fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_say_what_is_needed() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let reason = socket_error(&denied);
        assert!(reason.contains("root"), "{reason}");
        assert!(reason.contains("net.ipv4.ping_group_range"), "{reason}");
        let other = socket_error(&io::Error::other("boom"));
        assert_eq!(other, "cannot open an ICMP socket: boom");
    }

    #[tokio::test]
    async fn addresses_are_not_resolved() {
        assert_eq!(
            resolve("127.0.0.1", false).await,
            Ok("127.0.0.1".parse().unwrap())
        );
        assert_eq!(resolve("::1", false).await, Ok("::1".parse().unwrap()));
    }
}
