//! The gate: bytes read from the client go in, bytes hyper may read come
//! out. A head is held until it is complete and checked; a refused head and
//! everything after it never come out.
use crate::{MAX_HEADERS, Problem, chunk::Chunk};

#[derive(Debug)]
enum State {
    /// Collecting a head in `held`.
    Head,
    Fixed(u64),
    Chunked(Chunk),
    /// After an upgrade request (an `Upgrade` header, or CONNECT): bytes
    /// are held until the proxy says whether request number `.0` switched
    /// protocols, since after a 101 they are no longer HTTP.
    AwaitingUpgrade(u64),
    /// Switched protocols: nothing more to frame.
    Opaque,
    Refused(Problem),
}

pub struct Framer {
    state: State,
    limit: usize,
    held: Vec<u8>,
    /// Heads passed so far; the proxy numbers requests the same way.
    heads: u64,
    /// The current request asked to upgrade; resolved when its body ends.
    upgrade: bool,
}

/// What one head says about the message.
struct Framing {
    body: State,
    upgrade: bool,
}

impl Framer {
    pub fn new(limit: usize) -> Framer {
        Framer {
            state: State::Head,
            limit,
            held: Vec::new(),
            heads: 0,
            upgrade: false,
        }
    }

    /// Feeds bytes read from the client, appending to `out` those hyper may
    /// read. After an error nothing more is ever passed.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Problem> {
        let mut data = input;
        while !data.is_empty() {
            match &mut self.state {
                State::Refused(p) => return Err(p.clone()),
                State::Opaque => {
                    out.extend_from_slice(data);
                    return Ok(());
                }
                State::AwaitingUpgrade(_) => {
                    self.held.extend_from_slice(data);
                    if self.held.len() > self.limit {
                        return self.refuse(Problem::Oversized { limit: self.limit });
                    }
                    return Ok(());
                }
                State::Fixed(n) => {
                    let take = (*n).min(data.len() as u64) as usize;
                    *n -= take as u64;
                    out.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if *n == 0 {
                        self.body_ended();
                    }
                }
                State::Chunked(chunk) => match chunk.feed(data) {
                    Ok((used, done)) => {
                        out.extend_from_slice(&data[..used]);
                        data = &data[used..];
                        if done {
                            self.body_ended();
                        }
                    }
                    Err(p) => return self.refuse(p),
                },
                State::Head => {
                    // The usual case, a whole head in one read: parsed where
                    // it lies, without copying it aside first.
                    if self.held.is_empty() {
                        match self.parse_head(data)? {
                            Some(end) => {
                                self.pass_head(&data[..end], out)?;
                                data = &data[end..];
                                continue;
                            }
                            None => {
                                self.held.extend_from_slice(data);
                                return Ok(());
                            }
                        }
                    }
                    let before = self.held.len();
                    self.held.extend_from_slice(data);
                    let held = std::mem::take(&mut self.held);
                    let Some(end) = self.parse_head(&held)? else {
                        self.held = held;
                        return Ok(());
                    };
                    // The head ends inside this read; what follows it is
                    // framed by what the head says.
                    self.pass_head(&held[..end], out)?;
                    data = &data[end - before..];
                }
            }
        }
        Ok(())
    }

    /// The number of the request (counted from 1) whose answer the framer
    /// waits for, if it waits.
    pub fn awaiting_upgrade(&self) -> Option<u64> {
        match self.state {
            State::AwaitingUpgrade(n) => Some(n),
            _ => None,
        }
    }

    /// The proxy's answer to the upgrade request: after a 101 the rest is
    /// passed through unframed; otherwise framing resumes on what was held.
    pub fn upgrade_answered(&mut self, upgraded: bool, out: &mut Vec<u8>) -> Result<(), Problem> {
        if !matches!(self.state, State::AwaitingUpgrade(_)) {
            return Ok(());
        }
        self.state = if upgraded { State::Opaque } else { State::Head };
        let held = std::mem::take(&mut self.held);
        self.feed(&held, out)
    }

    /// Heads passed to hyper so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    fn refuse(&mut self, p: Problem) -> Result<(), Problem> {
        self.held.clear();
        self.state = State::Refused(p.clone());
        Err(p)
    }

    /// Where the head at the start of `buf` ends, by the same parse hyper
    /// makes; `None` while it is incomplete.
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<usize>, Problem> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(end)) if end > self.limit => {
                self.refuse(Problem::Oversized { limit: self.limit })?;
                Ok(None)
            }
            Ok(httparse::Status::Complete(end)) => Ok(Some(end)),
            Ok(httparse::Status::Partial) if buf.len() > self.limit => {
                self.refuse(Problem::Oversized { limit: self.limit })?;
                Ok(None)
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                self.refuse(Problem::TooManyHeaders { max: MAX_HEADERS })?;
                Ok(None)
            }
            Err(e) => {
                self.refuse(Problem::Unparseable(e.to_string()))?;
                Ok(None)
            }
        }
    }

    fn pass_head(&mut self, head: &[u8], out: &mut Vec<u8>) -> Result<(), Problem> {
        let framing = match framing(head) {
            Ok(f) => f,
            Err(p) => return self.refuse(p),
        };
        out.extend_from_slice(head);
        self.heads += 1;
        self.upgrade = framing.upgrade;
        self.state = framing.body;
        if matches!(self.state, State::Head) {
            self.body_ended();
        }
        Ok(())
    }

    fn body_ended(&mut self) {
        self.state = if std::mem::take(&mut self.upgrade) {
            State::AwaitingUpgrade(self.heads)
        } else {
            State::Head
        };
    }
}

/// How a complete head frames its body; refuses every ambiguity.
fn framing(head: &[u8]) -> Result<Framing, Problem> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Problem::Unparseable("incomplete head".into()));
        }
        Err(e) => return Err(Problem::Unparseable(e.to_string())),
    }
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut upgrade = req.method == Some("CONNECT");
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(Problem::DuplicateContentLength);
            }
            content_length = Some(parse_length(h.value)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Exactly one header whose whole value is `chunked`: lists
            // and other codings are where readers part ways.
            if transfer_encoding || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err(Problem::UnsupportedTransferEncoding);
            }
            transfer_encoding = true;
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let body = match (content_length, transfer_encoding) {
        (Some(_), true) => return Err(Problem::ConflictingFraming),
        (None, true) => State::Chunked(Chunk::start()),
        (Some(n), false) if n > 0 => State::Fixed(n),
        _ => State::Head,
    };
    Ok(Framing { body, upgrade })
}

fn parse_length(value: &[u8]) -> Result<u64, Problem> {
    let v = trim(value);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Problem::InvalidContentLength);
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Problem::InvalidContentLength)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &v[s..=e],
        _ => &[],
    }
}

#[cfg(test)]
mod tests;
