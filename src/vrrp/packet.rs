//! VRRP wire codec (v2 RFC 3768, v3 RFC 5798/9568) plus gratuitous ARP and unsolicited NA frame builders; pure bytes, never sockets.
//!
//! [`encode`] produces the VRRP message only (the IP header is the kernel's
//! or the edge's); [`decode`] validates version, type, VRID, address count,
//! exact length and checksum, and never panics. Reference: `vrrp.md` §3–§5,
//! §9 (the golden vectors of §4 are the unit tests below).
//!
//! Checksums (§5):
//!
//! * v2: over the VRRP message only.
//! * v3 over IPv6: RFC 8200 pseudo-header + message (the kernel also does
//!   this with `IPV6_CHECKSUM`).
//! * v3 over IPv4: the RFCs disagree. keepalived (and FRR) include an IPv4
//!   pseudo-header; RFC 9568, Cisco, Juniper and keepalived's
//!   `v3_checksum_as_v2` do not. keepalived before 1.3.6 used the multicast
//!   group as the pseudo-header destination even for unicast. On receive
//!   every one of these forms is accepted and [`Decoded::checksum`] says
//!   which one matched; on send the form is [`ChecksumMode`], defaulting to
//!   keepalived's.
//!
//! Choices where the RFCs leave room:
//!
//! * v2 authentication type 0 decodes to `auth: None` whatever the
//!   authentication bytes hold (RFC 3768: ignored on receive); type 1
//!   (keepalived's `auth_type PASS`) keeps the 8 bytes for the caller to
//!   compare. Type 2 (IPsec AH) never appears inside a protocol-112 payload
//!   and is rejected like any other type.
//! * The 4 reserved bits above the v3 interval are ignored on receive
//!   (RFC 5798 §5.2.4) and sent as zero.
//! * An interval of 0 is rejected for both versions (RFC 9568 errata 8301 for
//!   v3; for v2 it can never match a configured interval).
//! * Trailing bytes are rejected, except zero bytes that could be Ethernet
//!   padding: an IPv4 packet under the 60-byte minimum frame carries at most
//!   26 payload bytes (keepalived tolerates the same padding). keepalived's
//!   `auth_hmac` trailer is therefore reported as trailing bytes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub use crate::config::model::{Vrid, VrrpVersion};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group of VRRP.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Length of a [`gratuitous_arp`] frame.
pub const GARP_FRAME_LEN: usize = 42;
/// Length of an [`unsolicited_na`] frame.
pub const NA_FRAME_LEN: usize = 86;

/// An advertisement interval, non-zero, stored in centiseconds whatever the
/// version. v2 carries whole seconds (1–255) and v3 centiseconds (1–4095) on
/// the wire; [`AdvertInterval::wire_value`] says whether a value fits a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertInterval {
    centis: u16,
}

impl AdvertInterval {
    /// The largest v3 interval, 40.95 s.
    pub const MAX_V3_CENTIS: u16 = 0x0fff;

    /// Whole seconds as carried by v2; `None` for 0.
    pub fn from_secs(secs: u8) -> Option<AdvertInterval> {
        (secs != 0).then(|| AdvertInterval {
            centis: u16::from(secs) * 100,
        })
    }

    /// Centiseconds as carried by v3; `None` for 0 or above 4095.
    pub fn from_centis(centis: u16) -> Option<AdvertInterval> {
        (1..=Self::MAX_V3_CENTIS)
            .contains(&centis)
            .then_some(AdvertInterval { centis })
    }

    /// Converts a configured duration, which must be exactly representable
    /// in `version` (the config layer rounds first, with a warning, as
    /// keepalived does).
    pub fn from_duration(
        version: VrrpVersion,
        interval: Duration,
    ) -> Result<AdvertInterval, IntervalError> {
        let not_representable = IntervalError { interval, version };
        let nanos = interval.as_nanos();
        match version {
            VrrpVersion::V2 => {
                if !nanos.is_multiple_of(1_000_000_000) {
                    return Err(not_representable);
                }
                u8::try_from(interval.as_secs())
                    .ok()
                    .and_then(AdvertInterval::from_secs)
                    .ok_or(not_representable)
            }
            VrrpVersion::V3 => {
                if !nanos.is_multiple_of(10_000_000) {
                    return Err(not_representable);
                }
                u16::try_from(nanos / 10_000_000)
                    .ok()
                    .and_then(AdvertInterval::from_centis)
                    .ok_or(not_representable)
            }
        }
    }

    pub fn centis(self) -> u16 {
        self.centis
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_millis(u64::from(self.centis) * 10)
    }

    /// The value of the interval field for `version`, or `None` when the
    /// interval does not fit (v2: not whole seconds; v3: above 40.95 s).
    pub fn wire_value(self, version: VrrpVersion) -> Option<u16> {
        match version {
            VrrpVersion::V2 => self.centis.is_multiple_of(100).then_some(self.centis / 100),
            VrrpVersion::V3 => (self.centis <= Self::MAX_V3_CENTIS).then_some(self.centis),
        }
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, centis) = (self.centis / 100, self.centis % 100);
        if centis == 0 {
            write!(f, "{secs}s")
        } else {
            write!(f, "{secs}.{centis:02}s")
        }
    }
}

/// A configured interval that the chosen VRRP version cannot carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "advert interval {interval:?} cannot be sent with vrrp version {}: v2 needs whole seconds 1-255, v3 centiseconds 0.01-40.95 s",
    version_number(*version)
)]
pub struct IntervalError {
    pub interval: Duration,
    pub version: VrrpVersion,
}

