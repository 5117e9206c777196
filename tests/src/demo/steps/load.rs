//! Chapter 18: an agent in a connect loop. A loop of connections reset
//! before their first byte (a port scan, a health check) is in the trail
//! once per burst, with the count, rather than once per connection.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::demo::ctx::Ctx;
use crate::trail::read_trail;

const PROBES: u64 = 300;

/// Connects N times to IP:80 and resets each connection without sending.
const RESET_LOOP: &str = r#"
import socket, struct, sys
ip, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.connect((ip, 80))
    s.close()
print("done")
"#;

/// The records of researcher's probes: (own records, probes accounted for).
fn probes(c: &Ctx, ip: &str) -> anyhow::Result<(usize, u64)> {
    let trail = read_trail(&c.w.state_dir())?;
    let t = trail.of_chain("researcher");
    let recs = t.matching("tcp.connect", &[("ip", json!(ip)), ("port", json!(80))]);
    let own = recs
        .iter()
        .filter(|r| r.params.get("reset_probes").is_none())
        .count();
    let accounted = recs
        .iter()
        .map(|r| {
            r.params
                .get("reset_probes")
                .map_or(1, |n| n.as_u64().unwrap_or(0))
        })
        .sum();
    Ok((own, accounted))
}

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "18. A connect loop",
        "researcher opens 300 connections to paste.test's address and resets each before \
         sending a byte, as a port scan or a health check does. Each is redirected and decided \
         (denied: researcher may not reach paste.test), nothing is connected upstream, and the \
         trail holds the first on its own and one summary with the count.",
    );
    let ip = c.w.layout().paste_ip.to_string();
    let out = c.agent(
        "researcher",
        &[
            "/usr/bin/python3",
            "-c",
            RESET_LOOP,
            &ip,
            &PROBES.to_string(),
        ],
    )?;
    let reached_before = c.w.paste.count();
    let until = Instant::now() + Duration::from_secs(15);
    let (own, accounted) = loop {
        let got = probes(c, &ip)?;
        if got.1 >= PROBES || Instant::now() > until {
            break got;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let shown = c.cordon(&["audit", "tail", "--agent", "researcher", "--lines", "3"])?;
    c.n.shows("the burst's first probe and the summary counting the rest (reset_probes).");
    c.n.check(
        "300 reset connections are in the trail as one record and one summary that count them all",
        out.status.success() && own <= 2 && accounted == PROBES && shown.status.success(),
        &format!("{own} records of their own, {accounted} probes accounted for"),
    );
    c.n.check(
        "none reached paste.test",
        c.w.paste.count() == reached_before,
        "",
    );
    Ok(())
}
