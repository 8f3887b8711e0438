//! The task of one VRRP sync group: feeds its members' reports to the pure [`crate::vrrp::sync::Group`] and carries out its decisions (orders to the member tasks, the group's transitions to the supervisor); decides nothing itself.
//!
//! ```text
//!  member tasks ── MemberReport ──► sync::Group::step ──► Command::Sync(order) ──► member tasks
//!                                                    └──► Transition { group: true } ──► supervisor (notifies)
//! ```
//!
//! The task ends when every member task has ended (each holds a sender of
//! the report channel).

use std::collections::BTreeMap;

use tokio::sync::{mpsc, watch};

use crate::vrrp::instance::{Command, MemberReport, Transition, state_name};
use crate::vrrp::sync::{Group, SyncAction};

/// What the supervisor keeps of a running group.
pub struct GroupHandle {
    /// The group's state name (`INIT`, `BACKUP`, `MASTER`, `FAULT`).
    pub state: watch::Receiver<&'static str>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the task of group `name`; `members` are the member tasks'
/// command channels, `reports` the receiving end of the channel they
/// report on.
pub fn spawn(
    name: &str,
    members: BTreeMap<String, mpsc::UnboundedSender<Command>>,
    mut reports: mpsc::UnboundedReceiver<MemberReport>,
    transitions: mpsc::UnboundedSender<Transition>,
) -> GroupHandle {
    let names: Vec<String> = members.keys().cloned().collect();
    let mut group = Group::new(name, &names);
    let (state_tx, state) = watch::channel(state_name(group.state()));
    let task = tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            for action in group.step(&report.instance, report.event) {
                match action {
                    SyncAction::Order { member, order } => {
                        tracing::debug!(group = %group.name(), instance = %member, ?order, "sync group order");
                        if let Some(commands) = members.get(&member) {
                            let _ = commands.send(Command::Sync(order));
                        }
                    }
                    SyncAction::GroupChanged { from, to } => {
                        tracing::warn!(group = %group.name(), from = state_name(from), to = state_name(to), "vrrp sync group transition");
                        state_tx.send_replace(state_name(to));
                        let _ = transitions.send(Transition {
                            instance: group.name().to_string(),
                            group: true,
                            from,
                            to,
                            reason: format!("sync group, after {}", report.instance),
                            priority: 0,
                        });
                    }
                }
            }
        }
    });
    GroupHandle { state, task }
}
