//! A service's alert periods (`[[watch.GROUP.SERVICE.period]]`, or the alert keys set directly on the service) and their alert lines, `alertevery` and `alertafter`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::checks::{DurationText, Flexible, Scalar, TableForm};
use super::cursor::{Dur, Int, KeyPath, Reader, Text, keys_of, subtable};
use super::messages::{did_you_mean, quote_key, show_duration};
use crate::config::model::{
    AlertAfter, AlertEvery, AlertEveryMode, AlertLine, ExitRange, Origin, PeriodBlock,
};
use crate::config::values;
use crate::period::Period;

/// The alert keys: directly on a service (one implicit always-period) or in
/// each `[[watch.GROUP.SERVICE.period]]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertKeys {
    alert: Option<Vec<Spanned<AlertRef>>>,
    upalert: Option<Vec<Spanned<AlertRef>>>,
    startupalert: Option<Vec<Spanned<AlertRef>>>,
    ackalert: Option<Vec<Spanned<AlertRef>>>,
    disablealert: Option<Vec<Spanned<AlertRef>>>,
    alertevery: Option<Spanned<Flexible<RawAlertEvery>>>,
    alertafter: Option<Spanned<Flexible<RawAlertAfter>>>,
    numalerts: Option<u32>,
    no_comp_alerts: Option<bool>,
    upalertafter: Option<Dur>,
    alerts_dont_count: Option<bool>,
    alertexitrange: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeriodHead {
    spec: Option<Text>,
    label: Option<Text>,
}

/// One alert entry: `"name"` or `{ action = "name", exit = "1-5" }`.
pub(super) type AlertRef = Flexible<RawAlertRef>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertRef {
    action: Option<Text>,
    exit: Option<Spanned<Scalar>>,
}

