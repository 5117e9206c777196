//! Stage 6: the request leaves, to the address the agent dialled, with the
//! chosen credential in it; the response comes back with echoes of the
//! secret redacted, its cost metered and the decision's record id on it.
use std::time::Instant;

use cordon_connectors::Action;
use http::{Request, Response, StatusCode, header, request::Parts};
use hyper::upgrade::OnUpgrade;

use super::{
    ask, aws_sign::AwsSigned, credential_plan::Chosen, head::Head, in_flight, jit_inject,
    outcome::Tracker, ws_h2,
};
use crate::{
    proxy::{
        answer,
        body::{self, ProxyBody},
        h1guard::Ticket,
        headers::{authority_for_uri, splice_upgrade, strip_hop_by_hop},
        redact,
        serve_http::HttpCtx,
        upstream::{Target, tls_verify_failure},
    },
    request::{Attribution, Kind, Pinned, Recorded, Refusal, caps},
};

pub struct Forward<'a> {
    pub ctx: &'a HttpCtx,
    pub pinned: &'a Pinned,
    pub head: &'a Head,
    pub action: &'a Action,
    pub chosen: Option<&'a Chosen<'a>>,
    /// An AWS request whose placeholder signature verified: re-signed.
    pub aws: Option<Box<AwsSigned>>,
    pub target: Target,
    /// The allowing decision records this request goes out under (one per
    /// action it holds); each gets an outcome record.
    pub decisions: Vec<u64>,
    pub started: Instant,
    /// Set when a body without a declared length went over the agent's
    /// cap on request bytes in flight (`in_flight`).
    pub over_cap: Option<in_flight::Tripwire>,
}

