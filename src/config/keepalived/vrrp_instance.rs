//! keepalived's `vrrp_instance` and `vrrp_sync_group` blocks: read with keepalived's defaults and fallbacks, then mapped onto the model's VRRP instances with their tracking and notify actions.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::depend::ServiceRef;
use crate::config::diag::Location;
use crate::config::keepalived::Ctx;
use crate::config::keepalived::bfd::{self, BfdInstance};
use crate::config::keepalived::global_defs::Globals;
use crate::config::keepalived::lexer::Piece;
use crate::config::keepalived::numbers;
use crate::config::keepalived::track_file::TrackedFile;
use crate::config::keepalived::track_process::{self, TrackedProcess};
use crate::config::keepalived::tree::Stmt;
use crate::config::keepalived::vrrp_script::{self, Script};
use crate::config::model::{
    Action, AlertLine, Config, GarpSettings, MailAction, NotifyOn, Origin, TrackBfd, TrackFile,
    TrackProcess, TrackTarget, VirtualAddress, Vrid, VrrpInitialState, VrrpInstance, VrrpNotify,
    VrrpSyncGroup, VrrpTrack, VrrpVersion,
};

/// keepalived's `VRRP_PRIO_DFL` and `VRRP_PRIO_OWNER`.
const PRIORITY_DEFAULT: u8 = 100;
const PRIORITY_OWNER: u8 = 255;

/// One `vrrp_instance` as keepalived holds it after reading its block.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub loc: Location,
    pub interface: Option<String>,
    pub vrid: Option<u8>,
    pub priority: Option<u8>,
    pub advert_int: Option<Duration>,
    pub advert_loc: Option<Location>,
    pub version: Option<VrrpVersion>,
    pub state: Option<VrrpInitialState>,
    pub nopreempt: bool,
    pub nopreempt_loc: Option<Location>,
    pub preempt_delay: Option<Duration>,
    pub auth: Option<(AuthType, Location)>,
    pub auth_pass: Option<String>,
    pub vips: Vec<VirtualAddress>,
    /// `virtual_ipaddress_excluded`.
    pub excluded: Vec<VirtualAddress>,
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub garp_delay: Option<Duration>,
    pub garp_repeat: Option<u32>,
    /// Set by the instance (zero: no refresh, overriding the global).
    pub garp_refresh: Option<Duration>,
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<String>,
    /// `track_file` lines resolved against the `track_file` blocks above.
    pub track_files: Vec<TrackFileLine>,
    /// `track_process` lines resolved against the blocks above.
    pub track_processes: Vec<TrackProcess>,
    /// `track_bfd` lines resolved against the `bfd_instance` blocks above.
    pub track_bfds: Vec<(TrackBfd, Location)>,
    pub notify: Vec<(NotifyOn, Vec<String>, Piece)>,
    pub smtp_alert: Option<bool>,
    /// The address family the first VIP, source or peer set (true: IPv6);
    /// keepalived skips later addresses of the other family.
    pub v6: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    Pass,
    Ah,
}

/// One `track_file` line of an instance: the file block and the weight
/// keepalived uses (the line's, else the block's).
#[derive(Clone, Debug)]
pub struct TrackFileLine {
    pub file: TrackedFile,
    pub weight: i64,
    pub reverse: bool,
    /// The line gave no weight and the block's is the default 1.
    pub default_weight: bool,
    pub loc: Location,
}

/// One `track_script` line: the script, a weight that overrides the
/// script's own, and where it was written.
#[derive(Clone, Debug)]
pub struct TrackScript {
    pub name: String,
    pub weight: Option<i64>,
    /// `reverse`/`noreverse` after the weight; None: the script's own.
    pub reverse: Option<bool>,
    pub loc: Location,
}

/// One `vrrp_sync_group` as keepalived holds it after reading its block.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    pub name: String,
    pub loc: Location,
    pub members: Vec<(String, Location)>,
    /// Tracked by every member.
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<String>,
    /// `track_process` lines: every member tracks them.
    pub track_processes: Vec<(TrackProcess, Location)>,
    /// `track_file` lines: every member tracks them.
    pub track_files: Vec<TrackFileLine>,
    /// `track_bfd` lines: every member tracks them.
    pub track_bfds: Vec<(TrackBfd, Location)>,
    /// `sync_group_tracking_weight` (or the deprecated `global_tracking`):
    /// members keep their weighted tracking.
    pub tracking_weight: bool,
    pub notify: Vec<(NotifyOn, Vec<String>, Piece)>,
}

/// One `notify*` line of an instance or a sync group (`owner` names it in
/// keepalived's messages).
fn read_notify(
    piece: &Piece,
    owner: &str,
    list: &mut Vec<(NotifyOn, Vec<String>, Piece)>,
    globals: &Globals,
    ctx: &mut Ctx<'_>,
) {
    let kind = piece.keyword();
    let on = match kind {
        "notify" => NotifyOn::Any,
        "notify_master" => NotifyOn::Master,
        "notify_backup" => NotifyOn::Backup,
        "notify_fault" => NotifyOn::Fault,
        _ => NotifyOn::Stop,
    };
    if list.iter().any(|(o, _, _)| *o == on) {
        ctx.logs(
            piece.loc.clone(),
            format!("{owner} {kind} script already specified - ignoring"),
        );
        return;
    }
    if !globals.script_user_ok(ctx.fs) {
        ctx.logs(
            piece.loc.clone(),
            "Unable to set default user keepalived_script for script (keepalived does not run it)",
        );
        return;
    }
    let argv = vrrp_script::command(piece, ctx);
    if !argv.is_empty() {
        list.push((on, argv, piece.clone()));
    }
}

/// The blocks read so far that instances and sync groups track by name.
#[derive(Clone, Copy)]
pub struct Trackers<'a> {
    pub scripts: &'a [Script],
    pub files: &'a [TrackedFile],
    pub processes: &'a [TrackedProcess],
    pub bfds: &'a [BfdInstance],
}

