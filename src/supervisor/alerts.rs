//! Firing alerts: turns the state machine's alert decisions (and VRRP transitions) into actions — table edits, outbox letters, alert.d scripts, file and Lua alerts — records them in the history, and saves the state before a script or Lua alert runs.

use crate::alert::{self, AlertJob};
use crate::config::model::{Action, Service};
use crate::service::{AlertDecision, AlertKind, Now, OpStatus, ServiceState, Source};
use crate::state::service_key;
use crate::vrrp::fsm::State;
use crate::vrrp::instance::{Transition, state_name};

use super::services::push_bounded;
use super::vrrp::director_name;
use super::{Event, Supervisor};

impl Supervisor {
    /// Carry out alert decisions for `service`. Table edits apply at once;
    /// mail goes to the outbox (on disk before it counts as sent); the
    /// history lines are appended and the state is saved; scripts and Lua
    /// alerts start only once that save is on disk, so a crash cannot make
    /// a restart send them again.
    pub(super) fn fire_alerts(
        &mut self,
        service: &Service,
        decisions: Vec<AlertDecision>,
        now: &Now,
    ) {
        if decisions.is_empty() {
            return;
        }
        let key = service_key(&service.group, &service.name);
        let Some(state) = self.services.slots.get(&key).map(|s| s.state.clone()) else {
            return;
        };
        let hosts = self.services.alert_hosts(&self.config, service);
        let mut history = Vec::new();
        let mut jobs = Vec::new();
        for decision in decisions {
            if let Action::Lb(edit) = &decision.alert.action {
                // The supervisor owns the table: mon's lvs.alert / an `lb`
                // action edits it here (-u on an upalert adds, else removes).
                let add = decision.kind == AlertKind::Up;
                let line = self.lb.edit(
                    edit,
                    add,
                    now.unix,
                    &format!("alert {}", decision.alert.name),
                );
                history.push(format!(
                    "{} {} {} {} {} {}",
                    alert::history_type(decision.kind, decision.source),
                    service.group,
                    service.name,
                    now.unix,
                    decision.alert.name,
                    line
                ));
                continue;
            }
            let job = AlertJob {
                group: service.group.clone(),
                service: service.name.clone(),
                hosts: hosts.clone(),
                time: now.unix,
                description: service.description.clone(),
                opstatus: state.opstatus,
                env: alert_env(&self.config, service, &state),
                summary: state.last_summary.clone(),
                detail: state.last_detail.clone(),
                lua: crate::lua::LuaSettings::from_settings(&self.config.settings),
                decision,
            };
            if alert::recorded_in_history(&job) {
                history.push(alert::history_line(&job));
            }
            if let Action::Alertmanager(action) = &job.decision.alert.action {
                let context = super::alertmanager::AlertContext {
                    service,
                    state: &state,
                    director: &director_name(&self.config.settings),
                };
                let id = self.alertmanager.queue_alert(&job, action, &context, now);
                tracing::info!(
                    group = %job.group,
                    service = %job.service,
                    alert = %job.decision.alert.name,
                    kind = job.decision.kind.alert_type(job.decision.source),
                    queue_id = id.as_deref().unwrap_or("-"),
                    "alertmanager alert queued"
                );
                continue;
            }
            if let Action::Mail(action) = &job.decision.alert.action {
                let id = self.mail.queue_alert(&job, action, service, now);
                tracing::info!(
                    group = %job.group,
                    service = %job.service,
                    alert = %job.decision.alert.name,
                    kind = job.decision.kind.alert_type(job.decision.source),
                    outbox_id = %id,
                    "mail alert queued"
                );
                continue;
            }
            tracing::info!(
                group = %job.group,
                service = %job.service,
                alert = %job.decision.alert.name,
                kind = job.decision.kind.alert_type(job.decision.source),
                "calling alert"
            );
            jobs.push(job);
        }
        let limit = self.config.settings.histlength;
        self.services.touch();
        let save_now = !history.is_empty();
        for line in history {
            if let Some(file) = &self.config.settings.historicfile {
                self.writer.append(file, line.clone());
            }
            push_bounded(&mut self.services.alert_history, line, limit);
        }
        let saved = save_now.then(|| self.save_state_confirmed());
        self.spawn_alerts(jobs, saved);
    }

    /// Run alert jobs in their own tasks once `saved` (if any) reports the
    /// state on disk (or failed to write it: the alert still runs).
    fn spawn_alerts(
        &self,
        jobs: Vec<AlertJob>,
        saved: Option<tokio::sync::oneshot::Receiver<std::io::Result<()>>>,
    ) {
        if jobs.is_empty() {
            return;
        }
        let timeout = self.config.settings.monitor_timeout;
        let events = self.events.clone();
        self.tracker.spawn(async move {
            if let Some(saved) = saved {
                let _ = saved.await;
            }
            let runs = jobs.into_iter().map(|job| {
                let events = events.clone();
                async move {
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
                }
            });
            futures_util::future::join_all(runs).await;
        });
    }

