//! A compiled, immutable policy set and its static decision.

use crate::agent::{self, AgentPolicy};
use crate::cel_env::{self, request_scope};
use crate::compile::{Compiled, Envelope, Limit, Rule};
use crate::contain::ContainPolicy;
use crate::decision::{ActionRequest, Decision, RuleTrace, Source, Verdict};
use crate::error::PolicyError;
use crate::learn::Mode;
use crate::load::read_dir;
use crate::network::{NetFacts, special_category};
use cel::Context;
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

pub struct PolicySet {
    version: Arc<str>,
    compiled: Compiled,
    /// Agents some file names exactly, merged at load.
    named: HashMap<String, (Arc<str>, Arc<AgentPolicy>)>,
    /// Agents matched only by globs, merged on first use, keyed by the files
    /// that apply (so the cache is bounded by the file combinations).
    by_files: RwLock<HashMap<Vec<usize>, Arc<AgentPolicy>>>,
    /// Union of the variables every `when` reads.
    vars: u8,
    /// Whether any file says `mode = "learn"`; when none does, no decision
    /// pays for looking up the chain's mode.
    any_learn: bool,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("version", &self.version)
            .field("files", &self.files())
            .finish_non_exhaustive()
    }
}

/// How a rule fared against a request.
enum Match {
    Yes,
    No(&'static str),
    /// The `when` failed to evaluate.
    Error(String),
}

/// The guard's view of a `tcp.connect` target.
#[derive(Clone, Copy)]
enum Guard {
    Open,
    Guarded(IpAddr, &'static str),
    NoIp,
}

impl PolicySet {
    /// Loads `*.toml` in `dir` (not subdirectories) and what they extend.
    pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyError> {
        let loaded = read_dir(dir)?;
        let compiled = crate::compile::compile(&loaded.files)?;
        let mut set = PolicySet {
            version: Arc::from(loaded.version),
            vars: compiled
                .rules
                .iter()
                .filter_map(|r| r.when.as_ref())
                .fold(0, |acc, c| acc | c.vars),
            any_learn: compiled.units.iter().any(|u| u.mode == Some(Mode::Learn)),
            compiled,
            named: HashMap::new(),
            by_files: RwLock::new(HashMap::new()),
        };
        let mut names: Vec<String> = Vec::new();
        for unit in set.compiled.units.iter().filter(|u| u.top_level) {
            for glob in &unit.agents {
                if glob.is_exact() && !names.iter().any(|n| n == glob.as_str()) {
                    names.push(glob.as_str().to_string());
                }
            }
        }
        for name in names {
            let tops = set.tops_for(&name);
            if let Some(policy) = agent::build(&set.compiled, &tops) {
                set.named
                    .insert(name.clone(), (Arc::from(name.as_str()), Arc::new(policy)));
            }
        }
        tracing::debug!(version = %set.version, files = set.compiled.units.len(), "policy set compiled");
        Ok(set)
    }

    /// Short hex of SHA-256 over the names and contents of every file.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version, shared rather than copied (one per pinned request).
    pub fn version_shared(&self) -> Arc<str> {
        self.version.clone()
    }

    /// Every file in force, relative to the policy directory.
    pub fn files(&self) -> Vec<&str> {
        self.compiled
            .units
            .iter()
            .map(|u| u.name.as_ref())
            .collect()
    }

    /// Agents named exactly by some file.
    pub fn agents(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.named.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn tops_for(&self, agent: &str) -> Vec<usize> {
        self.compiled
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.top_level && u.agents.iter().any(|g| g.matches(agent)))
            .map(|(i, _)| i)
            .collect()
    }

