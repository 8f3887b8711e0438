//! `[hostgroups]`: named lists of hosts.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::DeValue;

use super::cursor::{KeyPath, Reader, Text};
use crate::config::model::{HostGroup, Origin};

impl Reader<'_> {
    pub(super) fn hostgroups(
        &mut self,
        value: &Spanned<DeValue<'_>>,
    ) -> BTreeMap<String, HostGroup> {
        let mut groups = BTreeMap::new();
        let entries = self.entries(
            value,
            &KeyPath::new("hostgroups"),
            "a table of hostgroups (name = [hosts])",
        );
        for group in entries.unwrap_or_default() {
            self.tag(&group, "hostgroup");
            // A group whose list is bad still exists (empty), so the watches
            // on it do not report a second, misleading error.
            let hosts = self
                .read::<Vec<Text>>(group.value, &group.path)
                .unwrap_or_default();
            let mut checked = Vec::new();
            for (i, host) in hosts.iter().enumerate() {
                let h = host.get_ref();
                if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    self.error(
                        host.span().start,
                        format!("{}: bad host name {h:?}", group.path.at(i)),
                    );
                } else {
                    checked.push(h.clone());
                }
            }
            groups.insert(
                group.name.clone(),
                HostGroup {
                    name: group.name,
                    hosts: checked,
                    implicit: false,
                    origin: Origin(self.location(group.at)),
                },
            );
        }
        groups
    }
}

impl Reader<'_> {
    /// `[aliases]` and `[views]`: `NAME = ["line", ...]` tables (mon's
    /// `alias` and `view` blocks, served on the mon port).
    pub(super) fn string_lists(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        section: &str,
    ) -> BTreeMap<String, Vec<String>> {
        let mut lists = BTreeMap::new();
        let what = format!("a table of {section} (name = [lines])");
        for entry in self
            .entries(value, &KeyPath::new(section), &what)
            .unwrap_or_default()
        {
            let lines = self
                .read::<Vec<String>>(entry.value, &entry.path)
                .unwrap_or_default();
            lists.insert(entry.name, lines);
        }
        lists
    }
}

#[cfg(test)]
mod tests {

    use crate::config::native::testing::check_cases;

    /// `[hostgroups]` diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Hostgroups.
            (
                "[hostgroups]\nweb = \"127.0.0.1\"\n\"my group\" = [\"a b\"]\n",
                &[
                    "2:7: error: hostgroups.web: expected an array, found string \"127.0.0.1\"",
                    "3:1: error: hostgroups.\"my group\": hostgroup name \"my group\" may only contain letters, digits, \"_\", \".\" and \"-\"",
                    "3:15: error: hostgroups.\"my group\"[0]: bad host name \"a b\"",
                ],
            ),
        ]);
    }
}
