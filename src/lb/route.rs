//! Content switching's conditions evaluated against one request (HAProxy's ACL matching for `use_backend`): a condition compiled once per table, then `holds(request facts)`; pure, no IO, no clock.

use std::net::IpAddr;

use hyper::HeaderMap;

use crate::config::model::{AclFetch, AclMatch, AclTest, Condition, Network};

/// What a condition may look at in a request.
pub struct Facts<'a> {
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The client's address (after `accept-proxy`).
    pub source: IpAddr,
}

/// A condition ready to evaluate (regexes and networks parsed).
#[derive(Debug)]
pub struct Compiled {
    unless: bool,
    any: Vec<Vec<(bool, Vec<Test>)>>,
}

#[derive(Debug)]
enum Test {
    Text {
        fetch: AclFetch,
        how: AclMatch,
        ignore_case: bool,
        values: Vec<String>,
        regexes: Vec<regex::Regex>,
    },
    Source(Vec<Network>),
    /// `method` with its own match (HAProxy's `meth`).
    Method {
        ignore_case: bool,
        values: Vec<String>,
    },
}

impl Compiled {
    /// Compile a condition. Values the config front ends already checked
    /// (networks, regexes) that still fail to parse never match.
    pub fn new(condition: &Condition) -> Compiled {
        Compiled {
            unless: condition.unless,
            any: condition
                .any
                .iter()
                .map(|all| {
                    all.iter()
                        .map(|u| (u.not, u.acl.tests.iter().map(compile_test).collect()))
                        .collect()
                })
                .collect(),
        }
    }

    /// Whether the condition holds for this request: some alternative whose
    /// every ACL holds (or, negated, does not), the whole flipped by
    /// `unless`. No alternative at all: true.
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        let holds = self.any.is_empty()
            || self.any.iter().any(|all| {
                all.iter()
                    .all(|(not, tests)| tests.iter().any(|t| t.holds(facts)) != *not)
            });
        holds != self.unless
    }
}

fn compile_test(test: &AclTest) -> Test {
    if test.fetch == AclFetch::Source && test.how == AclMatch::Ip {
        return Test::Source(
            test.values
                .iter()
                .filter_map(|v| Network::parse(v).ok())
                .collect(),
        );
    }
    if test.fetch == AclFetch::Method && test.how == AclMatch::Str {
        return Test::Method {
            ignore_case: test.ignore_case,
            values: test.values.clone(),
        };
    }
    let values = if test.ignore_case {
        test.values.iter().map(|v| v.to_ascii_lowercase()).collect()
    } else {
        test.values.clone()
    };
    let regexes = if test.how == AclMatch::Reg {
        test.values
            .iter()
            .filter_map(|v| {
                regex::RegexBuilder::new(v)
                    .case_insensitive(test.ignore_case)
                    .build()
                    .ok()
            })
            .collect()
    } else {
        Vec::new()
    };
    Test::Text {
        fetch: test.fetch.clone(),
        how: test.how,
        ignore_case: test.ignore_case,
        values,
        regexes,
    }
}

impl Test {
    fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Test::Source(networks) => networks.iter().any(|n| n.contains(facts.source)),
            Test::Method {
                ignore_case,
                values,
            } => values
                .iter()
                .any(|v| method_matches(facts.method, v, *ignore_case)),
            Test::Text {
                fetch,
                how,
                ignore_case,
                values,
                regexes,
            } => {
                let check = |sample: &str| {
                    if *how == AclMatch::Reg {
                        return regexes.iter().any(|r| r.is_match(sample));
                    }
                    let lowered;
                    let sample = if *ignore_case {
                        lowered = sample.to_ascii_lowercase();
                        lowered.as_str()
                    } else {
                        sample
                    };
                    values.iter().any(|v| text_matches(*how, sample, v))
                };
                match fetch {
                    AclFetch::Path => *how == AclMatch::Found || check(facts.path),
                    AclFetch::Method => *how == AclMatch::Found || check(facts.method),
                    AclFetch::Source => *how == AclMatch::Found,
                    AclFetch::Header(name) => {
                        let mut found = facts.headers.get_all(name.as_str()).iter().peekable();
                        if *how == AclMatch::Found {
                            return found.peek().is_some();
                        }
                        // HAProxy's hdr() takes each comma-separated value
                        // as an occurrence of its own.
                        found.any(|value| {
                            String::from_utf8_lossy(value.as_bytes())
                                .split(',')
                                .any(|part| check(part.trim_matches([' ', '\t'])))
                        })
                    }
                }
            }
        }
    }
}

/// The methods HAProxy knows by name (`find_http_meth`, case-sensitive).
const KNOWN_METHODS: &[&str] = &[
    "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT",
];

/// HAProxy's method match: a known method only as written (so `-i get`
/// does not match GET); another name against another method, `-i` without
/// case.
fn method_matches(method: &str, value: &str, ignore_case: bool) -> bool {
    if KNOWN_METHODS.contains(&value) {
        return method == value;
    }
    if KNOWN_METHODS.contains(&method) {
        return false;
    }
    if ignore_case {
        method.eq_ignore_ascii_case(value)
    } else {
        method == value
    }
}

/// One sample against one value (both already lowered for `-i`).
fn text_matches(how: AclMatch, sample: &str, value: &str) -> bool {
    match how {
        AclMatch::Str => sample == value,
        AclMatch::Beg => sample.starts_with(value),
        AclMatch::End => sample.ends_with(value),
        AclMatch::Sub => sample.contains(value),
        AclMatch::Dom => domain_matches(sample, value),
        AclMatch::Found => true,
        AclMatch::Reg | AclMatch::Ip => false,
    }
}

