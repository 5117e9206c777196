//! A WebSocket echo server over TLS (HTTP/1.1 only, as most WebSocket servers are) inside a
//! namespace: every message comes back prefixed with `echo:`. Counts the sockets opened.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{SinkExt, StreamExt};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

use crate::error::Result;
use crate::http::serve::accept_forever;
use crate::netns::NetNs;
use crate::server_thread::{ServerThread, bind_all_tcp};
use crate::tls::TestCa;

#[derive(Debug)]
pub struct WsEcho {
    sockets: Arc<AtomicU64>,
    _thread: ServerThread,
}

impl WsEcho {
    pub fn start(ns: &NetNs, ca: &TestCa, names: &[&str], addrs: &[(IpAddr, u16)]) -> Result<Self> {
        let acceptor = TlsAcceptor::from(ca.server_config(names, &[b"http/1.1"])?);
        let sockets = Arc::new(AtomicU64::new(0));
        let binds: Vec<SocketAddr> = addrs.iter().map(|&a| a.into()).collect();
        let counted = sockets.clone();
        let (thread, _) = ServerThread::spawn(
            &format!("ws-{}", ns.name()),
            Some(ns.path()),
            bind_all_tcp(binds),
            move |listeners| async move {
                for listener in listeners {
                    let (acceptor, counted) = (acceptor.clone(), counted.clone());
                    tokio::spawn(accept_forever(listener, move |stream, _peer| {
                        let (acceptor, counted) = (acceptor.clone(), counted.clone());
                        async move {
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                                return;
                            };
                            counted.fetch_add(1, Ordering::Relaxed);
                            while let Some(Ok(msg)) = ws.next().await {
                                let reply = match msg {
                                    Message::Text(t) => Message::text(format!("echo:{t}")),
                                    Message::Close(_) => break,
                                    _ => continue,
                                };
                                if ws.send(reply).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }));
                }
                std::future::pending::<()>().await;
            },
        )?;
        Ok(Self {
            sockets,
            _thread: thread,
        })
    }

    /// WebSockets opened so far.
    pub fn sockets(&self) -> u64 {
        self.sockets.load(Ordering::Relaxed)
    }
}
