//! Presigned URLs as botocore makes them, checked and re-signed.

mod common;

use std::time::{Duration, SystemTime};

use common::moto::run_python;
use cordon_jit::InstanceId;
use cordon_jit::aws::{
    AwsPlaceholder, RequestHead, SessionCredentials, SigError, SigForm, resign, verify,
};
use http::{HeaderMap, HeaderValue, Method};

fn presigned(placeholder: &AwsPlaceholder) -> http::Uri {
    let out = run_python(
        "agent.py",
        &["http://127.0.0.1:9000", "presign"],
        &placeholder.env(),
    );
    out.trim().parse().expect("a URL")
}

fn head_of<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead::new(
        &Method::GET,
        "127.0.0.1:9000",
        uri.path(),
        uri.query(),
        headers,
    )
}

fn host_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("127.0.0.1:9000"));
    h
}

#[test]
fn a_botocore_presigned_url_verifies_and_resigns_into_a_url_the_session_signed() {
    let placeholder = AwsPlaceholder::generate(InstanceId::new("bot", "1")).expect("placeholder");
    let uri = presigned(&placeholder);
    let headers = host_headers();
    let now = SystemTime::now();
    let verified = verify(&head_of(&uri, &headers), &placeholder, None, now).expect("verifies");
    assert_eq!(verified.form, SigForm::Query { expires: 300 });
    let session = SessionCredentials::new(
        "ASIASESSIONKEY000001".into(),
        "session-secret".into(),
        Some("session-token".into()),
        now + Duration::from_secs(900),
    );
    let resigned = resign(&head_of(&uri, &headers), verified, &session, now).expect("re-signs");
    let new_uri: http::Uri = resigned.path_and_query.parse().expect("path and query");
    let query = new_uri.query().expect("query");
    assert!(
        query.contains("X-Amz-Credential=ASIASESSIONKEY000001%2F"),
        "{query}"
    );
    assert!(
        query.contains("X-Amz-Security-Token=session-token"),
        "{query}"
    );
    assert!(!query.contains(&placeholder.access_key_id), "{query}");
    // The re-signed URL is a valid presigned URL for the session's secret.
    let as_session = AwsPlaceholder::from_parts(
        InstanceId::new("bot", "1"),
        "ASIASESSIONKEY000001".into(),
        "session-secret".into(),
        "session-token".into(),
    );
    verify(&head_of(&new_uri, &headers), &as_session, None, now).expect("session signature");
}

#[test]
fn an_edited_or_expired_presigned_url_is_refused() {
    let placeholder = AwsPlaceholder::generate(InstanceId::new("bot", "1")).expect("placeholder");
    let uri = presigned(&placeholder);
    let headers = host_headers();
    let other: http::Uri = uri
        .to_string()
        .replacen("/docs/k?", "/docs/other?", 1)
        .parse()
        .expect("edited URL");
    assert_eq!(
        verify(
            &head_of(&other, &headers),
            &placeholder,
            None,
            SystemTime::now()
        )
        .unwrap_err(),
        SigError::SignatureMismatch
    );
    let later = SystemTime::now() + Duration::from_secs(301);
    assert!(matches!(
        verify(&head_of(&uri, &headers), &placeholder, None, later).unwrap_err(),
        SigError::OutsideWindow { .. }
    ));
}
