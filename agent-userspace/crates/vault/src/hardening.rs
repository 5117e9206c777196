//! Process hardening the daemon applies before it loads any key.

use nix::sys::prctl;
use nix::sys::resource::{Resource, setrlimit};

use crate::error::{Result, VaultError};

/// Makes sure a crash never writes the master key or decrypted secrets to a core file, and that
/// other processes of the same uid cannot ptrace or read `/proc/<pid>/mem` of the daemon.
pub fn disable_core_dumps() -> Result<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|source| VaultError::Hardening {
        call: "setrlimit(RLIMIT_CORE, 0)",
        source,
    })?;
    prctl::set_dumpable(false).map_err(|source| VaultError::Hardening {
        call: "prctl(PR_SET_DUMPABLE, 0)",
        source,
    })?;
    tracing::debug!("core dumps disabled and process marked non-dumpable");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::resource::getrlimit;

    #[test]
    fn disable_core_dumps_zeroes_limit_and_clears_dumpable() {
        disable_core_dumps().unwrap();
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (0, 0));
        assert!(!prctl::get_dumpable().unwrap());
    }
}
