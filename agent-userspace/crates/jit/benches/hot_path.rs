//! What a request pays on the proxy's hot path: SigV4 verify + re-sign of
//! an agent's request, and a credential cache hit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cordon_jit::aws::{AwsPlaceholder, RequestHead, SessionCredentials, resign, verify};
use cordon_jit::{Expiring, InstanceId, RefreshCache, Withdrawn};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};

/// AWS's `get-vanilla` test-suite request, signed with its example key.
fn vanilla() -> (HeaderMap, AwsPlaceholder, SystemTime) {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    h.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    );
    let p = AwsPlaceholder::from_parts(
        InstanceId::new("bench", "1"),
        "AKIDEXAMPLE".into(),
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        "unused".into(),
    );
    (h, p, UNIX_EPOCH + Duration::from_secs(1_440_938_160))
}

struct Token(SystemTime);
impl Expiring for Token {
    fn expires_at(&self) -> SystemTime {
        self.0
    }
}

fn bench(c: &mut Criterion) {
    let (headers, placeholder, now) = vanilla();
    let session = SessionCredentials::new(
        "ASIASESSION000000001".into(),
        "session-secret".into(),
        Some("session-token".into()),
        now + Duration::from_secs(900),
    );
    let method = Method::GET;
    let head = RequestHead::new(&method, "example.amazonaws.com", "/", None, &headers);
    c.bench_function("sigv4_verify_and_resign", |b| {
        b.iter(|| {
            let v = verify(&head, &placeholder, Some(b""), now).expect("the AWS vector verifies");
            resign(&head, v, &session, now).expect("re-signs")
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cache: RefreshCache<String, Token> = RefreshCache::new(Duration::from_secs(300));
    let instance = InstanceId::new("bench", "1");
    let key = "gh-app".to_string();
    let t0 = SystemTime::now();
    rt.block_on(cache.get_or_mint(&instance, "github", &key, t0, || async {
        Ok::<_, Withdrawn>(Token(t0 + Duration::from_secs(3600)))
    }))
    .expect("mint");
    c.bench_function("token_cache_hit", |b| {
        b.iter(|| {
            rt.block_on(cache.get_or_mint(&instance, "github", &key, t0, || async {
                Err::<Token, Withdrawn>(Withdrawn {
                    instance: String::new(),
                    connector: String::new(),
                })
            }))
            .expect("a hit")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
