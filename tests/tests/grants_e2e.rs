//! Grants end to end: a real daemon, real agents in cgroups, a fake GitHub that counts what
//! reached it. An operator answers a held merge with N uses, a duration or "always", and the
//! test checks which later merges went through without asking, that a revoked or expired
//! grant stops, that grants survive a daemon restart, that "always" is a policy file that
//! `cordon policy check` accepts and a reload keeps, and that the trail holds each step.

use std::process::Output;
use std::time::Duration;

use cordon_audit::AuditRecord;
use cordon_e2e::full_disk::FullDisk;
use cordon_e2e::operator::{Background, Pending, pending, wait_for_pending};
use cordon_e2e::secrets::vault_set_stdin;
use cordon_e2e::trail::{rule, verdict};
use cordon_e2e::world::{PYTHON, show, stdout};
use cordon_e2e::{Method, Reply, Trail, World, cordon_bin, require_root_or_skip, wait_until};
use serde_json::{Value, json};

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "merge-main-approval"
action = "github.pr.merge"
when = 'params.base == "main"'
decision = "approve"
approval_timeout = "20s"
reason = "merges to main need a human"

[[rule]]
id = "github"
action = "github.*"
decision = "allow"

[credentials]
github = "deploy-github"
"#;

const PR: &str = "7";
const AGENT: &str = "deployer";
/// Bound for waiting on the daemon to notice something.
const NOTICE: Duration = Duration::from_secs(10);
/// curl's limit for a merge expected to go through without a human: a held merge outlives it.
const UNHELD: u64 = 8;

fn world() -> World {
    let w = World::start(POLICY).unwrap();
    w.https.route(
        Some(Method::GET),
        &format!("/repos/o/r/pulls/{PR}"),
        Reply::json(200, &json!({"number": PR, "base": {"ref": "main"}})),
    );
    let set =
        vault_set_stdin(&w.daemon, "deploy-github", "token", "ghp-deploy-0123456789").unwrap();
    assert!(set.status.success(), "{}", show(&set));
    w
}

fn merge_argv(max_time: u64) -> Vec<String> {
    [
        "/usr/bin/curl",
        "-sS",
        "--max-time",
        &max_time.to_string(),
        "-w",
        "\n%{http_code}",
        "-X",
        "PUT",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"merge_method":"squash"}"#,
        &format!("https://api.github.com/repos/o/r/pulls/{PR}/merge"),
    ]
    .map(String::from)
    .into()
}

fn code(out: &Output) -> u16 {
    let text = stdout(out);
    let last = text.rsplit_once('\n').map_or(text.as_str(), |(_, c)| c);
    last.trim().parse().unwrap_or(0)
}

/// A merge by the agent, to completion; its HTTP status.
fn merge(w: &World, max_time: u64) -> (u16, Output) {
    let argv = merge_argv(max_time);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = w.run(AGENT, &argv).unwrap();
    (code(&out), out)
}

/// A merge started in the background, to be held for a human.
fn merge_in_background(w: &World) -> Background {
    let argv = merge_argv(30);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Background::start(w.agent(AGENT, &argv), Duration::from_secs(40))
}

/// Merges the fake GitHub received.
fn merged(w: &World) -> usize {
    let path = format!("/repos/o/r/pulls/{PR}/merge");
    w.https
        .received()
        .iter()
        .filter(|r| r.method == "PUT" && r.path == path)
        .count()
}

fn held(w: &World) -> Pending {
    wait_for_pending(&w.daemon, "github.pr.merge", NOTICE).unwrap()
}

fn cordon_ok(w: &World, args: &[&str]) -> String {
    let out = w.daemon.cordon(args).unwrap();
    assert!(out.status.success(), "cordon {args:?}: {}", show(&out));
    stdout(&out)
}

/// A held merge answered with `answer` (e.g. `--uses 3`); the held merge goes through.
fn approve_held(w: &World, answer: &[&str]) -> Pending {
    let agent = merge_in_background(w);
    let p = held(w);
    let mut args = vec!["approve", p.id.as_str()];
    args.extend_from_slice(answer);
    cordon_ok(w, &args);
    let out = agent.join().unwrap();
    assert_eq!(code(&out), 200, "{}", show(&out));
    p
}

/// A merge that must be held again: it is, nothing reaches GitHub, and it is denied.
fn asks_again(w: &World) {
    let before = merged(w);
    let agent = merge_in_background(w);
    let p = held(w);
    assert_eq!(merged(w), before, "a merge went through without a human");
    cordon_ok(w, &["deny", &p.id]);
    assert_eq!(code(&agent.join().unwrap()), 403);
    assert_eq!(merged(w), before);
}

fn grants(w: &World) -> Vec<Value> {
    let text = cordon_ok(w, &["grants", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("grants --json ({e}): {text}"))
}

fn of_kind<'t>(t: &'t Trail, kind: &str) -> Vec<&'t AuditRecord> {
    t.records()
        .iter()
        .filter(|r| r.kind.as_str() == kind)
        .collect()
}

