//! keepalived's `virtual_server_group NAME { ... }` blocks (check_data.c `alloc_vsg_entry`, check_parser.c `vsg_handler`): address, address-range and fwmark entries with keepalived's checks and messages; `virtual_server group NAME` expands them (virtual_server.rs).
//!
//! Each entry becomes IPVS services of its own (one per address of a range,
//! one per fwmark), all with the virtual server's settings and real
//! servers: keepalived's `ipvs_group_cmd` walks the entries and
//! `ipvs_group_range_cmd` walks a range address by address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;

use crate::config::diag::Location;
use crate::config::keepalived::Ctx;
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::tree::Stmt;

/// The most addresses keepmon expands one entry into (a /22, or a range
/// of as many): each is an IPVS service and a virtual server of the model.
pub const MAX_RANGE: u32 = 1024;

/// One `virtual_server_group` as keepalived keeps it after reading.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub loc: Location,
    pub entries: Vec<Entry>,
    /// An IPv4 address or an `inet` fwmark is listed.
    pub have_ipv4: bool,
    /// An IPv6 address or an `inet6` fwmark is listed.
    pub have_ipv6: bool,
}

#[derive(Clone, Debug)]
pub enum Entry {
    /// `IP PORT`, `IP-LAST PORT`, `IP-IP PORT`, `IP/PREFIX PORT`: the
    /// addresses in the order keepalived adds them.
    Addresses {
        loc: Location,
        addresses: Vec<IpAddr>,
        /// 0 when none was given.
        port: u16,
    },
    /// `fwmark N [inet|inet6]`.
    Fwmark {
        loc: Location,
        mark: NonZeroU32,
        /// None: the virtual server's family, else IPv4.
        ipv6: Option<bool>,
    },
}

/// Read one `virtual_server_group`; None when keepalived removes it.
pub fn read(stmt: &Stmt, ctx: &mut Ctx<'_>) -> Option<Group> {
    let name = ctx.arg(&stmt.piece, 1)?.to_string();
    let mut group = Group {
        name,
        loc: stmt.loc(),
        entries: Vec::new(),
        have_ipv4: false,
        have_ipv6: false,
    };
    let mut fwmark_no_family = false;
    for piece in stmt.values() {
        if let Some(entry) = entry(piece, &group.name, ctx) {
            match &entry {
                Entry::Addresses { addresses, .. } => {
                    if addresses.first().is_some_and(IpAddr::is_ipv6) {
                        group.have_ipv6 = true;
                    } else {
                        group.have_ipv4 = true;
                    }
                }
                Entry::Fwmark { ipv6: None, .. } => fwmark_no_family = true,
                Entry::Fwmark {
                    ipv6: Some(true), ..
                } => group.have_ipv6 = true,
                Entry::Fwmark {
                    ipv6: Some(false), ..
                } => group.have_ipv4 = true,
            }
            group.entries.push(entry);
        }
    }
    if group.entries.is_empty() {
        ctx.logs(
            stmt.end_loc(),
            format!(
                "virtual server group {} has no entries - removing",
                group.name
            ),
        );
        return None;
    }
    if group.have_ipv4 && group.have_ipv6 && fwmark_no_family {
        ctx.logs(
            stmt.end_loc(),
            format!(
                "virtual server group {} cannot have IPv4, IPv6 and fwmark without family - removing",
                group.name
            ),
        );
        return None;
    }
    Some(group)
}

