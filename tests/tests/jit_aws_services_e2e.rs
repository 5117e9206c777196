//! AWS beyond S3, end to end: DynamoDB, STS and Bedrock runtime, with boto3
//! and the AWS CLI as agents signing with the placeholder keys Cordon gave
//! their instance, and moto (IAM enforced: it recomputes every signature
//! with the STS session's secret) as AWS at its own endpoint names.
//!
//! Each service's requests are named `aws.<service>.<operation>` with their
//! params (table, region, model, role ARN), an allowed and a refused
//! operation are decided by policy, and what is allowed is re-signed and
//! accepted by moto. A DynamoDB body altered after signing is refused before
//! it reaches AWS. Bedrock answers are priced: the outcome record carries
//! the tokens and cost, and the spend feeds the run's envelope.
//!
//! moto's InvokeModel answers `{}` (no model runs locally); the test's moto
//! wrapper (`tests/src/py/moto_server.py`) answers with the Messages API body
//! Anthropic models return on Bedrock, usage included. Signature and IAM
//! checks stay moto's own.

use std::io::BufRead;
use std::process::Output;
use std::time::Duration;

use cordon_audit::EventKind;
use cordon_e2e::jit::AwsWorld;
use cordon_e2e::jit::moto::agent_python;
use cordon_e2e::trail::{Trail, rule, verdict};
use cordon_e2e::world::{agent_command, show, stdout};
use cordon_e2e::{read_trail, require_root_or_skip, run_with_timeout, wait_until, workspace_root};
use serde_json::{Value, json};

const AGENT_TIMEOUT: Duration = Duration::from_secs(90);
const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";

const NAMES: &[&str] = &[
    "dynamodb.us-east-1.amazonaws.com",
    "sts.us-east-1.amazonaws.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
];

const POLICY: &str = r#"
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "no-table-drops"
action = "aws.dynamodb.delete_table"
decision = "deny"
reason = "agents never drop tables"

[[rule]]
id = "notes"
action = "aws.dynamodb.*"
when = 'params.table == "notes" && params.region == "us-east-1"'
decision = "allow"

[[rule]]
id = "whoami"
action = "aws.sts.get_caller_identity"
decision = "allow"

[[rule]]
id = "no-opus"
action = "aws.bedrock.*"
when = 'params.model.contains("opus")'
decision = "deny"
reason = "too expensive for this agent"

[[rule]]
id = "bedrock"
action = "aws.bedrock.invoke_model"
decision = "allow"

[envelope]
max_cost_usd = 0.008

[credentials]
aws-dynamodb = "aws-agent"
aws-sts = "aws-agent"
aws-bedrock-runtime = "aws-agent"
"#;

fn aws() -> AwsWorld {
    AwsWorld::start(NAMES, POLICY).unwrap()
}

/// `aws_services_agent.py ARGS` (boto3) as agent `agent`.
fn agent_cmd(agent_args: &[&str]) -> Vec<String> {
    let script = workspace_root().join("tests/src/py/aws_services_agent.py");
    let mut cmd = agent_python().unwrap();
    cmd.push(script.display().to_string());
    cmd.extend(agent_args.iter().map(|a| a.to_string()));
    cmd
}

fn python_agent(a: &AwsWorld, agent: &str, args: &[&str]) -> Value {
    let cmd = agent_cmd(args);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out =
        run_with_timeout(&mut agent_command(&a.d.daemon, agent, &cmd), AGENT_TIMEOUT).unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        show(&out),
        a.d.daemon.log(),
        a.moto.log()
    );
    json_of(&out)
}

