//! Stage 9: what became of a forwarded request. Every allowed decision gets
//! one `outcome` record when the exchange ends (status, bytes both ways,
//! time to first byte, duration, the error if any, the model spend), linked
//! to its decision by seq. The record is handed to the audit writer when the
//! response body ends, never before, so it cannot hold the answer back; a
//! body dropped before its end (the agent left, the kill switch cut it) is
//! `aborted`.
use std::{
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use cordon_audit::{LlmUsage, Outcome, OutcomeState};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

use crate::{
    proxy::{
        body::{BoxError, ProxyBody},
        env::Env,
    },
    request::Actor,
};

/// Model usage (tokens, priced cost) read when a metered body ends (see
/// `cost.rs`).
pub type Spend = Arc<OnceLock<cordon_connectors::Usage>>;

/// The outcome of one forwarded exchange, until it is written.
pub struct Tracker {
    env: Env,
    template: Outcome,
    seqs: Vec<u64>,
    started: Instant,
    up: Arc<AtomicU64>,
}

/// An outcome naming who acted and what, in `state`, for decision `seq`.
pub fn of(
    actor: &Actor,
    connector: Option<&str>,
    action: &str,
    seq: u64,
    state: OutcomeState,
) -> Outcome {
    let a = &actor.agent;
    Outcome {
        agent: Some(a.agent().to_string()),
        instance: Some(a.instance().to_string()),
        chain: Some(a.chain_display()),
        connector: connector.map(str::to_string),
        action: Some(action.to_string()),
        ..Outcome::new(seq, state)
    }
}

/// Counts the outcome in the metrics and hands it to the audit writer
/// (which never blocks: see `AuditLog::append_outcome`). Nothing with
/// `[audit] outcomes = false`.
pub fn write(env: &Env, outcome: Outcome) {
    if !env.audit.records_outcomes() {
        return;
    }
    crate::metrics::global().record_outcome(&outcome);
    env.audit.append_outcome(outcome);
}

impl Tracker {
    /// For the allowed decisions `seqs` (one per action the request held).
    pub fn new(
        env: &Env,
        actor: &Actor,
        connector: Option<&str>,
        action: &str,
        seqs: &[u64],
    ) -> Tracker {
        let template = of(actor, connector, action, 0, OutcomeState::Unknown);
        Tracker {
            env: env.clone(),
            template,
            seqs: seqs.to_vec(),
            started: Instant::now(),
            up: Arc::default(),
        }
    }

    /// The request body, counted on its way up.
    pub fn count_up(&self, body: ProxyBody) -> ProxyBody {
        Counted {
            inner: body,
            count: self.up.clone(),
        }
        .boxed()
    }

    /// No answer: the upstream failed, or the request was refused after
    /// its decision.
    pub fn failed(self, error: String) {
        let outcome = Outcome {
            bytes_up: Some(self.up.load(Ordering::Relaxed)),
            duration: Some(self.started.elapsed()),
            error: Some(error),
            ..self.template
        };
        write_each(&self.env, &self.seqs, OutcomeState::Failed, outcome);
    }

    /// The answer's head came back: its body is tracked to its end.
    pub fn answered(self, status: u16, body: ProxyBody, spend: Option<Spend>) -> ProxyBody {
        let ttfb = self.started.elapsed();
        Answered {
            inner: body,
            tracker: Some(self),
            status,
            ttfb,
            down: 0,
            spend,
        }
        .boxed()
    }
}

/// One outcome per decision the exchange carried; the last takes `outcome` itself, so the
/// usual single action copies nothing.
fn write_each(env: &Env, seqs: &[u64], state: OutcomeState, outcome: Outcome) {
    let Some((&last, rest)) = seqs.split_last() else {
        return;
    };
    for &seq in rest {
        let o = Outcome {
            decision_seq: seq,
            state,
            ..outcome.clone()
        };
        write(env, o);
    }
    write(
        env,
        Outcome {
            decision_seq: last,
            state,
            ..outcome
        },
    );
}

/// Counts the bytes of a body as they pass.
struct Counted {
    inner: ProxyBody,
    count: Arc<AtomicU64>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer's body on its way down; writes the outcome when it ends,
/// fails, or is dropped unfinished.
struct Answered {
    inner: ProxyBody,
    tracker: Option<Tracker>,
    status: u16,
    ttfb: Duration,
    down: u64,
    spend: Option<Spend>,
}

impl Answered {
    fn finish(&mut self, state: OutcomeState, error: Option<String>) {
        let Some(t) = self.tracker.take() else { return };
        let usage = self.spend.as_ref().and_then(|s| s.get().copied());
        let outcome = Outcome {
            status: Some(self.status),
            bytes_up: Some(t.up.load(Ordering::Relaxed)),
            bytes_down: Some(self.down),
            ttfb: Some(self.ttfb),
            duration: Some(t.started.elapsed()),
            error,
            llm: usage.map(|u| LlmUsage {
                tokens_in: u.tokens_in,
                tokens_out: u.tokens_out,
                cost_usd: u.cost_usd,
            }),
            ..t.template
        };
        write_each(&t.env, &t.seqs, state, outcome);
    }
}

impl Body for Answered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.down += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let why = format!("the answer broke off: {e}");
                self.finish(OutcomeState::Failed, Some(why));
            }
            Poll::Ready(None) => self.finish(OutcomeState::Completed, None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        // hyper may drop a body it saw end (is_end_stream) without polling
        // it to `None`: that is a completed answer, not a cut one.
        if self.inner.is_end_stream() {
            self.finish(OutcomeState::Completed, None);
        } else {
            self.finish(
                OutcomeState::Aborted,
                Some("the answer was cut before its end".into()),
            );
        }
    }
}
