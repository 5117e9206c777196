//! Intercepted HTTP: each request becomes an action (connectors), is
//! decided (policy), audited, and only then forwarded upstream.
use std::{convert::Infallible, sync::Arc, time::Instant};

use cordon_audit::{Decision as AuditDecision, EventKind};
use cordon_policy::{Decision, Verdict};
use http::{Request, Response, StatusCode, header};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Map;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    answer::Refusal,
    body::{self, ProxyBody},
    checks::{MAX_HEADER_BYTES, raw_problem, request_problem},
    h1guard::{Findings, Guard},
    headers::{authority_for_uri, is_upgrade, splice_upgrade, split_authority, strip_hop_by_hop},
    upstream::{Target, tls_verify_failure},
};
use crate::daemon::{
    Shared,
    audit::{Actor, DecisionRecord, append_refusal},
    enforce::{Ask, RefusalCause, Verdicted, decide_and_record},
};

/// What is known about the connection the requests arrive on.
pub struct HttpCtx {
    pub d: Shared,
    pub actor: Actor,
    /// The name the agent's TLS ClientHello asked for.
    pub sni: Option<String>,
    pub tls: bool,
    /// The name the agent resolved (through Cordon) to the address it dialled.
    pub resolved: Option<String>,
    pub h2: bool,
}

pub async fn serve<IO>(ctx: Arc<HttpCtx>, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = |findings: Option<Findings>| {
        let ctx = ctx.clone();
        service_fn(move |req| {
            let ctx = ctx.clone();
            let findings = findings.clone();
            async move { Ok::<_, Infallible>(handle(ctx, req, findings).await) }
        })
    };
    let result = if ctx.h2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .serve_connection(TokioIo::new(io), service(None))
            .await
    } else {
        let (guarded, findings) = Guard::new(io, MAX_HEADER_BYTES);
        hyper::server::conn::http1::Builder::new()
            .max_buf_size(MAX_HEADER_BYTES * 2)
            .serve_connection(TokioIo::new(guarded), service(Some(findings)))
            .with_upgrades()
            .await
    };
    if let Err(e) = result {
        if e.is_parse() || e.is_parse_too_large() {
            malformed(&ctx, &e.to_string()).await;
        } else {
            tracing::debug!(agent = %ctx.actor.agent.chain_display(), "http connection ended: {e}");
        }
    }
}

/// A request hyper could not parse never reached `handle`: it still gets
/// an audit record (hyper has answered it with a 4xx).
async fn malformed(ctx: &HttpCtx, why: &str) {
    let params = Map::new();
    let decision = refusal_decision(ctx, "malformed-request", why);
    let rec = DecisionRecord {
        kind: EventKind::Request,
        actor: &ctx.actor,
        connector: None,
        action: "http.malformed",
        params: &params,
        decision: &decision,
        outcome: Some(AuditDecision::Deny),
        host: ctx.sni.as_deref(),
        dst: ctx.actor.origin.dst,
        http: None,
        started: Instant::now(),
    };
    append_refusal(&ctx.d.audit, rec.build()).await;
}

fn refusal_decision(ctx: &HttpCtx, rule: &str, reason: &str) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        rule_id: Arc::from(rule),
        reason: Arc::from(reason),
        decided_by: Arc::from(ctx.actor.agent.agent()),
        policy_version: Arc::from(ctx.d.policy.version()),
    }
}

