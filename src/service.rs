//! mon's per-service state machine and alert decision order: a result and the time in, state updates and alert decisions out; never does IO or reads the clock.
//!
//! This is `process_event` and `do_alert` from mon 1.2 (reference `mon.md`
//! §8), with mon's bugs fixed where the reference checklist says so
//! (`upalertafter` works). Each step below names the mon step it follows.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::config::model::{AlertAfter, AlertEveryMode, AlertLine, PeriodBlock, Service};

/// mon's numeric opstatus codes (`init_globals`), as the client protocol shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpStatus {
    Fail = 0,
    Ok = 1,
    ColdStart = 2,
    WarmStart = 3,
    LinkDown = 4,
    Unknown = 5,
    Timeout = 6,
    Untested = 7,
    Depend = 8,
    Warn = 9,
    ConfigErr = 10,
}

impl OpStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// mon's SUCCESS class (also what dependencies count as passing).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            OpStatus::Ok
                | OpStatus::ColdStart
                | OpStatus::WarmStart
                | OpStatus::Unknown
                | OpStatus::Untested
        )
    }

    pub fn is_failure(self) -> bool {
        matches!(
            self,
            OpStatus::Fail | OpStatus::LinkDown | OpStatus::Timeout | OpStatus::ConfigErr
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            OpStatus::Fail => "fail",
            OpStatus::Ok => "ok",
            OpStatus::ColdStart => "coldstart",
            OpStatus::WarmStart => "warmstart",
            OpStatus::LinkDown => "linkdown",
            OpStatus::Unknown => "unknown",
            OpStatus::Timeout => "timeout",
            OpStatus::Untested => "untested",
            OpStatus::Depend => "depend",
            OpStatus::Warn => "warn",
            OpStatus::ConfigErr => "configerr",
        }
    }
}

/// The instant an event happens, as both a time(2) value and local wall-clock
/// time (periods are evaluated in local time). The caller reads the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub unix: i64,
    pub local: NaiveDateTime,
}

/// Where a result came from; decides the alert flag (`-T`, `-O`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    Monitor,
    Trap,
    TrapTimeout,
}

/// One monitor run (or trap) as the state machine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// 0 = success, anything else = failure (mon's rule).
    pub exit: i32,
    pub summary: String,
    pub detail: String,
    pub source: Source,
    /// The monitor hit its hard timeout (opstatus `timeout`, a failure).
    pub timed_out: bool,
}

impl Outcome {
    /// Summary then detail, as a monitor prints them.
    pub fn output(&self) -> String {
        if self.detail.is_empty() {
            format!("{}\n", self.summary)
        } else {
            format!("{}\n{}", self.summary, self.detail)
        }
    }
}

/// What the daemon knows besides the result: the switches that gate alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gates {
    pub scheduler_running: bool,
    pub watch_disabled: bool,
    pub service_disabled: bool,
    /// The service's alert dependencies (`depend` with dep_behavior a, or
    /// `alertdepend`) currently hold.
    pub depend_ok: bool,
}

impl Default for Gates {
    fn default() -> Gates {
        Gates {
            scheduler_running: true,
            watch_disabled: false,
            service_disabled: false,
            depend_ok: true,
        }
    }
}

/// Which alert lines of a period an event runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertKind {
    Failure,
    Up,
    Startup,
    Ack,
    Disable,
    /// `redistribute`: called on every status event.
    Redistribute,
}

impl AlertKind {
    /// mon's `MON_ALERTTYPE`.
    pub fn alert_type(self, source: Source) -> &'static str {
        match (self, source) {
            (AlertKind::Failure, Source::Trap) => "trap",
            (AlertKind::Failure, Source::TrapTimeout) => "traptimeout",
            (AlertKind::Failure | AlertKind::Redistribute, _) => "failure",
            (AlertKind::Up, _) => "up",
            (AlertKind::Startup, _) => "startup",
            (AlertKind::Ack, _) => "ack",
            (AlertKind::Disable, _) => "disable",
        }
    }

    /// mon's alert flag (`-u -a -D -T -O`), if any.
    pub fn flag(self, source: Source) -> Option<&'static str> {
        match (self, source) {
            (AlertKind::Up, _) => Some("-u"),
            (AlertKind::Ack, _) => Some("-a"),
            (AlertKind::Disable, _) => Some("-D"),
            (AlertKind::Failure, Source::Trap) => Some("-T"),
            (AlertKind::Failure, Source::TrapTimeout) => Some("-O"),
            _ => None,
        }
    }
}

