//! `[watch.GROUP.SERVICE]`: a watched service's own keys (interval, schedule, dependencies, env, rise/fall); its monitor and periods are read by `monitors.rs` and `periods.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::cursor::{Dur, Int, KeyPath, Reader, Text, keys_of, subtable};
use super::periods::{AlertRef, RawAlertKeys};
use crate::config::depend::Expr;
use crate::config::model::{DepBehavior, Monitor, Origin, Service, Settings, Watch};
use crate::period::{Period, Schedule};

/// The service keys of `[watch.GROUP.SERVICE]` other than `monitor`,
/// `period` and the alert keys (those are read separately).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    description: Option<String>,
    /// The user an exec monitor runs as (`NAME` or `NAME:GROUP`).
    user: Option<Text>,
    interval: Option<Dur>,
    failure_interval: Option<Dur>,
    schedule: Option<Text>,
    randskew: Option<Dur>,
    timeout: Option<Dur>,
    allow_empty_group: Option<bool>,
    exclude_hosts: Option<Vec<String>>,
    exclude_period: Option<Text>,
    depend: Option<Text>,
    alertdepend: Option<Text>,
    monitordepend: Option<Text>,
    hostdepend: Option<Vec<Text>>,
    dep_behavior: Option<Text>,
    dep_memory: Option<Dur>,
    redistribute: Option<Spanned<AlertRef>>,
    unack_summary: Option<bool>,
    exit_weight: Option<bool>,
    traptimeout: Option<Dur>,
    trapduration: Option<Dur>,
    env: Option<BTreeMap<Text, String>>,
    rise: Option<Int>,
    fall: Option<Int>,
}

const DEP_BEHAVIORS: &[(&str, DepBehavior)] = &[
    ("alert", DepBehavior::Alert),
    ("monitor", DepBehavior::Monitor),
    ("host", DepBehavior::HostMonitor),
    ("a", DepBehavior::Alert),
    ("m", DepBehavior::Monitor),
    ("hm", DepBehavior::HostMonitor),
];

/// Keys of a service that are not in [`RawService`].
const SERVICE_SUBTABLE_KEYS: &[&str] = &["monitor", "period"];

/// A bad interval keeps the service "polled" so the validator does not add
/// a second, misleading error; the config is rejected anyway.
const STAND_IN_INTERVAL: Duration = Duration::from_secs(60);

/// Used when a service's monitor is written but bad (reported already), so
/// the validator does not also say "has an interval but no monitor".
fn stand_in_monitor() -> Monitor {
    Monitor::Exec {
        name: String::new(),
        args: Vec::new(),
        append_hosts: false,
        path: None,
    }
}

