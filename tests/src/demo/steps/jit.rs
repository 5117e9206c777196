//! Chapter 13: just-in-time credentials. A second daemon mints at a local GitHub (which
//! verifies the app JWT as GitHub does) and at moto (AWS's S3 and STS, IAM enforced). An agent
//! calls the GitHub API with its placeholder: the upstream gets an installation token minted
//! for that run and scoped to the binding, the agent never sees it, and it is revoked when the
//! agent exits. An agent lists and reads S3 objects with boto3 and placeholder keys: Cordon
//! verifies its signature, re-signs allowed requests with an STS session, and refuses
//! DeleteObject by policy. `cordon audit tail` shows each outcome.

use std::net::IpAddr;
use std::process::Output;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::demo::agent::AGENT_TIMEOUT;
use crate::demo::ctx::Ctx;
use crate::jit::github::{self, FakeGithub};
use crate::jit::moto::{Moto, agent_python};
use crate::jit::{JitDaemon, Net};
use crate::secrets::{leaked_fragment, vault_set_stdin};
use crate::wait_until;

const POLICY: &str = r#"# Reads one repository; uses S3 but never deletes.
agents = ["*"]
default = "deny"

[[rule]]
id = "dns"
action = "dns.query"
decision = "allow"

[[rule]]
id = "github-read"
action = "github.repo.read"
decision = "allow"

[[rule]]
id = "no-deletes"
action = "aws.s3.delete_object"
decision = "deny"
reason = "agents never delete objects"

[[rule]]
id = "s3"
action = "aws.s3.*"
decision = "allow"

# A token minted per run from the GitHub App, for acme/api only, read-only.
[[credentials.github]]
entry = "acme-app"
repositories = ["acme/api"]
permissions = { contents = "read", metadata = "read" }

[credentials]
aws-s3 = "aws-agent"              # an aws-role entry: re-signed with an STS session
"#;

const S3_NAMES: &[&str] = &["s3.amazonaws.com", "sts.amazonaws.com"];

struct Issuers {
    net: Net,
    github: FakeGithub,
    moto: Moto,
    /// The app's private key, for the `github-app` vault entry.
    app_pem: String,
}

fn issuers() -> anyhow::Result<Issuers> {
    let net = Net::new().context("a namespace for the issuers")?;
    let (pem, public) = github::app_key()?;
    let gh_ip = IpAddr::V4(net.ns.v4_at(0));
    let github = FakeGithub::start(&net.ns, &net.ca, gh_ip, &["api.github.com"], public)
        .context("start the local GitHub")?;
    net.resolve(&["api.github.com"], gh_ip);
    let aws_ip = IpAddr::V4(net.ns.v4_at(1));
    let moto = Moto::start(&net.ns, &net.ca, aws_ip, S3_NAMES).context("start moto")?;
    net.resolve(S3_NAMES, aws_ip);
    Ok(Issuers {
        net,
        github,
        moto,
        app_pem: pem,
    })
}

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "13. Just-in-time credentials",
        "Instead of a long-lived token, Cordon can mint a credential per agent run, scoped to \
         the policy's binding, and revoke it when the run ends. A second daemon is configured \
         with the issuers: a local GitHub that checks the app's signed JWT as GitHub does, \
         and moto playing AWS (S3 and STS, every signature and IAM policy enforced).",
    );
    let i = issuers()?;
    let jd = JitDaemon::start_bin(
        &i.net,
        POLICY,
        &i.github.base_url(),
        &i.moto.url(),
        Some(&c.cordon),
    )
    .context("start the JIT daemon")?;
    c.n.alias(
        &format!(" --state-dir {}", jd.daemon.state_dir().display()),
        " --state-dir $JIT",
    );
    c.n.say(&format!(
        "{} ($JIT is its state dir):",
        jd.config_file().display()
    ));
    c.n.block(&std::fs::read_to_string(jd.config_file())?);
    c.n.say("Its policy:");
    c.n.block(POLICY);
    let entry = github::entry_json(&i.app_pem);
    let stored = vault_set_stdin(&jd.daemon, "acme-app", "github-app", &entry)?;
    let stored_aws = vault_set_stdin(&jd.daemon, "aws-agent", "aws-role", &i.moto.entry_json)?;
    c.n.check(
        "the GitHub App key and the AWS base key are in the vault (kinds github-app, aws-role)",
        stored.status.success() && stored_aws.status.success(),
        "cordon vault set acme-app --kind github-app; cordon vault set aws-agent --kind aws-role",
    );
    github_part(c, &jd, &i.github)?;
    aws_part(c, &jd)?;
    tail(c, &jd)?;
    drop(jd);
    drop(i);
    Ok(())
}