impl TableForm for RawAlertRef {
    const EXPECTING: &'static str =
        "an action name or a table { action = \"name\", exit = \"N-M\" }";
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertEvery {
    every: Option<Dur>,
    mode: Option<Text>,
}

impl TableForm for RawAlertEvery {
    const EXPECTING: &'static str =
        "a duration such as \"1h\" or a table { every = \"1h\", mode = \"summary\" }";
}

const ALERTEVERY_MODES: &[(&str, AlertEveryMode)] = &[
    ("summary", AlertEveryMode::Summary),
    ("observe_detail", AlertEveryMode::ObserveDetail),
    ("ignore_summary", AlertEveryMode::IgnoreSummary),
    ("strict", AlertEveryMode::Strict),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertAfter {
    count: Option<Int>,
    within: Option<Dur>,
}

impl TableForm for RawAlertAfter {
    const EXPECTING: &'static str =
        "a count, a duration such as \"10m\" or a table { count = 3, within = \"10m\" }";
}

impl Reader<'_> {
    pub(super) fn periods(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        p: &KeyPath,
        interval: Option<Duration>,
        periods: &mut Vec<PeriodBlock>,
    ) {
        let period_path = p.child("period");
        let DeValue::Array(array) = value.get_ref() else {
            self.error(
                value.span().start,
                format!(
                    "{period_path}: expected an array of tables (write [[{period_path}]] for each period), found {}",
                    value.get_ref().type_str()
                ),
            );
            return;
        };
        let head_keys = keys_of::<RawPeriodHead>();
        let alert_keys = keys_of::<RawAlertKeys>();
        let known: Vec<&str> = head_keys.iter().chain(alert_keys).copied().collect();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (i, element) in array.iter().enumerate() {
            let path = p.index("period", i);
            let Some(table) = self.table(element, &path, "a table of period keys") else {
                continue;
            };
            let table = self.unknown_keys(table, &path, &known);
            let span = element.span();
            let Some(head) =
                self.read::<RawPeriodHead>(&subtable(&table, span.clone(), head_keys), &path)
            else {
                continue;
            };
            let alerts = self
                .read::<RawAlertKeys>(&subtable(&table, span.clone(), alert_keys), &path)
                .unwrap_or_default();
            let spec = match &head.spec {
                Some(spec) => self
                    .period(Some(spec), &path.key("spec"))
                    .unwrap_or_else(Period::always),
                None => Period::always(),
            };
            let key = match (&head.label, &head.spec) {
                (Some(label), _) => {
                    // An empty label is an error, but the period keeps it.
                    self.blank(label, &path.key("label"), "label");
                    label.get_ref().clone()
                }
                (None, Some(spec)) => spec.get_ref().trim().to_string(),
                (None, None) => String::new(),
            };
            // When spec or label was rejected the key is unknown: no guess.
            let key_known = !self.rejected.contains(&path.key("spec"))
                && !self.rejected.contains(&path.key("label"));
            if let Some((_, first)) = seen.iter().find(|(k, _)| key_known && *k == key) {
                let shown = if key.is_empty() {
                    "(always)"
                } else {
                    key.as_str()
                };
                self.error(
                    span.start,
                    format!(
                        "{path}: duplicate period {shown:?} (also {}); give one of them a distinct label",
                        p.index("period", *first)
                    ),
                );
            }
            if key_known {
                seen.push((key.clone(), i));
            }
            periods.push(self.period_block(key, spec, alerts, &path, interval, span.start));
        }
    }

    pub(super) fn period_block(
        &mut self,
        key: String,
        spec: Period,
        raw: RawAlertKeys,
        p: &KeyPath,
        interval: Option<Duration>,
        at: usize,
    ) -> PeriodBlock {
        PeriodBlock {
            key,
            spec,
            alerts: self.alert_lines(raw.alert.as_deref(), p, "alert"),
            upalerts: self.alert_lines(raw.upalert.as_deref(), p, "upalert"),
            startupalerts: self.alert_lines(raw.startupalert.as_deref(), p, "startupalert"),
            ackalerts: self.alert_lines(raw.ackalert.as_deref(), p, "ackalert"),
            disablealerts: self.alert_lines(raw.disablealert.as_deref(), p, "disablealert"),
            alertevery: raw
                .alertevery
                .as_ref()
                .and_then(|v| self.alertevery(v, &p.key("alertevery"))),
            alertafter: raw
                .alertafter
                .as_ref()
                .and_then(|v| self.alertafter(v, &p.key("alertafter"), interval)),
            numalerts: raw.numalerts,
            no_comp_alerts: raw.no_comp_alerts.unwrap_or(false),
            upalertafter: self.positive_duration(raw.upalertafter.as_ref(), &p.key("upalertafter")),
            alerts_dont_count: raw.alerts_dont_count.unwrap_or(false),
            alertexitrange: raw.alertexitrange.as_ref().and_then(|r| {
                let range = values::parse_exit_range(r.get_ref());
                self.ok_or_report(range, r.span().start, &p.key("alertexitrange"))
            }),
            origin: Origin(self.location(at)),
        }
    }

    pub(super) fn alert_lines(
        &mut self,
        list: Option<&[Spanned<AlertRef>]>,
        p: &KeyPath,
        key: &str,
    ) -> Vec<AlertLine> {
        list.unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| self.alert_line(entry, &p.at_key(key, i)))
            .collect()
    }

