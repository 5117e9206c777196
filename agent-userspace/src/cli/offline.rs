//! Offline tools over the same code the daemon uses: which action a
//! request becomes (`connectors match`), and what policy decides about it
//! (`policy test`), without a daemon or any traffic.
use std::{path::Path, process::ExitCode};

use anyhow::{Context, bail};
use cordon_connectors::{Action, ConnectorSet, RequestHead};
use cordon_policy::{ActionRequest, HttpInfo, PolicySet};
use serde_json::json;

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

/// Parses `METHOD URL [--body JSON]` into the action the proxy would see.
pub fn match_request(
    policies: &Path,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> anyhow::Result<Action> {
    let set = ConnectorSet::load_dir(&policies.join("connectors"))?;
    let uri: http::Uri = url.parse().with_context(|| format!("not a URL: {url}"))?;
    let Some(host) = uri.host() else {
        bail!("the URL needs a host: {url}");
    };
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let method: http::Method = method
        .to_ascii_uppercase()
        .parse()
        .with_context(|| format!("not an HTTP method: {method}"))?;
    let mut headers = http::HeaderMap::new();
    if body.is_some() {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
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
    Ok(match body {
        Some(b) => m.complete(b.as_bytes(), Some("application/json")),
        None => m.into_action(),
    })
}

pub fn connectors_match(
    policies: &Path,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let a = match_request(policies, method, url, body)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "connector": a.connector,
            "action": a.name,
            "params": a.params,
            "enrich": a.enrich.iter().map(|e| json!({"param": e.param, "get": e.path, "json": e.json_path})).collect::<Vec<_>>(),
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

pub struct PolicyTest<'a> {
    pub policies: &'a Path,
    pub agent: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub body: Option<&'a str>,
    pub explain: bool,
}

pub fn policy_test(t: &PolicyTest<'_>) -> anyhow::Result<ExitCode> {
    let set = PolicySet::load_dir(t.policies)?;
    let action = match_request(t.policies, t.method, t.url, t.body)?;
    let uri: http::Uri = t.url.parse()?;
    let chain: Vec<String> = t.agent.split('/').map(str::to_string).collect();
    let method = t.method.to_ascii_uppercase();
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
    }
    Ok(ExitCode::SUCCESS)
}
