//! keepalived's number and hex-string readers (lib/parser.c `read_unsigned_func`, `read_int_func`, `read_decimal_unsigned_long_func`, `read_hex_str`) with the values a running keepalived ends up with; pure.
//!
//! keepalived reports a bad number and then, for most keywords, either
//! ignores the line or uses the part it could read. Each reader returns the
//! value the running daemon uses (if any) and the message keepalived logs
//! (if any), so callers can do the same and warn.

use crate::config::model::HexPattern;

/// What keepalived made of a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read<T> {
    /// The value the running keepalived uses; None when it rejects the number.
    pub value: Option<T>,
    /// What keepalived logs about it, when anything.
    pub complaint: Option<String>,
}

impl<T> Read<T> {
    fn ok(value: T) -> Read<T> {
        Read {
            value: Some(value),
            complaint: None,
        }
    }

    fn bad(value: Option<T>, complaint: String) -> Read<T> {
        Read {
            value,
            complaint: Some(complaint),
        }
    }
}

/// `read_unsigned` (base 10): leading blanks skipped; a trailing non-digit
/// is an error that a running keepalived forgives when `lenient` (the
/// handler's `ignore_error`) and the digits before it are in range.
pub fn unsigned(text: &str, min: u64, max: u64, lenient: bool) -> Read<u64> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (value, rest, overflow) = strtoul(trimmed);
    if trimmed.starts_with('-') {
        return Read::bad(None, format!("negative number '{text}'"));
    }
    if !rest.is_empty() {
        let forgiven = lenient && (min..=max).contains(&value) && !overflow;
        return Read::bad(
            forgiven.then_some(value),
            format!("invalid number '{text}'"),
        );
    }
    if overflow || value > u64::from(u32::MAX) {
        return Read::bad(
            None,
            format!("number '{text}' outside unsigned integer range"),
        );
    }
    if !(min..=max).contains(&value) {
        return Read::bad(
            None,
            format!("number '{text}' outside range [{min}, {max}]"),
        );
    }
    Read::ok(value)
}

/// `read_int` (base 10), with the same leniency rule as [`unsigned`].
pub fn int(text: &str, min: i64, max: i64, lenient: bool) -> Read<i64> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (magnitude, rest, overflow) = strtoul(digits);
    let consumed_digits = digits.len() - rest.len();
    let value = i64::try_from(magnitude).unwrap_or(i64::MAX);
    let value = if negative { -value } else { value };
    if !rest.is_empty() || consumed_digits == 0 {
        let forgiven = lenient && (min..=max).contains(&value) && !overflow;
        return Read::bad(
            forgiven.then_some(value),
            format!("invalid number '{text}'"),
        );
    }
    if overflow || value < i64::from(i32::MIN) || value > i64::from(i32::MAX) {
        return Read::bad(None, format!("number '{text}' outside integer range"));
    }
    if !(min..=max).contains(&value) {
        return Read::bad(
            None,
            format!("number '{text}' outside range [{min}, {max}]"),
        );
    }
    Read::ok(value)
}

/// `read_decimal_unsigned` with keepalived's timer precision (6 decimal
/// places): `1.5` is 1_500_000 micro-units. `min` and `max` are in
/// micro-units.
pub fn decimal_micros(text: &str, min: u64, max: u64, lenient: bool) -> Read<u64> {
    decimal(text, 6, min, max, lenient)
}

/// `read_decimal_unsigned` with `SHIFT` decimal places: with 3, `1.5` is
/// 1500 (keepalived's BFD intervals: milliseconds read as microseconds).
pub fn decimal(text: &str, shift: usize, min: u64, max: u64, lenient: bool) -> Read<u64> {
    let shift = shift.min(9);
    if text.starts_with('-') {
        return Read::bad(None, format!("negative number '{text}'"));
    }
    let mut complaint = None;
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let mut round_up = false;
    let fraction = if fraction.len() > shift {
        complaint = Some(format!("number '{text}' has too many decimal places"));
        round_up = fraction.as_bytes()[shift] >= b'5';
        &fraction[..shift]
    } else {
        fraction
    };
    let digits = format!("{whole}{fraction:0<shift$}");
    let (mut value, rest, overflow) = strtoul(&digits);
    if round_up {
        value = value.saturating_add(1);
    }
    if !rest.is_empty() {
        let forgiven = lenient && (min..=max).contains(&value) && !overflow;
        return Read::bad(
            forgiven.then_some(value),
            format!("invalid number '{text}'"),
        );
    }
    if overflow {
        return Read::bad(
            None,
            format!("number '{text}' outside unsigned decimal range"),
        );
    }
    if !(min..=max).contains(&value) {
        return Read::bad(
            None,
            format!(
                "number '{text}' outside range [{}, {}]",
                show_shifted(min, shift),
                show_shifted(max, shift)
            ),
        );
    }
    Read {
        value: Some(value),
        complaint,
    }
}