/// HAProxy's `dom` match: `value` appears in `sample` with a delimiter
/// (`/`, `?`, `.`, `:`) or the sample's end on both sides.
fn domain_matches(sample: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let delimiter = |c: Option<u8>| c.is_none_or(|c| matches!(c, b'/' | b'?' | b'.' | b':'));
    let bytes = sample.as_bytes();
    let mut from = 0;
    while let Some(pos) = sample[from..].find(value) {
        let start = from + pos;
        let end = start + value.len();
        let before = start.checked_sub(1).map(|i| bytes[i]);
        if delimiter(before) && delimiter(bytes.get(end).copied()) {
            return true;
        }
        from = start + 1;
        while !sample.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::acl::parse_condition;
    use crate::config::model::Acl;

    /// Check `condition` (anonymous ACLs only) against a request.
    fn check(
        condition: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        src: &str,
    ) -> bool {
        let (unless, text) = match condition.strip_prefix("unless ") {
            Some(rest) => (true, rest),
            None => (false, condition),
        };
        let words = crate::config::words::split(text).unwrap();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let none = |_: &str| -> Option<Acl> { None };
        let parsed = parse_condition(unless, &words, &none).unwrap().condition;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        Compiled::new(&parsed).holds(&Facts {
            method,
            path,
            headers: &map,
            source: src.parse().unwrap(),
        })
    }

    fn host(condition: &str, host: &str) -> bool {
        check(condition, "GET", "/", &[("host", host)], "127.0.0.1")
    }

    fn path(condition: &str, path: &str) -> bool {
        check(condition, "GET", path, &[], "127.0.0.1")
    }

    #[test]
    fn host_header_matches() {
        assert!(host("{ hdr(host) api.example.com }", "api.example.com"));
        assert!(!host("{ hdr(host) api.example.com }", "API.example.com"));
        assert!(host("{ hdr(host) -i api.example.com }", "API.Example.com"));
        // The whole value, port included, as HAProxy compares it.
        assert!(!host(
            "{ hdr(host) api.example.com }",
            "api.example.com:8080"
        ));
        assert!(host("{ hdr_beg(host) api. }", "api.example.com:8080"));
        assert!(host("{ hdr_end(host) .com }", "api.example.com"));
        assert!(host("{ hdr_sub(host) example }", "api.example.com"));
        assert!(host("{ hdr_dom(host) example.com }", "api.example.com"));
        assert!(host("{ hdr_dom(host) example.com }", "example.com:80"));
        assert!(!host("{ hdr_dom(host) example.com }", "myexample.com"));
        assert!(host("{ hdr_reg(host) ^a.i\\. }", "api.example.com"));
        assert!(host("{ hdr(host) -m found }", "x"));
        assert!(!check(
            "{ hdr(host) -m found }",
            "GET",
            "/",
            &[],
            "127.0.0.1"
        ));
        assert!(!check("{ hdr(host) x }", "GET", "/", &[], "127.0.0.1"));
    }

    #[test]
    fn headers_split_on_commas_and_every_occurrence_counts() {
        let headers = [("x-a", "one, two"), ("x-a", "three")];
        for value in ["one", "two", "three"] {
            assert!(check(
                &format!("{{ hdr(x-a) {value} }}"),
                "GET",
                "/",
                &headers,
                "::1"
            ));
        }
        assert!(!check(
            "{ hdr(x-a) \"one, two\" }",
            "GET",
            "/",
            &headers,
            "::1"
        ));
    }

    #[test]
    fn path_matches() {
        assert!(path("{ path_beg /static /img }", "/img/a.png"));
        assert!(!path("{ path_beg /static }", "/api/static"));
        assert!(path("{ path_end .css .js }", "/a/b.js"));
        assert!(path("{ path /exact }", "/exact"));
        assert!(!path("{ path /exact }", "/exact/"));
        assert!(path("{ path_sub /v2/ }", "/api/v2/x"));
        assert!(path("{ path_reg ^/a.*b$ }", "/axxb"));
        assert!(path("{ path_beg -i /STATIC }", "/Static/x"));
    }

    #[test]
    fn source_and_method_match() {
        let src = |c: &str, ip: &str| check(c, "GET", "/", &[], ip);
        assert!(src("{ src 127.0.0.2 }", "127.0.0.2"));
        assert!(!src("{ src 127.0.0.2 }", "127.0.0.3"));
        assert!(src("{ src 10.0.0.0/8 127.0.0.0/30 }", "127.0.0.3"));
        assert!(src("{ src 127.0.0.2 }", "::ffff:127.0.0.2"));
        assert!(check("{ method POST PUT }", "PUT", "/", &[], "::1"));
        assert!(!check("{ method POST }", "GET", "/", &[], "::1"));
        // As HAProxy: a known method only as written, even with -i.
        assert!(!check("{ method -i post }", "POST", "/", &[], "::1"));
        assert!(check("{ method -i purge }", "PURGE", "/", &[], "::1"));
        assert!(!check("{ method purge }", "PURGE", "/", &[], "::1"));
        assert!(!check("{ method get }", "GET", "/", &[], "::1"));
        assert!(check("{ method -m beg -i p }", "PUT", "/", &[], "::1"));
    }

    #[test]
    fn and_or_not_unless() {
        let c = "{ path_beg /api } { hdr(host) a } || ! { src 127.0.0.1 }";
        assert!(check(c, "GET", "/api/x", &[("host", "a")], "127.0.0.1"));
        assert!(!check(c, "GET", "/api/x", &[("host", "b")], "127.0.0.1"));
        assert!(check(c, "GET", "/", &[], "127.0.0.2"));
        assert!(!check(&format!("unless {c}"), "GET", "/", &[], "127.0.0.2"));
        assert!(check("unless { path_beg /api }", "GET", "/", &[], "::1"));
        assert!(check("", "GET", "/", &[], "::1"));
    }
}
