//! `[web]`: where the web status page and HTTP API listen and where their API tokens are; reads the section, never binds anything.

use serde::Deserialize;
use toml::de::DeTable;

use super::cursor::{KeyPath, Reader, Text};
use crate::config::model::Settings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    listen: Option<Text>,
    tokens_file: Option<Text>,
}

impl Reader<'_> {
    /// `[web]` present = enabled: `listen` is required (loopback is the
    /// advice: actions ride on basic auth).
    pub(super) fn web(&mut self, raw: RawWeb, s: &mut Settings, root: &DeTable<'_>) {
        let p = KeyPath::new("web");
        s.web.listen = self.required_listen(raw.listen, "web", root);
        s.web.tokens_file = self.path(raw.tokens_file.as_ref(), &p.key("tokens_file"));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::native::testing::{FakeFs, check_cases, parse_with};

    #[test]
    fn web_section_sets_listen_and_tokens_file() {
        let (config, found) = parse_with(
            "[web]\nlisten = \"127.0.0.1:9584\"\ntokens_file = \"tokens\"\n",
            &FakeFs::default(),
        );
        assert_eq!(found, Vec::<String>::new());
        let web = config.expect("parsed").settings.web;
        assert_eq!(web.listen, Some("127.0.0.1:9584".parse().unwrap()));
        assert_eq!(
            web.tokens_file,
            Some(std::path::PathBuf::from("/etc/keepmon/tokens"))
        );
        check_cases(&[
            (
                "[web]\n",
                &["1:2: error: web: missing key \"listen\" (e.g. listen = \"127.0.0.1:9583\")"],
            ),
            (
                "[web]\nlisten = \"nowhere\"\n",
                &[
                    "2:10: error: web.listen: \"nowhere\" is not an IP address (names are not resolved here)",
                ],
            ),
            (
                "[web]\nlisten = \"127.0.0.1:1\"\nport = 3\n",
                &["3:1: error: web: unknown key \"port\" (valid keys: listen, tokens_file)"],
            ),
        ]);
    }
}
