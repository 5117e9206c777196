//! The credential of a request holding several actions (an MCP batch, a
//! git push of several refs). One request carries one credential, so every
//! action must choose the same binding (same entry, same scope); otherwise
//! one action would go out under a credential its binding does not give
//! it, and the request is refused. Whether a binding holds is still
//! `credential_plan::choose`'s question, asked once per action.
use cordon_connectors::Action;

use super::credential_plan::{Chosen, choose};
use crate::request::Pinned;

/// Two actions of one request chose different credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The two actions (indices) whose choices differ.
    pub first: usize,
    pub other: usize,
    /// What each chose: the vault entry, or `None` for no credential.
    pub first_entry: Option<String>,
    pub other_entry: Option<String>,
}

impl Mismatch {
    /// The refusal's reason.
    pub fn reason(&self, actions: &[&Action]) -> String {
        let show = |e: &Option<String>| match e {
            Some(e) => format!("credential {e:?}"),
            None => "no credential".to_string(),
        };
        let name = |i: usize| actions.get(i).map_or("?", |a| a.name.as_str());
        format!(
            "the actions of one request must use the same credential binding: {} #{} uses {}, {} #{} uses {}; send them as separate requests",
            name(self.first),
            self.first,
            show(&self.first_entry),
            name(self.other),
            self.other,
            show(&self.other_entry),
        )
    }
}

/// The one credential every action of the request chose.
pub fn choose_one<'p>(
    pinned: &'p Pinned,
    agent: &str,
    host: &str,
    actions: &[&'p Action],
) -> Result<Option<Chosen<'p>>, Mismatch> {
    // Compared as they are made: a request almost always holds one action,
    // and collecting the choices into a vector first (malloc and free of
    // about 100 bytes each) was 1.5% of the daemon's CPU per request.
    let choices = actions.iter().map(|a| {
        choose(
            pinned,
            agent,
            a.connector.as_deref(),
            host,
            &a.name,
            &a.params,
        )
    });
    same(choices, |c| c.entry.clone())
}

/// The common value of `choices`, or the first pair that differs. `entry`
/// names a choice for the reason.
pub fn same<T: PartialEq>(
    choices: impl IntoIterator<Item = Option<T>>,
    entry: impl Fn(&T) -> String,
) -> Result<Option<T>, Mismatch> {
    let mut it = choices.into_iter().enumerate();
    let Some((_, first)) = it.next() else {
        return Ok(None);
    };
    for (i, other) in it {
        if other != first {
            return Err(Mismatch {
                first: 0,
                other: i,
                first_entry: first.as_ref().map(&entry),
                other_entry: other.as_ref().map(&entry),
            });
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use cordon_connectors::mcp::parse_request;

    use super::*;

    const CONNECTOR: &str = r#"
name = "tools"
hosts = ["mcp.test"]
[credential]
scheme = "bearer"
[[mcp]]
server = "tools"
path = "/mcp"
"#;

    const POLICY: &str = r#"
agents = ["bot"]
default = "allow"

[[credentials.tools]]
entry = "tools-write"
when = 'params.tool == "merge_pr"'

[[credentials.tools]]
entry = "tools-read"
when = 'action == "mcp.tool.call"'
"#;

    fn pinned() -> Pinned {
        Pinned::from_texts(POLICY, "tools", CONNECTOR)
    }

    fn calls(tools: &[&str]) -> Vec<Action> {
        let batch: Vec<String> = tools
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"{t}"}}}}"#
                )
            })
            .collect();
        let body = format!("[{}]", batch.join(","));
        parse_request("tools", Some("tools"), body.as_bytes())
            .unwrap()
            .calls
            .into_iter()
            .map(|c| c.action)
            .collect()
    }

    #[test]
    fn a_batch_whose_calls_bind_one_entry_uses_it_and_a_mixed_one_is_refused() {
        let p = pinned();
        let reads = calls(&["search_issues", "list_prs"]);
        let refs: Vec<&Action> = reads.iter().collect();
        let chosen = choose_one(&p, "bot", "mcp.test", &refs).unwrap();
        assert_eq!(chosen.map(|c| c.entry), Some("tools-read".to_string()));

        let mixed = calls(&["search_issues", "merge_pr"]);
        let refs: Vec<&Action> = mixed.iter().collect();
        let m = choose_one(&p, "bot", "mcp.test", &refs).unwrap_err();
        assert_eq!(
            (m.first_entry.as_deref(), m.other_entry.as_deref()),
            (Some("tools-read"), Some("tools-write"))
        );
    }

    fn name(s: &&str) -> String {
        s.to_string()
    }

    #[test]
    fn actions_that_all_choose_one_binding_share_it() {
        assert_eq!(
            same(vec![Some("w"), Some("w"), Some("w")], name),
            Ok(Some("w"))
        );
        assert_eq!(same(vec![None::<&str>, None], name), Ok(None));
        assert_eq!(same(Vec::<Option<&str>>::new(), name), Ok(None));
    }

    #[test]
    fn two_bindings_or_a_binding_and_none_are_a_mismatch() {
        let m = same(vec![Some("read"), Some("read"), Some("write")], name).unwrap_err();
        assert_eq!((m.first, m.other), (0, 2));
        assert_eq!(m.other_entry.as_deref(), Some("write"));
        let m = same(vec![Some("read"), None], name).unwrap_err();
        assert_eq!(m.other_entry, None);
        let actions: Vec<Action> = ["git.push", "git.push"]
            .iter()
            .map(|n| Action {
                connector: None,
                name: n.to_string(),
                params: Default::default(),
                enrich: Vec::new(),
            })
            .collect();
        let actions: Vec<&Action> = actions.iter().collect();
        assert_eq!(
            m.reason(&actions),
            "the actions of one request must use the same credential binding: git.push #0 uses credential \"read\", git.push #1 uses no credential; send them as separate requests"
        );
    }
}
