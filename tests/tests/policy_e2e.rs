//! Policy decisions end to end: real agents through the real proxy against impersonated SaaS
//! APIs. Each test checks what the agent got, what reached the upstream, and what the audit
//! trail recorded, for allow / deny, human approvals (granted, denied, timed out, standing
//! grants), rate limits, run envelopes, live policy edits (good and broken), delegation, and the
//! offline `cordon policy test`.

use std::process::Output;
use std::time::{Duration, Instant};

use cordon_audit::AuditRecord;
use cordon_e2e::operator::{Background, Pending, ps, wait_for_pending};
use cordon_e2e::secrets::vault_set_stdin;
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{POLICY_FILE, PYTHON, show, stdout};
use cordon_e2e::{
    Method, Reply, World, cordon_bin, require_root_or_skip, run_with_timeout, wait_until,
    workspace_root,
};
use serde_json::{Value, json};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "no-branch-delete"
action = "github.branch.delete"
decision = "deny"
reason = "never delete branches"

[[rule]]
id = "merge-main-approval"
action = "github.pr.merge"
when = 'params.base == "main"'
decision = "approve"
approval_timeout = "20s"
reason = "merges to main need a human"

[[rule]]
id = "merge-release-quick-approval"
action = "github.pr.merge"
when = 'params.base == "release"'
decision = "approve"
approval_timeout = "2s"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[[rule]]
id = "big-charge-approval"
action = "stripe.charge.create"
when = "params.amount > 1000"
decision = "approve"
approval_timeout = "20s"

[[rule]]
id = "stripe"
action = "stripe.*"
decision = "allow"

[[limit]]
id = "charges"
action = "stripe.charge.create"
max = 30
per = "1m"
on_exceed = "deny"
"#;

/// Bound for an agent whose request waits for a human (longer than any wait in these tests).
const HELD: Duration = Duration::from_secs(40);
/// Bound for waiting on the daemon to notice something (a pending approval, a reload).
const NOTICE: Duration = Duration::from_secs(10);
/// PR numbers the fake GitHub knows, by the branch they merge into.
const PR_TO_MAIN: &str = "7";
const PR_TO_FEATURE: &str = "8";
const PR_TO_RELEASE: &str = "9";

/// A world on `policy` whose fake GitHub answers the merge enrichment for the PRs above.
fn world(policy: &str) -> World {
    let w = World::start(policy).unwrap();
    for (pr, base) in [
        (PR_TO_MAIN, "main"),
        (PR_TO_FEATURE, "feature/login"),
        (PR_TO_RELEASE, "release"),
    ] {
        w.https.route(
            Some(Method::GET),
            &format!("/repos/o/r/pulls/{pr}"),
            Reply::json(200, &json!({"number": pr, "base": {"ref": base}})),
        );
    }
    w
}

/// curl argv with a time limit and `-w` printing the status code on a last line of its own.
fn curl(max_time: u64, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "/usr/bin/curl",
        "-sS",
        "--max-time",
        &max_time.to_string(),
        "-w",
        "\n%{http_code}",
    ]
    .map(String::from)
    .into();
    v.extend(args.iter().map(|s| (*s).to_owned()));
    v
}

fn merge_args(pr: &str) -> Vec<String> {
    [
        "-X",
        "PUT",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"merge_method":"squash"}"#,
    ]
    .into_iter()
    .map(String::from)
    .chain([format!("https://api.github.com/repos/o/r/pulls/{pr}/merge")])
    .collect()
}

