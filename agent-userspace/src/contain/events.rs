//! A refusal the kernel reported, as an audit record: the action that was
//! tried (`file.open`, `unix.connect`, `process.access`), its parameters and
//! the containment rule that refused it. Pure: the daemon task that reads
//! the ring buffer supplies who the agent is and what its plan was.
use serde_json::{Map, Value};

use super::{landlock_log::Refusal, plan::ContainPlan};
use crate::{
    bpf::contain::{ContainEvent, ContainEventKind, UnixAddr},
    cgroup::AgentPath,
};

/// Facts looked up at the edge: the caller's executable and the target
/// process's, read from /proc when the event is handled.
#[derive(Debug, Default, Clone)]
pub struct Enrichment {
    pub exe: Option<String>,
    pub target_exe: Option<String>,
}

/// A refusal Landlock logged, as an audit record. Landlock names the
/// domain, not the calling process: the caller fills pid, uid and exe from
/// the event's SYSCALL record when there is one.
pub fn landlock_record(
    refusal: &Refusal,
    domain: u64,
    agent: Option<&AgentPath>,
    cgroup_id: Option<u64>,
    plan: Option<&ContainPlan>,
    target_exe: Option<String>,
    policy_version: Option<String>,
) -> cordon_audit::NewRecord {
    let mut p = Map::new();
    let (action, rule) = match refusal {
        Refusal::File { path, mode } => {
            p.insert("path".into(), path.clone().into());
            let action = match *mode {
                "read" | "write" | "exec" => {
                    p.insert("mode".into(), (*mode).into());
                    "file.open"
                }
                how => {
                    p.insert("how".into(), how.into());
                    "file.change"
                }
            };
            let read_like = matches!(*mode, "read" | "exec");
            (
                action,
                file_rule(plan, path, if read_like { "read" } else { "write" }),
            )
        }
        Refusal::Abstract { name } => {
            let name = name.strip_prefix(b"\0").unwrap_or(name);
            p.insert(
                "abstract".into(),
                String::from_utf8_lossy(name).into_owned().into(),
            );
            ("unix.connect", "contain:unix-abstract")
        }
        Refusal::Process { target_pid, how } => {
            p.insert("target_pid".into(), (*target_pid).into());
            p.insert("target_exe".into(), target_exe.into());
            p.insert("how".into(), (*how).into());
            ("process.access", "contain:process")
        }
        Refusal::Mount { path, blocker } => {
            p.insert("path".into(), path.clone().into());
            p.insert("blocker".into(), blocker.clone().into());
            ("mount", "contain:mount")
        }
        Refusal::Other(blocker) => {
            p.insert("blocker".into(), blocker.clone().into());
            ("contain.other", "contain:landlock")
        }
    };
    p.insert("landlock_domain".into(), format!("{domain:x}").into());
    refused(
        agent,
        cgroup_id,
        (action, p, rule),
        "host containment refused it (Landlock)".into(),
        policy_version,
    )
}

/// The fields every containment refusal record has.
fn refused(
    agent: Option<&AgentPath>,
    cgroup_id: Option<u64>,
    (action, params, rule): (&str, Map<String, Value>, &str),
    reason: String,
    policy_version: Option<String>,
) -> cordon_audit::NewRecord {
    cordon_audit::NewRecord {
        agent: agent.map(|a| a.agent().to_string()),
        instance: agent.map(|a| a.instance().to_string()),
        chain: agent.map(AgentPath::chain_display),
        cgroup_id,
        action: Some(action.to_string()),
        params,
        decision: Some(cordon_audit::Decision::Deny),
        rule: Some(rule.to_string()),
        reason: Some(reason),
        policy_version,
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::ContainRefused)
    }
}

/// ptrace_may_access modes (include/linux/ptrace.h).
const PTRACE_MODE_ATTACH: u32 = 0x02;

pub fn record(
    ev: &ContainEvent,
    agent: Option<&AgentPath>,
    plan: Option<&ContainPlan>,
    extra: Enrichment,
    policy_version: Option<String>,
) -> cordon_audit::NewRecord {
    let mut rec = refused(
        agent,
        Some(ev.cgroup_id),
        describe(&ev.kind, plan, extra.target_exe),
        format!(
            "host containment refused it ({})",
            nix::errno::Errno::from_raw(ev.errno)
        ),
        policy_version,
    );
    rec.pid = Some(ev.pid);
    rec.uid = Some(ev.uid);
    rec.exe = extra.exe;
    rec
}

