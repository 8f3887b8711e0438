//! HAProxy's ACL and condition language as text (`hdr(host) -i a.example`, `is_api || !{ path_beg /static }`): parsing words into the model's `Condition` and printing it back; shared by the haproxy.cfg and TOML front ends, never evaluates anything.
//!
//! The subset keepmon runs: the criteria `hdr(NAME)` (and `hdr_beg`,
//! `hdr_end`, `hdr_sub`, `hdr_dom`, `hdr_reg`), `path` (and `path_beg`,
//! `path_end`, `path_sub`, `path_dom`, `path_reg`), `method` and `src`; the
//! flags `-i`, `-m str|beg|end|sub|dom|reg|found|ip` and `--`. A criterion
//! HAProxy knows and keepmon does not run is an [`AclError::Unsupported`];
//! one HAProxy does not know either is an [`AclError::Haproxy`] with
//! HAProxy 2.6's wording.

use crate::config::model::{Acl, AclFetch, AclMatch, AclTest, AclUse, Condition, Network};

/// Why ACL words could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclError {
    /// HAProxy refuses this too (its own wording).
    Haproxy(String),
    /// HAProxy runs this; keepmon cannot (what it is).
    Unsupported(String),
}

/// A test and the warning HAProxy gives about it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTest {
    pub test: AclTest,
    pub warning: Option<String>,
}

/// HAProxy's warning for a test without values.
pub const NO_PATTERN: &str = "no pattern to match against were provided, so this ACL will never match. If this is what you intended, please add '--' to get rid of this warning. If you intended to match only for existence, please use '-m found'";

/// Read `CRITERION [FLAGS] [VALUE...]` (an `acl` line after its name, or
/// the inside of `{ ... }`).
pub fn parse_test(words: &[&str]) -> Result<ParsedTest, AclError> {
    let Some((&criterion, rest)) = words.split_first() else {
        return Err(AclError::Haproxy(
            "missing fetch method in ACL expression ''".to_string(),
        ));
    };
    let (fetch, mut how) = criterion_of(criterion)?;
    let mut ignore_case = false;
    let mut explicit_end = false;
    let mut i = 0;
    while let Some(word) = rest.get(i).filter(|w| w.starts_with('-')) {
        match *word {
            "-i" => ignore_case = true,
            "--" => {
                explicit_end = true;
                i += 1;
                break;
            }
            "-m" => {
                let method = rest.get(i + 1).copied().unwrap_or("");
                how = match method {
                    "str" => AclMatch::Str,
                    "beg" => AclMatch::Beg,
                    "end" => AclMatch::End,
                    "sub" => AclMatch::Sub,
                    "dom" => AclMatch::Dom,
                    "reg" => AclMatch::Reg,
                    "found" => AclMatch::Found,
                    "ip" => AclMatch::Ip,
                    "bool" | "int" | "bin" | "len" | "dir" => {
                        return Err(AclError::Unsupported(format!(
                            "the ACL match method '-m {method}'"
                        )));
                    }
                    other => {
                        return Err(AclError::Haproxy(format!(
                            "unknown matching method '{other}' when parsing ACL expression"
                        )));
                    }
                };
                i += 1;
            }
            "-f" | "-M" | "-n" | "-u" => {
                return Err(AclError::Unsupported(format!("the ACL flag '{word}'")));
            }
            other => {
                return Err(AclError::Haproxy(format!(
                    "'{other}' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'"
                )));
            }
        }
        i += 1;
    }
    let values: Vec<String> = rest[i.min(rest.len())..]
        .iter()
        .map(|v| v.to_string())
        .collect();
    match (&fetch, how) {
        (AclFetch::Source, AclMatch::Ip | AclMatch::Found) => {}
        (AclFetch::Source, other) => {
            return Err(AclError::Unsupported(format!(
                "'src' matched with '-m {}'",
                match_name(other)
            )));
        }
        (_, AclMatch::Ip) => {
            return Err(AclError::Unsupported(format!(
                "'{}' matched with '-m ip'",
                fetch_keyword(&fetch)
            )));
        }
        _ => {}
    }
    if how == AclMatch::Ip {
        for value in &values {
            if Network::parse(value).is_err() {
                return Err(AclError::Haproxy(format!(
                    "'{value}' is not a valid IPv4 or IPv6 address"
                )));
            }
        }
    }
    if how == AclMatch::Reg {
        for value in &values {
            let pattern = if ignore_case {
                format!("(?i){value}")
            } else {
                value.clone()
            };
            if let Err(e) = regex::Regex::new(&pattern) {
                return Err(AclError::Haproxy(format!(
                    "regex '{value}' is invalid ({})",
                    e.to_string().lines().last().unwrap_or("").trim()
                )));
            }
        }
    }
    let warning = (values.is_empty() && how != AclMatch::Found && !explicit_end)
        .then(|| NO_PATTERN.to_string());
    Ok(ParsedTest {
        test: AclTest {
            fetch,
            how,
            ignore_case,
            values,
        },
        warning,
    })
}

