//! Route announcements through BIRD 2 or FRR: the include file keepmon owns (pure rendering; FRR's statements in [`frr`]) and the task that brings the routing daemon to the wanted routes — BIRD: write the file atomically and `birdc configure`; FRR: one `vtysh` call with the difference — retrying with backoff while the daemon is down or refuses; keepmon never speaks BGP itself.
//!
//! The operator's bird.conf includes the file and exports its two static
//! protocols into BGP, e.g.
//!
//! ```text
//! include "/etc/bird/keepmon.conf";
//! protocol bgp uplink { local as 65001; neighbor 192.0.2.1 as 65000;
//!     ipv4 { import none; export where proto = "keepmon4"; }; }
//! ```
//!
//! The routes are `blackhole` in BIRD's own table: they exist to be
//! announced, not to forward (the director answers for the VIP itself).

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::model::{BgpSettings, RouteDaemon};

pub mod frr;

/// How often `keepmon exabgp-api` asks the daemon what to announce.
pub const EXABGP_POLL: Duration = Duration::from_millis(200);

/// The ExaBGP API lines that take an API process from announcing `before`
/// to announcing `after` (text encoder; `next-hop self`).
pub fn exabgp_lines(before: &[String], after: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = before
        .iter()
        .filter(|p| !after.contains(p))
        .map(|p| format!("withdraw route {p} next-hop self"))
        .collect();
    lines.extend(
        after
            .iter()
            .filter(|p| !before.contains(p))
            .map(|p| format!("announce route {p} next-hop self")),
    );
    lines
}

/// How long `birdc configure` may take.
const BIRDC_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between retries of a refused or unreachable BIRD.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// FRR keeps keepmon's statements only in its running config (a restart
/// of FRR drops them): read it back this often and restore what is missing.
const FRR_RESYNC: Duration = Duration::from_secs(10);

/// One announced route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub prefix: IpAddr,
    pub len: u8,
}

/// The include file for `routes` (sorted, so equal sets give equal text).
pub fn bird_include(routes: &[Route]) -> String {
    let mut v4: Vec<&Route> = routes.iter().filter(|r| r.prefix.is_ipv4()).collect();
    let mut v6: Vec<&Route> = routes.iter().filter(|r| r.prefix.is_ipv6()).collect();
    v4.sort();
    v6.sort();
    let mut text = String::from(
        "# Written by keepmon: the routes it announces now. keepmon rewrites this\n\
         # file on every change; export protocols keepmon4/keepmon6 into BGP.\n",
    );
    for (name, family, list) in [("keepmon4", "ipv4", v4), ("keepmon6", "ipv6", v6)] {
        text.push_str(&format!("protocol static {name} {{\n  {family};\n"));
        for route in list {
            text.push_str(&format!(
                "  route {}/{} blackhole;\n",
                route.prefix, route.len
            ));
        }
        text.push_str("}\n");
    }
    text
}

/// What the routing daemon holds, as far as keepmon knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The routes BIRD accepted last (None: nothing applied yet).
    pub routes: Option<Vec<Route>>,
    /// The last attempt's error, cleared by a success.
    pub error: Option<String>,
}

/// The task that brings BIRD to the newest wanted set of routes.
pub struct BirdWorker {
    wanted: watch::Sender<(Vec<Route>, BgpSettings)>,
    applied: watch::Receiver<Applied>,
}

impl BirdWorker {
    /// Start the task (inside a tokio runtime) with nothing wanted yet.
    pub fn start(settings: BgpSettings) -> BirdWorker {
        let (wanted, mut wanted_rx) = watch::channel((Vec::new(), settings));
        let (applied_tx, applied) = watch::channel(Applied::default());
        wanted_rx.mark_changed();
        tokio::spawn(async move {
            let mut retry: Option<Duration> = None;
            loop {
                let resync = (wanted_rx.borrow().1.via == RouteDaemon::Frr).then_some(FRR_RESYNC);
                match retry.or(resync) {
                    None => {
                        if wanted_rx.changed().await.is_err() {
                            break;
                        }
                    }
                    Some(wait) => tokio::select! {
                        changed = wanted_rx.changed() => if changed.is_err() { break },
                        _ = tokio::time::sleep(wait) => {}
                    },
                }
                let (mut routes, settings) = wanted_rx.borrow_and_update().clone();
                routes.sort();
                routes.dedup();
                let result = match settings.via {
                    RouteDaemon::Frr => apply_frr(&routes, &settings).await,
                    _ => apply(&routes, &settings).await,
                };
                match result {
                    Ok(()) => {
                        retry = None;
                        let applied = Applied {
                            routes: Some(routes),
                            error: None,
                        };
                        applied_tx.send_if_modified(|a| {
                            let changed = *a != applied;
                            *a = applied;
                            changed
                        });
                    }
                    Err(e) => {
                        if applied_tx.borrow().error.as_deref() != Some(&e) {
                            tracing::error!(error = %e, via = ?settings.via, "route announcements not applied; retrying");
                        }
                        applied_tx.send_modify(|a| a.error = Some(e));
                        retry =
                            Some(retry.map_or(Duration::from_secs(1), |w| (w * 2).min(RETRY_MAX)));
                    }
                }
            }
        });
        BirdWorker { wanted, applied }
    }