/// Action name, params and rule id of one refusal.
pub fn describe(
    kind: &ContainEventKind,
    plan: Option<&ContainPlan>,
    target_exe: Option<String>,
) -> (&'static str, Map<String, Value>, &'static str) {
    let mut p = Map::new();
    match kind {
        ContainEventKind::FileOpen { path, flags } => {
            let mode = access_mode(*flags);
            p.insert("path".into(), path.clone().into());
            p.insert("mode".into(), mode.into());
            let rule = file_rule(plan, path, mode);
            ("file.open", p, rule)
        }
        ContainEventKind::UnixConnect { addr } => {
            let rule = match addr {
                UnixAddr::Pathname(path) => {
                    p.insert("path".into(), path.clone().into());
                    "contain:unix"
                }
                UnixAddr::Abstract(name) => {
                    p.insert(
                        "abstract".into(),
                        String::from_utf8_lossy(name).into_owned().into(),
                    );
                    "contain:unix-abstract"
                }
                UnixAddr::Unknown => "contain:unix",
            };
            ("unix.connect", p, rule)
        }
        ContainEventKind::Ptrace { target_pid, mode } => {
            p.insert("target_pid".into(), (*target_pid).into());
            p.insert("target_exe".into(), target_exe.into());
            let how = if mode & PTRACE_MODE_ATTACH != 0 {
                "ptrace"
            } else {
                "read"
            };
            p.insert("how".into(), how.into());
            ("process.access", p, "contain:process")
        }
        ContainEventKind::Signal { target_pid, signal } => {
            p.insert("target_pid".into(), (*target_pid).into());
            p.insert("target_exe".into(), target_exe.into());
            p.insert("how".into(), "signal".into());
            p.insert("signal".into(), (*signal).into());
            ("process.access", p, "contain:process")
        }
    }
}

fn access_mode(flags: u32) -> &'static str {
    match flags & libc::O_ACCMODE as u32 {
        x if x == libc::O_WRONLY as u32 => "write",
        x if x == libc::O_RDWR as u32 => "read-write",
        _ => "read",
    }
}

/// A deny rule of the kernel list names itself; anything else was refused
/// by Landlock's allowlists.
fn file_rule(plan: Option<&ContainPlan>, path: &str, mode: &str) -> &'static str {
    match plan.and_then(|p| p.rule_for(std::path::Path::new(path))) {
        Some(r) if r.deny => r.origin.rule_id(),
        _ if mode == "read" => "contain:read",
        _ => "contain:write",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contain::plan::{FileOrigin, FileRule, LandlockSpec};

    fn plan() -> ContainPlan {
        ContainPlan {
            landlock: LandlockSpec::default(),
            files: vec![FileRule {
                path: "/home/a/.aws".into(),
                deny: true,
                origin: FileOrigin::Credentials,
            }],
            unix_allow: vec![],
            cwd_writable: true,
        }
    }

    #[test]
    fn a_denied_credential_read_names_the_credentials_rule() {
        let kind = ContainEventKind::FileOpen {
            path: "/home/a/.aws/credentials".into(),
            flags: libc::O_RDONLY as u32,
        };
        let (action, params, rule) = describe(&kind, Some(&plan()), None);
        assert_eq!(action, "file.open");
        assert_eq!(params["mode"], "read");
        assert_eq!(rule, "contain:credentials");
    }

    #[test]
    fn a_write_outside_the_allowlist_is_landlocks_write_rule() {
        let kind = ContainEventKind::FileOpen {
            path: "/srv/x".into(),
            flags: (libc::O_WRONLY | libc::O_CREAT) as u32,
        };
        let (_, params, rule) = describe(&kind, Some(&plan()), None);
        assert_eq!(
            (params["mode"].as_str(), rule),
            (Some("write"), "contain:write")
        );
    }

    #[test]
    fn proc_reads_ptrace_and_signals_are_process_access() {
        let read = ContainEventKind::Ptrace {
            target_pid: 7,
            mode: 0x01 | 0x08,
        };
        let (action, p, _) = describe(&read, None, Some("/usr/bin/python3".into()));
        assert_eq!(
            (action, p["how"].as_str()),
            ("process.access", Some("read"))
        );
        assert_eq!(p["target_exe"], "/usr/bin/python3");
        let attach = ContainEventKind::Ptrace {
            target_pid: 7,
            mode: 0x02 | 0x08,
        };
        assert_eq!(describe(&attach, None, None).1["how"], "ptrace");
        let sig = ContainEventKind::Signal {
            target_pid: 7,
            signal: 15,
        };
        let (_, p, _) = describe(&sig, None, None);
        assert_eq!(
            (p["how"].as_str(), p["signal"].as_i64()),
            (Some("signal"), Some(15))
        );
    }

    #[test]
    fn abstract_and_pathname_sockets_are_told_apart() {
        let a = ContainEventKind::UnixConnect {
            addr: UnixAddr::Abstract(b"dbus-x".to_vec()),
        };
        let (_, p, rule) = describe(&a, None, None);
        assert_eq!(
            (p["abstract"].as_str(), rule),
            (Some("dbus-x"), "contain:unix-abstract")
        );
        let s = ContainEventKind::UnixConnect {
            addr: UnixAddr::Pathname("/run/docker.sock".into()),
        };
        assert_eq!(describe(&s, None, None).1["path"], "/run/docker.sock");
    }
}
