//! The endpoints the probes aim at, each recording every byte it receives
//! into one shared log: TCP and UDP listeners inside the namespace, unix
//! sockets on the host, and the far end of the inherited descriptor.
//! Every sink is bound before `start` returns, so no probe can race it.
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

const POLL: Duration = Duration::from_millis(50);

pub enum Endpoint {
    Tcp(SocketAddr),
    Udp(SocketAddr),
    UnixPath(PathBuf),
    UnixAbstract(String),
    /// The sink's end of a pair whose other end the agent inherits.
    Stream(UnixStream),
}

pub struct Sinks {
    log: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Sinks {
    /// Binds each endpoint; IP ones inside the namespace at `netns`.
    pub fn start(netns: &Path, endpoints: Vec<Endpoint>) -> anyhow::Result<Sinks> {
        let mut s = Sinks {
            log: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        for e in endpoints {
            let (log, stop) = (s.log.clone(), s.stop.clone());
            let ns = netns.to_path_buf();
            let (ready_tx, ready_rx) = mpsc::channel();
            let thread = std::thread::spawn(move || serve(e, &ns, &log, &stop, ready_tx));
            s.threads.push(thread);
            ready_rx
                .recv()
                .context("a sink thread died before binding")??;
        }
        Ok(s)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<u8> {
        // A poisoned lock still holds every byte recorded: never report an
        // empty log (which would read as "held") because a thread panicked.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                eprintln!("cordon doctor: a sink thread panicked");
            }
        }
    }
}

type Ready = mpsc::Sender<anyhow::Result<()>>;

fn serve(e: Endpoint, ns: &Path, log: &Mutex<Vec<u8>>, stop: &AtomicBool, ready: Ready) {
    let bound = bind(e, ns);
    let sink = match bound {
        Ok(s) => {
            // The receiver waits for exactly this message.
            if ready.send(Ok(())).is_err() {
                return;
            }
            s
        }
        Err(err) => {
            if ready.send(Err(err)).is_err() {
                eprintln!("cordon doctor: a sink failed to bind and nobody was told");
            }
            return;
        }
    };
    match sink {
        Bound::Tcp(l) => accept_loop(stop, log, || l.accept().map(|(s, _)| Conn::Tcp(s))),
        Bound::Unix(l) => accept_loop(stop, log, || l.accept().map(|(s, _)| Conn::Unix(s))),
        Bound::Udp(u) => {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = u.recv_from(&mut buf) {
                    record(log, &buf[..n]);
                }
            }
        }
        Bound::Stream(s) => drain(Conn::Unix(s), log, stop),
    }
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
    Unix(UnixListener),
    Stream(UnixStream),
}

fn bind(e: Endpoint, ns: &Path) -> anyhow::Result<Bound> {
    let enter = || -> anyhow::Result<()> {
        let f = std::fs::File::open(ns).with_context(|| format!("open {}", ns.display()))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering {}", ns.display()))
    };
    Ok(match e {
        Endpoint::Tcp(a) => {
            enter()?;
            let l = TcpListener::bind(a).with_context(|| format!("binding tcp {a}"))?;
            l.set_nonblocking(true)?;
            Bound::Tcp(l)
        }
        Endpoint::Udp(a) => {
            enter()?;
            let u = UdpSocket::bind(a).with_context(|| format!("binding udp {a}"))?;
            u.set_read_timeout(Some(POLL))?;
            Bound::Udp(u)
        }
        Endpoint::UnixPath(p) => {
            let l = UnixListener::bind(&p).with_context(|| format!("binding {}", p.display()))?;
            l.set_nonblocking(true)?;
            Bound::Unix(l)
        }
        Endpoint::UnixAbstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name)?;
            let l = UnixListener::bind_addr(&addr).with_context(|| format!("binding @{name}"))?;
            l.set_nonblocking(true)?;
            Bound::Unix(l)
        }
        Endpoint::Stream(s) => Bound::Stream(s),
    })
}

enum Conn {
    Tcp(std::net::TcpStream),
    Unix(UnixStream),
}

fn accept_loop(
    stop: &AtomicBool,
    log: &Mutex<Vec<u8>>,
    mut accept: impl FnMut() -> std::io::Result<Conn>,
) {
    std::thread::scope(|scope| {
        while !stop.load(Ordering::Relaxed) {
            match accept() {
                Ok(c) => {
                    scope.spawn(move || drain(c, log, stop));
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    });
}

/// Reads until the peer closes or the sinks stop. A socket whose timeout
/// cannot be set is still read (blocking until the probe's side closes,
/// which its exit does): skipping it would hide an escape.
fn drain(c: Conn, log: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    let (mut r, set): (Box<dyn Read>, std::io::Result<()>) = match c {
        Conn::Tcp(s) => {
            let set = s
                .set_nonblocking(false)
                .and_then(|()| s.set_read_timeout(Some(POLL)));
            (Box::new(s), set)
        }
        Conn::Unix(s) => {
            let set = s
                .set_nonblocking(false)
                .and_then(|()| s.set_read_timeout(Some(POLL)));
            (Box::new(s), set)
        }
    };
    if let Err(e) = set {
        eprintln!("cordon doctor: a sink connection stays blocking: {e}");
    }
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => record(log, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn record(log: &Mutex<Vec<u8>>, bytes: &[u8]) {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend_from_slice(bytes);
}
