//! A `lua:NAME` monitor run: the script's `check(host)` as one coroutine per host in one sandbox, results in the built-in monitors' shape; a script fault fails the hosts with `NAME.lua:LINE: reason`, never the daemon.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use mlua::{MultiValue, Value};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{LuaSettings, Sandbox, ScriptContext, ScriptError, compile, find_script};
use crate::monitor::builtin::summarize;
use crate::monitor::{
    BuiltinOptions, EXIT_CANNOT_RUN, EXIT_NOT_FOUND, HostResult, HostStatus, RunOutput,
};

/// One run of monitor `script` over `hosts`, bounded by the smaller of
/// `timeout` and the configured Lua timeout (counted from `started`).
pub async fn run(
    script: &str,
    context: &ScriptContext,
    hosts: Vec<String>,
    settings: &LuaSettings,
    timeout: Duration,
    started: Instant,
) -> RunOutput {
    let compiled = match find_script(&settings.luadir, script).and_then(|p| compile(&p)) {
        Ok(compiled) => compiled,
        Err(error) => {
            let exit = match error {
                ScriptError::NotFound { .. } => EXIT_NOT_FOUND,
                _ => EXIT_CANNOT_RUN,
            };
            warn!(script, %error, "lua monitor cannot run");
            return RunOutput {
                exit,
                summary: format!("lua monitor {script}: {error}"),
                detail: String::new(),
                hosts: Vec::new(),
                timed_out: false,
                duration: started.elapsed(),
                config_error: true,
            };
        }
    };
    let deadline = started + timeout.min(settings.limits.timeout);
    let sandbox = match Sandbox::new(&compiled, context, &settings.limits, deadline) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            let reason = format!("{}: cannot start: {e}", compiled.file_name);
            return all_failed(hosts, &reason, false, started);
        }
    };
    let listed = sandbox
        .lua
        .create_sequence_from(hosts.iter().cloned())
        .and_then(|list| sandbox.env.set("hosts", list));
    if let Err(e) = listed {
        let reason = format!("{}: cannot start: {e}", compiled.file_name);
        return all_failed(hosts, &reason, false, started);
    }
    let check = match tokio::time::timeout_at(deadline, sandbox.run_main()).await {
        Err(_) => {
            sandbox.spoil();
            let reason = format!("{}: timed out in the main chunk", compiled.file_name);
            return all_failed(hosts, &reason, true, started);
        }
        Ok(Err(e)) => return all_failed(hosts, &sandbox.describe(&e), false, started),
        Ok(Ok(())) => match sandbox.function("check") {
            Ok(check) => check,
            Err(reason) => return all_failed(hosts, &reason, false, started),
        },
    };
    let check_line = check.info().line_defined.unwrap_or(0);

    let mut results: Vec<Option<HostResult>> = vec![None; hosts.len()];
    let mut running = FuturesUnordered::new();
    for (index, host) in hosts.iter().enumerate() {
        let call = check.call_async::<MultiValue>(host.as_str());
        running.push(async move {
            let begun = Instant::now();
            (index, call.await, begun.elapsed())
        });
    }
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, running.next()).await {
            Ok(None) => break,
            Ok(Some((index, outcome, took))) => {
                let status = match outcome {
                    Ok(values) => status_of(values, &compiled.file_name, check_line),
                    Err(e) => {
                        let reason = sandbox.describe(&e);
                        debug!(script, host = %hosts[index], %reason, "lua check raised an error");
                        HostStatus::Fail { reason }
                    }
                };
                let latency = matches!(status, HostStatus::Ok).then_some(took);
                results[index] = Some(HostResult {
                    host: hosts[index].clone(),
                    status,
                    latency,
                });
            }
            Err(_) => {
                timed_out = true;
                sandbox.spoil();
                break;
            }
        }
    }
    drop(running);
    let results = results
        .into_iter()
        .zip(hosts)
        .map(|(result, host)| {
            result.unwrap_or(HostResult {
                host,
                status: HostStatus::Timeout,
                latency: None,
            })
        })
        .collect();
    let mut output = summarize(results, &BuiltinOptions::default());
    output.timed_out = timed_out;
    output.duration = started.elapsed();
    output
}

/// `true` → ok; `false`/`nil` and a reason → failed; anything else is a
/// script bug, reported at the line where `check` is defined.
fn status_of(values: MultiValue, file_name: &str, check_line: usize) -> HostStatus {
    let mut values = values.into_iter();
    let first = values.next().unwrap_or(Value::Nil);
    let second = values.next().unwrap_or(Value::Nil);
    let reason = match &second {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Nil => None,
        other => other.to_string().ok(),
    };
    match (first, reason) {
        (Value::Boolean(true), _) => HostStatus::Ok,
        (Value::Boolean(false) | Value::Nil, Some(reason)) => HostStatus::Fail { reason },
        (Value::Boolean(false), None) => HostStatus::Fail {
            reason: "check returned false".to_string(),
        },
        (other, _) => HostStatus::Fail {
            reason: format!(
                "{file_name}:{check_line}: check() returned {}; expected true, or false and a reason",
                describe_value(&other)
            ),
        },
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Nil => "nothing".to_string(),
        Value::String(s) => format!("the string {:?}", s.to_string_lossy()),
        Value::Integer(i) => format!("the number {i}"),
        Value::Number(n) => format!("the number {n}"),
        other => format!("a {}", other.type_name()),
    }
}

/// Every host failed for one reason (the script could not get as far as
/// checking them).
fn all_failed(hosts: Vec<String>, reason: &str, timed_out: bool, started: Instant) -> RunOutput {
    warn!(%reason, "lua monitor failed");
    let results = hosts
        .into_iter()
        .map(|host| HostResult {
            host,
            status: HostStatus::Fail {
                reason: reason.to_string(),
            },
            latency: None,
        })
        .collect();
    let mut output = summarize(results, &BuiltinOptions::default());
    if output.hosts.is_empty() {
        output.exit = 1;
        output.summary = reason.to_string();
    }
    output.timed_out = timed_out;
    output.duration = started.elapsed();
    output
}
