//! The BFD part: runs the configured BFD sessions ([`crate::bfd::task`], one task started at the first apply) and hands it each applied config's sessions (unchanged sessions keep running through a reload); the sessions' states reach VRRP instances and BFD_CHECK'ed real servers through one `watch` channel.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bfd::{BfdStates, task};
use crate::config::model::{BfdSession, Config};

pub(super) struct BfdPart {
    states: Arc<watch::Sender<BfdStates>>,
    sessions: watch::Sender<BTreeMap<String, BfdSession>>,
    running: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl BfdPart {
    pub fn new() -> BfdPart {
        let (states, _) = watch::channel(BfdStates::new());
        let (sessions, _) = watch::channel(BTreeMap::new());
        BfdPart {
            states: Arc::new(states),
            sessions,
            running: None,
        }
    }

    /// What VRRP instances and the event loop watch.
    pub fn states(&self) -> watch::Receiver<BfdStates> {
        self.states.subscribe()
    }

    /// The sessions' states now.
    pub fn current(&self) -> BfdStates {
        self.states.borrow().clone()
    }

    /// Hand the config's sessions to the task (started at the first apply).
    pub fn reconfigure(&mut self, config: &Config) {
        self.sessions.send_if_modified(|current| {
            if *current == config.bfd {
                false
            } else {
                tracing::info!(sessions = ?config.bfd.keys().collect::<Vec<_>>(), "bfd sessions configured");
                *current = config.bfd.clone();
                true
            }
        });
        if self.running.is_none() {
            let cancel = CancellationToken::new();
            let task = tokio::spawn(task::run(
                self.sessions.subscribe(),
                Arc::clone(&self.states),
                cancel.clone(),
            ));
            self.running = Some((cancel, task));
        }
    }

    pub fn stop(&mut self) {
        if let Some((cancel, task)) = self.running.take() {
            cancel.cancel();
            task.abort();
        }
    }
}
