//! The wording of the native front end's messages: unknown keys with "did you mean", serde's errors in the config's terms, quoting keys and showing values.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::cursor::KeyPath;
use crate::config::values;

pub(super) fn unknown_key_message(path: &KeyPath, key: &str, valid: &[&str]) -> String {
    let prefix = if path.0.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    let list = if valid.is_empty() {
        "none".to_string()
    } else {
        valid.join(", ")
    };
    format!(
        "{prefix}unknown key {key:?}{} (valid keys: {list})",
        did_you_mean(key, valid)
    )
}

/// `; did you mean "x"?` for a likely typo of a known word, ignoring ASCII
/// case on both sides.
pub(super) fn did_you_mean(word: &str, known: &[&str]) -> String {
    let folded: Vec<String> = known.iter().map(|k| k.to_ascii_lowercase()).collect();
    let folded: Vec<&str> = folded.iter().map(String::as_str).collect();
    values::suggest(&word.to_ascii_lowercase(), &folded)
        .and_then(|s| folded.iter().position(|f| *f == s))
        .map(|i| format!("; did you mean {:?}?", known[i]))
        .unwrap_or_default()
}

/// serde's wording (`invalid type: string "x", expected u16`) in the
/// config's terms (`expected an integer from 0 to 65535, found string "x"`).
pub(super) fn explain_serde_message(message: &str) -> String {
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|r| r.split_once(", expected "))
    {
        return format!(
            "expected {}, found {}",
            plain_expected(expected),
            plain_found(found)
        );
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid value: ")
        .and_then(|r| r.split_once(", expected "))
    {
        let value = found.trim_start_matches("integer ").replace('`', "");
        return format!(
            "{value} is out of range (expected {})",
            plain_expected(expected)
        );
    }
    lowercase_first(message)
}

fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" => "an integer from 0 to 255".to_string(),
        "u16" => "an integer from 0 to 65535".to_string(),
        "u32" => "an integer from 0 to 4294967295".to_string(),
        "u64" | "usize" => "a non-negative integer".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        e if e.starts_with("struct ") => "a table".to_string(),
        e => e.to_string(),
    }
}

fn plain_found(found: &str) -> String {
    match found {
        "sequence" => "an array".to_string(),
        "map" => "a table".to_string(),
        f => f.replace("floating point", "float").replace('`', ""),
    }
}

pub(super) fn found(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer {}", i.as_str()),
        DeValue::Float(f) => format!("float {}", f.as_str()),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
        DeValue::Datetime(_) => "a date-time".to_string(),
    }
}

pub(super) fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn show_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directories".to_string();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn show_duration(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A key as it would be written in TOML: bare when it can be.
pub(super) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::native::testing::check;

    #[test]
    fn did_you_mean_suggests_a_near_word() {
        assert_eq!(
            did_you_mean("intreval", &["interval", "timeout"]),
            "; did you mean \"interval\"?"
        );
        assert_eq!(did_you_mean("x", &["interval"]), "");
        assert_eq!(
            did_you_mean("bakup", &["BACKUP", "MASTER"]),
            "; did you mean \"BACKUP\"?"
        );
    }

    #[test]
    fn unknown_keys_suggest_the_nearest_valid_key() {
        check(
            "[virtual_servers.web]\nlisten = \"127.0.0.1:80\"\nreal_server = []\n",
            &[
                "3:1: error: virtual_servers.web: unknown key \"real_server\"; did you mean \"real_servers\"? (valid keys: listen, fwmark, protocol, scheduler, scheduler_flags, dataplane, persistence, persistence_netmask, sorry_server, quorum, hysteresis, health, retries, connect_timeout, real_servers, mode, maxconn, timeout, forwardfor, forwarded_proto, cookie, hash, tls, server_tls, send_proxy, accept_proxy, allbackups, error_files, access_log, backend, acls, routes)",
            ],
        );
        // Nothing close: no guess.
        check(
            "[vrrp.v1]\nflavour = 1\n",
            &[
                "1:7: error: vrrp.v1: missing key \"interface\" (e.g. interface = \"eth0\")",
                "1:7: error: vrrp.v1: missing key \"virtual_router_id\" (1 to 255, the same on every router of the group)",
                "1:7: error: vrrp.v1: missing key \"virtual_ipaddress\" (e.g. virtual_ipaddress = [\"10.0.0.100/24\"])",
                "2:1: error: vrrp.v1: unknown key \"flavour\" (valid keys: interface, virtual_router_id, priority, advert_int, version, state, nopreempt, preempt_delay, auth_pass, virtual_ipaddress, virtual_ipaddress_excluded, unicast_src_ip, unicast_peer, garp_master_delay, garp_master_repeat, garp_master_refresh, track, track_interface, track_file, track_process, track_bfd, v3_checksum_as_v2, notify)",
            ],
        );
    }
}
