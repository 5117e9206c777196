//! Developer tasks: `cargo xtask setup | test | demo | bench | fuzz | package`.
//! Everything a fresh machine needs (pinned toolchains, rust-src,
//! bpf-linker, cargo-fuzz, test packages) is installed by `setup`, which
//! `test`, `demo` and `bench` run first (`fuzz` installs what it needs).
mod bench;
mod browser;
mod demo;
mod fuzz;
mod fuzz_log;
mod fuzz_smoke;
mod fuzz_tool;
mod package;
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
    /// Install the pinned toolchains, rust-src, bpf-linker, cargo-fuzz and test packages.
    Setup,
    /// Run the whole test suite (unit tests, lints, privileged end-to-end tests).
    Test(test::TestArgs),
    /// Set up and run the demo on local upstreams.
    Demo,
    /// Run the criterion benchmarks of the hot paths.
    Bench(bench::BenchArgs),
    /// Run the cargo-fuzz targets (every one in turn, or TARGET) on the pinned nightly.
    Fuzz(fuzz::FuzzArgs),
    /// Build the Debian package (cargo-deb) and check it with lintian.
    Package,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Setup => toolchain::setup().map(|_| ()),
        Cmd::Test(a) => test::run(a),
        Cmd::Demo => demo::run(),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Fuzz(a) => fuzz::run(a),
        Cmd::Package => package::build(package::Build::Release).map(|_| ()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
