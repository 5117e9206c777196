//! The loopback listeners the eBPF programs redirect to: the transparent
//! proxy (TCP) and the resolver (UDP), each on 127.0.0.1 and [::1] with the
//! same port so one number in the config map serves both families.
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use anyhow::{Context, bail};

pub struct Listeners {
    pub tcp4: TcpListener,
    pub tcp6: TcpListener,
    pub udp4: UdpSocket,
    pub udp6: UdpSocket,
}

impl Listeners {
    pub fn proxy_port(&self) -> u16 {
        self.tcp4.local_addr().map(|a| a.port()).unwrap_or(0)
    }
    pub fn dns_port(&self) -> u16 {
        self.udp4.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn bind(proxy_port: u16, dns_port: u16) -> anyhow::Result<Listeners> {
        let (tcp4, tcp6) = bind_pair(proxy_port, tcp_listener)
            .context("binding the proxy listener on 127.0.0.1 and [::1]")?;
        let (udp4, udp6) = bind_pair(dns_port, UdpSocket::bind)
            .context("binding the DNS resolver on 127.0.0.1 and [::1]")?;
        Listeners::from_sockets(tcp4, tcp6, udp4, udp6)
    }

    /// Sockets bound already (by this daemon, or handed over by the binary
    /// it replaced: `handover`), made ready for the runtime.
    pub fn from_sockets(
        tcp4: TcpListener,
        tcp6: TcpListener,
        udp4: UdpSocket,
        udp6: UdpSocket,
    ) -> anyhow::Result<Listeners> {
        for s in [&tcp4, &tcp6] {
            s.set_nonblocking(true)?;
        }
        for s in [&udp4, &udp6] {
            s.set_nonblocking(true)?;
        }
        Ok(Listeners {
            tcp4,
            tcp6,
            udp4,
            udp6,
        })
    }
}

/// std's listen backlog is 128; a burst of agent connects (each decided and
/// audited before the next accept matters) would overflow it and the
/// kernel would drop SYNs, stalling connects for a second or more.
const ACCEPT_BACKLOG: i32 = 4096;

fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(ACCEPT_BACKLOG)?;
    Ok(s.into())
}

fn bind_pair<S>(
    port: u16,
    bind: impl Fn(SocketAddr) -> std::io::Result<S>,
) -> anyhow::Result<(S, S)>
where
    S: LocalAddr,
{
    for _ in 0..32 {
        let v4 = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let chosen = v4.port()?;
        match bind(SocketAddr::from((Ipv6Addr::LOCALHOST, chosen))) {
            Ok(v6) => return Ok((v4, v6)),
            // An ephemeral v4 port may be taken on v6: pick another.
            Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no port free on both 127.0.0.1 and [::1] after 32 tries")
}

trait LocalAddr {
    fn port(&self) -> std::io::Result<u16>;
}
impl LocalAddr for TcpListener {
    fn port(&self) -> std::io::Result<u16> {
        Ok(self.local_addr()?.port())
    }
}
impl LocalAddr for UdpSocket {
    fn port(&self) -> std::io::Result<u16> {
        Ok(self.local_addr()?.port())
    }
}