/// One alert to run: which line, of which period, with which stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertDecision {
    /// The period key (empty for redistribute).
    pub period: String,
    pub kind: AlertKind,
    pub source: Source,
    pub alert: AlertLine,
    /// The monitor's exit value (`MON_RETVAL`).
    pub exit: i32,
    pub stdin: String,
    /// Counts in opstatus `alerts_sent` (false for `alerts_dont_count` periods).
    pub counts: bool,
}

/// What one event changed, for history, logs and the downtime log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub alerts: Vec<AlertDecision>,
    /// The service went from passing to failing on this event.
    pub went_down: bool,
    /// The service went from failing to passing; carries the downtime record.
    pub came_up: Option<Downtime>,
    /// Why failure alerts were not sent, when they were suppressed as a whole.
    pub suppressed: Option<&'static str>,
}

/// A dtlog line: `timeup group service firstfail downtime interval summary`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downtime {
    pub time_up: i64,
    pub first_failure: i64,
    pub summary: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub time: i64,
    /// `user: comment`
    pub comment: String,
}

/// Per-period alert bookkeeping (`_last_alert`, `_alert_sent`, `_1stfailtime`, `_failcount`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodState {
    pub last_alert: Option<i64>,
    pub alert_sent: u32,
    pub first_fail_time: Option<i64>,
    pub fail_count: u32,
    /// When the period's current outage became eligible for an upalert delay.
    pub last_failure_summary: Option<String>,
    pub last_failure_output: Option<String>,
}

/// Everything mon keeps per service, persisted in `statedir`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub opstatus: OpStatus,
    pub last_opstatus: OpStatus,
    pub exitval: i32,
    pub failure_count: u64,
    pub alert_count: u64,
    pub consec_failures: u32,
    pub last_check: Option<i64>,
    pub last_success: Option<i64>,
    pub last_failure: Option<i64>,
    pub first_failure: Option<i64>,
    pub last_alert: Option<i64>,
    pub last_summary: String,
    pub last_detail: String,
    /// Full output of the previous run (`MON_LAST_OUTPUT`).
    pub last_output: String,
    /// Output of the last failing run; an upalert's stdin.
    pub failure_output: String,
    pub ack: Option<Ack>,
    pub periods: BTreeMap<String, PeriodState>,
    /// Per-host up/down after rise/fall hysteresis (what lb health follows).
    #[serde(default)]
    pub hosts: BTreeMap<String, HostHealth>,
}

/// One host's health: up or down, and how many results in a row disagreed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHealth {
    pub up: bool,
    /// Consecutive results contradicting `up` (reset by an agreeing one).
    pub streak: u32,
    pub reason: Option<String>,
}

/// A host's result in one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostOutcome {
    pub host: String,
    pub ok: bool,
    pub reason: Option<String>,
}

/// A host whose up/down state changed on this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostChange {
    pub host: String,
    pub up: bool,
}

impl Default for ServiceState {
    fn default() -> ServiceState {
        ServiceState {
            opstatus: OpStatus::Untested,
            last_opstatus: OpStatus::Untested,
            exitval: 0,
            failure_count: 0,
            alert_count: 0,
            consec_failures: 0,
            last_check: None,
            last_success: None,
            last_failure: None,
            first_failure: None,
            last_alert: None,
            last_summary: String::new(),
            last_detail: String::new(),
            last_output: String::new(),
            failure_output: String::new(),
            ack: None,
            periods: BTreeMap::new(),
            hosts: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("service is in a non-failure state")]
    NotFailing,
}

impl ServiceState {
    /// Apply one result (mon's `process_event`) and decide the alerts.
    pub fn record(
        &mut self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        outcome: &Outcome,
    ) -> Step {
        let mut step = Step::default();
        self.last_check = Some(now.unix);
        self.last_opstatus = self.opstatus;
        self.exitval = outcome.exit;
        let summary = if outcome.summary.trim().is_empty() {
            "(NO SUMMARY)".to_string()
        } else {
            outcome.summary.clone()
        };
        if let Some(redistribute) = &service.redistribute
            && gates.scheduler_running
        {
            step.alerts.push(AlertDecision {
                period: String::new(),
                kind: AlertKind::Redistribute,
                source: outcome.source,
                alert: redistribute.clone(),
                exit: outcome.exit,
                stdin: outcome.output(),
                counts: false,
            });
        }
        if outcome.exit != 0 || outcome.timed_out {
            self.record_failure(service, now, gates, outcome, summary, &mut step);
        } else {
            self.record_success(service, now, gates, outcome, summary, &mut step);
        }
        step
    }

