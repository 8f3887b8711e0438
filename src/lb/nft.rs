//! The nftables data plane: each virtual service is a DNAT rule in table `inet keepmon`, spread by `numgen inc` (weighted) or `jhash ip saddr` (sh) over a map of real servers; the whole table is replaced in one `nft -j -f -` transaction per change.
//!
//! [`ruleset`] is pure (desired state in, libnftables JSON out); [`NftPlane`]
//! only runs `nft`. keepmon owns the whole `inet keepmon` table: every
//! change deletes and re-adds it inside one transaction, so the kernel
//! switches from the old rules to the new ones at once, and established
//! connections keep their conntrack NAT binding. Weights become ranges of
//! the map's keys (`numgen inc mod TOTAL_WEIGHT`), so a 3:1 pair answers 3
//! of every 4 new connections on the first.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::config::model::{DataPlane, Forward, LbScheduler, Protocol};
use crate::lb::table::{Desired, DesiredService};

/// The table keepmon owns.
pub const TABLE: &str = "keepmon";
/// DNAT priority (`dstnat`).
const PRIORITY: i32 = -100;

fn table() -> Value {
    json!({"family": "inet", "name": TABLE})
}

fn chain(name: &str, hook: &str) -> Value {
    json!({"add": {"chain": {
        "family": "inet", "table": TABLE, "name": name,
        "type": "nat", "hook": hook, "prio": PRIORITY, "policy": "accept"
    }}})
}

/// Why a service or member is served differently than configured.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    pub service: String,
    pub text: String,
}

/// The map of one service: (first key, last key, real server) ranges over
/// `0..total`, in member order; members with weight 0 get none.
pub fn slots(service: &DesiredService) -> (u64, Vec<(u64, u64, SocketAddr)>) {
    let equal = service.spec.scheduler == LbScheduler::RoundRobin;
    let mut next = 0u64;
    let mut out = Vec::new();
    for (addr, m) in &service.members {
        let family = service.spec.listen.map(|l| l.is_ipv4());
        if m.weight == 0 || Some(addr.is_ipv4()) != family {
            continue;
        }
        let w = if equal { 1 } else { u64::from(m.weight) };
        out.push((next, next + w - 1, *addr));
        next += w;
    }
    (next, out)
}

