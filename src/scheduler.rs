//! When each service runs next: mon's fixed-rate rescheduling, randstart and randskew; pure arithmetic on instants.

use std::time::Duration;

use tokio::time::Instant;

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
