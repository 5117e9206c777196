//! The daemon's state, opened in order before anything is served: its
//! directories, policy and connectors, the CA, the database with the audit
//! log (whose open decisions are given outcomes first), the vault, the kill
//! marks and the standing grants. Any of them failing stops the start.
use std::{os::unix::fs::PermissionsExt, sync::Arc};

use anyhow::Context;
use arc_swap::ArcSwap;
use cordon_connectors::ConnectorSet;
use cordon_tls::{CertAuthority, UpstreamTls};

use super::kernel::Enforcement;
use crate::{
    config::DaemonConfig,
    daemon::{
        Daemon, Shared, agents::Registry, approvals, decide::PolicyHandle, kill_marks::KillMarks,
        store,
    },
    dns, proxy,
};

/// The state and run directories. Everything the daemon creates is
/// private unless made public on purpose (the socket, the CA certificate
/// and bundle).
pub(super) fn make_dirs(paths: &crate::paths::Paths) -> anyhow::Result<()> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // A namespaced daemon keeps its socket inside the state dir, so agents
    // (which may launch sub-agents) need to traverse it: 0711 lets them
    // reach run/ without listing or reading anything else.
    let state_mode = if paths.run_dir.starts_with(&paths.state_dir) {
        0o711
    } else {
        0o700
    };
    make_dir(&paths.state_dir, state_mode)?;
    make_dir(&paths.run_dir, 0o755)
}

/// Opens everything the daemon holds, around the enforcement already
/// attached. The returned forwarder ships the trail for as long as it lives.
pub(super) async fn assemble(
    cfg: DaemonConfig,
    k: Enforcement,
) -> anyhow::Result<(Shared, Option<cordon_audit::forward::Forwarder>)> {
    let paths = cfg.paths.clone();
    let policy = PolicyHandle::load(&cfg.policies);
    let connectors = load_connectors(&cfg.policies.join("connectors"))?;
    let ca = CertAuthority::load_or_create(&paths.ca_dir).context("loading the Cordon CA")?;
    publish_agent_trust(&ca, &paths)?;
    let upstream_tls =
        Arc::new(UpstreamTls::new(&cfg.upstream_ca).context("building upstream TLS trust")?);
    let vault_key = vault_key(&paths)?;
    let db = Arc::new(
        open_database(&paths.db)
            .with_context(|| format!("opening the database {}", paths.db.display()))?,
    );
    let audit_cfg = cordon_audit::AuditConfig {
        wal: Some(paths.audit_wal.clone()),
        ..cfg.audit.clone()
    };
    let audit =
        cordon_audit::AuditLog::open(db.clone(), audit_cfg).context("opening the audit log")?;
    let reconciled = cordon_audit::reconcile_outcomes(&audit)
        .await
        .context("recording the outcome of decisions the last run left open")?;
    crate::metrics::global().record_outcomes(&reconciled.written);
    let forwarder = start_forwarder(&audit, cfg.audit_forward.as_ref())?;
    let vault =
        Arc::new(cordon_vault::Vault::open(db.clone(), vault_key).context("opening the vault")?);
    let kills = open_kill_marks(&paths, &store::Store::new(db.clone()))?;
    let jit = crate::daemon::jit::build(&cfg, &upstream_tls)?;
    let grants = crate::daemon::grants::Grants::load(store::Store::new(db.clone()))
        .context("loading the standing grants")?;
    let daemon: Shared = Arc::new(Daemon {
        registry: Registry::new(k.tree),
        maps: k.maps,
        policy,
        connectors: ArcSwap::from_pointee(connectors),
        names: remembered_names(&paths.state_dir),
        ca,
        upstream_tls,
        pools: proxy::upstream::PoolSet::new(cfg.cores),
        audit,
        kills,
        approvals: approvals::Approvals::new(store::Store::new(db.clone())),
        grants,
        conns: Arc::default(),
        caps: crate::daemon::caps::Caps::new(cfg.caps, super::limits::cap_budget(&cfg)),
        probes: Default::default(),
        stats: Default::default(),
        vault,
        jit,
        proxy_port: k.proxy_port,
        dns_port: k.dns_port,
        contain_kernel: k.contain_kernel,
        contain_lsm: k.contain_lsm,
        landlock_records: std::sync::OnceLock::new(),
        contained: Default::default(),
        console_addr: std::sync::OnceLock::new(),
        cfg,
    });
    Ok((daemon, forwarder))
}

fn make_dir(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}

/// The names a previous daemon resolved for agents, still live. A file that
/// cannot be read leaves the cache empty: connects to those addresses are
/// refused (as unresolved) until the agent resolves again.
fn remembered_names(state_dir: &std::path::Path) -> dns::NameCache {
    let names = dns::NameCache::default();
    match dns::names_file::restore(&names, state_dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(names = n, "took the resolved names the last daemon kept"),
        Err(e) => tracing::warn!("the resolved names the last daemon kept are unreadable: {e}"),
    }
    names
}

