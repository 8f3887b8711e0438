//! The supervisor's trap side beyond the mon protocol: results that arrive from outside a monitor run (traps, the `traptimeout` heartbeat, `trapduration` resets) go through the same state machine as monitor results.

use super::{Supervisor, push_bounded, wall_now};
use crate::config::model::Service;
use crate::service::{Now, Outcome, Source};
use crate::state::service_key;
use crate::traptimer::TrapEvent;

impl Supervisor {
    /// Record a result that did not come from a monitor run (a trap, a trap
    /// timeout, a trapduration reset): state, lvs.alert edits, failure
    /// history and, unless `silent`, alerts. False when the service has no
    /// state.
    pub(super) fn record_external(
        &mut self,
        svc: &Service,
        outcome: Outcome,
        now: &Now,
        why: &str,
        silent: bool,
    ) -> bool {
        let gates = self.gates(svc);
        let Some(slot) = self.slots.get_mut(&service_key(&svc.group, &svc.name)) else {
            return false;
        };
        let step = slot.state.record(svc, now, &gates, &outcome);
        if step.went_down || step.came_up.is_some() {
            self.apply_lvs_edits_of(svc, step.came_up.is_some(), now, why);
        }
        if step.went_down {
            let line = format!(
                "{} {} {} {}",
                svc.group, svc.name, now.unix, outcome.summary
            );
            push_bounded(
                &mut self.persisted.failure_history,
                line,
                self.config.settings.histlength,
            );
        }
        if !silent {
            self.fire_alerts(svc, step.alerts, now);
        }
        self.dirty = true;
        true
    }

    /// Point the trap timers at the services of the current config.
    pub(super) fn configure_trap_timers(&mut self) {
        let services: Vec<(String, _, _)> = self
            .config
            .services()
            .map(|(_, s)| {
                (
                    service_key(&s.group, &s.name),
                    s.traptimeout,
                    s.trapduration,
                )
            })
            .collect();
        self.trap_timers.configure(
            services.iter().map(|(k, t, d)| (k.as_str(), *t, *d)),
            tokio::time::Instant::now(),
        );
    }

    /// Act on expired trap timers: a heartbeat that passed without a trap
    /// is a trap-timeout failure (alerts get `-O`); an expired trapduration
    /// sets the service back to OK without an alert.
    pub(super) fn run_trap_timers(&mut self) {
        let now = tokio::time::Instant::now();
        for (key, event) in self.trap_timers.due(now) {
            let Some(svc) = self.service_config(&key).cloned() else {
                continue;
            };
            let wall = wall_now();
            match event {
                TrapEvent::Timeout => {
                    let timeout = svc.traptimeout.unwrap_or_default();
                    tracing::warn!(group = %svc.group, service = %svc.name, "no trap within traptimeout");
                    let outcome = Outcome {
                        exit: 1,
                        summary: "trap timeout".to_string(),
                        detail: format!(
                            "no trap received within the traptimeout of {}s\n",
                            timeout.as_secs()
                        ),
                        source: Source::TrapTimeout,
                        timed_out: false,
                    };
                    self.record_external(&svc, outcome, &wall, "trap timeout", false);
                }
                TrapEvent::Reset => {
                    tracing::info!(group = %svc.group, service = %svc.name, "trapduration passed; status back to ok");
                    let outcome = Outcome {
                        exit: 0,
                        summary: String::new(),
                        detail: String::new(),
                        source: Source::Trap,
                        timed_out: false,
                    };
                    self.record_external(&svc, outcome, &wall, "trapduration", true);
                }
            }
        }
    }
}
