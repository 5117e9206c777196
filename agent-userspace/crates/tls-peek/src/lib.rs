//! Protocol detection on the first bytes of a redirected connection: a TLS
//! ClientHello (with its SNI and ALPN offer), a plain HTTP request, or
//! something else. Parsing is strict: anything malformed is `Other`, which
//! the proxy treats as not interceptable.

use rustls_pki_types::DnsName;

/// The most bytes [`peek_client_hello`] ever asks for. ClientHellos larger
/// than this (far beyond any real client's, even with post-quantum key
/// shares) are classified `Other`.
pub const MAX_PEEK: usize = 16 * 1024;

const RECORD_HEADER: usize = 5;
const CONTENT_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const SNI_HOST_NAME: u8 = 0;

/// Method tokens accepted as the start of an HTTP/1.x request line; `PRI`
/// is the HTTP/2 prior-knowledge preface.
const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// Undecided: call again once the buffer holds at least this many
    /// bytes. Never more than [`MAX_PEEK`].
    NeedMore(usize),
    /// A complete, well-formed TLS ClientHello.
    Tls(ClientHelloInfo),
    /// An HTTP request line starting with `method` and a space.
    Http { method: &'static str },
    /// Neither TLS nor HTTP, a malformed ClientHello, or one over MAX_PEEK.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    /// The host_name from the server_name extension, as sent.
    pub sni: Option<String>,
    /// The ALPN protocols offered, in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

/// Classifies the first bytes of a connection.
pub fn peek_client_hello(buf: &[u8]) -> Peek {
    match buf.first() {
        None => Peek::NeedMore(1),
        Some(&CONTENT_HANDSHAKE) => peek_tls(buf),
        Some(_) => peek_http(buf),
    }
}

fn peek_http(buf: &[u8]) -> Peek {
    let mut shortest_undecided: Option<usize> = None;
    for method in HTTP_METHODS {
        let token_len = method.len() + 1;
        let matches_method = |b: &[u8]| b.iter().zip(method.bytes()).all(|(x, y)| *x == y);
        if buf.len() >= token_len {
            if matches_method(buf) && buf[method.len()] == b' ' {
                return Peek::Http { method };
            }
        } else if matches_method(buf) && (buf.len() <= method.len()) {
            shortest_undecided = Some(shortest_undecided.map_or(token_len, |s| s.min(token_len)));
        }
    }
    shortest_undecided.map_or(Peek::Other, Peek::NeedMore)
}

/// Gathers the handshake message from as many records as it spans, then
/// parses it once complete.
fn peek_tls(buf: &[u8]) -> Peek {
    let mut handshake = Vec::new();
    let mut offset = 0;
    loop {
        let Some(header) = buf.get(offset..offset + RECORD_HEADER) else {
            return need(offset + RECORD_HEADER);
        };
        if header[0] != CONTENT_HANDSHAKE || header[1] != 0x03 || header[2] > 0x04 {
            return Peek::Other;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 {
            return Peek::Other;
        }
        let body_start = offset + RECORD_HEADER;
        let Some(fragment) = buf.get(body_start..body_start + len) else {
            return need(body_start + len);
        };
        handshake.extend_from_slice(fragment);
        offset = body_start + len;

        if handshake.len() < 4 {
            continue;
        }
        if handshake[0] != HANDSHAKE_CLIENT_HELLO {
            return Peek::Other;
        }
        let msg_len = usize::from(handshake[1]) << 16
            | usize::from(handshake[2]) << 8
            | usize::from(handshake[3]);
        if 4 + msg_len > MAX_PEEK {
            return Peek::Other;
        }
        if handshake.len() >= 4 + msg_len {
            return match parse_client_hello(&handshake[4..4 + msg_len]) {
                Some(info) => Peek::Tls(info),
                None => Peek::Other,
            };
        }
    }
}

fn need(total: usize) -> Peek {
    if total > MAX_PEEK {
        Peek::Other
    } else {
        Peek::NeedMore(total)
    }
}

/// A bounds-checked big-endian reader; every accessor returns None past
/// the end, which the parser turns into `Other`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec_u8(&mut self) -> Option<Reader<'a>> {
        let n = usize::from(self.u8()?);
        self.take(n).map(Reader)
    }
    fn vec_u16(&mut self) -> Option<Reader<'a>> {
        let n = usize::from(self.u16()?);
        self.take(n).map(Reader)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_client_hello(body: &[u8]) -> Option<ClientHelloInfo> {
    let mut r = Reader(body);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    if r.vec_u8()?.0.len() > 32 {
        return None; // session id is at most 32 bytes
    }
    let suites = r.vec_u16()?;
    if suites.0.is_empty() || suites.0.len() % 2 != 0 {
        return None;
    }
    if r.vec_u8()?.is_empty() {
        return None; // at least the null compression method
    }
    let mut info = ClientHelloInfo::default();
    if r.is_empty() {
        return Some(info); // no extensions at all (old clients)
    }
    let mut exts = r.vec_u16()?;
    if !r.is_empty() {
        return None;
    }
    while !exts.is_empty() {
        let ty = exts.u16()?;
        let data = exts.vec_u16()?;
        match ty {
            EXT_SERVER_NAME => info.sni = Some(parse_sni(data)?),
            EXT_ALPN => info.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    Some(info)
}

fn parse_sni(mut data: Reader<'_>) -> Option<String> {
    let mut list = data.vec_u16()?;
    if !data.is_empty() {
        return None;
    }
    let mut host = None;
    while !list.is_empty() {
        let kind = list.u8()?;
        let name = list.vec_u16()?;
        if kind == SNI_HOST_NAME {
            if host.is_some() {
                return None; // RFC 6066: at most one host_name
            }
            let name = std::str::from_utf8(name.0).ok()?;
            DnsName::try_from(name).ok()?;
            host = Some(name.to_owned());
        }
    }
    host
}

fn parse_alpn(mut data: Reader<'_>) -> Option<Vec<Vec<u8>>> {
    let mut list = data.vec_u16()?;
    if !data.is_empty() {
        return None;
    }
    let mut protocols = Vec::new();
    while !list.is_empty() {
        let proto = list.vec_u8()?;
        if proto.is_empty() {
            return None;
        }
        protocols.push(proto.0.to_vec());
    }
    Some(protocols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_lines_are_recognised_and_prefixes_wait() {
        assert_eq!(
            peek_client_hello(b"GET / HTTP/1.1\r\n"),
            Peek::Http { method: "GET" }
        );
        assert_eq!(
            peek_client_hello(b"PRI * HTTP/2.0\r\n"),
            Peek::Http { method: "PRI" }
        );
        assert_eq!(peek_client_hello(b"PO"), Peek::NeedMore(5));
        assert_eq!(peek_client_hello(b"P"), Peek::NeedMore(4));
        assert_eq!(peek_client_hello(b"OPTION"), Peek::NeedMore(8));
        assert_eq!(peek_client_hello(b"GETX / HTTP/1.1"), Peek::Other);
        assert_eq!(peek_client_hello(b"get / HTTP/1.1"), Peek::Other);
        assert_eq!(peek_client_hello(b"SSH-2.0-OpenSSH_9.6\r\n"), Peek::Other);
        assert_eq!(peek_client_hello(b""), Peek::NeedMore(1));
    }

    #[test]
    fn tls_header_with_bad_version_or_content_is_other() {
        assert_eq!(peek_client_hello(&[0x16, 0x03]), Peek::NeedMore(5));
        assert_eq!(peek_client_hello(&[0x16, 0x02, 0x01, 0, 5]), Peek::Other);
        assert_eq!(peek_client_hello(&[0x16, 0x03, 0x01, 0, 0]), Peek::Other);
        // A handshake record that is not a ClientHello (ServerHello = 2).
        assert_eq!(
            peek_client_hello(&[0x16, 0x03, 0x03, 0, 4, 2, 0, 0, 0]),
            Peek::Other
        );
    }

    #[test]
    fn oversized_client_hello_is_other_not_an_unbounded_wait() {
        let len = MAX_PEEK; // body length alone exceeds the bound
        let hs = [
            0x16,
            0x03,
            0x01,
            0x40,
            0x00,
            HANDSHAKE_CLIENT_HELLO,
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
        ];
        assert_eq!(peek_client_hello(&hs), Peek::Other);
    }
}
