//! Linux ancillary data from `recvmsg` (pure): the TTL or hop limit and the destination address of a received datagram, as the VRRP and BFD sockets ask for them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the control messages said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlInfo {
    /// `IP_TTL` or `IPV6_HOPLIMIT`.
    pub ttl: Option<u8>,
    /// `IP_PKTINFO` or `IPV6_PKTINFO` (an IPv4-mapped address as given).
    pub dst: Option<IpAddr>,
}

/// Reads `IP_TTL`, `IPV6_HOPLIMIT`, `IP_PKTINFO` and `IPV6_PKTINFO` out of
/// a control buffer as Linux lays it out (`cmsghdr`, data aligned to the
/// word size). Malformed buffers yield what was read before the fault,
/// never a panic.
pub fn parse(control: &[u8]) -> ControlInfo {
    const WORD: usize = std::mem::size_of::<usize>();
    let header = std::mem::size_of::<libc::cmsghdr>();
    let align = |n: usize| n.div_ceil(WORD) * WORD;
    let mut out = ControlInfo::default();
    let mut offset = 0;
    while offset + header <= control.len() {
        let mut len_bytes = [0u8; WORD];
        len_bytes.copy_from_slice(&control[offset..offset + WORD]);
        let len = usize::from_ne_bytes(len_bytes);
        let int_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&control[at..at + 4]);
            i32::from_ne_bytes(b)
        };
        let level = int_at(offset + WORD);
        let kind = int_at(offset + WORD + 4);
        if len < header || offset + len > control.len() {
            break;
        }
        let data = &control[offset + align(header)..(offset + len).max(offset + align(header))];
        let int = || {
            (data.len() >= 4)
                .then(|| i32::from_ne_bytes([data[0], data[1], data[2], data[3]]))
                .and_then(|v| u8::try_from(v).ok())
        };
        match (level, kind) {
            (libc::IPPROTO_IP, libc::IP_TTL) => out.ttl = int().or(out.ttl),
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => out.ttl = int().or(out.ttl),
            (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= 12 => {
                out.dst = Some(IpAddr::V4(Ipv4Addr::new(
                    data[8], data[9], data[10], data[11],
                )));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if data.len() >= 16 => {
                let mut octets = [0; 16];
                octets.copy_from_slice(&data[..16]);
                out.dst = Some(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => {}
        }
        offset += align(len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One control message as the kernel lays it out.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        const WORD: usize = std::mem::size_of::<usize>();
        let header = std::mem::size_of::<libc::cmsghdr>();
        let len = header + data.len();
        let mut out = Vec::new();
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&level.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.resize(header.div_ceil(WORD) * WORD, 0);
        out.extend_from_slice(data);
        out.resize(len.div_ceil(WORD) * WORD, 0);
        out
    }

    #[test]
    fn control_messages_give_ttl_and_destination() {
        let mut control = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &255i32.to_ne_bytes());
        let mut info = vec![0u8; 12];
        info[8..12].copy_from_slice(&[10, 0, 0, 1]);
        control.extend(cmsg(libc::IPPROTO_IP, libc::IP_PKTINFO, &info));
        assert_eq!(
            parse(&control),
            ControlInfo {
                ttl: Some(255),
                dst: Some("10.0.0.1".parse().unwrap())
            }
        );
        let mut control = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &64i32.to_ne_bytes(),
        );
        let group: Ipv6Addr = "ff02::12".parse().unwrap();
        let mut info = group.octets().to_vec();
        info.extend_from_slice(&3u32.to_ne_bytes());
        control.extend(cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info));
        assert_eq!(
            parse(&control),
            ControlInfo {
                ttl: Some(64),
                dst: Some(IpAddr::V6(group))
            }
        );
        // Truncated or garbage buffers: no panic.
        for cut in 0..control.len() {
            let _ = parse(&control[..cut]);
        }
        assert_eq!(parse(&[0xff; 40]), ControlInfo::default());
    }
}
