//! The Alertmanager part: the handle on the Alertmanager queue and its worker (`crate::alertmanager::worker`); turns alert decisions of `alertmanager` actions into queued changes (a failure fires one alert per failing host, the upalert resolves them), written to disk before they count as sent.

use std::collections::BTreeSet;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alert::AlertJob;
use crate::alertmanager::worker::{AlertmanagerQueue, Queued};
use crate::alertmanager::{Alert, Change, Labels};
use crate::config::diff::ConfigDiff;
use crate::config::model::{Action, AlertmanagerAction, Config, Service};
use crate::control::proto::AlertmanagerDump;
use crate::service::{AlertKind, Now, ServiceState};

/// The queue handle; the worker starts with the first reconfigure.
pub(super) struct AlertmanagerPart {
    queue: Option<AlertmanagerQueue>,
}

impl AlertmanagerPart {
    pub fn new() -> AlertmanagerPart {
        AlertmanagerPart { queue: None }
    }

    /// At start: start the worker (changes left by an earlier run are
    /// loaded first). The queue stays in the statedir it started in.
    pub fn reconfigure(
        &mut self,
        config: &Config,
        _diff: &ConfigDiff,
        disk: crate::state::Ordered,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let queue = self.queue.get_or_insert_with(|| {
            AlertmanagerQueue::start(&config.settings.statedir, disk, tracker, shutdown.clone())
        });
        queue.configured(configured_pairs(config));
    }

    /// Queue what this alert decision means for Alertmanager: a failure
    /// fires (one alert per failing host), an upalert or a disable
    /// resolves; acks, startup and redistribute calls change nothing there
    /// (a silence is Alertmanager's ack). Returns the queue id, if any.
    pub fn queue_alert(
        &mut self,
        job: &AlertJob,
        action: &AlertmanagerAction,
        alert: &AlertContext<'_>,
        now: &Now,
    ) -> Option<String> {
        let scope = format!("{}/{}", job.group, job.service);
        let change = match job.decision.kind {
            AlertKind::Failure => Change::Fire {
                alerts: alerts(job, action, alert, now),
            },
            AlertKind::Up | AlertKind::Disable => Change::Resolve { at: now.unix },
            AlertKind::Startup | AlertKind::Ack | AlertKind::Redistribute => return None,
        };
        let Some(queue) = &mut self.queue else {
            tracing::error!(%scope, "alertmanager worker not running; alert dropped");
            return None;
        };
        Some(queue.queue(Queued {
            url: action.url.clone(),
            scope,
            change,
            resend: action.resend,
            created: now.unix,
        }))
    }

    /// What `dump` shows.
    pub fn dump(&self) -> Vec<AlertmanagerDump> {
        self.queue
            .as_ref()
            .map(AlertmanagerQueue::status)
            .unwrap_or_default()
    }
}

/// Every (Alertmanager URL, `group/service`) an alert line of the config
/// posts to.
fn configured_pairs(config: &Config) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (_, service) in config.services() {
        for period in &service.periods {
            for line in period
                .alerts
                .iter()
                .chain(&period.upalerts)
                .chain(&period.startupalerts)
                .chain(&period.ackalerts)
                .chain(&period.disablealerts)
            {
                if let Action::Alertmanager(am) = &line.action {
                    pairs.insert((
                        am.url.clone(),
                        format!("{}/{}", service.group, service.name),
                    ));
                }
            }
        }
    }
    pairs
}

/// What the labels are made of besides the job.
pub(super) struct AlertContext<'a> {
    pub service: &'a Service,
    pub state: &'a ServiceState,
    pub director: &'a str,
}

/// One alert per failing host: hosts whose health is down, else the
/// hostgroup's hosts the summary names, else one alert without a host.
fn alerts(
    job: &AlertJob,
    action: &AlertmanagerAction,
    context: &AlertContext<'_>,
    now: &Now,
) -> Vec<Alert> {
    let mut hosts: Vec<String> = context
        .state
        .hosts
        .iter()
        .filter(|(_, h)| !h.up)
        .map(|(name, _)| name.clone())
        .collect();
    if hosts.is_empty() {
        hosts = job
            .summary
            .split_whitespace()
            .filter(|word| job.hosts.iter().any(|h| h == word))
            .map(str::to_string)
            .collect();
        hosts.dedup();
    }
    let severity = action.severity.clone().unwrap_or_else(|| {
        // An unlabelled period's key is its spec (`wd {Mon-Fri}`).
        let period = &job.decision.period;
        if period.is_empty() || period.contains(['{', ' ']) {
            "critical".to_string()
        } else {
            period.clone()
        }
    });
    let mut base = Labels::new();
    base.insert("alertname".into(), format!("{}/{}", job.group, job.service));
    base.insert("group".into(), job.group.clone());
    base.insert("service".into(), job.service.clone());
    base.insert("director".into(), context.director.to_string());
    base.insert("severity".into(), severity);
    for (name, value) in &action.labels {
        base.insert(name.clone(), value.clone());
    }
    let mut annotations = Labels::new();
    annotations.insert("summary".into(), job.summary.clone());
    if !job.detail.trim().is_empty() {
        annotations.insert("detail".into(), job.detail.clone());
    }
    if let Some(description) = &context.service.description {
        annotations.insert("description".into(), description.clone());
    }
    let starts_at = context.state.first_failure.unwrap_or(now.unix);
    let one = |host: Option<&str>| {
        let mut labels = base.clone();
        if let Some(host) = host {
            labels.insert("host".into(), host.to_string());
        }
        Alert {
            labels,
            annotations: annotations.clone(),
            starts_at,
        }
    };
    if hosts.is_empty() {
        vec![one(None)]
    } else {
        hosts.iter().map(|h| one(Some(h))).collect()
    }
}
