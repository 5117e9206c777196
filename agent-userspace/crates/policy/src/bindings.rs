//! Credential bindings: which vault entry, if any, a request to a connector
//! goes out with.
//!
//! A policy's `[credentials]` maps a connector either to one vault entry
//! (`github = "deploy-bot-github"`, used for every allowed request) or to a
//! list of bindings, each with an optional CEL `when` over `action` and
//! `params`:
//!
//! ```toml
//! [[credentials.github]]
//! entry = "gh-app"
//! when = 'action == "github.pr.merge" && params.owner == "acme"'
//! repositories = ["acme/api"]
//! permissions = { contents = "write", pull_requests = "write" }
//!
//! [[credentials.github]]
//! entry = "gh-app"
//! when = 'action.endsWith(".read")'
//! permissions = { contents = "read" }
//! ```
//!
//! The first binding whose `when` holds is used; when none holds the request
//! gets no credential. A `when` that fails to evaluate counts as not holding,
//! so an error can only withhold a credential, never hand one out.

use crate::cel_env::{self, json_object_val};
use cel::{Context, Program, Value};
use serde_json::Map;
use std::cell::OnceCell;
use std::collections::BTreeMap;

/// One compiled binding.
pub struct Binding {
    /// The vault entry the credential comes from.
    pub entry: String,
    /// For entries that mint tokens (`github-app`): the repositories
    /// (`owner/repo` or bare `repo`) the token is limited to; empty means
    /// every repository of the installation.
    pub repositories: Vec<String>,
    /// For `github-app`: permission -> `read` / `write` / `admin`; empty
    /// means the installation's own permissions.
    pub permissions: BTreeMap<String, String>,
    /// `file:line` of the binding, for explanations.
    pub location: String,
    /// The `when` as written, if any.
    pub when_source: Option<String>,
    pub(crate) when: Option<Program>,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("entry", &self.entry)
            .field("when", &self.when_source)
            .field("repositories", &self.repositories)
            .field("permissions", &self.permissions)
            .field("location", &self.location)
            .finish()
    }
}

/// Why a binding was or was not used for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingOutcome {
    /// The first binding whose `when` held (or that has none).
    Chosen,
    /// Its `when` held, but an earlier binding was chosen.
    Shadowed,
    /// Its `when` was false.
    NotMatched,
    /// Its `when` failed to evaluate (counted as not matching).
    Failed(String),
}

/// One line of `cordon policy test --explain`'s credential section.
#[derive(Debug, Clone)]
pub struct BindingTrace {
    pub entry: String,
    pub location: String,
    pub when: Option<String>,
    pub outcome: BindingOutcome,
}

/// Every binding of one connector, in file order.
#[derive(Debug)]
pub struct Bindings {
    list: Vec<Binding>,
}

impl Bindings {
    pub(crate) fn new(list: Vec<Binding>) -> Bindings {
        Bindings { list }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.list.iter()
    }

    /// The entry of the plain `connector = "entry"` form (one binding, no
    /// `when`, no scope), which every request to the connector uses.
    pub fn unconditional_entry(&self) -> Option<&str> {
        match self.list.as_slice() {
            [b] if b.when.is_none() && b.repositories.is_empty() && b.permissions.is_empty() => {
                Some(&b.entry)
            }
            _ => None,
        }
    }

    /// Whether two files bind the connector the same way (for the
    /// first-file-wins merge, which only warns on a real conflict).
    pub(crate) fn same_as(&self, other: &Bindings) -> bool {
        self.list.len() == other.list.len()
            && self.list.iter().zip(&other.list).all(|(a, b)| {
                a.entry == b.entry
                    && a.when_source == b.when_source
                    && a.repositories == b.repositories
                    && a.permissions == b.permissions
            })
    }
}

/// The binding a request uses: the first whose `when` holds for `action`
/// and `params`, or none (then the request gets no credential).
///
/// The request's CEL scope is built only once a binding with a `when` is
/// reached: the plain `connector = "entry"` form, and any list whose chosen
/// binding comes before its first `when`, evaluate nothing.
pub fn choose<'b>(
    bindings: &'b Bindings,
    action: &str,
    params: &Map<String, serde_json::Value>,
) -> Option<&'b Binding> {
    let scope = OnceCell::new();
    bindings.list.iter().find(|b| {
        b.when.is_none()
            || matches!(
                evaluate(
                    b,
                    scope.get_or_init(|| binding_scope(cel_env::root(), action, params))
                ),
                Ok(true)
            )
    })
}

/// How each binding fared for `action` and `params`, in order.
pub fn explain_choice(
    bindings: &Bindings,
    action: &str,
    params: &Map<String, serde_json::Value>,
) -> Vec<BindingTrace> {
    let scope = binding_scope(cel_env::root(), action, params);
    let mut chosen = false;
    bindings
        .list
        .iter()
        .map(|b| {
            let outcome = match evaluate(b, &scope) {
                Ok(true) if chosen => BindingOutcome::Shadowed,
                Ok(true) => {
                    chosen = true;
                    BindingOutcome::Chosen
                }
                Ok(false) => BindingOutcome::NotMatched,
                Err(e) => BindingOutcome::Failed(e),
            };
            BindingTrace {
                entry: b.entry.clone(),
                location: b.location.clone(),
                when: b.when_source.clone(),
                outcome,
            }
        })
        .collect()
}

