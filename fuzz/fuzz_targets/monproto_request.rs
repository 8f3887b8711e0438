//! Fuzz target: any bytes as a mon protocol request line parse to a command or a one-line refusal without panicking; escaping round-trips; auth.cf text and trap packets never panic.
#![no_main]

use keepmon::monproto::auth::AuthFile;
use keepmon::monproto::{self, Reply};
use libfuzzer_sys::fuzz_target;

fn one_status_line(reply: &Reply) {
    let wire = reply.render();
    let status_lines = wire
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 3 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' '
        })
        .count();
    assert!(status_lines >= 1, "{wire:?}");
    assert!(wire.ends_with('\n'));
    assert!(wire.lines().last().is_some_and(|l| l == reply.status));
}

fuzz_target!(|data: &[u8]| {
    match monproto::parse(data) {
        Err(reply) => assert_eq!(reply.status, "520 invalid command"),
        Ok(parsed) => match parsed.command {
            Err(reply) => {
                assert!(reply.status.starts_with('5'), "{reply:?}");
                assert!(reply.lines.is_empty());
                one_status_line(&reply);
            }
            Ok(command) => {
                // Commands cross the control channel as values; they must
                // also survive its JSON encoding.
                let json = serde_json::to_string(&command).expect("encode");
                let back: monproto::Command = serde_json::from_str(&json).expect("decode");
                assert_eq!(back, command);
            }
        },
    }
    let text = String::from_utf8_lossy(data);
    let no_backslash = text.replace('\\', "");
    assert_eq!(
        monproto::un_esc_str(&monproto::esc_str(&no_backslash, false)),
        no_backslash
    );
    let (auth, _problems) = AuthFile::parse(&text);
    let _ = auth.allows(Some("user"), "list");
    let _ = auth.allows(None, "list");
    // (No password checks here: a fuzzed bcrypt cost would only measure bcrypt.)
    let _ = monproto::trap::parse(data);
});