/// The JSON batch that replaces table `inet keepmon` with the nftables
/// services of `desired` (one transaction), and what could not be
/// expressed. With no nftables service the batch only deletes the table.
pub fn ruleset(desired: &Desired) -> (Value, Vec<Note>) {
    let mut notes = Vec::new();
    let mut cmds = vec![
        json!({"metainfo": {"json_schema_version": 1}}),
        // Add first so the delete never fails on a missing table.
        json!({"add": {"table": table()}}),
        json!({"delete": {"table": table()}}),
    ];
    let services: Vec<_> = desired
        .services
        .iter()
        .filter(|(_, s)| s.spec.dataplane == DataPlane::Nftables)
        .filter_map(|(name, s)| Some((name, s, s.spec.listen?)))
        .collect();
    if services.is_empty() {
        return (json!({"nftables": cmds}), notes);
    }
    cmds.push(json!({"add": {"table": table()}}));
    cmds.push(chain("prerouting", "prerouting"));
    cmds.push(chain("output", "output"));
    for (name, svc, listen) in services {
        let spec = &svc.spec;
        let note = |text: String| Note {
            service: name.clone(),
            text,
        };
        match spec.scheduler {
            LbScheduler::RoundRobin | LbScheduler::WeightedRoundRobin | LbScheduler::SourceHash => {}
            LbScheduler::Maglev(_) | LbScheduler::Haproxy(_) => notes.push(note(format!(
                "scheduler {} is served as sh (a hash of the client address) on nftables",
                spec.scheduler
            ))),
            other => notes.push(note(format!(
                "scheduler {other} needs connection counts, which nftables does not keep; served as wrr"
            ))),
        }
        if spec.persistence.is_some() {
            notes.push(note(
                "persistence is not available on nftables; ignored".into(),
            ));
        }
        if spec.persistence_netmask.is_some() {
            notes.push(note(
                "persistence_netmask is not available on nftables; ignored".into(),
            ));
        }
        for (addr, m) in &svc.members {
            if m.thresholds.is_set() {
                notes.push(note(format!(
                    "real server {addr}: connection thresholds are not available on nftables; ignored"
                )));
            }
            if m.forward != Forward::Nat {
                notes.push(note(format!(
                    "real server {addr}: nftables forwards by DNAT only; {} ignored",
                    m.forward
                )));
            }
            if addr.is_ipv4() != listen.is_ipv4() {
                notes.push(note(format!(
                    "real server {addr} is not of the virtual address's family; left out"
                )));
            }
        }
        let (total, slots) = slots(svc);
        if total == 0 {
            // Like an IPVS service without real servers: nothing is
            // rewritten, traffic to the VIP reaches this host's stack.
            continue;
        }
        let (ip, l4) = (
            if listen.is_ipv4() { "ip" } else { "ip6" },
            match spec.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            },
        );
        let key = if matches!(
            spec.scheduler,
            LbScheduler::SourceHash | LbScheduler::Maglev(_) | LbScheduler::Haproxy(_)
        ) {
            json!({"jhash": {"mod": total, "expr": {"payload": {"protocol": ip, "field": "saddr"}}}})
        } else {
            json!({"numgen": {"mode": "inc", "mod": total, "offset": 0}})
        };
        let elems: Vec<Value> = slots
            .iter()
            .map(|(first, last, addr)| {
                let k = if first == last {
                    json!(first)
                } else {
                    json!({"range": [first, last]})
                };
                json!([k, {"concat": [addr.ip().to_string(), addr.port()]}])
            })
            .collect();
        let expr = json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": ip, "field": "daddr"}}, "right": listen.ip().to_string()}},
            {"match": {"op": "==", "left": {"payload": {"protocol": l4, "field": "dport"}}, "right": listen.port()}},
            {"dnat": {"family": ip, "addr": {"map": {"key": key, "data": {"set": elems}}}}}
        ]);
        for hook_chain in ["prerouting", "output"] {
            cmds.push(json!({"add": {"rule": {
                "family": "inet", "table": TABLE, "chain": hook_chain,
                "comment": name, "expr": expr.clone()
            }}}));
        }
    }
    (json!({"nftables": cmds}), notes)
}

/// Runs `nft -j -f -` with the batch; a refusal becomes a clear message.
pub async fn run_nft(batch: &Value) -> Result<(), String> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run nft (install the nftables package): {e}"))?;
    let text = batch.to_string();
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .map_err(|_| "nft did not finish within 10 s".to_string())?
        .map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft refused the table ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The nftables plane in its own task, so the event loop never waits for
/// `nft` (a process per change, up to 10 s when the kernel is slow). The
/// loop hands over the newest wanted table; the task installs it, and
/// retries a refused one with backoff (1 s doubling to 30 s) until it is
/// accepted or a newer table arrives.
pub struct NftWorker {
    wanted: tokio::sync::watch::Sender<Option<Desired>>,
    task: tokio::task::JoinHandle<NftPlane>,
    /// A service has used nftables since start (otherwise nothing is sent).
    used: bool,
}

/// Longest wait between retries of a refused table.
const NFT_RETRY_MAX: Duration = Duration::from_secs(30);

