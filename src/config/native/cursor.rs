//! The native front end's cursor over one TOML document: the [`Reader`] that collects diagnostics (byte offsets → `file:line:col`), dotted key paths, and reading one definition at a time so that one bad key never hides another.
//!
//! Every section file (`daemon.rs`, `watch.rs`, ...) adds an `impl Reader`
//! block with the functions for its own tables; this file holds what they
//! share and never knows a section's keys.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::checks::DurationText;
use super::messages::{explain_serde_message, found, quote_key, unknown_key_message};
use crate::config::FileSystem;
use crate::config::diag::{Diagnostic, Diagnostics, Location, Severity};
use crate::config::model::Action;

/// A string value and where it is written.
pub(super) type Text = Spanned<String>;
/// An integer value and where it is written.
pub(super) type Int = Spanned<i64>;
/// A duration as written (`"5s"`) and where.
pub(super) type Dur = Spanned<DurationText>;

/// Walks one document, turning raw definitions into the model and
/// collecting every diagnostic; each section file adds its readers in an
/// `impl Reader` block.
pub(super) struct Reader<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    pub(super) file: &'a Arc<Path>,
    pub(super) fs: &'a dyn FileSystem,
    /// Relative paths in the config are relative to this directory.
    pub(super) config_dir: PathBuf,
    found: Vec<Diagnostic>,
    /// Keys whose value serde rejected and [`Reader::read`] dropped. A later
    /// "missing key" about them would only repeat the error.
    pub(super) rejected: HashSet<String>,
    pub(super) actions: BTreeMap<String, Action>,
    /// Actions that are defined but could not be built; references to them
    /// are not reported again.
    pub(super) broken_actions: BTreeSet<String>,
}

/// One definition in a table of named definitions (`[SECTION.NAME]`).
pub(super) struct Entry<'v, 't> {
    pub(super) name: String,
    /// `SECTION.NAME`.
    pub(super) path: KeyPath,
    /// Where the name is written: the definition's origin, and the place of
    /// the "missing key" errors about it.
    pub(super) at: usize,
    pub(super) value: &'v Spanned<DeValue<'t>>,
}

/// The keys serde accepts for a `Raw*` struct (its field names in order).
pub(super) fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct FieldNames<'c>(&'c std::cell::Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("field names captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let fields = std::cell::Cell::new(&[][..]);
    // The error is the point: deserialize_struct records the names and stops.
    let _ = T::deserialize(FieldNames(&fields));
    fields.get()
}

/// A dotted TOML key path such as `watch.local.web` (array elements as `[i]`).
#[derive(Clone)]
pub(super) struct KeyPath(pub(super) String);

impl KeyPath {
    /// The document itself (messages about it have no path prefix).
    pub(super) fn root() -> KeyPath {
        KeyPath(String::new())
    }

    pub(super) fn new(key: &str) -> KeyPath {
        KeyPath(quote_key(key))
    }

    pub(super) fn child(&self, key: &str) -> KeyPath {
        if self.0.is_empty() {
            KeyPath::new(key)
        } else {
            KeyPath(format!("{}.{}", self.0, quote_key(key)))
        }
    }

    /// `self.key[index]` as a path.
    pub(super) fn index(&self, key: &str, index: usize) -> KeyPath {
        KeyPath(format!("{}[{index}]", self.child(key).0))
    }

    /// `self.key` as text.
    pub(super) fn key(&self, key: &str) -> String {
        self.child(key).0
    }

    /// `self.key[index]` as text.
    pub(super) fn at_key(&self, key: &str, index: usize) -> String {
        self.index(key, index).0
    }

    /// `self[index]` as text.
    pub(super) fn at(&self, index: usize) -> String {
        format!("{}[{index}]", self.0)
    }

