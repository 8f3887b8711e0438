//! Fuzz target: any request line, form body, JSON body or Authorization header the web page receives is routed, decoded or refused without panicking; percent-encoding round-trips.
#![no_main]

use keepmon::web::{self, Action};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (method, path) = text.split_once(' ').unwrap_or(("GET", &text));
    let _ = web::route(method, path);
    let fields = web::parse_form(&text);
    if let Ok(action) = Action::from_form(&fields) {
        let _ = action.command();
    }
    if let Ok(action) = Action::from_json(data) {
        let _ = action.command();
    }
    assert_eq!(web::percent_decode(&web::percent_encode(&text)), text);
    let _ = web::auth::basic_credentials(&text);
    let _ = web::auth::bearer_token(&text);
});
