//! Time::Period specs and cron schedules: pure evaluation of "is this instant inside" (no clock reads).
//!
//! [`Period`] re-implements `inPeriod` from Perl's Time::Period 1.25, which mon
//! uses for `period` and `exclude_period` (reference: `mon.md` section 3).
//!
//! ```text
//! spec       = blank | "none" | sub-period { "," sub-period }
//! sub-period = scale "{" range { range } "}" { scale "{" range { range } "}" }
//! range      = value | value "-" value
//! ```
//!
//! Sub-periods are OR, the scales of one sub-period are AND, the ranges of one
//! scale (and repeats of the same scale in one sub-period) are OR. A range
//! `v1-v2` with `v1 > v2` wraps around, except for years. Values are discrete:
//! `hr {9am-4pm}` is 09:00:00 through 16:59:59. Case and whitespace do not matter.
//!
//! Where Time::Period's code is looser or odder than its manual, keepmon keeps
//! whatever a working mon.cf can depend on and rejects the rest at parse time:
//!
//! * Two-digit years take the century of the instant being evaluated (Perl
//!   prefixes the first two digits of that instant's year). `yr {99-1972}` is
//!   1972-1999 in the 1900s and 1972-2099 in the 2000s: year ranges are
//!   swapped, never wrapped.
//! * Week of month: the week holding the 1st is week 1 and every later Sunday
//!   starts the next week, so a month spans up to 6 weeks. A month that starts
//!   on a Sunday has that Sunday in week 1 (the 1.25 fix).
//! * Names: only the first 3 (months) or 2 (week days) characters count, so
//!   `Sept`, `Thursday` and even `Monkey` are accepted, as in Perl.
//! * Hours: `Nam`/`Npm` are converted the way Perl does before the 0-23 check,
//!   so `12am` = 0, `12pm` = 12, `0am` = 0, `13am` = 13, `0pm` = 12;
//!   `noon` only as `12noon`.
//! * A trailing comma (`wd {mon},`) is accepted: Perl's `split` drops
//!   trailing empty fields.
//! * Rejected although Time::Period accepts them: empty braces (`hr {}`, which
//!   Perl treats as "never"), a spec made only of commas (Perl: never), a range
//!   with two dashes (`mon-wed-fri`, which Perl splits at the last dash),
//!   digits followed by junk in `yd` (`yd {3x}`, which Perl reads as 3).
//! * Every sub-period is validated up front. Perl only reports a malformed
//!   sub-period when it gets that far, so `hr {9}, hr {25}` passes mon's
//!   load-time check whenever it happens to run at 9 o'clock.
//!
//! [`Schedule`] wraps the `cron` crate for crontab-style schedules.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike};

/// A parsed Time::Period spec. Blank means always, `none` means never.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    source: String,
    rule: Rule,
}

impl Period {
    /// Parses a Time::Period spec; see the module docs for the grammar.
    pub fn parse(spec: &str) -> Result<Period, PeriodError> {
        let text = spec.trim_matches(is_space);
        let rule = if text.is_empty() {
            Rule::Always
        } else if text.eq_ignore_ascii_case("none") {
            Rule::Never
        } else {
            Rule::AnyOf(parse_sub_periods(text)?)
        };
        Ok(Period {
            source: spec.to_string(),
            rule,
        })
    }

    /// The period that contains every instant (a blank spec).
    pub fn always() -> Period {
        Period {
            source: String::new(),
            rule: Rule::Always,
        }
    }

    /// Whether local wall-clock time `t` is inside the period. The caller
    /// converts to local time; this never reads the clock.
    pub fn contains(&self, t: &NaiveDateTime) -> bool {
        match &self.rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::AnyOf(sub_periods) => {
                let fields = Fields::of(t);
                sub_periods.iter().any(|sub| sub.contains(&fields))
            }
        }
    }

    /// [`Period::contains`] for a time in the local time zone.
    pub fn contains_local(&self, t: DateTime<Local>) -> bool {
        self.contains(&t.naive_local())
    }

    /// The spec exactly as it was given to [`Period::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(spec: &str) -> Result<Period, PeriodError> {
        Period::parse(spec)
    }
}

/// A cron schedule of instants.
///
/// Accepts classic 5-field crontab lines (`min hour mday month wday`, day of
/// week 0-7 with 0 and 7 = Sunday, and Vixie cron's rule that a line
/// restricting both day of month and day of week fires when *either*
/// matches), the `cron` crate's own 6- and 7-field expressions as they are
/// (seconds first, optional year last, day of week 1-7 with 1 = Sunday, both
/// day fields must match), and `@yearly`, `@annually`, `@monthly`, `@weekly`,
/// `@daily`, `@midnight`, `@hourly`.
#[derive(Clone, Debug)]
pub struct Schedule {
    source: String,
    /// One schedule, or two (day-of-month half, day-of-week half) for a
    /// classic line that restricts both day fields; the next instant is the
    /// earlier of the two.
    alternatives: Vec<cron::Schedule>,
}

