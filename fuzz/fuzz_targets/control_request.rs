//! Fuzz target: any bytes on the control socket decode to a CLI request or a clear error, never a panic; a decoded request survives its own encoding; the daemon's responses decode the same way.
#![no_main]

use keepmon::control::proto::{self, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = proto::decode::<Request>(text) {
        let line = proto::encode(&request);
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        assert_eq!(
            proto::decode::<Request>(&line).expect("round trip"),
            request
        );
    }
    if let Ok(response) = proto::decode::<Response>(text) {
        let line = proto::encode(&response);
        assert!(proto::decode::<Response>(&line).is_ok(), "{line:?}");
    }
});
