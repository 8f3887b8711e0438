//! Runs and results: starts due monitor runs as the scheduler's gate decides, and applies every result — a monitor run, a trap, a trap timer — through one function, with its history, logs, downtime log, load-balancer health and alerts.

use tokio::time::Instant;

use crate::config::model::{Monitor, Service};
use crate::monitor::{HostStatus, RunOutput, RunRequest};
use crate::monproto::trap::Trap;
use crate::scheduler::{self, RunDecision, RunGate};
use crate::service::{HostOutcome, Now, OpStatus, Outcome, Source};
use crate::state::service_key;
use crate::traptimer::TrapEvent;

use super::alerts::monitor_env;
use super::services::{push_bounded, service_of};
use super::{Event, Supervisor};

/// A result to apply to a service, wherever it came from.
pub(super) struct ResultInput {
    pub outcome: Outcome,
    /// Per-host results (a monitor run); None for traps and timers, which
    /// say nothing about single hosts.
    pub hosts: Option<Vec<HostOutcome>>,
    /// The monitor could not run (missing script, Lua syntax error).
    pub config_error: bool,
    /// What caused it, for table-edit log lines ("state", "trap", ...).
    pub why: &'static str,
    /// Record without alerts (a trapduration reset).
    pub silent: bool,
}

impl Supervisor {
    /// Start every due run the gate lets through; act on trap timers.
    pub(super) fn run_due(&mut self) {
        self.run_trap_timers();
        let now = Instant::now();
        for key in self.services.due(now) {
            self.start_monitor(&key, now);
        }
    }

    fn start_monitor(&mut self, key: &str, now: Instant) {
        let Some(service) = self.service_config(key).cloned() else {
            return;
        };
        let local = chrono::Local::now().naive_local();
        let hosts = self.services.monitor_hosts(&self.config, &service);
        let gate = RunGate {
            has_monitor: service.monitor.is_some(),
            excluded: self
                .config
                .settings
                .exclude_period
                .as_ref()
                .is_some_and(|p| p.contains(&local))
                || service
                    .exclude_period
                    .as_ref()
                    .is_some_and(|p| p.contains(&local)),
            monitor_depend_ok: self.services.monitor_depend_ok(&service),
            is_exec: matches!(service.monitor, Some(Monitor::Exec { .. })),
            running_exec: self.services.running_exec(&self.config),
            maxprocs: self.config.settings.maxprocs as usize,
            no_hosts: hosts.is_empty(),
            allow_empty_group: service.allow_empty_group,
        };
        let decision = scheduler::gate(&gate, now);
        let Some(slot) = self.services.slots.get_mut(key) else {
            return;
        };
        let monitor_spec = match (decision, &service.monitor) {
            (RunDecision::Start, Some(m)) => m.clone(),
            (RunDecision::RetryAt(at), _) => {
                slot.next_due = Some(at);
                return;
            }
            (RunDecision::Unschedule, _) | (RunDecision::Start, None) => {
                slot.next_due = None;
                return;
            }
            (RunDecision::Skip, _) => {
                if gate.no_hosts && !gate.excluded {
                    tracing::info!(group = %service.group, service = %service.name, "not called because of no host arguments");
                }
                let due = slot.next_due.unwrap_or(now);
                slot.next_due = scheduler::next_due(
                    &service,
                    slot.state.opstatus.is_failure(),
                    due,
                    super::clock(),
                );
                return;
            }
        };
        slot.running = true;
        if let Some(due) = slot.next_due {
            self.services.lags.push(now.saturating_duration_since(due));
        }
        let env = monitor_env(&self.config, &service, &slot.state);
        slot.run_hosts = hosts.clone();
        let request = RunRequest {
            hosts,
            monitor: monitor_spec,
            timeout: service
                .timeout
                .unwrap_or(self.config.settings.monitor_timeout),
            env,
            builtin_policy: self.config.settings.builtin_monitors,
            lua: crate::lua::LuaSettings::from_settings(&self.config.settings),
            run_as: service.run_as.clone(),
        };
        let generation = slot.generation;
        let pid = slot.pid.clone();
        let events = self.events.clone();
        let key = key.to_string();
        let stop = self.shutdown.clone();
        self.tracker.spawn(async move {
            // Each check runs in its own task: a panic there is a failed check.
            let started = std::time::Instant::now();
            let run = async move { crate::run::monitor(&request, &pid).await };
            let mut task = tokio::spawn(run);
            let joined = tokio::select! {
                joined = &mut task => joined,
                () = stop.cancelled() => {
                    // As mon does at stop: running monitors are killed, not
                    // waited for (dropping the run kills an exec monitor's
                    // whole process group). Wait for the drop, so the
                    // scripts are gone before the daemon exits.
                    task.abort();
                    let _ = task.await;
                    return;
                }
            };
            let output = match joined {
                Ok(output) => output,
                Err(e) => RunOutput {
                    exit: 1,
                    summary: format!("monitor task failed: {e}"),
                    detail: String::new(),
                    hosts: Vec::new(),
                    timed_out: false,
                    duration: started.elapsed(),
                    config_error: false,
                },
            };
            let _ = events
                .send(Event::MonitorDone {
                    key,
                    generation,
                    output,
                })
                .await;
        });
    }