    /// One alert entry, resolved against `[actions]`.
    pub(super) fn alert_line(
        &mut self,
        entry: &Spanned<AlertRef>,
        path: &str,
    ) -> Option<AlertLine> {
        let (name, exit) = match entry.get_ref() {
            Flexible::Text(name) => (Spanned::new(entry.span(), name.clone()), None),
            Flexible::Table(table) => {
                let exit = match &table.exit {
                    Some(exit) => Some(self.exit_range(exit, &format!("{path}.exit"))?),
                    None => None,
                };
                let Some(action) = &table.action else {
                    self.error(
                        entry.span().start,
                        format!(
                            "{path}: missing key \"action\" (the name of an action in [actions])"
                        ),
                    );
                    return None;
                };
                (action.clone(), exit)
            }
            Flexible::Integer(n) => {
                self.error(
                    entry.span().start,
                    format!(
                        "{path}: expected {}, found integer {n}",
                        RawAlertRef::EXPECTING
                    ),
                );
                return None;
            }
        };
        if let Some(action) = self.actions.get(name.get_ref()) {
            return Some(AlertLine {
                name: name.get_ref().clone(),
                exit,
                action: action.clone(),
            });
        }
        if !self.broken_actions.contains(name.get_ref()) {
            let defined: Vec<&str> = self
                .actions
                .keys()
                .chain(&self.broken_actions)
                .map(String::as_str)
                .collect();
            let message = if defined.is_empty() {
                format!(
                    "{path}: unknown action {:?} (no actions are defined; add an [actions.{}] table)",
                    name.get_ref(),
                    quote_key(name.get_ref())
                )
            } else {
                format!(
                    "{path}: unknown action {:?}{} (defined actions: {})",
                    name.get_ref(),
                    did_you_mean(name.get_ref(), &defined),
                    defined.join(", ")
                )
            };
            self.error(name.span().start, message);
        }
        None
    }

    fn exit_range(&mut self, value: &Spanned<Scalar>, path: &str) -> Option<ExitRange> {
        let result = match value.get_ref() {
            Scalar::Integer(n) => i32::try_from(*n)
                .map(|n| ExitRange { low: n, high: n })
                .map_err(|_| format!("{n} is not an exit value")),
            Scalar::Text(text) => values::parse_exit_range(text),
        };
        self.ok_or_report(result, value.span().start, path)
    }

    fn alertevery(
        &mut self,
        value: &Spanned<Flexible<RawAlertEvery>>,
        path: &str,
    ) -> Option<AlertEvery> {
        let at = value.span().start;
        let (every, mode) = match value.get_ref() {
            Flexible::Text(text) => (Spanned::new(value.span(), DurationText(text.clone())), None),
            Flexible::Table(table) => {
                let Some(every) = &table.every else {
                    if !self.rejected.contains(&format!("{path}.every")) {
                        self.error(
                            at,
                            format!("{path}: missing key \"every\" (e.g. every = \"1h\")"),
                        );
                    }
                    return None;
                };
                (every.clone(), table.mode.as_ref())
            }
            Flexible::Integer(n) => {
                self.error(
                    at,
                    format!(
                        "{path}: expected {}, found integer {n}",
                        RawAlertEvery::EXPECTING
                    ),
                );
                return None;
            }
        };
        let mode = self
            .choice(mode, &format!("{path}.mode"), "mode", ALERTEVERY_MODES)
            .unwrap_or(AlertEveryMode::Summary);
        let every = self.positive_duration(Some(&every), path)?;
        Some(AlertEvery { every, mode })
    }

