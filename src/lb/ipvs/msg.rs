//! IPVS generic-netlink messages (pure): requests to bytes, kernel replies to values; framing by netlink-packet-core/-generic, the IPVS attributes are ours.
//!
//! Numbers follow `include/uapi/linux/ip_vs.h` (see `reference/lb.md` §3).
//! Requests are built the way the kernel's `ip_vs_genl_parse_service` /
//! `ip_vs_genl_parse_dest` read them: a service is keyed by family,
//! protocol, address and port; a full entry adds scheduler, flags, timeout
//! and netmask; a destination adds forwarding method, weight and thresholds.
//! Nested attributes carry no `NLA_F_NESTED` flag, as the kernel emits them
//! and as ipvsadm sends them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, Nla, NlaBuffer, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

/// The generic netlink family name and version.
pub const FAMILY: &str = "IPVS";
pub const VERSION: u8 = 1;

pub const CMD_NEW_SERVICE: u8 = 1;
pub const CMD_SET_SERVICE: u8 = 2;
pub const CMD_DEL_SERVICE: u8 = 3;
pub const CMD_GET_SERVICE: u8 = 4;
pub const CMD_NEW_DEST: u8 = 5;
pub const CMD_SET_DEST: u8 = 6;
pub const CMD_DEL_DEST: u8 = 7;
pub const CMD_GET_DEST: u8 = 8;

const CMD_ATTR_SERVICE: u16 = 1;
const CMD_ATTR_DEST: u16 = 2;

const SVC_AF: u16 = 1;
const SVC_PROTOCOL: u16 = 2;
const SVC_ADDR: u16 = 3;
const SVC_PORT: u16 = 4;
const SVC_FWMARK: u16 = 5;
const SVC_SCHED_NAME: u16 = 6;
const SVC_FLAGS: u16 = 7;
const SVC_TIMEOUT: u16 = 8;
const SVC_NETMASK: u16 = 9;
const SVC_STATS: u16 = 10;
const SVC_STATS64: u16 = 12;

const DEST_ADDR: u16 = 1;
const DEST_PORT: u16 = 2;
const DEST_FWD_METHOD: u16 = 3;
const DEST_WEIGHT: u16 = 4;
const DEST_U_THRESH: u16 = 5;
const DEST_L_THRESH: u16 = 6;
const DEST_ACTIVE_CONNS: u16 = 7;
const DEST_INACT_CONNS: u16 = 8;
const DEST_PERSIST_CONNS: u16 = 9;
const DEST_STATS: u16 = 10;
const DEST_ADDR_FAMILY: u16 = 11;
const DEST_STATS64: u16 = 12;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;

/// Service flag: persistent (sticky) service.
pub const SVC_F_PERSISTENT: u32 = 0x1;
/// Service flag the kernel sets itself; never compared.
pub const SVC_F_HASHED: u32 = 0x2;
/// `IP_VS_SVC_F_SCHED1`, which the `mh` scheduler reads as `mh-fallback`
/// (`IP_VS_SVC_F_SCHED_MH_FALLBACK` in linux/ip_vs.h).
pub const SVC_F_SCHED_MH_FALLBACK: u32 = 0x8;
/// `IP_VS_SVC_F_SCHED2`: `mh-port`.
pub const SVC_F_SCHED_MH_PORT: u32 = 0x10;

/// Forwarding methods (`IP_VS_CONN_F_*`, mask 0x7).
pub const FWD_MASQ: u32 = 0;
pub const FWD_LOCALNODE: u32 = 1;
pub const FWD_TUNNEL: u32 = 2;
pub const FWD_ROUTE: u32 = 3;
pub const FWD_MASK: u32 = 0x7;

/// A virtual service as the kernel keys it: address family plus either a
/// firewall mark or protocol, address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    /// `IPPROTO_TCP` or `IPPROTO_UDP` (others appear only in foreign
    /// entries); 0 for a firewall-mark service.
    pub protocol: u16,
    /// For a firewall-mark service the unspecified address of its family
    /// (`0.0.0.0:0` or `[::]:0`): only the family is sent.
    pub addr: SocketAddr,
    /// The firewall mark; 0: an address service.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

impl ServiceKey {
    /// The key of an address service.
    pub fn addr(protocol: u16, addr: SocketAddr) -> ServiceKey {
        ServiceKey {
            protocol,
            addr,
            fwmark: 0,
        }
    }

