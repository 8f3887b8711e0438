//! Per-server `maxconn` with queues for the built-in proxy (HAProxy's server `maxconn`, `maxqueue` and `timeout queue`): choosing a backend that has a free slot, or waiting for one; both modes use it.
//!
//! HAProxy's rules, which this follows:
//!
//! * A server at its `maxconn` (connections in tcp mode, requests in http
//!   mode) takes no more until one ends. A server with a queue counts as
//!   full for newcomers, so that those already waiting go first.
//! * A request bound to one server — by persistence (a cookie, a sticky
//!   client) or by a hashing scheduler (`sh`, `mh`) — waits in *that
//!   server's* queue, unless the queue holds `maxqueue` already: then it is
//!   redispatched to another server as if unbound.
//! * Otherwise the scheduler picks among servers with a free slot; when
//!   every server it could pick is full, the request waits in the virtual
//!   server's own queue for any slot.
//! * A wait lasts at most `timeout queue` (by default the virtual server's
//!   connect timeout, as HAProxy falls back to `timeout connect`; no limit
//!   when that is zero). Then http mode answers 503 and tcp mode closes the
//!   client connection.
//!
//! Waiters sleep on one `Notify` per proxy that every slot release wakes;
//! each retries and the first to take the slot wins, so the order within
//! a queue is not strictly first come, first served. A wait uses the table
//! it started with: servers added meanwhile are not seen by it (the queue
//! timeout bounds that). With no `maxconn` anywhere, picking is unchanged
//! and costs one flag test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::model::LbScheduler;
use crate::lb::proxy::{Counters, Lease, QueueStats, Shared, Table};

/// The virtual server's own queue and the wake-up every slot release sends.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    freed: Arc<Notify>,
    queued: AtomicU64,
    queue_max: AtomicU64,
}

impl Queue {
    pub(crate) fn stats(&self) -> QueueStats {
        QueueStats {
            queued: self.queued.load(Ordering::Relaxed),
            queue_max: self.queue_max.load(Ordering::Relaxed),
        }
    }
}

/// The outcome of [`acquire`].
pub(crate) enum Acquired {
    /// Backend `index` of the table, with a lease (and slot when limited).
    Server(usize, Lease),
    /// No server can be picked at all (none up, all excluded): the caller
    /// tries the sorry server or gives up.
    NoneLeft,
    /// Waited `timeout queue` in vain.
    TimedOut,
}

/// Chooses a backend of `table` and takes a slot on it, waiting in a queue
/// when servers are full (module docs). `bound` is the server persistence
/// names; `pick` is the scheduler's choice avoiding the given indices;
/// `excluded` are indices already tried.
pub(crate) async fn acquire(
    shared: &Shared,
    table: &Table,
    bound: Option<usize>,
    excluded: &[usize],
    pick: impl Fn(&[usize]) -> Option<usize>,
) -> Acquired {
    if !table.limited {
        return match bound.or_else(|| pick(excluded)) {
            Some(index) => Acquired::Server(index, Lease::new(table.counters[index].clone())),
            None => Acquired::NoneLeft,
        };
    }
    let settings = &table.settings;
    let wait_for = settings
        .options
        .timeout_queue
        .or((!settings.connect_timeout.is_zero()).then_some(settings.connect_timeout));
    let deadline = wait_for.map(|d| Instant::now() + d);
    let freed = &shared.queue.freed;
    let mut excluded = excluded.to_vec();
    let hashing = matches!(
        settings.scheduler,
        LbScheduler::SourceHash | LbScheduler::Maglev(_) | LbScheduler::Haproxy(_)
    );
    let bound = bound.or_else(|| if hashing { pick(&excluded) } else { None });
    if let Some(index) = bound {
        let counters = &table.counters[index];
        let limits = table.limits[index];
        let Some(max) = limits.maxconn else {
            return Acquired::Server(index, Lease::new(counters.clone()));
        };
        if counters.queued.load(Ordering::Acquire) == 0 && take_slot(counters, max) {
            return Acquired::Server(index, slot_lease(counters, freed));
        }
        let queued = counters.queued.load(Ordering::Acquire);
        if limits.maxqueue.is_none_or(|q| queued < u64::from(q)) {
            let _waiting = Waiting::enter(&counters.queued, &counters.queue_max);
            let got = wait(freed, deadline, || {
                if take_slot(counters, max) {
                    Step::Ready(())
                } else {
                    Step::Wait
                }
            })
            .await;
            return match got {
                Step::Ready(()) => Acquired::Server(index, slot_lease(counters, freed)),
                _ => Acquired::TimedOut,
            };
        }
        // The server's queue is full: redispatch.
        excluded.push(index);
    }
    if shared.queue.queued.load(Ordering::Acquire) == 0 {
        match try_pick(shared, table, &excluded, &pick, true) {
            Step::Ready(got) => return got,
            Step::Stop => return Acquired::NoneLeft,
            Step::Wait => {}
        }
    }
    let _waiting = Waiting::enter(&shared.queue.queued, &shared.queue.queue_max);
    match wait(freed, deadline, || {
        try_pick(shared, table, &excluded, &pick, false)
    })
    .await
    {
        Step::Ready(got) => got,
        Step::Stop => Acquired::NoneLeft,
        Step::Wait => Acquired::TimedOut,
    }
}