    /// `startupalert` lines of every service, once at start.
    pub(super) fn startup_alerts(&mut self) {
        let now = super::wall_now();
        let services: Vec<Service> = self.config.services().map(|(_, s)| s.clone()).collect();
        for service in services {
            let key = service_key(&service.group, &service.name);
            let gates = self.services.gates(&service);
            let decisions = match self.services.slots.get(&key) {
                Some(slot) => slot.state.startup_alerts(&service, &now, &gates),
                None => continue,
            };
            self.fire_alerts(&service, decisions, &now);
        }
    }

    /// A VRRP transition: log it, keep it in the history, fire the
    /// instance's notify actions (mail through the outbox with the VRRP
    /// letter; scripts, files and Lua with the `VRRP_*` environment).
    pub(super) fn on_vrrp_transition(&mut self, transition: Transition) {
        let director = director_name(&self.config.settings);
        let summary = format!(
            "director {director} became {} for {}{}",
            state_name(transition.to),
            if transition.group { "sync group " } else { "" },
            transition.instance
        );
        let now = super::wall_now();
        let line = format!(
            "vrrp {} {} {summary} (from {}, priority {}: {})",
            transition.instance,
            now.unix,
            state_name(transition.from),
            transition.priority,
            transition.reason
        );
        tracing::info!("{line}");
        let limit = self.config.settings.histlength;
        push_bounded(&mut self.services.alert_history, line, limit);
        self.services.touch();
        let found = if transition.group {
            self.sync_group_as_instance(&transition.instance)
        } else {
            self.config
                .vrrp
                .get(&transition.instance)
                .cloned()
                .map(|c| (c.notify.clone(), c))
        };
        let Some((notify, config)) = found else {
            return;
        };
        let mut jobs = Vec::new();
        for line in &notify {
            if let Action::Mail(action) = &line.action {
                self.mail
                    .queue_vrrp(&transition, &config, action, &director, &now);
                continue;
            }
            tracing::info!(instance = %transition.instance, alert = %line.name, "calling vrrp notify alert");
            jobs.push(self.vrrp_job(
                &VrrpNotice {
                    instance: &transition.instance,
                    state: state_name(transition.to),
                    previous: state_name(transition.from),
                    priority: transition.priority,
                    reason: &transition.reason,
                    up: transition.to == State::Master,
                    group: transition.group,
                },
                &director,
                &summary,
                line,
                now.unix,
            ));
        }
        self.spawn_alerts(jobs, None);
    }
}

/// What a VRRP notify action is told.
struct VrrpNotice<'a> {
    instance: &'a str,
    state: &'a str,
    previous: &'a str,
    priority: u8,
    reason: &'a str,
    /// MASTER: an up-kind alert (upalert-like), else a failure.
    up: bool,
    /// A sync group's transition (`VRRP_TYPE=GROUP`, keepalived's `GROUP`
    /// notify argument).
    group: bool,
}

impl Supervisor {
    /// A sync group's notify lines, and the instance its mail letter
    /// describes: the first member, named after the group, with every
    /// member's addresses.
    fn sync_group_as_instance(
        &self,
        name: &str,
    ) -> Option<(
        Vec<crate::config::model::AlertLine>,
        crate::config::model::VrrpInstance,
    )> {
        let group = self.config.vrrp_sync_groups.get(name)?;
        let mut members = group.members.iter().filter_map(|m| self.config.vrrp.get(m));
        let mut letter = members.next()?.clone();
        letter.name = group.name.clone();
        for member in members {
            letter
                .virtual_addresses
                .extend(member.virtual_addresses.iter().cloned());
        }
        Some((group.notify.clone(), letter))
    }