    /// The key of the firewall-mark service `mark` of one address family.
    pub fn fwmark(mark: u32, ipv6: bool) -> ServiceKey {
        let ip: IpAddr = if ipv6 {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        ServiceKey {
            protocol: 0,
            addr: SocketAddr::new(ip, 0),
            fwmark: mark,
        }
    }
}

impl std::fmt::Display for ServiceKey {
    /// `tcp 10.0.0.1:80`, `udp [::1]:53`, `fwmark 7`, `fwmark 7 IPv6`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fwmark != 0 {
            write!(f, "fwmark {}", self.fwmark)?;
            if self.addr.is_ipv6() {
                f.write_str(" IPv6")?;
            }
            return Ok(());
        }
        match self.protocol {
            IPPROTO_TCP => write!(f, "tcp {}", self.addr),
            IPPROTO_UDP => write!(f, "udp {}", self.addr),
            p => write!(f, "proto {p} {}", self.addr),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A full service entry (what NEW/SET_SERVICE send).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAttrs {
    pub key: ServiceKey,
    pub scheduler: String,
    pub flags: u32,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// IPv4: the mask (0xffffffff); IPv6: the prefix length (128).
    pub netmask: u32,
}

/// A real server (destination) entry (what NEW/SET_DEST send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestAttrs {
    pub addr: SocketAddr,
    /// One of the `FWD_*` values.
    pub forward: u32,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

/// Traffic counters (`IPVS_STATS_ATTR_*`); from STATS64 when present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A service as a GET_SERVICE dump reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub attrs: ServiceAttrs,
    pub stats: Stats,
}

/// A destination as a GET_DEST dump reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestEntry {
    pub attrs: DestAttrs,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

/// One IPVS request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    NewService(ServiceAttrs),
    SetService(ServiceAttrs),
    DelService(ServiceKey),
    NewDest(ServiceKey, DestAttrs),
    SetDest(ServiceKey, DestAttrs),
    DelDest(ServiceKey, SocketAddr),
    /// Dump every service.
    GetServices,
    /// Dump the destinations of one service.
    GetDests(ServiceKey),
}

impl Request {
    pub fn command(&self) -> u8 {
        match self {
            Request::NewService(_) => CMD_NEW_SERVICE,
            Request::SetService(_) => CMD_SET_SERVICE,
            Request::DelService(_) => CMD_DEL_SERVICE,
            Request::NewDest(..) => CMD_NEW_DEST,
            Request::SetDest(..) => CMD_SET_DEST,
            Request::DelDest(..) => CMD_DEL_DEST,
            Request::GetServices => CMD_GET_SERVICE,
            Request::GetDests(_) => CMD_GET_DEST,
        }
    }

    /// Dumps answer with many messages ending in NLMSG_DONE; the rest
    /// answer with one ACK or error.
    pub fn is_dump(&self) -> bool {
        matches!(self, Request::GetServices | Request::GetDests(_))
    }

    fn attrs(&self) -> Vec<Attr> {
        let service = |attrs: Vec<Attr>| Attr::Nested(CMD_ATTR_SERVICE, attrs);
        let dest = |attrs: Vec<Attr>| Attr::Nested(CMD_ATTR_DEST, attrs);
        match self {
            Request::NewService(s) | Request::SetService(s) => vec![service(full_service(s))],
            Request::DelService(k) | Request::GetDests(k) => vec![service(service_key(k))],
            Request::NewDest(k, d) | Request::SetDest(k, d) => {
                vec![service(service_key(k)), dest(full_dest(d))]
            }
            Request::DelDest(k, addr) => vec![service(service_key(k)), dest(dest_key(*addr))],
            Request::GetServices => Vec::new(),
        }
    }

    /// The whole netlink message: nlmsghdr, genlmsghdr, attributes.
    pub fn encode(&self, family_id: u16, seq: u32) -> Vec<u8> {
        let payload = IpvsPayload {
            cmd: self.command(),
            attrs: self.attrs(),
        };
        let mut genl = GenlMessage::from_payload(payload);
        genl.set_resolved_family_id(family_id);
        let flags = if self.is_dump() {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        finish(NetlinkPayload::InnerMessage(genl), flags, seq)
    }
}

fn finish<I: netlink_packet_core::NetlinkSerializable>(
    payload: NetlinkPayload<I>,
    flags: u16,
    seq: u32,
) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(header, payload);
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

/// CTRL_CMD_GETFAMILY for "IPVS": the answer carries the family id.
pub fn get_family(seq: u32) -> Vec<u8> {
    let ctrl = GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY.to_string())],
    };
    finish(
        NetlinkPayload::InnerMessage(GenlMessage::from_payload(ctrl)),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
    )
}

fn family_of(ip: IpAddr) -> u16 {
    if ip.is_ipv4() { AF_INET } else { AF_INET6 }
}

/// `union nf_inet_addr`: 16 bytes, IPv4 in the first four.
fn inet_addr(ip: IpAddr) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
    out
}

fn service_key(k: &ServiceKey) -> Vec<Attr> {
    if k.fwmark != 0 {
        // As ipvsadm and keepalived send it: the family and the mark only.
        return vec![
            Attr::U16(SVC_AF, family_of(k.addr.ip())),
            Attr::U32(SVC_FWMARK, k.fwmark),
        ];
    }
    vec![
        Attr::U16(SVC_AF, family_of(k.addr.ip())),
        Attr::U16(SVC_PROTOCOL, k.protocol),
        Attr::Bytes(SVC_ADDR, inet_addr(k.addr.ip())),
        Attr::Be16(SVC_PORT, k.addr.port()),
    ]
}

