//! The built-in `dns` check of one host, keepalived's `DNS_CHECK`: one query over UDP and keepalived's verdict on the answer; the query encoder and the answer judge are pure (and fuzzed).
//!
//! keepalived's rules (keepalived/check/check_dns.c, 2.2.7), kept here:
//!
//! - The query: a random id, only RD (recursion desired) set, one question
//!   of the configured type in class IN; the name `.` (or empty) is the root.
//! - Datagrams shorter than 8 octets, with another id, or without the QR
//!   bit are ignored and the wait goes on; the first one left decides:
//!   rcode 0 passes (whatever the answer count: keepalived does not look at
//!   it), any other rcode fails. Silence until the timeout fails; so does
//!   an ICMP error (the connected socket's receive fails).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{HostStatus, udp};
use crate::config::model::{DNS_TYPES, DnsCheck};

/// keepalived's `DNS_BUFFER_SIZE`: answers are read into this much.
pub const ANSWER_BUFFER: usize = 768;

/// The shortest answer keepalived looks at (its `sizeof` of a pointer).
pub const MIN_ANSWER: usize = 8;

/// What one datagram means to the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not the answer (too short, another id, a query): keep waiting.
    Ignore,
    Pass,
    /// The answer's rcode (not 0).
    Fail(u8),
}

/// A query as keepalived builds it; Err for a name no query can carry
/// (an empty label inside it, a label over 63 octets, over 255 in all).
pub fn encode_query(id: u16, name: &str, query_type: u16) -> Result<Vec<u8>, String> {
    let mut packet = Vec::with_capacity(12 + name.len() + 6);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    packet.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1, AN=NS=AR=0
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut qname_len = 1;
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() {
                return Err(format!("{name:?} has an empty label"));
            }
            let len = u8::try_from(label.len())
                .ok()
                .filter(|&l| l <= 63)
                .ok_or_else(|| format!("the label {label:?} is longer than 63 octets"))?;
            qname_len += 1 + label.len();
            packet.push(len);
            packet.extend_from_slice(label.as_bytes());
        }
    }
    if qname_len > 255 {
        return Err(format!("{name:?} is longer than 255 octets on the wire"));
    }
    packet.push(0);
    packet.extend_from_slice(&query_type.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(packet)
}

/// keepalived's reading of one datagram answering query `id`.
pub fn judge_answer(id: u16, answer: &[u8]) -> Verdict {
    if answer.len() < MIN_ANSWER {
        return Verdict::Ignore;
    }
    if u16::from_be_bytes([answer[0], answer[1]]) != id {
        return Verdict::Ignore;
    }
    let flags = u16::from_be_bytes([answer[2], answer[3]]);
    if flags & 0x8000 == 0 {
        return Verdict::Ignore;
    }
    match u8::try_from(flags & 0x000f).unwrap_or(0) {
        0 => Verdict::Pass,
        rcode => Verdict::Fail(rcode),
    }
}

/// The number of a query type name (`SOA` → 6), as keepalived spells them.
pub fn type_number(name: &str) -> Option<u16> {
    DNS_TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, number)| number)
}

pub(crate) struct Prepared {
    check: DnsCheck,
    query_type: u16,
}

impl Prepared {
    pub(crate) fn new(check: &DnsCheck) -> Result<Prepared, String> {
        let query_type = type_number(&check.query_type)
            .ok_or_else(|| format!("unknown query type {:?}", check.query_type))?;
        encode_query(0, &check.name, query_type)?;
        Ok(Prepared {
            check: check.clone(),
            query_type,
        })
    }

    pub(crate) async fn check(&self, host: &str) -> (HostStatus, Option<Duration>) {
        let started = Instant::now();
        match tokio::time::timeout(self.check.timeout, self.ask(host)).await {
            Err(_) => (HostStatus::Timeout, None),
            Ok(Ok(())) => (HostStatus::Ok, Some(started.elapsed())),
            Ok(Err(reason)) => (HostStatus::Fail { reason }, None),
        }
    }

    async fn ask(&self, host: &str) -> Result<(), String> {
        let (name, port) = super::split_host_port(host);
        let addr = udp::resolve(name, port.unwrap_or(self.check.port)).await?;
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
        let id = fastrand::u16(..);
        let query = encode_query(id, &self.check.name, self.query_type)?;
        socket
            .send(&query)
            .await
            .map_err(|e| format!("send to {addr}: {e}"))?;
        let mut answer = [0u8; ANSWER_BUFFER];
        loop {
            let n = socket
                .recv(&mut answer)
                .await
                .map_err(|e| format!("failed to read the answer: {e}"))?;
            match judge_answer(id, &answer[..n]) {
                Verdict::Ignore => continue,
                Verdict::Pass => return Ok(()),
                Verdict::Fail(rcode) => {
                    return Err(format!("answer with rcode {rcode} ({})", rcode_name(rcode)));
                }
            }
        }
    }
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_built_as_keepalived_builds_them() {
        let root = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header
            0, // root
            0, 6, 0, 1, // SOA IN
        ];
        assert_eq!(encode_query(0x1234, ".", 6).unwrap(), root);
        assert_eq!(encode_query(0x1234, "", 6).unwrap(), root);
        let q = encode_query(1, "x.test.", 1).unwrap();
        assert_eq!(&q[12..], b"\x01x\x04test\x00\x00\x01\x00\x01");
        assert_eq!(encode_query(1, "x.test", 1).unwrap(), q);
        assert!(encode_query(1, "a..b", 1).is_err());
        assert!(encode_query(1, &"a".repeat(64), 1).is_err());
        assert!(encode_query(1, &["a"; 128].join("."), 1).is_err());
    }

    #[test]
    fn answers_are_judged_as_keepalived_judges_them() {
        let answer = |id: u16, flags: u16| {
            let mut a = id.to_be_bytes().to_vec();
            a.extend_from_slice(&flags.to_be_bytes());
            a.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            a
        };
        assert_eq!(judge_answer(7, &answer(7, 0x8180)), Verdict::Pass);
        assert_eq!(judge_answer(7, &answer(7, 0x8183)), Verdict::Fail(3));
        assert_eq!(judge_answer(7, &answer(8, 0x8180)), Verdict::Ignore);
        assert_eq!(judge_answer(7, &answer(7, 0x0100)), Verdict::Ignore);
        assert_eq!(judge_answer(7, &answer(7, 0x8180)[..7]), Verdict::Ignore);
        // Eight octets are enough for keepalived.
        assert_eq!(judge_answer(7, &answer(7, 0x8180)[..8]), Verdict::Pass);
        assert_eq!(type_number("aaaa"), Some(28));
        assert_eq!(type_number("SRV"), None);
    }
}
