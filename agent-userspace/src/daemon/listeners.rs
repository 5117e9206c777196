//! The loopback listeners the eBPF programs redirect to: the transparent
//! proxy (TCP) and the resolver (UDP), each on 127.0.0.1 and [::1] with the
//! same port so one number in the config map serves both families.
//!
//! The proxy has one pair per core (`cores`), all in one `SO_REUSEPORT`
//! group: the kernel spreads agents' connects across them by their
//! addresses, and each core accepts only on its own pair.
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use anyhow::{Context, bail};

/// One core's proxy listeners.
pub struct ProxyPair {
    pub v4: TcpListener,
    pub v6: TcpListener,
}

impl ProxyPair {
    pub fn try_clone(&self) -> std::io::Result<ProxyPair> {
        Ok(ProxyPair {
            v4: self.v4.try_clone()?,
            v6: self.v6.try_clone()?,
        })
    }
}

pub struct Listeners {
    /// At least one pair, all on one port.
    pub proxy: Vec<ProxyPair>,
    pub udp4: UdpSocket,
    pub udp6: UdpSocket,
}

impl Listeners {
    pub fn proxy_port(&self) -> u16 {
        self.proxy
            .first()
            .and_then(|p| p.v4.local_addr().ok())
            .map_or(0, |a| a.port())
    }
    pub fn dns_port(&self) -> u16 {
        self.udp4.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// `pairs` proxy pairs in one reuseport group, and the resolver.
    pub fn bind(proxy_port: u16, dns_port: u16, pairs: usize) -> anyhow::Result<Listeners> {
        let first = bind_proxy_pair(proxy_port)
            .context("binding the proxy listener on 127.0.0.1 and [::1]")?;
        let mut proxy = vec![first];
        let port = proxy[0].0.local_addr()?.port();
        while proxy.len() < pairs.max(1) {
            proxy.push(join_group(port)?);
        }
        let (udp4, udp6) = bind_pair(dns_port, UdpSocket::bind)
            .context("binding the DNS resolver on 127.0.0.1 and [::1]")?;
        let proxy = proxy
            .into_iter()
            .map(|(v4, v6)| ProxyPair { v4, v6 })
            .collect();
        Listeners::from_sockets(proxy, udp4, udp6)
    }

    /// Sockets bound already (by this daemon, or handed over by the binary
    /// it replaced: `handover`), made ready for the runtimes.
    pub fn from_sockets(
        proxy: Vec<ProxyPair>,
        udp4: UdpSocket,
        udp6: UdpSocket,
    ) -> anyhow::Result<Listeners> {
        if proxy.is_empty() {
            bail!("no proxy listener");
        }
        for p in &proxy {
            p.v4.set_nonblocking(true)?;
            p.v6.set_nonblocking(true)?;
        }
        udp4.set_nonblocking(true)?;
        udp6.set_nonblocking(true)?;
        Ok(Listeners { proxy, udp4, udp6 })
    }

    /// Adds proxy pairs until there are `pairs` of them (an upgrade to an
    /// image with more cores than the one that handed its sockets over),
    /// when the handed-over sockets are in a reuseport group. An image from
    /// before thread-per-core did not set `SO_REUSEPORT`: nothing can join
    /// its port, and its cores share the pairs there are (`cores::spread`).
    pub fn join_to(&mut self, pairs: usize) -> anyhow::Result<Growth> {
        let have = self.proxy.len();
        if have >= pairs {
            return Ok(Growth::None);
        }
        if !(reuseport(&self.proxy[0].v4)? && reuseport(&self.proxy[0].v6)?) {
            return Ok(Growth::Shared);
        }
        let port = self.proxy_port();
        for _ in have..pairs {
            let (v4, v6) = join_group(port)?;
            v4.set_nonblocking(true)?;
            v6.set_nonblocking(true)?;
            self.proxy.push(ProxyPair { v4, v6 });
        }
        Ok(Growth::Joined(pairs - have))
    }
}

/// What `join_to` did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    None,
    /// New pairs bound into the reuseport group.
    Joined(usize),
    /// No group to join: cores share the handed-over pairs.
    Shared,
}