fn charge_args(amount: u64) -> Vec<String> {
    vec![
        "-X".into(),
        "POST".into(),
        "-d".into(),
        format!("amount={amount}&currency=usd"),
        "https://api.stripe.com/v1/charges".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Run curl in agent `agent` to completion: (status code, body, output).
fn curl_in(w: &World, agent: &str, max_time: u64, args: &[String]) -> (u16, String, Output) {
    let cmd = curl(max_time, &strs(args));
    let out = w.run(agent, &strs(&cmd)).unwrap();
    let (body, code) = split_code(&out);
    (code, body, out)
}

/// Start curl in agent `agent` without waiting for it.
fn curl_in_background(w: &World, agent: &str, max_time: u64, args: &[String]) -> Background {
    let cmd = curl(max_time, &strs(args));
    Background::start(w.agent(agent, &strs(&cmd)), HELD)
}

/// The body curl printed and the status code on the last line (0 if there is none).
fn split_code(out: &Output) -> (String, u16) {
    let text = stdout(out);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (body.to_owned(), code.trim().parse().unwrap_or(0))
}

/// A Cordon refusal body, checked to be one.
fn refusal(body: &str, out: &Output) -> Value {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("refusal is not JSON ({e}): {}", show(out)));
    assert_eq!(v["error"], "denied by policy", "{}", show(out));
    v
}

/// Requests the fake API received with this method and path.
fn received(w: &World, method: &str, path: &str) -> usize {
    w.https
        .received()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

fn merge_path(pr: &str) -> String {
    format!("/repos/o/r/pulls/{pr}/merge")
}

/// Records of `action` for `chain`, of event kind `kind` (`request`, `approval.granted`, ...).
fn kinds<'t>(t: &'t cordon_e2e::Trail, kind: &str, action: &str) -> Vec<&'t AuditRecord> {
    t.records()
        .iter()
        .filter(|r| r.kind.as_str() == kind && r.action.as_deref() == Some(action))
        .collect()
}

fn approve(w: &World, args: &[&str]) {
    let mut all = vec!["approve"];
    all.extend_from_slice(args);
    let out = w.daemon.cordon(&all).unwrap();
    assert!(out.status.success(), "cordon {all:?}: {}", show(&out));
}

/// Wait for the merge to be held for a human, checking the upstream has not merged meanwhile.
fn held_merge(w: &World, pr: &str) -> Pending {
    let p = wait_for_pending(&w.daemon, "github.pr.merge", NOTICE).unwrap();
    assert_eq!(p.params["number"], json!(pr), "{p:?}");
    assert_eq!(
        received(w, "PUT", &merge_path(pr)),
        0,
        "merged before approval"
    );
    p
}

#[test]
fn issue_create_is_allowed_and_branch_delete_is_denied_with_its_rule() {
    require_root_or_skip!();
    let w = world(POLICY);
    let create: Vec<String> = [
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"title":"flaky test"}"#,
        "https://api.github.com/repos/o/r/issues",
    ]
    .map(String::from)
    .into();
    let (code, _, out) = curl_in(&w, "bot", 10, &create);
    assert_eq!(code, 200, "{}", show(&out));

    let delete: Vec<String> = [
        "-X",
        "DELETE",
        "https://api.github.com/repos/o/r/git/refs/heads/release",
    ]
    .map(String::from)
    .into();
    let (code, body, out) = curl_in(&w, "bot", 10, &delete);
    assert_eq!(code, 403, "{}", show(&out));
    let v = refusal(&body, &out);
    assert_eq!(v["action"], "github.branch.delete");
    assert_eq!(v["rule"], "no-branch-delete");
    assert_eq!(v["reason"], "never delete branches");
    assert_eq!(v["params"]["branch"], "release");

    let seen = w.https.received();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/repos/o/r/issues")
    );
    assert_eq!(seen[0].body_text(), r#"{"title":"flaky test"}"#);

    let t = w.trail().unwrap().of_chain("bot");
    let created = t.one("github.issue.create", &[("title", json!("flaky test"))]);
    assert_eq!(
        (verdict(created), rule(created)),
        ("allow", "github"),
        "{t}"
    );
    let deleted = t.one("github.branch.delete", &[("branch", json!("release"))]);
    assert_eq!(
        (verdict(deleted), rule(deleted), deleted.seq),
        ("deny", "no-branch-delete", v["audit_id"].as_u64().unwrap()),
        "{t}"
    );
}

#[test]
fn merge_to_main_waits_for_approval_and_goes_through_when_approved() {
    require_root_or_skip!();
    let w = world(POLICY);
    let agent = curl_in_background(&w, "deployer", 30, &merge_args(PR_TO_MAIN));
    let p = held_merge(&w, PR_TO_MAIN);
    assert_eq!(p.agent, "deployer");
    assert_eq!(p.params["base"], "main", "{p:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!agent.is_finished(), "the agent did not wait for the human");
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_MAIN)), 0);

    approve(&w, &[&p.id]);
    let out = agent.join().unwrap();
    let (_, code) = split_code(&out);
    assert_eq!(code, 200, "{}", show(&out));
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_MAIN)), 1);
    assert!(
        no_approvals_pending(&w),
        "the approval is still listed after it was answered"
    );

    let t = w.trail().unwrap().of_chain("deployer");
    let asked = kinds(&t, "approval.requested", "github.pr.merge");
    assert_eq!(asked.len(), 1, "{t}");
    assert_eq!(
        (verdict(asked[0]), rule(asked[0])),
        ("pending", "merge-main-approval"),
        "{t}"
    );
    let granted = kinds(&t, "approval.granted", "github.pr.merge");
    assert_eq!(granted.len(), 1, "{t}");
    assert_eq!(verdict(granted[0]), "allow", "{t}");
    let approver = granted[0].approver.as_deref().unwrap_or("");
    assert!(approver.starts_with("root"), "approver {approver:?}:\n{t}");
    assert_eq!(granted[0].params.get("base"), Some(&json!("main")), "{t}");
}

