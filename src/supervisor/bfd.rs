//! The BFD part: runs the configured BFD sessions ([`crate::bfd::task`]) and restarts them when `[bfd]` / `bfd_instance` changes; the sessions' states reach VRRP instances through one `watch` channel that outlives restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bfd::{BfdStates, task};
use crate::config::model::{BfdSession, Config};

pub(super) struct BfdPart {
    states: Arc<watch::Sender<BfdStates>>,
    running: Option<Running>,
}

struct Running {
    sessions: BTreeMap<String, BfdSession>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl BfdPart {
    pub fn new() -> BfdPart {
        let (states, _) = watch::channel(BfdStates::new());
        BfdPart {
            states: Arc::new(states),
            running: None,
        }
    }

    /// What VRRP instances watch.
    pub fn states(&self) -> watch::Receiver<BfdStates> {
        self.states.subscribe()
    }

    /// Start the sessions at the first apply; on a reload restart them only
    /// when a session changed (sessions start Down again, as keepalived's
    /// BFD process restarts them).
    pub fn reconfigure(&mut self, config: &Config) {
        if self
            .running
            .as_ref()
            .is_some_and(|r| r.sessions == config.bfd)
            || (self.running.is_none() && config.bfd.is_empty())
        {
            return;
        }
        self.stop();
        if config.bfd.is_empty() {
            self.states.send_replace(BfdStates::new());
            return;
        }
        let cancel = CancellationToken::new();
        let sessions = config.bfd.clone();
        tracing::info!(sessions = ?sessions.keys().collect::<Vec<_>>(), "bfd sessions started");
        let task = tokio::spawn(task::run(
            sessions.clone(),
            Arc::clone(&self.states),
            cancel.clone(),
        ));
        self.running = Some(Running {
            sessions,
            cancel,
            task,
        });
    }

    /// The sessions' states now.
    pub fn current(&self) -> BfdStates {
        self.states.borrow().clone()
    }

    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.cancel.cancel();
            running.task.abort();
        }
    }
}
