//! A byte-level look at HTTP/1.x request heads as hyper reads them. hyper
//! normalises what it parses (it drops Content-Length when
//! Transfer-Encoding is present, and only measures a header block that
//! arrives in pieces), so the checks that must see the raw message run
//! here: conflicting framing headers (request smuggling) and header blocks
//! over the limit. Each head's findings are queued in order; the request
//! handler takes one per request.
use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the raw head showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadFindings {
    pub conflicting_framing: bool,
    pub oversized: bool,
}

pub type Findings = Arc<Mutex<VecDeque<HeadFindings>>>;

enum State {
    Head(Vec<u8>),
    Fixed(u64),
    Chunked(Chunk),
    /// After an upgrade or anything we cannot frame: stop looking.
    Opaque,
}

enum Chunk {
    Size(Vec<u8>),
    Data(u64),
    DataEnd(u8),
    Trailer(Vec<u8>),
}

pub struct Guard<IO> {
    io: IO,
    state: State,
    limit: usize,
    findings: Findings,
}

impl<IO> Guard<IO> {
    pub fn new(io: IO, limit: usize) -> (Guard<IO>, Findings) {
        let findings: Findings = Arc::default();
        (
            Guard {
                io,
                state: State::Head(Vec::new()),
                limit,
                findings: findings.clone(),
            },
            findings,
        )
    }

    fn push(&self, f: HeadFindings) {
        self.findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(f);
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Opaque => return,
                State::Head(buf) => {
                    // Leading CRLFs between messages are allowed and ignored.
                    if buf.is_empty() {
                        let skip = data
                            .iter()
                            .take_while(|b| **b == b'\r' || **b == b'\n')
                            .count();
                        data = &data[skip..];
                        if data.is_empty() {
                            return;
                        }
                    }
                    let before = buf.len();
                    buf.extend_from_slice(data);
                    let Some(end) = find_head_end(buf, before.saturating_sub(3)) else {
                        if buf.len() > self.limit {
                            self.push(HeadFindings {
                                oversized: true,
                                ..Default::default()
                            });
                            self.state = State::Opaque;
                        }
                        return;
                    };
                    let consumed = end - before;
                    let head = std::mem::take(buf);
                    let next = self.inspect(&head[..end]);
                    self.state = next;
                    data = &data[consumed..];
                }
                State::Fixed(n) => {
                    let take = (*n).min(data.len() as u64) as usize;
                    *n -= take as u64;
                    data = &data[take..];
                    if *n == 0 {
                        self.state = State::Head(Vec::new());
                    }
                }
                State::Chunked(chunk) => {
                    let (used, done) = chunk.feed(data);
                    data = &data[used..];
                    if done {
                        self.state = State::Head(Vec::new());
                    }
                }
            }
        }
    }

    /// Records the findings for one head and says how its body is framed.
    fn inspect(&self, head: &[u8]) -> State {
        let mut headers = [httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = req.parse(head);
        let mut findings = HeadFindings {
            oversized: head.len() > self.limit,
            ..Default::default()
        };
        if parsed.is_err() {
            // hyper will refuse it; nothing to frame after it.
            self.push(findings);
            return State::Opaque;
        }
        let mut cl: Option<u64> = None;
        let mut te_chunked = false;
        let mut te = false;
        let mut upgrade = req.method == Some("CONNECT");
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                cl = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
                if cl.is_none() {
                    upgrade = true;
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = true;
                te_chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        findings.conflicting_framing = te && cl.is_some();
        self.push(findings);
        if upgrade || findings.conflicting_framing || (te && !te_chunked) {
            State::Opaque
        } else if te_chunked {
            State::Chunked(Chunk::Size(Vec::new()))
        } else {
            match cl {
                Some(0) | None => State::Head(Vec::new()),
                Some(n) => State::Fixed(n),
            }
        }
    }
}

/// Index just past the blank line ending the head, searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

impl Chunk {
    /// Consumes chunked-body bytes; returns (bytes used, body finished).
    fn feed(&mut self, data: &[u8]) -> (usize, bool) {
        let mut used = 0;
        while used < data.len() {
            let b = data[used];
            match self {
                Chunk::Size(line) => {
                    used += 1;
                    line.push(b);
                    if line.ends_with(b"\r\n") {
                        let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
                        let hex = text.split(';').next().unwrap_or("").trim();
                        let size = u64::from_str_radix(hex, 16).unwrap_or(0);
                        *self = if size == 0 {
                            Chunk::Trailer(Vec::new())
                        } else {
                            Chunk::Data(size)
                        };
                    } else if line.len() > 1024 {
                        return (data.len(), true);
                    }
                }
                Chunk::Data(n) => {
                    let take = (*n).min((data.len() - used) as u64);
                    *n -= take;
                    used += take as usize;
                    if *n == 0 {
                        *self = Chunk::DataEnd(0);
                    }
                }
                Chunk::DataEnd(seen) => {
                    used += 1;
                    *seen += 1;
                    if *seen == 2 {
                        *self = Chunk::Size(Vec::new());
                    }
                }
                Chunk::Trailer(line) => {
                    used += 1;
                    line.push(b);
                    if line.ends_with(b"\r\n") {
                        if line.len() == 2 {
                            return (used, true);
                        }
                        line.clear();
                    }
                }
            }
        }
        (used, false)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guard<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = buf.filled()[before..].to_vec();
            self.feed(&new);
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guard<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[&[u8]]) -> Vec<HeadFindings> {
        let (mut g, f) = Guard::new((), 64);
        for part in input {
            g.feed(part);
        }
        f.lock().unwrap().iter().copied().collect()
    }

    #[test]
    fn content_length_with_transfer_encoding_is_flagged() {
        let f = run(&[b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]);
        assert!(f[0].conflicting_framing);
    }

    #[test]
    fn keep_alive_requests_are_framed_so_a_body_is_never_read_as_a_head() {
        let body_looks_like_head =
            b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut first = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body_looks_like_head.len()
        )
        .into_bytes();
        first.extend_from_slice(body_looks_like_head);
        let second = b"GET /y HTTP/1.1\r\nHost: a\r\n\r\n";
        let f = run(&[&first, second]);
        assert_eq!(f.len(), 2);
        assert!(!f[0].conflicting_framing && !f[1].conflicting_framing);
    }

    #[test]
    fn chunked_bodies_split_across_reads_are_followed() {
        let f = run(&[
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
            b"cd\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ]);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn a_head_over_the_limit_is_flagged_even_when_it_arrives_at_once() {
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "y".repeat(100)
        );
        let f = run(&[big.as_bytes()]);
        assert!(f[0].oversized);
    }
}