fn no_approvals_pending(w: &World) -> bool {
    cordon_e2e::operator::pending(&w.daemon).unwrap().is_empty()
}

#[test]
fn merge_to_a_feature_branch_is_allowed_without_approval() {
    require_root_or_skip!();
    let w = world(POLICY);
    let started = Instant::now();
    let (code, _, out) = curl_in(&w, "deployer", 10, &merge_args(PR_TO_FEATURE));
    assert_eq!(code, 200, "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(8), "it waited");
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_FEATURE)), 1);
    // The base branch came from asking the upstream about the PR first.
    assert_eq!(received(&w, "GET", "/repos/o/r/pulls/8"), 1);

    let t = w.trail().unwrap().of_chain("deployer");
    let merge = t.one("github.pr.merge", &[("base", json!("feature/login"))]);
    assert_eq!((verdict(merge), rule(merge)), ("allow", "github"), "{t}");
    assert!(
        kinds(&t, "approval.requested", "github.pr.merge").is_empty(),
        "{t}"
    );
}

#[test]
fn denied_approval_reports_who_denied_it() {
    require_root_or_skip!();
    let w = world(POLICY);
    let agent = curl_in_background(&w, "deployer", 30, &merge_args(PR_TO_MAIN));
    let p = held_merge(&w, PR_TO_MAIN);
    let out = w
        .daemon
        .cordon(&["deny", &p.id, "--reason", "release freeze"])
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));

    let out = agent.join().unwrap();
    let (body, code) = split_code(&out);
    assert_eq!(code, 403, "{}", show(&out));
    let v = refusal(&body, &out);
    let reason = v["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("denied by root") && reason.ends_with(": release freeze"),
        "{reason:?}"
    );
    assert_eq!(v["rule"], "merge-main-approval");
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_MAIN)), 0);

    let t = w.trail().unwrap().of_chain("deployer");
    let denied = kinds(&t, "approval.denied", "github.pr.merge");
    assert_eq!(denied.len(), 1, "{t}");
    assert_eq!(verdict(denied[0]), "deny", "{t}");
    assert!(
        denied[0]
            .approver
            .as_deref()
            .is_some_and(|a| a.starts_with("root")),
        "{t}"
    );
    assert_eq!(denied[0].reason.as_deref(), Some(reason), "{t}");
    assert!(kinds(&t, "approval.granted", "github.pr.merge").is_empty());
}

#[test]
fn an_approval_that_times_out_reports_so() {
    require_root_or_skip!();
    let w = world(POLICY);
    let started = Instant::now();
    let agent = curl_in_background(&w, "deployer", 30, &merge_args(PR_TO_RELEASE));
    let p = held_merge(&w, PR_TO_RELEASE);
    assert_eq!(p.params["base"], "release", "{p:?}");

    let out = agent.join().unwrap();
    let waited = started.elapsed();
    let (body, code) = split_code(&out);
    assert_eq!(code, 403, "{}", show(&out));
    let v = refusal(&body, &out);
    assert_eq!(v["reason"], "approval timed out");
    assert_eq!(v["rule"], "merge-release-quick-approval");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(15),
        "answered after {waited:?}, the rule says 2s"
    );
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_RELEASE)), 0);
    assert!(no_approvals_pending(&w), "a timed-out approval is listed");
    // Too late: the id no longer exists.
    let late = w.daemon.cordon(&["approve", &p.id]).unwrap();
    assert!(!late.status.success(), "{}", show(&late));

    let t = w.trail().unwrap().of_chain("deployer");
    let expired = kinds(&t, "approval.expired", "github.pr.merge");
    assert_eq!(expired.len(), 1, "{t}");
    assert_eq!(
        (verdict(expired[0]), expired[0].reason.as_deref()),
        ("deny", Some("approval timed out")),
        "{t}"
    );
}

