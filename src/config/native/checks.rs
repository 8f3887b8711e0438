//! Value checks shared by the native sections: durations, integers in range, paths, periods, regexes, addresses, script lookup; each reports its own error at the value's key and returns `None`.
//!
//! Also the value types with their own serde shapes ([`DurationText`],
//! [`Scalar`], [`Flexible`]) and the `type = "lua"` call shared by actions
//! and monitors.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::DeValue;

use super::cursor::{Dur, Entry, Int, KeyPath, Reader, Text};
use super::messages::{did_you_mean, show_dirs};
use crate::config::depend::ServiceRef;
use crate::config::model::{Forward, Protocol, RunAs, Settings};
use crate::config::settings;
use crate::config::values;
use crate::period::Period;

/// A `type = "lua"` action or monitor.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLuaCall {
    #[serde(rename = "type")]
    _type: Option<IgnoredAny>,
    script: Option<Text>,
    args: Option<Vec<String>>,
}

/// A duration as written (`"5s"`); checked after reading so that the
/// message can name the key.
#[derive(Clone)]
pub(super) struct DurationText(pub(super) String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\", \"500ms\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// An integer or a string (`status = [200, "300-399"]`, `memory = "32MiB"`).
pub(super) enum Scalar {
    Integer(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The table shape of a [`Flexible`] key, and what to say when the value
/// has none of the accepted shapes.
pub(super) trait TableForm: DeserializeOwned {
    const EXPECTING: &'static str;
}

/// A key written as an integer, a string or a table
/// (`alertafter = 3 | "10m" | { count = 3, within = "10m" }`). The table is
/// read straight from the document, so its errors keep their positions.
pub(super) enum Flexible<T> {
    Integer(i64),
    Text(String),
    Table(T),
}

impl<'de, T: TableForm> Deserialize<'de> for Flexible<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlexibleVisitor<T>(PhantomData<T>);
        impl<'de, T: TableForm> Visitor<'de> for FlexibleVisitor<T> {
            type Value = Flexible<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flexible<T>, E> {
                Ok(Flexible::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flexible<T>, E> {
                i64::try_from(v)
                    .map(Flexible::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flexible<T>, E> {
                Ok(Flexible::Text(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Flexible<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Flexible::Table)
            }
        }
        deserializer.deserialize_any(FlexibleVisitor(PhantomData))
    }
}

const PROTOCOLS: &[(&str, Protocol)] = &[("tcp", Protocol::Tcp), ("udp", Protocol::Udp)];

impl Reader<'_> {
    pub(super) fn choice<T: Copy>(
        &mut self,
        value: Option<&Text>,
        path: &str,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let value = value?;
        let text = value.get_ref().trim();
        if let Some((_, v)) = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        self.unknown_word(value, path, what, &names);
        None
    }

    pub(super) fn unknown_word(&mut self, value: &Text, path: &str, what: &str, valid: &[&str]) {
        let text = value.get_ref();
        self.error(
            value.span().start,
            format!(
                "{path}: unknown {what} {text:?}{} (expected one of: {})",
                did_you_mean(text, valid),
                valid.join(", ")
            ),
        );
    }

    /// The value of `result`, or `None` with its error reported at `at` as
    /// `path: error`.
    pub(super) fn ok_or_report<T, E: fmt::Display>(
        &mut self,
        result: Result<T, E>,
        at: usize,
        path: &str,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.error(at, format!("{path}: {e}"));
                None
            }
        }
    }

    /// Reports `path: empty WHAT` when `value` is empty or only white space;
    /// returns whether it was.
    pub(super) fn blank(&mut self, value: &Text, path: &str, what: &str) -> bool {
        let blank = value.get_ref().trim().is_empty();
        if blank {
            self.error(value.span().start, format!("{path}: empty {what}"));
        }
        blank
    }

    pub(super) fn duration(&mut self, value: Option<&Dur>, path: &str) -> Option<Duration> {
        let value = value?;
        self.ok_or_report(
            values::parse_duration(&value.get_ref().0),
            value.span().start,
            path,
        )
    }

    pub(super) fn positive_duration(
        &mut self,
        value: Option<&Dur>,
        path: &str,
    ) -> Option<Duration> {
        let d = self.duration(value, path)?;
        if d.is_zero() {
            let at = value.map_or(0, |v| v.span().start);
            self.error(at, format!("{path}: must be greater than zero"));
            return None;
        }
        Some(d)
    }

    pub(super) fn int_in<T: TryFrom<i64>>(
        &mut self,
        value: Option<&Int>,
        path: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let value = value?;
        let n = *value.get_ref();
        if n < min || n > max {
            let expected = if max == i64::MAX || max == i64::from(u32::MAX) {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            self.error(
                value.span().start,
                format!("{path}: {n} is out of range (expected {expected})"),
            );
            return None;
        }
        T::try_from(n).ok()
    }

    pub(super) fn path(&mut self, value: Option<&Text>, path: &str) -> Option<PathBuf> {
        let value = value?;
        if self.blank(value, path, "path") {
            return None;
        }
        Some(settings::resolve(&self.config_dir, value.get_ref()))
    }

    pub(super) fn paths(&mut self, values: Option<&[Text]>, path: &str) -> Option<Vec<PathBuf>> {
        let values = values?;
        Some(
            values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| self.path(Some(v), &format!("{path}[{i}]")))
                .collect(),
        )
    }

    /// `user = "NAME"` or `"NAME:GROUP"` (a group name or a numeric gid):
    /// the user a script runs as, resolved now from the password and group
    /// files, as keepalived resolves its script users.
    pub(super) fn run_as(&mut self, value: Option<&Text>, path: &str) -> Option<RunAs> {
        let value = value?;
        if self.blank(value, path, "user") {
            return None;
        }
        let text = value.get_ref().trim();
        let (user, group) = match text.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (text, None),
        };
        let numeric_gid = group.and_then(|g| g.parse::<u32>().ok());
        let named_group = group.filter(|_| numeric_gid.is_none());
        let resolved =
            crate::config::keepalived::security::resolve_user(self.fs, user, named_group).map(
                |mut run_as| {
                    if let Some(gid) = numeric_gid {
                        run_as.gid = gid;
                    }
                    run_as
                },
            );
        self.ok_or_report(resolved, value.span().start, path)
    }

    pub(super) fn period(&mut self, value: Option<&Text>, path: &str) -> Option<Period> {
        let value = value?;
        self.ok_or_report(Period::parse(value.get_ref()), value.span().start, path)
    }

    /// Compiles `value` as a regex only to check it; returns whether it is valid.
    pub(super) fn regex(&mut self, value: &Text, path: &str) -> bool {
        match regex::Regex::new(value.get_ref()) {
            Ok(_) => true,
            Err(e) => {
                let detail = e.to_string();
                let reason = detail
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("error: ");
                self.error(
                    value.span().start,
                    format!("{path}: bad regex {:?}: {reason}", value.get_ref()),
                );
                false
            }
        }
    }

    pub(super) fn mail_address(&mut self, value: &Text, path: &str) -> bool {
        let checked = values::check_mail_address(value.get_ref());
        self.ok_or_report(checked, value.span().start, path)
            .is_some()
    }

    pub(super) fn host_port(&mut self, value: &Text, path: &str) -> Option<(IpAddr, Option<u16>)> {
        let parsed = values::parse_host_port(value.get_ref().trim());
        self.ok_or_report(parsed, value.span().start, path)
    }

    /// `ip:port`; a bare `ip` takes `default_port` when there is one.
    pub(super) fn socket_addr(
        &mut self,
        value: Option<&Text>,
        path: &str,
        default_port: Option<u16>,
    ) -> Option<SocketAddr> {
        let value = value?;
        let (ip, port) = self.host_port(value, path)?;
        match port.or(default_port) {
            Some(port) => Some(SocketAddr::new(ip, port)),
            None => {
                self.error(
                    value.span().start,
                    format!(
                        "{path}: {:?} needs a port (e.g. \"{ip}:80\")",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn protocol(&mut self, value: Option<&Text>, path: &str) -> Option<Protocol> {
        self.choice(value, path, "protocol", PROTOCOLS)
    }

    pub(super) fn forward(&mut self, value: &Text, path: &str) -> Option<Forward> {
        let parsed = values::parse_forward(value.get_ref());
        self.ok_or_report(parsed, value.span().start, path)
    }

    /// `group:service` (names as in mon: letters, digits, `_`, `.`, `-`).
    pub(super) fn service_ref(&mut self, value: &Text, path: &str) -> Option<ServiceRef> {
        match value.get_ref().trim().split_once(':') {
            Some((group, service)) if is_tag(group) && is_tag(service) => {
                Some(ServiceRef::new(group, service))
            }
            _ => {
                self.error(
                    value.span().start,
                    format!(
                        "{path}: {:?} is not group:service (e.g. \"web:http\")",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// Group and service names must be usable in `group:service` references.
    pub(super) fn tag(&mut self, entry: &Entry<'_, '_>, what: &str) {
        if !is_tag(&entry.name) {
            self.error(
                entry.at,
                format!(
                    "{}: {what} name {:?} may only contain letters, digits, \"_\", \".\" and \"-\"",
                    entry.path, entry.name
                ),
            );
        }
    }

    /// Finds an exec script: a name along `dirs`, or a path (relative to the
    /// config file). `Err` carries the places searched.
    pub(super) fn find_script(
        &mut self,
        command: &Text,
        path: &str,
        dirs: &[PathBuf],
    ) -> Option<Result<PathBuf, String>> {
        if self.blank(command, path, "command") {
            return None;
        }
        let name = command.get_ref().trim();
        if name.contains('/') {
            let path = settings::resolve(&self.config_dir, name);
            return Some(if self.fs.is_file(&path) {
                Ok(path)
            } else {
                Err(path.display().to_string())
            });
        }
        Some(settings::find_in(dirs, name, self.fs).ok_or_else(|| show_dirs(dirs)))
    }

    /// The script and arguments of a `type = "lua"` action or monitor; the
    /// script must exist.
    pub(super) fn lua_call(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        at: usize,
        hint: &str,
        settings: &Settings,
    ) -> Option<(String, Vec<String>)> {
        let raw = self.read::<RawLuaCall>(value, p)?;
        let script = self.required(raw.script.as_ref(), at, p, "script", hint)?;
        self.lua_script(script, &p.key("script"), settings)?;
        Some((script.get_ref().clone(), raw.args.unwrap_or_default()))
    }

    fn lua_script(&mut self, script: &Text, path: &str, settings: &Settings) -> Option<PathBuf> {
        let found = settings::find_lua(settings, script.get_ref(), self.fs);
        if found.is_none() {
            let mut dirs = settings.luadir.clone();
            dirs.extend(settings::SHIPPED_LUA_DIRS.iter().map(PathBuf::from));
            self.error(
                script.span().start,
                format!(
                    "{path}: Lua script {:?} not found (searched {})",
                    script.get_ref(),
                    show_dirs(&dirs)
                ),
            );
        }
        found
    }
}

/// mon's tag: `[A-Za-z0-9_.-]+`.
fn is_tag(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
