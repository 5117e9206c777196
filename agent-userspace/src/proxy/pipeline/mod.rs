//! Where a request is decided. `handle` runs the stages in order, each a
//! function over the request's pinned snapshot that returns a typed value
//! or a `Refusal`:
//!
//! 1. `head`: where the request says it goes (pure);
//! 2. `checks`: host, framing headers, domain fronting (pure);
//! 3. `action`: the connectors name the action and its params;
//! 4. `credential_plan::presence`: a credential Cordon did not issue is
//!    refused (or stripped) before anything is decided (pure);
//! 5. enrichment, then the decision (`Decider`, the daemon): policy,
//!    approvals, the decision record;
//! 6. `credential_plan::choose` (pure) and `forward`: the binding's
//!    credential goes in, the request leaves, the response comes back.
//!
//! Any refusal goes to `answer::refuse`, which records it if no stage has.
pub mod action;
pub mod checks;
pub mod credential_plan;
pub mod forward;
pub mod head;
pub mod outcome;

use std::{sync::Arc, time::Instant};

use cordon_audit::EventKind;
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Map;

use self::{
    checks::ConnFacts,
    credential_plan::{Presence, foreign_reason},
    head::Head,
};
use super::{
    answer, body::ProxyBody, headers::is_upgrade, inject, serve_http::HttpCtx, upstream::Target,
};
use crate::request::{Answer, Ask, Attribution, Kind, Refusal};

pub async fn handle(ctx: Arc<HttpCtx>, mut req: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    // Answers "not upgraded" unless the upstream switches protocols.
    let ticket = ctx.upgrades.as_ref().map(|l| l.ticket());
    // The one snapshot this request is decided under, taken now that its
    // head is complete.
    let pinned = ctx.env.snapshots.pin();
    let cordon = Attribution::cordon(pinned.version().clone());
    let no_params = Map::new();

    let head = Head::read(
        req.method(),
        req.uri(),
        req.headers(),
        ctx.actor.origin.dst.port(),
    );
    let conn = ConnFacts {
        sni: ctx.sni.as_deref(),
        resolved: ctx.resolved.as_deref(),
        tls: ctx.tls,
        dst_ip: ctx.actor.origin.dst.ip(),
    };
    if let Err(refusal) = checks::check(&conn, &head.host, req.headers(), &cordon) {
        let ask = ask(&ctx, &head, None, "http.request", &no_params, started);
        return answer::refuse(&ctx.env, &ask, refusal).await;
    }

    let upgrade = is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, incoming) = req.into_parts();
    let read = match action::read(&pinned, &head, &parts.headers, incoming).await {
        Ok(r) => r,
        Err(why) => {
            let ask = ask(&ctx, &head, None, "http.request", &no_params, started);
            let refusal = Refusal::new(Kind::Malformed, why, cordon);
            return answer::refuse(&ctx.env, &ask, refusal).await;
        }
    };
    let mut action = read.action;
    let connector = action.connector.clone();

    match credential_plan::presence(
        &pinned,
        connector.as_deref(),
        &head.host,
        &parts.headers,
        &parts.uri,
        ctx.env.settings.foreign_credentials,
    ) {
        Presence::Clean => {}
        Presence::Strip => {
            // Configured to strip: the agent's own credential never leaves;
            // Cordon's (if one is bound) is injected after the decision.
            tracing::info!(agent = %ctx.actor.agent.chain_display(), "stripped a credential Cordon did not issue");
            let scheme = connector
                .as_deref()
                .and_then(|c| pinned.connectors.connector(c))
                .and_then(|c| c.credential_for_host(&head.host))
                .map(|s| s.scheme());
            inject::strip(scheme, &mut parts.headers);
        }
        Presence::Refuse => {
            let refusal = Refusal::new(
                Kind::ForeignCredential,
                foreign_reason(connector.as_deref()),
                cordon,
            );
            let ask = ask(&ctx, &head, None, &action.name, &action.params, started);
            return answer::refuse(&ctx.env, &ask, refusal).await;
        }
    }

    let target = target(&ctx, &head, upgrade.is_some());
    if !action.enrich.is_empty() {
        super::enrich::enrich(
            &ctx.env,
            &pinned,
            &ctx.actor.agent,
            &target,
            &head,
            &mut action,
        )
        .await;
    }
    let decided = {
        let ask = ask(
            &ctx,
            &head,
            connector.as_deref(),
            &action.name,
            &action.params,
            started,
        );
        ctx.env.decider.decide(&pinned, ask).await
    };
    let audit_id = match decided {
        Answer::Allow { audit_id } => audit_id,
        Answer::Refuse(refusal) => {
            let ask = ask(
                &ctx,
                &head,
                connector.as_deref(),
                &action.name,
                &action.params,
                started,
            );
            return answer::refuse(&ctx.env, &ask, refusal).await;
        }
    };

    let chosen = credential_plan::choose(
        &pinned,
        ctx.actor.agent.agent(),
        connector.as_deref(),
        &head.host,
        &action.name,
        &action.params,
    );
    forward::forward(
        forward::Forward {
            ctx: &ctx,
            pinned: &pinned,
            head: &head,
            action: &action,
            chosen: chosen.as_ref(),
            target,
            decisions: vec![audit_id],
            started,
        },
        parts,
        read.body,
        upgrade,
        ticket,
    )
    .await
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