#[test]
fn approve_for_a_duration_grants_the_same_action_again() {
    require_root_or_skip!();
    let w = world(POLICY);
    let agent = curl_in_background(&w, "deployer", 30, &merge_args(PR_TO_MAIN));
    let p = held_merge(&w, PR_TO_MAIN);
    approve(&w, &[&p.id, "--for", "10m"]);
    let out = agent.join().unwrap();
    assert_eq!(split_code(&out).1, 200, "{}", show(&out));

    // The same merge again, in a new run of the same agent: no human this time. A held
    // request would outlive curl's 8 s and fail.
    let (code, _, out) = curl_in(&w, "deployer", 8, &merge_args(PR_TO_MAIN));
    assert_eq!(code, 200, "{}", show(&out));
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_MAIN)), 2);

    // A grant never reaches another agent.
    let other = curl_in_background(&w, "intruder", 30, &merge_args(PR_TO_MAIN));
    let q = wait_for_pending(&w.daemon, "github.pr.merge", NOTICE).unwrap();
    assert_eq!(q.agent, "intruder");
    let denied = w.daemon.cordon(&["deny", &q.id]).unwrap();
    assert!(denied.status.success(), "{}", show(&denied));
    assert_eq!(split_code(&other.join().unwrap()).1, 403);
    assert_eq!(received(&w, "PUT", &merge_path(PR_TO_MAIN)), 2);

    let t = w.trail().unwrap().of_chain("deployer");
    assert_eq!(
        kinds(&t, "approval.requested", "github.pr.merge").len(),
        1,
        "{t}"
    );
    let merges = kinds(&t, "request", "github.pr.merge");
    assert_eq!(merges.len(), 2, "{t}");
    assert_eq!(verdict(merges[1]), "allow", "{t}");
    assert!(rule(merges[1]).starts_with("grant:"), "{t}");
}

#[test]
fn large_charge_waits_for_approval_and_small_charge_does_not() {
    require_root_or_skip!();
    let w = world(POLICY);
    let (code, _, out) = curl_in(&w, "support", 10, &charge_args(500));
    assert_eq!(code, 200, "{}", show(&out));
    assert_eq!(received(&w, "POST", "/v1/charges"), 1);

    let agent = curl_in_background(&w, "support", 30, &charge_args(5000));
    let p = wait_for_pending(&w.daemon, "stripe.charge.create", NOTICE).unwrap();
    assert_eq!(p.params["amount"], json!(5000), "{p:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        received(&w, "POST", "/v1/charges"),
        1,
        "the large charge went through before approval"
    );
    approve(&w, &[&p.id]);
    let out = agent.join().unwrap();
    assert_eq!(split_code(&out).1, 200, "{}", show(&out));
    let charges: Vec<String> = w
        .https
        .received()
        .iter()
        .filter(|r| r.path == "/v1/charges")
        .map(|r| r.body_text())
        .collect();
    assert_eq!(
        charges,
        ["amount=500&currency=usd", "amount=5000&currency=usd"]
    );

    let t = w.trail().unwrap().of_chain("support");
    let small = t.one("stripe.charge.create", &[("amount", json!(500))]);
    assert_eq!((verdict(small), rule(small)), ("allow", "stripe"), "{t}");
    let asked = kinds(&t, "approval.requested", "stripe.charge.create");
    assert_eq!(asked.len(), 1, "{t}");
    assert_eq!(asked[0].params.get("amount"), Some(&json!(5000)), "{t}");
    assert_eq!(rule(asked[0]), "big-charge-approval", "{t}");
    assert_eq!(
        kinds(&t, "approval.granted", "stripe.charge.create").len(),
        1,
        "{t}"
    );
}

/// 31 small charges from one process; one line each: `<status>` or `<status> <refusal JSON>`.
const CHARGE_LOOP: &str = r#"
import urllib.request, urllib.error
for i in range(31):
    req = urllib.request.Request("https://api.stripe.com/v1/charges",
                                 data=b"amount=100&currency=usd", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(r.status, flush=True)
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode(), flush=True)
"#;