/// One VRRP advertisement, as sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: VrrpVersion,
    pub vrid: Vrid,
    /// 255 = address owner, 0 = the master is leaving.
    pub priority: u8,
    /// v2: Adver Int (seconds); v3: Max Adver Int (centiseconds).
    pub max_advert: AdvertInterval,
    /// v2 simple password (auth type 1), zero-padded; always `None` for v3.
    pub auth: Option<[u8; 8]>,
    /// All of the family of the packet's source address; 1 to 255 of them.
    pub addresses: Vec<IpAddr>,
}

/// How to checksum a v3 advertisement over IPv4 (v2 and IPv6 have one form).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    /// Include the IPv4 pseudo-header with the real destination: keepalived's
    /// default (and FRR's).
    #[default]
    PseudoHeader,
    /// Include the IPv4 pseudo-header with 224.0.0.18 as destination even
    /// when sent unicast: keepalived before 1.3.6 (`old_unicast_checksum`).
    PseudoHeaderMulticastGroup,
    /// Message only: RFC 9568, Cisco, Juniper, keepalived `v3_checksum_as_v2`.
    MessageOnly,
}

/// Which checksum form a received advertisement matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// Over the message only: every v2 packet, RFC 9568 v3 over IPv4.
    Message,
    /// With the pseudo-header of the real source and destination: every v3
    /// IPv6 packet, keepalived's v3 over IPv4.
    PseudoHeader,
    /// v3 over IPv4 with 224.0.0.18 as the pseudo-header destination although
    /// the packet was sent elsewhere (keepalived < 1.3.6 unicast).
    PseudoHeaderMulticastGroup,
}

impl ChecksumForm {
    /// The sending mode that reproduces this form.
    pub fn mode(self) -> ChecksumMode {
        match self {
            ChecksumForm::Message => ChecksumMode::MessageOnly,
            ChecksumForm::PseudoHeader => ChecksumMode::PseudoHeader,
            ChecksumForm::PseudoHeaderMulticastGroup => ChecksumMode::PseudoHeaderMulticastGroup,
        }
    }
}

/// A decoded advertisement and the checksum form it matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub advert: Advert,
    pub checksum: ChecksumForm,
}

/// An [`Advert`] that cannot be put on the wire as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("an advertisement needs at least one address")]
    NoAddresses,
    #[error("{count} addresses do not fit the 8-bit address count (at most 255)")]
    TooManyAddresses { count: usize },
    #[error("source {src} and destination {dst} are of different address families")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("address {address} is not of the family of source {src}")]
    AddressFamily { address: IpAddr, src: IpAddr },
    #[error("vrrp version 2 exists only over ipv4 (source {src})")]
    V2OverIpv6 { src: IpAddr },
    #[error("vrrp version 3 has no authentication field")]
    V3Auth,
    #[error(
        "advert interval {interval} cannot be sent with vrrp version {}",
        version_number(*version)
    )]
    Interval {
        interval: AdvertInterval,
        version: VrrpVersion,
    },
}

/// Why a received payload is not a valid advertisement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated advertisement: {len} bytes, need at least {needed}")]
    Truncated { len: usize, needed: usize },
    #[error("unsupported vrrp version {0}")]
    Version(u8),
    #[error("unknown vrrp packet type {0} (1 = advertisement is the only type)")]
    Type(u8),
    #[error("virtual router id 0 is invalid")]
    ZeroVrid,
    #[error("address count is 0")]
    NoAddresses,
    #[error("advertisement interval is 0")]
    ZeroInterval,
    #[error("unsupported vrrp version 2 authentication type {0}")]
    AuthType(u8),
    #[error("vrrp version 2 exists only over ipv4 (source {src})")]
    V2OverIpv6 { src: IpAddr },
    #[error("source {src} and destination {dst} are of different address families")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("{len} bytes where {count} addresses make {expected}")]
    Length {
        len: usize,
        count: u8,
        expected: usize,
    },
    #[error("bad checksum {found:#06x}, expected {expected:#06x}")]
    Checksum { found: u16, expected: u16 },
    #[error(
        "bad checksum {found:#06x}, expected {with_pseudo_header:#06x} with the ipv4 pseudo-header or {message_only:#06x} without"
    )]
    ChecksumV3Ipv4 {
        found: u16,
        with_pseudo_header: u16,
        message_only: u16,
    },
}

