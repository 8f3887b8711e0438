//! Backend pickers for the userspace proxy (rr, wrr, lc, wlc, sh, twos, mh, haproxy-map, haproxy-consistent); never does IO, never reads the clock, never blocks.
//!
//! A [`Picker`] is built once per table change from the scheduler and the
//! backend list and then shared read-only by every connection. The only
//! mutable state is one atomic cursor (rr, wrr, and the tie-breaking start
//! of lc/wlc) and the thread-local random generator of `fastrand` (twos), so
//! picking takes no lock. Load (active connections) is passed in by the
//! caller, which keeps the counters next to the sockets.
//!
//! Behaviour, per scheduler (weight 0 = never picked for new connections):
//!
//! * `rr`: every backend with weight > 0 in turn, weights otherwise ignored.
//! * `wrr`: nginx's smooth weighted round robin, precomputed as one period of
//!   its sequence (weights 5,1,1 give `a a b a c a a`), then walked with the
//!   cursor. Weights are divided by their gcd; periods longer than
//!   [`MAX_WRR_PERIOD`] are scaled down proportionally (an approximation
//!   that only large, coprime weights hit). Building the period costs
//!   O(period × backends), once per table change, off the connection path.
//! * `lc`: fewest active connections; ties go round robin (HAProxy `leastconn`).
//! * `wlc`: smallest `(active + 1) / weight`, compared exactly by
//!   cross-multiplication; ties round robin. The `+ 1` makes idle backends
//!   fill by weight (HAProxy's `fwlc` key does the same).
//! * `sh`: weighted rendezvous (highest random weight) hashing of the client
//!   IP: each backend scores `weight / -ln(h)` where `h` is a stable hash of
//!   (client IP, backend address) in (0, 1); the highest score wins. Adding
//!   or removing one backend moves only the clients that pick, or picked, that
//!   backend (~1/N). The hash is fixed (MurmurHash3's finaliser),
//!   so two directors map a client to the same backend. O(N) per pick.
//! * `twos`: power of two choices: two distinct backends drawn uniformly, the
//!   one with the smaller `(active + 1) / weight` wins (the first on a tie).
//! * `mh`: Maglev hashing (Eisenbud et al., NSDI 2016; IPVS's `mh`): a
//!   lookup table of [`MAGLEV_TABLE_SIZE`] (prime) slots is filled from each
//!   backend's own permutation of the slots (offset and skip from stable
//!   hashes of its address), backends taking turns in proportion to their
//!   weights; a client's slot is a stable hash of its IP. Built once per
//!   table change (O(table size)); O(1) per pick. The table depends only on
//!   the set of backends and weights, never on their order or on which
//!   director built it, so directors behind ECMP routers send a client to
//!   the same backend; removing a backend moves only the slots it held (and
//!   a few more). With `mh-port` the client's port is hashed too (one
//!   client's connections spread like many clients'). A retry (an excluded
//!   backend) rehashes the client with a new seed only with `mh-fallback`,
//!   as in IPVS; without it the connection fails rather than go to a
//!   server another director would not pick.
//! * `haproxy-map`: HAProxy 2.6's map-based hashing (`hash-type
//!   map-based`, its default for `balance source|uri|url_param|hdr`). Each
//!   eligible backend's weight is divided by the weight unit (HAProxy's
//!   `wmult`: the gcd of every configured server's weight, fixed at
//!   startup, so a server going down does not rescale the others); the map
//!   has one slot per unit of the summed weights, filled in config order by
//!   HAProxy's `recalc_server_map` (each slot: every backend adds its
//!   weight to its score, the first with the highest `(score + total) /
//!   total` takes the slot and loses `total`). A key (HAProxy's 32-bit hash
//!   of the client address, URI, parameter or header value, see
//!   [`crate::lb::haproxy_hash`]) picks slot `hash % total`. No key (the
//!   parameter or header is absent) walks the map round robin, as HAProxy
//!   does. A retry walks on from the key's slot to the next backend not
//!   yet tried (HAProxy's map ignores the server to avoid and would try the
//!   same one again).
//! * `haproxy-consistent`: HAProxy 2.6's `hash-type consistent`: a ring of
//!   `weight × 16` points per eligible backend, point `j` of the server
//!   with id `n` (its place in the config's list, from 1) at
//!   `avalanche(n × 4096 + j)`; a key goes to the point nearest to it on
//!   the ring (the one before on a tie), as HAProxy's `chash_get_server_hash`
//!   finds it; a retry takes the following points' servers. No key walks
//!   the ring's points in turn.
//!
//! Retries pass the indices already tried in `excluded`; they are never
//! picked again.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::model::LbScheduler;
use crate::lb::haproxy_hash;

/// The longest precomputed smooth-wrr period (entries of 4 bytes each).
pub const MAX_WRR_PERIOD: usize = 1 << 16;

/// Slots of a Maglev lookup table: a prime well above any backend count
/// (the paper's M = 65537; 256 KiB per virtual service).
pub const MAGLEV_TABLE_SIZE: usize = 65_537;

/// How many rehashes a Maglev retry tries before scanning in order.
const MAGLEV_FALLBACK_TRIES: u64 = 32;

/// One real server as the data plane sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    pub addr: SocketAddr,
    /// Relative share of new connections; 0 = none (drain).
    pub weight: u32,
}

/// Chooses a backend for each new connection. Cheap to share (`&self` only).
#[derive(Debug)]
pub struct Picker {
    scheduler: LbScheduler,
    backends: Box<[Backend]>,
    /// Indices of backends with weight > 0, in table order.
    eligible: Box<[u32]>,
    /// One period of the smooth-wrr sequence (indices); wrr only.
    wrr_period: Box<[u32]>,
    /// Stable per-backend hash keys; sh only.
    keys: Box<[u64]>,
    /// sh: all eligible weights equal, so the raw hash ranks like the score.
    uniform_weights: bool,
    /// mh: the Maglev lookup table (backend index per slot).
    maglev: Box<[u32]>,
    /// haproxy-map: HAProxy's server map (backend index per slot).
    haproxy_map: Box<[u32]>,
    /// haproxy-consistent: the ring's points (key, backend index), by key.
    haproxy_ring: Box<[(u32, u32)]>,
    cursor: AtomicUsize,
}