impl Schedule {
    /// Parses a crontab line, a `cron` crate expression or an `@` shorthand.
    pub fn parse(expr: &str) -> Result<Schedule, PeriodError> {
        let invalid = |reason: String| PeriodError::InvalidSchedule {
            expr: expr.to_string(),
            reason,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let expressions = match fields.as_slice() {
            [word] if word.starts_with('@') => {
                let expanded = shorthand(word)
                    .ok_or_else(|| invalid(format!("unknown shorthand \"{word}\"")))?;
                vec![expanded.to_string()]
            }
            [minute, hour, day_of_month, month, day_of_week] => {
                classic_to_cron(minute, hour, day_of_month, month, day_of_week).map_err(invalid)?
            }
            fields if fields.len() == 6 || fields.len() == 7 => vec![fields.join(" ")],
            fields => {
                return Err(invalid(format!(
                    "expected 5, 6 or 7 fields, found {}",
                    fields.len()
                )));
            }
        };
        let alternatives = expressions
            .iter()
            .map(|e| cron::Schedule::from_str(e).map_err(|err| invalid(err.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Schedule {
            source: expr.to_string(),
            alternatives,
        })
    }

    /// The first instant of the schedule strictly after `t`, or `None` when
    /// the schedule has no more instants.
    pub fn next_after(&self, t: &DateTime<Local>) -> Option<DateTime<Local>> {
        self.alternatives
            .iter()
            .filter_map(|schedule| schedule.after(t).next())
            .min()
    }

    /// The expression exactly as it was given to [`Schedule::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.source == other.source
    }
}

impl Eq for Schedule {}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why a period spec or a cron schedule was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("unknown scale \"{scale}\" in period \"{period}\"")]
    UnknownScale { scale: String, period: String },
    #[error("missing scale name before \"{{\" in period \"{period}\"")]
    MissingScale { period: String },
    #[error("expected \"{{\" after \"{text}\" in period \"{period}\"")]
    MissingOpenBrace { text: String, period: String },
    #[error("missing \"}}\" after \"{text}\" in period \"{period}\"")]
    MissingCloseBrace { text: String, period: String },
    #[error("unexpected \"{text}\" in period \"{period}\"")]
    UnexpectedText { text: String, period: String },
    #[error("empty sub-period in period \"{period}\"")]
    EmptySubPeriod { period: String },
    #[error("empty braces after \"{scale}\" in period \"{period}\"")]
    EmptyBraces { scale: String, period: String },
    #[error("invalid range \"{range}\" in period \"{period}\"")]
    InvalidRange { range: String, period: String },
    #[error("invalid {scale} value \"{value}\" (expected {expected}) in period \"{period}\"")]
    InvalidValue {
        scale: &'static str,
        value: String,
        expected: &'static str,
        period: String,
    },
    #[error("{scale} value \"{value}\" out of range (expected {expected}) in period \"{period}\"")]
    OutOfRange {
        scale: &'static str,
        value: String,
        expected: &'static str,
        period: String,
    },
    #[error("invalid cron schedule \"{expr}\": {reason}")]
    InvalidSchedule { expr: String, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    Always,
    Never,
    AnyOf(Vec<SubPeriod>),
}

/// Scales that must all match; each scale appears once, with the ranges of
/// all its repeats, any of which may match. A range `(v, v)` is a single value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SubPeriod {
    scales: Vec<(Scale, Vec<(u32, u32)>)>,
}

impl SubPeriod {
    fn contains(&self, fields: &Fields) -> bool {
        self.scales.iter().all(|(scale, ranges)| {
            ranges
                .iter()
                .any(|&(from, to)| fields.in_range(*scale, from, to))
        })
    }
}

/// Stored values use these units: year as written (0-99 or >= 1970, expanded
/// when evaluated), month 1-12, week 1-6, yday 1-366, mday 1-31,
/// wday 1-7 with 1 = Sunday, hour 0-23, minute and second 0-59.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scale {
    Year,
    Month,
    Week,
    YearDay,
    MonthDay,
    WeekDay,
    Hour,
    Minute,
    Second,
}

impl Scale {
    fn from_name(name: &str) -> Option<Scale> {
        let scale = match name.to_ascii_lowercase().as_str() {
            "year" | "yr" => Scale::Year,
            "month" | "mo" => Scale::Month,
            "week" | "wk" => Scale::Week,
            "yday" | "yd" => Scale::YearDay,
            "mday" | "md" => Scale::MonthDay,
            "wday" | "wd" => Scale::WeekDay,
            "hour" | "hr" => Scale::Hour,
            "minute" | "min" => Scale::Minute,
            "second" | "sec" => Scale::Second,
            _ => return None,
        };
        Some(scale)
    }

    fn code(self) -> &'static str {
        match self {
            Scale::Year => "yr",
            Scale::Month => "mo",
            Scale::Week => "wk",
            Scale::YearDay => "yd",
            Scale::MonthDay => "md",
            Scale::WeekDay => "wd",
            Scale::Hour => "hr",
            Scale::Minute => "min",
            Scale::Second => "sec",
        }
    }

    /// Inclusive bounds of the stored value; years are checked separately.
    fn bounds(self) -> (u32, u32) {
        match self {
            Scale::Year => (0, u32::MAX),
            Scale::Month => (1, 12),
            Scale::Week => (1, 6),
            Scale::YearDay => (1, 366),
            Scale::MonthDay => (1, 31),
            Scale::WeekDay => (1, 7),
            Scale::Hour => (0, 23),
            Scale::Minute | Scale::Second => (0, 59),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Scale::Year => "0-99 or >= 1970",
            Scale::Month => "1-12 or jan-dec",
            Scale::Week => "1-6",
            Scale::YearDay => "1-366",
            Scale::MonthDay => "1-31",
            Scale::WeekDay => "1-7 or su-sa",
            Scale::Hour => "0-23 or 12am-11pm",
            Scale::Minute | Scale::Second => "0-59",
        }
    }
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAY_NAMES: [&str; 7] = ["su", "mo", "tu", "we", "th", "fr", "sa"];

/// An instant broken into Time::Period's scales, in the units of [`Scale`].
struct Fields {
    year: i64,
    month: u32,
    week: u32,
    year_day: u32,
    month_day: u32,
    week_day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Fields {
    fn of(t: &NaiveDateTime) -> Fields {
        let days_from_sunday = t.weekday().num_days_from_sunday();
        Fields {
            year: i64::from(t.year()),
            month: t.month(),
            week: week_of_month(t.day(), days_from_sunday),
            year_day: t.ordinal(),
            month_day: t.day(),
            week_day: days_from_sunday + 1,
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
        }
    }

    fn in_range(&self, scale: Scale, from: u32, to: u32) -> bool {
        let value = match scale {
            Scale::Year => return year_in_range(self.year, from, to),
            Scale::Month => self.month,
            Scale::Week => self.week,
            Scale::YearDay => self.year_day,
            Scale::MonthDay => self.month_day,
            Scale::WeekDay => self.week_day,
            Scale::Hour => self.hour,
            Scale::Minute => self.minute,
            Scale::Second => self.second,
        };
        if from <= to {
            from <= value && value <= to
        } else {
            value >= from || value <= to
        }
    }
}

/// Week of the month, 1-6: the week holding the 1st is week 1 and each later
/// Sunday starts a new week. `days_from_sunday` is the weekday of `month_day`.
fn week_of_month(month_day: u32, days_from_sunday: u32) -> u32 {
    // month_day is 1..=31, so 35 - (month_day - 1) never underflows.
    let first_days_from_sunday = (days_from_sunday + 35 - (month_day - 1)) % 7;
    (month_day - 1 + first_days_from_sunday) / 7 + 1
}

fn year_in_range(year: i64, from: u32, to: u32) -> bool {
    let century = year.div_euclid(100) * 100;
    let full = |v: u32| {
        if v <= 99 {
            century + i64::from(v)
        } else {
            i64::from(v)
        }
    };
    let (a, b) = (full(from), full(to));
    a.min(b) <= year && year <= a.max(b)
}

/// Perl's `\s`.
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace() || c == '\x0b'
}

