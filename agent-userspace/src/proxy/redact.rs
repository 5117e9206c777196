//! Redacting an injected secret from what an upstream sends back (an API
//! that echoes the Authorization header must not hand the agent the real
//! key). Works across frame boundaries by holding back the last
//! `len(secret) - 1` bytes of each frame until the next one arrives.
use std::{
    borrow::Cow,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use cordon_vault::{Redactor, Secret};
use http::HeaderMap;
use hyper::body::{Body, Frame};

use super::body::{BoxError, ProxyBody};

pub fn headers(h: &mut HeaderMap, secret: &Secret) {
    let redactor = Redactor::new(&[secret]);
    for v in h.values_mut() {
        if let Cow::Owned(bytes) = redactor.redact(v.as_bytes())
            && let Ok(nv) = http::HeaderValue::from_bytes(&bytes)
        {
            *v = nv;
        }
    }
}

pub struct RedactBody {
    inner: ProxyBody,
    secret: Arc<Secret>,
    /// The last `len(secret) - 1` bytes seen, already scrubbed, held until the next frame.
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

/// `bytes` scrubbed of `secret`: the same buffer when nothing matched (no copy).
fn scrub(bytes: Bytes, secret: &Secret) -> Bytes {
    match Redactor::new(&[secret]).redact(&bytes) {
        Cow::Borrowed(_) => bytes,
        Cow::Owned(scrubbed) => Bytes::from(scrubbed),
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
                    let rest = scrub(this.carry.split().freeze(), &this.secret);
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        // Trailers: flush what is held first is not possible
                        // in one frame; trailers carry no body bytes, drop.
                        continue;
                    };
                    // The held bytes go in front, so a secret split across
                    // frames is whole here. A frame with nothing held and no
                    // match passes through as it came.
                    let joined = if this.carry.is_empty() {
                        data
                    } else {
                        this.carry.extend_from_slice(&data);
                        this.carry.split().freeze()
                    };
                    let red = scrub(joined, &this.secret);
                    let keep = this.secret.len().saturating_sub(1).min(red.len());
                    let emit_len = red.len() - keep;
                    this.carry.extend_from_slice(&red[emit_len..]);
                    if emit_len == 0 {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(red.slice(..emit_len)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    const TOKEN: &str = "ghs_RealInstallationToken0123456789";

    async fn streamed(frames: &[&[u8]]) -> Vec<u8> {
        let frames: Vec<_> = frames
            .iter()
            .map(|f| Ok::<_, BoxError>(Frame::data(Bytes::copy_from_slice(f))))
            .collect();
        let inner = StreamBody::new(futures::stream::iter(frames)).boxed();
        let secret = Arc::new(Secret::from_slice(TOKEN.as_bytes()));
        let out = RedactBody::new(inner, secret).collect().await.unwrap();
        out.to_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_secret_split_across_frames_at_any_point_never_reaches_the_agent() {
        let text = format!("{{\"echo\":\"Bearer {TOKEN}\",\"again\":\"{TOKEN}\",\"tail\":1}}");
        let whole = cordon_vault::redact(text.as_bytes(), &[&Secret::from_slice(TOKEN.as_bytes())])
            .into_owned();
        for cut in 0..=text.len() {
            for second in [cut, (cut + 7).min(text.len()), text.len()] {
                let (a, rest) = text.as_bytes().split_at(cut);
                let (b, c) = rest.split_at(second - cut);
                let out = streamed(&[a, b, c]).await;
                assert_eq!(out, whole, "cuts at {cut} and {second}");
            }
        }
    }

    #[tokio::test]
    async fn a_body_without_the_secret_comes_through_unchanged() {
        let out = streamed(&[b"hello ", b"", b"world, no token here"]).await;
        assert_eq!(out, b"hello world, no token here");
    }

    #[test]
    fn every_header_echoing_the_secret_is_scrubbed() {
        let mut h = HeaderMap::new();
        h.insert("x-echo", format!("Bearer {TOKEN}").parse().unwrap());
        h.insert("x-other", "fine".parse().unwrap());
        h.append("x-echo", TOKEN.parse().unwrap());
        headers(&mut h, &Secret::from_slice(TOKEN.as_bytes()));
        let echoed: Vec<_> = h.get_all("x-echo").iter().collect();
        assert_eq!(echoed, ["Bearer [REDACTED]", "[REDACTED]"]);
        assert_eq!(h["x-other"], "fine");
    }
}