async fn handle(
    ctx: Arc<HttpCtx>,
    mut req: Request<Incoming>,
    findings: Option<Findings>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let raw = findings
        .and_then(|f| f.lock().unwrap_or_else(|e| e.into_inner()).pop_front())
        .unwrap_or_default();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let (host, port) = split_authority(&authority, ctx.actor.origin.dst.port());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);

    // A message the raw bytes show to be malformed is recorded as such; a
    // well-formed one refused before parsing as the request it claims to be.
    let raw_refusal = raw_problem(raw);
    let refused_as = if raw_refusal.is_some() {
        "http.malformed"
    } else {
        "http.request"
    };
    if let Some(problem) = raw_refusal.or_else(|| request_problem(&ctx, &host, req.headers())) {
        let decision = refusal_decision(&ctx, problem.0, &problem.1);
        return refuse(
            &ctx,
            started,
            None,
            refused_as,
            &Map::new(),
            &decision,
            &host,
            (&method, &path),
            Refused::With(problem.2),
        )
        .await;
    }

    let connectors = ctx.d.connectors.load();
    let head = cordon_connectors::RequestHead {
        method: &method,
        host: &host,
        port,
        path: &path,
        query: query.as_deref(),
        headers: req.headers(),
    };
    let route = connectors.match_head(&head);
    let upgrade = is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, incoming) = req.into_parts();
    let (mut action, body) = if route.body_prefix_needed() {
        let limit = route.body_limit();
        match body::take_prefix(incoming, limit).await {
            Ok((prefix, rest)) => {
                let ctype = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                (route.complete(&prefix, ctype), rest)
            }
            Err(e) => {
                let decision = refusal_decision(
                    &ctx,
                    "malformed-request",
                    &format!("reading the request body: {e}"),
                );
                return refuse(
                    &ctx,
                    started,
                    None,
                    "http.request",
                    &Map::new(),
                    &decision,
                    &host,
                    (&method, &path),
                    Refused::With(StatusCode::BAD_REQUEST),
                )
                .await;
            }
        }
    } else {
        (route.into_action(), body::boxed(incoming))
    };

    if let Some(reason) = super::credentials::foreign_credential(
        &ctx.d,
        action.connector.as_deref(),
        &host,
        &parts.headers,
        &parts.uri,
    ) {
        if ctx.d.cfg.foreign_credentials == crate::config::ForeignCredentials::Strip {
            // Configured to strip: the agent's own credential never leaves;
            // Cordon's (if one is bound) is injected after the decision.
            tracing::info!(agent = %ctx.actor.agent.chain_display(), "stripped a credential Cordon did not issue");
            super::credentials::strip(
                &ctx.d,
                action.connector.as_deref(),
                &host,
                &mut parts.headers,
            );
        } else {
            return refuse_credential(&ctx, started, &action, &host, (&method, &path), &reason)
                .await;
        }
    }
    let target = Target {
        chain: ctx.actor.agent.chain_display(),
        dst: ctx.actor.origin.dst,
        tls_name: ctx.tls.then(|| host.clone()),
        h2: ctx.h2,
    };
    if !action.enrich.is_empty() {
        let authority = authority_for_uri(&host, port, ctx.tls);
        super::enrich::enrich(&ctx.d, &ctx.actor.agent, &target, &authority, &mut action).await;
    }
    let verdict = decide_and_record(
        &ctx.d,
        Ask {
            kind: EventKind::Request,
            actor: &ctx.actor,
            connector: action.connector.as_deref(),
            action: &action.name,
            params: &action.params,
            host: Some(&host),
            http: Some((method.as_str(), &path)),
            started,
        },
    )
    .await;
    let audit_id = match verdict {
        Verdicted::Allow { audit_id } => audit_id,
        Verdicted::Refuse {
            decision,
            audit_id,
            cause,
        } => {
            let (status, error) = match cause {
                RefusalCause::Decided => (StatusCode::FORBIDDEN, "denied by policy"),
                RefusalCause::AuditUnavailable => {
                    (StatusCode::SERVICE_UNAVAILABLE, "audit unavailable")
                }
            };
            return Refusal {
                status,
                error,
                action: &action.name,
                params: &action.params,
                rule: &decision.rule_id,
                reason: &decision.reason,
                audit_id,
            }
            .response();
        }
    };

    // Leaves: to the address the agent dialled, verified against its name.
    strip_hop_by_hop(&mut parts.headers, upgrade.is_some());
    let scheme = if ctx.tls { "https" } else { "http" };
    let uri = format!(
        "{scheme}://{}{}{}",
        authority_for_uri(&host, port, ctx.tls),
        path,
        query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    parts.uri = match uri.parse() {
        Ok(u) => u,
        Err(e) => {
            let decision = refusal_decision(
                &ctx,
                "malformed-request",
                &format!("bad request target: {e}"),
            );
            return refuse(
                &ctx,
                started,
                Some(audit_id),
                &action.name,
                &action.params,
                &decision,
                &host,
                (&method, &path),
                Refused::With(StatusCode::BAD_REQUEST),
            )
            .await;
        }
    };
    if ctx.h2 {
        parts.headers.remove(header::HOST);
    }
    let injected = match super::credentials::inject(
        &ctx.d,
        &ctx.actor.agent,
        action.connector.as_deref(),
        &host,
        &mut parts.headers,
        &mut parts.uri,
    )
    .await
    {
        Ok(i) => i,
        Err(reason) => {
            // Allowed by policy but no credential could be applied (vault
            // unavailable): refused, and recorded as such beside the allow.
            tracing::info!(agent = %ctx.actor.agent.chain_display(), "credential refused: {reason}");
            return refuse_credential(&ctx, started, &action, &host, (&method, &path), &reason)
                .await;
        }
    };
    let client = ctx.d.pools.client(&target, &ctx.d.upstream_tls);
    let up_req = Request::from_parts(parts, body);
    let upstream_started = Instant::now();
    let upstream_result = client.request(up_req).await;
    crate::metrics::global().observe_upstream(upstream_started.elapsed());
    match upstream_result {
        Ok(mut resp) => {
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS
                && let Some(client_side) = upgrade
            {
                splice_upgrade(client_side, hyper::upgrade::on(&mut resp));
            }
            let (mut rparts, rbody) = resp.into_parts();
            if rparts.status != StatusCode::SWITCHING_PROTOCOLS {
                strip_hop_by_hop(&mut rparts.headers, false);
            }
            rparts.headers.insert("x-cordon-audit-id", audit_id.into());
            let mut rbody = body::boxed(rbody);
            if let Some(secret) = injected {
                super::redact::headers(&mut rparts.headers, &secret);
                rparts.headers.remove(header::CONTENT_LENGTH);
                rbody =
                    http_body_util::BodyExt::boxed(super::redact::RedactBody::new(rbody, secret));
            }
            if let Some(connector) = action.connector.as_deref() {
                rbody = super::cost::metered(&ctx.d, &ctx.actor.agent, connector, rbody);
            }
            Response::from_parts(rparts, rbody)
        }
        Err(e) => {
            let (status, reason) = match tls_verify_failure(&e) {
                Some(why) => (
                    StatusCode::BAD_GATEWAY,
                    format!("upstream TLS verification failed: {why}"),
                ),
                None => (
                    StatusCode::BAD_GATEWAY,
                    format!("upstream request failed: {e}"),
                ),
            };
            tracing::info!(agent = %ctx.actor.agent.chain_display(), %host, "{reason}");
            let decision = refusal_decision(&ctx, "upstream-error", &reason);
            refuse(
                &ctx,
                started,
                Some(audit_id),
                &action.name,
                &action.params,
                &decision,
                &host,
                (&method, &path),
                Refused::With(status),
            )
            .await
        }
    }
}