/// Read one `vrrp_instance NAME { ... }`; None when keepalived skips it.
pub fn read(
    stmt: &Stmt,
    known: &[Instance],
    trackers: Trackers<'_>,
    globals: &Globals,
    ctx: &mut Ctx<'_>,
) -> Option<Instance> {
    let Trackers {
        scripts,
        files,
        processes,
        bfds,
    } = trackers;
    if stmt.piece.words.len() != 2 {
        ctx.ignores(
            stmt.loc(),
            "\"vrrp_instance must have a name\" (exactly one word after the keyword): keepalived skips the whole block",
        );
        return None;
    }
    let name = stmt.piece.words[1].text.clone();
    if known.iter().any(|i| i.name == name) {
        ctx.ignores(
            stmt.loc(),
            format!("vrrp instance {name} already defined: keepalived skips this block"),
        );
        return None;
    }
    let mut vi = Instance {
        name,
        loc: stmt.loc(),
        interface: None,
        vrid: None,
        priority: None,
        advert_int: None,
        advert_loc: None,
        version: None,
        state: None,
        nopreempt: false,
        nopreempt_loc: None,
        preempt_delay: None,
        auth: None,
        auth_pass: None,
        vips: Vec::new(),
        excluded: Vec::new(),
        unicast_src: None,
        unicast_peers: Vec::new(),
        garp_delay: None,
        garp_repeat: None,
        garp_refresh: None,
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        track_bfds: Vec::new(),
        notify: Vec::new(),
        smtp_alert: None,
        v6: None,
    };
    for child in stmt.children() {
        if child.keyword() == "track_file" {
            for line in child.values() {
                track_file_line(line, &mut vi, files, ctx);
            }
            continue;
        }
        if child.keyword() == "track_process" {
            let name = vi.name.clone();
            for line in child.values() {
                if let Some(tracker) =
                    track_process::line(line, &name, processes, &vi.track_processes, ctx)
                {
                    vi.track_processes.push(tracker);
                }
            }
            continue;
        }
        if child.keyword() == "track_bfd" {
            let name = vi.name.clone();
            for line in child.values() {
                let already: Vec<TrackBfd> = vi.track_bfds.iter().map(|(t, _)| t.clone()).collect();
                if let Some(tracker) = bfd::line(line, &name, bfds, &already, ctx) {
                    vi.track_bfds.push((tracker, line.loc.clone()));
                }
            }
            continue;
        }
        keyword(child, &mut vi, scripts, globals, ctx);
    }
    Some(vi)
}

