//! keepalived's `vrrp_track_process` (core/track_process.c, vrrp/vrrp_track.c, 2.2.7): which running processes match a tracker, its quorum with the fork/terminate delays, and what it does to an instance; pure, except [`scan`], which reads /proc.
//!
//! keepalived hears of every fork, exec and exit from the kernel's proc
//! connector; keepmon reads /proc every [`POLL`] instead (a process that
//! lives less than that may go unseen). The matching is keepalived's:
//!
//! - Without `full_command` the process name is `comm` (the name in
//!   `/proc/PID/stat`, at most 15 characters, up to its first `)`); zombies
//!   never match.
//! - With `full_command` (or arguments, or `param_match`) the first word of
//!   `/proc/PID/cmdline` must be the process; `param_match` compares the
//!   words after it: `exact` all of them, `partial` the configured ones
//!   first, `initial` the same but the last one may be cut short.

use std::time::Duration;

use crate::config::model::{ParamMatch, TrackProcess};

/// How often /proc is read.
pub const POLL: Duration = Duration::from_millis(200);

/// One running process as /proc shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// `comm` as keepalived cuts it out of `/proc/PID/stat`.
    pub comm: Vec<u8>,
    /// `/proc/PID/cmdline`: NUL-terminated words.
    pub cmdline: Vec<u8>,
    pub zombie: bool,
}

/// Whether `proc` is one of the processes `tracker` counts.
pub fn matches(tracker: &TrackProcess, proc: &ProcInfo) -> bool {
    if proc.zombie {
        return false;
    }
    if !tracker.full_command {
        return proc.comm == tracker.process.as_bytes();
    }
    let argv0_end = proc
        .cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(proc.cmdline.len());
    if &proc.cmdline[..argv0_end] != tracker.process.as_bytes() {
        return false;
    }
    if tracker.param_match == ParamMatch::None {
        return true;
    }
    let params = proc.cmdline.get(argv0_end + 1..).unwrap_or_default();
    check_params(tracker, params)
}

/// keepalived's `check_params`: `params` are the NUL-terminated words after
/// the first.
fn check_params(tracker: &TrackProcess, params: &[u8]) -> bool {
    let wanted: Vec<u8> = tracker
        .args
        .iter()
        .flat_map(|a| a.bytes().chain([0]))
        .collect();
    let have_wanted = !tracker.args.is_empty();
    if tracker.param_match == ParamMatch::Exact && !have_wanted && params.is_empty() {
        return true;
    }
    if params.len() < wanted.len() {
        return false;
    }
    match tracker.param_match {
        ParamMatch::Exact => params.len() == wanted.len() && params == wanted.as_slice(),
        _ if !have_wanted => true,
        ParamMatch::Partial => params.starts_with(&wanted),
        // Initial: the last word may be a prefix (its NUL is not compared).
        _ => wanted.len() == 1 || params.starts_with(&wanted[..wanted.len() - 1]),
    }
}

/// A tracker's quorum over time: the count seen at each poll in, whether
/// it is up out, with keepalived's fork and terminate delays.
#[derive(Clone, Debug)]
pub struct Quorum {
    up: bool,
    /// A change seen but not yet applied: (the new state, when it applies).
    pending: Option<(bool, Duration)>,
}

