//! Interfaces and virtual addresses over rtnetlink: read a link's index, MAC, carrier and addresses; add and remove VIPs; never decides when.
//!
//! A thin synchronous edge (one `NETLINK_ROUTE` socket per call site, a few
//! small messages to the local kernel, microseconds each), so callers may
//! use it from async code without a blocking pool. No `ip` binary is run.
//! Reference: `vrrp.md` §8 (entering master: `RTM_NEWADDR`, `IFA_F_NODAD`
//! for IPv6) and §11.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::config::model::VirtualAddress;

/// What the kernel says about one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    /// All zeros when the link has no Ethernet address.
    pub mac: [u8; 6],
    /// Administratively up and with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub running: bool,
    /// IPv4 addresses, the primary (non-secondary) ones first.
    pub ipv4: Vec<Ipv4Addr>,
    /// IPv6 link-local addresses.
    pub ipv6_link_local: Vec<Ipv6Addr>,
}

impl Link {
    /// The address VRRP adverts come from: the primary IPv4 address, or the
    /// first IPv6 link-local address (RFC 5798 §5.1.2.1).
    pub fn primary(&self, ipv6: bool) -> Option<IpAddr> {
        if ipv6 {
            self.ipv6_link_local.first().copied().map(IpAddr::V6)
        } else {
            self.ipv4.first().copied().map(IpAddr::V4)
        }
    }
}

/// One rtnetlink conversation partner.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// The interface called `name`, with its addresses.
    pub fn link(&mut self, name: &str) -> io::Result<Link> {
        let links = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut found = None;
        for message in links {
            let RouteNetlinkMessage::NewLink(link) = message else {
                continue;
            };
            let is_it = link
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name));
            if !is_it {
                continue;
            }
            let mut mac = [0; 6];
            for attribute in &link.attributes {
                if let LinkAttribute::Address(bytes) = attribute
                    && bytes.len() == 6
                {
                    mac.copy_from_slice(bytes);
                }
            }
            let flags = link.header.flags;
            found = Some(Link {
                name: name.to_string(),
                index: link.header.index,
                mac,
                running: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
                ipv4: Vec::new(),
                ipv6_link_local: Vec::new(),
            });
        }
        let mut link = found.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {name:?}"),
            )
        })?;
        let mut secondary = Vec::new();
        for (address, flags) in self.addresses(link.index)? {
            match address {
                IpAddr::V4(v4) if flags.contains(AddressHeaderFlags::Secondary) => {
                    secondary.push(v4)
                }
                IpAddr::V4(v4) => link.ipv4.push(v4),
                IpAddr::V6(v6) if v6.is_unicast_link_local() => link.ipv6_link_local.push(v6),
                IpAddr::V6(_) => {}
            }
        }
        link.ipv4.extend(secondary);
        Ok(link)
    }

    /// The addresses on interface `index`, in the kernel's order.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(IpAddr, AddressHeaderFlags)>> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for message in replies {
            let RouteNetlinkMessage::NewAddress(address) = message else {
                continue;
            };
            if address.header.index != index {
                continue;
            }
            // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
            // peer on point-to-point links); IPv6 has only IFA_ADDRESS.
            let local = address.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let any = address.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(any) {
                out.push((ip, address.header.flags));
            }
        }
        Ok(out)
    }

    /// Whether `address` is on interface `index`.
    pub fn has_address(&mut self, index: u32, address: IpAddr) -> io::Result<bool> {
        Ok(self.addresses(index)?.iter().any(|(ip, _)| *ip == address))
    }

    /// Adds a VIP to interface `index`; `Ok(false)` when it was already there.
    pub fn add_address(&mut self, index: u32, vip: &VirtualAddress) -> io::Result<bool> {
        match self.request(
            RouteNetlinkMessage::NewAddress(address_message(index, vip)),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes a VIP from interface `index`; `Ok(false)` when it was not there.
    pub fn remove_address(&mut self, index: u32, vip: &VirtualAddress) -> io::Result<bool> {
        match self.request(
            RouteNetlinkMessage::DelAddress(address_message(index, vip)),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends one request and collects the replies up to the final ACK or
    /// `NLMSG_DONE`; a negative errno in the ACK becomes the error.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
        packet.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        packet.header.sequence_number = sequence;
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket.send(&buffer, 0)?;
        let mut replies = Vec::new();
        let mut receive = vec![0u8; 64 * 1024];
        // Bounded: a dump of a host with thousands of addresses is a few
        // hundred datagrams.
        for _ in 0..100_000 {
            let size = self.socket.recv(&mut &mut receive[..], 0)?;
            if let Some(end) = take_replies(&receive[..size], sequence, &mut replies) {
                return end.map(|()| replies);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "netlink reply never finished",
        ))
    }
}

/// Read one netlink datagram of replies to request `sequence` into
/// `replies` (messages of other requests are skipped). `Some(Ok)` once the
/// final ACK or `NLMSG_DONE` arrived, `Some(Err)` for a negative errno or a
/// datagram that does not parse, `None` when more datagrams follow. Pure:
/// the kernel's bytes are input like any other (fuzzed).
pub fn take_replies(
    datagram: &[u8],
    sequence: u32,
    replies: &mut Vec<RouteNetlinkMessage>,
) -> Option<io::Result<()>> {
    let mut offset = 0;
    while offset < datagram.len() {
        let reply: NetlinkMessage<RouteNetlinkMessage> =
            match NetlinkMessage::deserialize(&datagram[offset..]) {
                Ok(reply) => reply,
                Err(e) => {
                    return Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("netlink: {e}"),
                    )));
                }
            };
        let length = reply.header.length as usize;
        if reply.header.sequence_number != sequence {
            offset += length.max(1);
            continue;
        }
        match reply.payload {
            NetlinkPayload::Done(_) => return Some(Ok(())),
            NetlinkPayload::Error(error) => {
                return Some(match error.code {
                    None => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                });
            }
            NetlinkPayload::InnerMessage(inner) => replies.push(inner),
            _ => {}
        }
        if length == 0 {
            break;
        }
        offset += length;
    }
    None
}

