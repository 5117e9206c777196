//! Everything that applies to one agent, merged from the files that name it
//! and the files they extend, with rules indexed by action name.

use crate::compile::{Compiled, DEFAULT_APPROVAL_TIMEOUT, Envelope, Limit, Rule};
use crate::contain::ContainPolicy;
use crate::decision::Verdict;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct AgentPolicy {
    pub(crate) default: Verdict,
    pub(crate) default_rule: Arc<str>,
    pub(crate) default_reason: Arc<str>,
    pub(crate) index: ActionIndex,
    /// Every rule in force, in file order, for explanations.
    pub(crate) all_rules: Vec<usize>,
    pub(crate) limits: Vec<Arc<Limit>>,
    pub(crate) envelope: Envelope,
    pub(crate) credentials: BTreeMap<String, Arc<crate::bindings::Bindings>>,
    pub(crate) contain: ContainPolicy,
    /// The tightest `[caps]` over the files that apply.
    pub(crate) caps: crate::caps::CapOverrides,
    /// Learn only when every top-level file naming the agent says so:
    /// learning loosens enforcement, so one file cannot turn it on for
    /// agents other files enforce.
    pub(crate) mode: crate::learn::Mode,
    /// Whether any `when` in force reads `agent`.
    pub(crate) reads_agent: bool,
}

/// Candidate rules per action by rank (deny, approved, approve, allow),
/// then in file order, so that the first rule that matches decides.
#[derive(Debug, Default)]
pub(crate) struct ActionIndex {
    by_name: HashMap<Box<str>, Vec<usize>>,
    /// Glob rules, for action names no rule spells out.
    globs: Vec<usize>,
}

impl ActionIndex {
    fn build(rules: &[Rule], ids: &[usize]) -> ActionIndex {
        let mut index = ActionIndex::default();
        for &id in ids {
            let rule = &rules[id];
            if rule.action.is_exact() {
                index
                    .by_name
                    .entry(rule.action.as_str().into())
                    .or_default()
                    .push(id);
            } else {
                index.globs.push(id);
            }
        }
        let order = |id: &usize| (Reverse(rules[*id].rank()), *id);
        for (name, list) in index.by_name.iter_mut() {
            list.extend(
                index
                    .globs
                    .iter()
                    .filter(|&&g| rules[g].action.matches(name)),
            );
            list.sort_by_key(order);
            list.dedup();
        }
        index.globs.sort_by_key(order);
        index
    }

    /// Rules that may match `action`; glob candidates still need their
    /// pattern checked.
    pub(crate) fn candidates(&self, action: &str) -> &[usize] {
        self.by_name.get(action).map_or(&self.globs, Vec::as_slice)
    }
}

/// Merges the top-level files `tops` (indices into units) and what they
/// extend. `None` when no file applies.
pub(crate) fn build(compiled: &Compiled, tops: &[usize]) -> Option<AgentPolicy> {
    if tops.is_empty() {
        return None;
    }
    let mut units = Vec::new();
    let mut stack: Vec<usize> = tops.iter().rev().copied().collect();
    while let Some(u) = stack.pop() {
        if units.contains(&u) {
            continue;
        }
        units.push(u);
        stack.extend(compiled.units[u].extends.iter().rev());
    }

    // The strictest default wins; among equals, the first file.
    let mut default: Option<(Verdict, usize)> = None;
    for &u in &units {
        if let Some(d) = compiled.units[u].default
            && default.is_none_or(|(cur, _)| d.severity() > cur.severity())
        {
            default = Some((d, u));
        }
    }
    let (default, from) = default.unwrap_or((Verdict::Deny, tops[0]));
    let from_name = &compiled.units[from].name;

    let mut all_rules = Vec::new();
    let mut limits = Vec::new();
    let mut envelope = Envelope::default();
    let mut credentials: BTreeMap<String, Arc<crate::bindings::Bindings>> = BTreeMap::new();
    let mut contain = ContainPolicy::default();
    let mut caps = crate::caps::CapOverrides::default();
    for &u in &units {
        let unit = &compiled.units[u];
        caps.tighten(&unit.caps);
        if let Some(c) = &unit.contain {
            contain.merge(c);
        }
        all_rules.extend(unit.rules.iter().copied());
        limits.extend(unit.limits.iter().cloned());
        envelope.tighten(&unit.envelope);
        for (connector, entry) in &unit.credentials {
            if let Some(existing) = credentials.get(connector) {
                if !existing.same_as(entry) {
                    tracing::warn!(
                        connector,
                        file = %unit.name,
                        "two policy files bind one connector differently; the first file wins"
                    );
                }
                continue;
            }
            credentials.insert(connector.clone(), entry.clone());
        }
    }
    all_rules.sort_unstable();
    let reads_agent = all_rules.iter().any(|&r| {
        compiled.rules[r]
            .when
            .as_ref()
            .is_some_and(|c| c.vars & crate::cel_env::AGENT != 0)
    });
    let default = match default {
        Verdict::Approve { .. } => Verdict::Approve {
            timeout: DEFAULT_APPROVAL_TIMEOUT,
        },
        other => other,
    };
    let mode = if tops
        .iter()
        .all(|&u| compiled.units[u].mode == Some(crate::learn::Mode::Learn))
    {
        crate::learn::Mode::Learn
    } else {
        crate::learn::Mode::Enforce
    };
    Some(AgentPolicy {
        mode,
        index: ActionIndex::build(&compiled.rules, &all_rules),
        default_rule: Arc::from(format!("default:{from_name}")),
        default_reason: Arc::from(format!(
            "no rule matched; default {} from {from_name}",
            default.name()
        )),
        default,
        all_rules,
        limits,
        envelope,
        credentials,
        contain,
        caps,
        reads_agent,
    })
}
