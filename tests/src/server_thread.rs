//! A server's home: one OS thread (optionally inside a test namespace) running a
//! current-thread tokio runtime, stopped and joined (bounded) on drop.

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::{Error, IoContext, Result};
use crate::netns::enter_netns;

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct ServerThread {
    name: String,
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Start a thread, enter `netns` if given, run `setup` with the runtime entered (so it can
    /// bind sockets and convert them to tokio ones), hand `Ret` back to the caller, then drive
    /// `serve(state)` until the guard is dropped.
    pub(crate) fn spawn<Ret, St, Setup, Serve, Fut>(
        name: &str,
        netns: Option<PathBuf>,
        setup: Setup,
        serve: Serve,
    ) -> Result<(Self, Ret)>
    where
        Setup: FnOnce() -> Result<(Ret, St)> + Send + 'static,
        Serve: FnOnce(St) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
        Ret: Send + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Ret>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let join = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let started = netns.as_deref().map_or(Ok(()), enter_netns).and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ctx(|| "build tokio runtime".into())
                });
                let rt = match started {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let state = {
                    let _entered = rt.enter();
                    setup()
                };
                let state = match state {
                    Ok((ret, state)) => {
                        let _ = ready_tx.send(Ok(ret));
                        state
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    tokio::select! {
                        () = serve(state) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task still running.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .ctx(|| format!("spawn server thread {name}"))?;
        let guard = Self {
            name: name.to_owned(),
            stop: Some(stop_tx),
            join: Some(join),
        };
        let ret = ready_rx
            .recv_timeout(READY_TIMEOUT)
            .map_err(|_| Error::Timeout {
                what: format!("server {name} to start"),
                after: READY_TIMEOUT,
            })??;
        Ok((guard, ret))
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(join) = self.join.take() else {
            return;
        };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !join.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if join.is_finished() {
            let _ = join.join();
        } else {
            eprintln!(
                "cordon-e2e: server {} did not stop within {STOP_TIMEOUT:?}; abandoning it",
                self.name
            );
        }
    }
}

/// Bind a TCP listener; must run on the server thread (inside its namespace and runtime).
pub(crate) fn bind_tcp(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener> {
    let std_listener = std::net::TcpListener::bind(addr).ctx(|| format!("bind tcp {addr}"))?;
    std_listener
        .set_nonblocking(true)
        .ctx(|| format!("set {addr} nonblocking"))?;
    tokio::net::TcpListener::from_std(std_listener).ctx(|| format!("register tcp {addr}"))
}

/// Bind a UDP socket; must run on the server thread (inside its namespace and runtime).
pub(crate) fn bind_udp(addr: std::net::SocketAddr) -> Result<tokio::net::UdpSocket> {
    let std_socket = std::net::UdpSocket::bind(addr).ctx(|| format!("bind udp {addr}"))?;
    std_socket
        .set_nonblocking(true)
        .ctx(|| format!("set {addr} nonblocking"))?;
    tokio::net::UdpSocket::from_std(std_socket).ctx(|| format!("register udp {addr}"))
}

/// The setup step of a server thread listening on every address in `binds`:
/// returns the addresses (for the caller) and their listeners.
pub(crate) fn bind_all_tcp(
    binds: Vec<std::net::SocketAddr>,
) -> impl FnOnce() -> Result<(Vec<std::net::SocketAddr>, Vec<tokio::net::TcpListener>)> + Send + 'static
{
    move || {
        let listeners = binds
            .iter()
            .map(|&a| bind_tcp(a))
            .collect::<Result<Vec<_>>>()?;
        Ok((binds, listeners))
    }
}

/// A server thread in `ns` that accepts TLS on every address in `addrs` and runs `handle` on
/// each connection whose handshake completed.
pub(crate) fn spawn_tls<H, Fut>(
    name: &str,
    ns: &crate::netns::NetNs,
    acceptor: tokio_rustls::TlsAcceptor,
    addrs: &[(std::net::IpAddr, u16)],
    handle: H,
) -> Result<ServerThread>
where
    H: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let binds: Vec<std::net::SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
    let (thread, _) = ServerThread::spawn(
        name,
        Some(ns.path()),
        bind_all_tcp(binds),
        move |listeners| async move {
            for listener in listeners {
                let (acceptor, handle) = (acceptor.clone(), handle.clone());
                tokio::spawn(crate::http::serve::accept_forever(
                    listener,
                    move |stream, _peer| {
                        let (acceptor, handle) = (acceptor.clone(), handle.clone());
                        async move {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                handle(tls).await;
                            }
                        }
                    },
                ));
            }
            std::future::pending::<()>().await;
        },
    )?;
    Ok(thread)
}
