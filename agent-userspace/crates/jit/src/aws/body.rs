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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A body that yields the given frames, as a socket would.
    struct Frames(VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn hash_checked(expected: &str, parts: &[&[u8]]) -> SignedBody<Frames> {
        SignedBody {
            inner: Box::pin(Frames(
                parts.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
            )),
            check: Check::Hash {
                expected: expected.to_string(),
                context: Box::new(digest::Context::new(&digest::SHA256)),
                held: None,
            },
        }
    }

    /// Everything the body yields before it ends or fails.
    fn drain(mut body: SignedBody<Frames>) -> (Vec<u8>, Option<SigError>) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(f))) => {
                    out.extend_from_slice(&f.into_data().unwrap_or_default())
                }
                Poll::Ready(Some(Err(SignedBodyError::Signature(e)))) => return (out, Some(e)),
                Poll::Ready(Some(Err(SignedBodyError::Inner(never)))) => match never {},
                Poll::Ready(None) => return (out, None),
                Poll::Pending => unreachable!("the test body is always ready"),
            }
        }
    }

    #[test]
    fn a_matching_body_passes_whole() {
        let expected = crate::aws::canonical::sha256_hex(b"hello world");
        let (out, err) = drain(hash_checked(&expected, &[b"hello", b" ", b"world"]));
        assert_eq!(out, b"hello world");
        assert!(err.is_none());
    }

    #[test]
    fn a_mismatching_body_never_yields_its_last_frame() {
        let expected = crate::aws::canonical::sha256_hex(b"hello world");
        let (out, err) = drain(hash_checked(&expected, &[b"hello", b" ", b"WORLD"]));
        assert_eq!(out, b"hello ");
        assert_eq!(err, Some(SigError::PayloadHashMismatch));
        // One frame: nothing at all goes out.
        let (out, err) = drain(hash_checked(&expected, &[b"hello_world"]));
        assert!(out.is_empty());
        assert_eq!(err, Some(SigError::PayloadHashMismatch));
    }
}
