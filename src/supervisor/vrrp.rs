//! The VRRP part: the running instance tasks, started, restarted and stopped from a config diff (unchanged instances keep running with no transition); turns service state and virtual-service quorum into effective priority or FAULT; `vrrp show`.
//!
//! Tracking (`vrrp.md` §12.2, keepalived's rules): for each `track` entry
//! of an instance, a service is *down* while its opstatus is a failure and
//! a virtual server is *down* while it lacks quorum. Weight 0: down puts the
//! instance in FAULT. A positive weight is added while up; a negative one
//! is added (subtracted) while down. The sum is clamped to 1–254 and never
//! applied to an owner (255). The verdict is recomputed after every event
//! and sent to the instance only when it changes.
//!
//! Sync groups: the members of a group run with a link to the group's task
//! ([`crate::vrrp::group`]), so the group's orders reach every member. A
//! group starts, stops and restarts as a whole: when the group or any of
//! its members changes, every member restarts with it.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::{mpsc, oneshot};

use crate::config::depend::ServiceRef;
use crate::config::diff::ConfigDiff;
use crate::config::model::{Config, TrackTarget, VrrpInstance, VrrpSyncGroup};
use crate::control::proto::VrrpDump;
use crate::vrrp::group::{self, GroupHandle};
use crate::vrrp::instance::{self, Command, Handle, MemberReport, SyncLink, Transition};

/// How long shutdown waits for every instance to send priority 0 and drop
/// its VIPs.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What tracking reads of the other parts.
pub(super) struct TrackInputs<'a> {
    pub service_failing: &'a dyn Fn(&ServiceRef) -> bool,
    pub quorum_up: &'a dyn Fn(&str) -> Option<bool>,
}

/// The running instances, by name.
pub(super) struct VrrpPart {
    running: BTreeMap<String, Running>,
    groups: BTreeMap<String, RunningGroup>,
    transitions: mpsc::UnboundedSender<Transition>,
    /// The BFD sessions' states, for instances that track them.
    bfd: tokio::sync::watch::Receiver<crate::bfd::BfdStates>,
}

struct RunningGroup {
    config: VrrpSyncGroup,
    handle: GroupHandle,
}

/// A group being started: its report channel and its members' command
/// channels as they start.
struct Starting {
    reports: mpsc::UnboundedSender<MemberReport>,
    receiver: mpsc::UnboundedReceiver<MemberReport>,
    members: BTreeMap<String, mpsc::UnboundedSender<Command>>,
}

struct Running {
    config: VrrpInstance,
    handle: Handle,
    /// The last tracking verdict sent.
    sent: (u8, Option<String>),
}

impl VrrpPart {
    /// Instances report their transitions on `transitions`.
    pub fn new(
        transitions: mpsc::UnboundedSender<Transition>,
        bfd: tokio::sync::watch::Receiver<crate::bfd::BfdStates>,
    ) -> VrrpPart {
        VrrpPart {
            running: BTreeMap::new(),
            groups: BTreeMap::new(),
            transitions,
            bfd,
        }
    }

