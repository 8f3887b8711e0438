//! keepalived's `bfd_instance NAME { neighbor_ip ... }` blocks (bfd/bfd_parser.c, 2.2.7) as its BFD process reads them (the session) and as its VRRP process reads them (a name instances can `track_bfd`, with a default `weight W [reverse]`), and the `track_bfd { NAME [weight W [reverse|noreverse]] }` lines (vrrp/vrrp_track.c `alloc_track_bfd`), with keepalived's defaults and messages.
//!
//! Defaults: min_rx 10 ms, min_tx 10 ms, idle_tx 1 s, multiplier 5, TTL
//! 255 (hop limit 64 for IPv6), max_hops 0 (received TTL must be the
//! TTL sent), weight 0 (FAULT while the session is down). A block its BFD
//! process drops (no neighbour, families differ, a duplicate neighbour)
//! still names a tracker in the VRRP process: keepalived runs such a file
//! with the tracker down for ever, keepmon refuses to (an error on the
//! `track_bfd` line), since keepalived itself reports the block.

use std::net::IpAddr;

use crate::config::diag::Location;
use crate::config::keepalived::Ctx;
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::numbers;
use crate::config::keepalived::tree::Stmt;
use crate::config::model::{BfdSession, Origin, TrackBfd};
use crate::config::native::bfd::{
    DEFAULT_IDLE_TX_US, DEFAULT_MIN_RX_US, DEFAULT_MIN_TX_US, DEFAULT_MULTIPLIER, default_ttl,
};

/// keepalived's `BFD_INAME_MAX` (with the terminating NUL).
const NAME_MAX: usize = 32;

/// One `bfd_instance` block as keepalived's processes keep it.
#[derive(Clone, Debug)]
pub struct BfdInstance {
    pub name: String,
    pub loc: Location,
    /// The session keepalived's BFD process runs; None when it drops the block.
    pub session: Option<BfdSession>,
    /// The VRRP process's default for `track_bfd` lines.
    pub weight: i32,
    pub reverse: bool,
    /// Which processes hear of it (`vrrp`, `checker`; both when neither is written).
    pub vrrp: bool,
    pub checker: bool,
}