/// One try of the scheduler among servers with a free slot. `newcomer`:
/// a server with a queue counts as full. `Wait` when only full servers
/// could have been picked; `Stop` when none at all.
fn try_pick(
    shared: &Shared,
    table: &Table,
    excluded: &[usize],
    pick: &impl Fn(&[usize]) -> Option<usize>,
    newcomer: bool,
) -> Step<Acquired> {
    loop {
        let mut avoid = excluded.to_vec();
        let mut any_full = false;
        for (index, limits) in table.limits.iter().enumerate() {
            let Some(max) = limits.maxconn else { continue };
            let counters = &table.counters[index];
            if counters.served.load(Ordering::Acquire) >= u64::from(max)
                || (newcomer && counters.queued.load(Ordering::Acquire) > 0)
            {
                any_full |= !excluded.contains(&index);
                avoid.push(index);
            }
        }
        let Some(index) = pick(&avoid) else {
            return if any_full { Step::Wait } else { Step::Stop };
        };
        let counters = &table.counters[index];
        match table.limits[index].maxconn {
            None => return Step::Ready(Acquired::Server(index, Lease::new(counters.clone()))),
            Some(max) if take_slot(counters, max) => {
                return Step::Ready(Acquired::Server(
                    index,
                    slot_lease(counters, &shared.queue.freed),
                ));
            }
            // Taken meanwhile: it is full now, look again.
            Some(_) => {}
        }
    }
}

enum Step<T> {
    Ready(T),
    Wait,
    Stop,
}

/// Retries `attempt` after every slot release until it is ready or stops,
/// or `deadline` passes (then `Wait`).
async fn wait<T>(
    freed: &Notify,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Step<T>,
) -> Step<T> {
    loop {
        // Registered before the attempt, so a release in between wakes it.
        let notified = freed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match attempt() {
            Step::Wait => {}
            done => return done,
        }
        match deadline {
            Some(deadline) => {
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Step::Wait;
                }
            }
            None => notified.await,
        }
    }
}

/// Takes one of `max` slots if one is free.
fn take_slot(counters: &Counters, max: u32) -> bool {
    counters
        .served
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |served| {
            (served < u64::from(max)).then_some(served + 1)
        })
        .is_ok()
}

fn slot_lease(counters: &Arc<Counters>, freed: &Arc<Notify>) -> Lease {
    Lease::with_slot(counters.clone(), freed.clone())
}

/// One waiter in a queue's counters, for as long as it waits (also when
/// its client goes away meanwhile).
struct Waiting<'a> {
    queued: &'a AtomicU64,
}

impl<'a> Waiting<'a> {
    fn enter(queued: &'a AtomicU64, queue_max: &AtomicU64) -> Waiting<'a> {
        let now = queued.fetch_add(1, Ordering::AcqRel) + 1;
        queue_max.fetch_max(now, Ordering::Relaxed);
        Waiting { queued }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}