    /// Start added instances, stop removed ones (priority 0 first), and
    /// restart changed ones with the new config once the old task is gone.
    /// At start every instance is added.
    /// A changed sync group restarts all its members (old and new).
    pub fn reconfigure(&mut self, config: &Config, diff: &ConfigDiff) {
        let plan = plan(diff);
        let old_groups: BTreeMap<String, VrrpSyncGroup> = self
            .groups
            .iter()
            .map(|(name, g)| (name.clone(), g.config.clone()))
            .collect();
        let affected = affected_groups(&plan, diff, &old_groups, &config.vrrp_sync_groups);
        let mut restart: BTreeSet<String> = plan.restart.iter().cloned().collect();
        for name in &affected {
            let old = self.groups.remove(name).map(|g| g.config.members);
            let new = config.vrrp_sync_groups.get(name).map(|g| g.members.clone());
            if new.is_none() {
                tracing::info!(group = %name, "vrrp sync group removed");
            }
            for member in old.into_iter().chain(new).flatten() {
                if self.running.contains_key(&member)
                    && config.vrrp.contains_key(&member)
                    && !plan.stop.contains(&member)
                {
                    restart.insert(member);
                }
            }
        }
        let mut previous = BTreeMap::new();
        for name in plan.stop.iter().chain(&restart) {
            let Some(running) = self.running.remove(name) else {
                continue;
            };
            let (done, _) = oneshot::channel();
            let _ = running.handle.commands.send(Command::Shutdown(done));
            if restart.contains(name) {
                previous.insert(name.clone(), running.handle.task);
            } else {
                tracing::info!(instance = %name, "vrrp instance removed");
            }
        }
        let mut starting: BTreeMap<String, Starting> = affected
            .iter()
            .filter(|name| config.vrrp_sync_groups.contains_key(*name))
            .map(|name| {
                let (reports, receiver) = mpsc::unbounded_channel();
                (
                    name.clone(),
                    Starting {
                        reports,
                        receiver,
                        members: BTreeMap::new(),
                    },
                )
            })
            .collect();
        for name in restart.iter().chain(&plan.start) {
            let group = config
                .vrrp_sync_groups
                .values()
                .find(|g| g.members.contains(name))
                .map(|g| g.name.clone());
            let link = group.as_ref().and_then(|g| {
                starting.get(g).map(|s| SyncLink {
                    group: g.clone(),
                    reports: s.reports.clone(),
                })
            });
            if let Some(commands) = self.start(config, name, previous.remove(name), link)
                && let Some(s) = group.and_then(|g| starting.get_mut(&g))
            {
                s.members.insert(name.clone(), commands);
            }
        }
        for (name, s) in starting {
            let Some(group_config) = config.vrrp_sync_groups.get(&name).cloned() else {
                continue;
            };
            // Only the members hold the report channel now: the group's
            // task ends with the last of them.
            drop(s.reports);
            let handle = group::spawn(&name, s.members, s.receiver, self.transitions.clone());
            tracing::info!(group = %name, members = ?group_config.members, "vrrp sync group started");
            self.groups.insert(
                name,
                RunningGroup {
                    config: group_config,
                    handle,
                },
            );
        }
    }

    /// Starts one instance; returns its command channel.
    fn start(
        &mut self,
        config: &Config,
        name: &str,
        after: Option<tokio::task::JoinHandle<()>>,
        sync: Option<SyncLink>,
    ) -> Option<mpsc::UnboundedSender<Command>> {
        let instance = config.vrrp.get(name).cloned()?;
        let handle = instance::spawn(
            instance.clone(),
            self.transitions.clone(),
            after,
            sync,
            self.bfd.clone(),
        );
        let commands = handle.commands.clone();
        tracing::info!(instance = name, interface = %instance.interface, vrid = instance.vrid.get(), "vrrp instance started");
        self.running.insert(
            name.to_string(),
            Running {
                sent: (instance.priority, None),
                config: instance,
                handle,
            },
        );
        Some(commands)
    }

    /// Shutdown: every master sends priority 0 and drops its VIPs first.
    pub async fn stop(&mut self) {
        let mut waits = Vec::new();
        for (name, running) in std::mem::take(&mut self.running) {
            let (done, wait) = oneshot::channel();
            if running
                .handle
                .commands
                .send(Command::Shutdown(done))
                .is_ok()
            {
                waits.push((name, wait));
            }
        }
        for (name, wait) in waits {
            if tokio::time::timeout(SHUTDOWN_WAIT, wait).await.is_err() {
                tracing::warn!(instance = %name, "vrrp instance did not stop in time");
            }
        }
        // The members are gone: their groups have nothing left to decide.
        for (_, group) in std::mem::take(&mut self.groups) {
            group.handle.task.abort();
        }
    }

