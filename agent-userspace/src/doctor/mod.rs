//! `cordon doctor`: whether this host, its daemon and its configuration
//! can enforce, each failure named with its fix; `--attack` proves it by
//! trying to get around Cordon (see `attack/`).
pub mod attack;
pub mod config;
pub mod daemon;
pub mod host;
pub mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Run the attack battery under a throwaway daemon instead of the checks.
    #[arg(long)]
    pub attack: bool,
    /// The daemon's configuration file (default /etc/cordon/cordon.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Policy directory to check (default: the configuration's).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// State directory of the daemon to check.
    #[arg(long, env = "CORDON_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Self-test of the battery's detector: the confined pass runs without
    /// Cordon, so every technique must be reported escaped.
    #[arg(long, hide = true, requires = "attack")]
    pub attack_unconfined: bool,
}

pub fn run(a: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let checks = if a.attack {
        attack::run(a.attack_unconfined)?
    } else {
        let mut checks = host::checks();
        let (cfg_checks, cfg) =
            config::checks(a.config.clone(), a.state_dir.clone(), a.policies.clone());
        let paths = match (&cfg, &a.state_dir) {
            (Some(c), _) => c.paths.clone(),
            (None, d) => crate::paths::Paths::resolve(d.as_deref()),
        };
        checks.extend(daemon::checks(&paths));
        checks.extend(cfg_checks);
        checks
    };
    if a.json {
        println!("{}", report::json(&checks));
    } else {
        print!("{}", report::human(&checks));
    }
    Ok(if report::failed(&checks) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
