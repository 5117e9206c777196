//! Stage 4b: AWS requests, before the decision. An AWS connector's request
//! is named `aws.<service>.<operation>` (`cordon_jit::aws::aws_action`,
//! when no route named it), and, when the agent's policy binds a credential
//! for the connector, its SigV4 signature is verified with the placeholder
//! Cordon issued to this instance. A request signed with a real key, with
//! another instance's placeholder, or altered after signing is refused
//! here, before anything is decided or minted; after an allow `jit_inject`
//! re-signs it with the instance's role session.
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use cordon_connectors::{Action, Completion};
use cordon_jit::aws::{self, RequestHead, SigError, Verified};
use http::{HeaderMap, request::Parts};
use http_body_util::{BodyExt, Full};

use super::head::Head;
use crate::{
    proxy::body::ProxyBody,
    proxy::env::instance_of,
    proxy::serve_http::HttpCtx,
    request::{Attribution, Kind, Pinned, Refusal},
};

/// A body the signature covers without declaring its hash (DynamoDB, STS
/// and other JSON/query services) is read whole to verify; this bounds it.
pub const MAX_VERIFIED_BODY: usize = 1024 * 1024;

/// A verified AWS request, carried to `jit_inject` for re-signing.
#[derive(Debug)]
pub struct AwsSigned {
    pub verified: Verified,
    /// The authority the agent signed as its `Host`.
    pub authority: String,
}

/// Whether `connector` serves AWS: its requests are SigV4-signed and
/// named by `aws_action` (the shipped `aws-*` connectors).
pub fn is_aws(connector: &str) -> bool {
    connector.starts_with("aws-")
}

