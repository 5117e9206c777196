//! Offline tools over the same code the daemon uses: which actions a
//! request becomes (`connectors match`), and what policy decides about them
//! (`policy test`), without a daemon or any traffic. The request is read the
//! way the proxy reads it: headers as given, the body's type from its
//! `content-type` (sniffed when there is none), and MCP messages and git
//! pushes split into one action per message or ref.
use std::{path::Path, process::ExitCode};

use anyhow::{Context, bail};
use cordon_connectors::{Action, ConnectorSet, RequestHead};
use cordon_policy::{ActionRequest, HttpInfo, Mode, PolicySet, Verdict};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use super::args::{MatchArgs, PolicyTestArgs, RequestArgs};

pub fn connectors_list(policies: &Path) -> anyhow::Result<ExitCode> {
    let set = ConnectorSet::load_dir(&policies.join("connectors"))?;
    println!(
        "{:<12} {:>6}  {:<10} {:<8} HOSTS",
        "CONNECTOR", "ROUTES", "CREDENTIAL", "PRICING"
    );
    for c in set.list() {
        println!(
            "{:<12} {:>6}  {:<10} {:<8} {}",
            c.name,
            c.routes,
            if c.has_credential { "yes" } else { "-" },
            if c.has_pricing { "yes" } else { "-" },
            c.hosts.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `name: value` as given to `--header`.
fn parse_header(text: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = text
        .split_once(':')
        .with_context(|| format!("--header {text:?}: expected 'name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("--header {text:?}: not a header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .with_context(|| format!("--header {text:?}: not a header value"))?;
    Ok((name, value))
}

fn body_of(req: &RequestArgs) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match (&req.body, &req.body_file) {
        (Some(b), _) => Some(b.clone().into_bytes()),
        (None, Some(f)) => {
            Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
        }
        (None, None) => None,
    })
}

/// The actions the proxy would see for `req`, one per MCP message or
/// pushed ref, else one.
pub fn match_request(set: &ConnectorSet, req: &RequestArgs) -> anyhow::Result<Vec<Action>> {
    let uri: http::Uri = req
        .url
        .parse()
        .with_context(|| format!("not a URL: {}", req.url))?;
    let Some(host) = uri.host() else {
        bail!("the URL needs a host: {}", req.url);
    };
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let method: http::Method = req
        .method
        .to_ascii_uppercase()
        .parse()
        .with_context(|| format!("not an HTTP method: {}", req.method))?;
    let mut headers = HeaderMap::new();
    for h in &req.headers {
        let (name, value) = parse_header(h)?;
        headers.append(name, value);
    }
    let head = RequestHead {
        method: &method,
        host: &host.to_ascii_lowercase(),
        port,
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
    };
    let m = set.match_head(&head);
    let body = body_of(req)?.unwrap_or_default();
    // What the proxy buffers: at most the limit, which marks the body as cut.
    let prefix = &body[..body.len().min(m.body_limit())];
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str())
        .transpose()
        .context("the content-type header is not text")?
        .map(str::to_owned);
    let completion = m
        .complete_all(prefix, content_type.as_deref())
        .context("the proxy would refuse this request as malformed (400)")?;
    Ok(completion.into_actions())
}

fn action_json(a: &Action) -> serde_json::Value {
    json!({
        "connector": a.connector,
        "action": a.name,
        "params": a.params,
        "enrich": a.enrich.iter().map(|e| json!({"param": e.param, "get": e.path, "json": e.json_path})).collect::<Vec<_>>(),
    })
}

/// Prints one JSON object for a request of one action, an array for more.
pub fn connectors_match(m: &MatchArgs) -> anyhow::Result<ExitCode> {
    let set = ConnectorSet::load_dir(&m.policies.path().join("connectors"))?;
    let actions = match_request(&set, &m.request)?;
    let out = match actions.as_slice() {
        [one] => action_json(one),
        many => many.iter().map(action_json).collect(),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

pub fn policy_test(t: &PolicyTestArgs) -> anyhow::Result<ExitCode> {
    let dir = t.policies.path();
    let set = PolicySet::load_dir(&dir)?;
    let connectors = ConnectorSet::load_dir(&dir.join("connectors"))?;
    let actions = match_request(&connectors, &t.request)?;
    let uri: http::Uri = t.request.url.parse()?;
    let chain: Vec<String> = t.agent.split('/').map(str::to_string).collect();
    let method = t.request.method.to_ascii_uppercase();
    let mut strictest: Option<(u8, &'static str)> = None;
    for (i, action) in actions.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let req = ActionRequest {
            chain: &chain,
            action: &action.name,
            params: &action.params,
            request: Some(HttpInfo {
                method: &method,
                host: uri.host().unwrap_or(""),
                path: uri.path(),
            }),
            now: chrono::Utc::now(),
        };
        let d = set.decide(&req);
        let severity = d.verdict.severity();
        if strictest.is_none_or(|(s, _)| severity > s) {
            strictest = Some((severity, d.verdict.name()));
        }
        print_decision(action, &d);
        if set.mode_of_chain(&chain) == Mode::Learn && d.verdict != Verdict::Allow {
            println!(
                "mode:     learn: the daemon lets it go ahead and records would = {}",
                d.verdict.name()
            );
        }
        if t.explain {
            println!("\nrules considered:");
            for r in set.explain(&req) {
                println!(
                    "  {} {:<8} {:<28} {:<24} {} ({})",
                    if r.matched { "*" } else { " " },
                    r.decision,
                    r.rule_id,
                    r.action,
                    r.note,
                    r.location
                );
            }
            print_credential_choice(&set, &chain, action);
        }
    }
    if actions.len() > 1
        && let Some((_, name)) = strictest
    {
        println!("\noverall:  {name} (one denied action refuses the whole request)");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_decision(action: &Action, d: &cordon_policy::Decision) {
    println!("action:   {}", action.name);
    println!(
        "params:   {}",
        serde_json::Value::Object(action.params.clone())
    );
    if !action.enrich.is_empty() {
        println!(
            "note:     the daemon would first fetch {} from the upstream",
            action
                .enrich
                .iter()
                .map(|e| e.param.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("decision: {}", d.verdict.name());
    println!("rule:     {}", d.rule_id);
    println!("reason:   {}", d.reason);
    println!("policy:   {}", d.policy_version);
}

// ---- Credential choice (per-action bindings, docs/credentials.md) --------

/// Which of the acting agent's credential bindings for the action's
/// connector the proxy would use: the first whose `when` holds, or none
/// (then the request goes out without a credential).
fn print_credential_choice(set: &PolicySet, chain: &[String], action: &Action) {
    use cordon_policy::BindingOutcome;
    let (Some(connector), Some(agent)) = (action.connector.as_deref(), chain.last()) else {
        return;
    };
    let bindings = set.bindings_for(agent);
    let Some(list) = bindings.get(connector) else {
        println!(
            "
credential: none (`{agent}` binds no vault entry to {connector})"
        );
        return;
    };
    println!(
        "
credential bindings for {connector}:"
    );
    let traces = cordon_policy::explain_choice(list, &action.name, &action.params);
    for t in &traces {
        let (mark, note) = match &t.outcome {
            BindingOutcome::Chosen => ("*", "used".to_string()),
            BindingOutcome::Shadowed => (" ", "holds, but an earlier binding is used".into()),
            BindingOutcome::NotMatched => (" ", "`when` is false".into()),
            BindingOutcome::Failed(e) => (" ", format!("`when` failed ({e}); not used")),
        };
        println!(
            "  {mark} {:<24} {:<44} {note} ({})",
            t.entry,
            t.when.as_deref().unwrap_or("(every request)"),
            t.location
        );
    }
    match cordon_policy::choose(list, &action.name, &action.params) {
        Some(b) if !b.repositories.is_empty() || !b.permissions.is_empty() => println!(
            "  scope: repositories {:?}, permissions {:?}",
            b.repositories, b.permissions
        ),
        Some(_) => {}
        None => println!("  no binding holds: the request goes out without a credential"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn connectors() -> ConnectorSet {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/connectors");
        ConnectorSet::load_dir(&dir).unwrap()
    }

    fn req(method: &str, url: &str, headers: &[&str], body: Option<&str>) -> RequestArgs {
        RequestArgs {
            method: method.into(),
            url: url.into(),
            body: body.map(String::from),
            body_file: None,
            headers: headers.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn a_form_body_without_a_content_type_is_read_as_a_form() {
        let a = match_request(
            &connectors(),
            &req(
                "POST",
                "https://api.stripe.com/v1/charges",
                &[],
                Some("amount=5000&currency=usd"),
            ),
        )
        .unwrap();
        assert_eq!(a[0].name, "stripe.charge.create");
        assert_eq!(a[0].params["amount"], json!(5000));
    }

    #[test]
    fn the_content_type_header_decides_the_body_type() {
        let set = connectors();
        let url = "https://api.stripe.com/v1/charges";
        let form = req(
            "POST",
            url,
            &["Content-Type: application/x-www-form-urlencoded"],
            Some("amount=12"),
        );
        assert_eq!(
            match_request(&set, &form).unwrap()[0].params["amount"],
            json!(12)
        );
        // Declared as text, the body gives no params, as through the proxy.
        let text = req(
            "POST",
            url,
            &["content-type: text/plain"],
            Some("amount=12"),
        );
        assert!(
            !match_request(&set, &text).unwrap()[0]
                .params
                .contains_key("amount")
        );
    }

    #[test]
    fn headers_reach_the_matcher() {
        let a = match_request(
            &connectors(),
            &req(
                "POST",
                "https://grpc.example.com/pkg.Svc/Do",
                &["content-type: application/grpc"],
                None,
            ),
        )
        .unwrap();
        assert_eq!(a[0].name, "grpc.call");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn an_mcp_batch_gives_one_action_per_message_and_bad_json_rpc_fails() {
        let set = connectors();
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},
                       {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b"}}]"#;
        let a = match_request(
            &set,
            &req("POST", "https://api.githubcopilot.com/mcp", &[], Some(body)),
        )
        .unwrap();
        let tools: Vec<_> = a.iter().map(|a| a.params["tool"].clone()).collect();
        assert_eq!(tools, [json!("a"), json!("b")]);
        let bad = req("POST", "https://api.githubcopilot.com/mcp", &[], Some("[]"));
        assert!(match_request(&set, &bad).is_err());
    }

    fn dir_of(argv: &[&str]) -> PathBuf {
        use super::super::args::{Cli, Command, ConnectorsCmd, PolicyCmd};
        use clap::Parser;
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match cli.command {
            Command::Policy(PolicyCmd::Check(d)) | Command::Connectors(ConnectorsCmd::List(d)) => {
                d.path()
            }
            Command::Policy(PolicyCmd::Test(t)) => t.policies.path(),
            Command::Connectors(ConnectorsCmd::Match(m)) => m.policies.path(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_offline_command_takes_the_directory_as_argument_or_option() {
        let cases: [&[&str]; 4] = [
            &["policy", "check"],
            &["connectors", "list"],
            &["policy", "test", "--agent", "a", "GET", "https://x.test/"],
            &["connectors", "match", "GET", "https://x.test/"],
        ];
        for base in cases {
            let mut positional = vec!["cordon"];
            positional.extend_from_slice(base);
            let mut option = positional.clone();
            positional.push("/p");
            option.extend_from_slice(&["--policies", "/p"]);
            assert_eq!(dir_of(&positional), PathBuf::from("/p"), "{positional:?}");
            assert_eq!(dir_of(&option), PathBuf::from("/p"), "{option:?}");
            let mut both = positional.clone();
            both.extend_from_slice(&["--policies", "/q"]);
            assert!(
                <super::super::args::Cli as clap::Parser>::try_parse_from(&both).is_err(),
                "{both:?} must be refused"
            );
        }
    }
}