/// keepalived's `check_true_false`: on/true/yes or off/false/no.
pub fn true_false(text: &str) -> Option<bool> {
    match text {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

fn show_shifted(value: u64, shift: usize) -> String {
    let scale = 10u64.pow(u32::try_from(shift).unwrap_or(9));
    if shift == 0 {
        return value.to_string();
    }
    format!("{}.{:0shift$}", value / scale, value % scale)
}

/// C's `strtoul(text, &end, 10)` on an already blank-stripped text: the
/// value of the leading digits, the rest, and whether it overflowed.
fn strtoul(text: &str) -> (u64, &str, bool) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let mut value: u64 = 0;
    let mut overflow = false;
    for b in text[..end].bytes() {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = u64::MAX;
            }
        }
    }
    (value, &text[end..], overflow)
}

/// keepalived's `read_hex_str` (lib/parser.c): octets as one or two hex
/// digits each, spaces and tabs between them, `x` wildcard nibbles when
/// `wildcards`. None where keepalived reports "Invalid hex string": a
/// character that is not hex, nothing at all, and (keepalived's own
/// check, which mistakes it for an error) a last octet of `ff`.
pub fn hex_str(text: &str, wildcards: bool) -> Option<HexPattern> {
    const BAD: u8 = 0xff;
    const WILD: u8 = 0xfe;
    let nibble = |c: u8| -> u8 {
        if c.is_ascii_digit() {
            return c - b'0';
        }
        let upper = if c >= b'a' { c - (b'a' - b'A') } else { c };
        match upper {
            b'A'..=b'F' => upper - b'A' + 10,
            b'X' if wildcards => WILD,
            _ => BAD,
        }
    };
    let text = text.as_bytes();
    let mut pattern = HexPattern {
        bytes: Vec::new(),
        mask: Vec::new(),
    };
    let mut at = 0;
    let mut value = 0u8;
    loop {
        while matches!(text.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        let Some(&c) = text.get(at) else {
            break;
        };
        at += 1;
        value = nibble(c);
        if value == BAD {
            break;
        }
        let mut mask = 0u8;
        if value == WILD {
            mask = 0x0f;
            value = 0;
        }
        if let Some(&c) = text.get(at).filter(|&&c| c != b' ') {
            at += 1;
            let high = value << 4;
            mask <<= 4;
            value = nibble(c);
            if value == BAD {
                break;
            }
            if value == WILD {
                mask |= 0x0f;
                value = 0;
            }
            value |= high;
        }
        pattern.bytes.push(value);
        pattern.mask.push(mask);
    }
    (value != BAD && !pattern.bytes.is_empty()).then_some(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_follows_keepalived() {
        assert_eq!(unsigned("51", 1, 255, false), Read::ok(51));
        let r = unsigned("300", 1, 255, false);
        assert_eq!(r.value, None);
        assert_eq!(
            r.complaint.as_deref(),
            Some("number '300' outside range [1, 255]")
        );
        // A running keepalived keeps the digits before the junk when the
        // handler is lenient.
        assert_eq!(unsigned("10abc", 0, 100, true).value, Some(10));
        assert_eq!(unsigned("10abc", 0, 100, false).value, None);
        assert_eq!(unsigned("-1", 0, 100, true).value, None);
    }

    #[test]
    fn int_reads_signs() {
        assert_eq!(int("-20", -253, 253, true), Read::ok(-20));
        assert_eq!(int("+5", -253, 253, true), Read::ok(5));
        // strtol reads no digits: 0, which a running keepalived keeps.
        assert_eq!(int("x", -253, 253, true).value, Some(0));
        assert_eq!(int("x", -253, 253, false).value, None);
        assert_eq!(int("300", -253, 253, true).value, None);
    }

    #[test]
    fn decimals_are_micro_units() {
        assert_eq!(
            decimal_micros("1", 10_000, 255_000_000, true).value,
            Some(1_000_000)
        );
        assert_eq!(
            decimal_micros("0.5", 10_000, 255_000_000, true).value,
            Some(500_000)
        );
        assert_eq!(decimal_micros("0", 10_000, 255_000_000, true).value, None);
        let r = decimal_micros("1.0000005", 0, 255_000_000, true);
        assert_eq!(r.value, Some(1_000_001));
        assert!(r.complaint.is_some());
    }

    #[test]
    fn hex_strings_read_as_keepalived_reads_them() {
        let read = |text: &str, wild: bool| hex_str(text, wild).map(|p| (p.bytes, p.mask));
        assert_eq!(
            read("0a 1B\t2", false),
            Some((vec![0x0a, 0x1b, 0x02], vec![0, 0, 0]))
        );
        assert_eq!(read("0a1b", false), Some((vec![0x0a, 0x1b], vec![0, 0])));
        assert_eq!(
            read("5x X0", true),
            Some((vec![0x50, 0x00], vec![0x0f, 0xf0]))
        );
        assert_eq!(read("5x", false), None);
        assert_eq!(read("zz", false), None);
        assert_eq!(read("", false), None);
        assert_eq!(read("0a\t1", false), Some((vec![0x0a, 0x01], vec![0, 0])));
        // A tab right after an octet's first digit is read as its second.
        assert_eq!(read("a\tb", false), None);
        // keepalived takes a last octet of ff for its error marker.
        assert_eq!(read("0a ff", false), None);
        assert_eq!(read("ff 0a", false), Some((vec![0xff, 0x0a], vec![0, 0])));
    }
}