fn parse_sub_periods(spec: &str) -> Result<Vec<SubPeriod>, PeriodError> {
    let mut pieces: Vec<&str> = spec.split(',').map(|p| p.trim_matches(is_space)).collect();
    // Perl's split drops trailing empty fields, so Time::Period accepts "wd {mon},".
    while pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
        .iter()
        .map(|piece| parse_sub_period(piece, spec))
        .collect()
}

fn parse_sub_period(piece: &str, spec: &str) -> Result<SubPeriod, PeriodError> {
    let period = || spec.to_string();
    if piece.is_empty() {
        return Err(PeriodError::EmptySubPeriod { period: period() });
    }
    let mut scales: Vec<(Scale, Vec<(u32, u32)>)> = Vec::new();
    let mut rest = piece;
    while !rest.is_empty() {
        let open = rest.find('{');
        let head = &rest[..open.unwrap_or(rest.len())];
        if let Some(stray) = head.find('}') {
            return Err(PeriodError::UnexpectedText {
                text: rest[stray..].to_string(),
                period: period(),
            });
        }
        let Some(open) = open else {
            return Err(PeriodError::MissingOpenBrace {
                text: rest.to_string(),
                period: period(),
            });
        };
        let name = head.trim_end_matches(is_space);
        // '{' and '}' are ASCII, so these byte offsets are char boundaries.
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('}') else {
            return Err(PeriodError::MissingCloseBrace {
                text: rest.to_string(),
                period: period(),
            });
        };
        let body = &after_open[..close];
        if let Some(nested) = body.find('{') {
            return Err(PeriodError::UnexpectedText {
                text: body[nested..].to_string(),
                period: period(),
            });
        }
        if name.is_empty() {
            return Err(PeriodError::MissingScale { period: period() });
        }
        let scale = Scale::from_name(name).ok_or_else(|| PeriodError::UnknownScale {
            scale: name.to_string(),
            period: period(),
        })?;
        let ranges = parse_ranges(scale, name, body, spec)?;
        match scales.iter_mut().find(|(s, _)| *s == scale) {
            Some((_, existing)) => existing.extend(ranges),
            None => scales.push((scale, ranges)),
        }
        rest = after_open[close + 1..].trim_start_matches(is_space);
    }
    Ok(SubPeriod { scales })
}

/// Parses the text between the braces of one scale.
fn parse_ranges(
    scale: Scale,
    name: &str,
    body: &str,
    spec: &str,
) -> Result<Vec<(u32, u32)>, PeriodError> {
    // Like Perl, glue "v - v" back into "v-v" before splitting on whitespace.
    let mut words: Vec<String> = Vec::new();
    for word in body.split(is_space).filter(|w| !w.is_empty()) {
        match words.last_mut() {
            Some(last) if last.ends_with('-') || word.starts_with('-') => last.push_str(word),
            _ => words.push(word.to_string()),
        }
    }
    if words.is_empty() {
        return Err(PeriodError::EmptyBraces {
            scale: name.to_string(),
            period: spec.to_string(),
        });
    }
    words
        .iter()
        .map(|word| parse_range(scale, word, spec))
        .collect()
}

fn parse_range(scale: Scale, word: &str, spec: &str) -> Result<(u32, u32), PeriodError> {
    let (first, second) = match word.split_once('-') {
        Some((first, second)) => (first, Some(second)),
        None => (word, None),
    };
    let bad_second = second.is_some_and(|s| s.is_empty() || s.contains('-'));
    if first.is_empty() || bad_second {
        return Err(PeriodError::InvalidRange {
            range: word.to_string(),
            period: spec.to_string(),
        });
    }
    let from = parse_value(scale, first, spec)?;
    let to = match second {
        Some(second) => parse_value(scale, second, spec)?,
        None => from,
    };
    Ok((from, to))
}

fn parse_value(scale: Scale, text: &str, spec: &str) -> Result<u32, PeriodError> {
    let number = match scale {
        Scale::Month => parse_digits(text).or_else(|| lookup_name(text, &MONTH_NAMES, 3)),
        Scale::WeekDay => parse_digits(text).or_else(|| lookup_name(text, &WEEKDAY_NAMES, 2)),
        Scale::Hour => parse_hour(text),
        _ => parse_digits(text),
    };
    let Some(number) = number else {
        return Err(PeriodError::InvalidValue {
            scale: scale.code(),
            value: text.to_string(),
            expected: scale.expected(),
            period: spec.to_string(),
        });
    };
    let in_bounds = match scale {
        Scale::Year => number <= 99 || number >= 1970,
        _ => {
            let (low, high) = scale.bounds();
            u64::from(low) <= number && number <= u64::from(high)
        }
    };
    if !in_bounds {
        return Err(PeriodError::OutOfRange {
            scale: scale.code(),
            value: text.to_string(),
            expected: scale.expected(),
            period: spec.to_string(),
        });
    }
    // Only years can exceed u32; saturating keeps them beyond every year chrono can hold.
    Ok(u32::try_from(number).unwrap_or(u32::MAX))
}

/// ASCII digits only; huge numbers saturate so they fail the range checks.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// The 1-based position of the name made of the first `significant`
/// characters of `text`.
fn lookup_name(text: &str, names: &[&str], significant: usize) -> Option<u64> {
    let prefix = text.get(..significant)?;
    let index = names.iter().position(|n| n.eq_ignore_ascii_case(prefix))?;
    u64::try_from(index + 1).ok()
}

