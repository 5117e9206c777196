//! The agent's request body bytes in flight, against its cap
//! (`request_bytes_in_flight`). A declared `content-length` is taken whole
//! before anything is read (`declared`). A body that declares no length
//! (chunked HTTP/1, HTTP/2 without `content-length`) is counted frame by
//! frame as it streams (`Metered`): a frame that would go over the cap is
//! never passed on, the body ends in an error that cuts the upstream
//! request, and the `Tripwire` tells the forwarding stage why, so the agent
//! gets the cap's 429 and the trail its `limit.hit` rather than an
//! upstream failure.
//!
//! The bytes of a streamed body are held until the body is dropped (sent,
//! or abandoned), as a declared length is held until the answer starts.
use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::header;
use hyper::body::{Body, Frame, SizeHint};

use crate::{
    cgroup::AgentPath,
    proxy::body::{BoxError, ProxyBody},
    request::caps::{Admission, CapHit, Permit},
};

/// The length a request declares, or 0 when it declares none (hyper has
/// already refused a `content-length` that does not parse).
pub fn declared_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether a streamed body needs counting as it goes: it declares no
/// length and may carry data.
pub fn streams_undeclared(headers: &http::HeaderMap, body: &ProxyBody) -> bool {
    !headers.contains_key(header::CONTENT_LENGTH) && !body.is_end_stream()
}

/// Set once, by the frame that went over the cap.
#[derive(Clone, Default, Debug)]
pub struct Tripwire(Arc<OnceLock<CapHit>>);

impl Tripwire {
    pub fn hit(&self) -> Option<CapHit> {
        self.0.get().cloned()
    }
}

/// The body's error once it went over the cap: it ends the upstream
/// request; the agent's answer comes from the `Tripwire`.
#[derive(Debug, thiserror::Error)]
#[error("request body over the agent's cap on request bytes in flight")]
pub struct OverCap;

/// A streamed body, counted against the agent's cap frame by frame.
pub struct Metered {
    inner: ProxyBody,
    admission: Arc<dyn Admission>,
    agent: AgentPath,
    /// One permit per counted frame; dropped with the body.
    held: Vec<Permit>,
    tripwire: Tripwire,
}

impl Metered {
    pub fn new(inner: ProxyBody, admission: Arc<dyn Admission>, agent: AgentPath) -> Metered {
        Metered {
            inner,
            admission,
            agent,
            held: Vec::new(),
            tripwire: Tripwire::default(),
        }
    }

    pub fn tripwire(&self) -> Tripwire {
        self.tripwire.clone()
    }

    /// Only called before the wire trips (`poll_frame` stops there).
    fn count(&mut self, len: usize) -> Result<(), OverCap> {
        match self.admission.request_bytes(&self.agent, len as u64) {
            Ok(permit) => {
                self.held.push(permit);
                Ok(())
            }
            Err(hit) => {
                // Set once: this is the only frame that goes over (the
                // body ends with it).
                self.tripwire.0.get_or_init(|| hit);
                Err(OverCap)
            }
        }
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.tripwire.0.get().is_some() {
            return Poll::Ready(Some(Err(Box::new(OverCap))));
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
            && !data.is_empty()
            && let Err(over) = this.count(data.len())
        {
            return Poll::Ready(Some(Err(Box::new(over))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::request::caps::Cap;

    /// An agent allowed `limit` bytes at once, counting what it holds.
    struct Bytes1 {
        limit: u64,
        held: Arc<Mutex<u64>>,
    }

    impl Admission for Bytes1 {
        fn connection(&self, _: &AgentPath) -> Result<Permit, CapHit> {
            Ok(Permit::none())
        }
        fn dns_query(&self, _: &AgentPath) -> Result<(), CapHit> {
            Ok(())
        }
        fn request_bytes(&self, _: &AgentPath, bytes: u64) -> Result<Permit, CapHit> {
            let mut held = self.held.lock().unwrap();
            if *held + bytes > self.limit {
                return Err(CapHit {
                    cap: Cap::RequestBytes,
                    limit: self.limit,
                    from_policy: true,
                    opens_burst: true,
                });
            }
            *held += bytes;
            let h = self.held.clone();
            Ok(Permit::new(move || *h.lock().unwrap() -= bytes))
        }
    }

    fn chunks(parts: &[&'static str]) -> ProxyBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures::stream::iter(frames)).boxed()
    }

    fn agent() -> AgentPath {
        AgentPath {
            chain: vec!["a".into()],
            instances: vec!["i1".into()],
        }
    }

    #[tokio::test]
    async fn a_streamed_body_under_the_cap_passes_whole_and_is_released_when_dropped() {
        let held = Arc::new(Mutex::new(0));
        let adm = Arc::new(Bytes1 {
            limit: 10,
            held: held.clone(),
        });
        let m = Metered::new(chunks(&["abcd", "efgh"]), adm, agent());
        let trip = m.tripwire();
        let mut m = m;
        let mut got = Vec::new();
        while let Some(f) = m.frame().await {
            got.extend_from_slice(f.unwrap().data_ref().unwrap());
        }
        assert_eq!(got, b"abcdefgh");
        assert_eq!(*held.lock().unwrap(), 8, "held while the body lives");
        drop(m);
        assert_eq!(*held.lock().unwrap(), 0);
        assert!(trip.hit().is_none());
    }

    #[tokio::test]
    async fn the_frame_that_goes_over_the_cap_is_never_passed_on_and_trips_the_wire() {
        let held = Arc::new(Mutex::new(0));
        let adm = Arc::new(Bytes1 {
            limit: 10,
            held: held.clone(),
        });
        let mut m = Metered::new(chunks(&["abcdef", "MARKER", "tail"]), adm, agent());
        let trip = m.tripwire();
        let first = m.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap().as_ref(), b"abcdef");
        let err = m.frame().await.unwrap().unwrap_err();
        assert!(err.is::<OverCap>(), "{err}");
        // Nothing after the cap, ever.
        assert!(m.frame().await.unwrap().is_err());
        let hit = trip.hit().expect("tripped");
        assert_eq!(hit.cap, Cap::RequestBytes);
        drop(m);
        assert_eq!(*held.lock().unwrap(), 0);
    }

    #[test]
    fn only_a_body_without_a_declared_length_is_metered() {
        let mut h = http::HeaderMap::new();
        assert!(streams_undeclared(&h, &chunks(&["x"])));
        assert!(!streams_undeclared(&h, &crate::proxy::body::empty()));
        h.insert(header::CONTENT_LENGTH, "1".parse().unwrap());
        assert!(!streams_undeclared(&h, &chunks(&["x"])));
        assert_eq!(declared_length(&h), 1);
    }
}
