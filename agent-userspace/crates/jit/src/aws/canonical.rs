//! The SigV4 algorithm itself: canonical request, string to sign, signing
//! key, signature, and the per-chunk signature of streaming uploads.
//!
//! One implementation serves both directions (checking the agent's
//! signature with the placeholder secret, and signing the forwarded request
//! with the session's), so what is verified and what is re-signed are the
//! same bytes by construction.

use aws_lc_rs::{digest, hmac};

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub(crate) const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub(crate) const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// `hex(sha256(""))`, which every chunk's string to sign carries.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `YYYYMMDD/region/service`: what a signing key is derived for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub date: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    /// `20150830/us-east-1/iam/aws4_request`.
    pub(crate) fn to_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// The key for one secret, day, region and service.
pub(crate) fn signing_key(secret: &str, scope: &CredentialScope) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let k_secret = format!("AWS4{secret}");
    let k_date = step(k_secret.as_bytes(), &scope.date);
    let k_region = step(k_date.as_ref(), &scope.region);
    let k_service = step(k_region.as_ref(), &scope.service);
    let k_signing = step(k_service.as_ref(), "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// The pieces of a canonical request.
pub(crate) struct CanonicalParts<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub query: &'a str,
    /// `(lower-case name, canonical value)`, sorted by name.
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
}

impl CanonicalParts<'_> {
    pub(crate) fn signed_headers(&self) -> String {
        self.headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";")
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(self.method);
        out.push('\n');
        out.push_str(self.uri);
        out.push('\n');
        out.push_str(self.query);
        out.push('\n');
        for (name, value) in self.headers {
            out.push_str(name);
            out.push(':');
            out.push_str(value);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.signed_headers());
        out.push('\n');
        out.push_str(self.payload_hash);
        out
    }
}

pub(crate) fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.to_scope_string(),
        sha256_hex(canonical.as_bytes())
    )
}

/// What each chunk of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body signs:
/// the previous signature (the seed's for the first chunk) chains them.
pub(crate) fn chunk_string_to_sign(
    amz_date: &str,
    scope: &CredentialScope,
    previous_signature: &str,
    chunk: &[u8],
) -> String {
    format!(
        "{ALGORITHM}-PAYLOAD\n{amz_date}\n{}\n{previous_signature}\n{EMPTY_SHA256}\n{}",
        scope.to_scope_string(),
        sha256_hex(chunk)
    )
}

pub(crate) fn sign(key: &hmac::Key, string_to_sign: &str) -> String {
    hex::encode(hmac::sign(key, string_to_sign.as_bytes()))
}

/// Constant-time check of a hex signature.
pub(crate) fn signature_matches(key: &hmac::Key, string_to_sign: &str, hex_sig: &str) -> bool {
    match hex::decode(hex_sig) {
        Ok(bytes) => hmac::verify(key, string_to_sign.as_bytes(), &bytes).is_ok(),
        Err(_) => false,
    }
}

/// A header's canonical value: each value trimmed, runs of spaces folded
/// to one, several values joined by commas.
pub(crate) fn canonical_header_value<'a>(values: impl Iterator<Item = &'a [u8]>) -> String {
    values
        .map(|v| {
            let text = String::from_utf8_lossy(v);
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of AWS's published SigV4 test suite.
    #[test]
    fn matches_the_aws_test_suite_get_vanilla() {
        let scope = CredentialScope {
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
        };
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let parts = CanonicalParts {
            method: "GET",
            uri: "/",
            query: "",
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let sts = string_to_sign("20150830T123600Z", &scope, &parts.render());
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &scope);
        assert_eq!(
            sign(&key, &sts),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert!(signature_matches(
            &key,
            &sts,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ));
        assert!(!signature_matches(&key, &sts, "00"));
        assert!(!signature_matches(&key, &sts, "not hex"));
    }

    #[test]
    fn header_values_are_trimmed_and_folded() {
        let v = canonical_header_value([&b"  a   b  "[..], &b"c"[..]].into_iter());
        assert_eq!(v, "a b,c");
    }
}