    /// Recomputes every instance's tracking verdict; sends the changed ones.
    pub fn track(&mut self, inputs: &TrackInputs<'_>) {
        for (name, running) in &mut self.running {
            let verdict = track_verdict(&running.config, inputs);
            if running.sent == verdict {
                continue;
            }
            tracing::info!(instance = %name, priority = verdict.0, fault = ?verdict.1, "vrrp tracking changed");
            running.sent = verdict.clone();
            let _ = running.handle.commands.send(Command::Track {
                priority: verdict.0,
                fault: verdict.1,
            });
        }
    }

    /// Every instance's status (`vrrp show`, `dump`).
    pub fn dumps(&self) -> Vec<VrrpDump> {
        self.running
            .iter()
            .map(|(name, r)| {
                let mut dump = r.handle.status.borrow().clone();
                if let Some((group, running)) = self
                    .groups
                    .iter()
                    .find(|(_, g)| g.config.members.contains(name))
                {
                    dump.sync_group = Some(group.clone());
                    dump.sync_group_state = Some((*running.handle.state.borrow()).to_string());
                }
                dump
            })
            .collect()
    }
}

/// Which instances a config diff starts, stops and restarts; every other
/// instance keeps running untouched (no transition, no advert gap).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub start: Vec<String>,
    pub stop: Vec<String>,
    /// Stopped (priority 0) and started again with the new config once
    /// the old task is gone.
    pub restart: Vec<String>,
}

pub(super) fn plan(diff: &ConfigDiff) -> Plan {
    Plan {
        start: diff.vrrp.added.clone(),
        stop: diff.vrrp.removed.clone(),
        restart: diff.vrrp.changed.clone(),
    }
}

/// The sync groups a config change restarts: those added, removed or
/// changed, and those (before or after) with a member that starts, stops or
/// restarts.
pub(super) fn affected_groups(
    plan: &Plan,
    diff: &ConfigDiff,
    old: &BTreeMap<String, VrrpSyncGroup>,
    new: &BTreeMap<String, VrrpSyncGroup>,
) -> BTreeSet<String> {
    let touched: BTreeSet<&String> = plan
        .start
        .iter()
        .chain(&plan.stop)
        .chain(&plan.restart)
        .collect();
    let changes = &diff.vrrp_sync_groups;
    let mut affected: BTreeSet<String> = changes
        .added
        .iter()
        .chain(&changes.removed)
        .chain(&changes.changed)
        .cloned()
        .collect();
    for (name, group) in old.iter().chain(new) {
        if group.members.iter().any(|m| touched.contains(m)) {
            affected.insert(name.clone());
        }
    }
    affected
}

/// Effective priority and fault reason from an instance's track entries.
pub(super) fn track_verdict(
    config: &VrrpInstance,
    inputs: &TrackInputs<'_>,
) -> (u8, Option<String>) {
    let mut priority = i32::from(config.priority);
    let mut fault = None;
    for track in &config.track {
        let (up, what) = match &track.target {
            TrackTarget::Service(r) => (!(inputs.service_failing)(r), format!("service {r}")),
            TrackTarget::Quorum(vs) => (
                (inputs.quorum_up)(vs).unwrap_or(true),
                format!("quorum of virtual server {vs}"),
            ),
        };
        // keepalived's weight_multiplier: `reverse` turns the weight's
        // sign, and weight 0 means FAULT while up.
        let sign = if track.reverse { -1 } else { 1 };
        match track.weight {
            0 if up == track.reverse && fault.is_none() => {
                let state = if up { "up (reverse)" } else { "down" };
                fault = Some(format!("tracked {what} is {state}"));
            }
            0 => {}
            w if w > 0 && up => priority += w * sign,
            w if w < 0 && !up => priority += w * sign,
            _ => {}
        }
    }
    let priority = if config.priority == crate::vrrp::fsm::OWNER_PRIORITY {
        config.priority
    } else {
        priority.clamp(1, 254) as u8
    };
    (priority, fault)
}

/// The name alerts give this director: the configured one (keepalived's
/// `router_id`), else the host name.
pub(super) fn director_name(settings: &crate::config::model::Settings) -> String {
    if let Some(name) = &settings.director {
        return name.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "keepmon".to_string())
}