    /// Hand over the newest wanted routes and settings; returns at once.
    pub fn want(&self, routes: Vec<Route>, settings: &BgpSettings) {
        self.wanted.send_if_modified(|current| {
            let changed = current.0 != routes || current.1 != *settings;
            *current = (routes, settings.clone());
            changed
        });
    }

    pub fn applied(&self) -> Applied {
        self.applied.borrow().clone()
    }

    /// Wait until BIRD holds exactly `routes` (or `limit` passes).
    pub async fn wait_applied(&mut self, routes: &[Route], limit: Duration) -> bool {
        let mut sorted = routes.to_vec();
        sorted.sort();
        sorted.dedup();
        let reached = self
            .applied
            .wait_for(|a| a.routes.as_deref() == Some(&sorted[..]));
        matches!(tokio::time::timeout(limit, reached).await, Ok(Ok(_)))
    }
}

/// Write the include file atomically, then `birdc configure`.
async fn apply(routes: &[Route], settings: &BgpSettings) -> Result<(), String> {
    let text = bird_include(routes);
    let path = settings.bird_include.clone();
    tokio::task::spawn_blocking(move || write_include(&path, &text))
        .await
        .map_err(|e| format!("writing the include file: {e}"))??;
    let mut command = tokio::process::Command::new(&settings.birdc);
    if let Some(socket) = &settings.bird_socket {
        command.arg("-s").arg(socket);
    }
    let child = command
        .arg("configure")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {} (install bird2): {e}",
                settings.birdc.display()
            )
        })?;
    let out = tokio::time::timeout(BIRDC_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("birdc did not answer within {}s", BIRDC_TIMEOUT.as_secs()))?
        .map_err(|e| format!("birdc: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("Reconfigur") {
        Ok(())
    } else {
        let said = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        Err(format!(
            "birdc configure failed ({}): {}",
            out.status,
            said.trim().replace('\n', " / ")
        ))
    }
}

/// Bring FRR's keepmon statements to `routes`: read the running config,
/// send the difference in one vtysh call, read it back.
async fn apply_frr(routes: &[Route], settings: &BgpSettings) -> Result<(), String> {
    let map = &settings.frr_route_map;
    let running = frr::parse_running(
        &vtysh(settings, &["show running-config".to_string()]).await?,
        map,
    );
    let asn = running.asn.ok_or_else(|| {
        "FRR's running config has no `router bgp ASN` (configure bgpd first)".to_string()
    })?;
    let commands = frr::commands(asn, &running.routes, routes, map);
    if commands.is_empty() {
        return Ok(());
    }
    vtysh(settings, &commands).await?;
    let after = frr::parse_running(
        &vtysh(settings, &["show running-config".to_string()]).await?,
        map,
    );
    if after.routes == routes {
        Ok(())
    } else {
        Err(format!(
            "FRR holds {} keepmon network statement(s) after the change, {} wanted",
            after.routes.len(),
            routes.len()
        ))
    }
}

/// One vtysh run with `commands` as `-c` arguments; its stdout.
async fn vtysh(settings: &BgpSettings, commands: &[String]) -> Result<String, String> {
    let mut command = tokio::process::Command::new(&settings.vtysh);
    if let Some(pathspace) = &settings.frr_pathspace {
        command.arg("-N").arg(pathspace);
    }
    for c in commands {
        command.arg("-c").arg(c);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {} (install frr): {e}", settings.vtysh.display()))?;
    let out = tokio::time::timeout(BIRDC_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("vtysh did not answer within {}s", BIRDC_TIMEOUT.as_secs()))?
        .map_err(|e| format!("vtysh: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    // vtysh complains about a missing vtysh.conf on every run; not news.
    let said: Vec<String> = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))
        .lines()
        .filter(|l| !l.contains("vtysh.conf") && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    Err(format!(
        "vtysh {} failed ({}): {}",
        commands.last().map(String::as_str).unwrap_or(""),
        out.status,
        said.join(" / ")
    ))
}

fn write_include(path: &Path, text: &str) -> Result<(), String> {
    crate::state::write_atomic(path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> Route {
        let (addr, len) = text.split_once('/').expect("a prefix");
        Route {
            prefix: addr.parse().expect("address"),
            len: len.parse().expect("length"),
        }
    }

    #[test]
    fn exabgp_lines_are_the_difference() {
        let before = vec!["192.0.2.1/32".to_string(), "192.0.2.2/32".to_string()];
        let after = vec!["192.0.2.2/32".to_string(), "2001:db8::1/128".to_string()];
        assert_eq!(
            exabgp_lines(&before, &after),
            [
                "withdraw route 192.0.2.1/32 next-hop self",
                "announce route 2001:db8::1/128 next-hop self"
            ]
        );
        assert!(exabgp_lines(&after, &after).is_empty());
    }

    #[test]
    fn include_file_lists_each_family_sorted() {
        let text = bird_include(&[
            route("192.0.2.20/32"),
            route("2001:db8::1/128"),
            route("192.0.2.10/32"),
        ]);
        assert!(text.contains(
            "protocol static keepmon4 {\n  ipv4;\n  route 192.0.2.10/32 blackhole;\n  route 192.0.2.20/32 blackhole;\n}\n"
        ));
        assert!(text.contains(
            "protocol static keepmon6 {\n  ipv6;\n  route 2001:db8::1/128 blackhole;\n}\n"
        ));
        assert_eq!(
            bird_include(&[]).matches("protocol static").count(),
            2,
            "both protocols exist even when empty, so the operator's filters always resolve"
        );
    }
}