/// Encodes `advert` as the VRRP message of an IP packet from `src` to `dst`
/// (`dst` is the multicast group or a unicast peer; both feed the v3
/// checksum). `mode` only matters for v3 over IPv4.
pub fn encode(
    advert: &Advert,
    src: IpAddr,
    dst: IpAddr,
    mode: ChecksumMode,
) -> Result<Vec<u8>, EncodeError> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(EncodeError::FamilyMismatch { src, dst });
    }
    let count = match advert.addresses.len() {
        0 => return Err(EncodeError::NoAddresses),
        count => u8::try_from(count).map_err(|_| EncodeError::TooManyAddresses { count })?,
    };
    if let Some(&address) = advert
        .addresses
        .iter()
        .find(|address| address.is_ipv4() != src.is_ipv4())
    {
        return Err(EncodeError::AddressFamily { address, src });
    }
    let interval = advert
        .max_advert
        .wire_value(advert.version)
        .ok_or(EncodeError::Interval {
            interval: advert.max_advert,
            version: advert.version,
        })?;
    let mut out = Vec::with_capacity(message_len(advert.version, src, count));
    match advert.version {
        VrrpVersion::V2 => {
            if src.is_ipv6() {
                return Err(EncodeError::V2OverIpv6 { src });
            }
            let auth_type = if advert.auth.is_some() { 1 } else { 0 };
            // wire_value(V2) is at most 255: u16 centis / 100.
            let interval = u8::try_from(interval).unwrap_or(u8::MAX);
            out.extend_from_slice(&[0x21, advert.vrid.get(), advert.priority, count]);
            out.extend_from_slice(&[auth_type, interval, 0, 0]);
        }
        VrrpVersion::V3 => {
            if advert.auth.is_some() {
                return Err(EncodeError::V3Auth);
            }
            out.extend_from_slice(&[0x31, advert.vrid.get(), advert.priority, count]);
            out.extend_from_slice(&interval.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
    for address in &advert.addresses {
        match address {
            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
    }
    if advert.version == VrrpVersion::V2 {
        out.extend_from_slice(&advert.auth.unwrap_or([0; 8]));
    }
    let form = match (advert.version, src) {
        (VrrpVersion::V2, _) => ChecksumForm::Message,
        (VrrpVersion::V3, IpAddr::V6(_)) => ChecksumForm::PseudoHeader,
        (VrrpVersion::V3, IpAddr::V4(_)) => match mode {
            ChecksumMode::PseudoHeader => ChecksumForm::PseudoHeader,
            ChecksumMode::PseudoHeaderMulticastGroup => ChecksumForm::PseudoHeaderMulticastGroup,
            ChecksumMode::MessageOnly => ChecksumForm::Message,
        },
    };
    // The checksum field is still zero here.
    let checksum = finish(pseudo_header_sum(form, src, dst, out.len()) + sum_words(&out));
    out[6..8].copy_from_slice(&checksum.to_be_bytes());
    Ok(out)
}

/// Decodes the VRRP message of an IP packet from `src` to `dst`.
pub fn decode(payload: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, DecodeError> {
    decode_with_checksum(payload, src, dst).map(|decoded| decoded.advert)
}

/// [`decode`], also reporting which checksum form matched.
pub fn decode_with_checksum(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
) -> Result<Decoded, DecodeError> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(DecodeError::FamilyMismatch { src, dst });
    }
    let &[version_type, vrid, priority, count, b4, b5, c0, c1, ..] = payload else {
        return Err(DecodeError::Truncated {
            len: payload.len(),
            needed: 8,
        });
    };
    let version = match version_type >> 4 {
        2 => VrrpVersion::V2,
        3 => VrrpVersion::V3,
        other => return Err(DecodeError::Version(other)),
    };
    match version_type & 0x0f {
        1 => {}
        other => return Err(DecodeError::Type(other)),
    }
    if version == VrrpVersion::V2 && src.is_ipv6() {
        return Err(DecodeError::V2OverIpv6 { src });
    }
    let vrid = Vrid::new(vrid).ok_or(DecodeError::ZeroVrid)?;
    if count == 0 {
        return Err(DecodeError::NoAddresses);
    }
    let expected = message_len(version, src, count);
    if payload.len() < expected {
        return Err(DecodeError::Length {
            len: payload.len(),
            count,
            expected,
        });
    }
    let (message, padding) = payload.split_at(expected);
    let may_be_ethernet_padding =
        src.is_ipv4() && payload.len() <= 26 && padding.iter().all(|&byte| byte == 0);
    if !padding.is_empty() && !may_be_ethernet_padding {
        return Err(DecodeError::Length {
            len: payload.len(),
            count,
            expected,
        });
    }
    let (max_advert, auth) = match version {
        VrrpVersion::V2 => {
            let auth = match b4 {
                0 => None,
                1 => {
                    let mut data = [0; 8];
                    data.copy_from_slice(&message[expected - 8..]);
                    Some(data)
                }
                other => return Err(DecodeError::AuthType(other)),
            };
            (AdvertInterval::from_secs(b5), auth)
        }
        VrrpVersion::V3 => {
            let raw = u16::from_be_bytes([b4, b5]) & AdvertInterval::MAX_V3_CENTIS;
            (AdvertInterval::from_centis(raw), None)
        }
    };
    let max_advert = max_advert.ok_or(DecodeError::ZeroInterval)?;
    let checksum = verify_checksum(version, src, dst, message, u16::from_be_bytes([c0, c1]))?;
    let addresses = match src {
        IpAddr::V4(_) => message[8..8 + 4 * usize::from(count)]
            .chunks_exact(4)
            .map(|chunk| IpAddr::V4(Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3])))
            .collect(),
        IpAddr::V6(_) => message[8..8 + 16 * usize::from(count)]
            .chunks_exact(16)
            .map(|chunk| {
                let mut octets = [0; 16];
                octets.copy_from_slice(chunk);
                IpAddr::V6(Ipv6Addr::from(octets))
            })
            .collect(),
    };
    Ok(Decoded {
        advert: Advert {
            version,
            vrid,
            priority,
            max_advert,
            auth,
            addresses,
        },
        checksum,
    })
}

/// A gratuitous ARP announcing `vip` at `mac` (§4.4, §9): a broadcast ARP
/// request with sender and target IP both the VIP, as keepalived sends.
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut frame = [0; GARP_FRAME_LEN];
    frame[0..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    // Ethernet hardware, IPv4 protocol, lengths 6 and 4, request.
    frame[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&vip.octets());
    frame[32..38].copy_from_slice(&[0xff; 6]);
    frame[38..42].copy_from_slice(&vip.octets());
    frame
}