impl Reader<'_> {
    pub(super) fn watches(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        settings: &Settings,
    ) -> BTreeMap<String, Watch> {
        let mut watches = BTreeMap::new();
        let groups = self.entries(
            value,
            &KeyPath::new("watch"),
            "a table of watches ([watch.GROUP.SERVICE])",
        );
        for group in groups.unwrap_or_default() {
            self.tag(&group, "group");
            let Some(entries) = self.entries(
                group.value,
                &group.path,
                "a table of services ([watch.GROUP.SERVICE])",
            ) else {
                continue;
            };
            let mut services = BTreeMap::new();
            for entry in entries {
                self.tag(&entry, "service");
                if let Some(service) =
                    self.service(&group.name, &entry.name, entry.value, entry.at, settings)
                {
                    services.insert(entry.name, service);
                }
            }
            watches.insert(
                group.name.clone(),
                Watch {
                    group: group.name,
                    services,
                    origin: Origin(self.location(group.at)),
                },
            );
        }
        watches
    }

    fn service(
        &mut self,
        group: &str,
        name: &str,
        value: &Spanned<DeValue<'_>>,
        at: usize,
        settings: &Settings,
    ) -> Option<Service> {
        let p = KeyPath::new("watch").child(group).child(name);
        let table = self.table(value, &p, "a table of service keys")?;
        let service_keys = keys_of::<RawService>();
        let alert_keys = keys_of::<RawAlertKeys>();
        let known: Vec<&str> = service_keys
            .iter()
            .chain(SERVICE_SUBTABLE_KEYS)
            .chain(alert_keys)
            .copied()
            .collect();
        let table = self.unknown_keys(table, &p, &known);
        let raw = self.read::<RawService>(&subtable(&table, value.span(), service_keys), &p)?;
        let direct_alerts = alert_keys.iter().any(|k| table.contains_key(*k));
        let direct = if direct_alerts {
            self.read::<RawAlertKeys>(&subtable(&table, value.span(), alert_keys), &p)
        } else {
            None
        };

        let interval = self.positive_duration(raw.interval.as_ref(), &p.key("interval"));
        let schedule = raw.schedule.as_ref().and_then(|s| {
            self.ok_or_report(
                Schedule::parse(s.get_ref()),
                s.span().start,
                &p.key("schedule"),
            )
        });
        let monitor = table.get("monitor").map(|m| {
            self.monitor(m, &p.child("monitor"), settings)
                .unwrap_or_else(stand_in_monitor)
        });
        let depend = self.depend(raw.depend.as_ref(), &p.key("depend"), group);
        let alertdepend = self.depend(raw.alertdepend.as_ref(), &p.key("alertdepend"), group);
        let monitordepend = self.depend(raw.monitordepend.as_ref(), &p.key("monitordepend"), group);
        let hostdepend = raw
            .hostdepend
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, r)| {
                self.service_ref(r, &p.at_key("hostdepend", i))
                    .map(|r| r.resolve_self(group))
            })
            .collect();
        let dep_behavior = self
            .choice(
                raw.dep_behavior.as_ref(),
                &p.key("dep_behavior"),
                "dep_behavior",
                DEP_BEHAVIORS,
            )
            .unwrap_or(DepBehavior::Alert);
        let redistribute = raw
            .redistribute
            .as_ref()
            .and_then(|r| self.alert_line(r, &p.key("redistribute")));
        let mut env = BTreeMap::new();
        for (var, value) in raw.env.iter().flatten() {
            if is_env_name(var.get_ref()) {
                env.insert(var.get_ref().clone(), value.clone());
            } else {
                self.error(
                    var.span().start,
                    format!(
                        "{}: environment variable name {:?} must match [A-Z_][A-Z0-9_]*",
                        p.child("env").child(var.get_ref()),
                        var.get_ref()
                    ),
                );
            }
        }

        let mut periods = Vec::new();
        if let Some(direct) = direct {
            periods.push(self.period_block(
                String::new(),
                Period::always(),
                direct,
                &p,
                interval,
                at,
            ));
        }
        if let Some((period_key, period_value)) = table.get_key_value("period") {
            if direct_alerts {
                // Read the periods anyway, so their own errors show up too.
                periods.clear();
                let keys: Vec<&str> = alert_keys
                    .iter()
                    .copied()
                    .filter(|k| table.contains_key(*k))
                    .collect();
                self.error(
                    period_key.span().start,
                    format!(
                        "{p}: alert keys ({}) are set directly on the service and [[{}]] tables exist too; \
                         move them into the period tables",
                        keys.join(", "),
                        p.child("period")
                    ),
                );
            }
            self.periods(period_value, &p, interval, &mut periods);
        }

        // A bad interval or schedule still counts as "polled", so the
        // validator does not add "has a monitor but no interval" to the
        // real error.
        let written_but_bad = (raw.interval.is_some() && interval.is_none())
            || (raw.schedule.is_some() && schedule.is_none());
        let interval = match interval {
            None if written_but_bad => Some(STAND_IN_INTERVAL),
            interval => interval,
        };
        Some(Service {
            group: group.to_string(),
            name: name.to_string(),
            description: raw.description,
            interval,
            failure_interval: self
                .positive_duration(raw.failure_interval.as_ref(), &p.key("failure_interval")),
            schedule,
            randskew: self.duration(raw.randskew.as_ref(), &p.key("randskew")),
            monitor,
            run_as: self.run_as(raw.user.as_ref(), &p.key("user")),
            timeout: self.positive_duration(raw.timeout.as_ref(), &p.key("timeout")),
            allow_empty_group: raw.allow_empty_group.unwrap_or(false),
            exclude_hosts: raw.exclude_hosts.unwrap_or_default(),
            exclude_period: self.period(raw.exclude_period.as_ref(), &p.key("exclude_period")),
            depend,
            alertdepend,
            monitordepend,
            hostdepend,
            dep_behavior,
            dep_memory: self.duration(raw.dep_memory.as_ref(), &p.key("dep_memory")),
            redistribute,
            unack_summary: raw.unack_summary.unwrap_or(false),
            exit_weight: raw.exit_weight.unwrap_or(false),
            traptimeout: self.positive_duration(raw.traptimeout.as_ref(), &p.key("traptimeout")),
            trapduration: self.duration(raw.trapduration.as_ref(), &p.key("trapduration")),
            env,
            rise: self
                .int_in::<u32>(raw.rise.as_ref(), &p.key("rise"), 1, u32::MAX.into())
                .unwrap_or(1),
            fall: self
                .int_in::<u32>(raw.fall.as_ref(), &p.key("fall"), 1, u32::MAX.into())
                .unwrap_or(1),
            periods,
            origin: Origin(self.location(at)),
        })
    }

    fn depend(&mut self, value: Option<&Text>, path: &str, group: &str) -> Option<Expr> {
        let value = value?;
        match Expr::parse(value.get_ref()) {
            Ok(parsed) => {
                if parsed.legacy_space_separated {
                    self.warning(
                        value.span().start,
                        format!(
                            "{path}: {:?} has services with no operator between them; they are read as AND, \
                             write \"&&\" between them",
                            value.get_ref()
                        ),
                    );
                }
                Some(parsed.expr.resolve_self(group))
            }
            Err(e) => {
                self.error(
                    value.span().start,
                    format!("{path}: {e} in {:?}", value.get_ref()),
                );
                None
            }
        }
    }
}

