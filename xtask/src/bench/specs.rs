//! The HTTP load scenarios (1-7): what each sends, to which upstream port,
//! and who carries it.
use serde::Serialize;

use super::{oha::Load, rig::Via};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Https,
    Http,
}

pub struct Spec {
    pub id: &'static str,
    pub title: &'static str,
    pub scheme: Scheme,
    /// Sent to the upstream's HTTP/1.1-only HTTPS port (every via but
    /// direct: see `note`).
    pub h1_only: bool,
    pub big: bool,
    pub load: Load,
    pub vias: &'static [Via],
    /// Why a peer is left out of this scenario, or how direct differs.
    pub note: &'static str,
}

const ALL: &[Via] = &[
    Via::Direct,
    Via::Bare,
    Via::Cordon,
    Via::Squid,
    Via::Mitmproxy,
];
/// Where the audit's fsync decides the figure: also with batched audit,
/// without outcome records, and the `--baseline-cordon` daemon (dropped
/// when there is none).
const WITH_BATCHED: &[Via] = &[
    Via::Direct,
    Via::Bare,
    Via::Cordon,
    Via::CordonBatched,
    Via::CordonNoOutcomes,
    Via::CordonBaseline,
    Via::Squid,
    Via::Mitmproxy,
];
/// Squid does not speak h2 to clients.
const H2: &[Via] = &[Via::Direct, Via::Bare, Via::Cordon, Via::Mitmproxy];

pub fn specs(secs: u32) -> Vec<Spec> {
    let load = |connections, keepalive, h2_streams| Load {
        connections,
        keepalive,
        h2_streams,
        secs,
    };
    let spec = |id, title, scheme, load, vias, note| Spec {
        id,
        title,
        scheme,
        h1_only: false,
        big: false,
        load,
        vias,
        note,
    };
    vec![
        spec(
            "https-keepalive",
            "HTTPS keep-alive, small GET, 64 connections",
            Scheme::Https,
            load(64, true, None),
            WITH_BATCHED,
            "",
        ),
        spec(
            "https-new-conn",
            "HTTPS, a new connection per request, 64 concurrent",
            Scheme::Https,
            load(64, false, None),
            ALL,
            "",
        ),
        spec(
            "http-keepalive",
            "Plain HTTP keep-alive, small GET, 64 connections",
            Scheme::Http,
            load(64, true, None),
            ALL,
            "",
        ),
        spec(
            "https-h2",
            "HTTPS h2, 8 connections x 8 streams",
            Scheme::Https,
            load(8, true, Some(8)),
            H2,
            "Squid does not speak h2 to clients: not run.",
        ),
        Spec {
            h1_only: true,
            ..spec(
                "https-h2-to-h1",
                "HTTPS h2 client -> HTTP/1.1-only upstream, 8 connections x 8 streams",
                Scheme::Https,
                load(8, true, Some(8)),
                H2,
                "The upstream port speaks HTTP/1.1 only (no `http2` on its nginx listen, ALPN http/1.1 alone), so \
                 every proxy takes h2 from the client and HTTP/1.1 to the upstream. oha --http2 cannot go direct to \
                 an HTTP/1.1-only server, so *direct* here is the same h2 load (8 x 8) against the dual-protocol port \
                 of the same nginx, run in the same round: `x direct` is what interception plus h2-to-h1 translation \
                 leaves of a native h2 path, not the cost of translation alone (compare with `https-h2`, where \
                 the upstream speaks h2); `x bare` compares like with like, the forwarder translates too. \
                 mitmproxy 12 offers the upstream the ALPN list the client offered (h2 alone), which an \
                 HTTP/1.1-only nginx refuses with a `no application protocol` alert, and then answers 502: the \
                 failure issue 15 describes, shown in its row as this run saw it. Squid does not speak h2 to \
                 clients: not run.",
            )
        },
        spec(
            "https-1conn",
            "HTTPS keep-alive, 1 connection (latency)",
            Scheme::Https,
            load(1, true, None),
            WITH_BATCHED,
            "",
        ),
        Spec {
            big: true,
            ..spec(
                "https-1mib",
                "HTTPS keep-alive, 1 MiB downloads, 16 connections",
                Scheme::Https,
                load(16, true, None),
                ALL,
                "",
            )
        },
    ]
}
