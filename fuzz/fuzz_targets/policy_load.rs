//! The policy loader (`PolicySet::load_dir`): TOML parsing, `extends`,
//! rules, CEL conditions, schedules, limits, envelopes, containment, then
//! deciding with what loaded. The fuzzed file sits in a policy directory
//! beside the shipped `base/network.toml`, which it may extend.
//!
//! Checks: it never panics; a set that loads decides every agent it names,
//! and a delegation chain is never decided more leniently than either of
//! its agents alone.
#![no_main]

use std::{path::PathBuf, sync::LazyLock};

use cordon_policy::{ActionRequest, PolicySet};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// A directory of this process's own; the fuzzer runs one input at a time.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("cordon-fuzz-policy-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("base")).expect("creating the policy directory");
    std::fs::write(
        dir.join("base/network.toml"),
        include_str!("../../policies/base/network.toml"),
    )
    .expect("writing base/network.toml");
    dir
});

fuzz_target!(|data: &[u8]| {
    let dir = &*DIR;
    std::fs::write(dir.join("fuzzed.toml"), data).expect("writing the fuzzed policy");
    let Ok(set) = PolicySet::load_dir(dir) else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_736_164_800, 0).expect("a valid time");
    let requests: [(&str, Value); 4] = [
        (
            "http.request",
            json!({"method": "GET", "host": "api.github.com", "port": 443, "path": "/x"}),
        ),
        (
            "tcp.connect",
            json!({"host": "github.com", "ip": "140.82.112.3", "port": 443}),
        ),
        ("tcp.connect", json!({"ip": "169.254.169.254", "port": 80})),
        (
            "github.branch.delete",
            json!({"owner": "o", "repo": "r", "branch": "main"}),
        ),
    ];
    // A `when` that reads `chain` may by design decide differently inside
    // a chain than alone; only other sets must keep the ordering.
    let chain_aware = data.windows(5).any(|w| w == b"chain");
    let agents: Vec<String> = set.agents().into_iter().map(str::to_string).collect();
    let decide = |chain: &[String], action: &str, params: &Map<String, Value>| {
        set.decide(&ActionRequest {
            chain,
            action,
            params,
            request: None,
            now,
        })
    };
    for (action, params) in &requests {
        let Value::Object(params) = params else {
            unreachable!("request params are objects")
        };
        for parent in agents.iter().take(3) {
            if chain_aware {
                decide(std::slice::from_ref(parent), action, params);
                continue;
            }
            let alone = decide(std::slice::from_ref(parent), action, params);
            for child in agents.iter().take(3) {
                let chain = [parent.clone(), child.clone()];
                let both = decide(&chain, action, params);
                let child_alone = decide(std::slice::from_ref(child), action, params);
                assert!(
                    both.verdict.severity() >= alone.verdict.severity()
                        && both.verdict.severity() >= child_alone.verdict.severity(),
                    "{parent} -> {child} `{action}`: {:?}, but alone {:?} / {:?}",
                    both.verdict,
                    alone.verdict,
                    child_alone.verdict
                );
            }
        }
    }
});