impl NftWorker {
    /// Start the task (inside a tokio runtime).
    pub fn start() -> NftWorker {
        let (wanted, mut rx) = tokio::sync::watch::channel::<Option<Desired>>(None);
        let task = tokio::spawn(async move {
            let mut plane = NftPlane::default();
            let mut retry: Option<Duration> = None;
            loop {
                match retry {
                    None => {
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                    Some(wait) => {
                        tokio::select! {
                            changed = rx.changed() => if changed.is_err() { break },
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
                let Some(desired) = rx.borrow_and_update().clone() else {
                    continue;
                };
                retry = if plane.apply(&desired).await {
                    None
                } else {
                    Some(retry.map_or(Duration::from_secs(1), |w| (w * 2).min(NFT_RETRY_MAX)))
                };
            }
            plane
        });
        NftWorker {
            wanted,
            task,
            used: false,
        }
    }

    /// Hand over the newest wanted table; returns at once.
    pub fn apply(&mut self, desired: &Desired) {
        self.used |= desired
            .services
            .values()
            .any(|s| s.spec.dataplane == DataPlane::Nftables);
        if self.used {
            self.wanted.send_replace(Some(desired.clone()));
        }
    }

    /// At stop: let the task finish the change in hand, then delete table
    /// `inet keepmon` when `remove`, else leave it.
    pub async fn stop(self, remove: bool) {
        drop(self.wanted);
        match self.task.await {
            Ok(mut plane) => plane.stop(remove).await,
            Err(e) => tracing::error!(error = %e, "nftables task failed"),
        }
    }
}

/// The nftables data plane: what it last installed.
#[derive(Default)]
pub struct NftPlane {
    /// The batch last accepted by the kernel (None: nothing installed yet).
    installed: Option<Value>,
    reported: BTreeSet<Note>,
    last_error: Option<String>,
}

impl NftPlane {
    /// Install the nftables part of `desired` when it differs from what is
    /// installed. Returns false when nft refused (the next call retries).
    pub async fn apply(&mut self, desired: &Desired) -> bool {
        let has_services = desired
            .services
            .values()
            .any(|s| s.spec.dataplane == DataPlane::Nftables);
        if !has_services && self.installed.is_none() {
            return true; // never touch nftables when the config does not use it
        }
        let (batch, notes) = ruleset(desired);
        for note in notes {
            if self.reported.insert(note.clone()) {
                tracing::warn!(service = %note.service, "{}", note.text);
            }
        }
        if self.installed.as_ref() == Some(&batch) {
            return true;
        }
        match run_nft(&batch).await {
            Ok(()) => {
                self.last_error = None;
                self.installed = has_services.then_some(batch);
                true
            }
            Err(e) => {
                if self.last_error.as_deref() != Some(&e) {
                    let names: Vec<&str> = desired
                        .services
                        .iter()
                        .filter(|(_, s)| s.spec.dataplane == DataPlane::Nftables)
                        .map(|(n, _)| n.as_str())
                        .collect();
                    tracing::error!(services = %names.join(", "), error = %e, "nftables data plane: table inet keepmon not updated");
                    self.last_error = Some(e);
                }
                false
            }
        }
    }

    /// At stop: delete table `inet keepmon` when `remove`, else leave it.
    pub async fn stop(&mut self, remove: bool) {
        if remove && self.installed.is_some() {
            let (batch, _) = ruleset(&Desired::default());
            if let Err(e) = run_nft(&batch).await {
                tracing::warn!(error = %e, "cannot remove table inet keepmon");
            }
            self.installed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Thresholds;
    use crate::lb::table::{Member, ServiceSpec};
    use std::collections::BTreeMap;

    fn service(scheduler: LbScheduler, members: &[(&str, u32)]) -> DesiredService {
        DesiredService {
            spec: ServiceSpec {
                listen: Some("10.9.100.1:80".parse().unwrap()),
                fwmark: None,
                protocol: Protocol::Tcp,
                scheduler,
                dataplane: DataPlane::Nftables,
                persistence: None,
                persistence_netmask: None,
                sorry_server: None,
                quorum: None,
                hysteresis: 0,
                retries: 0,
                connect_timeout: Duration::from_secs(1),
                proxy: Default::default(),
                server_order: Vec::new(),
                weight_unit: 1,
            },
            members: members
                .iter()
                .map(|(a, w)| {
                    (
                        a.parse().unwrap(),
                        Member {
                            weight: *w,
                            forward: Forward::Nat,
                            thresholds: Thresholds::default(),
                            proxy: Default::default(),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn desired(s: DesiredService) -> Desired {
        let mut d = Desired::default();
        d.services.insert("web".into(), s);
        d
    }

    #[test]
    fn weights_become_key_ranges_and_drained_members_none() {
        let s = service(
            LbScheduler::WeightedRoundRobin,
            &[
                ("10.9.1.2:8080", 3),
                ("10.9.2.2:8080", 1),
                ("10.9.3.2:8080", 0),
            ],
        );
        let (total, ranges) = slots(&s);
        assert_eq!(total, 4);
        assert_eq!(
            ranges,
            vec![
                (0, 2, "10.9.1.2:8080".parse().unwrap()),
                (3, 3, "10.9.2.2:8080".parse().unwrap())
            ]
        );
        let rr = service(
            LbScheduler::RoundRobin,
            &[("10.9.1.2:8080", 3), ("10.9.2.2:8080", 1)],
        );
        assert_eq!(slots(&rr).0, 2, "rr ignores weights");
    }

    #[test]
    fn the_batch_replaces_the_table_in_one_transaction() {
        let (batch, notes) = ruleset(&desired(service(
            LbScheduler::WeightedRoundRobin,
            &[("10.9.1.2:8080", 3), ("10.9.2.2:8080", 1)],
        )));
        assert!(notes.is_empty());
        let cmds = batch["nftables"].as_array().unwrap();
        assert_eq!(
            cmds[1],
            json!({"add": {"table": {"family": "inet", "name": "keepmon"}}})
        );
        assert_eq!(
            cmds[2],
            json!({"delete": {"table": {"family": "inet", "name": "keepmon"}}})
        );
        let rule = &cmds[6]["add"]["rule"];
        assert_eq!(rule["chain"], "prerouting");
        assert_eq!(rule["comment"], "web");
        assert_eq!(
            rule["expr"][2],
            json!({"dnat": {"family": "ip", "addr": {"map": {
                "key": {"numgen": {"mode": "inc", "mod": 4, "offset": 0}},
                "data": {"set": [
                    [{"range": [0, 2]}, {"concat": ["10.9.1.2", 8080]}],
                    [3, {"concat": ["10.9.2.2", 8080]}]
                ]}
            }}}})
        );
        assert_eq!(
            cmds.len(),
            8,
            "metainfo, add, delete, add, 2 chains, 2 rules"
        );
    }

    #[test]
    fn source_hash_uses_jhash_and_unsupported_settings_are_noted() {
        let mut s = service(LbScheduler::SourceHash, &[("10.9.1.2:8080", 1)]);
        let (batch, _) = ruleset(&desired(s.clone()));
        assert_eq!(
            batch["nftables"][6]["add"]["rule"]["expr"][2]["dnat"]["addr"]["map"]["key"],
            json!({"jhash": {"mod": 1, "expr": {"payload": {"protocol": "ip", "field": "saddr"}}}})
        );
        s.spec.scheduler = LbScheduler::LeastConnection;
        s.spec.persistence = Some(Duration::from_secs(60));
        let (_, notes) = ruleset(&desired(s.clone()));
        assert_eq!(notes.len(), 2);
        s.spec.persistence_netmask = Some(24);
        if let Some(m) = s.members.values_mut().next() {
            m.thresholds.upper = 10;
        }
        let (_, notes) = ruleset(&desired(s));
        let texts: Vec<&str> = notes.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(notes.len(), 4, "{texts:?}");
        assert!(texts.contains(&"persistence_netmask is not available on nftables; ignored"));
        assert!(texts.contains(
            &"real server 10.9.1.2:8080: connection thresholds are not available on nftables; ignored"
        ));
    }

    #[test]
    fn no_nftables_service_only_deletes_the_table() {
        let (batch, _) = ruleset(&Desired::default());
        assert_eq!(batch["nftables"].as_array().unwrap().len(), 3);
    }
}