    /// One notify action's job, with the `VRRP_*` environment that exec,
    /// keepalived-style notify and Lua alerts read.
    fn vrrp_job(
        &self,
        notice: &VrrpNotice<'_>,
        director: &str,
        summary: &str,
        line: &crate::config::model::AlertLine,
        unix: i64,
    ) -> AlertJob {
        AlertJob {
            lua: crate::lua::LuaSettings::from_settings(&self.config.settings),
            group: "vrrp".to_string(),
            service: notice.instance.to_string(),
            hosts: vec![director.to_string()],
            time: unix,
            description: Some(summary.to_string()),
            opstatus: if notice.up {
                OpStatus::Ok
            } else {
                OpStatus::Fail
            },
            env: vec![
                ("VRRP_INSTANCE".into(), notice.instance.to_string()),
                (
                    "VRRP_TYPE".into(),
                    if notice.group { "GROUP" } else { "INSTANCE" }.to_string(),
                ),
                ("VRRP_STATE".into(), notice.state.to_string()),
                ("VRRP_PREVIOUS_STATE".into(), notice.previous.to_string()),
                ("VRRP_PRIORITY".into(), notice.priority.to_string()),
                ("VRRP_REASON".into(), notice.reason.to_string()),
                ("VRRP_DIRECTOR".into(), director.to_string()),
            ],
            summary: summary.to_string(),
            detail: notice.reason.to_string(),
            decision: AlertDecision {
                period: String::new(),
                kind: if notice.up {
                    AlertKind::Up
                } else {
                    AlertKind::Failure
                },
                source: Source::Monitor,
                alert: line.clone(),
                exit: i32::from(!notice.up),
                stdin: format!("{summary}\n{}\n", notice.reason),
                counts: false,
            },
        }
    }

    /// At stop, after the instances gave up their addresses: keepalived's
    /// `notify_stop` and `notify ... STOP` scripts (keepalived-style notify
    /// actions only), run within the shutdown grace.
    pub(super) fn vrrp_stop_notifies(&mut self) {
        let director = director_name(&self.config.settings);
        let now = super::wall_now();
        let mut jobs = Vec::new();
        for (name, instance) in &self.config.vrrp {
            let summary = format!("director {director} stopped VRRP instance {name}");
            for line in &instance.notify {
                if !matches!(line.action, Action::Notify(_)) {
                    continue;
                }
                jobs.push(self.vrrp_job(
                    &VrrpNotice {
                        instance: name,
                        state: "STOP",
                        previous: "STOP",
                        priority: instance.priority,
                        reason: "keepmon is stopping",
                        up: false,
                        group: false,
                    },
                    &director,
                    &summary,
                    line,
                    now.unix,
                ));
            }
        }
        for (name, group) in &self.config.vrrp_sync_groups {
            let summary = format!("director {director} stopped VRRP sync group {name}");
            for line in &group.notify {
                if !matches!(line.action, Action::Notify(_)) {
                    continue;
                }
                jobs.push(self.vrrp_job(
                    &VrrpNotice {
                        instance: name,
                        state: "STOP",
                        previous: "STOP",
                        priority: 0,
                        reason: "keepmon is stopping",
                        up: false,
                        group: true,
                    },
                    &director,
                    &summary,
                    line,
                    now.unix,
                ));
            }
        }
        self.spawn_alerts(jobs, None);
    }
}

/// `MON_*` variables and `VAR=value` lines for a monitor run.
pub(super) fn monitor_env(
    config: &crate::config::model::Config,
    service: &Service,
    state: &ServiceState,
) -> Vec<(String, String)> {
    let mut env = common_env(config, service, state);
    env.push(("MON_LAST_OUTPUT".into(), state.last_output.clone()));
    env
}

/// `MON_*` variables for an alert (the alert module adds the per-alert ones):
/// a monitor's, plus the ack comment.
fn alert_env(
    config: &crate::config::model::Config,
    service: &Service,
    state: &ServiceState,
) -> Vec<(String, String)> {
    let mut env = monitor_env(config, service, state);
    if let Some(ack) = &state.ack {
        env.push(("MON_ACK".into(), ack.comment.clone()));
    }
    env
}

fn common_env(
    config: &crate::config::model::Config,
    service: &Service,
    state: &ServiceState,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("MON_GROUP".into(), service.group.clone()),
        ("MON_SERVICE".into(), service.name.clone()),
        ("MON_LAST_SUMMARY".into(), state.last_summary.clone()),
        (
            "MON_STATEDIR".into(),
            config.settings.statedir.display().to_string(),
        ),
        (
            "MON_LOGDIR".into(),
            config.settings.logdir.display().to_string(),
        ),
        (
            "MON_CFBASEDIR".into(),
            config.settings.cfbasedir.display().to_string(),
        ),
    ];
    for (name, value) in [
        ("MON_LAST_FAILURE", state.last_failure),
        ("MON_FIRST_FAILURE", state.first_failure),
        ("MON_LAST_SUCCESS", state.last_success),
    ] {
        if let Some(v) = value {
            env.push((name.into(), v.to_string()));
        }
    }
    if let Some(d) = &service.description {
        env.push(("MON_DESCRIPTION".into(), d.clone()));
    }
    env.extend(service.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}