pub async fn forward(
    f: Forward<'_>,
    mut parts: Parts,
    body: ProxyBody,
    upgrade: Option<OnUpgrade>,
    ticket: Option<Ticket>,
) -> Response<ProxyBody> {
    let Forward {
        ctx,
        pinned,
        head,
        action,
        ..
    } = f;
    let cordon = || Attribution::cordon(pinned.version().clone());
    let audit_id = f.decisions.first().copied().unwrap_or_default();
    let tracker = Tracker::new(
        &ctx.env,
        &ctx.actor,
        action.connector.as_deref(),
        &action.name,
        &f.decisions,
    );
    let asked = || {
        ask(
            ctx,
            head,
            action.connector.as_deref(),
            &action.name,
            &action.params,
            f.started,
        )
    };
    let refuse = |refusal: Refusal| async move {
        let ask = asked();
        // Boxed: a refusal's future stays out of this one's, which every
        // forwarded request moves (see `pipeline::handle`).
        Box::pin(answer::refuse(&ctx.env, &ask, refusal)).await
    };

    strip_hop_by_hop(&mut parts.headers, upgrade.is_some());
    parts.uri = match rebuilt_uri(ctx.tls, head) {
        Ok(u) => u,
        Err(why) => {
            tracker.failed(why.clone());
            let refusal =
                Refusal::new(Kind::Malformed, why, cordon()).recorded(Recorded::Yes(audit_id));
            return refuse(refusal).await;
        }
    };
    // The upstream may speak another HTTP version than the agent did: the
    // authority travels in the URI, and hyper writes `Host` (HTTP/1.1) or
    // `:authority` (HTTP/2) for the connection it gets.
    parts.headers.remove(header::HOST);
    parts.version = http::Version::HTTP_11;
    // An HTTP/2 WebSocket goes upstream as an HTTP/1.1 upgrade.
    let websocket = head
        .websocket_h2
        .then(|| ws_h2::to_h1(&mut parts, rand::random()));
    // Boxed, and only when there is a credential to apply: minting and
    // re-signing make the largest future of the path, which a request
    // without a credential should not carry.
    let applied = if f.chosen.is_none() && f.aws.is_none() {
        Ok(jit_inject::Applied {
            injected: None,
            body,
        })
    } else {
        Box::pin(jit_inject::apply(
            &ctx.env,
            &ctx.actor.agent,
            f.chosen,
            f.aws,
            &mut parts,
            body,
        ))
        .await
    };
    let (injected, body) = match applied {
        Ok(a) => (a.injected, a.body),
        Err(reason) => {
            // Allowed by policy but no credential could be applied (vault
            // unavailable, nothing minted, or a plain-HTTP request): refused,
            // and recorded as such beside the allow.
            tracing::info!(agent = %ctx.actor.agent.chain_display(), "credential refused: {reason}");
            tracker.failed(reason.clone());
            return refuse(Refusal::new(Kind::CredentialUnavailable, reason, cordon())).await;
        }
    };
    if injected.is_some() {
        redact::ask_identity(&mut parts.headers);
        if upgrade.is_some() {
            if let Some(why) = redact::upgrade::unscrubbable_request(&parts.headers) {
                tracker.failed(why.clone());
                return refuse(Refusal::new(Kind::CredentialUnavailable, why, cordon())).await;
            }
            redact::upgrade::no_extensions(&mut parts.headers);
        }
    }
    let client = ctx.env.pools.client(&f.target, &ctx.env.upstream_tls);
    let upstream_started = Instant::now();
    let body = tracker.count_up(body);
    let result = client.request(Request::from_parts(parts, body)).await;
    crate::metrics::global().observe_upstream(upstream_started.elapsed());
    let mut resp = match result {
        Ok(resp) => resp,
        Err(_) if let Some(hit) = f.over_cap.as_ref().and_then(in_flight::Tripwire::hit) => {
            // The body was cut at the cap: the agent's answer is the cap's,
            // recorded once per burst like every cap refusal.
            tracker.failed(hit.reason());
            let refusal = Box::pin(caps::record(
                &ctx.env.audit,
                &asked(),
                &hit,
                pinned.version().clone(),
            ))
            .await;
            return refuse(refusal).await;
        }
        Err(e) => {
            let (kind, reason) = match tls_verify_failure(&e) {
                Some(why) => (
                    Kind::UpstreamTls,
                    format!("upstream TLS verification failed: {why}"),
                ),
                None => (
                    Kind::UpstreamFailed,
                    format!("upstream request failed: {e}"),
                ),
            };
            tracing::info!(agent = %ctx.actor.agent.chain_display(), host = %head.host, "{reason}");
            tracker.failed(reason.clone());
            let refusal = Refusal::new(kind, reason, cordon()).recorded(Recorded::Yes(audit_id));
            return refuse(refusal).await;
        }
    };
    let switched = match &websocket {
        Some(hs) => hs.accepted(resp.status(), resp.headers()),
        None => resp.status() == StatusCode::SWITCHING_PROTOCOLS,
    };
    if websocket.is_some() && !switched && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        // Switched without echoing the key: not the socket that was asked
        // for, and an HTTP/2 client cannot be handed a 101.
        let reason = "the upstream's WebSocket handshake did not echo the key".to_string();
        tracker.failed(reason.clone());
        let refusal =
            Refusal::new(Kind::UpstreamFailed, reason, cordon()).recorded(Recorded::Yes(audit_id));
        return refuse(refusal).await;
    }
    if switched
        && let Some(echoes) = &injected
        && let Some(why) = redact::upgrade::unscrubbable_switch(resp.headers(), echoes)
    {
        tracker.failed(why.clone());
        let refusal =
            Refusal::new(Kind::UpstreamFailed, why, cordon()).recorded(Recorded::Yes(audit_id));
        return refuse(refusal).await;
    }
    if switched && let Some(client_side) = upgrade {
        let upstream_side = hyper::upgrade::on(&mut resp);
        let spliced: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match &injected {
            Some(echoes) => Box::pin(redact::upgrade::splice(
                client_side,
                upstream_side,
                echoes.clone(),
                ctx.actor.agent.chain_display(),
            )),
            None => Box::pin(splice_upgrade(client_side, upstream_side)),
        };
        // It outlives this request and its connection's task: the kill switch cuts it as
        // one of the agent's live connections.
        let (conns, agent) = (ctx.env.conns.clone(), ctx.actor.agent.clone());
        tokio::spawn(async move {
            if conns.until_cut(&agent, spliced).await.is_none() {
                tracing::info!(agent = %agent.chain_display(), "upgraded connection cut by the kill switch");
            }
        });
        if let Some(t) = ticket {
            t.upgraded();
        }
    }
    let (mut rparts, rbody) = resp.into_parts();
    if !switched
        && let Some(echoes) = &injected
        && let Some(why) = redact::unscrubbable(&rparts.headers, echoes)
    {
        tracker.failed(why.clone());
        let refusal =
            Refusal::new(Kind::UpstreamFailed, why, cordon()).recorded(Recorded::Yes(audit_id));
        return refuse(refusal).await;
    }
    if !switched {
        strip_hop_by_hop(&mut rparts.headers, false);
    } else if websocket.is_some() {
        ws_h2::client_head(&mut rparts);
    }
    rparts.headers.insert("x-cordon-audit-id", audit_id.into());
    let mut rbody = body::boxed(rbody);
    if let Some(echoes) = injected {
        redact::headers(&mut rparts.headers, &echoes);
        rparts.headers.remove(header::CONTENT_LENGTH);
        rbody = http_body_util::BodyExt::boxed(redact::RedactBody::new(rbody, echoes));
    }
    let mut spend = None;
    if let Some(connector) = action.connector.as_deref() {
        let metered =
            crate::proxy::cost::metered(&ctx.env, pinned, &ctx.actor.agent, connector, rbody);
        (rbody, spend) = metered;
    }
    let rbody = tracker.answered(rparts.status.as_u16(), rbody, spend);
    Response::from_parts(rparts, rbody)
}

/// The upstream URI: the agent's path and query on the authority it named.
/// Written into one buffer and parsed once: it is built for every request.
fn rebuilt_uri(tls: bool, head: &Head) -> Result<http::Uri, String> {
    let authority = authority_for_uri(&head.host, head.port, tls);
    let query = head.query.as_deref();
    let mut uri = String::with_capacity(
        8 + authority.len() + head.path.len() + query.map_or(0, |q| q.len() + 1),
    );
    uri.push_str(if tls { "https://" } else { "http://" });
    uri.push_str(&authority);
    uri.push_str(&head.path);
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    http::Uri::try_from(uri).map_err(|e| format!("bad request target: {e}"))
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method};

    use super::*;

    fn head(target: &str, dialled: u16) -> Head {
        Head::read(
            &Method::GET,
            &target.parse().unwrap(),
            &HeaderMap::new(),
            dialled,
        )
    }

    #[test]
    fn the_upstream_uri_keeps_path_and_query_on_the_named_authority() {
        let uri = rebuilt_uri(true, &head("https://API.example.com/a/b?x=1&y=2", 443)).unwrap();
        assert_eq!(uri, "https://api.example.com/a/b?x=1&y=2");
        let uri = rebuilt_uri(false, &head("http://example.com:8080/p", 8080)).unwrap();
        assert_eq!(uri, "http://example.com:8080/p");
        let uri = rebuilt_uri(true, &head("https://[::1]:8443/v6", 8443)).unwrap();
        assert_eq!(uri, "https://[::1]:8443/v6");
    }
}