/// `[audit.forward]`: ships the trail to a syslog collector for as long as
/// the returned handle lives.
fn start_forwarder(
    audit: &cordon_audit::AuditLog,
    cfg: Option<&cordon_audit::forward::ForwardConfig>,
) -> anyhow::Result<Option<cordon_audit::forward::Forwarder>> {
    let Some(cfg) = cfg else { return Ok(None) };
    let f = cordon_audit::forward::Forwarder::start(audit.clone(), cfg.clone())
        .context("starting [audit.forward]")?;
    crate::metrics::global().watch_forwarder(f.stats());
    Ok(Some(f))
}

/// Loads the kill marks, moving any an older daemon kept in the database
/// into the file (the database copy is deleted only once the file has it).
fn open_kill_marks(
    paths: &crate::paths::Paths,
    legacy: &store::Store,
) -> anyhow::Result<KillMarks> {
    let marks = KillMarks::open(&paths.kill_marks)?;
    for (key, value) in legacy.legacy_kills()? {
        if !marks.contains(&key) {
            let mark = crate::daemon::kill_marks::parse_legacy(&value).with_context(|| {
                format!("the kill mark for {key} kept in the database is unreadable")
            })?;
            marks.put(&key, mark)?;
        }
        legacy.del_legacy_kill(&key)?;
    }
    Ok(marks)
}

/// Connector files are optional (an empty set maps everything to
/// `http.request`), but a broken one stops the start: silently ignoring it
/// would change what policy sees.
fn load_connectors(dir: &std::path::Path) -> anyhow::Result<ConnectorSet> {
    if !dir.exists() {
        tracing::warn!(dir = %dir.display(), "no connector directory: every request is http.request");
        return Ok(ConnectorSet::from_sources(Vec::new())?);
    }
    Ok(ConnectorSet::load_dir(dir)?)
}

/// Agents must be able to read the CA (not its key): it is copied, with
/// the bundle of system roots, into the world-readable run directory.
fn publish_agent_trust(ca: &CertAuthority, paths: &crate::paths::Paths) -> anyhow::Result<()> {
    std::fs::write(paths.agent_ca_cert(), ca.ca_pem())
        .with_context(|| format!("writing {}", paths.agent_ca_cert().display()))?;
    std::fs::set_permissions(
        paths.agent_ca_cert(),
        std::fs::Permissions::from_mode(0o644),
    )?;
    ca.write_agent_bundle(&paths.agent_ca_bundle())
        .with_context(|| format!("writing {}", paths.agent_ca_bundle().display()))?;
    Ok(())
}

/// The daemon's database. redb's page cache defaults to 1 GiB, which a busy
/// audit log fills (RSS grew to ~1 GB in the benchmark). Audit writes only
/// touch the rightmost pages, the vault is small, and a miss is a read from
/// the kernel's page cache: 4 MiB is plenty.
pub fn open_database(path: &std::path::Path) -> Result<redb::Database, redb::DatabaseError> {
    redb::Builder::new()
        .set_cache_size(4 * 1024 * 1024)
        .create(path)
}

/// The vault's master key: a systemd credential when present, else the
/// root-only key file in the state dir (created on first start). It is
/// checked against the database through a read-only handle first, so a
/// wrong key stops the start with one line and leaves the file
/// byte-for-byte unchanged.
pub fn vault_key(paths: &crate::paths::Paths) -> anyhow::Result<cordon_vault::MasterKey> {
    let source = cordon_vault::KeySource::detect(paths.state_dir.join("vault.key"));
    let key =
        cordon_vault::MasterKey::load(&source, true).context("loading the vault master key")?;
    cordon_vault::verify_key_read_only(&paths.db, &key).context("opening the vault")?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_marks_an_older_daemon_kept_in_the_database_move_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::paths::Paths::for_state_dir(dir.path());
        let db = Arc::new(open_database(&paths.db).unwrap());
        let legacy = store::Store::new(db);
        legacy
            .put_legacy_kill(
                "old-bot",
                r#"{"scope":{"Agent":"old-bot"},"reason":"r","by":"root","at":"2026-01-01T00:00:00Z"}"#,
            )
            .unwrap();
        let marks = open_kill_marks(&paths, &legacy).unwrap();
        assert!(marks.contains("old-bot"));
        assert!(legacy.legacy_kills().unwrap().is_empty());
        // On disk, not only in memory.
        let again = crate::daemon::kill_marks::KillMarks::open(&paths.kill_marks).unwrap();
        assert!(again.contains("old-bot"));
    }
}
