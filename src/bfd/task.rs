//! The BFD edge: one task for all configured sessions, owning the receive socket (UDP 3784, every address, TTL and destination read per packet) and one send socket per session; feeds [`Session::step`] and carries out its actions; publishes each session's state on a `watch` channel; never decides a transition itself.
//!
//! As keepalived's BFD process: a session's packets leave from `source`
//! (a random port in 49152–65535) or from an address the kernel picks,
//! with TTL `ttl` (255; hop limit 64 for IPv6) to the neighbour's port
//! 3784. A received packet goes to the session whose discriminator it
//! names, or, while it names none, to the session of its source address
//! (and destination, when the session has a `source`). A session whose
//! `max_hops` is not 255 drops packets whose TTL is below
//! `ttl − max_hops` (single hop: exactly 255).

use std::collections::BTreeMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bfd::packet::{self, State};
use crate::bfd::session::{Action, Input, Session, SessionConfig};
use crate::config::model::BfdSession;

/// The BFD control port (RFC 5881).
pub const CONTROL_PORT: u16 = 3784;
/// How long to wait before retrying a socket that could not be opened.
pub const RETRY_SOCKET: Duration = Duration::from_secs(1);

/// One session's state as trackers and `vrrp show` see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdStatus {
    pub state: State,
    /// Up as keepalived's VRRP process is told (see [`Session::reported_up`]).
    pub up: bool,
}

/// Every session's status, by name.
pub type BfdStates = BTreeMap<String, BfdStatus>;

/// Runs the sessions `configs` holds until `cancel`; their states go to
/// `states`. A new set of sessions (a reload) keeps every session whose
/// settings did not change running with its state; changed and added
/// ones start Down, removed ones stop.
pub async fn run(
    mut configs: watch::Receiver<BTreeMap<String, BfdSession>>,
    states: Arc<watch::Sender<BfdStates>>,
    cancel: CancellationToken,
) {
    let origin = Instant::now();
    let mut runs: Vec<Run> = Vec::new();
    let mut receive: Option<tokio::net::UdpSocket> = None;
    let mut retry_at = Instant::now();
    let mut logs = crate::ratelimit::LogLimit::new(Duration::from_secs(30));
    let mut wanted: Option<BTreeMap<String, BfdSession>> =
        Some(configs.borrow_and_update().clone());
    loop {
        if let Some(sessions) = wanted.take() {
            runs = reconcile(std::mem::take(&mut runs), sessions);
            publish(&runs, &states);
            retry_at = Instant::now();
        }
        if runs.is_empty() {
            // Nothing to run: no socket held, wait for sessions.
            receive = None;
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = configs.changed() => match changed {
                    Ok(()) => wanted = Some(configs.borrow_and_update().clone()),
                    Err(_) => return,
                },
            }
            continue;
        }
        if Instant::now() >= retry_at {
            retry_at = Instant::now() + RETRY_SOCKET;
            if receive.is_none() {
                match open_receive() {
                    Ok(socket) => receive = Some(socket),
                    Err(e) => {
                        tracing::error!(port = CONTROL_PORT, error = %e, "bfd: cannot open the listening socket; retrying")
                    }
                }
            }
            for run in &mut runs {
                if run.socket.is_none() {
                    match open_send(&run.config) {
                        Ok(socket) => run.socket = Some(socket),
                        Err(e) => {
                            tracing::error!(bfd = %run.config.name, error = %e, "bfd: cannot open the output socket; retrying")
                        }
                    }
                }
                if !run.started && run.socket.is_some() {
                    run.started = true;
                    let actions = run.session.step(origin.elapsed(), Input::Start);
                    run.execute(actions);
                }
            }
        }
        let deadline = runs
            .iter()
            .filter_map(|r| r.session.next_deadline())
            .min()
            .map(|d| origin + d)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let socket_retry = if receive.is_none() || runs.iter().any(|r| r.socket.is_none()) {
            retry_at
        } else {
            Instant::now() + Duration::from_secs(3600)
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            changed = configs.changed() => match changed {
                Ok(()) => wanted = Some(configs.borrow_and_update().clone()),
                Err(_) => return,
            },
            _ = tokio::time::sleep_until(deadline) => {
                let now = origin.elapsed();
                for run in &mut runs {
                    let actions = run.session.step(now, Input::Timer);
                    run.execute(actions);
                }
                publish(&runs, &states);
            }
            _ = tokio::time::sleep_until(socket_retry) => {}
            received = receive_one(receive.as_ref()) => {
                match received {
                    Ok(received) => {
                        let now = origin.elapsed();
                        if let Some(run) = deliver(&mut runs, &received) {
                            let actions = run.session.step(now, Input::Packet(received.packet));
                            run.execute(actions);
                            publish(&runs, &states);
                        }
                    }
                    Err(e) => {
                        if logs.allow("receive", Instant::now()) {
                            tracing::warn!(error = %e, "bfd: receive failed (logged at most every 30 s)");
                        }
                    }
                }
            }
        }
    }
}

