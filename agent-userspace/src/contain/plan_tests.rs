use super::*;
use cordon_policy::ContainMode;

fn launch() -> Launch {
    Launch {
        home: "/home/alice".into(),
        homes: vec!["/root".into(), "/home/bob".into()],
        cwd: "/home/alice/proj".into(),
        tmp: "/tmp/cordon-1".into(),
    }
}

fn cordon() -> Protected {
    Protected {
        secret: vec!["/var/lib/cordon".into(), "/etc/cordon/cordon.toml".into()],
        read_only: vec!["/etc/cordon/policies".into()],
        public: vec!["/run/cordon".into()],
        control_socket: "/run/cordon/cordon.sock".into(),
    }
}

fn no_globs(_: &str) -> Vec<PathBuf> {
    Vec::new()
}

fn no_list(_: &Path) -> Vec<(PathBuf, crate::contain::carve::Kind)> {
    Vec::new()
}

fn pat(s: &str) -> PathPattern {
    PathPattern::parse(s).unwrap()
}

#[test]
fn the_default_reads_the_system_and_writes_only_cwd_tmp_and_devices() {
    let p = plan(
        &ContainPolicy::default(),
        &launch(),
        &cordon(),
        &no_globs,
        &no_list,
    )
    .unwrap();
    // "/" holds denied paths, so it is carved (nothing listed here).
    assert_eq!(p.landlock.read_parents[0], PathBuf::from("/"));
    assert_eq!(p.landlock.exec, vec![PathBuf::from("/")]);
    assert!(p.landlock.write.contains(&"/home/alice/proj".into()));
    assert!(p.landlock.write.contains(&"/tmp/cordon-1".into()));
    assert!(p.landlock.write.contains(&"/dev/null".into()));
    assert!(!p.landlock.write.contains(&"/tmp".into()));
}

#[test]
fn the_users_credentials_and_cordons_secrets_are_denied() {
    let p = plan(
        &ContainPolicy::default(),
        &launch(),
        &cordon(),
        &no_globs,
        &no_list,
    )
    .unwrap();
    let rule = |path: &str| p.rule_for(Path::new(path)).map(|r| (r.deny, r.origin));
    assert_eq!(
        rule("/home/alice/.aws/credentials"),
        Some((true, FileOrigin::Credentials))
    );
    assert_eq!(
        rule("/home/alice/.ssh/id_ed25519"),
        Some((true, FileOrigin::Credentials))
    );
    assert_eq!(
        rule("/var/lib/cordon/vault.key"),
        Some((true, FileOrigin::Cordon))
    );
    assert_eq!(rule("/home/alice/proj/main.py"), None);
    // Other accounts' credentials too, not only the agent user's own.
    assert_eq!(
        rule("/home/bob/.netrc"),
        Some((true, FileOrigin::Credentials))
    );
    assert_eq!(
        rule("/root/.ssh/id_rsa"),
        Some((true, FileOrigin::Credentials))
    );
    // The run directory stays readable: it holds the agents' CA bundle.
    assert_eq!(
        rule("/run/cordon/agent-ca-bundle.pem"),
        Some((false, FileOrigin::Cordon))
    );
}

#[test]
fn a_working_directory_holding_credentials_is_writable_only_around_them() {
    let mut l = launch();
    l.cwd = "/home/alice".into();
    let list = |p: &Path| -> Vec<(PathBuf, crate::contain::carve::Kind)> {
        use crate::contain::carve::Kind;
        match p.to_str() {
            Some("/home/alice") => vec![
                ("/home/alice/.aws".into(), Kind::Dir),
                ("/home/alice/proj".into(), Kind::Dir),
            ],
            _ => Vec::new(),
        }
    };
    let p = plan(&ContainPolicy::default(), &l, &cordon(), &no_globs, &list).unwrap();
    // Moving ~/.aws/credentials into a readable place would need write
    // rights over ~/.aws: it gets none, and ~ itself none either.
    assert!(p.landlock.write.contains(&"/home/alice/proj".into()));
    assert!(
        !p.landlock
            .write
            .iter()
            .any(|w| w == Path::new("/home/alice") || w.starts_with("/home/alice/.aws"))
    );
    assert!(
        !p.landlock
            .read
            .iter()
            .any(|r| r.starts_with("/home/alice/.aws"))
    );
}

#[test]
fn a_read_entry_inside_a_denied_path_reopens_only_that_part() {
    let policy = ContainPolicy {
        read: Some(vec![
            pat("/"),
            pat("~/.aws/config"),
            pat("/var/lib/cordon/ca"),
        ]),
        ..ContainPolicy::default()
    };
    let p = plan(&policy, &launch(), &cordon(), &no_globs, &no_list).unwrap();
    let deny = |path: &str| p.rule_for(Path::new(path)).map(|r| r.deny);
    assert_eq!(deny("/home/alice/.aws/config"), Some(false));
    assert_eq!(deny("/home/alice/.aws/credentials"), Some(true));
    // Cordon's own secrets cannot be reopened by policy.
    assert_eq!(deny("/var/lib/cordon/ca/ca.key"), Some(true));
}

#[test]
fn globs_are_expanded_by_the_callers_function() {
    let policy = ContainPolicy {
        unix_sockets: vec![pat("/run/user/*/bus")],
        deny: vec![pat("~/keys/*.pem")],
        ..ContainPolicy::default()
    };
    let expand = |g: &str| match g {
        "/run/user/*/bus" => vec![PathBuf::from("/run/user/1000/bus")],
        "/home/alice/keys/*.pem" => vec![PathBuf::from("/home/alice/keys/a.pem")],
        _ => Vec::new(),
    };
    let p = plan(&policy, &launch(), &cordon(), &expand, &no_list).unwrap();
    assert!(p.unix_allow.contains(&"/run/user/1000/bus".into()));
    assert!(p.unix_allow.contains(&"/run/cordon/cordon.sock".into()));
    assert_eq!(
        p.rule_for(Path::new("/home/alice/keys/a.pem"))
            .map(|r| r.origin),
        Some(FileOrigin::PolicyDeny)
    );
}

#[test]
fn a_writable_path_over_cordons_files_is_refused() {
    let policy = ContainPolicy {
        write: vec![pat("/etc")],
        ..ContainPolicy::default()
    };
    let e = plan(&policy, &launch(), &cordon(), &no_globs, &no_list).unwrap_err();
    assert!(matches!(e, PlanError::WritesCordon { .. }), "{e}");
}

#[test]
fn a_working_directory_over_cordons_files_is_readable_but_not_writable() {
    let mut l = launch();
    l.cwd = "/".into();
    let p = plan(
        &ContainPolicy::default(),
        &l,
        &cordon(),
        &no_globs,
        &no_list,
    )
    .unwrap();
    assert!(!p.cwd_writable);
    assert!(!p.landlock.write.contains(&"/".into()));
    assert!(
        plan(
            &ContainPolicy::default(),
            &launch(),
            &cordon(),
            &no_globs,
            &no_list
        )
        .unwrap()
        .cwd_writable
    );
}

#[test]
fn containment_off_is_the_callers_decision_not_the_plans() {
    // The plan is the same whatever the mode: the daemon decides not to
    // apply it, and records that it did not.
    let policy = ContainPolicy {
        mode: ContainMode::Off,
        ..ContainPolicy::default()
    };
    assert!(plan(&policy, &launch(), &cordon(), &no_globs, &no_list).is_ok());
}
