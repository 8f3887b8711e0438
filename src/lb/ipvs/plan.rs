//! What to ask the kernel (pure): the IPVS requests that bring a kernel table to the desired state, touching only entries keepmon owns or wants.
//!
//! Rules: a wanted service found in the kernel is adopted (changed in place
//! if its settings differ, never deleted and re-added); a kernel service
//! that is not wanted is deleted only if keepmon owns it; inside a wanted
//! service, a real server that is not wanted is deleted only if keepmon
//! owns it. Foreign services and real servers stay as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::msg::{
    DestAttrs, FWD_MASQ, FWD_ROUTE, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP, Request, SVC_F_HASHED,
    SVC_F_PERSISTENT, SVC_F_SCHED_MH_FALLBACK, SVC_F_SCHED_MH_PORT, ServiceAttrs, ServiceKey,
    default_netmask, prefix_netmask,
};
use crate::config::model::{DataPlane, Forward, LbScheduler, Protocol};
use crate::lb::table::Desired;

/// One service in a kernel table (dumped, or as keepmon wants it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub service: ServiceAttrs,
    pub dests: BTreeMap<SocketAddr, DestAttrs>,
}

/// A kernel IPVS table (only address-keyed services).
pub type Table = BTreeMap<ServiceKey, Entry>;

/// The wanted IPVS table and the keepmon name of each service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub table: Table,
    pub names: BTreeMap<ServiceKey, String>,
}

/// What keepmon created or adopted; kept in the statedir so a restart
/// knows what it may delete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub services: BTreeSet<ServiceKey>,
    pub dests: BTreeSet<(ServiceKey, SocketAddr)>,
}

impl Owned {
    /// Record a request that the kernel accepted.
    pub fn record(&mut self, request: &Request) {
        match request {
            Request::NewService(s) | Request::SetService(s) => {
                self.services.insert(s.key);
            }
            Request::DelService(k) => {
                self.services.remove(k);
                self.dests.retain(|(s, _)| s != k);
            }
            Request::NewDest(k, d) | Request::SetDest(k, d) => {
                self.dests.insert((*k, d.addr));
            }
            Request::DelDest(k, a) => {
                self.dests.remove(&(*k, *a));
            }
            Request::GetServices | Request::GetDests(_) => {}
        }
    }

    /// Adopt every wanted entry already present in the kernel.
    pub fn adopt(&mut self, kernel: &Table, wanted: &Wanted) {
        for (key, want) in &wanted.table {
            if let Some(have) = kernel.get(key) {
                self.services.insert(*key);
                for addr in want.dests.keys() {
                    if have.dests.contains_key(addr) {
                        self.dests.insert((*key, *addr));
                    }
                }
            }
        }
    }
}

/// Apply an accepted request to a model of the kernel table.
pub fn record(table: &mut Table, request: &Request) {
    match request {
        Request::NewService(s) => {
            table.insert(
                s.key,
                Entry {
                    service: s.clone(),
                    dests: BTreeMap::new(),
                },
            );
        }
        Request::SetService(s) => {
            if let Some(e) = table.get_mut(&s.key) {
                e.service = s.clone();
            }
        }
        Request::DelService(k) => {
            table.remove(k);
        }
        Request::NewDest(k, d) | Request::SetDest(k, d) => {
            if let Some(e) = table.get_mut(k) {
                e.dests.insert(d.addr, *d);
            }
        }
        Request::DelDest(k, a) => {
            if let Some(e) = table.get_mut(k) {
                e.dests.remove(a);
            }
        }
        Request::GetServices | Request::GetDests(_) => {}
    }
}

pub fn protocol_number(p: Protocol) -> u16 {
    match p {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
    }
}

pub fn forward_method(f: Forward) -> u32 {
    match f {
        Forward::Nat => FWD_MASQ,
        Forward::DirectRouting => FWD_ROUTE,
        Forward::Tunnel => FWD_TUNNEL,
    }
}