/// An unsolicited neighbour advertisement for `vip` at `mac` (§4.4, §9):
/// from the VIP to ff02::1, hop limit 255, Override set, Router set only when
/// the host forwards IPv6, with a Target Link-Layer Address option.
pub fn unsolicited_na(mac: [u8; 6], vip: Ipv6Addr, router: bool) -> [u8; NA_FRAME_LEN] {
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    const ICMPV6: u8 = 58;
    const ICMPV6_LEN: u16 = 32;
    let mut frame = [0; NA_FRAME_LEN];
    frame[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    // IPv6: version 6, traffic class 0, flow label 0.
    frame[14] = 0x60;
    frame[18..20].copy_from_slice(&ICMPV6_LEN.to_be_bytes());
    frame[20] = ICMPV6;
    frame[21] = 255;
    frame[22..38].copy_from_slice(&vip.octets());
    frame[38..54].copy_from_slice(&ALL_NODES.octets());
    let icmp = &mut frame[54..86];
    icmp[0] = 136;
    icmp[4] = if router { 0xa0 } else { 0x20 };
    icmp[8..24].copy_from_slice(&vip.octets());
    icmp[24..32].copy_from_slice(&[2, 1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]);
    let sum = ipv6_pseudo_header_sum(vip, ALL_NODES, ICMPV6, ICMPV6_LEN);
    let checksum = finish(sum + sum_words(icmp));
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    frame
}

// ---------------------------------------------------------------------------

fn version_number(version: VrrpVersion) -> u8 {
    match version {
        VrrpVersion::V2 => 2,
        VrrpVersion::V3 => 3,
    }
}

fn message_len(version: VrrpVersion, src: IpAddr, count: u8) -> usize {
    let address_len = if src.is_ipv4() { 4 } else { 16 };
    let auth_len = match version {
        VrrpVersion::V2 => 8,
        VrrpVersion::V3 => 0,
    };
    8 + address_len * usize::from(count) + auth_len
}

fn verify_checksum(
    version: VrrpVersion,
    src: IpAddr,
    dst: IpAddr,
    message: &[u8],
    found: u16,
) -> Result<ChecksumForm, DecodeError> {
    // The sum with the checksum field read as zero: the field is one of the
    // words summed, so this cannot underflow.
    let message_sum = sum_words(message) - u64::from(found);
    let expected = |form| finish(pseudo_header_sum(form, src, dst, message.len()) + message_sum);
    let candidates: &[ChecksumForm] = match (version, src) {
        (VrrpVersion::V2, _) => &[ChecksumForm::Message],
        (VrrpVersion::V3, IpAddr::V6(_)) => &[ChecksumForm::PseudoHeader],
        (VrrpVersion::V3, IpAddr::V4(_)) => &[
            ChecksumForm::PseudoHeader,
            ChecksumForm::Message,
            ChecksumForm::PseudoHeaderMulticastGroup,
        ],
    };
    if let Some(&form) = candidates.iter().find(|&&form| expected(form) == found) {
        return Ok(form);
    }
    Err(match (version, src) {
        (VrrpVersion::V3, IpAddr::V4(_)) => DecodeError::ChecksumV3Ipv4 {
            found,
            with_pseudo_header: expected(ChecksumForm::PseudoHeader),
            message_only: expected(ChecksumForm::Message),
        },
        _ => DecodeError::Checksum {
            found,
            expected: expected(candidates[0]),
        },
    })
}

/// The pseudo-header part of the checksum of a `len`-byte message in `form`.
fn pseudo_header_sum(form: ChecksumForm, src: IpAddr, dst: IpAddr, len: usize) -> u64 {
    // A message is at most 8 + 255 * 16 bytes.
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    match (form, src, dst) {
        (ChecksumForm::Message, _, _) => 0,
        (ChecksumForm::PseudoHeader, IpAddr::V4(src), IpAddr::V4(dst)) => {
            ipv4_pseudo_header_sum(src, dst, len)
        }
        (ChecksumForm::PseudoHeaderMulticastGroup, IpAddr::V4(src), _) => {
            ipv4_pseudo_header_sum(src, VRRP_GROUP_V4, len)
        }
        (_, IpAddr::V6(src), IpAddr::V6(dst)) => {
            ipv6_pseudo_header_sum(src, dst, IPPROTO_VRRP, len)
        }
        // Mixed families are rejected before any checksum is computed.
        _ => 0,
    }
}

fn ipv4_pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> u64 {
    sum_words(&src.octets()) + sum_words(&dst.octets()) + u64::from(IPPROTO_VRRP) + u64::from(len)
}

fn ipv6_pseudo_header_sum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u16) -> u64 {
    sum_words(&src.octets()) + sum_words(&dst.octets()) + u64::from(next_header) + u64::from(len)
}

