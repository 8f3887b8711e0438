//! When each service runs and whether a due run may start: mon's fixed-rate rescheduling, randstart, randskew, cron schedules, and run gating (exclude periods, monitor dependencies, maxprocs, empty host lists); pure decisions on values, the event loop executes them.

use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::time::Instant;

use crate::config::model::Service;

/// What the event loop should do with a service whose run is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDecision {
    /// Start the monitor now.
    Start,
    /// Do not run this time; schedule the next run as if it had run
    /// (an exclude period, or no hosts to check).
    Skip,
    /// Try again at this instant without counting a run (a failing
    /// `monitordepend`: mon retries every tick; maxprocs reached).
    RetryAt(Instant),
    /// Never run again under this config (no monitor).
    Unschedule,
}

/// Everything the run gate looks at, already evaluated by the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunGate {
    /// The service has a monitor to run.
    pub has_monitor: bool,
    /// The global or the service's exclude period contains the local time.
    pub excluded: bool,
    /// The monitor dependency (dep_behavior m / monitordepend) passes, or
    /// there is none.
    pub monitor_depend_ok: bool,
    /// The monitor is a mon.d script (maxprocs applies to those only).
    pub is_exec: bool,
    /// mon.d scripts running now.
    pub running_exec: usize,
    /// `maxprocs`; 0 means no limit.
    pub maxprocs: usize,
    /// The host list handed to the monitor would be empty.
    pub no_hosts: bool,
    /// `allow_empty_group`: run even with no hosts.
    pub allow_empty_group: bool,
}

/// How long a run blocked by a failing monitor dependency waits.
pub const DEPEND_RETRY: Duration = Duration::from_secs(1);
/// How long a run blocked by maxprocs waits.
pub const MAXPROCS_RETRY: Duration = Duration::from_millis(200);

/// Decide whether a due run starts, in mon's order: exclude periods, then
/// the monitor dependency, then maxprocs, then the host list.
pub fn gate(gate: &RunGate, now: Instant) -> RunDecision {
    if gate.excluded {
        return RunDecision::Skip;
    }
    if !gate.monitor_depend_ok {
        return RunDecision::RetryAt(now + DEPEND_RETRY);
    }
    if gate.is_exec && gate.maxprocs > 0 && gate.running_exec >= gate.maxprocs {
        return RunDecision::RetryAt(now + MAXPROCS_RETRY);
    }
    if !gate.has_monitor {
        return RunDecision::Unschedule;
    }
    if gate.no_hosts && !gate.allow_empty_group {
        return RunDecision::Skip;
    }
    RunDecision::Start
}

/// The clock readings and random numbers a due-time computation needs.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub now: Instant,
    /// The same moment on the local wall clock (cron schedules).
    pub local: DateTime<Local>,
    /// Uniform in 0..=1.
    pub unit_random: f64,
}

/// How far first runs are spread when `randstart` is not set: over the
/// service's interval, at most this long.
pub const DEFAULT_FIRST_RUN_SPREAD: Duration = Duration::from_secs(10);

/// A service's first due time under a config: None for a service that is
/// never polled (no monitor, or neither interval nor schedule). Without
/// `randstart` the first runs are spread over the interval (at most
/// [`DEFAULT_FIRST_RUN_SPREAD`]), so a daemon with thousands of hosts does
/// not open every connection in the same millisecond; `randstart = 0`
/// starts them all at once.
pub fn first_due(service: &Service, clock: Clock, randstart: Option<Duration>) -> Option<Instant> {
    if service.monitor.is_none() || (service.interval.is_none() && service.schedule.is_none()) {
        return None;
    }
    if let Some(schedule) = &service.schedule {
        return schedule_due(schedule, clock);
    }
    let spread = randstart.or_else(|| {
        service
            .interval
            .map(|interval| interval.min(DEFAULT_FIRST_RUN_SPREAD))
    });
    Some(first_run(clock.now, spread, clock.unit_random))
}

/// The run after one that was due at `due`: the failure interval while the
/// service fails (mon's `failure_interval`), the cron schedule's next
/// instant, or fixed rate with randskew.
pub fn next_due(service: &Service, failing: bool, due: Instant, clock: Clock) -> Option<Instant> {
    if let Some(schedule) = &service.schedule {
        return schedule_due(schedule, clock);
    }
    let interval = if failing {
        service.failure_interval.or(service.interval)
    } else {
        service.interval
    }?;
    Some(next_run(
        due,
        clock.now,
        interval,
        service.randskew,
        clock.unit_random * 2.0 - 1.0,
    ))
}

fn schedule_due(schedule: &crate::period::Schedule, clock: Clock) -> Option<Instant> {
    let next = schedule.next_after(&clock.local)?;
    let wait = (next - clock.local).to_std().unwrap_or_default();
    Some(clock.now + wait)
}

/// The first run: after a random part of `randstart`, or at once when unset.
/// (mon waits a full interval before the first run; keepmon checks at start
/// so a restart does not leave services unknown for an interval.)
pub fn first_run(now: Instant, randstart: Option<Duration>, unit_random: f64) -> Instant {
    match randstart {
        Some(spread) => now + spread.mul_f64(unit_random.clamp(0.0, 1.0)),
        None => now,
    }
}

