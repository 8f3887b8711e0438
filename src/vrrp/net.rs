//! VRRP's sockets: raw IP protocol 112 (send and receive, IPv4 and IPv6, multicast or unicast) and the AF_PACKET socket for gratuitous ARP / unsolicited NA; bytes in and out, never decisions.
//!
//! Reference: `vrrp.md` §11. Two raw sockets per instance, as keepalived:
//!
//! * **send**: bound to the interface (`SO_BINDTODEVICE`) and to the source
//!   address (the interface's primary address or `unicast_src_ip`), so the
//!   source — which feeds the v3 checksum and breaks priority ties — is
//!   known; TTL / hop limit 255 for multicast and unicast, TOS / traffic
//!   class 0xc0, multicast loop off. IPv6 sets `IPV6_CHECKSUM` (offset 6).
//! * **receive**: bound to the interface. Multicast joins 224.0.0.18 /
//!   ff02::12 on it (`IP_MULTICAST_ALL` off); unicast binds the unicast
//!   source (`IP_FREEBIND`) so only adverts to it arrive. IPv4 raw sockets
//!   deliver the IP header, which gives TTL, source and destination; IPv6
//!   asks for `IPV6_HOPLIMIT` and `IPV6_PKTINFO` control messages, and the
//!   kernel verifies the checksum (`IPV6_CHECKSUM`).
//!
//! Both are non-blocking and driven by tokio's [`AsyncFd`]. Parsing of what
//! arrives (IPv4 header, control messages) is pure and unit-tested here; the
//! VRRP message itself is [`crate::vrrp::packet`]'s.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{
    Domain, InterfaceIndexOrAddress, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, Socket, Type,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::vrrp::packet::{IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6};

/// TOS / traffic class of adverts: network control, as keepalived.
pub const TOS_NETWORK_CONTROL: u32 = 0xc0;

/// Receive buffer of the raw socket: room for bursts of foreign or bad
/// packets between two turns of the instance's loop.
pub const RECEIVE_BUFFER: usize = 1 << 20;

/// Where an instance's sockets live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    pub interface: String,
    pub ifindex: u32,
    /// The source of our adverts (primary address, IPv6 link-local, or
    /// `unicast_src_ip`).
    pub source: IpAddr,
    /// Unicast mode: bind the receive socket to `source`, join no group.
    pub unicast: bool,
}

/// One packet from the receive socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6); `None` when the kernel did not say.
    pub hop_limit: Option<u8>,
    /// The VRRP message (IP header removed).
    pub payload: Vec<u8>,
}

/// Why a received IPv4 datagram could not even be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    #[error("ip packet of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("not an ipv4 header (version {0})")]
    Version(u8),
    #[error("ip protocol {0} is not vrrp")]
    Protocol(u8),
}

