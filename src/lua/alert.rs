//! A `lua:NAME` alert: the script's `alert(event)` run once in a sandboxed state of its own (pooled, with a fresh environment per run); an error, a `false, reason` return or garbage is a failed alert naming the script and line.

use std::time::Duration;

use mlua::{MultiValue, Value};
use tokio::time::Instant;

use super::{LuaSettings, Sandbox, ScriptContext, compile, find_script};
use crate::alert::{AlertJob, AlertOutcome};

/// Run alert `script` for `job`, bounded by the smaller of `timeout` and the
/// configured Lua timeout.
pub async fn fire(
    job: &AlertJob,
    script: &str,
    args: &[String],
    settings: &LuaSettings,
    timeout: Duration,
) -> AlertOutcome {
    let started = Instant::now();
    let outcome = |ok: bool, message: String| AlertOutcome {
        ok,
        exit: None,
        message,
        duration: started.elapsed(),
    };
    let compiled = match find_script(&settings.luadir, script).and_then(|p| compile(&p)) {
        Ok(compiled) => compiled,
        Err(error) => return outcome(false, format!("lua alert {script}: {error}")),
    };
    let context = ScriptContext {
        group: job.group.clone(),
        service: job.service.clone(),
        env: crate::alert::alert_env(job),
        args: args.to_vec(),
    };
    let deadline = started + timeout.min(settings.limits.timeout);
    let sandbox = match Sandbox::new(&compiled, &context, &settings.limits, deadline) {
        Ok(sandbox) => sandbox,
        Err(e) => return outcome(false, format!("{}: cannot start: {e}", compiled.file_name)),
    };
    let run = async {
        sandbox.run_main().await?;
        let alert = sandbox.function("alert").map_err(mlua::Error::runtime)?;
        let line = alert.info().line_defined.unwrap_or(0);
        let event = event_table(&sandbox.lua, job, args)?;
        let values = alert.call_async::<MultiValue>(event).await?;
        Ok::<_, mlua::Error>((values, line))
    };
    match tokio::time::timeout_at(deadline, run).await {
        Err(_) => {
            sandbox.spoil();
            outcome(false, format!("{}: timed out", compiled.file_name))
        }
        Ok(Err(e)) => outcome(false, sandbox.describe(&e)),
        Ok(Ok((values, line))) => {
            let mut values = values.into_iter();
            let first = values.next().unwrap_or(Value::Nil);
            let reason = match values.next() {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => "alert returned false".to_string(),
            };
            match first {
                Value::Nil | Value::Boolean(true) => outcome(true, String::new()),
                Value::Boolean(false) => {
                    outcome(false, format!("{}: {reason}", compiled.file_name))
                }
                other => outcome(
                    false,
                    format!(
                        "{}:{line}: alert() returned a {}; expected nothing, true, or false and a reason",
                        compiled.file_name,
                        other.type_name()
                    ),
                ),
            }
        }
    }
}

/// What `alert(event)` receives.
fn event_table(lua: &mlua::Lua, job: &AlertJob, args: &[String]) -> mlua::Result<mlua::Table> {
    let decision = &job.decision;
    let event = lua.create_table()?;
    event.set("kind", decision.kind.alert_type(decision.source))?;
    event.set("group", job.group.as_str())?;
    event.set("service", job.service.as_str())?;
    event.set(
        "hosts",
        lua.create_sequence_from(job.hosts.iter().cloned())?,
    )?;
    event.set("summary", job.summary.as_str())?;
    event.set("detail", job.detail.as_str())?;
    event.set("output", decision.stdin.as_str())?;
    event.set("time", job.time)?;
    event.set("exit", decision.exit)?;
    event.set("opstatus", job.opstatus.name())?;
    event.set("alert", decision.alert.name.as_str())?;
    if let Some(description) = &job.description {
        event.set("description", description.as_str())?;
    }
    event.set("args", lua.create_sequence_from(args.iter().cloned())?)?;
    // A VRRP notify (supervisor/vrrp.rs) carries its transition in VRRP_*
    // variables: the event says so with kind "vrrp" and an `event.vrrp` table.
    let vrrp: Vec<(String, &str)> = job
        .env
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("VRRP_")
                .map(|name| (name.to_ascii_lowercase(), v.as_str()))
        })
        .collect();
    if vrrp.iter().any(|(k, _)| k == "state") {
        event.set("kind", "vrrp")?;
        let table = lua.create_table()?;
        for (name, value) in vrrp {
            table.set(name, value)?;
        }
        event.set("vrrp", table)?;
    }
    Ok(event)
}
