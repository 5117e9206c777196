//! Landlock's own denial records (ABI 7), as the kernel audit subsystem
//! sends them: `LANDLOCK_ACCESS` (what was refused, in which domain) and
//! `LANDLOCK_DOMAIN` (who created a domain, the first time it refuses
//! something). Pure parsing; `daemon/landlock_audit.rs` reads the socket.
//!
//! ```text
//! audit(1733356800.123:456): domain=1a2b3c4d5 blockers=fs.read_file path="/home/a/.aws/credentials" dev="vda" ino=42
//! audit(1733356800.123:457): domain=1a2b3c4d5 blockers=scope.signal opid=812 ocomm="python3"
//! audit(1733356800.123:456): domain=1a2b3c4d5 status=allocated mode=enforcing pid=700 uid=0 exe="/usr/bin/python3" comm="python3"
//! ```

pub const AUDIT_SYSCALL: u16 = 1300;
pub const AUDIT_LANDLOCK_ACCESS: u16 = 1423;
pub const AUDIT_LANDLOCK_DOMAIN: u16 = 1424;

/// One refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The audit event's serial: the SYSCALL record of the same event
    /// (which names the calling process) carries it too.
    pub serial: u64,
    pub domain: u64,
    pub blockers: Vec<String>,
    pub path: Option<Vec<u8>>,
    pub opid: Option<u32>,
}

/// Who made the system call an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    pub serial: u64,
    pub pid: u32,
    /// Its parent when it made the call: names the agent of a process that
    /// is gone when the record is read, if its parent was the launcher.
    pub ppid: Option<u32>,
    pub uid: Option<u32>,
    pub exe: Option<String>,
}

/// `audit(1733356800.123:456): ...` -> 456.
fn serial(text: &str) -> Option<u64> {
    let stamp = text.strip_prefix("audit(")?;
    let end = stamp.find(')')?;
    stamp[..end].rsplit(':').next()?.parse().ok()
}

pub fn parse_syscall(text: &str) -> Option<Syscall> {
    let f = fields(text);
    let exe = f.iter().find(|(k, _)| *k == "exe").map(|(_, v)| text_of(v));
    Some(Syscall {
        serial: serial(text)?,
        pid: number(text, "pid")?,
        ppid: number(text, "ppid"),
        uid: number(text, "uid"),
        exe,
    })
}

/// A domain's creator, logged with its first refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub domain: u64,
    pub pid: Option<u32>,
}

/// `key=value` fields after the `audit(...):` stamp; values are quoted
/// strings, hex-encoded bytes (when the kernel found them untrusted), or
/// bare words.
fn fields(text: &str) -> Vec<(&str, Vec<u8>)> {
    let body = match text.find("): ") {
        Some(i) => &text[i + 3..],
        None => text,
    };
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q.as_bytes()[..end].to_vec(), &q[end + 1..]),
                None => (q.as_bytes().to_vec(), ""),
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let word = &after[..end];
            (
                unhex(word).unwrap_or_else(|| word.as_bytes().to_vec()),
                &after[end..],
            )
        };
        out.push((key, value));
        rest = next.trim_start();
    }
    out
}

/// The kernel hex-encodes untrusted strings (spaces, quotes, NULs).
/// Only values that are all hex digits and of even length qualify.
fn unhex(word: &str) -> Option<Vec<u8>> {
    if word.is_empty()
        || !word.len().is_multiple_of(2)
        || !word.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    // Plain numbers (pids, inodes) are digits too; only the string-valued
    // keys are decoded by the callers that want bytes.
    hex::decode(word).ok()
}

fn text_of(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn number<T: std::str::FromStr>(raw: &str, key: &str) -> Option<T> {
    let body = raw.split_once("): ").map_or(raw, |(_, b)| b);
    body.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

pub fn parse_access(text: &str) -> Option<Access> {
    let domain = u64::from_str_radix(&number::<String>(text, "domain")?, 16).ok()?;
    let f = fields(text);
    let get = |k: &str| f.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
    Some(Access {
        serial: serial(text)?,
        domain,
        blockers: text_of(&get("blockers")?)
            .split(',')
            .map(str::to_string)
            .collect(),
        path: get("path").or_else(|| get("name")),
        opid: number(text, "opid"),
    })
}

pub fn parse_domain(text: &str) -> Option<Domain> {
    let domain = u64::from_str_radix(&number::<String>(text, "domain")?, 16).ok()?;
    Some(Domain {
        domain,
        pid: number(text, "pid"),
    })
}

/// What a refusal was, in audit-record terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    File {
        path: String,
        mode: &'static str,
    },
    Abstract {
        name: Vec<u8>,
    },
    Process {
        target_pid: Option<u32>,
        how: &'static str,
    },
    /// Mounting, unmounting, pivoting: reshaping the filesystem view.
    Mount {
        path: String,
        blocker: String,
    },
    Other(String),
}

