//! `cargo xtask bench`: the criterion benchmarks of the hot paths (policy
//! decisions, leaf-certificate cache, audit appends). Benchmarks never run
//! in `cargo xtask test`.
use clap::Args;

use crate::{
    sys::{cargo, run as exec},
    toolchain,
};

#[derive(Args)]
pub struct BenchArgs {
    /// Shorter measurement for development.
    #[arg(long)]
    pub quick: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !toolchain::is_ready() {
        toolchain::setup()?;
    }
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "-p",
        "cordon-policy",
        "-p",
        "cordon-tls",
        "-p",
        "cordon-audit",
        "--",
    ]);
    if args.quick {
        cmd.args(["--warm-up-time", "1", "--measurement-time", "2"]);
    }
    exec(&mut cmd)
}
