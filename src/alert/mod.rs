//! Running one alert the way mon does (argv, environment, stdin) and the history line it leaves; never decides whether an alert should run (that is [`crate::service`]).
//!
//! The supervisor turns each [`AlertDecision`] into an [`AlertJob`] (adding
//! what only it knows: the hostgroup members, the time, the service's
//! environment) and hands it to [`crate::run::alert`] in a task of its own,
//! which sends `lua:` alerts to the Lua runtime in `lua/` and every other
//! kind to [`fire`] (this module never imports the Lua runtime). [`fire`] never
//! panics on a bad alert and never leaves a process behind: every way an alert
//! can go wrong comes back as an [`AlertOutcome`] with `ok == false`.
//!
//! Reference: `mon.md` §5 (alert interface) and §11 (history); the exact code
//! followed is mon 1.2's `call_alert` and Debian's `/usr/lib/mon/alert.d/file.alert`.

mod exec;
mod file;

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::model::{Action, LbEdit, MailAction, VrrpNotify};
use crate::lua_settings::LuaSettings;
use crate::service::{AlertDecision, AlertKind, OpStatus, Source};

pub use file::file_record;

/// At most this much of an alert's stdout, and as much of its stderr, is kept.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// One alert to run now, with everything the alert sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertJob {
    pub group: String,
    pub service: String,
    pub decision: AlertDecision,
    /// All non-disabled members of the hostgroup (mon's `-h`, one argv word).
    pub hosts: Vec<String>,
    /// time(2) when the alert is called (mon's `-t`).
    pub time: i64,
    /// The service's `description` (`MON_DESCRIPTION`, file.alert's `DESCR=`).
    pub description: Option<String>,
    /// The service's opstatus now (`MON_OPSTATUS`).
    pub opstatus: OpStatus,
    /// The service's `VAR=value` lines, then the `MON_*` values only the caller
    /// knows (`MON_LAST_SUMMARY`, `MON_LAST_OUTPUT`, `MON_LAST_FAILURE`,
    /// `MON_FIRST_FAILURE`, `MON_LAST_SUCCESS`, `MON_ACK`, `MON_TRAP_INTENDED`,
    /// `MON_STATEDIR`, `MON_LOGDIR`, `MON_CFBASEDIR`).
    pub env: Vec<(String, String)>,
    /// The service's current summary and detail, for built-in actions that
    /// want them. Scripts see only `decision.stdin`, as in mon.
    pub summary: String,
    pub detail: String,
    /// Where `lua:NAME` alerts are found and the limits they run under.
    pub lua: LuaSettings,
}

/// What happened when an alert ran. mon ignores an alert's exit status;
/// keepmon records it and logs a non-zero one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertOutcome {
    /// The alert did its job: a script exited 0, a record was appended.
    pub ok: bool,
    /// A script's exit status; `None` when it did not exit by itself (not
    /// started, killed by a signal or the timeout) or for built-in actions.
    pub exit: Option<i32>,
    /// Empty when `ok`; otherwise what went wrong, with the script's captured
    /// stdout and stderr.
    pub message: String,
    pub duration: Duration,
}

/// mon's alert argv, program first: `PATH -s SERVICE -g GROUP -h "h1 h2" -t TIME [FLAG] args...`.
///
/// FLAG is at most one of `-u -a -D -T -O` ([`AlertKind::flag`]). mon never
/// passes `-l` (mon.md §5.1), so neither does keepmon.
pub fn exec_argv(job: &AlertJob, path: &Path, args: &[String]) -> Vec<String> {
    let mut argv = vec![
        path.display().to_string(),
        "-s".to_string(),
        job.service.clone(),
        "-g".to_string(),
        job.group.clone(),
        "-h".to_string(),
        job.hosts.join(" "),
        "-t".to_string(),
        job.time.to_string(),
    ];
    if let Some(flag) = job.decision.kind.flag(job.decision.source) {
        argv.push(flag.to_string());
    }
    argv.extend(args.iter().cloned());
    argv
}