fn full_service(s: &ServiceAttrs) -> Vec<Attr> {
    let mut attrs = service_key(&s.key);
    let mut flags = s.flags.to_ne_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    attrs.extend([
        Attr::Str(SVC_SCHED_NAME, s.scheduler.clone()),
        Attr::Bytes(SVC_FLAGS, flags),
        Attr::U32(SVC_TIMEOUT, s.timeout),
        Attr::U32(SVC_NETMASK, s.netmask),
    ]);
    attrs
}

fn dest_key(addr: SocketAddr) -> Vec<Attr> {
    vec![
        Attr::Bytes(DEST_ADDR, inet_addr(addr.ip())),
        Attr::Be16(DEST_PORT, addr.port()),
        Attr::U16(DEST_ADDR_FAMILY, family_of(addr.ip())),
    ]
}

fn full_dest(d: &DestAttrs) -> Vec<Attr> {
    let mut attrs = dest_key(d.addr);
    attrs.extend([
        Attr::U32(DEST_FWD_METHOD, d.forward & FWD_MASK),
        Attr::U32(DEST_WEIGHT, d.weight),
        Attr::U32(DEST_U_THRESH, d.upper_threshold),
        Attr::U32(DEST_L_THRESH, d.lower_threshold),
    ]);
    attrs
}

/// The full-entry netmask for a family: all ones for IPv4, /128 for IPv6.
pub fn default_netmask(ip: IpAddr) -> u32 {
    if ip.is_ipv4() { u32::MAX } else { 128 }
}

/// The service netmask attribute for a persistence prefix length: for IPv4
/// the mask in network byte order (the kernel's `__be32`, as ipvsadm `-M`
/// sends it), for IPv6 the prefix length itself. The prefix is clamped to
/// the family's width.
pub fn prefix_netmask(ip: IpAddr, prefix: u8) -> u32 {
    if ip.is_ipv4() {
        let bits = u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0);
        u32::from_ne_bytes(bits.to_be_bytes())
    } else {
        u32::from(prefix.min(128))
    }
}

/// One attribute we send.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Attr {
    U16(u16, u16),
    /// Network byte order (ports).
    Be16(u16, u16),
    U32(u16, u32),
    Bytes(u16, Vec<u8>),
    /// NUL-terminated.
    Str(u16, String),
    Nested(u16, Vec<Attr>),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::U16(..) | Attr::Be16(..) => 2,
            Attr::U32(..) => 4,
            Attr::Bytes(_, b) => b.len(),
            Attr::Str(_, s) => s.len() + 1,
            Attr::Nested(_, attrs) => attrs.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attr::U16(k, _)
            | Attr::Be16(k, _)
            | Attr::U32(k, _)
            | Attr::Bytes(k, _)
            | Attr::Str(k, _)
            | Attr::Nested(k, _) => *k,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Attr::U16(_, v) => buf.copy_from_slice(&v.to_ne_bytes()),
            Attr::Be16(_, v) => buf.copy_from_slice(&v.to_be_bytes()),
            Attr::U32(_, v) => buf.copy_from_slice(&v.to_ne_bytes()),
            Attr::Bytes(_, b) => buf.copy_from_slice(b),
            Attr::Str(_, s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            Attr::Nested(_, attrs) => attrs.as_slice().emit(buf),
        }
    }
}

/// The IPVS generic netlink payload we send.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IpvsPayload {
    cmd: u8,
    attrs: Vec<Attr>,
}

impl GenlFamily for IpvsPayload {
    fn family_name() -> &'static str {
        FAMILY
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        VERSION
    }
}

impl Emitable for IpvsPayload {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

/// A kernel answer (one netlink message of a datagram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// NLMSG_ERROR with code 0.
    Ack,
    /// NLMSG_ERROR: a negative errno, as the kernel sent it.
    Error(i32),
    /// NLMSG_DONE: the end of a dump.
    Done,
    Service(ServiceEntry),
    Dest(DestEntry),
    /// A service entry we do not manage (fwmark, unknown family), skipped.
    Foreign(String),
    /// The family id from a CTRL_CMD_GETFAMILY answer.
    Family(u16),
}

/// A reply and the request sequence number it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub seq: u32,
    pub reply: Reply,
}

/// The IPVS payload as we parse it: command and raw attribute bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RawPayload {
    cmd: u8,
    attrs: Vec<u8>,
}

impl ParseableParametrized<[u8], GenlHeader> for RawPayload {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(RawPayload {
            cmd: header.cmd,
            attrs: buf.to_vec(),
        })
    }
}