fn keyword(
    child: &Stmt,
    vi: &mut Instance,
    scripts: &[Script],
    globals: &Globals,
    ctx: &mut Ctx<'_>,
) {
    let piece = &child.piece;
    let name = vi.name.clone();
    match child.keyword() {
        "state" => match ctx.arg(piece, 1) {
            Some("MASTER") => vi.state = Some(VrrpInitialState::Master),
            Some("BACKUP") => {
                if vi.state == Some(VrrpInitialState::Master) {
                    ctx.logs(
                        piece.loc.clone(),
                        format!("({name}) state previously set as MASTER - ignoring BACKUP"),
                    );
                } else {
                    vi.state = Some(VrrpInitialState::Backup);
                }
            }
            Some(other) => {
                ctx.logs(
                    piece.word_loc(1),
                    format!("({name}) unknown state '{other}', defaulting to BACKUP"),
                );
                vi.state = Some(VrrpInitialState::Backup);
            }
            None => {}
        },
        "interface" => {
            if let Some(ifname) = ctx.arg(piece, 1) {
                if ifname.len() >= 16 {
                    ctx.logs(
                        piece.word_loc(1),
                        format!("Interface name '{ifname}' too long - ignoring"),
                    );
                } else {
                    vi.interface = Some(ifname.to_string());
                }
            }
        }
        "virtual_router_id" => match ctx.unsigned(piece, 1, 1, 255, false) {
            Some(vrid) => vi.vrid = u8::try_from(vrid).ok(),
            None if piece.words.len() > 1 => ctx.logs(
                piece.loc.clone(),
                format!(
                    "({name}): VRID '{}' not valid - must be between 1 & 255",
                    piece.words[1].text
                ),
            ),
            None => {}
        },
        "priority" => {
            match ctx.unsigned(piece, 1, 1, 255, false) {
                Some(priority) => vi.priority = u8::try_from(priority).ok(),
                None if piece.words.len() > 1 => {
                    ctx.logs(
                    piece.loc.clone(),
                    format!("({name}) Priority not valid! must be between 1 & 255. Using default 100"),
                );
                    vi.priority = Some(PRIORITY_DEFAULT);
                }
                None => {}
            }
        }
        "advert_int" => match ctx.micros(piece, 1, 10_000, 255_000_000, true) {
            Some(micros) if micros > 0 => {
                vi.advert_int = Some(Duration::from_micros(micros));
                vi.advert_loc = Some(piece.loc.clone());
            }
            _ if piece.words.len() > 1 => ctx.logs(
                piece.loc.clone(),
                format!(
                    "({name}) Advert interval ({}) not valid! Must be > 0 - ignoring",
                    piece.words[1].text
                ),
            ),
            _ => {}
        },
        "version" => match ctx.int(piece, 1, 2, 3, true) {
            Some(2) => vi.version = Some(VrrpVersion::V2),
            Some(_) => vi.version = Some(VrrpVersion::V3),
            None if piece.words.len() > 1 => ctx.logs(
                piece.loc.clone(),
                format!("({name}): Version must be either 2 or 3"),
            ),
            None => {}
        },
        "nopreempt" => {
            vi.nopreempt = true;
            vi.nopreempt_loc = Some(piece.loc.clone());
        }
        "preempt" => vi.nopreempt = false,
        "preempt_delay" => match ctx.micros(piece, 1, 0, 1_000 * 1_000_000, true) {
            Some(micros) => {
                vi.preempt_delay = (micros > 0).then(|| Duration::from_micros(micros));
            }
            None if piece.words.len() > 1 => {
                ctx.logs(
                    piece.loc.clone(),
                    format!("({name}) Preempt_delay not valid! must be between 0-1000"),
                );
                vi.preempt_delay = None;
            }
            None => {}
        },
        "authentication" => authentication(child, vi, ctx),
        "virtual_ipaddress" => {
            for line in child.values() {
                if let Some(vip) = virtual_address(line, &name, ctx) {
                    if same_family(vi, vip.addr) {
                        vi.vips.push(vip);
                    } else {
                        ctx.logs(
                            line.loc.clone(),
                            format!(
                                "({name}): address family must match VRRP instance [{}] - ignoring",
                                line.keyword()
                            ),
                        );
                    }
                }
            }
        }
        "virtual_ipaddress_excluded" => {
            // Not advertised, so either address family (keepalived's
            // alloc_ipaddress without the instance's family check).
            for line in child.values() {
                if let Some(address) = virtual_address(line, &name, ctx) {
                    vi.excluded.push(address);
                }
            }
        }
        "unicast_src_ip" | "mcast_src_ip" => {
            if let Some(text) = ctx.arg(piece, 1) {
                match text.parse::<IpAddr>() {
                    Ok(addr) if !same_family(vi, addr) => ctx.logs(
                        piece.word_loc(1),
                        format!("Configuration error: VRRP instance[{name}] and src address[{text}] MUST be of the same family !!! Skipping..."),
                    ),
                    Ok(addr) if child.keyword() == "unicast_src_ip" => vi.unicast_src = Some(addr),
                    Ok(_) => ctx.unused(piece, "mcast_src_ip"),
                    Err(_) => ctx.logs(
                        piece.word_loc(1),
                        format!("Configuration error: VRRP instance[{name}] malformed src address[{text}]. Skipping..."),
                    ),
                }
            }
        }
        "unicast_peer" => {
            for line in child.values() {
                let text = line.keyword();
                match text.parse::<IpAddr>() {
                    Ok(addr) if !same_family(vi, addr) => ctx.logs(
                        line.loc.clone(),
                        format!("Configuration error: VRRP instance[{name}] and unicast peer address[{text}] MUST be of the same family !!! Skipping..."),
                    ),
                    Ok(addr) => {
                        if line.words.len() > 1 {
                            ctx.unused(line, "unicast_peer options (min_ttl, max_ttl)");
                        }
                        vi.unicast_peers.push(addr);
                    }
                    Err(_) => ctx.logs(
                        line.loc.clone(),
                        format!("Configuration error: VRRP instance[{name}] malformed unicast peer address[{text}]. Skipping..."),
                    ),
                }
            }
        }
        "garp_master_delay" => {
            if let Some(secs) = ctx.unsigned(piece, 1, 0, u64::from(u32::MAX) / 1_000_000, true) {
                vi.garp_delay = Some(Duration::from_secs(secs));
            }
        }
        "garp_master_repeat" => {
            if let Some(repeat) = ctx.unsigned(piece, 1, 0, u64::from(u32::MAX), true) {
                let repeat = if repeat == 0 {
                    ctx.logs(
                        piece.loc.clone(),
                        format!(
                            "({name}): garp_master_repeat must be greater than 0, setting to 1"
                        ),
                    );
                    1
                } else {
                    repeat
                };
                vi.garp_repeat = Some(u32::try_from(repeat).unwrap_or(u32::MAX));
            }
        }
        "garp_master_refresh" => {
            let refresh = ctx.unsigned(piece, 1, 0, u64::from(u32::MAX), true);
            // An invalid value is 0 too; 0 (no refresh) overrides the
            // global vrrp_garp_master_refresh.
            vi.garp_refresh = Some(Duration::from_secs(refresh.unwrap_or(0)));
        }
        "track_script" => {
            for line in child.values() {
                let name = vi.name.clone();
                track_script(line, &name, &mut vi.track_scripts, scripts, ctx);
            }
        }
        "track_interface" => {
            for line in child.values() {
                let ifname = line.keyword().to_string();
                if vi.track_interfaces.contains(&ifname) {
                    ctx.logs(
                        line.loc.clone(),
                        format!("({name}) duplicate track_interface {ifname} - ignoring"),
                    );
                    continue;
                }
                match line.words.get(1).map(|w| w.text.as_str()) {
                    None => vi.track_interfaces.push(ifname),
                    Some("weight") => ctx.unsupported(
                        line.loc.clone(),
                        "a track_interface weight (keepmon's tracked interfaces always mean FAULT when down)",
                    ),
                    Some(other) => ctx.logs(
                        line.word_loc(1),
                        format!("({name}) unknown track_interface {ifname} option {other} - ignoring"),
                    ),
                }
            }
        }
        "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
            read_notify(piece, &format!("({name})"), &mut vi.notify, globals, ctx);
        }
        "smtp_alert" => match piece.words.get(1) {
            None => vi.smtp_alert = Some(true),
            Some(word) => match numbers::true_false(&word.text) {
                Some(value) => vi.smtp_alert = Some(value),
                None => ctx.logs(
                    piece.word_loc(1),
                    format!("Invalid vrrp_instance smtp_alert parameter {}", word.text),
                ),
            },
        },
        "dont_track_primary" => ctx.unused(piece, "dont_track_primary"),
        keyword => ctx.unused(piece, &format!("'{keyword}' in vrrp_instance")),
    }
}

fn authentication(stmt: &Stmt, vi: &mut Instance, ctx: &mut Ctx<'_>) {
    for child in stmt.children() {
        let piece = &child.piece;
        match child.keyword() {
            "auth_type" => match ctx.arg(piece, 1) {
                Some("PASS") => vi.auth = Some((AuthType::Pass, piece.loc.clone())),
                Some("AH") => vi.auth = Some((AuthType::Ah, piece.loc.clone())),
                Some(other) => ctx.logs(
                    piece.word_loc(1),
                    format!("({}) unknown authentication type '{other}'", vi.name),
                ),
                None => {}
            },
            "auth_pass" => {
                if let Some(pass) = ctx.arg(piece, 1) {
                    let mut pass = pass.to_string();
                    if pass.len() > 8 {
                        ctx.logs(piece.word_loc(1), "Truncating auth_pass to 8 characters");
                        let mut end = 8;
                        while !pass.is_char_boundary(end) {
                            end -= 1;
                        }
                        pass.truncate(end);
                    }
                    vi.auth_pass = Some(pass);
                }
            }
            keyword => ctx.unused(piece, &format!("'{keyword}' in authentication")),
        }
    }
}

