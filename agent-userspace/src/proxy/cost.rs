//! Metering model spend for the execution envelope: responses of
//! connectors with a pricing table are teed (a bounded prefix, never the
//! whole body held back) and, when the body ends, the usage the API
//! reported is priced and added to the run's cost.
use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

use std::sync::Arc;

use cordon_connectors::ConnectorSet;

use super::{
    body::{BoxError, ProxyBody},
    env::Env,
    pipeline::outcome::Spend,
};
use crate::{cgroup::AgentPath, request::Pinned};

/// Usage sits at the end of streamed (SSE) answers, so keep the last part.
const KEEP: usize = 256 * 1024;

/// Priced by the request's pinned connectors, so the price list that
/// applies is the one the request was decided under.
pub fn metered(
    env: &Env,
    pinned: &Pinned,
    agent: &AgentPath,
    connector: &str,
    body: ProxyBody,
) -> (ProxyBody, Option<Spend>) {
    let connectors = &pinned.connectors;
    if !connectors
        .connector(connector)
        .is_some_and(|c| c.has_pricing())
    {
        return (body, None);
    }
    let spend = Spend::default();
    let body = Meter {
        inner: body,
        seen: BytesMut::new(),
        env: env.clone(),
        connectors: connectors.clone(),
        run: crate::cgroup::run_id(agent),
        connector: connector.to_string(),
        done: false,
        spend: spend.clone(),
    }
    .boxed();
    (body, Some(spend))
}

struct Meter {
    inner: ProxyBody,
    seen: BytesMut,
    env: Env,
    connectors: Arc<ConnectorSet>,
    run: String,
    connector: String,
    done: bool,
    /// Where the usage and its price go, for the request's outcome record.
    spend: Spend,
}

impl Meter {
    fn settle(&mut self) {
        if let Some(usage) = self.connectors.usage(&self.connector, &self.seen) {
            if let Some(usd) = usage.cost_usd {
                self.env.snapshots.add_cost(&self.run, usd);
                tracing::info!(run = %self.run, usd, "model spend recorded");
            }
            if self.spend.set(usage).is_err() {
                tracing::debug!(run = %self.run, "spend already recorded for this answer");
            }
        }
        self.seen.clear();
    }
}

impl Body for Meter {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen.extend_from_slice(data);
                    if this.seen.len() > KEEP {
                        let cut = this.seen.len() - KEEP;
                        let _ = this.seen.split_to(cut);
                    }
                }
                // hyper drops an answer of known length once it has written
                // it, without polling it to `None`: settle on the last frame,
                // before the outcome (which wraps this body) is written.
                if !this.done && this.inner.is_end_stream() {
                    this.done = true;
                    this.settle();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                if !this.done {
                    this.done = true;
                    this.settle();
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }

    // Forwarded so hyper (and the outcome's body around this one) see where
    // the answer ends: without them a metered answer looked endless, and its
    // outcome was recorded as cut and its spend never settled.
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