/// `N`, `Nam`, `Npm` or `12noon`, converted as Time::Period does (the 0-23
/// check comes afterwards).
fn parse_hour(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    if let Some(digits) = lower.strip_suffix("noon") {
        return parse_digits(digits).filter(|&n| n == 12);
    }
    if let Some(digits) = lower.strip_suffix("am") {
        return parse_digits(digits).map(|n| if n == 12 { 0 } else { n });
    }
    if let Some(digits) = lower.strip_suffix("pm") {
        return parse_digits(digits).map(|n| if n == 12 { 12 } else { n.saturating_add(12) });
    }
    parse_digits(&lower)
}

fn shorthand(word: &str) -> Option<&'static str> {
    // Expanded to the cron crate's 6 fields (day of week 1 = Sunday).
    let expanded = match word.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 1",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return None,
    };
    Some(expanded)
}

/// Turns a classic crontab line into one or two `cron` crate expressions.
fn classic_to_cron(
    minute: &str,
    hour: &str,
    day_of_month: &str,
    month: &str,
    day_of_week: &str,
) -> Result<Vec<String>, String> {
    let translated = translate_day_of_week(day_of_week)?;
    // Vixie cron: a field starting with '*' is unrestricted; when both day
    // fields are restricted, either one matching is enough.
    let restricted = |field: &str| !(field.starts_with('*') || field == "?");
    if restricted(day_of_month) && restricted(day_of_week) {
        Ok(vec![
            format!("0 {minute} {hour} {day_of_month} {month} *"),
            format!("0 {minute} {hour} * {month} {translated}"),
        ])
    } else {
        Ok(vec![format!(
            "0 {minute} {hour} {day_of_month} {month} {translated}"
        )])
    }
}