/// Sum of big-endian 16-bit words, an odd last byte padded with zero.
fn sum_words(bytes: &[u8]) -> u64 {
    bytes
        .chunks(2)
        .map(|pair| {
            u64::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum()
}

/// Folds a sum into 16 bits and complements it (RFC 1071).
fn finish(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves sum <= 0xffff.
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAC: [u8; 6] = [0x3a, 0x28, 0xb4, 0x8d, 0x80, 0x29];
    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const VIP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 50);
    const PEER4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x3828, 0xb4ff, 0xfe8d, 0x8029);
    const VIP6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x52);
    const VIP6_ULA: Ipv6Addr = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x52);

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).expect("test vectors are hex"))
            .collect()
    }

    fn vrid(value: u8) -> Vrid {
        Vrid::new(value).expect("test VRIDs are non-zero")
    }

    fn v4(address: Ipv4Addr) -> IpAddr {
        IpAddr::V4(address)
    }

    fn v6(address: Ipv6Addr) -> IpAddr {
        IpAddr::V6(address)
    }

    /// §4.1 / §4.2 setup: VRID 51, one VIP 10.99.0.50, 1 s.
    fn advert_4(version: VrrpVersion, priority: u8) -> Advert {
        Advert {
            version,
            vrid: vrid(51),
            priority,
            max_advert: match version {
                VrrpVersion::V2 => AdvertInterval::from_secs(1),
                VrrpVersion::V3 => AdvertInterval::from_centis(100),
            }
            .expect("1 s is a valid interval"),
            auth: None,
            addresses: vec![v4(VIP4)],
        }
    }

    /// Encodes, compares with the golden bytes, decodes them back and checks
    /// the reported checksum form.
    fn check(
        advert: &Advert,
        (src, dst): (IpAddr, IpAddr),
        mode: ChecksumMode,
        golden: &str,
        form: ChecksumForm,
    ) {
        let golden = hex(golden);
        let encoded = encode(advert, src, dst, mode).expect("golden adverts encode");
        assert_eq!(hex_string(&encoded), hex_string(&golden));
        let decoded = decode_with_checksum(&golden, src, dst).expect("golden vectors decode");
        assert_eq!(decoded.advert, *advert);
        assert_eq!(decoded.checksum, form);
    }

    fn hex_string(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn checksum_of(bytes: &[u8]) -> u16 {
        u16::from_be_bytes([bytes[6], bytes[7]])
    }

    #[test]
    fn golden_4_1_v2_ipv4() {
        check(
            &advert_4(VrrpVersion::V2, 150),
            (v4(SRC4), v4(VRRP_GROUP_V4)),
            ChecksumMode::default(),
            "21 33 96 01 00 01 3e 35 0a 63 00 32 00 00 00 00 00 00 00 00",
            ChecksumForm::Message,
        );
    }

    #[test]
    fn golden_4_2_v3_ipv4_keepalived_pseudo_header() {
        check(
            &advert_4(VrrpVersion::V3, 150),
            (v4(SRC4), v4(VRRP_GROUP_V4)),
            ChecksumMode::PseudoHeader,
            "31 33 96 01 00 64 42 df 0a 63 00 32",
            ChecksumForm::PseudoHeader,
        );
    }

    #[test]
    fn golden_4_2_v3_ipv4_rfc9568_message_only() {
        check(
            &advert_4(VrrpVersion::V3, 150),
            (v4(SRC4), v4(VRRP_GROUP_V4)),
            ChecksumMode::MessageOnly,
            "31 33 96 01 00 64 2d d2 0a 63 00 32",
            ChecksumForm::Message,
        );
    }

    #[test]
    fn golden_4_3_v3_ipv6() {
        let advert = Advert {
            version: VrrpVersion::V3,
            vrid: vrid(52),
            priority: 150,
            max_advert: AdvertInterval::from_centis(100).expect("valid"),
            auth: None,
            addresses: vec![v6(VIP6_LL), v6(VIP6_ULA)],
        };
        let golden = "31 34 96 02 00 64 d1 98
                      fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 52
                      fd 99 00 00 00 00 00 00 00 00 00 00 00 00 00 52";
        // The IPv6 form is fixed: every mode gives the same bytes.
        for mode in [
            ChecksumMode::PseudoHeader,
            ChecksumMode::PseudoHeaderMulticastGroup,
            ChecksumMode::MessageOnly,
        ] {
            check(
                &advert,
                (v6(SRC6), v6(VRRP_GROUP_V6)),
                mode,
                golden,
                ChecksumForm::PseudoHeader,
            );
        }
    }

    #[test]
    fn golden_4_4_unsolicited_na() {
        let expected = |target: &str, checksum: &str| {
            hex(&format!(
                "33 33 00 00 00 01 3a 28 b4 8d 80 29 86 dd
                 60 00 00 00 00 20 3a ff {target} ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01
                 88 00 {checksum} 20 00 00 00 {target} 02 01 3a 28 b4 8d 80 29"
            ))
        };
        let link_local = "fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 52";
        let ula = "fd 99 00 00 00 00 00 00 00 00 00 00 00 00 00 52";
        assert_eq!(
            hex_string(&unsolicited_na(MAC, VIP6_LL, false)),
            hex_string(&expected(link_local, "ea 1a"))
        );
        assert_eq!(
            hex_string(&unsolicited_na(MAC, VIP6_ULA, false)),
            hex_string(&expected(ula, "eb e8"))
        );
        // Router flag: 0x80 more in the flags word, 0x8000 less in the checksum.
        let routed = unsolicited_na(MAC, VIP6_LL, true);
        assert_eq!(routed[58], 0xa0);
        assert_eq!(u16::from_be_bytes([routed[56], routed[57]]), 0x6a1a);
    }

    #[test]
    fn golden_4_4_gratuitous_arp() {
        let golden = hex("ff ff ff ff ff ff 3a 28 b4 8d 80 29 08 06
                          00 01 08 00 06 04 00 01 3a 28 b4 8d 80 29 0a 63 00 32
                          ff ff ff ff ff ff 0a 63 00 32");
        assert_eq!(hex_string(&gratuitous_arp(MAC, VIP4)), hex_string(&golden));
    }

    #[test]
    fn derived_4_5_priority_100() {
        check(
            &advert_4(VrrpVersion::V2, 100),
            (v4(SRC4), v4(VRRP_GROUP_V4)),
            ChecksumMode::default(),
            "21 33 64 01 00 01 70 35 0a 63 00 32 00 00 00 00 00 00 00 00",
            ChecksumForm::Message,
        );
        check(
            &advert_4(VrrpVersion::V3, 100),
            (v4(SRC4), v4(VRRP_GROUP_V4)),
            ChecksumMode::PseudoHeader,
            "31 33 64 01 00 64 74 df 0a 63 00 32",
            ChecksumForm::PseudoHeader,
        );
        check(
            &advert_4(VrrpVersion::V3, 100),
            (v4(SRC4), v4(VRRP_GROUP_V4)),
            ChecksumMode::MessageOnly,
            "31 33 64 01 00 64 5f d2 0a 63 00 32",
            ChecksumForm::Message,
        );
    }

    #[test]
    fn derived_4_5_unicast() {
        let unicast = (v4(SRC4), v4(PEER4));
        check(
            &advert_4(VrrpVersion::V3, 150),
            unicast,
            ChecksumMode::PseudoHeader,
            "31 33 96 01 00 64 18 8d 0a 63 00 32",
            ChecksumForm::PseudoHeader,
        );
        check(
            &advert_4(VrrpVersion::V3, 150),
            unicast,
            ChecksumMode::PseudoHeaderMulticastGroup,
            "31 33 96 01 00 64 42 df 0a 63 00 32",
            ChecksumForm::PseudoHeaderMulticastGroup,
        );
        check(
            &advert_4(VrrpVersion::V3, 150),
            unicast,
            ChecksumMode::MessageOnly,
            "31 33 96 01 00 64 2d d2 0a 63 00 32",
            ChecksumForm::Message,
        );
    }

    #[test]
    fn v2_password_round_trips_and_type_0_ignores_the_auth_bytes() {
        let mut advert = advert_4(VrrpVersion::V2, 100);
        advert.auth = Some(*b"secret\0\0");
        let (src, dst) = (v4(SRC4), v4(VRRP_GROUP_V4));
        let bytes = encode(&advert, src, dst, ChecksumMode::default()).expect("encodes");
        assert_eq!(bytes[4], 1, "auth type PASS");
        assert_eq!(&bytes[12..20], b"secret\0\0");
        assert_eq!(decode(&bytes, src, dst), Ok(advert));

        // Type 0 with junk in the auth bytes (checksum recomputed): ignored.
        let mut junk = hex("21 33 64 01 00 01 00 00 0a 63 00 32 01 02 03 04 05 06 07 08");
        let checksum = finish(sum_words(&junk));
        junk[6..8].copy_from_slice(&checksum.to_be_bytes());
        assert_eq!(decode(&junk, src, dst), Ok(advert_4(VrrpVersion::V2, 100)));
    }

    #[test]
    fn v3_reserved_bits_are_ignored() {
        // 0xf064: reserved nibble set, interval 100 cs; checksum fixed up.
        let mut bytes = hex("31 33 96 01 f0 64 00 00 0a 63 00 32");
        let checksum = finish(sum_words(&bytes));
        bytes[6..8].copy_from_slice(&checksum.to_be_bytes());
        let (src, dst) = (v4(SRC4), v4(VRRP_GROUP_V4));
        let decoded = decode_with_checksum(&bytes, src, dst).expect("decodes");
        assert_eq!(decoded.advert, advert_4(VrrpVersion::V3, 150));
        assert_eq!(decoded.checksum, ChecksumForm::Message);
    }

    #[test]
    fn ethernet_padding_is_tolerated_on_short_ipv4_packets_only() {
        let (src, dst) = (v4(SRC4), v4(VRRP_GROUP_V4));
        let mut padded = hex("31 33 96 01 00 64 42 df 0a 63 00 32");
        padded.resize(26, 0);
        assert_eq!(
            decode(&padded, src, dst),
            Ok(advert_4(VrrpVersion::V3, 150))
        );

        let mut too_long = padded.clone();
        too_long.push(0);
        let error = decode(&too_long, src, dst).expect_err("27 bytes is not padding");
        assert_eq!(error.to_string(), "27 bytes where 1 addresses make 12");

        let mut nonzero = hex("31 33 96 01 00 64 42 df 0a 63 00 32");
        nonzero.push(7);
        assert!(decode(&nonzero, src, dst).is_err());
    }

    #[test]
    fn malformed_input_gives_typed_errors_with_the_offending_value() {
        let (src, dst) = (v4(SRC4), v4(VRRP_GROUP_V4));
        let good = hex("31 33 96 01 00 64 42 df 0a 63 00 32");
        let with = |index: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[index] = value;
            bytes
        };
        let cases: Vec<(Vec<u8>, IpAddr, IpAddr, DecodeError, &str)> = vec![
            (
                good[..5].to_vec(),
                src,
                dst,
                DecodeError::Truncated { len: 5, needed: 8 },
                "truncated advertisement: 5 bytes, need at least 8",
            ),
            (
                with(0, 0x41),
                src,
                dst,
                DecodeError::Version(4),
                "unsupported vrrp version 4",
            ),
            (
                with(0, 0x32),
                src,
                dst,
                DecodeError::Type(2),
                "unknown vrrp packet type 2 (1 = advertisement is the only type)",
            ),
            (
                with(1, 0),
                src,
                dst,
                DecodeError::ZeroVrid,
                "virtual router id 0 is invalid",
            ),
            (
                with(3, 0),
                src,
                dst,
                DecodeError::NoAddresses,
                "address count is 0",
            ),
            (
                with(3, 2),
                src,
                dst,
                DecodeError::Length {
                    len: 12,
                    count: 2,
                    expected: 16,
                },
                "12 bytes where 2 addresses make 16",
            ),
            (
                with(5, 0),
                src,
                dst,
                DecodeError::ZeroInterval,
                "advertisement interval is 0",
            ),
            (
                with(7, 0xe0),
                src,
                dst,
                DecodeError::ChecksumV3Ipv4 {
                    found: 0x42e0,
                    with_pseudo_header: 0x42df,
                    message_only: 0x2dd2,
                },
                "bad checksum 0x42e0, expected 0x42df with the ipv4 pseudo-header or 0x2dd2 without",
            ),
            (
                good.clone(),
                src,
                v6(VRRP_GROUP_V6),
                DecodeError::FamilyMismatch {
                    src,
                    dst: v6(VRRP_GROUP_V6),
                },
                "source 10.99.0.1 and destination ff02::12 are of different address families",
            ),
            (
                hex("21 33 96 01 00 01 3e 35 0a 63 00 32 00 00 00 00 00 00 00 00"),
                v6(SRC6),
                v6(VRRP_GROUP_V6),
                DecodeError::V2OverIpv6 { src: v6(SRC6) },
                "vrrp version 2 exists only over ipv4 (source fe80::3828:b4ff:fe8d:8029)",
            ),
            (
                hex("21 33 96 01 02 01 3e 35 0a 63 00 32 00 00 00 00 00 00 00 00"),
                src,
                dst,
                DecodeError::AuthType(2),
                "unsupported vrrp version 2 authentication type 2",
            ),
            (
                hex("21 33 96 01 00 01 3e 36 0a 63 00 32 00 00 00 00 00 00 00 00"),
                src,
                dst,
                DecodeError::Checksum {
                    found: 0x3e36,
                    expected: 0x3e35,
                },
                "bad checksum 0x3e36, expected 0x3e35",
            ),
        ];
        for (bytes, src, dst, error, message) in cases {
            let found = decode(&bytes, src, dst).expect_err(message);
            assert_eq!(found, error, "{message}");
            assert_eq!(found.to_string(), message);
        }
    }

    #[test]
    fn v3_ipv4_checksum_is_checked_against_the_real_destination() {
        // The 4.2 packet was checksummed for 224.0.0.18: received unicast it
        // matches the pre-1.3.6 keepalived form, not the current one.
        let bytes = hex("31 33 96 01 00 64 42 df 0a 63 00 32");
        let decoded = decode_with_checksum(&bytes, v4(SRC4), v4(PEER4)).expect("decodes");
        assert_eq!(decoded.checksum, ChecksumForm::PseudoHeaderMulticastGroup);
        // A wrong source breaks the pseudo-header forms.
        let other_src = v4(Ipv4Addr::new(10, 99, 0, 3));
        assert!(decode(&bytes, other_src, v4(VRRP_GROUP_V4)).is_err());
        // The IPv6 form has the pseudo-header too.
        let v6_bytes = encode(
            &Advert {
                version: VrrpVersion::V3,
                vrid: vrid(52),
                priority: 150,
                max_advert: AdvertInterval::from_centis(100).expect("valid"),
                auth: None,
                addresses: vec![v6(VIP6_LL)],
            },
            v6(SRC6),
            v6(VRRP_GROUP_V6),
            ChecksumMode::MessageOnly,
        )
        .expect("encodes");
        let error = decode(&v6_bytes, v6(VIP6_ULA), v6(VRRP_GROUP_V6)).expect_err("bad src");
        assert!(matches!(error, DecodeError::Checksum { .. }), "{error}");
    }

    #[test]
    fn invalid_adverts_do_not_encode() {
        let (src, dst) = (v4(SRC4), v4(VRRP_GROUP_V4));
        let mode = ChecksumMode::default();
        let base = advert_4(VrrpVersion::V3, 100);
        let cases: Vec<(Advert, IpAddr, IpAddr, &str)> = vec![
            (
                Advert {
                    addresses: vec![],
                    ..base.clone()
                },
                src,
                dst,
                "an advertisement needs at least one address",
            ),
            (
                Advert {
                    addresses: vec![v4(VIP4); 256],
                    ..base.clone()
                },
                src,
                dst,
                "256 addresses do not fit the 8-bit address count (at most 255)",
            ),
            (
                Advert {
                    addresses: vec![v4(VIP4), v6(VIP6_ULA)],
                    ..base.clone()
                },
                src,
                dst,
                "address fd99::52 is not of the family of source 10.99.0.1",
            ),
            (
                base.clone(),
                src,
                v6(VRRP_GROUP_V6),
                "source 10.99.0.1 and destination ff02::12 are of different address families",
            ),
            (
                Advert {
                    auth: Some([0; 8]),
                    ..base.clone()
                },
                src,
                dst,
                "vrrp version 3 has no authentication field",
            ),
            (
                Advert {
                    version: VrrpVersion::V2,
                    addresses: vec![v6(VIP6_ULA)],
                    ..base.clone()
                },
                v6(SRC6),
                v6(VRRP_GROUP_V6),
                "vrrp version 2 exists only over ipv4 (source fe80::3828:b4ff:fe8d:8029)",
            ),
            (
                Advert {
                    version: VrrpVersion::V2,
                    max_advert: AdvertInterval::from_centis(150).expect("valid"),
                    ..base.clone()
                },
                src,
                dst,
                "advert interval 1.50s cannot be sent with vrrp version 2",
            ),
            (
                Advert {
                    max_advert: AdvertInterval::from_secs(41).expect("valid"),
                    ..base.clone()
                },
                src,
                dst,
                "advert interval 41s cannot be sent with vrrp version 3",
            ),
        ];
        for (advert, src, dst, message) in cases {
            let error = encode(&advert, src, dst, mode).expect_err(message);
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn intervals_convert_exactly_or_not_at_all() {
        use VrrpVersion::{V2, V3};
        let ms = Duration::from_millis;
        let ok = |version, duration, centis| {
            assert_eq!(
                AdvertInterval::from_duration(version, duration).map(AdvertInterval::centis),
                Ok(centis),
                "{duration:?}"
            );
        };
        ok(V2, ms(1000), 100);
        ok(V2, ms(255_000), 25_500);
        ok(V3, ms(10), 1);
        ok(V3, ms(40_950), 4095);
        for (version, duration) in [
            (V2, ms(0)),
            (V2, ms(1500)),
            (V2, ms(256_000)),
            (V3, ms(0)),
            (V3, ms(15)),
            (V3, ms(40_960)),
        ] {
            assert!(
                AdvertInterval::from_duration(version, duration).is_err(),
                "{duration:?}"
            );
        }
        assert_eq!(
            AdvertInterval::from_duration(V2, ms(1500))
                .expect_err("not whole")
                .to_string(),
            "advert interval 1.5s cannot be sent with vrrp version 2: v2 needs whole seconds 1-255, v3 centiseconds 0.01-40.95 s"
        );
        assert_eq!(
            AdvertInterval::from_centis(5).map(AdvertInterval::as_duration),
            Some(ms(50))
        );
        assert_eq!(
            AdvertInterval::from_centis(5).expect("valid").to_string(),
            "0.05s"
        );
    }

    fn address_strategy(ipv4: bool) -> BoxedStrategy<IpAddr> {
        if ipv4 {
            any::<[u8; 4]>()
                .prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
                .boxed()
        } else {
            any::<[u8; 16]>()
                .prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
                .boxed()
        }
    }

    /// A valid advert with matching source and destination addresses.
    fn advert_strategy() -> impl Strategy<Value = (Advert, IpAddr, IpAddr, ChecksumMode)> {
        (any::<bool>(), any::<bool>()).prop_flat_map(|(v3, ipv4)| {
            let ipv4 = ipv4 || !v3;
            let version = if v3 { VrrpVersion::V3 } else { VrrpVersion::V2 };
            let interval = if v3 {
                (1..=AdvertInterval::MAX_V3_CENTIS)
                    .prop_filter_map("valid", AdvertInterval::from_centis)
                    .boxed()
            } else {
                (1..=u8::MAX)
                    .prop_filter_map("valid", AdvertInterval::from_secs)
                    .boxed()
            };
            let auth = if v3 {
                Just(None).boxed()
            } else {
                proptest::option::of(any::<[u8; 8]>()).boxed()
            };
            let mode = prop_oneof![
                Just(ChecksumMode::PseudoHeader),
                Just(ChecksumMode::PseudoHeaderMulticastGroup),
                Just(ChecksumMode::MessageOnly),
            ];
            (
                (1..=u8::MAX).prop_filter_map("valid", Vrid::new),
                any::<u8>(),
                interval,
                auth,
                prop::collection::vec(address_strategy(ipv4), 1..=255),
                address_strategy(ipv4),
                address_strategy(ipv4),
                mode,
            )
                .prop_map(
                    move |(vrid, priority, max_advert, auth, addresses, src, dst, mode)| {
                        let advert = Advert {
                            version,
                            vrid,
                            priority,
                            max_advert,
                            auth,
                            addresses,
                        };
                        (advert, src, dst, mode)
                    },
                )
        })
    }

    fn any_address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            Just(v4(SRC4)),
            Just(v4(VRRP_GROUP_V4)),
            Just(v6(SRC6)),
            Just(v6(VRRP_GROUP_V6)),
            address_strategy(true),
            address_strategy(false),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode((advert, src, dst, mode) in advert_strategy()) {
            let bytes = encode(&advert, src, dst, mode).expect("valid adverts encode");
            let decoded = decode_with_checksum(&bytes, src, dst).expect("encoded adverts decode");
            prop_assert_eq!(decoded.advert, advert.clone());
            // Re-encoding with the reported form reproduces the bytes.
            let again = encode(&advert, src, dst, decoded.checksum.mode()).expect("encodes");
            prop_assert_eq!(checksum_of(&again), checksum_of(&bytes));
        }

        #[test]
        fn decode_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            src in any_address(),
            dst in any_address(),
        ) {
            if let Ok(decoded) = decode_with_checksum(&bytes, src, dst) {
                let again = encode(&decoded.advert, src, dst, decoded.checksum.mode())
                    .expect("decoded adverts re-encode");
                prop_assert_eq!(decode(&again, src, dst), Ok(decoded.advert));
            }
        }

        #[test]
        fn decode_never_panics_on_plausible_headers(
            version_type in prop_oneof![Just(0x21u8), Just(0x31u8), any::<u8>()],
            rest in prop::collection::vec(any::<u8>(), 0..80),
            v6_src in any::<bool>(),
        ) {
            let mut bytes = vec![version_type];
            bytes.extend(rest);
            let (src, dst) = if v6_src {
                (v6(SRC6), v6(VRRP_GROUP_V6))
            } else {
                (v4(SRC4), v4(VRRP_GROUP_V4))
            };
            let _ = decode(&bytes, src, dst);
        }
    }
}
