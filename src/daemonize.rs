//! `keepmon start --daemon`: fork, detach from the terminal, hold a locked pidfile; runs before any thread exists.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{ForkResult, fork, setsid};

/// Which side of the fork we are on.
pub enum Role {
    /// The original process: report the child's pid and exit.
    Parent(i32),
    /// The daemon: keep the lock alive for the life of the process.
    Child(Flock<File>),
}

/// Lock the pidfile (refusing when another instance holds it), fork, start a
/// new session, point stdio at `log` and write our pid.
///
/// Must be called before the tokio runtime starts: forking a threaded
/// process is unsafe.
pub fn detach(pidfile: &Path, log: &Path) -> io::Result<Role> {
    if let Some(dir) = pidfile.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(pidfile)?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        let holder = std::fs::read_to_string(pidfile).unwrap_or_default();
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another keepmon holds {} (pid {}): {errno}",
                pidfile.display(),
                holder.trim()
            ),
        )
    })?;
    // SAFETY: called from main before any other thread is started (the
    // runtime is built after this returns), so the child is a clean copy.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => {
            // Dropping the Flock would unlock the open file description the
            // child shares; the parent is about to exit, so let its copy go
            // without unlocking.
            std::mem::forget(lock);
            Ok(Role::Parent(child.as_raw()))
        }
        ForkResult::Child => {
            setsid().map_err(io::Error::from)?;
            redirect_stdio(log)?;
            let mut file: &File = &lock;
            file.set_len(0)?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()?;
            Ok(Role::Child(lock))
        }
    }
}

fn redirect_stdio(log: &Path) -> io::Result<()> {
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let null = File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null).map_err(io::Error::from)?;
    nix::unistd::dup2_stdout(&out).map_err(io::Error::from)?;
    nix::unistd::dup2_stderr(&out).map_err(io::Error::from)?;
    let _ = out.as_raw_fd();
    Ok(())
}