#[test]
fn an_approval_shows_the_rule_the_credential_name_and_how_long_it_was_held() {
    require_root_or_skip!();
    let w = world();
    let agent = merge_in_background(&w);
    let p = held(&w);
    std::thread::sleep(Duration::from_millis(1500));
    let text = cordon_ok(&w, &["approvals", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    let row = &rows[0];
    assert_eq!(row["id"], json!(p.id), "{text}");
    assert_eq!(row["chain"], "deployer", "{text}");
    assert_eq!(row["action"], "github.pr.merge", "{text}");
    assert_eq!(row["params"]["base"], "main", "{text}");
    assert_eq!(row["rule"], "merge-main-approval", "{text}");
    assert_eq!(row["reason"], "merges to main need a human", "{text}");
    assert_eq!(row["credential"], "deploy-github", "{text}");
    assert!(row["held_secs"].as_i64().unwrap() >= 1, "{text}");
    assert!(
        !text.contains("ghp-deploy"),
        "a credential value is shown: {text}"
    );
    let table = cordon_ok(&w, &["approvals"]);
    assert!(table.contains("rule merge-main-approval"), "{table}");
    assert!(
        table.contains("credential: vault entry deploy-github"),
        "{table}"
    );
    cordon_ok(&w, &["deny", &p.id]);
    assert_eq!(code(&agent.join().unwrap()), 403);
}

#[test]
fn three_uses_let_the_approved_merge_and_two_more_through_and_the_fourth_asks_again() {
    require_root_or_skip!();
    let w = world();
    let p = approve_held(&w, &["--uses", "3"]);
    let listed = grants(&w);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            &listed[0]["uses_left"],
            &listed[0]["uses"],
            &listed[0]["approval"]
        ),
        (&json!(2), &json!(3), &json!(p.id)),
        "{listed:?}"
    );
    let table = cordon_ok(&w, &["grants"]);
    assert!(table.contains("2/3"), "{table}");

    for _ in 0..2 {
        let (status, out) = merge(&w, UNHELD);
        assert_eq!(status, 200, "{}", show(&out));
    }
    assert_eq!(merged(&w), 3);
    assert!(grants(&w).is_empty(), "an exhausted grant is listed");
    asks_again(&w);
    assert_eq!(merged(&w), 3);

    let t = w.trail().unwrap().of_chain(AGENT);
    let given = of_kind(&t, "grant.granted");
    assert_eq!(given.len(), 1, "{t}");
    assert!(
        given[0]
            .approver
            .as_deref()
            .unwrap_or("")
            .starts_with("root"),
        "{t}"
    );
    let id = rule(given[0]).to_string();
    assert!(id.starts_with("grant:"), "{t}");
    let used = of_kind(&t, "grant.used");
    assert_eq!(used.len(), 2, "{t}");
    assert!(
        used.iter().all(|r| rule(r) == id && verdict(r) == "allow"),
        "{t}"
    );
    let exhausted = of_kind(&t, "grant.exhausted");
    assert_eq!(exhausted.len(), 1, "{t}");
    assert_eq!(rule(exhausted[0]), id, "{t}");
    assert!(exhausted[0].seq > used[1].seq, "{t}");
    assert_eq!(of_kind(&t, "approval.requested").len(), 2, "{t}");
}

#[test]
fn a_revoked_grant_stops_letting_merges_through() {
    require_root_or_skip!();
    let w = world();
    approve_held(&w, &["--for", "10m"]);
    let (status, out) = merge(&w, UNHELD);
    assert_eq!(status, 200, "{}", show(&out));
    let listed = grants(&w);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0]["until"].is_string(), "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_string();

    cordon_ok(&w, &["grants", "revoke", &id]);
    assert!(grants(&w).is_empty());
    asks_again(&w);
    assert_eq!(merged(&w), 2);
    let again = w.daemon.cordon(&["grants", "revoke", &id]).unwrap();
    assert!(!again.status.success(), "revoked twice: {}", show(&again));

    let t = w.trail().unwrap().of_chain(AGENT);
    let revoked = of_kind(&t, "grant.revoked");
    assert_eq!(revoked.len(), 1, "{t}");
    assert_eq!(rule(revoked[0]), format!("grant:{id}"), "{t}");
    assert!(
        revoked[0]
            .approver
            .as_deref()
            .unwrap_or("")
            .starts_with("root"),
        "{t}"
    );
}

#[test]
fn a_grant_and_its_remaining_uses_survive_a_daemon_restart() {
    require_root_or_skip!();
    let mut w = world();
    approve_held(&w, &["--uses", "3"]);
    let (status, out) = merge(&w, UNHELD);
    assert_eq!(status, 200, "{}", show(&out));

    w.daemon.restart().unwrap();
    let listed = grants(&w);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["uses_left"], json!(1), "{listed:?}");
    let (status, out) = merge(&w, UNHELD);
    assert_eq!(status, 200, "{}", show(&out));
    assert_eq!(merged(&w), 3);
    asks_again(&w);
}