/// Splits a raw IPv4 datagram (as a raw socket delivers it) into addresses,
/// TTL and payload. The payload stops at the header's total length, so
/// trailing bytes from the link layer are not part of it.
pub fn parse_ipv4(datagram: &[u8]) -> Result<Received, IpError> {
    let &[version_ihl, ..] = datagram else {
        return Err(IpError::Short(0));
    };
    if version_ihl >> 4 != 4 {
        return Err(IpError::Version(version_ihl >> 4));
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if header_len < 20 || datagram.len() < header_len {
        return Err(IpError::Short(datagram.len()));
    }
    if datagram[9] != IPPROTO_VRRP {
        return Err(IpError::Protocol(datagram[9]));
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = total.clamp(header_len, datagram.len());
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    Ok(Received {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        hop_limit: Some(datagram[8]),
        payload: datagram[header_len..end].to_vec(),
    })
}

/// An instance's pair of raw protocol-112 sockets.
pub struct VrrpSockets {
    send: Socket,
    receive: AsyncFd<Socket>,
    ipv6: bool,
    ifindex: u32,
}

impl VrrpSockets {
    pub fn open(options: &SocketOptions) -> io::Result<VrrpSockets> {
        match options.source {
            IpAddr::V4(source) => open_v4(options, source),
            IpAddr::V6(source) => open_v6(options, source),
        }
    }

    /// The next packet of protocol 112 seen on the interface.
    pub async fn receive(&self) -> io::Result<Received> {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let mut control = [MaybeUninit::<u8>::uninit(); 256];
        loop {
            let mut guard = self.receive.readable().await?;
            let result = guard.try_io(|socket| {
                if self.ipv6 {
                    receive_v6(socket.get_ref(), &mut buffer, &mut control)
                } else {
                    let (len, _) = socket.get_ref().recv_from(&mut buffer)?;
                    // SAFETY: recv_from initialised the first `len` bytes.
                    let bytes = unsafe { assume_init(&buffer[..len]) };
                    parse_ipv4(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                }
            });
            match result {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// The next packet if one is already queued, without waiting (to drain
    /// a burst in one turn of the caller's loop).
    pub fn try_receive(&self) -> io::Result<Option<Received>> {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let mut control = [MaybeUninit::<u8>::uninit(); 256];
        let socket = self.receive.get_ref();
        let result = if self.ipv6 {
            receive_v6(socket, &mut buffer, &mut control)
        } else {
            socket.recv_from(&mut buffer).and_then(|(len, _)| {
                // SAFETY: recv_from initialised the first `len` bytes.
                let bytes = unsafe { assume_init(&buffer[..len]) };
                parse_ipv4(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
        };
        match result {
            Ok(received) => Ok(Some(received)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one VRRP message to `dst` (the group or a unicast peer).
    pub fn send(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let address = match dst {
            IpAddr::V4(v4) => SockAddr::from(SocketAddr::new(IpAddr::V4(v4), 0)),
            IpAddr::V6(v6) => {
                let scope = if v6.is_multicast() || v6.is_unicast_link_local() {
                    self.ifindex
                } else {
                    0
                };
                SockAddr::from(SocketAddrV6::new(v6, 0, 0, scope))
            }
        };
        let sent = self.send.send_to(payload, &address)?;
        if sent != payload.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", payload.len()),
            ));
        }
        Ok(())
    }
}

fn open_v4(options: &SocketOptions, source: Ipv4Addr) -> io::Result<VrrpSockets> {
    let protocol = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
    let send = Socket::new(Domain::IPV4, Type::RAW, protocol)?;
    send.bind_device(Some(options.interface.as_bytes()))?;
    send.set_ttl_v4(255)?;
    send.set_multicast_ttl_v4(255)?;
    send.set_tos_v4(TOS_NETWORK_CONTROL)?;
    send.set_multicast_loop_v4(false)?;
    send.set_multicast_if_v4(&source)?;
    send.set_freebind_v4(true)?;
    send.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(source), 0)))?;
    send.set_nonblocking(true)?;

    let receive = Socket::new(Domain::IPV4, Type::RAW, protocol)?;
    receive.bind_device(Some(options.interface.as_bytes()))?;
    receive.set_multicast_all_v4(false)?;
    if options.unicast {
        receive.set_freebind_v4(true)?;
        receive.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(source), 0)))?;
    } else {
        receive.join_multicast_v4_n(
            &VRRP_GROUP_V4,
            &InterfaceIndexOrAddress::Index(options.ifindex),
        )?;
    }
    receive.set_recv_buffer_size(RECEIVE_BUFFER)?;
    receive.set_nonblocking(true)?;
    Ok(VrrpSockets {
        send,
        receive: register(receive)?,
        ipv6: false,
        ifindex: options.ifindex,
    })
}

fn open_v6(options: &SocketOptions, source: Ipv6Addr) -> io::Result<VrrpSockets> {
    let protocol = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
    let scope = if source.is_unicast_link_local() {
        options.ifindex
    } else {
        0
    };
    let send = Socket::new(Domain::IPV6, Type::RAW, protocol)?;
    send.bind_device(Some(options.interface.as_bytes()))?;
    set_ipv6_checksum(&send)?;
    send.set_multicast_hops_v6(255)?;
    send.set_unicast_hops_v6(255)?;
    send.set_tclass_v6(TOS_NETWORK_CONTROL)?;
    send.set_multicast_loop_v6(false)?;
    send.set_multicast_if_v6(options.ifindex)?;
    send.set_freebind_v6(true)?;
    send.bind(&SockAddr::from(SocketAddrV6::new(source, 0, 0, scope)))?;
    send.set_nonblocking(true)?;

    let receive = Socket::new(Domain::IPV6, Type::RAW, protocol)?;
    receive.bind_device(Some(options.interface.as_bytes()))?;
    set_ipv6_checksum(&receive)?;
    receive.set_recv_hoplimit_v6(true)?;
    set_int_option(&receive, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    receive.set_multicast_all_v6(false)?;
    if options.unicast {
        receive.set_freebind_v6(true)?;
        receive.bind(&SockAddr::from(SocketAddrV6::new(source, 0, 0, scope)))?;
    } else {
        receive.join_multicast_v6(&VRRP_GROUP_V6, options.ifindex)?;
    }
    receive.set_recv_buffer_size(RECEIVE_BUFFER)?;
    receive.set_nonblocking(true)?;
    Ok(VrrpSockets {
        send,
        receive: register(receive)?,
        ipv6: true,
        ifindex: options.ifindex,
    })
}

fn receive_v6(
    socket: &Socket,
    buffer: &mut [MaybeUninit<u8>],
    control: &mut [MaybeUninit<u8>],
) -> io::Result<Received> {
    let mut from = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
    let mut buffers = [MaybeUninitSlice::new(buffer)];
    let (len, control_len) = {
        let mut message = MsgHdrMut::new()
            .with_addr(&mut from)
            .with_buffers(&mut buffers)
            .with_control(control);
        let len = socket.recvmsg(&mut message, 0)?;
        (len, message.control_len())
    };
    let src = from
        .as_socket_ipv6()
        .map(|a| *a.ip())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "source is not ipv6"))?;
    // SAFETY: recvmsg initialised `len` data bytes and `control_len` control bytes.
    let (payload, control) = unsafe {
        (
            assume_init(&buffers[0][..len]).to_vec(),
            assume_init(&control[..control_len]),
        )
    };
    let info = crate::cmsg::parse(control);
    Ok(Received {
        src: IpAddr::V6(src),
        dst: info.dst.unwrap_or(IpAddr::V6(VRRP_GROUP_V6)),
        hop_limit: info.ttl,
        payload,
    })
}

fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the Socket owns its fd; it stays open and refers to the same
    // socket until the AsyncFd (which owns the Socket) is dropped.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

fn set_ipv6_checksum(socket: &Socket) -> io::Result<()> {
    // The VRRP checksum is at offset 6 of the message.
    set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, 6)
}

fn set_int_option(socket: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid fd, a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// # Safety
/// Every byte of `bytes` must have been initialised.
unsafe fn assume_init(bytes: &[MaybeUninit<u8>]) -> &[u8] {
    // SAFETY: MaybeUninit<u8> has u8's layout; the caller vouches for init.
    unsafe { &*(bytes as *const [MaybeUninit<u8>] as *const [u8]) }
}

/// An AF_PACKET socket that sends whole Ethernet frames (GARP, NA) out of
/// one interface; it receives nothing (protocol 0).
pub struct FrameSender {
    socket: Socket,
}

impl FrameSender {
    pub fn open(ifindex: u32) -> io::Result<FrameSender> {
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
        let index = i32::try_from(ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index too large")
        })?;
        // SAFETY: the storage is zeroed and large enough for sockaddr_ll; we
        // fill its fields and report its exact length.
        let ((), address) = unsafe {
            SockAddr::try_init(|storage, len| {
                let ll = storage.cast::<libc::sockaddr_ll>();
                (*ll).sll_family = libc::AF_PACKET as u16;
                (*ll).sll_protocol = 0;
                (*ll).sll_ifindex = index;
                *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                Ok(())
            })
        }?;
        socket.bind(&address)?;
        socket.set_nonblocking(true)?;
        Ok(FrameSender { socket })
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.socket.send(frame)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header and message of golden vector §4.1.
    const V2_DATAGRAM: [u8; 40] = [
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x03, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x2c, 0x0a, 0x63, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x12, 0x21, 0x33, 0x96, 0x01, 0x00, 0x01, 0x3e, 0x35, 0x0a, 0x63,
        0x00, 0x32, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn ipv4_header_gives_addresses_ttl_and_payload() {
        let received = parse_ipv4(&V2_DATAGRAM).unwrap();
        assert_eq!(received.src, "10.99.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(received.dst, IpAddr::V4(VRRP_GROUP_V4));
        assert_eq!(received.hop_limit, Some(255));
        assert_eq!(received.payload, V2_DATAGRAM[20..].to_vec());
        let decoded = crate::vrrp::packet::decode(&received.payload, received.src, received.dst);
        assert!(decoded.is_ok(), "{decoded:?}");
    }

    #[test]
    fn ipv4_padding_beyond_total_length_is_cut() {
        let mut padded = V2_DATAGRAM.to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ipv4(&padded).unwrap().payload.len(), 20);
    }

    #[test]
    fn bad_ipv4_headers_are_errors_not_panics() {
        assert_eq!(parse_ipv4(&[]), Err(IpError::Short(0)));
        assert_eq!(parse_ipv4(&[0x65]), Err(IpError::Version(6)));
        assert_eq!(parse_ipv4(&[0x4f; 30]), Err(IpError::Short(30)));
        let mut udp = V2_DATAGRAM;
        udp[9] = 17;
        assert_eq!(parse_ipv4(&udp), Err(IpError::Protocol(17)));
        for len in 0..V2_DATAGRAM.len() {
            let _ = parse_ipv4(&V2_DATAGRAM[..len]);
        }
    }
}
