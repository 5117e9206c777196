//! From an agent's `contain` policy and its launch (user, working directory,
//! private temp dir) to what each layer enforces: the Landlock allowlists
//! `cordon run` applies to itself before exec, and the kernel deny list the
//! daemon installs for the instance cgroup. Pure: globs are expanded by a
//! function the caller passes in, so this is tested without a filesystem.
use std::path::{Path, PathBuf};

use cordon_policy::{ContainPolicy, PathPattern};
use serde::{Deserialize, Serialize};

use super::{
    carve::{Lister, carve},
    defaults::{CREDENTIAL_PATHS, WRITABLE_DEVICES},
};

/// Where the agent starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The agent user's home: what `~` means in the policy.
    pub home: PathBuf,
    /// Every home whose credentials are kept from the agent: its own and
    /// the other accounts' on the host (an agent running as `nobody` must
    /// not read a world-readable `~/.netrc` of a real user either).
    pub homes: Vec<PathBuf>,
    pub cwd: PathBuf,
    /// The instance's private temporary directory.
    pub tmp: PathBuf,
}

/// Cordon's own files, out of every agent's reach whatever its uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// Never opened by an agent: state (vault key and database, CA key,
    /// audit store, kill marks), config, pinned BPF objects.
    pub secret: Vec<PathBuf>,
    /// Readable but never writable: the policy directory.
    pub read_only: Vec<PathBuf>,
    /// Readable even when inside a secret directory: the run directory
    /// (the agents' CA bundle). Never writable.
    pub public: Vec<PathBuf>,
    /// The control socket: sub-agents are launched through it.
    pub control_socket: PathBuf,
}

/// What `cordon run` hands to Landlock. Everything not listed is refused.
/// The deny list is already carved out (see `carve.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockSpec {
    /// Directories on the way to a denied path: listable only.
    pub read_parents: Vec<PathBuf>,
    /// Readable with everything beneath.
    pub read: Vec<PathBuf>,
    /// Executable with everything beneath.
    pub exec: Vec<PathBuf>,
    /// Writable (create, remove, rename, truncate) with everything beneath.
    pub write: Vec<PathBuf>,
}

/// Why a kernel file rule exists; names the rule in audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileOrigin {
    Credentials,
    Cordon,
    PolicyDeny,
    PolicyRead,
}

impl FileOrigin {
    pub fn rule_id(self) -> &'static str {
        match self {
            FileOrigin::Credentials => "contain:credentials",
            FileOrigin::Cordon => "contain:cordon",
            FileOrigin::PolicyDeny => "contain:deny",
            FileOrigin::PolicyRead => "contain:read",
        }
    }
}

/// A path and everything below it, denied or (inside a denied one) allowed.
/// The longest matching rule decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRule {
    pub path: PathBuf,
    pub deny: bool,
    pub origin: FileOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainPlan {
    pub landlock: LandlockSpec,
    pub files: Vec<FileRule>,
    pub unix_allow: Vec<PathBuf>,
    /// False when the working directory holds Cordon's files.
    pub cwd_writable: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "`contain.write` entry {} would make Cordon's {} writable to the agent; narrow it",
        path.display(), protected.display()
    )]
    WritesCordon { path: PathBuf, protected: PathBuf },
}

impl ContainPlan {
    /// The rule that decides `path`, if any: longest prefix, as the kernel.
    pub fn rule_for(&self, path: &Path) -> Option<&FileRule> {
        self.files
            .iter()
            .filter(|r| path.starts_with(&r.path))
            .max_by_key(|r| r.path.as_os_str().len())
    }
}