/// One `virtual_ipaddress` line: `ADDR[/LEN] [dev IF] [brd X] [scope S] [label L] ...`.
fn virtual_address(line: &Piece, name: &str, ctx: &mut Ctx<'_>) -> Option<VirtualAddress> {
    let text = line.keyword();
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let v6 = text.contains(':');
    let max_prefix: u8 = if v6 { 128 } else { 32 };
    let addr: IpAddr = match addr_text.parse() {
        Ok(addr) if matches!(addr, IpAddr::V6(_)) == v6 => addr,
        _ => {
            ctx.logs(
                line.loc.clone(),
                format!("VRRP parsed invalid IP {text}. skipping IP..."),
            );
            return None;
        }
    };
    let mut prefix = max_prefix;
    if let Some(p) = prefix_text {
        let read = numbers::unsigned(p, 0, u64::from(max_prefix), true);
        match read.value {
            Some(value) => prefix = u8::try_from(value).unwrap_or(max_prefix),
            None => ctx.logs(
                line.loc.clone(),
                format!("Invalid address prefix len {p} for address {text} - using {max_prefix}"),
            ),
        }
        if read.value.is_some() && read.complaint.is_some() {
            ctx.logs(line.loc.clone(), read.complaint.unwrap_or_default());
        }
    }
    let mut dev = None;
    let mut i = 1;
    while i < line.words.len() {
        let option = line.words[i].text.as_str();
        let takes_value = matches!(
            option,
            "dev"
                | "brd"
                | "broadcast"
                | "scope"
                | "label"
                | "peer"
                | "preferred_lft"
                | "track_group"
        );
        if takes_value && i + 1 >= line.words.len() {
            // keepalived drops the whole address.
            ctx.logs(
                line.word_loc(i),
                format!("No {option} parameter specified for {text}"),
            );
            return None;
        }
        match option {
            "dev" => {
                if dev.is_some() {
                    ctx.logs(
                        line.word_loc(i),
                        format!("Cannot specify ipaddress device more than once for {text}"),
                    );
                    return None;
                }
                dev = Some(line.words[i + 1].text.clone());
            }
            "brd" | "broadcast" | "scope" | "label" | "peer" | "preferred_lft" | "track_group" => {
                ctx.unused(line, &format!("the VIP option '{option}' ({name})"));
            }
            "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" => {
                ctx.unused(line, &format!("the VIP flag '{option}' ({name})"));
            }
            other => ctx.logs(
                line.word_loc(i),
                format!("Unknown configuration entry '{other}' for ip address - ignoring"),
            ),
        }
        i += if takes_value { 2 } else { 1 };
    }
    Some(VirtualAddress { addr, prefix, dev })
}

/// One `track_file` line: `NAME [weight W [reverse|noreverse]]`
/// (keepalived's `vrrp_alloc_track_file`).
fn track_file_line(line: &Piece, vi: &mut Instance, files: &[TrackedFile], ctx: &mut Ctx<'_>) {
    let name = vi.name.clone();
    if let Some(entry) = track_file_entry(line, &name, files, &vi.track_files, ctx) {
        vi.track_files.push(entry);
    }
}

/// One `track_file` line of an instance or sync group `name`, checked
/// against the lines `already` read.
fn track_file_entry(
    line: &Piece,
    name: &str,
    files: &[TrackedFile],
    already: &[TrackFileLine],
    ctx: &mut Ctx<'_>,
) -> Option<TrackFileLine> {
    let wanted = line.keyword();
    let Some(file) = files.iter().find(|f| f.name == wanted) else {
        ctx.logs(
            line.loc.clone(),
            format!("({name}) track file {wanted} not found, ignoring..."),
        );
        return None;
    };
    if already.iter().any(|t| t.file.name == wanted) {
        ctx.logs(
            line.loc.clone(),
            format!("({name}) duplicate track_file {wanted} - ignoring"),
        );
        return None;
    }
    let mut weight = file.weight;
    let mut reverse = file.reverse;
    let mut default_weight = file.weight == 1;
    if let Some(option) = line.words.get(1) {
        if option.text != "weight" {
            ctx.logs(
                line.word_loc(1),
                format!(
                    "({name}) unknown track file option {} - ignoring",
                    option.text
                ),
            );
            return None;
        }
        let Some(value) = line.words.get(2) else {
            ctx.logs(
                line.loc.clone(),
                format!(
                    "({name}) weight without value specified for track file {wanted} - ignoring"
                ),
            );
            return None;
        };
        match numbers::int(&value.text, -254, 254, true).value {
            Some(w) => {
                weight = w;
                default_weight = false;
            }
            None => ctx.logs(
                line.word_loc(2),
                format!("({name}) weight for track file {wanted} must be in [-254..254] inclusive. Ignoring..."),
            ),
        }
        reverse = false;
        match line.words.get(3).map(|w| w.text.as_str()) {
            None | Some("noreverse") => {}
            Some("reverse") => reverse = true,
            Some(other) => ctx.logs(
                line.word_loc(3),
                format!("({name}) unknown track file {wanted} weight option {other} - ignoring"),
            ),
        }
    }
    Some(TrackFileLine {
        file: file.clone(),
        weight,
        reverse,
        default_weight,
        loc: line.loc.clone(),
    })
}

/// One `track_script` line: `NAME [weight W [reverse|noreverse]]`.
fn track_script(
    line: &Piece,
    name: &str,
    list: &mut Vec<TrackScript>,
    scripts: &[Script],
    ctx: &mut Ctx<'_>,
) {
    let script = line.keyword().to_string();
    // keepalived looks the script up while reading this line: a vrrp_script
    // defined further down the file is not found.
    if !scripts.iter().any(|s| s.name == script) {
        ctx.logs(
            line.loc.clone(),
            format!("({name}) track script {script} not found, ignoring..."),
        );
        return;
    }
    if list.iter().any(|t| t.name == script) {
        ctx.logs(
            line.loc.clone(),
            format!("({name}) duplicate track_script {script} - ignoring"),
        );
        return;
    }
    let mut weight = None;
    let mut reverse = None;
    if let Some(option) = line.words.get(1) {
        if option.text != "weight" {
            ctx.logs(
                line.word_loc(1),
                format!(
                    "({name}) unknown track script option {} - ignoring",
                    option.text
                ),
            );
            return;
        }
        let Some(value) = line.words.get(2) else {
            ctx.logs(
                line.loc.clone(),
                format!(
                    "({name}) weight without value specified for track script {script} - ignoring"
                ),
            );
            return;
        };
        match numbers::int(&value.text, -254, 254, true).value {
            Some(w) if w.abs() == 254 => {
                ctx.logs(
                    line.word_loc(2),
                    format!("({name}) weight for {script} cannot be +/-254. Setting to +/-253"),
                );
                weight = Some(w.signum() * 253);
            }
            Some(w) => weight = Some(w),
            None => ctx.logs(
                line.word_loc(2),
                format!("({name}) track script {script}: weight must be between [-253..253] inclusive, ignoring..."),
            ),
        }
        match line.words.get(3).map(|w| w.text.as_str()) {
            None => {}
            Some("noreverse") => reverse = Some(false),
            Some("reverse") => reverse = Some(true),
            Some(other) => ctx.logs(
                line.word_loc(3),
                format!("({name}) unknown track_script {script} weight option {other} - ignoring"),
            ),
        }
    }
    list.push(TrackScript {
        name: script,
        weight,
        reverse,
        loc: line.loc.clone(),
    });
}