/// Every netlink message of one datagram from the IPVS family socket.
/// `ctrl` parses the payload as a controller answer (family resolve).
fn split(buf: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + 16 <= buf.len() {
        let len =
            u32::from_ne_bytes(buf[offset..offset + 4].try_into().unwrap_or_default()) as usize;
        if len < 16 || offset + len > buf.len() {
            return Err(DecodeError::from(format!(
                "netlink message length {len} at offset {offset} does not fit a {}-byte datagram",
                buf.len()
            )));
        }
        out.push(&buf[offset..offset + len]);
        offset += (len + 3) & !3;
    }
    Ok(out)
}

/// Parse a datagram of answers to IPVS requests.
pub fn parse_replies(buf: &[u8]) -> Result<Vec<Answer>, DecodeError> {
    let mut out = Vec::new();
    for msg in split(buf)? {
        let parsed = NetlinkMessage::<GenlMessage<RawPayload>>::deserialize(msg)?;
        let seq = parsed.header.sequence_number;
        let reply = match parsed.payload {
            NetlinkPayload::Done(_) => Reply::Done,
            NetlinkPayload::Error(e) => match e.code {
                None => Reply::Ack,
                Some(code) => Reply::Error(code.get()),
            },
            NetlinkPayload::InnerMessage(genl) => parse_ipvs(&genl.payload)?,
            _ => continue,
        };
        out.push(Answer { seq, reply });
    }
    Ok(out)
}

/// Parse a datagram of answers to [`get_family`].
pub fn parse_family_replies(buf: &[u8]) -> Result<Vec<Answer>, DecodeError> {
    let mut out = Vec::new();
    for msg in split(buf)? {
        let parsed = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(msg)?;
        let seq = parsed.header.sequence_number;
        let reply = match parsed.payload {
            NetlinkPayload::Done(_) => Reply::Done,
            NetlinkPayload::Error(e) => match e.code {
                None => Reply::Ack,
                Some(code) => Reply::Error(code.get()),
            },
            NetlinkPayload::InnerMessage(genl) => {
                match genl.payload.nlas.iter().find_map(|a| match a {
                    GenlCtrlAttrs::FamilyId(id) => Some(*id),
                    _ => None,
                }) {
                    Some(id) => Reply::Family(id),
                    None => continue,
                }
            }
            _ => continue,
        };
        out.push(Answer { seq, reply });
    }
    Ok(out)
}

/// Attributes of one nesting level, by kind (last one wins).
fn attrs_of(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, DecodeError> {
    let mut out = Vec::new();
    for nla in NlasIterator::new(buf) {
        let nla: NlaBuffer<&[u8]> = nla?;
        let kind = nla.kind();
        let len = nla.value_length();
        let start = 4;
        let bytes = nla.into_inner();
        out.push((kind, &bytes[start..start + len]));
    }
    Ok(out)
}

fn find<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs
        .iter()
        .rev()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| *v)
}

fn need<'a>(attrs: &[(u16, &'a [u8])], kind: u16, what: &str) -> Result<&'a [u8], DecodeError> {
    find(attrs, kind).ok_or_else(|| DecodeError::from(format!("IPVS reply without {what}")))
}

fn u16_ne(b: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(
        b.get(..2)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| DecodeError::from("short u16"))?,
    ))
}

fn u16_be(b: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(
        b.get(..2)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| DecodeError::from("short be16"))?,
    ))
}

fn u32_ne(b: &[u8]) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(
        b.get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| DecodeError::from("short u32"))?,
    ))
}

fn u64_ne(b: &[u8]) -> Result<u64, DecodeError> {
    Ok(u64::from_ne_bytes(
        b.get(..8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| DecodeError::from("short u64"))?,
    ))
}

fn ip_of(af: u16, b: &[u8]) -> Result<IpAddr, DecodeError> {
    match af {
        AF_INET => {
            let o: [u8; 4] = b
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| DecodeError::from("short IPv4 address"))?;
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        AF_INET6 => {
            let o: [u8; 16] = b
                .get(..16)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| DecodeError::from("short IPv6 address"))?;
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        other => Err(DecodeError::from(format!("unknown address family {other}"))),
    }
}

/// Counters: STATS64 (u64 values) when present, else STATS (u32 values).
fn stats_of(attrs: &[(u16, &[u8])], s32: u16, s64: u16) -> Result<Stats, DecodeError> {
    let (buf, wide) = match (find(attrs, s64), find(attrs, s32)) {
        (Some(b), _) => (b, true),
        (None, Some(b)) => (b, false),
        (None, None) => return Ok(Stats::default()),
    };
    let mut st = Stats::default();
    for (kind, value) in attrs_of(buf)? {
        let v = if wide {
            u64_ne(value)
        } else {
            u32_ne(value).map(u64::from)
        };
        let slot = match kind {
            1 => &mut st.conns,
            2 => &mut st.inpkts,
            3 => &mut st.outpkts,
            4 => &mut st.inbytes,
            5 => &mut st.outbytes,
            6 => &mut st.cps,
            7 => &mut st.inpps,
            8 => &mut st.outpps,
            9 => &mut st.inbps,
            10 => &mut st.outbps,
            _ => continue, // PAD and later additions
        };
        *slot = v?;
    }
    Ok(st)
}