/// One line of the group (keepalived's `alloc_vsg_entry`); None when
/// keepalived skips it.
fn entry(piece: &Piece, group: &str, ctx: &mut Ctx<'_>) -> Option<Entry> {
    let first = piece.keyword();
    if first == "fwmark" {
        let text = ctx.arg(piece, 1)?;
        let Some(mark) = ctx.unsigned(piece, 1, 0, u64::from(u32::MAX), true) else {
            ctx.logs(
                piece.word_loc(1),
                format!(
                    "({group}): fwmark '{text}' must be in [0, {}] - ignoring",
                    u32::MAX
                ),
            );
            return None;
        };
        let ipv6 = match piece.words.get(2).map(|w| w.text.as_str()) {
            None => None,
            Some("inet") => Some(false),
            Some("inet6") => Some(true),
            Some(other) => {
                ctx.logs(
                    piece.word_loc(2),
                    format!("({group}): fwmark '{mark}' family {other} unknown - ignoring"),
                );
                return None;
            }
        };
        let Some(mark) = u32::try_from(mark).ok().and_then(NonZeroU32::new) else {
            ctx.unsupported(
                piece.word_loc(1),
                "fwmark 0 in a virtual_server_group (IPVS reads mark 0 as an address service on 0.0.0.0 port 0)",
            );
            return None;
        };
        return Some(Entry::Fwmark {
            loc: piece.loc.clone(),
            mark,
            ipv6,
        });
    }
    let skipping = |ctx: &mut Ctx<'_>, port: Option<&str>| {
        let port = port.map(|p| format!(" /port/{p}")).unwrap_or_default();
        ctx.logs(
            piece.loc.clone(),
            format!("Invalid virtual server group IP address {first}{port} - skipping"),
        );
    };
    // A port of 0 (or 00...) counts as none.
    let port_text = piece
        .words
        .get(1)
        .map(|w| w.text.as_str())
        .filter(|p| !p.chars().all(|c| c == '0'));
    let port = match port_text {
        None => 0,
        Some(text) => match ctx.unsigned(piece, 1, 1, 65535, true) {
            Some(port) => u16::try_from(port).unwrap_or(0),
            None => {
                skipping(ctx, Some(text));
                return None;
            }
        },
    };
    let ipv6 = first.contains(':');
    let base = first.split(['-', '/']).next().unwrap_or_default();
    let start: IpAddr = match (ipv6, base.parse::<IpAddr>()) {
        (false, Ok(ip @ IpAddr::V4(_))) | (true, Ok(ip @ IpAddr::V6(_))) => ip,
        _ => {
            skipping(ctx, port_text);
            return None;
        }
    };
    let addresses = if let Some((_, mask)) = first.split_once('/') {
        masked(piece, first, start, mask, ctx)?
    } else if let Some((_, end)) = first.split_once('-') {
        let full = if ipv6 {
            end.contains(':')
        } else {
            end.contains('.')
        };
        if full {
            full_range(piece, first, start, end, ctx)?
        } else {
            short_range(piece, first, start, end, ctx)?
        }
    } else {
        vec![start]
    };
    Some(Entry::Addresses {
        loc: piece.loc.clone(),
        addresses,
        port,
    })
}