impl Picker {
    /// A picker whose weight unit (`haproxy-map` only) is the gcd of these
    /// backends' weights.
    pub fn new(scheduler: LbScheduler, backends: &[Backend]) -> Picker {
        let unit = backends
            .iter()
            .map(|backend| u64::from(backend.weight))
            .fold(0, gcd);
        let config = ConfigServers {
            weight_unit: u32::try_from(unit).unwrap_or(1),
            ids: backends
                .iter()
                .enumerate()
                .rev()
                .map(|(i, b)| (b.addr, u32::try_from(i + 1).unwrap_or(u32::MAX)))
                .collect(),
        };
        Picker::with_config(scheduler, backends, &config)
    }

    /// A picker for HAProxy's hashing that takes the weight unit and the
    /// server ids from the config's list (see [`ConfigServers`]); other
    /// schedulers ignore them.
    pub fn with_config(
        scheduler: LbScheduler,
        backends: &[Backend],
        config: &ConfigServers,
    ) -> Picker {
        let weight_unit = config.weight_unit;
        let backends: Box<[Backend]> = backends.into();
        // Tables of more than u32::MAX backends cannot exist in practice;
        // `take` keeps the cast below lossless regardless.
        let eligible: Box<[u32]> = backends
            .iter()
            .enumerate()
            .take(u32::MAX as usize)
            .filter(|(_, backend)| backend.weight > 0)
            .map(|(index, _)| index as u32)
            .collect();
        let wrr_period = if scheduler == LbScheduler::WeightedRoundRobin {
            smooth_wrr_period(&backends, &eligible)
        } else {
            Box::default()
        };
        let keys = if scheduler == LbScheduler::SourceHash {
            backends
                .iter()
                .map(|backend| addr_key(backend.addr))
                .collect()
        } else {
            Box::default()
        };
        let uniform_weights = eligible
            .windows(2)
            .all(|pair| backends[pair[0] as usize].weight == backends[pair[1] as usize].weight);
        let maglev = if matches!(scheduler, LbScheduler::Maglev(_)) {
            maglev_table(&backends, &eligible, MAGLEV_TABLE_SIZE)
        } else {
            Box::default()
        };
        let (haproxy_map, haproxy_ring) = match scheduler {
            LbScheduler::Haproxy(hash) if hash.consistent => (
                Box::default(),
                haproxy_consistent_ring(&backends, &eligible, &config.ids),
            ),
            LbScheduler::Haproxy(_) => (
                haproxy_server_map(&backends, &eligible, weight_unit),
                Box::default(),
            ),
            _ => (Box::default(), Box::default()),
        };
        Picker {
            scheduler,
            backends,
            eligible,
            wrr_period,
            keys,
            uniform_weights,
            maglev,
            haproxy_map,
            haproxy_ring,
            cursor: AtomicUsize::new(0),
        }
    }

    /// The key [`Picker::pick_keyed`] takes for a client address: HAProxy's
    /// source hash for `haproxy-map`, else `ip_key`.
    pub fn client_key(&self, ip: IpAddr) -> u64 {
        match self.scheduler {
            LbScheduler::Haproxy(hash) => u64::from(haproxy_hash::source_hash(hash, ip)),
            _ => ip_key(ip),
        }
    }

    /// The key [`Picker::pick_keyed`] takes for a URI, URL parameter or
    /// header value: HAProxy's hash for `haproxy-map`, else [`hash_bytes`].
    pub fn bytes_key(&self, bytes: &[u8]) -> u64 {
        match self.scheduler {
            LbScheduler::Haproxy(hash) => u64::from(haproxy_hash::hash_bytes(hash, bytes)),
            _ => hash_bytes(bytes),
        }
    }

    /// The key when a request lacks the hashed part: none for
    /// `haproxy-map` (HAProxy then goes round robin), else the client's.
    pub fn missing_key(&self, ip: IpAddr) -> Option<u64> {
        match self.scheduler {
            LbScheduler::Haproxy(_) => None,
            _ => Some(ip_key(ip)),
        }
    }