/// Read one `vrrp_sync_group NAME { group { ... } ... }`.
pub fn read_sync_group(
    stmt: &Stmt,
    known: &[SyncGroup],
    trackers: Trackers<'_>,
    globals: &Globals,
    ctx: &mut Ctx<'_>,
) -> Option<SyncGroup> {
    let Trackers {
        scripts,
        files,
        processes,
        bfds,
    } = trackers;
    if stmt.piece.words.len() != 2 {
        ctx.ignores(
            stmt.loc(),
            "\"vrrp_sync_group must have a name - skipping\": keepalived skips the whole block",
        );
        return None;
    }
    let name = stmt.piece.words[1].text.clone();
    if known.iter().any(|g| g.name == name) {
        ctx.ignores(
            stmt.loc(),
            format!("vrrp sync group {name} already defined: keepalived skips this block"),
        );
        return None;
    }
    let mut group = SyncGroup {
        name,
        loc: stmt.loc(),
        members: Vec::new(),
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        track_processes: Vec::new(),
        track_files: Vec::new(),
        track_bfds: Vec::new(),
        tracking_weight: false,
        notify: Vec::new(),
    };
    let mut had_group = false;
    for child in stmt.children() {
        match child.keyword() {
            "group" if had_group => ctx.ignores(
                child.loc(),
                format!("Group list already specified for sync group {}", group.name),
            ),
            "group" => {
                had_group = true;
                if child.values().is_empty() {
                    ctx.logs(
                        child.loc(),
                        format!("Warning - sync group {} has empty group block", group.name),
                    );
                }
                for line in child.values() {
                    for (i, word) in line.words.iter().enumerate() {
                        group.members.push((word.text.clone(), line.word_loc(i)));
                    }
                }
            }
            "track_script" => {
                for line in child.values() {
                    track_script(line, &group.name, &mut group.track_scripts, scripts, ctx);
                }
            }
            "track_interface" => {
                for line in child.values() {
                    let ifname = line.keyword().to_string();
                    if line.words.len() > 1 {
                        ctx.unsupported(
                            line.loc.clone(),
                            "a sync group's track_interface with options (keepmon's tracked interfaces always mean FAULT when down)",
                        );
                    } else if !group.track_interfaces.contains(&ifname) {
                        group.track_interfaces.push(ifname);
                    }
                }
            }
            "track_process" => {
                for line in child.values() {
                    let already: Vec<TrackProcess> = group
                        .track_processes
                        .iter()
                        .map(|(t, _)| t.clone())
                        .collect();
                    if let Some(tracker) =
                        track_process::line(line, &group.name, processes, &already, ctx)
                    {
                        group.track_processes.push((tracker, line.loc.clone()));
                    }
                }
            }
            "track_file" => {
                for line in child.values() {
                    if let Some(entry) =
                        track_file_entry(line, &group.name, files, &group.track_files, ctx)
                    {
                        group.track_files.push(entry);
                    }
                }
            }
            "track_bfd" => {
                for line in child.values() {
                    let already: Vec<TrackBfd> =
                        group.track_bfds.iter().map(|(t, _)| t.clone()).collect();
                    if let Some(tracker) = bfd::line(line, &group.name, bfds, &already, ctx) {
                        group.track_bfds.push((tracker, line.loc.clone()));
                    }
                }
            }
            "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                let owner = format!("vrrp group {}:", group.name);
                read_notify(&child.piece, &owner, &mut group.notify, globals, ctx);
            }
            "global_tracking" => {
                ctx.logs(
                    child.loc(),
                    format!("({}) global_tracking is deprecated. Use track_interface/script/file on the sync group", group.name),
                );
                group.tracking_weight = true;
            }
            "sync_group_tracking_weight" => group.tracking_weight = true,
            keyword => ctx.unused(&child.piece, &format!("'{keyword}' in vrrp_sync_group")),
        }
    }
    Some(group)
}

