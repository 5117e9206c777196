//! Credential bindings as the daemon sees them through a loaded policy set.

use cordon_policy::{PolicySet, choose};
use serde_json::json;

fn set(files: &[(&str, &str)]) -> PolicySet {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    PolicySet::load_dir(dir.path()).unwrap()
}

const BOT: &str = r#"
agents = ["bot"]
[credentials]
stripe = "bot-stripe"

[[credentials.github]]
entry = "gh-app"
when = 'action.endsWith(".read")'
permissions = { contents = "read" }
"#;

#[test]
fn the_plain_map_leaves_out_conditional_bindings() {
    let s = set(&[("bot.toml", BOT)]);
    let plain = s.credentials_for("bot");
    assert_eq!(plain.get("stripe").map(String::as_str), Some("bot-stripe"));
    // A caller that only knows the plain map must not use gh-app for a
    // write the `when` would have refused.
    assert!(!plain.contains_key("github"));
    let all = s.bindings_for("bot");
    assert_eq!(all.len(), 2);
    let params = json!({}).as_object().cloned().unwrap();
    assert_eq!(
        choose(&all["github"], "github.repo.read", &params).map(|b| b.entry.as_str()),
        Some("gh-app")
    );
    assert!(choose(&all["github"], "github.branch.delete", &params).is_none());
}

#[test]
fn the_first_file_binding_a_connector_wins() {
    let other = r#"
agents = ["bot"]
[credentials]
github = "static-token"
"#;
    // Files load in name order: a-*.toml first.
    let s = set(&[("a-bot.toml", BOT), ("b-other.toml", other)]);
    let params = json!({}).as_object().cloned().unwrap();
    let gh = &s.bindings_for("bot")["github"];
    assert!(choose(gh, "github.branch.delete", &params).is_none());
    let s = set(&[("a-other.toml", other), ("b-bot.toml", BOT)]);
    let gh = &s.bindings_for("bot")["github"];
    assert_eq!(
        choose(gh, "github.branch.delete", &params).map(|b| b.entry.as_str()),
        Some("static-token")
    );
}

#[test]
fn an_agent_without_bindings_has_none() {
    let s = set(&[("bot.toml", BOT)]);
    assert!(s.bindings_for("stranger").is_empty());
    assert!(s.credentials_for("stranger").is_empty());
}
