//! The built-in `udp` check of one host, keepalived's `UDP_CHECK`: one datagram out, then an answer, silence or an ICMP error decides; never retries within a check.
//!
//! keepalived's rules (keepalived/check/check_udp.c and core/layer4.c,
//! 2.2.7), kept here:
//!
//! - Without a `payload` the datagram is 32 bytes of `keepalived check - `
//!   repeated.
//! - An ICMP destination unreachable (port, host, network: the connected
//!   socket's receive fails) fails the check; silence until the timeout
//!   passes unless a reply is required.
//! - A reply passes; with a reply pattern it must also be between
//!   `min_reply_length` and `max_reply_length` octets and agree with the
//!   pattern over the shorter of the two (wildcard nibbles aside). The
//!   reply is read into `max_reply_length + 1` octets, so a longer one
//!   fails the length test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{HostStatus, tcp};
use crate::config::model::UdpCheck;

/// keepalived's `UDP_BUFSIZE`: the default datagram's length.
const DEFAULT_PAYLOAD_LEN: usize = 32;

pub(crate) struct Prepared {
    check: UdpCheck,
    payload: Vec<u8>,
}

impl Prepared {
    pub(crate) fn new(check: &UdpCheck) -> Prepared {
        Prepared {
            check: check.clone(),
            payload: check.payload.clone().unwrap_or_else(default_payload),
        }
    }

    pub(crate) async fn check(&self, host: &str) -> (HostStatus, Option<Duration>) {
        let started = Instant::now();
        let socket = match self.send(host).await {
            Ok(socket) => socket,
            Err(reason) => return (HostStatus::Fail { reason }, None),
        };
        let mut reply = vec![0u8; usize::from(self.check.max_reply_length) + 1];
        match tokio::time::timeout(self.check.timeout, socket.recv(&mut reply)).await {
            Err(_) if self.check.require_reply => (HostStatus::Timeout, None),
            Err(_) => (HostStatus::Ok, None),
            Ok(Err(e)) => (
                HostStatus::Fail {
                    reason: format!("unreachable: {e}"),
                },
                None,
            ),
            Ok(Ok(n)) => match self.judge(&reply[..n]) {
                Ok(()) => (HostStatus::Ok, Some(started.elapsed())),
                Err(reason) => (HostStatus::Fail { reason }, None),
            },
        }
    }

    async fn send(&self, host: &str) -> Result<UdpSocket, String> {
        let (name, port) = super::split_host_port(host);
        let addr = resolve(name, port.unwrap_or(self.check.port)).await?;
        let local: IpAddr = if addr.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind((local, 0))
            .await
            .map_err(|e| format!("socket: {e}"))?;
        socket
            .connect(addr)
            .await
            .map_err(|e| format!("could not connect to {addr}: {e}"))?;
        socket
            .send(&self.payload)
            .await
            .map_err(|e| format!("send to {addr}: {e}"))?;
        Ok(socket)
    }

    /// keepalived's `check_udp_reply`, only when there is a pattern.
    fn judge(&self, reply: &[u8]) -> Result<(), String> {
        let Some(pattern) = &self.check.reply else {
            return Ok(());
        };
        let (min, max) = (
            usize::from(self.check.min_reply_length),
            usize::from(self.check.max_reply_length),
        );
        if reply.len() < min || reply.len() > max {
            return Err(format!(
                "reply of {} octets, not {min} to {max}",
                if reply.len() > max {
                    format!("more than {max}")
                } else {
                    reply.len().to_string()
                }
            ));
        }
        if !pattern.matches_prefix(reply) {
            return Err(format!(
                "reply {} does not match {}",
                tcp::preview(reply),
                pattern.to_hex()
            ));
        }
        Ok(())
    }
}

/// keepalived's `set_buf`: `keepalived check - ` repeated over 32 bytes.
fn default_payload() -> Vec<u8> {
    b"keepalived check - "
        .iter()
        .copied()
        .cycle()
        .take(DEFAULT_PAYLOAD_LEN)
        .collect()
}

/// The first address `host` resolves to (keepalived checks one address).
pub(crate) async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no addresses"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::HexPattern;

    fn check(reply: Option<&str>, min: u16, max: u16) -> Prepared {
        Prepared::new(&UdpCheck {
            port: 1,
            payload: None,
            require_reply: true,
            reply: reply.map(|r| HexPattern::parse(r, true).expect("pattern")),
            min_reply_length: min,
            max_reply_length: max,
            timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn the_default_payload_is_keepalived_s() {
        assert_eq!(
            default_payload(),
            b"keepalived check - keepalived c"
                .iter()
                .copied()
                .chain([b'h'])
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn replies_are_judged_as_keepalived_judges_them() {
        // No pattern: any reply, whatever its length.
        assert!(check(None, 10, 20).judge(b"x").is_ok());
        let p = check(Some("50 4f 4e 47"), 0, 255);
        assert!(p.judge(b"PONG").is_ok());
        assert!(p.judge(b"PONG and more").is_ok());
        // Shorter than the pattern: only the octets present are compared.
        assert!(p.judge(b"PO").is_ok());
        assert!(p.judge(b"PING").is_err());
        let wild = check(Some("5x xx 4e"), 0, 255);
        assert!(wild.judge(b"ZZN").is_ok());
        assert!(wild.judge(b"AZN").is_err());
        let lengths = check(Some("50"), 2, 3);
        assert!(lengths.judge(b"P").is_err());
        assert!(lengths.judge(b"PPP").is_ok());
        assert!(lengths.judge(b"PPPP").is_err());
    }
}