#[test]
fn the_31st_charge_in_a_minute_is_refused_by_the_limit() {
    require_root_or_skip!();
    let w = world(POLICY);
    let out = w.python("support", CHARGE_LOOP, &[]).unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 31, "{}", show(&out));
    assert!(lines[..30].iter().all(|l| *l == "200"), "{}", show(&out));
    let (code, body) = lines[30].split_once(' ').unwrap_or((lines[30], ""));
    assert_eq!(code, "403", "{}", show(&out));
    let v = refusal(body, &out);
    assert_eq!(v["rule"], "limit:charges", "{body}");
    assert_eq!(v["action"], "stripe.charge.create");
    assert_eq!(received(&w, "POST", "/v1/charges"), 30);

    let t = w.trail().unwrap().of_chain("support");
    let charges = t.matching("stripe.charge.create", &[]);
    assert_eq!(charges.len(), 31, "{t}");
    assert!(
        charges[..30]
            .iter()
            .all(|r| verdict(r) == "allow" && rule(r) == "stripe"),
        "{t}"
    );
    let hit = charges[30];
    assert_eq!(
        (hit.kind.as_str(), verdict(hit), rule(hit)),
        ("limit.hit", "deny", "limit:charges"),
        "{t}"
    );
}

#[test]
fn envelope_max_actions_freezes_the_run() {
    require_root_or_skip!();
    let w = world(&format!("{POLICY}\n[envelope]\nmax_actions = 3\n"));
    // Pinned address: no DNS decisions, so the run's actions are exactly these requests.
    // After its requests the agent would idle and then say so, unless it is stopped.
    let pin = format!("api.github.com:443:{}", w.ns.v4());
    let script = "/usr/bin/curl -sS --max-time 10 -o /dev/null --resolve \"$0\" \
        https://api.github.com/repos/o/r/issues/1 https://api.github.com/repos/o/r/issues/2 \
        https://api.github.com/repos/o/r/issues/3 https://api.github.com/repos/o/r/issues/4; \
        sleep 20; echo survived";
    let started = Instant::now();
    let agent = Background::start(w.agent("bot", &["/bin/sh", "-c", script, &pin]), HELD);

    wait_until("the run to be stopped", NOTICE, || {
        ps(&w.daemon)
            .unwrap()
            .iter()
            .any(|r| r.agent == "bot" && (r.state == "killed" || r.state == "frozen"))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", ps(&w.daemon)));
    let row = ps(&w.daemon)
        .unwrap()
        .into_iter()
        .find(|r| r.agent == "bot")
        .unwrap();
    assert_eq!((row.allowed, row.denied), (3, 1), "{row:?}");
    let paths: Vec<String> = w.https.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/repos/o/r/issues/1",
            "/repos/o/r/issues/2",
            "/repos/o/r/issues/3"
        ]
    );

    let term = w.daemon.cordon(&["terminate", "bot"]).unwrap();
    assert!(term.status.success(), "{}", show(&term));
    let out = agent.join().unwrap();
    assert!(
        !stdout(&out).contains("survived") && started.elapsed() < Duration::from_secs(20),
        "the run went on after its envelope was exceeded: {}",
        show(&out)
    );
    assert_eq!(w.https.count(), 3);

    let t = w.trail().unwrap().of_chain("bot");
    let reads = t.matching("github.issue.read", &[]);
    assert_eq!(reads.len(), 4, "{t}");
    assert!(reads[..3].iter().all(|r| verdict(r) == "allow"), "{t}");
    assert_eq!(
        (reads[3].kind.as_str(), verdict(reads[3]), rule(reads[3])),
        ("envelope.exceeded", "deny", "envelope:max_actions"),
        "{t}"
    );
    assert_eq!(reads[3].params.get("number"), Some(&json!("4")), "{t}");
}

