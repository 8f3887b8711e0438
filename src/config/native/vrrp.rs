//! `[vrrp.NAME]`: VRRP instances (keepalived's vrrp_instance keys), their virtual addresses and tracking; `[vrrp_sync_group.NAME]`: instances that move together.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::cursor::{Dur, Int, KeyPath, Reader, Text};
use super::messages::show_duration;
use super::periods::AlertRef;
use crate::config::model::{
    GarpSettings, Origin, ParamMatch, TrackBfd, TrackFile, TrackProcess, TrackTarget,
    VirtualAddress, Vrid, VrrpInitialState, VrrpInstance, VrrpSyncGroup, VrrpTrack, VrrpVersion,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVrrp {
    interface: Option<Text>,
    virtual_router_id: Option<Int>,
    priority: Option<Int>,
    advert_int: Option<Dur>,
    version: Option<Int>,
    state: Option<Text>,
    nopreempt: Option<bool>,
    preempt_delay: Option<Dur>,
    auth_pass: Option<Text>,
    virtual_ipaddress: Option<Vec<Text>>,
    virtual_ipaddress_excluded: Option<Vec<Text>>,
    unicast_src_ip: Option<Text>,
    unicast_peer: Option<Vec<Text>>,
    garp_master_delay: Option<Dur>,
    garp_master_repeat: Option<u32>,
    garp_master_refresh: Option<Dur>,
    track: Option<Vec<Spanned<RawTrack>>>,
    track_interface: Option<Vec<String>>,
    /// keepalived's `track_file`: `[{ path = "...", weight = N, reverse = false }]`.
    track_file: Option<Vec<Spanned<RawTrackFile>>>,
    /// keepalived's `vrrp_track_process`: `[{ process = "nginx", weight = N, ... }]`.
    track_process: Option<Vec<Spanned<RawTrackProcess>>>,
    /// keepalived's `track_bfd`: `[{ name = "b1", weight = N, reverse = false }]`.
    track_bfd: Option<Vec<Spanned<RawTrackBfd>>>,
    v3_checksum_as_v2: Option<bool>,
    notify: Option<Vec<Spanned<AlertRef>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrackFile {
    path: Option<Text>,
    weight: Option<Int>,
    reverse: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrackProcess {
    name: Option<String>,
    process: Option<Text>,
    args: Option<Vec<String>>,
    param_match: Option<Text>,
    full_command: Option<bool>,
    quorum: Option<Int>,
    quorum_max: Option<Int>,
    weight: Option<Int>,
    reverse: Option<bool>,
    fork_delay: Option<Dur>,
    terminate_delay: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrackBfd {
    name: Option<Text>,
    weight: Option<Int>,
    reverse: Option<bool>,
}

/// `[vrrp_sync_group.NAME]`: `members` (vrrp instance names) and the
/// group's `notify` alert lines.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSyncGroup {
    members: Option<Vec<Text>>,
    notify: Option<Vec<Spanned<AlertRef>>>,
}

const VRRP_STATES: &[(&str, VrrpInitialState)] = &[
    ("BACKUP", VrrpInitialState::Backup),
    ("MASTER", VrrpInitialState::Master),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrack {
    service: Option<Text>,
    quorum: Option<Text>,
    weight: Option<Int>,
    reverse: Option<bool>,
}

impl Reader<'_> {
    /// `track_file = [{ path, weight, reverse }]` on an instance (weights
    /// −254..254) or a real server (`limit` = i32's); entries with an error
    /// are reported and left out.
    pub(super) fn track_files(
        &mut self,
        raw: Option<&[Spanned<RawTrackFile>]>,
        p: &KeyPath,
        limit: i64,
    ) -> Vec<TrackFile> {
        let mut track_files = Vec::new();
        for (i, entry) in raw.into_iter().flatten().enumerate() {
            let tp = p.index("track_file", i);
            let at = entry.span().start;
            let e = entry.get_ref();
            let Some(path) = self.required(
                e.path.as_ref(),
                at,
                &tp,
                "path",
                "e.g. path = \"/run/weight\"",
            ) else {
                continue;
            };
            let path = self.path(Some(path), &tp.key("path"));
            let weight = self.int_in::<i32>(e.weight.as_ref(), &tp.key("weight"), -limit, limit);
            if let (Some(path), Some(weight)) = (path, weight.or(e.weight.is_none().then_some(1))) {
                track_files.push(TrackFile {
                    path,
                    weight,
                    reverse: e.reverse.unwrap_or(false),
                });
            }
        }
        track_files
    }

    pub(super) fn vrrp(
        &mut self,
        name: &str,
        raw: RawVrrp,
        p: &KeyPath,
        at: usize,
    ) -> Option<VrrpInstance> {
        let mut ok = true;
        let interface = self.required(
            raw.interface.as_ref(),
            at,
            p,
            "interface",
            "e.g. interface = \"eth0\"",
        );
        if let Some(i) = interface
            && self.blank(i, &p.key("interface"), "interface name")
        {
            ok = false;
        }
        let vrid_value = self.required(
            raw.virtual_router_id.as_ref(),
            at,
            p,
            "virtual_router_id",
            "1 to 255, the same on every router of the group",
        );
        let vrid = self
            .int_in::<u8>(vrid_value, &p.key("virtual_router_id"), 1, 255)
            .and_then(Vrid::new);
        let priority = self.int_in::<u8>(raw.priority.as_ref(), &p.key("priority"), 1, 255);
        ok &= raw.priority.is_none() || priority.is_some();
        let version = match &raw.version {
            None => VrrpVersion::V3,
            Some(v) if *v.get_ref() == 2 => VrrpVersion::V2,
            Some(v) if *v.get_ref() == 3 => VrrpVersion::V3,
            Some(v) => {
                self.error(
                    v.span().start,
                    format!(
                        "{}: {} is not a vrrp version (expected 2 or 3)",
                        p.key("version"),
                        v.get_ref()
                    ),
                );
                ok = false;
                VrrpVersion::V3
            }
        };
        let advert_int = match &raw.advert_int {
            Some(d) => self.advert_int(d, &p.key("advert_int"), version),
            None => Some(Duration::from_secs(1)),
        };
        ok &= advert_int.is_some();
        let initial_state = self
            .choice(raw.state.as_ref(), &p.key("state"), "state", VRRP_STATES)
            .unwrap_or(VrrpInitialState::Backup);
        let preempt_delay = self.duration(raw.preempt_delay.as_ref(), &p.key("preempt_delay"));
        if let (Some(d), Some(text)) = (preempt_delay, &raw.preempt_delay)
            && d > Duration::from_secs(1000)
        {
            self.error(
                text.span().start,
                format!(
                    "{}: {} is out of range (expected 0s to 1000s)",
                    p.key("preempt_delay"),
                    show_duration(d)
                ),
            );
            ok = false;
        }
        if let Some(pass) = &raw.auth_pass {
            let path = p.key("auth_pass");
            if version == VrrpVersion::V3 {
                self.error(pass.span().start, format!("{path}: vrrp version 3 has no authentication; remove auth_pass or set version = 2"));
                ok = false;
            } else if pass.get_ref().len() > 8 {
                self.error(
                    pass.span().start,
                    // Never echo a secret, not even in part.
                    format!(
                        "{path}: at most 8 bytes (it has {}; keepalived would cut it)",
                        pass.get_ref().len()
                    ),
                );
                ok = false;
            } else if pass.get_ref().is_empty() {
                self.error(pass.span().start, format!("{path}: empty password"));
                ok = false;
            }
        }

        let mut virtual_addresses = Vec::new();
        match &raw.virtual_ipaddress {
            Some(list) if !list.is_empty() => {
                for (i, text) in list.iter().enumerate() {
                    let path = p.at_key("virtual_ipaddress", i);
                    let vip = parse_virtual_address(text.get_ref());
                    match self.ok_or_report(vip, text.span().start, &path) {
                        Some(vip) => virtual_addresses.push((vip, text.span().start, path)),
                        None => ok = false,
                    }
                }
            }
            Some(_) => {
                self.error(
                    at,
                    format!("{}: needs at least one address", p.key("virtual_ipaddress")),
                );
                ok = false;
            }
            None => {
                if !self.rejected.contains(&p.key("virtual_ipaddress")) {
                    self.missing(
                        at,
                        p,
                        "virtual_ipaddress",
                        "e.g. virtual_ipaddress = [\"10.0.0.100/24\"]",
                    );
                }
                ok = false;
            }
        }
        let family_v4 = virtual_addresses
            .first()
            .map(|(vip, _, _)| vip.addr.is_ipv4());
        for (vip, at, path) in &virtual_addresses {
            if vip.addr.is_ipv6() && version == VrrpVersion::V2 {
                self.error(
                    *at,
                    format!("{path}: IPv6 address {} needs vrrp version 3", vip.addr),
                );
                ok = false;
            } else if Some(vip.addr.is_ipv4()) != family_v4 {
                self.error(*at, format!("{path}: {} mixes IPv4 and IPv6 in one instance; use one vrrp instance per address family", vip.addr));
                ok = false;
            }
        }
        let mut excluded_addresses = Vec::new();
        for (i, text) in raw.virtual_ipaddress_excluded.iter().flatten().enumerate() {
            let path = p.at_key("virtual_ipaddress_excluded", i);
            let address = parse_virtual_address(text.get_ref());
            match self.ok_or_report(address, text.span().start, &path) {
                Some(address) => excluded_addresses.push(address),
                None => ok = false,
            }
        }
        let unicast_src = match &raw.unicast_src_ip {
            Some(text) => self.same_family_ip(text, &p.key("unicast_src_ip"), family_v4),
            None => None,
        };
        let mut unicast_peers = Vec::new();
        for (i, text) in raw.unicast_peer.iter().flatten().enumerate() {
            match self.same_family_ip(text, &p.at_key("unicast_peer", i), family_v4) {
                Some(ip) => unicast_peers.push(ip),
                None => ok = false,
            }
        }
        ok &= raw.unicast_src_ip.is_none() || unicast_src.is_some();
        let garp = GarpSettings {
            master_delay: self
                .duration(raw.garp_master_delay.as_ref(), &p.key("garp_master_delay"))
                .unwrap_or(Duration::from_secs(5)),
            master_repeat: raw.garp_master_repeat.unwrap_or(5),
            master_refresh: self.positive_duration(
                raw.garp_master_refresh.as_ref(),
                &p.key("garp_master_refresh"),
            ),
        };
        let mut track = Vec::new();
        for (i, entry) in raw.track.iter().flatten().enumerate() {
            match self.vrrp_track(entry, &p.index("track", i)) {
                Some(t) => track.push(t),
                None => ok = false,
            }
        }
        let track_files = self.track_files(raw.track_file.as_deref(), p, 254);
        if track_files.len() != raw.track_file.as_ref().map_or(0, Vec::len) {
            ok = false;
        }
        let mut track_processes = Vec::new();
        for (i, entry) in raw.track_process.iter().flatten().enumerate() {
            match self.track_process(entry, &p.index("track_process", i)) {
                Some(t) => track_processes.push(t),
                None => ok = false,
            }
        }
        let mut track_bfds = Vec::new();
        for (i, entry) in raw.track_bfd.iter().flatten().enumerate() {
            let tp = p.index("track_bfd", i);
            let e = entry.get_ref();
            let Some(bfd) = self.required(
                e.name.as_ref(),
                entry.span().start,
                &tp,
                "name",
                "a [bfd.NAME] session, e.g. name = \"b1\"",
            ) else {
                ok = false;
                continue;
            };
            let weight = self.int_in::<i32>(e.weight.as_ref(), &tp.key("weight"), -253, 253);
            if e.weight.is_some() && weight.is_none() {
                ok = false;
                continue;
            }
            track_bfds.push(TrackBfd {
                name: bfd.get_ref().clone(),
                weight: weight.unwrap_or(0),
                reverse: e.reverse.unwrap_or(false),
            });
        }
        let notify = self.alert_lines(raw.notify.as_deref(), p, "notify");
        if !ok {
            return None;
        }
        Some(VrrpInstance {
            name: name.to_string(),
            interface: interface?.get_ref().clone(),
            vrid: vrid?,
            priority: priority.unwrap_or(100),
            advert_int: advert_int?,
            version,
            initial_state,
            nopreempt: raw.nopreempt.unwrap_or(false),
            preempt_delay,
            auth_pass: raw.auth_pass.map(Spanned::into_inner),
            virtual_addresses: virtual_addresses
                .into_iter()
                .map(|(vip, _, _)| vip)
                .collect(),
            excluded_addresses,
            unicast_src,
            unicast_peers,
            garp,
            track,
            track_interfaces: raw.track_interface.unwrap_or_default(),
            track_files,
            track_processes,
            track_bfds,
            v3_checksum_as_v2: raw.v3_checksum_as_v2.unwrap_or(false),
            notify,
            origin: Origin(self.location(at)),
        })
    }

    pub(super) fn vrrp_sync_group(
        &mut self,
        name: &str,
        raw: RawSyncGroup,
        p: &KeyPath,
        at: usize,
    ) -> Option<VrrpSyncGroup> {
        let members = self.required(
            raw.members.as_ref(),
            at,
            p,
            "members",
            "e.g. members = [\"vi_1\", \"vi_2\"]",
        )?;
        if members.is_empty() {
            self.error(
                at,
                format!("{}: needs at least one vrrp instance", p.key("members")),
            );
            return None;
        }
        let notify = self.alert_lines(raw.notify.as_deref(), p, "notify");
        Some(VrrpSyncGroup {
            name: name.to_string(),
            members: members.iter().map(|m| m.get_ref().clone()).collect(),
            notify,
            origin: Origin(self.location(at)),
        })
    }

    /// v2 sends whole seconds (1-255); v3 sends centiseconds (1-4095).
    fn advert_int(&mut self, value: &Dur, path: &str, version: VrrpVersion) -> Option<Duration> {
        let d = self.duration(Some(value), path)?;
        let at = value.span().start;
        match version {
            VrrpVersion::V2 => {
                let seconds = d.as_secs_f64().round();
                if (d.as_secs_f64() - seconds).abs() > 1e-6 || !(1.0..=255.0).contains(&seconds) {
                    self.error(at, format!("{path}: {} is not valid for vrrp version 2 (whole seconds from 1s to 255s)", show_duration(d)));
                    return None;
                }
                Some(Duration::from_secs(seconds as u64))
            }
            VrrpVersion::V3 => {
                let centis = (d.as_secs_f64() * 100.0).round();
                if (d.as_secs_f64() * 100.0 - centis).abs() > 1e-4
                    || !(1.0..=4095.0).contains(&centis)
                {
                    self.error(at, format!("{path}: {} is not valid for vrrp version 3 (a multiple of 10ms from 10ms to 40.95s)", show_duration(d)));
                    return None;
                }
                Some(Duration::from_millis(centis as u64 * 10))
            }
        }
    }

    fn same_family_ip(
        &mut self,
        text: &Text,
        path: &str,
        family_v4: Option<bool>,
    ) -> Option<IpAddr> {
        let Ok(ip) = text.get_ref().trim().parse::<IpAddr>() else {
            self.error(
                text.span().start,
                format!("{path}: {:?} is not an IP address", text.get_ref()),
            );
            return None;
        };
        if family_v4.is_some_and(|v4| v4 != ip.is_ipv4()) {
            self.error(
                text.span().start,
                format!("{path}: {ip} is not the same address family as virtual_ipaddress"),
            );
            return None;
        }
        Some(ip)
    }

    fn vrrp_track(&mut self, entry: &Spanned<RawTrack>, p: &KeyPath) -> Option<VrrpTrack> {
        let raw = entry.get_ref();
        let weight = self.int_in::<i32>(raw.weight.as_ref(), &p.key("weight"), -254, 254);
        if raw.weight.is_some() && weight.is_none() {
            return None;
        }
        let target = match (&raw.service, &raw.quorum) {
            (Some(service), None) => {
                TrackTarget::Service(self.service_ref(service, &p.key("service"))?)
            }
            (None, Some(quorum)) => TrackTarget::Quorum(quorum.get_ref().clone()),
            _ => {
                let ignore = self.rejected.contains(&p.key("service"))
                    || self.rejected.contains(&p.key("quorum"));
                if !ignore {
                    self.error(
                        entry.span().start,
                        format!("{p}: needs exactly one of service = \"group:service\" or quorum = \"virtual server name\""),
                    );
                }
                return None;
            }
        };
        Some(VrrpTrack {
            target,
            weight: weight.unwrap_or(0),
            reverse: raw.reverse.unwrap_or(false),
        })
    }
}

/// keepalived's `10.0.0.100/24 dev eth1` (prefix optional).
fn parse_virtual_address(text: &str) -> Result<VirtualAddress, String> {
    let mut words = text.split_whitespace();
    let address = words.next().ok_or("empty address")?;
    let (ip_text, prefix_text) = match address.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (address, None),
    };
    let addr: IpAddr = ip_text
        .parse()
        .map_err(|_| format!("{ip_text:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("bad prefix length \"/{p}\" for {addr} (0 to {max})"))?,
        None => max,
    };
    let mut dev = None;
    while let Some(word) = words.next() {
        match word {
            "dev" => {
                let name = words.next().ok_or("\"dev\" needs an interface name")?;
                dev = Some(name.to_string());
            }
            other => {
                return Err(format!(
                    "unexpected {other:?} in {text:?} (keepmon accepts \"ADDRESS[/PREFIX] [dev INTERFACE]\")"
                ));
            }
        }
    }
    Ok(VirtualAddress { addr, prefix, dev })
}

impl Reader<'_> {
    /// One `track_process` entry.
    fn track_process(
        &mut self,
        entry: &Spanned<RawTrackProcess>,
        p: &KeyPath,
    ) -> Option<TrackProcess> {
        let at = entry.span().start;
        let e = entry.get_ref();
        let process = self.required(
            e.process.as_ref(),
            at,
            p,
            "process",
            "e.g. process = \"nginx\"",
        )?;
        let mut ok = !self.blank(process, &p.key("process"), "process name");
        let args = e.args.clone().unwrap_or_default();
        let param_match = match e.param_match.as_ref() {
            None if args.is_empty() => ParamMatch::None,
            None => ParamMatch::Exact,
            Some(m) => match m.get_ref().as_str() {
                "none" => ParamMatch::None,
                "exact" => ParamMatch::Exact,
                "initial" => ParamMatch::Initial,
                "partial" => ParamMatch::Partial,
                other => {
                    self.error(
                        m.span().start,
                        format!(
                            "{}: unknown param_match {other:?} (expected one of: none, exact, initial, partial)",
                            p.key("param_match")
                        ),
                    );
                    ok = false;
                    ParamMatch::None
                }
            },
        };
        let full_command = e
            .full_command
            .unwrap_or(param_match != ParamMatch::None || !args.is_empty());
        if !full_command && (param_match != ParamMatch::None || !args.is_empty()) {
            self.error(
                at,
                format!("{p}: args and param_match need full_command = true (they compare the command line)"),
            );
            ok = false;
        }
        let quorum = self.int_in::<u32>(e.quorum.as_ref(), &p.key("quorum"), 0, 65535);
        let quorum_max = self.int_in::<u32>(
            e.quorum_max.as_ref(),
            &p.key("quorum_max"),
            0,
            i64::from(u32::MAX),
        );
        let weight = self.int_in::<i32>(e.weight.as_ref(), &p.key("weight"), -254, 254);
        ok &= (e.quorum.is_none() || quorum.is_some())
            && (e.quorum_max.is_none() || quorum_max.is_some())
            && (e.weight.is_none() || weight.is_some());
        let fork_delay = self.positive_duration(e.fork_delay.as_ref(), &p.key("fork_delay"));
        let terminate_delay =
            self.positive_duration(e.terminate_delay.as_ref(), &p.key("terminate_delay"));
        ok &= (e.fork_delay.is_none() || fork_delay.is_some())
            && (e.terminate_delay.is_none() || terminate_delay.is_some());
        let quorum = quorum.unwrap_or(1);
        let quorum_max = quorum_max.unwrap_or(u32::MAX);
        if ok && quorum > quorum_max {
            self.error(
                at,
                format!("{p}: quorum {quorum} is above quorum_max {quorum_max}"),
            );
            ok = false;
        }
        ok.then(|| TrackProcess {
            name: e.name.clone().unwrap_or_else(|| process.get_ref().clone()),
            process: process.get_ref().clone(),
            args,
            param_match,
            full_command,
            quorum,
            quorum_max,
            weight: weight.unwrap_or(0),
            reverse: e.reverse.unwrap_or(false),
            fork_delay,
            terminate_delay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::native::testing::check_cases;

    /// `[vrrp.NAME]` diagnostics.
    #[test]
    fn errors_name_their_place_and_key() {
        check_cases(&[
            // track_process.
            (
                "[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\ntrack_process = [{ weight = 1 }, { process = \"x\", param_match = \"full\", quorum = 3, quorum_max = 2 }, { process = \"y\", args = [\"-a\"], full_command = false }, { process = \"z\", quorum = 3, quorum_max = 2 }]\n",
                &[
                    "5:18: error: vrrp.v1.track_process[0]: missing key \"process\" (e.g. process = \"nginx\")",
                    "5:65: error: vrrp.v1.track_process[1].param_match: unknown param_match \"full\" (expected one of: none, exact, initial, partial)",
                    "5:103: error: vrrp.v1.track_process[2]: args and param_match need full_command = true (they compare the command line)",
                    "5:159: error: vrrp.v1.track_process[3]: quorum 3 is above quorum_max 2",
                ],
            ),
            // VRRP.
            (
                "[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 0\npriority = 256\nversion = 2\nadvert_int = \"1.5s\"\nauth_pass = \"123456789\"\nvirtual_ipaddress = [\"10.0.0.1/24\", \"::1/64 dev eth0\", \"10.0.0.2/33\"]\n",
                &[
                    "3:21: error: vrrp.v1.virtual_router_id: 0 is out of range (expected 1 to 255)",
                    "4:12: error: vrrp.v1.priority: 256 is out of range (expected 1 to 255)",
                    "6:14: error: vrrp.v1.advert_int: 1.5s is not valid for vrrp version 2 (whole seconds from 1s to 255s)",
                    "7:13: error: vrrp.v1.auth_pass: at most 8 bytes (it has 9; keepalived would cut it)",
                    "8:37: error: vrrp.v1.virtual_ipaddress[1]: IPv6 address ::1 needs vrrp version 3",
                    "8:56: error: vrrp.v1.virtual_ipaddress[2]: bad prefix length \"/33\" for 10.0.0.2 (0 to 32)",
                ],
            ),
            (
                "[vrrp.v1]\ninterface = \"eth0\"\nvirtual_router_id = 1\nadvert_int = \"15ms\"\nauth_pass = \"x\"\nvirtual_ipaddress = [\"10.0.0.1\", \"fe80::1\"]\nunicast_peer = [\"fe80::2\"]\ntrack = [{ service = \"a:b\", quorum = \"x\" }, { quorum = \"vs\", weight = 255 }]\npreempt_delay = \"1001s\"\n",
                &[
                    "4:14: error: vrrp.v1.advert_int: 0.015s is not valid for vrrp version 3 (a multiple of 10ms from 10ms to 40.95s)",
                    "5:13: error: vrrp.v1.auth_pass: vrrp version 3 has no authentication; remove auth_pass or set version = 2",
                    "6:34: error: vrrp.v1.virtual_ipaddress[1]: fe80::1 mixes IPv4 and IPv6 in one instance; use one vrrp instance per address family",
                    "7:17: error: vrrp.v1.unicast_peer[0]: fe80::2 is not the same address family as virtual_ipaddress",
                    "8:10: error: vrrp.v1.track[0]: needs exactly one of service = \"group:service\" or quorum = \"virtual server name\"",
                    "8:71: error: vrrp.v1.track[1].weight: 255 is out of range (expected -254 to 254)",
                    "9:17: error: vrrp.v1.preempt_delay: 1001s is out of range (expected 0s to 1000s)",
                ],
            ),
            (
                "[vrrp.v1]\nvirtual_ipaddress = []\n",
                &[
                    "1:7: error: vrrp.v1: missing key \"interface\" (e.g. interface = \"eth0\")",
                    "1:7: error: vrrp.v1: missing key \"virtual_router_id\" (1 to 255, the same on every router of the group)",
                    "1:7: error: vrrp.v1.virtual_ipaddress: needs at least one address",
                ],
            ),
        ]);
    }

    #[test]
    fn sync_groups_name_defined_instances_once() {
        let instances = "[vrrp.a]\ninterface = \"eth0\"\nvirtual_router_id = 1\nvirtual_ipaddress = [\"10.0.0.1\"]\n\
[vrrp.b]\ninterface = \"eth0\"\nvirtual_router_id = 2\nvirtual_ipaddress = [\"10.0.0.2\"]\n";
        let compile = |groups: &str| {
            crate::config::compile_str(
                &format!("{instances}{groups}"),
                std::path::Path::new(crate::config::native::testing::FILE),
                crate::config::Format::Toml,
                &crate::config::native::testing::FakeFs::default(),
            )
        };
        let good = compile("[actions.log]\ntype = \"file\"\npath = \"/tmp/g.log\"\n[vrrp_sync_group.g]\nmembers = [\"a\", \"b\"]\nnotify = [\"log\"]\n")
            .expect("compiles");
        let group = &good.config.vrrp_sync_groups["g"];
        assert_eq!(group.members, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(group.notify.len(), 1);
        let bad = compile("[vrrp_sync_group.g]\nmembers = [\"a\", \"c\"]\n[vrrp_sync_group.h]\nmembers = [\"a\"]\n[vrrp_sync_group.i]\nmembers = []\n")
            .expect_err("refused");
        let messages: Vec<String> = bad.diagnostics.iter().map(|d| d.message.clone()).collect();
        for needle in [
            "vrrp_sync_group \"g\": member \"c\" is not a defined vrrp instance (defined: a, b)",
            "vrrp_sync_group \"h\": vrrp instance \"a\" is already a member of \"g\"",
            "vrrp_sync_group.i.members: needs at least one vrrp instance",
        ] {
            assert!(
                messages.iter().any(|m| m.contains(needle)),
                "{needle}: {messages:#?}"
            );
        }
    }

    #[test]
    fn virtual_addresses_parse() {
        assert!(parse_virtual_address("10.0.0.1/24 dev").is_err());
        assert!(parse_virtual_address("10.0.0.1/24 brd 10.0.0.255").is_err());
    }
}
