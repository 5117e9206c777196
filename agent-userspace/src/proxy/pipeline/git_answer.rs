//! A refused push answered in git's report-status format, so `git push`
//! prints `! [remote rejected] main -> main (denied by policy: …)`. Any
//! refused ref refuses the whole push; the other refs are reported as
//! refused because of it.
use std::time::Duration;

use bytes::Bytes;
use cordon_connectors::git::{Push, RECEIVE_PACK_RESULT_CONTENT_TYPE, RefRefusal, refusal_body};
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Full};

use crate::{
    proxy::{answer, body::ProxyBody},
    request::Refusal,
};

/// The reason git prints for refs not refused themselves.
pub const OTHER_REF: &str = "push refused: another ref was denied by policy";

/// How much of an unread push body is read (and dropped) before answering,
/// and for how long: git reads the answer only once it has sent the pack,
/// so answering early would show it a broken pipe instead of the reason.
const DRAIN_LIMIT: usize = 256 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// One report line per refused ref: "<why>: <reason>".
pub fn ref_refusals(push: &Push, refused: &[(usize, Refusal)]) -> Vec<RefRefusal> {
    refused
        .iter()
        .filter_map(|(i, r)| {
            let update = push.updates.get(*i)?;
            Some(RefRefusal {
                refname: update.command.refname.clone(),
                reason: format!("{}: {}", r.kind().error(), r.reason()),
            })
        })
        .collect()
}

/// The answer refusing `push` (HTTP 200, as receive-pack answers), after
/// reading what is left of its body.
pub async fn response(
    push: &Push,
    refused: &[(usize, Refusal)],
    rest: ProxyBody,
) -> Response<ProxyBody> {
    drain(rest).await;
    let body = refusal_body(&push.commands, &ref_refusals(push, refused), OTHER_REF);
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RECEIVE_PACK_RESULT_CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some((_, first)) = refused.first() {
        h.insert("x-cordon-decision", answer::decision_value(first));
        if let Some(id) = first.audit_id() {
            h.insert("x-cordon-audit-id", id.into());
        }
    }
    resp
}

/// Reads the rest of the request body, up to the limits; nothing of it is
/// kept or forwarded.
async fn drain(mut body: ProxyBody) {
    let read = async {
        let mut seen = 0usize;
        while seen < DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                Some(Err(_)) | None => break,
            }
        }
    };
    if tokio::time::timeout(DRAIN_TIME, read).await.is_err() {
        tracing::debug!("a refused push kept sending; answering without the rest");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cordon_connectors::git::{PackLimits, parse_push};
    use cordon_policy::Source;

    use super::*;
    use crate::request::{Attribution, Kind};

    fn pkt(line: &str) -> Vec<u8> {
        let mut v = format!("{:04x}", line.len() + 4).into_bytes();
        v.extend_from_slice(line.as_bytes());
        v
    }

    fn push() -> Push {
        let (a, b) = ("1".repeat(40), "2".repeat(40));
        let zero = "0".repeat(40);
        let mut body = pkt(&format!("{a} {b} refs/heads/main\0report-status\n"));
        body.extend(pkt(&format!("{a} {zero} refs/heads/old\n")));
        body.extend(b"0000");
        parse_push(&body, &PackLimits::default()).unwrap()
    }

    #[test]
    fn a_refused_ref_is_reported_with_why_and_the_rule_reason() {
        let r = Refusal::new(
            Kind::Policy {
                rule: Arc::from("no-delete"),
                source: Source::Rule,
            },
            "never delete a branch by push",
            Attribution::cordon(Arc::from("v1")),
        );
        let lines = ref_refusals(&push(), &[(1, r)]);
        assert_eq!(
            lines,
            vec![RefRefusal {
                refname: "refs/heads/old".into(),
                reason: "denied by policy: never delete a branch by push".into(),
            }]
        );
    }

    #[tokio::test]
    async fn every_ref_of_a_refused_push_gets_an_ng_line() {
        let r = Refusal::new(
            Kind::AuditUnavailable,
            "the trail cannot be written",
            Attribution::cordon(Arc::from("v1")),
        );
        let resp = response(&push(), &[(0, r)], crate::proxy::body::empty()).await;
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            RECEIVE_PACK_RESULT_CONTENT_TYPE
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("unpack ok\n"), "{text}");
        assert!(
            text.contains("ng refs/heads/main audit unavailable: the trail cannot be written\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("ng refs/heads/old {OTHER_REF}\n")),
            "{text}"
        );
    }
}
