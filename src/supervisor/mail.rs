//! The mail part: the handle on the outbox and its delivery worker (`crate::mail::worker`); turns mail alerts and VRRP notices into letters written to the outbox before they count as sent; reconfigured from a config diff like every part.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alert::AlertJob;
use crate::config::diff::ConfigDiff;
use crate::config::model::{Config, MailAction, MailSettings, Service, VrrpInstance};
use crate::control::proto::MailDump;
use crate::mail::worker::MailQueue;
use crate::mail::{self, Letter};
use crate::service::{AlertKind, Now};
use crate::vrrp::instance::{Transition, state_name};

/// The outbox handle; the worker starts with the first reconfigure.
pub(super) struct MailPart {
    queue: Option<MailQueue>,
    settings: MailSettings,
}

impl MailPart {
    pub fn new() -> MailPart {
        MailPart {
            queue: None,
            settings: MailSettings::default(),
        }
    }

    /// At start: start the delivery worker (letters left by an earlier run
    /// are loaded first). On reload: hand it the new relay, sender and
    /// retry policy. The outbox stays in the statedir it started in.
    pub fn reconfigure(
        &mut self,
        config: &Config,
        _diff: &ConfigDiff,
        disk: crate::state::Ordered,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        self.settings = config.mail.clone();
        match &mut self.queue {
            Some(queue) => queue.reconfigure(&config.mail),
            None => {
                self.queue = Some(MailQueue::start(
                    &config.settings.statedir,
                    &config.mail,
                    disk,
                    tracker,
                    shutdown.clone(),
                ));
            }
        }
    }

    /// Write one mail alert to the outbox; returns the entry id.
    pub fn queue_alert(
        &mut self,
        job: &AlertJob,
        action: &MailAction,
        service: &Service,
        now: &Now,
    ) -> String {
        let Some(from) = self.default_from() else {
            tracing::error!(group = %job.group, service = %job.service, "mail worker not running; mail alert dropped");
            return String::new();
        };
        let next_alert_secs = match job.decision.kind {
            AlertKind::Failure => service
                .periods
                .iter()
                .find(|p| p.key == job.decision.period)
                .and_then(|p| p.alertevery.as_ref())
                .map(|a| a.every.as_secs()),
            _ => None,
        };
        let letter = mail::alert_letter(job, action, &from, now.local, next_alert_secs);
        let about = format!(
            "{} {}/{}",
            crate::alert::history_type(job.decision.kind, job.decision.source),
            job.group,
            job.service
        );
        self.queue_letter(letter, about, now.unix)
    }

    /// A `mail` notify action of a VRRP instance: the VRRP letter (its own
    /// subject, not an ALERT line) through the outbox.
    pub fn queue_vrrp(
        &mut self,
        transition: &Transition,
        config: &VrrpInstance,
        action: &MailAction,
        director: &str,
        now: &Now,
    ) {
        let Some(default_from) = self.default_from() else {
            tracing::error!(instance = %transition.instance, "mail worker not running; vrrp mail dropped");
            return;
        };
        let addresses: Vec<String> = config
            .virtual_addresses
            .iter()
            .map(|v| format!("{}/{}", v.addr, v.prefix))
            .collect();
        let (subject, body) = mail::vrrp_letter(
            &mail::VrrpTransition {
                instance: &transition.instance,
                vrid: config.vrid.get(),
                interface: &config.interface,
                from: state_name(transition.from),
                to: state_name(transition.to),
                reason: &transition.reason,
                priority: transition.priority,
                virtual_addresses: &addresses,
                host: director,
            },
            now.local,
        );
        let letter = Letter {
            from: action.from.clone().unwrap_or(default_from),
            to: action.to.clone(),
            subject: action.subject.clone().unwrap_or(subject),
            body,
        };
        let id = self.queue_letter(letter, format!("vrrp {}", transition.instance), now.unix);
        tracing::info!(instance = %transition.instance, outbox_id = %id, "vrrp mail queued");
    }

    /// What `dump` shows of the outbox.
    pub fn dump(&self) -> MailDump {
        self.queue
            .as_ref()
            .map(MailQueue::status)
            .unwrap_or_default()
    }

    /// The sender of keepmon's own letters: `[mail] from`, else a
    /// `keepmon@HOSTNAME`-style default. None before the worker runs.
    fn default_from(&self) -> Option<String> {
        let queue = self.queue.as_ref()?;
        Some(
            self.settings
                .from
                .clone()
                .unwrap_or_else(|| mail::default_from(queue.hostname())),
        )
    }

    fn queue_letter(&mut self, letter: Letter, about: String, created: i64) -> String {
        match &mut self.queue {
            Some(queue) => queue.queue(letter, about, created),
            None => {
                tracing::error!(%about, "mail worker not running; letter dropped");
                String::new()
            }
        }
    }
}
