//! The JIT-token scenario's section of bench/REPORT.md.
use std::fmt::Write;

use super::{
    Results,
    goals::{self, Goal},
    jit_run::Stats,
};

fn f(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

pub fn section(r: &Results) -> String {
    let mut s = String::new();
    let j = &r.jit;
    let _ = writeln!(
        s,
        "## JIT token (cache hit) against a static token, same daemon (`jit-token`)\n\n\
         A fifth daemon, `cordon-jit` (this build, strict durability), with a connector `bench-api` on `localhost` \
         (bearer scheme; its own daemon because that connector would name every other scenario's requests). Agent \
         `bench-static` is bound to a static vault token; agent `bench-jit` to a `github-app` entry, so Cordon mints \
         an installation token at the bench upstream (nginx answers `POST /app/installations/ID/access_tokens` with a \
         fixed token valid for an hour and does not check the app JWT) on an instance's first request and serves \
         every later one from its cache; each `cordon run` is a new instance, so each run mints once. Both send \
         `oha` keep-alive GETs to `{}`, interleaved in every round (who goes first alternates), after an unmeasured \
         1 s run of each. The upstream answers only a request carrying \
         one of the two tokens (401 otherwise) and logs each token's requests apart: after every run each of the \
         agent's successful requests must be in its own token's log and none in the other's, and the jit run must \
         have minted, or the scenario reports the failure instead of figures. Ratios are jit / static in the same \
         round, median over rounds; latency from oha (mean, p50, p99), CPU us/req is `cordon-jit`'s. Goal: \
         1-connection mean latency ratio <= 1.05.\n",
        if j.url.is_empty() { "-" } else { &j.url }
    );
    if let Some(why) = &j.missing {
        let _ = writeln!(s, "**Not part of this run**: {}\n", why.replace('\n', " "));
        return s;
    }
    let _ = writeln!(
        s,
        "| load | token | req/s | mean ms | p50 ms | p99 ms | CPU us/req |\n|---|---|---|---|---|---|---|"
    );
    // A ratio row prints every column as `N.NNNx`.
    let row = |s: &mut String, load: &str, who: &str, v: Option<Stats>, ratio: bool| {
        let (x, rps, cpu) = if ratio { ("x", 3, 3) } else { ("", 0, 1) };
        let _ = match v {
            Some(v) => writeln!(
                s,
                "| {load} | {who} | {}{x} | {}{x} | {}{x} | {}{x} | {}{x} |",
                f(v.rps, rps),
                f(v.mean_ms, 3),
                f(v.p50_ms, 3),
                f(v.p99_ms, 3),
                f(v.cpu_us_per_req, cpu)
            ),
            None => writeln!(s, "| {load} | {who} | not measured | | | | |"),
        };
    };
    for l in &j.loads {
        let load = format!("`{}`", l.load);
        row(&mut s, &load, "static", l.static_median, false);
        row(&mut s, &load, "jit (minted, cached)", l.jit_median, false);
        row(&mut s, &load, "jit / static", l.ratio, true);
    }
    let errs: Vec<String> = j.loads.iter().flat_map(|l| l.errors.clone()).collect();
    if !errs.is_empty() {
        let _ = writeln!(s, "\nErrors: {}", errs.join("; ").replace('\n', " "));
    }
    let _ = writeln!(s);
    s
}

/// A cache hit adds at most 5% to a 1-connection request's mean latency.
pub fn goal(r: &Results) -> Goal {
    let one = r.jit.loads.iter().find(|l| l.connections == 1);
    let m = one.and_then(|l| Some((l.ratio?, l.jit_median?, l.static_median?)));
    goals::goal(
        "JIT token (cache hit): 1-connection mean latency <= 1.05x a static token",
        m.map(|(x, j, s)| {
            (
                x.mean_ms,
                format!(
                    "{:.3}x ({:.1} us jit, {:.1} us static)",
                    x.mean_ms,
                    j.mean_ms * 1e3,
                    s.mean_ms * 1e3
                ),
            )
        }),
        |v| v <= 1.05,
    )
}
