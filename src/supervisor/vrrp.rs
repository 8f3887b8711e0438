//! The supervisor's VRRP side: starts and stops instance tasks on start, reload and shutdown, turns service state and virtual-service quorum into effective priority or FAULT, fires the notify alerts on transitions, and answers `vrrp show`.
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

use super::{Event, Supervisor, ok, push_bounded, unix_now};
use crate::alert::AlertJob;
use crate::config::model::{Action, MailAction, TrackTarget, VrrpInstance};
use crate::control::proto::{Response, VrrpDump};
use crate::service::{AlertDecision, AlertKind, OpStatus, Source};
use crate::state::service_key;
use crate::vrrp::fsm::State;
use crate::vrrp::instance::{self, Command, Handle, Transition, state_name};

/// How long shutdown waits for every instance to send priority 0 and drop
/// its VIPs.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The running instances, by name.
#[derive(Default)]
pub(super) struct VrrpInstances {
    running: BTreeMap<String, Running>,
    transitions: Option<mpsc::UnboundedSender<Transition>>,
}

struct Running {
    config: VrrpInstance,
    handle: Handle,
    /// The last tracking verdict sent.
    sent: (u8, Option<String>),
}

impl Supervisor {
    /// Starts every configured instance (daemon start).
    pub(super) fn start_vrrp(&mut self) {
        let names: Vec<String> = self.config.vrrp.keys().cloned().collect();
        for name in names {
            self.start_vrrp_instance(&name, None);
        }
        self.track_vrrp();
    }