/// The environment an alert gets on top of the daemon's: `job.env` first, then
/// `MON_GROUP`, `MON_SERVICE`, `MON_RETVAL`, `MON_OPSTATUS` (numeric),
/// `MON_ALERTTYPE` and `MON_DESCRIPTION` (only when the service has one).
///
/// As in mon, these six override a service variable of the same name. Each
/// name appears once.
pub fn alert_env(job: &AlertJob) -> Vec<(String, String)> {
    let mut fixed = vec![
        ("MON_GROUP", job.group.clone()),
        ("MON_SERVICE", job.service.clone()),
        ("MON_RETVAL", job.decision.exit.to_string()),
        ("MON_OPSTATUS", job.opstatus.code().to_string()),
        (
            "MON_ALERTTYPE",
            job.decision
                .kind
                .alert_type(job.decision.source)
                .to_string(),
        ),
    ];
    if let Some(description) = &job.description {
        fixed.push(("MON_DESCRIPTION", description.clone()));
    }
    let mut env: Vec<(String, String)> = Vec::with_capacity(job.env.len() + fixed.len());
    for (key, value) in &job.env {
        if fixed.iter().any(|(name, _)| name == key) {
            continue;
        }
        match env.iter_mut().find(|(name, _)| name == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    env.extend(fixed.into_iter().map(|(k, v)| (k.to_string(), v)));
    env
}

/// The first word of mon's alerthist line (`call_alert`'s `$alerttype`):
/// `alert`, `upalert`, `startupalert`, `ackalert`, `disablealert`,
/// `trapalert`, `traptimeoutalert`.
///
/// mon keeps no history for redistribute calls (nor for `test alert`); this
/// names them `redistribute` for logs, and [`recorded_in_history`] says
/// whether a job belongs in the alerthist at all.
pub fn history_type(kind: AlertKind, source: Source) -> &'static str {
    match (kind, source) {
        (AlertKind::Up, _) => "upalert",
        (AlertKind::Startup, _) => "startupalert",
        (AlertKind::Ack, _) => "ackalert",
        (AlertKind::Disable, _) => "disablealert",
        (AlertKind::Redistribute, _) => "redistribute",
        (AlertKind::Failure, Source::TrapTimeout) => "traptimeoutalert",
        (AlertKind::Failure, Source::Trap) => "trapalert",
        (AlertKind::Failure, Source::Monitor) => "alert",
    }
}

/// mon appends to the alerthist (and `historicfile`) for every alert except
/// redistribute calls.
pub fn recorded_in_history(job: &AlertJob) -> bool {
    job.decision.kind != AlertKind::Redistribute
}

/// mon's alerthist record: `TYPE group service TIME /full/path/alert (args) summary`.
///
/// Scripts are named by their full path, built-in actions by the name the
/// configuration used (`mail.alert`, `file.alert`, a TOML action name), with
/// their arguments written back in the script's own syntax. The summary is
/// the first line of the alert's stdin, `(NO SUMMARY)` when that is blank.
pub fn history_line(job: &AlertJob) -> String {
    let alert = &job.decision.alert;
    let (program, args) = match &alert.action {
        Action::Exec { path, args } => (path.display().to_string(), args.join(" ")),
        Action::File { path } => (alert.name.clone(), path.display().to_string()),
        Action::Mail(mail) => (alert.name.clone(), mail_args(mail)),
        Action::Lua { args, .. } => (alert.name.clone(), args.join(" ")),
        Action::Lb(edit) => (alert.name.clone(), lb_args(edit)),
        Action::Notify(notify) => (notify.path.display().to_string(), notify.args.join(" ")),
        Action::Alertmanager(am) => (alert.name.clone(), am.url.clone()),
    };
    format!(
        "{} {} {} {} {program} ({args}) {}",
        history_type(job.decision.kind, job.decision.source),
        job.group,
        job.service,
        job.time,
        summary_line(&job.decision.stdin),
    )
}

/// mon's summary of an alert's output: the first line, or `(NO SUMMARY)`
/// when it is empty or blank.
pub fn summary_line(output: &str) -> &str {
    let first = output.split('\n').next().unwrap_or_default();
    if first.trim().is_empty() {
        "(NO SUMMARY)"
    } else {
        first
    }
}

/// Run the job's alert once. Never retries; gives up after `timeout`, killing
/// a script's whole process group. A `lua:` alert is refused here:
/// [`crate::run::alert`] runs every kind.
pub async fn fire(job: &AlertJob, timeout: Duration) -> AlertOutcome {
    let started = Instant::now();
    match &job.decision.alert.action {
        Action::Exec { path, args } => exec::run(job, path, args, timeout).await,
        Action::File { path } => file::append(job, path, timeout).await,
        // The supervisor queues mail in the outbox itself (supervisor/mail.rs);
        // a job only reaches here when called outside the daemon.
        Action::Mail(_) => not_built(
            "mail alerts are delivered through the daemon's outbox, not run directly",
            started,
        ),
        // The Lua runtime builds on this module, so it cannot be called from
        // here: `crate::run::alert` sends Lua alerts there before this point.
        Action::Lua { .. } => not_built(
            "lua alerts run through keepmon::run::alert, not alert::fire",
            started,
        ),
        // The supervisor queues these itself (supervisor/alertmanager.rs).
        Action::Alertmanager(_) => not_built(
            "alertmanager alerts are delivered through the daemon's queue, not run directly",
            started,
        ),
        // The supervisor applies table edits itself (supervisor/lb.rs).
        Action::Lb(_) => not_built(
            "load-balancer edits are applied by the daemon's table, not run directly",
            started,
        ),
        Action::Notify(notify) => match notify_argv(&job.env, notify) {
            Some(argv) => {
                exec::run_argv(job, &notify.path, argv, notify.run_as.as_ref(), timeout).await
            }
            // A notify_master script on a transition to BACKUP: keepalived
            // runs nothing, and there is nothing to report.
            None => AlertOutcome {
                ok: true,
                exit: None,
                message: String::new(),
                duration: started.elapsed(),
            },
        },
    }
}

/// keepalived's argv for a notify script on the VRRP transition described
/// by an alert's `VRRP_*` environment: `PATH ARGS... INSTANCE NAME STATE
/// PRIORITY` for `notify` (`GROUP NAME STATE 0` for a sync group's), `PATH ARGS...` for `notify_STATE` when the new
/// state is STATE; None when the script does not run on this transition.
pub fn notify_argv(vars: &[(String, String)], notify: &VrrpNotify) -> Option<Vec<String>> {
    let env = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let state = env("VRRP_STATE");
    let mut argv = vec![notify.path.display().to_string()];
    argv.extend(notify.args.iter().cloned());
    match notify.on.state_name() {
        None => {
            // INSTANCE, or GROUP for a sync group's notify.
            let kind = env("VRRP_TYPE");
            argv.push(if kind.is_empty() {
                "INSTANCE".to_string()
            } else {
                kind
            });
            argv.push(env("VRRP_INSTANCE"));
            argv.push(state);
            argv.push(env("VRRP_PRIORITY"));
            Some(argv)
        }
        Some(wanted) => (wanted == state).then_some(argv),
    }
}

fn not_built(message: &str, started: Instant) -> AlertOutcome {
    AlertOutcome {
        ok: false,
        exit: None,
        message: message.to_string(),
        duration: started.elapsed(),
    }
}

/// mail.alert's own arguments for the same action: `[-S subject] [-f from] to...`.
fn mail_args(mail: &MailAction) -> String {
    let mut words = Vec::new();
    if let Some(subject) = &mail.subject {
        words.push(format!("-S {subject}"));
    }
    if let Some(from) = &mail.from {
        words.push(format!("-f {from}"));
    }
    words.extend(mail.to.iter().cloned());
    words.join(" ")
}

/// lvs.alert's own arguments for the same edit: `-P proto -V vip:port -R rip[:port] [-W w] [-F fwd]`.
fn lb_args(edit: &LbEdit) -> String {
    let real = match (edit.real_addr, edit.real_port) {
        (addr, Some(port)) => std::net::SocketAddr::new(addr, port).to_string(),
        (addr, None) => addr.to_string(),
    };
    let mut args = format!("-P {} -V {} -R {real}", edit.protocol, edit.virtual_addr);
    if let Some(weight) = edit.weight {
        args.push_str(&format!(" -W {weight}"));
    }
    if let Some(forward) = edit.forward {
        args.push_str(&format!(" -F {forward}"));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_first_line_or_no_summary() {
        assert_eq!(summary_line("down\ndetail\n"), "down");
        assert_eq!(summary_line("down"), "down");
        assert_eq!(summary_line(""), "(NO SUMMARY)");
        assert_eq!(summary_line("  \ndetail"), "(NO SUMMARY)");
    }

    #[test]
    fn history_types_follow_call_alert() {
        let check = |kind, source, expected| assert_eq!(history_type(kind, source), expected);
        check(AlertKind::Failure, Source::Monitor, "alert");
        check(AlertKind::Failure, Source::Trap, "trapalert");
        check(AlertKind::Failure, Source::TrapTimeout, "traptimeoutalert");
        check(AlertKind::Up, Source::Trap, "upalert");
        check(AlertKind::Startup, Source::Monitor, "startupalert");
        check(AlertKind::Ack, Source::Monitor, "ackalert");
        check(AlertKind::Disable, Source::Monitor, "disablealert");
    }
}
