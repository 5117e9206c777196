//! Developer tasks: `cargo xtask setup | test | demo | bench`.
//! Everything a fresh machine needs (pinned toolchains, rust-src,
//! bpf-linker, test packages) is installed by `setup`, which `test`, `demo`
//! and `bench` run first.
mod bench;
mod demo;
mod sys;
mod test;
mod toolchain;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the pinned toolchains, rust-src, bpf-linker and test packages.
    Setup,
    /// Run the whole test suite (unit tests, lints, privileged end-to-end tests).
    Test(test::TestArgs),
    /// Set up and run the demo on local upstreams.
    Demo,
    /// Run the criterion benchmarks of the hot paths.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Setup => toolchain::setup().map(|_| ()),
        Cmd::Test(a) => test::run(a),
        Cmd::Demo => demo::run(),
        Cmd::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