    fn transitions_sender(&mut self) -> mpsc::UnboundedSender<Transition> {
        if let Some(tx) = &self.vrrp.transitions {
            return tx.clone();
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Transition>();
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(transition) = rx.recv().await {
                if events.send(Event::Vrrp(transition)).await.is_err() {
                    break;
                }
            }
        });
        self.vrrp.transitions = Some(tx.clone());
        tx
    }

    fn start_vrrp_instance(&mut self, name: &str, after: Option<tokio::task::JoinHandle<()>>) {
        let Some(config) = self.config.vrrp.get(name).cloned() else {
            return;
        };
        let transitions = self.transitions_sender();
        let handle = instance::spawn(config.clone(), transitions, after);
        tracing::info!(instance = name, interface = %config.interface, vrid = config.vrid.get(), "vrrp instance started");
        self.vrrp.running.insert(
            name.to_string(),
            Running {
                sent: (config.priority, None),
                config,
                handle,
            },
        );
    }

    /// Reload: instances whose config is unchanged keep running (no
    /// transition); removed ones shut down (priority 0); changed ones shut
    /// down and start again with the new config once the old task is gone.
    pub(super) fn reload_vrrp(&mut self) {
        let old: Vec<String> = self.vrrp.running.keys().cloned().collect();
        for name in old {
            let unchanged = self.config.vrrp.get(&name).is_some_and(|new| {
                self.vrrp
                    .running
                    .get(&name)
                    .is_some_and(|r| &r.config == new)
            });
            if unchanged {
                continue;
            }
            let Some(running) = self.vrrp.running.remove(&name) else {
                continue;
            };
            let (done, _) = oneshot::channel();
            let _ = running.handle.commands.send(Command::Shutdown(done));
            if self.config.vrrp.contains_key(&name) {
                self.start_vrrp_instance(&name, Some(running.handle.task));
            } else {
                tracing::info!(instance = %name, "vrrp instance removed");
            }
        }
        let new: Vec<String> = self
            .config
            .vrrp
            .keys()
            .filter(|n| !self.vrrp.running.contains_key(*n))
            .cloned()
            .collect();
        for name in new {
            self.start_vrrp_instance(&name, None);
        }
        self.track_vrrp();
    }

    /// Shutdown: every master sends priority 0 and drops its VIPs first.
    pub(super) async fn stop_vrrp(&mut self) {
        let mut waits = Vec::new();
        for (name, running) in std::mem::take(&mut self.vrrp.running) {
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
    pub(super) fn track_vrrp(&mut self) {
        let verdicts: Vec<(String, (u8, Option<String>))> = self
            .vrrp
            .running
            .iter()
            .map(|(name, running)| (name.clone(), self.track_verdict(&running.config)))
            .collect();
        for (name, verdict) in verdicts {
            let Some(running) = self.vrrp.running.get_mut(&name) else {
                continue;
            };
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

    fn track_verdict(&self, config: &VrrpInstance) -> (u8, Option<String>) {
        let mut priority = i32::from(config.priority);
        let mut fault = None;
        for track in &config.track {
            let (up, what) = match &track.target {
                TrackTarget::Service(r) => (
                    self.slots
                        .get(&service_key(&r.group, &r.service))
                        .is_none_or(|s| !s.state.opstatus.is_failure()),
                    format!("service {r}"),
                ),
                TrackTarget::Quorum(vs) => (
                    self.table.quorum_up(vs).unwrap_or(true),
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

    /// A transition: log it, keep it in the history, fire the notify alerts.
    pub(super) fn on_vrrp_transition(&mut self, transition: Transition) {
        let director = director_name();
        let summary = format!(
            "director {director} became {} for {}",
            state_name(transition.to),
            transition.instance
        );
        let now = unix_now();
        let line = format!(
            "vrrp {} {now} {summary} (from {}, priority {}: {})",
            transition.instance,
            state_name(transition.from),
            transition.priority,
            transition.reason
        );
        tracing::info!("{line}");
        let limit = self.config.settings.histlength;
        push_bounded(&mut self.persisted.alert_history, line, limit);
        self.dirty = true;
        let Some(config) = self.config.vrrp.get(&transition.instance).cloned() else {
            return;
        };
        let timeout = self.config.settings.monitor_timeout;
        for line in &config.notify {
            if let Action::Mail(action) = &line.action {
                self.queue_vrrp_mail(&transition, &config, action, &director, now);
                continue;
            }
            let job = AlertJob {
                lua: crate::lua::LuaSettings::from_settings(&self.config.settings),
                group: "vrrp".to_string(),
                service: transition.instance.clone(),
                hosts: vec![director.clone()],
                time: now,
                description: Some(summary.clone()),
                opstatus: if transition.to == State::Master {
                    OpStatus::Ok
                } else {
                    OpStatus::Fail
                },
                env: vec![
                    ("VRRP_INSTANCE".into(), transition.instance.clone()),
                    ("VRRP_STATE".into(), state_name(transition.to).into()),
                    (
                        "VRRP_PREVIOUS_STATE".into(),
                        state_name(transition.from).into(),
                    ),
                    ("VRRP_PRIORITY".into(), transition.priority.to_string()),
                    ("VRRP_REASON".into(), transition.reason.clone()),
                    ("VRRP_DIRECTOR".into(), director.clone()),
                ],
                summary: summary.clone(),
                detail: transition.reason.clone(),
                decision: AlertDecision {
                    period: String::new(),
                    kind: if transition.to == State::Master {
                        AlertKind::Up
                    } else {
                        AlertKind::Failure
                    },
                    source: Source::Monitor,
                    alert: line.clone(),
                    exit: i32::from(transition.to != State::Master),
                    stdin: format!("{summary}\n{}\n", transition.reason),
                    counts: false,
                },
            };
            tracing::info!(instance = %transition.instance, alert = %line.name, "calling vrrp notify alert");
            let events = self.events.clone();
            self.tracker.spawn(async move {
                let outcome = crate::run::alert(&job, timeout).await;
                let _ = events
                    .send(Event::AlertDone {
                        group: job.group.clone(),
                        service: job.service.clone(),
                        alert: job.decision.alert.name.clone(),
                        ok: outcome.ok,
                        message: outcome.message,
                    })
                    .await;
            });
        }
    }

    /// A `mail` notify action: the VRRP letter (its own subject, not an
    /// ALERT line) through the outbox, like every other mail.
    fn queue_vrrp_mail(
        &mut self,
        transition: &Transition,
        config: &VrrpInstance,
        action: &MailAction,
        director: &str,
        now: i64,
    ) {
        let Some(default_from) = self.mail_from() else {
            tracing::error!(instance = %transition.instance, "mail worker not running; vrrp mail dropped");
            return;
        };
        let addresses: Vec<String> = config
            .virtual_addresses
            .iter()
            .map(|v| format!("{}/{}", v.addr, v.prefix))
            .collect();
        let local = super::wall_now().local;
        let (subject, body) = crate::mail::vrrp_letter(
            &crate::mail::VrrpTransition {
                instance: &transition.instance,
                vrid: config.vrid.get(),
                interface: &config.interface,
                from: state_name(transition.from),
                to: state_name(transition.to),
                reason: &transition.reason,
                priority: transition.priority,
                virtual_addresses: &addresses,
                host: director,
            },
            local,
        );
        let letter = crate::mail::Letter {
            from: action.from.clone().unwrap_or(default_from),
            to: action.to.clone(),
            subject: action.subject.clone().unwrap_or(subject),
            body,
        };
        let id = self.queue_letter(letter, format!("vrrp {}", transition.instance), now);
        tracing::info!(instance = %transition.instance, outbox_id = %id, "vrrp mail queued");
    }

    pub(super) fn vrrp_dumps(&self) -> Vec<VrrpDump> {
        self.vrrp
            .running
            .values()
            .map(|r| r.handle.status.borrow().clone())
            .collect()
    }

    pub(super) fn vrrp_show(&self) -> Response {
        let instances = self.vrrp_dumps();
        if instances.is_empty() {
            return ok("no vrrp instances configured");
        }
        Response::Vrrp { instances }
    }
}

/// The name alerts give this director: the host name.
fn director_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "keepmon".to_string())
}
