use super::*;

fn run(limit: usize, parts: &[&[u8]]) -> (Vec<u8>, Option<Problem>) {
    let mut f = Framer::new(limit);
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = f.feed(p, &mut out) {
            return (out, Some(e));
        }
    }
    (out, None)
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn clean_keep_alive_requests_pass_byte_for_byte_however_they_are_split() {
    let mut whole = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    whole.extend_from_slice(
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    whole.extend_from_slice(GET);
    for cut in 0..whole.len() {
        let (a, b) = whole.split_at(cut);
        let (out, err) = run(1024, &[a, b]);
        assert_eq!(err, None, "cut {cut}");
        assert_eq!(out, whole, "cut {cut}");
    }
}

#[test]
fn a_smuggling_head_and_everything_after_it_never_pass() {
    let bad = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let mut input = GET.to_vec();
    input.extend_from_slice(bad);
    input.extend_from_slice(GET);
    let (out, err) = run(1024, &[&input]);
    assert_eq!(err, Some(Problem::ConflictingFraming));
    assert_eq!(out, GET, "only the request before it passes");
}

#[test]
fn every_ambiguous_framing_is_refused_by_kind() {
    let cases: [(&[u8], Problem); 6] = [
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            Problem::DuplicateContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
            Problem::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx",
            Problem::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Problem::UnsupportedTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Problem::UnsupportedTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            Problem::UnsupportedTransferEncoding,
        ),
    ];
    for (input, want) in cases {
        let (out, err) = run(1024, &[input]);
        assert_eq!(
            err.as_ref(),
            Some(&want),
            "{}",
            String::from_utf8_lossy(input)
        );
        assert!(out.is_empty());
        assert!(want.is_smuggling() || want == Problem::InvalidContentLength);
    }
}

#[test]
fn an_oversized_head_is_refused_whether_it_arrives_at_once_or_in_pieces() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "y".repeat(100)
    );
    let (out, err) = run(64, &[big.as_bytes()]);
    assert_eq!(err, Some(Problem::Oversized { limit: 64 }));
    assert!(out.is_empty());
    let pieces: Vec<&[u8]> = big.as_bytes().chunks(7).collect();
    let (out, err) = run(64, &pieces);
    assert!(err.as_ref().is_some_and(Problem::is_too_large));
    assert!(out.is_empty());
}

#[test]
fn more_headers_than_hyper_allows_is_too_large() {
    let mut head = String::from("GET / HTTP/1.1\r\n");
    for i in 0..=MAX_HEADERS {
        head.push_str(&format!("X-{i}: v\r\n"));
    }
    head.push_str("\r\n");
    let (_, err) = run(1 << 20, &[head.as_bytes()]);
    assert_eq!(err, Some(Problem::TooManyHeaders { max: MAX_HEADERS }));
}

#[test]
fn an_unparseable_head_is_refused_and_nothing_passes() {
    let (out, err) = run(1024, &[b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"]);
    assert!(matches!(err, Some(Problem::Unparseable(_))));
    assert!(out.is_empty());
}

#[test]
fn a_body_that_looks_like_a_smuggled_head_is_passed_as_body() {
    let inner = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut input = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        inner.len()
    )
    .into_bytes();
    input.extend_from_slice(inner);
    input.extend_from_slice(GET);
    let (out, err) = run(1024, &[&input]);
    assert_eq!(err, None);
    assert_eq!(out, input);
}

#[test]
fn bytes_after_an_upgrade_request_wait_for_the_answer() {
    let upgrade =
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let frames = b"\x81\x05hello not http";
    let mut f = Framer::new(1024);
    let mut out = Vec::new();
    f.feed(upgrade, &mut out).unwrap();
    f.feed(frames, &mut out).unwrap();
    assert_eq!(out, upgrade, "frames are held");
    assert_eq!(f.awaiting_upgrade(), Some(1));
    f.upgrade_answered(true, &mut out).unwrap();
    let mut want = upgrade.to_vec();
    want.extend_from_slice(frames);
    assert_eq!(out, want);
    assert_eq!(f.awaiting_upgrade(), None);
}

#[test]
fn a_refused_upgrade_resumes_framing_on_what_was_held() {
    let upgrade = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    let smuggle = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut f = Framer::new(1024);
    let mut out = Vec::new();
    f.feed(upgrade, &mut out).unwrap();
    f.feed(GET, &mut out).unwrap();
    f.feed(smuggle, &mut out).unwrap();
    assert_eq!(
        f.upgrade_answered(false, &mut out),
        Err(Problem::ConflictingFraming)
    );
    let mut want = upgrade.to_vec();
    want.extend_from_slice(GET);
    assert_eq!(out, want);
}
