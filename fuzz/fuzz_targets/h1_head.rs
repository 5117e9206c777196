//! The HTTP/1 framer (cordon-h1) that gates what hyper may read, against
//! httparse and against hyper itself: the same bytes the framer passes are
//! served by a real hyper http1 server over an in-memory pipe.
//!
//! Checks: nothing panics; the framer's output and verdict do not depend on
//! how the input is split into reads; it only ever passes a prefix of the
//! input; hyper reads exactly as many requests from what passed as the
//! framer counted heads (fewer only where hyper stops: a head it refuses as
//! malformed, or one that closes the connection), never finds one too
//! large, and reads each head like httparse does (method, target, every
//! header) as far as the byte positions can be followed (heads without a
//! body or with a Content-Length).
#![no_main]

use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use cordon_h1::{Framer, Problem};
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode, Version, body::Incoming, server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

/// The framer's head limit, below hyper's buffer as in the proxy (which
/// gives hyper twice the framer's limit).
const LIMIT: usize = 4096;
/// hyper refuses a buffer under 8 KiB; twice the limit is exactly that.
const HYPER_BUF: usize = 2 * LIMIT;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// One request as hyper read it.
#[derive(Debug)]
struct Seen {
    /// hyper will read no further request after this one.
    last: bool,
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
}

fuzz_target!(|data: &[u8]| {
    let (passed, verdict, heads) = frame(data, &[data.len()]);
    for cuts in splits(data.len()) {
        let (p, v, h) = frame(data, &cuts);
        assert_eq!(
            (&p, &v, h),
            (&passed, &verdict, heads),
            "reads cut at {cuts:?} framed differently"
        );
    }
    assert!(
        data.starts_with(&passed),
        "the framer passed bytes it was not given"
    );
    let (seen, error) = RUNTIME.block_on(serve(passed.clone()));
    // hyper refusing a head the framer passed is the safe direction: it
    // answers 400 and reads nothing after it. (Such heads are listed in
    // docs/fuzzing.md; they are audited as hyper's parse error rather than
    // as the framer's Problem.) A head too large for hyper is not: the
    // framer's limit must keep every head it passes inside hyper's buffer.
    let hyper_refused = match &error {
        Some(e) => {
            assert!(
                !e.is_parse_too_large(),
                "hyper found a head the framer passed too large ({verdict:?}): {e}"
            );
            e.is_parse()
        }
        None => false,
    };
    // After a request that closes the connection hyper reads no more; the
    // proxy's hyper closes there too, so later heads never reach it.
    let closed_early = seen.last().is_some_and(|s| s.last);
    let stopped = (closed_early || hyper_refused) && (seen.len() as u64) < heads;
    assert!(
        seen.len() as u64 == heads || stopped,
        "the framer passed {heads} heads, hyper read {} ({verdict:?}, {error:?})",
        seen.len()
    );
    for (i, (ours, theirs)) in httparse_heads(&passed).iter().zip(&seen).enumerate() {
        assert_eq!(ours.method, theirs.method, "request {i}: method");
        // hyper's URI drops a fragment (a request target may not carry one;
        // the proxy forwards hyper's URI, so the fragment never travels).
        let target = ours.target.split('#').next().unwrap_or_default();
        assert_eq!(target, theirs.target, "request {i}: target");
        let mut theirs_sorted = theirs.headers.clone();
        let mut ours_sorted = ours.headers.clone();
        // hyper's map keeps the order of values per name, not across names.
        theirs_sorted.sort_by(|a, b| a.0.cmp(&b.0));
        ours_sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(ours_sorted, theirs_sorted, "request {i}: headers");
    }
});

/// Feeds `data` in reads ending at `cuts`, answering every upgrade request
/// with a refusal (the harness's hyper answers 200 to everything, and only a
/// 101 switches protocols).
fn frame(data: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<(), Problem>, u64) {
    let mut framer = Framer::new(LIMIT);
    let mut out = Vec::new();
    let mut start = 0;
    let mut verdict = Ok(());
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        let end = end.clamp(start, data.len());
        verdict = framer.feed(&data[start..end], &mut out);
        while verdict.is_ok() && framer.awaiting_upgrade().is_some() {
            verdict = framer.upgrade_answered(false, &mut out);
        }
        if verdict.is_err() {
            break;
        }
        start = end;
    }
    (out, verdict, framer.heads())
}

/// A few ways to cut the input into reads, derived from its length.
fn splits(len: usize) -> Vec<Vec<usize>> {
    if len < 2 {
        return Vec::new();
    }
    vec![
        vec![1],
        vec![len / 2],
        vec![len / 3, 2 * len / 3],
        (1..len).step_by(7).collect(),
    ]
}

/// Serves `bytes` (then end of stream) with hyper configured as the proxy
/// configures it; returns what it read and how the connection ended.
async fn serve(bytes: Vec<u8>) -> (Vec<Seen>, Option<hyper::Error>) {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let log = log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let upgrade = parts.method == hyper::Method::CONNECT
                || parts.headers.contains_key(hyper::header::UPGRADE);
            log.lock().expect("one request at a time").push(Seen {
                last: closes(parts.version, &parts.headers),
                method: parts.method.to_string(),
                target: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
            });
            // Reading the body to its end lets hyper go on to the next head.
            let _ignored_body_errors_are_ends_of_input = body.collect().await;
            // Refusing every upgrade, as `frame` tells the framer.
            let mut response = Response::new(Full::new(Bytes::new()));
            if upgrade {
                *response.status_mut() = StatusCode::BAD_REQUEST;
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    client
        .write_all(&bytes)
        .await
        .expect("the pipe is large enough");
    client.shutdown().await.expect("closing the pipe");
    // The pipe's write side is closed after the input; half-close support
    // lets hyper still answer what it holds (a live client would wait).
    let result = http1::Builder::new()
        .max_buf_size(HYPER_BUF)
        .half_close(true)
        .serve_connection(TokioIo::new(server), service)
        .with_upgrades()
        .await;
    drop(client);
    let seen = std::mem::take(&mut *seen.lock().expect("the server is done"));
    (seen, result.err())
}

/// The heads httparse reads from the passed bytes, in order, as long as
/// their bodies can be skipped without decoding a chunked body.
fn httparse_heads(mut bytes: &[u8]) -> Vec<Seen> {
    let mut heads = Vec::new();
    loop {
        while let [b'\r' | b'\n', rest @ ..] = bytes {
            bytes = rest;
        }
        let mut slots = [httparse::EMPTY_HEADER; cordon_h1::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        let Ok(httparse::Status::Complete(len)) = req.parse(bytes) else {
            return heads;
        };
        let mut body = 0usize;
        let mut chunked = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                body = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
            }
            chunked |= h.name.eq_ignore_ascii_case("transfer-encoding");
        }
        heads.push(Seen {
            last: false,
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect(),
        });
        if chunked || len + body > bytes.len() {
            return heads;
        }
        bytes = &bytes[len + body..];
    }
}

/// Whether hyper closes the connection after answering this request.
fn closes(version: Version, headers: &hyper::HeaderMap) -> bool {
    let has = |token: &str| {
        headers.get_all(hyper::header::CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has("close") || (version == Version::HTTP_10 && !has("keep-alive"))
}
