//! The HTTP/1 framing gate as an IO wrapper: hyper reads the client through
//! it and only ever sees what `cordon_h1::Framer` passed. When the framer
//! refuses a head, hyper reads end-of-stream (it finishes the answers it
//! owes and closes), and the connection comes back to `serve_http` with the
//! problem, to be recorded and answered there.
//!
//! After an upgrade request the framer holds the bytes that follow until
//! the request handler says whether the protocol switched (`Link`).
use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
};

use cordon_h1::{Framer, Problem};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::oneshot,
};

const READ_CHUNK: usize = 16 * 1024;

/// A connection whose framing was refused, handed back with the problem.
pub struct RefusedHead<IO> {
    pub io: IO,
    pub problem: Problem,
}

/// Between the request handler and the gate: which requests switched
/// protocols. Requests are numbered from 1 in the order hyper hands them
/// to the handler, which is the order their heads passed the gate.
#[derive(Default)]
pub struct Link {
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    handled: u64,
    answers: BTreeMap<u64, bool>,
    waiting: Option<Waker>,
}

/// One request's place in the order; answers "not upgraded" when dropped
/// unless told otherwise, so every path out of the handler answers.
pub struct Ticket {
    link: Arc<Link>,
    number: u64,
    upgraded: bool,
}

impl Link {
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.handled += 1;
        Ticket {
            link: self.clone(),
            number: s.handled,
            upgraded: false,
        }
    }

    /// The answer for request `n`, or registers to be woken when it comes.
    fn answer(&self, n: u64, waker: &Waker) -> Option<bool> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.answers.remove(&n) {
            Some(a) => {
                s.answers.retain(|k, _| *k > n);
                Some(a)
            }
            None => {
                s.waiting = Some(waker.clone());
                None
            }
        }
    }
}

impl Ticket {
    pub fn upgraded(mut self) {
        self.upgraded = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.link.state.lock().unwrap_or_else(|e| e.into_inner());
        s.answers.insert(self.number, self.upgraded);
        if let Some(w) = s.waiting.take() {
            w.wake();
        }
    }
}

pub struct Guard<IO> {
    io: Option<IO>,
    framer: Framer,
    link: Arc<Link>,
    /// Bytes the framer passed that hyper has not read yet, from `at`.
    ready: Vec<u8>,
    at: usize,
    scratch: Box<[u8]>,
    refused: Option<Problem>,
    report: Option<oneshot::Sender<RefusedHead<IO>>>,
}

impl<IO> Guard<IO> {
    pub fn new(io: IO, limit: usize) -> (Guard<IO>, Arc<Link>, oneshot::Receiver<RefusedHead<IO>>) {
        let link = Arc::new(Link::default());
        let (tx, rx) = oneshot::channel();
        let guard = Guard {
            io: Some(io),
            framer: Framer::new(limit),
            link: link.clone(),
            ready: Vec::new(),
            at: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            refused: None,
            report: Some(tx),
        };
        (guard, link, rx)
    }

    fn io(&mut self) -> std::io::Result<&mut IO> {
        self.io
            .as_mut()
            .ok_or_else(|| std::io::Error::other("connection already handed back"))
    }
}

impl<IO> Drop for Guard<IO> {
    fn drop(&mut self) {
        if let (Some(problem), Some(io), Some(tx)) =
            (self.refused.take(), self.io.take(), self.report.take())
        {
            // The receiver is gone only when the connection task is: then
            // nobody is left to answer, and the client just sees the close.
            if tx.send(RefusedHead { io, problem }).is_err() {
                tracing::debug!("refused HTTP/1 head: connection task gone before answering");
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guard<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.ready.len() {
                let n = (this.ready.len() - this.at).min(buf.remaining());
                buf.put_slice(&this.ready[this.at..this.at + n]);
                this.at += n;
                if this.at == this.ready.len() {
                    this.ready.clear();
                    this.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.refused.is_some() {
                // End of stream for hyper: the refused head never reaches it.
                return Poll::Ready(Ok(()));
            }
            if let Some(n) = this.framer.awaiting_upgrade() {
                match this.link.answer(n, cx.waker()) {
                    Some(upgraded) => {
                        if let Err(p) = this.framer.upgrade_answered(upgraded, &mut this.ready) {
                            this.refused = Some(p);
                        }
                        continue;
                    }
                    None => return Poll::Pending,
                }
            }
            let mut scratch = std::mem::take(&mut this.scratch);
            let mut rb = ReadBuf::new(&mut scratch);
            let polled = match this.io() {
                Ok(io) => Pin::new(io).poll_read(cx, &mut rb),
                Err(e) => Poll::Ready(Err(e)),
            };
            let read = rb.filled().len();
            let fed = match &polled {
                Poll::Ready(Ok(())) if read > 0 => {
                    Some(this.framer.feed(&scratch[..read], &mut this.ready))
                }
                _ => None,
            };
            this.scratch = scratch;
            match (polled, fed) {
                (Poll::Ready(Ok(())), Some(Err(p))) => this.refused = Some(p),
                (Poll::Ready(Ok(())), Some(Ok(()))) => {}
                // End of stream from the client.
                (Poll::Ready(Ok(())), None) => return Poll::Ready(Ok(())),
                (other, _) => return other,
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guard<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let refused = this.refused.is_some();
        match this.io() {
            // The refusal still has to be written: only flush what hyper
            // wrote, and leave closing to whoever answers it.
            Ok(io) if refused => Pin::new(io).poll_flush(cx),
            Ok(io) => Pin::new(io).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests;