/// A datagram as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: Option<IpAddr>,
    /// 0 when the kernel gave none (keepalived then skips the check).
    pub ttl: u8,
    pub packet: packet::ControlPacket,
}

/// keepalived's TTL check (`bfd_check_packet_ttl`): false drops the packet.
pub fn ttl_acceptable(received_ttl: u8, ttl: u8, max_hops: u8) -> bool {
    max_hops == u8::MAX
        || received_ttl == 0
        || u16::from(max_hops) + u16::from(received_ttl) >= u16::from(ttl)
}

/// Which session (index into `sessions`) a packet belongs to.
pub fn find_session<'a>(
    sessions: impl Iterator<Item = (&'a BfdSession, u32)>,
    received: &Received,
) -> Option<usize> {
    let your = received.packet.your_discr;
    sessions
        .enumerate()
        .find(|(_, (config, local_discr))| {
            if your != 0 {
                *local_discr == your
            } else {
                config.neighbor == received.src
                    && config
                        .source
                        .is_none_or(|source| received.dst.is_none_or(|dst| dst == source))
            }
        })
        .map(|(index, _)| index)
}

struct Run {
    config: BfdSession,
    session: Session,
    socket: Option<UdpSocket>,
    send_failed: bool,
    /// `Input::Start` was given (once its output socket is open).
    started: bool,
}

/// The runs for `sessions`: unchanged ones kept as they are, the others new.
fn reconcile(old: Vec<Run>, sessions: BTreeMap<String, BfdSession>) -> Vec<Run> {
    let mut old: BTreeMap<String, Run> = old
        .into_iter()
        .map(|run| (run.config.name.clone(), run))
        .collect();
    sessions
        .into_values()
        .map(|config| match old.remove(&config.name) {
            Some(run) if run.config == config => run,
            _ => {
                tracing::info!(bfd = %config.name, neighbor = %config.neighbor, "bfd session started");
                Run {
                    session: Session::new(
                        SessionConfig {
                            min_rx_us: config.min_rx_us,
                            min_tx_us: config.min_tx_us,
                            idle_tx_us: config.idle_tx_us,
                            multiplier: config.multiplier,
                            passive: config.passive,
                        },
                        fastrand::u64(..),
                    ),
                    socket: None,
                    send_failed: false,
                    started: false,
                    config,
                }
            }
        })
        .collect()
}

impl Run {
    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(packet) => self.send(&packet::encode(&packet)),
                Action::StateChanged {
                    from,
                    to,
                    diag,
                    reported_up,
                } => {
                    if to == State::Up {
                        tracing::info!(bfd = %self.config.name, from = from.name(), "bfd: entering Up state");
                    } else if from == State::Up {
                        tracing::warn!(bfd = %self.config.name, to = to.name(), diagnostic = packet::diag::name(diag), up_for_trackers = reported_up, "bfd: leaving Up state");
                    } else {
                        tracing::debug!(bfd = %self.config.name, from = from.name(), to = to.name(), diagnostic = packet::diag::name(diag), "bfd: state changed");
                    }
                }
                Action::DetectionTime { now_us, was_us } => {
                    tracing::info!(bfd = %self.config.name, detection_us = now_us, was_us, "bfd: detection time changed")
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let Some(socket) = &self.socket else {
            return;
        };
        let to = SocketAddr::new(self.config.neighbor, CONTROL_PORT);
        match socket.send_to(bytes, to) {
            Ok(_) => self.send_failed = false,
            Err(e) => {
                if !self.send_failed {
                    tracing::warn!(bfd = %self.config.name, neighbor = %self.config.neighbor, error = %e, "bfd: error sending packet");
                }
                self.send_failed = true;
            }
        }
    }
}

/// The session a checked packet goes to, after the TTL check.
fn deliver<'a>(runs: &'a mut [Run], received: &Received) -> Option<&'a mut Run> {
    let index = find_session(
        runs.iter()
            .map(|r| (&r.config, r.session.local_discriminator())),
        received,
    );
    let Some(index) = index else {
        tracing::debug!(src = %received.src, your_discriminator = received.packet.your_discr, "bfd: no session for packet");
        return None;
    };
    let run = &mut runs[index];
    if !ttl_acceptable(received.ttl, run.config.ttl, run.config.max_hops) {
        tracing::debug!(bfd = %run.config.name, ttl = received.ttl, "bfd: packet TTL too low; discarded");
        return None;
    }
    Some(run)
}

