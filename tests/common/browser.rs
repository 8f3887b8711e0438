//! Debian's headless chromium for the tests that render keepmon's pages in a real browser (the web page, HAProxy's stats page).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's chromium, or a loud "not run" naming `test`.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        Command::new("which")
            .arg(name)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    });
    if found.is_none() {
        super::not_run(&format!("{test}: Debian's chromium is not installed"));
    }
    found
}

/// Run headless chromium with a fresh profile in a window of `size`
/// (`"1280,1600"`); `args` add the action (`--dump-dom URL`,
/// `--screenshot=FILE URL`, ...). Returns what it printed.
pub fn browse(browser: &Path, profile: &Path, size: &str, args: &[&str]) -> String {
    std::fs::remove_dir_all(profile).ok();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
