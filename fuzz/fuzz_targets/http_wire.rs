//! Fuzz target: the http fast path's byte-level rewriting: any request head it forwards is rewritten into a head that parses whole and carries no framing or hop-by-hop header, any response head it takes is rewritten into a head that parses whole, and a chunked body ends at the same byte however its bytes are split.
#![no_main]

use keepmon::lb::http::wire::{self, Additions, Chunks, Framing, ResponseHead, Rewrite, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => request(input, selector & 0x80 != 0),
        1 => response(input, selector & 0x80 != 0),
        _ => chunks(input, usize::from(selector >> 2).max(1)),
    }
});

fn request(input: &[u8], cookie: bool) {
    let rewrite = Rewrite {
        forwardfor: Some(("x-forwarded-for", "192.0.2.7")),
        forwarded_proto: Some(("http", 80)),
        cookie: cookie.then_some(("SERVERID", true)),
    };
    let mut out = Vec::new();
    let Verdict::Forward(forwarded) = wire::classify(input, &rewrite, |_| false, &mut out) else {
        return;
    };
    assert!(forwarded.len <= input.len());
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut headers);
    let status = parsed.parse(&out).expect("the rewritten head parses");
    assert_eq!(
        status,
        httparse::Status::Complete(out.len()),
        "one whole head"
    );
    assert_eq!(parsed.version, Some(1));
    for header in parsed.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        assert!(
            !matches!(
                name.as_str(),
                "transfer-encoding" | "connection" | "upgrade" | "expect" | "keep-alive" | "te"
            ),
            "{name} forwarded"
        );
        if name == "content-length" {
            assert_eq!(header.value, b"0");
        }
    }
}

fn response(input: &[u8], head: bool) {
    let additions = Additions {
        set_cookie: Some((b"SERVERID=s1; path=/", true)),
        close: !head,
    };
    let mut out = Vec::new();
    let ResponseHead::Final(response) = wire::response_head(input, head, &additions, &mut out)
    else {
        return;
    };
    assert!(response.len <= input.len());
    assert!(response.status >= 200);
    if head {
        assert_eq!(response.framing, Framing::Empty);
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Response::new(&mut headers);
    let status = parsed.parse(&out).expect("the rewritten head parses");
    assert_eq!(
        status,
        httparse::Status::Complete(out.len()),
        "one whole head"
    );
}

fn chunks(input: &[u8], step: usize) {
    let mut whole = Chunks::default();
    let at_once = whole.scan(input);
    let mut split = Chunks::default();
    let mut taken = 0;
    let mut failed = false;
    for piece in input.chunks(step) {
        match split.scan(piece) {
            Ok(n) => {
                assert!(n <= piece.len());
                taken += n;
                if split.done() {
                    break;
                }
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    match at_once {
        Ok(n) => {
            assert!(!failed, "refused only when split");
            assert_eq!(whole.done(), split.done());
            assert_eq!(n, taken, "ends at the same byte");
        }
        Err(_) => assert!(failed, "accepted only when split"),
    }
}
