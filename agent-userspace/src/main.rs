//! `cordon`: parse arguments, run the command, print errors on one line.
use std::process::ExitCode;

use clap::Parser;

mod bpf;
mod cgroup;
mod cli;
mod config;
mod console;
mod contain;
mod control;
mod daemon;
mod dns;
mod doctor;
mod install;
mod killswitch;
mod logging;
mod metrics;
mod mountinfo;
mod notify;
mod paths;
mod proxy;
mod request;
mod suggest;

// Why mimalloc, and how it is tuned: `daemon/memory.rs`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::args::Cli::parse();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cordon: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