/// A condition and the warnings HAProxy gives about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCondition {
    pub condition: Condition,
    pub warnings: Vec<String>,
}

/// Read a condition's words (those after `if` or `unless`): ACL names
/// (looked up with `named`), `!` before one (or several), side by side for
/// "and", `||` or `or` between alternatives, `{ TEST }` for an anonymous ACL.
pub fn parse_condition(
    unless: bool,
    words: &[&str],
    named: &dyn Fn(&str) -> Option<Acl>,
) -> Result<ParsedCondition, AclError> {
    let mut any: Vec<Vec<AclUse>> = Vec::new();
    let mut all: Vec<AclUse> = Vec::new();
    let mut warnings = Vec::new();
    // As HAProxy: `!` words flip a negation that the next ACL takes.
    let mut not = false;
    let mut i = 0;
    while i < words.len() {
        let mut word = words[i];
        while let Some(rest) = word.strip_prefix('!') {
            not = !not;
            word = rest;
        }
        if word.is_empty() {
            i += 1;
            continue;
        }
        if word.eq_ignore_ascii_case("or") || word == "||" {
            if !all.is_empty() {
                any.push(std::mem::take(&mut all));
            }
            i += 1;
            continue;
        }
        let (acl, used) = next_acl(word, &words[i + 1..], named, &mut warnings)?;
        i += 1 + used;
        all.push(AclUse { not, acl });
        not = false;
    }
    if !all.is_empty() {
        any.push(all);
    }
    Ok(ParsedCondition {
        condition: Condition { unless, any },
        warnings,
    })
}

