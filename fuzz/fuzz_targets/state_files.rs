//! Fuzz target: a state file or an outbox letter of any content loads or is refused without panicking, and what loads saves back to the same value; the mon userfile of any content parses.
#![no_main]

use keepmon::mail::outbox::Entry;
use keepmon::state::Persisted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = serde_json::from_slice::<Persisted>(data) {
        let saved = serde_json::to_vec(&state).expect("encode");
        let back: Persisted = serde_json::from_slice(&saved).expect("decode");
        assert_eq!(back, state);
        let _ = state.disabled.to_mon_format();
    }
    if let Ok(entry) = serde_json::from_slice::<Entry>(data) {
        let saved = serde_json::to_vec(&entry).expect("encode");
        let back: Entry = serde_json::from_slice(&saved).expect("decode");
        assert_eq!(back, entry);
    }
    let text = String::from_utf8_lossy(data);
    let users = keepmon::monproto::auth::parse_userfile(&text);
    assert!(users.keys().all(|u| !u.contains('\n')));
});
