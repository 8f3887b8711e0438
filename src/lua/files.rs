//! `file.append`'s one way to the filesystem: a file opened beneath the configured directory (`[lua] files_dir`), never through a symlink or `..`, with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or `O_NOFOLLOW` on each component where the kernel lacks openat2); blocking, run off the async workers.

use std::io::{self, Write};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::sys::stat::Mode;

/// Append `text` to `path` beneath `dir`, creating the file (mode 0640)
/// but no directories. `path` is relative to `dir`, or absolute and inside
/// it; `..`, symlinks (the last component too) and paths outside `dir` are
/// refused.
pub fn append_beneath(dir: &Path, path: &str, text: &[u8]) -> io::Result<()> {
    let relative = relative_beneath(dir, Path::new(path))?;
    let root = open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::other(format!("files_dir {}: {e}", dir.display())))?;
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY;
    let mode = Mode::from_bits_truncate(0o640);
    let how = OpenHow::new().flags(flags).mode(mode).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    let fd = match openat2(&root, relative.as_path(), how) {
        Err(Errno::ENOSYS) => open_component_by_component(root, &relative, flags, mode),
        other => other,
    }
    .map_err(|e| match e {
        Errno::ELOOP | Errno::EXDEV => {
            io::Error::other(format!("a symlink or a path outside {}", dir.display()))
        }
        e => io::Error::from(e),
    })?;
    let mut file = std::fs::File::from(fd);
    file.write_all(text)?;
    file.flush()
}

/// `path` as a plain relative path (only normal components) beneath `dir`.
fn relative_beneath(dir: &Path, path: &Path) -> io::Result<std::path::PathBuf> {
    let relative = if path.is_absolute() {
        path.strip_prefix(dir).map_err(|_| {
            io::Error::other(format!(
                "outside [lua] files_dir {} (give a path inside it)",
                dir.display()
            ))
        })?
    } else {
        path
    };
    let mut clean = std::path::PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(c) => clean.push(c),
            Component::CurDir => {}
            _ => return Err(io::Error::other("\"..\" is not allowed")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(io::Error::other("no file name"));
    }
    Ok(clean)
}

/// Without openat2: each directory opened with `O_NOFOLLOW` from the one
/// before, so no component can be a symlink (`..` is refused earlier).
fn open_component_by_component(
    root: std::os::fd::OwnedFd,
    relative: &Path,
    flags: OFlag,
    mode: Mode,
) -> nix::Result<std::os::fd::OwnedFd> {
    let mut dir = root;
    let mut components: Vec<_> = relative.components().collect();
    let last = components.pop().ok_or(Errno::ENOENT)?;
    for component in components {
        dir = openat(
            &dir,
            component.as_os_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
    }
    openat(&dir, last.as_os_str(), flags, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_only_beneath_the_directory_and_never_through_a_symlink() {
        let base = std::env::temp_dir().join(format!("keepmon-files-{}", std::process::id()));
        std::fs::remove_dir_all(&base).ok();
        let dir = base.join("files");
        let outside = base.join("outside");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("target"), dir.join("file-link")).unwrap();

        append_beneath(&dir, "a.log", b"one\n").unwrap();
        append_beneath(&dir, &dir.join("a.log").display().to_string(), b"two\n").unwrap();
        append_beneath(&dir, "sub/b.log", b"x\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a.log")).unwrap(),
            "one\ntwo\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("a.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777 & !0o022, 0o640 & !0o022);

        for (path, why) in [
            ("/etc/cron.d/evil", "outside"),
            ("../outside/x", "\"..\""),
            ("sub/../../outside/x", "\"..\""),
            ("link/x", "symlink"),
            ("file-link", "symlink"),
            ("", "no file name"),
        ] {
            let error = append_beneath(&dir, path, b"bad\n")
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{path}: {error}");
        }
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing written outside"
        );
        let root = open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW;
        assert!(
            open_component_by_component(root, Path::new("link/x"), flags, Mode::empty()).is_err(),
            "the fallback refuses symlinked directories too"
        );
        std::fs::remove_dir_all(&base).ok();
    }
}
