//! The body of a re-signed request, streamed through the check its payload
//! mode needs: the declared hash is checked as the bytes pass, signed
//! chunks are checked and re-signed, unsigned payloads pass untouched.
//!
//! A mismatch ends the body with an error instead of its last bytes, so the
//! upstream sees a truncated request (a short Content-Length or a missing
//! final chunk) and never acts on the altered one: with a declared hash the
//! last data frame is held back until the hash has checked out, and a
//! signed chunk is only passed on once its signature has.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_lc_rs::digest;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::chunked::ChunkResigner;
use super::error::SigError;
use super::resign::Resigned;

#[derive(Debug)]
pub(crate) enum BodyPlan {
    Pass,
    CheckHash(String),
    Chunks(Box<ChunkResigner>),
}

/// Why a [`SignedBody`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SignedBodyError<E> {
    #[error("reading the agent's body: {0}")]
    Inner(E),
    #[error(transparent)]
    Signature(SigError),
}

enum Check {
    Pass,
    Hash {
        expected: String,
        context: Box<digest::Context>,
        /// The latest data frame, passed on when the next one arrives or,
        /// for the last, once the hash matches.
        held: Option<Bytes>,
    },
    Chunks(Box<ChunkResigner>),
    Finished,
}

/// The agent's body as the upstream must receive it.
pub struct SignedBody<B> {
    inner: Pin<Box<B>>,
    check: Check,
}

impl Resigned {
    /// Wraps the agent's body for forwarding with these headers.
    pub fn body<B>(&mut self, body: B) -> SignedBody<B> {
        let check = match std::mem::replace(&mut self.plan, BodyPlan::Pass) {
            BodyPlan::Pass => Check::Pass,
            BodyPlan::CheckHash(expected) => Check::Hash {
                expected,
                context: Box::new(digest::Context::new(&digest::SHA256)),
                held: None,
            },
            BodyPlan::Chunks(r) => Check::Chunks(r),
        };
        SignedBody {
            inner: Box::pin(body),
            check,
        }
    }
}

impl<B> Body for SignedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = SignedBodyError<B::Error>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Check::Finished = this.check {
                return Poll::Ready(None);
            }
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(match this.finish() {
                        Ok(Some(last)) => Some(Ok(Frame::data(last))),
                        Ok(None) => None,
                        Err(e) => Some(Err(SignedBodyError::Signature(e))),
                    });
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(SignedBodyError::Inner(e))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                // Trailers pass as they are (the unsigned-trailer mode's
                // checksum travels in the body, not as HTTP trailers).
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            match &mut this.check {
                Check::Pass => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Check::Hash { context, held, .. } => {
                    if data.is_empty() {
                        continue;
                    }
                    context.update(&data);
                    match held.replace(data) {
                        Some(previous) => return Poll::Ready(Some(Ok(Frame::data(previous)))),
                        None => continue,
                    }
                }
                Check::Chunks(r) => match r.feed(&data) {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out))))),
                    Err(e) => {
                        this.check = Check::Finished;
                        return Poll::Ready(Some(Err(SignedBodyError::Signature(e))));
                    }
                },
                Check::Finished => return Poll::Ready(None),
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Re-signed chunks are the same length as the agent's.
        self.inner.size_hint()
    }
}

impl<B> SignedBody<B> {
    /// At the end of the agent's body: the held-back last frame, if the
    /// body checked out.
    fn finish(&mut self) -> Result<Option<Bytes>, SigError> {
        let check = std::mem::replace(&mut self.check, Check::Finished);
        match check {
            Check::Pass | Check::Finished => Ok(None),
            Check::Hash {
                expected,
                context,
                held,
            } => {
                if hex::encode(context.finish()) == expected {
                    Ok(held)
                } else {
                    Err(SigError::PayloadHashMismatch)
                }
            }
            Check::Chunks(r) => r.finish().map(|()| None),
        }
    }
}