    fn alertafter(
        &mut self,
        value: &Spanned<Flexible<RawAlertAfter>>,
        path: &str,
        interval: Option<Duration>,
    ) -> Option<AlertAfter> {
        let at = value.span().start;
        match value.get_ref() {
            Flexible::Integer(n) => {
                let count = self.int_in::<u32>(
                    Some(&Spanned::new(value.span(), *n)),
                    path,
                    1,
                    u32::MAX.into(),
                )?;
                Some(AlertAfter::Consecutive(count))
            }
            Flexible::Text(text) => {
                let d = Spanned::new(value.span(), DurationText(text.clone()));
                self.positive_duration(Some(&d), path)
                    .map(AlertAfter::Duration)
            }
            Flexible::Table(table) => {
                let count_path = format!("{path}.count");
                let count =
                    self.int_in::<u32>(table.count.as_ref(), &count_path, 1, u32::MAX.into());
                let window =
                    self.positive_duration(table.within.as_ref(), &format!("{path}.within"));
                if table.count.is_none() {
                    if !self.rejected.contains(&count_path) {
                        let hint = if table.within.is_some() {
                            "; for \"failing for longer than T\" write alertafter = \"T\""
                        } else {
                            ""
                        };
                        self.error(at, format!("{path}: missing key \"count\"{hint}"));
                    }
                    return None;
                }
                let count = count?;
                let Some(within) = &table.within else {
                    return Some(AlertAfter::Consecutive(count));
                };
                let window = window?;
                if let Some(interval) = interval {
                    let earliest = interval.saturating_mul(count - 1);
                    if earliest >= window {
                        self.error(
                            within.span().start,
                            format!(
                                "{path}: {count} failures within {} is not sensible: at interval {} \
                                 they take at least {}; widen within or lower count",
                                show_duration(window),
                                show_duration(interval),
                                show_duration(earliest)
                            ),
                        );
                        return None;
                    }
                }
                Some(AlertAfter::Window { count, window })
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::config::native::testing::check_cases;

    /// Alert lines and period diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Alerts name actions.
            (
                "[actions.log]\ntype = \"file\"\npath = \"a.log\"\n[watch.g.s]\nalert = [\"lgo\", { action = \"log\", exit = \"5-1\" }, 7, { exit = 1 }]\n",
                &[
                    "5:10: error: watch.g.s.alert[0]: unknown action \"lgo\"; did you mean \"log\"? (defined actions: log)",
                    "5:42: error: watch.g.s.alert[1].exit: exit range \"5-1\" is empty (5 > 1)",
                    "5:51: error: watch.g.s.alert[2]: expected an action name or a table { action = \"name\", exit = \"N-M\" }, found integer 7",
                    "5:54: error: watch.g.s.alert[3]: missing key \"action\" (the name of an action in [actions])",
                ],
            ),
            (
                "[watch.g.s]\nupalert = [\"log\"]\n",
                &[
                    "2:12: error: watch.g.s.upalert[0]: unknown action \"log\" (no actions are defined; add an [actions.log] table)",
                ],
            ),
            (
                "[watch.g.s]\nalert = \"log\"\n",
                &["2:9: error: watch.g.s.alert: expected an array, found string \"log\""],
            ),
            // Periods.
            (
                "[watch.g.s]\n[[watch.g.s.period]]\nspec = \"xx {1}\"\n[[watch.g.s.period]]\nlabel = \"a\"\n[[watch.g.s.period]]\nlabel = \"a\"\nalert_every = \"1h\"\n",
                &[
                    "3:8: error: watch.g.s.period[0].spec: unknown scale \"xx\" in period \"xx {1}\"",
                    "6:1: error: watch.g.s.period[2]: duplicate period \"a\" (also watch.g.s.period[1]); give one of them a distinct label",
                    "8:1: error: watch.g.s.period[2]: unknown key \"alert_every\"; did you mean \"alertevery\"? (valid keys: spec, label, alert, upalert, startupalert, ackalert, disablealert, alertevery, alertafter, numalerts, no_comp_alerts, upalertafter, alerts_dont_count, alertexitrange)",
                ],
            ),
            (
                "[watch.g.s]\nnumalerts = 3\n[[watch.g.s.period]]\nnumalerts = -3\n",
                &[
                    "3:13: error: watch.g.s: alert keys (numalerts) are set directly on the service and [[watch.g.s.period]] tables exist too; move them into the period tables",
                    "4:13: error: watch.g.s.period[0].numalerts: -3 is out of range (expected an integer from 0 to 4294967295)",
                ],
            ),
            (
                "[watch.g.s]\nperiod = { spec = \"wd {Mon}\" }\n",
                &[
                    "2:10: error: watch.g.s.period: expected an array of tables (write [[watch.g.s.period]] for each period), found table",
                ],
            ),
        ]);
    }
}
