//! `cordon-demo --cordon PATH --workspace DIR`: the narrated walk-through `cargo xtask demo`
//! runs (see `cordon_e2e::demo`). `cordon-demo probe ...` is the socket probe the demo runs
//! inside agents.

use std::process::ExitCode;

use cordon_e2e::demo;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("probe") {
        return demo::probe::main(&argv[1..]);
    }
    match demo::Args::parse(&argv) {
        Ok(args) => demo::run(&args),
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}
