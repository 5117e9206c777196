//! `bench-forwarder`: the bare forwarder of issue 18, the honest ceiling
//! for an intercepting proxy on Cordon's stack. It does what Cordon must do
//! to carry a request and nothing else: terminate the client's TLS with a
//! leaf from a local CA (cordon-tls's `CertAuthority`, the daemon's leaf
//! cache), parse the request with hyper, strip hop-by-hop headers and send
//! it over a pooled, verified upstream connection (hyper-util's legacy
//! client, the daemon's pool). No policy, no audit, no eBPF, no connectors.
//! Bench-only: built with `--features forwarder`, never part of `cordon`.
//!
//! ```text
//! bench-forwarder CA_DIR UPSTREAM_CA ROUTE...
//!   ROUTE = tls:LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT
//!         | plain:LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT
//! ```
//!
//! Each route listens on 127.0.0.1:LISTEN_PORT and forwards everything to
//! the one upstream at 127.0.0.1:UPSTREAM_PORT, verified as UPSTREAM_HOST,
//! the way Cordon's redirect sends a connection to the address the agent
//! dialled. Clients reach it with `oha --connect-to`, so they send the same
//! SNI, Host and URL they send direct or through Cordon.
mod connector;
mod forward;

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use cordon_tls::{CertAuthority, UpstreamTls};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-forwarder: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    ca_dir: PathBuf,
    upstream_ca: PathBuf,
    routes: Vec<forward::Route>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let usage = "usage: bench-forwarder CA_DIR UPSTREAM_CA (tls|plain):LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT...";
    let [ca_dir, upstream_ca, routes @ ..] = args else {
        return Err(usage.into());
    };
    if routes.is_empty() {
        return Err(usage.into());
    }
    let routes = routes
        .iter()
        .map(|r| forward::Route::parse(r))
        .collect::<Result<_, _>>()?;
    Ok(Args {
        ca_dir: ca_dir.into(),
        upstream_ca: upstream_ca.into(),
        routes,
    })
}

fn run(args: Args) -> Result<(), String> {
    let ca = CertAuthority::load_or_create(&args.ca_dir).map_err(|e| format!("local CA: {e}"))?;
    let upstream_tls = Arc::new(
        UpstreamTls::with_only_extra_cas(&[args.upstream_ca])
            .map_err(|e| format!("upstream CA: {e}"))?,
    );
    // The daemon's runtime: multi-threaded, two workers (daemon/start.rs),
    // so the two differ in what they do per request, not in scheduling.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for route in args.routes {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", route.listen))
                .await
                .map_err(|e| format!("binding 127.0.0.1:{}: {e}", route.listen))?;
            let fwd = forward::Forwarder::new(route, ca.clone(), upstream_tls.clone());
            tasks.push(tokio::spawn(fwd.serve(listener)));
        }
        // Runs until the bench stops it (SIGTERM).
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    })
}