/// Read one `bfd_instance NAME { ... }`; None when keepalived ignores it.
pub fn read(stmt: &Stmt, known: &[BfdInstance], ctx: &mut Ctx<'_>) -> Option<BfdInstance> {
    let name = ctx.arg(&stmt.piece, 1)?.to_string();
    if name.len() >= NAME_MAX {
        ctx.logs(
            stmt.piece.word_loc(1),
            format!(
                "Configuration error: BFD instance {name} name too long (maximum length is {} characters) - ignoring",
                NAME_MAX - 1
            ),
        );
        return None;
    }
    if known.iter().any(|b| b.name == name) {
        ctx.logs(
            stmt.piece.word_loc(1),
            format!("Configuration error: BFD instance {name} already configured - ignoring"),
        );
        return None;
    }
    let mut neighbor_word = "neighbor";
    let mut neighbor: Option<IpAddr> = None;
    let mut source: Option<IpAddr> = None;
    let mut min_rx = DEFAULT_MIN_RX_US;
    let mut min_tx = DEFAULT_MIN_TX_US;
    let mut idle_tx = DEFAULT_IDLE_TX_US;
    let mut multiplier = DEFAULT_MULTIPLIER;
    let mut passive = false;
    let mut ttl: Option<u8> = None;
    let mut max_hops: u8 = 0;
    let mut weight = 0;
    let mut reverse = false;
    let mut vrrp = false;
    let mut checker = false;
    let mut dropped = false;
    for child in stmt.children() {
        let p = &child.piece;
        let keyword = child.keyword();
        match keyword {
            "neighbor_ip" | "neighbour_ip" => {
                if dropped {
                    continue;
                }
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                // keepalived's test is on the address word, so "neighbour"
                // is only chosen by an address spelled so (never).
                if text == "neighbour_ip" {
                    neighbor_word = "neighbour";
                }
                match address(text, p, ctx) {
                    Some(ip) => neighbor = Some(ip),
                    None => {
                        // bfd_nbrip_handler frees the instance and skips the
                        // block, but its end handler still runs on the
                        // list's last entry: undefined behaviour (keepalived
                        // 2.2.7 was seen to crash on it), so keepmon refuses.
                        ctx.diags.error(
                            p.word_loc(1),
                            format!(
                                "keepalived reports \"Configuration error: BFD instance {name} has malformed {neighbor_word} address {text}, ignoring instance\" and then uses the instance it freed (it can crash): fix the address"
                            ),
                        );
                        dropped = true;
                    }
                }
            }
            // The VRRP and checker processes read these whatever the BFD
            // process thought of the block.
            "weight" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::int(text, -253, 253, true).value {
                    Some(value) => weight = i32::try_from(value).unwrap_or(0),
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Configuration error: BFD instance {name} weight value {text} not valid (must be in range [-253-253]), ignoring"
                        ),
                    ),
                }
                match p.words.get(2).map(|w| w.text.as_str()) {
                    None => {}
                    Some("reverse") => reverse = true,
                    Some(other) => ctx.logs(
                        p.word_loc(2),
                        format!(
                            "Configuration error: BFD instance {name} unknown weight option {other}"
                        ),
                    ),
                }
            }
            "vrrp" => vrrp = true,
            "checker" => checker = true,
            // The BFD process skipped the rest of the block.
            _ if dropped => {}
            "source_ip" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match address(text, p, ctx) {
                    Some(ip) => source = Some(ip),
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Configuration error: BFD instance {name} has malformed source address {text}, ignoring"
                        ),
                    ),
                }
            }
            "min_rx" | "min_tx" | "idle_tx" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                let low: u64 = if keyword == "idle_tx" { 1000 } else { 1 };
                let high = u64::from(u32::MAX / 1000);
                let read = numbers::decimal(text, 3, low * 1000, high * 1000, false);
                match read.value.and_then(|v| u32::try_from(v).ok()) {
                    Some(value) => {
                        if let Some(complaint) = read.complaint {
                            ctx.logs(p.word_loc(1), complaint);
                        }
                        if value > 10_000 * 1000 {
                            ctx.logs(
                                p.word_loc(1),
                                format!(
                                    "Configuration warning: BFD instance {name} {keyword} value {text} is larger than max sensible (10000)"
                                ),
                            );
                        }
                        match keyword {
                            "min_rx" => min_rx = value,
                            "min_tx" => min_tx = value,
                            _ => idle_tx = value,
                        }
                    }
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Configuration error: BFD instance {name} {keyword} value {text} is not valid (must be in range [{low}-{high}]), ignoring"
                        ),
                    ),
                }
            }
            "multiplier" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::unsigned(text, 1, 255, false)
                    .value
                    .and_then(|v| u8::try_from(v).ok())
                {
                    Some(value) => multiplier = value,
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Configuration error: BFD instance {name} multiplier value {text} not valid (must be in range [1-255]), ignoring"
                        ),
                    ),
                }
            }
            "passive" => passive = true,
            "ttl" | "hoplimit" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::unsigned(text, 1, 255, false)
                    .value
                    .and_then(|v| u8::try_from(v).ok())
                {
                    Some(value) => ttl = Some(value),
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Configuration error: BFD instance {name} ttl/hoplimit value {text} not valid (must be in range [1-255]), ignoring"
                        ),
                    ),
                }
            }
            "max_hops" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::int(text, -1, 255, false).value {
                    // keepalived keeps it in a uint8_t: -1 is 255 (no check).
                    Some(value) => max_hops = u8::try_from(value).unwrap_or(u8::MAX),
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Configuration error: BFD instance {name} max_hops value {text} not valid (must be in range [-1-255]), ignoring"
                        ),
                    ),
                }
            }
            other => ctx.unused(p, &format!("'{other}' in bfd_instance")),
        }
    }
    if !vrrp && !checker {
        vrrp = true;
        checker = true;
    }
    let session = if dropped {
        None
    } else {
        session(
            &name,
            stmt,
            neighbor_word,
            Settings {
                neighbor,
                source,
                min_rx,
                min_tx,
                idle_tx,
                multiplier,
                passive,
                ttl,
                max_hops,
            },
            known,
            ctx,
        )
    };
    Some(BfdInstance {
        name,
        loc: stmt.loc(),
        session,
        weight,
        reverse,
        vrrp,
        checker,
    })
}

/// keepalived's `inet_stosockaddr`: what follows a `-` or `/` is cut off
/// (a range or a prefix length) before the address is read.
fn address(text: &str, p: &Piece, ctx: &mut Ctx<'_>) -> Option<IpAddr> {
    let cut = text.find(['-', '/']).map_or(text, |at| &text[..at]);
    let ip = cut.parse::<IpAddr>().ok()?;
    if cut.len() != text.len() {
        ctx.ignores(
            p.word_loc(1),
            format!("keepalived reads {text} as the address {ip}"),
        );
    }
    Some(ip)
}

struct Settings {
    neighbor: Option<IpAddr>,
    source: Option<IpAddr>,
    min_rx: u32,
    min_tx: u32,
    idle_tx: u32,
    multiplier: u8,
    passive: bool,
    ttl: Option<u8>,
    max_hops: u8,
}