/// The IPVS part of the desired state.
pub fn wanted(desired: &Desired) -> Wanted {
    let mut out = Wanted::default();
    for (name, svc) in &desired.services {
        if svc.spec.dataplane != DataPlane::Ipvs {
            continue;
        }
        // A firewall-mark service is keyed by its mark and family; a pool
        // without a listener is the proxy's (the validator refuses one on
        // IPVS).
        let key = match (svc.spec.listen, svc.spec.fwmark) {
            (Some(listen), _) => ServiceKey::addr(protocol_number(svc.spec.protocol), listen),
            (None, Some(fwmark)) => ServiceKey::fwmark(fwmark.mark.get(), fwmark.ipv6),
            (None, None) => continue,
        };
        let ip = key.addr.ip();
        let (flags, timeout) = match svc.spec.persistence {
            Some(d) => (
                SVC_F_PERSISTENT,
                d.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
            ),
            None => (0, 0),
        };
        let flags = flags | scheduler_flags(svc.spec.scheduler);
        let service = ServiceAttrs {
            key,
            scheduler: svc.spec.scheduler.to_string(),
            flags,
            timeout,
            netmask: match svc.spec.persistence_netmask {
                Some(prefix) => prefix_netmask(ip, prefix),
                None => default_netmask(ip),
            },
        };
        let dests = svc
            .members
            .iter()
            .map(|(addr, m)| {
                (
                    *addr,
                    DestAttrs {
                        addr: *addr,
                        forward: forward_method(m.forward),
                        weight: m.weight,
                        upper_threshold: m.thresholds.upper,
                        lower_threshold: m.thresholds.lower,
                    },
                )
            })
            .collect();
        out.table.insert(key, Entry { service, dests });
        out.names.insert(key, name.clone());
    }
    out
}

/// IPVS's scheduler flags for `scheduler` (`ipvsadm -b`).
fn scheduler_flags(scheduler: LbScheduler) -> u32 {
    match scheduler {
        LbScheduler::Maglev(mh) => {
            let mut flags = 0;
            if mh.fallback {
                flags |= SVC_F_SCHED_MH_FALLBACK;
            }
            if mh.port {
                flags |= SVC_F_SCHED_MH_PORT;
            }
            flags
        }
        _ => 0,
    }
}

fn same_service(have: &ServiceAttrs, want: &ServiceAttrs) -> bool {
    have.scheduler == want.scheduler
        && have.flags & !SVC_F_HASHED == want.flags
        && have.timeout == want.timeout
        && have.netmask == want.netmask
}

/// The requests that turn `kernel` into `wanted`, in order: first deletions
/// of owned services that are no longer wanted, then per wanted service its
/// settings, added and changed real servers, then removed ones (adds first,
/// so a service is never emptier than it must be).
pub fn reconcile(kernel: &Table, wanted: &Wanted, owned: &Owned) -> Vec<Request> {
    let mut out = Vec::new();
    for (key, have) in kernel {
        if wanted.table.contains_key(key) {
            continue;
        }
        if owned.services.contains(key) {
            out.push(Request::DelService(*key));
        } else {
            for addr in have.dests.keys() {
                if owned.dests.contains(&(*key, *addr)) {
                    out.push(Request::DelDest(*key, *addr));
                }
            }
        }
    }
    for (key, want) in &wanted.table {
        let Some(have) = kernel.get(key) else {
            out.push(Request::NewService(want.service.clone()));
            out.extend(want.dests.values().map(|d| Request::NewDest(*key, *d)));
            continue;
        };
        if !same_service(&have.service, &want.service) {
            out.push(Request::SetService(want.service.clone()));
        }
        for (addr, d) in &want.dests {
            match have.dests.get(addr) {
                None => out.push(Request::NewDest(*key, *d)),
                Some(h) if h != d => out.push(Request::SetDest(*key, *d)),
                Some(_) => {}
            }
        }
        for addr in have.dests.keys() {
            if !want.dests.contains_key(addr) && owned.dests.contains(&(*key, *addr)) {
                out.push(Request::DelDest(*key, *addr));
            }
        }
    }
    out
}

/// Foreign real servers left inside wanted services (for a warning).
pub fn foreign_dests(
    kernel: &Table,
    wanted: &Wanted,
    owned: &Owned,
) -> Vec<(ServiceKey, SocketAddr)> {
    let mut out = Vec::new();
    for (key, want) in &wanted.table {
        if let Some(have) = kernel.get(key) {
            for addr in have.dests.keys() {
                if !want.dests.contains_key(addr) && !owned.dests.contains(&(*key, *addr)) {
                    out.push((*key, *addr));
                }
            }
        }
    }
    out
}