/// A condition as the words [`parse_condition`] reads (without `if` or
/// `unless`): named ACLs by name, anonymous ones in braces.
pub fn condition_text(condition: &Condition) -> String {
    condition
        .any
        .iter()
        .map(|all| {
            all.iter()
                .map(|u| {
                    let bang = if u.not { "!" } else { "" };
                    match &u.acl.name {
                        Some(name) => format!("{bang}{name}"),
                        None => {
                            let tests: Vec<String> = u.acl.tests.iter().map(test_text).collect();
                            format!("{bang}{{ {} }}", tests.join(" "))
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// A test as the words [`parse_test`] reads, values quoted where needed.
pub fn test_text(test: &AclTest) -> String {
    let (keyword, how) = keyword_for(&test.fetch, test.how);
    let mut words = vec![keyword];
    if let Some(how) = how {
        words.push(format!("-m {}", match_name(how)));
    }
    if test.ignore_case {
        words.push("-i".to_string());
    }
    if test.values.iter().any(|v| v.starts_with('-'))
        || (test.values.is_empty() && test.how != AclMatch::Found)
    {
        words.push("--".to_string());
    }
    words.extend(test.values.iter().map(|v| quote(v)));
    words.join(" ")
}

/// The keyword HAProxy writes for a fetch (`hdr(host)`, `path`, ...).
pub fn fetch_keyword(fetch: &AclFetch) -> String {
    match fetch {
        AclFetch::Header(name) => format!("hdr({name})"),
        AclFetch::Path => "path".to_string(),
        AclFetch::Method => "method".to_string(),
        AclFetch::Source => "src".to_string(),
    }
}

/// `-m` names.
pub fn match_name(how: AclMatch) -> &'static str {
    match how {
        AclMatch::Str => "str",
        AclMatch::Beg => "beg",
        AclMatch::End => "end",
        AclMatch::Sub => "sub",
        AclMatch::Dom => "dom",
        AclMatch::Found => "found",
        AclMatch::Reg => "reg",
        AclMatch::Ip => "ip",
    }
}

/// The ACL that `word` (its `!` already taken off) starts, and how many of
/// the words after it it used.
fn next_acl(
    word: &str,
    rest: &[&str],
    named: &dyn Fn(&str) -> Option<Acl>,
    warnings: &mut Vec<String>,
) -> Result<(Acl, usize), AclError> {
    if word == "{" {
        let Some(close) = rest.iter().position(|w| *w == "}") else {
            return Err(AclError::Haproxy(
                "missing closing '}' in condition".to_string(),
            ));
        };
        let parsed = parse_test(&rest[..close])?;
        warnings.extend(parsed.warning);
        return Ok((
            Acl {
                name: None,
                tests: vec![parsed.test],
            },
            close + 1,
        ));
    }
    match named(word) {
        Some(acl) => Ok((acl, 0)),
        None => Err(AclError::Haproxy(format!("no such ACL : '{word}'"))),
    }
}

/// The fetch and default match of a criterion keyword.
fn criterion_of(criterion: &str) -> Result<(AclFetch, AclMatch), AclError> {
    let (name, arg) = match criterion.split_once('(') {
        Some((name, rest)) => match rest.strip_suffix(')') {
            Some(arg) => (name, Some(arg)),
            None => {
                return Err(AclError::Haproxy(format!(
                    "missing closing ')' after arguments to fetch keyword '{name}' in ACL expression '{criterion}'"
                )));
            }
        },
        None => (criterion, None),
    };
    let header = |how| match arg {
        Some(h) if !h.is_empty() && !h.contains(',') => Ok((AclFetch::Header(h.to_string()), how)),
        Some(h) if h.contains(',') => Err(AclError::Unsupported(format!(
            "a header occurrence in '{criterion}' (keepmon looks at every occurrence)"
        ))),
        _ => Err(AclError::Unsupported(format!(
            "'{name}' without a header name"
        ))),
    };
    let plain = |fetch, how| match arg {
        None | Some("") => Ok((fetch, how)),
        Some(_) => Err(AclError::Haproxy(format!(
            "fetch method '{name}' : no argument supported, but got '{}' in ACL expression '{criterion}'",
            arg.unwrap_or("")
        ))),
    };
    match name {
        "hdr" => header(AclMatch::Str),
        "hdr_beg" => header(AclMatch::Beg),
        "hdr_end" => header(AclMatch::End),
        "hdr_sub" => header(AclMatch::Sub),
        "hdr_dom" => header(AclMatch::Dom),
        "hdr_reg" => header(AclMatch::Reg),
        "path" => plain(AclFetch::Path, AclMatch::Str),
        "path_beg" => plain(AclFetch::Path, AclMatch::Beg),
        "path_end" => plain(AclFetch::Path, AclMatch::End),
        "path_sub" => plain(AclFetch::Path, AclMatch::Sub),
        "path_dom" => plain(AclFetch::Path, AclMatch::Dom),
        "path_reg" => plain(AclFetch::Path, AclMatch::Reg),
        "method" => plain(AclFetch::Method, AclMatch::Str),
        "src" => plain(AclFetch::Source, AclMatch::Ip),
        n if HAPROXY_FETCHES.contains(&n) => {
            Err(AclError::Unsupported(format!("the ACL criterion '{n}'")))
        }
        n => Err(AclError::Haproxy(format!(
            "unknown fetch method '{n}' in ACL expression '{criterion}'"
        ))),
    }
}

/// The keyword for a fetch and match, and the `-m` to add when no keyword
/// of its own exists.
fn keyword_for(fetch: &AclFetch, how: AclMatch) -> (String, Option<AclMatch>) {
    let suffix = match how {
        AclMatch::Beg => "_beg",
        AclMatch::End => "_end",
        AclMatch::Sub => "_sub",
        AclMatch::Dom => "_dom",
        AclMatch::Reg => "_reg",
        AclMatch::Str | AclMatch::Found | AclMatch::Ip => "",
    };
    match (fetch, how) {
        (AclFetch::Header(h), AclMatch::Found) => (format!("hdr({h})"), Some(how)),
        (AclFetch::Header(h), _) => (format!("hdr{suffix}({h})"), None),
        (AclFetch::Path, AclMatch::Found) => ("path".into(), Some(how)),
        (AclFetch::Path, _) => (format!("path{suffix}"), None),
        (AclFetch::Method, AclMatch::Str) => ("method".into(), None),
        (AclFetch::Method, _) => ("method".into(), Some(how)),
        (AclFetch::Source, AclMatch::Ip) => ("src".into(), None),
        (AclFetch::Source, _) => ("src".into(), Some(how)),
    }
}

/// A value as one word for HAProxy's lexer and keepmon's word splitter.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.chars().any(|c| {
            c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '#' | '$' | '{' | '}' | '!')
        })
        && value != "||"
        && !value.eq_ignore_ascii_case("or");
    if plain {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Sample fetches HAProxy 2.6 has that keepmon's ACLs do not run (the
/// common ones; anything else is HAProxy's "unknown fetch method").
const HAPROXY_FETCHES: &[&str] = &[
    "always_false",
    "always_true",
    "base",
    "base_beg",
    "base_dir",
    "base_dom",
    "base_end",
    "base_len",
    "base_reg",
    "base_sub",
    "be_id",
    "be_name",
    "capture.req.hdr",
    "cook",
    "cook_beg",
    "cook_cnt",
    "cook_dom",
    "cook_end",
    "cook_len",
    "cook_reg",
    "cook_sub",
    "dst",
    "dst_port",
    "fe_id",
    "fe_name",
    "hdr_cnt",
    "hdr_dir",
    "hdr_ip",
    "hdr_len",
    "hdr_val",
    "http_auth",
    "http_auth_group",
    "nbsrv",
    "path_dir",
    "path_len",
    "query",
    "req.cook",
    "req.fhdr",
    "req.hdr",
    "req.hdr_cnt",
    "req.len",
    "req.ssl_sni",
    "req_ssl_sni",
    "src_port",
    "ssl_c_used",
    "ssl_fc",
    "ssl_fc_sni",
    "status",
    "url",
    "url_beg",
    "url_dir",
    "url_dom",
    "url_end",
    "url_ip",
    "url_len",
    "url_param",
    "url_port",
    "url_reg",
    "url_sub",
    "urlp",
    "var",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn test(words: &str) -> Result<AclTest, AclError> {
        let words: Vec<&str> = words.split_whitespace().collect();
        parse_test(&words).map(|p| p.test)
    }

    fn named(name: &str) -> Option<Acl> {
        ["is_api", "st"].contains(&name).then(|| Acl {
            name: Some(name.to_string()),
            tests: vec![AclTest {
                fetch: AclFetch::Path,
                how: AclMatch::Beg,
                ignore_case: false,
                values: vec![format!("/{name}")],
            }],
        })
    }

    fn cond(words: &str) -> Result<Condition, AclError> {
        let words: Vec<&str> = words.split_whitespace().collect();
        parse_condition(false, &words, &named).map(|p| p.condition)
    }

    #[test]
    fn criteria_give_fetch_and_match() {
        let t = test("hdr(host) -i api.example.com www.example.com").unwrap();
        assert_eq!(t.fetch, AclFetch::Header("host".into()));
        assert_eq!(t.how, AclMatch::Str);
        assert!(t.ignore_case);
        assert_eq!(t.values, ["api.example.com", "www.example.com"]);
        assert_eq!(test("path_beg /a").unwrap().how, AclMatch::Beg);
        assert_eq!(test("path_end .css").unwrap().how, AclMatch::End);
        assert_eq!(
            test("hdr_dom(host) example.com").unwrap().how,
            AclMatch::Dom
        );
        assert_eq!(test("path -m sub x").unwrap().how, AclMatch::Sub);
        assert_eq!(test("hdr(x-foo) -m found").unwrap().how, AclMatch::Found);
        assert_eq!(test("src 10.0.0.0/8 ::1").unwrap().how, AclMatch::Ip);
        // Flags come first: after a value, `--` is a value too.
        assert_eq!(
            test("method GET -- -x").unwrap().values,
            ["GET", "--", "-x"]
        );
        assert_eq!(test("path -- -x").unwrap().values, ["-x"]);
    }

    #[test]
    fn haproxy_errors_keep_its_wording() {
        let err = |w| match test(w) {
            Err(AclError::Haproxy(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err("bogus(x) foo"),
            "unknown fetch method 'bogus' in ACL expression 'bogus(x)'"
        );
        assert_eq!(
            err("path -m foo x"),
            "unknown matching method 'foo' when parsing ACL expression"
        );
        assert_eq!(
            err("path -x x"),
            "'-x' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'"
        );
        assert_eq!(
            err("src 300.1.1.1"),
            "'300.1.1.1' is not a valid IPv4 or IPv6 address"
        );
        assert!(err("path_reg (").starts_with("regex '(' is invalid"));
        assert!(matches!(test("url_beg /a"), Err(AclError::Unsupported(_))));
        assert!(matches!(test("path -f x"), Err(AclError::Unsupported(_))));
    }

    #[test]
    fn a_test_without_values_warns() {
        let words = ["path"];
        assert!(parse_test(&words).unwrap().warning.is_some());
        assert!(parse_test(&["path", "--"]).unwrap().warning.is_none());
        assert!(
            parse_test(&["hdr(x)", "-m", "found"])
                .unwrap()
                .warning
                .is_none()
        );
    }

    #[test]
    fn conditions_and_or_not() {
        let c = cond("is_api st || !is_api or ! { path /x }").unwrap();
        assert_eq!(c.any.len(), 3);
        assert_eq!(c.any[0].len(), 2);
        assert!(!c.any[0][0].not);
        assert!(c.any[1][0].not);
        assert!(c.any[2][0].not);
        assert_eq!(c.any[2][0].acl.name, None);
        assert!(!cond("!!is_api").unwrap().any[0][0].not);
        // HAProxy accepts a dangling `||` at either end.
        assert_eq!(cond("|| is_api").unwrap().any.len(), 1);
        assert_eq!(cond("is_api ||").unwrap().any.len(), 1);
        assert_eq!(
            cond("missing"),
            Err(AclError::Haproxy("no such ACL : 'missing'".into()))
        );
        assert_eq!(
            cond("is_api { path /x"),
            Err(AclError::Haproxy("missing closing '}' in condition".into()))
        );
    }

    #[test]
    fn printing_reads_back_the_same() {
        for text in [
            "is_api || !st",
            "{ hdr(host) -i a.example b.example } !{ path_beg /static }",
            "{ path -- -x \"a b\" \"q\\\"uote\" }",
            "{ hdr(x-y) -m found } || { src 10.0.0.0/8 127.0.0.2 }",
            "{ method -m beg -i G } { hdr_reg(host) ^a.*$ }",
        ] {
            let words = crate::config::words::split(text).unwrap();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let parsed = parse_condition(false, &words, &named).unwrap().condition;
            let again = condition_text(&parsed);
            let words2 = crate::config::words::split(&again).unwrap();
            let words2: Vec<&str> = words2.iter().map(String::as_str).collect();
            let reparsed = parse_condition(false, &words2, &named).unwrap().condition;
            assert_eq!(parsed, reparsed, "{text} -> {again}");
        }
    }
}
