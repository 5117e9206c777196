//! Where the console accepts connections: a loopback TCP port, or a unix
//! socket for the operator's reverse proxy.
//!
//! The socket is secured as the control socket is: its file mode and group
//! decide who may connect (0600 root's alone, or 0660 with the proxy's
//! group), and each connection's peer credentials are checked — a process
//! inside an agent's cgroup is refused and the attempt audited, whatever
//! the file mode (an agent running as root, or a policy whose
//! `contain.unix_sockets` lets it reach the path). Containment's own
//! `connect_unix` program stops a contained agent before that.
use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::Path,
};

use anyhow::{Context, bail};

use crate::{control::server::Caller, daemon::Shared};

/// Binds the console's socket, replacing a stale one left by a killed
/// daemon but never a live one, nor anything that is not a socket.
pub fn bind_unix(
    path: &Path,
    group: Option<&str>,
) -> anyhow::Result<std::os::unix::net::UnixListener> {
    // Resolved first: a group that does not exist is a configuration error,
    // never a wider mode.
    let gid = match group {
        None => None,
        Some(g) => Some(
            nix::unistd::Group::from_name(g)
                .with_context(|| format!("looking up group {g:?} for the console socket"))?
                .with_context(|| format!("console socket_group {g:?}: no such group"))?
                .gid,
        ),
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "console socket {}: something that is not a socket is there; not replacing it",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("console socket {}: a live server is on it", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale console socket {}", path.display()))?;
    }
    // A socket is created with the umask's mode (0755 at most: nobody but
    // root can connect, since connecting needs write permission) until the
    // mode below is set.
    let l = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding the console on {}", path.display()))?;
    l.set_nonblocking(true)?;
    let mode = match gid {
        Some(gid) => {
            nix::unistd::chown(path, None, Some(gid))
                .with_context(|| format!("giving {} to its group", path.display()))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(l)
}

/// Whether a unix peer may talk to the console: not from inside an agent's
/// cgroup (refused and audited), and only when the daemon can tell where it
/// runs (fail closed).
pub async fn peer_allowed(d: &Shared, stream: &tokio::net::UnixStream) -> bool {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("console: no peer credentials: {e}");
            return false;
        }
    };
    let Some(pid) = cred.pid() else {
        tracing::warn!("console: a peer without a pid was refused");
        return false;
    };
    let agent = match d.registry.tree().locate_pid(pid) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(
                pid,
                "console: cannot tell where the peer runs, refused: {e}"
            );
            return false;
        }
    };
    let Some(agent) = agent else {
        return true;
    };
    tracing::warn!(
        agent = %agent.chain_display(),
        pid,
        uid = cred.uid(),
        "console: a connection from inside an agent cgroup was refused"
    );
    let caller = Caller {
        pid,
        uid: cred.uid(),
        gid: cred.gid(),
        agent: Some(agent.clone()),
    };
    crate::control::ops::audit_refusal(d, &caller, "console", &agent).await;
    false
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn the_socket_is_root_only_or_shared_with_its_group_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let l = bind_unix(&path, None).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(l);
        // The stale socket of a dead listener is replaced, with the group's mode.
        // Our own group: any user may give a file to it, so this runs without root too.
        let ours = nix::unistd::Group::from_gid(nix::unistd::getegid())
            .unwrap()
            .unwrap();
        let _l = bind_unix(&path, Some(&ours.name)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), ours.gid.as_raw());
        let e = bind_unix(&path, None).unwrap_err();
        assert!(format!("{e:#}").contains("live server"), "{e:#}");
    }

    #[test]
    fn a_missing_group_or_a_file_in_the_way_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let e = bind_unix(&path, Some("no-such-group-cordon")).unwrap_err();
        assert!(format!("{e:#}").contains("no such group"), "{e:#}");
        assert!(!path.exists(), "bound despite the error");
        std::fs::write(&path, "precious").unwrap();
        let e = bind_unix(&path, None).unwrap_err();
        assert!(format!("{e:#}").contains("not a socket"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }
}
