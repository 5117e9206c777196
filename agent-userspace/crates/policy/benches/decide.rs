//! Decision latency with 1, 100 and 1,000 rules spread over 100 action
//! names; three rules in four carry a CEL `when`.

use chrono::{DateTime, Utc};
use cordon_policy::{ActionRequest, PolicyEngine, PolicySet, RunContext};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::hint::black_box;

const ACTIONS: usize = 100;

fn action_name(i: usize) -> String {
    format!("svc{}.res{}.op", i % 10, i / 10)
}

fn policy_with(rules: usize) -> String {
    let mut text = String::from("agents = [\"bench\"]\ndefault = \"deny\"\n");
    for i in 0..rules {
        let action = if i % 50 == 49 {
            format!("svc{}.*", i % 10)
        } else {
            action_name(i % ACTIONS)
        };
        let decision = ["allow", "allow", "approve", "deny"][i % 4];
        let _ = write!(
            text,
            "\n[[rule]]\naction = \"{action}\"\ndecision = \"{decision}\"\n"
        );
        if i % 4 != 0 {
            let _ = writeln!(
                text,
                "when = 'params.amount > {} && params.currency == \"eur\"'",
                i * 10
            );
        }
    }
    text
}

fn load(rules: usize) -> (tempfile::TempDir, PolicySet) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bench.toml"), policy_with(rules)).unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    (dir, set)
}

fn bench_decide(c: &mut Criterion) {
    let chain = vec!["bench".to_string()];
    let params: Map<String, Value> = match json!({"amount": 5000, "currency": "eur", "owner": "o"})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let actions: Vec<String> = (0..ACTIONS).map(action_name).collect();
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2025-01-06T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);

    let mut group = c.benchmark_group("decide");
    for rules in [1usize, 100, 1000] {
        let (dir, set) = load(rules);
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("set", rules), &rules, |b, _| {
            b.iter(|| {
                i = (i + 1) % ACTIONS;
                let req = ActionRequest {
                    chain: &chain,
                    action: &actions[i],
                    params: &params,
                    request: None,
                    now,
                };
                black_box(set.decide(black_box(&req)))
            })
        });
        let engine = PolicyEngine::new();
        engine.reload(dir.path()).unwrap();
        let run = RunContext {
            instance: "bench-run".into(),
            agent: "bench".into(),
            started_at: now,
        };
        group.bench_with_input(BenchmarkId::new("engine", rules), &rules, |b, _| {
            b.iter(|| {
                i = (i + 1) % ACTIONS;
                let req = ActionRequest {
                    chain: &chain,
                    action: &actions[i],
                    params: &params,
                    request: None,
                    now,
                };
                black_box(engine.decide(&run, black_box(&req)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
