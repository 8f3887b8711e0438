//! The supervisor's load-balancer side: lvs.alert edits of the table, `lb` CLI changes, and reconciling the data planes with the table.

use std::net::SocketAddr;

use super::{Supervisor, error, ok, push_bounded, unix_now};
use crate::config::model::{Action, AdminState, LbEdit, Service};
use crate::control::proto::{LbChange, Response};
use crate::lb::table::VirtualDefaults;
use crate::service::Now;
use crate::state::service_key;

impl Supervisor {
    /// Every `lvs.alert`/`lb` edit in a service's alert lines (failure and
    /// up alerts), deduplicated by (virtual, real).
    pub(super) fn lvs_edits_of(service: &Service) -> Vec<LbEdit> {
        let mut edits: Vec<LbEdit> = Vec::new();
        for period in &service.periods {
            for line in period.alerts.iter().chain(&period.upalerts) {
                if let Action::Lb(edit) = &line.action
                    && !edits.iter().any(|e| {
                        e.virtual_addr == edit.virtual_addr
                            && e.real_addr == edit.real_addr
                            && e.real_port == edit.real_port
                    })
                {
                    edits.push(edit.clone());
                }
            }
        }
        edits
    }

    /// The table declares the virtual and real servers named by lvs.alert
    /// lines; here the real servers of services already failing (state
    /// restored at start, or kept across a reload) are taken out, so the
    /// table follows service state from the first moment.
    pub(super) fn remove_failing_lvs_members(&mut self) {
        let defaults = VirtualDefaults::default();
        let services: Vec<Service> = self.config.services().map(|(_, s)| s.clone()).collect();
        for service in services {
            for edit in Self::lvs_edits_of(&service) {
                self.table.ensure_virtual(&edit, &defaults);
                let failing = self
                    .slots
                    .get(&service_key(&service.group, &service.name))
                    .is_some_and(|s| s.state.opstatus.is_failure());
                if failing && let Err(e) = self.table.apply_edit(&edit, false) {
                    tracing::warn!(error = %e, "lvs.alert binding");
                }
            }
        }
        self.lb_dirty = true;
    }

    /// Apply a service's lvs.alert edits as its state says (level-triggered).
    pub(super) fn apply_lvs_edits_of(
        &mut self,
        service: &Service,
        add: bool,
        now: &Now,
        why: &str,
    ) {
        for edit in Self::lvs_edits_of(service) {
            self.lb_edit(
                &edit,
                add,
                now,
                &format!("{why} of {}", service.reference()),
            );
        }
    }

    /// One explicit table edit; returns the log line.
    pub(super) fn lb_edit(&mut self, edit: &LbEdit, add: bool, now: &Now, why: &str) -> String {
        self.table.ensure_virtual(edit, &VirtualDefaults::default());
        let verb = if add { "add" } else { "remove" };
        let real = match edit.real_port {
            Some(port) => format!("{}", SocketAddr::new(edit.real_addr, port)),
            None => edit.real_addr.to_string(),
        };
        let line = match self.table.apply_edit(edit, add) {
            Ok(change) => {
                if change.is_changed() {
                    self.lb_dirty = true;
                }
                format!(
                    "{} lb {verb} {} {real} ({why})",
                    now.unix, edit.virtual_addr
                )
            }
            Err(e) => format!(
                "{} lb {verb} {} {real} failed: {e} ({why})",
                now.unix, edit.virtual_addr
            ),
        };
        tracing::info!("{line}");
        push_bounded(
            &mut self.lb_log,
            line.clone(),
            self.config.settings.histlength,
        );
        line
    }

    /// Bring the data planes in step with the table (level-triggered).
    pub(super) async fn reconcile_lb(&mut self) {
        self.lb_dirty = false;
        for change in self.table.update_quorum() {
            let line = format!(
                "{} lb {} quorum {} (live weight {}, quorum {}, hysteresis {})",
                unix_now(),
                change.service,
                if change.up { "gained" } else { "lost" },
                change.live_weight,
                change.quorum,
                change.hysteresis
            );
            tracing::warn!("{line}");
            push_bounded(&mut self.lb_log, line, self.config.settings.histlength);
        }
        let desired = self.table.desired();
        for op in self.planes.apply(&desired).await {
            tracing::info!(?op, "data plane");
        }
    }

    pub(super) fn lb_show(&self) -> Response {
        let all = self.planes.all_conn_counts();
        let counts =
            |vs: &str, rs: SocketAddr| all.get(&(vs.to_string(), rs)).copied().unwrap_or_default();
        let report = self.table.report(Some(&counts));
        let mut text = crate::render::lb_table(&report);
        if !self.lb_log.is_empty() {
            text.push_str("\nrecent changes:\n");
            for line in self.lb_log.iter().rev().take(10).rev() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        Response::Lb {
            text,
            json: serde_json::to_value(&report).unwrap_or_default(),
        }
    }

    pub(super) fn lb_set(&mut self, vs: &str, rs: &str, change: LbChange) -> Response {
        let name = match self.table.find_virtual(vs) {
            Ok(n) => n.to_string(),
            Err(e) => return error(e.to_string()),
        };
        let addr = match self.table.find_real(&name, rs) {
            Ok(a) => a,
            Err(e) => return error(e.to_string()),
        };
        let result = match change {
            LbChange::Drain => self.table.set_admin(&name, addr, AdminState::Drain),
            LbChange::Maint => self.table.set_admin(&name, addr, AdminState::Maint),
            LbChange::Ready => self.table.set_admin(&name, addr, AdminState::Ready),
            LbChange::Weight { weight } => self.table.set_weight(&name, addr, weight),
        };
        match result {
            Ok(_) => {
                self.lb_dirty = true;
                let line = format!("{} lb {name} {addr} {change:?} (cli)", unix_now());
                tracing::info!("{line}");
                push_bounded(
                    &mut self.lb_log,
                    line.clone(),
                    self.config.settings.histlength,
                );
                push_bounded(
                    &mut self.persisted.alert_history,
                    line,
                    self.config.settings.histlength,
                );
                self.dirty = true;
                ok(format!("{name} {addr}: {change:?}"))
            }
            Err(e) => error(e.to_string()),
        }
    }
}
