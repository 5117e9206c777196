use super::*;

fn kill(agent: &str) -> Mark {
    Mark::Kill(KillMark {
        scope: Scope::Agent(agent.into()),
        reason: "r".into(),
        by: "root".into(),
        at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    })
}

fn cut(agent: &str, connector: &str) -> Mark {
    Mark::ConnectorCut(ConnectorCut {
        agent: agent.into(),
        connector: connector.into(),
        reason: "r".into(),
        by: "root".into(),
        at: None,
    })
}

#[test]
fn marks_of_both_kinds_survive_reopening_and_deletes_stick() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kills.json");
    let marks = KillMarks::open(&path).unwrap();
    assert!(marks.list().is_empty());
    marks.put("bot", kill("bot")).unwrap();
    marks
        .put("connector:bot:github", cut("bot", "github"))
        .unwrap();
    marks.put("other", kill("other")).unwrap();
    marks.del("other").unwrap();
    let again = KillMarks::open(&path).unwrap();
    assert_eq!(
        again.list(),
        vec![
            ("bot".into(), kill("bot")),
            ("connector:bot:github".into(), cut("bot", "github")),
        ]
    );
    assert!(again.contains("bot") && !again.contains("other"));
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kills.json"]);
}

#[test]
fn a_file_of_untyped_marks_reads_as_kills_and_connector_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kills.json");
    let legacy = serde_json::json!({
        "bot": serde_json::to_string(&match kill("bot") { Mark::Kill(k) => k, _ => unreachable!() }).unwrap(),
        "connector:bot:github": r#"{"agent":"bot","connector":"github","reason":"r","by":"root"}"#,
    });
    std::fs::write(&path, legacy.to_string()).unwrap();
    let marks = KillMarks::open(&path).unwrap();
    assert_eq!(
        marks.list(),
        vec![
            ("bot".into(), kill("bot")),
            ("connector:bot:github".into(), cut("bot", "github")),
        ]
    );
}

#[test]
fn a_broken_file_is_an_error_naming_it_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kills.json");
    std::fs::write(&path, "{\n  \"bot\": \n").unwrap();
    let e = KillMarks::open(&path).err().unwrap().to_string();
    assert!(e.contains("kills.json") && e.contains("line 3"), "{e}");
    // And it is left as it was, for the operator to look at.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\n  \"bot\": \n");
    std::fs::write(&path, r#"{"bot": "not a mark"}"#).unwrap();
    let e = KillMarks::open(&path).err().unwrap().to_string();
    assert!(e.contains("the mark for bot"), "{e}");
}

#[test]
fn a_failed_write_keeps_the_mark_in_force_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone").join("kills.json");
    let marks = KillMarks::open(&path).unwrap();
    let e = marks.put("bot", kill("bot")).unwrap_err().to_string();
    assert!(e.contains("writing the kill marks"), "{e}");
    assert!(marks.contains("bot"));
}
