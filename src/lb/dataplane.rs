//! Keeps the data planes in step with the table: turns `Desired` into running proxies (start, update, stop) and kernel IPVS entries; owns no policy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::config::model::DataPlane;
use crate::lb::balance::{Backend, ConfigServers};
use crate::lb::ipvs::IpvsPlane;
use crate::lb::nft::NftWorker;
use crate::lb::proxy::{self, BackendStats, ProxyHandle, ProxySpec, QueueStats};
use crate::lb::table::{self, Conns, Desired, DesiredService, Op};

/// The running data planes and what they were last told to hold.
pub struct DataPlanes {
    proxies: BTreeMap<String, ProxyHandle>,
    applied: Desired,
    shutdown: CancellationToken,
    ipvs: IpvsPlane,
    /// The last IPVS apply failed, or none ran yet: apply even when the
    /// table did not change (at start this removes entries an earlier run
    /// owned and the config no longer has).
    ipvs_failed: bool,
    /// Runs `nft` in its own task and retries refusals itself.
    nft: Option<NftWorker>,
    remove_on_stop: bool,
    /// Proxied services already warned that thresholds and the
    /// persistence netmask are IPVS-only.
    threshold_warned: BTreeSet<String>,
}

impl DataPlanes {
    /// `statedir` keeps the list of kernel entries keepmon owns;
    /// `remove_on_stop` says whether [`DataPlanes::stop`] removes them.
    /// Call inside a tokio runtime (the nftables plane runs as a task).
    pub fn new(
        shutdown: CancellationToken,
        statedir: Option<&Path>,
        remove_on_stop: bool,
    ) -> DataPlanes {
        DataPlanes {
            proxies: BTreeMap::new(),
            applied: Desired::default(),
            shutdown,
            ipvs: IpvsPlane::new(statedir),
            ipvs_failed: true,
            nft: Some(NftWorker::start()),
            remove_on_stop,
            threshold_warned: BTreeSet::new(),
        }
    }

    /// A reload may change `remove_kernel_tables_on_stop`.
    pub fn set_remove_on_stop(&mut self, remove: bool) {
        self.remove_on_stop = remove;
    }

    /// At daemon stop: leave the kernel tables (default) or remove what
    /// keepmon owns in them.
    pub async fn stop(&mut self) {
        self.ipvs.stop(self.remove_on_stop);
        if let Some(nft) = self.nft.take() {
            nft.stop(self.remove_on_stop).await;
        }
    }

