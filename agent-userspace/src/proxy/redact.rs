//! Redacting an injected secret from what an upstream sends back (an API
//! that echoes the Authorization header must not hand the agent the real
//! key), in every spelling the request carried it ([`Echoes`]): header
//! values, header names (such a header is dropped), the body, and a
//! WebSocket's frames (`upgrade`). The body is scrubbed across frame
//! boundaries by holding back the last `len(longest spelling) - 1` bytes of
//! each frame until the next one arrives.
use std::{
    borrow::Cow,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use cordon_vault::REDACTED_STR;
use http::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::{Body, Frame};

use super::body::{BoxError, ProxyBody};

mod coding;
mod echoes;
mod frames;
pub mod upgrade;

pub use coding::{ask_identity, unscrubbable};
pub use echoes::Echoes;

pub fn headers(h: &mut HeaderMap, echoes: &Echoes) {
    // A name cannot hold the marker: a header named with the secret goes whole.
    let named: Vec<HeaderName> = h
        .keys()
        .filter(|name| echoes.in_name(name.as_str().as_bytes()))
        .cloned()
        .collect();
    for name in named {
        h.remove(name);
    }
    let redactor = echoes.redactor();
    for v in h.values_mut() {
        if let Cow::Owned(bytes) = redactor.redact(v.as_bytes()) {
            // Only spans of a valid value were replaced, with printable ASCII, so this
            // parses; if it ever did not, the whole value goes rather than the secret.
            *v = HeaderValue::from_bytes(&bytes)
                .unwrap_or_else(|_| HeaderValue::from_static(REDACTED_STR));
        }
    }
}

pub struct RedactBody {
    inner: ProxyBody,
    echoes: Arc<Echoes>,
    /// The last `hold_back` bytes seen, already scrubbed, held until the next frame.
    carry: BytesMut,
    /// Trailers that came, scrubbed, held until the held bytes went out before them.
    trailers: Option<HeaderMap>,
    done: bool,
}

impl RedactBody {
    pub fn new(inner: ProxyBody, echoes: Arc<Echoes>) -> RedactBody {
        RedactBody {
            inner,
            echoes,
            carry: BytesMut::new(),
            trailers: None,
            done: false,
        }
    }
}

/// `bytes` scrubbed of every spelling: the same buffer when nothing matched (no copy).
pub fn scrub(bytes: Bytes, echoes: &Echoes) -> Bytes {
    match echoes.redactor().redact(&bytes) {
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
            if let Some(trailers) = this.trailers.take() {
                // The last frame of a body.
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
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
                    let rest = scrub(this.carry.split().freeze(), &this.echoes);
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => {
                            // Trailers (gRPC's status, metadata a server may echo) go
                            // scrubbed like headers, after the bytes held back.
                            if let Ok(mut trailers) = frame.into_trailers() {
                                headers(&mut trailers, &this.echoes);
                                this.trailers = Some(trailers);
                            }
                            if this.carry.is_empty() {
                                continue;
                            }
                            let rest = scrub(this.carry.split().freeze(), &this.echoes);
                            return Poll::Ready(Some(Ok(Frame::data(rest))));
                        }
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
                    let red = scrub(joined, &this.echoes);
                    let keep = this.echoes.hold_back().min(red.len());
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
    use cordon_connectors::Spellings;
    use cordon_vault::Secret;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    const TOKEN: &str = "ghs_RealInstallationToken0123456789";

    /// The token as a real connector puts it on the wire: `scheme = "basic"` with a fixed
    /// user, as git over HTTPS on github.com takes it.
    fn basic_echoes() -> Echoes {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            "name = \"b\"\nhosts = [\"b.test\"]\n[credential]\nscheme = \"basic\"\nusername = \"x-access-token\"\n",
        )
        .unwrap();
        let set = cordon_connectors::ConnectorSet::load_dir(dir.path()).unwrap();
        let spec = set.connector("b").unwrap().credential().unwrap();
        let (mut h, mut uri) = (HeaderMap::new(), "/".parse().unwrap());
        let spellings = spec.apply(&mut h, &mut uri, TOKEN.as_bytes()).unwrap();
        Echoes::new(Secret::from_slice(TOKEN.as_bytes()), spellings)
    }

    fn plain_echoes() -> Echoes {
        Echoes::new(Secret::from_slice(TOKEN.as_bytes()), Spellings::default())
    }

    async fn streamed(frames: &[&[u8]], echoes: Echoes) -> Vec<u8> {
        let frames: Vec<_> = frames
            .iter()
            .map(|f| Ok::<_, BoxError>(Frame::data(Bytes::copy_from_slice(f))))
            .collect();
        let inner = StreamBody::new(futures::stream::iter(frames)).boxed();
        let out = RedactBody::new(inner, Arc::new(echoes))
            .collect()
            .await
            .unwrap();
        out.to_bytes().to_vec()
    }

    /// Cuts `text` into three frames at every pair of points and checks each streamed result
    /// against redacting the whole text at once.
    async fn every_cut_matches_whole(text: &str, echoes: fn() -> Echoes) {
        let e = echoes();
        let whole = e.redactor().redact(text.as_bytes()).into_owned();
        for cut in 0..=text.len() {
            for second in [cut, (cut + 7).min(text.len()), text.len()] {
                let (a, rest) = text.as_bytes().split_at(cut);
                let (b, c) = rest.split_at(second - cut);
                let out = streamed(&[a, b, c], echoes()).await;
                assert_eq!(out, whole, "cuts at {cut} and {second}");
            }
        }
    }

    #[tokio::test]
    async fn a_secret_split_across_frames_at_any_point_never_reaches_the_agent() {
        let text = format!("{{\"echo\":\"Bearer {TOKEN}\",\"again\":\"{TOKEN}\",\"tail\":1}}");
        every_cut_matches_whole(&text, plain_echoes).await;
        assert!(
            !String::from_utf8_lossy(&streamed(&[text.as_bytes()], plain_echoes()).await)
                .contains(TOKEN)
        );
    }

    #[tokio::test]
    async fn an_echoed_basic_auth_header_is_scrubbed_in_base64_too() {
        // What an echo of the request's headers hands back, split anywhere.
        let mut h = HeaderMap::new();
        let spec_echoes = basic_echoes();
        let encoded = spec_echoes.spelling(1).to_vec();
        let encoded = String::from_utf8(encoded).unwrap();
        let text = format!("{{\"authorization\":\"Basic {encoded}\",\"raw\":\"{TOKEN}\"}}");
        every_cut_matches_whole(&text, basic_echoes).await;
        let out = String::from_utf8(streamed(&[text.as_bytes()], basic_echoes()).await).unwrap();
        assert_eq!(
            out,
            "{\"authorization\":\"Basic [REDACTED]\",\"raw\":\"[REDACTED]\"}"
        );
        h.insert("x-echo", format!("Basic {encoded}").parse().unwrap());
        headers(&mut h, &spec_echoes);
        assert_eq!(h["x-echo"], "Basic [REDACTED]");
    }

    #[tokio::test]
    async fn trailers_come_through_scrubbed_after_the_held_bytes() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("x-echo", format!("Bearer {TOKEN}").parse().unwrap());
        let frames = vec![
            Ok::<_, BoxError>(Frame::data(Bytes::from(format!("tail {}", &TOKEN[..9])))),
            Ok(Frame::trailers(trailers)),
        ];
        let inner = StreamBody::new(futures::stream::iter(frames)).boxed();
        let out = RedactBody::new(inner, Arc::new(plain_echoes()))
            .collect()
            .await
            .unwrap();
        let got = out.trailers().cloned().expect("trailers kept");
        assert_eq!(got["grpc-status"], "0");
        assert_eq!(got["x-echo"], "Bearer [REDACTED]");
        assert_eq!(out.to_bytes(), format!("tail {}", &TOKEN[..9]).as_bytes());
    }

    #[tokio::test]
    async fn a_body_without_the_secret_comes_through_unchanged() {
        let out = streamed(&[b"hello ", b"", b"world, no token here"], basic_echoes()).await;
        assert_eq!(out, b"hello world, no token here");
    }

    #[test]
    fn every_header_echoing_the_secret_is_scrubbed() {
        let mut h = HeaderMap::new();
        h.insert("x-echo", format!("Bearer {TOKEN}").parse().unwrap());
        h.insert("x-other", "fine".parse().unwrap());
        h.append("x-echo", TOKEN.parse().unwrap());
        headers(&mut h, &plain_echoes());
        let echoed: Vec<_> = h.get_all("x-echo").iter().collect();
        assert_eq!(echoed, ["Bearer [REDACTED]", "[REDACTED]"]);
        assert_eq!(h["x-other"], "fine");
    }

    #[test]
    fn a_header_named_with_the_secret_is_dropped_whatever_its_case() {
        let mut h = HeaderMap::new();
        let name = format!("x-{TOKEN}").to_ascii_lowercase();
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            "1".parse().unwrap(),
        );
        h.insert("x-other", "fine".parse().unwrap());
        headers(&mut h, &plain_echoes());
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-other"], "fine");
    }
}
