//! Checking an agent's SigV4 signature against its instance's placeholder.
//!
//! A request that verifies was signed by the holder of this instance's
//! placeholder secret and was not altered after signing in anything the
//! signature covers (method, path, query, signed headers and, when the
//! payload is hashed, the body). Everything else is refused.

use std::time::SystemTime;

use aws_lc_rs::hmac;

use super::auth::{self, SigForm};
use super::canonical::{
    self, CanonicalParts, CredentialScope, STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
};
use super::encode::{canonical_query, canonical_uri};
use super::error::SigError;
use super::head::RequestHead;
use super::placeholder::AwsPlaceholder;

pub use super::checks::CLOCK_SKEW;
pub(crate) use super::checks::amz_date;
use super::checks::{check_headers, check_key, check_time, payload_of};

/// What the signature says about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// `x-amz-content-sha256` (or the body's own hash): the body must hash
    /// to this hex value. [`Verified::body_checked`] says whether it was
    /// already checked; otherwise the body adapter checks it.
    Hashed(String),
    /// `UNSIGNED-PAYLOAD` (S3 over TLS, presigned URLs): the body is not
    /// covered.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every aws-chunked chunk
    /// carries a signature chained from the seed signature; each is checked
    /// and re-signed on the way through.
    StreamingSigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked without chunk
    /// signatures, a checksum trailer at the end; the body is not covered.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// The payload hash as it appears in the canonical request.
    pub(crate) fn canonical(&self) -> &str {
        match self {
            PayloadMode::Hashed(h) => h,
            PayloadMode::Unsigned => UNSIGNED_PAYLOAD,
            PayloadMode::StreamingSigned => STREAMING_SIGNED,
            PayloadMode::StreamingUnsignedTrailer => STREAMING_UNSIGNED_TRAILER,
        }
    }
}

/// A request whose signature checked out, with what re-signing needs.
#[derive(Debug)]
pub struct Verified {
    pub access_key_id: String,
    pub scope: CredentialScope,
    pub form: SigForm,
    pub payload: PayloadMode,
    /// True when [`PayloadMode::Hashed`] was checked against a body given
    /// to [`verify`]; false when the body adapter must check it.
    pub body_checked: bool,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) amz_date: String,
    pub(crate) seed_signature: String,
    /// The placeholder's key for the agent's scope: chunk signatures are
    /// checked with it.
    pub(crate) agent_key: hmac::Key,
}

/// Checks the agent's signature on `head` with `placeholder`'s secret.
///
/// `body` is the complete body when the caller has it. It is required when
/// the request does not declare `x-amz-content-sha256` (the signature then
/// covers the body's hash, as for STS, DynamoDB and Bedrock), and when it
/// does declare a hash the body is checked against it here.
pub fn verify(
    head: &RequestHead<'_>,
    placeholder: &AwsPlaceholder,
    body: Option<&[u8]>,
    now: SystemTime,
) -> Result<Verified, SigError> {
    let input = auth::read(head)?;
    check_key(&input, placeholder)?;
    check_time(&input, now)?;
    check_headers(head, &input)?;
    let payload = payload_of(head, &input, body)?;
    let headers = canonical_headers(head, &input.signed_headers)?;
    let skip: &[&str] = match input.form {
        SigForm::Query { .. } => &["X-Amz-Signature"],
        SigForm::Header => &[],
    };
    let uri = canonical_uri(&input.scope.service, head.path);
    let query = canonical_query(head.query, skip);
    let parts = CanonicalParts {
        method: head.method.as_str(),
        uri: &uri,
        query: &query,
        headers: &headers,
        payload_hash: payload.canonical(),
    };
    let to_sign = canonical::string_to_sign(&input.amz_date, &input.scope, &parts.render());
    let key = canonical::signing_key(placeholder.secret(), &input.scope);
    if !canonical::signature_matches(&key, &to_sign, &input.signature) {
        return Err(SigError::SignatureMismatch);
    }
    // An empty body is complete as soon as the head is sent; its hash is
    // known now.
    let empty = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    let body = if empty && body.is_none() {
        Some(&b""[..])
    } else {
        body
    };
    let body_checked = match (&payload, body) {
        (PayloadMode::Hashed(expected), Some(b)) => {
            if canonical::sha256_hex(b) != expected.to_ascii_lowercase() {
                return Err(SigError::PayloadHashMismatch);
            }
            true
        }
        _ => false,
    };
    Ok(Verified {
        access_key_id: input.access_key_id,
        scope: input.scope,
        form: input.form,
        payload,
        body_checked,
        signed_headers: input.signed_headers,
        amz_date: input.amz_date,
        seed_signature: input.signature,
        agent_key: key,
    })
}

