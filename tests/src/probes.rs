//! Small python programs agents run to probe the network from inside their cgroup. Each prints
//! one line per probe, `<what> => <outcome>`, so a test can read exactly what the agent saw.

/// `python3 -c TCP_PROBE HOST:PORT...`: connect, send `ping`, read the answer.
/// Outcomes: `ok <reply>`, `eof`, `timeout`, `connect-error <ERRNO>`, `io-error <ERRNO>`.
pub const TCP_PROBE: &str = r#"
import errno, socket, sys
def name(e):
    return errno.errorcode.get(e.errno, str(e))
def tcp(host, port):
    try:
        s = socket.create_connection((host, int(port)), timeout=3)
    except socket.timeout:
        return "connect-timeout"
    except OSError as e:
        return "connect-error " + name(e)
    try:
        s.sendall(b"ping")
        d = s.recv(100)
        return ("ok " + d.decode(errors="replace")) if d else "eof"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "io-error " + name(e)
for a in sys.argv[1:]:
    h, p = a.rsplit(":", 1)
    print(a, "=>", tcp(h.strip("[]"), p), flush=True)
"#;

/// `python3 -c UDP_PROBE HOST PORT`: unconnected `sendto` and connected `send` of a datagram.
pub const UDP_PROBE: &str = r#"
import errno, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
for mode in ("sendto", "connect"):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if mode == "sendto":
            s.sendto(b"leak", (host, port))
        else:
            s.connect((host, port))
            s.send(b"leak")
        print(mode, "=> sent")
    except OSError as e:
        print(mode, "=>", errno.errorcode.get(e.errno, str(e)))
"#;

/// `python3 -c SOCKET_PROBE`: which socket kinds may be created.
pub const SOCKET_PROBE: &str = r#"
import errno, socket
kinds = [
    ("raw4", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    ("raw6", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    ("rawtcp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
    ("packet", socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)),
    ("tcp", socket.AF_INET, socket.SOCK_STREAM, 0),
]
for n, f, t, p in kinds:
    try:
        socket.socket(f, t, p).close()
        print(n, "=> ok")
    except OSError as e:
        print(n, "=>", errno.errorcode.get(e.errno, str(e)))
"#;

/// `python3 -c DNS_PROBE SERVER NAME...`: an A query per name sent straight to SERVER:53.
/// Prints `NAME => rcode=<n> answers=<n> from=<ip>` or `NAME => error <what>`.
pub const DNS_PROBE: &str = r#"
import random, socket, struct, sys
server = sys.argv[1]
for name in sys.argv[2:]:
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(q, (server, 53))
        data, frm = s.recvfrom(4096)
        rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
        print(name, "=> rcode=%d answers=%d from=%s id_ok=%s" % (flags & 15, an, frm[0], rid == qid), flush=True)
    except Exception as e:
        print(name, "=> error", type(e).__name__, e, flush=True)
"#;

/// The outcome a probe printed for `what` (text after `what => `), `None` if absent.
pub fn outcome<'a>(out: &'a str, what: &str) -> Option<&'a str> {
    let prefix = format!("{what} => ");
    out.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}
