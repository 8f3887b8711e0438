//! Fuzz target: Time::Period specs must parse or fail without panicking, and a parsed period must evaluate at any instant.
#![no_main]

use chrono::{NaiveDate, NaiveDateTime};
use keepmon::period::Period;
use libfuzzer_sys::fuzz_target;

/// Instants that exercise the calendar's edges: leap day, year ends, the
/// last second of a day, a month starting on a Sunday, two-digit-year
/// centuries.
const INSTANTS: &[(i32, u32, u32, u32, u32, u32)] = &[
    (2024, 2, 29, 12, 0, 0),
    (2023, 12, 31, 23, 59, 59),
    (2000, 1, 1, 0, 0, 0),
    (1999, 12, 31, 23, 59, 59),
    (2026, 3, 1, 9, 30, 0),
    (2025, 6, 15, 0, 0, 1),
    (1970, 1, 1, 0, 0, 0),
    (2099, 11, 30, 16, 59, 59),
];

fn instant(&(y, mo, d, h, mi, s): &(i32, u32, u32, u32, u32, u32)) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, s))
        .expect("every entry of INSTANTS is a valid date and time")
}

fuzz_target!(|data: &[u8]| {
    let spec = String::from_utf8_lossy(data);
    if let Ok(period) = Period::parse(&spec) {
        assert_eq!(period.source(), &*spec, "a period keeps its source text");
        for entry in INSTANTS {
            let _ = period.contains(&instant(entry));
        }
    }
});