    pub fn scheduler(&self) -> LbScheduler {
        self.scheduler
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Whether any backend can take new connections.
    pub fn has_eligible(&self) -> bool {
        !self.eligible.is_empty()
    }

    /// Picks a backend index for a new connection from `client` (any
    /// port: only `mh-port` reads it; see [`Picker::pick_flow`]).
    ///
    /// `active(i)` returns the live connection count of backend `i`;
    /// `excluded` lists indices already tried for this connection. Returns
    /// `None` when no backend with weight > 0 is left.
    pub fn pick(
        &self,
        client: IpAddr,
        active: impl Fn(usize) -> u64,
        excluded: &[usize],
    ) -> Option<usize> {
        self.pick_keyed(Some(self.client_key(client)), active, excluded)
    }

    /// [`Picker::pick`] for a client address and port: `mh` with its
    /// `mh-port` flag hashes the port too.
    pub fn pick_flow(
        &self,
        client: SocketAddr,
        active: impl Fn(usize) -> u64,
        excluded: &[usize],
    ) -> Option<usize> {
        let key = match self.scheduler {
            LbScheduler::Maglev(flags) if flags.port => mix64(
                ip_key(client.ip()) ^ u64::from(client.port()).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
            _ => self.client_key(client.ip()),
        };
        self.pick_keyed(Some(key), active, excluded)
    }

    /// Like [`Picker::pick`], with `key` in place of the client address's
    /// hash for the hashing schedulers (sh, mh, haproxy-map): http mode's
    /// hash of a URI, header or URL parameter ([`Picker::bytes_key`]).
    /// Other schedulers ignore it. No key: the hashing schedulers go round
    /// robin (over the map for haproxy-map).
    pub fn pick_keyed(
        &self,
        key: Option<u64>,
        active: impl Fn(usize) -> u64,
        excluded: &[usize],
    ) -> Option<usize> {
        if !excluded.is_empty()
            && self
                .eligible
                .iter()
                .all(|&index| excluded.contains(&(index as usize)))
        {
            return None;
        }
        let key = match (key, self.scheduler) {
            (Some(key), _) => key,
            (None, LbScheduler::Haproxy(hash)) if hash.consistent => {
                return self.pick_haproxy_ring_rr(excluded);
            }
            (None, LbScheduler::Haproxy(_)) => return self.pick_haproxy_map_rr(excluded),
            (None, LbScheduler::SourceHash | LbScheduler::Maglev(_)) => {
                return self.pick_round_robin(excluded);
            }
            // The other schedulers read no key.
            (None, _) => 0,
        };
        match self.scheduler {
            LbScheduler::RoundRobin => self.pick_round_robin(excluded),
            LbScheduler::WeightedRoundRobin => self.pick_weighted_round_robin(excluded),
            LbScheduler::LeastConnection => self.pick_least_loaded(active, excluded, false),
            LbScheduler::WeightedLeastConnection => self.pick_least_loaded(active, excluded, true),
            LbScheduler::SourceHash => self.pick_source_hash(key, excluded),
            LbScheduler::TwoChoices => self.pick_two_choices(active, excluded),
            LbScheduler::Maglev(flags) => self.pick_maglev(key, flags.fallback, excluded),
            LbScheduler::Haproxy(hash) if hash.consistent => self.pick_haproxy_ring(key, excluded),
            LbScheduler::Haproxy(_) => self.pick_haproxy_map(key, excluded),
        }
    }

    fn pick_haproxy_map(&self, key: u64, excluded: &[usize]) -> Option<usize> {
        let size = self.haproxy_map.len();
        if size == 0 {
            return None;
        }
        // Keys are HAProxy's 32-bit hashes; `% size` is its `hash % tot_weight`.
        let slot = (key % size as u64) as usize;
        (0..size)
            .map(|step| self.haproxy_map[(slot + step) % size] as usize)
            .find(|index| !excluded.contains(index))
    }

    /// HAProxy's `chash_get_server_hash`: the point nearest to the key
    /// (the one before on a tie, the ring wrapping around), then the
    /// following points while their server is excluded.
    fn pick_haproxy_ring(&self, key: u64, excluded: &[usize]) -> Option<usize> {
        let ring = &self.haproxy_ring;
        let size = ring.len();
        if size == 0 {
            return None;
        }
        // Keys are HAProxy's 32-bit hashes.
        let hash = key as u32;
        let next = ring.partition_point(|&(point, _)| point < hash) % size;
        let prev = (next + size - 1) % size;
        let after = ring[next].0.wrapping_sub(hash);
        let before = hash.wrapping_sub(ring[prev].0);
        let start = if before <= after { prev } else { next };
        (0..size)
            .map(|step| ring[(start + step) % size].1 as usize)
            .find(|index| !excluded.contains(index))
    }

    /// No key on the ring: its points in turn.
    fn pick_haproxy_ring_rr(&self, excluded: &[usize]) -> Option<usize> {
        let size = self.haproxy_ring.len();
        if size == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % size;
        (0..size)
            .map(|step| self.haproxy_ring[(start + step) % size].1 as usize)
            .find(|index| !excluded.contains(index))
    }

    /// HAProxy's `map_get_server_rr`: the map's slots in turn.
    fn pick_haproxy_map_rr(&self, excluded: &[usize]) -> Option<usize> {
        let size = self.haproxy_map.len();
        if size == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % size;
        (0..size)
            .map(|step| self.haproxy_map[(start + step) % size] as usize)
            .find(|index| !excluded.contains(index))
    }

    fn pick_maglev(&self, key: u64, fallback: bool, excluded: &[usize]) -> Option<usize> {
        let size = self.maglev.len() as u64;
        if size == 0 {
            return None;
        }
        let tries = if fallback { MAGLEV_FALLBACK_TRIES } else { 1 };
        for seed in 0..tries {
            let slot = mix64(key ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % size;
            let index = self.maglev[slot as usize] as usize;
            if !excluded.contains(&index) {
                return Some(index);
            }
        }
        if !fallback {
            return None;
        }
        // Many backends excluded: any remaining one, in table order.
        self.eligible
            .iter()
            .map(|&index| index as usize)
            .find(|index| !excluded.contains(index))
    }

    fn pick_round_robin(&self, excluded: &[usize]) -> Option<usize> {
        let count = self.eligible.len();
        if count == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % count;
        (0..count)
            .map(|step| self.eligible[(start + step) % count] as usize)
            .find(|index| !excluded.contains(index))
    }

    fn pick_weighted_round_robin(&self, excluded: &[usize]) -> Option<usize> {
        let period = self.wrr_period.len();
        if period == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % period;
        // Bounded by the period; only the retry path (excluded non-empty) scans.
        (0..period)
            .map(|step| self.wrr_period[(start + step) % period] as usize)
            .find(|index| !excluded.contains(index))
    }

    fn pick_least_loaded(
        &self,
        active: impl Fn(usize) -> u64,
        excluded: &[usize],
        weighted: bool,
    ) -> Option<usize> {
        let count = self.eligible.len();
        if count == 0 {
            return None;
        }
        // A rotating start makes ties go round robin.
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % count;
        let mut best: Option<(usize, u64)> = None;
        for step in 0..count {
            let index = self.eligible[(start + step) % count] as usize;
            if excluded.contains(&index) {
                continue;
            }
            let load = if weighted {
                active(index).saturating_add(1)
            } else {
                active(index)
            };
            let better = match best {
                None => true,
                Some((best_index, best_load)) if weighted => lighter(
                    load,
                    self.backends[index].weight,
                    best_load,
                    self.backends[best_index].weight,
                ),
                Some((_, best_load)) => load < best_load,
            };
            if better {
                best = Some((index, load));
            }
        }
        best.map(|(index, _)| index)
    }

    fn pick_source_hash(&self, client_key: u64, excluded: &[usize]) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for &index in self.eligible.iter() {
            let index = index as usize;
            if excluded.contains(&index) {
                continue;
            }
            let hash = mix64(client_key ^ self.keys[index]);
            let score = if self.uniform_weights {
                // Monotonic in the hash, so it ranks exactly like the weighted score.
                hash as f64
            } else {
                // (hash + 0.5) / 2^64 lies in (0, 1), so -ln is finite and > 0.
                let unit = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                f64::from(self.backends[index].weight) / -unit.ln()
            };
            if best.is_none_or(|(_, best_score)| score > best_score) {
                best = Some((index, score));
            }
        }
        best.map(|(index, _)| index)
    }

    fn pick_two_choices(&self, active: impl Fn(usize) -> u64, excluded: &[usize]) -> Option<usize> {
        let (first, second) = if excluded.is_empty() {
            let count = self.eligible.len();
            match count {
                0 => return None,
                1 => return Some(self.eligible[0] as usize),
                _ => {}
            }
            let first = fastrand::usize(..count);
            let mut second = fastrand::usize(..count - 1);
            if second >= first {
                second += 1;
            }
            (
                self.eligible[first] as usize,
                self.eligible[second] as usize,
            )
        } else {
            // Retry path: allocating here is fine.
            let candidates: Vec<usize> = self
                .eligible
                .iter()
                .map(|&index| index as usize)
                .filter(|index| !excluded.contains(index))
                .collect();
            match candidates.len() {
                0 => return None,
                1 => return Some(candidates[0]),
                count => {
                    let first = fastrand::usize(..count);
                    let mut second = fastrand::usize(..count - 1);
                    if second >= first {
                        second += 1;
                    }
                    (candidates[first], candidates[second])
                }
            }
        };
        let first_load = active(first).saturating_add(1);
        let second_load = active(second).saturating_add(1);
        if lighter(
            second_load,
            self.backends[second].weight,
            first_load,
            self.backends[first].weight,
        ) {
            Some(second)
        } else {
            Some(first)
        }
    }
}

/// `load / weight < other_load / other_weight`, exactly (weights > 0).
fn lighter(load: u64, weight: u32, other_load: u64, other_weight: u32) -> bool {
    u128::from(load) * u128::from(other_weight) < u128::from(other_load) * u128::from(weight)
}

/// One period of nginx's smooth weighted round robin over `eligible`.
fn smooth_wrr_period(backends: &[Backend], eligible: &[u32]) -> Box<[u32]> {
    let mut weights: Vec<u64> = eligible
        .iter()
        .map(|&index| u64::from(backends[index as usize].weight))
        .collect();
    let divisor = weights.iter().copied().fold(0, gcd);
    if divisor > 1 {
        weights.iter_mut().for_each(|weight| *weight /= divisor);
    }
    let total: u64 = weights.iter().sum();
    let limit = MAX_WRR_PERIOD as u64;
    if total > limit {
        weights
            .iter_mut()
            .for_each(|weight| *weight = (*weight * limit / total).max(1));
    }
    let total: i64 = weights.iter().map(|&weight| weight as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut period = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (slot, weight) in weights.iter().enumerate() {
            current[slot] += *weight as i64;
            // Strictly greater: the first maximum wins, as in nginx.
            if current[slot] > current[best] {
                best = slot;
            }
        }
        current[best] -= total;
        period.push(eligible[best]);
    }
    period.into_boxed_slice()
}

/// What HAProxy's hashing takes from the config's whole server list, not
/// from the servers usable now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigServers {
    /// `haproxy-map`'s weight unit (see [`weight_unit`]); 0 counts as 1.
    pub weight_unit: u32,
    /// `haproxy-consistent`'s server ids (HAProxy's `puid`): the place in
    /// the config's list, from 1. Backends not listed take ids after the
    /// largest.
    pub ids: std::collections::BTreeMap<SocketAddr, u32>,
}

/// Points per unit of weight on HAProxy's consistent ring
/// (`BE_WEIGHT_SCALE`).
const RING_POINTS_PER_WEIGHT: u64 = 16;

/// The point keys of one server id span this many (HAProxy's
/// `SRV_EWGHT_RANGE`, 256 × 16).
const RING_ID_SPAN: u32 = 4096;

/// The most points a ring holds; larger totals are scaled down
/// proportionally (HAProxy's weights stop at 256, 4096 points a server).
pub const MAX_HAPROXY_RING: u64 = 1 << 20;

/// HAProxy's consistent-hash ring over the eligible backends.
fn haproxy_consistent_ring(
    backends: &[Backend],
    eligible: &[u32],
    ids: &std::collections::BTreeMap<SocketAddr, u32>,
) -> Box<[(u32, u32)]> {
    let total: u64 = eligible
        .iter()
        .map(|&index| u64::from(backends[index as usize].weight) * RING_POINTS_PER_WEIGHT)
        .sum();
    let mut next_id = ids.values().copied().max().unwrap_or(0);
    let mut ring = Vec::new();
    for &index in eligible {
        let backend = backends[index as usize];
        let id = match ids.get(&backend.addr) {
            Some(&id) => id,
            None => {
                next_id = next_id.saturating_add(1);
                next_id
            }
        };
        let mut points = u64::from(backend.weight) * RING_POINTS_PER_WEIGHT;
        if total > MAX_HAPROXY_RING {
            points = (points * MAX_HAPROXY_RING / total).max(1);
        }
        for j in 0..points {
            // Wrapping as HAProxy's int arithmetic does (j < 4096 there).
            let seed = id.wrapping_mul(RING_ID_SPAN).wrapping_add(j as u32);
            ring.push((haproxy_hash::avalanche(seed), index));
        }
    }
    // Stable: equal keys keep insertion order, as HAProxy's tree keeps
    // duplicates.
    ring.sort_by_key(|&(point, _)| point);
    ring.into_boxed_slice()
}

/// HAProxy's weight unit (`wmult`) of a backend's configured weights: the
/// gcd of the non-zero ones, 1 when there are none.
pub fn weight_unit(weights: impl IntoIterator<Item = u32>) -> u32 {
    let unit = weights.into_iter().map(u64::from).fold(0, gcd);
    u32::try_from(unit).ok().filter(|&u| u > 0).unwrap_or(1)
}

/// The longest HAProxy server map built (slots of 4 bytes each). HAProxy's
/// own is bounded by its weights (at most 256 per server); keepmon's
/// weights are wider, so larger totals are scaled down proportionally
/// (HAProxy could not hold such weights at all).
pub const MAX_HAPROXY_MAP: usize = 1 << 20;

/// HAProxy's `recalc_server_map` over the eligible backends, in order:
/// effective weights `ceil(weight / unit)`, one slot per unit of their sum;
/// per slot, every backend adds its effective weight to its score and the
/// first one whose `(score + total) / total` is highest takes the slot and
/// gives back `total`.
fn haproxy_server_map(backends: &[Backend], eligible: &[u32], unit: u32) -> Box<[u32]> {
    let unit = u64::from(unit.max(1));
    let mut weights: Vec<i64> = eligible
        .iter()
        .map(|&index| {
            let weight = u64::from(backends[index as usize].weight);
            // Below 2^32 / 1: fits i64.
            weight.div_ceil(unit) as i64
        })
        .collect();
    let total: i64 = weights.iter().sum();
    if total == 0 {
        return Box::default();
    }
    let limit = MAX_HAPROXY_MAP as i64;
    if total > limit {
        weights
            .iter_mut()
            .for_each(|weight| *weight = (*weight * limit / total).max(1));
    }
    let total: i64 = weights.iter().sum();
    if total == 1 {
        return eligible[..1].into();
    }
    let mut scores = vec![0i64; weights.len()];
    let mut map = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best: Option<(usize, i64)> = None;
        for (slot, weight) in weights.iter().enumerate() {
            scores[slot] += weight;
            // Division truncating towards zero, as C's on HAProxy's ints.
            let level = (scores[slot] + total) / total;
            if best.is_none_or(|(_, max)| level > max) {
                best = Some((slot, level));
            }
        }
        // `weights` is not empty (total > 1), so a best was found.
        let Some((best, _)) = best else { break };
        scores[best] -= total;
        map.push(eligible[best]);
    }
    map.into_boxed_slice()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// MurmurHash3's 64-bit finaliser: a fixed, well-mixing permutation.
fn mix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

/// The Maglev lookup table: each eligible backend walks its own permutation
/// of the slots (`offset + j * skip mod size`, both from hashes of its
/// address) and claims the next free slot on each of its turns; backends
/// take `weight / gcd` turns per round, in address order, so the table is
/// the same whatever order the backends were listed in.
fn maglev_table(backends: &[Backend], eligible: &[u32], size: usize) -> Box<[u32]> {
    if eligible.is_empty() || size == 0 {
        return Box::default();
    }
    let mut members: Vec<u32> = eligible.to_vec();
    members.sort_by_key(|&index| backends[index as usize].addr);
    let divisor = members
        .iter()
        .map(|&index| u64::from(backends[index as usize].weight))
        .fold(0, gcd);
    let size64 = size as u64;
    let walks: Vec<(u64, u64, u64)> = members
        .iter()
        .map(|&index| {
            let key = addr_key(backends[index as usize].addr);
            let offset = mix64(key ^ 0x6d61_676c_6576_0001) % size64;
            let skip = mix64(key ^ 0x6d61_676c_6576_0002) % (size64 - 1) + 1;
            let turns = (u64::from(backends[index as usize].weight) / divisor.max(1)).max(1);
            (offset, skip, turns)
        })
        .collect();
    let mut next: Vec<u64> = vec![0; members.len()];
    let mut table: Vec<u32> = vec![u32::MAX; size];
    let mut filled = 0usize;
    'fill: loop {
        for (member, &(offset, skip, turns)) in walks.iter().enumerate() {
            for _ in 0..turns {
                // `size` is prime and 0 < skip < size, so each walk visits
                // every slot once in `size` steps: a free one is found.
                let slot = loop {
                    let candidate = (offset + next[member] * skip) % size64;
                    next[member] += 1;
                    if table[candidate as usize] == u32::MAX {
                        break candidate as usize;
                    }
                };
                table[slot] = members[member];
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
        }
    }
    table.into_boxed_slice()
}

/// A stable key for a client IP; IPv4-mapped IPv6 hashes like the IPv4 address.
pub(crate) fn ip_key(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => mix64(u64::from(u32::from(v4)) ^ 0x4_0000_0000),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            mix64((bits as u64) ^ mix64((bits >> 64) as u64 ^ 0x6_0000_0000))
        }
    }
}