fn github_part(c: &mut Ctx, jd: &JitDaemon, gh: &FakeGithub) -> anyhow::Result<()> {
    let script = "echo \"GITHUB_TOKEN=$GITHUB_TOKEN\"; \
                  curl -sS -w ' %{http_code}\\n' -H \"Authorization: Bearer $GITHUB_TOKEN\" \
                  https://api.github.com/repos/acme/api";
    let mut cmd = jd.daemon.agent("reader", &["/bin/sh", "-c", script]);
    let out = c.run_shown(&mut cmd, AGENT_TIMEOUT)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (token, issued) = match gh.ledger().tokens.iter().next() {
        Some((t, i)) => (t.clone(), i.repositories.clone()),
        None => (String::new(), Vec::new()),
    };
    let upstream_saw = gh.ledger().repo_auth.clone();
    c.n.shows(
        "the agent holds only a placeholder. Cordon signed a JWT with the app's key, bought \
         an installation token for acme/api (read) and sent that upstream in its place.",
    );
    c.n.check(
        "the API answered with a token minted for this run, scoped to acme/api",
        text.contains("acme/api")
            && text.contains(" 200")
            && issued == ["api"]
            && upstream_saw == [format!("Bearer {token}")],
        &format!(
            "GitHub saw {} request(s) with the minted token",
            upstream_saw.len()
        ),
    );
    let mut seen = out.stdout.clone();
    seen.extend_from_slice(&out.stderr);
    c.n.check(
        "the agent never saw the token",
        !token.is_empty() && leaked_fragment(&seen, &token).is_none(),
        "",
    );
    let revoked = wait_until("the token revoked", Duration::from_secs(15), || {
        gh.ledger().deletes.contains(&token)
    });
    c.n.shows("the run ended: Cordon revoked its token (DELETE /installation/token at GitHub).");
    c.n.check(
        "the token was revoked when the agent exited",
        revoked.is_ok(),
        "",
    );
    Ok(())
}

fn aws_part(c: &mut Ctx, jd: &JitDaemon) -> anyhow::Result<()> {
    let mut argv = agent_python()?;
    let site = argv[1].clone();
    c.n.alias(&site, "PYTHONPATH=$AWS_VENV");
    let script = crate::daemon::workspace_root().join("tests/src/py/aws_agent.py");
    if let Some(dir) = script.parent() {
        c.n.alias(&format!("{}/", dir.display()), "");
    }
    argv.push(script.display().to_string());
    argv.push("work".into());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = jd.daemon.agent("s3-bot", &argv);
    let out = c.run_shown(&mut cmd, AGENT_TIMEOUT)?;
    let v = last_json(&out);
    c.n.shows(
        "boto3 signed with placeholder keys (ASIACRDN...). Cordon checked each signature, \
         named the request (aws.s3.put_object, list_objects_v2, get_object), and re-signed \
         the allowed ones with an STS session for the role; moto accepted them.",
    );
    c.n.check(
        "boto3 lists and reads S3 objects through re-signing",
        v["key_prefix"] == "ASIACRDN"
            && v["list"] == serde_json::json!(["report.txt"])
            && v["get"] == "q3 numbers",
        &v.to_string(),
    );
    c.n.check(
        "DeleteObject is refused by policy and the object stays",
        v["delete"]["status"] == 403 && v["after_delete"] == "q3 numbers",
        &v["delete"].to_string(),
    );
    Ok(())
}

fn tail(c: &mut Ctx, jd: &JitDaemon) -> anyhow::Result<()> {
    let mut cmd = jd
        .daemon
        .cordon_command(&["audit", "tail", "--lines", "30"]);
    let out = c.run_shown(&mut cmd, Duration::from_secs(30))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    c.n.shows(
        "each request with its outcome: the allowed ones → 200, the delete refused by no-deletes.",
    );
    let answered = |action: &str| {
        text.lines()
            .any(|l| l.contains(action) && l.contains("→ 200 in"))
    };
    c.n.check(
        "`cordon audit tail` shows the GitHub call and the S3 calls answered 200",
        out.status.success()
            && answered("github.repo.read")
            && answered("aws.s3.list_objects_v2")
            && answered("aws.s3.get_object"),
        "",
    );
    c.n.check(
        "and the refused DeleteObject with its rule",
        text.lines()
            .any(|l| l.contains("aws.s3.delete_object") && l.contains("no-deletes")),
        "",
    );
    Ok(())
}

fn last_json(out: &Output) -> Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}
