//! `cordon policy suggest`: a proposed least-privilege policy for one agent
//! from its audit trail. A pure function of the records, the agent, the
//! time window and the policy in force: the same inputs give the same
//! bytes (records are grouped in sorted order, timestamps come from the
//! records, nothing reads the clock).
//!
//! - `observe`: which records are evidence (actions that went ahead) and
//!   how they group into rules;
//! - `scope`: the narrowest conditions allowing a group;
//! - `diff`: what each rule grants that the policy in force does not;
//! - `contain`: containment paths from `contain.refused` records;
//! - `render`: the policy file text.
mod contain;
mod diff;
mod observe;
mod render;
mod scope;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cordon_audit::AuditRecord;
use cordon_policy::PolicySet;

use observe::Dest;
use render::{Header, RuleText};

/// What a proposal is made from.
pub struct Input<'a> {
    pub agent: &'a str,
    pub records: &'a [AuditRecord],
    /// Only records from this time on.
    pub since: Option<DateTime<Utc>>,
    /// The policy in force, for the diff; `None` marks every rule new.
    pub current: Option<&'a PolicySet>,
}

/// The proposed policy file.
pub fn suggest(input: &Input<'_>) -> Result<String, std::fmt::Error> {
    let groups = observe::groups(input.records, input.agent, input.since);
    let mut ids = BTreeSet::new();
    let rules: Vec<RuleText<'_>> = groups
        .iter()
        .map(|g| RuleText {
            id: unique_id(&mut ids, g),
            action: g.action,
            scope: scope::scope(g),
            count: g.records.len(),
            learned: g.records.iter().filter(|r| r.would.is_some()).count(),
            first: g.first(),
            last: g.last(),
            today: input.current.map(|set| diff::today(set, g)),
        })
        .collect();
    let first = groups.iter().map(observe::Group::first).min();
    let last = groups.iter().map(observe::Group::last).max();
    let header = Header {
        agent: input.agent,
        actions: rules.iter().map(|r| r.count).sum(),
        learned: rules.iter().map(|r| r.learned).sum(),
        span: first.zip(last),
        compared: input.current.map(PolicySet::version),
    };
    let mut out = String::new();
    render::header(&header, &rules, &mut out)?;
    for r in &rules {
        render::rule(r, &mut out)?;
    }
    let contain = contain::propose(input.records, input.agent, input.since);
    render::contain(&contain, &mut out)?;
    Ok(out)
}

/// `learned-<action>`, then `-<host>` for a rule per name or `-by-address`
/// for rules naming addresses, and a counter if that is taken.
fn unique_id(taken: &mut BTreeSet<String>, g: &observe::Group<'_>) -> String {
    let action = g.action;
    let base = match (&g.host, g.dest) {
        (Some(host), _) => format!("learned-{action}-{host}"),
        (None, Dest::Addressed) => format!("learned-{action}-by-address"),
        (None, Dest::None | Dest::Named) => format!("learned-{action}"),
    };
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(id.clone());
    id
}
