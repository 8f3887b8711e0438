//! `[[file_init]]`: files the daemon writes a number into at start (keepalived's `init_file`); reads the section, never writes.

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::cursor::{KeyPath, Reader, Text};
use crate::config::model::{FileInit, Origin};

/// `[[file_init]]`: a file written at start.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileInit {
    path: Option<Text>,
    value: Option<i64>,
    overwrite: Option<bool>,
}

impl Reader<'_> {
    /// Every `[[file_init]]` table, in file order.
    pub(super) fn file_inits(&mut self, root: &DeTable<'_>) -> Vec<FileInit> {
        let Some((key, value)) = root.get_key_value("file_init") else {
            return Vec::new();
        };
        let DeValue::Array(tables) = value.get_ref() else {
            self.error(
                key.span().start,
                "file_init: expected an array of tables ([[file_init]])".to_string(),
            );
            return Vec::new();
        };
        let mut inits = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let p = KeyPath(KeyPath::new("file_init").at(i));
            let at = match table.get_ref() {
                DeValue::Table(_) => table.span().start,
                _ => key.span().start,
            };
            let Some(raw) = self.read::<RawFileInit>(table, &p) else {
                continue;
            };
            let Some(text) = self.required(
                raw.path.as_ref(),
                at,
                &p,
                "path",
                "e.g. path = \"/run/weight\"",
            ) else {
                continue;
            };
            let Some(path) = self.path(Some(text), &p.key("path")) else {
                continue;
            };
            inits.push(FileInit {
                path,
                value: raw.value.unwrap_or(0),
                overwrite: raw.overwrite.unwrap_or(false),
                origin: Origin(self.location(at)),
            });
        }
        inits
    }
}