fn binding_scope<'r, 'q>(
    root: &'r Context<'static, 'static>,
    action: &'q str,
    params: &'q Map<String, serde_json::Value>,
) -> Context<'r, 'q> {
    let mut scope = root.new_inner_scope();
    scope.add_variable_from_value("action", Value::from(action));
    scope.add_variable_as_val("params", Box::new(json_object_val(params)));
    scope
}

fn evaluate(binding: &Binding, scope: &Context<'_, '_>) -> Result<bool, String> {
    let Some(program) = &binding.when else {
        return Ok(true);
    };
    match program.execute(scope) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("`when` gave {other:?}, not a bool")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bindings_load::tests::load;

    fn params(v: serde_json::Value) -> Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    const TWO_TOKENS: &str = r#"
[[credentials.github]]
entry = "gh-write"
when = 'action == "github.pr.merge" && params.owner == "acme"'
permissions = { contents = "write", pull_requests = "write" }

[[credentials.github]]
entry = "gh-read"
when = 'action.endsWith(".read")'
repositories = ["acme/api"]
permissions = { contents = "read" }
"#;

    #[test]
    fn first_matching_binding_is_chosen() {
        let set = load(TWO_TOKENS).unwrap();
        let gh = &set["github"];
        let merge = choose(
            gh,
            "github.pr.merge",
            &params(json!({"owner": "acme", "repo": "api"})),
        )
        .unwrap();
        assert_eq!(merge.entry, "gh-write");
        let read = choose(gh, "github.repo.read", &params(json!({}))).unwrap();
        assert_eq!(read.entry, "gh-read");
        assert_eq!(read.repositories, ["acme/api"]);
        assert_eq!(read.permissions["contents"], "read");
    }

    #[test]
    fn no_matching_binding_means_no_credential() {
        let set = load(TWO_TOKENS).unwrap();
        let gh = &set["github"];
        assert!(
            choose(
                gh,
                "github.pr.merge",
                &params(json!({"owner": "other", "repo": "x"}))
            )
            .is_none()
        );
        assert!(choose(gh, "github.branch.delete", &params(json!({}))).is_none());
    }

    #[test]
    fn a_failing_when_withholds_the_credential() {
        // `params.owner` is absent: CEL errors on the missing key, and the
        // binding does not apply rather than applying by accident.
        let set = load(
            r#"
[[credentials.github]]
entry = "gh-write"
when = 'params.owner == "acme"'
"#,
        )
        .unwrap();
        assert!(choose(&set["github"], "github.pr.merge", &params(json!({}))).is_none());
        let trace = explain_choice(&set["github"], "github.pr.merge", &params(json!({})));
        assert!(matches!(trace[0].outcome, BindingOutcome::Failed(_)));
    }

    #[test]
    fn plain_form_is_one_unconditional_binding() {
        let set = load(r#"credentials = { github = "deploy-bot-github" }"#).unwrap();
        let gh = &set["github"];
        assert_eq!(gh.unconditional_entry(), Some("deploy-bot-github"));
        let b = choose(gh, "github.anything", &params(json!({}))).unwrap();
        assert_eq!(b.entry, "deploy-bot-github");
        assert_eq!(
            load(TWO_TOKENS).unwrap()["github"].unconditional_entry(),
            None
        );
    }

    #[test]
    fn explanation_marks_chosen_and_shadowed() {
        let set = load(
            r#"
[[credentials.github]]
entry = "a"
when = 'action.startsWith("github.")'
[[credentials.github]]
entry = "b"
"#,
        )
        .unwrap();
        let trace = explain_choice(&set["github"], "github.x.read", &params(json!({})));
        assert_eq!(trace[0].outcome, BindingOutcome::Chosen);
        assert_eq!(trace[1].outcome, BindingOutcome::Shadowed);
        let trace = explain_choice(&set["github"], "stripe.x", &params(json!({})));
        assert_eq!(trace[0].outcome, BindingOutcome::NotMatched);
        assert_eq!(trace[1].outcome, BindingOutcome::Chosen);
        assert_eq!(trace[1].location, "p.toml:5");
    }

    #[test]
    fn choosing_without_evaluating_every_when_picks_what_the_explanation_marks_chosen() {
        // `choose` builds the CEL scope only once it reaches a `when`; the
        // explanation evaluates every binding. They must agree on the winner
        // wherever the unconditional binding sits.
        let lists = [
            "[[credentials.github]]\nentry = \"plain\"\n[[credentials.github]]\nentry = \"cond\"\nwhen = 'params.owner == \"acme\"'\n",
            "[[credentials.github]]\nentry = \"cond\"\nwhen = 'params.owner == \"acme\"'\n[[credentials.github]]\nentry = \"plain\"\n",
            "[[credentials.github]]\nentry = \"cond\"\nwhen = 'params.owner == \"acme\"'\n",
        ];
        let requests = [
            json!({"owner": "acme"}),
            json!({"owner": "else"}),
            json!({}),
        ];
        for list in lists {
            let set = load(list).unwrap();
            for p in &requests {
                let p = params(p.clone());
                let chosen = choose(&set["github"], "github.x", &p).map(|b| b.entry.as_str());
                let explained = explain_choice(&set["github"], "github.x", &p);
                let marked = explained
                    .iter()
                    .find(|t| t.outcome == BindingOutcome::Chosen)
                    .map(|t| t.entry.as_str());
                assert_eq!(chosen, marked, "{list} with {p:?}");
            }
        }
    }
}
