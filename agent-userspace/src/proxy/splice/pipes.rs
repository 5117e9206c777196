//! The pipes that splice(2) moves bytes through, lent per thread. A flow
//! borrows one only while its source has bytes to move and gives it back
//! once the pipe is empty again, so idle flows hold no pipe descriptors; a
//! pipe that may still hold bytes (its flow ended mid-transfer) is closed,
//! never lent again, so no flow can receive another's bytes.
use std::{cell::Cell, cell::RefCell, os::fd::OwnedFd};

use nix::{fcntl::OFlag, unistd::pipe2};

/// Empty pipes kept per thread for the next flow. Beyond this, a pipe given
/// back is closed: a burst of busy flows does not leave descriptors behind.
const KEEP: usize = 4;

thread_local! {
    static IDLE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    /// Pipes this thread lent and not yet got back (or closed): what the
    /// tests read to prove that an idle flow holds none.
    static LENT: Cell<usize> = const { Cell::new(0) };
}

pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

/// A pipe borrowed for one burst of bytes. Dropped, it goes back to the
/// pool only if the borrower marked it empty; otherwise it is closed.
pub struct Lent {
    pipe: Option<Pipe>,
    empty: bool,
}

impl Lent {
    pub fn pipe(&self) -> &Pipe {
        self.pipe
            .as_ref()
            .expect("a lent pipe is held until it is dropped")
    }

    /// The borrower moved every byte it put in: the pipe may be lent again.
    pub fn mark_empty(&mut self) {
        self.empty = true;
    }

    /// Bytes are about to be put in: until marked empty again, the pipe is
    /// closed rather than lent when dropped.
    pub fn mark_filled(&mut self) {
        self.empty = false;
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        LENT.with(|l| l.set(l.get().saturating_sub(1)));
        let Some(pipe) = self.pipe.take() else {
            return;
        };
        if self.empty {
            IDLE.with(|idle| {
                let mut idle = idle.borrow_mut();
                if idle.len() < KEEP {
                    idle.push(pipe);
                }
            });
        }
    }
}

/// A pipe from this thread's pool, or a new one.
pub fn borrow() -> std::io::Result<Lent> {
    let pipe = match IDLE.with(|idle| idle.borrow_mut().pop()) {
        Some(p) => p,
        None => {
            let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
            Pipe { read, write }
        }
    };
    LENT.with(|l| l.set(l.get() + 1));
    Ok(Lent {
        pipe: Some(pipe),
        empty: true,
    })
}

/// Pipes this thread has lent out right now.
#[cfg(test)]
pub fn lent() -> usize {
    LENT.with(Cell::get)
}

/// Pipes this thread keeps for its next borrower.
#[cfg(test)]
pub fn kept() -> usize {
    IDLE.with(|idle| idle.borrow().len())
}
