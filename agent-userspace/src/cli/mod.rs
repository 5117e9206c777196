//! Command-line interface: argument definitions and one module per group
//! of commands. Each command returns the process exit code.
pub mod admin;
pub mod args;
pub mod assets;
pub mod audit;
pub mod grants;
pub mod install;
pub mod offline;
pub mod ops;
pub mod root_caps;
pub mod run;
pub mod suggest;
pub mod upgrade;
pub mod userns;
pub mod vault;

use std::process::ExitCode;

use args::{Cli, Command, ConnectorsCmd, PolicyCmd};

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Daemon(a) => {
            let cfg = crate::config::DaemonConfig::resolve(a.into_flags())?;
            crate::logging::init(cfg.json_logs);
            crate::daemon::run(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(a) => run::run_agent(a),
        Command::Status(c) => admin::status(&c),
        Command::Upgrade(a) => upgrade::run(&a),
        Command::Ps(c) => admin::ps(&c),
        Command::Cleanup(c) => admin::cleanup(&c),
        Command::Policy(PolicyCmd::Reload(c)) => admin::policy_reload(&c),
        Command::Policy(PolicyCmd::Check(d)) => admin::policy_check(&d.path()),
        Command::Policy(PolicyCmd::Test(t)) => offline::policy_test(&t),
        Command::Policy(PolicyCmd::Suggest(s)) => suggest::run(&s),
        Command::Connectors(ConnectorsCmd::List(d)) => offline::connectors_list(&d.path()),
        Command::Connectors(ConnectorsCmd::Match(m)) => offline::connectors_match(&m),
        Command::Kill(a) => ops::kill(&a),
        Command::Resume(a) => ops::resume(&a),
        Command::Terminate(a) => ops::terminate(&a),
        Command::Approvals(a) => grants::approvals(&a),
        Command::Approve(a) => grants::approve(&a),
        Command::Grants(a) => grants::run(&a),
        Command::Deny(a) => ops::deny(&a),
        Command::Vault(v) => vault::run(v),
        Command::Audit(a) => audit::run(a),
        Command::Install(a) => install::run_install(&a),
        Command::Uninstall(a) => install::run_uninstall(&a),
        Command::Console(args::ConsoleCmd::Token(c)) => admin::console_token(&c),
        Command::Doctor(a) => crate::doctor::run(&a),
        Command::DoctorProbe { config } => crate::doctor::attack::probe::run(&config),
        Command::GenerateAssets(a) => assets::run(&a),
    }
}