fn parse_ipvs(payload: &RawPayload) -> Result<Reply, DecodeError> {
    let top = attrs_of(&payload.attrs)?;
    if let Some(svc) = find(&top, CMD_ATTR_SERVICE) {
        let a = attrs_of(svc)?;
        let af = u16_ne(need(&a, SVC_AF, "service family")?)?;
        if af != AF_INET && af != AF_INET6 {
            return Ok(Reply::Foreign(format!("service of address family {af}")));
        }
        let fwmark = find(&a, SVC_FWMARK).map(u32_ne).transpose()?.unwrap_or(0);
        let key = if fwmark != 0 {
            // The kernel reports a mark service by family and mark only.
            ServiceKey::fwmark(fwmark, af == AF_INET6)
        } else {
            let ip = ip_of(af, need(&a, SVC_ADDR, "service address")?)?;
            let port = u16_be(need(&a, SVC_PORT, "service port")?)?;
            ServiceKey::addr(
                u16_ne(need(&a, SVC_PROTOCOL, "service protocol")?)?,
                SocketAddr::new(ip, port),
            )
        };
        let flags = find(&a, SVC_FLAGS).map(u32_ne).transpose()?.unwrap_or(0);
        let scheduler = find(&a, SVC_SCHED_NAME)
            .map(|b| String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or(b)).into_owned())
            .unwrap_or_default();
        return Ok(Reply::Service(ServiceEntry {
            attrs: ServiceAttrs {
                key,
                scheduler,
                flags,
                timeout: find(&a, SVC_TIMEOUT).map(u32_ne).transpose()?.unwrap_or(0),
                netmask: find(&a, SVC_NETMASK).map(u32_ne).transpose()?.unwrap_or(0),
            },
            stats: stats_of(&a, SVC_STATS, SVC_STATS64)?,
        }));
    }
    if let Some(dest) = find(&top, CMD_ATTR_DEST) {
        let a = attrs_of(dest)?;
        let af = find(&a, DEST_ADDR_FAMILY)
            .map(u16_ne)
            .transpose()?
            .unwrap_or(AF_INET);
        let ip = ip_of(af, need(&a, DEST_ADDR, "destination address")?)?;
        let port = u16_be(need(&a, DEST_PORT, "destination port")?)?;
        let get = |kind| {
            find(&a, kind)
                .map(u32_ne)
                .transpose()
                .map(|v| v.unwrap_or(0))
        };
        return Ok(Reply::Dest(DestEntry {
            attrs: DestAttrs {
                addr: SocketAddr::new(ip, port),
                forward: get(DEST_FWD_METHOD)? & FWD_MASK,
                weight: get(DEST_WEIGHT)?,
                upper_threshold: get(DEST_U_THRESH)?,
                lower_threshold: get(DEST_L_THRESH)?,
            },
            active_conns: get(DEST_ACTIVE_CONNS)?,
            inactive_conns: get(DEST_INACT_CONNS)?,
            persistent_conns: get(DEST_PERSIST_CONNS)?,
            stats: stats_of(&a, DEST_STATS, DEST_STATS64)?,
        }));
    }
    Ok(Reply::Foreign(format!(
        "IPVS message with command {}",
        payload.cmd
    )))
}

/// A kernel errno for a request, as an operator reads it.
pub fn explain(request: &Request, errno: i32) -> String {
    let errno = errno.abs();
    let what = match request {
        Request::NewService(s) | Request::SetService(s) if errno == ENOENT => {
            return format!(
                "scheduler \"{}\" is not available in this kernel (no ip_vs_{} module?)",
                s.scheduler, s.scheduler
            );
        }
        Request::NewDest(_, d) | Request::SetDest(_, d) if errno == EINVAL => {
            return format!(
                "the kernel refused real server {} (EINVAL: the address must be unicast and routable on this director)",
                d.addr
            );
        }
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    };
    match errno {
        1 => "operation not permitted (EPERM): IPVS needs root or CAP_NET_ADMIN".to_string(),
        3 => format!("no such service in the kernel (ESRCH): {what}"),
        17 => format!("already present in the kernel (EEXIST): {what}"),
        _ => what,
    }
}

