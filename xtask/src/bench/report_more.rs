//! The sections of bench/REPORT.md after the HTTP tables: bare connects,
//! criterion, the kill switch, memory.
use std::fmt::Write;

use super::Results;

fn f(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

pub fn sections(r: &Results) -> String {
    let mut s = String::new();
    connect(&mut s, r);
    contain(&mut s, r);
    criterion(&mut s, r);
    kill(&mut s, r);
    memory(&mut s, r);
    s
}

fn errors(s: &mut String, errs: &[String]) {
    if !errs.is_empty() {
        let _ = writeln!(s, "\nErrors: {}\n", errs.join("; ").replace('\n', " "));
    }
}

fn connect(s: &mut String, r: &Results) {
    let c = &r.connect;
    let _ = writeln!(
        s,
        "## Bare TCP connect()+close, inside vs outside an agent cgroup\n\n\
         `bench-probe connect-loop`: one thread, connect() to a local listener then close with a RST, {} connects or {} s \
         per run. Inside the cgroup the connect is rewritten to Cordon's proxy, whose kernel socket completes the \
         handshake; the proxy's decision (tcp.connect, audited) runs after connect() has returned, so it is not on this \
         path but competes for the same CPUs.\n",
        r.connect_n, r.connect_secs
    );
    let _ = writeln!(
        s,
        "| | connects/s | connect() p50 us | p99 us | max us | connects over 10 ms | s in connect() / s total | connects | errors |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (name, m) in [
        ("outside", c.outside_median),
        ("inside (cordon)", c.inside_median),
    ] {
        if let Some(m) = m {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {} | {:.2} / {:.2} | {} | {} |",
                f(m.per_sec, 0),
                f(m.p50_us, 1),
                f(m.p99_us, 1),
                f(m.max_us, 0),
                m.slow_over_10ms,
                m.secs_in_connect,
                m.secs,
                m.connects,
                m.errors
            );
        }
    }
    if let (Some(p), Some(t)) = (c.added_p50, c.added_per_connect) {
        let _ = writeln!(
            s,
            "\nAdded by the redirect: {:+.0}% on connect() p50, {:+.0}% on time per loop iteration.",
            p * 100.0,
            t * 100.0
        );
    }
    errors(s, &c.errors);
    let _ = writeln!(s);
}

fn contain(s: &mut String, r: &Results) {
    let c = &r.contain;
    let _ = writeln!(
        s,
        "## Host containment, inside vs outside an agent\n\n\
         `bench-probe open-loop` (open()+close() of `{}`, {} times a round) and `bench-probe spawn-loop` (fork, exec \
         `/bin/true`, wait; {} times a round), each timed inside the probe, as `nobody` with working dir `{}`: outside any \
         agent, and inside a contained one (`cordon run --user nobody`: its Landlock domain, the deny list carved \
         out of its grants, and the BPF LSM layer if attached). Each round alternates the sides in {} blocks (outside, \
         inside, outside, ...), each with its share of the iterations. The ratio is inside over outside time per \
         iteration of each adjacent pair, median over every pair of every round; the ns columns are medians over blocks.\n",
        c.file, c.open.iterations, c.spawn.iterations, c.workdir, c.open.blocks
    );
    if let Some(layers) = c.layers.as_object() {
        let l: Vec<String> = layers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        // Before the table: a line between its header and rows would end it.
        let _ = writeln!(
            s,
            "Containment as `cordon status` reported it: {}.\n",
            l.join(", ").replace('|', "/")
        );
    }
    let _ = writeln!(
        s,
        "| loop | outside ns/op | inside ns/op | inside / outside | outside p50 / p99 ns | inside p50 / p99 ns |\n|---|---|---|---|---|---|"
    );
    for (name, p) in [("open()+close()", &c.open), ("fork+exec+wait", &c.spawn)] {
        let ns = |v: Option<f64>| v.map_or("-".into(), |v| f(v, 0));
        let pct = |v: &[super::contain::Loop]| {
            let m = |g: fn(&super::contain::Loop) -> f64| {
                f(super::median(v.iter().map(g).collect()), 0)
            };
            format!("{} / {}", m(|l| l.p50_ns), m(|l| l.p99_ns))
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} |",
            ns(p.outside_ns_per_op),
            ns(p.inside_ns_per_op),
            p.ratio.map_or("-".into(), |v| format!("{v:.3}x")),
            pct(&p.outside),
            pct(&p.inside)
        );
    }
    errors(s, &c.errors);
    let _ = writeln!(s);
}