fn json_of(out: &Output) -> Value {
    let text = stdout(out);
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

fn trail(a: &AwsWorld) -> Trail {
    read_trail(a.d.daemon.state_dir()).unwrap()
}

/// The one decision of `action` with `params`, checked to be `verdict` by
/// `rule` (`default` stands for the policy file's default, `default:FILE`).
fn decided(t: &Trail, action: &str, params: &[(&str, Value)], want: (&str, &str)) -> u64 {
    let r = t.one(action, params);
    let by = rule(r);
    let by = if by.starts_with("default:") {
        "default"
    } else {
        by
    };
    assert_eq!((verdict(r), by), want, "{action}: {r:?}");
    r.seq
}

#[test]
fn dynamodb_is_named_by_table_decided_by_policy_re_signed_and_an_altered_body_refused() {
    require_root_or_skip!();
    let a = aws();
    let v = python_agent(&a, "ddb-bot", &["dynamodb"]);
    assert_eq!(v["put"], "ok", "{v}");
    assert_eq!(
        v["get"], "hello",
        "moto accepted the re-signed requests: {v}"
    );
    assert_eq!(v["put_secrets"]["status"], 403, "{v}");
    assert_eq!(v["drop"]["status"], 403, "{v}");
    assert_eq!(v["after_drop"], "hello", "the table is still there: {v}");

    let t = trail(&a);
    let notes = [
        ("table", json!("notes")),
        ("region", json!("us-east-1")),
        ("service", json!("dynamodb")),
    ];
    let put = decided(
        &t,
        "aws.dynamodb.put_item",
        &[&notes[..], &[("operation", json!("PutItem"))]].concat(),
        ("allow", "notes"),
    );
    let gets = t.matching("aws.dynamodb.get_item", &notes);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets.iter()
            .all(|r| verdict(r) == "allow" && rule(r) == "notes")
    );
    decided(
        &t,
        "aws.dynamodb.put_item",
        &[("table", json!("secrets"))],
        ("deny", "default"),
    );
    decided(
        &t,
        "aws.dynamodb.delete_table",
        &notes,
        ("deny", "no-table-drops"),
    );
    let outcome = t.outcome_of(put);
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    assert_eq!(outcome[0].upstream_status, Some(200), "{outcome:?}");

    // A PutItem signed with the placeholder, its body changed afterwards:
    // refused before AWS, nothing stored; the same request unchanged works.
    let v = python_agent(&a, "ddb-bot", &["tamper"]);
    assert_eq!(v["altered"]["status"], 403, "{v}");
    assert!(
        v["altered"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("altered after signing"),
        "{v}"
    );
    assert_eq!(
        v["stored"],
        Value::Null,
        "the altered item never reached AWS: {v}"
    );
    assert_eq!(v["untouched"]["status"], 200, "{v}");
    let t = trail(&a);
    let refused: Vec<_> = t
        .records()
        .iter()
        .filter(|r| rule(r) == "aws-signature")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(verdict(refused[0]), "deny");
}

#[test]
fn sts_caller_identity_is_the_role_session_for_boto3_and_the_cli_and_assume_role_is_refused() {
    require_root_or_skip!();
    let a = aws();
    let v = python_agent(&a, "sts-bot", &["sts"]);
    let arn = v["arn"].as_str().unwrap_or("");
    assert!(
        arn.contains(":assumed-role/agent/cordon-sts-bot-"),
        "moto saw the instance's role session: {v}"
    );
    assert_eq!(v["assume"]["status"], 403, "{v}");

    // The AWS CLI, another instance with its own placeholder keys.
    let mut cmd = agent_python().unwrap();
    cmd.extend(
        [
            "-m",
            "awscli",
            "--region",
            "us-east-1",
            "sts",
            "get-caller-identity",
        ]
        .map(String::from),
    );
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = run_with_timeout(
        &mut agent_command(&a.d.daemon, "sts-cli", &cmd),
        AGENT_TIMEOUT,
    )
    .unwrap();
    assert!(out.status.success(), "{}\n{}", show(&out), a.moto.log());
    assert!(
        stdout(&out).contains(":assumed-role/agent/cordon-sts-cli-"),
        "{}",
        show(&out)
    );

    let t = trail(&a);
    let whoami = t.matching(
        "aws.sts.get_caller_identity",
        &[("region", json!("us-east-1"))],
    );
    assert_eq!(whoami.len(), 2, "{whoami:?}");
    assert!(
        whoami
            .iter()
            .all(|r| verdict(r) == "allow" && rule(r) == "whoami")
    );
    decided(
        &t,
        "aws.sts.assume_role",
        &[
            ("role_arn", json!("arn:aws:iam::123456789012:role/agent")),
            ("operation", json!("AssumeRole")),
        ],
        ("deny", "default"),
    );
}

#[test]
fn bedrock_invoke_is_decided_by_model_re_signed_and_its_tokens_and_cost_are_in_the_outcome() {
    require_root_or_skip!();
    let a = aws();
    let v = python_agent(&a, "llm-bot", &["bedrock"]);
    let haiku = &v["haiku"];
    assert_eq!(
        haiku["model"], "claude-3-haiku-20240307",
        "moto answered: {v}"
    );
    assert_eq!(
        haiku["usage"],
        json!({"input_tokens": 1000, "output_tokens": 4000})
    );
    assert_eq!(v["opus"]["status"], 403, "{v}");

    let t = trail(&a);
    let seq = decided(
        &t,
        "aws.bedrock.invoke_model",
        &[("model", json!(HAIKU)), ("region", json!("us-east-1"))],
        ("allow", "bedrock"),
    );
    let refused = t.matching("aws.bedrock.invoke_model", &[]);
    let opus: Vec<_> = refused.iter().filter(|r| r.seq != seq).collect();
    assert_eq!(opus.len(), 1, "{refused:?}");
    assert_eq!((verdict(opus[0]), rule(opus[0])), ("deny", "no-opus"));
    assert_eq!(
        opus[0].params["model"],
        "anthropic.claude-3-opus-20240229-v1:0"
    );

    let outcome = t.outcome_of(seq);
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    let o = outcome[0];
    assert_eq!(o.upstream_status, Some(200), "{o:?}");
    assert_eq!(
        (o.tokens_in, o.tokens_out),
        (Some(1000), Some(4000)),
        "{o:?}"
    );
    // claude-3-haiku: $0.25 / $1.25 per million tokens in / out.
    let cost = o.cost_usd.unwrap_or_else(|| panic!("no cost: {o:?}"));
    assert!((cost - 0.00525).abs() < 1e-9, "{cost}");
}

#[test]
fn bedrock_spend_feeds_the_run_envelope_and_the_call_past_it_is_refused() {
    require_root_or_skip!();
    let a = aws();
    let cmd = agent_cmd(&["spend", "3"]);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let mut agent = agent_command(&a.d.daemon, "llm-spender", &cmd)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = agent.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // $0.00525 a call against a $0.008 envelope: the first two calls are
    // decided under it, the third is over it.
    for call in 0..2 {
        let line = rx
            .recv_timeout(AGENT_TIMEOUT)
            .unwrap_or_else(|e| panic!("call {call}: {e}\n{}", a.d.daemon.log()));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["answer"]["usage"]["output_tokens"], 4000, "{v}");
    }
    wait_until("the envelope refusal", Duration::from_secs(30), || {
        read_trail(a.d.daemon.state_dir()).is_ok_and(|t| {
            t.records()
                .iter()
                .any(|r| r.kind == EventKind::EnvelopeExceeded)
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", a.d.daemon.log()));
    let t = trail(&a);
    // The run is over its envelope from the next action on (the agent's
    // DNS lookup for the third call, or the call itself).
    let over: Vec<_> = t
        .records()
        .iter()
        .filter(|r| r.kind == EventKind::EnvelopeExceeded)
        .collect();
    assert!(!over.is_empty());
    for r in &over {
        assert_eq!(
            (verdict(r), rule(r)),
            ("deny", "envelope:max_cost_usd"),
            "{r:?}"
        );
        assert!(
            r.reason.as_deref().unwrap_or("").contains("spent 0.0105"),
            "two calls' spend: {r:?}"
        );
    }
    let allowed: Vec<_> = t
        .matching("aws.bedrock.invoke_model", &[])
        .into_iter()
        .filter(|r| verdict(r) == "allow")
        .collect();
    assert_eq!(
        allowed.len(),
        2,
        "the third call never went out: {allowed:?}"
    );
    // The envelope froze the run; end it (our own child, by its handle).
    let out = a.d.daemon.cordon(&["terminate", "llm-spender"]).unwrap();
    assert!(out.status.success(), "{}", show(&out));
    if agent.try_wait().unwrap().is_none() {
        agent.kill().unwrap();
    }
    agent.wait().unwrap();
}
