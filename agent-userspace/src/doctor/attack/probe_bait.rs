//! The probe's side of the bait (`bait.rs`): finding and reading what the
//! orchestrator left on the host. Each returns what it read (which holds
//! the marker if the technique got through) or why it could not.
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::battery::PROCESS;

/// The command line of a process listed in /proc that names this battery's
/// `process-cmdline` technique (the probe's own config never does).
pub fn decoy_cmdline(nonce: &str) -> std::io::Result<String> {
    let prefix = format!("cdr-{nonce}-");
    let suffix = format!("-{PROCESS}");
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process that ended or may not be read is simply not the decoy.
        let Ok(raw) = std::fs::read(Path::new("/proc").join(&name).join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline
            .split(' ')
            .any(|arg| arg.starts_with(&prefix) && arg.ends_with(&suffix))
        {
            return Ok(cmdline);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no process outside the agent is listed with a readable command line",
    ))
}

/// The input waiting in the terminal at `path`, without becoming its
/// controlling process or waiting for more.
pub fn pending_input(path: &Path) -> std::io::Result<String> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let mut buf = [0u8; 512];
    let n = tty.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// The first bytes of the block device at `path`, up to the first NUL.
pub fn first_bytes(path: Option<&Path>) -> std::io::Result<String> {
    let Some(path) = path else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no device was planted (losetup failed)",
        ));
    };
    let mut buf = [0u8; 128];
    let n = std::fs::File::open(path)?.read(&mut buf)?;
    let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The text at the start of the System V segment with `key`.
pub fn shared_memory(key: i32) -> std::io::Result<String> {
    // SAFETY: shmget and shmat take no pointers from us but the attach
    // address (null: the kernel picks); the segment is read within its
    // 4096 bytes (a marker is far shorter, NUL-terminated by the zeroed
    // rest) and detached.
    unsafe {
        let id = libc::shmget(key, 0, 0);
        if id < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let at = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY);
        if at as isize == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let bytes = std::slice::from_raw_parts(at.cast::<u8>(), 128);
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
        libc::shmdt(at);
        Ok(text)
    }
}
