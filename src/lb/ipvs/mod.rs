//! The IPVS data plane: a generic-netlink socket (netlink-sys) to the kernel's "IPVS" family, reconcile at start, diffs after, ownership kept in the statedir.
//!
//! The messages are built and parsed by [`msg`]; what to send is decided by
//! [`plan`]. This file only talks to the socket and keeps the model of the
//! kernel table up to date. Generic netlink requests are handled by the
//! kernel inside `sendmsg`, so a request never waits on anything outside
//! this host; they run inline on the supervisor task.

pub mod msg;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_GENERIC};

use self::msg::{Answer, DestEntry, Reply, Request, ServiceEntry, ServiceKey};
use self::plan::{Entry, Owned, Table, Wanted};
use crate::lb::table::{Conns, Desired};

/// The file in the statedir that lists what keepmon owns in the kernel.
pub const OWNED_FILE: &str = "ipvs-owned.json";

/// An open generic-netlink socket bound to the IPVS family.
pub struct Ipvs {
    socket: Socket,
    family: u16,
    seq: AtomicU32,
}

/// Why the kernel could not be reached or refused a request.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error(
        "IPVS is not available in this kernel: the \"IPVS\" generic netlink family is missing (load the ip_vs module: modprobe ip_vs)"
    )]
    NoModule,
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot read the kernel's answer: {0}")]
    Decode(String),
    #[error("{0}")]
    Kernel(String),
}

impl Ipvs {
    /// Open a socket and resolve the family id.
    pub fn open() -> Result<Ipvs, IpvsError> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.connect(&NlAddr::new(0, 0))?;
        let ipvs = Ipvs {
            socket,
            family: 0,
            seq: AtomicU32::new(1),
        };
        let seq = ipvs.next_seq();
        ipvs.socket.send(&msg::get_family(seq), 0)?;
        let mut family = None;
        for answer in ipvs.receive(seq, false, msg::parse_family_replies)? {
            match answer {
                Reply::Family(id) => family = Some(id),
                Reply::Error(-2) => return Err(IpvsError::NoModule),
                Reply::Error(e) => {
                    return Err(IpvsError::Kernel(format!(
                        "resolving the IPVS family: {}",
                        std::io::Error::from_raw_os_error(-e)
                    )));
                }
                _ => {}
            }
        }
        Ok(Ipvs {
            family: family.ok_or(IpvsError::NoModule)?,
            ..ipvs
        })
    }

    fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Read answers to `seq` until the ACK/error (or NLMSG_DONE for dumps).
    fn receive(
        &self,
        seq: u32,
        dump: bool,
        parse: fn(&[u8]) -> Result<Vec<Answer>, netlink_packet_core::DecodeError>,
    ) -> Result<Vec<Reply>, IpvsError> {
        let mut out = Vec::new();
        // Bounded: a dump of N entries arrives in at most N datagrams.
        for _ in 0..1_000_000 {
            let (buf, _) = self.socket.recv_from_full()?;
            let answers = parse(&buf).map_err(|e| IpvsError::Decode(e.to_string()))?;
            for a in answers {
                if a.seq != seq {
                    continue; // a late answer to an earlier request
                }
                let last = match &a.reply {
                    Reply::Done => true,
                    Reply::Ack | Reply::Error(_) => true,
                    Reply::Family(_) => !dump,
                    _ => false,
                };
                out.push(a.reply);
                if last {
                    return Ok(out);
                }
            }
        }
        Err(IpvsError::Decode("no end of the kernel's answer".into()))
    }

    /// Send one change; a kernel refusal becomes an operator message.
    pub fn exec(&self, request: &Request) -> Result<(), IpvsError> {
        let seq = self.next_seq();
        self.socket.send(&request.encode(self.family, seq), 0)?;
        for reply in self.receive(seq, request.is_dump(), msg::parse_replies)? {
            if let Reply::Error(e) = reply {
                return Err(IpvsError::Kernel(msg::explain(request, e)));
            }
        }
        Ok(())
    }

    fn dump(&self, request: &Request) -> Result<Vec<Reply>, IpvsError> {
        let seq = self.next_seq();
        self.socket.send(&request.encode(self.family, seq), 0)?;
        let replies = self.receive(seq, true, msg::parse_replies)?;
        if let Some(Reply::Error(e)) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
            return Err(IpvsError::Kernel(msg::explain(request, *e)));
        }
        Ok(replies)
    }

    /// Every address-keyed service (fwmark services are skipped).
    pub fn services(&self) -> Result<Vec<ServiceEntry>, IpvsError> {
        Ok(self
            .dump(&Request::GetServices)?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Service(s) => Some(s),
                _ => None,
            })
            .collect())
    }

    /// The real servers of one service.
    pub fn dests(&self, key: ServiceKey) -> Result<Vec<DestEntry>, IpvsError> {
        Ok(self
            .dump(&Request::GetDests(key))?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Dest(d) => Some(d),
                _ => None,
            })
            .collect())
    }

    /// The whole table as a [`plan::Table`].
    pub fn table(&self) -> Result<Table, IpvsError> {
        let mut table = Table::new();
        for s in self.services()? {
            let dests = self
                .dests(s.attrs.key)?
                .into_iter()
                .map(|d| (d.attrs.addr, d.attrs))
                .collect();
            table.insert(
                s.attrs.key,
                Entry {
                    service: s.attrs,
                    dests,
                },
            );
        }
        Ok(table)
    }
}

