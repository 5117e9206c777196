//! The agent side of the battery: `cordon doctor-probe CONFIG`, run inside
//! the throwaway agent (and once outside Cordon, as the control). Each
//! technique really attempts its escape, carrying its marker; the line it
//! prints is only a diagnostic, the sinks decide.
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::battery::{
    KEYRING, OTHER_TERMINAL, PROCESS, ProbeConfig, RAW_DEVICE, SECRET, SHARED_MEMORY, TERMINAL,
};
use super::packets;
use super::probe_bait;

const T: Duration = Duration::from_secs(3);
/// Where the orchestrator put the inherited socket.
const INHERITED_FD: i32 = 3;

pub fn run(config_json: &str) -> anyhow::Result<std::process::ExitCode> {
    let c: ProbeConfig = serde_json::from_str(config_json)?;
    let m = |id: &str| c.markers.get(id).cloned().unwrap_or_default();
    // First, before anything this process opens could take descriptor 3.
    attempt("inherited-fd", || inherited(&m("inherited-fd")));
    let v4 = |ip: Ipv4Addr, port| SocketAddr::new(IpAddr::V4(ip), port);
    let t6 = SocketAddr::new(IpAddr::V6(c.target_v6), c.tcp_port);
    attempt("tcp4", || {
        tcp(v4(c.target_v4, c.tcp_port), m("tcp4").as_bytes())
    });
    attempt("tcp6", || tcp(t6, m("tcp6").as_bytes()));
    attempt("udp4-443", || {
        udp_to(v4(c.target_v4, 443), m("udp4-443").as_bytes())
    });
    attempt("udp6-443", || {
        udp_to(
            SocketAddr::new(IpAddr::V6(c.target_v6), 443),
            m("udp6-443").as_bytes(),
        )
    });
    attempt("quic", || quic(v4(c.target_v4, 443), &m("quic")));
    let name = |id: &str| format!("{}.doctor.test", m(id));
    attempt("dns-udp", || {
        udp_to(
            v4(c.resolver_v4, 53),
            &packets::dns_query(0x4344, &name("dns-udp")),
        )
    });
    attempt("dns-tcp", || {
        tcp(
            v4(c.resolver_v4, 53),
            &packets::dns_query_tcp(0x4345, &name("dns-tcp")),
        )
    });
    attempt("raw-ip", || raw(c.target_v4, c.raw_port, &m("raw-ip")));
    attempt("packet", || {
        packet(&c.host_if, c.target_v4, c.packet_port, &m("packet"))
    });
    let http = |ip: Ipv4Addr, id: &str| {
        let req = format!(
            "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\nHost: {ip}\r\nX-Cordon-Doctor: {}\r\n\r\n",
            m(id)
        );
        tcp(v4(ip, 80), req.as_bytes())
    };
    attempt("metadata", || http(c.metadata_v4, "metadata"));
    attempt("private", || http(c.private_v4, "private"));
    attempt("unix-path", || {
        unix(
            std::os::unix::net::UnixStream::connect(&c.unix_path),
            &m("unix-path"),
        )
    });
    attempt("unix-abstract", || {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&c.abstract_name)?;
        unix(
            std::os::unix::net::UnixStream::connect_addr(&addr),
            &m("unix-abstract"),
        )
    });
    // Printing what was read is the point: the orchestrator finds the
    // secret's content, which it never gave the agent, in this output.
    attempt(SECRET, || {
        std::fs::read_to_string(&c.secret_path).map(|s| format!("read {}", s.trim()))
    });
    // The same for the key the orchestrator kept in this session's keyring.
    attempt(KEYRING, || {
        session_key(&c.key_name).map(|k| format!("read {k}"))
    });
    attempt(TERMINAL, || type_into_terminal(&m(TERMINAL)));
    // And for the command line of the host process the orchestrator named
    // with this run's marker: the probe knows only the nonce and the id.
    attempt(PROCESS, || {
        probe_bait::decoy_cmdline(&c.nonce).map(|cmdline| format!("read {cmdline}"))
    });
    // The rest of the bait: the probe was told where, and prints what it
    // finds there.
    attempt(OTHER_TERMINAL, || {
        probe_bait::pending_input(&c.other_terminal).map(|t| format!("read {t}"))
    });
    attempt(RAW_DEVICE, || {
        probe_bait::first_bytes(c.raw_device.as_deref()).map(|b| format!("read {b}"))
    });
    attempt(SHARED_MEMORY, || {
        probe_bait::shared_memory(c.shm_key).map(|m| format!("read {m}"))
    });
    println!("probe-done {}", c.nonce);
    Ok(std::process::ExitCode::SUCCESS)
}

