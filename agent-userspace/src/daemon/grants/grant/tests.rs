use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T06:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn chain(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| (*s).to_string()).collect()
}

fn grant(ask: GrantAsk) -> Option<Grant> {
    let c = chain(&["orch", "bot"]);
    let p = params(json!({"number": "7", "base": "main"}));
    Grant::from_answer(
        Source {
            id: "g1".into(),
            chain: &c,
            action: "github.pr.merge",
            params: &p,
            approval: "a1",
            rule: "merge-main",
            by: "root",
        },
        ask,
        t0(),
    )
}

#[test]
fn once_and_one_use_make_no_standing_grant() {
    assert_eq!(grant(GrantAsk::default()), None);
    let one = GrantAsk {
        uses: Some(1),
        ..GrantAsk::default()
    };
    assert_eq!(grant(one), None);
}

#[test]
fn n_uses_count_the_approved_request_as_the_first() {
    let mut g = grant(GrantAsk {
        uses: Some(3),
        ..GrantAsk::default()
    })
    .unwrap();
    assert_eq!((g.uses_left, g.uses, g.until), (Some(2), Some(3), None));
    assert_eq!(g.describe(), "2 of 3 uses left");
    assert_eq!(g.take(), Taken::Left(1));
    assert_eq!(g.take(), Taken::Exhausted);
    let any = params(json!({"number": "7", "base": "main"}));
    assert!(!g.covers(&chain(&["orch", "bot"]), "github.pr.merge", &any, t0()));
}

#[test]
fn a_grant_covers_only_its_chain_and_action_name() {
    let g = grant(GrantAsk {
        for_secs: Some(600),
        ..GrantAsk::default()
    })
    .unwrap();
    let p = params(json!({"number": "8"}));
    let at = t0() + Duration::minutes(9);
    assert!(g.covers(&chain(&["orch", "bot"]), "github.pr.merge", &p, at));
    assert!(!g.covers(&chain(&["bot"]), "github.pr.merge", &p, at));
    assert!(!g.covers(&chain(&["orch", "bot", "sub"]), "github.pr.merge", &p, at));
    assert!(!g.covers(&chain(&["orch", "bot"]), "github.pr.close", &p, at));
    // The action is a name, not a pattern.
    let mut star = g.clone();
    star.action = "github.*".into();
    assert!(!star.covers(&chain(&["orch", "bot"]), "github.pr.merge", &p, at));
}

#[test]
fn a_time_grant_ends_at_its_deadline_and_has_no_use_count() {
    let mut g = grant(GrantAsk {
        for_secs: Some(600),
        ..GrantAsk::default()
    })
    .unwrap();
    let p = Map::new();
    let c = chain(&["orch", "bot"]);
    assert_eq!(g.take(), Taken::Unlimited);
    assert!(!g.expired(t0() + Duration::seconds(599)));
    assert!(g.expired(t0() + Duration::seconds(600)));
    assert!(!g.covers(&c, "github.pr.merge", &p, t0() + Duration::seconds(600)));
    assert_eq!(g.describe(), "until 2026-12-05T06:10:00Z");
}

#[test]
fn uses_and_time_together_end_at_whichever_comes_first() {
    let mut g = grant(GrantAsk {
        uses: Some(2),
        for_secs: Some(60),
        ..GrantAsk::default()
    })
    .unwrap();
    let c = chain(&["orch", "bot"]);
    let p = Map::new();
    assert!(!g.covers(&c, "github.pr.merge", &p, t0() + Duration::seconds(61)));
    assert!(g.covers(&c, "github.pr.merge", &p, t0()));
    assert_eq!(g.take(), Taken::Exhausted);
    assert!(!g.covers(&c, "github.pr.merge", &p, t0()));
}

#[test]
fn a_params_scoped_grant_needs_exactly_the_approved_params() {
    let g = grant(GrantAsk {
        uses: Some(5),
        same_params: true,
        ..GrantAsk::default()
    })
    .unwrap();
    let c = chain(&["orch", "bot"]);
    let same = params(json!({"base": "main", "number": "7"}));
    let other = params(json!({"base": "main", "number": "8"}));
    let more = params(json!({"base": "main", "number": "7", "x": 1}));
    assert!(g.covers(&c, "github.pr.merge", &same, t0()));
    assert!(!g.covers(&c, "github.pr.merge", &other, t0()));
    assert!(!g.covers(&c, "github.pr.merge", &more, t0()));
}

#[test]
fn a_grant_survives_its_stored_form() {
    let g = grant(GrantAsk {
        uses: Some(4),
        for_secs: Some(3600),
        same_params: true,
    })
    .unwrap();
    let text = serde_json::to_string(&g).unwrap();
    assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), g);
}
