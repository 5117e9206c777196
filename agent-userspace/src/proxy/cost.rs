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

use super::body::{BoxError, ProxyBody};
use crate::{cgroup::AgentPath, daemon::Shared};

/// Usage sits at the end of streamed (SSE) answers, so keep the last part.
const KEEP: usize = 256 * 1024;

pub fn metered(d: &Shared, agent: &AgentPath, connector: &str, body: ProxyBody) -> ProxyBody {
    let connectors = d.connectors.load();
    if !connectors
        .connector(connector)
        .is_some_and(|c| c.has_pricing())
    {
        return body;
    }
    Meter {
        inner: body,
        seen: BytesMut::new(),
        d: d.clone(),
        run: crate::daemon::decide::run_id(agent),
        connector: connector.to_string(),
        done: false,
    }
    .boxed()
}

struct Meter {
    inner: ProxyBody,
    seen: BytesMut,
    d: Shared,
    run: String,
    connector: String,
    done: bool,
}

impl Meter {
    fn settle(&mut self) {
        let connectors = self.d.connectors.load();
        if let Some(usd) = connectors.usage_cost(&self.connector, &self.seen) {
            let usage = self.d.policy.engine().add_cost(&self.run, usd);
            tracing::info!(run = %self.run, usd, total = usage.cost_usd, "model spend recorded");
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
}
