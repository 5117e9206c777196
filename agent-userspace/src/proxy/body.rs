//! Request bodies are streamed, never held whole. When a route takes
//! parameters from the body, at most a bounded prefix is read for
//! extraction and then replayed ahead of the rest of the stream.
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, BodyStream, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = BoxBody<Bytes, BoxError>;

pub fn boxed(b: Incoming) -> ProxyBody {
    b.map_err(|e| Box::new(e) as BoxError).boxed()
}

pub fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Reads up to `limit` bytes of data frames. Returns the prefix and a body
/// that yields the same bytes again followed by whatever was not read.
pub async fn take_prefix(body: Incoming, limit: usize) -> Result<(Bytes, ProxyBody), hyper::Error> {
    let mut body = body;
    let mut prefix = BytesMut::new();
    let mut held: Vec<Frame<Bytes>> = Vec::new();
    let mut ended = false;
    while prefix.len() < limit {
        match body.frame().await {
            None => {
                ended = true;
                break;
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    prefix.extend_from_slice(data);
                }
                held.push(frame);
            }
        }
    }
    let replay = futures::stream::iter(held.into_iter().map(Ok::<_, BoxError>));
    let rest: ProxyBody = if ended {
        StreamBody::new(replay).boxed()
    } else {
        let tail = BodyStream::new(body.map_err(|e| Box::new(e) as BoxError));
        StreamBody::new(futures::StreamExt::chain(replay, tail)).boxed()
    };
    let mut prefix = prefix.freeze();
    if prefix.len() > limit {
        prefix.truncate(limit);
    }
    Ok((prefix, rest))
}