    /// A monitor run finished: apply its result (unless the service's
    /// config changed since it started) and schedule the next run.
    pub(super) fn on_monitor_done(&mut self, key: &str, generation: u64, output: RunOutput) {
        let now_instant = Instant::now();
        let Some(service) = self.service_config(key).cloned() else {
            return; // removed by a reload
        };
        let Some(slot) = self.services.slots.get_mut(key) else {
            return;
        };
        slot.running = false;
        if slot.generation != generation {
            slot.next_due = Some(now_instant);
            return;
        }
        let mut output = output;
        // keepalived's misc_dynamic: 2–255 pass and set the weight, 0
        // passes and gives the servers their own back.
        let weight = if service.exit_weight && !output.timed_out && !output.config_error {
            match output.exit {
                0 => Some(None),
                code @ 2..=255 => {
                    output.exit = 0;
                    Some(u32::try_from(code - 2).ok())
                }
                _ => None,
            }
        } else {
            None
        };
        let hosts = host_outcomes(&slot.run_hosts, &output);
        if let Some(weight) = weight {
            let service_ref = service.reference();
            let unix = super::wall_now().unix;
            for host in &slot.run_hosts {
                self.lb.set_host_weight(&service_ref, host, weight, unix);
            }
        }
        self.services.checks += output.hosts.len().max(1) as u64;
        let result = ResultInput {
            outcome: Outcome {
                exit: output.exit,
                summary: output.summary,
                detail: output.detail,
                source: Source::Monitor,
                timed_out: output.timed_out,
            },
            hosts: Some(hosts),
            config_error: output.config_error,
            why: "state",
            silent: false,
        };
        self.apply_result(&service, result, &super::wall_now());
        if let Some(slot) = self.services.slots.get_mut(key) {
            let due = slot.next_due.unwrap_or(now_instant);
            slot.next_due = scheduler::next_due(
                &service,
                slot.state.opstatus.is_failure(),
                due,
                super::clock(),
            );
        }
    }

    /// The one path for every result: the service state machine, per-host
    /// health into the load-balancer table, lvs.alert edits by state, the
    /// failure history, the downtime log, logs and alerts. False when the
    /// service has no state.
    pub(super) fn apply_result(
        &mut self,
        service: &Service,
        result: ResultInput,
        now: &Now,
    ) -> bool {
        let gates = self.services.gates(service);
        let key = service_key(&service.group, &service.name);
        let Some(slot) = self.services.slots.get_mut(&key) else {
            return false;
        };
        let step = slot.state.record(service, now, &gates, &result.outcome);
        if result.hosts.is_some() {
            slot.config_error = result.config_error;
            if result.config_error {
                slot.state.opstatus = OpStatus::ConfigErr;
            }
        }
        let host_changes = match &result.hosts {
            Some(hosts) => slot.state.update_hosts(service.rise, service.fall, hosts),
            None => Vec::new(),
        };
        let service_ref = service.reference();
        for change in &host_changes {
            tracing::debug!(group = %service.group, service = %service.name, host = %change.host, up = change.up, "host state changed");
            self.lb
                .set_host_health(&service_ref, &change.host, change.up, now.unix);
        }
        // Level-triggered table edits for mon's lvs.alert lines: a service
        // that steers real servers through alerts also steers them by state.
        if step.went_down || step.came_up.is_some() {
            self.lb
                .apply_lvs_edits_of(service, step.came_up.is_some(), now.unix, result.why);
        }
        let limit = self.config.settings.histlength;
        if step.went_down {
            tracing::warn!(group = %service.group, service = %service.name, summary = %result.outcome.summary, "service failing");
            let line = format!(
                "{} {} {} {}",
                service.group, service.name, now.unix, result.outcome.summary
            );
            push_bounded(&mut self.services.failure_history, line, limit);
        }
        if let Some(down) = &step.came_up {
            tracing::info!(group = %service.group, service = %service.name, down_secs = down.time_up - down.first_failure, "service recovered");
            if self.config.settings.dtlogging {
                let interval = service.interval.map(|d| d.as_secs()).unwrap_or(0);
                let line = format!(
                    "{} {} {} {} {} {} {}",
                    down.time_up,
                    service.group,
                    service.name,
                    down.first_failure,
                    down.time_up - down.first_failure,
                    interval,
                    down.summary
                );
                self.writer.append(&self.config.settings.dtlogfile, line);
            }
        }
        if let Some(reason) = step.suppressed {
            tracing::debug!(group = %service.group, service = %service.name, reason, "failure alerts suppressed");
        }
        if !result.silent {
            self.fire_alerts(service, step.alerts, now);
        }
        self.services.touch();
        true
    }