    /// Startup alerts for every period active now (empty stdin).
    pub fn startup_alerts(
        &self,
        service: &Service,
        now: &Now,
        gates: &Gates,
    ) -> Vec<AlertDecision> {
        if !gates.scheduler_running || gates.watch_disabled || gates.service_disabled {
            return Vec::new();
        }
        active_periods(service, now)
            .flat_map(|p| {
                p.startupalerts.iter().map(|a| AlertDecision {
                    period: p.key.clone(),
                    kind: AlertKind::Startup,
                    source: Source::Monitor,
                    alert: a.clone(),
                    exit: 0,
                    stdin: String::new(),
                    counts: false,
                })
            })
            .collect()
    }

    /// `ack G S comment`: only a failing service can be acked. Runs ackalerts.
    pub fn acknowledge(
        &mut self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        user_comment: &str,
    ) -> Result<Vec<AlertDecision>, AckError> {
        if !self.opstatus.is_failure() {
            return Err(AckError::NotFailing);
        }
        self.ack = Some(Ack {
            time: now.unix,
            comment: user_comment.to_string(),
        });
        Ok(self.simple_alerts(service, now, gates, AlertKind::Ack, user_comment))
    }

    /// Alerts run when the service is disabled (stdin: the user name).
    pub fn disable_alerts(&self, service: &Service, now: &Now, user: &str) -> Vec<AlertDecision> {
        let gates = Gates::default();
        self.simple_alerts(service, now, &gates, AlertKind::Disable, user)
    }

    /// Apply per-host results with rise/fall hysteresis: a down host needs
    /// `rise` passing results in a row to count as up, an up host `fall`
    /// failing ones to count as down. A host's first result decides at once.
    /// Hosts no longer checked are forgotten. Returns the hosts that changed.
    pub fn update_hosts(
        &mut self,
        rise: u32,
        fall: u32,
        results: &[HostOutcome],
    ) -> Vec<HostChange> {
        let mut changes = Vec::new();
        self.hosts
            .retain(|h, _| results.iter().any(|r| &r.host == h));
        for r in results {
            let Some(health) = self.hosts.get_mut(&r.host) else {
                self.hosts.insert(
                    r.host.clone(),
                    HostHealth {
                        up: r.ok,
                        streak: 0,
                        reason: r.reason.clone(),
                    },
                );
                changes.push(HostChange {
                    host: r.host.clone(),
                    up: r.ok,
                });
                continue;
            };
            health.reason = r.reason.clone();
            if r.ok == health.up {
                health.streak = 0;
                continue;
            }
            health.streak += 1;
            let needed = if health.up { fall } else { rise }.max(1);
            if health.streak >= needed {
                health.up = r.ok;
                health.streak = 0;
                changes.push(HostChange {
                    host: r.host.clone(),
                    up: r.ok,
                });
            }
        }
        changes
    }

    /// `clear timers`: forget consecutive failures and per-period alert state.
    pub fn clear_timers(&mut self) {
        self.consec_failures = 0;
        self.periods.clear();
    }

