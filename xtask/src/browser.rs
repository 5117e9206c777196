//! What the console's browser test and first-paint bench drive: headless
//! Chromium from Debian's packages (installed with the other packages, see
//! `toolchain::PACKAGES`), and Playwright from PyPI, pinned, in a
//! virtualenv under .tools/. Playwright is told never to download a
//! browser of its own: it drives the distribution's Chromium
//! (`executable_path`).
use std::process::Command;

use anyhow::Context;

use crate::sys::{output, run, workspace_root};

const PLAYWRIGHT: &str = "playwright==1.65.2";
const PLAYWRIGHT_VERSION: &str = "1.65.2";
const SYSTEM_PYTHON: &str = "/usr/bin/python3";
/// Where the Debian package puts it (`cordon_e2e::browser::CHROMIUM`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the tests and the bench find it (`cordon_e2e::browser::console_venv`).
pub fn console_venv() -> std::path::PathBuf {
    workspace_root().join(".tools/console-venv")
}

pub fn installed() -> bool {
    std::path::Path::new(CHROMIUM).exists()
        && output(Command::new(console_venv().join("bin/python")).args([
            "-c",
            "from importlib.metadata import version; print(version('playwright'))",
        ]))
        .is_some_and(|v| v.trim() == PLAYWRIGHT_VERSION)
}

/// Playwright into .tools/console-venv (Chromium comes from apt).
pub fn install() -> anyhow::Result<()> {
    if installed() {
        return Ok(());
    }
    let venv = console_venv();
    if !venv.join("bin/pip").exists() {
        eprintln!("xtask: creating {}", venv.display());
        run(Command::new(SYSTEM_PYTHON).args(["-m", "venv"]).arg(&venv)).context(
            "creating the console test virtualenv (on Debian: apt-get install python3-venv)",
        )?;
    }
    eprintln!("xtask: installing {PLAYWRIGHT} from PyPI (no browser download)");
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PLAYWRIGHT,
        ])
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))
}