/// Files an issue every 100 ms; one line each: `<i> <status>` or `<i> <status> <refusal>`.
/// Stops after three refusals (or 150 tries).
const ISSUE_LOOP: &str = r#"
import json, time, urllib.request, urllib.error
refused = 0
for i in range(150):
    req = urllib.request.Request("https://api.github.com/repos/o/r/issues",
                                 data=json.dumps({"title": "t%d" % i}).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(i, r.status, flush=True)
    except urllib.error.HTTPError as e:
        print(i, e.code, e.read().decode(), flush=True)
        refused += 1
        if refused == 3:
            break
    time.sleep(0.1)
"#;

#[test]
fn editing_a_policy_while_an_agent_runs_changes_the_next_decision() {
    require_root_or_skip!();
    let w = world(POLICY);
    let agent = Background::start(w.agent("bot", &[PYTHON, "-c", ISSUE_LOOP]), HELD);
    w.https.wait_for_count(2, NOTICE).unwrap();
    let frozen = POLICY.replace(
        "[[rule]]\nid = \"github\"",
        "[[rule]]\nid = \"issues-frozen\"\naction = \"github.issue.create\"\n\
         decision = \"deny\"\nreason = \"no new issues during the audit\"\n\n\
         [[rule]]\nid = \"github\"",
    );
    assert_ne!(frozen, POLICY);
    w.policies.write(POLICY_FILE, &frozen).unwrap();

    let out = agent.join().unwrap();
    let text = stdout(&out);
    let lines: Vec<(&str, &str)> = text
        .lines()
        .map(|l| {
            let (_, rest) = l.split_once(' ').unwrap_or(("", l));
            rest.split_once(' ').unwrap_or((rest, ""))
        })
        .collect();
    let first_refusal = lines
        .iter()
        .position(|(code, _)| *code == "403")
        .unwrap_or_else(|| panic!("never refused after the edit: {}", show(&out)));
    assert!(first_refusal >= 2, "{}", show(&out));
    assert!(
        lines[..first_refusal].iter().all(|(c, _)| *c == "200"),
        "{}",
        show(&out)
    );
    assert_eq!(lines.len() - first_refusal, 3, "{}", show(&out));
    for (code, body) in &lines[first_refusal..] {
        assert_eq!(
            *code,
            "403",
            "allowed again after a refusal: {}",
            show(&out)
        );
        let v = refusal(body, &out);
        assert_eq!(v["rule"], "issues-frozen", "{body}");
        assert_eq!(v["reason"], "no new issues during the audit", "{body}");
    }
    assert_eq!(received(&w, "POST", "/repos/o/r/issues"), first_refusal);

    let full = w.trail().unwrap();
    let reloads = full.matching("policy.reload", &[]);
    assert!(
        reloads.iter().any(|r| verdict(r) == "allow"
            && r.reason
                .as_deref()
                .is_some_and(|s| s.contains("file change"))),
        "{full}"
    );
    let t = full.of_chain("bot");
    let creates = t.matching("github.issue.create", &[]);
    assert_eq!(creates.len(), first_refusal + 3, "{t}");
    let (before, after) = creates.split_at(first_refusal);
    assert!(before.iter().all(|r| verdict(r) == "allow"), "{t}");
    assert!(
        after
            .iter()
            .all(|r| verdict(r) == "deny" && rule(r) == "issues-frozen"),
        "{t}"
    );
    assert_ne!(
        before[0].policy_version, after[0].policy_version,
        "decided by the same policy version:\n{t}"
    );
}

#[test]
fn a_broken_policy_edit_changes_nothing_and_is_reported_with_its_line() {
    require_root_or_skip!();
    let w = world(POLICY);
    // An edit meant to allow branch deletes, with an unterminated string.
    let broken = POLICY.replacen(
        "decision = \"deny\"\nreason = \"never delete branches\"",
        "decision = \"allow\"\nreason = \"branches may go",
        1,
    );
    assert_ne!(broken, POLICY);
    let line = broken
        .lines()
        .position(|l| l == "reason = \"branches may go")
        .unwrap()
        + 1;
    let at = format!("{POLICY_FILE}:{line}:");
    w.policies.write(POLICY_FILE, &broken).unwrap();

    // The daemon notices the change by itself and rejects it.
    wait_until("the daemon to reject the edit", NOTICE, || {
        w.trail()
            .unwrap()
            .matching("policy.reload", &[])
            .iter()
            .any(|r| verdict(r) == "deny")
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", w.daemon.log()));
    let log = w.daemon.log();
    assert!(log.contains(&at), "daemon log lacks {at}:\n{log}");
    let full = w.trail().unwrap();
    let rejected = full
        .matching("policy.reload", &[])
        .into_iter()
        .find(|r| verdict(r) == "deny")
        .unwrap();
    assert!(
        rejected.reason.as_deref().is_some_and(|r| r.contains(&at)),
        "{full}"
    );

    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(!reload.status.success(), "{}", show(&reload));
    let err = String::from_utf8_lossy(&reload.stderr);
    assert!(
        err.contains(&at),
        "`cordon policy reload` lacks {at}: {}",
        show(&reload)
    );

    // The old policy still decides.
    let delete: Vec<String> = [
        "-X",
        "DELETE",
        "https://api.github.com/repos/o/r/git/refs/heads/main",
    ]
    .map(String::from)
    .into();
    let (code, body, out) = curl_in(&w, "bot", 10, &delete);
    assert_eq!(code, 403, "{}", show(&out));
    assert_eq!(refusal(&body, &out)["rule"], "no-branch-delete");
    let read = vec!["https://api.github.com/repos/o/r/issues/1".to_owned()];
    let (code, _, out) = curl_in(&w, "bot", 10, &read);
    assert_eq!(code, 200, "{}", show(&out));
    assert_eq!(received(&w, "DELETE", "/repos/o/r/git/refs/heads/main"), 0);

    let t = w.trail().unwrap().of_chain("bot");
    let del = t.one("github.branch.delete", &[("branch", json!("main"))]);
    assert_eq!(
        (verdict(del), rule(del)),
        ("deny", "no-branch-delete"),
        "{t}"
    );
}

const PARENT_POLICY: &str = r#"
agents = ["parent"]
default = "deny"

[[rule]]
id = "parent-dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "parent-no-new-issues"
action = "github.issue.create"
decision = "deny"
reason = "the parent may not file issues"

[[rule]]
id = "parent-github"
action = "github.*"
decision = "allow"
"#;

const CHILD_POLICY: &str = r#"
agents = ["child"]
default = "deny"

[[rule]]
id = "child-dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "child-github"
action = "github.*"
decision = "allow"
"#;

/// `$0` is the cordon binary, `$1` the state dir: the parent starts the child twice.
const DELEGATE: &str = r#"
"$0" run --agent child --state-dir "$1" -- /usr/bin/curl -sS --max-time 10 -w '\n' \
    -X POST -H 'content-type: application/json' -d '{"title":"from child"}' \
    https://api.github.com/repos/o/r/issues
"$0" run --agent child --state-dir "$1" -- /usr/bin/curl -sS --max-time 10 -o /dev/null \
    -w 'read %{http_code}\n' https://api.github.com/repos/o/r/issues/5
"#;

#[test]
fn a_sub_agent_cannot_do_what_its_parent_may_not_and_its_records_carry_the_chain() {
    require_root_or_skip!();
    let w = world(PARENT_POLICY);
    w.policies.write("child.toml", CHILD_POLICY).unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));

    let bin = cordon_bin();
    let state = w.daemon.state_dir().to_str().unwrap().to_owned();
    let out = w
        .run(
            "parent",
            &["/bin/sh", "-c", DELEGATE, bin.to_str().unwrap(), &state],
        )
        .unwrap();
    let text = stdout(&out);
    let mut lines = text.lines();
    let body = lines.next().unwrap_or("");
    let v = refusal(body, &out);
    assert_eq!(v["action"], "github.issue.create");
    assert_eq!(v["rule"], "parent-no-new-issues");
    assert_eq!(lines.next(), Some("read 200"), "{}", show(&out));

    let seen: Vec<(String, String)> = w
        .https
        .received()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(seen, [("GET".to_owned(), "/repos/o/r/issues/5".to_owned())]);

    let t = w.trail().unwrap().of_chain("parent/child");
    let create = t.one("github.issue.create", &[("title", json!("from child"))]);
    assert_eq!(
        (verdict(create), rule(create)),
        ("deny", "parent-no-new-issues"),
        "{t}"
    );
    assert_eq!(create.agent.as_deref(), Some("child"), "{t}");
    let read = t.one("github.issue.read", &[("number", json!("5"))]);
    assert_eq!(verdict(read), "allow", "{t}");
    assert!(
        w.trail()
            .unwrap()
            .of_chain("child")
            .matching("github.issue.create", &[])
            .is_empty(),
        "a record lost its chain"
    );
}

#[test]
fn policy_test_cli_explains_a_decision_offline() {
    require_root_or_skip!();
    let policies = workspace_root().join("policies");
    let policies = policies.to_str().unwrap();
    let test = |method: &str, url: &str| {
        let mut cmd = std::process::Command::new(cordon_bin());
        cmd.args([
            "policy",
            "test",
            "--agent",
            "deployer",
            method,
            url,
            "--explain",
            "--policies",
            policies,
        ]);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(20)).unwrap();
        assert!(out.status.success(), "{}", show(&out));
        stdout(&out)
    };
    let field = |text: &str, name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };

    let text = test(
        "DELETE",
        "https://api.github.com/repos/o/r/git/refs/heads/feature/x",
    );
    assert_eq!(field(&text, "action"), "github.branch.delete", "{text}");
    assert_eq!(field(&text, "decision"), "deny", "{text}");
    assert_eq!(field(&text, "rule"), "no-branch-delete", "{text}");
    assert_eq!(field(&text, "reason"), "never delete branches", "{text}");
    let params: Value = serde_json::from_str(&field(&text, "params")).unwrap();
    assert_eq!(
        params,
        json!({"owner": "o", "repo": "r", "branch": "feature/x"})
    );
    // --explain lists the rule that decided as matched, with where it is written.
    let considered: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("rules considered"))
        .collect();
    let decided = considered
        .iter()
        .find(|l| l.contains("no-branch-delete"))
        .unwrap_or_else(|| panic!("no-branch-delete not explained:\n{text}"));
    assert!(decided.trim_start().starts_with('*'), "{decided}");
    assert!(decided.contains("deployer.toml"), "{decided}");
    assert!(
        considered
            .iter()
            .any(|l| l.contains("gh-work") && l.trim_start().starts_with('*')),
        "the broader allow also matches and must be shown as losing:\n{text}"
    );

    // The same agent filing an issue: allowed by the ordinary rule.
    let text = test("POST", "https://api.github.com/repos/o/r/issues");
    assert_eq!(field(&text, "action"), "github.issue.create", "{text}");
    assert_eq!(field(&text, "decision"), "allow", "{text}");
    assert_eq!(field(&text, "rule"), "gh-work", "{text}");
}

