//! Running code inside a namespace. The network namespace is a per-thread attribute, so each
//! call gets a dedicated thread that joins the namespace and never leaves it.

use std::future::Future;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use super::NetNs;
use crate::error::{Error, IoContext, Result};

/// Move the calling thread into the network namespace bound at `path`.
pub fn enter_netns(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Io {
        what: format!("setns({}, CLONE_NEWNET)", path.display()),
        source: errno.into(),
    })
}

impl NetNs {
    /// Run `f` on a fresh thread inside this namespace and return its result, waiting at most
    /// `timeout` (the thread is abandoned, not killed, if it overruns).
    pub fn run_in<R, F>(&self, timeout: Duration, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = self.path();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("in-{}", self.name()))
            .spawn(move || {
                let outcome = enter_netns(&path).map(|()| f());
                let _ = tx.send(outcome);
            })
            .ctx(|| "spawn namespace thread".into())?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => Error::Timeout {
                what: format!("closure inside netns {}", self.name()),
                after: timeout,
            },
            mpsc::RecvTimeoutError::Disconnected => {
                Error::Setup(format!("closure inside netns {} panicked", self.name()))
            }
        })?
    }

    /// Build a future on a thread inside this namespace and drive it on a current-thread tokio
    /// runtime there; sockets it opens belong to the namespace.
    pub fn block_on<R, F, Fut>(&self, timeout: Duration, make: F) -> Result<R>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R>,
        R: Send + 'static,
    {
        self.run_in(timeout, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ctx(|| "build tokio runtime".into())?;
            let out = rt.block_on(async move { tokio::time::timeout(timeout, make()).await });
            rt.shutdown_timeout(Duration::from_secs(1));
            out.map_err(|_| Error::Timeout {
                what: "future inside netns".into(),
                after: timeout,
            })
        })?
    }
}