/// The run after one that was due at `due` (mon: `_next_check += interval`;
/// if that is already past, `interval` from now), moved by `skew` times a
/// random factor in -1..=1 when `randskew` is set.
pub fn next_run(
    due: Instant,
    now: Instant,
    interval: Duration,
    randskew: Option<Duration>,
    signed_random: f64,
) -> Instant {
    let mut next = due + interval;
    if next <= now {
        next = now + interval;
    }
    if let Some(skew) = randskew {
        let offset = skew.mul_f64(signed_random.abs().min(1.0));
        next = if signed_random < 0.0 {
            next.checked_sub(offset).filter(|t| *t > now).unwrap_or(now)
        } else {
            next + offset
        };
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_gate() -> RunGate {
        RunGate {
            has_monitor: true,
            monitor_depend_ok: true,
            ..RunGate::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gate_follows_mons_order() {
        let now = Instant::now();
        let check = |g: RunGate| gate(&g, now);
        assert_eq!(check(open_gate()), RunDecision::Start);
        assert_eq!(
            check(RunGate {
                excluded: true,
                monitor_depend_ok: false,
                ..open_gate()
            }),
            RunDecision::Skip,
            "an exclude period wins over everything"
        );
        assert_eq!(
            check(RunGate {
                monitor_depend_ok: false,
                ..open_gate()
            }),
            RunDecision::RetryAt(now + DEPEND_RETRY)
        );
        let full = RunGate {
            is_exec: true,
            running_exec: 4,
            maxprocs: 4,
            ..open_gate()
        };
        assert_eq!(check(full), RunDecision::RetryAt(now + MAXPROCS_RETRY));
        assert_eq!(
            check(RunGate {
                maxprocs: 0,
                ..full
            }),
            RunDecision::Start,
            "maxprocs 0 is no limit"
        );
        assert_eq!(
            check(RunGate {
                is_exec: false,
                ..full
            }),
            RunDecision::Start,
            "maxprocs only counts mon.d scripts"
        );
        assert_eq!(
            check(RunGate {
                has_monitor: false,
                ..open_gate()
            }),
            RunDecision::Unschedule
        );
        assert_eq!(
            check(RunGate {
                no_hosts: true,
                ..open_gate()
            }),
            RunDecision::Skip
        );
        assert_eq!(
            check(RunGate {
                no_hosts: true,
                allow_empty_group: true,
                ..open_gate()
            }),
            RunDecision::Start
        );
    }

    #[tokio::test(start_paused = true)]
    async fn due_times_follow_interval_failure_interval_and_polling() {
        let now = Instant::now();
        let clock = Clock {
            now,
            local: Local::now(),
            unit_random: 0.5,
        };
        let mut service = crate::config::compile_str(
            "[hostgroups]\ng = [\"h\"]\n[watch.g.s]\ninterval = \"60s\"\nfailure_interval = \"10s\"\nmonitor = { type = \"tcp\", port = 1 }\n",
            std::path::Path::new("t.toml"),
            crate::config::model::Format::Toml,
            &crate::config::RealFileSystem,
        )
        .expect("compiles")
        .config
        .services()
        .map(|(_, s)| s.clone())
        .next()
        .expect("one service");
        assert_eq!(
            first_due(&service, clock, None),
            Some(now + Duration::from_secs(5)),
            "spread over min(interval, 10 s) by default"
        );
        assert_eq!(
            first_due(&service, clock, Some(Duration::ZERO)),
            Some(now),
            "randstart = 0: at once"
        );
        assert_eq!(
            first_due(&service, clock, Some(Duration::from_secs(60))),
            Some(now + Duration::from_secs(30))
        );
        assert_eq!(
            next_due(&service, false, now, clock),
            Some(now + Duration::from_secs(60))
        );
        assert_eq!(
            next_due(&service, true, now, clock),
            Some(now + Duration::from_secs(10)),
            "a failing service runs at its failure interval"
        );
        service.monitor = None;
        assert_eq!(first_due(&service, clock, None), None, "nothing to run");
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_rate_with_catch_up() {
        let t0 = Instant::now();
        let m = Duration::from_secs(60);
        assert_eq!(
            next_run(t0, t0 + Duration::from_secs(2), m, None, 0.0),
            t0 + m
        );
        assert_eq!(
            next_run(t0, t0 + Duration::from_secs(90), m, None, 0.0),
            t0 + Duration::from_secs(150),
            "a late run does not cause a burst of catch-up runs"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn skew_and_randstart_stay_in_bounds() {
        let t0 = Instant::now();
        let m = Duration::from_secs(60);
        let s = Some(Duration::from_secs(10));
        for r in [-1.0, -0.5, 0.0, 0.5, 1.0, 7.0, -7.0] {
            let n = next_run(t0, t0, m, s, r);
            assert!(
                n >= t0 + Duration::from_secs(50) && n <= t0 + Duration::from_secs(70),
                "{r}"
            );
        }
        assert_eq!(first_run(t0, None, 0.7), t0);
        let f = first_run(t0, Some(m), 0.5);
        assert_eq!(f, t0 + Duration::from_secs(30));
    }
}