    /// Apply a trap like a monitor result (`-T` on its alerts). A trap for
    /// an unknown group goes to the `default` watch, and an unknown service
    /// there to the `default` service, when they exist (mon's catch-all).
    pub(super) fn on_trap(&mut self, trap: Trap, from: String) {
        let mut group = trap.group.clone();
        let mut service = trap.service.clone();
        if !self.config.watches.contains_key(&group) && self.config.watches.contains_key("default")
        {
            group = "default".to_string();
        }
        if group == "default"
            && let Some(w) = self.config.watches.get("default")
            && !w.services.contains_key(&service)
            && w.services.contains_key("default")
        {
            service = "default".to_string();
        }
        let Ok(svc) = self.find(&group, &service) else {
            tracing::warn!(group = %trap.group, service = %trap.service, from, "trap for an undefined service dropped");
            return;
        };
        let now = super::wall_now();
        let key = service_key(&group, &service);
        tracing::info!(group, service, from, exit = trap.exit, "trap received");
        let result = ResultInput {
            outcome: Outcome {
                exit: trap.exit,
                summary: trap.summary,
                detail: trap.detail,
                source: Source::Trap,
                timed_out: false,
            },
            hosts: None,
            config_error: false,
            why: "trap",
            silent: false,
        };
        if self.apply_result(&svc, result, &now) {
            self.services
                .last_traps
                .insert(key.clone(), (now.unix, from));
            self.services.trap_timers.on_trap(&key, Instant::now());
        }
    }

    /// Act on expired trap timers: a heartbeat that passed without a trap
    /// is a trap-timeout failure (alerts get `-O`); an expired trapduration
    /// sets the service back to OK without an alert.
    fn run_trap_timers(&mut self) {
        let now = Instant::now();
        for (key, event) in self.services.trap_timers.due(now) {
            let Some(svc) = self.service_config(&key).cloned() else {
                continue;
            };
            let result = match event {
                TrapEvent::Timeout => {
                    let timeout = svc.traptimeout.unwrap_or_default();
                    tracing::warn!(group = %svc.group, service = %svc.name, "no trap within traptimeout");
                    ResultInput {
                        outcome: Outcome {
                            exit: 1,
                            summary: "trap timeout".to_string(),
                            detail: format!(
                                "no trap received within the traptimeout of {}s\n",
                                timeout.as_secs()
                            ),
                            source: Source::TrapTimeout,
                            timed_out: false,
                        },
                        hosts: None,
                        config_error: false,
                        why: "trap timeout",
                        silent: false,
                    }
                }
                TrapEvent::Reset => {
                    tracing::info!(group = %svc.group, service = %svc.name, "trapduration passed; status back to ok");
                    ResultInput {
                        outcome: Outcome {
                            exit: 0,
                            summary: String::new(),
                            detail: String::new(),
                            source: Source::Trap,
                            timed_out: false,
                        },
                        hosts: None,
                        config_error: false,
                        why: "trapduration",
                        silent: true,
                    }
                }
            };
            self.apply_result(&svc, result, &super::wall_now());
        }
    }

    /// A slot's service definition in the running config.
    pub(super) fn service_config(&self, key: &str) -> Option<&Service> {
        service_of(&self.config, self.services.slots.get(key)?)
    }
}

/// Per-host results of a run. Built-in monitors report each host; for a
/// mon.d script a failing run's summary names the failing hosts (mon's
/// convention), and a failing run that names none fails them all.
fn host_outcomes(hosts: &[String], output: &RunOutput) -> Vec<HostOutcome> {
    if !output.hosts.is_empty() {
        return output
            .hosts
            .iter()
            .map(|r| HostOutcome {
                host: r.host.clone(),
                ok: matches!(r.status, HostStatus::Ok),
                reason: match &r.status {
                    HostStatus::Ok => None,
                    HostStatus::Fail { reason } => Some(reason.clone()),
                    HostStatus::Timeout => Some("timeout".to_string()),
                },
            })
            .collect();
    }
    let failed = output.exit != 0 || output.timed_out;
    let named: Vec<&str> = output.summary.split_whitespace().collect();
    let any_named = hosts.iter().any(|h| named.contains(&h.as_str()));
    hosts
        .iter()
        .map(|h| {
            let down = failed && (!any_named || named.contains(&h.as_str()));
            HostOutcome {
                host: h.clone(),
                ok: !down,
                reason: down.then(|| output.summary.clone()),
            }
        })
        .collect()
}
