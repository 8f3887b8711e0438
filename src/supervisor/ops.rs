//! The operations vocabulary: every state change an operator can ask for (disable/enable, ack, test, pause/resume, reload, reset, clear timers, set opstatus, lb edits), implemented once; the CLI and the mon protocol only parse requests into an [`Operation`] and render its result in their own words.

use std::fmt;

use tokio::time::Instant;

use super::Supervisor;
use super::services::{Services, push_bounded};
use crate::control::proto::{LbChange, Target};
use crate::scheduler;
use crate::service::{AlertDecision, AlertKind, OpStatus, ServiceState, Source};
use crate::state::service_key;

/// One operator request, whichever door it came through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    /// Disable a watch, a service or hosts. A host that is the only member
    /// of a watched hostgroup takes that watch with it (mon's rule).
    Disable(Target),
    Enable(Target),
    /// Acknowledge a failing service; `user` is who asked (the daemon's
    /// `USER` when the door has no login).
    Ack {
        group: String,
        service: String,
        user: Option<String>,
        comment: String,
    },
    /// Run a service's monitor now.
    TestMonitor {
        group: String,
        service: String,
    },
    /// Fire a service's alert lines of one kind as a test (not counted):
    /// of one period, or of every period when `period` is None.
    TestAlert {
        group: String,
        service: String,
        kind: AlertKind,
        period: Option<String>,
        exit: i32,
    },
    /// Stop or start the scheduler (mon's `stop`/`start`).
    Pause,
    Resume,
    /// Compile the config file again and apply the difference.
    Reload,
    /// mon's `reset`: reload, then (unless `keepstate`) forget every
    /// service's state and the disabled watches and services; `stopped`
    /// leaves the scheduler stopped.
    Reset {
        stopped: bool,
        keepstate: bool,
    },
    /// Forget a service's alert timers and run it again from scratch.
    ClearTimers {
        group: String,
        service: String,
    },
    /// Overwrite a service's opstatus.
    SetOpstatus {
        group: String,
        service: String,
        status: OpStatus,
    },
    /// mon's `set maxkeep`: the history length.
    SetHistLength(usize),
    /// An operator's change to one real server.
    LbSet {
        virtual_service: String,
        real_server: String,
        change: LbChange,
    },
}

/// Why an operation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum OpError {
    UnknownWatch(String),
    UnknownGroup(String),
    UnknownService {
        group: String,
        service: String,
    },
    /// Every unknown host of the request.
    UnknownHosts(Vec<String>),
    UnknownPeriod(String),
    /// Ack of a service that does not fail (the state machine's words).
    NotFailing(String),
    /// The config file has errors; the old config keeps running.
    Config(String),
    /// A load-balancer edit refused by the table.
    Lb(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::UnknownWatch(g) => write!(f, "unknown watch \"{g}\""),
            OpError::UnknownGroup(g) => write!(f, "unknown group \"{g}\""),
            OpError::UnknownService { group, service } => {
                write!(f, "unknown service \"{group}/{service}\"")
            }
            OpError::UnknownHosts(hosts) => {
                write!(f, "unknown host \"{}\"", hosts.first().map_or("", |h| h))
            }
            OpError::UnknownPeriod(p) => write!(f, "unknown period \"{p}\""),
            OpError::NotFailing(message) | OpError::Lb(message) => f.write_str(message),
            OpError::Config(message) => {
                write!(
                    f,
                    "reload refused, the old config keeps running:\n{message}"
                )
            }
        }
    }
}

