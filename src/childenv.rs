//! What a mon.d monitor or alert.d script inherits from the daemon's own environment: a small allow-list (PATH, locale, TZ, HOME, ...), never the rest; mon's `MON_*` variables and the service's own are added by the callers.

use std::ffi::OsString;

/// Variables passed on from the daemon's environment when set.
pub const INHERITED: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "PERL5LIB",
];

/// PATH when the daemon has none (systemd always sets one).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The allowed part of `environment` (the daemon's, in production), with a
/// PATH always.
pub fn inherited(
    environment: impl Iterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut kept: Vec<(OsString, OsString)> = environment
        .filter(|(key, _)| key.to_str().is_some_and(|k| INHERITED.contains(&k)))
        .collect();
    if !kept.iter().any(|(k, _)| k == "PATH") {
        kept.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    kept
}

/// [`inherited`] of this process's environment.
pub fn from_daemon() -> Vec<(OsString, OsString)> {
    inherited(std::env::vars_os())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allow_list_passes_and_path_is_always_set() {
        let env = [
            ("PATH", "/bin"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("LANG", "C.UTF-8"),
            ("MON_GROUP", "stale"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(
            inherited(env.into_iter()),
            [
                ("PATH".into(), "/bin".into()),
                ("LANG".into(), "C.UTF-8".into())
            ]
        );
        assert_eq!(
            inherited(std::iter::empty()),
            [("PATH".into(), DEFAULT_PATH.into())]
        );
    }
}