    fn record_failure(
        &mut self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        outcome: &Outcome,
        summary: String,
        step: &mut Step,
    ) {
        // process_event failure, steps 1-2.
        self.failure_count += 1;
        self.consec_failures += 1;
        self.last_failure = Some(now.unix);
        let was_passing = !self.opstatus.is_failure();
        if was_passing {
            self.first_failure = Some(now.unix);
            step.went_down = true;
        }
        self.opstatus = if outcome.timed_out {
            OpStatus::Timeout
        } else {
            OpStatus::Fail
        };
        let output = format!("{summary}\n{}", outcome.detail);
        let summary_changed = self
            .last_summary
            .split_whitespace()
            .ne(summary.split_whitespace());
        self.last_summary = summary.clone();
        self.last_detail = outcome.detail.clone();
        // Step 4: do_alert.
        self.decide_failure_alerts(
            service,
            now,
            gates,
            outcome,
            &summary,
            &output,
            summary_changed,
            step,
        );
        self.last_output = output.clone();
        self.failure_output = output;
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_failure_alerts(
        &mut self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        outcome: &Outcome,
        summary: &str,
        output: &str,
        summary_changed: bool,
        step: &mut Step,
    ) {
        // do_alert steps 1, 3, 4.
        let blocked = if !gates.scheduler_running {
            Some("scheduler stopped")
        } else if gates.watch_disabled || gates.service_disabled {
            Some("disabled")
        } else if !gates.depend_ok {
            Some("dependency failing")
        } else {
            None
        };
        // Step 5: a changed summary clears the ack when unack_summary is set.
        if service.unack_summary && summary_changed && self.ack.is_some() {
            self.ack = None;
            for p in self.periods.values_mut() {
                p.alert_sent = 0;
                p.last_alert = None;
            }
        }
        // Step 6: acked services send no failure alerts.
        let blocked = blocked.or_else(|| self.ack.as_ref().map(|_| "acknowledged"));
        // Per-period counters still advance while suppressed as a whole? mon
        // returns before the period loop, so they do not.
        if let Some(reason) = blocked {
            step.suppressed = Some(reason);
            return;
        }
        for period in active_periods(service, now) {
            let state = self.periods.entry(period.key.clone()).or_default();
            let allowed = failure_period_allows(
                period,
                state,
                self.consec_failures,
                now,
                outcome.exit,
                summary,
                output,
            );
            state.last_failure_summary = Some(summary.to_string());
            state.last_failure_output = Some(output.to_string());
            if !allowed {
                continue;
            }
            let lines: Vec<&AlertLine> = period
                .alerts
                .iter()
                .filter(|a| a.exit.is_none_or(|r| r.contains(outcome.exit)))
                .collect();
            if lines.is_empty() {
                continue;
            }
            for alert in lines {
                step.alerts.push(AlertDecision {
                    period: period.key.clone(),
                    kind: AlertKind::Failure,
                    source: outcome.source,
                    alert: alert.clone(),
                    exit: outcome.exit,
                    stdin: output.to_string(),
                    counts: !period.alerts_dont_count,
                });
            }
            // Steps 7c-7d.
            state.last_alert = Some(now.unix);
            state.alert_sent += 1;
            self.last_alert = Some(now.unix);
            if !period.alerts_dont_count {
                self.alert_count += 1;
            }
        }
    }

    fn record_success(
        &mut self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        outcome: &Outcome,
        summary: String,
        step: &mut Step,
    ) {
        let was_failing = self.opstatus.is_failure();
        // Steps 1-2.
        if was_failing && let Some(first) = self.first_failure {
            step.came_up = Some(Downtime {
                time_up: now.unix,
                first_failure: first,
                summary: self.last_summary.clone(),
            });
        }
        self.opstatus = OpStatus::Ok;
        // Step 3: upalerts, with the last failing output as stdin.
        if was_failing {
            let up = self.up_alerts(service, now, gates, outcome);
            step.alerts.extend(up);
        }
        // Steps 4-6.
        self.ack = None;
        self.first_failure = None;
        self.consec_failures = 0;
        self.failure_output.clear();
        for (key, state) in self.periods.iter_mut() {
            let strict = service
                .periods
                .iter()
                .find(|p| &p.key == key)
                .and_then(|p| p.alertevery)
                .is_some_and(|a| a.mode == AlertEveryMode::Strict);
            if !strict {
                state.last_alert = None;
            }
            state.first_fail_time = None;
            state.fail_count = 0;
            state.alert_sent = 0;
        }
        self.last_success = Some(now.unix);
        self.last_summary = summary;
        self.last_detail = outcome.detail.clone();
        self.last_output = outcome.output();
    }

    fn up_alerts(
        &mut self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        outcome: &Outcome,
    ) -> Vec<AlertDecision> {
        if !gates.scheduler_running || gates.watch_disabled || gates.service_disabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        let down_for = self.first_failure.map(|f| now.unix - f).unwrap_or(0);
        for period in active_periods(service, now) {
            let sent = self
                .periods
                .get(&period.key)
                .map(|p| p.alert_sent)
                .unwrap_or(0);
            // 7a: no upalert without a down alert, unless no_comp_alerts.
            if sent == 0 && !period.no_comp_alerts {
                continue;
            }
            // upalertafter (inert in mon, working here): only announce
            // recoveries from outages at least this long.
            if let Some(after) = period.upalertafter
                && down_for < i64::try_from(after.as_secs()).unwrap_or(i64::MAX)
            {
                continue;
            }
            for alert in &period.upalerts {
                out.push(AlertDecision {
                    period: period.key.clone(),
                    kind: AlertKind::Up,
                    source: outcome.source,
                    alert: alert.clone(),
                    exit: outcome.exit,
                    stdin: self.failure_output.clone(),
                    counts: false,
                });
            }
        }
        out
    }

    fn simple_alerts(
        &self,
        service: &Service,
        now: &Now,
        gates: &Gates,
        kind: AlertKind,
        stdin: &str,
    ) -> Vec<AlertDecision> {
        if !gates.scheduler_running {
            return Vec::new();
        }
        let mut out = Vec::new();
        for period in active_periods(service, now) {
            let lines = match kind {
                AlertKind::Ack => &period.ackalerts,
                AlertKind::Disable => &period.disablealerts,
                _ => continue,
            };
            let sent = self
                .periods
                .get(&period.key)
                .map(|p| p.alert_sent)
                .unwrap_or(0);
            if kind == AlertKind::Ack && sent == 0 && !period.no_comp_alerts {
                continue;
            }
            for alert in lines {
                out.push(AlertDecision {
                    period: period.key.clone(),
                    kind,
                    source: Source::Monitor,
                    alert: alert.clone(),
                    exit: self.exitval,
                    stdin: stdin.to_string(),
                    counts: false,
                });
            }
        }
        out
    }
}

fn active_periods<'s>(service: &'s Service, now: &Now) -> impl Iterator<Item = &'s PeriodBlock> {
    service
        .periods
        .iter()
        .filter(move |p| p.spec.contains(&now.local))
}