/// Crontab day of week (0-7, 0 and 7 = Sunday) to the cron crate's (1-7,
/// 1 = Sunday). Numeric items become explicit lists; items without digits
/// (`*`, `?`, `MON-FRI`) pass through unchanged.
fn translate_day_of_week(field: &str) -> Result<String, String> {
    let items = field
        .split(',')
        .map(translate_day_of_week_item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(items.join(","))
}

fn translate_day_of_week_item(item: &str) -> Result<String, String> {
    let invalid = || format!("invalid day of week \"{item}\"");
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    if base != "*" && !base.bytes().any(|b| b.is_ascii_digit()) {
        return Ok(item.to_string());
    }
    let step = match step {
        Some(step) => parse_digits(step).filter(|&s| s > 0).ok_or_else(invalid)?,
        None => 1,
    };
    let (start, end) = match base.split_once('-') {
        _ if base == "*" => (0, 7),
        Some((start, end)) => (
            parse_digits(start).ok_or_else(invalid)?,
            parse_digits(end).ok_or_else(invalid)?,
        ),
        // Like Vixie cron, a step needs a range: "5/2" is an error.
        None if item.contains('/') => return Err(invalid()),
        None => {
            let day = parse_digits(base).ok_or_else(invalid)?;
            (day, day)
        }
    };
    if start > end || end > 7 {
        return Err(invalid());
    }
    // start <= end <= 7, so the step loop below is short and cannot overflow.
    let mut ordinals = BTreeSet::new();
    let mut day = start;
    while day <= end {
        ordinals.insert(day % 7 + 1);
        day = day.saturating_add(step);
    }
    let listed: Vec<String> = ordinals.iter().map(u64::to_string).collect();
    Ok(listed.join(","))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, TimeZone, Weekday};
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("bad test time {text:?}: {e}"))
    }

    fn check(spec: &str, when: &str, expected: bool) {
        let period = Period::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        assert_eq!(
            period.contains(&at(when)),
            expected,
            "{spec:?} at {when} ({})",
            at(when).weekday()
        );
    }

    fn check_table(spec: &str, cases: &[(&str, bool)]) {
        for &(when, expected) in cases {
            check(spec, when, expected);
        }
    }

    fn check_error(spec: &str, expected: &str) {
        match Period::parse(spec) {
            Ok(period) => panic!("{spec:?} parsed as {period:?}"),
            Err(e) => assert_eq!(e.to_string(), expected, "{spec:?}"),
        }
    }

    // January 2024 starts on a Monday: weeks are 1-6, 7-13, 14-20, 21-27, 28-31.

    #[test]
    fn reference_example_office_hours() {
        check_table(
            "wd {Mon Wed Fri} hr {9am-4pm}, wd{Tue Thu} hr {9am-2pm}",
            &[
                ("2024-01-01 08:59:59", false),
                ("2024-01-01 09:00:00", true),
                ("2024-01-01 16:59:59", true),
                ("2024-01-01 17:00:00", false),
                ("2024-01-03 12:00:00", true),
                ("2024-01-05 16:30:00", true),
                ("2024-01-02 09:00:00", true),
                ("2024-01-02 14:59:59", true),
                ("2024-01-02 15:00:00", false),
                ("2024-01-04 16:00:00", false),
                ("2024-01-06 12:00:00", false),
                ("2024-01-07 12:00:00", false),
            ],
        );
    }

    #[test]
    fn reference_example_alternating_weeks() {
        check_table(
            "wk {1 3 5} wd {Mon Wed Fri} hr {9am-4pm}",
            &[
                ("2024-01-01 10:00:00", true),
                ("2024-01-05 10:00:00", true),
                ("2024-01-08 10:00:00", false),
                ("2024-01-15 10:00:00", true),
                ("2024-01-22 10:00:00", false),
                ("2024-01-29 10:00:00", true),
                ("2024-01-30 10:00:00", false),
                ("2024-01-29 20:00:00", false),
            ],
        );
    }

    #[test]
    fn reference_example_winter() {
        let cases = [
            ("2024-11-01 00:00:00", true),
            ("2024-12-31 23:59:59", true),
            ("2024-01-15 12:00:00", true),
            ("2024-02-29 23:59:59", true),
            ("2024-03-01 00:00:00", false),
            ("2024-10-31 23:59:59", false),
            ("2024-07-04 12:00:00", false),
        ];
        for spec in [
            "mo {Nov-Feb}",
            "mo {Jan-Feb Nov-Dec}",
            "mo {jan feb nov dec}",
            "mo {Jan Feb}, mo {Nov Dec}",
            "mo {Jan Feb} mo {Nov Dec}",
            "month {11-2}",
            "MONTH{November - February}",
        ] {
            check_table(spec, &cases);
        }
    }

    #[test]
    fn reference_example_half_hours() {
        // wd 1 = Sunday: 1 3 5 7 are Sun Tue Thu Sat.
        check_table(
            "wd {1 3 5 7} min {0-29}, wd {2 4 6} min {30-59}",
            &[
                ("2024-01-07 10:00:00", true),
                ("2024-01-07 10:29:59", true),
                ("2024-01-07 10:30:00", false),
                ("2024-01-02 10:15:00", true),
                ("2024-01-06 10:45:00", false),
                ("2024-01-01 10:45:00", true),
                ("2024-01-01 10:15:00", false),
                ("2024-01-05 10:59:59", true),
            ],
        );
    }

    #[test]
    fn twelve_am_noon_pm() {
        let midnight = "2024-01-01 00:30:00";
        let noon = "2024-01-01 12:30:00";
        check_table("hr {12am}", &[(midnight, true), (noon, false)]);
        check_table("hr {12noon}", &[(midnight, false), (noon, true)]);
        check_table("hr {12pm}", &[(midnight, false), (noon, true)]);
        check_table("hr {12}", &[(midnight, false), (noon, true)]);
        check_table("hr {0}", &[(midnight, true), (noon, false)]);
        check_table(
            "hr {1am}",
            &[
                ("2024-01-01 01:00:00", true),
                ("2024-01-01 13:00:00", false),
            ],
        );
        check_table(
            "hr {1pm}",
            &[
                ("2024-01-01 01:00:00", false),
                ("2024-01-01 13:00:00", true),
            ],
        );
        check_table(
            "hr {11pm}",
            &[
                ("2024-01-01 23:59:59", true),
                ("2024-01-01 11:00:00", false),
            ],
        );
        check_table(
            "hr {12am-11am}",
            &[
                (midnight, true),
                ("2024-01-01 11:59:59", true),
                (noon, false),
            ],
        );
        // Perl converts before the 0-23 check, so these odd spellings work.
        check_table("hr {0am}", &[(midnight, true)]);
        check_table("hr {13am}", &[("2024-01-01 13:00:00", true)]);
        check_table("hr {0pm}", &[(noon, true)]);
    }

    #[test]
    fn wrap_around() {
        check_table(
            "hr {10pm-2am}",
            &[
                ("2024-01-01 21:59:59", false),
                ("2024-01-01 22:00:00", true),
                ("2024-01-01 23:59:59", true),
                ("2024-01-02 00:00:00", true),
                ("2024-01-02 02:59:59", true),
                ("2024-01-02 03:00:00", false),
                ("2024-01-02 12:00:00", false),
            ],
        );
        check_table(
            "min {50-10}",
            &[
                ("2024-01-01 10:55:00", true),
                ("2024-01-01 10:05:00", true),
                ("2024-01-01 10:30:00", false),
            ],
        );
        check_table(
            "wd {Fri-Mon}",
            &[
                ("2024-01-05 12:00:00", true),
                ("2024-01-07 12:00:00", true),
                ("2024-01-08 12:00:00", true),
                ("2024-01-09 12:00:00", false),
            ],
        );
        check_table(
            "md {31-1}",
            &[
                ("2024-01-31 12:00:00", true),
                ("2024-02-01 12:00:00", true),
                ("2024-02-02 12:00:00", false),
            ],
        );
        check_table(
            "yd {366-1}",
            &[
                ("2024-12-31 12:00:00", true),
                ("2025-01-01 12:00:00", true),
                ("2023-12-31 12:00:00", false),
            ],
        );
        check_table(
            "sec {0-4 10-14 20-24 30-34 40-44 50-54}",
            &[
                ("2024-01-01 10:00:04", true),
                ("2024-01-01 10:00:05", false),
                ("2024-01-01 10:00:54", true),
            ],
        );
    }

    #[test]
    fn years_expand_to_the_evaluated_century_and_never_wrap() {
        check_table(
            "yr {24}",
            &[
                ("2024-06-01 00:00:00", true),
                ("2124-06-01 00:00:00", true),
                ("2025-06-01 00:00:00", false),
            ],
        );
        check_table(
            "yr {99-1972}",
            &[
                ("1971-06-01 00:00:00", false),
                ("1980-06-01 00:00:00", true),
                ("1999-12-31 23:59:59", true),
                ("2000-01-01 00:00:00", true),
                ("2099-06-01 00:00:00", true),
                // From 2100 on, 99 means 2199.
                ("2150-01-01 00:00:00", true),
            ],
        );
        check_table(
            "year {2025-2024}",
            &[
                ("2023-06-01 00:00:00", false),
                ("2024-06-01 00:00:00", true),
                ("2025-06-01 00:00:00", true),
                ("2026-06-01 00:00:00", false),
            ],
        );
        check_table(
            "yr {1970}",
            &[
                ("1970-01-01 00:00:00", true),
                ("2070-01-01 00:00:00", false),
            ],
        );
        check_table(
            "yr {0-5}",
            &[
                ("2005-06-01 00:00:00", true),
                ("2006-06-01 00:00:00", false),
                ("2105-06-01 00:00:00", true),
                ("1905-06-01 00:00:00", true),
            ],
        );
        check("yr {99999999999999999999999}", "2024-01-01 00:00:00", false);
    }

    #[test]
    fn weeks_of_the_month() {
        // September 2024 starts on a Sunday: that Sunday is in week 1.
        check_table(
            "wk {1}",
            &[
                ("2024-09-01 12:00:00", true),
                ("2024-09-07 12:00:00", true),
                ("2024-09-08 12:00:00", false),
            ],
        );
        check("wk {2}", "2024-09-08 12:00:00", true);
        // March 2025 starts on a Saturday: the 30th and 31st are week 6.
        check_table(
            "week {6}",
            &[
                ("2025-03-29 12:00:00", false),
                ("2025-03-30 12:00:00", true),
                ("2025-03-31 12:00:00", true),
            ],
        );
        check_table(
            "wk {1}",
            &[
                ("2025-03-01 12:00:00", true),
                ("2025-03-02 12:00:00", false),
            ],
        );
        check("wk {5-1}", "2025-03-31 12:00:00", true);
    }

    #[test]
    fn week_of_month_matches_time_period_loop() {
        let mut day = NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date");
        while day.year() < 2029 {
            assert_eq!(
                week_of_month(day.day(), day.weekday().num_days_from_sunday()),
                perl_week(day),
                "{day}"
            );
            day = day.succ_opt().expect("not the last date");
        }
    }

    #[test]
    fn names_spelling_case_and_whitespace() {
        let monday_ten = "2024-01-01 10:00:00";
        for spec in [
            "wd {Mon-Fri}",
            "wd{Mon-Fri}",
            "WD {MON-FRI}",
            "  wday  {  monday  -  friday  }  ",
            "wd {mo - fr}",
            "wd {2-6}",
            "wd {Monkey}",
            "wd {sun sunday su} wd {mon}",
            "wd\t{mon}\thr\t{10}",
            "wday {mon} hour {10am} minute {0} second {0}",
            "month {Jan} mday {1} yday {1} week {1} year {2024}",
            "mo {January} md {1} yd {1} wk {1} yr {24}",
            "mo {Sept-Jan}",
            "wd {Sa}, wd {mon},",
            "hr {9am - 4pm}",
            "hr {9AM -4PM}",
            "hr {9am- 4pm}",
            "min {00-05}",
        ] {
            check(spec, monday_ten, true);
        }
        for spec in [
            "wd {Tue-Sun}",
            "wd {Mon} hr {11}",
            "wd {sat}, wd {sun}",
            "none",
            " NONE ",
        ] {
            check(spec, monday_ten, false);
        }
    }

    #[test]
    fn blank_none_always_display() {
        for spec in ["", "   ", "\t\n"] {
            check(spec, "2024-01-01 10:00:00", true);
        }
        let always = Period::always();
        assert!(always.contains(&NaiveDateTime::MIN));
        assert!(always.contains(&NaiveDateTime::MAX));
        assert_eq!(always.source(), "");
        let period = Period::parse(" wd {Mon}  ").expect("valid");
        assert_eq!(period.source(), " wd {Mon}  ");
        assert_eq!(period.to_string(), " wd {Mon}  ");
        assert_eq!("wd {Mon}".parse::<Period>(), Period::parse("wd {Mon}"));
        let never = Period::parse("none").expect("valid");
        assert!(!never.contains(&at("2024-01-01 10:00:00")));
        let local = Local
            .with_ymd_and_hms(2024, 1, 1, 10, 0, 0)
            .single()
            .expect("unambiguous local time");
        assert!(
            Period::parse("wd {mon} hr {10}")
                .expect("valid")
                .contains_local(local)
        );
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let period =
            Period::parse("yr {0-99} wk {1-6} yd {1-366} md {1-31}, yr {1970}").expect("valid");
        for t in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
            let _ = period.contains(&t);
        }
    }

    #[test]
    fn error_messages() {
        check_error("wk2 {1}", r#"unknown scale "wk2" in period "wk2 {1}""#);
        check_error("foo {1}", r#"unknown scale "foo" in period "foo {1}""#);
        check_error("mon {1}", r#"unknown scale "mon" in period "mon {1}""#);
        check_error("w d {1}", r#"unknown scale "w d" in period "w d {1}""#);
        check_error("{1}", r#"missing scale name before "{" in period "{1}""#);
        check_error("hr 9", r#"expected "{" after "hr 9" in period "hr 9""#);
        check_error("hr {9", r#"missing "}" after "hr {9" in period "hr {9""#);
        check_error(
            "hr {9, 10}",
            r#"missing "}" after "hr {9" in period "hr {9, 10}""#,
        );
        check_error("hr {}", r#"empty braces after "hr" in period "hr {}""#);
        check_error("hr {  }", r#"empty braces after "hr" in period "hr {  }""#);
        check_error(
            "hr {9} junk",
            r#"expected "{" after "junk" in period "hr {9} junk""#,
        );
        check_error("hr {9}}", r#"unexpected "}" in period "hr {9}}""#);
        check_error("hr {{9}}", r#"unexpected "{9" in period "hr {{9}}""#);
        check_error(
            "hr {25}",
            r#"hr value "25" out of range (expected 0-23 or 12am-11pm) in period "hr {25}""#,
        );
        check_error(
            "hr {13pm}",
            r#"hr value "13pm" out of range (expected 0-23 or 12am-11pm) in period "hr {13pm}""#,
        );
        check_error(
            "hr {noon}",
            r#"invalid hr value "noon" (expected 0-23 or 12am-11pm) in period "hr {noon}""#,
        );
        check_error(
            "hr {11noon}",
            r#"invalid hr value "11noon" (expected 0-23 or 12am-11pm) in period "hr {11noon}""#,
        );
        check_error(
            "wd {xx}",
            r#"invalid wd value "xx" (expected 1-7 or su-sa) in period "wd {xx}""#,
        );
        check_error(
            "wd {0}",
            r#"wd value "0" out of range (expected 1-7 or su-sa) in period "wd {0}""#,
        );
        check_error(
            "yr {1969}",
            r#"yr value "1969" out of range (expected 0-99 or >= 1970) in period "yr {1969}""#,
        );
        check_error("hr {1-}", r#"invalid range "1-" in period "hr {1-}""#);
        check_error("hr {-1}", r#"invalid range "-1" in period "hr {-1}""#);
        check_error(
            "wd {mon-wed-fri}",
            r#"invalid range "mon-wed-fri" in period "wd {mon-wed-fri}""#,
        );
        check_error(",hr {9}", r#"empty sub-period in period ",hr {9}""#);
        check_error(
            "hr {9},,hr {10}",
            r#"empty sub-period in period "hr {9},,hr {10}""#,
        );
        check_error(",", r#"empty sub-period in period ",""#);
        check_error(
            "none, wd {mon}",
            r#"expected "{" after "none" in period "none, wd {mon}""#,
        );
    }

    #[test]
    fn malformed_values_are_rejected() {
        for spec in [
            "hr {24}",
            "hr {-}",
            "hr { - }",
            "min {60}",
            "sec {60}",
            "wk {0}",
            "wk {7}",
            "yd {0}",
            "yd {367}",
            "yd {3x}",
            "md {0}",
            "md {32}",
            "wd {8}",
            "mo {0}",
            "mo {13}",
            "mo {ja}",
            "mo {1jan}",
            "yr {100}",
            "yr {-5}",
            "hr {1.5}",
            "hr {99999999999999999999999999}",
            "hr {99999999999999999999999999pm}",
            "wd {Mön}",
            "wd {Ümon}",
            "hr {٣}",
            "hr {９}",
            "wd {mon} wd",
            "wd {mon} hr {1",
        ] {
            assert!(Period::parse(spec).is_err(), "{spec:?} should be rejected");
        }
    }

    // --- property test against a brute-force reference ---

    #[derive(Clone, Debug)]
    struct GenScale {
        scale: Scale,
        ranges: Vec<(u32, u32)>,
        fancy: bool,
    }

    const ALL_SCALES: [Scale; 9] = [
        Scale::Year,
        Scale::Month,
        Scale::Week,
        Scale::YearDay,
        Scale::MonthDay,
        Scale::WeekDay,
        Scale::Hour,
        Scale::Minute,
        Scale::Second,
    ];

    fn value_strategy(scale: Scale) -> BoxedStrategy<u32> {
        match scale {
            Scale::Year => prop_oneof![0u32..=99, 1970u32..=2200].boxed(),
            _ => {
                let (low, high) = scale.bounds();
                (low..=high).boxed()
            }
        }
    }

    fn gen_scale() -> impl Strategy<Value = GenScale> {
        proptest::sample::select(ALL_SCALES.to_vec())
            .prop_flat_map(|scale| {
                let range = (value_strategy(scale), value_strategy(scale));
                (
                    Just(scale),
                    proptest::collection::vec(range, 1..4),
                    any::<bool>(),
                )
            })
            .prop_map(|(scale, ranges, fancy)| GenScale {
                scale,
                ranges,
                fancy,
            })
    }

    fn gen_spec() -> impl Strategy<Value = Vec<Vec<GenScale>>> {
        proptest::collection::vec(proptest::collection::vec(gen_scale(), 1..4), 1..4)
    }

    fn gen_datetime() -> impl Strategy<Value = NaiveDateTime> {
        // 1970 to 2199: crosses the 2100 century boundary.
        (0i64..230 * 365 * 86_400).prop_map(|secs| {
            DateTime::from_timestamp(secs, 0)
                .expect("timestamp in range")
                .naive_utc()
        })
    }

    fn long_name(scale: Scale) -> &'static str {
        match scale {
            Scale::Year => "year",
            Scale::Month => "month",
            Scale::Week => "week",
            Scale::YearDay => "yday",
            Scale::MonthDay => "mday",
            Scale::WeekDay => "wday",
            Scale::Hour => "hour",
            Scale::Minute => "minute",
            Scale::Second => "second",
        }
    }

    fn render_value(scale: Scale, value: u32, fancy: bool) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "february", "MAR", "apr", "May", "june", "July", "aug", "Sept", "oct", "Nov",
            "December",
        ];
        const DAYS: [&str; 7] = ["Sun", "monday", "TU", "wed", "thursday", "Fri", "sat"];
        let index = usize::try_from(value)
            .expect("small value")
            .saturating_sub(1);
        match scale {
            Scale::Month if fancy => MONTHS[index].to_string(),
            Scale::WeekDay if fancy => DAYS[index].to_string(),
            Scale::Hour if fancy => match value {
                0 => "12am".to_string(),
                1..=11 => format!("{value}am"),
                12 => "12noon".to_string(),
                _ => format!("{}PM", value - 12),
            },
            _ => value.to_string(),
        }
    }

    fn render_scale(g: &GenScale) -> String {
        let ranges: Vec<String> = g
            .ranges
            .iter()
            .map(|&(from, to)| {
                let from_text = render_value(g.scale, from, g.fancy);
                if from == to {
                    from_text
                } else {
                    let dash = if g.fancy { " - " } else { "-" };
                    format!("{from_text}{dash}{}", render_value(g.scale, to, g.fancy))
                }
            })
            .collect();
        if g.fancy {
            format!(
                "{}{{ {} }}",
                long_name(g.scale).to_uppercase(),
                ranges.join("  ")
            )
        } else {
            format!("{} {{{}}}", g.scale.code(), ranges.join(" "))
        }
    }

    fn render(spec: &[Vec<GenScale>]) -> String {
        spec.iter()
            .map(|sub| sub.iter().map(render_scale).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Time::Period's own week loop: count the Sundays after the 1st.
    fn perl_week(date: NaiveDate) -> u32 {
        let sundays = (2..=date.day())
            .filter(|&d| {
                NaiveDate::from_ymd_opt(date.year(), date.month(), d)
                    .expect("valid day")
                    .weekday()
                    == Weekday::Sun
            })
            .count();
        u32::try_from(sundays).expect("few Sundays") + 1
    }

    fn reference_field(scale: Scale, t: &NaiveDateTime) -> i64 {
        i64::from(match scale {
            Scale::Year => return i64::from(t.year()),
            Scale::Month => t.month(),
            Scale::Week => perl_week(t.date()),
            Scale::YearDay => t.ordinal(),
            Scale::MonthDay => t.day(),
            Scale::WeekDay => t.weekday().num_days_from_sunday() + 1,
            Scale::Hour => t.hour(),
            Scale::Minute => t.minute(),
            Scale::Second => t.second(),
        })
    }

    /// Every value a range allows, found by walking forward from `from` to
    /// `to` and wrapping at the top of the scale.
    fn reference_values(scale: Scale, from: u32, to: u32, year: i64) -> Vec<i64> {
        if scale == Scale::Year {
            let full = |v: u32| {
                if v <= 99 {
                    year / 100 * 100 + i64::from(v)
                } else {
                    i64::from(v)
                }
            };
            let (a, b) = (full(from), full(to));
            return (a.min(b)..=a.max(b)).collect();
        }
        let (low, high) = scale.bounds();
        let mut values = Vec::new();
        let mut v = from;
        loop {
            values.push(i64::from(v));
            if v == to {
                return values;
            }
            v = if v == high { low } else { v + 1 };
        }
    }

    fn reference_contains(spec: &[Vec<GenScale>], t: &NaiveDateTime) -> bool {
        spec.iter().any(|sub| {
            let mut allowed: BTreeMap<Scale, BTreeSet<i64>> = BTreeMap::new();
            for g in sub {
                let set = allowed.entry(g.scale).or_default();
                for &(from, to) in &g.ranges {
                    set.extend(reference_values(g.scale, from, to, i64::from(t.year())));
                }
            }
            allowed
                .iter()
                .all(|(scale, set)| set.contains(&reference_field(*scale, t)))
        })
    }

    proptest! {
        #[test]
        fn contains_matches_brute_force(spec in gen_spec(), times in proptest::collection::vec(gen_datetime(), 1..20)) {
            let text = render(&spec);
            let period = Period::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for t in &times {
                prop_assert_eq!(period.contains(t), reference_contains(&spec, t), "{} at {}", text, t);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>(), t in gen_datetime()) {
            if let Ok(period) = Period::parse(&text) {
                let _ = period.contains(&t);
            }
        }

        #[test]
        fn spec_like_text_never_panics(text in "[a-zA-Z0-9{}, \\-é]{0,40}", t in gen_datetime()) {
            if let Ok(period) = Period::parse(&text) {
                let _ = period.contains(&t);
            }
        }
    }

    // --- cron schedules ---

    fn local(text: &str) -> DateTime<Local> {
        Local
            .from_local_datetime(&at(text))
            .single()
            .unwrap_or_else(|| panic!("{text} is not a single local time"))
    }

    fn check_next(expr: &str, after: &str, expected: &str) {
        let schedule = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        let next = schedule.next_after(&local(after)).map(|t| t.naive_local());
        assert_eq!(next, Some(at(expected)), "{expr:?} after {after}");
    }

    #[test]
    fn classic_crontab_lines() {
        // 2024-01-06 is a Saturday.
        check_next("30 9 * * 1-5", "2024-01-06 10:00:00", "2024-01-08 09:30:00");
        check_next("30 9 * * 1-5", "2024-01-08 09:30:00", "2024-01-09 09:30:00");
        check_next("0 12 * * 0", "2024-01-01 13:00:00", "2024-01-07 12:00:00");
        check_next("0 12 * * 7", "2024-01-01 13:00:00", "2024-01-07 12:00:00");
        check_next(
            "0 12 * * MON-FRI",
            "2024-01-06 00:00:00",
            "2024-01-08 12:00:00",
        );
        check_next(
            "0 12 * * sat,sun",
            "2024-01-01 00:00:00",
            "2024-01-06 12:00:00",
        );
        check_next("0 0 * * 5-7", "2024-01-04 12:00:00", "2024-01-05 00:00:00");
        check_next("0 0 * * 5-7", "2024-01-06 12:00:00", "2024-01-07 00:00:00");
        check_next("0 0 * * 5-7", "2024-01-07 12:00:00", "2024-01-12 00:00:00");
        check_next("0 0 * * */2", "2024-01-01 00:00:00", "2024-01-02 00:00:00");
        check_next(
            "0 0 * * 1-5/2",
            "2024-01-01 00:00:00",
            "2024-01-03 00:00:00",
        );
        check_next("*/15 * * * *", "2024-01-01 10:07:30", "2024-01-01 10:15:00");
        check_next("0 3 1 * *", "2024-01-15 00:00:00", "2024-02-01 03:00:00");
    }

    #[test]
    fn classic_day_of_month_or_day_of_week() {
        // Both restricted: the 1st of the month or any Monday.
        check_next("0 0 1 * 1", "2024-01-02 00:00:00", "2024-01-08 00:00:00");
        check_next("0 0 1 * 1", "2024-01-29 01:00:00", "2024-02-01 00:00:00");
        // Day of week starting with '*' counts as unrestricted: both must match.
        check_next("0 0 1 * */1", "2024-01-02 00:00:00", "2024-02-01 00:00:00");
    }

    #[test]
    fn shorthands_and_native_expressions() {
        check_next("@daily", "2024-01-01 10:00:00", "2024-01-02 00:00:00");
        check_next("@midnight", "2024-01-01 10:00:00", "2024-01-02 00:00:00");
        check_next("@hourly", "2024-01-01 10:00:00", "2024-01-01 11:00:00");
        check_next("@weekly", "2024-01-01 10:00:00", "2024-01-07 00:00:00");
        check_next("@MONTHLY", "2024-01-01 10:00:00", "2024-02-01 00:00:00");
        check_next("@annually", "2024-01-01 10:00:00", "2025-01-01 00:00:00");
        check_next(
            "15 30 9 * * *",
            "2024-01-01 10:00:00",
            "2024-01-02 09:30:15",
        );
        // The crate's own convention: 1 = Sunday.
        check_next("0 0 12 * * 1", "2024-01-01 13:00:00", "2024-01-07 12:00:00");
        check_next(
            "0 0 0 1 1 * 2030",
            "2024-01-01 10:00:00",
            "2030-01-01 00:00:00",
        );
    }

    #[test]
    fn schedule_ends_and_identity() {
        let past = Schedule::parse("0 0 0 1 1 * 2020").expect("valid");
        assert_eq!(past.next_after(&local("2024-01-01 00:00:00")), None);
        let schedule = Schedule::parse("0 12 * * 0").expect("valid");
        assert_eq!(schedule.source(), "0 12 * * 0");
        assert_eq!(schedule.to_string(), "0 12 * * 0");
        assert_eq!(schedule, Schedule::parse("0 12 * * 0").expect("valid"));
        assert_ne!(schedule, Schedule::parse("0 12 * * 7").expect("valid"));
    }

    #[test]
    fn bad_schedules_are_rejected() {
        for expr in [
            "",
            "* * * *",
            "* * * * * * * *",
            "61 * * * *",
            "0 0 * * 8",
            "0 0 * * 6-2",
            "0 0 * * 5/2",
            "0 0 * * 1-5/0",
            "0 0 * * 1-fri",
            "0 0 * * blursday",
            "@reboot",
            "@",
        ] {
            assert!(
                Schedule::parse(expr).is_err(),
                "{expr:?} should be rejected"
            );
        }
        assert_eq!(
            Schedule::parse("0 0 * * 8").map_err(|e| e.to_string()),
            Err(r#"invalid cron schedule "0 0 * * 8": invalid day of week "8""#.to_string())
        );
    }
}