const ENOENT: i32 = 2;
const EINVAL: i32 = 22;

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::addr(IPPROTO_TCP, "10.0.0.1:80".parse().unwrap())
    }

    /// nlmsghdr: len, type, flags, seq, pid (all native endian; x86 is little).
    fn nlhdr(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(len.to_le_bytes());
        v.extend(ty.to_le_bytes());
        v.extend(flags.to_le_bytes());
        v.extend(seq.to_le_bytes());
        v.extend(0u32.to_le_bytes());
        v
    }

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((value.len() + 4) as u16).to_le_bytes());
        v.extend(kind.to_le_bytes());
        v.extend(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn key_attrs() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(nla(1, &[2, 0])); // AF_INET
        v.extend(nla(2, &[6, 0])); // TCP
        v.extend(nla(3, &[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        v.extend(nla(4, &[0, 80])); // be16
        v
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn getfamily_is_byte_exact() {
        let got = get_family(7);
        let mut body = vec![3, 2, 0, 0]; // CTRL_CMD_GETFAMILY, version 2
        body.extend(nla(2, b"IPVS\0")); // CTRL_ATTR_FAMILY_NAME
        let mut want = nlhdr(16 + body.len() as u32, 0x10, 0x5, 7);
        want.extend(body);
        assert_eq!(got, want);
        assert_eq!(got.len(), 32);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn new_service_is_byte_exact() {
        let req = Request::NewService(ServiceAttrs {
            key: key(),
            scheduler: "wrr".into(),
            flags: SVC_F_PERSISTENT,
            timeout: 300,
            netmask: u32::MAX,
        });
        let got = req.encode(0x22, 9);
        let mut svc = key_attrs();
        svc.extend(nla(6, b"wrr\0"));
        svc.extend(nla(7, &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
        svc.extend(nla(8, &300u32.to_le_bytes()));
        svc.extend(nla(9, &[0xff, 0xff, 0xff, 0xff]));
        let mut body = vec![1, 1, 0, 0]; // IPVS_CMD_NEW_SERVICE, version 1
        body.extend(nla(1, &svc));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 9); // REQUEST|ACK
        want.extend(body);
        assert_eq!(got, want);
        // 16 + 4 + 4 + (8+8+20+8 key) + 8 + 12 + 8 + 8
        assert_eq!(got.len(), 104);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn persistence_netmask_is_sent_as_ipvsadm_sends_it() {
        // IPv4: the mask in network byte order (ipvsadm -M 255.255.255.0).
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let req = Request::SetService(ServiceAttrs {
            key: key(),
            scheduler: "wlc".into(),
            flags: SVC_F_PERSISTENT,
            timeout: 600,
            netmask: prefix_netmask(v4, 24),
        });
        let mut svc = key_attrs();
        svc.extend(nla(6, b"wlc\0"));
        svc.extend(nla(7, &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
        svc.extend(nla(8, &600u32.to_le_bytes()));
        svc.extend(nla(9, &[255, 255, 255, 0]));
        let mut body = vec![2, 1, 0, 0]; // IPVS_CMD_SET_SERVICE
        body.extend(nla(1, &svc));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 4);
        want.extend(body);
        assert_eq!(req.encode(0x22, 4), want);

        assert_eq!(prefix_netmask(v4, 32), u32::MAX);
        assert_eq!(prefix_netmask(v4, 16).to_ne_bytes(), [255, 255, 0, 0]);
        assert_eq!(prefix_netmask(v4, 1).to_ne_bytes(), [128, 0, 0, 0]);
        // IPv6: the prefix length as a host-order number.
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(prefix_netmask(v6, 64), 64);
        assert_eq!(prefix_netmask(v6, 200), 128);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn dest_requests_are_byte_exact() {
        let dest = DestAttrs {
            addr: "10.0.0.2:8080".parse().unwrap(),
            forward: FWD_ROUTE,
            weight: 3,
            upper_threshold: 100,
            lower_threshold: 10,
        };
        let mut dkey = Vec::new();
        dkey.extend(nla(1, &[10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        dkey.extend(nla(2, &[0x1f, 0x90])); // 8080 big endian
        dkey.extend(nla(11, &[2, 0]));
        let mut full = dkey.clone();
        full.extend(nla(3, &3u32.to_le_bytes()));
        full.extend(nla(4, &3u32.to_le_bytes()));
        full.extend(nla(5, &100u32.to_le_bytes()));
        full.extend(nla(6, &10u32.to_le_bytes()));

        for (req, cmd, dattrs) in [
            (Request::NewDest(key(), dest), 5u8, &full),
            (Request::SetDest(key(), dest), 6, &full),
            (Request::DelDest(key(), dest.addr), 7, &dkey),
        ] {
            let mut body = vec![cmd, 1, 0, 0];
            body.extend(nla(1, &key_attrs()));
            body.extend(nla(2, dattrs));
            let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 1);
            want.extend(body);
            assert_eq!(req.encode(0x22, 1), want, "{req:?}");
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn del_service_and_dumps_are_byte_exact() {
        let mut body = vec![3, 1, 0, 0];
        body.extend(nla(1, &key_attrs()));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 2);
        want.extend(body);
        assert_eq!(Request::DelService(key()).encode(0x22, 2), want);

        // GET_SERVICE dump: REQUEST|DUMP (0x301), no attributes.
        let mut want = nlhdr(20, 0x22, 0x301, 3);
        want.extend([4, 1, 0, 0]);
        assert_eq!(Request::GetServices.encode(0x22, 3), want);

        let mut body = vec![8, 1, 0, 0];
        body.extend(nla(1, &key_attrs()));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x301, 4);
        want.extend(body);
        assert_eq!(Request::GetDests(key()).encode(0x22, 4), want);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_service_key_uses_the_whole_address_and_prefix_netmask() {
        let k = ServiceKey::addr(IPPROTO_UDP, "[2001:db8::1]:53".parse().unwrap());
        let got = Request::DelService(k).encode(0x22, 5);
        let mut svc = Vec::new();
        svc.extend(nla(1, &[10, 0]));
        svc.extend(nla(2, &[17, 0]));
        svc.extend(nla(3, &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()));
        svc.extend(nla(4, &[0, 53]));
        let mut body = vec![3, 1, 0, 0];
        body.extend(nla(1, &svc));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 5);
        want.extend(body);
        assert_eq!(got, want);
        assert_eq!(default_netmask(k.addr.ip()), 128);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_a_service_dump_with_stats64_then_done() {
        let mut stats = Vec::new();
        stats.extend(nla(11, &[])); // PAD
        stats.extend(nla(1, &5u64.to_le_bytes()));
        stats.extend(nla(4, &1234u64.to_le_bytes()));
        let mut svc = key_attrs();
        svc.extend(nla(6, b"wlc\0"));
        svc.extend(nla(7, &[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
        svc.extend(nla(8, &0u32.to_le_bytes()));
        svc.extend(nla(9, &[0xff; 4]));
        svc.extend(nla(10, &nla(1, &99u32.to_le_bytes())));
        svc.extend(nla(12, &stats));
        let mut body = vec![1, 1, 0, 0];
        body.extend(nla(1, &svc));
        let mut dgram = nlhdr(16 + body.len() as u32, 0x22, 0x2, 3);
        dgram.extend(body);
        dgram.extend(nlhdr(20, 3, 0x2, 3));
        dgram.extend(0u32.to_le_bytes());

        let got = parse_replies(&dgram).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].reply,
            Reply::Service(ServiceEntry {
                attrs: ServiceAttrs {
                    key: key(),
                    scheduler: "wlc".into(),
                    flags: SVC_F_HASHED,
                    timeout: 0,
                    netmask: u32::MAX,
                },
                stats: Stats {
                    conns: 5,
                    inbytes: 1234,
                    ..Stats::default()
                },
            })
        );
        assert_eq!(
            got[1],
            Answer {
                seq: 3,
                reply: Reply::Done
            }
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_a_dest_with_32_bit_stats_and_errors() {
        let mut d = Vec::new();
        d.extend(nla(1, &[10, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        d.extend(nla(2, &[0, 80]));
        d.extend(nla(3, &0u32.to_le_bytes()));
        d.extend(nla(4, &2u32.to_le_bytes()));
        d.extend(nla(5, &0u32.to_le_bytes()));
        d.extend(nla(6, &0u32.to_le_bytes()));
        d.extend(nla(7, &4u32.to_le_bytes()));
        d.extend(nla(8, &6u32.to_le_bytes()));
        d.extend(nla(9, &0u32.to_le_bytes()));
        d.extend(nla(
            10,
            &[nla(1, &7u32.to_le_bytes()), nla(2, &70u32.to_le_bytes())].concat(),
        ));
        d.extend(nla(11, &[2, 0]));
        let mut body = vec![5, 1, 0, 0];
        body.extend(nla(2, &d));
        let mut dgram = nlhdr(16 + body.len() as u32, 0x22, 0x2, 8);
        dgram.extend(body);
        // NLMSG_ERROR -3 (ESRCH) echoing a 16-byte header.
        dgram.extend(nlhdr(36, 2, 0, 9));
        dgram.extend((-3i32).to_le_bytes());
        dgram.extend(nlhdr(20, 0x22, 0x5, 9));
        // NLMSG_ERROR 0 = ACK.
        dgram.extend(nlhdr(36, 2, 0, 10));
        dgram.extend(0i32.to_le_bytes());
        dgram.extend(nlhdr(20, 0x22, 0x5, 10));

        let got = parse_replies(&dgram).unwrap();
        assert_eq!(
            got[0].reply,
            Reply::Dest(DestEntry {
                attrs: DestAttrs {
                    addr: "10.0.0.3:80".parse().unwrap(),
                    forward: FWD_MASQ,
                    weight: 2,
                    upper_threshold: 0,
                    lower_threshold: 0,
                },
                active_conns: 4,
                inactive_conns: 6,
                persistent_conns: 0,
                stats: Stats {
                    conns: 7,
                    inpkts: 70,
                    ..Stats::default()
                },
            })
        );
        assert_eq!(
            got[1],
            Answer {
                seq: 9,
                reply: Reply::Error(-3)
            }
        );
        assert_eq!(
            got[2],
            Answer {
                seq: 10,
                reply: Reply::Ack
            }
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_the_family_id_and_fwmark_services() {
        let mut body = vec![1, 2, 0, 0]; // CTRL_CMD_NEWFAMILY
        body.extend(nla(2, b"IPVS\0"));
        body.extend(nla(1, &0x23u16.to_le_bytes()));
        let mut dgram = nlhdr(16 + body.len() as u32, 0x10, 0, 1);
        dgram.extend(body);
        assert_eq!(
            parse_family_replies(&dgram).unwrap()[0].reply,
            Reply::Family(0x23)
        );

        let mut svc = Vec::new();
        svc.extend(nla(1, &[2, 0]));
        svc.extend(nla(5, &42u32.to_le_bytes()));
        let mut body = vec![1, 1, 0, 0];
        body.extend(nla(1, &svc));
        let mut dgram = nlhdr(16 + body.len() as u32, 0x23, 2, 1);
        dgram.extend(body);
        let Reply::Service(entry) = &parse_replies(&dgram).unwrap()[0].reply else {
            panic!("a fwmark service entry");
        };
        assert_eq!(entry.attrs.key, ServiceKey::fwmark(42, false));
        assert_eq!(entry.attrs.key.to_string(), "fwmark 42");
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn fwmark_services_are_keyed_by_family_and_mark_only() {
        // As `ipvsadm -A -f 7 -s rr` and keepalived's `virtual_server
        // fwmark 7` send it: AF and FWMARK, no protocol, address or port.
        let req = Request::NewService(ServiceAttrs {
            key: ServiceKey::fwmark(7, false),
            scheduler: "rr".into(),
            flags: 0,
            timeout: 0,
            netmask: u32::MAX,
        });
        let mut svc = Vec::new();
        svc.extend(nla(1, &[2, 0])); // AF_INET
        svc.extend(nla(5, &7u32.to_le_bytes()));
        svc.extend(nla(6, b"rr\0"));
        svc.extend(nla(7, &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
        svc.extend(nla(8, &0u32.to_le_bytes()));
        svc.extend(nla(9, &[0xff, 0xff, 0xff, 0xff]));
        let mut body = vec![1, 1, 0, 0];
        body.extend(nla(1, &svc));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 3);
        want.extend(body);
        assert_eq!(req.encode(0x22, 3), want);

        // A real server of an IPv6 mark service: the service part is
        // AF_INET6 and the mark; the destination as for any service.
        let dest = DestAttrs {
            addr: "[2001:db8::2]:0".parse().unwrap(),
            forward: FWD_ROUTE,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let got = Request::NewDest(ServiceKey::fwmark(7, true), dest).encode(0x22, 4);
        let mut svc = Vec::new();
        svc.extend(nla(1, &[10, 0])); // AF_INET6
        svc.extend(nla(5, &7u32.to_le_bytes()));
        let mut d = Vec::new();
        d.extend(nla(
            1,
            &"2001:db8::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        ));
        d.extend(nla(2, &[0, 0]));
        d.extend(nla(11, &[10, 0]));
        d.extend(nla(3, &3u32.to_le_bytes()));
        d.extend(nla(4, &1u32.to_le_bytes()));
        d.extend(nla(5, &0u32.to_le_bytes()));
        d.extend(nla(6, &0u32.to_le_bytes()));
        let mut body = vec![5, 1, 0, 0]; // IPVS_CMD_NEW_DEST
        body.extend(nla(1, &svc));
        body.extend(nla(2, &d));
        let mut want = nlhdr(16 + body.len() as u32, 0x22, 0x5, 4);
        want.extend(body);
        assert_eq!(got, want);

        // The owned-services file keeps its old form for address keys.
        let json = serde_json::to_string(&key()).unwrap();
        assert!(!json.contains("fwmark"), "{json}");
        let back: ServiceKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, key());
        let mark = ServiceKey::fwmark(7, true);
        let back: ServiceKey =
            serde_json::from_str(&serde_json::to_string(&mark).unwrap()).unwrap();
        assert_eq!(back, mark);
    }

    #[test]
    fn truncated_datagrams_are_errors_not_panics() {
        let req = Request::GetServices.encode(1, 1);
        assert!(parse_replies(&req[..req.len() - 1]).is_err());
        let mut bad = req.clone();
        bad[0] = 200;
        assert!(parse_replies(&bad).is_err());
        assert!(parse_replies(&[]).unwrap().is_empty());
    }

    #[test]
    fn kernel_errors_read_as_operator_messages() {
        let svc = ServiceAttrs {
            key: key(),
            scheduler: "nope".into(),
            flags: 0,
            timeout: 0,
            netmask: u32::MAX,
        };
        assert!(explain(&Request::NewService(svc), -2).contains("scheduler \"nope\""));
        assert!(explain(&Request::GetServices, -1).contains("CAP_NET_ADMIN"));
    }
}