/// The authority the request was addressed to, as the agent signed it
/// (`:authority` for HTTP/2, `Host` for HTTP/1.1).
pub fn authority(parts: &Parts) -> String {
    parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Whether a connector route named the action (Bedrock's paths name the
/// operation); any other AWS request arrives as `http.request`.
pub fn route_named(action: &Action) -> bool {
    action.name != "http.request"
}

/// Names an AWS request (pure), once from the head and again, when the body
/// had to be read for its signature, from the head and body (STS's
/// `Action=` and DynamoDB's `TableName` are in the body). A request no
/// route named gets `aws_action`'s name and params; one `aws_action` cannot
/// read keeps `http.request`, which policy decides like any other. A
/// route-named action (Bedrock's) keeps its name and params, and gains the
/// params every AWS action has (`service`, `operation`, `region`), so a
/// policy can test `params.region` whichever way the action was named.
pub fn name(action: &mut Action, routed: bool, head: &RequestHead<'_>, body: Option<&[u8]>) {
    let Some(named) = aws::aws_action(head, body) else {
        return;
    };
    if !routed {
        action.name = named.name;
        action.params = named.params;
        return;
    }
    for (k, v) in named.params {
        action.params.entry(k).or_insert(v);
    }
}

/// The refusal kind of a signature that did not verify: a real key is a
/// foreign credential; everything else is a refused signature.
pub fn refusal_kind(e: &SigError) -> Kind {
    match e {
        SigError::ForeignCredential { .. } => Kind::ForeignCredential,
        _ => Kind::SignatureRefused,
    }
}

/// Whether the agent's policy binds a credential for `connector`.
fn bound(pinned: &Pinned, agent: &str, connector: &str) -> bool {
    pinned
        .policy
        .as_ref()
        .is_some_and(|p| p.bindings_of(agent, connector).is_some())
}

/// Names the request, and verifies its signature when the connector is
/// bound. Returns the body (whole again if it had to be read).
/// Whether [`stage`] has anything to do: a plain HTTP action of an AWS
/// connector (checked first so other requests do not carry its future).
pub fn applies(completion: &Completion) -> bool {
    matches!(completion, Completion::Http(a) if a.connector.as_deref().is_some_and(is_aws))
}

pub async fn stage(
    ctx: &HttpCtx,
    pinned: &Pinned,
    head: &Head,
    parts: &Parts,
    completion: &mut Completion,
    body: ProxyBody,
) -> Result<(Option<Box<AwsSigned>>, ProxyBody), Refusal> {
    // AWS requests are plain HTTP: one action each.
    let Completion::Http(action) = completion else {
        return Ok((None, body));
    };
    let Some(connector) = action.connector.clone().filter(|c| is_aws(c)) else {
        return Ok((None, body));
    };
    let authority = authority(parts);
    let routed = route_named(action);
    name(
        action,
        routed,
        &jit_head(head, &authority, &parts.headers),
        None,
    );
    let cordon = Attribution::cordon(pinned.version().clone());
    if !bound(pinned, ctx.actor.agent.agent(), &connector) {
        // Nothing to re-sign with, so nothing to verify; but a real key is
        // refused as for any connector. (Not stripped even when configured:
        // a SigV4 request without its signature is not the same request.)
        if let Some(key) = signing_key(&parts.headers, head.query.as_deref())
            && !aws::is_placeholder_key(&key)
        {
            let e = SigError::ForeignCredential { access_key_id: key };
            return Err(Refusal::new(Kind::ForeignCredential, e.to_string(), cordon));
        }
        return Ok((None, body));
    }
    let instance = instance_of(&ctx.actor.agent);
    let Some(placeholder) = ctx.env.jit.aws_placeholders.for_instance(&instance) else {
        let why = format!(
            "no AWS placeholder was issued to this instance, so its {connector} request cannot be verified"
        );
        return Err(Refusal::new(Kind::SignatureRefused, why, cordon.clone()));
    };
    let now = SystemTime::now();
    let first = aws::verify(
        &jit_head(head, &authority, &parts.headers),
        &placeholder,
        None,
        now,
    );
    let (verified, body) = match first {
        Ok(verified) => (verified, body),
        Err(SigError::BodyRequired) => {
            let whole = match read_whole(body).await {
                Ok(w) => w,
                Err(why) => return Err(Refusal::new(Kind::Malformed, why, cordon.clone())),
            };
            let jhead = jit_head(head, &authority, &parts.headers);
            let verified = aws::verify(&jhead, &placeholder, Some(&whole), now)
                .map_err(|e| Refusal::new(refusal_kind(&e), e.to_string(), cordon.clone()))?;
            name(action, routed, &jhead, Some(&whole));
            (verified, Full::new(whole).map_err(|e| match e {}).boxed())
        }
        Err(e) => {
            return Err(Refusal::new(
                refusal_kind(&e),
                e.to_string(),
                cordon.clone(),
            ));
        }
    };
    Ok((
        // Boxed: it is large, and `pipeline::handle`'s future, which every
        // request moves, would otherwise carry its room.
        Some(Box::new(AwsSigned {
            verified,
            authority,
        })),
        body,
    ))
}

/// The access key id a SigV4 request is signed with (pure): from the
/// `Authorization` header's `Credential=` or a presigned URL's
/// `X-Amz-Credential`.
pub fn signing_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(str::to_string);
    let from_query = || {
        query?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.eq_ignore_ascii_case("X-Amz-Credential")
                .then(|| percent_decode(value))
        })
    };
    let credential = from_header.or_else(from_query)?;
    let key = credential.split('/').next()?.trim();
    (!key.is_empty()).then(|| key.to_string())
}

/// Only the scope separator matters here: key ids are letters and digits.
fn percent_decode(s: &str) -> String {
    s.replace("%2F", "/").replace("%2f", "/")
}

/// The request as `cordon-jit` reads it.
pub fn jit_head<'a>(head: &'a Head, authority: &'a str, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead::new(
        &head.method,
        authority,
        &head.path,
        head.query.as_deref(),
        headers,
    )
}

