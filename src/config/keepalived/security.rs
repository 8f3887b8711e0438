//! keepalived's script users and script security: who a script runs as (`script_user`, a vrrp_script's `user`, the `keepalived_script` user) and whether its path is safe to run as root (`check_script_secure`); reads the password and group files and file modes through the [`FileSystem`], runs nothing.
//!
//! keepalived 2.2.7 (`lib/notify.c`): a script runs as the `user` of its
//! vrrp_script, else as `script_user`, else as `keepalived_script` when
//! that user exists, else as keepalived itself (root). With
//! `enable_script_security` and none of these, scripts are removed.
//!
//! A script that runs as root (uid or gid 0, or a setuid/setgid-root
//! executable) has every component of its path checked, without following
//! symbolic links, and again for the path the links resolve to: each must
//! be owned by root; directories without the sticky bit and the file must
//! be neither group-writable (unless the group is root) nor
//! world-writable. An unsafe script is disabled under
//! `enable_script_security`, and only logged otherwise.
//!
//! keepmon's daemon runs VRRP as root, so a script without a user is
//! checked as root's.

use std::path::{Path, PathBuf};

use crate::config::model::RunAs;
use crate::config::{FileKind, FileSystem};

/// `user [group]` as keepalived's `set_uid_gid` resolves them; the message
/// keepalived logs when it cannot.
pub fn resolve_user(fs: &dyn FileSystem, user: &str, group: Option<&str>) -> Result<RunAs, String> {
    let passwd = fs
        .read_to_string(Path::new("/etc/passwd"))
        .ok_or_else(|| format!("Unable to resolve script username '{user}' - ignoring"))?;
    let (uid, mut gid) = passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 4 && fields[0] == user).then(|| (fields[2], fields[3]))
        })
        .find_map(|(uid, gid)| Some((uid.parse::<u32>().ok()?, gid.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("Script user '{user}' does not exist"))?;
    if let Some(group) = group {
        let groups = fs
            .read_to_string(Path::new("/etc/group"))
            .ok_or_else(|| format!("Unable to resolve script group name '{group}' - ignoring"))?;
        gid = groups
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 3 && fields[0] == group).then(|| fields[2])
            })
            .find_map(|gid| gid.parse::<u32>().ok())
            .ok_or_else(|| format!("Script group '{group}' does not exist"))?;
    }
    Ok(RunAs {
        user: user.to_string(),
        uid,
        gid,
    })
}

/// keepalived's `check_script_secure` for `path` run as `run_as` (None:
/// root): the first unsafe path, or None when the script is safe to run
/// (or is not run as root, or cannot be examined).
pub fn unsafe_path(fs: &dyn FileSystem, path: &Path, run_as: Option<&RunAs>) -> Option<PathBuf> {
    let (uid, gid) = run_as.map_or((0, 0), |r| (r.uid, r.gid));
    let real = fs.realpath(path);
    let file = fs.lstat(real.as_deref().unwrap_or(path))?;
    let setid_root = (file.uid == 0 && file.mode & 0o4100 == 0o4100)
        || (file.gid == 0 && file.mode & 0o2010 == 0o2010);
    if uid != 0 && gid != 0 && !setid_root {
        return None;
    }
    unsafe_component(fs, path).or_else(|| {
        real.filter(|real| real != path)
            .and_then(|real| unsafe_component(fs, &real))
    })
}

