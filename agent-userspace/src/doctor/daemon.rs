//! Daemon checks: is it serving, are its programs attached and pinned, are
//! its CA, vault key and clock sound, and does its audit chain verify.
//! Each asks the running daemon or reads what it left on disk; the
//! judgements over what was read are pure and tested.
use std::{os::unix::fs::MetadataExt, path::Path, time::Duration};

use serde_json::Value;

use super::report::Check;
use crate::{
    control::{client, proto::Request},
    paths::Paths,
};

const SECTION: &str = "daemon";
const TIMEOUT: Duration = Duration::from_secs(10);
const START_FIX: &str =
    "start it (systemctl start cordon) and read why it stopped (journalctl -u cordon -e)";

pub fn checks(paths: &Paths) -> Vec<Check> {
    let status = match client::call(&paths.socket, &Request::Status, TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            // Without a daemon the rest cannot be judged; say so once.
            return vec![Check::fail(
                SECTION,
                "health",
                format!("no daemon answers on {}: {e}", paths.socket.display()),
                START_FIX,
            )];
        }
    };
    let mut out = vec![health(&status)];
    out.extend(containment(&status["containment"]));
    let lsm_attached = status["containment"]["bpf_lsm_layer"] == "attached";
    out.push(pins(&paths.pin_dir(), lsm_attached));
    out.push(ca(paths));
    out.push(vault_key(paths, status["pid"].as_u64()));
    out.push(clock(clock_synchronised()));
    out.push(audit(&crate::cli::audit::verify_report_at(paths)));
    out
}

pub fn health(status: &Value) -> Check {
    let theirs = status["version"].as_str().unwrap_or("?");
    let ours = env!("CARGO_PKG_VERSION");
    let detail = format!(
        "daemon {theirs} (pid {}) serving, policy version {}",
        status["pid"],
        status["policy_version"].as_str().unwrap_or("?")
    );
    if theirs == ours {
        Check::pass(SECTION, "health", detail)
    } else {
        Check::warn(
            SECTION,
            "health",
            format!("{detail}; this cordon is {ours}"),
            "restart the daemon after an upgrade (systemctl restart cordon)",
        )
    }
}

/// The layers the daemon reports in force (`containment` of `cordon status`).
/// Landlock audit records only add attribution, so their absence warns.
pub fn containment(c: &Value) -> Vec<Check> {
    let layer = |name: &str, key: &str, fix: &str, warn_only: bool| {
        let state = c[key].as_str().unwrap_or("unknown");
        match state {
            "attached" | "recorded" => Check::pass(SECTION, name, state),
            _ if warn_only => Check::warn(SECTION, name, state, fix),
            _ => Check::fail(SECTION, name, state, fix),
        }
    };
    vec![
        layer(
            "contain-kernel",
            "kernel_layer",
            "the daemon could not install containment in the kernel: fix the host checks above and restart it (journalctl -u cordon says why)",
            false,
        ),
        // Optional by design (docs/containment.md): Landlock and the cgroup
        // unix hooks hold agents without it; it adds a second deny list.
        layer(
            "contain-lsm",
            "bpf_lsm_layer",
            "optional second deny list: it needs the BPF LSM active (lsm=...,bpf) and a kernel that loads trampoline programs (lockdown=integrity refuses them: boot with lockdown=none if policy allows), then a daemon restart",
            true,
        ),
        layer(
            "landlock-audit",
            "landlock_records",
            "Landlock refusals are enforced but not recorded: use a kernel with Landlock audit (6.15+) and kernel auditing enabled",
            true,
        ),
    ]
}

/// Every link the daemon pins must be in its pin directory: a missing pin
/// is a program that is not enforcing, or will not survive a restart.
fn pins(dir: &Path, lsm: bool) -> Check {
    let present: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    pins_judged(dir, &crate::bpf::load::pinned_links(lsm), &present)
}