impl Supervisor {
    /// Carry out one operation; the message says what was done.
    pub(super) fn execute(&mut self, operation: Operation) -> Result<String, OpError> {
        match operation {
            Operation::Disable(target) => self.set_disabled(target, true),
            Operation::Enable(target) => self.set_disabled(target, false),
            Operation::Ack {
                group,
                service,
                user,
                comment,
            } => {
                let svc = self.find(&group, &service)?;
                let now = super::wall_now();
                let gates = self.services.gates(&svc);
                let user = user
                    .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "keepmon".into()));
                let slot = self
                    .services
                    .slots
                    .get_mut(&service_key(&group, &service))
                    .ok_or_else(|| OpError::UnknownService {
                        group: group.clone(),
                        service: service.clone(),
                    })?;
                let decisions = slot
                    .state
                    .acknowledge(&svc, &now, &gates, &format!("{user}: {comment}"))
                    .map_err(|e| OpError::NotFailing(e.to_string()))?;
                self.fire_alerts(&svc, decisions, &now);
                self.services.touch();
                Ok(format!("{group}/{service} acknowledged"))
            }
            Operation::TestMonitor { group, service } => {
                self.find(&group, &service)?;
                if let Some(slot) = self.services.slots.get_mut(&service_key(&group, &service)) {
                    slot.next_due = Some(Instant::now());
                }
                Ok(format!("{group}/{service} monitor scheduled now"))
            }
            Operation::TestAlert {
                group,
                service,
                kind,
                period,
                exit,
            } => {
                let svc = self.find(&group, &service)?;
                if let Some(p) = &period
                    && !svc.periods.iter().any(|b| &b.key == p)
                {
                    return Err(OpError::UnknownPeriod(p.clone()));
                }
                let decisions: Vec<AlertDecision> = svc
                    .periods
                    .iter()
                    .filter(|b| period.as_ref().is_none_or(|p| &b.key == p))
                    .flat_map(|b| {
                        let lines = match kind {
                            AlertKind::Failure | AlertKind::Redistribute => &b.alerts,
                            AlertKind::Up => &b.upalerts,
                            AlertKind::Startup => &b.startupalerts,
                            AlertKind::Ack => &b.ackalerts,
                            AlertKind::Disable => &b.disablealerts,
                        };
                        lines.iter().map(move |a| AlertDecision {
                            period: b.key.clone(),
                            kind,
                            source: Source::Monitor,
                            alert: a.clone(),
                            exit,
                            stdin: "test\ntest detail\n".to_string(),
                            counts: false,
                        })
                    })
                    .collect();
                let n = decisions.len();
                let now = super::wall_now();
                self.fire_alerts(&svc, decisions, &now);
                Ok(format!("{n} test alert(s) started for {group}/{service}"))
            }
            Operation::Pause => {
                self.services.scheduler_running = false;
                self.services.stopped_since = super::unix_now();
                Ok("scheduler stopped".to_string())
            }
            Operation::Resume => {
                self.services.scheduler_running = true;
                Ok("scheduler started".to_string())
            }
            Operation::Reload => self
                .reload()
                .map(|summary| format!("reloaded\n{summary}"))
                .map_err(OpError::Config),
            Operation::Reset { stopped, keepstate } => {
                self.reload().map_err(OpError::Config)?;
                if !keepstate {
                    for slot in self.services.slots.values_mut() {
                        slot.state = ServiceState::default();
                    }
                    self.services.disabled.watches.clear();
                    self.services.disabled.services.clear();
                    self.services.touch();
                }
                if stopped {
                    self.services.scheduler_running = false;
                    self.services.stopped_since = super::unix_now();
                }
                Ok("reset".to_string())
            }
            Operation::ClearTimers { group, service } => {
                let svc = self.find(&group, &service)?;
                let randstart = self.config.settings.randstart;
                let slot = self
                    .services
                    .slots
                    .get_mut(&service_key(&group, &service))
                    .ok_or(OpError::UnknownGroup(group.clone()))?;
                let st = &mut slot.state;
                st.consec_failures = 0;
                st.last_alert = None;
                for p in st.periods.values_mut() {
                    p.last_alert = None;
                    p.alert_sent = 0;
                    p.first_fail_time = None;
                    p.fail_count = 0;
                }
                if !slot.running {
                    slot.next_due = scheduler::first_due(&svc, super::clock(), randstart);
                }
                self.services.touch();
                Ok(format!("{group}/{service} timers cleared"))
            }
            Operation::SetOpstatus {
                group,
                service,
                status,
            } => {
                let slot = self
                    .services
                    .slots
                    .get_mut(&service_key(&group, &service))
                    .ok_or(OpError::UnknownService {
                        group: group.clone(),
                        service: service.clone(),
                    })?;
                slot.state.last_opstatus = slot.state.opstatus;
                slot.state.opstatus = status;
                self.services.touch();
                Ok(format!("{group}/{service} opstatus {}", status.name()))
            }
            Operation::SetHistLength(keep) => {
                self.config.settings.histlength = keep;
                Ok(format!("history length {keep}"))
            }
            Operation::LbSet {
                virtual_service,
                real_server,
                change,
            } => {
                let (name, addr, line) = self
                    .lb
                    .set(&virtual_service, &real_server, change, super::unix_now())
                    .map_err(OpError::Lb)?;
                push_bounded(
                    &mut self.services.alert_history,
                    line,
                    self.config.settings.histlength,
                );
                self.services.touch();
                Ok(format!("{name} {addr}: {change:?}"))
            }
        }
    }

    /// A service's definition, or which part of its name is unknown.
    pub(super) fn find(
        &self,
        group: &str,
        service: &str,
    ) -> Result<crate::config::model::Service, OpError> {
        self.config
            .watches
            .get(group)
            .ok_or_else(|| OpError::UnknownGroup(group.to_string()))?
            .services
            .get(service)
            .cloned()
            .ok_or_else(|| OpError::UnknownService {
                group: group.to_string(),
                service: service.to_string(),
            })
    }

    fn set_disabled(&mut self, target: Target, disable: bool) -> Result<String, OpError> {
        let verb = if disable { "disabled" } else { "enabled" };
        let message = match &target {
            Target::Watch { group } => {
                if !self.config.watches.contains_key(group) {
                    return Err(OpError::UnknownWatch(group.clone()));
                }
                toggle(&mut self.services.disabled.watches, group, disable);
                format!("watch {group} {verb}")
            }
            Target::Service { group, service } => {
                let svc = self.find(group, service)?;
                toggle(
                    &mut self.services.disabled.services,
                    &service_key(group, service),
                    disable,
                );
                if disable {
                    let now = super::wall_now();
                    let decisions = self
                        .services
                        .slots
                        .get(&service_key(group, service))
                        .map(|s| s.state.disable_alerts(&svc, &now, "keepmon"))
                        .unwrap_or_default();
                    self.fire_alerts(&svc, decisions, &now);
                }
                format!("service {group}/{service} {verb}")
            }
            Target::Host { hosts } => {
                let known = Services::known_hosts(&self.config);
                let unknown: Vec<String> = hosts
                    .iter()
                    .filter(|h| !known.contains(h.as_str()))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(OpError::UnknownHosts(unknown));
                }
                // mon: a host that is the only member of a watched
                // hostgroup takes that watch with it.
                let singleton_watches: Vec<String> = self
                    .config
                    .hostgroups
                    .iter()
                    .filter(|(name, hg)| {
                        hg.hosts.len() == 1
                            && hosts
                                .iter()
                                .any(|h| h == hg.hosts[0].trim_start_matches('*'))
                            && self.config.watches.contains_key(*name)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                for h in hosts {
                    toggle(&mut self.services.disabled.hosts, h, disable);
                }
                for group in &singleton_watches {
                    toggle(&mut self.services.disabled.watches, group, disable);
                }
                format!("host {} {verb}", hosts.join(" "))
            }
        };
        self.services.touch();
        Ok(message)
    }
}

fn toggle(set: &mut std::collections::BTreeSet<String>, item: &str, insert: bool) {
    if insert {
        set.insert(item.to_string());
    } else {
        set.remove(item);
    }
}
