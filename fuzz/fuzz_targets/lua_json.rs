//! Fuzz target: Lua's `json.decode` of any bytes gives a value or an error a script can catch, never a panic; what decodes encodes again, and that encoding decodes to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(encoded) = keepmon::lua::json_round_trip(data) {
        // Lua values → JSON is a normal form: a second trip is the identity.
        let again = keepmon::lua::json_round_trip(encoded.as_bytes())
            .expect("json.encode's output decodes");
        assert_eq!(again, encoded);
    }
});