    fn join(&self, steps: &[Step]) -> KeyPath {
        let mut path = self.clone();
        for step in steps {
            path = match step {
                Step::Key(key) => path.child(key),
                Step::Index(i) => KeyPath(path.at(*i)),
            };
        }
        path
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// The steps from `value` to the innermost key or element whose key or value
/// holds `span`. Header tables (`[a.b]`) span only their header, so every
/// child is searched, not only those whose span contains `span`.
fn locate(value: &DeValue<'_>, span: &Range<usize>) -> Option<Vec<Step>> {
    let contains = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    children(value).into_iter().find_map(|child| {
        if child.key.as_ref() == Some(span) {
            return Some(vec![child.step]);
        }
        if let Some(mut rest) = locate(child.value.get_ref(), span) {
            rest.insert(0, child.step);
            return Some(rest);
        }
        contains(child.value.span()).then(|| vec![child.step])
    })
}

/// Every date-time value under `value`: where it is, and as written.
fn datetimes(value: &DeValue<'_>) -> Vec<(Vec<Step>, Range<usize>, String)> {
    let mut found = Vec::new();
    for child in children(value) {
        if let DeValue::Datetime(datetime) = child.value.get_ref() {
            found.push((
                vec![child.step.clone()],
                child.value.span(),
                datetime.to_string(),
            ));
        }
        for (mut steps, span, text) in datetimes(child.value.get_ref()) {
            steps.insert(0, child.step.clone());
            found.push((steps, span, text));
        }
    }
    found
}

/// A key's value or an array's element, one step below a value.
struct Child<'v, 't> {
    step: Step,
    /// Where the key is written; `None` for an array element.
    key: Option<Range<usize>>,
    value: &'v Spanned<DeValue<'t>>,
}

/// The keys and elements directly under `value`, in document order.
fn children<'v, 't>(value: &'v DeValue<'t>) -> Vec<Child<'v, 't>> {
    match value {
        DeValue::Table(table) => table
            .iter()
            .map(|(key, value)| Child {
                step: Step::Key(key.get_ref().to_string()),
                key: Some(key.span()),
                value,
            })
            .collect(),
        DeValue::Array(array) => array
            .iter()
            .enumerate()
            .map(|(i, value)| Child {
                step: Step::Index(i),
                key: None,
                value,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Removes the innermost key on `steps` (an error inside an array drops the
/// whole array key, so later indexes in messages stay right). Returns how
/// many steps lead to the removed key.
pub(super) fn remove(value: &mut DeValue<'_>, steps: &[Step]) -> Option<usize> {
    let last_key = steps.iter().rposition(|s| matches!(s, Step::Key(_)))?;
    let mut current = value;
    for step in &steps[..last_key] {
        current = match (step, current) {
            (Step::Key(key), DeValue::Table(table)) => table.get_mut(key.as_str())?.get_mut(),
            (Step::Index(i), DeValue::Array(array)) => array.get_mut(*i)?.get_mut(),
            _ => return None,
        };
    }
    match (&steps[last_key], current) {
        (Step::Key(key), DeValue::Table(table)) => table.remove(key.as_str()).map(|_| last_key + 1),
        _ => None,
    }
}

/// A table holding only `keys` of `table`, for reading with one `Raw*` struct.
pub(super) fn subtable<'t>(
    table: &DeTable<'t>,
    span: Range<usize>,
    keys: &[&str],
) -> Spanned<DeValue<'t>> {
    let mut part = DeTable::new();
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        if keys.contains(&name) {
            part.insert(key.clone(), value.clone());
        }
    }
    Spanned::new(span, DeValue::Table(part))
}

impl<'a> Reader<'a> {
    pub(super) fn new(text: &'a str, file: &'a Arc<Path>, fs: &'a dyn FileSystem) -> Reader<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let config_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Reader {
            text,
            line_starts,
            file,
            fs,
            config_dir,
            found: Vec::new(),
            rejected: HashSet::new(),
            actions: BTreeMap::new(),
            broken_actions: BTreeSet::new(),
        }
    }

    /// The definitions in `value`, a table of named definitions
    /// (`[SECTION.NAME]`); `None`, reported, when it is not a table.
    pub(super) fn entries<'v, 't>(
        &mut self,
        value: &'v Spanned<DeValue<'t>>,
        path: &KeyPath,
        what: &str,
    ) -> Option<Vec<Entry<'v, 't>>> {
        let table = self.table(value, path, what)?;
        let entries = table
            .iter()
            .map(|(key, value)| {
                let name = key.get_ref().to_string();
                Entry {
                    path: path.child(&name),
                    name,
                    at: key.span().start,
                    value,
                }
            })
            .collect();
        Some(entries)
    }

    /// The top-level table `section` of named definitions, each read into
    /// `R` and built by `build`. A definition that cannot be read or built
    /// is left out (its errors are reported).
    pub(super) fn definitions<R: DeserializeOwned, T>(
        &mut self,
        root: &DeTable<'_>,
        section: &str,
        what: &str,
        build: fn(&mut Self, &str, R, &KeyPath, usize) -> Option<T>,
    ) -> BTreeMap<String, T> {
        let mut built = BTreeMap::new();
        let Some(value) = root.get(section) else {
            return built;
        };
        let entries = self.entries(value, &KeyPath::new(section), what);
        for entry in entries.unwrap_or_default() {
            if let Some(raw) = self.read::<R>(entry.value, &entry.path)
                && let Some(definition) = build(self, &entry.name, raw, &entry.path, entry.at)
            {
                built.insert(entry.name, definition);
            }
        }
        built
    }

    /// Deserialize one definition, reporting every key serde rejects: after
    /// an error the offending key is dropped and the definition read again.
    pub(super) fn read<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
    ) -> Option<T> {
        let mut value = value.clone();
        // serde sees a TOML date-time as a private table; no key takes one,
        // so say what it is here instead of a confusing type error.
        for (steps, span, datetime) in datetimes(value.get_ref()) {
            let path = p.join(&steps);
            self.error(
                span.start,
                format!(
                    "{path}: {datetime} is a date-time, which no key takes; quote it if it is text"
                ),
            );
            if let Some(removed) = remove(value.get_mut(), &steps) {
                self.rejected.insert(p.join(&steps[..removed]).to_string());
            }
        }
        // Each round drops one key, so this ends; the bound is a safeguard.
        for _ in 0..1000 {
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(raw) => return Some(raw),
                Err(error) => error,
            };
            let span = error.span().unwrap_or_else(|| value.span());
            let steps = locate(value.get_ref(), &span).unwrap_or_default();
            self.serde_error(&error, span.start, p, &steps);
            // An error that names no key (the definition itself has the
            // wrong type) ends the reading.
            let removed = remove(value.get_mut(), &steps)?;
            self.rejected.insert(p.join(&steps[..removed]).to_string());
        }
        None
    }

    pub(super) fn read_section<T: DeserializeOwned>(
        &mut self,
        root: &DeTable<'_>,
        name: &str,
    ) -> Option<T> {
        let value = root.get(name)?;
        self.read(value, &KeyPath::new(name))
    }

    fn serde_error(&mut self, error: &toml::de::Error, at: usize, p: &KeyPath, steps: &[Step]) {
        let message = error.message();
        if let Some(rest) = message.strip_prefix("unknown field ") {
            let mut names = rest.split('`').skip(1).step_by(2);
            let unknown = names.next().unwrap_or_default();
            let valid: Vec<&str> = names.collect();
            let parent = p.join(
                steps
                    .get(..steps.len().saturating_sub(1))
                    .unwrap_or_default(),
            );
            self.error(at, unknown_key_message(&parent, unknown, &valid));
            return;
        }
        let path = p.join(steps);
        self.error(at, format!("{path}: {}", explain_serde_message(message)));
    }

    /// Report keys of `table` not in `known`; returns the table without them.
    pub(super) fn unknown_keys<'t>(
        &mut self,
        table: &DeTable<'t>,
        path: &KeyPath,
        known: &[&str],
    ) -> DeTable<'t> {
        let mut kept = table.clone();
        for key in table.keys() {
            let name: &str = key.get_ref();
            if !known.contains(&name) {
                self.error(key.span().start, unknown_key_message(path, name, known));
                kept.remove(name);
            }
        }
        kept
    }

    pub(super) fn table<'v, 't>(
        &mut self,
        value: &'v Spanned<DeValue<'t>>,
        path: &KeyPath,
        what: &str,
    ) -> Option<&'v DeTable<'t>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                self.error(
                    value.span().start,
                    format!("{path}: expected {what}, found {}", found(other)),
                );
                None
            }
        }
    }

    /// The `type` key of an action or monitor table.
    pub(super) fn type_key(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        at: usize,
        what: &str,
        kinds: &[&str],
    ) -> Option<String> {
        let table = self.table(value, p, "a table")?;
        let Some(kind) = table.get("type") else {
            self.missing(at, p, "type", &format!("one of: {}", kinds.join(", ")));
            return None;
        };
        let Some(text) = kind.get_ref().as_str() else {
            self.error(
                kind.span().start,
                format!(
                    "{}: expected a string, found {}",
                    p.key("type"),
                    found(kind.get_ref())
                ),
            );
            return None;
        };
        let spanned = Spanned::new(kind.span(), text.to_string());
        let kind = kinds.iter().find(|k| k.eq_ignore_ascii_case(text));
        if kind.is_none() {
            self.unknown_word(&spanned, &p.key("type"), what, kinds);
        }
        kind.map(|k| k.to_string())
    }

    pub(super) fn required<'v, T>(
        &mut self,
        value: Option<&'v T>,
        at: usize,
        p: &KeyPath,
        key: &str,
        hint: &str,
    ) -> Option<&'v T> {
        if value.is_none() {
            self.missing(at, p, key, hint);
        }
        value
    }

    /// "missing key", unless the key was there and already reported as bad.
    pub(super) fn missing(&mut self, at: usize, p: &KeyPath, key: &str, hint: &str) {
        if !self.rejected.contains(&p.key(key)) {
            self.error(at, format!("{p}: missing key {key:?} ({hint})"));
        }
    }

    pub(super) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |prefix| prefix.chars().count())
            + 1;
        Location::new(
            self.file,
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }

    pub(super) fn error(&mut self, offset: usize, message: String) {
        self.push(Severity::Error, offset, message);
    }

    pub(super) fn warning(&mut self, offset: usize, message: String) {
        self.push(Severity::Warning, offset, message);
    }

    fn push(&mut self, severity: Severity, offset: usize, message: String) {
        let location = self.location(offset);
        self.found.push(Diagnostic {
            severity,
            location,
            message,
        });
    }

    /// The diagnostics in file order (the document's tables are sorted by
    /// key, so they were found out of order).
    pub(super) fn finish(mut self) -> Diagnostics {
        self.found.sort_by(|a, b| {
            (a.location.line, a.location.col).cmp(&(b.location.line, b.location.col))
        });
        let mut diagnostics = Diagnostics::default();
        for d in self.found {
            match d.severity {
                Severity::Error => diagnostics.error(d.location, d.message),
                Severity::Warning => diagnostics.warning(d.location, d.message),
            }
        }
        diagnostics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::native::actions::RawFileAction;
    use crate::config::native::periods::RawPeriodHead;
    use crate::config::native::testing::check;

    #[test]
    fn columns_count_characters_and_keys_are_quoted_when_needed() {
        check(
            "[hostgroups]\n\"é\" = [\"x\", 1]\n",
            &[
                "2:1: error: hostgroups.\"é\": hostgroup name \"é\" may only contain letters, digits, \"_\", \".\" and \"-\"",
                "2:13: error: hostgroups.\"é\"[1]: expected a string, found integer 1",
            ],
        );
    }

    #[test]
    fn keys_of_lists_the_serde_field_names() {
        assert_eq!(keys_of::<RawPeriodHead>(), ["spec", "label"]);
        assert_eq!(keys_of::<RawFileAction>(), ["type", "path"]);
    }
}
