//! Fuzz target: a service's cron `schedule` of any text parses or fails with a message, never panics, and a parsed schedule's next instant is after the instant asked about.
#![no_main]

use chrono::{Local, TimeZone};
use keepmon::period::Schedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Schedule::parse(&text) {
        Ok(schedule) => {
            for (y, mo, d, h, mi) in [
                (2024, 2, 29, 12, 0),
                (2026, 12, 31, 23, 59),
                (2000, 1, 1, 0, 0),
            ] {
                let Some(t) = Local.with_ymd_and_hms(y, mo, d, h, mi, 0).earliest() else {
                    continue;
                };
                if let Some(next) = schedule.next_after(&t) {
                    assert!(next > t, "{text}: next {next} is not after {t}");
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