/// Reads a body the signature covers, up to `MAX_VERIFIED_BODY`.
async fn read_whole(mut body: ProxyBody) -> Result<Bytes, String> {
    let mut whole = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the signed AWS request body: {e}"))?;
        if let Some(data) = frame.data_ref() {
            whole.extend_from_slice(data);
        }
        if whole.len() > MAX_VERIFIED_BODY {
            return Err(format!(
                "a signed AWS request body over {MAX_VERIFIED_BODY} bytes without a declared hash cannot be verified"
            ));
        }
    }
    Ok(whole.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Method};

    fn action(name: &str) -> Action {
        Action {
            connector: Some("aws-s3".into()),
            name: name.into(),
            params: Default::default(),
            enrich: Vec::new(),
        }
    }

    #[test]
    fn only_the_aws_connectors_are_signed() {
        assert!(is_aws("aws-s3"));
        assert!(is_aws("aws-bedrock-runtime"));
        assert!(!is_aws("github"));
        assert!(!is_aws("openai"));
    }

    #[test]
    fn an_unrouted_s3_request_is_named_by_its_operation() {
        let headers = HeaderMap::new();
        let head = RequestHead::new(
            &Method::DELETE,
            "reports.s3.us-east-1.amazonaws.com",
            "/q3.csv",
            None,
            &headers,
        );
        let mut a = action("http.request");
        name(&mut a, false, &head, None);
        assert_eq!(a.name, "aws.s3.delete_object");
        assert_eq!(a.params["bucket"], "reports");
        assert_eq!(a.params["key"], "q3.csv");
    }

    #[test]
    fn a_route_named_action_is_kept() {
        let headers = HeaderMap::new();
        let head = RequestHead::new(&Method::GET, "s3.amazonaws.com", "/b/k", None, &headers);
        let mut a = action("aws.custom.read");
        name(&mut a, true, &head, None);
        assert_eq!(a.name, "aws.custom.read");
    }

    #[test]
    fn a_route_named_bedrock_call_keeps_its_params_and_gains_region_and_operation() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=ASIACRDNAAAAAAAAAAAA/20260101/eu-west-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            ),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
        let head = RequestHead::new(
            &Method::POST,
            "bedrock-runtime.eu-west-1.amazonaws.com",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            None,
            &headers,
        );
        let mut a = action("aws.bedrock.invoke_model");
        a.params.insert("model".into(), "from-the-route".into());
        let routed = route_named(&a);
        name(&mut a, routed, &head, None);
        assert_eq!(a.name, "aws.bedrock.invoke_model");
        assert_eq!(
            a.params["model"], "from-the-route",
            "the route's params stand"
        );
        assert_eq!(a.params["region"], "eu-west-1");
        assert_eq!(a.params["service"], "bedrock");
        assert_eq!(a.params["operation"], "InvokeModel");
    }

    #[test]
    fn a_query_protocol_call_is_named_again_from_its_body_once_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let head = RequestHead::new(
            &Method::POST,
            "sts.us-east-1.amazonaws.com",
            "/",
            None,
            &headers,
        );
        let mut a = action("http.request");
        let routed = route_named(&a);
        name(&mut a, routed, &head, None);
        assert_eq!(a.name, "aws.sts.unknown", "the head alone does not say");
        name(
            &mut a,
            routed,
            &head,
            Some(b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx"),
        );
        assert_eq!(a.name, "aws.sts.assume_role");
        assert_eq!(a.params["role_arn"], "arn:aws:iam::1:role/x");
        assert_eq!(a.params["operation"], "AssumeRole");
    }

    #[test]
    fn a_real_key_is_a_foreign_credential_and_the_rest_refused_signatures() {
        let foreign = SigError::ForeignCredential {
            access_key_id: "AKIAREALKEY".into(),
        };
        assert_eq!(refusal_kind(&foreign), Kind::ForeignCredential);
        for e in [
            SigError::SignatureMismatch,
            SigError::ForeignPlaceholder {
                access_key_id: "ASIACRDNX".into(),
            },
            SigError::Unsigned,
        ] {
            assert_eq!(refusal_kind(&e), Kind::SignatureRefused);
        }
    }

    #[test]
    fn the_signing_key_is_read_from_the_header_or_a_presigned_query() {
        let mut h = HeaderMap::new();
        assert_eq!(signing_key(&h, None), None);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAREALKEY123/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(signing_key(&h, None).as_deref(), Some("AKIAREALKEY123"));
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIACRDNAAAA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request";
        assert_eq!(
            signing_key(&HeaderMap::new(), Some(q)).as_deref(),
            Some("ASIACRDNAAAA")
        );
        assert_eq!(signing_key(&HeaderMap::new(), Some("prefix=a")), None);
    }

    #[test]
    fn the_signed_authority_is_the_h2_authority_or_the_host_header() {
        let (parts, ()) = http::Request::builder()
            .uri("https://b.s3.amazonaws.com/k")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(authority(&parts), "b.s3.amazonaws.com");
        let (mut parts, ()) = http::Request::builder()
            .uri("/k")
            .body(())
            .unwrap()
            .into_parts();
        parts.headers.insert(
            http::header::HOST,
            HeaderValue::from_static("b.s3.amazonaws.com:8443"),
        );
        assert_eq!(authority(&parts), "b.s3.amazonaws.com:8443");
    }
}