/// `(name, canonical value)` of each signed header, in the signed order.
pub(crate) fn canonical_headers(
    head: &RequestHead<'_>,
    signed: &[String],
) -> Result<Vec<(String, String)>, SigError> {
    signed
        .iter()
        .map(|name| {
            let values = head.values(name);
            if values.is_empty() {
                return Err(SigError::SignedHeaderMissing(name.clone()));
            }
            Ok((
                name.clone(),
                canonical::canonical_header_value(values.into_iter()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::canonical::{CanonicalParts, string_to_sign};
    use crate::instance::InstanceId;
    use http::{HeaderMap, HeaderValue, Method};
    use std::time::Duration;

    const HOST: &str = "dynamodb.us-east-1.amazonaws.com";

    fn placeholder() -> AwsPlaceholder {
        AwsPlaceholder::from_parts(
            InstanceId::new("bot", "1"),
            "ASIACRDNAAAAAAAAAAAA".into(),
            "placeholder-secret".into(),
            "cordon-placeholder-token".into(),
        )
    }

    /// Signs as an SDK would: every header of `headers` (plus host).
    fn signed(headers: &mut HeaderMap, body: &[u8], secret: &str, key_id: &str, at: SystemTime) {
        let date = amz_date(at);
        headers.insert("x-amz-date", HeaderValue::from_str(&date).unwrap());
        headers.insert("host", HeaderValue::from_static(HOST));
        let mut names: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        let head = RequestHead::new(&Method::POST, HOST, "/", None, headers);
        let canon = canonical_headers(&head, &names).unwrap();
        let scope = CredentialScope {
            date: date[..8].into(),
            region: "us-east-1".into(),
            service: "dynamodb".into(),
        };
        let hash = canonical::sha256_hex(body);
        let parts = CanonicalParts {
            method: "POST",
            uri: "/",
            query: "",
            headers: &canon,
            payload_hash: &hash,
        };
        let sig = canonical::sign(
            &canonical::signing_key(secret, &scope),
            &string_to_sign(&date, &scope, &parts.render()),
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={key_id}/{}, SignedHeaders={}, Signature={sig}",
            scope.to_scope_string(),
            parts.signed_headers()
        );
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    }

    fn request(at: SystemTime) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.GetItem"),
        );
        h.insert(
            "x-amz-security-token",
            HeaderValue::from_static("cordon-placeholder-token"),
        );
        let p = placeholder();
        signed(&mut h, BODY, "placeholder-secret", &p.access_key_id, at);
        h
    }

    const BODY: &[u8] = br#"{"TableName":"orders"}"#;

    fn check(h: &HeaderMap, body: Option<&[u8]>, now: SystemTime) -> Result<Verified, SigError> {
        verify(
            &RequestHead::new(&Method::POST, HOST, "/", None, h),
            &placeholder(),
            body,
            now,
        )
    }

    #[test]
    fn a_body_signed_request_verifies_only_with_its_body() {
        let now = SystemTime::now();
        let h = request(now);
        let v = check(&h, Some(BODY), now).unwrap();
        assert!(v.body_checked);
        assert_eq!(check(&h, None, now).unwrap_err(), SigError::BodyRequired);
        assert_eq!(
            check(&h, Some(br#"{"TableName":"secrets"}"#), now).unwrap_err(),
            SigError::SignatureMismatch
        );
    }

    #[test]
    fn signatures_older_or_newer_than_fifteen_minutes_are_refused() {
        let now = SystemTime::now();
        let h = request(now - Duration::from_secs(16 * 60));
        assert!(matches!(
            check(&h, Some(BODY), now).unwrap_err(),
            SigError::OutsideWindow { .. }
        ));
        let h = request(now + Duration::from_secs(16 * 60));
        assert!(matches!(
            check(&h, Some(BODY), now).unwrap_err(),
            SigError::OutsideWindow { .. }
        ));
    }

    #[test]
    fn an_unsigned_amz_header_is_refused() {
        let now = SystemTime::now();
        let mut h = request(now);
        h.insert("x-amz-copy-source", HeaderValue::from_static("/other/key"));
        assert_eq!(
            check(&h, Some(BODY), now).unwrap_err(),
            SigError::UnsignedHeader("x-amz-copy-source".into())
        );
    }

    #[test]
    fn another_session_token_is_refused() {
        let now = SystemTime::now();
        let mut h = request(now);
        h.insert("x-amz-security-token", HeaderValue::from_static("stolen"));
        assert_eq!(
            check(&h, Some(BODY), now).unwrap_err(),
            SigError::SessionTokenMismatch
        );
    }

    #[test]
    fn signed_with_the_right_key_id_but_another_secret_is_a_mismatch() {
        let now = SystemTime::now();
        let mut h = HeaderMap::new();
        signed(&mut h, BODY, "guessed", "ASIACRDNAAAAAAAAAAAA", now);
        assert_eq!(
            check(&h, Some(BODY), now).unwrap_err(),
            SigError::SignatureMismatch
        );
    }

    #[test]
    fn host_must_be_signed() {
        let now = SystemTime::now();
        let mut h = request(now);
        let auth = h["authorization"].to_str().unwrap().replace("host;", "");
        h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        assert_eq!(
            check(&h, Some(BODY), now).unwrap_err(),
            SigError::HostNotSigned
        );
    }
}