impl Quorum {
    /// The state at start, from the first count (keepalived reads /proc
    /// once at start and applies it without delay).
    pub fn start(tracker: &TrackProcess, count: u32) -> Quorum {
        Quorum {
            up: in_quorum(tracker, count),
            pending: None,
        }
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// A new count at `now`; true when the applied state changed.
    pub fn observe(&mut self, tracker: &TrackProcess, now: Duration, count: u32) -> bool {
        let seen = in_quorum(tracker, count);
        if seen == self.up {
            self.pending = None;
            return false;
        }
        let delay = if seen {
            tracker.fork_delay
        } else {
            tracker.terminate_delay
        };
        let due = match self.pending {
            Some((state, due)) if state == seen => due,
            _ => now + delay.unwrap_or_default(),
        };
        if now >= due {
            self.up = seen;
            self.pending = None;
            true
        } else {
            self.pending = Some((seen, due));
            false
        }
    }
}

fn in_quorum(tracker: &TrackProcess, count: u32) -> bool {
    tracker.quorum <= count && count <= tracker.quorum_max
}

/// What a tracker in state `up` does to its instance: FAULT, or the
/// amount added to the priority (keepalived's
/// `process_update_track_process_status`).
pub fn effect(tracker: &TrackProcess, up: bool) -> Effect {
    if tracker.weight == 0 {
        return if up == tracker.reverse {
            Effect::Fault
        } else {
            Effect::Add(0)
        };
    }
    let multiplier = if tracker.reverse { -1 } else { 1 };
    if (tracker.weight > 0) == up {
        Effect::Add(tracker.weight * multiplier)
    } else {
        Effect::Add(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Fault,
    Add(i32),
}

/// Every process now running, read from /proc (`comm` and zombie state
/// from `stat`; `cmdline` only when `cmdline` is true).
pub fn scan(cmdline: bool) -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut procs = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((comm, zombie)) = comm_of(&stat) else {
            continue;
        };
        let cmdline = if cmdline {
            std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
        } else {
            Vec::new()
        };
        procs.push(ProcInfo {
            comm,
            cmdline,
            zombie,
        });
    }
    procs
}

/// `comm` and the zombie state from `/proc/PID/stat` as keepalived reads
/// them: from the first `(` after the second byte to the first `)` after
/// it; the state two bytes later.
pub fn comm_of(stat: &[u8]) -> Option<(Vec<u8>, bool)> {
    let open = 2 + stat.get(2..)?.iter().position(|&b| b == b'(')?;
    let close = open + stat[open..].iter().position(|&b| b == b')')?;
    let comm = stat[open + 1..close].to_vec();
    Some((comm, stat.get(close + 2) == Some(&b'Z')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(process: &str, args: &[&str], param_match: ParamMatch) -> TrackProcess {
        TrackProcess {
            name: "t".to_string(),
            process: process.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            param_match,
            full_command: param_match != ParamMatch::None || !args.is_empty(),
            quorum: 1,
            quorum_max: u32::MAX,
            weight: 0,
            reverse: false,
            fork_delay: None,
            terminate_delay: None,
        }
    }

    fn proc(comm: &str, cmdline: &[&str]) -> ProcInfo {
        ProcInfo {
            comm: comm.as_bytes().to_vec(),
            cmdline: cmdline.iter().flat_map(|w| w.bytes().chain([0])).collect(),
            zombie: false,
        }
    }

    #[test]
    fn processes_match_as_keepalived_matches_them() {
        let nginx = proc("nginx", &["/usr/sbin/nginx", "-g", "daemon off;"]);
        let by_comm = tracker("nginx", &[], ParamMatch::None);
        assert!(matches(&by_comm, &nginx));
        assert!(!matches(
            &by_comm,
            &ProcInfo {
                zombie: true,
                ..nginx.clone()
            }
        ));
        let mut full = tracker("/usr/sbin/nginx", &[], ParamMatch::None);
        full.full_command = true;
        assert!(matches(&full, &nginx));
        let cases = [
            (ParamMatch::Exact, &["-g", "daemon off;"][..], true),
            (ParamMatch::Exact, &["-g"][..], false),
            (ParamMatch::Exact, &[][..], false),
            (ParamMatch::Partial, &["-g"][..], true),
            (ParamMatch::Partial, &["-g", "daemon"][..], false),
            (ParamMatch::Initial, &["-g", "daemon"][..], true),
            (ParamMatch::Initial, &["-x"][..], false),
            (ParamMatch::Partial, &[][..], true),
        ];
        for (how, args, expected) in cases {
            let t = tracker("/usr/sbin/nginx", args, how);
            assert_eq!(matches(&t, &nginx), expected, "{how:?} {args:?}");
        }
        // exact with no arguments wants none.
        let bare = proc("sleep", &["sleep"]);
        assert!(matches(&tracker("sleep", &[], ParamMatch::Exact), &bare));
    }

    #[test]
    fn comm_is_cut_as_keepalived_cuts_it() {
        assert_eq!(
            comm_of(b"42 (nginx) S 1 42"),
            Some((b"nginx".to_vec(), false))
        );
        assert_eq!(comm_of(b"42 (a) b) Z 1"), Some((b"a".to_vec(), false)));
        assert_eq!(
            comm_of(b"42 (defunct) Z 1"),
            Some((b"defunct".to_vec(), true))
        );
        assert_eq!(comm_of(b"42 nothing"), None);
    }

    #[test]
    fn quorum_waits_for_its_delays() {
        let mut t = tracker("x", &[], ParamMatch::None);
        t.quorum = 2;
        t.quorum_max = 3;
        t.fork_delay = Some(Duration::from_secs(2));
        t.terminate_delay = Some(Duration::from_secs(1));
        let s = Duration::from_secs;
        let mut q = Quorum::start(&t, 1);
        assert!(!q.up());
        assert!(!q.observe(&t, s(10), 2));
        assert!(!q.observe(&t, s(11), 3));
        assert!(q.observe(&t, s(12), 2));
        assert!(q.up());
        // Above quorum_max is down too; a blip shorter than the delay is not seen.
        assert!(!q.observe(&t, s(13), 4));
        assert!(!q.observe(&t, s(13) + Duration::from_millis(500), 3));
        assert!(!q.observe(&t, s(14), 4));
        assert!(q.observe(&t, s(15), 0));
        assert!(!q.up());
        let mut none = tracker("x", &[], ParamMatch::None);
        none.quorum = 0;
        none.quorum_max = 0;
        assert!(Quorum::start(&none, 0).up());
    }

    #[test]
    fn effects_follow_keepalived_weights() {
        let mut t = tracker("x", &[], ParamMatch::None);
        assert_eq!(effect(&t, false), Effect::Fault);
        assert_eq!(effect(&t, true), Effect::Add(0));
        t.reverse = true;
        assert_eq!(effect(&t, true), Effect::Fault);
        t.reverse = false;
        t.weight = 10;
        assert_eq!(
            (effect(&t, true), effect(&t, false)),
            (Effect::Add(10), Effect::Add(0))
        );
        t.weight = -10;
        assert_eq!(
            (effect(&t, true), effect(&t, false)),
            (Effect::Add(0), Effect::Add(-10))
        );
        t.reverse = true;
        assert_eq!(
            (effect(&t, true), effect(&t, false)),
            (Effect::Add(0), Effect::Add(10))
        );
    }

    #[test]
    fn scan_finds_this_process_by_comm_and_command_line() {
        let started = std::time::Instant::now();
        let procs = scan(true);
        eprintln!(
            "scan of {} processes took {:?}",
            procs.len(),
            started.elapsed()
        );
        let own_stat = std::fs::read("/proc/self/stat").expect("/proc/self/stat");
        let (comm, _) = comm_of(&own_stat).expect("comm");
        let comm = String::from_utf8(comm).expect("utf-8 comm");
        let mut by_comm = tracker(&comm, &[], ParamMatch::None);
        by_comm.full_command = false;
        assert!(procs.iter().any(|p| matches(&by_comm, p)), "{comm}");
        let exe = std::fs::read("/proc/self/cmdline").expect("cmdline");
        let argv0 =
            String::from_utf8_lossy(exe.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
        let mut by_command = tracker(&argv0, &[], ParamMatch::None);
        by_command.full_command = true;
        assert!(procs.iter().any(|p| matches(&by_command, p)), "{argv0}");
    }
}