fn criterion(s: &mut String, r: &Results) {
    let c = &r.criterion;
    let _ = writeln!(
        s,
        "## Policy decision and audit appends (criterion)\n\n\
         `cargo bench -p cordon-policy --bench decide`: one decision over 1, 100 and 1,000 rules (three in four with a CEL \
         `when`); `set` is the static decision, `engine` adds limits and grants as the daemon calls it. \
         `cargo bench -p cordon-audit --bench append`: strict-mode (durable) appends with N concurrent appenders, \
         `strict_append` with every group a durable redb commit, `strict_append_wal` through the write-ahead log as \
         the daemon runs.\n"
    );
    let _ = writeln!(s, "| benchmark | median | 95% interval |\n|---|---|---|");
    for e in &c.policy {
        let _ = writeln!(
            s,
            "| {} | {} us | {} - {} us |",
            e.id,
            f(e.median_ns / 1e3, 3),
            f(e.low_ns / 1e3, 3),
            f(e.high_ns / 1e3, 3)
        );
    }
    for e in &c.audit {
        let _ = writeln!(
            s,
            "| {} appenders | {} us per record ({} records/s) | {} - {} us |",
            e.id,
            f(e.median_ns / 1e3, 1),
            f(1e9 / e.median_ns, 0),
            f(e.low_ns / 1e3, 1),
            f(e.high_ns / 1e3, 1)
        );
    }
    errors(s, &c.errors);
    let _ = writeln!(s);
}

fn kill(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Kill switch under load\n\n\
         oha (8 keep-alive HTTPS connections) runs inside agent `bench-kill-N` against an nginx port that logs each \
         request's arrival. `cordon kill` is timed from spawn to the moment the agent's `cgroup.events` says \
         `frozen 1` (this process polls it every 50 us: the kernel's word, not the daemon's) and to its exit, \
         which also waits for the kill to be persisted and audited; requests are counted whose arrival at the \
         upstream is after `kill` returned (millisecond resolution).\n"
    );
    let _ = writeln!(
        s,
        "| agent | start to frozen (ms) | start to return (ms) | daemon says | requests in the 500 ms before | arrived after return | finished after return |\n|---|---|---|---|---|---|---|"
    );
    for k in &r.kill.rounds {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            k.agent,
            k.frozen_us
                .map_or_else(|| "not seen".to_string(), |u| f(u / 1e3, 2)),
            f(k.cli_us / 1e3, 2),
            k.summary.replace('|', "/"),
            k.arrived_500ms_before,
            k.arrived_after,
            k.logged_after
        );
    }
    errors(s, &r.kill.errors);
    let _ = writeln!(s);
}

fn memory(s: &mut String, r: &Results) {
    let m = &r.memory;
    let mib = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} MiB"));
    let _ = writeln!(s, "## Daemon memory\n\n| when | VmRSS |\n|---|---|");
    let _ = writeln!(s, "| idle, fresh daemon | {} |", mib(m.idle_fresh_mib));
    let _ = writeln!(
        s,
        "| idle, 11 s after the load scenarios | {} |",
        mib(m.idle_after_load_mib)
    );
    let _ = writeln!(
        s,
        "| lifetime peak (VmHWM) at the end | {} |",
        mib(m.hwm_mib)
    );
    if let Some(b) = &m.big {
        let _ = writeln!(
            s,
            "| before the 1 MiB downloads | {:.1} MiB |",
            b.before_mib
        );
        let _ = writeln!(
            s,
            "| peak during the 1 MiB downloads | {:.1} MiB |",
            b.peak_mib
        );
        let _ = writeln!(
            s,
            "| 11 s after the 1 MiB downloads | {:.1} MiB |",
            b.after_mib
        );
    }
    let _ = writeln!(
        s,
        "\nIdle agent connections: `bench-probe hold` opens N connections from inside an agent cgroup to a listener \
         that holds them; each becomes a decided, audited tcp.connect spliced to the listener (two sockets in the daemon).\n"
    );
    let _ = writeln!(
        s,
        "| connections | opened | through to the listener | time to open all (s) | RSS before | RSS held | RSS after close | daemon fds held |\n|---|---|---|---|---|---|---|---|"
    );
    for l in &m.idle_conns.levels {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} |",
            l.connections,
            l.opened,
            l.spliced,
            l.secs_to_open,
            l.rss_before_mib,
            l.rss_held_mib,
            l.rss_after_mib,
            l.daemon_fds_held
        );
    }
    errors(s, &m.idle_conns.errors);
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
}
