//! A WebSocket echo server over TLS (HTTP/1.1 only, as most WebSocket servers are) inside a
//! namespace: every message comes back prefixed with `echo:`. Counts the sockets opened, and
//! those still open.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{SinkExt, StreamExt};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

use crate::error::Result;
use crate::netns::NetNs;
use crate::server_thread::{ServerThread, spawn_tls};
use crate::tls::TestCa;

#[derive(Debug)]
pub struct WsEcho {
    sockets: Arc<AtomicU64>,
    /// Sockets opened and not yet ended (by a close or the connection going away).
    open: Arc<AtomicU64>,
    _thread: ServerThread,
}

impl WsEcho {
    pub fn start(ns: &NetNs, ca: &TestCa, names: &[&str], addrs: &[(IpAddr, u16)]) -> Result<Self> {
        let acceptor = TlsAcceptor::from(ca.server_config(names, &[b"http/1.1"])?);
        let sockets = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let (counted, open_now) = (sockets.clone(), open.clone());
        let thread = spawn_tls(
            &format!("ws-{}", ns.name()),
            ns,
            acceptor,
            addrs,
            move |tls| {
                let (counted, open_now) = (counted.clone(), open_now.clone());
                async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::Relaxed);
                    open_now.fetch_add(1, Ordering::Relaxed);
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
                    open_now.fetch_sub(1, Ordering::Relaxed);
                }
            },
        )?;
        Ok(Self {
            sockets,
            open,
            _thread: thread,
        })
    }

    /// WebSockets open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// WebSockets opened so far.
    pub fn sockets(&self) -> u64 {
        self.sockets.load(Ordering::Relaxed)
    }
}
