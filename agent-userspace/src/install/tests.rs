//! Install and uninstall into a scratch root, in process: what lands where,
//! with which modes, and that a purge takes it all away again.
use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use super::{
    InstallOptions, Report, install,
    layout::Layout,
    uninstall::{UninstallOptions, uninstall},
};

struct Scratch {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    binary: PathBuf,
    policies: PathBuf,
}

fn scratch() -> Scratch {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let binary = tmp.path().join("cordon-built");
    std::fs::write(&binary, b"\x7fELF pretend binary").unwrap();
    let policies = tmp.path().join("policies");
    std::fs::create_dir_all(policies.join("connectors")).unwrap();
    std::fs::write(
        policies.join("ops.toml"),
        "agents = [\"ops\"]\ndefault = \"deny\"\n",
    )
    .unwrap();
    Scratch {
        root,
        binary,
        policies,
        _tmp: tmp,
    }
}

fn opts(s: &Scratch) -> InstallOptions {
    InstallOptions {
        root: s.root.clone(),
        binary_source: s.binary.clone(),
        policies_from: Some(s.policies.clone()),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out
}

#[test]
fn install_lays_out_every_file_under_the_prefix_with_its_mode() {
    let s = scratch();
    let mut r = Report::default();
    install(&opts(&s), &mut r).unwrap();
    let l = Layout::new(&s.root);
    assert_eq!(mode(&l.state_dir()), 0o700);
    assert_eq!(mode(&l.binary()), 0o755);
    assert_eq!(mode(&l.unit_file()), 0o644);
    assert_eq!(mode(&l.config_file()), 0o644);
    assert_eq!(mode(&l.ca_dir().join("ca.key")), 0o600);
    assert!(l.ca_dir().join("ca.pem").is_file());
    assert!(l.policies().join("ops.toml").is_file());
    assert!(l.unit_dropin_dir().is_dir());
    assert_eq!(
        std::fs::read_to_string(l.sysusers_file())
            .unwrap()
            .lines()
            .last(),
        Some("g cordon - -")
    );
    assert_eq!(
        std::fs::read(l.binary()).unwrap(),
        std::fs::read(&s.binary).unwrap()
    );
    let all = r.lines.join("\n");
    assert!(
        all.contains("group cordon: not created (scratch root"),
        "{all}"
    );
    assert!(all.contains("service: not started"), "{all}");
}

#[test]
fn reinstall_keeps_operator_config_and_reports_unchanged() {
    let s = scratch();
    install(&opts(&s), &mut Report::default()).unwrap();
    let l = Layout::new(&s.root);
    std::fs::write(l.config_file(), "state_dir = \"/srv/cordon\"\n").unwrap();
    let ca_before = std::fs::read(l.ca_dir().join("ca.pem")).unwrap();
    let mut r = Report::default();
    install(&opts(&s), &mut r).unwrap();
    assert_eq!(
        std::fs::read_to_string(l.config_file()).unwrap(),
        "state_dir = \"/srv/cordon\"\n"
    );
    assert_eq!(std::fs::read(l.ca_dir().join("ca.pem")).unwrap(), ca_before);
    let all = r.lines.join("\n");
    assert!(all.contains("kept the existing file"), "{all}");
    assert!(
        all.contains("unit ") && all.contains(": unchanged"),
        "{all}"
    );
    assert!(all.contains("CA ") && all.contains(": present"), "{all}");
}

#[test]
fn broken_policy_is_refused_before_anything_is_copied() {
    let s = scratch();
    std::fs::write(
        s.policies.join("bad.toml"),
        "agents = [\"x\"]\ndefualt = \"deny\"\n",
    )
    .unwrap();
    let err = install(&opts(&s), &mut Report::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml"), "{err}");
    assert!(!Layout::new(&s.root).policies().exists());
}

#[test]
fn uninstall_purge_leaves_the_root_as_it_was() {
    let s = scratch();
    // Part of the target system before the install: must survive the purge.
    std::fs::create_dir_all(s.root.join("usr/local/bin")).unwrap();
    std::fs::write(s.root.join("usr/local/bin/other-tool"), "x").unwrap();
    let before = tree(&s.root);
    install(&opts(&s), &mut Report::default()).unwrap();
    let never =
        || -> anyhow::Result<()> { panic!("kernel cleanup must not run for a scratch root") };
    let u = UninstallOptions {
        root: s.root.clone(),
        purge: true,
    };
    uninstall(&u, &never, &mut Report::default()).unwrap();
    assert_eq!(tree(&s.root), before);
    let mut again = Report::default();
    uninstall(&u, &never, &mut again).unwrap();
    assert!(
        again.lines.iter().all(|l| !l.ends_with(": removed")),
        "second uninstall removed something: {:?}",
        again.lines
    );
}

#[test]
fn uninstall_without_purge_keeps_config_and_state() {
    let s = scratch();
    install(&opts(&s), &mut Report::default()).unwrap();
    let l = Layout::new(&s.root);
    let u = UninstallOptions {
        root: s.root.clone(),
        purge: false,
    };
    uninstall(&u, &|| Ok(()), &mut Report::default()).unwrap();
    assert!(!l.binary().exists() && !l.unit_file().exists());
    assert!(l.config_file().is_file());
    assert!(l.ca_dir().join("ca.key").is_file());
}
