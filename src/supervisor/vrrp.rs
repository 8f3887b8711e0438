//! The VRRP part: the running instance tasks, started, restarted and stopped from a config diff (unchanged instances keep running with no transition); turns service state and virtual-service quorum into effective priority or FAULT; `vrrp show`.
//!
//! Tracking (`vrrp.md` §12.2, keepalived's rules): for each `track` entry
//! of an instance, a service is *down* while its opstatus is a failure and
//! a virtual server is *down* while it lacks quorum. Weight 0: down puts the
//! instance in FAULT. A positive weight is added while up; a negative one
//! is added (subtracted) while down. The sum is clamped to 1–254 and never
//! applied to an owner (255). The verdict is recomputed after every event
//! and sent to the instance only when it changes.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

use crate::config::depend::ServiceRef;
use crate::config::diff::ConfigDiff;
use crate::config::model::{Config, TrackTarget, VrrpInstance};
use crate::control::proto::VrrpDump;
use crate::vrrp::instance::{self, Command, Handle, Transition};

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
    transitions: mpsc::UnboundedSender<Transition>,
}

struct Running {
    config: VrrpInstance,
    handle: Handle,
    /// The last tracking verdict sent.
    sent: (u8, Option<String>),
}

impl VrrpPart {
    /// Instances report their transitions on `transitions`.
    pub fn new(transitions: mpsc::UnboundedSender<Transition>) -> VrrpPart {
        VrrpPart {
            running: BTreeMap::new(),
            transitions,
        }
    }

    /// Start added instances, stop removed ones (priority 0 first), and
    /// restart changed ones with the new config once the old task is gone.
    /// At start every instance is added.
    pub fn reconfigure(&mut self, config: &Config, diff: &ConfigDiff) {
        let plan = plan(diff);
        for name in plan.stop.iter().chain(&plan.restart) {
            let Some(running) = self.running.remove(name) else {
                continue;
            };
            let (done, _) = oneshot::channel();
            let _ = running.handle.commands.send(Command::Shutdown(done));
            if plan.restart.contains(name) {
                self.start(config, name, Some(running.handle.task));
            } else {
                tracing::info!(instance = %name, "vrrp instance removed");
            }
        }
        for name in &plan.start {
            self.start(config, name, None);
        }
    }

    fn start(&mut self, config: &Config, name: &str, after: Option<tokio::task::JoinHandle<()>>) {
        let Some(instance) = config.vrrp.get(name).cloned() else {
            return;
        };
        let handle = instance::spawn(instance.clone(), self.transitions.clone(), after);
        tracing::info!(instance = name, interface = %instance.interface, vrid = instance.vrid.get(), "vrrp instance started");
        self.running.insert(
            name.to_string(),
            Running {
                sent: (instance.priority, None),
                config: instance,
                handle,
            },
        );
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
            .values()
            .map(|r| r.handle.status.borrow().clone())
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
        match track.weight {
            0 if !up && fault.is_none() => fault = Some(format!("tracked {what} is down")),
            0 => {}
            w if w > 0 && up => priority += w,
            w if w < 0 && !up => priority += w,
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
