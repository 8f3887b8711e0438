//! The PROXY protocol header (HAProxy's `send-proxy` / `send-proxy-v2`, versions 1 and 2) that tells a server the client's address when keepmon relays its connection (pure): bytes out, no IO.

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
