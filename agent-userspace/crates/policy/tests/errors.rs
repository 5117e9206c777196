//! Broken files are refused with `file:line:col`, and a reload keeps the
//! set in force.

mod common;

use common::*;
use cordon_policy::{PolicyError, PolicySet};

fn load_error(files: &[(&str, &str)]) -> String {
    let dir = dir_with(files);
    PolicySet::load_dir(dir.path()).unwrap_err().to_string()
}

#[test]
fn errors_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        // Unknown field.
        (
            "agents = [\"a\"]\n[[rule]]\naction = \"x\"\ndecison = \"allow\"\n",
            "bad.toml:4:1: unknown field `decison`",
        ),
        // Bad enum value.
        (
            "agents = [\"a\"]\n[[rule]]\naction = \"x\"\ndecision = \"alow\"\n",
            "bad.toml:4:12: unknown variant `alow`",
        ),
        // Bad TOML.
        ("agents = [\"a\"\n", "bad.toml:1:"),
        // Bad duration.
        (
            "agents = [\"a\"]\n[[rule]]\naction = \"x\"\ndecision = \"approve\"\napproval_timeout = \"5 minutes\"\n",
            "bad.toml:5:20: `approval_timeout`",
        ),
        // Bad cidr and port.
        (
            "agents = [\"a\"]\n[[rule]]\naction = \"tcp.connect\"\ndecision = \"allow\"\ncidrs = [\"10.0.0.0/33\"]\n",
            "bad.toml:5:10: `10.0.0.0/33`: not a CIDR",
        ),
        (
            "agents = [\"a\"]\n[[rule]]\naction = \"tcp.connect\"\ndecision = \"allow\"\nports = [70000]\n",
            "bad.toml:5:10: `70000`: ports are 1-65535",
        ),
        // Bad schedule.
        (
            "agents = [\"a\"]\n[[schedule]]\nname = \"x\"\nwindow = \"Mon-Fri 09:00-18:00 Mars/Base\"\n",
            "bad.toml:4:10: schedule window `Mars/Base`",
        ),
        // Unknown envelope field.
        (
            "agents = [\"a\"]\n[envelope]\nmax_cost = 1.0\n",
            "bad.toml:3:1: unknown field `max_cost`",
        ),
        // No agents in a top-level file.
        ("default = \"deny\"\n", "bad.toml:1:1: missing `agents`"),
        // extends outside the directory.
        (
            "agents = [\"a\"]\nextends = [\"../x.toml\"]\n",
            "bad.toml:2:12: extends `../x.toml`",
        ),
    ];
    for (text, want) in cases {
        let got = load_error(&[("bad.toml", text)]);
        assert!(
            got.starts_with(want),
            "got `{got}`, want it to start with `{want}`"
        );
    }
}

#[test]
fn cel_errors_name_file_line_and_rule() {
    let text = "agents = [\"a\"]\n\n[[rule]]\nid = \"merge\"\naction = \"github.pr.merge\"\nwhen = 'params.base == '\ndecision = \"approve\"\n";
    let dir = dir_with(&[("deploy.toml", text)]);
    let err = PolicySet::load_dir(dir.path()).unwrap_err();
    match &err {
        PolicyError::Cel {
            file, line, rule, ..
        } => {
            assert_eq!(
                (file.as_str(), *line, rule.as_str()),
                ("deploy.toml", 6, "merge")
            );
        }
        other => panic!("expected a CEL error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("deploy.toml:6:8: rule `merge`: `when` does not compile"),
        "{err}"
    );

    // Without an id the rule is named `<file>:<n>`; an unknown variable is
    // caught at load too.
    let text = "agents = [\"a\"]\n[[rule]]\naction = \"x\"\ndecision = \"allow\"\n[[rule]]\naction = \"y\"\nwhen = 'param.x == 1'\ndecision = \"deny\"\n";
    let err = load_error(&[("a.toml", text)]);
    assert!(err.starts_with("a.toml:7:8: rule `a.toml:2`"), "{err}");
    assert!(err.contains("unknown variable `param`"), "{err}");
}

#[test]
fn extends_errors_name_the_file() {
    let err = load_error(&[(
        "a.toml",
        "agents = [\"a\"]\nextends = [\"base/missing.toml\"]\n",
    )]);
    assert!(err.contains("base/missing.toml: cannot read"), "{err}");
    let err = load_error(&[
        ("a.toml", "agents = [\"a\"]\nextends = [\"b.toml\"]\n"),
        ("b.toml", "agents = [\"b\"]\nextends = [\"a.toml\"]\n"),
    ]);
    assert!(
        err.contains("`agents` has no effect") || err.contains("cycle"),
        "{err}"
    );
    let err = load_error(&[
        ("a.toml", "agents = [\"a\"]\nextends = [\"base/x.toml\"]\n"),
        ("base/x.toml", "extends = [\"y.toml\"]\n"),
        ("base/y.toml", "extends = [\"x.toml\"]\n"),
    ]);
    assert!(err.contains("cycle"), "{err}");
    let err = load_error(&[
        ("a.toml", "agents = [\"a\"]\nextends = [\"base/x.toml\"]\n"),
        ("base/x.toml", "agents = [\"z\"]\n"),
    ]);
    assert!(
        err.starts_with("base/x.toml:1:10: `agents` has no effect"),
        "{err}"
    );
}

#[test]
fn subdirectories_are_not_loaded_on_their_own() {
    let set = set_with(&[
        ("a.toml", "agents = [\"a\"]\ndefault = \"allow\"\n"),
        ("connectors/github.toml", "this is not a policy file"),
        ("base/unused.toml", "agents = [\"a\"]\ndefault = \"deny\"\n"),
    ]);
    assert_eq!(set.files(), vec!["a.toml"]);
}