fn publish(runs: &[Run], states: &watch::Sender<BfdStates>) {
    let now: BfdStates = runs
        .iter()
        .map(|r| {
            (
                r.config.name.clone(),
                BfdStatus {
                    state: r.session.state(),
                    up: r.session.reported_up(),
                },
            )
        })
        .collect();
    states.send_if_modified(|current| {
        if *current == now {
            false
        } else {
            *current = now;
            true
        }
    });
}

/// `[::]:3784` accepting IPv4 too, or `0.0.0.0:3784` without IPv6.
fn open_receive() -> io::Result<tokio::net::UdpSocket> {
    let socket = match Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)) {
        Ok(socket) => {
            socket.set_only_v6(false)?;
            set_int_option(&socket, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
            set_int_option(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
            socket.set_recv_hoplimit_v6(true)?;
            set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            socket.bind(&SockAddr::from(SocketAddrV6::new(
                Ipv6Addr::UNSPECIFIED,
                CONTROL_PORT,
                0,
                0,
            )))?;
            socket
        }
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            set_int_option(&socket, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
            set_int_option(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
            socket.bind(&SockAddr::from(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                CONTROL_PORT,
            )))?;
            socket
        }
        Err(e) => return Err(e),
    };
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(UdpSocket::from(socket))
}

/// A session's output socket: TTL set, bound to `source` on a random port
/// in 49152–65535 when it has one.
fn open_send(config: &BfdSession) -> io::Result<UdpSocket> {
    let domain = if config.neighbor.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if config.neighbor.is_ipv4() {
        socket.set_ttl_v4(u32::from(config.ttl))?;
    } else {
        socket.set_unicast_hops_v6(u32::from(config.ttl))?;
    }
    if let Some(source) = config.source {
        const FIRST: u16 = 49152;
        let start = fastrand::u16(FIRST..=u16::MAX);
        let mut port = start;
        loop {
            match socket.bind(&SockAddr::from(SocketAddr::new(source, port))) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    port = if port == u16::MAX { FIRST } else { port + 1 };
                    if port == start {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from(socket))
}

async fn receive_one(socket: Option<&tokio::net::UdpSocket>) -> io::Result<Received> {
    let Some(socket) = socket else {
        return std::future::pending().await;
    };
    loop {
        socket.readable().await?;
        let datagram = socket.try_io(Interest::READABLE, || recv_datagram(socket));
        match datagram {
            Ok((bytes, src, control)) => match packet::decode(&bytes) {
                Ok(packet) => {
                    let info = crate::cmsg::parse(&control);
                    return Ok(Received {
                        src: unmap(src),
                        dst: info.dst.map(unmap),
                        ttl: info.ttl.unwrap_or(0),
                        packet,
                    });
                }
                Err(e) => {
                    tracing::debug!(src = %unmap(src), error = %e, "bfd: discarding bogus packet")
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn recv_datagram(socket: &tokio::net::UdpSocket) -> io::Result<(Vec<u8>, IpAddr, Vec<u8>)> {
    let mut buffer = [MaybeUninit::<u8>::uninit(); 512];
    let mut control = [MaybeUninit::<u8>::uninit(); 256];
    let mut from = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
    let mut buffers = [MaybeUninitSlice::new(&mut buffer)];
    let (len, control_len, truncated) = {
        let mut message = MsgHdrMut::new()
            .with_addr(&mut from)
            .with_buffers(&mut buffers)
            .with_control(&mut control);
        let len = SockRef::from(socket).recvmsg(&mut message, 0)?;
        (len, message.control_len(), message.flags().is_truncated())
    };
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message truncated",
        ));
    }
    let src = from
        .as_socket()
        .map(|a| a.ip())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "source is not an IP address"))?;
    // SAFETY: recvmsg initialised `len` data bytes and `control_len` control
    // bytes; MaybeUninit<u8> has u8's layout.
    let (bytes, control) = unsafe {
        (
            (*(&buffers[0][..len] as *const [MaybeUninit<u8>] as *const [u8])).to_vec(),
            (*(&control[..control_len] as *const [MaybeUninit<u8>] as *const [u8])).to_vec(),
        )
    };
    Ok((bytes, src, control))
}

fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn set_int_option(socket: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diag::Location;
    use crate::config::model::Origin;

    fn session(name: &str, neighbor: &str, source: Option<&str>) -> BfdSession {
        BfdSession {
            name: name.to_string(),
            neighbor: neighbor.parse().unwrap(),
            source: source.map(|s| s.parse().unwrap()),
            min_rx_us: 10_000,
            min_tx_us: 10_000,
            idle_tx_us: 1_000_000,
            multiplier: 5,
            passive: false,
            ttl: 255,
            max_hops: 0,
            origin: Origin(Location::file_only(&std::sync::Arc::from(
                std::path::Path::new("t"),
            ))),
        }
    }

    fn received(src: &str, dst: &str, your: u32) -> Received {
        Received {
            src: src.parse().unwrap(),
            dst: Some(dst.parse().unwrap()),
            ttl: 255,
            packet: packet::ControlPacket {
                diag: 0,
                state: if your == 0 { State::Down } else { State::Up },
                poll: false,
                final_: false,
                control_plane_independent: false,
                demand: false,
                detect_mult: 3,
                my_discr: 9,
                your_discr: your,
                desired_min_tx: 1000,
                required_min_rx: 1000,
                required_min_echo_rx: 0,
            },
        }
    }

    #[test]
    fn packets_find_their_session_by_discriminator_then_address() {
        let a = session("a", "10.0.0.2", None);
        let b = session("b", "10.0.0.3", Some("10.0.0.1"));
        let c = session("c", "10.0.0.3", Some("10.0.0.9"));
        let list = [(&a, 100), (&b, 200), (&c, 300)];
        let find = |r: &Received| find_session(list.iter().copied(), r);
        assert_eq!(find(&received("10.0.0.3", "10.0.0.1", 300)), Some(2));
        assert_eq!(find(&received("10.0.0.3", "10.0.0.1", 301)), None);
        assert_eq!(find(&received("10.0.0.2", "10.0.0.1", 0)), Some(0));
        assert_eq!(find(&received("10.0.0.3", "10.0.0.1", 0)), Some(1));
        assert_eq!(find(&received("10.0.0.3", "10.0.0.9", 0)), Some(2));
        assert_eq!(find(&received("10.0.0.3", "10.0.0.7", 0)), None);
        assert_eq!(find(&received("10.0.0.4", "10.0.0.1", 0)), None);
    }

    /// A reload keeps an unchanged session (and its state), restarts a
    /// changed one and drops a removed one.
    #[test]
    fn a_reload_keeps_unchanged_sessions() {
        let sessions = |list: &[BfdSession]| -> BTreeMap<String, BfdSession> {
            list.iter().map(|s| (s.name.clone(), s.clone())).collect()
        };
        let a = session("a", "10.0.0.2", None);
        let b = session("b", "10.0.0.3", None);
        let c = session("c", "10.0.0.4", None);
        let runs = reconcile(Vec::new(), sessions(&[a.clone(), b.clone(), c]));
        let discr = |runs: &[Run], name: &str| {
            runs.iter()
                .find(|r| r.config.name == name)
                .map(|r| r.session.local_discriminator())
        };
        let (a_before, b_before) = (discr(&runs, "a"), discr(&runs, "b"));
        let mut b_changed = b.clone();
        b_changed.multiplier = 3;
        let runs = reconcile(runs, sessions(&[a, b_changed]));
        assert_eq!(runs.len(), 2);
        assert_eq!(discr(&runs, "a"), a_before);
        assert_ne!(discr(&runs, "b"), b_before);
        assert_eq!(discr(&runs, "c"), None);
    }

    #[test]
    fn ttl_check_as_keepalived() {
        // Single hop: only 255 passes.
        assert!(ttl_acceptable(255, 255, 0));
        assert!(!ttl_acceptable(254, 255, 0));
        // max_hops 2: 253 and up.
        assert!(ttl_acceptable(253, 255, 2));
        assert!(!ttl_acceptable(252, 255, 2));
        // No TTL reported, or max_hops 255: no check.
        assert!(ttl_acceptable(0, 255, 0));
        assert!(ttl_acceptable(1, 255, 255));
        // IPv6 default hop limit 64.
        assert!(ttl_acceptable(64, 64, 0));
        assert!(!ttl_acceptable(63, 64, 0));
    }

    #[test]
    fn ipv4_mapped_addresses_are_unmapped() {
        let mapped: Ipv6Addr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(
            unmap(IpAddr::V6(mapped)),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(unmap(v6), v6);
    }
}
