//! A WebSocket server over TLS inside a namespace that hands the handshake back: asked
//! `authorization` in a text message, it answers with the `Authorization` header it got,
//! fragmented into small frames with a ping between the first two (so a secret in it is cut
//! across frames, as a careless or hostile server might send it). It keeps the headers of
//! every handshake, and can be told to switch with `permessage-deflate` whatever was offered.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

use crate::error::Result;
use crate::netns::NetNs;
use crate::server_thread::{ServerThread, spawn_tls};
use crate::tls::TestCa;

/// The bytes of each fragment of the answer.
const FRAGMENT: usize = 7;

/// A handshake as the server got it: the values of its `Authorization` and
/// `Sec-WebSocket-Extensions` headers.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub authorization: Option<String>,
    pub extensions: Option<String>,
}

#[derive(Debug)]
pub struct WsReflect {
    seen: Arc<Mutex<Vec<Handshake>>>,
    _thread: ServerThread,
}

impl WsReflect {
    /// Serves `names` on `addrs`; `insist_deflate` answers every handshake with
    /// `Sec-WebSocket-Extensions: permessage-deflate`.
    pub fn start(
        ns: &NetNs,
        ca: &TestCa,
        names: &[&str],
        addrs: &[(IpAddr, u16)],
        insist_deflate: bool,
    ) -> Result<Self> {
        let acceptor = TlsAcceptor::from(ca.server_config(names, &[b"http/1.1"])?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let thread = spawn_tls(
            &format!("wsr-{}", ns.name()),
            ns,
            acceptor,
            addrs,
            move |tls| serve(tls, kept.clone(), insist_deflate),
        )?;
        Ok(Self {
            seen,
            _thread: thread,
        })
    }

    /// Every handshake so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.seen.lock().expect("handshakes lock").clone()
    }
}

// The handshake callback's error type (a whole HTTP response) is tungstenite's `Callback`.
#[allow(clippy::result_large_err)]
async fn serve<S>(tls: S, kept: Arc<Mutex<Vec<Handshake>>>, insist_deflate: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let got = Arc::new(Mutex::new(Handshake::default()));
    let record = got.clone();
    let callback = move |req: &Request, mut resp: Response| {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let hs = Handshake {
            authorization: header("authorization"),
            extensions: header("sec-websocket-extensions"),
        };
        *record.lock().expect("handshake lock") = hs;
        if insist_deflate {
            resp.headers_mut().insert(
                "sec-websocket-extensions",
                HeaderValue::from_static("permessage-deflate"),
            );
        }
        Ok(resp)
    };
    let accepted = tokio_tungstenite::accept_hdr_async(tls, callback).await;
    let hs = got.lock().expect("handshake lock").clone();
    kept.lock().expect("handshakes lock").push(hs.clone());
    let Ok(mut ws) = accepted else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Text(t) if t.as_str() == "authorization" => {
                let answer = hs.authorization.clone().unwrap_or_default().into_bytes();
                if send_fragmented(&mut ws, &answer).await.is_err() {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => continue,
        }
    }
}

async fn send_fragmented<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    answer: &[u8],
) -> std::result::Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let pieces: Vec<&[u8]> = answer.chunks(FRAGMENT).collect();
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let frame = Frame::message(piece.to_vec(), OpCode::Data(opcode), i == last);
        ws.feed(Message::Frame(frame)).await?;
        if i == 0 {
            ws.feed(Message::Frame(Frame::ping(answer.to_vec())))
                .await?;
        }
    }
    ws.flush().await
}