    pub(crate) fn policy_for(&self, agent: &str) -> Option<(Arc<str>, Arc<AgentPolicy>)> {
        if let Some((name, policy)) = self.named.get(agent) {
            return Some((name.clone(), policy.clone()));
        }
        let tops = self.tops_for(agent);
        if tops.is_empty() {
            return None;
        }
        let cached = self
            .by_files
            .read()
            .ok()
            .and_then(|cache| cache.get(&tops).cloned());
        let policy = match cached {
            Some(p) => p,
            None => {
                let built = Arc::new(agent::build(&self.compiled, &tops)?);
                if let Ok(mut cache) = self.by_files.write() {
                    cache.insert(tops, built.clone());
                }
                built
            }
        };
        Some((Arc::from(agent), policy))
    }

    /// The connector -> vault entry map for `agent`, for connectors bound
    /// in the plain `connector = "entry"` form. Connectors with conditional
    /// or scoped bindings are left out (they need [`bindings_for`] and
    /// [`crate::choose`] per request), so a caller that only knows this map
    /// never hands out a credential a `when` would have withheld.
    ///
    /// [`bindings_for`]: PolicySet::bindings_for
    pub fn credentials_for(&self, agent: &str) -> BTreeMap<String, String> {
        self.bindings_for(agent)
            .into_iter()
            .filter_map(|(c, b)| b.unconditional_entry().map(|e| (c, e.to_string())))
            .collect()
    }

    /// `agent`'s bindings for `connector`, for a request: without copying
    /// the agent's whole map (its keys and every connector's `Arc`) as
    /// [`bindings_for`](PolicySet::bindings_for) does.
    pub fn bindings_of(
        &self,
        agent: &str,
        connector: &str,
    ) -> Option<Arc<crate::bindings::Bindings>> {
        self.policy_for(agent)?
            .1
            .credentials
            .get(connector)
            .cloned()
    }

    /// Every connector's bindings for `agent`; pick one per request with
    /// [`crate::choose`].
    pub fn bindings_for(&self, agent: &str) -> BTreeMap<String, Arc<crate::bindings::Bindings>> {
        self.policy_for(agent)
            .map(|(_, p)| p.credentials.clone())
            .unwrap_or_default()
    }

    /// How `agent` is contained on the host. An agent no file names gets
    /// the default containment, never none.
    pub fn contain_for(&self, agent: &str) -> ContainPolicy {
        self.policy_for(agent)
            .map(|(_, p)| p.contain.clone())
            .unwrap_or_default()
    }

    /// The tightest envelope over the agents of `chain`.
    pub fn envelope_for(&self, chain: &[String]) -> Envelope {
        let mut envelope = Envelope::default();
        for agent in chain {
            if let Some((_, p)) = self.policy_for(agent) {
                envelope.tighten(&p.envelope);
            }
        }
        envelope
    }

    /// The `[caps]` the policy sets for a delegation chain: the tightest
    /// over its agents; unset values leave the daemon's defaults.
    pub fn caps_for(&self, chain: &[String]) -> crate::caps::CapOverrides {
        let mut caps = crate::caps::CapOverrides::default();
        for agent in chain {
            if let Some((_, p)) = self.policy_for(agent) {
                caps.tighten(&p.caps);
            }
        }
        caps
    }

    /// How `agent`'s decisions are applied; an agent no file names is
    /// enforced.
    pub fn mode_for(&self, agent: &str) -> Mode {
        self.policy_for(agent)
            .map_or(Mode::Enforce, |(_, p)| p.mode)
    }

    /// Learn only when every agent of the chain learns: a learning
    /// sub-agent of an enforced agent is still held to its parent's policy.
    pub fn mode_of_chain(&self, chain: &[String]) -> Mode {
        if self.any_learn
            && !chain.is_empty()
            && chain.iter().all(|a| self.mode_for(a) == Mode::Learn)
        {
            Mode::Learn
        } else {
            Mode::Enforce
        }
    }

    /// The rate limits in force for `agent`.
    pub fn limits_for(&self, agent: &str) -> Vec<Arc<Limit>> {
        self.policy_for(agent)
            .map(|(_, p)| p.limits.clone())
            .unwrap_or_default()
    }