fn attempt(id: &str, f: impl FnOnce() -> std::io::Result<String>) {
    match f() {
        Ok(what) => println!("probe {id} ok: {what}"),
        Err(e) => println!("probe {id} refused: {e}"),
    }
}

fn inherited(marker: &str) -> std::io::Result<String> {
    // Descriptor 3 might be something `cordon run` opened itself; only a
    // socket can be the one handed in, and nothing else is written to.
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { libc::fcntl(INHERITED_FD, libc::F_GETFD) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: descriptor 3 is open (just checked) and only borrowed here,
    // never closed.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(INHERITED_FD) };
    let st = nix::sys::stat::fstat(fd).map_err(std::io::Error::from)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(std::io::Error::other("descriptor 3 is not a socket"));
    }
    let n = nix::unistd::write(fd, marker.as_bytes()).map_err(std::io::Error::from)?;
    Ok(format!("{n} bytes written"))
}

fn tcp(to: SocketAddr, payload: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&to, T)?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    s.write_all(payload)?;
    s.shutdown(std::net::Shutdown::Write)?;
    // A reply proves nothing (the proxy may answer); only the sink does.
    let mut buf = [0u8; 64];
    let got = s.read(&mut buf).unwrap_or(0);
    Ok(format!(
        "connected, sent {} bytes, {got} back",
        payload.len()
    ))
}

fn udp_to(to: SocketAddr, payload: &[u8]) -> std::io::Result<String> {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let s = UdpSocket::bind(bind)?;
    let n = s.send_to(payload, to)?;
    Ok(format!("sent {n} bytes"))
}

fn quic(to: SocketAddr, marker: &str) -> std::io::Result<String> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.connect(to)?;
    let n = s.send(&packets::quic_initial(marker.as_bytes()))?;
    Ok(format!("sent {n} bytes"))
}

/// A raw socket builds the UDP header itself: no UDP socket is created,
/// so no UDP hook sees it; only the socket-creation refusal can stop it.
fn raw(to: Ipv4Addr, port: u16, marker: &str) -> std::io::Result<String> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?;
    let n = s.send_to(
        &packets::udp(40001, port, marker.as_bytes()),
        &SockAddr::from(SocketAddr::new(IpAddr::V4(to), 0)),
    )?;
    Ok(format!("sent {n} bytes"))
}

/// A packet socket hands a whole IPv4 packet to the link: below every IP
/// hook. Sent to the broadcast address of the veth, so no neighbour
/// lookup is needed.
fn packet(host_if: &str, to: Ipv4Addr, port: u16, marker: &str) -> std::io::Result<String> {
    let ifindex = nix::net::if_::if_nametoindex(host_if).map_err(std::io::Error::from)?;
    let src = super::netns::HOST_V4;
    let frame = packets::ipv4_udp(src, to, port, marker.as_bytes());
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = proto;
    ll.sll_ifindex = i32::try_from(ifindex).map_err(std::io::Error::other)?;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: the buffer and address outlive the call; lengths are theirs.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&ll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(format!("sent {n} bytes on {host_if}"))
}

fn unix(
    conn: std::io::Result<std::os::unix::net::UnixStream>,
    marker: &str,
) -> std::io::Result<String> {
    let mut s = conn?;
    s.write_all(marker.as_bytes())?;
    Ok("connected and sent".into())
}

/// Finds the user key `name` in the session keyring and reads it.
fn session_key(name: &str) -> std::io::Result<String> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: keyctl(KEYCTL_SEARCH) reads two NUL-terminated strings.
    let key = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_SEARCH,
            libc::KEY_SPEC_SESSION_KEYRING,
            c"user".as_ptr(),
            name.as_ptr(),
            0,
        )
    };
    if key < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 4096];
    // SAFETY: keyctl(KEYCTL_READ) writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_READ,
            key,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?;
    buf.truncate(n.min(buf.len()));
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Pushes `marker` and a newline into the terminal's input, as if typed:
/// the operator's shell would read that line once the agent exits.
fn type_into_terminal(marker: &str) -> std::io::Result<String> {
    let line = format!("{marker}\n");
    for b in line.bytes() {
        // SAFETY: TIOCSTI reads one byte from the pointer given.
        if unsafe { libc::ioctl(0, libc::TIOCSTI, &raw const b) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(format!("typed {} bytes", line.len()))
}