pub fn classify(a: &Access) -> Refusal {
    let first = a.blockers.first().map(String::as_str).unwrap_or_default();
    match first {
        "ptrace" => Refusal::Process {
            target_pid: a.opid,
            how: "ptrace",
        },
        "scope.signal" => Refusal::Process {
            target_pid: a.opid,
            how: "signal",
        },
        "scope.abstract_unix_socket" => Refusal::Abstract {
            name: a.path.clone().unwrap_or_default(),
        },
        "fs.change_topology" => Refusal::Mount {
            path: a.path.as_deref().map(text_of).unwrap_or_default(),
            blocker: first.to_string(),
        },
        b if b.starts_with("fs.") => {
            let mode = match b {
                "fs.read_file" | "fs.read_dir" => "read",
                "fs.execute" => "exec",
                "fs.write_file" | "fs.truncate" | "fs.ioctl_dev" => "write",
                "fs.remove_file" | "fs.remove_dir" => "remove",
                "fs.refer" => "rename",
                _ => "create",
            };
            Refusal::File {
                path: a.path.as_deref().map(text_of).unwrap_or_default(),
                mode,
            }
        }
        other => Refusal::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_refusal_keeps_its_path_and_domain() {
        let a = parse_access(
            r#"audit(1733356800.123:456): domain=1a2b3c4d5 blockers=fs.read_file path="/home/a/.aws/credentials" dev="vda" ino=42"#,
        )
        .unwrap();
        assert_eq!(a.domain, 0x1a2b3c4d5);
        assert_eq!(
            classify(&a),
            Refusal::File {
                path: "/home/a/.aws/credentials".into(),
                mode: "read"
            }
        );
    }

    #[test]
    fn a_hex_encoded_path_is_decoded() {
        let a = parse_access(
            "audit(1.2:3): domain=5 blockers=fs.make_reg path=2F746D702F6120622E747874 dev=\"vda\" ino=1",
        )
        .unwrap();
        assert_eq!(
            classify(&a),
            Refusal::File {
                path: "/tmp/a b.txt".into(),
                mode: "create"
            }
        );
    }

    #[test]
    fn signals_ptrace_and_abstract_sockets_are_classified() {
        let s = parse_access(
            r#"audit(1.2:3): domain=ab blockers=scope.signal opid=812 ocomm="python3""#,
        )
        .unwrap();
        assert_eq!(
            classify(&s),
            Refusal::Process {
                target_pid: Some(812),
                how: "signal"
            }
        );
        let p = parse_access(r#"audit(1.2:3): domain=ab blockers=ptrace opid=9 ocomm="sleep""#)
            .unwrap();
        assert!(matches!(
            classify(&p),
            Refusal::Process { how: "ptrace", .. }
        ));
        let u = parse_access(
            "audit(1.2:3): domain=ab blockers=scope.abstract_unix_socket path=00636F72646F6E",
        )
        .unwrap();
        assert_eq!(
            classify(&u),
            Refusal::Abstract {
                name: b"\0cordon".to_vec()
            }
        );
    }

    #[test]
    fn a_syscall_record_names_the_caller_by_serial() {
        let s = parse_syscall(
            r#"audit(1796431405.743:3987): arch=c000003e syscall=257 success=no exit=-13 ppid=5374 pid=5377 auid=4294967295 uid=65534 gid=65534 comm="cat" exe="/usr/bin/cat" key=(null)"#,
        )
        .unwrap();
        assert_eq!(
            s,
            Syscall {
                serial: 3987,
                pid: 5377,
                ppid: Some(5374),
                uid: Some(65534),
                exe: Some("/usr/bin/cat".into())
            }
        );
    }

    #[test]
    fn a_domain_record_names_its_creator() {
        let d = parse_domain(
            r#"audit(1.2:3): domain=1a2b status=allocated mode=enforcing pid=700 uid=0 exe="/usr/bin/python3" comm="python3""#,
        )
        .unwrap();
        assert_eq!(
            d,
            Domain {
                domain: 0x1a2b,
                pid: Some(700)
            }
        );
    }
}