/// keepalived's `check_security`: each of `/`, `/a`, `/a/b`, ... `path`.
fn unsafe_component(fs: &dyn FileSystem, path: &Path) -> Option<PathBuf> {
    let components: Vec<PathBuf> = path.ancestors().map(Path::to_path_buf).collect();
    for (index, component) in components.iter().rev().enumerate() {
        let last = index + 1 == components.len();
        let meta = fs.lstat(component)?;
        let right_kind = if last {
            matches!(meta.kind, FileKind::File | FileKind::Symlink)
        } else {
            meta.kind == FileKind::Dir
        };
        if !right_kind {
            return Some(component.clone());
        }
        let sticky_dir = meta.kind == FileKind::Dir && meta.mode & 0o1000 != 0;
        let checked = (meta.kind == FileKind::Dir && !sticky_dir) || meta.kind == FileKind::File;
        let writable = (meta.gid != 0 && meta.mode & 0o020 != 0) || meta.mode & 0o002 != 0;
        if meta.uid != 0 || (checked && writable) {
            return Some(component.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::FileMeta;

    struct Fs {
        files: BTreeMap<PathBuf, FileMeta>,
        texts: BTreeMap<PathBuf, String>,
    }

    impl FileSystem for Fs {
        fn is_file(&self, path: &Path) -> bool {
            self.files.contains_key(path)
        }
        fn is_dir(&self, _: &Path) -> bool {
            false
        }
        fn read_to_string(&self, path: &Path) -> Option<String> {
            self.texts.get(path).cloned()
        }
        fn lstat(&self, path: &Path) -> Option<FileMeta> {
            self.files.get(path).copied()
        }
        fn realpath(&self, path: &Path) -> Option<PathBuf> {
            Some(path.to_path_buf())
        }
    }

    fn meta(uid: u32, gid: u32, mode: u32, kind: FileKind) -> FileMeta {
        FileMeta {
            uid,
            gid,
            mode,
            kind,
        }
    }

    fn fs(script: FileMeta, dir: FileMeta) -> Fs {
        Fs {
            files: [
                ("/", meta(0, 0, 0o755, FileKind::Dir)),
                ("/etc", meta(0, 0, 0o755, FileKind::Dir)),
                ("/etc/keepalived", dir),
                ("/etc/keepalived/check.sh", script),
            ]
            .into_iter()
            .map(|(p, m)| (PathBuf::from(p), m))
            .collect(),
            texts: [
                (
                    "/etc/passwd",
                    "root:x:0:0:root:/root:/bin/bash\nkeepalived_script:x:998:997::/:/usr/sbin/nologin\n",
                ),
                ("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
            ]
            .into_iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect(),
        }
    }

    const SCRIPT: &str = "/etc/keepalived/check.sh";

    #[test]
    fn users_and_groups_resolve_from_the_files() {
        let fs = fs(
            meta(0, 0, 0o755, FileKind::File),
            meta(0, 0, 0o755, FileKind::Dir),
        );
        let user = resolve_user(&fs, "keepalived_script", None).expect("exists");
        assert_eq!((user.uid, user.gid), (998, 997));
        let grouped = resolve_user(&fs, "keepalived_script", Some("nogroup")).expect("exists");
        assert_eq!(grouped.gid, 65534);
        assert_eq!(
            resolve_user(&fs, "nobody2", None).unwrap_err(),
            "Script user 'nobody2' does not exist"
        );
        assert_eq!(
            resolve_user(&fs, "root", Some("wheel2")).unwrap_err(),
            "Script group 'wheel2' does not exist"
        );
    }

    #[test]
    fn root_scripts_need_a_root_owned_unwritable_path() {
        let root_dir = meta(0, 0, 0o755, FileKind::Dir);
        let safe = fs(meta(0, 0, 0o755, FileKind::File), root_dir);
        assert_eq!(unsafe_path(&safe, Path::new(SCRIPT), None), None);
        // Group-writable by a non-root group, world-writable, owned by a user.
        for script in [
            meta(0, 100, 0o775, FileKind::File),
            meta(0, 0, 0o757, FileKind::File),
            meta(1000, 0, 0o755, FileKind::File),
        ] {
            let fs = fs(script, root_dir);
            assert_eq!(
                unsafe_path(&fs, Path::new(SCRIPT), None),
                Some(PathBuf::from(SCRIPT)),
                "{script:?}"
            );
        }
        // A world-writable directory is unsafe unless it is sticky.
        let open_dir = fs(
            meta(0, 0, 0o755, FileKind::File),
            meta(0, 0, 0o777, FileKind::Dir),
        );
        assert_eq!(
            unsafe_path(&open_dir, Path::new(SCRIPT), None),
            Some(PathBuf::from("/etc/keepalived"))
        );
        let sticky = fs(
            meta(0, 0, 0o755, FileKind::File),
            meta(0, 0, 0o1777, FileKind::Dir),
        );
        assert_eq!(unsafe_path(&sticky, Path::new(SCRIPT), None), None);
        // Group root may write.
        let root_group = fs(meta(0, 0, 0o775, FileKind::File), root_dir);
        assert_eq!(unsafe_path(&root_group, Path::new(SCRIPT), None), None);
    }

    #[test]
    fn scripts_of_other_users_are_not_checked_unless_setuid_root() {
        let user = RunAs {
            user: "keepalived_script".to_string(),
            uid: 998,
            gid: 997,
        };
        let writable = fs(
            meta(0, 100, 0o775, FileKind::File),
            meta(0, 0, 0o755, FileKind::Dir),
        );
        assert_eq!(unsafe_path(&writable, Path::new(SCRIPT), Some(&user)), None);
        let setuid = fs(
            meta(0, 100, 0o4775, FileKind::File),
            meta(0, 0, 0o755, FileKind::Dir),
        );
        assert_eq!(
            unsafe_path(&setuid, Path::new(SCRIPT), Some(&user)),
            Some(PathBuf::from(SCRIPT))
        );
    }
}