/// `[A-Z_][A-Z0-9_]*`, as mon's `VAR=value` lines.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {

    use crate::config::native::testing::check_cases;

    /// `[watch.GROUP.SERVICE]` diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // Services.
            (
                "[watch.g.s]\nintreval = \"5s\"\n",
                &[
                    "2:1: error: watch.g.s: unknown key \"intreval\"; did you mean \"interval\"? (valid keys: description, user, interval, failure_interval, schedule, randskew, timeout, allow_empty_group, exclude_hosts, exclude_period, depend, alertdepend, monitordepend, hostdepend, dep_behavior, dep_memory, redistribute, unack_summary, exit_weight, traptimeout, trapduration, env, rise, fall, monitor, period, alert, upalert, startupalert, ackalert, disablealert, alertevery, alertafter, numalerts, no_comp_alerts, upalertafter, alerts_dont_count, alertexitrange)",
                ],
            ),
            (
                "[watch.g.s]\nschedule = \"every minute\"\nrise = 0\nenv = { home = \"x\" }\n",
                &[
                    "2:12: error: watch.g.s.schedule: invalid cron schedule \"every minute\": expected 5, 6 or 7 fields, found 2",
                    "3:8: error: watch.g.s.rise: 0 is out of range (expected at least 1)",
                    "4:9: error: watch.g.s.env.home: environment variable name \"home\" must match [A-Z_][A-Z0-9_]*",
                ],
            ),
            (
                "[watch.\"my g\".s]\n",
                &[
                    "1:8: error: watch.\"my g\": group name \"my g\" may only contain letters, digits, \"_\", \".\" and \"-\"",
                ],
            ),
            (
                "[watch.g.s]\ndepend = \"a:b &&\"\nalertdepend = \"a:b c:d\"\nhostdepend = [\"ab\"]\ndep_behavior = \"alerts\"\n",
                &[
                    "2:10: error: watch.g.s.depend: operator '&&' at column 5 is missing an operand in \"a:b &&\"",
                    "3:15: warning: watch.g.s.alertdepend: \"a:b c:d\" has services with no operator between them; they are read as AND, write \"&&\" between them",
                    "4:15: error: watch.g.s.hostdepend[0]: \"ab\" is not group:service (e.g. \"web:http\")",
                    "5:16: error: watch.g.s.dep_behavior: unknown dep_behavior \"alerts\"; did you mean \"alert\"? (expected one of: alert, monitor, host, a, m, hm)",
                ],
            ),
            (
                "[watch.g.s]\ninterval = \"5s\"\nalertafter = { count = 3, within = \"10s\" }\nalertevery = { every = \"1h\", mode = \"sumary\" }\n",
                &[
                    "3:36: error: watch.g.s.alertafter: 3 failures within 10s is not sensible: at interval 5s they take at least 10s; widen within or lower count",
                    "4:37: error: watch.g.s.alertevery.mode: unknown mode \"sumary\"; did you mean \"summary\"? (expected one of: summary, observe_detail, ignore_summary, strict)",
                ],
            ),
            (
                "[watch.g.s]\nalertafter = { within = \"10m\" }\nalertevery = 5\n",
                &[
                    "2:14: error: watch.g.s.alertafter: missing key \"count\"; for \"failing for longer than T\" write alertafter = \"T\"",
                    "3:14: error: watch.g.s.alertevery: expected a duration such as \"1h\" or a table { every = \"1h\", mode = \"summary\" }, found integer 5",
                ],
            ),
        ]);
    }
}