/// Turn the instances into model VRRP instances with their tracking and
/// notify actions; returns the names of the scripts they track.
pub fn apply(
    instances: Vec<Instance>,
    groups: &[SyncGroup],
    scripts: &[Script],
    globals: &Globals,
    config: &mut Config,
    ctx: &mut Ctx<'_>,
) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    // keepalived's vrrp_sync_set_group: each instance joins the first
    // group that names it.
    let mut member_of: Vec<(String, usize)> = Vec::new();
    let mut kept: Vec<(usize, Vec<String>)> = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        if group.members.is_empty() {
            ctx.ignores(
                group.loc.clone(),
                format!(
                    "Sync group {} has no virtual router(s). removing",
                    group.name
                ),
            );
            continue;
        }
        let mut members = Vec::new();
        for (member, at) in &group.members {
            if !instances.iter().any(|i| &i.name == member) {
                ctx.ignores(
                    at.clone(),
                    format!("Virtual router {member} specified in sync group {} doesn't exist - ignoring", group.name),
                );
            } else if member_of.iter().any(|(m, _)| m == member) {
                ctx.ignores(
                    at.clone(),
                    format!("Virtual router {member} cannot exist in more than one sync group; ignoring {}", group.name),
                );
            } else {
                member_of.push((member.clone(), index));
                members.push(member.clone());
            }
        }
        if members.is_empty() {
            ctx.ignores(
                group.loc.clone(),
                format!("Sync group {}, no matching virtual router found in group declaration - removing", group.name),
            );
            continue;
        }
        if members.len() == 1 {
            ctx.logs(
                group.loc.clone(),
                format!("Sync group {} has only 1 virtual router(s) - this probably isn't what you want", group.name),
            );
        }
        let owners = instances
            .iter()
            .filter(|i| members.contains(&i.name))
            .filter(|i| i.priority == Some(PRIORITY_OWNER))
            .count();
        if owners > 0 && owners < members.len() {
            ctx.logs(
                group.loc.clone(),
                format!("Sync group {} has some member(s) as address owner and some not as address owner. This won't work.", group.name),
            );
        }
        kept.push((index, members));
    }
    for vi in instances {
        let group = member_of
            .iter()
            .find(|(m, _)| *m == vi.name)
            .map(|(_, index)| &groups[*index]);
        if let Some(instance) = complete(vi, group, scripts, globals, &mut used, ctx) {
            config.vrrp.insert(instance.name.clone(), instance);
        }
    }
    for (index, members) in kept {
        let group = &groups[index];
        // A member that did not complete stops keepalived's VRRP side
        // (an error is already reported); keep the rest consistent.
        let members: Vec<String> = members
            .into_iter()
            .filter(|m| config.vrrp.contains_key(m))
            .collect();
        let has_owner = members
            .iter()
            .any(|m| config.vrrp[m].priority == PRIORITY_OWNER);
        // keepalived's sync_group_tracking_init: the group's tracking
        // applies to every member.
        for entry in &group.track_scripts {
            let Some(script) = scripts.iter().find(|s| s.name == entry.name) else {
                continue;
            };
            if script.path.is_none() {
                continue;
            }
            let mut weight = entry.weight.unwrap_or(script.weight);
            if has_owner && weight != 0 {
                ctx.logs(
                    entry.loc.clone(),
                    format!("({}) Cannot have weighted track script '{}' with member having priority {PRIORITY_OWNER} - clearing weight", group.name, script.name),
                );
                weight = 0;
            }
            used.insert(script.name.clone());
            for member in &members {
                if let Some(instance) = config.vrrp.get_mut(member) {
                    instance.track.push(VrrpTrack {
                        target: TrackTarget::Service(ServiceRef {
                            group: vrrp_script::GROUP.to_string(),
                            service: script.name.clone(),
                        }),
                        weight: i32::try_from(weight).unwrap_or(0),
                        reverse: entry.reverse.unwrap_or(script.reverse),
                    });
                }
            }
        }
        // keepalived's sync_group_tracking_init for files: an address
        // owner among the members clears the weight; a member already
        // tracking the file takes the group's weight unless its own is 0
        // (add_obj_to_track_file).
        for line in &group.track_files {
            let mut weight = line.weight;
            if has_owner && weight != 0 {
                ctx.logs(
                    line.loc.clone(),
                    format!("({}) Cannot have weighted track file '{}' with member having priority {PRIORITY_OWNER} - setting weight 0", group.name, line.file.name),
                );
                weight = 0;
            }
            let weight = i32::try_from(weight).unwrap_or(0);
            for member in &members {
                let Some(instance) = config.vrrp.get_mut(member) else {
                    continue;
                };
                match instance
                    .track_files
                    .iter_mut()
                    .find(|t| t.path == line.file.path)
                {
                    Some(own) => {
                        ctx.ignores(
                            line.loc.clone(),
                            format!("({member}) track_file {} is configured on VRRP instance and sync group. Remove vrrp instance config", line.file.name),
                        );
                        if own.weight != 0 {
                            own.weight = weight;
                            own.reverse = line.reverse;
                        }
                    }
                    None => instance.track_files.push(TrackFile {
                        path: line.file.path.clone(),
                        weight,
                        reverse: line.reverse,
                    }),
                }
            }
        }
        // keepalived's sync_group_tracking_init for processes: an address
        // owner among the members clears the weight; a member already
        // tracking the process takes the group's weight unless its own
        // is 0 (add_vrrp_to_track_process).
        for (tracker, at) in &group.track_processes {
            let mut tracker = tracker.clone();
            if has_owner && tracker.weight != 0 {
                ctx.logs(
                    at.clone(),
                    format!("({}) Cannot have weighted track process '{}' with member having priority {PRIORITY_OWNER} - setting weight 0", group.name, tracker.name),
                );
                tracker.weight = 0;
            }
            for member in &members {
                let Some(instance) = config.vrrp.get_mut(member) else {
                    continue;
                };
                match instance
                    .track_processes
                    .iter_mut()
                    .find(|t| t.name == tracker.name)
                {
                    Some(own) => {
                        ctx.ignores(
                            at.clone(),
                            format!("({member}) track_process {} is configured on VRRP instance and sync group. Remove vrrp instance config", tracker.name),
                        );
                        if own.weight != 0 {
                            own.weight = tracker.weight;
                        }
                    }
                    None => instance.track_processes.push(tracker.clone()),
                }
            }
        }
        // keepalived's sync_group_tracking_init for BFD: an address owner
        // among the members clears the weight; a member already tracking
        // the session takes the group's weight unless its own is 0
        // (add_vrrp_to_track_bfd).
        for (tracker, at) in &group.track_bfds {
            let mut tracker = tracker.clone();
            if has_owner && tracker.weight != 0 {
                ctx.logs(
                    at.clone(),
                    format!("({}) Cannot have weighted track bfd '{}' with member having priority {PRIORITY_OWNER} - setting weight 0", group.name, tracker.name),
                );
                tracker.weight = 0;
            }
            for member in &members {
                let Some(instance) = config.vrrp.get_mut(member) else {
                    continue;
                };
                match instance
                    .track_bfds
                    .iter_mut()
                    .find(|t| t.name == tracker.name)
                {
                    Some(own) => {
                        ctx.ignores(
                            at.clone(),
                            format!("({member}) track_bfd {} is configured on VRRP instance and sync group. Remove vrrp instance config", tracker.name),
                        );
                        if own.weight != 0 {
                            own.weight = tracker.weight;
                            own.reverse = tracker.reverse;
                        }
                    }
                    None => instance.track_bfds.push(tracker.clone()),
                }
            }
        }
        for ifname in &group.track_interfaces {
            for member in &members {
                if let Some(instance) = config.vrrp.get_mut(member)
                    && !instance.track_interfaces.contains(ifname)
                {
                    instance.track_interfaces.push(ifname.clone());
                }
            }
        }
        let notify = notify_lines(&group.notify, globals, ctx);
        config.vrrp_sync_groups.insert(
            group.name.clone(),
            VrrpSyncGroup {
                name: group.name.clone(),
                members,
                notify,
                origin: Origin(group.loc.clone()),
            },
        );
    }
    used
}

