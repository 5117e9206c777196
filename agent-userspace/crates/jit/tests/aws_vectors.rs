//! The public verify API against AWS's published SigV4 test-suite request
//! (`get-vanilla`): AWS's own signature must verify, any edit must not.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cordon_jit::InstanceId;
use cordon_jit::aws::{AwsPlaceholder, RequestHead, SigError, verify};
use http::{HeaderMap, HeaderValue, Method};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn vanilla() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    h.insert("authorization", HeaderValue::from_static(AUTH));
    h
}

fn example_key() -> AwsPlaceholder {
    AwsPlaceholder::from_parts(
        InstanceId::new("t", "1"),
        "AKIDEXAMPLE".into(),
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        "unused".into(),
    )
}

/// 2015-08-30T12:36:00Z, when the suite signed it.
fn signed_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

#[test]
fn aws_get_vanilla_verifies() {
    let h = vanilla();
    let head = RequestHead::new(&Method::GET, "example.amazonaws.com", "/", None, &h);
    let v = verify(&head, &example_key(), Some(b""), signed_at()).expect("AWS's signature");
    assert_eq!(v.scope.service, "service");
    assert_eq!(v.scope.region, "us-east-1");
}

#[test]
fn any_edit_to_get_vanilla_is_refused() {
    let h = vanilla();
    let other_path = RequestHead::new(&Method::GET, "example.amazonaws.com", "/x", None, &h);
    assert_eq!(
        verify(&other_path, &example_key(), Some(b""), signed_at()).unwrap_err(),
        SigError::SignatureMismatch
    );
    let other_method = RequestHead::new(&Method::HEAD, "example.amazonaws.com", "/", None, &h);
    assert_eq!(
        verify(&other_method, &example_key(), Some(b""), signed_at()).unwrap_err(),
        SigError::SignatureMismatch
    );
    let with_query = RequestHead::new(&Method::GET, "example.amazonaws.com", "/", Some("a=b"), &h);
    assert_eq!(
        verify(&with_query, &example_key(), Some(b""), signed_at()).unwrap_err(),
        SigError::SignatureMismatch
    );
    let head = RequestHead::new(&Method::GET, "example.amazonaws.com", "/", None, &h);
    assert_eq!(
        verify(&head, &example_key(), Some(b"body"), signed_at()).unwrap_err(),
        SigError::SignatureMismatch
    );
}
