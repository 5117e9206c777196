//! The host paths a launch needs: every account's home (whose credential
//! files are kept from the agent), Cordon's own files, and the instance's
//! private temporary directory.
use std::path::PathBuf;

use super::{Shared, launch::LaunchError};
use crate::contain::Protected;

/// Homes of the host's accounts: root and every regular user (uid 1000 and
/// up, but not `nobody`), read from the password database at launch.
pub(super) fn account_homes() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/etc/passwd") else {
        return vec![PathBuf::from("/root")];
    };
    let mut homes: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let uid: u32 = f.get(2)?.parse().ok()?;
            let home = f.get(5)?;
            (uid == 0 || (1000..65534).contains(&uid))
                .then(|| PathBuf::from(home))
                .filter(|h| h.is_absolute() && h != std::path::Path::new("/"))
        })
        .collect();
    homes.push(PathBuf::from("/root"));
    homes.sort();
    homes.dedup();
    homes
}

/// Cordon's own files, as this daemon has them.
pub fn protected(d: &Shared) -> Protected {
    let p = &d.cfg.paths;
    let mut secret = vec![p.state_dir.clone(), p.pin_dir()];
    secret.extend(d.cfg.config_file.clone());
    Protected {
        secret,
        read_only: vec![d.cfg.policies.clone()],
        public: vec![p.run_dir.clone()],
        control_socket: p.socket.clone(),
    }
}

/// `Paths::agent_tmp`: `<tmp>/<namespace>-<cgroup id>`, 0700, owned by the agent user.
pub(super) fn private_tmp(d: &Shared, cgroup_id: u64, uid: u32) -> Result<PathBuf, LaunchError> {
    use std::os::unix::fs::DirBuilderExt;
    let path = d.cfg.paths.agent_tmp(cgroup_id);
    let err = |source| LaunchError::Tmp {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(err)?;
    nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(uid)), None)
        .map_err(|e| err(std::io::Error::from(e)))?;
    Ok(path)
}

pub(super) fn remove_tmp(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        tracing::warn!("removing {}: {e}", path.display());
    }
}
