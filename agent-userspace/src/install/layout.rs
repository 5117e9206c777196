//! Where a host install puts each file, as seen by the installed system
//! (`/etc/cordon/cordon.toml`) and as written by this run (the same path
//! under `--prefix`, e.g. a scratch root for an image).
use std::path::{Path, PathBuf};

use crate::paths::{self, Paths};

/// The installed `cordon` binary, as the unit's ExecStart names it.
pub const BINARY: &str = "/usr/local/bin/cordon";
/// Where the Debian package puts it.
pub const PACKAGE_BINARY: &str = "/usr/bin/cordon";
pub const UNIT_NAME: &str = "cordon.service";
pub const UNIT_FILE: &str = "/etc/systemd/system/cordon.service";
/// Operators override the unit here (`systemctl edit cordon`), never by
/// editing the unit, which a reinstall rewrites.
pub const UNIT_DROPIN_DIR: &str = "/etc/systemd/system/cordon.service.d";
/// Declares the `cordon` group for systemd-sysusers: the record of the
/// group in a scratch root, where the host's group database is off limits.
pub const SYSUSERS_FILE: &str = "/etc/sysusers.d/cordon.conf";
pub const GROUP: &str = "cordon";
pub const CONFIG_DIR: &str = "/etc/cordon";
/// Inside the state dir: what install created (directories, the group),
/// so `uninstall --purge` removes exactly that.
pub const MANIFEST_NAME: &str = "install.manifest";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// `root` must be absolute; `/` is the running host.
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Installing onto the running system (not into a scratch root): only
    /// then are the host's groups, systemd and kernel state touched.
    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `target` (an absolute path on the installed system) under the root.
    pub fn at(&self, target: impl AsRef<Path>) -> PathBuf {
        let rel = target.as_ref().strip_prefix("/").unwrap_or(target.as_ref());
        self.root.join(rel)
    }

    /// The target-system path of `real`, a path under the root.
    pub fn target_of(&self, real: &Path) -> PathBuf {
        match real.strip_prefix(&self.root) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => real.to_path_buf(),
        }
    }

    /// The daemon's host paths (state, run dir, socket, CA) before rooting.
    pub fn host_paths() -> Paths {
        Paths::host()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.at(CONFIG_DIR)
    }
    pub fn config_file(&self) -> PathBuf {
        self.at(paths::HOST_CONFIG)
    }
    pub fn policies(&self) -> PathBuf {
        self.at(paths::HOST_POLICIES)
    }
    pub fn binary(&self) -> PathBuf {
        self.at(BINARY)
    }
    pub fn unit_file(&self) -> PathBuf {
        self.at(UNIT_FILE)
    }
    pub fn unit_dropin_dir(&self) -> PathBuf {
        self.at(UNIT_DROPIN_DIR)
    }
    pub fn sysusers_file(&self) -> PathBuf {
        self.at(SYSUSERS_FILE)
    }
    pub fn state_dir(&self) -> PathBuf {
        self.at(Self::host_paths().state_dir)
    }
    pub fn ca_dir(&self) -> PathBuf {
        self.at(Self::host_paths().ca_dir)
    }
    pub fn run_dir(&self) -> PathBuf {
        self.at(Self::host_paths().run_dir)
    }
    pub fn manifest(&self) -> PathBuf {
        self.state_dir().join(MANIFEST_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_lands_under_the_prefix() {
        let l = Layout::new(Path::new("/tmp/root"));
        assert!(!l.is_host());
        for p in [
            l.config_file(),
            l.policies(),
            l.binary(),
            l.unit_file(),
            l.unit_dropin_dir(),
            l.sysusers_file(),
            l.state_dir(),
            l.ca_dir(),
            l.run_dir(),
            l.manifest(),
        ] {
            assert!(p.starts_with("/tmp/root/"), "{}", p.display());
        }
        assert_eq!(
            l.unit_file(),
            PathBuf::from("/tmp/root/etc/systemd/system/cordon.service")
        );
        assert_eq!(l.ca_dir(), PathBuf::from("/tmp/root/var/lib/cordon/ca"));
    }

    #[test]
    fn slash_is_the_host_and_paths_are_unchanged() {
        let l = Layout::new(Path::new("/"));
        assert!(l.is_host());
        assert_eq!(l.binary(), PathBuf::from(BINARY));
        assert_eq!(l.config_file(), PathBuf::from(paths::HOST_CONFIG));
        assert_eq!(l.state_dir(), PathBuf::from(paths::HOST_STATE_DIR));
    }

    #[test]
    fn target_of_undoes_the_prefix() {
        let l = Layout::new(Path::new("/tmp/root"));
        assert_eq!(
            l.target_of(&l.binary()),
            PathBuf::from("/usr/local/bin/cordon")
        );
    }

    #[test]
    fn the_unit_dropin_dir_belongs_to_the_unit() {
        assert_eq!(UNIT_DROPIN_DIR, format!("{UNIT_FILE}.d"));
        assert!(UNIT_FILE.ends_with(UNIT_NAME));
    }
}
