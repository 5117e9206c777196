//! `cargo xtask demo`: builds Cordon and the demo driver, then runs the
//! driver as root (through sudo when needed). The driver builds a small
//! local internet in network namespaces, starts the daemon and walks
//! through what Cordon does, on local upstreams only.
use std::process::Command;

use crate::{
    sys::{self, cargo, run as exec, workspace_root},
    toolchain,
};

pub fn run() -> anyhow::Result<()> {
    if !toolchain::is_ready() {
        toolchain::setup()?;
    }
    exec(cargo().args(["build", "-p", "agent-userspace", "--bin", "cordon"]))?;
    exec(cargo().args(["build", "-p", "cordon-e2e", "--bin", "cordon-demo"]))?;
    let root = workspace_root();
    let demo = root.join("target/debug/cordon-demo");
    let cordon = root.join("target/debug/cordon");
    let mut cmd = if sys::is_root() {
        Command::new(&demo)
    } else {
        eprintln!("xtask: the demo attaches eBPF programs and creates namespaces: asking sudo");
        let mut c = Command::new("sudo");
        c.arg(&demo);
        c
    };
    cmd.arg("--cordon")
        .arg(&cordon)
        .arg("--workspace")
        .arg(&root);
    exec(&mut cmd)
}
