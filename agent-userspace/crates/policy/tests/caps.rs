//! `[caps]`: per-agent overrides of the daemon's caps, merged tightest-wins
//! across files and over a delegation chain; bad values name file:line.

mod common;

use common::*;
use cordon_policy::{CapOverrides, PolicySet};

fn chain(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_file_sets_caps_for_the_agents_it_names_and_others_keep_the_defaults() {
    let set = set_with(&[
        (
            "flood.toml",
            "agents = [\"flood\"]\n[caps]\nconnections = 20\nconnections_per_second = 5\npending_approvals = 1\nrequest_bytes_in_flight = 4096\ndns_queries_per_second = 7\n",
        ),
        ("calm.toml", "agents = [\"calm\"]\n"),
    ]);
    assert_eq!(
        set.caps_for(&chain(&["flood"])),
        CapOverrides {
            connections: Some(20),
            connections_per_second: Some(5),
            pending_approvals: Some(1),
            request_bytes_in_flight: Some(4096),
            dns_queries_per_second: Some(7),
        }
    );
    assert_eq!(set.caps_for(&chain(&["calm"])), CapOverrides::default());
    assert_eq!(
        set.caps_for(&chain(&["nobody-names-me"])),
        CapOverrides::default()
    );
}

#[test]
fn the_tightest_value_wins_across_files_extends_and_the_chain() {
    let set = set_with(&[
        ("base/caps.toml", "[caps]\nconnections = 10\n"),
        (
            "a.toml",
            "agents = [\"orch\", \"sub\"]\nextends = [\"base/caps.toml\"]\n[caps]\nconnections = 50\ndns_queries_per_second = 9\n",
        ),
        (
            "b.toml",
            "agents = [\"sub\"]\n[caps]\ndns_queries_per_second = 3\n",
        ),
    ]);
    let orch = set.caps_for(&chain(&["orch"]));
    assert_eq!(orch.connections, Some(10), "extended file is tighter");
    assert_eq!(orch.dns_queries_per_second, Some(9));
    let sub = set.caps_for(&chain(&["orch", "sub"]));
    assert_eq!(sub.dns_queries_per_second, Some(3));
}

#[test]
fn a_bad_cap_names_the_file_line_and_field() {
    for (text, want) in [
        (
            "agents = [\"a\"]\n[caps]\nconnections = 0\n",
            "bad.toml:3:15: caps `connections`",
        ),
        (
            "agents = [\"a\"]\n[caps]\nconnections = -4\n",
            "bad.toml:3:15: caps `connections`",
        ),
        (
            "agents = [\"a\"]\n[caps]\nrequest_bytes_in_flight = 0\n",
            "bad.toml:3:27: caps `request_bytes_in_flight`",
        ),
        (
            "agents = [\"a\"]\n[caps]\nconections = 3\n",
            "bad.toml:3:1: unknown field `conections`",
        ),
    ] {
        let dir = dir_with(&[("bad.toml", text)]);
        let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
}
