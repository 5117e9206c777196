//! Properties of the policy engine over generated policies, checked against
//! a small model of the documented semantics (docs/policy.md):
//! - deny beats approve beats allow: the strictest matching rule decides
//!   (the first in file order among equals), and the default only when
//!   none matches (grants that lift approvals are the daemon's, tested in
//!   `daemon/grants`);
//! - delegation: a chain is decided at least as strictly as each of its
//!   agents alone, i.e. a sub-agent never does more than its parent may;
//! - reload is atomic: readers deciding while generations are reloaded see
//!   each decision wholly from one generation, never an older one after a
//!   newer, and a broken reload leaves the generation in force.

mod common;

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use common::{NOON, at, chain, write_files};
use cordon_policy::{ActionRequest, Decision, PolicyEngine, PolicySet, RunContext, Verdict};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const ACTIONS: &[&str] = &["svc.read", "svc.write", "svc.admin.drop", "other.ping"];
const PATTERNS: &[&str] = &[
    "svc.read",
    "svc.write",
    "svc.*",
    "*",
    "svc.admin.*",
    "other.ping",
    "*.ping",
    "svc.?ead",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    Allow,
    Approve,
    Deny,
}

impl V {
    fn toml(self) -> &'static str {
        match self {
            V::Allow => "allow",
            V::Approve => "approve",
            V::Deny => "deny",
        }
    }

    fn of(v: &Verdict) -> V {
        match v {
            Verdict::Allow => V::Allow,
            Verdict::Approve { .. } => V::Approve,
            Verdict::Deny => V::Deny,
        }
    }

    fn severity(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: &'static str,
    verdict: V,
    /// `when = "params.n > K"`.
    above: Option<i64>,
}

/// One agent's policy file.
#[derive(Debug, Clone)]
struct Policy {
    default: V,
    rules: Vec<Rule>,
}

fn verdict() -> impl Strategy<Value = V> {
    prop_oneof![Just(V::Allow), Just(V::Approve), Just(V::Deny)]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::sample::select(PATTERNS),
        verdict(),
        prop::option::of(0i64..10),
    )
        .prop_map(|(pattern, verdict, above)| Rule {
            pattern,
            verdict,
            above,
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    (verdict(), prop::collection::vec(rule(), 0..8))
        .prop_map(|(default, rules)| Policy { default, rules })
}

/// The action and the `n` param of one request.
fn request() -> impl Strategy<Value = (&'static str, i64)> {
    (prop::sample::select(ACTIONS), 0i64..10)
}

/// `tag` prefixes rule ids, so a decision tells which file it came from.
fn toml(agent: &str, tag: &str, p: &Policy) -> String {
    let mut out = format!(
        "agents = [\"{agent}\"]\ndefault = \"{}\"\n",
        p.default.toml()
    );
    for (i, r) in p.rules.iter().enumerate() {
        out.push_str(&format!(
            "\n[[rule]]\nid = \"{tag}-{i}\"\naction = \"{}\"\ndecision = \"{}\"\n",
            r.pattern,
            r.verdict.toml()
        ));
        if let Some(k) = r.above {
            out.push_str(&format!("when = \"params.n > {k}\"\n"));
        }
    }
    out
}

/// `*` is any run of characters, `?` one character.
fn glob(pattern: &str, name: &str) -> bool {
    match (pattern.split_at_checked(1), name.split_at_checked(1)) {
        (None, _) => name.is_empty(),
        (Some(("*", rest)), _) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        (Some(("?", rest)), Some((_, tail))) => glob(rest, tail),
        (Some((c, rest)), Some((d, tail))) => c == d && glob(rest, tail),
        (Some(_), None) => false,
    }
}

/// The model: the strictest matching rule, first in file order among
/// equals; the default when none matches.
fn expected(tag: &str, file: &str, p: &Policy, action: &str, n: i64) -> (V, String) {
    let matching = p
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| glob(r.pattern, action) && r.above.is_none_or(|k| n > k));
    let mut best: Option<(usize, V)> = None;
    for (i, r) in matching {
        if best.is_none_or(|(_, v)| r.verdict.severity() > v.severity()) {
            best = Some((i, r.verdict));
        }
    }
    match best {
        Some((i, v)) => (v, format!("{tag}-{i}")),
        None => (p.default, format!("default:{file}")),
    }
}

