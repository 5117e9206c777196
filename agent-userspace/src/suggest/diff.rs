//! What a proposed rule would change: each observed action of its group is
//! decided again under the policy in force (its static decision, with the
//! chain, params, request and time the record has). Actions that policy
//! denies or sends to a human are the new access the rule grants.

use std::collections::BTreeMap;

use cordon_audit::AuditRecord;
use cordon_policy::{ActionRequest, HttpInfo, PolicySet, Verdict};

use super::observe::Group;

/// How the policy in force treats a group's actions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Today {
    pub allowed: usize,
    /// `(verdict, rule)` -> how many of the group's actions.
    pub refused: BTreeMap<(&'static str, String), usize>,
}

impl Today {
    pub fn is_new_access(&self) -> bool {
        !self.refused.is_empty()
    }

    /// `denied by rule \`x\` (2 of 3), needs approval by rule \`y\` (1 of 3)`.
    pub fn describe(&self, of: usize) -> String {
        let parts: Vec<String> = self
            .refused
            .iter()
            .map(|((verdict, rule), n)| {
                let how = match *verdict {
                    "approve" => "needs approval by",
                    _ => "denied by",
                };
                format!("{how} rule `{rule}` ({n} of {of})")
            })
            .collect();
        parts.join(", ")
    }
}

pub fn today(set: &PolicySet, group: &Group<'_>) -> Today {
    let mut t = Today::default();
    for rec in &group.records {
        let verdict = decide(set, group.action, rec);
        match verdict {
            (Verdict::Allow, _) => t.allowed += 1,
            (v, rule) => *t.refused.entry((v.name(), rule)).or_default() += 1,
        }
    }
    t
}

fn decide(set: &PolicySet, action: &str, rec: &AuditRecord) -> (Verdict, String) {
    let chain: Vec<String> = match rec.chain.as_deref().or(rec.agent.as_deref()) {
        Some(c) => c.split('/').map(str::to_string).collect(),
        None => Vec::new(),
    };
    let request = match (&rec.http_method, &rec.http_path) {
        (Some(method), Some(path)) => Some(HttpInfo {
            method,
            host: rec.dst_host.as_deref().unwrap_or(""),
            path,
        }),
        _ => None,
    };
    let d = set.decide(&ActionRequest {
        chain: &chain,
        action,
        params: &rec.params,
        request,
        now: rec.ts,
    });
    (d.verdict, d.rule_id.to_string())
}