/// A credential problem (foreign, or none could be applied) is a 403 with
/// its own deny record.
async fn refuse_credential(
    ctx: &HttpCtx,
    started: Instant,
    action: &cordon_connectors::Action,
    host: &str,
    http: (&http::Method, &str),
    reason: &str,
) -> Response<ProxyBody> {
    let decision = refusal_decision(ctx, "credential", reason);
    refuse(
        ctx,
        started,
        None,
        &action.name,
        &action.params,
        &decision,
        host,
        http,
        Refused::Credential,
    )
    .await
}

/// Why a request is refused, for its status and the error it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// A credential problem: foreign, or none could be applied.
    Credential,
    /// Anything else, by the status it answers with.
    With(StatusCode),
}

impl Refused {
    fn status(self) -> StatusCode {
        match self {
            Refused::Credential => StatusCode::FORBIDDEN,
            Refused::With(s) => s,
        }
    }

    fn error(self) -> &'static str {
        match self {
            Refused::Credential => "credential refused",
            Refused::With(StatusCode::FORBIDDEN) => "denied by policy",
            Refused::With(_) => "request refused",
        }
    }
}

/// Answers with a refusal. Requests refused before a decision record was
/// written get their own record here, so every request is audited once.
#[allow(clippy::too_many_arguments)]
async fn refuse(
    ctx: &HttpCtx,
    started: Instant,
    audit_id: Option<u64>,
    action: &str,
    params: &Map<String, serde_json::Value>,
    decision: &Decision,
    host: &str,
    http: (&http::Method, &str),
    kind: Refused,
) -> Response<ProxyBody> {
    let audit_id = match audit_id {
        Some(id) => Some(id),
        None => {
            let rec = DecisionRecord {
                kind: EventKind::Request,
                actor: &ctx.actor,
                connector: None,
                action,
                params,
                decision,
                outcome: Some(AuditDecision::Deny),
                host: Some(host),
                dst: ctx.actor.origin.dst,
                http: Some((http.0.as_str(), http.1)),
                started,
            };
            append_refusal(&ctx.d.audit, rec.build()).await
        }
    };
    Refusal {
        status: kind.status(),
        error: kind.error(),
        action,
        params,
        rule: &decision.rule_id,
        reason: &decision.reason,
        audit_id,
    }
    .response()
}

#[cfg(test)]
mod refused_tests {
    use super::Refused;
    use http::StatusCode;

    #[test]
    fn a_refusal_names_its_kind_by_type_not_by_rule_id() {
        assert_eq!(Refused::Credential.status(), StatusCode::FORBIDDEN);
        assert_eq!(Refused::Credential.error(), "credential refused");
        assert_eq!(
            Refused::With(StatusCode::FORBIDDEN).error(),
            "denied by policy"
        );
        assert_eq!(
            Refused::With(StatusCode::BAD_REQUEST).error(),
            "request refused"
        );
    }
}
