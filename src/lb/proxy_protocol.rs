//! The PROXY protocol (versions 1 and 2), pure: the header keepmon sends to tell a server the client's address (HAProxy's `send-proxy` / `send-proxy-v2`), and the parser of the header a front load balancer sends keepmon (`accept-proxy`); bytes in and out, no IO.

use std::net::{IpAddr, SocketAddr};

use crate::config::model::ProxyProtocol;

/// The version 2 signature (12 bytes).
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The header announcing a connection from `client` to `local` (the
/// address the client connected to). Mixed address families (an IPv4
/// client on an IPv6 listener is folded to IPv4 first) are sent as
/// `UNKNOWN` (v1) or `LOCAL` without addresses (v2).
pub fn header(version: ProxyProtocol, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let source = client.ip().to_canonical();
    let destination = local.ip().to_canonical();
    match version {
        ProxyProtocol::V1 => match (source, destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                format!("PROXY TCP4 {s} {d} {} {}\r\n", client.port(), local.port()).into_bytes()
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                format!("PROXY TCP6 {s} {d} {} {}\r\n", client.port(), local.port()).into_bytes()
            }
            _ => b"PROXY UNKNOWN\r\n".to_vec(),
        },
        ProxyProtocol::V2 => {
            let mut out = Vec::with_capacity(16 + 36);
            out.extend_from_slice(&V2_SIGNATURE);
            match (source, destination) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    // Version 2, PROXY command; TCP over IPv4; 12 bytes.
                    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                _ => {
                    // LOCAL command, no address block.
                    out.extend_from_slice(&[0x20, 0x00, 0, 0]);
                    return out;
                }
            }
            out.extend_from_slice(&client.port().to_be_bytes());
            out.extend_from_slice(&local.port().to_be_bytes());
            out
        }
    }
}

/// The longest header [`parse`] accepts: a v1 line is at most 107 bytes;
/// v2 is 16 bytes plus its length (addresses and TLVs), capped here.
pub const MAX_HEADER: usize = 16 + 512;

/// What the start of a client connection holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet to tell.
    Incomplete,
    /// Not a PROXY protocol header (or a malformed one).
    Invalid,
    /// A header of `len` bytes; the addresses it announces, or None for
    /// `LOCAL` / `UNKNOWN` (use the connection's own).
    Header {
        len: usize,
        source: Option<SocketAddr>,
        destination: Option<SocketAddr>,
    },
}

/// Parses a v1 or v2 header at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Parsed {
    let v2_prefix = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..v2_prefix] == V2_SIGNATURE[..v2_prefix] && !bytes.is_empty() && bytes[0] == b'\r' {
        return parse_v2(bytes);
    }
    let v1_prefix = bytes.len().min(6);
    if bytes[..v1_prefix] != b"PROXY "[..v1_prefix] {
        return Parsed::Invalid;
    }
    parse_v1(bytes)
}

fn parse_v1(bytes: &[u8]) -> Parsed {
    let Some(end) = bytes.windows(2).take(107).position(|w| w == b"\r\n") else {
        return if bytes.len() >= 107 {
            Parsed::Invalid
        } else {
            Parsed::Incomplete
        };
    };
    let Ok(line) = std::str::from_utf8(&bytes[..end]) else {
        return Parsed::Invalid;
    };
    let words: Vec<&str> = line.split(' ').collect();
    let len = end + 2;
    match words.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Parsed::Header {
            len,
            source: None,
            destination: None,
        },
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let parsed = (
                src.parse::<IpAddr>(),
                dst.parse::<IpAddr>(),
                sport.parse::<u16>(),
                dport.parse::<u16>(),
            );
            match parsed {
                (Ok(s), Ok(d), Ok(sp), Ok(dp)) if s.is_ipv4() == (*family == "TCP4") => {
                    Parsed::Header {
                        len,
                        source: Some(SocketAddr::new(s, sp)),
                        destination: Some(SocketAddr::new(d, dp)),
                    }
                }
                _ => Parsed::Invalid,
            }
        }
        _ => Parsed::Invalid,
    }
}