/// `IP/PREFIX`: the whole block (keepalived: the host bits must be 0).
fn masked(
    piece: &Piece,
    text: &str,
    start: IpAddr,
    mask: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<IpAddr>> {
    let width = if start.is_ipv4() { 32 } else { 128 };
    let prefix = mask.parse::<u32>().ok().filter(|m| (1..=width).contains(m));
    let Some(prefix) = prefix else {
        ctx.logs(
            piece.word_loc(0),
            format!("Invalid netmask - {text} - skipping"),
        );
        return None;
    };
    let host_bits = width - prefix;
    let (low, count) = match start {
        IpAddr::V4(v4) => {
            let host = u32::MAX.checked_shr(prefix).unwrap_or(0);
            if u32::from(v4) & host != 0 {
                ctx.logs(
                    piece.word_loc(0),
                    format!("Address mask bits not empty - {text} - skipping"),
                );
                return None;
            }
            (u128::from(u32::from(v4)), u128::from(host) + 1)
        }
        IpAddr::V6(v6) => {
            let host = u128::MAX.checked_shr(prefix).unwrap_or(0);
            if u128::from(v6) & host != 0 {
                ctx.logs(
                    piece.word_loc(0),
                    format!("Address mask bits not empty - {text} - skipping"),
                );
                return None;
            }
            if host_bits > 16 {
                ctx.unsupported(
                    piece.word_loc(0),
                    format!(
                        "the IPv6 block {text} (keepalived 2.2.7 walks only the last 16 bits of an IPv6 range)"
                    ),
                );
                return None;
            }
            (u128::from(v6), host + 1)
        }
    };
    expand(piece, text, start, low, count, ctx)
}

/// `IP-LAST`: the last byte (IPv4, decimal) or 16-bit group (IPv6, hex)
/// runs from the start's to LAST.
fn short_range(
    piece: &Piece,
    text: &str,
    start: IpAddr,
    end: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<IpAddr>> {
    let (radix, max) = if start.is_ipv6() {
        (16, 0xffff)
    } else {
        (10, 255)
    };
    let digits: String = end.chars().take_while(|c| c.is_digit(radix)).collect();
    let rest = &end[digits.len()..];
    let last = if digits.is_empty() {
        Some(0)
    } else {
        u64::from_str_radix(&digits, radix).ok()
    };
    let Some(last) = last.filter(|n| *n <= max) else {
        ctx.logs(
            piece.word_loc(0),
            format!("Virtual server group range '{text}' end '{end}' too large"),
        );
        return None;
    };
    if !rest.is_empty() {
        // keepalived -t drops the entry; the running daemon uses the digits.
        ctx.logs(
            piece.word_loc(0),
            format!(
                "WARNING - Virtual server group range '{text}' has extra characters at end '{rest}'"
            ),
        );
    }
    let (low, first) = match start {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), u64::from(v4.octets()[3])),
        IpAddr::V6(v6) => (u128::from(v6), u64::from(v6.segments()[7])),
    };
    if first >= last {
        ctx.logs(
            piece.word_loc(0),
            format!(
                "Address range end is not greater than address range start - {text} - skipping"
            ),
        );
        return None;
    }
    expand(piece, text, start, low, u128::from(last - first) + 1, ctx)
}

/// `IP-IP`: every address from the first to the last.
fn full_range(
    piece: &Piece,
    text: &str,
    start: IpAddr,
    end: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<IpAddr>> {
    let Ok(last) = end.parse::<IpAddr>() else {
        ctx.logs(
            piece.word_loc(0),
            format!("Invalid range end {text} - skipping"),
        );
        return None;
    };
    let (low, high) = match (start, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
        _ => {
            ctx.logs(
                piece.word_loc(0),
                format!("Range address families do not match {text} - skipping"),
            );
            return None;
        }
    };
    if high < low {
        ctx.logs(
            piece.word_loc(0),
            format!("Address range end is less than address range start - {text} - skipping"),
        );
        return None;
    }
    if start.is_ipv6() && high >> 16 != low >> 16 {
        ctx.unsupported(
            piece.word_loc(0),
            format!(
                "the IPv6 range {text} (keepalived 2.2.7 walks only the last 16 bits of an IPv6 range)"
            ),
        );
        return None;
    }
    expand(piece, text, start, low, high - low + 1, ctx)
}

fn expand(
    piece: &Piece,
    text: &str,
    start: IpAddr,
    low: u128,
    count: u128,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<IpAddr>> {
    if count > u128::from(MAX_RANGE) {
        ctx.unsupported(
            piece.word_loc(0),
            format!(
                "{text} is {count} addresses, each an IPVS service (keepmon expands at most {MAX_RANGE} per entry)"
            ),
        );
        return None;
    }
    Some(
        (0..count)
            .map(|i| match start {
                IpAddr::V4(_) => {
                    IpAddr::V4(Ipv4Addr::from(u32::try_from(low + i).unwrap_or(u32::MAX)))
                }
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(low + i)),
            })
            .collect(),
    )
}