    pub(crate) fn decision(
        &self,
        verdict: Verdict,
        rule: &Arc<str>,
        reason: &Arc<str>,
        by: &Arc<str>,
        source: Source,
    ) -> Decision {
        Decision {
            verdict,
            rule_id: rule.clone(),
            reason: reason.clone(),
            decided_by: by.clone(),
            policy_version: self.version.clone(),
            source,
        }
    }

    fn deny_with(&self, source: Source, rule: &str, reason: String, by: &str) -> Decision {
        Decision {
            verdict: Verdict::Deny,
            rule_id: Arc::from(rule),
            reason: Arc::from(reason),
            decided_by: Arc::from(by),
            policy_version: self.version.clone(),
            source,
        }
    }

    /// The static decision: each agent of the chain is judged by its own
    /// files and the most restrictive verdict wins, so delegating can never
    /// loosen what the delegator may do.
    pub fn decide(&self, req: &ActionRequest<'_>) -> Decision {
        if req.chain.is_empty() {
            return self.deny_with(
                Source::NoPolicy,
                "no-policy",
                "the request names no agent".into(),
                "",
            );
        }
        let facts = NetFacts::from_params(req.action, req.params);
        let guard = guard_for(req.action, &facts);
        let scope = OnceCell::new();
        let mut worst: Option<Decision> = None;
        for agent in req.chain {
            let decision = self.decide_one(agent, req, &facts, guard, &scope);
            let deny = decision.verdict == Verdict::Deny;
            if worst
                .as_ref()
                .is_none_or(|w| decision.verdict.severity() > w.verdict.severity())
            {
                worst = Some(decision);
            }
            if deny {
                break;
            }
        }
        worst.unwrap_or_else(|| {
            self.deny_with(
                Source::NoPolicy,
                "no-policy",
                "the request names no agent".into(),
                "",
            )
        })
    }

