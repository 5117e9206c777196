//! Chapter 8: credentials. A token goes into the vault, the deployer's policy binds it to the
//! github connector, and after a reload the agent holds only a placeholder while GitHub
//! receives the real token, injected by Cordon after the request was allowed; an upstream that
//! echoes it back, even gzipped, hands the agent `[REDACTED]`, and so does a WebSocket that
//! hands the handshake back cut into frames.

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use crate::demo::agent::HttpResult;
use crate::demo::ctx::Ctx;
use crate::demo::policy::{GITHUB_SECRET, deployer};
use crate::demo::world::GITHUB_WS_PORT;
use crate::http::Gzip;

const PROBE_PATH: &str = "/repos/acme/app";
/// An issue no route of the fake GitHub answers, so its default reply echoes the request.
const ECHO_SCRIPT: &str = r#"curl -sS --compressed --max-time 15 -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/repos/acme/app/issues/1; echo"#;
const SCRIPT: &str = r#"echo "agent's GITHUB_TOKEN=$GITHUB_TOKEN"; curl -sS --max-time 15 -H "Authorization: Bearer $GITHUB_TOKEN" -w '\n[HTTP %{http_code}]\n' https://api.github.com/repos/acme/app"#;

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "8. Credentials",
        "Agents never hold real API keys. The operator stores the key in Cordon's encrypted \
         vault and binds it in policy; the agent gets a placeholder.",
    );
    if !c.features.vault {
        c.n.skip(
            "vault credential injection",
            "this cordon has no `vault` subcommand",
        );
        return Ok(());
    }
    let token = format!("demo-token-{}", random_hex()?);
    let state = c.w.state_dir();
    let mut set = Command::new("sh");
    set.args([
        "-c",
        r#"printf %s "$DEMO_TOKEN" | "$CORDON" vault set "$NAME" --from-stdin --state-dir "$STATE""#,
    ])
    .env("DEMO_TOKEN", &token)
    .env("CORDON", &c.cordon)
    .env("NAME", GITHUB_SECRET)
    .env("STATE", &state);
    c.n.command_text(&format!(
        "printf %s \"$DEMO_TOKEN\" | cordon vault set {GITHUB_SECRET} --from-stdin    # DEMO_TOKEN={token}"
    ));
    let out = crate::process::run_with_timeout(&mut set, Duration::from_secs(30))?;
    c.n.output(&out);
    if !c
        .n
        .check("token stored in the vault", out.status.success(), "")
    {
        return Ok(());
    }

    let file = c.w.policies.write("deployer.toml", &deployer(true))?;
    c.n.say(&format!("{} now ends with:", file.display()));
    c.n.block(&format!("[credentials]\ngithub = \"{GITHUB_SECRET}\""));
    let out = c.cordon(&["policy", "reload"])?;
    c.n.check("policy reloaded with the binding", out.status.success(), "");

    let before = c.w.github.count();
    let out = c.agent("deployer", &["sh", "-c", SCRIPT])?;
    let r = HttpResult::parse(out);
    let got = authorization_since(c, before, PROBE_PATH);
    c.n.say("what GitHub received on that request:");
    c.n.block(&format!("authorization: {got}"));
    let agent_out = String::from_utf8_lossy(&r.output.stdout).into_owned();
    c.n.shows("the agent only ever had cordon-placeholder-github; Cordon swapped in the vault's token after policy allowed the request.");
    c.n.check(
        "agent's environment holds only the placeholder",
        agent_out.contains("GITHUB_TOKEN=cordon-placeholder") && !agent_out.contains(&token),
        "",
    );
    c.n.check(
        "upstream received the real token",
        r.status == Some(200) && got == format!("Bearer {token}"),
        &r.summary(),
    );
    let _ = c.cordon(&["vault", "list"])?;
    c.n.shows("the vault lists names, versions and users, never values.");
    echo(c, &token)?;
    websocket(c, &token)
}

/// An upstream that hands the credential back (a debug endpoint echoing the request,
/// gzipped when the client accepts it) still gives the agent no key.
fn echo(c: &mut Ctx, token: &str) -> anyhow::Result<()> {
    c.w.github.echo_header("authorization");
    c.w.github.echo_header("accept-encoding");
    c.w.github.gzip(Gzip::WhenAccepted);
    c.n.say(
        "GitHub now echoes the headers it receives, gzipped for a client that accepts it, \
         as a careless debug endpoint might. The agent asks for gzip:",
    );
    let out = c.agent("deployer", &["sh", "-c", ECHO_SCRIPT]);
    c.w.github.gzip(Gzip::Off);
    c.w.github.echo_no_headers();
    let text = String::from_utf8_lossy(&out?.stdout).into_owned();
    c.n.shows(
        "Cordon asked GitHub for an uncompressed answer (a compressed echo would hide the \
         token from any search) and scrubbed the token from it, in every spelling the request \
         carried it; an answer compressed anyway would be withheld.",
    );
    let ok = text.contains(r#""authorization":"Bearer [REDACTED]""#)
        && text.contains(r#""accept-encoding":"identity""#)
        && !text.contains(token);
    c.n.check(
        "the echoed token reached the agent as [REDACTED]",
        ok,
        if ok { "" } else { text.trim() },
    );
    Ok(())
}

/// The Authorization header GitHub received on the latest request to `path`
/// among those after the first `before`.
pub(super) fn authorization_since(c: &Ctx, before: usize, path: &str) -> String {
    c.w.github.received()[before..]
        .iter()
        .rev()
        .find(|q| q.path == path)
        .and_then(|q| q.header("authorization").map(str::to_owned))
        .unwrap_or_default()
}

fn random_hex() -> anyhow::Result<String> {
    let mut buf = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// GitHub's WebSocket answers with the handshake's `Authorization`, cut into 7-byte frames
/// with a ping between: the frames reach the agent scrubbed, the framing intact.
fn websocket(c: &mut Ctx, token: &str) -> anyhow::Result<()> {
    c.n.say(&format!(
        "api.github.com also serves a WebSocket (port {GITHUB_WS_PORT}) that answers a message \
         with the Authorization header of its handshake, cut into 7-byte frames with a ping \
         between. The agent opens it with its placeholder, offering compression:"
    ));
    let script = format!(
        "WS_HEADERS=\"$(printf 'Authorization: Bearer %s\\nSec-WebSocket-Extensions: \
         permessage-deflate' \"$GITHUB_TOKEN\")\" {} probe ws api.github.com {GITHUB_WS_PORT} \
         /repos/acme/app/issues/1 authorization",
        c.probe_path()
    );
    let before = c.w.github_ws.handshakes().len();
    let out = c.agent("deployer", &["sh", "-c", &script])?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let got =
        c.w.github_ws
            .handshakes()
            .get(before)
            .cloned()
            .unwrap_or_default();
    c.n.say("what the WebSocket's server received in the handshake:");
    c.n.block(&format!(
        "authorization: {}\nsec-websocket-extensions: {}",
        got.authorization.as_deref().unwrap_or("(none)"),
        got.extensions.as_deref().unwrap_or("(none)")
    ));
    c.n.shows(
        "Cordon dropped the offer of compression (a compressed message would hide the token) \
         and scrubbed the frames as they streamed: each spelling of the token is overwritten \
         with a marker of the same length, so every frame keeps its length.",
    );
    let ok = text.starts_with("Bearer [REDACTED]")
        && !text.contains(token)
        && got.authorization == Some(format!("Bearer {token}"))
        && got.extensions.is_none();
    c.n.check(
        "the token a WebSocket handed back reached the agent masked",
        ok,
        if ok { "" } else { &text },
    );
    Ok(())
}