fn parse_v2(bytes: &[u8]) -> Parsed {
    if bytes.len() < 16 {
        return Parsed::Incomplete;
    }
    let (version_command, family) = (bytes[12], bytes[13]);
    let len = 16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if version_command >> 4 != 2 || len > MAX_HEADER {
        return Parsed::Invalid;
    }
    if bytes.len() < len {
        return Parsed::Incomplete;
    }
    let body = &bytes[16..len];
    let none = Parsed::Header {
        len,
        source: None,
        destination: None,
    };
    match (version_command & 0x0f, family) {
        (0, _) => none,
        (1, 0x11) if body.len() >= 12 => {
            let ip = |at: usize| IpAddr::from([body[at], body[at + 1], body[at + 2], body[at + 3]]);
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Parsed::Header {
                len,
                source: Some(SocketAddr::new(ip(0), port(8))),
                destination: Some(SocketAddr::new(ip(4), port(10))),
            }
        }
        (1, 0x21) if body.len() >= 36 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[at..at + 16]);
                IpAddr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Parsed::Header {
                len,
                source: Some(SocketAddr::new(ip(0), port(32))),
                destination: Some(SocketAddr::new(ip(16), port(34))),
            }
        }
        // UDP, unix sockets or unspecified: a valid header without
        // addresses keepmon can use.
        (1, _) => none,
        _ => Parsed::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn version_1_is_one_text_line() {
        assert_eq!(
            header(ProxyProtocol::V1, sa("192.0.2.7:40000"), sa("10.0.0.1:80")),
            b"PROXY TCP4 192.0.2.7 10.0.0.1 40000 80\r\n"
        );
        assert_eq!(
            header(
                ProxyProtocol::V1,
                sa("[2001:db8::7]:40000"),
                sa("[2001:db8::1]:443")
            ),
            b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n"
        );
        assert_eq!(
            header(
                ProxyProtocol::V1,
                sa("[::ffff:192.0.2.7]:1"),
                sa("10.0.0.1:80")
            ),
            b"PROXY TCP4 192.0.2.7 10.0.0.1 1 80\r\n",
            "mapped IPv4 is IPv4"
        );
        assert_eq!(
            header(ProxyProtocol::V1, sa("192.0.2.7:1"), sa("[2001:db8::1]:80")),
            b"PROXY UNKNOWN\r\n"
        );
    }

    #[test]
    fn what_is_sent_parses_back() {
        for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
            for (client, local) in [
                ("192.0.2.7:40000", "10.0.0.1:80"),
                ("[2001:db8::7]:1", "[2001:db8::1]:443"),
            ] {
                let mut bytes = header(version, sa(client), sa(local));
                let len = bytes.len();
                bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
                assert_eq!(
                    parse(&bytes),
                    Parsed::Header {
                        len,
                        source: Some(sa(client)),
                        destination: Some(sa(local))
                    },
                    "{version:?} {client}"
                );
                assert_eq!(parse(&bytes[..len - 1]), Parsed::Incomplete);
            }
        }
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                len: 15,
                source: None,
                destination: None
            }
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Invalid);
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n"),
            Parsed::Invalid
        );
        assert_eq!(parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"), Parsed::Invalid);
        assert_eq!(parse(b"PRO"), Parsed::Incomplete);
        assert_eq!(parse(&[b'x'; 200]), Parsed::Invalid);
    }

    #[test]
    fn version_2_is_binary() {
        let bytes = header(ProxyProtocol::V2, sa("192.0.2.7:40000"), sa("10.0.0.1:80"));
        let mut expected = V2_SIGNATURE.to_vec();
        expected.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 7, 10, 0, 0, 1]);
        expected.extend_from_slice(&40000u16.to_be_bytes());
        expected.extend_from_slice(&80u16.to_be_bytes());
        assert_eq!(bytes, expected);
        let v6 = header(
            ProxyProtocol::V2,
            sa("[2001:db8::7]:1"),
            sa("[2001:db8::1]:2"),
        );
        assert_eq!(v6.len(), 16 + 36);
        assert_eq!(&v6[12..16], &[0x21, 0x21, 0, 36]);
    }
}
