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