/// std's listen backlog is 128; a burst of agent connects (each decided and
/// audited before the next accept matters) would overflow it and the
/// kernel would drop SYNs, stalling connects for a second or more.
const ACCEPT_BACKLOG: i32 = 4096;

/// A proxy listener in the port's reuseport group. Only the daemon's own
/// uid (root) can join it: the kernel refuses reuseport binds by other
/// users, so no agent can take a share of the connections.
fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(ACCEPT_BACKLOG)?;
    Ok(s.into())
}

fn reuseport(l: &TcpListener) -> std::io::Result<bool> {
    socket2::SockRef::from(l).reuse_port()
}

/// Another pair on `port`, joining the group the first pair started.
fn join_group(port: u16) -> anyhow::Result<(TcpListener, TcpListener)> {
    let v4 = tcp_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let v6 = tcp_listener(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
    Ok((
        v4.with_context(|| format!("adding a proxy listener on 127.0.0.1:{port}"))?,
        v6.with_context(|| format!("adding a proxy listener on [::1]:{port}"))?,
    ))
}

/// With `SO_REUSEPORT`, a bind onto a port another root process listens on
/// with it too would join that process's group and share its connections
/// instead of failing. A plain bind first (closed at once) makes a taken
/// port fail as it always did; returns the port it got.
fn probe_free(addr: SocketAddr) -> std::io::Result<u16> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    Ok(s.local_addr()?.as_socket().map_or(0, |a| a.port()))
}

/// The first proxy pair: a port free on both families, then the group.
fn bind_proxy_pair(port: u16) -> anyhow::Result<(TcpListener, TcpListener)> {
    let v4 = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let v6 = |p: u16| SocketAddr::from((Ipv6Addr::LOCALHOST, p));
    for _ in 0..32 {
        let chosen = probe_free(v4(port))?;
        let attempt = probe_free(v6(chosen))
            .and_then(|_| Ok((tcp_listener(v4(chosen))?, tcp_listener(v6(chosen))?)));
        match attempt {
            Ok(pair) => return Ok(pair),
            // An ephemeral v4 port may be taken on v6 (or taken between the
            // probe and the bind): pick another.
            Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no port free on both 127.0.0.1 and [::1] after 32 tries")
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
impl LocalAddr for UdpSocket {
    fn port(&self) -> std::io::Result<u16> {
        Ok(self.local_addr()?.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proxy_pair_shares_one_port_and_the_group_accepts_on_all() {
        let l = Listeners::bind(0, 0, 3).unwrap();
        let port = l.proxy_port();
        assert_eq!(l.proxy.len(), 3);
        for p in &l.proxy {
            assert_eq!(p.v4.local_addr().unwrap().port(), port);
            assert_eq!(p.v6.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn a_taken_proxy_port_is_refused_rather_than_shared() {
        let first = Listeners::bind(0, 0, 1).unwrap();
        let again = Listeners::bind(first.proxy_port(), 0, 1);
        assert!(again.is_err(), "a second daemon joined the first's group");
    }

    #[test]
    fn more_cores_than_handed_over_pairs_join_the_group_or_share() {
        let mut l = Listeners::bind(0, 0, 1).unwrap();
        assert_eq!(l.join_to(3).unwrap(), Growth::Joined(2));
        assert_eq!(l.proxy.len(), 3);
        assert_eq!(l.join_to(2).unwrap(), Growth::None);
        // Sockets of an image that did not set SO_REUSEPORT.
        let plain = |addr: &str| std::net::TcpListener::bind(addr).unwrap();
        let v4 = plain("127.0.0.1:0");
        let port = v4.local_addr().unwrap().port();
        let mut old = Listeners::from_sockets(
            vec![ProxyPair {
                v4,
                v6: plain(&format!("[::1]:{port}")),
            }],
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("[::1]:0").unwrap(),
        )
        .unwrap();
        assert_eq!(old.join_to(2).unwrap(), Growth::Shared);
        assert_eq!(old.proxy.len(), 1);
    }
}
