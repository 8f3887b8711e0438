//! The in-process runner: checks every host concurrently (one task each, at most 256 of a run and 1,024 of the daemon checking at once), enforces the run's hard timeout, and writes mon-style summary and detail; never spawns processes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;

use super::{
    Builtin, BuiltinCheck, BuiltinOptions, EXIT_CANNOT_RUN, HostResult, HostStatus, RunOutput, dns,
    http, ping, smtp, tcp, udp,
};

/// Hosts of one run checked at the same time.
pub const MAX_CONCURRENT_HOSTS: usize = 256;

/// At most this many built-in host checks are in flight in the whole
/// daemon (each holds a socket and buffers). When every service's first
/// run falls in the same second (10,000 hosts), this bounds the sockets
/// and memory of that burst; a loopback or LAN check takes well under a
/// millisecond, so the bound costs no lag.
pub const MAX_CHECKS_IN_FLIGHT: usize = 1024;

static IN_FLIGHT: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(MAX_CHECKS_IN_FLIGHT)));

/// Run `builtin` over `hosts`; hosts not finished by `started + timeout`
/// are reported as [`HostStatus::Timeout`] and the run as timed out.
pub(crate) async fn run(
    builtin: &Builtin,
    hosts: Vec<String>,
    timeout: Duration,
    started: Instant,
) -> RunOutput {
    let deadline = started + timeout;
    let prepared = match Prepared::new(&builtin.check, &builtin.options) {
        Ok(prepared) => prepared,
        Err(reason) => {
            return RunOutput::config_error(
                EXIT_CANNOT_RUN,
                format!("{} monitor: {reason}", kind(&builtin.check)),
                started,
            );
        }
    };

    let mut results: Vec<Option<HostResult>> = vec![None; hosts.len()];
    let mut tasks = JoinSet::new();
    let mut task_index = HashMap::new();
    // At most this many hosts of one run are checked at once (each holds
    // a socket and buffers); the others wait their turn within the run's
    // timeout.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HOSTS));
    for (index, host) in hosts.iter().enumerate() {
        let prepared = prepared.clone();
        let host = host.clone();
        let slots = slots.clone();
        let handle = tasks.spawn(async move {
            // The semaphores are never closed, so acquiring only waits.
            let _slot = slots.acquire_owned().await.ok();
            let _daemon_slot = IN_FLIGHT.clone().acquire_owned().await.ok();
            (index, prepared.check(index, host).await)
        });
        task_index.insert(handle.id(), index);
    }

    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
            Ok(None) => break,
            Ok(Some(Ok((_, (index, result))))) => results[index] = Some(result),
            Ok(Some(Err(error))) => {
                // A panicking check is a failed host, never a failed daemon.
                if let Some(&index) = task_index.get(&error.id()) {
                    warn!(host = %hosts[index], %error, "host check panicked");
                    results[index] = Some(HostResult {
                        host: hosts[index].clone(),
                        status: HostStatus::Fail {
                            reason: format!("check failed: {error}"),
                        },
                        latency: None,
                    });
                }
            }
            Err(_) => {
                timed_out = true;
                tasks.abort_all();
                break;
            }
        }
    }

    let results: Vec<HostResult> = results
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
    let mut output = summarize(results, &builtin.options);
    output.timed_out = timed_out;
    output.duration = started.elapsed();
    output
}

/// mon's shape for per-host results: summary = the failing hosts sorted and
/// space-separated (empty when all pass), exit 0 when all pass else 1, detail
/// = one line per host in the order given. Applies `fping.monitor`'s `-s`
/// and `-a`.
pub(crate) fn summarize(mut results: Vec<HostResult>, options: &BuiltinOptions) -> RunOutput {
    // `-a` counts only unreachable hosts, as fping.monitor does: decide it
    // before slow hosts are turned into failures.
    let all_unreachable = results.iter().all(|r| !r.is_ok());
    if let Some(slow) = options.slow {
        for result in &mut results {
            if let (HostStatus::Ok, Some(latency)) = (&result.status, result.latency)
                && latency > slow
            {
                result.status = HostStatus::Fail {
                    reason: format!(
                        "slow reply ({} > {} ms)",
                        show_millis(latency),
                        slow.as_millis()
                    ),
                };
            }
        }
    }
    let mut failing: Vec<&str> = results
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| r.host.as_str())
        .collect();
    failing.sort_unstable();
    let summary = failing.join(" ");
    let failed = if options.fail_only_if_all_fail {
        !results.is_empty() && all_unreachable
    } else {
        !failing.is_empty()
    };
    let detail: String = results.iter().map(detail_line).collect();
    RunOutput {
        exit: i32::from(failed),
        summary,
        detail,
        hosts: results,
        timed_out: false,
        duration: Duration::ZERO,
        config_error: false,
    }
}

fn detail_line(result: &HostResult) -> String {
    let latency = result
        .latency
        .map(|l| format!(" in {}", show_millis(l)))
        .unwrap_or_default();
    match &result.status {
        HostStatus::Ok => format!("{}: ok{latency}\n", result.host),
        HostStatus::Fail { reason } => format!("{}: fail: {reason}{latency}\n", result.host),
        HostStatus::Timeout => format!("{}: timeout\n", result.host),
    }
}

