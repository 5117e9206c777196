//! Command lines of the CLI contract, kept pure so they can be checked without a daemon.

use std::ffi::OsString;
use std::path::Path;

use super::AGENT_USER;

/// `ARGS` with `--state-dir D` inserted before the first `--` (or appended), so it lands on the
/// subcommand even when the rest is an agent command line.
pub(super) fn client_args(args: &[&str], state_dir: &Path) -> Vec<OsString> {
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut out: Vec<OsString> = args[..split].iter().map(OsString::from).collect();
    out.push("--state-dir".into());
    out.push(state_dir.into());
    out.extend(args[split..].iter().map(OsString::from));
    out
}

pub(super) fn agent_args(name: &str, state_dir: &Path, cmd: &[&str]) -> Vec<OsString> {
    let mut out: Vec<OsString> = ["run", "--agent", name, "--state-dir"]
        .map(OsString::from)
        .into();
    out.push(state_dir.into());
    out.extend(["--user", AGENT_USER, "--"].map(OsString::from));
    out.extend(cmd.iter().map(OsString::from));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn state_dir_goes_before_double_dash() {
        let got = strings(client_args(
            &["policy", "test", "--", "x", "--y"],
            Path::new("/s"),
        ));
        assert_eq!(
            got,
            ["policy", "test", "--state-dir", "/s", "--", "x", "--y"]
        );
    }

    #[test]
    fn state_dir_is_appended_without_double_dash() {
        let got = strings(client_args(&["kill", "bot"], Path::new("/s")));
        assert_eq!(got, ["kill", "bot", "--state-dir", "/s"]);
    }

    #[test]
    fn agent_command_line_follows_the_contract() {
        let got = strings(agent_args(
            "deploy-bot",
            Path::new("/s"),
            &["curl", "-s", "--", "u"],
        ));
        assert_eq!(
            got,
            [
                "run",
                "--agent",
                "deploy-bot",
                "--state-dir",
                "/s",
                "--user",
                "nobody",
                "--",
                "curl",
                "-s",
                "--",
                "u"
            ]
        );
    }
}