    /// Bring the data planes to `desired`; returns the operations performed
    /// (for logs, `dump` and the history). A proxy that cannot listen is
    /// logged and retried on the next call; the daemon carries on.
    pub async fn apply(&mut self, desired: &Desired) -> Vec<Op> {
        let ops = table::diff(&self.applied, desired);
        if ops.is_empty() && self.proxies.len() == self.proxy_count(desired) && !self.ipvs_failed {
            return ops;
        }
        self.ipvs_failed = !self.ipvs.apply(desired);
        if let Some(nft) = &mut self.nft {
            nft.apply(desired);
        }
        // Stop proxies whose service is gone or moved to another endpoint.
        let stale: Vec<String> = self
            .proxies
            .iter()
            .filter(|(name, handle)| {
                desired.services.get(*name).is_none_or(|s| {
                    s.spec.dataplane != DataPlane::Proxy || s.spec.listen != handle.listen()
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(handle) = self.proxies.remove(&name) {
                tracing::info!(service = %name, listen = ?handle.listen(), "proxy stopped");
                handle.close();
            }
        }
        // Pools first, so that a new route finds its pool running.
        let mut services: Vec<(&String, &DesiredService)> = desired.services.iter().collect();
        services.sort_by_key(|(_, s)| s.spec.listen.is_some());
        for (name, service) in services {
            if service.spec.dataplane != DataPlane::Proxy {
                continue; // the kernel planes above
            }
            self.warn_proxy_thresholds(name, service);
            let spec = proxy_spec(name, service);
            match self.proxies.get(name) {
                Some(handle) => {
                    if let Err(e) = handle.reconfigure(spec) {
                        tracing::warn!(service = %name, error = %e, "proxy reconfigure failed");
                    }
                }
                None => match proxy::start(spec, self.shutdown.child_token()).await {
                    Ok(handle) => {
                        match service.spec.listen {
                            Some(listen) => {
                                tracing::info!(service = %name, %listen, "proxy listening")
                            }
                            None => tracing::info!(service = %name, "proxy pool ready for routes"),
                        }
                        self.proxies.insert(name.clone(), handle);
                    }
                    Err(e) => {
                        tracing::warn!(service = %name, listen = ?service.spec.listen, error = %e, "proxy cannot listen; will retry");
                        continue;
                    }
                },
            }
        }
        self.connect_routes(desired);
        self.applied = desired.clone();
        ops
    }

    /// Every member's counters for `lb show`, from the proxies and the
    /// kernel's IPVS table: (active, total - active) connections (ipvsadm's
    /// ActiveConn / InActConn), totals, failures (proxy only) and bytes.
    pub fn all_conn_counts(&self) -> BTreeMap<(String, SocketAddr), Conns> {
        let mut out = self.ipvs.conn_counts();
        for (name, s) in self.stats() {
            out.insert(
                (name, s.addr),
                Conns {
                    active: s.active,
                    inactive: s.total.saturating_sub(s.active),
                    total: s.total,
                    failures: s.failures,
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                    requests: s.requests,
                    responses: s.responses,
                    retries: s.retries,
                    queued: s.queued,
                    queue_max: s.queue_max,
                },
            );
        }
        out
    }

    /// Counters of every backend of every proxy.
    pub fn stats(&self) -> Vec<(String, BackendStats)> {
        self.proxies
            .iter()
            .flat_map(|(name, p)| p.stats().into_iter().map(move |s| (name.clone(), s)))
            .collect()
    }

    /// Each proxied service's own queue (HAProxy's backend qcur/qmax; the
    /// servers' queues are in [`DataPlanes::stats`]).
    pub fn queue_stats(&self) -> Vec<(String, QueueStats)> {
        self.proxies
            .iter()
            .map(|(name, p)| (name.clone(), p.queue_stats()))
            .collect()
    }

    /// The bound address of a service's proxy (tests use port 0).
    pub fn local_addr(&self, service: &str) -> Option<SocketAddr> {
        self.proxies.get(service)?.local_addr()
    }

    /// Point every proxy's routes at the running pools (a route whose pool
    /// is not running is left out until it is).
    fn connect_routes(&self, desired: &Desired) {
        for (name, handle) in &self.proxies {
            let Some(service) = desired.services.get(name) else {
                continue;
            };
            let routes = service
                .spec
                .proxy
                .routes
                .iter()
                .filter_map(|route| {
                    let pool = self.proxies.get(&route.to)?;
                    Some((crate::lb::route::Compiled::new(&route.when), pool))
                })
                .collect();
            handle.set_routes(routes);
        }
    }

    /// Thresholds and the persistence netmask are IPVS settings: say once
    /// per service that the proxy ignores them (again if they are dropped
    /// and set anew).
    fn warn_proxy_thresholds(&mut self, name: &str, service: &DesiredService) {
        let thresholds = service.members.values().any(|m| m.thresholds.is_set());
        let netmask = service.spec.persistence_netmask.is_some();
        if thresholds || netmask {
            if self.threshold_warned.insert(name.to_string()) {
                tracing::warn!(
                    service = %name,
                    "upper_threshold/lower_threshold and persistence_netmask are IPVS settings; the proxy ignores them"
                );
            }
        } else {
            self.threshold_warned.remove(name);
        }
    }

    fn proxy_count(&self, desired: &Desired) -> usize {
        desired
            .services
            .values()
            .filter(|s| s.spec.dataplane == DataPlane::Proxy)
            .count()
    }
}

/// The members in the order the config lists the real servers (those it
/// does not list, such as a sorry server swapped in, after them by
/// address): the proxy's round robin follows this order, as HAProxy's
/// follows the file.
fn in_config_order(service: &DesiredService) -> Vec<(&SocketAddr, &crate::lb::table::Member)> {
    let positions: BTreeMap<&SocketAddr, usize> = service
        .spec
        .server_order
        .iter()
        .enumerate()
        .map(|(i, addr)| (addr, i))
        .rev() // a server listed twice keeps its first place
        .collect();
    let mut members: Vec<_> = service.members.iter().collect();
    // Stable: members at the same position (unlisted ones) keep address order.
    members.sort_by_key(|(addr, _)| positions.get(addr).copied().unwrap_or(usize::MAX));
    members
}

fn proxy_spec(name: &str, service: &DesiredService) -> ProxySpec {
    let spec = &service.spec;
    let sorry_in_members = spec
        .sorry_server
        .is_some_and(|s| service.members.contains_key(&s));
    ProxySpec {
        name: name.to_string(),
        listen: spec.listen,
        scheduler: spec.scheduler,
        config_servers: ConfigServers {
            weight_unit: spec.weight_unit,
            ids: spec
                .server_order
                .iter()
                .enumerate()
                .rev() // a server listed twice keeps its first id
                .map(|(i, addr)| (*addr, u32::try_from(i + 1).unwrap_or(u32::MAX)))
                .collect(),
        },
        backends: in_config_order(service)
            .into_iter()
            .map(|(addr, m)| Backend {
                addr: *addr,
                weight: m.weight,
            })
            .collect(),
        persistence: spec.persistence,
        retries: spec.retries,
        connect_timeout: spec.connect_timeout,
        // The table already swaps in the sorry server when quorum is lost;
        // otherwise the proxy uses it when no member can take a connection.
        sorry: if sorry_in_members {
            None
        } else {
            spec.sorry_server
        },
        options: spec.proxy.clone(),
        limits: service
            .members
            .iter()
            .filter(|(_, m)| m.proxy != crate::lb::table::ServerLimits::default())
            .map(|(addr, m)| (*addr, m.proxy))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::VirtualServer;

    /// The proxy gets the real servers in config order, as HAProxy's round
    /// robin takes them from the file, not sorted by address.
    #[test]
    fn the_proxy_gets_the_servers_in_config_order() {
        let config = crate::config::compile_str(
            "[virtual_servers.web]\nlisten = \"127.0.0.1:8080\"\nscheduler = \"rr\"\nreal_servers = [\n  { addr = \"127.0.0.1:9003\" },\n  { addr = \"127.0.0.1:9001\" },\n  { addr = \"127.0.0.1:9002\" },\n]\n",
            Path::new("k.toml"),
            crate::config::Format::Toml,
            &crate::config::RealFileSystem,
        )
        .unwrap_or_else(|e| panic!("{}", e.diagnostics))
        .config;
        let vs: &VirtualServer = &config.virtual_servers["web"];
        let spec = table::ServiceSpec::from_config(vs);
        let mut members = BTreeMap::new();
        for rs in &vs.real_servers {
            members.insert(
                rs.addr,
                table::Member {
                    weight: 1,
                    forward: rs.forward,
                    thresholds: rs.thresholds,
                    proxy: Default::default(),
                },
            );
        }
        // One not in the config (a sorry server swapped in) comes last.
        let sorry: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        members.insert(
            sorry,
            table::Member {
                weight: 1,
                forward: crate::config::model::Forward::Nat,
                thresholds: Default::default(),
                proxy: Default::default(),
            },
        );
        let ports: Vec<u16> = proxy_spec("web", &DesiredService { spec, members })
            .backends
            .iter()
            .map(|b| b.addr.port())
            .collect();
        assert_eq!(ports, [9003, 9001, 9002, 9000]);
    }
}
