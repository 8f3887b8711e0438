//! keepalived's `vrrp_track_process NAME { process PATH [ARGS...] param_match ... weight W [reverse] quorum N quorum_max M delay/fork_delay/terminate_delay T full_command }` blocks and the `track_process { NAME [weight W [reverse|noreverse]] }` lines of instances and sync groups (vrrp/vrrp_parser.c and vrrp/vrrp_track.c, 2.2.7), with keepalived's defaults and messages.
//!
//! Defaults: weight 0 (FAULT while the quorum is not met), quorum 1,
//! quorum_max unlimited, no delays; words after the process name are its
//! arguments and make the match `exact` on the full command line.

use std::time::Duration;

use crate::config::diag::Location;
use crate::config::keepalived::Ctx;
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::numbers;
use crate::config::keepalived::tree::Stmt;
use crate::config::model::{ParamMatch, TrackProcess};

/// One `vrrp_track_process` block as keepalived keeps it.
#[derive(Clone, Debug)]
pub struct TrackedProcess {
    pub loc: Location,
    pub process: TrackProcess,
}

/// Read one `vrrp_track_process NAME { ... }`; None when keepalived drops it.
pub fn read(stmt: &Stmt, ctx: &mut Ctx<'_>) -> Option<TrackedProcess> {
    let name = ctx.arg(&stmt.piece, 1)?.to_string();
    let mut process: Option<String> = None;
    let mut t = TrackProcess {
        name: name.clone(),
        process: String::new(),
        args: Vec::new(),
        param_match: ParamMatch::None,
        full_command: false,
        quorum: 1,
        quorum_max: u32::MAX,
        weight: 0,
        reverse: false,
        fork_delay: None,
        terminate_delay: None,
    };
    for child in stmt.children() {
        let p = &child.piece;
        match child.keyword() {
            "process" => {
                let Some(path) = ctx.arg(p, 1) else {
                    continue;
                };
                if process.is_some() {
                    ctx.logs(
                        p.word_loc(1),
                        format!("Process already set for track process {name} - ignoring {path}"),
                    );
                    continue;
                }
                process = Some(path.to_string());
                if p.words.len() > 2 {
                    t.args = p.words[2..].iter().map(|w| w.text.clone()).collect();
                    if t.param_match == ParamMatch::None {
                        t.param_match = ParamMatch::Exact;
                    }
                    t.full_command = true;
                }
            }
            "param_match" => match p.words.get(1).map(|w| w.text.as_str()) {
                None => {
                    t.param_match = ParamMatch::Exact;
                    t.full_command = true;
                }
                Some("initial") => {
                    t.param_match = ParamMatch::Initial;
                    t.full_command = true;
                }
                Some("partial") => {
                    t.param_match = ParamMatch::Partial;
                    t.full_command = true;
                }
                Some(other) => ctx.logs(
                    p.word_loc(1),
                    format!("Invalid param_match type {other} - ignoring"),
                ),
            },
            "weight" => {
                let Some(word) = p.words.get(1) else {
                    ctx.logs(
                        p.loc.clone(),
                        format!("No weight specified for track process {name} - ignoring"),
                    );
                    continue;
                };
                if t.weight != 0 {
                    ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Weight already set for track process {name} - ignoring {}",
                            word.text
                        ),
                    );
                    continue;
                }
                let Some(weight) = numbers::int(&word.text, -254, 254, true).value else {
                    ctx.logs(
                        p.word_loc(1),
                        format!(
                            "Weight ({}) for vrrp_track_process {name} must be between [-254..254] inclusive. Ignoring...",
                            word.text
                        ),
                    );
                    continue;
                };
                match p.words.get(2).map(|w| w.text.as_str()) {
                    None => {}
                    Some("reverse") => t.reverse = true,
                    Some(other) => ctx.logs(
                        p.word_loc(2),
                        format!("vrrp_track_process {name} unknown weight option {other}"),
                    ),
                }
                t.weight = i32::try_from(weight).unwrap_or(0);
            }
            "quorum" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::unsigned(text, 1, 65535, true).value {
                    None => ctx.logs(
                        p.word_loc(1),
                        format!("Quorum ({text}) for vrrp_track_process {name} must be between [1..65535] inclusive. Ignoring..."),
                    ),
                    Some(q) if q > u64::from(t.quorum_max) => ctx.logs(
                        p.word_loc(1),
                        "Quorum is greater than quorum_max - ignoring",
                    ),
                    Some(q) => t.quorum = u32::try_from(q).unwrap_or(1),
                }
            }
            "quorum_max" => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::unsigned(text, 0, 65535, true).value {
                    None => ctx.logs(
                        p.word_loc(1),
                        format!("quorum_max ({text}) for vrrp_track_process {name} must be between [0..65535] inclusive. Ignoring..."),
                    ),
                    Some(max) => {
                        let max = u32::try_from(max).unwrap_or(0);
                        if (max != 0 || t.quorum > 1) && max < t.quorum {
                            ctx.logs(p.word_loc(1), "quorum_max is less than quorum - ignoring");
                        } else {
                            t.quorum_max = max;
                            if max == 0 {
                                t.quorum = 0;
                            } else if t.quorum == 0 {
                                t.quorum = 1;
                            }
                        }
                    }
                }
            }
            which @ ("delay" | "fork_delay" | "terminate_delay") => {
                let Some(text) = ctx.arg(p, 1) else {
                    continue;
                };
                match numbers::decimal_micros(text, 1, 3_600_000_000, true).value {
                    None => ctx.logs(
                        p.word_loc(1),
                        format!(
                            "{}delay ({text}) for vrrp_track_process {name} must be between [0.000001..3600] inclusive. Ignoring...",
                            which.strip_suffix("delay").unwrap_or_default()
                        ),
                    ),
                    Some(us) => {
                        let delay = Some(Duration::from_micros(us));
                        if which != "fork_delay" {
                            t.terminate_delay = delay;
                        }
                        if which != "terminate_delay" {
                            t.fork_delay = delay;
                        }
                    }
                }
            }
            "full_command" => t.full_command = true,
            keyword => ctx.unused(p, &format!("'{keyword}' in vrrp_track_process")),
        }
    }
    let Some(process) = process else {
        ctx.logs(
            stmt.end_loc(),
            format!("track process '{name}' process name not specified"),
        );
        return None;
    };
    t.process = process;
    Some(TrackedProcess {
        loc: stmt.loc(),
        process: t,
    })
}