/// keepalived's `chk_min_cfg` and `vrrp_complete_instance`: defaults,
/// corrections, and the checks that stop the VRRP side from running.
fn complete(
    vi: Instance,
    sync: Option<&SyncGroup>,
    scripts: &[Script],
    globals: &Globals,
    used: &mut BTreeSet<String>,
    ctx: &mut Ctx<'_>,
) -> Option<VrrpInstance> {
    let name = vi.name.clone();
    let Some(vrid) = vi.vrid.and_then(Vrid::new) else {
        ctx.diags.error(
            vi.loc.clone(),
            format!("({name}) the virtual router id must be set; keepalived's VRRP does not start"),
        );
        return None;
    };
    let Some(interface) = vi.interface.clone() else {
        if vi.unicast_peers.is_empty() {
            ctx.diags.error(
                vi.loc.clone(),
                format!(
                    "({name}) Unknown interface! (no interface); keepalived's VRRP does not start"
                ),
            );
        } else {
            ctx.unsupported(
                vi.loc.clone(),
                format!("({name}) a unicast instance without an interface"),
            );
        }
        return None;
    };
    let v6 = vi
        .vips
        .first()
        .map(|a| a.addr.is_ipv6())
        .or_else(|| vi.unicast_peers.first().map(IpAddr::is_ipv6))
        .unwrap_or(false);
    let version = if v6 {
        VrrpVersion::V3
    } else {
        vi.version.unwrap_or_else(|| globals.version())
    };
    if vi.vips.is_empty() {
        if version == VrrpVersion::V3 {
            ctx.diags.error(
                vi.loc.clone(),
                format!("({name}) No VIP specified; at least one is required; keepalived's VRRP does not start"),
            );
            return None;
        }
        // keepalived logs "at least one is sensible" and sends adverts
        // that carry no address; keepmon's adverts always carry one.
        ctx.unsupported(
            vi.loc.clone(),
            format!("({name}) has no virtual_ipaddress: keepalived runs it, sending adverts with no address; keepmon needs at least one"),
        );
        return None;
    }
    let priority = vi.priority.unwrap_or(match vi.state {
        Some(VrrpInitialState::Master) => PRIORITY_OWNER,
        _ => PRIORITY_DEFAULT,
    });
    if vi.priority.is_none() && vi.state == Some(VrrpInitialState::Master) {
        ctx.ignores(
            vi.loc.clone(),
            format!("({name}) has state MASTER and no priority: keepalived uses priority 255 (address owner)"),
        );
    }
    let initial_state = vi.state.unwrap_or(if priority == PRIORITY_OWNER {
        VrrpInitialState::Master
    } else {
        VrrpInitialState::Backup
    });
    let mut auth_pass = None;
    if let Some((auth, at)) = &vi.auth {
        if version == VrrpVersion::V3 {
            ctx.logs(
                at.clone(),
                format!("({name}) VRRP version 3 does not support authentication. Ignoring."),
            );
        } else if vi.auth_pass.as_deref().unwrap_or_default().is_empty() {
            ctx.logs(
                at.clone(),
                format!("({name}) Authentication specified but no password given. Ignoring"),
            );
        } else if *auth == AuthType::Ah {
            ctx.unsupported(at.clone(), "AH authentication (keepmon speaks PASS only)");
        } else {
            auth_pass = vi.auth_pass.clone();
        }
    } else if vi.auth_pass.is_some() {
        ctx.ignores(
            vi.loc.clone(),
            format!("({name}) has auth_pass without auth_type: keepalived sends no authentication"),
        );
    }
    let mut nopreempt = vi.nopreempt;
    let mut preempt_delay = vi.preempt_delay;
    let nopreempt_at = vi.nopreempt_loc.clone().unwrap_or_else(|| vi.loc.clone());
    if priority == PRIORITY_OWNER && nopreempt {
        ctx.logs(
            nopreempt_at.clone(),
            format!("({name}) nopreempt is incompatible with priority 255. resetting nopreempt"),
        );
        nopreempt = false;
    }
    if initial_state == VrrpInitialState::Master {
        if nopreempt {
            ctx.logs(nopreempt_at, format!("({name}) Warning - nopreempt will not work with initial state MASTER - clearing"));
            nopreempt = false;
        }
        if preempt_delay.is_some() {
            ctx.logs(vi.loc.clone(), format!("({name}) Warning - preempt delay will not work with initial state MASTER - clearing"));
            preempt_delay = None;
        }
    }
    let mut track = Vec::new();
    for entry in &vi.track_scripts {
        let Some(script) = scripts.iter().find(|s| s.name == entry.name) else {
            continue;
        };
        if script.path.is_none() {
            continue;
        }
        let weight = entry.weight.unwrap_or(script.weight);
        // vrrp_complete_instance: "In case of VRRP SYNC, we have to
        // carefully check that we are not running floating priorities".
        if weight != 0 && (priority == PRIORITY_OWNER || sync.is_some_and(|g| !g.tracking_weight)) {
            ctx.logs(
                entry.loc.clone(),
                format!(
                    "({name}) ignoring tracked script {} with weights due to {}",
                    script.name,
                    if sync.is_some_and(|g| !g.tracking_weight) {
                        "SYNC group"
                    } else {
                        "address_owner"
                    }
                ),
            );
            continue;
        }
        used.insert(script.name.clone());
        track.push(VrrpTrack {
            target: TrackTarget::Service(ServiceRef {
                group: vrrp_script::GROUP.to_string(),
                service: script.name.clone(),
            }),
            weight: i32::try_from(weight).unwrap_or(0),
            reverse: entry.reverse.unwrap_or(script.reverse),
        });
    }
    let mut track_files = Vec::new();
    for line in &vi.track_files {
        let sync_no_weight = sync.is_some_and(|g| !g.tracking_weight);
        let mut weight = line.weight;
        // vrrp_complete_instance: a sync group (without
        // sync_group_tracking_weight) and an address owner use no weights.
        if weight != 0 && (sync_no_weight || priority == PRIORITY_OWNER) {
            let why = if sync_no_weight {
                "SYNC group"
            } else {
                "address_owner"
            };
            if line.default_weight {
                ctx.logs(
                    line.loc.clone(),
                    format!("({name}) ignoring weight from tracked file {} due to {why}. specify weight 0", line.file.name),
                );
                weight = 0;
            } else {
                ctx.logs(
                    line.loc.clone(),
                    format!(
                        "({name}) ignoring tracked file {} with weight {weight} due to {why}",
                        line.file.name
                    ),
                );
                continue;
            }
        }
        track_files.push(TrackFile {
            path: line.file.path.clone(),
            weight: i32::try_from(weight).unwrap_or(0),
            reverse: line.reverse,
        });
    }
    let mut track_bfds = Vec::new();
    for (tracker, at) in &vi.track_bfds {
        let sync_no_weight = sync.is_some_and(|g| !g.tracking_weight);
        // vrrp_complete_instance: "Ignore any weighted tracked bfd".
        if tracker.weight != 0 && (sync_no_weight || priority == PRIORITY_OWNER) {
            ctx.logs(
                at.clone(),
                format!(
                    "({name}) ignoring tracked bfd {} with weight {} due to {}",
                    tracker.name,
                    tracker.weight,
                    if sync_no_weight {
                        "SYNC group"
                    } else {
                        "address_owner"
                    }
                ),
            );
            continue;
        }
        track_bfds.push(tracker.clone());
    }
    let notify = notify_actions(&vi, globals, ctx);
    Some(VrrpInstance {
        name: name.clone(),
        interface,
        vrid,
        priority,
        advert_int: advert_interval(&vi, version, ctx),
        version,
        initial_state,
        nopreempt,
        preempt_delay,
        auth_pass,
        virtual_addresses: vi.vips.clone(),
        excluded_addresses: vi.excluded.clone(),
        unicast_src: vi.unicast_src,
        unicast_peers: vi.unicast_peers.clone(),
        garp: GarpSettings {
            master_delay: vi
                .garp_delay
                .or(globals.garp_delay)
                .unwrap_or(Duration::from_secs(5)),
            master_repeat: vi.garp_repeat.or(globals.garp_repeat).unwrap_or(5),
            master_refresh: vi
                .garp_refresh
                .or(globals.garp_refresh)
                .filter(|refresh| !refresh.is_zero()),
        },
        track,
        track_interfaces: vi.track_interfaces.clone(),
        track_files,
        track_processes: vi.track_processes.clone(),
        track_bfds,
        v3_checksum_as_v2: false,
        notify,
        origin: Origin(vi.loc.clone()),
    })
}