/// A stable 64-bit hash of `bytes` (FNV-1a, then MurmurHash3's finaliser):
/// the same on every director and every run, for [`Picker::pick_keyed`].
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(hash)
}

fn addr_key(addr: SocketAddr) -> u64 {
    mix64(
        ip_key(addr.ip()).wrapping_add(u64::from(addr.port()).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    )
}

#[cfg(test)]
mod tests {
    use crate::config::model::MhFlags;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    use super::*;

    fn backends(weights: &[u32]) -> Vec<Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Backend {
                addr: SocketAddr::from(([10, 0, 0, index as u8 + 1], 80)),
                weight,
            })
            .collect()
    }

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + n))
    }

    const IDLE: fn(usize) -> u64 = |_| 0;
    const MH: LbScheduler = LbScheduler::Maglev(MhFlags {
        port: false,
        fallback: true,
    });

    /// Picks `count` times with no load and returns the sequence as letters.
    fn sequence(scheduler: LbScheduler, weights: &[u32], count: usize) -> String {
        let picker = Picker::new(scheduler, &backends(weights));
        (0..count)
            .map(|_| match picker.pick(client(1), IDLE, &[]) {
                Some(index) => char::from(b'a' + index as u8),
                None => '-',
            })
            .collect()
    }

    #[test]
    fn rr_cycles_through_backends_with_weight() {
        assert_eq!(sequence(LbScheduler::RoundRobin, &[1, 1, 1], 7), "abcabca");
        assert_eq!(sequence(LbScheduler::RoundRobin, &[5, 0, 1], 4), "acac");
        assert_eq!(sequence(LbScheduler::RoundRobin, &[0, 0], 2), "--");
        assert_eq!(sequence(LbScheduler::RoundRobin, &[], 1), "-");
    }

    #[test]
    fn wrr_is_nginx_smooth_weighted_round_robin() {
        assert_eq!(
            sequence(LbScheduler::WeightedRoundRobin, &[5, 1, 1], 14),
            "aabacaaaabacaa"
        );
        // Dividing by the gcd keeps the sequence.
        assert_eq!(
            sequence(LbScheduler::WeightedRoundRobin, &[50, 10, 10], 7),
            "aabacaa"
        );
        assert_eq!(
            sequence(LbScheduler::WeightedRoundRobin, &[1, 2], 6),
            "babbab"
        );
        assert_eq!(
            sequence(LbScheduler::WeightedRoundRobin, &[3, 0, 1], 4),
            "aaca"
        );
        assert_eq!(sequence(LbScheduler::WeightedRoundRobin, &[0], 2), "--");
    }

    #[test]
    fn wrr_with_huge_weights_keeps_proportions() {
        let picker = Picker::new(
            LbScheduler::WeightedRoundRobin,
            &backends(&[3_000_000, 1_000_001]),
        );
        assert!(picker.wrr_period.len() <= MAX_WRR_PERIOD);
        let mut counts = [0usize; 2];
        for _ in 0..picker.wrr_period.len() {
            counts[picker.pick(client(1), IDLE, &[]).unwrap()] += 1;
        }
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((ratio - 3.0).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn every_scheduler_skips_excluded_and_weight_zero() {
        let schedulers = [
            LbScheduler::RoundRobin,
            LbScheduler::WeightedRoundRobin,
            LbScheduler::LeastConnection,
            LbScheduler::WeightedLeastConnection,
            LbScheduler::SourceHash,
            LbScheduler::TwoChoices,
        ];
        for scheduler in schedulers {
            let picker = Picker::new(scheduler, &backends(&[2, 0, 3, 1]));
            for n in 0..200 {
                let picked = picker.pick(client(n), IDLE, &[0, 3]);
                assert_eq!(picked, Some(2), "{scheduler}");
                let picked = picker.pick(client(n), IDLE, &[]).unwrap();
                assert_ne!(picked, 1, "{scheduler} picked a weight-0 backend");
            }
            assert_eq!(
                picker.pick(client(1), IDLE, &[0, 2, 3]),
                None,
                "{scheduler}"
            );
            let empty = Picker::new(scheduler, &[]);
            assert_eq!(empty.pick(client(1), IDLE, &[]), None, "{scheduler}");
        }
    }

    #[test]
    fn lc_picks_the_least_loaded_and_round_robins_ties() {
        let picker = Picker::new(LbScheduler::LeastConnection, &backends(&[1, 1, 1]));
        let load = [5u64, 2, 7];
        for _ in 0..10 {
            assert_eq!(picker.pick(client(1), |i| load[i], &[]), Some(1));
        }
        assert_eq!(picker.pick(client(1), |i| load[i], &[1]), Some(0));
        // Equal loads: every backend in turn.
        assert_eq!(
            sequence(LbScheduler::LeastConnection, &[1, 1, 1], 6),
            "abcabc"
        );
        // lc ignores weights other than 0.
        let picker = Picker::new(LbScheduler::LeastConnection, &backends(&[100, 1]));
        assert_eq!(picker.pick(client(1), |i| [3, 2][i], &[]), Some(1));
    }

    #[test]
    fn wlc_weighs_the_load() {
        let picker = Picker::new(LbScheduler::WeightedLeastConnection, &backends(&[3, 1]));
        // (9+1)/3 < (3+1)/1
        assert_eq!(picker.pick(client(1), |i| [9, 3][i], &[]), Some(0));
        // (12+1)/3 > (3+1)/1
        assert_eq!(picker.pick(client(1), |i| [12, 3][i], &[]), Some(1));
        // Filling from idle by always adding one connection to the pick
        // ends in proportion to the weights.
        let picker = Picker::new(LbScheduler::WeightedLeastConnection, &backends(&[3, 1, 2]));
        let mut load = [0u64; 3];
        for _ in 0..60 {
            let index = picker.pick(client(1), |i| load[i], &[]).unwrap();
            load[index] += 1;
        }
        assert_eq!(load, [30, 10, 20]);
    }

    #[test]
    fn twos_prefers_the_less_loaded_of_two() {
        let picker = Picker::new(LbScheduler::TwoChoices, &backends(&[1, 1]));
        for _ in 0..50 {
            assert_eq!(picker.pick(client(1), |i| [4, 1][i], &[]), Some(1));
        }
        // With three, the most loaded can only win when drawn with itself, which never happens.
        let picker = Picker::new(LbScheduler::TwoChoices, &backends(&[1, 1, 1]));
        for _ in 0..200 {
            assert_ne!(picker.pick(client(1), |i| [1, 1, 9][i], &[]), Some(2));
        }
        // Weight-aware: filling from idle ends near the weights.
        let picker = Picker::new(LbScheduler::TwoChoices, &backends(&[1, 4]));
        let mut load = [0u64; 2];
        for _ in 0..500 {
            let index = picker.pick(client(1), |i| load[i], &[]).unwrap();
            load[index] += 1;
        }
        assert!((95..=105).contains(&load[0]), "{load:?}");
    }

    #[test]
    fn twos_spreads_idle_load_over_all_backends() {
        let picker = Picker::new(LbScheduler::TwoChoices, &backends(&[1, 1, 1, 1]));
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[picker.pick(client(1), IDLE, &[]).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&count| (800..=1200).contains(&count)),
            "{counts:?}"
        );
    }

    fn sh_assignments(picker: &Picker, clients: u32) -> Vec<SocketAddr> {
        (0..clients)
            .map(|n| picker.backends()[picker.pick(client(n), IDLE, &[]).unwrap()].addr)
            .collect()
    }

    #[test]
    fn sh_is_stable_and_spreads_clients() {
        let table = backends(&[1; 8]);
        let picker = Picker::new(LbScheduler::SourceHash, &table);
        let first = sh_assignments(&picker, 8000);
        assert_eq!(
            first,
            sh_assignments(&picker, 8000),
            "same client, same backend"
        );
        // A new picker (another director, or after a restart) agrees.
        assert_eq!(
            first,
            sh_assignments(&Picker::new(LbScheduler::SourceHash, &table), 8000)
        );
        let mut counts: HashMap<SocketAddr, usize> = HashMap::new();
        for addr in &first {
            *counts.entry(*addr).or_default() += 1;
        }
        assert_eq!(counts.len(), 8);
        assert!(
            counts.values().all(|&count| (850..=1150).contains(&count)),
            "{counts:?}"
        );
    }

    #[test]
    fn sh_moves_only_the_clients_of_a_changed_backend() {
        let clients = 10_000;
        let mut table = backends(&[1; 10]);
        let before = sh_assignments(&Picker::new(LbScheduler::SourceHash, &table), clients);

        // Removing one backend moves exactly its own clients.
        let removed = table.remove(3);
        let after = sh_assignments(&Picker::new(LbScheduler::SourceHash, &table), clients);
        for (old, new) in before.iter().zip(&after) {
            if *old != removed.addr {
                assert_eq!(old, new);
            }
        }

        // Adding one moves about 1/N of the clients, all to the new backend.
        table.push(Backend {
            addr: SocketAddr::from(([10, 0, 0, 99], 80)),
            weight: 1,
        });
        let added = sh_assignments(&Picker::new(LbScheduler::SourceHash, &table), clients);
        let moved: Vec<_> = after
            .iter()
            .zip(&added)
            .filter(|(old, new)| old != new)
            .collect();
        assert!(
            moved
                .iter()
                .all(|(_, new)| new.ip() == IpAddr::from([10, 0, 0, 99]))
        );
        let share = moved.len() as f64 / f64::from(clients);
        assert!((0.07..0.13).contains(&share), "moved {share}");
    }

    #[test]
    fn sh_weighted_follows_weights_and_stays_consistent() {
        let table = backends(&[1, 3]);
        let picker = Picker::new(LbScheduler::SourceHash, &table);
        let assigned = sh_assignments(&picker, 8000);
        let heavy = assigned
            .iter()
            .filter(|addr| **addr == table[1].addr)
            .count();
        assert!((5700..6300).contains(&heavy), "{heavy}");
        // Changing one weight only moves clients to or from that backend.
        let reweighted = backends(&[1, 3, 1]);
        let before = sh_assignments(&Picker::new(LbScheduler::SourceHash, &reweighted), 8000);
        let reweighted = backends(&[1, 3, 2]);
        let after = sh_assignments(&Picker::new(LbScheduler::SourceHash, &reweighted), 8000);
        for (old, new) in before.iter().zip(&after) {
            if old != new {
                assert_eq!(*new, reweighted[2].addr);
            }
        }
    }

    #[test]
    fn sh_treats_ipv4_mapped_ipv6_as_ipv4() {
        let picker = Picker::new(LbScheduler::SourceHash, &backends(&[1; 5]));
        for n in 0..100 {
            let IpAddr::V4(v4) = client(n) else {
                unreachable!()
            };
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            assert_eq!(
                picker.pick(client(n), IDLE, &[]),
                picker.pick(mapped, IDLE, &[])
            );
        }
    }

    #[test]
    fn sh_retry_takes_the_next_ranked_backend() {
        let picker = Picker::new(LbScheduler::SourceHash, &backends(&[1; 4]));
        let first = picker.pick(client(7), IDLE, &[]).unwrap();
        let second = picker.pick(client(7), IDLE, &[first]).unwrap();
        assert_ne!(first, second);
        assert_eq!(picker.pick(client(7), IDLE, &[first]), Some(second));
    }

    #[test]
    fn maglev_is_the_same_on_every_director_whatever_the_order() {
        let table = backends(&[1, 2, 1, 3, 1]);
        let mut shuffled = table.clone();
        shuffled.reverse();
        shuffled.swap(0, 2);
        let a = Picker::new(MH, &table);
        let b = Picker::new(MH, &shuffled);
        assert_eq!(sh_assignments(&a, 5000), sh_assignments(&b, 5000));
    }

    #[test]
    fn maglev_spreads_by_weight_and_never_picks_weight_zero() {
        let table = backends(&[3, 1, 0]);
        let picker = Picker::new(MH, &table);
        let mut counts: HashMap<SocketAddr, u32> = HashMap::new();
        for addr in sh_assignments(&picker, 20_000) {
            *counts.entry(addr).or_default() += 1;
        }
        assert_eq!(counts.get(&table[2].addr), None, "weight 0 is never picked");
        let heavy = f64::from(counts[&table[0].addr]) / 20_000.0;
        assert!((0.72..0.78).contains(&heavy), "3:1 gives ~75%: {heavy}");
    }

    #[test]
    fn maglev_moves_only_the_leaving_backends_clients() {
        let table = backends(&[1; 10]);
        let before = sh_assignments(&Picker::new(MH, &table), 20_000);
        let gone = table[3].addr;
        let fewer: Vec<Backend> = table.iter().copied().filter(|b| b.addr != gone).collect();
        let after = sh_assignments(&Picker::new(MH, &fewer), 20_000);
        let mut moved_elsewhere = 0;
        for (b, a) in before.iter().zip(&after) {
            if *b == gone {
                assert_ne!(*a, gone);
            } else if a != b {
                moved_elsewhere += 1;
            }
        }
        // Maglev's disruption bound: a few percent beyond the leaving share.
        assert!(
            moved_elsewhere < 20_000 * 3 / 100,
            "{moved_elsewhere} clients of staying backends moved"
        );
    }

    #[test]
    fn maglev_retries_elsewhere_and_gives_up_when_all_are_tried() {
        let table = backends(&[1, 1, 1]);
        let picker = Picker::new(MH, &table);
        for n in 0..200 {
            let first = picker.pick(client(n), IDLE, &[]).expect("a backend");
            let second = picker.pick(client(n), IDLE, &[first]).expect("another");
            assert_ne!(first, second);
            let third = picker
                .pick(client(n), IDLE, &[first, second])
                .expect("the last one");
            assert!(third != first && third != second);
            assert_eq!(picker.pick(client(n), IDLE, &[0, 1, 2]), None);
        }
        assert_eq!(
            Picker::new(MH, &backends(&[0, 0])).pick(client(1), IDLE, &[]),
            None
        );
    }

    #[test]
    fn maglev_without_fallback_fails_rather_than_move_and_mh_port_spreads_one_client() {
        let table = backends(&[1, 1, 1, 1]);
        let strict = Picker::new(LbScheduler::Maglev(MhFlags::default()), &table);
        let loose = Picker::new(MH, &table);
        for n in 0..100 {
            let first = strict.pick(client(n), IDLE, &[]).expect("a backend");
            assert_eq!(loose.pick(client(n), IDLE, &[]), Some(first), "same table");
            assert_eq!(strict.pick(client(n), IDLE, &[first]), None);
            assert!(loose.pick(client(n), IDLE, &[first]).is_some());
        }
        let by_port = Picker::new(
            LbScheduler::Maglev(MhFlags {
                port: true,
                fallback: false,
            }),
            &table,
        );
        let mut seen = std::collections::HashSet::new();
        for port in 1000..1400u16 {
            let flow = SocketAddr::new(client(1), port);
            let picked = by_port.pick_flow(flow, IDLE, &[]).expect("a backend");
            // Two directors built from the same table agree on each flow.
            let other = Picker::new(
                LbScheduler::Maglev(MhFlags {
                    port: true,
                    fallback: true,
                }),
                &table,
            );
            assert_eq!(other.pick_flow(flow, IDLE, &[]), Some(picked));
            seen.insert(picked);
        }
        assert_eq!(seen.len(), 4, "one client's ports reach every server");
        // Without mh-port the port is ignored.
        let ports: std::collections::HashSet<_> = (1000..1100u16)
            .map(|port| strict.pick_flow(SocketAddr::new(client(1), port), IDLE, &[]))
            .collect();
        assert_eq!(ports.len(), 1);
    }

    const HAPROXY: LbScheduler = LbScheduler::Haproxy(crate::config::model::HaproxyHash {
        consistent: false,
        function: crate::config::model::HashFunction::Sdbm,
        avalanche: false,
    });

    fn with_unit(weights: &[u32], unit: u32) -> Picker {
        let config = ConfigServers {
            weight_unit: unit,
            ids: Default::default(),
        };
        Picker::with_config(HAPROXY, &backends(weights), &config)
    }

    fn haproxy_map_letters(weights: &[u32], unit: u32) -> String {
        let picker = with_unit(weights, unit);
        picker
            .haproxy_map
            .iter()
            .map(|&index| char::from(b'a' + index as u8))
            .collect()
    }

    /// The maps HAProxy 2.6.12 built, read by asking it (`balance
    /// url_param k`) for one key per slot (a key whose sdbm hash modulo
    /// the total weight is that slot) and noting which server answered.
    #[test]
    fn haproxy_map_is_haproxys_server_map() {
        assert_eq!(haproxy_map_letters(&[3, 2, 1], 1), "aababc");
        // The gcd (2) divides the weights first: 2, 1, 3.
        assert_eq!(haproxy_map_letters(&[4, 2, 6], 2), "acacbc");
        assert_eq!(haproxy_map_letters(&[5, 3, 2], 1), "aabacababc");
        // Weight 0 takes no slot.
        assert_eq!(haproxy_map_letters(&[1, 0, 2], 1), "acc");
        // One server: one slot.
        assert_eq!(haproxy_map_letters(&[7], 7), "a");
        assert_eq!(haproxy_map_letters(&[0, 0], 1), "");
    }

    #[test]
    fn haproxy_map_keeps_the_configured_weight_unit() {
        // 2, 4 and 3 have gcd 1; once the weight-3 server is gone HAProxy
        // still divides by 1: a map of 6 slots, not of 3.
        let picker = with_unit(&[2, 4], 1);
        assert_eq!(picker.haproxy_map.len(), 6);
        assert_eq!(
            Picker::new(HAPROXY, &backends(&[2, 4])).haproxy_map.len(),
            3
        );
        assert_eq!(weight_unit([4, 0, 6, 8]), 2);
        assert_eq!(weight_unit([0, 0]), 1);
    }

    #[test]
    fn haproxy_map_picks_by_hash_modulo_total_and_round_robins_without_a_key() {
        let picker = with_unit(&[3, 2, 1], 1);
        // "aababc": slot = key % 6.
        for (key, expected) in [(0u64, 0), (2, 1), (5, 2), (6 + 3, 0), (807_794_786, 1)] {
            assert_eq!(picker.pick_keyed(Some(key), IDLE, &[]), Some(expected));
        }
        // The source hash of 127.0.0.7 is 0x7f000007, % 6 = 5: server c.
        assert_eq!(
            picker.pick(IpAddr::from([127, 0, 0, 7]), IDLE, &[]),
            Some(2)
        );
        assert_eq!(picker.bytes_key(b"abc"), 807_794_786);
        // No key: the map in turn.
        let walked: String = (0..6)
            .map(|_| char::from(b'a' + picker.pick_keyed(None, IDLE, &[]).unwrap() as u8))
            .collect();
        assert_eq!(walked, "aababc");
        // A retry walks on to the next server not yet tried.
        assert_eq!(picker.pick_keyed(Some(0), IDLE, &[0]), Some(1));
        assert_eq!(picker.pick_keyed(Some(5), IDLE, &[2]), Some(0));
        assert_eq!(picker.pick_keyed(Some(1), IDLE, &[0, 1, 2]), None);
    }

    /// Which server HAProxy 2.6.12 chose for `?k=k0` .. `?k=k39` under
    /// `balance url_param k`, `hash-type consistent` and servers of
    /// weights 3, 2, 1 (ids 1, 2, 3).
    #[test]
    fn haproxy_consistent_picks_what_haproxy_picked() {
        let picker = Picker::new(
            LbScheduler::Haproxy(crate::config::model::HaproxyHash::CONSISTENT),
            &backends(&[3, 2, 1]),
        );
        assert_eq!(picker.haproxy_ring.len(), 6 * 16);
        let picked: String = (0..40)
            .map(|n| {
                let key = picker.bytes_key(format!("k{n}").as_bytes());
                char::from(b'0' + picker.pick_keyed(Some(key), IDLE, &[]).unwrap() as u8)
            })
            .collect();
        assert_eq!(picked, "0102010100200101010200000200102001000120");
        // A retry takes the next points' servers.
        let key = picker.bytes_key(b"k0");
        let first = picker.pick_keyed(Some(key), IDLE, &[]).unwrap();
        let second = picker.pick_keyed(Some(key), IDLE, &[first]).unwrap();
        assert_ne!(first, second);
        assert_eq!(picker.pick_keyed(Some(key), IDLE, &[0, 1, 2]), None);
    }

    proptest::proptest! {
        #[test]
        fn maglev_fills_every_slot_with_an_eligible_backend(
            weights in proptest::collection::vec(0u32..5, 1..12),
        ) {
            let table = backends(&weights);
            let eligible: Vec<u32> = (0..table.len() as u32).filter(|&i| table[i as usize].weight > 0).collect();
            let slots = maglev_table(&table, &eligible, 251);
            if eligible.is_empty() {
                proptest::prop_assert!(slots.is_empty());
            } else {
                proptest::prop_assert_eq!(slots.len(), 251);
                proptest::prop_assert!(slots.iter().all(|s| eligible.contains(s)));
            }
        }
    }
}