/// Builds the plan. `expand` lists the existing paths a glob names, `list`
/// a directory's entries (for carving the deny list out of the grants).
pub fn plan(
    policy: &ContainPolicy,
    launch: &Launch,
    cordon: &Protected,
    expand: &dyn Fn(&str) -> Vec<PathBuf>,
    list: Lister<'_>,
) -> Result<ContainPlan, PlanError> {
    let resolve = |p: &PathPattern| -> Vec<PathBuf> { resolve(p.as_str(), &launch.home, expand) };
    let all = |list: &[PathPattern]| -> Vec<PathBuf> { list.iter().flat_map(resolve).collect() };

    let mut read = match &policy.read {
        Some(list) => all(list),
        None => vec![PathBuf::from("/")],
    };
    let exec = match &policy.exec {
        Some(list) => all(list),
        None => read.clone(),
    };
    let mut write = vec![launch.tmp.clone()];
    write.extend(WRITABLE_DEVICES.iter().map(PathBuf::from));
    write.extend(all(&policy.write));
    check_writes(&write, cordon)?;
    // A working directory that holds Cordon's files (`/`, say) stays
    // readable but is not made writable: narrower, never wider.
    let cwd_writable = check_writes(std::slice::from_ref(&launch.cwd), cordon).is_ok();
    if cwd_writable {
        write.insert(0, launch.cwd.clone());
    }

    let mut files = Vec::new();
    let mut deny = |path: PathBuf, origin| {
        files.push(FileRule {
            path,
            deny: true,
            origin,
        })
    };
    let mut homes = vec![launch.home.clone()];
    homes.extend(launch.homes.iter().cloned());
    homes.sort();
    homes.dedup();
    for home in &homes {
        for rel in CREDENTIAL_PATHS {
            for p in self::resolve(&format!("~/{rel}"), home, expand) {
                deny(p, FileOrigin::Credentials);
            }
        }
    }
    for p in all(&policy.deny) {
        deny(p, FileOrigin::PolicyDeny);
    }
    for p in &cordon.secret {
        deny(p.clone(), FileOrigin::Cordon);
    }
    // A `read` entry inside a denied path reopens it (`~/.aws/config`), but
    // never inside Cordon's own secrets.
    let reopen: Vec<PathBuf> = read
        .iter()
        .filter(|r| files.iter().any(|d| r.starts_with(&d.path)))
        .filter(|r| !cordon.secret.iter().any(|s| r.starts_with(s)))
        .cloned()
        .collect();
    files.extend(reopen.into_iter().map(|path| FileRule {
        path,
        deny: false,
        origin: FileOrigin::PolicyRead,
    }));
    files.extend(cordon.public.iter().map(|p| FileRule {
        path: p.clone(),
        deny: false,
        origin: FileOrigin::Cordon,
    }));
    files.dedup();

    let mut unix_allow = all(&policy.unix_sockets);
    unix_allow.push(cordon.control_socket.clone());
    unix_allow.sort();
    unix_allow.dedup();

    // What the agent writes it must read back.
    read.extend(write.iter().cloned());
    let denied: Vec<PathBuf> = files
        .iter()
        .filter(|r| r.deny)
        .map(|r| r.path.clone())
        .collect();
    let readable = carve(&read, &denied, list);
    let mut read_whole = readable.whole;
    // Allow rules (reopened paths, Cordon's run directory) beat the deny
    // they sit in, as the longest prefix does in the kernel list.
    read_whole.extend(files.iter().filter(|r| !r.deny).map(|r| r.path.clone()));
    let write = carve(&write, &denied, list).whole;
    Ok(ContainPlan {
        landlock: LandlockSpec {
            read_parents: readable.parents,
            read: read_whole,
            exec,
            write,
        },
        files,
        unix_allow,
        cwd_writable,
    })
}

/// `~` to the home, globs to what exists now (nothing when nothing matches).
fn resolve(pattern: &str, home: &Path, expand: &dyn Fn(&str) -> Vec<PathBuf>) -> Vec<PathBuf> {
    let text = match pattern.strip_prefix('~') {
        Some(rest) => format!("{}{rest}", home.display()),
        None => pattern.to_string(),
    };
    if text.contains(['*', '?', '[']) {
        expand(&text)
    } else {
        vec![PathBuf::from(text)]
    }
}

/// Landlock cannot carve a read-only hole out of a writable tree, so a
/// writable path that contains (or lies in) Cordon's files is refused.
fn check_writes(write: &[PathBuf], cordon: &Protected) -> Result<(), PlanError> {
    let protected = cordon
        .secret
        .iter()
        .chain(&cordon.read_only)
        .chain(&cordon.public);
    for guarded in protected {
        for w in write {
            if guarded.starts_with(w) || w.starts_with(guarded) {
                return Err(PlanError::WritesCordon {
                    path: w.clone(),
                    protected: guarded.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