/// The notify scripts (keepalived's argv and state filter) and the
/// `smtp_alert` mail.
fn notify_actions(vi: &Instance, globals: &Globals, ctx: &mut Ctx<'_>) -> Vec<AlertLine> {
    let mut lines = notify_lines(&vi.notify, globals, ctx);
    let smtp_alert = vi
        .smtp_alert
        .or(globals.smtp_alert_vrrp)
        .or(globals.smtp_alert)
        .unwrap_or(false);
    if smtp_alert {
        if globals.emails.is_empty() {
            ctx.ignores(
                vi.loc.clone(),
                format!("({}) smtp_alert without notification_email in global_defs: keepalived sends no mail", vi.name),
            );
        } else {
            lines.push(AlertLine {
                name: "smtp_alert".to_string(),
                exit: None,
                action: Action::Mail(MailAction {
                    to: globals.emails.clone(),
                    subject: None,
                    from: globals.email_from.clone(),
                }),
            });
        }
    }
    lines
}

/// keepalived-style notify actions for the `notify*` lines whose program
/// exists.
fn notify_lines(
    notify: &[(NotifyOn, Vec<String>, Piece)],
    globals: &Globals,
    ctx: &mut Ctx<'_>,
) -> Vec<AlertLine> {
    let mut lines = Vec::new();
    // read_notify only keeps scripts when there is a user to run them as.
    let run_as = globals.default_run_as(ctx.fs).ok().flatten();
    for (on, argv, piece) in notify {
        let Some(path) = vrrp_script::find_program(&argv[0], ctx) else {
            ctx.ignores(
                piece.loc.clone(),
                format!(
                    "the {} script {} is not found; keepalived does not run it",
                    piece.keyword(),
                    argv[0]
                ),
            );
            continue;
        };
        if !vrrp_script::secure(&path, run_as.as_ref(), globals, &piece.loc, ctx) {
            continue;
        }
        lines.push(AlertLine {
            name: piece.keyword().to_string(),
            exit: None,
            action: Action::Notify(VrrpNotify {
                path,
                args: argv[1..].to_vec(),
                on: *on,
                run_as: run_as.clone(),
            }),
        });
    }
    lines
}

/// Whether `addr` has the instance's address family; the first address
/// sets it.
fn same_family(vi: &mut Instance, addr: IpAddr) -> bool {
    match vi.v6 {
        None => {
            vi.v6 = Some(addr.is_ipv6());
            true
        }
        Some(v6) => v6 == addr.is_ipv6(),
    }
}

/// keepalived's rounding of the advert interval to what the version can
/// carry: whole seconds below 256 s for v2, centiseconds below 40.96 s for v3.
fn advert_interval(vi: &Instance, version: VrrpVersion, ctx: &mut Ctx<'_>) -> Duration {
    let Some(advert) = vi.advert_int else {
        return Duration::from_secs(1);
    };
    let micros = u64::try_from(advert.as_micros()).unwrap_or(u64::MAX);
    let name = &vi.name;
    let at = vi.advert_loc.clone().unwrap_or_else(|| vi.loc.clone());
    let (unit, max_units, what) = match version {
        VrrpVersion::V2 => (1_000_000u64, 255u64, "VRRPv2"),
        VrrpVersion::V3 => (10_000u64, 4095u64, "VRRPv3"),
    };
    if micros >= (max_units + 1) * unit {
        ctx.logs(
            at,
            format!(
                "({name}) {what} advertisement interval is out of range; setting it to the largest"
            ),
        );
        return Duration::from_micros(max_units * unit);
    }
    if micros % unit == 0 {
        return advert;
    }
    ctx.logs(
        at,
        format!(
            "({name}) {what} advertisement interval {}s must be {} - rounding",
            micros as f64 / 1e6,
            if version == VrrpVersion::V2 {
                "an integer"
            } else {
                "in units of 10ms"
            }
        ),
    );
    let rounded = (micros + unit / 2) / unit * unit;
    Duration::from_micros(rounded.max(unit))
}