#[test]
fn a_grant_whose_time_ran_out_is_recorded_as_expired_and_merges_ask_again() {
    require_root_or_skip!();
    let w = world();
    approve_held(&w, &["--for", "2s"]);
    wait_until("the grant's expiry record", NOTICE, || {
        w.trail()
            .is_ok_and(|t| !of_kind(&t.of_chain(AGENT), "grant.expired").is_empty())
    })
    .unwrap();
    assert!(grants(&w).is_empty());
    asks_again(&w);
}

#[test]
fn always_writes_a_reviewed_policy_file_that_allows_and_that_a_reload_keeps() {
    require_root_or_skip!();
    let w = world();
    let p = approve_held(&w, &["--always"]);
    let name = format!("approved-{}.toml", p.id);
    let path = w.policies.path().join(&name);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("cordon approve {} --always", p.id)),
        "{text}"
    );
    assert!(text.contains("# Approved by root"), "{text}");
    assert!(text.contains("rule `merge-main-approval`"), "{text}");
    assert!(text.contains("decision = \"approved\""), "{text}");

    let check = std::process::Command::new(cordon_bin())
        .args(["policy", "check"])
        .arg(w.policies.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", show(&check));

    let (status, out) = merge(&w, UNHELD);
    assert_eq!(status, 200, "{}", show(&out));
    cordon_ok(&w, &["policy", "reload"]);
    let (status, out) = merge(&w, UNHELD);
    assert_eq!(status, 200, "{}", show(&out));
    assert_eq!(merged(&w), 3);
    assert!(grants(&w).is_empty(), "always left a grant in memory");

    let t = w.trail().unwrap().of_chain(AGENT);
    let given = of_kind(&t, "grant.granted");
    assert_eq!(given.len(), 1, "{t}");
    assert_eq!(rule(given[0]), format!("always-{}", p.id), "{t}");
    let merges: Vec<_> = t
        .matching("github.pr.merge", &[])
        .into_iter()
        .filter(|r| r.kind.as_str() == "request" && verdict(r) == "allow")
        .collect();
    assert_eq!(merges.len(), 2, "{t}");
    assert!(
        merges.iter().all(|r| rule(r) == format!("always-{}", p.id)),
        "{t}"
    );

    // Taking the file away takes the approval back.
    w.policies.remove(&name).unwrap();
    cordon_ok(&w, &["policy", "reload"]);
    asks_again(&w);
}

#[test]
fn a_grant_whose_record_cannot_be_written_is_not_given_and_the_request_stays_held() {
    require_root_or_skip!();
    let mut w = world();
    let disk = FullDisk::under(&mut w).unwrap();
    let agent = merge_in_background(&w);
    let p = held(&w);
    disk.fill().unwrap();
    let out = w.daemon.cordon(&["approve", &p.id, "--uses", "3"]).unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("record could not be written"), "{err}");
    assert!(grants(&w).is_empty(), "an unrecorded grant is in force");
    let still = pending(&w.daemon).unwrap();
    assert!(still.iter().any(|q| q.id == p.id), "{still:?}");
    assert_eq!(merged(&w), 0);
    // The operator's "no" stands even though it cannot be recorded either.
    let _ = w.daemon.cordon(&["deny", &p.id]).unwrap();
    assert_eq!(code(&agent.join().unwrap()), 403);
    assert_eq!(merged(&w), 0);
}

/// Two merges on one connection (one name lookup), four seconds apart; one status per line.
const TWO_MERGES: &str = r#"
import http.client, time
c = http.client.HTTPSConnection("api.github.com", timeout=30)
for i in range(2):
    c.request("PUT", "/repos/o/r/pulls/7/merge", body=b'{"merge_method":"squash"}',
              headers={"content-type": "application/json"})
    r = c.getresponse()
    r.read()
    print(r.status, flush=True)
    if i == 0:
        time.sleep(4)
"#;

#[test]
fn a_grant_use_that_cannot_be_recorded_is_refused_and_stays_spent() {
    require_root_or_skip!();
    let mut w = world();
    let disk = FullDisk::under(&mut w).unwrap();
    approve_held(&w, &["--uses", "4"]);
    let agent = Background::start(
        w.agent(AGENT, &[PYTHON, "-c", TWO_MERGES]),
        Duration::from_secs(40),
    );
    wait_until("the first granted merge", NOTICE, || merged(&w) == 2).unwrap();
    disk.fill().unwrap();
    let out = agent.join().unwrap();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, ["200", "503"], "{}", show(&out));
    assert_eq!(merged(&w), 2, "an unrecorded use reached GitHub");
    // Counted before it was recorded: a failed record never gives a use back.
    let listed = grants(&w);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["uses_left"], json!(1), "{listed:?}");
}