fn show_millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn kind(check: &BuiltinCheck) -> &'static str {
    match check {
        BuiltinCheck::Tcp(_) => "tcp",
        BuiltinCheck::Http(c) if c.tls => "https",
        BuiltinCheck::Http(_) => "http",
        BuiltinCheck::Ping(_) => "ping",
        BuiltinCheck::Smtp(_) => "smtp",
        BuiltinCheck::Udp(_) => "udp",
        BuiltinCheck::Dns(_) => "dns",
    }
}

/// A check with its regexes compiled and shared state (ICMP sockets, TLS
/// config) ready, shared by all host tasks of one run.
#[derive(Clone)]
enum Prepared {
    Tcp(Arc<tcp::Prepared>),
    Http(Arc<http::Prepared>),
    Ping(Arc<ping::Prepared>),
    Smtp(Arc<smtp::Prepared>),
    Udp(Arc<udp::Prepared>),
    Dns(Arc<dns::Prepared>),
}

impl Prepared {
    fn new(check: &BuiltinCheck, options: &BuiltinOptions) -> Result<Prepared, String> {
        Ok(match check {
            BuiltinCheck::Tcp(c) => Prepared::Tcp(Arc::new(tcp::Prepared::new(c)?)),
            BuiltinCheck::Http(c) => Prepared::Http(Arc::new(http::Prepared::new(c, options)?)),
            BuiltinCheck::Ping(c) => Prepared::Ping(Arc::new(ping::Prepared::new(c, options))),
            BuiltinCheck::Smtp(c) => Prepared::Smtp(Arc::new(smtp::Prepared::new(c))),
            BuiltinCheck::Udp(c) => Prepared::Udp(Arc::new(udp::Prepared::new(c))),
            BuiltinCheck::Dns(c) => Prepared::Dns(Arc::new(dns::Prepared::new(c)?)),
        })
    }

    async fn check(&self, index: usize, host: String) -> HostResult {
        let (status, latency) = match self {
            Prepared::Tcp(p) => p.check(&host).await,
            Prepared::Http(p) => p.check(&host).await,
            Prepared::Ping(p) => p.check(index, &host).await,
            Prepared::Smtp(p) => p.check(&host).await,
            Prepared::Udp(p) => p.check(&host).await,
            Prepared::Dns(p) => p.check(&host).await,
        };
        HostResult {
            host,
            status,
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, status: HostStatus, latency_ms: Option<u64>) -> HostResult {
        HostResult {
            host: name.to_string(),
            status,
            latency: latency_ms.map(Duration::from_millis),
        }
    }

    fn fail(reason: &str) -> HostStatus {
        HostStatus::Fail {
            reason: reason.to_string(),
        }
    }

    fn check(results: Vec<HostResult>, options: BuiltinOptions, exit: i32, summary: &str) {
        let out = summarize(results, &options);
        assert_eq!((out.exit, out.summary.as_str()), (exit, summary), "{out:?}");
    }

    #[test]
    fn summary_lists_failing_hosts_sorted() {
        let results = vec![
            host("web2", fail("connect: refused"), None),
            host("web1", HostStatus::Ok, Some(1)),
            host("db", HostStatus::Timeout, None),
        ];
        let out = summarize(results, &BuiltinOptions::default());
        assert_eq!(out.exit, 1);
        assert_eq!(out.summary, "db web2");
        assert_eq!(
            out.detail,
            "web2: fail: connect: refused\nweb1: ok in 1.00 ms\ndb: timeout\n"
        );
    }

    #[test]
    fn all_pass_is_exit_zero_with_empty_summary() {
        check(
            vec![host("a", HostStatus::Ok, Some(3))],
            BuiltinOptions::default(),
            0,
            "",
        );
        check(Vec::new(), BuiltinOptions::default(), 0, "");
    }

    #[test]
    fn fail_only_if_all_fail() {
        let options = BuiltinOptions {
            fail_only_if_all_fail: true,
            ..BuiltinOptions::default()
        };
        check(
            vec![
                host("a", fail("x"), None),
                host("b", HostStatus::Ok, Some(1)),
            ],
            options.clone(),
            0,
            "a",
        );
        check(
            vec![
                host("a", fail("x"), None),
                host("b", HostStatus::Timeout, None),
            ],
            options.clone(),
            1,
            "a b",
        );
        check(Vec::new(), options, 0, "");
    }

    #[test]
    fn slow_hosts_fail_but_do_not_count_as_unreachable_for_all() {
        let slow = BuiltinOptions {
            slow: Some(Duration::from_millis(100)),
            ..BuiltinOptions::default()
        };
        check(
            vec![
                host("a", HostStatus::Ok, Some(150)),
                host("b", HostStatus::Ok, Some(50)),
            ],
            slow.clone(),
            1,
            "a",
        );
        let slow_all = BuiltinOptions {
            fail_only_if_all_fail: true,
            ..slow
        };
        check(
            vec![
                host("a", HostStatus::Ok, Some(150)),
                host("b", fail("x"), None),
            ],
            slow_all,
            0,
            "a b",
        );
    }
}
