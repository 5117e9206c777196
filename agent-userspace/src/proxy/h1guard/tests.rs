//! The gate in front of a real hyper server, over an in-memory duplex.
use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::*;

/// Serves `input` through the gate; returns the paths hyper handed to the
/// service, what the client read back, and the refused head if any.
async fn run(input: &[u8], upgrade_to_echo: bool) -> (Vec<String>, String, Option<Problem>) {
    let (mut client, server) = duplex(1 << 16);
    let (guard, link, mut refused) = Guard::new(server, 1024);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let ticket = link.ticket();
        seen2.lock().unwrap().push(req.uri().path().to_string());
        let upgrade = req.headers().contains_key(http::header::UPGRADE) && upgrade_to_echo;
        async move {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
            if upgrade {
                let on = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let mut io = TokioIo::new(on.await.unwrap());
                    let mut buf = [0u8; 64];
                    let n = io.read(&mut buf).await.unwrap();
                    io.write_all(b"echo:").await.unwrap();
                    io.write_all(&buf[..n]).await.unwrap();
                    io.shutdown().await.unwrap();
                });
                *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                resp.headers_mut()
                    .insert(http::header::UPGRADE, "raw".parse().unwrap());
                resp.headers_mut()
                    .insert(http::header::CONNECTION, "upgrade".parse().unwrap());
                ticket.upgraded();
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let server = tokio::spawn(async move {
        let r = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(guard), svc)
            .with_upgrades()
            .await;
        (r.is_ok(), refused.try_recv().ok().map(|h| h.problem))
    });
    client.write_all(input).await.unwrap();
    if !upgrade_to_echo {
        client.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    read_all(&mut client, &mut out).await;
    let (_, problem) = server.await.unwrap();
    let paths = seen.lock().unwrap().clone();
    (paths, String::from_utf8_lossy(&out).into_owned(), problem)
}

async fn read_all(client: &mut DuplexStream, out: &mut Vec<u8>) {
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), client.read_to_end(out));
    read.await.expect("the connection ends").unwrap();
}

#[tokio::test]
async fn a_smuggling_head_never_reaches_hyper_and_comes_back_refused() {
    let input = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n\
        POST /smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
        GET /after HTTP/1.1\r\nHost: a\r\n\r\n";
    let (paths, out, problem) = run(input, false).await;
    assert_eq!(paths, ["/first"], "hyper saw only the request before it");
    assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "{out}");
    assert_eq!(problem, Some(Problem::ConflictingFraming));
}

#[tokio::test]
async fn clean_pipelined_requests_all_reach_hyper_and_nothing_is_refused() {
    let input = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
        POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n\
        GET /c HTTP/1.1\r\nHost: a\r\n\r\n";
    let (paths, out, problem) = run(input, false).await;
    assert_eq!(paths, ["/a", "/b", "/c"]);
    assert_eq!(out.matches("HTTP/1.1 200").count(), 3, "{out}");
    assert_eq!(problem, None);
}

#[tokio::test]
async fn an_upgrade_the_handler_declined_goes_back_to_framing() {
    let input = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\
        GET /next HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
    let (paths, _, problem) = run(input, false).await;
    assert_eq!(paths, ["/ws"]);
    assert_eq!(problem, Some(Problem::DuplicateContentLength));
}

#[tokio::test]
async fn after_a_switch_the_bytes_flow_unframed_to_the_upgraded_stream() {
    let input = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n\
        NOT HTTP AT ALL\r\n\r\n";
    let (paths, out, problem) = run(input, true).await;
    assert_eq!(paths, ["/ws"]);
    assert!(out.starts_with("HTTP/1.1 101"), "{out}");
    assert!(out.ends_with("echo:NOT HTTP AT ALL\r\n\r\n"), "{out}");
    assert_eq!(problem, None);
}
