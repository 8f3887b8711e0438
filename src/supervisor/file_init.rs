//! keepalived's `init_file`: tracked files written with a number when the daemon starts (created when missing; with `overwrite`, written over at start but never on a reload).

use crate::config::model::FileInit;

/// What to do with one file (keepalived's `track_file_end_handler`).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Write,
    Leave,
    /// It exists and is not a regular file: reported, left alone.
    NotRegular,
}

/// `found`: None when the path does not exist, else whether it is a
/// regular file.
fn step(found: Option<bool>, overwrite: bool, reload: bool) -> Step {
    match found {
        None => Step::Write,
        Some(_) if !overwrite => Step::Leave,
        Some(false) => Step::NotRegular,
        Some(true) if reload => Step::Leave,
        Some(true) => Step::Write,
    }
}

/// Initialise every file as keepalived does when it reads its config
/// (`reload`: a reload rather than the start). Failures are logged; the
/// daemon runs on, as keepalived does.
pub(super) fn init_files(inits: &[FileInit], reload: bool) {
    for init in inits {
        let found = std::fs::symlink_metadata(&init.path)
            .ok()
            .map(|m| m.file_type().is_file());
        match step(found, init.overwrite, reload) {
            Step::Leave => {}
            Step::NotRegular => tracing::warn!(
                path = %init.path.display(),
                "cannot initialise track file: it is not a regular file"
            ),
            Step::Write => {
                match crate::state::write_atomic(&init.path, format!("{}\n", init.value).as_bytes())
                {
                    Ok(()) => {
                        tracing::info!(path = %init.path.display(), value = init.value, "track file initialised")
                    }
                    Err(e) => {
                        tracing::warn!(path = %init.path.display(), error = %e, "unable to initialise track file")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::diag::Location;
    use crate::config::model::Origin;

    #[test]
    fn keepalived_creates_missing_files_and_overwrites_only_at_start() {
        assert_eq!(step(None, false, false), Step::Write);
        assert_eq!(step(None, true, true), Step::Write);
        assert_eq!(step(Some(true), false, false), Step::Leave);
        assert_eq!(step(Some(true), true, false), Step::Write);
        assert_eq!(step(Some(true), true, true), Step::Leave);
        assert_eq!(step(Some(false), true, false), Step::NotRegular);
        assert_eq!(step(Some(false), false, false), Step::Leave);
    }

    #[test]
    fn files_are_written_with_the_value_and_a_newline() {
        let dir = std::env::temp_dir().join(format!("keepmon-file-init-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("dir");
        let (fresh, kept, over) = (dir.join("fresh"), dir.join("kept"), dir.join("over"));
        std::fs::write(&kept, "7\n").expect("kept");
        std::fs::write(&over, "7\n").expect("over");
        let init = |path: &Path, value, overwrite| FileInit {
            path: path.to_path_buf(),
            value,
            overwrite,
            origin: Origin(Location::new(&Arc::from(Path::new("t.conf")), 1, 1)),
        };
        let inits = [
            init(&fresh, -3, false),
            init(&kept, 5, false),
            init(&over, 9, true),
        ];
        init_files(&inits, true);
        assert_eq!(std::fs::read_to_string(&fresh).expect("fresh"), "-3\n");
        assert_eq!(std::fs::read_to_string(&kept).expect("kept"), "7\n");
        assert_eq!(
            std::fs::read_to_string(&over).expect("over"),
            "7\n",
            "not on a reload"
        );
        init_files(&inits, false);
        assert_eq!(std::fs::read_to_string(&over).expect("over"), "9\n");
        assert_eq!(std::fs::read_to_string(&kept).expect("kept"), "7\n");
        // A directory is not written over.
        let sub = dir.join("sub");
        std::fs::create_dir(&sub).expect("sub");
        init_files(&[init(&sub, 1, true)], false);
        assert!(sub.is_dir());
        std::fs::remove_dir_all(&dir).ok();
    }
}
