//! Runs one monitor or alert of any kind; the only place that knows Lua is one of them.
//!
//! `monitor/` runs the built-in checks and mon.d scripts, `alert/` the
//! alert.d scripts and built-in actions; neither imports [`crate::lua`].
//! The Lua runtime builds on both (it reuses their connectors and result
//! shapes), so the dispatch sits here, above all three: a `Monitor::Lua`
//! run and a `lua:NAME` alert go to [`crate::lua`], every other kind to
//! [`crate::monitor`] or [`crate::alert`]. The supervisor calls only
//! [`monitor`] and [`alert`].
//!
//! Architecture invariant: `monitor/` and `alert/` never import `crate::lua`
//! (`tests/tidy.rs` checks it).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use tokio::time::Instant;

use crate::alert::{AlertJob, AlertOutcome};
use crate::config::model::{Action, Monitor};
use crate::lua::ScriptContext;
use crate::monitor::{RunOutput, RunRequest};

/// Run one monitor of any kind over `request.hosts`, bounded by
/// `request.timeout`, publishing a mon.d script's process id in `pid` while
/// it runs (mon's `list pids`). Never fails: every outcome, including "could
/// not run", is a [`RunOutput`].
pub async fn monitor(request: &RunRequest, pid: &AtomicU32) -> RunOutput {
    let Monitor::Lua { script, args } = &request.monitor else {
        return crate::monitor::run_tracked(request, pid).await;
    };
    let started = Instant::now();
    let lookup = |name: &str| {
        request
            .env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let context = ScriptContext {
        group: lookup("MON_GROUP"),
        service: lookup("MON_SERVICE"),
        env: request.env.clone(),
        args: args.clone(),
    };
    crate::lua::monitor::run(
        script,
        &context,
        request.hosts.clone(),
        &request.lua,
        request.timeout,
        started,
    )
    .await
}

/// Run the job's alert of any kind once. Never retries; gives up after
/// `timeout`, killing a script's whole process group.
pub async fn alert(job: &AlertJob, timeout: Duration) -> AlertOutcome {
    match &job.decision.alert.action {
        Action::Lua { script, args } => {
            crate::lua::alert::fire(job, script, args, &job.lua, timeout).await
        }
        _ => crate::alert::fire(job, timeout).await,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::model::{AlertLine, BuiltinPolicy, MailAction};
    use crate::lua_settings::LuaSettings;
    use crate::monitor::EXIT_NOT_FOUND;
    use crate::service::{AlertDecision, AlertKind, OpStatus, Source};

    const MISSING: &str = "keepmon-test-no-such-script";

    fn request(monitor: Monitor) -> RunRequest {
        RunRequest {
            hosts: vec!["127.0.0.1".into()],
            monitor,
            timeout: Duration::from_secs(5),
            env: vec![("MON_GROUP".into(), "g".into())],
            builtin_policy: BuiltinPolicy::Never,
            lua: LuaSettings {
                luadir: vec![PathBuf::from("/nonexistent/keepmon-test")],
                ..LuaSettings::default()
            },
            run_as: None,
        }
    }

    fn job(action: Action) -> AlertJob {
        AlertJob {
            group: "g".into(),
            service: "s".into(),
            decision: AlertDecision {
                period: "p".into(),
                kind: AlertKind::Failure,
                source: Source::Monitor,
                alert: AlertLine {
                    name: "a".into(),
                    exit: None,
                    action,
                },
                exit: 1,
                stdin: String::new(),
                counts: true,
            },
            hosts: Vec::new(),
            time: 0,
            description: None,
            opstatus: OpStatus::Fail,
            env: Vec::new(),
            summary: String::new(),
            detail: String::new(),
            lua: LuaSettings::default(),
        }
    }

    #[tokio::test]
    async fn a_lua_monitor_goes_to_the_lua_runtime_and_the_others_to_monitor() {
        let pid = AtomicU32::new(0);
        let lua = request(Monitor::Lua {
            script: MISSING.into(),
            args: Vec::new(),
        });
        let out = monitor(&lua, &pid).await;
        assert_eq!(out.exit, EXIT_NOT_FOUND, "{out:?}");
        assert!(
            out.summary.starts_with(&format!(
                "lua monitor {MISSING}: lua script {MISSING} not found"
            )),
            "{out:?}"
        );
        // monitor/ alone does not know the Lua runtime.
        let direct = crate::monitor::run(&lua).await;
        assert!(direct.config_error, "{direct:?}");
        assert!(
            direct.summary.contains("run through keepmon::run::monitor"),
            "{direct:?}"
        );

        let exec = request(Monitor::Exec {
            name: MISSING.into(),
            args: Vec::new(),
            append_hosts: true,
            path: None,
        });
        let out = monitor(&exec, &pid).await;
        assert_eq!(out.summary, format!("monitor {MISSING} not found"));
        assert_eq!(
            out,
            RunOutput {
                duration: out.duration,
                ..crate::monitor::run(&exec).await
            }
        );
    }

    #[tokio::test]
    async fn a_lua_alert_goes_to_the_lua_runtime_and_the_others_to_alert() {
        let lua = job(Action::Lua {
            script: MISSING.into(),
            args: Vec::new(),
        });
        let outcome = alert(&lua, Duration::from_secs(5)).await;
        assert!(!outcome.ok);
        assert!(
            outcome.message.starts_with(&format!(
                "lua alert {MISSING}: lua script {MISSING} not found"
            )),
            "{outcome:?}"
        );
        let direct = crate::alert::fire(&lua, Duration::from_secs(5)).await;
        assert!(
            direct.message.contains("run through keepmon::run::alert"),
            "{direct:?}"
        );

        let mail = job(Action::Mail(MailAction {
            to: vec!["ops@example.com".into()],
            subject: None,
            from: None,
        }));
        let outcome = alert(&mail, Duration::from_secs(5)).await;
        assert!(!outcome.ok);
        assert_eq!(
            outcome.message,
            "mail alerts are delivered through the daemon's outbox, not run directly"
        );
    }
}