/// The requests that remove everything keepmon owns (stop with removal).
pub fn teardown(kernel: &Table, owned: &Owned) -> Vec<Request> {
    let mut out = Vec::new();
    for (key, have) in kernel {
        if owned.services.contains(key) {
            out.push(Request::DelService(*key));
            continue;
        }
        for addr in have.dests.keys() {
            if owned.dests.contains(&(*key, *addr)) {
                out.push(Request::DelDest(*key, *addr));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{LbScheduler, Thresholds};
    use crate::lb::table::{DesiredService, Member, ServiceSpec};
    use std::time::Duration;

    fn spec(listen: &str, dataplane: DataPlane) -> ServiceSpec {
        ServiceSpec {
            listen: Some(listen.parse().unwrap()),
            fwmark: None,
            protocol: Protocol::Tcp,
            scheduler: LbScheduler::WeightedRoundRobin,
            dataplane,
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
        }
    }

    fn desired(members: &[(&str, u32)]) -> Desired {
        let mut d = Desired::default();
        d.services.insert(
            "web".into(),
            DesiredService {
                spec: spec("10.0.0.1:80", DataPlane::Ipvs),
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
                    .collect(),
            },
        );
        d.services.insert(
            "proxied".into(),
            DesiredService {
                spec: spec("127.0.0.1:8080", DataPlane::Proxy),
                members: BTreeMap::new(),
            },
        );
        d
    }

    fn key(addr: &str) -> ServiceKey {
        ServiceKey::addr(IPPROTO_TCP, addr.parse().unwrap())
    }

    fn apply(table: &mut Table, owned: &mut Owned, reqs: &[Request]) {
        for r in reqs {
            record(table, r);
            owned.record(r);
        }
    }

    #[test]
    fn an_empty_kernel_gets_the_service_then_its_members() {
        let w = wanted(&desired(&[("10.0.0.2:80", 3), ("10.0.0.3:80", 1)]));
        assert_eq!(w.table.len(), 1, "only the ipvs service");
        let reqs = reconcile(&Table::new(), &w, &Owned::default());
        assert_eq!(reqs.len(), 3);
        assert!(
            matches!(&reqs[0], Request::NewService(s) if s.scheduler == "wrr" && s.flags == 0 && s.netmask == u32::MAX)
        );
        assert!(
            matches!(reqs[1], Request::NewDest(_, d) if d.weight == 3 && d.forward == FWD_MASQ)
        );
        // Applied, the kernel matches and nothing more is asked.
        let (mut t, mut o) = (Table::new(), Owned::default());
        apply(&mut t, &mut o, &reqs);
        assert!(reconcile(&t, &w, &o).is_empty());
        assert_eq!(o.services.len(), 1);
        assert_eq!(o.dests.len(), 2);
    }

    #[test]
    fn one_flip_is_one_request() {
        let w1 = wanted(&desired(&[("10.0.0.2:80", 3), ("10.0.0.3:80", 1)]));
        let (mut t, mut o) = (Table::new(), Owned::default());
        let first = reconcile(&Table::new(), &w1, &o);
        apply(&mut t, &mut o, &first);
        let w2 = wanted(&desired(&[("10.0.0.2:80", 3)]));
        assert_eq!(
            reconcile(&t, &w2, &o),
            vec![Request::DelDest(
                key("10.0.0.1:80"),
                "10.0.0.3:80".parse().unwrap()
            )]
        );
        let w3 = wanted(&desired(&[("10.0.0.2:80", 3), ("10.0.0.3:80", 0)]));
        assert!(matches!(reconcile(&t, &w3, &o)[..], [Request::SetDest(_, d)] if d.weight == 0));
    }

    #[test]
    fn matching_kernel_entries_are_adopted_and_foreign_ones_kept() {
        let w = wanted(&desired(&[("10.0.0.2:80", 3)]));
        let mut kernel = w.table.clone();
        let mut with_hashed = kernel[&key("10.0.0.1:80")].service.clone();
        with_hashed.flags |= SVC_F_HASHED;
        kernel.get_mut(&key("10.0.0.1:80")).unwrap().service = with_hashed;
        // A foreign real server inside our service, and a foreign service.
        let foreign_rs: SocketAddr = "10.0.0.9:80".parse().unwrap();
        kernel.get_mut(&key("10.0.0.1:80")).unwrap().dests.insert(
            foreign_rs,
            DestAttrs {
                addr: foreign_rs,
                forward: FWD_ROUTE,
                weight: 1,
                upper_threshold: 0,
                lower_threshold: 0,
            },
        );
        let mut other = kernel[&key("10.0.0.1:80")].clone();
        other.service.key = key("10.0.0.50:443");
        kernel.insert(key("10.0.0.50:443"), other);

        let mut owned = Owned::default();
        owned.adopt(&kernel, &w);
        assert!(
            reconcile(&kernel, &w, &owned).is_empty(),
            "nothing foreign is touched"
        );
        assert_eq!(
            foreign_dests(&kernel, &w, &owned),
            vec![(key("10.0.0.1:80"), foreign_rs)]
        );
        assert!(owned.services.contains(&key("10.0.0.1:80")));
        assert!(!owned.services.contains(&key("10.0.0.50:443")));
        // Dropping our service from the config deletes only it.
        let none = wanted(&Desired::default());
        assert_eq!(
            reconcile(&kernel, &none, &owned),
            vec![Request::DelService(key("10.0.0.1:80"))]
        );
        assert_eq!(
            teardown(&kernel, &owned),
            vec![Request::DelService(key("10.0.0.1:80"))]
        );
    }

    #[test]
    fn mh_flags_are_ipvs_scheduler_flags() {
        let mut d = desired(&[("10.0.0.2:80", 1)]);
        d.services.get_mut("web").unwrap().spec.scheduler =
            LbScheduler::Maglev(crate::config::model::MhFlags {
                port: true,
                fallback: true,
            });
        let reqs = reconcile(&Table::new(), &wanted(&d), &Owned::default());
        assert!(
            matches!(&reqs[0], Request::NewService(s) if s.scheduler == "mh" && s.flags == SVC_F_SCHED_MH_FALLBACK | SVC_F_SCHED_MH_PORT),
            "{reqs:?}"
        );
    }

    #[test]
    fn changed_settings_are_set_in_place_and_owned_extras_removed() {
        let mut d = desired(&[("10.0.0.2:80", 3)]);
        let w = wanted(&d);
        let (mut t, mut o) = (Table::new(), Owned::default());
        let first = reconcile(&Table::new(), &w, &o);
        apply(&mut t, &mut o, &first);
        d.services.get_mut("web").unwrap().spec.persistence = Some(Duration::from_secs(300));
        d.services.get_mut("web").unwrap().spec.scheduler = LbScheduler::SourceHash;
        let reqs = reconcile(&t, &wanted(&d), &o);
        assert!(
            matches!(&reqs[..], [Request::SetService(s)] if s.flags == SVC_F_PERSISTENT && s.timeout == 300 && s.scheduler == "sh")
        );
        // Our own member added to a foreign service is removed when unwanted.
        let mut kernel = Table::new();
        let mut foreign = t[&key("10.0.0.1:80")].clone();
        foreign.service.key = key("10.0.0.7:25");
        kernel.insert(key("10.0.0.7:25"), foreign);
        let mut owned = Owned::default();
        owned
            .dests
            .insert((key("10.0.0.7:25"), "10.0.0.2:80".parse().unwrap()));
        assert_eq!(
            reconcile(&kernel, &Wanted::default(), &owned),
            vec![Request::DelDest(
                key("10.0.0.7:25"),
                "10.0.0.2:80".parse().unwrap()
            )]
        );
    }

    #[test]
    fn thresholds_and_persistence_netmask_reach_the_requests() {
        let mut d = desired(&[("10.0.0.2:80", 3)]);
        let (mut t, mut o) = (Table::new(), Owned::default());
        let first = reconcile(&Table::new(), &wanted(&d), &o);
        apply(&mut t, &mut o, &first);
        let web = d.services.get_mut("web").unwrap();
        web.spec.persistence = Some(Duration::from_secs(600));
        web.spec.persistence_netmask = Some(24);
        let member = web.members.values_mut().next().unwrap();
        member.thresholds = Thresholds {
            upper: 100,
            lower: 50,
        };
        let reqs = reconcile(&t, &wanted(&d), &o);
        let want_dest = DestAttrs {
            addr: "10.0.0.2:80".parse().unwrap(),
            forward: FWD_MASQ,
            weight: 3,
            upper_threshold: 100,
            lower_threshold: 50,
        };
        match &reqs[..] {
            [Request::SetService(s), Request::SetDest(k, dest)] => {
                assert_eq!(s.netmask.to_ne_bytes(), [255, 255, 255, 0]);
                assert_eq!((s.flags, s.timeout), (SVC_F_PERSISTENT, 600));
                assert_eq!(*k, key("10.0.0.1:80"));
                assert_eq!(*dest, want_dest);
            }
            other => panic!("unexpected requests {other:?}"),
        }
        apply(&mut t, &mut o, &reqs);
        assert!(reconcile(&t, &wanted(&d), &o).is_empty());
    }

    #[test]
    fn owned_set_round_trips_through_json() {
        let mut o = Owned::default();
        o.services.insert(key("10.0.0.1:80"));
        o.dests
            .insert((key("10.0.0.1:80"), "[2001:db8::2]:80".parse().unwrap()));
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Owned>(&text).unwrap(), o);
    }
}