/// do_alert step 7b for one period: may a failure alert go out now?
/// Updates the period's alertafter counters as mon does.
fn failure_period_allows(
    period: &PeriodBlock,
    state: &mut PeriodState,
    consec_failures: u32,
    now: &Now,
    exit: i32,
    summary: &str,
    output: &str,
) -> bool {
    // 1. alertexitrange.
    if let Some(range) = period.alertexitrange
        && !range.contains(exit)
    {
        return false;
    }
    // 4 (counters first, so they advance even when 2/3 suppress). mon
    // updates the window counter before testing it.
    let alertafter_holds = match period.alertafter {
        None => true,
        Some(AlertAfter::Consecutive(n)) => consec_failures >= n,
        Some(AlertAfter::Window { count, window }) => {
            let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
            match state.first_fail_time {
                Some(first) if now.unix - first <= window => state.fail_count += 1,
                _ => {
                    state.first_fail_time = Some(now.unix);
                    state.fail_count = 1;
                }
            }
            state.fail_count >= count
        }
        Some(AlertAfter::Duration(t)) => {
            let first = *state.first_fail_time.get_or_insert(now.unix);
            now.unix - first > i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
        }
    };
    // 2. numalerts.
    if let Some(n) = period.numalerts
        && state.alert_sent >= n
    {
        return false;
    }
    // 3. alertevery.
    if let (Some(every), Some(last)) = (period.alertevery, state.last_alert) {
        let within = now.unix - last < i64::try_from(every.every.as_secs()).unwrap_or(i64::MAX);
        let same_summary = state.last_failure_summary.as_deref() == Some(summary);
        let same_output = state.last_failure_output.as_deref() == Some(output);
        let suppress = within
            && match every.mode {
                AlertEveryMode::Strict | AlertEveryMode::IgnoreSummary => true,
                AlertEveryMode::ObserveDetail => same_output,
                AlertEveryMode::Summary => same_summary,
            };
        if suppress {
            return false;
        }
    }
    alertafter_holds
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::{FileSystem, Format, compile_str};

    struct NoFs;
    impl FileSystem for NoFs {
        fn is_file(&self, _: &Path) -> bool {
            false
        }
        fn is_dir(&self, _: &Path) -> bool {
            false
        }
    }

    /// A service `g/s` at interval 1m whose single always-period has `period_lines`.
    fn service(period_lines: &str) -> Service {
        let text = format!(
            "hostgroup g h1 h2\n\nwatch g\n  service s\n    interval 1m\n    monitor tcp.monitor\n    period\n{period_lines}"
        );
        let compiled = compile_str(&text, Path::new("t.cf"), Format::Mon, &NoFs)
            .unwrap_or_else(|e| panic!("{}", e.diagnostics));
        compiled.config.watches["g"].services["s"].clone()
    }

    fn at(minute: i64) -> Now {
        let base = chrono::NaiveDate::from_ymd_opt(2026, 3, 4)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("valid date");
        Now {
            unix: 1_700_000_000 + minute * 60,
            local: base + chrono::Duration::minutes(minute),
        }
    }

    fn fail(summary: &str) -> Outcome {
        Outcome {
            exit: 1,
            summary: summary.to_string(),
            detail: "detail\n".to_string(),
            source: Source::Monitor,
            timed_out: false,
        }
    }

    fn ok() -> Outcome {
        Outcome {
            exit: 0,
            summary: String::new(),
            detail: String::new(),
            source: Source::Monitor,
            timed_out: false,
        }
    }

    /// Feed a sequence of results one minute apart; return the alert kinds sent per step.
    fn run(svc: &Service, results: &[Outcome]) -> Vec<Vec<AlertKind>> {
        let mut state = ServiceState::default();
        results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let step = state.record(svc, &at(i as i64), &Gates::default(), r);
                step.alerts.iter().map(|a| a.kind).collect()
            })
            .collect()
    }

    use AlertKind::{Failure as F, Up as U};

    #[test]
    fn first_failure_alerts_and_recovery_upalerts() {
        let svc = service("      alert mail.alert ops\n      upalert mail.alert ops\n");
        assert_eq!(
            run(&svc, &[ok(), fail("h1"), ok()]),
            vec![vec![], vec![F], vec![U]]
        );
    }

    #[test]
    fn no_upalert_without_a_down_alert_unless_no_comp_alerts() {
        let svc = service("      upalert mail.alert ops\n");
        assert_eq!(run(&svc, &[fail("h1"), ok()]), vec![vec![], vec![]]);
        let svc = service("      upalert mail.alert ops\n      no_comp_alerts\n");
        assert_eq!(run(&svc, &[fail("h1"), ok()]), vec![vec![], vec![U]]);
    }

    #[test]
    fn alertevery_suppresses_same_summary_but_not_a_changed_one() {
        let svc = service("      alert mail.alert ops\n      alertevery 1h\n");
        let kinds = run(
            &svc,
            &[fail("h1"), fail("h1"), fail("h1 h2"), fail("h1 h2")],
        );
        assert_eq!(kinds, vec![vec![F], vec![], vec![F], vec![]]);
        let svc = service("      alert mail.alert ops\n      alertevery 1h strict\n");
        let kinds = run(&svc, &[fail("h1"), fail("h2"), ok(), fail("h1")]);
        assert_eq!(
            kinds,
            vec![vec![F], vec![], vec![], vec![]],
            "strict survives a success"
        );
        let svc = service("      alert mail.alert ops\n      alertevery 2m\n");
        let kinds = run(&svc, &[fail("h1"), fail("h1"), fail("h1"), fail("h1")]);
        assert_eq!(
            kinds,
            vec![vec![F], vec![], vec![F], vec![]],
            "the timer runs out"
        );
    }

    #[test]
    fn alertafter_consecutive_window_and_duration() {
        let svc = service("      alert mail.alert ops\n      alertafter 3\n");
        let kinds = run(&svc, &[fail("a"), fail("a"), fail("a"), ok(), fail("a")]);
        assert_eq!(kinds, vec![vec![], vec![], vec![F], vec![], vec![]]);
        let svc = service("      alert mail.alert ops\n      alertafter 2 10m\n");
        let kinds = run(&svc, &[fail("a"), fail("a")]);
        assert_eq!(kinds, vec![vec![], vec![F]]);
        let svc = service("      alert mail.alert ops\n      alertafter 2m\n");
        let kinds = run(&svc, &[fail("a"), fail("a"), fail("a"), fail("a")]);
        assert_eq!(
            kinds,
            vec![vec![], vec![], vec![], vec![F]],
            "failing for more than 2m"
        );
    }

    #[test]
    fn numalerts_caps_alerts_per_episode() {
        let svc = service("      alert mail.alert ops\n      numalerts 2\n");
        let kinds = run(&svc, &[fail("a"), fail("b"), fail("c"), ok(), fail("d")]);
        assert_eq!(kinds, vec![vec![F], vec![F], vec![], vec![], vec![F]]);
    }

    #[test]
    fn exit_ranges_filter_lines_and_periods() {
        let svc = service("      alert exit=2 mail.alert two\n      alert mail.alert any\n");
        let mut state = ServiceState::default();
        let mut out = fail("a");
        out.exit = 3;
        let step = state.record(&svc, &at(0), &Gates::default(), &out);
        assert_eq!(step.alerts.len(), 1);
        assert_eq!(step.alerts[0].alert.name, "mail.alert");
        let svc = service("      alert mail.alert ops\n      alertexitrange 5-9\n");
        assert_eq!(run(&svc, &[fail("a")]), vec![Vec::<AlertKind>::new()]);
    }

    #[test]
    fn gates_suppress_failure_alerts() {
        let svc = service("      alert mail.alert ops\n");
        for (gates, reason) in [
            (
                Gates {
                    scheduler_running: false,
                    ..Gates::default()
                },
                "scheduler stopped",
            ),
            (
                Gates {
                    service_disabled: true,
                    ..Gates::default()
                },
                "disabled",
            ),
            (
                Gates {
                    depend_ok: false,
                    ..Gates::default()
                },
                "dependency failing",
            ),
        ] {
            let mut state = ServiceState::default();
            let step = state.record(&svc, &at(0), &gates, &fail("a"));
            assert!(step.alerts.is_empty());
            assert_eq!(step.suppressed, Some(reason));
            assert_eq!(state.opstatus, OpStatus::Fail, "status still updates");
        }
    }

    #[test]
    fn ack_suppresses_until_success_or_summary_change() {
        let svc = service("      alert mail.alert ops\n");
        let mut state = ServiceState::default();
        let g = Gates::default();
        assert_eq!(
            state.acknowledge(&svc, &at(0), &g, "me: x"),
            Err(AckError::NotFailing)
        );
        assert_eq!(state.record(&svc, &at(0), &g, &fail("a")).alerts.len(), 1);
        state
            .acknowledge(&svc, &at(1), &g, "me: on it")
            .expect("failing service");
        assert!(state.record(&svc, &at(2), &g, &fail("b")).alerts.is_empty());
        state.record(&svc, &at(3), &g, &ok());
        assert!(state.ack.is_none());

        let svc = service("      alert mail.alert ops\n");
        let mut svc = svc;
        svc.unack_summary = true;
        let mut state = ServiceState::default();
        state.record(&svc, &at(0), &g, &fail("a"));
        state
            .acknowledge(&svc, &at(1), &g, "me: on it")
            .expect("failing");
        assert!(state.record(&svc, &at(2), &g, &fail("a")).alerts.is_empty());
        assert_eq!(
            state.record(&svc, &at(3), &g, &fail("a b")).alerts.len(),
            1,
            "summary changed"
        );
    }

    #[test]
    fn upalert_gets_the_last_failing_output_and_a_downtime_record() {
        let svc = service("      alert mail.alert ops\n      upalert mail.alert ops\n");
        let mut state = ServiceState::default();
        let g = Gates::default();
        state.record(&svc, &at(0), &g, &fail("h1"));
        let step = state.record(&svc, &at(5), &g, &ok());
        assert_eq!(step.alerts[0].stdin, "h1\ndetail\n");
        assert_eq!(step.alerts[0].alert.name, "mail.alert");
        let down = step.came_up.expect("recovery");
        assert_eq!(down.time_up - down.first_failure, 300);
        assert_eq!(state.opstatus, OpStatus::Ok);
    }

    #[test]
    fn timeouts_are_failures_with_their_own_status() {
        let svc = service("      alert mail.alert ops\n");
        let mut state = ServiceState::default();
        let mut out = fail("h1 timed out");
        out.exit = 0;
        out.timed_out = true;
        let step = state.record(&svc, &at(0), &Gates::default(), &out);
        assert_eq!(state.opstatus, OpStatus::Timeout);
        assert_eq!(step.alerts.len(), 1);
    }

    #[test]
    fn periods_are_evaluated_independently() {
        let svc = service(
            "      alert mail.alert ops\n    period log: wd {Sun-Sat}\n      alert file.alert x.log\n",
        );
        let kinds = run(&svc, &[fail("a")]);
        assert_eq!(kinds, vec![vec![F, F]]);
        let svc = service(
            "      alert mail.alert ops\n    period night: hr {1am-2am}\n      alert file.alert x.log\n",
        );
        assert_eq!(
            run(&svc, &[fail("a")]),
            vec![vec![F]],
            "noon is outside the night period"
        );
    }

    #[test]
    fn host_hysteresis_needs_rise_and_fall_in_a_row() {
        let mut state = ServiceState::default();
        let r = |ok: bool| {
            vec![HostOutcome {
                host: "h".into(),
                ok,
                reason: None,
            }]
        };
        let mut up_after = Vec::new();
        for ok in [
            true, false, false, true, false, false, false, true, true, false, true, true,
        ] {
            state.update_hosts(2, 3, &r(ok));
            up_after.push(state.hosts["h"].up);
        }
        assert_eq!(
            up_after,
            [
                true, true, true, true, true, true, false, false, true, true, true, true
            ]
        );
        state.update_hosts(1, 1, &[]);
        assert!(
            state.hosts.is_empty(),
            "hosts no longer checked are forgotten"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn outcomes() -> impl Strategy<Value = Vec<(bool, u8)>> {
            proptest::collection::vec((any::<bool>(), 0u8..3), 1..60)
        }

        fn replay(svc: &Service, seq: &[(bool, u8)]) -> Vec<Vec<AlertKind>> {
            let results: Vec<Outcome> = seq
                .iter()
                .map(|(up, s)| if *up { ok() } else { fail(&format!("h{s}")) })
                .collect();
            run(svc, &results)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn never_more_than_numalerts_per_failure_episode(seq in outcomes(), n in 1u32..4) {
                let svc = service(&format!("      alert mail.alert ops\n      numalerts {n}\n"));
                let mut in_episode = 0;
                for (kinds, (up, _)) in replay(&svc, &seq).iter().zip(&seq) {
                    if *up { in_episode = 0; }
                    in_episode += kinds.iter().filter(|k| **k == AlertKind::Failure).count() as u32;
                    prop_assert!(in_episode <= n);
                }
            }

            #[test]
            fn an_upalert_follows_every_alerted_outage(seq in outcomes()) {
                let svc = service("      alert mail.alert ops\n      upalert mail.alert ops\n      alertevery 5m\n      alertafter 2\n");
                let mut alerted = false;
                let mut was_failing = false;
                for (kinds, (up, _)) in replay(&svc, &seq).iter().zip(&seq) {
                    if *up {
                        let upalerted = kinds.contains(&AlertKind::Up);
                        prop_assert_eq!(upalerted, was_failing && alerted);
                        alerted = false;
                        was_failing = false;
                    } else {
                        was_failing = true;
                        alerted |= kinds.contains(&AlertKind::Failure);
                        prop_assert!(!kinds.contains(&AlertKind::Up));
                    }
                }
            }

            #[test]
            fn alertafter_n_needs_n_consecutive_failures(seq in outcomes(), n in 1u32..5) {
                let svc = service(&format!("      alert mail.alert ops\n      alertafter {n}\n"));
                let mut consecutive = 0;
                for (kinds, (up, _)) in replay(&svc, &seq).iter().zip(&seq) {
                    consecutive = if *up { 0 } else { consecutive + 1 };
                    if kinds.contains(&AlertKind::Failure) {
                        prop_assert!(consecutive >= n);
                    }
                }
            }
        }
    }
}
