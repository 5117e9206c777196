//! Real loopback sockets on both sides of the splice:
//! agent <-> (client | splice | upstream) <-> server.
//! `#[tokio::test]` runs every task on the test's own thread, so the pool's
//! per-thread counts are this test's alone.
use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};

use super::{pipes, splice};

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
    (a.expect("connect"), b.expect("accept").0)
}

/// (agent, server, the splice between them)
async fn spliced() -> (
    TcpStream,
    TcpStream,
    tokio::task::JoinHandle<super::SpliceStats>,
) {
    let (agent, client) = pair().await;
    let (upstream, server) = pair().await;
    (agent, server, tokio::spawn(splice(client, upstream)))
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn bytes_cross_both_ways_and_each_end_of_stream_half_closes_only_its_direction() {
    let (mut agent, mut server, spliced) = spliced().await;
    let payload = payload(300_000);
    agent.write_all(&payload).await.expect("agent write");
    agent.shutdown().await.expect("agent half-close");
    let mut got = vec![];
    server.read_to_end(&mut got).await.expect("server read");
    assert_eq!(got, payload);
    // The server still answers after the agent's half-close.
    server.write_all(b"after your FIN").await.expect("reply");
    server.shutdown().await.expect("server close");
    let mut reply = vec![];
    agent.read_to_end(&mut reply).await.expect("agent read");
    assert_eq!(reply, b"after your FIN");
    let stats = spliced.await.expect("splice task");
    assert_eq!((stats.up, stats.down), (300_000, 14));
}

#[tokio::test]
async fn a_large_transfer_arrives_byte_exact_in_both_directions_at_once() {
    let (agent, server, spliced) = spliced().await;
    let big = payload(24 * 1024 * 1024 + 7);
    let (mut agent_r, mut agent_w) = agent.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    let (up, down) = (big.clone(), big.clone());
    let send_up = tokio::spawn(async move {
        agent_w.write_all(&up).await.expect("agent write");
        agent_w.shutdown().await.expect("agent FIN");
    });
    let send_down = tokio::spawn(async move {
        server_w.write_all(&down).await.expect("server write");
        server_w.shutdown().await.expect("server FIN");
    });
    let (mut at_server, mut at_agent) = (vec![], vec![]);
    let (a, b) = tokio::join!(
        server_r.read_to_end(&mut at_server),
        agent_r.read_to_end(&mut at_agent)
    );
    a.expect("server read");
    b.expect("agent read");
    send_up.await.expect("sender");
    send_down.await.expect("sender");
    assert!(at_server == big, "upstream bytes differ");
    assert!(at_agent == big, "downstream bytes differ");
    let stats = spliced.await.expect("splice task");
    assert_eq!((stats.up, stats.down), (big.len() as u64, big.len() as u64));
}

#[tokio::test]
async fn a_reader_that_stops_reading_stalls_the_writer_and_loses_nothing() {
    let (agent, mut server, spliced) = spliced().await;
    // Far more than both sockets' buffers and the pipe hold together.
    let big = payload(64 * 1024 * 1024);
    let sent = big.clone();
    let (_agent_r, mut agent_w) = agent.into_split();
    let mut writer = tokio::spawn(async move {
        agent_w.write_all(&sent).await.expect("agent write");
        agent_w.shutdown().await.expect("agent FIN");
    });
    // The server reads nothing: the agent's write must not be able to finish.
    assert!(
        timeout(Duration::from_millis(800), &mut writer)
            .await
            .is_err(),
        "64 MiB were taken while the reader read nothing: no backpressure"
    );
    // Then it reads slowly, in small pieces, and gets every byte in order.
    let mut got = Vec::with_capacity(big.len());
    let mut chunk = vec![0u8; 256 * 1024];
    let mut reads = 0u32;
    loop {
        let n = timeout(BOUND, server.read(&mut chunk))
            .await
            .expect("server read in time")
            .expect("server read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        reads += 1;
        if reads.is_multiple_of(64) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    writer.await.expect("writer");
    assert!(got == big, "bytes differ after a slow reader");
    drop(server);
    let stats = timeout(BOUND, spliced)
        .await
        .expect("splice ended")
        .expect("splice task");
    assert_eq!(stats.up, big.len() as u64);
}

#[tokio::test]
async fn an_error_on_the_upstream_side_ends_the_agent_side_too() {
    let (mut agent, mut server, spliced) = spliced().await;
    server.write_all(&[7u8; 1000]).await.expect("server write");
    let mut got = [0u8; 1000];
    agent.read_exact(&mut got).await.expect("agent read");
    // The server resets while the agent still has its side open.
    socket2::SockRef::from(&server)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(server);
    let stats = timeout(BOUND, spliced)
        .await
        .expect("splice ended after the reset")
        .expect("splice task");
    assert_eq!(stats.down, 1000);
    let mut rest = [0u8; 16];
    let ended = timeout(BOUND, agent.read(&mut rest))
        .await
        .expect("agent side closed in time");
    assert!(matches!(ended, Ok(0) | Err(_)), "agent side still open");
}

#[tokio::test]
async fn an_error_on_the_agent_side_ends_the_upstream_side_too() {
    let (agent, mut server, spliced) = spliced().await;
    socket2::SockRef::from(&agent)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(agent);
    timeout(BOUND, spliced)
        .await
        .expect("splice ended after the reset")
        .expect("splice task");
    let mut rest = [0u8; 16];
    let ended = timeout(BOUND, server.read(&mut rest))
        .await
        .expect("server side closed in time");
    assert!(matches!(ended, Ok(0) | Err(_)), "server side still open");
}

#[tokio::test]
async fn dropping_the_splice_cuts_both_sides() {
    let (mut agent, mut server, spliced) = spliced().await;
    agent.write_all(b"hello").await.expect("agent write");
    let mut got = [0u8; 5];
    server.read_exact(&mut got).await.expect("server read");
    // The kill switch and the drain end a flow by dropping its future.
    spliced.abort();
    assert!(spliced.await.is_err_and(|e| e.is_cancelled()));
    let mut rest = [0u8; 16];
    for side in [&mut agent, &mut server] {
        let ended = timeout(BOUND, side.read(&mut rest))
            .await
            .expect("closed in time");
        assert!(matches!(ended, Ok(0) | Err(_)), "a side is still open");
    }
    assert_eq!(pipes::lent(), 0, "a cut flow still holds a pipe");
}

#[tokio::test]
async fn idle_flows_hold_no_pipe() {
    let mut flows = vec![];
    for _ in 0..20 {
        flows.push(spliced().await);
    }
    // Not a byte yet: nothing borrowed.
    tokio::task::yield_now().await;
    assert_eq!(pipes::lent(), 0);
    // Every flow moves bytes both ways, then goes quiet.
    for (agent, server, _) in &mut flows {
        agent
            .write_all(&payload(100_000))
            .await
            .expect("agent write");
        let mut got = vec![0u8; 100_000];
        server.read_exact(&mut got).await.expect("server read");
        server.write_all(b"pong").await.expect("server write");
        let mut pong = [0u8; 4];
        agent.read_exact(&mut pong).await.expect("agent read");
    }
    // Both directions of all 20 flows drained: every pipe is back, and the
    // pool keeps only a few of them.
    tokio::task::yield_now().await;
    assert_eq!(pipes::lent(), 0, "an idle flow holds a pipe");
    assert!(pipes::kept() <= 4, "the pool kept {} pipes", pipes::kept());
    // The flows still work after idling.
    let (agent, server, _) = &mut flows[0];
    agent.write_all(b"again").await.expect("agent write");
    let mut got = [0u8; 5];
    server.read_exact(&mut got).await.expect("server read");
    assert_eq!(&got, b"again");
}
