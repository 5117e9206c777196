//! A minimal stub-resolver exchange, for tests that need to ask a DNS server directly
//! (`getent` would use the system resolver, not ours).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// A validated response.
#[derive(Debug, Clone)]
pub struct DnsAnswer {
    pub response_code: ResponseCode,
    /// A/AAAA addresses in the answer section.
    pub addrs: Vec<IpAddr>,
    pub message: Message,
}

/// Ask `server` for `name`/`qtype` over UDP; errors on timeout, id mismatch or wrong question.
pub async fn dns_query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    timeout: Duration,
) -> Result<DnsAnswer> {
    let (id, request) = build(name, qtype)?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|e| Error::Dns(format!("bind address: {e}")))?;
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|source| io("bind", source))?;
    socket
        .connect(server)
        .await
        .map_err(|source| io("connect", source))?;
    socket
        .send(&request)
        .await
        .map_err(|source| io("send", source))?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(timeout, socket.recv(&mut buf))
        .await
        .map_err(|_| Error::Timeout {
            what: format!("DNS answer from {server}"),
            after: timeout,
        })?
        .map_err(|source| io("recv", source))?;
    check(&buf[..n], id, name, qtype)
}

/// Same over TCP (two-byte length framing).
pub async fn dns_query_tcp(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    timeout: Duration,
) -> Result<DnsAnswer> {
    let (id, request) = build(name, qtype)?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let len = u16::try_from(request.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes();
        stream.write_all(&len).await?;
        stream.write_all(&request).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("DNS/TCP answer from {server}"),
            after: timeout,
        })?
        .map_err(|source| io("tcp exchange", source))?;
    check(&reply, id, name, qtype)
}

fn build(name: &str, qtype: RecordType) -> Result<(u16, Vec<u8>)> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let id = (nanos ^ std::process::id()) as u16;
    let qname = Name::from_ascii(name).map_err(|e| Error::Dns(format!("name {name:?}: {e}")))?;
    let mut msg = Message::new();
    msg.set_id(id).set_recursion_desired(true);
    msg.add_query(Query::query(qname, qtype));
    let bytes = msg
        .to_vec()
        .map_err(|e| Error::Dns(format!("encode query: {e}")))?;
    Ok((id, bytes))
}

fn check(reply: &[u8], id: u16, name: &str, qtype: RecordType) -> Result<DnsAnswer> {
    let message =
        Message::from_vec(reply).map_err(|e| Error::Dns(format!("decode answer: {e}")))?;
    if message.id() != id || message.message_type() != MessageType::Response {
        return Err(Error::Dns(format!(
            "answer id {} / type {:?} does not match query id {id}",
            message.id(),
            message.message_type()
        )));
    }
    let echoed = message
        .queries()
        .first()
        .map(|q| (super::wire::normalize(&q.name().to_ascii()), q.query_type()));
    if echoed != Some((super::wire::normalize(name), qtype)) {
        return Err(Error::Dns(format!(
            "answer echoes question {echoed:?}, asked {name} {qtype}"
        )));
    }
    Ok(DnsAnswer {
        response_code: message.response_code(),
        addrs: message
            .answers()
            .iter()
            .filter_map(|r| r.data().ip_addr())
            .collect(),
        message,
    })
}

fn io(what: &str, source: std::io::Error) -> Error {
    Error::Io {
        what: format!("DNS client {what}"),
        source,
    }
}