pub fn pins_judged(dir: &Path, wanted: &[String], present: &[String]) -> Check {
    let missing: Vec<&String> = wanted.iter().filter(|w| !present.contains(w)).collect();
    if missing.is_empty() {
        Check::pass(
            SECTION,
            "programs",
            format!(
                "{} links attached and pinned in {}",
                wanted.len(),
                dir.display()
            ),
        )
    } else {
        Check::fail(
            SECTION,
            "programs",
            format!(
                "missing in {}: {}",
                dir.display(),
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "restart the daemon (systemctl restart cordon): it attaches and pins every program at start",
        )
    }
}

/// The CA the proxy signs with: present, a CA, matching its key, valid now.
fn ca(paths: &Paths) -> Check {
    let cert = paths.ca_dir.join(cordon_tls::CA_CERT_FILE);
    let key = paths.ca_dir.join(cordon_tls::CA_KEY_FILE);
    if !cert.exists() || !key.exists() {
        return Check::fail(
            SECTION,
            "ca",
            format!("{} or {} is missing", cert.display(), key.display()),
            "restart the daemon: it creates a CA on first start",
        );
    }
    // Both files exist, so this loads and validates; it creates nothing.
    match cordon_tls::CertAuthority::load_or_create(&paths.ca_dir) {
        Ok(_) => Check::pass(SECTION, "ca", format!("{} is a valid CA", cert.display())),
        Err(e) => Check::fail(
            SECTION,
            "ca",
            e.to_string(),
            "replace the CA (see docs/install.md) and restart the daemon",
        ),
    }
}

/// Where the vault's master key comes from: a systemd credential (read
/// from the daemon's own environment) or a root-only key file.
fn vault_key(paths: &Paths, pid: Option<u64>) -> Check {
    let environ = pid
        .and_then(|p| std::fs::read(format!("/proc/{p}/environ")).ok())
        .unwrap_or_default();
    let credential = environ
        .split(|b| *b == 0)
        .any(|kv| kv.starts_with(b"CREDENTIALS_DIRECTORY="));
    let file = paths.state_dir.join("vault.key");
    let meta = std::fs::metadata(&file).ok().map(|m| (m.mode(), m.uid()));
    vault_key_judged(credential, &file, meta)
}

pub fn vault_key_judged(credential: bool, file: &Path, meta: Option<(u32, u32)>) -> Check {
    match (credential, meta) {
        (true, _) => Check::pass(SECTION, "vault-key", "systemd credential"),
        (false, Some((mode, 0))) if mode & 0o077 == 0 => Check::pass(
            SECTION,
            "vault-key",
            format!("key file {} (root-only)", file.display()),
        ),
        (false, Some((mode, uid))) => Check::fail(
            SECTION,
            "vault-key",
            format!(
                "key file {} is mode {:o}, owner uid {uid}",
                file.display(),
                mode & 0o7777
            ),
            format!("chown root:root {0} && chmod 600 {0}", file.display()),
        ),
        (false, None) => Check::fail(
            SECTION,
            "vault-key",
            format!("no systemd credential and no {}", file.display()),
            "restart the daemon (it creates the key file), or provide the cordon-vault-key credential",
        ),
    }
}

/// Audit timestamps and certificate validity follow the system clock.
pub fn clock(synchronised: Result<bool, String>) -> Check {
    match synchronised {
        Ok(true) => Check::pass(SECTION, "clock", "synchronised"),
        Ok(false) => Check::warn(
            SECTION,
            "clock",
            "the kernel reports the clock as not synchronised",
            "enable time synchronisation (systemd-timesyncd or chrony): audit timestamps and certificate checks depend on it",
        ),
        Err(e) => Check::warn(
            SECTION,
            "clock",
            format!("cannot read the clock state: {e}"),
            "check time synchronisation by hand (timedatectl)",
        ),
    }
}

/// adjtimex(2) with no modes only reads: TIME_ERROR or STA_UNSYNC mean
/// nothing is disciplining the clock.
fn clock_synchronised() -> Result<bool, String> {
    // SAFETY: a zeroed timex with modes 0 asks for no change; the kernel
    // only writes the struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

/// `cordon audit verify`'s report, judged.
pub fn audit(report: &anyhow::Result<Value>) -> Check {
    match report {
        Ok(r) if r["problem"].is_null() => {
            Check::pass(SECTION, "audit", crate::cli::audit::summary(r))
        }
        Ok(r) => Check::fail(
            SECTION,
            "audit",
            crate::cli::audit::summary(r),
            "the trail was altered or lost after the record named: keep the database for investigation (cordon audit export) and see docs/audit.md",
        ),
        Err(e) => Check::fail(
            SECTION,
            "audit",
            format!("cannot verify the trail: {e:#}"),
            "run cordon audit verify as root and read its error",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_pin_is_named() {
        let wanted = vec!["link_a".to_string(), "link_b".to_string()];
        let c = pins_judged(Path::new("/p"), &wanted, &["link_a".into()]);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.detail, "missing in /p: link_b");
        let ok = pins_judged(Path::new("/p"), &wanted, &wanted);
        assert_eq!(ok.status, Status::Pass);
    }

    #[test]
    fn the_required_layer_missing_fails_and_the_optional_one_warns() {
        let missing = containment(&json!({"kernel_layer": "unavailable: no BTF"}));
        assert_eq!(missing[0].status, Status::Fail);
        let c = containment(&json!({
            "kernel_layer": "attached",
            "bpf_lsm_layer": "not attached: bpf LSM inactive",
            "landlock_records": "recorded",
        }));
        let st: Vec<Status> = c.iter().map(|c| c.status).collect();
        assert_eq!(st, [Status::Pass, Status::Warn, Status::Pass]);
        let unrecorded = containment(&json!({"landlock_records": "not recorded: no audit"}));
        assert_eq!(unrecorded[2].status, Status::Warn);
        assert!(c[1].detail.contains("bpf LSM inactive"));
    }

    #[test]
    fn a_vault_key_file_readable_by_others_fails() {
        let f = Path::new("/s/vault.key");
        assert_eq!(
            vault_key_judged(false, f, Some((0o100600, 0))).status,
            Status::Pass
        );
        let loose = vault_key_judged(false, f, Some((0o100644, 0)));
        assert_eq!(loose.status, Status::Fail);
        assert!(loose.fix.unwrap().contains("chmod 600"));
        assert_eq!(
            vault_key_judged(false, f, Some((0o100600, 1000))).status,
            Status::Fail
        );
        assert_eq!(vault_key_judged(true, f, None).status, Status::Pass);
        assert_eq!(vault_key_judged(false, f, None).status, Status::Fail);
    }

    #[test]
    fn an_unsynchronised_clock_warns_without_failing() {
        assert_eq!(clock(Ok(true)).status, Status::Pass);
        assert_eq!(clock(Ok(false)).status, Status::Warn);
    }

    #[test]
    fn a_broken_chain_fails_naming_the_record() {
        let bad =
            json!({"checked": 3, "problem": {"seq": 4, "kind": "hash_mismatch", "detail": "x"}});
        let c = audit(&Ok(bad));
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("FAILED at seq 4: hash_mismatch"));
        let good = json!({"checked": 3, "problem": null});
        assert_eq!(audit(&Ok(good)).status, Status::Pass);
    }

    #[test]
    fn a_daemon_of_another_version_warns() {
        let other = json!({"version": "0.0.0-old", "pid": 1, "policy_version": "v"});
        assert_eq!(health(&other).status, Status::Warn);
        let same = json!({"version": env!("CARGO_PKG_VERSION"), "pid": 1, "policy_version": "v"});
        assert_eq!(health(&same).status, Status::Pass);
    }
}