    fn decide_one<'s, 'q>(
        &'s self,
        agent: &str,
        req: &ActionRequest<'q>,
        facts: &NetFacts<'_>,
        guard: Guard,
        scope: &OnceCell<Context<'s, 'q>>,
    ) -> Decision {
        let Some((name, policy)) = self.policy_for(agent) else {
            return self.deny_with(
                Source::NoPolicy,
                "no-policy",
                format!("no policy file names agent `{agent}`"),
                agent,
            );
        };
        if let Guard::NoIp = guard {
            return self.deny_with(
                Source::AddressGuard,
                "ssrf-guard",
                "tcp.connect without a valid `ip` parameter".into(),
                agent,
            );
        }
        let agent_scope = OnceCell::new();
        for &id in policy.index.candidates(req.action) {
            let rule = &self.compiled.rules[id];
            let m = self.check(rule, req, facts, &name, &policy, scope, &agent_scope);
            let matched = match &m {
                Match::Yes => true,
                // A failing condition can only make things stricter.
                Match::Error(_) => rule.verdict != Verdict::Allow,
                Match::No(_) => false,
            };
            if !matched {
                continue;
            }
            if let Guard::Guarded(ip, _) = guard
                && rule.verdict != Verdict::Deny
                && !rule.net.opens_guarded(ip)
            {
                continue;
            }
            if let Match::Error(e) = m {
                return Decision {
                    verdict: rule.verdict,
                    rule_id: rule.id.clone(),
                    reason: Arc::from(format!(
                        "{} (`when` failed: {e}; counted as matching)",
                        rule.reason
                    )),
                    decided_by: name,
                    policy_version: self.version.clone(),
                    source: Source::Rule,
                };
            }
            return self.decision(rule.verdict, &rule.id, &rule.reason, &name, Source::Rule);
        }
        if let Guard::Guarded(ip, what) = guard {
            return self.deny_with(
                Source::AddressGuard,
                "ssrf-guard",
                format!("{ip} is a {what} address; only an allow rule whose `cidrs` names it may open it"),
                agent,
            );
        }
        self.decision(
            policy.default,
            &policy.default_rule,
            &policy.default_reason,
            &name,
            Source::Default,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn check<'s, 'a, 'q>(
        &'s self,
        rule: &Rule,
        req: &ActionRequest<'q>,
        facts: &NetFacts<'_>,
        agent: &'a Arc<str>,
        policy: &AgentPolicy,
        scope: &'a OnceCell<Context<'s, 'q>>,
        agent_scope: &OnceCell<Context<'a, 'q>>,
    ) -> Match {
        if !rule.action.matches(req.action) {
            return Match::No("action does not match");
        }
        if let Some(w) = rule.window
            && !self.compiled.schedules[w].1.contains(req.now)
        {
            return Match::No("schedule window is not active");
        }
        if let Some(field) = rule.net.mismatch(facts) {
            return Match::No(match field {
                "hosts" => "host does not match `hosts`",
                "cidrs" => "ip does not match `cidrs`",
                _ => "port does not match `ports`",
            });
        }
        let Some(cond) = &rule.when else {
            return Match::Yes;
        };
        let base = scope.get_or_init(|| {
            request_scope(cel_env::root(), req, &self.compiled.schedules, self.vars)
        });
        let result = if policy.reads_agent {
            let s = agent_scope.get_or_init(|| {
                let mut s = base.new_inner_scope();
                s.add_variable_from_value("agent", cel::Value::from(agent.as_ref()));
                s
            });
            cond.eval(s)
        } else {
            cond.eval(base)
        };
        match result {
            Ok(true) => Match::Yes,
            Ok(false) => Match::No("`when` is false"),
            Err(e) => Match::Error(e),
        }
    }

    /// Every rule in force for each agent of the chain, and whether it
    /// matched, in file order.
    pub fn explain(&self, req: &ActionRequest<'_>) -> Vec<RuleTrace> {
        let facts = NetFacts::from_params(req.action, req.params);
        let guard = guard_for(req.action, &facts);
        let scope = OnceCell::new();
        let mut out = Vec::new();
        for agent in req.chain {
            let Some((name, policy)) = self.policy_for(agent) else {
                out.push(RuleTrace {
                    agent: agent.clone(),
                    rule_id: "no-policy".into(),
                    location: String::new(),
                    action: "*".into(),
                    decision: "deny",
                    matched: true,
                    note: format!("no policy file names agent `{agent}`"),
                });
                continue;
            };
            let agent_scope = OnceCell::new();
            for &id in &policy.all_rules {
                let rule = &self.compiled.rules[id];
                let (matched, mut note) =
                    match self.check(rule, req, &facts, &name, &policy, &scope, &agent_scope) {
                        Match::Yes => (true, "matched".to_string()),
                        Match::No(why) => (false, why.to_string()),
                        Match::Error(e) => (
                            rule.verdict != Verdict::Allow,
                            format!("`when` failed: {e}"),
                        ),
                    };
                let mut matched = matched;
                if let Guard::Guarded(ip, what) = guard
                    && matched
                    && rule.verdict != Verdict::Deny
                    && !rule.net.opens_guarded(ip)
                {
                    matched = false;
                    note =
                        format!("{ip} is a {what} address and this rule's `cidrs` do not name it");
                }
                out.push(RuleTrace {
                    agent: agent.clone(),
                    rule_id: rule.id.to_string(),
                    location: rule.location.to_string(),
                    action: rule.action.as_str().to_string(),
                    decision: rule.decision_name(),
                    matched,
                    note,
                });
            }
        }
        out
    }
}

fn guard_for(action: &str, facts: &NetFacts<'_>) -> Guard {
    if action != "tcp.connect" {
        return Guard::Open;
    }
    match facts.ip {
        None => Guard::NoIp,
        Some(ip) => match special_category(ip) {
            Some(what) => Guard::Guarded(ip, what),
            None => Guard::Open,
        },
    }
}
