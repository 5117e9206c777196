//! Where a request is decided. `handle` runs the stages in order, each a
//! function over the request's pinned snapshot that returns a typed value
//! or a `Refusal`:
//!
//! 1. `head`: where the request says it goes (pure);
//! 2. `checks`: host, framing headers, domain fronting (pure);
//! 3. `action`: the connectors name the request's actions (one, or one per
//!    MCP message or pushed ref) and their params;
//! 4. `credential_plan::presence`: a credential Cordon did not issue is
//!    refused (or stripped) before anything is decided (pure);
//!    `aws_sign`: AWS requests named and their placeholder signature
//!    verified;
//! 5. enrichment, then `decide_all`: every action through the `Decider`
//!    (the daemon: policy, approvals, the decision record); any refusal
//!    refuses the request, answered in its protocol (`refused`);
//! 6. `credential_one` (pure): the one binding every action chose;
//! 7. `forward`: the credential goes in (`jit_inject`: plain, a minted
//!    GitHub token, or the AWS request re-signed), the request leaves, the response
//!    comes back; MCP `tools/list` answers are filtered
//!    (`tools_filter_body`).
//!
//! Any refusal goes to `answer::refuse` (or `refused::answer` once recorded),
//! which records it if no stage has.
pub mod action;
pub mod aws_sign;
pub mod checks;
pub mod credential_one;
pub mod credential_plan;
pub mod decide_all;
pub mod forward;
pub mod git_answer;
pub mod head;
pub mod in_flight;
pub mod jit_inject;
pub mod mcp_answer;
pub mod outcome;
pub mod refused;
pub mod tools_filter_body;
pub mod ws_h2;

use std::{sync::Arc, time::Instant};

use cordon_audit::EventKind;
use cordon_connectors::ProtocolKind;
use http::{Request, Response, header, request::Parts};
use hyper::body::Incoming;
use serde_json::Map;

use self::{
    checks::ConnFacts,
    credential_plan::{Presence, foreign_reason},
    decide_all::Refused,
    head::Head,
};
use super::{
    answer, body::ProxyBody, headers::is_upgrade, inject, serve_http::HttpCtx, upstream::Target,
};
use crate::request::{Ask, Attribution, Kind, Pinned, Refusal, caps};

/// Every request moves this future into a box (`serve_http`), so the
/// stages only some requests reach (refusals, AWS signatures, enrichment,
/// credentials) are boxed where they are awaited: inline, they made it 20 KB,
/// copied per request into memory the allocator had just handed back.
pub async fn handle(ctx: Arc<HttpCtx>, mut req: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    // Answers "not upgraded" unless the upstream switches protocols.
    let ticket = ctx.upgrades.as_ref().map(|l| l.ticket());
    // The one snapshot this request is decided under, taken now that its
    // head is complete.
    let pinned = ctx.env.snapshots.pin();
    let cordon = Attribution::cordon(pinned.version().clone());
    let no_params = Map::new();

    let websocket_h2 = ws_h2::is_websocket_connect(req.method(), req.extensions());
    let head = Head::read(
        req.method(),
        req.uri(),
        req.headers(),
        ctx.actor.origin.dst.port(),
    )
    .websocket_over_h2(websocket_h2);
    let conn = ConnFacts {
        sni: ctx.sni.as_deref(),
        resolved: ctx.resolved.as_deref(),
        tls: ctx.tls,
        dst_ip: ctx.actor.origin.dst.ip(),
    };
    if let Err(refusal) = checks::check(&conn, &head.host, req.headers(), &cordon) {
        let ask = ask(&ctx, &head, None, "http.request", &no_params, started);
        return Box::pin(answer::refuse(&ctx.env, &ask, refusal)).await;
    }
    // The declared body counts against the agent's request bytes in flight
    // until this request's answer starts.
    let _in_flight = match ctx
        .env
        .admission
        .request_bytes(&ctx.actor.agent, in_flight::declared_length(req.headers()))
    {
        Ok(permit) => permit,
        Err(hit) => {
            let ask = ask(&ctx, &head, None, "http.request", &no_params, started);
            let refusal = caps::record(&ctx.env.audit, &ask, &hit, pinned.version().clone()).await;
            return Box::pin(answer::refuse(&ctx.env, &ask, refusal)).await;
        }
    };

    let upgrade = (is_upgrade(req.headers()) || websocket_h2).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, incoming) = req.into_parts();
    let read = match action::read(&pinned, &head, &parts.headers, incoming).await {
        Ok(r) => r,
        Err(unread) => {
            let ask = ask(
                &ctx,
                &head,
                unread.connector.as_deref(),
                &unread.action,
                &unread.params,
                started,
            );
            let refusal = Refusal::new(Kind::Malformed, unread.why.to_string(), cordon);
            return Box::pin(answer::refuse(&ctx.env, &ask, refusal)).await;
        }
    };
    let action::Read {
        mut completion,
        protocol,
        mcp_server,
        body,
    } = read;
    let connector = action::primary(&completion).connector.clone();
    // A body without a declared length is counted as it streams.
    let (body, over_cap) =
        if upgrade.is_none() && in_flight::streams_undeclared(&parts.headers, &body) {
            let metered =
                in_flight::Metered::new(body, ctx.env.admission.clone(), ctx.actor.agent.clone());
            let wire = metered.tripwire();
            (http_body_util::BodyExt::boxed(metered), Some(wire))
        } else {
            (body, None)
        };

    if let Err(refusal) =
        credential_presence(&ctx, &pinned, &head, &mut parts, connector.as_deref())
    {
        let a = action::primary(&completion);
        let ask = ask(&ctx, &head, None, &a.name, &a.params, started);
        return Box::pin(answer::refuse(&ctx.env, &ask, refusal)).await;
    }

    // AWS: named, and the placeholder signature verified, before deciding.
    let staged = if aws_sign::applies(&completion) {
        Box::pin(aws_sign::stage(
            &ctx,
            &pinned,
            &head,
            &parts,
            &mut completion,
            body,
        ))
        .await
    } else {
        Ok((None, body))
    };
    let (aws, body) = match staged {
        Ok(verified) => verified,
        Err(refusal) => {
            let a = action::primary(&completion);
            let ask = ask(
                &ctx,
                &head,
                a.connector.as_deref(),
                &a.name,
                &a.params,
                started,
            );
            return Box::pin(answer::refuse(&ctx.env, &ask, refusal)).await;
        }
    };

    let target = target(&ctx, &head, upgrade.is_some());
    for action in action::actions_mut(&mut completion) {
        if !action.enrich.is_empty() {
            Box::pin(super::enrich::enrich(
                &ctx.env,
                &pinned,
                &ctx.actor.agent,
                &target,
                &head,
                action,
            ))
            .await;
        }
    }
    let actions = completion.actions();
    let decisions = match decide_all::decide_all(&ctx, &pinned, &head, &actions, started).await {
        Ok(ids) => ids,
        Err(refused) => return Box::pin(refused::answer(&completion, &refused, body)).await,
    };

    let chosen =
        match credential_one::choose_one(&pinned, ctx.actor.agent.agent(), &head.host, &actions) {
            Ok(chosen) => chosen,
            Err(mismatch) => {
                let refused = Box::pin(credential_mismatch(
                    &ctx, &head, &actions, &decisions, &mismatch, cordon, started,
                ))
                .await;
                return Box::pin(refused::answer(&completion, &refused, body)).await;
            }
        };
    let mcp = matches!(
        protocol,
        ProtocolKind::McpMessages | ProtocolKind::McpStream
    );
    if mcp {
        // A compressed answer could not be read, so not filtered.
        parts.headers.remove(header::ACCEPT_ENCODING);
    }
    let primary = actions[0];
    let resp = forward::forward(
        forward::Forward {
            ctx: &ctx,
            pinned: &pinned,
            head: &head,
            action: primary,
            chosen: chosen.as_ref(),
            aws,
            target,
            decisions: decisions.clone(),
            started,
            over_cap,
        },
        parts,
        body,
        upgrade,
        ticket,
    )
    .await;
    let Some(server) = mcp_server.filter(|_| mcp) else {
        return resp;
    };
    let offer = tools_filter_body::Offer {
        pinned: pinned.clone(),
        chain: ctx.actor.agent.chain.clone(),
        connector,
        server,
        method: head.method.as_str().to_string(),
        host: head.host.clone(),
        path: head.path.clone(),
    };
    tools_filter_body::respond(resp, &completion, protocol, offer, decisions[0], primary)
}

