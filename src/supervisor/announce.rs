//! The route-announcement part: evaluates each `[announce.NAME]` condition after every event (level-triggered), hands the wanted routes to the BIRD/FRR worker, records each flip in the history, and withdraws everything first at stop.

use std::collections::BTreeMap;

use crate::announce::{BirdWorker, Route};
use crate::config::diff::ConfigDiff;
use crate::config::model::{Announcement, BgpSettings, Config, RouteDaemon};
use crate::config::when::Facts;
use crate::control::proto::AnnounceDump;

/// Announcements, whether each is wanted now, and the worker.
pub(super) struct AnnouncePart {
    announcements: BTreeMap<String, Announcement>,
    bgp: BgpSettings,
    /// Whether each announcement's condition held at the last evaluation.
    active: BTreeMap<String, bool>,
    /// Started when a config first has announcements; kept afterwards so a
    /// reload that removes them withdraws their routes.
    worker: Option<BirdWorker>,
}

impl AnnouncePart {
    pub fn new() -> AnnouncePart {
        AnnouncePart {
            announcements: BTreeMap::new(),
            bgp: BgpSettings::default(),
            active: BTreeMap::new(),
            worker: None,
        }
    }

    /// Take the config's announcements; removed ones stop being wanted
    /// (their routes are withdrawn by the next evaluation), added ones are
    /// evaluated with the rest.
    pub fn reconfigure(&mut self, config: &Config, diff: &ConfigDiff) {
        for removed in &diff.announce.removed {
            self.active.remove(removed);
        }
        self.announcements = config.announce.clone();
        self.bgp = config.bgp.clone();
        if self.worker.is_none()
            && !self.announcements.is_empty()
            && matches!(self.bgp.via, RouteDaemon::Bird | RouteDaemon::Frr)
        {
            self.worker = Some(BirdWorker::start(self.bgp.clone()));
        }
    }

    /// Evaluate every condition; returns a history line per flip.
    pub fn evaluate(&mut self, facts: &dyn Facts, unix: i64) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, a) in &self.announcements {
            let now = a.when.eval(facts);
            let before = self.active.insert(name.clone(), now);
            if before != Some(now) && (before.is_some() || now) {
                let line = format!(
                    "{unix} announce {name} {} {} (when {})",
                    a.prefix_text(),
                    if now { "announced" } else { "withdrawn" },
                    a.when
                );
                tracing::warn!("{line}");
                lines.push(line);
            }
        }
        if let Some(worker) = &self.worker {
            worker.want(self.wanted(), &self.bgp);
        }
        lines
    }

    fn wanted(&self) -> Vec<Route> {
        self.announcements
            .iter()
            .filter(|(name, _)| self.active.get(*name).copied().unwrap_or(false))
            .map(|(_, a)| Route {
                prefix: a.prefix,
                len: a.prefix_len,
            })
            .collect()
    }

    /// What `dump` and `lb show` show.
    pub fn dumps(&self) -> Vec<AnnounceDump> {
        let applied = self.worker.as_ref().map(BirdWorker::applied);
        self.announcements
            .iter()
            .map(|(name, a)| {
                let route = Route {
                    prefix: a.prefix,
                    len: a.prefix_len,
                };
                let wanted = self.active.get(name).copied().unwrap_or(false);
                AnnounceDump {
                    name: name.clone(),
                    prefix: a.prefix_text(),
                    when: a.when.to_string(),
                    wanted,
                    // ExaBGP's API process follows `wanted` itself.
                    announced: match self.bgp.via {
                        RouteDaemon::ExaBgp => wanted,
                        RouteDaemon::Bird | RouteDaemon::Frr => applied
                            .as_ref()
                            .and_then(|x| x.routes.as_ref())
                            .is_some_and(|routes| routes.contains(&route)),
                    },
                    error: applied.as_ref().and_then(|x| x.error.clone()),
                }
            })
            .collect()
    }

    /// At stop, before anything else goes down: withdraw every route, wait
    /// (bounded) until BIRD has it, then keep the VIP and services up for
    /// `withdraw_drain` so the routers move the traffic away first.
    pub async fn withdraw_all(&mut self) {
        let had_routes = self.active.values().any(|a| *a);
        for active in self.active.values_mut() {
            *active = false;
        }
        if self.bgp.via == RouteDaemon::ExaBgp {
            if had_routes {
                // `keepmon exabgp-api` polls every 200 ms: give it a beat to
                // print the withdraws, then drain.
                tokio::time::sleep(crate::announce::EXABGP_POLL * 2 + self.bgp.withdraw_drain)
                    .await;
                tracing::info!("routes withdrawn; draining before the services stop");
            }
            return;
        }
        let Some(worker) = &mut self.worker else {
            return;
        };
        worker.want(Vec::new(), &self.bgp);
        if worker
            .wait_applied(&[], std::time::Duration::from_secs(5))
            .await
        {
            tracing::info!(
                drain_secs = self.bgp.withdraw_drain.as_secs_f64(),
                "routes withdrawn; draining before the services stop"
            );
            tokio::time::sleep(self.bgp.withdraw_drain).await;
        } else {
            tracing::error!(via = ?self.bgp.via, "routes could not be withdrawn before stopping (routing daemon unreachable?)");
        }
    }
}
