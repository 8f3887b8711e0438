//! Fuzz target: the dns monitor's query encoder and answer judge, and the hex strings of the udp monitor (native and keepalived's readings), never panic; a query names what it was built from, and a query read as an answer is ignored until its QR bit is set.
#![no_main]

use keepmon::config::keepalived::numbers::hex_str;
use keepmon::config::model::HexPattern;
use keepmon::monitor::dns::{Verdict, encode_query, judge_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let id = u16::from_be_bytes([data[0], data[1]]);
    let query_type = u16::from_be_bytes([data[2], data[3]]);
    let rest = &data[4..];
    judge_answer(id, rest);

    let text = String::from_utf8_lossy(rest);
    if let Ok(mut query) = encode_query(id, &text, query_type) {
        assert_eq!(&query[..2], &id.to_be_bytes());
        assert_eq!(
            &query[query.len() - 4..query.len() - 2],
            &query_type.to_be_bytes()
        );
        assert!(query.len() <= 12 + 255 + 4);
        assert_eq!(judge_answer(id, &query), Verdict::Ignore);
        query[2] |= 0x80;
        assert_eq!(judge_answer(id, &query), Verdict::Pass);
        query[3] |= 0x03;
        assert_eq!(judge_answer(id, &query), Verdict::Fail(3));
    }

    for wildcards in [false, true] {
        if let Ok(pattern) = HexPattern::parse(&text, wildcards) {
            assert_eq!(pattern.bytes.len(), pattern.mask.len());
            assert_eq!(HexPattern::parse(&pattern.to_hex(), true), Ok(pattern));
        }
        if let Some(pattern) = hex_str(&text, wildcards) {
            assert_eq!(pattern.bytes.len(), pattern.mask.len());
            assert!(wildcards || pattern.mask.iter().all(|&m| m == 0));
        }
    }
});