fn params(n: i64) -> Map<String, Value> {
    match json!({ "n": n }) {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

fn decide(set: &PolicySet, agents: &[&str], action: &str, n: i64) -> Decision {
    let chain = chain(agents);
    set.decide(&ActionRequest {
        chain: &chain,
        action,
        params: &params(n),
        request: None,
        now: at(NOON),
    })
}

fn load(files: &[(&str, String)]) -> PolicySet {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    write_files(dir.path(), &files);
    PolicySet::load_dir(dir.path()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_strictest_matching_rule_decides_and_the_default_only_when_none_matches(
        p in policy(),
        requests in prop::collection::vec(request(), 1..8),
    ) {
        let set = load(&[("bot.toml", toml("bot", "r", &p))]);
        for (action, n) in requests {
            let d = decide(&set, &["bot"], action, n);
            let (verdict, rule) = expected("r", "bot.toml", &p, action, n);
            prop_assert_eq!(V::of(&d.verdict), verdict, "{} n={}", action, n);
            prop_assert_eq!(d.rule_id.as_ref(), rule.as_str());
        }
    }

    #[test]
    fn a_delegation_chain_is_decided_at_least_as_strictly_as_each_agent_alone(
        parent in policy(),
        child in policy(),
        requests in prop::collection::vec(request(), 1..8),
    ) {
        let set = load(&[
            ("parent.toml", toml("parent", "p", &parent)),
            ("child.toml", toml("child", "c", &child)),
        ]);
        for (action, n) in requests {
            let alone_parent = decide(&set, &["parent"], action, n);
            let alone_child = decide(&set, &["child"], action, n);
            let delegated = decide(&set, &["parent", "child"], action, n);
            let strictest = V::of(&alone_parent.verdict)
                .severity()
                .max(V::of(&alone_child.verdict).severity());
            prop_assert_eq!(
                V::of(&delegated.verdict).severity(),
                strictest,
                "{} n={}: parent {:?}, child {:?}, chain {:?}",
                action, n, alone_parent.verdict, alone_child.verdict, delegated.verdict
            );
            // The agent whose verdict stands is named, so a chain's refusal
            // can be traced to the policy that gave it.
            let by = if V::of(&alone_parent.verdict).severity() == strictest {
                "parent"
            } else {
                "child"
            };
            prop_assert_eq!(delegated.decided_by.as_ref(), by);
        }
    }
}

/// One generation of the policy directory: a policy, or a broken file.
#[derive(Debug, Clone)]
enum Generation {
    Good(Policy),
    Broken,
}

fn generation() -> impl Strategy<Value = Generation> {
    prop_oneof![
        4 => policy().prop_map(Generation::Good),
        1 => Just(Generation::Broken),
    ]
}

fn write_generation(root: &Path, g: usize, generation: &Generation) -> std::path::PathBuf {
    let dir = root.join(format!("gen{g}"));
    std::fs::create_dir_all(&dir).unwrap();
    let text = match generation {
        Generation::Good(p) => toml("bot", &format!("g{g}"), p),
        // A typo in one field: the whole directory must be rejected.
        Generation::Broken => "agents = [\"bot\"]\ndefault = \"maybe\"\n".to_string(),
    };
    std::fs::write(dir.join(format!("gen{g}.toml")), text).unwrap();
    dir
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn readers_deciding_during_reloads_see_one_whole_generation_at_a_time(
        first in policy(),
        later in prop::collection::vec(generation(), 1..6),
    ) {
        let root = tempfile::tempdir().unwrap();
        let generations: Vec<Generation> =
            std::iter::once(Generation::Good(first)).chain(later).collect();
        let dirs: Vec<_> = generations
            .iter()
            .enumerate()
            .map(|(g, gen_)| write_generation(root.path(), g, gen_))
            .collect();
        // Which generation each version is, from loading each on its own.
        let by_version: HashMap<String, usize> = generations
            .iter()
            .enumerate()
            .filter(|(_, gen_)| matches!(gen_, Generation::Good(_)))
            .map(|(g, _)| (PolicySet::load_dir(&dirs[g]).unwrap().version().to_string(), g))
            .collect();

        let engine = Arc::new(PolicyEngine::new());
        engine.reload(&dirs[0]).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (engine, done) = (engine.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let run = RunContext {
                        instance: "i-1".into(),
                        agent: "bot".into(),
                        started_at: at(NOON),
                    };
                    let chain = chain(&["bot"]);
                    let mut i = 0usize;
                    while !done.load(Ordering::Acquire) || seen.len() < 64 {
                        let (action, n) = (ACTIONS[i % ACTIONS.len()], (i % 10) as i64);
                        let params = params(n);
                        let outcome = engine.decide(&run, &ActionRequest {
                            chain: &chain,
                            action,
                            params: &params,
                            request: None,
                            now: at(NOON),
                        });
                        seen.push((action, n, outcome.decision));
                        i += 1;
                    }
                    seen
                })
            })
            .collect();

        let mut in_force = 0usize;
        for (g, gen_) in generations.iter().enumerate().skip(1) {
            let before = engine.version();
            let result = engine.reload(&dirs[g]);
            match gen_ {
                Generation::Good(_) => {
                    prop_assert_eq!(by_version.get(&result.unwrap()), Some(&g));
                    in_force = g;
                }
                Generation::Broken => {
                    prop_assert!(result.is_err(), "generation {} is broken", g);
                    prop_assert_eq!(engine.version(), before, "a broken reload changed the set");
                }
            }
            std::thread::yield_now();
        }
        done.store(true, Ordering::Release);
        let last = engine.version().and_then(|v| by_version.get(&v).copied());
        prop_assert_eq!(last, Some(in_force));

        for reader in readers {
            let mut newest = 0usize;
            for (action, n, d) in reader.join().unwrap() {
                let g = *by_version
                    .get(d.policy_version.as_ref())
                    .expect("every decision names a generation that was loaded");
                prop_assert!(g >= newest, "saw generation {} after {}", g, newest);
                newest = g;
                let Generation::Good(p) = &generations[g] else {
                    unreachable!("only good generations have versions")
                };
                let (verdict, rule) = expected(&format!("g{g}"), &format!("gen{g}.toml"), p, action, n);
                prop_assert_eq!(V::of(&d.verdict), verdict);
                prop_assert_eq!(d.rule_id.as_ref(), rule.as_str(), "rule and version from one generation");
            }
        }
    }
}