/// keepalived's `bfd_end_handler`: the checks at the block's end.
fn session(
    name: &str,
    stmt: &Stmt,
    neighbor_word: &str,
    s: Settings,
    known: &[BfdInstance],
    ctx: &mut Ctx<'_>,
) -> Option<BfdSession> {
    let Some(neighbor) = s.neighbor else {
        ctx.logs(
            stmt.end_loc(),
            format!(
                "Configuration error: BFD instance {name} has no {neighbor_word} address set, disabling instance"
            ),
        );
        return None;
    };
    if let Some(source) = s.source
        && source.is_ipv4() != neighbor.is_ipv4()
    {
        ctx.logs(
            stmt.end_loc(),
            format!(
                "Configuration error: BFD instance {name} source address {source} and {neighbor_word} address {neighbor} are not of the same family, disabling instance"
            ),
        );
        return None;
    }
    // find_bfd_by_addr: the same neighbour, and the same source unless
    // either has none.
    let duplicate = known.iter().filter_map(|b| b.session.as_ref()).any(|b| {
        b.neighbor == neighbor && (b.source.is_none() || s.source.is_none() || b.source == s.source)
    });
    if duplicate {
        let message = match s.source {
            Some(source) => format!(
                "Configuration error: BFD instance {name} has duplicate source/{neighbor_word} address {source}/{neighbor}, ignoring instance"
            ),
            None => format!(
                "Configuration error: BFD instance {name} has duplicate {neighbor_word} address {neighbor}, ignoring instance"
            ),
        };
        ctx.logs(stmt.end_loc(), message);
        return None;
    }
    let ttl = s.ttl.unwrap_or_else(|| default_ttl(neighbor));
    let mut max_hops = s.max_hops;
    if max_hops > ttl {
        ctx.logs(
            stmt.end_loc(),
            format!("BFD instance {name}: max_hops exceeds ttl/hoplimit - setting to ttl/hoplimit"),
        );
        max_hops = ttl;
    }
    Some(BfdSession {
        name: name.to_string(),
        neighbor,
        source: s.source,
        min_rx_us: s.min_rx,
        min_tx_us: s.min_tx,
        idle_tx_us: s.idle_tx,
        multiplier: s.multiplier,
        passive: s.passive,
        ttl,
        max_hops,
        origin: Origin(stmt.loc()),
    })
}

/// One `track_bfd` line of an instance or sync group `owner`:
/// `NAME [weight W [reverse|noreverse]]`; None when keepalived ignores it.
pub fn line(
    line: &Piece,
    owner: &str,
    known: &[BfdInstance],
    already: &[TrackBfd],
    ctx: &mut Ctx<'_>,
) -> Option<TrackBfd> {
    let wanted = line.keyword();
    let Some(block) = known.iter().find(|b| b.name == wanted && b.vrrp) else {
        ctx.logs(
            line.loc.clone(),
            format!("({owner}) track bfd {wanted} not found, ignoring..."),
        );
        return None;
    };
    if already.iter().any(|t| t.name == wanted) {
        ctx.logs(
            line.loc.clone(),
            format!("({owner}) duplicate track_bfd {wanted} - ignoring"),
        );
        return None;
    }
    let mut weight = block.weight;
    let mut reverse = block.reverse;
    if let Some(option) = line.words.get(1) {
        if option.text != "weight" {
            ctx.logs(
                line.word_loc(1),
                format!(
                    "({owner}) unknown track bfd {wanted} option {} - ignoring",
                    option.text
                ),
            );
            return None;
        }
        let Some(value) = line.words.get(2) else {
            ctx.logs(
                line.loc.clone(),
                format!(
                    "({owner}) weight without value specified for track bfd {wanted} - ignoring"
                ),
            );
            return None;
        };
        match numbers::int(&value.text, -253, 253, true).value {
            Some(w) => weight = i32::try_from(w).unwrap_or(0),
            None => ctx.logs(
                line.word_loc(2),
                format!("({owner}) weight for track bfd {wanted} must be in [-253..253] inclusive. Ignoring..."),
            ),
        }
        match line.words.get(3).map(|w| w.text.as_str()) {
            None => {}
            Some("reverse") => reverse = true,
            Some("noreverse") => reverse = false,
            Some(other) => {
                ctx.logs(
                    line.word_loc(3),
                    format!(
                        "({owner}) unknown track bfd {wanted} weight option {other} - ignoring"
                    ),
                );
                return None;
            }
        }
    }
    if block.session.is_none() {
        ctx.unsupported(
            line.loc.clone(),
            format!(
                "track_bfd {wanted}: keepalived's BFD process dropped that bfd_instance, so keepalived would track a session that never runs"
            ),
        );
        return None;
    }
    Some(TrackBfd {
        name: wanted.to_string(),
        weight,
        reverse,
    })
}