fn address_message(index: u32, vip: &VirtualAddress) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = vip.prefix;
    message.header.scope = AddressScope::Universe;
    match vip.addr {
        IpAddr::V4(v4) => {
            message.header.family = AddressFamily::Inet;
            message
                .attributes
                .push(AddressAttribute::Local(IpAddr::V4(v4)));
            message
                .attributes
                .push(AddressAttribute::Address(IpAddr::V4(v4)));
        }
        IpAddr::V6(v6) => {
            message.header.family = AddressFamily::Inet6;
            // A VIP moving between routers must be usable at once.
            message.header.flags = AddressHeaderFlags::Nodad;
            if v6.is_unicast_link_local() {
                message.header.scope = AddressScope::Link;
            }
            message
                .attributes
                .push(AddressAttribute::Address(IpAddr::V6(v6)));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_messages_carry_prefix_scope_and_nodad() {
        let v4 = VirtualAddress {
            addr: "10.99.0.50".parse().unwrap(),
            prefix: 24,
            dev: None,
        };
        let message = address_message(7, &v4);
        assert_eq!(message.header.index, 7);
        assert_eq!(message.header.prefix_len, 24);
        assert_eq!(message.header.family, AddressFamily::Inet);
        assert!(
            message
                .attributes
                .contains(&AddressAttribute::Local(v4.addr))
        );
        let v6 = VirtualAddress {
            addr: "fe80::52".parse().unwrap(),
            prefix: 64,
            dev: None,
        };
        let message = address_message(7, &v6);
        assert_eq!(message.header.scope, AddressScope::Link);
        assert!(message.header.flags.contains(AddressHeaderFlags::Nodad));
    }
}
