use std::sync::Arc;

use cordon_connectors::Spellings;
use cordon_vault::Secret;

use super::*;

const SECRET: &[u8] = b"ghp_S3cretT0kenValue0123456789abcdef";

fn echoes() -> Arc<Echoes> {
    Arc::new(Echoes::new(
        Secret::from_slice(SECRET),
        Spellings::default(),
    ))
}

/// One unmasked server frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// The stream fed in pieces cut at `cuts`, then ended.
fn scrub(stream: &[u8], cuts: &[usize]) -> Result<Vec<u8>, Unscrubbable> {
    let mut s = FrameScrubber::new(echoes());
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        s.feed(&stream[from..cut], &mut out)?;
        from = cut;
    }
    s.finish(&mut out);
    Ok(out)
}

/// The frames of a scrubbed stream: (fin, opcode, payload).
fn frames(mut stream: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
    let mut all = Vec::new();
    while !stream.is_empty() {
        let head = head_len(&stream[..2]).unwrap();
        let len = payload_len(&stream[..head]) as usize;
        all.push((
            stream[0] & 0x80 != 0,
            stream[0] & 0x0f,
            stream[head..head + len].to_vec(),
        ));
        stream = &stream[head + len..];
    }
    all
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A message fragmented into three frames that cut the secret, with a ping between two of
/// them carrying it whole, then a second message.
fn fragmented() -> Vec<u8> {
    let text = [b"{\"authorization\":\"Bearer ".as_slice(), SECRET, b"\"}"].concat();
    let (a, rest) = text.split_at(30);
    let (b, c) = rest.split_at(9);
    [
        frame(false, 0x1, a),
        frame(false, 0x0, b),
        frame(true, 0x9, SECRET),
        frame(true, 0x0, c),
        frame(true, 0x1, b"next"),
    ]
    .concat()
}

#[test]
fn a_secret_in_one_frame_is_masked_and_the_framing_kept() {
    let stream = frame(true, 0x1, &[b"token=".as_slice(), SECRET].concat());
    let out = scrub(&stream, &[]).unwrap();
    assert_eq!(out.len(), stream.len());
    assert!(!holds(&out, SECRET));
    let f = frames(&out);
    assert_eq!(f.len(), 1);
    assert!(f[0].2.starts_with(b"token=[REDACTED]****"));
}

#[test]
fn a_secret_cut_across_fragments_is_masked_wherever_the_stream_is_cut() {
    let stream = fragmented();
    let whole = scrub(&stream, &[]).unwrap();
    assert_eq!(whole.len(), stream.len());
    let f = frames(&whole);
    let opcodes: Vec<u8> = f.iter().map(|f| f.1).collect();
    assert_eq!(
        opcodes,
        [0x1, 0x0, 0x9, 0x0, 0x1],
        "frames keep their order"
    );
    let message: Vec<u8> = [&f[0].2[..], &f[1].2, &f[3].2].concat();
    assert!(
        !holds(&message, SECRET),
        "{}",
        String::from_utf8_lossy(&message)
    );
    assert!(holds(&message, b"[REDACTED]"));
    assert!(!holds(&f[2].2, SECRET), "the ping's payload");
    assert_eq!(f[4].2, b"next");
    for cut in 0..=stream.len() {
        assert_eq!(scrub(&stream, &[cut]).unwrap(), whole, "cut at {cut}");
    }
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(scrub(&stream, &bytewise).unwrap(), whole);
}

#[test]
fn bytes_that_cannot_begin_the_secret_go_out_at_once() {
    let stream = frame(true, 0x1, b"hello, world and more");
    let mut s = FrameScrubber::new(echoes());
    let mut out = Vec::new();
    s.feed(&stream[..9], &mut out).unwrap();
    assert_eq!(
        out,
        stream[..9],
        "the head and `hello, ` are out before the rest arrives"
    );
}

#[test]
fn a_message_ending_in_the_start_of_the_secret_is_released_at_its_end() {
    let stream = frame(true, 0x1, &[b"partial ".as_slice(), &SECRET[..8]].concat());
    let mut s = FrameScrubber::new(echoes());
    let mut out = Vec::new();
    s.feed(&stream[..stream.len() - 1], &mut out).unwrap();
    assert!(
        out.len() < stream.len() - 1,
        "the open tail is held mid-message"
    );
    s.feed(&stream[stream.len() - 1..], &mut out).unwrap();
    assert_eq!(out, stream, "and released when the message ends");
}

#[test]
fn long_frames_with_16_and_64_bit_lengths_are_scrubbed() {
    for size in [300, 70_000] {
        let mut payload = vec![b'x'; size];
        payload.extend_from_slice(SECRET);
        payload.extend_from_slice(b"tail");
        let stream = frame(true, 0x2, &payload);
        let out = scrub(&stream, &[size / 2, size + 5]).unwrap();
        assert_eq!(out.len(), stream.len());
        assert!(!holds(&out, SECRET), "{size}");
        assert!(out.ends_with(b"tail"));
    }
}

#[test]
fn a_spelling_with_a_json_escaped_slash_is_masked_too() {
    let echoes = Arc::new(Echoes::new(
        Secret::from_slice(b"abc/def+ghi/jkl"),
        Spellings::default(),
    ));
    let stream = frame(true, 0x1, br#"{"k":"abc\/def+ghi\/jkl"}"#);
    let mut s = FrameScrubber::new(echoes);
    let mut out = Vec::new();
    s.feed(&stream, &mut out).unwrap();
    assert_eq!(frames(&out)[0].2, br#"{"k":"[REDACTED]*******"}"#);
}

#[test]
fn frames_that_cannot_be_searched_are_refused() {
    let masked = [0x81, 0x80 | 4, 1, 2, 3, 4, b'a', b'b', b'c', b'd'];
    let compressed = [0xc1, 3, b'a', b'b', b'c'];
    let cases: [(&[u8], Unscrubbable); 6] = [
        (&masked, Unscrubbable::Masked),
        (&compressed, Unscrubbable::Reserved(0x40)),
        (&frame(true, 0x3, b"x"), Unscrubbable::Opcode(0x3)),
        (&frame(false, 0x9, b"ping"), Unscrubbable::Control),
        (&frame(true, 0x0, b"cont"), Unscrubbable::Sequence),
        (
            &[frame(false, 0x1, b"a"), frame(true, 0x1, b"b")].concat(),
            Unscrubbable::Sequence,
        ),
    ];
    for (stream, why) in cases {
        assert_eq!(scrub(stream, &[]), Err(why));
    }
}

#[test]
fn empty_frames_cannot_hold_the_stream_without_end() {
    let mut stream = frame(false, 0x1, &SECRET[..5]);
    for _ in 0..=MAX_BEHIND {
        stream.extend_from_slice(&frame(false, 0x0, b""));
    }
    assert_eq!(scrub(&stream, &[]), Err(Unscrubbable::Stalled));
}

/// Random streams: messages fragmented at random, pings between fragments, the secret (whole
/// or cut) anywhere, fed in random pieces. Whatever the cuts, the output is the same, keeps
/// every frame's head, and no message or ping carries the secret.
#[test]
fn random_fragmentations_and_cuts_never_let_the_secret_through() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..300 {
        let mut stream = Vec::new();
        for _ in 0..rng.random_range(1..4) {
            let mut text: Vec<u8> = (0..rng.random_range(0..40))
                .map(|_| rng.random_range(b'a'..=b'z'))
                .collect();
            for _ in 0..rng.random_range(0..3) {
                let at = rng.random_range(0..=text.len());
                text.splice(at..at, SECRET.iter().copied());
            }
            let mut cuts: Vec<usize> = (0..rng.random_range(0..6))
                .map(|_| rng.random_range(0..=text.len()))
                .collect();
            cuts.sort_unstable();
            let mut from = 0;
            let pieces = cuts.len() + 1;
            for (i, &to) in cuts.iter().chain(std::iter::once(&text.len())).enumerate() {
                let opcode = if i == 0 { 0x1 } else { 0x0 };
                stream.extend(frame(i + 1 == pieces, opcode, &text[from..to]));
                if rng.random_bool(0.3) && i + 1 < pieces {
                    stream.extend(frame(
                        true,
                        0x9,
                        &SECRET[..rng.random_range(0..SECRET.len())],
                    ));
                }
                from = to;
            }
        }
        let whole = scrub(&stream, &[]).unwrap();
        assert_eq!(whole.len(), stream.len(), "round {round}");
        let (got, sent) = (frames(&whole), frames(&stream));
        assert_eq!(got.len(), sent.len(), "round {round}");
        let mut message = Vec::new();
        for ((fin, op, payload), (sfin, sop, _)) in got.iter().zip(&sent) {
            assert_eq!((fin, op), (sfin, sop), "round {round}");
            if *op == 0x9 {
                continue;
            }
            message.extend_from_slice(payload);
            if *fin {
                assert!(!holds(&message, SECRET), "round {round}");
                message.clear();
            }
        }
        let mut cuts: Vec<usize> = (0..rng.random_range(1..8))
            .map(|_| rng.random_range(0..=stream.len()))
            .collect();
        cuts.sort_unstable();
        assert_eq!(
            scrub(&stream, &cuts).unwrap(),
            whole,
            "round {round}, cuts {cuts:?}"
        );
    }
}
