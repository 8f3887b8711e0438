//! A virtual server's content switching: `acls = { NAME = ["CRITERION VALUE..."] }` and `routes = [{ to = "POOL", if = "COND" }]`, read with HAProxy's ACL language (`config::acl`); the targets are checked by the validator.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::cursor::{KeyPath, Reader, Text};
use crate::config::acl::{self, AclError};
use crate::config::model::{Acl, Condition, Route};

/// One `routes` entry: `{ to = "api", if = "is_api" }`, `{ to = "x",
/// unless = "..." }` or `{ to = "default" }` (always).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    to: Text,
    #[serde(rename = "if")]
    when: Option<Text>,
    unless: Option<Text>,
}

pub(super) type RawAcls = Spanned<BTreeMap<String, Vec<Text>>>;

impl Reader<'_> {
    /// The routes of a virtual server, in order.
    pub(super) fn routes(
        &mut self,
        acls: Option<&RawAcls>,
        routes: Option<&[Spanned<RawRoute>]>,
        p: &KeyPath,
    ) -> Vec<Route> {
        let mut named: BTreeMap<String, Acl> = BTreeMap::new();
        if let Some(acls) = acls {
            let ap = p.child("acls");
            for (name, tests) in acls.get_ref() {
                // HAProxy's rule for ACL names: a condition must be able
                // to name it as one word.
                if let Some(bad) = name
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
                    .or(name.is_empty().then_some(' '))
                {
                    self.error(
                        acls.span().start,
                        format!("{ap}: character '{bad}' is not permitted in acl name '{name}'"),
                    );
                    continue;
                }
                let mut acl = Acl {
                    name: Some(name.clone()),
                    tests: Vec::new(),
                };
                for (i, text) in tests.iter().enumerate() {
                    let path = ap.index(name, i);
                    let Some(words) = self.acl_words(text, &path.to_string()) else {
                        continue;
                    };
                    let words: Vec<&str> = words.iter().map(String::as_str).collect();
                    match acl::parse_test(&words) {
                        Ok(parsed) => {
                            if let Some(w) = parsed.warning {
                                self.warning(text.span().start, format!("{path}: {w}"));
                            }
                            acl.tests.push(parsed.test);
                        }
                        Err(e) => self.acl_error(text, &path.to_string(), e),
                    }
                }
                named.insert(name.clone(), acl);
            }
        }
        let mut out = Vec::new();
        for (i, raw) in routes.into_iter().flatten().enumerate() {
            let path = p.index("routes", i);
            let r = raw.get_ref();
            let (unless, text) = match (&r.when, &r.unless) {
                (Some(_), Some(u)) => {
                    self.error(
                        u.span().start,
                        format!("{path}: give either \"if\" or \"unless\", not both"),
                    );
                    continue;
                }
                (Some(t), None) => (false, Some(t)),
                (None, Some(t)) => (true, Some(t)),
                (None, None) => (false, None),
            };
            let when = match text {
                None => Condition::default(),
                Some(text) => {
                    let Some(words) = self.acl_words(text, &path.to_string()) else {
                        continue;
                    };
                    if words.is_empty() {
                        self.error(
                            text.span().start,
                            format!("{path}: an empty condition (leave the key out for a route that always applies)"),
                        );
                        continue;
                    }
                    let words: Vec<&str> = words.iter().map(String::as_str).collect();
                    let lookup = |name: &str| named.get(name).cloned();
                    match acl::parse_condition(unless, &words, &lookup) {
                        Ok(parsed) => {
                            for w in parsed.warnings {
                                self.warning(text.span().start, format!("{path}: {w}"));
                            }
                            parsed.condition
                        }
                        Err(e) => {
                            self.acl_error(text, &path.to_string(), e);
                            continue;
                        }
                    }
                }
            };
            out.push(Route {
                to: r.to.get_ref().clone(),
                when,
            });
        }
        out
    }

    fn acl_words(&mut self, text: &Text, path: &str) -> Option<Vec<String>> {
        match crate::config::words::split(text.get_ref()) {
            Ok(words) => Some(words),
            Err(e) => {
                self.error(text.span().start, format!("{path}: {e}"));
                None
            }
        }
    }

    fn acl_error(&mut self, text: &Text, path: &str, e: AclError) {
        let message = match e {
            AclError::Haproxy(m) => m,
            AclError::Unsupported(what) => format!("{what} is not supported"),
        };
        self.error(text.span().start, format!("{path}: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::native::testing::{FakeFs, check_cases, parse_with};

    const BASE: &str = "[virtual_servers.web]\nlisten = \"127.0.0.1:8080\"\nmode = \"http\"\n";

    #[test]
    fn routes_and_acls_read_haproxys_language() {
        let text = format!(
            "{BASE}acls.is_api = [\"hdr(host) -i api.example.com\", \"path_beg /api/\"]\nroutes = [\n  {{ to = \"api\", if = \"is_api || {{ src 10.0.0.0/8 }}\" }},\n  {{ to = \"api\", unless = \"{{ method GET }}\" }},\n  {{ to = \"api\" }},\n]\n[virtual_servers.api]\nmode = \"http\"\nreal_servers = [{{ addr = \"127.0.0.1:9001\" }}]\n"
        );
        let (config, found) = parse_with(&text, &FakeFs::default());
        assert!(found.is_empty(), "{found:#?}");
        let config = config.unwrap();
        let routes = &config.virtual_servers["web"].proxy.routes;
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0].when.any.len(), 2);
        assert_eq!(routes[0].when.any[0][0].acl.tests.len(), 2);
        assert!(routes[1].when.unless);
        assert!(routes[2].when.any.is_empty());
        assert_eq!(config.virtual_servers["api"].listen, None);
    }

    #[test]
    fn bad_routes_name_their_key() {
        check_cases(&[
            (
                &format!("{BASE}routes = [{{ to = \"api\", if = \"nope\" }}]\n"),
                &["4:30: error: virtual_servers.web.routes[0]: no such ACL : 'nope'"],
            ),
            (
                &format!("{BASE}acls.a = [\"bogus x\"]\n"),
                &[
                    "4:11: error: virtual_servers.web.acls.a[0]: unknown fetch method 'bogus' in ACL expression 'bogus'",
                ],
            ),
            (
                &format!("{BASE}acls.a = [\"url_beg /x\"]\n"),
                &[
                    "4:11: error: virtual_servers.web.acls.a[0]: the ACL criterion 'url_beg' is not supported",
                ],
            ),
            (
                &format!(
                    "{BASE}routes = [{{ to = \"a\", if = \"{{ path /a }}\", unless = \"{{ path /b }}\" }}]\n"
                ),
                &[
                    "4:52: error: virtual_servers.web.routes[0]: give either \"if\" or \"unless\", not both",
                ],
            ),
            (
                &format!("{BASE}acls.\"a b\" = [\"path /x\"]\n"),
                &[
                    "4:1: error: virtual_servers.web.acls: character ' ' is not permitted in acl name 'a b'",
                ],
            ),
            (
                &format!("{BASE}routes = [{{ to = \"a\", if = \"\" }}]\n"),
                &[
                    "4:28: error: virtual_servers.web.routes[0]: an empty condition (leave the key out for a route that always applies)",
                ],
            ),
        ]);
    }
}
