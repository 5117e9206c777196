//! The `/metrics` endpoint: the recorded families plus gauges read from the
//! daemon at scrape time.
use std::convert::Infallible;

use anyhow::Context;
use bytes::Bytes;
use cordon_audit::{AuditMetrics, Health};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;

use super::text::{CONTENT_TYPE, Exposition, Kind};
use crate::daemon::{Shared, kill};

/// Binds `cfg.metrics_addr` (nothing when unset) and serves it on a task.
/// A configured address that cannot be bound stops the start.
pub fn spawn(d: &Shared) -> anyhow::Result<()> {
    let Some(addr) = d.cfg.metrics_addr else {
        return Ok(());
    };
    let std = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding the metrics endpoint {addr}"))?;
    std.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "metrics endpoint is reachable from other hosts; it has no authentication");
    }
    tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    tokio::spawn(accept_loop(d.clone(), listener));
    Ok(())
}

async fn accept_loop(d: Shared, listener: tokio::net::TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("metrics accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let d = d.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(d.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("metrics connection: {e}");
            }
        });
    }
}

async fn answer(d: Shared, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(CONTENT_TYPE),
        );
        r
    };
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, "see /metrics\n".into()));
    }
    let snap = match tokio::task::spawn_blocking(move || Snapshot::read(&d)).await {
        Ok(s) => s,
        Err(e) => return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))),
    };
    Ok(reply(StatusCode::OK, render(super::global(), &snap)))
}

/// What the daemon reports at scrape time.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub approvals_pending: usize,
    pub agents_running: usize,
    pub agents_frozen: usize,
    pub audit: AuditMetrics,
    pub audit_health: Health,
    /// The `[audit.forward]` forwarder, when one runs.
    pub forward: Option<cordon_audit::forward::ForwardSnapshot>,
    /// Agent connections held now, and the most the daemon holds (its
    /// descriptor budget, `daemon/caps/budget.rs`).
    pub connections_held: u64,
    pub connections_budget: u64,
}

impl Snapshot {
    /// Reads cgroup state from sysfs: call it off the async threads.
    fn read(d: &Shared) -> Snapshot {
        let tree = d.registry.tree();
        let (mut running, mut frozen) = (0, 0);
        for (_, p) in d.registry.snapshot() {
            // Only whole instance paths are agents; the rest are their parents.
            if p.instances.len() != p.chain.len() {
                continue;
            }
            let stopped = kill::is_killed(d, &p)
                || crate::cgroup::freeze::is_frozen(&tree.dir_of(&p)).unwrap_or(false);
            if stopped {
                frozen += 1;
            } else {
                running += 1;
            }
        }
        Snapshot {
            approvals_pending: d.approvals.list().len(),
            agents_running: running,
            agents_frozen: frozen,
            audit: d.audit.metrics(),
            audit_health: d.audit.health(),
            forward: super::global().forwarder(),
            connections_held: d.caps.connections_held(),
            connections_budget: d.caps.budget().daemon_connections,
        }
    }
}

fn health_state(h: &Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Saturated { .. } => "saturated",
        Health::Failed { .. } => "failed",
        Health::Closed => "closed",
    }
}

/// The whole scrape: recorded families, then the gauges.
pub fn render(m: &super::Metrics, s: &Snapshot) -> String {
    let mut e = Exposition::new();
    m.render(&mut e);
    e.single(
        "cordon_approvals_pending",
        "Requests held for a human decision.",
        Kind::Gauge,
        s.approvals_pending as f64,
    );
    e.family(
        "cordon_agents",
        "Agent instances by state (killed instances count as frozen).",
        Kind::Gauge,
    );
    e.sample(
        "cordon_agents",
        &[("state", "running")],
        s.agents_running as f64,
    );
    e.sample(
        "cordon_agents",
        &[("state", "frozen")],
        s.agents_frozen as f64,
    );
    e.single(
        "cordon_agent_connections",
        "Agent connections the proxy holds now, all agents together.",
        Kind::Gauge,
        s.connections_held as f64,
    );
    e.single(
        "cordon_agent_connections_budget",
        "The most agent connections the daemon holds at once (its descriptor budget).",
        Kind::Gauge,
        s.connections_budget as f64,
    );
    let a = &s.audit;
    e.single(
        "cordon_audit_queue_depth",
        "Audit records accepted but not yet taken by the writer.",
        Kind::Gauge,
        a.queue_depth as f64,
    );
    e.single(
        "cordon_audit_queue_capacity",
        "Audit queue capacity; appends are refused (and requests denied) when full.",
        Kind::Gauge,
        a.queue_capacity as f64,
    );
    e.single(
        "cordon_audit_healthy",
        "1 while the audit log accepts records, 0 otherwise (requests are then denied).",
        Kind::Gauge,
        if s.audit_health.is_healthy() {
            1.0
        } else {
            0.0
        },
    );
    e.family(
        "cordon_audit_health",
        "Audit log state: 1 for the current one.",
        Kind::Gauge,
    );
    let now = health_state(&s.audit_health);
    for state in ["healthy", "saturated", "failed", "closed"] {
        let v = if state == now { 1.0 } else { 0.0 };
        e.sample("cordon_audit_health", &[("state", state)], v);
    }
    let counters = [
        (
            "cordon_audit_records_committed_total",
            "Audit records durably committed.",
            a.committed_total,
        ),
        (
            "cordon_audit_commits_total",
            "Audit transactions committed.",
            a.commits_total,
        ),
        (
            "cordon_audit_wal_syncs_total",
            "fdatasyncs of the audit write-ahead log.",
            a.wal_syncs_total,
        ),
        (
            "cordon_audit_commit_failures_total",
            "Audit commits that failed.",
            a.commit_failures_total,
        ),
        (
            "cordon_audit_rejected_total",
            "Audit appends refused (queue full or log unavailable).",
            a.rejected_queue_full_total + a.rejected_unavailable_total,
        ),
    ];
    for (name, help, v) in counters {
        e.single(name, help, Kind::Counter, v as f64);
    }
    e.single(
        "cordon_audit_last_seq",
        "Newest committed audit record.",
        Kind::Gauge,
        a.last_committed_seq as f64,
    );
    e.single(
        "cordon_audit_outcomes_unrecorded_total",
        "Outcome records that could not be queued (their decisions are marked at the next start).",
        Kind::Counter,
        a.outcomes_unrecorded_total as f64,
    );
    if let Some(f) = &s.forward {
        render_forward(&mut e, f, a.last_committed_seq);
    }
    e.finish()
}

