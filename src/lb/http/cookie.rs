//! Cookie persistence as HAProxy's `cookie NAME insert|prefix|rewrite` does it, on header maps (pure): find the server a request's cookie names, strip what the server must not see, and set or rewrite the cookie on the response; never chooses a server itself.
//!
//! * `insert`: the proxy owns the cookie `NAME=VALUE` (VALUE is the real
//!   server's `cookie`). It is set on a response when the request did not
//!   arrive with a valid cookie for the server that answered (first visit,
//!   or its server went down or was drained); with `indirect` it is also
//!   removed from requests passed to the server.
//! * `prefix`: the application's own cookie (a session id) carries the
//!   server: the proxy rewrites the server's `Set-Cookie: NAME=id` into
//!   `NAME=VALUE~id` and strips `VALUE~` from requests.
//! * `rewrite`: the server sets `NAME` to anything; the proxy replaces its
//!   value with the server's `VALUE`. Requests pass unchanged.

use hyper::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};

/// What separates the server's value from the application's in `prefix` mode.
pub const PREFIX_SEPARATOR: char = '~';

/// The value of cookie `name` in the request's `Cookie` headers (the first
/// one when repeated).
pub fn request_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    value_in_lines(
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok()),
        name,
    )
}

/// The value of cookie `name` in `Cookie` header lines (the first one
/// when repeated).
pub fn value_in_lines<'l>(lines: impl Iterator<Item = &'l str>, name: &str) -> Option<&'l str> {
    lines.flat_map(|line| line.split(';')).find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// The server part of a request cookie: all of it, or in prefix mode the
/// part before `~`.
pub fn server_part(value: &str, prefix: bool) -> &str {
    if prefix {
        value
            .split_once(PREFIX_SEPARATOR)
            .map_or(value, |(server, _)| server)
    } else {
        value
    }
}

/// Rewrites the request's `Cookie` headers: `name` removed (`insert` with
/// `indirect`), or `name=SERVER~rest` turned into `name=rest` (`prefix`).
/// A header left empty is dropped. Untouched headers keep their bytes.
pub fn strip_request(headers: &mut HeaderMap, name: &str, prefix: bool) {
    if request_value(headers, name).is_none() {
        return;
    }
    let old: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    headers.remove(COOKIE);
    for value in old {
        let Ok(line) = value.to_str() else {
            headers.append(COOKIE, value);
            continue;
        };
        if let Some(kept) = strip_line(line, name, prefix)
            && let Ok(value) = HeaderValue::from_str(&kept)
        {
            headers.append(COOKIE, value);
        }
    }
}

/// One `Cookie` line as [`strip_request`] rewrites it; None when nothing
/// is left of it.
pub fn strip_line(line: &str, name: &str, prefix: bool) -> Option<String> {
    let mut kept: Vec<String> = Vec::new();
    for pair in line.split(';') {
        let trimmed = pair.trim();
        match trimmed.split_once('=') {
            Some((key, value)) if key.trim() == name => {
                if prefix && let Some((_, rest)) = value.split_once(PREFIX_SEPARATOR) {
                    kept.push(format!("{}={rest}", key.trim()));
                }
            }
            _ if trimmed.is_empty() => {}
            _ => kept.push(trimmed.to_string()),
        }
    }
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Rewrites each `Set-Cookie: name=...` of a response: the value prefixed
/// with `server~` (`prefix`) or replaced by `server` (`rewrite`).
/// Attributes (`; Path=/`...) are kept.
pub fn rewrite_response(headers: &mut HeaderMap, name: &str, server: &str, prefix: bool) {
    let touches = headers
        .get_all(SET_COOKIE)
        .iter()
        .any(|value| set_cookie_name(value) == Some(name));
    if !touches {
        return;
    }
    let old: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    headers.remove(SET_COOKIE);
    for value in old {
        if set_cookie_name(&value) != Some(name) {
            headers.append(SET_COOKIE, value);
            continue;
        }
        let line = value.to_str().unwrap_or_default();
        let (pair, attributes) = match line.find(';') {
            Some(at) => line.split_at(at),
            None => (line, ""),
        };
        let current = pair.split_once('=').map_or("", |(_, v)| v.trim());
        let new_value = if prefix {
            format!("{name}={server}{PREFIX_SEPARATOR}{current}{attributes}")
        } else {
            format!("{name}={server}{attributes}")
        };
        match HeaderValue::from_str(&new_value) {
            Ok(rewritten) => headers.append(SET_COOKIE, rewritten),
            Err(_) => headers.append(SET_COOKIE, value),
        };
    }
}

/// The `Set-Cookie` value `insert` mode adds: `name=server; path=/`, and
/// `HttpOnly` / `Secure` when asked.
pub fn insert_value(name: &str, server: &str, httponly: bool, secure: bool) -> Option<HeaderValue> {
    let mut text = format!("{name}={server}; path=/");
    if httponly {
        text.push_str("; HttpOnly");
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).ok()
}

fn set_cookie_name(value: &HeaderValue) -> Option<&str> {
    let line = value.to_str().ok()?;
    let pair = line.split(';').next()?;
    Some(pair.split_once('=')?.0.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &hyper::header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn all(map: &HeaderMap, name: &hyper::header::HeaderName) -> Vec<String> {
        map.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn request_values_are_found_across_headers() {
        let map = headers(&COOKIE, &["a=1; SERVERID=s2", "SERVERID=s9; b=2"]);
        assert_eq!(request_value(&map, "SERVERID"), Some("s2"));
        assert_eq!(request_value(&map, "b"), Some("2"));
        assert_eq!(request_value(&map, "SERVER"), None);
        assert_eq!(server_part("s1~abc", true), "s1");
        assert_eq!(server_part("abc", true), "abc");
        assert_eq!(server_part("s1~abc", false), "s1~abc");
    }

    #[test]
    fn indirect_strips_the_cookie_and_prefix_strips_the_server() {
        let mut map = headers(&COOKIE, &["a=1; SERVERID=s2; b=2", "SERVERID=s2"]);
        strip_request(&mut map, "SERVERID", false);
        assert_eq!(all(&map, &COOKIE), ["a=1; b=2"]);

        let mut map = headers(&COOKIE, &["JSESSIONID=s1~abc; x=y"]);
        strip_request(&mut map, "JSESSIONID", true);
        assert_eq!(all(&map, &COOKIE), ["JSESSIONID=abc; x=y"]);

        let mut map = headers(&COOKIE, &["other=1"]);
        strip_request(&mut map, "JSESSIONID", true);
        assert_eq!(all(&map, &COOKIE), ["other=1"]);
    }

    #[test]
    fn responses_are_rewritten_or_prefixed_keeping_attributes() {
        let mut map = headers(
            &SET_COOKIE,
            &["JSESSIONID=abc; Path=/; HttpOnly", "other=1"],
        );
        rewrite_response(&mut map, "JSESSIONID", "s1", true);
        assert_eq!(
            all(&map, &SET_COOKIE),
            ["JSESSIONID=s1~abc; Path=/; HttpOnly", "other=1"]
        );
        let mut map = headers(&SET_COOKIE, &["SERVERID=anything"]);
        rewrite_response(&mut map, "SERVERID", "s2", false);
        assert_eq!(all(&map, &SET_COOKIE), ["SERVERID=s2"]);
        assert_eq!(
            insert_value("SERVERID", "s1", true, true).unwrap(),
            "SERVERID=s1; path=/; HttpOnly; Secure"
        );
    }
}