#[test]
fn a_request_held_across_a_reload_is_decided_and_recorded_under_the_generation_it_started_in() {
    require_root_or_skip!();
    // Generation one binds GitHub to one vault entry; generation two forbids
    // merges and binds another entry.
    let v1 = format!("{POLICY}\n[credentials]\ngithub = \"gh-old\"\n");
    let w = world(&v1);
    for (name, value) in [
        ("gh-old", "old-secret-0123456789"),
        ("gh-new", "new-secret-0123456789"),
    ] {
        let set = vault_set_stdin(&w.daemon, name, "token", value).unwrap();
        assert!(set.status.success(), "{}", show(&set));
    }
    let agent = curl_in_background(&w, "deployer", 30, &merge_args(PR_TO_MAIN));
    let p = held_merge(&w, PR_TO_MAIN);

    let v2 = v1
        .replace(
            "[[rule]]\nid = \"merge-main-approval\"",
            "[[rule]]\nid = \"merges-forbidden\"\naction = \"github.pr.merge\"\ndecision = \"deny\"\n\n\
             [[rule]]\nid = \"merge-main-approval\"",
        )
        .replace("github = \"gh-old\"", "github = \"gh-new\"");
    assert_ne!(v2, v1);
    w.policies.write(POLICY_FILE, &v2).unwrap();
    let reload = w.daemon.cordon(&["policy", "reload"]).unwrap();
    assert!(reload.status.success(), "{}", show(&reload));

    // The held request was decided when its head was complete: the human's
    // answer completes that decision, and the credential is the one that
    // generation binds, not the one in force when it leaves.
    approve(&w, &[&p.id]);
    let out = agent.join().unwrap();
    assert_eq!(split_code(&out).1, 200, "{}", show(&out));
    let merges: Vec<_> = w
        .https
        .received()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path == merge_path(PR_TO_MAIN))
        .collect();
    assert_eq!(merges.len(), 1);
    assert_eq!(
        merges[0].header("authorization"),
        Some("Bearer old-secret-0123456789")
    );

    // A merge asked after the reload is decided under the new generation.
    let (code, body, out) = curl_in(&w, "deployer", 10, &merge_args(PR_TO_MAIN));
    assert_eq!(code, 403, "{}", show(&out));
    assert_eq!(refusal(&body, &out)["rule"], "merges-forbidden");

    let t = w.trail().unwrap().of_chain("deployer");
    let asked = kinds(&t, "approval.requested", "github.pr.merge");
    let granted = kinds(&t, "approval.granted", "github.pr.merge");
    assert_eq!((asked.len(), granted.len()), (1, 1), "{t}");
    assert_eq!(granted[0].policy_version, asked[0].policy_version, "{t}");
    let denied: Vec<_> = t
        .matching("github.pr.merge", &[])
        .into_iter()
        .filter(|r| rule(r) == "merges-forbidden")
        .collect();
    assert_eq!(denied.len(), 1, "{t}");
    assert_ne!(
        denied[0].policy_version, granted[0].policy_version,
        "the reload did not change the generation:\n{t}"
    );
}
