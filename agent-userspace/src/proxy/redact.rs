//! Redacting an injected secret from what an upstream sends back (an API
//! that echoes the Authorization header must not hand the agent the real
//! key). Works across frame boundaries by holding back the last
//! `len(secret) - 1` bytes of each frame until the next one arrives.
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use cordon_vault::Secret;
use http::HeaderMap;
use hyper::body::{Body, Frame};

use super::body::{BoxError, ProxyBody};

pub fn headers(h: &mut HeaderMap, secret: &Secret) {
    for v in h.values_mut() {
        let redacted = cordon_vault::redact(v.as_bytes(), &[secret]);
        if let std::borrow::Cow::Owned(bytes) = redacted
            && let Ok(nv) = http::HeaderValue::from_bytes(&bytes)
        {
            *v = nv;
        }
    }
}

pub struct RedactBody {
    inner: ProxyBody,
    secret: Arc<Secret>,
    carry: BytesMut,
    done: bool,
}

impl RedactBody {
    pub fn new(inner: ProxyBody, secret: Arc<Secret>) -> RedactBody {
        RedactBody {
            inner,
            secret,
            carry: BytesMut::new(),
            done: false,
        }
    }
}

impl Body for RedactBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done = true;
                    if this.carry.is_empty() {
                        return Poll::Ready(None);
                    }
                    let rest = std::mem::take(&mut this.carry);
                    let out = cordon_vault::redact(&rest, &[&this.secret]).into_owned();
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        // Trailers: flush what is held first is not possible
                        // in one frame; trailers carry no body bytes, drop.
                        continue;
                    };
                    this.carry.extend_from_slice(&data);
                    let red = cordon_vault::redact(&this.carry, &[&this.secret]).into_owned();
                    let keep = this.secret.len().saturating_sub(1).min(red.len());
                    let emit_len = red.len() - keep;
                    this.carry = BytesMut::from(&red[emit_len..]);
                    if emit_len == 0 {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(
                        &red[..emit_len],
                    )))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