/// `cordon_audit_forward_*`: where the syslog forwarder stands.
fn render_forward(
    e: &mut Exposition,
    f: &cordon_audit::forward::ForwardSnapshot,
    last_committed_seq: u64,
) {
    let gauges = [
        (
            "cordon_audit_forward_connected",
            "1 while connected to the audit collector.",
            u64::from(f.connected),
        ),
        (
            "cordon_audit_forward_lag_records",
            "Records committed locally but not yet delivered to the collector.",
            f.lag(last_committed_seq),
        ),
        (
            "cordon_audit_forward_delivered_seq",
            "Newest record the collector is taken to have (the persisted cursor).",
            f.delivered_seq,
        ),
        (
            "cordon_audit_forward_sent_seq",
            "Newest record written to the collector.",
            f.sent_seq,
        ),
    ];
    for (name, help, v) in gauges {
        e.single(name, help, Kind::Gauge, v as f64);
    }
    let counters = [
        (
            "cordon_audit_forward_records_total",
            "Records written to the collector (resends included).",
            f.records_sent_total,
        ),
        (
            "cordon_audit_forward_reconnects_total",
            "Connections to the collector after the first.",
            f.reconnects_total,
        ),
        (
            "cordon_audit_forward_skipped_total",
            "Records pruned by retention before they could be forwarded.",
            f.skipped_total,
        ),
    ];
    for (name, help, v) in counters {
        e.single(name, help, Kind::Counter, v as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(health: Health) -> Snapshot {
        Snapshot {
            approvals_pending: 2,
            agents_running: 3,
            agents_frozen: 1,
            audit: AuditMetrics {
                queue_depth: 5,
                queue_capacity: 4096,
                committed_total: 40,
                ..Default::default()
            },
            audit_health: health,
            forward: None,
            connections_held: 7,
            connections_budget: 100,
        }
    }

    #[test]
    fn gauges_report_the_snapshot() {
        let t = render(
            &super::super::Metrics::default(),
            &snapshot(Health::Healthy),
        );
        for line in [
            "cordon_approvals_pending 2\n",
            "cordon_agent_connections 7\n",
            "cordon_agent_connections_budget 100\n",
            "cordon_agents{state=\"running\"} 3\n",
            "cordon_agents{state=\"frozen\"} 1\n",
            "cordon_audit_queue_depth 5\n",
            "cordon_audit_healthy 1\n",
            "cordon_audit_health{state=\"healthy\"} 1\n",
            "cordon_audit_health{state=\"failed\"} 0\n",
            "cordon_audit_records_committed_total 40\n",
            "# TYPE cordon_requests_total counter\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
    }

    #[test]
    fn forwarder_lag_is_committed_minus_delivered() {
        let mut s = snapshot(Health::Healthy);
        s.audit.last_committed_seq = 120;
        s.forward = Some(cordon_audit::forward::ForwardSnapshot {
            connected: true,
            sent_seq: 110,
            delivered_seq: 100,
            records_sent_total: 130,
            ..Default::default()
        });
        let t = render(&super::super::Metrics::default(), &s);
        for line in [
            "cordon_audit_forward_connected 1\n",
            "cordon_audit_forward_lag_records 20\n",
            "cordon_audit_forward_sent_seq 110\n",
            "cordon_audit_forward_records_total 130\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        let without = render(
            &super::super::Metrics::default(),
            &snapshot(Health::Healthy),
        );
        assert!(
            !without.contains("cordon_audit_forward_"),
            "no forwarder, no series"
        );
    }

    #[test]
    fn a_failed_audit_log_is_unhealthy() {
        let failed = Health::Failed {
            reason: "disk".into(),
            since: chrono::Utc::now(),
        };
        let t = render(&super::super::Metrics::default(), &snapshot(failed));
        assert!(t.contains("cordon_audit_healthy 0\n"));
        assert!(t.contains("cordon_audit_health{state=\"failed\"} 1\n"));
        assert!(t.contains("cordon_audit_health{state=\"healthy\"} 0\n"));
    }

    #[test]
    fn every_sample_belongs_to_a_declared_family() {
        let m = super::super::Metrics::default();
        m.record_request("a", "b.c", cordon_audit::Decision::Allow);
        let t = render(&m, &snapshot(Health::Healthy));
        let mut declared = std::collections::HashSet::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap_or_default().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{name} has no # TYPE");
            }
        }
    }
}