/// The IPVS data plane: the socket, a model of the kernel table, and what
/// keepmon owns.
pub struct IpvsPlane {
    conn: Option<Ipvs>,
    /// The kernel table as last read and changed; `None` = read it again.
    kernel: Option<Table>,
    owned: Owned,
    owned_path: Option<PathBuf>,
    wanted_names: BTreeMap<ServiceKey, String>,
    /// The last connection error, logged once.
    last_error: Option<String>,
    reported_foreign: BTreeSet<(ServiceKey, SocketAddr)>,
}

impl IpvsPlane {
    /// `statedir`: where the owned list lives (none in tests that want no file).
    pub fn new(statedir: Option<&Path>) -> IpvsPlane {
        let owned_path = statedir.map(|d| d.join(OWNED_FILE));
        let owned = owned_path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| match serde_json::from_str(&text) {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable {OWNED_FILE}; owning nothing in the kernel until keepmon creates it");
                    None
                }
            })
            .unwrap_or_default();
        IpvsPlane {
            conn: None,
            kernel: None,
            owned,
            owned_path,
            wanted_names: BTreeMap::new(),
            last_error: None,
            reported_foreign: BTreeSet::new(),
        }
    }

    fn connect(&mut self) -> Option<&Ipvs> {
        if self.conn.is_none() {
            match Ipvs::open() {
                Ok(c) => {
                    self.last_error = None;
                    self.conn = Some(c);
                }
                Err(e) => {
                    let text = e.to_string();
                    if self.last_error.as_deref() != Some(&text) {
                        let names: Vec<&str> =
                            self.wanted_names.values().map(String::as_str).collect();
                        tracing::error!(
                            services = %names.join(", "),
                            error = %text,
                            "IPVS data plane unavailable; these virtual services serve nothing until it is \
                             (or serve them with keepmon's proxy or nftables: `dataplane = \"proxy\"` in TOML, \
                             `keepmon_dataplane proxy` in keepalived.conf's global_defs)"
                        );
                        self.last_error = Some(text);
                    }
                    return None;
                }
            }
        }
        self.conn.as_ref()
    }

    fn name_of(&self, key: &ServiceKey) -> String {
        match self.wanted_names.get(key) {
            Some(name) => format!("{name} ({key})"),
            None => key.to_string(),
        }
    }

    /// Bring the kernel to the IPVS part of `desired`. Returns false when
    /// some request failed (the next call reads the kernel again).
    pub fn apply(&mut self, desired: &Desired) -> bool {
        let wanted = plan::wanted(desired);
        if wanted.table.is_empty()
            && self.kernel.is_none()
            && self.owned.services.is_empty()
            && self.owned.dests.is_empty()
        {
            return true; // no IPVS in this config: never open a socket
        }
        self.wanted_names = wanted.names.clone();
        self.sync(&wanted)
    }

    fn sync(&mut self, wanted: &Wanted) -> bool {
        let started = std::time::Instant::now();
        if self.connect().is_none() {
            return false;
        }
        let read_table = self.kernel.is_none();
        if read_table {
            let read = self.conn.as_ref().map(Ipvs::table);
            match read {
                Some(Ok(t)) => {
                    self.owned.adopt(&t, wanted);
                    self.kernel = Some(t);
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "cannot read the kernel's IPVS table");
                    self.conn = None;
                    return false;
                }
                None => return false,
            }
        }
        let kernel = self.kernel.clone().unwrap_or_default();
        for (key, addr) in plan::foreign_dests(&kernel, wanted, &self.owned) {
            if self.reported_foreign.insert((key, addr)) {
                tracing::warn!(service = %self.name_of(&key), real = %addr, "a real server keepmon did not create is left in the kernel");
            }
        }
        let requests = plan::reconcile(&kernel, wanted, &self.owned);
        let ok = self.run(&requests);
        self.save_owned();
        if read_table || !requests.is_empty() {
            tracing::info!(
                requests = requests.len(),
                read_table,
                total_us = started.elapsed().as_micros() as u64,
                "ipvs reconcile"
            );
        }
        ok
    }

    fn run(&mut self, requests: &[Request]) -> bool {
        let mut ok = true;
        let mut failed_services = BTreeSet::new();
        for request in requests {
            let Some(conn) = self.conn.as_ref() else {
                return false;
            };
            if let Request::NewDest(k, _) = request
                && failed_services.contains(k)
            {
                continue; // its service could not be created
            }
            match conn.exec(request) {
                Ok(()) => {
                    if let Some(k) = self.kernel.as_mut() {
                        plan::record(k, request);
                    }
                    self.owned.record(request);
                    tracing::debug!(?request, "ipvs");
                }
                Err(e) => {
                    let key = match request {
                        Request::NewService(s) | Request::SetService(s) => s.key,
                        Request::DelService(k)
                        | Request::NewDest(k, _)
                        | Request::SetDest(k, _)
                        | Request::DelDest(k, _)
                        | Request::GetDests(k) => *k,
                        Request::GetServices => continue,
                    };
                    tracing::error!(service = %self.name_of(&key), error = %e, "IPVS refused a change");
                    ok = false;
                    if matches!(e, IpvsError::Io(_) | IpvsError::Decode(_)) {
                        self.conn = None;
                    }
                    // The model may be wrong now: read the kernel next time.
                    self.kernel = None;
                    if let Request::NewService(_) = request {
                        failed_services.insert(key);
                    }
                }
            }
        }
        ok
    }

    fn save_owned(&self) {
        let Some(path) = &self.owned_path else { return };
        let text = match serde_json::to_string_pretty(&self.owned) {
            Ok(t) => t,
            Err(_) => return,
        };
        let tmp = path.with_extension("json.tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::warn!(error = %e, path = %path.display(), "cannot save the IPVS ownership list");
        }
    }

    /// Stop: remove what keepmon owns when `remove`, else leave the kernel
    /// table as it is (traffic keeps flowing across a restart).
    pub fn stop(&mut self, remove: bool) {
        if !remove || (self.owned.services.is_empty() && self.owned.dests.is_empty()) {
            return;
        }
        if self.connect().is_none() {
            return;
        }
        let table = match self.conn.as_ref().map(Ipvs::table) {
            Some(Ok(t)) => t,
            _ => return,
        };
        self.kernel = Some(table.clone());
        let requests = plan::teardown(&table, &self.owned);
        tracing::info!(count = requests.len(), "removing keepmon's IPVS entries");
        self.run(&requests);
        self.save_owned();
    }

    /// Kernel connection counters per real server of the wanted services:
    /// (ActiveConn, InActConn) as ipvsadm shows them.
    pub fn conn_counts(&self) -> BTreeMap<(String, SocketAddr), Conns> {
        let mut out = BTreeMap::new();
        let Some(conn) = self.conn.as_ref() else {
            return out;
        };
        for (key, name) in &self.wanted_names {
            if let Ok(dests) = conn.dests(*key) {
                for d in dests {
                    out.insert(
                        (name.clone(), d.attrs.addr),
                        Conns {
                            active: u64::from(d.active_conns),
                            inactive: u64::from(d.inactive_conns),
                            total: d.stats.conns,
                            failures: 0,
                            bytes_in: d.stats.inbytes,
                            bytes_out: d.stats.outbytes,
                            ..Conns::default()
                        },
                    );
                }
            }
        }
        out
    }
}
