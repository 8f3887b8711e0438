//! The process's file-descriptor budget: at start the soft `RLIMIT_NOFILE` is raised to the hard limit, and the proxies' global connection limit keeps a reserve below it, so clients exhaust listener caps long before the daemon's own checks, state saves and alerts run out of descriptors.

use std::io;

/// The descriptor limit before and after [`raise_to_hard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raise the soft descriptor limit to the hard one (systemd's default soft
/// limit is 1,024, its hard one 524,288).
pub fn raise_to_hard() -> io::Result<FdLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let soft_before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the struct we own; raising the soft limit
        // up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(FdLimit {
        soft_before,
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// The soft descriptor limit now.
pub fn soft_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

/// Descriptors kept back from the proxies for the daemon's own work
/// (checks, state saves, the control socket, alerts, listeners): an eighth
/// of the limit, at least 64, at most half of it.
pub fn daemon_reserve(soft: u64) -> u64 {
    (soft / 8).max(64).min(soft / 2)
}

/// How many proxied client connections fit in `soft` descriptors after the
/// daemon's reserve: each takes two (the client's and the server's socket).
pub fn proxy_connection_budget(soft: u64) -> u64 {
    soft.saturating_sub(daemon_reserve(soft)) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_budget_leaves_a_reserve() {
        assert_eq!(daemon_reserve(1024), 128);
        assert_eq!(proxy_connection_budget(1024), 448);
        assert_eq!(daemon_reserve(200), 64);
        assert_eq!(proxy_connection_budget(200), 68);
        assert_eq!(daemon_reserve(100), 50);
        assert_eq!(proxy_connection_budget(100), 25);
        assert_eq!(proxy_connection_budget(524_288), 229_376);
    }
}