/// One `track_process` line of an instance or sync group `owner`:
/// `NAME [weight W [reverse|noreverse]]` (keepalived's
/// `alloc_track_process`); the tracker with the line's weight.
pub fn line(
    line: &Piece,
    owner: &str,
    known: &[TrackedProcess],
    already: &[TrackProcess],
    ctx: &mut Ctx<'_>,
) -> Option<TrackProcess> {
    let wanted = line.keyword();
    let Some(block) = known.iter().find(|p| p.process.name == wanted) else {
        ctx.logs(
            line.loc.clone(),
            format!("({owner}) track process {wanted} not found, ignoring..."),
        );
        return None;
    };
    if already.iter().any(|t| t.name == wanted) {
        ctx.logs(
            line.loc.clone(),
            format!("({owner}) duplicate track_process {wanted} - ignoring"),
        );
        return None;
    }
    let mut tracker = block.process.clone();
    if let Some(option) = line.words.get(1) {
        if option.text != "weight" {
            ctx.logs(
                line.word_loc(1),
                format!(
                    "({owner}) unknown track process option {} - ignoring",
                    option.text
                ),
            );
            return None;
        }
        let Some(value) = line.words.get(2) else {
            ctx.logs(
                line.loc.clone(),
                format!(
                    "({owner}) weight without value specified for track process {wanted} - ignoring"
                ),
            );
            return None;
        };
        match numbers::int(&value.text, -254, 254, true).value {
            Some(w) => tracker.weight = i32::try_from(w).unwrap_or(0),
            None => ctx.logs(
                line.word_loc(2),
                format!("({owner}) weight for track process {wanted} must be in [-254..254] inclusive. Ignoring..."),
            ),
        }
        match line.words.get(3).map(|w| w.text.as_str()) {
            None => {}
            Some("reverse") => tracker.reverse = true,
            Some("noreverse") => tracker.reverse = false,
            Some(other) => ctx.logs(
                line.word_loc(3),
                format!(
                    "({owner}) unknown track_process {wanted} weight option {other} - ignoring"
                ),
            ),
        }
    }
    Some(tracker)
}
