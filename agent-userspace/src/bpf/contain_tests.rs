//! Pure tests of the containment API, and one privileged test that runs
//! the real programs on the running kernel (see `kernel_enforces_and_reports`).
use std::path::PathBuf;

use agent_common::{
    ADDR_ABSTRACT, ADDR_PATHNAME, ContainRawEvent, EVENT_FILE_OPEN, EVENT_SIGNAL,
    EVENT_UNIX_CONNECT, VERDICT_ALLOW, VERDICT_DENY,
};

use super::{
    contain::{ContainEventKind, FileRule, ProfileError, UnixAddr},
    contain_decode::{
        DecodeError, decode, file_entries, file_key_owner, file_key_parts, unix_keys,
    },
};

#[path = "contain_kernel.rs"]
mod kernel;
#[path = "unix_kernel.rs"]
mod unix_kernel;

fn rule(path: &str, subtree: bool, deny: bool) -> FileRule {
    FileRule {
        path: path.into(),
        subtree,
        deny,
    }
}

fn data_str(bits: u32, data: &[u8]) -> String {
    String::from_utf8_lossy(&data[8..bits as usize / 8]).into_owned()
}

#[test]
fn a_subtree_rule_is_the_exact_path_and_the_directory_prefix() {
    let e = file_entries(7, &[rule("/home/u/.aws", true, true)]).unwrap();
    let got: Vec<(String, u8)> = e.iter().map(|((b, d), v)| (data_str(*b, d), *v)).collect();
    assert_eq!(
        got,
        vec![
            ("/home/u/.aws\0".to_string(), VERDICT_DENY),
            ("/home/u/.aws/".to_string(), VERDICT_DENY)
        ]
    );
    for (bits, data) in e.keys() {
        assert_eq!(file_key_owner(data), 7);
        assert_eq!(&data[..8], &7u64.to_be_bytes());
        assert!(data[*bits as usize / 8..].iter().all(|&b| b == 0));
    }
}

#[test]
fn exact_rules_root_and_conflicts() {
    let e = file_entries(1, &[rule("/etc/shadow", false, true)]).unwrap();
    assert_eq!(e.len(), 1);
    let ((bits, data), _) = e.iter().next().unwrap();
    assert_eq!(data_str(*bits, data), "/etc/shadow\0");

    // "/" as a subtree must not become "//".
    let e = file_entries(1, &[rule("/", true, false)]).unwrap();
    let paths: Vec<String> = e.keys().map(|(b, d)| data_str(*b, d)).collect();
    assert_eq!(paths, vec!["/", "/\0"]);

    // The same key allowed and denied: deny wins, whatever the order.
    for rules in [
        vec![rule("/x", false, false), rule("/x", true, true)],
        vec![rule("/x", true, true), rule("/x", false, false)],
    ] {
        let e = file_entries(1, &rules).unwrap();
        assert_eq!(e[&file_key_parts(1, b"/x\0")], VERDICT_DENY);
    }
    let e = file_entries(1, &[rule("/x", true, false)]).unwrap();
    assert_eq!(e[&file_key_parts(1, b"/x/")], VERDICT_ALLOW);
}

#[test]
fn bad_rules_are_refused_before_anything_is_installed() {
    assert!(matches!(
        file_entries(1, &[rule("rel/path", false, true)]),
        Err(ProfileError::NotAbsolute(_))
    ));
    let long = format!("/{}", "a".repeat(247));
    assert!(matches!(
        file_entries(1, &[rule(&long, false, true)]),
        Err(ProfileError::TooLong { max: 247, .. })
    ));
    let fits = format!("/{}", "a".repeat(246));
    assert!(file_entries(1, &[rule(&fits, true, true)]).is_ok());
    let sock = PathBuf::from(format!("/{}", "s".repeat(108)));
    assert!(matches!(
        unix_keys(1, &[sock]),
        Err(ProfileError::TooLong { max: 108, .. })
    ));
    assert!(unix_keys(1, &[PathBuf::from("x.sock")]).is_err());
}

#[test]
fn unix_keys_are_zero_padded_exact_paths() {
    let k = unix_keys(9, &[PathBuf::from("/run/a.sock")]).unwrap();
    assert_eq!(k[0].cgroup_id, 9);
    assert_eq!(&k[0].path[..11], b"/run/a.sock");
    assert!(k[0].path[11..].iter().all(|&b| b == 0));
}

fn raw(kind: u32) -> ContainRawEvent {
    ContainRawEvent {
        cgroup_id: 42,
        kind,
        ret: -1,
        pid: 10,
        tid: 11,
        uid: 1000,
        arg: 0,
        target_pid: 0,
        addr_kind: 0,
        truncated: 0,
        data_len: 0,
        data: [0xaa; agent_common::EVENT_DATA],
        _pad: [0; 4],
    }
}

fn bytes(r: &ContainRawEvent) -> Vec<u8> {
    // SAFETY: a plain #[repr(C)] struct without implicit padding.
    unsafe {
        std::slice::from_raw_parts((r as *const ContainRawEvent).cast::<u8>(), size_of_val(r))
    }
    .to_vec()
}

#[test]
fn decodes_file_unix_and_signal_events() {
    let mut r = raw(EVENT_FILE_OPEN);
    r.arg = 0o100002;
    r.data[..8].copy_from_slice(b"/etc/x\0\xaa");
    r.data_len = 7;
    let ev = decode(&bytes(&r)).unwrap();
    assert_eq!(
        (ev.cgroup_id, ev.pid, ev.tid, ev.uid, ev.errno),
        (42, 10, 11, 1000, 1)
    );
    assert_eq!(
        ev.kind,
        ContainEventKind::FileOpen {
            path: "/etc/x".into(),
            flags: 0o100002
        }
    );
    r.truncated = 1;
    let ContainEventKind::FileOpen { path, .. } = decode(&bytes(&r)).unwrap().kind else {
        panic!()
    };
    assert_eq!(path, "/etc/x…");

    let mut r = raw(EVENT_UNIX_CONNECT);
    r.addr_kind = ADDR_ABSTRACT;
    r.data[..4].copy_from_slice(b"\0a\0b");
    r.data_len = 4;
    let addr = UnixAddr::Abstract(b"a\0b".to_vec());
    assert_eq!(
        decode(&bytes(&r)).unwrap().kind,
        ContainEventKind::UnixConnect { addr }
    );
    r.addr_kind = ADDR_PATHNAME;
    r.data[..6].copy_from_slice(b"/s.so\0");
    r.data_len = 108;
    let addr = UnixAddr::Pathname("/s.so".into());
    assert_eq!(
        decode(&bytes(&r)).unwrap().kind,
        ContainEventKind::UnixConnect { addr }
    );
    r.addr_kind = 0;
    let addr = UnixAddr::Unknown;
    assert_eq!(
        decode(&bytes(&r)).unwrap().kind,
        ContainEventKind::UnixConnect { addr }
    );

    let mut r = raw(EVENT_SIGNAL);
    r.target_pid = 77;
    r.arg = 9;
    let kind = ContainEventKind::Signal {
        target_pid: 77,
        signal: 9,
    };
    assert_eq!(decode(&bytes(&r)).unwrap().kind, kind);
}

#[test]
fn short_or_unknown_records_are_errors() {
    assert_eq!(decode(&[0; 10]), Err(DecodeError::Size(10, 560)));
    assert_eq!(decode(&bytes(&raw(99))), Err(DecodeError::Kind(99)));
}
