//! Bad connector files are refused at load, naming the file and the line.

use cordon_connectors::{ConnectorError, ConnectorSet, Problem, TemplateError};
use std::path::PathBuf;

const HEADER: &str = "name = \"demo\"\nhosts = [\"api.demo.test\"]\n";

/// Load one file and return (file, line, problem).
fn load_err(text: &str) -> (PathBuf, usize, Problem) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.toml");
    std::fs::write(&file, text).unwrap();
    match ConnectorSet::load_dir(dir.path()) {
        Err(ConnectorError::Invalid {
            file: f,
            line,
            problem,
            ..
        }) => {
            assert_eq!(f, file);
            (f, line, problem)
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn bad_path_template_names_its_line() {
    let text = format!(
        "{HEADER}\n[[route]]\nmethod = \"GET\"\npath = \"/a/{{x}}.git\"\naction = \"demo.read\"\n"
    );
    let (_, line, problem) = load_err(&text);
    assert_eq!(line, 6);
    assert!(
        matches!(problem, Problem::Template(TemplateError::MixedSegment(_))),
        "{problem:?}"
    );
}

#[test]
fn unknown_field_names_its_line() {
    let text =
        format!("{HEADER}\n[[route]]\nmethod = \"GET\"\npath = \"/a\"\nactoin = \"demo.read\"\n");
    let (_, line, problem) = load_err(&text);
    assert_eq!(line, 7);
    assert!(
        matches!(&problem, Problem::Syntax(m) if m.contains("actoin")),
        "{problem:?}"
    );
}

#[test]
fn bad_param_source_names_its_line() {
    let text = format!(
        "{HEADER}\n[[route]]\nmethod = \"POST\"\npath = \"/a\"\naction = \"demo.create\"\nparams = {{ amount = \"body:amount\" }}\n"
    );
    let (_, line, problem) = load_err(&text);
    assert_eq!(line, 8);
    assert!(
        matches!(problem, Problem::ParamSource { .. }),
        "{problem:?}"
    );
}

#[test]
fn path_source_must_name_a_capture() {
    let text = format!(
        "{HEADER}\n[[route]]\nmethod = \"GET\"\npath = \"/a/{{id}}\"\naction = \"demo.read\"\nparams = {{ n = \"path:number\" }}\n"
    );
    let (_, line, problem) = load_err(&text);
    assert_eq!(line, 8);
    assert!(
        matches!(problem, Problem::UnknownCapture { .. }),
        "{problem:?}"
    );
}

#[test]
fn duplicate_route_names_both_lines() {
    let route = "[[route]]\nmethod = \"DELETE\"\npath = \"/r/{a}\"\naction = \"demo.delete\"\n";
    let other = "[[route]]\nmethod = \"DELETE\"\npath = \"/r/{b}\"\naction = \"demo.remove\"\n";
    let text = format!("{HEADER}\n{route}\n{other}");
    let (_, line, problem) = load_err(&text);
    assert_eq!(line, 9);
    assert_eq!(
        problem,
        Problem::DuplicateRoute {
            method: "DELETE".into(),
            path: "/r/{b}".into(),
            first_line: 4
        }
    );
}

#[test]
fn toml_syntax_error_names_its_line() {
    let (_, line, problem) = load_err(&format!("{HEADER}\n[[route]\n"));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::Syntax(_)));
}

#[test]
fn credential_scheme_fields_are_checked() {
    let text = format!("{HEADER}\n[credential]\nscheme = \"header\"\n");
    let (_, line, problem) = load_err(&text);
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::Credential(_)), "{problem:?}");
    let text = format!("{HEADER}\n[credential]\nscheme = \"bearer\"\nparam = \"key\"\n");
    assert!(matches!(load_err(&text).2, Problem::Credential(_)));
}

#[test]
fn reserved_and_malformed_action_names_are_refused() {
    for action in ["http.request", "Demo.Read", "demo", "demo..read"] {
        let text = format!(
            "{HEADER}\n[[route]]\nmethod = \"GET\"\npath = \"/a\"\naction = \"{action}\"\n"
        );
        let (_, line, problem) = load_err(&text);
        assert_eq!(line, 7, "{action}");
        assert!(
            matches!(problem, Problem::BadName { what: "action", .. }),
            "{action}: {problem:?}"
        );
    }
}

#[test]
fn route_hosts_must_belong_to_the_connector() {
    let text = format!(
        "{HEADER}\n[[route]]\nhosts = [\"evil.test\"]\nmethod = \"GET\"\npath = \"/a\"\naction = \"demo.read\"\n"
    );
    assert!(matches!(
        load_err(&text).2,
        Problem::RouteHostNotInConnector { .. }
    ));
}

#[test]
fn enrich_must_use_known_params_and_not_shadow_one() {
    let base = "[[route]]\nmethod = \"PUT\"\npath = \"/p/{n}/merge\"\naction = \"demo.merge\"\n";
    let text = format!(
        "{HEADER}\n{base}enrich = {{ base = {{ get = \"/p/{{number}}\", json = \"base.ref\" }} }}\n"
    );
    assert!(matches!(load_err(&text).2, Problem::Enrich { .. }));
    let text =
        format!("{HEADER}\n{base}enrich = {{ n = {{ get = \"/p/{{n}}\", json = \"n\" }} }}\n");
    assert!(matches!(load_err(&text).2, Problem::Enrich { .. }));
}

#[test]
fn two_files_may_not_share_a_name_or_a_host() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), HEADER).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "name = \"other\"\nhosts = [\"API.demo.test\"]\n",
    )
    .unwrap();
    match ConnectorSet::load_dir(dir.path()) {
        Err(ConnectorError::Invalid {
            file,
            line: 2,
            problem: Problem::DuplicateHost { other, .. },
            ..
        }) => {
            assert!(file.ends_with("b.toml"));
            assert_eq!(other, "demo");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(
        dir.path().join("b.toml"),
        "name = \"demo\"\nhosts = [\"x.test\"]\n",
    )
    .unwrap();
    assert!(matches!(
        ConnectorSet::load_dir(dir.path()),
        Err(ConnectorError::Invalid {
            line: 1,
            problem: Problem::DuplicateConnector { .. },
            ..
        })
    ));
}

#[test]
fn error_message_shows_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("{HEADER}\n[[route]]\nmethod = \"get\"\npath = \"/a\"\naction = \"demo.read\"\n");
    std::fs::write(dir.path().join("demo.toml"), text).unwrap();
    let msg = ConnectorSet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("demo.toml:5:10: bad HTTP method \"get\""),
        "{msg}"
    );
}

#[test]
fn missing_directory_is_an_error() {
    assert!(matches!(
        ConnectorSet::load_dir(std::path::Path::new("/nonexistent/cordon/connectors")),
        Err(ConnectorError::ReadDir { .. })
    ));
}
