//! `[[stats_page]]`: HAProxy's stats page (where it is served, its uri, realm, users, refresh, admin); reads the section, never binds anything.

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::cursor::{Dur, KeyPath, Reader, Text};
use crate::config::model::{Origin, StatsListen, StatsPage, StatsUser};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatsPage {
    listen: Option<Text>,
    virtual_server: Option<Text>,
    uri: Option<Text>,
    realm: Option<Text>,
    auth: Option<Vec<Text>>,
    refresh: Option<Dur>,
    hide_version: Option<bool>,
    admin: Option<bool>,
}

impl Reader<'_> {
    /// Every `[[stats_page]]` table, in file order.
    pub(super) fn stats_pages(&mut self, root: &DeTable<'_>) -> Vec<StatsPage> {
        let Some((key, value)) = root.get_key_value("stats_page") else {
            return Vec::new();
        };
        let DeValue::Array(tables) = value.get_ref() else {
            self.error(
                key.span().start,
                "stats_page: expected an array of tables ([[stats_page]])".to_string(),
            );
            return Vec::new();
        };
        let mut pages = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let p = KeyPath(KeyPath::new("stats_page").at(i));
            let at = match table.get_ref() {
                // An array-of-tables element spans its header; an inline
                // table its braces.
                DeValue::Table(_) => table.span().start,
                _ => key.span().start,
            };
            if let Some(raw) = self.read::<RawStatsPage>(table, &p)
                && let Some(page) = self.stats_page(raw, &p, at)
            {
                pages.push(page);
            }
        }
        pages
    }

    fn stats_page(&mut self, raw: RawStatsPage, p: &KeyPath, at: usize) -> Option<StatsPage> {
        let listen = match (&raw.listen, &raw.virtual_server) {
            (Some(_), Some(vs)) => {
                self.error(
                    vs.span().start,
                    format!(
                        "{p}: give either \"listen\" (its own listener) or \"virtual_server\" (inside an http virtual server), not both"
                    ),
                );
                None
            }
            (Some(_), None) => self
                .socket_addr(raw.listen.as_ref(), &p.key("listen"), None)
                .map(StatsListen::Address),
            (None, Some(vs)) => {
                if self.blank(vs, &p.key("virtual_server"), "virtual server name") {
                    None
                } else {
                    Some(StatsListen::VirtualServer(vs.get_ref().clone()))
                }
            }
            (None, None) => {
                self.missing(
                    at,
                    p,
                    "listen",
                    "e.g. listen = \"127.0.0.1:8404\", or virtual_server = \"NAME\"",
                );
                None
            }
        };
        let uri = match &raw.uri {
            Some(uri) if !uri.get_ref().starts_with('/') => {
                self.error(
                    uri.span().start,
                    format!(
                        "{}: {:?} must start with \"/\" (e.g. \"/haproxy?stats\")",
                        p.key("uri"),
                        uri.get_ref()
                    ),
                );
                None
            }
            Some(uri) if uri.get_ref().contains(char::is_whitespace) => {
                self.error(
                    uri.span().start,
                    format!("{}: {:?} contains white space", p.key("uri"), uri.get_ref()),
                );
                None
            }
            Some(uri) => Some(uri.get_ref().clone()),
            None => Some(StatsPage::DEFAULT_URI.to_string()),
        };
        let realm = match &raw.realm {
            Some(realm) if realm.get_ref().contains(['"', '\\']) => {
                self.error(
                    realm.span().start,
                    format!(
                        "{}: {:?}: a realm cannot contain '\"' or '\\\\'",
                        p.key("realm"),
                        realm.get_ref()
                    ),
                );
                None
            }
            Some(realm) if !self.blank(realm, &p.key("realm"), "realm") => {
                Some(realm.get_ref().clone())
            }
            Some(_) => None,
            None => Some(StatsPage::DEFAULT_REALM.to_string()),
        };
        let mut users = Vec::new();
        for (i, line) in raw.auth.iter().flatten().enumerate() {
            match line.get_ref().split_once(':') {
                Some((user, password)) if !user.is_empty() => users.push(StatsUser {
                    user: user.to_string(),
                    password: password.to_string(),
                }),
                _ => self.error(
                    line.span().start,
                    format!(
                        "{}: expected \"user:password\" (the password in plain text, as HAProxy's stats auth)",
                        p.at_key("auth", i)
                    ),
                ),
            }
        }
        let refresh = match &raw.refresh {
            Some(_) => Some(self.positive_duration(raw.refresh.as_ref(), &p.key("refresh"))?),
            None => None,
        };
        let admin = raw.admin.unwrap_or(false);
        if admin && users.is_empty() && raw.auth.as_ref().is_none_or(Vec::is_empty) {
            self.error(
                at,
                format!(
                    "{p}: admin = true needs auth: the page's actions are offered only to authenticated users"
                ),
            );
        }
        Some(StatsPage {
            listen: listen?,
            uri: uri?,
            realm: realm?,
            users,
            refresh,
            hide_version: raw.hide_version.unwrap_or(false),
            admin,
            origin: Origin(self.location(at)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::model::{StatsListen, StatsPage, StatsUser};
    use crate::config::native::testing::{FakeFs, check_cases, parse_with};

    fn pages(text: &str) -> Vec<StatsPage> {
        let (config, found) = parse_with(text, &FakeFs::default());
        assert_eq!(found, Vec::<String>::new(), "config:\n{text}");
        config.expect("parsed").stats_pages
    }

    #[test]
    fn stats_pages_are_read_in_order_with_haproxy_defaults() {
        let read = pages(
            "[[stats_page]]\nlisten = \"127.0.0.1:8404\"\n\n\
             [[stats_page]]\nvirtual_server = \"web\"\nuri = \"/stats\"\nrealm = \"Ops\"\n\
             auth = [\"admin:s3cr:et\", \"ro:\"]\nrefresh = \"10s\"\nhide_version = true\nadmin = true\n",
        );
        assert_eq!(read.len(), 2);
        let first = &read[0];
        assert_eq!(
            first.listen,
            StatsListen::Address("127.0.0.1:8404".parse().unwrap())
        );
        assert_eq!(first.uri, "/haproxy?stats");
        assert_eq!(first.realm, "HAProxy Statistics");
        assert!(first.users.is_empty());
        assert_eq!(first.refresh, None);
        assert!(!first.hide_version && !first.admin);
        let second = &read[1];
        assert_eq!(second.listen, StatsListen::VirtualServer("web".into()));
        assert_eq!(second.uri, "/stats");
        assert_eq!(second.realm, "Ops");
        assert_eq!(
            second.users,
            vec![
                StatsUser {
                    user: "admin".into(),
                    password: "s3cr:et".into()
                },
                StatsUser {
                    user: "ro".into(),
                    password: String::new()
                },
            ]
        );
        assert_eq!(second.refresh, Some(Duration::from_secs(10)));
        assert!(second.hide_version && second.admin);
    }

    #[test]
    fn stats_page_mistakes_are_reported_at_their_key() {
        check_cases(&[
            (
                "[[stats_page]]\nuri = \"/s\"\n",
                &[
                    "1:1: error: stats_page[0]: missing key \"listen\" (e.g. listen = \"127.0.0.1:8404\", or virtual_server = \"NAME\")",
                ],
            ),
            (
                "[[stats_page]]\nlisten = \"127.0.0.1:1\"\nvirtual_server = \"web\"\n",
                &[
                    "3:18: error: stats_page[0]: give either \"listen\" (its own listener) or \"virtual_server\" (inside an http virtual server), not both",
                ],
            ),
            (
                "[[stats_page]]\nlisten = \"127.0.0.1:1\"\nuri = \"stats\"\n",
                &[
                    "3:7: error: stats_page[0].uri: \"stats\" must start with \"/\" (e.g. \"/haproxy?stats\")",
                ],
            ),
            (
                "[[stats_page]]\nlisten = \"127.0.0.1:1\"\nauth = [\"nocolon\"]\n",
                &[
                    "3:9: error: stats_page[0].auth[0]: expected \"user:password\" (the password in plain text, as HAProxy's stats auth)",
                ],
            ),
            (
                "[[stats_page]]\nlisten = \"127.0.0.1:1\"\nadmin = true\n",
                &[
                    "1:1: error: stats_page[0]: admin = true needs auth: the page's actions are offered only to authenticated users",
                ],
            ),
            (
                "[[stats_page]]\nlisten = \"127.0.0.1:1\"\nrefresh = \"0s\"\n",
                &["3:11: error: stats_page[0].refresh: must be greater than zero"],
            ),
            (
                "[[stats_page]]\nlisten = \"127.0.0.1:1\"\nport = 3\n",
                &[
                    "3:1: error: stats_page[0]: unknown key \"port\" (valid keys: listen, virtual_server, uri, realm, auth, refresh, hide_version, admin)",
                ],
            ),
            (
                "[stats_page]\nlisten = \"127.0.0.1:1\"\n",
                &["1:2: error: stats_page: expected an array of tables ([[stats_page]])"],
            ),
        ]);
    }
}