/// Allowed, but no one credential serves every action: the request is
/// refused (recorded against the action that chose differently) and the
/// allowed actions get `failed` outcomes.
async fn credential_mismatch(
    ctx: &HttpCtx,
    head: &Head,
    actions: &[&cordon_connectors::Action],
    decisions: &[u64],
    mismatch: &credential_one::Mismatch,
    cordon: Attribution,
    started: Instant,
) -> Refused {
    let reason = mismatch.reason(actions);
    decide_all::unforwarded(ctx, actions, decisions, &reason);
    let refusal = Refusal::new(Kind::CredentialUnavailable, reason, cordon);
    let a = actions[mismatch.other];
    let ask = ask(
        ctx,
        head,
        a.connector.as_deref(),
        &a.name,
        &a.params,
        started,
    );
    Refused::one(
        mismatch.other,
        answer::record(&ctx.env, &ask, refusal).await,
    )
}

/// Stage 4: a credential the agent presented that Cordon did not issue is
/// refused, or stripped when configured (Cordon's, if one is bound, is
/// injected after the decision).
fn credential_presence(
    ctx: &HttpCtx,
    pinned: &Pinned,
    head: &Head,
    parts: &mut Parts,
    connector: Option<&str>,
) -> Result<(), Refusal> {
    match credential_plan::presence(
        pinned,
        connector,
        &head.host,
        &parts.headers,
        &parts.uri,
        ctx.env.settings.foreign_credentials,
    ) {
        Presence::Clean => Ok(()),
        Presence::Strip(scheme) => {
            tracing::info!(agent = %ctx.actor.agent.chain_display(), "stripped a credential Cordon did not issue");
            inject::strip(scheme, &mut parts.headers);
            Ok(())
        }
        Presence::Refuse => Err(Refusal::new(
            Kind::ForeignCredential,
            foreign_reason(connector),
            Attribution::cordon(pinned.version().clone()),
        )),
    }
}

/// The question a request asks, for the decision and for refusal records.
pub(super) fn ask<'a>(
    ctx: &'a HttpCtx,
    head: &'a Head,
    connector: Option<&'a str>,
    action: &'a str,
    params: &'a Map<String, serde_json::Value>,
    started: Instant,
) -> Ask<'a> {
    Ask {
        kind: EventKind::Request,
        actor: &ctx.actor,
        connector,
        action,
        params,
        host: Some(&head.host),
        http: Some((head.method.as_str(), &head.path)),
        started,
    }
}

/// Where the request leaves for: the address the agent dialled, verified
/// against the name it asked for.
fn target(ctx: &HttpCtx, head: &Head, upgrade: bool) -> Target {
    Target {
        chain: ctx.actor.agent.chain_display(),
        dst: ctx.actor.origin.dst,
        tls_name: ctx.tls.then(|| head.host.clone()),
        offer_h2: ctx.tls && !upgrade,
    }
}
