//! The real browser the console tests drive: Chromium from the
//! distribution's packages, and Playwright from PyPI in a virtualenv
//! (`cargo xtask setup` makes both; Playwright never downloads a browser).
//! Missing tools fail the test under CI and are a loud, counted skip
//! elsewhere.
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::daemon::workspace_root;

/// Where the Debian package installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

#[derive(Debug, Clone)]
pub struct Browser {
    /// The virtualenv's interpreter, with Playwright installed.
    pub python: PathBuf,
    pub chromium: PathBuf,
}

/// `.tools/console-venv`, made by `cargo xtask setup`.
pub fn console_venv() -> PathBuf {
    workspace_root().join(".tools/console-venv")
}

fn find() -> Result<Browser, String> {
    let python = console_venv().join("bin/python");
    if !python.exists() {
        return Err(format!(
            "no Playwright virtualenv at {} (run `cargo xtask setup`)",
            console_venv().display()
        ));
    }
    let chromium = PathBuf::from(CHROMIUM);
    if !chromium.exists() {
        return Err(format!(
            "no Chromium at {CHROMIUM} (apt-get install chromium, or `cargo xtask setup`)"
        ));
    }
    Ok(Browser { python, chromium })
}

/// The browser, or `None` after recording a skip. Under CI (`CI` set) a
/// missing browser panics: the test fails rather than skips.
pub fn require_browser(test_name: &str) -> Option<Browser> {
    match find() {
        Ok(b) => Some(b),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test_name}: the browser test cannot run under CI: {why}")
        }
        Err(why) => {
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr(),
                "\n{bar}\n!! SKIPPED: {test_name}: {why}\n!! THIS TEST DID NOT RUN.\n{bar}\n"
            );
            if let Some(path) = std::env::var_os(crate::root::SKIP_LOG_ENV)
                && let Err(e) = crate::root::record_skip(Path::new(&path), test_name)
            {
                eprintln!("!! could not record the skip: {e}");
            }
            None
        }
    }
}
