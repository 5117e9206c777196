//! The systemd unit for the host daemon. The daemon runs as root but keeps
//! only the capabilities listed here; the rest of the sandbox keeps a
//! compromised daemon away from homes, /tmp and the read-only system.
use super::layout::{BINARY, PACKAGE_BINARY, UNIT_DROPIN_DIR};
use crate::paths::{HOST_CONFIG, HOST_RUN_DIR, HOST_STATE_DIR};

/// Each capability the daemon keeps, and what fails without it.
pub const CAPABILITIES: &[(&str, &str)] = &[
    ("CAP_BPF", "load the eBPF programs and create their maps"),
    (
        "CAP_NET_ADMIN",
        "attach cgroup socket programs that redirect agent egress",
    ),
    (
        "CAP_SYS_ADMIN",
        "mount bpffs, pin and unpin programs, and the cgroup BPF operations older kernels gate on it",
    ),
    (
        "CAP_PERFMON",
        "verifier access the programs need (pointer arithmetic, helper reads)",
    ),
    (
        "CAP_SYS_RESOURCE",
        "raise RLIMIT_MEMLOCK for BPF maps on kernels without memcg accounting",
    ),
    (
        "CAP_DAC_OVERRIDE",
        "write cgroup control files (cgroup.procs, cgroup.freeze, cgroup.kill) owned by others",
    ),
    (
        "CAP_CHOWN",
        "give the control socket to the socket_group so operators need no sudo",
    ),
    (
        "CAP_KILL",
        "signal agent processes of other users (terminate, kill switch)",
    ),
    (
        "CAP_AUDIT_READ",
        "read Landlock's refusal records from the kernel audit stream",
    ),
    (
        "CAP_AUDIT_CONTROL",
        "turn kernel auditing on when it is off, so Landlock logs refusals",
    ),
];

/// Paths the daemon writes; everything else is read-only (ProtectSystem=strict).
/// `/tmp` holds each contained agent's private temporary directory, which
/// the agent must see: the daemon gets the host's `/tmp`, not a private one.
pub const WRITABLE_PATHS: &[&str] = &[
    HOST_STATE_DIR,
    HOST_RUN_DIR,
    "/sys/fs/cgroup",
    "/sys/fs/bpf",
    "/tmp",
];

pub fn capability_list() -> String {
    CAPABILITIES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Who wrote the unit, which decides where an operator's changes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `cordon install`: binary in /usr/local/bin, unit in /etc/systemd/system.
    Install,
    /// The Debian package: binary in /usr/bin, unit in /usr/lib/systemd/system.
    Package,
}

/// The unit `cordon install` writes.
pub fn render() -> String {
    render_for(Origin::Install)
}

/// The unit file's text. Paths are the installed system's, whatever the
/// prefix the files are written under.
pub fn render_for(origin: Origin) -> String {
    let (binary, header) = match origin {
        Origin::Install => (
            BINARY,
            "Written by `cordon install`; a reinstall rewrites it.",
        ),
        Origin::Package => (
            PACKAGE_BINARY,
            "Shipped by the cordon package; an upgrade replaces it.",
        ),
    };
    let caps = capability_list();
    let why: String = CAPABILITIES
        .iter()
        .map(|(c, reason)| format!("#   {c}: {reason}\n"))
        .collect();
    let writable = WRITABLE_PATHS.join(" ");
    let state_name = dir_name(HOST_STATE_DIR);
    let run_name = dir_name(HOST_RUN_DIR);
    format!(
        "\
# {header} Change settings in
# drop-ins instead: `systemctl edit cordon` ({UNIT_DROPIN_DIR}/override.conf).
[Unit]
Description=Cordon: policy enforcement for AI agents
Documentation=man:cordon-daemon(1) man:cordon-doctor(1)
After=network.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={binary} daemon --config {HOST_CONFIG}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
WatchdogSec=30
TimeoutStopSec=30

# Sandbox.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={writable}
# Read-only, not hidden: containment lists homes to keep every account's
# credential files from agents.
ProtectHome=read-only
RuntimeDirectory={run_name}
RuntimeDirectoryMode=0755
StateDirectory={state_name}
StateDirectoryMode=0700
# Core dumps would hold the CA key and vault secrets.
LimitCORE=0
# Two sockets per proxied agent connection.
LimitNOFILE=1048576

# Root, but only these capabilities:
{why}CapabilityBoundingSet={caps}
AmbientCapabilities={caps}

[Install]
WantedBy=multi-user.target
"
    )
}

/// `cordon` for `/var/lib/cordon`: systemd's *Directory= take names
/// relative to /var/lib and /run.
fn dir_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<String> {
        render().lines().map(str::to_string).collect()
    }

    fn has(line: &str) {
        assert!(
            lines().iter().any(|l| l == line),
            "unit lacks {line:?}:\n{}",
            render()
        );
    }

    #[test]
    fn unit_is_a_notify_service_with_watchdog_and_reload() {
        has("Type=notify");
        has("NotifyAccess=main");
        has("ExecStart=/usr/local/bin/cordon daemon --config /etc/cordon/cordon.toml");
        has("ExecReload=/bin/kill -HUP $MAINPID");
        has("Restart=on-failure");
        has("WatchdogSec=30");
        has("WantedBy=multi-user.target");
    }

    #[test]
    fn the_packaged_unit_runs_the_packaged_binary_with_the_same_hardening() {
        let pkg = render_for(Origin::Package);
        assert!(
            pkg.contains("\nExecStart=/usr/bin/cordon daemon --config /etc/cordon/cordon.toml\n")
        );
        assert!(pkg.contains("Shipped by the cordon package"));
        let strip = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| {
                    !l.starts_with("ExecStart=")
                        && !l.starts_with("# Written")
                        && !l.starts_with("# Shipped")
                })
                .map(str::to_string)
                .collect()
        };
        assert_eq!(strip(&pkg), strip(&render()));
    }

    #[test]
    fn unit_carries_every_hardening_line() {
        for l in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/cordon /run/cordon /sys/fs/cgroup /sys/fs/bpf /tmp",
            "ProtectHome=read-only",
            "RuntimeDirectory=cordon",
            "StateDirectory=cordon",
            "StateDirectoryMode=0700",
            "LimitCORE=0",
            "LimitNOFILE=1048576",
        ] {
            has(l);
        }
    }

    #[test]
    fn capabilities_are_exactly_the_ten_the_daemon_needs() {
        let caps = "CAP_BPF CAP_NET_ADMIN CAP_SYS_ADMIN CAP_PERFMON CAP_SYS_RESOURCE \
                    CAP_DAC_OVERRIDE CAP_CHOWN CAP_KILL CAP_AUDIT_READ CAP_AUDIT_CONTROL";
        has(&format!("CapabilityBoundingSet={caps}"));
        has(&format!("AmbientCapabilities={caps}"));
        assert_eq!(
            lines()
                .iter()
                .filter(|l| l.starts_with("CapabilityBoundingSet=")
                    || l.starts_with("AmbientCapabilities="))
                .count(),
            2,
            "a second capability line would widen or reset the set"
        );
    }

    #[test]
    fn every_capability_is_explained_in_the_unit() {
        let text = render();
        for (cap, reason) in CAPABILITIES {
            assert!(text.contains(&format!("#   {cap}: {reason}")), "{cap}");
        }
    }

    #[test]
    fn unit_never_makes_the_cgroup_tree_read_only() {
        // ProtectControlGroups would remount /sys/fs/cgroup read-only and
        // the daemon could not create agent cgroups.
        assert!(!render().contains("ProtectControlGroups"));
    }
}
