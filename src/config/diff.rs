//! What changed between two configs: startup is `diff(None, new)`, reload is `diff(Some(old), new)`; one path for both.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::depend::ServiceRef;
use crate::config::model::{Config, Service};

/// Keys added, removed and changed, each sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes<K> {
    pub added: Vec<K>,
    pub removed: Vec<K>,
    pub changed: Vec<K>,
}

impl<K> Default for Changes<K> {
    fn default() -> Self {
        Changes {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        }
    }
}

impl<K> Changes<K> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Daemon-wide settings or mail settings differ.
    pub settings_changed: bool,
    pub hostgroups: Changes<String>,
    /// A service also counts as changed when the hosts of its group changed.
    pub services: Changes<ServiceRef>,
    pub virtual_servers: Changes<String>,
    pub vrrp: Changes<String>,
    /// VRRP sync groups (their members restart with them).
    pub vrrp_sync_groups: Changes<String>,
    /// Route announcements; `[bgp]` changes count as settings.
    pub announce: Changes<String>,
    /// Any stats page was added, removed or changed (they have no names;
    /// the web part rebinds them all).
    pub stats_pages_changed: bool,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        !self.settings_changed
            && self.hostgroups.is_empty()
            && self.services.is_empty()
            && self.virtual_servers.is_empty()
            && self.vrrp.is_empty()
            && self.vrrp_sync_groups.is_empty()
            && self.announce.is_empty()
            && !self.stats_pages_changed
    }
}

/// Compare two configs. `old = None` means "nothing is running yet", so
/// everything in `new` is added.
pub fn diff(old: Option<&Config>, new: &Config) -> ConfigDiff {
    let Some(old) = old else {
        return ConfigDiff {
            settings_changed: true,
            hostgroups: changes(&BTreeMap::new(), &new.hostgroups, |_, _| false),
            services: changes(&BTreeMap::new(), &service_map(new), |_, _| false),
            virtual_servers: changes(&BTreeMap::new(), &new.virtual_servers, |_, _| false),
            vrrp: changes(&BTreeMap::new(), &new.vrrp, |_, _| false),
            vrrp_sync_groups: changes(&BTreeMap::new(), &new.vrrp_sync_groups, |_, _| false),
            announce: changes(&BTreeMap::new(), &new.announce, |_, _| false),
            stats_pages_changed: !new.stats_pages.is_empty(),
        };
    };
    let hostgroups = changes(&old.hostgroups, &new.hostgroups, |a, b| a != b);
    let services = changes(&service_map(old), &service_map(new), |a, b| {
        a != b || hostgroups.changed.contains(&b.group)
    });
    ConfigDiff {
        settings_changed: old.settings != new.settings
            || old.mail != new.mail
            || old.bgp != new.bgp,
        services,
        hostgroups,
        virtual_servers: changes(&old.virtual_servers, &new.virtual_servers, |a, b| a != b),
        vrrp: changes(&old.vrrp, &new.vrrp, |a, b| a != b),
        vrrp_sync_groups: changes(&old.vrrp_sync_groups, &new.vrrp_sync_groups, |a, b| a != b),
        announce: changes(&old.announce, &new.announce, |a, b| a != b),
        stats_pages_changed: old.stats_pages != new.stats_pages,
    }
}

fn service_map(config: &Config) -> BTreeMap<ServiceRef, &Service> {
    config.services().map(|(_, s)| (s.reference(), s)).collect()
}

fn changes<K: Ord + Clone, V>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    differs: impl Fn(&V, &V) -> bool,
) -> Changes<K> {
    let mut out = Changes::default();
    for (key, value) in new {
        match old.get(key) {
            None => out.added.push(key.clone()),
            Some(before) if differs(before, value) => out.changed.push(key.clone()),
            Some(_) => {}
        }
    }
    out.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    out
}

impl fmt::Display for ConfigDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no changes");
        }
        if self.settings_changed {
            writeln!(f, "settings changed")?;
        }
        write_changes(f, "hostgroup", &self.hostgroups)?;
        write_changes(f, "service", &self.services)?;
        write_changes(f, "virtual server", &self.virtual_servers)?;
        write_changes(f, "vrrp instance", &self.vrrp)?;
        write_changes(f, "vrrp sync group", &self.vrrp_sync_groups)?;
        write_changes(f, "announcement", &self.announce)?;
        if self.stats_pages_changed {
            writeln!(f, "stats pages changed")?;
        }
        Ok(())
    }
}

fn write_changes<K: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    changes: &Changes<K>,
) -> fmt::Result {
    for (sign, keys) in [
        ("+", &changes.added),
        ("-", &changes.removed),
        ("~", &changes.changed),
    ] {
        for key in keys {
            writeln!(f, "{sign} {what} {key}")?;
        }
    }
    Ok(())
}
